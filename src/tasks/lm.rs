//! Language modelling (`lm`): next-token prediction on windows of a corpus, scored in bits per
//! byte (byte corpora) or perplexity (token files), with the loss at each position of the
//! context recorded (does the model use its context?).
//!
//! Corpora: `imdb` (the review texts of `imdb/imdb_train.tsv`, one review per line, as bytes),
//! any other file read as raw bytes (enwik8 / text8 style), or a `.bin` file of little-endian
//! uint16 token ids (nanoGPT's format). The corpus is split by position: the last
//! `test_fraction` is the test region, the `val_fraction` before it validation, the rest
//! training. Training windows start at random offsets; evaluation windows are evenly spaced over
//! their region and the same for every seed and model.
use super::{data, BuildContext, Data, TaskData, TaskInfo, TokenSplit, Tokens};
use crate::models::TaskIo;
use crate::params::{ParamError, ParamMap};
use crate::rng::SplitMix64;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmConfig {
    /// `imdb`, a raw byte file (path), or a `.bin` file of uint16 tokens (path). Relative paths
    /// are looked up under the data directories, then as given.
    pub corpus: String,
    /// Token files only: the vocabulary size (every id must be below it; default: the largest
    /// id + 1). Byte corpora have 256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<i64>,
    /// Context length of a window.
    pub seq_len: i64,
    /// Training windows (random offsets; an epoch is this many windows).
    pub train_windows: usize,
    /// Validation and test windows (evenly spaced; fewer when the region is short).
    pub eval_windows: usize,
    pub val_fraction: f64,
    pub test_fraction: f64,
    pub data_seed: Option<u64>,
}

impl Default for LmConfig {
    fn default() -> Self {
        LmConfig {
            corpus: "imdb".into(),
            vocab_size: None,
            seq_len: 256,
            train_windows: 20_000,
            eval_windows: 256,
            val_fraction: 0.05,
            test_fraction: 0.05,
            data_seed: None,
        }
    }
}

/// How the task's loss is reported besides nats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmScore {
    /// Byte corpora: loss / ln 2.
    BitsPerByte,
    /// Token corpora: exp(loss).
    Perplexity,
}

impl LmScore {
    /// A loss in nats in this unit.
    pub fn of_loss(self, nats: f64) -> f64 {
        match self {
            LmScore::BitsPerByte => nats / std::f64::consts::LN_2,
            LmScore::Perplexity => nats.exp(),
        }
    }
}

const IMDB: &str = "imdb";
/// Windows held in memory (tokens), as for the other generators.
const MAX_TOKENS: u128 = 2_000_000_000;

impl LmConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.corpus.trim().is_empty() {
            return Err(("corpus", "must name `imdb`, a text file or a .bin token file".into()));
        }
        if self.seq_len < 2 {
            return Err(("seq_len", format!("must be at least 2, got {}", self.seq_len)));
        }
        for (key, n) in [("train_windows", self.train_windows), ("eval_windows", self.eval_windows)] {
            if n == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        for (key, f) in [("val_fraction", self.val_fraction), ("test_fraction", self.test_fraction)] {
            if !(0.0..0.5).contains(&f) || (key == "test_fraction" && f == 0.0) {
                return Err((key, format!("must be in (0, 0.5) (val_fraction may be 0), got {f}")));
            }
        }
        if let Some(v) = self.vocab_size {
            if self.is_bytes() {
                return Err(("vocab_size", "applies to .bin token files only (byte corpora have 256)".into()));
            }
            if !(2..=65_536).contains(&v) {
                return Err(("vocab_size", format!("must be in 2..=65536 (uint16 ids), got {v}")));
            }
        }
        let tokens = (self.train_windows + 2 * self.eval_windows) as u128 * (self.seq_len as u128 + 1);
        if tokens > MAX_TOKENS {
            return Err(("train_windows", format!("the windows hold {tokens} tokens, above {MAX_TOKENS}")));
        }
        Ok(())
    }

    fn is_bytes(&self) -> bool {
        !self.corpus.ends_with(".bin")
    }

    fn score(&self) -> LmScore {
        if self.is_bytes() {
            LmScore::BitsPerByte
        } else {
            LmScore::Perplexity
        }
    }

    fn io(&self) -> TaskIo {
        let vocab = if self.is_bytes() { 256 } else { self.vocab_size.unwrap_or(65_536) };
        TaskIo::per_token(vocab, vocab, self.seq_len, true)
    }
}

/// Where `corpus` is: under the data directories first, then as given.
fn locate(corpus: &str, data_dir: Option<&Path>) -> Result<PathBuf> {
    if corpus == IMDB {
        return data::locate(
            "imdb/imdb_train.tsv",
            data_dir,
            "the IMDB reviews (see ../shared/datasets/imdb/README.md)",
        );
    }
    let given = Path::new(corpus);
    if given.is_absolute() || given.is_file() {
        return if given.is_file() {
            Ok(given.to_path_buf())
        } else {
            bail!("corpus file {} not found", given.display())
        };
    }
    data::locate(corpus, data_dir, "your own corpus: a text file, or a .bin file of uint16 token ids")
}

/// The corpus as token ids: bytes, or uint16 ids checked against the vocabulary.
pub fn read_corpus(cfg: &LmConfig, data_dir: Option<&Path>) -> Result<(Tokens, i64)> {
    let path = locate(&cfg.corpus, data_dir)?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if cfg.corpus == IMDB {
        // `label<TAB>text` lines: the texts, one per line.
        let mut text = Vec::with_capacity(bytes.len());
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let review = line.iter().position(|&b| b == b'\t').map_or(line, |tab| &line[tab + 1..]);
            text.extend_from_slice(review);
            text.push(b'\n');
        }
        return Ok((Tokens::U8(text), 256));
    }
    if cfg.is_bytes() {
        return Ok((Tokens::U8(bytes), 256));
    }
    if bytes.len() % 2 != 0 {
        bail!("{}: {} bytes is not a whole number of uint16 tokens", path.display(), bytes.len());
    }
    let ids: Vec<i64> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as i64).collect();
    let largest = ids.iter().copied().max().unwrap_or(0);
    let vocab = cfg.vocab_size.unwrap_or(largest + 1);
    if largest >= vocab {
        bail!("{}: token id {largest} is not below vocab_size {vocab}", path.display());
    }
    Ok((Tokens::from(ids), vocab))
}

/// Windows of `len + 1` tokens starting at `starts`: inputs the first `len`, targets the next.
fn windows(corpus: &Tokens, starts: &[usize], len: usize) -> TokenSplit {
    let (mut inputs, mut targets) = (Vec::with_capacity(starts.len() * len), Vec::with_capacity(starts.len() * len));
    for &s in starts {
        corpus.extend_into(s..s + len, &mut inputs);
        corpus.extend_into(s + 1..s + len + 1, &mut targets);
    }
    TokenSplit::per_token(inputs, targets, starts.len(), len)
}

/// Up to `n` evenly spaced, non-overlapping window starts in `region` (windows `len + 1` long).
fn evenly_spaced(region: std::ops::Range<usize>, len: usize, n: usize) -> Vec<usize> {
    let room = region.len().saturating_sub(len + 1);
    let n = n.min(region.len() / (len + 1)).max(1);
    if n == 1 {
        return vec![region.start];
    }
    (0..n).map(|i| region.start + room * i / (n - 1)).collect()
}

pub fn build(params: &serde_json::Value, ctx: BuildContext) -> Result<TaskData> {
    let cfg: LmConfig = serde_json::from_value(params.clone())?;
    let (corpus, vocab) = read_corpus(&cfg, ctx.data_dir)?;
    let len = cfg.seq_len as usize;
    let total = corpus.len();
    let test_start = total - (total as f64 * cfg.test_fraction) as usize;
    let val_start = test_start - (total as f64 * cfg.val_fraction) as usize;
    for (name, region) in [("training", 0..val_start), ("test", test_start..total)] {
        if region.len() < len + 1 {
            bail!(
                "corpus `{}` ({total} tokens): the {name} region holds {} tokens, fewer than one window of seq_len + 1 = {}",
                cfg.corpus,
                region.len(),
                len + 1
            );
        }
    }
    let mut rng = SplitMix64::new(cfg.data_seed.unwrap_or(ctx.seed).wrapping_mul(2));
    let starts: Vec<usize> = (0..cfg.train_windows).map(|_| rng.below((val_start - len) as u64) as usize).collect();
    let train = windows(&corpus, &starts, len);
    let val = (val_start + len < test_start)
        .then(|| windows(&corpus, &evenly_spaced(val_start..test_start, len, cfg.eval_windows), len));
    let test = windows(&corpus, &evenly_spaced(test_start..total, len, cfg.eval_windows), len);
    let io = TaskIo { vocab_size: vocab, num_classes: vocab, ..cfg.io() };
    Ok(TaskData { train, val, test, evals: Vec::new(), io, lr_override: None, lm: Some(cfg.score()) })
}

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    super::resolve_validated(combo, LmConfig::validate)
}

pub const INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::LM,
    resolve,
    io: |p| Ok(serde_json::from_value::<LmConfig>(p.clone())?.io()),
    build: |params, ctx| build(params, ctx).map(Data::Tokens),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_of_a_uniform_guess() {
        // Uniform over 256 bytes: ln 256 nats = 8 bits per byte; over 50 tokens: perplexity 50.
        assert!((LmScore::BitsPerByte.of_loss(256f64.ln()) - 8.0).abs() < 1e-12);
        assert!((LmScore::Perplexity.of_loss(50f64.ln()) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn evaluation_windows_are_evenly_spaced_inside_their_region() {
        assert_eq!(evenly_spaced(100..200, 9, 3), [100, 145, 190]);
        assert_eq!(evenly_spaced(100..200, 9, 50), (0..10).map(|i| 100 + 90 * i / 9).collect::<Vec<_>>());
        assert_eq!(evenly_spaced(0..11, 9, 4), [0]);
    }
}
