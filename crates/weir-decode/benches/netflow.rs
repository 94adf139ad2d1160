//! Decode throughput (flows/s) of NetFlow v5, v9 and IPFIX datagrams built
//! with the weir-encode encoders.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_decode::{Datagram, Decoder, DecoderConfig, Sink};
use weir_encode::netflow::{
    LegacyEncoder, LegacyVersion, Template, TemplateEncoder, TemplateProtocol,
};
use weir_record::{FlowRecord, ip_to_u128};

struct Count(u64);

impl Sink for Count {
    fn flow(&mut self, f: &FlowRecord) {
        self.0 = self.0.wrapping_add(f.bytes);
    }
}

const EXPORT_MS: u64 = 1_700_000_000_000;
const BOOT_MS: u64 = EXPORT_MS - 3_600_000;

fn flows(n: usize) -> Vec<FlowRecord> {
    (0..n as u32)
        .map(|i| FlowRecord {
            first: EXPORT_MS - 60_000 + u64::from(i),
            last: EXPORT_MS - 1000,
            src_addr: Some(ip_to_u128(std::net::Ipv4Addr::from(0x0a00_0000 | i).into())),
            dst_addr: Some(ip_to_u128(std::net::Ipv4Addr::from(0xc000_0201).into())),
            src_port: (i % 60_000) as u16,
            dst_port: 443,
            proto: 6,
            tcp_flags: 0x1b,
            packets: 10,
            bytes: 4000 + u64::from(i),
            input_if: Some(1),
            output_if: Some(2),
            src_as: Some(64500),
            dst_as: Some(64501),
            src_mask: Some(24),
            dst_mask: Some(24),
            next_hop: Some(ip_to_u128(std::net::Ipv4Addr::from(0xc000_0202).into())),
            ..Default::default()
        })
        .collect()
}

fn bench_datagrams(
    c: &mut Criterion,
    name: &str,
    setup: &[Vec<u8>],
    data: &[Vec<u8>],
    per_round: u64,
) {
    let mut dec = Decoder::new(DecoderConfig::default());
    let exporter = "192.0.2.1:2055".parse().unwrap();
    let mut sink = Count(0);
    for d in setup {
        let dg = Datagram { exporter, received_ms: EXPORT_MS, payload: d };
        dec.decode(&dg, &mut sink).unwrap();
    }
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(per_round));
    g.bench_function(name, |b| {
        b.iter(|| {
            for d in data {
                let dg = Datagram { exporter, received_ms: EXPORT_MS, payload: d };
                black_box(dec.decode(&dg, &mut sink).unwrap());
            }
        })
    });
    g.finish();
}

fn netflow(c: &mut Criterion) {
    let fl = flows(3000);
    let mut v5 = LegacyEncoder::new(LegacyVersion::V5, BOOT_MS);
    let d = v5.encode(&fl, EXPORT_MS);
    bench_datagrams(c, "v5", &[], &d, fl.len() as u64);

    for (name, p) in [("v9", TemplateProtocol::V9), ("ipfix", TemplateProtocol::Ipfix)] {
        let mut enc = TemplateEncoder::new(p, 1, BOOT_MS);
        enc.add_template(Template::ipv4(256, p));
        let setup = vec![enc.template_message(EXPORT_MS)];
        let d = enc.data(256, &fl, EXPORT_MS, false);
        bench_datagrams(c, name, &setup, &d, fl.len() as u64);
    }
}

criterion_group!(benches, netflow);
criterion_main!(benches);
