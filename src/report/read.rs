//! Reading a run's records into a [`Gathered`]: from `records.bin` alone when its stamp says
//! it covers `records.jsonl` as it is; else from the JSON, block by block, taking each line
//! from the copy where its hash still matches.
use super::{row, Gathered};
use crate::sidecar::{self, Entry, SidecarReader};
use crate::store;
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::path::Path;

impl Gathered {
    /// Gathers a run's records file. Lines that do not parse (a torn last line, manual edits)
    /// are skipped and reported in the returned warnings.
    pub fn read(path: &Path) -> Result<(Gathered, Vec<String>)> {
        Gathered::read_in_blocks(path, store::BLOCK_BYTES)
    }

    /// [`Gathered::read`] with a given block size (tests use small ones to cut lines and
    /// entries at edges).
    pub fn read_in_blocks(path: &Path, block_bytes: usize) -> Result<(Gathered, Vec<String>)> {
        let started = std::time::Instant::now();
        let copy = SidecarReader::open(path);
        let (gathered, warnings) = match copy {
            Some(copy) if copy.stamped.is_some() => match read_copy(path, copy, block_bytes)? {
                Some(read) => read,
                None => read_json(path, SidecarReader::open(path), block_bytes)?,
            },
            copy => read_json(path, copy, block_bytes)?,
        };
        tracing::debug!(
            "read in {:.2} s: {} of {} records from {}",
            started.elapsed().as_secs_f64(),
            gathered.from_copy,
            gathered.records,
            sidecar::FILE
        );
        Ok((gathered, warnings))
    }
}

/// Reads a copy whose stamp holds: entries only, the JSON read just for lines that are no
/// records (their warning needs the text). None when the entries do not cover the JSON file
/// after all (the copy was cut or damaged): then the JSON is read. Entries past the stamped
/// size belong to records appended since, and wait for the next report.
fn read_copy(path: &Path, copy: SidecarReader, block_bytes: usize) -> Result<Option<(Gathered, Vec<String>)>> {
    let json_len = copy.stamped.unwrap_or(0) as usize;
    let json = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let (mut gathered, mut warnings, mut offset, mut fits) = (Gathered::default(), Vec::new(), 0, true);
    copy.for_each_block(block_bytes, |entries, lines_before| {
        let mut end = offset;
        let within = entries.iter().take_while(|e| {
            end += e.json_len + 1;
            end <= json_len
        });
        let entries = &entries[..within.count()];
        let mut parts = Vec::new();
        let per_part = (entries.len() / (4 * rayon::current_num_threads())).max(1024);
        let (mut at, mut line) = (offset, lines_before);
        for part in entries.chunks(per_part) {
            parts.push((part, at, line));
            at += part.iter().map(|e| e.json_len + 1).sum::<usize>();
            line += part.len();
        }
        offset = at;
        let gathered_parts: Vec<Option<(Gathered, Vec<String>)>> = parts
            .into_par_iter()
            .map(|(entries, at, before)| gather_entries(path, &json, entries, at, before))
            .collect::<Result<_>>()?;
        for part in gathered_parts {
            let Some((part, part_warnings)) = part else {
                fits = false;
                continue;
            };
            gathered.merge(part)?;
            warnings.extend(part_warnings);
        }
        Ok(())
    })?;
    if !fits || offset != json_len {
        tracing::debug!("{} does not cover {}; reading the JSON", sidecar::FILE, path.display());
        return Ok(None);
    }
    Ok(Some((gathered, warnings)))
}

/// Gathers `entries`, whose lines start at byte `at` of the JSON file, after `before` lines.
/// None when a line an entry stands for cannot be read there (the copy is damaged).
fn gather_entries(
    path: &Path,
    json: &std::fs::File,
    entries: &[Entry],
    mut at: usize,
    before: usize,
) -> Result<Option<(Gathered, Vec<String>)>> {
    use std::os::unix::fs::FileExt;
    let (mut gathered, mut warnings, mut line) = (Gathered::default(), Vec::new(), Vec::new());
    for (i, e) in entries.iter().enumerate() {
        match (!e.payload.is_empty()).then(|| sidecar::decode_row(e.payload)) {
            Some(Ok(r)) => {
                gathered.add(&r);
                gathered.from_copy += 1;
            }
            other => {
                if let Some(Err(damage)) = other {
                    tracing::debug!("{}:{}: {damage}; reading the JSON line", path.display(), before + i + 1);
                }
                line.resize(e.json_len + 1, 0);
                let read = json.read_exact_at(&mut line, at as u64);
                if read.is_err() || line.pop() != Some(b'\n') || memchr::memchr(b'\n', &line).is_some() {
                    return Ok(None);
                }
                if let Err(err) = gathered.add_json_line(&line) {
                    warnings.push(store::unreadable_line(path, before + i + 1, err));
                }
            }
        }
        at += e.json_len + 1;
    }
    gathered.frame.seal()?;
    Ok(Some((gathered, warnings)))
}

/// Reads the JSON block by block; `copy` (when there is one) gives the lines whose hash matches.
fn read_json(path: &Path, mut copy: Option<SidecarReader>, block_bytes: usize) -> Result<(Gathered, Vec<String>)> {
    let mut gathered = Gathered::default();
    let mut warnings = Vec::new();
    // Line numbers are only needed for warnings: each piece counts its own lines, and a
    // warning's number is fixed up from those counts afterwards.
    let partial = store::for_each_block(path, block_bytes, |block, lines_before| {
        let entries = match &mut copy {
            Some(copy) => copy.entries_for(block)?,
            None => Vec::new(),
        };
        let parts: Vec<Piece> = pieces_with_entries(block, &entries)
            .into_par_iter()
            .map(|(piece, entries)| gather_piece(piece, entries))
            .collect::<Result<_>>()?;
        let mut lines = 0;
        for part in parts {
            gathered.merge(part.gathered)?;
            let before = lines_before + lines;
            warnings.extend(part.skipped.into_iter().map(|(line, e)| store::unreadable_line(path, before + line, e)));
            lines += part.lines;
        }
        Ok(lines)
    })?;
    warnings.extend(partial);
    Ok((gathered, warnings))
}

/// What one piece of a block gave: its records gathered, the lines it skipped (1-based within
/// the piece) and its line count.
struct Piece {
    gathered: Gathered,
    skipped: Vec<(usize, serde_json::Error)>,
    lines: usize,
}

/// Gathers the records of `piece` (whole lines); `entries` are the `records.bin` entries of its
/// first lines, used where a line's hash still matches.
fn gather_piece(piece: &[u8], entries: &[Entry]) -> Result<Piece> {
    let (mut gathered, mut skipped, mut lines) = (Gathered::default(), Vec::new(), 0);
    let mut start = 0;
    while start < piece.len() {
        let entry = entries.get(lines);
        let end = match entry {
            Some(e) => start + e.json_len,
            None => memchr::memchr(b'\n', &piece[start..]).map_or(piece.len(), |i| start + i),
        };
        let text = &piece[start..end];
        lines += 1;
        start = end + 1;
        let copied = entry
            .filter(|e| !e.payload.is_empty() && sidecar::line_hash(text) == e.hash)
            .and_then(|e| sidecar::decode_row(e.payload).ok());
        if let Some(r) = copied {
            gathered.add(&r);
            gathered.from_copy += 1;
            continue;
        }
        if let Err(e) = gathered.add_json_line(text) {
            skipped.push((lines, e));
        }
    }
    gathered.frame.seal()?;
    Ok(Piece { gathered, skipped, lines })
}

impl Gathered {
    /// Adds the record of a JSON line; a blank line is none.
    fn add_json_line(&mut self, text: &[u8]) -> Result<(), serde_json::Error> {
        if !text.iter().all(u8::is_ascii_whitespace) {
            self.add(&serde_json::from_slice::<row::Row>(text)?);
        }
        Ok(())
    }
}

/// [`pieces`], each with the entries of `records.bin` that start in it (`entries` copy the
/// first lines of `block`, in order).
fn pieces_with_entries<'b, 'e>(block: &'b [u8], entries: &'e [Entry<'e>]) -> Vec<(&'b [u8], &'e [Entry<'e>])> {
    let (mut out, mut end, mut next, mut entry_start) = (Vec::new(), 0, 0, 0);
    for piece in pieces(block) {
        end += piece.len();
        let first = next;
        while next < entries.len() && entry_start < end {
            entry_start += entries[next].json_len + 1;
            next += 1;
        }
        out.push((piece, &entries[first..next]));
    }
    out
}

/// Splits a block of whole lines into pieces of whole lines for the worker threads (several per
/// thread, so that an uneven piece does not leave a core idle).
fn pieces(block: &[u8]) -> Vec<&[u8]> {
    let target = (block.len() / (4 * rayon::current_num_threads())).max(1 << 20);
    let (mut out, mut rest) = (Vec::new(), block);
    while !rest.is_empty() {
        let cut = match rest.get(target..).and_then(|tail| memchr::memchr(b'\n', tail)) {
            Some(i) => target + i + 1,
            None => rest.len(),
        };
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
    }
    out
}
