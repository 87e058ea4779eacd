//! Train with the configured optimizer and schedule, evaluate on the test split, and measure
//! training and inference throughput, memory, parameters and FLOPs.
use super::measure::{self, percentiles, set_rates, timed, Rates, Throughput, Trained};
use super::optim::GroupedOptimizer;
use super::precision::{GradScaler, Precision};
use super::weights::{self, Snapshot};
use crate::job::{Job, Schedule, TrainConfig};
use crate::record::{CurvePoint, JobOutput, Measurements, SplitScores, Status};
use crate::rng::SplitMix64;
use crate::tasks::{TaskData, TokenSplit, IGNORE};
use anyhow::{anyhow, Result};
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

/// Cycles through a split in a fresh random order every epoch.
pub(super) struct Batcher {
    order: Vec<usize>,
    pos: usize,
    rng: SplitMix64,
}

impl Batcher {
    pub(super) fn new(n: usize, seed: u64) -> Self {
        let mut b = Batcher { order: (0..n).collect(), pos: n, rng: SplitMix64::new(seed ^ 0x0BA7_C4E5) };
        b.reshuffle_if_done();
        b
    }

    fn reshuffle_if_done(&mut self) {
        if self.pos >= self.order.len() {
            self.rng.shuffle(&mut self.order);
            self.pos = 0;
        }
    }

    pub(super) fn next_indices(&mut self, batch: usize) -> Vec<usize> {
        (0..batch)
            .map(|_| {
                self.reshuffle_if_done();
                self.pos += 1;
                self.order[self.pos - 1]
            })
            .collect()
    }
}

/// (inputs, targets) as (batch, seq) int64 tensors on `device`.
pub(super) fn batch_tensors(split: &TokenSplit, indices: &[usize], device: Device) -> (Tensor, Tensor) {
    let mut xs = Vec::with_capacity(indices.len() * split.seq_len);
    let mut ys = Vec::with_capacity(indices.len() * split.target_len);
    for &i in indices {
        split.extend_example(i, &mut xs, &mut ys);
    }
    let n = indices.len() as i64;
    (
        Tensor::from_slice(&xs).view([n, split.seq_len as i64]).to_device(device),
        Tensor::from_slice(&ys).view([n, split.target_len as i64]).to_device(device),
    )
}

/// Mean cross-entropy over labelled positions. logits: (b, l, c), targets: (b, l).
fn loss_fn(logits: &Tensor, targets: &Tensor) -> Tensor {
    let c = logits.size()[2];
    logits.view([-1, c]).cross_entropy_loss::<Tensor>(&targets.view([-1]), None, tch::Reduction::Mean, IGNORE, 0.0)
}

/// Learning rate at `step` of `total`; an epoch is `steps_per_epoch` steps (for `halving`).
pub(super) fn learning_rate(cfg: &TrainConfig, step: u64, total: u64, steps_per_epoch: u64) -> f64 {
    let warm = cfg.lr_warmup_steps;
    if step < warm {
        return cfg.lr * (step + 1) as f64 / warm as f64;
    }
    match cfg.schedule {
        Schedule::Constant => cfg.lr,
        Schedule::Cosine => {
            let progress = (step - warm) as f64 / (total.saturating_sub(warm)).max(1) as f64;
            cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
        // TSLib's type1 sets lr·0.5^(e−1) after epoch e (1-based) for the next one: epochs 1 and
        // 2 train at lr, epoch 3 at lr/2, and so on.
        Schedule::Halving => {
            let epoch = step / steps_per_epoch.max(1);
            cfg.lr * 0.5f64.powi(epoch.saturating_sub(1).min(1000) as i32)
        }
    }
}

struct Evaluation {
    loss: f64,
    accuracy: f64,
    exact_match: f64,
}

/// Accuracy over labelled positions and exact match over examples, on every test example
/// (the last partial batch included).
fn evaluate(model: &dyn crate::models::SeqModel, split: &TokenSplit, batch: usize, device: Device) -> Evaluation {
    tch::no_grad(|| {
        let (mut loss_sum, mut labelled, mut correct, mut exact, mut scored) = (0.0, 0i64, 0i64, 0i64, 0i64);
        for start in (0..split.n).step_by(batch) {
            let idx: Vec<usize> = (start..(start + batch).min(split.n)).collect();
            let (x, y) = batch_tensors(split, &idx, device);
            let logits = model.forward_t(&x, false).to_kind(Kind::Float);
            let mask = y.ne(IGNORE);
            let n_lab = mask.sum(Kind::Int64).int64_value(&[]);
            if n_lab > 0 {
                loss_sum += loss_fn(&logits, &y).double_value(&[]) * n_lab as f64;
            }
            let predicted = logits.argmax(-1, false);
            let hits = split.hits(&predicted, &y, &idx).logical_and(&mask);
            let per_example_hits = hits.sum_dim_intlist([1i64].as_slice(), false, Kind::Int64);
            let per_example_labels = mask.sum_dim_intlist([1i64].as_slice(), false, Kind::Int64);
            let has_labels = per_example_labels.gt(0);
            exact += per_example_hits
                .eq_tensor(&per_example_labels)
                .logical_and(&has_labels)
                .sum(Kind::Int64)
                .int64_value(&[]);
            scored += has_labels.sum(Kind::Int64).int64_value(&[]);
            correct += hits.sum(Kind::Int64).int64_value(&[]);
            labelled += n_lab;
        }
        Evaluation {
            loss: loss_sum / labelled.max(1) as f64,
            accuracy: correct as f64 / labelled.max(1) as f64,
            exact_match: exact as f64 / scored.max(1) as f64,
        }
    })
}

/// Inference throughput on one batch of test examples (see [`measure::forward_rates`]).
fn inference_throughput(
    model: &dyn crate::models::SeqModel,
    split: &TokenSplit,
    cfg: &TrainConfig,
    device: Device,
) -> Option<Rates> {
    let batch = cfg.batch_size as usize;
    let idx: Vec<usize> = (0..batch).map(|i| i % split.n).collect();
    let (x, _) = batch_tensors(split, &idx, device);
    let tokens = (batch * split.seq_len) as f64;
    measure::forward_rates(device, cfg.measure_warmup_steps, tokens, || model.forward_t(&x, false))
}

/// Longest prompt fed before the timed generation: enough to fill caches and states without
/// making long-context tasks spend minutes stepping through it.
const MAX_PROMPT: usize = 64;

/// Generation throughput: feed a prompt (the start of test examples) one token at a time, then
/// generate `cfg.generate_tokens` greedily (argmax, folded into the vocabulary), timing each
/// generated step. None when the model has no recurrent form.
fn generation_throughput(
    model: &dyn crate::models::SeqModel,
    split: &TokenSplit,
    io: &crate::models::TaskIo,
    cfg: &TrainConfig,
    device: Device,
) -> Option<Rates> {
    if cfg.generate_tokens == 0 || !io.causal || !model.can_step() {
        return None;
    }
    let batch = cfg.batch_size as usize;
    let idx: Vec<usize> = (0..batch).map(|i| i % split.n).collect();
    let (x, _) = batch_tensors(split, &idx, device);
    let mut prompt = split.seq_len.min(MAX_PROMPT) as i64;
    let mut generate = cfg.generate_tokens as i64;
    // A learned position table ends at the task's length: prompt and generation share it.
    if let Some(max) = model.max_positions().filter(|&max| prompt + generate > max) {
        prompt = prompt.min(max / 2);
        generate = generate.min(max - prompt);
    }
    if generate <= 0 || prompt <= 0 {
        return None;
    }
    let samples: Vec<f64> = tch::no_grad(|| {
        let mut states = Vec::new();
        let mut logits = Tensor::zeros([1], (Kind::Float, device));
        for pos in 0..prompt {
            logits = model.step(&x.select(1, pos), pos, &mut states);
        }
        (0..generate)
            .map(|i| {
                let next = logits.argmax(-1, false).remainder(io.vocab_size);
                let (out, secs) = timed(device, || model.step(&next, prompt + i, &mut states));
                logits = out;
                batch as f64 / secs
            })
            .collect()
    });
    percentiles(&samples)
}

pub fn train_and_evaluate(
    job: &Job,
    data: TaskData,
    start: super::JobStart,
    run_dir: Option<&std::path::Path>,
) -> Result<JobOutput> {
    let cfg = &job.train;
    let super::JobStart { device, baseline_rss } = start;
    let arch = crate::models::find(&job.model.kind).ok_or_else(|| anyhow!("unknown model {}", job.model.kind))?;
    for (name, split) in [("train", Some(&data.train)), ("validation", data.val.as_ref()), ("test", Some(&data.test))] {
        anyhow::ensure!(
            split.is_none_or(|s| s.n > 0),
            "the task's {name} split is empty: check its data file and sizes"
        );
    }

    let mut vs = nn::VarStore::new(device);
    let model = (arch.build)(&vs.root(), &job.model.params, &data.io)?;
    weights::load_start(&mut vs, job)?;
    weights::save(&vs, job, run_dir, Snapshot::Init)?;
    let n_params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    let total_steps = cfg.total_steps(data.train.n);
    let peak_lr = data.lr_override.unwrap_or(cfg.lr);
    let mut opt = GroupedOptimizer::new(&vs, model.as_ref(), cfg, peak_lr)?;
    let precision = Precision::parse(&cfg.dtype).ok_or_else(|| anyhow!("unknown dtype {}", cfg.dtype))?;
    super::precision::check_device(precision, device)?;
    super::precision::set_matmul_precision(&cfg.matmul_precision)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(cfg.cudnn_benchmark);
    }
    let mut scaler = (precision == Precision::Float16).then(GradScaler::default);
    let lr_cfg = TrainConfig { lr: peak_lr, ..cfg.clone() };

    let batch = cfg.batch_size as usize;
    let tokens_per_step = (batch * data.train.seq_len) as f64;
    let mut batcher = Batcher::new(data.train.n, job.seed);
    let window = total_steps.div_ceil(100).max(1);
    let (mut curve, mut window_sum, mut window_n) = (Vec::new(), 0.0, 0u64);
    let mut losses = Vec::new();
    let mut step_rates = Vec::new();
    let mut status = Status::Ok;
    let mut reason = None;
    // On CUDA the peak covers training and evaluation, not the data upload before it.
    super::cuda_memory::reset_peak(device);
    let started = Instant::now();
    let counters = super::counters::Counters::now();
    let log_every = (total_steps / 10).max(1);
    // Short runs still get throughput figures: at least half of the steps are timed.
    let timing_warmup = cfg.measure_warmup_steps.min(total_steps / 2);

    for step in 0..total_steps {
        let idx = batcher.next_indices(batch);
        let (x, y) = batch_tensors(&data.train, &idx, device);
        opt.set_lr(learning_rate(&lr_cfg, step, total_steps, (data.train.n as u64).div_ceil(batch as u64)));
        let (loss, secs) = timed(device, || -> Result<Tensor> {
            // The forward under autocast, the loss in float32 (as AMP), backward and step outside.
            let logits = {
                let _autocast = precision.autocast(device)?;
                model.forward_t(&x, true)
            };
            let loss = loss_fn(&logits.to_kind(Kind::Float), &y);
            opt.scaled_step(&loss, cfg.grad_clip, scaler.as_mut());
            Ok(loss)
        });
        let loss = loss?;
        let loss = loss.double_value(&[]);
        if step + 1 == timing_warmup {
            // The peak counts from here: first-call workspaces and autotuning are warm-up.
            super::cuda_memory::reset_peak(device);
        }
        if step >= timing_warmup {
            step_rates.push(tokens_per_step / secs);
        }
        if !loss.is_finite() {
            status = Status::Diverged;
            reason = Some(format!("training loss became {loss} at step {step}"));
            tracing::warn!("{}", reason.as_deref().unwrap_or_default());
            break;
        }
        losses.push(loss);
        window_sum += loss;
        window_n += 1;
        let last = step + 1 == total_steps;
        if window_n == window || last {
            let eval_now = cfg.eval_interval > 0 && ((step + 1) % cfg.eval_interval == 0 || last);
            let eval_accuracy = eval_now.then(|| evaluate(model.as_ref(), &data.test, batch, device).accuracy);
            curve.push(CurvePoint { step: step + 1, loss: window_sum / window_n as f64, eval_accuracy });
            (window_sum, window_n) = (0.0, 0);
        }
        if (step + 1) % log_every == 0 {
            tracing::info!("step {}/{total_steps} loss {loss:.4}", step + 1);
        }
    }
    let train_s = started.elapsed().as_secs_f64();
    weights::save(&vs, job, run_dir, Snapshot::Final)?;

    let tail = losses.len().div_ceil(10).max(1);
    let train_loss =
        (!losses.is_empty()).then(|| losses.iter().rev().take(tail).sum::<f64>() / tail.min(losses.len()) as f64);
    let trained = Trained {
        device,
        n_params,
        seq_len: data.io.seq_len,
        flops_per_token: model.flops_per_token(data.io.seq_len),
        state_size: model.state_size(data.io.seq_len),
        steps: losses.len() as u64,
        train_s,
        baseline_rss,
        curve,
        step_rates,
        counters,
    };
    let mut m = Measurements { train_loss, ..trained.measurements() };
    if let Some(scaler) = &scaler {
        tracing::info!(
            "float16 loss scale {} at the end, {} steps skipped for inf/NaN gradients",
            scaler.scale,
            scaler.skipped
        );
    }
    // Evaluation and the inference and generation timings run as training did.
    let _autocast = precision.autocast(device)?;
    m.implementation = Some(model.implementation(device, precision.activation_kind()));
    if status == Status::Ok {
        let eval = evaluate(model.as_ref(), &data.test, batch, device);
        (m.eval_loss, m.accuracy, m.exact_match) = (Some(eval.loss), Some(eval.accuracy), Some(eval.exact_match));
        m.val_accuracy = data.val.as_ref().map(|val| evaluate(model.as_ref(), val, batch, device).accuracy);
        if let Some(score) = data.lm {
            super::lm_eval::set_score(&mut m, score);
            m.loss_by_position = super::lm_eval::loss_by_position(model.as_ref(), &data.test, batch, device);
        }
        for (name, split) in &data.evals {
            // A learned position table ends at the training length: longer splits cannot run.
            if let Some(max) = model.max_positions().filter(|&max| split.seq_len as i64 > max) {
                tracing::warn!("split {name} not evaluated: the model's positions end at {max}");
                continue;
            }
            let e = evaluate(model.as_ref(), split, batch, device);
            let scores = SplitScores { accuracy: e.accuracy, exact_match: e.exact_match, loss: e.loss };
            m.evals.insert(name.clone(), scores);
        }
        set_rates(&mut m, Throughput::Infer, inference_throughput(model.as_ref(), &data.test, cfg, device));
        let gen = generation_throughput(model.as_ref(), &data.test, &data.io, cfg, device);
        set_rates(&mut m, Throughput::Gen, gen);
    }
    measure::set_peak_memory(&mut m, device);
    Ok(JobOutput { status, reason, measurements: m })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_with_warmup() {
        let cfg = TrainConfig { lr: 1.0, lr_warmup_steps: 10, ..Default::default() };
        assert!((learning_rate(&cfg, 0, 110, 10) - 0.1).abs() < 1e-12);
        assert!((learning_rate(&cfg, 10, 110, 10) - 1.0).abs() < 1e-12);
        assert!((learning_rate(&cfg, 60, 110, 10) - 0.5).abs() < 1e-12);
        assert!(learning_rate(&cfg, 109, 110, 10) < 0.01);
    }

    #[test]
    fn halving_follows_tslib_type1() {
        let cfg = TrainConfig { lr: 1.0, schedule: Schedule::Halving, ..Default::default() };
        let per_epoch: Vec<f64> = (0..4).map(|e| learning_rate(&cfg, e * 10 + 3, 40, 10)).collect();
        assert_eq!(per_epoch, [1.0, 1.0, 0.5, 0.25]);
    }

    #[test]
    fn batcher_visits_every_example_once_per_epoch() {
        let mut b = Batcher::new(10, 3);
        let mut seen = b.next_indices(10);
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }
}
