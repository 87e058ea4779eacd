//! Initialisation as the official code does it, seen from outside: every architecture is built
//! fresh (no fixture overwrites its weights) and the statistics of its initial parameters are
//! compared with the rule of the official file cited in docs/models.md. Uniform draws are
//! checked by their bound and spread, normal draws by their spread, constants exactly.
use seqbench::models::{find, Head, TaskIo};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use tch::{nn, Device, Kind, Tensor};

const VOCAB: i64 = 100;

/// libtorch's generator is global and the test harness runs tests on several threads: without
/// this lock another test's draws interleave with a build's, so its weights (and whether a
/// tail check such as "something close to the bound" passes) would change from run to run.
static SEEDED_BUILD: Mutex<()> = Mutex::new(());

fn build(arch: &str, params: Value, io: &TaskIo) -> HashMap<String, Tensor> {
    let _only_this_build_draws = SEEDED_BUILD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let info = find(arch).expect("registered architecture");
    let config = (info.resolve)(&serde_json::from_value(params).unwrap(), io).expect("valid config");
    let _model = (info.build)(&vs.root(), &config, io).expect("model builds");
    vs.variables().into_iter().map(|(k, v)| (k, v.to_kind(Kind::Double))).collect()
}

fn tokens_io() -> TaskIo {
    TaskIo::per_token(VOCAB, VOCAB, 32, true)
}

fn get<'a>(vars: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    vars.get(name).unwrap_or_else(|| {
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        panic!("no parameter {name}; have {names:?}")
    })
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

fn std(t: &Tensor) -> f64 {
    t.std(true).double_value(&[])
}

/// Sampling tolerance of a standard deviation estimated from n draws (≈ 4 standard errors).
fn std_tolerance(n: i64) -> f64 {
    (4.0 / (2.0 * n as f64).sqrt()).max(0.02)
}

/// Drawn from U(−bound, bound): nothing beyond the bound, something close to it, and the
/// spread of a uniform (bound/√3).
fn assert_uniform(vars: &HashMap<String, Tensor>, name: &str, bound: f64) {
    let t = get(vars, name);
    let n = t.numel() as i64;
    let (max, spread) = (max_abs(t), std(t));
    assert!(max <= bound * (1.0 + 1e-6), "{name}: max |w| = {max}, beyond the bound {bound}");
    assert!(max >= bound * (1.0 - 8.0 / n as f64), "{name}: max |w| = {max}, far inside the bound {bound}");
    let expected = bound / 3f64.sqrt();
    assert!((spread / expected - 1.0).abs() < std_tolerance(n), "{name}: std {spread}, expected {expected}");
}

fn assert_normal(vars: &HashMap<String, Tensor>, name: &str, expected_std: f64) {
    let t = get(vars, name);
    let spread = std(t);
    let tol = std_tolerance(t.numel() as i64);
    assert!((spread / expected_std - 1.0).abs() < tol, "{name}: std {spread}, expected {expected_std}");
    let mean = t.mean(Kind::Double).double_value(&[]);
    assert!(mean.abs() < expected_std * tol * 2.0, "{name}: mean {mean}");
}

fn assert_constant(vars: &HashMap<String, Tensor>, name: &str, value: f64) {
    let t = get(vars, name);
    let off = (t - value).abs().max().double_value(&[]);
    assert!(off < 1e-6, "{name}: should all be {value}, off by up to {off}");
}

fn assert_absent(vars: &HashMap<String, Tensor>, name: &str) {
    assert!(!vars.contains_key(name), "{name} should not exist");
}

#[test]
fn backbone_and_transformer_use_torch_module_defaults() {
    let vars = build("transformer", json!({"d_model": 128, "n_heads": 4, "mlp_ratio": 4}), &tokens_io());
    let d = 128f64;
    for name in ["qkv.weight", "qkv.bias", "out.weight", "out.bias"] {
        assert_uniform(&vars, &format!("blocks.0.mixer.{name}"), 1.0 / d.sqrt());
    }
    assert_uniform(&vars, "blocks.1.mlp.fc1.weight", 1.0 / d.sqrt());
    assert_uniform(&vars, "blocks.1.mlp.fc2.weight", 1.0 / (4.0 * d).sqrt());
    assert_uniform(&vars, "blocks.1.mlp.fc2.bias", 1.0 / (4.0 * d).sqrt());
    assert_uniform(&vars, "head.weight", 1.0 / d.sqrt());
    assert_normal(&vars, "embed.weight", 1.0);
    assert_constant(&vars, "blocks.0.norm1.weight", 1.0);
    assert_constant(&vars, "blocks.0.norm1.bias", 0.0);
}

#[test]
fn lstm_and_gru_start_as_torch_nn_lstm() {
    for arch in ["lstm", "gru"] {
        let vars = build(arch, json!({"d_model": 64}), &tokens_io());
        for name in ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"] {
            assert_uniform(&vars, &format!("blocks.0.mixer.{name}"), 1.0 / 8.0);
        }
    }
}

#[test]
fn mamba_starts_as_mamba_simple_and_its_language_model() {
    let params = json!({"d_model": 64, "n_layers": 4, "d_state": 16, "expand": 2, "d_conv": 4});
    let vars = build("mamba", params, &tokens_io());
    let m = |name: &str| format!("blocks.2.mixer.{name}");
    // A = −exp(A_log) = −(1, 2, …, N) in every channel; D = 1.
    let expected = Tensor::arange_start(1, 17, (Kind::Double, Device::Cpu)).log().unsqueeze(0).expand([128, 16], false);
    assert!(get(&vars, &m("a_log")).allclose(&expected, 1e-6, 1e-6, false), "A_log = log(1..N)");
    assert_constant(&vars, &m("d_skip"), 1.0);
    // Δ = softplus(bias) starts log-uniform in [dt_min, dt_max] = [0.001, 0.1].
    let dt = get(&vars, &m("dt_proj.bias")).softplus();
    let (lo, hi) = (dt.min().double_value(&[]), dt.max().double_value(&[]));
    assert!(lo >= 0.001 * 0.999 && hi <= 0.1 * 1.001, "Δ in [{lo}, {hi}]");
    let mean_log = dt.log().mean(Kind::Double).double_value(&[]);
    let centre = (0.001f64.ln() + 0.1f64.ln()) / 2.0;
    assert!((mean_log - centre).abs() < 0.5, "mean log Δ {mean_log}, log-uniform centre {centre}");
    assert_uniform(&vars, &m("dt_proj.weight"), 0.5); // dt_rank^−½, dt_rank = ⌈64/16⌉ = 4
    assert_uniform(&vars, &m("conv_weight"), 0.5); // nn.Conv1d, fan_in = d_conv
    assert_uniform(&vars, &m("conv_bias"), 0.5);
    assert_uniform(&vars, &m("in_proj.weight"), 1.0 / 8.0);
    assert_uniform(&vars, &m("x_proj.weight"), 1.0 / 128f64.sqrt());
    // _init_weights: out_proj redrawn and divided by √n_layer; embeddings N(0, 0.02²).
    assert_uniform(&vars, &m("out_proj.weight"), 1.0 / 128f64.sqrt() / 2.0);
    assert_normal(&vars, "embed.weight", 0.02);
    // RMSNorm (weight only) and zero Linear biases.
    assert_constant(&vars, "blocks.0.norm1.weight", 1.0);
    assert_absent(&vars, "blocks.0.norm1.bias");
    assert_constant(&vars, "head.bias", 0.0);
}

#[test]
fn lru_starts_on_the_ring_with_the_official_layer() {
    let params = json!({"d_model": 64, "d_state": 256, "r_min": 0.4, "r_max": 0.9, "max_phase": 3.0});
    let vars = build("lru", params, &tokens_io());
    let m = |name: &str| format!("blocks.0.mixer.{name}");
    let nu = get(&vars, &m("nu_log")).exp();
    let radius_sq = (-&nu * 2.0).exp(); // |λ|² = exp(−2ν)
    let (lo, hi) = (radius_sq.min().double_value(&[]), radius_sq.max().double_value(&[]));
    assert!(lo >= 0.16 - 1e-6 && hi <= 0.81 + 1e-6, "|λ|² in [{lo}, {hi}]");
    // Uniform on the ring's area: |λ|² uniform in [r_min², r_max²].
    let mean = radius_sq.mean(Kind::Double).double_value(&[]);
    assert!((mean - 0.485).abs() < 0.05, "mean |λ|² {mean}");
    let theta = get(&vars, &m("theta_log")).exp();
    assert!(theta.max().double_value(&[]) <= 3.0 + 1e-6);
    assert!((theta.mean(Kind::Double).double_value(&[]) - 1.5).abs() < 0.25);
    let gamma = get(&vars, &m("gamma_log")).exp();
    assert!(gamma.allclose(&(-radius_sq + 1.0).sqrt(), 1e-5, 1e-6, false), "γ = √(1 − |λ|²)");
    assert_normal(&vars, &m("b_re"), 1.0 / 128f64.sqrt());
    assert_normal(&vars, &m("b_im"), 1.0 / 128f64.sqrt());
    assert_normal(&vars, &m("c_re"), 1.0 / 16.0);
    assert_normal(&vars, &m("d_skip"), 1.0);
    // GELU → GLU with Flax Dense layers: lecun_normal (truncated at 2σ), zero bias.
    let w = get(&vars, &m("out1.weight"));
    assert_normal(&vars, &m("out1.weight"), 1.0 / 8.0);
    assert!(max_abs(w) <= 2.0 / 8.0 / 0.879_625_661 + 1e-6, "truncated at two standard deviations");
    assert_constant(&vars, &m("out2.bias"), 0.0);
}

#[test]
fn hawk_starts_as_recurrentgemma() {
    let params = json!({"d_model": 64, "n_layers": 4, "lru_width": 96, "num_heads": 4, "mlp_ratio": 3});
    let vars = build("hawk", params, &tokens_io());
    let m = |name: &str| format!("blocks.1.mixer.{name}");
    // RecurrentBlock: linear_x/linear_y N(0, 1/width), linear_out N(0, (2/n_layers)/lru_width).
    assert_normal(&vars, &m("linear_x.weight"), 1.0 / 8.0);
    assert_normal(&vars, &m("linear_y.weight"), 1.0 / 8.0);
    assert_normal(&vars, &m("linear_out.weight"), (0.5f64 / 96.0).sqrt());
    assert_constant(&vars, &m("linear_out.bias"), 0.0);
    // Conv1D: N(0, 0.01/width), zero bias; gates: N(0, 1/block width), zero bias.
    assert_normal(&vars, &m("conv_w"), (0.01f64 / 4.0).sqrt());
    assert_constant(&vars, &m("conv_b"), 0.0);
    assert_normal(&vars, &m("input_gate.w"), 1.0 / 24f64.sqrt());
    assert_constant(&vars, &m("a_gate.b"), 0.0);
    // a₀ = exp(−softplus(Λ)) with a₀² uniform in [0.81, 0.998].
    let a0_sq = (get(&vars, &m("a_param")).softplus() * -2.0).exp();
    let (lo, hi) = (a0_sq.min().double_value(&[]), a0_sq.max().double_value(&[]));
    assert!(lo >= 0.81 - 1e-6 && hi <= 0.998 + 1e-6, "a0² in [{lo}, {hi}]");
    assert!((a0_sq.mean(Kind::Double).double_value(&[]) - 0.904).abs() < 0.02);
    // Griffin's backbone: embeddings N(0, 1/d), gated MLP up N(0, 1/d) to twice the hidden
    // width, down N(0, (2/n_layers)/hidden), RMSNorm weights one.
    assert_normal(&vars, "embed.weight", 1.0 / 8.0);
    assert_eq!(get(&vars, "blocks.0.mlp.fc1.weight").size(), [384, 64]);
    assert_normal(&vars, "blocks.0.mlp.fc1.weight", 1.0 / 8.0);
    assert_normal(&vars, "blocks.0.mlp.fc2.weight", (0.5f64 / 192.0).sqrt());
    assert_constant(&vars, "blocks.0.mlp.fc2.bias", 0.0);
    assert_constant(&vars, "blocks.0.norm1.weight", 1.0);
    assert_absent(&vars, "blocks.0.norm1.bias");
}

#[test]
fn local_attention_starts_as_recurrentgemma() {
    let vars = build("local_attention", json!({"d_model": 64, "n_layers": 4, "n_heads": 4}), &tokens_io());
    let m = |name: &str| format!("blocks.0.mixer.{name}");
    // LocalAttentionBlock: q, k, v N(0, 1/width) without biases, one shared key/value head;
    // proj_final N(0, (2/n_layers)/width) with a zero bias.
    assert_normal(&vars, &m("proj_q.weight"), 1.0 / 8.0);
    assert_eq!(get(&vars, &m("proj_k.weight")).size(), [16, 64], "one key head of width 16");
    assert_normal(&vars, &m("proj_v.weight"), 1.0 / 8.0);
    assert_absent(&vars, &m("proj_q.bias"));
    assert_normal(&vars, &m("proj_final.weight"), (0.5f64 / 64.0).sqrt());
    assert_constant(&vars, &m("proj_final.bias"), 0.0);
}

#[test]
fn slstm_starts_as_xlstm() {
    let vars = build("slstm", json!({"d_model": 64, "n_layers": 3, "n_heads": 4}), &tokens_io());
    // Gate weights "small init" N(0, 2/(5D)) over the full width; recurrence zero; norm w = 0.
    for gate in ["i_gate", "f_gate", "z_gate", "o_gate"] {
        assert_normal(&vars, &format!("blocks.1.mixer.{gate}.weight"), (2.0f64 / 320.0).sqrt());
    }
    assert_constant(&vars, "blocks.1.mixer.recurrent_kernel", 0.0);
    assert_constant(&vars, "blocks.1.mixer.group_norm.weight", 0.0);
    assert_uniform(&vars, "blocks.1.mixer.conv1d.conv.weight", 0.5);
    // Biases zero but the forget gate's powerlaw_blockdependent: 5 − 12·(j/15)^(0.3 + 1.3·r),
    // r = block/(blocks − 1): from 5 down to −7 over each head's 16 units.
    let bias = |block: i64| get(&vars, &format!("blocks.{block}.mixer.bias")).shallow_clone();
    for block in [0i64, 2] {
        let b = bias(block);
        let r = block as f64 / 2.0;
        let forget = b.select(1, 1).select(0, 3); // last head
        for j in [0i64, 7, 15] {
            let want = 5.0 - 12.0 * (j as f64 / 15.0).powf(0.3 + 1.3 * r);
            let got = forget.double_value(&[j]);
            assert!((got - want).abs() < 1e-5, "block {block} unit {j}: {got} vs {want}");
        }
        let others = Tensor::cat(&[b.select(1, 0), b.select(1, 2), b.select(1, 3)], 0);
        assert_eq!(others.abs().max().double_value(&[]), 0.0);
    }
}

#[test]
fn retnet_starts_as_torchscale_multiscale_retention() {
    let vars = build("retnet", json!({"d_model": 64, "n_heads": 4}), &tokens_io());
    let m = |name: &str| format!("blocks.0.mixer.{name}");
    let xavier = |fan_in: f64, fan_out: f64, gain: f64| gain * (6.0 / (fan_in + fan_out)).sqrt();
    assert_uniform(&vars, &m("q.weight"), xavier(64.0, 64.0, 2f64.powf(-2.5)));
    assert_uniform(&vars, &m("k.weight"), xavier(64.0, 64.0, 2f64.powf(-2.5)));
    assert_eq!(get(&vars, &m("v.weight")).size(), [128, 64], "value_factor 2");
    assert_uniform(&vars, &m("v.weight"), xavier(64.0, 128.0, 2f64.powf(-2.5)));
    assert_uniform(&vars, &m("g.weight"), xavier(64.0, 128.0, 2f64.powf(-2.5)));
    assert_uniform(&vars, &m("out.weight"), xavier(128.0, 64.0, 0.5));
    // The per-head norm has no affine parameters; the backbone's norms are RMSNorms.
    assert!(!vars.keys().any(|k| k.starts_with("blocks.0.mixer.norm")), "no affine group norm");
    assert_absent(&vars, "blocks.0.norm1.bias");
}

#[test]
fn s4d_starts_as_the_s4d_kernel() {
    let vars = build("s4d", json!({"d_model": 64, "d_state": 64}), &tokens_io());
    let m = |name: &str| format!("blocks.0.mixer.{name}");
    let log_dt = get(&vars, &m("log_dt"));
    assert!(log_dt.min().double_value(&[]) >= 0.001f64.ln() - 1e-6);
    assert!(log_dt.max().double_value(&[]) <= 0.1f64.ln() + 1e-6);
    assert_constant(&vars, &m("a_log_re"), 0.5f64.ln());
    let a_im = get(&vars, &m("a_im"));
    let lin = Tensor::arange(32, (Kind::Double, Device::Cpu)) * std::f64::consts::PI;
    assert!(a_im.get(5).allclose(&lin, 1e-5, 1e-5, false), "S4D-Lin: A_imag = π n");
    assert_normal(&vars, &m("c_re"), 0.5f64.sqrt()); // torch.randn(cfloat): variance ½ per part
    assert_normal(&vars, &m("d_skip"), 1.0);
    assert_uniform(&vars, &m("out.weight"), 1.0 / 8.0); // nn.Conv1d(H, 2H, 1)
    assert_uniform(&vars, &m("out.bias"), 1.0 / 8.0);
}

#[test]
fn min_rnns_use_torch_linear_layers() {
    for arch in ["mingru", "minlstm"] {
        let vars = build(arch, json!({"d_model": 64, "expand": 2}), &tokens_io());
        assert_uniform(&vars, "blocks.0.mixer.in_proj.weight", 1.0 / 8.0);
        assert_uniform(&vars, "blocks.0.mixer.in_proj.bias", 1.0 / 8.0);
        assert_uniform(&vars, "blocks.0.mixer.out_proj.weight", 1.0 / 128f64.sqrt());
        assert_absent(&vars, "blocks.0.mixer.out_proj.bias");
    }
}

#[test]
fn forecasting_linears_start_as_their_reference_code() {
    let io = TaskIo {
        vocab_size: 0,
        input_features: 7,
        num_classes: 7,
        seq_len: 96,
        causal: false,
        head: Head::Forecast { horizon: 24 },
        pad_id: None,
    };
    // Time-Series-Library's DLinear: weights 1/L; LTSF-Linear's NLinear: torch.nn.Linear.
    let vars = build("linear", json!({"variant": "dlinear"}), &io);
    assert_constant(&vars, "seasonal.weight", 1.0 / 96.0);
    assert_uniform(&vars, "trend.bias", 1.0 / 96f64.sqrt());
    let vars = build("linear", json!({"variant": "nlinear"}), &io);
    assert_uniform(&vars, "time.weight", 1.0 / 96f64.sqrt());
}

#[test]
fn fla_layers_start_as_flash_linear_attention_models() {
    // fla's _init_weights: every Linear and Conv1d weight N(0, 0.02²), biases zero, embeddings
    // N(0, 0.02²); Gated DeltaNet's A = exp(A_log) ~ U(0, 16) and dt_bias as Mamba's.
    let vars = build("gla", json!({"d_model": 128, "n_heads": 4, "use_short_conv": true}), &tokens_io());
    let m = |name: &str| format!("blocks.0.mixer.{name}");
    for name in
        ["q_proj.weight", "v_proj.weight", "gk_proj.0.weight", "gk_proj.1.weight", "o_proj.weight", "q_conv1d.weight"]
    {
        assert_normal(&vars, &m(name), 0.02);
    }
    assert_constant(&vars, &m("gk_proj.1.bias"), 0.0);
    assert_constant(&vars, &m("g_norm_swish_gate.weight"), 1.0);
    assert_normal(&vars, "embed.weight", 0.02);
    assert_normal(&vars, "blocks.0.mlp.fc1.weight", 0.02);
    assert_constant(&vars, "head.bias", 0.0);

    let vars = build("gated_deltanet", json!({"d_model": 128, "n_heads": 64}), &tokens_io());
    assert_normal(&vars, &m("k_proj.weight"), 0.02);
    assert_normal(&vars, &m("b_proj.weight"), 0.02);
    let a = get(&vars, &m("a_log")).exp();
    assert!(a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) <= 16.0);
    assert!((a.mean(Kind::Double).double_value(&[]) - 8.0).abs() < 2.5, "A ~ U(0, 16)");
    let dt = get(&vars, &m("dt_bias")).softplus();
    assert!(dt.min().double_value(&[]) >= 0.001 * 0.999 && dt.max().double_value(&[]) <= 0.1 * 1.001);
    assert_eq!(get(&vars, &m("v_proj.weight")).size(), [256, 128], "value width 2× the keys");
}

#[test]
fn mamba2_starts_as_mamba2_py() {
    let params = json!({"d_model": 64, "n_layers": 4, "d_state": 32, "headdim": 4});
    let vars = build("mamba2", params, &tokens_io());
    let m = |name: &str| format!("blocks.1.mixer.{name}");
    let a = get(&vars, &m("a_log")).exp(); // 32 heads
    assert!(a.min().double_value(&[]) >= 1.0 - 1e-6 && a.max().double_value(&[]) <= 16.0 + 1e-5, "A ~ U(1, 16)");
    let dt = get(&vars, &m("dt_bias")).softplus();
    assert!(dt.min().double_value(&[]) >= 0.001 * 0.999 && dt.max().double_value(&[]) <= 0.1 * 1.001);
    assert_constant(&vars, &m("d_skip"), 1.0);
    assert_constant(&vars, &m("norm_weight"), 1.0);
    assert_uniform(&vars, &m("in_proj.weight"), 1.0 / 8.0);
    assert_uniform(&vars, &m("conv_weight"), 0.5);
    assert_uniform(&vars, &m("out_proj.weight"), 1.0 / 128f64.sqrt() / 2.0); // ÷ √n_layers
    assert_normal(&vars, "embed.weight", 0.02);
}

#[test]
fn hgrn2_starts_as_fla_hgrn2_model() {
    // fla's _init_weights (N(0, 0.02²)) for every projection; the model-level lower bounds zero,
    // so layer i starts with bound i / n_layers; the output norm's weight one.
    let vars = build("hgrn2", json!({"d_model": 128, "n_layers": 4, "expand_ratio": 32}), &tokens_io());
    for name in ["q_proj.weight", "f_proj.weight", "i_proj.weight", "o_proj.weight"] {
        assert_normal(&vars, &format!("blocks.2.mixer.{name}"), 0.02);
    }
    assert_constant(&vars, "blocks.2.mixer.g_norm.weight", 1.0);
    assert_constant(&vars, "lower_bounds", 0.0);
    assert_eq!(get(&vars, "lower_bounds").size(), [4, 128]);
}

#[test]
fn rwkv6_starts_as_a_fresh_fla_rwkv6_attention() {
    // d_model 128: keys 64, values 128, LoRA ranks 32 (shift) and 64 (decay).
    let vars = build("rwkv6", json!({"d_model": 128, "n_heads": 2}), &tokens_io());
    let m = |name: &str| format!("blocks.0.mixer.{name}");
    let xavier = |inputs: f64, outputs: f64| 2f64.powf(-2.5) * (6.0 / (inputs + outputs)).sqrt();
    assert_uniform(&vars, &m("r_proj.linear.weight"), xavier(128.0, 64.0));
    assert_uniform(&vars, &m("g_proj.linear.weight"), xavier(128.0, 128.0));
    assert_uniform(&vars, &m("x_proj.0.linear.weight"), xavier(128.0, 160.0));
    assert_uniform(&vars, &m("x_proj.2.weight"), xavier(160.0, 128.0));
    assert_uniform(&vars, &m("o_proj.weight"), xavier(128.0, 128.0));
    for name in ["x_proj.0.mu", "x_bias", "bonus", "w_proj.linear.lora.0.weight", "w_proj.linear.lora.2.bias"] {
        assert_constant(&vars, &m(name), 0.0);
    }
    // The decay LoRA's up-projection (64 × 64) is orthogonal with gain 0.1: WᵀW = 0.01·I.
    let up = get(&vars, &m("w_proj.linear.lora.2.weight")).to_kind(Kind::Double);
    let gram = up.transpose(0, 1).matmul(&up) - Tensor::eye(64, (Kind::Double, tch::Device::Cpu)) * 0.01;
    assert!(max_abs(&gram) < 1e-6, "orthogonal × 0.1: max |WᵀW − 0.01 I| = {}", max_abs(&gram));
    assert_constant(&vars, &m("g_norm.weight"), 1.0);
    assert_constant(&vars, &m("g_norm.bias"), 0.0);
}

/// fla's `RWKV7Attention._initialize_weights` for block 1 of 3 (d_model 128, heads of 64):
/// r₀₁ = 1/2, r₁ = 2/3, the lerps 1 − (n/C)^(p·r₁), the LoRA biases on BlinkDL's schedules,
/// orthogonal projections and LoRA up-matrices, o_proj and the LoRA down-matrices zero.
#[test]
fn rwkv7_starts_as_fla_initialises_rwkv7_attention() {
    let vars = build("rwkv7", json!({"d_model": 128, "head_dim": 64, "n_layers": 3}), &tokens_io());
    let m = |name: &str| format!("blocks.1.mixer.{name}");
    let (c, r01, r1) = (128.0f64, 0.5f64, 2.0 / 3.0);
    let linear = |n: f64| n / (c - 1.0) - 0.5;
    let zigzag = |n: f64| {
        let z = ((n % 64.0) - 31.5) / 31.5;
        z * z.abs()
    };
    let at = |name: &str, n: i64| get(&vars, &m(name)).double_value(&[n]);
    for n in [0i64, 40, 64, 127] {
        let x = n as f64;
        for (name, power) in [("x_r", 0.2), ("x_w", 0.9), ("x_k", 0.7), ("x_v", 0.7), ("x_a", 0.9), ("x_g", 0.2)] {
            let expected = 1.0 - (x / c).powf(power * r1);
            assert!((at(name, n) - expected).abs() < 1e-6, "{name}[{n}]: {} vs {expected}", at(name, n));
        }
        let decay = -6.0 + 6.0 * (x / (c - 1.0)).powf(1.0 + r01.powf(0.3)) + 0.5 + 2.5 * zigzag(x);
        let expected = [
            ("w_lora.lora.2.bias", decay),
            ("a_lora.lora.2.bias", -0.19 + 0.3 * zigzag(x) + 0.4 * linear(x)),
            ("v_lora.lora.2.bias", 0.73 - 0.4 * linear(x)),
            ("k_k", 0.71 - 0.1 * linear(x)),
        ];
        for (name, value) in expected {
            assert!((at(name, n) - value).abs() < 1e-5, "{name}[{n}]: {} vs {value}", at(name, n));
        }
    }
    assert_constant(&vars, &m("k_a"), 1.02);
    assert_constant(&vars, &m("r_k"), -0.04);
    assert_eq!(get(&vars, &m("r_k")).size(), [2, 64]);
    assert_constant(&vars, &m("g_norm.weight"), (2.0f64 / 3.0).powf(0.7));
    for name in ["g_norm.bias", "o_proj.weight", "w_lora.lora.0.weight", "a_lora.lora.0.weight", "g_lora.lora.0.weight"]
    {
        assert_constant(&vars, &m(name), 0.0);
    }
    assert_absent(&vars, &m("g_lora.lora.2.bias"));
    assert_absent(&vars, "blocks.0.mixer.v_lora.lora.2.weight");
    // Orthogonal with gain g: WᵀW = g²·I over the smaller side.
    for (name, gain) in [
        ("r_proj.weight", 1.0),
        ("k_proj.weight", 0.1),
        ("v_proj.weight", 1.0),
        ("w_lora.lora.2.weight", 0.1),
        ("g_lora.lora.2.weight", 0.1),
        ("v_lora.lora.2.weight", 0.1),
    ] {
        let w = get(&vars, &m(name));
        let side = w.size()[1];
        let gram = w.transpose(0, 1).matmul(w) - Tensor::eye(side, (Kind::Double, tch::Device::Cpu)) * (gain * gain);
        assert!(max_abs(&gram) < 1e-5, "{name}: max |WᵀW − {gain}² I| = {}", max_abs(&gram));
    }
}

/// `decay_init: rwkv_schedule` starts the decay LoRA's bias on BlinkDL's RWKV-6 schedule,
/// w₀[n] = −6 + 5·(n/(d_k − 1))^(0.7 + 1.3·layer/(n_layers − 1)), and changes nothing else.
#[test]
fn rwkv6_decay_can_start_on_blinkdls_schedule() {
    let params = json!({"d_model": 128, "n_heads": 2, "n_layers": 3, "decay_init": "rwkv_schedule"});
    let vars = build("rwkv6", params, &tokens_io());
    let fla = build("rwkv6", json!({"d_model": 128, "n_heads": 2, "n_layers": 3}), &tokens_io());
    for (layer, exponent) in [(0, 0.7), (1, 1.35), (2, 2.0)] {
        let name = format!("blocks.{layer}.mixer.w_proj.linear.lora.2.bias");
        let bias = get(&vars, &name);
        assert_eq!(bias.size(), [64]);
        for n in [0i64, 21, 63] {
            let expected = -6.0 + 5.0 * (n as f64 / 63.0).powf(exponent);
            let got = bias.double_value(&[n]);
            assert!((got - expected).abs() < 1e-6, "layer {layer} channel {n}: {got} vs {expected}");
        }
        let up = format!("blocks.{layer}.mixer.w_proj.linear.lora.2.weight");
        assert!(max_abs(&(get(&vars, &up) - get(&fla, &up))) == 0.0, "only the bias differs");
    }
    // In a hybrid the schedule follows the block's place in the whole stack.
    let params = json!({"d_model": 128, "n_layers": 3, "layers": "rwkv6,transformer,rwkv6",
        "rwkv6.n_heads": 2, "rwkv6.decay_init": "rwkv_schedule"});
    let hybrid = build("hybrid", params, &tokens_io());
    let last = get(&hybrid, "blocks.2.mixer.w_proj.linear.lora.2.bias").double_value(&[21]);
    assert!((last - (-6.0 + 5.0 * (21.0f64 / 63.0).powf(2.0))).abs() < 1e-6, "block 2 of 3: {last}");
}

#[test]
fn mlstm_starts_as_xlstm_reset_parameters() {
    // d_model 64, 4 layers: inner width 128; small init N(0, 2/(5·64)), Wang's 2/(4·√64).
    let vars = build("mlstm", json!({"d_model": 64, "n_layers": 4, "n_heads": 4}), &tokens_io());
    let m = |name: &str| format!("blocks.3.mixer.{name}");
    let small = (2.0 / (5.0 * 64.0f64)).sqrt();
    assert_normal(&vars, &m("proj_up.weight"), small);
    assert_normal(&vars, &m("q_proj.weight"), small);
    assert_normal(&vars, &m("v_proj.weight"), small);
    assert_eq!(get(&vars, &m("k_proj.weight")).size(), [32, 4, 4], "blocks of 4");
    assert_normal(&vars, &m("proj_down.weight"), 2.0 / 4.0 / 8.0);
    assert_uniform(&vars, &m("conv1d.conv.weight"), 0.5);
    assert_uniform(&vars, &m("conv1d.conv.bias"), 0.5);
    assert_constant(&vars, &m("mlstm_cell.igate.weight"), 0.0);
    assert_constant(&vars, &m("mlstm_cell.fgate.weight"), 0.0);
    let forget = get(&vars, &m("mlstm_cell.fgate.bias"));
    let expected = Tensor::from_slice(&[3.0f32, 4.0, 5.0, 6.0]);
    assert!(max_abs(&(forget - expected)) < 1e-6, "forget-gate biases linspace(3, 6)");
    let input = get(&vars, &m("mlstm_cell.igate.bias"));
    assert!(max_abs(input) > 0.0 && max_abs(input) < 0.5, "input-gate biases N(0, 0.1²)");
    assert_constant(&vars, &m("mlstm_cell.outnorm.weight"), 0.0);
    assert_constant(&vars, &m("learnable_skip"), 1.0);
}

#[test]
fn deltaproduct_starts_as_fla_gated_deltaproduct() {
    // Two Householder steps: k, v and β projections twice as wide; fla's N(0, 0.02²) and
    // Gated DeltaNet's decay parameters.
    let vars = build("deltaproduct", json!({"d_model": 64, "n_heads": 4}), &tokens_io());
    let m = |name: &str| format!("blocks.0.mixer.{name}");
    assert_eq!(get(&vars, &m("k_proj.weight")).size(), [128, 64]);
    assert_eq!(get(&vars, &m("v_proj.weight")).size(), [256, 64]);
    assert_eq!(get(&vars, &m("b_proj.weight")).size(), [8, 64]);
    assert_eq!(get(&vars, &m("q_proj.weight")).size(), [64, 64]);
    assert_normal(&vars, &m("k_proj.weight"), 0.02);
    let a = get(&vars, &m("a_log")).exp();
    assert!(a.min().double_value(&[]) >= 0.0 && a.max().double_value(&[]) <= 16.0, "A ~ U(0, 16)");
}
