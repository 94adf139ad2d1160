//! Samplers built on [`Rng`]: Zipf popularity, integer Pareto sizes and
//! small weighted mixes. Like the generator itself they use only basic
//! arithmetic, so draws are identical on every platform.

use crate::rng::{Rng, exp, ln};

/// A Zipf sampler over items in rank order: the item of rank `k` (from 0)
/// has weight `1 / (k + 1)^s`.
///
/// A draw takes one uniform number `u` and returns the first item whose
/// cumulative weight exceeds `u`. A guide table (the first candidate rank
/// for each of `n` equal slices of `[0, 1)`) replaces a binary search with
/// a step or two of linear search, and each item sits next to its
/// cumulative weight so that the draw touches two cache lines, not three.
#[derive(Debug, Clone)]
pub(crate) struct Zipf<T> {
    entries: Vec<(f64, T)>,
    guide: Vec<u32>,
}

impl<T: Copy> Zipf<T> {
    /// The sampler over `items` (`1 <= len < 2^32`, most popular first)
    /// with exponent `s`.
    pub(crate) fn new(items: Vec<T>, s: f64) -> Zipf<T> {
        let n = items.len();
        assert!(n > 0 && u32::try_from(n).is_ok(), "Zipf needs 1..2^32 items");
        let mut entries = Vec::with_capacity(n);
        let mut sum = 0.0;
        for (k, item) in items.into_iter().enumerate() {
            sum += exp(-s * ln((k + 1) as f64));
            entries.push((sum, item));
        }
        for e in &mut entries {
            e.0 /= sum;
        }
        entries[n - 1].0 = 1.0;
        // guide[j]: the first rank whose cumulative weight exceeds j / n.
        let mut guide = Vec::with_capacity(n);
        let mut i = 0;
        for j in 0..n {
            let lo = j as f64 / n as f64;
            while entries[i].0 <= lo {
                i += 1;
            }
            guide.push(i as u32);
        }
        Zipf { entries, guide }
    }

    /// The rank of one draw.
    #[inline]
    pub(crate) fn rank(&self, rng: &mut Rng) -> usize {
        let u = rng.f64();
        let n = self.entries.len();
        // j / n <= u, so the answer is at or after guide[j]; the last
        // cumulative weight is 1 > u.
        let j = ((u * n as f64) as usize).min(n - 1);
        let mut i = self.guide[j] as usize;
        while self.entries[i].0 <= u {
            i += 1;
        }
        i
    }

    /// One item.
    #[inline]
    pub(crate) fn sample(&self, rng: &mut Rng) -> T {
        self.entries[self.rank(rng)].1
    }
}

/// `floor(X)` for a Pareto variable `X` with minimum 1 and shape `alpha`:
/// an integer at least 1 with `P(result >= k) = k^-alpha`.
///
/// Uses the same single uniform number as the continuous inverse transform,
/// but compares it against a table of `k^-alpha` first, so the common small
/// results cost no logarithm or exponential.
#[derive(Debug, Clone)]
pub(crate) struct ParetoFloor {
    alpha: f64,
    /// `thresholds[k - 1] = k^-alpha` for `k` in `1..=TABLE`.
    thresholds: [f64; ParetoFloor::TABLE],
}

impl ParetoFloor {
    const TABLE: usize = 64;

    pub(crate) fn new(alpha: f64) -> ParetoFloor {
        let mut thresholds = [0.0; Self::TABLE];
        for (k, t) in thresholds.iter_mut().enumerate() {
            *t = exp(-alpha * ln((k + 1) as f64));
        }
        ParetoFloor { alpha, thresholds }
    }

    /// One value, at least 1 (saturating at `u64::MAX`).
    #[inline]
    pub(crate) fn sample(&self, rng: &mut Rng) -> u64 {
        // X = v^(-1/alpha) with v in (0, 1], and X >= k exactly when v <= k^-alpha.
        let v = 1.0 - rng.f64();
        let last = self.thresholds[Self::TABLE - 1];
        if v > last {
            // The result is the number of thresholds at or above v (>= 1, < TABLE).
            self.thresholds.iter().take_while(|&&t| t >= v).count() as u64
        } else {
            (exp(-ln(v) / self.alpha) as u64).max(Self::TABLE as u64)
        }
    }
}

/// A discrete distribution over a few values given integer weights, as a
/// lookup table with one slot per unit of weight: O(1) draws.
#[derive(Debug, Clone)]
pub(crate) struct Weighted<T> {
    slots: Vec<T>,
}

impl<T: Copy> Weighted<T> {
    /// The distribution where `value` has probability `weight / total weight`.
    pub(crate) fn new(items: &[(T, u16)]) -> Weighted<T> {
        let slots: Vec<T> =
            items.iter().flat_map(|&(v, w)| std::iter::repeat_n(v, usize::from(w))).collect();
        assert!(!slots.is_empty(), "weighted table without weight");
        Weighted { slots }
    }

    /// One value.
    #[inline]
    pub(crate) fn sample(&self, rng: &mut Rng) -> T {
        self.slots[rng.below(self.slots.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_floor_matches_the_continuous_law() {
        let p = ParetoFloor::new(1.2);
        let mut r = Rng::new(9);
        let n = 400_000;
        let mut at_least = [0usize; 4]; // >= 1, 2, 10, 100
        for _ in 0..n {
            let x = p.sample(&mut r);
            assert!(x >= 1);
            for (i, k) in [1, 2, 10, 100].into_iter().enumerate() {
                at_least[i] += usize::from(x >= k);
            }
        }
        assert_eq!(at_least[0], n);
        for (i, k) in [(1, 2.0f64), (2, 10.0), (3, 100.0)] {
            let want = k.powf(-1.2);
            let got = at_least[i] as f64 / n as f64;
            assert!((got - want).abs() < 0.05 * want, "P(X >= {k}) = {got}, want {want}");
        }
        // The slow path agrees with the table at its edge.
        let mut same = r.clone();
        for _ in 0..1000 {
            let x = p.sample(&mut r);
            let v = 1.0 - same.f64();
            let want = (exp(-ln(v) / 1.2) as u64).max(1);
            assert!(x.abs_diff(want) <= 1, "{x} vs {want}");
        }
    }

    #[test]
    fn zipf_prefers_low_ranks() {
        let z = Zipf::new((0..1000).collect(), 1.1);
        let mut r = Rng::new(3);
        let mut counts = vec![0u32; 1000];
        for _ in 0..200_000 {
            counts[z.sample(&mut r)] += 1;
            assert_eq!(z.entries[counts.len() - 1].1, 999);
        }
        assert!(counts[0] > 4 * counts[9]);
        // The guide table gives exactly what a binary search would.
        for _ in 0..100_000 {
            let mut a = r.clone();
            let u = a.f64();
            let want = z.entries.partition_point(|e| e.0 <= u);
            assert_eq!(z.rank(&mut r), want);
        }
        let one = Zipf::new(vec!['x'], 1.0);
        assert_eq!(one.sample(&mut r), 'x');
        assert!(counts[9] > counts[99]);
        // Weight ratio of rank 0 to rank 1 is 2^1.1 = 2.14.
        let ratio = f64::from(counts[0]) / f64::from(counts[1]);
        assert!((ratio - 2.14).abs() < 0.1, "{ratio}");
    }

    #[test]
    fn weighted_follows_weights() {
        let w = Weighted::new(&[(1u8, 700), (2, 200), (3, 100)]);
        let mut r = Rng::new(5);
        let mut c = [0u32; 4];
        for _ in 0..100_000 {
            c[usize::from(w.sample(&mut r))] += 1;
        }
        assert!((69_000..71_000).contains(&c[1]) && (9_000..11_000).contains(&c[3]), "{c:?}");
    }
}
