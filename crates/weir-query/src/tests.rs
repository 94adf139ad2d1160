//! Engine tests: every mode against a naive reference computed from
//! `FlowRecord`s, determinism across thread counts, `-t`, file selection,
//! corrupt blocks and spilling.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use weir_filter::Filter;
use weir_gen::{Burst, GenConfig, Generator};
use weir_record::{Field, FlowRecord};
use weir_store::{
    ChunkReader, Compression, Creator, OnExists, SlotFile, SlotMeta, SlotWriter, SubdirLayout,
    WriterOptions, slot_path, slot_start,
};

use crate::agg::AggTable;
use crate::keys::Comp;
use crate::order::{counters_value, order_value, rank};
use crate::stats::record_values;
use crate::*;

/// 2024-03-04T00:00:00Z.
const T0: u64 = 1_709_510_400_000;

/// Writes generated flows into 5-minute slot files under `dir` and returns
/// the files.
fn write_flows(
    dir: &Path,
    cfg: GenConfig,
    ident: &str,
    layout: SubdirLayout,
    block_rows: usize,
) -> Vec<PathBuf> {
    let opts =
        WriterOptions { compression: Compression::Zstd(1), block_rows, on_exists: OnExists::Fail };
    let mut files = Vec::new();
    let mut cur: Option<(i64, SlotWriter)> = None;
    for r in Generator::new(cfg) {
        let start = slot_start((r.received / 1000) as i64, 300);
        if cur.as_ref().is_none_or(|(s, _)| *s != start) {
            if let Some((_, w)) = cur.take() {
                files.push(w.finish().unwrap());
            }
            let meta = SlotMeta {
                slot_start_s: start,
                slot_len_s: 300,
                ident: ident.to_string(),
                creator: Creator::Gen,
            };
            let w = SlotWriter::create(&slot_path(dir, layout, start, 300), meta, opts).unwrap();
            cur = Some((start, w));
        }
        cur.as_mut().unwrap().1.push(&r).unwrap();
    }
    if let Some((_, w)) = cur.take() {
        files.push(w.finish().unwrap());
    }
    files
}

fn cfg(seed: u64, minutes: u64, rate: f64) -> GenConfig {
    GenConfig {
        seed,
        start_ms: T0,
        duration_ms: minutes * 60_000,
        rate,
        ipv6_share: 0.15,
        slammer: Some(Burst { start_ms: T0 + 120_000, duration_ms: 60_000, rate: 80.0 }),
    }
}

/// All records of the files, in file order, with their idents.
fn read_back(files: &[PathBuf]) -> Vec<(String, FlowRecord)> {
    let mut out = Vec::new();
    let mut reader = ChunkReader::new();
    for p in files {
        let f = SlotFile::open(p).unwrap();
        let ident = f.info().ident.clone();
        for b in 0..f.blocks().len() {
            let batch = f.block(b).unwrap().read_all(&mut reader).unwrap();
            for i in 0..batch.rows() {
                out.push((ident.clone(), batch.record(i)));
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Section(Section),
    Records(String, Vec<FlowRecord>),
    Stat(StatTable),
    Summary(Summary),
}

struct Rec {
    cols: Option<Vec<Field>>,
    events: Vec<Event>,
}

impl Rec {
    fn all() -> Rec {
        Rec { cols: Some(Field::ALL.to_vec()), events: Vec::new() }
    }

    fn none() -> Rec {
        Rec { cols: None, events: Vec::new() }
    }

    /// Events with records of one section joined and the wall time zeroed.
    fn normalised(&self) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::new();
        for e in &self.events {
            match (out.last_mut(), e) {
                (Some(Event::Records(i, v)), Event::Records(j, w)) if i == j => {
                    v.extend(w.iter().cloned());
                }
                (_, Event::Summary(s)) => {
                    out.push(Event::Summary(Summary { wall_s: 0.0, ..s.clone() }));
                }
                _ => out.push(e.clone()),
            }
        }
        out
    }

    fn records(&self) -> Vec<FlowRecord> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Records(_, v) => Some(v.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn tables(&self) -> Vec<StatTable> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Stat(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    fn summary(&self) -> Summary {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Summary(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap()
    }
}

impl Sink for Rec {
    fn columns(&self) -> Option<Vec<Field>> {
        self.cols.clone()
    }
    fn begin_section(&mut self, section: Section) -> io::Result<()> {
        self.events.push(Event::Section(section));
        Ok(())
    }
    fn records(&mut self, ident: &str, records: &[FlowRecord]) -> io::Result<()> {
        self.events.push(Event::Records(ident.to_string(), records.to_vec()));
        Ok(())
    }
    fn stat(&mut self, table: &StatTable) -> io::Result<()> {
        self.events.push(Event::Stat(table.clone()));
        Ok(())
    }
    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        self.events.push(Event::Summary(summary.clone()));
        Ok(())
    }
}

fn plan(files: &[PathBuf], filter: &str, mode: Mode, threads: usize) -> QueryPlan {
    QueryPlan {
        files: files.to_vec(),
        window: None,
        filter: Filter::parse(filter).unwrap(),
        mode,
        threads: Some(threads),
    }
}

fn run(p: &QueryPlan, sink: &mut Rec) -> Report {
    let r = execute(p, sink).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    r
}

fn list() -> Mode {
    Mode::List { limit: None, order: None, top: None }
}

struct Data {
    _dir: tempfile::TempDir,
    files: Vec<PathBuf>,
    all: Vec<(String, FlowRecord)>,
}

fn data() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let files = write_flows(dir.path(), cfg(7, 12, 40.0), "rtr", SubdirLayout::YearMonthDay, 997);
    let all = read_back(&files);
    Data { _dir: dir, files, all }
}

fn passing<'a>(d: &'a Data, f: &str, w: Option<TimeWindow>) -> Vec<&'a FlowRecord> {
    let f = Filter::parse(f).unwrap();
    d.all
        .iter()
        .filter(|(i, r)| f.matches(r, i) && w.is_none_or(|w| w.contains(r.first, r.last)))
        .map(|(_, r)| r)
        .collect()
}

fn summary_of(recs: &[&FlowRecord]) -> (u64, Counters, u64, u64) {
    let mut c = Counters::default();
    for r in recs {
        c.flows += r.flows.unwrap_or(1);
        c.packets += r.packets;
        c.bytes += r.bytes;
    }
    let first = recs.iter().map(|r| r.first).min().unwrap_or(0);
    let last = recs.iter().map(|r| r.last).max().unwrap_or(0);
    (recs.len() as u64, c, first, last)
}

const FILTERS: &[&str] = &[
    "any",
    "proto udp and port 1434",
    "proto tcp and (port 443 or port 80)",
    "ipv6",
    "src net 10.1.0.0/16 and bytes > 1000",
    "not proto tcp",
];

#[test]
fn list_matches_reference_for_every_thread_count() {
    let d = data();
    assert!(d.files.len() >= 3, "{}", d.files.len());
    for f in FILTERS {
        let want = passing(&d, f, None);
        let mut outs = Vec::new();
        for threads in [1, 4] {
            let mut sink = Rec::all();
            let rep = run(&plan(&d.files, f, list(), threads), &mut sink);
            let got = sink.records();
            assert_eq!(got.len(), want.len(), "{f}");
            assert!(got.iter().zip(&want).all(|(a, b)| a == *b), "{f}");
            let (n, c, first, last) = summary_of(&want);
            assert_eq!(rep.summary.records_passed, n);
            assert_eq!(rep.summary.passed, c);
            assert_eq!((rep.summary.first_ms, rep.summary.last_ms), (first, last));
            assert_eq!(rep.summary.records_processed, d.all.len() as u64);
            assert_eq!(rep.summary.files, d.files.len() as u64);
            outs.push(sink.normalised());
        }
        assert_eq!(outs[0], outs[1], "{f}");
    }
    // A narrow window skips blocks by their zone maps.
    let mut sink = Rec::none();
    let mut p = plan(&d.files, "proto udp", list(), 2);
    let w = TimeWindow { start_ms: Some(T0 + 60_000), end_ms: Some(T0 + 90_000) };
    p.window = Some(w);
    let rep = run(&p, &mut sink);
    assert!(rep.summary.blocks_skipped > 0);
    assert_eq!(rep.summary.records_passed, passing(&d, "proto udp", Some(w)).len() as u64);
    assert!(sink.records().is_empty());
    assert_eq!(sink.summary(), Summary { wall_s: sink.summary().wall_s, ..rep.summary });
}

/// A sink with a [`RecordRenderer`]: `ident|record` lines.
struct Text {
    renders: bool,
    out: Vec<u8>,
    records: u64,
    summary: Option<Summary>,
}

struct DebugLines;

impl RecordRenderer for DebugLines {
    fn render(&self, ident: &str, records: &[FlowRecord], out: &mut Vec<u8>) {
        for r in records {
            out.extend_from_slice(format!("{ident}|{r:?}\n").as_bytes());
        }
    }
}

impl Sink for Text {
    fn columns(&self) -> Option<Vec<Field>> {
        Some(Field::ALL.to_vec())
    }
    fn begin_section(&mut self, _: Section) -> io::Result<()> {
        Ok(())
    }
    fn records(&mut self, ident: &str, records: &[FlowRecord]) -> io::Result<()> {
        self.records += records.len() as u64;
        DebugLines.render(ident, records, &mut self.out);
        Ok(())
    }
    fn stat(&mut self, _: &StatTable) -> io::Result<()> {
        Ok(())
    }
    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        self.summary = Some(Summary { wall_s: 0.0, ..summary.clone() });
        Ok(())
    }
    fn renderer(&self) -> Option<std::sync::Arc<dyn RecordRenderer>> {
        self.renders.then(|| std::sync::Arc::new(DebugLines) as std::sync::Arc<dyn RecordRenderer>)
    }
    fn rendered(&mut self, text: &[u8], records: u64) -> io::Result<()> {
        assert!(self.renders);
        self.records += records;
        self.out.extend_from_slice(text);
        Ok(())
    }
}

#[test]
fn rendering_on_the_workers_prints_the_same_text() {
    let d = data();
    let w = TimeWindow { start_ms: Some(T0 + 60_000), end_ms: Some(T0 + 300_000) };
    for f in FILTERS {
        for window in [None, Some(w)] {
            let mut want = String::new();
            for (i, r) in d.all.iter().filter(|(i, r)| {
                Filter::parse(f).unwrap().matches(r, i)
                    && window.is_none_or(|w| w.contains(r.first, r.last))
            }) {
                want.push_str(&format!("{i}|{r:?}\n"));
            }
            let mut outs = Vec::new();
            for (renders, threads) in [(false, 1), (true, 1), (true, 3)] {
                let mut sink = Text { renders, out: Vec::new(), records: 0, summary: None };
                let mut p = plan(&d.files, f, list(), threads);
                p.window = window;
                let rep = execute(&p, &mut sink).unwrap();
                assert!(rep.errors.is_empty());
                assert_eq!(String::from_utf8(sink.out.clone()).unwrap(), want, "{f}");
                assert_eq!(sink.records, rep.summary.records_passed, "{f}");
                outs.push(sink.summary);
            }
            assert!(outs.windows(2).all(|x| x[0] == x[1]), "{f}");
        }
    }
}

#[test]
fn list_limit_and_order() {
    let d = data();
    let want = passing(&d, "proto tcp", None);
    for threads in [1, 3] {
        let mut sink = Rec::all();
        let mode = Mode::List { limit: Some(100), order: None, top: None };
        let rep = run(&plan(&d.files, "proto tcp", mode, threads), &mut sink);
        let got = sink.records();
        assert_eq!(got.len(), 100);
        assert!(got.iter().zip(&want).all(|(a, b)| a == *b));
        assert_eq!(rep.summary.records_passed, 100);
        // nfdump counts the records read until the 100th match.
        let f = Filter::parse("proto tcp").unwrap();
        let pos = d.all.iter().enumerate().filter(|(_, (i, r))| f.matches(r, i)).nth(99).unwrap().0;
        assert_eq!(rep.read_until_limit, Some(pos as u64 + 1));
        assert_eq!(rep.summary.records_processed, pos as u64 + 1);
        // -c with -O: the first 50 matches, sorted.
        let o = parse_order("bytes").unwrap();
        let mut first50: Vec<(u128, usize, &FlowRecord)> = want[..50]
            .iter()
            .enumerate()
            .map(|(i, r)| (rank(o, order_value(o.key, r)), i, *r))
            .collect();
        first50.sort_by_key(|(k, i, _)| (*k, *i));
        let mut sink = Rec::all();
        let mode = Mode::List { limit: Some(50), order: Some(o), top: Some(20) };
        run(&plan(&d.files, "proto tcp", mode, threads), &mut sink);
        let got = sink.records();
        assert_eq!(got.len(), 20);
        assert!(got.iter().zip(&first50).all(|(a, b)| a == b.2));
    }
    for (order, top) in [
        (parse_order("bytes").unwrap(), Some(25)),
        (parse_order("tstart").unwrap(), None),
        (parse_order("pps:a").unwrap(), Some(7)),
        (parse_order("duration").unwrap(), Some(1000)),
    ] {
        let mut expect: Vec<(u128, usize, &FlowRecord)> = want
            .iter()
            .enumerate()
            .map(|(i, r)| (rank(order, order_value(order.key, r)), i, *r))
            .collect();
        expect.sort_by_key(|(k, i, _)| (*k, *i));
        let expect: Vec<&FlowRecord> =
            expect.into_iter().take(top.unwrap_or(usize::MAX)).map(|x| x.2).collect();
        let mut outs = Vec::new();
        for threads in [1, 4] {
            let mut sink = Rec::all();
            let mode = Mode::List { limit: None, order: Some(order), top };
            run(&plan(&d.files, "proto tcp", mode, threads), &mut sink);
            let got = sink.records();
            assert_eq!(got.len(), expect.len());
            assert!(got.iter().zip(&expect).all(|(a, b)| a == *b), "{order:?}");
            outs.push(sink.normalised());
        }
        assert_eq!(outs[0], outs[1]);
    }
}

/// The reference aggregation: a key -> sums map in first-seen order.
fn ref_aggregate(recs: &[&FlowRecord], keys: &[AggKey]) -> Vec<FlowRecord> {
    let mut t = AggTable::new(keys, None);
    for (i, r) in recs.iter().enumerate() {
        t.add_record(r, i as u64);
    }
    let mut v = t.into_records(None);
    v.sort_by_key(|(_, o)| *o);
    let comps = Comp::list(keys);
    // Check the table against a plain BTreeMap.
    type Sums = (u64, u64, u64, u64, u64);
    let mut naive: BTreeMap<Vec<Option<u128>>, Sums> = BTreeMap::new();
    for r in recs {
        let k: Vec<Option<u128>> = comps.iter().map(|c| c.value_of(r)).collect();
        let e = naive.entry(k).or_insert((u64::MAX, 0, 0, 0, 0));
        e.0 = e.0.min(r.first);
        e.1 = e.1.max(r.last);
        e.2 += r.packets;
        e.3 += r.bytes;
        e.4 += r.flows.unwrap_or(1);
    }
    assert_eq!(naive.len(), v.len());
    for (r, _) in &v {
        let k: Vec<Option<u128>> = comps.iter().map(|c| c.value_of(r)).collect();
        let e = naive[&k];
        assert_eq!((r.first, r.last, r.packets, r.bytes, r.flows.unwrap()), e);
    }
    v.into_iter().map(|(r, _)| r).collect()
}

#[test]
fn aggregate_matches_reference() {
    let d = data();
    for (keys, filter) in [
        ("", "any"),
        ("srcip4/24,dstport", "any"),
        ("srcas,dstas", "proto tcp"),
        ("proto,dstip6/48", "ipv6"),
        ("srcnet,dstnet,proto", "any"),
        ("srcport", "proto udp"),
    ] {
        let keys = if keys.is_empty() { vec![] } else { parse_agg_keys(keys).unwrap() };
        let want = ref_aggregate(&passing(&d, filter, None), &keys);
        let mut outs = Vec::new();
        for threads in [1, 4] {
            let mut sink = Rec::all();
            let mode = Mode::Aggregate {
                keys: keys.clone(),
                bidir: None,
                order: None,
                top: None,
                post: None,
            };
            run(&plan(&d.files, filter, mode, threads), &mut sink);
            let got = sink.records();
            assert_eq!(got, want, "{keys:?} {filter}");
            outs.push(sink.normalised());
        }
        assert_eq!(outs[0], outs[1]);
        // Ordered, limited, post-filtered.
        let order = parse_order("bytes").unwrap();
        let post = Filter::parse("flows > 1").unwrap();
        let mut expect: Vec<(u128, usize, &FlowRecord)> = want
            .iter()
            .enumerate()
            .filter(|(_, r)| post.matches(r, ""))
            .map(|(i, r)| (rank(order, order_value(order.key, r)), i, r))
            .collect();
        expect.sort_by_key(|(k, i, _)| (*k, *i));
        let expect: Vec<FlowRecord> = expect.into_iter().take(10).map(|x| x.2.clone()).collect();
        let mut sink = Rec::all();
        let mode = Mode::Aggregate {
            keys: keys.clone(),
            bidir: None,
            order: Some(order),
            top: Some(10),
            post: Some(post.clone()),
        };
        run(&plan(&d.files, filter, mode, 3), &mut sink);
        assert_eq!(sink.records(), expect);
    }
}

#[test]
fn bidirectional_aggregation() {
    let d = data();
    let recs = passing(&d, "proto tcp or proto udp", None);
    for bidir in [Bidir::Plain, Bidir::GuessClient] {
        let mut outs = Vec::new();
        for threads in [1, 4] {
            let mut sink = Rec::all();
            let mode = Mode::Aggregate {
                keys: vec![],
                bidir: Some(bidir),
                order: None,
                top: None,
                post: None,
            };
            run(&plan(&d.files, "proto tcp or proto udp", mode, threads), &mut sink);
            outs.push(sink.records());
        }
        assert_eq!(outs[0], outs[1]);
        let got = &outs[0];
        // Every flow counted once: in + out sums equal the input.
        let pk: u64 = got.iter().map(|r| r.packets + r.out_packets.unwrap()).sum();
        let fl: u64 = got.iter().map(|r| r.flows.unwrap()).sum();
        assert_eq!(pk, recs.iter().map(|r| r.packets).sum::<u64>());
        assert_eq!(fl, recs.len() as u64);
        // The generator pairs sessions with their reverse records.
        assert!(got.iter().any(|r| r.out_packets.unwrap() > 0));
        // Fewer records than the unidirectional aggregation.
        let uni = ref_aggregate(&recs, &[]);
        assert!(got.len() < uni.len());
        // Sequential reference: the first seen direction is the record's.
        if bidir == Bidir::Plain {
            let mut t = AggTable::new(&[], Some(Bidir::Plain));
            for (i, r) in recs.iter().enumerate() {
                t.add_record(r, i as u64);
            }
            let mut v = t.into_records(Some(Bidir::Plain));
            v.sort_by_key(|(_, o)| *o);
            let v: Vec<FlowRecord> = v.into_iter().map(|(r, _)| r).collect();
            assert_eq!(*got, v);
        } else {
            assert!(got.iter().all(|r| r.src_port >= r.dst_port));
        }
    }
}

/// Reference statistic of one element.
fn ref_stat(
    recs: &[&FlowRecord],
    el: &StatElement,
    per_proto: bool,
    order: Order,
    top: usize,
) -> (Vec<StatRow>, Counters, u64) {
    let mut m: BTreeMap<(u128, Option<u8>), StatRow> = BTreeMap::new();
    let mut total = Counters::default();
    for r in recs {
        for v in record_values(el, r) {
            let p = per_proto.then_some(r.proto);
            let e = m.entry((v, p)).or_insert(StatRow {
                value: v,
                proto: p,
                first_ms: u64::MAX,
                last_ms: 0,
                counters: Counters::default(),
            });
            e.first_ms = e.first_ms.min(r.first);
            e.last_ms = e.last_ms.max(r.last);
            e.counters.flows += r.flows.unwrap_or(1);
            e.counters.packets += r.packets;
            e.counters.bytes += r.bytes;
        }
        total.flows += r.flows.unwrap_or(1);
        total.packets += r.packets;
        total.bytes += r.bytes;
    }
    let distinct = m.len() as u64;
    let mut rows: Vec<StatRow> = m.into_values().collect();
    rows.sort_by_key(|r| {
        let v = counters_value(
            order.key,
            r.first_ms,
            r.last_ms,
            r.counters.flows,
            r.counters.packets,
            r.counters.bytes,
        );
        (rank(order, v), r.value, r.proto.map_or(0x100, u16::from))
    });
    if top > 0 {
        rows.truncate(top);
    }
    (rows, total, distinct)
}

fn stats_mode(specs: &[&str], top: usize) -> Mode {
    Mode::Stats {
        specs: specs.iter().map(|s| parse_stat_spec(s).unwrap()).collect(),
        record_keys: vec![],
        top,
        post: None,
    }
}

#[test]
fn stats_match_reference() {
    let d = data();
    let specs = [
        "srcip/bytes/flows",
        "ip",
        "port:p/packets",
        "proto",
        "dstport/bpp:a",
        "as/pps",
        "srcvlan",
        "router/bps",
    ];
    for filter in ["any", "proto tcp", "ipv6"] {
        let recs = passing(&d, filter, None);
        let mut outs = Vec::new();
        for threads in [1, 4] {
            let mut sink = Rec::none();
            run(&plan(&d.files, filter, stats_mode(&specs, 10), threads), &mut sink);
            let tables = sink.tables();
            let mut k = 0;
            for s in &specs {
                let spec = parse_stat_spec(s).unwrap();
                for o in &spec.orders {
                    let el = spec.element.unwrap();
                    let (rows, total, distinct) = ref_stat(&recs, &el, spec.per_proto, *o, 10);
                    let t = &tables[k];
                    assert_eq!(t.element, el);
                    assert_eq!(t.order, *o);
                    assert_eq!(t.rows, rows, "{s} {o:?} {filter}");
                    assert_eq!(t.total, total, "{s}");
                    assert_eq!(t.distinct, distinct, "{s}");
                    k += 1;
                }
            }
            assert_eq!(k, tables.len());
            outs.push(sink.normalised());
        }
        assert_eq!(outs[0], outs[1]);
    }
}

#[test]
fn record_stat_is_top_aggregates() {
    let d = data();
    let recs = passing(&d, "any", None);
    let all = ref_aggregate(&recs, &[]);
    let mut sink = Rec::all();
    run(&plan(&d.files, "any", stats_mode(&["record/bytes/flows", "srcport"], 5), 2), &mut sink);
    let ev = sink.normalised();
    for order in [parse_order("bytes").unwrap(), parse_order("flows").unwrap()] {
        let mut expect: Vec<(u128, usize, &FlowRecord)> = all
            .iter()
            .enumerate()
            .map(|(i, r)| (rank(order, order_value(order.key, r)), i, r))
            .collect();
        expect.sort_by_key(|(k, i, _)| (*k, *i));
        let expect: Vec<FlowRecord> = expect.into_iter().take(5).map(|x| x.2.clone()).collect();
        let pos = ev
            .iter()
            .position(|e| *e == Event::Section(Section::TopRecords { n: 5, order }))
            .unwrap();
        assert_eq!(ev[pos + 1], Event::Records(String::new(), expect));
    }
    assert_eq!(sink.tables().len(), 1);
}

#[test]
fn spilling_gives_the_same_top_n() {
    let d = data();
    let specs = ["srcip/bytes", "ip/flows", "port:p/packets", "srcas", "record/bytes/pps"];
    let mut outs = Vec::new();
    for budget in [DEFAULT_MEMORY_BUDGET, 16 * 1024, 1] {
        for threads in [1, 3] {
            let mut sink = Rec::all();
            let opts = ExecOptions { memory_budget: budget, ..Default::default() };
            let rep = execute_with(
                &plan(&d.files, "any", stats_mode(&specs, 10), threads),
                &mut sink,
                &opts,
            )
            .unwrap();
            if budget == DEFAULT_MEMORY_BUDGET {
                assert_eq!(rep.spilled_entries, 0);
            } else {
                assert!(rep.spilled_entries > 0, "{budget}");
            }
            outs.push(sink.normalised());
        }
    }
    for o in &outs[1..] {
        assert_eq!(*o, outs[0]);
    }
}

#[test]
fn time_window_boundaries() {
    let d = data();
    // A window ending exactly on a flow's last and starting on a flow's
    // first: both are inside (>= and <=).
    let mid = &d.all[d.all.len() / 2].1;
    let other = &d.all[d.all.len() / 3].1;
    let w = TimeWindow { start_ms: Some(other.first), end_ms: Some(mid.last) };
    let want = passing(&d, "any", Some(w));
    assert!(want.iter().any(|r| r.first == other.first));
    assert!(want.iter().any(|r| r.last == mid.last));
    for threads in [1, 4] {
        let mut p = plan(&d.files, "any", list(), threads);
        p.window = Some(w);
        let mut sink = Rec::all();
        let rep = run(&p, &mut sink);
        let got = sink.records();
        assert_eq!(got.len(), want.len());
        assert!(got.iter().zip(&want).all(|(a, b)| a == *b));
        let sw = rep.summary.window.unwrap();
        assert!(sw.0 >= w.start_ms.unwrap() && sw.1 <= w.end_ms.unwrap());
    }
    // One millisecond narrower on each side drops those flows.
    let w2 = TimeWindow { start_ms: Some(other.first + 1), end_ms: Some(mid.last - 1) };
    let mut p = plan(&d.files, "any", list(), 2);
    p.window = Some(w2);
    let mut sink = Rec::all();
    run(&p, &mut sink);
    assert_eq!(sink.records().len(), passing(&d, "any", Some(w2)).len());
    // A window before every file reads nothing.
    let mut p = plan(&d.files, "any", list(), 2);
    p.window = Some(TimeWindow { start_ms: Some(1000), end_ms: Some(2000) });
    let mut sink = Rec::all();
    let rep = run(&p, &mut sink);
    assert_eq!(rep.summary.files, 0);
    assert_eq!(rep.summary.window, None);
}

#[test]
fn time_window_parsing() {
    // Local times are compared with chrono's Local, whatever TZ says.
    use chrono::{Local, TimeZone};
    let local = |y, mo, d, h, mi, s| {
        Local.with_ymd_and_hms(y, mo, d, h, mi, s).earliest().unwrap().timestamp_millis() as u64
    };
    let w = TimeWindow::parse("2024/07/11.09:15:00-2024/07/11.09:20").unwrap();
    assert_eq!(w.start_ms, Some(local(2024, 7, 11, 9, 15, 0)));
    assert_eq!(w.end_ms, Some(local(2024, 7, 11, 9, 20, 0)));
    let w = TimeWindow::parse("2024/07/11").unwrap();
    assert_eq!(w, TimeWindow { start_ms: Some(local(2024, 7, 11, 0, 0, 0)), end_ms: None });
    let w = TimeWindow::parse("2024/07").unwrap();
    assert_eq!(w.start_ms, Some(local(2024, 7, 1, 0, 0, 0)));
    let w = TimeWindow::parse("2024-07-11T09:15:00Z/2024-07-11T12:00:00+02:00").unwrap();
    assert_eq!(w.start_ms, Some(1_720_689_300_000));
    assert_eq!(w.end_ms, Some(1_720_692_000_000));
    let w = TimeWindow::parse("2024-07-11T09:15:00Z - 2024-07-11T09:16:00.500Z").unwrap();
    assert_eq!(w.end_ms, Some(1_720_689_360_500));
    let w = TimeWindow::parse("2024-07-11T09:15:00Z-2024-07-11T09:16:00Z").unwrap();
    assert_eq!((w.start_ms, w.end_ms), (Some(1_720_689_300_000), Some(1_720_689_360_000)));
    let w = TimeWindow::parse("2024-07-11T09:15:00+02:00-2024-07-11T09:16:00-01:00").unwrap();
    assert_eq!(w.start_ms, Some(1_720_689_300_000 - 7_200_000));
    assert_eq!(w.end_ms, Some(1_720_689_360_000 + 3_600_000));
    let w = TimeWindow::parse("2024-07-11T09:15").unwrap();
    assert_eq!(w.start_ms, Some(local(2024, 7, 11, 9, 15, 0)));
    // --utc: times without an offset are UTC, in every form, partial
    // dates included; explicit offsets still count.
    let w = TimeWindow::parse_in("2024/07/11.09:15:00-2024/07/11.09:16", true).unwrap();
    assert_eq!((w.start_ms, w.end_ms), (Some(1_720_689_300_000), Some(1_720_689_360_000)));
    let w = TimeWindow::parse_in("2024/07", true).unwrap();
    assert_eq!(w.start_ms, Some(1_719_792_000_000));
    let w = TimeWindow::parse_in("2024-07-11T09:15", true).unwrap();
    assert_eq!(w.start_ms, Some(1_720_689_300_000));
    let w = TimeWindow::parse_in("2024-07-11T09:15:00+02:00", true).unwrap();
    assert_eq!(w.start_ms, Some(1_720_689_300_000 - 7_200_000));
    for (bad, part) in [
        ("2024/13/01", "month"),
        ("2024/02/30", "day"),
        ("2024/07/11.25:00", "hour"),
        ("2024/07/11.09:61", "minute"),
        ("2024/07/11-2024/07/10", "before start"),
        ("2024-07-11T09:15:00Z/2024-07-11T09:00:00Z", "before start"),
        ("2024-13-01T00:00", "not a valid"),
        ("yesterday", "year"),
        ("2024-07-11T09:15+25:00", "offset"),
    ] {
        let e = TimeWindow::parse(bad).unwrap_err().to_string();
        assert!(e.contains(part), "{bad}: {e}");
    }
}

#[test]
fn file_selection() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flows");
    // 3 hours across midnight: files in two day directories.
    let c = GenConfig {
        seed: 3,
        start_ms: T0 - 90 * 60_000,
        duration_ms: 3 * 3_600_000,
        rate: 0.5,
        ipv6_share: 0.0,
        slammer: None,
    };
    let files = write_flows(&root, c.clone(), "a", SubdirLayout::YearMonthDay, 1000);
    assert_eq!(files.len(), 36);
    let rel = |p: &PathBuf| p.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
    let s = |spec: InputSpec| select_files(&spec, None).unwrap();
    // -r DIR: everything, in time order.
    assert_eq!(s(InputSpec::read(root.to_string_lossy())), files);
    // -r FILE.
    assert_eq!(s(InputSpec::read(files[3].to_string_lossy())), vec![files[3].clone()]);
    // -R DIR.
    assert_eq!(s(InputSpec::range(root.to_string_lossy())), files);
    // -R DIR/FILE1:FILE2 across the date hierarchy.
    let expr = format!("{}/{}:{}", root.display(), rel(&files[10]), rel(&files[25]));
    assert!(rel(&files[10]).starts_with("2024/03/03") && rel(&files[25]).starts_with("2024/03/04"));
    assert_eq!(s(InputSpec::range(expr)), files[10..=25].to_vec());
    // -R DIR/FILE: that file and all following ones in its directory.
    let day1: Vec<PathBuf> =
        files.iter().filter(|p| rel(p).starts_with("2024/03/03")).cloned().collect();
    let expr = files[4].to_string_lossy().into_owned();
    assert_eq!(s(InputSpec::range(expr)), day1[4..].to_vec());
    // A file name without its sub-directory is found (GuessSubDir).
    let name = files[20].file_name().unwrap().to_string_lossy().into_owned();
    let name2 = files[22].file_name().unwrap().to_string_lossy().into_owned();
    let expr = format!("{}/{name}:{name2}", root.display());
    assert_eq!(s(InputSpec::range(expr)), files[20..=22].to_vec());
    // Bad ranges.
    let expr = format!("{}/{}:{}", root.display(), rel(&files[10]), rel(&files[5]));
    assert!(select_files(&InputSpec::range(expr), None).is_err());
    assert!(select_files(&InputSpec::default(), None).is_err());
    assert!(select_files(&InputSpec::read("/no/such/file"), None).is_err());

    // -M: the same names under two source directories.
    let base = dir.path().join("prof");
    let c2 = GenConfig { start_ms: T0, duration_ms: 20 * 60_000, ..c.clone() };
    let a = write_flows(&base.join("rtrA"), c2.clone(), "A", SubdirLayout::YearMonthDay, 1000);
    let b = write_flows(&base.join("rtrB"), c2, "B", SubdirLayout::YearMonthDay, 1000);
    assert_eq!(a.len(), 4);
    let m = format!("{}:rtrB", base.join("rtrA").display());
    let relb =
        |p: &PathBuf| p.strip_prefix(base.join("rtrB")).unwrap().to_string_lossy().into_owned();
    let spec = InputSpec {
        range: Some(format!("{}:{}", relb(&b[1]), relb(&b[2]))),
        multi: Some(m.clone()),
        ..Default::default()
    };
    assert_eq!(s(spec), vec![a[1].clone(), b[1].clone(), a[2].clone(), b[2].clone()]);
    let spec = InputSpec { read: Some(relb(&b[3])), multi: Some(m.clone()), ..Default::default() };
    assert_eq!(s(spec), vec![a[3].clone(), b[3].clone()]);
    let spec = InputSpec { multi: Some(format!("{}/@", base.display())), ..Default::default() };
    assert_eq!(s(spec).len(), 8);

    // A window keeps only the files that may hold passing flows (footer).
    let w = TimeWindow { start_ms: Some(T0), end_ms: Some(T0 + 10 * 60_000) };
    let got = select_files(&InputSpec::read(root.to_string_lossy()), Some(&w)).unwrap();
    assert!(!got.is_empty() && got.len() < 6, "{}", got.len());
    for p in &got {
        let t = SlotFile::open(p).unwrap().info().totals;
        assert!(t.last_ms >= T0 && t.first_ms <= T0 + 10 * 60_000);
    }
}

#[test]
fn corrupt_block_is_reported_and_the_rest_answered() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_flows(dir.path(), cfg(11, 8, 30.0), "x", SubdirLayout::Flat, 500);
    assert!(files.len() >= 2);
    let good = read_back(&files[1..]);
    let bad_file = &files[0];
    let f = SlotFile::open(bad_file).unwrap();
    let blocks = f.blocks().to_vec();
    assert!(blocks.len() >= 3);
    drop(f);
    // Flip bytes in the middle of the second block's chunks.
    let mut bytes = std::fs::read(bad_file).unwrap();
    let b = blocks[1];
    let at = (b.offset + b.length - 20) as usize;
    for x in &mut bytes[at..at + 8] {
        *x ^= 0xa5;
    }
    std::fs::write(bad_file, &bytes).unwrap();
    for threads in [1, 4] {
        let mut sink = Rec::all();
        let rep = execute(&plan(&files, "any", list(), threads), &mut sink).unwrap();
        assert_eq!(rep.errors.len(), 1, "{:?}", rep.errors);
        let e = &rep.errors[0];
        assert_eq!(e.path, *bad_file);
        let off = e.offset.unwrap();
        assert!(off >= b.offset && off < b.offset + b.length, "{e}");
        let got = sink.records();
        // Every record of the good file is there, in order, after the
        // remaining blocks of the bad one.
        assert!(got.len() >= good.len());
        let tail = &got[got.len() - good.len()..];
        assert!(tail.iter().zip(&good).all(|(a, (_, b))| a == b));
        let expect_bad = (blocks.iter().map(|b| b.rows as usize).sum::<usize>()) - b.rows as usize;
        assert_eq!(got.len(), good.len() + expect_bad);
    }
    // A file that does not open at all is reported too.
    let junk = dir.path().join("weir.202403040000.9");
    std::fs::write(&junk, b"not a slot file at all, not at all, nope, nope").unwrap();
    let mut with_junk = files.clone();
    with_junk.insert(0, junk.clone());
    let mut sink = Rec::none();
    let rep = execute(&plan(&with_junk, "any", list(), 2), &mut sink).unwrap();
    assert!(rep.errors.iter().any(|e| e.path == junk));
}

#[test]
fn write_sink_round_trip() {
    let d = data();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.weir");
    let mut w = SlotFileSink::new(&out);
    let p = plan(&d.files, "proto udp and port 1434", list(), 2);
    execute(&p, &mut w).unwrap();
    assert_eq!(w.written(), Some(out.as_path()));
    let want = passing(&d, "proto udp and port 1434", None);
    assert!(!want.is_empty());
    let back = read_back(std::slice::from_ref(&out));
    assert_eq!(back.len(), want.len());
    assert!(back.iter().zip(&want).all(|((i, a), b)| a == *b && i == "rtr"));
    // Aggregated output; the file is replaced.
    let mut w = SlotFileSink::new(&out);
    let mode = Mode::Aggregate {
        keys: parse_agg_keys("dstport").unwrap(),
        bidir: None,
        order: None,
        top: None,
        post: None,
    };
    execute(&plan(&d.files, "proto udp", mode, 2), &mut w).unwrap();
    let back = read_back(std::slice::from_ref(&out));
    let mut rec = Rec::all();
    let mode = Mode::Aggregate {
        keys: parse_agg_keys("dstport").unwrap(),
        bidir: None,
        order: None,
        top: None,
        post: None,
    };
    run(&plan(&d.files, "proto udp", mode, 1), &mut rec);
    let want = rec.records();
    assert_eq!(back.len(), want.len());
    assert!(back.iter().zip(&want).all(|((i, a), b)| a == b && i == "query"));
}

#[test]
fn counting_from_footers_equals_scanning() {
    let d = data();
    let (n, c, first, last) = summary_of(&passing(&d, "any", None));
    for (filter, threads) in [("any", 1), ("any", 3), ("bytes > 0", 2)] {
        let mut sink = Rec::none();
        let rep = run(&plan(&d.files, filter, list(), threads), &mut sink);
        assert_eq!(rep.summary.records_passed, n);
        assert_eq!(rep.summary.passed, c);
        assert_eq!((rep.summary.first_ms, rep.summary.last_ms), (first, last));
        assert!(sink.records().is_empty());
    }
    // A window that covers some files whole and others in part.
    let w = TimeWindow { start_ms: Some(T0 - 3_600_000), end_ms: Some(T0 + 7 * 60_000) };
    let (n, c, ..) = summary_of(&passing(&d, "any", Some(w)));
    let mut p = plan(&d.files, "any", list(), 2);
    p.window = Some(w);
    let rep = run(&p, &mut Rec::none());
    assert_eq!((rep.summary.records_passed, rep.summary.passed), (n, c));
}

#[test]
fn post_filter_on_statistics_and_record_spill_with_post() {
    let d = data();
    let post = Filter::parse("flows > 3 and bytes > 2000").unwrap();
    let mut outs = Vec::new();
    for budget in [DEFAULT_MEMORY_BUDGET, 1] {
        let mut sink = Rec::all();
        let mode = Mode::Stats {
            specs: vec![
                parse_stat_spec("dstport/bytes").unwrap(),
                parse_stat_spec("record/flows").unwrap(),
            ],
            record_keys: parse_agg_keys("srcip,dstport").unwrap(),
            top: 0,
            post: Some(post.clone()),
        };
        let opts = ExecOptions { memory_budget: budget, ..Default::default() };
        execute_with(&plan(&d.files, "proto tcp", mode, 2), &mut sink, &opts).unwrap();
        let t = &sink.tables()[0];
        assert!(!t.rows.is_empty());
        assert!(t.rows.iter().all(|r| r.counters.flows > 3 && r.counters.bytes > 2000));
        let recs = sink.records();
        assert!(!recs.is_empty());
        assert!(recs.iter().all(|r| r.flows.unwrap() > 3 && r.bytes > 2000));
        // Every passing record is there (top 0 = all).
        let all = ref_aggregate(
            &passing(&d, "proto tcp", None),
            &parse_agg_keys("srcip,dstport").unwrap(),
        );
        assert_eq!(recs.len(), all.iter().filter(|r| post.matches(r, "")).count());
        outs.push(sink.normalised());
    }
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn aggregation_top_n_spills_with_the_same_answer() {
    let d = data();
    let mut outs = Vec::new();
    for budget in [DEFAULT_MEMORY_BUDGET, 1] {
        for threads in [1, 3] {
            let mut sink = Rec::all();
            let mode = Mode::Aggregate {
                keys: vec![],
                bidir: None,
                order: Some(parse_order("bytes").unwrap()),
                top: Some(15),
                post: Some(Filter::parse("packets > 2").unwrap()),
            };
            let opts = ExecOptions { memory_budget: budget, ..Default::default() };
            let rep =
                execute_with(&plan(&d.files, "any", mode, threads), &mut sink, &opts).unwrap();
            assert_eq!(rep.spilled_entries > 0, budget == 1);
            assert_eq!(sink.records().len(), 15);
            outs.push(sink.normalised());
        }
    }
    for o in &outs[1..] {
        assert_eq!(*o, outs[0]);
    }
}
