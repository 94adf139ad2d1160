//! The collector (`weir collect`, nfcapd/sfcapd) and the paced datagram
//! sender (`weir gen --send`, `weir replay`).
//!
//! The collector's one rule: **the receive path never waits**. Receive
//! threads (one per socket) copy each datagram into a bounded queue and go
//! back to the socket; a full queue drops and counts. One decode thread
//! decodes, routes flows to their source's open slot and appends blocks; at
//! each wall-clock-aligned rotation it hands the full slots to a finisher
//! thread, which writes the footer, fsyncs, publishes the file and runs the
//! after-rotation command. Everything counted per exporter goes into the
//! slot footers and the Prometheus endpoint. With `--sflow-pcap` the
//! sampled packet headers of sFlow datagrams are also kept, as a pcap
//! beside each slot file.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod collector;
mod config;
mod headers;
mod listen;
mod metrics;
mod recovery;
pub mod send;
mod slots;

pub use collector::{CollectError, Collector, RunReport};
pub use config::{Cidr, CollectConfig, DEFAULT_QUEUE_DATAGRAMS, FixedSource, Input};
