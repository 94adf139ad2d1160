//! A fast keyed hasher for the decoder's maps (templates, domains, sFlow
//! sample sequences), which are looked up once per data set or sample, and
//! for weir-capture's flow cache (once per packet):
//! SipHash cost more than decoding a small data set. Keys come from the
//! network, so the hash is seeded per process from the standard library's
//! random keys (an attacker cannot precompute colliding keys), and every
//! map it serves is bounded.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;

const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// Builds [`FastHasher`]s with the process's random seed.
#[derive(Debug, Clone, Copy)]
pub struct FastState(u64);

impl Default for FastState {
    fn default() -> FastState {
        static SEED: OnceLock<u64> = OnceLock::new();
        FastState(*SEED.get_or_init(|| RandomState::new().hash_one(0x5745_4952u64) | 1))
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

/// Multiply-and-fold over the written words.
#[derive(Debug, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn mix(&mut self, x: u64) {
        let m = u128::from(self.0 ^ x) * u128::from(MUL);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.mix(i as u64);
        self.mix((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let m = u128::from(self.0) * u128::from(MUL ^ 0xff51_afd7_ed55_8ccd);
        (m as u64) ^ ((m >> 64) as u64)
    }
}

/// A `HashMap` with [`FastState`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_small_keys_and_is_seeded() {
        let s = FastState::default();
        let mut seen: Vec<u64> = (0u16..1024).map(|i| s.hash_one(i) >> 54).collect();
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() > 500, "top 10 bits of 1024 ids: {} distinct", seen.len());
        assert_ne!(s.hash_one(1u32), FastState(2).hash_one(1u32));
        assert_ne!(s.hash_one([1u8, 2, 3]), s.hash_one([1u8, 2, 4]));
    }
}
