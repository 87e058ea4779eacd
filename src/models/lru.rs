//! LRU, the Linear Recurrent Unit (Orvieto et al. 2023): a diagonal complex recurrence with an
//! exponential parameterisation of the eigenvalues, ring initialisation and γ normalisation;
//! see docs/models.md for the equations.
use super::backbone::BackboneConfig;
use super::init::flax_dense;
use super::scan::ScanImpl;
use super::{ArchConfig, ArchInfo, Mixer, MixerState, ParamRule, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LruConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Complex state size N; 0 means d_model.
    pub d_state: i64,
    /// Eigenvalue magnitudes start uniform on the ring r_min ≤ |λ| ≤ r_max.
    pub r_min: f64,
    pub r_max: f64,
    /// Eigenvalue phases start uniform in [0, max_phase].
    pub max_phase: f64,
    /// The official sequence layer's output: GELU, then a GLU (two Dense(H) layers,
    /// out1(x)·σ(out2(x))) after the recurrence (minimal-LRU `SequenceLayer`). `false` sends
    /// the recurrence's output straight to the residual (seqbench before this option).
    pub glu: bool,
    /// Learning-rate factor of ν, θ, γ and B, which also get no weight decay (`lr_factor` in
    /// minimal-LRU: 0.5).
    pub ssm_lr_factor: f64,
    /// The recurrence's scan: `fused` (the C++ op) or `reference` (libtorch ops).
    pub scan: ScanImpl,
}

impl Default for LruConfig {
    fn default() -> Self {
        LruConfig {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 2,
            dropout: 0.0,
            d_state: 0,
            r_min: 0.9,
            r_max: 0.999,
            max_phase: std::f64::consts::TAU,
            glu: true,
            ssm_lr_factor: 0.5,
            scan: ScanImpl::Fused,
        }
    }
}

impl LruConfig {
    fn state_size(&self) -> i64 {
        if self.d_state > 0 {
            self.d_state
        } else {
            self.d_model
        }
    }
}

impl Validate for LruConfig {
    fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.d_state < 0 {
            return Err(("d_state", format!("must be ≥ 0 (0 = d_model), got {}", self.d_state)));
        }
        if !(0.0..1.0).contains(&self.r_min) {
            return Err(("r_min", format!("must be in [0, 1), got {}", self.r_min)));
        }
        if !(self.r_min..1.0).contains(&self.r_max) {
            return Err(("r_max", format!("must be in [r_min, 1) = [{}, 1), got {}", self.r_min, self.r_max)));
        }
        if self.max_phase.is_nan() || self.max_phase <= 0.0 {
            return Err(("max_phase", format!("must be > 0, got {}", self.max_phase)));
        }
        if !(self.ssm_lr_factor > 0.0 && self.ssm_lr_factor.is_finite()) {
            return Err(("ssm_lr_factor", format!("must be > 0, got {}", self.ssm_lr_factor)));
        }
        Ok(())
    }
}

impl ArchConfig for LruConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
    }

    fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(Lru::new(vs, self))
    }
}

pub struct Lru {
    nu_log: Tensor,
    theta_log: Tensor,
    gamma_log: Tensor,
    b_re: Tensor,
    b_im: Tensor,
    c_re: Tensor,
    c_im: Tensor,
    d_skip: Tensor,
    /// GELU → out1(x)·σ(out2(x)), when `glu`.
    glu: Option<(nn::Linear, nn::Linear)>,
    dropout: f64,
    ssm_lr_factor: f64,
    d_model: i64,
    d_state: i64,
    scan: ScanImpl,
}

impl Lru {
    pub fn new(vs: &nn::Path, cfg: &LruConfig) -> Self {
        let (h, n) = (cfg.d_model, cfg.state_size());
        let cpu = (Kind::Float, tch::Device::Cpu);
        let (u1, u2) = (Tensor::rand([n], cpu), Tensor::rand([n], cpu));
        let (r2_min, r2_max) = (cfg.r_min * cfg.r_min, cfg.r_max * cfg.r_max);
        // |λ|² = u₁(r_max² − r_min²) + r_min² makes |λ| uniform on the ring's area.
        let magnitude_sq = u1 * (r2_max - r2_min) + r2_min;
        let nu_log = (magnitude_sq.log() * -0.5).log();
        let theta_log = (u2 * cfg.max_phase).log();
        let gamma_log = ((-&magnitude_sq + 1.0).sqrt()).log();
        let (b_std, c_std) = ((2.0 * h as f64).sqrt().recip(), (n as f64).sqrt().recip());
        Lru {
            nu_log: vs.var_copy("nu_log", &nu_log),
            theta_log: vs.var_copy("theta_log", &theta_log),
            gamma_log: vs.var_copy("gamma_log", &gamma_log),
            b_re: vs.randn("b_re", &[n, h], 0.0, b_std),
            b_im: vs.randn("b_im", &[n, h], 0.0, b_std),
            c_re: vs.randn("c_re", &[h, n], 0.0, c_std),
            c_im: vs.randn("c_im", &[h, n], 0.0, c_std),
            d_skip: vs.randn("d_skip", &[h], 0.0, 1.0),
            glu: cfg.glu.then(|| (flax_dense(&(vs / "out1"), h, h), flax_dense(&(vs / "out2"), h, h))),
            dropout: cfg.dropout,
            ssm_lr_factor: cfg.ssm_lr_factor,
            d_model: h,
            d_state: n,
            scan: cfg.scan,
        }
    }

    /// λ = exp(−exp(ν_log) + i·exp(θ_log)), complex (N).
    fn lambda(&self) -> Tensor {
        Tensor::polar(&(-self.nu_log.exp()).exp(), &self.theta_log.exp())
    }

    /// γ ⊙ B u: (..., H) real → (..., N) complex.
    fn input(&self, u: &Tensor) -> Tensor {
        let gamma = self.gamma_log.exp();
        // The recurrence is complex64 whatever autocast does to the matmuls (as minimal-LRU's
        // complex parameters in JAX): libtorch has no complex bfloat16.
        // One matmul with B's real and imaginary rows interleaved gives (…, N, 2) as
        // view_as_complex wants it: no separate parts to copy together.
        let n = self.d_state;
        let b = Tensor::stack(&[&self.b_re, &self.b_im], 1).view([2 * n, self.d_model]);
        let parts = super::at_least_f32(&u.matmul(&b.tr()));
        let mut shape = parts.size();
        shape.pop();
        shape.extend([n, 2]);
        parts.view(shape.as_slice()).view_as_complex() * gamma
    }

    /// Re(C h) + D u: (..., N) complex → (..., H).
    fn readout(&self, h: &Tensor, u: &Tensor) -> Tensor {
        // Re(C h) = C_re·Re(h) − C_im·Im(h): one matmul of h's interleaved (re, im) pairs with
        // (C_re, −C_im) interleaved alike, where Re(h) and Im(h) apart are strided views.
        let n = self.d_state;
        let c = Tensor::stack(&[&self.c_re, &-&self.c_im], 2).view([self.d_model, 2 * n]);
        let mut shape = h.size();
        *shape.last_mut().expect("h has a state dimension") = 2 * n;
        h.view_as_real().reshape(shape.as_slice()).matmul(&c.tr()) + u * &self.d_skip
    }

    /// The sequence layer's output stage: drop(GELU(y)) → out1·σ(out2), or y itself.
    fn output(&self, y: Tensor, train: bool) -> Tensor {
        match &self.glu {
            Some((out1, out2)) => {
                // flax.linen.gelu is the tanh approximation (jax.nn.gelu(approximate=True)).
                let x = y.gelu("tanh").dropout(self.dropout, train);
                out1.forward(&x) * out2.forward(&x).sigmoid()
            }
            None => y,
        }
    }
}

impl Mixer for Lru {
    fn implementation(&self, device: tch::Device, _kind: Kind) -> String {
        format!("lru: complex scan by {}", self.scan.describe(device))
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // λ is the same at every step: the fused scan takes it as it is.
        let input = self.input(xs); // (b, L, N)
        self.output(self.readout(&self.scan.linear(&self.lambda(), &input), xs), train)
    }

    /// State: [h] complex (b, N).
    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let input = self.input(x);
        let h = match state.get::<LruState>() {
            Some(prev) => self.lambda() * &prev.h + input,
            None => input,
        };
        let y = self.output(self.readout(&h, x), false);
        state.set(LruState { h });
        Some(y)
    }

    /// The complex state.
    fn state_size(&self, _seq_len: i64) -> f64 {
        (2 * self.d_state) as f64
    }

    /// Complex B and C products (2·2·N·H each), the complex recurrence (8·N) and the GLU's two
    /// Dense layers (2·2·H²).
    fn flops_per_token(&self, _seq_len: i64) -> f64 {
        let (h, n) = (self.d_model as f64, self.d_state as f64);
        let glu = if self.glu.is_some() { 4.0 * h * h } else { 0.0 };
        8.0 * n * h + 8.0 * n + glu
    }

    /// minimal-LRU `train_helpers.py`: ν, θ, γ and B train at lr·lr_factor without decay.
    fn param_rules(&self) -> Vec<(&'static str, ParamRule)> {
        let rule = ParamRule::NoDecayLrScaled(self.ssm_lr_factor);
        ["nu_log", "theta_log", "gamma_log", "b_re", "b_im"].into_iter().map(|n| (n, rule)).collect()
    }
}

/// The LRU's recurrent state: the complex hidden state (batch, N).
struct LruState {
    h: Tensor,
}

pub const INFO: ArchInfo = ArchInfo {
    name: "lru",
    description:
        "Linear Recurrent Unit: diagonal complex recurrence, exponential parameterisation, ring init, GELU-GLU output",
    resolve: super::resolve_typed::<LruConfig>,
    build: super::build_arch::<LruConfig>,
};
