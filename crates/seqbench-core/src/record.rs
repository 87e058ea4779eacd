//! The record: one per job, flat, appended to `records.jsonl`. It is the contract between the
//! runner, the store and the report; add fields, never change the meaning of one.
pub mod de;

use de::{measurements_struct, record_struct};
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

/// The scores of one named evaluation split (see `TaskData::evals`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitScores {
    pub accuracy: f64,
    pub exact_match: f64,
    pub loss: f64,
}

/// Mean test loss over a band of context positions (language modelling).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionLoss {
    /// The band's last position + 1: the context the prediction had, at most.
    pub position: u64,
    /// Mean loss (nats) over the band's positions and every test window.
    pub loss: f64,
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

measurements_struct! {
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
        /// Sequence length of the task's examples, as its declared shapes state it (LRA's
        /// `max_length` or `size`, MQAR's `seq_len`, …): what the report draws metrics against.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub seq_len: Option<u64>,
        /// Analytic forward FLOPs per token (training ≈ 3×).
        pub flops_per_token: Option<f64>,
        /// Numbers of state one sequence's step carries at the task's length, all layers
        /// (`Mixer::state_size`: the recurrent state, or attention's KV cache).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub state_size: Option<f64>,
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
        /// Language modelling: the test loss in bits per byte (byte corpora) or as perplexity
        /// (token corpora), and the mean test loss by position in the context.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bits_per_byte: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub perplexity: Option<f64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub loss_by_position: Vec<PositionLoss>,
        /// Fraction of labelled test positions predicted correctly.
        pub accuracy: Option<f64>,
        /// Accuracy on the task's validation split, where it has one (LRA).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub val_accuracy: Option<f64>,
        /// The task's further named evaluation splits (`len=512`, …), each with its scores.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        pub evals: BTreeMap<String, SplitScores>,
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
        /// The job process's malloc settings (glibc's defaults, or freed memory kept for reuse
        /// with SEQBENCH_MALLOC=keep); absent for inline jobs, which keep glibc's defaults.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub allocator: Option<String>,
        /// The kernel path each kind of mixer took (`attention: SDPA flash; lstm: cudnn`, see
        /// `Mixer::implementation`): speed figures compare only between the same paths. Absent
        /// in records from before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub implementation: Option<String>,
        /// Whether the job process flushed denormal floats to zero (`flushed`) or kept them
        /// (`kept`, PyTorch's default); see `train.flush_denormal`. Absent in records from
        /// before the option existed, which kept them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub denormals: Option<String>,
        /// Resident set of the job process before data and model were built (libraries, runtime).
        pub baseline_rss_bytes: Option<u64>,
        /// Seconds spent in the training loop.
        pub train_s: Option<f64>,
        /// Over the training loop: the process's page faults and involuntary context switches,
        /// and the share of the machine's CPU time stolen by the hypervisor (see
        /// `runner::counters`): what explains a speed figure that the code alone would not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub page_faults: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub involuntary_switches: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cpu_steal: Option<f64>,
        /// The machine's 1-minute load average when training started and when it ended: above
        /// the cores, other work competed with the job (the report warns).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub load_avg_start: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub load_avg_end: Option<f64>,
        /// The job process's OS threads at the end of training, and the cores it may run on:
        /// more busy threads than cores (intra-op × concurrent jobs, inter-op, oneDNN) shows up
        /// as involuntary switches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub process_threads: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cores: Option<u64>,
        pub loss_curve: Vec<CurvePoint>,
        /// Forecasting: the first test window's target channel, for the report's prediction chart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub forecast_sample: Option<ForecastSample>,
    }
}

/// What `seqbench exec-job` writes on stdout: the job's own verdict plus measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutput {
    /// `ok` or `diverged`; the other statuses are decided by the parent.
    pub status: Status,
    pub reason: Option<String>,
    pub measurements: Measurements,
}

record_struct! {
    /// One job's record, serialized with `measurements` flattened into the object. Written as
    /// [`Record`] (owned strings, parameters as a map); the report reads the same fields as a
    /// [`Row`](crate::report::row::Row), borrowing strings from the JSON line.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    pub struct RecordOf<S, P> {
        pub job_id: S,
        pub run_id: S,
        pub suite: S,
        /// Task registry name and display name.
        pub task: S,
        pub task_label: S,
        /// Model display name and architecture.
        pub model: S,
        pub arch: S,
        pub seed: u64,
        /// Every resolved parameter: `task.*`, `model.*`, `train.*`.
        pub params: P,
        /// The parameters the suite sweeps (the report groups by them).
        pub swept: Vec<S>,
        pub status: Status,
        /// Why the job did not end `ok` (error message, signal, timeout).
        pub reason: Option<S>,
        flatten measurements: Measurements,
        /// Wall-clock seconds of the whole job process, as seen by the coordinator.
        pub wall_s: f64,
        pub hostname: S,
        /// MPI runs only: the worker's rank in the world, its rank among the workers on its node,
        /// and the CUDA device it was given (the job process sees only that one, as cuda:0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub rank: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub local_rank: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cuda_visible_devices: Option<S>,
        /// RFC 3339 start and end times.
        pub started_at: S,
        pub finished_at: S,
        pub seqbench_version: S,
        /// Last lines of the job's stderr when it did not end `ok`.
        pub stderr_tail: Option<S>,
        /// Job log (stderr), relative to the run directory.
        pub log_file: Option<S>,
    }
}

/// A record as the runner writes it.
pub type Record = RecordOf<String, BTreeMap<String, serde_json::Value>>;

/// What a record's `denormals` says (see the runner's `denormal` module).
pub mod denormals {
    pub const FLUSHED: &str = "flushed";
    pub const KEPT: &str = "kept";
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn full_record() -> Record {
        // Every measurement set, so that a field the reader forgets would come back as None.
        let value: serde_json::Map<String, serde_json::Value> = Measurements::FIELDS
            .iter()
            .map(|&key| {
                let v = match key {
                    "device" | "mem_kind" | "allocator" | "denormals" | "implementation" => serde_json::json!("cpu"),
                    "loss_curve" => serde_json::json!([{"step": 1, "loss": 2.0, "eval_accuracy": 0.5}]),
                    "loss_by_position" => serde_json::json!([{"position": 8, "loss": 1.25}]),
                    "evals" => serde_json::json!({"len=128": {"accuracy": 0.5, "exact_match": 0.25, "loss": 1.5}}),
                    "forecast_sample" => {
                        serde_json::json!({"window": 1, "input": [1.0], "truth": [2.0], "prediction": [3.0]})
                    }
                    _ => serde_json::json!(3),
                };
                (key.to_string(), v)
            })
            .collect();
        let measurements: Measurements = serde_json::from_value(value.into()).unwrap();
        Record {
            job_id: "j".into(),
            run_id: "r".into(),
            suite: "s".into(),
            task: "t".into(),
            task_label: "t \"quoted\"".into(),
            model: "m".into(),
            arch: "a".into(),
            seed: 7,
            params: [("task.seq_len".to_string(), serde_json::json!(64))].into_iter().collect(),
            swept: vec!["task.seq_len".into()],
            status: Status::Oom,
            reason: Some("out of memory".into()),
            measurements,
            wall_s: 1.5,
            hostname: "h".into(),
            rank: Some(1),
            local_rank: Some(0),
            cuda_visible_devices: Some("0".into()),
            started_at: "a".into(),
            finished_at: "b".into(),
            seqbench_version: "v".into(),
            stderr_tail: Some("tail".into()),
            log_file: Some("logs/j.log".into()),
        }
    }

    #[test]
    fn a_record_reads_back_equal_with_every_field_set() {
        let record = full_record();
        assert!(record.measurements.mfu.is_some() && record.measurements.forecast_sample.is_some());
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), record);
    }

    #[test]
    fn absent_optional_fields_are_none_unknown_fields_are_skipped_and_a_missing_field_is_named() {
        let mut value = serde_json::to_value(full_record()).unwrap();
        let object = value.as_object_mut().unwrap();
        object.remove("rank");
        object.remove("mfu");
        object.insert("from_a_newer_version".into(), serde_json::json!({"nested": [1, 2]}));
        let record: Record = serde_json::from_value(value.clone()).unwrap();
        assert_eq!((record.rank, record.measurements.mfu), (None, None));
        value.as_object_mut().unwrap().remove("job_id");
        let err = serde_json::from_str::<Record>(&value.to_string()).unwrap_err().to_string();
        assert!(err.contains("missing field `job_id`"), "{err}");
    }
}
