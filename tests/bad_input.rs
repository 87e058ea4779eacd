//! Bad input never panics and always says where and what: the malformed-suite corpus in
//! tests/bad_suites (each file's header says the expected message, `line:col` and key path),
//! unreadable files, bad flags and a bad environment — all exit 2 before any job starts.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn seqbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqbench")).args(args).current_dir(cwd).output().expect("run seqbench")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 2, one `Error: ` line naming `file`, no panic or backtrace.
fn assert_clean_error(out: &Output, file: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "exit code for {file}:\n{err}");
    assert!(err.starts_with("Error: "), "{file}: {err}");
    assert!(err.contains(file), "the error names {file}: {err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{file}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

fn header(text: &str, field: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(&format!("# {field}: ")).map(str::to_string))
}

#[test]
fn every_malformed_suite_gets_a_located_error() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("tests/bad_suites");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus has {} suites", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let out = seqbench(&["plan", path.to_str().unwrap()], &dir);
        let reported_file = header(&text, "file").unwrap_or_else(|| name.clone());
        let err = assert_clean_error(&out, &reported_file);
        let expect = header(&text, "expect").expect("each corpus file says what it expects");
        assert!(err.contains(&expect), "{name}: expected {expect:?} in {err}");
        if let Some(at) = header(&text, "at") {
            assert!(err.contains(&format!("{reported_file}:{at}: ")), "{name}: expected position {at} in {err}");
        }
        if let Some(key) = header(&text, "key") {
            assert!(err.contains(&format!("`{key}`: ")), "{name}: expected key {key} in {err}");
        }
    }
}

#[test]
fn unreadable_suite_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    std::fs::write(cwd.join("empty.yaml"), "").unwrap();
    std::fs::write(cwd.join("latin1.yaml"), b"name: caf\xe9\n").unwrap();
    std::fs::create_dir(cwd.join("adir.yaml")).unwrap();
    let cases = [
        ("empty.yaml", "file is empty; expected a YAML mapping"),
        ("latin1.yaml", "latin1.yaml:1:10: not valid UTF-8"),
        ("adir.yaml", "is a directory; expected a suite YAML file"),
        ("missing.yaml", "cannot read suite"),
    ];
    for (file, expect) in cases {
        for command in ["plan", "run"] {
            let err = assert_clean_error(&seqbench(&[command, file], cwd), file);
            assert!(err.contains(expect), "{file}: {err}");
        }
    }
    assert!(!cwd.join("results").exists(), "nothing written for bad input");
}

const SMALL: &str = "name: small\ndefaults: {steps: 2, batch_size: 4, threads: 1}\nmodels: [{arch: gru, d_model: 8, n_layers: 1}]\ntasks: [{task: fault, mode: none}]\n";

#[test]
fn bad_flags_and_environment_stop_before_any_job() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    std::fs::write(cwd.join("small.yaml"), SMALL).unwrap();
    for args in [&["run", "small.yaml", "--jobs", "0"][..], &["run", "small.yaml", "--jbos", "2"], &["frobnicate"]] {
        let out = seqbench(args, cwd);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
    // A results directory that cannot be created (a file is in the way).
    std::fs::write(cwd.join("blocked"), "").unwrap();
    let err = assert_clean_error(&seqbench(&["run", "small.yaml", "--out", "blocked/results"], cwd), "blocked/results");
    assert!(err.contains("cannot create the results directory"), "{err}");
    // Too little free space: the threshold is raised far above any disk.
    let out = Command::new(env!("CARGO_BIN_EXE_seqbench"))
        .args(["run", "small.yaml", "--out", "res"])
        .current_dir(cwd)
        .env("SEQBENCH_MIN_FREE_MB", "1000000000000")
        .output()
        .unwrap();
    let err = assert_clean_error(&out, "res/small");
    assert!(err.contains("MiB free on this file system"), "{err}");
    assert_eq!(std::fs::read_dir(cwd.join("res/small")).unwrap().count(), 0, "no run directory left behind");
    // Resuming something that is not a run directory.
    let err = assert_clean_error(&seqbench(&["run", "small.yaml", "--resume", "res"], cwd), "res");
    assert!(err.contains("not a seqbench run directory"), "{err}");
    // A sweep past the confirmation limit needs --yes.
    let seeds: Vec<String> = (0..1001).map(|s| s.to_string()).collect();
    let big = SMALL.replace("threads: 1}", &format!("threads: 1, seeds: [{}]}}", seeds.join(", ")));
    std::fs::write(cwd.join("big.yaml"), big).unwrap();
    let err = assert_clean_error(&seqbench(&["run", "big.yaml", "--out", "res"], cwd), "big.yaml");
    assert!(err.contains("1001 jobs") && err.contains("--yes"), "{err}");
}

/// `device: cuda` on a machine without CUDA is refused before any job runs (it used to pass the
/// checks and then fail every job). Skipped where libtorch does see a CUDA device.
#[test]
fn cuda_without_cuda_is_refused_before_any_job() {
    if tch::Cuda::is_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("gpu.yaml");
    std::fs::write(
        &suite,
        "name: gpu\ndefaults: {device: cuda, steps: 2}\nmodels: [{arch: lstm, d_model: 8}]\n\
         tasks: [{task: mqar, vocab_size: 16, seq_len: 8, num_kv_pairs: 2, train_examples: 8}]\n",
    )
    .unwrap();
    let out = seqbench(&["run", "gpu.yaml", "--out", "results"], tmp.path());
    let err = assert_clean_error(&out, "gpu.yaml");
    assert!(err.contains("`device: cuda`") && err.contains("no CUDA device"), "{err}");
    assert!(!tmp.path().join("results").exists(), "no run directory for a refused run");
}

#[test]
fn completions_for_each_shell_and_a_clear_error_for_others() {
    let tmp = tempfile::tempdir().unwrap();
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef seqbench"), ("fish", "complete -c seqbench")] {
        let out = seqbench(&["completions", shell], tmp.path());
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && script.contains(marker), "{shell}: {script:.200}");
        assert!(script.contains("resume"), "{shell}: the run flags are completed");
    }
    let out = seqbench(&["completions", "tcsh"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("possible values"), "{}", stderr(&out));
}

#[test]
fn every_problem_of_a_suite_is_reported_in_one_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = "name: several\ndefaults: { steps: 10, batch_sise: 4 }\nmodels:\n  - preset: lstm-tinyy\n  - { arch: gru, d_model: 8 }\ntasks:\n  - { task: mqar, seq_len: 64, num_kv_pairs: 100 }\n  - { task: parity_chek }\n";
    std::fs::write(tmp.path().join("s.yaml"), suite).unwrap();
    let out = seqbench(&["plan", "s.yaml"], tmp.path());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("Error: 4 problems:\n"), "{err}");
    for expect in [
        "s.yaml:4:5: `models[0].preset`: preset `lstm-tinyy` not found; did you mean `lstm-tiny`?",
        "s.yaml:8:7: `tasks[1].task`: unknown task `parity_chek`; did you mean `parity_check`?",
        "s.yaml:2:24: `defaults.batch_sise`: unknown field `batch_sise`",
        "s.yaml:7:32: `tasks[0].num_kv_pairs`: must be ≥ 1",
    ] {
        assert!(err.lines().any(|l| l.starts_with("  - ") && l.contains(expect)), "expected {expect:?} in\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}
