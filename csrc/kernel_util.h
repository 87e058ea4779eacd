// What the fused ops of csrc/ share: multi-versioned kernels, a vectorisable exp, dense inputs
// and error reporting that never lets a C++ exception cross into Rust.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/complex.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SEQBENCH_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SEQBENCH_KERNEL
#endif
#define SEQBENCH_INLINE inline __attribute__((always_inline))

namespace seqbench {

// The message of the last failure on this thread, for the entry points' *_last_error.
inline thread_local std::string last_error;

// ---------------------------------------------------------------------------------------------
// Element helpers.

// exp for float32 written so that loops over it vectorise (Cephes' expf: range reduction by
// ln 2 and a degree-6 polynomial, ~1 ulp); std::exp is a library call per element. Below
// −87.3 the result is 0, as expf underflows there (bar denormals).
SEQBENCH_INLINE float fast_exp(float x) {
  const float clamped = std::min(std::max(x, -87.3f), 88.7f);
  const float t = clamped * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest without a libcall
  const float r = clamped - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < -87.3f ? 0.0f : p * scale;
}
SEQBENCH_INLINE double fast_exp(double x) { return std::exp(x); }

template <typename T>
SEQBENCH_INLINE T conj_of(T x) {
  return x;
}
template <typename T>
SEQBENCH_INLINE c10::complex<T> conj_of(c10::complex<T> z) {
  return c10::complex<T>(z.real(), -z.imag());
}

// A plain dense copy: no lazy conjugation or negation, contiguous.
inline at::Tensor dense(const at::Tensor& t) { return t.resolve_conj().resolve_neg().contiguous(); }

template <typename T>
SEQBENCH_INLINE T sigmoid_of(T v) {
  return T(1) / (T(1) + fast_exp(-v));
}

// Name<T> with forward and backward that call the multi-versioned kernels made for T (a
// template cannot carry target_clones itself, so each dtype's kernels are plain functions).
#define SEQBENCH_KERNEL_TABLE(Name, T, forward_fn, backward_fn) \
  template <>                                                    \
  struct Name<T> {                                               \
    template <typename... Args>                                  \
    static void forward(Args... args) {                          \
      forward_fn(args...);                                       \
    }                                                            \
    template <typename... Args>                                  \
    static void backward(Args... args) {                         \
      backward_fn(args...);                                      \
    }                                                            \
  };

// Runs `body`; a C++ exception becomes -1 and its message in last_error.
template <typename F>
int guarded(F&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return -1;
}

inline void check(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

}  // namespace seqbench
