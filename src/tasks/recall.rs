//! Two more recall probes beside MQAR, each a generator deterministic by seed:
//!
//! - `selective_copy` (Mamba paper, §4.1): `num_tokens` data tokens scattered at random
//!   positions of a `context`-long stretch of blanks; then `num_tokens` copy markers, at which
//!   the model must output the data tokens in their order. Token ids: 0 blank, 1 marker, data
//!   tokens 2..V. Targets only at the marker positions.
//! - `induction` (induction heads): random tokens 2..V; a trigger token (id 1) appears once at
//!   a random position followed by some token a, and again at the last position, whose target
//!   is a. One target per example.
use super::{generate_splits, Data, TaskData, TaskInfo, TokenSplit, IGNORE};
use crate::models::TaskIo;
use crate::params::{ParamError, ParamMap};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};

const BLANK: i64 = 0;
const MARKER: i64 = 1;
const FIRST_DATA: i64 = 2;
/// Generated tokens (inputs) held in memory, as for MQAR.
const MAX_TOKENS: u128 = 2_000_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectiveCopyConfig {
    /// Vocabulary including blank and marker; data tokens are drawn from 2..V.
    pub vocab_size: i64,
    /// Positions among which the data tokens are scattered.
    pub context: i64,
    /// Data tokens to copy (the sequence is context + num_tokens long).
    pub num_tokens: i64,
    pub train_examples: usize,
    pub test_examples: usize,
    pub data_seed: Option<u64>,
}

impl Default for SelectiveCopyConfig {
    fn default() -> Self {
        // The Mamba paper: 16 tokens among 4,096 positions, vocabulary 16.
        SelectiveCopyConfig {
            vocab_size: 16,
            context: 256,
            num_tokens: 16,
            train_examples: 20_000,
            test_examples: 1_000,
            data_seed: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InductionConfig {
    /// Vocabulary including the trigger (id 1); other tokens are drawn from 2..V.
    pub vocab_size: i64,
    pub seq_len: i64,
    pub train_examples: usize,
    pub test_examples: usize,
    pub data_seed: Option<u64>,
    /// Lengths beyond (or below) `seq_len` to evaluate at after training (length
    /// generalisation), comma-separated (`"128,256"`; a YAML list would be a sweep): a test
    /// split of `test_examples` per length, recorded as `len=N`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub eval_lengths: String,
}

impl Default for InductionConfig {
    fn default() -> Self {
        InductionConfig {
            vocab_size: 64,
            seq_len: 64,
            train_examples: 20_000,
            test_examples: 1_000,
            data_seed: None,
            eval_lengths: String::new(),
        }
    }
}

fn check_sizes(vocab: i64, seq_len: i64, train: usize, test: usize) -> Result<(), (&'static str, String)> {
    if !(3..=1 << 20).contains(&vocab) {
        return Err((
            "vocab_size",
            format!("must be in 3..=1048576 (blank/trigger ids plus data tokens), got {vocab}"),
        ));
    }
    if train == 0 {
        return Err(("train_examples", "must be at least 1".into()));
    }
    if test == 0 {
        return Err(("test_examples", "must be at least 1".into()));
    }
    let tokens = (train + test) as u128 * seq_len.max(0) as u128;
    if tokens > MAX_TOKENS {
        return Err(("train_examples", format!("(train + test) × length = {tokens} tokens exceeds {MAX_TOKENS}")));
    }
    Ok(())
}

impl SelectiveCopyConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.num_tokens < 1 || self.num_tokens > self.context {
            return Err(("num_tokens", format!("must be in 1..=context ({}), got {}", self.context, self.num_tokens)));
        }
        check_sizes(self.vocab_size, self.context + self.num_tokens, self.train_examples, self.test_examples)
    }

    pub fn io(&self) -> TaskIo {
        TaskIo::per_token(self.vocab_size, self.vocab_size, self.context + self.num_tokens, true)
    }
}

impl InductionConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.seq_len < 4 {
            return Err(("seq_len", format!("must be at least 4, got {}", self.seq_len)));
        }
        let lengths = self.eval_lengths()?;
        if let Some(bad) = lengths.iter().find(|&&l| l < 4) {
            return Err(("eval_lengths", format!("every length must be at least 4, got {bad}")));
        }
        let eval_tokens: u128 = lengths.iter().map(|&l| self.test_examples as u128 * l as u128).sum();
        if eval_tokens > MAX_TOKENS {
            return Err((
                "eval_lengths",
                format!("test_examples × lengths = {eval_tokens} tokens exceeds {MAX_TOKENS}"),
            ));
        }
        check_sizes(self.vocab_size, self.seq_len, self.train_examples, self.test_examples)
    }

    pub fn io(&self) -> TaskIo {
        TaskIo::per_token(self.vocab_size, self.vocab_size, self.seq_len, true)
    }

    /// The lengths of `eval_lengths`.
    pub fn eval_lengths(&self) -> Result<Vec<i64>, (&'static str, String)> {
        let text = self.eval_lengths.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        text.split(',')
            .map(|part| {
                part.trim().parse().map_err(|_| {
                    (
                        "eval_lengths",
                        format!("`{part}` is not a length; expected comma-separated integers such as \"128,256\""),
                    )
                })
            })
            .collect()
    }
}

/// Selective copying examples. Deterministic in (`cfg`, `seed`).
pub fn selective_copy(cfg: &SelectiveCopyConfig, n: usize, seed: u64) -> TokenSplit {
    let mut rng = SplitMix64::new(seed);
    let (ctx, k) = (cfg.context as usize, cfg.num_tokens as usize);
    let positions: Vec<usize> = (0..ctx).collect();
    let len = ctx + k;
    let (mut inputs, mut targets) = (Vec::with_capacity(n * len), Vec::with_capacity(n * len));
    for _ in 0..n {
        let mut at = rng.choose_distinct(&positions, k);
        at.sort_unstable();
        let mut x = vec![BLANK; len];
        let mut y = vec![IGNORE; len];
        for (i, &p) in at.iter().enumerate() {
            let token = rng.range(FIRST_DATA, cfg.vocab_size);
            x[p] = token;
            x[ctx + i] = MARKER;
            y[ctx + i] = token;
        }
        inputs.extend_from_slice(&x);
        targets.extend_from_slice(&y);
    }
    TokenSplit::per_token(inputs, targets, n, len)
}

/// Induction-head examples. Deterministic in (`cfg`, `seed`).
pub fn induction(cfg: &InductionConfig, n: usize, seed: u64) -> TokenSplit {
    let mut rng = SplitMix64::new(seed);
    let len = cfg.seq_len as usize;
    let (mut inputs, mut targets) = (Vec::with_capacity(n * len), Vec::with_capacity(n * len));
    for _ in 0..n {
        let mut x: Vec<i64> = (0..len).map(|_| rng.range(FIRST_DATA, cfg.vocab_size)).collect();
        let mut y = vec![IGNORE; len];
        // The first trigger leaves room for its successor before the final trigger.
        let p = rng.below(len as u64 - 2) as usize;
        x[p] = MARKER;
        x[len - 1] = MARKER;
        y[len - 1] = x[p + 1];
        inputs.extend_from_slice(&x);
        targets.extend_from_slice(&y);
    }
    TokenSplit::per_token(inputs, targets, n, len)
}

fn resolve_copy(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    super::resolve_validated(combo, SelectiveCopyConfig::validate)
}

fn build_copy(params: &serde_json::Value, ctx: super::BuildContext) -> anyhow::Result<TaskData> {
    let cfg: SelectiveCopyConfig = serde_json::from_value(params.clone())?;
    let sizes = (cfg.train_examples, cfg.test_examples);
    let (train, test) = generate_splits(cfg.data_seed, ctx.seed, sizes, |n, s| selective_copy(&cfg, n, s));
    Ok(TaskData { train, val: None, test, evals: Vec::new(), io: cfg.io(), lr_override: None, lm: None })
}

fn resolve_induction(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    super::resolve_validated(combo, InductionConfig::validate)
}

fn build_induction(params: &serde_json::Value, ctx: super::BuildContext) -> anyhow::Result<TaskData> {
    let cfg: InductionConfig = serde_json::from_value(params.clone())?;
    let sizes = (cfg.train_examples, cfg.test_examples);
    let (train, test) = generate_splits(cfg.data_seed, ctx.seed, sizes, |n, s| induction(&cfg, n, s));
    let lengths = cfg.eval_lengths().map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
    let evals = lengths
        .into_iter()
        .map(|seq_len| {
            let at = InductionConfig { seq_len, ..cfg.clone() };
            let (_, split) =
                generate_splits(cfg.data_seed, ctx.seed, (0, cfg.test_examples), |n, s| induction(&at, n, s));
            (format!("len={seq_len}"), split)
        })
        .collect();
    Ok(TaskData { train, val: None, test, evals, io: cfg.io(), lr_override: None, lm: None })
}

pub const SELECTIVE_COPY_INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::SELECTIVE_COPY,
    resolve: resolve_copy,
    io: |p| Ok(serde_json::from_value::<SelectiveCopyConfig>(p.clone())?.io()),
    build: |params, ctx| build_copy(params, ctx).map(Data::Tokens),
};

pub const INDUCTION_INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::INDUCTION,
    resolve: resolve_induction,
    io: |p| Ok(serde_json::from_value::<InductionConfig>(p.clone())?.io()),
    build: |params, ctx| build_induction(params, ctx).map(Data::Tokens),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selective_copy_targets_are_the_data_tokens_in_order() {
        let cfg = SelectiveCopyConfig { vocab_size: 10, context: 40, num_tokens: 6, ..Default::default() };
        let data = selective_copy(&cfg, 200, 7);
        let mut counts = [0usize; 10];
        for i in 0..data.n {
            let (x, y) = data.example(i);
            let scattered: Vec<i64> = x[..40].iter().copied().filter(|&t| t != BLANK).collect();
            assert_eq!(scattered.len(), 6, "exactly num_tokens data tokens in the context");
            assert!(x[40..].iter().all(|&t| t == MARKER));
            assert!(y[..40].iter().all(|&t| t == IGNORE), "no target inside the context");
            assert_eq!(&y[40..], scattered.as_slice(), "targets: the data tokens in order");
            scattered.iter().for_each(|&t| counts[t as usize] += 1);
        }
        assert_eq!(counts[0] + counts[1], 0, "data tokens never blank or marker");
        // 1,200 draws over 8 tokens: each near 150.
        assert!(counts[2..].iter().all(|&c| (100..200).contains(&c)), "{counts:?}");
        assert_eq!(selective_copy(&cfg, 5, 7), selective_copy(&cfg, 5, 7));
        assert_ne!(selective_copy(&cfg, 5, 7), selective_copy(&cfg, 5, 8));
    }

    #[test]
    fn induction_target_follows_the_first_trigger() {
        let cfg = InductionConfig { vocab_size: 20, seq_len: 32, ..Default::default() };
        let data = induction(&cfg, 300, 3);
        let mut first_positions = std::collections::BTreeSet::new();
        for i in 0..data.n {
            let (x, y) = data.example(i);
            let triggers: Vec<usize> = (0..32).filter(|&p| x[p] == MARKER).collect();
            assert_eq!(triggers.len(), 2, "{x:?}");
            assert_eq!(triggers[1], 31);
            let labelled: Vec<usize> = (0..32).filter(|&p| y[p] != IGNORE).collect();
            assert_eq!(labelled, [31]);
            assert_eq!(y[31], x[triggers[0] + 1]);
            assert!(y[31] >= FIRST_DATA);
            first_positions.insert(triggers[0]);
        }
        assert!(first_positions.len() > 20, "the first trigger moves around: {first_positions:?}");
        assert_eq!(induction(&cfg, 4, 3), induction(&cfg, 4, 3));
    }
}
