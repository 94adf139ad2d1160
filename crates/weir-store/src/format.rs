//! Byte layouts of FORMAT.md: header, trailer, block header, footer.
//!
//! Everything here is plain little-endian serialisation with explicit bounds
//! checks; the reader never trusts a length before checking it against the
//! bytes that are really there.

use weir_record::{ExporterStats, Field, SlotTotals, ZoneMap};

use crate::codec::ChunkMeta;

/// Magic at the start and end of every slot file.
pub const MAGIC: &[u8; 8] = b"WEIRSLOT";
/// Magic of a block header.
pub const BLOCK_MAGIC: &[u8; 4] = b"WBLK";
/// Format version this build writes and the newest it reads.
pub const VERSION: u16 = 2;
/// Size of the file header.
pub const HEADER_LEN: usize = 32;
/// Size of the trailer.
pub const TRAILER_LEN: usize = 32;
/// Block header bytes before the first column entry.
pub const BLOCK_FIXED_LEN: usize = 16;
/// Column entry bytes before base/min/max.
pub const ENTRY_FIXED_LEN: usize = 24;

/// Footer section tags.
pub mod tag {
    /// Slot and writer metadata.
    pub const SLOT: u16 = 1;
    /// Ident string.
    pub const IDENT: u16 = 2;
    /// Block index.
    pub const BLOCKS: u16 = 3;
    /// Slot totals.
    pub const TOTALS: u16 = 4;
    /// Exporter counters.
    pub const EXPORTERS: u16 = 5;
}

/// Size of one block-index entry in version 1.
pub const BLOCK_ENTRY_LEN: usize = 24;
/// Size of one exporter entry in version 1.
pub const EXPORTER_ENTRY_LEN: usize = 112;

/// Bounds-checked little-endian reader over a byte slice. Errors carry the
/// absolute offset of the read that failed.
pub struct Bytes<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

/// A read past the end: absolute offset and what was being read.
#[derive(Debug)]
pub struct ShortRead {
    /// Absolute offset of the failed read.
    pub offset: u64,
    /// Bytes wanted.
    pub wanted: usize,
    /// Bytes left.
    pub left: usize,
}

impl<'a> Bytes<'a> {
    /// Reads `buf`, whose first byte is at absolute offset `base`.
    pub fn new(buf: &'a [u8], base: u64) -> Bytes<'a> {
        Bytes { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ShortRead> {
        if self.remaining() < n {
            return Err(ShortRead { offset: self.offset(), wanted: n, left: self.remaining() });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], ShortRead> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// A `u8`.
    pub fn u8(&mut self) -> Result<u8, ShortRead> {
        Ok(self.arr::<1>()?[0])
    }
    /// A `u16`.
    pub fn u16(&mut self) -> Result<u16, ShortRead> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    /// A `u32`.
    pub fn u32(&mut self) -> Result<u32, ShortRead> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    /// A `u64`.
    pub fn u64(&mut self) -> Result<u64, ShortRead> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    /// An `i64`.
    pub fn i64(&mut self) -> Result<i64, ShortRead> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    /// A `u128`.
    pub fn u128(&mut self) -> Result<u128, ShortRead> {
        Ok(u128::from_le_bytes(self.arr()?))
    }
}

/// The fixed file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// Format version.
    pub version: u16,
    /// Slot length in seconds.
    pub slot_len_s: u32,
    /// Slot start, seconds since the epoch.
    pub slot_start_s: i64,
}

impl FileHeader {
    /// The 32 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[12..16].copy_from_slice(&self.slot_len_s.to_le_bytes());
        b[16..24].copy_from_slice(&self.slot_start_s.to_le_bytes());
        // 24..28 flags = 0
        let crc = crc32fast::hash(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// The fixed trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Offset of the footer.
    pub footer_off: u64,
    /// Length of the footer.
    pub footer_len: u32,
    /// crc32 of the footer.
    pub footer_crc: u32,
    /// Format version.
    pub version: u16,
}

impl Trailer {
    /// The 32 trailer bytes.
    pub fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[0..8].copy_from_slice(&self.footer_off.to_le_bytes());
        b[8..12].copy_from_slice(&self.footer_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.footer_crc.to_le_bytes());
        b[16..18].copy_from_slice(&self.version.to_le_bytes());
        b[24..32].copy_from_slice(MAGIC);
        b
    }
}

/// One column entry of a block header, with its chunk location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnEntry {
    /// Column id (may be unknown to this build).
    pub field_id: u16,
    /// Whether values are `u128`.
    pub phys_u128: bool,
    /// Encoding and zone map.
    pub meta: ChunkMeta,
    /// Bytes on disk.
    pub stored_len: u32,
    /// crc32 of the stored bytes.
    pub crc: u32,
    /// Absolute offset of the chunk (computed, not stored).
    pub chunk_offset: u64,
}

impl ColumnEntry {
    /// The field, if this build knows the id.
    pub fn field(&self) -> Option<Field> {
        Field::from_id(self.field_id)
    }

    /// Encoded size of an entry.
    pub fn encoded_len(phys_u128: bool) -> usize {
        ENTRY_FIXED_LEN + 3 * if phys_u128 { 16 } else { 8 }
    }

    /// Appends the entry's bytes.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.field_id.to_le_bytes());
        out.push(u8::from(self.phys_u128));
        out.push(self.meta.enc);
        out.push(self.meta.width);
        out.extend_from_slice(&self.meta.ref_field.to_le_bytes());
        out.push(0);
        out.extend_from_slice(&self.meta.null_count.to_le_bytes());
        out.extend_from_slice(&self.stored_len.to_le_bytes());
        out.extend_from_slice(&self.meta.raw_len.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
        for v in [self.meta.base, self.meta.zone.min, self.meta.zone.max] {
            if self.phys_u128 {
                out.extend_from_slice(&v.to_le_bytes());
            } else {
                out.extend_from_slice(&(v as u64).to_le_bytes());
            }
        }
    }

    /// Reads an entry; `chunk_offset` is filled in by the caller.
    pub fn decode(b: &mut Bytes<'_>) -> Result<ColumnEntry, EntryError> {
        let start = b.offset();
        let field_id = b.u16()?;
        let phys = b.u8()?;
        if phys > 1 {
            return Err(EntryError::Bad(start, format!("column {field_id}: physical type {phys}")));
        }
        let phys_u128 = phys == 1;
        let enc = b.u8()?;
        let width = b.u8()?;
        let ref_field = b.u16()?;
        b.u8()?;
        let null_count = b.u32()?;
        let stored_len = b.u32()?;
        let raw_len = b.u32()?;
        let crc = b.u32()?;
        let mut vals = [0u128; 3];
        for v in &mut vals {
            *v = if phys_u128 { b.u128()? } else { b.u64()? as u128 };
        }
        Ok(ColumnEntry {
            field_id,
            phys_u128,
            meta: ChunkMeta {
                enc,
                width,
                null_count,
                raw_len,
                base: vals[0],
                ref_field,
                zone: ZoneMap { min: vals[1], max: vals[2], nulls: null_count },
            },
            stored_len,
            crc,
            chunk_offset: 0,
        })
    }
}

/// Failure to read a column entry.
#[derive(Debug)]
pub enum EntryError {
    /// Ran out of bytes.
    Short(ShortRead),
    /// Impossible value at an offset.
    Bad(u64, String),
}

impl From<ShortRead> for EntryError {
    fn from(s: ShortRead) -> Self {
        EntryError::Short(s)
    }
}

/// A block index entry in the footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockIndexEntry {
    /// Offset of the block header.
    pub offset: u64,
    /// Header plus chunks.
    pub length: u64,
    /// Rows in the block.
    pub rows: u32,
}

/// Who wrote a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Creator {
    /// Unknown.
    #[default]
    Unknown,
    /// `weir collect`.
    Collect,
    /// `weir gen`.
    Gen,
    /// `weir import`.
    Import,
    /// `weir query -w`.
    Query,
    /// `weir pcap`.
    Pcap,
    /// `weir profile`.
    Profile,
}

impl Creator {
    /// Footer code.
    pub fn code(self) -> u8 {
        match self {
            Creator::Unknown => 0,
            Creator::Collect => 1,
            Creator::Gen => 2,
            Creator::Import => 3,
            Creator::Query => 4,
            Creator::Pcap => 5,
            Creator::Profile => 6,
        }
    }

    /// From a footer code (unknown codes read as `Unknown`).
    pub fn from_code(c: u8) -> Creator {
        match c {
            1 => Creator::Collect,
            2 => Creator::Gen,
            3 => Creator::Import,
            4 => Creator::Query,
            5 => Creator::Pcap,
            6 => Creator::Profile,
            _ => Creator::Unknown,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Creator::Unknown => "unknown",
            Creator::Collect => "collect",
            Creator::Gen => "gen",
            Creator::Import => "import",
            Creator::Query => "query",
            Creator::Pcap => "pcap",
            Creator::Profile => "profile",
        }
    }
}

/// Everything the footer says about a file besides the block index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlotInfo {
    /// Slot start, seconds since the epoch.
    pub slot_start_s: i64,
    /// Slot length in seconds.
    pub slot_len_s: u32,
    /// Which tool wrote the file.
    pub creator: Creator,
    /// When the file was finalized (ms since the epoch).
    pub created_ms: i64,
    /// Writer software and version.
    pub software: String,
    /// Ident of the source.
    pub ident: String,
    /// Slot totals.
    pub totals: SlotTotals,
    /// Per-exporter counters.
    pub exporters: Vec<ExporterStats>,
}

fn section(out: &mut Vec<u8>, tag: u16, payload: &[u8]) {
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Serialises the footer sections.
pub fn encode_footer(info: &SlotInfo, blocks: &[BlockIndexEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut p = Vec::new();
    p.extend_from_slice(&info.slot_start_s.to_le_bytes());
    p.extend_from_slice(&info.slot_len_s.to_le_bytes());
    p.push(info.creator.code());
    p.extend_from_slice(&[0; 3]);
    p.extend_from_slice(&info.created_ms.to_le_bytes());
    let sw = &info.software.as_bytes()[..info.software.len().min(u16::MAX as usize)];
    p.extend_from_slice(&(sw.len() as u16).to_le_bytes());
    p.extend_from_slice(sw);
    section(&mut out, tag::SLOT, &p);

    section(&mut out, tag::IDENT, info.ident.as_bytes());

    p.clear();
    p.extend_from_slice(&(blocks.len() as u32).to_le_bytes());
    p.extend_from_slice(&(BLOCK_ENTRY_LEN as u32).to_le_bytes());
    for b in blocks {
        p.extend_from_slice(&b.offset.to_le_bytes());
        p.extend_from_slice(&b.length.to_le_bytes());
        p.extend_from_slice(&b.rows.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
    }
    section(&mut out, tag::BLOCKS, &p);

    p.clear();
    let counters = totals_to_array(&info.totals);
    p.extend_from_slice(&(counters.len() as u32).to_le_bytes());
    for c in counters {
        p.extend_from_slice(&c.to_le_bytes());
    }
    section(&mut out, tag::TOTALS, &p);

    p.clear();
    p.extend_from_slice(&(info.exporters.len() as u32).to_le_bytes());
    p.extend_from_slice(&(EXPORTER_ENTRY_LEN as u32).to_le_bytes());
    for e in &info.exporters {
        p.extend_from_slice(&e.addr.to_le_bytes());
        p.extend_from_slice(&e.sysid.to_le_bytes());
        p.extend_from_slice(&e.version.to_le_bytes());
        p.extend_from_slice(&e.domain.to_le_bytes());
        for v in [
            e.datagrams,
            e.flows,
            e.packets,
            e.bytes,
            e.sequence_failures,
            e.decode_errors,
            e.unknown_template_sets,
        ] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        p.extend_from_slice(&e.sampling_rate.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        for v in [e.first_ms, e.last_ms, e.dropped] {
            p.extend_from_slice(&v.to_le_bytes());
        }
    }
    section(&mut out, tag::EXPORTERS, &p);
    out
}

fn totals_to_array(t: &SlotTotals) -> [u64; 18] {
    let c = &t.by_class;
    [
        t.all.flows,
        c[0].flows,
        c[1].flows,
        c[2].flows,
        c[3].flows,
        t.all.packets,
        c[0].packets,
        c[1].packets,
        c[2].packets,
        c[3].packets,
        t.all.bytes,
        c[0].bytes,
        c[1].bytes,
        c[2].bytes,
        c[3].bytes,
        t.first_ms,
        t.last_ms,
        t.sequence_failures,
    ]
}

fn totals_from_slice(v: &[u64]) -> SlotTotals {
    let g = |i: usize| v.get(i).copied().unwrap_or(0);
    let mut t = SlotTotals::default();
    t.all.flows = g(0);
    t.all.packets = g(5);
    t.all.bytes = g(10);
    for k in 0..4 {
        t.by_class[k].flows = g(1 + k);
        t.by_class[k].packets = g(6 + k);
        t.by_class[k].bytes = g(11 + k);
    }
    t.first_ms = g(15);
    t.last_ms = g(16);
    t.sequence_failures = g(17);
    t
}

/// A footer that could not be parsed: offset and reason.
#[derive(Debug)]
pub struct FooterError(pub u64, pub String);

impl From<ShortRead> for FooterError {
    fn from(s: ShortRead) -> Self {
        FooterError(s.offset, format!("footer needs {} more bytes, {} left", s.wanted, s.left))
    }
}

/// Parses the footer at absolute offset `base`.
pub fn decode_footer(
    buf: &[u8],
    base: u64,
) -> Result<(SlotInfo, Vec<BlockIndexEntry>), FooterError> {
    let mut info = SlotInfo::default();
    let mut blocks = None;
    let mut b = Bytes::new(buf, base);
    while b.remaining() > 0 {
        let at = b.offset();
        let tag = b.u16()?;
        let _flags = b.u16()?;
        let len = b.u32()? as usize;
        let payload_at = b.offset();
        let payload = b.take(len)?;
        let mut p = Bytes::new(payload, payload_at);
        match tag {
            tag::SLOT => {
                info.slot_start_s = p.i64()?;
                info.slot_len_s = p.u32()?;
                info.creator = Creator::from_code(p.u8()?);
                p.take(3)?;
                info.created_ms = p.i64()?;
                let n = p.u16()? as usize;
                info.software = String::from_utf8_lossy(p.take(n)?).into_owned();
            }
            tag::IDENT => info.ident = String::from_utf8_lossy(payload).into_owned(),
            tag::BLOCKS => {
                let (count, entry_len) = (p.u32()? as usize, p.u32()? as usize);
                if entry_len < BLOCK_ENTRY_LEN || count.saturating_mul(entry_len) != p.remaining() {
                    return Err(FooterError(
                        at,
                        format!(
                            "block index of {count} entries of {entry_len} bytes does not fill its {len}-byte section"
                        ),
                    ));
                }
                let mut v = Vec::with_capacity(count);
                for _ in 0..count {
                    let mut e = Bytes::new(p.take(entry_len)?, 0);
                    v.push(BlockIndexEntry { offset: e.u64()?, length: e.u64()?, rows: e.u32()? });
                }
                blocks = Some(v);
            }
            tag::TOTALS => {
                let count = p.u32()? as usize;
                if count.saturating_mul(8) != p.remaining() {
                    return Err(FooterError(
                        at,
                        format!("totals of {count} counters do not fill their section"),
                    ));
                }
                let v: Vec<u64> = (0..count).map(|_| p.u64()).collect::<Result<_, _>>()?;
                info.totals = totals_from_slice(&v);
            }
            tag::EXPORTERS => {
                let (count, entry_len) = (p.u32()? as usize, p.u32()? as usize);
                if entry_len < EXPORTER_ENTRY_LEN
                    || count.saturating_mul(entry_len) != p.remaining()
                {
                    return Err(FooterError(
                        at,
                        format!(
                            "exporter table of {count} entries of {entry_len} bytes does not fill its section"
                        ),
                    ));
                }
                for _ in 0..count {
                    let ebase = p.offset();
                    let mut e = Bytes::new(p.take(entry_len)?, ebase);
                    let mut x = ExporterStats {
                        addr: e.u128()?,
                        sysid: e.u16()?,
                        version: e.u16()?,
                        domain: e.u32()?,
                        ..Default::default()
                    };
                    x.datagrams = e.u64()?;
                    x.flows = e.u64()?;
                    x.packets = e.u64()?;
                    x.bytes = e.u64()?;
                    x.sequence_failures = e.u64()?;
                    x.decode_errors = e.u64()?;
                    x.unknown_template_sets = e.u64()?;
                    x.sampling_rate = e.u32()?;
                    e.u32()?;
                    x.first_ms = e.u64()?;
                    x.last_ms = e.u64()?;
                    x.dropped = e.u64()?;
                    info.exporters.push(x);
                }
            }
            _ => {} // unknown section: skipped (FORMAT.md, versioning rules)
        }
    }
    let blocks = blocks.ok_or_else(|| FooterError(base, "footer has no block index".into()))?;
    Ok((info, blocks))
}
