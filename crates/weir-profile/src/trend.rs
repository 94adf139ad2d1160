//! Trend series: per channel and slot, flows, packets and bytes in total
//! and per protocol class (NfSen's fifteen series), kept round-robin in
//! archives of decreasing resolution, in one fixed-size file per channel.
//!
//! ```text
//! header (32 bytes, little-endian)
//!   0  magic "WEIRTRND"            8
//!   8  version u16 = 1             2
//!  10  series u16 = 15             2
//!  12  archives u16                2
//!  14  reserved u16 = 0            2
//!  16  primary step s u32          4
//!  20  reserved u32 = 0            4
//!  24  last applied slot i64       8   (i64::MIN: none yet)
//! archive table: per archive  step s u32, rows u32
//! rows: per archive, `rows` rows of ROW_LEN bytes
//!   bucket start i64 (i64::MIN: empty), samples u32, reserved u32,
//!   15 × sum u64, 15 × max u64
//! trailer: crc32 of everything before it, u32
//! ```
//!
//! A slot is applied once: slots at or before the last applied one are
//! skipped, so builds and updates are idempotent per slot. Each bucket
//! keeps the sum of its slots (average = sum / covered time) and the
//! largest single slot (maximum). Files are replaced atomically
//! (write to a temporary name, fsync, rename).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use weir_record::{ProtoClass, SlotTotals};

use crate::error::{ProfileError, Result};

/// Number of series per channel.
pub const SERIES: usize = 15;

const MAGIC: &[u8; 8] = b"WEIRTRND";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 32;
/// Bytes per archive row.
pub const ROW_LEN: usize = 16 + SERIES * 16;
/// At most this many archives per file.
const MAX_ARCHIVES: usize = 16;
/// At most this many rows per archive.
const MAX_ROWS: u32 = 1 << 20;

/// Flows, packets or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Flows.
    Flows = 0,
    /// Packets.
    Packets = 1,
    /// Bytes (graphs show bits).
    Bytes = 2,
}

/// Series index of `metric` for a protocol class (`None` = all protocols):
/// `flows, flows_tcp, flows_udp, flows_icmp, flows_other, packets, …`.
pub fn series_index(metric: Metric, class: Option<ProtoClass>) -> usize {
    metric as usize * 5 + class.map_or(0, |c| c as usize + 1)
}

/// The fifteen values of one slot.
pub type Sample = [u64; SERIES];

/// A slot's totals as a sample.
pub fn sample_of(t: &SlotTotals) -> Sample {
    let mut s = [0; SERIES];
    for (m, get) in [
        (Metric::Flows, (|c: &weir_record::Counts| c.flows) as fn(&weir_record::Counts) -> u64),
        (Metric::Packets, |c| c.packets),
        (Metric::Bytes, |c| c.bytes),
    ] {
        s[series_index(m, None)] = get(&t.all);
        for c in ProtoClass::ALL {
            s[series_index(m, Some(c))] = get(t.class(c));
        }
    }
    s
}

/// One archive: its resolution and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSpec {
    /// Seconds per row (a multiple of the primary step).
    pub step_s: u32,
    /// Rows kept.
    pub rows: u32,
}

/// The default archives for a primary step: the step for 2 days, 30 min
/// for 2 weeks, 2 h for 2 months, 1 day for 5 years (NfSen's RRD layout).
pub fn default_archives(step_s: u32) -> Vec<ArchiveSpec> {
    let mut v = vec![ArchiveSpec { step_s, rows: 2 * 86_400 / step_s }];
    for (step, span) in [(1800, 14 * 86_400), (7200, 62 * 86_400), (86_400, 1827 * 86_400)] {
        if step > step_s && step % step_s == 0 {
            v.push(ArchiveSpec { step_s: step, rows: span / step });
        }
    }
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    t: i64,
    n: u32,
    sum: Sample,
    max: Sample,
}

const EMPTY: Row = Row { t: i64::MIN, n: 0, sum: [0; SERIES], max: [0; SERIES] };

#[derive(Debug, Clone, PartialEq, Eq)]
struct Archive {
    spec: ArchiveSpec,
    rows: Vec<Row>,
}

/// One consolidated point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Bucket start, seconds since the epoch.
    pub t: i64,
    /// Average per second over the slots recorded in the bucket.
    pub avg: f64,
    /// Largest single-slot value, per second.
    pub max: f64,
    /// Sum over the bucket.
    pub sum: u64,
}

/// The trend series of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trend {
    step_s: u32,
    last: Option<i64>,
    archives: Vec<Archive>,
}

impl Trend {
    /// Empty series with these archives (the first one's step is the
    /// primary step).
    pub fn new(step_s: u32, specs: &[ArchiveSpec]) -> Trend {
        let archives = specs
            .iter()
            .map(|&spec| Archive { spec, rows: vec![EMPTY; spec.rows as usize] })
            .collect();
        Trend { step_s: step_s.max(1), last: None, archives }
    }

    /// Primary step (the slot length).
    pub fn step_s(&self) -> u32 {
        self.step_s
    }

    /// Start of the last slot applied.
    pub fn last_slot(&self) -> Option<i64> {
        self.last
    }

    /// The archives.
    pub fn archives(&self) -> Vec<ArchiveSpec> {
        self.archives.iter().map(|a| a.spec).collect()
    }

    /// Applies one slot; `false` (and nothing changes) if a slot at or
    /// after `slot_s` was applied already.
    pub fn apply(&mut self, slot_s: i64, s: &Sample) -> bool {
        if self.last.is_some_and(|l| slot_s <= l) {
            return false;
        }
        for a in &mut self.archives {
            let step = i64::from(a.spec.step_s.max(1));
            let bucket = slot_s - slot_s.rem_euclid(step);
            let idx = (bucket / step).rem_euclid(i64::from(a.spec.rows.max(1))) as usize;
            let Some(r) = a.rows.get_mut(idx) else { continue };
            if r.t != bucket {
                *r = Row { t: bucket, ..EMPTY };
            }
            r.n += 1;
            for ((sum, max), v) in r.sum.iter_mut().zip(r.max.iter_mut()).zip(s) {
                *sum = sum.saturating_add(*v);
                *max = (*max).max(*v);
            }
        }
        self.last = Some(slot_s);
        true
    }

    /// The value of one primary slot, if it is still in the first archive.
    pub fn slot(&self, slot_s: i64) -> Option<Sample> {
        let a = self.archives.first()?;
        let step = i64::from(a.spec.step_s.max(1));
        let idx = (slot_s / step).rem_euclid(i64::from(a.spec.rows.max(1))) as usize;
        a.rows.get(idx).filter(|r| r.t == slot_s && r.n > 0).map(|r| r.sum)
    }

    /// Points of series `series` over `[from, to)` from the finest archive
    /// that still covers `from` (relative to the last applied slot), or
    /// the one with the step closest to `want_step` if given. Buckets
    /// without data are absent.
    pub fn fetch(
        &self,
        series: usize,
        from: i64,
        to: i64,
        want_step: Option<u32>,
    ) -> (u32, Vec<Point>) {
        let Some(a) = self.pick(from, want_step) else { return (self.step_s, Vec::new()) };
        let step = i64::from(a.spec.step_s);
        let mut pts: Vec<Point> = a
            .rows
            .iter()
            .filter(|r| r.n > 0 && r.t + step > from && r.t < to && series < SERIES)
            .map(|r| {
                let covered = f64::from(r.n) * f64::from(self.step_s);
                Point {
                    t: r.t,
                    avg: r.sum[series] as f64 / covered,
                    max: r.max[series] as f64 / f64::from(self.step_s),
                    sum: r.sum[series],
                }
            })
            .collect();
        pts.sort_by_key(|p| p.t);
        (a.spec.step_s, pts)
    }

    fn pick(&self, from: i64, want_step: Option<u32>) -> Option<&Archive> {
        if let Some(w) = want_step {
            return self
                .archives
                .iter()
                .min_by_key(|a| (i64::from(a.spec.step_s) - i64::from(w)).abs());
        }
        let last = self.last.unwrap_or(from);
        self.archives
            .iter()
            .find(|a| last - i64::from(a.spec.step_s) * i64::from(a.spec.rows) < from)
            .or(self.archives.last())
    }

    /// Serialises the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let rows: usize = self.archives.iter().map(|a| a.rows.len()).sum();
        let mut b = Vec::with_capacity(HEADER_LEN + 8 * self.archives.len() + rows * ROW_LEN + 4);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(SERIES as u16).to_le_bytes());
        b.extend_from_slice(&(self.archives.len() as u16).to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&self.step_s.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&self.last.unwrap_or(i64::MIN).to_le_bytes());
        for a in &self.archives {
            b.extend_from_slice(&a.spec.step_s.to_le_bytes());
            b.extend_from_slice(&(a.rows.len() as u32).to_le_bytes());
        }
        for a in &self.archives {
            for r in &a.rows {
                b.extend_from_slice(&r.t.to_le_bytes());
                b.extend_from_slice(&r.n.to_le_bytes());
                b.extend_from_slice(&0u32.to_le_bytes());
                for v in r.sum.iter().chain(&r.max) {
                    b.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses a file's bytes; `path` names it in errors.
    pub fn from_bytes(b: &[u8], path: &Path) -> Result<Trend> {
        let bad =
            |m: &str| ProfileError::Trend { path: path.to_path_buf(), message: m.to_string() };
        if b.len() < HEADER_LEN + 4 {
            return Err(bad("truncated: shorter than its header"));
        }
        if &b[0..8] != MAGIC {
            return Err(bad("has a bad magic (not a weir trend file)"));
        }
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
        if u16_at(8) != VERSION || usize::from(u16_at(10)) != SERIES {
            return Err(bad("has an unsupported version or series count"));
        }
        let n = usize::from(u16_at(12));
        if n == 0 || n > MAX_ARCHIVES || b.len() < HEADER_LEN + 8 * n + 4 {
            return Err(bad("is truncated or has an impossible archive count"));
        }
        let step_s = u32_at(16);
        let last = u64_at(24) as i64;
        let mut specs = Vec::with_capacity(n);
        let mut total = 0usize;
        for i in 0..n {
            let o = HEADER_LEN + 8 * i;
            let spec = ArchiveSpec { step_s: u32_at(o), rows: u32_at(o + 4) };
            if spec.step_s == 0 || spec.rows == 0 || spec.rows > MAX_ROWS || step_s == 0 {
                return Err(bad("has an impossible archive"));
            }
            total += spec.rows as usize;
            specs.push(spec);
        }
        let want = HEADER_LEN + 8 * n + total * ROW_LEN + 4;
        if b.len() != want {
            return Err(bad(&format!("is truncated: {} bytes, its layout needs {want}", b.len())));
        }
        let body = &b[..want - 4];
        if crc32fast::hash(body) != u32_at(want - 4) {
            return Err(bad("fails its checksum"));
        }
        let mut o = HEADER_LEN + 8 * n;
        let mut archives = Vec::with_capacity(n);
        for spec in specs {
            let mut rows = Vec::with_capacity(spec.rows as usize);
            for _ in 0..spec.rows {
                let mut r = Row { t: u64_at(o) as i64, n: u32_at(o + 8), ..EMPTY };
                for i in 0..SERIES {
                    r.sum[i] = u64_at(o + 16 + 8 * i);
                    r.max[i] = u64_at(o + 16 + 8 * (SERIES + i));
                }
                rows.push(r);
                o += ROW_LEN;
            }
            archives.push(Archive { spec, rows });
        }
        Ok(Trend { step_s, last: (last != i64::MIN).then_some(last), archives })
    }

    /// Reads a trend file.
    pub fn load(path: &Path) -> Result<Trend> {
        let b = fs::read(path).map_err(|e| ProfileError::io(path, "read", e))?;
        Trend::from_bytes(&b, path)
    }

    /// Writes the file atomically (temporary name, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes())
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| ProfileError::io(dir, "create directory", e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = fs::File::create(&tmp).map_err(|e| ProfileError::io(&tmp, "create", e))?;
    f.write_all(bytes).map_err(|e| ProfileError::io(&tmp, "write", e))?;
    f.sync_all().map_err(|e| ProfileError::io(&tmp, "fsync", e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        ProfileError::io(path, "rename", e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: u64) -> Sample {
        let mut x = [0; SERIES];
        x[0] = v;
        x[series_index(Metric::Bytes, Some(ProtoClass::Udp))] = v * 100;
        x
    }

    #[test]
    fn default_layout_matches_nfsen() {
        let a = default_archives(300);
        assert_eq!(
            a.iter().map(|a| (a.step_s, a.rows)).collect::<Vec<_>>(),
            [(300, 576), (1800, 672), (7200, 744), (86_400, 1827)]
        );
    }

    #[test]
    fn apply_is_idempotent_and_consolidates_avg_and_max() {
        let mut t = Trend::new(300, &default_archives(300));
        let base = 1_709_532_000; // 06:00, a 30-minute boundary
        for i in 0..6 {
            assert!(t.apply(base + i * 300, &s(300 * (i as u64 + 1))));
        }
        assert!(!t.apply(base + 300, &s(1_000_000)), "an applied slot is skipped");
        assert_eq!(t.last_slot(), Some(base + 1500));
        assert_eq!(t.slot(base + 300).unwrap()[0], 600);
        let (step, pts) = t.fetch(0, base, base + 1800, Some(1800));
        assert_eq!(step, 1800);
        assert_eq!(pts.len(), 1);
        // slots 300..1800 flows: per second 1..6, average 3.5, maximum 6.
        assert!((pts[0].avg - 3.5).abs() < 1e-9 && (pts[0].max - 6.0).abs() < 1e-9, "{pts:?}");
        let (step, pts) = t.fetch(0, base, base + 1800, None);
        assert_eq!((step, pts.len()), (300, 6));
    }

    #[test]
    fn round_trip_and_damage_is_an_error_not_a_panic() {
        let mut t = Trend::new(300, &default_archives(300)[..2]);
        t.apply(1_709_532_000, &s(7));
        let b = t.to_bytes();
        let p = Path::new("c.trend");
        assert_eq!(Trend::from_bytes(&b, p).unwrap(), t);
        for cut in [0, 10, 40, b.len() / 2, b.len() - 1] {
            let e = Trend::from_bytes(&b[..cut], p).unwrap_err().to_string();
            assert!(e.contains("c.trend") && e.contains("truncated"), "{cut}: {e}");
        }
        let mut flipped = b.clone();
        flipped[100] ^= 1;
        assert!(Trend::from_bytes(&flipped, p).unwrap_err().to_string().contains("checksum"));
        let mut huge = b.clone();
        huge[12] = 0xff;
        assert!(Trend::from_bytes(&huge, p).is_err());
    }
}
