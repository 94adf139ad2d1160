//! decode(encode(x)) == x for sFlow v5: flow records are encoded by the
//! weir-encode (raw Ethernet header records plus extended switch / router /
//! gateway records) and must come back field for field; generic interface
//! counters likewise.

use std::net::IpAddr;

use proptest::prelude::*;
use weir_decode::{CounterSample, Datagram, Decoder, DecoderConfig, Event, SamplingPolicy, Sink};
use weir_encode::sflow::{
    Agent, AsPathSegment, CounterData, FlowData, GenericCounters, Interface, Packet, Sample,
};
use weir_record::{FlowRecord, ip_to_u128, u128_to_ip};

const RECEIVED_MS: u64 = 1_710_000_000_000;

#[derive(Default)]
struct Collect {
    flows: Vec<FlowRecord>,
    counters: Vec<CounterSample>,
    errors: usize,
}

impl Sink for Collect {
    fn flow(&mut self, f: &FlowRecord) {
        self.flows.push(f.clone());
    }
    fn event(&mut self, e: &Event<'_>) {
        match e {
            Event::Counters(c) => self.counters.push(**c),
            Event::Error(_) => self.errors += 1,
            _ => {}
        }
    }
}

/// A flow as an sFlow agent can describe it, plus what goes around it.
#[derive(Debug, Clone)]
struct Case {
    /// The key fields (as the decoder must return them).
    rec: FlowRecord,
    rate: u32,
    payload_len: u16,
    /// Extended switch record: (src vlan, dst vlan).
    switch: Option<(u16, u16)>,
    /// Extended router record: (next hop, src mask, dst mask).
    router: Option<(IpAddr, u8, u8)>,
    /// Extended gateway record: (bgp next hop, src as, peer as, path).
    gateway: Option<(IpAddr, u32, u32, Vec<u32>)>,
}

fn arb_addrs() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(a, b)| (IpAddr::from(a), IpAddr::from(b))),
        (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_filter("not v4-mapped", |(a, b)| a[..12]
                != [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
                && b[..12] != [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])
            .prop_map(|(a, b)| (IpAddr::from(a), IpAddr::from(b))),
    ]
}

fn arb_case() -> impl Strategy<Value = Case> {
    let key = (
        arb_addrs(),
        prop_oneof![Just(6u8), Just(17), Just(1), Just(47)],
        any::<(u16, u16, u8, u8)>(),
        (any::<u64>(), any::<u64>()),
        prop::option::of(0u16..4096),
        prop::collection::vec(0u32..(1 << 20), 0..4),
    );
    let around = (
        1u32..100_000,
        (0u32..(1 << 30), 0u32..(1 << 30)),
        0u16..1400,
        prop::option::of((0u16..4096, 0u16..4096)),
        prop::option::of((arb_addrs(), 0u8..=32, 0u8..=32)),
        prop::option::of((
            arb_addrs(),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(any::<u32>(), 0..5),
        )),
    );
    (key, around).prop_map(|(key, around)| {
        let ((src, dst), mut proto, (sp, dp, flags, tos), (smac, dmac), vlan, labels) = key;
        let (rate, (input, output), payload_len, switch, router, gateway) = around;
        if proto == 1 && src.is_ipv6() {
            proto = 58;
        }
        let (src_port, dst_port) = match proto {
            6 | 17 => (sp, dp),
            1 | 58 => (0, dp),
            _ => (0, 0),
        };
        let mut rec = FlowRecord {
            src_addr: Some(ip_to_u128(src)),
            dst_addr: Some(ip_to_u128(dst)),
            proto,
            src_port,
            dst_port,
            tcp_flags: if proto == 6 { flags } else { 0 },
            src_tos: tos,
            in_src_mac: Some(smac & 0xffff_ffff_ffff),
            in_dst_mac: Some(dmac & 0xffff_ffff_ffff),
            src_vlan: vlan,
            input_if: Some(input),
            output_if: Some(output),
            ..FlowRecord::default()
        };
        let n = labels.len();
        let slots = [&mut rec.mpls1, &mut rec.mpls2, &mut rec.mpls3];
        for (i, (slot, l)) in slots.into_iter().zip(labels).enumerate() {
            // label, exp 3, bottom of stack on the last one
            *slot = Some(l << 4 | 3 << 1 | u32::from(i + 1 == n));
        }
        Case {
            rec,
            rate,
            payload_len,
            switch,
            router: router.map(|((a, _), s, d)| (a, s, d)),
            gateway: gateway.map(|((a, _), s, p, path)| (a, s, p, path)),
        }
    })
}

/// Encodes the cases as one datagram of flow samples.
fn encode(agent: &mut Agent, cases: &[Case]) -> Vec<u8> {
    let samples = cases
        .iter()
        .map(|c| {
            let mut p = Packet::from_flow(&c.rec);
            p.payload_len = c.payload_len;
            let mut records = Vec::new();
            if let Some((s, d)) = c.switch {
                records.push(FlowData::Switch {
                    src_vlan: s.into(),
                    src_priority: 0,
                    dst_vlan: d.into(),
                    dst_priority: 0,
                });
            }
            records.push(p.raw_header(128));
            if let Some((nh, s, d)) = c.router {
                records.push(FlowData::Router {
                    next_hop: Some(nh),
                    src_mask: s.into(),
                    dst_mask: d.into(),
                });
            }
            if let Some((nh, src_as, peer, path)) = &c.gateway {
                records.push(FlowData::Gateway {
                    next_hop: Some(*nh),
                    as_number: 64512,
                    src_as: *src_as,
                    src_peer_as: *peer,
                    as_path: vec![AsPathSegment { kind: 2, asns: path.clone() }],
                    communities: vec![1, 2],
                    local_pref: 100,
                });
            }
            let input = Interface::Index(c.rec.input_if.unwrap());
            let output = Interface::Index(c.rec.output_if.unwrap());
            agent.flow_sample(1, c.rate, input, output, records)
        })
        .collect();
    agent.datagram(1000, samples).encode()
}

/// The record the decoder must produce for a case (Scale policy).
fn expected(c: &Case, agent: IpAddr, sub_agent: u32) -> FlowRecord {
    let mut p = Packet::from_flow(&c.rec);
    p.payload_len = c.payload_len;
    let frame_length = match p.raw_header(128) {
        FlowData::RawHeader { frame_length, .. } => frame_length,
        _ => unreachable!(),
    };
    let mut r = c.rec.clone();
    r.first = RECEIVED_MS;
    r.last = RECEIVED_MS;
    r.received = RECEIVED_MS;
    r.packets = u64::from(c.rate);
    r.bytes = u64::from(frame_length) * u64::from(c.rate);
    r.sampling_rate = Some(c.rate);
    r.flow_version = Some(0x85);
    r.obs_domain = Some(sub_agent);
    r.exporter_addr = Some(ip_to_u128(agent));
    r.exporter_id = Some(1);
    if let Some((s, d)) = c.switch {
        r.src_vlan = Some(s);
        r.dst_vlan = Some(d);
    }
    if let Some((nh, s, d)) = c.router {
        r.next_hop = Some(ip_to_u128(nh));
        r.src_mask = Some(s);
        r.dst_mask = Some(d);
    }
    if let Some((nh, src_as, peer, path)) = &c.gateway {
        r.bgp_next_hop = Some(ip_to_u128(*nh));
        r.src_as = Some(*src_as);
        r.prev_as = Some(*peer);
        r.next_as = path.first().copied();
        r.dst_as = path.last().copied();
    }
    r
}

fn arb_counters() -> impl Strategy<Value = GenericCounters> {
    (any::<[u32; 8]>(), any::<[u32; 8]>(), any::<[u64; 3]>()).prop_map(|(a, b, w)| {
        GenericCounters {
            if_index: a[0],
            if_type: a[1],
            if_speed: w[0],
            if_direction: a[2],
            if_status: a[3],
            in_octets: w[1],
            in_ucast: a[4],
            in_mcast: a[5],
            in_bcast: a[6],
            in_discards: a[7],
            in_errors: b[0],
            in_unknown_protos: b[1],
            out_octets: w[2],
            out_ucast: b[2],
            out_mcast: b[3],
            out_bcast: b[4],
            out_discards: b[5],
            out_errors: b[6],
            promiscuous: b[7],
        }
    })
}

proptest! {
    #[test]
    fn flows_round_trip(
        cases in prop::collection::vec(arb_case(), 1..8),
        v6_agent in any::<bool>(),
        sub_agent in any::<u32>(),
    ) {
        let agent_ip: IpAddr = if v6_agent { "2001:db8::5".parse().unwrap() } else { "192.0.2.5".parse().unwrap() };
        let mut agent = Agent::new(agent_ip, sub_agent);
        let bytes = encode(&mut agent, &cases);
        let mut dec = Decoder::new(DecoderConfig::default());
        let mut sink = Collect::default();
        let dg = Datagram { exporter: "198.51.100.1:6343".parse().unwrap(), received_ms: RECEIVED_MS, payload: &bytes };
        let info = dec.decode(&dg, &mut sink).unwrap();
        prop_assert_eq!(sink.errors, 0);
        prop_assert_eq!(info.flows as usize, cases.len());
        for (got, c) in sink.flows.iter().zip(&cases) {
            prop_assert_eq!(got, &expected(c, agent_ip, sub_agent));
        }
        // The addresses survive as addresses, too.
        prop_assert_eq!(u128_to_ip(sink.flows[0].src_addr.unwrap()), u128_to_ip(cases[0].rec.src_addr.unwrap()));
    }

    #[test]
    fn counters_round_trip(counters in prop::collection::vec((arb_counters(), 0u32..(1 << 24)), 1..6), expanded in any::<bool>()) {
        let agent_ip: IpAddr = "192.0.2.6".parse().unwrap();
        let mut agent = Agent::new(agent_ip, 2);
        agent.expanded = expanded;
        let samples: Vec<Sample> = counters
            .iter()
            .map(|(g, src)| agent.counters_sample(*src, vec![CounterData::Generic(*g)]))
            .collect();
        let seqs: Vec<u32> = samples
            .iter()
            .map(|s| match s {
                Sample::Counters(c) => c.sequence,
                _ => unreachable!(),
            })
            .collect();
        let bytes = agent.datagram(0, samples).encode();
        let mut dec = Decoder::new(DecoderConfig { sampling: SamplingPolicy::Raw, ..DecoderConfig::default() });
        let mut sink = Collect::default();
        let dg = Datagram { exporter: "198.51.100.1:6343".parse().unwrap(), received_ms: RECEIVED_MS, payload: &bytes };
        dec.decode(&dg, &mut sink).unwrap();
        prop_assert_eq!(sink.counters.len(), counters.len());
        for ((got, (g, src)), seq) in sink.counters.iter().zip(&counters).zip(seqs) {
            let want = CounterSample {
                agent: Some(agent_ip),
                sub_agent: 2,
                sequence: seq,
                source_id: *src,
                received_ms: RECEIVED_MS,
                if_index: g.if_index,
                if_type: g.if_type,
                if_speed: g.if_speed,
                if_direction: g.if_direction,
                if_status: g.if_status,
                in_octets: g.in_octets,
                in_ucast: g.in_ucast,
                in_mcast: g.in_mcast,
                in_bcast: g.in_bcast,
                in_discards: g.in_discards,
                in_errors: g.in_errors,
                in_unknown_protos: g.in_unknown_protos,
                out_octets: g.out_octets,
                out_ucast: g.out_ucast,
                out_mcast: g.out_mcast,
                out_bcast: g.out_bcast,
                out_discards: g.out_discards,
                out_errors: g.out_errors,
                promiscuous: g.promiscuous,
            };
            prop_assert_eq!(got, &want);
        }
    }
}
