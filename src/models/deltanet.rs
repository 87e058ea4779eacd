//! The delta rule on the chunkwise engine, as fla-org/flash-linear-attention builds its layers:
//!
//! - `deltanet` (Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over
//!   Sequence Length"; `fla/layers/delta_net.py`): S_t = (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ,
//!   β = σ(b_proj x), short convolutions with SiLU on q, k and v, L2-normalised q and k, a
//!   per-head RMSNorm on the output;
//! - `gated_deltanet` (Yang et al. 2025, "Gated Delta Networks"; `fla/layers/gated_deltanet.py`):
//!   the same with a scalar decay per head, α = exp(−exp(A_log)·softplus(a_proj x + dt_bias)),
//!   and the output norm gated by swish(g_proj x).
//!
//! - `deltaproduct` (Siems et al. 2025, "DeltaProduct: Improving State-Tracking in Linear RNNs
//!   via Householder Products"; `fla/layers/gated_deltaproduct.py`): Gated DeltaNet with
//!   `num_householder` delta steps per token, each with its own k, v and β; the decay applies
//!   once per token, before the first step, and the output is read after the last. On the
//!   engine the steps are an interleaved sequence of length L·n whose queries are zero except
//!   at each token's last step.
//!
//! `allow_neg_eigval` doubles β (eigenvalues of I − βkkᵀ in [−1, 1], Grazzi et al. 2025).
use super::backbone::{BackboneConfig, Norm};
use super::chunk_size::{ChunkSize, DELTA_RULE_CPU};
use super::fla_parts::{heads_last, l2norm, linear, split_heads, HeadNorm, ShortConv};
use super::init::inverse_softplus_dt;
use super::linear_attention::{self as engine, Decay, Inputs};
use super::{check_at_least, ArchConfig, ArchInfo, Mixer, MixerState, ParamRule, TaskIo, Validate};
use crate::params::{ParamError, ParamMap};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

/// Both layers share this config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeltaConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    pub n_heads: i64,
    /// Key width per head; 0 means d_model / n_heads (fla's DeltaNet: expand_k 1; Gated
    /// DeltaNet's 2048-wide model uses 256 with 6 heads).
    pub head_dim: i64,
    /// Value width as a multiple of the key width; 0 means the layer's default (DeltaNet 1,
    /// Gated DeltaNet 2).
    pub expand_v: i64,
    pub conv_size: i64,
    /// β ∈ [0, 2] instead of [0, 1]: the transition's eigenvalues reach −1.
    pub allow_neg_eigval: bool,
    /// Delta-rule steps (Householder factors) per token: 1 for DeltaNet and Gated DeltaNet,
    /// DeltaProduct's n_h (its layer's default: 2).
    pub num_householder: i64,
    /// Positions (delta steps) per chunk of the chunkwise form, or `auto`: 16 on the CPU, 64 on
    /// CUDA (see [`ChunkSize`]).
    pub chunk: ChunkSize,
    /// ε of the output norm and the backbone's RMSNorms (fla's models: 1e-6).
    pub norm_eps: f64,
    pub norm: Norm,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        DeltaConfig {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 4,
            dropout: 0.0,
            n_heads: 4,
            head_dim: 0,
            expand_v: 0,
            conv_size: 4,
            allow_neg_eigval: false,
            num_householder: 1,
            chunk: ChunkSize::Auto,
            norm_eps: 1e-6,
            norm: Norm::Rms,
        }
    }
}

impl DeltaConfig {
    /// This config with `expand_v: 0` replaced by the layer's default.
    fn for_layer(&self, gated: bool) -> Self {
        let default_v = if gated { 2 } else { 1 };
        DeltaConfig { expand_v: if self.expand_v == 0 { default_v } else { self.expand_v }, ..self.clone() }
    }

    fn head_k(&self) -> i64 {
        if self.head_dim > 0 {
            self.head_dim
        } else {
            self.d_model / self.n_heads.max(1)
        }
    }

    fn head_v(&self) -> i64 {
        self.head_k() * self.expand_v
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        let backbone = BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout);
        backbone.validate()?;
        if self.n_heads < 1 || (self.head_dim == 0 && self.d_model % self.n_heads != 0) {
            return Err(("n_heads", format!("must be ≥ 1 and divide d_model = {} (or set head_dim)", self.d_model)));
        }
        if self.head_dim < 0 {
            return Err(("head_dim", format!("must be ≥ 0 (0 = d_model / n_heads), got {}", self.head_dim)));
        }
        if self.expand_v < 0 {
            return Err(("expand_v", format!("must be ≥ 0 (0 = the layer's default), got {}", self.expand_v)));
        }
        check_at_least("conv_size", self.conv_size, 1)?;
        check_at_least("num_householder", self.num_householder, 1)?;
        self.chunk.validate()?;
        Ok(())
    }

    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::fla(self.d_model, self.n_layers, self.mlp_ratio, self.dropout, self.norm, self.norm_eps)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeltaNetConfig(pub DeltaConfig);

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GatedDeltaNetConfig(pub DeltaConfig);

/// DeltaProduct's config: Gated DeltaNet's with the defaults of fla's `GatedDeltaProduct`
/// layer (two Householder steps, eigenvalues in [−1, 1]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeltaProductConfig(pub DeltaConfig);

impl Default for DeltaProductConfig {
    fn default() -> Self {
        DeltaProductConfig(DeltaConfig { num_householder: 2, allow_neg_eigval: true, ..DeltaConfig::default() })
    }
}

macro_rules! delta_arch {
    ($config:ty, $gated:expr) => {
        impl Validate for $config {
            fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
                self.0.validate()
            }
        }

        impl ArchConfig for $config {
            fn backbone(&self) -> BackboneConfig {
                self.0.backbone()
            }

            fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
                Box::new(DeltaMixer::new(vs, &self.0.for_layer($gated), $gated))
            }
        }
    };
}

delta_arch!(DeltaNetConfig, false);
delta_arch!(GatedDeltaNetConfig, true);
delta_arch!(DeltaProductConfig, true);

/// Gated DeltaNet's decay parameters: A_log (heads) and dt_bias (heads), both without weight
/// decay (`_no_weight_decay` in fla).
struct Gate {
    a_proj: nn::Linear,
    a_log: Tensor,
    dt_bias: Tensor,
    g_proj: nn::Linear,
}

pub struct DeltaMixer {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    b_proj: nn::Linear,
    o_proj: nn::Linear,
    convs: [ShortConv; 3],
    gate: Option<Gate>,
    norm: HeadNorm,
    cfg: DeltaConfig,
    /// `cfg.chunk` on this mixer's device.
    chunk: i64,
}

struct DeltaState {
    windows: [Tensor; 3],
    s: Tensor,
}

impl DeltaMixer {
    pub fn new(vs: &nn::Path, cfg: &DeltaConfig, gated: bool) -> Self {
        let (d, h, n) = (cfg.d_model, cfg.n_heads, cfg.num_householder);
        let (dk, dv) = (h * cfg.head_k(), h * cfg.head_v());
        let conv = |name: &str, width: i64| ShortConv::new(&(vs / name), width, cfg.conv_size);
        let gate = gated.then(|| {
            // A ~ U(0, 16), stored as its log; Δ's bias as Mamba's (log-uniform in
            // [0.001, 0.1], floored at 1e-4, through softplus⁻¹).
            let cpu = (Kind::Float, tch::Device::Cpu);
            let a = Tensor::rand([h], cpu) * 16.0;
            let dt_bias = inverse_softplus_dt(h, 0.001, 0.1);
            Gate {
                a_proj: linear(&(vs / "a_proj"), d, h, false),
                a_log: vs.var_copy("a_log", &a.log()),
                dt_bias: vs.var_copy("dt_bias", &dt_bias),
                g_proj: linear(&(vs / "g_proj"), d, dv, false),
            }
        });
        DeltaMixer {
            q_proj: linear(&(vs / "q_proj"), d, dk, false),
            k_proj: linear(&(vs / "k_proj"), d, n * dk, false),
            v_proj: linear(&(vs / "v_proj"), d, n * dv, false),
            b_proj: linear(&(vs / "b_proj"), d, n * h, false),
            o_proj: linear(&(vs / "o_proj"), dv, d, false),
            convs: [conv("q_conv1d", dk), conv("k_conv1d", n * dk), conv("v_conv1d", n * dv)],
            gate,
            norm: HeadNorm::new(&(vs / "o_norm"), cfg.head_v(), cfg.norm_eps),
            cfg: cfg.clone(),
            chunk: cfg.chunk.positions(vs.device(), DELTA_RULE_CPU),
        }
    }

    /// β (…, n·heads) from the mixer input, step-major.
    fn beta(&self, x: &Tensor) -> Tensor {
        let beta = self.b_proj.forward(x).sigmoid();
        if self.cfg.allow_neg_eigval {
            beta * 2.0
        } else {
            beta
        }
    }

    /// log α (…, heads) = −exp(A_log)·softplus(a_proj x + dt_bias), for the gated layer.
    fn log_decay(&self, x: &Tensor) -> Option<Tensor> {
        self.gate.as_ref().map(|g| -g.a_log.exp() * (g.a_proj.forward(x) + &g.dt_bias).softplus())
    }

    fn scale(&self) -> f64 {
        (self.cfg.head_k() as f64).powf(-0.5)
    }

    /// Engine output (b, L, heads, d_v) → (b, L, H): the (gated) per-head norm, then o_proj.
    fn output(&self, o: &Tensor, x: &Tensor) -> Tensor {
        let gate = self.gate.as_ref().map(|g| g.g_proj.forward(x).view(o.size().as_slice()));
        let normed = self.norm.forward(o, gate.as_ref());
        self.o_proj.forward(&normed.reshape([o.size()[0], o.size()[1], -1]))
    }
}

impl Mixer for DeltaMixer {
    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        format!("delta rule: {}", engine::describe(self.chunk))
    }

    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (b, len, h, n) = (xs.size()[0], xs.size()[1], self.cfg.n_heads, self.cfg.num_householder);
        let [cq, ck, cv] = &self.convs;
        let q = l2norm(&split_heads(&cq.forward(&self.q_proj.forward(xs)), h)) * self.scale();
        // (b, L, n·heads·d) → (b, heads, L·n, d): token t's step j at position t·n + j.
        let steps = |t: Tensor| t.reshape([b, len * n, h, -1]).transpose(1, 2);
        let k = steps(l2norm(&ck.forward(&self.k_proj.forward(xs)).reshape([b, len, n, h, -1])));
        let v = steps(cv.forward(&self.v_proj.forward(xs)));
        let beta = self.beta(xs).view([b, len * n, h]).transpose(1, 2);
        // Only each token's last step is read (q: one row per token); its decay comes before
        // its first.
        let decay = match self.log_decay(xs) {
            Some(g) => {
                let g = g.transpose(1, 2).unsqueeze(-1); // (b, heads, L, 1)
                let rest = g.zeros_like().repeat([1, 1, 1, n - 1]);
                Decay::Scalar(Tensor::cat(&[g, rest], -1).view([b, h, len * n]))
            }
            None => Decay::None,
        };
        let inputs = Inputs { q, k, v, decay, beta: Some(beta) };
        let (o, _) = engine::chunkwise_every(&inputs, n, self.chunk, None);
        self.output(&heads_last(&o), xs)
    }

    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let h = self.cfg.n_heads;
        let prev = state.get::<DeltaState>();
        let old = |i: usize| prev.map(|p| &p.windows[i]);
        let [cq, ck, cv] = &self.convs;
        let (q, wq) = cq.step(&self.q_proj.forward(x), old(0));
        let (k, wk) = ck.step(&self.k_proj.forward(x), old(1));
        let (v, wv) = cv.step(&self.v_proj.forward(x), old(2));
        let (b, n) = (x.size()[0], self.cfg.num_householder);
        let steps = |t: &Tensor| t.reshape([b, n, h, -1]);
        let (k, v, beta) = (l2norm(&steps(&k)), steps(&v), self.beta(x).view([b, n, h]));
        let q = l2norm(&q.view([b, h, -1])) * self.scale();
        let mut s = prev.map_or_else(
            || Tensor::zeros([b, h, self.cfg.head_k(), self.cfg.head_v()], (x.kind(), x.device())),
            |p| p.s.shallow_clone(),
        );
        let log_alpha = self.log_decay(x).map(|g| g.unsqueeze(-1));
        let mut o = Tensor::zeros([b, h, self.cfg.head_v()], (x.kind(), x.device()));
        for j in 0..n {
            let decay = if j == 0 { log_alpha.as_ref() } else { None };
            (o, s) = engine::step(&q, &k.select(1, j), &v.select(1, j), decay, Some(&beta.select(1, j)), &s);
        }
        let y = self.output(&o.unsqueeze(1), &x.unsqueeze(1)).squeeze_dim(1);
        state.set(DeltaState { windows: [wq, wk, wv], s });
        Some(y)
    }

    /// The d_k × d_v state per head and the short convs' windows.
    fn state_size(&self, _seq_len: i64) -> f64 {
        let (h, n) = (self.cfg.n_heads, self.cfg.num_householder);
        let (dk, dv) = (h * self.cfg.head_k(), h * self.cfg.head_v());
        (h * self.cfg.head_k() * self.cfg.head_v() + (dk + n * (dk + dv)) * (self.cfg.conv_size - 1)) as f64
    }

    /// With n delta steps per token: projections 2H(d_k + n(d_k + d_v + heads) + d_v)
    /// (+ 2H(heads + d_v) gated), convolutions 2·conv(d_k + n(d_k + d_v)); per step, inside a
    /// chunk of c the UT system d_k·(c + 1)/2 and its triangular solve c·d_v, across chunks the
    /// state's correction and update 4·d_k·d_v/heads; per token (only its last step is read)
    /// the output's scores and values (d_k + d_v)·(c + 1) and its read of the state
    /// 2·d_k·d_v/heads.
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let (d, heads, n) = (self.cfg.d_model as f64, self.cfg.n_heads as f64, self.cfg.num_householder as f64);
        let (dk, dv) = (heads * self.cfg.head_k() as f64, heads * self.cfg.head_v() as f64);
        let c = self.chunk.min(seq_len.max(1) * self.cfg.num_householder) as f64;
        let mut projections = 2.0 * d * (dk + n * (dk + dv + heads) + dv);
        if self.gate.is_some() {
            projections += 2.0 * d * (heads + dv);
        }
        let conv = 2.0 * self.cfg.conv_size as f64 * (dk + n * (dk + dv));
        // Per step the UT system and its solve, the state read (w S) and update; per token,
        // once, the read output: scores and values inside the chunk and q S.
        let per_step = dk * (c + 1.0) / 2.0 + c * dv + 4.0 * dk * dv / heads;
        let per_token = (dk + dv) * (c + 1.0) + 2.0 * dk * dv / heads;
        projections + conv + n * per_step + per_token
    }

    fn param_rules(&self) -> Vec<(&'static str, ParamRule)> {
        match self.gate {
            Some(_) => vec![("a_log", ParamRule::NoDecay), ("dt_bias", ParamRule::NoDecay)],
            None => Vec::new(),
        }
    }
}

pub const DELTANET_INFO: ArchInfo = ArchInfo {
    name: "deltanet",
    description: "DeltaNet (fla layout): delta rule, short convs, L2-normalised q/k, chunkwise UT form",
    resolve: super::resolve_typed::<DeltaNetConfig>,
    build: super::build_arch::<DeltaNetConfig>,
};

pub const GATED_DELTANET_INFO: ArchInfo = ArchInfo {
    name: "gated_deltanet",
    description: "Gated DeltaNet (fla layout): delta rule with a Mamba-2-style scalar decay, gated RMSNorm",
    resolve: super::resolve_typed::<GatedDeltaNetConfig>,
    build: super::build_arch::<GatedDeltaNetConfig>,
};

/// DeltaProduct's layer defaults where a suite leaves them out (serde's default is the shared
/// config's, with one step).
fn resolve_deltaproduct(combo: &ParamMap, io: &TaskIo) -> Result<serde_json::Value, ParamError> {
    let defaults = DeltaProductConfig::default().0;
    let mut combo = combo.clone();
    combo.entry("num_householder".into()).or_insert(defaults.num_householder.into());
    combo.entry("allow_neg_eigval".into()).or_insert(defaults.allow_neg_eigval.into());
    super::resolve_typed::<DeltaProductConfig>(&combo, io)
}

pub const DELTAPRODUCT_INFO: ArchInfo = ArchInfo {
    name: "deltaproduct",
    description:
        "Gated DeltaProduct (fla layout): n delta-rule (Householder) steps per token, β ∈ [0, 2], scalar decay",
    resolve: resolve_deltaproduct,
    build: super::build_arch::<DeltaProductConfig>,
};
