//! `fault`: a diagnostic task that provokes one failure mode inside the job process, so the
//! harness's handling of it can be tested end to end (and demonstrated). `mode: none` is a tiny
//! MQAR that succeeds in a second.
use super::{mqar, TaskData, TaskInfo};
use crate::models::TaskIo;
use crate::params::{ParamError, ParamMap};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultMode {
    /// Succeed.
    None,
    /// Rust panic → status `panic`.
    Panic,
    /// SIGABRT → status `crashed`.
    Abort,
    /// Sleep past the job's timeout → status `timeout`.
    Hang,
    /// Return an error → status `failed`.
    Error,
    /// Absurd learning rate → NaN loss → status `diverged`.
    Nan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    pub mode: FaultMode,
}

fn tiny() -> mqar::MqarConfig {
    mqar::MqarConfig {
        vocab_size: 16,
        seq_len: 8,
        num_kv_pairs: 2,
        train_examples: 64,
        test_examples: 16,
        ..Default::default()
    }
}

fn build(params: &serde_json::Value, seed: u64) -> anyhow::Result<TaskData> {
    let cfg: FaultConfig = serde_json::from_value(params.clone())?;
    let mut data = (mqar::INFO.build)(&serde_json::to_value(tiny())?, seed)?;
    match cfg.mode {
        FaultMode::None => {}
        FaultMode::Panic => panic!("fault task: deliberate panic"),
        FaultMode::Abort => {
            eprintln!("fault task: deliberate abort");
            std::process::abort()
        }
        FaultMode::Hang => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        FaultMode::Error => anyhow::bail!("fault task: deliberate error"),
        // libtorch rejects a NaN learning rate; an absurd one overflows the weights to ±inf and
        // the loss to NaN within two steps.
        FaultMode::Nan => data.lr_override = Some(1e30),
    }
    Ok(data)
}

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    let cfg: FaultConfig = crate::params::resolve(combo)?;
    serde_json::to_value(&cfg).map_err(|e| ParamError::new("", e.to_string()))
}

fn io(_: &serde_json::Value) -> anyhow::Result<TaskIo> {
    Ok(tiny().io())
}

pub const INFO: TaskInfo = TaskInfo {
    name: "fault",
    description: "diagnostic: provokes a failure (panic, abort, hang, error, nan) to test the harness",
    resolve,
    io,
    build,
};
