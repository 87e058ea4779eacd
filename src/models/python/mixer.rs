//! The model of `arch: python`: the shared backbone with one instance of the user's layer per
//! block, its parameters registered as the very tensors Python holds.
use super::host::{self, Description, LayerError};
use super::{layer_shape, LayerRaised, PythonConfig, Spec};
use crate::models::backbone::Backbone;
use crate::models::{Mixer, MixerState, SeqModel, TaskIo};
use tch::{nn, Tensor};

/// `ArchInfo::build`: one instance of the layer per block, its parameters registered in `vs`
/// under `blocks.{i}.mixer.` (the same tensors: the optimiser updates what Python holds).
pub(super) fn build(vs: &nn::Path, params: &serde_json::Value, io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    let config: PythonConfig = serde_json::from_value(params.clone())?;
    let spec = config.spec();
    let label = format!("layer {}", spec.label());
    let shape = layer_shape(config.d_model);
    let (description, versions) = verified(&label, &spec, &shape, io, &config.source_sha256)?;
    let mut layers = Vec::new();
    for _ in 0..config.n_layers {
        let layer = host::Layer::build(&spec, &shape, vs.device())
            .map_err(|e| anyhow::anyhow!("python {label}: {}", e.summary))?;
        layers.push(Some(layer));
    }
    let layers = std::cell::RefCell::new(layers);
    let failure = std::cell::RefCell::new(None);
    let model = Backbone::new(vs, config.backbone(), io, &|path, i| {
        let layer = layers.borrow_mut()[i as usize].take().expect("one layer per block");
        if let Err(e) = register(path, &layer) {
            failure.replace(Some(e));
        }
        Box::new(PythonMixer {
            layer,
            label: label.clone(),
            description: description.clone(),
            versions: versions.clone(),
        })
    });
    if let Some(e) = failure.into_inner() {
        anyhow::bail!("python {label}: {e}");
    }
    Ok(Box::new(model))
}

/// The job process's own check of the layer (it may have changed since the suite was expanded),
/// and "Python X, torch Y".
pub(super) fn verified(
    label: &str,
    spec: &Spec,
    shape: &serde_json::Value,
    io: &TaskIo,
    expanded_sha256: &str,
) -> anyhow::Result<(Description, String)> {
    let description = host::check(spec, shape, io.causal, io.pad_id.is_some())
        .map_err(|e| anyhow::anyhow!("python {label}: {}", e.summary))?;
    anyhow::ensure!(
        description.source_sha256 == expanded_sha256,
        "python {label}: its source ({}) or kwargs changed since the suite was expanded (hash {expanded_sha256} then, {} now); run the suite again to make it a new job",
        description.files.join(", "),
        description.source_sha256
    );
    Ok((description, host::versions().map_err(|e| anyhow::anyhow!("{e}"))?))
}

/// The record's `implementation` of a Python layer or model (`label`: "layer file.py:Class").
pub(super) fn implementation(label: &str, description: &Description, versions: &str) -> String {
    let package = description.package.as_deref().map(|p| format!(", {p}")).unwrap_or_default();
    format!("python {label} (source sha256 {}; {versions}{package})", description.source_sha256)
}

/// Adds the layer's parameters to the var store (as shallow copies of the same tensors).
pub(super) fn register(path: &nn::Path, layer: &host::Layer) -> Result<(), LayerError> {
    for (name, tensor) in layer.parameters()? {
        let mut parts: Vec<&str> = name.split('.').collect();
        let leaf = parts.pop().expect("split yields one part at least");
        let owner = parts.iter().fold(path.clone(), |p, part| p.sub(*part));
        let _shared = owner.add(leaf, tensor, true);
    }
    Ok(())
}

pub(super) fn raise_in_job(label: &str, error: LayerError) -> ! {
    if !error.detail.is_empty() {
        eprintln!("{}", error.detail.trim_end());
    }
    std::panic::panic_any(LayerRaised(format!("python {label}: {}", error.summary)))
}

struct PythonMixer {
    layer: host::Layer,
    label: String,
    description: Description,
    versions: String,
}

/// The Python layer's recurrent state, opaque to seqbench.
pub(super) struct PythonState(pub(super) pyo3::Py<pyo3::PyAny>);

impl PythonMixer {
    fn run(&self, xs: &Tensor, mask: Option<&Tensor>, train: bool) -> Tensor {
        let y = self.layer.forward(xs, mask, train).unwrap_or_else(|e| raise_in_job(&self.label, e));
        if y.size() != xs.size() {
            let message = format!("forward returned shape {:?}; expected its input's {:?}", y.size(), xs.size());
            raise_in_job(&self.label, LayerError::new(message));
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
        self.run(&xs, self.description.takes_mask.then_some(mask), train)
    }

    fn step(&self, x: &Tensor, _pos: i64, state: &mut MixerState) -> Option<Tensor> {
        if !self.description.has_step {
            return None;
        }
        let previous = state.get::<PythonState>().map(|s| &s.0);
        let (y, next) = self.layer.step(x, previous).unwrap_or_else(|e| raise_in_job(&self.label, e));
        state.set(PythonState(next));
        Some(y)
    }

    /// Unknown (not a number: recorded as missing).
    fn state_size(&self, _seq_len: i64) -> f64 {
        f64::NAN
    }

    /// The layer's own `flops_per_token(seq_len)` if it has one, else unknown (not a number:
    /// FLOPs and MFU are recorded as missing).
    fn flops_per_token(&self, seq_len: i64) -> f64 {
        if !self.description.has_flops {
            return f64::NAN;
        }
        self.layer.flops_per_token(seq_len).unwrap_or_else(|e| raise_in_job(&self.label, e))
    }

    fn implementation(&self, _device: tch::Device, _kind: tch::Kind) -> String {
        implementation(&self.label, &self.description, &self.versions)
    }
}
