//! Block decompression: LZO, LZ4, BZ2 and ZSTD, each bounded by
//! [`MAX_BLOCK`](crate::format::MAX_BLOCK).

use crate::error::ErrorKind;
use crate::format::Compression;
use crate::lzo;

/// Reusable decompression state.
#[derive(Default)]
pub(crate) struct Decompressor {
    zstd: Option<zstd::bulk::Decompressor<'static>>,
    /// Zeroed once: LZ4 and LZO decode into an initialised buffer.
    scratch: Vec<u8>,
}

fn scratch(buf: &mut Vec<u8>, limit: usize) -> &mut [u8] {
    if buf.len() < limit {
        *buf = vec![0; limit];
    }
    &mut buf[..limit]
}

fn fail(codec: &'static str, msg: impl ToString) -> ErrorKind {
    ErrorKind::Decompress { codec, msg: msg.to_string() }
}

impl Decompressor {
    /// Decompresses `src` into `out` (cleared first), at most `limit` bytes.
    pub(crate) fn decompress(
        &mut self,
        c: Compression,
        src: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ErrorKind> {
        out.clear();
        match c {
            Compression::None => {
                out.extend_from_slice(src);
                Ok(())
            }
            Compression::Lzo => {
                let n = lzo::decompress_into(src, scratch(&mut self.scratch, limit))
                    .map_err(|e| fail("LZO", e))?;
                out.extend_from_slice(&self.scratch[..n]);
                Ok(())
            }
            Compression::Lz4 => {
                let n = lz4_flex::block::decompress_into(src, scratch(&mut self.scratch, limit))
                    .map_err(|e| fail("LZ4", e))?;
                out.extend_from_slice(&self.scratch[..n]);
                Ok(())
            }
            Compression::Bz2 => {
                let mut d = bzip2::Decompress::new(false);
                out.reserve(limit.min(src.len().saturating_mul(8)).max(4096));
                loop {
                    let consumed = d.total_in() as usize;
                    let before = out.len();
                    let status = d
                        .decompress_vec(&src[consumed.min(src.len())..], out)
                        .map_err(|e| fail("BZ2", e))?;
                    if status == bzip2::Status::StreamEnd {
                        return Ok(());
                    }
                    if out.len() > limit {
                        return Err(fail("BZ2", "block larger than 5 MiB"));
                    }
                    let progressed = d.total_in() as usize > consumed || out.len() > before;
                    if out.len() == out.capacity() {
                        out.reserve(out.capacity().min(limit + 1 - out.len()).max(4096));
                    } else if !progressed {
                        return Err(fail("BZ2", "stream ends early"));
                    }
                }
            }
            Compression::Zstd => {
                let z = match &mut self.zstd {
                    Some(z) => z,
                    None => self
                        .zstd
                        .insert(zstd::bulk::Decompressor::new().map_err(|e| fail("ZSTD", e))?),
                };
                out.reserve(limit);
                z.decompress_to_buffer(src, out).map_err(|e| fail("ZSTD", e))?;
                Ok(())
            }
        }
    }
}
