//! Forecasting jobs, trained as Time-Series-Library trains them: MSE loss, epochs over every
//! training window in a fresh order, the learning rate per `schedule` (TSLib: halved every
//! epoch), validation after each epoch, early stopping after `patience` epochs without
//! improvement, and the best epoch's weights scored on every test window (MSE and MAE on
//! scaled values).
use super::measure::{self, set_rates, timed, Throughput, Trained};
use super::optim::GroupedOptimizer;
use super::train::learning_rate;
use super::weights::{self, Snapshot};
use crate::job::Job;
use crate::models::SeqModel;
use crate::record::{CurvePoint, ForecastSample, JobOutput, Measurements, Status};
use crate::rng::SplitMix64;
use crate::tasks::forecast::Series;
use anyhow::{anyhow, Result};
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

const TRAIN: usize = 0;
const VAL: usize = 1;
const TEST: usize = 2;

/// Windows `indices` of split `s` as (x (b, L, C), y (b, H, C)).
fn batch(series: &Series, s: usize, indices: &[usize], device: Device) -> (Tensor, Tensor) {
    let (l, h, c) = (series.seq_len as i64, series.pred_len as i64, series.channels as i64);
    let mut xs = Vec::with_capacity(indices.len() * series.seq_len * series.channels);
    let mut ys = Vec::with_capacity(indices.len() * series.pred_len * series.channels);
    for &w in indices {
        let (x, y) = series.window(s, w);
        xs.extend_from_slice(x);
        ys.extend_from_slice(y);
    }
    let b = indices.len() as i64;
    (
        Tensor::from_slice(&xs).view([b, l, c]).to_device(device),
        Tensor::from_slice(&ys).view([b, h, c]).to_device(device),
    )
}

/// The model's forecast for x (b, L, C): (b, H, C). With channel independence every channel is
/// its own one-channel series.
fn predict(model: &dyn SeqModel, x: &Tensor, channel_independence: bool, train: bool) -> Tensor {
    if !channel_independence {
        return model.forward_t(x, train);
    }
    let (b, l, c) = x.size3().expect("x is (batch, L, channels)");
    let y = model.forward_t(&x.permute([0, 2, 1]).reshape([b * c, l, 1]), train); // (b·c, H, 1)
    let h = y.size()[1];
    y.reshape([b, c, h]).permute([0, 2, 1])
}

/// TSLib's validation loss: the mean of per-batch MSEs (a short last batch weighs as much as a
/// full one), which decides early stopping.
fn validation_loss(model: &dyn SeqModel, series: &Series, batch_size: usize, ci: bool, device: Device) -> f64 {
    tch::no_grad(|| {
        let n = series.windows(VAL);
        let losses: Vec<f64> = (0..n)
            .step_by(batch_size)
            .map(|start| {
                let idx: Vec<usize> = (start..(start + batch_size).min(n)).collect();
                let (x, y) = batch(series, VAL, &idx, device);
                (predict(model, &x, ci, false) - y).square().mean(Kind::Float).double_value(&[])
            })
            .collect();
        losses.iter().sum::<f64>() / losses.len().max(1) as f64
    })
}

/// (MSE, MAE) over every value of every window of split `s`, in batches.
fn score(model: &dyn SeqModel, series: &Series, s: usize, batch_size: usize, ci: bool, device: Device) -> (f64, f64) {
    tch::no_grad(|| {
        let (mut se, mut ae, mut count) = (0.0, 0.0, 0i64);
        let n = series.windows(s);
        for start in (0..n).step_by(batch_size) {
            let idx: Vec<usize> = (start..(start + batch_size).min(n)).collect();
            let (x, y) = batch(series, s, &idx, device);
            let diff = predict(model, &x, ci, false) - y;
            se += diff.square().sum(Kind::Double).double_value(&[]);
            ae += diff.abs().sum(Kind::Double).double_value(&[]);
            count += diff.numel() as i64;
        }
        (se / count.max(1) as f64, ae / count.max(1) as f64)
    })
}

/// The first test window's target channel (the last): input, truth and forecast.
fn sample(model: &dyn SeqModel, series: &Series, ci: bool, device: Device) -> ForecastSample {
    let (x, y) = batch(series, TEST, &[0], device);
    let forecast = tch::no_grad(|| predict(model, &x, ci, false));
    let last = series.channels as i64 - 1;
    let column = |t: &Tensor| -> Vec<f64> {
        let values = t.select(0, 0).select(1, last).to_kind(Kind::Double).to_device(Device::Cpu);
        Vec::<f64>::try_from(&values).unwrap_or_default()
    };
    ForecastSample { window: 0, input: column(&x), truth: column(&y), prediction: column(&forecast) }
}

/// Inference throughput on one batch of test windows, timed as for every task (see
/// [`measure::forward_rates`]): tokens are input time steps, channels counted once.
fn inference_throughput(
    model: &dyn SeqModel,
    series: &Series,
    batch_size: usize,
    ci: bool,
    cfg: &crate::job::TrainConfig,
    device: Device,
) -> Option<measure::Rates> {
    let n = series.windows(TEST).min(batch_size);
    let (x, _) = batch(series, TEST, &(0..n).collect::<Vec<_>>(), device);
    let tokens = (n * series.seq_len) as f64;
    measure::forward_rates(device, cfg.measure_warmup_steps, tokens, || predict(model, &x, ci, false))
}

pub fn train_and_evaluate(
    job: &Job,
    series: Series,
    start: super::JobStart,
    run_dir: Option<&std::path::Path>,
) -> Result<JobOutput> {
    let cfg = &job.train;
    // TSLib trains its forecasters in float32 (its `use_amp` is off by default).
    anyhow::ensure!(
        cfg.dtype == "float32",
        "dtype {}: forecasting runs in float32 only (as Time-Series-Library does by default)",
        cfg.dtype
    );
    let super::JobStart { device, baseline_rss } = start;
    let ci = series.channel_independence;
    let io = series.io();
    let arch = crate::models::find(&job.model.kind).ok_or_else(|| anyhow!("unknown model {}", job.model.kind))?;
    let mut vs = nn::VarStore::new(device);
    let model = (arch.build)(&vs.root(), &job.model.params, &io)?;
    weights::load_start(&mut vs, job)?;
    weights::save(&vs, job, run_dir, Snapshot::Init)?;
    let n_params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    let mut opt = GroupedOptimizer::new(&vs, model.as_ref(), cfg, cfg.lr)?;

    let batch_size = cfg.batch_size as usize;
    let n_train = series.windows(TRAIN);
    let steps_per_epoch = n_train.div_ceil(batch_size) as u64;
    // TSLib trains for epochs; `steps` caps the total instead when a suite sets it.
    let epochs = cfg.epochs.map_or(10, |e| e.ceil() as u64).max(1);
    let total_steps = cfg.steps.unwrap_or(epochs * steps_per_epoch);
    let tokens_per_step = (batch_size * series.seq_len) as f64;
    let timing_warmup = cfg.measure_warmup_steps.min(total_steps / 2);
    // Each epoch visits every training window once in a fresh order, the last batch partial
    // (TSLib: shuffle on, drop_last off).
    let mut order: Vec<usize> = (0..n_train).collect();
    let mut shuffler = SplitMix64::new(job.seed ^ 0x0BA7_C4E5);
    let (mut step, mut step_rates, mut curve) = (0u64, Vec::new(), Vec::new());
    let (mut best_val, mut best_weights, mut stale, mut epochs_trained) = (f64::INFINITY, None, 0u64, 0u64);
    let (mut status, mut reason, mut last_loss) = (Status::Ok, None, None);
    let started = Instant::now();
    let counters = super::counters::Counters::now();
    'epochs: for epoch in 0..epochs {
        let mut epoch_loss = 0.0;
        let mut epoch_steps = 0u64;
        shuffler.shuffle(&mut order);
        for indices in order.chunks(batch_size) {
            if step >= total_steps {
                break;
            }
            let (x, y) = batch(&series, TRAIN, indices, device);
            opt.set_lr(learning_rate(cfg, step, total_steps, steps_per_epoch));
            let (loss, secs) = timed(device, || {
                let loss = (predict(model.as_ref(), &x, ci, true) - &y).square().mean(Kind::Float);
                opt.step(&loss, cfg.grad_clip);
                loss
            });
            let loss = loss.double_value(&[]);
            if step >= timing_warmup {
                step_rates.push(tokens_per_step / secs);
            }
            step += 1;
            if !loss.is_finite() {
                (status, reason) = (Status::Diverged, Some(format!("training loss became {loss} at step {step}")));
                break 'epochs;
            }
            epoch_loss += loss;
            epoch_steps += 1;
        }
        if epoch_steps == 0 {
            break;
        }
        epochs_trained = epoch + 1;
        last_loss = Some(epoch_loss / epoch_steps as f64);
        let val_mse = validation_loss(model.as_ref(), &series, batch_size, ci, device);
        curve.push(CurvePoint { step, loss: epoch_loss / epoch_steps as f64, eval_accuracy: None });
        tracing::info!("epoch {} train {:.4} val {val_mse:.4}", epoch + 1, epoch_loss / epoch_steps as f64);
        if val_mse < best_val {
            best_val = val_mse;
            stale = 0;
            best_weights =
                Some(tch::no_grad(|| vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect::<Vec<_>>()));
        } else {
            stale += 1;
            if cfg.patience > 0 && stale >= cfg.patience {
                tracing::info!("early stop after epoch {}: no validation improvement for {stale} epochs", epoch + 1);
                break;
            }
        }
    }
    let train_s = started.elapsed().as_secs_f64();
    if let Some(best) = best_weights {
        let vars = vs.variables();
        tch::no_grad(|| {
            for (name, value) in best {
                if let Some(mut var) = vars.get(&name).map(|v| v.shallow_clone()) {
                    var.copy_(&value);
                }
            }
        });
    }
    weights::save(&vs, job, run_dir, Snapshot::Final)?;
    let trained = Trained {
        device,
        n_params,
        seq_len: series.seq_len as i64,
        flops_per_token: model.flops_per_token(series.seq_len as i64),
        state_size: model.state_size(series.seq_len as i64),
        steps: step,
        train_s,
        baseline_rss,
        curve,
        step_rates,
        counters,
    };
    let mut m = Measurements { train_loss: last_loss, epochs_trained: Some(epochs_trained), ..trained.measurements() };
    if status == Status::Ok {
        let (mse, mae) = score(model.as_ref(), &series, TEST, batch_size, ci, device);
        (m.mse, m.mae, m.eval_loss, m.val_mse) =
            (Some(mse), Some(mae), Some(mse), best_val.is_finite().then_some(best_val));
        set_rates(
            &mut m,
            Throughput::Infer,
            inference_throughput(model.as_ref(), &series, batch_size, ci, cfg, device),
        );
        m.forecast_sample = Some(sample(model.as_ref(), &series, ci, device));
    }
    measure::set_peak_memory(&mut m, device);
    Ok(JobOutput { status, reason, measurements: m })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::MixerState;

    /// Forecasts zeros, so the errors are those of the targets themselves.
    struct Zero;

    impl SeqModel for Zero {
        fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
            Tensor::zeros([xs.size()[0], 2, xs.size()[2]], (Kind::Float, Device::Cpu))
        }
        fn flops_per_token(&self, _: i64) -> f64 {
            0.0
        }
        fn can_step(&self) -> bool {
            false
        }
        fn step(&self, _: &Tensor, _: i64, _: &mut Vec<MixerState>) -> Tensor {
            unreachable!()
        }
    }

    #[test]
    fn errors_cover_every_test_window_including_a_partial_last_batch() {
        // One channel, values 0..10; test rows 4..10 with L = 2, H = 2 → windows start at rows
        // 4, 5, 6, 7 and forecast rows (6,7), (7,8), (8,9), (9,10)… up to row 9.
        let values: Vec<f32> = (0..10).map(|v| v as f32).collect();
        let series = Series {
            values,
            channels: 1,
            splits: [0..4, 2..6, 4..10],
            seq_len: 2,
            pred_len: 2,
            mean: vec![0.0],
            std: vec![1.0],
            channel_independence: false,
        };
        assert_eq!(series.windows(TEST), 3);
        // Targets: (6,7), (7,8), (8,9): MSE = mean of squares, MAE = mean.
        let targets = [6.0f64, 7.0, 7.0, 8.0, 8.0, 9.0];
        let mse = targets.iter().map(|t| t * t).sum::<f64>() / 6.0;
        let mae = targets.iter().sum::<f64>() / 6.0;
        // Batch size 2: the last batch holds one window and still counts.
        let (got_mse, got_mae) = score(&Zero, &series, TEST, 2, false, Device::Cpu);
        assert!((got_mse - mse).abs() < 1e-9 && (got_mae - mae).abs() < 1e-9, "{got_mse} {got_mae}");
    }
}
