//! The report of a fixed records file: Markdown and CSV exactly as expected (failures and a
//! partially failed configuration included). Set UPDATE_EXPECT=1 to rewrite the expectations
//! after an intended change, then review the diff.
use seqbench::report;
use seqbench::store::{read_records, RunDir};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report").join(name)
}

fn check(name: &str, actual: &str) {
    let path = fixture(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(actual, expected, "{name} differs; rerun with UPDATE_EXPECT=1 to accept");
}

#[test]
fn markdown_and_csv_are_exactly_as_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let run_path = tmp.path().join("fixture").join("r1");
    std::fs::create_dir_all(&run_path).unwrap();
    std::fs::copy(fixture("records.jsonl"), run_path.join("records.jsonl")).unwrap();
    let run = RunDir::open(&run_path).unwrap();
    let built = report::build(&run).unwrap();
    assert!(built.warnings.is_empty());
    check("expected_report.md", &std::fs::read_to_string(run_path.join("report.md")).unwrap());
    check("expected_summary.csv", &std::fs::read_to_string(run_path.join("tables/summary.csv")).unwrap());
    assert_eq!(built.markdown, std::fs::read_to_string(run_path.join("report.md")).unwrap());
    let records_csv = std::fs::read_to_string(run_path.join("tables/records.csv")).unwrap();
    assert_eq!(records_csv.lines().count(), 7, "header + one line per record");
    assert!(run_path.join("tables/summary.parquet").metadata().unwrap().len() > 0);

    let html = std::fs::read_to_string(run_path.join("report.html")).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.ends_with("</html>\n"));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<link"), "self-contained");
    assert!(html.contains("<script>") && html.contains("table.sortable"), "sortable tables");
    assert_eq!(html.matches("<table class=\"sortable").count(), 2, "one task table and the failures");
    assert!(html.contains("<td class=\"num\" data-v=\"0.3\">30.0 ± 7.1</td>"), "cells carry sort values");
    assert!(html.contains("<td>timeout</td>") && html.contains("<td>panic</td>"), "failed jobs listed");
    assert!(html.contains("panic: index out of range | oops"), "reasons kept verbatim (escaped)");
}

#[test]
fn a_torn_last_line_is_skipped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("records.jsonl");
    let mut text = std::fs::read_to_string(fixture("records.jsonl")).unwrap();
    text.push_str("{\"job_id\": \"d0\", \"run");
    std::fs::write(&path, text).unwrap();
    let (records, warnings) = read_records(&path).unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains(":7: skipped"), "{warnings:?}");
}
