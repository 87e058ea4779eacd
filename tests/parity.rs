//! Forward parity with PyTorch: fixtures written by tests/fixtures/make_parity_fixtures.py hold
//! weights, inputs and PyTorch's logits; seqbench's models must match within 1e-5 (fp32).
use seqbench::models::chunk_size::ChunkSize;
use seqbench::models::deltanet::{DeltaConfig, DeltaNetConfig, DeltaProductConfig, GatedDeltaNetConfig};
use seqbench::models::gla::GlaConfig;
use seqbench::models::hawk::HawkConfig;
use seqbench::models::hgrn2::Hgrn2Config;
use seqbench::models::linear::{LinearConfig, LinearVariant};
use seqbench::models::lru::LruConfig;
use seqbench::models::mamba::MambaConfig;
use seqbench::models::mamba2::Mamba2Config;
use seqbench::models::minrnn::{MinGruConfig, MinLstmConfig, MinRnnConfig};
use seqbench::models::mlstm::MlstmConfig;
use seqbench::models::retnet::RetNetConfig;
use seqbench::models::rnn::{build_cell, Cell, RnnConfig};
use seqbench::models::rwkv6::Rwkv6Config;
use seqbench::models::rwkv7::Rwkv7Config;
use seqbench::models::s4d::S4dConfig;
use seqbench::models::slstm::SlstmConfig;
use seqbench::models::transformer::{build_transformer, Positions, TransformerConfig};
use seqbench::models::{build_model, ArchConfig, SeqModel, TaskIo};
use std::collections::HashMap;
use tch::{nn, Device, Tensor};

const TOLERANCE: f64 = 1e-5;

fn io(causal: bool) -> TaskIo {
    TaskIo::per_token(11, 11, 7, causal)
}

/// The zoo fixtures' length: crosses the chunked scans' 64-step chunks twice.
const ZOO_SEQ: i64 = 150;

/// Loads the fixture's weights into a freshly built model and returns the largest |difference|
/// between its logits and PyTorch's.
fn max_abs_diff(fixture: &str, build: impl Fn(&nn::Path) -> Box<dyn SeqModel>) -> f64 {
    let path = format!(
        "{}/tests/fixtures/parity_{fixture}.npz",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    let mut tensors: HashMap<String, Tensor> = Tensor::read_npz(&path).expect("fixture").into_iter().collect();
    let input = tensors.remove("input").expect("input");
    let expected = tensors.remove("expected").expect("expected");
    let vs = nn::VarStore::new(Device::Cpu);
    let model = build(&vs.root());
    let vars = vs.variables();
    let mut ours: Vec<&String> = vars.keys().collect();
    let mut theirs: Vec<&String> = tensors.keys().collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "parameter names differ from the PyTorch module's");
    tch::no_grad(|| {
        for (name, mut var) in vars {
            let src = &tensors[&name];
            assert_eq!(var.size(), src.size(), "shape of {name}");
            var.copy_(src);
        }
    });
    let logits = tch::no_grad(|| model.forward_t(&input, false));
    assert_eq!(logits.size(), expected.size());
    (logits - expected).abs().max().double_value(&[])
}

fn rnn_cfg(bidirectional: bool) -> RnnConfig {
    RnnConfig { d_model: 16, n_layers: 2, mlp_ratio: 2, dropout: 0.0, bidirectional }
}

#[test]
fn lstm_matches_pytorch() {
    let diff = max_abs_diff("lstm", |p| build_cell(p, Cell::Lstm, &rnn_cfg(false), &io(true)));
    assert!(diff <= TOLERANCE, "max |Δ| = {diff:e}");
}

#[test]
fn gru_matches_pytorch() {
    let diff = max_abs_diff("gru", |p| build_cell(p, Cell::Gru, &rnn_cfg(false), &io(true)));
    assert!(diff <= TOLERANCE, "max |Δ| = {diff:e}");
}

#[test]
fn bidirectional_lstm_matches_pytorch() {
    let diff = max_abs_diff("lstm_bidirectional", |p| build_cell(p, Cell::Lstm, &rnn_cfg(true), &io(false)));
    assert!(diff <= TOLERANCE, "max |Δ| = {diff:e}");
}

#[test]
fn causal_rope_transformer_matches_pytorch() {
    let cfg = TransformerConfig {
        d_model: 16,
        n_layers: 2,
        n_heads: 2,
        mlp_ratio: 4,
        dropout: 0.0,
        positions: Positions::Rope,
    };
    let diff = max_abs_diff("transformer_rope", |p| build_transformer(p, &cfg, &io(true)));
    assert!(diff <= TOLERANCE, "max |Δ| = {diff:e}");
}

// The other mixers: the references in tests/fixtures/make_zoo_fixtures.py are sequential
// implementations of each official layer (docs/models.md), computed in float64, at L = 150.

fn zoo_parity<C: ArchConfig>(fixture: &str, cfg: C, causal: bool) {
    let io = TaskIo::per_token(11, 11, ZOO_SEQ, causal);
    let diff = max_abs_diff(fixture, |p| build_model(p, &cfg, &io));
    eprintln!("{fixture}: max |Δ| = {diff:.1e}");
    assert!(diff <= TOLERANCE, "{fixture}: max |Δ| = {diff:e}");
}

#[test]
fn s4d_matches_reference() {
    let cfg = S4dConfig { d_model: 16, d_state: 8, ..Default::default() };
    zoo_parity("s4d", cfg.clone(), true);
    zoo_parity("s4d_bidirectional", S4dConfig { bidirectional: true, ..cfg }, false);
}

#[test]
fn mamba_matches_reference() {
    let cfg =
        MambaConfig { d_model: 16, mlp_ratio: 2, d_state: 4, expand: 2, d_conv: 4, dt_rank: 2, ..Default::default() };
    zoo_parity("mamba", cfg, true);
}

#[test]
fn lru_matches_reference() {
    zoo_parity("lru", LruConfig { d_model: 16, d_state: 8, ..Default::default() }, true);
}

#[test]
fn hawk_matches_recurrentgemma_reference() {
    let cfg =
        HawkConfig { d_model: 16, mlp_ratio: 3, lru_width: 24, num_heads: 4, conv_width: 4, ..Default::default() };
    zoo_parity("hawk", cfg, true);
}

#[test]
fn griffin_matches_recurrentgemma_reference() {
    // Two Hawk blocks, then local multi-query attention with a window of 8 (of 150 positions),
    // in Griffin's backbone.
    let params = serde_json::json!({
        "d_model": 16, "n_layers": 3, "mlp_ratio": 3, "backbone": "griffin",
        "layers": "hawk,hawk,local_attention",
        "hawk.lru_width": 24, "hawk.num_heads": 4, "hawk.conv_width": 4,
        "local_attention.n_heads": 2, "local_attention.window": 8,
    });
    let io = TaskIo::per_token(11, 11, ZOO_SEQ, true);
    let build = seqbench::models::find("hybrid").unwrap().build;
    let diff = max_abs_diff("griffin", |p| build(p, &params, &io).unwrap());
    eprintln!("griffin: max |Δ| = {diff:.1e}");
    assert!(diff <= TOLERANCE, "griffin: max |Δ| = {diff:e}");
}

#[test]
fn slstm_matches_xlstm_reference() {
    zoo_parity("slstm", SlstmConfig { d_model: 16, n_heads: 4, conv_size: 4, ..Default::default() }, true);
}

#[test]
fn mingru_and_minlstm_match_reference() {
    let cfg = MinRnnConfig { d_model: 16, expand: 2, ..Default::default() };
    zoo_parity("mingru", MinGruConfig(cfg.clone()), true);
    zoo_parity("minlstm", MinLstmConfig(cfg), true);
}

#[test]
fn retnet_matches_torchscale_across_chunks() {
    // 150 positions in chunks of 64: the chunkwise form carries its state twice; the reference
    // is torchscale's parallel form with its normalisations.
    zoo_parity("retnet", RetNetConfig { d_model: 16, mlp_ratio: 2, n_heads: 2, chunk: 64, ..Default::default() }, true);
}

#[test]
fn mamba2_matches_its_step_recurrence() {
    let cfg = Mamba2Config { d_model: 16, mlp_ratio: 2, d_state: 8, headdim: 8, chunk: 64, ..Default::default() };
    zoo_parity("mamba2", cfg, true);
}

#[test]
fn gla_matches_fla_naive_recurrence() {
    // Chunks of 16 over 150 positions: the per-dimension decay crosses nine chunk boundaries.
    let cfg = GlaConfig { d_model: 16, mlp_ratio: 2, n_heads: 2, chunk: ChunkSize::Fixed(16), ..Default::default() };
    zoo_parity("gla", cfg.clone(), true);
    zoo_parity("gla_conv", GlaConfig { use_short_conv: true, ..cfg }, true);
}

#[test]
fn deltanet_and_gated_deltanet_match_fla_naive_recurrence() {
    let cfg = DeltaConfig { d_model: 16, mlp_ratio: 2, n_heads: 2, chunk: ChunkSize::Fixed(64), ..Default::default() };
    zoo_parity("deltanet", DeltaNetConfig(cfg.clone()), true);
    zoo_parity("gated_deltanet", GatedDeltaNetConfig(cfg), true);
}

#[test]
fn deltaproduct_matches_fla_naive_recurrence() {
    // Two Householder steps per token: 300 interleaved steps in chunks of 64.
    let cfg = DeltaConfig {
        d_model: 16,
        mlp_ratio: 2,
        n_heads: 2,
        chunk: ChunkSize::Fixed(64),
        num_householder: 2,
        allow_neg_eigval: true,
        ..Default::default()
    };
    zoo_parity("deltaproduct", DeltaProductConfig(cfg), true);
}

#[test]
fn hgrn2_matches_fla_naive_recurrence() {
    // Two heads of 8 state dimensions; the second layer reads the model-level lower bounds.
    zoo_parity(
        "hgrn2",
        Hgrn2Config { d_model: 16, mlp_ratio: 2, expand_ratio: 8, chunk: ChunkSize::Fixed(16), ..Default::default() },
        true,
    );
}

#[test]
fn rwkv6_matches_fla_naive_recurrence() {
    let cfg = Rwkv6Config {
        d_model: 16,
        mlp_ratio: 2,
        n_heads: 2,
        proj_low_rank_dim: 8,
        gate_low_rank_dim: 4,
        chunk: ChunkSize::Fixed(16),
        ..Default::default()
    };
    zoo_parity("rwkv6", cfg, true);
}

/// Three layers: the second and third mix in the first layer's values.
#[test]
fn rwkv7_matches_fla_recurrence() {
    let cfg = Rwkv7Config {
        d_model: 16,
        n_layers: 3,
        mlp_ratio: 2,
        head_dim: 8,
        decay_low_rank_dim: 4,
        a_low_rank_dim: 4,
        v_low_rank_dim: 4,
        gate_low_rank_dim: 8,
        chunk: ChunkSize::Fixed(16),
        ..Default::default()
    };
    zoo_parity("rwkv7", cfg, true);
}

#[test]
fn mlstm_matches_xlstm_parallel_form() {
    // d_model 16 → inner width 64 (rounded up to a multiple of 64), two heads of 32.
    zoo_parity("mlstm", MlstmConfig { d_model: 16, mlp_ratio: 2, n_heads: 2, chunk: 64, ..Default::default() }, true);
}

#[test]
fn dlinear_and_nlinear_match_reference() {
    let cfg = LinearConfig { d_model: 16, kernel: 3, ..Default::default() };
    zoo_parity("dlinear_causal", cfg.clone(), true);
    zoo_parity("dlinear", cfg.clone(), false);
    zoo_parity("nlinear", LinearConfig { variant: LinearVariant::Nlinear, ..cfg }, false);
}
