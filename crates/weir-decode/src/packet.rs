//! Zero-copy, allocation-free parsing of captured packet headers.
//!
//! sFlow raw-header records, `weir pcap` and the capture reader all hold
//! the first bytes of a packet and want the flow key out of them. This
//! module walks those bytes once, from Ethernet (or straight from IPv4 /
//! IPv6), and fills a small [`Headers`] value. It never fails: it parses as
//! far as the bytes go and says in [`Headers::stop`] why it stopped, so a
//! header cut after the IP addresses still yields the addresses.
//!
//! Layers understood:
//!
//! ```text
//! Ethernet II ─┬─ 802.1Q / 802.1ad / 0x9100 tags (any number; outer and inner id kept)
//!              ├─ MPLS 0x8847/0x8848 (up to 10 entries kept; the payload is guessed
//!              │   to be IPv4/IPv6 from its first nibble)
//!              ├─ IPv4 (options skipped; only a first fragment has ports)
//!              └─ IPv6 (hop-by-hop, routing, fragment, destination options and AH
//!                  extension headers skipped; stops at ESP / no-next-header)
//!                    └─ TCP (ports, flags incl. CWR/ECE), UDP, SCTP (ports),
//!                       ICMP / ICMPv6 (type and code)
//! ```
//!
//! VXLAN (UDP 4789) is not entered by default: [`vxlan_inner`] parses the
//! inner frame on request.
//!
//! ICMP follows nfdump: the source port is 0 and the destination port
//! holds `type << 8 | code`. Addresses are `u128` as everywhere in weir
//! (IPv4 mapped into `::ffff:0:0/96`, see [`weir_record::ip_to_u128`]).
//!
//! ```
//! use weir_decode::packet::{parse_ethernet, Stop};
//! // Ethernet + IPv4 + UDP 53 -> 1234, cut right after the UDP ports.
//! let mut f = vec![0u8; 14 + 20 + 4];
//! f[12..14].copy_from_slice(&[0x08, 0x00]);
//! f[14] = 0x45;
//! f[14 + 9] = 17;
//! f[14 + 12..14 + 16].copy_from_slice(&[192, 0, 2, 1]);
//! f[14 + 16..14 + 20].copy_from_slice(&[192, 0, 2, 2]);
//! f[34..38].copy_from_slice(&[0, 53, 0x04, 0xd2]);
//! let h = parse_ethernet(&f);
//! let ip = h.ip.unwrap();
//! assert_eq!((ip.proto, h.transport.unwrap().src_port, h.transport.unwrap().dst_port), (17, 53, 1234));
//! assert_eq!(h.stop, Stop::Done);
//! ```

use weir_record::FlowRecord;

/// EtherTypes this parser follows.
mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const MPLS_UC: u16 = 0x8847;
    pub const MPLS_MC: u16 = 0x8848;
}

/// IP protocol numbers this parser follows.
mod ipproto {
    pub const HOPOPT: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const DSTOPTS: u8 = 60;
    pub const SCTP: u8 = 132;
}

/// Most MPLS label stack entries kept (FlowRecord has `mpls1..mpls10`).
pub const MAX_MPLS: usize = 10;

/// Most IPv6 extension headers walked before giving up. Real packets
/// carry two or three; the bound only keeps hostile chains short.
const MAX_IPV6_EXT: usize = 8;

/// Most VLAN tags skipped. QinQ uses two; more is either a lab or an
/// attack, and each tag costs only four bytes, so stop early.
const MAX_VLAN_TAGS: usize = 8;

/// Why the parser stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stop {
    /// Parsed everything it understands: the transport ports, or a layer it
    /// does not descend into (non-IP EtherType, ESP, a non-first fragment,
    /// an unknown IP protocol).
    #[default]
    Done,
    /// The bytes ended inside a header (normal for sampled headers).
    Truncated,
    /// A header field that cannot be right (IPv4 IHL < 5, wrong IP version).
    Malformed,
}

/// The MPLS label stack, top entry first.
///
/// Entries are stored as weir stores them: `label << 4 | exp << 1 | bos`
/// (the 32-bit stack entry without its TTL byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MplsStack {
    entries: [u32; MAX_MPLS],
    len: u8,
}

impl MplsStack {
    /// The entries, top of stack first.
    pub fn entries(&self) -> &[u32] {
        &self.entries[..usize::from(self.len)]
    }

    /// Whether the packet had no MPLS label.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of entries kept (at most [`MAX_MPLS`]).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Appends an entry; entries beyond [`MAX_MPLS`] are dropped.
    pub fn push(&mut self, entry: u32) {
        if let Some(slot) = self.entries.get_mut(usize::from(self.len)) {
            *slot = entry;
            self.len += 1;
        }
    }
}

/// The network layer of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpHeader {
    /// 4 or 6.
    pub version: u8,
    /// Source address (IPv4 mapped).
    pub src: u128,
    /// Destination address (IPv4 mapped).
    pub dst: u128,
    /// Transport protocol: IPv4 protocol field, or for IPv6 the next header
    /// after the extension headers that were skipped (e.g. 6, 17, 50).
    pub proto: u8,
    /// IPv4 type of service / IPv6 traffic class.
    pub tos: u8,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// Length of the IP packet: IPv4 total length, IPv6 payload length + 40.
    pub total_length: u32,
    /// Fragment offset in 8-byte units (IPv4, or the IPv6 fragment header).
    pub fragment_offset: u16,
    /// More-fragments flag.
    pub more_fragments: bool,
}

impl IpHeader {
    /// Whether the packet is a fragment (first or later).
    pub fn is_fragment(&self) -> bool {
        self.fragment_offset != 0 || self.more_fragments
    }
}

/// The transport layer: ports and TCP flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transport {
    /// Source port; 0 for ICMP.
    pub src_port: u16,
    /// Destination port; for ICMP/ICMPv6 `type << 8 | code`.
    pub dst_port: u16,
    /// TCP flags byte (CWR ECE URG ACK PSH RST SYN FIN); 0 if not TCP or
    /// the header was cut before it.
    pub tcp_flags: u8,
}

/// Everything parsed out of one packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Headers {
    /// Ethernet destination MAC (low 48 bits).
    pub dst_mac: Option<u64>,
    /// Ethernet source MAC (low 48 bits).
    pub src_mac: Option<u64>,
    /// VLAN id of the outermost tag.
    pub vlan: Option<u16>,
    /// VLAN id of the second tag (QinQ).
    pub inner_vlan: Option<u16>,
    /// The EtherType after the VLAN tags (0 if not Ethernet or cut short).
    pub ethertype: u16,
    /// MPLS label stack.
    pub mpls: MplsStack,
    /// Network layer, if IPv4 or IPv6 was found and its fixed header present.
    pub ip: Option<IpHeader>,
    /// Transport ports, if TCP, UDP, SCTP or ICMP(v6) of a non-fragment or
    /// first fragment was reached.
    pub transport: Option<Transport>,
    /// Why parsing stopped.
    pub stop: Stop,
    /// Offset in the parsed bytes where the UDP payload starts (UDP only,
    /// when the 8-byte UDP header was there). Used for [`vxlan_inner`].
    pub payload_offset: Option<usize>,
}

impl Headers {
    /// Copies what was parsed into a flow record: MACs (as `in_src_mac` /
    /// `in_dst_mac`), outer VLAN as `src_vlan`, MPLS entries, addresses,
    /// protocol, tos, ports and TCP flags. Fields not found are left as
    /// they are.
    pub fn fill(&self, rec: &mut FlowRecord) {
        if self.src_mac.is_some() {
            rec.in_src_mac = self.src_mac;
        }
        if self.dst_mac.is_some() {
            rec.in_dst_mac = self.dst_mac;
        }
        if self.vlan.is_some() {
            rec.src_vlan = self.vlan;
        }
        let slots = rec.mpls_mut();
        for (slot, e) in slots.into_iter().zip(self.mpls.entries()) {
            *slot = Some(*e);
        }
        if let Some(ip) = &self.ip {
            rec.src_addr = Some(ip.src);
            rec.dst_addr = Some(ip.dst);
            rec.proto = ip.proto;
            rec.src_tos = ip.tos;
        }
        if let Some(t) = &self.transport {
            rec.src_port = t.src_port;
            rec.dst_port = t.dst_port;
            rec.tcp_flags = t.tcp_flags;
        }
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

#[inline]
fn mac(b: &[u8]) -> u64 {
    b.iter().take(6).fold(0u64, |a, &x| a << 8 | u64::from(x))
}

/// How the network layer of a captured frame is found (see [`link_layer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3Kind {
    /// IPv4 or IPv6 by the version nibble (raw IP, BSD loopback).
    ByVersion,
    /// The link header's EtherType (0x0800 IPv4, 0x86dd IPv6, else not IP).
    Ether(u16),
    /// The frame ends inside the link header.
    Truncated,
}

/// Where the network layer of a frame starts, and how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLayer {
    /// Offset of the network header in the frame.
    pub offset: usize,
    /// How to tell its protocol.
    pub kind: L3Kind,
}

/// The link layer of the pcap link types other than Ethernet (1), whose
/// VLAN tags and MPLS labels callers walk themselves: raw IP (12, 14, 101),
/// raw IPv4 and IPv6 (228, 229), Linux cooked v1 (113) and v2 (276), BSD
/// loopback (0, 108). `None` for Ethernet and unknown link types.
pub fn link_layer(linktype: u32, frame: &[u8]) -> Option<LinkLayer> {
    let ether = |at: usize, offset: usize| {
        let kind = frame
            .get(at..at + 2)
            .map_or(L3Kind::Truncated, |s| L3Kind::Ether(u16::from_be_bytes([s[0], s[1]])));
        LinkLayer { offset, kind }
    };
    Some(match linktype {
        12 | 14 | 101 => LinkLayer { offset: 0, kind: L3Kind::ByVersion },
        228 => LinkLayer { offset: 0, kind: L3Kind::Ether(ethertype::IPV4) },
        229 => LinkLayer { offset: 0, kind: L3Kind::Ether(ethertype::IPV6) },
        // Linux cooked v1: protocol at 14 of a 16-byte header; v2: at 0 of 20.
        113 => ether(14, 16),
        276 => ether(0, 20),
        // BSD loopback: a 4-byte address family, in either byte order.
        0 | 108 => LinkLayer { offset: 4, kind: L3Kind::ByVersion },
        _ => return None,
    })
}

/// Parses a frame starting at the Ethernet II header.
pub fn parse_ethernet(frame: &[u8]) -> Headers {
    let mut h = Headers::default();
    let Some(eth) = frame.get(..14) else {
        h.stop = Stop::Truncated;
        return h;
    };
    h.dst_mac = Some(mac(&eth[0..6]));
    h.src_mac = Some(mac(&eth[6..12]));
    let mut et = u16::from_be_bytes([eth[12], eth[13]]);
    let mut off = 14;
    let mut tags = 0;
    while matches!(et, ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD) {
        let (Some(tci), Some(next)) = (be16(frame, off), be16(frame, off + 2)) else {
            h.ethertype = et;
            h.stop = Stop::Truncated;
            return h;
        };
        let id = tci & 0x0fff;
        match tags {
            0 => h.vlan = Some(id),
            1 => h.inner_vlan = Some(id),
            _ => {}
        }
        tags += 1;
        et = next;
        off += 4;
        if tags == MAX_VLAN_TAGS {
            break;
        }
    }
    h.ethertype = et;
    let rest = frame.get(off..).unwrap_or_default();
    match et {
        ethertype::IPV4 => ipv4(rest, &mut h),
        ethertype::IPV6 => ipv6(rest, &mut h),
        ethertype::MPLS_UC | ethertype::MPLS_MC => mpls(rest, &mut h),
        _ => {}
    }
    finish(frame, h)
}

/// `transport` stores the bytes left after the UDP header in
/// `payload_offset`; turn that into an offset from the start of `input`.
fn finish(input: &[u8], mut h: Headers) -> Headers {
    h.payload_offset = h.payload_offset.map(|left| input.len() - left);
    h
}

/// The VXLAN destination port (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;

/// The inner frame of a VXLAN packet (UDP to port 4789, RFC 7348), parsed:
/// `frame` and `outer` are the bytes and result of any `parse_*` call.
/// `None` if `outer` is not VXLAN or its 8-byte VXLAN header (with the
/// valid-VNI flag) is not there. Flow records keep the outer layers by
/// default, as tshark and nfdump show them; this is for callers that want
/// the tunnelled flow.
pub fn vxlan_inner(frame: &[u8], outer: &Headers) -> Option<Headers> {
    let t = outer.transport?;
    if outer.ip?.proto != ipproto::UDP || t.dst_port != VXLAN_PORT {
        return None;
    }
    let vx = frame.get(outer.payload_offset?..)?;
    let inner = vx.get(8..)?;
    (vx[0] & 0x08 != 0).then(|| parse_ethernet(inner))
}

/// Parses a packet starting at its IPv4 header (sFlow header protocol 11).
pub fn parse_ipv4(packet: &[u8]) -> Headers {
    let mut h = Headers::default();
    ipv4(packet, &mut h);
    finish(packet, h)
}

/// Parses a packet starting at its IPv6 header (sFlow header protocol 12).
pub fn parse_ipv6(packet: &[u8]) -> Headers {
    let mut h = Headers::default();
    ipv6(packet, &mut h);
    finish(packet, h)
}

/// Parses a packet starting at an IP header of either version, told apart
/// by the first nibble.
pub fn parse_ip(packet: &[u8]) -> Headers {
    let mut h = Headers::default();
    ip_by_nibble(packet, &mut h);
    finish(packet, h)
}

fn ip_by_nibble(b: &[u8], h: &mut Headers) {
    match b.first().map(|v| v >> 4) {
        Some(4) => ipv4(b, h),
        Some(6) => ipv6(b, h),
        Some(_) => h.stop = Stop::Done,
        None => h.stop = Stop::Truncated,
    }
}

fn mpls(b: &[u8], h: &mut Headers) {
    let mut off = 0;
    loop {
        let Some(s) = b.get(off..off + 4) else {
            h.stop = Stop::Truncated;
            return;
        };
        let e = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        h.mpls.push(e >> 8);
        off += 4;
        if e & 0x100 != 0 {
            break;
        }
    }
    ip_by_nibble(&b[off..], h);
}

fn ipv4(b: &[u8], h: &mut Headers) {
    let Some(hdr) = b.get(..20) else {
        h.stop = Stop::Truncated;
        return;
    };
    if hdr[0] >> 4 != 4 {
        h.stop = Stop::Malformed;
        return;
    }
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
    let v4 =
        |s: &[u8]| 0xffff_0000_0000u128 | u128::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
    let ip = IpHeader {
        version: 4,
        src: v4(&hdr[12..16]),
        dst: v4(&hdr[16..20]),
        proto: hdr[9],
        tos: hdr[1],
        ttl: hdr[8],
        total_length: u32::from(u16::from_be_bytes([hdr[2], hdr[3]])),
        fragment_offset: frag & 0x1fff,
        more_fragments: frag & 0x2000 != 0,
    };
    h.ip = Some(ip);
    if ihl < 20 {
        h.stop = Stop::Malformed;
        return;
    }
    if ip.fragment_offset != 0 {
        h.stop = Stop::Done;
        return;
    }
    match b.get(ihl..) {
        Some(l4) => transport(ip.proto, l4, h),
        None => h.stop = Stop::Truncated,
    }
}

fn ipv6(b: &[u8], h: &mut Headers) {
    let Some(hdr) = b.get(..40) else {
        h.stop = Stop::Truncated;
        return;
    };
    if hdr[0] >> 4 != 6 {
        h.stop = Stop::Malformed;
        return;
    }
    let addr = |s: &[u8]| {
        let mut a = [0u8; 16];
        a.copy_from_slice(s);
        u128::from_be_bytes(a)
    };
    let mut ip = IpHeader {
        version: 6,
        src: addr(&hdr[8..24]),
        dst: addr(&hdr[24..40]),
        proto: hdr[6],
        tos: (hdr[0] << 4) | (hdr[1] >> 4),
        ttl: hdr[7],
        total_length: u32::from(u16::from_be_bytes([hdr[4], hdr[5]])) + 40,
        fragment_offset: 0,
        more_fragments: false,
    };
    let mut off = 40;
    let mut later_fragment = false;
    for _ in 0..MAX_IPV6_EXT {
        let len = match ip.proto {
            ipproto::HOPOPT | ipproto::ROUTING | ipproto::DSTOPTS => {
                b.get(off + 1).map(|l| (usize::from(*l) + 1) * 8)
            }
            ipproto::AH => b.get(off + 1).map(|l| (usize::from(*l) + 2) * 4),
            ipproto::FRAGMENT => Some(8),
            _ => break,
        };
        let (Some(len), Some(&next)) = (len, b.get(off)) else {
            h.ip = Some(ip);
            h.stop = Stop::Truncated;
            return;
        };
        if ip.proto == ipproto::FRAGMENT {
            let Some(f) = be16(b, off + 2) else {
                h.ip = Some(ip);
                h.stop = Stop::Truncated;
                return;
            };
            ip.fragment_offset = f >> 3;
            ip.more_fragments = f & 1 != 0;
            later_fragment = ip.fragment_offset != 0;
        }
        ip.proto = next;
        off += len;
        if later_fragment {
            break;
        }
    }
    h.ip = Some(ip);
    if later_fragment {
        h.stop = Stop::Done;
        return;
    }
    match b.get(off..) {
        Some(l4) => transport(ip.proto, l4, h),
        None => h.stop = Stop::Truncated,
    }
}

fn transport(proto: u8, b: &[u8], h: &mut Headers) {
    match proto {
        ipproto::TCP | ipproto::UDP | ipproto::SCTP => {
            let (Some(sp), Some(dp)) = (be16(b, 0), be16(b, 2)) else {
                h.stop = Stop::Truncated;
                return;
            };
            let mut t = Transport { src_port: sp, dst_port: dp, tcp_flags: 0 };
            h.stop = Stop::Done;
            if proto == ipproto::TCP {
                match b.get(13) {
                    Some(f) => t.tcp_flags = *f,
                    None => h.stop = Stop::Truncated,
                }
            }
            if proto == ipproto::UDP {
                h.payload_offset = b.get(8..).map(<[u8]>::len);
            }
            h.transport = Some(t);
        }
        ipproto::ICMP | ipproto::ICMPV6 => match be16(b, 0) {
            Some(tc) => {
                h.transport = Some(Transport { src_port: 0, dst_port: tc, tcp_flags: 0 });
                h.stop = Stop::Done;
            }
            None => h.stop = Stop::Truncated,
        },
        _ => h.stop = Stop::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use weir_record::ip_to_u128;

    fn ip(s: &str) -> u128 {
        ip_to_u128(s.parse::<IpAddr>().unwrap())
    }

    const DST: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
    const SRC: [u8; 6] = [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb];

    fn eth(ethertype: u16) -> Vec<u8> {
        let mut f = DST.to_vec();
        f.extend_from_slice(&SRC);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn ipv4_hdr(proto: u8, frag: u16, options: usize, payload: usize) -> Vec<u8> {
        let ihl = 20 + options;
        let total = (ihl + payload) as u16;
        let mut h = vec![0x40 | (ihl / 4) as u8, 0xb8];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34]);
        h.extend_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[64, proto, 0, 0]);
        h.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        h.resize(ihl, 1); // NOP options
        h
    }

    fn ipv6_hdr(next: u8, payload: u16) -> Vec<u8> {
        let mut h = vec![0x6a, 0xb0, 0, 0];
        h.extend_from_slice(&payload.to_be_bytes());
        h.extend_from_slice(&[next, 63]);
        let s: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
        h.extend_from_slice(&s.octets());
        h.extend_from_slice(&d.octets());
        h
    }

    fn tcp(sp: u16, dp: u16, flags: u8) -> Vec<u8> {
        let mut t = sp.to_be_bytes().to_vec();
        t.extend_from_slice(&dp.to_be_bytes());
        t.extend_from_slice(&[0; 8]);
        t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t
    }

    fn udp(sp: u16, dp: u16) -> Vec<u8> {
        let mut t = sp.to_be_bytes().to_vec();
        t.extend_from_slice(&dp.to_be_bytes());
        t.extend_from_slice(&[0, 8, 0, 0]);
        t
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let mut f = eth(0x0800);
        f.extend(ipv4_hdr(6, 0, 0, 20));
        f.extend(tcp(443, 51000, 0xc2));
        let h = parse_ethernet(&f);
        assert_eq!(h.dst_mac, Some(0x0011_2233_4455));
        assert_eq!(h.src_mac, Some(0x6677_8899_aabb));
        assert_eq!(h.vlan, None);
        assert_eq!(h.ethertype, 0x0800);
        let ipv = h.ip.unwrap();
        assert_eq!((ipv.version, ipv.src, ipv.dst), (4, ip("10.0.0.1"), ip("10.0.0.2")));
        assert_eq!((ipv.proto, ipv.tos, ipv.ttl, ipv.total_length), (6, 0xb8, 64, 40));
        assert!(!ipv.is_fragment());
        assert_eq!(
            h.transport,
            Some(Transport { src_port: 443, dst_port: 51000, tcp_flags: 0xc2 })
        );
        assert_eq!(h.stop, Stop::Done);

        let mut rec = FlowRecord::default();
        h.fill(&mut rec);
        assert_eq!(rec.src_addr, Some(ip("10.0.0.1")));
        assert_eq!(
            (rec.proto, rec.src_port, rec.dst_port, rec.tcp_flags, rec.src_tos),
            (6, 443, 51000, 0xc2, 0xb8)
        );
        assert_eq!(
            (rec.in_src_mac, rec.in_dst_mac),
            (Some(0x6677_8899_aabb), Some(0x0011_2233_4455))
        );
        assert_eq!(rec.mpls1, None);
    }

    #[test]
    fn ipv4_options_are_skipped() {
        let mut p = ipv4_hdr(17, 0, 12, 8);
        p.extend(udp(53, 5353));
        let h = parse_ipv4(&p);
        assert_eq!(h.transport.map(|t| (t.src_port, t.dst_port)), Some((53, 5353)));
        assert_eq!(h.stop, Stop::Done);
        assert_eq!(h.src_mac, None);
    }

    #[test]
    fn vlan_and_qinq() {
        for (outer, inner) in [(0x8100u16, None), (0x88a8, Some(0x8100u16)), (0x9100, Some(0x8100))]
        {
            let mut f = eth(outer);
            f.extend_from_slice(&(0xe000u16 | 100).to_be_bytes()); // PCP 7, VLAN 100
            match inner {
                Some(t) => {
                    f.extend_from_slice(&t.to_be_bytes());
                    f.extend_from_slice(&200u16.to_be_bytes());
                    f.extend_from_slice(&0x0800u16.to_be_bytes());
                }
                None => f.extend_from_slice(&0x0800u16.to_be_bytes()),
            }
            f.extend(ipv4_hdr(17, 0, 0, 8));
            f.extend(udp(1, 2));
            let h = parse_ethernet(&f);
            assert_eq!(h.vlan, Some(100), "{outer:#x}");
            assert_eq!(h.inner_vlan, inner.map(|_| 200));
            assert_eq!(h.ethertype, 0x0800);
            assert_eq!(h.transport.unwrap().dst_port, 2);
            let mut rec = FlowRecord::default();
            h.fill(&mut rec);
            assert_eq!(rec.src_vlan, Some(100));
        }
    }

    #[test]
    fn vlan_tag_cut_short() {
        let mut f = eth(0x8100);
        f.extend_from_slice(&[0, 5]);
        let h = parse_ethernet(&f);
        assert_eq!((h.stop, h.vlan, h.ip), (Stop::Truncated, None, None));
    }

    #[test]
    fn many_vlan_tags_are_bounded() {
        let mut f = eth(0x8100);
        for _ in 0..100 {
            f.extend_from_slice(&[0, 7, 0x81, 0x00]);
        }
        let h = parse_ethernet(&f);
        assert_eq!((h.vlan, h.inner_vlan, h.ethertype, h.ip), (Some(7), Some(7), 0x8100, None));
    }

    fn mpls_entry(label: u32, exp: u32, bos: bool, ttl: u8) -> [u8; 4] {
        (label << 12 | exp << 9 | u32::from(bos) << 8 | u32::from(ttl)).to_be_bytes()
    }

    #[test]
    fn mpls_stack_then_ipv4_and_ipv6() {
        let mut f = eth(0x8847);
        f.extend_from_slice(&mpls_entry(1000, 5, false, 64));
        f.extend_from_slice(&mpls_entry(2000, 0, true, 64));
        f.extend(ipv4_hdr(17, 0, 0, 8));
        f.extend(udp(10, 20));
        let h = parse_ethernet(&f);
        assert_eq!(h.mpls.entries(), &[1000 << 4 | 5 << 1, 2000 << 4 | 1]);
        assert_eq!(h.ip.unwrap().version, 4);
        assert_eq!(h.transport.unwrap().src_port, 10);
        let mut rec = FlowRecord::default();
        h.fill(&mut rec);
        assert_eq!((rec.mpls1, rec.mpls2, rec.mpls3), (Some(16010), Some(32001), None));

        let mut f = eth(0x8848);
        f.extend_from_slice(&mpls_entry(3, 0, true, 1));
        f.extend(ipv6_hdr(17, 8));
        f.extend(udp(10, 20));
        let h = parse_ethernet(&f);
        assert_eq!(h.mpls.len(), 1);
        assert_eq!(h.ip.unwrap().version, 6);
        assert_eq!(h.transport.unwrap().dst_port, 20);
    }

    #[test]
    fn mpls_deep_stack_keeps_ten_and_non_ip_payload() {
        let mut f = eth(0x8847);
        for i in 0..12 {
            f.extend_from_slice(&mpls_entry(i + 16, 0, i == 11, 64));
        }
        f.extend_from_slice(&[0x00, 0, 0, 0]); // pseudowire control word
        let h = parse_ethernet(&f);
        assert_eq!(h.mpls.len(), MAX_MPLS);
        assert_eq!(h.mpls.entries()[9], 25 << 4);
        assert_eq!((h.ip, h.stop), (None, Stop::Done));
        // Bottom of stack never reached.
        let mut f = eth(0x8847);
        f.extend_from_slice(&mpls_entry(16, 0, false, 64));
        f.extend_from_slice(&[0, 1]);
        assert_eq!(parse_ethernet(&f).stop, Stop::Truncated);
    }

    #[test]
    fn ipv4_fragments() {
        // First fragment (MF, offset 0): ports present.
        let mut p = ipv4_hdr(17, 0x2000, 0, 8);
        p.extend(udp(500, 4500));
        let h = parse_ipv4(&p);
        let ipv = h.ip.unwrap();
        assert!(ipv.is_fragment() && ipv.more_fragments && ipv.fragment_offset == 0);
        assert_eq!(h.transport.unwrap().dst_port, 4500);
        // Later fragment: payload bytes are not a UDP header.
        let mut p = ipv4_hdr(17, 185, 0, 8);
        p.extend(udp(500, 4500));
        let h = parse_ipv4(&p);
        assert_eq!(h.ip.unwrap().fragment_offset, 185);
        assert_eq!((h.transport, h.stop), (None, Stop::Done));
    }

    #[test]
    fn ipv6_extension_headers() {
        // hop-by-hop (8) -> routing (24) -> dst opts (16) -> AH (16) -> TCP
        let mut p = ipv6_hdr(0, 0);
        p.extend_from_slice(&[43, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[60, 2, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&[51, 1, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[6, 2, 0, 0, 0, 0, 0, 0]); // AH: (2+2)*4 = 16
        p.extend_from_slice(&[0; 8]);
        p.extend(tcp(22, 40000, 0x12));
        let h = parse_ipv6(&p);
        let ipv = h.ip.unwrap();
        assert_eq!((ipv.version, ipv.proto, ipv.tos, ipv.ttl), (6, 6, 0xab, 63));
        assert_eq!(ipv.src, ip("2001:db8::1"));
        assert_eq!(h.transport, Some(Transport { src_port: 22, dst_port: 40000, tcp_flags: 0x12 }));
        assert_eq!(h.stop, Stop::Done);
    }

    #[test]
    fn ipv6_fragment_header() {
        let mut p = ipv6_hdr(44, 16);
        p.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 9]); // offset 0, M
        p.extend(udp(7, 8));
        let h = parse_ipv6(&p);
        assert!(h.ip.unwrap().more_fragments);
        assert_eq!(h.transport.unwrap().dst_port, 8);

        let mut p = ipv6_hdr(44, 16);
        p.extend_from_slice(&[17, 0, 0x05, 0x00, 0, 0, 0, 9]); // offset 160
        p.extend(udp(7, 8));
        let h = parse_ipv6(&p);
        assert_eq!(h.ip.unwrap().fragment_offset, 160);
        assert_eq!(h.ip.unwrap().proto, 17);
        assert_eq!((h.transport, h.stop), (None, Stop::Done));
    }

    #[test]
    fn ipv6_esp_and_no_next_stop() {
        for next in [50u8, 59] {
            let mut p = ipv6_hdr(next, 8);
            p.extend_from_slice(&[0; 8]);
            let h = parse_ipv6(&p);
            assert_eq!((h.ip.unwrap().proto, h.transport, h.stop), (next, None, Stop::Done));
        }
    }

    #[test]
    fn ipv6_extension_header_cut_short() {
        let mut p = ipv6_hdr(0, 8);
        p.push(6);
        let h = parse_ipv6(&p);
        assert_eq!((h.ip.unwrap().proto, h.stop), (0, Stop::Truncated));
        let mut p = ipv6_hdr(0, 8);
        p.extend_from_slice(&[6, 3]); // claims 32 bytes
        assert_eq!(parse_ipv6(&p).stop, Stop::Truncated);
    }

    #[test]
    fn icmp_and_icmpv6() {
        let mut f = eth(0x0800);
        f.extend(ipv4_hdr(1, 0, 0, 8));
        f.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
        let h = parse_ethernet(&f);
        assert_eq!(h.transport, Some(Transport { src_port: 0, dst_port: 0x0800, tcp_flags: 0 }));

        let mut f = eth(0x86dd);
        f.extend(ipv6_hdr(58, 8));
        f.extend_from_slice(&[1, 4, 0, 0]);
        let h = parse_ethernet(&f);
        assert_eq!(h.ip.unwrap().total_length, 48);
        assert_eq!(h.transport.unwrap().dst_port, 0x0104);
    }

    #[test]
    fn truncated_everywhere_never_panics() {
        let mut f = eth(0x8100);
        f.extend_from_slice(&[0, 10, 0x88, 0x47]);
        f.extend_from_slice(&mpls_entry(16, 0, true, 1));
        f.extend(ipv6_hdr(0, 40));
        f.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        f.extend(tcp(1, 2, 0x02));
        let full = parse_ethernet(&f);
        assert_eq!((full.stop, full.transport.unwrap().tcp_flags), (Stop::Done, 2));
        // The TCP flags are byte 13 of the 20-byte TCP header.
        for n in 0..f.len() - 6 {
            let h = parse_ethernet(&f[..n]);
            assert_eq!(h.stop, Stop::Truncated, "cut at {n}");
            assert!(h.transport.is_none() || n >= f.len() - 16);
        }
        let mut p = ipv4_hdr(6, 0, 8, 20);
        p.extend(tcp(1, 2, 0x11));
        for n in 0..p.len() - 6 {
            let h = parse_ip(&p[..n]);
            assert_eq!(h.stop, Stop::Truncated, "cut at {n}");
            assert_eq!(h.ip.is_some(), n >= 20);
        }
        // Ports without flags.
        let h = parse_ip(&p[..32]);
        assert_eq!(h.transport, Some(Transport { src_port: 1, dst_port: 2, tcp_flags: 0 }));
    }

    #[test]
    fn malformed_and_non_ip() {
        let mut p = ipv4_hdr(6, 0, 0, 0);
        p[0] = 0x43;
        let h = parse_ipv4(&p);
        assert_eq!(h.stop, Stop::Malformed);
        p[0] = 0x65;
        assert_eq!(parse_ipv4(&p).stop, Stop::Malformed);
        assert_eq!(parse_ipv6(&ipv6_hdr(6, 0)[..]).stop, Stop::Truncated);
        let mut v = ipv6_hdr(59, 0);
        v[0] = 0x45;
        assert_eq!(parse_ipv6(&v).stop, Stop::Malformed);
        let mut f = eth(0x0806); // ARP
        f.extend_from_slice(&[0; 28]);
        let h = parse_ethernet(&f);
        assert_eq!((h.ip, h.stop, h.ethertype), (None, Stop::Done, 0x0806));
        assert_eq!(parse_ip(&[0x10]).stop, Stop::Done);
        assert_eq!(parse_ip(&[]).stop, Stop::Truncated);
    }

    #[test]
    fn vxlan_inner_frame() {
        let mut inner = eth(0x0800);
        inner.extend(ipv4_hdr(6, 0, 0, 20));
        inner.extend(tcp(80, 1234, 0x02));
        let mut f = eth(0x0800);
        f.extend(ipv4_hdr(17, 0, 0, 16 + inner.len()));
        f.extend(udp(45833, 4789));
        f.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 42, 0]);
        f.extend_from_slice(&inner);
        let outer = parse_ethernet(&f);
        assert_eq!(outer.transport.unwrap().dst_port, 4789);
        assert_eq!(outer.payload_offset, Some(14 + 20 + 8));
        let h = vxlan_inner(&f, &outer).unwrap();
        assert_eq!((h.ip.unwrap().proto, h.transport.unwrap().src_port), (6, 80));
        // Not VXLAN: other port, missing flag, cut header.
        let mut g = f.clone();
        g[14 + 20 + 3] = 0x35;
        assert_eq!(vxlan_inner(&g, &parse_ethernet(&g)), None);
        let mut g = f.clone();
        g[14 + 20 + 8] = 0;
        assert_eq!(vxlan_inner(&g, &parse_ethernet(&g)), None);
        let g = &f[..14 + 20 + 8 + 4];
        assert_eq!(vxlan_inner(g, &parse_ethernet(g)), None);
        // From the IP layer the offset is relative to the IP header.
        let p = parse_ip(&f[14..]);
        assert_eq!(p.payload_offset, Some(28));
        assert!(vxlan_inner(&f[14..], &p).is_some());
    }

    #[test]
    fn unknown_ip_protocol_is_done() {
        let mut p = ipv4_hdr(47, 0, 0, 4); // GRE
        p.extend_from_slice(&[0, 0, 0x08, 0]);
        let h = parse_ipv4(&p);
        assert_eq!((h.ip.unwrap().proto, h.transport, h.stop), (47, None, Stop::Done));
    }
}
