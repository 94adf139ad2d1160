//! Reading a capture file (or stdin), gunzipping it if needed: whole into
//! memory ([`read_input`]), or frame by frame in bounded parts
//! ([`read_frames`]) for captures of any size.

use std::fmt;
use std::io::Read;
use std::path::Path;

use weir_decode::pcap::{CaptureError, Frame, StreamError, read_frames_from};

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

/// Why [`read_frames`] stopped.
#[derive(Debug)]
pub enum FramesError<E> {
    /// The capture could not be opened or read.
    Input(InputError),
    /// The frame handler failed.
    Handler(E),
}

/// Reads a capture — a file, or stdin for `-`; gzip is decompressed on
/// the fly — in parts of 16 MiB and hands every frame to `f`, so memory
/// stays bounded (a part plus one record) whatever the capture's size.
/// Returns the damage that stopped reading early, if any, with its offset
/// from the start of the (decompressed) capture; the frames before it were
/// handed over.
pub fn read_frames<E>(
    path: &Path,
    f: impl FnMut(&Frame<'_>) -> Result<(), E>,
) -> Result<Option<CaptureError>, FramesError<E>> {
    let err = |source| FramesError::Input(InputError { path: path.display().to_string(), source });
    let mut r: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(err)?)
    };
    // Two bytes tell gzip (1f 8b) from a capture; they are read again
    // in front of the rest.
    let mut head = Vec::with_capacity(2);
    (&mut r).take(2).read_to_end(&mut head).map_err(err)?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let r = std::io::Cursor::new(head).chain(r);
    let r: Box<dyn Read> =
        if gzip { Box::new(flate2::read::MultiGzDecoder::new(r)) } else { Box::new(r) };
    read_frames_from(r, f).map_err(|e| match e {
        StreamError::Io(source) => err(source),
        StreamError::Handler(h) => FramesError::Handler(h),
    })
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
    use weir_decode::pcap::frames;

    /// A pcap of `n` frames of 40 to 1539 bytes.
    fn capture(n: usize) -> Vec<u8> {
        let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        v.extend([0u8; 8]);
        v.extend(65535u32.to_le_bytes());
        v.extend(1u32.to_le_bytes());
        for i in 0..n {
            let len = 40 + i % 1500;
            v.extend((i as u32).to_le_bytes());
            v.extend(0u32.to_le_bytes());
            v.extend((len as u32).to_le_bytes());
            v.extend((len as u32).to_le_bytes());
            v.extend(std::iter::repeat_n((i % 251) as u8, len));
        }
        v
    }

    /// Streaming reads give exactly the frames a whole read gives, across
    /// part boundaries, plain and gzip; a cut capture reports the same
    /// damage at the same offset.
    #[test]
    fn streamed_frames_equal_whole_reads() {
        let dir = tempfile::tempdir().unwrap();
        let data = capture(30_000); // about 23 MB: two parts
        assert!(data.len() > 16 << 20, "more than one part");
        let whole: Vec<(usize, u64, usize, u8)> = frames(&data)
            .unwrap()
            .map(|f| f.unwrap())
            .map(|f| (f.number, f.ts_ns, f.data.len(), f.data[0]))
            .collect();
        let plain = dir.path().join("c.pcap");
        std::fs::write(&plain, &data).unwrap();
        let gz = dir.path().join("c.pcap.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        for p in [&plain, &gz] {
            let mut got = Vec::new();
            let r = read_frames::<()>(p, |f| {
                got.push((f.number, f.ts_ns, f.data.len(), f.data[0]));
                Ok(())
            })
            .unwrap();
            assert!(r.is_none());
            assert_eq!(got, whole, "{}", p.display());
        }
        let cut = dir.path().join("cut.pcap");
        std::fs::write(&cut, &data[..data.len() - 7]).unwrap();
        let mut n = 0;
        let e = read_frames::<()>(&cut, |_| {
            n += 1;
            Ok(())
        })
        .unwrap()
        .unwrap();
        let want = frames(&data[..data.len() - 7]).unwrap().find_map(Result::err).unwrap();
        assert_eq!((n, &e), (whole.len() - 1, &want));
        // The handler's error stops the reading.
        assert!(matches!(read_frames(&plain, |_| Err(7)), Err(FramesError::Handler(7))));
    }

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
