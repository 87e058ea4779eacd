//! Every registered architecture, built through the registry as a suite would build it:
//! the parallel and recurrent forms agree, gradients match finite differences, and a small
//! model learns a task that needs sequence mixing.
use seqbench::models::{self, Head, SeqModel, TaskIo};
use serde_json::json;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// Small but non-trivial settings per architecture: state sizes and chunk lengths small enough
/// that the chunked scans chain several chunks at the lengths used below.
fn tiny_params(arch: &str, d_model: i64, n_layers: i64) -> serde_json::Value {
    let mut p = json!({ "d_model": d_model, "n_layers": n_layers });
    let extra = match arch {
        "transformer" => json!({ "n_heads": 2 }),
        "s4d" => json!({ "d_state": 8 }),
        "mamba" => json!({ "d_state": 4, "mlp_ratio": 2 }),
        "mamba2" => json!({ "d_state": 8, "headdim": 8, "chunk": 16, "mlp_ratio": 2 }),
        "lru" => json!({ "d_state": 8 }),
        "mingru" | "minlstm" => json!({ "expand": 2 }),
        "retnet" => json!({ "n_heads": 2, "chunk": 16 }),
        "gla" => json!({ "n_heads": 2, "chunk": 8, "use_short_conv": true }),
        "deltanet" | "gated_deltanet" | "deltaproduct" => json!({ "n_heads": 2, "chunk": 16 }),
        "hgrn2" => json!({ "expand_ratio": 8, "chunk": 8 }),
        "rwkv6" => json!({ "n_heads": 2, "proj_low_rank_dim": 4, "gate_low_rank_dim": 4, "chunk": 8 }),
        "rwkv7" => json!({
            "head_dim": 8, "decay_low_rank_dim": 4, "a_low_rank_dim": 4, "v_low_rank_dim": 4,
            "gate_low_rank_dim": 4, "chunk": 8
        }),
        "mlstm" => json!({ "n_heads": 2, "round_to": 1, "chunk": 16 }),
        "linear" => json!({ "kernel": 3 }),
        "hawk" => json!({ "num_heads": 2, "lru_width": 24 }),
        "hybrid" => json!({ "layers": "mamba,transformer", "mamba.d_state": 4, "transformer.n_heads": 2 }),
        "local_attention" => json!({ "n_heads": 2, "window": 8 }),
        "slstm" => json!({ "n_heads": 2 }),
        _ => json!({}),
    };
    p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    p
}

fn build(vs: &nn::VarStore, arch: &str, params: &serde_json::Value, io: &TaskIo) -> Box<dyn SeqModel> {
    let info = models::find(arch).unwrap_or_else(|| panic!("{arch} is registered"));
    (info.build)(&vs.root(), params, io).unwrap_or_else(|e| panic!("{arch}: {e:#}"))
}

/// The native architectures (the user-code ones are checked in tests/python_layer.rs).
fn all_archs() -> Vec<&'static str> {
    models::native_names()
}

/// Every arch at its tiny settings, plus the transformer's other position schemes.
fn variants(d_model: i64, n_layers: i64) -> Vec<(&'static str, serde_json::Value)> {
    let mut v: Vec<_> = all_archs().into_iter().map(|a| (a, tiny_params(a, d_model, n_layers))).collect();
    for positions in ["learned", "sinusoidal", "none"] {
        let mut p = tiny_params("transformer", d_model, n_layers);
        p["positions"] = json!(positions);
        v.push(("transformer", p));
    }
    v
}

#[test]
fn parallel_and_recurrent_forms_agree() {
    let io = TaskIo::per_token(13, 13, 80, true);
    for (arch, params) in variants(16, 2) {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = build(&vs, arch, &params, &io);
        if arch == "linear" {
            assert!(!model.can_step(), "linear has no recurrent form");
            continue;
        }
        assert!(model.can_step(), "{arch} must have a recurrent form");
        let x = Tensor::randint(io.vocab_size, [3, io.seq_len], (Kind::Int64, Device::Cpu));
        let (parallel, stepped) = tch::no_grad(|| {
            let mut states = Vec::new();
            let steps: Vec<Tensor> = (0..io.seq_len).map(|t| model.step(&x.select(1, t), t, &mut states)).collect();
            (model.forward_t(&x, false), Tensor::stack(&steps, 1))
        });
        let diff = (&parallel - &stepped).abs().max().double_value(&[]);
        let scale = parallel.abs().max().double_value(&[]);
        assert!(
            diff <= 1e-5 * scale.max(1.0),
            "{arch} {params}: parallel vs step max |Δ| = {diff:e} (logits up to {scale})"
        );
    }
}

/// Central differences in float64 on a few entries of every mixer parameter, against autograd.
#[test]
fn mixer_gradients_match_finite_differences() {
    let io = TaskIo::per_token(7, 5, 9, true);
    for arch in all_archs() {
        tch::manual_seed(1);
        let mut vs = nn::VarStore::new(Device::Cpu);
        // RWKV-7's value residual crosses layers: two, so that its second layer mixes in the first's.
        let layers = if arch == "rwkv7" { 2 } else { 1 };
        let model = build(&vs, arch, &tiny_params(arch, 8, layers), &io);
        vs.set_kind(Kind::Double);
        let x = Tensor::randint(io.vocab_size, [2, io.seq_len], (Kind::Int64, Device::Cpu));
        let w = Tensor::randn([2, io.seq_len, io.num_classes], (Kind::Double, Device::Cpu));
        let loss = || (model.forward_t(&x, false) * &w).sum(Kind::Double);
        loss().backward();
        let mut checked = 0;
        for (name, var) in vs.variables() {
            if !name.contains(".mixer.") {
                continue;
            }
            let grad = var.grad().view([-1]);
            let n = var.numel() as i64;
            for idx in [0, n / 2, n - 1] {
                let flat = var.view([-1]);
                let original = flat.double_value(&[idx]);
                let eps = 1e-6;
                let at = |value: f64| {
                    let _ = tch::no_grad(|| flat.get(idx).fill_(value));
                    tch::no_grad(|| loss().double_value(&[]))
                };
                let numeric = (at(original + eps) - at(original - eps)) / (2.0 * eps);
                at(original);
                let analytic = grad.double_value(&[idx]);
                assert!(
                    (numeric - analytic).abs() <= 1e-6 + 1e-4 * analytic.abs(),
                    "{arch} {name}[{idx}]: autograd {analytic:e}, finite difference {numeric:e}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 3, "{arch}: no mixer parameters found");
    }
}

/// Predicting the previous token needs information to move along the sequence: a model whose
/// mixer does not work (or does not train) stays near the uniform loss ln V.
#[test]
fn every_model_learns_to_recall_the_previous_token() {
    let (vocab, len, batch) = (16i64, 16i64, 32i64);
    let io = TaskIo::per_token(vocab, vocab, len, true);
    let uniform = (vocab as f64).ln();
    for arch in all_archs() {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = build(&vs, arch, &tiny_params(arch, 32, 1), &io);
        let mut opt = nn::adam(0.9, 0.999, 0.0).build(&vs, 1e-2).unwrap();
        let mut last = Vec::new();
        for step in 0..200 {
            let x = Tensor::randint(vocab, [batch, len], (Kind::Int64, Device::Cpu));
            let y =
                Tensor::cat(&[Tensor::full([batch, 1], -100, (Kind::Int64, Device::Cpu)), x.narrow(1, 0, len - 1)], 1);
            let logits = model.forward_t(&x, true);
            let loss = logits.view([-1, vocab]).cross_entropy_for_logits(&y.view([-1]));
            opt.backward_step(&loss);
            if step >= 190 {
                last.push(loss.double_value(&[]));
            }
        }
        let final_loss = last.iter().sum::<f64>() / last.len() as f64;
        assert!(final_loss < 0.3 * uniform, "{arch}: loss {final_loss:.3} after 200 steps (uniform {uniform:.3})");
    }
}

/// A classifier's output for an example must not depend on the padding after it: the same
/// tokens, padded to 8 or not padded at all, give the same pooled logits (mean and last pools,
/// causal and bidirectional models).
#[test]
fn padding_does_not_change_pooled_outputs() {
    let pad = 0;
    let real = Tensor::from_slice(&[3i64, 5, 1, 4, 2, 6, 2, 3, 1, 5]).view([2, 5]);
    let padded = Tensor::cat(&[&real, &Tensor::full([2, 3], pad, (Kind::Int64, Device::Cpu))], 1);
    let mut cases = variants(16, 2);
    // `linear` has no padding mask; local attention is causal-only and pooled heads are not.
    cases.retain(|(arch, _)| !["linear", "local_attention"].contains(arch));
    cases.push(("s4d", json!({ "d_model": 16, "d_state": 8, "bidirectional": true })));
    for head in [Head::MeanPool, Head::LastPool] {
        for (arch, params) in &cases {
            let io = TaskIo { head, pad_id: Some(pad), ..TaskIo::per_token(7, 4, 8, false) };
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let model = build(&vs, arch, params, &io);
            let (with_padding, without) =
                tch::no_grad(|| (model.forward_t(&padded, false), model.forward_t(&real, false)));
            assert_eq!(with_padding.size(), [2, 1, 4], "{arch}: pooled logits are (batch, 1, classes)");
            let diff = (with_padding - without).abs().max().double_value(&[]);
            assert!(diff <= 1e-5, "{arch} {head:?} {params}: padding changed the output by {diff:e}");
        }
    }
}

/// Models that cannot honour padding say so when the suite is loaded.
#[test]
fn models_that_cannot_mask_padding_refuse_padded_tasks() {
    let io = TaskIo { head: Head::MeanPool, pad_id: Some(0), ..TaskIo::per_token(7, 4, 8, false) };
    for (arch, key, value) in [("lstm", "bidirectional", true), ("gru", "bidirectional", true)] {
        let mut combo = seqbench::params::ParamMap::new();
        combo.insert(key.into(), serde_yaml::Value::from(value));
        let err = (models::find(arch).unwrap().resolve)(&combo, &io).expect_err("padding must be refused");
        assert!(format!("{err:?}").contains("pads its inputs"), "{arch}: {err:?}");
    }
    let err = (models::find("linear").unwrap().resolve)(&Default::default(), &io).expect_err("refused");
    assert!(format!("{err:?}").contains("pads variable-length inputs"), "{err:?}");
}

/// Real-valued inputs (a linear projection instead of the embedding) and a forecasting head
/// (a map over time to the horizon) work with every mixer, and gradients reach the first layer.
#[test]
fn every_model_forecasts_from_real_valued_inputs() {
    let io = TaskIo { input_features: 3, head: Head::Forecast { horizon: 5 }, ..TaskIo::per_token(0, 3, 12, false) };
    // Local attention is causal-only: a forecasting (bidirectional) task refuses it.
    for arch in all_archs().into_iter().filter(|a| *a != "local_attention") {
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = build(&vs, arch, &tiny_params(arch, 16, 1), &io);
        let x = Tensor::randn([2, 12, 3], (Kind::Float, Device::Cpu));
        let y = model.forward_t(&x, true);
        assert_eq!(y.size(), [2, 5, 3], "{arch}: forecasts are (batch, horizon, channels)");
        y.square().mean(Kind::Float).backward();
        // `linear` forecasts as DLinear does, with no input projection: its first map instead.
        let first = if arch == "linear" { "seasonal.weight" } else { "embed.weight" };
        let grad = vs.variables()[first].grad().abs().sum(Kind::Float).double_value(&[]);
        assert!(grad.is_finite() && grad > 0.0, "{arch}: no gradient reaches {first}");
    }
}

/// What a step carries: constant in the length for every recurrent mixer, attention's KV cache
/// (2·L·d per layer) growing with it; a few sizes worked out by hand.
#[test]
fn state_size_is_the_recurrent_state_or_the_kv_cache() {
    let io = TaskIo::per_token(13, 13, 64, true);
    let size = |arch: &str, params: &serde_json::Value, len: i64| {
        let vs = nn::VarStore::new(Device::Cpu);
        build(&vs, arch, params, &io).state_size(len).expect("a backbone reports its state")
    };
    for (arch, params) in variants(16, 2) {
        let (short, long) = (size(arch, &params, 64), size(arch, &params, 128));
        match arch {
            "transformer" => assert_eq!((short, long), (2.0 * 2.0 * 64.0 * 16.0, 2.0 * 2.0 * 128.0 * 16.0)),
            "linear" => assert_eq!(long, 2.0 * short, "linear's window is the sequence"),
            // Mamba then attention: only the attention block's KV cache (2·L·d) grows.
            "hybrid" => assert_eq!(long - short, 2.0 * 64.0 * 16.0),
            _ => assert_eq!(short, long, "{arch}: a recurrent state does not grow with L"),
        }
        assert!(short > 0.0, "{arch}");
    }
    // Two layers each: LSTM h and c; Mamba E·N + E·(d_conv − 1) with E = 32, N = 4;
    // RetNet d × 2d per head over 2 heads; GLA (d/2 × d) / 2 heads plus three conv windows.
    let cases = [
        ("lstm", 2.0 * 2.0 * 16.0),
        ("mamba", 2.0 * (32.0 * 4.0 + 32.0 * 3.0)),
        ("retnet", 2.0 * (16.0 * 32.0 / 2.0)),
        ("gla", 2.0 * (8.0 * 16.0 / 2.0 + (2.0 * 8.0 + 16.0) * 3.0)),
    ];
    for (arch, expected) in cases {
        assert_eq!(size(arch, &tiny_params(arch, 16, 2), 64), expected, "{arch}");
    }
}

/// Building straight from parameters (as benches and the Python bridge do) checks them too:
/// RWKV-7's default heads of 64 cannot split d_model 32, and the error says so.
#[test]
fn build_rejects_a_config_the_architecture_cannot_build() {
    let io = TaskIo::per_token(13, 13, 16, true);
    let vs = nn::VarStore::new(Device::Cpu);
    let info = models::find("rwkv7").expect("registered");
    let err = match (info.build)(&vs.root(), &json!({ "d_model": 32, "n_layers": 1 }), &io) {
        Ok(_) => panic!("rwkv7 with heads of 64 at d_model 32 built"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("head_dim") && err.contains("d_model = 32"), "{err}");
}
