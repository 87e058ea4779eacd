//! Reading a run's `records.jsonl` into a [`Gathered`]: block by block, each block split into
//! pieces of whole lines that the worker threads parse and gather in parallel, the partials
//! merged in file order.
use super::{row, Gathered};
use crate::store;
use anyhow::Result;
use rayon::prelude::*;
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
        let mut gathered = Gathered::default();
        let mut warnings = Vec::new();
        // Line numbers are only needed for warnings: each piece counts its own lines, and a
        // warning's number is fixed up from those counts afterwards.
        let partial = store::for_each_block(path, block_bytes, |block, lines_before| {
            let parts: Vec<Piece> = pieces(block).into_par_iter().map(gather_piece).collect::<Result<_>>()?;
            let mut lines = 0;
            for part in parts {
                gathered.merge(part.gathered)?;
                let before = lines_before + lines;
                warnings
                    .extend(part.skipped.into_iter().map(|(line, e)| store::unreadable_line(path, before + line, e)));
                lines += part.lines;
            }
            Ok(lines)
        })?;
        warnings.extend(partial);
        tracing::debug!("read {} records in {:.2} s", gathered.records, started.elapsed().as_secs_f64());
        Ok((gathered, warnings))
    }
}

/// What one piece of a block gave: its records gathered, the lines it skipped (1-based within
/// the piece) and its line count.
struct Piece {
    gathered: Gathered,
    skipped: Vec<(usize, serde_json::Error)>,
    lines: usize,
}

/// Gathers the records of `piece` (whole lines).
fn gather_piece(piece: &[u8]) -> Result<Piece> {
    let (mut gathered, mut skipped, mut lines) = (Gathered::default(), Vec::new(), 0);
    let mut start = 0;
    while start < piece.len() {
        let end = memchr::memchr(b'\n', &piece[start..]).map_or(piece.len(), |i| start + i);
        lines += 1;
        if let Err(e) = gathered.add_json_line(&piece[start..end]) {
            skipped.push((lines, e));
        }
        start = end + 1;
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
