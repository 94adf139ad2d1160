//! Sessions: what a client and a server exchange, and the traffic figures
//! of the two unidirectional records NetFlow reports for it.
//!
//! A [`Session`] is drawn when its forward (client to server) record is
//! generated and remembered until its reverse record, whose packet count,
//! sizes, flags and times follow from the forward one.

use crate::mix::{Mixes, Service};
use crate::model::{ExtHost, Host};
use crate::rng::Rng;

/// Active timeout: the longest duration of one record, in ms.
pub(crate) const ACTIVE_TIMEOUT_MS: u64 = 300_000;
/// Largest packet count of one record.
const MAX_PACKETS: u64 = 10_000_000;
/// Collectors receive a record up to this long after its last packet.
pub(crate) const MAX_EXPORT_DELAY_MS: u64 = 2000;

/// What a session carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Tcp(Service),
    Udp(Service),
    /// ICMP or ICMPv6: the client's and the server's `type << 8 | code`
    /// (equal for one-sided messages such as errors).
    Icmp(u16, u16),
    /// GRE (47) or ESP (50): no ports.
    Tunnel(u8),
}

/// A session between an internal and an external host.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    pub v6: bool,
    /// Opened from outside: the external host is the client.
    pub inbound: bool,
    pub host: Host,
    pub ext: ExtHost,
    pub kind: Kind,
    pub client_port: u16,
    /// TCP only: the client sends the bulk data (an upload).
    bulk_up: bool,
    pub tos: u8,
    /// Figures of the forward record.
    pub packets: u64,
    pub flags: u8,
    pub first: u64,
    pub last: u64,
    pub received: u64,
}

/// The traffic figures of one record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Half {
    pub packets: u64,
    pub bytes: u64,
    pub flags: u8,
    pub first: u64,
    pub last: u64,
    /// Cut by the active timeout.
    pub timed_out: bool,
}

impl Session {
    /// Draws a session whose forward record is received at `received`.
    pub(crate) fn open(
        rng: &mut Rng,
        mixes: &Mixes,
        (v6, inbound): (bool, bool),
        (host, ext): (Host, ExtHost),
        received: u64,
    ) -> Session {
        let client_port = rng.range(32768, 60999) as u16;
        let u = rng.f64();
        let kind = if u < 0.70 {
            Kind::Tcp(mixes.tcp.sample(rng))
        } else if u < 0.95 {
            Kind::Udp(mixes.udp.sample(rng))
        } else if u < 0.99 {
            let (req, rep) = if v6 { mixes.icmp6.sample(rng) } else { mixes.icmp4.sample(rng) };
            Kind::Icmp(req, rep)
        } else {
            Kind::Tunnel(if rng.chance(0.5) { 47 } else { 50 })
        };
        // Packets: a share of trivial flows, the rest heavy-tailed or small.
        let (single_share, heavy) = match kind {
            Kind::Udp(s) if s.transactional => (0.75, false),
            Kind::Icmp(..) => (0.5, false),
            _ => (0.27, true),
        };
        let packets = if rng.chance(single_share) {
            1
        } else if heavy {
            mixes.packets.sample(rng).saturating_add(1).min(MAX_PACKETS)
        } else {
            rng.range(2, if matches!(kind, Kind::Udp(_)) { 4 } else { 10 })
        };
        let raw = if packets == 1 { 0 } else { packets.saturating_mul(rng.range(1, 200)) };
        let duration = raw.min(ACTIVE_TIMEOUT_MS);
        let flags = match kind {
            Kind::Tcp(_) => tcp_flags(rng, mixes, packets, raw >= ACTIVE_TIMEOUT_MS),
            _ => 0,
        };
        let bulk_up = matches!(kind, Kind::Tcp(_)) && rng.chance(0.15);
        let tos = mixes.tos.sample(rng);
        let last = received.saturating_sub(rng.below(MAX_EXPORT_DELAY_MS));
        let first = last.saturating_sub(duration);
        Session {
            v6,
            inbound,
            host,
            ext,
            kind,
            client_port,
            bulk_up,
            tos,
            packets,
            flags,
            first,
            last,
            received,
        }
    }

    /// The IP protocol.
    pub(crate) fn proto(&self) -> u8 {
        match self.kind {
            Kind::Tcp(_) => 6,
            Kind::Udp(_) => 17,
            Kind::Icmp(..) => 1 + 57 * u8::from(self.v6),
            Kind::Tunnel(p) => p,
        }
    }

    /// `(src_port, dst_port)` of the forward or the reverse record.
    pub(crate) fn ports(&self, reverse: bool) -> (u16, u16) {
        match self.kind {
            Kind::Tcp(s) | Kind::Udp(s) if reverse => (s.port, self.client_port),
            Kind::Tcp(s) | Kind::Udp(s) => (self.client_port, s.port),
            Kind::Icmp(_, rep) if reverse => (0, rep),
            Kind::Icmp(req, _) => (0, req),
            Kind::Tunnel(_) => (0, 0),
        }
    }

    /// Whether the server answers, so that a reverse record follows.
    pub(crate) fn answered(&self) -> bool {
        match self.kind {
            Kind::Icmp(req, rep) => req != rep,
            // A lone reset gets no answer.
            Kind::Tcp(_) => !(self.packets == 1 && self.flags & 0x04 != 0),
            _ => true,
        }
    }

    /// Per-packet size range of the client-to-server or the reverse direction.
    fn sizes(&self, to_server: bool, packets: u64) -> (u64, u64) {
        let (lo, hi) = match self.kind {
            Kind::Tcp(_) if packets == 1 => {
                (40 + 20 * u16::from(self.v6), 60 + 20 * u16::from(self.v6))
            }
            Kind::Tcp(s) | Kind::Udp(s) if to_server != self.bulk_up => s.up,
            Kind::Tcp(s) | Kind::Udp(s) => s.down,
            Kind::Icmp(..) => (64, 100),
            Kind::Tunnel(_) => (100, 1400),
        };
        (u64::from(lo), u64::from(hi))
    }

    /// The forward record's figures.
    pub(crate) fn forward(&self, rng: &mut Rng) -> Half {
        let bytes = bytes(rng, self.packets, self.sizes(true, self.packets));
        let timed_out = self.last - self.first >= ACTIVE_TIMEOUT_MS;
        let (packets, flags, first, last) = (self.packets, self.flags, self.first, self.last);
        Half { packets, bytes, flags, first, last, timed_out }
    }

    /// The reverse record's figures, for a record received at `received`.
    pub(crate) fn reverse(&self, rng: &mut Rng, mixes: &Mixes, received: u64) -> Half {
        let fwd = self.packets;
        let packets = match self.kind {
            _ if fwd == 1 => 1,
            Kind::Udp(s) if s.transactional => fwd,
            Kind::Icmp(..) => fwd,
            // The data side sends about twice the packets of the ACK side.
            Kind::Tcp(_) if self.bulk_up => scale(fwd, 0.5 + 0.5 * rng.f64()),
            Kind::Tcp(_) => scale(fwd, 1.0 + rng.f64()),
            _ => scale(fwd, 0.5 + 1.5 * rng.f64()),
        };
        // Same span as the forward record, shifted by a round trip, but
        // exported no later than MAX_EXPORT_DELAY_MS before `received`.
        let timed_out = self.last - self.first >= ACTIVE_TIMEOUT_MS;
        let earliest = received.saturating_sub(MAX_EXPORT_DELAY_MS - 1);
        let last = self.last.saturating_add(rng.below(100)).clamp(earliest, received);
        let first = if packets == 1 {
            last
        } else {
            self.first
                .saturating_add(rng.below(50))
                .min(last.saturating_sub(1))
                .max(last.saturating_sub(ACTIVE_TIMEOUT_MS))
        };
        let flags = match self.kind {
            Kind::Tcp(_) if packets == 1 && self.flags == 0x02 => {
                // Answer to a SYN: SYN-ACK when the port is open, else reset.
                if rng.chance(0.3) { 0x12 } else { 0x14 }
            }
            Kind::Tcp(_) if packets == 1 => self.flags,
            Kind::Tcp(_) => tcp_flags(rng, mixes, packets, timed_out),
            _ => 0,
        };
        let bytes = bytes(rng, packets, self.sizes(false, packets));
        Half { packets, bytes, flags, first, last, timed_out }
    }
}

/// `packets * factor`, at least 2 and at most [`MAX_PACKETS`].
fn scale(packets: u64, factor: f64) -> u64 {
    ((packets as f64 * factor) as u64).clamp(2, MAX_PACKETS)
}

/// The sum of `packets` sizes in `lo..=hi` (drawn as one uniform total, so
/// per-flow mean sizes vary across the range).
fn bytes(rng: &mut Rng, packets: u64, (lo, hi): (u64, u64)) -> u64 {
    packets * lo + rng.below(packets * (hi - lo) + 1)
}

/// TCP flags for a record of `packets` packets.
fn tcp_flags(rng: &mut Rng, mixes: &Mixes, packets: u64, timed_out: bool) -> u8 {
    if packets == 1 {
        mixes.flags_single.sample(rng)
    } else if packets == 2 {
        mixes.flags_pair.sample(rng)
    } else if timed_out {
        mixes.flags_long.sample(rng)
    } else {
        mixes.flags_full.sample(rng)
    }
}
