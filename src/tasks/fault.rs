//! `fault`: a diagnostic task that provokes one failure mode inside the job process, so the
//! harness's handling of it can be tested end to end (and demonstrated). `mode: none` is a tiny
//! MQAR that succeeds in a second.
use super::{mqar, Data, TaskData, TaskInfo};
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
    /// SIGSEGV → status `crashed`.
    Segfault,
    /// Sleep past the job's timeout → status `timeout`.
    Hang,
    /// Return an error → status `failed`.
    Error,
    /// Absurd learning rate → NaN loss → status `diverged`.
    Nan,
    /// Allocate far beyond `max_memory` → status `oom`. Refuses to run without a limit.
    Oom,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    pub mode: FaultMode,
}

/// Whether this process runs under a data-size limit (train.max_memory).
fn data_limited() -> bool {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into a valid rlimit struct.
    unsafe { libc::getrlimit(libc::RLIMIT_DATA, &mut limit) == 0 && limit.rlim_cur != libc::RLIM_INFINITY }
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

fn build(params: &serde_json::Value, ctx: super::BuildContext) -> anyhow::Result<TaskData> {
    let cfg: FaultConfig = serde_json::from_value(params.clone())?;
    let mut data = mqar::INFO.build_tokens(&serde_json::to_value(tiny())?, ctx)?;
    match cfg.mode {
        FaultMode::None => {}
        FaultMode::Panic => panic!("fault task: deliberate panic"),
        FaultMode::Abort => {
            eprintln!("fault task: deliberate abort");
            std::process::abort()
        }
        FaultMode::Segfault => {
            eprintln!("fault task: deliberate segmentation fault");
            // SAFETY: deliberately not safe: a write through a null pointer faults (SIGSEGV), as a
            // bug in native code would. Rust's handler sees no guard page and lets the default
            // action end the process.
            unsafe { std::ptr::null_mut::<u8>().write_volatile(1) };
            anyhow::bail!("SIGSEGV did not end the process")
        }
        FaultMode::Hang => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        FaultMode::Error => anyhow::bail!("fault task: deliberate error"),
        // libtorch rejects a NaN learning rate; an absurd one overflows the weights to ±inf and
        // the loss to NaN within two steps.
        FaultMode::Nan => data.lr_override = Some(1e30),
        FaultMode::Oom => {
            anyhow::ensure!(data_limited(), "fault mode oom needs train.max_memory (it would exhaust the machine)");
            let mut hoard = Vec::new();
            loop {
                // 256 MiB at a time until the allocator refuses.
                hoard.push(tch::Tensor::f_ones([64 << 20], (tch::Kind::Float, tch::Device::Cpu))?);
            }
        }
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
    facts: seqbench_core::tasks::FAULT,
    resolve,
    io,
    build: |params, ctx| build(params, ctx).map(Data::Tokens),
};
