//! `arch: python`: a mixer written in PyTorch (an `nn.Module` mapping (batch, L, d_model) to the
//! same shape), one instance per block of the shared backbone, trained and measured like the
//! native mixers. Its source files and kwargs are hashed into the job's identity, so a changed
//! layer is a different job. See docs/python-layers.md.
#[cfg(feature = "python")]
mod host;

use super::backbone::{Backbone, BackboneConfig};
use super::{ArchInfo, Mixer, MixerState, SeqModel, TaskIo};
use crate::params::{ParamError, ParamMap};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PythonConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    /// A `.py` file (relative to the suite file, or to the working directory) or the dotted name
    /// of a module the venv can import.
    pub module: String,
    /// The `nn.Module` subclass in it.
    pub class: String,
    /// Passed to the constructor, with `d_model`; written `kwargs: {name: value}` or
    /// `kwargs.name: value` in a suite, and each value may be a sweep.
    pub kwargs: serde_json::Map<String, serde_json::Value>,
    /// Set by seqbench when the suite is expanded: a hash of the layer's source files and kwargs.
    pub source_sha256: String,
}

impl Default for PythonConfig {
    fn default() -> Self {
        PythonConfig {
            d_model: 64,
            n_layers: 2,
            mlp_ratio: 2,
            dropout: 0.0,
            module: String::new(),
            class: String::new(),
            kwargs: Default::default(),
            source_sha256: String::new(),
        }
    }
}

/// Where a layer comes from and how it is constructed.
#[derive(Debug, Clone)]
pub struct Spec {
    pub module: String,
    pub class: String,
    pub kwargs: serde_json::Map<String, serde_json::Value>,
}

impl Spec {
    pub fn kwargs_json(&self) -> String {
        serde_json::Value::Object(self.kwargs.clone()).to_string()
    }

    /// `file.py:Class` or `package.module:Class`.
    pub fn label(&self) -> String {
        let module = std::path::Path::new(&self.module);
        let short = if self.module.ends_with(".py") {
            module.file_name().map_or(self.module.clone(), |f| f.to_string_lossy().into_owned())
        } else {
            self.module.clone()
        };
        format!("{short}:{}", self.class)
    }
}

impl PythonConfig {
    fn backbone(&self) -> BackboneConfig {
        BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
    }

    pub fn spec(&self) -> Spec {
        Spec { module: self.module.clone(), class: self.class.clone(), kwargs: self.kwargs.clone() }
    }

    /// The checks that need no Python.
    fn validate(&self) -> Result<(), ParamError> {
        self.backbone().validate().map_err(|(key, msg)| ParamError::new(key, msg))?;
        if self.module.trim().is_empty() {
            return Err(ParamError::new(
                "module",
                "needed: a .py file (relative to the suite file) or an importable module name",
            ));
        }
        if self.class.trim().is_empty() {
            return Err(ParamError::new("class", format!("needed: the nn.Module class in {}", self.module)));
        }
        if self.kwargs.contains_key("d_model") {
            return Err(ParamError::new(
                "kwargs",
                "d_model is passed to the constructor from the model's `d_model`; set that instead",
            ));
        }
        if !self.source_sha256.is_empty() {
            return Err(ParamError::new("source_sha256", "is set by seqbench, not in a suite"));
        }
        Ok(())
    }
}

/// `ArchInfo::resolve`: the config, checked, with a `.py` path made absolute and the layer
/// imported and run once on a tiny input (so a broken layer stops the suite before any job
/// starts), its source hash recorded.
fn resolve(combo: &ParamMap, io: &TaskIo) -> Result<serde_json::Value, ParamError> {
    let (kwargs, own): (ParamMap, ParamMap) = combo.clone().into_iter().partition(|(k, _)| k.starts_with("kwargs."));
    let mut config: PythonConfig = crate::params::resolve(&own)?;
    for (key, value) in kwargs {
        let value = serde_json::to_value(&value).map_err(|e| ParamError::new(key.as_str(), e.to_string()))?;
        config.kwargs.insert(key["kwargs.".len()..].to_string(), value);
    }
    config.validate()?;
    if config.module.ends_with(".py") {
        if let Ok(path) = std::path::Path::new(&config.module).canonicalize() {
            config.module = path.to_string_lossy().into_owned();
        }
    }
    config.source_sha256 = checked(&config, io)?.source_sha256;
    serde_json::to_value(&config).map_err(|e| ParamError::new("", e.to_string()))
}

#[cfg(feature = "python")]
type Description = host::Description;

#[cfg(feature = "python")]
fn checked(config: &PythonConfig, io: &TaskIo) -> Result<Description, ParamError> {
    host::check(&config.spec(), config.d_model, io.causal, io.pad_id.is_some()).map_err(|e| {
        if !e.detail.is_empty() {
            eprintln!("{}", e.detail.trim_end());
        }
        ParamError::new("module", e.summary)
    })
}

#[cfg(not(feature = "python"))]
struct Description {
    source_sha256: String,
}

#[cfg(not(feature = "python"))]
fn checked(_config: &PythonConfig, _io: &TaskIo) -> Result<Description, ParamError> {
    Err(ParamError::new("arch", "this seqbench was built without the `python` feature (cargo build --features python)"))
}

/// `ArchInfo::build`: one instance of the layer per block, its parameters registered in `vs`
/// under `blocks.{i}.mixer.` (the same tensors: the optimiser updates what Python holds).
#[cfg(feature = "python")]
fn build(vs: &nn::Path, params: &serde_json::Value, io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    let config: PythonConfig = serde_json::from_value(params.clone())?;
    let spec = config.spec();
    let label = spec.label();
    let description = host::check(&spec, config.d_model, io.causal, io.pad_id.is_some())
        .map_err(|e| anyhow::anyhow!("python layer {label}: {}", e.summary))?;
    anyhow::ensure!(
        description.source_sha256 == config.source_sha256,
        "python layer {label}: its source ({}) or kwargs changed since the suite was expanded (hash {} then, {} now); run the suite again to make it a new job",
        description.files.join(", "),
        config.source_sha256,
        description.source_sha256
    );
    let versions = host::versions().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut layers = Vec::new();
    for _ in 0..config.n_layers {
        let layer = host::Layer::build(&spec, config.d_model, vs.device())
            .map_err(|e| anyhow::anyhow!("python layer {label}: {}", e.summary))?;
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
        anyhow::bail!("python layer {label}: {e}");
    }
    Ok(Box::new(model))
}

#[cfg(not(feature = "python"))]
fn build(_vs: &nn::Path, _params: &serde_json::Value, _io: &TaskIo) -> anyhow::Result<Box<dyn SeqModel>> {
    anyhow::bail!("this seqbench was built without the `python` feature")
}

/// Adds the layer's parameters to the var store (as shallow copies of the same tensors).
#[cfg(feature = "python")]
fn register(path: &nn::Path, layer: &host::Layer) -> Result<(), host::LayerError> {
    for (name, tensor) in layer.parameters()? {
        let mut parts: Vec<&str> = name.split('.').collect();
        let leaf = parts.pop().expect("split yields one part at least");
        let owner = parts.iter().fold(path.clone(), |p, part| p.sub(*part));
        let _shared = owner.add(leaf, tensor, true);
    }
    Ok(())
}

/// Raised (as a panic payload) when the user's layer raises in the middle of a job; the job
/// runner turns it into a `failed` record with this summary (the traceback is in the job log).
#[derive(Debug)]
pub struct LayerRaised(pub String);

#[cfg(feature = "python")]
fn raise_in_job(label: &str, error: host::LayerError) -> ! {
    if !error.detail.is_empty() {
        eprintln!("{}", error.detail.trim_end());
    }
    std::panic::panic_any(LayerRaised(format!("python layer {label}: {}", error.summary)))
}

#[cfg(feature = "python")]
struct PythonMixer {
    layer: host::Layer,
    label: String,
    description: Description,
    versions: String,
}

/// The Python layer's recurrent state, opaque to seqbench.
#[cfg(feature = "python")]
struct PythonState(pyo3::Py<pyo3::PyAny>);

#[cfg(feature = "python")]
impl PythonMixer {
    fn run(&self, xs: &Tensor, mask: Option<&Tensor>, train: bool) -> Tensor {
        let y = self.layer.forward(xs, mask, train).unwrap_or_else(|e| raise_in_job(&self.label, e));
        if y.size() != xs.size() {
            let message = format!("forward returned shape {:?}; expected its input's {:?}", y.size(), xs.size());
            raise_in_job(&self.label, host::LayerError { summary: message, detail: String::new() });
        }
        y
    }
}

#[cfg(feature = "python")]
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
        let package = self.description.package.as_deref().map(|p| format!(", {p}")).unwrap_or_default();
        format!(
            "python layer {} (source sha256 {}; {}{package})",
            self.label, self.description.source_sha256, self.versions
        )
    }
}

pub const INFO: ArchInfo = ArchInfo {
    name: "python",
    description: "a mixer written in PyTorch (module: file.py or package.module, class: Name, kwargs: {...})",
    resolve,
    build,
};
