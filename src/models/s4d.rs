//! S4D: a diagonal state-space layer (Gu et al. 2022) with zero-order-hold discretisation and a
//! learnable step, applied as a long convolution by FFT; see docs/models.md for the equations.
use super::backbone::BackboneConfig;
use super::init::torch_linear;
use super::{ArchConfig, ArchInfo, Mixer, MixerState, ParamRule, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S4dConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// State size N per channel (N/2 complex-conjugate modes).
    pub d_state: i64,
    /// Imaginary parts of A at init: S4D-Lin (π·n) or S4D-Inv.
    pub init: S4dInit,
    /// Range of the log-uniform initial step Δ.
    pub dt_min: f64,
    pub dt_max: f64,
    /// A second kernel looking at the future (non-causal tasks only).
    pub bidirectional: bool,
    /// Learning-rate cap of the SSM parameters (Δ and A), which also get no weight decay: they
    /// train at min(ssm_lr, lr), as state-spaces/s4 `example.py` builds its S4D layers
    /// (`lr=min(0.001, args.lr)`).
    pub ssm_lr: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum S4dInit {
    Lin,
    Inv,
}

impl Default for S4dConfig {
    fn default() -> Self {
        S4dConfig {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 2,
            dropout: 0.0,
            d_state: 64,
            init: S4dInit::Lin,
            dt_min: 0.001,
            dt_max: 0.1,
            bidirectional: false,
            ssm_lr: 0.001,
        }
    }
}

impl Validate for S4dConfig {
    fn validate(&self, io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.d_state < 2 || self.d_state % 2 != 0 {
            return Err(("d_state", format!("must be an even number ≥ 2, got {}", self.d_state)));
        }
        validate_dt_range(self.dt_min, self.dt_max)?;
        if !(self.ssm_lr > 0.0 && self.ssm_lr.is_finite()) {
            return Err(("ssm_lr", format!("must be a positive learning rate, got {}", self.ssm_lr)));
        }
        if self.bidirectional && io.causal {
            return Err(("bidirectional", "this task is causal: a bidirectional kernel would see the answers".into()));
        }
        Ok(())
    }
}

/// Shared by the SSMs with a learnable step: 0 < dt_min ≤ dt_max.
pub fn validate_dt_range(dt_min: f64, dt_max: f64) -> Result<(), (&'static str, String)> {
    if dt_min.is_nan() || dt_min <= 0.0 {
        return Err(("dt_min", format!("must be > 0, got {dt_min}")));
    }
    if dt_max.is_nan() || dt_max < dt_min {
        return Err(("dt_max", format!("must be ≥ dt_min = {dt_min}, got {dt_max}")));
    }
    Ok(())
}

/// Log-uniform samples in [lo, hi] of the given shape, in log space.
pub fn log_uniform_log(shape: &[i64], lo: f64, hi: f64) -> Tensor {
    Tensor::rand(shape, (Kind::Float, tch::Device::Cpu)) * (hi.ln() - lo.ln()) + lo.ln()
}

impl ArchConfig for S4dConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
    }

    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(S4d::new(vs, self))
    }
}

pub struct S4d {
    log_dt: Tensor,
    a_log_re: Tensor,
    a_im: Tensor,
    c_re: Tensor,
    c_im: Tensor,
    d_skip: Tensor,
    out: nn::Linear,
    d_model: i64,
    modes: i64,
    bidirectional: bool,
    ssm_lr: f64,
}

impl S4d {
    pub fn new(vs: &nn::Path, cfg: &S4dConfig) -> Self {
        let (h, p) = (cfg.d_model, cfg.d_state / 2);
        let channels = if cfg.bidirectional { 2 } else { 1 };
        let n = Tensor::arange(p, (Kind::Float, tch::Device::Cpu));
        let a_im = match cfg.init {
            S4dInit::Lin => n * PI,
            S4dInit::Inv => {
                let big_n = cfg.d_state as f64;
                ((n * 2.0 + 1.0).reciprocal() * big_n - 1.0) * (big_n / PI)
            }
        };
        let c_std = 0.5f64.sqrt();
        S4d {
            log_dt: vs.var_copy("log_dt", &log_uniform_log(&[h], cfg.dt_min, cfg.dt_max)),
            a_log_re: vs.var_copy("a_log_re", &Tensor::full([h, p], 0.5f64.ln(), (Kind::Float, tch::Device::Cpu))),
            a_im: vs.var_copy("a_im", &a_im.unsqueeze(0).repeat([h, 1])),
            c_re: vs.randn("c_re", &[channels, h, p], 0.0, c_std),
            c_im: vs.randn("c_im", &[channels, h, p], 0.0, c_std),
            d_skip: vs.randn("d_skip", &[h], 0.0, 1.0),
            // output_linear is nn.Conv1d(H, 2H, kernel_size=1): PyTorch's default init.
            out: torch_linear(&(vs / "out"), h, 2 * h, true),
            d_model: h,
            modes: p,
            bidirectional: cfg.bidirectional,
            ssm_lr: cfg.ssm_lr,
        }
    }

    /// (Δ·A, B̄) of the zero-order-hold discretisation (Ā = exp(Δ·A)), each complex (H, P).
    fn discretize(&self) -> (Tensor, Tensor) {
        let a = Tensor::complex(&(-self.a_log_re.exp()), &self.a_im);
        let dt_a = &a * self.log_dt.exp().unsqueeze(1);
        let b_bar = (dt_a.exp() - 1.0) / a;
        (dt_a, b_bar)
    }

    fn c(&self) -> Tensor {
        Tensor::complex(&self.c_re, &self.c_im)
    }

    /// K[c, h, j] = 2·Re(Σₙ C B̄ Āʲ), j < len: (channels, H, len).
    fn kernel(&self, len: i64) -> Tensor {
        let (dt_a, b_bar) = self.discretize();
        let j = Tensor::arange(len, (Kind::Float, dt_a.device()));
        let powers = (dt_a.unsqueeze(-1) * j).exp(); // Āʲ: (H, P, len)
        let cb = self.c() * b_bar; // (channels, H, P)
        (cb.unsqueeze(-1) * powers.unsqueeze(0)).sum_dim_intlist([-2i64].as_slice(), false, None).real() * 2.0
    }

    /// gelu → out → GLU, shared by both forms. y: (..., H).
    fn output(&self, y: &Tensor) -> Tensor {
        self.out.forward(&y.gelu("none")).glu(-1)
    }
}

impl Mixer for S4d {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let len = xs.size()[1];
        let u = xs.transpose(1, 2); // (b, H, L)
        let k = self.kernel(len);
        // Causal kernel in [0, L); the backward kernel, reversed, in [L, 2L) so that the circular
        // convolution of length 2L puts it on the future positions.
        let k_full = if self.bidirectional { Tensor::cat(&[k.get(0), k.get(1).flip([-1])], -1) } else { k.get(0) };
        let n = 2 * len;
        let spectrum = u.fft_rfft(n, -1, "backward") * k_full.fft_rfft(n, -1, "backward");
        let y = spectrum.fft_irfft(n, -1, "backward").narrow(-1, 0, len) + &u * self.d_skip.unsqueeze(-1);
        self.output(&y.transpose(1, 2))
    }

    /// State: [s] complex (b, H, P).
    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        if self.bidirectional {
            return None;
        }
        let (dt_a, b_bar) = self.discretize();
        let u = x.unsqueeze(-1); // (b, H, 1)
        let s = match state.get::<S4dState>() {
            Some(prev) => dt_a.exp() * &prev.s + b_bar * &u,
            None => b_bar * &u,
        };
        let y = (self.c().get(0) * &s).sum_dim_intlist([-1i64].as_slice(), false, None).real() * 2.0 + x * &self.d_skip;
        state.set(S4dState { s });
        Some(self.output(&y))
    }

    /// A complex state per channel and mode.
    fn state_size(&self, _seq_len: i64) -> f64 {
        (2 * self.d_model * self.modes) as f64
    }

    /// FFT convolution of length 2L (three real FFTs ≈ 2.5·2L·log2(2L) each, and the spectrum
    /// product), amortised per token, per channel; the kernel's complex products (8·P per
    /// channel per kernel, amortised over L tokens generated at once); `out` 4H².
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let (h, p, l) = (self.d_model as f64, self.modes as f64, seq_len.max(1) as f64);
        let channels = if self.bidirectional { 2.0 } else { 1.0 };
        let fft = (3.0 * 2.5 * 2.0 * l * (2.0 * l).log2() + 6.0 * (l + 1.0)) / l;
        h * fft + 8.0 * channels * h * p + 4.0 * h * h
    }

    fn param_rules(&self) -> Vec<(&'static str, ParamRule)> {
        let rule = ParamRule::NoDecayLrAtMost(self.ssm_lr);
        vec![("log_dt", rule), ("a_log_re", rule), ("a_im", rule)]
    }
}

/// S4D's recurrent state: the complex diagonal state (batch, H, N/2).
struct S4dState {
    s: Tensor,
}

pub const INFO: ArchInfo = ArchInfo {
    name: "s4d",
    description: "S4D diagonal state-space model (ZOH, learnable step, Lin/Inv init), FFT convolution",
    resolve: super::resolve_typed::<S4dConfig>,
    build: super::build_arch::<S4dConfig>,
};
