//! Length generalisation in the layout of Delétang et al. (2023), Table 2: one row per task
//! (with its level in the Chomsky hierarchy), one column per model configuration; a cell is the
//! accuracy averaged over the evaluated lengths (the `len=N` splits), as the mean ± std over
//! seeds and, in brackets, the maximum over seeds — the paper reports the maximum.
use super::row::Row;
use super::table::{Cell, Table};
use crate::record::Status;
use std::collections::{BTreeMap, BTreeSet};

/// (level, task label) → configuration → one score per run that ended `ok`.
#[derive(Default)]
pub struct LengthScores(BTreeMap<(String, String), BTreeMap<String, Vec<f64>>>);

/// A run's score: its accuracy averaged over the `len=N` splits, if it has any.
pub fn score(r: &Row) -> Option<f64> {
    let accuracies: Vec<f64> =
        r.measurements.evals.iter().filter(|(name, _)| name.starts_with("len=")).map(|(_, s)| s.accuracy).collect();
    (!accuracies.is_empty()).then(|| accuracies.iter().sum::<f64>() / accuracies.len() as f64)
}

/// The task's level for the table's first column: R, DCF, CS (formal languages), group (state
/// tracking), or empty for other tasks evaluated at several lengths.
fn level(task: &str) -> String {
    crate::tasks::find(task).and_then(|t| t.level).unwrap_or("—").to_string()
}

/// Orders the rows as the paper does: regular, then deterministic context-free, then
/// context-sensitive, then the rest.
fn level_rank(level: &str) -> usize {
    ["R", "DCF", "CS", "group"].iter().position(|l| *l == level).unwrap_or(4)
}

impl LengthScores {
    pub fn add(&mut self, r: &Row) {
        let Some(score) = score(r).filter(|_| r.status == Status::Ok) else { return };
        let key = (level(&r.task), r.task_label.to_string());
        let config = super::splits::configuration(r);
        self.0.entry(key).or_default().entry(config).or_default().push(score);
    }

    pub fn merge(&mut self, later: LengthScores) {
        for (key, by_config) in later.0 {
            let into = self.0.entry(key).or_default();
            for (config, scores) in by_config {
                into.entry(config).or_default().extend(scores);
            }
        }
    }

    /// The table, when some run was evaluated at several lengths.
    pub fn table(&self) -> Option<Table> {
        if self.0.is_empty() {
            return None;
        }
        let configs: BTreeSet<&str> = self.0.values().flat_map(|c| c.keys().map(String::as_str)).collect();
        let mut header = vec!["level".to_string(), "task".to_string()];
        header.extend(configs.iter().map(|c| c.to_string()));
        let mut rows: Vec<_> = self.0.iter().collect();
        rows.sort_by_key(|((level, task), _)| (level_rank(level), task.clone()));
        let rows = rows
            .into_iter()
            .map(|((level, task), by_config)| {
                let mut cells = vec![Cell::text(level), Cell::text(task)];
                let best =
                    by_config.values().map(|s| s.iter().copied().fold(f64::NAN, f64::max)).fold(f64::NAN, f64::max);
                for config in &configs {
                    cells.push(match by_config.get(*config) {
                        Some(scores) => score_cell(scores, best),
                        None => Cell::text("—"),
                    });
                }
                cells
            })
            .collect();
        Some(Table { header, first_numeric: 2, rows })
    }
}

/// `mean ± std (max)` in %, bold when its maximum is the row's best (compared as printed).
fn score_cell(scores: &[f64], best: f64) -> Cell {
    let n = scores.len() as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let pct = |v: f64| format!("{:.1}", 100.0 * v);
    // One seed has no spread to show.
    let spread = match scores.len() {
        1 => String::new(),
        _ => format!(" ± {}", pct((scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())),
    };
    let max = scores.iter().copied().fold(f64::NAN, f64::max);
    let mut cell = Cell::number(format!("{}{spread} ({})", pct(mean), pct(max)), Some(mean));
    if pct(max) == pct(best) {
        cell.strong = Some(format!("{}{spread} (**{}**)", pct(mean), pct(max)));
    }
    cell
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_show_mean_std_and_the_maximum_the_paper_reports() {
        let cell = score_cell(&[0.5, 0.7, 0.9], 0.9);
        assert_eq!(cell.text, "70.0 ± 20.0 (90.0)");
        assert_eq!(cell.strong.as_deref(), Some("70.0 ± 20.0 (**90.0**)"));
        assert_eq!(score_cell(&[0.5], 0.9).text, "50.0 (50.0)");
        assert!(score_cell(&[0.5], 0.9).strong.is_none());
    }
}
