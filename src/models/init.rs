//! Initialisation rules as the official PyTorch (and Flax) code applies them. tch's own defaults
//! differ: its `nn::linear` draws weights from Kaiming-uniform with the ReLU gain,
//! U(±√(6/fan_in)), √6 ≈ 2.45× wider than `torch.nn.Linear`, so every layer goes through here.
//! docs/models.md lists which rule each parameter gets and the file it comes from.
use tch::{nn, Kind, Tensor};

/// U(−1/√fan_in, 1/√fan_in): `torch.nn.Linear` and `nn.Conv1d` weights (kaiming_uniform_ with
/// a = √5) and biases.
pub fn uniform_fan_in(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

/// `torch.nn.Linear(inputs, outputs, bias)` with PyTorch's initialisation.
pub fn torch_linear(vs: &nn::Path, inputs: i64, outputs: i64, bias: bool) -> nn::Linear {
    let init = uniform_fan_in(inputs);
    nn::linear(vs, inputs, outputs, nn::LinearConfig { ws_init: init, bs_init: Some(init), bias })
}

/// A Linear with weight N(0, scale/fan_in) and a zero bias: recurrentgemma's layers
/// (`variance_scaling(scale, "fan_in", "normal")`, not truncated).
pub fn variance_scaled_linear(vs: &nn::Path, inputs: i64, outputs: i64, scale: f64, bias: bool) -> nn::Linear {
    let ws_init = nn::Init::Randn { mean: 0.0, stdev: (scale / inputs as f64).sqrt() };
    nn::linear(vs, inputs, outputs, nn::LinearConfig { ws_init, bs_init: Some(nn::Init::Const(0.0)), bias })
}

/// A bias-free Linear whose weight is `torch.nn.init.xavier_uniform_(w, gain)`:
/// U(±gain·√(6 / (fan_in + fan_out))) (torchscale's retention projections).
pub fn xavier_linear(vs: &nn::Path, inputs: i64, outputs: i64, gain: f64) -> nn::Linear {
    let bound = gain * (6.0 / (inputs + outputs) as f64).sqrt();
    let ws_init = nn::Init::Uniform { lo: -bound, up: bound };
    nn::linear(vs, inputs, outputs, nn::LinearConfig { ws_init, bs_init: None, bias: false })
}

/// Flax's `nn.Dense` default: kernel `lecun_normal()` (a normal truncated at ±2σ, rescaled so
/// the truncated draw has variance 1/fan_in), bias zero. The LRU authors' layers are Flax.
pub fn flax_dense(vs: &nn::Path, inputs: i64, outputs: i64) -> nn::Linear {
    let weight = truncated_normal(&[outputs, inputs], 1.0 / (inputs as f64).sqrt());
    let lin =
        nn::linear(vs, inputs, outputs, nn::LinearConfig { bs_init: Some(nn::Init::Const(0.0)), ..Default::default() });
    tch::no_grad(|| lin.ws.shallow_clone().copy_(&weight));
    lin
}

/// Normal draws truncated to ±2 standard deviations of the underlying normal, scaled so that the
/// result has standard deviation `std` (jax.nn.initializers.variance_scaling's
/// "truncated_normal": the underlying σ is std / 0.87962566103423978). Sampled by inverting the
/// CDF: no rejection loop.
pub fn truncated_normal(shape: &[i64], std: f64) -> Tensor {
    const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;
    let cdf = |x: f64| 0.5 * (1.0 + libm_erf(x / std::f64::consts::SQRT_2));
    let (lo, hi) = (cdf(-2.0), cdf(2.0));
    let u = Tensor::rand(shape, (Kind::Double, tch::Device::Cpu)) * (hi - lo) + lo;
    let z = (u * 2.0 - 1.0).erfinv() * std::f64::consts::SQRT_2;
    (z * (std / TRUNCATED_STD)).to_kind(Kind::Float)
}

/// erf for a scalar (std has none); libtorch's, on a one-element tensor.
fn libm_erf(x: f64) -> f64 {
    Tensor::from(x).erf().double_value(&[])
}

/// The bias of a Mamba-style Δ projection: softplus⁻¹(Δ) with Δ log-uniform in
/// [dt_min, dt_max], floored at 1e-4 (`dt_init_floor`), `n` values (state-spaces/mamba
/// `mamba_simple.py` and `mamba2.py`; fla's Gated DeltaNet copies it).
pub fn inverse_softplus_dt(n: i64, dt_min: f64, dt_max: f64) -> Tensor {
    let dt = super::s4d::log_uniform_log(&[n], dt_min, dt_max).exp().clamp_min(1e-4);
    &dt + (-(-&dt).expm1()).log()
}

/// Redraws `weight` as `torch.nn.Linear` would and divides it by `divisor`: the prenorm-residual
/// rescaling of GPT-2 that Mamba's `_init_weights` applies to `out_proj` and `fc2`
/// (state-spaces/mamba `models/mixer_seq_simple.py`).
pub fn rescale_redraw(weight: &Tensor, divisor: f64) {
    let fan_in = weight.size()[1];
    let bound = 1.0 / (fan_in as f64).sqrt();
    tch::no_grad(|| {
        let _ = weight.shallow_clone().uniform_(-bound, bound).g_div_scalar_(divisor);
    });
}

/// `torch.nn.init.orthogonal_(w, gain)` for a (rows × cols) weight: the Q of a QR decomposition
/// of a normal draw (of the transpose when rows < cols), its columns' signs fixed by R's
/// diagonal, times `gain`.
pub fn orthogonal(rows: i64, cols: i64, gain: f64) -> Tensor {
    let cpu = (Kind::Float, tch::Device::Cpu);
    let (tall, short) = (rows.max(cols), rows.min(cols));
    let (q, r) = Tensor::linalg_qr(&Tensor::randn([tall, short], cpu), "reduced");
    let q = q * r.diagonal(0, 0, 1).sign().unsqueeze(0);
    let q = if rows < cols { q.transpose(0, 1).contiguous() } else { q };
    q * gain
}
