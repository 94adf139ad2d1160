//! A safe LZO1X decompressor (the format nfcapd `-z` writes with
//! `lzo1x_1_compress`), written from the description of the bitstream.
//!
//! Every read and every back-reference is bounds-checked and the output is
//! capped, so damaged input gives an error, never a panic or an unbounded
//! allocation.
//!
//! The stream is a sequence of instructions. Each one either copies
//! literals from the input or copies an earlier stretch of the output (a
//! match) and then up to three literals. How the low opcodes (0..=15) are
//! read depends on how many literals the previous instruction copied (the
//! "state": 0, 1..=3, or 4 for a longer literal run).

/// Why a stream does not decompress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LzoError {
    /// The input ended inside an instruction.
    InputOverrun(usize),
    /// The output would exceed the limit.
    OutputOverrun(usize),
    /// A match points before the start of the output.
    LookBehind(usize),
    /// Bytes follow the end-of-stream marker.
    TrailingInput(usize),
}

impl std::fmt::Display for LzoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LzoError::InputOverrun(at) => {
                write!(f, "input ends inside an instruction at byte {at}")
            }
            LzoError::OutputOverrun(at) => {
                write!(f, "output exceeds the block size limit (instruction at byte {at})")
            }
            LzoError::LookBehind(at) => {
                write!(f, "match distance beyond the start of the output at byte {at}")
            }
            LzoError::TrailingInput(at) => {
                write!(f, "data after the end-of-stream marker at byte {at}")
            }
        }
    }
}

struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    #[inline]
    fn byte(&mut self) -> Result<u8, LzoError> {
        let b = *self.data.get(self.pos).ok_or(LzoError::InputOverrun(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn le16(&mut self) -> Result<usize, LzoError> {
        let lo = self.byte()? as usize;
        let hi = self.byte()? as usize;
        Ok(lo | hi << 8)
    }

    /// A length continued over zero bytes: each zero adds 255, the first
    /// non-zero byte ends it and is added too.
    #[inline]
    fn long_length(&mut self, base: usize, limit: usize) -> Result<usize, LzoError> {
        let mut len = base;
        loop {
            let b = self.byte()?;
            if b != 0 {
                return Ok(len + b as usize);
            }
            len += 255;
            if len > limit {
                return Err(LzoError::OutputOverrun(self.pos));
            }
        }
    }
}

/// The output: a buffer of the size limit and how much of it is written.
struct Output<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

#[inline]
fn literals(inp: &mut Input<'_>, out: &mut Output<'_>, n: usize) -> Result<(), LzoError> {
    let at = inp.pos;
    let end =
        at.checked_add(n).filter(|&e| e <= inp.data.len()).ok_or(LzoError::InputOverrun(at))?;
    let dst = out.buf.get_mut(out.pos..out.pos + n).ok_or(LzoError::OutputOverrun(at))?;
    let lit = &inp.data[at..end];
    if n <= 3 {
        // The up to three literals after a match: not worth a memcpy call.
        for (d, s) in dst.iter_mut().zip(lit) {
            *d = *s;
        }
    } else {
        dst.copy_from_slice(lit);
    }
    out.pos += n;
    inp.pos = end;
    Ok(())
}

#[inline]
fn copy_match(
    out: &mut Output<'_>,
    distance: usize,
    len: usize,
    at: usize,
) -> Result<(), LzoError> {
    let pos = out.pos;
    if distance == 0 || distance > pos {
        return Err(LzoError::LookBehind(at));
    }
    if pos + len > out.buf.len() {
        return Err(LzoError::OutputOverrun(at));
    }
    // Byte i of the copy is output byte i - distance (so an overlapping
    // stretch repeats itself).
    let start = pos - distance;
    let buf = &mut *out.buf;
    if distance >= len && len > 32 {
        buf.copy_within(start..start + len, pos);
    } else if distance >= 8 && pos + len + 8 <= buf.len() {
        // Eight bytes at a time (each chunk is complete before it is read,
        // as distance >= 8); up to 7 bytes past the end are written and
        // later overwritten or cut off.
        let mut i = 0;
        while i < len {
            let c: [u8; 8] = buf[start + i..start + i + 8].try_into().expect("8 bytes");
            buf[pos + i..pos + i + 8].copy_from_slice(&c);
            i += 8;
        }
    } else if distance < len && len > 32 {
        // Copy what exists and repeat: the available part doubles.
        let mut done = 0;
        while done < len {
            let k = (len - done).min(pos + done - start);
            buf.copy_within(start..start + k, pos + done);
            done += k;
        }
    } else {
        for i in 0..len {
            buf[pos + i] = buf[start + i];
        }
    }
    out.pos += len;
    Ok(())
}

/// Decompresses an LZO1X stream into `out` (cleared first), producing at
/// most `limit` bytes.
#[cfg(test)]
pub(crate) fn decompress(src: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), LzoError> {
    let mut buf = vec![0; limit];
    let n = decompress_into(src, &mut buf)?;
    out.clear();
    out.extend_from_slice(&buf[..n]);
    Ok(())
}

/// Decompresses an LZO1X stream into `buf`, whose length is the limit;
/// returns the decompressed length.
pub(crate) fn decompress_into(src: &[u8], buf: &mut [u8]) -> Result<usize, LzoError> {
    let limit = buf.len();
    let mut out = Output { buf, pos: 0 };
    let mut inp = Input { data: src, pos: 0 };
    let mut state: usize = 0;
    // The first byte may start with a literal run of its own.
    if let Some(&b) = src.first()
        && b > 17
    {
        inp.pos = 1;
        let n = b as usize - 17;
        literals(&mut inp, &mut out, n)?;
        state = if n < 4 { n } else { 4 };
    }
    loop {
        let at = inp.pos;
        let inst = inp.byte()? as usize;
        let (distance, len, next);
        if inst >= 64 {
            // Match within 2 KiB: length 3..=8, three low distance bits in
            // the opcode, eight more in the next byte.
            len = if inst >= 128 { 5 + ((inst >> 5) & 3) } else { 3 + ((inst >> 5) & 1) };
            distance = ((inp.byte()? as usize) << 3) + ((inst >> 2) & 7) + 1;
            next = inst & 3;
        } else if inst >= 32 {
            // Match within 16 KiB.
            len = match inst & 31 {
                0 => inp.long_length(2 + 31, limit)?,
                l => 2 + l,
            };
            let d = inp.le16()?;
            distance = (d >> 2) + 1;
            next = d & 3;
        } else if inst >= 16 {
            // Match 16..48 KiB back, or the end of the stream.
            len = match inst & 7 {
                0 => inp.long_length(2 + 7, limit)?,
                l => 2 + l,
            };
            let d = inp.le16()?;
            let far = ((inst & 8) << 11) + (d >> 2);
            if far == 0 {
                if inp.pos != src.len() {
                    return Err(LzoError::TrailingInput(inp.pos));
                }
                return Ok(out.pos);
            }
            distance = far + 0x4000;
            next = d & 3;
        } else if state == 0 {
            // A run of 4 or more literals.
            let n = match inst {
                0 => inp.long_length(3 + 15, limit)?,
                l => 3 + l,
            };
            literals(&mut inp, &mut out, n)?;
            state = 4;
            continue;
        } else if state < 4 {
            // Two bytes from within 1 KiB.
            len = 2;
            distance = ((inp.byte()? as usize) << 2) + (inst >> 2) + 1;
            next = inst & 3;
        } else {
            // Three bytes from 2..3 KiB back.
            len = 3;
            distance = ((inp.byte()? as usize) << 2) + (inst >> 2) + 2049;
            next = inst & 3;
        }
        copy_match(&mut out, distance, len, at)?;
        literals(&mut inp, &mut out, next)?;
        state = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A literal-only stream: first byte 17 + n, the bytes, end marker.
    fn literal_stream(data: &[u8]) -> Vec<u8> {
        assert!(data.len() <= 238);
        let mut s = vec![17 + data.len() as u8];
        s.extend_from_slice(data);
        s.extend_from_slice(&[0x11, 0, 0]);
        s
    }

    #[test]
    fn literals_and_end_marker() {
        let mut out = Vec::new();
        decompress(&literal_stream(b"hello world"), &mut out, 1 << 20).unwrap();
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn overlapping_match() {
        // "abcd" then a 2 KiB-window match of length 8 at distance 4, no
        // trailing literals: opcode 1LLDDDSS with L = 3 (5 + 3 = 8),
        // distance 4 = (H << 3) + D + 1 -> D = 3, H = 0.
        let mut s = vec![17 + 4];
        s.extend_from_slice(b"abcd");
        s.push(0b1110_1100);
        s.push(0);
        s.extend_from_slice(&[0x11, 0, 0]);
        let mut out = Vec::new();
        decompress(&s, &mut out, 1 << 20).unwrap();
        assert_eq!(out, b"abcdabcdabcd");
    }

    #[test]
    fn run_length_match() {
        // "ab", then a 16 KiB-window match (opcode 001LLLLL) of length
        // 2 + 20 at distance 1 (LE16 0 = distance 1, no literals).
        let s = [17 + 2, b'a', b'b', 0b0010_0000 | 20, 0, 0, 0x11, 0, 0];
        let mut out = Vec::new();
        decompress(&s, &mut out, 1 << 20).unwrap();
        let mut want = b"ab".to_vec();
        want.extend(std::iter::repeat_n(b'b', 22));
        assert_eq!(out, want);
    }

    #[test]
    fn long_matches() {
        // 20 literals, a match of 2 + 18 = 20 at distance 20 (no overlap:
        // one block copy), then 2 + 31 = 33 at distance 1 (overlap: runs).
        let lits: Vec<u8> = (b'a'..b'a' + 20).collect();
        let mut s = vec![17 + 20];
        s.extend_from_slice(&lits);
        s.extend_from_slice(&[0b0010_0000 | 18, (19 << 2) as u8, 0]);
        s.extend_from_slice(&[0b0010_0000 | 31, 0, 0]);
        s.extend_from_slice(&[0x11, 0, 0]);
        let mut out = Vec::new();
        decompress(&s, &mut out, 1 << 20).unwrap();
        let mut want = lits.clone();
        want.extend_from_slice(&lits);
        want.extend(std::iter::repeat_n(b't', 33));
        assert_eq!(out, want);
    }

    #[test]
    fn damage_is_an_error() {
        let good = literal_stream(b"0123456789");
        let mut out = Vec::new();
        for cut in 0..good.len() {
            assert!(decompress(&good[..cut], &mut out, 1 << 20).is_err(), "cut {cut}");
        }
        // A match reaching before the output start.
        assert!(matches!(
            decompress(&[17 + 1, b'x', 0xff, 0xff, 0x11, 0, 0], &mut out, 1 << 20),
            Err(LzoError::LookBehind(_))
        ));
        // Output limit.
        assert!(matches!(
            decompress(&literal_stream(b"0123456789"), &mut out, 5),
            Err(LzoError::OutputOverrun(_))
        ));
        // Long runs of zero length bytes stop at the limit.
        let mut s = vec![0u8; 100_000];
        s[0] = 0;
        assert!(decompress(&s, &mut out, 1000).is_err());
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any input gives output within the limit or an error, never a panic.
        #[test]
        fn arbitrary_input(src in proptest::collection::vec(any::<u8>(), 0..300), limit in 0usize..4096) {
            let mut out = Vec::new();
            if super::decompress(&src, &mut out, limit).is_ok() {
                prop_assert!(out.len() <= limit);
            }
        }
    }
}
