//! Tasks: each turns its typed config into train/test token data and declares what the model
//! must consume and produce ([`TaskIo`]). Generators are deterministic by seed.
pub mod cache;
pub mod data;
pub mod export;
pub mod fault;
pub mod forecast;
pub mod formal;
pub mod icll;
pub mod lm;
pub mod lra;
pub mod mqar;
pub mod noop;
pub mod passkey;
pub mod recall;
pub mod tokens;

use crate::models::TaskIo;
use crate::params::{ParamError, ParamMap};
pub use tokens::Tokens;

/// A split of a token task: `n` examples of `seq_len` inputs and `target_len` targets each
/// (`seq_len` for per-position tasks, 1 for classification). Targets equal to [`IGNORE`] carry
/// no label (excluded from loss and accuracy). Values are stored in the smallest integer type
/// that holds them ([`Tokens`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSplit {
    pub inputs: Tokens,
    pub targets: Tokens,
    pub n: usize,
    pub seq_len: usize,
    pub target_len: usize,
    /// Where more than the target counts as right (the in-context language learning task: any
    /// symbol the hidden automaton accepts next): per target position, a bitmask of the classes
    /// scored correct (classes below 64). `None`: the target alone.
    pub accepted: Option<Vec<u64>>,
}

/// Target value that is excluded from loss and accuracy (PyTorch's `ignore_index` default).
pub const IGNORE: i64 = -100;

impl TokenSplit {
    /// A per-position split: one target per input position.
    pub fn per_token(inputs: impl Into<Tokens>, targets: impl Into<Tokens>, n: usize, seq_len: usize) -> Self {
        TokenSplit { inputs: inputs.into(), targets: targets.into(), n, seq_len, target_len: seq_len, accepted: None }
    }

    /// A classification split: one label per example.
    pub fn classification(inputs: impl Into<Tokens>, labels: Vec<i64>, seq_len: usize) -> Self {
        TokenSplit {
            n: labels.len(),
            inputs: inputs.into(),
            targets: labels.into(),
            seq_len,
            target_len: 1,
            accepted: None,
        }
    }

    /// Example `i`'s inputs and targets, widened to int64.
    pub fn example(&self, i: usize) -> (Vec<i64>, Vec<i64>) {
        let (mut x, mut y) = (Vec::with_capacity(self.seq_len), Vec::with_capacity(self.target_len));
        self.extend_example(i, &mut x, &mut y);
        (x, y)
    }

    /// Appends example `i`'s inputs to `x` and its targets to `y`, widened to int64.
    pub fn extend_example(&self, i: usize, x: &mut Vec<i64>, y: &mut Vec<i64>) {
        self.inputs.extend_into(i * self.seq_len..(i + 1) * self.seq_len, x);
        self.targets.extend_into(i * self.target_len..(i + 1) * self.target_len, y);
    }

    /// Whether each predicted class of examples `idx` (batch, target_len) is right: equal to the
    /// target, or where the split says which classes it accepts, among them.
    pub fn hits(&self, predicted: &tch::Tensor, targets: &tch::Tensor, idx: &[usize]) -> tch::Tensor {
        let Some(accepted) = &self.accepted else {
            return predicted.eq_tensor(targets);
        };
        let classes = Vec::<i64>::try_from(predicted.flatten(0, -1).to_device(tch::Device::Cpu))
            .expect("predicted classes are int64");
        let masks = idx.iter().flat_map(|&i| &accepted[i * self.target_len..(i + 1) * self.target_len]);
        let hits: Vec<bool> =
            classes.iter().zip(masks).map(|(&c, &m)| (0..64).contains(&c) && m >> c & 1 == 1).collect();
        tch::Tensor::from_slice(&hits).view([idx.len() as i64, self.target_len as i64]).to_device(predicted.device())
    }

    /// Moves the examples from `at` on into a split of their own (the head is not copied).
    pub fn split_off(&mut self, at: usize) -> Self {
        let tail = TokenSplit {
            inputs: self.inputs.split_off(at * self.seq_len),
            targets: self.targets.split_off(at * self.target_len),
            n: self.n - at,
            seq_len: self.seq_len,
            target_len: self.target_len,
            accepted: self.accepted.as_mut().map(|a| a.split_off(at * self.target_len)),
        };
        self.n = at;
        tail
    }

    /// The first `train` examples, the next `val`, and the rest, without copying the first part
    /// (a full-size Path-X split is tens of gigabytes).
    pub fn into_train_val_test(mut self, train: usize, val: usize) -> [TokenSplit; 3] {
        let test = self.split_off(train + val);
        let val = self.split_off(train);
        [self, val, test]
    }
}

/// What a task's builder gets besides its config.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The job's seed (tasks may take their own data seed).
    pub seed: u64,
    /// The suite's `data_dir`, searched first for dataset files.
    pub data_dir: Option<&'a std::path::Path>,
}

impl BuildContext<'_> {
    pub fn seed(seed: u64) -> Self {
        BuildContext { seed, data_dir: None }
    }
}

pub struct TaskData {
    pub train: TokenSplit,
    /// Held-out split where the task defines one (LRA's validation sets); evaluated and recorded
    /// beside the test split.
    pub val: Option<TokenSplit>,
    pub test: TokenSplit,
    /// More named evaluation splits (e.g. `len=512`: the test distribution at another length),
    /// each evaluated after training and recorded under its name with its own metrics.
    pub evals: Vec<(String, TokenSplit)>,
    pub io: TaskIo,
    /// Test-only: the `fault` task sets an absurd learning rate here to provoke divergence.
    pub lr_override: Option<f64>,
    /// Language modelling: how the test loss is also reported (bits per byte, perplexity), and
    /// the loss at each context position is measured.
    pub lm: Option<lm::LmScore>,
}

/// A task's data, of the kind its [`TaskInfo::training`] declares.
#[allow(clippy::large_enum_variant)] // one per job, moved once: boxing would buy nothing
pub enum Data {
    /// Token splits for the shared training loop.
    Tokens(TaskData),
    /// A scaled time series with its train/validation/test rows (forecasting).
    Series(forecast::Series),
    /// The task has no data (`noop`).
    Nothing,
}

pub use seqbench_core::tasks::{TaskFacts, Training};

/// A task: its catalogue entry (name, training kind, LRA column, length parameters; read
/// through `Deref`) and the functions that resolve its config, state its shapes and build its data.
pub struct TaskInfo {
    pub facts: TaskFacts,
    /// Parameters as written (one sweep combination) → full typed config as JSON.
    pub resolve: fn(&ParamMap) -> Result<serde_json::Value, ParamError>,
    /// Shapes the model must handle, from the resolved config alone (no data built).
    pub io: fn(&serde_json::Value) -> anyhow::Result<TaskIo>,
    /// Builds the data (of the kind `training` declares).
    pub build: fn(&serde_json::Value, BuildContext) -> anyhow::Result<Data>,
}

impl std::ops::Deref for TaskInfo {
    type Target = TaskFacts;

    fn deref(&self) -> &TaskFacts {
        &self.facts
    }
}

impl TaskInfo {
    /// The token splits of a task that trains on tokens; an error naming the task otherwise.
    pub fn build_tokens(&self, params: &serde_json::Value, ctx: BuildContext) -> anyhow::Result<TaskData> {
        match (self.build)(params, ctx)? {
            Data::Tokens(data) => Ok(data),
            _ => anyhow::bail!("task `{}` has no token data ({:?})", self.name, self.training),
        }
    }
}

/// `TaskInfo::resolve` for a typed config with checks serde cannot express: deserialize,
/// validate (errors are (key, message)), then the full config as JSON.
pub fn resolve_validated<C: serde::de::DeserializeOwned + serde::Serialize>(
    combo: &ParamMap,
    validate: fn(&C) -> Result<(), (&'static str, String)>,
) -> Result<serde_json::Value, ParamError> {
    let cfg: C = crate::params::resolve(combo)?;
    validate(&cfg).map_err(|(k, m)| ParamError::new(k, m))?;
    serde_json::to_value(&cfg).map_err(|e| ParamError::new("", e.to_string()))
}

/// Train and test splits of a generated task, from distinct streams of one seed: the task's
/// own `data_seed` when it has one, else the job's.
pub fn generate_splits(
    data_seed: Option<u64>,
    seed: u64,
    (train_n, test_n): (usize, usize),
    generate: impl Fn(usize, u64) -> TokenSplit,
) -> (TokenSplit, TokenSplit) {
    let s = data_seed.unwrap_or(seed).wrapping_mul(2);
    (generate(train_n, s), generate(test_n, s + 1))
}

pub fn registry() -> &'static [TaskInfo] {
    static REGISTRY: std::sync::LazyLock<Vec<TaskInfo>> = std::sync::LazyLock::new(|| {
        let mut tasks = vec![
            mqar::INFO,
            recall::SELECTIVE_COPY_INFO,
            recall::INDUCTION_INFO,
            forecast::INFO,
            lra::listops_task::INFO,
            lra::text::INFO,
            lra::retrieval::INFO,
            lra::retrieval::STANDIN_INFO,
            lra::image::INFO,
            lra::pathfinder_task::INFO,
            lra::pathfinder_task::PATHX_INFO,
            lm::INFO,
            passkey::INFO,
            icll::INFO,
        ];
        tasks.extend(formal::INFOS);
        tasks.extend([fault::INFO, noop::INFO]);
        tasks
    });
    &REGISTRY
}

pub fn find(name: &str) -> Option<&'static TaskInfo> {
    registry().iter().find(|t| t.name == name)
}

/// The tasks that fill a column of the Long Range Arena table, in the paper's order.
pub fn lra_tasks() -> impl Iterator<Item = &'static TaskInfo> {
    registry().iter().filter(|t| t.lra_column.is_some())
}

pub fn names() -> Vec<&'static str> {
    registry().iter().map(|t| t.name).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_catalogue_entry_has_a_builder_in_the_same_order() {
        let built: Vec<_> = super::registry().iter().map(|t| t.facts).collect();
        assert_eq!(built, seqbench_core::tasks::all());
    }
}
