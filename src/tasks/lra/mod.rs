//! Long Range Arena (Tay et al. 2021): the six tasks, each runnable from this repository and
//! `../shared/datasets` alone. docs/lra.md states what each task is and where it differs from
//! the original; the retrieval task's stand-in is never labelled AAN.
pub mod image;
pub mod listops;
pub mod listops_task;
pub mod pathfinder;
pub mod pathfinder_task;
pub mod retrieval;
pub mod text;

use crate::rng::SplitMix64;
use anyhow::{Context, Result};
use std::path::Path;

/// Padding id of the byte-level tasks; byte b is token b + 1.
pub const BYTE_PAD: i64 = 0;
/// 256 byte values plus padding.
pub const BYTE_VOCAB: i64 = 257;

/// `bytes` as byte tokens (b + 1), truncated or right-padded with [`BYTE_PAD`] to `len`.
pub fn byte_tokens(bytes: &[u8], len: usize, out: &mut Vec<i64>) {
    out.extend(bytes.iter().take(len).map(|&b| b as i64 + 1));
    out.extend(std::iter::repeat_n(BYTE_PAD, len.saturating_sub(bytes.len())));
}

/// The first `want` (all when None) of `0..total` in an order shuffled by `seed`: a subset for
/// small runs that keeps the class balance of a sorted file.
pub fn subset(total: usize, want: Option<usize>, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..total).collect();
    SplitMix64::new(seed ^ 0x5B5E_7000).shuffle(&mut order);
    order.truncate(want.unwrap_or(total).min(total));
    order
}

/// One line of a `label<TAB>text` file: (label, text bytes).
pub type LabelledText = (i64, Vec<u8>);

/// Lines of a `label<TAB>text` file (IMDB as shipped).
pub fn read_labelled_tsv(path: &Path) -> Result<Vec<LabelledText>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            let tab = line.iter().position(|&b| b == b'\t');
            let label = tab.and_then(|t| std::str::from_utf8(&line[..t]).ok()?.trim().parse::<i64>().ok());
            match (tab, label) {
                (Some(t), Some(label)) => Ok((label, line[t + 1..].to_vec())),
                _ => anyhow::bail!("{}:{}: expected `label<TAB>text` with an integer label", path.display(), i + 1),
            }
        })
        .collect()
}

/// Files named in a task's parameters must exist when the suite is checked, not when the job
/// starts.
pub fn check_files(files: &[(&'static str, &Option<std::path::PathBuf>)]) -> Result<(), (&'static str, String)> {
    for (key, file) in files {
        if let Some(path) = file.as_ref().filter(|p| !p.is_file()) {
            return Err((
                key,
                format!("no such file: {} (relative paths start from the directory seqbench runs in)", path.display()),
            ));
        }
    }
    Ok(())
}

/// Train, validation and test sizes of a generated task must each be at least 1; returns their
/// total, widened so that a size limit can be checked without overflow.
pub fn check_split_sizes(train: usize, val: usize, test: usize) -> Result<u128, (&'static str, String)> {
    for (key, n) in [("train_examples", train), ("val_examples", val), ("test_examples", test)] {
        if n == 0 {
            return Err((key, "must be at least 1".into()));
        }
    }
    Ok(train as u128 + val as u128 + test as u128)
}

/// Examples requested must be at least 1 when given.
pub fn check_count(key: &'static str, n: Option<usize>) -> Result<(), (&'static str, String)> {
    match n {
        Some(0) => Err((key, "must be at least 1 (leave it out for the whole split)".into())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tokens_shift_truncate_and_pad() {
        let mut out = Vec::new();
        byte_tokens(b"\x00\xffab", 3, &mut out);
        byte_tokens(b"a", 3, &mut out);
        assert_eq!(out, vec![1, 256, 98, 98, 0, 0]);
    }

    #[test]
    fn train_val_test_split_moves_consecutive_examples() {
        let all = crate::tasks::TokenSplit::classification((0..20).collect::<Vec<i64>>(), (0..10).collect(), 2);
        let [train, val, test] = all.into_train_val_test(6, 3);
        assert_eq!((train.n, val.n, test.n), (6, 3, 1));
        assert_eq!(train.targets, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!((val.targets.to_vec(), val.example(0).0), (vec![6, 7, 8], vec![12i64, 13]));
        assert_eq!((test.targets.to_vec(), test.inputs.to_vec()), (vec![9], vec![18, 19]));
    }

    #[test]
    fn subset_is_a_seeded_prefix_of_a_permutation() {
        let a = subset(100, Some(10), 1);
        assert_eq!(a.len(), 10);
        assert_eq!(a, subset(100, Some(10), 1));
        assert_ne!(a, subset(100, Some(10), 2));
        let mut all = subset(100, None, 1);
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }
}
