//! Report tables as data (header, cells with display text and a sort value), rendered to
//! Markdown here and to HTML in `html.rs`, so both outputs always show the same numbers.
use super::frame::{f64_at, str_at};
use super::row::Row;
use crate::metric::{Metric, Shown, METRICS};
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

/// A metric's cell in a summary row: mean ± std over seeds, or the mean alone, `—` when none.
fn metric_cell(df: &DataFrame, metric: &Metric, shown: Shown, row: usize) -> Cell {
    let mean = f64_at(df, &metric.mean_column(), row);
    let std = match shown {
        Shown::Mean => None,
        _ => f64_at(df, &metric.std_column(), row),
    };
    let text = match (mean, std) {
        (None, _) => "—".into(),
        (Some(m), Some(s)) => format!("{} ± {}", metric.unit.format(m), metric.unit.format(s)),
        (Some(m), None) => metric.unit.format(m),
    };
    Cell::number(text, mean)
}

/// How the task table (`task`) or the efficiency table shows `metric`.
fn metric_column(metric: &Metric, task: bool) -> Shown {
    if task {
        metric.task_table
    } else {
        metric.efficiency_table
    }
}

/// Strips the `task.` / `model.` / `train.` prefix for column headers.
fn short_key(key: &str) -> &str {
    key.split_once('.').map_or(key, |(_, k)| k)
}

/// A table of summary rows: the leading text columns, the parameters, `runs ok` in a task's
/// table (`task`), then every metric the table shows (see [`crate::metric::METRICS`]).
fn summary_table(df: &DataFrame, rows: &[usize], leading: &[&str], param_keys: &[String], task: bool) -> Table {
    let metrics: Vec<&Metric> = METRICS
        .iter()
        .filter(|m| match metric_column(m, task) {
            Shown::No => false,
            Shown::WhenPresent => rows.iter().any(|&row| f64_at(df, &m.mean_column(), row).is_some()),
            Shown::Mean | Shown::MeanStd => true,
        })
        .collect();
    let mut header: Vec<String> = leading.iter().map(|c| c.to_string()).collect();
    header.extend(param_keys.iter().map(|k| short_key(k).to_string()));
    let first_numeric = header.len();
    if task {
        header.push("runs ok".into());
    }
    header.extend(metrics.iter().map(|m| m.header.to_string()));
    let rows = rows
        .iter()
        .map(|&row| {
            let mut cells: Vec<Cell> = leading.iter().map(|c| Cell::text(str_at(df, c, row))).collect();
            cells.extend(param_keys.iter().map(|k| Cell::number(str_at(df, k, row), f64_at(df, k, row))));
            if task {
                let runs = f64_at(df, "runs", row).unwrap_or(0.0);
                let runs_ok = f64_at(df, "runs_ok", row).unwrap_or(0.0);
                cells.push(Cell::number(format!("{runs_ok}/{runs}"), Some(runs_ok)));
            }
            cells.extend(metrics.iter().map(|m| metric_cell(df, m, metric_column(m, task), row)));
            cells
        })
        .collect();
    Table { header, first_numeric, rows }
}

/// The main table for one task: one row per (model, swept parameters), quality and efficiency
/// side by side.
pub fn task_table(df: &DataFrame, task: &str, param_keys: &[String]) -> Table {
    let rows: Vec<usize> = (0..df.height()).filter(|&row| str_at(df, "task", row) == task).collect();
    summary_table(df, &rows, &["model"], param_keys, true)
}

/// Efficiency side by side for every task and configuration: throughputs, memory, size, FLOPs,
/// achieved training FLOP/s and MFU (with a calibrated peak).
pub fn efficiency_table(df: &DataFrame, param_keys: &[String]) -> Table {
    let rows: Vec<usize> = (0..df.height()).filter(|&row| f64_at(df, "runs_ok", row).unwrap_or(0.0) > 0.0).collect();
    summary_table(df, &rows, &["task", "model"], param_keys, false)
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
    let swept =
        super::frame::swept_labels(r.swept.iter().map(|k| &**k), |k| r.params.get(k).map(super::frame::param_text));
    // The last line of stderr that says something (a panic message, a Python error, …).
    let tail = r.stderr_tail.as_deref().and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty())).unwrap_or("");
    vec![
        Cell::text(&*r.job_id),
        Cell::text(&*r.task_label),
        Cell::text(&*r.model),
        Cell::text(swept.join(" ")),
        Cell::number(r.seed.to_string(), Some(r.seed as f64)),
        Cell::text(r.status.as_str()),
        Cell::text(r.reason.as_deref().unwrap_or("").replace('\n', " ")),
        Cell::text(truncate(tail.trim(), 160)),
        Cell::text(r.log_file.as_deref().unwrap_or("")),
    ]
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Jobs that did not end `ok`, with their swept values, status, reason, the last line of their
/// stderr and their log — never silently dropped.
pub fn failures_table(rows: Vec<Vec<Cell>>) -> Table {
    let header = ["job", "task", "model", "swept", "seed", "status", "reason", "stderr (last line)", "log"]
        .map(String::from)
        .to_vec();
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

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn each_table_shows_a_metric_as_its_descriptor_says() {
        let df = df!(
            "task" => ["t"],
            "model" => ["m"],
            "runs" => [2.0],
            "runs_ok" => [2.0],
            "train_flops_per_s_mean" => [1e9],
            "train_flops_per_s_std" => [1e8],
            "mfu_mean" => [0.5],
            "mfu_std" => [0.01],
            "accuracy_mean" => [0.2555],
            "accuracy_std" => [0.001],
        )
        .unwrap();
        let cell = |t: &Table, header: &str| {
            let c = t.header.iter().position(|h| h == header).unwrap_or_else(|| panic!("{header} in {:?}", t.header));
            t.rows[0][c].text.clone()
        };
        let efficiency = efficiency_table(&df, &[]);
        assert_eq!(cell(&efficiency, "train FLOP/s"), "1.00G", "the mean alone");
        assert_eq!(cell(&efficiency, "MFU %"), "50.00 ± 1.00");
        assert!(!efficiency.header.iter().any(|h| h == "accuracy %"), "quality is in the task table only");
        let task = task_table(&df, "t", &[]);
        assert_eq!(cell(&task, "accuracy %"), "25.6 ± 0.1");
        assert_eq!(cell(&task, "runs ok"), "2/2");
        assert!(!task.header.iter().any(|h| h == "MSE"), "forecast errors only where present");
    }
}
