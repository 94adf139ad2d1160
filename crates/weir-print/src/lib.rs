//! weir's printers: nfdump 1.7's output formats as [`weir_query::Sink`]s.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
