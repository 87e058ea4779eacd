//! Suites: a YAML file naming models, tasks, training defaults and sweeps. [`load`] parses and
//! checks the file (presets resolved); [`expand`] turns it into validated jobs.
mod expand;
mod load;
pub mod locate;

pub use expand::expand;
pub use load::{load, load_str, BUNDLED_PRESETS};

use crate::error::InputError;
use crate::params::ParamMap;
use locate::Locator;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The file as written; every level refuses unknown keys (parameter maps are checked per
/// model/task type once their kind is known).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// Identifier used in result paths: letters, digits, `-`, `_`, `.`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where dataset files are looked for first (then $SEQBENCH_DATA, then ../shared/datasets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Training settings for every job (see `job::TrainConfig`), plus `seeds`.
    #[serde(default)]
    pub defaults: ParamMap,
    /// `arch:` (or `preset:`), optional `name:`, then architecture parameters.
    pub models: Vec<ParamMap>,
    /// `task:`, optional `name:` and `overrides:` (of defaults), then task parameters.
    pub tasks: Vec<ParamMap>,
}

/// Where a value was written: file, its locator, key path.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: Arc<PathBuf>,
    pub locator: Arc<Locator>,
    pub path: String,
}

impl Origin {
    pub fn child(&self, key: &str) -> Origin {
        let path = if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) };
        Origin { path, ..self.clone() }
    }

    pub fn error(&self, message: impl Into<String>) -> InputError {
        InputError::new(message).in_file(self.file.as_ref()).at_key(&self.path).at(self.locator.find(&self.path))
    }
}

/// A model or task entry after presets are merged.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Registry name (architecture or task).
    pub kind: String,
    /// Display name.
    pub label: String,
    pub params: ParamMap,
    /// Tasks only: overrides of the suite defaults.
    pub overrides: ParamMap,
    /// The entry itself (e.g. `models[2]`), and where each of its keys was written.
    pub origin: Origin,
    pub key_origins: BTreeMap<String, Origin>,
}

impl Entry {
    pub fn key_error(&self, key: &str, message: impl Into<String>) -> InputError {
        match self.key_origins.get(key) {
            Some(o) => o.error(message),
            None if key.is_empty() => self.origin.error(message),
            None => self.origin.child(key).error(message),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Suite {
    pub file: SuiteFile,
    pub path: PathBuf,
    pub origin: Origin,
    pub models: Vec<Entry>,
    pub tasks: Vec<Entry>,
}

impl Suite {
    pub fn name(&self) -> &str {
        &self.file.name
    }

    /// The suite with presets inlined, as written to `suite.resolved.yaml`.
    pub fn resolved_file(&self) -> SuiteFile {
        let to_map = |e: &Entry, kind_key: &str| {
            let mut m = e.params.clone();
            m.insert(kind_key.into(), e.kind.clone().into());
            m.insert("name".into(), e.label.clone().into());
            if !e.overrides.is_empty() {
                let o: serde_yaml::Mapping = e.overrides.iter().map(|(k, v)| (k.clone().into(), v.clone())).collect();
                m.insert("overrides".into(), serde_yaml::Value::Mapping(o));
            }
            m
        };
        SuiteFile {
            models: self.models.iter().map(|e| to_map(e, "arch")).collect(),
            tasks: self.tasks.iter().map(|e| to_map(e, "task")).collect(),
            ..self.file.clone()
        }
    }
}
