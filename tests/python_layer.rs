//! `arch: python`: the example minGRU written in PyTorch, loaded with the native `mingru`'s
//! weights, gives the same logits and, trained side by side on the same batches, the same losses
//! (so gradients reach the Python module's parameters and the optimiser updates the very tensors
//! Python holds); broken layers stop the suite before any job with a message naming the file,
//! class and what was expected; a layer that raises mid-job leaves a `failed` record.
#![cfg(feature = "python")]
use seqbench::models::{self, SeqModel, TaskIo};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

fn example(name: &str) -> String {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("examples/python")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn model(arch: &str, params: serde_json::Value, io: &TaskIo) -> (nn::VarStore, Box<dyn SeqModel>) {
    let info = models::find(arch).unwrap();
    let resolved = (info.resolve)(&serde_json::from_value(params).unwrap(), io).unwrap_or_else(|e| panic!("{e:?}"));
    let vs = nn::VarStore::new(Device::Cpu);
    let built = (info.build)(&vs.root(), &resolved, io).unwrap_or_else(|e| panic!("{e:#}"));
    (vs, built)
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let scale = a.abs().max().double_value(&[]).max(1e-12);
    (a - b).abs().max().double_value(&[]) / scale
}

#[test]
fn python_mingru_matches_the_native_one_in_logits_and_training() {
    let io = TaskIo::per_token(32, 32, 40, true);
    let shape = json!({"d_model": 32, "n_layers": 2, "mlp_ratio": 2});
    let mut native_params = shape.clone();
    native_params["scan"] = json!("reference");
    let mut python_params = shape;
    python_params["module"] = json!(example("mingru.py"));
    python_params["class"] = json!("MinGRU");
    tch::manual_seed(0);
    let (native_vs, native) = model("mingru", native_params, &io);
    let (mut python_vs, python) = model("python", python_params, &io);
    let names = |vs: &nn::VarStore| {
        let mut n: Vec<String> = vs.variables().into_keys().collect();
        n.sort();
        n
    };
    assert_eq!(names(&native_vs), names(&python_vs), "the same parameters under the same names");
    assert_eq!(python_vs.trainable_variables().len(), native_vs.trainable_variables().len());
    python_vs.copy(&native_vs).unwrap();

    let x = Tensor::randint(32, [4, 40], (Kind::Int64, Device::Cpu));
    let y = Tensor::randint(32, [4, 40], (Kind::Int64, Device::Cpu));
    let logits = |m: &dyn SeqModel| tch::no_grad(|| m.forward_t(&x, false));
    let diff = max_rel_diff(&logits(&*native), &logits(&*python));
    assert!(diff <= 1e-5, "logits differ by {diff:e} (relative to the largest)");

    let before: Vec<(String, Tensor)> =
        python_vs.variables().into_iter().map(|(k, t)| (k, t.detach().copy())).collect();
    let mut native_opt = nn::adam(0.9, 0.999, 0.0).build(&native_vs, 1e-2).unwrap();
    let mut python_opt = nn::adam(0.9, 0.999, 0.0).build(&python_vs, 1e-2).unwrap();
    let loss = |m: &dyn SeqModel| m.forward_t(&x, true).view([-1, 32]).cross_entropy_for_logits(&y.view([-1]));
    for step in 0..5 {
        let (a, b) = (loss(&*native), loss(&*python));
        let (la, lb) = (a.double_value(&[]), b.double_value(&[]));
        assert!((la - lb).abs() <= 1e-5 * la.abs(), "step {step}: loss {la} native, {lb} python");
        native_opt.backward_step(&a);
        python_opt.backward_step(&b);
    }
    let after = python_vs.variables();
    for (name, before) in &before {
        let moved = (&after[name] - before).abs().max().double_value(&[]);
        assert!(moved > 0.0, "{name} did not change in training");
    }
    // The trained Python module computes with the updated tensors: still the native model.
    let diff = max_rel_diff(&logits(&*native), &logits(&*python));
    assert!(diff <= 1e-4, "after training, logits differ by {diff:e}");
}

#[test]
fn python_mingru_steps_as_it_runs_in_parallel() {
    let io = TaskIo::per_token(16, 16, 12, true);
    let params = json!({"d_model": 16, "n_layers": 2, "module": example("mingru.py"), "class": "MinGRU"});
    let (_vs, m) = model("python", params, &io);
    assert!(m.can_step());
    let x = Tensor::randint(16, [2, 12], (Kind::Int64, Device::Cpu));
    let (parallel, stepped) = tch::no_grad(|| {
        let mut states = Vec::new();
        let steps: Vec<Tensor> = (0..12).map(|t| m.step(&x.select(1, t), t, &mut states)).collect();
        (m.forward_t(&x, false), Tensor::stack(&steps, 1))
    });
    let diff = max_rel_diff(&parallel, &stepped);
    assert!(diff <= 1e-5, "step vs parallel {diff:e}");
    assert!(m.flops_per_token(12) > 0.0, "the layer's own flops_per_token is used");
    assert!(m.implementation(Device::Cpu, Kind::Float).contains("mingru.py:MinGRU (source sha256 "));
}

fn seqbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqbench")).args(args).current_dir(cwd).output().expect("run seqbench")
}

const BROKEN: &str = r#"
import torch
from torch import nn

class Fine(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)
    def forward(self, x):
        return self.proj(x)

class RaisesInInit(Fine):
    def __init__(self, d_model, width=3):
        raise ValueError(f"width {width} is not a power of two")

class TwoInputs(Fine):
    def forward(self, x, y):
        return self.proj(x) + y

class Narrow(Fine):
    def forward(self, x):
        return self.proj(x)[..., :1]

class Peeks(Fine):
    def forward(self, x):
        return self.proj(x.flip(1))

class Dropped(Fine):
    def __init__(self, d_model):
        super().__init__(d_model)
        self.drop = nn.Dropout(0.5)
    def forward(self, x):
        return self.drop(self.proj(x))

class FailsInTraining(Fine):
    def forward(self, x):
        if self.training and x.shape[0] > 2:
            raise RuntimeError("boom while training")
        return self.proj(x)
"#;

fn suite(dir: &Path, class: &str, module: &str, task: &str) -> PathBuf {
    let path = dir.join(format!("{class}.yaml"));
    let text = format!(
        "name: {class}\ndefaults: {{steps: 4, batch_size: 8, device: cpu}}\n\
         models:\n  - arch: python\n    module: {module}\n    class: {class}\n    d_model: 16\n    n_layers: 1\n\
         tasks:\n{task}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

const MQAR: &str = "  - task: mqar\n    vocab_size: 32\n    seq_len: 16\n    num_kv_pairs: 2\n    train_examples: 64\n    test_examples: 16\n";

#[test]
fn broken_layers_stop_the_suite_with_a_message_naming_file_and_class() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("layers.py"), BROKEN).unwrap();
    let listops = "  - task: listops\n    min_length: 16\n    max_length: 64\n    train_examples: 32\n    val_examples: 8\n    test_examples: 8\n";
    let cases = [
        ("Fine", "missing.py", MQAR, "module: no file missing.py"),
        (
            "Absent",
            "layers.py",
            MQAR,
            "has no class `Absent` (its nn.Module classes: Dropped, FailsInTraining, Fine, Narrow",
        ),
        (
            "RaisesInInit",
            "layers.py",
            MQAR,
            "RaisesInInit(d_model=16) raised ValueError: width 3 is not a power of two",
        ),
        ("TwoInputs", "layers.py", MQAR, "TwoInputs.forward raised TypeError:"),
        ("Narrow", "layers.py", MQAR, "Narrow.forward returned shape (2, 6, 1); expected the input's shape (2, 6, 16)"),
        ("Peeks", "layers.py", MQAR, "Peeks is not causal"),
        ("Fine", "layers.py", listops, "Fine.forward takes no `mask` argument, but this task pads its sequences"),
    ];
    for (class, module, task, expected) in cases {
        let path = suite(tmp.path(), class, module, task);
        let out = seqbench(&["plan", path.to_str().unwrap()], tmp.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{class}: {err}");
        let last = err.trim_end().lines().last().unwrap_or_default();
        assert!(last.starts_with("Error: ") && last.contains(&format!("{class}.yaml")), "{class}: {err}");
        assert!(last.contains(expected), "{class}: expected {expected:?} in {last}");
        assert!(!err.contains("panicked"), "{class}: {err}");
    }
    // Dropout makes two calls differ in training mode; the causality check runs in eval mode.
    let path = suite(tmp.path(), "Dropped", "layers.py", MQAR);
    let out = seqbench(&["plan", path.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "a causal layer with dropout passes: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_layer_that_raises_mid_job_is_a_failed_record_with_the_exception() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("layers.py"), BROKEN).unwrap();
    let path = suite(tmp.path(), "FailsInTraining", "layers.py", MQAR);
    let out = seqbench(&["run", path.to_str().unwrap(), "--out", "runs", "--quiet"], tmp.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked at"), "{err}");
    let run = std::fs::read_dir(tmp.path().join("runs/FailsInTraining")).unwrap().next().unwrap().unwrap().path();
    let records = std::fs::read_to_string(run.join("records.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
    assert_eq!(record["status"], "failed", "{record}");
    let reason = record["reason"].as_str().unwrap();
    assert!(reason.contains("python layer layers.py:FailsInTraining: RuntimeError: boom while training"), "{reason}");
    let log = std::fs::read_to_string(run.join(record["log_file"].as_str().unwrap())).unwrap();
    assert!(log.contains("Traceback") && log.contains("layers.py"), "the traceback is in the job log: {log}");
}

fn planned_ids(suite: &Path, cwd: &Path) -> Vec<String> {
    let out = seqbench(&["plan", suite.to_str().unwrap()], cwd);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().filter(|l| l.contains(" mqar ")).map(|l| l.split_whitespace().next().unwrap().to_string()).collect()
}

#[test]
fn a_changed_layer_source_or_kwargs_is_a_different_job() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layers.py");
    std::fs::write(&layer, BROKEN).unwrap();
    let path = suite(tmp.path(), "Fine", "layers.py", MQAR);
    let first = planned_ids(&path, tmp.path());
    assert_eq!(first.len(), 1);
    assert_eq!(planned_ids(&path, tmp.path()), first, "the same source is the same job");
    std::fs::write(&layer, format!("{BROKEN}\n# a comment changes the source\n")).unwrap();
    let edited = planned_ids(&path, tmp.path());
    assert_ne!(edited, first, "an edited layer is a new job");
    // kwargs, as a map in the suite, sweep like any parameter and enter the identity.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("    class: Fine\n", "    class: Mixed\n    kwargs: {scale: [1.0, 2.0]}\n");
    std::fs::write(&path, text).unwrap();
    let mixed = "\nclass Mixed(Fine):\n    def __init__(self, d_model, scale):\n        super().__init__(d_model)\n        self.scale = scale\n";
    std::fs::write(&layer, format!("{BROKEN}{mixed}")).unwrap();
    let swept = planned_ids(&path, tmp.path());
    assert_eq!(swept.len(), 2, "two values of kwargs.scale, two jobs: {swept:?}");
    assert_ne!(swept[0], swept[1]);
}

#[test]
fn a_whole_model_in_pytorch_trains_steps_and_is_refused_where_it_cannot_run() {
    let tmp = tempfile::tempdir().unwrap();
    let model = |extra: &str, task: &str| {
        format!(
            "name: whole\ndefaults: {{steps: 30, batch_size: 16, device: cpu, generate_tokens: 8}}\n\
             models:\n  - arch: python_model\n    module: {}\n    class: GruLM\n    kwargs: {{d_model: 32}}\n{extra}\
             tasks:\n{task}",
            example("gru_lm.py")
        )
    };
    let path = tmp.path().join("whole.yaml");
    std::fs::write(&path, model("", MQAR)).unwrap();
    let out = seqbench(&["run", path.to_str().unwrap(), "--out", "runs", "--quiet"], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = std::fs::read_dir(tmp.path().join("runs/whole")).unwrap().next().unwrap().unwrap().path();
    let records = std::fs::read_to_string(run.join("records.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
    assert_eq!(record["status"], "ok", "{record}");
    assert!(record["gen_tokens_per_s"].as_f64().unwrap() > 0.0, "its step() generates: {record}");
    assert!(record["flops_per_token"].as_f64().unwrap() > 0.0, "its flops_per_token() is used: {record}");
    assert!(record["implementation"].as_str().unwrap().starts_with("python model gru_lm.py:GruLM (source sha256 "));
    let listops = "  - task: listops\n    min_length: 16\n    max_length: 64\n    train_examples: 32\n    val_examples: 8\n    test_examples: 8\n";
    for (extra, task, expected) in [
        ("    d_model: 32\n", MQAR, "python_model takes module, class and kwargs only"),
        ("", listops, "python_model needs a task of token inputs with one prediction per position"),
        ("    kwargs.vocab_size: 3\n", MQAR, "is passed to the constructor by seqbench"),
    ] {
        std::fs::write(&path, model(extra, task)).unwrap();
        let out = seqbench(&["plan", path.to_str().unwrap()], tmp.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expected) && err.contains("whole.yaml"), "expected {expected:?} in {err}");
    }
}
