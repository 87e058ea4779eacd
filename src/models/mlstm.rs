//! The mLSTM of xLSTM (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory"), as
//! NX-AI/xlstm builds `mLSTMLayer` (`xlstm/blocks/mlstm/{layer,cell,backends}.py`): an
//! up-projection to 2I (I = proj_factor·H rounded up to a multiple of 64), a causal conv with
//! SiLU on the memory branch, block-diagonal q, k (from the conv branch) and v (from the raw
//! branch), an exponential input gate and a sigmoid forget gate per head from [q, k, v], the
//! matrix memory with its normaliser and max-stabiliser, a per-head LayerNorm, a learnable skip
//! of the conv branch, an output gate SiLU(z) and a down-projection.
//!
//! The memory on the engine: with F the cumulative log forget gate and ĩ the input gate's
//! pre-activation, xLSTM's parallel form is
//! h_i = Σ_j C̃_ij v_j / (max(|Σ_j C̃_ij|, e^{−m_i}) + ε), C̃_ij = q_i·k_j/√d · e^{F_i − F_j + ĩ_j − m_i},
//! m_i = max_{j≤i}(F_i − F_j + ĩ_j). The engine computes Σ_j e^{F_i − F_j}(q_i·k'_j)[v_j, 1] with
//! k'_j = k_j/√d · e^{ĩ_j − c} (c the sequence's largest ĩ, so no factor exceeds one), and
//! e^{c − m_i} turns that into xLSTM's stabilised sums exactly; m_i = F_i + cummax_j(ĩ_j − F_j).
//! (Exact while no ĩ exceeds a row's m_i by ~80, beyond which float32 underflows.)
use super::backbone::{BackboneConfig, BackboneInit, Norm};
use super::fla_parts::{heads_last, split_heads, ShortConv};
use super::linear_attention::{self as engine, Decay, Inputs};
use super::{check_at_least, ArchConfig, ArchInfo, Mixer, MixerState, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlstmConfig {
    pub d_model: i64,
    pub n_layers: i64,
    /// xLSTM's mLSTM blocks have no MLP (the up-projection stands in for it): 0.
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Memory heads (xLSTM: 4).
    pub n_heads: i64,
    /// Up-projection factor (xLSTM: 2).
    pub proj_factor: f64,
    /// The inner width is rounded up to a multiple of this (xLSTM: 64).
    pub round_to: i64,
    /// Block size of the block-diagonal q, k, v projections (xLSTM: 4).
    pub qkv_blocksize: i64,
    pub conv_size: i64,
    /// Positions per chunk of the chunkwise form.
    pub chunk: i64,
    /// ε of the backbone's LayerNorms (xLSTM: 1e-5).
    pub norm_eps: f64,
    pub norm: Norm,
}

impl Default for MlstmConfig {
    fn default() -> Self {
        MlstmConfig {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 0,
            dropout: 0.0,
            n_heads: 4,
            proj_factor: 2.0,
            round_to: 64,
            qkv_blocksize: 4,
            conv_size: 4,
            chunk: 64,
            norm_eps: 1e-5,
            norm: Norm::Layer,
        }
    }
}

/// ε added to the memory's normaliser (xLSTM's backends: 1e-6).
const NORMALISER_EPS: f64 = 1e-6;
/// ε of the per-head output LayerNorm (xLSTM's `MultiHeadLayerNorm`: 1e-5).
const HEAD_NORM_EPS: f64 = 1e-5;

/// xLSTM's `MultiHeadLayerNorm` (a group norm with one group per head, no bias, the weight
/// applied as 1 + w): h (…, heads, d) → (…, heads·d).
pub(super) fn multi_head_layer_norm(h: &Tensor, weight: &Tensor) -> Tensor {
    let dims = [-1i64];
    let centred = h - h.mean_dim(dims.as_slice(), true, None);
    let variance = centred.square().mean_dim(dims.as_slice(), true, None);
    (centred * (variance + HEAD_NORM_EPS).rsqrt()).flatten(-2, -1) * (weight + 1.0)
}

impl MlstmConfig {
    /// I: proj_factor·d_model rounded up to a multiple of `round_to`.
    fn inner(&self) -> i64 {
        let round = self.round_to.max(1) as f64;
        ((self.proj_factor * self.d_model as f64 / round).ceil() * round) as i64
    }
}

impl Validate for MlstmConfig {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.proj_factor.is_nan() || self.proj_factor <= 0.0 {
            return Err(("proj_factor", format!("must be > 0, got {}", self.proj_factor)));
        }
        check_at_least("round_to", self.round_to, 1)?;
        let inner = self.inner();
        if self.n_heads < 1 || inner % self.n_heads != 0 {
            return Err(("n_heads", format!("must be ≥ 1 and divide the inner width {inner}, got {}", self.n_heads)));
        }
        if self.qkv_blocksize < 1 || inner % self.qkv_blocksize != 0 {
            return Err((
                "qkv_blocksize",
                format!("must be ≥ 1 and divide the inner width {inner}, got {}", self.qkv_blocksize),
            ));
        }
        check_at_least("conv_size", self.conv_size, 1)?;
        check_at_least("chunk", self.chunk, 1)?;
        Ok(())
    }
}

impl ArchConfig for MlstmConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig {
            norm: self.norm,
            norm_eps: self.norm_eps,
            init: BackboneInit::Torch,
            ..BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
        }
    }

    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Mlstm::new(vs, self))
    }
}

/// xLSTM's `LinearHeadwiseExpand`: a block-diagonal map, weight (blocks, out, in).
pub(super) struct Headwise {
    pub(super) weight: Tensor,
}

impl Headwise {
    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
        let (blocks, size) = (self.weight.size()[0], self.weight.size()[2]);
        let mut shape = x.size();
        shape.pop();
        shape.extend([blocks, size]);
        Tensor::einsum("...bi,boi->...bo", &[x.view(shape.as_slice()), self.weight.shallow_clone()], None::<i64>)
            .reshape(x.size().as_slice())
    }
}

pub struct Mlstm {
    proj_up: nn::Linear,
    conv: ShortConv,
    q_proj: Headwise,
    k_proj: Headwise,
    v_proj: Headwise,
    igate: nn::Linear,
    fgate: nn::Linear,
    /// Applied as 1 + weight (zero at init).
    outnorm_weight: Tensor,
    learnable_skip: Tensor,
    proj_down: nn::Linear,
    cfg: MlstmConfig,
}

/// The conv window, C (b, heads, d, d), n (b, heads, d) and m (b, heads), all stabilised by m.
struct MlstmState {
    window: Tensor,
    c: Tensor,
    n: Tensor,
    m: Tensor,
}

impl Mlstm {
    /// Initialised as xLSTM's `reset_parameters`: proj_up and q, k, v "small init"
    /// N(0, 2/(5H)) (with the model width H), proj_down Wang's N(0, (2/(n_layers·√H))²), the conv
    /// as torch.nn.Conv1d, both gates' weights zero, the input gate's bias N(0, 0.1²), the forget
    /// gate's biases linspace(3, 6) over the heads, the skip one.
    fn new(vs: &nn::Path, cfg: &MlstmConfig) -> Self {
        let (d, inner, heads, bs) = (cfg.d_model, cfg.inner(), cfg.n_heads, cfg.qkv_blocksize);
        let small = nn::Init::Randn { mean: 0.0, stdev: (2.0 / (5.0 * d as f64)).sqrt() };
        let wang = nn::Init::Randn { mean: 0.0, stdev: 2.0 / cfg.n_layers as f64 / (d as f64).sqrt() };
        let plain = |path: nn::Path, inputs: i64, outputs: i64, ws_init: nn::Init| {
            nn::linear(path, inputs, outputs, nn::LinearConfig { ws_init, bs_init: None, bias: false })
        };
        let headwise = |name: &str| Headwise { weight: (vs / name).var("weight", &[inner / bs, bs, bs], small) };
        let cell = vs / "mlstm_cell";
        let gate = |name: &str, bias: nn::Init| {
            let zero = nn::Init::Const(0.0);
            nn::linear(
                &cell / name,
                3 * inner,
                heads,
                nn::LinearConfig { ws_init: zero, bs_init: Some(bias), bias: true },
            )
        };
        let fgate = gate("fgate", nn::Init::Const(0.0));
        let forget_bias = Tensor::linspace(3.0, 6.0, heads, (Kind::Float, tch::Device::Cpu));
        tch::no_grad(|| fgate.bs.as_ref().expect("fgate has a bias").shallow_clone().copy_(&forget_bias));
        Mlstm {
            proj_up: plain(vs / "proj_up", d, 2 * inner, small),
            conv: ShortConv::with_bias(&(vs / "conv1d" / "conv"), inner, cfg.conv_size),
            q_proj: headwise("q_proj"),
            k_proj: headwise("k_proj"),
            v_proj: headwise("v_proj"),
            igate: gate("igate", nn::Init::Randn { mean: 0.0, stdev: 0.1 }),
            fgate,
            outnorm_weight: (&cell / "outnorm").zeros("weight", &[inner]),
            learnable_skip: vs.ones("learnable_skip", &[inner]),
            proj_down: plain(vs / "proj_down", inner, d, wang),
            cfg: cfg.clone(),
        }
    }

    fn head_dim(&self) -> i64 {
        self.cfg.inner() / self.cfg.n_heads
    }

    /// (memory branch after conv and SiLU, q, k, v, ĩ, f̃) from the two branches' inputs; gates
    /// (…, heads).
    fn gates(&self, xc: &Tensor, xm: &Tensor) -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
        let (q, k, v) = (self.q_proj.forward(xc), self.k_proj.forward(xc), self.v_proj.forward(xm));
        let both = Tensor::cat(&[&q, &k, &v], -1);
        (q, k, v, self.igate.forward(&both), self.fgate.forward(&both))
    }

    /// The memory's output h (…, heads, d) → per-head LayerNorm, skip, output gate, proj_down.
    fn output(&self, h: &Tensor, xc: &Tensor, z: &Tensor) -> Tensor {
        let normed = multi_head_layer_norm(h, &self.outnorm_weight);
        self.proj_down.forward(&((normed + &self.learnable_skip * xc) * z.silu()))
    }
}

impl Mixer for Mlstm {
    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        format!("mlstm: {}", engine::describe(self.cfg.chunk))
    }

    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (h, dh) = (self.cfg.n_heads, self.head_dim());
        let up = self.proj_up.forward(xs).chunk(2, -1);
        let (xm, z) = (&up[0], &up[1]);
        let xc = self.conv.forward(xm);
        let (q, k, v, i_pre, f_pre) = self.gates(&xc, xm);
        let to_heads = |t: Tensor| t.transpose(1, 2); // (b, L, heads) → (b, heads, L)
        let (i_pre, log_f) = (to_heads(i_pre), to_heads(f_pre.log_sigmoid()));
        let cum = log_f.cumsum(-1, log_f.kind());
        let m = &cum + (&i_pre - &cum).cummax(-1).0; // (b, heads, L)
        let c = i_pre.amax([-1i64].as_slice(), true).detach();
        let v = split_heads(&v, h);
        let ones = v.narrow(-1, 0, 1).ones_like();
        let inputs = Inputs {
            q: split_heads(&q, h),
            k: split_heads(&k, h) * ((&i_pre - &c).exp() * (dh as f64).powf(-0.5)).unsqueeze(-1),
            v: Tensor::cat(&[&v, &ones], -1),
            decay: Decay::Scalar(log_f),
            beta: None,
        };
        let (sums, _) = engine::chunkwise(&inputs, self.cfg.chunk, None);
        let sums = sums * (&c - &m).exp().unsqueeze(-1); // xLSTM's stabilised [Σ C̃v, Σ C̃]
        let normaliser = sums.narrow(-1, dh, 1).abs().maximum(&(-&m).exp().unsqueeze(-1)) + NORMALISER_EPS;
        let h_out = sums.narrow(-1, 0, dh) / normaliser;
        self.output(&heads_last(&h_out), &xc, z)
    }

    /// xLSTM's `recurrent_step_stabilized_simple`: m_t = max(log f_t + m_{t−1}, ĩ_t) from m = 0,
    /// C and n kept divided by e^m. It differs from the parallel form only in the ε term, where
    /// the starting m = 0 can make m larger (relative differences ~1e-6).
    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let (b, h, dh) = (x.size()[0], self.cfg.n_heads, self.head_dim());
        let prev = state.get::<MlstmState>();
        let up = self.proj_up.forward(x).chunk(2, -1);
        let (xm, z) = (&up[0], &up[1]);
        let (xc, window) = self.conv.step(xm, prev.map(|p| &p.window));
        let (q, k, v, i_pre, f_pre) = self.gates(&xc, xm);
        let heads = |t: &Tensor| t.view([b, h, dh]);
        let (q, k, v) = (heads(&q), heads(&k) * (dh as f64).powf(-0.5), heads(&v));
        let zeros = |shape: &[i64]| Tensor::zeros(shape, (x.kind(), x.device()));
        let (c, n, m) = prev.map_or_else(
            || (zeros(&[b, h, dh, dh]), zeros(&[b, h, dh]), zeros(&[b, h])),
            |p| (p.c.shallow_clone(), p.n.shallow_clone(), p.m.shallow_clone()),
        );
        let log_f = f_pre.log_sigmoid();
        let m_new = (&log_f + &m).maximum(&i_pre);
        let f = (log_f + m - &m_new).exp().unsqueeze(-1);
        let i = (i_pre - &m_new).exp().unsqueeze(-1);
        let c = &c * f.unsqueeze(-1) + (&i * &k).unsqueeze(-1) * v.unsqueeze(-2);
        let n = &n * &f + &i * &k;
        let numerator = q.unsqueeze(-2).matmul(&c).squeeze_dim(-2);
        let qn = (&q * &n).sum_dim_intlist([-1i64].as_slice(), true, None);
        let h_out = numerator / (qn.abs().maximum(&(-&m_new).exp().unsqueeze(-1)) + NORMALISER_EPS);
        state.set(MlstmState { window, c, n, m: m_new });
        Some(self.output(&h_out, &xc, z))
    }

    /// C (d × d), n (d) and m per head, and the conv window.
    fn state_size(&self, _seq_len: i64) -> f64 {
        let (inner, d) = (self.cfg.inner(), self.head_dim());
        (self.cfg.n_heads * (d * d + d + 1) + inner * (self.cfg.conv_size - 1)) as f64
    }

    /// proj_up 4H·I, q/k/v 6·I·blocksize, conv 2·conv·I, gates 12·I·heads, proj_down 2I·H;
    /// the memory (keys d, values d + 1 per head) inside a chunk of c (2I + 2(I + heads))·(c+1)/2
    /// plus c·heads for the decays, across chunks 4·I·(d + 1).
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let (d, inner, heads) = (self.cfg.d_model as f64, self.cfg.inner() as f64, self.cfg.n_heads as f64);
        let c = self.cfg.chunk.min(seq_len.max(1)) as f64;
        let projections = 4.0 * d * inner
            + 6.0 * inner * self.cfg.qkv_blocksize as f64
            + 2.0 * self.cfg.conv_size as f64 * inner
            + 12.0 * inner * heads
            + 2.0 * inner * d;
        let intra = (2.0 * inner + 2.0 * (inner + heads)) * (c + 1.0) / 2.0 + c * heads;
        projections + intra + 4.0 * inner * (inner / heads + 1.0)
    }
}

pub const INFO: ArchInfo = ArchInfo {
    name: "mlstm",
    description:
        "xLSTM's mLSTM layer: exponential input gate, normaliser, max-stabiliser, up/down projection; chunkwise engine",
    resolve: super::resolve_typed::<MlstmConfig>,
    build: super::build_arch::<MlstmConfig>,
};
