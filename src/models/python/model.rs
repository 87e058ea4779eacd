//! `arch: python_model`: a whole model written in PyTorch, tokens (batch, L) → logits
//! (batch, L, num_classes), trained and measured like the native ones (no seqbench backbone).
use super::host::LayerError;
use super::layer::Loaded;
use super::{model_shape, PythonModelConfig};
use crate::models::{MixerState, SeqModel, TaskIo};
use tch::{nn, Tensor};

/// `ArchInfo::build` of `python_model`: the module, its parameters registered in `vs` under
/// their own names (the same tensors).
pub(super) fn build(vs: &nn::Path, params: &serde_json::Value, io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    let config: PythonModelConfig = serde_json::from_value(params.clone())?;
    let spec = config.spec;
    let label = format!("model {}", spec.label());
    let shape = model_shape(io);
    let described = Loaded::describe(&label, &spec, &shape)?;
    let model = Loaded::build(&label, &spec, &shape, vs.device(), &described)?;
    model.register(vs)?;
    Ok(Box::new(PythonModel { model, pad_id: io.pad_id }))
}

struct PythonModel {
    model: Loaded,
    pad_id: Option<i64>,
}

impl SeqModel for PythonModel {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let takes_mask = self.model.description.takes_mask;
        let mask = self.pad_id.filter(|_| takes_mask).map(|pad| xs.ne(pad).to_kind(tch::Kind::Float));
        let logits = self.model.forward(xs, mask.as_ref(), train);
        let (batch, length) = xs.size2().expect("tokens are (batch, L)");
        if logits.dim() != 3 || logits.size()[..2] != [batch, length] {
            let summary = format!(
                "forward returned shape {:?}; expected (batch, L, num_classes) with (batch, L) = ({batch}, {length})",
                logits.size()
            );
            self.model.raise(LayerError::new(summary));
        }
        logits
    }

    fn flops_per_token(&self, seq_len: i64) -> f64 {
        self.model.flops_per_token(seq_len)
    }

    fn can_step(&self) -> bool {
        self.model.description.has_step
    }

    /// One state: whatever the model's `step` returns.
    fn step(&self, tokens: &Tensor, _pos: i64, states: &mut Vec<MixerState>) -> Tensor {
        states.resize_with(1, MixerState::default);
        self.model.step(tokens, &mut states[0])
    }

    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        self.model.implementation()
    }
}
