//! Writing a pcap stream (the classic libpcap format, microsecond
//! timestamps, little-endian), which every tcpdump, tshark and Wireshark
//! reads, also from a pipe (`tcpdump -r -`).

use std::io::{self, Write};
use std::net::SocketAddrV4;

/// Link type 1: Ethernet.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Link type 101: frames that start with the IP header.
pub const LINKTYPE_RAW: u32 = 101;

/// Largest UDP payload of one IPv4 packet.
pub const MAX_UDP4_PAYLOAD: usize = 65_507;

/// The IPv4 + UDP packet carrying `payload` from `src` to `dst`, into
/// `out` (cleared first): no IP options, identification and header
/// checksum 0 (the kernel fills both in for a raw socket; readers of a
/// capture do not check them), TTL 64, UDP checksum 0 (none, allowed over
/// IPv4). `payload` is cut to [`MAX_UDP4_PAYLOAD`].
pub fn ipv4_udp_packet(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8], out: &mut Vec<u8>) {
    let payload = &payload[..payload.len().min(MAX_UDP4_PAYLOAD)];
    out.clear();
    let total = (20 + 8 + payload.len()) as u16;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    out.extend_from_slice(&src.ip().octets());
    out.extend_from_slice(&dst.ip().octets());
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out.extend_from_slice(&(total - 20).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
}

/// Largest snap length announced in the file header (tcpdump's default).
const SNAPLEN: u32 = 262_144;

/// A pcap stream being written.
pub struct PcapWriter<W: Write> {
    out: W,
    packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte file header and returns the writer.
    pub fn new(mut out: W, linktype: u32) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, packets: 0 })
    }

    /// Continues a pcap stream whose file header (and earlier packets) are
    /// already in `out` (a file opened for appending).
    pub fn resume(out: W) -> Self {
        PcapWriter { out, packets: 0 }
    }

    /// Writes one packet: capture time (ns since the epoch), its length
    /// on the wire and the captured bytes (cut to the snap length; the
    /// original length is never less than what was captured).
    pub fn packet(&mut self, ts_ns: u64, orig_len: u32, data: &[u8]) -> io::Result<()> {
        let data = &data[..data.len().min(SNAPLEN as usize)];
        let incl = data.len() as u32;
        let secs = u32::try_from(ts_ns / 1_000_000_000).unwrap_or(u32::MAX);
        let usecs = ((ts_ns % 1_000_000_000) / 1000) as u32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&usecs.to_le_bytes());
        h[8..12].copy_from_slice(&incl.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.max(incl).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        self.packets += 1;
        Ok(())
    }

    /// Packets written so far (by this writer).
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes the underlying writer (after each datagram when streaming
    /// into a pipe).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_udp_packets_byte_by_byte() {
        let mut p = Vec::new();
        let src: SocketAddrV4 = "192.0.2.7:2055".parse().unwrap();
        let to: SocketAddrV4 = "198.51.100.9:9995".parse().unwrap();
        ipv4_udp_packet(src, to, b"abc", &mut p);
        assert_eq!(
            p,
            [
                0x45, 0, 0, 31, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 7, 198, 51, 100,
                9, // IPv4
                0x08, 0x07, 0x27, 0x0b, 0, 11, 0, 0, // UDP
                b'a', b'b', b'c',
            ]
        );
        let big = vec![0u8; MAX_UDP4_PAYLOAD + 1];
        ipv4_udp_packet(src, to, &big, &mut p);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 65_535);
        assert_eq!(u16::from_be_bytes([p[24], p[25]]), 65_515);
    }
}
