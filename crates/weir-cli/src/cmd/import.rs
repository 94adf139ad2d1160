//! `weir import`: nfcapd files (nfdump 1.7) into weir slot files.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use weir_nfdump::{ImportOptions, NameTime, import};
use weir_store::{DEFAULT_ZSTD_LEVEL, SubdirLayout};

use crate::progress::Progress;

/// Arguments of `weir import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// nfcapd trees (any -S layout) or single nfcapd files; NAME=DIR names
    /// a source (several sources go to DEST/NAME).
    #[arg(required = true, value_name = "[NAME=]DIR|FILE")]
    pub sources: Vec<String>,
    /// Base directory of the weir slot files.
    #[arg(short = 'w', long = "dir", value_name = "DEST")]
    pub dest: PathBuf,
    /// Sub-directory layout 0..8 of the weir files (nfcapd -S).
    #[arg(short = 'S', long = "subdirs", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub layout: u8,
    /// zstd level 1..=22, or 0 to store blocks uncompressed.
    #[arg(short = 'z', long = "zstd", default_value_t = DEFAULT_ZSTD_LEVEL, value_parser = clap::value_parser!(i32).range(0..=22))]
    pub zstd: i32,
    /// Slot length in seconds (default: from the spacing of the file names).
    #[arg(short = 't', long = "slot")]
    pub slot_secs: Option<u32>,
    /// The nfcapd file names are in UTC (nfcapd ran with TZ=UTC); default:
    /// this machine's local time, as nfcapd names files.
    #[arg(long, conflicts_with = "name_offset")]
    pub utc: bool,
    /// The nfcapd file names are in this fixed offset from UTC, e.g. +0200.
    #[arg(long, value_name = "+HHMM")]
    pub name_offset: Option<String>,
    /// Files imported in parallel.
    #[arg(short = 'W', long = "threads", default_value_t = 2)]
    pub threads: usize,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

fn name_time(args: &ImportArgs) -> anyhow::Result<NameTime> {
    if args.utc {
        return Ok(NameTime::Utc);
    }
    let Some(o) = &args.name_offset else { return Ok(NameTime::Local) };
    // A bare HHMM is east of UTC.
    let signed = if o.starts_with(['+', '-']) { o.clone() } else { format!("+{o}") };
    match weir_nfdump::parse_utc_offset(&signed) {
        Some(s) => Ok(NameTime::Offset(s)),
        None => bail!("--name-offset {o}: expected +HHMM or -HHMM (hours up to 23)"),
    }
}

/// Runs `weir import`.
pub fn run(args: &ImportArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let layout = SubdirLayout::from_index(args.layout).context("-S must be 0..8")?;
    let mut opts = ImportOptions::new(PathBuf::new(), args.dest.clone());
    opts.sources = args
        .sources
        .iter()
        .map(|s| match s.split_once('=') {
            Some((name, dir)) if !name.is_empty() && !name.contains('/') => {
                (PathBuf::from(dir), Some(name.to_string()))
            }
            _ => (PathBuf::from(s), None),
        })
        .collect();
    opts.layout = layout;
    opts.zstd_level = args.zstd;
    opts.slot_secs = args.slot_secs;
    opts.name_time = name_time(args)?;
    opts.threads = args.threads.max(1);
    // The bar is cleared when import() drops the callback, before it
    // returns.
    let mut bar = Progress::new("files", !args.no_progress);
    opts.progress = Some(Box::new(move |ev| bar.update(ev.done as u64, ev.total as u64)));
    // SIGINT/SIGTERM finish the files being imported and stop cleanly.
    let stop = crate::stop_on_signals()?;
    opts.cancel = Some(stop);
    let report = import(opts)?;
    for (src, what) in &report.warnings {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("weir: {}: imported with a warning: {what}", src.display());
        }
    }
    for (src, why) in &report.failed {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("weir: {}: not imported: {why}", src.display());
        }
    }
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "imported {} files ({} flows, {} packets, {} bytes of traffic) in {secs:.2} s ({:.0} flows/s)",
        report.imported.len(),
        report.flows,
        report.packets,
        report.bytes,
        report.flows as f64 / secs,
    )?;
    if report.flows > 0 {
        writeln!(
            out,
            "nfcapd files {} bytes ({:.1} bytes/flow) -> slot files {} bytes ({:.1} bytes/flow)",
            report.nfcapd_file_bytes,
            report.nfcapd_file_bytes as f64 / report.flows as f64,
            report.weir_file_bytes,
            report.weir_file_bytes as f64 / report.flows as f64,
        )?;
    }
    if !report.skipped.is_empty() {
        writeln!(out, "skipped {} files already imported", report.skipped.len())?;
    }
    if report.cancelled {
        writeln!(out, "interrupted: the files not yet imported are left for the next run")?;
    }
    if !report.failed.is_empty() {
        writeln!(out, "failed {} files (see above)", report.failed.len())?;
        return Ok(crate::EXIT_FOUND_PROBLEMS);
    }
    Ok(crate::EXIT_OK)
}
