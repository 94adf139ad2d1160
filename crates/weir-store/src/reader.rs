//! Reading slot files through a memory map.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use weir_record::{BlockStats, Column, Field, FlowBatch, Values, ZoneMap};

use crate::codec;
use crate::error::{ErrorKind, Result, StoreError};
use crate::format::{
    BLOCK_FIXED_LEN, BLOCK_MAGIC, BlockIndexEntry, Bytes, ColumnEntry, EntryError, FileHeader,
    FooterError, HEADER_LEN, MAGIC, SlotInfo, TRAILER_LEN, VERSION, decode_footer,
};

/// Bytes before a block that [`SlotFile::release_block`] releases too
/// (twice the kernel's default fault-around window).
const FAULT_AROUND: usize = 128 << 10;

/// An open, validated slot file. Opening checks the header, trailer and
/// footer; blocks and chunks are checked when they are read.
pub struct SlotFile {
    path: PathBuf,
    map: Mmap,
    header: FileHeader,
    info: SlotInfo,
    blocks: Vec<BlockIndexEntry>,
    footer_off: u64,
}

impl std::fmt::Debug for SlotFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotFile")
            .field("path", &self.path)
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

fn lossy(b: &[u8]) -> String {
    b.iter().map(|&c| if c.is_ascii_graphic() { c as char } else { '.' }).collect()
}

impl SlotFile {
    /// Opens and validates `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SlotFile> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| StoreError::io(path, "open", e))?;
        let len = file.metadata().map_err(|e| StoreError::io(path, "stat", e))?.len();
        let min = (HEADER_LEN + TRAILER_LEN) as u64;
        if len < min {
            return Err(StoreError::at(
                path,
                len,
                ErrorKind::Truncated(format!(
                    "file is {len} bytes, a slot file has at least {min}"
                )),
            ));
        }
        // SAFETY: slot files are immutable once published (FORMAT.md): the
        // writer never maps or reopens a finalized file and expiry only
        // unlinks whole files, which leaves an existing mapping intact. The
        // map is read-only, and every read below is bounds-checked against
        // `map.len()`, so no byte outside the file is ever touched.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| StoreError::io(path, "mmap", e))?;
        Self::from_map(path.to_path_buf(), map)
    }

    fn from_map(path: PathBuf, map: Mmap) -> Result<SlotFile> {
        let len = map.len() as u64;
        let err = |off: u64, kind| StoreError::at(&path, off, kind);
        let magic = &map[0..8];
        if magic != MAGIC {
            return Err(err(0, ErrorKind::BadMagic { expected: "WEIRSLOT", found: lossy(magic) }));
        }
        let mut h = Bytes::new(&map[8..HEADER_LEN], 8);
        let short =
            |s: crate::format::ShortRead| err(s.offset, ErrorKind::Truncated("header".into()));
        let version = h.u16().map_err(short)?;
        check_version(version).map_err(|k| err(8, k))?;
        let _hdr_len = h.u16().map_err(short)?;
        let slot_len_s = h.u32().map_err(short)?;
        let slot_start_s = h.i64().map_err(short)?;
        let stored = u32::from_le_bytes(map[28..32].try_into().expect("4 bytes"));
        let computed = crc32fast::hash(&map[0..28]);
        if stored != computed {
            return Err(err(
                28,
                ErrorKind::Checksum { what: "file header".into(), stored, computed },
            ));
        }
        let header = FileHeader { version, slot_len_s, slot_start_s };

        let t_off = len - TRAILER_LEN as u64;
        let t = &map[t_off as usize..];
        if &t[24..32] != MAGIC {
            return Err(err(
                t_off + 24,
                ErrorKind::Truncated(format!(
                    "no trailer (found {:?} where the end magic belongs): the file was not finalized or was cut short",
                    lossy(&t[24..32])
                )),
            ));
        }
        let mut tb = Bytes::new(t, t_off);
        let footer_off = tb.u64().map_err(short)?;
        let footer_len = tb.u32().map_err(short)? as u64;
        let footer_crc = tb.u32().map_err(short)?;
        let t_version = tb.u16().map_err(short)?;
        if t[18..24].iter().any(|&b| b != 0) {
            return Err(err(
                t_off + 18,
                ErrorKind::Corrupt("reserved trailer bytes are not zero".into()),
            ));
        }
        if t_version != version {
            return Err(err(
                t_off + 16,
                ErrorKind::Corrupt(format!(
                    "trailer version {t_version} differs from header version {version}"
                )),
            ));
        }
        if footer_off < HEADER_LEN as u64 || footer_off.checked_add(footer_len) != Some(t_off) {
            return Err(err(
                t_off,
                ErrorKind::Corrupt(format!(
                    "footer at {footer_off} of {footer_len} bytes does not end at the trailer ({t_off})"
                )),
            ));
        }
        let footer = &map[footer_off as usize..t_off as usize];
        let computed = crc32fast::hash(footer);
        if computed != footer_crc {
            return Err(err(
                footer_off,
                ErrorKind::Checksum { what: "footer".into(), stored: footer_crc, computed },
            ));
        }
        let (info, blocks) = decode_footer(footer, footer_off)
            .map_err(|FooterError(off, msg)| err(off, ErrorKind::Corrupt(msg)))?;
        if info.slot_start_s != slot_start_s || info.slot_len_s != slot_len_s {
            return Err(err(
                footer_off,
                ErrorKind::Corrupt("footer slot differs from header slot".into()),
            ));
        }
        let mut next = HEADER_LEN as u64;
        for (i, b) in blocks.iter().enumerate() {
            let end = b.offset.checked_add(b.length);
            if b.offset < next
                || end.is_none_or(|e| e > footer_off)
                || b.length < BLOCK_FIXED_LEN as u64 + 4
            {
                return Err(err(
                    footer_off,
                    ErrorKind::Corrupt(format!(
                        "block index entry {i} (offset {}, length {}) lies outside the data area",
                        b.offset, b.length
                    )),
                ));
            }
            next = b.offset + b.length;
        }
        Ok(SlotFile { path, map, header, info, blocks, footer_off })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Format version of the file.
    pub fn version(&self) -> u16 {
        self.header.version
    }

    /// Footer metadata: slot, ident, totals, exporters.
    pub fn info(&self) -> &SlotInfo {
        &self.info
    }

    /// The block index.
    pub fn blocks(&self) -> &[BlockIndexEntry] {
        &self.blocks
    }

    /// Rows in the file.
    pub fn rows(&self) -> u64 {
        self.blocks.iter().map(|b| b.rows as u64).sum()
    }

    /// File size in bytes.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Whether the file holds no rows.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Size of the footer and trailer.
    pub fn footer_len(&self) -> u64 {
        self.len() - self.footer_off
    }

    /// Tells the OS that this process is done with block `i`'s bytes, so
    /// their pages leave the process's resident set (they stay in the page
    /// cache; reading the block again simply faults them back in). A scan
    /// calls it after decoding a block, which keeps a query's memory
    /// independent of file size. Out-of-range blocks are ignored.
    ///
    /// The range released starts [`FAULT_AROUND`] bytes before the block:
    /// the kernel maps the pages around a faulting one ("fault-around",
    /// 64 KiB by default), so reading the start of a block maps the end of
    /// the one before again, after that block was released. Without the
    /// margin a scan kept about 26 KiB per block resident (8 MiB of a
    /// 10 M-flow file).
    pub fn release_block(&self, i: usize) {
        self.release_blocks(i..i.saturating_add(1));
    }

    /// [`SlotFile::release_block`] of blocks `range` in one call (one
    /// `madvise`, so one TLB flush on every core instead of one per block).
    /// Out-of-range blocks are ignored.
    pub fn release_blocks(&self, range: std::ops::Range<usize>) {
        let end = range.end.min(self.blocks.len());
        if range.start >= end {
            return;
        }
        let (first, last) = (&self.blocks[range.start], &self.blocks[end - 1]);
        let (Ok(off), Ok(last_off), Ok(last_len)) = (
            usize::try_from(first.offset),
            usize::try_from(last.offset),
            usize::try_from(last.length),
        ) else {
            return;
        };
        let Some(end) =
            last_off.checked_add(last_len).filter(|e| *e <= self.map.len() && *e >= off)
        else {
            return;
        };
        let off = off.saturating_sub(FAULT_AROUND);
        let len = end - off;
        #[cfg(target_os = "linux")]
        // SAFETY: the map is a read-only MAP_SHARED mapping of an immutable
        // published file (see `open`). MADV_DONTNEED on such a mapping only
        // drops this process's page-table entries: a later access faults the
        // same file bytes back in from the page cache, so every outstanding
        // `&[u8]` into the range still reads exactly what it read before.
        // Nothing is zeroed (that happens only to private or anonymous
        // mappings), and the range was checked against the map's length.
        let _ = unsafe {
            self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, off, len)
        };
    }

    /// Parses and checks the header of block `i`.
    pub fn block(&self, i: usize) -> Result<Block<'_>> {
        let idx = *self.blocks.get(i).ok_or_else(|| {
            StoreError::file(&self.path, ErrorKind::Invalid(format!("no block {i}")))
        })?;
        let err = |off: u64, kind| StoreError::at(&self.path, off, kind);
        let bytes = &self.map[idx.offset as usize..(idx.offset + idx.length) as usize];
        if &bytes[0..4] != BLOCK_MAGIC {
            return Err(err(
                idx.offset,
                ErrorKind::BadMagic { expected: "WBLK", found: lossy(&bytes[0..4]) },
            ));
        }
        let mut b = Bytes::new(bytes, idx.offset);
        b.take(4).expect("checked length");
        let header_len = b.u32().expect("checked length") as u64;
        let rows = b.u32().expect("checked length");
        let ncols = b.u16().expect("checked length") as usize;
        b.u16().expect("checked length");
        if header_len < BLOCK_FIXED_LEN as u64 + 4 || header_len > idx.length {
            return Err(err(
                idx.offset + 4,
                ErrorKind::Corrupt(format!("block header length {header_len}")),
            ));
        }
        let crc_at = (header_len - 4) as usize;
        let stored = u32::from_le_bytes(bytes[crc_at..crc_at + 4].try_into().expect("4 bytes"));
        let computed = crc32fast::hash(&bytes[..crc_at]);
        if stored != computed {
            return Err(err(
                idx.offset + crc_at as u64,
                ErrorKind::Checksum { what: format!("header of block {i}"), stored, computed },
            ));
        }
        if rows != idx.rows {
            return Err(err(
                idx.offset + 8,
                ErrorKind::Corrupt(format!("block {i} has {rows} rows, index says {}", idx.rows)),
            ));
        }
        let mut eb =
            Bytes::new(&bytes[BLOCK_FIXED_LEN..crc_at], idx.offset + BLOCK_FIXED_LEN as u64);
        let mut entries = Vec::with_capacity(ncols);
        let mut chunk_at = idx.offset + header_len;
        for _ in 0..ncols {
            let mut e = ColumnEntry::decode(&mut eb).map_err(|e| match e {
                EntryError::Short(s) => err(
                    s.offset,
                    ErrorKind::Corrupt(format!("column entries of block {i} overrun the header")),
                ),
                EntryError::Bad(off, m) => err(off, ErrorKind::Corrupt(m)),
            })?;
            e.chunk_offset = chunk_at;
            chunk_at += e.stored_len as u64;
            entries.push(e);
        }
        if chunk_at != idx.offset + idx.length {
            return Err(err(
                idx.offset,
                ErrorKind::Corrupt(format!(
                    "block {i}: chunks end at {chunk_at}, block ends at {}",
                    idx.offset + idx.length
                )),
            ));
        }
        Ok(Block { file: self, index: i, rows: rows as usize, entries })
    }

    /// Reads every block and chunk and checks every checksum and encoding.
    /// Returns the number of chunks checked; the error names the first bad
    /// offset.
    pub fn verify(&self) -> Result<u64> {
        let mut reader = ChunkReader::new();
        let mut chunks = 0;
        for i in 0..self.blocks.len() {
            let block = self.block(i)?;
            for e in &block.entries {
                let col = block.decode_entry(e, &mut reader, 0, None)?;
                if let Some(col) = col {
                    let zone = ZoneMap::of(&col);
                    if zone != Some(e.meta.zone) {
                        return Err(StoreError::at(
                            &self.path,
                            e.chunk_offset,
                            ErrorKind::Corrupt(format!(
                                "zone map of column {} disagrees with its values",
                                e.field_id
                            )),
                        ));
                    }
                }
                chunks += 1;
            }
        }
        Ok(chunks)
    }
}

fn check_version(v: u16) -> std::result::Result<(), ErrorKind> {
    match v {
        0 => Err(ErrorKind::Corrupt("format version 0".into())),
        v if v > VERSION => Err(ErrorKind::UnsupportedVersion { found: v, supported: VERSION }),
        _ => Ok(()),
    }
}

/// How many REL references may be chained (first -> last -> received).
const MAX_REL_DEPTH: u8 = 4;

/// Reusable decompression state; one per thread.
pub struct ChunkReader {
    dctx: zstd::bulk::Decompressor<'static>,
    buf: Vec<u8>,
}

impl Default for ChunkReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkReader {
    /// A fresh reader.
    ///
    /// # Panics
    /// If zstd cannot allocate a decompression context (out of memory).
    pub fn new() -> ChunkReader {
        ChunkReader {
            dctx: zstd::bulk::Decompressor::new().expect("zstd context"),
            buf: Vec::new(),
        }
    }
}

/// One block of an open file: its column directory and zone maps.
pub struct Block<'a> {
    file: &'a SlotFile,
    index: usize,
    rows: usize,
    entries: Vec<ColumnEntry>,
}

impl<'a> Block<'a> {
    /// Rows in the block.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Index of the block in its file.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The column entries (including ids this build does not know).
    pub fn entries(&self) -> &[ColumnEntry] {
        &self.entries
    }

    /// Zone maps of the columns this build knows.
    pub fn stats(&self) -> BlockStats {
        let mut s = BlockStats::new(self.rows as u32);
        for e in &self.entries {
            if let Some(f) = e.field() {
                s.set_zone(f, Some(e.meta.zone));
            }
        }
        s
    }

    /// Decodes the column of `field`; `Ok(None)` if no row of the block has it.
    pub fn column(&self, field: Field, reader: &mut ChunkReader) -> Result<Option<Column>> {
        match self.entries.iter().find(|e| e.field_id == field.id()) {
            Some(e) => self.decode_entry(e, reader, 0, None),
            None => Ok(None),
        }
    }

    /// Decodes the given columns into a batch (absent ones stay absent).
    pub fn read(&self, fields: &[Field], reader: &mut ChunkReader) -> Result<FlowBatch> {
        let mut batch = FlowBatch::new(self.rows);
        // References first, so that relative columns reuse them.
        let mut order: Vec<Field> = fields.to_vec();
        order.sort_by_key(|f| match f {
            Field::Received => 0,
            Field::Last => 1,
            _ => 2,
        });
        for f in order {
            if batch.column(f).is_some() {
                continue;
            }
            if let Some(e) = self.entries.iter().find(|e| e.field_id == f.id())
                && let Some(c) = self.decode_entry(e, reader, 0, Some(&batch))?
            {
                batch.set_column(f, c);
            }
        }
        Ok(batch)
    }

    /// Decodes every known column.
    pub fn read_all(&self, reader: &mut ChunkReader) -> Result<FlowBatch> {
        let fields: Vec<Field> = self.entries.iter().filter_map(|e| e.field()).collect();
        self.read(&fields, reader)
    }

    /// Checks and decodes one chunk. Unknown column ids are checked but
    /// give `None`.
    fn decode_entry(
        &self,
        e: &ColumnEntry,
        reader: &mut ChunkReader,
        depth: u8,
        known: Option<&FlowBatch>,
    ) -> Result<Option<Column>> {
        let path = &self.file.path;
        let err = |kind| StoreError::at(path, e.chunk_offset, kind);
        let start = e.chunk_offset as usize;
        let stored = &self.file.map[start..start + e.stored_len as usize];
        let computed = crc32fast::hash(stored);
        if computed != e.crc {
            return Err(err(ErrorKind::Checksum {
                what: format!("column {} of block {}", e.field_id, self.index),
                stored: e.crc,
                computed,
            }));
        }
        let Some(field) = e.field() else { return Ok(None) };
        if (field.physical() == weir_record::Physical::U128) != e.phys_u128 {
            return Err(err(ErrorKind::Corrupt(format!(
                "column {field} has the wrong physical type"
            ))));
        }
        let bitmap = if e.meta.enc & codec::FLAG_VALIDITY != 0 { self.rows.div_ceil(8) } else { 0 };
        let plain = bitmap + self.rows * e.meta.width as usize;
        let expect = e.meta.raw_len as usize;
        let fits = if e.meta.enc & 0x0f == codec::KIND_DICT {
            // dictionary length, at most one value per row, indices of at most 4 bytes
            expect <= plain + 4 + self.rows * 4
        } else {
            expect == plain
        };
        if !fits {
            return Err(err(ErrorKind::Corrupt(format!(
                "column {field}: raw length {expect} does not fit {} rows of width {}",
                self.rows, e.meta.width
            ))));
        }
        // The reference of a REL chunk: borrowed when the caller already
        // decoded it (`known`), decoded here (and owned) otherwise.
        let mut owned_ref: Option<Column> = None;
        let reference: Option<&[u64]> = if e.meta.enc & 0x0f == codec::KIND_REL {
            let r = e.meta.ref_field;
            let target = self.entries.iter().find(|x| x.field_id == r && r != e.field_id);
            let target = match target {
                Some(t) if depth < MAX_REL_DEPTH && !t.phys_u128 => t,
                _ => {
                    return Err(err(ErrorKind::Corrupt(format!(
                        "column {field} refers to column {r}, which is missing or unusable"
                    ))));
                }
            };
            let cached = target.field().and_then(|f| known?.column(f));
            if cached.is_none() {
                owned_ref = self.decode_entry(target, reader, depth + 1, known)?;
            }
            match cached.or(owned_ref.as_ref()) {
                Some(Column { values: Values::U64(v), validity: None }) => Some(v.as_slice()),
                _ => {
                    return Err(err(ErrorKind::Corrupt(format!(
                        "column {field} refers to column {r}, which has gaps"
                    ))));
                }
            }
        } else {
            None
        };
        let raw: &[u8] = if e.meta.enc & codec::FLAG_ZSTD != 0 {
            reader.buf.clear();
            reader.buf.reserve(expect);
            let n = reader
                .dctx
                .decompress_to_buffer(stored, &mut reader.buf)
                .map_err(|x| err(ErrorKind::Corrupt(format!("column {field}: zstd: {x}"))))?;
            if n != expect {
                return Err(err(ErrorKind::Corrupt(format!(
                    "column {field}: zstd gave {n} bytes, expected {expect}"
                ))));
            }
            &reader.buf
        } else {
            if stored.len() != expect {
                return Err(err(ErrorKind::Corrupt(format!(
                    "column {field}: stored {} bytes, expected {expect}",
                    stored.len()
                ))));
            }
            stored
        };
        let col = codec::decode(
            raw,
            self.rows,
            e.phys_u128,
            e.meta.enc,
            e.meta.width,
            e.meta.base,
            reference,
        )
        .map_err(|d| err(ErrorKind::Corrupt(format!("column {field}: {}", d.0))))?;
        if col.null_count() != e.meta.null_count as usize {
            return Err(err(ErrorKind::Corrupt(format!(
                "column {field}: null count differs from its entry"
            ))));
        }
        Ok(Some(col))
    }
}
