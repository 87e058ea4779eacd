//! Denormal (subnormal) floats: arithmetic on them is one to two orders of magnitude slower on
//! x86, and backpropagation through time on a task that labels only the last position makes
//! gradients shrink into them. A plain PyTorch user keeps them (`torch.set_flush_denormal` is
//! off by default), and then an LSTM on `induction` trains 3–12× slower than it can; seqbench's
//! job processes flush them by default (`train.flush_denormal`) and every record says which.
//!
//! The flags (x86: FTZ and DAZ in MXCSR; aarch64: FZ in FPCR) belong to a thread. Threads
//! inherit the creating thread's flags, so setting them before libtorch creates its intra-op
//! pool reaches every thread that runs tensor code; a pool created earlier keeps what it had,
//! which [`apply`] detects by probing through the pool.
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

pub use seqbench_core::record::denormals::{FLUSHED, KEPT};

#[cfg(target_arch = "x86_64")]
mod flags {
    /// MXCSR's flush-to-zero (results) and denormals-are-zero (inputs) bits.
    const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

    fn read() -> u32 {
        let mut csr = 0u32;
        // SAFETY: stmxcsr stores the 32-bit control register into a valid local.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
        csr
    }

    pub fn set(flush: bool) {
        let csr = if flush { read() | FTZ_DAZ } else { read() & !FTZ_DAZ };
        // SAFETY: ldmxcsr loads a value that differs from the current one only in FTZ/DAZ.
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack)) };
    }

    pub fn get() -> bool {
        read() & FTZ_DAZ == FTZ_DAZ
    }
}

#[cfg(target_arch = "aarch64")]
mod flags {
    /// FPCR's flush-to-zero bit (inputs and results).
    const FZ: u64 = 1 << 24;

    fn read() -> u64 {
        let fpcr: u64;
        // SAFETY: reading FPCR has no side effects.
        unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack)) };
        fpcr
    }

    pub fn set(flush: bool) {
        let fpcr = if flush { read() | FZ } else { read() & !FZ };
        // SAFETY: changes only the flush-to-zero mode.
        unsafe { std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack)) };
    }

    pub fn get() -> bool {
        read() & FZ == FZ
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod flags {
    pub fn set(_: bool) {}
    pub fn get() -> bool {
        false
    }
}

/// Sets this thread's flush-to-zero mode (threads it creates afterwards inherit it).
pub fn set_this_thread(flush: bool) {
    flags::set(flush);
}

/// Whether this thread flushes denormals.
pub fn this_thread_flushes() -> bool {
    flags::get()
}

/// The share of denormal results of one elementwise product large enough to be split across
/// libtorch's intra-op threads: 0 when every thread flushes, 1 when none does.
pub fn probe_through_pool() -> f64 {
    const N: i64 = 1 << 20;
    tch::no_grad(|| {
        let tiny = Tensor::full([N], 1e-30, (Kind::Float, tch::Device::Cpu));
        let product = &tiny * 1e-10; // 1e-40: below f32's smallest normal, 1.2e-38
        count_subnormal(&product) as f64 / N as f64
    })
}

/// How many values of `t` are subnormal (nonzero and smaller than the smallest normal).
pub fn count_subnormal(t: &Tensor) -> i64 {
    let smallest_normal = match t.kind() {
        Kind::Double => f64::MIN_POSITIVE,
        _ => f32::MIN_POSITIVE as f64,
    };
    let a = t.detach().abs();
    (a.gt(0.0).logical_and(&a.lt(smallest_normal))).sum(Kind::Int64).int64_value(&[])
}

/// Sets this thread's mode and checks through the intra-op pool that it holds there too.
/// Returns what the record says. Fails when the pool disagrees: it was created, with the other
/// mode, before this job (an `inline` job after one with the other setting).
pub fn apply(flush: bool) -> Result<&'static str> {
    set_this_thread(flush);
    let denormal = probe_through_pool();
    match (flush, denormal) {
        (true, 0.0) => Ok(FLUSHED),
        (false, 1.0) => Ok(KEPT),
        (_, d) => bail!(
            "flush_denormal: {flush} reached this thread but not all of libtorch's worker threads \
             ({:.0} % of a probe's denormal results were kept); the pool was started with the other \
             setting by an earlier job in this process: run jobs with different flush_denormal \
             values with `isolation: process`",
            100.0 * d
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_is_per_thread_and_decides_whether_products_underflow_to_zero() {
        // A thread of its own, so that other tests' threads keep their mode; one intra-op
        // thread is not guaranteed, so the product is checked on a single element here.
        std::thread::spawn(|| {
            let tiny = Tensor::from_slice(&[1e-30f32]);
            set_this_thread(false);
            assert!(!this_thread_flushes());
            assert_eq!(count_subnormal(&(&tiny * 1e-10)), 1);
            set_this_thread(true);
            assert!(this_thread_flushes());
            assert_eq!(count_subnormal(&(&tiny * 1e-10)), 0);
            set_this_thread(false);
        })
        .join()
        .unwrap();
        assert_eq!(count_subnormal(&Tensor::from_slice(&[0.0f64, 1e-310, 1.0])), 1);
    }
}
