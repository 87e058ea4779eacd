//! The model of `arch: python`: the shared backbone with one instance of the user's layer per
//! block.
use super::host::LayerError;
use super::layer::Loaded;
use super::{layer_shape, PythonConfig};
use crate::models::backbone::Backbone;
use crate::models::{Mixer, MixerState, SeqModel, TaskIo};
use tch::{nn, Tensor};

/// `ArchInfo::build`: one instance of the layer per block (all built before the backbone's own
/// parameters are drawn), registered in `vs` under `blocks.{i}.mixer.`.
pub(super) fn build(vs: &nn::Path, params: &serde_json::Value, io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    let config: PythonConfig = serde_json::from_value(params.clone())?;
    let spec = config.spec();
    let label = format!("layer {}", spec.label());
    let shape = layer_shape(config.d_model);
    let described = Loaded::describe(&label, &spec, &shape)?;
    let mut layers = Vec::new();
    for _ in 0..config.n_layers {
        layers.push(Some(Loaded::build(&label, &spec, &shape, vs.device(), &described)?));
    }
    let layers = std::cell::RefCell::new(layers);
    let failure = std::cell::RefCell::new(None);
    let model = Backbone::new(vs, config.backbone(), io, &|path, i| {
        let layer = layers.borrow_mut()[i as usize].take().expect("one layer per block");
        if let Err(e) = layer.register(path) {
            failure.replace(Some(e));
        }
        Box::new(PythonMixer(layer))
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    Ok(Box::new(model))
}

struct PythonMixer(Loaded);

impl PythonMixer {
    fn run(&self, xs: &Tensor, mask: Option<&Tensor>, train: bool) -> Tensor {
        let y = self.0.forward(xs, mask, train);
        if y.size() != xs.size() {
            let message = format!("forward returned shape {:?}; expected its input's {:?}", y.size(), xs.size());
            self.0.raise(LayerError::new(message));
        }
        y
    }
}

impl Mixer for PythonMixer {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.run(xs, None, train)
    }

    fn forward_masked(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let xs = xs * mask.unsqueeze(-1);
        // Padded tasks are refused for layers whose forward takes no mask (see `resolve`).
        self.run(&xs, self.0.description.takes_mask.then_some(mask), train)
    }

    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        self.0.description.has_step.then(|| self.0.step(x, state))
    }

    /// Unknown (not a number: recorded as missing).
    fn state_size(&self, _seq_len: i64) -> f64 {
        f64::NAN
    }

    fn flops_per_token(&self, seq_len: i64) -> f64 {
        self.0.flops_per_token(seq_len)
    }

    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        self.0.implementation()
    }
}
