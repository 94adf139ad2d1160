//! A deterministic, seeded generator of synthetic NetFlow/IPFIX traffic.
//!
//! weir's tests, benchmarks and demos need realistic flow records in large
//! numbers without shipping captures. [`Generator`] is an iterator of
//! [`FlowRecord`](weir_record::FlowRecord)s that looks like a collector's
//! input over a time range: records come in non-decreasing `received`
//! order, all inside the range, and the whole stream is a pure function of
//! the [`GenConfig`].
//!
//! # Design
//!
//! * **Determinism.** The crate carries its own PRNG (xoshiro256++ seeded by
//!   splitmix64) and its own `ln`/`exp` built from basic IEEE arithmetic, so
//!   the same seed gives bit-identical records on every platform, build and
//!   optimisation level (a test pins a fingerprint of one stream).
//!   Background traffic and the burst draw from separate streams, so adding
//!   a burst leaves the background records unchanged.
//! * **Arrivals.** Background records form a Poisson process at
//!   [`GenConfig::rate`]; an optional [`Burst`] (a SQL Slammer outbreak:
//!   UDP to port 1434, one 404-byte packet from a random IPv4 source) adds a
//!   second Poisson process over its window. The two are merged in time.
//! * **Sessions.** A background arrival is, half the time, the reverse
//!   record of a session whose forward record came less than a second
//!   before (NetFlow is unidirectional): mirrored 5-tuple, packet counts,
//!   sizes, flags and times that follow from the forward record. Otherwise
//!   it opens a new session: outbound (internal client, 85 %) or inbound.
//! * **Shape.** Internal hosts live in 10.1.0.0/16, 10.2.0.0/16,
//!   172.16.0.0/16 and 2001:db8:100::/48 with Zipf popularity (exponent
//!   1.1); external hosts sit in 40 public-looking IPv4 /16s and six IPv6
//!   prefixes, each with its AS. Protocols (TCP 70 %, UDP 25 %, ICMP 4 %,
//!   GRE/ESP 1 %), server ports, ICMP messages, packet counts (Pareto,
//!   about a third single-packet), sizes, durations, TCP flags and TOS
//!   follow fixed mixes.
//! * **Exporters.** Three exporters ([`Generator::exporters`]) each see a
//!   stable set of internal subnets and fill different optional fields: only
//!   the NetFlow v9 router reports VLANs, forwarding status and engine ids;
//!   only the IPFIX exporters report direction and end reason. MACs, MPLS,
//!   sampling, aggregation counts and reverse counters are never set.
//! * **Speed.** All tables are built once in [`Generator::new`] (a few
//!   milliseconds); producing a record allocates nothing and costs well
//!   under 200 ns.
//!
//! ```
//! use weir_gen::{Burst, GenConfig, Generator};
//!
//! let start_ms = GenConfig::default().start_ms;
//! let cfg = GenConfig {
//!     seed: 42,
//!     duration_ms: 10_000,
//!     rate: 1000.0,
//!     slammer: Some(Burst { start_ms, duration_ms: 1000, rate: 500.0 }),
//!     ..GenConfig::default()
//! };
//! let g = Generator::new(cfg.clone());
//! let ids: Vec<u16> = g.exporters().iter().map(|e| e.sysid).collect();
//! let flows: Vec<_> = g.collect();
//! assert!((9_500..11_500).contains(&flows.len()));
//! assert!(flows.windows(2).all(|w| w[0].received <= w[1].received));
//! assert!(flows.iter().all(|f| f.first <= f.last && f.last <= f.received));
//! assert!(flows.iter().all(|f| ids.contains(&f.exporter_id.unwrap())));
//! let worm = flows.iter().filter(|f| f.proto == 17 && f.dst_port == 1434).count();
//! assert!((400..600).contains(&worm), "{worm}");
//! // Same seed, same records.
//! assert_eq!(Generator::new(cfg).take(100).collect::<Vec<_>>(), flows[..100]);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod dist;
mod generator;
mod mix;
mod model;
mod rng;
mod session;

pub use generator::Generator;

/// 2024-03-04T00:00:00Z in ms since the epoch: the default start.
const DEFAULT_START_MS: u64 = 1_709_510_400_000;

/// A burst of worm traffic on top of the background.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Start of the burst (ms since the epoch).
    pub start_ms: u64,
    /// Length of the burst in ms.
    pub duration_ms: u64,
    /// Mean burst flows per second.
    pub rate: f64,
}

/// What to generate. Rates that are not finite and positive disable their
/// arrival stream.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Earliest `received` time (ms since the epoch).
    pub start_ms: u64,
    /// Length of the range; every `received` is below `start_ms + duration_ms`.
    pub duration_ms: u64,
    /// Mean background flows per second.
    pub rate: f64,
    /// Fraction of background flows that are IPv6.
    pub ipv6_share: f64,
    /// An optional SQL Slammer outbreak.
    pub slammer: Option<Burst>,
}

impl Default for GenConfig {
    /// Seed 1, one hour from 2024-03-04T00:00:00Z at 500 flows/s, 10 % IPv6,
    /// no burst.
    fn default() -> GenConfig {
        GenConfig {
            seed: 1,
            start_ms: DEFAULT_START_MS,
            duration_ms: 3_600_000,
            rate: 500.0,
            ipv6_share: 0.1,
            slammer: None,
        }
    }
}

/// One exporter of the generated traffic, as a collector's exporter table
/// would list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExporterInfo {
    /// Exporter address (IPv4 mapped, see [`weir_record::ip_to_u128`]).
    pub addr: u128,
    /// The id records carry in `exporter_id`.
    pub sysid: u16,
    /// Export protocol version: 9 or 10 (IPFIX).
    pub version: u16,
    /// v9 source id / IPFIX observation domain.
    pub domain: u32,
    /// Packet sampling rate, 1 in N (1: unsampled).
    pub sampling_rate: u32,
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use weir_record::{FlowRecord, is_ipv4_mapped};

    use super::*;

    fn cfg(seed: u64, duration_ms: u64, rate: f64) -> GenConfig {
        GenConfig { seed, duration_ms, rate, ..GenConfig::default() }
    }

    fn flows(n: usize) -> Vec<FlowRecord> {
        Generator::new(GenConfig::default()).take(n).collect()
    }

    fn is_internal(a: u128) -> bool {
        if is_ipv4_mapped(a) {
            matches!((a as u32) >> 16, 0x0a01 | 0x0a02 | 0xac10)
        } else {
            a >> 80 == 0x2001_0db8_0100
        }
    }

    #[test]
    fn same_seed_same_records() {
        let a: Vec<_> = Generator::new(cfg(7, 3_600_000, 500.0)).take(10_000).collect();
        let b: Vec<_> = Generator::new(cfg(7, 3_600_000, 500.0)).take(10_000).collect();
        assert_eq!(a.len(), 10_000);
        assert_eq!(a, b);
        let c: Vec<_> = Generator::new(cfg(8, 3_600_000, 500.0)).take(10_000).collect();
        let same = a.iter().zip(&c).filter(|(x, y)| x == y).count();
        assert!(same < 10, "{same} identical records across seeds");
    }

    /// FNV-1a over the main fields of a record stream.
    fn fingerprint(flows: impl Iterator<Item = FlowRecord>) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for f in flows {
            let words = [
                f.first as u128,
                f.last as u128,
                f.received as u128,
                f.src_addr.unwrap(),
                f.dst_addr.unwrap(),
                (f.src_port as u128) << 32 | (f.dst_port as u128) << 16 | f.proto as u128,
                (f.tcp_flags as u128) << 8 | f.src_tos as u128,
                f.packets as u128,
                f.bytes as u128,
                f.exporter_id.unwrap() as u128,
            ];
            for b in words.iter().flat_map(|w| w.to_le_bytes()) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    #[test]
    fn stream_is_pinned() {
        // Any change of this value means seeded streams changed: fine for a
        // deliberate model change (update the constant), a bug otherwise
        // (e.g. a platform- or optimisation-dependent computation).
        let start = GenConfig::default().start_ms;
        let burst = Burst { start_ms: start + 1000, duration_ms: 1000, rate: 2000.0 };
        let c = GenConfig { slammer: Some(burst), ..cfg(99, 10_000, 1000.0) };
        assert_eq!(fingerprint(Generator::new(c)), 11_990_736_688_286_951_935);
    }

    #[test]
    fn times_are_ordered_and_in_range() {
        let c = cfg(3, 60_000, 500.0);
        let (start, end) = (c.start_ms, c.start_ms + c.duration_ms);
        let all: Vec<_> = Generator::new(c).collect();
        assert!((29_100..=30_900).contains(&all.len()), "{}", all.len());
        for w in all.windows(2) {
            assert!(w[0].received <= w[1].received);
        }
        for f in &all {
            assert!((start..end).contains(&f.received));
            assert!(f.first <= f.last && f.last <= f.received);
            assert!(f.received - f.last < 2000);
            assert!(f.last - f.first <= 300_000);
        }
    }

    #[test]
    fn protocol_and_port_mix() {
        let all = flows(100_000);
        let n = all.len() as f64;
        let share =
            |p: &dyn Fn(&FlowRecord) -> bool| all.iter().filter(|f| p(f)).count() as f64 / n;
        let tcp = share(&|f| f.proto == 6);
        let udp = share(&|f| f.proto == 17);
        let v6 = share(&|f| !is_ipv4_mapped(f.src_addr.unwrap()));
        assert!((0.6..0.8).contains(&tcp), "tcp {tcp}");
        assert!((0.18..0.32).contains(&udp), "udp {udp}");
        assert!((0.07..0.13).contains(&v6), "ipv6 {v6}");
        let mut icmp = 0;
        for f in &all {
            let v4 = is_ipv4_mapped(f.src_addr.unwrap());
            assert_eq!(v4, is_ipv4_mapped(f.dst_addr.unwrap()));
            if matches!(f.proto, 1 | 58) {
                icmp += 1;
                assert_eq!(f.src_port, 0);
                assert_eq!(f.proto == 1, v4);
            }
            if f.proto != 6 {
                assert_eq!(f.tcp_flags, 0);
            }
            // Exactly one side is internal, with the internal AS and mask.
            assert!(is_internal(f.src_addr.unwrap()) ^ is_internal(f.dst_addr.unwrap()));
            let (int_as, int_mask) = if is_internal(f.src_addr.unwrap()) {
                (f.src_as, f.src_mask)
            } else {
                (f.dst_as, f.dst_mask)
            };
            assert_eq!(int_as, Some(64512));
            assert_eq!(int_mask, Some(if v4 { 16 } else { 48 }));
        }
        assert!(icmp > 2_000, "{icmp}");
        let mut ports: HashMap<u16, usize> = HashMap::new();
        for f in all.iter().filter(|f| f.proto == 6) {
            *ports.entry(f.dst_port).or_default() += 1;
        }
        let top = ports.iter().max_by_key(|e| *e.1).unwrap();
        assert_eq!(*top.0, 443);
    }

    #[test]
    fn packets_are_heavy_tailed() {
        let all = flows(100_000);
        let mut packets: Vec<u64> = all.iter().map(|f| f.packets).collect();
        packets.sort_unstable();
        assert!(packets[packets.len() / 2] <= 3, "median {}", packets[packets.len() / 2]);
        assert!(*packets.last().unwrap() >= 1000);
        let single = packets.iter().filter(|&&p| p == 1).count() as f64 / packets.len() as f64;
        assert!((0.30..=0.40).contains(&single), "single-packet share {single}");
        for f in &all {
            assert!(f.packets >= 1 && f.bytes >= f.packets * 20);
            assert_eq!(f.packets == 1, f.first == f.last);
        }
    }

    #[test]
    fn slammer_burst() {
        let start = GenConfig::default().start_ms;
        let burst = Burst { start_ms: start + 30_000, duration_ms: 60_000, rate: 1000.0 };
        let c = GenConfig { slammer: Some(burst), ..cfg(5, 120_000, 100.0) };
        let all: Vec<_> = Generator::new(c.clone()).collect();
        let worm: Vec<_> = all.iter().filter(|f| f.proto == 17 && f.dst_port == 1434).collect();
        assert!((57_000..=63_000).contains(&worm.len()), "{}", worm.len());
        for f in &worm {
            assert!((burst.start_ms..burst.start_ms + burst.duration_ms).contains(&f.received));
            assert_eq!((f.packets, f.bytes, f.src_as), (1, 404, Some(0)));
            assert!(!is_internal(f.src_addr.unwrap()) && is_internal(f.dst_addr.unwrap()));
            let first_octet = (f.src_addr.unwrap() as u32) >> 24;
            assert!(!matches!(first_octet, 0 | 10 | 127 | 224..));
        }
        // The burst rides on top of unchanged background traffic.
        let quiet: Vec<_> = Generator::new(GenConfig { slammer: None, ..c }).collect();
        let background: Vec<_> = all.into_iter().filter(|f| f.dst_port != 1434).collect();
        assert_eq!(background, quiet);
        let stray = quiet.iter().filter(|f| f.dst_port == 1434).count();
        assert!(stray * 1000 < quiet.len(), "{stray}");
    }

    #[test]
    fn sessions_come_in_pairs() {
        let all = flows(50_000);
        // 5-tuple -> received time of its forward record.
        let mut open: HashMap<(u128, u128, u16, u16, u8), u64> = HashMap::new();
        let mut paired = 0;
        for f in &all {
            let (s, d) = (f.src_addr.unwrap(), f.dst_addr.unwrap());
            if let Some(t) = open.remove(&(d, s, f.dst_port, f.src_port, f.proto)) {
                paired += 1;
                assert!(f.received - t <= 1000);
            } else {
                open.insert((s, d, f.src_port, f.dst_port, f.proto), f.received);
            }
        }
        let share = paired as f64 / all.len() as f64;
        assert!((0.42..=0.5).contains(&share), "paired share {share}");
    }

    #[test]
    fn internal_hosts_are_zipf_popular() {
        let mut counts: HashMap<u128, usize> = HashMap::new();
        for f in flows(100_000) {
            let (s, d) = (f.src_addr.unwrap(), f.dst_addr.unwrap());
            *counts.entry(if is_internal(s) { s } else { d }).or_default() += 1;
        }
        let mut c: Vec<usize> = counts.into_values().collect();
        c.sort_unstable_by(|a, b| b.cmp(a));
        assert!(c.len() > 1000);
        assert!(c[0] > 20 * c[99], "top {} vs 100th {}", c[0], c[99]);
    }

    #[test]
    fn exporters_and_their_fields() {
        let g = Generator::new(GenConfig::default());
        let table: Vec<ExporterInfo> = g.exporters().to_vec();
        assert_eq!(table.len(), 3);
        let mut seen = [0usize; 3];
        for f in g.take(50_000) {
            let i = table.iter().position(|e| Some(e.sysid) == f.exporter_id).unwrap();
            let e = table[i];
            seen[i] += 1;
            assert_eq!(f.exporter_addr, Some(e.addr));
            assert_eq!(f.flow_version, Some(e.version as u8));
            assert_eq!(f.obs_domain, Some(e.domain));
            let v9 = e.version == 9;
            assert_eq!(f.src_vlan.is_some(), v9);
            assert_eq!(f.fwd_status.is_some(), v9);
            assert_eq!(f.engine_type.is_some(), v9);
            assert_eq!(f.direction.is_some(), !v9);
            assert_eq!(f.end_reason.is_some(), !v9);
            assert!(f.sampling_rate.is_none() && f.dst_tos.is_none() && f.flows.is_none());
            assert!(f.out_packets.is_none() && f.out_bytes.is_none());
            assert!(f.in_src_mac.is_none() && f.mpls1.is_none());
            let (i_if, o_if) = (f.input_if.unwrap(), f.output_if.unwrap());
            assert!((1..=4).contains(&i_if) ^ (1..=4).contains(&o_if));
            assert!((10..=11).contains(&i_if) ^ (10..=11).contains(&o_if));
            assert_eq!(f.bgp_next_hop.is_some(), (10..=11).contains(&o_if));
        }
        assert!(seen.iter().all(|&n| n > 5_000), "{seen:?}");
    }

    #[test]
    fn empty_ranges_and_disabled_streams() {
        assert_eq!(Generator::new(cfg(1, 0, 500.0)).count(), 0);
        assert!(format!("{:?}", Generator::new(cfg(1, 0, 500.0))).len() < 1000);
        assert_eq!(Generator::new(cfg(1, 60_000, 0.0)).count(), 0);
        assert_eq!(Generator::new(cfg(1, 60_000, f64::NAN)).count(), 0);
        let start = GenConfig::default().start_ms;
        let late = Burst { start_ms: start + 120_000, duration_ms: 1000, rate: 1e4 };
        let c = GenConfig { slammer: Some(late), ..cfg(1, 60_000, 0.0) };
        assert_eq!(Generator::new(c).count(), 0);
        let early = Burst { start_ms: start - 500, duration_ms: 1000, rate: 1e4 };
        let c = GenConfig { slammer: Some(early), ..cfg(1, 60_000, 0.0) };
        let worm: Vec<_> = Generator::new(c).collect();
        assert!((4_000..6_000).contains(&worm.len()), "{}", worm.len());
        assert!(worm.iter().all(|f| f.received >= start && f.received < start + 500));
        // The end of time: the range is cut at u64::MAX, without overflow.
        let c = GenConfig { start_ms: u64::MAX - 10_000, duration_ms: u64::MAX, ..cfg(1, 0, 1e3) };
        let n = Generator::new(c).inspect(|f| assert!(f.received >= u64::MAX - 10_000)).count();
        assert!((9_000..11_000).contains(&n), "{n}");
    }
}
