//! Expiry is safe next to a running collector and remembers the tree.

use std::fs;
use std::path::Path;

use weir_profile::expire::{ExpireOptions, Limits, expire, scan};

const DAY: i64 = 86_400;
const T0: i64 = 1_709_510_400; // 2024-03-04T00:00Z

/// `days` days of hourly files of 1000 bytes under root/YYYY/MM/DD.
fn tree(root: &Path, days: i64) {
    for h in 0..days * 24 {
        let t = T0 + h * 3600;
        let d = chrono::DateTime::from_timestamp(t, 0).unwrap();
        let dir = root.join(d.format("%Y/%m/%d").to_string());
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(d.format("weir.%Y%m%d%H%M").to_string()), vec![1u8; 1000]).unwrap();
    }
}

#[test]
fn the_bookkeeping_file_spares_rereading_unchanged_directories() {
    let tmp = tempfile::tempdir().unwrap();
    tree(tmp.path(), 3);
    let (files, read) = scan(tmp.path(), false).unwrap();
    assert_eq!((files.len(), read), (72, 6), "root, 2024, 03 and three days");
    let (again, read) = scan(tmp.path(), false).unwrap();
    assert_eq!((again, read), (files.clone(), 1), "only the root");
    // A new file: only its directory (and the root) is read again.
    let day = tmp.path().join("2024/03/06");
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(day.join("weir.202403070000"), b"x").unwrap();
    let (more, read) = scan(tmp.path(), false).unwrap();
    assert_eq!((more.len(), read), (73, 2));
    // A damaged bookkeeping file is ignored, not trusted.
    fs::write(tmp.path().join(".weir-expire"), "weir-expire 1\nD x\n").unwrap();
    assert_eq!(scan(tmp.path(), false).unwrap().0.len(), 73);
}

#[test]
fn expiry_deletes_only_whole_published_files_inside_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("flows");
    tree(&root, 3);
    let outside = tmp.path().join("outside");
    tree(&outside, 1);
    // A link to another tree and an open slot.
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    let open = root.join("2024/03/04/.weir.202403040000.1.0.tmp");
    fs::write(&open, b"open").unwrap();
    let opts = ExpireOptions {
        limits: Limits { max_age_s: Some(DAY as u64), max_size: None, watermark: 100 },
        now_s: T0 + 3 * DAY,
        ..Default::default()
    };
    let rep = expire(&root, &opts).unwrap();
    assert_eq!(rep.expired.len(), 48);
    assert!(rep.errors.is_empty());
    assert_eq!(scan(&outside, true).unwrap().0.len(), 24, "the linked tree is untouched");
    assert!(open.exists());
    assert!(!root.join("2024/03/05").exists(), "emptied day removed");
    assert!(root.join("2024/03/04").exists(), "the open slot keeps its directory");
    // Size: 24 files of 1000 bytes (allocated: a block each) down to 50 %.
    let per = rep.after.bytes / 24;
    let opts = ExpireOptions {
        limits: Limits { max_age_s: None, max_size: Some(per * 20), watermark: 50 },
        now_s: T0 + 3 * DAY,
        dry_run: true,
        rescan: false,
    };
    let dry = expire(&root, &opts).unwrap();
    assert_eq!((dry.expired.len(), dry.after.files), (14, 10));
    assert_eq!(scan(&root, false).unwrap().0.len(), 24, "dry run");
}

/// The sampled-header captures a collector keeps beside its slot files
/// (`weir collect --sflow-pcap`) count towards the size and leave with
/// their slot; the open slot's hidden capture is never touched.
#[test]
fn header_captures_are_counted_and_expired_with_their_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    tree(root, 2);
    let day1 = root.join("2024/03/04");
    let day2 = root.join("2024/03/05");
    fs::write(day1.join("weir.202403040100.pcap"), vec![2u8; 1000]).unwrap();
    fs::write(day2.join("weir.202403052300.pcap"), vec![2u8; 1000]).unwrap();
    let open = day2.join(".weir.202403052300.1.0.tmp.pcap");
    fs::write(&open, b"open").unwrap();
    fs::write(day2.join("notes.pcap"), b"not ours").unwrap();
    let (files, _) = scan(root, true).unwrap();
    assert_eq!(files.len(), 50);
    let opts = ExpireOptions {
        limits: Limits { max_age_s: Some(DAY as u64), max_size: None, watermark: 100 },
        now_s: T0 + 2 * DAY,
        ..Default::default()
    };
    let rep = expire(root, &opts).unwrap();
    assert_eq!(rep.expired.len(), 25, "a day of slots and the capture beside one");
    assert!(!day1.exists());
    assert!(open.exists() && day2.join("notes.pcap").exists());
    assert!(day2.join("weir.202403052300.pcap").exists());
}
