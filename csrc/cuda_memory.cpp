// Peak memory of libtorch's CUDA caching allocator, which tch does not expose. Compiled by
// build.rs against the headers of the torch wheel when that wheel has CUDA; the Rust side
// (src/runner/cuda_memory.rs) calls it only for CUDA devices. Every entry point catches C++
// exceptions: none may unwind into Rust.
#include <c10/cuda/CUDACachingAllocator.h>

#include <cstdint>

extern "C" int64_t seqbench_cuda_peak_allocated_bytes(int32_t device) noexcept {
  try {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  } catch (...) {
    return -1;
  }
}

extern "C" int32_t seqbench_cuda_reset_peak(int32_t device) noexcept {
  try {
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
    return 0;
  } catch (...) {
    return -1;
  }
}
