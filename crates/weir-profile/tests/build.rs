//! A retroactive slammer profile over generated history equals `weir
//! query` with the same filter, slot by slot; builds resume and updates
//! are idempotent.

use std::io;
use std::path::{Path, PathBuf};

use weir_filter::Filter;
use weir_gen::{Burst, GenConfig, Generator};
use weir_profile::trend::{Metric, series_index};
use weir_profile::{BuildOptions, Profile, ProfileStore, build, query_input, status};
use weir_query::{Mode, QueryPlan, Section, Sink, StatTable, Summary, execute};
use weir_record::{Field, FlowRecord, ProtoClass};
use weir_store::{Creator, SlotMeta, SlotWriter, SubdirLayout, WriterOptions, slot_path};

const START_S: i64 = 1_709_532_000; // 2024-03-04T06:00Z

/// Two hours of background traffic with a slammer burst at 07:00 for 20
/// minutes, in 5-minute slot files under `dir`.
fn history(dir: &Path) -> Vec<(i64, PathBuf)> {
    let cfg = GenConfig {
        seed: 3,
        start_ms: START_S as u64 * 1000,
        duration_ms: 2 * 3_600_000,
        rate: 40.0,
        slammer: Some(Burst {
            start_ms: (START_S as u64 + 3600) * 1000,
            duration_ms: 20 * 60_000,
            rate: 50.0,
        }),
        ..GenConfig::default()
    };
    let mut out = Vec::new();
    let mut cur: Option<(i64, SlotWriter)> = None;
    let opts = WriterOptions { block_rows: 4096, ..Default::default() };
    for r in Generator::new(cfg) {
        let s = weir_store::slot_start((r.received / 1000) as i64, 300);
        if cur.as_ref().is_none_or(|(cs, _)| *cs != s) {
            if let Some((cs, w)) = cur.take() {
                out.push((cs, w.finish().unwrap()));
            }
            let meta = SlotMeta {
                slot_start_s: s,
                slot_len_s: 300,
                ident: "edge".into(),
                creator: Creator::Gen,
            };
            let p = slot_path(dir, SubdirLayout::YearMonthDay, s, 300);
            cur = Some((s, SlotWriter::create(&p, meta, opts).unwrap()));
        }
        cur.as_mut().unwrap().1.push(&r).unwrap();
    }
    if let Some((cs, w)) = cur.take() {
        out.push((cs, w.finish().unwrap()));
    }
    out
}

#[derive(Default)]
struct Totals(Option<Summary>);

impl Sink for Totals {
    fn columns(&self) -> Option<Vec<Field>> {
        None
    }
    fn begin_section(&mut self, _: Section) -> io::Result<()> {
        Ok(())
    }
    fn records(&mut self, _: &str, _: &[FlowRecord]) -> io::Result<()> {
        Ok(())
    }
    fn stat(&mut self, _: &StatTable) -> io::Result<()> {
        Ok(())
    }
    fn summary(&mut self, s: &Summary) -> io::Result<()> {
        self.0 = Some(s.clone());
        Ok(())
    }
}

/// `weir query -r FILE… FILTER -o null`: flows, packets, bytes.
fn query(files: Vec<PathBuf>, filter: &str) -> (u64, u64, u64) {
    let plan = QueryPlan {
        files,
        window: None,
        filter: Filter::parse(filter).unwrap(),
        mode: Mode::List { limit: None, order: None, top: None },
        threads: Some(2),
    };
    let mut sink = Totals::default();
    execute(&plan, &mut sink).unwrap();
    let c = sink.0.unwrap().passed;
    (c.flows, c.packets, c.bytes)
}

const DEF: &str = r##"
name = "slammer"
description = "SQL Slammer, retroactively"
start = "2024-03-04T06:00"
end = "2024-03-04T08:00"
type = "history"
storage = "STORAGE"

[[channel]]
name = "slammer"
filter = "proto udp and port 1434"
colour = "#d62728"

[[channel]]
name = "web"
filter = "proto tcp and port in [80 443]"

[[channel]]
name = "out"
filter = "not net 10.0.0.0/8"
sign = "-"
"##;

fn setup(storage: &str) -> (tempfile::TempDir, ProfileStore, Profile, Vec<(i64, PathBuf)>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("flows");
    let files = history(&data);
    let store = ProfileStore::new(tmp.path().join("profiles"), &data);
    let p =
        Profile::from_toml(&DEF.replace("STORAGE", storage), Path::new("slammer.toml")).unwrap();
    store.add(&p).unwrap();
    (tmp, store, p, files)
}

fn now() -> i64 {
    START_S + 10 * 86_400
}

#[test]
fn retroactive_slammer_profile_equals_query_slot_by_slot() {
    let (_tmp, store, p, files) = setup("shadow");
    assert_eq!(files.len(), 24);
    let mut calls = 0;
    let opts = BuildOptions { now_s: now(), threads: Some(2), ..Default::default() };
    let rep = build(&store, &p, &opts, &mut |_| calls += 1).unwrap();
    assert_eq!(rep.slots, 24);
    assert!(calls >= 1 && rep.errors.is_empty());
    assert!(rep.matched[0] > 1000, "slammer flows: {:?}", rep.matched);
    for c in &p.channels {
        let trend = store.trend(&p.name, &c.name).unwrap().unwrap();
        for (s, f) in &files {
            let v = trend.slot(*s).unwrap_or([0; 15]);
            let want = query(vec![f.clone()], &c.filter);
            let got = (
                v[series_index(Metric::Flows, None)],
                v[series_index(Metric::Packets, None)],
                v[series_index(Metric::Bytes, None)],
            );
            assert_eq!(got, want, "channel {} slot {s}", c.name);
            let udp = query(vec![f.clone()], &format!("({}) and proto udp", c.filter));
            assert_eq!(v[series_index(Metric::Bytes, Some(ProtoClass::Udp))], udp.2);
        }
    }
    let st = status(&store, &p, now()).unwrap();
    assert_eq!(st.text, "built");
    // Again: nothing to do, nothing changes (idempotent per slot).
    let before = std::fs::read(store.trend_path("slammer", "web").unwrap()).unwrap();
    let rep = build(&store, &p, &opts, &mut |_| {}).unwrap();
    assert_eq!(rep.slots, 0);
    assert_eq!(std::fs::read(store.trend_path("slammer", "web").unwrap()).unwrap(), before);
    // Querying the shadow profile = the live data through the channel filter.
    let q = query_input(&store, &p, Some("slammer")).unwrap();
    assert_eq!(q.files.len(), 24);
    let all: Vec<PathBuf> = files.iter().map(|f| f.1.clone()).collect();
    let plan_filter = "proto udp and port 1434";
    let mut sink = Totals::default();
    let plan = QueryPlan {
        files: q.files,
        window: None,
        filter: q.filter,
        mode: Mode::List { limit: None, order: None, top: None },
        threads: Some(2),
    };
    execute(&plan, &mut sink).unwrap();
    assert_eq!(sink.0.unwrap().passed.flows, query(all, plan_filter).0);
}

#[test]
fn an_interrupted_build_resumes_and_ends_equal() {
    let (_tmp, store, p, _files) = setup("shadow");
    let half = BuildOptions { now_s: now(), to_s: Some(START_S + 3600), ..Default::default() };
    build(&store, &p, &half, &mut |_| {}).unwrap();
    let st = status(&store, &p, now()).unwrap();
    assert_eq!(st.text, "built 50.0%");
    let rest = BuildOptions { now_s: now(), ..Default::default() };
    let rep = build(&store, &p, &rest, &mut |_| {}).unwrap();
    assert_eq!(rep.slots, 12);
    let resumed = std::fs::read(store.trend_path("slammer", "slammer").unwrap()).unwrap();
    let again = BuildOptions { now_s: now(), rebuild: true, ..Default::default() };
    build(&store, &p, &again, &mut |_| {}).unwrap();
    let whole = std::fs::read(store.trend_path("slammer", "slammer").unwrap()).unwrap();
    assert_eq!(resumed, whole);
}

#[test]
fn materialized_channels_hold_exactly_the_matching_flows() {
    let (_tmp, store, p, files) = setup("materialized");
    let rep = build(&store, &p, &BuildOptions { now_s: now(), ..Default::default() }, &mut |_| {})
        .unwrap();
    assert!(rep.written > 20);
    let all: Vec<PathBuf> = files.iter().map(|f| f.1.clone()).collect();
    for c in &p.channels {
        let q = query_input(&store, &p, Some(&c.name)).unwrap();
        assert!(q.filter.is_any());
        assert_eq!(query(q.files, "any"), query(all.clone(), &c.filter), "{}", c.name);
    }
}

#[test]
fn a_continuous_profile_follows_rotations() {
    let (tmp, store, _, files) = setup("shadow");
    let def = DEF
        .replace("STORAGE", "shadow")
        .replace("name = \"slammer\"\ndesc", "name = \"live\"\ndesc")
        .replace("end = \"2024-03-04T08:00\"\n", "")
        .replace("type = \"history\"", "type = \"continuous\"");
    let p = Profile::from_toml(&def, Path::new("live.toml")).unwrap();
    store.add(&p).unwrap();
    // "Now" is 06:30: six slots are over.
    let at = |t: i64| BuildOptions { now_s: t, ..Default::default() };
    let r = build(&store, &p, &at(START_S + 1800), &mut |_| {}).unwrap();
    assert_eq!(r.slots, 6);
    assert_eq!(status(&store, &p, START_S + 1800).unwrap().text, "up to date");
    assert!(status(&store, &p, START_S + 3600).unwrap().text.starts_with("built "));
    // A collector holds the 07:00 slot open: update stops before it.
    let open = files[12]
        .1
        .parent()
        .unwrap()
        .join(format!(".weir.202403040700.{}.0.tmp", std::process::id()));
    std::fs::write(&open, b"partial").unwrap();
    let r = build(&store, &p, &at(START_S + 7200), &mut |_| {}).unwrap();
    assert_eq!((r.slots, r.waiting_for), (6, Some(START_S + 3600)));
    std::fs::remove_file(&open).unwrap();
    let r = build(&store, &p, &at(START_S + 7200), &mut |_| {}).unwrap();
    assert_eq!(r.slots, 12);
    let r = build(&store, &p, &at(START_S + 7200), &mut |_| {}).unwrap();
    assert_eq!(r.slots, 0, "idempotent");
    drop(tmp);
}
