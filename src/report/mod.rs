//! Reports: `report.md` (per-task tables, failures), `tables/summary.{csv,parquet}` and
//! `tables/records.{csv,parquet}`, all written atomically.
pub mod compare;
pub mod frame;
pub mod markdown;

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

/// Builds the Markdown and the summary/records frames from records (no I/O).
pub fn render(title: &str, records: &[Record]) -> Result<(String, DataFrame, DataFrame)> {
    let all: Vec<&Record> = records.iter().collect();
    let keys = frame::swept_keys(&all);
    let mut records_df = frame::records_frame(&all, &keys)?;
    let summary = frame::summary_frame(&records_df, &keys)?;
    let ok = records.iter().filter(|r| r.status == crate::record::Status::Ok).count();
    let mut md =
        format!("# seqbench report: {title}\n\n{} jobs, {ok} ok, {} not ok.\n", records.len(), records.len() - ok);
    let tasks: BTreeSet<&str> = records.iter().map(|r| r.task_label.as_str()).collect();
    for task in tasks {
        let in_task: Vec<&Record> = records.iter().filter(|r| r.task_label == task).collect();
        let task_keys: Vec<String> = frame::swept_keys(&in_task).into_iter().filter(|k| k != "seed").collect();
        md += &format!("\n## {task}\n\nMean ± std over seeds of the runs that ended `ok`.\n\n");
        md += &markdown::task_table(&summary, task, &task_keys);
    }
    md += "\n## Jobs not ok\n\n";
    md += &markdown::failures_table(&all);
    records_df.align_chunks_par();
    Ok((md, summary, records_df))
}

/// Reads a run's records and writes its report files. Returns the Markdown.
pub fn build(run: &RunDir) -> Result<Report> {
    let (records, warnings) = store::read_records(&run.records_path())?;
    let suite = run.suite_name().or_else(|| records.first().map(|r| r.suite.clone())).unwrap_or_default();
    let title = format!("{suite} / {}", run.run_id());
    let (md, mut summary, mut records_df) = render(&title, &records).context("aggregating records")?;
    let tables = run.path.join("tables");
    let mut files = Vec::new();
    let mut put = |path: PathBuf, bytes: Vec<u8>| -> Result<()> {
        write_atomic(&path, &bytes)?;
        files.push(path);
        Ok(())
    };
    put(run.path.join("report.md"), md.clone().into_bytes())?;
    put(tables.join("summary.csv"), csv_bytes(&mut summary)?)?;
    put(tables.join("summary.parquet"), parquet_bytes(&mut summary)?)?;
    put(tables.join("records.csv"), csv_bytes(&mut records_df)?)?;
    put(tables.join("records.parquet"), parquet_bytes(&mut records_df)?)?;
    Ok(Report { markdown: md, files, warnings })
}
