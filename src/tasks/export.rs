//! `seqbench data export SUITE --out DIR`: the token data each task entry of a suite generates
//! (train, test and the named evaluation splits such as `len=64`, for the suite's first seed), written as CSV through polars so that a
//! generator can be inspected or fed to another harness. One row per example: `inputs` and
//! `targets` as space-separated token ids (targets −100 where there is no label), and where a
//! task counts more than the target as right (`icll`), `accepted`: per position the bitmask of
//! the classes scored correct (bit c set: class c is right there).
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
        inputs.push(join(&x));
        targets.push(join(&y));
    }
    let example: Vec<u64> = (0..split.n as u64).collect();
    let mut columns = vec![
        Column::new("example".into(), example),
        Column::new("inputs".into(), inputs),
        Column::new("targets".into(), targets),
    ];
    if let Some(accepted) = &split.accepted {
        let masks: Vec<String> = accepted
            .chunks(split.target_len)
            .map(|m| m.iter().map(u64::to_string).collect::<Vec<_>>().join(" "))
            .collect();
        columns.push(Column::new("accepted".into(), masks));
    }
    Ok(DataFrame::new(split.n, columns)?)
}

/// Writes `<task label>.{train,test,len=N,…}.csv` under `out` for every distinct task configuration of
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
        // A time series or no data at all (noop): nothing to export as tokens.
        if task.training != super::Training::Tokens {
            eprintln!("{}: no token data to export (skipped)", job.task.label);
            continue;
        }
        let ctx = super::BuildContext { seed: job.seed, data_dir: job.data_dir.as_deref() };
        let data = task
            .build_tokens(&job.task.params, ctx)
            .with_context(|| format!("building the data of task entry `{}`", job.task.label))?;
        let n = seen.iter().filter(|(label, _)| *label == job.task.label).count();
        let stem = if n > 1 { format!("{}-{n}", job.task.label) } else { job.task.label.clone() };
        let splits = [("train", Some(&data.train)), ("val", data.val.as_ref()), ("test", Some(&data.test))];
        let named = splits.into_iter().filter_map(|(name, s)| Some((name.to_string(), s?)));
        for (split, data) in named.chain(data.evals.iter().map(|(name, s)| (name.clone(), s))) {
            let path = out.join(format!("{stem}.{split}.csv"));
            let mut df = frame(data)?;
            let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            CsvWriter::new(file).finish(&mut df)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// `key=value` flags as a parameter map (values read as YAML scalars: `8`, `true`, `hard`).
pub fn param_flags(flags: &[String]) -> Result<crate::params::ParamMap> {
    flags
        .iter()
        .map(|flag| {
            let (key, value) = flag.split_once('=').ok_or_else(|| {
                crate::error::InputError::new(format!(
                    "--param `{flag}`: expected KEY=VALUE, e.g. --param max_length=256"
                ))
            })?;
            let value: serde_yaml::Value = serde_yaml::from_str(value).unwrap_or_else(|_| value.into());
            Ok((key.trim().to_string(), value))
        })
        .collect()
}

pub use seqbench_core::cli::SplitName;

/// The task's data with `flags` applied, or an input error naming the task or the key.
pub fn build_task(task: &str, flags: &[String], seed: u64) -> Result<super::TaskData> {
    let info = super::find(task).ok_or_else(|| {
        crate::error::InputError::new(format!("unknown task `{task}`; tasks: {}", super::names().join(", ")))
    })?;
    let params = (info.resolve)(&param_flags(flags)?)
        .map_err(|e| crate::error::InputError::new(format!("task `{task}`, parameter `{}`: {}", e.key, e.message)))?;
    info.build_tokens(&params, super::BuildContext::seed(seed)).with_context(|| format!("building the {task} data"))
}

/// `seqbench data export TASK`: one split of one task, as LRA TSV (listops), PNG images
/// (pathfinder/pathx with `png`) or CSV of token ids. Returns the files written.
pub fn export_task(
    task: &str,
    flags: &[String],
    split: SplitName,
    out: &Path,
    png: Option<usize>,
) -> Result<Vec<PathBuf>> {
    let data = build_task(task, flags, 0)?;
    let chosen = match split {
        SplitName::Train => &data.train,
        SplitName::Test => &data.test,
        SplitName::Val => data.val.as_ref().ok_or_else(|| {
            crate::error::InputError::new(format!("task `{task}` has no validation split; use --split train or test"))
        })?,
    };
    if let Some(n) = png {
        return super::lra::pathfinder_task::export_png(task, chosen, n, out);
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    if task == super::lra::listops_task::INFO.name {
        let rows: Vec<(String, u8)> = (0..chosen.n)
            .map(|i| {
                let (x, y) = chosen.example(i);
                let e = super::lra::listops::parse(&super::lra::listops_task::detokenize(&x))
                    .map_err(anyhow::Error::msg)?;
                Ok((super::lra::listops::render(&e, true), y[0] as u8))
            })
            .collect::<Result<_>>()?;
        super::lra::listops::write_tsv(out, &rows).with_context(|| format!("writing {}", out.display()))?;
    } else {
        let mut df = frame(chosen)?;
        let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
        CsvWriter::new(file).finish(&mut df)?;
    }
    Ok(vec![out.to_path_buf()])
}

/// `seqbench data validate listops FILE`: (rows, mismatches, first few as text).
pub fn validate_listops(file: &Path) -> Result<(usize, usize, Vec<String>)> {
    let rows = super::lra::listops::read_tsv(file).map_err(anyhow::Error::msg)?;
    let (count, first) =
        super::lra::listops::validate(&rows).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    // LRA files have a header line, SPINN files none: the first bytes tell (after a BOM).
    let mut start = [0u8; 9];
    let n = std::fs::File::open(file).and_then(|mut f| std::io::Read::read(&mut f, &mut start)).unwrap_or(0);
    let header = start[..n].strip_prefix("\u{feff}".as_bytes()).unwrap_or(&start[..n]).starts_with(b"Source");
    let lines = first
        .iter()
        .map(|(row, stated, computed)| {
            let source = &rows[row - 1].0;
            let short: String = source.chars().take(80).collect();
            format!("line {}: label {stated}, evaluates to {computed}: {short}…", row + header as usize)
        })
        .collect();
    Ok((rows.len(), count, lines))
}
