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

/// Orders split names with every number in them as a number (`len=512` before `len=1024`,
/// `depth=0.5` before `depth=1`): text and numbers alternate, compared piece by piece.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (pa, pb) = (pieces(a), pieces(b));
    for (x, y) in pa.iter().zip(&pb) {
        let order = match (x, y) {
            (Piece::Number(x), Piece::Number(y)) => x.total_cmp(y),
            (Piece::Text(x), Piece::Text(y)) => x.cmp(y),
            (Piece::Number(_), Piece::Text(_)) => std::cmp::Ordering::Less,
            (Piece::Text(_), Piece::Number(_)) => std::cmp::Ordering::Greater,
        };
        if order.is_ne() {
            return order;
        }
    }
    pa.len().cmp(&pb.len())
}

enum Piece<'a> {
    Text(&'a str),
    Number(f64),
}

fn pieces(name: &str) -> Vec<Piece<'_>> {
    let numeric = |c: char| c.is_ascii_digit() || c == '.';
    let mut out = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let starts_numeric = rest.starts_with(|c: char| c.is_ascii_digit());
        let end =
            rest.find(|c: char| if starts_numeric { !numeric(c) } else { c.is_ascii_digit() }).unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(end);
        out.push(match piece.parse() {
            Ok(x) if starts_numeric => Piece::Number(x),
            _ => Piece::Text(piece),
        });
        rest = tail;
    }
    out
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
                rows.sort_by(|(ca, sa, _), (cb, sb, _)| ca.cmp(cb).then_with(|| natural_cmp(sa, sb)));
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

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    #[test]
    fn split_names_sort_by_their_numbers() {
        let mut names = ["len=256 depth=1", "len=1024", "len=256 depth=0.5", "len=256 depth=0", "len=41", "all"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["all", "len=41", "len=256 depth=0", "len=256 depth=0.5", "len=256 depth=1", "len=1024"]);
    }
}
