//! Datagram encoders for every protocol weir decodes: the inverse of
//! `weir-decode`.
//!
//! They started as a dev-only test kit and became a normal crate because
//! `weir gen --send` and `weir replay` put them on the wire. They stay a
//! crate of their own, written from the RFCs independently of the decoders,
//! so that a bug cannot hide by being the same on both sides: the decoders
//! are checked against tshark's reading of real captures as well as against
//! these. Also used by property tests (`decode(encode(x)) == x`), the fuzz
//! targets and benchmarks. [`pcap`] writes packets as a classic pcap
//! stream (sFlow's sampled headers for tcpdump and tshark).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod netflow;
pub mod pcap;
pub mod sflow;
