//! A task's further named evaluation splits (`len=512`, …; see `TaskData::evals`): per task,
//! one row per model configuration and split, the mean over the seeds that ended `ok`.
use super::row::Row;
use super::table::{Cell, Table};
use crate::metric::Unit;
use crate::record::Status;
use std::collections::BTreeMap;

/// (task, configuration, split) → sums of accuracy, exact match and loss, and the run count.
#[derive(Default)]
pub struct SplitSums(BTreeMap<(String, String, String), [f64; 4]>);

/// The model and its swept parameters (the seed aside): what a row stands for.
pub(super) fn configuration(r: &Row) -> String {
    let mut text = r.model.to_string();
    for k in r.swept.iter().filter(|k| ***k != *"seed") {
        let value = r.params.get(k).map(super::frame::param_text).unwrap_or_default();
        text += &format!(" {}={value}", k.split_once('.').map_or(&**k, |(_, short)| short));
    }
    text
}

/// Orders split names with their numbers as numbers (`len=512` before `len=1024`).
fn natural(name: &str) -> (String, u64) {
    let digits = name.trim_end_matches(|c: char| c.is_ascii_digit());
    (digits.to_string(), name[digits.len()..].parse().unwrap_or(0))
}

impl SplitSums {
    pub fn add(&mut self, r: &Row) {
        if r.status != Status::Ok || r.measurements.evals.is_empty() {
            return;
        }
        let config = configuration(r);
        for (split, s) in &r.measurements.evals {
            let sums = self.0.entry((r.task_label.to_string(), config.clone(), split.clone())).or_default();
            for (sum, value) in sums.iter_mut().zip([s.accuracy, s.exact_match, s.loss, 1.0]) {
                *sum += value;
            }
        }
    }

    pub fn merge(&mut self, later: SplitSums) {
        for (key, sums) in later.0 {
            let into = self.0.entry(key).or_default();
            for (a, b) in into.iter_mut().zip(sums) {
                *a += b;
            }
        }
    }

    /// Per task with named splits: its table.
    pub fn tables(&self) -> Vec<(String, Table)> {
        type Rows<'a> = Vec<(&'a str, &'a str, &'a [f64; 4])>;
        let mut by_task: BTreeMap<&str, Rows> = BTreeMap::new();
        for ((task, config, split), sums) in &self.0 {
            by_task.entry(task).or_default().push((config, split, sums));
        }
        let header = ["configuration", "split", "runs ok", "accuracy %", "exact match %", "loss"].map(String::from);
        by_task
            .into_iter()
            .map(|(task, mut rows)| {
                rows.sort_by_key(|(config, split, _)| (config.to_string(), natural(split)));
                let rows = rows
                    .into_iter()
                    .map(|(config, split, [acc, exact, loss, n])| {
                        let mean = |sum: f64, unit: Unit| Cell::number(unit.format(sum / n), Some(sum / n));
                        vec![
                            Cell::text(config),
                            Cell::text(split),
                            Cell::number(format!("{n}"), Some(*n)),
                            mean(*acc, Unit::Percent(1)),
                            mean(*exact, Unit::Percent(1)),
                            mean(*loss, Unit::Fixed(3)),
                        ]
                    })
                    .collect();
                (task.to_string(), Table { header: header.to_vec(), first_numeric: 2, rows })
            })
            .collect()
    }
}
