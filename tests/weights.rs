//! `save_weights` / `load_weights` through the real binary: the files appear under the run
//! directory with the VarStore's names, a job started from a saved initialisation trains to the
//! same result as the job that wrote it, and a file that does not fit is a clear job failure.
use seqbench::record::{Record, Status};
use seqbench::store::read_records;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tch::Tensor;

fn seqbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqbench")).args(args).current_dir(cwd).output().expect("run seqbench")
}

fn run_suite(cwd: &Path, name: &str, text: &str) -> (Output, PathBuf) {
    std::fs::write(cwd.join(format!("{name}.yaml")), text).unwrap();
    let out = seqbench(&["run", &format!("{name}.yaml"), "--out", "res"], cwd);
    let dir = std::fs::read_dir(cwd.join("res").join(name)).unwrap().next().unwrap().unwrap().path();
    (out, dir)
}

fn records(dir: &Path) -> Vec<Record> {
    read_records(&dir.join("records.jsonl")).unwrap().0
}

fn suite(name: &str, arch: &str, extra: &str) -> String {
    format!(
        "name: {name}\ndefaults:\n  steps: 6\n  batch_size: 8\n  threads: 1\n  generate_tokens: 0\n{extra}\
         models:\n  - arch: {arch}\n    d_model: 8\n    n_layers: 1\n\
         tasks:\n  - task: mqar\n    vocab_size: 16\n    seq_len: 8\n    num_kv_pairs: 2\n    train_examples: 64\n    test_examples: 16\n"
    )
}

#[test]
fn saved_initial_weights_restart_the_same_training() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, dir) = run_suite(tmp.path(), "save", &suite("save", "mamba", "  save_weights: both\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first = &records(&dir)[0];
    let init = dir.join("weights").join(format!("{}.init.safetensors", first.job_id));
    let last = dir.join("weights").join(format!("{}.final.safetensors", first.job_id));
    let tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(&init).expect("init weights written");
    let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"blocks.0.mixer.a_log"), "{names:?}");
    let a_log = &tensors.iter().find(|(n, _)| n == "blocks.0.mixer.a_log").unwrap().1;
    // Mamba's A_log starts at log(1..N) in every row: readable from outside now.
    let expected = Tensor::arange_start(1, 17, (tch::Kind::Float, tch::Device::Cpu)).log();
    assert!(a_log.get(0).allclose(&expected, 1e-6, 1e-6, false));
    assert!(last.is_file(), "final weights written");

    let extra = format!("  load_weights: {}\n", init.display());
    let (out, dir) = run_suite(tmp.path(), "load", &suite("load", "mamba", &extra));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = &records(&dir)[0];
    assert_ne!(first.job_id, second.job_id, "a loaded start is another job");
    assert_eq!(first.measurements.train_loss, second.measurements.train_loss);
    assert_eq!(first.measurements.accuracy, second.measurements.accuracy);
}

#[test]
fn weights_of_another_model_fail_the_job_with_the_key_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, dir) = run_suite(tmp.path(), "lstm", &suite("lstm", "lstm", "  save_weights: init\n"));
    let job = &records(&dir)[0].job_id;
    let file = dir.join("weights").join(format!("{job}.init.safetensors"));
    let (out, dir) =
        run_suite(tmp.path(), "gru", &suite("gru", "gru", &format!("  load_weights: {}\n", file.display())));
    assert_eq!(out.status.code(), Some(3), "exit 3 when a job fails");
    let record = &records(&dir)[0];
    assert_eq!(record.status, Status::Failed);
    let reason = record.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("load_weights") && reason.contains(&file.display().to_string()), "{reason}");

    std::fs::write(tmp.path().join("missing.yaml"), suite("missing", "gru", "  load_weights: nowhere.safetensors\n"))
        .unwrap();
    let out = seqbench(&["run", "missing.yaml", "--out", "res"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("load_weights") && err.contains("nowhere.safetensors"), "{err}");
}
