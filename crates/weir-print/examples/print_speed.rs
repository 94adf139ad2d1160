//! Printing throughput: `cargo run --release -p weir-print --example
//! print_speed [N] [format...]` prints N synthetic records (default 2 M)
//! to a sink in each format and reports records per second.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use weir_print::{Format, PrintOptions, Printer};
use weir_query::{Section, Sink, Summary};
use weir_record::FlowRecord;

fn records(n: usize) -> Vec<FlowRecord> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let t0 = 1_720_689_300_000u64;
    (0..n)
        .map(|i| {
            let r = next();
            let v6 = r % 10 == 0;
            let addr = |v: u64| -> u128 {
                if v6 {
                    (0x2001_0db8u128 << 96) | v as u128
                } else {
                    0xffff_0000_0000 | (v as u32) as u128
                }
            };
            FlowRecord {
                first: t0 + (i as u64) / 10,
                last: t0 + (i as u64) / 10 + (r >> 40) % 60_000,
                received: t0 + (i as u64) / 10 + 60_000,
                proto: [6, 17, 1, 6][(r % 4) as usize],
                tcp_flags: (r >> 8) as u8,
                src_port: (r >> 16) as u16,
                dst_port: [80, 443, 53, 0x0800][((r >> 32) % 4) as usize],
                packets: (r >> 20) % 5000 + 1,
                bytes: (r >> 24) % 5_000_000 + 40,
                src_addr: Some(addr(next())),
                dst_addr: Some(addr(next())),
                ..Default::default()
            }
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let formats: Vec<String> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        ["line", "long", "extended", "csv", "json", "ndjson", "raw"].map(String::from).to_vec()
    };
    let recs = records(n);
    for f in formats {
        let opts = PrintOptions { format: Format::parse(&f).unwrap(), ..Default::default() };
        let mut out = std::io::BufWriter::new(std::io::sink());
        let start = Instant::now();
        let mut p = Printer::new(&mut out, opts);
        p.begin_section(Section::Records).unwrap();
        for chunk in recs.chunks(8192) {
            p.records("bench", chunk).unwrap();
        }
        p.summary(&Summary { records_passed: n as u64, ..Default::default() }).unwrap();
        let s = start.elapsed().as_secs_f64();
        println!(
            "{f:>10}: {n} records in {s:.3} s = {:.2} M records/s ({:.0} ns/record)",
            n as f64 / s / 1e6,
            s * 1e9 / n as f64
        );
    }
}
