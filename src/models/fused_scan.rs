//! The fused scans of csrc/scan.cpp: C++ ops with their own autograd, called on tch tensors
//! (both sides share the wheel's libtorch, so a tensor crosses as its `at::Tensor*`).
//! - `linear`: h_t = a_t ⊙ h_{t−1} + b_t, real or complex; its autograd keeps a and h only.
//! - `selective`: Mamba's selective scan, which keeps the (batch, L, E, N) states only at chunk
//!   boundaries and recomputes a chunk at a time in the backward.
//!
//! On CPU each is one loop over time per batch element (parallel over the batch); elsewhere the
//! same scheme runs as ATen ops chunk by chunk. Half-precision inputs are scanned in float32, as
//! the official kernels accumulate. Without the compiled shim (no libtorch headers at build time)
//! `AVAILABLE` is false and the mixers fall back to their reference scans.
use super::scan::CHUNK;
use tch::{Kind, Tensor};

pub const AVAILABLE: bool = cfg!(seqbench_scan);

/// Which form of the op runs: the device's own (a CPU loop on CPU), or the ATen-op form on
/// any device (for tests: the form GPUs run, checked on CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Native,
    Aten,
}

/// What runs on `device`, for a mixer's `implementation` line.
pub fn describe(device: tch::Device) -> &'static str {
    if device == tch::Device::Cpu {
        "seqbench fused C++ scan (CPU loop, own autograd)"
    } else {
        "seqbench fused scan (ATen ops chunk by chunk, own autograd, boundary recompute)"
    }
}

/// The scan's working precision: float32 for half inputs, else the input's own.
fn widened(t: &Tensor) -> Tensor {
    match t.kind() {
        Kind::Half | Kind::BFloat16 => t.to_kind(Kind::Float),
        _ => t.shallow_clone(),
    }
}

/// h_t = a_t ⊙ h_{t−1} + b_t along dim 1 (h_{−1} = 0); `a` broadcasts to `b`'s shape.
pub fn linear(a: &Tensor, b: &Tensor, form: Form) -> Tensor {
    let (a, b) = (widened(a), widened(b));
    let a = if a.size() == b.size() { a } else { a.expand_as(&b) };
    shim::linear(&a, &b, CHUNK, form == Form::Aten)
}

/// Mamba's selective scan without D or the gate: y_t[e] = Σ_n C_t[n] h_t[e, n] with
/// h_t[e, n] = exp(Δ_t[e] A[e, n]) h_{t−1}[e, n] + Δ_t[e] B_t[n] x_t[e]. x, Δ: (batch, L, E);
/// A: (E, N); B, C: (batch, L, N). Returns float32 for half inputs.
pub fn selective(x: &Tensor, delta: &Tensor, a: &Tensor, b: &Tensor, c: &Tensor, form: Form) -> Tensor {
    let kind = match x.kind() {
        Kind::Half | Kind::BFloat16 => Kind::Float,
        k => k,
    };
    let [x, delta, a, b, c] = [x, delta, a, b, c].map(|t| t.to_kind(kind));
    shim::selective(&x, &delta, &a, &b, &c, CHUNK, form == Form::Aten)
}

#[cfg(seqbench_scan)]
mod shim {
    use std::ffi::{c_int, c_void, CStr};
    use tch::Tensor;

    extern "C" {
        fn seqbench_linear_scan(
            a: *const c_void,
            b: *const c_void,
            chunk: i64,
            generic: c_int,
            out: *mut *mut c_void,
        ) -> c_int;
        #[allow(clippy::too_many_arguments)]
        fn seqbench_selective_scan(
            x: *const c_void,
            dt: *const c_void,
            a: *const c_void,
            b: *const c_void,
            c: *const c_void,
            chunk: i64,
            generic: c_int,
            out: *mut *mut c_void,
        ) -> c_int;
        fn seqbench_scan_last_error() -> *const std::ffi::c_char;
    }

    fn ptr(t: &Tensor) -> *const c_void {
        t.as_ptr().cast()
    }

    /// The op's result, or a panic with its message, as tch's own ops fail.
    fn take(status: c_int, out: *mut c_void, what: &str) -> Tensor {
        if status != 0 {
            // SAFETY: the shim returns a NUL-terminated thread-local string that lives until
            // its next failure on this thread.
            let message = unsafe { CStr::from_ptr(seqbench_scan_last_error()) }.to_string_lossy();
            panic!("{what}: {message}");
        }
        // SAFETY: on success `out` is a heap `at::Tensor*` the shim allocated for us; tch frees
        // it with `delete` when the Tensor drops, as for its own results.
        unsafe { Tensor::from_ptr(out.cast()) }
    }

    pub fn linear(a: &Tensor, b: &Tensor, chunk: i64, generic: bool) -> Tensor {
        let mut out = std::ptr::null_mut();
        // SAFETY: live tensors in, one out-pointer written on success; exceptions are caught in C++.
        let status = unsafe { seqbench_linear_scan(ptr(a), ptr(b), chunk, c_int::from(generic), &mut out) };
        take(status, out, "fused linear scan")
    }

    pub fn selective(x: &Tensor, dt: &Tensor, a: &Tensor, b: &Tensor, c: &Tensor, chunk: i64, generic: bool) -> Tensor {
        let mut out = std::ptr::null_mut();
        // SAFETY: as above.
        let status = unsafe {
            seqbench_selective_scan(ptr(x), ptr(dt), ptr(a), ptr(b), ptr(c), chunk, c_int::from(generic), &mut out)
        };
        take(status, out, "fused selective scan")
    }
}

#[cfg(not(seqbench_scan))]
mod shim {
    use tch::Tensor;

    const MISSING: &str = "the fused scans were not compiled (no libtorch headers at build time)";

    pub fn linear(_: &Tensor, _: &Tensor, _: i64, _: bool) -> Tensor {
        panic!("{MISSING}")
    }

    pub fn selective(_: &Tensor, _: &Tensor, _: &Tensor, _: &Tensor, _: &Tensor, _: i64, _: bool) -> Tensor {
        panic!("{MISSING}")
    }
}

#[cfg(all(test, seqbench_scan))]
mod tests {
    use super::*;
    use crate::models::scan::sequential_scan;
    use tch::Device;

    fn max_diff(x: &Tensor, y: &Tensor) -> f64 {
        (x - y).abs().max().double_value(&[])
    }

    /// Leaves that require grad, and the gradients of Σ w ⊙ f(leaves) (w fixed random weights,
    /// so every output position's gradient matters).
    fn value_and_grads(leaves: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor) -> (Tensor, Vec<Tensor>) {
        let leaves: Vec<Tensor> = leaves.iter().map(|t| t.detach().set_requires_grad(true)).collect();
        let out = f(&leaves);
        tch::manual_seed(99);
        let weights = Tensor::randn_like(&out.abs());
        let loss = if out.is_complex() {
            (out.real() * &weights + out.imag() * &weights).sum(None)
        } else {
            (&out * weights).sum(None)
        };
        let grads = Tensor::run_backward(&[loss], &leaves, false, false);
        (out.detach(), grads)
    }

    /// Within `tol` relative to the largest magnitude (at least 1): A's gradient sums over
    /// every batch element and step, so its float32 rounding grows with its size.
    fn assert_close(what: &str, got: &(Tensor, Vec<Tensor>), want: &(Tensor, Vec<Tensor>), tol: f64) {
        let pairs = std::iter::once((&got.0, &want.0)).chain(got.1.iter().zip(&want.1));
        for (i, (g, w)) in pairs.enumerate() {
            let (diff, scale) = (max_diff(g, w), w.abs().max().double_value(&[]).max(1.0));
            let name = if i == 0 { "output".to_string() } else { format!("gradient of input {}", i - 1) };
            assert!(diff <= tol * scale, "{what}: {name} differs by {diff} (largest magnitude {scale})");
        }
    }

    fn reference_selective(t: &[Tensor]) -> Tensor {
        let (x, dt, a, b, c) = (&t[0], &t[1], &t[2], &t[3], &t[4]);
        let decay = (dt.unsqueeze(-1) * a).exp();
        let input = dt.unsqueeze(-1) * b.unsqueeze(2) * x.unsqueeze(-1);
        (sequential_scan(&decay, &input) * c.unsqueeze(2)).sum_dim_intlist([-1i64].as_slice(), false, None)
    }

    /// Mamba's inputs at a length crossing several chunks, with Δ and A in their usual ranges.
    fn selective_inputs(kind: Kind, len: i64) -> Vec<Tensor> {
        tch::manual_seed(3);
        let opts = (kind, Device::Cpu);
        let (batch, e, n) = (2, 6, 4);
        vec![
            Tensor::randn([batch, len, e], opts),
            (Tensor::randn([batch, len, e], opts) - 2.0).softplus(),
            -Tensor::rand([e, n], opts) * 3.0 - 0.1,
            Tensor::randn([batch, len, n], opts),
            Tensor::randn([batch, len, n], opts),
        ]
    }

    #[test]
    fn selective_scan_matches_the_reference_in_outputs_and_gradients() {
        let inputs = selective_inputs(Kind::Float, 2 * CHUNK + 9);
        let want = value_and_grads(&inputs, reference_selective);
        for form in [Form::Native, Form::Aten] {
            let got = value_and_grads(&inputs, |t| selective(&t[0], &t[1], &t[2], &t[3], &t[4], form));
            assert_close(&format!("{form:?}"), &got, &want, 1e-5);
        }
    }

    #[test]
    fn linear_scan_matches_the_reference_for_real_and_complex_values() {
        tch::manual_seed(4);
        let opts = (Kind::Float, Device::Cpu);
        let len = 2 * CHUNK + 5;
        let real = [Tensor::rand([2, len, 3, 2], opts), Tensor::randn([2, len, 3, 2], opts)];
        let radius = Tensor::rand([2, len, 5], opts) * 0.99;
        let complex = [
            Tensor::polar(&radius, &Tensor::randn([2, len, 5], opts)),
            Tensor::complex(&Tensor::randn([2, len, 5], opts), &Tensor::randn([2, len, 5], opts)),
        ];
        for (name, inputs) in [("real", real), ("complex", complex)] {
            let want = value_and_grads(&inputs, |t| sequential_scan(&t[0], &t[1]));
            for form in [Form::Native, Form::Aten] {
                let got = value_and_grads(&inputs, |t| linear(&t[0], &t[1], form));
                assert_close(&format!("{name} {form:?}"), &got, &want, 1e-5);
            }
        }
    }

    /// The analytic gradient of input `which` at a few positions against central differences
    /// in float64.
    fn finite_difference_check(inputs: &[Tensor], which: usize, f: impl Fn(&[Tensor]) -> Tensor) {
        let (_, grads) = value_and_grads(inputs, &f);
        tch::manual_seed(99);
        let weights = Tensor::randn_like(&f(inputs).abs());
        let loss = |t: &[Tensor]| {
            let out = f(t);
            if out.is_complex() {
                (out.real() * &weights + out.imag() * &weights).sum(None)
            } else {
                (out * &weights).sum(None)
            }
            .double_value(&[])
        };
        let flat = inputs[which].view(-1);
        let numel = flat.size()[0];
        let eps = 1e-6;
        for index in [0, numel / 3, numel / 2, numel - 1] {
            let probe = |delta: f64| {
                let moved: Vec<Tensor> = inputs.iter().map(|t| t.copy()).collect();
                let _ = moved[which].view(-1).get(index).g_add_scalar_(delta);
                loss(&moved)
            };
            let numeric = (probe(eps) - probe(-eps)) / (2.0 * eps);
            let analytic = grads[which].view(-1).get(index).double_value(&[]);
            assert!(
                (numeric - analytic).abs() <= 1e-6 * (1.0 + analytic.abs()),
                "input {which}[{index}]: {numeric} vs {analytic}"
            );
        }
    }

    #[test]
    fn gradients_agree_with_finite_differences_in_float64() {
        let inputs = selective_inputs(Kind::Double, CHUNK + 11);
        for which in 0..5 {
            finite_difference_check(&inputs, which, |t| selective(&t[0], &t[1], &t[2], &t[3], &t[4], Form::Native));
        }
        tch::manual_seed(5);
        let opts = (Kind::Double, Device::Cpu);
        let len = CHUNK + 3;
        let real = [Tensor::rand([2, len, 3], opts), Tensor::randn([2, len, 3], opts)];
        for which in 0..2 {
            finite_difference_check(&real, which, |t| linear(&t[0], &t[1], Form::Native));
        }
    }

    #[test]
    fn half_inputs_scan_in_float32_and_bad_shapes_fail_with_a_message() {
        let inputs = selective_inputs(Kind::Float, 10);
        let half: Vec<Tensor> = inputs.iter().map(|t| t.to_kind(Kind::BFloat16)).collect();
        let y = selective(&half[0], &half[1], &half[2], &half[3], &half[4], Form::Native);
        assert_eq!(y.kind(), Kind::Float);
        let caught = std::panic::catch_unwind(|| linear(&inputs[0], &inputs[0].to_kind(Kind::Double), Form::Native));
        let message = caught.expect_err("mismatched shapes must fail");
        let text = message.downcast_ref::<String>().expect("a formatted message");
        assert!(text.contains("fused linear scan"), "{text}");
    }
}
