//! The job process: `seqbench exec-job` reads a job (JSON) on stdin, trains and measures, and
//! writes one [`JobOutput`](crate::record::JobOutput) (JSON) on stdout. Running each job in its
//! own process means a panic, abort, OOM kill or hang costs that job only.
mod counters;
pub mod cuda_memory;
pub mod denormal;
mod forecast;
mod lm_eval;
pub mod measure;
pub mod optim;
pub mod precision;
mod train;
pub mod weights;

use crate::job::Job;
use crate::record::JobOutput;
use anyhow::{Context, Result};
use std::io::{Read, Write};

/// Environment variable through which the coordinator passes the intra-op thread count.
pub const THREADS_ENV: &str = "SEQBENCH_THREADS";

/// Entry point of `seqbench exec-job`.
pub fn exec_job_stdio() -> Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("reading the job from stdin")?;
    let job: Job = serde_json::from_str(&input).context("stdin is not a seqbench job (JSON)")?;
    let threads = std::env::var(THREADS_ENV).ok().and_then(|t| t.parse().ok()).unwrap_or(job.train.threads);
    let run_dir = std::env::var_os(weights::RUN_DIR_ENV).map(std::path::PathBuf::from);
    let output = run_job(&job, threads, run_dir.as_deref())?;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &output)?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

/// Caps this process's data segment and anonymous mappings (where tensors live).
fn limit_memory(bytes: u64) -> Result<()> {
    let limit = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
    // SAFETY: setrlimit reads a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) } != 0 {
        anyhow::bail!("could not set max_memory ({bytes} bytes): {}", std::io::Error::last_os_error());
    }
    tracing::info!("max_memory: RLIMIT_DATA = {bytes} bytes");
    Ok(())
}

/// Environment variable choosing the job processes' malloc settings: `keep` (see
/// [`malloc_settings`]) or `default` (glibc's, the default).
pub const MALLOC_ENV: &str = "SEQBENCH_MALLOC";

/// glibc gives every freed block above its mmap threshold (at most 32 MiB) back to the kernel
/// and trims the heap's top, so a model with large activations faults its memory back in on
/// every step. A 30-step Mamba job at 16×256×d128 took 20 million page faults; with
/// SEQBENCH_MALLOC=keep (freed memory kept for reuse, as caching allocators and PyTorch's advice
/// to use jemalloc or tcmalloc on CPU do) it took 0.6 million and trained 2.7× faster, but its
/// peak resident set grew from 1.5 to 2.5 GiB (heap fragmentation), which would distort memory
/// comparisons. So glibc's defaults stay unless asked: what a plain PyTorch user gets. Returns
/// what the record's `allocator` says. Limits: glibc still maps blocks over 64 MiB requested
/// from a thread's own arena (libtorch's intra-op threads) directly, so those are still given
/// back when freed; and the 64 MiB top pad means an allocation within 64 MiB of `max_memory`
/// can fail a little early.
fn malloc_settings() -> Result<&'static str> {
    if !keep_malloc()? {
        return Ok("glibc defaults");
    }
    // SAFETY: mallopt only changes allocator parameters; called before any large allocation.
    let set = unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
            && libc::mallopt(libc::M_TOP_PAD, 64 << 20) == 1
    };
    anyhow::ensure!(set, "{MALLOC_ENV}=keep: glibc's mallopt refused the settings");
    Ok("glibc, freed memory kept (M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB, M_TOP_PAD=64 MiB)")
}

/// Whether SEQBENCH_MALLOC asks job processes to keep freed memory; `seqbench run` checks it
/// before any job starts, so a typo is one clear error rather than every job failing.
pub fn keep_malloc() -> Result<bool, crate::error::InputError> {
    let value = std::env::var_os(MALLOC_ENV);
    match value.as_deref().map(|v| v.to_str()) {
        None | Some(Some("default")) => Ok(false),
        Some(Some("keep")) => Ok(true),
        // Anything else, text or not (shown as the OS gave it).
        Some(_) => Err(crate::error::InputError::new(format!(
            "environment variable {MALLOC_ENV}={:?}: expected `keep` or `default`",
            value.unwrap_or_default()
        ))),
    }
}

/// Runs one job in its own job process (`seqbench exec-job`): the memory limit and the
/// allocator settings apply to the whole process. `threads` = 0 leaves libtorch's default.
pub fn run_job(job: &Job, threads: u64, run_dir: Option<&std::path::Path>) -> Result<JobOutput> {
    let allocator = malloc_settings()?;
    if let Some(limit) = &job.train.max_memory {
        let bytes = limit.bytes().map_err(anyhow::Error::msg)?;
        limit_memory(bytes)?;
    }
    let mut output = run_job_inline(job, threads, run_dir)?;
    output.measurements.allocator = Some(allocator.to_string());
    Ok(output)
}

/// A Python layer that raises mid-job unwinds with [`LayerRaised`](crate::models::python::LayerRaised)
/// after printing its traceback; the default hook's "panicked at" would only add noise to the
/// job log, so it is left out for those (and kept for every other panic).
fn quiet_panics_for_layer_errors() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<crate::models::python::LayerRaised>() {
                default(info);
            }
        }));
    });
}

/// What every job gets before its data is built: its device, the seed set, and the process's
/// resident memory at that point (the job's own memory is measured from it).
pub struct JobStart {
    pub device: tch::Device,
    pub baseline_rss: Option<u64>,
}

impl JobStart {
    fn new(job: &Job) -> Result<JobStart> {
        let device = measure::select_device(&job.train.device)?;
        let baseline_rss = measure::proc_status_bytes("VmRSS");
        tracing::info!(
            "job {} on {}: RSS {} MiB, data {} MiB at start",
            job.job_id,
            measure::device_name(device),
            baseline_rss.unwrap_or(0) >> 20,
            measure::proc_status_bytes("VmData").unwrap_or(0) >> 20
        );
        tch::manual_seed(job.seed as i64);
        Ok(JobStart { device, baseline_rss })
    }
}

/// Runs one job inside a longer-lived process (`isolation: inline`): no memory limit (it would
/// cap the dispatcher itself), and libtorch's inter-op pool set only once, since libtorch
/// refuses to resize it.
pub fn run_job_inline(job: &Job, threads: u64, run_dir: Option<&std::path::Path>) -> Result<JobOutput> {
    static INTEROP: std::sync::Once = std::sync::Once::new();
    use crate::tasks::{Data, Training};
    let task = crate::tasks::find(&job.task.kind).ok_or_else(|| anyhow::anyhow!("unknown task {}", job.task.kind))?;
    // A task without data (noop) succeeds before any set-up: it measures the harness alone.
    let nothing = || JobOutput { status: crate::record::Status::Ok, reason: None, measurements: Default::default() };
    if task.training == Training::Nothing {
        return Ok(nothing());
    }
    // Before anything that may start libtorch's threads: they inherit this thread's mode.
    denormal::set_this_thread(job.train.flush_denormal);
    if threads > 0 {
        tch::set_num_threads(threads as i32);
        INTEROP.call_once(|| tch::set_num_interop_threads(1));
    }
    let denormals = denormal::apply(job.train.flush_denormal)?;
    quiet_panics_for_layer_errors();
    let trained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let start = JobStart::new(job)?;
        let ctx = crate::tasks::BuildContext { seed: job.seed, data_dir: job.data_dir.as_deref() };
        match (task.build)(&job.task.params, ctx).context("building the task data")? {
            Data::Tokens(data) => train::train_and_evaluate(job, data, start, run_dir),
            Data::Series(series) => forecast::train_and_evaluate(job, series, start, run_dir),
            Data::Nothing => Ok(nothing()),
        }
    }));
    let mut output = match trained {
        Ok(output) => output?,
        // A Python layer that raised mid-job: a failed job, with the exception's last line.
        Err(payload) => match payload.downcast::<crate::models::python::LayerRaised>() {
            Ok(raised) => JobOutput {
                status: crate::record::Status::Failed,
                reason: Some(raised.0),
                measurements: Default::default(),
            },
            Err(other) => std::panic::resume_unwind(other),
        },
    };
    output.measurements.denormals = Some(denormals.to_string());
    Ok(output)
}
