//! Times the generation of 5 million flows:
//! `cargo run --release -p weir-gen --example speed`.
#![allow(clippy::print_stdout, reason = "an example reports its measurement")]

use std::hint::black_box;
use std::time::Instant;

use weir_gen::{GenConfig, Generator};

fn main() {
    const FLOWS: usize = 5_000_000;
    // 5 M flows at 2 000 flows/s need about 2 500 s of a 1 h range.
    let cfg = GenConfig { rate: 2000.0, ..GenConfig::default() };
    let setup = Instant::now();
    let g = Generator::new(cfg);
    let setup = setup.elapsed();
    let t = Instant::now();
    let mut n = 0usize;
    let mut bytes = 0u64;
    for f in g.take(FLOWS) {
        bytes = bytes.wrapping_add(f.bytes);
        black_box(&f);
        n += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{n} flows in {secs:.3} s: {:.2} M flows/s (setup {:.1} ms, checksum {})",
        n as f64 / secs / 1e6,
        setup.as_secs_f64() * 1e3,
        black_box(bytes),
    );
}
