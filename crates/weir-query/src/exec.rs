//! The scan: files and blocks in parallel, pruning, filtering, and the three
//! modes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use weir_filter::{CompiledFilter, Filter};
use weir_record::{Bitmap, Field, FlowBatch, FlowRecord};
use weir_store::{Block, ChunkReader, SlotFile, StoreError};

use crate::agg::{AggTable, Entry, PARTS};
use crate::error::QueryError;
use crate::keys::Col;
use crate::model::{
    Bidir, Counters, Mode, Order, QueryPlan, Section, Sink, StatElement, StatSpec, Summary,
    TimeWindow,
};
use crate::order::{TopN, order_value, rank};
use crate::spill::SpillSet;
use crate::stats::{ElemAcc, SharedStatMap, Spill, finish_in_memory, tables};

/// Default memory budget of the aggregation and statistic maps (1 GiB).
pub const DEFAULT_MEMORY_BUDGET: usize = 1 << 30;

/// Aggregation keys per query (more than nfdump's whole key table).
const MAX_AGG_KEYS: usize = 64;

/// Records handed to [`Sink::records`] at a time.
const CHUNK: usize = 4096;

/// Records built and formatted at a time by a listing's workers (their
/// records stay in the core's cache between building and formatting).
const RENDER_CHUNK: usize = 256;

/// How a query runs (beyond what it asks).
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Bytes the hash maps may take together (split evenly between the
    /// workers) before partial aggregates spill, by hash partition, to
    /// temporary files: element statistics, `-s record`, and `-a`/`-A`
    /// with `-O` and `-n` (a full aggregated listing and bidirectional
    /// aggregation stay in memory).
    pub memory_budget: usize,
    /// Where spill files go (`None` = the system's temporary directory).
    pub spill_dir: Option<PathBuf>,
    /// Live progress, for a progress bar drawn by another thread.
    pub progress: Option<Arc<ScanProgress>>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions { memory_budget: DEFAULT_MEMORY_BUDGET, spill_dir: None, progress: None }
    }
}

/// How far a scan is: blocks planned (known once the footers are read) and
/// blocks done. Updated with relaxed atomics; read from any thread.
#[derive(Debug, Default)]
pub struct ScanProgress {
    /// Blocks the scan will look at (0 until planning is done).
    pub planned: AtomicU64,
    /// Blocks looked at so far.
    pub done: AtomicU64,
}

/// What a query did, besides what it handed to the sink.
#[derive(Debug, Default)]
pub struct Report {
    /// The summary (also handed to [`Sink::summary`]).
    pub summary: Summary,
    /// Non-fatal errors: files that did not open and blocks that did not
    /// decode, each naming the file and offset. The rest was answered.
    pub errors: Vec<StoreError>,
    /// Statistic entries written to spill files (0 = all in memory).
    pub spilled_entries: u64,
    /// With `-c`: the records read in file order until the limit was
    /// reached, what nfdump 1.7.1 prints as "Total records processed" (and
    /// what `Summary::records_processed` then holds). `None` when the limit
    /// was not reached.
    pub read_until_limit: Option<u64>,
}

/// Runs `plan` with the default options. See [`execute_with`].
pub fn execute(plan: &QueryPlan, sink: &mut dyn Sink) -> Result<Report, QueryError> {
    execute_with(plan, sink, &ExecOptions::default())
}

struct OpenFile {
    file: SlotFile,
    ident: String,
}

#[derive(Clone, Copy)]
struct Unit {
    file: usize,
    block: usize,
    ord_base: u64,
}

/// Per-worker scan counters.
#[derive(Default)]
struct Scan {
    passed: u64,
    counters: Counters,
    first: Option<u64>,
    last: u64,
    skipped: u64,
    errors: Vec<(usize, StoreError)>,
    /// Records read before `-c` stopped the scan (file order).
    processed: Option<u64>,
}

impl Scan {
    fn merge(&mut self, o: Scan) {
        self.passed = self.passed.saturating_add(o.passed);
        self.counters.flows = self.counters.flows.saturating_add(o.counters.flows);
        self.counters.packets = self.counters.packets.saturating_add(o.counters.packets);
        self.counters.bytes = self.counters.bytes.saturating_add(o.counters.bytes);
        self.first = match (self.first, o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = self.last.max(o.last);
        self.skipped += o.skipped;
        self.errors.extend(o.errors);
        self.processed = self.processed.or(o.processed);
    }

    /// Counts the selected rows of a batch as passed.
    fn count(&mut self, batch: &FlowBatch, sel: &Bitmap) {
        let n = sel.count_ones() as u64;
        if n == 0 {
            return;
        }
        let (lo, hi, packets, bytes, flows) =
            if n as usize == sel.len() { count_all(batch) } else { count_sel(batch, sel) };
        self.counters.packets = self.counters.packets.saturating_add(packets);
        self.counters.bytes = self.counters.bytes.saturating_add(bytes);
        self.counters.flows = self.counters.flows.saturating_add(flows);
        self.passed += n;
        self.first = Some(self.first.map_or(lo, |f| f.min(lo)));
        self.last = self.last.max(hi);
    }

    fn count_record(&mut self, r: &FlowRecord) {
        self.passed += 1;
        self.counters.packets = self.counters.packets.saturating_add(r.packets);
        self.counters.bytes = self.counters.bytes.saturating_add(r.bytes);
        self.counters.flows = self.counters.flows.saturating_add(r.flows.unwrap_or(1));
        self.first = Some(self.first.map_or(r.first, |f| f.min(r.first)));
        self.last = self.last.max(r.last);
    }
}

/// (min first, max last, packets, bytes, flows) of every row.
fn count_all(batch: &FlowBatch) -> (u64, u64, u64, u64, u64) {
    let rows = batch.rows();
    let sum = |f: Field| -> u64 {
        match Col::of(batch, f) {
            Col::U64(v, None) => v.iter().fold(0u64, |a, x| a.saturating_add(*x)),
            Col::Absent => 0,
            c => (0..rows).map(|i| c.u64_or(i, 0)).fold(0u64, u64::saturating_add),
        }
    };
    let lo = match Col::of(batch, Field::First) {
        Col::U64(v, None) => v.iter().copied().min().unwrap_or(0),
        c => (0..rows).map(|i| c.u64_or(i, 0)).min().unwrap_or(0),
    };
    let hi = match Col::of(batch, Field::Last) {
        Col::U64(v, None) => v.iter().copied().max().unwrap_or(0),
        c => (0..rows).map(|i| c.u64_or(i, 0)).max().unwrap_or(0),
    };
    let flows = match Col::of(batch, Field::Flows) {
        Col::Absent => rows as u64,
        c => (0..rows).map(|i| c.get(i).map_or(1, |v| v as u64)).fold(0u64, u64::saturating_add),
    };
    (lo, hi, sum(Field::Packets), sum(Field::Bytes), flows)
}

/// (min first, max last, packets, bytes, flows) of the selected rows.
fn count_sel(batch: &FlowBatch, sel: &Bitmap) -> (u64, u64, u64, u64, u64) {
    let first = Col::of(batch, Field::First);
    let last = Col::of(batch, Field::Last);
    let packets = Col::of(batch, Field::Packets);
    let bytes = Col::of(batch, Field::Bytes);
    let flows = Col::of(batch, Field::Flows);
    let (mut lo, mut hi, mut p, mut b, mut f) = (u64::MAX, 0u64, 0u64, 0u64, 0u64);
    for i in sel.iter_ones() {
        lo = lo.min(first.u64_or(i, 0));
        hi = hi.max(last.u64_or(i, 0));
        p = p.saturating_add(packets.u64_or(i, 0));
        b = b.saturating_add(bytes.u64_or(i, 0));
        f = f.saturating_add(flows.get(i).map_or(1, |v| v as u64));
    }
    (lo, hi, p, b, f)
}

/// The rows of a block that a filter and a time window select, decoded
/// the way a query decodes them: blocks pruned by their zone maps; the
/// filter's columns first; the output columns only when some row passes.
/// `weir query` runs it on every block; `weir replay` uses it too.
#[derive(Debug, Clone)]
pub struct BlockScan {
    filter: Filter,
    compiled: CompiledFilter,
    window: Option<TimeWindow>,
    /// Columns the filter reads.
    filter_fields: Vec<Field>,
    /// Columns decoded for matching rows (output, ordering, summary).
    out_fields: Vec<Field>,
}

/// What [`BlockScan::scan`] found in a block.
#[derive(Debug)]
pub enum BlockRows {
    /// Skipped by its zone maps: no row can match.
    Pruned,
    /// Read, and no row matched.
    NoMatch,
    /// The block's output columns and the rows that match.
    Rows(FlowBatch, Bitmap),
}

impl BlockScan {
    /// Scans for `filter` within `window`, decoding `out_fields` of
    /// matching blocks.
    pub fn new(filter: &Filter, window: Option<TimeWindow>, out_fields: &[Field]) -> BlockScan {
        BlockScan {
            filter: filter.clone(),
            compiled: filter.compile(),
            window,
            filter_fields: filter.fields(),
            out_fields: dedup(out_fields.to_vec()),
        }
    }

    /// The selected rows of `block` (of the file with `ident`).
    pub fn scan(
        &self,
        block: &Block<'_>,
        ident: &str,
        reader: &mut ChunkReader,
    ) -> Result<BlockRows, StoreError> {
        let stats = block.stats();
        if !self.filter.prune(&stats) {
            return Ok(BlockRows::Pruned);
        }
        let mut window_all = true;
        if let Some(w) = &self.window {
            let fmin = stats.zone(Field::First).map_or(0, |z| z.min as u64);
            let lmax = stats.zone(Field::Last).map_or(0, |z| z.max as u64);
            if !w.may_overlap(fmin, lmax) {
                return Ok(BlockRows::Pruned);
            }
            window_all = w.covers(fmin, lmax);
        }
        let rows = block.rows();
        let eval = !self.filter.is_any();
        if !eval && window_all {
            let batch = block.read(&self.out_fields, reader)?;
            return Ok(BlockRows::Rows(batch, Bitmap::ones(rows)));
        }
        let mut want = self.filter_fields.clone();
        if !window_all {
            want.extend([Field::First, Field::Last]);
        }
        let mut batch = block.read(&want, reader)?;
        let mut sel = if eval {
            let mut sel = Bitmap::zeros(rows);
            self.compiled.eval(&batch, ident, &mut sel);
            sel
        } else {
            Bitmap::ones(rows)
        };
        if !window_all && let Some(w) = &self.window {
            let first = Col::of(&batch, Field::First);
            let last = Col::of(&batch, Field::Last);
            let drop: Vec<usize> = sel
                .iter_ones()
                .filter(|&i| !w.contains(first.u64_or(i, 0), last.u64_or(i, 0)))
                .collect();
            for i in drop {
                sel.set(i, false);
            }
        }
        if sel.count_ones() == 0 {
            weir_store::recycle(batch);
            return Ok(BlockRows::NoMatch);
        }
        let missing: Vec<Field> =
            self.out_fields.iter().copied().filter(|f| batch.column(*f).is_none()).collect();
        if !missing.is_empty() {
            let mut extra = block.read(&missing, reader)?;
            for f in missing {
                if let Some(c) = extra.take_column(f) {
                    batch.set_column(f, c);
                }
            }
        }
        Ok(BlockRows::Rows(batch, sel))
    }
}

/// What every worker shares.
struct Ctx<'a> {
    files: &'a [OpenFile],
    blocks: BlockScan,
    /// Blocks done, for progress bars.
    progress: Option<&'a ScanProgress>,
}

/// The columns the summary needs.
const SUMMARY_FIELDS: [Field; 5] =
    [Field::First, Field::Last, Field::Packets, Field::Bytes, Field::Flows];

impl Ctx<'_> {
    /// Reads, prunes and filters one block: the batch (with the output
    /// columns) and the rows that pass, or `None` when none pass.
    fn scan(
        &self,
        u: Unit,
        reader: &mut ChunkReader,
        scan: &mut Scan,
    ) -> Option<(FlowBatch, Bitmap)> {
        let r = self.scan_kept(u, reader, scan);
        // The batch owns its values: the block's mapped pages can leave the
        // resident set, so a scan's memory does not grow with file size.
        self.files[u.file].file.release_block(u.block);
        r
    }

    /// [`Ctx::scan`] without releasing the block's pages: the caller
    /// releases a window of blocks at once ([`Ctx::release`]).
    fn scan_kept(
        &self,
        u: Unit,
        reader: &mut ChunkReader,
        scan: &mut Scan,
    ) -> Option<(FlowBatch, Bitmap)> {
        let r = match self.scan_inner(u, reader, scan) {
            Ok(r) => r,
            Err(e) => {
                scan.errors.push((u.file, e));
                None
            }
        };
        if let Some(p) = self.progress {
            p.done.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Releases the mapped pages of a window of blocks scanned with
    /// [`Ctx::scan_kept`]: one call per file instead of one per block
    /// (each call makes every core drop its TLB entries).
    fn release(&self, w: &[Unit]) {
        let mut start = 0;
        while start < w.len() {
            let f = w[start].file;
            let mut end = start;
            let (mut lo, mut hi) = (usize::MAX, 0);
            while end < w.len() && w[end].file == f {
                lo = lo.min(w[end].block);
                hi = hi.max(w[end].block);
                end += 1;
            }
            self.files[f].file.release_blocks(lo..hi + 1);
            start = end;
        }
    }

    fn scan_inner(
        &self,
        u: Unit,
        reader: &mut ChunkReader,
        scan: &mut Scan,
    ) -> Result<Option<(FlowBatch, Bitmap)>, StoreError> {
        let of = &self.files[u.file];
        let block = of.file.block(u.block)?;
        Ok(match self.blocks.scan(&block, &of.ident, reader)? {
            BlockRows::Pruned => {
                scan.skipped += 1;
                None
            }
            BlockRows::NoMatch => None,
            BlockRows::Rows(batch, sel) => Some((batch, sel)),
        })
    }
}

fn sink_err(e: std::io::Error) -> QueryError {
    QueryError::Sink(e)
}

fn dedup(mut v: Vec<Field>) -> Vec<Field> {
    v.sort_unstable();
    v.dedup();
    v
}

/// Runs `plan`: scans its files in parallel (a local pool of
/// `plan.threads` workers), and hands the result to `sink` in a
/// deterministic order. Files that do not open and blocks that do not
/// decode are reported in [`Report::errors`] while the rest is answered;
/// only sink and spill failures abort.
pub fn execute_with(
    plan: &QueryPlan,
    sink: &mut dyn Sink,
    opts: &ExecOptions,
) -> Result<Report, QueryError> {
    let t0 = Instant::now();
    let too_many = |keys: &[crate::model::AggKey]| keys.len() > MAX_AGG_KEYS;
    match &plan.mode {
        Mode::Aggregate { keys, .. } | Mode::Stats { record_keys: keys, .. } if too_many(keys) => {
            return Err(QueryError::Plan(format!(
                "{} aggregation keys: at most {MAX_AGG_KEYS}",
                keys.len()
            )));
        }
        _ => {}
    }
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = plan.threads {
        builder = builder.num_threads(n.max(1));
    }
    let pool = builder.build().map_err(|e| QueryError::Threads(e.to_string()))?;
    let threads = pool.current_num_threads();

    // Open the files (footer only) and drop those the window excludes.
    let opened: Vec<Result<SlotFile, StoreError>> =
        pool.install(|| plan.files.par_iter().map(SlotFile::open).collect());
    let mut report = Report::default();
    let mut files = Vec::new();
    let mut summary = Summary::default();
    let mut window: Option<(u64, u64)> = None;
    for f in opened {
        let file = match f {
            Ok(f) => f,
            Err(e) => {
                report.errors.push(e);
                continue;
            }
        };
        let t = file.info().totals;
        if let Some(w) = &plan.window
            && (t.all.flows == 0 || !w.may_overlap(t.first_ms, t.last_ms))
        {
            continue;
        }
        summary.files += 1;
        summary.bytes_read += file.len();
        summary.records_processed += file.rows();
        if t.all.flows > 0 {
            let (mut lo, mut hi) = (t.first_ms, t.last_ms);
            if let Some(w) = &plan.window {
                lo = w.start_ms.map_or(lo, |s| lo.max(s));
                hi = w.end_ms.map_or(hi, |e| hi.min(e));
            }
            window = Some(match window {
                Some((a, b)) => (a.min(lo), b.max(hi)),
                None => (lo, hi),
            });
        }
        let ident = file.info().ident.clone();
        files.push(OpenFile { file, ident });
    }
    summary.window = window;

    let sink_cols = sink.columns();
    // Counting every record of a file needs no block: its footer has the
    // totals (a plain listing with `any`, nothing printed, no -c).
    let footer_only = plan.filter.is_any()
        && sink_cols.is_none()
        && matches!(plan.mode, Mode::List { limit: None, order: None, .. });
    let mut from_footers = Scan::default();
    let mut units = Vec::new();
    let mut ord = 0u64;
    for (fi, of) in files.iter().enumerate() {
        let t = of.file.info().totals;
        if footer_only && plan.window.is_none_or(|w| w.covers(t.first_ms, t.last_ms)) {
            from_footers.passed += of.file.rows();
            from_footers.counters.flows = from_footers.counters.flows.saturating_add(t.all.flows);
            from_footers.counters.packets =
                from_footers.counters.packets.saturating_add(t.all.packets);
            from_footers.counters.bytes = from_footers.counters.bytes.saturating_add(t.all.bytes);
            if t.all.flows > 0 {
                from_footers.first =
                    Some(from_footers.first.map_or(t.first_ms, |f| f.min(t.first_ms)));
                from_footers.last = from_footers.last.max(t.last_ms);
            }
            continue;
        }
        for (bi, b) in of.file.blocks().iter().enumerate() {
            units.push(Unit { file: fi, block: bi, ord_base: ord });
            ord += u64::from(b.rows);
        }
    }

    let mut out_fields: Vec<Field> = SUMMARY_FIELDS.to_vec();
    match &plan.mode {
        Mode::List { order, .. } => {
            if let Some(c) = &sink_cols {
                out_fields.extend(c);
            }
            if order.is_some() {
                out_fields.extend([Field::OutPackets, Field::OutBytes]);
            }
        }
        Mode::Aggregate { keys, bidir, .. } => {
            out_fields.extend(AggTable::new(keys, *bidir).fields());
        }
        Mode::Stats { specs, record_keys, .. } => {
            out_fields.push(Field::Proto);
            for s in specs {
                match &s.element {
                    Some(e) => out_fields.extend(e.fields),
                    None => out_fields.extend(AggTable::new(record_keys, None).fields()),
                }
            }
        }
    }
    let ctx = Ctx {
        files: &files,
        blocks: BlockScan::new(&plan.filter, plan.window, &out_fields),
        progress: opts.progress.as_deref(),
    };
    if let Some(p) = ctx.progress {
        p.planned.store(units.len() as u64, Ordering::Relaxed);
    }

    let scan = match &plan.mode {
        Mode::List { limit, order, top } => {
            run_list(&ctx, &pool, threads, &units, sink, sink_cols.is_some(), *limit, *order, *top)?
        }
        Mode::Aggregate { keys, bidir, order, top, post } => {
            // A top-N of an order can spill beyond the budget (a full
            // listing needs every record; bidirectional tables stay whole).
            let spill = SpillSet::new(opts.spill_dir.clone());
            let can_spill = order.is_some() && top.is_some_and(|n| n > 0) && bidir.is_none();
            let enforce = |t: &mut AggTable| -> Result<(), QueryError> {
                if can_spill && t.memory() > opts.memory_budget && !t.is_empty() {
                    t.spill_into(&spill)?;
                }
                Ok(())
            };
            // Window by window: every block is aggregated on its own in
            // parallel, then the window's tables are absorbed partition by
            // partition in parallel (no table is built twice).
            let mut scan = Scan::default();
            let mut table = AggTable::new(keys, *bidir);
            let readers = crate::par::Scratch::new();
            for w in units.chunks((threads * 4).max(4)) {
                let locals: Vec<(Scan, AggTable)> = pool.install(|| {
                    w.par_iter()
                        .map_init(
                            || readers.lease(ChunkReader::new),
                            |reader, u| {
                                let mut s = Scan::default();
                                let mut t = AggTable::new(keys, *bidir);
                                if let Some((batch, sel)) = ctx.scan(*u, reader, &mut s) {
                                    s.count(&batch, &sel);
                                    t.add_batch(&batch, &sel, u.ord_base);
                                    weir_store::recycle(batch);
                                }
                                (s, t)
                            },
                        )
                        .collect()
                });
                let mut tables = Vec::with_capacity(locals.len());
                for (s, t) in locals {
                    scan.merge(s);
                    tables.push(t);
                }
                pool.install(|| table.absorb(tables));
                enforce(&mut table)?;
            }
            let print = sink_cols.is_some();
            if spill.used()
                && let Some(o) = order
            {
                let mut lists = table.finish_spilled(&spill, &[*o], *top, post.as_ref(), None)?;
                report.spilled_entries = spill.entries();
                sink.begin_section(Section::Records).map_err(sink_err)?;
                if print && let Some(recs) = lists.pop() {
                    for c in recs.chunks(CHUNK) {
                        sink.records("", c).map_err(sink_err)?;
                    }
                }
            } else {
                let out = TableOut { table: &table, bidir: *bidir, post: post.as_ref() };
                out.emit(&pool, sink, *order, *top, Section::Records, print)?;
            }
            scan
        }
        Mode::Stats { specs, record_keys, top, post } => {
            let (scan, spilled) = run_stats(
                &ctx,
                &pool,
                threads,
                &units,
                sink,
                specs,
                record_keys,
                *top,
                post.as_ref(),
                opts,
                sink_cols.is_some(),
            )?;
            report.spilled_entries = spilled;
            scan
        }
    };

    let mut scan = scan;
    scan.merge(from_footers);
    summary.passed = scan.counters;
    summary.records_passed = scan.passed;
    summary.first_ms = scan.first.unwrap_or(0);
    summary.last_ms = scan.last;
    summary.blocks_skipped = scan.skipped;
    report.read_until_limit = scan.processed;
    if let Some(n) = scan.processed {
        summary.records_processed = n;
    }
    let mut errs = scan.errors;
    errs.sort_by_key(|(f, e)| (*f, e.offset));
    report.errors.extend(errs.into_iter().map(|(_, e)| e));
    summary.wall_s = t0.elapsed().as_secs_f64();
    sink.summary(&summary).map_err(sink_err)?;
    report.summary = summary;
    Ok(report)
}

/// Builds the records of `rows` into `buf`. `buf` and `set` (the fields
/// `buf`'s records have been given) are reused between calls: records are
/// overwritten field by field instead of being made afresh.
fn materialise_into(
    batch: &FlowBatch,
    rows: &[usize],
    buf: &mut Vec<FlowRecord>,
    set: &mut Vec<Field>,
) {
    buf.truncate(rows.len());
    for &f in set.iter() {
        if batch.column(f).is_none() {
            for r in buf.iter_mut() {
                r.clear(f);
            }
        }
    }
    buf.resize(rows.len(), FlowRecord::default());
    set.clear();
    for f in batch.fields() {
        set.push(f);
        match Col::of(batch, f) {
            Col::U64(v, None) => {
                for (r, &i) in buf.iter_mut().zip(rows) {
                    r.set(f, u128::from(v[i]));
                }
            }
            col => {
                for (r, &i) in buf.iter_mut().zip(rows) {
                    match col.get(i) {
                        Some(v) => r.set(f, v),
                        None => r.clear(f),
                    }
                }
            }
        }
    }
}

/// The order value of row `i` computed from the columns.
fn row_order_value(key: crate::model::OrderKey, cols: &[Col<'_>; 7], i: usize) -> u128 {
    let [first, last, packets, bytes, opk, oby, flows] = cols;
    crate::order::counters_value(
        key,
        first.u64_or(i, 0),
        last.u64_or(i, 0),
        flows.get(i).map_or(1, |v| v as u64),
        packets.u64_or(i, 0).saturating_add(opk.u64_or(i, 0)),
        bytes.u64_or(i, 0).saturating_add(oby.u64_or(i, 0)),
    )
}

/// What a block of a listing hands to the thread that writes in order.
enum Listed {
    /// Nothing to hand over (no row passed, or no records are wanted).
    Nothing,
    /// The batch and the rows that passed.
    Batch(FlowBatch, Bitmap),
    /// The sink's text of the rows that passed, and their number.
    Text(Vec<u8>, u64),
}

/// One block's result in a listing: its counters and what it lists.
type ListOut = (Scan, Listed, Unit);

/// Text buffers kept for reuse by a listing's workers (a block's text is
/// often megabytes: allocating it fresh each time costs page faults).
const SPARE_TEXTS: usize = 32;

#[allow(clippy::too_many_arguments)]
fn run_list(
    ctx: &Ctx<'_>,
    pool: &rayon::ThreadPool,
    threads: usize,
    units: &[Unit],
    sink: &mut dyn Sink,
    print: bool,
    limit: Option<u64>,
    order: Option<Order>,
    top: Option<usize>,
) -> Result<Scan, QueryError> {
    let mut scan = Scan::default();
    if let (Some(order), None) = (order, limit) {
        // Sorted: every worker keeps its best records, merged at the end.
        // rayon makes a fold state per split of the work: the readers
        // (a zstd context and a block-sized buffer each) are leased.
        let n = top;
        let readers = crate::par::Scratch::new();
        let (s, best) = pool.install(|| {
            units
                .par_iter()
                .fold(
                    || (Scan::default(), TopN::new(n), readers.lease(ChunkReader::new)),
                    |(mut scan, mut best, mut reader), u| {
                        if let Some((batch, sel)) = ctx.scan(*u, &mut reader, &mut scan) {
                            scan.count(&batch, &sel);
                            let cols = [
                                Field::First,
                                Field::Last,
                                Field::Packets,
                                Field::Bytes,
                                Field::OutPackets,
                                Field::OutBytes,
                                Field::Flows,
                            ]
                            .map(|f| Col::of(&batch, f));
                            for i in sel.iter_ones() {
                                let v = row_order_value(order.key, &cols, i);
                                let key = (rank(order, v), u.ord_base + i as u64);
                                if best.would_keep(&key) {
                                    best.push(key, (u.file, batch.record(i)));
                                }
                            }
                            weir_store::recycle(batch);
                        }
                        (scan, best, reader)
                    },
                )
                .map(|(s, b, _)| (s, b))
                .reduce(
                    || (Scan::default(), TopN::new(n)),
                    |(mut s1, mut b1), (s2, b2)| {
                        s1.merge(s2);
                        b1.merge(b2);
                        (s1, b1)
                    },
                )
        });
        scan.merge(s);
        sink.begin_section(Section::Records).map_err(sink_err)?;
        let best = best.into_sorted();
        if print {
            let mut start = 0;
            while start < best.len() {
                let f = best[start].0;
                let mut end = start;
                while end < best.len() && best[end].0 == f && end - start < CHUNK {
                    end += 1;
                }
                let chunk: Vec<FlowRecord> =
                    best[start..end].iter().map(|(_, r)| r.clone()).collect();
                sink.records(&ctx.files[f].ident, &chunk).map_err(sink_err)?;
                start = end;
            }
        }
        return Ok(scan);
    }

    // File order: windows of blocks are scanned in parallel while the
    // previous window is handed to the sink on this thread. With -c and -O
    // (nfdump): the first `limit` matching records, then sorted.
    sink.begin_section(Section::Records).map_err(sink_err)?;
    let need_records = print || limit.is_some();
    // A plain listing is formatted by the workers, block by block, when
    // the sink can; this thread only writes the text in order.
    let renderer = if print && limit.is_none() && order.is_none() { sink.renderer() } else { None };
    let spare_texts: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
    // Bytes of text per record seen last, to size the next block's buffer.
    let text_per_record = AtomicU64::new(128);
    let workers = crate::par::Scratch::new();
    let compute = |w: &[Unit]| -> Vec<ListOut> {
        let out = w
            .par_iter()
            .map_init(
                || workers.lease(|| (ChunkReader::new(), Vec::new(), Vec::new(), Vec::new())),
                |work, u| {
                    let (reader, recs, set, rows) = &mut **work;
                    let mut s = Scan::default();
                    let Some((batch, sel)) = ctx.scan_kept(*u, reader, &mut s) else {
                        return (s, Listed::Nothing, *u);
                    };
                    if !need_records {
                        s.count(&batch, &sel);
                        weir_store::recycle(batch);
                        return (s, Listed::Nothing, *u);
                    }
                    let Some(r) = &renderer else {
                        return (s, Listed::Batch(batch, sel), *u);
                    };
                    s.count(&batch, &sel);
                    let ident = &ctx.files[u.file].ident;
                    let mut text =
                        spare_texts.lock().ok().and_then(|mut v| v.pop()).unwrap_or_default();
                    let per = text_per_record.load(Ordering::Relaxed) as usize;
                    text.reserve(sel.count_ones() * (per + 8));
                    let mut n = 0u64;
                    let mut ones = sel.iter_ones();
                    loop {
                        rows.clear();
                        rows.extend(ones.by_ref().take(RENDER_CHUNK));
                        if rows.is_empty() {
                            break;
                        }
                        n += rows.len() as u64;
                        materialise_into(&batch, rows, recs, set);
                        r.render(ident, recs, &mut text);
                    }
                    weir_store::recycle(batch);
                    if let Some(per) = (text.len() as u64).checked_div(n) {
                        text_per_record.store(per, Ordering::Relaxed);
                    }
                    (s, Listed::Text(text, n), *u)
                },
            )
            .collect();
        ctx.release(w);
        out
    };
    let chunks: Vec<&[Unit]> = units.chunks((threads * 4).max(4)).collect();
    let next_slot: std::sync::Mutex<Option<Vec<ListOut>>> = std::sync::Mutex::new(None);
    let mut current = chunks.first().map(|w| pool.install(|| compute(w)));
    let mut left = limit;
    let mut buf = Vec::new();
    let mut buf_set = Vec::new();
    let mut rows = Vec::with_capacity(CHUNK);
    let mut sorted: Vec<((u128, u64), usize, FlowRecord)> = Vec::new();
    let mut k = 1;
    while let Some(cur) = current.take() {
        let next = chunks.get(k).copied();
        k += 1;
        let done = pool.in_place_scope(|sc| -> Result<bool, QueryError> {
            if let Some(w) = next {
                let slot = &next_slot;
                let compute = &compute;
                sc.spawn(move |_| {
                    let r = compute(w);
                    if let Ok(mut g) = slot.lock() {
                        *g = Some(r);
                    }
                });
            }
            for (s, m, u) in cur {
                scan.merge(s);
                let (batch, sel) = match m {
                    Listed::Nothing => continue,
                    Listed::Text(mut text, n) => {
                        sink.rendered(&text, n).map_err(sink_err)?;
                        text.clear();
                        if let Ok(mut v) = spare_texts.lock()
                            && v.len() < SPARE_TEXTS
                        {
                            v.push(text);
                        }
                        continue;
                    }
                    Listed::Batch(batch, sel) => (batch, sel),
                };
                let ident = &ctx.files[u.file].ident;
                let mut ones = sel.iter_ones();
                loop {
                    let room = left.map_or(CHUNK, |l| (l as usize).min(CHUNK));
                    rows.clear();
                    rows.extend(ones.by_ref().take(room));
                    let Some(&last_row) = rows.last() else { break };
                    materialise_into(&batch, &rows, &mut buf, &mut buf_set);
                    for r in &buf {
                        scan.count_record(r);
                    }
                    if let Some(o) = order {
                        for (r, &i) in buf.iter().zip(&rows) {
                            let key = (rank(o, order_value(o.key, r)), u.ord_base + i as u64);
                            sorted.push((key, u.file, r.clone()));
                        }
                    } else if print {
                        sink.records(ident, &buf).map_err(sink_err)?;
                    }
                    if let Some(l) = &mut left {
                        *l -= rows.len() as u64;
                        if *l == 0 {
                            // nfdump counts the records read up to here.
                            scan.processed = Some(u.ord_base + last_row as u64 + 1);
                            return Ok(true);
                        }
                    }
                }
                weir_store::recycle(batch);
            }
            Ok(false)
        })?;
        if done {
            break;
        }
        current = next_slot.lock().ok().and_then(|mut g| g.take());
    }
    if order.is_some() {
        sorted.sort_by_key(|x| x.0);
        sorted.truncate(top.filter(|n| *n > 0).unwrap_or(usize::MAX));
        if print {
            let mut start = 0;
            while start < sorted.len() {
                let f = sorted[start].1;
                let mut end = start;
                while end < sorted.len() && sorted[end].1 == f && end - start < CHUNK {
                    end += 1;
                }
                buf.clear();
                buf_set.clear();
                buf.extend(sorted[start..end].iter().map(|x| x.2.clone()));
                sink.records(&ctx.files[f].ident, &buf).map_err(sink_err)?;
                start = end;
            }
        }
    }
    Ok(scan)
}

/// An aggregation result on its way to the sink.
struct TableOut<'a> {
    table: &'a AggTable,
    bidir: Option<Bidir>,
    post: Option<&'a Filter>,
}

impl TableOut<'_> {
    /// Filters (`-P`), orders (`-O`, else first seen) and limits (`-n`) the
    /// aggregated records, then hands them over in chunks. Only the records
    /// handed over are built.
    fn emit(
        &self,
        pool: &rayon::ThreadPool,
        sink: &mut dyn Sink,
        order: Option<Order>,
        top: Option<usize>,
        section: Section,
        print: bool,
    ) -> Result<(), QueryError> {
        let table = self.table;
        let top = top.filter(|n| *n > 0);
        let keep = |e: Entry| self.post.is_none_or(|p| p.matches(&table.record(e, self.bidir), ""));
        let chosen: Vec<Entry> = pool.install(|| match order {
            Some(o) => (0..PARTS)
                .into_par_iter()
                .map(|p| {
                    let mut t = TopN::new(top);
                    for e in table.part_entries(p) {
                        let a = table.acc(e);
                        let v = crate::agg::acc_order_value(o.key, a);
                        let key = (rank(o, v), a.ord);
                        if t.would_keep(&key) && keep(e) {
                            t.push(key, e);
                        }
                    }
                    t
                })
                .reduce(
                    || TopN::new(top),
                    |mut a, b| {
                        a.merge(b);
                        a
                    },
                )
                .into_sorted(),
            None => {
                let mut v: Vec<(u64, Entry)> = (0..PARTS)
                    .into_par_iter()
                    .flat_map_iter(|p| {
                        table.part_entries(p).filter(|e| keep(*e)).map(|e| (table.acc(e).ord, e))
                    })
                    .collect();
                v.par_sort_unstable_by_key(|x| x.0);
                v.truncate(top.unwrap_or(usize::MAX));
                v.into_iter().map(|x| x.1).collect()
            }
        });
        sink.begin_section(section).map_err(sink_err)?;
        if print {
            let mut buf = Vec::with_capacity(CHUNK.min(chosen.len()));
            for chunk in chosen.chunks(CHUNK) {
                buf.clear();
                buf.extend(chunk.iter().map(|e| table.record(*e, self.bidir)));
                sink.records("", &buf).map_err(sink_err)?;
            }
        }
        Ok(())
    }
}

/// Per-worker state of a statistics run.
struct StatsWork {
    scan: Scan,
    elems: Vec<ElemAcc>,
    records: Option<AggTable>,
}

#[allow(clippy::too_many_arguments)]
fn run_stats(
    ctx: &Ctx<'_>,
    pool: &rayon::ThreadPool,
    threads: usize,
    units: &[Unit],
    sink: &mut dyn Sink,
    specs: &[StatSpec],
    record_keys: &[crate::model::AggKey],
    top: usize,
    post: Option<&Filter>,
    opts: &ExecOptions,
    print: bool,
) -> Result<(Scan, u64), QueryError> {
    let elements: Vec<(StatElement, bool)> =
        specs.iter().filter_map(|s| s.element.map(|e| (e, s.per_proto))).collect();
    let want_records = specs.iter().any(|s| s.element.is_none());
    let spills: Vec<Spill> = elements.iter().map(|_| Spill::new(opts.spill_dir.clone())).collect();
    let budget = opts.memory_budget.max(1);
    let new_work = || StatsWork {
        scan: Scan::default(),
        elems: elements.iter().map(|_| ElemAcc::new()).collect(),
        records: want_records.then(|| AggTable::new(record_keys, None)),
    };
    let rec_spill = SpillSet::new(opts.spill_dir.clone());
    // Spills the biggest maps until they are within the budget.
    let enforce = |w: &mut StatsWork| -> Result<(), QueryError> {
        loop {
            let rec = w.records.as_ref().map_or(0, AggTable::memory);
            let used: usize = w.elems.iter().map(|e| e.map.memory()).sum::<usize>() + rec;
            if used <= budget {
                return Ok(());
            }
            let big = w.elems.iter().enumerate().max_by_key(|(_, e)| e.map.memory());
            match (big, &mut w.records) {
                (Some((i, e)), _) if e.map.memory() >= rec => {
                    if e.map.is_empty() {
                        return Ok(());
                    }
                    spills[i].spill(&mut w.elems[i].map)?;
                }
                (_, Some(t)) if rec > 0 && !t.is_empty() => t.spill_into(&rec_spill)?,
                _ => return Ok(()),
            }
        }
    };
    // Window by window: every block is counted on its own in parallel and
    // its element maps are merged into the shared ones right away (a lock
    // per partition); the window's record tables are absorbed partition by
    // partition in parallel.
    let mut main = new_work();
    let readers = crate::par::Scratch::new();
    for w in units.chunks((threads * 4).max(4)) {
        let shared: Vec<SharedStatMap> =
            main.elems.iter_mut().map(|e| SharedStatMap::new(std::mem::take(&mut e.map))).collect();
        let locals: Vec<(Scan, Option<AggTable>)> = pool.install(|| {
            w.par_iter()
                .map_init(
                    || readers.lease(ChunkReader::new),
                    |reader, u| {
                        let mut lw = new_work();
                        if let Some((batch, sel)) = ctx.scan(*u, reader, &mut lw.scan) {
                            lw.scan.count(&batch, &sel);
                            for (acc, (el, pp)) in lw.elems.iter_mut().zip(&elements) {
                                acc.add_batch(el, *pp, &batch, &sel);
                            }
                            if let Some(t) = &mut lw.records {
                                t.add_batch(&batch, &sel, u.ord_base);
                            }
                            weir_store::recycle(batch);
                        }
                        for (sh, acc) in shared.iter().zip(lw.elems) {
                            sh.merge(acc.map, u.block.wrapping_mul(37));
                        }
                        (lw.scan, lw.records)
                    },
                )
                .collect()
        });
        for (acc, sh) in main.elems.iter_mut().zip(shared) {
            acc.map = sh.into_map();
        }
        let mut tables = Vec::new();
        for (s, t) in locals {
            main.scan.merge(s);
            tables.extend(t);
        }
        if let Some(t) = &mut main.records {
            pool.install(|| t.absorb(tables));
        }
        enforce(&mut main)?;
    }
    let work = main;
    let mut spilled = 0;
    let topn = (top > 0).then_some(top);
    let mut elems = work.elems.into_iter();
    let mut spill_iter = spills.iter();
    let mut records = work.records;
    // A spilled record table is finished once for every order asked.
    let mut spilled_records: Vec<(Order, Vec<FlowRecord>)> = Vec::new();
    if rec_spill.used()
        && let Some(table) = records.take()
    {
        let mut orders: Vec<Order> = Vec::new();
        for s in specs.iter().filter(|s| s.element.is_none()) {
            for o in &s.orders {
                if !orders.contains(o) {
                    orders.push(*o);
                }
            }
        }
        let lists = table.finish_spilled(&rec_spill, &orders, topn, post, None)?;
        spilled += rec_spill.entries();
        spilled_records = orders.into_iter().zip(lists).collect();
    }
    for spec in specs {
        match spec.element {
            Some(el) => {
                let (Some(acc), Some(spill)) = (elems.next(), spill_iter.next()) else {
                    continue;
                };
                let (rows, distinct) = if spill.used() {
                    let r = spill.finish(acc.map, &el, spec.per_proto, &spec.orders, topn, post)?;
                    spilled += spill.entries();
                    r
                } else {
                    let d = acc.map.len() as u64;
                    (
                        pool.install(|| {
                            finish_in_memory(&acc, &el, spec.per_proto, &spec.orders, topn, post)
                        }),
                        d,
                    )
                };
                for t in
                    tables(el, spec.per_proto, &spec.orders, rows, work.scan.counters, distinct)
                {
                    sink.stat(&t).map_err(sink_err)?;
                }
            }
            None => {
                for order in &spec.orders {
                    let section = Section::TopRecords { n: top, order: *order };
                    if let Some(table) = &records {
                        let out = TableOut { table, bidir: None, post };
                        out.emit(pool, sink, Some(*order), topn, section, print)?;
                    } else if let Some((_, recs)) = spilled_records.iter().find(|(o, _)| o == order)
                    {
                        sink.begin_section(section).map_err(sink_err)?;
                        if print {
                            for c in recs.chunks(CHUNK) {
                                sink.records("", c).map_err(sink_err)?;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok((work.scan, spilled))
}
