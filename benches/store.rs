//! Slot-file store benchmarks on `weir gen` default data (seed 1, 500/s
//! background mix): write throughput, bytes per flow at the default and a
//! high zstd level, and scan throughput of one column and of all columns.
//!
//! Run: `cargo bench -p weir-e2e --bench store` (add `-- --quick` for a short run).
//! Bytes/flow are printed to stderr before the timings.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_gen::{GenConfig, Generator};
use weir_record::{Field, FlowRecord};
use weir_store::{
    ChunkReader, Compression, Creator, SlotFile, SlotMeta, SlotWriter, WriterOptions,
};

/// Flows per benchmark file: one busy 5-minute slot (~3.3 k flows/s).
const FLOWS: usize = 1_000_000;

fn flows() -> Vec<FlowRecord> {
    let cfg = GenConfig {
        seed: 1,
        duration_ms: 300_000,
        rate: FLOWS as f64 / 300.0,
        ..GenConfig::default()
    };
    Generator::new(cfg).take(FLOWS).collect()
}

fn meta() -> SlotMeta {
    SlotMeta {
        slot_start_s: 1_709_510_400,
        slot_len_s: 300,
        ident: "bench".into(),
        creator: Creator::Gen,
    }
}

fn write(dir: &Path, name: &str, recs: &[FlowRecord], compression: Compression) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let opts = WriterOptions { compression, ..Default::default() };
    let mut w = SlotWriter::create(&path, meta(), opts).unwrap();
    for r in recs {
        w.push(r).unwrap();
    }
    w.finish().unwrap()
}

fn bench_store(c: &mut Criterion) {
    let recs = flows();
    let dir = tempfile::tempdir().unwrap();
    for (label, comp) in [
        ("zstd 1 (default)", Compression::Zstd(1)),
        ("zstd 3", Compression::Zstd(3)),
        ("zstd 19", Compression::Zstd(19)),
        ("none", Compression::None),
    ] {
        let p = write(dir.path(), "size", &recs, comp);
        let len = std::fs::metadata(&p).unwrap().len();
        eprintln!(
            "bytes/flow {label}: {:.2} ({len} bytes for {FLOWS} flows)",
            len as f64 / FLOWS as f64
        );
    }

    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(FLOWS as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(1));
    g.bench_function("write 1M flows zstd 1 from records", |b| {
        b.iter(|| write(dir.path(), "w", &recs, Compression::Zstd(1)));
    });
    // The collector's path: decoders fill column batches directly.
    let batches: Vec<_> = recs
        .chunks(weir_store::DEFAULT_BLOCK_ROWS)
        .map(|c| {
            let mut b = weir_record::BatchBuilder::default();
            c.iter().for_each(|r| b.push(r));
            b.finish()
        })
        .collect();
    g.bench_function("write 1M flows zstd 1 from column batches", |b| {
        b.iter(|| {
            let path = dir.path().join("wb");
            let _ = std::fs::remove_file(&path);
            let mut w = SlotWriter::create(&path, meta(), WriterOptions::default()).unwrap();
            for batch in &batches {
                w.write_batch(batch).unwrap();
            }
            w.finish().unwrap()
        });
    });
    let path = write(dir.path(), "scan", &recs, Compression::Zstd(1));
    let file = SlotFile::open(&path).unwrap();
    g.bench_function("scan 1 column (dst_port) 1M flows", |b| {
        let mut reader = ChunkReader::new();
        b.iter(|| {
            let mut sum = 0u64;
            for i in 0..file.blocks().len() {
                let col =
                    file.block(i).unwrap().column(Field::DstPort, &mut reader).unwrap().unwrap();
                sum += col.values.as_u64().unwrap().iter().filter(|&&p| p == 443).count() as u64;
            }
            sum
        });
    });
    g.bench_function("scan all columns 1M flows", |b| {
        let mut reader = ChunkReader::new();
        b.iter(|| {
            let mut rows = 0;
            for i in 0..file.blocks().len() {
                rows += file.block(i).unwrap().read_all(&mut reader).unwrap().rows();
            }
            rows
        });
    });
    g.finish();
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
