//! Progress of a run on stderr: one line per finished job with its swept values and headline
//! numbers, the count of failures and an ETA. The ETA weighs the jobs by their estimated cost
//! (steps × batch × length × width² × layers): seconds per unit of cost from the jobs that
//! finished, times the cost still to run, over the slots. At a terminal a progress bar (done/total, failures, ETA, what is
//! running) stays below those lines; in batch logs (Slurm, CI) there are only the plain lines,
//! plus a line listing the running jobs after a minute without news.
use crate::job::Job;
use crate::record::{Record, Status};
use crate::report::frame::{param_text, swept_labels};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// With no job finishing for this long, a line says what is still running.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

pub struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    last_line: Instant,
    /// job id → (description, start)
    running: BTreeMap<String, (String, Instant)>,
    quiet: bool,
    /// Only when stderr is a terminal.
    bar: Option<indicatif::ProgressBar>,
    /// Estimated cost of each job not finished yet.
    cost: HashMap<String, f64>,
    /// Wall seconds and estimated cost of the jobs that ended ok.
    finished_wall: f64,
    finished_cost: f64,
    slots: usize,
    /// The run's `logs/`, where a running job's log says its step and loss.
    log_dir: Option<std::path::PathBuf>,
}

/// The last `step N/M loss X` a job logged (the tail of its log file), as `step N/M loss X`.
fn last_step(log: &std::path::Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = String::new();
    file.take(4096).read_to_string(&mut tail).ok()?;
    let line = tail.lines().rev().find(|l| l.contains(" step ") && l.contains(" loss "))?;
    Some(line[line.find("step ")?..].trim().to_string())
}

pub use seqbench_core::units::{human_duration, human_rate};

/// A job's label with its swept values (`report::frame::swept_labels`): `mqar gru seed=0 lr=0.003`.
fn job_label(task: &str, model: &str, seed: u64, swept: &[String]) -> String {
    std::iter::once(format!("{task} {model} seed={seed}")).chain(swept.iter().cloned()).collect::<Vec<_>>().join(" ")
}

/// The swept values of `job` as `name=value`.
fn swept_values(job: &Job) -> Vec<String> {
    let params = job.flat_params();
    swept_labels(job.swept.iter().map(String::as_str), |k| params.get(k).map(param_text))
}

impl Progress {
    /// Progress of `jobs` run `slots` at a time, their logs in `log_dir` (read for the running
    /// jobs' step and loss).
    pub fn new(jobs: &[Job], slots: usize, log_dir: Option<std::path::PathBuf>) -> Self {
        use std::io::IsTerminal;
        let total = jobs.len();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            let style = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} jobs  {elapsed} elapsed  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_secs(1));
            bar
        });
        let mut progress = Progress::with(total, false, bar);
        progress.cost = jobs.iter().map(|j| (j.job_id.clone(), super::mpi::cost_estimate(j).max(1.0))).collect();
        progress.slots = slots.max(1);
        progress.log_dir = log_dir;
        progress
    }

    /// A running job as listed: its label, and its last logged step and loss when there is one.
    fn running_text(&self, job_id: &str, what: &str) -> String {
        let step = self.log_dir.as_ref().and_then(|dir| last_step(&dir.join(format!("{job_id}.log"))));
        match step {
            Some(step) => format!("{what} [{step}]"),
            None => what.to_string(),
        }
    }

    pub fn quiet(total: usize) -> Self {
        Progress::with(total, true, None)
    }

    fn with(total: usize, quiet: bool, bar: Option<indicatif::ProgressBar>) -> Self {
        let now = Instant::now();
        Progress {
            total,
            done: 0,
            failed: 0,
            last_line: now,
            running: BTreeMap::new(),
            quiet,
            bar,
            cost: HashMap::new(),
            finished_wall: 0.0,
            finished_cost: 0.0,
            slots: 1,
            log_dir: None,
        }
    }

    pub fn started(&mut self, job: &Job) {
        let what = job_label(&job.task.label, &job.model.label, job.seed, &swept_values(job));
        tracing::debug!("start {} {what}", job.job_id);
        self.running.insert(job.job_id.clone(), (what, Instant::now()));
        self.update_bar();
    }

    fn update_bar(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.done as u64);
            let running: Vec<String> =
                self.running.iter().map(|(id, (what, _))| self.running_text(id, what)).take(4).collect();
            let more = self.running.len().saturating_sub(running.len());
            let mut msg = match self.eta() {
                Some(eta) => format!("ETA {}  ", human_duration(eta)),
                None => "ETA after the first job  ".to_string(),
            };
            if self.failed > 0 {
                msg += &format!("{} not ok  ", self.failed);
            }
            msg += &format!("running: {}", running.join(", "));
            if more > 0 {
                msg += &format!(" and {more} more");
            }
            bar.set_message(msg);
        }
    }

    /// Seconds until the run ends: the cost still to run (the running jobs' less what they have
    /// done at the same rate) at the seconds per unit of cost measured so far, over the slots.
    /// None before a job has ended ok.
    fn eta(&self) -> Option<f64> {
        if self.finished_cost <= 0.0 {
            return None;
        }
        let rate = self.finished_wall / self.finished_cost;
        let remaining: f64 = self
            .cost
            .iter()
            .map(|(id, cost)| {
                let spent = self.running.get(id).map_or(0.0, |(_, t)| t.elapsed().as_secs_f64());
                (rate * cost - spent).max(0.0)
            })
            .sum();
        Some(remaining / self.slots.min(self.cost.len().max(1)) as f64)
    }

    /// Prints a line above the bar (or plainly without one).
    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Clears the bar at the end of the run.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Called periodically: refreshes the bar (the running jobs' steps, the ETA); without a bar,
    /// after [`HEARTBEAT`] without output, lists the running jobs.
    pub fn heartbeat(&mut self) {
        if self.bar.is_some() {
            self.update_bar();
            return;
        }
        if self.quiet || self.running.is_empty() || self.last_line.elapsed() < HEARTBEAT {
            return;
        }
        let jobs: Vec<String> = self
            .running
            .iter()
            .map(|(id, (what, t))| {
                format!("{} ({})", self.running_text(id, what), human_duration(t.elapsed().as_secs_f64()))
            })
            .collect();
        self.line(&format!("[{}/{}] running: {}", self.done, self.total, jobs.join(", ")));
        self.last_line = Instant::now();
    }

    pub fn finished(&mut self, r: &Record) {
        self.running.remove(&r.job_id);
        if let Some(cost) = self.cost.remove(&r.job_id) {
            if r.status == Status::Ok {
                self.finished_wall += r.wall_s;
                self.finished_cost += cost;
            }
        }
        self.last_line = Instant::now();
        self.done += 1;
        if r.status != Status::Ok {
            self.failed += 1;
        }
        if self.quiet {
            return;
        }
        let line = self.finished_line(r);
        self.line(&line);
        self.update_bar();
    }

    /// The line for a finished job: count, status, label, id, the MPI rank that ran it, headline
    /// numbers, wall time, why it failed, ETA and failures so far.
    fn finished_line(&self, r: &Record) -> String {
        let m = &r.measurements;
        let swept = swept_labels(r.swept.iter().map(String::as_str), |k| r.params.get(k).map(param_text));
        let mut line = format!(
            "[{:>w$}/{}] {:<8} {} ({})",
            self.done,
            self.total,
            r.status.as_str(),
            job_label(&r.task_label, &r.model, r.seed, &swept),
            r.job_id,
            w = self.total.to_string().len()
        );
        if let Some(rank) = r.rank {
            line += &format!(" on rank {rank}");
        }
        if let Some(acc) = m.accuracy {
            line += &format!("  acc {:.1}%", 100.0 * acc);
        }
        if let Some(mse) = m.mse {
            line += &format!("  MSE {mse:.4}");
        }
        if let Some(t) = m.train_tokens_per_s {
            line += &format!("  train {} tok/s", human_rate(t));
        }
        line += &format!("  {}", human_duration(r.wall_s));
        if let Some(reason) = &r.reason {
            line += &format!("  — {}", reason.lines().next().unwrap_or_default());
        }
        if let Some(eta) = self.eta().filter(|_| self.done < self.total) {
            line += &format!("  [ETA {}]", human_duration(eta));
        }
        if self.failed > 0 {
            line += &format!("  [{} not ok]", self.failed);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Component, TrainConfig};

    fn job(seed: u64, d_model: i64) -> Job {
        let task = Component { kind: "mqar".into(), label: "mqar".into(), params: serde_json::json!({}) };
        let model =
            Component { kind: "gru".into(), label: "gru".into(), params: serde_json::json!({"d_model": d_model}) };
        let train = TrainConfig::default();
        Job {
            job_id: Job::compute_id(&task, &model, &train, seed),
            suite: "s".into(),
            task,
            model,
            train,
            seed,
            swept: vec!["model.d_model".into()],
            data_dir: None,
        }
    }

    #[test]
    fn eta_weighs_the_remaining_jobs_by_their_cost() {
        // Costs ∝ d_model²: 1, 4 and 16 units; the small job took 10 s, two slots.
        let jobs = [job(0, 1), job(1, 2), job(2, 4)];
        let mut progress = Progress::with(3, true, None);
        progress.cost = jobs.iter().map(|j| (j.job_id.clone(), super::super::mpi::cost_estimate(j))).collect();
        progress.slots = 2;
        assert_eq!(progress.eta(), None, "no rate before a job ends");
        let mut record = jobs[0].new_record("r", Status::Ok);
        record.wall_s = 10.0;
        progress.finished(&record);
        let eta = progress.eta().unwrap();
        assert!((eta - 10.0 * (4.0 + 16.0) / 2.0).abs() < 1e-9, "ETA {eta}");
    }

    #[test]
    fn running_jobs_show_their_last_logged_step() {
        let dir = tempfile::tempdir().unwrap();
        let log = "2026-12-02T16:58:02Z  INFO step 900/3000 loss 2.9820\n2026-12-02T16:58:22Z  INFO step 1200/3000 loss 2.8622\nsome other line\n";
        std::fs::write(dir.path().join("j1.log"), log).unwrap();
        let mut progress = Progress::with(1, false, None);
        progress.log_dir = Some(dir.path().to_path_buf());
        assert_eq!(progress.running_text("j1", "mqar gru seed=0"), "mqar gru seed=0 [step 1200/3000 loss 2.8622]");
        assert_eq!(progress.running_text("j2", "mqar gru seed=1"), "mqar gru seed=1", "no log yet");
    }

    #[test]
    fn a_finished_line_names_the_mpi_rank_that_ran_the_job() {
        let mut progress = Progress::with(2, true, None);
        let mut record = job(0, 8).new_record("r", Status::Ok);
        record.wall_s = 3.0;
        progress.finished(&record);
        let local = progress.finished_line(&record);
        assert!(local.starts_with("[1/2] ok       mqar gru seed=0 d_model=8 ("), "{local}");
        assert!(!local.contains("rank"), "a local job has no rank: {local}");
        record.rank = Some(2);
        let line = progress.finished_line(&record);
        assert!(line.contains(&format!("({}) on rank 2  3s", record.job_id)), "{line}");
    }

    #[test]
    fn labels_name_the_swept_values() {
        let label = job_label("mqar", "gru", 0, &["d_model=64".into(), "lr=0.003".into()]);
        assert_eq!(label, "mqar gru seed=0 d_model=64 lr=0.003");
        assert_eq!(swept_values(&job(0, 32)), ["d_model=32"]);
        let values = |k: &str| Some(if k == "task.data_seed" { "3".to_string() } else { "0".to_string() });
        assert_eq!(swept_labels(["seed", "task.data_seed"], values), ["data_seed=3"], "only the job seed is left out");
    }
}
