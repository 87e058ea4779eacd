//! The model zoo. Every model is the same backbone (embedding → N × [norm → mixer → residual →
//! norm → MLP → residual] → norm → head) around a different sequence mixer, so comparisons
//! isolate the mixer. An architecture is registered with a typed config (defaults documented on
//! its fields), a builder and an analytic FLOPs formula.
pub mod backbone;
pub mod rnn;
pub mod transformer;

use crate::params::{ParamError, ParamMap};
use tch::{nn, Tensor};

/// What the task feeds the model and expects back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskIo {
    /// Input token vocabulary size (inputs are int64 token ids).
    pub vocab_size: i64,
    /// Classes predicted at every position.
    pub num_classes: i64,
    /// Sequence length of the task's examples.
    pub seq_len: i64,
    /// Whether a position may only see the past (language-model style tasks such as MQAR).
    pub causal: bool,
}

/// A sequence model ready to train.
pub trait SeqModel {
    /// xs: (batch, seq) int64 token ids → logits (batch, seq, num_classes).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor;
    /// Analytic forward FLOPs per token at this sequence length (one multiply-add = 2 FLOPs).
    fn flops_per_token(&self, seq_len: i64) -> f64;
}

/// A sequence mixer: the part that differs between architectures.
pub trait Mixer {
    /// xs: (batch, seq, d_model) → (batch, seq, d_model).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor;
    /// Forward FLOPs per token of this mixer at sequence length `seq_len`.
    fn flops_per_token(&self, seq_len: i64) -> f64;
}

pub type ResolveFn = fn(&ParamMap, &TaskIo) -> Result<serde_json::Value, ParamError>;
pub type BuildFn = fn(&nn::Path, &serde_json::Value, &TaskIo) -> anyhow::Result<Box<dyn SeqModel>>;

pub struct ArchInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// Parameters as written in a suite (one sweep combination) → full typed config as JSON.
    pub resolve: ResolveFn,
    pub build: BuildFn,
}

pub fn registry() -> &'static [ArchInfo] {
    &[rnn::LSTM_INFO, rnn::GRU_INFO, transformer::INFO]
}

pub fn find(name: &str) -> Option<&'static ArchInfo> {
    registry().iter().find(|a| a.name == name)
}

pub fn names() -> Vec<&'static str> {
    registry().iter().map(|a| a.name).collect()
}

/// Deserializes, then validates, a typed config; shared by every architecture's `resolve`.
pub fn resolve_typed<C>(combo: &ParamMap, io: &TaskIo) -> Result<serde_json::Value, ParamError>
where
    C: serde::de::DeserializeOwned + serde::Serialize + Validate,
{
    let config: C = crate::params::resolve(combo)?;
    config.validate(io).map_err(|(key, msg)| ParamError::new(key, msg))?;
    serde_json::to_value(&config).map_err(|e| ParamError::new("", e.to_string()))
}

/// Value checks serde cannot express; errors are (key, message).
pub trait Validate {
    fn validate(&self, io: &TaskIo) -> Result<(), (&'static str, String)>;
}
