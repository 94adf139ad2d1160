//! Sort values for `-O` and `-s …/order`, and bounded top-N selection.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use weir_record::FlowRecord;

use crate::model::{Direction, Order, OrderKey};

/// The value `key` orders a record by: counters are in + out sums, rates
/// use the duration in milliseconds (0 when the duration is 0), as nfdump.
pub fn order_value(key: OrderKey, r: &FlowRecord) -> u128 {
    counters_value(
        key,
        r.first,
        r.last,
        r.flows.unwrap_or(1),
        r.packets.saturating_add(r.out_packets.unwrap_or(0)),
        r.bytes.saturating_add(r.out_bytes.unwrap_or(0)),
    )
}

/// [`order_value`] from the parts.
pub(crate) fn counters_value(
    key: OrderKey,
    first: u64,
    last: u64,
    flows: u64,
    packets: u64,
    bytes: u64,
) -> u128 {
    let dur = u128::from(last.saturating_sub(first));
    match key {
        OrderKey::Flows => u128::from(flows),
        OrderKey::Packets => u128::from(packets),
        OrderKey::Bytes => u128::from(bytes),
        OrderKey::Pps => (u128::from(packets) * 1000).checked_div(dur).unwrap_or(0),
        OrderKey::Bps => (u128::from(bytes) * 8000).checked_div(dur).unwrap_or(0),
        OrderKey::Bpp => u128::from(bytes.checked_div(packets).unwrap_or(0)),
        OrderKey::Tstart => u128::from(first),
        OrderKey::Tend => u128::from(last),
        OrderKey::Duration => dur,
    }
}

/// A rank where smaller is better: the order's value, flipped for
/// descending orders.
#[inline]
pub(crate) fn rank(order: Order, value: u128) -> u128 {
    match order.direction {
        Direction::Ascending => value,
        Direction::Descending => u128::MAX - value,
    }
}

/// An item with its sort key (smaller first).
struct Ranked<K, T> {
    key: K,
    item: T,
}

impl<K: Ord, T> PartialEq for Ranked<K, T> {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl<K: Ord, T> Eq for Ranked<K, T> {}
impl<K: Ord, T> PartialOrd for Ranked<K, T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<K: Ord, T> Ord for Ranked<K, T> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key.cmp(&o.key)
    }
}

/// Keeps the best `n` items (`None` = all) by key, smallest first.
pub(crate) struct TopN<K, T> {
    n: Option<usize>,
    heap: BinaryHeap<Ranked<K, T>>,
}

impl<K: Ord + Copy, T> TopN<K, T> {
    pub fn new(n: Option<usize>) -> TopN<K, T> {
        TopN { n, heap: BinaryHeap::new() }
    }

    #[inline]
    pub fn push(&mut self, key: K, item: T) {
        if let Some(n) = self.n {
            if n == 0 {
                return;
            }
            if self.heap.len() >= n {
                if self.heap.peek().is_some_and(|w| key >= w.key) {
                    return;
                }
                self.heap.pop();
            }
        }
        self.heap.push(Ranked { key, item });
    }

    /// Whether an item with this key would be kept.
    #[inline]
    pub fn would_keep(&self, key: &K) -> bool {
        match self.n {
            Some(0) => false,
            Some(n) if self.heap.len() >= n => self.heap.peek().is_none_or(|w| *key < w.key),
            _ => true,
        }
    }

    pub fn merge(&mut self, other: TopN<K, T>) {
        for r in other.heap {
            self.push(r.key, r.item);
        }
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<T> {
        self.heap.into_sorted_vec().into_iter().map(|r| r.item).collect()
    }
}
