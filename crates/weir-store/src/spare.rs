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

/// The value types with a pool.
pub(crate) trait Pooled: Sized + 'static {
    fn pool() -> &'static Mutex<Vec<Vec<Self>>>;
}

impl Pooled for u64 {
    fn pool() -> &'static Mutex<Vec<Vec<u64>>> {
        &SPARE_U64
    }
}

impl Pooled for u128 {
    fn pool() -> &'static Mutex<Vec<Vec<u128>>> {
        &SPARE_U128
    }
}

/// An empty vector with room for `rows` values, reusing a recycled one
/// when there is one (for decoders that fill it with `extend`).
pub(crate) fn empty<T: Pooled>(rows: usize) -> Vec<T> {
    match T::pool().lock().ok().and_then(|mut s| s.pop()) {
        Some(mut v) => {
            v.clear();
            v.reserve(rows);
            v
        }
        None => Vec::with_capacity(rows),
    }
}

/// Gives a vector back (freed when the pool is full).
pub(crate) fn give<T: Pooled>(v: Vec<T>) {
    if v.capacity() == 0 {
        return;
    }
    if let Ok(mut s) = T::pool().lock()
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
            Some(Values::U64(v)) => give(v),
            Some(Values::U128(v)) => give(v),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_record::{Column, Field};

    #[test]
    fn recycled_vectors_come_back_empty_and_sized() {
        let mut b = FlowBatch::new(3);
        b.set_column(Field::Bytes, Column::full(Values::U64(vec![7, 8, 9])));
        b.set_column(Field::SrcAddr, Column::full(Values::U128(vec![1, 2, 3])));
        recycle(b);
        // Other tests may race for the pool; whatever comes back is zeroed.
        assert!(empty::<u64>(5).is_empty());
        let v = empty::<u128>(2);
        assert!(v.is_empty() && v.capacity() >= 2);
    }
}
