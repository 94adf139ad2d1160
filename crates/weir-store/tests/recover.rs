//! Crash recovery of unfinished slot files: torn tails, damaged blocks,
//! name collisions, interrupted publishing, and finding the files.

use std::fs;
use std::path::{Path, PathBuf};

use weir_record::{BatchBuilder, FlowRecord, SlotTotals, ip_to_u128};
use weir_store::{
    BlockIndexEntry, ChunkReader, Compression, Creator, ErrorKind, OnExists, RecoverOptions,
    SlotFile, SlotMeta, SlotWriter, SubdirLayout, WriterOptions, find_unfinished,
    parse_temp_file_name, recover, slot_path,
};

const START: i64 = 1_709_532_000; // 2024-03-04 06:00:00 UTC
const FINAL: &str = "weir.202403040600";
const TMP: &str = ".weir.202403040600.4242.0.tmp";

fn meta(start: i64) -> SlotMeta {
    SlotMeta {
        slot_start_s: start,
        slot_len_s: 300,
        ident: "router-1".into(),
        creator: Creator::Gen,
    }
}

fn opts() -> RecoverOptions {
    RecoverOptions {
        ident_if_unknown: "recovered-ident".into(),
        creator: Creator::Collect,
        ..Default::default()
    }
}

fn records(n: usize) -> Vec<FlowRecord> {
    (0..n as u64)
        .map(|i| {
            let t = START as u64 * 1000 + i * 23;
            let mut r = FlowRecord {
                first: t - (i % 4000),
                last: t,
                received: t + 5,
                src_port: (i * 7919 % 65536) as u16,
                dst_port: [443, 80, 53, 0x0800][i as usize % 4],
                proto: [6, 17, 1, 47, 58][i as usize % 5],
                tcp_flags: (i % 64) as u8,
                packets: 1 + i * i % 10_000,
                bytes: 40 + i * 977,
                ..Default::default()
            };
            r.src_addr = Some(ip_to_u128(format!("10.0.{}.{}", i % 7, i % 251).parse().unwrap()));
            r.dst_addr = Some(ip_to_u128("192.0.2.1".parse().unwrap()) + u128::from(i % 3));
            if i % 5 == 0 {
                r.flows = Some(1 + i % 9);
            }
            if i % 3 == 0 {
                r.src_as = Some(64_512 + (i % 4) as u32);
            }
            r
        })
        .collect()
}

fn write_finished(path: &Path, recs: &[FlowRecord], block_rows: usize) -> PathBuf {
    let opts = WriterOptions { block_rows, ..Default::default() };
    let mut w = SlotWriter::create(path, meta(START), opts).unwrap();
    for r in recs {
        w.push(r).unwrap();
    }
    w.finish().unwrap()
}

fn totals_of(recs: &[FlowRecord]) -> SlotTotals {
    let mut t = SlotTotals::default();
    if !recs.is_empty() {
        let mut b = BatchBuilder::default();
        recs.iter().for_each(|r| b.push(r));
        t.add_batch(&b.finish());
    }
    t
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

/// A finished file, its bytes, its block index and where its footer starts.
struct Original {
    recs: Vec<FlowRecord>,
    bytes: Vec<u8>,
    blocks: Vec<BlockIndexEntry>,
    footer_off: u64,
}

fn original(n: usize, block_rows: usize) -> Original {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(n);
    let path = write_finished(&dir.path().join(FINAL), &recs, block_rows);
    let f = SlotFile::open(&path).unwrap();
    let blocks = f.blocks().to_vec();
    let footer_off = f.len() - f.footer_len();
    Original { recs, bytes: fs::read(&path).unwrap(), blocks, footer_off }
}

impl Original {
    /// Blocks that lie completely within the first `len` bytes.
    fn complete_within(&self, len: u64) -> usize {
        self.blocks.iter().take_while(|b| b.offset + b.length <= len).count()
    }

    fn rows_of(&self, blocks: usize) -> usize {
        self.blocks[..blocks].iter().map(|b| b.rows as usize).sum()
    }

    /// Recovers `bytes` written as a temporary file in the empty `dir` and
    /// checks the result against the first `expect_blocks` blocks.
    fn recover_and_check(&self, dir: &Path, bytes: &[u8], expect_blocks: usize, what: &str) {
        let tmp = dir.join(TMP);
        fs::write(&tmp, bytes).unwrap();
        let rep = recover(&tmp, opts()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(!tmp.exists(), "{what}: temporary file left behind");
        let rows = self.rows_of(expect_blocks);
        assert_eq!(rep.blocks_kept, expect_blocks as u64, "{what}: {rep:?}");
        assert_eq!(rep.rows_kept, rows as u64, "{what}");
        assert!(!rep.was_finalized, "{what}");
        let kept_end = self.blocks[..expect_blocks].last().map_or(32, |b| b.offset + b.length);
        let data_end = (bytes.len() as u64).min(self.footer_off);
        assert_eq!(rep.stop_offset.is_some(), rep.stop_reason.is_some(), "{what}");
        if bytes.len() as u64 <= self.footer_off {
            assert_eq!(rep.bytes_dropped, data_end - kept_end, "{what}");
        }
        if let Some(off) = rep.stop_offset {
            assert_eq!(off, kept_end, "{what}");
            assert!(rep.stop_reason.as_ref().unwrap().contains(&format!("offset {off}")), "{what}");
        } else {
            assert_eq!(kept_end, data_end, "{what}: stopped silently before the end");
        }
        let names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        if expect_blocks == 0 {
            assert_eq!(rep.published, None, "{what}");
            assert!(names.is_empty(), "{what}: {names:?}");
            return;
        }
        let published = rep.published.clone().unwrap();
        assert_eq!(published, dir.join(FINAL), "{what}");
        assert_eq!(names, vec![FINAL.to_string()], "{what}");
        let f = SlotFile::open(&published).unwrap_or_else(|e| panic!("{what}: {e}"));
        f.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(f.blocks(), &self.blocks[..expect_blocks], "{what}");
        let info = f.info();
        assert_eq!((info.slot_start_s, info.slot_len_s), (START, 300), "{what}");
        assert_eq!(info.ident, "recovered-ident", "{what}");
        assert_eq!(info.creator, Creator::Collect, "{what}");
        assert!(info.exporters.is_empty(), "{what}");
        assert_eq!(info.totals, totals_of(&self.recs[..rows]), "{what}");
        assert_eq!(read_back(&published), self.recs[..rows], "{what}");
        // Kept blocks are byte-for-byte copies.
        let got = fs::read(&published).unwrap();
        assert_eq!(got[..kept_end as usize], self.bytes[..kept_end as usize], "{what}");
        fs::remove_file(&published).unwrap();
    }
}

/// Cut lengths: every length around each block boundary and around the
/// header, plus a stride through the rest.
fn cut_lengths(o: &Original) -> Vec<u64> {
    let mut v: Vec<u64> = (32..o.footer_off + 1).step_by(61).collect();
    for b in &o.blocks {
        let end = b.offset + b.length;
        v.extend(end.saturating_sub(48)..=(end + 48).min(o.footer_off));
        // Inside the block header.
        v.extend(b.offset..b.offset + 40);
    }
    v.extend(32..120);
    v.push(o.footer_off);
    v.retain(|&l| (32..=o.footer_off).contains(&l));
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn torn_tails_keep_exactly_the_complete_blocks() {
    let o = original(2500, 100);
    assert_eq!(o.blocks.len(), 25);
    let dir = tempfile::tempdir().unwrap();
    let lens = cut_lengths(&o);
    assert!(lens.len() > 1500, "{}", lens.len());
    for len in lens {
        let expect = o.complete_within(len);
        o.recover_and_check(dir.path(), &o.bytes[..len as usize], expect, &format!("cut at {len}"));
    }
}

/// Every length of a small file, uncompressed and with zstd.
#[test]
fn every_cut_of_a_small_file() {
    for compression in [Compression::None, Compression::Zstd(3)] {
        let dir = tempfile::tempdir().unwrap();
        let recs = records(120);
        let opts = WriterOptions { block_rows: 40, compression, ..Default::default() };
        let mut w = SlotWriter::create(&dir.path().join(FINAL), meta(START), opts).unwrap();
        recs.iter().for_each(|r| w.push(r).unwrap());
        let path = w.finish().unwrap();
        let f = SlotFile::open(&path).unwrap();
        let o = Original {
            recs,
            bytes: fs::read(&path).unwrap(),
            blocks: f.blocks().to_vec(),
            footer_off: f.len() - f.footer_len(),
        };
        drop(f);
        fs::remove_file(&path).unwrap();
        for len in 32..=o.footer_off {
            let expect = o.complete_within(len);
            let what = format!("{compression:?} cut at {len}");
            o.recover_and_check(dir.path(), &o.bytes[..len as usize], expect, &what);
        }
    }
}

/// A crash while the footer was being written: every block is kept and the
/// footer rebuilt.
#[test]
fn partial_footer_keeps_every_block() {
    let o = original(1000, 100);
    let dir = tempfile::tempdir().unwrap();
    let n = o.blocks.len();
    for len in (o.footer_off + 1..o.bytes.len() as u64).step_by(7) {
        o.recover_and_check(dir.path(), &o.bytes[..len as usize], n, &format!("cut at {len}"));
    }
}

#[test]
fn header_shorter_than_32_bytes_or_damaged_is_an_error_and_left_alone() {
    let o = original(300, 100);
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(TMP);
    for len in 0..32 {
        fs::write(&tmp, &o.bytes[..len]).unwrap();
        let e = recover(&tmp, opts()).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated(_)), "{e}");
        assert_eq!(e.path, tmp);
        assert_eq!(fs::read(&tmp).unwrap(), &o.bytes[..len]);
    }
    for i in 0..32 {
        let mut b = o.bytes[..o.footer_off as usize].to_vec();
        b[i] ^= 0x04;
        fs::write(&tmp, &b).unwrap();
        let e = recover(&tmp, opts()).expect_err(&format!("flip at {i} accepted"));
        assert!(e.offset.is_some() && e.to_string().contains(TMP), "{e}");
        assert_eq!(fs::read(&tmp).unwrap(), b, "flip at {i}: file changed");
    }
    // Nothing else appeared.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn flipped_byte_in_a_middle_block_keeps_the_blocks_before_it() {
    let o = original(1000, 100);
    let dir = tempfile::tempdir().unwrap();
    let data = &o.bytes[..o.footer_off as usize];
    // A flip in a chunk of block 4.
    let b4 = o.blocks[4];
    let at = (b4.offset + b4.length - 10) as usize;
    let mut bytes = data.to_vec();
    bytes[at] ^= 0xff;
    let tmp = dir.path().join(TMP);
    fs::write(&tmp, &bytes).unwrap();
    let rep = recover(&tmp, opts()).unwrap();
    assert_eq!(rep.blocks_kept, 4);
    assert_eq!(rep.stop_offset, Some(b4.offset));
    let reason = rep.stop_reason.clone().unwrap();
    assert!(reason.contains(&format!("block 4 at offset {}", b4.offset)), "{reason}");
    assert!(reason.contains("checksum"), "{reason}");
    assert_eq!(rep.bytes_dropped, o.footer_off - b4.offset);
    fs::remove_file(rep.published.unwrap()).unwrap();

    // Every single flipped byte of the data area (sampled densely) costs
    // exactly the block it lies in and those after it.
    for at in (32..o.footer_off as usize).step_by(5) {
        let mut bytes = data.to_vec();
        bytes[at] ^= 0x20;
        let k = o.blocks.iter().position(|b| b.offset + b.length > at as u64).unwrap();
        o.recover_and_check(dir.path(), &bytes, k, &format!("flip at {at}"));
    }
}

#[test]
fn dropped_writer_is_found_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(2550);
    let final_path = slot_path(dir.path(), SubdirLayout::YearMonthDayHour, START, 300);
    let opts_w = WriterOptions { block_rows: 100, ..Default::default() };
    let mut w = SlotWriter::create(&final_path, meta(START), opts_w).unwrap();
    recs.iter().for_each(|r| w.push(r).unwrap());
    let tmp = w.temp_path().to_path_buf();
    drop(w); // as a crash after the last block reached the disk
    assert_eq!(find_unfinished(dir.path()).unwrap(), vec![tmp.clone()]);
    let name = parse_temp_file_name(tmp.file_name().unwrap().to_str().unwrap()).unwrap();
    assert_eq!((name.final_name.as_str(), name.pid), (FINAL, std::process::id()));

    let rep = recover(&tmp, opts()).unwrap();
    assert_eq!((rep.blocks_kept, rep.rows_kept, rep.bytes_dropped), (25, 2500, 0));
    assert_eq!(rep.stop_reason, None);
    assert_eq!(rep.published.as_deref(), Some(final_path.as_path()));
    let f = SlotFile::open(&final_path).unwrap();
    f.verify().unwrap();
    assert_eq!(f.info().totals, totals_of(&recs[..2500]));
    assert!(f.info().software.contains("recovered"), "{}", f.info().software);
    assert_eq!(read_back(&final_path), recs[..2500]);
    assert!(find_unfinished(dir.path()).unwrap().is_empty());
}

#[test]
fn restart_in_the_same_slot_gets_the_next_name() {
    let dir = tempfile::tempdir().unwrap();
    let final_path = dir.path().join(FINAL);
    // The first run of the collector published the slot ...
    let first = write_finished(&final_path, &records(50), 100);
    let before = fs::read(&first).unwrap();
    // ... the restarted one crashed within the same slot.
    let recs = records(700);
    let mut w = SlotWriter::create(
        &final_path,
        meta(START),
        WriterOptions { block_rows: 100, ..Default::default() },
    )
    .unwrap();
    recs.iter().for_each(|r| w.push(r).unwrap());
    let tmp = w.temp_path().to_path_buf();
    drop(w);

    // Under OnExists::Fail it is an error and nothing changes.
    let fail = RecoverOptions { on_exists: OnExists::Fail, ..opts() };
    let tmp_bytes = fs::read(&tmp).unwrap();
    let e = recover(&tmp, fail).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Exists(_)), "{e}");
    assert_eq!(fs::read(&tmp).unwrap(), tmp_bytes);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);

    let rep = recover(&tmp, opts()).unwrap();
    let second = dir.path().join(format!("{FINAL}.1"));
    assert_eq!(rep.published.as_deref(), Some(second.as_path()));
    assert_eq!(fs::read(&first).unwrap(), before, "existing file changed");
    assert_eq!(read_back(&second), recs);
    SlotFile::open(&second).unwrap().verify().unwrap();
    assert!(!tmp.exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
}

/// The writer (or a recovery) died after the footer was written: the
/// complete file is published with its own footer, or, if it was already
/// linked to its final name, just removed.
#[test]
fn complete_temporary_files_are_published_once() {
    let o = original(500, 100);
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(TMP);

    // Not yet linked: published as it is, ident and exporters included.
    fs::write(&tmp, &o.bytes).unwrap();
    let rep = recover(&tmp, opts()).unwrap();
    assert!(rep.was_finalized);
    assert_eq!((rep.blocks_kept, rep.rows_kept), (5, 500));
    let published = rep.published.unwrap();
    assert_eq!(fs::read(&published).unwrap(), o.bytes);
    assert_eq!(SlotFile::open(&published).unwrap().info().ident, "router-1");
    assert!(!tmp.exists());

    // Linked but not unlinked: nothing new is published.
    fs::hard_link(&published, &tmp).unwrap();
    let rep = recover(&tmp, opts()).unwrap();
    assert!(rep.was_finalized);
    assert_eq!(rep.published.as_ref(), Some(&published));
    assert!(!tmp.exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    // Complete but damaged: rebuilt, keeping the footer's ident.
    let mut bad = o.bytes.clone();
    let b2 = o.blocks[2];
    bad[(b2.offset + b2.length - 3) as usize] ^= 1;
    fs::write(&tmp, &bad).unwrap();
    let rep = recover(&tmp, opts()).unwrap();
    assert!(!rep.was_finalized);
    assert_eq!(rep.blocks_kept, 2);
    assert_eq!(rep.stop_offset, Some(b2.offset));
    let p = rep.published.unwrap();
    assert_eq!(p, dir.path().join(format!("{FINAL}.1")));
    let f = SlotFile::open(&p).unwrap();
    f.verify().unwrap();
    assert_eq!(f.info().ident, "router-1");
    assert!(f.info().exporters.is_empty());
    assert_eq!(f.info().totals, totals_of(&o.recs[..200]));
}

#[test]
fn a_leftover_recovering_file_does_not_matter() {
    let o = original(300, 100);
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(TMP);
    fs::write(&tmp, &o.bytes[..o.footer_off as usize - 5]).unwrap();
    fs::write(dir.path().join(format!("{TMP}.recovering")), b"garbage").unwrap();
    assert_eq!(find_unfinished(dir.path()).unwrap(), vec![tmp.clone()]);
    let rep = recover(&tmp, opts()).unwrap();
    assert_eq!(rep.blocks_kept, 2);
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from(FINAL)]);
}

#[test]
fn find_unfinished_searches_every_depth_and_ignores_finished_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut expect = Vec::new();
    for (i, layout) in SubdirLayout::ALL.into_iter().enumerate() {
        let start = START + 300 * i as i64;
        // A finished file and a crashed one in every layout.
        let p = slot_path(dir.path(), layout, start, 300);
        let mut w = SlotWriter::create(&p, meta(start), WriterOptions::default()).unwrap();
        w.push(&records(1)[0]).unwrap();
        w.finish().unwrap();
        let w = SlotWriter::create(&p, meta(start), WriterOptions::default()).unwrap();
        expect.push(w.temp_path().to_path_buf());
        drop(w);
    }
    // Not unfinished slot files.
    fs::write(dir.path().join(".other.tmp"), b"x").unwrap();
    fs::write(dir.path().join("weir.202403040600.tmp.txt"), b"x").unwrap();
    fs::write(dir.path().join(".weir.202403040600.1.2.tmp.recovering"), b"x").unwrap();
    fs::create_dir_all(dir.path().join(".hidden")).unwrap();
    fs::write(dir.path().join(".hidden/.weir.202403040600.1.2.tmp"), b"x").unwrap();
    expect.sort();
    let found = find_unfinished(dir.path()).unwrap();
    assert_eq!(found, expect);
    assert_eq!(found.len(), 9);
    // A single file may be given.
    assert_eq!(find_unfinished(&expect[0]).unwrap(), vec![expect[0].clone()]);
    assert!(find_unfinished(&dir.path().join("nope")).is_err());

    // Recovering them all leaves none behind; each had one header only.
    for t in &found {
        let rep = recover(t, opts()).unwrap();
        assert_eq!((rep.published, rep.rows_kept), (None, 0));
    }
    assert!(find_unfinished(dir.path()).unwrap().is_empty());
}

#[test]
fn temp_file_names_parse() {
    let n = parse_temp_file_name(".weir.202403040600.3.1234.7.tmp").unwrap();
    assert_eq!((n.final_name.as_str(), n.pid, n.n), ("weir.202403040600.3", 1234, 7));
    let n = parse_temp_file_name(".weir.20240304060030.99.0.tmp").unwrap();
    assert_eq!(n.final_name, "weir.20240304060030");
    for bad in [
        "weir.202403040600.1.0.tmp",
        ".weir.202403040600.x.0.tmp",
        ".weir.202403040600.1.0",
        ".weir.2024.1.0.tmp",
        ".weir.202403040600..0.tmp",
    ] {
        assert_eq!(parse_temp_file_name(bad), None, "{bad}");
    }
}

#[test]
fn a_released_block_reads_the_same_again() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(3000);
    let path = write_finished(&dir.path().join("weir.202403040600"), &recs, 1000);
    let f = SlotFile::open(&path).unwrap();
    let mut reader = ChunkReader::new();
    let before: Vec<_> = (0..f.blocks().len())
        .map(|i| f.block(i).unwrap().read_all(&mut reader).unwrap().records())
        .collect();
    for i in 0..f.blocks().len() + 2 {
        f.release_block(i); // out-of-range indices are ignored
    }
    f.release_block(usize::MAX);
    let after: Vec<_> = (0..f.blocks().len())
        .map(|i| f.block(i).unwrap().read_all(&mut reader).unwrap().records())
        .collect();
    assert_eq!(before, after);
    assert_eq!(after.concat(), recs);
    // Ranges of blocks, also empty and out-of-range ones.
    let n = f.blocks().len();
    #[allow(clippy::reversed_empty_ranges)]
    for r in [0..n, 1..n, 0..n + 5, 2..1, n..n + 3, 0..usize::MAX] {
        f.release_blocks(r);
        let again: Vec<_> =
            (0..n).map(|i| f.block(i).unwrap().read_all(&mut reader).unwrap().records()).collect();
        assert_eq!(again, before);
    }
}
