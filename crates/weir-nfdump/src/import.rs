//! Importing nfcapd trees: one weir slot file per nfcapd file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone};
use weir_record::{BatchBuilder, FlowRecord, SlotTotals};
use weir_store::{
    Compression as StoreCompression, Creator, DEFAULT_BLOCK_ROWS, DEFAULT_SLOT_SECS, OnExists,
    SlotFile, SlotMeta, SlotWriter, StoreError, SubdirLayout, WriterOptions, slot_path,
};

use crate::error::NfError;
use crate::reader::{NfFile, SkipCounts};

/// How the times in nfcapd file names are to be read. nfcapd names files
/// by the slot start in the **local time** of the machine it ran on (weir
/// uses UTC); a name with a `+zzzz` suffix (nfcapd `-Z`) carries its own
/// offset, which always wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameTime {
    /// The time zone of this machine (`TZ`, `/etc/localtime`): right when
    /// importing on the collector host or one set up like it.
    #[default]
    Local,
    /// UTC (collectors that ran with `TZ=UTC`).
    Utc,
    /// A fixed offset east of UTC, in seconds.
    Offset(i32),
}

/// A parsed nfcapd file name: `nfcapd.YYYYMMDDhhmm[ss][+zzzz]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NfcapdName {
    /// The wall-clock time in the name.
    pub time: chrono::NaiveDateTime,
    /// Whether the name has seconds (nfcapd `-t` below 60).
    pub has_seconds: bool,
    /// The `+zzzz` / `-zzzz` offset in seconds, if present.
    pub offset_s: Option<i32>,
}

/// Parses an nfcapd file name; `None` for other names (including
/// `nfcapd.current.*`).
pub fn parse_nfcapd_name(name: &str) -> Option<NfcapdName> {
    let rest = name.strip_prefix("nfcapd.")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits != 12 && digits != 14 {
        return None;
    }
    let (stamp, tail) = rest.split_at(digits);
    let num = |r: std::ops::Range<usize>| stamp[r].parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(4..6)?, num(6..8)?)?;
    let secs = if digits == 14 { num(12..14)? } else { 0 };
    let time = date.and_hms_opt(num(8..10)?, num(10..12)?, secs)?;
    let offset_s = match tail {
        "" => None,
        t if !t.contains(':') => Some(parse_utc_offset(t)?),
        _ => return None,
    };
    Some(NfcapdName { time, has_seconds: digits == 14, offset_s })
}

/// A UTC offset `+HHMM` / `-HHMM` (or `±HH:MM`) in seconds east of UTC:
/// the suffix of nfcapd's `-Z` file names and `weir import --name-offset`.
/// Hours up to 23, minutes up to 59.
pub fn parse_utc_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let d = rest.replacen(':', "", 1);
    if d.len() != 4 || !d.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 5 {
        return None;
    }
    let (hh, mm): (i32, i32) = (d[..2].parse().ok()?, d[2..].parse().ok()?);
    (hh <= 23 && mm <= 59).then_some(sign * (hh * 60 + mm) * 60)
}

impl NfcapdName {
    /// The slot start in seconds since the epoch. A local time that occurs
    /// twice (the hour repeated when daylight saving time ends) is resolved
    /// with `hint_s` (a time known to lie in the slot, e.g. the first flow)
    /// when given, else the earlier one is taken.
    pub fn start_s(&self, tz: NameTime, hint_s: Option<i64>) -> Option<i64> {
        let naive = self.time.and_utc().timestamp();
        if let Some(off) = self.offset_s {
            return Some(naive - i64::from(off));
        }
        match tz {
            NameTime::Utc => Some(naive),
            NameTime::Offset(off) => Some(naive - i64::from(off)),
            NameTime::Local => match chrono::Local.from_local_datetime(&self.time) {
                chrono::LocalResult::Single(t) => Some(t.timestamp()),
                chrono::LocalResult::Ambiguous(a, b) => {
                    let (a, b) = (a.timestamp(), b.timestamp());
                    Some(match hint_s {
                        Some(h) if (h - b).abs() < (h - a).abs() => b,
                        _ => a.min(b),
                    })
                }
                chrono::LocalResult::None => None,
            },
        }
    }
}

/// The nfcapd files under `root` (or `root` itself if it is a file), in
/// name order. `nfcapd.current.*` and other names are left out.
pub fn find_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if root.is_file() {
        out.push(root.to_path_buf());
        return Ok(out);
    }
    walk(root, &mut out)?;
    out.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then_with(|| a.cmp(b)));
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        let ty = e.file_type()?;
        if ty.is_dir() {
            walk(&p, out)?;
        } else if (ty.is_file() || ty.is_symlink())
            && p.file_name().and_then(|n| n.to_str()).and_then(parse_nfcapd_name).is_some()
        {
            out.push(p);
        }
    }
    Ok(())
}

/// A progress callback, see [`ImportOptions::progress`].
pub type ProgressFn = Box<dyn FnMut(&ImportEvent<'_>) + Send>;

/// What [`import`] does.
pub struct ImportOptions {
    /// nfcapd trees (any `-S` layout) or single files, each with an
    /// optional source name. With one source the slot files go straight
    /// under `dest`; with several, source `name` goes to `dest/name` (a
    /// source without a name is named after its directory). A tree that
    /// holds several collectors' directories side by side (nfcapd `-n` /
    /// `-M` layouts: `tree/rtr1/2024/03/04/nfcapd.*`, `tree/rtr2/...`) is
    /// split into one stream per directory, written to `…/rtr1`, `…/rtr2`.
    pub sources: Vec<(PathBuf, Option<String>)>,
    /// Where the weir slot files go.
    pub dest: PathBuf,
    /// Sub-directory layout of the weir files.
    pub layout: SubdirLayout,
    /// zstd level of the slot files (0 = uncompressed).
    pub zstd_level: i32,
    /// Slot length in seconds; `None` infers it per stream from the spacing
    /// of the file names: the most common gap, or a file's own spacing where
    /// its neighbours show the collector ran with another `-t` then; for a
    /// lone file, from the alignment of its name (300 s if aligned, else
    /// 60 s, ...; names with seconds: 30, 20, 15, 10, 5, 2, else 1 s).
    pub slot_secs: Option<u32>,
    /// How the times in file names are read.
    pub name_time: NameTime,
    /// Files imported in parallel (at least 1).
    pub threads: usize,
    /// Called after each file (from the importing threads, one call at a
    /// time).
    pub progress: Option<ProgressFn>,
    /// Set (e.g. from a signal handler) to stop: files being imported are
    /// finished, no new one is started, and the report says `cancelled`.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("sources", &self.sources)
            .field("dest", &self.dest)
            .field("layout", &self.layout)
            .field("zstd_level", &self.zstd_level)
            .field("slot_secs", &self.slot_secs)
            .field("name_time", &self.name_time)
            .field("threads", &self.threads)
            .field("cancel", &self.cancel)
            .finish_non_exhaustive()
    }
}

impl ImportOptions {
    /// Options for one source tree into `dest`, with the defaults: layout
    /// `-S 1`, zstd level 1, inferred slot length, local-time names, one
    /// thread, no progress callback.
    pub fn new(source: impl Into<PathBuf>, dest: impl Into<PathBuf>) -> ImportOptions {
        ImportOptions {
            sources: vec![(source.into(), None)],
            dest: dest.into(),
            layout: SubdirLayout::default(),
            zstd_level: weir_store::DEFAULT_ZSTD_LEVEL,
            slot_secs: None,
            name_time: NameTime::Local,
            threads: 1,
            progress: None,
            cancel: None,
        }
    }
}

/// What happened to one nfcapd file.
#[derive(Debug)]
pub enum FileOutcome {
    /// Written to `dest`.
    Imported {
        /// The slot file written.
        dest: PathBuf,
        /// Flows (records) written.
        flows: u64,
        /// Signs of damage that did not stop the import: the stat record
        /// disagrees with the flows read (nfcapd files carry no checksums,
        /// so a damaged compressed block can still decode), or the header's
        /// block count differs from the blocks found.
        warnings: Vec<String>,
    },
    /// `dest` already holds the same slot (same totals, ident, slot and
    /// exporters): nothing written.
    AlreadyImported {
        /// The existing slot file.
        dest: PathBuf,
    },
    /// Not imported.
    Failed(FailReason),
}

/// Why a file was not imported.
#[derive(Debug, thiserror::Error)]
pub enum FailReason {
    /// The nfcapd file cannot be read (damage: the error has the offset).
    #[error(transparent)]
    Read(#[from] NfError),
    /// The slot file cannot be written.
    #[error(transparent)]
    Write(#[from] StoreError),
    /// A different slot file already exists where this one would go.
    #[error("{dest}: a different slot file already exists ({why})")]
    Conflict {
        /// The existing file.
        dest: PathBuf,
        /// What differs.
        why: String,
    },
    /// The time in the file name does not exist in the local time zone.
    #[error("{0}: the time in the file name does not exist in the local time zone")]
    BadName(PathBuf),
}

/// One progress report.
#[derive(Debug)]
pub struct ImportEvent<'a> {
    /// The nfcapd file.
    pub source: &'a Path,
    /// What happened.
    pub outcome: &'a FileOutcome,
    /// Files finished so far (this one included).
    pub done: usize,
    /// Files to do in all.
    pub total: usize,
}

/// What [`import`] did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Files written.
    pub imported: Vec<(PathBuf, PathBuf)>,
    /// Files whose slot file already existed with the same content.
    pub skipped: Vec<(PathBuf, PathBuf)>,
    /// Files that failed, with why.
    pub failed: Vec<(PathBuf, FailReason)>,
    /// Files imported with warnings (see [`FileOutcome::Imported`]).
    pub warnings: Vec<(PathBuf, String)>,
    /// Flow records written.
    pub flows: u64,
    /// Packets of those flows.
    pub packets: u64,
    /// Bytes (in direction) of those flows.
    pub bytes: u64,
    /// Bytes of the reverse direction (bidirectional flows).
    pub out_bytes: u64,
    /// Size of the nfcapd files imported.
    pub nfcapd_file_bytes: u64,
    /// Size of the slot files written.
    pub weir_file_bytes: u64,
    /// Extensions and records passed over, summed over the files.
    pub skipped_counts: SkipCounts,
    /// Wall-clock time of the import.
    pub elapsed: Duration,
    /// The import was cancelled before all files were done.
    pub cancelled: bool,
}

impl ImportReport {
    /// Files imported.
    pub fn files_imported(&self) -> usize {
        self.imported.len()
    }

    /// Files skipped as already imported.
    pub fn files_skipped(&self) -> usize {
        self.skipped.len()
    }

    /// Files that failed.
    pub fn files_failed(&self) -> usize {
        self.failed.len()
    }
}

/// A fatal import error (per-file problems go into the report instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A source cannot be listed.
    #[error("{}: {source}", path.display())]
    Source {
        /// The source.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Two sources would write to the same directory.
    #[error("two sources are named '{0}'; give them different names")]
    DuplicateName(String),
}

struct Job {
    path: PathBuf,
    dest_root: PathBuf,
    start_s: Option<i64>,
    name: NfcapdName,
    slot_len: u32,
    fallback_ident: String,
}

/// The directory a file's stream lives in: its directory without the
/// nfcapd `-S` sub-directories of its slot (the longest layout whose
/// directories, computed from the time in the name, end the path).
fn stream_root(path: &Path, name: &NfcapdName) -> PathBuf {
    let parent = path.parent().unwrap_or(Path::new(""));
    let mut best = 0;
    for layout in SubdirLayout::ALL {
        if layout == SubdirLayout::Flat {
            continue;
        }
        let sub = PathBuf::from(name.time.format(layout.pattern()).to_string());
        let n = sub.components().count();
        if n > best && parent.ends_with(&sub) {
            best = n;
        }
    }
    parent.ancestors().nth(best).unwrap_or(parent).to_path_buf()
}

/// The most common gap between consecutive starts (the collector's `-t`).
fn infer_slot_len(starts: &[i64]) -> Option<u32> {
    let mut gaps: BTreeMap<i64, usize> = BTreeMap::new();
    for w in starts.windows(2) {
        let g = w[1] - w[0];
        if g > 0 && g <= 86_400 {
            *gaps.entry(g).or_default() += 1;
        }
    }
    let best = gaps.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))?;
    u32::try_from(*best.0).ok()
}

/// The slot length of the file starting at `t` when its neighbours say
/// the collector ran with another `-t` than the usual `mode` then: a gap
/// shorter than `mode` that `t` is aligned to, or equal gaps on both sides
/// (a regular run at another spacing). `None`: use `mode`.
fn local_slot_len(starts: &[i64], t: i64, mode: u32) -> Option<u32> {
    let i = starts.binary_search(&t).ok()?;
    let gap = |a: usize, b: usize| {
        let g = starts[b] - starts[a];
        (g > 0 && g <= 86_400).then_some(g)
    };
    let prev = i.checked_sub(1).and_then(|p| gap(p, i));
    let next = (i + 1 < starts.len()).then(|| gap(i, i + 1)).flatten();
    let mode = i64::from(mode);
    if let (Some(p), Some(n)) = (prev, next)
        && p == n
        && p != mode
        && t % p == 0
    {
        return u32::try_from(p).ok();
    }
    let small = [prev, next].into_iter().flatten().filter(|&g| g < mode && t % g == 0).min()?;
    u32::try_from(small).ok()
}

fn aligned_len(start_s: i64, has_seconds: bool) -> u32 {
    // Names with seconds come from nfcapd -t below 60.
    let long: &[u32] = if has_seconds { &[] } else { &[DEFAULT_SLOT_SECS, 60] };
    long.iter()
        .chain(&[30, 20, 15, 10, 5, 2])
        .copied()
        .find(|&l| start_s % i64::from(l) == 0)
        .unwrap_or(1)
}

/// Imports nfcapd files as weir slot files. Per-file problems (damage,
/// conflicts) are reported and the other files go on; an existing slot
/// file with the same content is skipped, so re-running is harmless.
pub fn import(mut opts: ImportOptions) -> Result<ImportReport, ImportError> {
    let t0 = Instant::now();
    let mut jobs = Vec::new();
    let many = opts.sources.len() > 1;
    let mut names = BTreeMap::new();
    for (src, name) in &opts.sources {
        let files =
            find_files(src).map_err(|e| ImportError::Source { path: src.clone(), source: e })?;
        let label = name.clone().unwrap_or_else(|| {
            let p = if src.is_file() { src.parent().unwrap_or(src) } else { src.as_path() };
            p.file_name().map_or_else(|| "source".to_string(), |n| n.to_string_lossy().into_owned())
        });
        let dest_root =
            if many || name.is_some() { opts.dest.join(&label) } else { opts.dest.clone() };
        if names.insert(dest_root.clone(), ()).is_some() {
            return Err(ImportError::DuplicateName(label));
        }
        let parsed: Vec<_> = files
            .into_iter()
            .filter_map(|p| {
                let n = parse_nfcapd_name(p.file_name()?.to_str()?)?;
                Some((p, n))
            })
            .collect();
        // A tree may hold several collectors' streams side by side (nfcapd
        // -n / -M: one directory per source or exporter, each with its own
        // -S sub-directories): each stream gets a directory of its own.
        let mut streams: BTreeMap<PathBuf, Vec<(PathBuf, NfcapdName)>> = BTreeMap::new();
        for (p, n) in parsed {
            streams.entry(stream_root(&p, &n)).or_default().push((p, n));
        }
        let base = if src.is_file() { src.parent().unwrap_or(src) } else { src.as_path() };
        let split = streams.len() > 1;
        for (root, files) in streams {
            let rel = root.strip_prefix(base).unwrap_or(Path::new("")).to_path_buf();
            let (dest_root, fallback) = if split && !rel.as_os_str().is_empty() {
                (dest_root.join(&rel), rel.to_string_lossy().replace('/', "-"))
            } else {
                (dest_root.clone(), name.clone().unwrap_or_else(|| "none".into()))
            };
            let mut starts: Vec<i64> =
                files.iter().filter_map(|(_, n)| n.start_s(opts.name_time, None)).collect();
            starts.sort_unstable();
            starts.dedup();
            let mode = infer_slot_len(&starts);
            for (path, n) in files {
                let start_s = n.start_s(opts.name_time, None);
                let slot_len = opts
                    .slot_secs
                    .or_else(|| start_s.and_then(|t| local_slot_len(&starts, t, mode?)))
                    .or(mode)
                    .unwrap_or_else(|| {
                        start_s.map_or(DEFAULT_SLOT_SECS, |t| aligned_len(t, n.has_seconds))
                    })
                    .max(1);
                jobs.push(Job {
                    path,
                    dest_root: dest_root.clone(),
                    start_s,
                    name: n,
                    slot_len,
                    fallback_ident: fallback.clone(),
                });
            }
        }
    }
    let total = jobs.len();
    let report = Mutex::new(ImportReport::default());
    let progress = Mutex::new((opts.progress.take(), 0usize));
    let next = AtomicUsize::new(0);
    let store_opts = WriterOptions {
        compression: StoreCompression::from_level(opts.zstd_level),
        block_rows: DEFAULT_BLOCK_ROWS,
        on_exists: OnExists::Fail,
    };
    let (layout, name_time) = (opts.layout, opts.name_time);
    let cancel = opts.cancel.clone();
    let cancelled = AtomicBool::new(false);
    let work = || {
        loop {
            if cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                cancelled.store(true, Ordering::Relaxed);
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { break };
            let (outcome, stats) = import_one(job, layout, name_time, store_opts);
            {
                let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(s) = &stats {
                    r.skipped_counts.merge(&s.skipped);
                }
                match &outcome {
                    FileOutcome::Imported { dest, warnings, .. } => {
                        for w in warnings {
                            r.warnings.push((job.path.clone(), w.clone()));
                        }
                        if let Some(s) = &stats {
                            r.flows += s.flows;
                            r.packets += s.packets;
                            r.bytes += s.bytes;
                            r.out_bytes += s.out_bytes;
                            r.nfcapd_file_bytes += s.in_file;
                            r.weir_file_bytes += s.out_file;
                        }
                        r.imported.push((job.path.clone(), dest.clone()));
                    }
                    FileOutcome::AlreadyImported { dest } => {
                        r.skipped.push((job.path.clone(), dest.clone()))
                    }
                    FileOutcome::Failed(_) => {}
                }
            }
            {
                let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                p.1 += 1;
                let done = p.1;
                if let Some(cb) = p.0.as_mut() {
                    cb(&ImportEvent { source: &job.path, outcome: &outcome, done, total });
                }
            }
            if let FileOutcome::Failed(why) = outcome {
                report
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .failed
                    .push((job.path.clone(), why));
            }
        }
    };
    let threads = opts.threads.clamp(1, total.max(1));
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let mut r = report.into_inner().unwrap_or_else(|e| e.into_inner());
    r.imported.sort();
    r.skipped.sort();
    r.failed.sort_by(|a, b| a.0.cmp(&b.0));
    r.warnings.sort();
    r.elapsed = t0.elapsed();
    r.cancelled = cancelled.load(Ordering::Relaxed)
        && r.imported.len() + r.skipped.len() + r.failed.len() < total;
    Ok(r)
}

#[derive(Default)]
struct FileStats {
    flows: u64,
    aggregated: u64,
    packets: u64,
    out_packets: u64,
    bytes: u64,
    out_bytes: u64,
    in_file: u64,
    out_file: u64,
    skipped: SkipCounts,
}

fn import_one(
    job: &Job,
    layout: SubdirLayout,
    name_time: NameTime,
    wopts: WriterOptions,
) -> (FileOutcome, Option<FileStats>) {
    let mut file = match NfFile::open(&job.path) {
        Ok(f) => f,
        Err(e) => return (FileOutcome::Failed(e.into()), None),
    };
    let hint = file.stat().filter(|s| s.first_ms > 0).map(|s| (s.first_ms / 1000) as i64);
    let start_s = match job.start_s {
        Some(s)
            if hint.is_none() || job.name.offset_s.is_some() || name_time != NameTime::Local =>
        {
            s
        }
        _ => match job.name.start_s(name_time, hint) {
            Some(s) => s,
            None => return (FileOutcome::Failed(FailReason::BadName(job.path.clone())), None),
        },
    };
    let dest = slot_path(&job.dest_root, layout, start_s, job.slot_len);
    let ident = file.ident().map_or_else(|| job.fallback_ident.clone(), str::to_string);
    let meta = SlotMeta {
        slot_start_s: start_s,
        slot_len_s: job.slot_len,
        ident,
        creator: Creator::Import,
    };
    if dest.exists() {
        return compare_existing(&mut file, &dest, &meta);
    }
    let mut w = match SlotWriter::create(&dest, meta.clone(), wopts) {
        Ok(w) => w,
        Err(e) => return (FileOutcome::Failed(e.into()), None),
    };
    let mut st = FileStats { in_file: file.len(), ..Default::default() };
    let res = file.for_each_flow(|f| {
        st.flows += 1;
        st.aggregated = st.aggregated.saturating_add(f.flows.unwrap_or(1));
        st.packets = st.packets.saturating_add(f.packets);
        st.out_packets = st.out_packets.saturating_add(f.out_packets.unwrap_or(0));
        st.bytes = st.bytes.saturating_add(f.bytes);
        st.out_bytes = st.out_bytes.saturating_add(f.out_bytes.unwrap_or(0));
        w.push(f).map_err(FailReason::from)
    });
    st.skipped = file.skipped().clone();
    if let Err(e) = res {
        let _ = w.abort();
        return (FileOutcome::Failed(e), Some(st));
    }
    w.set_exporters(file.exporter_stats());
    if let Some(s) = file.stat() {
        w.add_sequence_failures(s.sequence_failures);
    }
    match w.finish() {
        Ok(p) => {
            st.out_file = std::fs::metadata(&p).map_or(0, |m| m.len());
            let warnings = warnings(&file, &st);
            (FileOutcome::Imported { dest: p, flows: st.flows, warnings }, Some(st))
        }
        Err(e) if matches!(e.kind, weir_store::ErrorKind::Exists(_)) => {
            match NfFile::open(&job.path) {
                Ok(mut again) => compare_existing(&mut again, &dest, &meta),
                Err(e) => (FileOutcome::Failed(e.into()), None),
            }
        }
        Err(e) => (FileOutcome::Failed(e.into()), Some(st)),
    }
}

/// Checks the stat record and block count against what was read. nfcapd
/// counts records and adds the reverse direction to packets and bytes;
/// `nfdump -w` counts aggregated flows: either convention passes.
fn warnings(file: &NfFile, st: &FileStats) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(s) = file.stat() {
        let ok = |stat: u64, a: u64, b: u64| stat == a || stat == b;
        if !ok(s.all.flows, st.flows, st.aggregated)
            || !ok(s.all.packets, st.packets, st.packets.saturating_add(st.out_packets))
            || !ok(s.all.bytes, st.bytes, st.bytes.saturating_add(st.out_bytes))
        {
            w.push(format!(
                "stat record says {} flows / {} packets / {} bytes, the blocks hold {} flows / {} packets / {} bytes",
                s.all.flows, s.all.packets, s.all.bytes, st.flows, st.packets, st.bytes
            ));
        }
    }
    // Flow records of other layouts (1: nfdump 1.5 common record, 10: the
    // 1.6 common record, 16: nfdump 1.8's V4 record) are not read.
    for (t, n) in &file.skipped().records {
        if matches!(t, 1 | 10 | 16) {
            w.push(format!(
                "{n} flow records of type {t} (another nfdump version's layout) not read"
            ));
        }
    }
    if file.skipped().blocks > 0 {
        w.push(format!("{} blocks of a type other than 3 not read", file.skipped().blocks));
    }
    let h = file.header();
    if h.appendix_offset != 0 && file.blocks_read() != h.num_blocks {
        w.push(format!(
            "the header announces {} data blocks, {} were found",
            h.num_blocks,
            file.blocks_read()
        ));
    }
    w
}

/// Reads the nfcapd file without writing and compares what its slot file
/// would hold with the slot file at `dest`.
fn compare_existing(
    file: &mut NfFile,
    dest: &Path,
    meta: &SlotMeta,
) -> (FileOutcome, Option<FileStats>) {
    let existing = match SlotFile::open(dest) {
        Ok(f) => f,
        Err(e) => {
            return (
                FileOutcome::Failed(FailReason::Conflict {
                    dest: dest.to_path_buf(),
                    why: format!("it cannot be read: {e}"),
                }),
                None,
            );
        }
    };
    let mut totals = SlotTotals::default();
    let mut b = BatchBuilder::default();
    let add = |b: &mut BatchBuilder, totals: &mut SlotTotals| {
        let mut batch = b.finish();
        totals.add_batch(&batch);
        b.recycle(&mut batch);
    };
    let res = file.for_each_flow(|f: &FlowRecord| {
        b.push(f);
        if b.len() >= DEFAULT_BLOCK_ROWS {
            add(&mut b, &mut totals);
        }
        Ok::<_, NfError>(())
    });
    if let Err(e) = res {
        return (FileOutcome::Failed(e.into()), None);
    }
    if !b.is_empty() {
        add(&mut b, &mut totals);
    }
    if let Some(s) = file.stat() {
        totals.sequence_failures += s.sequence_failures;
    }
    let info = existing.info();
    let exporters = file.exporter_stats();
    let why = if info.slot_start_s != meta.slot_start_s || info.slot_len_s != meta.slot_len_s {
        Some(format!(
            "slot {}+{}s, not {}+{}s",
            info.slot_start_s, info.slot_len_s, meta.slot_start_s, meta.slot_len_s
        ))
    } else if info.ident != meta.ident {
        Some(format!("ident '{}', not '{}'", info.ident, meta.ident))
    } else if info.totals != totals {
        Some(format!(
            "{} flows / {} bytes, not {} / {}",
            info.totals.all.flows, info.totals.all.bytes, totals.all.flows, totals.all.bytes
        ))
    } else if info.exporters != exporters {
        Some("the exporter tables differ".to_string())
    } else {
        None
    };
    match why {
        None => (FileOutcome::AlreadyImported { dest: dest.to_path_buf() }, None),
        Some(why) => {
            (FileOutcome::Failed(FailReason::Conflict { dest: dest.to_path_buf(), why }), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = parse_nfcapd_name("nfcapd.202403040605").unwrap();
        assert!(!n.has_seconds);
        assert_eq!(n.start_s(NameTime::Utc, None), Some(1_709_532_300));
        let n = parse_nfcapd_name("nfcapd.20240304060530").unwrap();
        assert!(n.has_seconds);
        assert_eq!(n.start_s(NameTime::Utc, None), Some(1_709_532_330));
        let n = parse_nfcapd_name("nfcapd.202403040605+0100").unwrap();
        assert_eq!(n.start_s(NameTime::Local, None), Some(1_709_532_300 - 3600));
        assert_eq!(
            parse_nfcapd_name("nfcapd.202403040605")
                .unwrap()
                .start_s(NameTime::Offset(-7200), None),
            Some(1_709_532_300 + 7200)
        );
        for bad in [
            "nfcapd.current.1234",
            "nfcapd.2024030406",
            "nfcapd.202413040605",
            "nfcapd.202403040605x",
            "weir.202403040605",
            ".nfstat",
        ] {
            assert!(parse_nfcapd_name(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn utc_offsets() {
        assert_eq!(parse_utc_offset("+0100"), Some(3600));
        assert_eq!(parse_utc_offset("-05:30"), Some(-19_800));
        assert_eq!(parse_utc_offset("+2359"), Some(86_340));
        for bad in ["0100", "+2400", "+0160", "+01", "+01:00:00", "+0a00", ""] {
            assert_eq!(parse_utc_offset(bad), None, "{bad}");
        }
    }

    #[test]
    fn stream_roots() {
        let n = parse_nfcapd_name("nfcapd.202403040605").unwrap();
        let root = |p: &str| stream_root(Path::new(p), &n);
        assert_eq!(root("/f/nfcapd.202403040605"), Path::new("/f"));
        assert_eq!(root("/f/2024/03/04/nfcapd.202403040605"), Path::new("/f"));
        assert_eq!(root("/f/a/2024/03/04/06/nfcapd.202403040605"), Path::new("/f/a"));
        assert_eq!(root("/f/2024-03-04/06/nfcapd.202403040605"), Path::new("/f"));
        assert_eq!(root("/f/2024/064/nfcapd.202403040605"), Path::new("/f"));
        assert_eq!(root("/f/2024/10/1/nfcapd.202403040605"), Path::new("/f"));
        assert_eq!(root("/f/x/2024/03/nfcapd.202403040605"), Path::new("/f/x/2024/03"));
    }

    #[test]
    fn slot_len_inference() {
        assert_eq!(infer_slot_len(&[0, 300, 600, 1200, 1500]), Some(300));
        assert_eq!(infer_slot_len(&[0, 60, 120, 180, 3600]), Some(60));
        assert_eq!(infer_slot_len(&[0]), None);
        // -t 60 for a while inside a -t 300 history, and the other way round.
        let s: Vec<i64> = vec![0, 300, 600, 660, 720, 780, 900, 1200, 1500, 1800];
        let m = infer_slot_len(&s).unwrap();
        assert_eq!(m, 300);
        let len = |t| local_slot_len(&s, t, m).unwrap_or(m);
        assert_eq!([0, 300, 1200, 1500, 1800].map(len), [300; 5]);
        assert_eq!([600, 660, 720, 780].map(len), [60; 4]);
        let s: Vec<i64> = vec![0, 60, 120, 180, 240, 300, 600, 900, 1200, 1260, 1320];
        let m = infer_slot_len(&s).unwrap();
        assert_eq!(m, 60);
        let len = |t| local_slot_len(&s, t, m).unwrap_or(m);
        assert_eq!([600, 900].map(len), [300; 2]);
        assert_eq!([0, 60, 1260, 1320].map(len), [60; 4]);
        assert_eq!(aligned_len(600, false), 300);
        assert_eq!(aligned_len(660, false), 60);
        assert_eq!(aligned_len(670, false), 10);
        assert_eq!(aligned_len(661, false), 1);
        assert_eq!(aligned_len(600, true), 30);
        assert_eq!(aligned_len(605, true), 5);
    }
}
