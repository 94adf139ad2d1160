//! Errors that name the file and the byte offset.

use std::io;
use std::path::PathBuf;

/// What went wrong, without the location.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operating system refused an operation.
    #[error("{op}: {source}")]
    Io {
        /// What was being done (`open`, `read`, `seek`, ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Not an nfdump file (the first two bytes are not nfdump's magic).
    #[error("not an nfdump file: magic {0:#06x}, expected 0xa50c")]
    BadMagic(u16),
    /// Written on a big-endian machine.
    #[error("big-endian nfdump files are not supported")]
    BigEndian,
    /// An nfdump 1.6 (or older) file.
    #[error(
        "nfdump 1.6 files (layout version 1) are not supported; convert them first with nfdump 1.7: nfdump -r OLD -w NEW"
    )]
    Layout1,
    /// A layout version this reader does not know.
    #[error("unsupported nfdump file layout version {0} (this reader reads version 2)")]
    UnsupportedVersion(u16),
    /// A compression code this reader does not know.
    #[error("unsupported compression code {0}")]
    UnsupportedCompression(u8),
    /// Encrypted files are not supported (nfdump never writes them).
    #[error("encrypted nfdump files are not supported")]
    Encrypted,
    /// The file is shorter than its structures say.
    #[error("truncated: {0}")]
    Truncated(String),
    /// A compressed block does not decompress.
    #[error("{codec} block does not decompress: {msg}")]
    Decompress {
        /// LZO, LZ4, BZ2 or ZSTD.
        codec: &'static str,
        /// What the decompressor said.
        msg: String,
    },
    /// A structure holds an impossible value.
    #[error("corrupt {0}")]
    Corrupt(String),
}

/// An error reading an nfdump file: the kind plus the file and, where it
/// applies, the byte offset in the file.
///
/// Offsets inside a compressed block cannot point into the file; such
/// errors give the offset of the block and say where in its decompressed
/// payload the problem is.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", path.display(), offset.map(|o| format!(": offset {o}")).unwrap_or_default())]
pub struct NfError {
    /// The file concerned (`<bytes>` for [`crate::parse`]).
    pub path: PathBuf,
    /// Byte offset in the file of the structure that is wrong, if known.
    pub offset: Option<u64>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl NfError {
    /// An error at `offset` of `path`.
    #[cold]
    pub fn at(path: impl Into<PathBuf>, offset: u64, kind: ErrorKind) -> NfError {
        NfError { path: path.into(), offset: Some(offset), kind }
    }

    /// An error about `path` as a whole.
    #[cold]
    pub fn file(path: impl Into<PathBuf>, kind: ErrorKind) -> NfError {
        NfError { path: path.into(), offset: None, kind }
    }

    /// An I/O error while doing `op` on `path`.
    #[cold]
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> NfError {
        NfError::file(path, ErrorKind::Io { op, source })
    }
}

/// Result alias of this crate's reader.
pub type Result<T, E = NfError> = std::result::Result<T, E>;
