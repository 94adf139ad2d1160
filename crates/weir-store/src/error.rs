//! Errors that name the file and byte offset.

use std::io;
use std::path::PathBuf;

/// What went wrong, without the location.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operating system refused an operation.
    #[error("{op}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `rename`, ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is shorter than its structures say.
    #[error("truncated: {0}")]
    Truncated(String),
    /// A magic number is wrong: not a weir slot file, or a damaged one.
    #[error("bad magic: expected {expected:?}, found {found:?}")]
    BadMagic {
        /// The magic the format requires.
        expected: &'static str,
        /// What the bytes say (lossy ASCII).
        found: String,
    },
    /// Written by a newer weir.
    #[error("unsupported format version {found} (this build reads versions 1..={supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Newest version this build reads.
        supported: u16,
    },
    /// A checksum does not match: the bytes changed after they were written.
    #[error("checksum mismatch in {what}: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// Which structure.
        what: String,
        /// Checksum in the file.
        stored: u32,
        /// Checksum of the bytes found.
        computed: u32,
    },
    /// A structure holds an impossible value.
    #[error("corrupt {0}")]
    Corrupt(String),
    /// The final name is taken and the writer was told not to replace it.
    #[error("refusing to overwrite an existing slot file")]
    Exists(PathBuf),
    /// The caller asked for something the file does not have.
    #[error("{0}")]
    Invalid(String),
}

/// A store error: the kind plus the file and, where it applies, the offset.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", path.display(), offset.map(|o| format!(": offset {o}")).unwrap_or_default())]
pub struct StoreError {
    /// The file concerned.
    pub path: PathBuf,
    /// Byte offset of the structure that is wrong, if known.
    pub offset: Option<u64>,
    /// What went wrong (already part of the message, so not a `source`:
    /// error chains would print it twice).
    pub kind: ErrorKind,
}

impl StoreError {
    /// An error at `offset` of `path`.
    #[cold]
    pub fn at(path: impl Into<PathBuf>, offset: u64, kind: ErrorKind) -> StoreError {
        StoreError { path: path.into(), offset: Some(offset), kind }
    }

    /// An error about `path` as a whole.
    #[cold]
    pub fn file(path: impl Into<PathBuf>, kind: ErrorKind) -> StoreError {
        StoreError { path: path.into(), offset: None, kind }
    }

    /// An I/O error while doing `op` on `path`.
    #[cold]
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> StoreError {
        StoreError::file(path, ErrorKind::Io { op, source })
    }
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
