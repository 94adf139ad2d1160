//! Building a profile: one parallel pass over the slots of a time range
//! that evaluates all channels at once, applies each slot to the channels'
//! trend series in time order, and (materialized profiles) writes each
//! channel's matching flows into its own slot files.
//!
//! Progress is the trend files themselves: a slot at or before a channel's
//! last applied slot is never applied again, and trend files are saved
//! every few seconds, so an interrupted build resumes where it stopped and
//! `update` can run as often as cron likes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_filter::{Expr, Filter};
use weir_query::par::{ParPool, Scratch};
use weir_record::{FlowBatch, SlotTotals};
use weir_store::{
    ChunkReader, Creator, DEFAULT_BLOCK_ROWS, ErrorKind, OnExists, SlotFile, SlotMeta, SlotWriter,
    StoreError, SubdirLayout, TimeRange, WriterOptions, find_unfinished, list_files,
    parse_temp_file_name, slot_path, slot_start,
};

use crate::def::{Kind, Profile, Storage};
use crate::error::{ProfileError, Result};
use crate::eval::{BlockOut, ChannelSet, concat, merge_totals};
use crate::store::{ProfileStore, process_alive};
use crate::trend::{Trend, default_archives, sample_of};

/// Trend files are saved at least this often during a build, bounding
/// what an interruption costs.
const SAVE_EVERY: Duration = Duration::from_secs(2);
/// Blocks handed to the workers per round, per thread: enough to keep
/// every core busy, few enough that progress and saves stay frequent.
const BLOCKS_PER_THREAD: usize = 16;

/// Where a profile's live flows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// Directories listed for slot files.
    pub roots: Vec<PathBuf>,
    /// `ident a or ident b`, when sources are idents rather than
    /// directories.
    pub ident_filter: Option<String>,
}

/// The live directories (or idents) of a profile's sources.
pub fn inputs(store: &ProfileStore, p: &Profile) -> Result<Inputs> {
    if p.sources.is_empty() {
        return Ok(Inputs { roots: vec![store.data().to_path_buf()], ident_filter: None });
    }
    let (dirs, idents): (Vec<&String>, Vec<&String>) =
        p.sources.iter().partition(|s| store.data().join(s).is_dir());
    if idents.is_empty() {
        return Ok(Inputs {
            roots: dirs.iter().map(|s| store.data().join(s)).collect(),
            ident_filter: None,
        });
    }
    if !dirs.is_empty() {
        return Err(ProfileError::Invalid(format!(
            "profile '{}': sources {:?} are directories of {} but {:?} are not; use all \
             directories or all idents",
            p.name,
            dirs,
            store.data().display(),
            idents
        )));
    }
    let f = idents.iter().map(|s| format!("ident {s}")).collect::<Vec<_>>().join(" or ");
    Ok(Inputs { roots: vec![store.data().to_path_buf()], ident_filter: Some(f) })
}

/// The effective filter of each channel (sources' idents and-ed in).
pub fn channel_filters(p: &Profile, inputs: &Inputs) -> Result<Vec<Filter>> {
    let ident = match &inputs.ident_filter {
        Some(t) => Some(Filter::parse(t).map_err(|e| ProfileError::Filter {
            profile: p.name.clone(),
            channel: "(sources)".into(),
            message: e.pretty,
        })?),
        None => None,
    };
    p.channels
        .iter()
        .map(|c| {
            let f = p.channel_filter(c)?;
            Ok(match &ident {
                Some(i) => Filter::from_expr(Expr::and(i.expr().clone(), f.expr().clone())),
                None => f,
            })
        })
        .collect()
}

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Earliest slot (default: the profile's start).
    pub from_s: Option<i64>,
    /// End, exclusive (default: the profile's end, else now).
    pub to_s: Option<i64>,
    /// Worker threads (default: one per core).
    pub threads: Option<usize>,
    /// The current time (seconds); slots not yet over are left alone.
    pub now_s: i64,
    /// Forget the trend series and materialized files first.
    pub rebuild: bool,
}

/// Progress of a build, reported after every round.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildProgress {
    /// Slots done in this run.
    pub done: u64,
    /// Slots this run has to do.
    pub total: u64,
    /// Flows scanned so far.
    pub flows: u64,
}

/// What a build did.
#[derive(Debug, Default)]
pub struct BuildReport {
    /// Slots applied.
    pub slots: u64,
    /// Slot files read.
    pub files: u64,
    /// Flow records scanned.
    pub scanned: u64,
    /// Flows (the flows column) that matched any channel, per channel.
    pub matched: Vec<u64>,
    /// Last slot applied, if any.
    pub last_slot: Option<i64>,
    /// First slot that was not ready (a collector still writes it).
    pub waiting_for: Option<i64>,
    /// Files or blocks that could not be read (the rest was counted).
    pub errors: Vec<StoreError>,
    /// Slot files written (materialized profiles).
    pub written: u64,
    /// Seconds taken.
    pub wall_s: f64,
}

/// Slot files by slot start.
pub type SlotFiles = BTreeMap<i64, Vec<PathBuf>>;

/// The slot files of a profile's sources in `[from, to)`, by slot start,
/// plus the first slot a live writer still holds open.
pub fn live_slots(
    store: &ProfileStore,
    inputs: &Inputs,
    slot_len: u32,
    from: i64,
    to: i64,
) -> Result<(SlotFiles, Option<i64>)> {
    let mut slots: BTreeMap<i64, Vec<PathBuf>> = BTreeMap::new();
    let mut open: Option<i64> = None;
    for root in &inputs.roots {
        if !root.exists() {
            return Err(ProfileError::io(
                root,
                "list live data",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        for e in list_files(root, TimeRange { start_s: from, end_s: to })? {
            // A profiles directory inside the data directory is not live data.
            if e.path.starts_with(store.dir()) {
                continue;
            }
            let s = slot_start(e.name.start_s, slot_len);
            if (from..to).contains(&s) {
                slots.entry(s).or_default().push(e.path);
            }
        }
        for tmp in find_unfinished(root)? {
            let name = tmp.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Some(t) = parse_temp_file_name(name) else { continue };
            if !process_alive(t.pid) {
                continue;
            }
            if let Some(n) = weir_store::parse_slot_file_name(&t.final_name) {
                let s = slot_start(n.start_s, slot_len);
                open = Some(open.map_or(s, |o| o.min(s)));
            }
        }
    }
    Ok((slots, open))
}

/// Loads (or creates) the trend series of every channel.
fn load_trends(store: &ProfileStore, p: &Profile) -> Result<Vec<Trend>> {
    p.channels
        .iter()
        .map(|c| {
            Ok(store
                .trend(&p.name, &c.name)?
                .unwrap_or_else(|| Trend::new(p.slot, &default_archives(p.slot))))
        })
        .collect()
}

fn save_trends(store: &ProfileStore, p: &Profile, trends: &[Trend]) -> Result<()> {
    for (c, t) in p.channels.iter().zip(trends) {
        t.save(&store.trend_path(&p.name, &c.name)?)?;
    }
    Ok(())
}

/// Builds (or brings up to date) a profile over its range. See the module
/// docs.
pub fn build(
    store: &ProfileStore,
    p: &Profile,
    opts: &BuildOptions,
    on_progress: &mut dyn FnMut(&BuildProgress),
) -> Result<BuildReport> {
    let t0 = Instant::now();
    let _lock = store.lock(&p.name)?;
    if opts.rebuild {
        store.reset(p)?;
    }
    let slot_len = p.slot;
    let start = p.start_s().map_err(ProfileError::Invalid)?;
    let end = p.end_s().map_err(ProfileError::Invalid)?;
    let from = slot_start(opts.from_s.map_or(start, |f| f.max(start)), slot_len);
    let mut to = opts.to_s.unwrap_or(i64::MAX).min(end.unwrap_or(i64::MAX));
    // Only slots that are over.
    to = to.min(slot_start(opts.now_s, slot_len));
    let inputs = inputs(store, p)?;
    let channels = ChannelSet::new(channel_filters(p, &inputs)?);
    let mut trends = load_trends(store, p)?;
    let resume = trends.iter().map(|t| t.last_slot().map_or(i64::MIN, |l| l + 1)).min();
    let from = from.max(resume.unwrap_or(i64::MIN));
    let mut report = BuildReport { matched: vec![0; p.channels.len()], ..Default::default() };
    if from >= to {
        report.last_slot = trends.iter().filter_map(Trend::last_slot).min();
        return Ok(report);
    }
    let (mut slots, open) = live_slots(store, &inputs, slot_len, from, to)?;
    if let Some(o) = open {
        slots.retain(|&s, _| s < o);
        report.waiting_for = Some(o);
    }
    let pool = ParPool::new(opts.threads)?;
    let materialize = p.storage == Storage::Materialized;
    let budget = pool.threads() * if materialize { 4 } else { BLOCKS_PER_THREAD };
    let mut progress = BuildProgress { total: slots.len() as u64, ..Default::default() };
    let mut last_save = Instant::now();
    let readers = Scratch::new();
    let slot_list: Vec<(i64, Vec<PathBuf>)> = slots.into_iter().collect();
    let mut i = 0;
    while i < slot_list.len() {
        // A round: whole slots until the block budget is reached.
        let mut round: Vec<(i64, Vec<SlotFile>)> = Vec::new();
        let mut blocks = 0;
        while i < slot_list.len() && (round.is_empty() || blocks < budget) {
            let (s, paths) = &slot_list[i];
            // Opening reads a footer: cheaper in line than as a parallel task.
            let mut files = Vec::new();
            for f in paths.iter().map(SlotFile::open) {
                match f {
                    Ok(f) => {
                        blocks += f.blocks().len();
                        files.push(f);
                    }
                    Err(e) => report.errors.push(e),
                }
            }
            round.push((*s, files));
            i += 1;
        }
        let units: Vec<(usize, usize, usize)> = round
            .iter()
            .enumerate()
            .flat_map(|(si, (_, files))| {
                files
                    .iter()
                    .enumerate()
                    .flat_map(move |(fi, f)| (0..f.blocks().len()).map(move |bi| (si, fi, bi)))
            })
            .collect();
        let outs: Vec<Result<BlockOut, StoreError>> =
            pool.map_with(&units, &readers, ChunkReader::new, |reader, &(si, fi, bi)| {
                let f = &round[si].1[fi];
                let block = f.block(bi)?;
                channels.eval_block(&block, &f.info().ident, reader, materialize)
            });
        // Per slot, per channel totals (and rows), in unit order.
        let mut per_slot: Vec<Vec<SlotTotals>> =
            vec![vec![SlotTotals::default(); channels.len()]; round.len()];
        let mut rows: Vec<Vec<Vec<FlowBatch>>> =
            vec![vec![Vec::new(); if materialize { channels.len() } else { 0 }]; round.len()];
        for (&(si, _, _), out) in units.iter().zip(outs) {
            match out {
                Ok(o) => {
                    report.scanned += o.scanned;
                    progress.flows += o.scanned;
                    for (c, t) in o.totals.iter().enumerate() {
                        merge_totals(&mut per_slot[si][c], t);
                    }
                    for (c, r) in o.rows.into_iter().enumerate() {
                        rows[si][c].extend(r);
                    }
                }
                Err(e) => report.errors.push(e),
            }
        }
        for (si, (s, files)) in round.iter().enumerate() {
            report.files += files.len() as u64;
            if materialize {
                for (c, r) in rows[si].iter().enumerate() {
                    if !r.is_empty() && write_channel_slot(store, p, c, *s, r)? {
                        report.written += 1;
                    }
                }
            }
            for (c, t) in per_slot[si].iter().enumerate() {
                if trends[c].apply(*s, &sample_of(t)) {
                    report.matched[c] += t.all.flows;
                }
            }
            report.slots += 1;
            report.last_slot = Some(*s);
        }
        progress.done += round.len() as u64;
        if last_save.elapsed() >= SAVE_EVERY {
            save_trends(store, p, &trends)?;
            last_save = Instant::now();
        }
        on_progress(&progress);
    }
    save_trends(store, p, &trends)?;
    report.wall_s = t0.elapsed().as_secs_f64();
    Ok(report)
}

/// Writes one channel's rows of one slot; `false` if the file exists
/// already (written by an earlier, interrupted run).
fn write_channel_slot(
    store: &ProfileStore,
    p: &Profile,
    c: usize,
    slot_s: i64,
    rows: &[FlowBatch],
) -> Result<bool> {
    let ch = &p.channels[c];
    let root = store.channel_data(&p.name, &ch.name)?;
    let path = slot_path(&root, SubdirLayout::YearMonthDay, slot_s, p.slot);
    if path.exists() {
        return Ok(false);
    }
    let meta = SlotMeta {
        slot_start_s: slot_s,
        slot_len_s: p.slot,
        ident: ch.name.clone(),
        creator: Creator::Profile,
    };
    let opts = WriterOptions { on_exists: OnExists::Fail, ..Default::default() };
    let mut w = SlotWriter::create(&path, meta, opts)?;
    // Blocks of about the writer's block size from the per-block pieces.
    let (mut lo, mut n) = (0, 0);
    for (i, b) in rows.iter().enumerate() {
        n += b.rows();
        if n >= DEFAULT_BLOCK_ROWS {
            w.write_batch(&concat(&rows[lo..=i]))?;
            (lo, n) = (i + 1, 0);
        }
    }
    if lo < rows.len() {
        w.write_batch(&concat(&rows[lo..]))?;
    }
    match w.finish() {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.kind, ErrorKind::Exists(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// How far a profile is built.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Last slot applied to every channel.
    pub last_slot: Option<i64>,
    /// Fraction of the profile's range built (0..=1).
    pub fraction: f64,
    /// `built 53.9%`, `up to date`, `not built`.
    pub text: String,
}

/// The status of a profile at `now_s`.
pub fn status(store: &ProfileStore, p: &Profile, now_s: i64) -> Result<Status> {
    let mut last: Option<i64> = None;
    let mut missing = false;
    for c in &p.channels {
        match store.trend(&p.name, &c.name)? {
            Some(t) => match t.last_slot() {
                Some(l) => last = Some(last.map_or(l, |x: i64| x.min(l))),
                None => missing = true,
            },
            None => missing = true,
        }
    }
    if missing {
        last = None;
    }
    let start = p.start_s().map_err(ProfileError::Invalid)?;
    let end = p.end_s().map_err(ProfileError::Invalid)?.unwrap_or(now_s);
    let end = slot_start(end.min(now_s), p.slot);
    let done = last.map_or(start, |l| l + i64::from(p.slot));
    let span = (end - start).max(1);
    let fraction = ((done - start) as f64 / span as f64).clamp(0.0, 1.0);
    let text = match last {
        None => "not built".to_string(),
        Some(_) if done >= end && p.kind == Kind::History => "built".to_string(),
        Some(_) if done >= end => "up to date".to_string(),
        Some(_) => format!("built {:.1}%", (fraction * 1000.0).floor() / 10.0),
    };
    Ok(Status { last_slot: last, fraction, text })
}

/// What `weir query --profile` reads: files and filter.
#[derive(Debug, Clone)]
pub struct QueryInput {
    /// Slot files, in time order.
    pub files: Vec<PathBuf>,
    /// The filter to apply (`any` for materialized channels).
    pub filter: Filter,
}

/// The files and filter of a query over a profile (one channel, or all
/// channels or-ed). Shadow profiles read the live data of their sources in
/// the profile's time range through the channels' filters; materialized
/// profiles read their own files (a flow in two channels is in both).
pub fn query_input(store: &ProfileStore, p: &Profile, channel: Option<&str>) -> Result<QueryInput> {
    let chans: Vec<usize> = match channel {
        Some(c) => {
            p.channel(c)?;
            vec![p.channels.iter().position(|x| x.name == c).unwrap_or(0)]
        }
        None => (0..p.channels.len()).collect(),
    };
    let start = p.start_s().map_err(ProfileError::Invalid)?;
    let end = p.end_s().map_err(ProfileError::Invalid)?.unwrap_or(i64::MAX);
    let range = TimeRange { start_s: start, end_s: end };
    if p.storage == Storage::Materialized {
        let mut files = Vec::new();
        for &c in &chans {
            let root = store.channel_data(&p.name, &p.channels[c].name)?;
            if root.is_dir() {
                files.extend(list_files(&root, range)?.into_iter().map(|e| e.path));
            }
        }
        return Ok(QueryInput { files, filter: Filter::any() });
    }
    let inputs = inputs(store, p)?;
    let filters = channel_filters(p, &inputs)?;
    let expr =
        chans.iter().map(|&c| filters[c].expr().clone()).reduce(Expr::or).unwrap_or(Expr::Any);
    let (slots, _) = live_slots(store, &inputs, p.slot, start, end)?;
    let files = slots.into_values().flatten().collect();
    Ok(QueryInput { files, filter: Filter::from_expr(expr) })
}
