// Mixed precision as PyTorch's AMP sets it up, which tch does not expose: autocast per device
// type with its lower-precision dtype, and the float32 matmul precision (TF32 on CUDA).
// Exceptions never cross into Rust: each function reports failure by its return value.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

extern "C" {

// device: 0 CPU, 1 CUDA. dtype: 0 bfloat16, 1 float16. Returns whether autocast was enabled
// before (-1 on error).
int seqbench_autocast_enter(int device, int dtype) {
  try {
    const auto type = device == 1 ? at::kCUDA : at::kCPU;
    const bool was = at::autocast::is_autocast_enabled(type);
    at::autocast::set_autocast_dtype(type, dtype == 1 ? at::kHalf : at::kBFloat16);
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::increment_nesting();
    return was ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

// Restores the state before the matching enter; the cast cache is cleared when the outermost
// region ends, as torch.autocast does.
int seqbench_autocast_exit(int device, int was_enabled) {
  try {
    const auto type = device == 1 ? at::kCUDA : at::kCPU;
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(type, was_enabled == 1);
    return 0;
  } catch (...) {
    return -1;
  }
}

// "highest" or "high" (TF32 matmuls and convolutions on CUDA), as
// torch.set_float32_matmul_precision.
int seqbench_set_matmul_precision(const char* precision) {
  try {
    at::globalContext().setFloat32MatmulPrecision(precision);
    return 0;
  } catch (...) {
    return -1;
  }
}
}
