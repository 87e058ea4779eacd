//! Multi-query associative recall (MQAR), exactly as Zoology's `multiquery_ar` generates it
//! (Arora et al. 2023, HazyResearch/zoology `zoology/data/associative_recall.py`):
//!
//! - keys are drawn from [1, V/2) and values from [V/2, V), K distinct of each per example,
//!   written as an interleaved context `k1 v1 k2 v2 …` of 2K tokens;
//! - in the remaining L − 2K positions each key appears once as a query, at even offset 2g
//!   after the context, with the gaps g drawn without replacement from [0, (L − 2K)/2) with
//!   probability ∝ (g+1)^(a−1), a = 0.01 (queries cluster near the context);
//! - the target at a query position is the key's value; every other position is a random token
//!   in [0, V) and has no target (excluded from loss and accuracy).
use super::{Data, TaskData, TaskInfo, TokenSplit, IGNORE};
use crate::models::TaskIo;
use crate::params::{ParamError, ParamMap};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// Bounds that keep a typo from allocating the machine away.
const MAX_VOCAB: i64 = 1 << 24;
const MAX_TOKENS: u128 = 1 << 31;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqarConfig {
    /// Vocabulary size V (keys use the lower half, values the upper half). Must exceed seq_len.
    pub vocab_size: i64,
    /// Sequence length L (even).
    pub seq_len: i64,
    /// Key–value pairs K per example; 4·K ≤ L.
    pub num_kv_pairs: i64,
    pub train_examples: usize,
    pub test_examples: usize,
    /// Exponent a of the gap distribution p(g) ∝ (g+1)^(a−1).
    pub power_a: f64,
    /// Fill non-query positions with random tokens (Zoology's default) instead of 0.
    pub random_non_queries: bool,
    /// Seed of the data; when absent the job's seed is used.
    pub data_seed: Option<u64>,
}

impl Default for MqarConfig {
    fn default() -> Self {
        MqarConfig {
            vocab_size: 8192,
            seq_len: 64,
            num_kv_pairs: 4,
            train_examples: 20_000,
            test_examples: 1_000,
            power_a: 0.01,
            random_non_queries: true,
            data_seed: None,
        }
    }
}

impl MqarConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.seq_len < 4 || self.seq_len % 2 != 0 {
            return Err(("seq_len", format!("must be even and ≥ 4, got {}", self.seq_len)));
        }
        if self.vocab_size <= self.seq_len {
            return Err(("vocab_size", format!("must exceed seq_len = {}, got {}", self.seq_len, self.vocab_size)));
        }
        if self.num_kv_pairs < 1 || 4 * self.num_kv_pairs > self.seq_len {
            return Err((
                "num_kv_pairs",
                format!("must be ≥ 1 with 4·K ≤ seq_len = {}, got {}", self.seq_len, self.num_kv_pairs),
            ));
        }
        if self.num_kv_pairs > self.vocab_size / 2 - 1 {
            return Err((
                "num_kv_pairs",
                format!("exceeds the {} distinct keys of vocab_size", self.vocab_size / 2 - 1),
            ));
        }
        if self.train_examples == 0 {
            return Err(("train_examples", "must be at least 1".into()));
        }
        if self.test_examples == 0 {
            return Err(("test_examples", "must be at least 1".into()));
        }
        if self.vocab_size > MAX_VOCAB {
            return Err(("vocab_size", format!("must be at most {MAX_VOCAB}, got {}", self.vocab_size)));
        }
        let tokens = (self.train_examples + self.test_examples) as u128 * self.seq_len as u128;
        if tokens > MAX_TOKENS {
            return Err((
                "train_examples",
                format!("(train + test examples) × seq_len = {tokens} tokens exceeds the {MAX_TOKENS} this generator holds in memory"),
            ));
        }
        if !(self.power_a > 0.0 && self.power_a.is_finite()) {
            return Err(("power_a", format!("must be positive, got {}", self.power_a)));
        }
        Ok(())
    }

    pub fn io(&self) -> TaskIo {
        TaskIo::per_token(self.vocab_size, self.vocab_size, self.seq_len, true)
    }
}

/// Generates `n` examples. Deterministic in (`cfg`, `seed`).
pub fn generate(cfg: &MqarConfig, n: usize, seed: u64) -> TokenSplit {
    let mut rng = SplitMix64::new(seed);
    let (v, l, k) = (cfg.vocab_size, cfg.seq_len as usize, cfg.num_kv_pairs as usize);
    let key_choices: Vec<i64> = (1..v / 2).collect();
    let value_choices: Vec<i64> = (v / 2..v).collect();
    let context = 2 * k;
    let space = (l - context) / 2;
    let weights: Vec<f64> = (1..=space).map(|g| cfg.power_a * (g as f64).powf(cfg.power_a - 1.0)).collect();

    let mut inputs = Vec::with_capacity(n * l);
    let mut targets = Vec::with_capacity(n * l);
    for _ in 0..n {
        let keys = rng.choose_distinct(&key_choices, k);
        let values = rng.choose_distinct(&value_choices, k);
        let gaps = rng.weighted_distinct(&weights, k);
        let mut x = vec![0i64; l];
        let mut y = vec![IGNORE; l];
        for i in 0..k {
            x[2 * i] = keys[i];
            x[2 * i + 1] = values[i];
            let q = context + 2 * gaps[i];
            x[q] = keys[i];
            y[q] = values[i];
        }
        if cfg.random_non_queries {
            for t in x.iter_mut().filter(|t| **t == 0) {
                *t = rng.range(0, v);
            }
        }
        inputs.extend_from_slice(&x);
        targets.extend_from_slice(&y);
    }
    TokenSplit::per_token(inputs, targets, n, l)
}

fn config(params: &serde_json::Value) -> anyhow::Result<MqarConfig> {
    Ok(serde_json::from_value(params.clone())?)
}

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    super::resolve_validated(combo, MqarConfig::validate)
}

fn build(params: &serde_json::Value, ctx: super::BuildContext) -> anyhow::Result<TaskData> {
    let cfg = config(params)?;
    let sizes = (cfg.train_examples, cfg.test_examples);
    let (train, test) = super::generate_splits(cfg.data_seed, ctx.seed, sizes, |n, s| generate(&cfg, n, s));
    Ok(TaskData { train, val: None, test, evals: Vec::new(), io: cfg.io(), lr_override: None, lm: None })
}

pub const INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::MQAR,
    resolve,
    io: |p| Ok(config(p)?.io()),
    build: |params, ctx| build(params, ctx).map(Data::Tokens),
};

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: i64, l: i64, k: i64) -> MqarConfig {
        MqarConfig { vocab_size: v, seq_len: l, num_kv_pairs: k, ..Default::default() }
    }

    #[test]
    fn keys_values_and_queries_follow_zoology() {
        let c = cfg(128, 64, 8);
        let data = generate(&c, 300, 5);
        assert_eq!(data.inputs.len(), 300 * 64);
        for i in 0..data.n {
            let (x, y) = data.example(i);
            let keys: Vec<i64> = (0..8).map(|j| x[2 * j]).collect();
            let values: Vec<i64> = (0..8).map(|j| x[2 * j + 1]).collect();
            assert!(keys.iter().all(|k| (1..64).contains(k)), "key out of [1, V/2): {keys:?}");
            assert!(values.iter().all(|v| (64..128).contains(v)), "value out of [V/2, V): {values:?}");
            let mut dk = keys.clone();
            dk.sort();
            dk.dedup();
            let mut dv = values.clone();
            dv.sort();
            dv.dedup();
            assert_eq!((dk.len(), dv.len()), (8, 8), "keys and values distinct per example");
            // labelled positions: exactly one per key, after the context, at even offsets,
            // holding the key with its value as target
            let labelled: Vec<usize> = (0..64).filter(|&p| y[p] != IGNORE).collect();
            assert_eq!(labelled.len(), 8);
            let mut queried: Vec<i64> = labelled.iter().map(|&p| x[p]).collect();
            for &p in &labelled {
                assert!(p >= 16 && (p - 16) % 2 == 0, "query at {p}");
                let j = keys.iter().position(|&k| k == x[p]).expect("query is a key");
                assert_eq!(y[p], values[j]);
            }
            queried.sort();
            assert_eq!(queried, dk, "each key queried once");
            assert!(x.iter().all(|t| (0..128).contains(t)));
        }
    }

    #[test]
    fn deterministic_by_seed() {
        let c = cfg(64, 32, 4);
        assert_eq!(generate(&c, 50, 9), generate(&c, 50, 9));
        assert_ne!(generate(&c, 50, 9).inputs, generate(&c, 50, 10).inputs);
    }

    #[test]
    fn non_query_positions_random_or_zero() {
        let mut c = cfg(64, 32, 4);
        c.random_non_queries = false;
        let data = generate(&c, 20, 1);
        let zeros = data.inputs.iter().filter(|&t| t == 0).count();
        assert_eq!(zeros, 20 * (32 - 8 - 4));
        c.random_non_queries = true;
        let data = generate(&c, 200, 1);
        let zeros = data.inputs.iter().filter(|&t| t == 0).count();
        assert!(zeros < 200 * 3, "random fill leaves few zeros, got {zeros}");
    }

    /// With one pair the gap is a single draw from p(g) ∝ (g+1)^(a−1): compare frequencies.
    #[test]
    fn gap_distribution_is_power_law() {
        let (l, n) = (16i64, 40_000usize);
        let c = cfg(32, l, 1);
        let data = generate(&c, n, 3);
        let space = ((l - 2) / 2) as usize;
        let mut counts = vec![0usize; space];
        for i in 0..n {
            let (_, y) = data.example(i);
            let p = y.iter().position(|&t| t != IGNORE).expect("one query");
            counts[(p - 2) / 2] += 1;
        }
        let w: Vec<f64> = (1..=space).map(|g| (g as f64).powf(0.01 - 1.0)).collect();
        let total: f64 = w.iter().sum();
        for (g, &count) in counts.iter().enumerate() {
            let expected = w[g] / total;
            let observed = count as f64 / n as f64;
            assert!((observed - expected).abs() < 0.01, "gap {g}: observed {observed:.4}, expected {expected:.4}");
        }
        assert!(counts.windows(2).all(|p| p[0] > p[1]), "skewed towards small gaps: {counts:?}");
    }

    #[test]
    fn validation_names_the_key() {
        assert_eq!(cfg(32, 32, 4).validate().unwrap_err().0, "vocab_size");
        assert_eq!(cfg(128, 31, 4).validate().unwrap_err().0, "seq_len");
        assert_eq!(cfg(128, 32, 9).validate().unwrap_err().0, "num_kv_pairs");
        assert!(cfg(128, 32, 8).validate().is_ok());
    }
}
