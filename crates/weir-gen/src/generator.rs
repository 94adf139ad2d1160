//! The [`Generator`]: two merged Poisson arrival streams and the synthesis
//! of one flow record per arrival.

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;

use weir_record::FlowRecord;

use crate::dist::Zipf;
use crate::mix::Mixes;
use crate::model::{
    self, EXPORTERS, ExtHost, Host, Hosts, INTERNAL_AS, SUBNETS_V4, Subnet, UPSTREAMS,
};
use crate::rng::Rng;
use crate::session::{Half, MAX_EXPORT_DELAY_MS, Session};
use crate::{ExporterInfo, GenConfig};

/// Share of sessions opened from outside towards an internal server.
const INBOUND_SHARE: f64 = 0.15;
/// Share of records that describe the server-to-client half of a session.
const REVERSE_SHARE: f64 = 0.5;
/// Internal hosts acting as servers for inbound sessions (the tail of the table).
const SERVERS: usize = 300;
/// Sessions waiting for their reverse record.
const PENDING: usize = 1024;
/// A session whose reverse record has not come this long after its forward
/// record gets none.
const MAX_PAIR_DELAY_MS: u64 = 1000;
/// VLAN of the upstream side, seen by the v9 exporter.
const UPSTREAM_VLAN: u16 = 30;
/// Forwarding status "forwarded, unknown reason" (RFC 7270).
const FWD_FORWARDED: u8 = 64;

/// Hosts of one address family with their popularity laws.
#[derive(Debug, Clone)]
struct World {
    subnets: Vec<Subnet>,
    /// Internal hosts as clients of outbound sessions.
    clients: Zipf<Host>,
    /// Internal servers of inbound sessions: the tail of the host table.
    servers: Zipf<Host>,
    external: Zipf<ExtHost>,
}

impl World {
    fn new(hosts: Hosts) -> World {
        let servers = hosts.internal.iter().rev().take(SERVERS).copied().collect();
        World {
            subnets: hosts.subnets,
            clients: Zipf::new(hosts.internal, 1.1),
            servers: Zipf::new(servers, 1.1),
            external: Zipf::new(hosts.external, 1.0),
        }
    }
}

/// A deterministic stream of synthetic flow records, ordered by `received`.
///
/// See the [crate documentation](crate) for the traffic model.
#[derive(Clone)]
pub struct Generator {
    cfg: GenConfig,
    /// Offsets below are milliseconds after `cfg.start_ms`; the largest
    /// offset a record can have.
    max_offset: u64,
    bg_next: f64,
    bg_gap: f64,
    bg_end: f64,
    burst_next: f64,
    burst_gap: f64,
    burst_end: f64,
    bg_rng: Rng,
    burst_rng: Rng,
    worlds: [World; 2],
    mixes: Mixes,
    /// Sessions whose reverse record is still to come, oldest first.
    pending: VecDeque<Session>,
    /// Per exporter: a record with the exporter's constant fields set.
    templates: [FlowRecord; 3],
}

/// Mean gap in ms between arrivals at `rate` per second; `None` disables
/// the stream (rates that are not finite and positive).
fn mean_gap(rate: f64) -> Option<f64> {
    (rate.is_finite() && rate > 0.0).then(|| 1000.0 / rate)
}

fn template(e: &ExporterInfo) -> FlowRecord {
    let v9 = e.version == 9;
    FlowRecord {
        exporter_addr: Some(e.addr),
        exporter_id: Some(e.sysid),
        flow_version: Some(e.version as u8),
        obs_domain: Some(e.domain),
        engine_type: v9.then_some(0),
        engine_id: v9.then_some(1),
        fwd_status: v9.then_some(FWD_FORWARDED),
        ..FlowRecord::default()
    }
}

impl Generator {
    /// Builds the host tables from `cfg.seed` and positions both arrival
    /// streams at their first arrival.
    pub fn new(cfg: GenConfig) -> Generator {
        let mut tables = Rng::new(cfg.seed ^ 0x7461_626c_6573); // "tables"
        let worlds =
            [World::new(model::hosts_v4(&mut tables)), World::new(model::hosts_v6(&mut tables))];
        let mut bg_rng = Rng::new(cfg.seed);
        let mut burst_rng = Rng::new(cfg.seed ^ 0x0073_6c61_6d6d_6572); // "slammer"

        // Keep start + duration representable.
        let duration = cfg.duration_ms.min(u64::MAX - cfg.start_ms);
        let bg_end = duration as f64;
        let (bg_gap, bg_next) = match mean_gap(cfg.rate) {
            Some(gap) => (gap, bg_rng.exponential(gap)),
            None => (0.0, f64::INFINITY),
        };
        let mut burst_gap = 0.0;
        let mut burst_next = f64::INFINITY;
        let mut burst_end = 0.0;
        if let Some(b) = cfg.slammer
            && let Some(gap) = mean_gap(b.rate)
        {
            let end = cfg.start_ms + duration;
            let lo = b.start_ms.max(cfg.start_ms);
            let hi = b.start_ms.saturating_add(b.duration_ms).min(end);
            if lo < hi {
                burst_gap = gap;
                burst_end = (hi - cfg.start_ms) as f64;
                burst_next = (lo - cfg.start_ms) as f64 + burst_rng.exponential(gap);
            }
        }
        let templates = EXPORTERS.each_ref().map(template);
        let mut g = Generator {
            cfg,
            max_offset: duration.saturating_sub(1),
            bg_next,
            bg_gap,
            bg_end,
            burst_next,
            burst_gap,
            burst_end,
            bg_rng,
            burst_rng,
            worlds,
            mixes: Mixes::new(),
            pending: VecDeque::with_capacity(PENDING),
            templates,
        };
        if g.bg_next >= g.bg_end {
            g.bg_next = f64::INFINITY;
        }
        if g.burst_next >= g.burst_end {
            g.burst_next = f64::INFINITY;
        }
        g
    }

    /// The fixed exporter table the records refer to (`exporter_id` is the
    /// `sysid` of an entry, `exporter_addr` its `addr`).
    pub fn exporters(&self) -> &[ExporterInfo] {
        &EXPORTERS
    }

    /// The configuration this generator was built from.
    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    /// One record of normal traffic received at `received`: the reverse
    /// record of a recent session, or the forward record of a new one.
    fn background(&mut self, received: u64) -> FlowRecord {
        if self.bg_rng.chance(REVERSE_SHARE) {
            while self
                .pending
                .front()
                .is_some_and(|s| s.received.saturating_add(MAX_PAIR_DELAY_MS) < received)
            {
                self.pending.pop_front();
            }
            if let Some(s) = self.pending.pop_front() {
                let half = s.reverse(&mut self.bg_rng, &self.mixes, received);
                return self.record(&s, true, &half, received);
            }
        }
        let rng = &mut self.bg_rng;
        let v6 = rng.chance(self.cfg.ipv6_share);
        let world = &self.worlds[usize::from(v6)];
        let inbound = rng.chance(INBOUND_SHARE);
        let host = if inbound { world.servers.sample(rng) } else { world.clients.sample(rng) };
        let ext = world.external.sample(rng);
        let s = Session::open(rng, &self.mixes, (v6, inbound), (host, ext), received);
        let half = s.forward(rng);
        if s.answered() {
            if self.pending.len() == PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back(s);
        }
        self.record(&s, false, &half, received)
    }

    /// The record of one direction of a session.
    fn record(&self, s: &Session, reverse: bool, h: &Half, received: u64) -> FlowRecord {
        let subnet = self.worlds[usize::from(s.v6)].subnets[usize::from(s.host.subnet)];
        let exporter = usize::from(subnet.exporter);
        let mut r = self.templates[exporter].clone();
        r.first = h.first;
        r.last = h.last;
        r.received = received;
        (r.src_port, r.dst_port) = s.ports(reverse);
        r.proto = s.proto();
        r.tcp_flags = h.flags;
        r.src_tos = s.tos;
        r.packets = h.packets;
        r.bytes = h.bytes;
        let (host, ext) = (s.host, s.ext);
        let up = &UPSTREAMS[usize::from(ext.upstream)];
        let fam = usize::from(s.v6);
        let host_vlan = if host.iface <= 2 { 10 } else { 20 };
        // The internal host sends this record's packets when it is the client
        // of an outbound session or the server of an inbound one.
        let outgoing = s.inbound == reverse;
        let (src_vlan, dst_vlan);
        if outgoing {
            (r.src_addr, r.dst_addr) = (Some(host.addr.get()), Some(ext.addr.get()));
            (r.src_as, r.dst_as) = (Some(INTERNAL_AS), Some(ext.asn));
            (r.src_mask, r.dst_mask) = (Some(subnet.mask), Some(ext.mask));
            (r.input_if, r.output_if) = (Some(u32::from(host.iface)), Some(up.iface));
            r.next_hop = Some(up.next_hop[fam]);
            r.bgp_next_hop = Some(up.bgp_next_hop[fam]);
            (src_vlan, dst_vlan) = (host_vlan, UPSTREAM_VLAN);
        } else {
            (r.src_addr, r.dst_addr) = (Some(ext.addr.get()), Some(host.addr.get()));
            (r.src_as, r.dst_as) = (Some(ext.asn), Some(INTERNAL_AS));
            (r.src_mask, r.dst_mask) = (Some(ext.mask), Some(subnet.mask));
            (r.input_if, r.output_if) = (Some(up.iface), Some(u32::from(host.iface)));
            r.next_hop = Some(subnet.gateway);
            (src_vlan, dst_vlan) = (UPSTREAM_VLAN, host_vlan);
        }
        let end_reason = if h.timed_out {
            2
        } else if h.flags & 0x05 != 0 {
            3
        } else {
            1
        };
        self.exporter_fields(&mut r, exporter, outgoing, src_vlan, dst_vlan, end_reason);
        r
    }

    /// Sets what only some exporters report: VLANs for the v9 router,
    /// direction and end reason for the IPFIX exporters.
    fn exporter_fields(
        &self,
        r: &mut FlowRecord,
        exporter: usize,
        outgoing: bool,
        src_vlan: u16,
        dst_vlan: u16,
        end_reason: u8,
    ) {
        if EXPORTERS[exporter].version == 9 {
            r.src_vlan = Some(src_vlan);
            r.dst_vlan = Some(dst_vlan);
        } else {
            // Metered where the flow crosses the upstream link.
            r.direction = Some(u8::from(outgoing));
            r.end_reason = Some(end_reason);
        }
    }

    /// One SQL Slammer probe (UDP 1434, 404 bytes) received at `received`.
    fn slammer(&mut self, received: u64) -> FlowRecord {
        let rng = &mut self.burst_rng;
        let src = loop {
            let a = rng.next_u64() as u32;
            let first = a >> 24;
            let reserved = matches!(first, 0 | 10 | 127 | 224..)
                || a >> 20 == 0xac1 // 172.16.0.0/12
                || a >> 16 == 0xc0a8; // 192.168.0.0/16
            if !reserved {
                break a;
            }
        };
        let subnet = SUBNETS_V4[rng.below(SUBNETS_V4.len() as u64) as usize].0;
        // Anywhere in the /16 but the gateway's x.y.0.0/24 and the broadcast.
        let dst = subnet.base | u128::from(rng.range(0x100, 0xfffe));
        let iface = model::iface_v4(dst);
        let up = &UPSTREAMS[rng.below(2) as usize];
        let src_port = rng.range(1024, 65535) as u16;
        let last = received.saturating_sub(rng.below(MAX_EXPORT_DELAY_MS));

        let exporter = usize::from(subnet.exporter);
        let mut r = self.templates[exporter].clone();
        r.first = last;
        r.last = last;
        r.received = received;
        r.src_port = src_port;
        r.dst_port = 1434;
        r.proto = 17;
        r.packets = 1;
        r.bytes = 404;
        r.src_addr = Some(model::v4(0, 0, 0, 0) | u128::from(src));
        r.dst_addr = Some(dst);
        (r.src_as, r.dst_as) = (Some(0), Some(INTERNAL_AS));
        (r.src_mask, r.dst_mask) = (Some(0), Some(subnet.mask));
        (r.input_if, r.output_if) = (Some(up.iface), Some(u32::from(iface)));
        r.next_hop = Some(subnet.gateway);
        let vlan = if iface <= 2 { 10 } else { 20 };
        self.exporter_fields(&mut r, exporter, false, UPSTREAM_VLAN, vlan, 1);
        r
    }
}

impl Iterator for Generator {
    type Item = FlowRecord;

    fn next(&mut self) -> Option<FlowRecord> {
        let from_bg = self.bg_next <= self.burst_next;
        let t = if from_bg { self.bg_next } else { self.burst_next };
        if t.is_infinite() {
            return None;
        }
        // 0 <= t < duration, so received stays below start + duration (the
        // `min` only guards against rounding for durations beyond 2^53 ms).
        let received = self.cfg.start_ms + (t as u64).min(self.max_offset);
        if from_bg {
            self.bg_next += self.bg_rng.exponential(self.bg_gap);
            if self.bg_next >= self.bg_end {
                self.bg_next = f64::INFINITY;
            }
            Some(self.background(received))
        } else {
            self.burst_next += self.burst_rng.exponential(self.burst_gap);
            if self.burst_next >= self.burst_end {
                self.burst_next = f64::INFINITY;
            }
            Some(self.slammer(received))
        }
    }
}

impl FusedIterator for Generator {}

impl fmt::Debug for Generator {
    /// The configuration and the stream positions, not the host tables.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("cfg", &self.cfg)
            .field("bg_next", &self.bg_next)
            .field("burst_next", &self.burst_next)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}
