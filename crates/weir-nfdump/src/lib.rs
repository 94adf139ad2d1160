//! nfdump file import: reads the files nfcapd 1.7 writes and turns them
//! into weir slot files.
//!
//! Operators moving to weir keep years of `nfcapd.YYYYMMDDhhmm` files.
//! [`NfFile`] reads one (layout version 2, as written by nfdump 1.7: blocks
//! uncompressed or compressed with LZO, LZ4, BZ2 or ZSTD; V3 flow records
//! and their extensions; the exporter, exporter-stat and sampler records;
//! the appendix with the ident and the stat record) into weir's
//! [`FlowRecord`]s, and [`import`] walks nfcapd
//! trees and writes one weir slot file per nfcapd file.
//!
//! The reader trusts nothing on disk: every size is checked, decompression
//! is bounded, and damage gives an [`NfError`] naming the file and the byte
//! offset. [`parse`] reads a whole file from bytes (the fuzzing entry).
//!
//! Files of nfdump 1.6 (layout version 1) are refused with a message that
//! says how to convert them (`nfdump -r old -w new` with nfdump 1.7).
//!
//! ```no_run
//! use weir_nfdump::NfFile;
//!
//! let mut f = NfFile::open("flows/nfcapd.202403040600")?;
//! println!("ident {:?}, {} blocks", f.ident(), f.header().num_blocks);
//! f.for_each_flow(|flow| {
//!     println!("{} -> {} {} bytes", flow.src_port, flow.dst_port, flow.bytes);
//!     Ok::<_, weir_nfdump::NfError>(())
//! })?;
//! # Ok::<_, weir_nfdump::NfError>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod codec;
mod error;
mod format;
mod import;
mod lzo;
mod reader;

use std::io::Cursor;

pub use error::{ErrorKind, NfError, Result};
pub use format::{
    BLOCK_HEADER_LEN, BlockHeader, Compression, DATA_BLOCK_TYPE_3, ExporterCounters, ExporterInfo,
    FILE_HEADER_LEN, FileHeader, LAYOUT_VERSION_1, LAYOUT_VERSION_2, MAGIC, MAX_BLOCK, SamplerInfo,
    StatRecord, rtype,
};
pub use import::{
    FailReason, FileOutcome, ImportError, ImportEvent, ImportOptions, ImportReport, NameTime,
    NfcapdName, ProgressFn, find_files, import, parse_nfcapd_name, parse_utc_offset,
};
pub use reader::{
    Block, Blocks, Decoded, Decoder, FlowIter, NfFile, RawRecord, RawRecords, SkipCounts,
};
use weir_record::{ExporterStats, FlowRecord};

/// Everything in one nfdump file.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    /// The file header.
    pub header: FileHeader,
    /// The ident of the appendix.
    pub ident: Option<String>,
    /// The stat record of the appendix.
    pub stat: Option<StatRecord>,
    /// The flows, in file order.
    pub flows: Vec<FlowRecord>,
    /// The exporter table, as weir keeps it.
    pub exporters: Vec<ExporterStats>,
    /// Samplers, by exporter sysid.
    pub samplers: Vec<SamplerInfo>,
    /// What was skipped.
    pub skipped: SkipCounts,
}

/// Reads a whole nfdump file from memory. Errors name the file `<bytes>`.
/// Any input gives a result or an error, never a panic.
pub fn parse(bytes: &[u8]) -> Result<ParsedFile> {
    let mut f = NfFile::from_reader(Cursor::new(bytes), "<bytes>")?;
    let flows = f.flows()?;
    Ok(ParsedFile {
        header: *f.header(),
        ident: f.ident().map(str::to_string),
        stat: f.stat().copied(),
        flows,
        exporters: f.exporter_stats(),
        samplers: f.decoder().samplers().values().flatten().copied().collect(),
        skipped: f.skipped().clone(),
    })
}
