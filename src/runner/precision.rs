//! Mixed precision as PyTorch's AMP does it: float32 master weights and optimiser state, the
//! forward pass under autocast (matmuls and convolutions in bfloat16 or float16, reductions,
//! norms and elementwise recurrences in the dtype of their inputs, so scans fed float32 decays
//! stay float32), the loss in float32, and for float16 dynamic loss scaling as
//! `torch.amp.GradScaler`. Autocast and the matmul precision go through csrc/amp.cpp, as tch
//! does not expose them for the CPU.
use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

/// The `dtype` of a suite's training settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Float32,
    Bfloat16,
    Float16,
}

pub const DTYPES: &str = "float32, bfloat16 or float16";

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Bfloat16 => "bfloat16",
            Precision::Float16 => "float16",
        }
    }

    /// The dtype the activations take under this precision's autocast.
    pub fn activation_kind(self) -> Kind {
        match self {
            Precision::Float32 => Kind::Float,
            Precision::Bfloat16 => Kind::BFloat16,
            Precision::Float16 => Kind::Half,
        }
    }

    pub fn parse(dtype: &str) -> Option<Self> {
        match dtype {
            "float32" => Some(Precision::Float32),
            "bfloat16" => Some(Precision::Bfloat16),
            "float16" => Some(Precision::Float16),
            _ => None,
        }
    }

    /// Autocast for `device` until the guard is dropped; nothing for float32.
    pub fn autocast(self, device: Device) -> Result<Autocast> {
        let dtype = match self {
            Precision::Float32 => return Ok(Autocast(None)),
            Precision::Bfloat16 => 0,
            Precision::Float16 => 1,
        };
        let device = if device.is_cuda() { 1 } else { 0 };
        let was = shim::autocast_enter(device, dtype)?;
        Ok(Autocast(Some((device, was))))
    }
}

/// Why mixed precision is unavailable in a build without the shim.
const NO_SHIM: &str = "this seqbench was built without libtorch's headers (csrc/amp.cpp not compiled), so without \
     mixed precision; build it against the libtorch that scripts/setup.sh installs";

/// Whether this build has the shim (libtorch's headers were found when it was compiled).
pub fn available() -> bool {
    cfg!(seqbench_amp)
}

/// An autocast region: restores the previous state when dropped.
pub struct Autocast(Option<(i32, i32)>);

impl Drop for Autocast {
    fn drop(&mut self) {
        if let Some((device, was)) = self.0 {
            if shim::autocast_exit(device, was).is_err() {
                tracing::warn!("leaving autocast failed");
            }
        }
    }
}

/// `highest` (float32 matmuls) or `high` (TF32 on CUDA), as `torch.set_float32_matmul_precision`.
pub fn set_matmul_precision(precision: &str) -> Result<()> {
    if precision == "highest" && !available() {
        return Ok(()); // libtorch's default
    }
    shim::set_matmul_precision(precision)
}

/// Dynamic loss scaling with `torch.amp.GradScaler`'s defaults: start at 2^16, halve and skip
/// the step when a gradient is inf or NaN, double after 2000 steps in a row without one.
#[derive(Debug, Clone, PartialEq)]
pub struct GradScaler {
    pub scale: f64,
    good_steps: u32,
    /// Steps skipped for non-finite gradients.
    pub skipped: u64,
}

const GROWTH_INTERVAL: u32 = 2000;

impl Default for GradScaler {
    fn default() -> Self {
        GradScaler { scale: 65536.0, good_steps: 0, skipped: 0 }
    }
}

impl GradScaler {
    /// Divides the gradients of `params` by the scale; returns whether they are all finite (the
    /// step may be taken) and updates the scale.
    pub fn unscale(&mut self, params: &[Tensor]) -> bool {
        let inverse = 1.0 / self.scale;
        let mut finite = true;
        for p in params {
            let mut g = p.grad();
            if !g.defined() {
                continue;
            }
            let _ = g.g_mul_scalar_(inverse);
            finite &= g.isfinite().all().int64_value(&[]) == 1;
        }
        self.update(finite);
        finite
    }

    fn update(&mut self, finite: bool) {
        if finite {
            self.good_steps += 1;
            if self.good_steps == GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale *= 0.5;
            self.good_steps = 0;
            self.skipped += 1;
        }
    }
}

#[cfg(seqbench_amp)]
mod shim {
    use anyhow::{bail, Result};
    use std::os::raw::{c_char, c_int};

    extern "C" {
        fn seqbench_autocast_enter(device: c_int, dtype: c_int) -> c_int;
        fn seqbench_autocast_exit(device: c_int, was_enabled: c_int) -> c_int;
        fn seqbench_set_matmul_precision(precision: *const c_char) -> c_int;
    }

    pub fn autocast_enter(device: i32, dtype: i32) -> Result<i32> {
        // SAFETY: plain values in and out; the C++ side catches every exception.
        match unsafe { seqbench_autocast_enter(device, dtype) } {
            -1 => bail!("libtorch refused autocast on this device and dtype"),
            was => Ok(was),
        }
    }

    pub fn autocast_exit(device: i32, was: i32) -> Result<()> {
        // SAFETY: as above.
        match unsafe { seqbench_autocast_exit(device, was) } {
            0 => Ok(()),
            _ => bail!("libtorch failed to leave autocast"),
        }
    }

    pub fn set_matmul_precision(precision: &str) -> Result<()> {
        let text = std::ffi::CString::new(precision)?;
        // SAFETY: a NUL-terminated string that outlives the call.
        match unsafe { seqbench_set_matmul_precision(text.as_ptr()) } {
            0 => Ok(()),
            _ => bail!("libtorch refused matmul precision `{precision}`"),
        }
    }
}

#[cfg(not(seqbench_amp))]
mod shim {
    use anyhow::{bail, Result};

    pub fn autocast_enter(_: i32, _: i32) -> Result<i32> {
        bail!(super::NO_SHIM)
    }

    pub fn autocast_exit(_: i32, _: i32) -> Result<()> {
        Ok(())
    }

    pub fn set_matmul_precision(_: &str) -> Result<()> {
        bail!(super::NO_SHIM)
    }
}

/// Refuses float16 on the CPU, with why: libtorch's CPU autocast keeps `exp`, `log` and
/// `softplus` in float16 (CUDA's runs them in float32), so gated recurrences overflow to NaN,
/// and its CPU RNN kernels (oneDNN) have no float16 at all. bfloat16 is the CPU's
/// mixed precision; float16 with loss scaling is for CUDA.
pub fn check_device(precision: Precision, device: Device) -> Result<()> {
    if precision == Precision::Float16 && !device.is_cuda() {
        bail!(
            "dtype float16 on the CPU: libtorch's CPU autocast leaves exp/log in float16 (gated recurrences overflow) \
             and its LSTM/GRU kernels have none; use bfloat16 on the CPU, float16 on CUDA"
        );
    }
    Ok(())
}

/// Refuses what this build cannot run, before any work.
pub fn check(precision: Precision, matmul: &str) -> Result<()> {
    if precision != Precision::Float32 && !available() {
        bail!("dtype {}: {}", precision.name(), NO_SHIM);
    }
    if matmul != "highest" && !available() {
        bail!("matmul_precision {matmul}: {}", NO_SHIM);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_halves_on_overflow_and_doubles_after_a_clean_run() {
        let mut s = GradScaler::default();
        s.update(false);
        assert_eq!((s.scale, s.skipped), (32768.0, 1));
        for _ in 0..GROWTH_INTERVAL {
            s.update(true);
        }
        assert_eq!(s.scale, 65536.0);
    }

    #[test]
    fn unscaling_divides_the_gradients_and_sees_infinities() {
        let w = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        (&w * 8.0).sum(tch::Kind::Float).backward();
        let mut s = GradScaler { scale: 4.0, ..Default::default() };
        assert!(s.unscale(std::slice::from_ref(&w)));
        assert_eq!(Vec::<f32>::try_from(w.grad()).unwrap(), [2.0, 2.0]);
        let v = Tensor::from_slice(&[1.0f32]).set_requires_grad(true);
        (&v * f64::INFINITY).sum(tch::Kind::Float).backward();
        assert!(!s.unscale(std::slice::from_ref(&v)));
        assert_eq!(s.scale, 2.0);
    }
}
