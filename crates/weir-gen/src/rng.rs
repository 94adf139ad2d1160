//! A small, portable pseudo-random toolkit.
//!
//! [`Rng`] is xoshiro256++ seeded through splitmix64. Everything that turns
//! its bits into other distributions uses only `+ - * /`, comparisons and
//! exact operations (integer conversions, bit manipulation), never the
//! platform's libm: [`ln`] and [`exp`] below are our own. IEEE 754 makes those basic
//! operations exact-rounded everywhere, and Rust never contracts them into
//! fused multiply-adds, so one seed yields the same numbers on every
//! platform, build and optimisation level.

/// ln(2).
const LN2: f64 = std::f64::consts::LN_2;
/// High and low parts of ln(2) for the range reduction in [`exp`] (the
/// fdlibm split: `LN2_HI` has its low 21 bits zero, so `k * LN2_HI` is exact).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// `1 / (2k + 1)`: the series of `atanh`, used by [`ln`].
const INV_ODD: [f64; 12] = {
    let mut a = [0.0; 12];
    let mut k = 0;
    while k < 12 {
        a[k] = 1.0 / (2 * k + 1) as f64;
        k += 1;
    }
    a
};

/// `1 / k!`: the series of `exp`.
const INV_FACT: [f64; 14] = {
    let mut a = [1.0; 14];
    let mut k = 1;
    while k < 14 {
        a[k] = a[k - 1] / k as f64;
        k += 1;
    }
    a
};

/// splitmix64: expands one `u64` seed into well-mixed state words.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// xoshiro256++ (Blackman & Vigna), the generator behind every draw.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is four splitmix64 outputs of `seed`.
    pub(crate) fn new(seed: u64) -> Rng {
        let mut sm = SplitMix64::new(seed);
        Rng { s: [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()] }
    }

    /// The next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (Lemire's multiply-and-reject, unbiased); 0 if `n == 0`.
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo` if `hi < lo`).
    #[inline]
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    #[inline]
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p`.
    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Exponential with mean `mean`.
    #[inline]
    pub(crate) fn exponential(&mut self, mean: f64) -> f64 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        -ln(1.0 - self.f64()) * mean
    }
}

/// Natural logarithm of a positive finite `x` (`-inf` for 0 and below),
/// accurate to a few ulps, built from basic arithmetic only.
pub(crate) fn ln(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let mut x = x;
    let mut e: i64 = 0;
    if x < f64::MIN_POSITIVE {
        // Subnormal: scale into the normal range first.
        x *= (1u64 << 54) as f64;
        e = -54;
    }
    let bits = x.to_bits();
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716.
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    e as f64 * LN2 + 2.0 * s * poly(&INV_ODD, z)
}

/// `e^x`, accurate to a few ulps, built from basic arithmetic only.
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.78 {
        return f64::INFINITY;
    }
    if x < -745.2 {
        return 0.0;
    }
    // x = k ln2 + r, |r| <= ln2 / 2.
    // k = floor(t) without a libm call (|t| < 1100, so `as` is exact on integers).
    let t = x * std::f64::consts::LOG2_E + 0.5;
    let mut k = t as i64;
    if k as f64 > t {
        k -= 1;
    }
    let kf = k as f64;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    // Taylor series to r^13 / 13!: the error is below 2e-16 for |r| <= 0.35.
    let p = poly(&INV_FACT, r);
    // Scale by 2^k in two steps so that subnormal and near-overflow results work.
    let half = k / 2;
    p * pow2(half) * pow2(k - half)
}

/// `c[0] + c[1] x + c[2] x^2 + ...` by Estrin's scheme: pairs of terms
/// are combined with `x`, then pairs of those with `x^2`, and so on, which
/// keeps the dependency chain short. The order of operations is fixed, so
/// the result is the same everywhere.
#[inline(always)]
fn poly<const N: usize>(c: &[f64; N], x: f64) -> f64 {
    let mut buf = *c;
    let mut len = N;
    let mut xp = x;
    while len > 1 {
        let half = len.div_ceil(2);
        for i in 0..half {
            buf[i] = if 2 * i + 1 < len { buf[2 * i] + buf[2 * i + 1] * xp } else { buf[2 * i] };
        }
        len = half;
        xp *= xp;
    }
    buf[0]
}

/// `2^k` for `-1022 <= k <= 1023`.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_matches_reference() {
        // Reference: xoshiro256++ with state {1, 2, 3, 4} (from the C code).
        let mut r = Rng { s: [1, 2, 3, 4] };
        let expect = [41943041u64, 58720359, 3588806011781223, 3591011842654386];
        for e in expect {
            assert_eq!(r.next_u64(), e);
        }
        // splitmix64 reference output for seed 1234567.
        let mut sm = SplitMix64::new(1234567);
        assert_eq!(sm.next_u64(), 6457827717110365317);
        assert_eq!(sm.next_u64(), 3203168211198807973);
    }

    #[test]
    fn ln_and_exp_are_accurate() {
        for &x in &[1e-300, 1e-10, 0.001, 0.5, 0.7, 1.0, 1.5, 2.0, 10.0, 12345.678, 1e300] {
            let got = ln(x);
            let want = x.ln();
            assert!((got - want).abs() <= 4.0 * f64::EPSILON * want.abs().max(1.0), "ln({x})");
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        for &x in &[-700.0, -20.0, -1.0, -1e-9, 0.0, 0.3, 1.0, 5.5, 100.0, 700.0] {
            let got = exp(x);
            let want = x.exp();
            assert!((got - want).abs() <= 4.0 * f64::EPSILON * want, "exp({x}): {got} {want}");
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        assert!(exp(-740.0) > 0.0);
    }

    #[test]
    fn uniform_helpers_stay_in_range() {
        let mut r = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..100_000 {
            let v = r.below(10);
            seen[v as usize] += 1;
            let f = r.f64();
            assert!((0.0..1.0).contains(&f));
            let x = r.range(5, 7);
            assert!((5..=7).contains(&x));
        }
        assert!(seen.iter().all(|&c| (9_000..11_000).contains(&c)), "{seen:?}");
        assert_eq!(r.below(0), 0);
        assert_eq!(r.range(3, 3), 3);
    }

    #[test]
    fn exponential_has_expected_mean() {
        let mut r = Rng::new(11);
        let n = 200_000;
        let mean: f64 = (0..n).map(|_| r.exponential(2.0)).sum::<f64>() / n as f64;
        assert!((mean - 2.0).abs() < 0.03, "{mean}");
    }
}
