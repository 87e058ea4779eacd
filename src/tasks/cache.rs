//! On-disk cache of generated splits (ListOps, Pathfinder), keyed by the generator's name, its
//! full parameters and the split's seed: a second job with the same data loads it instead of
//! generating it again. Files are written to a temporary name and renamed, so an interrupted
//! write leaves no partial file; a file that does not parse is regenerated.
//!
//! Location: `$SEQBENCH_CACHE`, else `$SEQBENCH_HOME/data-cache`, else
//! `~/.cache/seqbench/data-cache`. `SEQBENCH_CACHE=off` disables it.
use super::{TokenSplit, Tokens};
use std::path::{Path, PathBuf};

pub const CACHE_ENV: &str = "SEQBENCH_CACHE";
/// The file layout. Generators put their own version in the key, bumped whenever their output
/// for the same parameters changes.
const FORMAT: &[u8; 8] = b"SQBSPLT2";

/// FNV-1a: stable across Rust versions and platforms (std's hasher promises neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}

pub fn dir() -> Option<PathBuf> {
    match std::env::var(CACHE_ENV) {
        Ok(v) if v == "off" => None,
        Ok(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => crate::env_info::seqbench_home().map(|home| home.join("data-cache")),
    }
}

/// The cache file for `generator` with `key` (its parameters and seed).
pub fn path_for(generator: &str, key: &serde_json::Value) -> Option<PathBuf> {
    let hash = fnv1a(full_key(generator, key).as_bytes());
    dir().map(|d| d.join(format!("{generator}-{hash:016x}.bin")))
}

fn full_key(generator: &str, key: &serde_json::Value) -> String {
    format!("{generator}\n{key}")
}

/// Header (format, n, seq_len, target_len, key length), the key itself (checked on load, so a
/// hash collision or a copied file cannot pass for other data), then the values.
fn encode(split: &TokenSplit, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + key.len() + 4 * (split.inputs.len() + split.targets.len()));
    out.extend_from_slice(FORMAT);
    for v in [split.n, split.seq_len, split.target_len, key.len()] {
        out.extend_from_slice(&(v as u64).to_le_bytes());
    }
    out.extend_from_slice(key.as_bytes());
    // Token ids and labels of every cached task fit in i32 (pixel values, small vocabularies).
    for v in split.inputs.iter().chain(split.targets.iter()) {
        out.extend_from_slice(&(v as i32).to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8], key: &str) -> Option<TokenSplit> {
    let header = bytes.get(..40)?;
    if &header[..8] != FORMAT {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(header[8 + 8 * i..16 + 8 * i].try_into().unwrap_or_default()) as usize;
    let (n, seq_len, target_len, key_len) = (word(0), word(1), word(2), word(3));
    let stored_key = bytes.get(40..40usize.checked_add(key_len)?)?;
    if stored_key != key.as_bytes() {
        return None;
    }
    let (n_in, n_tg) = (n.checked_mul(seq_len)?, n.checked_mul(target_len)?);
    let body = &bytes[40 + key_len..];
    if Some(body.len()) != n_in.checked_add(n_tg).and_then(|v| v.checked_mul(4)) {
        return None;
    }
    let (inputs, targets) = body.split_at(4 * n_in);
    let (inputs, targets) = (Tokens::from_le_i32(inputs), Tokens::from_le_i32(targets));
    Some(TokenSplit { inputs, targets, n, seq_len, target_len, accepted: None })
}

/// The split from the cache, or `generate`d and stored. A cache that cannot be written (read-only
/// home, full disk) is reported in the log and the split is still returned.
pub fn cached(
    generator: &str,
    key: &serde_json::Value,
    generate: impl FnOnce() -> anyhow::Result<TokenSplit>,
) -> anyhow::Result<TokenSplit> {
    match path_for(generator, key) {
        Some(path) => cached_at(&path, generator, &full_key(generator, key), generate),
        None => generate(),
    }
}

/// [`cached`] with the file and the full key given.
pub fn cached_at(
    path: &Path,
    generator: &str,
    key: &str,
    generate: impl FnOnce() -> anyhow::Result<TokenSplit>,
) -> anyhow::Result<TokenSplit> {
    if let Ok(bytes) = std::fs::read(path) {
        match decode(&bytes, key) {
            Some(split) => {
                tracing::info!("{generator}: loaded {} examples from {}", split.n, path.display());
                return Ok(split);
            }
            None => tracing::warn!("{}: unreadable cache file, generating again", path.display()),
        }
    }
    let started = std::time::Instant::now();
    let split = generate()?;
    tracing::info!("{generator}: generated {} examples in {:.1} s", split.n, started.elapsed().as_secs_f64());
    if let Err(e) = crate::store::write_atomic(path, &encode(&split, key)) {
        tracing::warn!("not caching {generator} data: {e:#}");
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_rejects_damage() {
        let split = TokenSplit::classification(vec![0i64, 255, 7, 1, 2, 3], vec![1, 0], 3);
        let bytes = encode(&split, "k");
        assert_eq!(decode(&bytes, "k"), Some(split));
        assert_eq!(decode(&bytes, "other"), None, "another key's data must not load");
        assert_eq!(decode(&bytes[..bytes.len() - 1], "k"), None, "a torn file must not load");
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert_eq!(decode(&wrong, "k"), None);
    }

    #[test]
    fn second_load_is_identical_and_faster() {
        let dir = std::env::temp_dir().join(format!("seqbench-cache-test-{}", std::process::id()));
        let path = dir.join("slow.bin");
        let slow = || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            TokenSplit::per_token((0..50_000).collect::<Vec<i64>>(), vec![1i64; 50_000], 100, 500)
        };
        let t0 = std::time::Instant::now();
        let first = cached_at(&path, "slow", "k", || Ok(slow())).unwrap();
        let generated = t0.elapsed();
        let t1 = std::time::Instant::now();
        let second = cached_at(&path, "slow", "k", || panic!("must load from the cache")).unwrap();
        let loaded = t1.elapsed();
        assert_eq!(first, second);
        assert!(loaded < generated, "load {loaded:?} vs generate {generated:?}");
        // A torn file (an interrupted write without the rename) is regenerated, not trusted.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let again =
            cached_at(&path, "slow", "k", || Ok(TokenSplit::per_token(vec![9i64; 4], vec![9i64; 4], 1, 4))).unwrap();
        assert_eq!(again.inputs, vec![9; 4]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn key_changes_the_file() {
        let a = path_for("g", &serde_json::json!({"n": 1}));
        let b = path_for("g", &serde_json::json!({"n": 2}));
        assert_ne!(a, b);
    }
}
