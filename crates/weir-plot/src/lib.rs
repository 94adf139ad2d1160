//! Graphs of profile trend series, NfSen style: one stacked area per
//! channel, channels with sign `-` stacked below the time axis, in flows/s,
//! packets/s or bits/s, for all protocols, one protocol class, or the four
//! classes stacked.
//!
//! The design decision worth knowing: **nothing comes from the system**.
//! plotters runs without its font-kit backend; text is laid out with
//! ab_glyph from DejaVu Sans, embedded in this crate (`fonts/`, Bitstream
//! Vera license), so a fresh machine renders the same pixels and the same
//! SVG bytes as any other. PNGs are drawn into an RGB buffer and encoded
//! with the `png` crate.
//!
//! ```
//! use weir_plot::{Format, Graph, Series, render};
//!
//! let g = Graph {
//!     title: "slammer".into(),
//!     unit: "flows/s".into(),
//!     from_s: 1_709_532_000,
//!     to_s: 1_709_535_600,
//!     series: vec![Series {
//!         name: "slammer".into(),
//!         colour: [0xd6, 0x27, 0x28],
//!         negative: false,
//!         points: vec![(1_709_532_000, 10.0), (1_709_532_300, 25.0)],
//!     }],
//! };
//! let svg = render(&g, 800, 300, Format::Svg).unwrap();
//! assert!(String::from_utf8(svg).unwrap().starts_with("<svg"));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod profile;

use std::sync::OnceLock;

use chrono::DateTime;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

pub use profile::{GraphRequest, Unit, View, graph_of_profile};

/// DejaVu Sans (Bitstream Vera license, `fonts/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
/// The family name the font is registered under.
const FAMILY: &str = "sans-serif";

/// Why a graph could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The embedded font did not load.
    #[error("the embedded font did not load")]
    Font,
    /// plotters failed to draw.
    #[error("drawing the graph: {0}")]
    Draw(String),
    /// PNG encoding failed.
    #[error("encoding the PNG: {0}")]
    Png(String),
    /// Bad dimensions or an empty time range.
    #[error("{0}")]
    Invalid(String),
    /// Reading the profile or its trend series failed.
    #[error(transparent)]
    Profile(#[from] weir_profile::ProfileError),
}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SVG text.
    Svg,
    /// PNG image.
    Png,
}

/// One stacked layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Fill colour.
    pub colour: [u8; 3],
    /// Drawn below the axis.
    pub negative: bool,
    /// `(time s, value per second)`, ascending; missing times count as 0.
    pub points: Vec<(i64, f64)>,
}

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Title line.
    pub title: String,
    /// Y axis unit, e.g. `bits/s`.
    pub unit: String,
    /// Start of the time axis (s).
    pub from_s: i64,
    /// End of the time axis (s).
    pub to_s: i64,
    /// Layers in stacking order (first at the axis).
    pub series: Vec<Series>,
}

fn init_font() -> Result<(), PlotError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok()
            && plotters::style::register_font(FAMILY, FontStyle::Bold, FONT).is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Renders `g` at `width` × `height` pixels.
pub fn render(g: &Graph, width: u32, height: u32, format: Format) -> Result<Vec<u8>, PlotError> {
    if !(200..=10_000).contains(&width) || !(120..=10_000).contains(&height) {
        return Err(PlotError::Invalid(format!(
            "graph size {width}x{height}: width 200..10000, height 120..10000"
        )));
    }
    if g.to_s <= g.from_s {
        return Err(PlotError::Invalid("the graph's time range is empty".into()));
    }
    init_font()?;
    match format {
        Format::Svg => {
            let mut s = String::new();
            {
                let root = SVGBackend::with_string(&mut s, (width, height)).into_drawing_area();
                draw(g, &root)?;
                root.present().map_err(draw_err)?;
            }
            Ok(s.into_bytes())
        }
        Format::Png => {
            let mut buf = vec![0u8; width as usize * height as usize * 3];
            {
                let root =
                    BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
                draw(g, &root)?;
                root.present().map_err(draw_err)?;
            }
            encode_png(&buf, width, height)
        }
    }
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| PlotError::Png(e.to_string()))?;
        w.write_image_data(rgb).map_err(|e| PlotError::Png(e.to_string()))?;
    }
    Ok(out)
}

/// The stacked layers on a common time grid: per series, `(t, low, high)`.
fn stack(g: &Graph) -> Vec<Vec<(i64, f64, f64)>> {
    let mut times: Vec<i64> = g
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|t| (g.from_s..=g.to_s).contains(t))
        .collect();
    times.sort_unstable();
    times.dedup();
    let mut pos = vec![0.0; times.len()];
    let mut neg = vec![0.0; times.len()];
    let mut out = Vec::with_capacity(g.series.len());
    for s in &g.series {
        let mut layer = Vec::with_capacity(times.len());
        let mut j = 0;
        for (i, &t) in times.iter().enumerate() {
            while j < s.points.len() && s.points[j].0 < t {
                j += 1;
            }
            let v = match s.points.get(j) {
                Some(&(pt, v)) if pt == t && v.is_finite() => v.max(0.0),
                _ => 0.0,
            };
            let acc = if s.negative { &mut neg[i] } else { &mut pos[i] };
            let low = *acc;
            *acc += if s.negative { -v } else { v };
            layer.push((t, low, *acc));
        }
        out.push(layer);
    }
    out
}

/// `1.5 k`, `20 M`: SI prefixes for axis labels.
pub fn si(v: f64) -> String {
    let a = v.abs();
    let (d, p) = match a {
        a if a >= 1e12 => (1e12, " T"),
        a if a >= 1e9 => (1e9, " G"),
        a if a >= 1e6 => (1e6, " M"),
        a if a >= 1e3 => (1e3, " k"),
        _ => (1.0, ""),
    };
    let x = v / d;
    let s = if x.fract().abs() < 1e-9 { format!("{x:.0}") } else { format!("{x:.1}") };
    format!("{s}{p}")
}

/// Tick spacings for the time axis (seconds): whole minutes, hours, days,
/// weeks and ~months, so labels fall on round clock times.
const TICKS: [i64; 14] = [
    60, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800,
    2_592_000,
];

/// Round-time ticks in `[from, to]`, at most about `max`.
fn time_ticks(from: i64, to: i64, max: i64) -> Vec<i64> {
    let span = (to - from).max(1);
    let step = TICKS.iter().copied().find(|s| span / s <= max).unwrap_or(span / max.max(1));
    let step = step.max(1);
    let first = from + (step - from.rem_euclid(step)) % step;
    (0..).map(|i| first + i * step).take_while(|&t| t <= to).collect()
}

fn time_label(t: i64, span: i64) -> String {
    let fmt = match span {
        s if s <= 2 * 86_400 => "%H:%M",
        s if s <= 14 * 86_400 => "%a %d",
        s if s <= 180 * 86_400 => "%b %d",
        _ => "%Y-%m",
    };
    DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format(fmt).to_string())
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

fn draw<DB: DrawingBackend>(g: &Graph, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
    root.fill(&WHITE).map_err(draw_err)?;
    let layers = stack(g);
    let top = layers.iter().flatten().map(|p| p.2).fold(0.0f64, f64::max);
    let bottom = layers.iter().flatten().map(|p| p.2).fold(0.0f64, f64::min);
    let (mut ymin, mut ymax) = (bottom * 1.05, top * 1.05);
    if ymax - ymin <= 0.0 {
        ymax = 1.0;
    }
    if bottom < 0.0 && top <= 0.0 {
        ymax = ymax.max(-ymin * 0.05);
    }
    if ymin == 0.0 && layers.is_empty() {
        ymin = 0.0;
    }
    let span = g.to_s - g.from_s;
    let start = DateTime::from_timestamp(g.from_s, 0)
        .map_or(String::new(), |d| d.format("%Y-%m-%d %H:%M").to_string());
    let end = DateTime::from_timestamp(g.to_s, 0)
        .map_or(String::new(), |d| d.format("%Y-%m-%d %H:%M UTC").to_string());
    let caption = format!("{}  ({start} - {end})", g.title);
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FAMILY, 16).into_font())
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (g.from_s..g.to_s).with_key_points(time_ticks(g.from_s, g.to_s, 8)),
            ymin..ymax,
        )
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_labels(16)
        .y_labels(8)
        .x_label_formatter(&|t| time_label(*t, span))
        .y_label_formatter(&|v| si(*v))
        .y_desc(g.unit.as_str())
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 12))
        .max_light_lines(2)
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(draw_err)?;
    for (s, layer) in g.series.iter().zip(&layers) {
        if layer.is_empty() {
            continue;
        }
        let colour = rgb(s.colour);
        // The band between the layer below and this layer's top.
        let mut poly: Vec<(i64, f64)> = layer.iter().map(|p| (p.0, p.2)).collect();
        poly.extend(layer.iter().rev().map(|p| (p.0, p.1)));
        chart
            .draw_series(std::iter::once(Polygon::new(poly, colour.mix(0.85).filled())))
            .map_err(draw_err)?
            .label(s.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
        chart
            .draw_series(LineSeries::new(layer.iter().map(|p| (p.0, p.2)), colour.stroke_width(1)))
            .map_err(draw_err)?;
    }
    if bottom < 0.0 {
        chart
            .draw_series(LineSeries::new([(g.from_s, 0.0), (g.to_s, 0.0)], BLACK.stroke_width(1)))
            .map_err(draw_err)?;
    }
    if !g.series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FAMILY, 12))
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(draw_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Graph {
        let t0 = 1_709_532_000;
        let pts = |f: fn(i64) -> f64| (0..12).map(|i| (t0 + i * 300, f(i))).collect::<Vec<_>>();
        Graph {
            title: "test".into(),
            unit: "bits/s".into(),
            from_s: t0,
            to_s: t0 + 3600,
            series: vec![
                Series {
                    name: "a".into(),
                    colour: [200, 0, 0],
                    negative: false,
                    points: pts(|i| i as f64),
                },
                Series {
                    name: "b".into(),
                    colour: [0, 0, 200],
                    negative: false,
                    points: pts(|_| 2.0),
                },
                Series {
                    name: "c".into(),
                    colour: [0, 200, 0],
                    negative: true,
                    points: pts(|_| 3.0),
                },
            ],
        }
    }

    #[test]
    fn layers_stack_above_and_below_the_axis() {
        let l = stack(&graph());
        assert_eq!(l[0][5], (1_709_533_500, 0.0, 5.0));
        assert_eq!(l[1][5], (1_709_533_500, 5.0, 7.0));
        assert_eq!(l[2][5], (1_709_533_500, 0.0, -3.0));
    }

    #[test]
    fn svg_and_png_render_without_system_fonts() {
        let svg = String::from_utf8(render(&graph(), 640, 240, Format::Svg).unwrap()).unwrap();
        assert!(svg.contains("<svg") && svg.contains("\nbits/s\n") && svg.contains("\n06:30\n"));
        let png = render(&graph(), 640, 240, Format::Png).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(render(&graph(), 10, 10, Format::Png).is_err());
        let empty = Graph { series: vec![], ..graph() };
        render(&empty, 640, 240, Format::Svg).unwrap();
    }

    #[test]
    fn ticks_fall_on_round_times() {
        let t0 = 1_709_532_000 + 120; // 06:02
        assert_eq!(time_ticks(t0, t0 + 3600, 8)[..2], [1_709_532_600, 1_709_533_200]);
        assert_eq!(time_ticks(0, 7 * 86_400, 8).len(), 8);
    }

    #[test]
    fn si_labels() {
        assert_eq!(si(1500.0), "1.5 k");
        assert_eq!(si(2e6), "2 M");
        assert_eq!(si(-3e9), "-3 G");
        assert_eq!(si(0.5), "0.5");
    }
}
