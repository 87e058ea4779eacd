//! The local executor: each job runs in its own `seqbench exec-job` child process, so a panic,
//! abort, out-of-memory kill or hang is confined to that job and becomes its record.
use super::Executor;
use crate::job::{Isolation, Job};
use crate::record::{JobOutput, Record, Status};
use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// Lines of stderr kept in a failed job's record (the whole stream is in its log file).
const STDERR_TAIL_LINES: usize = 20;

pub struct ChildExecutor {
    /// The seqbench binary (normally the running one).
    pub exe: PathBuf,
    pub run_dir: PathBuf,
    pub run_id: String,
    /// Extra environment of every job process (an MPI worker pins its GPU here).
    pub env: Vec<(String, String)>,
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGKILL => "SIGKILL",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "",
    };
    if name.is_empty() {
        format!("signal {sig}")
    } else {
        format!("signal {sig} ({name})")
    }
}

/// Messages by which libtorch, the C++ runtime and Rust's allocator report a failed allocation
/// (a `max_memory` limit makes allocations fail rather than invite the kernel's OOM killer).
const OOM_MARKERS: &[&str] =
    &["can't allocate memory", "memory allocation of", "std::bad_alloc", "out of memory", "Cannot allocate memory"];

fn out_of_memory_line(stderr: &StderrSummary) -> Option<String> {
    let line = stderr.out_of_memory.as_deref()?;
    Some(line.trim().trim_start_matches("Error: ").chars().take(300).collect())
}

/// Decides status and reason from how the child ended. `output` is its parsed stdout.
pub fn classify(
    exit: Option<std::process::ExitStatus>,
    timed_out: Option<f64>,
    output: Option<JobOutput>,
    stderr: &StderrSummary,
) -> (Status, Option<String>, Option<JobOutput>) {
    let stderr_tail = stderr.tail.as_str();
    if let Some(limit) = timed_out {
        return (Status::Timeout, Some(format!("exceeded the time limit of {limit} s and was killed")), None);
    }
    let Some(exit) = exit else {
        return (Status::Failed, Some("could not wait for the job process".into()), None);
    };
    if exit.code() != Some(0) {
        if let Some(line) = out_of_memory_line(stderr) {
            return (Status::Oom, Some(format!("out of memory: {line}")), None);
        }
    }
    if let Some(sig) = exit.signal() {
        let mut reason = format!("job process killed by {}", signal_name(sig));
        if sig == libc::SIGKILL {
            reason += " — often the kernel's out-of-memory killer";
        }
        return (Status::Crashed, Some(reason), None);
    }
    // `seqbench exec-job` reports errors as one `Error: …` line.
    let error_line = stderr
        .error
        .as_deref()
        .or_else(|| stderr_tail.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("")
        .trim()
        .to_string();
    match exit.code() {
        Some(0) => match output {
            Some(out) => (out.status, out.reason.clone(), Some(out)),
            None => (Status::Failed, Some("job process exited 0 but wrote no record".into()), None),
        },
        Some(101) if stderr.panic.is_some() => {
            (Status::Panic, Some(format!("panic: {}", stderr.panic.as_deref().unwrap_or_default())), None)
        }
        Some(code) => (Status::Failed, Some(format!("exit code {code}: {error_line}")), None),
        None => (Status::Failed, Some("job process ended without an exit code".into()), None),
    }
}

/// Runs the job in this process (`isolation: inline`): a panic becomes a `panic` record, an
/// error a `failed` one; anything worse ends the process.
fn run_inline(job: Job, threads: u64, run_dir: PathBuf, mut record: Record) -> Record {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::runner::run_job_inline(&job, threads, Some(&run_dir))
    }));
    match outcome {
        Ok(Ok(out)) => {
            record.status = out.status;
            record.reason = out.reason;
            record.measurements = out.measurements;
        }
        Ok(Err(e)) => {
            record.status = Status::Failed;
            record.reason = Some(format!("{e:#}"));
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            record.status = Status::Panic;
            record.reason = Some(format!("panic: {msg}"));
        }
    }
    record
}

impl Executor for ChildExecutor {
    async fn execute(&self, job: Job, threads: u64) -> Record {
        let mut record = job.new_record(&self.run_id, Status::Failed);
        record.started_at = chrono::Local::now().to_rfc3339();
        let started = Instant::now();
        if job.train.isolation == Isolation::Inline {
            let mut fallback = record.clone();
            let run_dir = self.run_dir.clone();
            let mut record = match tokio::task::spawn_blocking(move || run_inline(job, threads, run_dir, record)).await
            {
                Ok(record) => record,
                Err(e) => {
                    fallback.reason = Some(format!("the inline job's thread failed: {e}"));
                    fallback
                }
            };
            record.wall_s = started.elapsed().as_secs_f64();
            record.finished_at = chrono::Local::now().to_rfc3339();
            return record;
        }
        let log_rel = format!("logs/{}.log", job.job_id);
        let log_path = self.run_dir.join(&log_rel);
        let result = run_child(&self.exe, &self.env, &self.run_dir, &job, threads, log_path).await;
        record.wall_s = started.elapsed().as_secs_f64();
        record.finished_at = chrono::Local::now().to_rfc3339();
        record.log_file = Some(log_rel);
        match result {
            Ok((exit, timed_out, output, tail)) => {
                let (status, reason, output) = classify(exit, timed_out, output, &tail);
                record.status = status;
                record.reason = reason;
                if let Some(out) = output {
                    record.measurements = out.measurements;
                }
                if status != Status::Ok {
                    record.stderr_tail = Some(tail.for_record());
                }
            }
            Err(e) => {
                record.status = Status::Failed;
                record.reason = Some(format!("could not run the job process: {e:#}"));
            }
        }
        record
    }
}

impl StderrSummary {
    /// The tail, preceded by the panic, error or allocation-failure line when a long backtrace
    /// pushed it out of the tail.
    pub fn for_record(&self) -> String {
        let mut head: Vec<&str> = Vec::new();
        for line in [&self.panic, &self.error, &self.out_of_memory].into_iter().flatten() {
            if !self.tail.contains(line.as_str()) && !head.contains(&line.as_str()) {
                head.push(line);
            }
        }
        if head.is_empty() {
            return self.tail.clone();
        }
        format!("{}\n…\n{}", head.join("\n"), self.tail)
    }
}

type ChildResult = (Option<std::process::ExitStatus>, Option<f64>, Option<JobOutput>, StderrSummary);

/// What is kept of a job's stderr in its record (all of it goes to the log file).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StderrSummary {
    /// The last lines.
    pub tail: String,
    /// The panic message (the line after `panicked at …`), which a long backtrace would push
    /// out of the tail.
    pub panic: Option<String>,
    /// The last `Error: …` line (how `exec-job` reports an error).
    pub error: Option<String>,
    /// The first line reporting a failed allocation.
    pub out_of_memory: Option<String>,
}

async fn run_child(
    exe: &PathBuf,
    env: &[(String, String)],
    run_dir: &std::path::Path,
    job: &Job,
    threads: u64,
    log_path: PathBuf,
) -> anyhow::Result<ChildResult> {
    if let Some(dir) = log_path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut command = Command::new(exe);
    command
        .arg("exec-job")
        .env(crate::runner::THREADS_ENV, threads.to_string())
        .env(crate::runner::weights::RUN_DIR_ENV, run_dir)
        .env("RUST_BACKTRACE", "1")
        // libtorch errors then fit on their `Error:` line instead of carrying a C++ backtrace.
        .env("TORCH_SHOW_CPP_STACKTRACES", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Own process group: a Ctrl-C at the terminal reaches the coordinator only, which then
        // kills the running jobs and records nothing for them (so resume re-runs them).
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl, which is
    // async-signal-safe. If the coordinator dies (even by SIGKILL) its jobs die with it instead
    // of running on unobserved; resume re-runs them.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let job_json = serde_json::to_vec(job)?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let mut stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&job_json).await;
        // dropping stdin closes it: the child reads to EOF
    });
    let out_reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf).await;
        buf
    });
    let err_reader = tokio::spawn(async move {
        let mut log = tokio::fs::File::create(&log_path).await.ok();
        let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES);
        let mut panic: Option<String> = None;
        let (mut error, mut out_of_memory): (Option<String>, Option<String>) = (None, None);
        let mut after_panic_line = false;
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if after_panic_line {
                panic = Some(line.trim().to_string());
                after_panic_line = false;
            } else if panic.is_none() && line.contains("panicked at") {
                after_panic_line = true;
            }
            if line.starts_with("Error: ") {
                error = Some(line.clone());
            }
            if out_of_memory.is_none() && OOM_MARKERS.iter().any(|m| line.contains(m)) {
                out_of_memory = Some(line.clone());
            }
            if let Some(f) = log.as_mut() {
                let _ = f.write_all(format!("{line}\n").as_bytes()).await;
            }
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        if let Some(f) = log.as_mut() {
            let _ = f.flush().await;
        }
        StderrSummary { tail: Vec::from(tail).join("\n"), panic, error, out_of_memory }
    });
    let limit = job.train.timeout_s;
    let (exit, timed_out) = match tokio::time::timeout(Duration::from_secs_f64(limit), child.wait()).await {
        Ok(status) => (status.ok(), None),
        Err(_) => {
            let _ = child.kill().await;
            (None, Some(limit))
        }
    };
    let _ = writer.await;
    let stdout = out_reader.await.unwrap_or_default();
    let tail = err_reader.await.unwrap_or_default();
    let output = serde_json::from_slice::<JobOutput>(&stdout).ok();
    Ok((exit, timed_out, output, tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_cuda_out_of_memory_error_is_recorded_as_oom() {
        // What libtorch's caching allocator raises, as `exec-job` prints it before exiting 1.
        let line = "Error: Torch(\"CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 139.81 GiB of which 1.06 GiB is free.\")";
        assert!(OOM_MARKERS.iter().any(|m| line.contains(m)));
        let stderr = StderrSummary { tail: line.into(), out_of_memory: Some(line.into()), ..Default::default() };
        let (status, reason, _) = classify(Some(std::process::ExitStatus::from_raw(1 << 8)), None, None, &stderr);
        assert_eq!(status, Status::Oom);
        assert!(reason.unwrap().starts_with("out of memory: Torch(\"CUDA out of memory."));
    }
}
