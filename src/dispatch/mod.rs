//! Dispatch: one scheduler ([`run_jobs`]) hands jobs to a transport (an [`Executor`]: the local
//! pool of child processes, or the MPI workers) with at most `slots` running at once, counts
//! outcomes, stores each record as it arrives, reports progress, and stops cleanly on Ctrl-C or
//! SIGTERM.
pub mod local;
pub mod mpi;
pub mod progress;
pub mod run;
pub mod select;

use crate::job::Job;
use crate::record::{Record, Status};
use anyhow::Result;
use std::future::Future;
use std::sync::Arc;
use tokio::task::JoinSet;

/// Runs one job to its record. It never fails: a job that cannot run is a record saying why.
pub trait Executor: Send + Sync + 'static {
    fn execute(&self, job: Job, threads: u64) -> impl Future<Output = Record> + Send;
}

/// Intra-op threads per job: the suite's value, or the cores divided among the slots.
pub fn threads_for(job: &Job, slots: usize, cores: usize) -> u64 {
    if job.train.threads > 0 {
        job.train.threads
    } else {
        (cores / slots.max(1)).max(1) as u64
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub finished: usize,
    pub not_ok: usize,
    pub interrupted: bool,
    /// The transport could run no more jobs (every MPI worker stopped answering).
    pub stranded: bool,
}

/// Runs `jobs` with `slots` at a time; `on_record` stores each record before the next is
/// handed out. Ctrl-C or SIGTERM stops launching, kills running jobs (their child processes
/// die with them) and returns with `interrupted`.
///
/// `transport` is the executor's own work that must run on this thread beside the jobs (MPI:
/// talking to the workers; the local pool has none: `std::future::pending()`). When it ends, no
/// job can run any more: the running ones are dropped unrecorded and the outcome says `stranded`.
pub async fn run_jobs<E: Executor>(
    jobs: Vec<Job>,
    executor: Arc<E>,
    slots: usize,
    cores: usize,
    mut on_record: impl FnMut(&Record) -> Result<()>,
    progress: &mut progress::Progress,
    transport: impl Future<Output = ()>,
) -> Result<Outcome> {
    let mut queue = jobs.into_iter();
    let mut running = JoinSet::new();
    let mut outcome = Outcome::default();
    // Ctrl-C at a terminal, SIGTERM from a batch scheduler (scancel, a wall-time limit).
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let interrupt = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    tokio::pin!(interrupt);
    tokio::pin!(transport);
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        while running.len() < slots.max(1) {
            let Some(job) = queue.next() else { break };
            let threads = threads_for(&job, slots, cores);
            progress.started(&job);
            let exec = executor.clone();
            running.spawn(async move { exec.execute(job, threads).await });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            _ = &mut interrupt => {
                running.abort_all();
                while running.join_next().await.is_some() {}
                outcome.interrupted = true;
                break;
            }
            _ = &mut transport => {
                running.abort_all();
                while running.join_next().await.is_some() {}
                outcome.stranded = true;
                break;
            }
            joined = running.join_next() => {
                let Some(joined) = joined else { break };
                let record = joined.map_err(|e| anyhow::anyhow!("a dispatch task failed: {e}"))?;
                on_record(&record)?;
                outcome.finished += 1;
                if record.status != Status::Ok {
                    outcome.not_ok += 1;
                }
                progress.finished(&record);
            }
            _ = ticker.tick() => progress.heartbeat(),
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Component, TrainConfig};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Records the peak number of concurrent executions; fails jobs whose seed is odd.
    struct MockExecutor {
        running: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Executor for MockExecutor {
        async fn execute(&self, job: Job, _threads: u64) -> Record {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            let status = if job.seed % 2 == 1 { Status::Failed } else { Status::Ok };
            job.new_record("test", status)
        }
    }

    fn job(seed: u64) -> Job {
        let c = Component { kind: "k".into(), label: "k".into(), params: serde_json::json!({}) };
        let train = TrainConfig::default();
        Job {
            job_id: Job::compute_id(&c, &c, &train, seed),
            suite: "s".into(),
            task: c.clone(),
            model: c,
            train,
            seed,
            swept: vec![],
            data_dir: None,
        }
    }

    #[test]
    fn runs_every_job_within_the_slot_limit() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let exec = Arc::new(MockExecutor { running: AtomicUsize::new(0), peak: AtomicUsize::new(0) });
        let mut seen = Vec::new();
        let mut progress = progress::Progress::quiet(7);
        let outcome = rt
            .block_on(run_jobs(
                (0..7).map(job).collect(),
                exec.clone(),
                3,
                6,
                |r| {
                    seen.push(r.seed);
                    Ok(())
                },
                &mut progress,
                std::future::pending(),
            ))
            .unwrap();
        seen.sort();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        assert_eq!(outcome, Outcome { finished: 7, not_ok: 3, ..Outcome::default() });
        assert_eq!(exec.peak.load(Ordering::SeqCst), 3);
    }

    /// When the transport ends (every MPI worker lost), the scheduler stops handing out jobs,
    /// drops the running ones unrecorded (resume runs them) and says it was stranded.
    #[test]
    fn a_transport_that_ends_strands_the_rest_unrecorded() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let exec = Arc::new(MockExecutor { running: AtomicUsize::new(0), peak: AtomicUsize::new(0) });
        let mut seen = Vec::new();
        let mut progress = progress::Progress::quiet(20);
        // Each job takes 20 ms with 2 at a time: the first pair ends before the transport does.
        let transport = async { tokio::time::sleep(std::time::Duration::from_millis(30)).await };
        let outcome = rt
            .block_on(run_jobs(
                (0..20).map(|s| job(2 * s)).collect(),
                exec,
                2,
                2,
                |r| {
                    seen.push(r.seed);
                    Ok(())
                },
                &mut progress,
                transport,
            ))
            .unwrap();
        assert_eq!(outcome, Outcome { finished: 2, not_ok: 0, interrupted: false, stranded: true });
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn threads_divide_cores_among_slots() {
        let j = job(0);
        assert_eq!(threads_for(&j, 2, 8), 4);
        assert_eq!(threads_for(&j, 16, 8), 1);
        let mut j2 = j.clone();
        j2.train.threads = 3;
        assert_eq!(threads_for(&j2, 2, 8), 3);
    }
}
