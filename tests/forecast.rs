//! Forecasting jobs end to end on a CSV of our own: the TSLib-style table lands in the report,
//! and a malformed file becomes a failed record naming the column.
use std::path::Path;
use std::process::Command;

fn write_csv(path: &Path, rows: usize, bad_row: Option<usize>) {
    let mut text = String::from("date,load,OT\n");
    for i in 0..rows {
        let load = if Some(i) == bad_row { "n/a".to_string() } else { format!("{:.4}", (i as f64 * 0.3).sin()) };
        text += &format!("2020-01-01 {i:05},{load},{:.4}\n", (i as f64 * 0.2).cos() + 0.01 * i as f64);
    }
    std::fs::write(path, text).unwrap();
}

fn run(dir: &Path, csv: &str) -> (std::process::Output, std::path::PathBuf) {
    let suite = dir.join("fc.yaml");
    std::fs::write(
        &suite,
        format!(
            "name: fc\ndefaults:\n  epochs: 2\n  batch_size: 16\n  optimizer: adam\n  lr: 1.0e-3\n  schedule: halving\n  generate_tokens: 0\nmodels:\n  - arch: linear\n    name: DLinear\n    kernel: 5\n  - arch: lru\n    d_model: 8\n    n_layers: 1\ntasks:\n  - task: forecast\n    dataset: custom\n    path: {csv}\n    seq_len: 12\n    pred_len: [4, 8]\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seqbench"))
        .args(["run", suite.to_str().unwrap(), "--out", "results"])
        .current_dir(dir)
        .output()
        .unwrap();
    let runs = dir.join("results/fc");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    (out, run)
}

#[test]
fn custom_csv_forecasts_land_in_a_tslib_table() {
    let tmp = tempfile::tempdir().unwrap();
    write_csv(&tmp.path().join("series.csv"), 300, None);
    let (out, run) = run(tmp.path(), "series.csv");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (records, _) = seqbench::store::read_records(&run.join("records.jsonl")).unwrap();
    assert_eq!(records.len(), 4);
    for r in &records {
        let (mse, mae) = (r.measurements.mse.unwrap(), r.measurements.mae.unwrap());
        assert!(mse.is_finite() && mae.is_finite() && mse > 0.0 && mae > 0.0, "{mse} {mae}");
        assert!(mae * mae <= mse + 1e-12, "MAE² ≤ MSE must hold: {mae} {mse}");
    }
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("## Forecasting (Time-Series-Library layout)"), "{report}");
    assert!(report.contains("| custom | M | 4 |") && report.contains("| custom | M | 8 |"), "{report}");
    assert!(report.contains("DLinear MSE / MAE") && report.contains("**"), "{report}");
    // The HTML shows the same best values in bold, and CSV keeps the plain numbers.
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let bold_md = report.matches("**").count() / 2;
    assert_eq!(html.matches("<strong>").count(), bold_md, "as many bold values in HTML as in Markdown");
    assert!(html.contains("<h2>Forecasting (Time-Series-Library layout)</h2>"));
    let csv = std::fs::read_to_string(run.join("tables/table_forecasting__test_mse___mae.csv")).unwrap();
    assert!(!csv.contains('*'), "{csv}");
}

#[test]
fn a_non_numeric_cell_fails_the_job_with_its_column() {
    let tmp = tempfile::tempdir().unwrap();
    write_csv(&tmp.path().join("bad.csv"), 300, Some(150));
    let (out, run) = run(tmp.path(), "bad.csv");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let (records, _) = seqbench::store::read_records(&run.join("records.jsonl")).unwrap();
    assert!(records.iter().all(|r| r.status == seqbench::record::Status::Failed));
    let reason = records[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("bad.csv") && reason.contains("load"), "{reason}");
}
