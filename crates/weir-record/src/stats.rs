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
                let (lo, hi) = bounds(v)?;
                (lo as u128, hi as u128)
            }
            (Values::U128(v), None) => bounds(v)?,
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

/// [`min_max_of`], first testing whether the values are all the same, 64
/// at a time: a column that holds one value per block (one exporter, one
/// domain, the flow version) is common, and comparing for equality is
/// much cheaper than keeping a minimum and a maximum. The first run of 64
/// with another value hands the rest to [`min_max_of`], so other columns
/// pay for one run.
#[inline]
fn bounds<T: Copy + Ord>(v: &[T]) -> Option<(T, T)> {
    let &first = v.first()?;
    let mut same = 0;
    for run in v.chunks(64) {
        if !run.iter().fold(true, |all, &x| all & (x == first)) {
            break;
        }
        same += run.len();
    }
    match min_max_of(&v[same..]) {
        None => Some((first, first)),
        Some((lo, hi)) => Some((lo.min(first), hi.max(first))),
    }
}

/// Smallest and largest value of a slice, four independent lanes at a
/// time (the writer computes this for every column of every block).
#[inline]
fn min_max_of<T: Copy + Ord>(v: &[T]) -> Option<(T, T)> {
    let &first = v.first()?;
    let mut lo = [first; 4];
    let mut hi = [first; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for k in 0..4 {
            lo[k] = lo[k].min(c[k]);
            hi[k] = hi[k].max(c[k]);
        }
    }
    for &x in chunks.remainder() {
        lo[0] = lo[0].min(x);
        hi[0] = hi[0].max(x);
    }
    let lo = lo.into_iter().min().unwrap_or(first);
    let hi = hi.into_iter().max().unwrap_or(first);
    Some((lo, hi))
}

/// `op` (min or max) over a slice, four independent lanes at a time;
/// `id` for an empty slice.
#[inline]
fn lanes(v: &[u64], id: u64, op: fn(u64, u64) -> u64) -> u64 {
    let mut acc = [id; 4];
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for k in 0..4 {
            acc[k] = op(acc[k], c[k]);
        }
    }
    let tail = chunks.remainder().iter().fold(id, |a, &x| op(a, x));
    acc.into_iter().fold(tail, op)
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
        // Per-class sums in u128, clamped once (the same as adding row by
        // row with saturation: every term is non-negative). In runs of
        // 1024 rows summed branch-free in u64 (1024 terms below 2^54
        // cannot overflow): each row adds to every class, masked, so
        // nothing waits on a class's sum in memory.
        let mut sums = [[0u128; 3]; 4];
        let flows = batch.column(Field::Flows);
        const RUN: usize = 1024;
        for start in (0..proto.len()).step_by(RUN) {
            let end = (start + RUN).min(proto.len());
            let (p, k, b) = (&proto[start..end], &packets[start..end], &bytes[start..end]);
            let small = flows.is_none() && k.iter().chain(b).fold(0u64, |a, &x| a | x) < 1 << 54;
            if small {
                // Totals of every row, and of the UDP and ICMP rows by
                // multiplying with 0 or 1 (no branch to mispredict); TCP
                // and the rest are what remains.
                let (mut all, mut udp, mut icmp, mut tcp) = ([0u64; 3], [0u64; 3], [0u64; 3], 0u64);
                let (mut tcp_k, mut tcp_b) = (0u64, 0u64);
                for ((&p, &k), &b) in p.iter().zip(k).zip(b) {
                    // As `ProtoClass::of(p as u8)` (a stored proto is a byte).
                    let p = p as u8;
                    let is_tcp = u64::from(p == 6);
                    let is_udp = u64::from(p == 17);
                    let is_icmp = u64::from(p == 1) | u64::from(p == 58);
                    all[1] += k;
                    all[2] += b;
                    tcp += is_tcp;
                    tcp_k += is_tcp * k;
                    tcp_b += is_tcp * b;
                    udp[0] += is_udp;
                    udp[1] += is_udp * k;
                    udp[2] += is_udp * b;
                    icmp[0] += is_icmp;
                    icmp[1] += is_icmp * k;
                    icmp[2] += is_icmp * b;
                }
                all[0] = p.len() as u64;
                let tcp = [tcp, tcp_k, tcp_b];
                let other: [u64; 3] = std::array::from_fn(|i| all[i] - tcp[i] - udp[i] - icmp[i]);
                for (s, r) in sums.iter_mut().zip([tcp, udp, icmp, other]) {
                    for (x, y) in s.iter_mut().zip(r) {
                        *x += u128::from(y);
                    }
                }
            } else {
                for (i, ((&p, &k), &b)) in p.iter().zip(k).zip(b).enumerate() {
                    let n = flows.and_then(|fl| fl.get(start + i)).map_or(1, |v| v as u64);
                    let s = &mut sums[ProtoClass::of(p as u8) as usize];
                    s[0] += u128::from(n);
                    s[1] += u128::from(k);
                    s[2] += u128::from(b);
                }
            }
        }
        let clamp = |x: u128| u64::try_from(x).unwrap_or(u64::MAX);
        let counts =
            |s: &[u128; 3]| Counts { flows: clamp(s[0]), packets: clamp(s[1]), bytes: clamp(s[2]) };
        let mut all = [0u128; 3];
        for (c, s) in self.by_class.iter_mut().zip(&sums) {
            c.add(&counts(s));
            for (a, x) in all.iter_mut().zip(s) {
                *a += x;
            }
        }
        let add = counts(&all);
        self.all.add(&add);
        if batch.rows() > 0 {
            let lo = lanes(first, u64::MAX, u64::min);
            let hi = lanes(last, 0, u64::max);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchBuilder, FlowRecord};

    /// Adding row by row with saturation: what `add_batch` must equal.
    fn reference_add(t: &mut SlotTotals, batch: &FlowBatch) {
        let col = |f: Field| batch.column(f).and_then(|c| c.values.as_u64()).unwrap();
        let (proto, packets, bytes) = (col(Field::Proto), col(Field::Packets), col(Field::Bytes));
        let (first, last) = (col(Field::First), col(Field::Last));
        let flows = batch.column(Field::Flows);
        let mut add = Counts::default();
        for i in 0..batch.rows() {
            let n = flows.and_then(|c| c.get(i)).map_or(1, |v| v as u64);
            let c = Counts { flows: n, packets: packets[i], bytes: bytes[i] };
            t.by_class[ProtoClass::of(proto[i] as u8) as usize].add(&c);
            add.add(&c);
        }
        t.all.add(&add);
        if batch.rows() > 0 {
            let lo = first.iter().copied().min().unwrap_or(0);
            let hi = last.iter().copied().max().unwrap_or(0);
            t.first_ms = if t.all.flows == add.flows { lo } else { t.first_ms.min(lo) };
            t.last_ms = t.last_ms.max(hi);
        }
    }

    #[test]
    fn totals_match_the_reference() {
        let mut batches = Vec::new();
        let mut b = BatchBuilder::default();
        for i in 0..500u64 {
            let r = FlowRecord {
                first: 1000 + (i * 7919) % 333,
                last: 2000 + (i * 104_729) % 777,
                proto: [6, 17, 1, 58, 47][(i % 5) as usize],
                packets: i * 3,
                bytes: if i == 7 { u64::MAX - 5 } else { i * 1000 },
                flows: (i % 3 != 0).then_some(i % 4),
                ..Default::default()
            };
            b.push(&r);
            if i % 200 == 199 {
                batches.push(b.finish());
            }
        }
        batches.push(b.finish());
        // Without a flows column, and one with saturating counts.
        let mut plain = batches[0].clone();
        plain.take_column(Field::Flows);
        batches.push(plain);
        let mut huge = batches[1].clone();
        huge.set_column(Field::Packets, Column::full(Values::U64(vec![u64::MAX / 3; 200])));
        batches.push(huge);
        // Longer than one run of the branch-free sums, one run of them
        // with a counter too big for it.
        for big_at in [None, Some(1500)] {
            let mut b = BatchBuilder::default();
            for i in 0..2600u64 {
                b.push(&FlowRecord {
                    first: i,
                    last: i + 10,
                    proto: [6, 6, 17, 1, 58, 47, 6][(i * 31 % 7) as usize],
                    packets: i % 97,
                    bytes: if Some(i) == big_at { 1 << 60 } else { i * 1499 },
                    ..Default::default()
                });
            }
            batches.push(b.finish());
        }
        let (mut mine, mut reference) = (SlotTotals::default(), SlotTotals::default());
        for batch in &batches {
            mine.add_batch(batch);
            reference_add(&mut reference, batch);
            assert_eq!(mine, reference);
        }
    }

    #[test]
    fn lane_min_max_equals_a_plain_scan() {
        let v: Vec<u64> = (0..1001).map(|i| (i * 7919) % 1009 + 5).collect();
        for n in [0, 1, 3, 4, 5, 9, 1001] {
            let s = &v[..n];
            let plain = s.iter().min().map(|&lo| (lo, *s.iter().max().unwrap()));
            assert_eq!(min_max_of(s), plain, "{n} values");
            assert_eq!(bounds(s), plain, "{n} values");
            let mut constant = vec![7u64; n];
            assert_eq!(bounds(&constant), constant.first().map(|_| (7, 7)));
            if n > 100 {
                constant[n - 1] = 3;
                constant[70] = 9;
                assert_eq!(bounds(&constant), Some((3, 9)), "{n} values, two others late");
            }
            assert_eq!(lanes(s, u64::MAX, u64::min), plain.map_or(u64::MAX, |p| p.0));
            assert_eq!(lanes(s, 0, u64::max), plain.map_or(0, |p| p.1));
        }
        let z = ZoneMap::of(&Column::full(Values::U64(v))).unwrap();
        assert_eq!((z.min, z.max, z.nulls), (5, 1013, 0));
    }
}
