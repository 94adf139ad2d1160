//! A small, generic parallel helper for the crates above the engine
//! (profiles build many channels over many blocks at once). rayon stays
//! confined to this crate; callers get an ordered parallel map.

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

    /// Like [`ParPool::map`], with a per-worker scratch value made by
    /// `init` (e.g. a decode buffer) handed to `f` mutably.
    pub fn map_with<T, S, R, I, F>(&self, items: &[T], init: I, f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        I: Fn() -> S + Sync + Send,
        F: Fn(&mut S, &T) -> R + Sync + Send,
    {
        self.pool.install(|| items.par_iter().map_init(&init, |s, t| f(s, t)).collect())
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
            let out = pool.map_with(&items, Vec::<u64>::new, |s, x| {
                s.push(*x);
                *x + 1
            });
            assert_eq!(out[999], 1000);
        }
    }
}
