//! `import`: nfcapd trees in, weir slot files out, compared with nfdump.
#![allow(clippy::print_stderr)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::*;
use weir_encode::netflow::TemplateProtocol;
use weir_nfdump::{FailReason, FileOutcome, ImportOptions, NameTime, NfFile, import};
use weir_record::{FlowRecord, ProtoClass};
use weir_store::{ChunkReader, SlotFile, SubdirLayout, TimeRange, list_files};

/// Starts nfcapd with `-S 1` and the given flags, sends v9, IPFIX and v5
/// traffic.
fn tree(flags: &[&str], n: usize) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["-S", "1"];
    args.extend_from_slice(flags);
    let mut cap = Nfcapd::start(dir.path(), "weirtest", &args);
    cap.send(&template_datagrams(TemplateProtocol::V9, 3, n, 11));
    cap.send(&template_datagrams(TemplateProtocol::Ipfix, 4, n, 12));
    cap.send(&v5_datagrams(n, 13));
    let files = cap.stop();
    assert!(!files.is_empty());
    (dir, files)
}

fn read_slot(path: &Path) -> (SlotFile, Vec<FlowRecord>) {
    let f = SlotFile::open(path).unwrap();
    let mut rows = Vec::new();
    let mut cr = ChunkReader::new();
    for i in 0..f.blocks().len() {
        rows.extend(f.block(i).unwrap().read_all(&mut cr).unwrap().records());
    }
    (f, rows)
}

#[test]
fn import_matches_nfdump_and_is_idempotent() {
    if !nfdump_installed("import_matches_nfdump_and_is_idempotent") {
        return;
    }
    let (src, files) = tree(&["-y"], 80);
    // A damaged copy next to the good files: same tree, a later slot name.
    let bad = src.path().join("2001/01/01");
    std::fs::create_dir_all(&bad).unwrap();
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes.truncate(bytes.len() - 7);
    std::fs::write(bad.join("nfcapd.200101010000"), &bytes).unwrap();
    // In-progress files are not imported.
    std::fs::write(src.path().join("nfcapd.current.1234"), b"").unwrap();

    let dest = tempfile::tempdir().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let mut opts = ImportOptions::new(src.path(), dest.path());
    opts.name_time = NameTime::Utc;
    opts.layout = SubdirLayout::YearMonthDayHour;
    opts.slot_secs = Some(60);
    opts.progress = Some(Box::new(move |e| {
        let what = match e.outcome {
            FileOutcome::Imported { .. } => "imported",
            FileOutcome::AlreadyImported { .. } => "skipped",
            FileOutcome::Failed(_) => "failed",
        };
        ev.lock().unwrap().push((e.source.to_path_buf(), what, e.done, e.total));
    }));
    let r = import(opts).unwrap();
    eprintln!("{r:?}");
    assert_eq!(r.files_imported(), files.len());
    assert_eq!(r.files_failed(), 1);
    assert_eq!(r.files_skipped(), 0);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let (failed, why) = &r.failed[0];
    assert!(failed.ends_with("nfcapd.200101010000"));
    let FailReason::Read(e) = why else { panic!("{why}") };
    assert!(e.offset.is_some(), "{e}");
    assert!(e.to_string().contains("nfcapd.200101010000"), "{e}");
    assert_eq!(events.lock().unwrap().len(), files.len() + 1);

    let mut all_flows = 0;
    for (src_file, dest_file) in &r.imported {
        let (slot, rows) = read_slot(dest_file);
        let info = slot.info();
        let nf = NfFile::open(src_file).unwrap();
        // Slot start = the time in the nfcapd name (UTC here), 60 s slots.
        let name = src_file.file_name().unwrap().to_str().unwrap();
        let parsed = weir_nfdump::parse_nfcapd_name(name).unwrap();
        assert_eq!(info.slot_start_s, parsed.start_s(NameTime::Utc, None).unwrap());
        assert_eq!(info.slot_len_s, 60);
        assert_eq!(info.ident, "weirtest");
        assert_eq!(info.creator, weir_store::Creator::Import);
        assert!(dest_file.starts_with(dest.path()));
        // Every flow, every field, as nfdump reads it.
        let want = nfdump_flows(src_file);
        assert_eq!(rows.len(), want.len());
        for (i, (g, w)) in rows.iter().zip(&want).enumerate() {
            let mut g = g.clone();
            g.obs_domain = None;
            g.sampling_rate = None;
            assert_eq!(&g, w, "{}: flow {i}", src_file.display());
        }
        all_flows += rows.len() as u64;
        // Totals: nfdump -I, except that nfcapd's stat record counts records
        // (weir: aggregated flows) and adds the reverse direction of
        // bidirectional flows to the overall packets and bytes, not to the
        // per-protocol ones (weir: in direction everywhere).
        let i = nfdump_info(src_file);
        let v = |k: &str| i[k].parse::<u64>().unwrap();
        let t = &info.totals;
        let out = |c: Option<ProtoClass>| {
            let fl = want.iter().filter(|f| c.is_none_or(|c| ProtoClass::of(f.proto) == c));
            fl.fold((0, 0, 0), |a, f| {
                (a.0 + f.out_packets.unwrap_or(0), a.1 + f.out_bytes.unwrap_or(0), a.2 + 1)
            })
        };
        let (op, ob, n) = out(None);
        assert_eq!(t.all.packets, v("Packets") - op);
        assert_eq!(t.all.bytes, v("Bytes") - ob);
        assert_eq!(n, v("Flows"));
        assert_eq!(t.all.flows, want.iter().map(|f| f.flows.unwrap_or(1)).sum::<u64>());
        for c in ProtoClass::ALL {
            // nfcapd's per-class counters are in direction only.
            let (_, _, n) = out(Some(c));
            assert_eq!(t.class(c).packets, v(&format!("Packets_{}", c.name())));
            assert_eq!(t.class(c).bytes, v(&format!("Bytes_{}", c.name())));
            assert_eq!(n, v(&format!("Flows_{}", c.name())));
        }
        assert_eq!(t.first_ms, v("First") * 1000 + v("msec_first"));
        assert_eq!(t.last_ms, v("Last") * 1000 + v("msec_last"));
        assert_eq!(t.sequence_failures, v("Sequence failures"));
        // Exporters: nfdump -E.
        let nfe = nfdump_exporters(src_file);
        assert_eq!(info.exporters.len(), nfe.len());
        for (e, n) in info.exporters.iter().zip(&nfe) {
            assert_eq!((e.sysid, e.version, e.domain), (n.sysid, n.version, n.id));
            assert_eq!(
                (e.datagrams, e.flows, e.sequence_failures),
                (n.packets, n.flows, n.sequence_failures)
            );
        }
        drop(nf);
    }
    assert_eq!(r.flows, all_flows);
    received_most(all_flows, 3 * 80 * 2 + 80, "import");
    // weir's own listing finds them.
    assert_eq!(list_files(dest.path(), TimeRange::ALL).unwrap().len(), files.len());

    // Again: everything is already there.
    let mut opts = ImportOptions::new(src.path(), dest.path());
    opts.name_time = NameTime::Utc;
    opts.layout = SubdirLayout::YearMonthDayHour;
    opts.slot_secs = Some(60);
    opts.threads = 2;
    let again = import(opts).unwrap();
    assert_eq!(again.files_imported(), 0);
    assert_eq!(again.files_skipped(), files.len());
    assert_eq!(again.files_failed(), 1);
    assert_eq!(again.flows, 0);

    // The same file from elsewhere is recognised as already imported.
    let other = tempfile::tempdir().unwrap();
    let target = other.path().join(files[0].file_name().unwrap());
    std::fs::copy(&files[0], &target).unwrap();
    let mut opts = ImportOptions::new(&target, dest.path());
    opts.name_time = NameTime::Utc;
    opts.layout = SubdirLayout::YearMonthDayHour;
    opts.slot_secs = Some(60);
    assert_eq!(import(opts).unwrap().files_skipped(), 1);
}

#[test]
fn several_sources_and_conflicts() {
    if !nfdump_installed("several_sources_and_conflicts") {
        return;
    }
    let (a, fa) = tree(&[], 20);
    let (b, fb) = tree(&["-j"], 30);
    let dest = tempfile::tempdir().unwrap();
    let mut opts = ImportOptions::new(a.path(), dest.path());
    opts.sources.push((b.path().to_path_buf(), Some("edge".into())));
    opts.sources[0].1 = Some("core".into());
    opts.name_time = NameTime::Utc;
    opts.threads = 2;
    let r = import(opts).unwrap();
    assert_eq!(r.files_imported(), fa.len() + fb.len(), "{r:?}");
    for (_, d) in &r.imported {
        assert!(d.starts_with(dest.path().join("core")) || d.starts_with(dest.path().join("edge")));
    }
    // Source b's files imported into core's place collide with different
    // content: reported as conflicts.
    let mut opts = ImportOptions::new(b.path(), dest.path().join("core"));
    opts.name_time = NameTime::Utc;
    let r = import(opts).unwrap();
    // Both collectors ran in the same minute(s): the slot names collide.
    let same: Vec<_> =
        fb.iter().filter(|f| fa.iter().any(|g| g.file_name() == f.file_name())).collect();
    assert_eq!(r.files_failed(), same.len(), "{r:?}");
    for (_, why) in &r.failed {
        assert!(matches!(why, FailReason::Conflict { .. }), "{why}");
    }
}

#[test]
fn totals_equal_nfdump_info_for_unidirectional_flows() {
    if !nfdump_installed("totals_equal_nfdump_info_for_unidirectional_flows") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cap = Nfcapd::start(dir.path(), "plain", &["-z"]);
    let now = now_ms();
    let mut rng = Rng::new(5);
    for p in [TemplateProtocol::V9, TemplateProtocol::Ipfix] {
        let mut enc = weir_encode::netflow::TemplateEncoder::new(p, 9, now - 60_000);
        enc.add_template(weir_encode::netflow::Template::ipv4(300, p));
        enc.add_template(weir_encode::netflow::Template::ipv6(301, p));
        cap.send(&enc.data(300, &full_flows(&mut rng, 150, now, false), now, true));
        cap.send(&enc.data(301, &full_flows(&mut rng, 50, now, true), now, false));
    }
    cap.send(&v5_datagrams(100, 6));
    let files = cap.stop();
    let dest = tempfile::tempdir().unwrap();
    let mut opts = ImportOptions::new(dir.path(), dest.path());
    opts.name_time = NameTime::Utc;
    let r = import(opts).unwrap();
    assert_eq!(r.files_imported(), files.len());
    received_most(r.flows, 500, "unidirectional");
    for (src_file, dest_file) in &r.imported {
        let i = nfdump_info(src_file);
        let v = |k: &str| i[k].parse::<u64>().unwrap();
        let slot = SlotFile::open(dest_file).unwrap();
        let t = &slot.info().totals;
        assert_eq!(
            (t.all.flows, t.all.packets, t.all.bytes),
            (v("Flows"), v("Packets"), v("Bytes"))
        );
        for c in ProtoClass::ALL {
            let n = c.name();
            let k = |w: &str| v(&format!("{w}_{n}"));
            let got = t.class(c);
            assert_eq!((got.flows, got.packets, got.bytes), (k("Flows"), k("Packets"), k("Bytes")));
        }
        // A file nfcapd wrote without flows (the run crossed a rotation)
        // has some time as its first and last seen; weir says 0 for "no
        // flows" (FORMAT.md, TOTALS; NFDUMP.md).
        if t.all.flows > 0 {
            assert_eq!(t.first_ms, v("First") * 1000 + v("msec_first"));
            assert_eq!(t.last_ms, v("Last") * 1000 + v("msec_last"));
        } else {
            assert_eq!((t.first_ms, t.last_ms), (0, 0));
        }
        assert_eq!(t.sequence_failures, v("Sequence failures"));
        assert_eq!(slot.info().ident, i["Ident"]);
    }
}

#[test]
fn empty_files_and_single_files() {
    if !nfdump_installed("empty_files_and_single_files") {
        return;
    }
    // nfcapd without traffic writes a file with no flows (header + appendix).
    let dir = tempfile::tempdir().unwrap();
    let files = Nfcapd::start(dir.path(), "quiet", &["-z"]).stop();
    assert_eq!(files.len(), 1);
    let p = weir_nfdump::parse(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert!(p.flows.is_empty());
    assert_eq!(p.ident.as_deref(), Some("quiet"));
    let dest = tempfile::tempdir().unwrap();
    // A single file as the source.
    let mut opts = ImportOptions::new(&files[0], dest.path());
    opts.name_time = NameTime::Utc;
    opts.layout = SubdirLayout::Flat;
    let r = import(opts).unwrap();
    assert_eq!(r.files_imported(), 1, "{r:?}");
    let (slot, rows) = read_slot(&r.imported[0].1);
    assert!(rows.is_empty());
    assert_eq!(slot.info().ident, "quiet");
    assert_eq!(slot.info().totals.all.flows, 0);
    assert_eq!(r.imported[0].1.parent().unwrap(), dest.path());
    // And once more: already there.
    let mut opts = ImportOptions::new(&files[0], dest.path());
    opts.name_time = NameTime::Utc;
    opts.layout = SubdirLayout::Flat;
    assert_eq!(import(opts).unwrap().files_skipped(), 1);
}

#[test]
fn a_tree_of_several_streams_keeps_them_apart() {
    if !nfdump_installed("a_tree_of_several_streams_keeps_them_apart") {
        return;
    }
    // Like nfcapd -n / -M: one directory per source, each with its own -S
    // layout; the same slot names occur in both.
    let top = tempfile::tempdir().unwrap();
    let mut a = Nfcapd::start(&top.path().join("rtr-a"), "rtr-a", &["-S", "2"]);
    let mut b = Nfcapd::start(&top.path().join("rtr-b"), "rtr-b", &["-S", "1", "-j"]);
    a.send(&v5_datagrams(40, 41));
    b.send(&v5_datagrams(50, 42));
    let (fa, fb) = (a.stop(), b.stop());
    let dest = tempfile::tempdir().unwrap();
    let mut opts = ImportOptions::new(top.path(), dest.path());
    opts.name_time = NameTime::Utc;
    opts.layout = SubdirLayout::Flat;
    let r = import(opts).unwrap();
    assert_eq!(r.files_failed(), 0, "{r:?}");
    assert_eq!(r.files_imported(), fa.len() + fb.len());
    received_most(r.flows, 90, "streams");
    for (src, d) in &r.imported {
        let which = if src.starts_with(top.path().join("rtr-a")) { "rtr-a" } else { "rtr-b" };
        assert_eq!(d.parent().unwrap(), dest.path().join(which), "{}", d.display());
        assert_eq!(SlotFile::open(d).unwrap().info().ident, which);
    }
}

#[test]
fn tampered_counters_are_flagged() {
    if !nfdump_installed("tampered_counters_are_flagged") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cap = Nfcapd::start(dir.path(), "tamper", &[]);
    cap.send(&v5_datagrams(30, 51));
    let files = cap.stop();
    let clean = tempfile::tempdir().unwrap();
    let mut opts = ImportOptions::new(dir.path(), clean.path());
    opts.name_time = NameTime::Utc;
    let r = import(opts).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // Change the packet count of the first flow (uncompressed file): it
    // still reads, but no longer adds up to the stat record.
    let mut b = std::fs::read(&files[0]).unwrap();
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let mut rec = 52;
    while u16_at(&b, rec) != 11 {
        rec += u16_at(&b, rec + 2);
    }
    let mut ext = rec + 12;
    while u16_at(&b, ext) != 1 {
        ext += u16_at(&b, ext + 2);
    }
    b[ext + 4 + 24] ^= 0x40;
    std::fs::write(&files[0], &b).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let mut opts = ImportOptions::new(dir.path(), dest.path());
    opts.name_time = NameTime::Utc;
    let r = import(opts).unwrap();
    assert_eq!(r.files_imported(), files.len());
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].1.contains("stat record says"), "{:?}", r.warnings);
}

#[test]
fn cancel_stops_between_files() {
    // Copies of an empty but valid file under other slot names; cancelled
    // from the first progress call, no further file is started.
    if !nfdump_installed("cancel_stops_between_files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = Nfcapd::start(dir.path(), "c", &[]).stop();
    for m in ["00", "05", "10"] {
        std::fs::copy(&files[0], dir.path().join(format!("nfcapd.2020010100{m}"))).unwrap();
    }
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f2 = flag.clone();
    let dest = tempfile::tempdir().unwrap();
    let mut opts = ImportOptions::new(dir.path(), dest.path());
    opts.cancel = Some(flag);
    opts.progress = Some(Box::new(move |_| f2.store(true, std::sync::atomic::Ordering::Relaxed)));
    let r = import(opts).unwrap();
    assert_eq!(r.files_imported(), 1, "{r:?}");
    assert!(r.cancelled);
}

#[test]
fn dynamic_source_trees_split_per_exporter() {
    if !nfdump_installed("dynamic_source_trees_split_per_exporter") {
        return;
    }
    // nfcapd -M: flows/127-0-0-2/YYYY/MM/DD/nfcapd.*, flows/127-0-0-3/...
    let top = tempfile::tempdir().unwrap();
    let mut cap = Nfcapd::start_dynamic(top.path(), &["-S", "1", "-y"]);
    cap.send_from("127.0.0.2", &v5_datagrams(30, 61));
    cap.send_from("127.0.0.3", &v5_datagrams(20, 62));
    let files = cap.stop();
    assert!(files.len() >= 2, "{files:?}");
    let dest = tempfile::tempdir().unwrap();
    let mut opts = ImportOptions::new(top.path(), dest.path());
    opts.name_time = NameTime::Utc;
    opts.layout = SubdirLayout::Flat;
    let r = import(opts).unwrap();
    assert_eq!(r.files_failed(), 0, "{r:?}");
    assert_eq!(r.files_imported(), files.len());
    received_most(r.flows, 50, "dynamic");
    for (src, d) in &r.imported {
        let exporter = src.strip_prefix(top.path()).unwrap().components().next().unwrap();
        assert_eq!(d.parent().unwrap(), dest.path().join(exporter), "{}", d.display());
        let (slot, rows) = read_slot(d);
        assert_eq!(rows.len(), nfdump_flows(src).len());
        // nfcapd's ident of a dynamic source is its directory name.
        assert_eq!(slot.info().ident, exporter.as_os_str().to_str().unwrap());
    }
}
