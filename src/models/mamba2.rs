//! Mamba-2 (Dao & Gu 2024, "Transformers are SSMs"), as state-spaces/mamba
//! `mamba_ssm/modules/mamba2.py` builds it (ngroups 1): one in_proj to [z, x, B, C, dt], a causal
//! depthwise conv with SiLU over [x, B, C], Δ = softplus(dt + dt_bias), the SSD recurrence with a
//! scalar decay per head (log α = Δ·A, A = −exp(A_log)) on the chunkwise engine with q = C,
//! k = B, v = Δ·x, the skip D·x, then the gated RMSNorm (y ⊙ silu(z), normalised over d_inner)
//! and out_proj. See docs/models.md.
use super::backbone::{BackboneConfig, BackboneInit, Norm};
use super::fla_parts::causal_conv_silu;
use super::init::{inverse_softplus_dt, rescale_redraw, torch_linear, uniform_fan_in};
use super::linear_attention::{self as engine, Decay, Inputs};
use super::s4d::validate_dt_range;
use super::{ArchConfig, ArchInfo, Mixer, MixerState, ParamRule, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mamba2Config {
    pub d_model: i64,
    pub n_layers: i64,
    /// No MLP in Mamba-2's language model (d_intermediate 0); the shared backbone allows one.
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// State size N (Mamba2: 128).
    pub d_state: i64,
    /// Inner width as a multiple of d_model (2).
    pub expand: i64,
    /// Channels per head P (64); heads = expand·d_model / headdim.
    pub headdim: i64,
    pub d_conv: i64,
    /// A starts uniform in [a_init_min, a_init_max] (1, 16).
    pub a_init_min: f64,
    pub a_init_max: f64,
    pub dt_min: f64,
    pub dt_max: f64,
    /// Positions per chunk of the chunkwise form.
    pub chunk: i64,
    pub norm: Norm,
}

impl Default for Mamba2Config {
    fn default() -> Self {
        Mamba2Config {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 0,
            dropout: 0.0,
            d_state: 128,
            expand: 2,
            headdim: 64,
            d_conv: 4,
            a_init_min: 1.0,
            a_init_max: 16.0,
            dt_min: 0.001,
            dt_max: 0.1,
            chunk: 64,
            norm: Norm::Rms,
        }
    }
}

impl Mamba2Config {
    fn inner(&self) -> i64 {
        self.expand * self.d_model
    }
}

impl Validate for Mamba2Config {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        for (key, value) in
            [("d_state", self.d_state), ("expand", self.expand), ("d_conv", self.d_conv), ("chunk", self.chunk)]
        {
            if value < 1 {
                return Err((key, format!("must be at least 1, got {value}")));
            }
        }
        if self.headdim < 1 || self.inner() % self.headdim != 0 {
            return Err((
                "headdim",
                format!("must divide the inner width expand × d_model = {}, got {}", self.inner(), self.headdim),
            ));
        }
        if !(self.a_init_min > 0.0 && self.a_init_min <= self.a_init_max) {
            return Err((
                "a_init_min",
                format!("need 0 < a_init_min ≤ a_init_max, got {} and {}", self.a_init_min, self.a_init_max),
            ));
        }
        validate_dt_range(self.dt_min, self.dt_max)
    }
}

impl ArchConfig for Mamba2Config {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig {
            norm: self.norm,
            init: BackboneInit::MambaLm,
            ..BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
        }
    }

    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Mamba2::new(vs, self))
    }
}

pub struct Mamba2 {
    in_proj: nn::Linear,
    conv_weight: Tensor,
    conv_bias: Tensor,
    dt_bias: Tensor,
    a_log: Tensor,
    d_skip: Tensor,
    norm_weight: Tensor,
    out_proj: nn::Linear,
    cfg: Mamba2Config,
}

/// Mamba-2's recurrent state: the conv window (b, conv_dim, d_conv − 1) and the SSD state per
/// head (b, heads, N, P).
struct Mamba2State {
    window: Tensor,
    s: Tensor,
}

/// ε of the gated RMSNorm (`RMSNormGated(..., eps=1e-5)`).
const NORM_EPS: f64 = 1e-5;

impl Mamba2 {
    pub fn new(vs: &nn::Path, cfg: &Mamba2Config) -> Self {
        let (d, e, n) = (cfg.d_model, cfg.inner(), cfg.d_state);
        let heads = e / cfg.headdim;
        let conv_dim = e + 2 * n;
        let cpu = (Kind::Float, tch::Device::Cpu);
        let dt_bias = inverse_softplus_dt(heads, cfg.dt_min, cfg.dt_max);
        let a = Tensor::rand([heads], cpu) * (cfg.a_init_max - cfg.a_init_min) + cfg.a_init_min;
        // The language model's _init_weights redraws out_proj and divides it by √n_layer.
        let out_proj = torch_linear(&(vs / "out_proj"), e, d, false);
        rescale_redraw(&out_proj.ws, (cfg.n_layers as f64).sqrt());
        Mamba2 {
            in_proj: torch_linear(&(vs / "in_proj"), d, 2 * e + 2 * n + heads, false),
            // nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim): PyTorch's init, fan_in d_conv.
            conv_weight: vs.var("conv_weight", &[conv_dim, 1, cfg.d_conv], uniform_fan_in(cfg.d_conv)),
            conv_bias: vs.var("conv_bias", &[conv_dim], uniform_fan_in(cfg.d_conv)),
            dt_bias: vs.var_copy("dt_bias", &dt_bias),
            a_log: vs.var_copy("a_log", &a.log()),
            d_skip: vs.ones("d_skip", &[heads]),
            norm_weight: vs.ones("norm_weight", &[e]),
            out_proj,
            cfg: cfg.clone(),
        }
    }

    fn heads(&self) -> i64 {
        self.cfg.inner() / self.cfg.headdim
    }

    /// in_proj's output (…, ·) → z (…, E), xBC (…, E + 2N), dt (…, heads).
    fn split(&self, zxbcdt: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (e, n) = (self.cfg.inner(), self.cfg.d_state);
        let parts = zxbcdt.split_with_sizes([e, e + 2 * n, self.heads()], -1);
        (parts[0].shallow_clone(), parts[1].shallow_clone(), parts[2].shallow_clone())
    }

    /// Δ = softplus(dt + dt_bias) and log α = Δ·A, each (…, heads).
    fn delta_and_decay(&self, dt: &Tensor) -> (Tensor, Tensor) {
        let delta = (dt + &self.dt_bias).softplus();
        let log_alpha = &delta * -self.a_log.exp();
        (delta, log_alpha)
    }

    /// y (…, E) and z (…, E) → out_proj(RMSNorm(y ⊙ silu(z)) · weight).
    fn output(&self, y: &Tensor, z: &Tensor) -> Tensor {
        let gated = y * z.silu();
        let mean_square = gated.square().mean_dim([-1i64].as_slice(), true, None);
        self.out_proj.forward(&(gated * (mean_square + NORM_EPS).rsqrt() * &self.norm_weight))
    }
}

impl Mixer for Mamba2 {
    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        format!("mamba2: SSD {}", engine::describe(self.cfg.chunk))
    }

    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (b, len, _) = xs.size3().expect("(batch, seq, d_model)");
        let (e, n, p, h) = (self.cfg.inner(), self.cfg.d_state, self.cfg.headdim, self.heads());
        let (z, xbc, dt) = self.split(&self.in_proj.forward(xs));
        let xbc = causal_conv_silu(&xbc, &self.conv_weight, Some(&self.conv_bias));
        let parts = xbc.split_with_sizes([e, n, n], -1);
        let (x, big_b, big_c) = (&parts[0], &parts[1], &parts[2]);
        let (delta, log_alpha) = self.delta_and_decay(&dt); // (b, L, heads)
        let x_heads = x.view([b, len, h, p]).transpose(1, 2); // (b, heads, L, P)
        let shared = |t: &Tensor| t.unsqueeze(1).expand([b, h, len, n], false); // one group
        let inputs = Inputs {
            q: shared(big_c),
            k: shared(big_b),
            v: &x_heads * delta.transpose(1, 2).unsqueeze(-1),
            decay: Decay::Scalar(log_alpha.transpose(1, 2)),
            beta: None,
        };
        let (y, _) = engine::chunkwise(&inputs, self.cfg.chunk, None);
        let y = y + x_heads * self.d_skip.view([1, h, 1, 1]);
        self.output(&y.transpose(1, 2).reshape([b, len, e]), &z)
    }

    fn step(&self, u: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let batch = u.size()[0];
        let (e, n, p, h) = (self.cfg.inner(), self.cfg.d_state, self.cfg.headdim, self.heads());
        let (z, xbc, dt) = self.split(&self.in_proj.forward(u));
        let prev = state.get::<Mamba2State>();
        let window = prev.map_or_else(
            || Tensor::zeros([batch, e + 2 * n, self.cfg.d_conv - 1], (u.kind(), u.device())),
            |s| s.window.shallow_clone(),
        );
        let full = Tensor::cat(&[&window, &xbc.unsqueeze(-1)], -1);
        let xbc = ((&full * self.conv_weight.squeeze_dim(1)).sum_dim_intlist([-1i64].as_slice(), false, None)
            + &self.conv_bias)
            .silu();
        let parts = xbc.split_with_sizes([e, n, n], -1);
        let (x, big_b, big_c) = (parts[0].view([batch, h, p]), &parts[1], &parts[2]);
        let (delta, log_alpha) = self.delta_and_decay(&dt); // (b, heads)
        let s = prev.map_or_else(|| Tensor::zeros([batch, h, n, p], (u.kind(), u.device())), |st| st.s.shallow_clone());
        let shared = |t: &Tensor| t.unsqueeze(1).expand([batch, h, n], false);
        let (y, s) = engine::step(
            &shared(big_c),
            &shared(big_b),
            &(&x * delta.unsqueeze(-1)),
            Some(&log_alpha.unsqueeze(-1)),
            None,
            &s,
        );
        let y = (y + x * self.d_skip.view([1, h, 1])).view([batch, e]);
        let out = self.output(&y, &z);
        state.set(Mamba2State { window: full.narrow(-1, 1, self.cfg.d_conv - 1), s });
        Some(out)
    }

    /// The N × P state per head (N·E in all) and the conv window over [x, B, C].
    fn state_size(&self, _seq_len: i64) -> f64 {
        let (e, n) = (self.cfg.expand * self.cfg.d_model, self.cfg.d_state);
        (e * n + (e + 2 * n) * (self.cfg.d_conv - 1)) as f64
    }

    /// in_proj 2H(2E + 2N + heads), conv 2(E + 2N)·d_conv, out_proj 2E·H; the SSD inside a chunk
    /// of c: (2N + 2E)(c + 1)/2 (scores against B and values), across chunks 4N·E (read and
    /// update the state).
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        let (d, e, n) = (self.cfg.d_model as f64, self.cfg.inner() as f64, self.cfg.d_state as f64);
        let (heads, k) = (self.heads() as f64, self.cfg.d_conv as f64);
        let c = self.cfg.chunk.min(seq_len.max(1)) as f64;
        let projections = 2.0 * d * (2.0 * e + 2.0 * n + heads) + 2.0 * e * d;
        projections + 2.0 * (e + 2.0 * n) * k + (2.0 * n * heads + 2.0 * e) * (c + 1.0) / 2.0 + 4.0 * n * e
    }

    /// `_no_weight_decay` on A_log, D and dt_bias in mamba2.py.
    fn param_rules(&self) -> Vec<(&'static str, ParamRule)> {
        vec![("a_log", ParamRule::NoDecay), ("d_skip", ParamRule::NoDecay), ("dt_bias", ParamRule::NoDecay)]
    }
}

pub const INFO: ArchInfo = ArchInfo {
    name: "mamba2",
    description: "Mamba-2 (SSD): scalar decay per head, shared B/C, conv, gated RMSNorm; chunkwise engine",
    resolve: super::resolve_typed::<Mamba2Config>,
    build: super::build_arch::<Mamba2Config>,
};
