//! The report of a fixed records file: Markdown and CSV exactly as expected (failures and a
//! partially failed configuration included). Set UPDATE_EXPECT=1 to rewrite the expectations
//! after an intended change, then review the diff.
use seqbench::report;
use seqbench::store::{read_records, RunDir};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(name)
}

fn check(name: &str, actual: &str) {
    let path = fixture(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(actual, expected, "{name} differs; rerun with UPDATE_EXPECT=1 to accept");
}

/// A run directory `fixture/r1` under `tmp` holding the fixture records, and its built report.
fn fixture_run(tmp: &Path) -> (PathBuf, report::Report) {
    let run_path = tmp.join("fixture").join("r1");
    std::fs::create_dir_all(&run_path).unwrap();
    std::fs::copy(fixture("records.jsonl"), run_path.join("records.jsonl")).unwrap();
    let built = report::build(&RunDir::open(&run_path).unwrap()).unwrap();
    (run_path, built)
}

#[test]
fn markdown_and_csv_are_exactly_as_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let (run_path, built) = fixture_run(tmp.path());
    assert!(built.warnings.is_empty());
    check("expected_report.md", &std::fs::read_to_string(run_path.join("report.md")).unwrap());
    check("expected_summary.csv", &std::fs::read_to_string(run_path.join("tables/summary.csv")).unwrap());
    assert_eq!(built.markdown, std::fs::read_to_string(run_path.join("report.md")).unwrap());
    let records_csv = std::fs::read_to_string(run_path.join("tables/records.csv")).unwrap();
    assert_eq!(records_csv.lines().count(), 7, "header + one line per record");
    assert!(run_path.join("tables/summary.parquet").metadata().unwrap().len() > 0);

    let html = std::fs::read_to_string(run_path.join("report.html")).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.ends_with("</html>\n"));
    for external in ["src=\"http", "href=\"http", "<link", "url(http", "@import"] {
        assert!(!html.contains(external), "self-contained: found {external}");
    }
    assert!(html.contains("<script>") && html.contains("table.sortable"), "sortable tables");
    assert_eq!(html.matches("<table class=\"sortable").count(), 3, "one task table, efficiency and the failures");
    assert!(html.contains("<td class=\"num\" data-v=\"0.3\">30.0 ± 7.1</td>"), "cells carry sort values");
    assert!(html.contains("<td>timeout</td>") && html.contains("<td>panic</td>"), "failed jobs listed");
    assert!(html.contains("panic: index out of range | oops"), "reasons kept verbatim (escaped)");
}

/// Decodes a PNG: (width, height, RGB(A) bytes, channels).
fn decode_png(path: &Path) -> (u32, u32, Vec<u8>, usize) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf, info.color_type.samples())
}

/// Every chart is written as SVG (parses as XML with an `<svg>` root, carries its title and
/// axes) and as PNG (decodes, at the chart size, with drawn lines and text on white).
#[test]
fn charts_are_written_and_parse_as_svg_and_png() {
    let tmp = tempfile::tempdir().unwrap();
    let (run_path, _) = fixture_run(tmp.path());
    let mut names: Vec<String> = std::fs::read_dir(run_path.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "mqar_accuracy_vs_seq_len.png",
            "mqar_accuracy_vs_seq_len.svg",
            "mqar_accuracy_vs_throughput.png",
            "mqar_accuracy_vs_throughput.svg",
            "mqar_memory_vs_seq_len.png",
            "mqar_memory_vs_seq_len.svg",
            "mqar_throughput_vs_seq_len.png",
            "mqar_throughput_vs_seq_len.svg"
        ]
    );
    for name in names.iter().filter(|n| n.ends_with(".png")) {
        let (w, h, pixels, channels) = decode_png(&run_path.join("charts").join(name));
        assert_eq!((w, h), (1000, 500), "{name}");
        let px: Vec<&[u8]> = pixels.chunks(channels).collect();
        let white = px.iter().filter(|p| p[..3] == [255, 255, 255]).count();
        let dark = px.iter().filter(|p| p[..3].iter().all(|&c| c < 80)).count();
        // Mostly white background, with axes and text (dark) and coloured series.
        assert!(white > px.len() / 2, "{name}: {white} white of {}", px.len());
        assert!(dark > 2_000, "{name}: only {dark} dark pixels: axes and text missing");
    }
    for name in names.iter().filter(|n| n.ends_with(".svg")) {
        let svg = std::fs::read_to_string(run_path.join("charts").join(name)).unwrap();
        let mut reader = quick_xml::Reader::from_str(&svg);
        let mut root = None;
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Start(e)) if root.is_none() => {
                    root = Some(String::from_utf8_lossy(e.name().as_ref()).into_owned())
                }
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("{name} is not well-formed XML: {e}"),
            }
        }
        assert_eq!(root.as_deref(), Some("svg"), "{name}");
    }
    let throughput = std::fs::read_to_string(run_path.join("charts/mqar_throughput_vs_seq_len.svg")).unwrap();
    assert!(throughput.contains("mqar: throughput vs sequence length"));
    assert!(throughput.contains("sequence length (tokens)") && throughput.contains("training throughput (tokens/s)"));
    let pareto = std::fs::read_to_string(run_path.join("charts/mqar_accuracy_vs_throughput.svg")).unwrap();
    assert!(pareto.contains("Pareto front"));
    let html = std::fs::read_to_string(run_path.join("report.html")).unwrap();
    assert_eq!(html.matches("<figure").count(), 4, "charts inlined in the HTML");
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

/// 240 records from the fixture (40 copies with their own ids, seeds and loss curves; from the
/// 20th copy on, `model.d_model` is swept too), an unreadable line and a torn last line.
fn many_records_file(path: &Path) {
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(fixture("records.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut text = String::new();
    for copy in 0..40u64 {
        for (i, line) in lines.iter().enumerate() {
            let mut r = line.clone();
            r["job_id"] = format!("{}-{copy}", r["job_id"].as_str().unwrap()).into();
            r["seed"] = (r["seed"].as_u64().unwrap() + 10 * copy).into();
            let curve: Vec<serde_json::Value> =
                (1..=5).map(|k| serde_json::json!({"step": 10 * k, "loss": 3.0 / (k + i) as f64})).collect();
            r["loss_curve"] = curve.into();
            if copy >= 20 {
                r["swept"].as_array_mut().unwrap().push("model.d_model".into());
                r["params"]["model.d_model"] = (32 * (1 + copy % 2)).into();
            }
            text += &serde_json::to_string(&r).unwrap();
            text.push('\n');
        }
        if copy == 7 {
            text += "not a record\n";
        }
    }
    text += "{\"job_id\": \"torn\", \"run";
    std::fs::write(path, text).unwrap();
}

#[test]
fn reading_in_blocks_gives_the_report_of_reading_everything_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("records.jsonl");
    many_records_file(&path);
    let (records, whole_warnings) = read_records(&path).unwrap();
    assert_eq!(records.len(), 240);
    let whole = report::render("t", &records).unwrap();
    // Blocks far smaller than a line, about one line, and several lines: lines are cut at
    // every block edge and pieces are gathered apart, then merged.
    for block in [100, 997, 5000] {
        let (gathered, warnings) = report::Gathered::read_in_blocks(&path, block).unwrap();
        assert_eq!(gathered.records, 240);
        assert_eq!(warnings, whole_warnings, "block {block}: same warnings, same line numbers");
        let streamed = report::render_gathered("t", gathered).unwrap();
        assert_eq!(streamed.markdown, whole.markdown, "block {block}");
        assert!(streamed.records.equals_missing(&whole.records), "block {block}: records table");
        assert!(streamed.summary.equals_missing(&whole.summary), "block {block}: summary");
        let names = |r: &report::Rendered| r.charts.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&streamed), names(&whole));
    }
    assert_eq!(whole_warnings.len(), 2);
    assert!(whole_warnings[0].contains(":49: skipped an unreadable record"), "{whole_warnings:?}");
    assert!(whole_warnings[1].contains(":242: skipped a partial last line"), "{whole_warnings:?}");
    // Blank lines, even a last one with no newline, are no records and no warnings.
    std::fs::write(&path, "\n  \n\n   ").unwrap();
    let (gathered, warnings) = report::Gathered::read_in_blocks(&path, 2).unwrap();
    assert_eq!((gathered.records, warnings.len()), (0, 0), "{warnings:?}");
    // The records table shows `model.d_model` for every record, swept or not.
    let d_model = whole.records.column("model.d_model").unwrap();
    assert_eq!(d_model.null_count(), 0);
    // 240 runs with curves: the loss chart shows the mean over seeds per configuration.
    assert!(whole.charts.iter().any(|c| c.svg.contains("training loss (mean over seeds)")));
}

#[test]
fn a_line_that_is_not_utf8_is_skipped_and_the_rest_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("records.jsonl");
    let mut bytes = std::fs::read(fixture("records.jsonl")).unwrap();
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes.splice(second..second, b"{\"job_id\": \"\xff\xfe\"}\n".iter().copied());
    std::fs::write(&path, bytes).unwrap();
    let (records, warnings) = read_records(&path).unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains(":2: skipped an unreadable record"), "{warnings:?}");
    let (gathered, report_warnings) = report::Gathered::read(&path).unwrap();
    assert_eq!((gathered.records, report_warnings), (6, warnings));
}
