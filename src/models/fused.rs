//! The fused ops of csrc/: C++ with their own autograd, called on tch tensors (both sides share
//! the wheel's libtorch, so a tensor crosses as its `at::Tensor*`).
//! - `linear`: h_t = a_t ⊙ h_{t−1} + b_t, real or complex; its autograd keeps a and h only.
//! - `Selective`: Mamba's selective scan with D and the gate, which keeps the (batch, L, E, N)
//!   states only at chunk boundaries and recomputes a chunk at a time in the backward.
//! - `causal_conv`: the causal depthwise convolution (+ SiLU) on (batch, L, E), CPU only.
//!
//! On CPU each is one loop over time per batch element (parallel over the batch); elsewhere the
//! scans run the same scheme as ATen ops chunk by chunk. Half-precision inputs are computed in
//! float32, as the official kernels accumulate. Without the compiled shim (no libtorch headers
//! at build time) `AVAILABLE` is false and the mixers fall back to their reference paths.
use super::at_least_f32;
use super::scan::CHUNK;
use tch::Tensor;

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

/// h_t = a_t ⊙ h_{t−1} + b_t along dim 1 (h_{−1} = 0); `a` broadcasts to `b`'s shape. An `a`
/// of b's trailing shape (one value per channel for every step, as the LRU's λ) is scanned as
/// it is, without a (batch, L, …) copy.
pub fn linear(a: &Tensor, b: &Tensor, form: Form) -> Tensor {
    let (a, b) = (at_least_f32(a), at_least_f32(b));
    let (a_shape, b_shape) = (a.size(), b.size());
    let a = if a_shape == b_shape || (b_shape.len() >= 2 && a_shape == b_shape[2..]) { a } else { a.expand_as(&b) };
    shim::linear(&a, &b, CHUNK, form == Form::Aten)
}

/// Mamba's selective scan with its skip and gate, as selective_scan_fn(u, delta, A, B, C, D, z)
/// with Δ already through its softplus: out_t[e] = (Σ_n C_t[n] h_t[e, n] + D[e] x_t[e]) ·
/// silu(z_t[e]) with h_t[e, n] = exp(Δ_t[e] A[e, n]) h_{t−1}[e, n] + Δ_t[e] B_t[n] x_t[e].
/// x, Δ, z: (batch, L, E); A: (E, N); B, C: (batch, L, N); D: (E). Float32 for half inputs.
pub struct Selective<'a> {
    pub x: &'a Tensor,
    pub delta: &'a Tensor,
    pub a: &'a Tensor,
    pub b: &'a Tensor,
    pub c: &'a Tensor,
    pub d: &'a Tensor,
    /// The gate; none: out = C h + D x.
    pub z: Option<&'a Tensor>,
}

impl Selective<'_> {
    pub fn run(&self, form: Form) -> Tensor {
        let kind = at_least_f32(self.x).kind();
        let [x, delta, a, b, c, d] = [self.x, self.delta, self.a, self.b, self.c, self.d].map(|t| t.to_kind(kind));
        let z = self.z.map(|z| z.to_kind(kind));
        shim::selective([&x, &delta, &a, &b, &c, &d], z.as_ref(), CHUNK, form == Form::Aten)
    }
}

/// act(causal depthwise conv(x)): x (batch, L, E) on the CPU, weight (E, K) with w[·, K−1] on
/// the current step, bias (E); SiLU when `silu`. As conv1d(x.transpose(1, 2), weight.unsqueeze(1),
/// bias, padding = K − 1, groups = E) cut to L steps and transposed back.
pub fn causal_conv(x: &Tensor, weight: &Tensor, bias: &Tensor, silu: bool) -> Tensor {
    let x = at_least_f32(x);
    let kind = x.kind();
    shim::causal_conv(&x, &weight.to_kind(kind), &bias.to_kind(kind), silu)
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
            d: *const c_void,
            z: *const c_void,
            chunk: i64,
            generic: c_int,
            out: *mut *mut c_void,
        ) -> c_int;
        fn seqbench_causal_conv(
            x: *const c_void,
            w: *const c_void,
            bias: *const c_void,
            silu: c_int,
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

    /// `inputs`: x, Δ, A, B, C, D.
    pub fn selective(inputs: [&Tensor; 6], z: Option<&Tensor>, chunk: i64, generic: bool) -> Tensor {
        let [x, dt, a, b, c, d] = inputs.map(ptr);
        let z = z.map_or(std::ptr::null(), ptr);
        let mut out = std::ptr::null_mut();
        // SAFETY: as above; a null z means no gate.
        let status = unsafe { seqbench_selective_scan(x, dt, a, b, c, d, z, chunk, c_int::from(generic), &mut out) };
        take(status, out, "fused selective scan")
    }

    pub fn causal_conv(x: &Tensor, w: &Tensor, bias: &Tensor, silu: bool) -> Tensor {
        let mut out = std::ptr::null_mut();
        // SAFETY: as above.
        let status = unsafe { seqbench_causal_conv(ptr(x), ptr(w), ptr(bias), c_int::from(silu), &mut out) };
        take(status, out, "fused causal conv")
    }
}

#[cfg(not(seqbench_scan))]
mod shim {
    use tch::Tensor;

    const MISSING: &str = "the fused ops were not compiled (no libtorch headers at build time)";

    pub fn linear(_: &Tensor, _: &Tensor, _: i64, _: bool) -> Tensor {
        panic!("{MISSING}")
    }

    pub fn selective(_: [&Tensor; 6], _: Option<&Tensor>, _: i64, _: bool) -> Tensor {
        panic!("{MISSING}")
    }

    pub fn causal_conv(_: &Tensor, _: &Tensor, _: &Tensor, _: bool) -> Tensor {
        panic!("{MISSING}")
    }
}

#[cfg(all(test, seqbench_scan))]
mod tests {
    use super::*;
    use crate::models::scan::sequential_scan;
    use tch::{Device, Kind};

    fn max_diff(x: &Tensor, y: &Tensor) -> f64 {
        (x - y).abs().max().double_value(&[])
    }

    /// Σ w ⊙ out (real and imaginary parts alike) with fixed weights w that differ by position,
    /// so every output position's gradient matters. Not drawn from the global RNG, which tests
    /// running at the same time also draw from.
    fn weighted_sum(out: &Tensor) -> Tensor {
        let numel = out.numel() as i64;
        let kind = if matches!(out.kind(), Kind::Double | Kind::ComplexDouble) { Kind::Double } else { Kind::Float };
        let weights = (Tensor::arange(numel, (kind, Device::Cpu)) * 0.7 + 0.3).sin().view(out.size().as_slice());
        if out.is_complex() {
            (out.real() * &weights + out.imag() * &weights).sum(None)
        } else {
            (out * weights).sum(None)
        }
    }

    /// f(leaves) and the gradients of `weighted_sum(f(leaves))`.
    fn value_and_grads(leaves: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor) -> (Tensor, Vec<Tensor>) {
        let leaves: Vec<Tensor> = leaves.iter().map(|t| t.detach().set_requires_grad(true)).collect();
        let out = f(&leaves);
        let grads = Tensor::run_backward(&[weighted_sum(&out)], &leaves, false, false);
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

    /// x, Δ, A, B, C, D, z.
    fn reference_selective(t: &[Tensor]) -> Tensor {
        let (x, dt, a, b, c, d, z) = (&t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6]);
        let decay = (dt.unsqueeze(-1) * a).exp();
        let input = dt.unsqueeze(-1) * b.unsqueeze(2) * x.unsqueeze(-1);
        let y = (sequential_scan(&decay, &input) * c.unsqueeze(2)).sum_dim_intlist([-1i64].as_slice(), false, None);
        (y + x * d) * z.silu()
    }

    fn fused_selective(t: &[Tensor], form: Form) -> Tensor {
        Selective { x: &t[0], delta: &t[1], a: &t[2], b: &t[3], c: &t[4], d: &t[5], z: Some(&t[6]) }.run(form)
    }

    /// Mamba's inputs at a length crossing several chunks, with Δ and A in their usual ranges.
    fn selective_inputs(kind: Kind, len: i64) -> Vec<Tensor> {
        tch::manual_seed(3);
        let opts = (kind, Device::Cpu);
        let (batch, e, n) = (2, 40, 4); // one full block of 32 channels and a remainder
        vec![
            Tensor::randn([batch, len, e], opts),
            (Tensor::randn([batch, len, e], opts) - 2.0).softplus(),
            -Tensor::rand([e, n], opts) * 3.0 - 0.1,
            Tensor::randn([batch, len, n], opts),
            Tensor::randn([batch, len, n], opts),
            Tensor::randn([e], opts),
            Tensor::randn([batch, len, e], opts),
        ]
    }

    #[test]
    fn selective_scan_matches_the_reference_in_outputs_and_gradients() {
        let inputs = selective_inputs(Kind::Float, 2 * CHUNK + 9);
        let want = value_and_grads(&inputs, reference_selective);
        for form in [Form::Native, Form::Aten] {
            let got = value_and_grads(&inputs, |t| fused_selective(t, form));
            assert_close(&format!("{form:?}"), &got, &want, 1e-5);
        }
    }

    #[test]
    fn linear_scan_matches_the_reference_for_real_complex_and_constant_decays() {
        tch::manual_seed(4);
        let opts = (Kind::Float, Device::Cpu);
        let len = 2 * CHUNK + 5;
        let real = [Tensor::rand([2, len, 3, 2], opts), Tensor::randn([2, len, 3, 2], opts)];
        let radius = Tensor::rand([2, len, 5], opts) * 0.99;
        let complex = [
            Tensor::polar(&radius, &Tensor::randn([2, len, 5], opts)),
            Tensor::complex(&Tensor::randn([2, len, 5], opts), &Tensor::randn([2, len, 5], opts)),
        ];
        let constant = [
            Tensor::polar(&(Tensor::rand([5], opts) * 0.99), &Tensor::randn([5], opts)),
            Tensor::complex(&Tensor::randn([2, len, 5], opts), &Tensor::randn([2, len, 5], opts)),
        ];
        let check = |name: &str, inputs: [Tensor; 2]| {
            let want = value_and_grads(&inputs, |t| sequential_scan(&t[0].expand_as(&t[1]), &t[1]));
            for form in [Form::Native, Form::Aten] {
                let got = value_and_grads(&inputs, |t| linear(&t[0], &t[1], form));
                assert_close(&format!("{name} {form:?}"), &got, &want, 1e-5);
            }
        };
        for (name, inputs) in [("real", real), ("complex", complex), ("constant complex", constant)] {
            check(name, inputs);
        }
    }

    /// A flat real view of t's numbers: t itself, or the real and imaginary parts of a complex t
    /// (whose gradient holds ∂L/∂Re and ∂L/∂Im there, PyTorch's convention).
    fn real_parts(t: &Tensor) -> Tensor {
        if t.is_complex() { t.view_as_real() } else { t.shallow_clone() }.view(-1)
    }

    /// The analytic gradient of input `which` at a few positions (real and imaginary parts
    /// alike) against central differences in float64.
    fn finite_difference_check(inputs: &[Tensor], which: usize, f: impl Fn(&[Tensor]) -> Tensor) {
        let (_, grads) = value_and_grads(inputs, &f);
        let loss = |t: &[Tensor]| weighted_sum(&f(t)).double_value(&[]);
        let numel = real_parts(&inputs[which]).size()[0];
        let eps = 1e-6;
        for index in [0, numel / 3, numel / 2, numel - 1] {
            let probe = |delta: f64| {
                let moved: Vec<Tensor> = inputs.iter().map(|t| t.copy()).collect();
                let _ = real_parts(&moved[which]).get(index).g_add_scalar_(delta);
                loss(&moved)
            };
            let numeric = (probe(eps) - probe(-eps)) / (2.0 * eps);
            let analytic = real_parts(&grads[which]).get(index).double_value(&[]);
            assert!(
                (numeric - analytic).abs() <= 1e-6 * (1.0 + analytic.abs()),
                "input {which}[{index}]: {numeric} vs {analytic}"
            );
        }
    }

    #[test]
    fn gradients_agree_with_finite_differences_in_float64() {
        let inputs = selective_inputs(Kind::Double, CHUNK + 11);
        for which in 0..inputs.len() {
            finite_difference_check(&inputs, which, |t| fused_selective(t, Form::Native));
        }
        tch::manual_seed(5);
        let opts = (Kind::Double, Device::Cpu);
        let len = CHUNK + 3;
        let real = [Tensor::rand([2, len, 3], opts), Tensor::randn([2, len, 3], opts)];
        let radius = Tensor::rand([2, len, 3], opts) * 0.99;
        let complex = [
            Tensor::polar(&radius, &Tensor::randn([2, len, 3], opts)),
            Tensor::complex(&Tensor::randn([2, len, 3], opts), &Tensor::randn([2, len, 3], opts)),
        ];
        for inputs in [real, complex] {
            for which in 0..2 {
                finite_difference_check(&inputs, which, |t| linear(&t[0], &t[1], Form::Native));
            }
        }
    }

    fn reference_conv(t: &[Tensor], silu: bool) -> Tensor {
        let (x, w, bias) = (&t[0], &t[1], &t[2]);
        let (len, width, k) = (x.size()[1], x.size()[2], w.size()[1]);
        let y = x.transpose(1, 2).conv1d(&w.unsqueeze(1), Some(bias), [1], [k - 1], [1], width);
        let y = y.narrow(-1, 0, len).transpose(1, 2);
        if silu {
            y.silu()
        } else {
            y
        }
    }

    #[test]
    fn causal_conv_matches_conv1d_and_finite_differences() {
        tch::manual_seed(6);
        for (kind, tol) in [(Kind::Float, 1e-5), (Kind::Double, 1e-12)] {
            let opts = (kind, Device::Cpu);
            let inputs = [Tensor::randn([2, 9, 37], opts), Tensor::randn([37, 4], opts), Tensor::randn([37], opts)];
            for silu in [true, false] {
                let want = value_and_grads(&inputs, |t| reference_conv(t, silu));
                let got = value_and_grads(&inputs, |t| causal_conv(&t[0], &t[1], &t[2], silu));
                assert_close(&format!("{kind:?} silu {silu}"), &got, &want, tol);
            }
        }
        let inputs = [
            Tensor::randn([2, 6, 5], (Kind::Double, Device::Cpu)),
            Tensor::randn([5, 4], (Kind::Double, Device::Cpu)),
            Tensor::randn([5], (Kind::Double, Device::Cpu)),
        ];
        for which in 0..3 {
            finite_difference_check(&inputs, which, |t| causal_conv(&t[0], &t[1], &t[2], true));
        }
    }

    #[test]
    fn half_inputs_scan_in_float32_and_bad_shapes_fail_with_a_message() {
        let inputs = selective_inputs(Kind::Float, 10);
        let half: Vec<Tensor> = inputs.iter().map(|t| t.to_kind(Kind::BFloat16)).collect();
        let y = fused_selective(&half, Form::Native);
        assert_eq!(y.kind(), Kind::Float);
        let caught = std::panic::catch_unwind(|| linear(&inputs[0], &inputs[0].to_kind(Kind::Double), Form::Native));
        let message = caught.expect_err("mismatched shapes must fail");
        let text = message.downcast_ref::<String>().expect("a formatted message");
        assert!(text.contains("fused linear scan"), "{text}");
    }
}
