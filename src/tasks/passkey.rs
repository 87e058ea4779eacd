//! Passkey retrieval (Mohtashami & Jaggi 2023, "Landmark Attention"), byte level: a number
//! hidden in repeated filler text at a controlled depth, asked for at the end. Trained at
//! `seq_len` with random depths; evaluated at every (length, depth) of `eval_lengths` ×
//! `eval_depths`, each a split `len=N depth=D` (accuracy per digit, exact match per passkey).
//!
//! The text, as the paper's prompt without its opening instruction (which tells a pretrained
//! model what to do; a model trained on the task gains nothing from it):
//! `The grass is green. The sky is blue. … The pass key is 68048. Remember it. 68048 is the
//! pass key. … What is the pass key? The pass key is 68048`.
use super::{BuildContext, Data, TaskData, TaskInfo, TokenSplit, IGNORE};
use crate::models::TaskIo;
use crate::params::{ParamError, ParamMap};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};

const FILLER: &str = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
const QUESTION: &str = "What is the pass key? The pass key is ";

fn key_sentence(key: &str) -> String {
    format!("The pass key is {key}. Remember it. {key} is the pass key. ")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeyConfig {
    /// Training length in bytes.
    pub seq_len: i64,
    /// Digits of the passkey (the first is never 0).
    pub digits: i64,
    pub train_examples: usize,
    /// Examples of the in-distribution test split and of each evaluated (length, depth).
    pub test_examples: usize,
    /// Lengths to evaluate at, comma-separated (`"256,512"`; a YAML list would be a sweep);
    /// empty: `seq_len` alone.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub eval_lengths: String,
    /// Depths of the key in the filler (0 = start, 1 = end), comma-separated.
    pub eval_depths: String,
    pub data_seed: Option<u64>,
}

impl Default for PasskeyConfig {
    fn default() -> Self {
        PasskeyConfig {
            seq_len: 256,
            digits: 5,
            train_examples: 20_000,
            test_examples: 100,
            eval_lengths: String::new(),
            eval_depths: "0,0.25,0.5,0.75,1".into(),
            data_seed: None,
        }
    }
}

/// Tokens held in memory, as for the other generators.
const MAX_TOKENS: u128 = 2_000_000_000;

fn list<T: std::str::FromStr>(key: &'static str, text: &str, example: &str) -> Result<Vec<T>, (&'static str, String)> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim().parse().map_err(|_| {
                (key, format!("`{}` is not a number; expected comma-separated values such as \"{example}\"", p.trim()))
            })
        })
        .collect()
}

impl PasskeyConfig {
    /// The shortest text that holds the key sentence, the question and the answer.
    fn min_length(&self) -> i64 {
        let key = "0".repeat(self.digits.max(1) as usize);
        (key_sentence(&key).len() + QUESTION.len()) as i64 + self.digits - 1
    }

    pub fn lengths(&self) -> Result<Vec<i64>, (&'static str, String)> {
        let lengths: Vec<i64> = list("eval_lengths", &self.eval_lengths, "256,512")?;
        Ok(if lengths.is_empty() { vec![self.seq_len] } else { lengths })
    }

    pub fn depths(&self) -> Result<Vec<f64>, (&'static str, String)> {
        list("eval_depths", &self.eval_depths, "0,0.5,1")
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=18).contains(&self.digits) {
            return Err(("digits", format!("must be in 1..=18, got {}", self.digits)));
        }
        let min = self.min_length();
        if self.seq_len < min {
            return Err((
                "seq_len",
                format!("must be at least {min} (key sentence, question and answer), got {}", self.seq_len),
            ));
        }
        if let Some(bad) = self.lengths()?.into_iter().find(|&l| l < min) {
            return Err(("eval_lengths", format!("every length must be at least {min}, got {bad}")));
        }
        let depths = self.depths()?;
        if depths.is_empty() {
            return Err(("eval_depths", "must list at least one depth, such as \"0,0.5,1\"".into()));
        }
        if let Some(bad) = depths.iter().find(|d| !(0.0..=1.0).contains(*d)) {
            return Err(("eval_depths", format!("depths are fractions in [0, 1], got {bad}")));
        }
        for (key, n) in [("train_examples", self.train_examples), ("test_examples", self.test_examples)] {
            if n == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        let evals: u128 = self.lengths()?.iter().map(|&l| l as u128 * depths.len() as u128).sum();
        let tokens = (self.train_examples as u128 + self.test_examples as u128) * self.seq_len as u128
            + evals * self.test_examples as u128;
        if tokens > MAX_TOKENS {
            return Err(("train_examples", format!("the splits hold {tokens} tokens, above {MAX_TOKENS}")));
        }
        Ok(())
    }

    fn io(&self) -> TaskIo {
        TaskIo::per_token(256, 256, self.seq_len, true)
    }
}

/// One example's text of `length + 1` bytes with the key at `depth` of the filler, and the
/// key's digits.
pub fn text(rng: &mut SplitMix64, length: usize, digits: usize, depth: f64) -> (Vec<u8>, String) {
    let first = rng.range(1, 10);
    let key: String =
        std::iter::once(first).chain((1..digits).map(|_| rng.range(0, 10))).map(|d| d.to_string()).collect();
    let sentence = key_sentence(&key);
    let budget = length + 1 - sentence.len() - QUESTION.len() - digits;
    let filler: Vec<u8> = FILLER.bytes().cycle().take(budget).collect();
    // The key goes in at a word boundary at or before its depth.
    let mut at = (depth * budget as f64).round() as usize;
    while at > 0 && filler[at - 1] != b' ' {
        at -= 1;
    }
    let mut out = Vec::with_capacity(length + 1);
    out.extend_from_slice(&filler[..at]);
    out.extend_from_slice(sentence.as_bytes());
    out.extend_from_slice(&filler[at..]);
    out.extend_from_slice(QUESTION.as_bytes());
    out.extend_from_slice(key.as_bytes());
    (out, key)
}

/// `n` examples of `length` bytes; `depth` draws each example's depth.
fn split(
    n: usize,
    length: usize,
    digits: usize,
    seed: u64,
    mut depth: impl FnMut(&mut SplitMix64) -> f64,
) -> TokenSplit {
    let mut rng = SplitMix64::new(seed);
    let (mut inputs, mut targets) = (Vec::with_capacity(n * length), Vec::with_capacity(n * length));
    for _ in 0..n {
        let d = depth(&mut rng);
        let (bytes, _) = text(&mut rng, length, digits, d);
        inputs.extend(bytes[..length].iter().map(|&b| b as i64));
        // Targets: the next byte where it is a digit of the answer (the last `digits` bytes).
        targets.extend((0..length).map(|t| if t + digits >= length { bytes[t + 1] as i64 } else { IGNORE }));
    }
    TokenSplit::per_token(inputs, targets, n, length)
}

fn build(params: &serde_json::Value, ctx: BuildContext) -> anyhow::Result<TaskData> {
    let cfg: PasskeyConfig = serde_json::from_value(params.clone())?;
    let err = |(key, message): (&str, String)| anyhow::anyhow!("{key}: {message}");
    let seed = cfg.data_seed.unwrap_or(ctx.seed).wrapping_mul(2);
    let (len, digits) = (cfg.seq_len as usize, cfg.digits as usize);
    let uniform = |rng: &mut SplitMix64| rng.next_f64();
    let train = split(cfg.train_examples, len, digits, seed, uniform);
    let test = split(cfg.test_examples, len, digits, seed + 1, uniform);
    let mut evals = Vec::new();
    for l in cfg.lengths().map_err(err)? {
        for (i, d) in cfg.depths().map_err(err)?.into_iter().enumerate() {
            let stream = seed ^ ((l as u64) << 40) ^ ((i as u64 + 1) << 32);
            evals.push((format!("len={l} depth={d}"), split(cfg.test_examples, l as usize, digits, stream, |_| d)));
        }
    }
    Ok(TaskData { train, val: None, test, evals, io: cfg.io(), lr_override: None, lm: None })
}

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    super::resolve_validated(combo, PasskeyConfig::validate)
}

pub const INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::PASSKEY,
    resolve,
    io: |p| Ok(serde_json::from_value::<PasskeyConfig>(p.clone())?.io()),
    build: |params, ctx| build(params, ctx).map(Data::Tokens),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_sits_at_its_depth_and_is_the_answer() {
        let mut rng = SplitMix64::new(1);
        for depth in [0.0, 0.5, 1.0] {
            let (bytes, key) = text(&mut rng, 400, 5, depth);
            let s = String::from_utf8(bytes).unwrap();
            assert_eq!(s.len(), 401);
            assert!(s.ends_with(&format!("What is the pass key? The pass key is {key}")), "{s}");
            let budget = 401 - key_sentence(&key).len() - QUESTION.len() - 5;
            let want = (depth * budget as f64).round() as usize;
            let at = s.find("The pass key is").unwrap();
            assert!(at <= want && want - at < 12, "depth {depth}: key sentence at byte {at}, wanted {want}: {s}");
            assert!(at == 0 || s.as_bytes()[at - 1] == b' ', "at a word boundary");
            assert_eq!(key.len(), 5);
            assert_ne!(&key[..1], "0");
        }
    }

    #[test]
    fn bad_lists_and_short_lengths_name_their_key() {
        let bad = |cfg: PasskeyConfig| cfg.validate().unwrap_err();
        let (key, message) = bad(PasskeyConfig { eval_depths: "0,half".into(), ..Default::default() });
        assert_eq!(key, "eval_depths");
        assert!(message.contains("`half` is not a number"), "{message}");
        let (key, _) = bad(PasskeyConfig { eval_depths: "0,1.5".into(), ..Default::default() });
        assert_eq!(key, "eval_depths");
        let (key, message) = bad(PasskeyConfig { eval_lengths: "256,40".into(), ..Default::default() });
        assert_eq!(key, "eval_lengths");
        assert!(message.contains("got 40"), "{message}");
        assert!(PasskeyConfig::default().validate().is_ok());
    }
}
