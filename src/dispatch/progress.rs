//! Progress of a run on stderr: one line per finished job with its headline numbers, the count
//! of failures and an ETA. At a terminal a progress bar (done/total, failures, ETA, what is
//! running) stays below those lines; in batch logs (Slurm, CI) there are only the plain lines,
//! plus a line listing the running jobs after a minute without news.
use crate::job::Job;
use crate::record::{Record, Status};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// With no job finishing for this long, a line says what is still running.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

pub struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    started: Instant,
    last_line: Instant,
    /// job id → (description, start)
    running: BTreeMap<String, (String, Instant)>,
    quiet: bool,
    /// Only when stderr is a terminal.
    bar: Option<indicatif::ProgressBar>,
}

pub fn human_rate(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.2}G", x / 1e9),
        x if x >= 1e6 => format!("{:.2}M", x / 1e6),
        x if x >= 1e3 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

pub fn human_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

impl Progress {
    pub fn new(total: usize) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            let style = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} jobs  {elapsed} elapsed, ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_secs(1));
            bar
        });
        Progress::with(total, false, bar)
    }

    pub fn quiet(total: usize) -> Self {
        Progress::with(total, true, None)
    }

    fn with(total: usize, quiet: bool, bar: Option<indicatif::ProgressBar>) -> Self {
        let now = Instant::now();
        Progress { total, done: 0, failed: 0, started: now, last_line: now, running: BTreeMap::new(), quiet, bar }
    }

    pub fn started(&mut self, job: &Job) {
        self.started_on(job, None);
    }

    /// A job started on MPI rank `rank` (shown beside it in the running list).
    pub fn started_on(&mut self, job: &Job, rank: Option<i32>) {
        let mut what = format!("{} {} seed={}", job.task.label, job.model.label, job.seed);
        if let Some(r) = rank {
            what = format!("rank {r}: {what}");
        }
        tracing::debug!("start {} {what}", job.job_id);
        self.running.insert(job.job_id.clone(), (what, Instant::now()));
        self.update_bar();
    }

    fn update_bar(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.done as u64);
            let running: Vec<&str> = self.running.values().map(|(what, _)| what.as_str()).take(4).collect();
            let more = self.running.len().saturating_sub(running.len());
            let mut msg = if self.failed > 0 { format!("{} not ok  ", self.failed) } else { String::new() };
            msg += &format!("running: {}", running.join(", "));
            if more > 0 {
                msg += &format!(" and {more} more");
            }
            bar.set_message(msg);
        }
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

    /// Called periodically: after [`HEARTBEAT`] without output, lists the running jobs.
    pub fn heartbeat(&mut self) {
        if self.quiet || self.bar.is_some() || self.running.is_empty() || self.last_line.elapsed() < HEARTBEAT {
            return;
        }
        let jobs: Vec<String> = self
            .running
            .values()
            .map(|(what, t)| format!("{what} ({})", human_duration(t.elapsed().as_secs_f64())))
            .collect();
        self.line(&format!("[{}/{}] running: {}", self.done, self.total, jobs.join(", ")));
        self.last_line = Instant::now();
    }

    pub fn finished(&mut self, r: &Record) {
        self.running.remove(&r.job_id);
        self.last_line = Instant::now();
        self.done += 1;
        if r.status != Status::Ok {
            self.failed += 1;
        }
        if self.quiet {
            return;
        }
        let m = &r.measurements;
        let mut line = format!(
            "[{:>w$}/{}] {:<8} {} {} seed={} ({})",
            self.done,
            self.total,
            r.status.as_str(),
            r.task_label,
            r.model,
            r.seed,
            r.job_id,
            w = self.total.to_string().len()
        );
        if let Some(acc) = m.accuracy {
            line += &format!("  acc {:.1}%", 100.0 * acc);
        }
        if let Some(t) = m.train_tokens_per_s {
            line += &format!("  train {} tok/s", human_rate(t));
        }
        line += &format!("  {}", human_duration(r.wall_s));
        if let Some(reason) = &r.reason {
            line += &format!("  — {}", reason.lines().next().unwrap_or_default());
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        if self.done < self.total {
            let eta = elapsed / self.done as f64 * (self.total - self.done) as f64;
            line += &format!("  [ETA {}]", human_duration(eta));
        }
        if self.failed > 0 {
            line += &format!("  [{} not ok]", self.failed);
        }
        self.line(&line);
        self.update_bar();
    }
}
