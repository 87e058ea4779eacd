//! Long Range Arena end to end: every task trains and evaluates through the real binary, the
//! report carries the LRA table, and the data commands round-trip (export → validate, PNG).
use std::path::Path;
use std::process::{Command, Output};

fn seqbench(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqbench"))
        .args(args)
        .current_dir(dir)
        // A private cache, so this test generates, stores and reloads its own data.
        .env("SEQBENCH_CACHE", dir.join("cache"))
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

const SUITE: &str = "name: lra-tiny
defaults:
  steps: 3
  batch_size: 8
  measure_warmup_steps: 1
  generate_tokens: 0
  isolation: inline
models:
  - {arch: transformer, name: tf, d_model: 16, n_layers: 1, n_heads: 2}
  - {arch: s4d, name: s4d, d_model: 16, n_layers: 1, d_state: 8}
tasks:
  - {task: listops, max_depth: 3, min_length: 8, max_length: 32, train_examples: 40, val_examples: 8, test_examples: 8}
  - {task: text, max_length: 32, train_examples: 40, test_examples: 8}
  - {task: retrieval_standin, max_length: 16, train_examples: 40, test_examples: 8}
  - {task: image, downsample: 4, train_examples: 40, val_examples: 8, test_examples: 8}
  - {task: pathfinder, size: 16, train_examples: 40, val_examples: 8, test_examples: 8}
  - {task: pathx, size: 24, train_examples: 40, val_examples: 8, test_examples: 8}
";

#[test]
fn every_lra_task_runs_and_the_report_has_the_lra_table() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("lra.yaml"), SUITE).unwrap();
    let out = seqbench(tmp.path(), &["run", "lra.yaml", "--out", "res", "--jobs", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = std::fs::read_dir(tmp.path().join("res/lra-tiny")).unwrap().next().unwrap().unwrap().path();
    let records: Vec<serde_json::Value> = std::fs::read_to_string(run.join("records.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 12);
    for r in &records {
        // Measurements are flattened into the record.
        let m = r;
        let acc = m["accuracy"].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&acc), "{} / {}: accuracy {acc}", r["task"], r["model"]);
        let with_val = ["listops", "image", "pathfinder", "pathx"].contains(&r["task"].as_str().unwrap());
        assert_eq!(m.get("val_accuracy").is_some(), with_val, "{}", r["task"]);
    }
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    let table = report.split("## Long Range Arena").nth(1).expect("an LRA section");
    let header = table.lines().find(|l| l.starts_with("| model")).unwrap();
    assert_eq!(
        header,
        "| model | ListOps | Text | Retrieval stand-in (IMDB, not AAN) | Image | Pathfinder | Path-X | Avg |"
    );
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| tf") || l.starts_with("| s4d")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    // Every cell is a percentage: the row is complete.
    assert!(rows.iter().all(|r| !r.contains('—')), "{table}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Long Range Arena"));
}

#[test]
fn listops_export_validates_and_a_corrupted_label_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let export = |dir: &Path| {
        seqbench(
            dir,
            &[
                "data",
                "export",
                "listops",
                "--param",
                "max_depth=4",
                "--param",
                "min_length=16",
                "--param",
                "max_length=64",
                "--param",
                "train_examples=50",
                "--param",
                "val_examples=10",
                "--param",
                "test_examples=30",
                "--split",
                "test",
                "--out",
                "lo.tsv",
            ],
        )
    };
    let out = export(tmp.path());
    assert!(out.status.success(), "{}", text(&out));
    let tsv = std::fs::read_to_string(tmp.path().join("lo.tsv")).unwrap();
    let lines: Vec<&str> = tsv.lines().collect();
    assert_eq!(lines[0], "Source\tTarget");
    assert_eq!(lines.len(), 31);
    assert!(lines[1].starts_with("( "), "LRA's binarised form: {}", lines[1]);
    let ok = seqbench(tmp.path(), &["data", "validate", "listops", "lo.tsv"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("30 rows, 0 label mismatches"), "{}", text(&ok));

    // The split was stored in the cache, and the second export loads it: identical bytes.
    let cached: Vec<_> = std::fs::read_dir(tmp.path().join("cache")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(cached.iter().any(|n| n.to_string_lossy().starts_with("listops-")), "{cached:?}");
    std::fs::rename(tmp.path().join("lo.tsv"), tmp.path().join("first.tsv")).unwrap();
    let again = export(tmp.path());
    assert!(again.status.success());
    assert_eq!(std::fs::read(tmp.path().join("first.tsv")).unwrap(), std::fs::read(tmp.path().join("lo.tsv")).unwrap());

    // Change line 6's label to another digit.
    let mut corrupted: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let (source, label) = corrupted[5].rsplit_once('\t').unwrap();
    let wrong = (label.parse::<u8>().unwrap() + 1) % 10;
    corrupted[5] = format!("{source}\t{wrong}");
    std::fs::write(tmp.path().join("bad.tsv"), corrupted.join("\n") + "\n").unwrap();
    let bad = seqbench(tmp.path(), &["data", "validate", "listops", "bad.tsv"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("1 label mismatches") && text(&bad).contains("line 6:"), "{}", text(&bad));
}

#[test]
fn pathfinder_png_export_decodes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = seqbench(
        tmp.path(),
        &[
            "data",
            "export",
            "pathfinder",
            "--param",
            "train_examples=20",
            "--param",
            "val_examples=4",
            "--param",
            "test_examples=4",
            "--png",
            "6",
            "--out",
            "png",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    for i in 0..6 {
        let file = std::fs::File::open(tmp.path().join(format!("png/{i:05}.png"))).unwrap();
        let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (32, 32));
        assert!(buf.contains(&255), "image {i} has contours");
    }
    let labels = std::fs::read_to_string(tmp.path().join("png/labels.csv")).unwrap();
    assert_eq!(labels.lines().count(), 7);
    assert!(tmp.path().join("png/tile.png").is_file());
}

#[test]
fn bad_task_parameters_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out = seqbench(tmp.path(), &["data", "export", "listops", "--param", "max_lenght=64", "--out", "x.tsv"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("max_lenght"), "{}", text(&out));
    let out = seqbench(tmp.path(), &["data", "export", "text", "--split", "val", "--out", "x.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no validation split"), "{}", text(&out));
    let out = seqbench(tmp.path(), &["data", "export", "nosuchtask", "--out", "x.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("unknown task `nosuchtask`"), "{}", text(&out));
}
