//! Evaluating all channels of a profile over one block in one pass: the
//! union of the channels' columns is decoded once, each channel's
//! compiled filter fills a bitmap, and the matching rows are counted per
//! protocol class (and, for materialized profiles, collected).

use weir_filter::{CompiledFilter, Filter};
use weir_record::{
    Bitmap, Column, Counts, Field, FlowBatch, Physical, ProtoClass, SlotTotals, Values,
};
use weir_store::{Block, ChunkReader, StoreError};

/// Columns every channel needs for its counters.
const COUNT_FIELDS: [Field; 4] = [Field::Proto, Field::Packets, Field::Bytes, Field::Flows];

/// One channel's filter, compiled.
#[derive(Debug, Clone)]
struct ChannelEval {
    filter: Filter,
    compiled: CompiledFilter,
    any: bool,
}

/// The compiled channels of a profile.
#[derive(Debug, Clone)]
pub struct ChannelSet {
    channels: Vec<ChannelEval>,
}

/// What one block contributes to each channel.
#[derive(Debug, Default)]
pub struct BlockOut {
    /// Per channel: flows, packets and bytes in total and per class.
    pub totals: Vec<SlotTotals>,
    /// Per channel: the matching rows, all columns (only when rows were
    /// asked for and some matched).
    pub rows: Vec<Option<FlowBatch>>,
    /// Rows in the block.
    pub scanned: u64,
}

impl ChannelSet {
    /// Compiles the channels' effective filters (in profile order).
    pub fn new(filters: Vec<Filter>) -> ChannelSet {
        let channels = filters
            .into_iter()
            .map(|filter| {
                let compiled = filter.compile();
                ChannelEval { any: filter.is_any(), filter, compiled }
            })
            .collect();
        ChannelSet { channels }
    }

    /// Number of channels.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// Whether there is no channel.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Evaluates every channel over `block` of a file with ident `ident`.
    /// With `want_rows`, the matching rows of each channel are returned
    /// too (all columns).
    pub fn eval_block(
        &self,
        block: &Block<'_>,
        ident: &str,
        reader: &mut ChunkReader,
        want_rows: bool,
    ) -> Result<BlockOut, StoreError> {
        let n = self.channels.len();
        let mut out = BlockOut {
            totals: vec![SlotTotals::default(); n],
            rows: vec![None; if want_rows { n } else { 0 }],
            scanned: block.rows() as u64,
        };
        let stats = block.stats();
        let active: Vec<usize> =
            (0..n).filter(|&i| self.channels[i].filter.prune(&stats)).collect();
        if active.is_empty() {
            return Ok(out);
        }
        // The filters' columns first; the counters' columns only when some
        // channel matched (as a query decodes its output columns).
        let mut fields: Vec<Field> = Vec::new();
        for &i in &active {
            fields.extend_from_slice(self.channels[i].compiled.fields());
        }
        fields.sort_unstable();
        fields.dedup();
        let mut batch = block.read(&fields, reader)?;
        let rows = block.rows();
        let mut hits: Vec<(usize, Bitmap)> = Vec::with_capacity(active.len());
        for i in active {
            let ch = &self.channels[i];
            let sel = if ch.any {
                Bitmap::ones(rows)
            } else {
                let mut sel = Bitmap::zeros(rows);
                ch.compiled.eval(&batch, ident, &mut sel);
                sel
            };
            if sel.count_ones() > 0 {
                hits.push((i, sel));
            }
        }
        if hits.is_empty() {
            weir_store::recycle(batch);
            return Ok(out);
        }
        let missing: Vec<Field> =
            COUNT_FIELDS.iter().copied().filter(|f| !fields.contains(f)).collect();
        let mut extra = block.read(&missing, reader)?;
        for f in missing {
            if let Some(c) = extra.take_column(f) {
                batch.set_column(f, c);
            }
        }
        let mut complete = false;
        for (i, sel) in hits {
            if count(&batch, &sel, &mut out.totals[i]) && want_rows {
                if !complete {
                    // The rest of the block's columns, once, beside those
                    // already decoded.
                    let rest: Vec<Field> = block
                        .entries()
                        .iter()
                        .filter_map(|e| e.field())
                        .filter(|&f| batch.column(f).is_none())
                        .collect();
                    let mut more = block.read(&rest, reader)?;
                    for f in rest {
                        if let Some(c) = more.take_column(f) {
                            batch.set_column(f, c);
                        }
                    }
                    weir_store::recycle(more);
                    complete = true;
                }
                out.rows[i] = Some(take(&batch, &sel));
            }
        }
        // The decoded vectors go back for the next block to decode into.
        weir_store::recycle(batch);
        weir_store::recycle(extra);
        Ok(out)
    }
}

/// Adds the selected rows to `t` (flows column absent = 1 flow per row, as
/// `weir query` counts); `true` if any row was selected.
fn count(batch: &FlowBatch, sel: &Bitmap, t: &mut SlotTotals) -> bool {
    let u64s = |f: Field| batch.column(f).and_then(|c| c.values.as_u64());
    let (Some(proto), Some(packets), Some(bytes)) =
        (u64s(Field::Proto), u64s(Field::Packets), u64s(Field::Bytes))
    else {
        return false;
    };
    let flows = batch.column(Field::Flows);
    let mut acc = [[0u64; 3]; 4];
    let mut any = false;
    for (wi, &w) in sel.words().iter().enumerate() {
        let mut w = w;
        while w != 0 {
            let i = wi * 64 + w.trailing_zeros() as usize;
            w &= w - 1;
            if i >= proto.len() {
                break;
            }
            any = true;
            let c = ProtoClass::of(proto[i] as u8) as usize;
            let nf = flows.map_or(1, |f| f.get(i).map_or(1, |v| v as u64));
            acc[c][0] += nf;
            acc[c][1] += packets[i];
            acc[c][2] += bytes[i];
        }
    }
    if any {
        for (c, a) in acc.iter().enumerate() {
            let add = Counts { flows: a[0], packets: a[1], bytes: a[2] };
            merge_counts(&mut t.by_class[c], &add);
            merge_counts(&mut t.all, &add);
        }
    }
    any
}

/// Adds `b` into `a` (saturating).
pub fn merge_counts(a: &mut Counts, b: &Counts) {
    a.flows = a.flows.saturating_add(b.flows);
    a.packets = a.packets.saturating_add(b.packets);
    a.bytes = a.bytes.saturating_add(b.bytes);
}

/// Adds the counters of `b` into `a` (class by class).
pub fn merge_totals(a: &mut SlotTotals, b: &SlotTotals) {
    merge_counts(&mut a.all, &b.all);
    for (x, y) in a.by_class.iter_mut().zip(&b.by_class) {
        merge_counts(x, y);
    }
}

/// The rows of `batch` selected by `sel`, every column.
pub fn take(batch: &FlowBatch, sel: &Bitmap) -> FlowBatch {
    let idx: Vec<usize> = sel.iter_ones().filter(|&i| i < batch.rows()).collect();
    let n = idx.len();
    let mut out = FlowBatch::new(n);
    for f in batch.fields() {
        let Some(c) = batch.column(f) else { continue };
        let values = match &c.values {
            Values::U64(v) => Values::U64(idx.iter().map(|&i| v[i]).collect()),
            Values::U128(v) => Values::U128(idx.iter().map(|&i| v[i]).collect()),
        };
        let validity = match &c.validity {
            None => None,
            Some(b) => {
                let mut nb = Bitmap::zeros(n);
                for (j, &i) in idx.iter().enumerate() {
                    if b.get(i) {
                        nb.set(j, true);
                    }
                }
                match nb.count_ones() {
                    0 => continue,
                    k if k == n => None,
                    _ => Some(nb),
                }
            }
        };
        out.set_column(f, Column { values, validity });
    }
    out
}

/// The rows of several batches, one after the other; a column some
/// batches lack has no value in their rows.
pub fn concat(batches: &[FlowBatch]) -> FlowBatch {
    let n: usize = batches.iter().map(FlowBatch::rows).sum();
    let mut out = FlowBatch::new(n);
    for &f in Field::ALL {
        if batches.iter().all(|b| b.column(f).is_none()) {
            continue;
        }
        let wide = f.physical() == Physical::U128;
        let (mut v64, mut v128) = (Vec::new(), Vec::new());
        let mut valid = Bitmap::zeros(n);
        let mut row = 0;
        for b in batches {
            match b.column(f) {
                Some(c) => {
                    match &c.values {
                        Values::U64(v) => v64.extend_from_slice(v),
                        Values::U128(v) => v128.extend_from_slice(v),
                    }
                    for i in 0..b.rows() {
                        if c.is_valid(i) {
                            valid.set(row + i, true);
                        }
                    }
                }
                None if wide => v128.extend(std::iter::repeat_n(0, b.rows())),
                None => v64.extend(std::iter::repeat_n(0, b.rows())),
            }
            row += b.rows();
        }
        let values = if wide { Values::U128(v128) } else { Values::U64(v64) };
        let validity = (valid.count_ones() < n).then_some(valid);
        out.set_column(f, Column { values, validity });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_record::{BatchBuilder, FlowRecord};

    #[test]
    fn take_and_concat_keep_rows_and_gaps() {
        let mut b = BatchBuilder::default();
        let mut rows = Vec::new();
        for i in 0..100u64 {
            let mut r = FlowRecord { first: i, proto: 6, packets: i, ..Default::default() };
            r.src_as = (i % 3 == 0).then_some(i as u32);
            r.src_addr = (i % 2 == 0).then_some(u128::from(i));
            b.push(&r);
            rows.push(r);
        }
        let batch = b.finish();
        let mut sel = Bitmap::zeros(100);
        for i in (0..100).filter(|i| i % 5 == 0) {
            sel.set(i, true);
        }
        let t = take(&batch, &sel);
        let want: Vec<FlowRecord> = rows.iter().step_by(5).cloned().collect();
        assert_eq!(t.records(), want);
        let mut odd = Bitmap::zeros(100);
        odd.set(1, true);
        let o = take(&batch, &odd);
        assert!(o.column(Field::SrcAs).is_none(), "row 1 has no AS");
        let c = concat(&[t.clone(), o.clone(), t.clone()]);
        let mut all = want.clone();
        all.extend(o.records());
        all.extend(want);
        assert_eq!(c.records(), all);
    }
}
