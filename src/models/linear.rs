//! DLinear and NLinear (Zeng et al. 2023) as a sequence mixer: one linear map over the time
//! axis, shared across channels. The forecasting baselines that embarrass bigger models; as a
//! mixer they are the "no recurrence, no attention" floor. See docs/models.md.
use super::backbone::BackboneConfig;
use super::init::torch_linear;
use super::{ArchConfig, ArchInfo, Head, Mixer, MixerState, SeqModel, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinearConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    pub variant: LinearVariant,
    /// Moving-average window of DLinear's trend (odd).
    pub kernel: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinearVariant {
    Dlinear,
    Nlinear,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 2,
            dropout: 0.0,
            variant: LinearVariant::Dlinear,
            kernel: 25,
        }
    }
}

impl Validate for LinearConfig {
    fn validate(&self, io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.kernel < 1 || self.kernel % 2 == 0 {
            return Err(("kernel", format!("must be an odd number ≥ 1, got {}", self.kernel)));
        }
        if io.pad_id.is_some() {
            return Err((
                "variant",
                "this task pads variable-length inputs, and a time map (and its moving average) is tied to fixed positions".into(),
            ));
        }
        if self.variant == LinearVariant::Nlinear && io.causal {
            return Err((
                "variant",
                "nlinear subtracts the last input step, which a causal task must not see; use dlinear".into(),
            ));
        }
        Ok(())
    }
}

impl ArchConfig for LinearConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
    }

    fn mixer(&self, vs: &nn::Path, io: &TaskIo) -> Box<dyn Mixer> {
        Box::new(TimeLinear::new(vs, self, io))
    }
}

pub struct TimeLinear {
    /// DLinear: [seasonal, trend]; NLinear: [time].
    maps: Vec<nn::Linear>,
    variant: LinearVariant,
    kernel: i64,
    causal: bool,
    d_model: i64,
}

impl TimeLinear {
    pub fn new(vs: &nn::Path, cfg: &LinearConfig, io: &TaskIo) -> Self {
        let len = io.seq_len;
        let names: &[&str] = match cfg.variant {
            LinearVariant::Dlinear => &["seasonal", "trend"],
            LinearVariant::Nlinear => &["time"],
        };
        TimeLinear {
            maps: names.iter().map(|n| torch_linear(&(vs / *n), len, len, true)).collect(),
            variant: cfg.variant,
            kernel: cfg.kernel,
            causal: io.causal,
            d_model: cfg.d_model,
        }
    }

    /// y[t] = Σ_s W[t, s]·u[s] + bias[t] over the time axis of u (b, l, H); masked to s ≤ t on
    /// causal tasks. Inputs shorter than the task's length use the leading block of W.
    fn map(&self, which: usize, u: &Tensor) -> Tensor {
        let len = u.size()[1];
        let lin = &self.maps[which];
        let mut w = lin.ws.narrow(0, 0, len).narrow(1, 0, len);
        if self.causal {
            w = w.tril(0);
        }
        let bias = lin.bs.as_ref().expect("time maps have a bias").narrow(0, 0, len);
        w.matmul(u) + bias.unsqueeze(-1)
    }

    fn trend(&self, u: &Tensor) -> Tensor {
        moving_average(u, self.kernel, self.causal)
    }
}

/// Moving average of u (b, l, c) over `kernel` steps along time, ends padded by repeating the
/// first/last step: trailing window when causal, centred otherwise (DLinear's series_decomp).
fn moving_average(u: &Tensor, kernel: i64, causal: bool) -> Tensor {
    let len = u.size()[1];
    let (front, back) = if causal { (kernel - 1, 0) } else { ((kernel - 1) / 2, (kernel - 1) / 2) };
    let first = u.narrow(1, 0, 1).repeat([1, front, 1]);
    let last = u.narrow(1, len - 1, 1).repeat([1, back, 1]);
    let padded = Tensor::cat(&[&first, u, &last], 1).transpose(1, 2); // (b, c, l + k − 1)
    padded.avg_pool1d([kernel], [1], [0], false, true).transpose(1, 2)
}

/// DLinear / NLinear as the forecasting papers define them, for `Head::Forecast` tasks: no
/// embedding and no blocks, a Linear(L, horizon) over time shared across channels (TSLib's
/// `individual: False`); DLinear's weights start at 1/L as Time-Series-Library's, NLinear's as
/// torch.nn.Linear's (LTSF-Linear).
/// (b, L, C) → (b, horizon, C). d_model, n_layers and mlp_ratio do not apply.
pub struct LinearForecaster {
    maps: Vec<nn::Linear>,
    variant: LinearVariant,
    kernel: i64,
    horizon: i64,
    channels: i64,
}

impl LinearForecaster {
    pub fn new(vs: &nn::Path, cfg: &LinearConfig, io: &TaskIo, horizon: i64) -> Self {
        let names: &[&str] = match cfg.variant {
            LinearVariant::Dlinear => &["seasonal", "trend"],
            LinearVariant::Nlinear => &["time"],
        };
        let len = io.seq_len;
        let maps = names
            .iter()
            .map(|n| {
                let lin = torch_linear(&(vs / *n), len, horizon, true);
                // Time-Series-Library's DLinear sets both weights to 1/L (bias left as torch's);
                // LTSF-Linear's NLinear keeps torch's default Linear.
                if cfg.variant == LinearVariant::Dlinear {
                    let _ = tch::no_grad(|| lin.ws.shallow_clone().fill_(1.0 / len as f64));
                }
                lin
            })
            .collect();
        LinearForecaster { maps, variant: cfg.variant, kernel: cfg.kernel, horizon, channels: io.input_features.max(1) }
    }

    /// Linear over the time axis: (b, L, C) → (b, horizon, C).
    fn map(&self, which: usize, u: &Tensor) -> Tensor {
        use tch::nn::Module;
        self.maps[which].forward(&u.transpose(1, 2)).transpose(1, 2)
    }
}

impl SeqModel for LinearForecaster {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        match self.variant {
            LinearVariant::Dlinear => {
                let trend = moving_average(xs, self.kernel, false);
                self.map(0, &(xs - &trend)) + self.map(1, &trend)
            }
            LinearVariant::Nlinear => {
                let last = xs.narrow(1, xs.size()[1] - 1, 1);
                self.map(0, &(xs - &last)) + last
            }
        }
    }

    /// Per input step: 2·horizon multiply-adds per channel per map.
    fn flops_per_token(&self, _seq_len: i64) -> f64 {
        2.0 * self.horizon as f64 * self.channels as f64 * self.maps.len() as f64
    }

    fn can_step(&self) -> bool {
        false
    }

    fn step(&self, _tokens: &Tensor, _pos: i64, _states: &mut Vec<MixerState>) -> Tensor {
        unreachable!("a forecaster over a whole window has no recurrent form (can_step is false)")
    }
}

/// The forecaster on forecasting tasks, the time-mixing backbone otherwise.
fn build(vs: &nn::Path, params: &serde_json::Value, io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    let cfg: LinearConfig = serde_json::from_value(params.clone())?;
    Ok(match io.head {
        Head::Forecast { horizon } => Box::new(LinearForecaster::new(vs, &cfg, io, horizon)),
        _ => super::build_model(vs, &cfg, io),
    })
}

impl Mixer for TimeLinear {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        match self.variant {
            LinearVariant::Dlinear => {
                let trend = self.trend(xs);
                self.map(0, &(xs - &trend)) + self.map(1, &trend)
            }
            LinearVariant::Nlinear => {
                let last = xs.narrow(1, xs.size()[1] - 1, 1);
                self.map(0, &(xs - &last)) + last
            }
        }
    }

    /// A map over the whole window has no recurrent form.
    fn step(&self, _x: &Tensor, _pos: i64, _state: &mut MixerState) -> Option<Tensor> {
        None
    }

    /// No recurrent form: the window of L inputs it maps.
    fn state_size(&self, seq_len: i64) -> f64 {
        (seq_len * self.d_model) as f64
    }

    /// 2L multiply-adds per channel per map (L the window), the moving average left out.
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        2.0 * seq_len as f64 * self.d_model as f64 * self.maps.len() as f64
    }
}

pub const INFO: ArchInfo = ArchInfo {
    name: "linear",
    description: "DLinear / NLinear: a linear map over time shared across channels (no recurrent form)",
    resolve: super::resolve_typed::<LinearConfig>,
    build,
};
