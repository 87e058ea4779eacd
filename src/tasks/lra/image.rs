//! LRA `image`: CIFAR-10 (Krizhevsky 2009) as a sequence of 1,024 grayscale pixels, 256-symbol
//! vocabulary, 10 classes. Grayscale is computed as LRA's `tf.image.rgb_to_grayscale` does for
//! 8-bit images: weights 0.2989 R + 0.5870 G + 0.1140 B on values scaled to [0, 1], then back to
//! 8 bits as `trunc(gray · 255.5)`.
//!
//! Splits: every `data_batch_*.bin` present beside `data_batch_1.bin` (the shipped copy has
//! batch 1 only; batches 2–5 are read when they appear), with the last `val_fraction` (LRA: the
//! last 5k of 50k, 10 %) held out for validation; `test_batch.bin` is the test split.
//! `downsample: k` averages k×k pixel blocks (not in LRA: for small CPU runs).
use super::{check_count, subset};
use crate::models::{Head, TaskIo};
use crate::params::{ParamError, ParamMap};
use crate::tasks::{data, BuildContext, Data, TaskData, TaskInfo, TokenSplit};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const SOURCE: &str =
    "CIFAR-10 in its original binary batch format (cifar-10-batches-bin), as in ../shared/datasets/cifar10";
const SIDE: usize = 32;
const RECORD: usize = 1 + 3 * SIDE * SIDE;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageConfig {
    /// Average k×k blocks: 1 (LRA, 1,024 pixels), 2 (256) or 4 (64).
    pub downsample: usize,
    /// Fraction of the training records, from the end, held out for validation.
    pub val_fraction: f64,
    /// Examples used from each split (a seeded random subset); all when left out.
    pub train_examples: Option<usize>,
    pub val_examples: Option<usize>,
    pub test_examples: Option<usize>,
    pub data_seed: u64,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            downsample: 1,
            val_fraction: 0.1,
            train_examples: None,
            val_examples: None,
            test_examples: None,
            data_seed: 0,
        }
    }
}

impl ImageConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if ![1, 2, 4].contains(&self.downsample) {
            return Err(("downsample", format!("must be 1, 2 or 4, got {}", self.downsample)));
        }
        if !(0.0..=0.5).contains(&self.val_fraction) {
            return Err(("val_fraction", format!("must be in [0, 0.5], got {}", self.val_fraction)));
        }
        check_count("train_examples", self.train_examples)?;
        check_count("val_examples", self.val_examples)?;
        check_count("test_examples", self.test_examples)
    }

    fn side(&self) -> usize {
        SIDE / self.downsample
    }

    fn io(&self) -> TaskIo {
        let len = (self.side() * self.side()) as i64;
        TaskIo { head: Head::MeanPool, ..TaskIo::per_token(256, 10, len, false) }
    }
}

/// LRA's grayscale of one 8-bit RGB pixel.
pub fn gray(r: u8, g: u8, b: u8) -> u8 {
    let y = 0.2989f32 * (r as f32 / 255.0) + 0.5870 * (g as f32 / 255.0) + 0.1140 * (b as f32 / 255.0);
    (y * 255.5) as u8
}

/// Images (grayscale, row-major 32×32) and labels of one batch file.
pub fn read_batch(path: &Path) -> Result<(Vec<u8>, Vec<i64>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        !bytes.is_empty() && bytes.len() % RECORD == 0,
        "{}: {} bytes is not a whole number of {RECORD}-byte CIFAR-10 records (label + 3×1024 pixels)",
        path.display(),
        bytes.len()
    );
    let n = bytes.len() / RECORD;
    let (mut pixels, mut labels) = (Vec::with_capacity(n * SIDE * SIDE), Vec::with_capacity(n));
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        anyhow::ensure!(rec[0] < 10, "{}: record {i} has label {}, expected 0–9", path.display(), rec[0]);
        labels.push(rec[0] as i64);
        let (r, rest) = rec[1..].split_at(SIDE * SIDE);
        let (g, b) = rest.split_at(SIDE * SIDE);
        pixels.extend((0..SIDE * SIDE).map(|p| gray(r[p], g[p], b[p])));
    }
    Ok((pixels, labels))
}

/// `data_batch_1.bin`, `data_batch_2.bin`, … as far as they exist, beside the first.
fn training_batches(data_dir: Option<&Path>) -> Result<Vec<PathBuf>> {
    let first = data::locate("cifar10/data_batch_1.bin", data_dir, SOURCE)?;
    let dir = first.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((1..).map(|i| dir.join(format!("data_batch_{i}.bin"))).take_while(|p| p.is_file()).collect())
}

/// Averages k×k blocks of 32×32 images.
fn downsample(pixels: &[u8], k: usize) -> Vec<i64> {
    let side = SIDE / k;
    pixels
        .chunks_exact(SIDE * SIDE)
        .flat_map(|img| {
            (0..side * side).map(move |o| {
                let (y, x) = (o / side * k, o % side * k);
                let sum: usize = (0..k * k).map(|d| img[(y + d / k) * SIDE + x + d % k] as usize).sum();
                (sum / (k * k)) as i64
            })
        })
        .collect()
}

fn to_split(pixels: &[u8], labels: &[i64], pick: &[usize], cfg: &ImageConfig) -> TokenSplit {
    let per = SIDE * SIDE;
    let chosen: Vec<u8> = pick.iter().flat_map(|&i| pixels[i * per..(i + 1) * per].iter().copied()).collect();
    let side = cfg.side();
    TokenSplit::classification(
        downsample(&chosen, cfg.downsample),
        pick.iter().map(|&i| labels[i]).collect(),
        side * side,
    )
}

fn config(params: &serde_json::Value) -> Result<ImageConfig> {
    Ok(serde_json::from_value(params.clone())?)
}

fn resolve(combo: &ParamMap) -> Result<serde_json::Value, ParamError> {
    crate::tasks::resolve_validated(combo, ImageConfig::validate)
}

fn build(params: &serde_json::Value, ctx: BuildContext) -> Result<TaskData> {
    let cfg = config(params)?;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    let batches = training_batches(ctx.data_dir)?;
    for path in &batches {
        let (p, l) = read_batch(path)?;
        pixels.extend(p);
        labels.extend(l);
    }
    tracing::info!("image: {} training records from {} batch file(s)", labels.len(), batches.len());
    let n_val = (labels.len() as f64 * cfg.val_fraction).round() as usize;
    let n_train = labels.len() - n_val;
    let seed = cfg.data_seed;
    let train_pick = subset(n_train, cfg.train_examples, seed);
    let val_pick: Vec<usize> =
        subset(n_val, cfg.val_examples, seed.wrapping_add(1)).into_iter().map(|i| n_train + i).collect();
    let test_path = data::locate("cifar10/test_batch.bin", ctx.data_dir, SOURCE)?;
    let (test_pixels, test_labels) = read_batch(&test_path)?;
    let test_pick = subset(test_labels.len(), cfg.test_examples, seed.wrapping_add(2));
    Ok(TaskData {
        train: to_split(&pixels, &labels, &train_pick, &cfg),
        val: (!val_pick.is_empty()).then(|| to_split(&pixels, &labels, &val_pick, &cfg)),
        test: to_split(&test_pixels, &test_labels, &test_pick, &cfg),
        evals: Vec::new(),
        io: cfg.io(),
        lr_override: None,
        lm: None,
    })
}

pub const INFO: TaskInfo = TaskInfo {
    facts: seqbench_core::tasks::IMAGE,
    resolve,
    io: |p| Ok(config(p)?.io()),
    build: |params, ctx| build(params, ctx).map(Data::Tokens),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grayscale_matches_tensorflow_rounding() {
        assert_eq!(gray(0, 0, 0), 0);
        assert_eq!(gray(255, 255, 255), 255); // 0.9999 · 255.5 = 255.47
        assert_eq!(gray(255, 0, 0), 76); // 0.2989 · 255.5 = 76.37
        assert_eq!(gray(0, 255, 0), 149); // 0.5870 · 255.5 = 149.98
        assert_eq!(gray(0, 0, 255), 29); // 0.1140 · 255.5 = 29.13
    }

    #[test]
    fn shipped_cifar_splits_counts_and_labels() {
        let data = build(&serde_json::to_value(ImageConfig::default()).unwrap(), BuildContext::seed(0)).unwrap();
        let batches = training_batches(None).unwrap().len();
        assert_eq!(data.train.n + data.val.as_ref().unwrap().n, 10_000 * batches);
        assert_eq!(data.val.as_ref().unwrap().n, 1_000 * batches);
        assert_eq!(data.test.n, 10_000);
        assert_eq!((data.train.seq_len, data.train.target_len), (1024, 1));
        // The test batch has exactly 1,000 images per class.
        for class in 0..10 {
            assert_eq!(data.test.targets.iter().filter(|&y| y == class).count(), 1000, "class {class}");
        }
        let (lo, hi) = data.test.inputs.iter().fold((255, 0), |(lo, hi), p| (lo.min(p), hi.max(p)));
        assert!(lo >= 0 && hi <= 255 && hi - lo > 200, "pixel range {lo}..{hi}");
    }

    #[test]
    fn downsampling_averages_blocks() {
        let img: Vec<u8> = (0..1024).map(|i| (i % 32) as u8).collect();
        let small = downsample(&img, 2);
        assert_eq!(small.len(), 256);
        assert_eq!(&small[..3], &[0, 2, 4]); // (0+1+0+1)/4, (2+3+2+3)/4, ...
    }
}
