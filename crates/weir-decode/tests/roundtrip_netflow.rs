//! `decode(encode(x)) == x` for NetFlow v1/v5/v7, v9 and IPFIX, with the
//! fields each protocol can carry, through `weir_encode::netflow`.
//! Also checks that the encoders' sequence numbers are what the decoder
//! expects (no sequence failures over several datagrams).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use weir_decode::{Datagram, Decoder, DecoderConfig, SamplingPolicy, Sink};
use weir_encode::netflow::{
    LegacyEncoder, LegacyVersion, Template, TemplateEncoder, TemplateProtocol,
};
use weir_record::{FlowRecord, ip_to_u128};

const EXPORTER: &str = "192.0.2.10:2055";

#[derive(Default)]
struct Collect(Vec<FlowRecord>);

impl Sink for Collect {
    fn flow(&mut self, f: &FlowRecord) {
        self.0.push(f.clone());
    }
}

/// Decodes datagrams in order; returns the flows, and asserts there were
/// no errors and no sequence failures.
fn decode_all(datagrams: &[Vec<u8>], received_ms: u64) -> Vec<FlowRecord> {
    let mut dec =
        Decoder::new(DecoderConfig { sampling: SamplingPolicy::Raw, ..Default::default() });
    let mut sink = Collect::default();
    for d in datagrams {
        let dg = Datagram { exporter: EXPORTER.parse().unwrap(), received_ms, payload: d };
        let info = dec.decode(&dg, &mut sink).unwrap();
        assert!(info.errors.is_empty(), "{:?}", info.errors);
        assert_eq!((info.sequence_failures, info.unknown_template_sets), (0, 0));
    }
    sink.0
}

fn exporter_u128() -> u128 {
    ip_to_u128(EXPORTER.parse::<SocketAddr>().unwrap().ip())
}

fn v4() -> impl Strategy<Value = u128> {
    any::<u32>().prop_map(|a| ip_to_u128(IpAddr::V4(Ipv4Addr::from(a))))
}

fn v6() -> impl Strategy<Value = u128> {
    // Not IPv4-mapped (those are IPv4 addresses in weir's model).
    any::<u128>()
        .prop_filter("not v4-mapped", |a| a >> 32 != 0xffff)
        .prop_map(|a| ip_to_u128(IpAddr::V6(Ipv6Addr::from(a))))
}

/// (export time, boot time, first, last) with first <= last <= export
/// (whole second) and an uptime below 2^31 ms.
fn times() -> impl Strategy<Value = (u64, u64, u64, u64)> {
    (
        1_500_000_000u64..1_800_000_000,
        1_000u64..2_000_000_000,
        0u64..1_000_000,
        0u64..1_000_000,
        0u64..1000,
    )
        .prop_map(|(secs, uptime, a, b, ms)| {
            let export = secs * 1000;
            let boot = export - uptime;
            let (x, y) = (a.min(b).min(uptime), a.max(b).min(uptime));
            (export + ms, boot, export - y, export - x)
        })
}

/// A flow with the fields v1/v5/v7 carry.
fn legacy_flow(v: LegacyVersion) -> impl Strategy<Value = FlowRecord> {
    (
        (v4(), v4(), v4(), any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()),
        (any::<u16>(), any::<u16>(), any::<u8>(), any::<u8>(), any::<u8>()),
        (any::<u16>(), any::<u16>(), 0u8..=32, 0u8..=32),
    )
        .prop_map(
            move |((s, d, nh, i, o, pk, by), (sp, dp, pr, tos, fl), (sa, da, sm, dm))| {
                let mut f = FlowRecord {
                    src_addr: Some(s),
                    dst_addr: Some(d),
                    next_hop: Some(nh),
                    input_if: Some(u32::from(i)),
                    output_if: Some(u32::from(o)),
                    packets: u64::from(pk),
                    bytes: u64::from(by),
                    src_port: sp,
                    dst_port: dp,
                    proto: pr,
                    src_tos: tos,
                    tcp_flags: fl,
                    ..Default::default()
                };
                if v != LegacyVersion::V1 {
                    f.src_as = Some(u32::from(sa));
                    f.dst_as = Some(u32::from(da));
                    f.src_mask = Some(sm);
                    f.dst_mask = Some(dm);
                }
                f
            },
        )
}

fn check_legacy(v: LegacyVersion, mut flows: Vec<FlowRecord>, t: (u64, u64, u64, u64), rate: u16) {
    let (export, boot, first, last) = t;
    let mut enc = LegacyEncoder::new(v, boot);
    if v == LegacyVersion::V5 {
        enc.engine_type = 3;
        enc.engine_id = 4;
        enc.sampling = rate;
    }
    let code = match v {
        LegacyVersion::V1 => 1,
        LegacyVersion::V5 => 5,
        LegacyVersion::V7 => 7,
    };
    for f in &mut flows {
        f.first = first;
        f.last = last;
    }
    let got = decode_all(&enc.encode(&flows, export), 42);
    let want: Vec<FlowRecord> = flows
        .into_iter()
        .map(|mut f| {
            f.received = 42;
            f.flow_version = Some(code);
            f.exporter_addr = Some(exporter_u128());
            f.exporter_id = Some(1);
            if v == LegacyVersion::V5 {
                f.engine_type = Some(3);
                f.engine_id = Some(4);
                let r = u32::from(rate & 0x3fff);
                f.sampling_rate = (r > 1).then_some(r);
            }
            f
        })
        .collect();
    assert_eq!(got, want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn v1_roundtrip(flows in prop::collection::vec(legacy_flow(LegacyVersion::V1), 0..60), t in times()) {
        check_legacy(LegacyVersion::V1, flows, t, 0);
    }

    #[test]
    fn v5_roundtrip(flows in prop::collection::vec(legacy_flow(LegacyVersion::V5), 0..70), t in times(), rate in any::<u16>()) {
        check_legacy(LegacyVersion::V5, flows, t, rate);
    }

    #[test]
    fn v7_roundtrip(flows in prop::collection::vec(legacy_flow(LegacyVersion::V7), 0..60), t in times()) {
        check_legacy(LegacyVersion::V7, flows, t, 0);
    }
}

/// A flow with every field the "full" templates carry. `v6` picks the
/// address family; ICMP flows get src_port 0 (type/code in dst_port).
fn full_flow(v6_family: bool) -> impl Strategy<Value = FlowRecord> {
    let addr = move || if v6_family { v6().boxed() } else { v4().boxed() };
    (
        (
            addr(),
            addr(),
            addr(),
            addr(),
            any::<u16>(),
            any::<u16>(),
            prop::sample::select(vec![1u8, 6, 17, 47, 58]),
        ),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        ),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u8>(),
        ),
        (
            any::<u16>(),
            any::<u16>(),
            prop::array::uniform4(0u64..1 << 48),
            prop::array::uniform10(0u32..1 << 24),
        ),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            prop::option::of(2u32..100_000),
            any::<u8>(),
        ),
    )
        .prop_map(move |(a, b, c, d, e)| {
            let (src, dst, nh, bnh, sp, dp, proto) = a;
            let (tos, dtos, flags, packets, bytes, opk, oby, flows) = b;
            let (inif, outif, sas, das, nas, pas, smask, dmask) = c;
            let (svl, dvl, macs, mpls) = d;
            let (dir, fwd, et, ei, rate, end) = e;
            let icmp = proto == 1 || proto == 58;
            FlowRecord {
                src_addr: Some(src),
                dst_addr: Some(dst),
                next_hop: Some(nh),
                bgp_next_hop: Some(bnh),
                src_port: if icmp { 0 } else { sp },
                dst_port: dp,
                proto,
                src_tos: tos,
                dst_tos: Some(dtos),
                tcp_flags: flags,
                packets,
                bytes,
                out_packets: Some(opk),
                out_bytes: Some(oby),
                flows: Some(flows),
                input_if: Some(inif),
                output_if: Some(outif),
                src_as: Some(sas),
                dst_as: Some(das),
                next_as: Some(nas),
                prev_as: Some(pas),
                src_mask: Some(smask),
                dst_mask: Some(dmask),
                src_vlan: Some(svl),
                dst_vlan: Some(dvl),
                in_src_mac: Some(macs[0]),
                in_dst_mac: Some(macs[1]),
                out_src_mac: Some(macs[2]),
                out_dst_mac: Some(macs[3]),
                mpls1: Some(mpls[0]),
                mpls2: Some(mpls[1]),
                mpls3: Some(mpls[2]),
                mpls4: Some(mpls[3]),
                mpls5: Some(mpls[4]),
                mpls6: Some(mpls[5]),
                mpls7: Some(mpls[6]),
                mpls8: Some(mpls[7]),
                mpls9: Some(mpls[8]),
                mpls10: Some(mpls[9]),
                direction: Some(dir),
                fwd_status: Some(fwd),
                engine_type: Some(et),
                engine_id: Some(ei),
                sampling_rate: rate,
                end_reason: Some(end),
                ..Default::default()
            }
        })
}

fn check_templates(
    p: TemplateProtocol,
    v6_family: bool,
    mut flows: Vec<FlowRecord>,
    t: (u64, u64, u64, u64),
    max: usize,
) {
    let (export, boot, first, last) = t;
    let domain = 77;
    let mut enc = TemplateEncoder::new(p, domain, boot);
    enc.max_datagram = max;
    let tpl = if v6_family { Template::full_ipv6(300, p) } else { Template::full_ipv4(300, p) };
    enc.add_template(tpl);
    for f in &mut flows {
        f.first = first;
        f.last = last;
    }
    let mut datagrams = vec![enc.template_message(export)];
    // Two batches, so that sequence numbers carry over messages.
    let half = flows.len() / 2;
    datagrams.extend(enc.data(300, &flows[..half], export, false));
    datagrams.extend(enc.data(300, &flows[half..], export, true));
    let got = decode_all(&datagrams, 42);
    let want: Vec<FlowRecord> = flows
        .into_iter()
        .map(|mut f| {
            f.received = 42;
            f.flow_version = Some(if p == TemplateProtocol::V9 { 9 } else { 10 });
            f.obs_domain = Some(domain);
            f.exporter_addr = Some(exporter_u128());
            f.exporter_id = Some(1);
            f
        })
        .collect();
    prop_assert_eq_vec(&got, &want);
}

fn prop_assert_eq_vec(got: &[FlowRecord], want: &[FlowRecord]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn v9_roundtrip_ipv4(flows in prop::collection::vec(full_flow(false), 0..40), t in times(), max in 200usize..1500) {
        check_templates(TemplateProtocol::V9, false, flows, t, max);
    }

    #[test]
    fn v9_roundtrip_ipv6(flows in prop::collection::vec(full_flow(true), 0..40), t in times(), max in 300usize..1500) {
        check_templates(TemplateProtocol::V9, true, flows, t, max);
    }

    #[test]
    fn ipfix_roundtrip_ipv4(flows in prop::collection::vec(full_flow(false), 0..40), t in times(), max in 200usize..1500) {
        check_templates(TemplateProtocol::Ipfix, false, flows, t, max);
    }

    #[test]
    fn ipfix_roundtrip_ipv6(flows in prop::collection::vec(full_flow(true), 0..40), t in times(), max in 300usize..1500) {
        check_templates(TemplateProtocol::Ipfix, true, flows, t, max);
    }

    /// Whatever the bytes, decoding never panics (and never loops).
    #[test]
    fn arbitrary_bytes_never_panic(version in prop::sample::select(vec![1u16, 5, 7, 9, 10]), body in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut p = version.to_be_bytes().to_vec();
        p.extend(body);
        let mut dec = Decoder::default();
        let dg = Datagram { exporter: EXPORTER.parse().unwrap(), received_ms: 0, payload: &p };
        let _ = dec.decode(&dg, &mut Collect::default());
    }
}

/// Mutations of valid messages (templates + data) never panic either.
#[test]
fn mutated_messages_never_panic() {
    let flows: Vec<FlowRecord> = (0..20u8)
        .map(|i| FlowRecord {
            proto: 6,
            src_port: u16::from(i),
            packets: 1,
            bytes: 40,
            ..Default::default()
        })
        .collect();
    for p in [TemplateProtocol::V9, TemplateProtocol::Ipfix] {
        let mut enc = TemplateEncoder::new(p, 1, 0);
        enc.add_template(Template::full_ipv6(300, p));
        let msg = enc.data(300, &flows, 10_000, true).remove(0);
        let mut dec = Decoder::default();
        for i in 0..msg.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut m = msg.clone();
                m[i] = v;
                for cut in [m.len(), i + 1] {
                    let dg = Datagram {
                        exporter: EXPORTER.parse().unwrap(),
                        received_ms: 0,
                        payload: &m[..cut],
                    };
                    let _ = dec.decode(&dg, &mut Collect::default());
                }
            }
        }
    }
}

/// Sampler options: rates from a sampler table and exporter-wide.
#[test]
fn sampler_options_set_rates() {
    for p in [TemplateProtocol::V9, TemplateProtocol::Ipfix] {
        let mut enc = TemplateEncoder::new(p, 5, 0);
        let mut t = Template::ipv4(256, p);
        t.fields.push(weir_encode::netflow::Field::new(48, 4)); // sampler id, 0 = none
        enc.add_template(t);
        let flow = FlowRecord { proto: 17, packets: 2, bytes: 100, ..Default::default() };
        let mut dgs = vec![enc.sampler_options(5_000, None, 64)];
        dgs.extend(enc.data(256, std::slice::from_ref(&flow), 5_000, true));
        let mut dec =
            Decoder::new(DecoderConfig { sampling: SamplingPolicy::Scale, ..Default::default() });
        let mut sink = Collect::default();
        for d in &dgs {
            let dg = Datagram { exporter: EXPORTER.parse().unwrap(), received_ms: 0, payload: d };
            let info = dec.decode(&dg, &mut sink).unwrap();
            assert!(info.errors.is_empty(), "{:?}", info.errors);
            assert_eq!(info.sequence_failures, 0);
        }
        assert_eq!(sink.0.len(), 1);
        assert_eq!(
            (sink.0[0].sampling_rate, sink.0[0].packets, sink.0[0].bytes),
            (Some(64), 128, 6400)
        );
        // A sampler-specific rate (sampler 0, as the records carry) wins.
        let d = enc.sampler_options(6_000, Some(0), 10);
        let dg = Datagram { exporter: EXPORTER.parse().unwrap(), received_ms: 0, payload: &d };
        dec.decode(&dg, &mut sink).unwrap();
        for d in enc.data(256, std::slice::from_ref(&flow), 6_000, false) {
            let dg = Datagram { exporter: EXPORTER.parse().unwrap(), received_ms: 0, payload: &d };
            dec.decode(&dg, &mut sink).unwrap();
        }
        assert_eq!(sink.0[1].sampling_rate, Some(10));
    }
}
