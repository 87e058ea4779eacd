//! LSTM and GRU mixers on libtorch's fused RNN kernels (cuDNN on GPU), one recurrent layer per
//! block. Weights are initialised as torch.nn.LSTM/GRU do: U(−1/√h, 1/√h) for every tensor.
use super::backbone::{Backbone, BackboneConfig};
use super::{ArchInfo, Mixer, MixerState, SeqModel, TaskIo, Validate};
use serde::{Deserialize, Serialize};
use tch::nn::{self, RNN};
use tch::Tensor;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RnnConfig {
    /// Model width; also the hidden size of each recurrent layer.
    pub d_model: i64,
    /// Blocks, each with one recurrent layer.
    pub n_layers: i64,
    /// MLP width multiple after each recurrence; 0 for a plain stacked RNN.
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// Run the recurrence both ways (d_model/2 per direction). Only for non-causal tasks.
    pub bidirectional: bool,
}

impl Default for RnnConfig {
    fn default() -> Self {
        RnnConfig { d_model: 64, n_layers: 2, mlp_ratio: 4, dropout: 0.0, bidirectional: false }
    }
}

impl RnnConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
    }

    fn hidden(&self) -> i64 {
        if self.bidirectional {
            self.d_model / 2
        } else {
            self.d_model
        }
    }
}

impl Validate for RnnConfig {
    fn validate(&self, io: &TaskIo) -> Result<(), (&'static str, String)> {
        self.backbone().validate()?;
        if self.bidirectional && io.causal {
            return Err(("bidirectional", "this task is causal: a bidirectional RNN would see the answers".into()));
        }
        if self.bidirectional && io.pad_id.is_some() {
            return Err((
                "bidirectional",
                "this task pads its inputs and a bidirectional RNN would read the padding first; use a causal RNN with a last-position head, or another model".into(),
            ));
        }
        if self.bidirectional && self.d_model % 2 != 0 {
            return Err(("d_model", format!("must be even when bidirectional, got {}", self.d_model)));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    Lstm,
    Gru,
}

impl Cell {
    fn gates(self) -> f64 {
        match self {
            Cell::Lstm => 4.0,
            Cell::Gru => 3.0,
        }
    }
}

enum Layer {
    Lstm(nn::LSTM),
    Gru(nn::GRU),
}

pub struct RnnMixer {
    layer: Layer,
    cell: Cell,
    d_model: i64,
    hidden: i64,
    directions: i64,
}

impl RnnMixer {
    pub fn new(vs: &nn::Path, cell: Cell, cfg: &RnnConfig) -> Self {
        let hidden = cfg.hidden();
        let bound = 1.0 / (hidden as f64).sqrt();
        let init = nn::Init::Uniform { lo: -bound, up: bound };
        let rnn_cfg = nn::RNNConfig {
            bidirectional: cfg.bidirectional,
            batch_first: true,
            w_ih_init: init,
            w_hh_init: init,
            b_ih_init: Some(init),
            b_hh_init: Some(init),
            ..Default::default()
        };
        let layer = match cell {
            Cell::Lstm => Layer::Lstm(nn::lstm(vs, cfg.d_model, hidden, rnn_cfg)),
            Cell::Gru => Layer::Gru(nn::gru(vs, cfg.d_model, hidden, rnn_cfg)),
        };
        let directions = if cfg.bidirectional { 2 } else { 1 };
        RnnMixer { layer, cell, d_model: cfg.d_model, hidden, directions }
    }
}

impl Mixer for RnnMixer {
    /// libtorch's fused RNN: cuDNN on CUDA when cuDNN is there, its native kernel otherwise.
    fn implementation(&self, device: tch::Device, _kind: tch::Kind) -> String {
        let cell = if matches!(self.cell, Cell::Lstm) { "lstm" } else { "gru" };
        let kernel = if device.is_cuda() && tch::Cuda::cudnn_is_available() { "cudnn" } else { "native fused kernel" };
        format!("{cell}: {kernel}")
    }

    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        match &self.layer {
            Layer::Lstm(l) => l.seq(xs).0,
            Layer::Gru(g) => g.seq(xs).0,
        }
    }

    /// h (and c for the LSTM) per direction.
    fn state_size(&self, _seq_len: i64) -> f64 {
        let per_direction = if matches!(self.cell, Cell::Lstm) { 2 } else { 1 };
        (per_direction * self.hidden * self.directions) as f64
    }

    /// gates × (input projection d·h + recurrent projection h·h) multiply-adds per direction.
    fn flops_per_token(&self, _seq_len: i64) -> f64 {
        let (d, h) = (self.d_model as f64, self.hidden as f64);
        2.0 * self.cell.gates() * h * (d + h) * self.directions as f64
    }

    /// State: [h] for the GRU, [h, c] for the LSTM, each (1, batch, hidden).
    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        if self.directions != 1 {
            return None;
        }
        let batch = x.size()[0];
        // tch's own cell states are the typed states here.
        let h = match &self.layer {
            Layer::Lstm(l) => {
                let prev = state.get::<nn::LSTMState>().map(|s| nn::LSTMState((s.h(), s.c())));
                let next = l.step(x, &prev.unwrap_or_else(|| l.zero_state(batch)));
                let h = next.h();
                state.set(next);
                h
            }
            Layer::Gru(g) => {
                let prev = state.get::<nn::GRUState>().map(|s| nn::GRUState(s.value()));
                let next = g.step(x, &prev.unwrap_or_else(|| g.zero_state(batch)));
                let h = next.value();
                state.set(next);
                h
            }
        };
        Some(h.get(0))
    }
}

fn resolve(combo: &crate::params::ParamMap, io: &TaskIo) -> Result<serde_json::Value, crate::params::ParamError> {
    super::resolve_typed::<RnnConfig>(combo, io)
}

pub fn build_cell(vs: &nn::Path, cell: Cell, cfg: &RnnConfig, io: &TaskIo) -> Box<dyn SeqModel> {
    let make = |p: &nn::Path, _i: i64| Box::new(RnnMixer::new(p, cell, cfg)) as Box<dyn Mixer>;
    Box::new(Backbone::new(vs, cfg.backbone(), io, &make))
}

fn build_lstm(vs: &nn::Path, params: &serde_json::Value, io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    let cfg: RnnConfig = serde_json::from_value(params.clone())?;
    Ok(build_cell(vs, Cell::Lstm, &cfg, io))
}

fn build_gru(vs: &nn::Path, params: &serde_json::Value, io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    let cfg: RnnConfig = serde_json::from_value(params.clone())?;
    Ok(build_cell(vs, Cell::Gru, &cfg, io))
}

pub const LSTM_INFO: ArchInfo = ArchInfo {
    name: "lstm",
    description: "LSTM (libtorch fused kernel, cuDNN on GPU), one layer per block",
    resolve,
    build: build_lstm,
};

pub const GRU_INFO: ArchInfo = ArchInfo {
    name: "gru",
    description: "GRU (libtorch fused kernel, cuDNN on GPU), one layer per block",
    resolve,
    build: build_gru,
};
