//! Reading a capture file (or stdin) into memory, gunzipping it if needed.

use std::fmt;
use std::io::Read;
use std::path::Path;

/// A capture that could not be read.
#[derive(Debug)]
pub struct InputError {
    /// The file (`-` for stdin).
    pub path: String,
    /// What went wrong.
    pub source: std::io::Error,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.source)
    }
}

impl std::error::Error for InputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Reads a whole capture: a file, or stdin for `-`. gzip-compressed input
/// (magic `1f 8b`, e.g. `capture.pcap.gz`) is decompressed, several
/// concatenated gzip members included.
pub fn read_input(path: &Path) -> Result<Vec<u8>, InputError> {
    let err = |source| InputError { path: path.display().to_string(), source };
    let raw = if path.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::stdin().lock().read_to_end(&mut v).map_err(err)?;
        v
    } else {
        std::fs::read(path).map_err(err)?
    };
    gunzip_if_needed(raw).map_err(err)
}

/// Decompresses `raw` if it starts with the gzip magic.
pub(crate) fn gunzip_if_needed(raw: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len().saturating_mul(3));
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn gzip_and_plain() {
        let data = b"\xd4\xc3\xb2\xa1 some capture bytes".to_vec();
        assert_eq!(gunzip_if_needed(data.clone()).unwrap(), data);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let packed = gz.finish().unwrap();
        assert_eq!(gunzip_if_needed(packed.clone()).unwrap(), data);
        // A cut gzip stream is an error, not a panic.
        assert!(gunzip_if_needed(packed[..packed.len() - 6].to_vec()).is_err());
    }
}
