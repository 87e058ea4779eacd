//! End to end through the real binary: job isolation (panic, abort, timeout, error, NaN each
//! get their status while the other jobs succeed), resume, and exit codes.
use seqbench::record::{Record, Status};
use seqbench::store::read_records;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn seqbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqbench")).args(args).current_dir(cwd).output().expect("run seqbench")
}

fn write_suite(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The single run directory under `out/<suite>/`.
fn run_dir(out: &Path, suite: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join(suite))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("latest"))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One quick job and one that hangs for two minutes.
const QUICK_AND_HANG: &str = "\
name: faults
defaults:
  steps: 4
  batch_size: 8
  timeout_s: 120
  threads: 1
models:
  - arch: lstm
    d_model: 8
    n_layers: 1
tasks:
  - task: fault
    mode: [none, hang]
";

const FAULTS: &str = "\
name: faults
defaults:
  steps: 4
  batch_size: 8
  timeout_s: 60
  threads: 1
models:
  - arch: lstm
    d_model: 8
    n_layers: 1
tasks:
  - task: fault
    mode: [none, panic, abort, segfault, error, nan]
  - task: fault
    name: hang
    mode: hang
    overrides:
      timeout_s: 3
  - task: fault
    name: oom
    mode: oom
    overrides:
      max_memory: 1GiB
";

#[test]
fn each_failure_mode_gets_its_status_and_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = write_suite(tmp.path(), "faults", FAULTS);
    let out = seqbench(&["run", suite.to_str().unwrap(), "--out", "res", "--jobs", "3"], tmp.path());
    assert_eq!(out.status.code(), Some(3), "exit 3 when some jobs fail; stderr:\n{}", stderr(&out));
    let dir = run_dir(&tmp.path().join("res"), "faults");
    let (records, warnings) = read_records(&dir.join("records.jsonl")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let by_mode: HashMap<String, &Record> =
        records.iter().map(|r| (r.params["task.mode"].as_str().unwrap().to_string(), r)).collect();
    let expect = [
        ("none", Status::Ok),
        ("panic", Status::Panic),
        ("abort", Status::Crashed),
        ("segfault", Status::Crashed),
        ("oom", Status::Oom),
        ("error", Status::Failed),
        ("nan", Status::Diverged),
        ("hang", Status::Timeout),
    ];
    assert_eq!(records.len(), expect.len());
    for (mode, status) in expect {
        let r = by_mode[mode];
        assert_eq!(r.status, status, "mode {mode}: {:?}", r.reason);
        if status != Status::Ok {
            assert!(r.reason.is_some(), "mode {mode} has a reason");
        }
    }
    let ok = by_mode["none"];
    let m = &ok.measurements;
    assert!(m.accuracy.is_some_and(|a| (0.0..=1.0).contains(&a)));
    assert!(m.train_tokens_per_s.unwrap() > 0.0 && m.infer_tokens_per_s.unwrap() > 0.0);
    assert!(m.peak_mem_bytes.unwrap() > 10 << 20, "peak RSS of a libtorch process");
    assert_eq!(m.threads, Some(1));
    assert!(m.n_params.unwrap() > 0 && m.flops_per_token.unwrap() > 0.0);
    assert!(by_mode["panic"].reason.as_deref().unwrap().contains("deliberate panic"));
    assert!(by_mode["abort"].reason.as_deref().unwrap().contains("SIGABRT"));
    assert!(by_mode["segfault"].reason.as_deref().unwrap().contains("SIGSEGV"));
    assert!(by_mode["oom"].reason.as_deref().unwrap().contains("out of memory"), "{:?}", by_mode["oom"].reason);
    assert!(by_mode["panic"].stderr_tail.as_deref().unwrap().contains("deliberate panic"));
    assert!(by_mode["error"].reason.as_deref().unwrap().contains("deliberate error"));
    assert!(by_mode["nan"].reason.as_deref().unwrap().contains("NaN"));
    assert!(by_mode["hang"].wall_s < 30.0, "killed at its 3 s limit");
    // the report lists every failure with its status
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for status in ["panic", "crashed", "failed", "diverged", "timeout", "oom"] {
        assert!(report.contains(&format!("| {status} |")), "report lists {status}:\n{report}");
    }
    assert!(dir.join("env.json").is_file() && dir.join("suite.resolved.yaml").is_file());
    assert!(dir.join("tables/summary.csv").is_file() && dir.join("tables/records.parquet").is_file());
    assert!(!dir.join("run.lock").exists(), "lock released");
}

const SMALL: &str = "\
name: small
defaults:
  steps: 3
  batch_size: 8
  threads: 1
  seeds: [0, 1, 2, 3]
models:
  - arch: gru
    d_model: 8
    n_layers: 1
tasks:
  - task: fault
    mode: none
";

#[test]
fn resume_runs_only_missing_jobs_and_sets_torn_lines_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = write_suite(tmp.path(), "small", SMALL);
    let suite_arg = suite.to_str().unwrap();
    let out = seqbench(&["run", suite_arg, "--out", "res", "--jobs", "2"], tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = run_dir(&tmp.path().join("res"), "small");
    let records_path = dir.join("records.jsonl");
    let text = std::fs::read_to_string(&records_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    // Keep two records, then simulate a crash in the middle of writing a third.
    let kept = format!("{}\n{}\n{}", lines[0], lines[2], &lines[1][..40]);
    std::fs::write(&records_path, kept).unwrap();

    let dry = seqbench(&["run", suite_arg, "--resume", dir.to_str().unwrap(), "--dry-run"], tmp.path());
    assert!(String::from_utf8_lossy(&dry.stdout).contains("2 jobs\n"), "{}", String::from_utf8_lossy(&dry.stdout));
    // Without the suite: the run's own copy (suite.resolved.yaml) says what to run.
    let out = seqbench(&["run", "--resume", dir.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 jobs to run (2 already recorded)"), "{}", stderr(&out));

    let (records, warnings) = read_records(&records_path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut ids: Vec<&str> = records.iter().map(|r| r.job_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((records.len(), ids.len()), (4, 4), "every job exactly once");
    assert_eq!(std::fs::read_to_string(dir.join("records.jsonl.torn")).unwrap(), &lines[1][..40]);

    // A run directory of another suite is refused before anything runs.
    let other = write_suite(tmp.path(), "other", &SMALL.replace("name: small", "name: other"));
    let out = seqbench(&["run", other.to_str().unwrap(), "--resume", dir.to_str().unwrap()], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a run of suite `small`"), "{}", stderr(&out));
}

#[test]
fn retry_failed_reruns_jobs_whose_newest_record_is_not_ok_and_the_newest_counts() {
    let tmp = tempfile::tempdir().unwrap();
    // Too short a limit: both jobs time out. The limit is not part of a job's identity, so the
    // same jobs run again once it is raised.
    let short = SMALL.replace("  seeds: [0, 1, 2, 3]", "  seeds: [0, 1]\n  timeout_s: 0.01");
    let suite = write_suite(tmp.path(), "small", &short);
    let out = seqbench(&["run", suite.to_str().unwrap(), "--out", "res"], tmp.path());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let dir = run_dir(&tmp.path().join("res"), "small");
    let resume = ["run", suite.to_str().unwrap(), "--resume", dir.to_str().unwrap()];
    let out = seqbench(&resume, tmp.path());
    assert!(stderr(&out).contains("0 jobs to run (2 already recorded)"), "plain --resume skips them: {}", stderr(&out));

    std::fs::write(&suite, short.replace("timeout_s: 0.01", "timeout_s: 600")).unwrap();
    let out = seqbench(&[&resume[..], &["--retry-failed"]].concat(), tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("retrying 2 jobs whose newest record is not ok"), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.join("records.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 4, "the old records stay in the file");
    let (records, _) = read_records(&dir.join("records.jsonl")).unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.status == seqbench::record::Status::Ok), "the newest records count");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("2 jobs, 2 ok, 0 not ok. 2 earlier records"), "{report}");
    // Without --resume the flag is refused by the argument parser.
    let out = seqbench(&["run", suite.to_str().unwrap(), "--retry-failed"], tmp.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn bad_input_exits_2_with_a_located_message() {
    let tmp = tempfile::tempdir().unwrap();
    let out = seqbench(&["plan", "missing.yaml"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("Error: missing.yaml: cannot read suite"), "{err}");
    let suite = write_suite(tmp.path(), "bad", &SMALL.replace("d_model: 8", "d_model: -8"));
    let out = seqbench(&["run", suite.to_str().unwrap()], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:9:5: `models[0].d_model`: must be at least 1, got -8"), "{err}");
    assert!(!err.contains("panicked") && !tmp.path().join("results").exists(), "{err}");
    let out = seqbench(&["run", suite.to_str().unwrap(), "--jobs", "0"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plan_lists_jobs_and_count() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = write_suite(tmp.path(), "small", SMALL);
    let out = seqbench(&["plan", suite.to_str().unwrap()], tmp.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.ends_with("4 jobs\n"));
    assert!(text.contains("fault") && text.contains("gru") && text.contains("seed=3"));
}

/// `--only` runs a slice of the suite, the run stays planned whole (its report says so and
/// `--resume` runs the rest), and a key or value no job has stops before anything runs.
#[test]
fn only_runs_a_slice_and_resume_runs_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = write_suite(tmp.path(), "small", SMALL);
    let suite_arg = suite.to_str().unwrap();
    let plan = seqbench(&["plan", suite_arg, "--only", "seed=1", "--only", "seed=3"], tmp.path());
    assert!(String::from_utf8_lossy(&plan.stdout).ends_with("2 jobs\n"), "{}", String::from_utf8_lossy(&plan.stdout));
    for (flag, says) in [
        ("sed=1", "no job of the suite has `sed`; did you mean `seed`?"),
        ("seed=7", "the suite's jobs have seed = 0, 1, 2, 3"),
        ("model=lstm", "the suite's jobs have model = gru"),
        ("seed", "expected KEY=VALUE"),
    ] {
        let out = seqbench(&["run", suite_arg, "--out", "res", "--only", flag], tmp.path());
        assert_eq!(out.status.code(), Some(2), "--only {flag}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "--only {flag}: {}", stderr(&out));
    }
    assert!(!tmp.path().join("res").exists(), "nothing ran");

    let only = ["run", suite_arg, "--out", "res", "--only", "seed=2", "--only", "model=gru", "--only", "d_model=8"];
    let out = seqbench(&only, tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 jobs to run (0 already recorded, 3 left out by --only)"), "{}", stderr(&out));
    let dir = run_dir(&tmp.path().join("res"), "small");
    let (records, _) = read_records(&dir.join("records.jsonl")).unwrap();
    assert_eq!(records.iter().map(|r| r.seed).collect::<Vec<_>>(), [2]);
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("Incomplete: 4 jobs planned, 1 recorded, 3 missing"), "{report}");

    let out = seqbench(&["run", "--resume", dir.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("3 jobs to run (1 already recorded)"), "{}", stderr(&out));
    let (records, _) = read_records(&dir.join("records.jsonl")).unwrap();
    assert_eq!(records.len(), 4);
}

/// Starts `seqbench run` on QUICK_AND_HANG with two slots, in the background.
fn spawn_quick_and_hang(cwd: &Path, stderr: std::process::Stdio) -> std::process::Child {
    let suite = write_suite(cwd, "faults", QUICK_AND_HANG);
    Command::new(env!("CARGO_BIN_EXE_seqbench"))
        .args(["run", suite.to_str().unwrap(), "--out", "res", "--jobs", "2"])
        .current_dir(cwd)
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Interrupts a run with `signal` once the quick job is recorded, while `hang` still runs.
fn interrupt_mid_run(signal: i32) {
    let tmp = tempfile::tempdir().unwrap();
    let child = spawn_quick_and_hang(tmp.path(), std::process::Stdio::piped());
    let dir = only_run_dir_when_created(&tmp.path().join("res"), "faults");
    wait_for_lines(&dir.join("records.jsonl"), 1);
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    let (recs, _) = read_records(&dir.join("records.jsonl")).unwrap();
    assert_eq!(recs.len(), 1, "only the finished job is recorded");
    assert_eq!(recs[0].status, Status::Ok);
    assert!(!dir.join("run.lock").exists(), "lock released on interrupt");
    assert!(dir.join("report.md").is_file(), "the report of what finished is written");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("Incomplete: 2 jobs planned, 1 recorded, 1 missing"), "{report}");
    assert!(report.contains("seqbench run --resume"), "the report says how to finish: {report}");
}

#[test]
fn ctrl_c_keeps_finished_records_and_prints_the_resume_command() {
    interrupt_mid_run(libc::SIGINT);
}

#[test]
fn sigterm_from_a_scheduler_is_handled_like_ctrl_c() {
    interrupt_mid_run(libc::SIGTERM);
}

/// Polls `probe` every 50 ms until it yields a value; panics naming `what` after 60 s.
fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Some(found) = probe() {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Waits until `path` holds at least `n` lines.
fn wait_for_lines(path: &Path, n: usize) {
    wait_until(&format!("{} to reach {n} lines", path.display()), || {
        std::fs::read_to_string(path).is_ok_and(|t| t.lines().count() >= n).then_some(())
    })
}

/// Waits for the first run directory under `out/<suite>/` and returns it.
fn only_run_dir_when_created(out: &Path, suite: &str) -> PathBuf {
    wait_until("a run directory", || {
        std::fs::read_dir(out.join(suite)).ok().and_then(|mut d| d.next()).and_then(|e| e.ok()).map(|e| e.path())
    })
}

#[test]
fn sigkill_of_the_coordinator_loses_nothing_and_resume_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let text = SMALL.replace("seeds: [0, 1, 2, 3]", "seeds: [0, 1, 2, 3, 4, 5]");
    let suite = write_suite(tmp.path(), "small", &text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqbench"))
        .args(["run", suite.to_str().unwrap(), "--out", "res", "--jobs", "1"])
        .current_dir(tmp.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dir = only_run_dir_when_created(&tmp.path().join("res"), "small");
    wait_for_lines(&dir.join("records.jsonl"), 2);
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(dir.join("run.lock").exists(), "a stale lock is left behind");
    let (before, _) = read_records(&dir.join("records.jsonl")).unwrap();
    assert!(before.len() >= 2 && before.len() < 6, "killed mid-run: {} records", before.len());

    let out = seqbench(&["run", suite.to_str().unwrap(), "--resume", dir.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "resume takes over the stale lock: {}", stderr(&out));
    let (records, warnings) = read_records(&dir.join("records.jsonl")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut ids: Vec<&str> = records.iter().map(|r| r.job_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((records.len(), ids.len()), (6, 6), "0 lost, 0 duplicated");
}

#[test]
fn a_second_coordinator_is_kept_out_by_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let first = spawn_quick_and_hang(tmp.path(), std::process::Stdio::null());
    let dir = only_run_dir_when_created(&tmp.path().join("res"), "faults");
    wait_for_lines(&dir.join("run.lock"), 1);
    let out = seqbench(&["run", "faults.yaml", "--resume", dir.to_str().unwrap()], tmp.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("in use by another seqbench") && err.contains(&first.id().to_string()), "{err}");
    // SAFETY: interrupting the child we spawned.
    unsafe { libc::kill(first.id() as i32, libc::SIGINT) };
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
}

/// `isolation: inline` runs jobs in the coordinator's process: no process start, and an error
/// or a panic still becomes a record instead of ending the run.
#[test]
fn inline_jobs_record_errors_and_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = write_suite(
        tmp.path(),
        "inline",
        "\
name: inline
defaults:
  steps: 2
  batch_size: 4
  isolation: inline
models:
  - arch: lstm
    d_model: 8
    n_layers: 1
tasks:
  - task: noop
  - task: fault
    name: error
    mode: error
  - task: fault
    name: panic
    mode: panic
  - task: fault
    name: train-1
    mode: none
  - task: mqar
    name: train-2
    vocab_size: 16
    seq_len: 8
    num_kv_pairs: 2
    train_examples: 64
    test_examples: 16
",
    );
    let out = seqbench(&["run", suite.to_str().unwrap(), "--out", "results"], tmp.path());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let run = run_dir(&tmp.path().join("results"), "inline");
    let (records, _) = seqbench::store::read_records(&run.join("records.jsonl")).unwrap();
    let status: std::collections::BTreeMap<String, String> =
        records.iter().map(|r| (r.task_label.clone(), r.status.as_str().to_string())).collect();
    assert_eq!(status["noop"], "ok");
    assert_eq!(status["error"], "failed");
    assert_eq!(status["panic"], "panic");
    // Two real trainings in one process: libtorch's thread settings must not fail the second.
    assert_eq!((status["train-1"].as_str(), status["train-2"].as_str()), ("ok", "ok"), "{records:?}");
    assert!(records.iter().all(|r| r.log_file.is_none()), "inline jobs start no process and write no job log");
}

/// SEQBENCH_MALLOC=keep: the record says so, and a job over `max_memory` is still an OOM (with
/// mmap off, the limit is met by the heap instead); a wrong value is refused before any job.
#[test]
fn kept_malloc_is_recorded_and_limits_still_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = "\
name: malloc
defaults:
  steps: 4
  batch_size: 8
  timeout_s: 60
  threads: 1
models:
  - arch: lstm
    d_model: 8
    n_layers: 1
tasks:
  - task: fault
    mode: none
  - task: fault
    name: oom
    mode: oom
    overrides:
      max_memory: 1GiB
";
    let path = write_suite(tmp.path(), "malloc", suite);
    let run = |value: &str, out: &str| {
        Command::new(env!("CARGO_BIN_EXE_seqbench"))
            .args(["run", path.to_str().unwrap(), "--out", out])
            .env("SEQBENCH_MALLOC", value)
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    run("keep", "kept");
    let (records, _) = read_records(&run_dir(&tmp.path().join("kept"), "malloc").join("records.jsonl")).unwrap();
    let by_task: HashMap<&str, &Record> = records.iter().map(|r| (r.task_label.as_str(), r)).collect();
    assert_eq!(by_task["fault"].status, Status::Ok);
    assert_eq!(by_task["oom"].status, Status::Oom, "{:?}", by_task["oom"].reason);
    assert!(by_task["fault"].measurements.allocator.as_deref().unwrap().contains("freed memory kept"));
    let wrong = run("sometimes", "wrong");
    assert_eq!(wrong.status.code(), Some(2), "a bad value is bad input, refused before any job");
    assert!(
        stderr(&wrong).contains("SEQBENCH_MALLOC=\"sometimes\": expected `keep` or `default`"),
        "{}",
        stderr(&wrong)
    );
    assert!(!tmp.path().join("wrong").exists(), "no run directory for a refused run");
}

/// `--json` and `-q` for scripts: `plan --json` lists the jobs; `run -q --json` prints one JSON
/// summary on stdout and no progress lines.
#[test]
fn json_output_and_quiet_runs_for_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = write_suite(tmp.path(), "small", &SMALL.replace("seeds: [0, 1, 2, 3]", "seeds: [0, 1]"));
    let out = seqbench(&["plan", "--json", suite.to_str().unwrap()], tmp.path());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan --json is JSON");
    assert_eq!(plan["count"], 2);
    assert_eq!(plan["jobs"][1]["seed"], 1);
    assert_eq!(plan["jobs"][0]["arch"], "gru");
    let out = seqbench(&["run", "-q", "--json", suite.to_str().unwrap(), "--out", "res"], tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("run --json prints one JSON object");
    assert_eq!((summary["finished"].as_u64(), summary["not_ok"].as_u64()), (Some(2), Some(0)));
    assert!(summary["run_dir"].as_str().unwrap().contains("res/small/"));
    assert!(!stderr(&out).contains("[1/2]") && !stderr(&out).contains("jobs to run"), "quiet: {}", stderr(&out));
}
