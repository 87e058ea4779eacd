//! Command line: `run`, `plan`, `report`, `models`, and the hidden `exec-job`.
use crate::dispatch::{self, run::RunOptions};
use crate::error::InputError;
use crate::job::Job;
use anyhow::Result;
pub use seqbench_core::cli::{init_tracing, Cli, Command, DataAction};
use std::path::Path;
use std::process::ExitCode;

pub fn main() -> Result<ExitCode> {
    let cli = match seqbench_core::cli::parse() {
        Ok(cli) => cli,
        Err(code) => return Ok(code),
    };
    match cli.command {
        Command::ExecJob => {
            init_tracing(cli.verbose, "info");
            crate::runner::exec_job_stdio()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { suite, out, resume, retry_failed, jobs, dry_run, yes, only, ranks_per_gpu, gpus_per_node } => {
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
                only: dispatch::select::Selection::parse(&only)?,
                quiet: cli.quiet,
                json: cli.json,
            };
            dispatch::run::run_suite(suite.as_deref(), &opts, mpi.as_mut())
        }
        Command::Plan { suite, only } => {
            let (_, mut jobs) = load_jobs(&suite)?;
            let only = dispatch::select::Selection::parse(&only)?;
            only.check(&jobs).map_err(|e| e.in_file(&suite))?;
            jobs.retain(|j| only.admits(j));
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&plan_json(&jobs))?);
                return Ok(ExitCode::SUCCESS);
            }
            print!("{}", plan_text(&jobs));
            Ok(ExitCode::SUCCESS)
        }
        Command::Results(command) => command.run(cli.verbose),
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
    }
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
