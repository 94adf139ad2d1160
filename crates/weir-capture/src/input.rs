//! Reading a capture file (or stdin), gunzipping it if needed, frame by
//! frame in bounded parts ([`read_frames`]) for captures of any size.

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

/// `r` decompressed on the fly if it is gzip (its first two bytes are
/// 1f 8b), else `r` as it is; the bytes looked at are read again.
pub fn gunzip_if_gzip(mut r: Box<dyn Read>) -> std::io::Result<Box<dyn Read>> {
    let mut head = Vec::with_capacity(2);
    (&mut r).take(2).read_to_end(&mut head)?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let r = std::io::Cursor::new(head).chain(r);
    Ok(if gzip { Box::new(flate2::read::MultiGzDecoder::new(r)) } else { Box::new(r) })
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
    let r: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(err)?)
    };
    read_frames_from(gunzip_if_gzip(r).map_err(err)?, f).map_err(|e| match e {
        StreamError::Io(source) => err(source),
        StreamError::Handler(h) => FramesError::Handler(h),
    })
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
        let dir = tempfile::tempdir().unwrap();
        let data = capture(3);
        let count = |path: &Path| {
            let mut n = 0;
            read_frames::<()>(path, |_| {
                n += 1;
                Ok(())
            })
            .map(|damage| (n, damage.is_none()))
        };
        let plain = dir.path().join("p.pcap");
        std::fs::write(&plain, &data).unwrap();
        assert_eq!(count(&plain).unwrap(), (3, true));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let packed = gz.finish().unwrap();
        let gzf = dir.path().join("p.pcap.gz");
        std::fs::write(&gzf, &packed).unwrap();
        assert_eq!(count(&gzf).unwrap(), (3, true));
        // A cut gzip stream (here: its trailer): the frames before the
        // cut, and the failed read as the damage.
        std::fs::write(&gzf, &packed[..packed.len() - 6]).unwrap();
        assert_eq!(count(&gzf).unwrap(), (3, false));
        let damage = read_frames::<()>(&gzf, |_| Ok(())).unwrap().unwrap();
        assert!(damage.message.contains("reading failed after"), "{damage}");
        // Nothing readable at all: an input error, not a panic.
        std::fs::write(&gzf, &packed[..10]).unwrap();
        assert!(matches!(count(&gzf), Err(FramesError::Input(_))));
    }
}
