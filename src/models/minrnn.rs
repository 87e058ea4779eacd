//! minGRU and minLSTM from "Were RNNs All We Needed?" (Feng et al. 2024): gates computed from
//! the input alone, so the recurrence is linear in h and trains with a log-space parallel scan.
//! See docs/models.md for the equations.
use super::backbone::BackboneConfig;
use super::init::torch_linear;
use super::scan::{self, ScanImpl};
use super::{ArchConfig, ArchInfo, Mixer, MixerState, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

/// Both cells share this config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinRnnConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Hidden width E as a multiple of d_model.
    pub expand: i64,
    /// The scan: `fused` (the C++ op, in linear space) or `reference` (libtorch ops, in log
    /// space as the paper's parallel mode).
    pub scan: ScanImpl,
}

impl Default for MinRnnConfig {
    fn default() -> Self {
        MinRnnConfig { d_model: 64, n_layers: 2, mlp_ratio: 2, dropout: 0.0, expand: 1, scan: ScanImpl::Fused }
    }
}

/// The same config under each cell's name, so that each builds its own cell.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MinGruConfig(pub MinRnnConfig);

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MinLstmConfig(pub MinRnnConfig);

macro_rules! min_rnn_arch {
    ($config:ty, $lstm:expr) => {
        impl Validate for $config {
            fn validate(&self, _io: &TaskIo) -> Result<(), (&'static str, String)> {
                self.backbone().validate()?;
                if self.0.expand < 1 {
                    return Err(("expand", format!("must be at least 1, got {}", self.0.expand)));
                }
                Ok(())
            }
        }

        impl ArchConfig for $config {
            fn backbone(&self) -> BackboneConfig {
                let c = &self.0;
                BackboneConfig::plain(c.d_model, c.n_layers, c.mlp_ratio, c.dropout)
            }

            fn mixer(&self, vs: &nn::Path, _io: &TaskIo) -> Box<dyn Mixer> {
                Box::new(MinRnn::new(vs, &self.0, $lstm))
            }
        }
    };
}

min_rnn_arch!(MinGruConfig, false);
min_rnn_arch!(MinLstmConfig, true);

pub struct MinRnn {
    in_proj: nn::Linear,
    out_proj: nn::Linear,
    lstm: bool,
    d_model: i64,
    hidden: i64,
    scan: ScanImpl,
}

/// log g(x), g(x) = x + ½ for x ≥ 0, σ(x) otherwise: a positive candidate for the log-space scan.
fn log_g(x: &Tensor) -> Tensor {
    (x.relu() + 0.5).log().where_self(&x.ge(0.0), &(-(-x).softplus()))
}

impl MinRnn {
    pub fn new(vs: &nn::Path, cfg: &MinRnnConfig, lstm: bool) -> Self {
        let (d_model, hidden) = (cfg.d_model, cfg.expand * cfg.d_model);
        let parts = if lstm { 3 } else { 2 };
        MinRnn {
            in_proj: torch_linear(&(vs / "in_proj"), d_model, parts * hidden, true),
            out_proj: torch_linear(&(vs / "out_proj"), hidden, d_model, false),
            lstm,
            d_model,
            hidden,
            scan: cfg.scan,
        }
    }

    /// (log of the coefficient on h_{t−1}, log of the added value), each (..., E).
    fn log_terms(&self, x: &Tensor) -> (Tensor, Tensor) {
        let parts = self.in_proj.forward(x).chunk(if self.lstm { 3 } else { 2 }, -1);
        if self.lstm {
            // f' = f/(f+i), i' = i/(f+i) with f = σ(k_f), i = σ(k_i), in log space.
            let diff = (-&parts[0]).softplus() - (-&parts[1]).softplus();
            (-diff.softplus(), -(-&diff).softplus() + log_g(&parts[2]))
        } else {
            // 1 − z and z with z = σ(k).
            (-parts[0].softplus(), -(-&parts[0]).softplus() + log_g(&parts[1]))
        }
    }
}

impl Mixer for MinRnn {
    fn implementation(&self, device: tch::Device, _kind: tch::Kind) -> String {
        let name = if self.lstm { "minlstm" } else { "mingru" };
        format!("{name}: scan by {}", self.scan.describe(device))
    }

    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let (log_coeff, log_value) = self.log_terms(xs);
        let h = if self.scan.fused() {
            // The coefficient is in (0, 1) and the value positive: the linear-space recurrence
            // cannot overflow, so the log space's protection is not needed.
            self.scan.linear(&log_coeff.exp(), &log_value.exp())
        } else {
            scan::log_space_scan(&log_coeff, &log_value)
        };
        self.out_proj.forward(&h)
    }

    /// State: [h] (b, E).
    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        let (log_coeff, log_value) = self.log_terms(x);
        let h = match state.get::<MinRnnState>() {
            Some(prev) => log_coeff.exp() * &prev.h + log_value.exp(),
            None => log_value.exp(),
        };
        let y = self.out_proj.forward(&h);
        state.set(MinRnnState { h });
        Some(y)
    }

    /// The hidden state.
    fn state_size(&self, _seq_len: i64) -> f64 {
        self.hidden as f64
    }

    /// in_proj (2 or 3 parts) and out_proj; the scan is element-wise.
    fn flops_per_token(&self, _seq_len: i64) -> f64 {
        let parts = if self.lstm { 3.0 } else { 2.0 };
        let (h, e) = (self.d_model as f64, self.hidden as f64);
        2.0 * h * parts * e + 2.0 * e * h
    }
}

/// minGRU's or minLSTM's recurrent state: the hidden state (batch, hidden).
struct MinRnnState {
    h: Tensor,
}

pub const MINGRU_INFO: ArchInfo = ArchInfo {
    name: "mingru",
    description: "minGRU (Feng et al. 2024): input-only gates, fused parallel scan (reference: log-space)",
    resolve: super::resolve_typed::<MinGruConfig>,
    build: super::build_arch::<MinGruConfig>,
};

pub const MINLSTM_INFO: ArchInfo = ArchInfo {
    name: "minlstm",
    description: "minLSTM (Feng et al. 2024): normalised input-only forget/input gates, fused parallel scan (reference: log-space)",
    resolve: super::resolve_typed::<MinLstmConfig>,
    build: super::build_arch::<MinLstmConfig>,
};
