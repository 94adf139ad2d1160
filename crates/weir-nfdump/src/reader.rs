//! Reading an nfdump file: header, appendix, blocks, records.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use weir_record::{ExporterStats, FlowRecord};

use crate::codec::Decompressor;
use crate::error::{ErrorKind, NfError, Result};
use crate::format::{
    BLOCK_HEADER_LEN, BlockHeader, Compression, DATA_BLOCK_TYPE_3, ExporterCounters, ExporterInfo,
    FILE_HEADER_LEN, FileHeader, LAYOUT_VERSION_1, LAYOUT_VERSION_2, MAGIC, MAX_BLOCK, SamplerInfo,
    StatRecord, ip_addr_at, rtype, u16_at, u32_at, u64_at,
};

/// One data block, decompressed.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// Offset of the block header in the file.
    pub offset: u64,
    /// The block header as stored.
    pub header: Option<BlockHeader>,
    /// Whether `data` was decompressed (offsets inside it then do not map
    /// to file offsets).
    pub decompressed: bool,
    /// The records, decompressed.
    pub data: Vec<u8>,
}

impl Block {
    /// Records in the block, as the header says.
    pub fn num_records(&self) -> u32 {
        self.header.map_or(0, |h| h.num_records)
    }

    /// The records of the block, each as its type and bytes (record header
    /// included), with its position in `data`.
    pub fn records(&self) -> RawRecords<'_> {
        RawRecords { data: &self.data, pos: 0, left: self.num_records() }
    }

    /// The file offset of byte `pos` of `data`, or of the block when the
    /// data was decompressed; the second value says where inside the
    /// decompressed data, for messages.
    pub(crate) fn locate(&self, pos: usize) -> (u64, Option<usize>) {
        if self.decompressed {
            (self.offset, Some(pos))
        } else {
            (self.offset + BLOCK_HEADER_LEN as u64 + pos as u64, None)
        }
    }
}

/// One record of a block, undecoded.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Position of the record in the block's data.
    pub pos: usize,
    /// Record type (11 for flows).
    pub rtype: u16,
    /// The record, header included.
    pub bytes: &'a [u8],
}

/// Iterator over the records of a block. A record whose size is
/// impossible ends the iteration with an error (the rest of the block
/// cannot be found).
#[derive(Debug)]
pub struct RawRecords<'a> {
    data: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> Iterator for RawRecords<'a> {
    type Item = Result<RawRecord<'a>, (usize, ErrorKind)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let pos = self.pos;
        let rest = &self.data[pos.min(self.data.len())..];
        if rest.len() < 4 {
            self.left = 0;
            return Some(Err((
                pos,
                ErrorKind::Corrupt(format!(
                    "block: record header at byte {pos} past the end of the block data ({} bytes; {} more records announced)",
                    self.data.len(),
                    self.left + 1
                )),
            )));
        }
        let rtype = u16_at(rest, 0);
        let size = u16_at(rest, 2) as usize;
        if size < 4 || size > rest.len() {
            self.left = 0;
            return Some(Err((
                pos,
                ErrorKind::Corrupt(format!(
                    "record of type {rtype} at byte {pos}: size {size} (block data has {} bytes left)",
                    rest.len()
                )),
            )));
        }
        self.pos += size;
        Some(Ok(RawRecord { pos, rtype, bytes: &rest[..size] }))
    }
}

/// Counts of what the reader passed over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipCounts {
    /// Flow record extensions weir does not store, by extension id.
    pub extensions: BTreeMap<u16, u64>,
    /// Records of types the reader does not decode, by record type.
    pub records: BTreeMap<u16, u64>,
    /// Blocks of types other than 3.
    pub blocks: u64,
}

impl SkipCounts {
    /// Total extensions skipped.
    pub fn extension_total(&self) -> u64 {
        self.extensions.values().sum()
    }

    /// Adds another file's counts.
    pub fn merge(&mut self, o: &SkipCounts) {
        for (k, v) in &o.extensions {
            *self.extensions.entry(*k).or_default() += v;
        }
        for (k, v) in &o.records {
            *self.records.entry(*k).or_default() += v;
        }
        self.blocks += o.blocks;
    }
}

/// What one record turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A flow: the `FlowRecord` passed in was filled.
    Flow,
    /// An exporter record.
    Exporter(ExporterInfo),
    /// An exporter stat record: counters per sysid.
    ExporterStat(Vec<ExporterCounters>),
    /// A sampler record.
    Sampler(SamplerInfo),
    /// The ident (appendix).
    Ident(String),
    /// The stat record (appendix).
    Stat(StatRecord),
    /// A record of another type, skipped (and counted).
    Skipped(u16),
}

/// Extension ids of V3 records.
mod ext {
    pub const GENERIC: u16 = 1;
    pub const IPV4: u16 = 2;
    pub const IPV6: u16 = 3;
    pub const MISC: u16 = 4;
    pub const CNT: u16 = 5;
    pub const VLAN: u16 = 6;
    pub const AS: u16 = 7;
    pub const BGP_NH_V4: u16 = 8;
    pub const BGP_NH_V6: u16 = 9;
    pub const NH_V4: u16 = 10;
    pub const NH_V6: u16 = 11;
    pub const RECV_V4: u16 = 12;
    pub const RECV_V6: u16 = 13;
    pub const MPLS: u16 = 14;
    pub const MAC: u16 = 15;
    pub const AS_ADJ: u16 = 16;
    pub const OBSERVATION: u16 = 33;

    /// Payload bytes (after the 4-byte extension header) weir reads.
    pub fn min_len(id: u16) -> Option<usize> {
        Some(match id {
            GENERIC => 48,
            IPV4 => 8,
            IPV6 => 32,
            MISC => 14,
            CNT => 24,
            VLAN => 8,
            AS => 8,
            BGP_NH_V4 | NH_V4 | RECV_V4 => 4,
            BGP_NH_V6 | NH_V6 | RECV_V6 => 16,
            MPLS => 40,
            MAC => 32,
            AS_ADJ => 8,
            OBSERVATION => 12,
            _ => return None,
        })
    }
}

/// V3 record flag: the flow was sampled.
const V3_FLAG_SAMPLED: u8 = 2;

/// Decodes records, keeping what later records refer to: exporters,
/// samplers and per-exporter counters.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    /// Exporter records by sysid (index).
    exporters: Vec<Option<ExporterInfo>>,
    samplers: BTreeMap<u16, Vec<SamplerInfo>>,
    counters: BTreeMap<u32, ExporterCounters>,
    /// What the flows of each sysid (index) add up to.
    flow_sums: Vec<ExporterStats>,
    skipped: SkipCounts,
}

fn corrupt(pos: usize, msg: String) -> (usize, ErrorKind) {
    (pos, ErrorKind::Corrupt(msg))
}

impl Decoder {
    /// Decodes one record; flows are written into `flow` (every field
    /// reset first).
    pub fn decode(
        &mut self,
        r: &RawRecord<'_>,
        flow: &mut FlowRecord,
    ) -> Result<Decoded, (usize, ErrorKind)> {
        let b = r.bytes;
        let short = |need: usize| {
            corrupt(
                r.pos,
                format!(
                    "record of type {} at byte {}: {} bytes, needs {need}",
                    r.rtype,
                    r.pos,
                    b.len()
                ),
            )
        };
        match r.rtype {
            rtype::V3 => {
                self.decode_v3(r, flow)?;
                Ok(Decoded::Flow)
            }
            rtype::EXPORTER_INFO => {
                if b.len() < 4 + ExporterInfo::LEN {
                    return Err(short(4 + ExporterInfo::LEN));
                }
                let e = ExporterInfo::parse(&b[4..]);
                let i = usize::from(e.sysid);
                if self.exporters.len() <= i {
                    self.exporters.resize(i + 1, None);
                }
                self.exporters[i] = Some(e);
                Ok(Decoded::Exporter(e))
            }
            rtype::EXPORTER_STAT => {
                if b.len() < 8 {
                    return Err(short(8));
                }
                let n = u32_at(b, 4) as usize;
                let need = n.saturating_mul(ExporterCounters::LEN).saturating_add(8);
                if b.len() < need {
                    return Err(short(need));
                }
                let list: Vec<_> = (0..n)
                    .map(|i| ExporterCounters::parse(&b[8 + i * ExporterCounters::LEN..]))
                    .collect();
                for c in &list {
                    let e = self
                        .counters
                        .entry(c.sysid)
                        .or_insert(ExporterCounters { sysid: c.sysid, ..Default::default() });
                    e.sequence_failures = e.sequence_failures.saturating_add(c.sequence_failures);
                    e.packets = e.packets.saturating_add(c.packets);
                    e.flows = e.flows.saturating_add(c.flows);
                }
                Ok(Decoded::ExporterStat(list))
            }
            rtype::SAMPLER => {
                if b.len() < 4 + SamplerInfo::LEN {
                    return Err(short(4 + SamplerInfo::LEN));
                }
                let s = SamplerInfo::parse(&b[4..]);
                let list = self.samplers.entry(s.sysid).or_default();
                list.retain(|x| x.id != s.id);
                list.push(s);
                Ok(Decoded::Sampler(s))
            }
            rtype::IDENT => {
                let raw = &b[4..];
                let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
                Ok(Decoded::Ident(String::from_utf8_lossy(&raw[..end]).into_owned()))
            }
            rtype::STAT => {
                if b.len() < 4 + StatRecord::LEN {
                    return Err(short(4 + StatRecord::LEN));
                }
                Ok(Decoded::Stat(StatRecord::parse(&b[4..])))
            }
            t => {
                *self.skipped.records.entry(t).or_default() += 1;
                Ok(Decoded::Skipped(t))
            }
        }
    }

    fn decode_v3(
        &mut self,
        r: &RawRecord<'_>,
        f: &mut FlowRecord,
    ) -> Result<(), (usize, ErrorKind)> {
        let b = r.bytes;
        if b.len() < 12 {
            return Err(corrupt(
                r.pos,
                format!("flow record at byte {}: size {} < 12", r.pos, b.len()),
            ));
        }
        *f = FlowRecord::default();
        let elements = u16_at(b, 4);
        let sysid = u16_at(b, 8);
        let flags = b[10];
        let version = b[11];
        f.engine_type = Some(b[6]);
        f.engine_id = Some(b[7]);
        f.exporter_id = Some(sysid);
        f.flow_version = Some(version);
        let mut p = 12;
        let mut have_generic = false;
        let mut have_obs = false;
        for _ in 0..elements {
            if p + 4 > b.len() {
                return Err(corrupt(
                    r.pos + p,
                    format!(
                        "flow record at byte {}: {elements} extensions announced, record ends at extension header byte {p} of {}",
                        r.pos,
                        b.len()
                    ),
                ));
            }
            let id = u16_at(b, p);
            let len = u16_at(b, p + 2) as usize;
            if len < 4 || p + len > b.len() {
                return Err(corrupt(
                    r.pos + p,
                    format!(
                        "flow record at byte {}: extension {id} at byte {p} has length {len} (record size {})",
                        r.pos,
                        b.len()
                    ),
                ));
            }
            let x = &b[p + 4..p + len];
            p += len;
            let Some(need) = ext::min_len(id) else {
                *self.skipped.extensions.entry(id).or_default() += 1;
                continue;
            };
            if x.len() < need {
                return Err(corrupt(
                    r.pos + p - len,
                    format!(
                        "flow record at byte {}: extension {id} has {} bytes, needs {need}",
                        r.pos,
                        x.len()
                    ),
                ));
            }
            let v4 = |o: usize| 0xffff_0000_0000u128 | u128::from(u32_at(x, o));
            match id {
                ext::GENERIC => {
                    have_generic = true;
                    f.first = u64_at(x, 0);
                    f.last = u64_at(x, 8);
                    f.received = u64_at(x, 16);
                    f.packets = u64_at(x, 24);
                    f.bytes = u64_at(x, 32);
                    f.src_port = u16_at(x, 40);
                    f.dst_port = u16_at(x, 42);
                    f.proto = x[44];
                    f.tcp_flags = x[45];
                    f.fwd_status = Some(x[46]);
                    f.src_tos = x[47];
                }
                ext::IPV4 => {
                    f.src_addr = Some(v4(0));
                    f.dst_addr = Some(v4(4));
                }
                ext::IPV6 => {
                    f.src_addr = Some(ip_addr_at(x, 0, true));
                    f.dst_addr = Some(ip_addr_at(x, 16, true));
                }
                ext::MISC => {
                    f.input_if = Some(u32_at(x, 0));
                    f.output_if = Some(u32_at(x, 4));
                    f.src_mask = Some(x[8]);
                    f.dst_mask = Some(x[9]);
                    f.direction = Some(x[10]);
                    f.dst_tos = Some(x[11]);
                    f.end_reason = Some(x[13]);
                }
                ext::CNT => {
                    f.flows = Some(u64_at(x, 0));
                    f.out_packets = Some(u64_at(x, 8));
                    f.out_bytes = Some(u64_at(x, 16));
                }
                ext::VLAN => {
                    f.src_vlan = Some(u32_at(x, 0) as u16);
                    f.dst_vlan = Some(u32_at(x, 4) as u16);
                }
                ext::AS => {
                    f.src_as = Some(u32_at(x, 0));
                    f.dst_as = Some(u32_at(x, 4));
                }
                ext::BGP_NH_V4 => f.bgp_next_hop = Some(v4(0)),
                ext::BGP_NH_V6 => f.bgp_next_hop = Some(ip_addr_at(x, 0, true)),
                ext::NH_V4 => f.next_hop = Some(v4(0)),
                ext::NH_V6 => f.next_hop = Some(ip_addr_at(x, 0, true)),
                ext::RECV_V4 => f.exporter_addr = Some(v4(0)),
                ext::RECV_V6 => f.exporter_addr = Some(ip_addr_at(x, 0, true)),
                ext::MPLS => {
                    let labels = f.mpls_mut();
                    for (i, l) in labels.into_iter().enumerate() {
                        let v = u32_at(x, i * 4);
                        // nfdump keeps the 24-bit stack entry; 0 = no label.
                        *l = (v != 0).then_some(v & 0x00ff_ffff);
                    }
                }
                ext::MAC => {
                    let m = |o: usize| u64_at(x, o) & 0xffff_ffff_ffff;
                    f.in_src_mac = Some(m(0));
                    f.out_dst_mac = Some(m(8));
                    f.in_dst_mac = Some(m(16));
                    f.out_src_mac = Some(m(24));
                }
                ext::AS_ADJ => {
                    f.next_as = Some(u32_at(x, 0));
                    f.prev_as = Some(u32_at(x, 4));
                }
                ext::OBSERVATION => {
                    have_obs = true;
                    f.obs_domain = Some(u32_at(x, 8));
                }
                _ => unreachable!("min_len covers the mapped ids"),
            }
        }
        if !have_generic {
            return Err(corrupt(
                r.pos,
                format!(
                    "flow record at byte {} has no generic flow extension (times, counters)",
                    r.pos
                ),
            ));
        }
        if let Some(Some(e)) = self.exporters.get(usize::from(sysid)) {
            if f.exporter_addr.is_none() {
                f.exporter_addr = Some(e.addr);
            }
            if !have_obs && matches!(version, 9 | 10) {
                f.obs_domain = Some(e.id);
            }
        }
        if flags & V3_FLAG_SAMPLED != 0
            && let Some(list) = self.samplers.get(&sysid)
            && let Some(s) = list.iter().find(|s| s.id == -1).or(list.last())
        {
            f.sampling_rate = Some(s.rate());
        }
        let i = usize::from(sysid);
        if self.flow_sums.len() <= i {
            self.flow_sums.resize(i + 1, ExporterStats::default());
        }
        let sum = &mut self.flow_sums[i];
        if version & 0x80 != 0 {
            // sFlow (sfcapd): 0x80 | datagram version, weir's sFlow code.
            sum.version = u16::from(version);
        }
        sum.flows += 1;
        sum.packets = sum.packets.saturating_add(f.packets);
        sum.bytes = sum.bytes.saturating_add(f.bytes);
        if f.received != 0 {
            if sum.first_ms == 0 || f.received < sum.first_ms {
                sum.first_ms = f.received;
            }
            sum.last_ms = sum.last_ms.max(f.received);
        }
        Ok(())
    }

    /// Exporters seen so far, in sysid order.
    pub fn exporters(&self) -> impl Iterator<Item = &ExporterInfo> {
        self.exporters.iter().flatten()
    }

    /// Samplers seen so far, by sysid.
    pub fn samplers(&self) -> &BTreeMap<u16, Vec<SamplerInfo>> {
        &self.samplers
    }

    /// What was skipped so far.
    pub fn skipped(&self) -> &SkipCounts {
        &self.skipped
    }

    /// The exporter table as weir keeps it: one entry per sysid that has an
    /// exporter record, with nfcapd's counters (datagrams, flows received,
    /// sequence failures), the packets and bytes of the flows read, the
    /// first and last receive time and the sampling rate.
    pub fn exporter_stats(&self) -> Vec<ExporterStats> {
        self.exporters()
            .map(|e| {
                let c = self.counters.get(&u32::from(e.sysid)).copied().unwrap_or_default();
                let s = self.flow_sums.get(usize::from(e.sysid)).copied().unwrap_or_default();
                let rate = self
                    .samplers
                    .get(&e.sysid)
                    .and_then(|l| l.iter().find(|s| s.id == -1).or(l.last()))
                    .map_or(0, SamplerInfo::rate);
                ExporterStats {
                    addr: e.addr,
                    sysid: e.sysid,
                    version: if s.version & 0x80 != 0 { s.version } else { e.version as u16 },
                    domain: e.id,
                    datagrams: c.packets,
                    flows: if c.flows > 0 { c.flows } else { s.flows },
                    packets: s.packets,
                    bytes: s.bytes,
                    sequence_failures: u64::from(c.sequence_failures),
                    sampling_rate: rate,
                    first_ms: s.first_ms,
                    last_ms: s.last_ms,
                    ..Default::default()
                }
            })
            .collect()
    }
}

/// An open nfdump file.
///
/// [`NfFile::open`] reads the header and the appendix (ident and stat
/// record); [`NfFile::next_block`] then returns the data blocks in order,
/// decompressed, and [`NfFile::for_each_flow`] / [`NfFile::flows`] decode
/// their records. Nothing is trusted: every size is checked against the
/// file, and damage gives an [`NfError`] naming the file and the offset.
pub struct NfFile<R = BufReader<File>> {
    path: PathBuf,
    src: R,
    len: u64,
    header: FileHeader,
    ident: Option<String>,
    stat: Option<StatRecord>,
    data_end: u64,
    pos: u64,
    blocks_read: u32,
    raw: Vec<u8>,
    dec: Decompressor,
    decoder: Decoder,
}

impl<R> std::fmt::Debug for NfFile<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfFile")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("ident", &self.ident)
            .finish_non_exhaustive()
    }
}

impl NfFile<BufReader<File>> {
    /// Opens a file and reads its header and appendix.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| NfError::io(path, "open", e))?;
        NfFile::from_reader(BufReader::with_capacity(1 << 20, file), path)
    }
}

impl<R: Read + Seek> NfFile<R> {
    /// Reads the header and appendix from `src`; `path` names it in errors.
    pub fn from_reader(mut src: R, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let len = src.seek(SeekFrom::End(0)).map_err(|e| NfError::io(&path, "seek", e))?;
        src.seek(SeekFrom::Start(0)).map_err(|e| NfError::io(&path, "seek", e))?;
        let mut h = [0u8; FILE_HEADER_LEN];
        let got = read_up_to(&mut src, &mut h).map_err(|e| NfError::io(&path, "read", e))?;
        if got >= 2 {
            let magic = u16_at(&h, 0);
            if magic == MAGIC.swap_bytes() {
                return Err(NfError::at(&path, 0, ErrorKind::BigEndian));
            }
            if magic != MAGIC {
                return Err(NfError::at(&path, 0, ErrorKind::BadMagic(magic)));
            }
        }
        if got >= 4 {
            match u16_at(&h, 2) {
                LAYOUT_VERSION_2 => {}
                LAYOUT_VERSION_1 => return Err(NfError::at(&path, 2, ErrorKind::Layout1)),
                v => return Err(NfError::at(&path, 2, ErrorKind::UnsupportedVersion(v))),
            }
        }
        if got < FILE_HEADER_LEN {
            return Err(NfError::at(
                &path,
                got as u64,
                ErrorKind::Truncated(format!(
                    "file header needs {FILE_HEADER_LEN} bytes, file has {got}"
                )),
            ));
        }
        let compression = Compression::from_code(h[16])
            .ok_or_else(|| NfError::at(&path, 16, ErrorKind::UnsupportedCompression(h[16])))?;
        let header = FileHeader {
            version: u16_at(&h, 2),
            nfdump_version: u32_at(&h, 4),
            created: u64_at(&h, 8) as i64,
            compression,
            encryption: h[17],
            appendix_blocks: u16_at(&h, 18),
            creator: u32_at(&h, 20),
            appendix_offset: u64_at(&h, 24),
            block_size: u32_at(&h, 32),
            num_blocks: u32_at(&h, 36),
        };
        if header.encryption != 0 {
            return Err(NfError::at(&path, 17, ErrorKind::Encrypted));
        }
        let data_end = if header.appendix_offset == 0 {
            len
        } else if header.appendix_offset < FILE_HEADER_LEN as u64 || header.appendix_offset > len {
            return Err(NfError::at(
                &path,
                24,
                ErrorKind::Truncated(format!(
                    "appendix offset {} outside the file ({len} bytes)",
                    header.appendix_offset
                )),
            ));
        } else {
            header.appendix_offset
        };
        let mut f = NfFile {
            path,
            src,
            len,
            header,
            ident: None,
            stat: None,
            data_end,
            pos: FILE_HEADER_LEN as u64,
            blocks_read: 0,
            raw: Vec::new(),
            dec: Decompressor::default(),
            decoder: Decoder::default(),
        };
        if header.appendix_offset != 0 {
            f.read_appendix()?;
        }
        f.seek(FILE_HEADER_LEN as u64)?;
        Ok(f)
    }

    fn seek(&mut self, to: u64) -> Result<()> {
        self.src.seek(SeekFrom::Start(to)).map_err(|e| NfError::io(&self.path, "seek", e))?;
        self.pos = to;
        Ok(())
    }

    fn read_appendix(&mut self) -> Result<()> {
        self.seek(self.header.appendix_offset)?;
        let mut block = Block::default();
        let mut scratch = FlowRecord::default();
        let mut appendix = Decoder::default();
        for _ in 0..self.header.appendix_blocks {
            if !self.read_block(&mut block, self.len)? {
                return Err(NfError::at(
                    &self.path,
                    self.pos,
                    ErrorKind::Truncated(format!(
                        "the header announces {} appendix blocks at offset {}; the file ends first",
                        self.header.appendix_blocks, self.header.appendix_offset
                    )),
                ));
            }
            for r in block.records() {
                let r = r.map_err(|(pos, k)| self.block_error(&block, pos, k))?;
                match appendix.decode(&r, &mut scratch) {
                    Ok(Decoded::Ident(s)) => self.ident = Some(s),
                    Ok(Decoded::Stat(s)) => self.stat = Some(s),
                    Ok(_) => {}
                    Err((pos, k)) => return Err(self.block_error(&block, pos, k)),
                }
            }
        }
        Ok(())
    }

    fn block_error(&self, block: &Block, pos: usize, kind: ErrorKind) -> NfError {
        let (offset, inner) = block.locate(pos);
        let kind = match (inner, kind) {
            (Some(at), ErrorKind::Corrupt(m)) => {
                ErrorKind::Corrupt(format!("{m} (byte {at} of the decompressed block)"))
            }
            (_, k) => k,
        };
        NfError::at(&self.path, offset, kind)
    }

    /// Reads the block at `self.pos` (which must end by `end`) into `block`;
    /// `false` at `end`.
    fn read_block(&mut self, block: &mut Block, end: u64) -> Result<bool> {
        let at = self.pos;
        if at >= end {
            return Ok(false);
        }
        let mut hb = [0u8; BLOCK_HEADER_LEN];
        if end - at < BLOCK_HEADER_LEN as u64 {
            return Err(NfError::at(
                &self.path,
                at,
                ErrorKind::Truncated(format!(
                    "block header needs {BLOCK_HEADER_LEN} bytes, {} left",
                    end - at
                )),
            ));
        }
        self.src.read_exact(&mut hb).map_err(|e| NfError::io(&self.path, "read", e))?;
        let h = BlockHeader::parse(&hb);
        let size = u64::from(h.size);
        let body = at + BLOCK_HEADER_LEN as u64;
        if size > end - body {
            return Err(NfError::at(
                &self.path,
                at,
                ErrorKind::Truncated(format!(
                    "block of {size} bytes, only {} left{}",
                    end - body,
                    if end < self.len { " before the appendix" } else { " in the file" }
                )),
            ));
        }
        if size as usize > MAX_BLOCK {
            return Err(NfError::at(
                &self.path,
                at,
                ErrorKind::Corrupt(format!("block size {size} over nfdump's limit of {MAX_BLOCK}")),
            ));
        }
        self.raw.resize(size as usize, 0);
        self.src.read_exact(&mut self.raw).map_err(|e| NfError::io(&self.path, "read", e))?;
        self.pos = body + size;
        let compression =
            if h.uncompressed() { Compression::None } else { self.header.compression };
        block.offset = at;
        block.header = Some(h);
        block.decompressed = compression != Compression::None;
        if compression == Compression::None {
            std::mem::swap(&mut block.data, &mut self.raw);
        } else {
            self.dec
                .decompress(compression, &self.raw, &mut block.data, MAX_BLOCK)
                .map_err(|k| NfError::at(&self.path, at, k))?;
        }
        Ok(true)
    }

    /// Reads the next data block, decompressed, into `block` (whose buffer
    /// is reused); `false` after the last one.
    pub fn next_block(&mut self, block: &mut Block) -> Result<bool> {
        if self.pos < FILE_HEADER_LEN as u64 {
            self.seek(FILE_HEADER_LEN as u64)?;
        }
        let got = self.read_block(block, self.data_end)?;
        if got {
            self.blocks_read += 1;
        }
        Ok(got)
    }

    /// Data blocks read so far. After the last one this should equal the
    /// header's `num_blocks`; a difference is not treated as damage (the
    /// blocks are found by walking the data area up to the appendix, as
    /// nfdump does), but can be reported.
    pub fn blocks_read(&self) -> u32 {
        self.blocks_read
    }

    /// Iterator over the data blocks (each decompressed into a new buffer).
    pub fn blocks(&mut self) -> Blocks<'_, R> {
        Blocks { file: self, done: false }
    }

    /// Calls `each` for every flow of the file, in file order, with a
    /// record that is reused between calls. Exporter, sampler and exporter
    /// stat records are taken in on the way ([`NfFile::decoder`]).
    pub fn for_each_flow<E>(
        &mut self,
        mut each: impl FnMut(&FlowRecord) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<NfError>,
    {
        let mut cur = FlowCursor::default();
        let mut flow = FlowRecord::default();
        while self.next_flow(&mut cur, &mut flow)? {
            each(&flow)?;
        }
        Ok(())
    }

    /// Decodes the next flow into `flow`, reading blocks as needed; false
    /// at the end of the file. Exporter, sampler, ident and stat records on
    /// the way are taken in.
    fn next_flow(&mut self, cur: &mut FlowCursor, flow: &mut FlowRecord) -> Result<bool> {
        loop {
            if cur.left == 0 {
                if !self.next_block(&mut cur.block)? {
                    return Ok(false);
                }
                if cur.block.header.is_some_and(|h| h.block_type != DATA_BLOCK_TYPE_3) {
                    self.decoder.skipped.blocks += 1;
                    continue;
                }
                cur.pos = 0;
                cur.left = cur.block.num_records();
                continue;
            }
            let mut it = RawRecords { data: &cur.block.data, pos: cur.pos, left: cur.left };
            let Some(r) = it.next() else { unreachable!("left > 0") };
            (cur.pos, cur.left) = (it.pos, it.left);
            let r = r.map_err(|(pos, k)| self.block_error(&cur.block, pos, k))?;
            match self.decoder.decode(&r, flow) {
                Ok(Decoded::Flow) => return Ok(true),
                Ok(Decoded::Ident(s)) => self.ident = Some(s),
                Ok(Decoded::Stat(s)) => self.stat = Some(s),
                Ok(_) => {}
                Err((pos, k)) => return Err(self.block_error(&cur.block, pos, k)),
            }
        }
    }

    /// Iterator over the flows of the file (one [`FlowRecord`] allocated per
    /// flow; [`NfFile::for_each_flow`] reuses one). After an error it ends.
    pub fn flow_iter(&mut self) -> FlowIter<'_, R> {
        FlowIter { file: self, cur: FlowCursor::default(), done: false }
    }

    /// All flows of the file.
    pub fn flows(&mut self) -> Result<Vec<FlowRecord>> {
        let mut out = Vec::new();
        self.for_each_flow(|f| {
            out.push(f.clone());
            Ok::<_, NfError>(())
        })?;
        Ok(out)
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The ident of the appendix (nfcapd `-I`), if the file has one.
    pub fn ident(&self) -> Option<&str> {
        self.ident.as_deref()
    }

    /// The stat record of the appendix (what `nfdump -I` prints), if the
    /// file has one (files nfcapd did not close have none).
    pub fn stat(&self) -> Option<&StatRecord> {
        self.stat.as_ref()
    }

    /// The file's name in errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty (never true for an open file).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Exporters, samplers, counters and skip counts of the records read
    /// so far.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The exporter table of the records read so far, as weir keeps it.
    pub fn exporter_stats(&self) -> Vec<ExporterStats> {
        self.decoder.exporter_stats()
    }

    /// What was skipped so far.
    pub fn skipped(&self) -> &SkipCounts {
        &self.decoder.skipped
    }
}

/// Iterator over the data blocks of a file, see [`NfFile::blocks`].
pub struct Blocks<'a, R> {
    file: &'a mut NfFile<R>,
    done: bool,
}

impl<R: Read + Seek> Iterator for Blocks<'_, R> {
    type Item = Result<Block>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut b = Block::default();
        match self.file.next_block(&mut b) {
            Ok(true) => Some(Ok(b)),
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Where [`NfFile::next_flow`] is: the current block and its records left.
#[derive(Default)]
struct FlowCursor {
    block: Block,
    pos: usize,
    left: u32,
}

/// Iterator over the flows of a file, see [`NfFile::flow_iter`].
pub struct FlowIter<'a, R> {
    file: &'a mut NfFile<R>,
    cur: FlowCursor,
    done: bool,
}

impl<R: Read + Seek> FlowIter<'_, R> {
    fn step(&mut self) -> Result<Option<FlowRecord>> {
        let mut flow = FlowRecord::default();
        Ok(self.file.next_flow(&mut self.cur, &mut flow)?.then_some(flow))
    }
}

impl<R: Read + Seek> Iterator for FlowIter<'_, R> {
    type Item = Result<FlowRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(f)) => Some(Ok(f)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
