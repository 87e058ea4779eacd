//! A task's further named evaluation splits (`len=512`, …; see `TaskData::evals`): per task,
//! one row per model configuration and split, the mean over the seeds that ended `ok`.
use super::row::Row;
use super::table::{Cell, Table};
use crate::metric::Unit;
use crate::record::Status;
use std::collections::BTreeMap;

/// More distinct `len=N` splits than this in a task and its table shows ranges of lengths.
const MAX_SPLITS: usize = 16;
const LENGTH_GROUPS: usize = 8;

/// (task, configuration, split) → sums of accuracy, exact match and loss, and the run count.
#[derive(Default)]
pub struct SplitSums(BTreeMap<(String, String, String), [f64; 4]>);

/// The model and its swept parameters (the seed aside): what a row stands for.
pub(super) fn configuration(r: &Row) -> String {
    let mut text = String::new();
    write_configuration(r, &mut text);
    text
}

/// [`configuration`] written into `out` (cleared first): a report builds one per record, and a
/// buffer kept from record to record saves the allocations.
pub(super) fn write_configuration(r: &Row, out: &mut String) {
    out.clear();
    out.push_str(&r.model);
    for k in r.swept.iter().filter(|k| ***k != *"seed") {
        let short = k.split_once('.').map_or(&**k, |(_, short)| short);
        out.push(' ');
        out.push_str(short);
        out.push('=');
        if let Some(value) = r.params.get(k) {
            super::frame::write_param_text(value, out);
        }
    }
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

    /// Tasks evaluated at more than [`MAX_SPLITS`] lengths (`len=N`; the formal-language
    /// protocol has 460) have them averaged in [`LENGTH_GROUPS`] ranges of consecutive lengths,
    /// `len=41..=98`: the per-length detail is in the chart and the records.
    fn lengths_grouped(&self) -> SplitSums {
        let mut lengths: BTreeMap<&str, std::collections::BTreeSet<u64>> = BTreeMap::new();
        for (task, _, split) in self.0.keys() {
            if let Some(n) = split.strip_prefix("len=").and_then(|n| n.parse().ok()) {
                lengths.entry(task).or_default().insert(n);
            }
        }
        // Per task with many lengths: each length's range name and the range's size.
        let mut range_of: BTreeMap<(&str, u64), (String, f64)> = BTreeMap::new();
        for (task, set) in lengths.into_iter().filter(|(_, set)| set.len() > MAX_SPLITS) {
            let sorted: Vec<u64> = set.into_iter().collect();
            for chunk in sorted.chunks(sorted.len().div_ceil(LENGTH_GROUPS)) {
                let name = format!("len={}..={}", chunk[0], chunk[chunk.len() - 1]);
                for &n in chunk {
                    range_of.insert((task, n), (name.clone(), chunk.len() as f64));
                }
            }
        }
        let mut out = SplitSums::default();
        for ((task, config, split), sums) in &self.0 {
            let range =
                split.strip_prefix("len=").and_then(|n| n.parse().ok()).and_then(|n| range_of.get(&(&**task, n)));
            let (name, size) = range.map_or((split.clone(), 1.0), |(name, size)| (name.clone(), *size));
            let into = out.0.entry((task.clone(), config.clone(), name)).or_default();
            // Scaled by the range's size: means are unchanged and the count is runs, not runs × lengths.
            into.iter_mut().zip(sums).for_each(|(a, b)| *a += b / size);
        }
        out
    }

    /// Per task with named splits: its table.
    pub fn tables(&self) -> Vec<(String, Table)> {
        type Rows<'a> = Vec<(&'a str, &'a str, &'a [f64; 4])>;
        let grouped = self.lengths_grouped();
        let mut by_task: BTreeMap<&str, Rows> = BTreeMap::new();
        for ((task, config, split), sums) in &grouped.0 {
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
    use super::{natural_cmp, SplitSums};

    #[test]
    fn many_lengths_are_shown_as_ranges_with_their_mean() {
        let mut sums = SplitSums::default();
        for n in 41..=80u64 {
            // One run per length; accuracy 1 up to 60, then 0.
            let acc = if n <= 60 { 1.0 } else { 0.0 };
            sums.0.insert(("parity".into(), "lstm".into(), format!("len={n}")), [acc, acc, 0.5, 1.0]);
        }
        sums.0.insert(("parity".into(), "lstm".into(), "other".into()), [0.25, 0.0, 1.0, 1.0]);
        let grouped = sums.lengths_grouped();
        let names: Vec<&str> = grouped.0.keys().map(|(_, _, s)| s.as_str()).collect();
        assert_eq!(names.len(), 9, "{names:?}");
        assert!(names.contains(&"len=41..=45") && names.contains(&"len=76..=80") && names.contains(&"other"));
        let get = |name: &str| grouped.0[&("parity".to_string(), "lstm".to_string(), name.to_string())];
        let [acc, _, loss, runs] = get("len=56..=60");
        assert_eq!((acc / runs, loss / runs, runs), (1.0, 0.5, 1.0));
        assert_eq!(get("len=61..=65")[0], 0.0);
        assert_eq!(get("other"), [0.25, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn split_names_sort_by_their_numbers() {
        let mut names = ["len=256 depth=1", "len=1024", "len=256 depth=0.5", "len=256 depth=0", "len=41", "all"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["all", "len=41", "len=256 depth=0", "len=256 depth=0.5", "len=256 depth=1", "len=1024"]);
    }
}
