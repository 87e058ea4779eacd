//! Mixed precision on the CPU: autocast really runs the matmuls in bfloat16 (the logits differ
//! from float32, within bfloat16's tolerance), every architecture takes a training step under it,
//! a bfloat16 job trains (its loss falls on a corpus that repeats a sentence), and float16,
//! which libtorch's CPU kernels cannot run, is refused with a message (loss scaling is unit-tested
//! in runner::precision; float16 runs on CUDA, see scripts/gpu_check.sh).
use seqbench::models::{self, TaskIo};
use seqbench::runner::precision::{self, Precision};
use serde_json::json;
use std::process::Command;
use tch::{nn, Device, Kind, Tensor};

fn logits(arch: &str, params: serde_json::Value, precision: Precision) -> Tensor {
    tch::manual_seed(0);
    let io = TaskIo::per_token(32, 32, 64, true);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = (models::find(arch).unwrap().build)(&vs.root(), &params, &io).unwrap();
    let x = Tensor::randint(32, [4, 64], (Kind::Int64, Device::Cpu));
    let _autocast = precision.autocast(Device::Cpu).unwrap();
    tch::no_grad(|| model.forward_t(&x, false)).to_kind(Kind::Float)
}

#[test]
fn bfloat16_autocast_agrees_with_float32_within_its_tolerance() {
    if !precision::available() {
        eprintln!("SKIPPED: this build has no mixed-precision shim (no libtorch headers)");
        return;
    }
    for (arch, params) in [
        ("transformer", json!({"d_model": 64, "n_layers": 2, "n_heads": 4})),
        ("mamba", json!({"d_model": 64, "n_layers": 2})),
        ("gla", json!({"d_model": 64, "n_layers": 2, "n_heads": 4})),
    ] {
        let full = logits(arch, params.clone(), Precision::Float32);
        let half = logits(arch, params, Precision::Bfloat16);
        let scale = full.abs().max().double_value(&[]);
        let diff = (&full - &half).abs().max().double_value(&[]);
        // bfloat16 keeps 8 bits of mantissa (relative error 2^-8 per rounding); two layers of
        // matmuls and the head compound a few of them.
        assert!(diff > 0.0, "{arch}: autocast changed nothing (still float32?)");
        assert!(diff < 0.05 * scale, "{arch}: bfloat16 logits differ by {diff} (scale {scale})");
    }
    // Outside the region autocast is off again.
    let a = logits("transformer", json!({"d_model": 64, "n_layers": 2, "n_heads": 4}), Precision::Float32);
    let b = logits("transformer", json!({"d_model": 64, "n_layers": 2, "n_heads": 4}), Precision::Float32);
    assert_eq!((&a - &b).abs().max().double_value(&[]), 0.0);
}

#[test]
fn every_architecture_trains_a_step_under_bfloat16_autocast() {
    if !precision::available() {
        eprintln!("SKIPPED: this build has no mixed-precision shim (no libtorch headers)");
        return;
    }
    let io = TaskIo::per_token(32, 32, 40, true);
    for info in models::registry() {
        // Each architecture's defaults, resolved as a suite would; those that need more than a
        // causal token task (dlinear: fixed time maps) say so and are left out.
        let Ok(params) = (info.resolve)(&Default::default(), &io) else { continue };
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = (info.build)(&vs.root(), &params, &io).unwrap();
        let x = Tensor::randint(32, [2, 40], (Kind::Int64, Device::Cpu));
        let logits = {
            let _autocast = Precision::Bfloat16.autocast(Device::Cpu).unwrap();
            model.forward_t(&x, true)
        };
        let loss = logits.to_kind(Kind::Float).square().mean(Kind::Float);
        loss.backward();
        let grads: f64 = vs
            .trainable_variables()
            .iter()
            .map(|v| v.grad())
            .filter(|g| g.defined())
            .map(|g| g.abs().sum(Kind::Double).double_value(&[]))
            .sum();
        assert!(
            loss.double_value(&[]).is_finite() && grads.is_finite() && grads > 0.0,
            "{}: loss {loss:?}, grads {grads}",
            info.name
        );
    }
}

#[test]
fn a_bfloat16_job_trains_and_float16_is_refused_on_the_cpu() {
    if !precision::available() {
        eprintln!("SKIPPED: this build has no mixed-precision shim (no libtorch headers)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("fox.txt"), "the quick brown fox jumps over the lazy dog. ".repeat(200)).unwrap();
    std::fs::write(
        tmp.path().join("s.yaml"),
        "name: amp\ndefaults: { steps: 100, batch_size: 16, lr: 3.0e-3, seeds: [0], generate_tokens: 0, threads: 1, dtype: [bfloat16, float16] }\nmodels:\n  - { arch: transformer, d_model: 32, n_layers: 1, n_heads: 2 }\ntasks:\n  - { task: lm, corpus: fox.txt, seq_len: 64, train_windows: 400, eval_windows: 16 }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seqbench"))
        .args(["run", "s.yaml", "--out", "res", "-q"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "one job not ok: {}", String::from_utf8_lossy(&out.stderr));
    let run = tmp.path().join("res/amp").join(std::fs::read_link(tmp.path().join("res/amp/latest")).unwrap());
    let records = std::fs::read_to_string(run.join("records.jsonl")).unwrap();
    let by_dtype = |dtype: &str| -> serde_json::Value {
        records
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|r| r["params"]["train.dtype"] == dtype)
            .unwrap()
    };
    let r = by_dtype("bfloat16");
    assert_eq!(r["status"], "ok", "{r}");
    let curve = r["loss_curve"].as_array().unwrap();
    let (first, last) = (curve[0]["loss"].as_f64().unwrap(), curve.last().unwrap()["loss"].as_f64().unwrap());
    assert!(last < 0.5 * first, "the loss falls: {first} → {last}");
    // The record says which attention kernel libtorch chose for the job's dtype.
    let path = r["implementation"].as_str().unwrap();
    assert!(["flash", "math", "memory-efficient"].iter().any(|b| path == format!("attention: SDPA {b}")), "{path}");
    let r = by_dtype("float16");
    assert_eq!(r["status"], "failed", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("dtype float16 on the CPU"), "{r}");
}
