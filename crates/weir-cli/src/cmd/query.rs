//! `weir query`: nfdump's command line over weir slot files.
//!
//! The flags are nfdump 1.7's single-letter flags with the same meaning, so
//! an nfdump command line works with `weir query` in its place. This module
//! only turns them into a [`weir_query::QueryPlan`] and a
//! [`weir_print::Printer`]; the engine and the printers do the work.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use clap::Args;
use weir_filter::Filter;
use weir_print::{Format, PrintOptions, Printer, TimeZoneSetting};
use weir_query::{
    AggKey, Bidir, ExecOptions, Mode, QueryError, QueryPlan, RecordRenderer, Report, ScanProgress,
    Section, Sink, SlotFileSink, StatTable, Summary, execute_with,
};
use weir_record::{Field, FlowRecord};
use weir_store::{Compression, DEFAULT_ZSTD_LEVEL, WriterOptions};

use crate::cmd::input::{InputArgs, parse_filter};
use crate::progress::Progress;

/// Arguments of `weir query` (nfdump's flags).
#[derive(Debug, Clone, Default, Args)]
#[command(after_help = "FILTER is nfdump's filter language (docs/FILTER.md); no filter = any.\n\
Examples:\n  weir query -R /flows 'proto udp and port 1434'\n  \
weir query -R /flows -s ip/bytes -n 10\n  \
weir query -R /flows -A srcas,dstas -s record/bytes -n 0 -o 'fmt:%sas %das %byt'")]
pub struct QueryArgs {
    /// Input selection, time window, filter file, --utc.
    #[command(flatten)]
    pub input: InputArgs,
    /// Stop after this many matching records.
    #[arg(short = 'c', value_name = "N")]
    pub limit: Option<u64>,
    /// Aggregate on the 5-tuple (proto, src/dst ip, src/dst port).
    #[arg(short = 'a')]
    pub aggregate: bool,
    /// Aggregate on these keys, e.g. srcip4/24,dstport (implies -a).
    #[arg(short = 'A', value_name = "KEYS")]
    pub agg_keys: Option<String>,
    /// Bidirectional aggregation (a 5-tuple and its reverse are one record).
    #[arg(short = 'b')]
    pub bidir: bool,
    /// Like -b, with the client (higher port) side as source.
    #[arg(short = 'B')]
    pub bidir_guess: bool,
    /// Print the summary of the files from their footers, without scanning.
    #[arg(short = 'I')]
    pub info: bool,
    /// One line per file for gnuplot and spreadsheets, from the footers
    /// (so no filter or profile): `yyyy-mm-dd HH:MM:SS,flows,packets,bytes`
    /// at the slot's start.
    #[arg(short = 'g', conflicts_with = "info")]
    pub gnuplot: bool,
    /// Top-N statistic: ELEMENT[:p][/ORDER[:a|d]]… or record/ORDER; up to 8.
    #[arg(short = 's', value_name = "STAT")]
    pub stats: Vec<String>,
    /// Top N for -s (default 10) and limit for -O/-a output; 0 = all.
    #[arg(short = 'n', value_name = "N")]
    pub top: Option<usize>,
    /// Order printed records: tstart, tend, flows, packets, bytes, pps,
    /// bps, bpp, duration, with :a or :d.
    #[arg(short = 'O', value_name = "ORDER")]
    pub order: Option<String>,
    /// Same as -O tstart (deprecated in nfdump).
    #[arg(short = 'm')]
    pub order_tstart: bool,
    /// Filter applied to aggregated records or statistics before printing.
    #[arg(short = 'P', value_name = "FILTER")]
    pub post: Option<String>,
    /// Output format: line, long, extended, biline, bilong, raw, csv,
    /// json, ndjson, null, fmt:…, csv:… (line6, long6, extended6: full
    /// IPv6 addresses).
    #[arg(short = 'o', value_name = "FORMAT")]
    pub format: Option<String>,
    /// Full IPv6 addresses in every format.
    #[arg(short = '6')]
    pub ipv6_full: bool,
    /// Quiet: no header, no summary.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Plain numbers (no M/G/T scaling).
    #[arg(short = 'N')]
    pub plain: bool,
    /// Write the result (filtered, aggregated or sorted records) to this
    /// slot file instead of printing it.
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// zstd level for -w (nfdump's -z=zstd:N also accepted; other
    /// algorithms map to weir's zstd default).
    #[arg(short = 'z', value_name = "LEVEL", num_args = 0..=1, require_equals = true, default_missing_value = "1")]
    pub compress: Option<String>,
    /// Only check the filter's syntax: exit 0 if it parses, 254 if not.
    #[arg(short = 'Z')]
    pub check_only: bool,
    /// Worker threads (default: one per core).
    #[arg(short = 'W', value_name = "N")]
    pub threads: Option<usize>,
    /// Memory budget for statistics and aggregation before they spill to
    /// temporary files, e.g. 512M, 4G.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Never draw a progress bar (it is drawn on a terminal for long scans).
    #[arg(long)]
    pub no_progress: bool,
    /// Query a profile's data (docs/PROFILES.md): NAME in $WEIR_PROFILES
    /// (default ./profiles) or DIR/NAME.toml; shadow profiles read the live
    /// data under -R/-r (default $WEIR_DATA, else ./flows) through their
    /// channel filters.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// With --profile: only this channel (default: all channels).
    #[arg(long, value_name = "CHANNEL", requires = "profile")]
    pub channel: Option<String>,
    /// The filter (nfdump syntax); words are joined with spaces.
    #[arg(value_name = "FILTER", trailing_var_arg = true, allow_hyphen_values = true)]
    pub filter: Vec<String>,
}

/// Runs `weir query`.
pub fn run(args: &QueryArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let filter = match args.input.filter(&args.filter)? {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let post = match args.post.as_deref().map(|p| parse_filter("-P filter", p, Path::new("."))) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(code)) => return Ok(code),
    };
    if args.check_only {
        return Ok(crate::EXIT_OK);
    }
    let window = args.input.time_window()?;
    let (files, filter) = match &args.profile {
        // --profile: the profile's files; its channel filter and-ed with FILTER.
        Some(p) => {
            let data = args.input.range.as_deref().or(args.input.read.as_deref());
            crate::cmd::profile::query_files(p, args.channel.as_deref(), data, filter)?
        }
        None => (weir_query::select_files(&args.input.spec()?, window.as_ref())?, filter),
    };
    if args.info {
        return crate::cmd::inspect::nfdump_info(&files, out);
    }
    if args.gnuplot {
        if !args.filter.is_empty() || args.input.filter_file.is_some() || args.profile.is_some() {
            bail!("-g prints the totals in the files' footers: it takes no filter or profile");
        }
        return gnuplot(&files, args.input.utc, out);
    }
    let mode = mode(args, post)?;
    let plan = QueryPlan { files, window, filter, mode, threads: args.threads };
    execute(args, &plan, out)
}

/// `-g`: slot start, flows, packets, bytes of every file, from its footer.
fn gnuplot(files: &[PathBuf], utc: bool, out: &mut dyn Write) -> anyhow::Result<u8> {
    use chrono::TimeZone;
    writeln!(out, "# yyyy-mm-dd HH:MM:SS,flows,packets,bytes")?;
    for path in files {
        let f = weir_store::SlotFile::open(path)?;
        let (s, t) = (f.info().slot_start_s, &f.info().totals.all);
        let when = if utc {
            crate::units::fmt_time_s(s)
        } else {
            // The earlier reading of an hour that a clock change repeats.
            chrono::Local
                .timestamp_opt(s, 0)
                .earliest()
                .map_or_else(|| s.to_string(), |d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        };
        writeln!(out, "{when},{},{},{}", t.flows, t.packets, t.bytes)?;
    }
    Ok(crate::EXIT_OK)
}

fn mode(args: &QueryArgs, post: Option<Filter>) -> anyhow::Result<Mode> {
    if args.stats.len() > 8 {
        bail!("at most 8 -s statistics per query, got {}", args.stats.len());
    }
    let keys: Vec<AggKey> = match &args.agg_keys {
        Some(k) => weir_query::parse_agg_keys(k).with_context(|| format!("-A {k}"))?,
        None => Vec::new(),
    };
    let order = match (&args.order, args.order_tstart) {
        (Some(o), _) => Some(weir_query::parse_order(o).with_context(|| format!("-O {o}"))?),
        (None, true) => Some(weir_query::parse_order("tstart").expect("tstart is an order")),
        (None, false) => None,
    };
    if !args.stats.is_empty() {
        let specs = args
            .stats
            .iter()
            .map(|s| weir_query::parse_stat_spec(s).with_context(|| format!("-s {s}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if order.is_some() && specs.iter().any(|s| s.element.is_none()) {
            bail!(
                "-O cannot be combined with -s record (order the statistic with -s record/ORDER)"
            );
        }
        return Ok(Mode::Stats { specs, record_keys: keys, top: args.top.unwrap_or(10), post });
    }
    let bidir = match (args.bidir, args.bidir_guess) {
        (_, true) => Some(Bidir::GuessClient),
        (true, false) => Some(Bidir::Plain),
        _ => None,
    };
    if args.aggregate || args.agg_keys.is_some() || bidir.is_some() {
        return Ok(Mode::Aggregate { keys, bidir, order, top: args.top.filter(|&n| n > 0), post });
    }
    if post.is_some() {
        bail!("-P filters aggregated records or statistics: use it with -a, -A, -b, -B or -s");
    }
    Ok(Mode::List { limit: args.limit, order, top: args.top.filter(|&n| n > 0) })
}

fn exec_options(args: &QueryArgs) -> anyhow::Result<ExecOptions> {
    let mut opts = ExecOptions::default();
    if let Some(m) = &args.memory {
        let bytes = weir_profile::expire::parse_size(m)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--memory {m}"))?;
        opts.memory_budget = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    Ok(opts)
}

/// A progress bar for the scan, drawn by a thread of its own until the
/// first output reaches a terminal (or the scan ends).
struct Bar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    fn start(progress: Arc<ScanProgress>) -> Bar {
        let stop = Arc::new(AtomicBool::new(false));
        let halt = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut bar = Progress::new("blocks", true);
            while !halt.load(Ordering::Relaxed) {
                let planned = progress.planned.load(Ordering::Relaxed);
                if planned > 0 {
                    bar.update(progress.done.load(Ordering::Relaxed), planned);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            bar.finish();
        });
        Bar { stop, thread: Some(thread) }
    }

    fn end(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.end();
    }
}

/// Passes everything to the printer, ending the progress bar before the
/// first line reaches a terminal.
struct BarredSink<'a> {
    inner: &'a mut dyn Sink,
    bar: Option<Bar>,
    stdout_tty: bool,
}

impl BarredSink<'_> {
    fn output(&mut self) {
        if self.stdout_tty {
            self.bar = None;
        }
    }
}

impl Sink for BarredSink<'_> {
    fn columns(&self) -> Option<Vec<Field>> {
        self.inner.columns()
    }
    fn begin_section(&mut self, section: Section) -> std::io::Result<()> {
        self.output();
        self.inner.begin_section(section)
    }
    fn records(&mut self, ident: &str, records: &[FlowRecord]) -> std::io::Result<()> {
        self.output();
        self.inner.records(ident, records)
    }
    fn renderer(&self) -> Option<Arc<dyn RecordRenderer>> {
        self.inner.renderer()
    }
    fn rendered(&mut self, text: &[u8], records: u64) -> std::io::Result<()> {
        self.output();
        self.inner.rendered(text, records)
    }
    fn stat(&mut self, table: &StatTable) -> std::io::Result<()> {
        self.output();
        self.inner.stat(table)
    }
    fn summary(&mut self, summary: &Summary) -> std::io::Result<()> {
        self.bar = None;
        self.inner.summary(summary)
    }
}

/// Runs the plan into `sink`, with a progress bar on stderr when it is a
/// terminal (and `--no-progress` is not given). A listing printed to a
/// terminal gets no bar: its lines are the progress.
fn run_plan(
    args: &QueryArgs,
    plan: &QueryPlan,
    sink: &mut dyn Sink,
    opts: &ExecOptions,
) -> Result<Report, QueryError> {
    let stdout_tty = std::io::stdout().is_terminal();
    let listing = matches!(plan.mode, Mode::List { .. });
    let wanted = !args.no_progress
        && std::io::stderr().is_terminal()
        && !(listing && stdout_tty && args.write.is_none());
    if !wanted {
        return execute_with(plan, sink, opts);
    }
    let progress = Arc::new(ScanProgress::default());
    let mut opts = opts.clone();
    opts.progress = Some(Arc::clone(&progress));
    let mut barred = BarredSink { inner: sink, bar: Some(Bar::start(progress)), stdout_tty };
    let r = execute_with(plan, &mut barred, &opts);
    barred.bar = None;
    r
}

fn execute(args: &QueryArgs, plan: &QueryPlan, out: &mut dyn Write) -> anyhow::Result<u8> {
    let opts = exec_options(args)?;
    let result = if let Some(path) = &args.write {
        let mut wopts = WriterOptions::default();
        if let Some(level) = &args.compress {
            wopts.compression = compression(level)?;
        }
        let mut sink = SlotFileSink::new(path).with_options(wopts);
        run_plan(args, plan, &mut sink, &opts)
    } else {
        let format = output_format(args.format.as_deref(), &plan.mode)?;
        let popts = PrintOptions {
            format,
            plain_numbers: args.plain,
            quiet: args.quiet,
            full_ipv6: args.ipv6_full,
            top_n: args.top.unwrap_or(10),
            timezone: if args.input.utc { TimeZoneSetting::utc() } else { TimeZoneSetting::Local },
        };
        let mut printer = Printer::new(BufWriter::with_capacity(1 << 16, &mut *out), popts);
        let r = run_plan(args, plan, &mut printer, &opts);
        let flushed = printer.into_inner().flush();
        match (r, flushed) {
            (Ok(rep), Err(e)) => Err(QueryError::Sink(e)).map(|()| rep),
            (r, _) => r,
        }
    };
    let report = match result {
        Ok(r) => r,
        Err(QueryError::Sink(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(crate::EXIT_OK);
        }
        Err(e) => return Err(e.into()),
    };
    if report.errors.is_empty() {
        return Ok(crate::EXIT_OK);
    }
    #[allow(clippy::print_stderr)]
    for e in &report.errors {
        eprintln!("weir: {e}");
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "weir: {} file(s) or block(s) could not be read; the answer covers the rest",
            report.errors.len()
        );
    }
    Ok(crate::EXIT_FOUND_PROBLEMS)
}

/// The format: `-o` as given (`-o csv` with `-A` keys becomes nfdump's
/// csv of those keys); without `-o`, `biline` for bidirectional
/// aggregation, nfdump's automatic `fmt:%ts %td <keys> %pkt …` for `-A`
/// keys, else `line`.
fn output_format(given: Option<&str>, mode: &Mode) -> anyhow::Result<Format> {
    let keys: &[AggKey] = match mode {
        Mode::Aggregate { bidir: Some(_), .. } if given.is_none() => {
            return Ok(Format::parse("biline")?);
        }
        Mode::Aggregate { keys, .. } | Mode::Stats { record_keys: keys, .. } => keys,
        Mode::List { .. } => &[],
    };
    match given {
        Some("csv") if !keys.is_empty() => Ok(Format::aggregation(keys, true)),
        Some(f) => Format::parse(f).with_context(|| format!("-o {f}")),
        None if !keys.is_empty() => Ok(Format::aggregation(keys, false)),
        None => Ok(Format::default()),
    }
}

/// `-z` / `-z=zstd:N` / `-z=N`: zstd level for `-w`; nfdump's other
/// algorithms (lzo, lz4, bz2) map to weir's default level.
fn compression(text: &str) -> anyhow::Result<Compression> {
    let t = text.trim().to_ascii_lowercase();
    let level = match t.split_once(':') {
        Some(("zstd", l)) => l.parse::<i32>().context("-z=zstd:LEVEL")?,
        Some(_) | None if ["lzo", "lz4", "bz2", "zstd"].iter().any(|a| t.starts_with(a)) => {
            DEFAULT_ZSTD_LEVEL
        }
        _ => t.parse::<i32>().with_context(|| format!("-z={text}: expected a zstd level"))?,
    };
    if !(0..=22).contains(&level) {
        bail!("-z: zstd levels are 1..=22 (0 = none), got {level}");
    }
    Ok(Compression::from_level(level))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The progress-bar wrapper keeps the printer's worker-side rendering
    /// (a listing on a terminal would otherwise take the slower path) and
    /// passes the rendered text through.
    #[test]
    fn barred_sink_forwards_rendering() {
        let mut out = Vec::new();
        {
            let mut printer = Printer::new(&mut out, PrintOptions::default());
            let mut sink = BarredSink { inner: &mut printer, bar: None, stdout_tty: false };
            assert!(sink.renderer().is_some());
            sink.rendered(b"one line\n", 1).unwrap();
            sink.inner.summary(&Summary::default()).unwrap();
        }
        assert!(String::from_utf8_lossy(&out).contains("one line\n"));
    }
}
