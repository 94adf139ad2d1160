//! weir's printers: nfdump 1.7's output formats as [`weir_query::Sink`]s.
//!
//! `weir query` must print what `nfdump` 1.7.8 prints, so that scripts
//! written against nfdump keep working: the same header lines, column
//! widths, number scaling, summary lines, csv headers and json keys.
//!
//! Formats (`-o`, see [`Format::parse`]): `line` (default), `long`,
//! `extended`, `biline`, `bilong` (each with a `6` suffix for full IPv6),
//! `fmt:…` with nfdump's `%` tokens (and `%line`, `%long`, … embedded),
//! `csv`, `csv:…`, `json`, `ndjson`, `raw` and `null`. Element statistics
//! print as nfdump's `Top N … ordered by …:` tables (or their csv/json
//! variants), `-s record` as `Top N flows ordered by …:` plus the record
//! format, and the run ends with nfdump 1.7.8's four summary lines.
//!
//! Where nfdump 1.7.1 and 1.7.8 differ, the printers follow 1.7.8: `%tos`
//! is `%4u` (1.7.1: `%3u`), stat tables have no blank line after them,
//! `-N` prints TCP flags as a number, `%it`/`%ic` print the type/code
//! bytes of the destination port whatever the protocol, fmt `%bps`/`%pps`
//! use integer arithmetic (1.7.1 used floating point and could be one
//! lower), csv prints `type.code` for ICMP destination ports, and the
//! summary reads `Total records processed` with a `Time window` in
//! milliseconds and its `Duration`.
//!
//! Deliberate differences from nfdump 1.7.8 itself: tokens for data weir
//! does not store (geo, NSEL/NAT, latency, payload, JA3/JA4, VRF, pflog,
//! TTL, …) are rejected with "not supported by weir"; `-o json` always
//! closes its array (also after `-s record`, where nfdump leaves it open);
//! a json stat row of the `flags` element carries the flags text (nfdump
//! prints an empty string); `raw` derives nfdump's extension list and
//! record size from the fields present; `Sys:`/`User:` come from
//! `/proc/self/stat` (1/100 s resolution, 0 elsewhere).
//!
//! ```
//! use weir_print::{Format, PrintOptions, Printer, TimeZoneSetting};
//! use weir_query::{Section, Sink, Summary};
//! use weir_record::{FlowRecord, ip_to_u128};
//!
//! let opts = PrintOptions {
//!     format: Format::parse("line").unwrap(),
//!     quiet: true,
//!     timezone: TimeZoneSetting::utc(),
//!     ..Default::default()
//! };
//! let mut p = Printer::new(Vec::new(), opts);
//! let r = FlowRecord {
//!     first: 1_720_689_300_000,
//!     last: 1_720_689_301_500,
//!     proto: 6,
//!     src_port: 40000,
//!     dst_port: 80,
//!     packets: 4,
//!     bytes: 187,
//!     src_addr: Some(ip_to_u128("10.0.0.1".parse().unwrap())),
//!     dst_addr: Some(ip_to_u128("192.168.1.10".parse().unwrap())),
//!     ..Default::default()
//! };
//! p.begin_section(Section::Records).unwrap();
//! p.records("", &[r]).unwrap();
//! p.summary(&Summary { records_passed: 1, ..Default::default() }).unwrap();
//! assert_eq!(
//!     String::from_utf8(p.into_inner()).unwrap(),
//!     "2024-07-11 09:15:00.000     00:00:01.500 TCP           10.0.0.1:40000 ->     192.168.1.10:80           4      187     1\n"
//! );
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod format;
mod json;
mod printer;
mod raw;
mod render;
mod stat;
mod text;

pub use format::{Format, FormatError, Token};
pub use printer::Printer;
pub use text::TimeZoneSetting;

/// How to print (the CLI's `-o`, `-N`, `-q`, `-6`, `-n`).
#[derive(Debug, Clone, PartialEq)]
pub struct PrintOptions {
    /// `-o`: the output format.
    pub format: Format,
    /// `-N`: plain numbers (no `M`/`G`/`T` scaling, numeric protocols and
    /// flags, durations in seconds).
    pub plain_numbers: bool,
    /// `-q`: no header lines and no summary.
    pub quiet: bool,
    /// `-6`: full IPv6 addresses (also implied by `line6`, `long6`, …).
    pub full_ipv6: bool,
    /// `-n`: the N of "Top N … ordered by" headings of element
    /// statistics (0 = unlimited, printed as "Top …"). Default 10.
    pub top_n: usize,
    /// The time zone of printed times (nfdump: local time as `TZ` says).
    pub timezone: TimeZoneSetting,
}

impl Default for PrintOptions {
    fn default() -> PrintOptions {
        PrintOptions {
            format: Format::default(),
            plain_numbers: false,
            quiet: false,
            full_ipv6: false,
            top_n: 10,
            timezone: TimeZoneSetting::Local,
        }
    }
}
