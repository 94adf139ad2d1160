//! The static network the synthetic traffic lives in: internal subnets,
//! external prefixes with their AS numbers, upstream links, exporters and
//! the service, ICMP, flag and TOS mixes. Everything here is data; the host
//! tables are drawn once per [`crate::Generator`] from its seed.

use std::collections::HashSet;

use crate::ExporterInfo;
use crate::dist::Zipf;
use crate::rng::Rng;

/// The AS number of the monitored network.
pub(crate) const INTERNAL_AS: u32 = 64512;

/// `::ffff:a.b.c.d` from the four octets.
pub(crate) const fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    0xffff_0000_0000 | (u32::from_be_bytes([a, b, c, d]) as u128)
}

/// An IPv6 address from eight 16-bit groups.
pub(crate) const fn v6(g: [u16; 8]) -> u128 {
    let mut v = 0u128;
    let mut i = 0;
    while i < 8 {
        v = v << 16 | g[i] as u128;
        i += 1;
    }
    v
}

/// The exporter table: two routers exporting IPv4 and one IPv6-addressed probe.
pub(crate) const EXPORTERS: [ExporterInfo; 3] = [
    ExporterInfo { addr: v4(192, 0, 2, 1), sysid: 1, version: 9, domain: 0, sampling_rate: 1 },
    ExporterInfo { addr: v4(192, 0, 2, 2), sysid: 2, version: 10, domain: 256, sampling_rate: 1 },
    ExporterInfo {
        addr: v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]),
        sysid: 3,
        version: 10,
        domain: 1,
        sampling_rate: 1,
    },
];

/// An internal subnet: its gateway (next hop of inbound traffic), prefix
/// length and the exporter that sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subnet {
    pub base: u128,
    pub gateway: u128,
    pub mask: u8,
    pub exporter: u8,
}

/// The internal IPv4 /16s, one exporter each, and their share of the hosts.
pub(crate) const SUBNETS_V4: [(Subnet, u16); 3] = [
    (Subnet { base: v4(10, 1, 0, 0), gateway: v4(10, 1, 0, 1), mask: 16, exporter: 0 }, 45),
    (Subnet { base: v4(10, 2, 0, 0), gateway: v4(10, 2, 0, 1), mask: 16, exporter: 1 }, 35),
    (Subnet { base: v4(172, 16, 0, 0), gateway: v4(172, 16, 0, 1), mask: 16, exporter: 2 }, 20),
];

/// The internal IPv6 /48 is 2001:db8:100::/48; its /64 subnet `n` (1..=6)
/// belongs to exporter `(n - 1) % 3`.
pub(crate) fn subnet_v6(n: u16) -> Subnet {
    let base = v6([0x2001, 0xdb8, 0x100, n, 0, 0, 0, 0]);
    Subnet { base, gateway: base | 1, mask: 48, exporter: ((n - 1) % 3) as u8 }
}

/// Number of internal IPv6 /64s.
pub(crate) const V6_SUBNETS: u16 = 6;

/// An upstream link: interface, IP next hop and BGP next hop, per family.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Upstream {
    pub iface: u32,
    pub next_hop: [u128; 2],
    pub bgp_next_hop: [u128; 2],
}

/// The two upstream links (index 0 of the arrays is IPv4, 1 is IPv6).
pub(crate) const UPSTREAMS: [Upstream; 2] = [
    Upstream {
        iface: 10,
        next_hop: [v4(198, 51, 100, 1), v6([0x2001, 0xdb8, 0xffff, 1, 0, 0, 0, 1])],
        bgp_next_hop: [v4(203, 0, 113, 1), v6([0x2001, 0xdb8, 0xffff, 0xff, 0, 0, 0, 1])],
    },
    Upstream {
        iface: 11,
        next_hop: [v4(198, 51, 100, 5), v6([0x2001, 0xdb8, 0xffff, 2, 0, 0, 0, 1])],
        bgp_next_hop: [v4(203, 0, 113, 2), v6([0x2001, 0xdb8, 0xffff, 0xff, 0, 0, 0, 2])],
    },
];

/// External IPv4 /16s and the AS announcing each, most popular first.
const PREFIXES_V4: [([u8; 2], u32); 40] = [
    ([142, 250], 15169),
    ([104, 16], 13335),
    ([13, 32], 16509),
    ([157, 240], 32934),
    ([20, 0], 8075),
    ([151, 101], 54113),
    ([172, 217], 15169),
    ([23, 32], 20940),
    ([31, 13], 32934),
    ([8, 8], 15169),
    ([104, 17], 13335),
    ([52, 84], 16509),
    ([40, 76], 8075),
    ([185, 199], 36459),
    ([140, 82], 36459),
    ([17, 253], 714),
    ([216, 58], 15169),
    ([54, 230], 16509),
    ([23, 192], 20940),
    ([199, 232], 54113),
    ([172, 64], 13335),
    ([52, 96], 8075),
    ([74, 125], 15169),
    ([1, 1], 13335),
    ([3, 5], 16509),
    ([13, 107], 8075),
    ([2, 16], 20940),
    ([34, 64], 396982),
    ([18, 64], 16509),
    ([17, 0], 714),
    ([9, 9], 19281),
    ([208, 67], 36692),
    ([91, 189], 41231),
    ([199, 16], 13414),
    ([4, 0], 3356),
    ([38, 0], 174),
    ([129, 250], 2914),
    ([216, 218], 6939),
    ([62, 115], 1299),
    ([213, 248], 1299),
];

/// External IPv6 prefixes: first two groups, prefix length, AS.
const PREFIXES_V6: [([u16; 3], u8, u32); 6] = [
    ([0x2a00, 0x1450, 0], 32, 15169),
    ([0x2606, 0x4700, 0], 32, 13335),
    ([0x2a03, 0x2880, 0], 32, 32934),
    ([0x2600, 0x9000, 0], 32, 16509),
    ([0x2a04, 0x4e42, 0], 32, 54113),
    ([0x2001, 0xdb8, 0xa000], 48, 64496),
];

/// An address as two 64-bit halves: 8-byte alignment keeps the host
/// tables (hot in the generator's inner loop) compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Addr([u64; 2]);

impl Addr {
    pub(crate) fn new(a: u128) -> Addr {
        Addr([(a >> 64) as u64, a as u64])
    }

    #[inline]
    pub(crate) fn get(self) -> u128 {
        u128::from(self.0[0]) << 64 | u128::from(self.0[1])
    }
}

/// An internal host: address and the subnet (index into the family's
/// subnet list) and access interface it sits behind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Host {
    pub addr: Addr,
    pub subnet: u8,
    pub iface: u8,
}

/// An external host with the routing facts of its prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExtHost {
    pub addr: Addr,
    pub asn: u32,
    pub mask: u8,
    pub upstream: u8,
}

/// The access interface (1..=4) in front of the IPv4 host `a.b.c.d`.
pub(crate) fn iface_v4(addr: u128) -> u8 {
    1 + ((addr >> 8) & 3) as u8
}

/// The hosts of one address family, in popularity order (rank 0 first).
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    pub subnets: Vec<Subnet>,
    pub internal: Vec<Host>,
    pub external: Vec<ExtHost>,
}

/// Draws `n` distinct internal IPv4 hosts spread over the three /16s.
fn internal_v4(rng: &mut Rng, n: usize) -> Vec<Host> {
    let total: u64 = SUBNETS_V4.iter().map(|s| u64::from(s.1)).sum();
    let mut seen = HashSet::with_capacity(n);
    let mut hosts = Vec::with_capacity(n);
    while hosts.len() < n {
        let mut pick = rng.below(total);
        let mut idx = 0;
        while pick >= u64::from(SUBNETS_V4[idx].1) {
            pick -= u64::from(SUBNETS_V4[idx].1);
            idx += 1;
        }
        // Skip .0 and .255 in the last octet and the gateway subnet 0.x.
        let third = rng.range(1, 254) as u128;
        let fourth = rng.range(1, 254) as u128;
        let addr = SUBNETS_V4[idx].0.base | third << 8 | fourth;
        if seen.insert(addr) {
            hosts.push(Host { addr: Addr::new(addr), subnet: idx as u8, iface: iface_v4(addr) });
        }
    }
    hosts
}

/// Draws `n` internal IPv6 hosts with random interface ids.
fn internal_v6(rng: &mut Rng, n: usize) -> Vec<Host> {
    (0..n)
        .map(|_| {
            let sub = rng.below(u64::from(V6_SUBNETS)) as u16;
            let addr = subnet_v6(sub + 1).base | u128::from(rng.next_u64() | 0x100);
            Host { addr: Addr::new(addr), subnet: sub as u8, iface: 1 + (sub % 4) as u8 }
        })
        .collect()
}

/// Draws `n` external hosts; prefixes are chosen by a Zipf law over their
/// list order so that the big clouds dominate.
fn external<F: Fn(&mut Rng, usize) -> ExtHost>(
    rng: &mut Rng,
    n: usize,
    prefixes: usize,
    make: F,
) -> Vec<ExtHost> {
    let zipf = Zipf::new((0..prefixes).collect(), 0.9);
    (0..n)
        .map(|_| {
            let p = zipf.sample(rng);
            make(rng, p)
        })
        .collect()
}

/// The IPv4 world: 20 000 internal hosts, 30 000 external hosts.
pub(crate) fn hosts_v4(rng: &mut Rng) -> Hosts {
    let internal = internal_v4(rng, 20_000);
    let external = external(rng, 30_000, PREFIXES_V4.len(), |rng, p| {
        let ([a, b], asn) = PREFIXES_V4[p];
        let addr = v4(a, b, rng.below(256) as u8, rng.range(1, 254) as u8);
        ExtHost { addr: Addr::new(addr), asn, mask: 16, upstream: (p % 2) as u8 }
    });
    Hosts { subnets: SUBNETS_V4.iter().map(|s| s.0).collect(), internal, external }
}

/// The IPv6 world: 4 000 internal hosts, 8 000 external hosts.
pub(crate) fn hosts_v6(rng: &mut Rng) -> Hosts {
    let internal = internal_v6(rng, 4_000);
    let external = external(rng, 8_000, PREFIXES_V6.len(), |rng, p| {
        let (g, mask, asn) = PREFIXES_V6[p];
        let net = v6([g[0], g[1], g[2], 0, 0, 0, 0, 0]);
        let host_bits = 128 - u32::from(mask);
        let host = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) >> mask;
        debug_assert!(host < 1u128 << host_bits);
        ExtHost { addr: Addr::new(net | host.max(1)), asn, mask, upstream: (p % 2) as u8 }
    });
    let subnets = (1..=V6_SUBNETS).map(subnet_v6).collect();
    Hosts { subnets, internal, external }
}
