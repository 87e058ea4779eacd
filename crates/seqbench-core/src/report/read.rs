//! Reading a run's `records.jsonl` into a [`Gathered`]: block by block, each block split into
//! pieces of whole lines that the worker threads parse in place (simd-json, the fastest of the
//! parsers measured on the record shape: `examples/parse_records.rs`) and gather, the partials
//! merged in file order.
use super::{row, Gathered};
use crate::store;
use anyhow::Result;
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::Path;

impl Gathered {
    /// Gathers a run's records file. Lines that do not parse (a torn last line, manual edits)
    /// are skipped and reported in the returned warnings.
    pub fn read(path: &Path) -> Result<(Gathered, Vec<String>)> {
        Gathered::read_in_blocks(path, store::BLOCK_BYTES)
    }

    /// [`Gathered::read`] with a given block size (tests use small ones to cut lines at edges).
    pub fn read_in_blocks(path: &Path, block_bytes: usize) -> Result<(Gathered, Vec<String>)> {
        let started = std::time::Instant::now();
        let superseded = store::superseded(path)?;
        let mut gathered = Gathered::default();
        let mut warnings = Vec::new();
        // Line numbers are only needed for warnings: each piece counts its own lines, and a
        // warning's number is fixed up from those counts as pieces merge.
        let partial = store::for_each_block(path, block_bytes, |block, lines_before| {
            let Some(block) = pieces(block)
                .into_par_iter()
                .map(|piece| gather_piece(piece, &superseded))
                .reduce_with(|a, b| a?.then(b?))
            else {
                return Ok(0);
            };
            let block = block?;
            gathered.merge(block.gathered)?;
            warnings.extend(
                block.skipped.into_iter().map(|(line, e)| store::unreadable_line(path, lines_before + line, e)),
            );
            Ok(block.lines)
        })?;
        warnings.extend(partial);
        tracing::debug!("read {} records in {:.2} s", gathered.records, started.elapsed().as_secs_f64());
        Ok((gathered, warnings))
    }
}

/// What some whole lines gave: their records gathered, the lines skipped (1-based within
/// them, with the parser's message) and their line count.
struct Piece {
    gathered: Gathered,
    skipped: Vec<(usize, String)>,
    lines: usize,
}

impl Piece {
    /// This piece followed by `later` (the lines right after it), as one.
    fn then(mut self, later: Piece) -> Result<Piece> {
        self.gathered.merge(later.gathered)?;
        self.skipped.extend(later.skipped.into_iter().map(|(line, e)| (self.lines + line, e)));
        self.lines += later.lines;
        Ok(self)
    }
}

/// Gathers the records of `piece` (whole lines), parsing each line in place; records replaced
/// by a newer record of their job (`superseded`, from `--retry-failed`) are counted apart.
fn gather_piece(piece: &mut [u8], superseded: &HashSet<(String, String)>) -> Result<Piece> {
    let (mut gathered, mut skipped, mut lines) = (Gathered::default(), Vec::new(), 0);
    // A record is about a kilobyte (1.3 kB with a 20-point loss curve, less without): the
    // columns start at about the piece's record count. 5 % faster on 1M records (medians of 8
    // alternating runs, 2.87 s against 3.02 s), from fewer page faults.
    gathered.frame.expected_rows = piece.len() / 1024 + 16;
    let mut buffers = simd_json::Buffers::new(4096);
    let mut rest = piece;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let (line, tail) = rest.split_at_mut(end);
        rest = tail.get_mut(1..).unwrap_or_default();
        lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue; // a blank line is no record
        }
        match store::parse_line::<row::Row>(line, &mut buffers) {
            Ok(r)
                if !superseded.is_empty()
                    && superseded.contains(&(r.job_id.to_string(), r.finished_at.to_string())) =>
            {
                gathered.superseded += 1;
            }
            Ok(r) => gathered.add(&r),
            Err(e) => skipped.push((lines, e.to_string())),
        }
    }
    gathered.frame.seal()?;
    Ok(Piece { gathered, skipped, lines })
}

/// Splits a block of whole lines into pieces of whole lines for the worker threads (two per
/// thread, so that an uneven piece does not leave a core idle for long; four per thread made
/// more pieces to seal and merge, and the 1M-record report 2-3 % slower, medians of 8
/// alternating runs, 3.05 s against 2.98 s).
fn pieces(block: &mut [u8]) -> Vec<&mut [u8]> {
    let target = (block.len() / (2 * rayon::current_num_threads())).max(1 << 20);
    let (mut out, mut rest) = (Vec::new(), block);
    while !rest.is_empty() {
        let cut = match rest.get(target..).and_then(|tail| memchr::memchr(b'\n', tail)) {
            Some(i) => target + i + 1,
            None => rest.len(),
        };
        let (piece, tail) = rest.split_at_mut(cut);
        out.push(piece);
        rest = tail;
    }
    out
}
