//! LRA `retrieval`: byte-level document matching. Each example is two documents of up to
//! `max_length` bytes (LRA: 4,000), encoded separately by the same model; the pooled encodings
//! u, v are combined as [u, v, u·v, u−v] and an MLP predicts whether they match (2 classes).
//! The model's input row is the two documents side by side (2 × max_length tokens, byte + 1, 0
//! pads); [`Head::PairMatch`] splits it.
//!
//! - `retrieval` reads LRA's own AAN files (`new_aan_pairs.{train,eval,test}.tsv`: `label, id1,
//!   id2, text1, text2`, tab-separated, texts possibly written as Python bytes literals `b'…'`).
//!   They are not shipped here: the AAN corpus is no longer distributed.
//! - `retrieval_standin` is a **stand-in built from IMDB reviews, not AAN**: document 1 is the
//!   first half of a review and document 2 the second half of the same review (label 1) or of
//!   the review closest in length (label 0, so length does not give the answer away). Like AAN
//!   it asks whether two long byte documents belong together; unlike AAN the link is
//!   continuation of one text, not citation.
use super::{byte_tokens, check_count, subset, BYTE_PAD, BYTE_VOCAB};
use crate::models::{Head, TaskIo};
use crate::params::{ParamError, ParamMap};
use crate::tasks::{data, BuildContext, Data, TaskData, TaskInfo, TokenSplit};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const AAN_SOURCE: &str = "the LRA release (lra_release/tsv_data/new_aan_pairs.*.tsv, Radev et al. ACL Anthology Network); it is not shipped with seqbench — give `train_file`/`test_file` or put the files under aan/ in a data directory";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrievalConfig {
    /// Bytes per document (LRA: 4,000).
    pub max_length: usize,
    /// LRA TSV files; by default `aan/new_aan_pairs.{train,eval,test}.tsv` in the data directories.
    pub train_file: Option<PathBuf>,
    pub val_file: Option<PathBuf>,
    pub test_file: Option<PathBuf>,
    pub train_examples: Option<usize>,
    pub test_examples: Option<usize>,
    pub data_seed: u64,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        RetrievalConfig {
            max_length: 4000,
            train_file: None,
            val_file: None,
            test_file: None,
            train_examples: None,
            test_examples: None,
            data_seed: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StandinConfig {
    /// Bytes per document (half a review).
    pub max_length: usize,
    /// Pairs built from each IMDB split (one per review used); all 25,000 when left out.
    pub train_examples: Option<usize>,
    pub test_examples: Option<usize>,
    pub data_seed: u64,
}

impl Default for StandinConfig {
    fn default() -> Self {
        StandinConfig { max_length: 4000, train_examples: None, test_examples: None, data_seed: 0 }
    }
}

fn check_length(len: usize) -> Result<(), (&'static str, String)> {
    if !(1..=1 << 20).contains(&len) {
        return Err(("max_length", format!("must be in 1..=1048576 bytes per document, got {len}")));
    }
    Ok(())
}

fn pair_io(max_length: usize) -> TaskIo {
    TaskIo {
        head: Head::PairMatch,
        pad_id: Some(BYTE_PAD),
        ..TaskIo::per_token(BYTE_VOCAB, 2, max_length as i64, false)
    }
}

impl RetrievalConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        check_length(self.max_length)?;
        super::check_files(&[
            ("train_file", &self.train_file),
            ("val_file", &self.val_file),
            ("test_file", &self.test_file),
        ])?;
        check_count("train_examples", self.train_examples)?;
        check_count("test_examples", self.test_examples)
    }
}

impl StandinConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        check_length(self.max_length)?;
        check_count("train_examples", self.train_examples)?;
        check_count("test_examples", self.test_examples)
    }
}

/// Undoes Python's bytes-literal quoting (`b'…'` / `b"…"`) as LRA's TSVs store texts; other
/// text is returned unchanged.
pub fn unquote_bytes_literal(text: &[u8]) -> Vec<u8> {
    let inner = match text {
        [b'b', q @ (b'\'' | b'"'), inner @ .., last] if last == q => inner,
        _ => return text.to_vec(),
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] != b'\\' || i + 1 == inner.len() {
            out.push(inner[i]);
            i += 1;
            continue;
        }
        let escaped = match inner[i + 1] {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'\\' => Some(b'\\'),
            b'\'' => Some(b'\''),
            b'"' => Some(b'"'),
            b'x' => inner
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok()),
            _ => None,
        };
        match (escaped, inner[i + 1]) {
            (Some(b), b'x') => {
                out.push(b);
                i += 4;
            }
            (Some(b), _) => {
                out.push(b);
                i += 2;
            }
            (None, _) => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    out
}

/// One labelled document pair: (label, document 1, document 2).
pub type Pair = (i64, Vec<u8>, Vec<u8>);

/// Rows of an LRA retrieval TSV; a header line is skipped.
pub fn read_aan_tsv(path: &Path) -> Result<Vec<Pair>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        let label = fields.first().and_then(|f| std::str::from_utf8(f).ok()?.trim().parse::<f64>().ok());
        match (label, fields.len()) {
            (None, _) if i == 0 => continue, // header
            (Some(l), 5) if l == 0.0 || l == 1.0 => {
                rows.push((l as i64, unquote_bytes_literal(fields[3]), unquote_bytes_literal(fields[4])))
            }
            _ => anyhow::bail!(
                "{}:{}: expected 5 tab-separated fields `label id1 id2 text1 text2` with label 0 or 1",
                path.display(),
                i + 1
            ),
        }
    }
    anyhow::ensure!(!rows.is_empty(), "{}: no rows", path.display());
    Ok(rows)
}

/// Two documents per example, side by side.
fn pair_split(pairs: &[(i64, &[u8], &[u8])], max_length: usize) -> TokenSplit {
    let mut inputs = Vec::with_capacity(pairs.len() * 2 * max_length);
    for (_, a, b) in pairs {
        byte_tokens(a, max_length, &mut inputs);
        byte_tokens(b, max_length, &mut inputs);
    }
    TokenSplit::classification(inputs, pairs.iter().map(|p| p.0).collect(), 2 * max_length)
}

fn aan_split(
    cfg: &RetrievalConfig,
    given: &Option<PathBuf>,
    name: &str,
    want: Option<usize>,
    ctx: BuildContext,
) -> Result<TokenSplit> {
    let path = match given {
        Some(p) => p.clone(),
        None => data::locate(&format!("aan/new_aan_pairs.{name}.tsv"), ctx.data_dir, AAN_SOURCE)?,
    };
    let rows = read_aan_tsv(&path)?;
    let pairs: Vec<(i64, &[u8], &[u8])> = subset(rows.len(), want, cfg.data_seed)
        .into_iter()
        .map(|i| (rows[i].0, &rows[i].1[..], &rows[i].2[..]))
        .collect();
    Ok(pair_split(&pairs, cfg.max_length))
}

fn build_aan(params: &serde_json::Value, ctx: BuildContext) -> Result<TaskData> {
    let cfg: RetrievalConfig = serde_json::from_value(params.clone())?;
    // A validation file named in the suite must load; LRA's default `eval` file is optional.
    let val = match (&cfg.val_file, &cfg.train_file) {
        (Some(_), _) => Some(aan_split(&cfg, &cfg.val_file, "eval", cfg.test_examples, ctx)?),
        (None, None) => match data::locate("aan/new_aan_pairs.eval.tsv", ctx.data_dir, AAN_SOURCE) {
            Ok(path) => Some(aan_split(&cfg, &Some(path), "eval", cfg.test_examples, ctx)?),
            Err(_) => None,
        },
        (None, Some(_)) => None,
    };
    Ok(TaskData {
        train: aan_split(&cfg, &cfg.train_file, "train", cfg.train_examples, ctx)?,
        val,
        test: aan_split(&cfg, &cfg.test_file, "test", cfg.test_examples, ctx)?,
        evals: Vec::new(),
        io: pair_io(cfg.max_length),
        lr_override: None,
        lm: None,
    })
}

/// The stand-in's pairs from one IMDB split: halves of the same review (1) or of the review
/// next in length order (0), alternating over a seeded order so the labels are balanced.
pub fn standin_pairs(reviews: &[Vec<u8>], seed: u64) -> Vec<(i64, &[u8], &[u8])> {
    let halves = |r: &[u8]| -> (usize, usize) { (r.len() / 2, r.len()) };
    let mut by_length: Vec<usize> = (0..reviews.len()).collect();
    by_length.sort_by_key(|&i| (reviews[i].len(), i));
    let rank: Vec<usize> = {
        let mut rank = vec![0; reviews.len()];
        for (r, &i) in by_length.iter().enumerate() {
            rank[i] = r;
        }
        rank
    };
    subset(reviews.len(), None, seed)
        .into_iter()
        .enumerate()
        .map(|(k, i)| {
            let r = &reviews[i];
            let first = &r[..halves(r).0];
            if k % 2 == 0 || reviews.len() < 2 {
                (1, first, &r[halves(r).0..])
            } else {
                // The nearest review in length order whose text differs (the IMDB files hold a
                // few duplicated reviews, which sort next to each other).
                let differs = |&&j: &&usize| reviews[j] != *r;
                let after = by_length[rank[i] + 1..].iter().find(differs);
                let before = by_length[..rank[i]].iter().rev().find(differs);
                let Some(&neighbour) = after.or(before) else { return (1, first, &r[halves(r).0..]) };
                let o = &reviews[neighbour];
                (0, first, &o[halves(o).0..])
            }
        })
        .collect()
}

fn standin_split(
    file: &str,
    want: Option<usize>,
    cfg: &StandinConfig,
    seed: u64,
    ctx: BuildContext,
) -> Result<TokenSplit> {
    let (_, rows) = super::text::read_reviews(file, ctx.data_dir)?;
    let reviews: Vec<Vec<u8>> = subset(rows.len(), want, seed).into_iter().map(|i| rows[i].1.clone()).collect();
    Ok(pair_split(&standin_pairs(&reviews, seed), cfg.max_length))
}

fn build_standin(params: &serde_json::Value, ctx: BuildContext) -> Result<TaskData> {
    let cfg: StandinConfig = serde_json::from_value(params.clone())?;
    Ok(TaskData {
        train: standin_split("imdb_train.tsv", cfg.train_examples, &cfg, cfg.data_seed, ctx)?,
        val: None,
        test: standin_split("imdb_test.tsv", cfg.test_examples, &cfg, cfg.data_seed.wrapping_add(1), ctx)?,
        evals: Vec::new(),
        io: pair_io(cfg.max_length),
        lr_override: None,
        lm: None,
    })
}

pub const INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::RETRIEVAL,
    resolve: |c: &ParamMap| -> Result<serde_json::Value, ParamError> {
        crate::tasks::resolve_validated(c, RetrievalConfig::validate)
    },
    io: |p| Ok(pair_io(serde_json::from_value::<RetrievalConfig>(p.clone())?.max_length)),
    build: |params, ctx| build_aan(params, ctx).map(Data::Tokens),
};

pub const STANDIN_INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::RETRIEVAL_STANDIN,
    resolve: |c: &ParamMap| -> Result<serde_json::Value, ParamError> {
        crate::tasks::resolve_validated(c, StandinConfig::validate)
    },
    io: |p| Ok(pair_io(serde_json::from_value::<StandinConfig>(p.clone())?.max_length)),
    build: |params, ctx| build_standin(params, ctx).map(Data::Tokens),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_literals_are_unquoted() {
        assert_eq!(unquote_bytes_literal(br"b'it\'s a \\ test\n\xc3\xa9'"), b"it's a \\ test\n\xc3\xa9".to_vec());
        assert_eq!(unquote_bytes_literal(b"plain text"), b"plain text".to_vec());
    }

    #[test]
    fn aan_tsv_is_read_with_header_and_bad_lines_are_named() {
        let dir = std::env::temp_dir().join(format!("seqbench-aan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.tsv");
        std::fs::write(&good, "label\tid1\tid2\ttext1\ttext2\n1.0\ta\tb\tb'x y'\tuv\n0\tc\td\tp\tq\n").unwrap();
        let rows = read_aan_tsv(&good).unwrap();
        assert_eq!(rows, vec![(1, b"x y".to_vec(), b"uv".to_vec()), (0, b"p".to_vec(), b"q".to_vec())]);
        let bad = dir.join("bad.tsv");
        std::fs::write(&bad, "1\ta\tb\tx\ty\n2\ta\tb\tx\ty\n").unwrap();
        let err = read_aan_tsv(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.tsv:2") && err.contains("label 0 or 1"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn missing_aan_names_the_path_and_the_source() {
        let err = match build_aan(&serde_json::to_value(RetrievalConfig::default()).unwrap(), BuildContext::seed(0)) {
            Err(e) => e.to_string(),
            Ok(_) => return, // someone put the AAN files in a data directory
        };
        assert!(err.contains("aan/new_aan_pairs.train.tsv") && err.contains("LRA release"), "{err}");
    }

    #[test]
    fn standin_pairs_are_balanced_and_positives_are_one_review() {
        let reviews: Vec<Vec<u8>> = (0..100).map(|i| format!("{i}:{}:{i}", "x".repeat(i)).into_bytes()).collect();
        let pairs = standin_pairs(&reviews, 5);
        assert_eq!(pairs.len(), 100);
        assert_eq!(pairs.iter().filter(|p| p.0 == 1).count(), 50);
        for (label, a, b) in &pairs {
            let joined = [*a, *b].concat();
            assert_eq!(*label == 1, reviews.contains(&joined), "{}", String::from_utf8_lossy(&joined));
        }
    }

    #[test]
    fn standin_split_layout() {
        let cfg = StandinConfig { max_length: 100, train_examples: Some(10), ..Default::default() };
        let split = standin_split("imdb_train.tsv", Some(10), &cfg, 0, BuildContext::seed(0)).unwrap();
        assert_eq!((split.n, split.seq_len, split.target_len), (10, 200, 1));
        // Both documents start with real bytes (halves of reviews are never empty).
        assert!((0..10).all(|i| split.example(i).0[0] != BYTE_PAD && split.example(i).0[100] != BYTE_PAD));
    }
}
