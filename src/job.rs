//! A job: one (task, model, training setup, seed) with every parameter resolved. It is what the
//! coordinator hands to a worker (as JSON) and what `job_id` is computed from.
use crate::record::{Measurements, Record, Status};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Bounds that catch typos (an extra zero or three) before a job starts.
const MAX_TIMEOUT_S: f64 = 1e7;
const MAX_STEPS: u64 = 1_000_000_000;
const MAX_BATCH: u64 = 1 << 20;
const MIN_MEMORY: u64 = 64 << 20;

/// Training and measurement settings; `defaults:` in a suite, overridable per task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// `auto` (CUDA when available, else CPU), `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// `float32`, or mixed precision as PyTorch's AMP: `bfloat16` or `float16` (autocast for
    /// the forward, float32 master weights and optimiser state; float16 with dynamic loss
    /// scaling). See `runner::precision`.
    pub dtype: String,
    /// `highest` (float32 matmuls, the default) or `high` (TF32 on CUDA), as
    /// `torch.set_float32_matmul_precision`. Left out of the job's identity when `highest`.
    #[serde(skip_serializing_if = "is_highest")]
    pub matmul_precision: String,
    /// cuDNN autotuning (`torch.backends.cudnn.benchmark`): it runs in the warm-up steps, whose
    /// workspaces the peak-memory figure leaves out. Left out of the job's identity when off.
    #[serde(skip_serializing_if = "is_false")]
    pub cudnn_benchmark: bool,
    /// Optimizer steps. Exclusive with `epochs`; default 1000 when neither is given.
    pub steps: Option<u64>,
    /// Passes over the training split, converted to steps with the batch size.
    pub epochs: Option<f64>,
    pub batch_size: u64,
    /// Peak learning rate.
    pub lr: f64,
    pub weight_decay: f64,
    /// Which parameters `weight_decay` applies to. `matrices` (default): weight matrices only;
    /// biases, norm weights, skips, embedding tables and the SSM parameters that each
    /// architecture's official code exempts are not decayed, and those parameters keep their
    /// official learning-rate rule (S4D's Δ and A at min(0.001, lr), the LRU's ν, θ, γ, B at
    /// lr/2). `all`: every parameter decayed at one learning rate (seqbench before 0.3).
    pub weight_decay_on: WeightDecayOn,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    /// Linear learning-rate warm-up at the start of training.
    pub lr_warmup_steps: u64,
    /// Gradient-norm clipping; 0 disables it.
    pub grad_clip: f64,
    /// First steps (and inference passes) left out of throughput: allocation, caches, JIT.
    /// At most half of the training steps are left out, so short runs still report a figure.
    pub measure_warmup_steps: u64,
    /// Tokens generated one at a time (recurrent step or KV cache) after a prompt, to measure
    /// generation throughput; 0 skips it. Only causal tasks and models with a recurrent form.
    pub generate_tokens: u64,
    /// Stop when the validation loss has not improved for this many epochs, and test the best
    /// epoch's weights (tasks with a validation split: forecast); 0 trains every epoch.
    pub patience: u64,
    /// Evaluate on the test split every N steps (recorded in the loss curve); 0: only at the end.
    pub eval_interval: u64,
    /// `process` (default): each job in its own process, so a crash, hang or OOM is confined to
    /// it. `inline`: in the worker itself, with no process start — for suites of thousands of
    /// cheap jobs; a crash then takes the worker down, and `timeout_s`/`max_memory` are not
    /// enforced.
    pub isolation: Isolation,
    /// Wall-clock limit for the whole job, in seconds.
    pub timeout_s: f64,
    /// libtorch intra-op threads; 0: cores divided by concurrent jobs.
    pub threads: u64,
    /// Memory limit of the job process (bytes, or text such as `4GiB`, `512MB`): allocations
    /// beyond it fail and the job ends with status `oom`. Enforced as RLIMIT_DATA, which counts
    /// heap and anonymous mappings (tensors) but not the mapped libtorch libraries.
    pub max_memory: Option<MemorySize>,
    /// Flush denormal floats to zero in the job process (FTZ/DAZ on every thread that runs
    /// tensor code; see `runner::denormal`). On by default: denormal gradients make recurrent
    /// models on sparse-label tasks train many times slower on x86, an artifact of the
    /// floating-point mode rather than of the architecture. `false` is PyTorch's default. Left
    /// out of the job's identity when on, so that job ids are those of earlier versions.
    #[serde(skip_serializing_if = "is_true")]
    pub flush_denormal: bool,
    /// Write the job's weights as safetensors into `<run dir>/weights/<job_id>.<init|final>.safetensors`
    /// (names as in the VarStore): `none` (default), `init` (before the first step), `final`
    /// (the weights evaluated) or `both`. Not part of the job's identity.
    pub save_weights: SaveWeights,
    /// Start the job from this safetensors file (as `save_weights` writes) instead of a fresh
    /// initialisation.
    pub load_weights: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaveWeights {
    None,
    Init,
    Final,
    Both,
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_highest(p: &String) -> bool {
    p == "highest"
}

/// A size in bytes, written as a number or with a unit (`KB` = 1000, `KiB` = 1024, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MemorySize {
    Bytes(u64),
    Text(String),
}

impl MemorySize {
    pub fn bytes(&self) -> Result<u64, String> {
        let text = match self {
            MemorySize::Bytes(b) => return Ok(*b),
            MemorySize::Text(t) => t.trim(),
        };
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "tb" => 1e12,
            "kib" => 1024.0,
            "mib" => 1024f64.powi(2),
            "gib" => 1024f64.powi(3),
            "tib" => 1024f64.powi(4),
            other => {
                return Err(format!(
                    "unknown unit `{other}` in `{text}`; expected B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
                ))
            }
        };
        let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a size; expected e.g. 4GiB or 512MB"))?;
        Ok((value * scale) as u64)
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            device: "auto".into(),
            dtype: "float32".into(),
            matmul_precision: "highest".into(),
            cudnn_benchmark: false,
            steps: None,
            epochs: None,
            batch_size: 32,
            lr: 1e-3,
            weight_decay: 0.1,
            weight_decay_on: WeightDecayOn::Matrices,
            optimizer: Optimizer::Adamw,
            schedule: Schedule::Cosine,
            lr_warmup_steps: 0,
            grad_clip: 1.0,
            measure_warmup_steps: 5,
            eval_interval: 0,
            generate_tokens: 32,
            patience: 3,
            isolation: Isolation::Process,
            timeout_s: 3600.0,
            threads: 0,
            max_memory: None,
            flush_denormal: true,
            save_weights: SaveWeights::None,
            load_weights: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    Process,
    Inline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDecayOn {
    Matrices,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    Adamw,
    Adam,
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    Cosine,
    /// Halved after every epoch (Time-Series-Library's `type1`); epoch-based runs only.
    Halving,
}

/// A device request as written in a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRequest {
    Auto,
    Cpu,
    Cuda(usize),
}

impl DeviceRequest {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(DeviceRequest::Auto),
            "cpu" => Ok(DeviceRequest::Cpu),
            "cuda" => Ok(DeviceRequest::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceRequest::Cuda)
                .ok_or_else(|| format!("unknown device `{other}`; expected auto, cpu, cuda or cuda:N")),
        }
    }
}

impl TrainConfig {
    /// Checks values serde cannot: ranges and the device syntax. Returns (key, message).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        DeviceRequest::parse(&self.device).map_err(|m| ("device", m))?;
        use crate::runner::precision::{self, Precision};
        let Some(dtype) = Precision::parse(&self.dtype) else {
            return Err(("dtype", format!("unknown dtype `{}`; expected {}", self.dtype, precision::DTYPES)));
        };
        if !["highest", "high"].contains(&self.matmul_precision.as_str()) {
            return Err((
                "matmul_precision",
                format!("unknown matmul_precision `{}`; expected highest or high", self.matmul_precision),
            ));
        }
        if let Err(e) = precision::check(dtype, &self.matmul_precision) {
            return Err(("dtype", e.to_string()));
        }
        match (self.steps, self.epochs) {
            (Some(_), Some(_)) => return Err(("epochs", "give either steps or epochs, not both".into())),
            (Some(0), _) => return Err(("steps", "must be at least 1".into())),
            (_, Some(e)) if !(e > 0.0 && e.is_finite()) => {
                return Err(("epochs", format!("must be a positive number, got {e}")))
            }
            _ => {}
        }
        if self.batch_size == 0 {
            return Err(("batch_size", "must be at least 1".into()));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(("lr", format!("must be a positive number, got {}", self.lr)));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(("weight_decay", format!("must be ≥ 0, got {}", self.weight_decay)));
        }
        if !(self.grad_clip >= 0.0 && self.grad_clip.is_finite()) {
            return Err(("grad_clip", format!("must be ≥ 0 (0 disables clipping), got {}", self.grad_clip)));
        }
        if !(self.timeout_s > 0.0 && self.timeout_s <= MAX_TIMEOUT_S) {
            return Err((
                "timeout_s",
                format!("must be a number of seconds in (0, {MAX_TIMEOUT_S}], got {}", self.timeout_s),
            ));
        }
        if self.steps.is_some_and(|s| s > MAX_STEPS) {
            return Err(("steps", format!("must be at most {MAX_STEPS}")));
        }
        if let Some(limit) = &self.max_memory {
            let bytes = limit.bytes().map_err(|m| ("max_memory", m))?;
            if bytes < MIN_MEMORY {
                return Err((
                    "max_memory",
                    format!("{bytes} bytes is too little to load libtorch; give at least {} MiB", MIN_MEMORY >> 20),
                ));
            }
        }
        if let Some(file) = self.load_weights.as_ref().filter(|f| !f.is_file()) {
            return Err((
                "load_weights",
                format!("no file at {} (a safetensors file as save_weights writes)", file.display()),
            ));
        }
        if self.batch_size > MAX_BATCH {
            return Err(("batch_size", format!("must be at most {MAX_BATCH}, got {}", self.batch_size)));
        }
        Ok(())
    }

    /// Optimizer steps for a training split of `train_examples`.
    pub fn total_steps(&self, train_examples: usize) -> u64 {
        match (self.steps, self.epochs) {
            (Some(s), _) => s,
            (None, Some(e)) => {
                ((e * train_examples as f64) / self.batch_size as f64).ceil().clamp(1.0, MAX_STEPS as f64) as u64
            }
            (None, None) => 1000,
        }
    }
}

/// What a task or model was built from: registry name, display label, resolved parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// Registry name (`mqar`, `lstm`, …).
    pub kind: String,
    /// Display name: the suite's `name:` for the entry, or the registry name.
    pub label: String,
    /// Every parameter, defaults filled in (the typed config serialized).
    pub params: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Stable hash of everything that determines the result (see [`Job::compute_id`]).
    pub job_id: String,
    pub suite: String,
    pub task: Component,
    pub model: Component,
    pub train: TrainConfig,
    pub seed: u64,
    /// Keys (`task.seq_len`, `model.d_model`, `train.lr`) swept in the suite, for the report.
    pub swept: Vec<String>,
    /// Dataset directory given in the suite, if any (see tasks::data).
    pub data_dir: Option<PathBuf>,
}

impl Job {
    /// A record for this job with no measurements yet.
    pub fn new_record(&self, run_id: &str, status: Status) -> Record {
        Record {
            job_id: self.job_id.clone(),
            run_id: run_id.to_string(),
            suite: self.suite.clone(),
            task: self.task.kind.clone(),
            task_label: self.task.label.clone(),
            model: self.model.label.clone(),
            arch: self.model.kind.clone(),
            seed: self.seed,
            params: self.flat_params(),
            swept: self.swept.clone(),
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

    /// sha256 over the canonical JSON of task, model, training config and seed. Labels, the
    /// suite name, `timeout_s`, `max_memory`, `isolation` and `save_weights` (how the job is run,
    /// not inputs to its result) are left out, so renaming or a larger limit does not break resume or
    /// comparison.
    pub fn compute_id(task: &Component, model: &Component, train: &TrainConfig, seed: u64) -> String {
        let train = TrainConfig {
            timeout_s: 0.0,
            max_memory: None,
            isolation: Isolation::Process,
            save_weights: SaveWeights::None,
            ..train.clone()
        };
        let identity = serde_json::json!({
            "task": [&task.kind, &task.params],
            "model": [&model.kind, &model.params],
            "train": train,
            "seed": seed,
        });
        // serde_json's maps are ordered by key, so this text is canonical.
        let digest = Sha256::digest(identity.to_string().as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    /// Every parameter as `task.x`, `model.y`, `train.z` → scalar.
    pub fn flat_params(&self) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        crate::params::flatten("task", &self.task.params, &mut out);
        crate::params::flatten("model", &self.model.params, &mut out);
        crate::params::flatten("train", &self.train, &mut out);
        out
    }
}
