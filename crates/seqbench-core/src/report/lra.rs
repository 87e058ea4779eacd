//! The Long Range Arena table as the LRA paper prints it: one row per model, one column per
//! LRA task present (test accuracy %, mean over seeds of the runs that ended ok), then the
//! average over the model's tasks; the best of each column in bold. The retrieval stand-in
//! gets its own column, marked, so it is never read as AAN. Two task entries of one kind (say,
//! ListOps at two depths, by name or by a swept task parameter) get a column each.
use super::row::Row;
use super::table::{Cell, Table};
use crate::record::Status;
use std::collections::{BTreeMap, BTreeSet};

/// The column title of the `kind`-th LRA task (see [`crate::tasks::lra_tasks`]).
fn title(kind: usize) -> &'static str {
    crate::tasks::lra_tasks().nth(kind).and_then(|t| t.lra_column).unwrap_or_default()
}

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

/// A column: the task's index among [`crate::tasks::lra_tasks`], and what tells it apart from other entries of the
/// same kind (empty for a plain entry named after its kind).
type Column = (usize, String);

/// The column of a record of an LRA task: its kind, plus the entry's name when it is not the
/// kind's and any swept task parameter.
fn column(r: &Row, kind: usize) -> Column {
    let mut parts: Vec<String> = Vec::new();
    if *r.task_label != *r.task {
        parts.push(r.task_label.to_string());
    }
    parts.extend(r.swept_task_params());
    (kind, parts.join(" "))
}

/// What the LRA table needs, gathered record by record: per model configuration and column, the
/// accuracy sum and run count; configurations in order of first appearance.
#[derive(Default)]
pub struct LraSums {
    sums: BTreeMap<String, BTreeMap<Column, (f64, f64)>>,
    models: Vec<String>,
}

impl LraSums {
    /// Adds a record of `task` (its registry entry); records of tasks outside LRA are skipped.
    pub fn add(&mut self, r: &Row, task: Option<&crate::tasks::TaskFacts>) {
        let Some(name) = task.filter(|t| t.lra_column.is_some()).map(|t| t.name) else { return };
        let Some(kind) = crate::tasks::lra_tasks().position(|t| t.name == name) else { return };
        let (true, Some(acc)) = (r.status == Status::Ok, r.measurements.accuracy) else { return };
        // One row per model configuration: the model plus any swept model parameter.
        let label = row_label(r);
        let e = self.sums.entry(label.clone()).or_default().entry(column(r, kind)).or_insert((0.0, 0.0));
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
    let columns: BTreeSet<&Column> = sums.values().flat_map(|by_column| by_column.keys()).collect();
    if columns.is_empty() {
        return None;
    }
    let mut header = vec!["model".to_string()];
    header.extend(columns.iter().map(|(kind, which)| match which.as_str() {
        "" => title(*kind).to_string(),
        which => format!("{} ({which})", title(*kind)),
    }));
    header.push("Avg".into());
    let rows: Vec<Vec<Cell>> = models
        .iter()
        .map(|model| {
            let by_column = &sums[model];
            let values: Vec<Option<f64>> =
                columns.iter().map(|c| by_column.get(*c).map(|(s, n)| 100.0 * s / n)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    #[test]
    fn two_entries_of_one_kind_get_a_column_each_and_other_kinds_keep_theirs() {
        let template = crate::report::tests::fixture_record();
        let records: Vec<Record> = [
            ("listops", "listops", 0.3),
            ("listops", "listops-deep", 0.2),
            ("text", "text", 0.6),
            ("mqar", "mqar", 0.9),
        ]
        .into_iter()
        .map(|(kind, label, acc)| {
            let mut r = template.clone();
            (r.task, r.task_label, r.swept) = (kind.into(), label.into(), Vec::new());
            r.measurements.accuracy = Some(acc);
            r
        })
        .collect();
        let mut sums = LraSums::default();
        records.iter().for_each(|r| crate::report::row::with_row(r, |row| sums.add(row, crate::tasks::find(&r.task))));
        let table = lra_table(&sums).unwrap().table;
        assert_eq!(table.header, ["model", "ListOps", "ListOps (listops-deep)", "Text", "Avg"]);
        let texts: Vec<&str> = table.rows[0].iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["lstm", "30.0", "20.0", "60.0", "36.7"], "mqar is not an LRA task");
    }
}
