//! Records → polars frames: the flat per-job table, and the per-configuration summary
//! (mean ± std over seeds of every metric, runs ok / total).
use super::row::Row;
use crate::metric::METRICS;
use crate::record::Record;
use anyhow::Result;
use polars::prelude::*;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// A parameter value as text (`64`, `0.001`, `learned`), so mixed types group and print alike.
pub fn param_text(v: &serde_json::Value) -> String {
    let mut text = String::new();
    write_param_text(v, &mut text);
    text
}

/// [`param_text`] appended to `out`, for text built once per record.
pub fn write_param_text(v: &serde_json::Value, out: &mut String) {
    use std::fmt::Write;
    match v {
        serde_json::Value::String(s) => out.push_str(s),
        serde_json::Value::Null => {}
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// A job's swept parameters but the seed as `name=value`, the name without its `task.`/`model.`/
/// `train.` prefix: what tells two jobs of one suite entry apart in progress lines and failures.
pub fn swept_labels<'k>(
    swept: impl IntoIterator<Item = &'k str>,
    value_of: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    swept
        .into_iter()
        .filter(|k| *k != "seed")
        .map(|k| format!("{}={}", k.rsplit('.').next().unwrap_or(k), value_of(k).unwrap_or_default()))
        .collect()
}

/// The swept parameters of a set of records (union over records, suite order kept sorted).
pub fn swept_keys(records: &[&Record]) -> Vec<String> {
    let keys: BTreeSet<&String> = records.iter().flat_map(|r| r.swept.iter()).collect();
    keys.into_iter().cloned().collect()
}

/// The per-job table, gathered chunk by chunk without holding the records: the fixed columns
/// and every parameter as columns (which parameters are swept, and so shown, is known only once
/// every chunk is read; the values of a parameter that some other job sweeps are shown too).
#[derive(Default)]
pub struct FramePart {
    rows: usize,
    fixed: Option<DataFrame>,
    params: BTreeMap<String, ParamColumn>,
    swept: BTreeSet<String>,
    pending: Option<PendingRows>,
    /// Parameter values of the pending rows (shorter than `pending`: the missing rows are null),
    /// in the order the records list them: records of one run list the same keys in the same
    /// order, so a record's i-th key is found at i without a look-up or a copy of the key.
    pending_params: Vec<(String, Vec<Option<serde_json::Value>>)>,
    /// How many records the caller expects before the next seal: the columns are made that
    /// large at once instead of growing (and faulting new pages in) by doubling.
    pub expected_rows: usize,
}

/// The fixed columns of the records not yet sealed, built column by column as they arrive (no
/// allocation per record: a million-record report adds them all).
struct PendingRows {
    len: usize,
    text: [StringChunkedBuilder; TEXT_COLUMNS.len()],
    seed: Vec<u64>,
    /// Every metric: built as values and validity, as the columns hold them.
    metrics: Vec<PrimitiveChunkedBuilder<Float64Type>>,
}

impl PendingRows {
    /// Room for `rows` rows before a column grows.
    fn new(rows: usize) -> Self {
        PendingRows {
            len: 0,
            text: TEXT_COLUMNS.map(|name| StringChunkedBuilder::new(name.into(), rows)),
            seed: Vec::with_capacity(rows),
            metrics: METRICS.iter().map(|m| PrimitiveChunkedBuilder::new(m.key.into(), rows)).collect(),
        }
    }

    fn push(&mut self, r: &Row) {
        let text = [&*r.job_id, &r.task_label, &r.model, &r.arch, r.status.as_str(), r.reason.as_deref().unwrap_or("")];
        for (column, value) in self.text.iter_mut().zip(text) {
            column.append_value(value);
        }
        self.seed.push(r.seed);
        for (column, metric) in self.metrics.iter_mut().zip(METRICS) {
            column.append_option((metric.get)(&r.measurements, r.wall_s));
        }
        self.len += 1;
    }

    /// The fixed columns, in order: four text columns, `seed`, two more text columns, every
    /// metric.
    fn finish(self) -> Result<DataFrame> {
        let mut text = self.text.map(|b| b.finish().into_column()).into_iter();
        let mut columns: Vec<Column> = text.by_ref().take(4).collect();
        columns.push(Column::new("seed".into(), self.seed));
        columns.extend(text);
        columns.extend(self.metrics.into_iter().map(|b| b.finish().into_column()));
        Ok(DataFrame::new(self.len, columns)?)
    }
}

/// Fixed text columns, in order; `seed` sits between `arch` and `status`.
const TEXT_COLUMNS: [&str; 6] = ["job_id", "task", "model", "arch", "status", "reason"];

/// Where the parameter columns go in the records table: after the text columns and `seed`.
const PARAMS_AT: usize = TEXT_COLUMNS.len() + 1;

/// How a parameter's values are stored: integers, else floats, else text (so that columns sort
/// naturally); `Null` until a value is seen.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Kind {
    Null,
    Int,
    Float,
    Text,
}

impl Kind {
    fn dtype(self) -> DataType {
        match self {
            Kind::Null | Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Text => DataType::String,
        }
    }
}

struct ParamColumn {
    kind: Kind,
    column: Column,
}

impl ParamColumn {
    fn nulls(key: &str, rows: usize) -> Self {
        ParamColumn { kind: Kind::Null, column: Column::full_null(key.into(), rows, &Kind::Null.dtype()) }
    }

    fn of(key: &str, values: &[Option<serde_json::Value>]) -> Self {
        let present = || values.iter().flatten();
        let (kind, column) = if present().next().is_none() {
            return ParamColumn::nulls(key, values.len());
        } else if present().all(|v| v.is_i64()) {
            (Kind::Int, Column::new(key.into(), values.iter().map(|v| v.as_ref()?.as_i64()).collect::<Vec<_>>()))
        } else if present().all(|v| v.is_number()) {
            (Kind::Float, Column::new(key.into(), values.iter().map(|v| v.as_ref()?.as_f64()).collect::<Vec<_>>()))
        } else {
            let text: Vec<Option<String>> = values.iter().map(|v| v.as_ref().map(param_text)).collect();
            (Kind::Text, Column::new(key.into(), text))
        };
        ParamColumn { kind, column }
    }

    fn append(&mut self, later: ParamColumn) -> Result<()> {
        let kind = if self.kind > later.kind { self.kind } else { later.kind };
        let cast = |c: &Column| c.cast(&kind.dtype());
        let mut joined = cast(&self.column)?;
        joined.append(&cast(&later.column)?)?;
        *self = ParamColumn { kind, column: joined };
        Ok(())
    }
}

impl FramePart {
    pub fn add(&mut self, r: &Row) {
        for key in &r.swept {
            super::insert(&mut self.swept, key);
        }
        let pending = self.pending.get_or_insert_with(|| PendingRows::new(self.expected_rows.max(1024)));
        for (i, (key, value)) in r.params.0.iter().enumerate() {
            let slot = match self.pending_params.get(i) {
                Some((k, _)) if k == &**key => i,
                _ => match self.pending_params.iter().position(|(k, _)| k == &**key) {
                    Some(j) => j,
                    None => {
                        self.pending_params.push((key.to_string(), Vec::with_capacity(self.expected_rows)));
                        self.pending_params.len() - 1
                    }
                },
            };
            let column = &mut self.pending_params[slot].1;
            column.resize(pending.len, None);
            column.push(Some(value.clone()));
        }
        pending.push(r);
    }

    /// Turns the pending rows into columns (once per chunk, in the chunk's own thread, so that
    /// memory stays columnar and merging only appends).
    pub fn seal(&mut self) -> Result<()> {
        let Some(rows) = self.pending.take() else {
            return Ok(());
        };
        let len = rows.len;
        let mut later = FramePart { rows: len, fixed: Some(rows.finish()?), ..FramePart::default() };
        for (key, mut values) in std::mem::take(&mut self.pending_params) {
            values.resize(len, None);
            let column = ParamColumn::of(&key, &values);
            later.params.insert(key, column);
        }
        self.append(later)
    }
    /// Appends the sealed rows of `later` after this part's sealed rows.
    fn append(&mut self, later: FramePart) -> Result<()> {
        let keys: BTreeSet<String> = self.params.keys().chain(later.params.keys()).cloned().collect();
        let mut later_params = later.params;
        for key in keys {
            let next = later_params.remove(&key).unwrap_or_else(|| ParamColumn::nulls(&key, later.rows));
            match self.params.get_mut(&key) {
                Some(column) => column.append(next)?,
                None => {
                    let mut column = ParamColumn::nulls(&key, self.rows);
                    column.append(next)?;
                    self.params.insert(key, column);
                }
            }
        }
        match (&mut self.fixed, later.fixed) {
            (Some(fixed), Some(df)) => {
                fixed.vstack_mut(&df)?;
            }
            (fixed @ None, df) => *fixed = df,
            (_, None) => {}
        }
        self.rows += later.rows;
        self.swept.extend(later.swept);
        Ok(())
    }

    /// Appends a later chunk's records after this one's.
    pub fn merge(&mut self, mut later: FramePart) -> Result<()> {
        self.seal()?;
        later.seal()?;
        self.append(later)
    }

    /// The swept parameters, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.swept.iter().cloned().collect()
    }

    /// One row per record: the fixed columns, a column per swept parameter, then every metric.
    pub fn finish(mut self) -> Result<DataFrame> {
        self.seal()?;
        let fixed = match self.fixed.take() {
            Some(fixed) => fixed,
            None => PendingRows::new(0).finish()?,
        };
        let mut columns: Vec<Column> = fixed.columns()[..PARAMS_AT].to_vec();
        for key in &self.swept {
            let column = self.params.remove(key).unwrap_or_else(|| ParamColumn::nulls(key, self.rows));
            columns.push(column.column);
        }
        columns.extend(fixed.columns()[PARAMS_AT..].iter().cloned());
        Ok(DataFrame::new(self.rows, columns)?)
    }
}

/// Groups by task, model and `param_keys`; for each metric `<m>_mean` and `<m>_std` (sample
/// standard deviation) over the runs that ended `ok`, plus `runs` and `runs_ok`. Sorted by task,
/// model, parameters. Eager: polars' lazy engine would add a hundred crates (its cloud I/O stack
/// among them) to the build for this one group-by.
pub fn summary_frame(records: &DataFrame, param_keys: &[String]) -> Result<DataFrame> {
    let mut keys: Vec<&str> = vec!["task", "model"];
    keys.extend(param_keys.iter().map(String::as_str));
    let by = records.group_by(keys.iter().copied())?;
    let groups: Vec<Vec<usize>> = by
        .get_groups()
        .iter()
        .map(|group| match group {
            GroupsIndicator::Idx((_, rows)) => rows.iter().map(|&r| r as usize).collect(),
            GroupsIndicator::Slice([first, len]) => (first as usize..(first + len) as usize).collect(),
        })
        .collect();
    // Each metric column is read once, in row order, into its group's running sums: indexing a
    // column row by row costs a chunk look-up per cell, and visiting rows group by group jumps
    // around memory, a million rows times every metric. The metrics run in parallel.
    let ok: Vec<bool> = records.column("status")?.str()?.iter().map(|s| s == Some("ok")).collect();
    // Each ok row's group, and each group's count of ok rows.
    let (mut group_of, mut ok_counts) = (vec![None; records.height()], vec![0u32; groups.len()]);
    for (g, rows) in groups.iter().enumerate() {
        for &r in rows.iter().filter(|&&r| ok[r]) {
            group_of[r] = Some(g as u32);
            ok_counts[g] += 1;
        }
    }
    let mut columns = by.keys();
    columns.push(Column::new("runs".into(), groups.iter().map(|rows| rows.len() as u32).collect::<Vec<_>>()));
    columns.push(Column::new("runs_ok".into(), ok_counts));
    let per_metric = METRICS
        .par_iter()
        .map(|metric| -> Result<[Column; 2]> {
            let values = records.column(metric.key)?.cast(&DataType::Float64)?;
            let mut stats = vec![RunningStats::default(); groups.len()];
            for (value, group) in values.f64()?.iter().zip(&group_of) {
                if let (Some(x), Some(g)) = (value, group) {
                    stats[*g as usize].push(x);
                }
            }
            let (means, stds): (Vec<_>, Vec<_>) = stats.iter().map(RunningStats::mean_and_sample_std).unzip();
            Ok([Column::new(metric.mean_column().into(), means), Column::new(metric.std_column().into(), stds)])
        })
        .collect::<Result<Vec<_>>>()?;
    columns.extend(per_metric.into_iter().flatten());
    let summary = DataFrame::new(groups.len(), columns)?;
    Ok(summary.sort(keys, SortMultipleOptions::default())?)
}

/// A group's values of one metric, taken in row order: their sum, and Welford's online update
/// of the deviation, as polars' group-by computes it, so that summaries match earlier reports to
/// the last digit.
#[derive(Clone, Copy, Default)]
struct RunningStats {
    n: usize,
    sum: f64,
    running_mean: f64,
    m2: f64,
}

impl RunningStats {
    fn push(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        let delta = x - self.running_mean;
        self.running_mean += delta / self.n as f64;
        self.m2 += delta * (x - self.running_mean);
    }

    /// Mean (None without values) and standard deviation with one degree of freedom removed
    /// (None below two values).
    fn mean_and_sample_std(&self) -> (Option<f64>, Option<f64>) {
        if self.n == 0 {
            return (None, None);
        }
        let std = (self.n > 1).then(|| (self.m2 / (self.n - 1) as f64).sqrt());
        (Some(self.sum / self.n as f64), std)
    }
}

/// Value of a float column at `row`, None when null or missing.
pub fn f64_at(df: &DataFrame, name: &str, row: usize) -> Option<f64> {
    df.column(name).ok()?.get(row).ok()?.extract::<f64>().filter(|x| x.is_finite())
}

/// Any cell as display text: integers plainly, floats in their shortest form, null as empty.
pub fn str_at(df: &DataFrame, name: &str, row: usize) -> String {
    let Some(value) = df.column(name).ok().and_then(|c| c.get(row).ok()) else {
        return String::new();
    };
    match value {
        AnyValue::Null => String::new(),
        AnyValue::Float64(x) => x.to_string(),
        AnyValue::Float32(x) => x.to_string(),
        v if v.is_integer() => v.to_string(),
        v => v.get_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seven records of three configurations: the summary groups them, averages only the runs
    /// that ended ok, and sorts by task, model and then the parameter as a number.
    #[test]
    fn the_summary_averages_ok_runs_per_configuration_in_sorted_order() {
        let mse = METRICS[0].key;
        let mut columns = vec![
            Column::new("task".into(), ["t"; 7]),
            Column::new("model".into(), ["b", "a", "a", "a", "a", "a", "a"]),
            Column::new("len".into(), [Some(8i64), Some(16), Some(16), Some(16), Some(2), Some(2), None]),
            Column::new("status".into(), ["ok", "ok", "ok", "failed", "ok", "ok", "ok"]),
        ];
        for metric in METRICS {
            let values: Vec<Option<f64>> = if metric.key == mse {
                vec![Some(9.0), Some(1.0), Some(3.0), Some(100.0), Some(5.0), None, Some(7.0)]
            } else {
                vec![None; 7]
            };
            columns.push(Column::new(metric.key.into(), values));
        }
        let records = DataFrame::new(7, columns).unwrap();
        let summary = summary_frame(&records, &["len".to_string()]).unwrap();
        let text = |name: &str| (0..summary.height()).map(|r| str_at(&summary, name, r)).collect::<Vec<_>>();
        assert_eq!(text("model"), ["a", "a", "a", "b"]);
        assert_eq!(text("len"), ["", "2", "16", "8"], "nulls first, then numeric order");
        assert_eq!(text("runs"), ["1", "2", "3", "1"]);
        assert_eq!(text("runs_ok"), ["1", "2", "2", "1"]);
        let mean = |r| f64_at(&summary, &METRICS[0].mean_column(), r);
        let std = |r| f64_at(&summary, &METRICS[0].std_column(), r);
        assert_eq!([mean(0), mean(1), mean(2), mean(3)], [Some(7.0), Some(5.0), Some(2.0), Some(9.0)]);
        // One value (or one non-null value) has no sample deviation; the failed run's 100 is left out.
        assert_eq!([std(0), std(1), std(3)], [None, None, None]);
        assert!((std(2).unwrap() - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(f64_at(&summary, &METRICS[1].mean_column(), 0), None);
    }
}
