//! Every metric a report shows, declared once: its key (the records table's column, the
//! summary's `<key>_mean` and `<key>_std`), header, unit, which direction is better, and where it
//! appears. The records table, the summary, the report's tables, the charts against sequence
//! length and `compare` all iterate [`METRICS`]; adding a metric is computing it (in the runner,
//! or here from what a record holds) and adding one entry.
use crate::record::Measurements;
use crate::units::human_rate;

/// Which direction of a metric is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// How a metric's values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A fraction shown as a percentage with this many decimals.
    Percent(usize),
    /// Bytes shown in MiB, no decimals.
    Mib,
    /// A count or rate shown with a k/M/G suffix (`12.3k`).
    Human,
    /// A plain number with this many decimals.
    Fixed(usize),
}

impl Unit {
    /// The value in the unit shown (a percentage, MiB), as tables print it and charts draw it.
    pub fn shown(self, x: f64) -> f64 {
        match self {
            Unit::Percent(_) => 100.0 * x,
            Unit::Mib => x / (1024.0 * 1024.0),
            Unit::Human | Unit::Fixed(_) => x,
        }
    }

    /// The value as text in the unit shown.
    pub fn format(self, x: f64) -> String {
        match self {
            Unit::Percent(decimals) | Unit::Fixed(decimals) => format!("{:.*}", decimals, self.shown(x)),
            Unit::Mib => format!("{:.0}", self.shown(x)),
            Unit::Human => human_rate(x),
        }
    }
}

/// How a report table shows a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Not in this table.
    No,
    /// Mean ± std over seeds.
    MeanStd,
    /// The mean alone (a size that seeds do not change).
    Mean,
    /// Mean ± std, and the column only in a task's table where some row has a value
    /// (forecasting's errors).
    WhenPresent,
}

/// One metric and everywhere it appears.
pub struct Metric {
    pub key: &'static str,
    pub header: &'static str,
    pub unit: Unit,
    /// The direction `compare` judges; None for metrics `compare` leaves out (sizes, times).
    pub better: Option<Better>,
    /// In each task's table and in the efficiency table.
    pub task_table: Shown,
    pub efficiency_table: Shown,
    /// Drawn against sequence length when a task's length varies: (chart name, axis label).
    pub vs_seq_len: Option<(&'static str, &'static str)>,
    /// The value from a record's measurements and its wall-clock seconds.
    pub get: fn(&Measurements, f64) -> Option<f64>,
}

impl Metric {
    const fn new(
        key: &'static str,
        header: &'static str,
        unit: Unit,
        get: fn(&Measurements, f64) -> Option<f64>,
    ) -> Self {
        Metric {
            key,
            header,
            unit,
            better: None,
            task_table: Shown::No,
            efficiency_table: Shown::No,
            vs_seq_len: None,
            get,
        }
    }

    /// Judged by `compare`, with `better` the improving direction.
    const fn compared(mut self, better: Better) -> Self {
        self.better = Some(better);
        self
    }

    const fn tables(mut self, task: Shown, efficiency: Shown) -> Self {
        self.task_table = task;
        self.efficiency_table = efficiency;
        self
    }

    const fn vs_seq_len(mut self, chart: &'static str, axis: &'static str) -> Self {
        self.vs_seq_len = Some((chart, axis));
        self
    }

    /// The summary's columns for this metric.
    pub fn mean_column(&self) -> String {
        format!("{}_mean", self.key)
    }

    pub fn std_column(&self) -> String {
        format!("{}_std", self.key)
    }
}

use Better::{Higher, Lower};
use Shown::{Mean, MeanStd, No, WhenPresent};

/// Every metric, in the order of the records table's and the summary's columns, and of the
/// report tables' metric columns.
pub const METRICS: &[Metric] = &[
    Metric::new("mse", "MSE", Unit::Fixed(4), |m, _| m.mse).compared(Lower).tables(WhenPresent, No),
    Metric::new("mae", "MAE", Unit::Fixed(4), |m, _| m.mae).compared(Lower).tables(WhenPresent, No),
    Metric::new("bits_per_byte", "bits/byte", Unit::Fixed(3), |m, _| m.bits_per_byte)
        .compared(Lower)
        .tables(WhenPresent, No),
    Metric::new("perplexity", "perplexity", Unit::Fixed(2), |m, _| m.perplexity)
        .compared(Lower)
        .tables(WhenPresent, No),
    Metric::new("accuracy", "accuracy %", Unit::Percent(1), |m, _| m.accuracy)
        .compared(Higher)
        .tables(MeanStd, No)
        .vs_seq_len("accuracy", "accuracy (%)"),
    Metric::new("val_accuracy", "val accuracy %", Unit::Percent(1), |m, _| m.val_accuracy),
    Metric::new("exact_match", "exact match %", Unit::Percent(1), |m, _| m.exact_match)
        .compared(Higher)
        .tables(MeanStd, No),
    Metric::new("eval_loss", "eval loss", Unit::Fixed(3), |m, _| m.eval_loss).compared(Lower).tables(MeanStd, No),
    Metric::new("train_loss", "train loss", Unit::Fixed(3), |m, _| m.train_loss),
    Metric::new("train_tokens_per_s", "train tok/s", Unit::Human, |m, _| m.train_tokens_per_s)
        .compared(Higher)
        .tables(MeanStd, MeanStd)
        .vs_seq_len("throughput", "training throughput (tokens/s)"),
    Metric::new("infer_tokens_per_s", "infer tok/s", Unit::Human, |m, _| m.infer_tokens_per_s)
        .compared(Higher)
        .tables(MeanStd, MeanStd),
    Metric::new("gen_tokens_per_s", "gen tok/s", Unit::Human, |m, _| m.gen_tokens_per_s)
        .compared(Higher)
        .tables(MeanStd, MeanStd),
    Metric::new("peak_mem_bytes", "peak mem MiB", Unit::Mib, |m, _| m.peak_mem_bytes.map(|b| b as f64))
        .compared(Lower)
        .tables(MeanStd, MeanStd)
        .vs_seq_len("memory", "peak memory (MiB)"),
    // The job's own memory on CPU: its peak resident set less what the process held before
    // data and model were built (libtorch's ~400 MiB, which hides the model's share).
    Metric::new("job_mem_bytes", "job mem MiB", Unit::Mib, |m, _| {
        let rss = m.mem_kind.as_deref() == Some("cpu_peak_rss");
        rss.then(|| Some(m.peak_mem_bytes?.saturating_sub(m.baseline_rss_bytes?) as f64)).flatten()
    })
    .compared(Lower)
    .tables(MeanStd, MeanStd),
    Metric::new("n_params", "params", Unit::Human, |m, _| m.n_params.map(|n| n as f64)).tables(Mean, Mean),
    Metric::new("flops_per_token", "fwd FLOPs/tok", Unit::Human, |m, _| m.flops_per_token).tables(Mean, Mean),
    Metric::new("state_size", "state", Unit::Human, |m, _| m.state_size).tables(No, Mean),
    Metric::new("train_flops_per_s", "train FLOP/s", Unit::Human, |m, _| m.train_flops_per_s).tables(No, Mean),
    Metric::new("mfu", "MFU %", Unit::Percent(2), |m, _| m.mfu).tables(No, MeanStd),
    Metric::new("train_s", "train s", Unit::Fixed(1), |m, _| m.train_s),
    Metric::new("wall_s", "wall s", Unit::Fixed(1), |_, wall_s| Some(wall_s)),
];

/// The metric named `key`.
pub fn metric(key: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_compare_judges_quality_speed_and_memory() {
        let keys: std::collections::BTreeSet<&str> = METRICS.iter().map(|m| m.key).collect();
        assert_eq!(keys.len(), METRICS.len());
        let compared: Vec<(&str, Better)> = METRICS.iter().filter_map(|m| Some((m.key, m.better?))).collect();
        assert_eq!(
            compared,
            [
                ("mse", Lower),
                ("mae", Lower),
                ("bits_per_byte", Lower),
                ("perplexity", Lower),
                ("accuracy", Higher),
                ("exact_match", Higher),
                ("eval_loss", Lower),
                ("train_tokens_per_s", Higher),
                ("infer_tokens_per_s", Higher),
                ("gen_tokens_per_s", Higher),
                ("peak_mem_bytes", Lower),
                ("job_mem_bytes", Lower),
            ]
        );
    }

    #[test]
    fn units_show_values_as_the_report_prints_them() {
        assert_eq!(Unit::Percent(1).format(0.2555), "25.6");
        assert_eq!(Unit::Mib.format(3.0 * 1048576.0), "3");
        assert_eq!(Unit::Fixed(3).format(1.23456), "1.235");
        assert_eq!(Unit::Percent(2).shown(0.5), 50.0);
    }

    #[test]
    fn job_memory_is_the_peak_less_the_baseline_on_cpu_only() {
        let mut m = Measurements {
            peak_mem_bytes: Some(500 << 20),
            baseline_rss_bytes: Some(420 << 20),
            mem_kind: Some("cpu_peak_rss".into()),
            ..Measurements::default()
        };
        let job = metric("job_mem_bytes").unwrap();
        assert_eq!((job.get)(&m, 0.0), Some((80u64 << 20) as f64));
        m.mem_kind = Some("cuda_allocator_peak".into());
        assert_eq!((job.get)(&m, 0.0), None);
    }
}
