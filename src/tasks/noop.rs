//! `noop`: a job that does nothing and succeeds at once — no data, no model, no training. It
//! measures what the harness itself costs per job (`scripts/bench_dispatch.sh`).
use super::{Data, TaskInfo};
use crate::models::TaskIo;
use crate::params::{ParamError, ParamMap};

/// Task name (its `training: Nothing` makes the runner return before any set-up).
pub const NAME: &str = seqbench_core::tasks::NOOP.name;

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    if let Some(key) = combo.keys().next() {
        return Err(ParamError::new(key, "the noop task takes no parameters"));
    }
    Ok(serde_json::json!({}))
}

/// Shapes for validating the suite's model configs; nothing is ever built from them.
fn io(_: &serde_json::Value) -> anyhow::Result<TaskIo> {
    Ok(TaskIo::per_token(16, 16, 8, true))
}

fn build(_: &serde_json::Value, _: super::BuildContext) -> anyhow::Result<Data> {
    Ok(Data::Nothing)
}

pub const INFO: TaskInfo = TaskInfo { facts: seqbench_core::tasks::NOOP, resolve, io, build };
