//! Retention (Sun et al. 2023): linear attention with a fixed per-head exponential decay, rotary
//! positions, per-head normalisation and a swish gate; see docs/models.md for the equations.
use super::backbone::{BackboneConfig, Norm};
use super::init::xavier_linear;
use super::linear_attention::{self as engine, Decay, Inputs};
use super::{ArchConfig, ArchInfo, Mixer, MixerState, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetNetConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Heads, each with its own decay γ_h = 1 − 2^(−5−h); must divide d_model.
    pub n_heads: i64,
    /// Positions computed in parallel before the state is carried on (chunkwise form).
    pub chunk: i64,
    /// Value (and gate) width as a multiple of d_model: 2 in the paper and torchscale; 1 makes
    /// the value as wide as the keys (seqbench's choice before this option).
    pub value_factor: i64,
    /// The backbone's norms: RMSNorm with ε = 1e-6 as torchscale's RetNet, or LayerNorm.
    pub norm: Norm,
}

impl Default for RetNetConfig {
    fn default() -> Self {
        RetNetConfig {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 4,
            dropout: 0.0,
            n_heads: 4,
            chunk: 64,
            value_factor: 2,
            norm: Norm::Rms,
        }
    }
}

impl Validate for RetNetConfig {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.n_heads < 1 || self.d_model % self.n_heads != 0 || (self.d_model / self.n_heads) % 2 != 0 {
            return Err((
                "n_heads",
                format!(
                    "must divide d_model = {} into heads of even width (rotary positions), got {}",
                    self.d_model, self.n_heads
                ),
            ));
        }
        if self.chunk < 1 {
            return Err(("chunk", format!("must be at least 1, got {}", self.chunk)));
        }
        if self.value_factor < 1 {
            return Err(("value_factor", format!("must be at least 1, got {}", self.value_factor)));
        }
        Ok(())
    }
}

impl ArchConfig for RetNetConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig {
            norm: self.norm,
            norm_eps: NORM_EPS,
            ..BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
        }
    }

    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Retention::new(vs, self))
    }
}

pub struct Retention {
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    g: nn::Linear,
    out: nn::Linear,
    n_heads: i64,
    d_model: i64,
    /// Value width: value_factor · d_model.
    d_value: i64,
    chunk: i64,
}

/// ε of the per-head RMSNorm and of the backbone's norms (torchscale `layernorm_eps`).
const NORM_EPS: f64 = 1e-6;

impl Retention {
    /// Projections as torchscale's `MultiScaleRetention.reset_parameters`: Xavier-uniform with
    /// gain 2^−2.5 for q, k, v and g, 2^−1 for the output.
    pub fn new(vs: &nn::Path, cfg: &RetNetConfig) -> Self {
        let (d, dv) = (cfg.d_model, cfg.value_factor * cfg.d_model);
        let gain = 2f64.powf(-2.5);
        Retention {
            q: xavier_linear(&(vs / "q"), d, d, gain),
            k: xavier_linear(&(vs / "k"), d, d, gain),
            v: xavier_linear(&(vs / "v"), d, dv, gain),
            g: xavier_linear(&(vs / "g"), d, dv, gain),
            out: xavier_linear(&(vs / "out"), dv, d, 0.5),
            n_heads: cfg.n_heads,
            d_model: d,
            d_value: dv,
            chunk: cfg.chunk,
        }
    }

    /// Key (and query) width per head.
    fn head_dim(&self) -> i64 {
        self.d_model / self.n_heads
    }

    fn value_head_dim(&self) -> i64 {
        self.d_value / self.n_heads
    }

    /// log γ_h per head, shaped (heads, 1, 1) to broadcast over (b, heads, l, d).
    fn log_decay(&self, device: tch::Device) -> Tensor {
        let h = Tensor::arange(self.n_heads, (Kind::Float, device));
        (-(((h + 5.0) * -(2f64.ln())).exp()) + 1.0).log().view([-1, 1, 1])
    }

    /// 1/√(Σ_{m≤p} γ^(p−m)) = √((1 − γ)/(1 − γ^(p+1))) for positions p = first..first+len, as
    /// (heads, len, 1): torchscale's `recurrent_forward` divides its state by the square root of
    /// this running decay sum, which RMSNorm's ε makes visible on small outputs.
    fn decay_normaliser(&self, first: i64, len: i64, device: tch::Device) -> Tensor {
        let log_gamma = self.log_decay(device);
        let p = Tensor::arange_start(first, first + len, (Kind::Float, device)).view([1, -1, 1]);
        let sums = (-(&log_gamma * (p + 1.0)).exp() + 1.0) / (-log_gamma.exp() + 1.0);
        sums.rsqrt()
    }

    /// (b, l, H) → q, k as (b, heads, l, d_k) with rotary from position `offset` and k scaled
    /// by d_k^−½, v as (b, heads, l, d_v).
    fn project(&self, xs: &Tensor, offset: i64) -> (Tensor, Tensor, Tensor) {
        let (b, l, _) = xs.size3().expect("retention input is (batch, seq, d_model)");
        let split = |t: Tensor, width: i64| t.view([b, l, self.n_heads, width]).transpose(1, 2);
        let dk = self.head_dim();
        let q = theta_shift(&split(self.q.forward(xs), dk), offset);
        let k = theta_shift(&split(self.k.forward(xs), dk), offset) * (dk as f64).powf(-0.5);
        (q, k, split(self.v.forward(xs), self.value_head_dim()))
    }

    /// Per-head RMSNorm without affine weights (torchscale's `group_norm`), the swish gate and
    /// the output projection. o: (b, heads, l, d_v), u: the mixer input (b, l, H).
    fn output(&self, o: &Tensor, u: &Tensor) -> Tensor {
        let (b, _, l, _) = o.size4().expect("retention output is (b, heads, l, d_v)");
        let mean_square = o.square().mean_dim([-1i64].as_slice(), true, None);
        let normed = (o * (mean_square + NORM_EPS).rsqrt()).transpose(1, 2).reshape([b, l, self.d_value]);
        self.out.forward(&(self.g.forward(u).silu() * normed))
    }
}

impl Mixer for Retention {
    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        format!("retention: {}", engine::describe(self.chunk))
    }

    /// The chunkwise engine with one fixed decay γ_h per head: inside a chunk the decay-masked
    /// parallel form, across chunks the (d_k × d_v) state, as the paper's chunkwise recurrence.
    /// Outputs are divided by √(running decay sum) as torchscale's recurrent form does; its
    /// parallel form also divides scores by their absolute row sums, which no chunkwise form can
    /// compute (that per-row scale only shows through RMSNorm's ε).
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (q, k, v) = self.project(xs, 0);
        let len = q.size()[2];
        let decay = Decay::Head(self.log_decay(xs.device()).view([-1]));
        let (o, _) = engine::chunkwise(&Inputs { q, k, v, decay, beta: None }, self.chunk, None);
        self.output(&(o * self.decay_normaliser(0, len, xs.device())), xs)
    }

    /// State: [S] (b, heads, d_k, d_v).
    fn step(&self, x: &Tensor, pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let u = x.unsqueeze(1);
        let (q, k, v) = self.project(&u, pos); // (b, heads, 1, d)
        let (q, k, v) = (q.squeeze_dim(2), k.squeeze_dim(2), v.squeeze_dim(2));
        let s = match state.get::<RetentionState>() {
            Some(prev) => prev.s.shallow_clone(),
            None => Tensor::zeros(
                [x.size()[0], self.n_heads, self.head_dim(), self.value_head_dim()],
                (x.kind(), x.device()),
            ),
        };
        let log_gamma = self.log_decay(x.device()).view([1, -1, 1]);
        let (o, s) = engine::step(&q, &k, &v, Some(&log_gamma), None, &s);
        let o = o.unsqueeze(2) * self.decay_normaliser(pos, 1, x.device());
        state.set(RetentionState { s });
        Some(self.output(&o, &u).squeeze_dim(1))
    }

    /// The d_k × d_v state per head.
    fn state_size(&self, _seq_len: i64) -> f64 {
        (self.d_model * self.d_value / self.n_heads) as f64
    }

    /// Projections 4H² (q, k) + 6H·V (v, gate, out) with V the value width; inside a chunk
    /// 2(H + V)·c with c the mean number of keys a query sees there; across chunks 4H·d_v (read
    /// and update the state).
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let (h, v) = (self.d_model as f64, self.d_value as f64);
        let keys = (self.chunk.min(seq_len.max(1)) as f64 + 1.0) / 2.0;
        4.0 * h * h + 6.0 * h * v + 2.0 * (h + v) * keys + 4.0 * h * self.value_head_dim() as f64
    }
}

/// torchscale's rotary (`theta_shift` with `RetNetRelPos`'s angles): pair (2i, 2i+1) of each
/// head rotated by pos·θ_i, θ_i = 10000^(−i/(d/2 − 1)) (a `linspace(0, 1)` exponent, not the
/// RoFormer i/(d/2)). x: (b, heads, l, d) whose first position is `offset`.
fn theta_shift(x: &Tensor, offset: i64) -> Tensor {
    let (l, hd) = (x.size()[2], x.size()[3]);
    let opts = (Kind::Float, x.device());
    let half = hd / 2;
    let exponent = if half > 1 { Tensor::arange(half, opts) / (half - 1) as f64 } else { Tensor::zeros([half], opts) };
    let theta = (exponent * -(10_000f64.ln())).exp(); // (d/2)
    let angles = Tensor::arange_start(offset, offset + l, opts).unsqueeze(1) * theta.unsqueeze(0); // (l, d/2)
    let angles = angles.repeat_interleave_self_int(2, 1, None).to_kind(x.kind()); // (l, d): a0 a0 a1 a1 …
    let pairs = x.view([x.size()[0], x.size()[1], l, half, 2]);
    let rotated =
        Tensor::stack(&[-pairs.select(-1, 1), pairs.select(-1, 0)], -1).view([x.size()[0], x.size()[1], l, hd]);
    x * angles.cos() + rotated * angles.sin()
}

/// Retention's recurrent state: one d_k × d_v matrix per head (batch, heads, d_k, d_v).
struct RetentionState {
    s: Tensor,
}

pub const INFO: ArchInfo = ArchInfo {
    name: "retnet",
    description: "RetNet retention (torchscale layout): multi-scale decay, value width 2H, per-head RMSNorm, swish gate; chunkwise",
    resolve: super::resolve_typed::<RetNetConfig>,
    build: super::build_arch::<RetNetConfig>,
};
