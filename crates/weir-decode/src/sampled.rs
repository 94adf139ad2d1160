//! sFlow v5 sampled packet headers, for `weir sflow2pcap` and the
//! collector's `--sflow-pcap`.
//!
//! [`sampled_headers`] walks one sFlow v5 datagram (XDR: the header, then
//! samples, each a list of records) and hands every *raw packet header*
//! record (format 1) of flow samples (format 1), expanded flow samples
//! (format 3) and discarded-packet samples (format 5) to a callback.
//! Everything else — counter samples, extended records — is skipped by its
//! length. [`to_ethernet`] turns a header into an Ethernet frame for a pcap
//! of link type 1: Ethernet headers as they are, bare IPv4/IPv6 headers
//! (header protocols 11 and 12) behind a synthetic Ethernet header.

use std::net::IpAddr;

use crate::ErrorKind;
use crate::sflow::read::{Problem, Reader};
use crate::sflow::{parse_header, sample_frame};

/// One raw packet header record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledHeader<'a> {
    /// The agent address of the datagram.
    pub agent: IpAddr,
    /// Sub-agent id.
    pub sub_agent: u32,
    /// Sample format (1 flow, 3 expanded flow, 5 discard).
    pub sample_format: u32,
    /// Sampling rate of the sample (0 for discards).
    pub sampling_rate: u32,
    /// Header protocol (1 Ethernet, 11 IPv4, 12 IPv6, ...).
    pub protocol: u32,
    /// Length of the packet on the wire (`frame_length`).
    pub frame_length: u32,
    /// Bytes removed from the packet before sampling (e.g. the FCS).
    pub stripped: u32,
    /// The sampled header bytes.
    pub header: &'a [u8],
}

impl SampledHeader<'_> {
    /// The packet's length as pcap's `orig_len`: `frame_length - stripped`,
    /// never less than the captured header.
    pub fn orig_len(&self) -> u32 {
        self.frame_length.saturating_sub(self.stripped).max(self.header.len() as u32)
    }
}

/// What one datagram held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalkStats {
    /// Samples of any kind.
    pub samples: u64,
    /// Flow, expanded flow and discard samples.
    pub packet_samples: u64,
    /// Raw packet header records handed to the callback.
    pub headers: u64,
}

/// Why a datagram could not be walked to its end (everything before the
/// problem was still handed over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkError {
    /// Byte offset in the datagram.
    pub offset: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "offset {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for WalkError {}

impl From<Problem> for WalkError {
    fn from(p: Problem) -> Self {
        WalkError { offset: p.offset, kind: p.kind }
    }
}

/// Most samples and records walked in one datagram (a datagram of 64 KiB
/// cannot hold more than this many 8-byte sample headers anyway).
const MAX_ITEMS: u32 = 8192;

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Walks one sFlow v5 datagram; see the module docs. Reads with the
/// decoder's own XDR reader, datagram header and sample framing.
pub fn sampled_headers<'a>(
    datagram: &'a [u8],
    mut f: impl FnMut(&SampledHeader<'a>),
) -> Result<WalkStats, WalkError> {
    let mut st = WalkStats::default();
    let mut rd = Reader::new(datagram, 0);
    let h = parse_header(&mut rd)?;
    for _ in 0..h.samples.min(MAX_ITEMS) {
        let (tag, mut s) = sample_frame(&mut rd)?;
        st.samples += 1;
        let (enterprise, format) = (tag >> 12, tag & 0xfff);
        if enterprise != 0 || !matches!(format, 1 | 3 | 5) {
            continue;
        }
        st.packet_samples += 1;
        // Skip to the record count; take the sampling rate on the way.
        let rate = match format {
            1 => be32(&s.bytes("sFlow flow sample", 28)?[8..]),
            3 => be32(&s.bytes("sFlow expanded flow sample", 40)?[12..]),
            // Discard: sequence, expanded source id (2 words), drops,
            // input, output, reason.
            _ => {
                s.bytes("sFlow discard sample", 28)?;
                0
            }
        };
        let records = s.u32("sFlow flow record count")?;
        for _ in 0..records.min(MAX_ITEMS) {
            let rtag = s.u32("sFlow flow record header")?;
            let rlen = s.u32("sFlow flow record header")? as usize;
            let mut r = s.sub("sFlow flow record", rlen)?;
            if rtag != 1 {
                continue;
            }
            const W: &str = "sFlow raw packet header record";
            let protocol = r.u32(W)?;
            let frame_length = r.u32(W)?;
            let stripped = r.u32(W)?;
            let hlen = r.u32(W)? as usize;
            let header = r.bytes("sFlow sampled header", hlen)?;
            st.headers += 1;
            f(&SampledHeader {
                agent: h.agent,
                sub_agent: h.sub_agent,
                sample_format: format,
                sampling_rate: rate,
                protocol,
                frame_length,
                stripped,
                header,
            });
        }
    }
    Ok(st)
}

/// The header as an Ethernet frame into `buf`: `Some(frame)` for header
/// protocols 1 (Ethernet, as is), 11 (IPv4) and 12 (IPv6) (behind a
/// synthetic Ethernet header with zero MACs), `None` for other protocols
/// (802.11, PPP, ...). Also returns the original length on the wire of
/// that frame.
pub fn to_ethernet<'b>(h: &SampledHeader<'_>, buf: &'b mut Vec<u8>) -> Option<(&'b [u8], u32)> {
    buf.clear();
    let ethertype: u16 = match h.protocol {
        1 => {
            buf.extend_from_slice(h.header);
            return Some((buf, h.orig_len()));
        }
        11 => 0x0800,
        12 => 0x86dd,
        _ => return None,
    };
    buf.extend_from_slice(&[0u8; 12]);
    buf.extend_from_slice(&ethertype.to_be_bytes());
    buf.extend_from_slice(h.header);
    Some((buf, h.orig_len().saturating_add(14)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn be(v: u32) -> [u8; 4] {
        v.to_be_bytes()
    }

    /// A datagram with a counter sample, a flow sample holding an
    /// extended record and a raw header, and an expanded flow sample
    /// holding an IPv4 header.
    fn datagram() -> Vec<u8> {
        let mut d = Vec::new();
        for v in [5, 1] {
            d.extend(be(v));
        }
        d.extend([192, 0, 2, 1]);
        for v in [7, 100, 5000, 3] {
            d.extend(be(v));
        }
        // counters sample (format 2), 8 bytes of body
        d.extend(be(2));
        d.extend(be(8));
        d.extend([0u8; 8]);
        // flow sample
        let mut fs = Vec::new();
        for v in [1, 5, 512, 1000, 0, 3, 4, 2] {
            fs.extend(be(v));
        }
        fs.extend(be(1001)); // extended switch
        fs.extend(be(16));
        fs.extend([0u8; 16]);
        let hdr = [0xabu8; 18];
        fs.extend(be(1));
        fs.extend(be(16 + 20));
        for v in [1, 1518, 4, 18] {
            fs.extend(be(v));
        }
        fs.extend(hdr);
        fs.extend([0, 0]);
        d.extend(be(1));
        d.extend(be(fs.len() as u32));
        d.extend(fs);
        // expanded flow sample, IPv4 header protocol
        let mut es = Vec::new();
        for v in [2, 0, 9, 64, 100, 0, 0, 1, 0, 2, 1] {
            es.extend(be(v));
        }
        es.extend(be(1));
        es.extend(be(16 + 20));
        for v in [11, 60, 0, 20] {
            es.extend(be(v));
        }
        es.extend([0x45; 20]);
        d.extend(be(3));
        d.extend(be(es.len() as u32));
        d.extend(es);
        d
    }

    #[test]
    fn walks_flow_and_expanded_samples() {
        let d = datagram();
        let mut seen = Vec::new();
        let st = sampled_headers(&d, |h| {
            seen.push((h.protocol, h.sampling_rate, h.header.len(), h.orig_len()))
        })
        .unwrap();
        assert_eq!((st.samples, st.packet_samples, st.headers), (3, 2, 2));
        assert_eq!(seen, vec![(1, 512, 18, 1514), (11, 64, 20, 60)]);
        let mut buf = Vec::new();
        let mut hs = Vec::new();
        sampled_headers(&d, |h| {
            hs.push((h.protocol, h.header.to_vec(), h.frame_length, h.stripped))
        })
        .unwrap();
        let h = SampledHeader {
            agent: IpAddr::V4(Ipv4Addr::LOCALHOST),
            sub_agent: 0,
            sample_format: 1,
            sampling_rate: 1,
            protocol: 11,
            frame_length: 60,
            stripped: 0,
            header: &hs[1].1,
        };
        let (frame, orig) = to_ethernet(&h, &mut buf).unwrap();
        assert_eq!((frame.len(), &frame[12..14], orig), (34, &[8u8, 0][..], 74));
        assert!(to_ethernet(&SampledHeader { protocol: 2, ..h }, &mut buf).is_none());
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        let d = datagram();
        for n in 0..d.len() {
            let mut count = 0;
            let r = sampled_headers(&d[..n], |_| count += 1);
            assert!(r.is_err() || count <= 2, "cut at {n}");
        }
        let mut bad = d.clone();
        bad[3] = 4;
        assert!(sampled_headers(&bad, |_| {}).is_err());
        // An absurd sample count is bounded.
        let mut big = d[..28].to_vec();
        big[24..28].copy_from_slice(&be(u32::MAX));
        assert!(sampled_headers(&big, |_| {}).is_err());
    }
}
