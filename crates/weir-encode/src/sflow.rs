//! sFlow v5 encoder: datagrams of flow and counter samples, and the packet
//! headers that go into raw-header records.
//!
//! Written from the sFlow v5 specification (sflow.org/sflow_version_5.txt):
//! XDR encoding, every field a big-endian `u32` (or `u64`), opaque data
//! padded to four bytes, each sample and record prefixed by
//! `enterprise << 12 | format` and its length.
//!
//! Three layers, each usable alone:
//! * [`Packet`] builds an Ethernet (VLAN / QinQ / MPLS) + IPv4|IPv6 +
//!   TCP|UDP|ICMP frame from a flow-like description ([`Packet::from_flow`]
//!   takes a [`FlowRecord`]) and turns it into a raw packet header record;
//! * [`Datagram`], [`Sample`], [`FlowSample`], [`CountersSample`] and the
//!   record enums describe a datagram field by field and [`Datagram::encode`]
//!   writes it;
//! * [`Agent`] hands out correct datagram and per-source sample sequence
//!   numbers and sample pools, as a real agent would (what a load generator
//!   needs).
//!
//! ```
//! use weir_encode::sflow::{Agent, FlowData, Interface, Packet};
//! let mut agent = Agent::new("192.0.2.1".parse().unwrap(), 0);
//! let pkt = Packet::udp("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), 53, 4242);
//! let s = agent.flow_sample(3, 1024, Interface::Index(3), Interface::Index(7), vec![pkt.raw_header(128)]);
//! let bytes = agent.datagram(1_000, vec![s]).encode();
//! assert_eq!(&bytes[..4], &[0, 0, 0, 5]);
//! ```

use std::collections::HashMap;
use std::net::IpAddr;

use weir_record::{FlowRecord, u128_to_ip};

/// Sample formats (enterprise 0).
const FLOW_SAMPLE: u32 = 1;
const COUNTERS_SAMPLE: u32 = 2;
const EXPANDED_FLOW_SAMPLE: u32 = 3;
const EXPANDED_COUNTERS_SAMPLE: u32 = 4;

/// One sFlow v5 datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Agent address (IPv4 or IPv6).
    pub agent: IpAddr,
    /// Sub-agent id.
    pub sub_agent: u32,
    /// Datagram sequence number.
    pub sequence: u32,
    /// Agent uptime in ms.
    pub uptime_ms: u32,
    /// The samples.
    pub samples: Vec<Sample>,
}

/// A sample of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// A flow sample (format 1, or 3 when `expanded`).
    Flow(FlowSample),
    /// A counter sample (format 2, or 4 when `expanded`).
    Counters(CountersSample),
    /// Any other sample, written as given.
    Other {
        /// Enterprise number (20 bits).
        enterprise: u32,
        /// Format number (12 bits).
        format: u32,
        /// The sample body.
        data: Vec<u8>,
    },
}

/// An interface field of a flow sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// Format 0: an ifIndex (`0x3FFFFFFF` = the agent itself).
    Index(u32),
    /// Format 1: the packet was discarded, with this reason code.
    Discarded(u32),
    /// Format 2: sent to this many interfaces (0 = unknown).
    Multiple(u32),
}

impl Interface {
    /// The agent itself (internal interface).
    pub const LOCAL: Interface = Interface::Index(0x3fff_ffff);

    /// The (format, value) pair of the expanded encoding.
    pub fn expanded(self) -> (u32, u32) {
        match self {
            Interface::Index(v) => (0, v),
            Interface::Discarded(v) => (1, v),
            Interface::Multiple(v) => (2, v),
        }
    }

    /// The compact 32-bit encoding: `format << 30 | value` (value cut to 30 bits).
    pub fn compact(self) -> u32 {
        let (f, v) = self.expanded();
        f << 30 | (v & 0x3fff_ffff)
    }
}

/// A flow sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSample {
    /// Expanded format (3) instead of compact (1).
    pub expanded: bool,
    /// Sample sequence number (per source).
    pub sequence: u32,
    /// Source id type (0 = ifIndex; 8 bits).
    pub source_type: u32,
    /// Source id index (24 bits in the compact format).
    pub source_index: u32,
    /// Sampling rate (1 in N).
    pub sampling_rate: u32,
    /// Packets that could have been sampled so far.
    pub sample_pool: u32,
    /// Samples dropped for lack of resources.
    pub drops: u32,
    /// Input interface.
    pub input: Interface,
    /// Output interface.
    pub output: Interface,
    /// Flow records.
    pub records: Vec<FlowData>,
}

/// A flow record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowData {
    /// Raw packet header (format 1).
    RawHeader {
        /// Header protocol: 1 Ethernet, 11 IPv4, 12 IPv6.
        protocol: u32,
        /// Length of the original frame (with FCS for Ethernet).
        frame_length: u32,
        /// Bytes removed from the end of the frame (the FCS: 4).
        stripped: u32,
        /// The first bytes of the frame.
        header: Vec<u8>,
    },
    /// Sampled Ethernet frame (format 2).
    SampledEthernet {
        /// Frame length.
        length: u32,
        /// Source MAC (low 48 bits).
        src_mac: u64,
        /// Destination MAC (low 48 bits).
        dst_mac: u64,
        /// EtherType.
        ethertype: u32,
    },
    /// Sampled IPv4 (format 3) or IPv6 (format 4) packet, by address family.
    SampledIp {
        /// Length of the IP packet.
        length: u32,
        /// IP protocol.
        proto: u32,
        /// Source address.
        src: IpAddr,
        /// Destination address (same family as `src`).
        dst: IpAddr,
        /// Source port.
        src_port: u32,
        /// Destination port.
        dst_port: u32,
        /// TCP flags.
        tcp_flags: u32,
        /// IPv4 TOS / IPv6 priority.
        tos: u32,
    },
    /// Extended switch data (format 1001).
    Switch {
        /// Incoming 802.1Q VLAN.
        src_vlan: u32,
        /// Incoming 802.1p priority.
        src_priority: u32,
        /// Outgoing VLAN.
        dst_vlan: u32,
        /// Outgoing priority.
        dst_priority: u32,
    },
    /// Extended router data (format 1002).
    Router {
        /// IP next hop (`None` = address type 0, unknown).
        next_hop: Option<IpAddr>,
        /// Source prefix length.
        src_mask: u32,
        /// Destination prefix length.
        dst_mask: u32,
    },
    /// Extended gateway data (format 1003).
    Gateway {
        /// BGP next hop.
        next_hop: Option<IpAddr>,
        /// The router's own AS.
        as_number: u32,
        /// Source AS.
        src_as: u32,
        /// Source peer AS.
        src_peer_as: u32,
        /// Destination AS path.
        as_path: Vec<AsPathSegment>,
        /// BGP communities.
        communities: Vec<u32>,
        /// Local preference.
        local_pref: u32,
    },
    /// Any other record, written as given.
    Other {
        /// Enterprise number.
        enterprise: u32,
        /// Format number.
        format: u32,
        /// Record body.
        data: Vec<u8>,
    },
}

/// One segment of a BGP AS path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsPathSegment {
    /// 1 = AS_SET, 2 = AS_SEQUENCE.
    pub kind: u32,
    /// The AS numbers.
    pub asns: Vec<u32>,
}

/// A counter sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountersSample {
    /// Expanded format (4) instead of compact (2).
    pub expanded: bool,
    /// Sample sequence number (per source).
    pub sequence: u32,
    /// Source id type.
    pub source_type: u32,
    /// Source id index.
    pub source_index: u32,
    /// Counter records.
    pub records: Vec<CounterData>,
}

/// A counter record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterData {
    /// Generic interface counters (format 1).
    Generic(GenericCounters),
    /// Any other record, written as given.
    Other {
        /// Enterprise number.
        enterprise: u32,
        /// Format number.
        format: u32,
        /// Record body.
        data: Vec<u8>,
    },
}

/// Generic interface counters (RFC 2233 ifTable/ifXTable values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct GenericCounters {
    pub if_index: u32,
    pub if_type: u32,
    pub if_speed: u64,
    pub if_direction: u32,
    pub if_status: u32,
    pub in_octets: u64,
    pub in_ucast: u32,
    pub in_mcast: u32,
    pub in_bcast: u32,
    pub in_discards: u32,
    pub in_errors: u32,
    pub in_unknown_protos: u32,
    pub out_octets: u64,
    pub out_ucast: u32,
    pub out_mcast: u32,
    pub out_bcast: u32,
    pub out_discards: u32,
    pub out_errors: u32,
    pub promiscuous: u32,
}

struct Xdr<'a>(&'a mut Vec<u8>);

impl Xdr<'_> {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn opaque(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
        self.0.resize(self.0.len() + (4 - b.len() % 4) % 4, 0);
    }
    fn address(&mut self, a: Option<IpAddr>) {
        match a {
            None => self.u32(0),
            Some(IpAddr::V4(v)) => {
                self.u32(1);
                self.0.extend_from_slice(&v.octets());
            }
            Some(IpAddr::V6(v)) => {
                self.u32(2);
                self.0.extend_from_slice(&v.octets());
            }
        }
    }
    fn mac(&mut self, m: u64) {
        self.0.extend_from_slice(&m.to_be_bytes()[2..]);
        self.0.extend_from_slice(&[0, 0]);
    }
    /// Writes `enterprise << 12 | format`, a length placeholder, then the
    /// body written by `f`, and patches the length.
    fn framed(&mut self, enterprise: u32, format: u32, f: impl FnOnce(&mut Xdr<'_>)) {
        self.u32(enterprise << 12 | (format & 0xfff));
        let at = self.0.len();
        self.u32(0);
        f(self);
        let len = (self.0.len() - at - 4) as u32;
        self.0[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
}

impl Datagram {
    /// The datagram's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1400);
        self.encode_into(&mut out);
        out
    }

    /// Appends the datagram's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Xdr(out);
        w.u32(5);
        w.address(Some(self.agent));
        w.u32(self.sub_agent);
        w.u32(self.sequence);
        w.u32(self.uptime_ms);
        w.u32(self.samples.len() as u32);
        for s in &self.samples {
            match s {
                Sample::Flow(f) => flow_sample(&mut w, f),
                Sample::Counters(c) => counters_sample(&mut w, c),
                Sample::Other { enterprise, format, data } => {
                    w.framed(*enterprise, *format, |w| w.opaque(data))
                }
            }
        }
    }
}

fn flow_sample(w: &mut Xdr<'_>, s: &FlowSample) {
    let format = if s.expanded { EXPANDED_FLOW_SAMPLE } else { FLOW_SAMPLE };
    w.framed(0, format, |w| {
        w.u32(s.sequence);
        if s.expanded {
            w.u32(s.source_type);
            w.u32(s.source_index);
        } else {
            w.u32(s.source_type << 24 | (s.source_index & 0x00ff_ffff));
        }
        w.u32(s.sampling_rate);
        w.u32(s.sample_pool);
        w.u32(s.drops);
        if s.expanded {
            for i in [s.input, s.output] {
                let (f, v) = i.expanded();
                w.u32(f);
                w.u32(v);
            }
        } else {
            w.u32(s.input.compact());
            w.u32(s.output.compact());
        }
        w.u32(s.records.len() as u32);
        for r in &s.records {
            flow_record(w, r);
        }
    });
}

fn flow_record(w: &mut Xdr<'_>, r: &FlowData) {
    match r {
        FlowData::RawHeader { protocol, frame_length, stripped, header } => w.framed(0, 1, |w| {
            w.u32(*protocol);
            w.u32(*frame_length);
            w.u32(*stripped);
            w.u32(header.len() as u32);
            w.opaque(header);
        }),
        FlowData::SampledEthernet { length, src_mac, dst_mac, ethertype } => w.framed(0, 2, |w| {
            w.u32(*length);
            w.mac(*src_mac);
            w.mac(*dst_mac);
            w.u32(*ethertype);
        }),
        FlowData::SampledIp { length, proto, src, dst, src_port, dst_port, tcp_flags, tos } => {
            let format = if src.is_ipv4() { 3 } else { 4 };
            w.framed(0, format, |w| {
                w.u32(*length);
                w.u32(*proto);
                for a in [src, dst] {
                    match a {
                        IpAddr::V4(v) => w.0.extend_from_slice(&v.octets()),
                        IpAddr::V6(v) => w.0.extend_from_slice(&v.octets()),
                    }
                }
                w.u32(*src_port);
                w.u32(*dst_port);
                w.u32(*tcp_flags);
                w.u32(*tos);
            })
        }
        FlowData::Switch { src_vlan, src_priority, dst_vlan, dst_priority } => {
            w.framed(0, 1001, |w| {
                for v in [src_vlan, src_priority, dst_vlan, dst_priority] {
                    w.u32(*v);
                }
            })
        }
        FlowData::Router { next_hop, src_mask, dst_mask } => w.framed(0, 1002, |w| {
            w.address(*next_hop);
            w.u32(*src_mask);
            w.u32(*dst_mask);
        }),
        FlowData::Gateway {
            next_hop,
            as_number,
            src_as,
            src_peer_as,
            as_path,
            communities,
            local_pref,
        } => w.framed(0, 1003, |w| {
            w.address(*next_hop);
            w.u32(*as_number);
            w.u32(*src_as);
            w.u32(*src_peer_as);
            w.u32(as_path.len() as u32);
            for seg in as_path {
                w.u32(seg.kind);
                w.u32(seg.asns.len() as u32);
                for a in &seg.asns {
                    w.u32(*a);
                }
            }
            w.u32(communities.len() as u32);
            for c in communities {
                w.u32(*c);
            }
            w.u32(*local_pref);
        }),
        FlowData::Other { enterprise, format, data } => {
            w.framed(*enterprise, *format, |w| w.opaque(data))
        }
    }
}

fn counters_sample(w: &mut Xdr<'_>, s: &CountersSample) {
    let format = if s.expanded { EXPANDED_COUNTERS_SAMPLE } else { COUNTERS_SAMPLE };
    w.framed(0, format, |w| {
        w.u32(s.sequence);
        if s.expanded {
            w.u32(s.source_type);
            w.u32(s.source_index);
        } else {
            w.u32(s.source_type << 24 | (s.source_index & 0x00ff_ffff));
        }
        w.u32(s.records.len() as u32);
        for r in &s.records {
            match r {
                CounterData::Generic(g) => w.framed(0, 1, |w| {
                    w.u32(g.if_index);
                    w.u32(g.if_type);
                    w.u64(g.if_speed);
                    w.u32(g.if_direction);
                    w.u32(g.if_status);
                    w.u64(g.in_octets);
                    for v in [g.in_ucast, g.in_mcast, g.in_bcast, g.in_discards, g.in_errors] {
                        w.u32(v);
                    }
                    w.u32(g.in_unknown_protos);
                    w.u64(g.out_octets);
                    for v in [g.out_ucast, g.out_mcast, g.out_bcast, g.out_discards, g.out_errors] {
                        w.u32(v);
                    }
                    w.u32(g.promiscuous);
                }),
                CounterData::Other { enterprise, format, data } => {
                    w.framed(*enterprise, *format, |w| w.opaque(data))
                }
            }
        }
    });
}

/// A packet to put into a raw packet header record.
///
/// Ports follow weir's flow record: for ICMP/ICMPv6 `dst_port` is
/// `type << 8 | code` and `src_port` is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Source MAC (low 48 bits).
    pub src_mac: u64,
    /// Destination MAC (low 48 bits).
    pub dst_mac: u64,
    /// VLAN ids, outermost first. One tag is written as 802.1Q (0x8100);
    /// with more, the outer ones are 802.1ad (0x88a8).
    pub vlans: Vec<u16>,
    /// MPLS stack entries, top first, as weir stores them
    /// (`label << 4 | exp << 1 | bos`; the bottom-of-stack bit is set here).
    pub mpls: Vec<u32>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address (same family as `src`).
    pub dst: IpAddr,
    /// IP protocol (6, 17, 1 and 58 get a transport header).
    pub proto: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination port (ICMP: `type << 8 | code`).
    pub dst_port: u16,
    /// TCP flags.
    pub tcp_flags: u8,
    /// IPv4 TOS / IPv6 traffic class.
    pub tos: u8,
    /// TTL / hop limit.
    pub ttl: u8,
    /// Payload bytes after the transport header (zeros).
    pub payload_len: u16,
}

impl Packet {
    /// A UDP packet between two addresses, MACs `02:00:00:00:00:01/02`.
    pub fn udp(src: IpAddr, dst: IpAddr, src_port: u16, dst_port: u16) -> Packet {
        Packet {
            src_mac: 0x0200_0000_0001,
            dst_mac: 0x0200_0000_0002,
            vlans: Vec::new(),
            mpls: Vec::new(),
            src,
            dst,
            proto: 17,
            src_port,
            dst_port,
            tcp_flags: 0,
            tos: 0,
            ttl: 64,
            payload_len: 64,
        }
    }

    /// The packet a flow record describes: addresses (IPv4 0.0.0.0 if
    /// absent), protocol, ports, TCP flags, tos, `in_src_mac` /
    /// `in_dst_mac`, `src_vlan`, MPLS labels. `payload_len` is 0.
    pub fn from_flow(rec: &FlowRecord) -> Packet {
        let unspecified = IpAddr::from([0u8, 0, 0, 0]);
        let mpls = rec.mpls();
        Packet {
            src_mac: rec.in_src_mac.unwrap_or(0),
            dst_mac: rec.in_dst_mac.unwrap_or(0),
            vlans: rec.src_vlan.into_iter().collect(),
            mpls: mpls.into_iter().map_while(|m| m).collect(),
            src: rec.src_addr.map_or(unspecified, u128_to_ip),
            dst: rec.dst_addr.map_or(unspecified, u128_to_ip),
            proto: rec.proto,
            src_port: rec.src_port,
            dst_port: rec.dst_port,
            tcp_flags: rec.tcp_flags,
            tos: rec.src_tos,
            ttl: 64,
            payload_len: 0,
        }
    }

    /// The IP packet (header, transport header, zero payload).
    pub fn ip_packet(&self) -> Vec<u8> {
        let mut l4 = Vec::with_capacity(20 + usize::from(self.payload_len));
        match self.proto {
            6 => {
                l4.extend_from_slice(&self.src_port.to_be_bytes());
                l4.extend_from_slice(&self.dst_port.to_be_bytes());
                l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, self.tcp_flags, 0xff, 0xff]);
                l4.extend_from_slice(&[0; 4]);
            }
            17 => {
                let len = 8 + self.payload_len;
                l4.extend_from_slice(&self.src_port.to_be_bytes());
                l4.extend_from_slice(&self.dst_port.to_be_bytes());
                l4.extend_from_slice(&len.to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
            }
            1 | 58 => {
                l4.extend_from_slice(&self.dst_port.to_be_bytes());
                l4.extend_from_slice(&[0; 6]);
            }
            _ => {}
        }
        l4.resize(l4.len() + usize::from(self.payload_len), 0);
        let mut p = Vec::with_capacity(40 + l4.len());
        match (self.src, self.dst) {
            (IpAddr::V4(s), d) => {
                let d = match d {
                    IpAddr::V4(d) => d.octets(),
                    IpAddr::V6(_) => [0; 4],
                };
                let total = (20 + l4.len()) as u16;
                p.extend_from_slice(&[0x45, self.tos]);
                p.extend_from_slice(&total.to_be_bytes());
                p.extend_from_slice(&[0, 1, 0x40, 0, self.ttl, self.proto, 0, 0]);
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d);
            }
            (IpAddr::V6(s), d) => {
                let d = match d {
                    IpAddr::V6(d) => d.octets(),
                    IpAddr::V4(d) => d.to_ipv6_mapped().octets(),
                };
                p.push(0x60 | self.tos >> 4);
                p.push(self.tos << 4);
                p.extend_from_slice(&[0, 0]);
                p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                p.extend_from_slice(&[self.proto, self.ttl]);
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d);
            }
        }
        p.extend_from_slice(&l4);
        p
    }

    /// The Ethernet frame (without FCS).
    pub fn ethernet_frame(&self) -> Vec<u8> {
        let ip = self.ip_packet();
        let mut f = Vec::with_capacity(14 + 4 * (self.vlans.len() + self.mpls.len()) + ip.len());
        f.extend_from_slice(&self.dst_mac.to_be_bytes()[2..]);
        f.extend_from_slice(&self.src_mac.to_be_bytes()[2..]);
        let n = self.vlans.len();
        for (i, v) in self.vlans.iter().enumerate() {
            let tpid: u16 = if i + 1 == n { 0x8100 } else { 0x88a8 };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(v & 0x0fff).to_be_bytes());
        }
        let ethertype: u16 = match (self.mpls.is_empty(), self.src) {
            (false, _) => 0x8847,
            (true, IpAddr::V4(_)) => 0x0800,
            (true, IpAddr::V6(_)) => 0x86dd,
        };
        f.extend_from_slice(&ethertype.to_be_bytes());
        let m = self.mpls.len();
        for (i, e) in self.mpls.iter().enumerate() {
            let bos = u32::from(i + 1 == m);
            let entry = (e & !1) << 8 | bos << 8 | u32::from(self.ttl);
            f.extend_from_slice(&entry.to_be_bytes());
        }
        f.extend_from_slice(&ip);
        f
    }

    /// A raw packet header record (Ethernet) holding the first `snap`
    /// bytes of the frame; `frame_length` counts the 4-byte FCS, which is
    /// reported as stripped.
    pub fn raw_header(&self, snap: usize) -> FlowData {
        let mut frame = self.ethernet_frame();
        let frame_length = frame.len() as u32 + 4;
        frame.truncate(snap);
        FlowData::RawHeader { protocol: 1, frame_length, stripped: 4, header: frame }
    }

    /// A raw packet header record starting at the IP header (header
    /// protocol 11 or 12).
    pub fn raw_ip_header(&self, snap: usize) -> FlowData {
        let mut p = self.ip_packet();
        let frame_length = p.len() as u32;
        p.truncate(snap);
        let protocol = if self.src.is_ipv4() { 11 } else { 12 };
        FlowData::RawHeader { protocol, frame_length, stripped: 0, header: p }
    }
}

/// An agent: stamps datagrams with consecutive sequence numbers and
/// samples with consecutive per-source sequence numbers and sample pools.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Agent address.
    pub agent: IpAddr,
    /// Sub-agent id.
    pub sub_agent: u32,
    /// Use the expanded sample formats.
    pub expanded: bool,
    next_datagram: u32,
    flow_sources: HashMap<u32, (u32, u32)>,
    counter_sources: HashMap<u32, u32>,
}

impl Agent {
    /// An agent whose first datagram and samples are numbered 1.
    pub fn new(agent: IpAddr, sub_agent: u32) -> Agent {
        Agent {
            agent,
            sub_agent,
            expanded: false,
            next_datagram: 1,
            flow_sources: HashMap::new(),
            counter_sources: HashMap::new(),
        }
    }

    /// The next flow sample of data source `source_index` (type 0,
    /// ifIndex): sequence number + 1, sample pool + `sampling_rate`.
    pub fn flow_sample(
        &mut self,
        source_index: u32,
        sampling_rate: u32,
        input: Interface,
        output: Interface,
        records: Vec<FlowData>,
    ) -> Sample {
        let (seq, pool) = self.flow_sources.entry(source_index).or_insert((0, 0));
        *seq = seq.wrapping_add(1);
        *pool = pool.wrapping_add(sampling_rate);
        Sample::Flow(FlowSample {
            expanded: self.expanded,
            sequence: *seq,
            source_type: 0,
            source_index,
            sampling_rate,
            sample_pool: *pool,
            drops: 0,
            input,
            output,
            records,
        })
    }

    /// The next counter sample of data source `source_index`.
    pub fn counters_sample(&mut self, source_index: u32, records: Vec<CounterData>) -> Sample {
        let seq = self.counter_sources.entry(source_index).or_insert(0);
        *seq = seq.wrapping_add(1);
        Sample::Counters(CountersSample {
            expanded: self.expanded,
            sequence: *seq,
            source_type: 0,
            source_index,
            records,
        })
    }

    /// The next datagram holding `samples`.
    pub fn datagram(&mut self, uptime_ms: u32, samples: Vec<Sample>) -> Datagram {
        let sequence = self.next_datagram;
        self.next_datagram = self.next_datagram.wrapping_add(1);
        Datagram { agent: self.agent, sub_agent: self.sub_agent, sequence, uptime_ms, samples }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let d = Datagram {
            agent: "192.0.2.1".parse().unwrap(),
            sub_agent: 7,
            sequence: 9,
            uptime_ms: 1000,
            samples: vec![],
        };
        let b = d.encode();
        assert_eq!(
            b,
            [
                0, 0, 0, 5, 0, 0, 0, 1, 192, 0, 2, 1, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 3, 232, 0, 0,
                0, 0
            ]
        );
    }

    #[test]
    fn lengths_and_padding() {
        let s = Sample::Flow(FlowSample {
            expanded: false,
            sequence: 1,
            source_type: 0,
            source_index: 3,
            sampling_rate: 10,
            sample_pool: 10,
            drops: 0,
            input: Interface::Index(3),
            output: Interface::Multiple(2),
            records: vec![FlowData::RawHeader {
                protocol: 1,
                frame_length: 64,
                stripped: 4,
                header: vec![1, 2, 3],
            }],
        });
        let d = Datagram {
            agent: "::1".parse().unwrap(),
            sub_agent: 0,
            sequence: 1,
            uptime_ms: 0,
            samples: vec![s],
        };
        let b = d.encode();
        // header 40, sample header 8, sample fixed 32, record header 8, record 16 + 4
        assert_eq!(b.len(), 40 + 8 + 32 + 8 + 20);
        assert_eq!(&b[44..48], &(32u32 + 8 + 20).to_be_bytes());
        assert_eq!(&b[72..76], &(0x8000_0002u32).to_be_bytes());
    }

    #[test]
    fn agent_sequences() {
        let mut a = Agent::new("192.0.2.1".parse().unwrap(), 0);
        let s1 = a.flow_sample(1, 100, Interface::Index(1), Interface::LOCAL, vec![]);
        let s2 = a.flow_sample(1, 100, Interface::Index(1), Interface::LOCAL, vec![]);
        let s3 = a.flow_sample(2, 100, Interface::Index(1), Interface::LOCAL, vec![]);
        let seqs: Vec<_> = [s1, s2, s3]
            .iter()
            .map(|s| match s {
                Sample::Flow(f) => (f.sequence, f.sample_pool),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(seqs, [(1, 100), (2, 200), (1, 100)]);
        assert_eq!(a.datagram(0, vec![]).sequence, 1);
        assert_eq!(a.datagram(0, vec![]).sequence, 2);
    }

    #[test]
    fn packet_frame() {
        let mut p = Packet::udp("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), 1, 2);
        p.vlans = vec![10, 20];
        p.mpls = vec![100 << 4];
        p.payload_len = 0;
        let f = p.ethernet_frame();
        assert_eq!(&f[12..16], &[0x88, 0xa8, 0, 10]);
        assert_eq!(&f[16..20], &[0x81, 0x00, 0, 20]);
        assert_eq!(&f[20..22], &[0x88, 0x47]);
        assert_eq!(&f[22..26], &[0, 0x06, 0x41, 64]);
        assert_eq!(f.len(), 26 + 20 + 8);
    }
}
