//! The command line's definition (`seqbench --help`), and the commands that only read results
//! (`report`, `compare`, `completions`), which run without libtorch: the `seqbench` binary
//! handles those itself and hands every other command to `seqbench-torch`.
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
        after_help = "Exit status: 0 when every job ended ok, 3 when some did not, 2 for bad input, 130 when interrupted.\n\nExamples:\n  seqbench run suites/quick.yaml\n  seqbench run suites/quick.yaml --jobs 2 --out /tmp/results\n  seqbench run suites/recall-state.yaml --only model=rwkv7 --only model.d_model=64\n  seqbench run suites/quick.yaml --resume results/quick/20261123-201500\n  seqbench run --resume results/quick/20261123-201500"
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
        /// Run only the jobs with KEY=VALUE (repeatable): KEY is model, task, seed or a parameter
        /// as `plan` prints it (model.d_model, task.seq_len, train.lr; or just d_model). The same
        /// KEY again adds a value, another KEY narrows. The suite's other jobs stay planned:
        /// `--resume` on the run without --only runs them.
        #[arg(long, value_name = "KEY=VALUE")]
        only: Vec<String>,
        /// Under mpirun: workers sharing one GPU.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
        ranks_per_gpu: u64,
        /// Under mpirun: GPUs per node (default: as many as libtorch sees on each node).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
        gpus_per_node: Option<u64>,
    },
    /// Print the jobs a suite expands to (id, task, model, swept parameters, seed) and the count.
    Plan {
        suite: PathBuf,
        /// Only the jobs with KEY=VALUE (repeatable; as `run --only`).
        #[arg(long, value_name = "KEY=VALUE")]
        only: Vec<String>,
    },
    #[command(flatten)]
    Results(ResultsCommand),
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

/// The commands that only read results (no libtorch needed).
#[derive(Subcommand, Debug)]
pub enum ResultsCommand {
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
    /// Print a shell completion script, e.g. `seqbench completions bash >
    /// ~/.local/share/bash-completion/completions/seqbench` (or zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

impl ResultsCommand {
    pub fn run(self, verbose: u8) -> Result<ExitCode> {
        match self {
            ResultsCommand::Report { run_dir } => {
                init_tracing(verbose, "warn");
                let run = crate::store::RunDir::open(&run_dir)?;
                let report = crate::report::build(&run)?;
                for w in &report.warnings {
                    eprintln!("warning: {w}");
                }
                print!("{}", report.markdown);
                eprintln!("report: {}", run.path.join("report.md").display());
                Ok(ExitCode::SUCCESS)
            }
            ResultsCommand::Compare { base_run, new_run, threshold, match_by, fail_on_regression, metrics, out } => {
                init_tracing(verbose, "warn");
                let options = crate::report::compare::Options { threshold, match_by, fail_on_regression, metrics };
                crate::report::compare::command(&base_run, &new_run, &options, out.as_deref())
            }
            ResultsCommand::Completions { shell } => {
                use clap::CommandFactory;
                clap_complete::generate(shell, &mut Cli::command(), "seqbench", &mut std::io::stdout());
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// The parsed command line; Err(exit code) once clap has printed the help, the version or a
/// usage error.
pub fn parse() -> std::result::Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        let _ = e.print();
        ExitCode::from(if e.use_stderr() { 2 } else { 0 })
    })
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
        split: SplitName,
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

/// Which split of a task's data to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitName {
    Train,
    Val,
    Test,
}

pub fn init_tracing(verbose: u8, default: &str) {
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
