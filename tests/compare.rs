//! Run comparison: an injected 20 % slowdown is flagged, seed noise is not, configurations
//! are joined on their parameters (not run-local ids), and `--fail-on-regression` gates.
use seqbench::record::Record;
use seqbench::report::compare::{compare, compare_by, MatchBy, Verdict};
use std::path::Path;
use std::process::Command;

fn record(run: &str, model: &str, seq_len: i64, seed: u64, tok_s: f64, acc: f64) -> Record {
    serde_json::from_value(serde_json::json!({
        "job_id": format!("{run}-{model}-{seq_len}-{seed}"), "run_id": run, "suite": "s", "task": "mqar",
        "task_label": "mqar", "model": model, "arch": model, "seed": seed,
        "params": {"task.seq_len": seq_len, "model.d_model": 64, "train.timeout_s": if run == "base" { 60 } else { 600 }},
        "swept": ["task.seq_len"], "status": "ok", "reason": null, "wall_s": 1.0, "hostname": "h",
        "started_at": "", "finished_at": "", "seqbench_version": "0", "stderr_tail": null, "log_file": null,
        "accuracy": acc, "train_tokens_per_s": tok_s, "infer_tokens_per_s": 3.0 * tok_s, "eval_loss": 1.0 - acc,
    }))
    .unwrap()
}

/// Three seeds per configuration with ±1 % spread, throughput scaled by `speed`.
fn run(name: &str, speed: f64, models: &[&str]) -> Vec<Record> {
    let mut out = Vec::new();
    for model in models {
        for (seed, jitter) in [(0u64, 1.0), (1, 1.01), (2, 0.99)] {
            out.push(record(name, model, 64, seed, 10_000.0 * speed * jitter, 0.9 + 0.001 * seed as f64));
        }
    }
    out
}

#[test]
fn a_twenty_percent_slowdown_is_flagged_and_noise_is_not() {
    let base = run("base", 1.0, &["lstm", "gru"]);
    let slow = run("new", 0.8, &["lstm", "gru"]);
    let c = compare(&base, &slow, 0.05);
    let throughput: Vec<_> = c.changes.iter().filter(|x| x.metric.ends_with("tokens_per_s")).collect();
    assert_eq!(throughput.len(), 4);
    for x in &throughput {
        assert_eq!(x.verdict, Verdict::Worse, "{x:?}");
        assert!((x.change + 0.2).abs() < 1e-9, "{}", x.change);
    }
    assert!(c.changes.iter().filter(|x| x.metric == "accuracy").all(|x| x.verdict == Verdict::Same));
    assert_eq!(c.regressions().count(), 4);

    let noisy = run("new", 0.98, &["lstm", "gru"]);
    assert_eq!(compare(&base, &noisy, 0.05).regressions().count(), 0, "2 % is within a 5 % threshold");
    let faster = run("new", 1.3, &["lstm", "gru"]);
    let c = compare(&base, &faster, 0.05);
    assert_eq!(c.regressions().count(), 0);
    assert!(c.changes.iter().any(|x| x.verdict == Verdict::Better));
}

#[test]
fn seed_spread_widens_the_noise_limit() {
    let mut base = run("base", 1.0, &["lstm"]);
    // A wildly spread base: the 20 % slowdown is no longer beyond the noise.
    base[1].measurements.train_tokens_per_s = Some(20_000.0);
    base[2].measurements.train_tokens_per_s = Some(4_000.0);
    let c = compare(&base, &run("new", 0.8, &["lstm"]), 0.05);
    let x = c.changes.iter().find(|x| x.metric == "train_tokens_per_s").unwrap();
    assert_eq!(x.verdict, Verdict::Same, "{x:?}");
    assert!(x.limit > 0.2);
}

#[test]
fn different_kernels_are_warned_about() {
    let with = |runs: Vec<Record>, path: &str| -> Vec<Record> {
        runs.into_iter()
            .map(|mut r| {
                r.measurements.implementation = Some(path.to_string());
                r
            })
            .collect()
    };
    let base = with(run("base", 1.0, &["transformer"]), "attention: SDPA flash");
    let c = compare(&base, &with(run("new", 1.0, &["transformer"]), "attention: SDPA math"), 0.05);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("SDPA flash in base, attention: SDPA math in new"), "{}", c.warnings[0]);
    let same = compare(&base, &with(run("new", 1.0, &["transformer"]), "attention: SDPA flash"), 0.05);
    assert!(same.warnings.is_empty(), "{:?}", same.warnings);
    // Records from before the field existed say nothing: no warning.
    assert!(compare(&base, &run("new", 1.0, &["transformer"]), 0.05).warnings.is_empty());
}

#[test]
fn configurations_on_one_side_are_listed() {
    let base = run("base", 1.0, &["lstm", "gru"]);
    let new = run("new", 1.0, &["lstm", "transformer"]);
    let c = compare(&base, &new, 0.05);
    assert_eq!(c.only_base.iter().map(|k| k.model.as_str()).collect::<Vec<_>>(), ["gru"]);
    assert_eq!(c.only_new.iter().map(|k| k.model.as_str()).collect::<Vec<_>>(), ["transformer"]);
    let md = seqbench::report::compare::markdown(&c, "base", "new");
    assert!(md.contains("## Only in base\n\n- mqar / gru (seq_len=64)\n"), "{md}");
    assert!(md.contains("## Only in new\n\n- mqar / transformer (seq_len=64)\n"), "{md}");
}

#[test]
fn labels_join_runs_whose_resolved_parameters_differ() {
    let base = run("base", 1.0, &["lstm"]);
    // A newer version resolved one more parameter (a new default): the configurations differ.
    let mut new = run("new", 1.0, &["lstm"]);
    for r in &mut new {
        r.params.insert("train.weight_decay_on".into(), serde_json::json!("matrices"));
        r.measurements.accuracy = Some(0.95);
    }
    assert!(compare(&base, &new, 0.05).changes.is_empty(), "by configuration nothing matches");
    let c = compare_by(&base, &new, 0.05, MatchBy::Labels, &[]);
    let accuracy = c.changes.iter().find(|x| x.metric == "accuracy").expect("joined by labels");
    assert_eq!(accuracy.verdict, Verdict::Better);
    // Swept values still separate configurations.
    let mut longer = run("new", 1.0, &["lstm"]);
    for r in &mut longer {
        r.params.insert("task.seq_len".into(), serde_json::json!(128));
    }
    assert!(compare_by(&base, &longer, 0.05, MatchBy::Labels, &[]).changes.is_empty());
    let only = compare_by(&base, &new, 0.05, MatchBy::Labels, &["accuracy".to_string()]);
    assert!(only.changes.iter().all(|x| x.metric == "accuracy") && !only.changes.is_empty());
}

fn write_run(dir: &Path, records: &[Record]) {
    std::fs::create_dir_all(dir).unwrap();
    let lines: String = records.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
    std::fs::write(dir.join("records.jsonl"), lines).unwrap();
}

#[test]
fn the_command_writes_both_files_and_gates_on_regressions() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, new) = (tmp.path().join("base"), tmp.path().join("new"));
    write_run(&base, &run("base", 1.0, &["lstm"]));
    write_run(&new, &run("new", 0.8, &["lstm"]));
    let exe = env!("CARGO_BIN_EXE_seqbench");
    let args = ["compare", base.to_str().unwrap(), new.to_str().unwrap()];
    let out = Command::new(exe).args(args).output().unwrap();
    assert!(out.status.success(), "without --fail-on-regression the exit is 0");
    let out = Command::new(exe).args(args).arg("--fail-on-regression").output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let md = std::fs::read_to_string(new.join("compare.md")).unwrap();
    assert!(
        md.contains(
            "| mqar / lstm (seq_len=64) | train_tokens_per_s | 10.0k | 8.0k | -20.0% | ±10.0% | **REGRESSION** |"
        ),
        "{md}"
    );
    let html = std::fs::read_to_string(new.join("compare.html")).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("<tr class=\"worse\">"));
    // One self-contained page: nothing is loaded from elsewhere.
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<link"), "{html:.500}");
    // The chart of each compared metric, new against base: 10.0k → 8.0k tokens/s.
    let spec = html
        .split("<figure id=\"compare_train_tokens_per_s\"><script type=\"application/json\" class=\"chart-spec\">")
        .nth(1)
        .expect("a throughput chart");
    let spec: serde_json::Value = serde_json::from_str(spec.split("</script>").next().unwrap()).unwrap();
    let lstm = spec["series"].as_array().unwrap().iter().find(|s| s["label"] == "mqar / lstm (seq_len=64)").unwrap();
    assert_eq!(lstm["points"], serde_json::json!([[10000.0, 8000.0]]));
    assert_eq!(spec["front_label"], "no change");
    let out = Command::new(exe).args(args).args(["--threshold", "25", "--fail-on-regression"]).output().unwrap();
    assert!(out.status.success(), "a 25 % threshold tolerates the slowdown");

    // A gate that compares nothing fails; a run compared with itself is warned about.
    let other = tmp.path().join("other");
    write_run(&other, &run("other", 1.0, &["gru"]));
    let out = Command::new(exe).args(["compare", base.to_str().unwrap(), other.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "without the gate, nothing compared is only reported");
    let gate = ["compare", base.to_str().unwrap(), other.to_str().unwrap(), "--fail-on-regression"];
    let out = Command::new(exe).args(gate).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was compared"), "{out:?}");
    let out = Command::new(exe).args(["compare", base.to_str().unwrap(), base.to_str().unwrap()]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("is compared with itself"), "{out:?}");
}
