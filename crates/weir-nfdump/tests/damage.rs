//! Damaged, truncated and hand-made files: errors with offsets, never a
//! panic.
#![allow(clippy::print_stderr)]

mod common;

use common::*;
use proptest::prelude::*;
use weir_encode::netflow::TemplateProtocol;
use weir_nfdump::{ErrorKind, NfError, parse};

/// A small file written by nfcapd with `flags`.
fn nfcapd_file(flags: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut cap = Nfcapd::start(dir.path(), "damage", flags);
    cap.send(&template_datagrams(TemplateProtocol::V9, 1, 8, 21));
    cap.send(&v5_datagrams(10, 22));
    let files = cap.stop();
    std::fs::read(&files[0]).unwrap()
}

fn le16(v: u16) -> [u8; 2] {
    v.to_le_bytes()
}

/// A hand-made layout-2 file: one data block with an exporter record, a
/// flow with every extension weir maps plus an unknown one (id 40) and a
/// record of an unknown type (99), then an appendix with ident and stat.
fn synthetic() -> Vec<u8> {
    let mut block = Vec::new();
    // Exporter: v9, 192.0.2.1, sysid 1, id 7.
    block.extend_from_slice(&le16(7));
    block.extend_from_slice(&le16(32));
    block.extend_from_slice(&9u32.to_le_bytes());
    block.extend_from_slice(&[0; 8]);
    block.extend_from_slice(&0xc000_0201u32.to_le_bytes());
    block.extend_from_slice(&[0; 4]);
    block.extend_from_slice(&le16(2));
    block.extend_from_slice(&le16(1));
    block.extend_from_slice(&7u32.to_le_bytes());
    // Flow.
    let mut exts: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut g = Vec::new();
    for v in [1_000u64, 2_000, 3_000, 10, 1_000] {
        g.extend_from_slice(&v.to_le_bytes());
    }
    g.extend_from_slice(&le16(1234));
    g.extend_from_slice(&le16(80));
    g.extend_from_slice(&[6, 0x12, 64, 1]);
    exts.push((1, g));
    exts.push((2, [0x0a00_0001u32.to_le_bytes(), 0x0a00_0002u32.to_le_bytes()].concat()));
    exts.push((40, vec![1, 2, 3, 4]));
    exts.push((7, [65001u32.to_le_bytes(), 65002u32.to_le_bytes()].concat()));
    let mut rec = Vec::new();
    rec.extend_from_slice(&le16(11));
    rec.extend_from_slice(&le16(0)); // size, patched
    rec.extend_from_slice(&le16(exts.len() as u16));
    rec.extend_from_slice(&[3, 4]);
    rec.extend_from_slice(&le16(1));
    rec.extend_from_slice(&[0, 9]);
    for (id, x) in &exts {
        rec.extend_from_slice(&le16(*id));
        rec.extend_from_slice(&le16(4 + x.len() as u16));
        rec.extend_from_slice(x);
    }
    let n = rec.len() as u16;
    rec[2..4].copy_from_slice(&le16(n));
    block.extend_from_slice(&rec);
    // Unknown record type.
    block.extend_from_slice(&le16(99));
    block.extend_from_slice(&le16(8));
    block.extend_from_slice(&[0; 4]);
    let mut appx = Vec::new();
    appx.extend_from_slice(&le16(0x8001));
    appx.extend_from_slice(&le16(4 + 6));
    appx.extend_from_slice(b"synth\0");
    appx.extend_from_slice(&le16(0x8002));
    appx.extend_from_slice(&le16(148));
    let mut stat = [0u64; 18];
    stat[0] = 1;
    stat[1] = 1000;
    stat[2] = 10;
    stat[3] = 1;
    stat[7] = 1000;
    stat[11] = 10;
    stat[15] = 1000;
    stat[16] = 2000;
    for v in stat {
        appx.extend_from_slice(&v.to_le_bytes());
    }
    let blk = |records: u32, body: &[u8]| {
        let mut b = Vec::new();
        b.extend_from_slice(&records.to_le_bytes());
        b.extend_from_slice(&(body.len() as u32).to_le_bytes());
        b.extend_from_slice(&le16(3));
        b.extend_from_slice(&le16(0));
        b.extend_from_slice(body);
        b
    };
    let data = blk(3, &block);
    let appendix = blk(2, &appx);
    let mut f = Vec::new();
    f.extend_from_slice(&le16(0xa50c));
    f.extend_from_slice(&le16(2));
    f.extend_from_slice(&0x0107_0100u32.to_le_bytes());
    f.extend_from_slice(&1_700_000_000u64.to_le_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&le16(1));
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&((40 + data.len()) as u64).to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    assert_eq!(f.len(), 40);
    f.extend_from_slice(&data);
    f.extend_from_slice(&appendix);
    f
}

#[test]
fn synthetic_file_reads_and_counts_what_it_skips() {
    let p = parse(&synthetic()).unwrap();
    assert_eq!(p.ident.as_deref(), Some("synth"));
    assert_eq!(p.stat.unwrap().all.packets, 10);
    assert_eq!(p.flows.len(), 1);
    let f = &p.flows[0];
    assert_eq!((f.first, f.last, f.received, f.packets, f.bytes), (1000, 2000, 3000, 10, 1000));
    assert_eq!((f.src_port, f.dst_port, f.proto, f.tcp_flags), (1234, 80, 6, 0x12));
    assert_eq!((f.fwd_status, f.src_tos), (Some(64), 1));
    assert_eq!((f.src_as, f.dst_as), (Some(65001), Some(65002)));
    assert_eq!((f.engine_type, f.engine_id, f.exporter_id), (Some(3), Some(4), Some(1)));
    assert_eq!(f.exporter_addr, Some(weir_record::ip_to_u128("192.0.2.1".parse().unwrap())));
    assert_eq!(f.obs_domain, Some(7));
    assert_eq!(p.skipped.extensions.get(&40), Some(&1));
    assert_eq!(p.skipped.records.get(&99), Some(&1));
    assert_eq!(p.exporters.len(), 1);
    assert_eq!(p.exporters[0].flows, 1);
}

#[test]
fn old_and_foreign_files_are_refused_clearly() {
    let mut f = synthetic();
    f[2] = 1;
    let e = parse(&f).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Layout1), "{e}");
    assert!(e.to_string().contains("nfdump 1.6 files"), "{e}");
    let mut f = synthetic();
    f[0..2].copy_from_slice(&[0xa5, 0x0c]);
    assert!(matches!(parse(&f).unwrap_err().kind, ErrorKind::BigEndian));
    let e = parse(b"weir\0\0\0\0").unwrap_err();
    assert!(matches!(e.kind, ErrorKind::BadMagic(_)), "{e}");
    assert_eq!(e.offset, Some(0));
    let mut f = synthetic();
    f[16] = 9;
    assert!(matches!(parse(&f).unwrap_err().kind, ErrorKind::UnsupportedCompression(9)));
    let e = weir_nfdump::NfFile::open("/nonexistent/nfcapd.202401010000").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/nfcapd.202401010000"), "{e}");
}

fn check_truncations(name: &str, bytes: &[u8]) {
    let step = (bytes.len() / 3000).max(1);
    let mut n = 0;
    for cut in (0..bytes.len()).filter(|c| *c < 300 || c % step == 0 || bytes.len() - c < 300) {
        let e: NfError = parse(&bytes[..cut]).expect_err(&format!("{name}: cut at {cut}"));
        assert!(e.offset.is_some(), "{name}: cut at {cut}: {e}");
        assert!(e.to_string().starts_with("<bytes>: offset "), "{e}");
        n += 1;
    }
    eprintln!("{name}: {n} truncation points, all errors with offsets");
}

fn check_corruptions(name: &str, bytes: &[u8]) {
    let step = (bytes.len() / 4000).max(1);
    let (mut ok, mut err) = (0, 0);
    let mut f = bytes.to_vec();
    for at in (0..bytes.len()).step_by(step) {
        for v in [0x00, 0xff, f[at] ^ 0x5a] {
            let keep = f[at];
            f[at] = v;
            match parse(&f) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(e.offset.is_some() || matches!(e.kind, ErrorKind::Io { .. }), "{e}");
                    err += 1
                }
            }
            f[at] = keep;
        }
    }
    eprintln!("{name}: {ok} corrupted copies still parse, {err} give errors; no panic");
}

#[test]
fn truncated_and_corrupted_files_give_errors_not_panics() {
    check_truncations("synthetic", &synthetic());
    check_corruptions("synthetic", &synthetic());
    if !nfdump_installed("truncated_and_corrupted_files (nfcapd part)") {
        return;
    }
    for (flags, name) in
        [(&[][..], "none"), (&["-z"][..], "lzo"), (&["-y"][..], "lz4"), (&["-j"][..], "bz2")]
    {
        let bytes = nfcapd_file(flags);
        assert!(parse(&bytes).is_ok());
        check_truncations(name, &bytes);
        check_corruptions(name, &bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn mutated_synthetic_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = synthetic();
        for (at, v) in edits {
            let i = at.index(f.len());
            f[i] = v;
        }
        let _ = parse(&f);
        let n = cut.index(f.len());
        let _ = parse(&f[..n]);
    }

    #[test]
    fn header_then_noise_never_panics(
        compression in 0u8..5,
        body in proptest::collection::vec(any::<u8>(), 0..600),
        appendix in any::<bool>(),
    ) {
        let mut f = synthetic()[..40].to_vec();
        f[16] = compression;
        let end = 40 + body.len() as u64;
        f[24..32].copy_from_slice(&(if appendix { end.saturating_sub(30) } else { 0 }).to_le_bytes());
        f.extend_from_slice(&body);
        let _ = parse(&f);
    }
}

#[test]
fn flow_iterator_matches_for_each() {
    let bytes = synthetic();
    let mut f =
        weir_nfdump::NfFile::from_reader(std::io::Cursor::new(&bytes[..]), "synthetic").unwrap();
    let it: Vec<_> = f.flow_iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(it, parse(&bytes).unwrap().flows);
    assert_eq!(f.skipped().records.get(&99), Some(&1));
    // Damage ends the iteration with the error.
    let mut bad = bytes.clone();
    bad[40 + 12 + 32 + 2] = 0xff; // the flow record's size
    let mut f = weir_nfdump::NfFile::from_reader(std::io::Cursor::new(&bad[..]), "bad").unwrap();
    let all: Vec<_> = f.flow_iter().collect();
    assert_eq!(all.len(), 1);
    let e = all[0].as_ref().unwrap_err();
    assert_eq!(e.offset, Some(40 + 12 + 32));
}

#[test]
fn other_layouts_records_are_reported() {
    // The flow as nfdump 1.8's V4 record type: not read, counted, warned.
    let mut f = synthetic();
    let at = 40 + 12 + 32;
    assert_eq!(&f[at..at + 2], &11u16.to_le_bytes());
    f[at..at + 2].copy_from_slice(&16u16.to_le_bytes());
    let p = parse(&f).unwrap();
    assert!(p.flows.is_empty());
    assert_eq!(p.skipped.records.get(&16), Some(&1));
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("nfcapd.202401010000"), &f).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let mut opts = weir_nfdump::ImportOptions::new(src.path(), dest.path());
    opts.name_time = weir_nfdump::NameTime::Utc;
    let r = weir_nfdump::import(opts).unwrap();
    assert_eq!(r.files_imported(), 1);
    assert!(r.warnings.iter().any(|(_, w)| w.contains("type 16")), "{:?}", r.warnings);
}
