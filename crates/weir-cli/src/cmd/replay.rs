//! `weir replay`: nfreplay's role. Reads slot files selected as `weir query`
//! selects them (`-r`/`-R`/`-M`, `-t`), keeps the flows an nfdump filter
//! matches, and sends them to a collector as NetFlow v9 (default), IPFIX
//! or v5 datagrams, paced at a rate, at a multiple of the flows' own
//! times, or as fast as possible.
//!
//! Records are read file by file, block by block, in file order; blocks
//! whose zone maps exclude the filter or the window are skipped. The
//! sending (encoding, pacing, the socket) is
//! [`weir_collect::send::send`], the engine of `weir gen --send`.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use clap::Args;
use weir_collect::send::{Format as SendFormat, Pace, SendOptions, send, v5_can_carry};
use weir_print::{Format, PrintOptions, Printer, TimeZoneSetting};
use weir_query::{BlockRows, BlockScan, RecordRenderer, Sink};
use weir_record::{Field, FlowRecord};
use weir_store::{ChunkReader, SlotFile};

use crate::cmd::input::InputArgs;
use crate::units::parse_rate;

/// Arguments of `weir replay` (nfreplay's flags where they exist).
#[derive(Debug, Clone, Default, Args)]
#[command(after_help = "FILTER is nfdump's filter language (docs/FILTER.md); no filter = any.\n\
Examples:\n  weir replay -R /flows -H 127.0.0.1 -p 9995 'proto udp'\n  \
weir replay -r /flows/2024/03/04 --send collector:2055 --format ipfix --rate 20k/s\n  \
weir replay -R /flows -t 2024/03/04.09:00-2024/03/04.10:00 --speed 60")]
pub struct ReplayArgs {
    /// Input selection, time window, filter file, --utc.
    #[command(flatten)]
    pub input: InputArgs,
    /// Collector host (nfreplay -H; default 127.0.0.1).
    #[arg(short = 'H', value_name = "HOST", conflicts_with = "send")]
    pub host: Option<String>,
    /// Collector port (nfreplay -p; default 9995).
    #[arg(short = 'p', value_name = "PORT", conflicts_with = "send")]
    pub port: Option<u16>,
    /// Collector as HOST:PORT (instead of -H / -p).
    #[arg(long, value_name = "HOST:PORT")]
    pub send: Option<String>,
    /// Export protocol: v9 (default), ipfix, v5 (IPv4 only; IPv6 flows
    /// are skipped and counted).
    #[arg(long, value_name = "FORMAT", default_value = "v9")]
    pub format: SendFormat,
    /// Send at this many flows per second, e.g. 5000, 20k/s.
    #[arg(long, value_name = "RATE", conflicts_with = "speed")]
    pub rate: Option<String>,
    /// Follow the flows' own receive times, this many times faster than
    /// real time (1 = real time).
    #[arg(long, value_name = "FACTOR")]
    pub speed: Option<f64>,
    /// Stop after this many flows (nfreplay -c).
    #[arg(short = 'c', value_name = "N")]
    pub limit: Option<u64>,
    /// v9 source id / IPFIX observation domain / v5 engine type and id
    /// (high and low byte). Default 0.
    #[arg(long)]
    pub domain: Option<u32>,
    /// Print every flow sent (nfdump's line format) and per-file counts.
    #[arg(short = 'v', visible_short_alias = 'E')]
    pub verbose: bool,
    /// The filter (nfdump syntax); words are joined with spaces.
    #[arg(value_name = "FILTER", trailing_var_arg = true, allow_hyphen_values = true)]
    pub filter: Vec<String>,
}

/// Runs `weir replay`.
pub fn run(args: &ReplayArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let filter = match args.input.filter(&args.filter)? {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let input = args.input.spec()?;
    if args.format == SendFormat::Sflow {
        bail!("--format: replay sends v9, ipfix or v5 (sFlow samples packets, not flows)");
    }
    let window = args.input.time_window()?;
    let files = weir_query::select_files(&input, window.as_ref())?;
    let target = target(args)?;
    let mut opts = SendOptions::new(target, args.format);
    opts.domain = args.domain.unwrap_or(0);
    opts.pace = match (&args.rate, args.speed) {
        (Some(r), _) => Pace::rate(parse_rate(r).with_context(|| format!("--rate {r}"))?),
        (None, Some(s)) if s.is_finite() && s > 0.0 => Pace::Received { speed: s },
        (None, Some(s)) => bail!("--speed must be a positive factor, got {s}"),
        (None, None) => Pace::Unlimited,
    };

    let stop = crate::stop_on_signals()?;
    // -v: each flow sent in nfdump's line format, rendered without a
    // printer's header and summary.
    let verbose = if args.verbose {
        let popts = PrintOptions {
            format: Format::default(),
            quiet: true,
            timezone: if args.input.utc { TimeZoneSetting::utc() } else { TimeZoneSetting::Local },
            ..PrintOptions::default()
        };
        let r = Printer::new(std::io::sink(), popts).renderer();
        Some(r.context("the line format renders records on its own")?)
    } else {
        None
    };
    let mut flows = Flows {
        files,
        next_file: 0,
        current: None,
        blocks: BlockScan::new(&filter, window, Field::ALL),
        reader: ChunkReader::new(),
        queue: Vec::new(),
        limit: args.limit,
        passed: 0,
        skipped_v6: 0,
        v5: args.format == SendFormat::V5,
        errors: Vec::new(),
        verbose,
        line: Vec::new(),
        out: &mut *out,
        stop: Arc::clone(&stop),
    };
    let report = send(&mut flows, &opts, &stop).with_context(|| format!("sending to {target}"));
    let Flows { errors, skipped_v6, .. } = flows;
    let report = report?;
    let secs = report.elapsed.as_secs_f64();
    write!(
        out,
        "sent {} flows in {} datagrams ({} bytes) to {target} as {} in {secs:.2} s ({:.0} flows/s)",
        report.flows, report.datagrams, report.bytes, args.format, report.achieved_rate
    )?;
    let skipped = report.skipped + skipped_v6;
    if skipped > 0 {
        write!(out, "; skipped {skipped} IPv6 flows (v5 carries IPv4 only)")?;
    }
    if report.send_errors > 0 {
        write!(out, "; {} datagrams refused (nothing listening?)", report.send_errors)?;
    }
    if stop.load(Ordering::Relaxed) {
        write!(out, "; interrupted")?;
    }
    writeln!(out)?;
    if errors.is_empty() {
        return Ok(crate::EXIT_OK);
    }
    #[allow(clippy::print_stderr)]
    {
        for e in &errors {
            eprintln!("weir: {e}");
        }
        eprintln!(
            "weir: {} file(s) or block(s) could not be read; the rest was sent",
            errors.len()
        );
    }
    Ok(crate::EXIT_FOUND_PROBLEMS)
}

/// `--send HOST:PORT`, else `-H HOST` (127.0.0.1) and `-p PORT` (9995).
fn target(args: &ReplayArgs) -> anyhow::Result<SocketAddr> {
    let text = match &args.send {
        Some(s) => s.clone(),
        None => {
            let host = args.host.as_deref().unwrap_or("127.0.0.1");
            let port = args.port.unwrap_or(9995);
            if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        }
    };
    text.to_socket_addrs()
        .with_context(|| format!("collector {text}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("collector {text}: no address"))
}

/// The file being read: the open file and the next block.
struct Open {
    file: SlotFile,
    ident: String,
    next_block: usize,
    passed: u64,
}

/// The matching flows of the selected files, in file order.
struct Flows<'a> {
    files: Vec<PathBuf>,
    next_file: usize,
    current: Option<Open>,
    /// Pruning, filter and window, decoded as a query decodes them.
    blocks: BlockScan,
    reader: ChunkReader,
    /// Matching records of the current block, reversed (pop from the end).
    queue: Vec<FlowRecord>,
    limit: Option<u64>,
    passed: u64,
    skipped_v6: u64,
    v5: bool,
    /// Damaged files and blocks: named, skipped, reported at the end.
    errors: Vec<String>,
    /// With -v: how to print each flow sent.
    verbose: Option<Arc<dyn RecordRenderer>>,
    /// The text of the flow -v prints.
    line: Vec<u8>,
    out: &'a mut dyn Write,
    stop: Arc<AtomicBool>,
}

impl Flows<'_> {
    /// Fills the queue from the next block with matches; false at the end.
    fn refill(&mut self) -> bool {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            let Some(open) = self.current.as_mut() else {
                let Some(path) = self.files.get(self.next_file) else {
                    return false;
                };
                self.next_file += 1;
                match SlotFile::open(path) {
                    Ok(file) => {
                        let ident = file.info().ident.clone();
                        self.current = Some(Open { file, ident, next_block: 0, passed: 0 });
                    }
                    Err(e) => self.errors.push(e.to_string()),
                }
                continue;
            };
            if open.next_block >= open.file.blocks().len() {
                let done = self.current.take().expect("open file");
                self.note(format!("{}: {} flows passed", done.file.path().display(), done.passed));
                continue;
            }
            let i = open.next_block;
            open.next_block += 1;
            let block = match open.file.block(i) {
                Ok(b) => b,
                Err(e) => {
                    self.errors.push(e.to_string());
                    continue;
                }
            };
            let scanned = self.blocks.scan(&block, &open.ident, &mut self.reader);
            // The records own their values: the block's mapped pages can
            // leave the resident set (memory does not grow with the files).
            open.file.release_block(i);
            let (batch, sel) = match scanned {
                Ok(BlockRows::Rows(batch, sel)) => (batch, sel),
                Ok(BlockRows::Pruned | BlockRows::NoMatch) => continue,
                Err(e) => {
                    self.errors.push(e.to_string());
                    continue;
                }
            };
            self.queue.extend(sel.iter_ones().map(|row| batch.record(row)));
            let n = self.queue.len() as u64;
            weir_store::recycle(batch);
            open.passed += n;
            if !self.queue.is_empty() {
                self.queue.reverse();
                return true;
            }
        }
    }

    /// With -v: a line to the output. Write errors (a closed pipe) do
    /// not stop the replay.
    fn note(&mut self, line: String) {
        if self.verbose.is_some() {
            let _ = writeln!(self.out, "{line}");
        }
    }

    /// With -v: the flow in nfdump's line format.
    fn print(&mut self, r: &FlowRecord) {
        let Some(renderer) = &self.verbose else {
            return;
        };
        let ident = self.current.as_ref().map(|o| o.ident.as_str()).unwrap_or_default();
        self.line.clear();
        renderer.render(ident, std::slice::from_ref(r), &mut self.line);
        let _ = self.out.write_all(&self.line);
    }
}

impl Iterator for Flows<'_> {
    type Item = FlowRecord;

    fn next(&mut self) -> Option<FlowRecord> {
        loop {
            if self.limit.is_some_and(|l| self.passed >= l) {
                return None;
            }
            if self.queue.is_empty() && !self.refill() {
                return None;
            }
            let r = self.queue.pop()?;
            // v5 carries IPv4 only: skip (and count) IPv6 flows here so
            // that -v and -c see only what is sent.
            if self.v5 && !v5_can_carry(&r) {
                self.skipped_v6 += 1;
                continue;
            }
            self.passed += 1;
            self.print(&r);
            return Some(r);
        }
    }
}
