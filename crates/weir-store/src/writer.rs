//! Writing slot files: blocks appended to a temporary file, then footer,
//! fsync, link to the final name and fsync of the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use weir_record::{BatchBuilder, ExporterStats, Field, FlowBatch, FlowRecord, SlotTotals};

use crate::codec;
use crate::error::{ErrorKind, Result, StoreError};
use crate::format::{
    BLOCK_FIXED_LEN, BLOCK_MAGIC, BlockIndexEntry, ColumnEntry, Creator, FileHeader, SlotInfo,
    Trailer, VERSION, encode_footer,
};
use crate::layout::with_seq;

/// Rows per block unless told otherwise. Large enough that per-block
/// overhead (≈50 bytes per column entry) is under 0.1 byte per row and zstd
/// sees 32–256 KiB per chunk; small enough that zone maps stay selective
/// and a writer holds only a few MiB per open slot.
pub const DEFAULT_BLOCK_ROWS: usize = 32_768;

/// zstd level unless told otherwise. After the column encodings (FOR,
/// deltas, dictionaries, byte planes) zstd mostly entropy-codes, and level 1
/// gives the same size as level 3 on generated and collected traffic
/// (19.1 vs 19.2 bytes/flow) for about 11 % of a core less per 1 M flows/s
/// in the collector (docs/PERFORMANCE.md). Higher levels pay off only for
/// archives (level 19: about 9 % smaller).
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Block compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Chunks stay raw (still integer-encoded).
    None,
    /// zstd at this level (1..=22); a chunk stays raw when zstd does not win.
    Zstd(i32),
}

impl Compression {
    /// The `-z LEVEL` of the command line: 0 is no compression.
    pub fn from_level(level: i32) -> Compression {
        if level == 0 { Compression::None } else { Compression::Zstd(level) }
    }
}

/// What to do when the final name already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExists {
    /// Fail with [`ErrorKind::Exists`]; the temporary file is removed.
    Fail,
    /// Use the next free `weir.<stamp>.N` name (a collector restarted
    /// within a slot).
    NextSeq,
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Block compression.
    pub compression: Compression,
    /// Rows per block.
    pub block_rows: usize,
    /// Final-name collision policy.
    pub on_exists: OnExists,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: Compression::Zstd(DEFAULT_ZSTD_LEVEL),
            block_rows: DEFAULT_BLOCK_ROWS,
            on_exists: OnExists::Fail,
        }
    }
}

/// What the caller says about the slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMeta {
    /// Slot start, seconds since the epoch.
    pub slot_start_s: i64,
    /// Slot length in seconds.
    pub slot_len_s: u32,
    /// Ident of the source.
    pub ident: String,
    /// Which tool writes.
    pub creator: Creator,
}

/// Writes one slot file. Rows go in with [`SlotWriter::push`] or
/// [`SlotWriter::write_batch`]; [`SlotWriter::finish`] publishes the file.
///
/// Dropping a writer without `finish` leaves the temporary file behind, as
/// a crash would (the collector recovers such files); call
/// [`SlotWriter::abort`] to discard it instead.
pub struct SlotWriter {
    out: BufWriter<File>,
    tmp_path: PathBuf,
    final_path: PathBuf,
    offset: u64,
    meta: SlotMeta,
    opts: WriterOptions,
    builder: BatchBuilder,
    blocks: Vec<BlockIndexEntry>,
    totals: SlotTotals,
    exporters: Vec<ExporterStats>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    /// Per column (by field index): how its previous block was encoded.
    hints: Vec<codec::EncodeHint>,
    raw: Vec<u8>,
    chunks: Vec<Vec<u8>>,
    header: Vec<u8>,
}

impl SlotWriter {
    /// Creates the temporary file next to `final_path` (creating missing
    /// directories) and writes the file header.
    pub fn create(final_path: &Path, meta: SlotMeta, opts: WriterOptions) -> Result<SlotWriter> {
        let dir = final_path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, "create directory", e))?;
        let name = final_path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            StoreError::file(final_path, ErrorKind::Invalid("slot file path has no name".into()))
        })?;
        let pid = std::process::id();
        let (file, tmp_path) = (0..1000)
            .map(|n| {
                let tmp = dir.join(format!(".{name}.{pid}.{n}.tmp"));
                (OpenOptions::new().write(true).create_new(true).open(&tmp), tmp)
            })
            .find(|(r, _)| !matches!(r, Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists))
            .ok_or_else(|| {
                StoreError::file(dir, ErrorKind::Invalid("no free temporary file name".into()))
            })?;
        let file = file.map_err(|e| StoreError::io(&tmp_path, "create", e))?;
        let compressor = match opts.compression {
            Compression::None => None,
            Compression::Zstd(level) => {
                let mut c = zstd::bulk::Compressor::new(level)
                    .map_err(|e| StoreError::io(&tmp_path, "zstd init", e))?;
                if level == 1 {
                    // Tuned on byte planes (docs/PERFORMANCE.md), all
                    // smaller or cheaper on collected and generated flows:
                    // matches shorter than 7 bytes rarely pay (random low
                    // bytes match by chance); the smallest match table (64
                    // entries) is enough; a 32 KiB window caps zstd blocks at 32 KiB,
                    // so each plane of a chunk gets its own entropy tables;
                    // the match search skips ahead faster where it finds
                    // nothing (target length 16, what negative levels do),
                    // while literals keep their Huffman coding (which
                    // negative levels drop: a third larger files).
                    use zstd::zstd_safe::CParameter::{
                        HashLog, LiteralCompressionMode, MinMatch, TargetLength, WindowLog,
                    };
                    let huffman = LiteralCompressionMode(zstd::zstd_safe::ParamSwitch::Enable);
                    for p in [MinMatch(7), HashLog(6), WindowLog(15), TargetLength(16), huffman] {
                        c.set_parameter(p)
                            .map_err(|e| StoreError::io(&tmp_path, "zstd init", e))?;
                    }
                }
                Some(c)
            }
        };
        let mut w = SlotWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            tmp_path,
            final_path: final_path.to_path_buf(),
            offset: 0,
            opts: WriterOptions { block_rows: opts.block_rows.max(1), ..opts },
            builder: BatchBuilder::default(),
            blocks: Vec::new(),
            totals: SlotTotals::default(),
            exporters: Vec::new(),
            compressor,
            hints: vec![codec::EncodeHint::default(); Field::COUNT],
            raw: Vec::new(),
            chunks: Vec::new(),
            header: Vec::new(),
            meta,
        };
        let h = FileHeader {
            version: VERSION,
            slot_len_s: w.meta.slot_len_s,
            slot_start_s: w.meta.slot_start_s,
        };
        w.write(&h.encode())?;
        w.hand_to_os()?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| StoreError::io(&self.tmp_path, "write", e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Appends one row; a block is written whenever `block_rows` are buffered.
    pub fn push(&mut self, r: &FlowRecord) -> Result<()> {
        self.builder.push(r);
        if self.builder.len() >= self.opts.block_rows { self.flush_rows() } else { Ok(()) }
    }

    /// The builder [`SlotWriter::push`] appends to, for callers that append
    /// rows column by column ([`BatchBuilder::push_u64`] ...
    /// [`BatchBuilder::end_row`]): at most [`SlotWriter::room`] rows, then
    /// [`SlotWriter::flush_if_full`].
    pub fn builder_mut(&mut self) -> &mut BatchBuilder {
        &mut self.builder
    }

    /// Rows that may be appended to [`SlotWriter::builder_mut`] before the
    /// block is full (at least 1 after a flush).
    pub fn room(&self) -> usize {
        self.opts.block_rows.saturating_sub(self.builder.len())
    }

    /// Writes the buffered rows as a block if there are `block_rows` of them.
    pub fn flush_if_full(&mut self) -> Result<()> {
        if self.builder.len() >= self.opts.block_rows { self.flush_rows() } else { Ok(()) }
    }

    /// Writes the rows buffered so far as a (short) block now, so that a
    /// crash cannot lose them. The collector calls this every few seconds
    /// for slow sources; it costs some compression.
    pub fn cut_block(&mut self) -> Result<()> {
        self.flush_rows()
    }

    /// Rows buffered but not yet written as a block.
    pub fn buffered_rows(&self) -> usize {
        self.builder.len()
    }

    /// Writes buffered rows as a block.
    fn flush_rows(&mut self) -> Result<()> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let mut batch = self.builder.finish();
        self.write_block(&batch)?;
        self.builder.recycle(&mut batch);
        Ok(())
    }

    /// Writes a batch as one block (after any rows buffered by `push`).
    /// Batches larger than `block_rows` are written as they are.
    pub fn write_batch(&mut self, batch: &FlowBatch) -> Result<()> {
        self.flush_rows()?;
        self.write_block(batch)
    }

    fn write_block(&mut self, batch: &FlowBatch) -> Result<()> {
        if batch.rows() == 0 {
            return Ok(());
        }
        let rows = batch.rows();
        self.totals.add_batch(batch);
        let mut entries = Vec::new();
        let mut n = 0;
        for field in batch.fields() {
            let col = batch.column(field).expect("listed field has a column");
            let reference = relative_to(field).and_then(|r| {
                let c = batch.column(r)?;
                c.validity.is_none().then_some((r.id(), c.values.as_u64()?))
            });
            let hint = &mut self.hints[field.index()];
            let Some(meta) = codec::encode_hinted(col, reference, hint, &mut self.raw) else {
                continue;
            };
            if self.chunks.len() <= n {
                self.chunks.push(Vec::new());
            }
            let stored = &mut self.chunks[n];
            stored.clear();
            let mut meta = meta;
            let mut kept_raw = true;
            if let Some(c) = self.compressor.as_mut().filter(|_| !self.raw.is_empty()) {
                stored.reserve(zstd::zstd_safe::compress_bound(self.raw.len()));
                c.compress_to_buffer(&self.raw[..], stored)
                    .map_err(|e| StoreError::io(&self.tmp_path, "zstd compress", e))?;
                if stored.len() < self.raw.len() {
                    meta.enc |= codec::FLAG_ZSTD;
                    kept_raw = false;
                }
            }
            if kept_raw {
                stored.clear();
                stored.extend_from_slice(&self.raw);
            }
            entries.push(ColumnEntry {
                field_id: field.id(),
                phys_u128: field.physical() == weir_record::Physical::U128,
                meta,
                stored_len: stored.len() as u32,
                crc: crc32fast::hash(stored),
                chunk_offset: 0,
            });
            n += 1;
        }
        let h = &mut self.header;
        h.clear();
        h.extend_from_slice(BLOCK_MAGIC);
        h.extend_from_slice(&[0; 4]); // header_len, patched below
        h.extend_from_slice(&(rows as u32).to_le_bytes());
        h.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        h.extend_from_slice(&[0; 2]);
        debug_assert_eq!(h.len(), BLOCK_FIXED_LEN);
        for e in &entries {
            e.encode_into(h);
        }
        let header_len = (h.len() + 4) as u32;
        h[4..8].copy_from_slice(&header_len.to_le_bytes());
        let crc = crc32fast::hash(h);
        h.extend_from_slice(&crc.to_le_bytes());
        let start = self.offset;
        let header = std::mem::take(&mut self.header);
        self.write(&header)?;
        self.header = header;
        let chunks = std::mem::take(&mut self.chunks);
        for c in &chunks[..n] {
            self.write(c)?;
        }
        self.chunks = chunks;
        self.blocks.push(BlockIndexEntry {
            offset: start,
            length: self.offset - start,
            rows: rows as u32,
        });
        // Every complete block goes to the OS at once: a crash (kill -9)
        // then loses only rows not yet in a block, and recovery finds every
        // block that was written (FORMAT.md, "Recovery").
        self.hand_to_os()
    }

    /// Passes buffered bytes to the operating system (no fsync: that
    /// happens once, when the file is finalized).
    fn hand_to_os(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| StoreError::io(&self.tmp_path, "write", e))
    }

    /// Sets the per-exporter counters written to the footer.
    pub fn set_exporters(&mut self, exporters: Vec<ExporterStats>) {
        self.exporters = exporters;
    }

    /// Adds sequence failures to the slot totals.
    pub fn add_sequence_failures(&mut self, n: u64) {
        self.totals.sequence_failures += n;
    }

    /// Rows written or buffered so far.
    pub fn rows(&self) -> u64 {
        self.blocks.iter().map(|b| b.rows as u64).sum::<u64>() + self.builder.len() as u64
    }

    /// Totals of the rows written so far (buffered rows not included).
    pub fn totals(&self) -> &SlotTotals {
        &self.totals
    }

    /// The temporary file being written.
    pub fn temp_path(&self) -> &Path {
        &self.tmp_path
    }

    /// Writes the footer, syncs, and publishes the file under its final
    /// name. Returns the path it was published as.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.flush_rows()?;
        let info = SlotInfo {
            slot_start_s: self.meta.slot_start_s,
            slot_len_s: self.meta.slot_len_s,
            creator: self.meta.creator,
            created_ms: chrono::Utc::now().timestamp_millis(),
            software: SOFTWARE.to_string(),
            ident: self.meta.ident.clone(),
            totals: self.totals,
            exporters: std::mem::take(&mut self.exporters),
        };
        let tail = footer_and_trailer(&info, &self.blocks, self.offset, VERSION);
        self.write(&tail)?;
        let tmp = self.tmp_path.clone();
        let file =
            self.out.into_inner().map_err(|e| StoreError::io(&tmp, "flush", e.into_error()))?;
        file.sync_all().map_err(|e| StoreError::io(&tmp, "fsync", e))?;
        drop(file);
        let published = publish(&tmp, &self.final_path, self.opts.on_exists);
        if published.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        published
    }

    /// Discards the file.
    pub fn abort(self) -> Result<()> {
        let tmp = self.tmp_path.clone();
        drop(self.out);
        fs::remove_file(&tmp).map_err(|e| StoreError::io(&tmp, "remove", e))
    }
}

/// Writer software recorded in the SLOT section.
pub(crate) const SOFTWARE: &str = concat!("weir ", env!("CARGO_PKG_VERSION"));

/// Footer sections plus trailer for a footer starting at `footer_off` (the
/// end of the last block), in a file of format `version` (the header's:
/// a recovered file keeps the version it was begun with).
pub(crate) fn footer_and_trailer(
    info: &SlotInfo,
    blocks: &[BlockIndexEntry],
    footer_off: u64,
    version: u16,
) -> Vec<u8> {
    let mut out = encode_footer(info, blocks);
    let trailer = Trailer {
        footer_off,
        footer_len: out.len() as u32,
        footer_crc: crc32fast::hash(&out),
        version,
    };
    out.extend_from_slice(&trailer.encode());
    out
}

/// The column a field may be stored relative to (KIND_REL): a flow's
/// `first` is close below its `last`, and `last` close below `received`.
fn relative_to(field: Field) -> Option<Field> {
    match field {
        Field::First => Some(Field::Last),
        Field::Last => Some(Field::Received),
        _ => None,
    }
}

/// Hard-links `tmp` to the final name (never replacing a file), removes
/// `tmp` and syncs the directory.
pub(crate) fn publish(tmp: &Path, final_path: &Path, on_exists: OnExists) -> Result<PathBuf> {
    let mut seq = 0;
    let target = loop {
        let target = if seq == 0 { final_path.to_path_buf() } else { with_seq(final_path, seq) };
        match fs::hard_link(tmp, &target) {
            Ok(()) => break target,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match on_exists {
                OnExists::Fail => {
                    return Err(StoreError::file(&target, ErrorKind::Exists(target.clone())));
                }
                OnExists::NextSeq if seq < 10_000 => seq += 1,
                OnExists::NextSeq => {
                    return Err(StoreError::file(&target, ErrorKind::Exists(target.clone())));
                }
            },
            Err(e) => return Err(StoreError::io(&target, "link", e)),
        }
    };
    fs::remove_file(tmp).map_err(|e| StoreError::io(tmp, "remove temporary", e))?;
    if let Some(dir) = target.parent() {
        let d = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io(d, "fsync directory", e))?;
    }
    Ok(target)
}
