//! Which files a query reads (`-r`, `-R`, `-M`) and the time window (`-t`).

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone};
use weir_store::{SlotFile, SlotName, SubdirLayout, TimeRange, list_files, parse_slot_file_name};

use crate::error::QueryError;
use crate::model::TimeWindow;

/// nfdump's input options.
///
/// * `read` (`-r PATH`): one file, or a directory read recursively.
/// * `range` (`-R EXPR`): `DIR` (all files below, recursively), `DIR/FILE`
///   (that file and all following ones below `DIR`), `DIR/FILE1:FILE2`
///   (inclusive range; `FILE2` is relative to `DIR` and may carry a date
///   sub-hierarchy such as `2024/07/12/weir.202407120000`, in which case
///   `DIR` is the directory of `FILE1` less that many levels).
/// * `multi` (`-M /base/dir1:dir2:…`, or `/base/@` for every sub-directory
///   of `/base`): the same `-r`/`-R` expression relative to each directory;
///   alone, every file below each directory.
///
/// Files are returned in time order (slot start, then sequence number, then
/// the order of the `-M` directories).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputSpec {
    /// `-r`.
    pub read: Option<String>,
    /// `-R`.
    pub range: Option<String>,
    /// `-M`.
    pub multi: Option<String>,
}

impl InputSpec {
    /// `-r PATH`.
    pub fn read(path: impl Into<String>) -> InputSpec {
        InputSpec { read: Some(path.into()), ..Default::default() }
    }

    /// `-R EXPR`.
    pub fn range(expr: impl Into<String>) -> InputSpec {
        InputSpec { range: Some(expr.into()), ..Default::default() }
    }
}

/// One selected file with its sort key.
struct Picked {
    name: SlotName,
    dir: usize,
    path: PathBuf,
}

/// Resolves `spec` into the list of slot files to read, in time order.
///
/// With a window, files that cannot hold a passing flow are left out: first
/// by name (the slot ends before the window starts), then by the footer's
/// first/last seen (opening only the footer, never a block). Unreadable
/// files are kept so that the scan reports them.
pub fn select_files(
    spec: &InputSpec,
    window: Option<&TimeWindow>,
) -> Result<Vec<PathBuf>, QueryError> {
    if spec.read.is_some() && spec.range.is_some() {
        return Err(QueryError::Input("-r and -R cannot be combined".into()));
    }
    let dirs: Vec<Option<PathBuf>> = match &spec.multi {
        Some(m) => multi_dirs(m)?.into_iter().map(Some).collect(),
        None => vec![None],
    };
    let mut picked = Vec::new();
    for (di, dir) in dirs.iter().enumerate() {
        let files = match (&spec.read, &spec.range, dir) {
            (Some(r), _, d) => read_path(&join(d.as_deref(), r))?,
            (None, Some(r), d) => range_files(d.as_deref(), r)?,
            (None, None, Some(d)) => all_files(d)?,
            (None, None, None) => {
                return Err(QueryError::Input("no input: give -r, -R or -M".into()));
            }
        };
        picked.extend(files.into_iter().map(|(name, path)| Picked { name, dir: di, path }));
    }
    if dirs.len() > 1 {
        picked.sort_by(|a, b| a.name.cmp(&b.name).then(a.dir.cmp(&b.dir)));
    }
    let mut out = Vec::with_capacity(picked.len());
    for p in picked {
        if let Some(w) = window
            && !file_may_match(&p.path, w)
        {
            continue;
        }
        out.push(p.path);
    }
    Ok(out)
}

/// Whether a file may hold a flow inside `w`, from its footer (nfdump's
/// stat record: first and last seen over the file). Files that do not open
/// are kept so that the scan reports them.
fn file_may_match(path: &Path, w: &TimeWindow) -> bool {
    let Ok(file) = SlotFile::open(path) else {
        return true;
    };
    let t = &file.info().totals;
    t.all.flows > 0 && w.may_overlap(t.first_ms, t.last_ms)
}

/// `dir/rel`, or `rel` without a directory.
fn join(dir: Option<&Path>, rel: &str) -> PathBuf {
    match dir {
        Some(d) => d.join(rel),
        None => PathBuf::from(rel),
    }
}

/// `/base/dir1:dir2:dir3` or `/base/@`.
fn multi_dirs(m: &str) -> Result<Vec<PathBuf>, QueryError> {
    let mut parts = m.split(':');
    let first = PathBuf::from(parts.next().unwrap_or(""));
    let base = first.parent().map(Path::to_path_buf).unwrap_or_default();
    let Some(first_name) = first.file_name() else {
        return Err(QueryError::Input(format!("-M {m}: expected /base/dir1:dir2:…")));
    };
    if first_name == "@" {
        let rd = std::fs::read_dir(&base)
            .map_err(|source| QueryError::Io { path: base.clone(), source })?;
        let mut dirs = Vec::new();
        for e in rd {
            let e = e.map_err(|source| QueryError::Io { path: base.clone(), source })?;
            let p = e.path();
            let hidden = e.file_name().to_str().is_none_or(|n| n.starts_with('.'));
            if p.is_dir() && !hidden {
                dirs.push(p);
            }
        }
        dirs.sort();
        if dirs.is_empty() {
            return Err(QueryError::Input(format!("-M {m}: no directories in {}", base.display())));
        }
        return Ok(dirs);
    }
    let mut dirs = vec![first.clone()];
    for p in parts {
        if p.is_empty() {
            continue;
        }
        dirs.push(base.join(p));
    }
    for d in &dirs {
        if !d.is_dir() {
            return Err(QueryError::Input(format!("-M: {} is not a directory", d.display())));
        }
    }
    Ok(dirs)
}

fn stat_err(path: &Path) -> impl FnOnce(std::io::Error) -> QueryError + '_ {
    move |source| QueryError::Io { path: path.to_path_buf(), source }
}

/// Every slot file below `dir`, time-ordered.
fn all_files(dir: &Path) -> Result<Vec<(SlotName, PathBuf)>, QueryError> {
    Ok(list_files(dir, TimeRange::ALL)?.into_iter().map(|e| (e.name, e.path)).collect())
}

/// `-r PATH`: a file as it is (any name), or a directory recursively.
fn read_path(path: &Path) -> Result<Vec<(SlotName, PathBuf)>, QueryError> {
    let meta = std::fs::metadata(path).map_err(stat_err(path))?;
    if meta.is_dir() {
        return all_files(path);
    }
    let name = slot_name_of(path).unwrap_or(SlotName { start_s: 0, seq: 0 });
    Ok(vec![(name, path.to_path_buf())])
}

fn slot_name_of(path: &Path) -> Option<SlotName> {
    path.file_name().and_then(|n| n.to_str()).and_then(parse_slot_file_name)
}

fn need_slot_name(path: &Path, what: &str) -> Result<SlotName, QueryError> {
    slot_name_of(path).ok_or_else(|| {
        QueryError::Input(format!(
            "-R: {what} {} is not a slot file name (weir.YYYYMMDDhhmm[ss][.N])",
            path.display()
        ))
    })
}

/// nfdump's GuessSubDir: a file name given without its date sub-directory
/// is looked for under every `-S` layout.
fn guess_subdir(path: &Path) -> PathBuf {
    if path.exists() {
        return path.to_path_buf();
    }
    if let (Some(name), Some(parent)) = (slot_name_of(path), path.parent())
        && let Some(file) = path.file_name()
    {
        for layout in SubdirLayout::ALL {
            let p = parent.join(layout.subdir(name.start_s)).join(file);
            if p.exists() {
                return p;
            }
        }
    }
    path.to_path_buf()
}

/// `-R`.
fn range_files(dir: Option<&Path>, expr: &str) -> Result<Vec<(SlotName, PathBuf)>, QueryError> {
    let (first, last) = match expr.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let first_path = join(dir, first);
    let Some(last) = last else {
        let found = guess_subdir(&first_path);
        if found.is_dir() {
            return all_files(&found);
        }
        let start = need_slot_name(&found, "file")?;
        let root = found.parent().map(Path::to_path_buf).unwrap_or_default();
        if !root.is_dir() {
            return Err(QueryError::Input(format!("-R {expr}: no directory {}", root.display())));
        }
        let mut files = all_files(&root)?;
        files.retain(|(n, _)| *n >= start);
        return Ok(files);
    };
    let last_rel = Path::new(last);
    if last_rel.is_absolute() {
        return Err(QueryError::Input(format!(
            "-R {expr}: the end of a range is relative to the directory of its start"
        )));
    }
    let depth = last_rel.components().filter(|c| matches!(c, Component::Normal(_))).count();
    let mut root = first_path.parent().map(Path::to_path_buf).unwrap_or_default();
    for _ in 1..depth {
        if !root.pop() {
            return Err(QueryError::Input(format!(
                "-R {expr}: {last} has more directory levels than {first}"
            )));
        }
    }
    let start = need_slot_name(&first_path, "start")?;
    let end = need_slot_name(last_rel, "end")?;
    if end < start {
        return Err(QueryError::Input(format!("-R {expr}: the end file is before the start file")));
    }
    let root = if root.as_os_str().is_empty() { PathBuf::from(".") } else { root };
    if !root.is_dir() {
        return Err(QueryError::Input(format!("-R {expr}: no directory {}", root.display())));
    }
    let mut files = all_files(&root)?;
    files.retain(|(n, _)| *n >= start && *n <= end);
    Ok(files)
}

impl TimeWindow {
    /// Whether a flow with these times passes (`first >= start && last <= end`).
    #[inline]
    pub fn contains(&self, first_ms: u64, last_ms: u64) -> bool {
        self.start_ms.is_none_or(|s| first_ms >= s) && self.end_ms.is_none_or(|e| last_ms <= e)
    }

    /// Whether some flow whose first seen is at least `min_first` and
    /// whose last seen is at most `max_last` may pass (false = none can).
    #[inline]
    pub fn may_overlap(&self, min_first: u64, max_last: u64) -> bool {
        // A flow has first <= last: all of them end before the window
        // starts, or all start after it ends.
        self.start_ms.is_none_or(|s| max_last >= s) && self.end_ms.is_none_or(|e| min_first <= e)
    }

    /// Whether every flow with first seen in `[min_first, max_first]` and
    /// last seen in `[min_last, max_last]` passes.
    #[inline]
    pub fn covers(&self, min_first: u64, max_last: u64) -> bool {
        self.start_ms.is_none_or(|s| min_first >= s) && self.end_ms.is_none_or(|e| max_last <= e)
    }

    /// Parses `-t`: nfdump's `yyyy/MM/dd.hh:mm:ss[-yyyy/MM/dd.hh:mm:ss]`
    /// (trailing parts may be left out: `2024/07/11` is that day 00:00;
    /// local time, as `TZ` says) or ISO 8601 (`2024-07-11T09:15:00`, with
    /// an optional `Z` or `+02:00`; `start/end` or `start - end`). Without
    /// an end the window is open. The end is inclusive.
    pub fn parse(text: &str) -> Result<TimeWindow, QueryError> {
        TimeWindow::parse_in(text, false)
    }

    /// As [`TimeWindow::parse`]; with `utc`, times without an offset are
    /// UTC instead of local time (`--utc`).
    pub fn parse_in(text: &str, utc: bool) -> Result<TimeWindow, QueryError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(QueryError::TimeWindow("empty".into()));
        }
        let iso = t.contains('T') || t.as_bytes().get(4) == Some(&b'-');
        let (a, b) = if iso {
            if let Some((a, b)) = t.split_once('/') {
                (a.trim(), Some(b.trim()))
            } else if let Some((a, b)) = t.split_once(" - ") {
                (a.trim(), Some(b.trim()))
            } else if let Some(i) = iso_range_dash(t) {
                (&t[..i], Some(&t[i + 1..]))
            } else {
                (t, None)
            }
        } else {
            match t.split_once('-') {
                Some((a, b)) => (a.trim(), Some(b.trim())),
                None => (t, None),
            }
        };
        let parse_one = |s: &str, what: &str| {
            if iso { parse_iso(s, what, utc) } else { parse_legacy(s, what, utc) }
        };
        let start = parse_one(a, "start")?;
        let end = match b {
            Some(b) if !b.is_empty() => Some(parse_one(b, "end")?),
            Some(_) => return Err(QueryError::TimeWindow(format!("'{t}': empty end"))),
            None => None,
        };
        if let Some(end) = end
            && end < start
        {
            return Err(QueryError::TimeWindow(format!(
                "end '{}' is before start '{a}'",
                b.unwrap_or_default()
            )));
        }
        Ok(TimeWindow { start_ms: Some(start), end_ms: end })
    }
}

/// `START-END` in ISO form: the `-` that is followed by a `YYYY-` date.
fn iso_range_dash(t: &str) -> Option<usize> {
    let b = t.as_bytes();
    (10..b.len()).find(|&i| {
        b[i] == b'-'
            && b.get(i + 1..i + 5).is_some_and(|y| y.iter().all(u8::is_ascii_digit))
            && b.get(i + 5) == Some(&b'-')
    })
}

fn to_ms(dt: DateTime<impl TimeZone>, s: &str, what: &str) -> Result<u64, QueryError> {
    u64::try_from(dt.timestamp_millis())
        .map_err(|_| QueryError::TimeWindow(format!("{what} '{s}' is before 1970")))
}

/// A time without an offset: UTC with `utc`, else local time.
fn local_ms(naive: NaiveDateTime, s: &str, what: &str, utc: bool) -> Result<u64, QueryError> {
    if utc {
        return to_ms(naive.and_utc(), s, what);
    }
    match Local.from_local_datetime(&naive).earliest() {
        Some(dt) => to_ms(dt, s, what),
        None => Err(QueryError::TimeWindow(format!(
            "{what} '{s}' does not exist in the local time zone"
        ))),
    }
}

/// `yyyy[/MM[/dd[.hh[:mm[:ss]]]]]`.
fn parse_legacy(s: &str, what: &str, utc: bool) -> Result<u64, QueryError> {
    let bad = |part: &str, v: &str| {
        QueryError::TimeWindow(format!(
            "{what} '{s}': bad {part} '{v}' (expected yyyy/MM/dd.hh:mm:ss)"
        ))
    };
    let (date, time) = match s.split_once('.') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let num = |part: &str, v: &str, lo: u32, hi: u32| -> Result<u32, QueryError> {
        if v.is_empty() || v.len() > 4 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(part, v));
        }
        let n: u32 = v.parse().map_err(|_| bad(part, v))?;
        if n < lo || n > hi { Err(bad(part, v)) } else { Ok(n) }
    };
    let d: Vec<&str> = date.split('/').collect();
    if d.len() > 3 {
        return Err(bad("date", date));
    }
    let year = num("year", d[0], 1970, 9999)?;
    let month = d.get(1).map_or(Ok(1), |v| num("month", v, 1, 12))?;
    let day = d.get(2).map_or(Ok(1), |v| num("day", v, 1, 31))?;
    let date_v = NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or_else(|| bad("day", d.get(2).copied().unwrap_or("1")))?;
    let (mut h, mut m, mut sec) = (0, 0, 0);
    if let Some(time) = time {
        let p: Vec<&str> = time.split(':').collect();
        if p.len() > 3 {
            return Err(bad("time", time));
        }
        h = num("hour", p[0], 0, 23)?;
        m = p.get(1).map_or(Ok(0), |v| num("minute", v, 0, 59))?;
        sec = p.get(2).map_or(Ok(0), |v| num("second", v, 0, 59))?;
    }
    let naive = date_v.and_hms_opt(h, m, sec).ok_or_else(|| bad("time", time.unwrap_or("")))?;
    local_ms(naive, s, what, utc)
}

/// ISO 8601: `YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]`.
fn parse_iso(s: &str, what: &str, utc: bool) -> Result<u64, QueryError> {
    let bad = |why: &str| {
        QueryError::TimeWindow(format!(
            "{what} '{s}': {why} (expected e.g. 2024-07-11T09:15:00, optionally with Z or +02:00)"
        ))
    };
    let (body, offset): (&str, Option<FixedOffset>) = if let Some(b) = s.strip_suffix(['Z', 'z']) {
        (b, FixedOffset::east_opt(0))
    } else {
        // An offset follows the time: look for + or - after the 'T'.
        match s.find('T').and_then(|t| s[t..].rfind(['+', '-']).map(|i| t + i)) {
            Some(i) => {
                let off = &s[i..];
                let sign = if off.starts_with('-') { -1 } else { 1 };
                let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
                if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(&format!("bad offset '{off}'")));
                }
                let hh: i32 = digits[..2].parse().map_err(|_| bad("bad offset"))?;
                let mm: i32 = digits[2..].parse().map_err(|_| bad("bad offset"))?;
                if hh > 23 || mm > 59 {
                    return Err(bad(&format!("bad offset '{off}'")));
                }
                (&s[..i], FixedOffset::east_opt(sign * (hh * 3600 + mm * 60)))
            }
            None => (s, None),
        }
    };
    let naive = if body.contains(['T', ' ']) {
        let body = body.replacen(' ', "T", 1);
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(&body, f).ok())
            .ok_or_else(|| bad("not a valid date and time"))?
    } else {
        NaiveDate::parse_from_str(body, "%Y-%m-%d")
            .map_err(|_| bad("not a valid date"))?
            .and_hms_opt(0, 0, 0)
            .ok_or_else(|| bad("not a valid date"))?
    };
    match offset {
        Some(off) => match off.from_local_datetime(&naive).single() {
            Some(dt) => to_ms(dt, s, what),
            None => Err(bad("not a valid time")),
        },
        None => local_ms(naive, s, what, utc),
    }
}
