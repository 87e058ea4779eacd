//! Reports: `report.md` and `report.html` (per-task tables, failures; the HTML also carries the
//! run's environment and suite), `tables/summary.{csv,parquet}` and
//! `tables/records.{csv,parquet}`, all written atomically.
pub mod charts;
pub mod compare;
pub mod forecast;
pub mod frame;
pub mod generalisation;
pub mod html;
pub mod lra;
mod read;
pub mod row;
pub mod splits;
pub mod table;

use crate::record::Record;
use crate::store::{self, write_atomic, RunDir};
use anyhow::{Context, Result};
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub struct Report {
    pub markdown: String,
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// Writes `df` as CSV and as Parquet beside it (`<stem>.csv`, `<stem>.parquet`), streamed, the
/// two at once: each writer keeps about one core busy. Parquet is LZ4-compressed: at a million
/// records zstd took twice as long for a file 40 % smaller.
fn write_frame(stem: &Path, df: &DataFrame) -> Result<Vec<PathBuf>> {
    let (csv, parquet) = (stem.with_extension("csv"), stem.with_extension("parquet"));
    let started = std::time::Instant::now();
    let (mut for_csv, mut for_parquet) = (df.clone(), df.clone());
    let (csv_written, parquet_written) = std::thread::scope(|s| {
        let csv_thread = s.spawn(|| store::write_atomic_with(&csv, |w| Ok(CsvWriter::new(w).finish(&mut for_csv)?)));
        let parquet_written = store::write_atomic_with(&parquet, |w| {
            let writer = ParquetWriter::new(w).with_compression(ParquetCompression::Lz4Raw);
            Ok(writer.finish(&mut for_parquet).map(|_| ())?)
        });
        (csv_thread.join(), parquet_written)
    });
    csv_written.map_err(|_| anyhow::anyhow!("writing {} panicked", csv.display()))??;
    parquet_written?;
    tracing::debug!("{}: {:.2} s", stem.display(), started.elapsed().as_secs_f64());
    Ok(vec![csv, parquet])
}

/// One table of the report: its heading, the title its files are named after
/// (`tables/table_<title>.csv`), what it shows, and the table.
pub struct Section {
    pub heading: String,
    pub title: String,
    /// Markdown (backticks only).
    pub caption: String,
    pub table: table::Table,
}

impl Section {
    fn new(heading: &str, title: &str, caption: &str, table: table::Table) -> Self {
        Section { heading: heading.into(), title: title.into(), caption: caption.into(), table }
    }
}

/// Everything a report shows, before it is written anywhere.
pub struct Rendered {
    pub markdown: String,
    /// Title, counts line, per-task tables (section title, table), failures.
    pub title: String,
    pub counts: String,
    pub tasks: Vec<Section>,
    pub failures: table::Table,
    pub summary: DataFrame,
    pub records: DataFrame,
    pub charts: Vec<charts::Chart>,
}

/// The value under `key`, inserted when missing (this runs several times for every record of
/// a million-record report, nearly always for a key already there). The key is copied only
/// when it is new: copying it on every call, to look it up once through `entry`, made the
/// 1M-record report 7 % slower (medians of 10 alternating runs, 3.75 s against 3.49 s).
fn entry<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// Adds `key` to `set`, copied only when it is new: [`entry`] for sets, for the same reason.
fn insert(set: &mut BTreeSet<String>, key: &str) {
    if !set.contains(key) {
        set.insert(key.to_owned());
    }
}

/// Everything a report needs from the records, gathered one record at a time: records are
/// read in chunks, each chunk gathered in parallel and the partials merged in file order, so a
/// million records never sit in memory as `Record`s.
#[derive(Default)]
pub struct Gathered {
    pub records: usize,
    pub ok: usize,
    /// Records replaced by a newer record of their job (`--retry-failed`), not counted.
    pub superseded: usize,
    /// The first record's suite name.
    pub suite: Option<String>,
    /// Task → the parameters swept in it.
    task_keys: BTreeMap<String, BTreeSet<String>>,
    frame: frame::FramePart,
    charts: charts::ChartData,
    lra: lra::LraSums,
    tslib: forecast::TslibSums,
    splits: splits::SplitSums,
    lengths: generalisation::LengthScores,
    failures: Vec<Vec<table::Cell>>,
    /// Configurations whose speed was measured on a busy machine, with why (at most
    /// [`MAX_BUSY_LINES`]) and how many there were.
    busy: (Vec<String>, usize),
    /// The earliest job start and the latest job end (RFC 3339).
    span: Option<(String, String)>,
    /// Task → configuration → the kernel paths its `ok` runs took.
    implementations: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// A configuration's text, rebuilt in place for each record.
    configuration: String,
}

const MAX_BUSY_LINES: usize = 20;

/// Why a record's speed figures are unreliable, if they are: more runnable tasks than cores
/// (other work competed) or CPU time stolen by the hypervisor.
fn busy_reason(r: &row::Row) -> Option<String> {
    let m = &r.measurements;
    let cores = m.cores? as f64;
    let load = m.load_avg_start.into_iter().chain(m.load_avg_end).fold(f64::NAN, f64::max);
    let mut why = Vec::new();
    if load > cores + 0.5 {
        why.push(format!("load average {load:.1} on {cores} cores"));
    }
    if let Some(steal) = m.cpu_steal.filter(|s| *s > 0.05) {
        why.push(format!("{:.0} % of CPU time stolen", 100.0 * steal));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

impl Gathered {
    pub fn add(&mut self, r: &row::Row) {
        self.records += 1;
        if r.status == crate::record::Status::Ok {
            self.ok += 1;
        } else {
            self.failures.push(table::failure_row(r));
        }
        if r.status == crate::record::Status::Ok {
            if let Some(why) = busy_reason(r) {
                self.busy.1 += 1;
                if self.busy.0.len() < MAX_BUSY_LINES {
                    self.busy.0.push(format!("{} / {} seed {} ({}): {why}", r.task_label, r.model, r.seed, r.job_id));
                }
            }
        }
        if self.suite.is_none() {
            self.suite = Some(r.suite.to_string());
        }
        let keys = entry(&mut self.task_keys, &r.task_label);
        for k in r.swept.iter().filter(|k| ***k != *"seed") {
            insert(keys, k);
        }
        self.frame.add(r);
        // The task's registry entry, looked up once per record for everything below.
        let task = crate::tasks::find(&r.task);
        self.charts.add(r, task);
        self.lra.add(r, task);
        self.tslib.add(r, task);
        self.splits.add(r);
        self.lengths.add(r);
        if !r.started_at.is_empty() && !r.finished_at.is_empty() {
            self.widen_span(&r.started_at, &r.finished_at);
        }
        if let Some(path) = r.measurements.implementation.as_deref().filter(|_| r.status == crate::record::Status::Ok) {
            splits::write_configuration(r, &mut self.configuration);
            insert(entry(entry(&mut self.implementations, &r.task_label), &self.configuration), path);
        }
    }

    /// Copies a time only when it widens the span (this runs for every record).
    fn widen_span(&mut self, start: &str, end: &str) {
        match &mut self.span {
            None => self.span = Some((start.to_string(), end.to_string())),
            Some((first, last)) => {
                if start < first.as_str() {
                    *first = start.to_string();
                }
                if end > last.as_str() {
                    *last = end.to_string();
                }
            }
        }
    }

    /// Adds what was gathered from the records that follow this one's in the file.
    pub fn merge(&mut self, later: Gathered) -> Result<()> {
        self.records += later.records;
        self.ok += later.ok;
        self.superseded += later.superseded;
        self.suite = self.suite.take().or(later.suite);
        for (task, keys) in later.task_keys {
            self.task_keys.entry(task).or_default().extend(keys);
        }
        self.frame.merge(later.frame)?;
        self.charts.merge(later.charts);
        self.lra.merge(later.lra);
        self.tslib.merge(later.tslib);
        self.splits.merge(later.splits);
        self.lengths.merge(later.lengths);
        self.failures.extend(later.failures);
        let room = MAX_BUSY_LINES.saturating_sub(self.busy.0.len());
        self.busy.0.extend(later.busy.0.into_iter().take(room));
        self.busy.1 += later.busy.1;
        if let Some((start, end)) = later.span {
            self.widen_span(&start, &end);
        }
        for (task, by_config) in later.implementations {
            let into = self.implementations.entry(task).or_default();
            for (config, paths) in by_config {
                into.entry(config).or_default().extend(paths);
            }
        }
        Ok(())
    }
}

/// Aggregates records into tables and the Markdown report (no I/O).
pub fn render(title: &str, records: &[Record]) -> Result<Rendered> {
    let mut gathered = Gathered::default();
    for r in records {
        row::with_row(r, |row| gathered.add(row));
    }
    render_gathered(title, gathered)
}

/// Tables, charts and the Markdown report from gathered records (no I/O).
pub fn render_gathered(title: &str, mut gathered: Gathered) -> Result<Rendered> {
    let (keys, records_df) = gathered.records_table()?;
    render_with_records(title, gathered, keys, records_df, None, None)
}

/// A run with fewer jobs recorded than its suite planned (interrupted, crashed, or still going):
/// its tables are not the whole suite.
struct Incomplete<'a> {
    planned: usize,
    run_dir: &'a Path,
}

impl Gathered {
    /// The records table (one row per record) and the swept parameters. Its columns are made
    /// contiguous once here: the summary, the CSV and the Parquet writer would each do it.
    fn records_table(&mut self) -> Result<(Vec<String>, DataFrame)> {
        let frame = std::mem::take(&mut self.frame);
        let keys = frame.keys();
        let mut df = frame.finish()?;
        df.rechunk_mut_par();
        Ok((keys, df))
    }
}

/// [`render_gathered`] with the records table already taken out of `gathered`.
fn render_with_records(
    title: &str,
    gathered: Gathered,
    keys: Vec<String>,
    records_df: DataFrame,
    incomplete: Option<Incomplete>,
    environment: Option<String>,
) -> Result<Rendered> {
    let started = std::time::Instant::now();
    let Gathered {
        records,
        ok,
        superseded,
        task_keys,
        charts,
        lra,
        tslib,
        splits,
        lengths,
        failures,
        busy,
        span,
        implementations,
        ..
    } = gathered;
    let summary = frame::summary_frame(&records_df, &keys)?;
    tracing::debug!("summary at {:.2} s", started.elapsed().as_secs_f64());
    let mut counts = format!("{records} jobs, {ok} ok, {} not ok.", records - ok);
    if superseded > 0 {
        counts += &format!(" {superseded} earlier records of jobs run again (`--retry-failed`) are not counted.");
    }
    if busy.1 > 0 {
        counts += &format!(" The speed of {} jobs was measured on a busy machine (see below).", busy.1);
    }
    // When and where: the jobs' span from the records, the commit and machine from env.json.
    let when = span.as_ref().and_then(|(start, end)| job_span(start, end));
    let origin: Vec<String> = when.into_iter().chain(environment).collect();
    if !origin.is_empty() {
        counts = format!("{} {counts}", origin.join("; ") + ".");
    }
    let mut md = format!("# seqbench report: {title}\n\n{counts}\n");
    if let Some(Incomplete { planned, run_dir }) = incomplete.filter(|i| records < i.planned) {
        // Said under the title, with the command that runs the rest.
        let note = format!(
            "Incomplete: {planned} jobs planned, {records} recorded, {} missing (the run was interrupted or is still \
             going); `seqbench run --resume {}` runs the rest.",
            planned - records,
            run_dir.display()
        );
        md += &format!("\n**{note}**\n");
        counts += &format!(" {note}");
    }
    let mut tasks = Vec::new();
    for (task, task_keys) in &task_keys {
        let task_keys: Vec<String> = task_keys.iter().cloned().collect();
        let table = table::task_table(&summary, task, &task_keys);
        tasks.push(Section::new(task, task, "Mean ± std over seeds of the runs that ended `ok`.", table));
    }
    if let Some(table) = lengths.table() {
        tasks.push(Section::new(
            "Length generalisation",
            "Length generalisation: accuracy % over the test lengths",
            "Per task and model, the accuracy averaged over every evaluated length (the `len=N` splits, beyond the training lengths for the formal-language tasks): mean ± std over the seeds that ended `ok`, and in brackets the maximum over seeds, which is what Delétang et al. (2023) report; the best maximum of each row in bold. Levels: R regular, DCF deterministic context-free, CS context-sensitive.",
            table,
        ));
    }
    for (task, table) in splits.tables() {
        tasks.push(Section::new(
            &format!("{task}: evaluation splits"),
            &format!("{task} splits"),
            "The task's further evaluation splits (e.g. `len=N`: the test distribution at another length), mean over seeds of the runs that ended `ok`. A task evaluated at more than 16 lengths shows 8 ranges of them (`len=A..=B`, the mean over the range); every length is in the chart and the records.",
            table,
        ));
    }
    if let Some(fc) = forecast::tslib_table(&tslib) {
        tasks.push(Section::new(
            "Forecasting (Time-Series-Library layout)",
            "Forecasting: test MSE / MAE",
            "Test MSE / MAE on scaled values over every test window, mean over seeds; the best of each row in bold.",
            fc.table,
        ));
    }
    if let Some(lra) = lra::lra_table(&lra) {
        tasks.push(Section::new(
            "Long Range Arena",
            "Long Range Arena: test accuracy %",
            "Test accuracy % (mean over seeds of the runs that ended `ok`), as the LRA paper lays it out; the best of each column in bold. Avg covers the tasks each model ran.",
            lra.table,
        ));
    }
    let all_keys: Vec<String> = keys.iter().filter(|k| k.as_str() != "seed").cloned().collect();
    let efficiency = table::efficiency_table(&summary, &all_keys);
    if !efficiency.rows.is_empty() {
        tasks.push(Section::new(
            "Efficiency",
            "Efficiency",
            "Mean ± std over seeds. Train FLOP/s = 3 × forward FLOPs/token × train tokens/s; MFU is its share of the matmul peak measured by `seqbench calibrate` (— when this machine is not calibrated).",
            efficiency,
        ));
    }
    if !implementations.is_empty() {
        let rows = implementations
            .into_iter()
            .flat_map(|(task, by_config)| {
                by_config.into_iter().map(move |(config, paths)| {
                    let paths: Vec<String> = paths.into_iter().collect();
                    vec![table::Cell::text(&task), table::Cell::text(config), table::Cell::text(paths.join(" | "))]
                })
            })
            .collect();
        let header = ["task", "configuration", "implementation"].map(String::from).to_vec();
        tasks.push(Section::new(
            "Implementations",
            "Implementations",
            "The kernel path each mixer took (the SDPA backend libtorch chose, cuDNN or the native RNN kernel, libtorch ops where there is no fused kernel); several, separated by `|`, when the runs of a configuration differed. Compare speeds only between the same paths.",
            table::Table { header, first_numeric: 3, rows },
        ));
    }
    for section in &tasks {
        md += &format!("\n## {}\n\n{}\n\n", section.heading, section.caption);
        md += &table::markdown(&section.table);
    }
    tracing::debug!("tables at {:.2} s", started.elapsed().as_secs_f64());
    let charts = charts.draw()?;
    tracing::debug!("charts at {:.2} s", started.elapsed().as_secs_f64());
    if !charts.is_empty() {
        md += "\n## Charts\n\n";
        for c in &charts {
            md += &format!("![{0}](charts/{0}.svg)\n\n", c.name);
        }
    }
    if busy.1 > 0 {
        md += &format!(
            "\n## Speed measured on a busy machine\n\n{} jobs trained while other work competed for the CPU; their \
             throughput (and memory, where pages were reclaimed) is not what the code alone gives. Rerun them \
             on a quiet machine to compare speeds.\n\n",
            busy.1
        );
        md += &busy.0.iter().map(|line| format!("- {line}\n")).collect::<String>();
        if busy.1 > busy.0.len() {
            md += &format!("- … and {} more\n", busy.1 - busy.0.len());
        }
    }
    md += "\n## Jobs not ok\n\n";
    let failures = table::failures_table(failures);
    if failures.rows.is_empty() {
        md += "All jobs ended `ok`.\n";
    } else {
        md += &table::markdown(&failures);
    }
    Ok(Rendered {
        markdown: md,
        title: title.to_string(),
        counts,
        tasks,
        failures,
        summary,
        records: records_df,
        charts,
    })
}

/// `Jobs ran 2026-12-03 06:17 to 06:40 (23m12s)`, in the records' own time zone.
fn job_span(start: &str, end: &str) -> Option<String> {
    let (a, b) = (chrono::DateTime::parse_from_rfc3339(start).ok()?, chrono::DateTime::parse_from_rfc3339(end).ok()?);
    let same_day = a.date_naive() == b.date_naive();
    let end_text = if same_day { b.format("%H:%M").to_string() } else { b.format("%Y-%m-%d %H:%M").to_string() };
    let took = crate::units::human_duration((b - a).num_milliseconds().max(0) as f64 / 1e3);
    Some(format!("Jobs ran {} to {end_text} ({took})", a.format("%Y-%m-%d %H:%M")))
}

/// `commit 2c79055, on vm (Intel Xeon, 2 cores, no GPU)` from the run's env.json.
fn environment_line(env_json: &Path) -> Option<String> {
    let env: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(env_json).ok()?).ok()?;
    let text = |k: &str| env.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    let gpus = env.get("gpus").and_then(|g| g.as_array()).map_or(0, Vec::len);
    let gpu_text = match gpus {
        0 => "no GPU".to_string(),
        1 => "1 GPU".to_string(),
        n => format!("{n} GPUs"),
    };
    let cores = env.get("cpu_cores").and_then(|c| c.as_u64()).unwrap_or(0);
    Some(format!(
        "seqbench commit {}, on {} ({}, {cores} cores, {gpu_text})",
        text("git_commit"),
        text("hostname"),
        text("cpu_model")
    ))
}

/// Reads a run's records and writes its report files. Returns the Markdown.
pub fn build(run: &RunDir) -> Result<Report> {
    let started = std::time::Instant::now();
    let (mut gathered, warnings) = Gathered::read(&run.records_path())?;
    tracing::info!("read {} records in {:.2} s", gathered.records, started.elapsed().as_secs_f64());
    let plan = run.plan();
    let suite = plan.name.or_else(|| gathered.suite.clone()).unwrap_or_default();
    let title = format!("{suite} / {}", run.run_id());
    let tables = run.path.join("tables");
    let (keys, records_df) = gathered.records_table()?;
    // The records table is the largest file (a row per job): it is written while the rest of
    // the report is made.
    let (rendered, records_files) = std::thread::scope(|s| {
        let records_files = s.spawn(|| write_frame(&tables.join("records"), &records_df));
        let incomplete = plan.jobs.map(|planned| Incomplete { planned, run_dir: &run.path });
        let environment = environment_line(&run.path.join(store::ENV));
        let rendered = render_with_records(&title, gathered, keys, records_df.clone(), incomplete, environment)
            .context("aggregating records")
            .and_then(|rendered| write_report(run, &rendered).map(|files| (rendered, files)));
        (rendered, records_files.join())
    });
    let (rendered, mut files) = rendered?;
    files.extend(records_files.map_err(|_| anyhow::anyhow!("writing the records table panicked"))??);
    tracing::info!("report written at {:.2} s", started.elapsed().as_secs_f64());
    Ok(Report { markdown: rendered.markdown, files, warnings })
}

/// Writes every report file but the records table; returns their paths.
fn write_report(run: &RunDir, rendered: &Rendered) -> Result<Vec<PathBuf>> {
    let attachments: Vec<(&str, String)> =
        [("Environment (env.json)", store::ENV), ("Suite (suite.resolved.yaml)", store::RESOLVED)]
            .into_iter()
            .filter_map(|(title, file)| std::fs::read_to_string(run.path.join(file)).ok().map(|t| (title, t)))
            .collect();
    let page = html::page(rendered, &attachments);
    let tables = run.path.join("tables");
    let mut files = Vec::new();
    let mut put = |path: PathBuf, bytes: &[u8]| -> Result<()> {
        write_atomic(&path, bytes)?;
        files.push(path);
        Ok(())
    };
    put(run.path.join("report.md"), rendered.markdown.as_bytes())?;
    put(run.path.join("report.html"), page.as_bytes())?;
    for chart in &rendered.charts {
        put(run.path.join("charts").join(format!("{}.svg", chart.name)), chart.svg.as_bytes())?;
        put(run.path.join("charts").join(format!("{}.png", chart.name)), &chart.png)?;
    }
    for Section { title, table: t, .. } in &rendered.tasks {
        let stem = format!("table_{}", charts::slug(title).trim_matches('_'));
        match table::table_frame(t) {
            Ok(df) => files.extend(write_frame(&tables.join(stem), &df)?),
            Err(e) => tracing::warn!("table `{title}` not written as CSV: {e}"),
        }
    }
    files.extend(write_frame(&tables.join("summary"), &rendered.summary)?);
    Ok(files)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The first record of the report fixture that the main crate's tests share
    /// (`tests/fixtures/report/records.jsonl` at the workspace root).
    pub(crate) fn fixture_record() -> Record {
        // CARGO_MANIFEST_DIR as cargo sets it for the test process, not as compiled in: cargo
        // reuses a workspace member's unchanged test binary from another checkout that shares
        // the target directory, and the compiled-in path would name that checkout.
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
        let path = format!("{root}/../../tests/fixtures/report/records.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(text.lines().next().expect("a record")).expect("the fixture's first record")
    }

    #[test]
    fn speed_measured_on_a_busy_machine_is_flagged() {
        let quiet = crate::report::tests::fixture_record();
        let mut busy = quiet.clone();
        busy.job_id = "busy1".into();
        busy.measurements.cores = Some(2);
        busy.measurements.load_avg_start = Some(1.1);
        busy.measurements.load_avg_end = Some(4.2);
        let mut calm = quiet.clone();
        calm.job_id = "calm1".into();
        calm.measurements.cores = Some(2);
        calm.measurements.load_avg_end = Some(2.0);
        let md = render("t", &[busy, calm]).unwrap().markdown;
        assert!(md.contains("## Speed measured on a busy machine"), "{md}");
        assert!(md.contains("(busy1): load average 4.2 on 2 cores"), "{md}");
        assert!(!md.contains("calm1"), "a load at the core count is not flagged: {md}");
        assert!(!render("t", &[quiet]).unwrap().markdown.contains("busy machine"));
    }

    #[test]
    fn implementations_list_each_configurations_kernel_paths_once() {
        let base = crate::report::tests::fixture_record();
        let with = |id: &str, model: &str, path: Option<&str>, status: crate::record::Status| {
            let mut r = base.clone();
            (r.job_id, r.model, r.status) = (id.into(), model.into(), status);
            r.measurements.implementation = path.map(str::to_string);
            r
        };
        use crate::record::Status::{Failed, Ok as Fine};
        let records = [
            with("a1", "lstm", Some("lstm: native"), Fine),
            with("a2", "lstm", Some("lstm: native"), Fine),
            with("a3", "lstm", Some("lstm: cudnn"), Fine),
            with("b1", "gru", Some("gru: native"), Fine),
            with("b2", "gru", Some("gru: ignored, not ok"), Failed),
            with("c1", "mamba", None, Fine),
        ];
        let rendered = render("t", &records).unwrap();
        let section = rendered.tasks.iter().find(|s| s.heading == "Implementations").expect("the section");
        let rows: Vec<Vec<String>> =
            section.table.rows.iter().map(|row| row.iter().map(|c| c.text.clone()).collect()).collect();
        // The fixture sweeps seq_len, so the configuration names it.
        let task = base.task_label.clone();
        assert_eq!(
            rows,
            [
                [task.clone(), "gru seq_len=32".into(), "gru: native".into()],
                [task, "lstm seq_len=32".into(), "lstm: cudnn | lstm: native".into()]
            ]
        );
    }
}
