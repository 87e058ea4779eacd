//! Distributed dispatch under `mpirun` (or `srun`): rank 0 coordinates, ranks 1..N−1 are
//! workers. An idle worker says so; the coordinator answers with the next job (largest first)
//! or "done". Each worker runs its job in a child process exactly as the local executor does
//! and sends the record back; only rank 0 writes `records.jsonl` and the report.
//!
//! MPI is only called from the main thread of each rank (MPI_THREAD_FUNNELED); a worker's job
//! runs on a tokio runtime in another thread and comes back over a channel, while the main
//! thread sends heartbeats.
//!
//! Failure handling, as OpenMPI behaves:
//! - a job that crashes, hangs past its timeout or runs out of memory is a record (the child
//!   dies, never the worker);
//! - a worker that stops answering (no heartbeat for `WORKER_TIMEOUT`, or
//!   `SEQBENCH_WORKER_TIMEOUT_S`) has its job recorded as
//!   `failed` and gets no more work; the run completes on the others, then rank 0 writes the
//!   report and calls MPI_Abort, since a hung rank cannot take part in MPI_Finalize;
//! - a worker process that dies makes mpirun abort every rank: what was recorded stays on disk
//!   (append + fsync), and `--resume` runs the rest.
use crate::job::Job;
use crate::record::Record;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Message tags.
pub mod tag {
    /// worker → coordinator: idle, send a job (empty payload).
    pub const READY: i32 = 1;
    /// coordinator → worker: an [`super::Assignment`] as JSON.
    pub const JOB: i32 = 2;
    /// worker → coordinator: the finished job's record as JSON; also means "ready".
    pub const RECORD: i32 = 3;
    /// worker → coordinator: still running its job (empty payload).
    pub const HEARTBEAT: i32 = 4;
    /// coordinator → worker: no more work, exit (empty payload).
    pub const DONE: i32 = 5;
}

/// A job as it travels to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub job: Job,
    pub run_dir: std::path::PathBuf,
    pub run_id: String,
}

/// How often a busy worker reports that it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Silence after which the coordinator gives up on a worker.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(120);

/// Environment variable replacing [`WORKER_TIMEOUT`] (seconds): longer for clusters whose nodes
/// pause, shorter for tests.
pub const WORKER_TIMEOUT_ENV: &str = "SEQBENCH_WORKER_TIMEOUT_S";

/// How long a busy worker may stay silent before its job is recorded as failed.
pub fn worker_timeout() -> Result<Duration, crate::error::InputError> {
    let Some(value) = std::env::var_os(WORKER_TIMEOUT_ENV) else { return Ok(WORKER_TIMEOUT) };
    value
        .to_str()
        .and_then(|v| v.trim().parse::<f64>().ok())
        // Several heartbeats must fit in it, or a busy but healthy worker would be given up on.
        .filter(|s| s.is_finite() && *s >= 3.0 * HEARTBEAT_EVERY.as_secs_f64())
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            crate::error::InputError::new(format!(
                "environment variable {WORKER_TIMEOUT_ENV}={value:?}: expected a number of seconds ≥ {} (three heartbeats)",
                3 * HEARTBEAT_EVERY.as_secs()
            ))
        })
}

/// GPU layout options of `seqbench run` under MPI.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Layout {
    /// Workers sharing one GPU (default 1).
    pub ranks_per_gpu: usize,
    /// GPUs per node; 0 = as many as libtorch sees.
    pub gpus_per_node: usize,
}

/// The GPU a worker gets: workers on a node are spread over its GPUs, `ranks_per_gpu` each.
/// None when the node has no GPU.
pub fn gpu_for(local_rank: usize, layout: Layout, gpus_on_node: usize) -> Option<usize> {
    let gpus = if layout.gpus_per_node > 0 { layout.gpus_per_node } else { gpus_on_node };
    (gpus > 0).then(|| (local_rank / layout.ranks_per_gpu.max(1)) % gpus)
}

/// The device id for `CUDA_VISIBLE_DEVICES` of the `index`-th visible device: the entry of an
/// inherited list, or the index itself.
pub fn visible_device(inherited: Option<&str>, index: usize) -> String {
    inherited
        .and_then(|list| list.split(',').map(str::trim).filter(|s| !s.is_empty()).nth(index))
        .map_or_else(|| index.to_string(), str::to_string)
}

/// Rough cost of a job, to start the largest first: steps × batch × length × width² × layers
/// from its resolved parameters, the length as the task's shapes state it (missing values
/// count as 1).
pub fn cost_estimate(job: &Job) -> f64 {
    let get = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(1.0);
    let steps = job.train.steps.map(|s| s as f64).or(job.train.epochs).unwrap_or(1.0);
    let width = get(&job.model.params, "d_model");
    let task = crate::tasks::find(&job.task.kind);
    let seq_len = task.and_then(|t| (t.io)(&job.task.params).ok()).map_or(1.0, |io| io.seq_len as f64);
    steps * job.train.batch_size as f64 * seq_len * width * width * get(&job.model.params, "n_layers")
}

/// Size of the MPI world this process was started in, from the launcher's environment (OpenMPI,
/// MPICH/Intel MPI via PMI, Slurm's srun); None when not started by a launcher.
pub fn launcher_world_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
        .or_else(|| std::env::var("SLURM_STEP_NUM_TASKS").ok()?.parse().ok())
}

#[cfg(feature = "mpi")]
pub use with_mpi::*;

#[cfg(not(feature = "mpi"))]
pub use without_mpi::*;

/// A build without the `mpi` feature: runs locally, and refuses to start N copies of the whole
/// suite under a launcher.
#[cfg(not(feature = "mpi"))]
mod without_mpi {
    use super::*;
    use crate::dispatch::progress::Progress;
    use crate::dispatch::Outcome;
    use crate::error::InputError;
    use anyhow::Result;

    /// Never constructed: there is no MPI world in this build.
    pub enum Session {}

    impl Session {
        pub fn start() -> Result<Option<Session>> {
            match launcher_world_size() {
                Some(n) if n > 1 => Err(InputError::new(format!(
                    "started by an MPI launcher with {n} ranks, but this seqbench was built without MPI support; rebuild with `cargo build --release --features mpi` (needs OpenMPI's headers and libclang, see scripts/setup.sh)"
                ))
                .into()),
                Some(_) => {
                    eprintln!("warning: started by an MPI launcher with one rank; this build has no MPI support, so the run is local");
                    Ok(None)
                }
                None => Ok(None),
            }
        }

        pub fn rank(&self) -> i32 {
            match *self {}
        }

        pub fn size(&self) -> i32 {
            match *self {}
        }

        pub fn abort(&self, _code: i32) -> ! {
            match *self {}
        }
    }

    pub fn coordinate(
        session: &mut Session,
        _jobs: Vec<Job>,
        _run_dir: &std::path::Path,
        _run_id: &str,
        _on_record: impl FnMut(&Record) -> Result<()>,
        _progress: &mut Progress,
    ) -> Result<(Outcome, usize)> {
        match *session {}
    }

    pub fn serve(session: &mut Session, _layout: Layout) -> Result<()> {
        match *session {}
    }
}

#[cfg(feature = "mpi")]
mod with_mpi {
    use super::*;
    use crate::dispatch::local::ChildExecutor;
    use crate::dispatch::progress::Progress;
    use crate::dispatch::{Executor, Outcome};
    use crate::record::Status;
    use anyhow::{Context, Result};
    use mpi::environment::Universe;
    use mpi::topology::{Color, SimpleCommunicator};
    use mpi::traits::*;
    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    use tokio::sync::{mpsc, oneshot};

    /// An initialised MPI world. Dropping the coordinator's session tells workers that are still
    /// waiting to stop, so an error before dispatch (a bad suite) does not leave them hanging.
    pub struct Session {
        // Field order matters: the communicators must go before `_universe` finalises MPI.
        world: SimpleCommunicator,
        /// Ranks 1..N−1 (None on the coordinator).
        workers: Option<SimpleCommunicator>,
        workers_released: bool,
        _universe: Universe,
    }

    impl Session {
        /// Initialises MPI when the process was started by a launcher with more than one rank.
        pub fn start() -> Result<Option<Session>> {
            if launcher_world_size().unwrap_or(1) <= 1 {
                return Ok(None);
            }
            let (universe, _level) =
                mpi::initialize_with_threading(mpi::Threading::Funneled).context("MPI was already initialised")?;
            let world = universe.world();
            // Collective over the world: every rank takes part, the coordinator with no colour.
            let color = if world.rank() == 0 { Color::undefined() } else { Color::with_value(0) };
            let workers = world.split_by_color(color);
            Ok(Some(Session { world, workers, workers_released: false, _universe: universe }))
        }

        pub fn rank(&self) -> i32 {
            self.world.rank()
        }

        pub fn size(&self) -> i32 {
            self.world.size()
        }

        /// Ends the run when a worker hung: MPI_Finalize would wait for it forever.
        pub fn abort(&self, code: i32) -> ! {
            self.world.abort(code)
        }

        fn release_workers(&mut self) {
            if self.workers_released || self.rank() != 0 {
                return;
            }
            for r in 1..self.size() {
                self.world.process_at_rank(r).send_with_tag(&[0u8; 0][..], tag::DONE);
            }
            self.workers_released = true;
        }
    }

    impl Drop for Session {
        fn drop(&mut self) {
            self.release_workers();
        }
    }

    /// What rank 0 knows of its workers. Shared between the scheduler's job tasks (which take an
    /// idle rank and queue its assignment) and the transport loop (the only code that calls MPI),
    /// all on the thread that runs the scheduler.
    #[derive(Default)]
    struct Workers {
        /// Ranks that said they are idle and have not been given a job since.
        idle: HashSet<i32>,
        /// rank → the job it runs.
        busy: HashMap<i32, Busy>,
        /// Ranks given up on: anything they still send is ignored (their job is recorded).
        lost: HashSet<i32>,
        /// Assignments the job tasks queued for the transport loop to send.
        outbox: Vec<(i32, Vec<u8>)>,
    }

    struct Busy {
        job: Job,
        /// The last message from the rank (the assignment, a heartbeat).
        last_heard: Instant,
        started_at: String,
        reply: oneshot::Sender<Record>,
    }

    /// The MPI workers as a transport of the one scheduler: a job waits for an idle rank, is
    /// sent to it, and its record comes back through [`transport`].
    struct MpiWorkers {
        state: Mutex<Workers>,
        /// Idle ranks, in the order they became idle.
        idle: tokio::sync::Mutex<mpsc::UnboundedReceiver<i32>>,
        run_dir: std::path::PathBuf,
        run_id: String,
    }

    impl MpiWorkers {
        fn lock(&self) -> std::sync::MutexGuard<'_, Workers> {
            self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// A `failed` record of `job` saying why, from the rank that had it when there was one.
        fn failed(&self, job: &Job, rank: Option<i32>, reason: String) -> Record {
            let mut record = job.new_record(&self.run_id, Status::Failed);
            record.reason = Some(reason);
            record.rank = rank.map(|r| r as u64);
            record
        }

        /// Records the job of every busy rank silent for longer than `timeout` as failed and
        /// gives up on the rank. Returns how many ranks are lost in all.
        fn give_up_on_silent(&self, timeout: Duration) -> usize {
            let mut state = self.lock();
            let silent: Vec<i32> =
                state.busy.iter().filter(|(_, b)| b.last_heard.elapsed() > timeout).map(|(r, _)| *r).collect();
            for rank in silent {
                let busy = state.busy.remove(&rank).expect("a busy rank");
                let why = format!(
                    "MPI worker rank {rank} stopped answering for {} s while running this job",
                    timeout.as_secs()
                );
                let mut record = self.failed(&busy.job, Some(rank), why);
                (record.started_at, record.finished_at) = (busy.started_at, chrono::Local::now().to_rfc3339());
                let _ = busy.reply.send(record);
                state.lost.insert(rank);
            }
            state.lost.len()
        }
    }

    impl Executor for MpiWorkers {
        /// `threads` is the coordinator's guess; a worker divides its own node's cores.
        async fn execute(&self, job: Job, _threads: u64) -> Record {
            let Some(rank) = self.idle.lock().await.recv().await else {
                // The transport ended (the scheduler drops this task before recording it).
                return self.failed(&job, None, "no MPI worker was left to run this job".into());
            };
            let (reply, record) = oneshot::channel();
            let assignment =
                Assignment { job: job.clone(), run_dir: self.run_dir.clone(), run_id: self.run_id.clone() };
            {
                let mut state = self.lock();
                state.idle.remove(&rank);
                let payload = serde_json::to_vec(&assignment).expect("a job serialises to JSON");
                state.outbox.push((rank, payload));
                let started_at = chrono::Local::now().to_rfc3339();
                state.busy.insert(rank, Busy { job: job.clone(), last_heard: Instant::now(), started_at, reply });
            }
            record.await.unwrap_or_else(|_| {
                self.failed(&job, None, format!("MPI worker rank {rank} was dropped without a record"))
            })
        }
    }

    /// The transport loop, on the scheduler's thread (MPI_THREAD_FUNNELED): sends queued
    /// assignments, receives readiness, heartbeats and records, and gives up on a busy rank
    /// silent for `timeout` (its job's record says so). Ends when no worker is left.
    async fn transport(
        world: &SimpleCommunicator,
        workers: &MpiWorkers,
        idle: mpsc::UnboundedSender<i32>,
        timeout: Duration,
        n_workers: usize,
    ) {
        loop {
            for (rank, payload) in std::mem::take(&mut workers.lock().outbox) {
                world.process_at_rank(rank).send_with_tag(&payload[..], tag::JOB);
            }
            if let Some(probed) = world.any_process().immediate_matched_probe() {
                let (payload, status) = probed.matched_receive_vec::<u8>();
                let rank = status.source_rank();
                let mut state = workers.lock();
                if state.lost.contains(&rank) {
                    continue;
                }
                match status.tag() {
                    tag::HEARTBEAT => {
                        if let Some(busy) = state.busy.get_mut(&rank) {
                            busy.last_heard = Instant::now();
                        }
                        continue;
                    }
                    tag::RECORD => {
                        let Some(busy) = state.busy.remove(&rank) else { continue };
                        let record = serde_json::from_slice(&payload).unwrap_or_else(|e| {
                            workers.failed(
                                &busy.job,
                                Some(rank),
                                format!("MPI rank {rank} sent a malformed record: {e}"),
                            )
                        });
                        let _ = busy.reply.send(record);
                    }
                    _ => {} // READY
                }
                state.idle.insert(rank);
                let _ = idle.send(rank);
                continue;
            }
            if workers.give_up_on_silent(timeout) >= n_workers {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Rank 0: runs `jobs` (largest first) on the workers through the one scheduler, storing
    /// each record with `on_record` as it arrives. Returns the outcome and the number of workers
    /// lost; when none was lost and the run was not interrupted, every worker is told to stop.
    pub fn coordinate(
        session: &mut Session,
        mut jobs: Vec<Job>,
        run_dir: &std::path::Path,
        run_id: &str,
        on_record: impl FnMut(&Record) -> Result<()>,
        progress: &mut Progress,
    ) -> Result<(Outcome, usize)> {
        let timeout = worker_timeout()?;
        jobs.sort_by(|a, b| cost_estimate(b).total_cmp(&cost_estimate(a)));
        let n_workers = (session.size() - 1) as usize;
        let (idle_tx, idle_rx) = mpsc::unbounded_channel();
        let workers = Arc::new(MpiWorkers {
            state: Mutex::new(Workers::default()),
            idle: tokio::sync::Mutex::new(idle_rx),
            run_dir: run_dir.to_path_buf(),
            run_id: run_id.to_string(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let cores = crate::env_info::cpu_cores();
        let outcome = runtime.block_on(crate::dispatch::run_jobs(
            jobs,
            workers.clone(),
            n_workers,
            cores,
            on_record,
            progress,
            transport(&session.world, &workers, idle_tx, timeout, n_workers),
        ))?;
        runtime.shutdown_background();
        let state = workers.lock();
        let lost = state.lost.len();
        if !outcome.interrupted && lost == 0 {
            // Every job has its record, so every worker is idle or has yet to say so: hear it
            // out, then tell it to stop (no message is left unmatched at MPI_Finalize).
            for rank in 1..session.size() {
                if !state.idle.contains(&rank) {
                    let _ = session.world.process_at_rank(rank).receive_vec::<u8>();
                }
            }
            session.release_workers();
        }
        Ok((outcome, lost))
    }

    /// Where a worker sits: its rank among the workers of its node and the GPU it gets.
    struct Placement {
        local_rank: usize,
        workers_on_node: usize,
        gpu: Option<usize>,
    }

    /// Collective over the workers: split them by shared-memory node.
    fn placement(workers: &SimpleCommunicator, layout: Layout) -> Placement {
        let node = workers.split_shared(workers.rank());
        let local_rank = node.rank() as usize;
        let gpus_on_node = if layout.gpus_per_node > 0 { 0 } else { tch::Cuda::device_count().max(0) as usize };
        Placement { local_rank, workers_on_node: node.size() as usize, gpu: gpu_for(local_rank, layout, gpus_on_node) }
    }

    /// Ranks 1..N−1: ask for jobs and run them until told to stop.
    pub fn serve(session: &mut Session, layout: Layout) -> Result<()> {
        session.workers_released = true; // a worker has no workers of its own
        let world = &session.world;
        let workers = session.workers.as_ref().context("rank 0 is the coordinator, not a worker")?;
        let place = placement(workers, layout);
        let coordinator = world.process_at_rank(0);
        let exe = std::env::current_exe().context("locating the seqbench binary")?;
        // Index g counts the devices this worker sees: map it through an inherited
        // CUDA_VISIBLE_DEVICES (Slurm's binding) to the device the job process must see.
        let inherited = std::env::var("CUDA_VISIBLE_DEVICES").ok();
        let device_id = place.gpu.map(|g| visible_device(inherited.as_deref(), g));
        let env: Vec<(String, String)> = device_id
            .clone()
            .map(|d| vec![("CUDA_VISIBLE_DEVICES".into(), d), ("SEQBENCH_DEVICE".into(), "cuda:0".into())])
            .unwrap_or_default();
        if let Some(g) = place.gpu {
            // Inline jobs run in this process, which sees every device: point `auto` at ours.
            std::env::set_var("SEQBENCH_DEVICE", format!("cuda:{g}"));
        }
        let cores = crate::env_info::cpu_cores();
        coordinator.send_with_tag(&[0u8; 0][..], tag::READY);
        loop {
            let (payload, status) = coordinator.receive_vec::<u8>();
            if status.tag() == tag::DONE {
                return Ok(());
            }
            let a: Assignment = serde_json::from_slice(&payload).context("a malformed job from rank 0")?;
            let threads = crate::dispatch::threads_for(&a.job, place.workers_on_node, cores);
            let executor = ChildExecutor { exe: exe.clone(), run_dir: a.run_dir, run_id: a.run_id, env: env.clone() };
            let (tx, rx) = std::sync::mpsc::channel();
            let job = a.job;
            let runner = std::thread::spawn(move || -> Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                let _ = tx.send(rt.block_on(executor.execute(job, threads)));
                Ok(())
            });
            let mut record = loop {
                match rx.recv_timeout(HEARTBEAT_EVERY) {
                    Ok(record) => break record,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        coordinator.send_with_tag(&[0u8; 0][..], tag::HEARTBEAT)
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        runner.join().map_err(|_| anyhow::anyhow!("the job thread panicked"))??;
                        anyhow::bail!("the job thread ended without a record");
                    }
                }
            };
            record.rank = Some(world.rank() as u64);
            record.local_rank = Some(place.local_rank as u64);
            record.cuda_visible_devices = device_id.clone();
            coordinator.send_with_tag(&serde_json::to_vec(&record)?[..], tag::RECORD);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_spread_over_gpus() {
        let one_each = Layout { ranks_per_gpu: 1, gpus_per_node: 0 };
        assert_eq!((0..5).map(|r| gpu_for(r, one_each, 4)).collect::<Vec<_>>(), [0, 1, 2, 3, 0].map(Some));
        let two_each = Layout { ranks_per_gpu: 2, gpus_per_node: 2 };
        assert_eq!((0..4).map(|r| gpu_for(r, two_each, 8)).collect::<Vec<_>>(), [0, 0, 1, 1].map(Some));
        assert_eq!(gpu_for(3, one_each, 0), None);
    }

    #[test]
    fn device_ids_map_through_an_inherited_visible_list() {
        assert_eq!(visible_device(Some("4,5,6,7"), 1), "5");
        assert_eq!(visible_device(Some("GPU-a1, GPU-b2"), 1), "GPU-b2");
        assert_eq!(visible_device(None, 3), "3");
        assert_eq!(visible_device(Some(""), 2), "2");
    }
}
