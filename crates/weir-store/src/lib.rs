//! weir's columnar slot files: `docs/FORMAT.md` made code.
//!
//! A slot file holds the flows of one source for one time slot. Rows are
//! grouped in blocks; inside a block every column is encoded (frame of
//! reference or deltas, byte-shuffled), compressed with zstd when that wins,
//! and checksummed on its own, with its min/max in the block header. A query
//! therefore reads exactly the columns it needs, of exactly the blocks whose
//! zone maps say "maybe", from a read-only memory map.
//!
//! Files are written to a temporary name next to their final place and
//! published with fsync + link + directory fsync; once published they are
//! never modified.
//!
//! ```
//! use weir_record::{Field, FlowRecord};
//! use weir_store::{Creator, SlotFile, SlotMeta, SlotWriter, WriterOptions, slot_path, SubdirLayout, ChunkReader};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let start = 1_709_532_000; // 2024-03-04 06:00 UTC
//! let path = slot_path(dir.path(), SubdirLayout::YearMonthDay, start, 300);
//! let meta = SlotMeta { slot_start_s: start, slot_len_s: 300, ident: "demo".into(), creator: Creator::Gen };
//! let mut w = SlotWriter::create(&path, meta, WriterOptions::default()).unwrap();
//! for i in 0..1000u64 {
//!     let t = start as u64 * 1000 + i;
//!     w.push(&FlowRecord { first: t, last: t, received: t, proto: 6, dst_port: 443, packets: 1, bytes: 60, ..Default::default() }).unwrap();
//! }
//! let path = w.finish().unwrap();
//! assert!(path.ends_with("2024/03/04/weir.202403040600"));
//!
//! let f = SlotFile::open(&path).unwrap();
//! assert_eq!(f.info().totals.all.flows, 1000);
//! let block = f.block(0).unwrap();
//! let ports = block.column(Field::DstPort, &mut ChunkReader::new()).unwrap().unwrap();
//! assert_eq!(ports.get(999), Some(443));
//! ```
#![deny(missing_docs)]

mod codec;
mod error;
mod format;
mod layout;
mod reader;
mod recover;
mod spare;
mod writer;

pub use codec::{
    ChunkMeta, EncodeHint, FLAG_PACKED, FLAG_SHUFFLE, FLAG_VALIDITY, FLAG_ZSTD, KIND_DELTA,
    KIND_DICT, KIND_FOR, KIND_REL, decode as decode_chunk, encode as encode_chunk,
    encode_hinted as encode_chunk_hinted,
};
pub use error::{ErrorKind, Result, StoreError};
pub use format::{
    BlockIndexEntry, ColumnEntry, Creator, HEADER_LEN, MAGIC, SlotInfo, TRAILER_LEN, VERSION,
};
pub use layout::{
    DEFAULT_SLOT_SECS, FILE_PREFIX, SlotEntry, SlotName, SubdirLayout, TimeRange, list_files,
    no_files, parse_slot_file_name, slot_file_name, slot_path, slot_start, with_seq,
};
pub use reader::{Block, ChunkReader, SlotFile};
pub use recover::{
    MAX_RECOVER_BLOCK_ROWS, RECOVERING_SUFFIX, RecoverOptions, RecoveryReport, TempName,
    find_unfinished, parse_temp_file_name, recover,
};
pub use spare::recycle;
pub use writer::{
    Compression, DEFAULT_BLOCK_ROWS, DEFAULT_ZSTD_LEVEL, OnExists, SlotMeta, SlotWriter,
    WriterOptions,
};
