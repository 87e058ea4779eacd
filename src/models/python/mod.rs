//! `arch: python`: a mixer written in PyTorch (an `nn.Module` mapping (batch, L, d_model) to the
//! same shape), one instance per block of the shared backbone, trained and measured like the
//! native mixers; `arch: python_model`: a whole model, tokens → logits (`model.rs`). The source
//! files and kwargs are hashed into the job's identity, so a changed layer is a different job.
//! See docs/python-layers.md.
#[cfg(feature = "python")]
mod host;
#[cfg(feature = "python")]
mod layer;
#[cfg(feature = "python")]
mod mixer;
#[cfg(feature = "python")]
use mixer::build;
#[cfg(feature = "python")]
mod model;
#[cfg(feature = "python")]
use model::build as build_model;

use super::backbone::BackboneConfig;
use super::{ArchInfo, TaskIo};
use crate::params::{ParamError, ParamMap};
use serde::{Deserialize, Serialize};

/// Where a layer or model comes from and how it is constructed: the keys `python` and
/// `python_model` share.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Spec {
    /// A `.py` file (relative to the suite file, or to the working directory) or the dotted name
    /// of a module the venv can import.
    pub module: String,
    /// The `nn.Module` subclass in it.
    pub class: String,
    /// Passed to the constructor; written `kwargs: {name: value}` or `kwargs.name: value` in a
    /// suite, and each value may be a sweep.
    pub kwargs: serde_json::Map<String, serde_json::Value>,
    /// Set by seqbench when the suite is expanded: a hash of the source files and kwargs.
    pub source_sha256: String,
}

impl Spec {
    pub fn kwargs_json(&self) -> String {
        serde_json::Value::Object(self.kwargs.clone()).to_string()
    }

    /// `file.py:Class` or `package.module:Class`.
    pub fn label(&self) -> String {
        let short = if self.module.ends_with(".py") {
            let path = std::path::Path::new(&self.module);
            path.file_name().map_or(self.module.clone(), |f| f.to_string_lossy().into_owned())
        } else {
            self.module.clone()
        };
        format!("{short}:{}", self.class)
    }

    /// The checks that need no Python; `passed` are the constructor arguments seqbench sets.
    fn validate(&self, passed: &[&str]) -> Result<(), ParamError> {
        if self.module.trim().is_empty() {
            return Err(ParamError::new(
                "module",
                "needed: a .py file (relative to the suite file) or an importable module name",
            ));
        }
        if self.class.trim().is_empty() {
            return Err(ParamError::new("class", format!("needed: the nn.Module class in {}", self.module)));
        }
        if let Some(key) = passed.iter().find(|k| self.kwargs.contains_key(**k)) {
            return Err(ParamError::new(
                format!("kwargs.{key}"),
                format!("is passed to the constructor by seqbench ({}); it cannot be a kwarg", passed.join(", ")),
            ));
        }
        if !self.source_sha256.is_empty() {
            return Err(ParamError::new("source_sha256", "is set by seqbench, not in a suite"));
        }
        Ok(())
    }
}

/// `arch: python`: the backbone's settings and the layer in each block (the resolved config
/// holds both sets of keys side by side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PythonConfig {
    pub d_model: i64,
    pub n_layers: i64,
    pub mlp_ratio: i64,
    pub dropout: f64,
    pub module: String,
    pub class: String,
    pub kwargs: serde_json::Map<String, serde_json::Value>,
    pub source_sha256: String,
}

/// The backbone's keys of a `python` entry, as written in a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PythonBackbone {
    d_model: i64,
    n_layers: i64,
    mlp_ratio: i64,
    dropout: f64,
}

impl Default for PythonBackbone {
    fn default() -> Self {
        PythonBackbone { d_model: 64, n_layers: 2, mlp_ratio: 2, dropout: 0.0 }
    }
}

impl Default for PythonConfig {
    fn default() -> Self {
        PythonConfig::new(PythonBackbone::default(), Spec::default())
    }
}

impl PythonConfig {
    fn new(b: PythonBackbone, spec: Spec) -> Self {
        let Spec { module, class, kwargs, source_sha256 } = spec;
        let (d_model, n_layers, mlp_ratio, dropout) = (b.d_model, b.n_layers, b.mlp_ratio, b.dropout);
        PythonConfig { d_model, n_layers, mlp_ratio, dropout, module, class, kwargs, source_sha256 }
    }

    pub fn backbone(&self) -> BackboneConfig {
        BackboneConfig::plain(self.d_model, self.n_layers, self.mlp_ratio, self.dropout)
    }

    pub fn spec(&self) -> Spec {
        let (module, class) = (self.module.clone(), self.class.clone());
        Spec { module, class, kwargs: self.kwargs.clone(), source_sha256: self.source_sha256.clone() }
    }
}

/// `arch: python_model`: a whole model, its sizes set through its kwargs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PythonModelConfig {
    pub spec: Spec,
}

/// A suite's parameters → the spec (module, class, kwargs.*, …) and the rest.
fn split_spec(combo: &ParamMap) -> Result<(Spec, ParamMap), ParamError> {
    let is_spec = |k: &str| matches!(k, "module" | "class" | "source_sha256") || k.starts_with("kwargs.");
    let (spec_keys, rest): (ParamMap, ParamMap) = combo.clone().into_iter().partition(|(k, _)| is_spec(k));
    let (kwargs, own): (ParamMap, ParamMap) = spec_keys.into_iter().partition(|(k, _)| k.starts_with("kwargs."));
    let mut spec: Spec = crate::params::resolve(&own)?;
    for (key, value) in kwargs {
        let value = serde_json::to_value(&value).map_err(|e| ParamError::new(key.as_str(), e.to_string()))?;
        spec.kwargs.insert(key["kwargs.".len()..].to_string(), value);
    }
    Ok((spec, rest))
}

/// A `.py` path made absolute (job processes run elsewhere), the code imported and run once on
/// a tiny input (so a broken layer stops the suite before any job starts), its hash recorded.
fn finish_spec(spec: &mut Spec, shape: &serde_json::Value, io: &TaskIo) -> Result<(), ParamError> {
    if spec.module.ends_with(".py") {
        if let Ok(path) = std::path::Path::new(&spec.module).canonicalize() {
            spec.module = path.to_string_lossy().into_owned();
        }
    }
    spec.source_sha256 = checked(spec, shape, io)?.source_sha256;
    Ok(())
}

/// `ArchInfo::resolve` of `python`.
fn resolve(combo: &ParamMap, io: &TaskIo) -> Result<serde_json::Value, ParamError> {
    let (mut spec, rest) = split_spec(combo)?;
    let backbone: PythonBackbone = crate::params::resolve(&rest)?;
    let d_model = backbone.d_model;
    let mut config = PythonConfig::new(backbone, Spec::default());
    config.backbone().validate().map_err(|(key, msg)| ParamError::new(key, msg))?;
    spec.validate(&["d_model"])?;
    finish_spec(&mut spec, &layer_shape(d_model), io)?;
    config.module = spec.module;
    config.class = spec.class;
    config.kwargs = spec.kwargs;
    config.source_sha256 = spec.source_sha256;
    serde_json::to_value(&config).map_err(|e| ParamError::new("", e.to_string()))
}

/// `ArchInfo::resolve` of `python_model`.
fn resolve_model(combo: &ParamMap, io: &TaskIo) -> Result<serde_json::Value, ParamError> {
    let (mut spec, rest) = split_spec(combo)?;
    if let Some(key) = rest.keys().next() {
        return Err(ParamError::new(
            key.as_str(),
            "python_model takes module, class and kwargs only: a whole model sets its own sizes (pass them as kwargs)",
        ));
    }
    if io.head != super::Head::PerToken || io.input_features > 0 {
        return Err(ParamError::new(
            "arch",
            "python_model needs a task of token inputs with one prediction per position (MQAR, induction, \
             language modelling, the formal languages); for this task use `arch: python`, a layer inside seqbench's backbone",
        ));
    }
    let shape = model_shape(io);
    spec.validate(&["vocab_size", "num_classes", "seq_len"])?;
    finish_spec(&mut spec, &shape, io)?;
    serde_json::to_value(PythonModelConfig { spec }).map_err(|e| ParamError::new("", e.to_string()))
}

fn layer_shape(d_model: i64) -> serde_json::Value {
    serde_json::json!({ "d_model": d_model })
}

fn model_shape(io: &TaskIo) -> serde_json::Value {
    serde_json::json!({ "vocab_size": io.vocab_size, "num_classes": io.num_classes, "seq_len": io.seq_len })
}

#[cfg(feature = "python")]
fn checked(spec: &Spec, shape: &serde_json::Value, io: &TaskIo) -> Result<host::Description, ParamError> {
    host::check(spec, shape, io.causal, io.pad_id.is_some()).map_err(|e| {
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
fn checked(_spec: &Spec, _shape: &serde_json::Value, _io: &TaskIo) -> Result<Description, ParamError> {
    Err(ParamError::new("arch", "this seqbench was built without the `python` feature (cargo build --features python)"))
}

#[cfg(not(feature = "python"))]
fn build(_vs: &tch::nn::Path, _params: &serde_json::Value, _io: &TaskIo) -> anyhow::Result<Box<dyn super::SeqModel>> {
    anyhow::bail!("this seqbench was built without the `python` feature")
}

#[cfg(not(feature = "python"))]
use build as build_model;

/// Raised (as a panic payload) when the user's layer raises in the middle of a job; the job
/// runner turns it into a `failed` record with this summary (the traceback is in the job log).
#[derive(Debug)]
pub struct LayerRaised(pub String);

pub const INFO: ArchInfo = ArchInfo {
    name: "python",
    description: "a mixer written in PyTorch (module: file.py or package.module, class: Name, kwargs: {...})",
    resolve,
    build,
};

pub const MODEL_INFO: ArchInfo = ArchInfo {
    name: "python_model",
    description: "a whole model written in PyTorch, tokens → logits (module, class, kwargs; gets vocab_size, num_classes, seq_len)",
    resolve: resolve_model,
    build: build_model,
};
