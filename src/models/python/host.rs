//! The venv's Python, embedded in seqbench (pyo3) on the libtorch seqbench runs on, so that a
//! layer written in PyTorch trains inside the shared backbone: its tensors are seqbench's
//! tensors (tch wraps and unwraps the same `at::Tensor`, no copies) and autograd runs through
//! it as in plain PyTorch. The Python side is `host.py`.
use super::Spec;
use pyo3::prelude::*;
use pyo3::types::PyModule;
use std::sync::OnceLock;
use tch::Tensor;

/// A problem with a user's layer: one line for a message or record, and the Python traceback
/// (if the user's code raised) for the log.
#[derive(Debug, Clone)]
pub struct LayerError {
    pub summary: String,
    pub detail: String,
}

impl LayerError {
    pub fn new(summary: impl Into<String>) -> Self {
        LayerError { summary: summary.into(), detail: String::new() }
    }

    fn from_python(py: Python<'_>, err: PyErr) -> Self {
        let value = err.value(py);
        if value.get_type().name().is_ok_and(|n| n == "LayerError") {
            let detail = value.getattr("detail").and_then(|d| d.extract()).unwrap_or_default();
            return LayerError { summary: value.to_string(), detail };
        }
        let traceback = err.traceback(py).and_then(|t| t.format().ok()).unwrap_or_default();
        LayerError { summary: err.to_string(), detail: format!("{traceback}{err}") }
    }
}

impl std::fmt::Display for LayerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}

/// Environment variable naming another venv whose Python and torch to use (its torch must be
/// the libtorch seqbench was built against); by default the venv seqbench was built with.
pub const VENV_ENV: &str = "SEQBENCH_PYTHON_VENV";

/// The host module and "Python X, torch Y", set up once per process.
fn host() -> Result<&'static (Py<PyModule>, String), LayerError> {
    static HOST: OnceLock<Result<(Py<PyModule>, String), LayerError>> = OnceLock::new();
    HOST.get_or_init(|| {
        Python::attach(|py| {
            let start = || -> PyResult<(Py<PyModule>, String)> {
                let module = PyModule::from_code(
                    py,
                    c_str(include_str!("host.py")).as_c_str(),
                    c"seqbench/models/python/host.py",
                    c"seqbench_host",
                )?;
                let prefix = std::env::var(VENV_ENV).unwrap_or_else(|_| env!("SEQBENCH_PYTHON_PREFIX").to_string());
                let versions = module.getattr("setup")?.call1((prefix, env!("SEQBENCH_LIBTORCH_DIR")))?.extract()?;
                Ok((module.unbind(), versions))
            };
            start().map_err(|e| LayerError::from_python(py, e))
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn c_str(text: &str) -> std::ffi::CString {
    std::ffi::CString::new(text).expect("host.py has no NUL byte")
}

/// "Python X, torch Y" of the embedded interpreter.
pub fn versions() -> Result<String, LayerError> {
    Ok(host()?.1.clone())
}

/// Calls `host.py`'s `function` with `args`.
fn call<'py, A>(py: Python<'py>, function: &str, args: A) -> Result<Bound<'py, PyAny>, LayerError>
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let module = host()?.0.bind(py);
    module.getattr(function).and_then(|f| f.call1(args)).map_err(|e| LayerError::from_python(py, e))
}

fn to_python<'py>(py: Python<'py>, t: &Tensor) -> Result<Bound<'py, PyAny>, LayerError> {
    let ptr = t.pyobject_wrap().map_err(|e| LayerError::new(format!("passing a tensor to Python: {e}")))?;
    // SAFETY: THPVariable_Wrap returns a new reference (or null, handled by `_or_err`).
    unsafe { Bound::from_owned_ptr_or_err(py, ptr as *mut pyo3::ffi::PyObject) }
        .map_err(|e| LayerError::from_python(py, e))
}

fn from_python(object: &Bound<'_, PyAny>, what: &str) -> Result<Tensor, LayerError> {
    // SAFETY: the pointer is a live Python object for the duration of the call.
    let unpacked = unsafe { Tensor::pyobject_unpack(object.as_ptr() as *mut tch::python::CPyObject) };
    match unpacked {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(LayerError::new(format!("{what} returned {}, not a tensor", object.get_type()))),
        Err(e) => Err(LayerError::new(format!("{what}: {e}"))),
    }
}

/// What the one-off check found out about a layer (`host.py`'s `check`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Description {
    pub source_sha256: String,
    pub files: Vec<String>,
    pub package: Option<String>,
    pub takes_mask: bool,
    pub has_step: bool,
    pub has_flops: bool,
}

/// Imports the layer (or model), builds it and runs it once on a tiny input (see `host.py`'s
/// `check`). `shape` is what seqbench passes to the constructor besides the kwargs.
pub fn check(spec: &Spec, shape: &serde_json::Value, causal: bool, padded: bool) -> Result<Description, LayerError> {
    described(|py| {
        let args =
            (spec.module.as_str(), spec.class.as_str(), spec.kwargs_json(), shape.to_string(), causal, padded, 0);
        call(py, "check", args)
    })
}

/// The same description for a layer already checked, without running it (`host.py`'s
/// `describe`): what a job process needs.
pub fn describe(spec: &Spec, shape: &serde_json::Value) -> Result<Description, LayerError> {
    described(|py| {
        call(py, "describe", (spec.module.as_str(), spec.class.as_str(), spec.kwargs_json(), shape.to_string()))
    })
}

/// Runs a host function that returns a description as JSON.
fn described<F>(host_call: F) -> Result<Description, LayerError>
where
    F: for<'py> FnOnce(Python<'py>) -> Result<Bound<'py, PyAny>, LayerError>,
{
    Python::attach(|py| {
        let text: String = host_call(py)?.extract().map_err(|e| LayerError::from_python(py, e))?;
        serde_json::from_str(&text).map_err(|e| LayerError::new(format!("host.py's description: {e}")))
    })
}

/// One instance of a user's layer, or of a whole model.
pub struct Layer {
    object: Py<PyAny>,
}

impl Layer {
    pub fn build(spec: &Spec, shape: &serde_json::Value, device: tch::Device) -> Result<Layer, LayerError> {
        let device = match device {
            tch::Device::Cuda(i) => format!("cuda:{i}"),
            tch::Device::Mps => "mps".to_string(),
            _ => "cpu".to_string(),
        };
        Python::attach(|py| {
            let args = (spec.module.as_str(), spec.class.as_str(), spec.kwargs_json(), shape.to_string(), device);
            Ok(Layer { object: call(py, "build", args)?.unbind() })
        })
    }

    /// (dotted name, tensor) of every parameter: the very tensors the Python module holds.
    pub fn parameters(&self) -> Result<Vec<(String, Tensor)>, LayerError> {
        Python::attach(|py| {
            let listed = call(py, "parameters", (self.object.bind(py),))?;
            let pairs: Vec<(String, Bound<'_, PyAny>)> =
                listed.extract().map_err(|e| LayerError::from_python(py, e))?;
            pairs.into_iter().map(|(name, p)| Ok((name.clone(), from_python(&p, &name)?))).collect()
        })
    }

    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>, train: bool) -> Result<Tensor, LayerError> {
        Python::attach(|py| {
            let mask = match mask {
                Some(m) => to_python(py, m)?,
                None => py.None().into_bound(py),
            };
            let y = call(py, "forward", (self.object.bind(py), to_python(py, x)?, mask, train))?;
            from_python(&y, "forward")
        })
    }

    /// `step(x, state) -> (y, state)`; the state is whatever the layer keeps, opaque here.
    pub fn step(&self, x: &Tensor, state: Option<&Py<PyAny>>) -> Result<(Tensor, Py<PyAny>), LayerError> {
        Python::attach(|py| {
            let state = state.map_or_else(|| py.None().into_bound(py), |s| s.bind(py).clone());
            let out = call(py, "step", (self.object.bind(py), to_python(py, x)?, state))?;
            let (y, state): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
                out.extract().map_err(|_| LayerError::new("step must return a pair (y, state)"))?;
            Ok((from_python(&y, "step")?, state.unbind()))
        })
    }

    pub fn flops_per_token(&self, seq_len: i64) -> Result<f64, LayerError> {
        Python::attach(|py| {
            call(py, "flops_per_token", (self.object.bind(py), seq_len))?
                .extract()
                .map_err(|e| LayerError::from_python(py, e))
        })
    }
}
