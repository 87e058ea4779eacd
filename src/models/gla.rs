//! Gated linear attention (Yang et al. 2024, "Gated Linear Attention Transformers with
//! Hardware-Efficient Training"), as fla-org/flash-linear-attention `fla/layers/gla.py` builds
//! it: a data-dependent decay per key dimension from a low-rank gate,
//! α_t = exp(logsigmoid(W₂W₁x_t) / 16), on the chunkwise engine; per-head RMSNorm gated by
//! swish(g). See docs/models.md.
use super::backbone::{BackboneConfig, Norm};
use super::chunk_size::{ChunkSize, VECTOR_DECAY_CPU};
use super::fla_parts::{heads_last, linear, low_rank, split_heads, HeadNorm, ShortConv};
use super::linear_attention::{self as engine, Decay, Inputs};
use super::{check_at_least, check_head_split, ArchConfig, ArchInfo, Mixer, MixerState, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlaConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    pub n_heads: i64,
    /// Key width as a multiple of d_model (fla: 0.5).
    pub expand_k: f64,
    /// Value width as a multiple of d_model (fla: 1).
    pub expand_v: f64,
    /// Short causal convolutions on q, k and v (fla: off for GLA).
    pub use_short_conv: bool,
    pub conv_size: i64,
    /// Rank of the decay gate's projection (fla: 16).
    pub gate_low_rank_dim: i64,
    /// log α = logsigmoid(·) / gate_logit_normalizer (fla: 16).
    pub gate_logit_normalizer: f64,
    /// Positions per chunk of the chunkwise form, or `auto`: 16 on the CPU, 64 on CUDA (see
    /// [`ChunkSize`]).
    pub chunk: ChunkSize,
    /// ε of the output norm and of the backbone's RMSNorms (fla's models: 1e-6).
    pub norm_eps: f64,
    /// The backbone's norms (fla's models: RMSNorm).
    pub norm: Norm,
}

impl Default for GlaConfig {
    fn default() -> Self {
        GlaConfig {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 4,
            dropout: 0.0,
            n_heads: 4,
            expand_k: 0.5,
            expand_v: 1.0,
            use_short_conv: false,
            conv_size: 4,
            gate_low_rank_dim: 16,
            gate_logit_normalizer: 16.0,
            chunk: ChunkSize::Auto,
            norm_eps: 1e-6,
            norm: Norm::Rms,
        }
    }
}

impl GlaConfig {
    fn key_dim(&self) -> i64 {
        (self.d_model as f64 * self.expand_k) as i64
    }

    fn value_dim(&self) -> i64 {
        (self.d_model as f64 * self.expand_v) as i64
    }
}

impl Validate for GlaConfig {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        check_head_split("expand_k", self.key_dim(), self.n_heads)?;
        check_head_split("expand_v", self.value_dim(), self.n_heads)?;
        if self.use_short_conv && self.conv_size < 1 {
            return Err(("conv_size", format!("must be at least 1, got {}", self.conv_size)));
        }
        check_at_least("gate_low_rank_dim", self.gate_low_rank_dim, 1)?;
        if self.gate_logit_normalizer.is_nan() || self.gate_logit_normalizer <= 0.0 {
            return Err(("gate_logit_normalizer", format!("must be > 0, got {}", self.gate_logit_normalizer)));
        }
        self.chunk.validate()?;
        Ok(())
    }
}

impl ArchConfig for GlaConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::fla(self.d_model, self.n_layers, self.mlp_ratio, self.dropout, self.norm, self.norm_eps)
    }

    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Gla::new(vs, self))
    }
}

pub struct Gla {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    g_proj: nn::Linear,
    gk_proj: (nn::Linear, nn::Linear),
    o_proj: nn::Linear,
    convs: Option<[ShortConv; 3]>,
    norm: HeadNorm,
    cfg: GlaConfig,
    /// `cfg.chunk` on this mixer's device.
    chunk: i64,
}

/// GLA's recurrent state: the conv windows (if any) and the (d_k × d_v) state per head.
struct GlaState {
    windows: Option<[Tensor; 3]>,
    s: Tensor,
}

impl Gla {
    pub fn new(vs: &nn::Path, cfg: &GlaConfig) -> Self {
        let (d, dk, dv) = (cfg.d_model, cfg.key_dim(), cfg.value_dim());
        let conv = |name: &str, width: i64| ShortConv::new(&(vs / name), width, cfg.conv_size);
        Gla {
            q_proj: linear(&(vs / "q_proj"), d, dk, false),
            k_proj: linear(&(vs / "k_proj"), d, dk, false),
            v_proj: linear(&(vs / "v_proj"), d, dv, false),
            g_proj: linear(&(vs / "g_proj"), d, dv, false),
            gk_proj: (
                linear(&(vs / "gk_proj" / 0), d, cfg.gate_low_rank_dim, false),
                linear(&(vs / "gk_proj" / 1), cfg.gate_low_rank_dim, dk, true),
            ),
            o_proj: linear(&(vs / "o_proj"), dv, d, false),
            convs: cfg.use_short_conv.then(|| [conv("q_conv1d", dk), conv("k_conv1d", dk), conv("v_conv1d", dv)]),
            norm: HeadNorm::new(&(vs / "g_norm_swish_gate"), dv / cfg.n_heads, cfg.norm_eps),
            cfg: cfg.clone(),
            chunk: cfg.chunk.positions(vs.device(), VECTOR_DECAY_CPU),
        }
    }

    /// log α (…, d_k) from the mixer input.
    fn log_decay(&self, x: &Tensor) -> Tensor {
        low_rank(&self.gk_proj.0, &self.gk_proj.1, x).log_sigmoid() / self.cfg.gate_logit_normalizer
    }

    fn scale(&self) -> f64 {
        ((self.cfg.key_dim() / self.cfg.n_heads) as f64).powf(-0.5)
    }

    /// Engine output (b, L, heads, d_v) → the mixer's output (b, L, H).
    fn output(&self, o: &Tensor, x: &Tensor) -> Tensor {
        let gate = self.g_proj.forward(x).view(o.size().as_slice());
        let normed = self.norm.forward(o, Some(&gate));
        self.o_proj.forward(&normed.reshape([o.size()[0], o.size()[1], -1]))
    }
}

impl Mixer for Gla {
    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        format!("gla: {}", engine::describe_factored(self.chunk))
    }

    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let h = self.cfg.n_heads;
        let (mut q, mut k, mut v) = (self.q_proj.forward(xs), self.k_proj.forward(xs), self.v_proj.forward(xs));
        if let Some([cq, ck, cv]) = &self.convs {
            (q, k, v) = (cq.forward(&q), ck.forward(&k), cv.forward(&v));
        }
        let inputs = Inputs {
            q: split_heads(&q, h) * self.scale(),
            k: split_heads(&k, h),
            v: split_heads(&v, h),
            decay: Decay::Vector(split_heads(&self.log_decay(xs), h)),
            beta: None,
        };
        let (o, _) = engine::chunkwise(&inputs, self.chunk, None);
        self.output(&heads_last(&o), xs)
    }

    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let h = self.cfg.n_heads;
        let prev = state.get::<GlaState>();
        let (mut q, mut k, mut v) = (self.q_proj.forward(x), self.k_proj.forward(x), self.v_proj.forward(x));
        let windows = self.convs.as_ref().map(|[cq, ck, cv]| {
            let old = prev.and_then(|p| p.windows.as_ref());
            let (yq, wq) = cq.step(&q, old.map(|w| &w[0]));
            let (yk, wk) = ck.step(&k, old.map(|w| &w[1]));
            let (yv, wv) = cv.step(&v, old.map(|w| &w[2]));
            (q, k, v) = (yq, yk, yv);
            [wq, wk, wv]
        });
        let heads = |t: &Tensor| t.view([t.size()[0], h, -1]);
        let s = prev.map_or_else(
            || {
                Tensor::zeros(
                    [x.size()[0], h, self.cfg.key_dim() / h, self.cfg.value_dim() / h],
                    (x.kind(), x.device()),
                )
            },
            |p| p.s.shallow_clone(),
        );
        let log_alpha = heads(&self.log_decay(x));
        let (o, s) = engine::step(&(heads(&q) * self.scale()), &heads(&k), &heads(&v), Some(&log_alpha), None, &s);
        let y = self.output(&o.unsqueeze(1), &x.unsqueeze(1)).squeeze_dim(1);
        state.set(GlaState { windows, s });
        Some(y)
    }

    /// The d_k × d_v state per head and the short convs' windows.
    fn state_size(&self, _seq_len: i64) -> f64 {
        let (dk, dv) = (self.cfg.key_dim(), self.cfg.value_dim());
        let conv = if self.cfg.use_short_conv { (2 * dk + dv) * (self.cfg.conv_size - 1) } else { 0 };
        (dk * dv / self.cfg.n_heads + conv) as f64
    }

    /// Projections 2H(2d_k + 2d_v) + 2H·r + 2r·d_k (gate); the chunkwise form inside a chunk of
    /// c: 2(d_k + d_v)·(c + 1)/2 per head-width for scores and values plus the (c × d_k) decay
    /// weights, across chunks 4·d_k·d_v/heads (read and update the state).
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let (d, dk, dv) = (self.cfg.d_model as f64, self.cfg.key_dim() as f64, self.cfg.value_dim() as f64);
        let (r, heads) = (self.cfg.gate_low_rank_dim as f64, self.cfg.n_heads as f64);
        let c = self.chunk.min(seq_len.max(1)) as f64;
        let projections = 2.0 * d * (2.0 * dk + 2.0 * dv) + 2.0 * d * r + 2.0 * r * dk;
        let conv = if self.cfg.use_short_conv { 2.0 * self.cfg.conv_size as f64 * (2.0 * dk + dv) } else { 0.0 };
        let intra = (2.0 * dk + 2.0 * dv) * (c + 1.0) / 2.0 + 2.0 * dk * (c + 1.0) / 2.0;
        projections + conv + intra + 4.0 * dk * dv / heads
    }
}

pub const INFO: ArchInfo = ArchInfo {
    name: "gla",
    description: "gated linear attention (fla layout): low-rank per-dimension decay, chunkwise engine, gated RMSNorm",
    resolve: super::resolve_typed::<GlaConfig>,
    build: super::build_arch::<GlaConfig>,
};
