//! The `pathfinder` and `pathx` tasks: Pathfinder images from [`super::pathfinder`] (32×32,
//! 1,024 tokens; Path-X 128×128, 16,384 tokens) read row by row as pixel tokens (0–255), 2
//! classes (are the two markers joined by one contour?). Generated splits are cached on disk.
use super::pathfinder::{self, Difficulty, PathfinderParams};
use crate::models::{Head, TaskIo};
use crate::params::{ParamError, ParamMap};
use crate::tasks::{cache, BuildContext, Data, TaskData, TaskInfo, TokenSplit};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathfinderConfig {
    /// Image side: 32 for `pathfinder`, 128 for `pathx` (any size ≥ 16 works).
    pub size: usize,
    /// Contour length: easy, intermediate or hard (LRA's default, hard).
    #[serde(default)]
    pub difficulty: Difficulty,
    /// Distractor contours; by default 4 at 32×32, scaled with the area.
    #[serde(default)]
    pub distractors: Option<usize>,
    /// Split sizes (LRA: 160,000 / 20,000 / 20,000 of its 200,000 images).
    #[serde(default = "default_train")]
    pub train_examples: usize,
    #[serde(default = "default_eval")]
    pub val_examples: usize,
    #[serde(default = "default_eval")]
    pub test_examples: usize,
    #[serde(default)]
    pub data_seed: u64,
}

fn default_train() -> usize {
    160_000
}

fn default_eval() -> usize {
    20_000
}

impl PathfinderConfig {
    #[cfg(test)]
    fn with_size(size: usize) -> Self {
        PathfinderConfig {
            size,
            difficulty: Difficulty::Hard,
            distractors: None,
            train_examples: default_train(),
            val_examples: default_eval(),
            test_examples: default_eval(),
            data_seed: 0,
        }
    }

    pub fn params(&self) -> PathfinderParams {
        let mut p = PathfinderParams::new(self.size, self.difficulty);
        if let Some(d) = self.distractors {
            p.distractors = d;
        }
        p
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        self.params().validate().map_err(|m| ("size", m))?;
        let total = super::check_split_sizes(self.train_examples, self.val_examples, self.test_examples)?;
        let tokens = total * (self.size * self.size) as u128;
        if tokens > 4_000_000_000 {
            return Err(("train_examples", format!("examples × size² = {tokens} pixels exceeds 4·10⁹")));
        }
        Ok(())
    }

    fn io(&self) -> TaskIo {
        TaskIo { head: Head::MeanPool, ..TaskIo::per_token(256, 2, (self.size * self.size) as i64, false) }
    }
}

/// Part of the cache key: bump it whenever the generator's output for the same parameters changes.
const GENERATOR_VERSION: u32 = 1;

/// Train, validation and test splits, generated as one balanced set (cached).
pub fn splits(cfg: &PathfinderConfig) -> Result<[TokenSplit; 3]> {
    let total = cfg.train_examples + cfg.val_examples + cfg.test_examples;
    let p = cfg.params();
    let key = serde_json::json!({
        "version": GENERATOR_VERSION, "size": p.size, "difficulty": p.difficulty, "distractors": p.distractors,
        "n": total, "seed": cfg.data_seed
    });
    let all = cache::cached("pathfinder", &key, || {
        let (pixels, labels) = pathfinder::generate(&p, total, cfg.data_seed);
        Ok(TokenSplit::classification(pixels, labels.into_iter().map(i64::from).collect(), p.size * p.size))
    })?;
    Ok(all.into_train_val_test(cfg.train_examples, cfg.val_examples))
}

/// Writes the first `n` images of `split` as `NNNNN.png` with `labels.csv` under `out`, and
/// `tile.png`: the first (up to) 8 of them side by side, 4 a row, enlarged to about 128 px each.
pub fn export_png(task: &str, split: &TokenSplit, n: usize, out: &Path) -> Result<Vec<PathBuf>> {
    let side = (split.seq_len as f64).sqrt() as usize;
    anyhow::ensure!(
        side * side == split.seq_len && split.target_len == 1 && (task == PATHFINDER || task == PATHX),
        "--png applies to the pathfinder and pathx tasks (square images), not `{task}`"
    );
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    let mut labels = String::from("file,label\n");
    let images: Vec<Vec<u8>> =
        (0..n.min(split.n)).map(|i| split.example(i).0.iter().map(|&t| t.clamp(0, 255) as u8).collect()).collect();
    for (i, pixels) in images.iter().enumerate() {
        let y = split.example(i).1;
        let name = format!("{i:05}.png");
        let path = out.join(&name);
        pathfinder::write_png(&path, side, side, pixels).with_context(|| format!("writing {}", path.display()))?;
        labels += &format!("{name},{}\n", y[0]);
        written.push(path);
    }
    if !images.is_empty() {
        let first: Vec<&[u8]> = images.iter().take(8).map(Vec::as_slice).collect();
        let (w, h, pixels) = pathfinder::tile(&first, side, 4);
        // Nearest-neighbour enlargement so that 32×32 images are visible in a README.
        let k = (128 / side).max(1);
        let pixels: Vec<u8> =
            (0..h * k).flat_map(|y| (0..w * k).map(move |x| (y / k) * w + x / k)).map(|i| pixels[i]).collect();
        let (w, h) = (w * k, h * k);
        let path = out.join("tile.png");
        pathfinder::write_png(&path, w, h, &pixels).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    let labels_path = out.join("labels.csv");
    std::fs::write(&labels_path, labels).with_context(|| format!("writing {}", labels_path.display()))?;
    written.push(labels_path);
    Ok(written)
}

const PATHFINDER: &str = seqbench_core::tasks::PATHFINDER.name;
const PATHX: &str = seqbench_core::tasks::PATHX.name;

fn resolve_sized(combo: &ParamMap, size: usize) -> Result<serde_json::Value, ParamError> {
    let mut combo = combo.clone();
    combo.entry("size".into()).or_insert_with(|| (size as u64).into());
    crate::tasks::resolve_validated(&combo, PathfinderConfig::validate)
}

fn config(params: &serde_json::Value) -> Result<PathfinderConfig> {
    Ok(serde_json::from_value(params.clone())?)
}

fn build(params: &serde_json::Value, _: BuildContext) -> Result<TaskData> {
    let cfg = config(params)?;
    let [train, val, test] = splits(&cfg)?;
    Ok(TaskData { train, val: Some(val), test, evals: Vec::new(), io: cfg.io(), lr_override: None, lm: None })
}

pub const INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::PATHFINDER,
    resolve: |c| resolve_sized(c, 32),
    io: |p| Ok(config(p)?.io()),
    build: |params, ctx| build(params, ctx).map(Data::Tokens),
};

pub const PATHX_INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::PATHX,
    resolve: |c| resolve_sized(c, 128),
    io: |p| Ok(config(p)?.io()),
    build: |params, ctx| build(params, ctx).map(Data::Tokens),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_balanced_pixel_tokens() {
        let cfg = PathfinderConfig {
            train_examples: 200,
            val_examples: 20,
            test_examples: 20,
            ..PathfinderConfig::with_size(32)
        };
        let [train, val, test] = splits(&cfg).unwrap();
        assert_eq!((train.n, val.n, test.n, train.seq_len), (200, 20, 20, 1024));
        let positives = [&train, &val, &test].iter().flat_map(|s| s.targets.iter()).filter(|&y| y == 1).count();
        assert_eq!(positives, 120);
        assert!(train.inputs.iter().all(|p| (0..256).contains(&p)));
        assert!(train.inputs.iter().any(|p| p == 255) && train.inputs.iter().any(|p| p == 0));
    }
}
