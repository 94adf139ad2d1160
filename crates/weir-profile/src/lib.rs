//! NfSen's profiles, rebuilt on weir's slot files.
//!
//! A profile ([`Profile`], one TOML file in a profiles directory) names
//! the collector sources that feed it, a time range, and channels: named
//! nfdump filters with a graph sign, colour and order. A profile is
//! **shadow** (nothing copied: its channels filter the live data at query
//! time) or **materialized** (each channel's flows copied into the
//! profile's own slot files, which may outlive the live data).
//!
//! The design decision worth knowing: a build is **one pass**. All
//! channels of a profile are evaluated together over each block — the
//! union of their columns is decoded once and each compiled filter fills a
//! bitmap — with the blocks of many slots spread over the cores
//! ([`weir_query::par::ParPool`]). Each slot's counts (flows, packets,
//! bytes; total, tcp, udp, icmp, other: NfSen's fifteen series) go into a
//! round-robin [`Trend`] file per channel, in slot order, and a slot is
//! never applied twice, so builds resume after an interruption and
//! updates are idempotent.
//!
//! [`expire`] is nfexpire: oldest whole files first, by age and size, down
//! to a low watermark, with a bookkeeping file.
//!
//! ```
//! use std::path::Path;
//! use weir_profile::{Profile, Sign, Storage};
//!
//! let p = Profile::from_toml(r##"
//!     name = "slammer"
//!     start = "2024-03-04T09:00"
//!     storage = "shadow"
//!     [[channel]]
//!     name = "slammer"
//!     filter = "proto udp and port 1434"
//!     colour = "#d62728"
//! "##, Path::new("slammer.toml")).unwrap();
//! assert_eq!(p.storage, Storage::Shadow);
//! assert_eq!(p.channels[0].sign, Sign::Plus);
//! assert!(Profile::from_toml("name = '../etc'", Path::new("x.toml")).is_err());
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod build;
mod def;
mod error;
mod eval;
pub mod expire;
mod store;
pub mod trend;

pub use build::{
    BuildOptions, BuildProgress, BuildReport, Inputs, QueryInput, SlotFiles, Status, build,
    channel_filters, inputs, live_slots, query_input, status,
};
pub use def::{
    Channel, Kind, MAX_NAME_LEN, PALETTE, Profile, Retention, Sign, Storage, check_name,
    fmt_time_s, parse_colour, parse_time_s,
};
pub use error::{ProfileError, Result};
pub use eval::{BlockOut, ChannelSet};
pub use store::{Lock, ProfileStore, TREND_EXT};
pub use trend::{Metric, Point, Trend};
