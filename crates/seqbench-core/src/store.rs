//! Run directories: `results/<suite>/<run-id>/` with `suite.resolved.yaml`, `env.json`,
//! `records.jsonl` (one record per line, appended and fsync'd as each job ends), `logs/`, and
//! the report. A lock file keeps two coordinators out of one run directory.
use crate::error::InputError;
use crate::record::Record;
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const RECORDS: &str = "records.jsonl";
pub const RESOLVED: &str = "suite.resolved.yaml";
pub const ENV: &str = "env.json";
pub const LOCK: &str = "run.lock";

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Writes what `write` produces to `path` through a temporary file and a rename, so readers
/// never see half; large outputs stream to disk instead of being built in memory first.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut std::io::BufWriter<File>) -> Result<()>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    // Unique per process and call: two threads (inline jobs) or two hosts sharing the directory
    // may write the same file at once, and each rename must publish a complete file.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let host = crate::host::hostname();
    let tmp = dir.join(format!(".{name}.tmp-{host}-{}-{call}", std::process::id()));
    let file = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = write(&mut out).and_then(|_| {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        Ok(file.sync_all()?)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("writing {}", tmp.display())));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Free space a run directory needs before any job starts (records, logs, report); the
/// environment variable SEQBENCH_MIN_FREE_MB overrides it.
pub const MIN_FREE_MB: u64 = 64;

/// Refuses to start on a nearly full file system, where records could not be written.
pub fn check_free_space(dir: &Path) -> Result<()> {
    let need_mb = std::env::var("SEQBENCH_MIN_FREE_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(MIN_FREE_MB);
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).context("run directory path")?;
    // SAFETY: statvfs writes into the zeroed struct; the path is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Ok(()); // cannot tell: let the writes report any problem
    }
    let free_mb = (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64) >> 20;
    if free_mb < need_mb {
        return Err(InputError::new(format!(
            "only {free_mb} MiB free on this file system; a run needs at least {need_mb} MiB for records, logs and reports"
        ))
        .in_file(dir)
        .into());
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

/// `OUT/<suite>/latest` → `run`, the newest run, for scripts and tired eyes; set once the run has
/// started. Best effort: a file system without symlinks just has no `latest`.
pub fn point_latest_at(run: &RunDir) {
    let (Some(suite_dir), run_id) = (run.path.parent(), run.run_id()) else { return };
    let link = suite_dir.join("latest");
    let temporary = suite_dir.join(format!(".latest-{}", std::process::id()));
    #[cfg(unix)]
    if std::os::unix::fs::symlink(&run_id, &temporary).is_ok() && std::fs::rename(&temporary, &link).is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
}

/// A run's plan as `suite.resolved.yaml` records it (see [`RunDir::plan`]).
pub struct Plan {
    pub name: Option<String>,
    pub jobs: Option<usize>,
}

impl RunDir {
    /// A new run directory `out/<suite>/<YYYYmmdd-HHMMSS>[-N]`.
    pub fn create(out: &Path, suite: &str) -> Result<Self> {
        let parent = out.join(suite);
        std::fs::create_dir_all(&parent)
            .map_err(|e| InputError::new(format!("cannot create the results directory: {e}")).in_file(&parent))?;
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
        for n in 1..1000 {
            let name = if n == 1 { stamp.clone() } else { format!("{stamp}-{n}") };
            let path = parent.join(&name);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(RunDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(InputError::new(format!("cannot create run directory: {e}")).in_file(&path).into())
                }
            }
        }
        anyhow::bail!("could not find a free run directory name under {}", parent.display())
    }

    /// An existing run directory (for resume and report).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.join(RESOLVED).is_file() && !path.join(RECORDS).is_file() {
            return Err(InputError::new(format!("not a seqbench run directory (no {RESOLVED} or {RECORDS})"))
                .in_file(path)
                .into());
        }
        Ok(RunDir { path: path.to_path_buf() })
    }

    pub fn run_id(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    pub fn records_path(&self) -> PathBuf {
        self.path.join(RECORDS)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.path.join("logs")
    }

    /// Suite name recorded in `suite.resolved.yaml`, if readable.
    pub fn suite_name(&self) -> Option<String> {
        self.plan().name
    }

    /// What `suite.resolved.yaml` says of the run, read once: its suite's name and how many jobs
    /// it planned (each None when the file or the entry is missing).
    pub fn plan(&self) -> Plan {
        let resolved = self.resolved();
        let entry = |key: &str| resolved.as_ref().and_then(|v| v.get(key));
        Plan {
            name: entry("suite").and_then(|s| s.get("name")?.as_str()).map(str::to_string),
            jobs: entry("jobs").and_then(|j| j.as_sequence()).map(Vec::len),
        }
    }

    /// `suite.resolved.yaml` parsed, if present and readable.
    fn resolved(&self) -> Option<serde_yaml::Value> {
        serde_yaml::from_str(&std::fs::read_to_string(self.path.join(RESOLVED)).ok()?).ok()
    }

    /// The suite this run was started from, as `suite.resolved.yaml` keeps it (presets inlined):
    /// (the original suite's path, the suite as YAML text).
    pub fn resolved_suite(&self) -> Option<(PathBuf, String)> {
        let v = self.resolved()?;
        let source = v.get("source").and_then(|s| s.as_str()).unwrap_or(RESOLVED);
        Some((PathBuf::from(source), serde_yaml::to_string(v.get("suite")?).ok()?))
    }

    /// Job ids listed in `suite.resolved.yaml`, if readable.
    pub fn resolved_job_ids(&self) -> Option<std::collections::HashSet<String>> {
        let v = self.resolved()?;
        let jobs = v.get("jobs")?.as_sequence()?;
        Some(jobs.iter().filter_map(|j| j.get("job_id")?.as_str().map(str::to_string)).collect())
    }

    /// Takes the run's lock, or says who holds it. A lock left by a dead process on this host is
    /// taken over.
    pub fn lock(&self) -> Result<RunLock> {
        let path = self.path.join(LOCK);
        let me = format!("{} {}", crate::host::hostname(), std::process::id());
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(me.as_bytes())?;
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    if lock_is_stale(&holder) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    return Err(InputError::new(format!(
                        "run directory is in use by another seqbench (host and pid: {holder}); remove {LOCK} if that process is gone"
                    ))
                    .in_file(&self.path)
                    .into());
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        anyhow::bail!("could not take the lock {}", path.display())
    }

    /// Opens `records.jsonl` for appending. A torn last line (a crash mid-write) is cut off and
    /// kept in `records.jsonl.torn` so that every remaining line is a whole record.
    pub fn record_writer(&self) -> Result<RecordWriter> {
        let path = self.records_path();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        let keep = whole_lines_len(&mut file, len).with_context(|| format!("reading {}", path.display()))?;
        if keep < len {
            let mut torn_line = Vec::new();
            file.seek(SeekFrom::Start(keep))?;
            Read::read_to_end(&mut file, &mut torn_line)?;
            let torn = path.with_extension("jsonl.torn");
            OpenOptions::new().create(true).append(true).open(&torn)?.write_all(&torn_line)?;
            file.set_len(keep)?;
            file.seek(SeekFrom::End(0))?;
            tracing::warn!("set aside a partial last line of {} in {}", path.display(), torn.display());
        }
        Ok(RecordWriter { file, superseded: HashMap::new(), superseded_path: self.path.join(SUPERSEDED) })
    }
}

fn lock_is_stale(holder: &str) -> bool {
    let mut parts = holder.split_whitespace();
    let (Some(host), Some(pid)) = (parts.next(), parts.next().and_then(|p| p.parse::<i32>().ok())) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks whether the process exists; EPERM means it does.
    let gone =
        unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    host == crate::host::hostname() && gone
}

pub struct RunLock {
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The length of `file`'s whole lines: up to and including its last newline. Reads backwards
/// from the end, so that reopening a large records file does not read it all.
fn whole_lines_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut end = len;
    let mut chunk = vec![0; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(i) = memchr::memrchr(b'\n', part) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Records replaced by a newer record of the same job (`--retry-failed`): one line per
/// replaced record, `job_id<TAB>finished_at`, written right after its replacement.
pub const SUPERSEDED: &str = "superseded.tsv";

pub struct RecordWriter {
    file: File,
    /// Job id → `finished_at` of the record the job's next record replaces.
    superseded: HashMap<String, String>,
    superseded_path: PathBuf,
}

/// The records replaced by newer ones in the run of `records_path`, as (job id, finished_at);
/// empty when none were.
pub fn superseded(records_path: &Path) -> Result<HashSet<(String, String)>> {
    let path = records_path.with_file_name(SUPERSEDED);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(job, finished)| (job.to_string(), finished.to_string()))
        .collect())
}

impl RecordWriter {
    /// Appends one record as a line and fsyncs, so a finished job survives any later crash.
    pub fn append(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        if let Some(finished_at) = self.superseded.remove(&record.job_id) {
            let mut file = OpenOptions::new().create(true).append(true).open(&self.superseded_path)?;
            file.write_all(format!("{}\t{finished_at}\n", record.job_id).as_bytes())?;
            file.sync_data()?;
        }
        Ok(())
    }

    /// The jobs about to run again and the `finished_at` of the record each one's next record
    /// replaces.
    pub fn supersede(&mut self, records: HashMap<String, String>) {
        self.superseded = records;
    }
}

/// Appends up to `bytes` of `file` (at `path`) to `buffer`, into its spare room (no zeroing
/// first); returns how many it read, fewer only at the end of the file.
pub fn read_up_to(file: &mut File, path: &Path, buffer: &mut Vec<u8>, bytes: usize) -> Result<usize> {
    file.take(bytes as u64).read_to_end(buffer).with_context(|| format!("reading {}", path.display()))
}

/// Bytes of `records.jsonl` read at a time by [`for_each_block`].
pub const BLOCK_BYTES: usize = 32 << 20;

/// The warning for a line of `path` that is not a record (1-based `line`).
pub fn unreadable_line(path: &Path, line: usize, error: impl std::fmt::Display) -> String {
    format!("{}:{line}: skipped an unreadable record: {error}", path.display())
}

/// Hands `records.jsonl` to `each` in blocks of whole lines (about `block_bytes` each), with
/// the number of lines before the block, reading the next block while `each` works on the
/// current one, so that a gigabyte of records never sits in memory at once. `each` returns the
/// number of lines in its block; it may change the block's bytes (the report parses lines in
/// place). A last line with no newline (a write cut short, even one that
/// parses: `record_writer` sets it aside) is not handed over; the warning about it is returned.
pub fn for_each_block(
    path: &Path,
    block_bytes: usize,
    mut each: impl FnMut(&mut [u8], usize) -> Result<usize> + Send,
) -> Result<Option<String>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let read = |file: &mut File, buf: &mut Vec<u8>| read_up_to(file, path, buf, block_bytes);
    let (mut current, mut next) = (Vec::new(), Vec::new());
    let mut at_end = read(&mut file, &mut current)? == 0;
    let mut lines_before = 0;
    loop {
        // Whole lines go now; the tail of a line cut by the block edge moves to the next block.
        let whole = memchr::memrchr(b'\n', &current).map_or(0, |i| i + 1);
        if at_end {
            let lines = lines_before + each(&mut current[..whole], lines_before)?;
            let partial = current[whole..].iter().any(|b| !b.is_ascii_whitespace());
            return Ok(partial.then(|| format!("{}:{}: skipped a partial last line", path.display(), lines + 1)));
        }
        next.clear();
        next.extend_from_slice(&current[whole..]);
        let (done, more) = rayon::join(|| each(&mut current[..whole], lines_before), || read(&mut file, &mut next));
        lines_before += done?;
        at_end = more? == 0;
        std::mem::swap(&mut current, &mut next);
    }
}

/// Parses one JSON line in place (simd-json; the line's bytes are changed), reusing `buffers`
/// from line to line. The report and [`read_records`] both read lines this way, so they skip the
/// same lines with the same message.
pub fn parse_line<'a, T: serde::Deserialize<'a>>(
    line: &'a mut [u8],
    buffers: &mut simd_json::Buffers,
) -> Result<T, simd_json::Error> {
    simd_json::Deserializer::from_slice_with_buffers(line, buffers).and_then(|mut de| T::deserialize(&mut de))
}

/// Reads every whole record, block by block like the report. Lines that do not parse (a torn
/// last line, manual edits, bytes that are not UTF-8) are skipped and reported in the returned
/// warnings.
pub fn read_records(path: &Path) -> Result<(Vec<Record>, Vec<String>)> {
    use rayon::prelude::*;
    let (mut records, mut warnings) = (Vec::new(), Vec::new());
    let partial = for_each_block(path, BLOCK_BYTES, |block, lines_before| {
        // A block ends with a newline, so the last piece of the split is empty.
        let mut lines: Vec<&mut [u8]> = block.split_mut(|&b| b == b'\n').collect();
        lines.pop();
        let count = lines.len();
        let parsed: Vec<Option<Result<Record, String>>> = lines
            .into_par_iter()
            .enumerate()
            .map_init(
                || simd_json::Buffers::new(4096),
                |buffers, (i, line)| {
                    (!line.iter().all(u8::is_ascii_whitespace))
                        .then(|| parse_line(line, buffers).map_err(|e| unreadable_line(path, lines_before + i + 1, e)))
                },
            )
            .collect();
        for p in parsed.into_iter().flatten() {
            match p {
                Ok(r) => records.push(r),
                Err(w) => warnings.push(w),
            }
        }
        Ok(count)
    })?;
    warnings.extend(partial);
    let superseded = superseded(path)?;
    if !superseded.is_empty() {
        records.retain(|r| !superseded.contains(&(r.job_id.clone(), r.finished_at.clone())));
    }
    Ok((records, warnings))
}
