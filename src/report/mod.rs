//! Reports: `report.md` and `report.html` (per-task tables, failures; the HTML also carries the
//! run's environment and suite), `tables/summary.{csv,parquet}` and
//! `tables/records.{csv,parquet}`, all written atomically.
pub mod charts;
pub mod compare;
pub mod forecast;
pub mod frame;
pub mod html;
pub mod lra;
pub mod table;

use crate::record::Record;
use crate::store::{self, write_atomic, RunDir};
use anyhow::{Context, Result};
use polars::prelude::*;
use std::collections::BTreeSet;
use std::path::PathBuf;

pub struct Report {
    pub markdown: String,
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

fn csv_bytes(df: &mut DataFrame) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf).finish(df)?;
    Ok(buf)
}

fn parquet_bytes(df: &mut DataFrame) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(df)?;
    Ok(buf)
}

/// Everything a report shows, before it is written anywhere.
pub struct Rendered {
    pub markdown: String,
    /// Title, counts line, per-task tables (section title, table), failures.
    pub title: String,
    pub counts: String,
    pub tasks: Vec<(String, table::Table)>,
    pub failures: table::Table,
    pub summary: DataFrame,
    pub records: DataFrame,
    pub charts: Vec<charts::Chart>,
}

/// Aggregates records into tables and the Markdown report (no I/O).
pub fn render(title: &str, records: &[Record]) -> Result<Rendered> {
    let started = std::time::Instant::now();
    let all: Vec<&Record> = records.iter().collect();
    let keys = frame::swept_keys(&all);
    let records_df = frame::records_frame(&all, &keys)?;
    tracing::debug!("records frame at {:.2} s", started.elapsed().as_secs_f64());
    let summary = frame::summary_frame(&records_df, &keys)?;
    tracing::debug!("summary at {:.2} s", started.elapsed().as_secs_f64());
    let ok = records.iter().filter(|r| r.status == crate::record::Status::Ok).count();
    let counts = format!("{} jobs, {ok} ok, {} not ok.", records.len(), records.len() - ok);
    let mut md = format!("# seqbench report: {title}\n\n{counts}\n");
    let mut tasks = Vec::new();
    for task in records.iter().map(|r| r.task_label.as_str()).collect::<BTreeSet<&str>>() {
        let in_task: Vec<&Record> = records.iter().filter(|r| r.task_label == task).collect();
        let task_keys: Vec<String> = frame::swept_keys(&in_task).into_iter().filter(|k| k != "seed").collect();
        let t = table::task_table(&summary, task, &task_keys);
        md += &format!("\n## {task}\n\nMean ± std over seeds of the runs that ended `ok`.\n\n");
        md += &table::markdown(&t);
        tasks.push((task.to_string(), t));
    }
    if let Some(fc) = forecast::tslib_table(records) {
        md += "\n## Forecasting (Time-Series-Library layout)\n\nTest MSE / MAE on scaled values over every test window, mean over seeds; the best of each row in bold.\n\n";
        md += &fc.markdown();
        tasks.push(("Forecasting: test MSE / MAE".to_string(), fc.table));
    }
    if let Some(lra) = lra::lra_table(records) {
        md += "\n## Long Range Arena\n\nTest accuracy % (mean over seeds of the runs that ended `ok`), as the LRA paper lays it out; the best of each column in bold. Avg covers the tasks each model ran.\n\n";
        md += &lra.markdown();
        tasks.push(("Long Range Arena: test accuracy %".to_string(), lra.table));
    }
    let all_keys: Vec<String> = keys.iter().filter(|k| k.as_str() != "seed").cloned().collect();
    let efficiency = table::efficiency_table(&summary, &all_keys);
    if !efficiency.rows.is_empty() {
        md += "\n## Efficiency\n\nMean ± std over seeds. Train FLOP/s = 3 × forward FLOPs/token × train tokens/s; MFU is its share of the matmul peak measured by `seqbench calibrate` (— when this machine is not calibrated).\n\n";
        md += &table::markdown(&efficiency);
        tasks.push(("Efficiency".to_string(), efficiency));
    }
    tracing::debug!("tables at {:.2} s", started.elapsed().as_secs_f64());
    let charts = charts::charts(records)?;
    tracing::debug!("charts at {:.2} s", started.elapsed().as_secs_f64());
    if !charts.is_empty() {
        md += "\n## Charts\n\n";
        for c in &charts {
            md += &format!("![{0}](charts/{0}.svg)\n\n", c.name);
        }
    }
    md += "\n## Jobs not ok\n\n";
    let failures = table::failures_table(&all);
    if failures.rows.is_empty() {
        md += "All jobs ended `ok`.\n";
    } else {
        md += &table::markdown(&failures);
    }
    Ok(Rendered {
        markdown: md,
        title: title.to_string(),
        counts,
        tasks,
        failures,
        summary,
        records: records_df,
        charts,
    })
}

/// Reads a run's records and writes its report files. Returns the Markdown.
pub fn build(run: &RunDir) -> Result<Report> {
    let started = std::time::Instant::now();
    let (records, warnings) = store::read_records(&run.records_path())?;
    tracing::info!("read {} records in {:.2} s", records.len(), started.elapsed().as_secs_f64());
    let suite = run.suite_name().or_else(|| records.first().map(|r| r.suite.clone())).unwrap_or_default();
    let title = format!("{suite} / {}", run.run_id());
    let mut rendered = render(&title, &records).context("aggregating records")?;
    tracing::info!("aggregated and drew charts at {:.2} s", started.elapsed().as_secs_f64());
    let attachments: Vec<(&str, String)> =
        [("Environment (env.json)", store::ENV), ("Suite (suite.resolved.yaml)", store::RESOLVED)]
            .into_iter()
            .filter_map(|(title, file)| std::fs::read_to_string(run.path.join(file)).ok().map(|t| (title, t)))
            .collect();
    let page = html::page(&rendered, &attachments);
    let tables = run.path.join("tables");
    let mut files = Vec::new();
    let mut put = |path: PathBuf, bytes: Vec<u8>| -> Result<()> {
        write_atomic(&path, &bytes)?;
        files.push(path);
        Ok(())
    };
    put(run.path.join("report.md"), rendered.markdown.clone().into_bytes())?;
    put(run.path.join("report.html"), page.into_bytes())?;
    for chart in &rendered.charts {
        put(run.path.join("charts").join(format!("{}.svg", chart.name)), chart.svg.clone().into_bytes())?;
        put(run.path.join("charts").join(format!("{}.png", chart.name)), chart.png.clone())?;
    }
    for (title, t) in &rendered.tasks {
        let stem = format!("table_{}", charts::slug(title).trim_matches('_'));
        match table::table_frame(t) {
            Ok(mut df) => {
                put(tables.join(format!("{stem}.csv")), csv_bytes(&mut df)?)?;
                put(tables.join(format!("{stem}.parquet")), parquet_bytes(&mut df)?)?;
            }
            Err(e) => tracing::warn!("table `{title}` not written as CSV: {e}"),
        }
    }
    put(tables.join("summary.csv"), csv_bytes(&mut rendered.summary)?)?;
    put(tables.join("summary.parquet"), parquet_bytes(&mut rendered.summary)?)?;
    put(tables.join("records.csv"), csv_bytes(&mut rendered.records)?)?;
    put(tables.join("records.parquet"), parquet_bytes(&mut rendered.records)?)?;
    tracing::info!("report written at {:.2} s", started.elapsed().as_secs_f64());
    if records.len() > 100_000 {
        // Freeing a million records takes seconds, and the process is about to end anyway.
        std::mem::forget(records);
    }
    Ok(Report { markdown: rendered.markdown, files, warnings })
}
