//! The flow record model at the bottom of weir's layers.
//!
//! Everything above — decoders, the store, the filter, the query engine,
//! the printers — speaks in the types of this crate, and this crate depends
//! on nothing. The design decision worth knowing: **one registry drives
//! everything**. [`Field`] lists the stored columns with their on-disk ids,
//! and [`FIELDS`] gives each its name, nfdump filter keyword and `fmt:`
//! token, so adding a field is one line in `field.rs`.
//!
//! Flows travel in two shapes: a row ([`FlowRecord`]), as decoders produce
//! them, and a column batch ([`FlowBatch`]), as the store writes and the
//! query engine scans them. [`BatchBuilder`] turns the first into the second.
//!
//! ```
//! use weir_record::{BatchBuilder, Field, FlowRecord, ip_to_u128};
//!
//! let mut b = BatchBuilder::default();
//! let mut r = FlowRecord { proto: 17, dst_port: 53, packets: 1, bytes: 64, ..Default::default() };
//! r.src_addr = Some(ip_to_u128("192.0.2.7".parse().unwrap()));
//! b.push(&r);
//! let batch = b.finish();
//! assert_eq!(batch.rows(), 1);
//! assert_eq!(batch.column(Field::DstPort).unwrap().get(0), Some(53));
//! assert!(batch.column(Field::SrcVlan).is_none()); // no row has a VLAN
//! assert_eq!(Field::DstPort.info().keyword, "dst port");
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod batch;
mod field;
mod ip;
mod stats;

pub use batch::{Bitmap, Column, ColumnBuilder, FlowBatch, IntoValues, Values};
pub use field::{
    ATTRS, AttrInfo, AttrSource, BatchBuilder, DenseFields, FIELDS, Field, FieldInfo, FieldType,
    FlowRecord, Physical, UnknownField,
};
pub use ip::{format_mac, ip_to_u128, is_ipv4_mapped, u128_to_ip};
pub use stats::{BlockStats, Counts, ExporterStats, ProtoClass, SlotTotals, ZoneMap};
