//! Graphs of profile trend series.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
