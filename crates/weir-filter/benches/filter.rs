//! Throughput of the compiled filter on one 32 768-row batch of synthetic
//! columns, in rows per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_filter::Filter;
use weir_record::{Bitmap, Column, Field, FlowBatch, Values, ip_to_u128};

const ROWS: usize = 32_768;

/// xorshift64*: deterministic and good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `true` with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

fn u64_col(batch: &mut FlowBatch, f: Field, v: Vec<u64>) {
    batch.set_column(f, Column::full(Values::U64(v)));
}

fn u128_col(batch: &mut FlowBatch, f: Field, v: Vec<u128>) {
    batch.set_column(f, Column::full(Values::U128(v)));
}

fn v4(a: u32) -> u128 {
    ip_to_u128(std::net::Ipv4Addr::from(a).into())
}

/// Ports, protocols, counters and addresses with no particular structure.
fn random_batch(rng: &mut Rng) -> FlowBatch {
    let mut b = FlowBatch::new(ROWS);
    let ports = |rng: &mut Rng| (0..ROWS).map(|_| rng.below(1024)).collect();
    let v = ports(rng);
    u64_col(&mut b, Field::SrcPort, v);
    let v = ports(rng);
    u64_col(&mut b, Field::DstPort, v);
    let v = (0..ROWS).map(|_| [6, 17, 1][rng.below(3) as usize]).collect();
    u64_col(&mut b, Field::Proto, v);
    let addrs =
        |rng: &mut Rng| (0..ROWS).map(|_| v4(0x0a00_0000 | rng.below(1 << 16) as u32)).collect();
    let v = addrs(rng);
    u128_col(&mut b, Field::SrcAddr, v);
    let v = addrs(rng);
    u128_col(&mut b, Field::DstAddr, v);
    b
}

/// Five columns, each meeting its term of [`CONJUNCTION`] independently
/// with probability `q`, so that all five hold with probability `q^5`.
fn conjunction_batch(rng: &mut Rng, selectivity: f64) -> FlowBatch {
    let q = selectivity.powf(0.2);
    let mut b = FlowBatch::new(ROWS);
    let mut col = |pass: &dyn Fn(&mut Rng) -> u64, fail: &dyn Fn(&mut Rng) -> u64| {
        (0..ROWS).map(|_| if rng.chance(q) { pass(rng) } else { fail(rng) }).collect::<Vec<_>>()
    };
    let proto = col(&|_| 6, &|_| 17);
    let port = col(&|r| r.below(1024), &|r| 1024 + r.below(60000));
    let packets = col(&|r| 11 + r.below(1000), &|r| r.below(11));
    let bytes = col(&|r| 1001 + r.below(100_000), &|r| r.below(1001));
    let addr: Vec<u128> =
        col(&|r| 0x0a00_0000 | r.below(1 << 24), &|r| 0xc0a8_0000 | r.below(1 << 16))
            .into_iter()
            .map(|a| v4(a as u32))
            .collect();
    u64_col(&mut b, Field::Proto, proto);
    u64_col(&mut b, Field::DstPort, port);
    u64_col(&mut b, Field::Packets, packets);
    u64_col(&mut b, Field::Bytes, bytes);
    u128_col(&mut b, Field::SrcAddr, addr);
    b
}

const CONJUNCTION: &str =
    "src net 10.0.0.0/8 and proto tcp and dst port < 1024 and packets > 10 and bytes > 1000";

fn matches(f: &Filter, batch: &FlowBatch) -> usize {
    let mut out = Bitmap::default();
    f.compile().eval(batch, "weir", &mut out);
    out.count_ones()
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut g = c.benchmark_group("filter");
    g.throughput(Throughput::Elements(ROWS as u64));
    let mut run = |name: &str, text: &str, batch: &FlowBatch| {
        let f = Filter::parse(text).expect("bench filter parses").compile();
        let mut out = Bitmap::zeros(ROWS);
        g.bench_function(name, |b| {
            b.iter(|| {
                f.eval(black_box(batch), "weir", &mut out);
                black_box(&out);
            })
        });
    };

    let batch = random_batch(&mut rng);
    run("dst port 443", "dst port 443", &batch);
    run("port 443", "port 443", &batch);
    // 900 hosts and 100 /24 networks, in and out of the data's 10.0/16.
    let mut list = Vec::new();
    for i in 0..900u32 {
        let a = 0x0a00_0000 | (rng.below(1 << 17) as u32);
        list.push(format!("{}", std::net::Ipv4Addr::from(a ^ (i & 1))));
    }
    for _ in 0..100 {
        let a = 0x0a00_0000 | ((rng.below(1 << 9) as u32) << 8);
        list.push(format!("{}/24", std::net::Ipv4Addr::from(a)));
    }
    run("ip in [1000 addresses and nets]", &format!("ip in [{}]", list.join(" ")), &batch);

    for (name, sel) in [
        ("and5 sel 1/1024", 1.0 / 1024.0),
        ("and5 sel 1/2", 0.5),
        ("and5 sel 1023/1024", 1023.0 / 1024.0),
    ] {
        let batch = conjunction_batch(&mut rng, sel);
        let f = Filter::parse(CONJUNCTION).expect("conjunction parses");
        let got = matches(&f, &batch) as f64 / ROWS as f64;
        assert!((got - sel).abs() <= 0.1 * sel.min(1.0 - sel) + 0.002, "{name}: selectivity {got}");
        run(name, CONJUNCTION, &batch);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
