//! `weir graph`: a profile's trend series as a PNG or SVG (NfSen's graphs):
//! stacked areas per channel, `-` channels below the axis, flows/s,
//! packets/s or bits/s, per protocol.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use weir_plot::{Format, GraphRequest, Unit, View, graph_of_profile, render};
use weir_record::ProtoClass;

use crate::cmd::profile::Dirs;
use crate::units::{now_ms, parse_duration_ms, parse_time_ms};

/// Arguments of `weir graph`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
weir graph slammer -o slammer.png                   # last day, bits/s per channel\n  \
weir graph live --range week --unit flows --by-proto -o live.svg\n  \
weir graph web --from 2024-03-04T06:00 --to 2024-03-04T12:00 --proto tcp -o web.png")]
pub struct GraphArgs {
    /// Profile name.
    pub profile: String,
    /// Profile directories.
    #[command(flatten)]
    pub dirs: Dirs,
    /// Output file (.png or .svg); default: SVG on stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// svg or png (default: from the file name, else svg).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// day, week, month, year, or a duration (6h, 2d); ends at --to.
    #[arg(long, default_value = "day", value_name = "RANGE")]
    pub range: String,
    /// Start (UTC); overrides --range.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End (UTC); default: the end of the last slot built.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// flows, packets or bits (per second).
    #[arg(long, default_value = "bits", value_name = "UNIT")]
    pub unit: String,
    /// Only this protocol class: tcp, udp, icmp, other.
    #[arg(long, value_name = "CLASS", conflicts_with = "by_proto")]
    pub proto: Option<String>,
    /// One layer per protocol class instead of per channel.
    #[arg(long)]
    pub by_proto: bool,
    /// Only these channels (repeatable).
    #[arg(long = "channel", value_name = "NAME")]
    pub channels: Vec<String>,
    /// Plot the largest slot of each point instead of the average.
    #[arg(long)]
    pub max: bool,
    /// Size in pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = "900x320", value_name = "WxH")]
    pub size: String,
}

fn class(name: &str) -> anyhow::Result<ProtoClass> {
    ProtoClass::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .with_context(|| format!("--proto {name}: expected tcp, udp, icmp or other"))
}

fn range_s(text: &str) -> anyhow::Result<i64> {
    Ok(match text {
        "day" => 86_400,
        "week" => 7 * 86_400,
        "month" => 31 * 86_400,
        "year" => 365 * 86_400,
        d => (parse_duration_ms(d).with_context(|| format!("--range {d}"))? / 1000) as i64,
    })
}

/// Runs `weir graph`.
pub fn run(args: &GraphArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let store = args.dirs.store();
    let p = store.load(&args.profile)?;
    let unit = match args.unit.as_str() {
        "flows" => Unit::Flows,
        "packets" => Unit::Packets,
        "bits" | "bytes" => Unit::Bits,
        u => bail!("--unit {u}: expected flows, packets or bits"),
    };
    let view = if args.by_proto {
        View::Protocols
    } else {
        View::Channels(args.proto.as_deref().map(class).transpose()?)
    };
    let to_s = match &args.to {
        Some(t) => parse_time_ms(t)?.div_euclid(1000),
        None => {
            let mut last = None;
            for c in &p.channels {
                if let Some(l) = store.trend(&p.name, &c.name)?.and_then(|t| t.last_slot()) {
                    last = Some(last.map_or(l, |x: i64| x.max(l)));
                }
            }
            last.map_or((now_ms() / 1000) as i64, |l| l + i64::from(p.slot))
        }
    };
    let from_s = match &args.from {
        Some(f) => parse_time_ms(f)?.div_euclid(1000),
        None => to_s - range_s(&args.range)?,
    };
    if from_s >= to_s {
        bail!("--from must be before --to");
    }
    let (w, h) = args
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .with_context(|| format!("--size {}: expected WIDTHxHEIGHT", args.size))?;
    let format = match (args.format.as_deref(), &args.output) {
        (Some("png"), _) => Format::Png,
        (Some("svg"), _) => Format::Svg,
        (Some(f), _) => bail!("--format {f}: expected svg or png"),
        (None, Some(o)) if o.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) => {
            Format::Png
        }
        (None, _) => Format::Svg,
    };
    let req = GraphRequest {
        from_s,
        to_s,
        unit,
        view,
        channels: args.channels.clone(),
        max: args.max,
        step_s: None,
    };
    let graph = graph_of_profile(&store, &p, &req)?;
    let bytes = render(&graph, w, h, format)?;
    match &args.output {
        Some(path) => std::fs::write(path, &bytes)
            .with_context(|| format!("{}: cannot write the graph", path.display()))?,
        None => out.write_all(&bytes)?,
    }
    Ok(crate::EXIT_OK)
}
