//! Slot names, nfcapd's `-S` sub-directory layouts, and listing the files
//! of a time range across a hierarchy.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{ErrorKind, Result, StoreError};
use crate::format::{HEADER_LEN, MAGIC};

/// Default slot length in seconds (nfcapd's `-t` default).
pub const DEFAULT_SLOT_SECS: u32 = 300;

/// Prefix of every slot file name.
pub const FILE_PREFIX: &str = "weir.";

/// nfcapd's nine `-S` directory layouts, computed from the slot start (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubdirLayout {
    /// 0: all files in one directory.
    Flat,
    /// 1: `%Y/%m/%d`.
    #[default]
    YearMonthDay,
    /// 2: `%Y/%m/%d/%H`.
    YearMonthDayHour,
    /// 3: `%Y/%W/%u`.
    YearWeekDay,
    /// 4: `%Y/%W/%u/%H`.
    YearWeekDayHour,
    /// 5: `%Y/%j`.
    YearDayOfYear,
    /// 6: `%Y/%j/%H`.
    YearDayOfYearHour,
    /// 7: `%Y-%m-%d`.
    Date,
    /// 8: `%Y-%m-%d/%H`.
    DateHour,
}

impl SubdirLayout {
    /// Layouts in `-S` order.
    pub const ALL: [SubdirLayout; 9] = [
        SubdirLayout::Flat,
        SubdirLayout::YearMonthDay,
        SubdirLayout::YearMonthDayHour,
        SubdirLayout::YearWeekDay,
        SubdirLayout::YearWeekDayHour,
        SubdirLayout::YearDayOfYear,
        SubdirLayout::YearDayOfYearHour,
        SubdirLayout::Date,
        SubdirLayout::DateHour,
    ];

    /// The layout of nfcapd's `-S n`.
    pub fn from_index(n: u8) -> Option<SubdirLayout> {
        Self::ALL.get(n as usize).copied()
    }

    /// The strftime pattern (empty for flat).
    pub fn pattern(self) -> &'static str {
        match self {
            SubdirLayout::Flat => "",
            SubdirLayout::YearMonthDay => "%Y/%m/%d",
            SubdirLayout::YearMonthDayHour => "%Y/%m/%d/%H",
            SubdirLayout::YearWeekDay => "%Y/%W/%u",
            SubdirLayout::YearWeekDayHour => "%Y/%W/%u/%H",
            SubdirLayout::YearDayOfYear => "%Y/%j",
            SubdirLayout::YearDayOfYearHour => "%Y/%j/%H",
            SubdirLayout::Date => "%Y-%m-%d",
            SubdirLayout::DateHour => "%Y-%m-%d/%H",
        }
    }

    /// The sub-directory of a slot starting at `start_s`.
    pub fn subdir(self, start_s: i64) -> PathBuf {
        match self {
            SubdirLayout::Flat => PathBuf::new(),
            _ => PathBuf::from(utc(start_s).format(self.pattern()).to_string()),
        }
    }
}

fn utc(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap_or_default()
}

/// Start of the slot containing `t_s` (wall-clock aligned).
pub fn slot_start(t_s: i64, slot_len_s: u32) -> i64 {
    let len = i64::from(slot_len_s.max(1));
    t_s - t_s.rem_euclid(len)
}

/// `weir.YYYYMMDDhhmm`, or with seconds when the slot length is not whole
/// minutes.
pub fn slot_file_name(start_s: i64, slot_len_s: u32) -> String {
    let fmt = if slot_len_s.is_multiple_of(60) && start_s % 60 == 0 {
        "%Y%m%d%H%M"
    } else {
        "%Y%m%d%H%M%S"
    };
    format!("{FILE_PREFIX}{}", utc(start_s).format(fmt))
}

/// Where the file of a slot lives under `root`.
pub fn slot_path(root: &Path, layout: SubdirLayout, start_s: i64, slot_len_s: u32) -> PathBuf {
    root.join(layout.subdir(start_s)).join(slot_file_name(start_s, slot_len_s))
}

/// `path` with a `.N` sequence suffix.
pub fn with_seq(path: &Path, seq: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{seq}"));
    PathBuf::from(s)
}

/// A parsed slot file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlotName {
    /// Slot start, seconds since the epoch.
    pub start_s: i64,
    /// 0 for the first file of the slot, N for `.N`.
    pub seq: u32,
}

/// Parses `weir.YYYYMMDDhhmm[ss][.N]`.
pub fn parse_slot_file_name(name: &str) -> Option<SlotName> {
    let rest = name.strip_prefix(FILE_PREFIX)?;
    let (stamp, seq) = match rest.split_once('.') {
        Some((s, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (s, n.parse().ok()?)
        }
        Some(_) => return None,
        None => (rest, 0),
    };
    if !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = match stamp.len() {
        12 => format!("{stamp}00"),
        14 => stamp.to_string(),
        _ => return None,
    };
    let t = chrono::NaiveDateTime::parse_from_str(&padded, "%Y%m%d%H%M%S").ok()?;
    Some(SlotName { start_s: t.and_utc().timestamp(), seq })
}

/// A half-open time range `[start_s, end_s)` in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start.
    pub start_s: i64,
    /// Exclusive end.
    pub end_s: i64,
}

impl TimeRange {
    /// Every time.
    pub const ALL: TimeRange = TimeRange { start_s: i64::MIN, end_s: i64::MAX };
}

/// A slot file found by [`list_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotEntry {
    /// Path of the file.
    pub path: PathBuf,
    /// Parsed name.
    pub name: SlotName,
}

/// Lists the slot files under `root` (any `-S` layout, any depth) whose slot
/// overlaps `range`, in time order (then sequence, then path). Files whose
/// name does not parse and names starting with `.` (files being written)
/// are ignored. `root` may also be a single file.
pub fn list_files(root: &Path, range: TimeRange) -> Result<Vec<SlotEntry>> {
    let mut out = Vec::new();
    let meta = fs::metadata(root).map_err(|e| StoreError::io(root, "stat", e))?;
    if meta.is_file() {
        let name = root.file_name().and_then(|n| n.to_str()).and_then(parse_slot_file_name);
        let name = name.unwrap_or(SlotName { start_s: 0, seq: 0 });
        out.push(SlotEntry { path: root.to_path_buf(), name });
        return Ok(out);
    }
    walk(root, &mut out)?;
    out.retain(|e| overlaps(e, range));
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.path.cmp(&b.path)));
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<SlotEntry>) -> Result<()> {
    let rd = fs::read_dir(dir).map_err(|e| StoreError::io(dir, "read directory", e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StoreError::io(dir, "read directory", e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = ent.path();
        let ft = fs::metadata(&path).map_err(|e| StoreError::io(&path, "stat", e))?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if let Some(n) = parse_slot_file_name(name) {
            out.push(SlotEntry { path, name: n });
        }
    }
    Ok(())
}

fn overlaps(e: &SlotEntry, r: TimeRange) -> bool {
    if e.name.start_s >= r.end_s {
        return false;
    }
    if e.name.start_s >= r.start_s {
        return true;
    }
    // Starts before the range: it overlaps if the slot reaches into it.
    // Unreadable headers count as overlapping so that opening them reports
    // the problem instead of hiding the file.
    let len = header_slot_len(&e.path).unwrap_or(u32::MAX);
    e.name.start_s.saturating_add(i64::from(len)) > r.start_s
}

fn header_slot_len(path: &Path) -> Option<u32> {
    use std::io::Read;
    let mut h = [0u8; HEADER_LEN];
    fs::File::open(path).ok()?.read_exact(&mut h).ok()?;
    (&h[0..8] == MAGIC).then(|| u32::from_le_bytes(h[12..16].try_into().expect("4 bytes")))
}

/// An error for a directory that holds no slot file.
pub fn no_files(root: &Path) -> StoreError {
    StoreError::file(root, ErrorKind::Invalid("no weir slot files found".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_709_532_000; // 2024-03-04 06:00:00 UTC, a Monday

    #[test]
    fn names_sort_and_parse() {
        assert_eq!(slot_file_name(T, 300), "weir.202403040600");
        assert_eq!(slot_file_name(T + 30, 30), "weir.20240304060030");
        assert_eq!(
            parse_slot_file_name("weir.202403040600"),
            Some(SlotName { start_s: T, seq: 0 })
        );
        assert_eq!(
            parse_slot_file_name("weir.202403040600.3"),
            Some(SlotName { start_s: T, seq: 3 })
        );
        assert_eq!(parse_slot_file_name("weir.20240304060030").unwrap().start_s, T + 30);
        for bad in [
            "weir.2024030406",
            "nfcapd.202403040600",
            "weir.202413040600",
            "weir.202403040600.",
            "weir.202403040600.x",
        ] {
            assert_eq!(parse_slot_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn all_nine_layouts() {
        let expect = [
            "",
            "2024/03/04",
            "2024/03/04/06",
            "2024/10/1",
            "2024/10/1/06",
            "2024/064",
            "2024/064/06",
            "2024-03-04",
            "2024-03-04/06",
        ];
        for (i, e) in expect.iter().enumerate() {
            let l = SubdirLayout::from_index(i as u8).unwrap();
            assert_eq!(l.subdir(T), PathBuf::from(e), "-S {i}");
        }
        assert_eq!(SubdirLayout::from_index(9), None);
    }

    #[test]
    fn slot_alignment() {
        assert_eq!(slot_start(T + 299, 300), T);
        assert_eq!(slot_start(T + 300, 300), T + 300);
        assert_eq!(slot_start(-1, 300), -300);
    }
}
