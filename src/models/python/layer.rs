//! What `python` and `python_model` share once the suite is expanded: a user's layer (or model)
//! built in the job process, its parameters registered, and the calls into it, where an error
//! from Python ends the job as `failed`.
use super::host::{self, Description, LayerError};
use super::{LayerRaised, Spec};
use crate::models::MixerState;
use tch::{nn, Tensor};

/// One instance of a user's layer or model, with what seqbench knows of it.
pub(super) struct Loaded {
    layer: host::Layer,
    /// "layer file.py:Class" or "model file.py:Class".
    label: String,
    pub(super) description: Description,
    versions: String,
}

impl Loaded {
    /// The layer's description (its source must be what the suite's expansion hashed) and
    /// "Python X, torch Y": what every instance built from `spec` shares.
    pub(super) fn describe(
        label: &str,
        spec: &Spec,
        shape: &serde_json::Value,
    ) -> anyhow::Result<(Description, String)> {
        let description = host::describe(spec, shape).map_err(|e| anyhow::anyhow!("python {label}: {}", e.summary))?;
        anyhow::ensure!(
            description.source_sha256 == spec.source_sha256,
            "python {label}: its source ({}) or kwargs changed since the suite was expanded (hash {} then, {} now); run the suite again to make it a new job",
            description.files.join(", "),
            spec.source_sha256,
            description.source_sha256
        );
        Ok((description, host::versions().map_err(|e| anyhow::anyhow!("{e}"))?))
    }

    /// Builds one instance on `device`.
    pub(super) fn build(
        label: &str,
        spec: &Spec,
        shape: &serde_json::Value,
        device: tch::Device,
        (description, versions): &(Description, String),
    ) -> anyhow::Result<Loaded> {
        let layer =
            host::Layer::build(spec, shape, device).map_err(|e| anyhow::anyhow!("python {label}: {}", e.summary))?;
        let (description, versions) = (description.clone(), versions.clone());
        Ok(Loaded { layer, label: label.to_string(), description, versions })
    }

    /// Adds the parameters under `path`, as shallow copies of the very tensors Python holds: the
    /// optimiser updates what Python computes with.
    pub(super) fn register(&self, path: &nn::Path) -> anyhow::Result<()> {
        let parameters =
            self.layer.parameters().map_err(|e| anyhow::anyhow!("python {}: {}", self.label, e.summary))?;
        for (name, tensor) in parameters {
            let mut parts: Vec<&str> = name.split('.').collect();
            let leaf = parts.pop().expect("split yields one part at least");
            let owner = parts.iter().fold(path.clone(), |p, part| p.sub(*part));
            let _shared = owner.add(leaf, tensor, true);
        }
        Ok(())
    }

    /// Ends the job as `failed` with `error` (the traceback goes to the job log).
    pub(super) fn raise(&self, error: LayerError) -> ! {
        if !error.detail.is_empty() {
            eprintln!("{}", error.detail.trim_end());
        }
        std::panic::panic_any(LayerRaised(format!("python {}: {}", self.label, error.summary)))
    }

    pub(super) fn forward(&self, xs: &Tensor, mask: Option<&Tensor>, train: bool) -> Tensor {
        self.layer.forward(xs, mask, train).unwrap_or_else(|e| self.raise(e))
    }

    /// One step through the layer's own `step`, its state kept opaque in `state`.
    pub(super) fn step(&self, x: &Tensor, state: &mut MixerState) -> Tensor {
        let previous = state.get::<PythonState>().map(|s| &s.0);
        let (y, next) = self.layer.step(x, previous).unwrap_or_else(|e| self.raise(e));
        state.set(PythonState(next));
        y
    }

    /// The layer's own `flops_per_token(seq_len)` if it has one, else unknown (not a number:
    /// FLOPs and MFU are recorded as missing).
    pub(super) fn flops_per_token(&self, seq_len: i64) -> f64 {
        if !self.description.has_flops {
            return f64::NAN;
        }
        self.layer.flops_per_token(seq_len).unwrap_or_else(|e| self.raise(e))
    }

    /// The record's `implementation`.
    pub(super) fn implementation(&self) -> String {
        let package = self.description.package.as_deref().map(|p| format!(", {p}")).unwrap_or_default();
        format!("python {} (source sha256 {}; {}{package})", self.label, self.description.source_sha256, self.versions)
    }
}

/// The Python layer's recurrent state, opaque to seqbench.
pub(super) struct PythonState(pub(super) pyo3::Py<pyo3::PyAny>);
