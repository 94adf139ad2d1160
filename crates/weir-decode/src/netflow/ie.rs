//! Information elements (NetFlow v9 field types and IPFIX IEs) and what
//! each one sets in a [`FlowRecord`].
//!
//! A template is compiled once into a list of [`Act`]s; decoding a record is
//! then one `match` per field. Values are checked for length at decode time
//! (so IPFIX variable-length encodings of numbers work); a value of the
//! wrong size for its element is ignored, never misread.
//!
//! When several elements can give the same field, the more specific one
//! wins regardless of template order: delta counters over total counters
//! over NSEL initiator/responder counters; `ingressInterface` over
//! `ingressPhysicalInterface`; `vlanId` over `dot1qVlanId`; an explicit ICMP
//! type/code over the transport ports; an IPv4 address over an IPv6 one in
//! the same record unless the IPv4 one is 0.0.0.0 (as tshark shows them).

use std::net::{Ipv4Addr, Ipv6Addr};

use weir_record::{FlowRecord, ip_to_u128};

use super::be_uint;

/// IANA enterprise number of RFC 5103 reverse information elements.
pub(super) const REVERSE_PEN: u32 = 29305;

/// What a template field does to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Act {
    Skip,
    Bytes,
    Packets,
    BytesTotal,
    PacketsTotal,
    InitiatorBytes,
    InitiatorPackets,
    OutBytes,
    OutPackets,
    OutBytesTotal,
    OutPacketsTotal,
    ResponderBytes,
    ResponderPackets,
    Flows,
    Proto,
    TcpFlags,
    SrcTos,
    DstTos,
    SrcPort,
    DstPort,
    Src4,
    Dst4,
    Src6,
    Dst6,
    SrcMask,
    DstMask,
    InIf,
    OutIf,
    InIfPhys,
    OutIfPhys,
    SrcAs,
    DstAs,
    NextAs,
    PrevAs,
    NextHop4,
    NextHop6,
    BgpNextHop4,
    BgpNextHop6,
    SrcVlan,
    DstVlan,
    SrcVlanDot1q,
    DstVlanDot1q,
    InSrcMac,
    InDstMac,
    OutSrcMac,
    OutDstMac,
    /// MPLS label stack entry 0..=9.
    Mpls(u8),
    IcmpTypeCode,
    IcmpType,
    IcmpCode,
    Direction,
    FwdStatus,
    EngineType,
    EngineId,
    EndReason,
    SamplingInterval,
    SamplerId,
    PacketInterval,
    PacketSpace,
    FirstUptime,
    LastUptime,
    FirstSeconds,
    LastSeconds,
    FirstMillis,
    LastMillis,
    FirstNtp,
    LastNtp,
    FirstDeltaMicros,
    LastDeltaMicros,
    SysInitMillis,
}

/// The action of element `id` of enterprise `pen` (0 = IANA / NetFlow v9).
pub(super) fn act(pen: u32, id: u16) -> Act {
    use Act::*;
    if pen == REVERSE_PEN {
        return match id {
            1 => OutBytes,
            2 => OutPackets,
            85 => OutBytesTotal,
            86 => OutPacketsTotal,
            _ => Skip,
        };
    }
    if pen != 0 {
        return Skip;
    }
    match id {
        1 => Bytes,
        2 => Packets,
        3 => Flows,
        4 => Proto,
        5 => SrcTos,
        6 => TcpFlags,
        7 => SrcPort,
        8 => Src4,
        9 => SrcMask,
        10 => InIf,
        11 => DstPort,
        12 => Dst4,
        13 => DstMask,
        14 => OutIf,
        15 => NextHop4,
        16 => SrcAs,
        17 => DstAs,
        18 => BgpNextHop4,
        21 => LastUptime,
        22 => FirstUptime,
        23 => OutBytes,
        24 => OutPackets,
        27 => Src6,
        28 => Dst6,
        29 => SrcMask,
        30 => DstMask,
        32 => IcmpTypeCode,
        34 => SamplingInterval,
        38 => EngineType,
        39 => EngineId,
        48 => SamplerId,
        50 => SamplingInterval,
        55 => DstTos,
        56 => InSrcMac,
        57 => OutDstMac,
        58 => SrcVlan,
        59 => DstVlan,
        61 => Direction,
        62 => NextHop6,
        63 => BgpNextHop6,
        70..=79 => Mpls((id - 70) as u8),
        80 => InDstMac,
        81 => OutSrcMac,
        85 => BytesTotal,
        86 => PacketsTotal,
        89 => FwdStatus,
        128 => NextAs,
        129 => PrevAs,
        136 => EndReason,
        139 => IcmpTypeCode,
        150 => FirstSeconds,
        151 => LastSeconds,
        152 => FirstMillis,
        153 => LastMillis,
        154 | 156 => FirstNtp,
        155 | 157 => LastNtp,
        158 => FirstDeltaMicros,
        159 => LastDeltaMicros,
        160 => SysInitMillis,
        176 | 178 => IcmpType,
        177 | 179 => IcmpCode,
        231 => InitiatorBytes,
        232 => ResponderBytes,
        243 => SrcVlanDot1q,
        252 => InIfPhys,
        253 => OutIfPhys,
        254 => DstVlanDot1q,
        298 => InitiatorPackets,
        299 => ResponderPackets,
        302 => SamplerId,
        305 => PacketInterval,
        306 => PacketSpace,
        _ => Skip,
    }
}

/// Flow start/end as found in a record, before conversion.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Times {
    pub first_up: Option<u32>,
    pub last_up: Option<u32>,
    pub first_abs: Option<u64>,
    pub last_abs: Option<u64>,
    pub first_delta_us: Option<u64>,
    pub last_delta_us: Option<u64>,
}

/// What the message header says about time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    /// Export time (ms since the epoch).
    pub export_ms: u64,
    /// v9 header sysUptime (ms); `None` for IPFIX.
    pub sys_uptime: Option<u32>,
    /// IPFIX: the exporter's boot time (IE 160), from the record or an
    /// options record of the domain.
    pub sys_init_ms: Option<u64>,
    /// When the datagram was received.
    pub received_ms: u64,
}

/// How far (ms) a record's uptime may be ahead of the header's and still be
/// taken as exporter clock skew rather than a value from before the wrap.
pub(super) const UPTIME_SKEW_MS: u32 = 60_000;

/// A sysUptime value (`up`, ms since boot) as ms since the epoch, given the
/// header's sysUptime and export time. A value up to the header's is in the
/// past by the difference. A value after it is either exporter clock skew
/// (ahead by at most [`UPTIME_SKEW_MS`]: clamped to the export time) or
/// from before the 32-bit wrap of the uptime counter after 49.7 days (it
/// belongs to the previous wrap). Either way no flow ends in the future of
/// its datagram.
#[inline]
pub(super) fn uptime_to_abs(up: u32, header_up: u32, export_ms: u64) -> u64 {
    let age = if up <= header_up {
        u64::from(header_up - up)
    } else if up - header_up <= UPTIME_SKEW_MS {
        0
    } else {
        u64::from(header_up) + (1u64 << 32) - u64::from(up)
    };
    export_ms.saturating_sub(age)
}

/// NTP timestamp (RFC 5905 era 0: seconds since 1900 . 2^-32 fractions) to
/// ms since the Unix epoch.
#[inline]
fn ntp_to_ms(v: u64) -> u64 {
    let secs = (v >> 32).saturating_sub(2_208_988_800);
    secs * 1000 + (((v & 0xffff_ffff) * 1000) >> 32)
}

impl Times {
    /// Applies a time element; false if `act` is not one.
    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn apply(&mut self, act: Act, v: &[u8]) -> bool {
        use Act::*;
        match act {
            FirstUptime => set(&mut self.first_up, num(v).map(|x| x as u32)),
            LastUptime => set(&mut self.last_up, num(v).map(|x| x as u32)),
            FirstSeconds => set(&mut self.first_abs, num(v).map(|x| x.saturating_mul(1000))),
            LastSeconds => set(&mut self.last_abs, num(v).map(|x| x.saturating_mul(1000))),
            FirstMillis => set(&mut self.first_abs, num(v)),
            LastMillis => set(&mut self.last_abs, num(v)),
            FirstNtp => set(&mut self.first_abs, ntp(v)),
            LastNtp => set(&mut self.last_abs, ntp(v)),
            FirstDeltaMicros => set(&mut self.first_delta_us, num(v)),
            LastDeltaMicros => set(&mut self.last_delta_us, num(v)),
            _ => return false,
        }
        true
    }

    /// `(first, last)` in ms since the epoch. In order of preference:
    /// absolute times (IE 150-157); deltas before the export time
    /// (158/159); sysUptime values (21/22) — v9 via the header, IPFIX via
    /// the exporter's init time (IE 160) and, if the exporter never sent
    /// one, anchored so that the flow ends at the export time (the
    /// duration is kept); with no time at all, both are the received time
    /// (as nfcapd does). A missing start or end takes the other's value;
    /// an end before the start is swapped.
    #[inline]
    pub(super) fn resolve(&self, clock: &Clock) -> (u64, u64) {
        let e = clock.export_ms;
        let pick = |abs: Option<u64>, delta: Option<u64>, up: Option<u32>| -> Option<u64> {
            if abs.is_some() {
                return abs;
            }
            if let Some(d) = delta {
                return Some(e.saturating_sub(d / 1000));
            }
            let up = up?;
            Some(match (clock.sys_uptime, clock.sys_init_ms) {
                (Some(hdr), _) => uptime_to_abs(up, hdr, e),
                (None, Some(init)) => init.saturating_add(u64::from(up)),
                (None, None) => e,
            })
        };
        let mut first = pick(self.first_abs, self.first_delta_us, self.first_up);
        let last = pick(self.last_abs, self.last_delta_us, self.last_up);
        if clock.sys_uptime.is_none()
            && clock.sys_init_ms.is_none()
            && self.first_abs.is_none()
            && self.first_delta_us.is_none()
            && self.last_abs.is_none()
            && self.last_delta_us.is_none()
        {
            // IPFIX uptimes without a known init time: keep the duration.
            if let (Some(f), Some(l)) = (self.first_up, self.last_up) {
                first = Some(e.saturating_sub(u64::from(l.wrapping_sub(f))));
            }
        }
        let (f, l) = match (first, last) {
            (Some(f), Some(l)) => (f, l),
            (Some(t), None) | (None, Some(t)) => (t, t),
            (None, None) => (clock.received_ms, clock.received_ms),
        };
        if f <= l { (f, l) } else { (l, f) }
    }
}

/// A record being decoded: the fields that map 1:1 go straight into `rec`,
/// the rest wait in `Option`s until [`Scratch::finish`] picks.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    pub rec: FlowRecord,
    pub times: Times,
    bytes: Option<u64>,
    packets: Option<u64>,
    bytes_total: Option<u64>,
    packets_total: Option<u64>,
    init_bytes: Option<u64>,
    init_packets: Option<u64>,
    out_bytes: Option<u64>,
    out_packets: Option<u64>,
    out_bytes_total: Option<u64>,
    out_packets_total: Option<u64>,
    resp_bytes: Option<u64>,
    resp_packets: Option<u64>,
    src4: Option<u32>,
    dst4: Option<u32>,
    src6: Option<u128>,
    dst6: Option<u128>,
    in_if_phys: Option<u32>,
    out_if_phys: Option<u32>,
    src_vlan_q: Option<u16>,
    dst_vlan_q: Option<u16>,
    icmp: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    pub sampler_id: Option<u32>,
    pub interval: Option<u64>,
    pub packet_interval: Option<u64>,
    pub packet_space: Option<u64>,
    pub sys_init_ms: Option<u64>,
}

#[inline]
pub(super) fn num(v: &[u8]) -> Option<u64> {
    match *v {
        [a] => Some(u64::from(a)),
        [a, b] => Some(u64::from(u16::from_be_bytes([a, b]))),
        [a, b, c, d] => Some(u64::from(u32::from_be_bytes([a, b, c, d]))),
        [a, b, c, d, e, f, g, h] => Some(u64::from_be_bytes([a, b, c, d, e, f, g, h])),
        _ if v.is_empty() || v.len() > 8 => None,
        _ => Some(be_uint(v)),
    }
}

#[inline]
fn mac(v: &[u8]) -> Option<u64> {
    if v.len() == 6 { Some(be_uint(v)) } else { None }
}

#[inline]
fn v4(v: &[u8]) -> Option<u32> {
    if v.len() == 4 { Some(be_uint(v) as u32) } else { None }
}

#[inline]
fn v6(v: &[u8]) -> Option<u128> {
    let b: [u8; 16] = v.try_into().ok()?;
    Some(u128::from_be_bytes(b))
}

#[inline]
fn set<T>(slot: &mut Option<T>, v: Option<T>) {
    if v.is_some() {
        *slot = v;
    }
}

impl Scratch {
    /// Applies one field value.
    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn apply(&mut self, act: Act, v: &[u8]) {
        use Act::*;
        let r = &mut self.rec;
        match act {
            Skip => {}
            Bytes => set(&mut self.bytes, num(v)),
            Packets => set(&mut self.packets, num(v)),
            BytesTotal => set(&mut self.bytes_total, num(v)),
            PacketsTotal => set(&mut self.packets_total, num(v)),
            InitiatorBytes => set(&mut self.init_bytes, num(v)),
            InitiatorPackets => set(&mut self.init_packets, num(v)),
            OutBytes => set(&mut self.out_bytes, num(v)),
            OutPackets => set(&mut self.out_packets, num(v)),
            OutBytesTotal => set(&mut self.out_bytes_total, num(v)),
            OutPacketsTotal => set(&mut self.out_packets_total, num(v)),
            ResponderBytes => set(&mut self.resp_bytes, num(v)),
            ResponderPackets => set(&mut self.resp_packets, num(v)),
            Flows => set(&mut r.flows, num(v)),
            Proto => r.proto = num(v).unwrap_or(u64::from(r.proto)) as u8,
            TcpFlags => r.tcp_flags = num(v).unwrap_or(u64::from(r.tcp_flags)) as u8,
            SrcTos => r.src_tos = num(v).unwrap_or(u64::from(r.src_tos)) as u8,
            DstTos => set(&mut r.dst_tos, num(v).map(|x| x as u8)),
            SrcPort => r.src_port = num(v).unwrap_or(u64::from(r.src_port)) as u16,
            DstPort => r.dst_port = num(v).unwrap_or(u64::from(r.dst_port)) as u16,
            Src4 => set(&mut self.src4, v4(v)),
            Dst4 => set(&mut self.dst4, v4(v)),
            Src6 => set(&mut self.src6, v6(v)),
            Dst6 => set(&mut self.dst6, v6(v)),
            SrcMask => set(&mut r.src_mask, num(v).map(|x| x as u8)),
            DstMask => set(&mut r.dst_mask, num(v).map(|x| x as u8)),
            InIf => set(&mut r.input_if, num(v).map(|x| x as u32)),
            OutIf => set(&mut r.output_if, num(v).map(|x| x as u32)),
            InIfPhys => set(&mut self.in_if_phys, num(v).map(|x| x as u32)),
            OutIfPhys => set(&mut self.out_if_phys, num(v).map(|x| x as u32)),
            SrcAs => set(&mut r.src_as, num(v).map(|x| x as u32)),
            DstAs => set(&mut r.dst_as, num(v).map(|x| x as u32)),
            NextAs => set(&mut r.next_as, num(v).map(|x| x as u32)),
            PrevAs => set(&mut r.prev_as, num(v).map(|x| x as u32)),
            NextHop4 => set(&mut r.next_hop, v4(v).map(ip4)),
            NextHop6 => set(&mut r.next_hop, v6(v)),
            BgpNextHop4 => set(&mut r.bgp_next_hop, v4(v).map(ip4)),
            BgpNextHop6 => set(&mut r.bgp_next_hop, v6(v)),
            SrcVlan => set(&mut r.src_vlan, num(v).map(|x| x as u16)),
            DstVlan => set(&mut r.dst_vlan, num(v).map(|x| x as u16)),
            SrcVlanDot1q => set(&mut self.src_vlan_q, num(v).map(|x| x as u16)),
            DstVlanDot1q => set(&mut self.dst_vlan_q, num(v).map(|x| x as u16)),
            InSrcMac => set(&mut r.in_src_mac, mac(v)),
            InDstMac => set(&mut r.in_dst_mac, mac(v)),
            OutSrcMac => set(&mut r.out_src_mac, mac(v)),
            OutDstMac => set(&mut r.out_dst_mac, mac(v)),
            Mpls(i) => {
                if v.len() == 3 {
                    // Positions past the tenth share the last entry.
                    let slots = r.mpls_mut();
                    *slots[usize::from(i).min(9)] = Some(be_uint(v) as u32);
                }
            }
            IcmpTypeCode => set(&mut self.icmp, num(v).map(|x| x as u16)),
            IcmpType => set(&mut self.icmp_type, num(v).map(|x| x as u8)),
            IcmpCode => set(&mut self.icmp_code, num(v).map(|x| x as u8)),
            Direction => set(&mut r.direction, num(v).map(|x| x as u8)),
            FwdStatus => set(&mut r.fwd_status, num(v).map(|x| x as u8)),
            EngineType => set(&mut r.engine_type, num(v).map(|x| x as u8)),
            EngineId => set(&mut r.engine_id, num(v).map(|x| x as u8)),
            EndReason => set(&mut r.end_reason, num(v).map(|x| x as u8)),
            SamplingInterval => set(&mut self.interval, num(v)),
            SamplerId => set(&mut self.sampler_id, num(v).map(|x| x as u32)),
            PacketInterval => set(&mut self.packet_interval, num(v)),
            PacketSpace => set(&mut self.packet_space, num(v)),
            FirstUptime | LastUptime | FirstSeconds | LastSeconds | FirstMillis | LastMillis
            | FirstNtp | LastNtp | FirstDeltaMicros | LastDeltaMicros => {
                self.times.apply(act, v);
            }
            SysInitMillis => set(&mut self.sys_init_ms, num(v)),
        }
    }

    /// The sampling rate this record announces itself (interval fields),
    /// if any: `samplingInterval`/`samplerRandomInterval` (34/50), else
    /// `(packetInterval + packetSpace) / packetInterval` (305/306; 305
    /// alone is taken as the interval, as several exporters send it so).
    pub(super) fn own_rate(&self) -> Option<u32> {
        let r = match (self.interval, self.packet_interval, self.packet_space) {
            (Some(i), _, _) => i,
            (None, Some(n), Some(s)) if n > 0 => n.saturating_add(s) / n,
            (None, Some(n), None) => n,
            _ => return None,
        };
        Some(u32::try_from(r).unwrap_or(u32::MAX))
    }

    /// Resolves the alternatives into the record (times are done by the
    /// caller, which knows the clock).
    pub(super) fn finish(&mut self) {
        let r = &mut self.rec;
        r.bytes = self.bytes.or(self.bytes_total).or(self.init_bytes).unwrap_or(0);
        r.packets = self.packets.or(self.packets_total).or(self.init_packets).unwrap_or(0);
        r.out_bytes = self.out_bytes.or(self.out_bytes_total).or(self.resp_bytes);
        r.out_packets = self.out_packets.or(self.out_packets_total).or(self.resp_packets);
        r.src_addr = addr(self.src4, self.src6);
        r.dst_addr = addr(self.dst4, self.dst6);
        r.input_if = r.input_if.or(self.in_if_phys);
        r.output_if = r.output_if.or(self.out_if_phys);
        r.src_vlan = r.src_vlan.or(self.src_vlan_q);
        r.dst_vlan = r.dst_vlan.or(self.dst_vlan_q);
        let icmp = self.icmp.or(match (self.icmp_type, self.icmp_code) {
            (None, None) => None,
            (t, c) => Some(u16::from(t.unwrap_or(0)) << 8 | u16::from(c.unwrap_or(0))),
        });
        // Only for ICMP flows: some exporters send the element (as 0) in
        // every record of a shared template.
        if let Some(tc) = icmp
            && (r.proto == 1 || r.proto == 58)
        {
            r.src_port = 0;
            r.dst_port = tc;
        }
    }
}

#[inline]
fn ip4(v: u32) -> u128 {
    ip_to_u128(Ipv4Addr::from(v).into())
}

#[inline]
fn ntp(v: &[u8]) -> Option<u64> {
    if v.len() == 8 { Some(ntp_to_ms(be_uint(v))) } else { None }
}

fn addr(a4: Option<u32>, a6: Option<u128>) -> Option<u128> {
    match (a4, a6) {
        (Some(0), Some(b)) if b != 0 => Some(ip_to_u128(Ipv6Addr::from(b).into())),
        (Some(a), _) => Some(ip4(a)),
        (None, Some(b)) => Some(ip_to_u128(Ipv6Addr::from(b).into())),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(up: Option<u32>, init: Option<u64>) -> Clock {
        Clock { export_ms: 1_000_000, sys_uptime: up, sys_init_ms: init, received_ms: 7 }
    }

    #[test]
    fn ntp_conversion() {
        // 2023-02-28T09:46:01.5Z = 1677577561.5
        let secs = 1_677_577_561u64 + 2_208_988_800;
        assert_eq!(ntp_to_ms((secs << 32) | 0x8000_0000), 1_677_577_561_500);
    }

    #[test]
    fn time_preferences() {
        let t = Times { first_up: Some(1000), last_up: Some(2000), ..Default::default() };
        assert_eq!(t.resolve(&clock(Some(3000), None)), (998_000, 999_000));
        assert_eq!(t.resolve(&clock(None, Some(50_000))), (51_000, 52_000));
        assert_eq!(t.resolve(&clock(None, None)), (999_000, 1_000_000));
        let t = Times { first_abs: Some(5), last_delta_us: Some(2_000_000), ..Default::default() };
        assert_eq!(t.resolve(&clock(None, None)), (5, 998_000));
        let t = Times::default();
        assert_eq!(t.resolve(&clock(Some(1), None)), (7, 7));
        let t = Times { first_abs: Some(9), last_abs: Some(3), ..Default::default() };
        assert_eq!(t.resolve(&clock(None, None)), (3, 9));
        let t = Times { last_abs: Some(3), ..Default::default() };
        assert_eq!(t.resolve(&clock(None, None)), (3, 3));
    }

    #[test]
    fn counters_and_icmp_precedence() {
        let mut s = Scratch::default();
        s.apply(Act::BytesTotal, &[0, 9]);
        s.apply(Act::Bytes, &[5]);
        s.apply(Act::ResponderBytes, &[1, 0]);
        s.apply(Act::Proto, &[1]);
        s.apply(Act::DstPort, &[0, 0]);
        s.apply(Act::IcmpType, &[8]);
        s.apply(Act::Src4, &[1, 2, 3]); // wrong size: ignored
        s.finish();
        assert_eq!((s.rec.bytes, s.rec.out_bytes, s.rec.dst_port), (5, Some(256), 0x0800));
        assert_eq!(s.rec.src_addr, None);
    }
}
