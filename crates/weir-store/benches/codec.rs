//! Chunk codec micro-benchmarks: encode and decode of typical columns.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_record::{Column, Values};
use weir_store::{decode_chunk, encode_chunk};

const ROWS: usize = 32_768;

fn columns() -> Vec<(&'static str, Column)> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let times: Vec<u64> =
        (0..ROWS as u64).map(|i| 1_709_510_400_000 + i * 9 + next() % 7).collect();
    let ports: Vec<u64> =
        (0..ROWS).map(|_| if next() % 2 == 0 { 443 } else { 32768 + next() % 28000 }).collect();
    let hosts: Vec<u128> = (0..ROWS).map(|_| 0xffff_0a01_0000 + (next() % 4000) as u128).collect();
    vec![
        ("time", Column::full(Values::U64(times))),
        ("port", Column::full(Values::U64(ports))),
        ("ipv4 host", Column::full(Values::U128(hosts))),
    ]
}

fn bench_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(ROWS as u64));
    for (name, col) in columns() {
        let mut buf = Vec::new();
        g.bench_function(format!("encode {name}"), |b| {
            b.iter(|| encode_chunk(&col, None, &mut buf))
        });
        let meta = encode_chunk(&col, None, &mut buf).unwrap();
        let u128 = matches!(col.values, Values::U128(_));
        g.bench_function(format!("decode {name}"), |b| {
            b.iter(|| {
                decode_chunk(&buf, ROWS, u128, meta.enc, meta.width, meta.base, None).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
