//! The record: one per job, flat, appended to `records.jsonl`. It is the contract between the
//! runner, the store and the report; add fields, never change the meaning of one.
use crate::job::Job;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Trained and evaluated.
    Ok,
    /// The training loss became NaN or infinite; training stopped there.
    Diverged,
    /// The job process exited non-zero with an error (bad data file, CUDA unavailable, …).
    Failed,
    /// The job process panicked (a bug in seqbench or libtorch bindings).
    Panic,
    /// The job process was killed by a signal (abort, segfault, out-of-memory killer).
    Crashed,
    /// The job exceeded `timeout_s` and was killed.
    Timeout,
    /// The job ran out of memory: its `max_memory` limit, or the machine's.
    Oom,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
            Status::Panic => "panic",
            Status::Crashed => "crashed",
            Status::Timeout => "timeout",
            Status::Oom => "oom",
        }
    }
}

/// One forecast next to the truth (scaled values of the target channel, the last one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastSample {
    /// Test window index.
    pub window: usize,
    /// The input (seq_len values), then the truth and the forecast (pred_len values each).
    pub input: Vec<f64>,
    pub truth: Vec<f64>,
    pub prediction: Vec<f64>,
}

/// One point of the down-sampled training curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub step: u64,
    /// Mean training loss over the steps since the previous point.
    pub loss: f64,
    /// Test accuracy at this step, when `eval_interval` asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_accuracy: Option<f64>,
}

/// What the job process measured. Every field is optional so that a failed job's record keeps
/// the same columns (null).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Measurements {
    /// Device the job ran on (`cpu`, `cuda:0`).
    pub device: Option<String>,
    /// libtorch intra-op threads.
    pub threads: Option<u64>,
    /// Trainable parameters.
    pub n_params: Option<u64>,
    /// Analytic forward FLOPs per token (training ≈ 3×).
    pub flops_per_token: Option<f64>,
    /// Optimizer steps taken.
    pub steps: Option<u64>,
    /// Mean training loss over the last 10 % of steps.
    pub train_loss: Option<f64>,
    /// Mean loss over the labelled test positions.
    pub eval_loss: Option<f64>,
    /// Forecasting: mean squared and absolute error over every test window, on scaled values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mse: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    /// Forecasting: best validation MSE and the epochs trained before early stopping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_mse: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs_trained: Option<u64>,
    /// Fraction of labelled test positions predicted correctly.
    pub accuracy: Option<f64>,
    /// Accuracy on the task's validation split, where it has one (LRA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// Achieved training FLOP/s: 3 × forward FLOPs/token × training tokens/s (backward ≈ 2 ×
    /// forward), and its fraction of the calibrated matmul peak (`seqbench calibrate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_flops_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfu: Option<f64>,
    /// Fraction of test examples with every labelled position correct.
    pub exact_match: Option<f64>,
    /// Training throughput (forward + backward + optimizer), tokens/s: median and p10/p90 of steps
    /// after the warm-up.
    pub train_tokens_per_s: Option<f64>,
    pub train_tokens_per_s_p10: Option<f64>,
    pub train_tokens_per_s_p90: Option<f64>,
    /// Inference throughput (forward only, no grad), tokens/s: median and p10/p90.
    pub infer_tokens_per_s: Option<f64>,
    pub infer_tokens_per_s_p10: Option<f64>,
    pub infer_tokens_per_s_p90: Option<f64>,
    /// Generation throughput (recurrent step / KV cache, no grad), tokens/s over the generated
    /// tokens after a prompt: median and p10/p90 of the steps. Absent for models without a
    /// recurrent form and for non-causal tasks.
    pub gen_tokens_per_s: Option<f64>,
    pub gen_tokens_per_s_p10: Option<f64>,
    pub gen_tokens_per_s_p90: Option<f64>,
    /// Peak memory in bytes; what it measures is in `mem_kind`.
    pub peak_mem_bytes: Option<u64>,
    /// `cpu_peak_rss`: the job process's peak resident set (VmHWM); `cuda_not_measured` on GPU
    /// until the allocator peak is wired in.
    pub mem_kind: Option<String>,
    /// Resident set of the job process before data and model were built (libraries, runtime).
    pub baseline_rss_bytes: Option<u64>,
    /// Seconds spent in the training loop.
    pub train_s: Option<f64>,
    pub loss_curve: Vec<CurvePoint>,
    /// Forecasting: the first test window's target channel, for the report's prediction chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_sample: Option<ForecastSample>,
}

/// What `seqbench exec-job` writes on stdout: the job's own verdict plus measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutput {
    /// `ok` or `diverged`; the other statuses are decided by the parent.
    pub status: Status,
    pub reason: Option<String>,
    pub measurements: Measurements,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub job_id: String,
    pub run_id: String,
    pub suite: String,
    /// Task registry name and display name.
    pub task: String,
    pub task_label: String,
    /// Model display name and architecture.
    pub model: String,
    pub arch: String,
    pub seed: u64,
    /// Every resolved parameter: `task.*`, `model.*`, `train.*`.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The parameters the suite sweeps (the report groups by them).
    pub swept: Vec<String>,
    pub status: Status,
    /// Why the job did not end `ok` (error message, signal, timeout).
    pub reason: Option<String>,
    #[serde(flatten)]
    pub measurements: Measurements,
    /// Wall-clock seconds of the whole job process, as seen by the coordinator.
    pub wall_s: f64,
    pub hostname: String,
    /// MPI runs only: the worker's rank in the world, its rank among the workers on its node,
    /// and the CUDA device it was given (the job process sees only that one, as cuda:0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_rank: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_visible_devices: Option<String>,
    /// RFC 3339 start and end times.
    pub started_at: String,
    pub finished_at: String,
    pub seqbench_version: String,
    /// Last lines of the job's stderr when it did not end `ok`.
    pub stderr_tail: Option<String>,
    /// Job log (stderr), relative to the run directory.
    pub log_file: Option<String>,
}

impl Record {
    /// A record for `job` with no measurements yet.
    pub fn new(job: &Job, run_id: &str, status: Status) -> Self {
        Record {
            job_id: job.job_id.clone(),
            run_id: run_id.to_string(),
            suite: job.suite.clone(),
            task: job.task.kind.clone(),
            task_label: job.task.label.clone(),
            model: job.model.label.clone(),
            arch: job.model.kind.clone(),
            seed: job.seed,
            params: job.flat_params(),
            swept: job.swept.clone(),
            status,
            reason: None,
            measurements: Measurements::default(),
            wall_s: 0.0,
            hostname: crate::env_info::hostname(),
            rank: None,
            local_rank: None,
            cuda_visible_devices: None,
            started_at: String::new(),
            finished_at: String::new(),
            seqbench_version: env!("CARGO_PKG_VERSION").to_string(),
            stderr_tail: None,
            log_file: None,
        }
    }
}
