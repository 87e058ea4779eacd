//! LRA `text`: byte-level IMDB sentiment (Maas et al. 2011). Each review's raw UTF-8 bytes are
//! tokens (byte + 1; 0 pads), truncated or padded to `max_length` (LRA: 4,096), and the model
//! classifies the whole sequence: 2 classes, 25,000 train and 25,000 test reviews. LRA has no
//! separate validation split for this task.
use super::{byte_tokens, check_count, read_labelled_tsv, subset, LabelledText, BYTE_PAD, BYTE_VOCAB};
use crate::models::{Head, TaskIo};
use crate::params::{ParamError, ParamMap};
use crate::tasks::{data, BuildContext, Data, TaskData, TaskInfo, TokenSplit};
use anyhow::Result;
use serde::{Deserialize, Serialize};

pub const SOURCE: &str =
    "the IMDB Large Movie Review Dataset (Maas et al. 2011), packed as `label<TAB>text` in ../shared/datasets/imdb";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextConfig {
    /// Bytes per review after truncation or padding (LRA: 4,096).
    pub max_length: usize,
    /// Reviews used from each split (a seeded random subset); all when left out.
    pub train_examples: Option<usize>,
    pub test_examples: Option<usize>,
    /// Seed of the subset choice (fixed by default so every model sees the same reviews).
    pub data_seed: u64,
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig { max_length: 4096, train_examples: None, test_examples: None, data_seed: 0 }
    }
}

impl TextConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=1 << 20).contains(&self.max_length) {
            return Err(("max_length", format!("must be in 1..=1048576 bytes, got {}", self.max_length)));
        }
        check_count("train_examples", self.train_examples)?;
        check_count("test_examples", self.test_examples)
    }

    fn io(&self) -> TaskIo {
        TaskIo {
            head: Head::MeanPool,
            pad_id: Some(BYTE_PAD),
            ..TaskIo::per_token(BYTE_VOCAB, 2, self.max_length as i64, false)
        }
    }
}

/// The reviews of an IMDB file (`imdb/{file}` under the data directories), with its path.
pub fn read_reviews(file: &str, data_dir: Option<&std::path::Path>) -> Result<(std::path::PathBuf, Vec<LabelledText>)> {
    let path = data::locate(&format!("imdb/{file}"), data_dir, SOURCE)?;
    let rows = read_labelled_tsv(&path)?;
    Ok((path, rows))
}

/// Reads `file` (under the data directories) and keeps a seeded subset of `want` reviews.
pub fn load_split(
    file: &str,
    want: Option<usize>,
    max_length: usize,
    seed: u64,
    data_dir: Option<&std::path::Path>,
) -> Result<TokenSplit> {
    let (path, rows) = read_reviews(file, data_dir)?;
    if let Some((label, _)) = rows.iter().find(|(label, _)| !(0..=1).contains(label)) {
        anyhow::bail!("{}: label {label} is not 0 or 1", path.display());
    }
    let pick = subset(rows.len(), want, seed);
    let mut inputs = Vec::with_capacity(pick.len() * max_length);
    for &i in &pick {
        byte_tokens(&rows[i].1, max_length, &mut inputs);
    }
    Ok(TokenSplit::classification(inputs, pick.iter().map(|&i| rows[i].0).collect(), max_length))
}

fn config(params: &serde_json::Value) -> Result<TextConfig> {
    Ok(serde_json::from_value(params.clone())?)
}

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    crate::tasks::resolve_validated(combo, TextConfig::validate)
}

fn build(params: &serde_json::Value, ctx: BuildContext) -> Result<TaskData> {
    let cfg = config(params)?;
    let split = |file, want, seed| load_split(file, want, cfg.max_length, seed, ctx.data_dir);
    Ok(TaskData {
        train: split("imdb_train.tsv", cfg.train_examples, cfg.data_seed)?,
        val: None,
        test: split("imdb_test.tsv", cfg.test_examples, cfg.data_seed.wrapping_add(1))?,
        evals: Vec::new(),
        io: cfg.io(),
        lr_override: None,
        lm: None,
    })
}

pub const INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::TEXT,
    resolve,
    io: |p| Ok(config(p)?.io()),
    build: |params, ctx| build(params, ctx).map(Data::Tokens),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_imdb_has_25k_balanced_reviews_per_split_in_byte_range() {
        for file in ["imdb_train.tsv", "imdb_test.tsv"] {
            let split = load_split(file, None, 512, 0, None).unwrap();
            assert_eq!(split.n, 25_000, "{file}");
            assert_eq!(split.targets.iter().filter(|&y| y == 1).count(), 12_500, "{file}");
            assert!(split.inputs.iter().all(|t| (0..BYTE_VOCAB).contains(&t)));
            // Reviews are at least a few bytes long: no example is all padding.
            assert!((0..split.n).all(|i| split.example(i).0[0] != BYTE_PAD), "{file}");
        }
    }

    #[test]
    fn a_subset_keeps_both_classes() {
        let split = load_split("imdb_test.tsv", Some(1000), 64, 3, None).unwrap();
        let pos = split.targets.iter().filter(|&y| y == 1).count();
        assert!((400..600).contains(&pos), "{pos} positives in 1000");
    }
}
