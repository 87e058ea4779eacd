//! Markdown tables from the summary frame: quality and efficiency side by side.
use super::frame::{f64_at, str_at};
use crate::dispatch::progress::human_rate;
use crate::record::{Record, Status};
use polars::prelude::DataFrame;

fn mean_std(df: &DataFrame, metric: &str, row: usize, fmt: &dyn Fn(f64) -> String) -> String {
    match (f64_at(df, &format!("{metric}_mean"), row), f64_at(df, &format!("{metric}_std"), row)) {
        (None, _) => "—".into(),
        (Some(m), Some(s)) => format!("{} ± {}", fmt(m), fmt(s)),
        (Some(m), None) => fmt(m),
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn mib(x: f64) -> String {
    format!("{:.0}", x / (1024.0 * 1024.0))
}

fn count(x: f64) -> String {
    human_rate(x)
}

/// Strips the `task.` / `model.` / `train.` prefix for column headers.
fn short_key(key: &str) -> &str {
    key.split_once('.').map_or(key, |(_, k)| k)
}

fn row_line(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// The main table for one task: one row per (model, swept parameters).
pub fn task_table(df: &DataFrame, task: &str, param_keys: &[String]) -> String {
    let mut header: Vec<String> = vec!["model".into()];
    header.extend(param_keys.iter().map(|k| short_key(k).to_string()));
    header.extend(
        [
            "runs ok",
            "accuracy %",
            "exact match %",
            "eval loss",
            "train tok/s",
            "infer tok/s",
            "peak mem MiB",
            "params",
            "fwd FLOPs/tok",
        ]
        .map(String::from),
    );
    let mut out = row_line(&header);
    let align: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, _)| if i <= param_keys.len() { "---".into() } else { "---:".into() })
        .collect();
    out += &row_line(&align);
    for row in 0..df.height() {
        if str_at(df, "task", row) != task {
            continue;
        }
        let mut cells = vec![str_at(df, "model", row)];
        cells.extend(param_keys.iter().map(|k| str_at(df, k, row)));
        let runs = f64_at(df, "runs", row).unwrap_or(0.0);
        let runs_ok = f64_at(df, "runs_ok", row).unwrap_or(0.0);
        cells.push(format!("{runs_ok}/{runs}"));
        cells.push(mean_std(df, "accuracy", row, &percent));
        cells.push(mean_std(df, "exact_match", row, &percent));
        cells.push(mean_std(df, "eval_loss", row, &|x| format!("{x:.3}")));
        cells.push(mean_std(df, "train_tokens_per_s", row, &count));
        cells.push(mean_std(df, "infer_tokens_per_s", row, &count));
        cells.push(mean_std(df, "peak_mem_bytes", row, &mib));
        cells.push(f64_at(df, "n_params_mean", row).map_or("—".into(), count));
        cells.push(f64_at(df, "flops_per_token_mean", row).map_or("—".into(), count));
        out += &row_line(&cells);
    }
    out
}

/// Jobs that did not end `ok`, with status and reason — never silently dropped.
pub fn failures_table(records: &[&Record]) -> String {
    let failed: Vec<&&Record> = records.iter().filter(|r| r.status != Status::Ok).collect();
    if failed.is_empty() {
        return "All jobs ended `ok`.\n".into();
    }
    let mut out =
        row_line(&["job".into(), "task".into(), "model".into(), "seed".into(), "status".into(), "reason".into()]);
    out += "| --- | --- | --- | ---: | --- | --- |\n";
    for r in failed {
        let reason = r.reason.as_deref().unwrap_or("").replace('|', "\\|").replace('\n', " ");
        out += &row_line(&[
            format!("`{}`", r.job_id),
            r.task_label.clone(),
            r.model.clone(),
            r.seed.to_string(),
            r.status.as_str().into(),
            reason,
        ]);
    }
    out
}
