//! A profile's trend series as a [`Graph`].

use std::collections::BTreeMap;

use weir_profile::trend::{Metric, series_index};
use weir_profile::{Profile, ProfileStore, Sign};
use weir_record::ProtoClass;

use crate::{Graph, PlotError, Series};

/// What the y axis counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unit {
    /// Flows per second.
    Flows,
    /// Packets per second.
    Packets,
    /// Bits per second.
    #[default]
    Bits,
}

impl Unit {
    fn metric(self) -> Metric {
        match self {
            Unit::Flows => Metric::Flows,
            Unit::Packets => Metric::Packets,
            Unit::Bits => Metric::Bytes,
        }
    }

    /// `flows/s`, `packets/s`, `bits/s`.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Flows => "flows/s",
            Unit::Packets => "packets/s",
            Unit::Bits => "bits/s",
        }
    }
}

/// Which layers the graph stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// One layer per channel, all protocols or one class.
    Channels(Option<ProtoClass>),
    /// One layer per protocol class (tcp, udp, icmp, other), summed over
    /// the channels (NfSen's per-protocol view); `-` channels subtract.
    #[default]
    Protocols,
}

/// What to graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphRequest {
    /// Start (s).
    pub from_s: i64,
    /// End (s).
    pub to_s: i64,
    /// Y axis.
    pub unit: Unit,
    /// Layers.
    pub view: View,
    /// Channels to include (empty: all).
    pub channels: Vec<String>,
    /// Plot each bucket's largest slot instead of its average.
    pub max: bool,
    /// Resolution wanted (s); default: the finest archive covering `from_s`.
    pub step_s: Option<u32>,
}

const CLASS_COLOURS: [[u8; 3]; 4] =
    [[31, 119, 180], [44, 160, 44], [255, 127, 14], [127, 127, 127]];

/// Builds the graph of a profile from its trend files.
pub fn graph_of_profile(
    store: &ProfileStore,
    p: &Profile,
    req: &GraphRequest,
) -> Result<Graph, PlotError> {
    for c in &req.channels {
        p.channel(c)?;
    }
    let chans: Vec<_> = p
        .ordered_channels()
        .into_iter()
        .filter(|c| req.channels.is_empty() || req.channels.contains(&c.name))
        .collect();
    let scale = if req.unit == Unit::Bits { 8.0 } else { 1.0 };
    let metric = req.unit.metric();
    // Each channel's trend file is read once, whatever the view needs.
    let trends = chans
        .iter()
        .map(|c| Ok((c.name.as_str(), store.trend(&p.name, &c.name)?)))
        .collect::<Result<BTreeMap<_, _>, PlotError>>()?;
    let fetch = |c: &str, class: Option<ProtoClass>| -> Vec<(i64, f64)> {
        let Some(Some(t)) = trends.get(c) else { return Vec::new() };
        let (_, pts) = t.fetch(series_index(metric, class), req.from_s, req.to_s, req.step_s);
        pts.iter().map(|x| (x.t, scale * if req.max { x.max } else { x.avg })).collect()
    };
    let mut series = Vec::new();
    let what;
    match req.view {
        View::Channels(class) => {
            what = class.map_or("all protocols".to_string(), |c| c.name().to_string());
            for c in &chans {
                series.push(Series {
                    name: c.name.clone(),
                    colour: p.colour_of(c),
                    negative: c.sign == Sign::Minus,
                    points: fetch(&c.name, class),
                });
            }
        }
        View::Protocols => {
            what = "by protocol".to_string();
            for (i, class) in ProtoClass::ALL.into_iter().enumerate() {
                let mut sum: BTreeMap<i64, f64> = BTreeMap::new();
                for c in &chans {
                    let sign = if c.sign == Sign::Minus { -1.0 } else { 1.0 };
                    for (t, v) in fetch(&c.name, Some(class)) {
                        *sum.entry(t).or_default() += sign * v;
                    }
                }
                series.push(Series {
                    name: class.name().to_string(),
                    colour: CLASS_COLOURS[i],
                    negative: false,
                    points: sum.into_iter().map(|(t, v)| (t, v.max(0.0))).collect(),
                });
            }
        }
    }
    let kind = if req.max { "max" } else { "avg" };
    Ok(Graph {
        title: format!("{}: {} ({what}, {kind})", p.name, req.unit.label()),
        unit: req.unit.label().to_string(),
        from_s: req.from_s,
        to_s: req.to_s,
        series,
    })
}
