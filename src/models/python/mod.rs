//! `arch: python`: a mixer written in PyTorch (an `nn.Module` mapping (batch, L, d_model) to the
//! same shape), one instance per block of the shared backbone, trained and measured like the
//! native mixers. Its source files and kwargs are hashed into the job's identity, so a changed
//! layer is a different job. See docs/python-layers.md.
#[cfg(feature = "python")]
mod host;
#[cfg(feature = "python")]
mod mixer;
#[cfg(feature = "python")]
use mixer::build;

use super::backbone::BackboneConfig;
use super::{ArchInfo, TaskIo};
use crate::params::{ParamError, ParamMap};
use serde::{Deserialize, Serialize};

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
    pub fn backbone(&self) -> BackboneConfig {
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
fn checked(config: &PythonConfig, io: &TaskIo) -> Result<host::Description, ParamError> {
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

#[cfg(not(feature = "python"))]
fn build(_vs: &tch::nn::Path, _params: &serde_json::Value, _io: &TaskIo) -> anyhow::Result<Box<dyn super::SeqModel>> {
    anyhow::bail!("this seqbench was built without the `python` feature")
}

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
