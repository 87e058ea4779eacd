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
use super::{TaskData, TaskInfo, TokenSplit, IGNORE};
use crate::models::TaskIo;
use crate::params::{ParamError, ParamMap};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};

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
            return Err(("num_kv_pairs", format!("exceeds the {} distinct keys of vocab_size", self.vocab_size / 2 - 1)));
        }
        if self.train_examples == 0 || self.test_examples == 0 {
            return Err(("train_examples", "train_examples and test_examples must be ≥ 1".into()));
        }
        if !(self.power_a > 0.0 && self.power_a.is_finite()) {
            return Err(("power_a", format!("must be positive, got {}", self.power_a)));
        }
        Ok(())
    }

    pub fn io(&self) -> TaskIo {
        TaskIo { vocab_size: self.vocab_size, num_classes: self.vocab_size, seq_len: self.seq_len, causal: true }
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
    let weights: Vec<f64> =
        (1..=space).map(|g| cfg.power_a * (g as f64).powf(cfg.power_a - 1.0)).collect();

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
    TokenSplit { inputs, targets, n, seq_len: l }
}

fn config(params: &serde_json::Value) -> anyhow::Result<MqarConfig> {
    Ok(serde_json::from_value(params.clone())?)
}

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    let cfg: MqarConfig = crate::params::resolve(combo)?;
    cfg.validate().map_err(|(k, m)| ParamError::new(k, m))?;
    serde_json::to_value(&cfg).map_err(|e| ParamError::new("", e.to_string()))
}

fn build(params: &serde_json::Value, seed: u64) -> anyhow::Result<TaskData> {
    let cfg = config(params)?;
    let data_seed = cfg.data_seed.unwrap_or(seed);
    // Train and test come from distinct streams of the same seed.
    let train = generate(&cfg, cfg.train_examples, data_seed.wrapping_mul(2));
    let test = generate(&cfg, cfg.test_examples, data_seed.wrapping_mul(2) + 1);
    Ok(TaskData { train, test, io: cfg.io(), lr_override: None })
}

pub const INFO: TaskInfo = TaskInfo {
    name: "mqar",
    description: "multi-query associative recall (Zoology): recall the value of each queried key",
    resolve,
    io: |p| Ok(config(p)?.io()),
    build,
};
