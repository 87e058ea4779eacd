//! The `listops` task: LRA's ListOps generated here ([`super::listops`]) or read from LRA-format
//! TSV files, tokenized as LRA's input pipeline does (parentheses dropped, so the model sees
//! operators, digits and `]`), right-padded to `max_length`, 10 classes. Generated splits are
//! cached on disk ([`crate::tasks::cache`]).
use super::listops::{self, GenParams};
use crate::models::{Head, TaskIo};
use crate::params::{ParamError, ParamMap};
use crate::tasks::{cache, BuildContext, Data, TaskData, TaskInfo, TokenSplit};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Part of the cache key: bump it whenever the generator's output for the same parameters changes.
const GENERATOR_VERSION: u32 = 1;

/// Token ids of `(` and `)`, which LRA deletes before tokenizing.
const PARENS: [i64; 2] = [18, 19];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListopsConfig {
    /// Deepest nesting, digits included (LRA: 10).
    pub max_depth: usize,
    /// Most arguments of an operator (LRA: 10).
    pub max_args: usize,
    /// Token count range without parentheses, inclusive (LRA: 500 < length < 2000). The model's
    /// sequence length is `max_length`.
    pub min_length: usize,
    pub max_length: usize,
    /// Split sizes (LRA: 96,000 / 2,000 / 2,000).
    pub train_examples: usize,
    pub val_examples: usize,
    pub test_examples: usize,
    pub data_seed: u64,
    /// LRA-format files (`Source<TAB>Target` with a header) to use instead of generating;
    /// all three or none. Longer expressions are truncated to `max_length` as LRA does.
    pub train_file: Option<PathBuf>,
    pub val_file: Option<PathBuf>,
    pub test_file: Option<PathBuf>,
}

impl Default for ListopsConfig {
    fn default() -> Self {
        let lra = GenParams::lra();
        ListopsConfig {
            max_depth: lra.max_depth,
            max_args: lra.max_args,
            min_length: lra.min_length,
            max_length: lra.max_length,
            train_examples: 96_000,
            val_examples: 2_000,
            test_examples: 2_000,
            data_seed: 0,
            train_file: None,
            val_file: None,
            test_file: None,
        }
    }
}

impl ListopsConfig {
    pub fn gen_params(&self) -> GenParams {
        GenParams {
            max_depth: self.max_depth,
            max_args: self.max_args,
            min_length: self.min_length,
            max_length: self.max_length,
            with_parens: false,
        }
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        let files = [&self.train_file, &self.val_file, &self.test_file].iter().filter(|f| f.is_some()).count();
        if files != 0 && files != 3 {
            return Err(("train_file", "give train_file, val_file and test_file together (or none)".into()));
        }
        super::check_files(&[
            ("train_file", &self.train_file),
            ("val_file", &self.val_file),
            ("test_file", &self.test_file),
        ])?;
        if files == 0 {
            self.gen_params().check().map_err(|m| ("max_length", m))?;
        }
        if !(1..=1 << 20).contains(&self.max_length) {
            return Err(("max_length", format!("must be in 1..=1048576, got {}", self.max_length)));
        }
        let total = super::check_split_sizes(self.train_examples, self.val_examples, self.test_examples)?;
        if total * self.max_length as u128 > 2_000_000_000 {
            return Err(("train_examples", "examples × max_length exceeds 2·10⁹ tokens".into()));
        }
        Ok(())
    }

    fn io(&self) -> TaskIo {
        TaskIo {
            head: Head::MeanPool,
            pad_id: Some(listops::PAD),
            ..TaskIo::per_token(listops::vocab_size(), 10, self.max_length as i64, false)
        }
    }
}

/// Rows (source, label) as a padded split; parentheses dropped, longer sources truncated.
pub fn to_split(rows: &[(String, u8)], max_length: usize) -> Result<TokenSplit> {
    let mut inputs = Vec::with_capacity(rows.len() * max_length);
    for (i, (source, _)) in rows.iter().enumerate() {
        let tokens = listops::tokenize(source).map_err(|e| anyhow::anyhow!("example {}: {e}", i + 1))?;
        let start = inputs.len();
        inputs.extend(tokens.into_iter().filter(|t| !PARENS.contains(t)).take(max_length));
        inputs.resize(start + max_length, listops::PAD);
    }
    Ok(TokenSplit::classification(inputs, rows.iter().map(|r| r.1 as i64).collect(), max_length))
}

/// The flat LRA source text of a tokenized example (padding dropped).
pub fn detokenize(tokens: &[i64]) -> String {
    const NAMES: [&str; 18] =
        ["", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "[MIN", "[MAX", "[MED", "[SM", "[FIRST", "[LAST", "]"];
    tokens
        .iter()
        .filter_map(|&t| NAMES.get(t as usize).filter(|s| !s.is_empty()))
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_split(path: &Path, max_length: usize) -> Result<TokenSplit> {
    let rows = listops::read_tsv(path).map_err(anyhow::Error::msg)?;
    to_split(&rows, max_length).with_context(|| format!("tokenizing {}", path.display()))
}

/// Train, validation and test splits: generated (and cached) or read from files.
pub fn splits(cfg: &ListopsConfig) -> Result<[TokenSplit; 3]> {
    if let (Some(train), Some(val), Some(test)) = (&cfg.train_file, &cfg.val_file, &cfg.test_file) {
        return Ok([
            read_split(train, cfg.max_length)?,
            read_split(val, cfg.max_length)?,
            read_split(test, cfg.max_length)?,
        ]);
    }
    let total = cfg.train_examples + cfg.val_examples + cfg.test_examples;
    // One generation for all three splits, so that no expression is in two of them (LRA
    // draws its examples as one set).
    let key = serde_json::json!({
        "version": GENERATOR_VERSION, "params": cfg.gen_params(), "n": total, "seed": cfg.data_seed
    });
    let all = cache::cached("listops", &key, || {
        let rows = listops::try_generate(&cfg.gen_params(), total, cfg.data_seed).map_err(anyhow::Error::msg)?;
        to_split(&rows, cfg.max_length)
    })?;
    Ok(all.into_train_val_test(cfg.train_examples, cfg.val_examples))
}

fn config(params: &serde_json::Value) -> Result<ListopsConfig> {
    Ok(serde_json::from_value(params.clone())?)
}

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    crate::tasks::resolve_validated(combo, ListopsConfig::validate)
}

fn build(params: &serde_json::Value, _: BuildContext) -> Result<TaskData> {
    let cfg = config(params)?;
    let [train, val, test] = splits(&cfg)?;
    Ok(TaskData { train, val: Some(val), test, evals: Vec::new(), io: cfg.io(), lr_override: None, lm: None })
}

pub const INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::LISTOPS,
    resolve,
    io: |p| Ok(config(p)?.io()),
    build: |params, ctx| build(params, ctx).map(Data::Tokens),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_drop_parentheses_pad_and_detokenize() {
        let rows = vec![("( ( ( [MAX 2 ) 9 ) ] )".to_string(), 9u8)];
        let split = to_split(&rows, 6).unwrap();
        assert_eq!(split.inputs, vec![12, 3, 10, 17, 0, 0]);
        assert_eq!(split.targets, vec![9]);
        assert_eq!(detokenize(&split.inputs.to_vec()), "[MAX 2 9 ]");
    }

    #[test]
    fn generated_splits_are_disjoint_labelled_and_bounded() {
        let cfg = ListopsConfig {
            max_depth: 4,
            min_length: 20,
            max_length: 64,
            train_examples: 300,
            val_examples: 50,
            test_examples: 50,
            ..Default::default()
        };
        let [train, val, test] = splits(&cfg).unwrap();
        assert_eq!((train.n, val.n, test.n), (300, 50, 50));
        let texts = |s: &TokenSplit| (0..s.n).map(|i| detokenize(&s.example(i).0)).collect::<Vec<_>>();
        let train_texts = texts(&train);
        assert!(texts(&test).iter().all(|t| !train_texts.contains(t)), "a test expression is in train");
        for s in [&train, &val, &test] {
            for i in 0..s.n {
                let (x, y) = s.example(i);
                let len = x.iter().filter(|&&t| t != listops::PAD).count();
                assert!((20..=64).contains(&len), "length {len}");
                let e = listops::parse(&detokenize(&x)).unwrap();
                assert_eq!(listops::evaluate(&e) as i64, y[0]);
            }
        }
    }
}
