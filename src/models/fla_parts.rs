//! Pieces the flash-linear-attention layers share (fla-org/flash-linear-attention): the short
//! causal convolution, the per-head (gated) output RMSNorm and GroupNorm, L2-normalised keys, the
//! RWKV layers' LoRA, and the models' initialisation (`_init_weights` in
//! `fla/models/*/modeling_*.py`: every Linear and Conv1d weight N(0, 0.02²), biases zero).
use super::fused;
use super::init::orthogonal;
use tch::{nn, nn::Module, Device, Tensor};

/// fla's `initializer_range`.
pub const INIT_STD: f64 = 0.02;

/// A Linear as fla's models initialise it: weight N(0, 0.02²), bias zero.
pub fn linear(vs: &nn::Path, inputs: i64, outputs: i64, bias: bool) -> nn::Linear {
    let cfg = nn::LinearConfig {
        ws_init: nn::Init::Randn { mean: 0.0, stdev: INIT_STD },
        bs_init: Some(nn::Init::Const(0.0)),
        bias,
    };
    nn::linear(vs, inputs, outputs, cfg)
}

/// x / √(Σx² + 1e-6) over the last dimension (fla's `l2norm`, used in the kernels).
pub fn l2norm(x: &Tensor) -> Tensor {
    x * (x.square().sum_dim_intlist([-1i64].as_slice(), true, None) + 1e-6).rsqrt()
}

/// fla's `ShortConvolution`: a depthwise causal Conv1d over time (kernel `width`, no bias), then
/// SiLU. Weight (D, 1, width), named `weight`; xLSTM's `CausalConv1d` (followed by its SiLU) is
/// the same with a bias.
pub struct ShortConv {
    weight: Tensor,
    bias: Option<Tensor>,
    width: i64,
    channels: i64,
}

impl ShortConv {
    pub fn new(vs: &nn::Path, channels: i64, width: i64) -> Self {
        let weight = vs.var("weight", &[channels, 1, width], nn::Init::Randn { mean: 0.0, stdev: INIT_STD });
        ShortConv { weight, bias: None, width, channels }
    }

    /// With a bias, weight and bias initialised as `torch.nn.Conv1d` does (U(±1/√width) for a
    /// depthwise kernel).
    pub fn with_bias(vs: &nn::Path, channels: i64, width: i64) -> Self {
        let init = super::init::uniform_fan_in(width);
        let weight = vs.var("weight", &[channels, 1, width], init);
        ShortConv { weight, bias: Some(vs.var("bias", &[channels], init)), width, channels }
    }

    /// (b, L, D) → (b, L, D).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        causal_conv_silu(x, &self.weight, self.bias.as_ref())
    }

    /// One step: x (b, D) and the previous `width − 1` inputs (b, D, width − 1), None before
    /// the first → (output (b, D), the new window).
    pub fn step(&self, x: &Tensor, window: Option<&Tensor>) -> (Tensor, Tensor) {
        let previous = window.map_or_else(
            || Tensor::zeros([x.size()[0], self.channels, self.width - 1], (x.kind(), x.device())),
            |w| w.shallow_clone(),
        );
        let full = Tensor::cat(&[&previous, &x.unsqueeze(-1)], -1); // (b, D, width)
        let y = (&full * self.weight.squeeze_dim(1)).sum_dim_intlist([-1i64].as_slice(), false, None);
        let y = match &self.bias {
            Some(bias) => y + bias,
            None => y,
        };
        (y.silu(), full.narrow(-1, 1, self.width - 1))
    }
}

/// silu(causal depthwise conv over time): x (b, L, D), weight (D, 1, width) as `nn.Conv1d`
/// holds it, bias (D) or none. On the CPU the fused C++ op (one pass over x, its own backward)
/// instead of conv1d on (b, D, L) with its transposes, the cut to L steps and a separate SiLU,
/// to which a sampling profile of Gated DeltaNet at L = 4,096 attributed about a third of a
/// training step. Other devices keep conv1d.
pub fn causal_conv_silu(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    let (channels, width) = (weight.size()[0], weight.size()[2]);
    if fused::AVAILABLE && x.device() == Device::Cpu {
        let zeros;
        let bias = match bias {
            Some(b) => b,
            None => {
                zeros = Tensor::zeros([channels], (x.kind(), x.device()));
                &zeros
            }
        };
        return fused::causal_conv(x, &weight.squeeze_dim(1), bias, true).to_kind(x.kind());
    }
    let len = x.size()[1];
    x.transpose(1, 2).conv1d(weight, bias, [1], [width - 1], [1], channels).narrow(-1, 0, len).transpose(1, 2).silu()
}

/// RMSNorm over each head's values with one weight of the head's width shared by all heads,
/// optionally gated by swish(g): fla's `RMSNorm(head_v_dim)` / `FusedRMSNormGated(head_v_dim)`.
pub struct HeadNorm {
    weight: Tensor,
    eps: f64,
}

impl HeadNorm {
    pub fn new(vs: &nn::Path, head_dim: i64, eps: f64) -> Self {
        HeadNorm { weight: vs.ones("weight", &[head_dim]), eps }
    }

    /// o (…, heads, d_v), gate (…, heads, d_v) or None.
    pub fn forward(&self, o: &Tensor, gate: Option<&Tensor>) -> Tensor {
        let mean_square = o.square().mean_dim([-1i64].as_slice(), true, None);
        let normed = o * (mean_square + self.eps).rsqrt() * &self.weight;
        match gate {
            Some(g) => normed * g.silu(),
            None => normed,
        }
    }
}

/// `nn.GroupNorm(heads, H)` on o (…, heads, d) laid out as (…, heads·d): each head normalised
/// by its own mean and (biased) variance, then the affine weight and bias (H each): RWKV-6's
/// and RWKV-7's output norm. → (…, heads·d).
pub fn per_head_group_norm(o: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Tensor {
    let dims = [-1i64];
    let centred = o - o.mean_dim(dims.as_slice(), true, None);
    let variance = centred.square().mean_dim(dims.as_slice(), true, None);
    (centred * (variance + eps).rsqrt()).flatten(-2, -1) * weight + bias
}

/// (b, L, heads·d) → (b, heads, L, d).
pub fn split_heads(x: &Tensor, heads: i64) -> Tensor {
    let (b, l, width) = x.size3().expect("(batch, seq, width)");
    x.view([b, l, heads, width / heads]).transpose(1, 2)
}

/// (b, heads, L, d) → (b, L, heads, d).
pub fn heads_last(x: &Tensor) -> Tensor {
    x.transpose(1, 2)
}

/// A Linear applied as fla's low-rank gate projections are (`nn.Sequential(Linear, Linear)`).
pub fn low_rank(first: &nn::Linear, second: &nn::Linear, x: &Tensor) -> Tensor {
    second.forward(&first.forward(x))
}

/// fla's `LoRA` (`fla/layers/rwkv6.py`, used by RWKV-6 and RWKV-7): Linear(in, rank, no bias), an
/// activation, Linear(rank, out, with a bias or not), under `lora.0` and `lora.2`.
pub struct Lora {
    down: nn::Linear,
    up: nn::Linear,
}

#[derive(Clone, Copy)]
pub enum Activation {
    None,
    Tanh,
    Sigmoid,
}

impl Lora {
    /// As fla's `LoRA.__init__` leaves it: the first matrix zero, the second orthogonal with gain
    /// 0.1 (× √(rank/out) when the rank is larger), the bias `bias` (or none).
    pub fn new(vs: &nn::Path, inputs: i64, outputs: i64, rank: i64, bias: Option<&Tensor>) -> Self {
        let lora = vs / "lora";
        let zero = nn::Init::Const(0.0);
        let down = nn::linear(&lora / 0, inputs, rank, nn::LinearConfig { ws_init: zero, bs_init: None, bias: false });
        let up = nn::linear(
            &lora / 2,
            rank,
            outputs,
            nn::LinearConfig { ws_init: zero, bs_init: Some(zero), bias: bias.is_some() },
        );
        let gain = 0.1 * if rank > outputs { (rank as f64 / outputs as f64).sqrt() } else { 1.0 };
        tch::no_grad(|| {
            up.ws.shallow_clone().copy_(&orthogonal(outputs, rank, gain));
            if let (Some(b), Some(init)) = (&up.bs, bias) {
                b.shallow_clone().copy_(init);
            }
        });
        Lora { down, up }
    }

    pub fn forward(&self, x: &Tensor, activation: Activation) -> Tensor {
        let hidden = self.down.forward(x);
        let hidden = match activation {
            Activation::None => hidden,
            Activation::Tanh => hidden.tanh(),
            Activation::Sigmoid => hidden.sigmoid(),
        };
        self.up.forward(&hidden)
    }
}
