//! `weir expire` (nfexpire): delete the oldest slot files of the live data
//! or of a materialized profile by age and size, down to a low watermark.
//! Cron-friendly: `-q` prints only when something was (or would be)
//! expired; exit 0 when done, 1 when some files could not be deleted.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use weir_profile::expire::{
    DEFAULT_WATERMARK, ExpireOptions, ExpireReport, Limits, TreeStats, expire, parse_age_s,
    parse_size,
};
use weir_profile::{Storage, fmt_time_s};

use crate::cmd::profile::Dirs;
use crate::units::{now_ms, parse_time_ms};

/// Arguments of `weir expire`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
weir expire /flows --max-age 30d --max-size 500G           # from cron\n  \
weir expire /flows --max-size 500G -w 90 --dry-run\n  \
weir expire --profile slammer                              # the profile's [expire] limits\n  \
weir collect -w /flows -x 'weir expire /flows --max-age 12w -q'")]
pub struct ExpireArgs {
    /// The data directory to expire (not needed with --profile).
    #[arg(value_name = "DIR", required_unless_present = "profile")]
    pub dir: Option<PathBuf>,
    /// Expire a materialized profile's own files (limits from its
    /// [expire] table unless given here).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Profile and data directories (with --profile).
    #[command(flatten)]
    pub dirs: Dirs,
    /// Maximum age: 30d, 12w, 240H, 1.5d (bare number: hours).
    #[arg(short = 't', long, value_name = "AGE")]
    pub max_age: Option<String>,
    /// Maximum size: 500G, 1.5T, 10M (1024-based).
    #[arg(short = 's', long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Low watermark: when a limit is hit, delete down to this percentage of it.
    #[arg(short = 'w', long, default_value_t = DEFAULT_WATERMARK, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub watermark: u8,
    /// Show what would be deleted; delete nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Only list what the tree holds (nfexpire -l).
    #[arg(short = 'l', long)]
    pub list: bool,
    /// Re-read every directory instead of trusting the bookkeeping file.
    #[arg(short = 'r', long)]
    pub rescan: bool,
    /// Print nothing unless files are (or would be) expired or fail.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Pretend it is this time (UTC); for tests and replays.
    #[arg(long, value_name = "TIME", hide = true)]
    pub now: Option<String>,
}

fn human_bytes(b: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{b} = {v:.1} {}", units[i])
}

fn human_secs(s: i64) -> String {
    let (v, u) = match s {
        s if s >= 7 * 86_400 => (s as f64 / 604_800.0, "weeks"),
        s if s >= 86_400 => (s as f64 / 86_400.0, "days"),
        s if s >= 3600 => (s as f64 / 3600.0, "hours"),
        s => (s as f64 / 60.0, "min"),
    };
    format!("{s} = {v:.1} {u}")
}

fn print_stats(out: &mut dyn Write, s: &TreeStats, limits: &Limits) -> std::io::Result<()> {
    let t = |v: Option<i64>| v.map_or("-".to_string(), fmt_time_s);
    writeln!(out, "First:     {}", t(s.first_s))?;
    writeln!(out, "Last:      {}", t(s.last_s))?;
    let life = match (s.first_s, s.last_s) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    };
    writeln!(out, "Lifetime:  {}", human_secs(life))?;
    writeln!(out, "Numfiles:  {}", s.files)?;
    writeln!(out, "Filesize:  {}", human_bytes(s.bytes))?;
    match limits.max_size {
        Some(m) => writeln!(out, "Max Size:  {}", human_bytes(m))?,
        None => writeln!(out, "Max Size:  <none>")?,
    }
    match limits.max_age_s {
        Some(a) => writeln!(out, "Max Life:  {}", human_secs(a as i64))?,
        None => writeln!(out, "Max Life:  <none>")?,
    }
    writeln!(out, "Watermark: {}%", limits.watermark)
}

/// Runs `weir expire`.
pub fn run(args: &ExpireArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let mut limits = Limits { watermark: args.watermark, ..Default::default() };
    let root = match (&args.profile, &args.dir) {
        (Some(name), None) => {
            let store = args.dirs.store();
            let p = store.load(name)?;
            if p.storage != Storage::Materialized {
                bail!("profile '{name}' is a shadow profile: it has no files of its own to expire");
            }
            if let Some(r) = &p.expire {
                let l = r.limits().map_err(anyhow::Error::msg)?;
                (limits.max_age_s, limits.max_size) = (l.max_age_s, l.max_size);
            }
            store.data_root(name)?
        }
        (None, Some(d)) => d.clone(),
        _ => bail!("give either a DIR or --profile NAME"),
    };
    if let Some(a) = &args.max_age {
        limits.max_age_s = Some(parse_age_s(a).map_err(anyhow::Error::msg)?);
    }
    if let Some(s) = &args.max_size {
        limits.max_size = Some(parse_size(s).map_err(anyhow::Error::msg)?);
    }
    let now_s = match &args.now {
        Some(t) => parse_time_ms(t)?.div_euclid(1000),
        None => (now_ms() / 1000) as i64,
    };
    if !root.is_dir() {
        if args.profile.is_some() {
            // A materialized profile not built yet has nothing to expire.
            return Ok(crate::EXIT_OK);
        }
        bail!("{}: not a directory", root.display());
    }
    let list_only = args.list || (limits.max_age_s.is_none() && limits.max_size.is_none());
    let opts =
        ExpireOptions { limits, now_s, dry_run: args.dry_run || list_only, rescan: args.rescan };
    let rep = expire(&root, &opts).with_context(|| format!("expire {}", root.display()))?;
    if list_only {
        print_stats(out, &rep.before, &limits)?;
        writeln!(out, "Status:    {}", if rep.over.is_empty() { "OK" } else { "over limit" })?;
        return Ok(crate::EXIT_OK);
    }
    report(out, args, &rep, &limits)
}

fn report(
    out: &mut dyn Write,
    args: &ExpireArgs,
    rep: &ExpireReport,
    limits: &Limits,
) -> anyhow::Result<u8> {
    let quiet = args.quiet && rep.expired.is_empty() && rep.errors.is_empty();
    if !quiet {
        print_stats(out, &rep.after, limits)?;
        let status = match (rep.over.is_empty(), args.dry_run) {
            (true, _) => "OK".to_string(),
            (false, true) => format!("over {} limit: dry run", rep.over.join(" and ")),
            (false, false) => format!("expired ({} limit)", rep.over.join(" and ")),
        };
        writeln!(out, "Status:    {status}")?;
        if !rep.expired.is_empty() {
            let verb = if args.dry_run { "Would expire" } else { "Expired" };
            writeln!(out, "{verb} files:      {}", rep.expired.len())?;
            writeln!(out, "{verb} file size:  {}", human_bytes(rep.expired_bytes))?;
            let first = rep.expired.first().map_or(0, |f| f.start_s);
            let last = rep.expired.last().map_or(0, |f| f.start_s);
            writeln!(
                out,
                "{verb} time range: {} .. {} ({})",
                fmt_time_s(first),
                fmt_time_s(last),
                human_secs(last - first)
            )?;
            if rep.removed_dirs > 0 {
                writeln!(out, "Removed empty directories: {}", rep.removed_dirs)?;
            }
        }
    }
    if rep.errors.is_empty() {
        return Ok(crate::EXIT_OK);
    }
    #[allow(clippy::print_stderr)]
    for e in &rep.errors {
        eprintln!("weir: {e}");
    }
    Ok(crate::EXIT_FOUND_PROBLEMS)
}
