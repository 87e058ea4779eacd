//! Pre-norm transformer: multi-head self-attention through libtorch's
//! `scaled_dot_product_attention` (flash / memory-efficient kernels where available), causal
//! when the task is, with rotary (default) or learned absolute positions.
use super::backbone::{AbsolutePositions, Backbone, BackboneConfig};
use super::init::torch_linear;
use super::{ArchInfo, Mixer, MixerState, SeqModel, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerConfig {
    pub d_model: i64,
    pub n_layers: i64,
    /// Attention heads; must divide d_model.
    pub n_heads: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Position information: rotary embeddings on queries and keys (rope), absolute embeddings
    /// added to the input (learned, or the fixed sinusoidal table), or none.
    pub positions: Positions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    Rope,
    Learned,
    Sinusoidal,
    None,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig {
            d_model: 64,
            n_layers: 2,
            n_heads: 4,
            mlp_ratio: 4,
            dropout: 0.0,
            positions: Positions::Rope,
        }
    }
}

impl TransformerConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig {
            absolute_positions: match self.positions {
                Positions::Learned => AbsolutePositions::Learned,
                Positions::Sinusoidal => AbsolutePositions::Sinusoidal,
                Positions::Rope | Positions::None => AbsolutePositions::None,
            },
            ..BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
        }
    }
}

impl Validate for TransformerConfig {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.n_heads < 1 || self.d_model % self.n_heads != 0 {
            return Err((
                "n_heads",
                format!("must be ≥ 1 and divide d_model = {}, got {}", self.d_model, self.n_heads),
            ));
        }
        if self.n_heads >= 1 && self.positions == Positions::Rope && (self.d_model / self.n_heads) % 2 != 0 {
            return Err(("positions", "rope needs an even head dimension (d_model / n_heads)".into()));
        }
        Ok(())
    }
}

pub struct Attention {
    qkv: nn::Linear,
    out: nn::Linear,
    n_heads: i64,
    d_model: i64,
    causal: bool,
    dropout: f64,
    rope: bool,
}

/// The scaled-dot-product-attention backend libtorch picks (`_fused_sdp_choice`, what
/// `F.scaled_dot_product_attention` dispatches to) for queries, keys and values shaped and typed
/// as `q`, with this mask, dropout and causality.
pub fn sdpa_backend(q: &Tensor, mask: Option<&Tensor>, dropout: f64, causal: bool) -> &'static str {
    match Tensor::f_internal_fused_sdp_choice(q, q, q, mask, dropout, causal, None, false) {
        Ok(0) => "math",
        Ok(1) => "flash",
        Ok(2) => "memory-efficient",
        Ok(3) => "cudnn",
        Ok(4) => "overrideable",
        _ => "unknown",
    }
}

/// Rotary position embedding (GPT-NeoX "rotate half" layout) applied to x: (b, heads, l, hd)
/// whose first position is `offset`.
pub fn apply_rope(x: &Tensor, offset: i64) -> Tensor {
    let (l, hd) = (x.size()[2], x.size()[3]);
    let opts = (tch::Kind::Float, x.device());
    let inv_freq = (Tensor::arange_start_step(0, hd, 2, opts) * (-(10_000f64.ln()) / hd as f64)).exp();
    let angles = Tensor::arange_start(offset, offset + l, opts).unsqueeze(1) * inv_freq.unsqueeze(0); // (l, hd/2)
    let angles = Tensor::cat(&[&angles, &angles], 1).to_kind(x.kind()); // (l, hd)
    let halves = x.chunk(2, -1);
    let rotated = Tensor::cat(&[&(-&halves[1]), &halves[0]], -1);
    x * angles.cos() + rotated * angles.sin()
}

impl Attention {
    pub fn new(vs: &nn::Path, cfg: &TransformerConfig, causal: bool) -> Self {
        let d = cfg.d_model;
        Attention {
            qkv: torch_linear(&(vs / "qkv"), d, 3 * d, true),
            out: torch_linear(&(vs / "out"), d, d, true),
            n_heads: cfg.n_heads,
            d_model: d,
            causal,
            dropout: cfg.dropout,
            rope: cfg.positions == Positions::Rope,
        }
    }
}

impl Attention {
    /// (b, l, d) → q, k, v as (b, heads, l, head_dim), rotary-embedded from position `offset`.
    fn project(&self, xs: &Tensor, offset: i64) -> (Tensor, Tensor, Tensor) {
        let (b, l, d) = xs.size3().expect("attention input is (batch, seq, d_model)");
        // (b, l, 3d) → (3, b, heads, l, head_dim)
        let qkv = self.qkv.forward(xs).view([b, l, 3, self.n_heads, d / self.n_heads]).permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        if self.rope {
            (apply_rope(&q, offset), apply_rope(&k, offset), v)
        } else {
            (q, k, v)
        }
    }

    /// Attention output (b, heads, l, head_dim) → (b, l, d) through the output projection.
    fn merge(&self, y: &Tensor) -> Tensor {
        let (b, _, l, _) = y.size4().expect("attention output is (b, heads, l, head_dim)");
        self.out.forward(&y.transpose(1, 2).reshape([b, l, self.d_model]))
    }
}

impl Mixer for Attention {
    /// The scaled-dot-product-attention backend libtorch chooses for this layer's shapes, mask
    /// and dropout on `device` in `kind` (`_fused_sdp_choice`, what `F.scaled_dot_product_attention`
    /// dispatches to).
    fn implementation(&self, device: tch::Device, kind: tch::Kind) -> String {
        let q = Tensor::zeros([1, self.n_heads, 64, self.d_model / self.n_heads], (kind, device));
        format!("attention: SDPA {}", sdpa_backend(&q, None, self.dropout, self.causal))
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let (q, k, v) = self.project(xs, 0);
        let p = if train { self.dropout } else { 0.0 };
        self.merge(&Tensor::scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, p, self.causal, None, false))
    }

    /// Padding at the end cannot reach earlier positions under a causal mask; otherwise padded
    /// keys are hidden from every query.
    fn forward_masked(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        if self.causal {
            return self.forward_t(xs, train);
        }
        let (q, k, v) = self.project(xs, 0);
        let p = if train { self.dropout } else { 0.0 };
        // (b, 1, 1, l), true = attend. Key 0 always stays visible so that an all-padding example
        // gives finite (ignored) outputs rather than NaN.
        let keys = mask.gt(0.0);
        let _ = keys.narrow(1, 0, 1).fill_(1);
        let keys = keys.view([mask.size()[0], 1, 1, -1]);
        self.merge(&Tensor::scaled_dot_product_attention(&q, &k, &v, Some(&keys), p, false, None, false))
    }

    /// KV cache: state [keys, values], each (b, heads, pos, head_dim). Only causal attention has
    /// a recurrent form.
    fn step(&self, x: &Tensor, pos: i64, state: &mut MixerState) -> Option<Tensor> {
        if !self.causal {
            return None;
        }
        let (q, k, v) = self.project(&x.unsqueeze(1), pos);
        // The KV cache: key and value buffers (batch, heads, capacity, head dim) holding the
        // `pos` earlier positions, written in place and doubled when full, so that generating
        // L tokens copies O(L) entries rather than the O(L²) of growing it by concatenation.
        let cached = pos;
        if state.get::<KvCache>().is_none_or(|cache| cache.keys.size()[2] <= cached) {
            let capacity = (2 * (cached + 1)).max(16);
            let old = state.get::<KvCache>().filter(|_| cached > 0);
            let grow = |new: &Tensor, old: Option<&Tensor>| {
                let (b, h, _, d) = new.size4().expect("(batch, heads, 1, head dim)");
                let buffer = Tensor::zeros([b, h, capacity, d], (new.kind(), new.device()));
                if let Some(old) = old {
                    buffer.narrow(2, 0, cached).copy_(&old.narrow(2, 0, cached));
                }
                buffer
            };
            let grown = KvCache { keys: grow(&k, old.map(|c| &c.keys)), values: grow(&v, old.map(|c| &c.values)) };
            state.set(grown);
        }
        let cache = state.get::<KvCache>().expect("allocated above");
        cache.keys.narrow(2, cached, 1).copy_(&k);
        cache.values.narrow(2, cached, 1).copy_(&v);
        let (keys, values) = (cache.keys.narrow(2, 0, cached + 1), cache.values.narrow(2, 0, cached + 1));
        // The query is the newest position: every cached key is in its past.
        let y = Tensor::scaled_dot_product_attention::<Tensor>(&q, &keys, &values, None, 0.0, false, None, false);
        Some(self.merge(&y).squeeze_dim(1))
    }

    /// The KV cache: keys and values of every position.
    fn state_size(&self, seq_len: i64) -> f64 {
        (2 * seq_len * self.d_model) as f64
    }

    /// Projections 8·d² (q, k, v, out) plus scores and weighted sum 4·d·n, where n is the number
    /// of keys a query attends to: L, or (L+1)/2 on average when causal.
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let d = self.d_model as f64;
        let keys = if self.causal { (seq_len as f64 + 1.0) / 2.0 } else { seq_len as f64 };
        8.0 * d * d + 4.0 * d * keys
    }
}

fn resolve(combo: &crate::params::ParamMap, io: &TaskIo) -> Result<serde_json::Value, crate::params::ParamError> {
    super::resolve_typed::<TransformerConfig>(combo, io)
}

pub fn build_transformer(vs: &nn::Path, cfg: &TransformerConfig, io: &TaskIo) -> Box<dyn SeqModel> {
    let causal = io.causal;
    let make = |p: &nn::Path, _i: i64| Box::new(Attention::new(p, cfg, causal)) as Box<dyn Mixer>;
    Box::new(Backbone::new(vs, cfg.backbone(), io, &make))
}

fn build(vs: &nn::Path, params: &serde_json::Value, io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    let cfg: TransformerConfig = serde_json::from_value(params.clone())?;
    Ok(build_transformer(vs, &cfg, io))
}

/// The KV cache: key and value buffers (batch, heads, capacity, head dim), the first `pos`
/// positions filled; written in place and doubled when full.
struct KvCache {
    keys: Tensor,
    values: Tensor,
}

pub const INFO: ArchInfo = ArchInfo {
    name: "transformer",
    description: "pre-norm transformer, SDPA attention (causal when the task is), RoPE or learned positions",
    resolve,
    build,
};
