//! Peak memory of libtorch's CUDA caching allocator (what `torch.cuda.max_memory_allocated`
//! reports), read through a small C++ shim (csrc/cuda_memory.cpp) that build.rs compiles against
//! the torch wheel's headers. A shim rather than NVML: NVML sees the whole device (other
//! processes, the allocator's cached but free blocks, the CUDA context), while the allocator's
//! own peak is the model's footprint and can be reset before the timed region. Without a CUDA
//! libtorch the shim is not built and these return None.
use tch::Device;

#[cfg(seqbench_cuda_memory)]
extern "C" {
    fn seqbench_cuda_peak_allocated_bytes(device: i32) -> i64;
    fn seqbench_cuda_reset_peak(device: i32) -> i32;
}

/// Whether this build can measure CUDA memory.
pub const AVAILABLE: bool = cfg!(seqbench_cuda_memory);

/// Resets the peak so that it covers only what follows.
pub fn reset_peak(device: Device) {
    #[cfg(seqbench_cuda_memory)]
    if let Device::Cuda(i) = device {
        // SAFETY: plain C ABI; the shim catches every C++ exception.
        unsafe { seqbench_cuda_reset_peak(i as i32) };
    }
    #[cfg(not(seqbench_cuda_memory))]
    let _ = device;
}

/// Peak bytes allocated on `device` since the last reset; None off CUDA or without the shim.
pub fn peak_bytes(device: Device) -> Option<u64> {
    #[cfg(seqbench_cuda_memory)]
    if let Device::Cuda(i) = device {
        // SAFETY: as above.
        let bytes = unsafe { seqbench_cuda_peak_allocated_bytes(i as i32) };
        return u64::try_from(bytes).ok();
    }
    let _ = device;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_has_no_cuda_peak() {
        reset_peak(Device::Cpu);
        assert_eq!(peak_bytes(Device::Cpu), None);
    }

    /// On a CUDA machine, a 256 MiB allocation shows in the peak. Skipped without a GPU.
    #[test]
    fn cuda_peak_sees_an_allocation() {
        if !tch::Cuda::is_available() || !AVAILABLE {
            eprintln!("SKIPPED cuda_peak_sees_an_allocation: no CUDA device or no shim in this build");
            return;
        }
        let device = Device::Cuda(0);
        reset_peak(device);
        let t = tch::Tensor::zeros([64, 1024, 1024], (tch::Kind::Float, device));
        let peak = peak_bytes(device).expect("a peak on CUDA");
        assert!(peak >= 256 << 20, "peak {peak}");
        drop(t);
    }
}
