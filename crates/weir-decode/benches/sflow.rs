//! sFlow v5 decoding throughput: datagrams of flow samples with 128-byte
//! raw Ethernet header records (the usual agent default), built by the
//! weir-encode encoder from a fixed seed. Reports samples per second.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_decode::{Datagram, Decoder, DecoderConfig, Sink};
use weir_encode::sflow::{Agent, FlowData, Interface, Packet};
use weir_record::FlowRecord;

/// Samples per datagram: 7 samples of ~200 bytes fill a 1 400-byte
/// datagram, what agents send under load.
const SAMPLES_PER_DATAGRAM: usize = 7;
/// Datagrams per iteration (different flows, agents' sequence advancing).
const DATAGRAMS: usize = 64;

struct Count(u64, u64);

impl Sink for Count {
    fn flow(&mut self, f: &FlowRecord) {
        self.0 += 1;
        self.1 = self.1.wrapping_add(f.bytes);
    }
}

/// A deterministic xorshift for flow keys.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn datagrams(extended: bool) -> Vec<Vec<u8>> {
    let mut agent = Agent::new("192.0.2.10".parse().unwrap(), 0);
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..DATAGRAMS)
        .map(|i| {
            let samples = (0..SAMPLES_PER_DATAGRAM)
                .map(|j| {
                    let r = next(&mut x);
                    let (src, dst): (IpAddr, IpAddr) = if (i + j) % 4 == 0 {
                        (
                            [0x2001, 0xdb8, 0, 0, 0, 0, 0, r as u16].into(),
                            [0x2001, 0xdb8, 1, 0, 0, 0, 0, 1].into(),
                        )
                    } else {
                        ((r as u32).to_be_bytes().into(), [10, 0, 0, 1].into())
                    };
                    let mut p = Packet::udp(src, dst, (r >> 32) as u16, 443);
                    if j % 2 == 0 {
                        p.proto = 6;
                        p.tcp_flags = 0x10;
                    }
                    p.vlans = vec![100];
                    p.payload_len = 1400;
                    let mut records = vec![p.raw_header(128)];
                    if extended {
                        records.push(FlowData::Switch {
                            src_vlan: 100,
                            src_priority: 0,
                            dst_vlan: 200,
                            dst_priority: 0,
                        });
                        records.push(FlowData::Router {
                            next_hop: Some([10, 0, 0, 254].into()),
                            src_mask: 24,
                            dst_mask: 16,
                        });
                    }
                    agent.flow_sample(
                        1 + (r % 48) as u32,
                        1024,
                        Interface::Index(1),
                        Interface::Index(2),
                        records,
                    )
                })
                .collect();
            agent.datagram(i as u32, samples).encode()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sflow");
    for (name, extended) in [("raw_header", false), ("raw_header+switch+router", true)] {
        let dgs = datagrams(extended);
        g.throughput(Throughput::Elements((DATAGRAMS * SAMPLES_PER_DATAGRAM) as u64));
        let mut dec = Decoder::new(DecoderConfig::default());
        let exporter = "198.51.100.1:6343".parse().unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut sink = Count(0, 0);
                for d in &dgs {
                    let dg = Datagram { exporter, received_ms: 1_700_000_000_000, payload: d };
                    dec.decode(&dg, &mut sink).unwrap();
                }
                black_box((sink.0, sink.1))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
