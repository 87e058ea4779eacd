//! `seqbench data export SUITE --out DIR`: the token data each task entry of a suite generates
//! (train and test, for the suite's first seed), written as CSV through polars so that a
//! generator can be inspected or fed to another harness. One row per example: `inputs` and
//! `targets` as space-separated token ids (targets −100 where there is no label).
use super::TokenSplit;
use crate::job::Job;
use anyhow::{Context, Result};
use polars::prelude::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn frame(split: &TokenSplit) -> Result<DataFrame> {
    let join = |xs: &[i64]| xs.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
    let (mut inputs, mut targets) = (Vec::with_capacity(split.n), Vec::with_capacity(split.n));
    for i in 0..split.n {
        let (x, y) = split.example(i);
        inputs.push(join(x));
        targets.push(join(y));
    }
    let example: Vec<u64> = (0..split.n as u64).collect();
    Ok(DataFrame::new(
        split.n,
        vec![
            Column::new("example".into(), example),
            Column::new("inputs".into(), inputs),
            Column::new("targets".into(), targets),
        ],
    )?)
}

/// Writes `<task label>.{train,test}.csv` under `out` for every distinct task configuration of
/// `jobs` (first seed). Tasks without token data (forecast reads its CSV, noop has none) are
/// skipped with a note. Returns the files written.
pub fn export(jobs: &[Job], out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut seen = BTreeSet::new();
    let mut written = Vec::new();
    for job in jobs {
        let key = (job.task.label.clone(), job.task.params.to_string());
        if !seen.insert(key) {
            continue;
        }
        let task = super::find(&job.task.kind).with_context(|| format!("unknown task {}", job.task.kind))?;
        let Ok(data) =
            (task.build)(&job.task.params, super::BuildContext { seed: job.seed, data_dir: job.data_dir.as_deref() })
        else {
            eprintln!("{}: no generated token data to export (skipped)", job.task.label);
            continue;
        };
        let n = seen.iter().filter(|(label, _)| *label == job.task.label).count();
        let stem = if n > 1 { format!("{}-{n}", job.task.label) } else { job.task.label.clone() };
        for (split, data) in [("train", &data.train), ("test", &data.test)] {
            let path = out.join(format!("{stem}.{split}.csv"));
            let mut df = frame(data)?;
            let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            CsvWriter::new(file).finish(&mut df)?;
            written.push(path);
        }
    }
    Ok(written)
}
