//! Parallel forms of first-order linear recurrences, written with libtorch ops so they run on CPU
//! and GPU alike: the `reference` scans. The fused ops of fused.rs (`scan: fused`, the
//! default) compute the same recurrences with their own autograd, in less time and memory.
use super::fused::{self, Form};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Which scan a mixer runs (`scan:` in its config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanImpl {
    /// The libtorch-op scans of this file; autograd keeps every intermediate.
    Reference,
    /// csrc/scan.cpp's ops (fused.rs); the reference where they were not compiled.
    #[default]
    Fused,
}

impl ScanImpl {
    /// Whether the fused op runs.
    pub fn fused(self) -> bool {
        self == ScanImpl::Fused && fused::AVAILABLE
    }

    /// What runs on `device`, for the record's `implementation`.
    pub fn describe(self, device: tch::Device) -> &'static str {
        match (self, self.fused()) {
            (_, true) => fused::describe(device),
            (ScanImpl::Fused, false) => "libtorch-op reference scan (the fused op was not compiled)",
            (ScanImpl::Reference, _) => "libtorch-op reference scan (scan: reference)",
        }
    }

    /// Whether the causal depthwise conv around the scan (Mamba's, Hawk's) runs as the fused
    /// op: with `scan: fused`, on CPU (other devices keep conv1d).
    pub fn fused_conv(self, device: tch::Device) -> bool {
        self.fused() && device == tch::Device::Cpu
    }

    /// What runs that conv on `device`, for the record's `implementation`.
    pub fn describe_conv(self, device: tch::Device) -> &'static str {
        if self.fused_conv(device) {
            "seqbench fused C++ op"
        } else {
            "libtorch conv1d"
        }
    }

    /// `linear_scan` by the chosen implementation; `a` broadcasts to `b`'s shape.
    pub fn linear(self, a: &Tensor, b: &Tensor) -> Tensor {
        if self.fused() {
            fused::linear(a, b, Form::Native)
        } else if a.size() == b.size() {
            linear_scan(a, b)
        } else {
            linear_scan(&a.expand_as(b), b)
        }
    }
}

/// Time steps scanned in parallel at once; chunks are chained sequentially. Bounds the memory of
/// the doubling scan (log2(CHUNK) copies of a chunk) and keeps the log-space scan's cumulative
/// sums small enough for fp32.
pub const CHUNK: i64 = 64;

/// h_t = a_t ⊙ h_{t−1} + b_t along dim 1 with h_0 = 0, for real or complex a, b of equal shape
/// (batch, time, ...). On CPU a loop over time does the least work (one multiply-add per
/// element); on accelerators, where each step's kernel launch costs more than its arithmetic,
/// the chunked doubling scan needs only log2(CHUNK) launches per chunk.
pub fn linear_scan(a: &Tensor, b: &Tensor) -> Tensor {
    if a.device() == tch::Device::Cpu {
        sequential_scan(a, b)
    } else {
        doubling_scan_chunked(a, b)
    }
}

/// The recurrence step by step. Inputs are split with `unbind`, whose backward stacks the step
/// gradients once; `select` per step would allocate a full-size gradient per step (O(L²)).
pub fn sequential_scan(a: &Tensor, b: &Tensor) -> Tensor {
    let (a, b) = (a.unbind(1), b.unbind(1));
    let mut h = b[0].shallow_clone();
    let mut steps = Vec::with_capacity(b.len());
    steps.push(h.shallow_clone());
    for (a_t, b_t) in a.iter().zip(&b).skip(1) {
        h = a_t * &h + b_t;
        steps.push(h.shallow_clone());
    }
    Tensor::stack(&steps, 1)
}

/// Hillis–Steele doubling inside chunks of `CHUNK`, chunks chained: every factor it multiplies
/// is a product of the a_t themselves, so nothing overflows when |a_t| ≤ 1.
/// The chunks come from one `split` per input, whose backward concatenates their gradients
/// once (a `narrow` per chunk would allocate a full-length gradient per chunk).
pub fn doubling_scan_chunked(a: &Tensor, b: &Tensor) -> Tensor {
    let mut carry: Option<Tensor> = None;
    let (a_chunks, b_chunks) = (a.split(CHUNK, 1), b.split(CHUNK, 1));
    let mut outputs = Vec::with_capacity(a_chunks.len());
    for (a_chunk, b_chunk) in a_chunks.into_iter().zip(b_chunks) {
        let n = a_chunk.size()[1];
        let (prefix, mut h) = doubling_scan(a_chunk, b_chunk);
        if let Some(prev) = &carry {
            h = &h + prefix * prev.unsqueeze(1); // out of place: autograd may hold h
        }
        carry = Some(h.select(1, n - 1));
        outputs.push(h);
    }
    Tensor::cat(&outputs, 1)
}

/// Returns (Π_{s≤t} a_s, h_t) for one chunk.
fn doubling_scan(mut a: Tensor, mut h: Tensor) -> (Tensor, Tensor) {
    let n = a.size()[1];
    let mut offset = 1;
    while offset < n {
        let keep = n - offset;
        let h_shift = h.narrow(1, 0, keep);
        let a_shift = a.narrow(1, 0, keep);
        let a_tail = a.narrow(1, offset, keep);
        h = Tensor::cat(&[h.narrow(1, 0, offset), h.narrow(1, offset, keep) + &a_tail * h_shift], 1);
        a = Tensor::cat(&[a.narrow(1, 0, offset), a_tail * a_shift], 1);
        offset *= 2;
    }
    (a, h)
}

/// h_t = exp(log_coeff_t) ⊙ h_{t−1} + exp(log_value_t) along dim 1 with h_0 = 0, computed in
/// log space (Heinsen 2023): log h_t = a*_t + logcumsumexp(log_value − a*)_t with
/// a* = cumsum(log_coeff). For recurrences whose values are positive (minGRU, minLSTM).
/// Chunked so that a* never runs far from zero; log h of the previous chunk enters as one more
/// term of the log-sum-exp. Chunks split once, as `doubling_scan_chunked`'s.
pub fn log_space_scan(log_coeff: &Tensor, log_value: &Tensor) -> Tensor {
    let mut carry: Option<Tensor> = None; // log h at the end of the previous chunk
    let (coeff_chunks, value_chunks) = (log_coeff.split(CHUNK, 1), log_value.split(CHUNK, 1));
    let mut outputs = Vec::with_capacity(coeff_chunks.len());
    for (coeff, value) in coeff_chunks.iter().zip(&value_chunks) {
        let n = coeff.size()[1];
        let a_star = coeff.cumsum(1, log_coeff.kind());
        let mut terms = value - &a_star;
        let mut skip = 0;
        if let Some(prev) = &carry {
            terms = Tensor::cat(&[&prev.unsqueeze(1), &terms], 1);
            skip = 1;
        }
        let log_h = &a_star + terms.logcumsumexp(1).narrow(1, skip, n);
        carry = Some(log_h.select(1, n - 1));
        outputs.push(log_h);
    }
    Tensor::cat(&outputs, 1).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn sequential(a: &Tensor, b: &Tensor) -> Tensor {
        let mut h = b.select(1, 0).zeros_like();
        let steps: Vec<Tensor> = (0..a.size()[1])
            .map(|t| {
                h = a.select(1, t) * &h + b.select(1, t);
                h.shallow_clone()
            })
            .collect();
        Tensor::stack(&steps, 1)
    }

    fn max_diff(x: &Tensor, y: &Tensor) -> f64 {
        (x - y).abs().max().double_value(&[])
    }

    #[test]
    fn linear_scan_matches_the_loop_across_chunks() {
        tch::manual_seed(0);
        let len = 2 * CHUNK + 7;
        let a = Tensor::rand([2, len, 3], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([2, len, 3], (Kind::Float, Device::Cpu));
        let expected = sequential(&a, &b);
        assert!(max_diff(&sequential_scan(&a, &b), &expected) < 1e-5);
        assert!(max_diff(&doubling_scan_chunked(&a, &b), &expected) < 1e-5);
    }

    #[test]
    fn linear_scan_handles_complex_values() {
        tch::manual_seed(1);
        let opts = (Kind::Float, Device::Cpu);
        let len = CHUNK + 5;
        let radius = Tensor::rand([1, len, 4], opts) * 0.99;
        let a = Tensor::polar(&radius, &Tensor::randn([1, len, 4], opts));
        let b = Tensor::complex(&Tensor::randn([1, len, 4], opts), &Tensor::randn([1, len, 4], opts));
        let expected = sequential(&a, &b);
        for got in [sequential_scan(&a, &b), doubling_scan_chunked(&a, &b)] {
            let diff = (got - &expected).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{diff}");
        }
    }

    #[test]
    fn log_space_scan_matches_the_loop_across_chunks() {
        tch::manual_seed(2);
        let len = 3 * CHUNK + 1;
        let opts = (Kind::Float, Device::Cpu);
        let coeff = Tensor::rand([2, len, 3], opts) * 0.9 + 0.05;
        let value = Tensor::rand([2, len, 3], opts) + 0.1;
        let got = log_space_scan(&coeff.log(), &value.log());
        let diff = max_diff(&got, &sequential(&coeff, &value));
        assert!(diff < 1e-5, "{diff}");
    }
}
