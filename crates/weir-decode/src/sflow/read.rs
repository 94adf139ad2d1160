//! A bounds-checked big-endian reader over a slice of a datagram, which
//! knows its absolute offset so that errors can say where they happened.

use crate::ErrorKind;

/// A problem at an absolute byte offset of the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) offset: usize,
    pub(crate) kind: ErrorKind,
}

impl Problem {
    #[cold]
    #[inline(never)]
    pub(crate) fn new(offset: usize, kind: ErrorKind) -> Problem {
        Problem { offset, kind }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn short(offset: usize, what: &'static str, need: usize, have: usize) -> Problem {
        Problem { offset, kind: ErrorKind::Truncated { what, need, have } }
    }
}

/// Reads XDR (big-endian, 4-byte aligned) values from `buf`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the datagram.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Reader<'a> {
        Reader { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    #[inline(always)]
    pub(crate) fn bytes(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], Problem> {
        match self.buf.get(self.pos..).and_then(|r| r.get(..n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(Problem::short(self.offset(), what, n, self.remaining())),
        }
    }

    /// The next `n` bytes as a reader of their own.
    #[inline(always)]
    pub(crate) fn sub(&mut self, what: &'static str, n: usize) -> Result<Reader<'a>, Problem> {
        let base = self.offset();
        Ok(Reader::new(self.bytes(what, n)?, base))
    }

    #[inline(always)]
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Problem> {
        let s = self.bytes(what, 4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    #[inline(always)]
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Problem> {
        let s = self.bytes(what, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }

    /// An sFlow `address`: type (0 unknown, 1 IPv4, 2 IPv6) and the bytes.
    /// `None` for type 0.
    pub(crate) fn address(
        &mut self,
        what: &'static str,
    ) -> Result<Option<std::net::IpAddr>, Problem> {
        let at = self.offset();
        match self.u32(what)? {
            0 => Ok(None),
            1 => {
                let s = self.bytes(what, 4)?;
                Ok(Some(std::net::Ipv4Addr::new(s[0], s[1], s[2], s[3]).into()))
            }
            2 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.bytes(what, 16)?);
                Ok(Some(std::net::Ipv6Addr::from(a).into()))
            }
            t => Err(Problem::new(at, ErrorKind::Invalid(format!("{what}: address type {t}")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reports_offsets() {
        let b = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 9];
        let mut r = Reader::new(&b, 100);
        assert_eq!(r.u32("a"), Ok(1));
        assert_eq!(r.u64("b"), Ok(2));
        assert_eq!(r.offset(), 112);
        let e = r.u32("c").unwrap_err();
        assert_eq!(e, Problem::short(112, "c", 4, 1));
        assert_eq!(r.remaining(), 1);
        let mut r = Reader::new(&[0, 0, 0, 3], 0);
        assert!(matches!(r.address("x"), Err(Problem { offset: 0, .. })));
        let mut r = Reader::new(&[0, 0, 0, 1, 10, 0, 0, 1], 0);
        assert_eq!(r.address("x"), Ok(Some("10.0.0.1".parse().unwrap())));
    }
}
