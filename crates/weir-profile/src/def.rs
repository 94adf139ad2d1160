//! Profile definitions: the TOML files in the profiles directory.

use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Deserializer, Serialize};
use weir_filter::Filter;

use crate::error::{ProfileError, Result};

/// Longest profile, channel or source name.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a profile, channel or source name: 1-64 characters of
/// `A-Z a-z 0-9 _ - .`, not starting with `.`. Such a name is one path
/// component that cannot be `.`, `..` or hidden, so it cannot leave the
/// directory it is joined to.
pub fn check_name(what: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok { Ok(()) } else { Err(ProfileError::BadName { what, name: name.to_string() }) }
}

/// Continuous profiles are kept up to date after every rotation; history
/// profiles cover a fixed past range and are built once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Built up to now and then updated after each rotation.
    #[default]
    Continuous,
    /// Built over `start..end` only.
    History,
}

/// Where a profile's flows live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// No data copied: channel filters are applied at query time over the
    /// live data (only the trend series are kept).
    #[default]
    Shadow,
    /// Each channel's flows are copied into the profile's own slot files,
    /// so they can outlive the live data's retention.
    Materialized,
}

/// Graph side of a channel: `+` above the time axis, `-` below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Sign {
    /// Above the axis.
    #[default]
    #[serde(rename = "+")]
    Plus,
    /// Below the axis.
    #[serde(rename = "-")]
    Minus,
}

/// One channel: a named filter with its graph attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Channel name (a file name: `A-Z a-z 0-9 _ - .`).
    pub name: String,
    /// nfdump filter selecting the channel's flows (`docs/FILTER.md`).
    #[serde(default = "any")]
    pub filter: String,
    /// `+` (graph above the axis, the default) or `-` (below).
    #[serde(default)]
    pub sign: Sign,
    /// Graph colour, `#rrggbb`; picked from a palette when absent.
    #[serde(default, alias = "color", skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
    /// Stacking order in graphs (lower first); file order when equal.
    #[serde(default)]
    pub order: i32,
}

fn any() -> String {
    "any".to_string()
}

/// Retention of a materialized profile's own slot files (`weir expire
/// --profile`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Maximum age, e.g. `"30d"`, `"12w"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    /// Maximum size, e.g. `"500G"` (1024-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<String>,
}

impl Retention {
    /// The expiry limits these settings give (default watermark).
    pub fn limits(&self) -> std::result::Result<crate::expire::Limits, String> {
        Ok(crate::expire::Limits {
            max_age_s: self.max_age.as_deref().map(crate::expire::parse_age_s).transpose()?,
            max_size: self.max_size.as_deref().map(crate::expire::parse_size).transpose()?,
            ..Default::default()
        })
    }
}

/// A profile definition (`<profiles>/<name>.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Profile name; equals the file's stem.
    pub name: String,
    /// Free text shown by `weir profile list/show`.
    #[serde(default)]
    pub description: String,
    /// Collector sources feeding the profile: sub-directories of the live
    /// data directory (`weir collect -n ident,IP,dir`), or, when no such
    /// directory exists, file idents. Empty: all live data.
    #[serde(default)]
    pub sources: Vec<String>,
    /// First slot, UTC: `2024-03-04T09:00`, RFC 3339 or a TOML date-time.
    #[serde(deserialize_with = "time_text")]
    pub start: String,
    /// End (exclusive), UTC; required for history profiles.
    #[serde(default, deserialize_with = "opt_time_text", skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// `continuous` (default) or `history`.
    #[serde(default, rename = "type")]
    pub kind: Kind,
    /// `shadow` (default) or `materialized`.
    #[serde(default)]
    pub storage: Storage,
    /// Slot length of the trend series in seconds (the collector's `-t`).
    #[serde(default = "default_slot")]
    pub slot: u32,
    /// Retention of the profile's own files (materialized profiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<Retention>,
    /// The channels (`[[channel]]` tables), at least one.
    #[serde(rename = "channel")]
    pub channels: Vec<Channel>,
}

fn default_slot() -> u32 {
    weir_store::DEFAULT_SLOT_SECS
}

/// A string or a TOML date-time, kept as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum TimeValue {
    Text(String),
    Date(toml::value::Datetime),
}

fn time_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(match TimeValue::deserialize(d)? {
        TimeValue::Text(s) => s,
        TimeValue::Date(t) => t.to_string(),
    })
}

fn opt_time_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    time_text(d).map(Some)
}

/// Parses a UTC time: RFC 3339, `YYYY-MM-DD[Thh:mm[:ss]]` (also with a
/// space), or epoch seconds. Returns seconds since the epoch.
pub fn parse_time_s(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp());
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok();
    }
    let t = t.replacen(' ', "T", 1);
    let t = t.trim_end_matches('Z');
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(d.and_utc().timestamp());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

/// `YYYY-MM-DDThh:mm:ssZ` for seconds since the epoch.
pub fn fmt_time_s(s: i64) -> String {
    DateTime::from_timestamp(s, 0)
        .map_or_else(|| s.to_string(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Default channel colours (NfSen-like, readable on white).
pub const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

impl Profile {
    /// Parses and checks a definition; `path` names the file in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Profile> {
        let p: Profile =
            toml::from_str(text).map_err(|e| ProfileError::def(path, e.to_string()))?;
        p.check(path)?;
        Ok(p)
    }

    /// Reads and checks `path`; the profile name must equal the file stem.
    pub fn load(path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError::io(path, "read", e))?;
        let p = Profile::from_toml(&text, path)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem != p.name {
            return Err(ProfileError::def(
                path,
                format!("name '{}' differs from the file name '{stem}'", p.name),
            ));
        }
        Ok(p)
    }

    /// The definition as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks names, times, filters and colours.
    pub fn check(&self, path: &Path) -> Result<()> {
        check_name("profile", &self.name)?;
        for s in &self.sources {
            check_name("source", s)?;
        }
        let start = self.start_s().map_err(|m| ProfileError::def(path, m))?;
        let end = self.end_s().map_err(|m| ProfileError::def(path, m))?;
        if let Some(e) = end
            && e <= start
        {
            return Err(ProfileError::def(path, "end must be after start"));
        }
        if self.kind == Kind::History && end.is_none() {
            return Err(ProfileError::def(path, "a history profile needs an end time"));
        }
        if self.slot == 0 || 86_400 % self.slot != 0 {
            return Err(ProfileError::def(path, "slot must divide a day (e.g. 60, 300)"));
        }
        if self.channels.is_empty() {
            return Err(ProfileError::def(path, "a profile needs at least one [[channel]]"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.channels {
            check_name("channel", &c.name)?;
            if !seen.insert(c.name.as_str()) {
                return Err(ProfileError::def(path, format!("channel '{}' twice", c.name)));
            }
            if let Some(col) = &c.colour
                && parse_colour(col).is_none()
            {
                return Err(ProfileError::def(
                    path,
                    format!("channel '{}': colour '{col}' is not #rrggbb", c.name),
                ));
            }
            self.channel_filter(c)?;
        }
        if let Some(r) = &self.expire {
            r.limits().map_err(|m| ProfileError::def(path, m))?;
        }
        Ok(())
    }

    /// Start, seconds since the epoch.
    pub fn start_s(&self) -> std::result::Result<i64, String> {
        parse_time_s(&self.start).ok_or_else(|| format!("start '{}' is not a time", self.start))
    }

    /// End (exclusive), if any.
    pub fn end_s(&self) -> std::result::Result<Option<i64>, String> {
        self.end
            .as_deref()
            .map(|e| parse_time_s(e).ok_or_else(|| format!("end '{e}' is not a time")))
            .transpose()
    }

    /// A channel by name.
    pub fn channel(&self, name: &str) -> Result<&Channel> {
        self.channels.iter().find(|c| c.name == name).ok_or_else(|| ProfileError::NoChannel {
            profile: self.name.clone(),
            channel: name.to_string(),
        })
    }

    /// The channel's colour (given, or from the palette by position).
    pub fn colour_of(&self, c: &Channel) -> [u8; 3] {
        let i = self.channels.iter().position(|x| x.name == c.name).unwrap_or(0);
        c.colour
            .as_deref()
            .and_then(parse_colour)
            .unwrap_or_else(|| parse_colour(PALETTE[i % PALETTE.len()]).unwrap_or([0, 0, 0]))
    }

    /// Channels in graph order (`order`, then file order).
    pub fn ordered_channels(&self) -> Vec<&Channel> {
        let mut v: Vec<&Channel> = self.channels.iter().collect();
        v.sort_by_key(|c| c.order);
        v
    }

    /// The channel's own filter, parsed (see [`crate::channel_filters`]
    /// for the effective filter with the sources' idents).
    pub fn channel_filter(&self, c: &Channel) -> Result<Filter> {
        Filter::parse(&c.filter).map_err(|e| ProfileError::Filter {
            profile: self.name.clone(),
            channel: c.name.clone(),
            message: e.pretty.clone(),
        })
    }
}

/// `#rrggbb` → RGB.
pub fn parse_colour(s: &str) -> Option<[u8; 3]> {
    let h = s.strip_prefix('#')?;
    if h.len() != 6 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u32::from_str_radix(h, 16).ok()?;
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLAMMER: &str = r##"
name = "slammer"
description = "SQL Slammer"
start = "2024-03-04T09:00"
type = "continuous"
storage = "shadow"

[[channel]]
name = "slammer"
filter = "proto udp and port 1434"
colour = "#d62728"
"##;

    #[test]
    fn parses_a_definition_with_defaults() {
        let p = Profile::from_toml(SLAMMER, Path::new("slammer.toml")).unwrap();
        assert_eq!(p.start_s().unwrap(), 1_709_542_800);
        assert_eq!((p.kind, p.storage, p.slot), (Kind::Continuous, Storage::Shadow, 300));
        assert_eq!(p.channels[0].sign, Sign::Plus);
        assert_eq!(p.colour_of(&p.channels[0]), [0xd6, 0x27, 0x28]);
        let again = Profile::from_toml(&p.to_toml(), Path::new("x")).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn toml_datetimes_and_signs() {
        let t = "name='a'\nstart=2024-03-04T09:00:00Z\nend=2024-03-05\ntype='history'\n\
                 [[channel]]\nname='in'\nsign='-'\n";
        let p = Profile::from_toml(t, Path::new("a.toml")).unwrap();
        assert_eq!(p.end_s().unwrap(), Some(1_709_596_800));
        assert_eq!(p.channels[0].sign, Sign::Minus);
        assert_eq!(p.channels[0].filter, "any");
    }

    #[test]
    fn bad_definitions_name_the_problem() {
        for (text, want) in [
            ("name='a'\nstart='2024-03-04'\n", "channel"),
            ("name='a'\nstart='yesterday'\n[[channel]]\nname='c'\n", "not a time"),
            ("name='a'\nstart='2024-03-04'\nbogus=1\n[[channel]]\nname='c'\n", "bogus"),
            ("name='a'\nstart='2024-03-04'\ntype='history'\n[[channel]]\nname='c'\n", "end"),
            ("name='../a'\nstart='2024-03-04'\n[[channel]]\nname='c'\n", "invalid profile"),
            ("name='a'\nstart='2024-03-04'\n[[channel]]\nname='c/d'\n", "invalid channel"),
            (
                "name='a'\nstart='2024-03-04'\n[[channel]]\nname='c'\nfilter='port 99999'\n",
                "filter",
            ),
            ("name='a'\nstart='2024-03-04'\n[[channel]]\nname='c'\ncolour='red'\n", "colour"),
            ("name = [", "TOML"),
        ] {
            let e = Profile::from_toml(text, Path::new("a.toml")).unwrap_err().to_string();
            assert!(e.contains(want) || (want == "TOML" && e.contains("a.toml")), "{text}: {e}");
        }
    }

    #[test]
    fn names_cannot_escape() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "x\0y", &"a".repeat(65)] {
            assert!(check_name("profile", bad).is_err(), "{bad:?}");
        }
        for good in ["slammer", "web-80", "a.b", "R1_in"] {
            check_name("profile", good).unwrap();
        }
    }
}
