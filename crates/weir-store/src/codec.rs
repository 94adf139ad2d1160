//! Column chunk encodings (FORMAT.md, "Chunk payload").
//!
//! A chunk is encoded in two steps: an integer transform that makes values
//! small (frame of reference, or zigzag deltas for columns that arrive in
//! order), written with the fewest whole bytes per value and byte-shuffled;
//! then zstd, kept only when it wins. Whole bytes rather than bit packing
//! because zstd finds repeats in byte-aligned planes far better than in a
//! bit stream, and the planes of the high bytes are almost constant.

use weir_record::{Bitmap, Column, Values, ZoneMap};

/// Encoding kind: value = base + stored offset.
pub const KIND_FOR: u8 = 0;
/// Encoding kind: value = previous value + unzigzag(stored delta).
pub const KIND_DELTA: u8 = 1;
/// Encoding kind: a dictionary of distinct values (most frequent first)
/// followed by one index per row.
pub const KIND_DICT: u8 = 2;
/// Encoding kind: value = value of the reference column in the same row
/// minus (base + stored offset). Used for `first` (reference `last`: the
/// offset is the duration) and `last` (reference `received`: the export
/// delay).
pub const KIND_REL: u8 = 3;
/// Flag: values are byte-shuffled into planes.
pub const FLAG_SHUFFLE: u8 = 1 << 4;
/// Flag: the payload is a zstd frame.
pub const FLAG_ZSTD: u8 = 1 << 5;
/// Flag: a validity bitmap precedes the values.
pub const FLAG_VALIDITY: u8 = 1 << 6;
/// Flag (DICT only): the indices are packed, 1, 2 or 4 bits each.
pub const FLAG_PACKED: u8 = 1 << 7;
/// The writer's kind for a dictionary with packed indices.
const KIND_PACKED_DICT: u8 = KIND_DICT | FLAG_PACKED;
/// Most values a packed dictionary holds (4-bit indices).
const PACKED_MAX: usize = 16;

/// How one chunk was encoded: the column entry without its location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Encoding byte (kind | flags).
    pub enc: u8,
    /// Bytes per value.
    pub width: u8,
    /// Rows without a value.
    pub null_count: u32,
    /// Bytes before zstd.
    pub raw_len: u32,
    /// FOR reference or first DELTA value.
    pub base: u128,
    /// Column id of the reference column (REL only, else 0).
    pub ref_field: u16,
    /// Zone map.
    pub zone: ZoneMap,
}

#[inline]
fn width_of(x: u128) -> u8 {
    (128 - x.leading_zeros()).div_ceil(8) as u8
}

#[inline]
fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

#[inline]
fn unzigzag(z: u64) -> u64 {
    (z >> 1) ^ (z & 1).wrapping_neg()
}

/// What the previous block of a column was encoded as. The writer keeps
/// one per column, so that the next block encodes straight with the kind
/// that won instead of trying every kind again; all kinds are tried again
/// every [`REVISIT_BLOCKS`] blocks, and whenever the remembered kind turns
/// out not to fit (wider than plain FOR, a dictionary that no longer pays).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeHint {
    kind: Option<u8>,
    since: u32,
    /// Distinct values of the last dictionary (sizes the next one's table).
    dict_len: u32,
    /// Smallest value of the last packed dictionary.
    packed_base: u64,
}

/// Blocks a column is encoded with its remembered kind before every kind
/// is tried again.
pub const REVISIT_BLOCKS: u32 = 16;

/// Encodes a column of `rows` rows into `out` (cleared first) without
/// compression. Returns `None` when no row has a value. `reference` is a
/// column (id, values with no gaps) that REL may encode against.
pub fn encode(
    column: &Column,
    reference: Option<(u16, &[u64])>,
    out: &mut Vec<u8>,
) -> Option<ChunkMeta> {
    encode_hinted(column, reference, &mut EncodeHint::default(), out)
}

/// [`encode`], trying the kind `hint` remembers first and updating it.
pub fn encode_hinted(
    column: &Column,
    reference: Option<(u16, &[u64])>,
    hint: &mut EncodeHint,
    out: &mut Vec<u8>,
) -> Option<ChunkMeta> {
    let guess = hint.kind.filter(|_| hint.since < REVISIT_BLOCKS);
    // A column whose previous block was a packed dictionary: one pass over
    // it finds the values and their bounds around that block's smallest
    // value (no zone-map pass), unless one now lies outside its range.
    let mut packed = None;
    if let (Some(KIND_PACKED_DICT), None, Values::U64(vals)) =
        (guess, &column.validity, &column.values)
    {
        out.clear();
        packed = packed_dict_from(vals, None, hint.packed_base, out).map(|(min, max)| ZoneMap {
            min: u128::from(min),
            max: u128::from(max),
            nulls: 0,
        });
        debug_assert!(packed.is_none() || packed == ZoneMap::of(column));
    }
    let mut enc = 0u8;
    let (zone, chosen) = match packed {
        Some(zone) => (zone, Some((KIND_PACKED_DICT, 1, zone.min, 0))),
        None => {
            let zone = ZoneMap::of(column)?;
            out.clear();
            if let Some(v) = &column.validity {
                enc |= FLAG_VALIDITY;
                write_bitmap(v, out);
            }
            let start = out.len();
            let chosen = guess.and_then(|kind| {
                let r = encode_as(kind, column, reference, &zone, &mut hint.dict_len, out);
                if r.is_none() {
                    out.truncate(start);
                }
                r
            });
            (zone, chosen)
        }
    };
    let (kind, width, base, ref_field) = match chosen {
        Some(r) => {
            hint.since += 1;
            r
        }
        None => {
            let valid = column.validity.as_ref();
            let r = encode_best(column, valid, reference, &zone, &mut hint.dict_len, out);
            hint.kind = Some(r.0);
            hint.since = 1;
            r
        }
    };

    if kind == KIND_PACKED_DICT {
        hint.packed_base = base as u64;
    }
    enc |= kind;
    if width >= 2 && kind != KIND_DICT {
        enc |= FLAG_SHUFFLE;
    }
    Some(ChunkMeta {
        enc,
        width,
        null_count: zone.nulls,
        raw_len: out.len() as u32,
        base,
        ref_field,
        zone,
    })
}

/// Tries every kind and writes the smallest: (kind, width, base, ref_field).
fn encode_best(
    column: &Column,
    valid: Option<&Bitmap>,
    reference: Option<(u16, &[u64])>,
    zone: &ZoneMap,
    dict_len: &mut u32,
    out: &mut Vec<u8>,
) -> (u8, u8, u128, u16) {
    let rows = column.len();
    let for_width = width_of(zone.max - zone.min);
    if let Values::U64(vals) = &column.values
        && let Some(r) = try_packed_dict(vals, valid, zone, out)
    {
        return r;
    }
    let dict = match &column.values {
        Values::U64(vals) => try_dict(vals, valid, zone, for_width, dict_len, out),
        Values::U128(vals) => try_dict(vals, valid, zone, for_width, dict_len, out),
    };
    match (&column.values, dict) {
        (_, Some(w)) => (KIND_DICT, w, zone.min, 0),
        (Values::U64(vals), None) => {
            let (kind, width, base) = encode_u64(vals, valid, zone, reference.map(|r| r.1), out);
            let ref_field = if kind == KIND_REL { reference.map_or(0, |r| r.0) } else { 0 };
            (kind, width, base, ref_field)
        }
        (Values::U128(vals), None) => {
            let base = zone.min;
            write_planes::<u128>(rows, for_width, out, |i| match valid {
                Some(b) if !b.get(i) => 0,
                _ => vals[i] - base,
            });
            (KIND_FOR, for_width, base, 0)
        }
    }
}

/// Encodes with `kind` if it fits the column: `None` (with `out` possibly
/// partly written) if it does not or would be wider than plain FOR.
fn encode_as(
    kind: u8,
    column: &Column,
    reference: Option<(u16, &[u64])>,
    zone: &ZoneMap,
    dict_len: &mut u32,
    out: &mut Vec<u8>,
) -> Option<(u8, u8, u128, u16)> {
    let rows = column.len();
    let valid = column.validity.as_ref();
    let is_valid = |i: usize| valid.is_none_or(|b| b.get(i));
    let for_width = width_of(zone.max - zone.min);
    match (kind, &column.values) {
        (KIND_PACKED_DICT, Values::U64(vals)) => try_packed_dict(vals, valid, zone, out),
        (KIND_DICT, Values::U64(vals)) => try_dict(vals, valid, zone, for_width, dict_len, out)
            .map(|w| (KIND_DICT, w, zone.min, 0)),
        (KIND_DICT, Values::U128(vals)) => try_dict(vals, valid, zone, for_width, dict_len, out)
            .map(|w| (KIND_DICT, w, zone.min, 0)),
        (KIND_FOR, Values::U64(vals)) => {
            let min = zone.min as u64;
            match valid {
                None => write_planes::<u64>(rows, for_width, out, |i| vals[i] - min),
                Some(_) => write_planes::<u64>(rows, for_width, out, |i| {
                    if is_valid(i) { vals[i] - min } else { 0 }
                }),
            }
            Some((KIND_FOR, for_width, zone.min, 0))
        }
        (KIND_FOR, Values::U128(vals)) => {
            let base = zone.min;
            write_planes::<u128>(rows, for_width, out, |i| {
                if is_valid(i) { vals[i] - base } else { 0 }
            });
            Some((KIND_FOR, for_width, base, 0))
        }
        (KIND_DELTA, Values::U64(vals)) => {
            let first = match valid {
                Some(b) => b.iter_ones().next().map_or(zone.min as u64, |i| vals[i]),
                None => vals.first().copied().unwrap_or(0),
            };
            SCRATCH.with(|cell| {
                let deltas = &mut cell.borrow_mut().u64s;
                deltas.clear();
                let mut prev = first;
                let mut max_z = 0u64;
                match valid {
                    None => deltas.extend(vals.iter().map(|&v| {
                        let z = zigzag(v.wrapping_sub(prev) as i64);
                        prev = v;
                        max_z = max_z.max(z);
                        z
                    })),
                    Some(_) => deltas.extend(vals.iter().enumerate().map(|(i, &v)| {
                        if !is_valid(i) {
                            return 0;
                        }
                        let z = zigzag(v.wrapping_sub(prev) as i64);
                        prev = v;
                        max_z = max_z.max(z);
                        z
                    })),
                }
                let w = width_of(max_z as u128);
                if w > for_width {
                    return None;
                }
                write_planes::<u64>(rows, w, out, |i| deltas[i]);
                Some((KIND_DELTA, w, first as u128, 0))
            })
        }
        (KIND_REL, Values::U64(vals)) => {
            let (id, r) = reference.filter(|r| r.1.len() == rows)?;
            let (mut lo, mut hi) = (u64::MAX, 0u64);
            for (i, (&v, &x)) in vals.iter().zip(r).enumerate() {
                if is_valid(i) {
                    let d = x.wrapping_sub(v);
                    lo = lo.min(d);
                    hi = hi.max(d);
                }
            }
            if lo > u64::MAX / 2 {
                return None;
            }
            let w = width_of(hi.wrapping_sub(lo) as u128);
            if w > for_width {
                return None;
            }
            write_planes::<u64>(rows, w, out, |i| {
                if is_valid(i) { r[i].wrapping_sub(vals[i]) - lo } else { 0 }
            });
            Some((KIND_REL, w, lo as u128, id))
        }
        _ => None,
    }
}

/// Bits needed for `x` (0 for 0): summed over a chunk it estimates what
/// zstd's entropy coder will make of the encoded planes, far better than the
/// byte width alone (a duration column and a timestamp column can have the
/// same width, but the durations are mostly tiny).
#[inline]
fn bits(x: u64) -> u64 {
    u64::from(64 - x.leading_zeros())
}

fn encode_u64(
    vals: &[u64],
    valid: Option<&Bitmap>,
    zone: &ZoneMap,
    reference: Option<&[u64]>,
    out: &mut Vec<u8>,
) -> (u8, u8, u128) {
    let for_width = width_of(zone.max - zone.min);
    let min = zone.min as u64;
    let is_valid = |i: usize| valid.is_none_or(|b| b.get(i));
    // Deltas between consecutive present values; gaps repeat the previous one.
    let first = match valid {
        Some(b) => b.iter_ones().next().map_or(min, |i| vals[i]),
        None => vals.first().copied().unwrap_or(0),
    };
    let (mut prev, mut max_z, mut delta_cost, mut for_cost) = (first, 0u64, 0u64, 0u64);
    for (i, &v) in vals.iter().enumerate() {
        if is_valid(i) {
            let z = zigzag(v.wrapping_sub(prev) as i64);
            max_z = max_z.max(z);
            delta_cost += bits(z);
            for_cost += bits(v - min);
            prev = v;
        }
    }
    let delta_width = width_of(max_z as u128);
    // Offsets below the reference column (e.g. durations).
    let rel = reference.filter(|r| r.len() == vals.len()).and_then(|r| {
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for (i, (&v, &x)) in vals.iter().zip(r).enumerate() {
            if is_valid(i) {
                let d = x.wrapping_sub(v);
                lo = lo.min(d);
                hi = hi.max(d);
            }
        }
        if lo > u64::MAX / 2 {
            return None; // the column is not below its reference
        }
        let cost: u64 = vals
            .iter()
            .zip(r)
            .enumerate()
            .filter(|(i, _)| is_valid(*i))
            .map(|(_, (&v, &x))| bits(x.wrapping_sub(v) - lo))
            .sum();
        Some((r, lo, width_of(hi.wrapping_sub(lo) as u128), cost))
    });
    let best_plain = for_cost.min(delta_cost);
    if let Some((r, lo, w, _)) = rel.filter(|&(_, _, w, c)| c < best_plain && w <= for_width) {
        write_planes::<u64>(vals.len(), w, out, |i| {
            if is_valid(i) { r[i].wrapping_sub(vals[i]) - lo } else { 0 }
        });
        return (KIND_REL, w, lo as u128);
    }
    // One-byte columns gain nothing from deltas (measured: proto, vlan).
    if delta_width < for_width
        || (delta_width == for_width && for_width >= 2 && delta_cost < for_cost)
    {
        SCRATCH.with(|cell| {
            let deltas = &mut cell.borrow_mut().u64s;
            deltas.clear();
            let mut prev = first;
            deltas.extend(vals.iter().enumerate().map(|(i, &v)| {
                if !is_valid(i) {
                    return 0;
                }
                let z = zigzag(v.wrapping_sub(prev) as i64);
                prev = v;
                z
            }));
            write_planes::<u64>(vals.len(), delta_width, out, |i| deltas[i]);
        });
        (KIND_DELTA, delta_width, first as u128)
    } else {
        match valid {
            None => write_planes::<u64>(vals.len(), for_width, out, |i| vals[i] - min),
            Some(_) => write_planes::<u64>(vals.len(), for_width, out, |i| {
                if is_valid(i) { vals[i] - min } else { 0 }
            }),
        }
        (KIND_FOR, for_width, min as u128)
    }
}

/// Rows sampled to decide whether a dictionary can pay off.
const DICT_SAMPLE_ROWS: usize = 1024;
/// A dictionary is tried only if the sample has at most this many distinct
/// values: with more (timestamps, byte counters) it cannot beat FOR.
const DICT_SAMPLE_MAX_DISTINCT: usize = 768;

/// Values a dictionary can hold.
trait DictValue: Copy + Eq + Ord + Into<u128> + Default {
    /// Whether this is the 128-bit (address) type.
    const WIDE: bool;
    fn hash(self) -> u64;
    /// This type's reusable dictionary in the scratch space.
    fn dict(s: &mut Scratch) -> (&mut DictBuilder<Self>, &mut Vec<u32>, &mut Vec<u128>);
}

/// The integer key types: a multiplicative hash, and their own builder.
macro_rules! narrow_dict_value {
    ($($t:ty => $field:ident),*) => {$(
        impl DictValue for $t {
            const WIDE: bool = false;
            fn dict(s: &mut Scratch) -> (&mut DictBuilder<$t>, &mut Vec<u32>, &mut Vec<u128>) {
                (&mut s.$field, &mut s.idx, &mut s.gaps)
            }
            #[inline]
            fn hash(self) -> u64 {
                u64::from(self).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            }
        }
    )*};
}
narrow_dict_value!(u32 => dict32, u64 => dict64);

impl DictValue for u128 {
    const WIDE: bool = true;
    fn dict(s: &mut Scratch) -> (&mut DictBuilder<u128>, &mut Vec<u32>, &mut Vec<u128>) {
        (&mut s.dict128, &mut s.idx, &mut s.gaps)
    }
    #[inline]
    fn hash(self) -> u64 {
        ((self as u64) ^ ((self >> 64) as u64).rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// Open-addressing map from value to dictionary slot. Kept per thread and
/// reused, so that encoding a block allocates nothing. The table starts
/// small and doubles when half full, so a column with few distinct values
/// never clears a table sized for the worst case.
#[derive(Default)]
struct DictBuilder<T> {
    /// (value, slot) entries; slot [`EMPTY`] marks a free entry. Value and
    /// slot side by side: one cache line per probe.
    table: Vec<(T, u32)>,
    mask: usize,
    values: Vec<T>,
    /// Values within 2^32 of the smallest, as `offset << 32 | slot`, and
    /// the other (value, slot) pairs, both sorted; rank by slot.
    keys64: Vec<u64>,
    /// Scratch of the radix sort of `keys64`.
    keys_tmp: Vec<u64>,
    sorted: Vec<(T, u32)>,
    rank: Vec<u32>,
}

const EMPTY: u32 = u32::MAX;

/// Smallest table: with few distinct values (next hops, AS numbers) a
/// sparse table means nearly every probe ends at the first entry, and the
/// probe loop's branches are predictable (measured: next hop column 4.8 →
/// 3.1 ns per row against 64 entries).
const MIN_TABLE: usize = 1024;

impl<T: DictValue + Default> DictBuilder<T> {
    /// Empties the map, sized for about `n` values (it grows if needed).
    fn reset(&mut self, n: usize) {
        self.values.clear();
        self.resize_table((n * 2).next_power_of_two().max(MIN_TABLE));
    }

    fn resize_table(&mut self, size: usize) {
        self.table.clear();
        self.table.resize(size, (T::default(), EMPTY));
        self.mask = size - 1;
    }

    /// Doubles the table and re-inserts every value.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        self.resize_table((self.mask + 1) * 2);
        for (slot, &v) in self.values.iter().enumerate() {
            let mut i = (v.hash() >> 32) as usize & self.mask;
            while self.table[i].1 != EMPTY {
                i = (i + 1) & self.mask;
            }
            self.table[i] = (v, slot as u32);
        }
    }

    /// Slot of `v`, inserting it if new; `None` once `limit` values exist.
    #[inline(always)]
    fn insert(&mut self, v: T, limit: usize) -> Option<u32> {
        self.insert_hashed(v, (v.hash() >> 32) as usize, limit)
    }

    /// [`DictBuilder::insert`] of `v` whose hash (high half) is `h`.
    #[inline(always)]
    fn insert_hashed(&mut self, v: T, h: usize, limit: usize) -> Option<u32> {
        let mut i = h & self.mask;
        loop {
            let (key, slot) = self.table[i];
            if slot == EMPTY {
                if self.values.len() >= limit {
                    return None;
                }
                let slot = self.values.len() as u32;
                self.table[i] = (v, slot);
                self.values.push(v);
                if self.values.len() * 2 > self.mask {
                    self.grow();
                }
                return Some(slot);
            }
            if key == v {
                return Some(slot);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Sorts the values: fills `sorted` (ascending) and `rank` (slot ->
    /// position in `sorted`). `min` is the smallest value: those below
    /// `min + 2^32` (all IPv4 hosts of an address column, most integer
    /// columns) are sorted as packed `u64` keys, which is much faster, and
    /// come before every other value.
    fn sort(&mut self, min: u128) {
        self.sorted.clear();
        self.keys64.clear();
        let mut span = 0u64;
        for (slot, &v) in self.values.iter().enumerate() {
            let off = v.into().wrapping_sub(min);
            if off >> 32 == 0 {
                span |= off as u64;
                self.keys64.push((off as u64) << 32 | slot as u64);
            } else {
                self.sorted.push((v, slot as u32));
            }
        }
        // Offsets are distinct: sorting by them alone is a total order.
        if self.keys64.len() >= RADIX_MIN {
            radix_sort_high(&mut self.keys64, &mut self.keys_tmp, 64 - span.leading_zeros());
        } else {
            self.keys64.sort_unstable();
        }
        // Values are distinct: comparing them alone is a total order.
        self.sorted.sort_unstable_by_key(|p| p.0);
        let narrow = self.keys64.len();
        self.rank.clear();
        self.rank.resize(self.values.len(), 0);
        for (r, &k) in self.keys64.iter().enumerate() {
            self.rank[(k & 0xffff_ffff) as usize] = r as u32;
        }
        for (r, &(_, slot)) in self.sorted.iter().enumerate() {
            self.rank[slot as usize] = (narrow + r) as u32;
        }
    }

    /// The `i`-th smallest value (after [`DictBuilder::sort`]).
    #[inline]
    fn nth(&self, i: usize, min: u128) -> u128 {
        match self.keys64.get(i) {
            Some(&k) => min + u128::from(k >> 32),
            None => self.sorted.get(i - self.keys64.len()).map_or(0, |p| p.0.into()),
        }
    }
}

/// Dictionary tables of at least this many entries (256 KiB of 128-bit
/// entries) are read ahead while inserting.
const BIG_TABLE: usize = 1 << 13;

/// Rows ahead whose table entry is read while inserting into a big table.
const AHEAD: usize = 32;

/// Below this many keys a comparison sort is as quick as the radix sort.
const RADIX_MIN: usize = 512;

/// Bits per radix digit (a 16 KiB count table, in L1).
const RADIX_BITS: u32 = 11;

/// Sorts `keys` by their high 32 bits, of which the low `bits` vary (LSD
/// radix sort, stable, `bits / 11` rounded up passes); the low 32 bits
/// ride along.
fn radix_sort_high(keys: &mut Vec<u64>, tmp: &mut Vec<u64>, bits: u32) {
    const MASK: u64 = (1 << RADIX_BITS) - 1;
    tmp.clear();
    tmp.resize(keys.len(), 0);
    let mut counts = [0usize; 1 << RADIX_BITS];
    for pass in 0..bits.min(32).div_ceil(RADIX_BITS) {
        let shift = 32 + pass * RADIX_BITS;
        counts.fill(0);
        for &k in keys.iter() {
            counts[((k >> shift) & MASK) as usize] += 1;
        }
        let mut at = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = at;
            at += n;
        }
        for &k in keys.iter() {
            let d = ((k >> shift) & MASK) as usize;
            tmp[counts[d]] = k;
            counts[d] += 1;
        }
        std::mem::swap(keys, tmp);
    }
}

/// Index bits per row of a packed dictionary of `n` values.
fn packed_bits(n: usize) -> usize {
    match n {
        0..=2 => 1,
        3..=4 => 2,
        _ => 4,
    }
}

/// A dictionary with packed indices, for integer columns of one-byte
/// range with at most [`PACKED_MAX`] distinct values (protocol, ToS, masks,
/// TCP flags): a fourth to half of FOR's bytes, and zstd's time with them,
/// with no hashing (a 256-entry table). Writes it and returns the kind, or
/// returns `None` (leaving `out` untouched) when the column does not fit.
fn try_packed_dict(
    vals: &[u64],
    valid: Option<&Bitmap>,
    zone: &ZoneMap,
    out: &mut Vec<u8>,
) -> Option<(u8, u8, u128, u16)> {
    if zone.max - zone.min > 255 || zone.max == zone.min {
        return None;
    }
    packed_dict_from(vals, valid, zone.min as u64, out)?;
    Some((KIND_PACKED_DICT, 1, zone.min, 0))
}

/// The packed dictionary of `vals` if every valid value lies within
/// `base..=base + 255` (found in the same pass), the column has two to
/// [`PACKED_MAX`] distinct values and at least 64 rows: writes it and
/// returns the smallest and the largest value. `None` leaves `out`
/// untouched. The bytes do not depend on `base`: the entries start from
/// the smallest value.
fn packed_dict_from(
    vals: &[u64],
    valid: Option<&Bitmap>,
    base: u64,
    out: &mut Vec<u8>,
) -> Option<(u64, u64)> {
    let rows = vals.len();
    if rows < 64 {
        return None;
    }
    let is_valid = |i: usize| valid.is_none_or(|b| b.get(i));
    // Offsets from `base`, one byte each; a table of those present, and
    // the bits of every offset above the low byte (0: all in range).
    let mut seen = [0u8; 256];
    let mut above = 0u64;
    let mut see = |v: u64| {
        let off = v.wrapping_sub(base);
        above |= off >> 8;
        seen[off as usize & 255] = 1;
    };
    match valid {
        None => vals.iter().for_each(|&v| see(v)),
        Some(_) => vals.iter().enumerate().filter(|&(i, _)| is_valid(i)).for_each(|(_, &v)| see(v)),
    }
    if above != 0 {
        return None;
    }
    let first = seen.iter().position(|&x| x != 0)?;
    let last = 255 - seen.iter().rev().position(|&x| x != 0)?;
    let n = seen.iter().filter(|&&x| x != 0).count();
    // Offsets are taken modulo 2^64: values that wrapped past `u64::MAX`
    // from a `base` near it look in range; the true range then does not
    // fit in `base..=u64::MAX`.
    if n > PACKED_MAX || first == last || base.checked_add(last as u64).is_none() {
        return None;
    }
    // Rank of each offset (ascending), and the entries as differences
    // from the smallest value on.
    let mut rank = [0u8; 256];
    out.extend_from_slice(&(n as u32).to_le_bytes());
    let (mut r, mut prev) = (0u8, first);
    for (off, _) in seen.iter().enumerate().filter(|&(_, &x)| x != 0) {
        rank[off] = r;
        out.push((off - prev) as u8);
        prev = off;
        r += 1;
    }
    let start = out.len();
    let bits = packed_bits(n);
    out.resize(start + rows.div_ceil(8 / bits), 0);
    let dst = &mut out[start..];
    let rank = |v: u64| rank[v.wrapping_sub(base) as usize & 255];
    match (bits, valid) {
        (1, None) => pack_slice::<1, 8>(vals, rank, dst),
        (2, None) => pack_slice::<2, 4>(vals, rank, dst),
        (_, None) => pack_slice::<4, 2>(vals, rank, dst),
        (_, Some(_)) => {
            let idx = (0..rows).map(|i| if is_valid(i) { rank(vals[i]) } else { 0 });
            match bits {
                1 => pack::<1>(idx, dst),
                2 => pack::<2>(idx, dst),
                _ => pack::<4>(idx, dst),
            }
        }
    }
    Some((base + first as u64, base + last as u64))
}

/// [`pack`] of the indices `rank(v)` of `vals`, `PER` (`8 / BITS`) to a
/// byte: a fixed inner loop per byte, the last byte's missing indices 0.
#[inline]
fn pack_slice<const BITS: usize, const PER: usize>(
    vals: &[u64],
    rank: impl Fn(u64) -> u8,
    dst: &mut [u8],
) {
    debug_assert_eq!(BITS * PER, 8);
    let byte =
        |group: &[u64]| group.iter().enumerate().fold(0u8, |b, (j, &v)| b | rank(v) << (j * BITS));
    let mut groups = vals.chunks_exact(PER);
    let mut out = dst.iter_mut();
    // Groups first: `zip` takes no byte once the groups run out.
    for (g, d) in (&mut groups).zip(out.by_ref()) {
        *d = byte(g);
    }
    if let Some(d) = out.next() {
        *d = byte(groups.remainder());
    }
}

/// Packs indices of `BITS` bits into `dst`, the first in the low bits of
/// each byte.
#[inline]
fn pack<const BITS: usize>(mut idx: impl Iterator<Item = u8>, dst: &mut [u8]) {
    for d in dst.iter_mut() {
        let mut byte = 0u8;
        for j in 0..8 / BITS {
            byte |= idx.next().unwrap_or(0) << (j * BITS);
        }
        *d = byte;
    }
}

/// Per-thread scratch memory of the encoder.
#[derive(Default)]
struct Scratch {
    u64s: Vec<u64>,
    gaps: Vec<u128>,
    idx: Vec<u32>,
    dict32: DictBuilder<u32>,
    dict64: DictBuilder<u64>,
    dict128: DictBuilder<u128>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Writes a dictionary encoding into `out` if it is smaller than FOR and
/// returns the value width; leaves `out` untouched otherwise.
/// `dict_len`: distinct values of the column's previous dictionary (0:
/// unknown), set to this one's.
fn try_dict<T: DictValue>(
    vals: &[T],
    valid: Option<&Bitmap>,
    zone: &ZoneMap,
    for_width: u8,
    dict_len: &mut u32,
    out: &mut Vec<u8>,
) -> Option<u8> {
    let rows = vals.len();
    if for_width == 0 || rows < 64 {
        return None;
    }
    // Integer columns are dictionary-coded only when the index fits one
    // byte and the values are wide (AS numbers, domains): for counters and
    // ports, FOR + zstd does better than any dictionary (measured on gen data).
    let max_distinct = if T::WIDE {
        usize::MAX
    } else if for_width >= 2 {
        256
    } else {
        return None;
    };
    // Cheap look at a sample first.
    let sample = rows.min(DICT_SAMPLE_ROWS);
    let lim = Limits { for_width, max_distinct, sample };
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        if zone.max - zone.min <= u128::from(u32::MAX) {
            // Values within 2^32 of the smallest (IPv4 hosts, AS numbers):
            // the table holds their 32-bit offsets (8-byte entries).
            let min = zone.min;
            let (d, idx, gaps) = u32::dict(&mut scratch);
            let key = |v: T| (v.into() - min) as u32;
            dict_with(vals, key, valid, 0, lim, d, idx, gaps, dict_len, out)
        } else {
            let (d, idx, gaps) = T::dict(&mut scratch);
            dict_with(vals, |v| v, valid, zone.min, lim, d, idx, gaps, dict_len, out)
        }
    })
}

/// What bounds a dictionary: the FOR width it must beat, the most
/// distinct values it may hold, the rows of the sample looked at first.
#[derive(Clone, Copy)]
struct Limits {
    for_width: u8,
    max_distinct: usize,
    sample: usize,
}

/// Builds the dictionary of `vals` through their table keys `key` (the
/// values, or their offsets from the smallest), and writes it if it pays.
/// `sort_min` is the smallest key's lower bound for [`DictBuilder::sort`]
/// (the zone's minimum for values, 0 for offsets): the stored differences
/// start from it, so both kinds of key write the same bytes.
#[allow(clippy::too_many_arguments)]
fn dict_with<T: Copy, K: DictValue>(
    vals: &[T],
    key: impl Fn(T) -> K,
    valid: Option<&Bitmap>,
    sort_min: u128,
    lim: Limits,
    d: &mut DictBuilder<K>,
    idx: &mut Vec<u32>,
    gaps: &mut Vec<u128>,
    dict_len: &mut u32,
    out: &mut Vec<u8>,
) -> Option<u8> {
    let rows = vals.len();
    let for_width = lim.for_width;
    let is_valid = |i: usize| valid.is_none_or(|b| b.get(i));
    d.reset(DICT_SAMPLE_MAX_DISTINCT);
    for (i, &v) in vals.iter().enumerate().take(lim.sample) {
        if is_valid(i) && d.insert(key(v), DICT_SAMPLE_MAX_DISTINCT).is_none() {
            return None;
        }
    }
    let in_sample = d.values.len();
    // Full pass; give up when the dictionary alone would outweigh FOR.
    let for_cost = rows * for_width as usize;
    let limit = (for_cost / (for_width as usize + 1)).min(lim.max_distinct).min(u32::MAX as usize);
    // Size the table for the previous block's dictionary, else for a
    // few times what the sample saw; it grows if needed.
    let expect = match *dict_len as usize {
        0 => in_sample * 4,
        n => n + n / 4,
    };
    d.reset(expect.clamp(16, limit.min(rows)));
    idx.clear();
    idx.resize(rows, 0);
    match valid {
        None if d.mask + 1 >= BIG_TABLE => {
            // A table beyond L1 (address columns: thousands of hosts):
            // read the entry of the value 32 rows ahead, so that its cache
            // line is on the way before a mispredicted probe (new value or
            // not: the predictor loses that coin toss) discards the work
            // done past it. Measured 12.0 → 11.3 ns/row per address column.
            // Each value's hash is kept from its read ahead to its insert.
            let hash = |v: T| (key(v).hash() >> 32) as usize;
            let mut ring = [0usize; AHEAD];
            for (r, &v) in ring.iter_mut().zip(vals) {
                *r = hash(v);
            }
            let mut touched = 0u32;
            for (i, (x, &v)) in idx.iter_mut().zip(vals).enumerate() {
                let h = ring[i % AHEAD];
                if let Some(&w) = vals.get(i + AHEAD) {
                    let hw = hash(w);
                    touched ^= d.table[hw & d.mask].1;
                    ring[i % AHEAD] = hw;
                }
                *x = d.insert_hashed(key(v), h, limit)?;
            }
            std::hint::black_box(touched);
        }
        None => {
            for (x, &v) in idx.iter_mut().zip(vals) {
                *x = d.insert(key(v), limit)?;
            }
        }
        Some(_) => {
            for (i, &v) in vals.iter().enumerate() {
                if is_valid(i) {
                    idx[i] = d.insert(key(v), limit)?;
                }
            }
        }
    }
    let n = d.values.len();
    let index_width = width_of((n - 1) as u128) as usize;
    let cost = n * for_width as usize + rows * index_width;
    if cost >= for_cost {
        return None;
    }
    *dict_len = n as u32;
    d.sort(sort_min);
    let rank = &d.rank;
    let d = &*d;
    let nth = |i: usize| d.nth(i, sort_min);
    Some(match valid {
        None => {
            write_dict(n, sort_min, nth, rows, index_width, |i| rank[idx[i] as usize], gaps, out)
        }
        Some(_) => write_dict(
            n,
            sort_min,
            nth,
            rows,
            index_width,
            |i| {
                if is_valid(i) { rank[idx[i] as usize] } else { 0 }
            },
            gaps,
            out,
        ),
    })
}

/// Writes a dictionary of `n` distinct values, `nth(i)` the `i`-th
/// smallest (`from` or more), then the rank of each of `rows` rows in
/// `index_width` bytes; returns the width of the values' differences.
#[allow(clippy::too_many_arguments)]
fn write_dict(
    n: usize,
    from: u128,
    nth: impl Fn(usize) -> u128,
    rows: usize,
    index_width: usize,
    rank_of: impl Fn(usize) -> u32,
    gaps: &mut Vec<u128>,
    out: &mut Vec<u8>,
) -> u8 {
    // Ascending values, each stored as its difference to the previous one:
    // hosts of a few prefixes give small differences.
    gaps.clear();
    let mut prev = from;
    gaps.extend((0..n).map(|i| {
        let v = nth(i);
        let g = v - prev;
        prev = v;
        g
    }));
    let gap_width = width_of(gaps.iter().copied().max().unwrap_or(0));
    out.extend_from_slice(&(n as u32).to_le_bytes());
    write_planes::<u128>(n, gap_width, out, |j| gaps[j]);
    write_planes::<u64>(rows, index_width as u8, out, |i| u64::from(rank_of(i)));
    gap_width
}

fn write_bitmap(b: &Bitmap, out: &mut Vec<u8>) {
    let nbytes = b.len().div_ceil(8);
    let start = out.len();
    for w in b.words() {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.truncate(start + nbytes);
}

/// The integer types whose bytes are spread over planes.
trait Word: Copy {
    fn from_byte(b: u8) -> Self;
    fn or_byte(self, b: u8, shift: u32) -> Self;
    fn byte(self, shift: u32) -> u8;
    /// The little-endian bytes, into the start of `out`.
    fn le_bytes(self, out: &mut [u8; 16]);
    /// Whether this is the 128-bit type.
    const WIDE: bool;
}

macro_rules! impl_word {
    ($($t:ty),*) => {$(
        impl Word for $t {
            const WIDE: bool = std::mem::size_of::<$t>() == 16;
            #[inline]
            fn from_byte(b: u8) -> $t {
                b as $t
            }
            #[inline]
            fn or_byte(self, b: u8, shift: u32) -> $t {
                self | (b as $t) << shift
            }
            #[inline]
            fn byte(self, shift: u32) -> u8 {
                (self >> shift) as u8
            }
            #[inline]
            fn le_bytes(self, out: &mut [u8; 16]) {
                let b = self.to_le_bytes();
                out[..b.len()].copy_from_slice(&b);
            }
        }
    )*};
}
impl_word!(u64, u128);

/// Writes `rows` values of `width` bytes: byte-shuffled when `width >= 2`.
/// One pass for widths 1 and 2, plane by plane for wider values (in runs
/// of 64 for 128-bit values).
#[inline]
fn write_planes<T: Word>(rows: usize, width: u8, out: &mut Vec<u8>, value: impl Fn(usize) -> T) {
    let w = width as usize;
    let start = out.len();
    out.resize(start + rows * w, 0);
    let dst = &mut out[start..];
    match w {
        0 => {}
        1 => {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = value(i).byte(0);
            }
        }
        2 => {
            let (p0, p1) = dst.split_at_mut(rows);
            for (i, (a, b)) in p0.iter_mut().zip(p1.iter_mut()).enumerate() {
                let v = value(i);
                *a = v.byte(0);
                *b = v.byte(8);
            }
        }
        _ if !T::WIDE => {
            for (j, plane) in dst.chunks_exact_mut(rows.max(1)).enumerate().take(w) {
                let shift = 8 * j as u32;
                for (i, d) in plane.iter_mut().enumerate() {
                    *d = value(i).byte(shift);
                }
            }
        }
        _ => {
            // Shifts of 128-bit values are slow: their bytes instead, 64
            // values at a time into a buffer in L1, then each plane takes
            // its byte of the 64.
            const RUN: usize = 64;
            let mut buf = [[0u8; 16]; RUN];
            let mut at = 0;
            while at < rows {
                let n = RUN.min(rows - at);
                for (k, b) in buf[..n].iter_mut().enumerate() {
                    value(at + k).le_bytes(b);
                }
                for (j, plane) in dst.chunks_exact_mut(rows).enumerate().take(w) {
                    for (d, b) in plane[at..at + n].iter_mut().zip(&buf[..n]) {
                        *d = b[j];
                    }
                }
                at += n;
            }
        }
    }
}

/// Why a chunk payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// Decodes a raw (decompressed) payload of `rows` rows.
pub fn decode(
    raw: &[u8],
    rows: usize,
    phys_u128: bool,
    enc: u8,
    width: u8,
    base: u128,
    reference: Option<&[u64]>,
) -> Result<Column, DecodeError> {
    let kind = enc & 0x0f;
    if kind > KIND_REL || (matches!(kind, KIND_DELTA | KIND_REL) && phys_u128) {
        return Err(DecodeError(format!("unknown encoding kind {kind}")));
    }
    let max_width = if phys_u128 { 16 } else { 8 };
    if width > max_width {
        return Err(DecodeError(format!("width {width} exceeds {max_width}")));
    }
    let shuffled = enc & FLAG_SHUFFLE != 0;
    if shuffled != (width >= 2 && kind != KIND_DICT) {
        return Err(DecodeError(format!("shuffle flag {shuffled} does not fit width {width}")));
    }
    let bitmap_len = if enc & FLAG_VALIDITY != 0 { rows.div_ceil(8) } else { 0 };
    let packed = enc & FLAG_PACKED != 0;
    if packed && (kind != KIND_DICT || phys_u128 || width != 1) {
        return Err(DecodeError(format!(
            "packed indices on a chunk of kind {kind}, width {width} (only one-byte integer dictionaries)"
        )));
    }
    if kind == KIND_DICT {
        if raw.len() < bitmap_len {
            return Err(DecodeError(format!("payload of {} bytes lacks its bitmap", raw.len())));
        }
        let validity = (bitmap_len > 0).then(|| read_bitmap(&raw[..bitmap_len], rows));
        let buf = &raw[bitmap_len..];
        let values = if packed {
            decode_packed_dict(buf, rows, base as u64)?
        } else {
            decode_dict(buf, rows, phys_u128, width as usize, base)?
        };
        return Ok(Column { values, validity });
    }
    let expect = bitmap_len + rows * width as usize;
    if raw.len() != expect {
        return Err(DecodeError(format!(
            "payload is {} bytes, {rows} rows of width {width} need {expect}",
            raw.len()
        )));
    }
    let validity = (bitmap_len > 0).then(|| read_bitmap(&raw[..bitmap_len], rows));
    let planes = &raw[bitmap_len..];
    let w = width as usize;
    let values = if phys_u128 {
        let mut v = crate::spare::empty::<u128>(rows);
        if w <= 8 {
            gather(planes, rows, w, &mut v, move |x| base.wrapping_add(u128::from(x)));
        } else {
            gather_u128(planes, rows, w, &mut v, base);
        }
        Values::U128(v)
    } else {
        let mut v = crate::spare::empty::<u64>(rows);
        let base = base as u64;
        if kind == KIND_REL {
            let r = reference.filter(|r| r.len() == rows).ok_or_else(|| {
                DecodeError("relative encoding without its reference column".into())
            })?;
            gather(planes, rows, w, &mut v, move |x| x.wrapping_add(base));
            for (x, &y) in v.iter_mut().zip(r) {
                *x = y.wrapping_sub(*x);
            }
        } else if kind == KIND_DELTA {
            let mut prev = base;
            gather(planes, rows, w, &mut v, move |x| {
                prev = prev.wrapping_add(unzigzag(x));
                prev
            });
        } else {
            gather(planes, rows, w, &mut v, move |x| x.wrapping_add(base));
        }
        Values::U64(v)
    };
    Ok(Column { values, validity })
}

fn decode_dict(
    buf: &[u8],
    rows: usize,
    phys_u128: bool,
    width: usize,
    base: u128,
) -> Result<Values, DecodeError> {
    let Some((n, rest)) = buf.split_first_chunk::<4>() else {
        return Err(DecodeError("dictionary length missing".into()));
    };
    let n = u32::from_le_bytes(*n) as usize;
    if n == 0 || n > rows {
        return Err(DecodeError(format!("dictionary of {n} values for {rows} rows")));
    }
    let iw = width_of((n - 1) as u128) as usize;
    let expect = n * width + rows * iw;
    if rest.len() != expect {
        return Err(DecodeError(format!(
            "dictionary payload is {} bytes, expected {expect}",
            rest.len()
        )));
    }
    let (dict_bytes, idx_bytes) = rest.split_at(n * width);
    let mut idx = crate::spare::empty::<u64>(rows);
    gather(idx_bytes, rows, iw, &mut idx, |x| x);
    if let Some(bad) = idx.iter().find(|&&i| i as usize >= n) {
        return Err(DecodeError(format!("dictionary index {bad} out of {n}")));
    }
    Ok(if phys_u128 {
        let mut dict = vec![0u128; n];
        read_planes(dict_bytes, n, width, &mut dict);
        let mut acc = base;
        dict.iter_mut().for_each(|d| {
            acc = acc.wrapping_add(*d);
            *d = acc;
        });
        let mut out = crate::spare::empty::<u128>(rows);
        out.extend(idx.iter().map(|&i| dict[i as usize]));
        crate::spare::give(idx);
        Values::U128(out)
    } else {
        let mut dict = vec![0u64; n];
        read_planes(dict_bytes, n, width, &mut dict);
        let mut acc = base as u64;
        dict.iter_mut().for_each(|d| {
            acc = acc.wrapping_add(*d);
            *d = acc;
        });
        // The index vector becomes the output, in place.
        idx.iter_mut().for_each(|i| *i = dict[*i as usize]);
        Values::U64(idx)
    })
}

/// A dictionary of one-byte differences with packed indices
/// ([`FLAG_PACKED`]).
fn decode_packed_dict(buf: &[u8], rows: usize, base: u64) -> Result<Values, DecodeError> {
    let Some((n, rest)) = buf.split_first_chunk::<4>() else {
        return Err(DecodeError("dictionary length missing".into()));
    };
    let n = u32::from_le_bytes(*n) as usize;
    if n == 0 || n > PACKED_MAX {
        return Err(DecodeError(format!("packed dictionary of {n} values (1 to {PACKED_MAX})")));
    }
    let bits = packed_bits(n);
    let per = 8 / bits;
    let expect = n + rows.div_ceil(per);
    if rest.len() != expect {
        return Err(DecodeError(format!(
            "packed dictionary payload is {} bytes, expected {expect}",
            rest.len()
        )));
    }
    let (entries, packed) = rest.split_at(n);
    // Every 4-bit index gets an entry: those past `n` are caught below.
    let mut dict = [u64::MAX; PACKED_MAX];
    let mut acc = base;
    for (d, &g) in dict.iter_mut().zip(entries) {
        acc = acc.wrapping_add(u64::from(g));
        *d = acc;
    }
    let mask = (1u8 << bits) - 1;
    let mut out = crate::spare::empty::<u64>(rows);
    // Bytes wholly within the rows, then the rows of the last byte (its
    // padding bits are not looked at).
    let full = rows / per;
    let mut top = 0u8;
    for &byte in &packed[..full] {
        for j in 0..per {
            let i = byte >> (j * bits) & mask;
            top = top.max(i);
            out.push(dict[usize::from(i)]);
        }
    }
    for j in 0..rows % per {
        let i = packed[full] >> (j * bits) & mask;
        top = top.max(i);
        out.push(dict[usize::from(i)]);
    }
    if usize::from(top) >= n {
        return Err(DecodeError(format!("packed dictionary index {top} out of {n}")));
    }
    Ok(Values::U64(out))
}

fn read_bitmap(bytes: &[u8], rows: usize) -> Bitmap {
    let mut words = vec![0u64; rows.div_ceil(64)];
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        words[i] = u64::from_le_bytes(w);
    }
    Bitmap::from_words(words, rows)
}

/// Replaces `out` with `f` of each of `rows` values of `w <= 8` bytes,
/// stored byte plane by byte plane in `planes` (`rows * w` bytes). One
/// pass, and nothing is zeroed first.
#[inline]
fn gather<T>(planes: &[u8], rows: usize, w: usize, out: &mut Vec<T>, mut f: impl FnMut(u64) -> T) {
    debug_assert!(w <= 8 && planes.len() == rows * w);
    out.clear();
    let p = |j: usize| &planes[j * rows..(j + 1) * rows];
    let b = |x: u8, j: u32| u64::from(x) << (8 * j);
    match w {
        0 => out.extend((0..rows).map(|_| f(0))),
        1 => out.extend(p(0).iter().map(|&a| f(u64::from(a)))),
        2 => out.extend(p(0).iter().zip(p(1)).map(|(&a, &c)| f(b(a, 0) | b(c, 1)))),
        3 => out.extend(
            p(0).iter().zip(p(1)).zip(p(2)).map(|((&a, &c), &d)| f(b(a, 0) | b(c, 1) | b(d, 2))),
        ),
        4 => out.extend(
            p(0).iter()
                .zip(p(1))
                .zip(p(2))
                .zip(p(3))
                .map(|(((&a, &c), &d), &e)| f(b(a, 0) | b(c, 1) | b(d, 2) | b(e, 3))),
        ),
        _ => {
            let full = rows - rows % 8;
            for i in (0..full).step_by(8) {
                out.extend(group8(planes, rows, 0..w, i).map(&mut f));
            }
            out.extend((full..rows).map(|i| f(row_at(planes, rows, 0..w, i))));
        }
    }
}

/// [`gather`] of 128-bit values of `w` (9 to 16) bytes: `base` plus each.
fn gather_u128(planes: &[u8], rows: usize, w: usize, out: &mut Vec<u128>, base: u128) {
    debug_assert!((9..=16).contains(&w) && planes.len() == rows * w);
    out.clear();
    let full = rows - rows % 8;
    for i in (0..full).step_by(8) {
        let lo = group8(planes, rows, 0..8, i);
        let hi = group8(planes, rows, 8..w, i);
        out.extend(
            lo.iter()
                .zip(&hi)
                .map(|(&l, &h)| base.wrapping_add(u128::from(h) << 64 | u128::from(l))),
        );
    }
    out.extend((full..rows).map(|i| {
        let l = row_at(planes, rows, 0..8, i);
        let h = row_at(planes, rows, 8..w, i);
        base.wrapping_add(u128::from(h) << 64 | u128::from(l))
    }));
}

/// The value of row `i` made of byte planes `js` (plane `js.start` is the
/// lowest byte).
#[inline]
fn row_at(planes: &[u8], rows: usize, js: std::ops::Range<usize>, i: usize) -> u64 {
    let j0 = js.start;
    js.fold(0u64, |x, j| x | u64::from(planes[j * rows + i]) << (8 * (j - j0)))
}

/// Rows `i..i + 8` made of byte planes `js` (at most 8): one 8-byte load
/// per plane and a byte transpose.
#[inline]
fn group8(planes: &[u8], rows: usize, js: std::ops::Range<usize>, i: usize) -> [u64; 8] {
    let mut x = [0u64; 8];
    let j0 = js.start;
    for j in js {
        let at = j * rows + i;
        let mut b = [0u8; 8];
        b.copy_from_slice(&planes[at..at + 8]);
        x[j - j0] = u64::from_le_bytes(b);
    }
    transpose8(&mut x);
    x
}

/// Transposes 8x8 bytes: byte `k` of word `j` becomes byte `j` of word `k`.
#[inline]
fn transpose8(x: &mut [u64; 8]) {
    for j in 0..4 {
        let t = ((x[j] >> 32) ^ x[j + 4]) & 0x0000_0000_FFFF_FFFF;
        x[j] ^= t << 32;
        x[j + 4] ^= t;
    }
    for j in [0, 1, 4, 5] {
        let t = ((x[j] >> 16) ^ x[j + 2]) & 0x0000_FFFF_0000_FFFF;
        x[j] ^= t << 16;
        x[j + 2] ^= t;
    }
    for j in [0, 2, 4, 6] {
        let t = ((x[j] >> 8) ^ x[j + 1]) & 0x00FF_00FF_00FF_00FF;
        x[j] ^= t << 8;
        x[j + 1] ^= t;
    }
}

fn read_planes<T: Word>(planes: &[u8], rows: usize, w: usize, out: &mut [T]) {
    if w == 1 {
        for (o, &b) in out.iter_mut().zip(planes) {
            *o = T::from_byte(b);
        }
        return;
    }
    for j in 0..w {
        let plane = &planes[j * rows..(j + 1) * rows];
        let shift = 8 * j as u32;
        for (o, &b) in out.iter_mut().zip(plane) {
            *o = o.or_byte(b, shift);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(col: &Column) -> Column {
        let mut buf = Vec::new();
        let meta = encode(col, None, &mut buf).expect("has values");
        assert_eq!(meta.raw_len as usize, buf.len());
        let u128 = matches!(col.values, Values::U128(_));
        decode(&buf, col.len(), u128, meta.enc, meta.width, meta.base, None).unwrap()
    }

    /// Equal where valid; validity equal.
    fn assert_same(a: &Column, b: &Column) {
        assert_eq!(a.len(), b.len());
        for i in 0..a.len() {
            assert_eq!(a.get(i), b.get(i), "row {i}");
        }
        assert_eq!(a.null_count(), b.null_count());
    }

    fn with_validity(values: Values, mask: &[bool]) -> Column {
        let n = values.len();
        let mut b = Bitmap::zeros(n);
        for (i, &m) in mask.iter().enumerate().take(n) {
            b.set(i, m);
        }
        let validity = (b.count_ones() != n).then_some(b);
        Column { values, validity }
    }

    #[test]
    fn gather_matches_plane_by_plane_reading() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for rows in [0usize, 1, 7, 8, 9, 63, 100] {
            for w in 0..=16usize {
                let planes: Vec<u8> = (0..rows * w)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (seed >> 56) as u8
                    })
                    .collect();
                let mut want = vec![0u128; rows];
                read_planes(&planes, rows, w, &mut want);
                let base = 0xffff_0000_0001u128;
                let mut got = Vec::new();
                if w <= 8 {
                    gather(&planes, rows, w, &mut got, |x| base.wrapping_add(u128::from(x)));
                } else {
                    gather_u128(&planes, rows, w, &mut got, base);
                }
                let want: Vec<u128> = want.iter().map(|x| x.wrapping_add(base)).collect();
                assert_eq!(got, want, "rows {rows} width {w}");
            }
        }
    }

    #[test]
    fn few_values_of_one_byte_range_pack_their_indices() {
        // 2, 4, 16 and 17 distinct values: 1, 2 and 4 bits, then plain FOR;
        // row counts that do not fill the last byte; gaps.
        for (n, rows, bits) in
            [(2u64, 1001usize, Some(1)), (4, 999, Some(2)), (16, 1003, Some(4)), (17, 1000, None)]
        {
            let v: Vec<u64> = (0..rows as u64).map(|i| 1000 + (i * 7 % n) * 13 % 256).collect();
            let mask: Vec<bool> = (0..rows).map(|i| i % 5 != 1).collect();
            for col in
                [Column::full(Values::U64(v.clone())), with_validity(Values::U64(v.clone()), &mask)]
            {
                let mut buf = Vec::new();
                let meta = encode(&col, None, &mut buf).unwrap();
                match bits {
                    Some(b) => {
                        assert_eq!(meta.enc & 0x0f, KIND_DICT, "{n} values");
                        assert_ne!(meta.enc & FLAG_PACKED, 0, "{n} values");
                        let bitmap = if col.validity.is_some() { rows.div_ceil(8) } else { 0 };
                        assert_eq!(buf.len(), bitmap + 4 + n as usize + (rows * b).div_ceil(8));
                    }
                    None => assert_eq!(meta.enc & FLAG_PACKED, 0, "{n} values"),
                }
                assert_same(&col, &round_trip(&col));
            }
        }
    }

    /// Blocks after a packed one are packed in one pass around the last
    /// block's smallest value: the same bytes and bounds as encoding each
    /// block afresh, whether the values moved up within that range or out
    /// of it.
    #[test]
    fn packed_blocks_after_packed_blocks() {
        let mut hint = EncodeHint::default();
        // (smallest, distinct, rows): up within range, below it, up to the
        // range's last value, beyond it.
        let blocks: [(u64, u64, usize); 5] =
            [(1000, 5, 999), (1010, 9, 1000), (990, 3, 77), (1200, 16, 1003), (1246, 2, 64)];
        // Next to u64::MAX, then across it (offsets from the last block's
        // smallest value wrap): the wrapped block is not packed around it.
        let wrap = [[u64::MAX, u64::MAX - 1], [u64::MAX, 0]]
            .map(|pair| Column::full(Values::U64((0..64).map(|i| pair[i % 2]).collect())));
        // Each block hinted as the writer does, and afresh: the same bytes,
        // meta and bounds, and the values come back.
        let check = |col: &Column, hint: &mut EncodeHint, name: String| {
            let (mut hinted, mut fresh) = (Vec::new(), Vec::new());
            let a = encode_hinted(col, None, hint, &mut hinted).unwrap();
            let b = encode(col, None, &mut fresh).unwrap();
            assert_eq!((a.enc, a.base, a.zone, &hinted), (b.enc, b.base, b.zone, &fresh), "{name}");
            let back = decode(&hinted, col.len(), false, a.enc, a.width, a.base, None).unwrap();
            assert_same(col, &back);
        };
        let mut near = EncodeHint::default();
        for (k, col) in wrap.iter().enumerate() {
            check(col, &mut near, format!("wrap {k}"));
        }
        for (k, (lo, spread, rows)) in blocks.into_iter().enumerate() {
            let v: Vec<u64> = (0..rows as u64).map(|i| lo + (i * 7 % spread) * 3 % 256).collect();
            check(&Column::full(Values::U64(v)), &mut hint, format!("block {k}"));
        }
    }

    /// Address blocks with thousands of hosts: from the second block on,
    /// the dictionary table is big and the insert loop reads ahead; every
    /// block still round-trips.
    #[test]
    fn big_address_dictionaries_round_trip() {
        let mut hint = EncodeHint::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for block in 0..3 {
            let v: Vec<u128> = (0..20_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // ~3 200 of 6 000 hosts spread over the IPv4 space,
                    // some much busier than others (a sample of 1 024
                    // rows holds ~710: few enough to try a dictionary).
                    let host = (x % 6000) * ((x >> 24) % 6000) * ((x >> 44) % 6000) / 36_000_000;
                    0xffff_0000_0000u128 + u128::from(host.wrapping_mul(2_654_435_761) as u32)
                })
                .collect();
            let col = Column::full(Values::U128(v));
            let mut buf = Vec::new();
            let meta = encode_hinted(&col, None, &mut hint, &mut buf).unwrap();
            assert_eq!(meta.enc & 0x0f, KIND_DICT, "block {block}");
            let back =
                decode(&buf, col.len(), true, meta.enc, meta.width, meta.base, None).unwrap();
            assert_same(&col, &back);
        }
        assert!(hint.dict_len > 3000, "{hint:?}");
        let table = SCRATCH.with(|c| c.borrow().dict32.mask + 1);
        assert!(table >= BIG_TABLE, "the table read ahead: {table} entries");
    }

    /// A dictionary built over 32-bit offsets from the smallest value
    /// writes exactly the bytes one built over the full values does: IPv6
    /// hosts of one /96 (above 2^64, so the offsets are all that is
    /// narrow), with and without gaps, big tables (read ahead) and small.
    #[test]
    fn offset_keys_write_what_full_keys_write() {
        let base = 0x2001_0db8_0000_0000_0000_0001_0000_0000u128;
        for (rows, hosts) in [(20_000u64, 5000u64), (3000, 40)] {
            let vals: Vec<u128> =
                (0..rows).map(|i| base + u128::from((i / 4 * 7919) % hosts * 65_537)).collect();
            let mut gaps = Bitmap::ones(vals.len());
            (3..vals.len()).step_by(11).for_each(|i| gaps.set(i, false));
            for valid in [None, Some(&gaps)] {
                let col = Column { values: Values::U128(vals.clone()), validity: valid.cloned() };
                let zone = ZoneMap::of(&col).unwrap();
                assert!(zone.max - zone.min <= u128::from(u32::MAX));
                let lim = Limits {
                    for_width: width_of(zone.max - zone.min),
                    max_distinct: usize::MAX,
                    sample: DICT_SAMPLE_ROWS,
                };
                let mut scratch = Scratch::default();
                let (mut narrow, mut wide) = (Vec::new(), Vec::new());
                let (d, idx, g) = u32::dict(&mut scratch);
                let key = |v: u128| (v - zone.min) as u32;
                let w1 = dict_with(
                    &vals,
                    key,
                    valid,
                    0,
                    lim,
                    d,
                    idx,
                    g,
                    &mut (hosts as u32),
                    &mut narrow,
                );
                let (d, idx, g) = u128::dict(&mut scratch);
                let w2 = dict_with(
                    &vals,
                    |v| v,
                    valid,
                    zone.min,
                    lim,
                    d,
                    idx,
                    g,
                    &mut (hosts as u32),
                    &mut wide,
                );
                assert!(w1.is_some(), "{rows} rows of {hosts} hosts: a dictionary pays");
                assert_eq!((w1, &narrow), (w2, &wide), "{rows} rows of {hosts} hosts");
            }
        }
    }

    #[test]
    fn damaged_packed_dictionaries_are_refused() {
        let v: Vec<u64> = (0..200u64).map(|i| [6, 17, 1][i as usize % 3]).collect();
        let col = Column::full(Values::U64(v));
        let mut buf = Vec::new();
        let meta = encode(&col, None, &mut buf).unwrap();
        assert_eq!(meta.enc, KIND_DICT | FLAG_PACKED);
        let dec = |b: &[u8], rows: usize, u128: bool, enc: u8| {
            decode(b, rows, u128, enc, meta.width, meta.base, None).map(|_| ()).unwrap_err().0
        };
        // 3 values, 2-bit indices: index 3 is out of the dictionary.
        let mut bad = buf.clone();
        bad[4 + 3] = 0b11;
        assert!(dec(&bad, 200, false, meta.enc).contains("index 3 out of 3"));
        // ... but the padding of the last byte is not an index: read as
        // 199 rows (the same 50 bytes of indices), row 199 is padding.
        let mut pad = buf.clone();
        *pad.last_mut().unwrap() |= 0b1100_0000;
        assert!(decode(&pad, 200, false, meta.enc, 1, meta.base, None).is_err());
        assert!(decode(&pad, 199, false, meta.enc, 1, meta.base, None).is_ok());
        assert!(dec(&buf[..buf.len() - 1], 200, false, meta.enc).contains("expected"));
        assert!(dec(&buf, 200, true, meta.enc).contains("packed indices"));
        assert!(dec(&buf, 200, false, KIND_FOR | FLAG_PACKED).contains("packed indices"));
        let mut many = buf.clone();
        many[0] = 17;
        assert!(dec(&many, 200, false, meta.enc).contains("17 values"));
    }

    #[test]
    fn constant_column_has_width_zero() {
        let col = Column::full(Values::U64(vec![7; 1000]));
        let mut buf = Vec::new();
        let meta = encode(&col, None, &mut buf).unwrap();
        assert_eq!(meta.width, 0);
        assert!(buf.is_empty());
        assert_same(&col, &round_trip(&col));
    }

    #[test]
    fn radix_sort_orders_by_the_high_half() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for bits in [1u32, 11, 12, 22, 23, 32] {
            let mut keys: Vec<u64> = (0..5000u64)
                .map(|slot| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x & ((1u64 << bits) - 1)) << 32 | slot
                })
                .collect();
            let mut want = keys.clone();
            want.sort_unstable_by_key(|k| (k >> 32, k & 0xffff_ffff));
            radix_sort_high(&mut keys, &mut Vec::new(), bits);
            assert_eq!(keys, want, "{bits} bits");
        }
    }

    #[test]
    fn sorted_times_use_delta() {
        let v: Vec<u64> = (0..1000).map(|i| 1_709_532_000_000 + i * 37).collect();
        let col = Column::full(Values::U64(v));
        let mut buf = Vec::new();
        let meta = encode(&col, None, &mut buf).unwrap();
        assert_eq!(meta.enc & 0x0f, KIND_DELTA);
        assert_eq!(meta.width, 1);
        assert_same(&col, &round_trip(&col));
    }

    #[test]
    fn ipv4_mapped_addresses_take_four_bytes() {
        let v: Vec<u128> = (0..100u128).map(|i| 0xffff_0a00_0000 + i * 65_537).collect();
        let col = Column::full(Values::U128(v));
        let mut buf = Vec::new();
        assert_eq!(encode(&col, None, &mut buf).unwrap().width, 3);
        assert_same(&col, &round_trip(&col));
    }

    #[test]
    fn durations_encode_relative_to_the_reference() {
        let last: Vec<u64> =
            (0..3000u64).map(|i| 1_709_532_000_000 + (i * 7919) % 300_000).collect();
        let first: Vec<u64> = last.iter().enumerate().map(|(i, l)| l - (i as u64 % 40)).collect();
        let col = Column::full(Values::U64(first));
        let mut buf = Vec::new();
        let meta = encode(&col, Some((2, &last)), &mut buf).unwrap();
        assert_eq!((meta.enc & 0x0f, meta.width, meta.ref_field), (KIND_REL, 1, 2));
        let back = decode(&buf, 3000, false, meta.enc, meta.width, meta.base, Some(&last)).unwrap();
        assert_same(&col, &back);
        assert!(decode(&buf, 3000, false, meta.enc, meta.width, meta.base, None).is_err());
    }

    #[test]
    fn repetitive_addresses_use_a_dictionary() {
        let hosts = [0xffff_0a01_0203u128, 0x2001_0db8 << 96, 0xffff_c000_0201];
        let v: Vec<u128> = (0..5000).map(|i| hosts[(i * i) % 3]).collect();
        let col = Column::full(Values::U128(v));
        let mut buf = Vec::new();
        let meta = encode(&col, None, &mut buf).unwrap();
        assert_eq!(meta.enc & 0x0f, KIND_DICT);
        assert!(buf.len() < 5000 + 100, "{}", buf.len());
        assert_same(&col, &round_trip(&col));
    }

    #[test]
    fn hinted_encoding_round_trips_and_falls_back() {
        // A hint remembers the kind that won; a later block of different
        // data must still decode right and not end up wider than FOR.
        let sorted: Vec<u64> = (0..1000).map(|i| 1_709_532_000_000 + i * 37).collect();
        let random: Vec<u64> = (0..1000u64).map(|i| (i * 0x9E37_79B9) % 200_000).collect();
        let hosts = [0xffff_0a01_0203u128, 0x2001_0db8 << 96, 0xffff_c000_0201];
        let dict: Vec<u128> = (0..5000).map(|i| hosts[(i * i) % 3]).collect();
        let spread: Vec<u128> = (0..5000u128).map(|i| i * 0x1_0000_0001).collect();
        let mut hint = EncodeHint::default();
        let mut buf = Vec::new();
        for (i, v) in [&sorted, &sorted, &random, &random, &sorted].into_iter().enumerate() {
            let col = with_validity(Values::U64(v.clone()), &[i % 2 == 0; 1000]);
            let col = if col.null_count() == col.len() {
                Column::full(Values::U64(v.clone()))
            } else {
                col
            };
            let meta = encode_hinted(&col, None, &mut hint, &mut buf).unwrap();
            let back =
                decode(&buf, col.len(), false, meta.enc, meta.width, meta.base, None).unwrap();
            assert_same(&col, &back);
            let zone = ZoneMap::of(&col).unwrap();
            assert!(meta.width <= width_of(zone.max - zone.min), "block {i}");
        }
        let mut hint = EncodeHint::default();
        for v in [&dict, &spread, &dict] {
            let col = Column::full(Values::U128(v.clone()));
            let meta = encode_hinted(&col, None, &mut hint, &mut buf).unwrap();
            assert_same(
                &col,
                &decode(&buf, col.len(), true, meta.enc, meta.width, meta.base, None).unwrap(),
            );
        }
        // Relative encoding against a reference, then without one.
        let last: Vec<u64> =
            (0..3000u64).map(|i| 1_709_532_000_000 + (i * 7919) % 300_000).collect();
        let first: Vec<u64> = last.iter().enumerate().map(|(i, l)| l - (i as u64 % 40)).collect();
        let col = Column::full(Values::U64(first));
        let mut hint = EncodeHint::default();
        for _ in 0..2 {
            let meta = encode_hinted(&col, Some((2, &last)), &mut hint, &mut buf).unwrap();
            assert_eq!(meta.enc & 0x0f, KIND_REL);
            assert_same(
                &col,
                &decode(&buf, 3000, false, meta.enc, meta.width, meta.base, Some(&last)).unwrap(),
            );
        }
        let meta = encode_hinted(&col, None, &mut hint, &mut buf).unwrap();
        assert_ne!(meta.enc & 0x0f, KIND_REL);
        assert_same(
            &col,
            &decode(&buf, 3000, false, meta.enc, meta.width, meta.base, None).unwrap(),
        );
    }

    #[test]
    fn all_null_column_is_not_encoded() {
        let col = with_validity(Values::U64(vec![0; 10]), &[false; 10]);
        assert!(encode(&col, None, &mut Vec::new()).is_none());
    }

    #[test]
    fn corrupt_payload_is_an_error_not_a_panic() {
        let col = Column::full(Values::U64((0..100).map(|i| i * 1000).collect()));
        let mut buf = Vec::new();
        let m = encode(&col, None, &mut buf).unwrap();
        assert!(decode(&buf[1..], 100, false, m.enc, m.width, m.base, None).is_err());
        assert!(decode(&buf, 100, false, m.enc | 0x0f, m.width, m.base, None).is_err());
        assert!(decode(&buf, 100, false, m.enc, 9, m.base, None).is_err());
        assert!(decode(&buf, 100, true, KIND_DELTA, m.width, m.base, None).is_err());
    }

    proptest! {
        #[test]
        fn u64_round_trip(v in prop::collection::vec(any::<u64>(), 1..600),
                          mask in prop::collection::vec(any::<bool>(), 600)) {
            let col = with_validity(Values::U64(v), &mask);
            if col.null_count() < col.len() {
                assert_same(&col, &round_trip(&col));
            }
        }

        #[test]
        fn u64_small_range_round_trip(base in any::<u64>(), d in prop::collection::vec(0u64..70_000, 1..600)) {
            let v: Vec<u64> = d.iter().map(|x| base.wrapping_add(*x)).collect();
            let col = Column::full(Values::U64(v));
            assert_same(&col, &round_trip(&col));
        }

        #[test]
        fn u64_monotonic_round_trip(start in any::<u64>(), d in prop::collection::vec(0u64..5000, 1..600)) {
            let mut acc = start;
            let v: Vec<u64> = d.iter().map(|x| { acc = acc.wrapping_add(*x); acc }).collect();
            let col = Column::full(Values::U64(v));
            assert_same(&col, &round_trip(&col));
        }

        #[test]
        fn low_cardinality_round_trip(pool in prop::collection::vec(any::<u128>(), 1..40),
                                      picks in prop::collection::vec(any::<prop::sample::Index>(), 64..700),
                                      mask in prop::collection::vec(any::<bool>(), 700)) {
            let v: Vec<u128> = picks.iter().map(|p| pool[p.index(pool.len())]).collect();
            let col = with_validity(Values::U128(v.clone()), &mask);
            if col.null_count() < col.len() {
                assert_same(&col, &round_trip(&col));
            }
            let col = with_validity(Values::U64(v.iter().map(|x| *x as u64).collect()), &mask);
            if col.null_count() < col.len() {
                assert_same(&col, &round_trip(&col));
            }
        }

        #[test]
        fn byte_range_low_cardinality_round_trip(base in any::<u64>(),
                                                 pool in prop::collection::vec(0u64..256, 1..20),
                                                 picks in prop::collection::vec(any::<prop::sample::Index>(), 1..700),
                                                 mask in prop::collection::vec(any::<bool>(), 700)) {
            let v: Vec<u64> =
                picks.iter().map(|p| base.wrapping_add(pool[p.index(pool.len())]) % (u64::MAX - 255)).collect();
            for col in [Column::full(Values::U64(v.clone())), with_validity(Values::U64(v), &mask)] {
                if col.null_count() < col.len() {
                    assert_same(&col, &round_trip(&col));
                }
            }
        }

        #[test]
        fn u128_round_trip(v in prop::collection::vec(any::<u128>(), 1..300),
                           mask in prop::collection::vec(any::<bool>(), 300)) {
            let col = with_validity(Values::U128(v), &mask);
            if col.null_count() < col.len() {
                assert_same(&col, &round_trip(&col));
            }
        }
    }
}
