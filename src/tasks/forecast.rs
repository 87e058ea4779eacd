//! `forecast`: multivariate time-series forecasting under Time-Series-Library's protocol —
//! its splits, a standard scaler fit on the training rows only, every sliding window of the
//! test split (nothing dropped at the end), MSE and MAE on the scaled values. Training (Adam,
//! learning rate halved every epoch, early stopping on validation loss, best checkpoint tested)
//! is in `runner::forecast`.
use super::{data, TaskInfo};
use crate::models::{Head, TaskIo};
use crate::params::{ParamError, ParamMap};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};

pub const NAME: &str = seqbench_core::tasks::FORECAST.name;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastConfig {
    /// ETTh1, ETTh2, ETTm1, ETTm2, weather, exchange_rate, national_illness — or `custom`
    /// with `path`.
    pub dataset: String,
    /// A CSV of your own (`dataset: custom`): a header, a date column first, then numeric
    /// feature columns, one of them `target`. Split 70/10/20 % as TSLib's custom datasets.
    pub path: Option<PathBuf>,
    /// Column forecast in `S` mode (and put last, as TSLib orders custom datasets).
    pub target: String,
    /// `M`: every channel in, every channel out. `S`: the target only.
    pub features: FeatureMode,
    /// Input window L (TSLib: 96; 36 for national_illness).
    pub seq_len: i64,
    /// Horizon H (TSLib: 96, 192, 336, 720; illness 24, 36, 48, 60).
    pub pred_len: i64,
    /// Every channel forecast separately by the same model (batch × channels series of one
    /// channel each), as PatchTST does.
    pub channel_independence: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureMode {
    M,
    S,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            dataset: "ETTh1".into(),
            path: None,
            target: "OT".into(),
            features: FeatureMode::M,
            seq_len: 96,
            pred_len: 96,
            channel_independence: false,
        }
    }
}

/// How a dataset is cut into train / validation / test rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitRule {
    /// ETTh: 12 / 4 / 4 months of hourly rows.
    EttHour,
    /// ETTm: the same months of 15-minute rows.
    EttMinute,
    /// Everything else: 70 % / 10 % / 20 %.
    Ratio,
}

/// (file under the datasets directory, split rule) of the named datasets.
fn known(dataset: &str) -> Option<(&'static str, SplitRule)> {
    Some(match dataset {
        "ETTh1" => ("ett/ETTh1.csv", SplitRule::EttHour),
        "ETTh2" => ("ett/ETTh2.csv", SplitRule::EttHour),
        "ETTm1" => ("ett/ETTm1.csv", SplitRule::EttMinute),
        "ETTm2" => ("ett/ETTm2.csv", SplitRule::EttMinute),
        "weather" => ("forecasting/weather.csv", SplitRule::Ratio),
        "exchange_rate" => ("forecasting/exchange_rate.csv", SplitRule::Ratio),
        "national_illness" => ("forecasting/national_illness.csv", SplitRule::Ratio),
        _ => return None,
    })
}

const SOURCES: &str = "the ETDataset repository (zhouhaoyi/ETDataset) for ETT*, and the Autoformer dataset bundle for weather, exchange_rate and national_illness; ../shared/datasets/README.md lists them";

/// Row ranges [train, val, test] of a series of `rows` rows, as TSLib's data loaders cut them:
/// validation and test windows start `seq_len` rows early so that their first target follows
/// the previous split.
pub fn split_rows(rule: SplitRule, rows: usize, seq_len: usize) -> [Range<usize>; 3] {
    let (train_end, val_end, test_end) = match rule {
        SplitRule::EttHour | SplitRule::EttMinute => {
            let month = if rule == SplitRule::EttHour { 30 * 24 } else { 30 * 24 * 4 };
            (12 * month, 16 * month, 20 * month)
        }
        SplitRule::Ratio => {
            let train = (rows as f64 * 0.7) as usize;
            let test = (rows as f64 * 0.2) as usize;
            (train, rows - test, rows)
        }
    };
    // Saturating: a file too short for the input length gives empty splits, which `load`
    // reports as too few rows.
    [0..train_end, train_end.saturating_sub(seq_len)..val_end, val_end.saturating_sub(seq_len)..test_end]
}

/// A loaded, scaled series and its splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Scaled values, row-major: rows × channels.
    pub values: Vec<f32>,
    pub channels: usize,
    pub splits: [Range<usize>; 3],
    pub seq_len: usize,
    pub pred_len: usize,
    /// Per-channel mean and standard deviation of the training rows.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// Each channel is its own one-channel series for the model (PatchTST's channel independence).
    pub channel_independence: bool,
}

impl Series {
    /// Sliding windows in split `s` (0 train, 1 val, 2 test): every start whose input and
    /// horizon fit, none dropped.
    pub fn windows(&self, s: usize) -> usize {
        (self.splits[s].len() + 1).saturating_sub(self.seq_len + self.pred_len)
    }

    /// Window `w` of split `s`: (input seq_len × channels, target pred_len × channels).
    pub fn window(&self, s: usize, w: usize) -> (&[f32], &[f32]) {
        let start = self.splits[s].start + w;
        let c = self.channels;
        let x = &self.values[start * c..(start + self.seq_len) * c];
        let y = &self.values[(start + self.seq_len) * c..(start + self.seq_len + self.pred_len) * c];
        (x, y)
    }

    /// Shapes for the model: real-valued channels in, the same channels forecast.
    pub fn io(&self) -> TaskIo {
        forecast_io(self.channels, self.seq_len, self.pred_len, self.channel_independence)
    }
}

/// Real-valued channels in (one per series with channel independence), the same channels
/// forecast `pred_len` steps ahead.
fn forecast_io(channels: usize, seq_len: usize, pred_len: usize, channel_independence: bool) -> TaskIo {
    let c = if channel_independence { 1 } else { channels as i64 };
    TaskIo {
        input_features: c,
        head: Head::Forecast { horizon: pred_len as i64 },
        ..TaskIo::per_token(0, c, seq_len as i64, false)
    }
}

/// Standardises `raw` (rows × channels) with the mean and population standard deviation of
/// `fit_rows` only, as sklearn's StandardScaler fit on the training split.
pub fn standardize(raw: &[f64], channels: usize, fit_rows: Range<usize>) -> (Vec<f32>, Vec<f64>, Vec<f64>) {
    let n = fit_rows.len() as f64;
    let mut mean = vec![0.0; channels];
    let mut var = vec![0.0; channels];
    for row in fit_rows.clone() {
        for c in 0..channels {
            mean[c] += raw[row * channels + c] / n;
        }
    }
    for row in fit_rows {
        for c in 0..channels {
            var[c] += (raw[row * channels + c] - mean[c]).powi(2) / n;
        }
    }
    // A constant channel keeps scale 1 (sklearn does the same) instead of dividing by zero.
    let std: Vec<f64> = var.iter().map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 }).collect();
    let scaled = raw.iter().enumerate().map(|(i, x)| ((x - mean[i % channels]) / std[i % channels]) as f32).collect();
    (scaled, mean, std)
}

/// Reads the CSV (with polars), orders and selects the columns as TSLib does, splits and scales.
pub fn load(cfg: &ForecastConfig, suite_data_dir: Option<&Path>) -> Result<Series> {
    let (path, rule) = match (known(&cfg.dataset), &cfg.path) {
        (_, Some(p)) => (p.clone(), known(&cfg.dataset).map_or(SplitRule::Ratio, |k| k.1)),
        (Some((file, rule)), None) => (data::locate(file, suite_data_dir, SOURCES)?, rule),
        (None, None) => bail!("dataset `{}` needs `path:` (a CSV file)", cfg.dataset),
    };
    let (columns, raw) = read_csv(&path)?;
    let target = columns
        .iter()
        .position(|c| c == &cfg.target)
        .with_context(|| format!("{}: no column `{}` (columns: {})", path.display(), cfg.target, columns.join(", ")))?;
    // TSLib puts the target last; in S mode it is the only channel.
    let order: Vec<usize> = match cfg.features {
        FeatureMode::M => (0..columns.len()).filter(|&c| c != target).chain([target]).collect(),
        FeatureMode::S => vec![target],
    };
    let width = columns.len();
    let rows = raw.len() / width;
    let channels = order.len();
    let picked: Vec<f64> =
        (0..rows).flat_map(|r| order.iter().map(move |&c| (r, c))).map(|(r, c)| raw[r * width + c]).collect();
    let (seq_len, pred_len) = (cfg.seq_len as usize, cfg.pred_len as usize);
    let splits = split_rows(rule, rows, seq_len);
    anyhow::ensure!(
        splits[2].end <= rows && splits.iter().all(|s| s.len() >= seq_len + pred_len),
        "{}: {rows} rows are too few for input {seq_len} + horizon {pred_len} in every split",
        path.display()
    );
    let (values, mean, std) = standardize(&picked, channels, splits[0].clone());
    let channel_independence = cfg.channel_independence;
    Ok(Series { values, channels, splits, seq_len, pred_len, mean, std, channel_independence })
}

/// Numeric columns after the first (the date) and their values, row-major.
fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<f64>)> {
    use polars::prelude::*;
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(10_000))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let names: Vec<String> = df.get_column_names().iter().skip(1).map(|n| n.trim().to_string()).collect();
    anyhow::ensure!(!names.is_empty(), "{}: expected a date column and at least one feature column", path.display());
    let rows = df.height();
    let mut raw = vec![0.0; rows * names.len()];
    for (c, column) in df.columns().iter().skip(1).enumerate() {
        let not_numeric = |_| anyhow::anyhow!("{}: column `{}` is not numeric", path.display(), names[c]);
        let values = column.cast(&DataType::Float64).map_err(not_numeric)?;
        for (r, v) in values.f64().map_err(not_numeric)?.iter().enumerate() {
            raw[r * names.len() + c] = v.ok_or_else(|| {
                anyhow::anyhow!("{}: column `{}`, data row {}: empty or not a number", path.display(), names[c], r + 1)
            })?;
        }
    }
    Ok((names, raw))
}

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    let cfg: ForecastConfig = crate::params::resolve(combo)?;
    if known(&cfg.dataset).is_none() && cfg.path.is_none() {
        return Err(ParamError::new(
            "dataset",
            format!(
                "unknown dataset `{}`: use ETTh1, ETTh2, ETTm1, ETTm2, weather, exchange_rate, national_illness, or custom with `path:`",
                cfg.dataset
            ),
        ));
    }
    if let Some(path) = cfg.path.as_ref().filter(|p| !p.is_file()) {
        return Err(ParamError::new(
            "path",
            format!("no such file: {} (relative paths start from the directory seqbench runs in)", path.display()),
        ));
    }
    for (key, v) in [("seq_len", cfg.seq_len), ("pred_len", cfg.pred_len)] {
        if !(1..=100_000).contains(&v) {
            return Err(ParamError::new(key, format!("must be in 1..=100000, got {v}")));
        }
    }
    serde_json::to_value(&cfg).map_err(|e| ParamError::new("", e.to_string()))
}

/// Shapes without reading the file: the channel count comes from the dataset's known width.
fn io(params: &serde_json::Value) -> Result<TaskIo> {
    let cfg: ForecastConfig = serde_json::from_value(params.clone())?;
    let channels = match (cfg.features, cfg.dataset.as_str()) {
        (FeatureMode::S, _) => 1,
        (_, "ETTh1" | "ETTh2" | "ETTm1" | "ETTm2" | "national_illness") => 7,
        (_, "weather") => 21,
        (_, "exchange_rate") => 8,
        _ => 1,
    };
    Ok(forecast_io(channels, cfg.seq_len as usize, cfg.pred_len as usize, cfg.channel_independence))
}

fn build(params: &serde_json::Value, ctx: super::BuildContext) -> Result<super::Data> {
    let cfg: ForecastConfig = serde_json::from_value(params.clone()).context("forecast parameters")?;
    Ok(super::Data::Series(load(&cfg, ctx.data_dir)?))
}

pub const INFO: TaskInfo = TaskInfo { facts: seqbench_core::tasks::FORECAST, resolve, io, build };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ett_hour_splits_and_test_windows_match_tslib() {
        let s = split_rows(SplitRule::EttHour, 17_420, 96);
        assert_eq!(s, [0..8640, 8544..11520, 11424..14400]);
        // TSLib's ETTh1 test set at L = H = 96 has 2,785 windows (with drop_last off).
        let series = Series {
            values: vec![],
            channels: 7,
            splits: s,
            seq_len: 96,
            pred_len: 96,
            mean: vec![],
            std: vec![],
            channel_independence: false,
        };
        assert_eq!([series.windows(0), series.windows(1), series.windows(2)], [8449, 2785, 2785]);
    }

    #[test]
    fn ett_minute_splits_are_four_times_the_hours() {
        assert_eq!(split_rows(SplitRule::EttMinute, 69_680, 96), [0..34560, 34464..46080, 45984..57600]);
    }

    #[test]
    fn ratio_splits_as_tslib_custom_datasets() {
        // weather: 52,696 rows → train 36,887, test 10,539, val the rest.
        let s = split_rows(SplitRule::Ratio, 52_696, 96);
        assert_eq!(s, [0..36887, 36791..42157, 42061..52696]);
    }

    #[test]
    fn scaler_is_fit_on_the_fitting_rows_only() {
        // Two channels, 4 rows; fit on rows 0..2 only.
        let raw = [1.0, 10.0, 3.0, 10.0, 100.0, 50.0, -100.0, 70.0];
        let (scaled, mean, std) = standardize(&raw, 2, 0..2);
        assert_eq!(mean, [2.0, 10.0]);
        assert_eq!(std, [1.0, 1.0]); // population std of (1, 3); constant channel keeps 1
        assert_eq!(scaled, [-1.0, 0.0, 1.0, 0.0, 98.0, 40.0, -102.0, 60.0]);
    }

    /// Forecasting builds through the one task interface: its data is the series (with the
    /// channel-independence flag the model's input depends on); asking it for tokens says why not.
    #[test]
    fn forecast_data_builds_through_the_task_interface() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("series.csv");
        let rows: String = (0..200).map(|i| format!("2020-01-01 {i:03},{},{}\n", i % 7, i % 5)).collect();
        std::fs::write(&csv, format!("date,a,OT\n{rows}")).unwrap();
        let mut combo = ParamMap::new();
        combo.insert("dataset".into(), "custom".into());
        combo.insert("path".into(), csv.to_str().unwrap().into());
        combo.insert("seq_len".into(), 12.into());
        combo.insert("pred_len".into(), 4.into());
        combo.insert("channel_independence".into(), true.into());
        let params = (INFO.resolve)(&combo).unwrap();
        let super::super::Data::Series(series) = (INFO.build)(&params, super::super::BuildContext::seed(0)).unwrap()
        else {
            panic!("forecast built something other than a series")
        };
        assert_eq!((series.channels, series.seq_len, series.pred_len), (2, 12, 4));
        assert!(series.channel_independence);
        assert_eq!(series.splits[0], 0..140, "TSLib's 70 % of 200 rows");
        let err = INFO.build_tokens(&params, super::super::BuildContext::seed(0)).err().unwrap().to_string();
        assert!(err.contains("task `forecast` has no token data"), "{err}");
    }
}
