//! RWKV-7 "Goose" time mixing (Peng et al. 2025, "RWKV-7 Goose with Expressive Dynamic State
//! Evolution"), as fla-org/flash-linear-attention builds `RWKV7Attention` (`fla/layers/rwkv7.py`;
//! recurrence of `fla/ops/generalized_delta_rule/dplr/naive.py`, scale 1):
//!
//! ```text
//! δ_t = x_{t−1} − x_t,  x^c = x + δ ⊙ μ_c  for c in r w k v a g       (token shift, x_{−1} = 0)
//! r, k, v = linear(x^r, x^k, x^v);  log w = −e^{−1/2}·σ(LoRA_w(x^w))    (tanh inside LoRA_w)
//! v ← lerp(v, v_first, σ(LoRA_v(x^v)))  in every layer but the first, which sets v_first = v
//! a = σ(LoRA_a(x^a)),  g = LoRA_g(x^g) (σ inside),  κ = l2norm_head(k ⊙ k_k),  k ← k ⊙ (1 + (a − 1) ⊙ k_a)
//! S_t = diag(w_t) S_{t−1} − (κ_t ⊙ a_t)(κ_tᵀ S_{t−1}) + k_t v_tᵀ          (the generalised delta rule)
//! o_t = S_tᵀ r_t → GroupNorm per head (ε = head_dim·norm_eps) + (Σ r ⊙ k ⊙ r_k) v, times g, o_proj
//! ```
//!
//! Only the time mixing is the mixer: the backbone's MLP stands where RWKV's channel mixing is,
//! and its norms where the block's are (as for `rwkv6`, docs/models.md). The value residual
//! crosses layers, so the model is built here (`ArchConfig::model`): its mixers share one slot
//! for the first layer's v.
use super::backbone::{Backbone, BackboneConfig, Norm};
use super::chunk_size::{ChunkSize, DPLR_CPU};
use super::fla_parts::{heads_last, l2norm, per_head_group_norm, split_heads, Activation, Lora};
use super::init::orthogonal;
use super::linear_attention::dplr::{self, LowRank};
use super::linear_attention::{self as engine, Decay, Inputs};
use super::rwkv6::shift;
use super::{check_at_least, ArchConfig, ArchInfo, Mixer, MixerState, ParamRule, SeqModel, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rwkv7Config {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Width of a head (fla: 64); d_model / head_dim heads.
    pub head_dim: i64,
    /// Ranks of the LoRAs of the decay, the in-context learning rate a, the value residual and
    /// the output gate (fla's `RWKV7Config`: 64, 64, 16, 128).
    pub decay_low_rank_dim: i64,
    pub a_low_rank_dim: i64,
    pub v_low_rank_dim: i64,
    pub gate_low_rank_dim: i64,
    /// Positions per chunk of the chunkwise form, or `auto`: 32 on the CPU, 64 on CUDA (see
    /// [`ChunkSize`]).
    pub chunk: ChunkSize,
    /// ε of the backbone's LayerNorms; the output GroupNorm's is head_dim × this (fla: 1e-5).
    pub norm_eps: f64,
    pub norm: Norm,
}

impl Default for Rwkv7Config {
    fn default() -> Self {
        Rwkv7Config {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 4,
            dropout: 0.0,
            head_dim: 64,
            decay_low_rank_dim: 64,
            a_low_rank_dim: 64,
            v_low_rank_dim: 16,
            gate_low_rank_dim: 128,
            chunk: ChunkSize::Auto,
            norm_eps: 1e-5,
            norm: Norm::Layer,
        }
    }
}

impl Rwkv7Config {
    fn heads(&self) -> i64 {
        self.d_model / self.head_dim.max(1)
    }
}

impl Validate for Rwkv7Config {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        check_at_least("head_dim", self.head_dim, 1)?;
        if self.d_model % self.head_dim != 0 {
            return Err(("head_dim", format!("must divide d_model = {}, got {}", self.d_model, self.head_dim)));
        }
        for (key, rank) in [
            ("decay_low_rank_dim", self.decay_low_rank_dim),
            ("a_low_rank_dim", self.a_low_rank_dim),
            ("v_low_rank_dim", self.v_low_rank_dim),
            ("gate_low_rank_dim", self.gate_low_rank_dim),
        ] {
            check_at_least(key, rank, 1)?;
        }
        self.chunk.validate()
    }
}

/// The first layer's values, which every later layer mixes into its own (one per model).
type FirstValues = Rc<RefCell<Option<Tensor>>>;

impl ArchConfig for Rwkv7Config {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::fla(self.d_model, self.n_layers, self.mlp_ratio, self.dropout, self.norm, self.norm_eps)
    }

    /// A lone mixer (layer 0 of its own model).
    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Rwkv7::new(vs, self, 0, FirstValues::default()))
    }

    /// The stack, its mixers sharing the first layer's values.
    fn model(&self, vs: &nn::Path, io: &TaskIo) -> Box<dyn SeqModel> {
        let first = FirstValues::default();
        let make = |p: &nn::Path, layer: i64| -> Box<dyn Mixer> { Box::new(Rwkv7::new(p, self, layer, first.clone())) };
        Box::new(Backbone::new(vs, self.backbone(), io, &make))
    }
}

pub struct Rwkv7 {
    /// μ of the six token-shift lerps, in the order r, w, k, v, a, g (each d_model).
    mu: [Tensor; 6],
    r_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    o_proj: nn::Linear,
    w_lora: Lora,
    a_lora: Lora,
    /// None in the first layer, which sets the values the others mix in.
    v_lora: Option<Lora>,
    g_lora: Lora,
    k_k: Tensor,
    k_a: Tensor,
    /// (heads, head_dim).
    r_k: Tensor,
    norm_weight: Tensor,
    norm_bias: Tensor,
    first: FirstValues,
    /// Whether this is the stack's last layer (it lets go of the first layer's values).
    last: bool,
    cfg: Rwkv7Config,
    /// `cfg.chunk` on this mixer's device.
    chunk: i64,
}

/// The inputs of the recurrence and what the output needs, each (…, width).
struct Projected {
    r: Tensor,
    log_w: Tensor,
    k: Tensor,
    v: Tensor,
    a: Tensor,
    g: Tensor,
    /// κ, normalised per head: (…, heads, head_dim).
    kappa: Tensor,
}

/// The previous token's mixer input (b, d_model) and the (head_dim × head_dim) state per head.
struct Rwkv7State {
    x: Tensor,
    s: Tensor,
}

impl Rwkv7 {
    /// Initialised as fla's `RWKV7Attention._initialize_weights` does for block `layer` of
    /// `n_layers` (BlinkDL's schedule): with r₀₁ = layer/(n_layers − 1) (0 for one layer),
    /// r₁ = 1 − layer/n_layers, d_n = n/C, l_n = n/(C − 1) − ½ and z_n the per-head zigzag,
    /// μ_c = 1 − d^{p_c·r₁} (p = 0.2, 0.9, 0.7, 0.7, 0.9, 0.2), k_k = 0.71 − 0.1·l, k_a = 1.02,
    /// r_k = −0.04, the decay LoRA's bias −6 + 6(n/(C − 1))^{1 + r₀₁^0.3} + ½ + 2.5·z, a's
    /// −0.19 + 0.3·z + 0.4·l, v's 0.73 − 0.4·l; r and v projections orthogonal (gain 1), k's
    /// orthogonal (gain 0.1), o_proj zero; the GroupNorm's weight ((layer + 1)/n_layers)^0.7.
    fn new(vs: &nn::Path, cfg: &Rwkv7Config, layer: i64, first: FirstValues) -> Self {
        let (c, heads, head) = (cfg.d_model, cfg.heads(), cfg.head_dim);
        let n = Tensor::arange(c, (Kind::Double, tch::Device::Cpu));
        let r01 = if cfg.n_layers > 1 { layer as f64 / (cfg.n_layers - 1) as f64 } else { 0.0 };
        let r1 = 1.0 - layer as f64 / cfg.n_layers as f64;
        let ddd = &n / c as f64;
        let linear = &n / (c - 1).max(1) as f64 - 0.5;
        let half = ((head - 1) as f64 / 2.0).max(f64::MIN_POSITIVE);
        let z = (n.fmod(head as f64) - (head - 1) as f64 / 2.0) / half;
        let zigzag = &z * z.abs();
        let float = |t: Tensor| t.to_kind(Kind::Float);
        let mu = |name: &str, power: f64| vs.var_copy(name, &float(1.0 - ddd.pow_tensor_scalar(power * r1)));
        let www = (&n / (c - 1).max(1) as f64).pow_tensor_scalar(1.0 + r01.powf(0.3)) * 6.0 - 6.0;
        let proj = |name: &str, gain: f64| {
            let lin = nn::linear(vs / name, c, c, nn::LinearConfig { bias: false, ..Default::default() });
            tch::no_grad(|| lin.ws.shallow_clone().copy_(&orthogonal(c, c, gain)));
            lin
        };
        let o_proj = nn::linear(
            vs / "o_proj",
            c,
            c,
            nn::LinearConfig { ws_init: nn::Init::Const(0.0), bs_init: None, bias: false },
        );
        let norm_weight =
            Tensor::full([c], ((layer + 1) as f64 / cfg.n_layers as f64).powf(0.7), (Kind::Float, tch::Device::Cpu));
        Rwkv7 {
            mu: [mu("x_r", 0.2), mu("x_w", 0.9), mu("x_k", 0.7), mu("x_v", 0.7), mu("x_a", 0.9), mu("x_g", 0.2)],
            r_proj: proj("r_proj", 1.0),
            k_proj: proj("k_proj", 0.1),
            v_proj: proj("v_proj", 1.0),
            o_proj,
            w_lora: Lora::new(&(vs / "w_lora"), c, c, cfg.decay_low_rank_dim, Some(&float(www + 0.5 + &zigzag * 2.5))),
            a_lora: Lora::new(
                &(vs / "a_lora"),
                c,
                c,
                cfg.a_low_rank_dim,
                Some(&float(&zigzag * 0.3 + &linear * 0.4 - 0.19)),
            ),
            v_lora: (layer > 0)
                .then(|| Lora::new(&(vs / "v_lora"), c, c, cfg.v_low_rank_dim, Some(&float(0.73 - &linear * 0.4)))),
            g_lora: Lora::new(&(vs / "g_lora"), c, c, cfg.gate_low_rank_dim, None),
            k_k: vs.var_copy("k_k", &float(0.71 - &linear * 0.1)),
            k_a: vs.var_copy("k_a", &Tensor::full([c], 1.02, (Kind::Float, tch::Device::Cpu))),
            r_k: vs.var_copy("r_k", &Tensor::full([heads, head], -0.04, (Kind::Float, tch::Device::Cpu))),
            norm_weight: (vs / "g_norm").var_copy("weight", &norm_weight),
            norm_bias: (vs / "g_norm").zeros("bias", &[c]),
            first,
            last: layer == cfg.n_layers - 1,
            cfg: cfg.clone(),
            chunk: cfg.chunk.positions(vs.device(), DPLR_CPU),
        }
    }

    /// x and its token shift δ (…, d_model) → the recurrence's inputs; sets or reads the first
    /// layer's values.
    fn project(&self, x: &Tensor, delta: &Tensor) -> Projected {
        let lerp = |i: usize| x + delta * &self.mu[i];
        let xv = lerp(3);
        let k = self.k_proj.forward(&lerp(2));
        let v = self.v_proj.forward(&xv);
        let v = match &self.v_lora {
            None => {
                if !self.last {
                    *self.first.borrow_mut() = Some(v.shallow_clone());
                }
                v
            }
            Some(lora) => {
                let first = if self.last {
                    self.first.borrow_mut().take()
                } else {
                    self.first.borrow().as_ref().map(|t| t.shallow_clone())
                };
                let first = first.expect("the first RWKV-7 layer runs before the others");
                v.lerp_tensor(&first, &lora.forward(&xv, Activation::None).sigmoid())
            }
        };
        let a = self.a_lora.forward(&lerp(4), Activation::None).sigmoid();
        let mut heads_shape = k.size();
        heads_shape.pop();
        heads_shape.extend([self.cfg.heads(), self.cfg.head_dim]);
        let kappa = l2norm(&(&k * &self.k_k).view(heads_shape.as_slice()));
        Projected {
            r: self.r_proj.forward(&lerp(0)),
            log_w: self.w_lora.forward(&lerp(1), Activation::Tanh).sigmoid() * -(-0.5f64).exp(),
            k: &k * ((&a - 1.0) * &self.k_a + 1.0),
            v,
            a,
            g: self.g_lora.forward(&lerp(5), Activation::Sigmoid),
            kappa,
        }
    }

    /// o (…, heads, head_dim) → GroupNorm per head (ε = head_dim × norm_eps), plus the bonus
    /// (r ⊙ k ⊙ r_k summed per head) v, times g, o_proj. r, k, v (…, heads, head_dim).
    fn output(&self, o: &Tensor, p: &Projected, (r, k, v): (&Tensor, &Tensor, &Tensor)) -> Tensor {
        let eps = self.cfg.head_dim as f64 * self.cfg.norm_eps;
        let normed = per_head_group_norm(o, &self.norm_weight, &self.norm_bias, eps);
        let bonus = ((r * k * &self.r_k).sum_dim_intlist([-1i64].as_slice(), true, None) * v).flatten(-2, -1);
        self.o_proj.forward(&((normed + bonus) * &p.g))
    }
}

impl Mixer for Rwkv7 {
    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        format!("rwkv7 (generalised delta rule): {}", engine::describe_factored(self.chunk))
    }

    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let h = self.cfg.heads();
        let p = self.project(xs, &(shift(xs, 1, 1) - xs));
        let (r, k, v) = (split_heads(&p.r, h), split_heads(&p.k, h), split_heads(&p.v, h));
        let kappa = p.kappa.transpose(1, 2); // (b, heads, L, head_dim)
        let low_rank = LowRank { alpha: -&kappa, beta: &kappa * split_heads(&p.a, h) };
        let inputs = Inputs {
            q: r.shallow_clone(),
            k: k.shallow_clone(),
            v: v.shallow_clone(),
            decay: Decay::Vector(split_heads(&p.log_w, h)),
            beta: None,
        };
        let (o, _) = dplr::chunkwise(&inputs, &low_rank, self.chunk, None);
        self.output(&heads_last(&o), &p, (&heads_last(&r), &heads_last(&k), &heads_last(&v)))
    }

    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let (b, h) = (x.size()[0], self.cfg.heads());
        let heads = |t: &Tensor| t.view([b, h, -1]);
        let prev = state.get::<Rwkv7State>();
        let delta = prev.map_or_else(|| -x, |p| &p.x - x);
        let p = self.project(x, &delta);
        let (r, k, v) = (heads(&p.r), heads(&p.k), heads(&p.v));
        let s = prev.map_or_else(
            || Tensor::zeros([b, h, self.cfg.head_dim, self.cfg.head_dim], (x.kind(), x.device())),
            |p| p.s.shallow_clone(),
        );
        let low_rank = (&-&p.kappa, &(&p.kappa * heads(&p.a)));
        let (o, s) = dplr::step(&r, &k, &v, &heads(&p.log_w), low_rank, &s);
        state.set(Rwkv7State { x: x.shallow_clone(), s });
        Some(self.output(&o, &p, (&r, &k, &v)))
    }

    /// The head_dim × head_dim state per head and the previous token's input.
    fn state_size(&self, _seq_len: i64) -> f64 {
        (self.cfg.d_model * self.cfg.head_dim + self.cfg.d_model) as f64
    }

    /// Projections r, k, v, o 8C²; the LoRAs 4C·(r_w + r_a + r_g) (+ 4C·r_v after the first
    /// layer); per token in a chunk of c the four decayed pair weights (α·β, α·k, q·β, q·k:
    /// about (c + 1)/2 pairs each, counted at the pairwise form's 3·head_dim per pair; the
    /// factored form, RWKV-7's, spends 2·head_dim per pair on all c of them), the solve
    /// c·head_dim/2 and the products with T, V and X (about 6c·head_dim), across chunks the
    /// state's read and update (8 head_dim² per head: 8C·head_dim); the bonus and norm about
    /// 10C.
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let cfg = &self.cfg;
        let (c_model, head) = (cfg.d_model as f64, cfg.head_dim as f64);
        let c = self.chunk.min(seq_len.max(1)) as f64;
        let mut ranks = (cfg.decay_low_rank_dim + cfg.a_low_rank_dim + cfg.gate_low_rank_dim) as f64;
        if self.v_lora.is_some() {
            ranks += cfg.v_low_rank_dim as f64;
        }
        let heads = cfg.heads() as f64;
        let intra = heads * (4.0 * 3.0 * head * (c + 1.0) / 2.0 + c * head / 2.0 + 6.0 * c * head);
        8.0 * c_model * c_model + 4.0 * c_model * ranks + intra + 8.0 * c_model * head + 10.0 * c_model
    }

    /// As BlinkDL's RWKV-7 trainer (`RWKV-v7/train_temp/src/model.py`, `configure_optimizers`):
    /// only matrices named `*.weight` there are decayed, so r_k and the LoRAs' matrices (w1, w2,
    /// a1, … there) are not, and the decay's bias w0 trains at twice the learning rate.
    fn param_rules(&self) -> Vec<(&'static str, ParamRule)> {
        let mut rules = vec![
            ("r_k", ParamRule::NoDecay),
            ("w_lora.lora.0.weight", ParamRule::NoDecay),
            ("w_lora.lora.2.weight", ParamRule::NoDecay),
            ("w_lora.lora.2.bias", ParamRule::NoDecayLrScaled(2.0)),
            ("a_lora.lora.0.weight", ParamRule::NoDecay),
            ("a_lora.lora.2.weight", ParamRule::NoDecay),
            ("g_lora.lora.0.weight", ParamRule::NoDecay),
            ("g_lora.lora.2.weight", ParamRule::NoDecay),
        ];
        if self.v_lora.is_some() {
            rules.extend([("v_lora.lora.0.weight", ParamRule::NoDecay), ("v_lora.lora.2.weight", ParamRule::NoDecay)]);
        }
        rules
    }
}

pub const INFO: ArchInfo = ArchInfo {
    name: "rwkv7",
    description: "RWKV-7 Goose time mixing (fla layout): generalised delta rule with per-channel decay, value residual; chunkwise engine",
    resolve: super::resolve_typed::<Rwkv7Config>,
    build: super::build_arch::<Rwkv7Config>,
};
