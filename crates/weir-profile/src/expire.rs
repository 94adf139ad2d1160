//! Expiry (nfexpire): delete the oldest slot files of a tree when it is
//! older or larger than its limits, down to a low watermark.
//!
//! Safe while collectors and queries run: only published slot files
//! (`weir.YYYYMMDDhhmm[.N]`) and the sampled-header captures beside them
//! (`….pcap`, counted and deleted with their slot) are candidates, never the temporary file of
//! an open slot (`.weir.*.tmp`) nor anything hidden, symbolic links are
//! not followed, files are deleted whole (a query holding one open keeps
//! reading its mapping), and only empty directories below the root are
//! removed. A bookkeeping file (`<root>/.weir-expire`) remembers each
//! directory's modification time and contents, so a run re-reads only the
//! root and the directories that changed since the last one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use weir_store::parse_slot_file_name;

use crate::error::{ProfileError, Result};
use crate::trend::write_atomic;

/// Name of the bookkeeping file in the root.
pub const BOOKKEEPING: &str = ".weir-expire";
/// Default low watermark, percent of the limit.
pub const DEFAULT_WATERMARK: u8 = 95;

/// Parses an age: `30d`, `12w`, `240h`/`240H`, `90m`/`90M` (minutes),
/// `3600s`, `1.5d`, `1y` (365 days); a bare number is hours (nfexpire).
pub fn parse_age_s(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 =
        num.parse().map_err(|_| format!("invalid age '{text}': expected e.g. 30d, 12w"))?;
    let mult = match unit.trim() {
        "s" => 1.0,
        "m" | "M" | "min" => 60.0,
        "" | "h" | "H" => 3600.0,
        "d" | "D" => 86_400.0,
        "w" | "W" => 604_800.0,
        "y" | "Y" => 365.0 * 86_400.0,
        u => {
            return Err(format!("invalid age '{text}': unknown unit '{u}' (use s, m, h, d, w, y)"));
        }
    };
    let s = n * mult;
    if !s.is_finite() || !(0.0..=1e13).contains(&s) {
        return Err(format!("invalid age '{text}': out of range"));
    }
    Ok(s.round() as u64)
}

/// Parses a size, 1024-based: `500G`, `1.5T`, `10M`, `512K`, `100MB`,
/// `4GiB`; a bare number is bytes.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 =
        num.parse().map_err(|_| format!("invalid size '{text}': expected e.g. 500G, 10M"))?;
    let u = unit.trim().to_ascii_uppercase();
    let u = u.strip_suffix("IB").or_else(|| u.strip_suffix('B')).unwrap_or(&u);
    let mult = match u {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0f64.powi(4),
        "P" => 1024.0f64.powi(5),
        _ => return Err(format!("invalid size '{text}': unknown unit '{unit}' (use K, M, G, T)")),
    };
    let b = n * mult;
    if !b.is_finite() || !(0.0..=1.8e19).contains(&b) {
        return Err(format!("invalid size '{text}': out of range"));
    }
    Ok(b.round() as u64)
}

/// The limits of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files whose slot started longer ago than this are expired.
    pub max_age_s: Option<u64>,
    /// The tree may hold at most this many bytes (allocated blocks).
    pub max_size: Option<u64>,
    /// When a limit is hit, delete down to this percentage of it.
    pub watermark: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_age_s: None, max_size: None, watermark: DEFAULT_WATERMARK }
    }
}

/// How to expire.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpireOptions {
    /// The limits.
    pub limits: Limits,
    /// The current time, seconds since the epoch.
    pub now_s: i64,
    /// Only report what would be deleted.
    pub dry_run: bool,
    /// Ignore the bookkeeping file and re-read every directory.
    pub rescan: bool,
}

/// One slot file of the tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileEntry {
    /// Slot start (seconds).
    pub start_s: i64,
    /// Sequence number (`.N`).
    pub seq: u32,
    /// Path.
    pub path: PathBuf,
    /// Allocated bytes.
    pub bytes: u64,
}

/// What a tree holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// Oldest slot start.
    pub first_s: Option<i64>,
    /// Newest slot start.
    pub last_s: Option<i64>,
    /// Slot files.
    pub files: u64,
    /// Allocated bytes.
    pub bytes: u64,
}

impl TreeStats {
    fn of(files: &[FileEntry]) -> TreeStats {
        TreeStats {
            first_s: files.first().map(|f| f.start_s),
            last_s: files.last().map(|f| f.start_s),
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.bytes).sum(),
        }
    }
}

/// What an expiry run did (or would do, dry).
#[derive(Debug, Default)]
pub struct ExpireReport {
    /// The tree before.
    pub before: TreeStats,
    /// The tree after (as it would be, dry).
    pub after: TreeStats,
    /// Files expired.
    pub expired: Vec<FileEntry>,
    /// Bytes expired.
    pub expired_bytes: u64,
    /// Empty directories removed.
    pub removed_dirs: u64,
    /// Which limits were over: `age`, `size`.
    pub over: Vec<&'static str>,
    /// Files that could not be deleted (the rest was).
    pub errors: Vec<ProfileError>,
    /// Directories re-read (the others came from the bookkeeping file).
    pub dirs_read: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DirEntry {
    mtime: (i64, i64),
    files: Vec<(String, i64, u32, u64)>,
    subdirs: Vec<String>,
}

type Cache = BTreeMap<String, DirEntry>;

fn mtime(m: &fs::Metadata) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    (m.mtime(), m.mtime_nsec())
}

fn allocated(m: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let b = m.blocks() * 512;
    if b == 0 { m.len() } else { b }
}

fn load_cache(root: &Path) -> Cache {
    let Ok(text) = fs::read_to_string(root.join(BOOKKEEPING)) else { return Cache::new() };
    let mut lines = text.lines();
    if lines.next() != Some("weir-expire 1") {
        return Cache::new();
    }
    let mut cache = Cache::new();
    let mut cur: Option<String> = None;
    for l in lines {
        let mut parts = l.splitn(5, ' ');
        match parts.next() {
            Some("D") => {
                let s: Option<i64> = parts.next().and_then(|x| x.parse().ok());
                let ns: Option<i64> = parts.next().and_then(|x| x.parse().ok());
                let rel = l.splitn(4, ' ').nth(3).unwrap_or("").to_string();
                let (Some(s), Some(ns)) = (s, ns) else { return Cache::new() };
                cache.insert(rel.clone(), DirEntry { mtime: (s, ns), ..Default::default() });
                cur = Some(rel);
            }
            Some("F") => {
                let start: Option<i64> = parts.next().and_then(|x| x.parse().ok());
                let seq: Option<u32> = parts.next().and_then(|x| x.parse().ok());
                let bytes: Option<u64> = parts.next().and_then(|x| x.parse().ok());
                let name = parts.next().unwrap_or("").to_string();
                let (Some(start), Some(seq), Some(bytes), Some(c)) = (start, seq, bytes, &cur)
                else {
                    return Cache::new();
                };
                if let Some(d) = cache.get_mut(c) {
                    d.files.push((name, start, seq, bytes));
                }
            }
            Some("S") => {
                let name = l.get(2..).unwrap_or("").to_string();
                if let Some(d) = cur.as_ref().and_then(|c| cache.get_mut(c)) {
                    d.subdirs.push(name);
                }
            }
            _ => return Cache::new(),
        }
    }
    cache
}

fn save_cache(root: &Path, cache: &Cache) -> Result<()> {
    let mut s = String::from("weir-expire 1\n");
    for (rel, d) in cache {
        s.push_str(&format!("D {} {} {rel}\n", d.mtime.0, d.mtime.1));
        for (name, start, seq, bytes) in &d.files {
            s.push_str(&format!("F {start} {seq} {bytes} {name}\n"));
        }
        for sd in &d.subdirs {
            s.push_str(&format!("S {sd}\n"));
        }
    }
    write_atomic(&root.join(BOOKKEEPING), s.as_bytes())
}

/// Lists the slot files of a tree (oldest first) using and refreshing the
/// bookkeeping file. Returns the files and the number of directories read.
pub fn scan(root: &Path, rescan: bool) -> Result<(Vec<FileEntry>, u64)> {
    let meta = fs::symlink_metadata(root).map_err(|e| ProfileError::io(root, "stat", e))?;
    if !meta.is_dir() {
        return Err(ProfileError::Invalid(format!("{}: not a directory", root.display())));
    }
    let old = if rescan { Cache::new() } else { load_cache(root) };
    let mut new = Cache::new();
    let mut files = Vec::new();
    let mut read = 0;
    walk(root, "", &old, &mut new, &mut files, &mut read)?;
    files.sort();
    if new != old {
        // Bookkeeping is an optimisation: a read-only tree still expires.
        let _ = save_cache(root, &new);
    }
    Ok((files, read))
}

/// A slot file, or the sampled-header capture the collector keeps beside
/// it (`weir.YYYYMMDDhhmm[.N].pcap`, `--sflow-pcap`): expired with its
/// slot.
fn slot_or_capture(name: &str) -> Option<weir_store::SlotName> {
    parse_slot_file_name(name).or_else(|| name.strip_suffix(".pcap").and_then(parse_slot_file_name))
}

fn ok_name(n: &str) -> bool {
    !n.starts_with('.') && !n.contains('\n')
}

fn walk(
    root: &Path,
    rel: &str,
    old: &Cache,
    new: &mut Cache,
    out: &mut Vec<FileEntry>,
    read: &mut u64,
) -> Result<()> {
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let meta = match fs::symlink_metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ProfileError::io(&dir, "stat", e)),
    };
    let mt = mtime(&meta);
    // The root is always read: the bookkeeping file itself lives there.
    let entry = match old.get(rel) {
        Some(d) if d.mtime == mt && !rel.is_empty() => d.clone(),
        _ => {
            *read += 1;
            let mut d = DirEntry { mtime: mt, ..Default::default() };
            let rd = fs::read_dir(&dir).map_err(|e| ProfileError::io(&dir, "read directory", e))?;
            for ent in rd.flatten() {
                let name = ent.file_name();
                let Some(name) = name.to_str() else { continue };
                if !ok_name(name) {
                    continue;
                }
                let Ok(ft) = ent.file_type() else { continue };
                if ft.is_dir() {
                    d.subdirs.push(name.to_string());
                } else if ft.is_file()
                    && let Some(n) = slot_or_capture(name)
                {
                    let Ok(m) = ent.metadata() else { continue };
                    d.files.push((name.to_string(), n.start_s, n.seq, allocated(&m)));
                }
            }
            d.files.sort();
            d.subdirs.sort();
            d
        }
    };
    for (name, start, seq, bytes) in &entry.files {
        out.push(FileEntry { start_s: *start, seq: *seq, path: dir.join(name), bytes: *bytes });
    }
    let subdirs = entry.subdirs.clone();
    new.insert(rel.to_string(), entry);
    for sd in subdirs {
        let r = if rel.is_empty() { sd } else { format!("{rel}/{sd}") };
        walk(root, &r, old, new, out, read)?;
    }
    Ok(())
}

/// Which files the limits expire (oldest first), and which limits are over.
pub fn plan(files: &[FileEntry], opts: &ExpireOptions) -> (usize, Vec<&'static str>) {
    let wm = f64::from(opts.limits.watermark.clamp(1, 100)) / 100.0;
    let mut over = Vec::new();
    let mut n = 0;
    if let Some(age) = opts.limits.max_age_s {
        let cutoff = opts.now_s.saturating_sub(age as i64);
        if files.first().is_some_and(|f| f.start_s < cutoff) {
            over.push("age");
            let keep_from = opts.now_s.saturating_sub((age as f64 * wm) as i64);
            n = n.max(files.iter().take_while(|f| f.start_s < keep_from).count());
        }
    }
    if let Some(max) = opts.limits.max_size {
        let total: u64 = files.iter().map(|f| f.bytes).sum();
        if total > max {
            over.push("size");
            let target = (max as f64 * wm) as u64;
            let mut left = total;
            let mut k = 0;
            while k < files.len() && left > target {
                left -= files[k].bytes;
                k += 1;
            }
            n = n.max(k);
        }
    }
    (n, over)
}

/// Expires a tree. See the module docs.
pub fn expire(root: &Path, opts: &ExpireOptions) -> Result<ExpireReport> {
    let (files, dirs_read) = scan(root, opts.rescan)?;
    let (n, over) = plan(&files, opts);
    let mut report =
        ExpireReport { before: TreeStats::of(&files), over, dirs_read, ..Default::default() };
    let mut dirs = std::collections::BTreeSet::new();
    for f in &files[..n] {
        if !f.path.starts_with(root) {
            continue;
        }
        if !opts.dry_run {
            match fs::remove_file(&f.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    report.errors.push(ProfileError::io(&f.path, "remove", e));
                    continue;
                }
            }
            if let Some(d) = f.path.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
        report.expired_bytes += f.bytes;
        report.expired.push(f.clone());
    }
    let gone: std::collections::BTreeSet<&PathBuf> =
        report.expired.iter().map(|f| &f.path).collect();
    let left: Vec<FileEntry> = files.iter().filter(|f| !gone.contains(&f.path)).cloned().collect();
    report.after = TreeStats::of(&left);
    // Remove emptied directories, deepest first, never the root.
    let mut dirs: Vec<PathBuf> = dirs.into_iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let mut cur = d;
        while cur != root && cur.starts_with(root) {
            if fs::remove_dir(&cur).is_err() {
                break;
            }
            report.removed_dirs += 1;
            match cur.parent() {
                Some(p) => cur = p.to_path_buf(),
                None => break,
            }
        }
    }
    if !opts.dry_run && !report.expired.is_empty() {
        // Refresh the bookkeeping for the directories just changed.
        let _ = scan(root, false);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_accept_and_reject() {
        for (t, s) in [("30d", 2_592_000), ("12w", 7_257_600), ("240H", 864_000), ("2", 7200)] {
            assert_eq!(parse_age_s(t).unwrap(), s, "{t}");
        }
        for (t, b) in [("500G", 500 << 30), ("10M", 10_485_760), ("1.5K", 1536), ("4GiB", 4 << 30)]
        {
            assert_eq!(parse_size(t).unwrap(), b, "{t}");
        }
        for bad in ["", "x", "3q", "-1d"] {
            assert!(parse_age_s(bad).is_err() && parse_size(bad).is_err(), "{bad}");
        }
    }

    fn entries(n: i64) -> Vec<FileEntry> {
        (0..n)
            .map(|i| FileEntry {
                start_s: i * 300,
                seq: 0,
                path: PathBuf::from(i.to_string()),
                bytes: 100,
            })
            .collect()
    }

    #[test]
    fn size_limit_deletes_down_to_the_watermark() {
        let files = entries(100); // 10_000 bytes
        let mut o = ExpireOptions { now_s: 30_000, ..Default::default() };
        o.limits.max_size = Some(9_000);
        o.limits.watermark = 90;
        // Down to 8_100 bytes: 19 files go.
        assert_eq!(plan(&files, &o), (19, vec!["size"]));
        o.limits.max_size = Some(10_000);
        assert_eq!(plan(&files, &o).0, 0, "at the limit: nothing");
    }

    #[test]
    fn age_limit_deletes_down_to_the_watermark() {
        let files = entries(100); // slots 0 .. 29_700
        let mut o = ExpireOptions { now_s: 30_000, ..Default::default() };
        o.limits.max_age_s = Some(20_000);
        o.limits.watermark = 100;
        // Older than 10_000: slots 0..=9_900 start before it: 34 files.
        assert_eq!(plan(&files, &o), (34, vec!["age"]));
        o.limits.watermark = 50; // keep only the last 10_000 s
        assert_eq!(plan(&files, &o).0, 67);
    }
}
