//! HGRN2 (Qin et al. 2024, "HGRN2: Gated Linear RNNs with State Expansion"), as
//! fla-org/flash-linear-attention builds it (`fla/layers/hgrn2.py`, `fla/models/hgrn2/`): a
//! GLA-style recurrence whose key is the forget gate's complement, k = 1 − f, and whose decay is
//! log f per state dimension, with the forget gate kept above a per-layer lower bound that
//! rises with depth. The lower bounds are one model-level parameter, `lower_bounds`
//! (n_layers × d_model, zero at init): softmax over the layers, cumulative sum, minus the first
//! row, so layer 0 has none and layer i starts at i/n_layers. See docs/models.md.
use super::backbone::{Backbone, BackboneConfig, Norm};
use super::chunk_size::{ChunkSize, VECTOR_DECAY_CPU};
use super::fla_parts::{heads_last, linear, split_heads};
use super::linear_attention::{self as engine, Decay, Inputs};
use super::{ArchConfig, ArchInfo, Mixer, MixerState, SeqModel, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hgrn2Config {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// State expansion: the key (forget-gate) width per head; heads = d_model / expand_ratio
    /// (fla: 128, which sets the heads as well).
    pub expand_ratio: i64,
    /// The per-layer lower bounds on the forget gate (fla: on).
    pub use_lower_bound: bool,
    /// Positions per chunk of the chunkwise form, or `auto`: 16 on the CPU, 64 on CUDA (see
    /// [`ChunkSize`]).
    pub chunk: ChunkSize,
    /// ε of the backbone's RMSNorms (fla: 1e-6). The output norm uses 1e-5: fla's call
    /// passes no ε, so `rms_norm_linear`'s default applies.
    pub norm_eps: f64,
    pub norm: Norm,
}

impl Default for Hgrn2Config {
    fn default() -> Self {
        Hgrn2Config {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 4,
            dropout: 0.0,
            expand_ratio: 16,
            use_lower_bound: true,
            chunk: ChunkSize::Auto,
            norm_eps: 1e-6,
            norm: Norm::Rms,
        }
    }
}

/// ε of the output RMSNorm (see `Hgrn2Config::norm_eps`).
const OUTPUT_NORM_EPS: f64 = 1e-5;

impl Hgrn2Config {
    fn heads(&self) -> i64 {
        self.d_model / self.expand_ratio
    }
}

impl Validate for Hgrn2Config {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.expand_ratio < 1 || self.d_model % self.expand_ratio != 0 {
            return Err((
                "expand_ratio",
                format!("must be ≥ 1 and divide d_model = {}, got {}", self.d_model, self.expand_ratio),
            ));
        }
        self.chunk.validate()?;
        Ok(())
    }
}

impl ArchConfig for Hgrn2Config {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::fla(self.d_model, self.n_layers, self.mlp_ratio, self.dropout, self.norm, self.norm_eps)
    }

    /// A mixer without a lower bound (layer 0's); `model` builds the stack.
    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Hgrn2::new(vs, self, None))
    }

    /// The backbone with the model-level `lower_bounds`, which every layer reads.
    fn model(&self, vs: &nn::Path, io: &TaskIo) -> Box<dyn SeqModel> {
        let bounds = self.use_lower_bound.then(|| vs.zeros("lower_bounds", &[self.n_layers, self.d_model]));
        let make = |p: &nn::Path, layer: i64| -> Box<dyn Mixer> {
            let bound = bounds.as_ref().filter(|_| layer > 0).map(|b| LowerBound { all: b.shallow_clone(), layer });
            Box::new(Hgrn2::new(p, self, bound))
        };
        Box::new(Backbone::new(vs, self.backbone(), io, &make))
    }
}

/// A layer's view of the shared `lower_bounds` parameter.
struct LowerBound {
    all: Tensor,
    layer: i64,
}

impl LowerBound {
    /// This layer's bound (d_model), recomputed from the parameter at every call so that its
    /// gradient reaches `lower_bounds`.
    fn get(&self) -> Tensor {
        let p = self.all.softmax(0, self.all.kind());
        (p.cumsum(0, p.kind()) - p.get(0)).get(self.layer)
    }
}

pub struct Hgrn2 {
    q_proj: nn::Linear,
    f_proj: nn::Linear,
    i_proj: nn::Linear,
    o_proj: nn::Linear,
    norm_weight: Tensor,
    lower_bound: Option<LowerBound>,
    cfg: Hgrn2Config,
    /// `cfg.chunk` on this mixer's device.
    chunk: i64,
}

impl Hgrn2 {
    fn new(vs: &nn::Path, cfg: &Hgrn2Config, lower_bound: Option<LowerBound>) -> Self {
        let d = cfg.d_model;
        Hgrn2 {
            q_proj: linear(&(vs / "q_proj"), d, d, false),
            f_proj: linear(&(vs / "f_proj"), d, d, false),
            i_proj: linear(&(vs / "i_proj"), d, d, false),
            o_proj: linear(&(vs / "o_proj"), d, d, false),
            norm_weight: (vs / "g_norm").ones("weight", &[d]),
            lower_bound,
            cfg: cfg.clone(),
            chunk: cfg.chunk.positions(vs.device(), VECTOR_DECAY_CPU),
        }
    }

    /// q = swish(q_proj x), k = 1 − f and log f (…, d_model), with f = σ(f_proj x) lifted to
    /// lb + (1 − lb)·f above a lower bound.
    fn gates(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let f = self.f_proj.forward(x);
        let log_f = match &self.lower_bound {
            Some(bound) => {
                let lb = bound.get();
                (&lb + (-&lb + 1.0) * f.sigmoid()).log()
            }
            None => f.log_sigmoid(),
        };
        let k = -log_f.exp() + 1.0;
        (self.q_proj.forward(x).silu() * (self.cfg.expand_ratio as f64).powf(-0.5), k, log_f)
    }

    /// o (…, d_model) → RMSNorm over all channels, o_proj.
    fn output(&self, o: &Tensor) -> Tensor {
        let mean_square = o.square().mean_dim([-1i64].as_slice(), true, None);
        self.o_proj.forward(&(o * (mean_square + OUTPUT_NORM_EPS).rsqrt() * &self.norm_weight))
    }
}

impl Mixer for Hgrn2 {
    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        format!("hgrn2: {}", engine::describe_factored(self.chunk))
    }

    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let h = self.cfg.heads();
        let (q, k, log_f) = self.gates(xs);
        let inputs = Inputs {
            q: split_heads(&q, h),
            k: split_heads(&k, h),
            v: split_heads(&self.i_proj.forward(xs), h),
            decay: Decay::Vector(split_heads(&log_f, h)),
            beta: None,
        };
        let (o, _) = engine::chunkwise(&inputs, self.chunk, None);
        let (b, l) = (xs.size()[0], xs.size()[1]);
        self.output(&heads_last(&o).reshape([b, l, -1]))
    }

    /// State: the (expand_ratio × d_model/heads) matrix per head.
    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let h = self.cfg.heads();
        let heads = |t: &Tensor| t.view([t.size()[0], h, -1]);
        let (q, k, log_f) = self.gates(x);
        let v = self.i_proj.forward(x);
        let s = state.get::<Tensor>().map_or_else(
            || Tensor::zeros([x.size()[0], h, self.cfg.expand_ratio, self.cfg.d_model / h], (x.kind(), x.device())),
            |s| s.shallow_clone(),
        );
        let (o, s) = engine::step(&heads(&q), &heads(&k), &heads(&v), Some(&heads(&log_f)), None, &s);
        state.set(s);
        Some(self.output(&o.reshape([x.size()[0], -1])))
    }

    /// The expand_ratio × (H/heads) state per head.
    fn state_size(&self, _seq_len: i64) -> f64 {
        (self.cfg.expand_ratio * self.cfg.d_model) as f64
    }

    /// Projections 8H² (q, f, i, o); the chunkwise form inside a chunk of c with key and value
    /// widths H: 4H·(c + 1)/2 for scores and values plus 2H·(c + 1)/2 for the decay weights;
    /// across chunks 4·H·(H/heads) (read and update the state).
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let (d, heads) = (self.cfg.d_model as f64, self.cfg.heads() as f64);
        let c = self.chunk.min(seq_len.max(1)) as f64;
        8.0 * d * d + 6.0 * d * (c + 1.0) / 2.0 + 4.0 * d * d / heads
    }
}

pub const INFO: ArchInfo = ArchInfo {
    name: "hgrn2",
    description: "HGRN2 (fla layout): forget-gate keys k = 1 − f, per-dimension decay with per-layer lower bounds; chunkwise engine",
    resolve: super::resolve_typed::<Hgrn2Config>,
    build: super::build_arch::<Hgrn2Config>,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_i_starts_with_forget_gate_bound_i_over_n_layers() {
        // fla's HGRN2Model: lower_bounds = zeros(n_layers, H); softmax over layers, cumsum, minus
        // the first row; layer i reads row i. At init that is i / n_layers in every channel.
        let all = Tensor::zeros([4, 8], (tch::Kind::Double, tch::Device::Cpu));
        for layer in 0..4 {
            let bound = LowerBound { all: all.shallow_clone(), layer }.get();
            assert_eq!(bound.size(), [8]);
            let expected = layer as f64 / 4.0;
            assert!((bound - expected).abs().max().double_value(&[]) < 1e-12, "layer {layer}");
        }
    }
}
