//! `arch: python_model`: a whole model written in PyTorch, tokens (batch, L) → logits
//! (batch, L, num_classes), trained and measured like the native ones (no seqbench backbone).
use super::host::{self, Description};
use super::mixer::{implementation, raise_in_job, register, verified, PythonState};
use super::{model_shape, PythonModelConfig};
use crate::models::{MixerState, SeqModel, TaskIo};
use tch::{nn, Tensor};

/// `ArchInfo::build` of `python_model`: the module, its parameters registered in `vs` under
/// their own names (the same tensors).
pub(super) fn build(vs: &nn::Path, params: &serde_json::Value, io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    let config: PythonModelConfig = serde_json::from_value(params.clone())?;
    let spec = config.spec.clone();
    let label = format!("model {}", spec.label());
    let shape = model_shape(io);
    let (description, versions) = verified(&label, &spec, &shape, io, &spec.source_sha256)?;
    let model =
        host::Layer::build(&spec, &shape, vs.device()).map_err(|e| anyhow::anyhow!("python {label}: {}", e.summary))?;
    register(vs, &model).map_err(|e| anyhow::anyhow!("python {label}: {e}"))?;
    Ok(Box::new(PythonModel { model, label, description, versions, pad_id: io.pad_id }))
}

struct PythonModel {
    model: host::Layer,
    label: String,
    description: Description,
    versions: String,
    pad_id: Option<i64>,
}

impl SeqModel for PythonModel {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mask = self.pad_id.filter(|_| self.description.takes_mask).map(|pad| xs.ne(pad).to_kind(tch::Kind::Float));
        let logits = self.model.forward(xs, mask.as_ref(), train).unwrap_or_else(|e| raise_in_job(&self.label, e));
        let (batch, length) = xs.size2().expect("tokens are (batch, L)");
        if logits.dim() != 3 || logits.size()[..2] != [batch, length] {
            let summary = format!(
                "forward returned shape {:?}; expected (batch, L, num_classes) with (batch, L) = ({batch}, {length})",
                logits.size()
            );
            raise_in_job(&self.label, host::LayerError::new(summary));
        }
        logits
    }

    fn flops_per_token(&self, seq_len: i64) -> f64 {
        if !self.description.has_flops {
            return f64::NAN;
        }
        self.model.flops_per_token(seq_len).unwrap_or_else(|e| raise_in_job(&self.label, e))
    }

    fn can_step(&self) -> bool {
        self.description.has_step
    }

    /// One state: whatever the model's `step` returns.
    fn step(&self, tokens: &Tensor, _pos: i64, states: &mut Vec<MixerState>) -> Tensor {
        states.resize_with(1, MixerState::default);
        let previous = states[0].get::<PythonState>().map(|s| &s.0);
        let (logits, next) = self.model.step(tokens, previous).unwrap_or_else(|e| raise_in_job(&self.label, e));
        states[0].set(PythonState(next));
        logits
    }

    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        implementation(&self.label, &self.description, &self.versions)
    }
}
