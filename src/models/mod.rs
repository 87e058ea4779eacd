//! The model zoo. Every model is the same backbone (embedding → N × [norm → mixer → residual →
//! norm → MLP → residual] → norm → head) around a different sequence mixer, so comparisons
//! isolate the mixer. An architecture is registered with a typed config (defaults documented on
//! its fields), a builder and an analytic FLOPs formula.
pub mod backbone;
pub mod chunk_size;
pub mod deltanet;
pub mod fla_parts;
pub mod fused;
pub mod gla;
pub mod hawk;
pub mod hgrn2;
pub mod hybrid;
pub mod init;
pub mod linear;
pub mod linear_attention;
pub mod local_attention;
pub mod lru;
pub mod mamba;
pub mod mamba2;
pub mod minrnn;
pub mod mlstm;
pub mod python;
pub mod retnet;
pub mod rnn;
pub mod rwkv6;
pub mod rwkv7;
pub mod s4d;
pub mod scan;
pub mod slstm;
pub mod transformer;

use crate::params::{ParamError, ParamMap};
use tch::{nn, Tensor};

/// What the task feeds the model and expects back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskIo {
    /// Input token vocabulary size (inputs are int64 token ids (batch, seq)).
    pub vocab_size: i64,
    /// Real-valued inputs instead of tokens: features per position (inputs are float
    /// (batch, seq, features), projected linearly to d_model). 0 for token inputs.
    pub input_features: i64,
    /// Classes predicted at every position (or once per example with a pooled head).
    pub num_classes: i64,
    /// Sequence length of the task's examples.
    pub seq_len: i64,
    /// Whether a position may only see the past (language-model style tasks such as MQAR).
    pub causal: bool,
    /// Where the head reads the sequence.
    pub head: Head,
    /// Token id of padding at the end of variable-length inputs. Padded positions are zeroed
    /// before every mixer, hidden from attention, and left out of pooling, so an example's output
    /// does not depend on how much padding follows it.
    pub pad_id: Option<i64>,
}

impl TaskIo {
    /// A token-in, token-out task with no padding and a per-position head.
    pub fn per_token(vocab_size: i64, num_classes: i64, seq_len: i64, causal: bool) -> Self {
        TaskIo { vocab_size, input_features: 0, num_classes, seq_len, causal, head: Head::PerToken, pad_id: None }
    }
}

/// Per-position logits (batch, seq, classes), or one vector per example pooled over its
/// non-padding positions, returned as (batch, 1, classes) so the training loop treats both alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    PerToken,
    /// Mean over positions (the usual choice for bidirectional classifiers, e.g. LRA).
    MeanPool,
    /// The last non-padding position (the usual choice for causal classifiers).
    LastPool,
    /// Forecasting: a linear map over time from the seq positions to `horizon` future steps
    /// (as Time-Series-Library's encoders project), then the head: (batch, horizon, classes).
    Forecast {
        horizon: i64,
    },
    /// Two-document matching (LRA retrieval): an input row is two documents of `seq_len` tokens
    /// side by side; each is encoded alone and mean-pooled to u and v, and an MLP reads
    /// [u, v, u·v, u−v] (LRA's dual-encoder head).
    PairMatch,
}

/// The recurrent state a mixer carries between steps: a struct of the mixer's own (`LruState`,
/// the transformer's `KvCache`, tch's `LSTMState`, …), none before the first step.
#[derive(Default)]
pub struct MixerState(Option<Box<dyn std::any::Any>>);

impl MixerState {
    /// The state the previous step left (None before the first step, or if another mixer's
    /// state were here, which the backbone never does: each block keeps its own).
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.as_ref()?.downcast_ref()
    }

    /// The state for the next step.
    pub fn set<T: 'static>(&mut self, state: T) {
        self.0 = Some(Box::new(state));
    }
}

/// A sequence model ready to train.
pub trait SeqModel {
    /// xs: (batch, seq) int64 token ids → logits (batch, seq, num_classes).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor;
    /// Analytic forward FLOPs per token at this sequence length (one multiply-add = 2 FLOPs).
    fn flops_per_token(&self, seq_len: i64) -> f64;
    /// Numbers of state per sequence at this length, summed over the mixers (see
    /// [`Mixer::state_size`]); None for models that are not a stack of mixers.
    fn state_size(&self, _seq_len: i64) -> Option<f64> {
        None
    }
    /// Whether `step` works: every mixer has a recurrent form.
    fn can_step(&self) -> bool;
    /// Positions the model can address (learned position tables end at the task's length);
    /// None when unbounded.
    fn max_positions(&self) -> Option<i64> {
        None
    }
    /// Recurrent form: tokens (batch,) at position `pos` → logits (batch, num_classes), with one
    /// state per block in `states` (empty before the first step).
    fn step(&self, tokens: &Tensor, pos: i64, states: &mut Vec<MixerState>) -> Tensor;
    /// Full VarStore names of the parameters with their own optimiser rule (see [`ParamRule`]).
    fn param_rules(&self) -> Vec<(String, ParamRule)> {
        Vec::new()
    }
    /// Which kernels compute it on `device` with activations of `kind` (see
    /// [`Mixer::implementation`]): the distinct paths of its mixers, `; `-separated.
    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        REFERENCE.to_string()
    }
}

/// `x` in float32 when autocast made it bfloat16 or float16, else unchanged (float64 stays):
/// for the recurrences the official kernels accumulate in float32.
pub fn at_least_f32(x: &Tensor) -> Tensor {
    if matches!(x.kind(), tch::Kind::BFloat16 | tch::Kind::Half) {
        x.to_kind(tch::Kind::Float)
    } else {
        x.shallow_clone()
    }
}

/// A mixer built from ordinary libtorch operations, with no fused kernel of its own.
pub const REFERENCE: &str = "libtorch ops";

/// A sequence mixer: the part that differs between architectures.
pub trait Mixer {
    /// xs: (batch, seq, d_model) → (batch, seq, d_model).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor;
    /// Forward FLOPs per token of this mixer at sequence length `seq_len`.
    fn flops_per_token(&self, seq_len: i64) -> f64;
    /// Numbers one sequence's `step` carries at length `seq_len`: the recurrent state, with conv
    /// windows and shifted inputs; for attention the KV cache, which grows with the length; for
    /// a map over time the window it reads. Recall tasks compare architectures by it.
    fn state_size(&self, seq_len: i64) -> f64;
    /// `forward_t` on a right-padded batch; mask (batch, seq) is 1 on real positions, 0 on padding.
    /// Zeroing the padded inputs suffices for mixers that are causal or linear in their input
    /// (padding at the end cannot reach earlier positions, zeros add nothing to a convolution);
    /// mixers for which it does not (attention) override this, and configs that cannot honour
    /// padding (bidirectional RNNs, fixed time maps) refuse tasks with `pad_id` in `validate`.
    fn forward_masked(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        self.forward_t(&(xs * mask.unsqueeze(-1)), train)
    }
    /// Recurrent form: x (batch, d_model) at position `pos` → (batch, d_model), the same function
    /// as `forward_t` computed one token at a time. None for mixers without one (then the state
    /// is left alone).
    fn step(&self, x: &Tensor, pos: i64, state: &mut MixerState) -> Option<Tensor>;
    /// Parameters (names under the mixer's path) that the architecture's official optimiser
    /// set-up treats apart from the default rule (see [`ParamRule`]).
    fn param_rules(&self) -> Vec<(&'static str, ParamRule)> {
        Vec::new()
    }
    /// The kernel path this mixer takes on `device` with activations of `kind`, as a user of the
    /// official code would want to know it (the SDPA backend libtorch picks, cuDNN or the native
    /// RNN kernel, a fused scan or libtorch ops): speed figures are only comparable between runs
    /// that took the same one.
    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        REFERENCE.to_string()
    }
}

/// How the optimiser treats a parameter that its architecture's official code singles out.
/// Everything else follows the default rule (runner::optim): matrices are decayed, vectors
/// (biases, norm weights, skips) are not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamRule {
    /// No weight decay at the base learning rate: embedding tables, Mamba's A_log and D
    /// (`_no_weight_decay` in state-spaces/mamba).
    NoDecay,
    /// No weight decay at learning rate × factor: the LRU's ν, θ, γ and B (factor 0.5 in the
    /// authors' minimal-LRU `train_helpers.py`).
    NoDecayLrScaled(f64),
    /// No weight decay at learning rate min(cap, lr): S4D's Δ and A (state-spaces/s4
    /// `example.py` gives them lr = min(0.001, lr), weight decay 0).
    NoDecayLrAtMost(f64),
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
    &[
        rnn::LSTM_INFO,
        rnn::GRU_INFO,
        transformer::INFO,
        s4d::INFO,
        mamba::INFO,
        mamba2::INFO,
        lru::INFO,
        hawk::INFO,
        local_attention::INFO,
        minrnn::MINGRU_INFO,
        minrnn::MINLSTM_INFO,
        retnet::INFO,
        gla::INFO,
        hgrn2::INFO,
        rwkv6::INFO,
        rwkv7::INFO,
        mlstm::INFO,
        slstm::INFO,
        deltanet::DELTANET_INFO,
        deltanet::GATED_DELTANET_INFO,
        deltanet::DELTAPRODUCT_INFO,
        linear::INFO,
        hybrid::INFO,
        python::INFO,
        python::MODEL_INFO,
    ]
}

pub fn find(name: &str) -> Option<&'static ArchInfo> {
    registry().iter().find(|a| a.name == name)
}

pub fn names() -> Vec<&'static str> {
    registry().iter().map(|a| a.name).collect()
}

/// Whether `name` runs a user's code (`python`, `python_model`): it needs a module to build.
pub fn runs_user_code(name: &str) -> bool {
    [python::INFO.name, python::MODEL_INFO.name].contains(&name)
}

/// The architectures seqbench implements itself.
pub fn native_names() -> Vec<&'static str> {
    names().into_iter().filter(|a| !runs_user_code(a)).collect()
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

/// `value` is at least `min`, else `key`'s error.
pub fn check_at_least(key: &'static str, value: i64, min: i64) -> Result<(), (&'static str, String)> {
    if value < min {
        return Err((key, format!("must be at least {min}, got {value}")));
    }
    Ok(())
}

/// `width` (d_model × `key`) splits into `heads` equal, non-empty parts, else `key`'s error.
pub fn check_head_split(key: &'static str, width: i64, heads: i64) -> Result<(), (&'static str, String)> {
    check_at_least("n_heads", heads, 1)?;
    if width < heads || width % heads != 0 {
        return Err((key, format!("d_model × {key} = {width} must be a positive multiple of n_heads = {heads}")));
    }
    Ok(())
}

/// A backbone architecture: a typed config that knows its backbone and builds one mixer.
pub trait ArchConfig: serde::de::DeserializeOwned + serde::Serialize + Validate {
    fn backbone(&self) -> backbone::BackboneConfig;
    fn mixer(&self, vs: &nn::Path, io: &TaskIo) -> Box<dyn Mixer>;
    /// The mixer of block `layer` (0-based), in a pure stack or a hybrid: `mixer` unless the
    /// architecture starts its layers differently (RWKV-6's decay schedule).
    fn mixer_in_layer(&self, vs: &nn::Path, io: &TaskIo, _layer: i64) -> Box<dyn Mixer> {
        self.mixer(vs, io)
    }
    /// The model: the backbone around `mixer_in_layer` in every block. Architectures with
    /// model-level parameters (HGRN2's lower bounds) build their own.
    fn model(&self, vs: &nn::Path, io: &TaskIo) -> Box<dyn SeqModel> {
        Box::new(backbone::Backbone::new(vs, self.backbone(), io, &|p, layer| self.mixer_in_layer(p, io, layer)))
    }
}

/// The model of `cfg` (see [`ArchConfig::model`]).
pub fn build_model<C: ArchConfig>(vs: &nn::Path, cfg: &C, io: &TaskIo) -> Box<dyn SeqModel> {
    cfg.model(vs, io)
}

/// `ArchInfo::build` for an `ArchConfig`.
pub fn build_arch<C: ArchConfig>(
    vs: &nn::Path,
    params: &serde_json::Value,
    io: &TaskIo,
) -> anyhow::Result<Box<dyn SeqModel>> {
    let cfg: C = serde_json::from_value(params.clone())?;
    // Callers that skip `resolve` (benchmarks, tests, a job handed to `exec-job` directly)
    // still get a message, not a libtorch shape panic, for a config the architecture cannot build.
    cfg.validate(io).map_err(|(key, msg)| anyhow::anyhow!("{key}: {msg}"))?;
    Ok(build_model(vs, &cfg, io))
}
