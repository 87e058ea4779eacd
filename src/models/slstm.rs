//! The sLSTM of xLSTM (Beck et al. 2024), as NX-AI/xlstm builds `sLSTMLayer`
//! (`xlstm/blocks/slstm/{layer,cell}.py`, the vanilla backend's `slstm_forward_pointwise`): a
//! causal conv with SiLU feeding the input and forget gates, the cell input and output gates
//! from the raw input, all four through block-diagonal (per-head) projections without bias,
//! block-diagonal recurrent weights per head, exponential input gating with a max-stabiliser:
//!
//! ```text
//! ĩ, f̃, z̃, õ = W x (+ conv for ĩ, f̃) + R h_{t−1} + b
//! m_t = max(ĩ, m_{t−1} + log σ(f̃))        (m_1 = ĩ)
//! i = e^{ĩ − m_t},  f = e^{m_{t−1} + log σ(f̃) − m_t}
//! c_t = f c_{t−1} + i tanh(z̃),  n_t = f n_{t−1} + i,  h_t = σ(õ) c_t / n_t
//! ```
//!
//! then a per-head group norm (weight applied as 1 + w). The cell is nonlinear in h, so it runs
//! as a loop over time. Init as the official code: gate weights "small init" N(0, 2/(5D)),
//! recurrent weights zero, biases zero except the forget gate's "powerlaw_blockdependent"
//! 5 − 12·(j/(DH−1))^(0.3 + 1.3·block/(blocks−1)) over each head's DH units, the conv as
//! `torch.nn.Conv1d`. Deviation: the block's feed-forward is seqbench's shared MLP (xLSTM uses a
//! gated GeLU MLP of width 1.3·D), as for `mlstm`.
use super::backbone::{Backbone, BackboneConfig};
use super::fla_parts::ShortConv;
use super::mlstm::{multi_head_layer_norm, Headwise};
use super::{check_at_least, ArchConfig, ArchInfo, Mixer, MixerState, SeqModel, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlstmConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Heads of the block-diagonal gates and recurrence (xLSTM: 4).
    pub n_heads: i64,
    /// Causal conv width before the input and forget gates (xLSTM: 4).
    pub conv_size: i64,
}

impl Default for SlstmConfig {
    fn default() -> Self {
        SlstmConfig { d_model: 64, n_layers: 2, mlp_ratio: 2, dropout: 0.0, n_heads: 4, conv_size: 4 }
    }
}

impl Validate for SlstmConfig {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.n_heads < 1 || self.d_model % self.n_heads != 0 || self.d_model / self.n_heads < 2 {
            return Err((
                "n_heads",
                format!("must divide d_model = {} into heads of at least 2, got {}", self.d_model, self.n_heads),
            ));
        }
        check_at_least("conv_size", self.conv_size, 1)
    }
}

impl ArchConfig for SlstmConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
    }

    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Slstm::new(vs, self, 0))
    }

    /// The forget gate's bias depends on the block's index.
    fn model(&self, vs: &nn::Path, io: &TaskIo) -> Box<dyn SeqModel> {
        Box::new(Backbone::new(vs, self.backbone(), io, &|p, i| Box::new(Slstm::new(p, self, i))))
    }
}

pub struct Slstm {
    conv: ShortConv,
    /// i, f (from the conv), z, o (from the input): weights (heads, DH, DH).
    gates: [Headwise; 4],
    /// (heads, DH, 4, DH): the recurrent weights of the four gates per head.
    recurrent: Tensor,
    /// (heads, 4, DH).
    bias: Tensor,
    /// The per-head group norm's weight, applied as 1 + w.
    norm_weight: Tensor,
    heads: i64,
    head_dim: i64,
    conv_size: i64,
}

/// h, c, n, m (b, heads, DH) and the conv window.
struct SlstmState {
    h: Tensor,
    c: Tensor,
    n: Tensor,
    m: Tensor,
    window: Tensor,
}

impl Slstm {
    fn new(vs: &nn::Path, cfg: &SlstmConfig, block: i64) -> Self {
        let (d, heads) = (cfg.d_model, cfg.n_heads);
        let dh = d / heads;
        let small = nn::Init::Randn { mean: 0.0, stdev: (2.0 / (5.0 * d as f64)).sqrt() };
        let gate = |name: &str| Headwise { weight: (vs / name).var("weight", &[heads, dh, dh], small) };
        // powerlaw_blockdependent: 5 − 12·(j/(DH−1))^(0.3 + 1.3·r), r = block/(blocks − 1).
        let ratio = if cfg.n_layers > 1 { block as f64 / (cfg.n_layers - 1) as f64 } else { 0.0 };
        let cpu = (Kind::Float, tch::Device::Cpu);
        let j = Tensor::arange(dh, cpu) / (dh - 1) as f64;
        let forget = -(j.pow_tensor_scalar(0.3 + 1.3 * ratio) * 12.0 - 5.0);
        let bias = Tensor::zeros([heads, 4, dh], cpu);
        bias.narrow(1, 1, 1).copy_(&forget.view([1, 1, dh]).expand([heads, 1, dh], false));
        Slstm {
            conv: ShortConv::with_bias(&(vs / "conv1d" / "conv"), d, cfg.conv_size),
            gates: [gate("i_gate"), gate("f_gate"), gate("z_gate"), gate("o_gate")],
            recurrent: vs.zeros("recurrent_kernel", &[heads, dh, 4, dh]),
            bias: vs.var_copy("bias", &bias),
            norm_weight: (vs / "group_norm").zeros("weight", &[d]),
            heads,
            head_dim: dh,
            conv_size: cfg.conv_size,
        }
    }

    /// W x (+ b) for the four gates: (…, 4, heads, DH), from the conv branch (i, f) and the input
    /// (z, o).
    fn inputs(&self, conv: &Tensor, x: &Tensor) -> Tensor {
        let per_gate: Vec<Tensor> = self
            .gates
            .iter()
            .zip([conv, conv, x, x])
            .map(|(g, input)| {
                let mut shape = input.size();
                shape.pop();
                shape.extend([self.heads, self.head_dim]);
                g.forward(input).view(shape.as_slice())
            })
            .collect();
        Tensor::stack(&per_gate, -3) + self.bias.transpose(0, 1)
    }

    /// One step of the cell: wx (b, 4, heads, DH) and the previous state → the new one.
    fn cell(
        &self,
        wx: &Tensor,
        prev: Option<(&Tensor, &Tensor, &Tensor, &Tensor)>,
    ) -> (Tensor, Tensor, Tensor, Tensor) {
        let raw = match prev {
            // R h: (b, heads, DH) × (heads, DH, 4, DH) → (b, 4, heads, DH).
            Some((h, ..)) => wx + Tensor::einsum("bhd,hdgo->bgho", &[h, &self.recurrent], None::<i64>),
            None => wx.shallow_clone(),
        };
        let (i_raw, f_raw, z_raw, o_raw) = (raw.select(1, 0), raw.select(1, 1), raw.select(1, 2), raw.select(1, 3));
        let z = z_raw.tanh();
        let o = o_raw.sigmoid();
        match prev {
            // m₁ = ĩ, so i = e⁰ = 1, and the zero c and n make f irrelevant: c = z, n = 1.
            None => (o * &z, z.shallow_clone(), z.ones_like(), i_raw),
            Some((_, c, n, m)) => {
                let log_f_plus_m = m + f_raw.log_sigmoid();
                let m_new = i_raw.maximum(&log_f_plus_m);
                let i = (&i_raw - &m_new).exp().clamp_max(1.0);
                let f = (&log_f_plus_m - &m_new).exp().clamp_max(1.0);
                let c = &f * c + &i * &z;
                let n = f * n + i;
                (o * &c / &n, c, n, m_new)
            }
        }
    }

    /// The per-head group norm of h (…, heads, DH) → (…, D).
    fn output(&self, h: &Tensor) -> Tensor {
        multi_head_layer_norm(h, &self.norm_weight)
    }
}

impl Mixer for Slstm {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let wx = self.inputs(&self.conv.forward(xs), xs); // (b, L, 4, heads, DH)
        let mut state: Option<(Tensor, Tensor, Tensor, Tensor)> = None;
        let mut hs = Vec::with_capacity(wx.size()[1] as usize);
        for step in wx.unbind(1) {
            let next = self.cell(&step, state.as_ref().map(|(h, c, n, m)| (h, c, n, m)));
            hs.push(next.0.shallow_clone());
            state = Some(next);
        }
        self.output(&Tensor::stack(&hs, 1))
    }

    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let (b, d) = (x.size()[0], x.size()[1]);
        let k = self.conv_size;
        let previous = state.get::<SlstmState>();
        let window = match previous {
            Some(s) => Tensor::cat(&[&s.window, &x.unsqueeze(1)], 1),
            None => Tensor::cat(&[&x.zeros_like().unsqueeze(1).expand([b, k - 1, d], false), &x.unsqueeze(1)], 1),
        };
        let conv = self.conv.forward(&window).select(1, k - 1);
        let wx = self.inputs(&conv, x);
        let prev = previous.map(|s| (&s.h, &s.c, &s.n, &s.m));
        let (h, c, n, m) = self.cell(&wx, prev);
        let y = self.output(&h);
        state.set(SlstmState { h, c, n, m, window: window.narrow(1, 1, k - 1) });
        Some(y)
    }

    /// h, c, n, m and the conv window.
    fn state_size(&self, _seq_len: i64) -> f64 {
        let d = (self.heads * self.head_dim) as f64;
        4.0 * d + (self.conv_size - 1) as f64 * d
    }

    /// Four block-diagonal input maps and four recurrent ones (2·D·DH each), the conv (2·k·D) and
    /// the pointwise cell and norm (about 20 per unit).
    fn flops_per_token(&self, _seq_len: i64) -> f64 {
        let d = (self.heads * self.head_dim) as f64;
        16.0 * d * self.head_dim as f64 + 2.0 * self.conv_size as f64 * d + 20.0 * d
    }

    fn implementation(&self, _device: tch::Device, _kind: Kind) -> String {
        "slstm: recurrent loop in libtorch ops, no fused kernel".to_string()
    }
}

pub const INFO: ArchInfo = ArchInfo {
    name: "slstm",
    description:
        "sLSTM of xLSTM: exponential gating with max-stabiliser, block-diagonal recurrence per head, conv on i/f gates",
    resolve: super::resolve_typed::<SlstmConfig>,
    build: super::build_arch::<SlstmConfig>,
};
