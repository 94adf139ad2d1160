//! Slot files as later builds and operators meet them: the frozen file of
//! every released format version, and real generated files corrupted in the
//! ways disks and people corrupt them.

use std::path::{Path, PathBuf};

use weir_gen::{Burst, GenConfig, Generator};
use weir_record::{FIELDS, FlowRecord};
use weir_store::{
    ChunkReader, Compression, Creator, KIND_DELTA, KIND_DICT, KIND_FOR, KIND_REL, SlotFile,
    SlotMeta, SlotWriter, WriterOptions,
};

use crate::weir;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel)
}

/// The flows of the frozen v1 file: 1 200 generated flows, a third of them
/// slammer, over one 5-minute slot.
fn frozen_flows() -> Vec<FlowRecord> {
    let start = 1_709_532_000_000; // 2024-03-04 06:00 UTC
    let cfg = GenConfig {
        seed: 7,
        start_ms: start,
        duration_ms: 300_000,
        rate: 2.7,
        ipv6_share: 0.2,
        slammer: Some(Burst { start_ms: start + 100_000, duration_ms: 100_000, rate: 4.0 }),
    };
    Generator::new(cfg).collect()
}

/// One line per record: every registry field, empty when absent.
fn to_csv(recs: &[FlowRecord]) -> String {
    let mut s = FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(",");
    s.push('\n');
    for r in recs {
        let row: Vec<String> = FIELDS
            .iter()
            .map(|f| r.get(f.field).map(|v| v.to_string()).unwrap_or_default())
            .collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    s
}

/// Writes the frozen file of the current format version into
/// `tests/data/store/vN/`. Every version's file holds the same flows, whose
/// CSV is kept once, beside the v1 file.
fn write_frozen(version: u16) {
    let recs = frozen_flows();
    let dir = data(&format!("store/v{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gen-seed7.weir");
    let _ = std::fs::remove_file(&path);
    let meta = SlotMeta {
        slot_start_s: 1_709_532_000,
        slot_len_s: 300,
        ident: format!("frozen-v{version}"),
        creator: Creator::Gen,
    };
    let opts =
        WriterOptions { compression: Compression::Zstd(3), block_rows: 256, ..Default::default() };
    let mut w = SlotWriter::create(&path, meta, opts).unwrap();
    for r in &recs {
        w.push(r).unwrap();
    }
    w.finish().unwrap();
    let csv = data("store/v1/gen-seed7.csv");
    if version == 1 {
        std::fs::write(csv, to_csv(&recs)).unwrap();
    } else {
        assert_eq!(std::fs::read_to_string(csv).unwrap(), to_csv(&recs), "the generator changed");
    }
}

/// Rewrites the frozen v1 file and its CSV. Run by hand, once, when format
/// version 1 was released (by a build writing version 1):
/// `cargo test --test e2e regenerate_frozen_v1 -- --ignored`. Never rerun
/// after that: the point of the file is that it does not change.
#[test]
#[ignore = "writes the frozen file; only for the release of a format version"]
fn regenerate_frozen_v1() {
    assert_eq!(weir_store::VERSION, 1, "this build writes another version");
    write_frozen(1);
}

/// The same for version 2 (packed dictionary indices).
#[test]
#[ignore = "writes the frozen file; only for the release of a format version"]
fn regenerate_frozen_v2() {
    assert_eq!(weir_store::VERSION, 2, "this build writes another version");
    write_frozen(2);
}

/// Every later build must read a frozen file exactly: every field of every
/// record equals the CSV written beside it from the generator (not from
/// the store), and every checksum holds. Returns the encodings (enc bytes
/// without the zstd bit) the file uses.
fn check_frozen(version: u16) -> Vec<u8> {
    let f = SlotFile::open(data(&format!("store/v{version}/gen-seed7.weir"))).unwrap();
    assert_eq!(f.version(), version);
    assert_eq!(f.info().ident, format!("frozen-v{version}"));
    assert_eq!(f.info().slot_start_s, 1_709_532_000);
    assert!(f.verify().unwrap() > 100);
    let mut reader = ChunkReader::new();
    let mut recs = Vec::new();
    let mut kinds = [false; 4];
    let (mut zstd, mut raw) = (false, false);
    let mut encs = Vec::new();
    for i in 0..f.blocks().len() {
        let b = f.block(i).unwrap();
        for e in b.entries() {
            kinds[(e.meta.enc & 0x0f) as usize] = true;
            let z = e.meta.enc & weir_store::FLAG_ZSTD != 0;
            zstd |= z;
            raw |= !z;
            encs.push(e.meta.enc & !weir_store::FLAG_ZSTD);
        }
        recs.extend(b.read_all(&mut reader).unwrap().records());
    }
    for kind in [KIND_FOR, KIND_DELTA, KIND_DICT, KIND_REL] {
        assert!(kinds[kind as usize], "the frozen file exercises encoding kind {kind}: {kinds:?}");
    }
    assert!(zstd && raw, "and both zstd and raw chunks");
    let expected = std::fs::read_to_string(data("store/v1/gen-seed7.csv")).unwrap();
    let got = to_csv(&recs);
    assert_eq!(got.lines().count(), expected.lines().count());
    for (n, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
        assert_eq!(g, e, "record {n} differs");
    }
    assert_eq!(f.info().totals.all.flows, recs.len() as u64);
    encs
}

#[test]
fn frozen_v1_file_reads_back_exactly() {
    let encs = check_frozen(1);
    assert!(
        encs.iter().all(|e| e & weir_store::FLAG_PACKED == 0),
        "version 1 has no packed indices"
    );
}

/// A collector of an older format version crashed and a newer build
/// recovers its temporary file: the result keeps the version the file was
/// begun with (header and trailer agree) and every kept row reads back.
#[test]
fn torn_version_1_temporary_file_recovers_as_version_1() {
    let src = SlotFile::open(data("store/v1/gen-seed7.weir")).unwrap();
    let b1 = src.blocks()[1];
    let kept_rows: usize = src.blocks()[..2].iter().map(|b| b.rows as usize).sum();
    let mut expected = Vec::new();
    let mut reader = ChunkReader::new();
    for i in 0..2 {
        expected.extend(src.block(i).unwrap().read_all(&mut reader).unwrap().records());
    }
    let bytes = std::fs::read(data("store/v1/gen-seed7.weir")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Two whole blocks and the start of the third, as a writer killed there leaves it.
    let tmp = dir.path().join(".weir.202403040600.4242.0.tmp");
    std::fs::write(&tmp, &bytes[..(b1.offset + b1.length + 10) as usize]).unwrap();
    let rep = weir_store::recover(&tmp, weir_store::RecoverOptions::default()).unwrap();
    assert_eq!((rep.blocks_kept, rep.rows_kept), (2, kept_rows as u64), "{rep:?}");
    let f = SlotFile::open(rep.published.as_ref().unwrap()).unwrap();
    assert_eq!(f.version(), 1);
    f.verify().unwrap();
    let mut got = Vec::new();
    for i in 0..f.blocks().len() {
        got.extend(f.block(i).unwrap().read_all(&mut reader).unwrap().records());
    }
    assert_eq!(got, expected);
}

#[test]
fn frozen_v2_file_reads_back_exactly() {
    let encs = check_frozen(2);
    assert!(
        encs.contains(&(KIND_DICT | weir_store::FLAG_PACKED)),
        "the v2 file exercises packed dictionary indices"
    );
}

/// Generates four slots under a fresh directory and returns their files.
fn four_slots(dir: &Path) -> Vec<PathBuf> {
    let (code, out) = weir(&[
        "gen",
        "-w",
        dir.to_str().unwrap(),
        "--start",
        "2024-03-04T06:00",
        "--duration",
        "20m",
        "--rate",
        "50/s",
    ]);
    assert_eq!(code, 0, "{out}");
    let files: Vec<PathBuf> = weir_store::list_files(dir, weir_store::TimeRange::ALL)
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(files.len(), 4);
    files
}

fn inspect_verify(dir: &Path) -> (u8, String) {
    weir(&["inspect", "--verify", dir.to_str().unwrap()])
}

/// A flipped byte inside a column chunk of one file: `inspect --verify`
/// names the file and the offset, exits 1, and still reports the other three.
#[test]
fn flipped_byte_in_a_block_is_named_and_the_rest_still_inspected() {
    let dir = tempfile::tempdir().unwrap();
    let files = four_slots(dir.path());
    let victim = &files[1];
    let chunk_offset = {
        let f = SlotFile::open(victim).unwrap();
        let block = f.block(0).unwrap();
        block.entries().iter().find(|e| e.stored_len > 100).unwrap().chunk_offset
    };
    let at = chunk_offset + 50;
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[at as usize] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();

    let (code, out) = inspect_verify(dir.path());
    assert_eq!(code, 1, "{out}");
    let bad_line = out.lines().find(|l| l.starts_with("BAD ")).expect("a BAD line");
    assert!(bad_line.contains(victim.to_str().unwrap()), "{bad_line}");
    assert!(bad_line.contains(&format!("offset {chunk_offset}")), "{bad_line}");
    assert!(bad_line.contains("checksum mismatch"), "{bad_line}");
    assert!(out.contains("Files      : 3 "), "the other files are still summed: {out}");
    assert!(out.contains("Verified") && out.contains("in 3 files: 1 bad"), "{out}");
    // Without --verify the damaged chunk is not read, so the file opens fine.
    let (code, _) = weir(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
}

#[test]
fn truncated_file_is_named_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let files = four_slots(dir.path());
    let bytes = std::fs::read(&files[2]).unwrap();
    std::fs::write(&files[2], &bytes[..bytes.len() * 2 / 3]).unwrap();
    let (code, out) = inspect_verify(dir.path());
    assert_eq!(code, 1, "{out}");
    let bad = out.lines().find(|l| l.starts_with("BAD ")).unwrap();
    assert!(
        bad.contains(files[2].to_str().unwrap())
            && bad.contains("offset ")
            && bad.contains("truncated"),
        "{bad}"
    );
    assert!(out.contains("Files      : 3 "), "{out}");
}

#[test]
fn wrong_magic_and_future_version_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let files = four_slots(dir.path());
    let mut b = std::fs::read(&files[0]).unwrap();
    b[0..8].copy_from_slice(b"nfcapd\0\0");
    std::fs::write(&files[0], &b).unwrap();
    // A future version in header and trailer, header CRC fixed up.
    let future = weir_store::VERSION + 1;
    let mut b = std::fs::read(&files[3]).unwrap();
    b[8..10].copy_from_slice(&future.to_le_bytes());
    let crc = crc32(&b[0..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    let n = b.len();
    b[n - 16..n - 14].copy_from_slice(&future.to_le_bytes());
    std::fs::write(&files[3], &b).unwrap();

    let (code, out) = weir(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let bad: Vec<&str> = out.lines().filter(|l| l.starts_with("BAD ")).collect();
    assert_eq!(bad.len(), 2, "{out}");
    assert!(
        bad[0].contains(files[0].to_str().unwrap()) && bad[0].contains("offset 0: bad magic"),
        "{}",
        bad[0]
    );
    assert!(
        bad[1].contains(files[3].to_str().unwrap())
            && bad[1].contains(&format!(
                "offset 8: unsupported format version {future} (this build reads versions 1..={})",
                weir_store::VERSION
            )),
        "{}",
        bad[1]
    );
    assert!(out.contains("Files      : 2 "), "{out}");
}

#[test]
fn a_directory_without_slot_files_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let (code, out) = weir(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("no weir slot files found"), "{out}");
}

fn crc32(b: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &x in b {
        crc ^= x as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
