//! Records → polars frames: the flat per-job table, and the per-configuration summary
//! (mean ± std over seeds of every metric, runs ok / total).
use crate::record::Record;
use anyhow::Result;
use polars::prelude::*;
use std::collections::BTreeSet;

/// Reads one metric of a record.
pub type MetricFn = fn(&Record) -> Option<f64>;

/// Metric columns: (column, how it is read from a record).
pub const METRICS: &[(&str, MetricFn)] = &[
    ("accuracy", |r| r.measurements.accuracy),
    ("val_accuracy", |r| r.measurements.val_accuracy),
    ("exact_match", |r| r.measurements.exact_match),
    ("eval_loss", |r| r.measurements.eval_loss),
    ("mse", |r| r.measurements.mse),
    ("mae", |r| r.measurements.mae),
    ("train_loss", |r| r.measurements.train_loss),
    ("train_tokens_per_s", |r| r.measurements.train_tokens_per_s),
    ("infer_tokens_per_s", |r| r.measurements.infer_tokens_per_s),
    ("gen_tokens_per_s", |r| r.measurements.gen_tokens_per_s),
    ("peak_mem_bytes", |r| r.measurements.peak_mem_bytes.map(|b| b as f64)),
    ("n_params", |r| r.measurements.n_params.map(|n| n as f64)),
    ("flops_per_token", |r| r.measurements.flops_per_token),
    ("train_flops_per_s", |r| r.measurements.train_flops_per_s),
    ("mfu", |r| r.measurements.mfu),
    ("train_s", |r| r.measurements.train_s),
    ("wall_s", |r| Some(r.wall_s)),
];

/// A parameter value as text (`64`, `0.001`, `learned`), so mixed types group and print alike.
pub fn param_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The swept parameters of a set of records (union over records, suite order kept sorted).
pub fn swept_keys(records: &[&Record]) -> Vec<String> {
    let keys: BTreeSet<&String> = records.iter().flat_map(|r| r.swept.iter()).collect();
    keys.into_iter().cloned().collect()
}

/// One row per record; parameter columns for `param_keys`, then every metric.
pub fn records_frame(records: &[&Record], param_keys: &[String]) -> Result<DataFrame> {
    let text = |name: &str, f: &dyn Fn(&Record) -> String| {
        Column::new(name.into(), records.iter().map(|r| f(r)).collect::<Vec<String>>())
    };
    let mut columns = vec![
        text("job_id", &|r| r.job_id.clone()),
        text("task", &|r| r.task_label.clone()),
        text("model", &|r| r.model.clone()),
        text("arch", &|r| r.arch.clone()),
        Column::new("seed".into(), records.iter().map(|r| r.seed).collect::<Vec<u64>>()),
        text("status", &|r| r.status.as_str().to_string()),
        text("reason", &|r| r.reason.clone().unwrap_or_default()),
    ];
    for key in param_keys {
        columns.push(param_column(key, records));
    }
    for (name, get) in METRICS {
        columns.push(Column::new((*name).into(), records.iter().map(|r| get(r)).collect::<Vec<Option<f64>>>()));
    }
    Ok(DataFrame::new(records.len(), columns)?)
}

/// A parameter column typed so that it sorts naturally: integers, else floats, else text.
fn param_column(key: &str, records: &[&Record]) -> Column {
    let values: Vec<Option<&serde_json::Value>> = records.iter().map(|r| r.params.get(key)).collect();
    let present = || values.iter().flatten();
    if present().all(|v| v.is_i64()) {
        Column::new(key.into(), values.iter().map(|v| v.and_then(|v| v.as_i64())).collect::<Vec<_>>())
    } else if present().all(|v| v.is_number()) {
        Column::new(key.into(), values.iter().map(|v| v.and_then(|v| v.as_f64())).collect::<Vec<_>>())
    } else {
        Column::new(key.into(), values.iter().map(|v| v.map(param_text)).collect::<Vec<_>>())
    }
}

/// Groups by task, model and `param_keys`; for each metric `<m>_mean` and `<m>_std` over the
/// runs that ended `ok`, plus `runs` and `runs_ok`. Sorted by task, model, parameters.
pub fn summary_frame(records: &DataFrame, param_keys: &[String]) -> Result<DataFrame> {
    let mut keys: Vec<Expr> = vec![col("task"), col("model")];
    keys.extend(param_keys.iter().map(|k| col(k.as_str())));
    let ok = col("status").eq(lit("ok"));
    let mut aggs =
        vec![len().cast(DataType::UInt32).alias("runs"), ok.clone().cast(DataType::UInt32).sum().alias("runs_ok")];
    for (name, _) in METRICS {
        let m = col(*name).filter(ok.clone());
        aggs.push(m.clone().mean().alias(format!("{name}_mean")));
        aggs.push(m.std(1).alias(format!("{name}_std")));
    }
    let sorted = records
        .clone()
        .lazy()
        .group_by(keys.clone())
        .agg(aggs)
        .sort_by_exprs(keys, SortMultipleOptions::default())
        .collect()?;
    Ok(sorted)
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
