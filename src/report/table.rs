//! Report tables as data (header, cells with display text and a sort value), rendered to
//! Markdown here and to HTML in `html.rs`, so both outputs always show the same numbers.
use super::frame::{f64_at, str_at};
use super::row::Row;
use crate::dispatch::progress::human_rate;
use polars::prelude::{Column, DataFrame, PolarsError};

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    /// Numeric value for sorting (HTML), when the cell is a number.
    pub value: Option<f64>,
    /// The text with its best values marked `**…**` (LRA and TSLib tables), shown in bold in
    /// Markdown and HTML; CSV and Parquet keep the plain text.
    pub strong: Option<String>,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Self {
        Cell { text: text.into(), value: None, strong: None }
    }

    pub fn number(text: impl Into<String>, value: Option<f64>) -> Self {
        Cell { text: text.into(), value, strong: None }
    }

    /// The text as Markdown: with its bold marks, `|` escaped.
    fn markdown(&self) -> String {
        self.strong.as_deref().unwrap_or(&self.text).replace('|', "\\|")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    /// Columns from this index on are numeric (right-aligned).
    pub first_numeric: usize,
    pub rows: Vec<Vec<Cell>>,
}

fn mean_std(df: &DataFrame, metric: &str, row: usize, fmt: &dyn Fn(f64) -> String) -> Cell {
    let mean = f64_at(df, &format!("{metric}_mean"), row);
    let text = match (mean, f64_at(df, &format!("{metric}_std"), row)) {
        (None, _) => "—".into(),
        (Some(m), Some(s)) => format!("{} ± {}", fmt(m), fmt(s)),
        (Some(m), None) => fmt(m),
    };
    Cell::number(text, mean)
}

fn percent(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn mib(x: f64) -> String {
    format!("{:.0}", x / (1024.0 * 1024.0))
}

/// Strips the `task.` / `model.` / `train.` prefix for column headers.
fn short_key(key: &str) -> &str {
    key.split_once('.').map_or(key, |(_, k)| k)
}

/// The main table for one task: one row per (model, swept parameters), quality and efficiency
/// side by side.
pub fn task_table(df: &DataFrame, task: &str, param_keys: &[String]) -> Table {
    let mut header: Vec<String> = vec!["model".into()];
    header.extend(param_keys.iter().map(|k| short_key(k).to_string()));
    let first_numeric = header.len();
    header.extend(
        [
            "runs ok",
            "accuracy %",
            "exact match %",
            "eval loss",
            "train tok/s",
            "infer tok/s",
            "gen tok/s",
            "peak mem MiB",
            "params",
            "fwd FLOPs/tok",
        ]
        .map(String::from),
    );
    // Forecasting tasks score MSE and MAE; their columns appear only where there are values.
    let has_errors =
        (0..df.height()).any(|row| str_at(df, "task", row) == task && f64_at(df, "mse_mean", row).is_some());
    if has_errors {
        header.splice(first_numeric + 1..first_numeric + 1, ["MSE".to_string(), "MAE".to_string()]);
    }
    let mut rows = Vec::new();
    for row in 0..df.height() {
        if str_at(df, "task", row) != task {
            continue;
        }
        let mut cells = vec![Cell::text(str_at(df, "model", row))];
        cells.extend(param_keys.iter().map(|k| Cell::number(str_at(df, k, row), f64_at(df, k, row))));
        let runs = f64_at(df, "runs", row).unwrap_or(0.0);
        let runs_ok = f64_at(df, "runs_ok", row).unwrap_or(0.0);
        cells.push(Cell::number(format!("{runs_ok}/{runs}"), Some(runs_ok)));
        if has_errors {
            cells.push(mean_std(df, "mse", row, &|x| format!("{x:.4}")));
            cells.push(mean_std(df, "mae", row, &|x| format!("{x:.4}")));
        }
        cells.push(mean_std(df, "accuracy", row, &percent));
        cells.push(mean_std(df, "exact_match", row, &percent));
        cells.push(mean_std(df, "eval_loss", row, &|x| format!("{x:.3}")));
        cells.push(mean_std(df, "train_tokens_per_s", row, &human_rate));
        cells.push(mean_std(df, "infer_tokens_per_s", row, &human_rate));
        cells.push(mean_std(df, "gen_tokens_per_s", row, &human_rate));
        cells.push(mean_std(df, "peak_mem_bytes", row, &mib));
        for metric in ["n_params_mean", "flops_per_token_mean"] {
            let v = f64_at(df, metric, row);
            cells.push(Cell::number(v.map_or("—".into(), human_rate), v));
        }
        rows.push(cells);
    }
    Table { header, first_numeric, rows }
}

/// Efficiency side by side for every task and configuration: throughputs, memory, size, FLOPs,
/// achieved training FLOP/s and MFU (with a calibrated peak).
pub fn efficiency_table(df: &DataFrame, param_keys: &[String]) -> Table {
    let mut header: Vec<String> = vec!["task".into(), "model".into()];
    header.extend(param_keys.iter().map(|k| short_key(k).to_string()));
    let first_numeric = header.len();
    header.extend(
        ["train tok/s", "infer tok/s", "gen tok/s", "peak mem MiB", "params", "fwd FLOPs/tok", "train FLOP/s", "MFU %"]
            .map(String::from),
    );
    let rows = (0..df.height())
        .filter(|&row| f64_at(df, "runs_ok", row).unwrap_or(0.0) > 0.0)
        .map(|row| {
            let mut cells = vec![Cell::text(str_at(df, "task", row)), Cell::text(str_at(df, "model", row))];
            cells.extend(param_keys.iter().map(|k| Cell::number(str_at(df, k, row), f64_at(df, k, row))));
            cells.push(mean_std(df, "train_tokens_per_s", row, &human_rate));
            cells.push(mean_std(df, "infer_tokens_per_s", row, &human_rate));
            cells.push(mean_std(df, "gen_tokens_per_s", row, &human_rate));
            cells.push(mean_std(df, "peak_mem_bytes", row, &mib));
            for metric in ["n_params_mean", "flops_per_token_mean", "train_flops_per_s_mean"] {
                let v = f64_at(df, metric, row);
                cells.push(Cell::number(v.map_or("—".into(), human_rate), v));
            }
            cells.push(mean_std(df, "mfu", row, &|x| format!("{:.2}", 100.0 * x)));
            cells
        })
        .collect();
    Table { header, first_numeric, rows }
}

/// The table as a frame of text columns (as displayed), for `tables/<name>.{csv,parquet}`.
pub fn table_frame(table: &Table) -> Result<DataFrame, PolarsError> {
    let columns: Vec<Column> = table
        .header
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let values: Vec<String> =
                table.rows.iter().map(|r| r.get(c).map_or(String::new(), |x| x.text.clone())).collect();
            Column::new(name.as_str().into(), values)
        })
        .collect();
    DataFrame::new(table.rows.len(), columns)
}

/// A job that did not end `ok`: its row in the failures table.
pub fn failure_row(r: &Row) -> Vec<Cell> {
    vec![
        Cell::text(&*r.job_id),
        Cell::text(&*r.task_label),
        Cell::text(&*r.model),
        Cell::number(r.seed.to_string(), Some(r.seed as f64)),
        Cell::text(r.status.as_str()),
        Cell::text(r.reason.as_deref().unwrap_or("").replace('\n', " ")),
    ]
}

/// Jobs that did not end `ok`, with status and reason — never silently dropped.
pub fn failures_table(rows: Vec<Vec<Cell>>) -> Table {
    let header = ["job", "task", "model", "seed", "status", "reason"].map(String::from).to_vec();
    Table { header, first_numeric: usize::MAX, rows }
}

fn md_line(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// GitHub-flavoured Markdown; `|` in cells escaped.
pub fn markdown(table: &Table) -> String {
    let mut out = md_line(&table.header);
    let align: Vec<String> =
        (0..table.header.len()).map(|i| if i >= table.first_numeric { "---:".into() } else { "---".into() }).collect();
    out += &md_line(&align);
    for row in &table.rows {
        let cells: Vec<String> = row.iter().map(Cell::markdown).collect();
        out += &md_line(&cells);
    }
    out
}
