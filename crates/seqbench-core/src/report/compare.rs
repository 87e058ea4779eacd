//! `seqbench compare BASE NEW`: joins two runs on the job's configuration (task, model and
//! every parameter except the seed and run bounds — never on run-local ids), and flags a metric
//! that got worse by more than the noise: the threshold, or twice the standard error of the
//! difference estimated from the seeds, whichever is larger. `--match labels` joins on the
//! suite's names and swept values instead, for runs whose resolved configurations differ (two
//! seqbench versions with other defaults, or an edited preset).
use super::html::escape;
use crate::error::InputError;
use crate::metric::{Better, METRICS};
use crate::record::{Record, Status};
use crate::store::{self, RunDir};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// Parameters that bound a run without changing its result, or that change how fast it runs
/// rather than what it computes (a difference there is a warning); left out of the join key.
const NOT_IN_KEY: &[&str] = &["train.timeout_s", "train.max_memory", "train.flush_denormal", "train.save_weights"];

/// What joins a configuration of one run to one of the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MatchBy {
    /// Task, model and every resolved parameter: the same job.
    #[default]
    Config,
    /// Task and model names as the suite gives them, and the swept parameters' values: the same
    /// suite entry, whatever its other parameters resolved to.
    Labels,
}

/// A configuration as compared: task, model and parameters (seed excluded).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigKey {
    pub task: String,
    pub model: String,
    pub params: Vec<(String, String)>,
}

impl ConfigKey {
    pub fn of(r: &Record, match_by: MatchBy) -> Self {
        let params = r
            .params
            .iter()
            .filter(|(k, _)| match match_by {
                MatchBy::Config => !NOT_IN_KEY.contains(&k.as_str()),
                MatchBy::Labels => r.swept.contains(k),
            })
            .map(|(k, v)| (k.clone(), super::frame::param_text(v)))
            .collect();
        ConfigKey { task: r.task_label.clone(), model: r.model.clone(), params }
    }

    /// Short description: task, model and the swept parameters' values.
    pub fn describe(&self, swept: &[String]) -> String {
        let values: Vec<String> = self
            .params
            .iter()
            .filter(|(k, _)| swept.contains(k))
            .map(|(k, v)| format!("{}={v}", k.split_once('.').map_or(k.as_str(), |(_, s)| s)))
            .collect();
        let mut text = format!("{} / {}", self.task, self.model);
        if !values.is_empty() {
            text += &format!(" ({})", values.join(", "));
        }
        text
    }
}

/// Mean, sample standard deviation and count of one metric over the `ok` runs of a config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
}

fn stats(values: &[f64]) -> Option<Stats> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
    Some(Stats { mean, std, n })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Better,
    Worse,
    /// Within the noise.
    Same,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricChange {
    pub key: ConfigKey,
    pub metric: &'static str,
    pub base: Stats,
    pub new: Stats,
    /// (new − base) / |base|.
    pub change: f64,
    /// The relative change that counts as beyond the noise here.
    pub limit: f64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    pub changes: Vec<MetricChange>,
    pub only_base: Vec<ConfigKey>,
    pub only_new: Vec<ConfigKey>,
    /// Configurations with no `ok` run on one side (nothing to compare).
    pub not_ok: Vec<(ConfigKey, usize, usize)>,
    pub swept: Vec<String>,
    /// Configurations whose two sides ran differently in a way that moves speed figures.
    pub warnings: Vec<String>,
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &MetricChange> {
        self.changes.iter().filter(|c| c.verdict == Verdict::Worse)
    }
}

fn group(records: &[Record], match_by: MatchBy) -> BTreeMap<ConfigKey, Vec<&Record>> {
    let mut groups: BTreeMap<ConfigKey, Vec<&Record>> = BTreeMap::new();
    for r in records {
        groups.entry(ConfigKey::of(r, match_by)).or_default().push(r);
    }
    groups
}

/// Compares two runs' records, joined on the configuration. `threshold` is the smallest
/// relative change that counts (e.g. 0.05 for 5 %).
pub fn compare(base: &[Record], new: &[Record], threshold: f64) -> Comparison {
    compare_by(base, new, threshold, MatchBy::Config, &[])
}

/// [`compare`] with the join chosen, over the metrics named in `only` (all compared metrics
/// when empty).
pub fn compare_by(base: &[Record], new: &[Record], threshold: f64, match_by: MatchBy, only: &[String]) -> Comparison {
    let (b, n) = (group(base, match_by), group(new, match_by));
    let mut out = Comparison {
        swept: super::frame::swept_keys(&base.iter().chain(new).collect::<Vec<_>>()),
        only_base: b.keys().filter(|k| !n.contains_key(*k)).cloned().collect(),
        only_new: n.keys().filter(|k| !b.contains_key(*k)).cloned().collect(),
        ..Comparison::default()
    };
    for (key, base_runs) in &b {
        let Some(new_runs) = n.get(key) else { continue };
        let ok = |runs: &[&Record]| runs.iter().filter(|r| r.status == Status::Ok).count();
        let (base_ok, new_ok) = (ok(base_runs), ok(new_runs));
        if base_ok == 0 || new_ok == 0 {
            out.not_ok.push((key.clone(), base_ok, new_ok));
        }
        let (base_modes, new_modes) = (denormal_modes(base_runs), denormal_modes(new_runs));
        if base_modes != new_modes {
            out.warnings.push(format!(
                "{}: denormals {} in base, {} in new: CPU speeds are not comparable",
                key.describe(&out.swept),
                base_modes.join(" and "),
                new_modes.join(" and ")
            ));
        }
        let (base_paths, new_paths) = (implementations(base_runs), implementations(new_runs));
        if !base_paths.is_empty() && !new_paths.is_empty() && base_paths != new_paths {
            out.warnings.push(format!(
                "{}: different kernels ran — {} in base, {} in new: speeds compare implementations, not architectures",
                key.describe(&out.swept),
                base_paths.join(" | "),
                new_paths.join(" | ")
            ));
        }
        let wanted = |key: &str| only.is_empty() || only.iter().any(|o| o == key);
        for (metric, better) in METRICS.iter().filter(|m| wanted(m.key)).filter_map(|m| Some((m, m.better?))) {
            let values = |runs: &[&Record]| -> Vec<f64> {
                runs.iter()
                    .filter(|r| r.status == Status::Ok)
                    .filter_map(|r| (metric.get)(&r.measurements, r.wall_s))
                    .filter(|v| v.is_finite())
                    .collect()
            };
            let (Some(bs), Some(ns)) = (stats(&values(base_runs)), stats(&values(new_runs))) else { continue };
            if bs.mean == 0.0 && ns.mean == 0.0 {
                continue;
            }
            let scale = bs.mean.abs().max(f64::MIN_POSITIVE);
            let change = (ns.mean - bs.mean) / scale;
            // Standard error of the difference of means, from the seeds where there are several.
            let se = |s: &Stats| s.std.map_or(0.0, |sd| sd * sd / s.n as f64);
            let noise = 2.0 * (se(&bs) + se(&ns)).sqrt() / scale;
            let limit = threshold.max(noise);
            let improved = match better {
                Better::Higher => change > 0.0,
                Better::Lower => change < 0.0,
            };
            let verdict = if change.abs() <= limit {
                Verdict::Same
            } else if improved {
                Verdict::Better
            } else {
                Verdict::Worse
            };
            out.changes.push(MetricChange {
                key: key.clone(),
                metric: metric.key,
                base: bs,
                new: ns,
                change,
                limit,
                verdict,
            });
        }
    }
    out
}

/// How the `ok` runs treated denormal floats (records from before the option kept them).
fn denormal_modes(runs: &[&Record]) -> Vec<String> {
    let modes: std::collections::BTreeSet<&str> = runs
        .iter()
        .filter(|r| r.status == Status::Ok)
        .map(|r| r.measurements.denormals.as_deref().unwrap_or(crate::record::denormals::KEPT))
        .collect();
    modes.into_iter().map(String::from).collect()
}

/// The kernel paths the `ok` runs recorded (none in records from before it was recorded).
fn implementations(runs: &[&Record]) -> Vec<String> {
    let paths: std::collections::BTreeSet<&str> = runs
        .iter()
        .filter(|r| r.status == Status::Ok)
        .filter_map(|r| r.measurements.implementation.as_deref())
        .collect();
    paths.into_iter().map(String::from).collect()
}

/// A compared value as the report shows it (accuracy in %, memory in MiB).
fn number(metric: &str, x: f64) -> String {
    match crate::metric::metric(metric) {
        Some(m) => m.unit.format(x),
        None => format!("{x:.4}"),
    }
}

fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Better => "better",
        Verdict::Worse => "**REGRESSION**",
        Verdict::Same => "within noise",
    }
}

/// The comparison table, regressions first: the verdict and the seven cells of each row, as
/// both `compare.md` and `compare.html` show them.
fn rows(c: &Comparison) -> Vec<(Verdict, [String; 7])> {
    let mut changes: Vec<&MetricChange> = c.changes.iter().collect();
    changes.sort_by_key(|x| (x.verdict != Verdict::Worse, x.key.clone(), x.metric));
    changes
        .into_iter()
        .map(|x| {
            let cells = [
                x.key.describe(&c.swept),
                x.metric.to_string(),
                number(x.metric, x.base.mean),
                number(x.metric, x.new.mean),
                format!("{:+.1}%", 100.0 * x.change),
                format!("±{:.1}%", 100.0 * x.limit),
                verdict_text(x.verdict).to_string(),
            ];
            (x.verdict, cells)
        })
        .collect()
}

/// `compare.md`: every compared metric, regressions first, then configurations on one side only.
pub fn markdown(c: &Comparison, base_name: &str, new_name: &str) -> String {
    let regressions = c.regressions().count();
    let mut md = format!(
        "# seqbench compare: {base_name} → {new_name}\n\n{} configurations compared, {regressions} regressions.\n\n",
        c.changes.iter().map(|x| &x.key).collect::<std::collections::BTreeSet<_>>().len()
    );
    md += "| configuration | metric | base | new | change | noise limit | verdict |\n";
    md += "| --- | --- | ---: | ---: | ---: | ---: | --- |\n";
    for (_, cells) in rows(c) {
        md += &format!("| {} |\n", cells.join(" | "));
    }
    let list = |title: &str, keys: &[ConfigKey]| -> String {
        if keys.is_empty() {
            return String::new();
        }
        let items: Vec<String> = keys.iter().map(|k| format!("- {}\n", k.describe(&c.swept))).collect();
        format!("\n## {title}\n\n{}", items.concat())
    };
    if !c.warnings.is_empty() {
        md += "\n## Warnings\n\n";
        md += &c.warnings.iter().map(|w| format!("- {w}\n")).collect::<String>();
    }
    md += &list(&format!("Only in {base_name}"), &c.only_base);
    md += &list(&format!("Only in {new_name}"), &c.only_new);
    if !c.not_ok.is_empty() {
        md += "\n## No ok run on one side\n\n";
        for (k, b, n) in &c.not_ok {
            md += &format!("- {}: {b} ok in base, {n} ok in new\n", k.describe(&c.swept));
        }
    }
    md
}

/// `compare.html`: the report's look (its style, sortable tables, interactive charts): the
/// comparison table, then per metric a chart of new against base, one point per configuration,
/// with the line of no change.
pub fn html(c: &Comparison, base_name: &str, new_name: &str) -> String {
    let mut rows_html = String::new();
    for (verdict, cells) in rows(c) {
        let class = match verdict {
            Verdict::Worse => "worse",
            Verdict::Better => "better",
            Verdict::Same => "same",
        };
        let tds: String = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let num = if (2..6).contains(&i) { " class=\"num\"" } else { "" };
                // Sort numerically on the number the cell starts with (`+3.1%`, `±2.0%`, `25.6`).
                let value: String = cell.chars().take_while(|c| c.is_ascii_digit() || "+-.".contains(*c)).collect();
                let data = value.parse::<f64>().map_or(String::new(), |v| format!(" data-v=\"{v}\""));
                format!("<td{num}{data}>{}</td>", escape(cell.trim_matches('*')))
            })
            .collect();
        rows_html += &format!("<tr class=\"{class}\">{tds}</tr>\n");
    }
    let warnings_html = if c.warnings.is_empty() {
        String::new()
    } else {
        let items: String = c.warnings.iter().map(|w| format!("<li>{}</li>", escape(w))).collect();
        format!("<h2>Warnings</h2><ul>{items}</ul>\n")
    };
    let one_side = |title: String, keys: &[ConfigKey]| {
        if keys.is_empty() {
            return String::new();
        }
        let items: String = keys.iter().map(|k| format!("<li>{}</li>", escape(&k.describe(&c.swept)))).collect();
        format!("<h2>{}</h2><ul>{items}</ul>\n", escape(&title))
    };
    let header: String = ["configuration", "metric", "base", "new", "change", "noise limit", "verdict"]
        .iter()
        .enumerate()
        .map(|(i, h)| format!("<th{} title=\"sort\">{h}</th>", if (2..6).contains(&i) { " class=\"num\"" } else { "" }))
        .collect();
    let body = format!(
        "<h1>seqbench compare: {} → {}</h1>\n<p>{} configurations compared, {} regressions.</p>\n{warnings_html}\
         <table class=\"sortable\"><thead><tr>{header}</tr></thead><tbody>\n{rows_html}</tbody></table>\n{}{}{}",
        escape(base_name),
        escape(new_name),
        c.changes.iter().map(|x| &x.key).collect::<std::collections::BTreeSet<_>>().len(),
        c.regressions().count(),
        charts_html(c, base_name, new_name),
        one_side(format!("Only in {base_name}"), &c.only_base),
        one_side(format!("Only in {new_name}"), &c.only_new),
    );
    super::html::standalone_page(&format!("seqbench compare: {base_name} → {new_name}"), &body)
}

/// Per compared metric, new against base (in the report's units), one series per configuration.
fn charts_html(c: &Comparison, base_name: &str, new_name: &str) -> String {
    let mut by_metric: std::collections::BTreeMap<&str, Vec<super::charts::Series>> = Default::default();
    for x in &c.changes {
        let shown = |v: f64| crate::metric::metric(x.metric).map_or(v, |m| m.unit.shown(v));
        let point = (shown(x.base.mean), shown(x.new.mean));
        by_metric.entry(x.metric).or_default().push((x.key.describe(&c.swept), vec![point]));
    }
    let mut out = String::new();
    for (metric, series) in by_metric {
        let label = crate::metric::metric(metric).map_or(metric, |m| m.header);
        let values = series.iter().flat_map(|(_, p)| [p[0].0, p[0].1]);
        let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let spec = super::charts::spec(
            &format!("{label}: {new_name} against {base_name}"),
            (&format!("{label} in {base_name}"), &format!("{label} in {new_name}")),
            &series,
            true,
            (&[(lo, lo), (hi, hi)], "no change"),
        );
        out += &super::html::chart_figure(&format!("compare_{metric}"), &spec, "");
    }
    if out.is_empty() {
        out
    } else {
        format!("<h2>Charts</h2>\n<p>Above the line: higher in {}; below: lower.</p>\n{out}", escape(new_name))
    }
}

/// `seqbench compare`'s options.
pub struct Options {
    /// Smallest relative change that counts, in percent.
    pub threshold: f64,
    pub match_by: MatchBy,
    /// Exit with [`EXIT_REGRESSION`] when a metric regressed.
    pub fail_on_regression: bool,
    /// Metrics to compare (all compared metrics when empty).
    pub metrics: Vec<String>,
}

/// Exit status of `compare --fail-on-regression` when a metric regressed.
pub const EXIT_REGRESSION: u8 = 4;

/// `seqbench compare BASE NEW`: reads both runs, writes compare.md and compare.html (into NEW or
/// `out`), prints the table and warnings; the exit status gates on regressions with `fail`.
pub fn command(base: &Path, new: &Path, options: &Options, out: Option<&Path>) -> Result<ExitCode> {
    let Options { threshold, match_by, fail_on_regression: fail, ref metrics } = *options;
    if !(threshold >= 0.0 && threshold.is_finite()) {
        return Err(InputError::new(format!("--threshold must be a percentage ≥ 0, got {threshold}")).into());
    }
    let compared: Vec<&str> = METRICS.iter().filter(|m| m.better.is_some()).map(|m| m.key).collect();
    if let Some(unknown) = metrics.iter().find(|m| !compared.contains(&m.as_str())) {
        return Err(InputError::new(format!(
            "--metrics: `{unknown}` is not a compared metric; expected some of {}",
            compared.join(", ")
        ))
        .into());
    }
    let load = |dir: &Path| -> Result<(String, Vec<crate::record::Record>)> {
        let run = RunDir::open(dir)?;
        let (records, warnings) = store::read_records(&run.records_path())?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        Ok((dir.display().to_string(), records))
    };
    let ((base_name, base_records), (new_name, new_records)) = (load(base)?, load(new)?);
    if base.canonicalize().ok() == new.canonicalize().ok() {
        eprintln!("warning: {base_name} is compared with itself: every metric will be within noise");
    }
    let comparison = compare_by(&base_records, &new_records, threshold / 100.0, match_by, metrics);
    let md = markdown(&comparison, &base_name, &new_name);
    let html = html(&comparison, &base_name, &new_name);
    let out = out.unwrap_or(new);
    store::write_atomic(&out.join("compare.md"), md.as_bytes())?;
    store::write_atomic(&out.join("compare.html"), html.as_bytes())?;
    print!("{md}");
    for w in &comparison.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("comparison: {}", out.join("compare.md").display());
    let regressions = comparison.regressions().count();
    if fail && comparison.changes.is_empty() {
        // A gate that compared nothing must not pass.
        return Err(InputError::new(format!(
            "--fail-on-regression: nothing was compared (no configuration has ok runs in both {base_name} and {new_name}); check that they are runs of the same suite, or join them with --match labels"
        ))
        .into());
    }
    if fail && regressions > 0 {
        eprintln!("{regressions} metrics regressed");
        return Ok(ExitCode::from(EXIT_REGRESSION));
    }
    Ok(ExitCode::SUCCESS)
}
