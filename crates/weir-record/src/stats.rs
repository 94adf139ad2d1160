//! Zone maps, slot totals and exporter counters.

use crate::batch::{Column, FlowBatch, Values};
use crate::field::Field;

/// Minimum, maximum and gap count of one column over a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneMap {
    /// Smallest value among rows that have one.
    pub min: u128,
    /// Largest value among rows that have one.
    pub max: u128,
    /// Rows without a value.
    pub nulls: u32,
}

impl ZoneMap {
    /// The zone map of a column, `None` if no row has a value.
    pub fn of(column: &Column) -> Option<ZoneMap> {
        let nulls = column.null_count() as u32;
        let (min, max) = match (&column.values, &column.validity) {
            (Values::U64(v), None) => {
                let (lo, hi) = min_max(v.iter().copied())?;
                (lo as u128, hi as u128)
            }
            (Values::U128(v), None) => min_max(v.iter().copied())?,
            (Values::U64(v), Some(b)) => {
                let (lo, hi) = min_max(b.iter_ones().map(|i| v[i]))?;
                (lo as u128, hi as u128)
            }
            (Values::U128(v), Some(b)) => min_max(b.iter_ones().map(|i| v[i]))?,
        };
        Some(ZoneMap { min, max, nulls })
    }
}

fn min_max<T: Ord + Copy>(mut it: impl Iterator<Item = T>) -> Option<(T, T)> {
    let first = it.next()?;
    Some(it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
}

/// Per-column zone maps of one block: what block pruning looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockStats {
    /// Rows in the block.
    pub rows: u32,
    zones: Vec<Option<ZoneMap>>,
}

impl BlockStats {
    /// Stats of `rows` rows with no column yet.
    pub fn new(rows: u32) -> BlockStats {
        BlockStats { rows, zones: vec![None; Field::COUNT] }
    }

    /// Computes the zone maps of every column of a batch.
    pub fn of(batch: &FlowBatch) -> BlockStats {
        let mut s = BlockStats::new(batch.rows() as u32);
        for f in batch.fields() {
            s.zones[f.index()] = batch.column(f).and_then(ZoneMap::of);
        }
        s
    }

    /// The zone map of `field`; `None` means no row of the block has it.
    pub fn zone(&self, field: Field) -> Option<&ZoneMap> {
        self.zones[field.index()].as_ref()
    }

    /// Sets the zone map of `field`.
    pub fn set_zone(&mut self, field: Field, zone: Option<ZoneMap>) {
        self.zones[field.index()] = zone;
    }
}

/// Protocol classes that nfdump keeps separate totals for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoClass {
    /// TCP (6).
    Tcp = 0,
    /// UDP (17).
    Udp = 1,
    /// ICMP (1) and ICMPv6 (58).
    Icmp = 2,
    /// Everything else.
    Other = 3,
}

impl ProtoClass {
    /// The class of an IP protocol number.
    #[inline]
    pub fn of(proto: u8) -> ProtoClass {
        match proto {
            6 => ProtoClass::Tcp,
            17 => ProtoClass::Udp,
            1 | 58 => ProtoClass::Icmp,
            _ => ProtoClass::Other,
        }
    }

    /// All classes in footer order.
    pub const ALL: [ProtoClass; 4] =
        [ProtoClass::Tcp, ProtoClass::Udp, ProtoClass::Icmp, ProtoClass::Other];

    /// Lower-case name as nfdump prints it (`tcp`, `udp`, `icmp`, `other`).
    pub fn name(self) -> &'static str {
        ["tcp", "udp", "icmp", "other"][self as usize]
    }
}

/// Flows, packets and bytes, overall and per [`ProtoClass`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Aggregated flows.
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.flows = self.flows.saturating_add(o.flows);
        self.packets = self.packets.saturating_add(o.packets);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }
}

/// The slot totals kept in every file footer (nfdump's stat record).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotTotals {
    /// Totals over all protocols.
    pub all: Counts,
    /// Totals per [`ProtoClass`], indexed by `class as usize`.
    pub by_class: [Counts; 4],
    /// Earliest `first` (ms), 0 if there are no flows.
    pub first_ms: u64,
    /// Latest `last` (ms), 0 if there are no flows.
    pub last_ms: u64,
    /// Sequence failures seen by the collector over the slot.
    pub sequence_failures: u64,
}

impl SlotTotals {
    /// Adds every row of a batch.
    ///
    /// # Panics
    /// If the batch lacks one of the required columns.
    pub fn add_batch(&mut self, batch: &FlowBatch) {
        let col = |f: Field| {
            batch.column(f).and_then(|c| c.values.as_u64()).expect("required column present")
        };
        let (proto, packets, bytes) = (col(Field::Proto), col(Field::Packets), col(Field::Bytes));
        let (first, last) = (col(Field::First), col(Field::Last));
        let flows = batch.column(Field::Flows);
        let mut add = Counts::default();
        for i in 0..batch.rows() {
            let n = flows.and_then(|c| c.get(i)).map_or(1, |v| v as u64);
            let c = Counts { flows: n, packets: packets[i], bytes: bytes[i] };
            self.by_class[ProtoClass::of(proto[i] as u8) as usize].add(&c);
            add.add(&c);
        }
        self.all.add(&add);
        if batch.rows() > 0 {
            let lo = first.iter().copied().min().unwrap_or(0);
            let hi = last.iter().copied().max().unwrap_or(0);
            self.first_ms = if self.all.flows == add.flows { lo } else { self.first_ms.min(lo) };
            self.last_ms = self.last_ms.max(hi);
        }
    }

    /// Adds another slot's totals (for summaries over several files).
    pub fn merge(&mut self, o: &SlotTotals) {
        let had = self.all.flows > 0;
        self.all.add(&o.all);
        for (a, b) in self.by_class.iter_mut().zip(&o.by_class) {
            a.add(b);
        }
        if o.all.flows > 0 {
            self.first_ms = if had { self.first_ms.min(o.first_ms) } else { o.first_ms };
            self.last_ms = self.last_ms.max(o.last_ms);
        }
        self.sequence_failures += o.sequence_failures;
    }

    /// Totals of one protocol class.
    pub fn class(&self, c: ProtoClass) -> &Counts {
        &self.by_class[c as usize]
    }
}

/// What a collector counted for one exporter during a slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExporterStats {
    /// Exporter address (IPv4-mapped for IPv4).
    pub addr: u128,
    /// sysid: the value of the `exporter_id` column for this exporter's flows.
    pub sysid: u16,
    /// Export protocol (1, 5, 7, 9, 10, 0x85 for sFlow v5).
    pub version: u16,
    /// v9 source id / IPFIX observation domain / sFlow sub-agent.
    pub domain: u32,
    /// Datagrams received.
    pub datagrams: u64,
    /// Flow records decoded.
    pub flows: u64,
    /// Packets in those flows.
    pub packets: u64,
    /// Bytes in those flows.
    pub bytes: u64,
    /// Sequence number gaps.
    pub sequence_failures: u64,
    /// Datagrams or sets that could not be decoded.
    pub decode_errors: u64,
    /// Data sets whose template was not known.
    pub unknown_template_sets: u64,
    /// Sampling rate announced by the exporter (0 = unknown).
    pub sampling_rate: u32,
    /// First datagram of the slot (ms).
    pub first_ms: u64,
    /// Last datagram of the slot (ms).
    pub last_ms: u64,
    /// Flows dropped before they were written (queue full, ...).
    pub dropped: u64,
}

impl ExporterStats {
    /// Adds the counters of `o` (same exporter, another slot or file); the
    /// sampling rate becomes the larger of the two.
    pub fn add_counters(&mut self, o: &ExporterStats) {
        self.datagrams += o.datagrams;
        self.flows += o.flows;
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.sequence_failures += o.sequence_failures;
        self.decode_errors += o.decode_errors;
        self.unknown_template_sets += o.unknown_template_sets;
        self.dropped += o.dropped;
        self.sampling_rate = self.sampling_rate.max(o.sampling_rate);
        if o.first_ms != 0 && (self.first_ms == 0 || o.first_ms < self.first_ms) {
            self.first_ms = o.first_ms;
        }
        self.last_ms = self.last_ms.max(o.last_ms);
    }
}
