//! Column vectors handed back after use, reused by the next decodes.
//!
//! A block decodes into fresh 256–512 KiB vectors per column. Allocating
//! and freeing them for every block makes the allocator return the memory
//! to the kernel and fault it in again, which cost a scan about an eighth
//! of its time. Readers that are done with a batch give it back with
//! [`recycle`]; decoding takes from here first. The pool is small and
//! bounded, so memory stays flat.

use std::sync::Mutex;

use weir_record::{FlowBatch, Values};

/// Vectors kept per type; beyond this, recycled vectors are freed.
const MAX_SPARE: usize = 64;

static SPARE_U64: Mutex<Vec<Vec<u64>>> = Mutex::new(Vec::new());
static SPARE_U128: Mutex<Vec<Vec<u128>>> = Mutex::new(Vec::new());

/// An empty vector with room for `rows` values, reusing a recycled one
/// when there is one (for decoders that fill it with `extend`).
pub(crate) fn empty_u64(rows: usize) -> Vec<u64> {
    match SPARE_U64.lock().ok().and_then(|mut s| s.pop()) {
        Some(mut v) => {
            v.clear();
            v.reserve(rows);
            v
        }
        None => Vec::with_capacity(rows),
    }
}

/// As [`empty_u64`] for 128-bit values.
pub(crate) fn empty_u128(rows: usize) -> Vec<u128> {
    match SPARE_U128.lock().ok().and_then(|mut s| s.pop()) {
        Some(mut v) => {
            v.clear();
            v.reserve(rows);
            v
        }
        None => Vec::with_capacity(rows),
    }
}

/// A vector of `rows` zeros, reusing a recycled one when there is one.
pub(crate) fn zeros_u128(rows: usize) -> Vec<u128> {
    match SPARE_U128.lock().ok().and_then(|mut s| s.pop()) {
        Some(mut v) => {
            v.clear();
            v.resize(rows, 0);
            v
        }
        None => vec![0; rows],
    }
}

/// Gives a vector back.
pub(crate) fn give_u64(v: Vec<u64>) {
    if v.capacity() == 0 {
        return;
    }
    if let Ok(mut s) = SPARE_U64.lock()
        && s.len() < MAX_SPARE
    {
        s.push(v);
    }
}

fn give_u128(v: Vec<u128>) {
    if v.capacity() == 0 {
        return;
    }
    if let Ok(mut s) = SPARE_U128.lock()
        && s.len() < MAX_SPARE
    {
        s.push(v);
    }
}

/// Hands the column vectors of a batch that is no longer needed back for
/// the next blocks to decode into. Optional: a batch that is simply
/// dropped is freed as usual.
pub fn recycle(mut batch: FlowBatch) {
    let fields: Vec<_> = batch.fields().collect();
    for f in fields {
        match batch.take_column(f).map(|c| c.values) {
            Some(Values::U64(v)) => give_u64(v),
            Some(Values::U128(v)) => give_u128(v),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_record::{Column, Field};

    #[test]
    fn recycled_vectors_come_back_zeroed_and_sized() {
        let mut b = FlowBatch::new(3);
        b.set_column(Field::Bytes, Column::full(Values::U64(vec![7, 8, 9])));
        b.set_column(Field::SrcAddr, Column::full(Values::U128(vec![1, 2, 3])));
        recycle(b);
        // Other tests may race for the pool; whatever comes back is zeroed.
        assert!(empty_u64(5).is_empty());
        assert_eq!(zeros_u128(2), vec![0; 2]);
    }
}
