//! Public-API tests of the slot-file store: round trips, corruption, listing.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use weir_record::{BatchBuilder, Field, FlowRecord, SlotTotals, ip_to_u128};
use weir_store::{
    ChunkReader, Compression, Creator, ErrorKind, OnExists, SlotFile, SlotMeta, SlotWriter,
    SubdirLayout, TimeRange, WriterOptions, list_files, slot_path,
};

const START: i64 = 1_709_532_000; // 2024-03-04 06:00:00 UTC

fn meta(start: i64) -> SlotMeta {
    SlotMeta { slot_start_s: start, slot_len_s: 300, ident: "test".into(), creator: Creator::Gen }
}

fn write(path: &Path, records: &[FlowRecord], opts: WriterOptions) -> PathBuf {
    let mut w = SlotWriter::create(path, meta(START), opts).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    w.finish().unwrap()
}

fn read_back(path: &Path) -> Vec<FlowRecord> {
    let f = SlotFile::open(path).unwrap();
    let mut reader = ChunkReader::new();
    let mut out = Vec::new();
    for i in 0..f.blocks().len() {
        out.extend(f.block(i).unwrap().read_all(&mut reader).unwrap().records());
    }
    out
}

/// A mix of present and absent fields with realistic and extreme values.
fn sample_records(n: usize) -> Vec<FlowRecord> {
    (0..n as u64)
        .map(|i| {
            let t = START as u64 * 1000 + i * 17;
            let mut r = FlowRecord {
                first: t - (i % 5000),
                last: t,
                received: t + 3,
                src_port: (i * 7919 % 65536) as u16,
                dst_port: [443, 80, 53, 1434][i as usize % 4],
                proto: [6, 17, 1, 47][i as usize % 4],
                tcp_flags: (i % 64) as u8,
                packets: 1 + i * i % 100_000,
                bytes: 40 + i * 1337,
                ..Default::default()
            };
            r.src_addr =
                Some(ip_to_u128(format!("10.{}.{}.{}", i % 3, i % 256, i % 200).parse().unwrap()));
            r.dst_addr = Some(if i % 10 == 0 {
                ip_to_u128("2001:db8::1".parse().unwrap()) + i as u128
            } else {
                ip_to_u128("192.0.2.1".parse().unwrap())
            });
            if i % 3 == 0 {
                r.src_vlan = Some((i % 4096) as u16);
            }
            if i % 7 == 0 {
                r.mpls1 = Some(0x00ff_fff1);
                r.in_src_mac = Some(0xffff_ffff_ffff);
            }
            r.src_as = Some(if i % 2 == 0 { 64512 } else { 4_200_000_000 });
            r
        })
        .collect()
}

#[test]
fn records_survive_write_and_read_in_every_compression() {
    let dir = tempfile::tempdir().unwrap();
    let recs = sample_records(10_000);
    for (i, compression) in
        [Compression::None, Compression::Zstd(1), Compression::Zstd(19)].into_iter().enumerate()
    {
        let path = dir.path().join(format!("c{i}/weir.202403040600"));
        let opts = WriterOptions { compression, block_rows: 3000, ..Default::default() };
        let path = write(&path, &recs, opts);
        assert_eq!(read_back(&path), recs);
        let f = SlotFile::open(&path).unwrap();
        assert_eq!(f.blocks().len(), 4);
        assert!(f.verify().unwrap() > 0);
        let mut expect = SlotTotals::default();
        let mut b = BatchBuilder::default();
        recs.iter().for_each(|r| b.push(r));
        expect.add_batch(&b.finish());
        assert_eq!(f.info().totals, expect);
        assert_eq!(f.info().ident, "test");
    }
}

#[test]
fn one_column_decodes_without_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let recs = sample_records(5000);
    let path = write(&dir.path().join("weir.202403040600"), &recs, WriterOptions::default());
    let f = SlotFile::open(&path).unwrap();
    let block = f.block(0).unwrap();
    let batch = block.read(&[Field::DstPort], &mut ChunkReader::new()).unwrap();
    assert_eq!(batch.fields().collect::<Vec<_>>(), vec![Field::DstPort]);
    assert_eq!(batch.column(Field::DstPort).unwrap().get(3), Some(1434));
    // Zone maps come from the header alone.
    let stats = block.stats();
    assert_eq!(stats.zone(Field::DstPort).unwrap().min, 53);
    assert_eq!(stats.zone(Field::DstPort).unwrap().max, 1434);
    assert!(stats.zone(Field::Mpls2).is_none());
    assert_eq!(stats.zone(Field::SrcVlan).unwrap().nulls, 3333);
}

#[test]
fn empty_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir.path().join("weir.202403040600"), &[], WriterOptions::default());
    let f = SlotFile::open(&path).unwrap();
    assert_eq!(f.rows(), 0);
    assert_eq!(f.info().totals, SlotTotals::default());
    assert_eq!(f.info().slot_start_s, START);
}

#[test]
fn existing_final_name_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("weir.202403040600");
    let recs = sample_records(10);
    let first = write(&target, &recs, WriterOptions::default());
    let before = std::fs::read(&first).unwrap();
    let mut w = SlotWriter::create(&target, meta(START), WriterOptions::default()).unwrap();
    w.push(&recs[0]).unwrap();
    let err = w.finish().unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Exists(_)), "{err}");
    assert_eq!(std::fs::read(&first).unwrap(), before);
    let opts = WriterOptions { on_exists: OnExists::NextSeq, ..Default::default() };
    let second = write(&target, &recs[..1], opts);
    assert_eq!(second, dir.path().join("weir.202403040600.1"));
    // No temporary file is left behind.
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// Flipping any single byte of a file must be detected by open + verify,
/// with an error that names the file and an offset, never a panic.
#[test]
fn every_flipped_byte_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let recs = sample_records(300);
    let opts = WriterOptions { block_rows: 100, ..Default::default() };
    let good = write(&dir.path().join("weir.202403040600"), &recs, opts);
    let bytes = std::fs::read(&good).unwrap();
    let bad = dir.path().join("bad");
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x20;
        std::fs::write(&bad, &b).unwrap();
        let res = SlotFile::open(&bad).and_then(|f| f.verify());
        let err = res.expect_err(&format!("flip at byte {i} of {} went unnoticed", bytes.len()));
        assert!(err.offset.is_some(), "flip at {i}: {err}");
        assert!(err.to_string().contains("bad"), "{err}");
    }
}

#[test]
fn every_truncation_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        &dir.path().join("weir.202403040600"),
        &sample_records(200),
        WriterOptions::default(),
    );
    let bytes = std::fs::read(&good).unwrap();
    let bad = dir.path().join("cut");
    for len in 0..bytes.len() {
        std::fs::write(&bad, &bytes[..len]).unwrap();
        let err =
            SlotFile::open(&bad).and_then(|f| f.verify()).expect_err("truncated file accepted");
        assert!(err.to_string().starts_with(bad.to_str().unwrap()), "{err}");
    }
}

#[test]
fn wrong_magic_and_future_version_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        write(&dir.path().join("weir.202403040600"), &sample_records(20), WriterOptions::default());
    let mut bytes = std::fs::read(&good).unwrap();
    let p = dir.path().join("x");

    let mut b = bytes.clone();
    b[0..8].copy_from_slice(b"NFCAPD!!");
    std::fs::write(&p, &b).unwrap();
    let e = SlotFile::open(&p).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::BadMagic { .. }) && e.offset == Some(0), "{e}");

    // A future version with a valid header checksum.
    bytes[8..10].copy_from_slice(&7u16.to_le_bytes());
    let crc = crc32(&bytes[0..28]);
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    let e = SlotFile::open(&p).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::UnsupportedVersion { found: 7, .. }), "{e}");
    assert_eq!(e.offset, Some(8));
    assert!(e.to_string().contains("unsupported format version 7"), "{e}");
}

fn crc32(b: &[u8]) -> u32 {
    // Bitwise CRC-32 (zlib polynomial), independent of the implementation under test.
    let mut crc = 0xffff_ffffu32;
    for &x in b {
        crc ^= x as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn listing_finds_files_of_a_range_in_every_layout() {
    for layout in SubdirLayout::ALL {
        let dir = tempfile::tempdir().unwrap();
        // Write slots out of order across two days.
        let starts = [START + 86_400, START, START + 300, START + 3600];
        for s in starts {
            let path = slot_path(dir.path(), layout, s, 300);
            let mut w = SlotWriter::create(&path, meta(s), WriterOptions::default()).unwrap();
            w.push(&sample_records(1)[0]).unwrap();
            w.finish().unwrap();
        }
        let all = list_files(dir.path(), TimeRange::ALL).unwrap();
        let got: Vec<i64> = all.iter().map(|e| e.name.start_s).collect();
        assert_eq!(got, vec![START, START + 300, START + 3600, START + 86_400], "{layout:?}");
        // A range starting inside the first slot still includes it.
        let r = TimeRange { start_s: START + 100, end_s: START + 3600 };
        let got: Vec<i64> =
            list_files(dir.path(), r).unwrap().iter().map(|e| e.name.start_s).collect();
        assert_eq!(got, vec![START, START + 300], "{layout:?}");
    }
}

fn arb_record() -> impl Strategy<Value = FlowRecord> {
    (
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
        ),
        (
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(any::<u128>()),
            proptest::option::of(any::<u128>()),
        ),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u64..1 << 48),
        ),
        (
            proptest::option::of(any::<u8>()),
            proptest::option::of(0u32..1 << 24),
            proptest::option::of(any::<u64>()),
        ),
    )
        .prop_map(
            |(
                (first, last, received, sp, dp, proto, flags),
                (packets, bytes, sa, da),
                (sas, vlan, mac),
                (dir, mpls, flows),
            )| {
                FlowRecord {
                    first,
                    last,
                    received,
                    src_port: sp,
                    dst_port: dp,
                    proto,
                    tcp_flags: flags,
                    packets,
                    bytes,
                    src_addr: sa,
                    dst_addr: da,
                    src_as: sas,
                    src_vlan: vlan,
                    in_src_mac: mac,
                    direction: dir,
                    mpls3: mpls,
                    flows,
                    ..Default::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random batches survive write and read, whatever the block size.
    #[test]
    fn random_batches_round_trip(recs in prop::collection::vec(arb_record(), 0..400), block_rows in 1usize..150) {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriterOptions { block_rows, ..Default::default() };
        let path = write(&dir.path().join("weir.202403040600"), &recs, opts);
        prop_assert_eq!(read_back(&path), recs);
        prop_assert!(SlotFile::open(&path).unwrap().verify().is_ok());
    }
}

/// Every crash input the fuzzer ever found for slot files must give an
/// error, not a panic (tests/fuzz/regressions/store_open).
#[test]
fn fuzz_regressions_give_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz/regressions/store_open");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        if let Ok(f) = SlotFile::open(&p) {
            let _ = f.verify();
        }
    }
}
