//! Flow aggregation (`-a`, `-A`, `-b`, `-B`, `-s record`): a compact hash
//! table keyed by the key components, with no allocation per entry.

use std::io::Write;

use hashbrown::HashTable;
use rayon::prelude::*;
use weir_filter::Filter;
use weir_record::{Bitmap, Field, FlowBatch, FlowRecord};

use crate::error::QueryError;
use crate::keys::{Col, Comp, mix};
use crate::model::{AggKey, Bidir, Order, OrderKey};
use crate::order::{TopN, counters_value, rank};
use crate::spill::{Dec, Enc, SpillSet, read_entries};

/// Sums of one aggregated record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AggAcc {
    pub first: u64,
    pub last: u64,
    pub packets: u64,
    pub bytes: u64,
    pub out_packets: u64,
    pub out_bytes: u64,
    pub flows: u64,
    pub tcp_flags: u8,
    /// Whether any merged record had reverse counters.
    pub has_out: bool,
    /// Position of the first merged record in file order.
    pub ord: u64,
    /// The srcnet/dstnet masks of the first record (for printing).
    pub masks: [u8; 2],
}

impl AggAcc {
    #[inline]
    fn add(&mut self, o: &AggAcc) {
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.packets = self.packets.saturating_add(o.packets);
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.out_packets = self.out_packets.saturating_add(o.out_packets);
        self.out_bytes = self.out_bytes.saturating_add(o.out_bytes);
        self.flows = self.flows.saturating_add(o.flows);
        self.tcp_flags |= o.tcp_flags;
        self.has_out |= o.has_out;
        if o.ord < self.ord {
            self.ord = o.ord;
            self.masks = o.masks;
        }
    }

    /// `o` seen in the reverse direction.
    #[inline]
    fn add_reversed(&mut self, o: &AggAcc) {
        let masks = self.masks;
        let r = AggAcc {
            packets: o.out_packets,
            bytes: o.out_bytes,
            out_packets: o.packets,
            out_bytes: o.bytes,
            ..*o
        };
        self.add(&r);
        self.masks = masks;
    }
}

/// Number of partitions of a table (by hash bits that hashbrown does not
/// use for its own buckets and tags), merged and ranked in parallel.
pub(crate) const PARTS: usize = 64;

/// The partition of a hash.
#[inline]
pub(crate) fn part_of(hash: u64) -> usize {
    (hash >> 40) as usize & (PARTS - 1)
}

/// Key equality without a `memcmp` call (keys are a few words).
#[inline(always)]
fn same(a: &[u128], b: &[u128]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// One partition: keys in an arena, `width` components per entry.
#[derive(Default)]
struct Part {
    keys: Vec<u128>,
    present: Vec<u64>,
    hashes: Vec<u64>,
    accs: Vec<AggAcc>,
    table: HashTable<u32>,
}

impl Part {
    /// The entry holding `key` (`Some((i, false))`) or, for bidirectional
    /// tables, its reverse (`Some((i, true))`).
    #[inline]
    fn find(
        &self,
        w: usize,
        hash: u64,
        key: &[u128],
        present: u64,
        rev: Option<(&[u128], u64)>,
    ) -> Option<(usize, bool)> {
        let mut reversed = false;
        self.table
            .find(hash, |&i| {
                let i = i as usize;
                let k = &self.keys[i * w..(i + 1) * w];
                let p = self.present[i];
                if p == present && same(k, key) {
                    reversed = false;
                    return true;
                }
                if let Some((rk, rp)) = rev
                    && p == rp
                    && same(k, rk)
                {
                    reversed = true;
                    return true;
                }
                false
            })
            .map(|&i| (i as usize, reversed))
    }

    fn insert_new(&mut self, hash: u64, key: &[u128], present: u64, acc: AggAcc) {
        let idx = self.accs.len() as u32;
        self.keys.extend_from_slice(key);
        self.present.push(present);
        self.hashes.push(hash);
        self.accs.push(acc);
        let hashes = &self.hashes;
        self.table.insert_unique(hash, idx, |&i| hashes[i as usize]);
    }

    fn memory(&self) -> usize {
        self.keys.capacity() * 16
            + self.present.capacity() * 8
            + self.hashes.capacity() * 8
            + self.accs.capacity() * std::mem::size_of::<AggAcc>()
            + self.table.capacity() * 5
    }
}

/// How keys are compared and hashed; shared by all partitions.
#[derive(Clone)]
struct Shape {
    comps: Vec<Comp>,
    /// For bidirectional aggregation: component `c` of the reverse key is
    /// component `rev[c]` of the key.
    rev: Option<Vec<usize>>,
    width: usize,
}

impl Shape {
    fn hash_key(key: &[u128], present: u64) -> u64 {
        key.iter().fold(present.wrapping_mul(0x2545_F491_4F6C_DD1D), |h, v| mix(h, *v))
    }

    /// The reverse of `key` into `out`, with its presence bits.
    #[inline]
    fn reverse(&self, key: &[u128], present: u64, out: &mut [u128]) -> u64 {
        let mut rp = 0u64;
        if let Some(rev) = &self.rev {
            for (c, &from) in rev.iter().enumerate() {
                out[c] = key[from];
                if present >> from & 1 == 1 {
                    rp |= 1 << c;
                }
            }
        }
        rp
    }
}

/// The aggregation table: [`PARTS`] partitions of a compact hash table.
/// For bidirectional aggregation a key and its reverse hash alike, so one
/// probe finds either.
pub(crate) struct AggTable {
    shape: Shape,
    parts: Vec<Part>,
    scratch_rev: Vec<u128>,
}

impl AggTable {
    pub fn new(keys: &[AggKey], bidir: Option<Bidir>) -> AggTable {
        let comps = Comp::list(keys);
        let rev = bidir.map(|_| {
            comps
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let m = c.mirror();
                    comps.iter().position(|x| *x == m).unwrap_or(i)
                })
                .collect()
        });
        let width = comps.len();
        AggTable {
            shape: Shape { comps, rev, width },
            parts: (0..PARTS).map(|_| Part::default()).collect(),
            scratch_rev: vec![0; width],
        }
    }

    /// The columns aggregation reads.
    pub fn fields(&self) -> Vec<Field> {
        let mut v = vec![
            Field::First,
            Field::Last,
            Field::Packets,
            Field::Bytes,
            Field::OutPackets,
            Field::OutBytes,
            Field::Flows,
            Field::TcpFlags,
        ];
        for c in &self.shape.comps {
            c.fields(&mut v);
        }
        v
    }

    /// Approximate heap bytes.
    pub fn memory(&self) -> usize {
        self.parts.iter().map(Part::memory).sum()
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| p.accs.is_empty())
    }

    /// The hash of a key (for bidirectional tables the hash of the smaller
    /// of key and reverse, left in `rkey` with its presence bits).
    #[inline]
    fn hash_of(shape: &Shape, key: &[u128], rkey: &mut [u128], present: u64) -> (u64, u64) {
        if shape.rev.is_none() {
            return (Shape::hash_key(key, present), 0);
        }
        let rp = shape.reverse(key, present, rkey);
        if (present, key) <= (rp, &*rkey) {
            (Shape::hash_key(key, present), rp)
        } else {
            (Shape::hash_key(rkey, rp), rp)
        }
    }

    /// Adds one record to the partition its hash selects.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn add_in(
        shape: &Shape,
        part: &mut Part,
        hash: u64,
        key: &[u128],
        rkey: &[u128],
        present: u64,
        rp: u64,
        acc: &AggAcc,
    ) {
        let rev = shape.rev.is_some().then_some((rkey, rp));
        match part.find(shape.width, hash, key, present, rev) {
            Some((i, false)) => part.accs[i].add(acc),
            Some((i, true)) => part.accs[i].add_reversed(acc),
            None => part.insert_new(hash, key, present, *acc),
        }
    }

    /// Adds the rows of `batch` set in `sel`; `ord_base` is the file-order
    /// position of row 0.
    pub fn add_batch(&mut self, batch: &FlowBatch, sel: &Bitmap, ord_base: u64) {
        let cols: Vec<[Col<'_>; 2]> = self.shape.comps.iter().map(|c| c.cols(batch)).collect();
        let first = Col::of(batch, Field::First);
        let last = Col::of(batch, Field::Last);
        let packets = Col::of(batch, Field::Packets);
        let bytes = Col::of(batch, Field::Bytes);
        let opk = Col::of(batch, Field::OutPackets);
        let oby = Col::of(batch, Field::OutBytes);
        let flows = Col::of(batch, Field::Flows);
        let flags = Col::of(batch, Field::TcpFlags);
        let net_masks: Vec<Option<usize>> = self
            .shape
            .comps
            .iter()
            .map(|c| match c {
                Comp::Net { mask, .. } => Some(usize::from(*mask != Field::SrcMask)),
                _ => None,
            })
            .collect();
        // Keys are built column by column for a run of rows, then added
        // row by row.
        let w = self.shape.width;
        let mut rows: Vec<usize> = Vec::with_capacity(1024);
        let mut keys: Vec<u128> = Vec::new();
        let mut presence: Vec<u64> = Vec::new();
        let mut masks: Vec<[u8; 2]> = Vec::new();
        let mut ones = sel.iter_ones();
        loop {
            rows.clear();
            rows.extend(ones.by_ref().take(1024));
            if rows.is_empty() {
                break;
            }
            let n = rows.len();
            keys.clear();
            keys.resize(n * w, 0);
            presence.clear();
            presence.resize(n, 0);
            masks.clear();
            masks.resize(n, [0; 2]);
            for (c, comp) in self.shape.comps.iter().enumerate() {
                let col = &cols[c];
                for (k, &i) in rows.iter().enumerate() {
                    if let Some(v) = comp.value(col, i) {
                        keys[k * w + c] = v;
                        presence[k] |= 1 << c;
                    }
                }
                if let Some(side) = net_masks[c] {
                    for (k, &i) in rows.iter().enumerate() {
                        masks[k][side] = col[1].get(i).unwrap_or(0) as u8;
                    }
                }
            }
            for (k, &i) in rows.iter().enumerate() {
                let o_p = opk.get(i);
                let o_b = oby.get(i);
                let acc = AggAcc {
                    first: first.u64_or(i, 0),
                    last: last.u64_or(i, 0),
                    packets: packets.u64_or(i, 0),
                    bytes: bytes.u64_or(i, 0),
                    out_packets: o_p.unwrap_or(0) as u64,
                    out_bytes: o_b.unwrap_or(0) as u64,
                    flows: flows.get(i).map_or(1, |v| v as u64),
                    tcp_flags: flags.u64_or(i, 0) as u8,
                    has_out: o_p.is_some() || o_b.is_some(),
                    ord: ord_base + i as u64,
                    masks: masks[k],
                };
                let key = &keys[k * w..(k + 1) * w];
                let present = presence[k];
                let (hash, rp) = Self::hash_of(&self.shape, key, &mut self.scratch_rev, present);
                let part = &mut self.parts[part_of(hash)];
                Self::add_in(&self.shape, part, hash, key, &self.scratch_rev, present, rp, &acc);
            }
        }
    }

    /// Adds one record (the reference path of the tests).
    #[cfg(test)]
    pub fn add_record(&mut self, r: &FlowRecord, ord: u64) {
        let mut key = vec![0u128; self.shape.width];
        let mut present = 0u64;
        let mut masks = [0u8; 2];
        for (c, comp) in self.shape.comps.iter().enumerate() {
            match comp.value_of(r) {
                Some(v) => {
                    key[c] = v;
                    present |= 1 << c;
                }
                None => key[c] = 0,
            }
            if let Comp::Net { mask, .. } = comp {
                let side = usize::from(*mask != Field::SrcMask);
                masks[side] = r.get(*mask).unwrap_or(0) as u8;
            }
        }
        let acc = AggAcc {
            first: r.first,
            last: r.last,
            packets: r.packets,
            bytes: r.bytes,
            out_packets: r.out_packets.unwrap_or(0),
            out_bytes: r.out_bytes.unwrap_or(0),
            flows: r.flows.unwrap_or(1),
            tcp_flags: r.tcp_flags,
            has_out: r.out_packets.is_some() || r.out_bytes.is_some(),
            ord,
            masks,
        };
        let (hash, rp) = Self::hash_of(&self.shape, &key, &mut self.scratch_rev, present);
        let part = &mut self.parts[part_of(hash)];
        Self::add_in(&self.shape, part, hash, &key, &self.scratch_rev, present, rp, &acc);
    }

    /// Merges tables covering later rows, in their order, into this one:
    /// every partition by one task, in parallel (the blocks of a window are
    /// pre-aggregated on their own, then absorbed here).
    pub fn absorb(&mut self, others: Vec<AggTable>) {
        let shape = &self.shape;
        let w = shape.width;
        let mut columns: Vec<Vec<Part>> =
            (0..PARTS).map(|_| Vec::with_capacity(others.len())).collect();
        for o in others {
            for (col, part) in columns.iter_mut().zip(o.parts) {
                if !part.accs.is_empty() {
                    col.push(part);
                }
            }
        }
        self.parts.par_iter_mut().zip(columns.into_par_iter()).for_each(|(a, bs)| {
            let mut rkey = vec![0u128; w];
            for b in bs {
                if a.accs.is_empty() {
                    *a = b;
                    continue;
                }
                for i in 0..b.accs.len() {
                    let key = &b.keys[i * w..(i + 1) * w];
                    let present = b.present[i];
                    let rp = shape.reverse(key, present, &mut rkey);
                    Self::add_in(shape, a, b.hashes[i], key, &rkey, present, rp, &b.accs[i]);
                }
            }
        });
    }

    /// The accumulator of entry `e`.
    #[inline]
    pub fn acc(&self, e: Entry) -> &AggAcc {
        &self.parts[e.part as usize].accs[e.index as usize]
    }

    /// Every entry, partition by partition.
    #[cfg(test)]
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.parts.iter().enumerate().flat_map(|(p, part)| {
            (0..part.accs.len()).map(move |i| Entry { part: p as u32, index: i as u32 })
        })
    }

    /// The entries of partition `p`.
    pub fn part_entries(&self, p: usize) -> impl Iterator<Item = Entry> + '_ {
        let n = self.parts.get(p).map_or(0, |x| x.accs.len());
        (0..n).map(move |i| Entry { part: p as u32, index: i as u32 })
    }

    /// The aggregated record of entry `e`.
    pub fn record(&self, e: Entry, bidir: Option<Bidir>) -> FlowRecord {
        record_of(&self.shape, &self.parts[e.part as usize], e.index as usize, bidir)
    }

    /// Bytes of one spilled entry.
    fn entry_size(&self) -> usize {
        16 + 16 * self.shape.width + 8 * 8 + 4
    }

    /// Writes every entry to the spill files of its partition and empties
    /// the table.
    pub fn spill_into(&mut self, set: &SpillSet) -> Result<(), QueryError> {
        let parts: Vec<Part> =
            std::mem::replace(&mut self.parts, (0..PARTS).map(|_| Part::default()).collect());
        let w = self.shape.width;
        set.write(|writers| {
            let mut n = 0u64;
            let mut buf = Vec::with_capacity(64 * 1024);
            for (wr, part) in writers.iter_mut().zip(&parts) {
                for i in 0..part.accs.len() {
                    let a = &part.accs[i];
                    let mut e = Enc(&mut buf);
                    e.u64(part.present[i]).u64(part.hashes[i]);
                    for k in &part.keys[i * w..(i + 1) * w] {
                        e.u128(*k);
                    }
                    e.u64(a.first)
                        .u64(a.last)
                        .u64(a.packets)
                        .u64(a.bytes)
                        .u64(a.out_packets)
                        .u64(a.out_bytes)
                        .u64(a.flows)
                        .u64(a.ord)
                        .u8(a.tcp_flags)
                        .u8(u8::from(a.has_out))
                        .u8(a.masks[0])
                        .u8(a.masks[1]);
                    n += 1;
                    if buf.len() >= 60 * 1024 {
                        wr.write_all(&buf)?;
                        buf.clear();
                    }
                }
                wr.write_all(&buf)?;
                buf.clear();
            }
            Ok(n)
        })
    }

    /// Finishes a spilled table (this table holds what was not spilled
    /// yet): partition by partition, the best `top` records of every order
    /// that pass `post`.
    pub fn finish_spilled(
        mut self,
        set: &SpillSet,
        orders: &[Order],
        top: Option<usize>,
        post: Option<&Filter>,
        bidir: Option<Bidir>,
    ) -> Result<Vec<Vec<FlowRecord>>, QueryError> {
        self.spill_into(set)?;
        let shape = &self.shape;
        let w = shape.width;
        let size = self.entry_size();
        let mut tops: Vec<TopN<(u128, u64), FlowRecord>> =
            orders.iter().map(|_| TopN::new(top)).collect();
        let mut key = vec![0u128; w];
        let mut rkey = vec![0u128; w];
        set.read(|_, r| {
            let mut part = Part::default();
            read_entries(r, size, |b| {
                let mut d = Dec::new(b);
                let present = d.u64();
                let hash = d.u64();
                for k in key.iter_mut() {
                    *k = d.u128();
                }
                let acc = AggAcc {
                    first: d.u64(),
                    last: d.u64(),
                    packets: d.u64(),
                    bytes: d.u64(),
                    out_packets: d.u64(),
                    out_bytes: d.u64(),
                    flows: d.u64(),
                    ord: d.u64(),
                    tcp_flags: d.u8(),
                    has_out: d.u8() != 0,
                    masks: [d.u8(), d.u8()],
                };
                let rp = shape.reverse(&key, present, &mut rkey);
                Self::add_in(shape, &mut part, hash, &key, &rkey, present, rp, &acc);
            })?;
            for (o, t) in orders.iter().zip(tops.iter_mut()) {
                for (i, a) in part.accs.iter().enumerate() {
                    let k = (rank(*o, acc_order_value(o.key, a)), a.ord);
                    if !t.would_keep(&k) {
                        continue;
                    }
                    let rec = record_of(shape, &part, i, bidir);
                    if post.is_none_or(|p| p.matches(&rec, "")) {
                        t.push(k, rec);
                    }
                }
            }
            Ok(())
        })?;
        Ok(tops.into_iter().map(TopN::into_sorted).collect())
    }

    /// Every aggregated record with its first-seen position (tests).
    #[cfg(test)]
    pub fn into_records(self, bidir: Option<Bidir>) -> Vec<(FlowRecord, u64)> {
        self.entries().map(|e| (self.record(e, bidir), self.acc(e).ord)).collect()
    }
}

/// The order value of an aggregated record (in + out counters).
#[inline]
pub(crate) fn acc_order_value(key: OrderKey, a: &AggAcc) -> u128 {
    counters_value(
        key,
        a.first,
        a.last,
        a.flows,
        a.packets.saturating_add(a.out_packets),
        a.bytes.saturating_add(a.out_bytes),
    )
}

/// The aggregated record of entry `i` of a partition.
fn record_of(shape: &Shape, part: &Part, i: usize, bidir: Option<Bidir>) -> FlowRecord {
    let w = shape.width;
    let a = &part.accs[i];
    let mut r = FlowRecord {
        first: a.first,
        last: a.last,
        packets: a.packets,
        bytes: a.bytes,
        tcp_flags: a.tcp_flags,
        flows: Some(a.flows),
        ..Default::default()
    };
    if a.has_out || bidir.is_some() {
        r.out_packets = Some(a.out_packets);
        r.out_bytes = Some(a.out_bytes);
    }
    for (c, comp) in shape.comps.iter().enumerate() {
        if part.present[i] >> c & 1 == 1 {
            comp.set(&mut r, part.keys[i * w + c]);
            if let Comp::Net { mask, .. } = comp {
                let side = usize::from(*mask != Field::SrcMask);
                comp.set_mask_from(&mut r, Some(u128::from(a.masks[side])));
            }
        }
    }
    if bidir == Some(Bidir::GuessClient)
        && (r.proto == 6 || r.proto == 17)
        && r.src_port < r.dst_port
    {
        swap_sides(&mut r);
    }
    r
}

/// An entry of an [`AggTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub part: u32,
    pub index: u32,
}

/// Swaps source and destination of a bidirectional record, with its
/// counters.
fn swap_sides(r: &mut FlowRecord) {
    std::mem::swap(&mut r.src_addr, &mut r.dst_addr);
    std::mem::swap(&mut r.src_port, &mut r.dst_port);
    std::mem::swap(&mut r.src_as, &mut r.dst_as);
    std::mem::swap(&mut r.src_mask, &mut r.dst_mask);
    let (p, b) = (r.packets, r.bytes);
    r.packets = r.out_packets.unwrap_or(0);
    r.bytes = r.out_bytes.unwrap_or(0);
    r.out_packets = Some(p);
    r.out_bytes = Some(b);
}
