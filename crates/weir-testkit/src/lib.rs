//! Dev-only test kit: datagram encoders for every protocol weir decodes.
//!
//! These are the inverse of `weir-decode`, kept out of production code so
//! that a bug cannot hide by being the same on both sides: the encoders are
//! written from the RFCs and the decoders are checked against tshark's
//! reading of real captures as well as against these. Used by property
//! tests (`decode(encode(x)) == x`), the fuzz targets and benchmarks.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod netflow;
pub mod sflow;
