//! Element statistics (`-s srcip`, `-s port:p`, …): compact per-thread hash
//! maps, merged at the end; beyond a memory budget, radix-partitioned
//! partial aggregates spill to temporary files and are finished one
//! partition at a time, keeping only the top N.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use hashbrown::HashTable;
use std::net::{IpAddr, Ipv4Addr};
use weir_filter::Filter;

use weir_record::{Bitmap, Field, FieldType, FlowBatch, FlowRecord, ip_to_u128};

use rayon::prelude::*;

use crate::agg::{PARTS, part_of};
use crate::error::QueryError;
use crate::keys::{Col, mix};
use crate::model::{Counters, Order, StatElement, StatRow, StatTable};
use crate::order::{TopN, counters_value, rank};
use crate::spill::{Dec, Enc, SpillSet, read_entries};

/// "No protocol" in [`StatEntry::proto`].
const NO_PROTO: u16 = 0x100;

/// What a statistic keeps per value: time span and sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sums {
    pub first: u64,
    pub last: u64,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

impl Sums {
    #[inline]
    fn add(&mut self, o: &Sums) {
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.flows = self.flows.saturating_add(o.flows);
        self.packets = self.packets.saturating_add(o.packets);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }
}

/// One value's sums. No heap allocation per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatEntry {
    pub value: u128,
    pub s: Sums,
    pub proto: u16,
}

impl StatEntry {
    #[inline]
    fn hash(&self) -> u64 {
        entry_hash(self.value, self.proto)
    }

    #[inline]
    fn add(&mut self, o: &StatEntry) {
        self.s.add(&o.s);
    }

    const BYTES: usize = 16 + 2 + 5 * 8;

    fn encode(&self, out: &mut Vec<u8>) {
        Enc(out)
            .u128(self.value)
            .u8(self.proto as u8)
            .u8((self.proto >> 8) as u8)
            .u64(self.s.first)
            .u64(self.s.last)
            .u64(self.s.flows)
            .u64(self.s.packets)
            .u64(self.s.bytes);
    }

    fn decode(b: &[u8]) -> StatEntry {
        let mut d = Dec::new(b);
        StatEntry {
            value: d.u128(),
            proto: u16::from(d.u8()) | u16::from(d.u8()) << 8,
            s: Sums {
                first: d.u64(),
                last: d.u64(),
                flows: d.u64(),
                packets: d.u64(),
                bytes: d.u64(),
            },
        }
    }
}

#[inline]
fn entry_hash(value: u128, proto: u16) -> u64 {
    mix(u64::from(proto).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D_4C95_7F2D, value)
}

/// Values below this are kept in [`Narrow`] entries.
const NARROW_LIMIT: u128 = 1 << 48;

/// A [`StatEntry`] of a value below 2^48 (every IPv4 address, port, AS
/// number, interface, MAC address, …): value and protocol share one word,
/// so an entry is 48 bytes instead of 64. A statistic of 421 k IPv4
/// sources keeps 8 MiB less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Narrow {
    /// value | proto << 48.
    key: u64,
    s: Sums,
}

impl Narrow {
    #[inline]
    fn of(e: &StatEntry) -> Narrow {
        Narrow { key: e.value as u64 | u64::from(e.proto) << 48, s: e.s }
    }

    #[inline]
    fn entry(&self) -> StatEntry {
        StatEntry {
            value: u128::from(self.key & ((1 << 48) - 1)),
            proto: (self.key >> 48) as u16,
            s: self.s,
        }
    }

    #[inline]
    fn hash(&self) -> u64 {
        entry_hash(u128::from(self.key & ((1 << 48) - 1)), (self.key >> 48) as u16)
    }

    #[inline]
    fn add(&mut self, o: &Narrow) {
        self.s.add(&o.s);
    }
}

/// One partition: the entries of narrow values and of the others.
#[derive(Default)]
struct Part {
    narrow: HashTable<Narrow>,
    wide: HashTable<StatEntry>,
}

impl Part {
    fn len(&self) -> usize {
        self.narrow.len() + self.wide.len()
    }

    fn is_empty(&self) -> bool {
        self.narrow.is_empty() && self.wide.is_empty()
    }

    fn memory(&self) -> usize {
        self.narrow.capacity() * (std::mem::size_of::<Narrow>() + 1)
            + self.wide.capacity() * (std::mem::size_of::<StatEntry>() + 1)
    }

    /// Every entry, as a [`StatEntry`].
    fn iter(&self) -> impl Iterator<Item = StatEntry> + '_ {
        self.narrow.iter().map(Narrow::entry).chain(self.wide.iter().copied())
    }

    /// Adds every entry of `b`, inserting the smaller table's entries into
    /// the larger one (sums do not depend on the order).
    fn merge(&mut self, b: Part) {
        merge_table(&mut self.narrow, b.narrow, Narrow::hash, add_narrow);
        merge_table(&mut self.wide, b.wide, StatEntry::hash, add_to);
    }
}

fn merge_table<T>(
    a: &mut HashTable<T>,
    mut b: HashTable<T>,
    hash: fn(&T) -> u64,
    add: fn(&mut HashTable<T>, u64, T),
) {
    if b.len() > a.len() {
        std::mem::swap(a, &mut b);
    }
    if b.is_empty() {
        return;
    }
    a.reserve(b.len() / 2, hash);
    for e in b {
        add(a, hash(&e), e);
    }
}

/// value (+ protocol) -> sums, in [`PARTS`] partitions by hash.
pub(crate) struct StatMap {
    parts: Vec<Part>,
}

impl Default for StatMap {
    fn default() -> Self {
        StatMap { parts: (0..PARTS).map(|_| Part::default()).collect() }
    }
}

#[inline]
fn add_to(t: &mut HashTable<StatEntry>, h: u64, e: StatEntry) {
    match t.find_mut(h, |x| x.value == e.value && x.proto == e.proto) {
        Some(x) => x.add(&e),
        None => {
            t.insert_unique(h, e, StatEntry::hash);
        }
    }
}

#[inline]
fn add_narrow(t: &mut HashTable<Narrow>, h: u64, e: Narrow) {
    match t.find_mut(h, |x| x.key == e.key) {
        Some(x) => x.add(&e),
        None => {
            t.insert_unique(h, e, Narrow::hash);
        }
    }
}

impl StatMap {
    #[inline]
    pub fn add(&mut self, e: StatEntry) {
        let h = e.hash();
        let part = &mut self.parts[part_of(h)];
        if e.value < NARROW_LIMIT {
            add_narrow(&mut part.narrow, h, Narrow::of(&e));
        } else {
            add_to(&mut part.wide, h, e);
        }
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(Part::len).sum()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(Part::is_empty)
    }

    /// Approximate heap bytes.
    pub fn memory(&self) -> usize {
        self.parts.iter().map(Part::memory).sum()
    }
}

/// A [`StatMap`] that the workers of a window merge their block maps into
/// as soon as each block is counted, locking one partition at a time. Only
/// one block map per worker is alive, not one per block of the window.
pub(crate) struct SharedStatMap {
    parts: Vec<Mutex<Part>>,
}

impl SharedStatMap {
    pub fn new(map: StatMap) -> SharedStatMap {
        SharedStatMap { parts: map.parts.into_iter().map(Mutex::new).collect() }
    }

    pub fn into_map(self) -> StatMap {
        StatMap {
            parts: self
                .parts
                .into_iter()
                .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
                .collect(),
        }
    }

    /// Moves every entry of `local` in, starting at partition `start` (so
    /// that workers rarely wait for the same lock).
    pub fn merge(&self, local: StatMap, start: usize) {
        if local.is_empty() {
            return;
        }
        let mut parts: Vec<Option<Part>> = local.parts.into_iter().map(Some).collect();
        for k in 0..PARTS {
            let p = (start + k) % PARTS;
            let Some(b) = parts[p].take() else { continue };
            if b.is_empty() {
                continue;
            }
            self.parts[p].lock().unwrap_or_else(PoisonError::into_inner).merge(b);
        }
    }
}

/// The value an absent field counts as: nfdump's records carry zeros for
/// fields an exporter did not send (addresses read as 0.0.0.0).
#[inline]
pub(crate) fn absent_value(f: Field) -> u128 {
    match f.info().ty {
        FieldType::Ip => ip_to_u128(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        _ => 0,
    }
}

/// The statistic of one element over part of the rows.
pub(crate) struct ElemAcc {
    pub map: StatMap,
}

impl ElemAcc {
    pub fn new() -> ElemAcc {
        ElemAcc { map: StatMap::default() }
    }

    /// Counts the rows of `batch` set in `sel`.
    pub fn add_batch(
        &mut self,
        el: &StatElement,
        per_proto: bool,
        batch: &FlowBatch,
        sel: &Bitmap,
    ) {
        let proto = Col::of(batch, Field::Proto);
        let first = Col::of(batch, Field::First);
        let last = Col::of(batch, Field::Last);
        let packets = Col::of(batch, Field::Packets);
        let bytes = Col::of(batch, Field::Bytes);
        let flows = Col::of(batch, Field::Flows);
        for &f in el.fields {
            let col = Col::of(batch, f);
            let absent = absent_value(f);
            for i in sel.iter_ones() {
                let value = col.get(i).unwrap_or(absent);
                let e = StatEntry {
                    value,
                    proto: if per_proto { proto.u64_or(i, 0) as u16 & 0xff } else { NO_PROTO },
                    s: Sums {
                        first: first.u64_or(i, 0),
                        last: last.u64_or(i, 0),
                        flows: flows.get(i).map_or(1, |v| v as u64),
                        packets: packets.u64_or(i, 0),
                        bytes: bytes.u64_or(i, 0),
                    },
                };
                self.map.add(e);
            }
        }
    }
}

/// The reference: the entries a record contributes to an element.
#[cfg(test)]
pub(crate) fn record_values(el: &StatElement, r: &FlowRecord) -> Vec<u128> {
    el.fields.iter().map(|&f| r.get(f).unwrap_or(absent_value(f))).collect()
}

/// Spill files of one element statistic.
pub(crate) struct Spill {
    set: SpillSet,
}

impl Spill {
    pub fn new(dir: Option<PathBuf>) -> Spill {
        Spill { set: SpillSet::new(dir) }
    }

    /// Whether anything was spilled.
    pub fn used(&self) -> bool {
        self.set.used()
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.set.entries()
    }

    /// Writes every entry of `map` to its partition file and empties it.
    pub fn spill(&self, map: &mut StatMap) -> Result<(), QueryError> {
        let parts = std::mem::take(map).parts;
        self.set.write(|writers| {
            let mut n = 0;
            let mut buf = Vec::with_capacity(64 * 1024);
            for (w, part) in writers.iter_mut().zip(parts) {
                for e in part.iter() {
                    e.encode(&mut buf);
                    n += 1;
                    if buf.len() >= 60 * 1024 {
                        w.write_all(&buf)?;
                        buf.clear();
                    }
                }
                w.write_all(&buf)?;
                buf.clear();
            }
            Ok(n)
        })
    }

    /// Finishes a spilled statistic: every partition in turn is read back,
    /// aggregated, and only its best rows per order are kept.
    pub fn finish(
        &self,
        mut rest: StatMap,
        el: &StatElement,
        per_proto: bool,
        orders: &[Order],
        top: Option<usize>,
        post: Option<&Filter>,
    ) -> Result<(Vec<Vec<StatRow>>, u64), QueryError> {
        self.spill(&mut rest)?;
        let mut tops: Vec<TopN<(u128, u128, u16), StatEntry>> =
            orders.iter().map(|_| TopN::new(top)).collect();
        let mut distinct = 0u64;
        self.set.read(|_, r| {
            let mut map = HashTable::new();
            read_entries(r, StatEntry::BYTES, |b| {
                let e = StatEntry::decode(b);
                add_to(&mut map, e.hash(), e);
            })?;
            distinct += map.len() as u64;
            rank_into(map.iter().copied(), el, per_proto, orders, post, &mut tops);
            Ok(())
        })?;
        Ok((
            tops.into_iter().map(|t| t.into_sorted().iter().map(row).collect()).collect(),
            distinct,
        ))
    }
}

/// The record a `-P` filter sees for a statistic row.
fn post_record(el: &StatElement, per_proto: bool, e: &StatEntry) -> FlowRecord {
    let mut r = FlowRecord {
        first: e.s.first,
        last: e.s.last,
        packets: e.s.packets,
        bytes: e.s.bytes,
        flows: Some(e.s.flows),
        ..Default::default()
    };
    if let Some(&f) = el.fields.first() {
        r.set(f, e.value);
    }
    if per_proto {
        r.proto = e.proto as u8;
    }
    r
}

fn rank_into(
    entries: impl Iterator<Item = StatEntry>,
    el: &StatElement,
    per_proto: bool,
    orders: &[Order],
    post: Option<&Filter>,
    tops: &mut [TopN<(u128, u128, u16), StatEntry>],
) {
    for e in entries {
        if let Some(p) = post
            && !p.matches(&post_record(el, per_proto, &e), "")
        {
            continue;
        }
        for (o, t) in orders.iter().zip(tops.iter_mut()) {
            let v = counters_value(o.key, e.s.first, e.s.last, e.s.flows, e.s.packets, e.s.bytes);
            t.push((rank(*o, v), e.value, e.proto), e);
        }
    }
}

fn row(e: &StatEntry) -> StatRow {
    StatRow {
        value: e.value,
        proto: (e.proto != NO_PROTO).then_some(e.proto as u8),
        first_ms: e.s.first,
        last_ms: e.s.last,
        counters: Counters { flows: e.s.flows, packets: e.s.packets, bytes: e.s.bytes },
    }
}

/// The tables of an in-memory statistic, one per order (partitions
/// ranked in parallel on the current pool).
pub(crate) fn finish_in_memory(
    acc: &ElemAcc,
    el: &StatElement,
    per_proto: bool,
    orders: &[Order],
    top: Option<usize>,
    post: Option<&Filter>,
) -> Vec<Vec<StatRow>> {
    type Tops = Vec<TopN<(u128, u128, u16), StatEntry>>;
    let new = || -> Tops { orders.iter().map(|_| TopN::new(top)).collect() };
    let tops = acc
        .map
        .parts
        .par_iter()
        .map(|part| {
            let mut tops = new();
            rank_into(part.iter(), el, per_proto, orders, post, &mut tops);
            tops
        })
        .reduce(new, |mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                x.merge(y);
            }
            a
        });
    tops.into_iter().map(|t| t.into_sorted().iter().map(row).collect()).collect()
}

/// Builds the finished tables.
pub(crate) fn tables(
    el: StatElement,
    per_proto: bool,
    orders: &[Order],
    rows: Vec<Vec<StatRow>>,
    total: Counters,
    distinct: u64,
) -> Vec<StatTable> {
    orders
        .iter()
        .zip(rows)
        .map(|(o, rows)| StatTable { element: el, per_proto, order: *o, rows, total, distinct })
        .collect()
}
