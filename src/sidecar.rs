//! `records.bin`: a binary copy of `records.jsonl`, kept beside it so that a report does not
//! have to parse a million JSON lines (number parsing and key matching were most of its time).
//! `records.jsonl` stays the record of truth: every entry carries the length and hash of the
//! JSON line it copies, a report uses an entry only when the line still matches, and reads
//! the JSON wherever the copy is missing, stale or damaged. The file is disposable: the
//! record writer rebuilds whatever does not match when a run starts or resumes.
//!
//! When the copy covers the whole JSON file, the writer stamps it with that file's size, change
//! time, inode and device, and stamps again after each append only if the JSON had not changed
//! since (an edit while a run appends unstamps the copy). A report that finds the stamp still
//! true reads the copy alone (the JSON is not even read); otherwise each entry is checked
//! against its line.
//!
//! Layout (little-endian): a header (magic, layout fingerprint, stamp), then one entry per
//! line of `records.jsonl`, in order: payload length (u32), JSON line length without its newline
//! (u32), xxh3 hash of the line (u64), payload. An empty payload stands for a line that is not
//! a record (the report reads it as JSON and warns, as it would without the copy).
use crate::record::{CurvePoint, ForecastSample, Measurements, Record, Status};
use crate::report::row::{Params, Row};
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const FILE: &str = "records.bin";
const MAGIC: &[u8; 8] = b"SQBRECS\x01";
/// Magic and layout fingerprint, then the stamp.
const LAYOUT_LEN: usize = 16;
const STAMP_LEN: usize = 32;
const HEADER_LEN: usize = LAYOUT_LEN + STAMP_LEN;
const ENTRY_HEAD: usize = 16;
/// Bump when the encoding changes (field additions change the fingerprint by themselves).
const FORMAT_VERSION: u32 = 2;

/// Identifies the payload layout: a file written by a seqbench with other fields is not read.
fn fingerprint() -> u64 {
    let mut layout = format!("v{FORMAT_VERSION};");
    for (name, ty) in Measurements::FIELDS.iter().zip(Measurements::FIELD_TYPES) {
        layout += &format!("{name}:{ty};");
    }
    xxhash_rust::xxh3::xxh3_64(layout.as_bytes())
}

fn layout() -> [u8; LAYOUT_LEN] {
    let mut h = [0; LAYOUT_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&fingerprint().to_le_bytes());
    h
}

/// What tells a file's versions apart without reading it: size, last change (ns), inode, device.
/// The change time (ctime), not the modification time: no tool can set it back.
fn stamp(meta: &std::fs::Metadata) -> [u8; STAMP_LEN] {
    use std::os::unix::fs::MetadataExt;
    let changed = (meta.ctime() as u64).wrapping_mul(1_000_000_000).wrapping_add(meta.ctime_nsec() as u64);
    let mut out = [0; STAMP_LEN];
    for (i, v) in [meta.len(), changed, meta.ino(), meta.dev()].into_iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
    }
    out
}

pub fn line_hash(line: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(line)
}

/// A payload that does not decode (damage the line hash cannot see).
#[derive(Debug)]
pub struct BinError(&'static str);

impl std::fmt::Display for BinError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "damaged {FILE} entry: {}", self.0)
    }
}

fn take_bytes<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], BinError> {
    if input.len() < n {
        return Err(BinError("cut short"));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn take_u8(input: &mut &[u8]) -> Result<u8, BinError> {
    Ok(take_bytes(input, 1)?[0])
}

fn take_u32(input: &mut &[u8]) -> Result<u32, BinError> {
    Ok(u32::from_le_bytes(take_bytes(input, 4)?.try_into().expect("4 bytes")))
}

fn take_u64(input: &mut &[u8]) -> Result<u64, BinError> {
    Ok(u64::from_le_bytes(take_bytes(input, 8)?.try_into().expect("8 bytes")))
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn take_str<'a>(input: &mut &'a [u8]) -> Result<&'a str, BinError> {
    let n = take_u32(input)? as usize;
    std::str::from_utf8(take_bytes(input, n)?).map_err(|_| BinError("text that is not UTF-8"))
}

/// A value as it is written in a payload.
pub trait Bin: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn take(input: &mut &[u8]) -> Result<Self, BinError>;
}

impl Bin for u64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn take(input: &mut &[u8]) -> Result<Self, BinError> {
        take_u64(input)
    }
}

impl Bin for f64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_le_bytes());
    }
    fn take(input: &mut &[u8]) -> Result<Self, BinError> {
        Ok(f64::from_bits(take_u64(input)?))
    }
}

impl Bin for String {
    fn put(&self, out: &mut Vec<u8>) {
        put_str(self, out);
    }
    fn take(input: &mut &[u8]) -> Result<Self, BinError> {
        take_str(input).map(str::to_string)
    }
}

impl<T: Bin> Bin for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.put(out);
            }
        }
    }
    fn take(input: &mut &[u8]) -> Result<Self, BinError> {
        match take_u8(input)? {
            0 => Ok(None),
            1 => T::take(input).map(Some),
            _ => Err(BinError("bad option tag")),
        }
    }
}

impl<T: Bin> Bin for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        for v in self {
            v.put(out);
        }
    }
    fn take(input: &mut &[u8]) -> Result<Self, BinError> {
        let n = take_u32(input)? as usize;
        // Each element takes at least a byte: a damaged count cannot ask for more than that.
        let mut out = Vec::with_capacity(n.min(input.len()));
        for _ in 0..n {
            out.push(T::take(input)?);
        }
        Ok(out)
    }
}

impl Bin for CurvePoint {
    fn put(&self, out: &mut Vec<u8>) {
        self.step.put(out);
        self.loss.put(out);
        self.eval_accuracy.put(out);
    }
    fn take(input: &mut &[u8]) -> Result<Self, BinError> {
        Ok(CurvePoint { step: u64::take(input)?, loss: f64::take(input)?, eval_accuracy: Bin::take(input)? })
    }
}

impl Bin for ForecastSample {
    fn put(&self, out: &mut Vec<u8>) {
        (self.window as u64).put(out);
        self.input.put(out);
        self.truth.put(out);
        self.prediction.put(out);
    }
    fn take(input: &mut &[u8]) -> Result<Self, BinError> {
        Ok(ForecastSample {
            window: u64::take(input)? as usize,
            input: Vec::take(input)?,
            truth: Vec::take(input)?,
            prediction: Vec::take(input)?,
        })
    }
}

const STATUSES: [Status; 7] =
    [Status::Ok, Status::Diverged, Status::Failed, Status::Panic, Status::Crashed, Status::Timeout, Status::Oom];

/// Parameter values: JSON scalars by type; arrays and objects as JSON text.
fn put_param(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Null => out.push(0),
        Value::Bool(b) => out.push(1 + *b as u8),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push(3);
                (i as u64).put(out);
            } else if let Some(u) = n.as_u64() {
                out.push(4);
                u.put(out);
            } else {
                out.push(5);
                n.as_f64().unwrap_or(f64::NAN).put(out);
            }
        }
        Value::String(s) => {
            out.push(6);
            put_str(s, out);
        }
        other => {
            out.push(7);
            put_str(&other.to_string(), out);
        }
    }
}

fn take_param(input: &mut &[u8]) -> Result<serde_json::Value, BinError> {
    use serde_json::Value;
    Ok(match take_u8(input)? {
        0 => Value::Null,
        1 => Value::Bool(false),
        2 => Value::Bool(true),
        3 => Value::from(take_u64(input)? as i64),
        4 => Value::from(take_u64(input)?),
        5 => serde_json::Number::from_f64(f64::take(input)?).map_or(Value::Null, Value::Number),
        6 => Value::String(take_str(input)?.to_string()),
        7 => serde_json::from_str(take_str(input)?).map_err(|_| BinError("bad parameter text"))?,
        _ => return Err(BinError("bad parameter tag")),
    })
}

/// The record a JSON line holds, as a report parsing it would see it (NaN written as null reads
/// back as none): the copy is encoded from the line, not from the record in memory.
fn parse_record(line: &[u8]) -> Option<Record> {
    serde_json::from_slice(line).ok()
}

/// The fields a report reads, in the order [`decode_row`] takes them.
fn encode_payload(r: &Record, out: &mut Vec<u8>) {
    for s in [&r.job_id, &r.suite, &r.task, &r.task_label, &r.model, &r.arch] {
        put_str(s, out);
    }
    r.seed.put(out);
    out.extend_from_slice(&(r.params.len() as u32).to_le_bytes());
    for (k, v) in &r.params {
        put_str(k, out);
        put_param(v, out);
    }
    r.swept.put(out);
    out.push(STATUSES.iter().position(|s| *s == r.status).expect("every status is listed") as u8);
    r.reason.put(out);
    r.wall_s.put(out);
    r.measurements.put_bin(out);
}

/// The report's view of a record from its payload, strings borrowed from it.
pub fn decode_row(mut input: &[u8]) -> Result<Row<'_>, BinError> {
    let input = &mut input;
    let mut text = || take_str(input).map(Into::into);
    let (job_id, suite, task, task_label, model, arch) = (text()?, text()?, text()?, text()?, text()?, text()?);
    let seed = u64::take(input)?;
    let n = take_u32(input)? as usize;
    let mut params = Vec::with_capacity(n.min(input.len()));
    for _ in 0..n {
        params.push((take_str(input)?.into(), take_param(input)?));
    }
    let n = take_u32(input)? as usize;
    let mut swept = Vec::with_capacity(n.min(input.len()));
    for _ in 0..n {
        swept.push(take_str(input)?.into());
    }
    let status = *STATUSES.get(take_u8(input)? as usize).ok_or(BinError("bad status"))?;
    let reason = match take_u8(input)? {
        0 => None,
        1 => Some(take_str(input)?.into()),
        _ => return Err(BinError("bad option tag")),
    };
    let wall_s = f64::take(input)?;
    let measurements = Measurements::take_bin(input)?;
    if !input.is_empty() {
        return Err(BinError("bytes left over"));
    }
    Ok(Row {
        job_id,
        suite,
        task,
        task_label,
        model,
        arch,
        seed,
        params: Params(params),
        swept,
        status,
        reason,
        wall_s,
        measurements,
    })
}

/// Appends the entry for `line` (without its newline): `record`'s payload, or none when the
/// line is not a record.
fn encode_entry(record: Option<&Record>, line: &[u8], out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; ENTRY_HEAD]);
    if let Some(r) = record {
        encode_payload(r, out);
    }
    let payload = (out.len() - at - ENTRY_HEAD) as u32;
    out[at..at + 4].copy_from_slice(&payload.to_le_bytes());
    out[at + 4..at + 8].copy_from_slice(&(line.len() as u32).to_le_bytes());
    out[at + 8..at + 16].copy_from_slice(&line_hash(line).to_le_bytes());
}

/// One entry: the length and hash of the JSON line it copies, and its payload.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    pub json_len: usize,
    pub hash: u64,
    pub payload: &'a [u8],
}

/// No record's payload comes near this (a forecast sample of 720 steps is 17 kB): a larger
/// length is damage, and reading on would only pull the rest of the file into memory.
const MAX_PAYLOAD: usize = 64 << 20;

/// An entry's head: payload length, JSON line length, hash; None when `bytes` ends first or
/// the payload length is damaged.
fn head_at(bytes: &[u8]) -> Option<(usize, usize, u64)> {
    let head = bytes.get(..ENTRY_HEAD)?;
    let payload_len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    let json_len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
    let hash = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
    (payload_len <= MAX_PAYLOAD).then_some((payload_len, json_len, hash))
}

/// The entry at the start of `bytes` and its size, or None when `bytes` ends first.
fn entry_at(bytes: &[u8]) -> Option<(Entry<'_>, usize)> {
    let (payload_len, json_len, hash) = head_at(bytes)?;
    let payload = bytes.get(ENTRY_HEAD..ENTRY_HEAD + payload_len)?;
    Some((Entry { json_len, hash, payload }, ENTRY_HEAD + payload_len))
}

/// Where the whole entries at the start of a buffer are (found while the buffer is read, so
/// that handing them out is a pass over this list, not over the buffer).
#[derive(Default)]
struct Spans {
    /// Payload start and length, JSON line length and hash of each entry.
    entries: Vec<(usize, usize, usize, u64)>,
    /// Bytes the whole entries take.
    whole: usize,
    /// Whether the next entry's length is damaged: nothing after it can be found.
    damaged: bool,
}

impl Spans {
    fn of(bytes: &[u8]) -> Self {
        let mut spans = Spans::default();
        while let Some((entry, size)) = entry_at(&bytes[spans.whole..]) {
            spans.entries.push((spans.whole + ENTRY_HEAD, entry.payload.len(), entry.json_len, entry.hash));
            spans.whole += size;
        }
        let rest = &bytes[spans.whole..];
        spans.damaged = rest.len() >= ENTRY_HEAD && head_at(rest).is_none();
        spans
    }

    fn entries<'a>(&self, bytes: &'a [u8]) -> Vec<Entry<'a>> {
        let entry = |&(at, len, json_len, hash): &(usize, usize, usize, u64)| Entry {
            json_len,
            hash,
            payload: &bytes[at..at + len],
        };
        self.entries.iter().map(entry).collect()
    }
}

/// Keeps `records.bin` in step with `records.jsonl` as records are appended.
pub struct SidecarWriter {
    file: File,
    buffer: Vec<u8>,
    /// The stamp last written; None once the JSON changed behind the writer's back (then the
    /// copy stays unstamped until the next open checks it line by line).
    stamped: Option<[u8; STAMP_LEN]>,
}

impl SidecarWriter {
    /// Opens the copy beside `jsonl_path`, whose whole text is `jsonl` (whole lines) as the file
    /// `meta` describes, and brings it up to date: entries are kept while they match the lines,
    /// the rest is cut off and written again from the JSON (all of it for a run written before
    /// there was a copy).
    pub fn open(jsonl_path: &Path, jsonl: &[u8], meta: &std::fs::Metadata) -> Result<Self> {
        let path = jsonl_path.with_file_name(FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut existing = Vec::new();
        file.read_to_end(&mut existing).with_context(|| format!("reading {}", path.display()))?;
        let (kept, covered) = matching_prefix(&existing, jsonl);
        let mut out = Vec::new();
        if kept == 0 {
            out.extend_from_slice(&layout());
            out.extend_from_slice(&[0; STAMP_LEN]);
        }
        let mut rewritten = 0;
        for line in jsonl[covered..].split(|&b| b == b'\n').take(memchr::memchr_iter(b'\n', &jsonl[covered..]).count())
        {
            encode_entry(parse_record(line).as_ref(), line, &mut out);
            rewritten += 1;
        }
        let writing = || format!("writing {}", path.display());
        file.set_len(kept as u64).with_context(writing)?;
        file.seek(SeekFrom::End(0)).with_context(writing)?;
        file.write_all(&out).with_context(writing)?;
        if rewritten > 0 {
            tracing::info!("{}: wrote {rewritten} entries from {}", path.display(), jsonl_path.display());
        }
        let mut writer = SidecarWriter { file, buffer: Vec::new(), stamped: None };
        writer.stamp(meta).with_context(writing)?;
        Ok(writer)
    }

    /// Appends the entry for the record whose JSON line (without newline) is `line`, just
    /// appended: `before` and `after` describe the JSON file before and after it was.
    pub fn append(&mut self, line: &[u8], before: &std::fs::Metadata, after: &std::fs::Metadata) -> Result<()> {
        use std::os::unix::fs::FileExt;
        if self.stamped.is_some() && self.stamped != Some(stamp(before)) {
            tracing::warn!("records.jsonl changed outside this run; reports will check each line against {FILE}");
            self.file.write_all_at(&[0; STAMP_LEN], LAYOUT_LEN as u64)?;
            self.stamped = None;
        }
        self.buffer.clear();
        encode_entry(parse_record(line).as_ref(), line, &mut self.buffer);
        self.file.write_all(&self.buffer)?;
        if self.stamped.is_some() {
            self.stamp(after)?;
        }
        Ok(())
    }

    /// Marks the copy as covering the JSON file `jsonl` describes (written last, so that a
    /// crash before it leaves a stamp that is not true).
    fn stamp(&mut self, jsonl: &std::fs::Metadata) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let stamp = stamp(jsonl);
        self.file.write_all_at(&stamp, LAYOUT_LEN as u64)?;
        self.stamped = Some(stamp);
        Ok(())
    }
}

/// How much of an existing copy still matches `jsonl`: its bytes to keep (0: none, not even the
/// header) and the bytes of `jsonl` those entries cover.
fn matching_prefix(existing: &[u8], jsonl: &[u8]) -> (usize, usize) {
    if existing.get(..LAYOUT_LEN) != Some(&layout()[..]) || existing.len() < HEADER_LEN {
        return (0, 0);
    }
    let (mut at, mut covered) = (HEADER_LEN, 0);
    while let Some((entry, size)) = entry_at(&existing[at..]) {
        let end = covered + entry.json_len;
        let matches = jsonl.get(end) == Some(&b'\n') && line_hash(&jsonl[covered..end]) == entry.hash;
        if !matches {
            break;
        }
        at += size;
        covered = end + 1;
    }
    (at, covered)
}

/// Reads `records.bin` alongside the blocks of `records.jsonl` a report reads.
pub struct SidecarReader {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
    /// Start of the unread entries in `buffer`.
    start: usize,
    at_end: bool,
    /// Whether the entries went on matching the lines; once not, the rest is read as JSON.
    in_step: bool,
    /// The size of `records.jsonl` when the stamp says the copy covers it as it is (the report
    /// checks that the entries do add up to it: the copy itself may have been cut).
    pub stamped: Option<u64>,
}

/// Bytes of `records.bin` read at a time.
const READ_BYTES: usize = 8 << 20;

impl SidecarReader {
    /// The copy beside `jsonl_path`, or None when there is none or it has another layout.
    pub fn open(jsonl_path: &Path) -> Option<Self> {
        let path = jsonl_path.with_file_name(FILE);
        let mut file = File::open(&path).ok()?;
        let mut head = [0; HEADER_LEN];
        if file.read_exact(&mut head).is_err() || head[..LAYOUT_LEN] != layout() {
            tracing::debug!(
                "{} is cut short or has another layout (another seqbench version); reading the JSON",
                path.display()
            );
            return None;
        }
        let stamped = std::fs::metadata(jsonl_path).ok().filter(|m| head[LAYOUT_LEN..] == stamp(m)).map(|m| m.len());
        Some(SidecarReader { path, file, buffer: Vec::new(), start: 0, at_end: false, in_step: true, stamped })
    }

    /// The entries of the first lines of `block` (whole lines, the next ones of the file): every
    /// line's while the copy lasts and its line lengths match, fewer where it ends or stops
    /// matching (those lines and the rest of the file are read as JSON). A line's hash is left
    /// to the caller to compare.
    pub fn entries_for(&mut self, block: &[u8]) -> Result<Vec<Entry<'_>>> {
        let mut found: Vec<(usize, usize, usize, u64)> = Vec::new();
        if !self.in_step {
            return Ok(Vec::new());
        }
        self.buffer.drain(..self.start);
        self.start = 0;
        let (mut at, mut covered) = (0, 0);
        while covered < block.len() {
            let rest = &self.buffer[at..];
            // The line's length is checked from the entry's head, before its payload is waited
            // for: a damaged length never pulls the rest of the file in.
            let fits = |json_len: usize| {
                let end = covered + json_len;
                block.get(end) == Some(&b'\n') && memchr::memchr(b'\n', &block[covered..end]).is_none()
            };
            match head_at(rest) {
                Some((_, json_len, _)) if !fits(json_len) => {
                    tracing::debug!("{} stops matching the JSON here; reading the rest as JSON", self.path.display());
                    self.in_step = false;
                    break;
                }
                None if rest.len() >= ENTRY_HEAD => {
                    tracing::debug!("{} is damaged here; reading the rest as JSON", self.path.display());
                    self.in_step = false;
                    break;
                }
                _ => {}
            }
            let Some((entry, size)) = entry_at(rest) else {
                if self.at_end {
                    self.in_step = false;
                    break;
                }
                self.read_more()?;
                continue;
            };
            found.push((at + ENTRY_HEAD, entry.payload.len(), entry.json_len, entry.hash));
            at += size;
            covered += entry.json_len + 1;
        }
        self.start = at;
        let buffer = &self.buffer;
        Ok(found
            .into_iter()
            .map(|(from, len, json_len, hash)| Entry { json_len, hash, payload: &buffer[from..from + len] })
            .collect())
    }

    /// For a stamped copy: hands its entries to `each` about `block_bytes` at a time, with the
    /// number of entries before them, reading the next block while `each` works. An entry cut
    /// short at the end (a writer appending right now) is left for the next report.
    pub fn for_each_block(
        mut self,
        block_bytes: usize,
        mut each: impl FnMut(&[Entry], usize) -> Result<()> + Send,
    ) -> Result<()> {
        let (mut current, mut next) = (Vec::new(), Vec::new());
        let mut at_end = self.fill(&mut current, block_bytes)?;
        let mut spans = Spans::of(&current);
        let mut before = 0;
        loop {
            let entries = spans.entries(&current);
            // Past a damaged length there is nothing to find: the caller sees that the entries
            // fall short of the JSON, and reads that.
            if at_end || spans.damaged {
                return each(&entries, before);
            }
            next.clear();
            next.extend_from_slice(&current[spans.whole..]);
            let read_next = || -> Result<(bool, Spans)> {
                let at_end = self.fill(&mut next, block_bytes)?;
                Ok((at_end, Spans::of(&next)))
            };
            let (done, more) = rayon::join(|| each(&entries, before), read_next);
            done?;
            before += entries.len();
            drop(entries);
            (at_end, spans) = more?;
            std::mem::swap(&mut current, &mut next);
        }
    }

    /// Appends up to `bytes` of the file to `buffer`; true when the file ended first.
    fn fill(&mut self, buffer: &mut Vec<u8>, bytes: usize) -> Result<bool> {
        Ok(crate::store::read_up_to(&mut self.file, &self.path, buffer, bytes)? < bytes)
    }

    fn read_more(&mut self) -> Result<()> {
        self.at_end = crate::store::read_up_to(&mut self.file, &self.path, &mut self.buffer, READ_BYTES)? < READ_BYTES;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_reads_back_as_the_row_of_its_record_and_a_cut_one_is_an_error() {
        let mut record = crate::record::tests::full_record();
        for (k, v) in [
            ("model.kind", json!("s4d")),
            ("model.bidirectional", json!(true)),
            ("train.lr", json!(0.001)),
            ("task.offset", json!(-3)),
            ("task.big", json!(u64::MAX)),
            ("task.none", json!(null)),
            ("task.list", json!([1, "a"])),
        ] {
            record.params.insert(k.into(), v);
        }
        for status in STATUSES {
            record.status = status;
            let mut out = Vec::new();
            encode_payload(&record, &mut out);
            let row = decode_row(&out).unwrap();
            let expected = Row::from(&record);
            let texts =
                |r: &Row| [&r.job_id, &r.suite, &r.task, &r.task_label, &r.model, &r.arch].map(|t| t.to_string());
            assert_eq!(texts(&row), texts(&expected));
            assert_eq!((row.seed, row.status, row.wall_s), (expected.seed, expected.status, expected.wall_s));
            assert_eq!(row.params.0, expected.params.0);
            assert_eq!(row.swept, expected.swept);
            assert_eq!(row.reason, expected.reason);
            assert_eq!(row.measurements, record.measurements);
            for cut in 0..out.len() {
                assert!(decode_row(&out[..cut]).is_err(), "cut at {cut} of {}", out.len());
            }
        }
    }

    #[test]
    fn the_payload_encoding_is_pinned() {
        let mut out = Vec::new();
        encode_payload(&crate::record::tests::full_record(), &mut out);
        let pinned = (FORMAT_VERSION, 6665468613858169269);
        assert_eq!(
            (FORMAT_VERSION, xxhash_rust::xxh3::xxh3_64(&out)),
            pinned,
            "the payload encoding changed: bump FORMAT_VERSION (old copies must not be read), then pin the new hash"
        );
    }

    #[test]
    fn the_layout_fingerprint_follows_the_measurement_fields() {
        assert_eq!(Measurements::FIELDS.len(), Measurements::FIELD_TYPES.len());
        assert!(Measurements::FIELD_TYPES.contains(&"Vec<CurvePoint>"));
        assert_eq!(layout()[..8], MAGIC[..]);
        assert_eq!(fingerprint(), fingerprint());
    }
}
