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
//! This crate formats nothing; printers (`weir-print`) implement [`Sink`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod model;

pub use model::*;
