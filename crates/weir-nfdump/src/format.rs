//! The fixed structures of an nfdump 1.7 file (layout version 2): the file
//! header, block headers, and the non-flow records (exporter, exporter
//! statistics, sampler, ident, stat). All integers are in the byte order of
//! the machine that wrote the file; only little-endian files are read.

use weir_record::{Counts, ProtoClass, SlotTotals};

/// nfdump's file magic.
pub const MAGIC: u16 = 0xA50C;
/// Layout version of nfdump 1.7 files.
pub const LAYOUT_VERSION_2: u16 = 2;
/// Layout version of nfdump 1.6 files.
pub const LAYOUT_VERSION_1: u16 = 1;
/// Length of the file header.
pub const FILE_HEADER_LEN: usize = 40;
/// Length of a block header.
pub const BLOCK_HEADER_LEN: usize = 12;
/// The only block type of layout 2 files that holds records.
pub const DATA_BLOCK_TYPE_3: u16 = 3;
/// Largest block nfdump reads (its read buffer, 5 MiB); blocks decompress
/// into at most this many bytes.
pub const MAX_BLOCK: usize = 5 * 1024 * 1024;

/// Record types.
pub mod rtype {
    /// Exporter information (address, version, sysid, domain).
    pub const EXPORTER_INFO: u16 = 7;
    /// Exporter statistics (datagrams, flows, sequence failures per sysid).
    pub const EXPORTER_STAT: u16 = 8;
    /// Flow record, V3 layout.
    pub const V3: u16 = 11;
    /// Sampler.
    pub const SAMPLER: u16 = 15;
    /// Ident (appendix).
    pub const IDENT: u16 = 0x8001;
    /// Stat record (appendix).
    pub const STAT: u16 = 0x8002;
}

/// Block compression of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed.
    None,
    /// LZO1X (nfcapd `-z` in 1.7.1).
    Lzo,
    /// bzip2 (`-j`).
    Bz2,
    /// LZ4 block format (`-y`).
    Lz4,
    /// Zstandard (1.7.2 and later).
    Zstd,
}

impl Compression {
    /// The code in the file header.
    pub fn from_code(c: u8) -> Option<Compression> {
        Some(match c {
            0 => Compression::None,
            1 => Compression::Lzo,
            2 => Compression::Bz2,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    /// The code in the file header.
    pub fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Lzo => 1,
            Compression::Bz2 => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Name as nfdump prints it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "not compressed",
            Compression::Lzo => "LZO",
            Compression::Bz2 => "BZ2",
            Compression::Lz4 => "LZ4",
            Compression::Zstd => "ZSTD",
        }
    }
}

/// The 40-byte file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// Layout version (2).
    pub version: u16,
    /// nfdump version that wrote the file, e.g. `0x01070100` for 1.7.1.
    pub nfdump_version: u32,
    /// When the file was created (seconds since the epoch).
    pub created: i64,
    /// Block compression.
    pub compression: Compression,
    /// Encryption code (0: none).
    pub encryption: u8,
    /// Blocks in the appendix.
    pub appendix_blocks: u16,
    /// Creator code (1.7.8: 1 nfcapd, 2 nfpcapd, 3 sfcapd, 4 nfdump, ...;
    /// 0 in files of 1.7.1).
    pub creator: u32,
    /// Offset of the appendix (0: the file was not closed).
    pub appendix_offset: u64,
    /// Block size field (unused by 1.7.1, 0).
    pub block_size: u32,
    /// Data blocks, appendix not included.
    pub num_blocks: u32,
}

#[inline]
pub(crate) fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

#[inline]
pub(crate) fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

#[inline]
pub(crate) fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// An nfdump `ip_addr_t` (16 bytes) as weir's `u128`: IPv4 is the `u32` at
/// byte 8, IPv6 two `u64`s, the high half first.
#[inline]
pub(crate) fn ip_addr_at(b: &[u8], o: usize, v6: bool) -> u128 {
    if v6 {
        (u128::from(u64_at(b, o)) << 64) | u128::from(u64_at(b, o + 8))
    } else {
        0xffff_0000_0000 | u128::from(u32_at(b, o + 8))
    }
}

/// One block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// Records in the block.
    pub num_records: u32,
    /// Bytes following the header (compressed size if compressed).
    pub size: u32,
    /// Block type (3 for layout 2).
    pub block_type: u16,
    /// Flags: bit 0 the block is stored uncompressed, bit 1 not encrypted,
    /// bit 2 auto-read.
    pub flags: u16,
}

impl BlockHeader {
    /// Parses the 12 bytes of a block header.
    pub fn parse(b: &[u8; BLOCK_HEADER_LEN]) -> BlockHeader {
        BlockHeader {
            num_records: u32_at(b, 0),
            size: u32_at(b, 4),
            block_type: u16_at(b, 8),
            flags: u16_at(b, 10),
        }
    }

    /// Whether the block is stored uncompressed whatever the file says.
    pub fn uncompressed(&self) -> bool {
        self.flags & 1 != 0
    }
}

/// An exporter record: who sent the flows with sysid `sysid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExporterInfo {
    /// Export protocol version (1, 5, 7, 9, 10, ...).
    pub version: u32,
    /// Exporter address (weir's `u128`, IPv4-mapped).
    pub addr: u128,
    /// The sysid flows refer to.
    pub sysid: u16,
    /// v9 source id / IPFIX observation domain; for v5 engine type << 8 |
    /// engine id.
    pub id: u32,
}

impl ExporterInfo {
    /// Record payload length (after the 4-byte record header).
    pub(crate) const LEN: usize = 28;

    pub(crate) fn parse(b: &[u8]) -> ExporterInfo {
        let family = u16_at(b, 20);
        ExporterInfo {
            version: u32_at(b, 0),
            addr: ip_addr_at(b, 4, family != 2),
            sysid: u16_at(b, 22),
            id: u32_at(b, 24),
        }
    }
}

/// Counters of one exporter in an exporter stat record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExporterCounters {
    /// The exporter's sysid.
    pub sysid: u32,
    /// Sequence failures.
    pub sequence_failures: u32,
    /// Export datagrams received.
    pub packets: u64,
    /// Flow records received.
    pub flows: u64,
}

impl ExporterCounters {
    /// Length of one entry.
    pub(crate) const LEN: usize = 24;

    pub(crate) fn parse(b: &[u8]) -> ExporterCounters {
        ExporterCounters {
            sysid: u32_at(b, 0),
            sequence_failures: u32_at(b, 4),
            packets: u64_at(b, 8),
            flows: u64_at(b, 16),
        }
    }
}

/// A sampler an exporter announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplerInfo {
    /// The exporter's sysid.
    pub sysid: u16,
    /// Sampling algorithm.
    pub algorithm: u16,
    /// Sampler id on the exporter (-1: the exporter's default sampler).
    pub id: i64,
    /// Packets sampled in each interval.
    pub packet_interval: u32,
    /// Packets not sampled in each interval.
    pub space_interval: u32,
}

impl SamplerInfo {
    /// Record payload length.
    pub(crate) const LEN: usize = 20;

    pub(crate) fn parse(b: &[u8]) -> SamplerInfo {
        SamplerInfo {
            sysid: u16_at(b, 0),
            algorithm: u16_at(b, 2),
            id: u64_at(b, 4) as i64,
            packet_interval: u32_at(b, 12),
            space_interval: u32_at(b, 16),
        }
    }

    /// 1 in N: `(packet + space) / packet`, at least 1.
    pub fn rate(&self) -> u32 {
        let p = u64::from(self.packet_interval.max(1));
        let n = (p + u64::from(self.space_interval)) / p;
        n.clamp(1, u64::from(u32::MAX)) as u32
    }
}

/// The stat record of the appendix: what `nfdump -I` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatRecord {
    /// Flows, packets and bytes over all protocols.
    pub all: Counts,
    /// The same per protocol class (TCP, UDP, ICMP, other).
    pub by_class: [Counts; 4],
    /// First seen, ms since the epoch.
    pub first_ms: u64,
    /// Last seen, ms since the epoch.
    pub last_ms: u64,
    /// Sequence failures.
    pub sequence_failures: u64,
}

impl StatRecord {
    /// Record payload length (18 `u64`s).
    pub(crate) const LEN: usize = 144;

    pub(crate) fn parse(b: &[u8]) -> StatRecord {
        let v = |i: usize| u64_at(b, i * 8);
        let mut by_class = [Counts::default(); 4];
        for (k, c) in by_class.iter_mut().enumerate() {
            *c = Counts { flows: v(3 + k), bytes: v(7 + k), packets: v(11 + k) };
        }
        StatRecord {
            all: Counts { flows: v(0), bytes: v(1), packets: v(2) },
            by_class,
            first_ms: v(15),
            last_ms: v(16),
            sequence_failures: v(17),
        }
    }

    /// As weir's slot totals.
    pub fn to_totals(&self) -> SlotTotals {
        SlotTotals {
            all: self.all,
            by_class: self.by_class,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            sequence_failures: self.sequence_failures,
        }
    }

    /// Counts of one protocol class.
    pub fn class(&self, c: ProtoClass) -> &Counts {
        &self.by_class[c as usize]
    }
}
