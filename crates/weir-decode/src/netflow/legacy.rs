//! NetFlow v1, v5 and v7: a fixed header and fixed-size records.
//!
//! | version | header | record | max records | sequence |
//! |---|---|---|---|---|
//! | 1 | 16 | 48 | 24 | none |
//! | 5 | 24 | 48 | 30 | flow_sequence, next = seq + count |
//! | 7 | 24 | 52 | 28 | flow_sequence, next = seq + count |
//!
//! Times: `First`/`Last` are sysUptime (ms since boot) values, made absolute
//! with the header's sysUptime and unix_secs + unix_nsecs (see
//! [`super::ie::uptime_to_abs`] for the 32-bit wrap rule).
//!
//! A header announcing more records than the datagram holds (or more than
//! the version allows) is decoded as far as whole records go, and the
//! shortfall is reported as a `Truncated` error; the records present are
//! still used. Ports are kept as exported (v5 exporters already put ICMP
//! type/code into the destination port).

use weir_record::{FlowRecord, ip_to_u128};

use super::ie::uptime_to_abs;
use super::{be16, be32};
use crate::{
    AccountKey, Accounts, Datagram, DatagramInfo, DecodeError, DecoderConfig, Emit, ErrorKind,
    Event, HeaderInfo, Protocol, Sink,
};

/// Header length, record length and record limit of a version.
fn layout(version: u16) -> Option<(Protocol, usize, usize, usize)> {
    match version {
        1 => Some((Protocol::V1, 16, 48, 24)),
        5 => Some((Protocol::V5, 24, 48, 30)),
        7 => Some((Protocol::V7, 24, 52, 28)),
        _ => None,
    }
}

pub(super) fn decode(
    dg: &Datagram<'_>,
    cfg: &DecoderConfig,
    acc: &mut Accounts,
    sink: &mut dyn Sink,
) -> Result<DatagramInfo, DecodeError> {
    let p = dg.payload;
    let err = |off, kind| DecodeError::new(dg.exporter, off, kind);
    let version = be16(p, 0).unwrap_or(0);
    let Some((protocol, hlen, rlen, max)) = layout(version) else {
        return Err(err(0, ErrorKind::UnsupportedVersion(u32::from(version))));
    };
    if p.len() < hlen {
        return Err(err(
            0,
            ErrorKind::Truncated {
                what: protocol_header_name(protocol),
                need: hlen,
                have: p.len(),
            },
        ));
    }
    // The length check above makes every read below present.
    let count = usize::from(be16(p, 2).unwrap_or(0));
    let sys_uptime = be32(p, 4).unwrap_or(0);
    let unix_secs = be32(p, 8).unwrap_or(0);
    let unix_nsecs = be32(p, 12).unwrap_or(0);
    let (sequence, engine) = if protocol == Protocol::V1 {
        (0, None)
    } else {
        let seq = be32(p, 16).unwrap_or(0);
        let engine = if protocol == Protocol::V5 {
            Some((p[20], p[21], be16(p, 22).unwrap_or(0)))
        } else {
            None
        };
        (seq, engine)
    };
    let exporter = dg.exporter.ip();
    let key = AccountKey { exporter, protocol: Some(protocol), domain: 0 };
    let sysid = acc.entry(key).sysid;
    let sequence_failures = if protocol == Protocol::V1 {
        0
    } else {
        acc.sequence(key, sequence, sequence.wrapping_add(count as u32))
    };

    // Sampling (v5): top 2 bits mode, low 14 bits interval.
    let rate = engine.map_or(0, |(_, _, s)| u32::from(s & 0x3fff));
    if rate > 1 {
        acc.entry(key).sampling_rate = rate;
    }

    let header = HeaderInfo {
        exporter: dg.exporter,
        protocol,
        count: count as u32,
        sys_uptime_ms: sys_uptime,
        unix_secs,
        sequence,
        domain: 0,
        agent: None,
        engine,
    };
    let mut emit = Emit::new(sink, cfg.sampling, exporter, sysid);
    emit.event(&Event::Header(&header));

    let export_ms = u64::from(unix_secs) * 1000 + u64::from(unix_nsecs / 1_000_000);
    let mut errors = Vec::new();
    let body = p.get(hlen..).unwrap_or_default();
    let present = body.len() / rlen;
    if count > max {
        // More than the version allows: still use the records that are there.
        let e = err(2, ErrorKind::BadLength { what: "record count", length: count });
        emit.event(&Event::Error(&e));
        errors.push(e);
    } else if present < count {
        let e = err(
            hlen + present * rlen,
            ErrorKind::Truncated {
                what: "flow record",
                need: (count - present) * rlen,
                have: body.len() - present * rlen,
            },
        );
        emit.event(&Event::Error(&e));
        errors.push(e);
    }
    for r in body.chunks_exact(rlen).take(count) {
        let mut rec = record(protocol, r, sys_uptime, export_ms);
        rec.received = dg.received_ms;
        if rate > 1 {
            rec.sampling_rate = Some(rate);
        }
        if let Some((t, id, _)) = engine {
            rec.engine_type = Some(t);
            rec.engine_id = Some(id);
        }
        emit.flow(&mut rec);
    }

    Ok(DatagramInfo {
        protocol,
        domain: 0,
        exporter,
        flows: emit.flows,
        packets: emit.packets,
        sampling_rate: emit.sampling_rate,
        bytes: emit.bytes,
        unknown_template_sets: 0,
        sequence_failures,
        errors,
    })
}

fn protocol_header_name(p: Protocol) -> &'static str {
    match p {
        Protocol::V1 => "netflow v1 header",
        Protocol::V7 => "netflow v7 header",
        _ => "netflow v5 header",
    }
}

/// One record; `r` is exactly one record long (48 or 52 bytes).
fn record(protocol: Protocol, r: &[u8], sys_uptime: u32, export_ms: u64) -> FlowRecord {
    let u32_at = |o| be32(r, o).unwrap_or(0);
    let u16_at = |o| be16(r, o).unwrap_or(0);
    let u8_at = |o: usize| r.get(o).copied().unwrap_or(0);
    let v4 = |o| Some(ip_to_u128(std::net::Ipv4Addr::from(u32_at(o)).into()));
    let first = uptime_to_abs(u32_at(24), sys_uptime, export_ms);
    let last = uptime_to_abs(u32_at(28), sys_uptime, export_ms);
    let mut rec = FlowRecord {
        first: first.min(last),
        last: first.max(last),
        src_addr: v4(0),
        dst_addr: v4(4),
        next_hop: v4(8),
        input_if: Some(u32::from(u16_at(12))),
        output_if: Some(u32::from(u16_at(14))),
        packets: u64::from(u32_at(16)),
        bytes: u64::from(u32_at(20)),
        src_port: u16_at(32),
        dst_port: u16_at(34),
        flow_version: Some(match protocol {
            Protocol::V1 => 1,
            Protocol::V5 => 5,
            _ => 7,
        }),
        ..FlowRecord::default()
    };
    if protocol == Protocol::V1 {
        rec.proto = u8_at(38);
        rec.src_tos = u8_at(39);
        rec.tcp_flags = u8_at(40);
    } else {
        rec.tcp_flags = u8_at(37);
        rec.proto = u8_at(38);
        rec.src_tos = u8_at(39);
        rec.src_as = Some(u32::from(u16_at(40)));
        rec.dst_as = Some(u32::from(u16_at(42)));
        rec.src_mask = Some(u8_at(44));
        rec.dst_mask = Some(u8_at(45));
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, DecoderConfig, SamplingPolicy};

    #[derive(Default)]
    struct Collect {
        flows: Vec<FlowRecord>,
        errors: usize,
        headers: usize,
    }
    impl Sink for Collect {
        fn flow(&mut self, f: &FlowRecord) {
            self.flows.push(f.clone());
        }
        fn event(&mut self, e: &Event<'_>) {
            match e {
                Event::Error(_) => self.errors += 1,
                Event::Header(_) => self.headers += 1,
                _ => {}
            }
        }
    }

    fn v5(count: u16, seq: u32, records: usize, sampling: u16) -> Vec<u8> {
        let mut p = vec![0u8; 24];
        p[0..2].copy_from_slice(&5u16.to_be_bytes());
        p[2..4].copy_from_slice(&count.to_be_bytes());
        p[4..8].copy_from_slice(&10_000u32.to_be_bytes()); // uptime 10 s
        p[8..12].copy_from_slice(&1_700_000_000u32.to_be_bytes());
        p[12..16].copy_from_slice(&5_000_000u32.to_be_bytes()); // 5 ms
        p[16..20].copy_from_slice(&seq.to_be_bytes());
        p[20] = 1;
        p[21] = 2;
        p[22..24].copy_from_slice(&sampling.to_be_bytes());
        for i in 0..records {
            let mut r = [0u8; 48];
            r[0..4].copy_from_slice(&[10, 0, 0, i as u8]);
            r[4..8].copy_from_slice(&[192, 0, 2, 1]);
            r[16..20].copy_from_slice(&3u32.to_be_bytes());
            r[20..24].copy_from_slice(&180u32.to_be_bytes());
            r[24..28].copy_from_slice(&9_000u32.to_be_bytes());
            r[28..32].copy_from_slice(&9_500u32.to_be_bytes());
            r[32..34].copy_from_slice(&1234u16.to_be_bytes());
            r[34..36].copy_from_slice(&80u16.to_be_bytes());
            r[37] = 0x12;
            r[38] = 6;
            r[40..42].copy_from_slice(&65000u16.to_be_bytes());
            r[44] = 24;
            p.extend_from_slice(&r);
        }
        p
    }

    fn run(dec: &mut Decoder, p: &[u8]) -> (Result<DatagramInfo, DecodeError>, Collect) {
        let mut c = Collect::default();
        let dg =
            Datagram { exporter: "192.0.2.9:2055".parse().unwrap(), received_ms: 1, payload: p };
        (dec.decode(&dg, &mut c), c)
    }

    #[test]
    fn v5_records_times_sampling_sequence() {
        let mut dec =
            Decoder::new(DecoderConfig { sampling: SamplingPolicy::Raw, ..Default::default() });
        let (info, c) = run(&mut dec, &v5(2, 100, 2, 0x4000 | 10));
        let info = info.unwrap();
        assert_eq!((info.flows, info.sequence_failures, c.headers), (2, 0, 1));
        let f = &c.flows[0];
        let export = 1_700_000_000_005u64;
        assert_eq!(f.first, export - 1000);
        assert_eq!(f.last, export - 500);
        assert_eq!((f.src_port, f.dst_port, f.proto, f.tcp_flags), (1234, 80, 6, 0x12));
        assert_eq!((f.packets, f.bytes, f.sampling_rate), (3, 180, Some(10)));
        assert_eq!(
            (f.engine_type, f.engine_id, f.src_as, f.src_mask),
            (Some(1), Some(2), Some(65000), Some(24))
        );
        assert_eq!(f.flow_version, Some(5));
        // next expected is 102; 105 means 3 missed.
        let (info, _) = run(&mut dec, &v5(1, 105, 1, 0));
        assert_eq!(info.unwrap().sequence_failures, 3);
    }

    #[test]
    fn v5_count_overflow_decodes_present_records() {
        let mut dec = Decoder::default();
        let (info, c) = run(&mut dec, &v5(30, 0, 2, 0));
        let info = info.unwrap();
        assert_eq!((info.flows, info.errors.len(), c.errors), (2, 1, 1));
        assert_eq!(info.errors[0].offset, 24 + 2 * 48);
    }

    #[test]
    fn short_header_is_err() {
        let mut dec = Decoder::default();
        let p = v5(0, 0, 0, 0);
        for n in 4..24 {
            assert!(run(&mut dec, &p[..n]).0.is_err());
        }
    }

    #[test]
    fn uptime_wrap_never_in_future() {
        // Header uptime 1 s after a wrap; record ended 2 s before the wrap.
        let up = 1000u32;
        let rec = u32::MAX - 1999;
        assert_eq!(uptime_to_abs(rec, up, 1_000_000), 1_000_000 - 3000);
        // Slightly in the future (exporter skew): clamped to export time.
        assert_eq!(uptime_to_abs(up + 5, up, 1_000_000), 1_000_000);
        // Far in the past (32 days) is not mistaken for a wrap.
        let old = 32 * 86_400_000u32;
        assert_eq!(uptime_to_abs(1000, old + 1000, 1u64 << 40), (1u64 << 40) - u64::from(old));
    }
}
