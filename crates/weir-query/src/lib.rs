//! weir's query engine: the `nfdump` role.
//!
//! A [`QueryPlan`] names the slot files to read, a time window, a filter and
//! a [`Mode`] (list records, aggregate them, or compute top-N statistics).
//! [`execute`] scans the files in parallel (rayon over files and blocks),
//! prunes blocks from their zone maps, decodes the filter's columns first and
//! the output columns only for blocks with matches, merges per-thread
//! partial results, and hands the result to a [`Sink`] in a deterministic
//! order: the same output for 1 thread and N threads.
//!
//! Maps are compact (hashbrown tables of fixed-size entries, 64 hash
//! partitions merged and ranked in parallel); beyond
//! [`ExecOptions::memory_budget`] partial aggregates spill to temporary
//! files by partition and are finished one partition at a time, keeping
//! only the top N. Corrupt blocks and unreadable files are reported in
//! [`Report::errors`] while everything else is answered.
//!
//! Around it: [`select_files`] turns nfdump's `-r`/`-R`/`-M` into a file
//! list, [`TimeWindow::parse`] reads `-t`, [`parse_agg_keys`],
//! [`parse_stat_spec`] and [`parse_order`] read `-A`, `-s` and `-O`, and
//! [`SlotFileSink`] writes results back into a slot file (`-w`).
//!
//! This crate formats nothing; printers (`weir-print`) implement [`Sink`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod agg;
mod error;
mod exec;
mod keys;
mod model;
mod order;
pub mod par;
mod parse;
mod select;
mod spill;
mod stats;
#[cfg(test)]
mod tests;
mod write;

pub use error::QueryError;
pub use exec::{
    BlockRows, BlockScan, DEFAULT_MEMORY_BUDGET, ExecOptions, Report, ScanProgress, execute,
    execute_with,
};
pub use model::*;
pub use order::order_value;
pub use parse::{
    STAT_ELEMENTS, agg_key_name, agg_key_names, parse_agg_keys, parse_order, parse_stat_spec,
    stat_element,
};
pub use select::{InputSpec, select_files};
pub use write::SlotFileSink;
