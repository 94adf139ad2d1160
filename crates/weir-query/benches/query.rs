//! Query engine throughput on about 2 M generated flows (40 five-minute
//! slot files): a full scan count, a selective filter, a top-10 statistic
//! and an AS-pair aggregation. Criterion reports flows/s.
//!
//! ```sh
//! nice cargo bench -p weir-query --bench query
//! WEIR_BENCH_THREADS=1 nice cargo bench -p weir-query --bench query
//! ```
#![allow(missing_docs)]

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_filter::Filter;
use weir_gen::{Burst, GenConfig, Generator};
use weir_query::{
    Mode, QueryPlan, Section, Sink, StatTable, Summary, execute, parse_agg_keys, parse_stat_spec,
};
use weir_record::{Field, FlowRecord};
use weir_store::{
    Creator, SlotMeta, SlotWriter, SubdirLayout, WriterOptions, slot_path, slot_start,
};

/// 2024-03-04T00:00:00Z.
const T0: u64 = 1_709_510_400_000;

fn write_flows(dir: &Path) -> (Vec<PathBuf>, u64) {
    let cfg = GenConfig {
        seed: 1,
        start_ms: T0,
        duration_ms: 200 * 60_000,
        rate: 160.0,
        ipv6_share: 0.1,
        slammer: Some(Burst { start_ms: T0 + 60 * 60_000, duration_ms: 20 * 60_000, rate: 200.0 }),
    };
    let mut files = Vec::new();
    let mut rows = 0;
    let mut cur: Option<(i64, SlotWriter)> = None;
    for r in Generator::new(cfg) {
        let start = slot_start((r.received / 1000) as i64, 300);
        if cur.as_ref().is_none_or(|(s, _)| *s != start) {
            if let Some((_, w)) = cur.take() {
                rows += w.rows();
                files.push(w.finish().expect("finish"));
            }
            let meta = SlotMeta {
                slot_start_s: start,
                slot_len_s: 300,
                ident: "bench".into(),
                creator: Creator::Gen,
            };
            let path = slot_path(dir, SubdirLayout::YearMonthDay, start, 300);
            cur = Some((
                start,
                SlotWriter::create(&path, meta, WriterOptions::default()).expect("create"),
            ));
        }
        cur.as_mut().expect("open").1.push(&r).expect("push");
    }
    if let Some((_, w)) = cur.take() {
        rows += w.rows();
        files.push(w.finish().expect("finish"));
    }
    (files, rows)
}

/// Prints nothing; counts what it gets.
struct Null {
    records: usize,
}

impl Sink for Null {
    fn columns(&self) -> Option<Vec<Field>> {
        None
    }
    fn begin_section(&mut self, _: Section) -> io::Result<()> {
        Ok(())
    }
    fn records(&mut self, _: &str, r: &[FlowRecord]) -> io::Result<()> {
        self.records += r.len();
        Ok(())
    }
    fn stat(&mut self, t: &StatTable) -> io::Result<()> {
        self.records += t.rows.len();
        Ok(())
    }
    fn summary(&mut self, _: &Summary) -> io::Result<()> {
        Ok(())
    }
}

/// Asks for the `line` columns, as a printer would.
struct Lines(Null);

impl Sink for Lines {
    fn columns(&self) -> Option<Vec<Field>> {
        Some(vec![
            Field::First,
            Field::Last,
            Field::Proto,
            Field::SrcAddr,
            Field::SrcPort,
            Field::DstAddr,
            Field::DstPort,
            Field::Packets,
            Field::Bytes,
            Field::Flows,
        ])
    }
    fn begin_section(&mut self, s: Section) -> io::Result<()> {
        self.0.begin_section(s)
    }
    fn records(&mut self, i: &str, r: &[FlowRecord]) -> io::Result<()> {
        self.0.records(i, r)
    }
    fn stat(&mut self, t: &StatTable) -> io::Result<()> {
        self.0.stat(t)
    }
    fn summary(&mut self, s: &Summary) -> io::Result<()> {
        self.0.summary(s)
    }
}

fn bench(c: &mut Criterion) {
    // WEIR_BENCH_DIR keeps the generated files between runs (profiling).
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir =
        std::env::var_os("WEIR_BENCH_DIR").map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let done = dir.join("done");
    let (files, rows) = if done.exists() {
        let files: Vec<PathBuf> =
            std::fs::read_to_string(&done).expect("read").lines().map(PathBuf::from).collect();
        let rows = files.iter().map(|f| weir_store::SlotFile::open(f).expect("open").rows()).sum();
        (files, rows)
    } else {
        let (files, rows) = write_flows(&dir);
        if std::env::var_os("WEIR_BENCH_DIR").is_some() {
            let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            std::fs::write(&done, list.join("\n")).expect("write");
        }
        (files, rows)
    };
    let threads = std::env::var("WEIR_BENCH_THREADS").ok().and_then(|s| s.parse().ok());
    let plan = |filter: &str, mode: Mode| QueryPlan {
        files: files.clone(),
        window: None,
        filter: Filter::parse(filter).expect("filter"),
        mode,
        threads,
    };
    let list = Mode::List { limit: None, order: None, top: None };
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(rows));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(8));
    let cases: Vec<(&str, QueryPlan, bool)> = vec![
        ("count_any", plan("any", list.clone()), false),
        ("count_scan_bytes_gt_0", plan("bytes > 0", list.clone()), false),
        ("filter_udp_1434_lines", plan("proto udp and port 1434", list.clone()), true),
        (
            "stat_srcip_bytes_top10",
            plan(
                "any",
                Mode::Stats {
                    specs: vec![parse_stat_spec("srcip/bytes").expect("spec")],
                    record_keys: vec![],
                    top: 10,
                    post: None,
                },
            ),
            false,
        ),
        (
            "aggregate_srcas_dstas",
            plan(
                "any",
                Mode::Aggregate {
                    keys: parse_agg_keys("srcas,dstas").expect("keys"),
                    bidir: None,
                    order: None,
                    top: None,
                    post: None,
                },
            ),
            true,
        ),
    ];
    for (name, p, lines) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let rep = if *lines {
                    execute(p, &mut Lines(Null { records: 0 })).expect("query")
                } else {
                    execute(p, &mut Null { records: 0 }).expect("query")
                };
                assert_eq!(rep.summary.records_processed, rows);
                rep.summary.records_passed
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
