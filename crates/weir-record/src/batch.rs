//! Column batches: the unit the store writes and the query engine scans.

use crate::field::FlowRecord;
use crate::field::{Field, Physical};

/// A fixed-length bitmap, 64 rows per word, bit `i % 64` of word `i / 64`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl Bitmap {
    /// A bitmap of `len` zero bits.
    pub fn zeros(len: usize) -> Bitmap {
        Bitmap { words: vec![0; len.div_ceil(64)], len }
    }

    /// A bitmap of `len` one bits.
    pub fn ones(len: usize) -> Bitmap {
        let mut b = Bitmap { words: vec![u64::MAX; len.div_ceil(64)], len };
        b.clear_tail();
        b
    }

    /// Builds a bitmap from words; bits past `len` are cleared.
    ///
    /// # Panics
    /// If `words` does not hold exactly `len.div_ceil(64)` words.
    pub fn from_words(words: Vec<u64>, len: usize) -> Bitmap {
        assert_eq!(words.len(), len.div_ceil(64), "bitmap word count");
        let mut b = Bitmap { words, len };
        b.clear_tail();
        b
    }

    fn clear_tail(&mut self) {
        let rem = self.len % 64;
        if rem != 0
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << rem) - 1;
        }
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the bitmap has no bits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The words, giving up the bitmap.
    pub fn into_words(self) -> Vec<u64> {
        self.words
    }

    /// The words (bits past `len` are zero).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Mutable words. Callers must keep bits past `len` zero.
    pub fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// Bit `i`.
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        debug_assert!(i < self.len);
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Sets bit `i` to `v`.
    #[inline]
    pub fn set(&mut self, i: usize, v: bool) {
        debug_assert!(i < self.len);
        let w = &mut self.words[i / 64];
        let m = 1u64 << (i % 64);
        if v { *w |= m } else { *w &= !m }
    }

    /// Number of one bits.
    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Indices of the one bits, ascending.
    pub fn iter_ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + b)
            })
        })
    }
}

/// The values of one column, widened to the physical type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// Integer columns.
    U64(Vec<u64>),
    /// Address columns.
    U128(Vec<u128>),
}

impl Values {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::U64(v) => v.len(),
            Values::U128(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` widened to `u128`.
    #[inline]
    pub fn get(&self, i: usize) -> u128 {
        match self {
            Values::U64(v) => v[i] as u128,
            Values::U128(v) => v[i],
        }
    }

    /// The physical type.
    pub fn physical(&self) -> Physical {
        match self {
            Values::U64(_) => Physical::U64,
            Values::U128(_) => Physical::U128,
        }
    }

    /// The `u64` values, if this is an integer column.
    pub fn as_u64(&self) -> Option<&[u64]> {
        match self {
            Values::U64(v) => Some(v),
            Values::U128(_) => None,
        }
    }

    /// The `u128` values, if this is an address column.
    pub fn as_u128(&self) -> Option<&[u128]> {
        match self {
            Values::U128(v) => Some(v),
            Values::U64(_) => None,
        }
    }
}

/// One column of a batch: values for every row plus, when some rows have no
/// value, a validity bitmap (1 = has a value). Rows without a value hold an
/// unspecified number in `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// One value per row.
    pub values: Values,
    /// `None` when every row has a value.
    pub validity: Option<Bitmap>,
}

impl Column {
    /// A column where every row has a value.
    pub fn full(values: Values) -> Column {
        Column { values, validity: None }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether row `i` has a value.
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        self.validity.as_ref().is_none_or(|v| v.get(i))
    }

    /// Row `i`'s value, `None` if the row has none.
    #[inline]
    pub fn get(&self, i: usize) -> Option<u128> {
        self.is_valid(i).then(|| self.values.get(i))
    }

    /// Rows without a value.
    pub fn null_count(&self) -> usize {
        self.validity.as_ref().map_or(0, |v| v.len() - v.count_ones())
    }
}

/// Accumulates one column for [`crate::BatchBuilder`], which passes the
/// row number of every push.
///
/// Cheap for the common cases: a column no row has stores nothing (values
/// appear only with the first present value), and a column every row has
/// keeps no validity bits.
#[derive(Debug, Default)]
pub struct ColumnBuilder<T> {
    /// Rows `0..filled` are this batch's; entries beyond are room (values
    /// of an earlier batch) that [`ColumnBuilder::set_at`] writes in place.
    values: Vec<T>,
    filled: usize,
    validity: Vec<u64>,
    /// Whether some row so far lacks a value (then `validity` is kept).
    gaps: bool,
}

impl<T: Copy + Default + IntoValues> ColumnBuilder<T> {
    /// Sets row `row` (the next row) to a present value. Rows skipped
    /// since the last value (never pushed, or pushed as `None`) are gaps.
    #[inline]
    pub fn push_value(&mut self, row: usize, v: T) {
        if self.filled != row {
            self.fill_gaps(row);
        }
        if self.gaps {
            if row.is_multiple_of(64) {
                self.validity.push(0);
            }
            self.validity[row / 64] |= 1 << (row % 64);
        }
        match self.values.get_mut(row) {
            Some(x) => *x = v,
            None => self.values.push(v),
        }
        self.filled = row + 1;
    }

    /// Sets row `row` (the next row) to a value or a gap. A gap costs
    /// nothing here: it is filled in when the next value (or
    /// [`ColumnBuilder::take`]) comes.
    #[inline]
    pub fn push(&mut self, row: usize, v: Option<T>) {
        if let Some(v) = v {
            self.push_value(row, v);
        }
    }

    /// Whether rows `row..row + n` can be written in place with
    /// [`ColumnBuilder::set_at`]: every row before `row` has a value. Makes
    /// the room if needed.
    #[inline]
    pub(crate) fn make_room(&mut self, row: usize, n: usize) -> bool {
        if self.gaps || self.filled != row {
            return false;
        }
        if self.values.len() < row + n {
            self.values.resize(row + n, T::default());
        }
        true
    }

    /// Rows this column has room for (filled or not).
    #[inline]
    pub(crate) fn room(&self) -> usize {
        self.values.len()
    }

    /// Sets row `row` in the room made by [`ColumnBuilder::make_room`].
    #[inline(always)]
    pub(crate) fn set_at(&mut self, row: usize, v: T) {
        debug_assert!(row < self.values.len(), "row {row} outside the room");
        if let Some(x) = self.values.get_mut(row) {
            *x = v;
        }
    }

    /// Rows `row..row + n` of the room made by [`ColumnBuilder::make_room`],
    /// to be set in place (empty if outside the room, which cannot happen
    /// after `make_room(row, n)`).
    #[inline]
    pub(crate) fn window(&mut self, row: usize, n: usize) -> &mut [T] {
        debug_assert!(row + n <= self.values.len(), "rows outside the room");
        self.values.get_mut(row..row + n).unwrap_or_default()
    }

    /// Sets rows `row..row + n` in the room to `v`.
    #[inline]
    pub(crate) fn fill_at(&mut self, row: usize, n: usize, v: T) {
        debug_assert!(row + n <= self.values.len(), "rows outside the room");
        if let Some(w) = self.values.get_mut(row..row + n) {
            w.fill(v);
        }
    }

    /// Rows up to `rows` were set with [`ColumnBuilder::set_at`].
    #[inline]
    pub(crate) fn filled_to(&mut self, rows: usize) {
        debug_assert!(rows <= self.values.len(), "{rows} rows claimed, room for fewer");
        debug_assert!(rows >= self.filled, "{rows} rows claimed, {} filled", self.filled);
        self.filled = rows;
    }

    /// Rows `filled..row` have no value: store them as gaps.
    #[cold]
    #[inline(never)]
    fn fill_gaps(&mut self, row: usize) {
        let have = self.filled;
        if have > row {
            // Set twice in one row: the later value wins.
            self.filled = row;
            if self.gaps {
                self.validity.truncate(row.div_ceil(64));
                if let Some(w) = self.validity.last_mut()
                    && !row.is_multiple_of(64)
                {
                    *w &= (1u64 << (row % 64)) - 1;
                }
            }
            return;
        }
        if have == 0 {
            // Only gaps so far: none of them valid.
            self.validity.clear();
            self.validity.resize(row.div_ceil(64), 0);
        } else {
            if !self.gaps {
                // Every row so far had a value.
                self.validity.clear();
                self.validity.resize(have.div_ceil(64), u64::MAX);
                if !have.is_multiple_of(64) {
                    *self.validity.last_mut().expect("non-empty") = (1u64 << (have % 64)) - 1;
                }
            }
            self.validity.resize(row.div_ceil(64), 0);
        }
        self.gaps = true;
        // Gaps hold the default value (also where room held old values).
        let end = row.min(self.values.len());
        if let Some(old) = self.values.get_mut(have..end) {
            old.fill(T::default());
        }
        if self.values.len() < row {
            self.values.resize(row, T::default());
        }
        self.filled = row;
    }

    /// Takes the column of `rows` rows; `None` if no row has a value.
    pub fn take(&mut self, rows: usize) -> Option<Column> {
        if self.filled == 0 {
            self.gaps = false;
            self.validity.clear();
            return None;
        }
        if self.filled < rows {
            // Trailing rows without a value.
            self.fill_gaps(rows);
        }
        let gaps = std::mem::replace(&mut self.gaps, false);
        debug_assert_eq!(self.filled, rows);
        let mut values = std::mem::take(&mut self.values);
        values.truncate(rows);
        self.filled = 0;
        let validity = gaps.then(|| Bitmap::from_words(std::mem::take(&mut self.validity), rows));
        Some(Column { values: T::into_values(values), validity })
    }

    /// Gives back the vectors of a column taken earlier, so the next batch
    /// reuses their memory instead of allocating (and faulting in) new
    /// pages. The values stay as room for [`ColumnBuilder::set_at`].
    pub fn recycle(&mut self, col: Column) {
        if let Some(v) = T::from_values(col.values)
            && v.capacity() > self.values.capacity()
            && self.filled == 0
        {
            self.values = v;
        }
        if let Some(b) = col.validity {
            let mut w = b.into_words();
            if w.capacity() > self.validity.capacity() && self.validity.is_empty() {
                w.clear();
                self.validity = w;
            }
        }
    }
}

/// Physical types a [`ColumnBuilder`] can hold.
pub trait IntoValues: Sized {
    /// Wraps a vector of this type.
    fn into_values(v: Vec<Self>) -> Values;
    /// Unwraps a vector of this type.
    fn from_values(v: Values) -> Option<Vec<Self>>;
}

impl IntoValues for u64 {
    fn into_values(v: Vec<u64>) -> Values {
        Values::U64(v)
    }
    fn from_values(v: Values) -> Option<Vec<u64>> {
        match v {
            Values::U64(v) => Some(v),
            Values::U128(_) => None,
        }
    }
}

impl IntoValues for u128 {
    fn into_values(v: Vec<u128>) -> Values {
        Values::U128(v)
    }
    fn from_values(v: Values) -> Option<Vec<u128>> {
        match v {
            Values::U128(v) => Some(v),
            Values::U64(_) => None,
        }
    }
}

/// A set of rows stored column by column. Columns that no row has are absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowBatch {
    rows: usize,
    columns: Vec<Option<Column>>,
}

impl FlowBatch {
    /// An empty batch of `rows` rows with no columns yet.
    pub fn new(rows: usize) -> FlowBatch {
        FlowBatch { rows, columns: vec![None; Field::COUNT] }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The column of `field`, if any row has it.
    #[inline]
    pub fn column(&self, field: Field) -> Option<&Column> {
        self.columns[field.index()].as_ref()
    }

    /// Sets the column of `field`.
    ///
    /// # Panics
    /// If the column's length or physical type do not fit.
    pub fn set_column(&mut self, field: Field, column: Column) {
        assert_eq!(column.len(), self.rows, "column {field} length");
        assert_eq!(column.values.physical(), field.physical(), "column {field} type");
        self.columns[field.index()] = Some(column);
    }

    /// Removes and returns the column of `field`.
    pub fn take_column(&mut self, field: Field) -> Option<Column> {
        self.columns[field.index()].take()
    }

    /// Fields that have a column, in id order.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        Field::ALL.iter().copied().filter(|f| self.columns[f.index()].is_some())
    }

    /// Row `i` as a record.
    pub fn record(&self, i: usize) -> FlowRecord {
        let mut r = FlowRecord::default();
        for f in self.fields() {
            if let Some(v) = self.columns[f.index()].as_ref().and_then(|c| c.get(i)) {
                r.set(f, v);
            }
        }
        r
    }

    /// All rows as records (for tests and small outputs).
    pub fn records(&self) -> Vec<FlowRecord> {
        (0..self.rows).map(|i| self.record(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BatchBuilder;

    /// A recycled column keeps the old batch's values as room; none of
    /// them shows through gaps, rows written in place, values set twice
    /// or an empty batch, and room is refused after a gap.
    #[test]
    fn room_of_an_earlier_batch_never_shows() {
        let mut c = ColumnBuilder::<u64>::default();
        for r in 0..100 {
            c.push_value(r, 1000 + r as u64);
        }
        let col = c.take(100).unwrap();
        c.recycle(col);
        assert!(c.make_room(0, 3));
        for r in 0..3 {
            c.set_at(r, r as u64);
        }
        c.filled_to(3);
        c.push_value(5, 55);
        c.push_value(5, 56);
        let col = c.take(8).unwrap();
        assert_eq!(col.values, Values::U64(vec![0, 1, 2, 0, 0, 56, 0, 0]));
        let valid: Vec<bool> = (0..8).map(|i| col.is_valid(i)).collect();
        assert_eq!(valid, [true, true, true, false, false, true, false, false]);
        c.recycle(col);
        assert!(c.take(4).is_none(), "no value pushed: no column");
        c.push_value(2, 7);
        assert!(!c.make_room(3, 2), "row 0 and 1 are gaps");
        let col = c.take(3).unwrap();
        assert_eq!(col.values, Values::U64(vec![0, 0, 7]));
    }

    /// Rows written in place through `BatchBuilder`: refused for a
    /// column with a gap, taken after a recycle (over the old block's
    /// room), mixed with pushed rows.
    #[test]
    fn dense_rows_through_the_batch_builder() {
        use crate::Field;
        let mut b = BatchBuilder::default();
        b.push_u64(Field::First, 10);
        b.end_row();
        b.push_u64(Field::First, 11);
        b.push_u64(Field::SrcPort, 80);
        b.end_row();
        let both = crate::DenseFields::new([Field::First, Field::SrcPort]);
        assert!(!b.begin_dense(2, &both), "src port has a gap");
        let mut batch = b.finish();
        assert_eq!(batch.rows(), 2);
        b.recycle(&mut batch);
        let dense = crate::DenseFields::new([Field::First, Field::SrcAddr]);
        assert!(b.begin_dense(3, &dense));
        for r in 0..3 {
            b.set_u64_at(Field::First, r, 20 + r as u64);
            b.set_u128_at(Field::SrcAddr, r, 7);
        }
        b.end_dense(3, &dense);
        b.push_u64(Field::First, 23);
        b.push_u64(Field::SrcPort, 443);
        b.end_row();
        let batch = b.finish();
        let first = batch.column(Field::First).unwrap();
        assert_eq!(first.values, Values::U64(vec![20, 21, 22, 23]));
        assert!(first.validity.is_none());
        let port = batch.column(Field::SrcPort).unwrap();
        assert_eq!(port.values, Values::U64(vec![0, 0, 0, 443]));
        assert_eq!(
            (0..4).map(|i| port.is_valid(i)).collect::<Vec<_>>(),
            [false, false, false, true]
        );
        let addr = batch.column(Field::SrcAddr).unwrap();
        assert_eq!(addr.values, Values::U128(vec![7, 7, 7, 0]));
        assert_eq!((0..4).map(|i| addr.is_valid(i)).collect::<Vec<_>>(), [true, true, true, false]);
    }

    /// Data sets of the same fields one after the other skip the checks
    /// (windows, fills); a pushed row in between brings them back, and
    /// a gap it leaves is refused.
    #[test]
    fn dense_sets_back_to_back() {
        use crate::{DenseFields, Field};
        let dense = DenseFields::new([Field::SrcAddr, Field::First, Field::Last]);
        assert!(dense.contains(Field::Last) && !dense.contains(Field::Bytes));
        let mut b = BatchBuilder::default();
        for (set, n) in [(0u64, 3usize), (1, 2), (2, 1)] {
            let row = b.len();
            assert!(b.begin_dense(n, &dense), "set {set}");
            let (first, last) = b.windows_u64(Field::First, Field::Last, row, n).unwrap();
            first.fill(set);
            last.fill(set + 10);
            b.fill_u128_at(Field::SrcAddr, row, n, u128::from(set));
            b.end_dense(n, &dense);
        }
        assert!(b.windows_u64(Field::First, Field::First, 0, 1).is_none());
        b.push_u64(Field::First, 7);
        b.push_u64(Field::Last, 8);
        b.end_row();
        assert!(!b.begin_dense(2, &dense), "the address has a gap");
        let batch = b.finish();
        assert_eq!(
            batch.column(Field::First).unwrap().values,
            Values::U64(vec![0, 0, 0, 1, 1, 2, 7])
        );
        assert_eq!(
            batch.column(Field::Last).unwrap().values,
            Values::U64(vec![10, 10, 10, 11, 11, 12, 8])
        );
        let addr = batch.column(Field::SrcAddr).unwrap();
        assert_eq!(addr.values, Values::U128(vec![0, 0, 0, 1, 1, 2, 0]));
        assert_eq!(addr.null_count(), 1);
    }

    #[test]
    fn bitmap_basics() {
        let mut b = Bitmap::zeros(130);
        b.set(0, true);
        b.set(64, true);
        b.set(129, true);
        assert_eq!(b.count_ones(), 3);
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), vec![0, 64, 129]);
        assert_eq!(Bitmap::ones(70).count_ones(), 70);
        assert_eq!(Bitmap::from_words(vec![u64::MAX], 3).count_ones(), 3);
    }

    #[test]
    fn builder_handles_every_gap_pattern() {
        // Leading, trailing and interior gaps, across word boundaries, twice
        // (the second round reuses recycled vectors).
        let mut b = BatchBuilder::default();
        for round in 0..2 {
            let mut rows = Vec::new();
            for i in 0..300u64 {
                let mut r = FlowRecord { first: i, ..Default::default() };
                r.src_as = (i >= 70).then_some(i as u32); // leading gap
                r.dst_as = (i < 130).then_some(i as u32); // trailing gap
                r.next_as = (i % 65 != 3).then_some(i as u32); // interior gaps
                r.prev_as = Some(round);
                b.push(&r);
                rows.push(r);
            }
            let mut batch = b.finish();
            assert_eq!(batch.records(), rows);
            assert_eq!(batch.column(Field::SrcAs).unwrap().null_count(), 70);
            assert_eq!(batch.column(Field::DstAs).unwrap().null_count(), 170);
            assert!(batch.column(Field::PrevAs).unwrap().validity.is_none());
            assert!(batch.column(Field::Mpls1).is_none());
            b.recycle(&mut batch);
        }
    }

    #[test]
    fn column_by_column_rows_match_record_rows() {
        let mut by_row = BatchBuilder::default();
        let mut by_col = BatchBuilder::default();
        for i in 0..150u64 {
            let mut r = FlowRecord { first: i, last: i + 1, proto: 6, ..Default::default() };
            r.src_as = (i % 7 != 0).then_some(i as u32);
            r.dst_addr = (i >= 20).then_some(u128::from(i) << 70);
            by_row.push(&r);
            by_col.push_u64(Field::First, r.first);
            by_col.push_u64(Field::Last, r.last);
            for f in [Field::Received, Field::SrcPort, Field::DstPort, Field::TcpFlags] {
                by_col.push_u64(f, 0);
            }
            for f in [Field::SrcTos, Field::Packets, Field::Bytes] {
                by_col.push_u64(f, 0);
            }
            if i % 5 == 0 {
                by_col.push_u64(Field::Proto, 99); // set twice: the later value wins
            }
            by_col.push_u64(Field::Proto, 6);
            if let Some(a) = r.src_as {
                by_col.push_u64(Field::SrcAs, u64::from(a));
            }
            if let Some(a) = r.dst_addr {
                by_col.push_u128(Field::DstAddr, a);
            }
            by_col.end_row();
        }
        assert_eq!(by_col.len(), 150);
        assert_eq!(by_col.finish(), by_row.finish());
    }

    #[test]
    fn builder_round_trip_with_gaps() {
        let mut b = BatchBuilder::default();
        let mut rows = Vec::new();
        for i in 0..200u64 {
            let mut r = FlowRecord { first: i, last: i + 5, packets: i * 3, ..Default::default() };
            if i % 3 == 0 {
                r.src_vlan = Some(i as u16);
            }
            r.src_addr = Some(crate::ip_to_u128("10.0.0.1".parse().unwrap()) + i as u128);
            b.push(&r);
            rows.push(r);
        }
        let batch = b.finish();
        assert!(b.is_empty());
        assert_eq!(batch.rows(), 200);
        assert!(batch.column(Field::Mpls1).is_none(), "absent column left out");
        assert!(batch.column(Field::First).unwrap().validity.is_none());
        assert_eq!(batch.column(Field::SrcVlan).unwrap().null_count(), 133);
        assert_eq!(batch.records(), rows);
    }
}
