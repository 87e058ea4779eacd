//! Hawk (De et al. 2024, "Griffin: Mixing Gated Linear Recurrences with Local Attention"): the
//! recurrent block of google-deepmind/recurrentgemma (`torch/modules.py` `RecurrentBlock`,
//! `torch/layers.py` `RGLRU`, `Conv1D`, `BlockDiagonalLinear`) in every residual block, with
//! Griffin's gated GeLU MLP, RMSNorm (ε 1e-6) and initialisation in the backbone.
//!
//! ```text
//! y = gelu_tanh(W_y x)                       x' = conv1d_causal(W_x x)     (width 4, per channel)
//! i_t = σ(BlockDiag_i x'_t)   r_t = σ(BlockDiag_a x'_t)
//! log a_t = −8 · r_t · softplus(Λ)           (c = 8)
//! h_t = a_t ⊙ h_{t−1} + √(1 − a_t²) ⊙ (i_t ⊙ x'_t)   (the √ factor is 1 at the first position)
//! out = W_out (h ⊙ y)
//! ```
//!
//! As the official code: the √ has a bounded derivative (`SqrtBoundDerivative`, at most 1000),
//! the recurrence accumulates in float32 whatever the activations' dtype, and softplus(Λ) starts
//! at −log a₀ with a₀² uniform in [0.81, 0.998] (`rnn_param_init`, min_rad 0.9, max_rad 0.999:
//! the code puts a₀, not the paper's a₀^c, in [0.9, 0.999]). Deviation: seqbench's heads are
//! per task, so the output layer is not tied to the embedding (Griffin decodes with it).
use super::backbone::BackboneConfig;
use super::fused;
use super::init::variance_scaled_linear;
use super::scan::ScanImpl;
use super::{ArchConfig, ArchInfo, Mixer, MixerState, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HawkConfig {
    pub d_model: i64,
    pub n_layers: i64,
    /// Gated MLP hidden width as a multiple of d_model (Griffin: 3).
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Width of the recurrence (`lru_width`); 0 means d_model (RecurrentGemma-2B; Hawk-7B uses
    /// about 1.375 × d_model).
    pub lru_width: i64,
    /// Blocks of the block-diagonal gate projections (`num_heads`); must divide the width.
    pub num_heads: i64,
    /// Temporal convolution width (`conv1d_temporal_width`: 4).
    pub conv_width: i64,
    /// a₀ = exp(−softplus(Λ)) starts with a₀² uniform in [min_rad², max_rad²].
    pub min_rad: f64,
    pub max_rad: f64,
    /// The recurrence's scan: `fused` (the C++ op) or `reference` (libtorch ops).
    pub scan: ScanImpl,
}

impl Default for HawkConfig {
    fn default() -> Self {
        HawkConfig {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 3,
            dropout: 0.0,
            lru_width: 0,
            num_heads: 4,
            conv_width: 4,
            min_rad: 0.9,
            max_rad: 0.999,
            scan: ScanImpl::Fused,
        }
    }
}

/// The fixed constant c of the RG-LRU's decay exponent.
const C: f64 = 8.0;
/// `_MAX_SQRT_GRADIENT` of recurrentgemma's `SqrtBoundDerivative`.
const MAX_SQRT_GRADIENT: f64 = 1000.0;

impl HawkConfig {
    fn width(&self) -> i64 {
        if self.lru_width > 0 {
            self.lru_width
        } else {
            self.d_model
        }
    }
}

impl Validate for HawkConfig {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.lru_width < 0 {
            return Err(("lru_width", format!("must be ≥ 0 (0 = d_model), got {}", self.lru_width)));
        }
        if self.num_heads < 1 || self.width() % self.num_heads != 0 {
            return Err((
                "num_heads",
                format!(
                    "must divide the recurrence width {} (lru_width or d_model), got {}",
                    self.width(),
                    self.num_heads
                ),
            ));
        }
        if self.conv_width < 1 {
            return Err(("conv_width", format!("must be ≥ 1, got {}", self.conv_width)));
        }
        if !(0.0 < self.min_rad && self.min_rad <= self.max_rad && self.max_rad < 1.0) {
            return Err((
                "min_rad",
                format!("need 0 < min_rad ≤ max_rad < 1, got {} and {}", self.min_rad, self.max_rad),
            ));
        }
        Ok(())
    }
}

impl ArchConfig for HawkConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::griffin(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
    }

    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Hawk::new(vs, self))
    }
}

/// `BlockDiagonalLinear`: per block a (block × block) matrix and a bias.
struct BlockDiagonal {
    w: Tensor,
    b: Tensor,
}

impl BlockDiagonal {
    fn new(vs: &nn::Path, width: i64, blocks: i64) -> Self {
        let bw = width / blocks;
        BlockDiagonal {
            w: vs.randn("w", &[blocks, bw, bw], 0.0, (bw as f64).sqrt().recip()),
            b: vs.zeros("b", &[blocks, bw]),
        }
    }

    /// (…, width) → (…, width): y_h = x_h W_h + b_h per block h.
    fn forward(&self, x: &Tensor) -> Tensor {
        let (blocks, bw) = (self.w.size()[0], self.w.size()[1]);
        let mut shape = x.size();
        let width = shape.pop().expect("at least one dimension");
        let grouped = x.reshape([-1, blocks, bw]); // (n, h, i)
        let y = Tensor::einsum("nhi,hij->nhj", &[&grouped, &self.w], None::<&[i64]>) + &self.b;
        shape.push(width);
        y.reshape(shape)
    }
}

pub struct Hawk {
    linear_y: nn::Linear,
    linear_x: nn::Linear,
    linear_out: nn::Linear,
    /// The temporal convolution, (conv_width, width) as `Conv1D.w`: w[W−1] multiplies the
    /// current input.
    conv_w: Tensor,
    conv_b: Tensor,
    input_gate: BlockDiagonal,
    a_gate: BlockDiagonal,
    a_param: Tensor,
    d_model: i64,
    width: i64,
    conv_width: i64,
    scan: ScanImpl,
}

impl Hawk {
    pub fn new(vs: &nn::Path, cfg: &HawkConfig) -> Self {
        let (d, w, k) = (cfg.d_model, cfg.width(), cfg.conv_width);
        // rnn_param_init(min_rad, max_rad, transform=softplus, eps=1e-8).
        let eps = 1e-8;
        let (lo, hi) = (cfg.min_rad * cfg.min_rad + eps, cfg.max_rad * cfg.max_rad + eps);
        let cpu = (Kind::Float, tch::Device::Cpu);
        let log_a = ((Tensor::rand([w], cpu) * (hi - lo) + lo).log()) * 0.5;
        let a_param = ((-log_a).exp() - 1.0).log(); // softplus⁻¹(−log a₀)
        Hawk {
            linear_y: variance_scaled_linear(&(vs / "linear_y"), d, w, 1.0, true),
            linear_x: variance_scaled_linear(&(vs / "linear_x"), d, w, 1.0, true),
            linear_out: variance_scaled_linear(&(vs / "linear_out"), w, d, 2.0 / cfg.n_layers as f64, true),
            conv_w: vs.randn("conv_w", &[k, w], 0.0, (0.01 / k as f64).sqrt()),
            conv_b: vs.zeros("conv_b", &[w]),
            input_gate: BlockDiagonal::new(&(vs / "input_gate"), w, cfg.num_heads),
            a_gate: BlockDiagonal::new(&(vs / "a_gate"), w, cfg.num_heads),
            a_param: vs.var_copy("a_param", &a_param),
            d_model: d,
            width: w,
            conv_width: k,
            scan: cfg.scan,
        }
    }

    /// Causal depthwise convolution over (b, L, width), zeros before the start: the fused op on
    /// CPU with `scan: fused`, else conv1d.
    fn conv(&self, x: &Tensor) -> Tensor {
        if self.scan.fused_conv(x.device()) {
            return fused::causal_conv(x, &self.conv_w.tr(), &self.conv_b, false).to_kind(x.kind());
        }
        let k = self.conv_width;
        let padded = x.transpose(1, 2).constant_pad_nd([k - 1, 0]); // (b, width, L + k − 1)
        let weight = self.conv_w.transpose(0, 1).unsqueeze(1); // (width, 1, k)
        padded.conv1d(&weight, Some(&self.conv_b), [1], [0], [1], self.width).transpose(1, 2)
    }

    /// The RG-LRU's gated input and decay for x (…, width): (a, normalised input), both float32;
    /// `first` marks the positions whose √(1 − a²) factor is 1 (the sequence's start).
    fn gates(&self, x: &Tensor, first: Option<&Tensor>) -> (Tensor, Tensor) {
        let gate_x = self.input_gate.forward(x).sigmoid();
        let gate_a = self.a_gate.forward(x).sigmoid();
        let log_a = super::at_least_f32(&gate_a) * self.a_param.softplus() * -C;
        let a = log_a.exp();
        let multiplier = sqrt_bound_derivative(&(-(log_a * 2.0).exp() + 1.0));
        let multiplier = match first {
            Some(first) => &multiplier * first.logical_not() + first.to_kind(multiplier.kind()),
            None => multiplier,
        };
        (a, super::at_least_f32(&(x * gate_x)) * multiplier)
    }
}

/// √x with its derivative capped at MAX_SQRT_GRADIENT, as recurrentgemma's
/// `SqrtBoundDerivative`: the backward is g / √max(4x, 1/MAX²).
fn sqrt_bound_derivative(x: &Tensor) -> Tensor {
    let slope = (x.detach() * 4.0).clamp_min(MAX_SQRT_GRADIENT.powi(-2)).rsqrt();
    x.detach().sqrt() + (x - x.detach()) * slope
}

impl Mixer for Hawk {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let y = self.linear_y.forward(xs).gelu("tanh");
        let x = self.conv(&self.linear_x.forward(xs));
        let len = x.size()[1];
        let first = Tensor::arange(len, (Kind::Int64, x.device())).eq(0).view([1, len, 1]);
        let (a, normalized) = self.gates(&x, Some(&first));
        let h = self.scan.linear(&a, &normalized).to_kind(x.kind());
        self.linear_out.forward(&(h * y))
    }

    /// State: the last conv_width − 1 inputs of the convolution and h (float32).
    fn step(&self, x: &Tensor, pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let y = self.linear_y.forward(x).gelu("tanh");
        let u = self.linear_x.forward(x); // (b, width)
        let (b, k) = (u.size()[0], self.conv_width);
        let previous = state.get::<HawkState>();
        let window = match previous {
            Some(s) => Tensor::cat(&[&s.window, &u.unsqueeze(1)], 1),
            None => {
                Tensor::cat(&[&u.zeros_like().unsqueeze(1).expand([b, k - 1, self.width], false), &u.unsqueeze(1)], 1)
            }
        }; // (b, k, width), oldest first
        let conv = (&window * &self.conv_w).sum_dim_intlist([1i64].as_slice(), false, None) + &self.conv_b;
        let first = (pos == 0).then(|| Tensor::from(true).to_device(x.device()));
        let (a, normalized) = self.gates(&conv, first.as_ref());
        let h = match previous {
            Some(s) => a * &s.h + normalized,
            None => normalized,
        };
        let out = self.linear_out.forward(&(h.to_kind(y.kind()) * y));
        state.set(HawkState { window: window.narrow(1, 1, k - 1), h });
        Some(out)
    }

    /// h and the convolution's window.
    fn state_size(&self, _seq_len: i64) -> f64 {
        (self.conv_width * self.width) as f64
    }

    /// Three projections (2·2·d·w + 2·w·d), the convolution (2·k·w), the two block-diagonal
    /// gates (2·2·w·w/heads) and the elementwise recurrence.
    fn flops_per_token(&self, _seq_len: i64) -> f64 {
        let (d, w, k) = (self.d_model as f64, self.width as f64, self.conv_width as f64);
        let bw = self.input_gate.w.size()[1] as f64;
        6.0 * d * w + 2.0 * k * w + 4.0 * w * bw + 12.0 * w
    }

    fn implementation(&self, device: tch::Device, _kind: Kind) -> String {
        format!(
            "hawk: RG-LRU scan by {}; temporal conv by {}",
            self.scan.describe(device),
            self.scan.describe_conv(device)
        )
    }
}

/// Hawk's recurrent state.
struct HawkState {
    window: Tensor,
    h: Tensor,
}

pub const INFO: ArchInfo = ArchInfo {
    name: "hawk",
    description: "Hawk (Griffin paper): RG-LRU recurrent blocks with temporal conv, gated GeLU MLP, Griffin init",
    resolve: super::resolve_typed::<HawkConfig>,
    build: super::build_arch::<HawkConfig>,
};
