//! Griffin's local attention (De et al. 2024; google-deepmind/recurrentgemma
//! `torch/modules.py` `LocalAttentionBlock`): multi-query attention (one key/value head shared
//! by every query head) over a sliding window, with rotary embeddings on the first half of each
//! head's dimensions. A query attends to itself and the `window` keys before it (the code's
//! mask: 0 ≤ q − k ≤ window). Griffin cycles two RG-LRU blocks and one of these
//! (`arch: hybrid`, `layers: "hawk,hawk,local_attention"`, `backbone: griffin`); alone it is a
//! local-attention stack with Griffin's backbone.
use super::backbone::BackboneConfig;
use super::init::variance_scaled_linear;
use super::transformer::sdpa_backend;
use super::{ArchConfig, ArchInfo, Mixer, MixerState, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalAttentionConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Query heads; must divide d_model, and the head width must be a multiple of 4 (half of
    /// it is rotated, in two halves).
    pub n_heads: i64,
    /// Keys before the query that it sees (`attention_window_size`: 1024 in Griffin-7B, 2048 in
    /// RecurrentGemma).
    pub window: i64,
}

impl Default for LocalAttentionConfig {
    fn default() -> Self {
        LocalAttentionConfig { d_model: 64, n_layers: 2, mlp_ratio: 3, dropout: 0.0, n_heads: 4, window: 1024 }
    }
}

impl Validate for LocalAttentionConfig {
    fn validate(&self, io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.n_heads < 1 || self.d_model % self.n_heads != 0 || (self.d_model / self.n_heads) % 4 != 0 {
            return Err((
                "n_heads",
                format!(
                    "must divide d_model = {} into heads whose width is a multiple of 4, got {}",
                    self.d_model, self.n_heads
                ),
            ));
        }
        if self.window < 1 {
            return Err(("window", format!("must be ≥ 1, got {}", self.window)));
        }
        if !io.causal {
            return Err(("window", "local attention is causal; this task needs a bidirectional model".into()));
        }
        Ok(())
    }
}

impl ArchConfig for LocalAttentionConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::griffin(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
    }

    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(LocalAttention::new(vs, self))
    }
}

pub struct LocalAttention {
    proj_q: nn::Linear,
    proj_k: nn::Linear,
    proj_v: nn::Linear,
    proj_final: nn::Linear,
    n_heads: i64,
    head_dim: i64,
    window: i64,
}

/// `_apply_rope`: the first half of the last dimension rotated in two halves (NeoX layout) with
/// wavelengths up to 10,000, the second half unchanged. x: (b, heads, l, hd), positions from
/// `offset`.
fn apply_rope(x: &Tensor, offset: i64) -> Tensor {
    let (l, hd) = (x.size()[2], x.size()[3]);
    let rotated = hd / 2;
    let parts = x.split_with_sizes([rotated, hd - rotated], -1);
    let opts = (Kind::Float, x.device());
    let freq = Tensor::arange(rotated / 2, opts);
    let inv_freq = (freq * (-2.0 * 10_000f64.ln() / rotated as f64)).exp();
    let positions = Tensor::arange_start(offset, offset + l, opts);
    let angles = positions.unsqueeze(1) * inv_freq.unsqueeze(0); // (l, rotated/2)
    let (sin, cos) = (angles.sin().to_kind(x.kind()), angles.cos().to_kind(x.kind()));
    let halves = parts[0].chunk(2, -1);
    let (first, second) = (&halves[0], &halves[1]);
    Tensor::cat(&[&(first * &cos - second * &sin), &(second * &cos + first * &sin), &parts[1]], -1)
}

impl LocalAttention {
    pub fn new(vs: &nn::Path, cfg: &LocalAttentionConfig) -> Self {
        let (d, hd) = (cfg.d_model, cfg.d_model / cfg.n_heads);
        LocalAttention {
            proj_q: variance_scaled_linear(&(vs / "proj_q"), d, d, 1.0, false),
            proj_k: variance_scaled_linear(&(vs / "proj_k"), d, hd, 1.0, false),
            proj_v: variance_scaled_linear(&(vs / "proj_v"), d, hd, 1.0, false),
            proj_final: variance_scaled_linear(&(vs / "proj_final"), d, d, 2.0 / cfg.n_layers as f64, true),
            n_heads: cfg.n_heads,
            head_dim: hd,
            window: cfg.window,
        }
    }

    /// (b, l, d) → q (b, heads, l, hd) and the shared k, v (b, 1, l, hd), rotary-embedded.
    fn project(&self, xs: &Tensor, offset: i64) -> (Tensor, Tensor, Tensor) {
        let (b, l, _) = xs.size3().expect("(batch, seq, d_model)");
        let q = self.proj_q.forward(xs).view([b, l, self.n_heads, self.head_dim]).transpose(1, 2);
        let k = self.proj_k.forward(xs).view([b, l, 1, self.head_dim]).transpose(1, 2);
        let v = self.proj_v.forward(xs).view([b, l, 1, self.head_dim]).transpose(1, 2);
        (apply_rope(&q, offset), apply_rope(&k, offset), v)
    }

    /// Attention of q (b, heads, lq, hd) over the shared keys and values (b, 1, lk, hd) with the
    /// allowed pairs `mask` (lq, lk), then the final projection: (b, lq, d).
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor) -> Tensor {
        let (b, h, lq, hd) = q.size4().expect("(b, heads, l, hd)");
        let (k, v) = (k.expand([b, h, -1, hd], false), v.expand([b, h, -1, hd], false));
        let y = Tensor::scaled_dot_product_attention(q, &k, &v, Some(mask), 0.0, false, None, false);
        self.proj_final.forward(&y.transpose(1, 2).reshape([b, lq, h * hd]))
    }
}

impl Mixer for LocalAttention {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (q, k, v) = self.project(xs, 0);
        let l = xs.size()[1];
        let pos = Tensor::arange(l, (Kind::Int64, xs.device()));
        let distance = pos.unsqueeze(1) - pos.unsqueeze(0); // q − k
        let mask = distance.ge(0).logical_and(&distance.le(self.window));
        self.attend(&q, &k, &v, &mask)
    }

    /// State: the keys and values of the last `window` positions (the cache of recurrentgemma's
    /// `LocalAttentionBlock`), oldest first.
    fn step(&self, x: &Tensor, pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let (q, k, v) = self.project(&x.unsqueeze(1), pos);
        let (keys, values) = match state.get::<WindowCache>() {
            Some(c) => (Tensor::cat(&[&c.keys, &k], 2), Tensor::cat(&[&c.values, &v], 2)),
            None => (k, v),
        };
        let n = keys.size()[2];
        let mask = Tensor::ones([1, n], (Kind::Bool, x.device()));
        let y = self.attend(&q, &keys, &values, &mask).squeeze_dim(1);
        let keep = n.min(self.window);
        state.set(WindowCache { keys: keys.narrow(2, n - keep, keep), values: values.narrow(2, n - keep, keep) });
        Some(y)
    }

    /// The window's keys and values (one shared head).
    fn state_size(&self, seq_len: i64) -> f64 {
        (2 * seq_len.min(self.window) * self.head_dim) as f64
    }

    /// Projections 2·d·(2d + 2·hd) and scores plus weighted sum 4·d·n over the n keys a query
    /// sees on average (up to window + 1).
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let d = (self.n_heads * self.head_dim) as f64;
        let hd = self.head_dim as f64;
        let l = seq_len as f64;
        let w = (self.window + 1) as f64;
        // Mean over positions of min(t + 1, w).
        let keys = if l <= w { (l + 1.0) / 2.0 } else { w - (w * (w - 1.0)) / (2.0 * l) };
        2.0 * d * (2.0 * d + 2.0 * hd) + 4.0 * d * keys
    }

    fn implementation(&self, device: tch::Device, kind: Kind) -> String {
        let q = Tensor::zeros([1, self.n_heads, 64, self.head_dim], (kind, device));
        let mask = Tensor::ones([64, 64], (Kind::Bool, device));
        format!("local attention: SDPA {} with a window mask", sdpa_backend(&q, Some(&mask), 0.0, false))
    }
}

/// The sliding window's keys and values, (batch, 1, ≤ window, head dim).
struct WindowCache {
    keys: Tensor,
    values: Tensor,
}

pub const INFO: ArchInfo = ArchInfo {
    name: "local_attention",
    description:
        "Griffin's local multi-query attention (sliding window, RoPE on half of each head) with Griffin's backbone",
    resolve: super::resolve_typed::<LocalAttentionConfig>,
    build: super::build_arch::<LocalAttentionConfig>,
};
