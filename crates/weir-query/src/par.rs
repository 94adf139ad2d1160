//! A small, generic parallel helper for the crates above the engine
//! (profiles build many channels over many blocks at once). rayon stays
//! confined to this crate; callers get an ordered parallel map.

use std::sync::Mutex;

use rayon::prelude::*;

use crate::error::QueryError;

/// A pool of worker threads that maps slices in parallel, keeping order.
pub struct ParPool {
    pool: rayon::ThreadPool,
}

impl std::fmt::Debug for ParPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParPool").field("threads", &self.threads()).finish()
    }
}

impl ParPool {
    /// A pool of `threads` workers (`None` = one per core).
    pub fn new(threads: Option<usize>) -> Result<ParPool, QueryError> {
        let mut b = rayon::ThreadPoolBuilder::new();
        if let Some(n) = threads {
            b = b.num_threads(n.max(1));
        }
        let pool = b.build().map_err(|e| QueryError::Threads(e.to_string()))?;
        Ok(ParPool { pool })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// `f` applied to every item, in parallel; results in item order.
    pub fn map<T, R, F>(&self, items: &[T], f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync + Send,
    {
        self.pool.install(|| items.par_iter().map(&f).collect())
    }

    /// Like [`ParPool::map`], with a scratch value (e.g. a decode buffer)
    /// handed to `f` mutably. Scratch values are taken from `scratch` and
    /// put back after use, so they are made (by `init`) about once per
    /// worker and reused across calls, not once per task rayon splits off.
    pub fn map_with<T, S, R, I, F>(
        &self,
        items: &[T],
        scratch: &Scratch<S>,
        init: I,
        f: F,
    ) -> Vec<R>
    where
        T: Sync,
        S: Send,
        R: Send,
        I: Fn() -> S + Sync + Send,
        F: Fn(&mut S, &T) -> R + Sync + Send,
    {
        self.pool.install(|| {
            items
                .par_iter()
                .map_init(
                    || Lease { value: scratch.take(), home: scratch },
                    |lease, t| f(lease.value.get_or_insert_with(&init), t),
                )
                .collect()
        })
    }
}

/// Reusable scratch values (decompression contexts, buffers) for
/// [`ParPool::map_with`] and for rayon's `map_init` (which makes a value
/// per split of the work, several per window of blocks: leasing them from
/// here makes them about once per worker, without the allocations and
/// page faults).
#[derive(Debug, Default)]
pub struct Scratch<S> {
    free: Mutex<Vec<S>>,
}

impl<S> Scratch<S> {
    /// An empty set (values are made on first use).
    pub fn new() -> Scratch<S> {
        Scratch { free: Mutex::new(Vec::new()) }
    }

    /// A value on loan, made by `make` when none is free; it comes back
    /// when the lease is dropped.
    pub fn lease(&self, make: impl FnOnce() -> S) -> Lease<'_, S> {
        Lease { value: Some(self.take().unwrap_or_else(make)), home: self }
    }

    fn take(&self) -> Option<S> {
        self.free.lock().ok().and_then(|mut v| v.pop())
    }

    fn put(&self, s: S) {
        if let Ok(mut v) = self.free.lock() {
            v.push(s);
        }
    }
}

/// A scratch value on loan (to one rayon task); returned on drop.
pub struct Lease<'a, S> {
    value: Option<S>,
    home: &'a Scratch<S>,
}

impl<S> std::ops::Deref for Lease<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        self.value.as_ref().expect("made by Scratch::lease")
    }
}

impl<S> std::ops::DerefMut for Lease<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        self.value.as_mut().expect("made by Scratch::lease")
    }
}

impl<S> Drop for Lease<'_, S> {
    fn drop(&mut self) {
        if let Some(s) = self.value.take() {
            self.home.put(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_in_order_on_any_thread_count() {
        let items: Vec<u64> = (0..1000).collect();
        for n in [1, 3] {
            let pool = ParPool::new(Some(n)).unwrap();
            assert_eq!(pool.threads(), n);
            let out = pool.map(&items, |x| x * 2);
            assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
            let scratch = Scratch::new();
            let made = std::sync::atomic::AtomicUsize::new(0);
            for _ in 0..3 {
                let init = || {
                    made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Vec::<u64>::new()
                };
                let out = pool.map_with(&items, &scratch, init, |s, x| {
                    s.push(*x);
                    *x + 1
                });
                assert_eq!(out[999], 1000);
            }
            let made = made.into_inner();
            assert!(made <= n, "{made} scratch values for {n} threads");
        }
    }
}
