//! The Long Range Arena table as the LRA paper prints it: one row per model, one column per
//! LRA task present (test accuracy %, mean over seeds of the runs that ended ok), then the
//! average over the model's tasks; the best of each column in bold. The retrieval stand-in
//! gets its own column, marked, so it is never read as AAN.
use super::row::Row;
use super::table::{Cell, Table};
use crate::record::Status;
use std::collections::BTreeMap;

/// (task name, column title) in the paper's order.
const COLUMNS: [(&str, &str); 7] = [
    ("listops", "ListOps"),
    ("text", "Text"),
    ("retrieval", "Retrieval (AAN)"),
    ("retrieval_standin", "Retrieval stand-in (IMDB, not AAN)"),
    ("image", "Image"),
    ("pathfinder", "Pathfinder"),
    ("pathx", "Path-X"),
];

pub struct LraTable {
    pub table: Table,
    /// Per column (after the model column): the best value (ties are all bold).
    best: Vec<Option<f64>>,
}

fn row_label(r: &Row) -> String {
    let swept: Vec<String> = r
        .swept
        .iter()
        .filter_map(|k| {
            let v = r.params.get(k)?;
            k.strip_prefix("model.").map(|short| format!("{short}={}", super::frame::param_text(v)))
        })
        .collect();
    if swept.is_empty() {
        r.model.to_string()
    } else {
        format!("{} {}", r.model, swept.join(" "))
    }
}

/// What the LRA table needs, gathered record by record: per model configuration and LRA task,
/// the accuracy sum and run count; configurations in order of first appearance.
#[derive(Default)]
pub struct LraSums {
    sums: BTreeMap<String, BTreeMap<String, (f64, f64)>>,
    models: Vec<String>,
}

impl LraSums {
    pub fn add(&mut self, r: &Row) {
        if r.status != Status::Ok || !COLUMNS.iter().any(|c| c.0 == &*r.task) {
            return;
        }
        let Some(acc) = r.measurements.accuracy else { return };
        // One row per model configuration: the model plus any swept model parameter.
        let label = row_label(r);
        let e = self.sums.entry(label.clone()).or_default().entry(r.task.to_string()).or_insert((0.0, 0.0));
        *e = (e.0 + acc, e.1 + 1.0);
        if !self.models.contains(&label) {
            self.models.push(label);
        }
    }

    /// Adds the records gathered in `later`, which come after this one's.
    pub fn merge(&mut self, later: LraSums) {
        for (label, by_task) in later.sums {
            let into = self.sums.entry(label).or_default();
            for (task, (s, n)) in by_task {
                let e = into.entry(task).or_insert((0.0, 0.0));
                *e = (e.0 + s, e.1 + n);
            }
        }
        for m in later.models {
            if !self.models.contains(&m) {
                self.models.push(m);
            }
        }
    }
}

/// The table from gathered sums; None when no LRA job ended ok.
pub fn lra_table(gathered: &LraSums) -> Option<LraTable> {
    let (sums, models) = (&gathered.sums, &gathered.models);
    let columns: Vec<(&str, &str)> =
        COLUMNS.iter().copied().filter(|(task, _)| sums.values().any(|by_task| by_task.contains_key(*task))).collect();
    if columns.is_empty() {
        return None;
    }
    let mut header = vec!["model".to_string()];
    header.extend(columns.iter().map(|c| c.1.to_string()));
    header.push("Avg".into());
    let rows: Vec<Vec<Cell>> = models
        .iter()
        .map(|model| {
            let by_task = &sums[model];
            let values: Vec<Option<f64>> =
                columns.iter().map(|(task, _)| by_task.get(*task).map(|(s, n)| 100.0 * s / n)).collect();
            let present: Vec<f64> = values.iter().flatten().copied().collect();
            // The average covers the model's own tasks; a missing task is named in the cell.
            let avg = (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64);
            let mut row = vec![Cell::text(model)];
            row.extend(values.iter().map(|v| match v {
                Some(v) => Cell::number(format!("{v:.1}"), Some(*v)),
                None => Cell::text("—"),
            }));
            // A partial average is shown but has no sort value, so it is never the bold best.
            row.push(match avg {
                Some(a) if present.len() == values.len() => Cell::number(format!("{a:.1}"), Some(a)),
                Some(a) => Cell::text(format!("{a:.1} ({}/{} tasks)", present.len(), values.len())),
                None => Cell::text("—"),
            });
            row
        })
        .collect();
    let best = (1..header.len()).map(|c| rows.iter().filter_map(|row| row[c].value).max_by(f64::total_cmp)).collect();
    let mut lra = LraTable { table: Table { header, first_numeric: 1, rows }, best };
    lra.mark_best();
    Some(lra)
}

impl LraTable {
    /// Marks the best of each column bold (Markdown and HTML).
    fn mark_best(&mut self) {
        for (c, best) in self.best.iter().enumerate() {
            for cell in self.table.rows.iter_mut().map(|row| &mut row[c + 1]) {
                // Compare as printed, so that cells that read the same are bold alike.
                if best.is_some_and(|b| cell.value.is_some_and(|v| format!("{v:.1}") == format!("{b:.1}"))) {
                    cell.strong = Some(format!("**{}**", cell.text));
                }
            }
        }
    }
}
