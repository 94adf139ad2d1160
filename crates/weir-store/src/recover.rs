//! Crash recovery of unfinished slot files (FORMAT.md, "Recovery").
//!
//! A writer killed before [`SlotWriter::finish`](crate::SlotWriter::finish)
//! leaves its temporary file `.weir.<stamp>[.N].<pid>.<n>.tmp` behind: the
//! file header, zero or more complete blocks and possibly a torn last block.
//! [`recover`] keeps every complete block, rebuilds the footer and publishes
//! the result under the slot's final name; [`find_unfinished`] lists the
//! candidates under a data directory.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use weir_record::{Field, FlowBatch, SlotTotals, ZoneMap};

use crate::error::{ErrorKind, Result, StoreError};
use crate::format::{
    BLOCK_FIXED_LEN, BLOCK_MAGIC, BlockIndexEntry, Bytes, ColumnEntry, Creator, EntryError,
    FileHeader, HEADER_LEN, MAGIC, SlotInfo, TRAILER_LEN, VERSION,
};
use crate::layout::{FILE_PREFIX, parse_slot_file_name, slot_file_name};
use crate::reader::{ChunkReader, SlotFile};
use crate::writer::{OnExists, SOFTWARE, footer_and_trailer, publish};

/// Largest block (in rows) recovery keeps. The collector's blocks hold
/// `block_rows` rows (32 768 by default); a block claiming more is treated
/// as damaged, so that decoding a header with valid checksums but absurd
/// contents cannot exhaust memory.
pub const MAX_RECOVER_BLOCK_ROWS: u32 = 1 << 20;

/// Suffix of the file [`recover`] builds before it replaces the temporary
/// file. Not matched by [`find_unfinished`]; a leftover one (recovery was
/// interrupted) is overwritten by the next attempt and may be deleted.
pub const RECOVERING_SUFFIX: &str = ".recovering";

/// Columns [`SlotTotals::add_batch`] needs; a block without them is not kept.
const REQUIRED: [Field; 5] =
    [Field::First, Field::Last, Field::Proto, Field::Packets, Field::Bytes];

/// How to publish a recovered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverOptions {
    /// Ident written to the footer: the temporary file has no footer, so
    /// the source's ident is not in it (FORMAT.md: `none` when not set).
    pub ident_if_unknown: String,
    /// Creator written to the footer.
    pub creator: Creator,
    /// Final-name collision policy; the default [`OnExists::NextSeq`] never
    /// replaces a file of the slot (a collector restarted within the slot
    /// has already published one).
    pub on_exists: OnExists,
}

impl Default for RecoverOptions {
    fn default() -> Self {
        RecoverOptions {
            ident_if_unknown: "none".into(),
            creator: Creator::Unknown,
            on_exists: OnExists::NextSeq,
        }
    }
}

/// What [`recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The temporary file recovered (gone afterwards).
    pub source: PathBuf,
    /// The published slot file; `None` when no complete block survived.
    pub published: Option<PathBuf>,
    /// Blocks kept.
    pub blocks_kept: u64,
    /// Rows in the kept blocks.
    pub rows_kept: u64,
    /// Block bytes of the temporary file not carried over: the torn tail,
    /// or everything from the first damaged block on.
    pub bytes_dropped: u64,
    /// Offset of the first block not kept, when the scan stopped before the
    /// end of the data.
    pub stop_offset: Option<u64>,
    /// Why the scan stopped there, naming the offset of what was wrong.
    pub stop_reason: Option<String>,
    /// The temporary file was already complete (footer and trailer
    /// present): the writer or an earlier recovery was interrupted while
    /// publishing. It was published as it was, with its own footer.
    pub was_finalized: bool,
}

/// The parts of a writer's temporary file name
/// `.<final name>.<pid>.<n>.tmp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempName {
    /// The name the writer would have published (`weir.YYYYMMDDhhmm[ss][.N]`).
    pub final_name: String,
    /// Process id of the writer. Recovering the file of a writer that is
    /// still running would publish a copy of its data: callers skip files
    /// whose process is alive.
    pub pid: u32,
    /// Disambiguating counter of the writer.
    pub n: u32,
}

/// Parses a writer's temporary file name; `None` for anything else.
pub fn parse_temp_file_name(name: &str) -> Option<TempName> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (rest, n) = rest.rsplit_once('.')?;
    let (final_name, pid) = rest.rsplit_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(n) || !digits(pid) {
        return None;
    }
    parse_slot_file_name(final_name)?;
    Some(TempName {
        final_name: final_name.to_string(),
        pid: pid.parse().ok()?,
        n: n.parse().ok()?,
    })
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with(&format!(".{FILE_PREFIX}")) && name.ends_with(".tmp")
}

/// Every unfinished slot file (`.weir.*.tmp`) under `root`, at any depth
/// (any `-S` layout), sorted by path. Finalized files, other hidden files
/// and hidden directories are ignored; symbolic links are not followed.
/// `root` may also be a single file.
pub fn find_unfinished(root: &Path) -> Result<Vec<PathBuf>> {
    let meta = fs::metadata(root).map_err(|e| StoreError::io(root, "stat", e))?;
    let mut out = Vec::new();
    if meta.is_file() {
        if root.file_name().and_then(|n| n.to_str()).is_some_and(is_temp_name) {
            out.push(root.to_path_buf());
        }
        return Ok(out);
    }
    walk(root, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = fs::read_dir(dir).map_err(|e| StoreError::io(dir, "read directory", e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StoreError::io(dir, "read directory", e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = ent.path();
        let ft = match ent.file_type() {
            Ok(ft) => ft,
            // Removed meanwhile (expiry, a writer publishing).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&path, "stat", e)),
        };
        if ft.is_dir() {
            if !name.starts_with('.') {
                walk(&path, out)?;
            }
        } else if ft.is_file() && is_temp_name(name) {
            out.push(path);
        }
    }
    Ok(())
}

/// Recovers the temporary file `tmp` of a crashed writer and publishes it
/// in the same directory under the slot's final name (FORMAT.md,
/// "Recovery").
///
/// Blocks are scanned forward from the file header; the first block that is
/// torn or damaged ends the scan, and it and everything after it are
/// dropped. The kept blocks are copied byte for byte and decoded to rebuild
/// the totals; the new footer has the caller's ident and creator and no
/// exporter counters. With no complete block, nothing is published and the
/// temporary file is deleted.
///
/// A bad file header is an error and leaves the file alone. So is a name
/// collision under [`OnExists::Fail`]. Recovery is safe to interrupt and
/// repeat: the rebuilt file replaces `tmp` atomically (rename) before it is
/// published with the writer's fsync + hard-link discipline, and a complete
/// `tmp` that is already linked to a published file is just removed.
///
/// Only recover files whose writer is gone (see [`TempName::pid`]).
pub fn recover(tmp: &Path, opts: RecoverOptions) -> Result<RecoveryReport> {
    let dir = match tmp.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file = File::open(tmp).map_err(|e| StoreError::io(tmp, "open", e))?;
    let len = file.metadata().map_err(|e| StoreError::io(tmp, "stat", e))?.len();
    let mut src = BufReader::with_capacity(1 << 20, file);
    let header = read_header(tmp, &mut src, len)?;
    let final_path = dir.join(slot_file_name(header.slot_start_s, header.slot_len_s));
    let mut report = RecoveryReport {
        source: tmp.to_path_buf(),
        published: None,
        blocks_kept: 0,
        rows_kept: 0,
        bytes_dropped: 0,
        stop_offset: None,
        stop_reason: None,
        was_finalized: false,
    };

    // A complete file: the writer (or a recovery) died while publishing.
    let mut data_end = len;
    let mut prior: Option<SlotInfo> = None;
    if let Some(f) = open_finalized(tmp, len) {
        report.was_finalized = true;
        report.blocks_kept = f.blocks().len() as u64;
        report.rows_kept = f.rows();
        if let Some(twin) = published_twin(tmp, &dir, &final_path)? {
            drop(f);
            fs::remove_file(tmp).map_err(|e| StoreError::io(tmp, "remove", e))?;
            sync_dir(&dir)?;
            report.published = Some(twin);
            return Ok(report);
        }
        if f.verify().is_ok() {
            drop(f);
            report.published = Some(publish(tmp, &final_path, opts.on_exists)?);
            return Ok(report);
        }
        // Damaged: rebuild from its blocks, keeping what its footer knows.
        report.was_finalized = false;
        report.blocks_kept = 0;
        report.rows_kept = 0;
        data_end = f.len() - f.footer_len();
        prior = Some(f.info().clone());
    }

    // Copy the blocks that are complete and intact to a new file.
    let out_path = recovering_path(tmp);
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&out_path)
        .map_err(|e| StoreError::io(&out_path, "create", e))?;
    let result = rebuild(tmp, &mut src, data_end, header, out, &out_path, prior, &opts);
    let (mut out, blocks, info, stop) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_file(&out_path);
            return Err(e);
        }
    };
    drop(src);
    let kept_end = blocks.last().map_or(HEADER_LEN as u64, |b| b.offset + b.length);
    report.blocks_kept = blocks.len() as u64;
    report.rows_kept = blocks.iter().map(|b| u64::from(b.rows)).sum();
    report.bytes_dropped = data_end - kept_end;
    if let Some((off, reason)) = stop {
        report.stop_offset = Some(off);
        report.stop_reason = Some(reason);
    }

    if blocks.is_empty() {
        drop(out);
        let _ = fs::remove_file(&out_path);
        fs::remove_file(tmp).map_err(|e| StoreError::io(tmp, "remove", e))?;
        sync_dir(&dir)?;
        return Ok(report);
    }

    let tail = footer_and_trailer(&info, &blocks, kept_end, header.version);
    let mut finish = || -> std::io::Result<()> {
        out.set_len(kept_end)?;
        out.seek(SeekFrom::Start(kept_end))?;
        out.write_all(&tail)?;
        out.sync_all()
    };
    if let Err(e) = finish() {
        let _ = fs::remove_file(&out_path);
        return Err(StoreError::io(&out_path, "write footer", e));
    }
    drop(out);
    if opts.on_exists == OnExists::Fail && fs::symlink_metadata(&final_path).is_ok() {
        let _ = fs::remove_file(&out_path);
        return Err(StoreError::file(&final_path, ErrorKind::Exists(final_path.clone())));
    }
    // From here on `tmp` is a complete file: an interrupted recovery
    // publishes it as it is next time.
    fs::rename(&out_path, tmp).map_err(|e| StoreError::io(&out_path, "rename", e))?;
    report.published = Some(publish(tmp, &final_path, opts.on_exists)?);
    Ok(report)
}

/// Where a scan stopped: offset of the first block not kept, and why.
type Stop = (u64, String);

/// The rebuilt file (footer still provisional), its kept blocks, the
/// footer info with rebuilt totals, and where and why the scan stopped.
type Rebuilt = (File, Vec<BlockIndexEntry>, SlotInfo, Option<Stop>);

#[allow(clippy::too_many_arguments)]
fn rebuild(
    tmp: &Path,
    src: &mut impl Read,
    data_end: u64,
    header: FileHeader,
    out: File,
    out_path: &Path,
    prior: Option<SlotInfo>,
    opts: &RecoverOptions,
) -> Result<Rebuilt> {
    let mut w = BufWriter::with_capacity(1 << 20, out);
    let wio = |e| StoreError::io(out_path, "write", e);
    w.write_all(&header.encode()).map_err(wio)?;
    let (mut blocks, mut stop) = scan_blocks(tmp, src, data_end, &mut w)?;
    let end = blocks.last().map_or(HEADER_LEN as u64, |b| b.offset + b.length);

    let mut info = SlotInfo {
        slot_start_s: header.slot_start_s,
        slot_len_s: header.slot_len_s,
        creator: opts.creator,
        created_ms: chrono::Utc::now().timestamp_millis(),
        software: format!("{SOFTWARE} (recovered)"),
        ident: match prior {
            Some(p) => p.ident,
            None => opts.ident_if_unknown.clone(),
        },
        totals: SlotTotals::default(),
        exporters: Vec::new(),
    };
    // Provisional footer so that the reader can decode and check the
    // copied blocks; replaced below.
    w.write_all(&footer_and_trailer(&info, &blocks, end, header.version)).map_err(wio)?;
    let out = w.into_inner().map_err(|e| StoreError::io(out_path, "flush", e.into_error()))?;

    let mut totals = SlotTotals::default();
    let kept = {
        let f = SlotFile::open(out_path)?;
        let mut reader = ChunkReader::new();
        let mut kept = blocks.len();
        for (i, idx) in blocks.iter().enumerate() {
            match check_block(&f, i, &mut reader) {
                Ok(batch) => totals.add_batch(&batch),
                Err(why) => {
                    stop = Some((idx.offset, format!("block {i} at offset {}: {why}", idx.offset)));
                    kept = i;
                    break;
                }
            }
        }
        kept
    };
    blocks.truncate(kept);
    info.totals = totals;
    Ok((out, blocks, info, stop))
}

/// Decodes every known column of block `i`, checks its zone maps and that
/// the columns the totals need are there.
fn check_block(f: &SlotFile, i: usize, reader: &mut ChunkReader) -> Result<FlowBatch, String> {
    let at = |e: StoreError| match e.offset {
        Some(o) => format!("{} (offset {o})", e.kind),
        None => e.kind.to_string(),
    };
    let block = f.block(i).map_err(at)?;
    let batch = block.read_all(reader).map_err(at)?;
    for e in block.entries() {
        let Some(field) = e.field() else { continue };
        let zone = batch.column(field).and_then(ZoneMap::of);
        if zone != Some(e.meta.zone) {
            return Err(format!(
                "zone map of column {} disagrees with its values (offset {})",
                e.field_id, e.chunk_offset
            ));
        }
    }
    for field in REQUIRED.into_iter().chain([Field::Flows]) {
        let ok = match batch.column(field) {
            Some(c) => c.len() == batch.rows() && c.values.as_u64().is_some(),
            None => field == Field::Flows,
        };
        if !ok {
            return Err(format!("column {field} is missing or unusable"));
        }
    }
    Ok(batch)
}

/// Reads and checks the 32-byte file header.
fn read_header(path: &Path, src: &mut impl Read, len: u64) -> Result<FileHeader> {
    if len < HEADER_LEN as u64 {
        return Err(StoreError::at(
            path,
            len,
            ErrorKind::Truncated(format!(
                "file is {len} bytes, the file header needs {HEADER_LEN}"
            )),
        ));
    }
    let mut h = [0u8; HEADER_LEN];
    src.read_exact(&mut h).map_err(|e| StoreError::io(path, "read", e))?;
    if &h[0..8] != MAGIC {
        return Err(StoreError::at(
            path,
            0,
            ErrorKind::BadMagic { expected: "WEIRSLOT", found: lossy(&h[0..8]) },
        ));
    }
    let stored = u32::from_le_bytes([h[28], h[29], h[30], h[31]]);
    let computed = crc32fast::hash(&h[0..28]);
    if stored != computed {
        return Err(StoreError::at(
            path,
            28,
            ErrorKind::Checksum { what: "file header".into(), stored, computed },
        ));
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version == 0 {
        return Err(StoreError::at(path, 8, ErrorKind::Corrupt("format version 0".into())));
    }
    if version > VERSION {
        return Err(StoreError::at(
            path,
            8,
            ErrorKind::UnsupportedVersion { found: version, supported: VERSION },
        ));
    }
    let mut b = Bytes::new(&h[12..24], 12);
    let short = |_| StoreError::at(path, 12, ErrorKind::Truncated("file header".into()));
    let slot_len_s = b.u32().map_err(short)?;
    let slot_start_s = b.i64().map_err(short)?;
    Ok(FileHeader { version, slot_len_s, slot_start_s })
}

/// Copies complete blocks from `src` (positioned at offset 32) to `out`
/// until `data_end` or the first block that is torn or fails a check.
/// Returns the kept blocks and, if the scan stopped early, the offset of
/// the first block not kept and why.
fn scan_blocks(
    path: &Path,
    src: &mut impl Read,
    data_end: u64,
    out: &mut impl Write,
) -> Result<(Vec<BlockIndexEntry>, Option<Stop>)> {
    let mut blocks = Vec::new();
    let mut off = HEADER_LEN as u64;
    let mut buf = Vec::new();
    while off < data_end {
        match read_block(path, src, off, data_end - off, &mut buf)? {
            Ok(entry) => {
                out.write_all(&buf).map_err(|e| StoreError::io(path, "write recovered copy", e))?;
                blocks.push(entry);
                off += entry.length;
            }
            Err(why) => {
                let reason = format!("block {} at offset {off}: {why}", blocks.len());
                return Ok((blocks, Some((off, reason))));
            }
        }
    }
    Ok((blocks, None))
}

/// Reads the block at `off` (`left` bytes of data remain) into `buf` and
/// checks its header and chunk checksums. The outer error is an I/O
/// failure; the inner one says why the block is not kept.
fn read_block(
    path: &Path,
    src: &mut impl Read,
    off: u64,
    left: u64,
    buf: &mut Vec<u8>,
) -> Result<Result<BlockIndexEntry, String>> {
    let rio = |e| StoreError::io(path, "read", e);
    let fixed = BLOCK_FIXED_LEN as u64 + 4;
    if left < fixed {
        return Ok(Err(format!("torn: only {left} bytes left")));
    }
    buf.clear();
    buf.resize(BLOCK_FIXED_LEN, 0);
    src.read_exact(buf).map_err(rio)?;
    if &buf[0..4] != BLOCK_MAGIC {
        return Ok(Err(format!("no block magic (found {:?})", lossy(&buf[0..4]))));
    }
    let header_len = u64::from(u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]));
    let rows = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let ncols = u64::from(u16::from_le_bytes([buf[12], buf[13]]));
    // Entries are 48 (u64) or 72 (u128) bytes.
    if header_len < fixed + ncols * 48 || header_len > fixed + ncols * 72 {
        return Ok(Err(format!(
            "header length {header_len} (offset {}) impossible for {ncols} columns",
            off + 4
        )));
    }
    if rows == 0 || rows > MAX_RECOVER_BLOCK_ROWS {
        return Ok(Err(format!("implausible row count {rows} (offset {})", off + 8)));
    }
    if header_len > left {
        return Ok(Err(format!("torn: header of {header_len} bytes, only {left} bytes left")));
    }
    let hl = header_len as usize;
    buf.resize(hl, 0);
    src.read_exact(&mut buf[BLOCK_FIXED_LEN..]).map_err(rio)?;
    let crc_at = hl - 4;
    let stored =
        u32::from_le_bytes([buf[crc_at], buf[crc_at + 1], buf[crc_at + 2], buf[crc_at + 3]]);
    let computed = crc32fast::hash(&buf[..crc_at]);
    if stored != computed {
        return Ok(Err(format!(
            "header checksum mismatch (offset {}): stored {stored:#010x}, computed {computed:#010x}",
            off + crc_at as u64
        )));
    }
    let mut eb = Bytes::new(&buf[BLOCK_FIXED_LEN..crc_at], off + BLOCK_FIXED_LEN as u64);
    let mut entries = Vec::with_capacity(ncols as usize);
    for _ in 0..ncols {
        match ColumnEntry::decode(&mut eb) {
            Ok(e) => entries.push(e),
            Err(EntryError::Short(s)) => {
                return Ok(Err(format!("column entries overrun the header (offset {})", s.offset)));
            }
            Err(EntryError::Bad(o, m)) => return Ok(Err(format!("{m} (offset {o})"))),
        }
    }
    if let Some(f) = REQUIRED.iter().find(|f| !entries.iter().any(|e| e.field_id == f.id())) {
        return Ok(Err(format!("no {f} column")));
    }
    let length = header_len + entries.iter().map(|e| u64::from(e.stored_len)).sum::<u64>();
    if length > left {
        return Ok(Err(format!("torn: block of {length} bytes, only {left} bytes left")));
    }
    buf.resize(length as usize, 0);
    src.read_exact(&mut buf[hl..]).map_err(rio)?;
    let mut at = hl;
    for e in &entries {
        let chunk = &buf[at..at + e.stored_len as usize];
        let computed = crc32fast::hash(chunk);
        if computed != e.crc {
            return Ok(Err(format!(
                "checksum mismatch in column {} (offset {}): stored {:#010x}, computed {computed:#010x}",
                e.field_id,
                off + at as u64,
                e.crc
            )));
        }
        at += e.stored_len as usize;
    }
    Ok(Ok(BlockIndexEntry { offset: off, length, rows }))
}

/// `tmp` opened as a complete slot file, if it is one.
fn open_finalized(tmp: &Path, len: u64) -> Option<SlotFile> {
    if len < (HEADER_LEN + TRAILER_LEN) as u64 {
        return None;
    }
    SlotFile::open(tmp).ok()
}

/// A published file of the slot that is the same file (hard link) as
/// `tmp`: the writer died between linking and unlinking.
fn published_twin(tmp: &Path, dir: &Path, final_path: &Path) -> Result<Option<PathBuf>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = fs::metadata(tmp).map_err(|e| StoreError::io(tmp, "stat", e))?;
        let Some(base) = final_path.file_name().and_then(|n| n.to_str()) else { return Ok(None) };
        let rd = fs::read_dir(dir).map_err(|e| StoreError::io(dir, "read directory", e))?;
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            let same_slot = name == base
                || name
                    .strip_prefix(base)
                    .and_then(|s| s.strip_prefix('.'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !same_slot {
                continue;
            }
            if let Ok(m) = ent.metadata()
                && m.dev() == me.dev()
                && m.ino() == me.ino()
            {
                return Ok(Some(ent.path()));
            }
        }
        Ok(None)
    }
    #[cfg(not(unix))]
    {
        let _ = (tmp, dir, final_path);
        Ok(None)
    }
}

fn recovering_path(tmp: &Path) -> PathBuf {
    let mut s = tmp.as_os_str().to_owned();
    s.push(RECOVERING_SUFFIX);
    PathBuf::from(s)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(dir, "fsync directory", e))
}

fn lossy(b: &[u8]) -> String {
    b.iter().map(|&c| if c.is_ascii_graphic() { c as char } else { '.' }).collect()
}
