//! `weir profile`: NfSen's profiles from the command line (nfsen -a/-m/-d/
//! -l/-A): TOML definitions in a profiles directory, retroactive builds
//! with a progress bar, and updates after each rotation (cron or the
//! collector's `-x`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use weir_filter::Filter;
use weir_profile::{
    BuildOptions, Channel, Kind, Profile, ProfileStore, Sign, Storage, build, fmt_time_s, status,
};

use crate::progress::Progress;
use crate::units::{now_ms, parse_time_ms};

/// Where profiles live unless `--profiles` says otherwise.
pub const PROFILES_ENV: &str = "WEIR_PROFILES";
/// Where the live data lives unless `--data` says otherwise.
pub const DATA_ENV: &str = "WEIR_DATA";

/// The profiles and live data directories (flags, else environment, else
/// `./profiles` and `./flows`).
#[derive(Debug, Clone, Default, Args)]
pub struct Dirs {
    /// Profiles directory: NAME.toml definitions and NAME/ state
    /// [env WEIR_PROFILES, default ./profiles].
    #[arg(long, global = true, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
    /// Live data directory the profiles' sources are under
    /// [env WEIR_DATA, default ./flows].
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

impl Dirs {
    /// The store these directories describe.
    pub fn store(&self) -> ProfileStore {
        let pick = |given: &Option<PathBuf>, env: &str, def: &str| {
            given
                .clone()
                .or_else(|| std::env::var_os(env).map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(def))
        };
        ProfileStore::new(
            pick(&self.profiles, PROFILES_ENV, "profiles"),
            pick(&self.data, DATA_ENV, "flows"),
        )
    }
}

/// Arguments of `weir profile`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
weir profile add profiles/slammer.toml\n  \
weir profile add web --start 2024-03-04 --channel http='port 80' --channel -https='port 443'\n  \
weir profile build slammer            # retroactively, with a progress bar\n  \
weir profile update -q                # from cron, or weir collect -x 'weir profile update -q'\n  \
weir profile list")]
pub struct ProfileArgs {
    /// Directories.
    #[command(flatten)]
    pub dirs: Dirs,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// `weir profile` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Add a profile from a TOML file, or from flags (nfsen -a).
    Add(AddArgs),
    /// Change a profile (nfsen -m); changed channels lose their series.
    Modify(ModifyArgs),
    /// Delete a profile with its series and files (nfsen -d).
    Delete {
        /// Profile name.
        name: String,
    },
    /// List profiles with their status (nfsen -l).
    List,
    /// Show a profile's definition, status and channels.
    Show {
        /// Profile name.
        name: String,
    },
    /// Build a profile retroactively over its range (or --from/--to);
    /// resumes where an interrupted build stopped.
    Build(BuildArgs),
    /// Bring continuous profiles up to date (after each rotation; idempotent).
    Update(UpdateArgs),
}

/// Definition flags shared by add and modify.
#[derive(Debug, Clone, Default, Args)]
pub struct DefFlags {
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// Start (UTC), e.g. 2024-03-04T09:00.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// End (UTC, exclusive); history profiles need one.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// continuous or history.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// shadow or materialized.
    #[arg(long, value_name = "STORAGE")]
    pub storage: Option<String>,
    /// A collector source (repeatable); none = all live data.
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// A channel `NAME=FILTER` (repeatable); `-NAME=FILTER` graphs it
    /// below the axis.
    #[arg(long = "channel", value_name = "[-]NAME=FILTER", allow_hyphen_values = true)]
    pub channels: Vec<String>,
}

/// `weir profile add`.
#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    /// A TOML definition file, or the name of a profile defined by flags.
    #[arg(value_name = "FILE.toml|NAME")]
    pub what: String,
    /// Definition flags (with a NAME).
    #[command(flatten)]
    pub def: DefFlags,
}

/// `weir profile modify`.
#[derive(Debug, Clone, Args)]
pub struct ModifyArgs {
    /// Profile name.
    pub name: String,
    /// Replace the definition with this TOML file.
    #[arg(long, value_name = "FILE.toml")]
    pub file: Option<PathBuf>,
    /// Remove a channel (repeatable).
    #[arg(long = "remove-channel", value_name = "NAME")]
    pub remove: Vec<String>,
    /// Changed fields.
    #[command(flatten)]
    pub def: DefFlags,
}

/// `weir profile build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Profile name.
    pub name: String,
    /// Build from this time (default: the profile's start).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Build up to this time (default: the profile's end, else now).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Forget the series and files built so far and start again.
    #[arg(long)]
    pub rebuild: bool,
    /// Worker threads (default: one per core).
    #[arg(short = 'W', value_name = "N")]
    pub threads: Option<usize>,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// `weir profile update`.
#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// Profiles to update (default: every continuous profile).
    pub names: Vec<String>,
    /// Print only what changed and errors (cron).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Then expire each materialized profile's own files by its [expire]
    /// limits (as `weir expire --profile NAME`).
    #[arg(long)]
    pub expire: bool,
    /// Worker threads (default: one per core).
    #[arg(short = 'W', value_name = "N")]
    pub threads: Option<usize>,
}

fn now_s() -> i64 {
    (now_ms() / 1000) as i64
}

fn time_s(text: &str) -> anyhow::Result<i64> {
    Ok(parse_time_ms(text)?.div_euclid(1000))
}

/// Runs `weir profile`.
pub fn run(args: &ProfileArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let store = args.dirs.store();
    match &args.action {
        Action::Add(a) => add(&store, a, out),
        Action::Modify(a) => modify(&store, a, out),
        Action::Delete { name } => {
            store.delete(name)?;
            writeln!(out, "deleted profile '{name}'")?;
            Ok(crate::EXIT_OK)
        }
        Action::List => list(&store, out),
        Action::Show { name } => show(&store, name, out),
        Action::Build(a) => build_cmd(&store, a, out),
        Action::Update(a) => update(&store, a, out),
    }
}

fn parse_channel(spec: &str, order: i32) -> anyhow::Result<Channel> {
    let (name, filter) =
        spec.split_once('=').with_context(|| format!("--channel {spec}: expected NAME=FILTER"))?;
    let (sign, name) = match name.strip_prefix('-') {
        Some(n) => (Sign::Minus, n),
        None => (Sign::Plus, name.strip_prefix('+').unwrap_or(name)),
    };
    Ok(Channel {
        name: name.trim().to_string(),
        filter: filter.trim().to_string(),
        sign,
        colour: None,
        order,
    })
}

fn apply_flags(p: &mut Profile, f: &DefFlags) -> anyhow::Result<()> {
    if let Some(d) = &f.description {
        p.description = d.clone();
    }
    if let Some(s) = &f.start {
        p.start = fmt_time_s(time_s(s)?);
    }
    if let Some(e) = &f.end {
        p.end = Some(fmt_time_s(time_s(e)?));
    }
    if let Some(k) = &f.kind {
        p.kind = match k.as_str() {
            "continuous" => Kind::Continuous,
            "history" => Kind::History,
            _ => bail!("--type {k}: expected continuous or history"),
        };
    }
    if let Some(s) = &f.storage {
        p.storage = match s.as_str() {
            "shadow" => Storage::Shadow,
            "materialized" | "materialised" => Storage::Materialized,
            _ => bail!("--storage {s}: expected shadow or materialized"),
        };
    }
    if !f.sources.is_empty() {
        p.sources = f.sources.clone();
    }
    for spec in &f.channels {
        let order = p.channels.len() as i32;
        let c = parse_channel(spec, order)?;
        match p.channels.iter_mut().find(|x| x.name == c.name) {
            Some(x) => {
                x.filter = c.filter;
                x.sign = c.sign;
            }
            None => p.channels.push(c),
        }
    }
    Ok(())
}

fn add(store: &ProfileStore, a: &AddArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let path = Path::new(&a.what);
    let p = if a.what.ends_with(".toml") || path.is_file() {
        // Any file name: the profile is stored under its `name`.
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the definition", path.display()))?;
        let mut p = Profile::from_toml(&text, path)?;
        apply_flags(&mut p, &a.def)?;
        p
    } else {
        let mut p = Profile {
            name: a.what.clone(),
            description: String::new(),
            sources: Vec::new(),
            start: fmt_time_s(now_s()),
            end: None,
            kind: Kind::Continuous,
            storage: Storage::Shadow,
            slot: weir_store::DEFAULT_SLOT_SECS,
            expire: None,
            channels: Vec::new(),
        };
        apply_flags(&mut p, &a.def)?;
        p
    };
    let path = store.add(&p)?;
    writeln!(out, "added profile '{}' ({})", p.name, path.display())?;
    Ok(crate::EXIT_OK)
}

fn modify(store: &ProfileStore, a: &ModifyArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let mut p = match &a.file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("{}: cannot read the definition", f.display()))?;
            Profile::from_toml(&text, f)?
        }
        None => store.load(&a.name)?,
    };
    if p.name != a.name {
        bail!(
            "{}: defines profile '{}', not '{}'",
            a.file.as_deref().unwrap_or(Path::new("")).display(),
            p.name,
            a.name
        );
    }
    apply_flags(&mut p, &a.def)?;
    for r in &a.remove {
        let before = p.channels.len();
        p.channels.retain(|c| &c.name != r);
        if p.channels.len() == before {
            bail!("profile '{}' has no channel '{r}'", p.name);
        }
    }
    let stale = store.modify(&p)?;
    writeln!(out, "modified profile '{}'", p.name)?;
    if !stale.is_empty() {
        writeln!(
            out,
            "channels {} changed: run `weir profile build {}` to rebuild them",
            stale.join(", "),
            p.name
        )?;
    }
    Ok(crate::EXIT_OK)
}

fn list(store: &ProfileStore, out: &mut dyn Write) -> anyhow::Result<u8> {
    let now = now_s();
    let mut code = crate::EXIT_OK;
    writeln!(
        out,
        "{:<16} {:<10} {:<12} {:>3}  {:<20} {:<20} {:<14} description",
        "name", "type", "storage", "ch", "start", "end", "status"
    )?;
    for (name, p) in store.list()? {
        match p {
            Ok(p) => {
                let st = status(store, &p, now).map(|s| s.text).unwrap_or_else(|e| e.to_string());
                writeln!(
                    out,
                    "{:<16} {:<10} {:<12} {:>3}  {:<20} {:<20} {:<14} {}",
                    name,
                    kind_name(p.kind),
                    storage_name(p.storage),
                    p.channels.len(),
                    p.start,
                    p.end.as_deref().unwrap_or("-"),
                    st,
                    p.description
                )?;
            }
            Err(e) => {
                writeln!(out, "{name:<16} error: {e}")?;
                code = crate::EXIT_FOUND_PROBLEMS;
            }
        }
    }
    Ok(code)
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Continuous => "continuous",
        Kind::History => "history",
    }
}

fn storage_name(s: Storage) -> &'static str {
    match s {
        Storage::Shadow => "shadow",
        Storage::Materialized => "materialized",
    }
}

fn show(store: &ProfileStore, name: &str, out: &mut dyn Write) -> anyhow::Result<u8> {
    let p = store.load(name)?;
    let st = status(store, &p, now_s())?;
    writeln!(out, "# {}", store.def_path(name)?.display())?;
    write!(out, "{}", p.to_toml())?;
    writeln!(out)?;
    writeln!(out, "# status: {}", st.text)?;
    if let Some(l) = st.last_slot {
        writeln!(out, "# last slot: {}", fmt_time_s(l))?;
    }
    for c in &p.channels {
        let t = store.trend(name, &c.name)?;
        let last = t.as_ref().and_then(|t| t.last_slot()).map_or("-".into(), fmt_time_s);
        writeln!(out, "# channel {:<16} last slot {last}", c.name)?;
    }
    Ok(crate::EXIT_OK)
}

fn build_cmd(store: &ProfileStore, a: &BuildArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let p = store.load(&a.name)?;
    let opts = BuildOptions {
        from_s: a.from.as_deref().map(time_s).transpose()?,
        to_s: a.to.as_deref().map(time_s).transpose()?,
        threads: a.threads,
        now_s: now_s(),
        rebuild: a.rebuild,
    };
    let mut bar = Progress::new("slots", !a.no_progress);
    let rep = build(store, &p, &opts, &mut |pr| bar.update(pr.done, pr.total))?;
    bar.finish();
    let st = status(store, &p, opts.now_s)?;
    let rate = rep.scanned as f64 / rep.wall_s.max(1e-9);
    writeln!(
        out,
        "{}: {} slots, {} files, {} flows scanned in {:.2} s ({:.0} flows/s); status: {}",
        p.name, rep.slots, rep.files, rep.scanned, rep.wall_s, rate, st.text
    )?;
    for (c, m) in p.channels.iter().zip(&rep.matched) {
        writeln!(out, "  {:<16} {m} flows", c.name)?;
    }
    if let Some(w) = rep.waiting_for {
        writeln!(out, "  stopped before {} (a collector still writes it)", fmt_time_s(w))?;
    }
    report_errors(&rep.errors)
}

fn report_errors(errors: &[weir_store::StoreError]) -> anyhow::Result<u8> {
    if errors.is_empty() {
        return Ok(crate::EXIT_OK);
    }
    #[allow(clippy::print_stderr)]
    for e in errors {
        eprintln!("weir: {e}");
    }
    Ok(crate::EXIT_FOUND_PROBLEMS)
}

fn update(store: &ProfileStore, a: &UpdateArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let mut code = crate::EXIT_OK;
    let profiles: Vec<Profile> = if a.names.is_empty() {
        let mut v = Vec::new();
        for (name, p) in store.list()? {
            match p {
                Ok(p) if p.kind == Kind::Continuous => v.push(p),
                Ok(_) => {}
                Err(e) => {
                    writeln!(out, "{name}: {e}")?;
                    code = crate::EXIT_FOUND_PROBLEMS;
                }
            }
        }
        v
    } else {
        a.names.iter().map(|n| store.load(n)).collect::<Result<_, _>>()?
    };
    let now = now_s();
    for p in &profiles {
        let opts = BuildOptions { threads: a.threads, now_s: now, ..Default::default() };
        match build(store, p, &opts, &mut |_| {}) {
            Ok(rep) => {
                if a.expire {
                    code = code.max(expire_profile(store, p, now, a.quiet, out)?);
                }
                if !a.quiet || rep.slots > 0 {
                    let last = rep.last_slot.map_or("-".into(), fmt_time_s);
                    writeln!(out, "{}: {} new slots, last {last}", p.name, rep.slots)?;
                }
                if report_errors(&rep.errors)? != crate::EXIT_OK {
                    code = crate::EXIT_FOUND_PROBLEMS;
                }
            }
            // Another update or build holds the profile: it does this work.
            Err(weir_profile::ProfileError::Locked { .. }) if a.quiet => {}
            Err(e) => {
                writeln!(out, "{}: {e}", p.name)?;
                code = crate::EXIT_FOUND_PROBLEMS;
            }
        }
    }
    Ok(code)
}

/// Expires a materialized profile's files by its `[expire]` limits.
fn expire_profile(
    store: &ProfileStore,
    p: &Profile,
    now: i64,
    quiet: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    use weir_profile::expire::{ExpireOptions, expire};
    let (Storage::Materialized, Some(r)) = (p.storage, &p.expire) else {
        return Ok(crate::EXIT_OK);
    };
    let root = store.data_root(&p.name)?;
    if !root.is_dir() {
        return Ok(crate::EXIT_OK);
    }
    let limits = r.limits().map_err(anyhow::Error::msg)?;
    let rep = expire(&root, &ExpireOptions { limits, now_s: now, ..Default::default() })?;
    if !rep.expired.is_empty() || !quiet {
        writeln!(
            out,
            "{}: expired {} files ({} bytes), {} left",
            p.name,
            rep.expired.len(),
            rep.expired_bytes,
            rep.after.files
        )?;
    }
    #[allow(clippy::print_stderr)]
    for e in &rep.errors {
        eprintln!("weir: {e}");
    }
    Ok(if rep.errors.is_empty() { crate::EXIT_OK } else { crate::EXIT_FOUND_PROBLEMS })
}

/// `weir query --profile P [--channel C] [FILTER]`: the files to read and
/// the filter (the profile's, and-ed with `user`). `P` is a profile name
/// in `$WEIR_PROFILES` (default `./profiles`) or a path to its definition
/// (`DIR/NAME.toml`, whose directory is then the profiles directory).
/// `data` is the live data directory of shadow profiles (`-R`/`-r`, else
/// `$WEIR_DATA`, else `./flows`).
pub fn query_files(
    profile: &str,
    channel: Option<&str>,
    data: Option<&str>,
    user: Filter,
) -> anyhow::Result<(Vec<PathBuf>, Filter)> {
    let (dir, name) = if profile.ends_with(".toml") || profile.contains('/') {
        let p = Path::new(profile);
        let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
        (Some(p.parent().unwrap_or(Path::new(".")).to_path_buf()), name)
    } else {
        (None, profile.to_string())
    };
    let dirs = Dirs { profiles: dir, data: data.map(PathBuf::from) };
    let store = dirs.store();
    let p = store.load(&name)?;
    let q = weir_profile::query_input(&store, &p, channel)?;
    if q.files.is_empty() {
        bail!("profile '{}': no slot files in its range", p.name);
    }
    let filter = if user.is_any() {
        q.filter
    } else if q.filter.is_any() {
        user
    } else {
        Filter::from_expr(weir_filter::Expr::and(q.filter.expr().clone(), user.expr().clone()))
    };
    Ok((q.files, filter))
}
