//! Command line: `run`, `plan`, `report`, `models`, and the hidden `exec-job`.
use crate::dispatch::{self, run::RunOptions};
use crate::error::InputError;
use crate::job::Job;
use crate::store::RunDir;
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "seqbench",
    version,
    about = "Benchmark sequence architectures: accuracy, throughput, memory and FLOPs side by side",
    after_help = "Examples:\n  seqbench plan suites/quick.yaml\n  seqbench run suites/quick.yaml --jobs 2\n  seqbench run suites/quick.yaml --resume results/quick/20261123-201500\n  seqbench report results/quick/20261123-201500\n  seqbench compare results/quick/BASE results/quick/NEW --fail-on-regression\n  seqbench models"
)]
pub struct Cli {
    /// More log output (repeat for debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and warnings on stderr: no progress lines (and `run` prints no report).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Machine-readable output on stdout (JSON) for `plan`, `models` and `run` (its summary).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a suite: expand it into jobs, run each in its own process, write records and report.
    #[command(
        after_help = "Exit status: 0 when every job ended ok, 3 when some did not, 2 for bad input, 130 when interrupted.\n\nExamples:\n  seqbench run suites/quick.yaml\n  seqbench run suites/quick.yaml --jobs 2 --out /tmp/results\n  seqbench run suites/quick.yaml --resume results/quick/20261123-201500\n  seqbench run --resume results/quick/20261123-201500"
    )]
    Run {
        /// The suite file (YAML); with --resume it may be left out (the run's own copy is used).
        #[arg(required_unless_present = "resume")]
        suite: Option<PathBuf>,
        /// Results root; the run goes to OUT/<suite name>/<run id>/.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Continue a run: run only the jobs that have no record in RUN_DIR yet.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
        /// With --resume: also re-run the jobs whose newest record is not ok (failed, crashed,
        /// timeout, …). The old record stays in the file; reports and compare count the newest.
        #[arg(long, requires = "resume")]
        retry_failed: bool,
        /// Jobs run concurrently (each gets cores/N libtorch threads unless the suite sets threads).
        #[arg(long, short = 'j', default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
        jobs: u64,
        /// Print the jobs that would run, and run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run even when the suite expands to more than 1,000 jobs.
        #[arg(long)]
        yes: bool,
        /// Under mpirun: workers sharing one GPU.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
        ranks_per_gpu: u64,
        /// Under mpirun: GPUs per node (default: as many as libtorch sees on each node).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
        gpus_per_node: Option<u64>,
    },
    /// Print the jobs a suite expands to (id, task, model, swept parameters, seed) and the count.
    Plan { suite: PathBuf },
    /// (Re)build the report of a run directory.
    Report { run_dir: PathBuf },
    /// Compare two runs: per configuration and metric, base, new and change; flags regressions
    /// beyond the noise. Writes compare.md and compare.html.
    #[command(
        after_help = "A metric regresses when it got worse by more than the threshold and by more than twice the\nstandard error of the difference (from the seeds).\n\nExit status: 0, or 4 with --fail-on-regression when something regressed.\n\nExample:\n  seqbench compare results/quick/20261122-020000 results/quick/20261123-020000 --fail-on-regression"
    )]
    Compare {
        base_run: PathBuf,
        new_run: PathBuf,
        /// Smallest relative change, in percent, that counts as a change. CPU throughput on a
        /// shared machine varies by several percent from run to run.
        #[arg(long, default_value_t = 10.0)]
        threshold: f64,
        /// How configurations of the two runs are joined: `config` (every resolved parameter) or
        /// `labels` (task and model names and the swept values: runs of one suite whose other
        /// parameters resolved differently, e.g. across seqbench versions).
        #[arg(long = "match", value_enum, default_value = "config")]
        match_by: crate::report::compare::MatchBy,
        /// Exit with status 4 when any metric regressed (for nightly CI).
        #[arg(long)]
        fail_on_regression: bool,
        /// Compare only these metrics (comma-separated keys, e.g. accuracy,eval_loss).
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<String>,
        /// Where compare.md and compare.html go (default: NEW_RUN).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Task data: export what a suite's tasks (or one task) generate; validate ListOps files.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
    /// Measure this machine's matmul peak (fp32 on CPU at each thread count; fp32 and bf16 on
    /// CUDA) and cache it, so that records carry MFU. Run once per machine (a few seconds).
    Calibrate {
        /// cpu, cuda, cuda:N or auto.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Matrix side (default 1024 on CPU, 8192 on CUDA).
        #[arg(long)]
        n: Option<i64>,
    },
    /// Print a shell completion script, e.g. `seqbench completions bash >
    /// ~/.local/share/bash-completion/completions/seqbench` (or zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// List the registered models (with parameter counts at one size), the presets in
    /// configs/models/, and the tasks.
    Models {
        /// Width at which parameter counts and FLOPs are shown (2 layers, vocabulary 128,
        /// sequence length 64, every other setting at its default).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(i64).range(2..=65536))]
        d_model: i64,
    },
    /// Internal: run one job read from stdin (JSON), write its output on stdout (JSON).
    #[command(hide = true)]
    ExecJob,
}

fn init_tracing(verbose: u8, default: &str) {
    use std::io::IsTerminal;
    let level = match verbose {
        0 => default,
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

pub fn main() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Ok(ExitCode::from(if e.use_stderr() { 2 } else { 0 }));
        }
    };
    match cli.command {
        Command::ExecJob => {
            init_tracing(cli.verbose, "info");
            crate::runner::exec_job_stdio()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { suite, out, resume, retry_failed, jobs, dry_run, yes, ranks_per_gpu, gpus_per_node } => {
            init_tracing(cli.verbose, "warn");
            crate::runner::keep_malloc()?;
            let mut mpi = dispatch::mpi::Session::start()?;
            if let Some(session) = mpi.as_mut().filter(|s| s.rank() != 0) {
                let layout = dispatch::mpi::Layout {
                    ranks_per_gpu: ranks_per_gpu as usize,
                    gpus_per_node: gpus_per_node.unwrap_or(0) as usize,
                };
                if let Err(e) = dispatch::mpi::serve(session, layout) {
                    // Rank 0 would wait for this rank forever: end the whole MPI job.
                    eprintln!("Error: MPI worker rank {}: {e:#}", session.rank());
                    session.abort(1);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let opts = RunOptions {
                out,
                resume,
                retry_failed,
                slots: jobs as usize,
                dry_run,
                yes,
                quiet: cli.quiet,
                json: cli.json,
            };
            dispatch::run::run_suite(suite.as_deref(), &opts, mpi.as_mut())
        }
        Command::Plan { suite } => {
            let (_, jobs) = load_jobs(&suite)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&plan_json(&jobs))?);
                return Ok(ExitCode::SUCCESS);
            }
            print!("{}", plan_text(&jobs));
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { run_dir } => {
            init_tracing(cli.verbose, "warn");
            let run = RunDir::open(&run_dir)?;
            let report = crate::report::build(&run)?;
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", report.markdown);
            eprintln!("report: {}", run.path.join("report.md").display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare { base_run, new_run, threshold, match_by, fail_on_regression, metrics, out } => {
            init_tracing(cli.verbose, "warn");
            let options = crate::report::compare::Options { threshold, match_by, fail_on_regression, metrics };
            crate::report::compare::command(&base_run, &new_run, &options, out.as_deref())
        }
        Command::Data { action } => data_command(action),
        Command::Calibrate { device, n } => {
            init_tracing(cli.verbose, "warn");
            for line in crate::calibrate::run(&device, n)? {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Models { d_model } => {
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&models_json(d_model))?);
                return Ok(ExitCode::SUCCESS);
            }
            print!("{}", models_text(d_model));
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "seqbench", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum DataAction {
    /// Write task data. With a suite file: the train and test data of every task entry (first
    /// seed) as CSV under the directory OUT, one row per example, `inputs` and `targets` as
    /// space-separated token ids (−100: no target). With a task name: one split to the file
    /// OUT — LRA TSV for listops, CSV otherwise, or with `--png N` the first N images of
    /// pathfinder/pathx as PNG files (plus labels.csv) in the directory OUT.
    #[command(after_help = "Examples:
  seqbench data export suites/quick.yaml --out data-export
  seqbench data export listops --param max_length=256 --param min_length=64 --split test --out listops.tsv
  seqbench data export pathfinder --split train --png 16 --out pathfinder-png")]
    Export {
        /// A suite file (YAML) or a task name (see `seqbench models`).
        source: String,
        /// Task parameter KEY=VALUE (task mode; repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Which split (task mode).
        #[arg(long, value_enum, default_value = "train")]
        split: crate::tasks::export::SplitName,
        /// Write the first N images as PNG (pathfinder, pathx).
        #[arg(long, value_name = "N")]
        png: Option<usize>,
        /// Output directory (suite mode, or --png) or file (task mode).
        #[arg(long, default_value = "data-export")]
        out: PathBuf,
    },
    /// Recompute every label of an LRA-format (or SPINN) ListOps TSV file with the evaluator;
    /// exit status 1 when any label disagrees.
    Validate {
        /// Only `listops` can be validated.
        #[arg(value_parser = ["listops"])]
        task: String,
        file: PathBuf,
    },
}

fn data_command(action: DataAction) -> Result<ExitCode> {
    match action {
        DataAction::Export { source, params, split, png, out } => {
            let is_suite = source.ends_with(".yaml") || source.ends_with(".yml") || Path::new(&source).is_file();
            let written = if is_suite {
                if !params.is_empty() || png.is_some() {
                    return Err(InputError::new("--param and --png apply to a task name, not a suite file").into());
                }
                let (_, jobs) = load_jobs(Path::new(&source))?;
                crate::tasks::export::export(&jobs, &out)?
            } else {
                crate::tasks::export::export_task(&source, &params, split, &out, png)?
            };
            for path in written {
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        DataAction::Validate { task: _, file } => {
            let (rows, mismatches, first) = crate::tasks::export::validate_listops(&file)?;
            println!("{}: {rows} rows, {mismatches} label mismatches", file.display());
            for line in &first {
                println!("  {line}");
            }
            Ok(if mismatches == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

pub(crate) fn load_jobs(path: &Path) -> Result<(crate::suite::Suite, Vec<Job>)> {
    let suite = crate::suite::load(path)?;
    let jobs = crate::suite::expand(&suite)?;
    Ok((suite, jobs))
}

/// One line per job: id, task, model, seed and the swept parameter values.
pub fn plan_text(jobs: &[Job]) -> String {
    let mut out = String::new();
    for job in jobs {
        let params = job.flat_params();
        let swept: Vec<String> = job
            .swept
            .iter()
            .map(|k| format!("{k}={}", params.get(k).map(crate::report::frame::param_text).unwrap_or_default()))
            .collect();
        out += &format!(
            "{}  {:<12} {:<14} seed={:<3} steps={} batch={} {}\n",
            job.job_id,
            job.task.label,
            job.model.label,
            job.seed,
            job.train.steps.map_or_else(|| format!("{} epochs", job.train.epochs.unwrap_or(0.0)), |s| s.to_string()),
            job.train.batch_size,
            swept.join(" ")
        );
    }
    out += &format!("{} jobs\n", jobs.len());
    out
}

/// `plan --json`: one object per job (id, task, model, seed, swept values, steps, batch).
fn plan_json(jobs: &[Job]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = jobs
        .iter()
        .map(|job| {
            let params = job.flat_params();
            let swept: serde_json::Map<String, serde_json::Value> =
                job.swept.iter().map(|k| (k.clone(), params.get(k).cloned().unwrap_or_default())).collect();
            serde_json::json!({
                "job_id": job.job_id,
                "task": job.task.label,
                "model": job.model.label,
                "arch": job.model.kind,
                "seed": job.seed,
                "swept": swept,
                "steps": job.train.steps,
                "epochs": job.train.epochs,
                "batch_size": job.train.batch_size,
            })
        })
        .collect();
    serde_json::json!({ "jobs": rows, "count": jobs.len() })
}

/// `models --json`: the architectures (with their size at `d_model`), presets and tasks.
fn models_json(d_model: i64) -> serde_json::Value {
    let io = crate::models::TaskIo::per_token(128, 128, 64, true);
    let archs: Vec<serde_json::Value> = crate::models::registry()
        .iter()
        .map(|a| {
            let size = model_size(a, d_model, &io).ok();
            serde_json::json!({
                "arch": a.name,
                "description": a.description,
                "params": size.map(|s| s.0),
                "flops_per_token": size.map(|s| s.1),
            })
        })
        .collect();
    let presets: Vec<serde_json::Value> = presets(Path::new("configs/models"))
        .into_iter()
        .map(|(name, arch, description)| serde_json::json!({"name": name, "arch": arch, "description": description}))
        .collect();
    let tasks: Vec<serde_json::Value> = crate::tasks::registry()
        .iter()
        .map(|t| serde_json::json!({"task": t.name, "description": t.description}))
        .collect();
    serde_json::json!({ "d_model": d_model, "archs": archs, "presets": presets, "tasks": tasks })
}

fn models_text(d_model: i64) -> String {
    let io = crate::models::TaskIo::per_token(128, 128, 64, true);
    let mut out = format!(
        "Models (arch), sized at d_model {d_model}, 2 layers, vocabulary 128, length 64:\n  {:<15} {:>10} {:>12}  description\n",
        "arch", "params", "FLOPs/tok"
    );
    for a in crate::models::registry() {
        let (params, flops) = match model_size(a, d_model, &io) {
            Ok((p, f)) => (p.to_string(), format!("{f:.3e}")),
            Err(_) => ("—".into(), "—".into()),
        };
        out += &format!("  {:<15} {params:>10} {flops:>12}  {}\n", a.name, a.description);
    }
    out += "\nPresets (use as `preset: NAME` in a suite; configs/models/NAME.yaml beside the suite or in the\nworking directory replaces the built-in one):\n";
    for (name, arch, description) in presets(Path::new("configs/models")) {
        out += &format!("  {name:<20} {arch:<15} {description}\n");
    }
    out += "\nTasks:\n";
    for t in crate::tasks::registry() {
        out += &format!("  {:<17} {}\n", t.name, t.description);
    }
    out
}

/// Parameter count and forward FLOPs/token of `arch` with default settings at `d_model`.
fn model_size(arch: &crate::models::ArchInfo, d_model: i64, io: &crate::models::TaskIo) -> Result<(i64, f64)> {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let mut params = crate::params::ParamMap::new();
    params.insert("d_model".into(), serde_yaml::Value::from(d_model));
    let resolved = (arch.resolve)(&params, io).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let model = (arch.build)(&vs.root(), &resolved, io)?;
    let n: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    Ok((n, model.flops_per_token(io.seq_len)))
}

/// (name, arch, description) of the built-in presets and of each preset file in `dir` (which
/// replaces a built-in one of its name), sorted by name.
fn presets(dir: &Path) -> Vec<(String, String, String)> {
    let describe = |name: String, text: &str| {
        let yaml: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
        let field = |k: &str| yaml.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        Some((name, field("arch"), field("description")))
    };
    let mut found: std::collections::BTreeMap<String, (String, String, String)> = crate::suite::BUNDLED_PRESETS
        .iter()
        .filter_map(|(name, text)| describe(name.to_string(), text))
        .map(|p| (p.0.clone(), p))
        .collect();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(name) = path.file_stem().and_then(|n| n.to_str()) else { continue };
        if let Some(p) = std::fs::read_to_string(&path).ok().and_then(|text| describe(name.to_string(), &text)) {
            found.insert(p.0.clone(), p);
        }
    }
    found.into_values().collect()
}
