//! Retention (Sun et al. 2023): linear attention with a fixed per-head exponential decay, rotary
//! positions, per-head normalisation and a swish gate; see docs/models.md for the equations.
use super::backbone::BackboneConfig;
use super::transformer::apply_rope;
use super::{linear_no_bias, ArchConfig, ArchInfo, Mixer, MixerState, TaskIo, Validate};
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
}

impl Default for RetNetConfig {
    fn default() -> Self {
        RetNetConfig { d_model: 64, n_layers: 2, mlp_ratio: 4, dropout: 0.0, n_heads: 4, chunk: 64 }
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
        Ok(())
    }
}

impl ArchConfig for RetNetConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
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
    norm_weight: Tensor,
    norm_bias: Tensor,
    n_heads: i64,
    d_model: i64,
    chunk: i64,
}

const NORM_EPS: f64 = 1e-5;

impl Retention {
    pub fn new(vs: &nn::Path, cfg: &RetNetConfig) -> Self {
        let d = cfg.d_model;
        Retention {
            q: linear_no_bias(&(vs / "q"), d, d),
            k: linear_no_bias(&(vs / "k"), d, d),
            v: linear_no_bias(&(vs / "v"), d, d),
            g: linear_no_bias(&(vs / "g"), d, d),
            out: linear_no_bias(&(vs / "out"), d, d),
            norm_weight: vs.ones("norm_weight", &[d]),
            norm_bias: vs.zeros("norm_bias", &[d]),
            n_heads: cfg.n_heads,
            d_model: d,
            chunk: cfg.chunk,
        }
    }

    fn head_dim(&self) -> i64 {
        self.d_model / self.n_heads
    }

    /// log γ_h per head, shaped (heads, 1, 1) to broadcast over (b, heads, l, d).
    fn log_decay(&self, device: tch::Device) -> Tensor {
        let h = Tensor::arange(self.n_heads, (Kind::Float, device));
        (-(((h + 5.0) * -(2f64.ln())).exp()) + 1.0).log().view([-1, 1, 1])
    }

    /// (b, l, H) → q, k, v as (b, heads, l, d), rotary from position `offset`, k scaled by d^−½.
    fn project(&self, xs: &Tensor, offset: i64) -> (Tensor, Tensor, Tensor) {
        let (b, l, _) = xs.size3().expect("retention input is (batch, seq, d_model)");
        let split = |t: Tensor| t.view([b, l, self.n_heads, self.head_dim()]).transpose(1, 2);
        let q = apply_rope(&split(self.q.forward(xs)), offset);
        let k = apply_rope(&split(self.k.forward(xs)), offset) * (self.head_dim() as f64).powf(-0.5);
        (q, k, split(self.v.forward(xs)))
    }

    /// Per-head normalisation, the swish gate and the output projection. o: (b, heads, l, d),
    /// u: the mixer input (b, l, H).
    fn output(&self, o: &Tensor, u: &Tensor) -> Tensor {
        let (b, _, l, _) = o.size4().expect("retention output is (b, heads, l, d)");
        let mean = o.mean_dim([-1i64].as_slice(), true, None);
        let var = o.var_dim([-1i64].as_slice(), false, true);
        let normed = ((o - mean) / (var + NORM_EPS).sqrt()).transpose(1, 2).reshape([b, l, self.d_model]);
        let normed = normed * &self.norm_weight + &self.norm_bias;
        self.out.forward(&(self.g.forward(u).silu() * normed))
    }
}

impl Mixer for Retention {
    /// Chunkwise form: inside a chunk, the decay-masked parallel form; across chunks, the
    /// (d × d) state S = Σ_m γ^(pos−m) k_mᵀ v_m, as in the paper's chunkwise recurrence.
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (q, k, v) = self.project(xs, 0);
        let (b, len, d) = (q.size()[0], q.size()[2], self.head_dim());
        let log_gamma = self.log_decay(xs.device()); // (heads, 1, 1)
        let mut state = Tensor::zeros([b, self.n_heads, d, d], (q.kind(), q.device()));
        let mut outputs = Vec::new();
        for start in (0..len).step_by(self.chunk as usize) {
            let n = self.chunk.min(len - start);
            let (qc, kc, vc) = (q.narrow(2, start, n), k.narrow(2, start, n), v.narrow(2, start, n));
            let i = Tensor::arange(n, (Kind::Float, xs.device()));
            let gap = i.unsqueeze(1) - i.unsqueeze(0); // i − j
            let mask = (gap.clamp_min(0.0) * &log_gamma).exp() * gap.ge(0.0).to_kind(Kind::Float); // (heads, n, n)
            let inner = (qc.matmul(&kc.transpose(-1, -2)) * mask).matmul(&vc);
            // Position start + i sees the state decayed by γ^(i+1).
            let from_state = qc.matmul(&state) * ((&i + 1.0).unsqueeze(-1) * &log_gamma).exp();
            outputs.push(inner + from_state);
            // S ← γ^n S + Σ_j γ^(n−1−j) k_jᵀ v_j
            let k_decayed = &kc * ((-&i + (n - 1) as f64).unsqueeze(-1) * &log_gamma).exp();
            state = state * (&log_gamma * n as f64).exp() + k_decayed.transpose(-1, -2).matmul(&vc);
        }
        self.output(&Tensor::cat(&outputs, 2), xs)
    }

    /// State: [S] (b, heads, d, d).
    fn step(&self, x: &Tensor, pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let u = x.unsqueeze(1);
        let (q, k, v) = self.project(&u, pos); // (b, heads, 1, d)
        let kv = k.transpose(-1, -2).matmul(&v);
        let s = match state.get::<RetentionState>() {
            Some(prev) => &prev.s * self.log_decay(x.device()).exp() + kv,
            None => kv,
        };
        let o = q.matmul(&s);
        state.set(RetentionState { s });
        Some(self.output(&o, &u).squeeze_dim(1))
    }

    /// Projections 10H² (q, k, v, gate, out); inside a chunk 4H·c with c the mean number of
    /// keys a query sees there; across chunks 4H·d (read and update the state).
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let h = self.d_model as f64;
        let keys = (self.chunk.min(seq_len.max(1)) as f64 + 1.0) / 2.0;
        10.0 * h * h + 4.0 * h * keys + 4.0 * h * self.head_dim() as f64
    }
}

/// Retention's recurrent state: one d × d matrix per head (batch, heads, d, d).
struct RetentionState {
    s: Tensor,
}

pub const INFO: ArchInfo = ArchInfo {
    name: "retnet",
    description: "RetNet retention: multi-scale decayed linear attention, rotary, swish gate; chunkwise",
    resolve: super::resolve_typed::<RetNetConfig>,
    build: super::build_arch::<RetNetConfig>,
};
