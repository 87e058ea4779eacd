//! Hybrid stacks: blocks cycle through the named mixers, each built and checked by its own
//! architecture (so a one-mixer hybrid is that architecture's stack), and bad settings name
//! their key. The zoo tests cover the recurrent form, gradients and learning.
use seqbench::models::{self, TaskIo};
use seqbench::params::ParamMap;
use tch::{nn, Device};

fn combo(yaml: &str) -> ParamMap {
    serde_yaml::from_str(yaml).unwrap()
}

fn io() -> TaskIo {
    TaskIo::per_token(32, 32, 64, true)
}

/// (parameter names and shapes, FLOPs per token) of `arch` built from `yaml` as a suite would.
fn built(arch: &str, yaml: &str) -> (Vec<(String, Vec<i64>)>, f64) {
    let info = models::find(arch).unwrap();
    let params = (info.resolve)(&combo(yaml), &io()).unwrap_or_else(|e| panic!("{arch}: {e:?}"));
    let vs = nn::VarStore::new(Device::Cpu);
    let model = (info.build)(&vs.root(), &params, &io()).unwrap();
    let mut vars: Vec<(String, Vec<i64>)> = vs.variables().into_iter().map(|(k, v)| (k, v.size())).collect();
    vars.sort();
    (vars, model.flops_per_token(64))
}

#[test]
fn a_one_mixer_hybrid_is_that_architectures_stack() {
    let pure = built("mamba", "{d_model: 32, n_layers: 2, mlp_ratio: 2, d_state: 8, norm: rms}");
    let hybrid =
        built("hybrid", "{d_model: 32, n_layers: 2, mlp_ratio: 2, norm: rms, layers: mamba, mamba.d_state: 8}");
    assert_eq!(hybrid, pure);
}

#[test]
fn blocks_cycle_through_the_layers() {
    let (vars, flops) = built(
        "hybrid",
        "{d_model: 32, n_layers: 3, layers: \"mamba, transformer\", mamba.d_state: 8, transformer.n_heads: 4}",
    );
    let has = |name: &str| vars.iter().any(|(k, _)| k == name);
    assert!(has("blocks.0.mixer.a_log") && has("blocks.2.mixer.a_log"), "blocks 0 and 2 are Mamba");
    assert!(has("blocks.1.mixer.qkv.weight") && !has("blocks.1.mixer.a_log"), "block 1 is attention");
    assert_eq!(vars.iter().find(|(k, _)| k == "blocks.0.mixer.a_log").unwrap().1, [64, 8], "mamba.d_state reached it");
    let (_, mamba) = built("mamba", "{d_model: 32, n_layers: 3, mlp_ratio: 2, d_state: 8}");
    let (_, attention) = built("transformer", "{d_model: 32, n_layers: 3, mlp_ratio: 2, n_heads: 4}");
    // FLOPs compose from the blocks: two Mamba blocks and one attention block, each with its
    // MLP, and the head once (2/3 of it from the Mamba stack, 1/3 from the attention one).
    let expected = mamba * 2.0 / 3.0 + attention / 3.0;
    assert!((flops - expected).abs() < 1e-9 * expected, "{flops} vs {expected}");
}

#[test]
fn bad_settings_name_their_key() {
    let info = models::find("hybrid").unwrap();
    let err = |yaml: &str| (info.resolve)(&combo(yaml), &io()).unwrap_err();
    let e = err("{layers: \"mamba,transfomer\"}");
    assert_eq!(e.key, "layers");
    assert!(e.message.contains("did you mean `transformer`"), "{e:?}");
    let e = err("{layers: \"mamba,hgrn2\"}");
    assert!(e.message.contains("cannot be a block"), "{e:?}");
    let e = err("{layers: mamba, gla.n_heads: 2}");
    assert_eq!(e.key, "gla.n_heads");
    assert!(e.message.contains("not among the layers"), "{e:?}");
    let e = err("{layers: mamba, mamba.d_stat: 2}");
    assert_eq!(e.key, "mamba.d_stat", "{e:?}");
    let e = err("{layers: transformer, d_model: 30, transformer.n_heads: 4}");
    assert_eq!(e.key, "transformer.n_heads", "{e:?}");
    let e = err("{layers: mamba, mamba.d_model: 16}");
    assert!(e.message.contains("the hybrid's own"), "{e:?}");
}
