//! Every registered architecture, built through the registry as a suite would build it:
//! the parallel and recurrent forms agree, gradients match finite differences, and a small
//! model learns a task that needs sequence mixing.
use seqbench::models::{self, SeqModel, TaskIo};
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
        "lru" => json!({ "d_state": 8 }),
        "mingru" | "minlstm" => json!({ "expand": 2 }),
        "retnet" => json!({ "n_heads": 2, "chunk": 16 }),
        "linear" => json!({ "kernel": 3 }),
        _ => json!({}),
    };
    p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    p
}

fn build(vs: &nn::VarStore, arch: &str, params: &serde_json::Value, io: &TaskIo) -> Box<dyn SeqModel> {
    let info = models::find(arch).unwrap_or_else(|| panic!("{arch} is registered"));
    (info.build)(&vs.root(), params, io).unwrap_or_else(|e| panic!("{arch}: {e:#}"))
}

fn all_archs() -> Vec<&'static str> {
    models::names()
}

#[test]
fn parallel_and_recurrent_forms_agree() {
    let io = TaskIo { vocab_size: 13, num_classes: 13, seq_len: 80, causal: true };
    for arch in all_archs() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = build(&vs, arch, &tiny_params(arch, 16, 2), &io);
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
        assert!(diff <= 1e-5 * scale.max(1.0), "{arch}: parallel vs step max |Δ| = {diff:e} (logits up to {scale})");
    }
}

/// Central differences in float64 on a few entries of every mixer parameter, against autograd.
#[test]
fn mixer_gradients_match_finite_differences() {
    let io = TaskIo { vocab_size: 7, num_classes: 5, seq_len: 9, causal: true };
    for arch in all_archs() {
        tch::manual_seed(1);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let model = build(&vs, arch, &tiny_params(arch, 8, 1), &io);
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
    let io = TaskIo { vocab_size: vocab, num_classes: vocab, seq_len: len, causal: true };
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
