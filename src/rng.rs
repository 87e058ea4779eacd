//! A small deterministic generator (SplitMix64) so that data generated from a seed is identical
//! across platforms, crate versions and runs; `rand`'s `StdRng` makes no such promise.

#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed ^ 0x5DEE_CE66_D1CE_4E5B }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n); `n` must be positive. Uses rejection to avoid modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// Uniform integer in [lo, hi).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// `k` distinct values drawn uniformly from `items` (partial Fisher–Yates), in draw order.
    pub fn choose_distinct<T: Copy>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        for i in 0..k {
            let j = i + self.below((pool.len() - i) as u64) as usize;
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool
    }

    /// `k` distinct indices drawn without replacement with probability ∝ `weights`, by successive
    /// draws with renormalisation (as numpy's `choice(replace=False, p=...)`).
    pub fn weighted_distinct(&mut self, weights: &[f64], k: usize) -> Vec<usize> {
        let mut w = weights.to_vec();
        let mut chosen = Vec::with_capacity(k);
        for _ in 0..k {
            let total: f64 = w.iter().sum();
            let mut u = self.next_f64() * total;
            let mut pick = w.iter().rposition(|&x| x > 0.0).unwrap_or(0);
            for (i, &x) in w.iter().enumerate() {
                if x > 0.0 && u < x {
                    pick = i;
                    break;
                }
                u -= x;
            }
            chosen.push(pick);
            w[pick] = 0.0;
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            let x = a.range(-3, 9);
            assert_eq!(x, b.range(-3, 9));
            assert!((-3..9).contains(&x));
        }
    }

    #[test]
    fn weighted_distinct_never_repeats() {
        let mut r = SplitMix64::new(1);
        let w: Vec<f64> = (1..=20).map(|g| (g as f64).powf(-0.99)).collect();
        for _ in 0..200 {
            let mut picks = r.weighted_distinct(&w, 10);
            picks.sort();
            picks.dedup();
            assert_eq!(picks.len(), 10);
        }
    }
}
