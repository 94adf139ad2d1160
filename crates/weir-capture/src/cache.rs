//! The flow cache: packets in, NetFlow-style flow records out.
//!
//! A flow is keyed by source and destination address, ports (ICMP:
//! `type << 8 | code` in the destination port), protocol, ToS and the
//! outer VLAN id. It ends when
//!
//! * it has been active for `active` (first packet to now: the record is
//!   exported and the next packet starts a new one; with a short `active`
//!   every flow yields one record per interval — snapshot flows),
//! * no packet came for `inactive`,
//! * a TCP packet with FIN or RST was added (exported at once, as nfpcapd),
//! * the input ends ([`FlowCache::flush`]).
//!
//! A record's `received` time is when it ended by packet time: the
//! FIN/RST packet, `last + inactive`, `first + active`, or its last packet
//! when the input ends.
//!
//! Time is packet time: timeouts are checked when a packet of the flow
//! arrives and by a sweep over the whole cache every `min(10 s, active,
//! inactive)` of packet time, so a capture gives the same flows however
//! fast it is read.
//!
//! Fragments: the first fragment of an IPv4 or IPv6 datagram carries the
//! ports; later fragments are counted in the same flow by looking up the
//! datagram's identification (kept for 15 s, as nfpcapd's reassembly).
//! A later fragment whose first fragment was not seen goes into a flow
//! with ports 0 and is counted as an orphan.

use weir_decode::packet::{self, Headers, L3Kind, MplsStack, Stop};
use weir_record::FlowRecord;

/// Flow cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Active timeout in ms (nfpcapd default 300 s).
    pub active_ms: u64,
    /// Inactive timeout in ms (nfpcapd default 60 s).
    pub inactive_ms: u64,
    /// Most flows held at once; a packet of a new flow when full first
    /// expires the whole cache's oldest-ending flows (counted as
    /// `forced_exports`).
    pub max_flows: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { active_ms: 300_000, inactive_ms: 60_000, max_flows: 4_000_000 }
    }
}

/// What the cache did with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketOutcome {
    /// Added to a flow.
    Counted,
    /// Not IP (ARP, LLDP, STP, ...): not a flow; counted in `non_ip`.
    NotIp,
    /// Link type not understood; counted in `unknown_linktype`.
    UnknownLinktype,
    /// Cut before the IP addresses, or an impossible header; counted in
    /// `truncated` / `malformed`.
    Damaged,
}

/// Counters of a cache's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Packets offered.
    pub packets: u64,
    /// Packets added to flows.
    pub counted: u64,
    /// Bytes (IP length) added to flows.
    pub bytes: u64,
    /// Packets that were not IPv4/IPv6.
    pub non_ip: u64,
    /// Packets of a link type not understood.
    pub unknown_linktype: u64,
    /// Packets cut before the IP addresses.
    pub truncated: u64,
    /// Packets with an impossible IP header.
    pub malformed: u64,
    /// Fragments (first and later).
    pub fragments: u64,
    /// Later fragments whose first fragment was not seen (ports 0).
    pub orphan_fragments: u64,
    /// Flows exported.
    pub flows: u64,
    /// Flows ended by FIN/RST.
    pub ended_by_tcp: u64,
    /// Flows ended by the active timeout.
    pub ended_active: u64,
    /// Flows ended by the inactive timeout.
    pub ended_inactive: u64,
    /// Flows exported early because the cache was full.
    pub forced_exports: u64,
    /// Most flows held at once.
    pub peak_flows: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: u128,
    dst: u128,
    src_port: u16,
    dst_port: u16,
    proto: u8,
    tos: u8,
    vlan: u16,
}

struct Entry {
    first_ns: u64,
    last_ns: u64,
    packets: u64,
    bytes: u64,
    flags: u8,
    /// MACs; meaningful when `has_mac`.
    src_mac: u64,
    dst_mac: u64,
    has_mac: bool,
    /// The label stack is in `FlowCache::mpls` (kept out of line: few
    /// flows have one, and a small entry is a faster cache).
    has_mpls: bool,
}

/// The flow, fragment and label maps: weir-decode's seeded fast hash
/// (packet contents pick the keys).
type Map<K2, V> = weir_decode::hash::FastMap<K2, V>;

/// Fragment identification: src, dst, id, proto.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: u128,
    dst: u128,
    id: u32,
    proto: u8,
}

/// How long a first fragment's ports are remembered (nfpcapd: 15 s).
const FRAG_TTL_NS: u64 = 15_000_000_000;
/// Most datagrams whose fragments are tracked at once.
const MAX_FRAGS: usize = 65_536;
/// Longest sweep interval (nfpcapd checks its cache every 10 s).
const MAX_SWEEP_NS: u64 = 10_000_000_000;

const TCP: u8 = 6;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

/// A NetFlow-style flow cache (see the module docs).
pub struct FlowCache {
    cfg: CacheConfig,
    active_ns: u64,
    inactive_ns: u64,
    sweep_ns: u64,
    flows: Map<Key, Entry>,
    frags: Map<FragKey, (u16, u16, u64)>,
    mpls: Map<Key, MplsStack>,
    clock_ns: u64,
    next_sweep_ns: u64,
    stats: CacheStats,
}

impl FlowCache {
    /// An empty cache.
    pub fn new(cfg: CacheConfig) -> FlowCache {
        let active_ns = cfg.active_ms.max(1).saturating_mul(1_000_000);
        let inactive_ns = cfg.inactive_ms.max(1).saturating_mul(1_000_000);
        FlowCache {
            cfg,
            active_ns,
            inactive_ns,
            sweep_ns: MAX_SWEEP_NS.min(active_ns).min(inactive_ns),
            flows: Map::with_capacity_and_hasher(
                cfg.max_flows.clamp(1, 1 << 16),
                Default::default(),
            ),
            frags: Map::default(),
            mpls: Map::default(),
            clock_ns: 0,
            next_sweep_ns: 0,
            stats: CacheStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Flows held now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is held.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// How often (packet time, ns) the whole cache is swept for flows
    /// that timed out.
    pub(crate) fn sweep_ns(&self) -> u64 {
        self.sweep_ns
    }

    /// The packet clock: the latest packet time seen (ns).
    pub fn clock_ns(&self) -> u64 {
        self.clock_ns
    }

    /// Moves the clock to `now_ns` (if later) without a packet, exporting
    /// the flows that timed out by then when a sweep is due: a live
    /// capture calls this while the interface is quiet.
    pub fn advance(&mut self, now_ns: u64, out: &mut Vec<FlowRecord>) {
        if now_ns > self.clock_ns {
            self.clock_ns = now_ns;
            if now_ns >= self.next_sweep_ns {
                self.sweep(out);
                self.next_sweep_ns = now_ns.saturating_add(self.sweep_ns);
            }
        }
    }

    /// Adds one captured frame (`linktype` as in pcap: 1 Ethernet, 101 raw
    /// IP, 113/276 Linux cooked, 0/108 BSD loopback, 228/229 raw
    /// IPv4/IPv6). Flows that end are appended to `out` with `received` =
    /// the packet clock.
    pub fn packet(
        &mut self,
        ts_ns: u64,
        linktype: u32,
        orig_len: u32,
        frame: &[u8],
        out: &mut Vec<FlowRecord>,
    ) -> PacketOutcome {
        self.stats.packets += 1;
        self.advance(ts_ns, out);
        let Some((h, l3)) = parse(linktype, frame) else {
            self.stats.unknown_linktype += 1;
            return PacketOutcome::UnknownLinktype;
        };
        let Some(ip) = h.ip else {
            return match h.stop {
                Stop::Truncated => {
                    self.stats.truncated += 1;
                    PacketOutcome::Damaged
                }
                Stop::Malformed => {
                    self.stats.malformed += 1;
                    PacketOutcome::Damaged
                }
                _ => {
                    self.stats.non_ip += 1;
                    PacketOutcome::NotIp
                }
            };
        };
        if h.stop == Stop::Malformed {
            self.stats.malformed += 1;
            return PacketOutcome::Damaged;
        }
        let (mut src_port, mut dst_port, flags) =
            h.transport.map_or((0, 0, 0), |t| (t.src_port, t.dst_port, t.tcp_flags));
        if ip.is_fragment() {
            self.stats.fragments += 1;
            let id = frag_id(ip.version, frame, l3);
            let fk = FragKey { src: ip.src, dst: ip.dst, id, proto: ip.proto };
            if ip.fragment_offset == 0 {
                if self.frags.len() >= MAX_FRAGS {
                    let now = self.clock_ns;
                    self.frags.retain(|_, v| now.saturating_sub(v.2) < FRAG_TTL_NS);
                    if self.frags.len() >= MAX_FRAGS {
                        self.frags.clear();
                    }
                }
                self.frags.insert(fk, (src_port, dst_port, ts_ns));
            } else {
                match self.frags.get(&fk) {
                    Some(&(s, d, t)) if ts_ns.saturating_sub(t) < FRAG_TTL_NS => {
                        (src_port, dst_port) = (s, d);
                        if !ip.more_fragments {
                            self.frags.remove(&fk);
                        }
                    }
                    _ => self.stats.orphan_fragments += 1,
                }
            }
        }
        let l3_len =
            frame.len().saturating_sub(l3).max(orig_len as usize - l3.min(orig_len as usize));
        let bytes = if ip.total_length > 40 || (ip.version == 4 && ip.total_length >= 20) {
            u64::from(ip.total_length)
        } else {
            l3_len as u64
        };
        let key = Key {
            src: ip.src,
            dst: ip.dst,
            src_port,
            dst_port,
            proto: ip.proto,
            tos: ip.tos,
            vlan: h.vlan.map_or(0, |v| v | 0x8000),
        };
        self.stats.counted += 1;
        self.stats.bytes += bytes;
        let (active_ns, inactive_ns) = (self.active_ns, self.inactive_ns);
        if let Some(e) = self.flows.get_mut(&key) {
            let ended_active = ts_ns.saturating_sub(e.first_ns) >= active_ns;
            let ended_inactive = ts_ns.saturating_sub(e.last_ns) > inactive_ns;
            if ended_active || ended_inactive {
                let end = if ended_inactive {
                    self.stats.ended_inactive += 1;
                    e.last_ns.saturating_add(inactive_ns)
                } else {
                    self.stats.ended_active += 1;
                    e.first_ns.saturating_add(active_ns)
                };
                out.push(record(&key, e, end.min(ts_ns), &mut self.mpls));
                self.stats.flows += 1;
                *e = new_entry(ts_ns, &h, &key, &mut self.mpls);
            }
            e.last_ns = e.last_ns.max(ts_ns);
            e.first_ns = e.first_ns.min(ts_ns);
            e.packets += 1;
            e.bytes += bytes;
            e.flags |= flags;
        } else {
            if self.flows.len() >= self.cfg.max_flows.max(1) {
                self.evict(out);
            }
            let mut e = new_entry(ts_ns, &h, &key, &mut self.mpls);
            e.packets = 1;
            e.bytes = bytes;
            e.flags = flags;
            self.flows.insert(key, e);
            self.stats.peak_flows = self.stats.peak_flows.max(self.flows.len() as u64);
        }
        if key.proto == TCP
            && flags & (FIN | RST) != 0
            && let Some(e) = self.flows.remove(&key)
        {
            out.push(record(&key, &e, ts_ns, &mut self.mpls));
            self.stats.flows += 1;
            self.stats.ended_by_tcp += 1;
        }
        PacketOutcome::Counted
    }

    /// Exports the flows whose timeouts have passed at the packet clock.
    fn sweep(&mut self, out: &mut Vec<FlowRecord>) {
        let (now, active, inactive) = (self.clock_ns, self.active_ns, self.inactive_ns);
        let (stats, mpls) = (&mut self.stats, &mut self.mpls);
        self.flows.retain(|k, e| {
            let a = now.saturating_sub(e.first_ns) >= active;
            let i = now.saturating_sub(e.last_ns) > inactive;
            if a || i {
                // `received` is when the flow ended by packet time, not
                // when the sweep noticed (after a gap in the capture that
                // can be years later).
                let end = if i {
                    stats.ended_inactive += 1;
                    e.last_ns.saturating_add(inactive)
                } else {
                    stats.ended_active += 1;
                    e.first_ns.saturating_add(active)
                };
                stats.flows += 1;
                out.push(record(k, e, end.min(now), mpls));
                false
            } else {
                true
            }
        });
        self.frags.retain(|_, v| now.saturating_sub(v.2) < FRAG_TTL_NS);
    }

    /// The cache is full: export the older half (by last packet).
    fn evict(&mut self, out: &mut Vec<FlowRecord>) {
        let mut lasts: Vec<u64> = self.flows.values().map(|e| e.last_ns).collect();
        let mid = lasts.len() / 2;
        let (_, &mut cut, _) = lasts.select_nth_unstable(mid);
        let now = self.clock_ns;
        let (stats, mpls) = (&mut self.stats, &mut self.mpls);
        self.flows.retain(|k, e| {
            if e.last_ns <= cut {
                stats.forced_exports += 1;
                stats.flows += 1;
                out.push(record(k, e, now, mpls));
                false
            } else {
                true
            }
        });
    }

    /// Exports every flow (end of input). `received` is each flow's last
    /// packet time, so that a long capture's remaining flows land in the
    /// slots of their packets, not all in the last one.
    pub fn flush(&mut self, out: &mut Vec<FlowRecord>) {
        for (k, e) in self.flows.drain() {
            self.stats.flows += 1;
            out.push(record(&k, &e, e.last_ns, &mut self.mpls));
        }
        self.frags.clear();
        self.mpls.clear();
    }
}

fn new_entry(ts_ns: u64, h: &Headers, k: &Key, mpls: &mut Map<Key, MplsStack>) -> Entry {
    let has_mpls = !h.mpls.is_empty();
    if has_mpls {
        mpls.insert(*k, h.mpls);
    }
    Entry {
        first_ns: ts_ns,
        last_ns: ts_ns,
        packets: 0,
        bytes: 0,
        flags: 0,
        src_mac: h.src_mac.unwrap_or(0),
        dst_mac: h.dst_mac.unwrap_or(0),
        has_mac: h.src_mac.is_some(),
        has_mpls,
    }
}

fn record(k: &Key, e: &Entry, received_ns: u64, mpls: &mut Map<Key, MplsStack>) -> FlowRecord {
    let mut r = FlowRecord {
        first: e.first_ns / 1_000_000,
        last: e.last_ns / 1_000_000,
        received: received_ns.max(e.last_ns) / 1_000_000,
        src_addr: Some(k.src),
        dst_addr: Some(k.dst),
        src_port: k.src_port,
        dst_port: k.dst_port,
        proto: k.proto,
        tcp_flags: if k.proto == TCP { e.flags } else { 0 },
        src_tos: k.tos,
        packets: e.packets,
        bytes: e.bytes,
        in_src_mac: e.has_mac.then_some(e.src_mac),
        in_dst_mac: e.has_mac.then_some(e.dst_mac),
        src_vlan: (k.vlan & 0x8000 != 0).then_some(k.vlan & 0x0fff),
        ..FlowRecord::default()
    };
    let slots = r.mpls_mut();
    let stack = if e.has_mpls { mpls.remove(k).unwrap_or_default() } else { MplsStack::default() };
    for (slot, v) in slots.into_iter().zip(stack.entries()) {
        *slot = Some(*v);
    }
    r
}

/// Parses a frame by link type; also returns where the IP header starts
/// (for the fragment identification, which `Headers` does not carry).
fn parse(linktype: u32, frame: &[u8]) -> Option<(Headers, usize)> {
    if linktype == 1 {
        return Some((packet::parse_ethernet(frame), ethernet_l3(frame)));
    }
    let l = packet::link_layer(linktype, frame)?;
    let rest = frame.get(l.offset..).unwrap_or_default();
    let h = match l.kind {
        L3Kind::ByVersion => packet::parse_ip(rest),
        L3Kind::Ether(0x0800) => packet::parse_ipv4(rest),
        L3Kind::Ether(0x86dd) => packet::parse_ipv6(rest),
        L3Kind::Ether(t) => Headers { ethertype: t, ..Headers::default() },
        L3Kind::Truncated => Headers { stop: Stop::Truncated, ..Headers::default() },
    };
    Some((h, l.offset))
}

/// Offset of the IP header in an Ethernet frame (after VLAN tags and MPLS
/// labels), as `parse_ethernet` walks it.
fn ethernet_l3(frame: &[u8]) -> usize {
    let be16 = |at: usize| frame.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]));
    let mut off = 12;
    let mut tags = 0;
    let mut et = be16(off).unwrap_or(0);
    while matches!(et, 0x8100 | 0x88a8 | 0x9100) && tags < 8 {
        off += 4;
        tags += 1;
        et = be16(off).unwrap_or(0);
    }
    off += 2;
    if matches!(et, 0x8847 | 0x8848) {
        while let Some(s) = frame.get(off..off + 4) {
            off += 4;
            if s[2] & 1 != 0 {
                break;
            }
        }
    }
    off
}

/// The identification of a fragmented datagram: IPv4's 16-bit id, or the
/// IPv6 fragment header's 32-bit id when that header follows the fixed
/// header directly (else 0: all such fragments of the pair share an id).
fn frag_id(version: u8, frame: &[u8], l3: usize) -> u32 {
    let b = frame.get(l3..).unwrap_or_default();
    if version == 4 {
        b.get(4..6).map_or(0, |s| u32::from(u16::from_be_bytes([s[0], s[1]])))
    } else if b.get(6) == Some(&44) {
        b.get(44..48).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn eth_ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8], frag: u16, id: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        let mut ip = vec![0x45, 0x10];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&id.to_be_bytes());
        ip.extend_from_slice(&frag.to_be_bytes());
        ip.extend_from_slice(&[64, proto, 0, 0]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        f.extend(ip);
        f.extend_from_slice(l4);
        f
    }

    fn tcp(sp: u16, dp: u16, flags: u8) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&sp.to_be_bytes());
        t[2..4].copy_from_slice(&dp.to_be_bytes());
        t[12] = 0x50;
        t[13] = flags;
        t
    }

    fn udp(sp: u16, dp: u16, payload: usize) -> Vec<u8> {
        let mut t = vec![0u8; 8 + payload];
        t[0..2].copy_from_slice(&sp.to_be_bytes());
        t[2..4].copy_from_slice(&dp.to_be_bytes());
        t
    }

    fn cache(active_s: u64, inactive_s: u64) -> FlowCache {
        FlowCache::new(CacheConfig {
            active_ms: active_s * 1000,
            inactive_ms: inactive_s * 1000,
            ..CacheConfig::default()
        })
    }

    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

    #[test]
    fn tcp_fin_and_rst_end_flows() {
        let mut c = cache(300, 60);
        let mut out = Vec::new();
        c.packet(S, 1, 0, &eth_ipv4(6, A, B, &tcp(1000, 80, 0x02), 0, 1), &mut out);
        c.packet(2 * S, 1, 0, &eth_ipv4(6, A, B, &tcp(1000, 80, 0x10), 0, 2), &mut out);
        assert!(out.is_empty());
        c.packet(3 * S, 1, 0, &eth_ipv4(6, A, B, &tcp(1000, 80, 0x11), 0, 3), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].packets, out[0].bytes, out[0].tcp_flags), (3, 120, 0x13));
        assert_eq!((out[0].src_tos, out[0].first, out[0].last), (0x10, 1000, 3000));
        c.packet(4 * S, 1, 0, &eth_ipv4(6, B, A, &tcp(80, 1000, 0x04), 0, 4), &mut out);
        assert_eq!(out.len(), 2);
        assert!(c.is_empty());
        assert_eq!(c.stats().ended_by_tcp, 2);
    }

    #[test]
    fn inactive_and_active_timeouts_by_packet_time() {
        let mut c = cache(300, 60);
        let mut out = Vec::new();
        let p = eth_ipv4(17, A, B, &udp(5, 53, 4), 0, 0);
        c.packet(S, 1, 0, &p, &mut out);
        c.packet(30 * S, 1, 0, &p, &mut out);
        // 61 s of silence: the next packet starts a new flow.
        c.packet(92 * S, 1, 0, &p, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].packets, out[0].last), (2, 30_000));
        // A packet every 30 s: cut after 300 s of activity.
        for t in 1..=12 {
            c.packet((92 + 30 * t) * S, 1, 0, &p, &mut out);
        }
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!((out[1].first, out[1].packets), (92_000, 10));
        // Another flow, idle: the sweep exports it when the clock moves on.
        let q = eth_ipv4(17, B, A, &udp(53, 5, 4), 0, 0);
        c.packet(500 * S, 1, 0, &q, &mut out);
        c.packet(600 * S, 1, 0, &p, &mut out);
        assert!(out.iter().any(|r| r.src_port == 53));
        let st = c.stats();
        assert!(st.ended_inactive >= 2 && st.ended_active >= 1, "{st:?}");
    }

    #[test]
    fn snapshot_flows_every_interval() {
        let mut c = FlowCache::new(CacheConfig {
            active_ms: 100,
            inactive_ms: 60_000,
            ..CacheConfig::default()
        });
        let mut out = Vec::new();
        let p = eth_ipv4(17, A, B, &udp(5, 53, 72), 0, 0);
        for i in 0..100u64 {
            c.packet(S + i * 10_000_000, 1, 0, &p, &mut out); // one packet every 10 ms
        }
        c.flush(&mut out);
        assert_eq!(out.len(), 10);
        assert!(out.iter().all(|r| r.packets == 10 && r.bytes == 1000), "{out:?}");
    }

    #[test]
    fn fragments_follow_their_first_fragment() {
        let mut c = cache(300, 60);
        let mut out = Vec::new();
        c.packet(S, 1, 0, &eth_ipv4(17, A, B, &udp(4000, 53, 1472), 0x2000, 7), &mut out);
        c.packet(S, 1, 0, &eth_ipv4(17, A, B, &[0u8; 600], 185, 7), &mut out);
        // A later fragment of a datagram never seen: ports 0, counted.
        c.packet(S, 1, 0, &eth_ipv4(17, A, B, &[0u8; 100], 185, 8), &mut out);
        c.flush(&mut out);
        out.sort_by_key(|r| r.dst_port);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].dst_port, out[0].packets, out[0].bytes), (0, 1, 120));
        assert_eq!((out[1].dst_port, out[1].packets, out[1].bytes), (53, 2, 1500 + 620));
        assert_eq!((c.stats().fragments, c.stats().orphan_fragments), (3, 1));
    }

    #[test]
    fn vlan_is_part_of_the_key_and_icmp_in_dst_port() {
        let mut c = cache(300, 60);
        let mut out = Vec::new();
        let icmp = eth_ipv4(1, A, B, &[8, 0, 0, 0, 0, 1, 0, 1], 0, 0);
        let mut tagged = icmp[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        tagged.extend_from_slice(&icmp[12..]);
        c.packet(S, 1, 0, &icmp, &mut out);
        c.packet(S, 1, 0, &tagged, &mut out);
        c.flush(&mut out);
        out.sort_by_key(|r| r.src_vlan);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].src_vlan, out[1].src_vlan), (None, Some(100)));
        assert!(out.iter().all(|r| r.dst_port == 0x0800 && r.src_port == 0 && r.bytes == 28));
    }

    #[test]
    fn mpls_labels_and_macs_are_kept() {
        let mut c = cache(300, 60);
        let mut out = Vec::new();
        let plain = eth_ipv4(17, A, B, &udp(1, 2, 0), 0, 0);
        let mut f = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x88, 0x47];
        f.extend_from_slice(&[0x00, 0x3e, 0x81, 64]); // label 1000, bottom of stack
        f.extend_from_slice(&plain[14..]);
        c.packet(S, 1, 0, &f, &mut out);
        c.packet(S, 1, 0, &f, &mut out);
        c.flush(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].mpls1, out[0].mpls2, out[0].packets), (Some(1000 << 4 | 1), None, 2));
        assert_eq!((out[0].in_src_mac, out[0].in_dst_mac), (Some(2), Some(1)));
    }

    #[test]
    fn garbage_is_counted_never_panics() {
        let mut c = cache(300, 60);
        let mut out = Vec::new();
        let good = eth_ipv4(6, A, B, &tcp(1, 2, 0x02), 0, 0);
        for n in 0..good.len() {
            for lt in [0u32, 1, 12, 101, 108, 113, 228, 229, 276, 9999] {
                c.packet(S, lt, n as u32, &good[..n], &mut out);
                c.packet(S, lt, u32::MAX, &good[n..], &mut out);
            }
        }
        let mut x: u64 = 7;
        for _ in 0..2000 {
            let v: Vec<u8> = (0..64)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (x >> 56) as u8
                })
                .collect();
            c.packet(x % (1000 * S), 1, 64, &v, &mut out);
        }
        c.flush(&mut out);
        let st = c.stats();
        assert_eq!(
            st.packets,
            st.counted + st.non_ip + st.unknown_linktype + st.truncated + st.malformed
        );
        assert!(st.truncated > 0 && st.unknown_linktype > 0 && st.non_ip > 0);
    }

    #[test]
    fn full_cache_exports_older_half() {
        let mut c = FlowCache::new(CacheConfig { max_flows: 10, ..CacheConfig::default() });
        let mut out = Vec::new();
        for i in 0..25u16 {
            let p = eth_ipv4(17, A, B, &udp(i, 53, 0), 0, 0);
            c.packet(S + u64::from(i), 1, 0, &p, &mut out);
        }
        assert!(c.len() <= 10);
        c.flush(&mut out);
        assert_eq!(out.len(), 25);
        assert!(c.stats().forced_exports > 0);
    }
}
