//! Language modelling's extra measurements: the test loss as bits per byte or perplexity, and
//! the loss by position in the context (a model that uses its context predicts later positions
//! better).
use super::train::batch_tensors;
use crate::record::{Measurements, PositionLoss};
use crate::tasks::{lm::LmScore, TokenSplit};
use tch::{Device, Kind};

/// Bands the context positions are averaged into: enough for the chart's shape, few enough
/// for the record.
const BANDS: usize = 32;

/// Mean test loss at each context position, averaged over every window, in at most [`BANDS`]
/// bands of equal width.
pub fn loss_by_position(
    model: &dyn crate::models::SeqModel,
    split: &TokenSplit,
    batch: usize,
    device: Device,
) -> Vec<PositionLoss> {
    let len = split.seq_len;
    let mut sums = vec![0.0f64; len];
    tch::no_grad(|| {
        for start in (0..split.n).step_by(batch) {
            let idx: Vec<usize> = (start..(start + batch).min(split.n)).collect();
            let (x, y) = batch_tensors(split, &idx, device);
            let logits = model.forward_t(&x, false);
            // (b, l, c) → per-token loss (b, l), summed over the batch.
            let per_token =
                logits.log_softmax(-1, Kind::Float).gather(2, &y.unsqueeze(-1), false).squeeze_dim(-1).neg();
            let summed = Vec::<f64>::try_from(per_token.sum_dim_intlist([0i64].as_slice(), false, Kind::Double))
                .expect("a float vector");
            sums.iter_mut().zip(summed).for_each(|(s, v)| *s += v);
        }
    });
    let width = len.div_ceil(BANDS);
    sums.chunks(width)
        .enumerate()
        .map(|(i, band)| PositionLoss {
            position: (i * width + band.len()) as u64,
            loss: band.iter().sum::<f64>() / (band.len() * split.n) as f64,
        })
        .collect()
}

/// The test loss (nats) in the task's unit.
pub fn set_score(m: &mut Measurements, score: LmScore) {
    let value = m.eval_loss.map(|loss| score.of_loss(loss));
    match score {
        LmScore::BitsPerByte => m.bits_per_byte = value,
        LmScore::Perplexity => m.perplexity = value,
    }
}
