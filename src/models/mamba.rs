//! Mamba (Gu & Dao 2023): a selective state-space block with input-dependent Δ, B and C; see
//! docs/models.md for the equations. The selective scan is the fused op of fused.rs
//! (`scan: fused`), or libtorch ops materialising the (batch, L, E, N) states (`scan: reference`).
use super::backbone::{BackboneConfig, BackboneInit, Norm};
use super::fused::{self, Form, Selective};
use super::init::{inverse_softplus_dt, rescale_redraw, torch_linear, uniform_fan_in};
use super::s4d::validate_dt_range;
use super::scan::{self, ScanImpl};
use super::{ArchConfig, ArchInfo, Mixer, MixerState, ParamRule, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MambaConfig {
    pub d_model: i64,
    pub n_layers: i64,
    /// Mamba blocks have no MLP in the paper (ratio 0); the shared backbone allows one.
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// State size N per inner channel.
    pub d_state: i64,
    /// Inner width E as a multiple of d_model.
    pub expand: i64,
    /// Width of the causal depthwise convolution.
    pub d_conv: i64,
    /// Rank of the Δ projection; 0 means ⌈d_model / 16⌉.
    pub dt_rank: i64,
    pub dt_min: f64,
    pub dt_max: f64,
    /// The backbone's norms: RMSNorm as Mamba's language model (`rms_norm=True`), or LayerNorm.
    pub norm: Norm,
    /// The selective scan: `fused` (the C++ op) or `reference` (libtorch ops).
    pub scan: ScanImpl,
}

impl Default for MambaConfig {
    fn default() -> Self {
        MambaConfig {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 0,
            dropout: 0.0,
            d_state: 16,
            expand: 2,
            d_conv: 4,
            dt_rank: 0,
            dt_min: 0.001,
            dt_max: 0.1,
            norm: Norm::Rms,
            scan: ScanImpl::Fused,
        }
    }
}

impl MambaConfig {
    fn rank(&self) -> i64 {
        if self.dt_rank > 0 {
            self.dt_rank
        } else {
            (self.d_model + 15) / 16
        }
    }
}

impl Validate for MambaConfig {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        for (key, value) in [("d_state", self.d_state), ("expand", self.expand), ("d_conv", self.d_conv)] {
            if value < 1 {
                return Err((key, format!("must be at least 1, got {value}")));
            }
        }
        if self.dt_rank < 0 {
            return Err(("dt_rank", format!("must be ≥ 0 (0 = auto), got {}", self.dt_rank)));
        }
        validate_dt_range(self.dt_min, self.dt_max)
    }
}

impl ArchConfig for MambaConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig {
            norm: self.norm,
            init: BackboneInit::MambaLm,
            ..BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
        }
    }

    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Mamba::new(vs, self))
    }
}

pub struct Mamba {
    in_proj: nn::Linear,
    conv_weight: Tensor,
    conv_bias: Tensor,
    x_proj: nn::Linear,
    dt_proj: nn::Linear,
    a_log: Tensor,
    d_skip: Tensor,
    out_proj: nn::Linear,
    d_model: i64,
    inner: i64,
    d_state: i64,
    rank: i64,
    d_conv: i64,
    scan: ScanImpl,
}

impl Mamba {
    pub fn new(vs: &nn::Path, cfg: &MambaConfig) -> Self {
        let (h, e, n, r) = (cfg.d_model, cfg.expand * cfg.d_model, cfg.d_state, cfg.rank());
        let cpu = (Kind::Float, tch::Device::Cpu);
        // Δ starts log-uniform in [dt_min, dt_max]: the bias is softplus⁻¹(Δ) = Δ + log(1 − e^−Δ).
        let dt_bias = inverse_softplus_dt(e, cfg.dt_min, cfg.dt_max);
        // dt_proj's weight is U(±dt_rank^−½) (dt_init "random", dt_scale 1): torch's fan-in rule.
        let dt_proj = torch_linear(&(vs / "dt_proj"), r, e, true);
        tch::no_grad(|| dt_proj.bs.as_ref().expect("dt_proj has a bias").shallow_clone().copy_(&dt_bias));
        let a_log = Tensor::arange_start(1, n + 1, cpu).log().unsqueeze(0).repeat([e, 1]);
        // The language model's _init_weights redraws out_proj and divides it by √n_layer.
        let out_proj = torch_linear(&(vs / "out_proj"), e, h, false);
        rescale_redraw(&out_proj.ws, (cfg.n_layers as f64).sqrt());
        Mamba {
            in_proj: torch_linear(&(vs / "in_proj"), h, 2 * e, false),
            // The depthwise nn.Conv1d keeps PyTorch's init: fan_in = 1 · d_conv.
            conv_weight: vs.var("conv_weight", &[e, 1, cfg.d_conv], uniform_fan_in(cfg.d_conv)),
            conv_bias: vs.var("conv_bias", &[e], uniform_fan_in(cfg.d_conv)),
            x_proj: torch_linear(&(vs / "x_proj"), e, r + 2 * n, false),
            dt_proj,
            a_log: vs.var_copy("a_log", &a_log),
            d_skip: vs.ones("d_skip", &[e]),
            out_proj,
            d_model: h,
            inner: e,
            d_state: n,
            rank: r,
            d_conv: cfg.d_conv,
            scan: cfg.scan,
        }
    }

    /// From the convolved, activated x (..., E): Δ (..., E), B and C (..., N).
    fn selection(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let parts = self.x_proj.forward(x).split_with_sizes([self.rank, self.d_state, self.d_state], -1);
        (self.dt_proj.forward(&parts[0]).softplus(), parts[1].shallow_clone(), parts[2].shallow_clone())
    }

    /// Decay exp(Δ·A) and input Δ·B·x, each (..., E, N).
    fn discretize(&self, x: &Tensor, delta: &Tensor, b: &Tensor) -> (Tensor, Tensor) {
        let a = -self.a_log.exp();
        let delta = delta.unsqueeze(-1);
        ((&delta * a).exp(), delta * b.unsqueeze(-2) * x.unsqueeze(-1))
    }

    /// C·h from the states h (..., E, N): (..., E).
    fn readout(h: &Tensor, c: &Tensor) -> Tensor {
        (h * c.unsqueeze(-2)).sum_dim_intlist([-1i64].as_slice(), false, None)
    }

    /// y = C·h + D·x, gated by silu(z), projected back: (..., E) → (..., H).
    fn output(&self, ch: &Tensor, x: &Tensor, z: &Tensor) -> Tensor {
        let y = ch + x * &self.d_skip;
        self.out_proj.forward(&(y * z.silu()))
    }
}

impl Mixer for Mamba {
    /// The official CUDA kernel (selective_scan_cuda) is not linked in: the scan is seqbench's.
    fn implementation(&self, device: tch::Device, _kind: tch::Kind) -> String {
        format!(
            "mamba: selective scan by {}; causal conv by {}",
            self.scan.describe(device),
            self.scan.describe_conv(device)
        )
    }

    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let len = xs.size()[1];
        // in_proj's two halves as two matmuls: contiguous x and z, where chunking one product
        // would leave strided views that the conv and the scan copy.
        let half = |i: i64| xs.matmul(&self.in_proj.ws.narrow(0, i * self.inner, self.inner).tr());
        let (x, z) = (half(0), half(1));
        let z = &z;
        let x = if self.scan.fused_conv(x.device()) {
            fused::causal_conv(&x, &self.conv_weight.squeeze_dim(1), &self.conv_bias, true).to_kind(x.kind())
        } else {
            x.transpose(1, 2)
                .conv1d(&self.conv_weight, Some(&self.conv_bias), [1], [self.d_conv - 1], [1], self.inner)
                .narrow(-1, 0, len)
                .transpose(1, 2)
                .contiguous() // once, for x_proj's matmul and the scan alike
                .silu()
        };
        let (delta, b, c) = self.selection(&x);
        if self.scan.fused() {
            let a = -self.a_log.exp();
            let scan = Selective { x: &x, delta: &delta, a: &a, b: &b, c: &c, d: &self.d_skip, z: Some(z) };
            return self.out_proj.forward(&scan.run(Form::Native).to_kind(x.kind()));
        }
        // The reference: libtorch ops through the (b, L, E, N) states.
        let (decay, input) = self.discretize(&x, &delta, &b);
        self.output(&Self::readout(&scan::linear_scan(&decay, &input), &c), &x, z)
    }

    /// State: [the last d_conv − 1 inputs of the convolution (b, E, d_conv − 1), h (b, E, N)].
    fn step(&self, u: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let batch = u.size()[0];
        let xz = self.in_proj.forward(u).chunk(2, -1);
        let (x, z) = (&xz[0], &xz[1]);
        let (conv_buf, h) = match state.get::<MambaState>() {
            Some(prev) => (prev.conv_window.shallow_clone(), prev.ssm.shallow_clone()),
            None => (
                Tensor::zeros([batch, self.inner, self.d_conv - 1], (u.kind(), u.device())),
                Tensor::zeros([batch, self.inner, self.d_state], (u.kind(), u.device())),
            ),
        };
        let window = Tensor::cat(&[&conv_buf, &x.unsqueeze(-1)], -1); // (b, E, d_conv)
        let x = ((&window * self.conv_weight.squeeze_dim(1)).sum_dim_intlist([-1i64].as_slice(), false, None)
            + &self.conv_bias)
            .silu();
        let (delta, b, c) = self.selection(&x);
        let (decay, input) = self.discretize(&x, &delta, &b);
        let h = decay * h + input;
        let y = self.output(&Self::readout(&h, &c), &x, z);
        state.set(MambaState { conv_window: window.narrow(-1, 1, self.d_conv - 1), ssm: h });
        Some(y)
    }

    /// The E × N state and the conv's last d_conv − 1 inputs.
    fn state_size(&self, _seq_len: i64) -> f64 {
        (self.inner * self.d_state + self.inner * (self.d_conv - 1)) as f64
    }

    /// in_proj 2H·2E, conv 2E·d_conv, x_proj 2E(R + 2N), dt_proj 2R·E, out_proj 2E·H, and the
    /// scan's discretisation, recurrence and readout ≈ 6E·N.
    fn flops_per_token(&self, _seq_len: i64) -> f64 {
        let (h, e, n, r, k) =
            (self.d_model as f64, self.inner as f64, self.d_state as f64, self.rank as f64, self.d_conv as f64);
        4.0 * h * e + 2.0 * e * k + 2.0 * e * (r + 2.0 * n) + 2.0 * r * e + 2.0 * e * h + 6.0 * e * n
    }

    /// `_no_weight_decay` on A_log and D in state-spaces/mamba `mamba_simple.py`.
    fn param_rules(&self) -> Vec<(&'static str, ParamRule)> {
        vec![("a_log", ParamRule::NoDecay), ("d_skip", ParamRule::NoDecay)]
    }
}

/// Mamba's recurrent state: the last d_conv − 1 inputs of the causal convolution
/// (batch, E, d_conv − 1) and the selective scan's state (batch, E, N).
struct MambaState {
    conv_window: Tensor,
    ssm: Tensor,
}

pub const INFO: ArchInfo = ArchInfo {
    name: "mamba",
    description: "Mamba selective SSM block (input-dependent Δ, B, C; causal conv; SiLU gate), fused selective scan",
    resolve: super::resolve_typed::<MambaConfig>,
    build: super::build_arch::<MambaConfig>,
};
