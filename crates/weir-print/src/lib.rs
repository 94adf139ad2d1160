//! weir's printers: nfdump 1.7's output formats as [`weir_query::Sink`]s.
//!
//! `weir query` must print what `nfdump` 1.7.8 prints, so that scripts
//! written against nfdump keep working: the same header lines, column
//! widths, number scaling, summary lines, csv headers and json keys.
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
