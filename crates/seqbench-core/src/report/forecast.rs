//! The forecasting table in Time-Series-Library's layout: one row per dataset × horizon, one
//! column per model with MSE / MAE (mean over seeds), the best of each row in bold.
use super::row::Row;
use super::table::{Cell, Table};
use crate::record::Status;
use std::collections::BTreeMap;

/// (table, for each row the column indices holding the lowest MSE and the lowest MAE).
pub struct ForecastTable {
    pub table: Table,
    best: Vec<(usize, usize)>,
    values: Vec<Vec<Option<(f64, f64)>>>,
}

fn param(r: &Row, key: &str) -> String {
    r.params.get(key).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).unwrap_or_default()
}

/// (dataset, features, horizon): one row of the table.
type RowKey = (String, String, i64);
/// model → (Σ MSE, Σ MAE, runs)
type Sums = BTreeMap<String, (f64, f64, f64)>;

/// What the TSLib table needs, gathered record by record; models in order of first appearance.
#[derive(Default)]
pub struct TslibSums {
    cells: BTreeMap<RowKey, Sums>,
    models: Vec<String>,
}

impl TslibSums {
    /// Adds a record of `task` (its registry entry); only forecasting records count.
    pub fn add(&mut self, r: &Row, task: Option<&crate::tasks::TaskFacts>) {
        let series = task.is_some_and(|t| t.training == crate::tasks::Training::Series);
        if !series || r.status != Status::Ok {
            return;
        }
        let (Some(mse), Some(mae)) = (r.measurements.mse, r.measurements.mae) else { return };
        let horizon = r.params.get("task.pred_len").and_then(|v| v.as_i64()).unwrap_or(0);
        let key = (param(r, "task.dataset"), param(r, "task.features"), horizon);
        let e = self.cells.entry(key).or_default().entry(r.model.to_string()).or_insert((0.0, 0.0, 0.0));
        *e = (e.0 + mse, e.1 + mae, e.2 + 1.0);
        if !self.models.iter().any(|m| *m == *r.model) {
            self.models.push(r.model.to_string());
        }
    }

    /// Adds the records gathered in `later`, which come after this one's.
    pub fn merge(&mut self, later: TslibSums) {
        for (key, by_model) in later.cells {
            let into = self.cells.entry(key).or_default();
            for (model, (s, a, n)) in by_model {
                let e = into.entry(model).or_insert((0.0, 0.0, 0.0));
                *e = (e.0 + s, e.1 + a, e.2 + n);
            }
        }
        for m in later.models {
            if !self.models.contains(&m) {
                self.models.push(m);
            }
        }
    }
}

/// The table from gathered sums; None when no forecasting job ended ok.
pub fn tslib_table(gathered: &TslibSums) -> Option<ForecastTable> {
    let (cells, models) = (&gathered.cells, &gathered.models);
    if cells.is_empty() {
        return None;
    }
    let mut header = vec!["dataset".to_string(), "features".into(), "horizon".into()];
    header.extend(models.iter().map(|m| format!("{m} MSE / MAE")));
    let (mut rows, mut best, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for ((dataset, features, horizon), by_model) in cells {
        let means: Vec<Option<(f64, f64)>> =
            models.iter().map(|m| by_model.get(m).map(|(s, a, n)| (s / n, a / n))).collect();
        let argmin = |f: fn(&(f64, f64)) -> f64| {
            means
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.as_ref().map(|v| (i, f(v))))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |x| x.0)
        };
        best.push((argmin(|v| v.0), argmin(|v| v.1)));
        let mut row =
            vec![Cell::text(dataset), Cell::text(features), Cell::number(horizon.to_string(), Some(*horizon as f64))];
        row.extend(means.iter().map(|v| match v {
            Some((mse, mae)) => Cell::number(format!("{mse:.3} / {mae:.3}"), Some(*mse)),
            None => Cell::text("—"),
        }));
        rows.push(row);
        values.push(means);
    }
    let mut table = ForecastTable { table: Table { header, first_numeric: 2, rows }, best, values };
    table.mark_best();
    Some(table)
}

impl ForecastTable {
    /// Marks the best MSE and the best MAE of each row bold (Markdown and HTML).
    fn mark_best(&mut self) {
        for (row, ((best_mse, best_mae), means)) in self.table.rows.iter_mut().zip(self.best.iter().zip(&self.values)) {
            for (i, v) in means.iter().enumerate() {
                let Some((mse, mae)) = v else { continue };
                // Compare as printed, so that values that read the same are bold alike.
                let best =
                    |j: usize, pick: fn(&(f64, f64)) -> f64| means[j].as_ref().map(|m| format!("{:.3}", pick(m)));
                let bold = |v: f64, j: usize, pick| {
                    let text = format!("{v:.3}");
                    if best(j, pick).as_ref() == Some(&text) {
                        format!("**{text}**")
                    } else {
                        text
                    }
                };
                let (mse, mae) = (bold(*mse, *best_mse, |m| m.0), bold(*mae, *best_mae, |m| m.1));
                row[3 + i].strong = Some(format!("{mse} / {mae}"));
            }
        }
    }
}
