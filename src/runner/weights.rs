//! `save_weights` and `load_weights`: a job's parameters as safetensors, under the names of the
//! VarStore (`blocks.0.mixer.a_log`, …), in `<run dir>/weights/<job_id>.<init|final>.safetensors`.
use crate::job::{Job, SaveWeights};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use tch::nn;

/// Environment variable through which the coordinator tells a job process its run directory.
pub const RUN_DIR_ENV: &str = "SEQBENCH_RUN_DIR";

/// Which snapshot of the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshot {
    /// Before the first step (after `load_weights`, if any).
    Init,
    /// The weights that were evaluated.
    Final,
}

impl Snapshot {
    fn wanted(self, setting: SaveWeights) -> bool {
        matches!(
            (self, setting),
            (_, SaveWeights::Both) | (Snapshot::Init, SaveWeights::Init) | (Snapshot::Final, SaveWeights::Final)
        )
    }

    fn suffix(self) -> &'static str {
        match self {
            Snapshot::Init => "init",
            Snapshot::Final => "final",
        }
    }
}

/// Where a job's snapshot goes.
pub fn path(run_dir: &Path, job_id: &str, snapshot: Snapshot) -> PathBuf {
    run_dir.join("weights").join(format!("{job_id}.{}.safetensors", snapshot.suffix()))
}

/// Starts the model from `load_weights` when the job sets it. Every parameter of the model must
/// be in the file with the same shape.
pub fn load_start(vs: &mut nn::VarStore, job: &Job) -> Result<()> {
    let Some(file) = &job.train.load_weights else { return Ok(()) };
    vs.load(file).with_context(|| {
        format!(
            "load_weights: could not start from {} (a safetensors file holding every parameter of this \
             model under its VarStore name, as save_weights writes)",
            file.display()
        )
    })?;
    tracing::info!("weights loaded from {}", file.display());
    Ok(())
}

/// Writes the snapshot if the job's `save_weights` asks for it.
pub fn save(vs: &nn::VarStore, job: &Job, run_dir: Option<&Path>, snapshot: Snapshot) -> Result<()> {
    if !snapshot.wanted(job.train.save_weights) {
        return Ok(());
    }
    let run_dir = run_dir.context("save_weights: this job process was not given a run directory")?;
    let file = path(run_dir, &job.job_id, snapshot);
    std::fs::create_dir_all(file.parent().expect("weights files are in a directory"))
        .with_context(|| format!("creating {}", run_dir.join("weights").display()))?;
    vs.save(&file).with_context(|| format!("save_weights: writing {}", file.display()))?;
    Ok(())
}
