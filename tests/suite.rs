//! Suite parsing, validation errors (file, line, column, key), sweep expansion and job ids.
use seqbench::error::InputError;
use seqbench::suite::{expand, load_str};
use std::path::Path;

const VALID: &str = "\
name: sweep
defaults:
  steps: 10
  lr: [1.0e-3, 3.0e-3]
  seeds: [0, 1]
models:
  - arch: lstm
    d_model: [32, 64]
  - arch: gru
  - arch: transformer
    n_heads: 2
tasks:
  - task: mqar
    vocab_size: 128
    seq_len: [32, 64, 96]
    num_kv_pairs: 4
    overrides:
      batch_size: 8
";

fn parse(text: &str) -> Result<Vec<seqbench::job::Job>, InputError> {
    let suite = load_str(text, Path::new("suites/test.yaml"))?;
    expand(&suite)
}

fn error(text: &str) -> InputError {
    parse(text).expect_err("suite should be rejected")
}

#[test]
fn sweep_expansion_counts() {
    let jobs = parse(VALID).unwrap();
    // seq_len 3 × lr 2 × seeds 2 × (lstm d_model 2 + gru 1 + transformer 1)
    assert_eq!(jobs.len(), 3 * 2 * 2 * 4);
    assert!(jobs.iter().all(|j| j.train.batch_size == 8 && j.train.steps == Some(10)));
    let lstm = jobs.iter().find(|j| j.model.kind == "lstm").unwrap();
    assert_eq!(lstm.swept, vec!["task.seq_len", "model.d_model", "train.lr"]);
    let mut ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), jobs.len(), "job ids are unique");
}

#[test]
fn job_ids_are_stable_and_sensitive() {
    let a = parse(VALID).unwrap();
    let b = parse(VALID).unwrap();
    assert_eq!(a, b, "same suite, same jobs and ids");
    // A change in any field changes the ids of the jobs it touches, and only those.
    let changed = parse(&VALID.replace("n_heads: 2", "n_heads: 4")).unwrap();
    for (x, y) in a.iter().zip(&changed) {
        assert_eq!(x.job_id == y.job_id, x.model.kind != "transformer", "{} vs {}", x.job_id, y.job_id);
    }
    let more_steps = parse(&VALID.replace("steps: 10", "steps: 11")).unwrap();
    assert!(a.iter().zip(&more_steps).all(|(x, y)| x.job_id != y.job_id));
    // The display name does not enter the id.
    let renamed = parse(&VALID.replace("  - arch: gru\n", "  - arch: gru\n    name: my-gru\n")).unwrap();
    assert_eq!(a.iter().map(|j| &j.job_id).collect::<Vec<_>>(), renamed.iter().map(|j| &j.job_id).collect::<Vec<_>>());
}

#[test]
fn unknown_top_level_key_is_located() {
    let e = error(&VALID.replace("defaults:", "defualts:"));
    assert_eq!(e.line_col, Some((2, 1)), "{e}");
    assert!(e.message.contains("unknown field `defualts`"), "{e}");
    assert!(e.to_string().starts_with("suites/test.yaml:2:1: "), "{e}");
}

#[test]
fn unknown_model_parameter_is_located() {
    let e = error(&VALID.replace("d_model: [32, 64]", "d_modle: [32, 64]"));
    assert_eq!(e.key_path, "models[0].d_modle");
    assert_eq!(e.line_col, Some((8, 5)), "{e}");
    assert!(e.message.contains("expected one of"), "{e}");
}

#[test]
fn unknown_training_setting_is_located() {
    let e = error(&VALID.replace("  steps: 10", "  stpes: 10"));
    assert_eq!(e.key_path, "defaults.stpes");
    assert_eq!(e.line_col, Some((3, 3)), "{e}");
    let e = error(&VALID.replace("batch_size: 8", "batchsize: 8"));
    assert_eq!(e.key_path, "tasks[0].overrides.batchsize");
    assert_eq!(e.line_col, Some((18, 7)), "{e}");
}

#[test]
fn wrong_type_names_key_and_expectation() {
    let e = error(&VALID.replace("n_heads: 2", "n_heads: two"));
    assert_eq!(e.key_path, "models[2].n_heads");
    assert_eq!(e.line_col, Some((11, 5)));
    assert!(e.message.contains("invalid type") && e.message.contains("expected a whole number"), "{e}");
    let e = error(&VALID.replace("name: sweep", "name: [a, b]"));
    assert_eq!(e.key_path, "name");
    assert_eq!(e.line_col.map(|p| p.0), Some(1), "{e}");
}

#[test]
fn bad_values_are_explained() {
    let e = error(&VALID.replace("num_kv_pairs: 4", "num_kv_pairs: 40"));
    assert_eq!(e.key_path, "tasks[0].num_kv_pairs");
    assert!(e.message.contains("4·K ≤ seq_len"), "{e}");
    let e = error(&VALID.replace("n_heads: 2", "n_heads: 3"));
    assert!(e.message.contains("divide d_model"), "{e}");
    let e = error(&VALID.replace("lr: [1.0e-3, 3.0e-3]", "lr: [1.0e-3, -1]"));
    assert_eq!(e.key_path, "defaults.lr");
    assert!(e.message.contains("positive"), "{e}");
    let e = error(&VALID.replace("- arch: gru", "- arch: gruu"));
    assert!(e.message.contains("unknown architecture `gruu`") && e.message.contains("lstm, gru"), "{e}");
    assert_eq!(e.line_col, Some((9, 5)));
    let e = error(&VALID.replace("seeds: [0, 1]", "seeds: []"));
    assert!(e.message.contains("empty"), "{e}");
    let e = error(&VALID.replace("device: auto\n", "").replace("  steps: 10", "  steps: 10\n  device: tpu"));
    assert!(e.message.contains("expected auto, cpu, cuda or cuda:N"), "{e}");
}

#[test]
fn syntax_errors_and_empty_files() {
    let e = error("name: x\nmodels:\n\t- arch: lstm\n");
    assert_eq!(e.line_col.map(|p| p.0), Some(3), "{e}");
    let e = error("   \n");
    assert!(e.message.contains("empty"), "{e}");
    let e = error("name: x\nmodels: []\ntasks: [{task: mqar}]\n");
    assert!(e.message.contains("no models"), "{e}");
}

#[test]
fn presets_resolve_and_merge() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let suite = seqbench::suite::load(&Path::new(&root).join("suites/quick.yaml")).unwrap();
    let jobs = expand(&suite).unwrap();
    assert_eq!(jobs.len(), 6);
    let t = jobs.iter().find(|j| j.model.kind == "transformer").unwrap();
    assert_eq!(t.model.label, "transformer-tiny");
    assert_eq!(t.model.params["positions"], "rope");
    let text = "name: p\nmodels:\n  - preset: transformer-tiny\n    n_layers: 3\ntasks:\n  - task: mqar\n    vocab_size: 64\n    seq_len: 32\n";
    let jobs = expand(&load_str(text, &Path::new(&root).join("suites/x.yaml")).unwrap()).unwrap();
    assert_eq!(jobs[0].model.params["n_layers"], 3, "entry keys override the preset");
    let e = load_str(&text.replace("transformer-tiny", "nope"), &Path::new(&root).join("suites/x.yaml")).unwrap_err();
    assert!(e.message.contains("preset `nope` not found"), "{e}");
}

#[test]
fn built_in_presets_work_outside_the_clone() {
    // Planned from a directory with no configs/models: the preset comes from the binary.
    let tmp = tempfile::tempdir().unwrap();
    let text = "name: p\nmodels:\n  - preset: gla-tiny\ntasks:\n  - task: mqar\n    vocab_size: 64\n    seq_len: 32\n";
    std::fs::write(tmp.path().join("s.yaml"), text).unwrap();
    let plan = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_seqbench"))
            .args(["plan", "s.yaml"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(plan().contains("gla-tiny"), "{}", plan());
    // A file beside the suite replaces the built-in preset of its name.
    std::fs::create_dir_all(tmp.path().join("configs/models")).unwrap();
    std::fs::write(tmp.path().join("configs/models/gla-tiny.yaml"), "arch: gla\nn_heads: 2\n").unwrap();
    let jobs = expand(&load_str(text, &tmp.path().join("s.yaml")).unwrap()).unwrap();
    assert_eq!(jobs[0].model.params["n_heads"], 2);
    assert!(seqbench::suite::BUNDLED_PRESETS.iter().any(|(name, _)| *name == "mamba2-tiny"));
}

#[test]
fn entries_need_distinct_names() {
    let e = error(&VALID.replace("  - arch: gru\n", "  - arch: lstm\n    n_layers: 1\n"));
    assert_eq!(e.key_path, "models[1].name");
    assert!(e.message.contains("already used by models[0]"), "{e}");
}
