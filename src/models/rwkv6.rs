//! RWKV-6 "Finch" time mixing (Peng et al. 2024, "Eagle and Finch: RWKV with Matrix-Valued States
//! and Dynamic Recurrence"), as fla-org/flash-linear-attention builds `RWKV6Attention`
//! (`fla/layers/rwkv6.py`, recurrence of `fla/ops/rwkv6/recurrent_naive.py`):
//!
//! ```text
//! δ_t = x_{t−1} − x_t                                     (token shift, x_{−1} = 0)
//! m_t = x_bias + W₂·tanh(W₁(x_t + δ_t ⊙ μ))               (five data-dependent lerps: r w k v g)
//! r, k, v, g = linear(x_t + δ_t ⊙ m_t^{r,k,v,g});  log w_t = −exp(LoRA(x_t + δ_t ⊙ m_t^w))
//! o_t = r_tᵀ (S_{t−1} + (u ⊙ k_t) v_tᵀ);  S_t = diag(w_t) S_{t−1} + k_t v_tᵀ
//! ```
//!
//! then a per-head GroupNorm times swish(g) and o_proj. Only the time mixing is the mixer: the
//! backbone's MLP stands where RWKV's channel mixing is (docs/models.md).
//!
//! On the engine: its output reads the state after the token's own update, RWKV's before it, so
//! the engine runs with each r moved one position earlier (its output at t − 1 is then r_tᵀ
//! S_{t−1}) and the bonus term is added apart. No decay is ever inverted.
use super::backbone::{BackboneConfig, Norm};
use super::chunk_size::{ChunkSize, VECTOR_DECAY_CPU};
use super::fla_parts::{heads_last, per_head_group_norm, split_heads, Activation, Lora};
use super::init::xavier_linear;
use super::linear_attention::{self as engine, Decay, Inputs};
use super::{check_at_least, check_head_split, ArchConfig, ArchInfo, Mixer, MixerState, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rwkv6Config {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    pub n_heads: i64,
    /// Key width as a multiple of d_model (fla: 0.5).
    pub expand_k: f64,
    /// Value width as a multiple of d_model (fla: 1).
    pub expand_v: f64,
    /// Rank of the shared token-shift LoRA, per lerp (fla: 32).
    pub proj_low_rank_dim: i64,
    /// Rank of the decay's LoRA (fla: 64).
    pub gate_low_rank_dim: i64,
    /// Positions per chunk of the chunkwise form, or `auto`: 16 on the CPU, 64 on CUDA (see
    /// [`ChunkSize`]).
    pub chunk: ChunkSize,
    /// ε of the output GroupNorm and of the backbone's LayerNorms (fla: 1e-5).
    pub norm_eps: f64,
    pub norm: Norm,
    /// Where the decay starts (the decay LoRA's bias w₀; log w = −exp(w₀ + LoRA(x))).
    pub decay_init: DecayInit,
}

/// The decay's starting point. Only the decay: every other weight starts as fla's layer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayInit {
    /// As fla's layer builds it: w₀ = 0, so every channel keeps e^−1 ≈ 0.37 of its state per
    /// token at first (on MQAR at L 64 it stayed at chance: README, "Recall against state size").
    Fla,
    /// BlinkDL's RWKV-6 schedule: w₀[n] = −6 + 5·(n/(d_k − 1))^(0.7 + 1.3·layer/(n_layers − 1)),
    /// from nearly no decay (e^−e^−6 ≈ 0.998) to e^−e^−1 ≈ 0.69 across the key channels.
    RwkvSchedule,
}

impl Default for Rwkv6Config {
    fn default() -> Self {
        Rwkv6Config {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 4,
            dropout: 0.0,
            n_heads: 4,
            expand_k: 0.5,
            expand_v: 1.0,
            proj_low_rank_dim: 32,
            gate_low_rank_dim: 64,
            chunk: ChunkSize::Auto,
            norm_eps: 1e-5,
            norm: Norm::Layer,
            decay_init: DecayInit::Fla,
        }
    }
}

impl Rwkv6Config {
    fn key_dim(&self) -> i64 {
        (self.d_model as f64 * self.expand_k) as i64
    }

    fn value_dim(&self) -> i64 {
        (self.d_model as f64 * self.expand_v) as i64
    }
}

impl Validate for Rwkv6Config {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        check_head_split("expand_k", self.key_dim(), self.n_heads)?;
        check_head_split("expand_v", self.value_dim(), self.n_heads)?;
        check_at_least("proj_low_rank_dim", self.proj_low_rank_dim, 1)?;
        check_at_least("gate_low_rank_dim", self.gate_low_rank_dim, 1)?;
        self.chunk.validate()
    }
}

impl ArchConfig for Rwkv6Config {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::fla(self.d_model, self.n_layers, self.mlp_ratio, self.dropout, self.norm, self.norm_eps)
    }

    /// Layer 0's mixer.
    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Rwkv6::new(vs, self, 0))
    }

    /// The decay schedule depends on the layer.
    fn mixer_in_layer(&self, vs: &nn::Path, _io: &TaskIo, layer: i64) -> Box<dyn Mixer> {
        Box::new(Rwkv6::new(vs, self, layer))
    }
}

/// BlinkDL's starting decay biases w₀ for `layer` (see [`DecayInit::RwkvSchedule`]).
fn decay_schedule(dk: i64, layer: i64, n_layers: i64) -> Vec<f32> {
    let depth = if n_layers > 1 { layer as f64 / (n_layers - 1) as f64 } else { 0.0 };
    let position = |n: i64| if dk > 1 { n as f64 / (dk - 1) as f64 } else { 0.0 };
    (0..dk).map(|n| (-6.0 + 5.0 * position(n).powf(0.7 + 1.3 * depth)) as f32).collect()
}

pub struct Rwkv6 {
    /// μ of the first lerp (d_model).
    mu: Tensor,
    /// x_proj.0: d_model → 5·rank; x_proj.2's weight (d_model × 5·rank), each lerp reading its
    /// own rank-wide slice.
    shift_down: nn::Linear,
    shift_up: Tensor,
    /// (5, d_model), in the order r, w, k, v, g.
    x_bias: Tensor,
    r_proj: nn::Linear,
    w_lora: Lora,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    g_proj: nn::Linear,
    /// u (heads, d_k/heads).
    bonus: Tensor,
    norm_weight: Tensor,
    norm_bias: Tensor,
    o_proj: nn::Linear,
    cfg: Rwkv6Config,
    /// `cfg.chunk` on this mixer's device.
    chunk: i64,
}

/// The inputs of the recurrence, each (…, width).
struct Projected {
    r: Tensor,
    log_w: Tensor,
    k: Tensor,
    v: Tensor,
    g: Tensor,
}

/// The previous token's mixer input (b, d_model) and the (d_k × d_v) state per head.
struct Rwkv6State {
    x: Tensor,
    s: Tensor,
}

impl Rwkv6 {
    /// Initialised as a freshly built fla layer ends up: every plain Linear Xavier-uniform with
    /// gain 2^−2.5; the decay LoRA's first matrix zero, its second orthogonal with gain 0.1
    /// (× √(rank/d_k) when the rank is larger), its bias zero; μ, x_bias and u zero; the
    /// GroupNorm's weight one and bias zero.
    /// With `decay_init: rwkv_schedule`, the decay LoRA's bias starts on BlinkDL's schedule.
    fn new(vs: &nn::Path, cfg: &Rwkv6Config, layer: i64) -> Self {
        let (d, dk, dv, r) = (cfg.d_model, cfg.key_dim(), cfg.value_dim(), cfg.proj_low_rank_dim);
        let gain = 2f64.powf(-2.5);
        let lerp = |name: &str, width: i64| xavier_linear(&(vs / name / "linear"), d, width, gain);
        let decay_bias = match cfg.decay_init {
            DecayInit::Fla => Tensor::zeros([dk], (tch::Kind::Float, tch::Device::Cpu)),
            DecayInit::RwkvSchedule => Tensor::from_slice(&decay_schedule(dk, layer, cfg.n_layers)),
        };
        let w_lora = Lora::new(&(vs / "w_proj" / "linear"), d, dk, cfg.gate_low_rank_dim, Some(&decay_bias));
        let x_proj = vs / "x_proj";
        Rwkv6 {
            mu: (&x_proj / 0).zeros("mu", &[d]),
            shift_down: xavier_linear(&(&x_proj / 0 / "linear"), d, 5 * r, gain),
            shift_up: xavier_linear(&(&x_proj / 2), 5 * r, d, gain).ws,
            x_bias: vs.zeros("x_bias", &[5, d]),
            r_proj: lerp("r_proj", dk),
            w_lora,
            k_proj: lerp("k_proj", dk),
            v_proj: lerp("v_proj", dv),
            g_proj: lerp("g_proj", dv),
            bonus: vs.zeros("bonus", &[cfg.n_heads, dk / cfg.n_heads]),
            norm_weight: (vs / "g_norm").ones("weight", &[dv]),
            norm_bias: (vs / "g_norm").zeros("bias", &[dv]),
            o_proj: xavier_linear(&(vs / "o_proj"), dv, d, gain),
            cfg: cfg.clone(),
            chunk: cfg.chunk.positions(vs.device(), VECTOR_DECAY_CPU),
        }
    }

    /// x and its token shift δ (…, d_model) → r, log w, k, v, g.
    fn project(&self, x: &Tensor, delta: &Tensor) -> Projected {
        let mut shape = x.size();
        let d = shape.pop().expect("(…, d_model)");
        let rank = self.cfg.proj_low_rank_dim;
        let hidden = self.shift_down.forward(&(x + delta * &self.mu)).tanh();
        shape.extend([5, rank]);
        let mixes = Tensor::einsum(
            "...nr,dnr->...nd",
            &[hidden.view(shape.as_slice()), self.shift_up.view([d, 5, rank])],
            None::<i64>,
        ) + &self.x_bias;
        let lerp = |i: i64| x + delta * mixes.select(-2, i);
        Projected {
            r: self.r_proj.forward(&lerp(0)),
            log_w: -self.w_lora.forward(&lerp(1), Activation::Tanh).exp(),
            k: self.k_proj.forward(&lerp(2)),
            v: self.v_proj.forward(&lerp(3)),
            g: self.g_proj.forward(&lerp(4)),
        }
    }

    /// o (…, heads, d_v/heads) → GroupNorm per head, times swish(g), o_proj.
    fn output(&self, o: &Tensor, g: &Tensor) -> Tensor {
        let normed = per_head_group_norm(o, &self.norm_weight, &self.norm_bias, self.cfg.norm_eps);
        self.o_proj.forward(&(normed * g.silu()))
    }

    /// (r ⊙ u)·k per head, (…, heads, 1): the weight of the token's own value.
    fn bonus_weight(&self, r: &Tensor, k: &Tensor) -> Tensor {
        (r * k * &self.bonus).sum_dim_intlist([-1i64].as_slice(), true, None)
    }
}

impl Mixer for Rwkv6 {
    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        format!("rwkv6: {}", engine::describe_factored(self.chunk))
    }

    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let h = self.cfg.n_heads;
        let p = self.project(xs, &(shift(xs, 1, 1) - xs));
        let (r, k, v) = (split_heads(&p.r, h), split_heads(&p.k, h), split_heads(&p.v, h));
        // The engine reads S_t with query r_{t+1}: its output at t − 1 is r_tᵀ S_{t−1}.
        let inputs = Inputs {
            q: shift(&r, 2, -1),
            k: k.shallow_clone(),
            v: v.shallow_clone(),
            decay: Decay::Vector(split_heads(&p.log_w, h)),
            beta: None,
        };
        let (o_next, _) = engine::chunkwise(&inputs, self.chunk, None);
        let past = heads_last(&shift(&o_next, 2, 1));
        let (r, k, v) = (heads_last(&r), heads_last(&k), heads_last(&v));
        self.output(&(past + self.bonus_weight(&r, &k) * v), &p.g)
    }

    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let (b, h) = (x.size()[0], self.cfg.n_heads);
        let heads = |t: &Tensor| t.view([b, h, -1]);
        let prev = state.get::<Rwkv6State>();
        let delta = prev.map_or_else(|| -x, |p| &p.x - x);
        let p = self.project(x, &delta);
        let (r, log_w, k, v) = (heads(&p.r), heads(&p.log_w), heads(&p.k), heads(&p.v));
        let s = prev.map_or_else(
            || Tensor::zeros([b, h, self.cfg.key_dim() / h, self.cfg.value_dim() / h], (x.kind(), x.device())),
            |p| p.s.shallow_clone(),
        );
        let read = r.unsqueeze(-2).matmul(&s).squeeze_dim(-2) + self.bonus_weight(&r, &k) * &v;
        let s = s * log_w.exp().unsqueeze(-1) + k.unsqueeze(-1) * v.unsqueeze(-2);
        state.set(Rwkv6State { x: x.shallow_clone(), s });
        Some(self.output(&read, &p.g))
    }

    /// The d_k × d_v state per head and the previous token's input.
    fn state_size(&self, _seq_len: i64) -> f64 {
        (self.cfg.key_dim() * self.cfg.value_dim() / self.cfg.n_heads + self.cfg.d_model) as f64
    }

    /// Token shift 2H·5r twice (LoRA down and up), projections 2H(2d_k + 2d_v) and the decay's
    /// LoRA 2r_w(H + d_k), o_proj 2d_v·H; the chunkwise form as GLA's (scores, values and the
    /// (c × d_k) decay weights in a chunk of c, 4·d_k·d_v/heads across chunks) plus the bonus
    /// 2(d_k + d_v).
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let (d, dk, dv) = (self.cfg.d_model as f64, self.cfg.key_dim() as f64, self.cfg.value_dim() as f64);
        let (r, rw, heads) =
            (self.cfg.proj_low_rank_dim as f64, self.cfg.gate_low_rank_dim as f64, self.cfg.n_heads as f64);
        let c = self.chunk.min(seq_len.max(1)) as f64;
        let projections = 4.0 * d * 5.0 * r + 2.0 * d * (2.0 * dk + 2.0 * dv) + 2.0 * rw * (d + dk) + 2.0 * dv * d;
        let intra = (2.0 * dk + 2.0 * dv) * (c + 1.0) / 2.0 + 2.0 * dk * (c + 1.0) / 2.0;
        projections + intra + 4.0 * dk * dv / heads + 2.0 * (dk + dv)
    }
}

/// x moved by one position along `dim`: later (`by` = 1, a zero first) or earlier (`by` = −1,
/// a zero last).
pub(super) fn shift(x: &Tensor, dim: i64, by: i64) -> Tensor {
    let len = x.size()[dim as usize];
    let zero = x.narrow(dim, 0, 1).zeros_like();
    match by {
        1 => Tensor::cat(&[&zero, &x.narrow(dim, 0, len - 1)], dim),
        _ => Tensor::cat(&[&x.narrow(dim, 1, len - 1), &zero], dim),
    }
}

pub const INFO: ArchInfo = ArchInfo {
    name: "rwkv6",
    description: "RWKV-6 Finch time mixing (fla layout): data-dependent token shift and per-dimension decay, bonus u; chunkwise engine",
    resolve: super::resolve_typed::<Rwkv6Config>,
    build: super::build_arch::<Rwkv6Config>,
};
