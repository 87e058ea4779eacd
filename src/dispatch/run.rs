//! `seqbench run` from a parsed command line to the report: the jobs to run (resume and
//! `--retry-failed` included), the checks before any starts, dispatch to the local pool or the
//! MPI workers, records, the report and the exit status. `cli.rs` only parses and calls this.
use crate::cli::{load_jobs, plan_text};
use crate::dispatch::{self, local::ChildExecutor, progress::Progress};
use crate::error::{InputError, EXIT_JOBS_FAILED};
use crate::job::Job;
use crate::store::{self, RunDir};
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Jobs beyond which `run` asks for `--yes`: a sweep typo should not launch a week of work.
pub const CONFIRM_JOBS: usize = 1000;

/// What `seqbench run` was asked for.
pub struct RunOptions {
    pub out: PathBuf,
    pub resume: Option<PathBuf>,
    pub retry_failed: bool,
    pub slots: usize,
    pub dry_run: bool,
    pub yes: bool,
    /// `--only`: the part of the suite to run.
    pub only: dispatch::select::Selection,
    /// No progress lines, no report on stdout.
    pub quiet: bool,
    /// A JSON summary on stdout instead of the report.
    pub json: bool,
}

/// `seqbench run`: expands the suite, skips what a resumed run recorded, dispatches the rest to
/// the local pool or the MPI workers, writes every record as it comes and the report at the end.
pub fn run_suite(
    suite_path: Option<&Path>,
    opts: &RunOptions,
    mpi: Option<&mut dispatch::mpi::Session>,
) -> Result<ExitCode> {
    let (suite_path, (suite, jobs)) = match suite_path {
        Some(path) => (path.to_path_buf(), load_jobs(path)?),
        None => resumed_suite(opts.resume.as_deref().expect("the CLI asks for a suite or --resume"))?,
    };
    let suite_path = suite_path.as_path();
    let (slots, dry_run) = (opts.slots, opts.dry_run);
    let run = match opts.resume.as_deref() {
        Some(dir) => {
            let run = RunDir::open(dir)?;
            if let Some(name) = run.suite_name() {
                if name != suite.name() {
                    return Err(InputError::new(format!(
                        "is a run of suite `{name}`, not of `{}` ({})",
                        suite.name(),
                        suite_path.display()
                    ))
                    .in_file(dir)
                    .into());
                }
            }
            Some(run)
        }
        None => None,
    };
    // Jobs recorded already; with --retry-failed, only those whose newest record is ok, and the
    // others' newest records are superseded when they run again.
    let (mut done, mut retried) = (HashSet::new(), HashMap::new());
    if let Some(r) = &run {
        let (records, warnings) = store::read_records(&r.records_path())?;
        for w in warnings {
            eprintln!("warning: {w} (its job runs again)");
        }
        warn_if_suite_changed(r, &jobs);
        for record in records {
            if opts.retry_failed && record.status != crate::record::Status::Ok {
                done.remove(&record.job_id);
                retried.insert(record.job_id, record.finished_at);
            } else {
                retried.remove(&record.job_id);
                done.insert(record.job_id);
            }
        }
    }
    let total = jobs.len();
    // `--only` picks among all the suite's jobs (a typo is caught before anything starts); the
    // run keeps the whole suite as planned, so a later `--resume` runs the rest.
    opts.only.check(&jobs).map_err(|e| e.in_file(suite_path))?;
    let (selected, left_out): (Vec<&Job>, Vec<&Job>) = jobs.iter().partition(|j| opts.only.admits(j));
    let left_out = left_out.len();
    let todo: Vec<Job> = selected.into_iter().filter(|j| !done.contains(&j.job_id)).cloned().collect();
    let recorded = jobs.iter().filter(|j| done.contains(&j.job_id)).count();
    if dry_run {
        print!("{}", plan_text(&todo));
        if recorded > 0 {
            println!("({recorded} of {total} jobs already have records)");
        }
        if left_out > 0 {
            println!("({left_out} of {total} jobs left out by --only)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if mpi.is_none() {
        check_devices(&todo, tch::Cuda::device_count().max(0) as usize).map_err(|e| e.in_file(suite_path))?;
    }
    if todo.len() > CONFIRM_JOBS && !opts.yes {
        return Err(InputError::new(format!(
            "expands to {} jobs to run (more than {CONFIRM_JOBS}); check the sweeps with `seqbench plan`, then pass --yes",
            todo.len()
        ))
        .in_file(suite_path)
        .into());
    }
    let run = match run {
        Some(r) => r,
        None => RunDir::create(&opts.out, suite.name())?,
    };
    if let Err(e) = store::check_free_space(&run.path) {
        if opts.resume.is_none() {
            let _ = std::fs::remove_dir(&run.path);
        }
        return Err(e);
    }
    let _lock = run.lock()?;
    write_run_files(&run, &suite, &jobs)?;
    if opts.resume.is_none() {
        store::point_latest_at(&run);
    }
    let mut writer = run.record_writer()?;
    retried.retain(|job_id, _| todo.iter().any(|j| &j.job_id == job_id));
    if !retried.is_empty() {
        eprintln!("seqbench: retrying {} jobs whose newest record is not ok", retried.len());
    }
    writer.supersede(retried);
    let cores = crate::env_info::cpu_cores();
    if mpi.is_none() {
        warn_if_oversubscribed(&todo, slots, cores);
    }
    let at_once = match &mpi {
        Some(session) => format!("on {} MPI workers", session.size() - 1),
        None => format!("{slots} at a time"),
    };
    if !opts.quiet {
        let left_out = if left_out > 0 { format!(", {left_out} left out by --only") } else { String::new() };
        eprintln!(
            "seqbench: {} jobs to run ({recorded} already recorded{left_out}), {at_once} → {}",
            todo.len(),
            run.path.display()
        );
    }
    let slots_now = mpi.as_ref().map_or(slots, |session| (session.size() as usize).saturating_sub(1));
    let mut progress = if opts.quiet {
        Progress::quiet(todo.len())
    } else {
        Progress::new(&todo, slots_now, Some(run.path.join("logs")))
    };
    let (outcome, abort_mpi) = match mpi {
        Some(session) => {
            let coordinated =
                dispatch::mpi::coordinate(session, todo, &run.path, &run.run_id(), |r| writer.append(r), &mut progress);
            // Workers may be mid-job and MPI_Finalize would wait on them: an error ends the job.
            let (outcome, lost) = match coordinated {
                Ok(result) => result,
                Err(e) => {
                    eprintln!("Error: {e:#}\nEnding the MPI run (records so far are on disk; --resume runs the rest).");
                    session.abort(1)
                }
            };
            // Workers that hung, or are still running after an interrupt, cannot finalize.
            let must_abort = lost > 0 || outcome.interrupted;
            (outcome, must_abort.then_some(session))
        }
        None => {
            let executor = Arc::new(ChildExecutor {
                exe: std::env::current_exe().context("locating the seqbench binary")?,
                run_dir: run.path.clone(),
                run_id: run.run_id(),
                env: Vec::new(),
            });
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let on_record = |r: &crate::record::Record| writer.append(r);
            let outcome = runtime.block_on(dispatch::run_jobs(
                todo,
                executor,
                slots,
                cores,
                on_record,
                &mut progress,
                std::future::pending(),
            ));
            // After Ctrl-C an inline job's thread may still be running: do not wait for it.
            runtime.shutdown_background();
            (outcome?, None)
        }
    };

    progress.finish();
    let report = match (crate::report::build(&run), &abort_mpi) {
        (Ok(report), _) => report,
        (Err(e), Some(session)) => {
            eprintln!("Error: building the report: {e:#}");
            session.abort(1)
        }
        (Err(e), None) => return Err(e),
    };
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if opts.json {
        let summary = serde_json::json!({
            "run_dir": run.path,
            "report": run.path.join("report.md"),
            "finished": outcome.finished,
            "not_ok": outcome.not_ok,
            "interrupted": outcome.interrupted,
        });
        println!("{summary}");
    } else if !opts.quiet {
        println!("{}", report.markdown);
    }
    eprintln!("report: {}", run.path.join("report.md").display());
    if let Some(session) = abort_mpi {
        let why = if outcome.interrupted {
            "interrupted"
        } else {
            "MPI workers stopped answering (their jobs are recorded as failed)"
        };
        eprintln!(
            "{why}: ending the MPI run with MPI_Abort, since busy or hung ranks cannot finalize. Resume with:\n  mpirun … seqbench run {} --resume {}",
            suite_path.display(),
            run.path.display()
        );
        session.abort(if outcome.interrupted { 130 } else { i32::from(EXIT_JOBS_FAILED) });
    }
    if outcome.interrupted {
        eprintln!(
            "interrupted: {} jobs finished. Resume with:\n  seqbench run {} --resume {}",
            outcome.finished,
            suite_path.display(),
            run.path.display()
        );
        return Ok(ExitCode::from(130));
    }
    if outcome.not_ok > 0 {
        eprintln!("{} of {} jobs did not end ok (see the report's \"Jobs not ok\")", outcome.not_ok, outcome.finished);
        return Ok(ExitCode::from(EXIT_JOBS_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// `run --resume DIR` without a suite: the suite as the run recorded it, presets inlined.
fn resumed_suite(dir: &Path) -> Result<(PathBuf, (crate::suite::Suite, Vec<Job>))> {
    let run = RunDir::open(dir)?;
    let (source, text) = run.resolved_suite().ok_or_else(|| {
        InputError::new(format!("has no readable {}; pass the suite file as well", store::RESOLVED)).in_file(dir)
    })?;
    let suite = crate::suite::load_str(&text, &source)?;
    let jobs = crate::suite::expand(&suite)?;
    Ok((source, (suite, jobs)))
}

/// A local run's jobs that ask for a CUDA device this machine does not have would each fail after
/// loading their data: refuse the run before any starts (under MPI the workers' nodes decide).
fn check_devices(jobs: &[Job], cuda_devices: usize) -> std::result::Result<(), InputError> {
    for job in jobs {
        if let Ok(crate::job::DeviceRequest::Cuda(index)) = crate::job::DeviceRequest::parse(&job.train.device) {
            if index >= cuda_devices {
                let seen = match cuda_devices {
                    0 => "libtorch sees no CUDA device here".to_string(),
                    n => format!("libtorch sees {n} CUDA device(s), cuda:0 to cuda:{}", n - 1),
                };
                return Err(InputError::new(format!(
                    "`device: {}` (task {}, model {}): {seen}; use `device: auto` (CUDA when available, else CPU) or `cpu`",
                    job.train.device, job.task.label, job.model.label
                )));
            }
        }
    }
    Ok(())
}

/// More busy threads than cores (a suite's `threads` × `--jobs`) makes every job slower and its
/// timings erratic: measured with two 2-thread transformer jobs on 2 cores, 3.6× the training
/// time and a p10 throughput 10× below the median. Say so before the run starts.
fn warn_if_oversubscribed(jobs: &[Job], slots: usize, cores: usize) {
    let widest = jobs.iter().map(|j| j.train.threads as usize).max().unwrap_or(0);
    let busy = widest * slots.min(jobs.len());
    if widest > 0 && busy > cores {
        eprintln!(
            "warning: threads: {widest} × --jobs {} = {busy} busy threads on {cores} cores; throughput figures will be \
             low and noisy (see involuntary_switches in the records). Use threads: 0 (cores / --jobs) or fewer jobs.",
            slots.min(jobs.len())
        );
    }
}

/// A resumed run whose suite was edited mixes configurations: say so.
fn warn_if_suite_changed(run: &RunDir, jobs: &[Job]) {
    let Some(before) = run.resolved_job_ids() else { return };
    let now: HashSet<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    let added = now.iter().filter(|id| !before.contains(**id)).count();
    let removed = before.iter().filter(|id| !now.contains(id.as_str())).count();
    if added + removed > 0 {
        eprintln!(
            "warning: the suite changed since this run started: {added} new jobs, {removed} jobs no longer in it (their records stay in the report)"
        );
    }
}

/// `suite.resolved.yaml` (suite with presets inlined + every job) and `env.json`, written
/// before any job starts. A resumed run keeps its first env.json and adds a dated one.
fn write_run_files(run: &RunDir, suite: &crate::suite::Suite, jobs: &[Job]) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Resolved<'a> {
        source: String,
        suite: crate::suite::SuiteFile,
        jobs: &'a [Job],
    }
    let resolved = Resolved { source: suite.path.display().to_string(), suite: suite.resolved_file(), jobs };
    store::write_atomic(&run.path.join(store::RESOLVED), serde_yaml::to_string(&resolved)?.as_bytes())?;
    let env = serde_json::to_string_pretty(&crate::env_info::EnvInfo::collect())?;
    let env_path = run.path.join(store::ENV);
    let env_path = if env_path.exists() {
        run.path.join(format!("env.{}.json", chrono::Local::now().format("%Y%m%d-%H%M%S")))
    } else {
        env_path
    };
    store::write_atomic(&env_path, env.as_bytes())?;
    Ok(())
}
