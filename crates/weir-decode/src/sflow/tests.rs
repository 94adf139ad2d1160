use std::net::{IpAddr, SocketAddr};

use weir_encode::sflow::{
    Agent, AsPathSegment, CounterData, Datagram as SfDatagram, FlowData, GenericCounters,
    Interface, Packet, Sample,
};
use weir_record::{FlowRecord, ip_to_u128};

use crate::{
    CounterSample, Datagram, DatagramInfo, DecodeError, Decoder, DecoderConfig, ErrorKind, Event,
    HeaderInfo, SamplingPolicy, Sink,
};

#[derive(Default)]
struct Collect {
    flows: Vec<FlowRecord>,
    counters: Vec<CounterSample>,
    headers: Vec<HeaderInfo>,
    errors: Vec<DecodeError>,
}

impl Sink for Collect {
    fn flow(&mut self, f: &FlowRecord) {
        self.flows.push(f.clone());
    }
    fn event(&mut self, e: &Event<'_>) {
        match e {
            Event::Counters(c) => self.counters.push(**c),
            Event::Header(h) => self.headers.push((*h).clone()),
            Event::Error(e) => self.errors.push((*e).clone()),
            _ => {}
        }
    }
}

const FROM: &str = "198.51.100.9:50000";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn decode_with(dec: &mut Decoder, bytes: &[u8]) -> (Result<DatagramInfo, DecodeError>, Collect) {
    let mut sink = Collect::default();
    let dg = Datagram {
        exporter: FROM.parse().unwrap(),
        received_ms: 1_700_000_000_123,
        payload: bytes,
    };
    let r = dec.decode(&dg, &mut sink);
    (r, sink)
}

fn decode(policy: SamplingPolicy, bytes: &[u8]) -> (Result<DatagramInfo, DecodeError>, Collect) {
    let mut dec = Decoder::new(DecoderConfig { sampling: policy, ..DecoderConfig::default() });
    decode_with(&mut dec, bytes)
}

fn tcp_packet() -> Packet {
    let mut p = Packet::udp(ip("10.1.1.1"), ip("10.2.2.2"), 40000, 443);
    p.proto = 6;
    p.tcp_flags = 0x18;
    p.tos = 0x20;
    p.vlans = vec![42];
    p.payload_len = 1000;
    p
}

#[test]
fn flow_sample_with_raw_header() {
    let mut agent = Agent::new(ip("192.0.2.1"), 3);
    let s = agent.flow_sample(
        5,
        512,
        Interface::Index(5),
        Interface::Index(9),
        vec![tcp_packet().raw_header(128)],
    );
    let bytes = agent.datagram(12_345, vec![s]).encode();

    let (info, sink) = decode(SamplingPolicy::Scale, &bytes);
    let info = info.unwrap();
    assert_eq!((info.exporter, info.domain, info.flows), (ip("192.0.2.1"), 3, 1));
    assert!(info.errors.is_empty());
    let f = &sink.flows[0];
    let t = 1_700_000_000_123;
    assert_eq!((f.first, f.last, f.received), (t, t, t));
    assert_eq!(f.src_addr, Some(ip_to_u128(ip("10.1.1.1"))));
    assert_eq!(f.dst_addr, Some(ip_to_u128(ip("10.2.2.2"))));
    assert_eq!(
        (f.proto, f.src_port, f.dst_port, f.tcp_flags, f.src_tos),
        (6, 40000, 443, 0x18, 0x20)
    );
    // Ethernet 14 + VLAN 4 + IPv4 20 + TCP 20 + 1000 + FCS 4 = 1062, times the rate.
    assert_eq!((f.packets, f.bytes, f.sampling_rate), (512, 1062 * 512, Some(512)));
    assert_eq!((f.input_if, f.output_if), (Some(5), Some(9)));
    assert_eq!(f.src_vlan, Some(42));
    assert_eq!((f.in_src_mac, f.in_dst_mac), (Some(0x0200_0000_0001), Some(0x0200_0000_0002)));
    assert_eq!((f.flow_version, f.obs_domain), (Some(0x85), Some(3)));
    assert_eq!((f.exporter_addr, f.exporter_id), (Some(ip_to_u128(ip("192.0.2.1"))), Some(1)));

    let h = &sink.headers[0];
    assert_eq!((h.count, h.sys_uptime_ms, h.sequence, h.domain), (1, 12_345, 1, 3));
    assert_eq!(h.agent, Some(ip("192.0.2.1")));
    assert_eq!(h.exporter, FROM.parse::<SocketAddr>().unwrap());

    let (_, raw) = decode(SamplingPolicy::Raw, &bytes);
    assert_eq!(
        (raw.flows[0].packets, raw.flows[0].bytes, raw.flows[0].sampling_rate),
        (1, 1062, Some(512))
    );
}

#[test]
fn account_is_the_agent_and_sub_agent() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut agent = Agent::new(ip("2001:db8::7"), 9);
    let s = agent.flow_sample(
        1,
        64,
        Interface::Index(1),
        Interface::Index(2),
        vec![tcp_packet().raw_header(128)],
    );
    let bytes = agent.datagram(0, vec![s]).encode();
    decode_with(&mut dec, &bytes).0.unwrap();
    let (key, a) = dec.accounts().iter().next().unwrap();
    assert_eq!(
        (key.exporter, key.domain, key.protocol),
        (ip("2001:db8::7"), 9, Some(crate::Protocol::Sflow5))
    );
    assert_eq!((a.datagrams, a.flows, a.sampling_rate), (1, 1, 64));
}

#[test]
fn interface_formats() {
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    let rec = vec![tcp_packet().raw_header(128)];
    let samples = vec![
        agent.flow_sample(1, 1, Interface::Index(1), Interface::LOCAL, rec.clone()),
        agent.flow_sample(1, 1, Interface::Index(1), Interface::Multiple(7), rec.clone()),
        agent.flow_sample(1, 1, Interface::Index(1), Interface::Discarded(258), rec.clone()),
    ];
    let (_, sink) = decode(SamplingPolicy::Raw, &agent.datagram(0, samples).encode());
    let outs: Vec<_> = sink.flows.iter().map(|f| f.output_if).collect();
    assert_eq!(outs, [Some(0x3fff_ffff), Some(7), Some(258)]);

    agent.expanded = true;
    let s =
        agent.flow_sample(0x0100_0000, 1, Interface::Index(0x4000_0001), Interface::Index(2), rec);
    let (_, sink) = decode(SamplingPolicy::Raw, &agent.datagram(0, vec![s]).encode());
    assert_eq!((sink.flows[0].input_if, sink.flows[0].output_if), (Some(0x4000_0001), Some(2)));
}

#[test]
fn expanded_sample_with_extended_records() {
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    agent.expanded = true;
    let records = vec![
        FlowData::Switch { src_vlan: 100, src_priority: 0, dst_vlan: 200, dst_priority: 0 },
        tcp_packet().raw_header(128),
        FlowData::Router { next_hop: Some(ip("10.9.9.9")), src_mask: 24, dst_mask: 16 },
        FlowData::Gateway {
            next_hop: Some(ip("2001:db8::1")),
            as_number: 65000,
            src_as: 65001,
            src_peer_as: 65002,
            as_path: vec![
                AsPathSegment { kind: 2, asns: vec![65010, 65011] },
                AsPathSegment { kind: 1, asns: vec![65020] },
            ],
            communities: vec![1, 2, 3],
            local_pref: 100,
        },
        FlowData::Other { enterprise: 4413, format: 7, data: vec![1, 2, 3, 4, 5] },
    ];
    let s = agent.flow_sample(1, 1, Interface::Index(1), Interface::Index(2), records);
    let (info, sink) = decode(SamplingPolicy::Raw, &agent.datagram(0, vec![s]).encode());
    assert!(info.unwrap().errors.is_empty());
    let f = &sink.flows[0];
    assert_eq!((f.src_vlan, f.dst_vlan), (Some(100), Some(200)));
    assert_eq!(
        (f.next_hop, f.src_mask, f.dst_mask),
        (Some(ip_to_u128(ip("10.9.9.9"))), Some(24), Some(16))
    );
    assert_eq!(f.bgp_next_hop, Some(ip_to_u128(ip("2001:db8::1"))));
    assert_eq!(
        (f.src_as, f.prev_as, f.next_as, f.dst_as),
        (Some(65001), Some(65002), Some(65010), Some(65020))
    );
    assert_eq!(f.dst_port, 443);
}

#[test]
fn empty_as_path_leaves_dst_and_next_as_unset() {
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    let records = vec![FlowData::Gateway {
        next_hop: None,
        as_number: 65000,
        src_as: 0,
        src_peer_as: 0,
        as_path: vec![],
        communities: vec![],
        local_pref: 0,
    }];
    let s = agent.flow_sample(1, 1, Interface::Index(1), Interface::Index(2), records);
    let (_, sink) = decode(SamplingPolicy::Raw, &agent.datagram(0, vec![s]).encode());
    let f = &sink.flows[0];
    assert_eq!((f.bgp_next_hop, f.src_as, f.dst_as, f.next_as), (None, Some(0), None, None));
}

#[test]
fn sampled_ip_records_without_raw_header() {
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    let v4 = FlowData::SampledIp {
        length: 576,
        proto: 17,
        src: ip("10.0.0.1"),
        dst: ip("10.0.0.2"),
        src_port: 53,
        dst_port: 1053,
        tcp_flags: 0,
        tos: 8,
    };
    let v6 = FlowData::SampledIp {
        length: 100,
        proto: 58,
        src: ip("2001:db8::1"),
        dst: ip("2001:db8::2"),
        src_port: 128,
        dst_port: 0,
        tcp_flags: 0,
        tos: 0,
    };
    let eth =
        FlowData::SampledEthernet { length: 60, src_mac: 0xa, dst_mac: 0xb, ethertype: 0x0806 };
    let samples = vec![
        agent.flow_sample(1, 10, Interface::Index(1), Interface::Index(2), vec![v4]),
        agent.flow_sample(1, 10, Interface::Index(1), Interface::Index(2), vec![v6]),
        agent.flow_sample(1, 10, Interface::Index(1), Interface::Index(2), vec![eth]),
    ];
    let (_, sink) = decode(SamplingPolicy::Raw, &agent.datagram(0, samples).encode());
    let f = &sink.flows;
    assert_eq!(
        (f[0].src_addr, f[0].proto, f[0].src_port, f[0].dst_port, f[0].src_tos, f[0].bytes),
        (Some(ip_to_u128(ip("10.0.0.1"))), 17, 53, 1053, 8, 576)
    );
    // ICMPv6 echo request: type in the sampled src_port field.
    assert_eq!((f[1].proto, f[1].src_port, f[1].dst_port), (58, 0, 128 << 8));
    assert_eq!(
        (f[2].src_addr, f[2].in_src_mac, f[2].in_dst_mac, f[2].bytes),
        (None, Some(0xa), Some(0xb), 60)
    );
}

#[test]
fn non_ip_frame_is_still_a_flow() {
    let mut frame = vec![0xff; 12];
    frame.extend_from_slice(&[0x08, 0x06]);
    frame.extend_from_slice(&[0; 28]);
    let rec = FlowData::RawHeader { protocol: 1, frame_length: 64, stripped: 4, header: frame };
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    let s = agent.flow_sample(1, 100, Interface::Index(1), Interface::Index(2), vec![rec]);
    let (_, sink) = decode(SamplingPolicy::Scale, &agent.datagram(0, vec![s]).encode());
    let f = &sink.flows[0];
    assert_eq!((f.src_addr, f.proto, f.packets, f.bytes), (None, 0, 100, 6400));
    assert_eq!(f.in_dst_mac, Some(0xffff_ffff_ffff));
}

#[test]
fn ip_header_protocols() {
    let mut p = Packet::udp(ip("2001:db8::1"), ip("2001:db8::2"), 1, 2);
    p.proto = 58;
    p.dst_port = 0x8000;
    let q = Packet::udp(ip("10.0.0.1"), ip("10.0.0.2"), 3, 4);
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    let samples = vec![
        agent.flow_sample(
            1,
            1,
            Interface::Index(1),
            Interface::Index(2),
            vec![p.raw_ip_header(64)],
        ),
        agent.flow_sample(
            1,
            1,
            Interface::Index(1),
            Interface::Index(2),
            vec![q.raw_ip_header(64)],
        ),
    ];
    let (_, sink) = decode(SamplingPolicy::Raw, &agent.datagram(0, samples).encode());
    assert_eq!(
        (sink.flows[0].proto, sink.flows[0].dst_port, sink.flows[0].bytes),
        (58, 0x8000, 40 + 8 + 64)
    );
    assert_eq!((sink.flows[1].src_port, sink.flows[1].in_src_mac), (3, None));
}

fn generic(if_index: u32) -> GenericCounters {
    GenericCounters {
        if_index,
        if_type: 6,
        if_speed: 10_000_000_000,
        if_direction: 1,
        if_status: 3,
        in_octets: 1 << 40,
        in_ucast: 11,
        in_mcast: 12,
        in_bcast: 13,
        in_discards: 14,
        in_errors: 15,
        in_unknown_protos: 16,
        out_octets: (1 << 41) + 1,
        out_ucast: 21,
        out_mcast: 22,
        out_bcast: 23,
        out_discards: 24,
        out_errors: 25,
        promiscuous: 2,
    }
}

#[test]
fn counter_samples() {
    let mut agent = Agent::new(ip("192.0.2.1"), 4);
    let c1 = agent.counters_sample(
        7,
        vec![
            CounterData::Other { enterprise: 0, format: 2, data: vec![0; 52] },
            CounterData::Generic(generic(7)),
        ],
    );
    agent.expanded = true;
    let c2 = agent.counters_sample(8, vec![CounterData::Generic(generic(8))]);
    let c3 = agent.counters_sample(
        9,
        vec![CounterData::Other { enterprise: 0, format: 1005, data: vec![0; 8] }],
    );
    let (info, sink) = decode(SamplingPolicy::Scale, &agent.datagram(0, vec![c1, c2, c3]).encode());
    let info = info.unwrap();
    assert_eq!((info.flows, info.errors.len()), (0, 0));
    assert_eq!(sink.counters.len(), 2);
    let c = &sink.counters[0];
    assert_eq!((c.agent, c.sub_agent, c.sequence, c.source_id), (Some(ip("192.0.2.1")), 4, 1, 7));
    assert_eq!(c.received_ms, 1_700_000_000_123);
    let g = generic(7);
    assert_eq!(
        (c.if_index, c.if_type, c.if_speed, c.if_direction, c.if_status),
        (7, 6, g.if_speed, 1, 3)
    );
    assert_eq!(
        (
            c.in_octets,
            c.in_ucast,
            c.in_mcast,
            c.in_bcast,
            c.in_discards,
            c.in_errors,
            c.in_unknown_protos
        ),
        (g.in_octets, 11, 12, 13, 14, 15, 16)
    );
    assert_eq!(
        (
            c.out_octets,
            c.out_ucast,
            c.out_mcast,
            c.out_bcast,
            c.out_discards,
            c.out_errors,
            c.promiscuous
        ),
        (g.out_octets, 21, 22, 23, 24, 25, 2)
    );
    assert_eq!(sink.counters[1].if_index, 8);
}

#[test]
fn counter_source_ids() {
    assert_eq!(super::counters::event_source_id(0, 0x4b00_0800), 0x4b00_0800);
    assert_eq!(super::counters::event_source_id(2, 0x4b00_0801), 0x0200_0801);
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    agent.expanded = true;
    let c = agent.counters_sample(0x4b00_0800, vec![CounterData::Generic(generic(1))]);
    let (_, sink) = decode(SamplingPolicy::Raw, &agent.datagram(0, vec![c]).encode());
    assert_eq!(sink.counters[0].source_id, 0x4b00_0800);
}

#[test]
fn sequence_gaps_of_datagrams_and_samples() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    let rec = vec![tcp_packet().raw_header(128)];
    let mut send = |agent: &mut Agent, n_samples: usize| {
        let samples = (0..n_samples)
            .map(|_| agent.flow_sample(1, 1, Interface::Index(1), Interface::Index(2), rec.clone()))
            .collect();
        let bytes = agent.datagram(0, samples).encode();
        decode_with(&mut dec, &bytes).0.unwrap().sequence_failures
    };
    assert_eq!(send(&mut agent, 2), 0);
    assert_eq!(send(&mut agent, 2), 0);
    // Lose one datagram of 3 samples: 1 datagram + 3 samples missed.
    let lost = (0..3)
        .map(|_| agent.flow_sample(1, 1, Interface::Index(1), Interface::Index(2), vec![]))
        .collect();
    let _ = agent.datagram(0, lost);
    assert_eq!(send(&mut agent, 1), 1 + 3);
    // A counter sample source is independent of the flow source.
    let c = agent.counters_sample(1, vec![]);
    let bytes = agent.datagram(0, vec![c]).encode();
    assert_eq!(decode_with(&mut dec, &bytes).0.unwrap().sequence_failures, 0);
    let (_, a) = dec.accounts().iter().next().unwrap();
    assert_eq!(a.sequence_failures, 4);
}

#[test]
fn sample_sequence_map_is_bounded() {
    let mut st = super::SflowState::default();
    for i in 0..(super::MAX_SAMPLE_SOURCES as u64 + 10) {
        let k =
            super::SourceKey { agent: ip("192.0.2.1"), sub_agent: 0, source: i, counters: false };
        assert_eq!(st.sample_sequence(k, 5), 0);
    }
    assert!(st.next_sample_seq.len() <= super::MAX_SAMPLE_SOURCES);
}

fn one_flow_datagram() -> Vec<u8> {
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    let samples = vec![
        agent.flow_sample(
            1,
            1,
            Interface::Index(1),
            Interface::Index(2),
            vec![tcp_packet().raw_header(128)],
        ),
        agent.counters_sample(1, vec![CounterData::Generic(generic(1))]),
    ];
    agent.datagram(0, samples).encode()
}

#[test]
fn bad_header_is_err() {
    let b = one_flow_datagram();
    for n in 4..28 {
        let (r, sink) = decode(SamplingPolicy::Raw, &b[..n]);
        let e = r.unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{n}: {e}");
        assert_eq!(sink.errors.len(), 1);
    }
    let mut bad = b.clone();
    bad[7] = 3;
    let e = decode(SamplingPolicy::Raw, &bad).0.unwrap_err();
    assert_eq!((e.offset, e.kind.name()), (4, "invalid"));
}

#[test]
fn every_truncation_is_handled() {
    let b = one_flow_datagram();
    for n in 28..b.len() {
        let (r, sink) = decode(SamplingPolicy::Raw, &b[..n]);
        let info = r.unwrap();
        assert!(!info.errors.is_empty(), "cut at {n}");
        assert_eq!(sink.errors.len(), info.errors.len());
        assert!(info.errors.iter().all(|e| e.offset <= n));
    }
    let (r, sink) = decode(SamplingPolicy::Raw, &b);
    assert!(r.unwrap().errors.is_empty());
    assert_eq!((sink.flows.len(), sink.counters.len()), (1, 1));
}

#[test]
fn bad_record_skips_only_its_sample() {
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    let good = tcp_packet().raw_header(128);
    // A record claiming more bytes than its sample holds.
    let mut s1 =
        agent.flow_sample(1, 1, Interface::Index(1), Interface::Index(2), vec![good.clone()]);
    if let Sample::Flow(f) = &mut s1 {
        f.records = vec![FlowData::Other { enterprise: 0, format: 1001, data: vec![0; 4] }];
    }
    let s2 = agent.flow_sample(1, 1, Interface::Index(1), Interface::Index(2), vec![good]);
    let bytes = agent.datagram(0, vec![s1, s2]).encode();
    let (info, sink) = decode(SamplingPolicy::Raw, &bytes);
    let info = info.unwrap();
    assert_eq!((info.flows, info.errors.len(), sink.flows.len()), (1, 1, 1));
    assert_eq!(info.errors[0].kind.name(), "truncated");

    // A sample length beyond the datagram ends the datagram.
    let mut b = one_flow_datagram();
    b[28 + 4..28 + 8].copy_from_slice(&u32::MAX.to_be_bytes());
    let (info, sink) = decode(SamplingPolicy::Raw, &b);
    let info = info.unwrap();
    assert_eq!((info.flows, sink.counters.len()), (0, 0));
    assert_eq!((info.errors[0].offset, info.errors[0].kind.name()), (32, "bad_length"));
}

#[test]
fn huge_counts_are_bounded_by_bytes() {
    let mut b = one_flow_datagram();
    b[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
    let (info, sink) = decode(SamplingPolicy::Raw, &b);
    let info = info.unwrap();
    assert_eq!((sink.flows.len(), sink.counters.len(), info.errors.len()), (1, 1, 1));
    // Record count of the flow sample (offset 28 + 8 + 28).
    let mut b = one_flow_datagram();
    b[64..68].copy_from_slice(&u32::MAX.to_be_bytes());
    let (info, sink) = decode(SamplingPolicy::Raw, &b);
    assert_eq!((sink.flows.len(), sink.counters.len(), info.unwrap().errors.len()), (0, 1, 1));
}

#[test]
fn skipped_sample_kinds() {
    let mut agent = Agent::new(ip("192.0.2.1"), 0);
    let samples = vec![
        Sample::Other { enterprise: 0, format: 5, data: vec![0; 40] },
        Sample::Other { enterprise: 8800, format: 1, data: vec![1; 10] },
        agent.flow_sample(
            1,
            1,
            Interface::Index(1),
            Interface::Index(2),
            vec![tcp_packet().raw_header(128)],
        ),
    ];
    let (info, sink) = decode(SamplingPolicy::Raw, &agent.datagram(0, samples).encode());
    assert!(info.unwrap().errors.is_empty());
    assert_eq!(sink.flows.len(), 1);
}

#[test]
fn random_bytes_never_panic() {
    // A small xorshift: deterministic noise over a valid prefix.
    let base = one_flow_datagram();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut b = base.clone();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = 28 + (x as usize) % (b.len() - 28);
            b[at] = (x >> 32) as u8;
        }
        let _ = decode(SamplingPolicy::Scale, &b);
    }
    let dg =
        SfDatagram { agent: ip("::"), sub_agent: 0, sequence: 0, uptime_ms: 0, samples: vec![] };
    assert!(decode(SamplingPolicy::Raw, &dg.encode()).0.unwrap().errors.is_empty());
}
