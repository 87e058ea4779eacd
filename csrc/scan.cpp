// Fused scans with their own autograd, called from Rust on tch tensors (see
// src/models/fused.rs):
// - the first-order linear recurrence h_t = a_t ⊙ h_{t−1} + b_t (real or complex) along dim 1;
// - Mamba's selective scan with its skip and gate (selective_scan_fn's u, delta, A, B, C, D, z;
//   Δ arrives after its softplus): out_t[e] = (Σ_n C_t[n] h_t[e,n] + D[e] x_t[e]) · silu(z_t[e])
//   with h_t[e,n] = exp(Δ_t[e] A[e,n]) h_{t−1}[e,n] + Δ_t[e] B_t[n] x_t[e]. It never stores the
//   (batch, L, E, N) states: the forward keeps the states at chunk boundaries only, the backward
//   recomputes one chunk at a time from its boundary and runs the reverse scan through it.
// On CPU both are loops over time, parallel over the batch (at::parallel_for) and vectorised
// over channels; each kernel is compiled for AVX-512, AVX2 and baseline x86-64 and picked at
// load time. On other devices the same schemes run as ATen ops chunk by chunk (doubling scans
// inside a chunk), so memory has the same bound there.
// Exceptions never cross into Rust: each entry point returns -1 and keeps the message for
// seqbench_scan_last_error.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/util/complex.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_util.h"

namespace {

using at::Tensor;
using seqbench::conj_of;
using seqbench::dense;
using seqbench::fast_exp;
using seqbench::sigmoid_of;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// ---------------------------------------------------------------------------------------------
// Linear scan on CPU: (batch, L, D) with D every trailing dimension flattened. `a_step` is D
// when a has a value per step, 0 when one a (D) serves every step and batch element (the LRU's
// λ: no (batch, L, D) copy of it forward, no reduction of one backward).

template <typename T>
SEQBENCH_INLINE void linear_forward_rows(const T* a, const T* b, T* h, int64_t len, int64_t width, int64_t a_step) {
  for (int64_t d = 0; d < width; ++d) h[d] = b[d];
  for (int64_t t = 1; t < len; ++t) {
    const T* at = a + t * a_step;
    const T* bt = b + t * width;
    const T* prev = h + (t - 1) * width;
    T* ht = h + t * width;
#pragma omp simd
    for (int64_t d = 0; d < width; ++d) ht[d] = at[d] * prev[d] + bt[d];
  }
}

// dh_t = g_t + conj(a_{t+1}) dh_{t+1}; grad b = dh; grad a_t = dh_t conj(h_{t−1}), 0 at t = 0,
// written per step, or with a_step 0 summed over the steps into ga (D).
template <typename T>
SEQBENCH_INLINE void linear_backward_rows(const T* a, const T* h, const T* g, T* ga, T* gb, int64_t len,
                                          int64_t width, int64_t a_step) {
  const int64_t last = (len - 1) * width;
  for (int64_t d = 0; d < width; ++d) gb[last + d] = g[last + d];
  for (int64_t t = len - 2; t >= 0; --t) {
    const T* next_a = a + (t + 1) * a_step;
    const T* next_gb = gb + (t + 1) * width;
    const T* gt = g + t * width;
    T* gbt = gb + t * width;
#pragma omp simd
    for (int64_t d = 0; d < width; ++d) gbt[d] = gt[d] + conj_of(next_a[d]) * next_gb[d];
  }
  for (int64_t d = 0; d < width; ++d) ga[d] = T(0);
  for (int64_t t = 1; t < len; ++t) {
    const T* prev = h + (t - 1) * width;
    const T* gbt = gb + t * width;
    if (a_step != 0) {
      T* gat = ga + t * width;
#pragma omp simd
      for (int64_t d = 0; d < width; ++d) gat[d] = gbt[d] * conj_of(prev[d]);
    } else {
#pragma omp simd
      for (int64_t d = 0; d < width; ++d) ga[d] += gbt[d] * conj_of(prev[d]);
    }
  }
}

#define SEQBENCH_LINEAR_KERNELS(T, suffix)                                                                  \
  SEQBENCH_KERNEL void linear_forward_##suffix(const T* a, const T* b, T* h, int64_t len, int64_t width,      \
                                               int64_t a_step) {                                             \
    linear_forward_rows(a, b, h, len, width, a_step);                                                       \
  }                                                                                                         \
  SEQBENCH_KERNEL void linear_backward_##suffix(const T* a, const T* h, const T* g, T* ga, T* gb,             \
                                                int64_t len, int64_t width, int64_t a_step) {               \
    linear_backward_rows(a, h, g, ga, gb, len, width, a_step);                                              \
  }
SEQBENCH_LINEAR_KERNELS(float, f32)
SEQBENCH_LINEAR_KERNELS(double, f64)
SEQBENCH_LINEAR_KERNELS(c10::complex<float>, c64)
SEQBENCH_LINEAR_KERNELS(c10::complex<double>, c128)

template <typename T>
struct LinearKernels;
SEQBENCH_KERNEL_TABLE(LinearKernels, float, linear_forward_f32, linear_backward_f32)
SEQBENCH_KERNEL_TABLE(LinearKernels, double, linear_forward_f64, linear_backward_f64)
SEQBENCH_KERNEL_TABLE(LinearKernels, c10::complex<float>, linear_forward_c64, linear_backward_c64)
SEQBENCH_KERNEL_TABLE(LinearKernels, c10::complex<double>, linear_forward_c128, linear_backward_c128)

// `constant`: a is (D...), one value per channel for every step and batch element.
Tensor cpu_linear_scan(const Tensor& a, const Tensor& b, bool constant) {
  Tensor h = at::empty_like(b);
  const int64_t batch = b.size(0), len = b.size(1), width = b.numel() / std::max<int64_t>(batch * len, 1);
  const int64_t a_step = constant ? 0 : width, a_batch = constant ? 0 : len * width;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(b.scalar_type(), "seqbench_linear_scan", [&] {
    const scalar_t* pa = a.const_data_ptr<scalar_t>();
    const scalar_t* pb = b.const_data_ptr<scalar_t>();
    scalar_t* ph = h.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t off = i * len * width;
        LinearKernels<scalar_t>::forward(pa + i * a_batch, pb + off, ph + off, len, width, a_step);
      }
    });
  });
  return h;
}

std::pair<Tensor, Tensor> cpu_linear_scan_backward(const Tensor& a, const Tensor& h, const Tensor& g,
                                                   bool constant) {
  const int64_t batch = h.size(0), len = h.size(1), width = h.numel() / std::max<int64_t>(batch * len, 1);
  const int64_t a_step = constant ? 0 : width, a_batch = constant ? 0 : len * width;
  // A constant a's gradient: one row per batch element, summed after (no races between threads).
  Tensor ga = constant ? at::empty({batch, width}, h.options()) : at::empty_like(h), gb = at::empty_like(h);
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(h.scalar_type(), "seqbench_linear_scan_backward", [&] {
    const scalar_t* pa = a.const_data_ptr<scalar_t>();
    const scalar_t* ph = h.const_data_ptr<scalar_t>();
    const scalar_t* pg = g.const_data_ptr<scalar_t>();
    scalar_t* pga = ga.mutable_data_ptr<scalar_t>();
    scalar_t* pgb = gb.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t off = i * len * width;
        LinearKernels<scalar_t>::backward(pa + i * a_batch, ph + off, pg + off,
                                          pga + (constant ? i * width : off), pgb + off, len, width, a_step);
      }
    });
  });
  return {constant ? ga.sum(0).view(a.sizes()) : ga, gb};
}

// ---------------------------------------------------------------------------------------------
// Linear scan as ATen ops, for devices without a kernel here: Hillis–Steele doubling inside
// chunks, chunks chained through the carry. Runs without autograd (inside the Function), so
// nothing of the doubling is kept.

// (Π_{s≤t} a_s, h_t) for one chunk (batch, n, ...).
std::pair<Tensor, Tensor> doubling_scan(Tensor a, Tensor h) {
  const int64_t n = a.size(1);
  for (int64_t offset = 1; offset < n; offset *= 2) {
    const int64_t keep = n - offset;
    Tensor a_tail = a.narrow(1, offset, keep);
    h = at::cat({h.narrow(1, 0, offset), h.narrow(1, offset, keep) + a_tail * h.narrow(1, 0, keep)}, 1);
    a = at::cat({a.narrow(1, 0, offset), a_tail * a.narrow(1, 0, keep)}, 1);
  }
  return {a, h};
}

// The chunk's states given the state before it (or none).
Tensor chunk_scan(const Tensor& a, const Tensor& b, const Tensor* before) {
  auto [prefix, h] = doubling_scan(a, b);
  if (before != nullptr) h = h + prefix * before->unsqueeze(1);
  return h;
}

Tensor generic_linear_scan(const Tensor& a, const Tensor& b, int64_t chunk) {
  const int64_t len = a.size(1);
  std::vector<Tensor> outputs;
  Tensor carry;
  for (int64_t start = 0; start < len; start += chunk) {
    const int64_t n = std::min(chunk, len - start);
    Tensor h = chunk_scan(a.narrow(1, start, n), b.narrow(1, start, n), carry.defined() ? &carry : nullptr);
    carry = h.select(1, n - 1);
    outputs.push_back(h);
  }
  return at::cat(outputs, 1);
}

// Shifts one step later in time, with `fill` entering at t = 0.
Tensor shift_later(const Tensor& x, const Tensor& fill) {
  return at::cat({fill.unsqueeze(1), x.narrow(1, 0, x.size(1) - 1)}, 1);
}

// The reverse recurrence dh_t = g_t + conj(a_{t+1}) dh_{t+1} as a forward scan in flipped time.
std::pair<Tensor, Tensor> generic_linear_scan_backward(const Tensor& a, const Tensor& h, const Tensor& g,
                                                       int64_t chunk) {
  Tensor coeff = shift_later(a.conj().flip({1}), at::zeros_like(a.select(1, 0)));
  Tensor gb = generic_linear_scan(coeff, g.flip({1}), chunk).flip({1});
  Tensor ga = gb * shift_later(h, at::zeros_like(h.select(1, 0))).conj();
  return {ga, gb};
}

// a is b's shape, or b's shape without (batch, L) for a constant a.
struct LinearScan : public torch::autograd::Function<LinearScan> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a_in, const Tensor& b_in, int64_t chunk,
                        bool generic) {
    Tensor a = dense(a_in), b = dense(b_in);
    const bool cpu = !generic && b.device().is_cpu(), constant = a.dim() < b.dim();
    Tensor h = cpu ? cpu_linear_scan(a, b, constant) : generic_linear_scan(constant ? a.expand_as(b) : a, b, chunk);
    ctx->save_for_backward({a, h});
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["cpu"] = cpu;
    return h;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor &a = saved[0], &h = saved[1];
    const bool constant = a.dim() < h.dim();
    Tensor g = dense(grads[0]);
    if (ctx->saved_data["cpu"].toBool()) {
      auto [ga, gb] = cpu_linear_scan_backward(a, h, g, constant);
      return {ga, gb, Tensor(), Tensor()};
    }
    auto [ga, gb] = generic_linear_scan_backward(constant ? a.expand_as(h) : a, h, g, ctx->saved_data["chunk"].toInt());
    return {constant ? ga.sum(at::IntArrayRef{0, 1}) : ga, gb, Tensor(), Tensor()};
  }
};

// ---------------------------------------------------------------------------------------------
// Selective scan on CPU, per batch element. The state is kept as h[n][e] so that every inner
// loop runs over the E channels, contiguous and long, and vectorises without a horizontal sum
// per channel.

// One batch element's inputs: x, Δ, z (L, E) (z may be null: no gate); B, C (L, N); A
// transposed (N, E); D (E).
template <typename T>
struct SelectiveRow {
  const T *x, *dt, *At, *B, *C, *D, *z;
  int64_t len, E, N, chunk;
};

// One step for channels [0, width) of a block (pointers already offset to it): updates the
// states h[n][·] (rows E apart) and returns Σ_n C[n] h[n] + D x in y. Called with width = the
// compile-time W for full blocks, so that y stays in registers across the loop over n.
template <typename T, int W>
SEQBENCH_INLINE void forward_block(const T* dtt, const T* xt, const T* At, const T* Bt, const T* Ct, const T* D,
                                   T* h, T* y, int64_t width, int64_t N, int64_t E) {
  T u[W], acc[W];
#pragma omp simd
  for (int64_t e = 0; e < width; ++e) {
    u[e] = dtt[e] * xt[e];
    acc[e] = D[e] * xt[e];
  }
  for (int64_t n = 0; n < N; ++n) {
    const T bn = Bt[n], cn = Ct[n];
    const T* An = At + n * E;
    T* hn = h + n * E;
#pragma omp simd
    for (int64_t e = 0; e < width; ++e) {
      const T state = fast_exp(dtt[e] * An[e]) * hn[e] + u[e] * bn;
      hn[e] = state;
      acc[e] += state * cn;
    }
  }
  for (int64_t e = 0; e < width; ++e) y[e] = acc[e];
}

constexpr int kBlock = 32;  // channels per block: two AVX-512 or four AVX2 registers

// out_t = (Σ_n C_t[n] h_t[n] + D ⊙ x_t) ⊙ silu(z_t). `bounds` (K, N, E) gets the state before
// each chunk of `chunk` steps; h (N·E) and scratch (E) are work space.
template <typename T>
SEQBENCH_INLINE void selective_forward_one(const SelectiveRow<T>& r, T* out, T* bounds, T* h, T* scratch) {
  const int64_t E = r.E, N = r.N;
  T* y = scratch;
  std::fill(h, h + N * E, T(0));
  for (int64_t t = 0; t < r.len; ++t) {
    if (t % r.chunk == 0) std::copy(h, h + N * E, bounds + (t / r.chunk) * N * E);
    const T *xt = r.x + t * E, *dtt = r.dt + t * E, *Bt = r.B + t * N, *Ct = r.C + t * N;
    for (int64_t e0 = 0; e0 < E; e0 += kBlock) {
      const int64_t width = std::min<int64_t>(kBlock, E - e0);
      if (width == kBlock) {
        forward_block<T, kBlock>(dtt + e0, xt + e0, r.At + e0, Bt, Ct, r.D + e0, h + e0, y + e0, kBlock, N, E);
      } else {
        forward_block<T, kBlock>(dtt + e0, xt + e0, r.At + e0, Bt, Ct, r.D + e0, h + e0, y + e0, width, N, E);
      }
    }
    T* ot = out + t * E;
    if (r.z != nullptr) {
      const T* zt = r.z + t * E;
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) ot[e] = y[e] * zt[e] * sigmoid_of(zt[e]);
    } else {
      std::copy(y, y + E, ot);
    }
  }
}

// Gradients: dx, dΔ, dz (L, E; dz only with z), dB, dC (L, N) written; dAt (N, E) and dD (E)
// added into.
template <typename T>
struct SelectiveGrads {
  T *dx, *ddt, *dz, *dB, *dC, *dAt, *dD;
};

// `states` holds chunk + 1 rows of N·E (the state before the chunk, then each step's), `decays`
// chunk rows of exp(Δ A), `carry` N·E: exp(Δ_{t+1} A) ⊙ dh_{t+1}, the gradient reaching h_t
// through the step after; `scratch` 5·E.
template <typename T>
SEQBENCH_INLINE void selective_backward_one(const SelectiveRow<T>& r, const T* bounds, const T* gout,
                                            const SelectiveGrads<T>& g, T* states, T* decays, T* carry,
                                            T* scratch) {
  const int64_t E = r.E, N = r.N, NE = N * E, chunk = r.chunk;
  T *u = scratch, *dy = scratch + E, *through_b = scratch + 2 * E, *through_a = scratch + 3 * E,
    *y = scratch + 4 * E;
  std::fill(carry, carry + NE, T(0));
  const int64_t chunks = (r.len + chunk - 1) / chunk;
  for (int64_t k = chunks - 1; k >= 0; --k) {
    const int64_t t0 = k * chunk, t1 = std::min(r.len, t0 + chunk);
    std::copy(bounds + k * NE, bounds + (k + 1) * NE, states);
    for (int64_t t = t0; t < t1; ++t) {  // recompute the chunk's decays and states
      const T *xt = r.x + t * E, *dtt = r.dt + t * E, *Bt = r.B + t * N;
      for (int64_t n = 0; n < N; ++n) {
        const T bn = Bt[n];
        const T* An = r.At + n * E;
        const T* prev = states + (t - t0) * NE + n * E;
        T* cur = states + (t - t0 + 1) * NE + n * E;
        T* decay = decays + (t - t0) * NE + n * E;
#pragma omp simd
        for (int64_t e = 0; e < E; ++e) {
          const T da = fast_exp(dtt[e] * An[e]);
          decay[e] = da;
          cur[e] = da * prev[e] + dtt[e] * xt[e] * bn;
        }
      }
    }
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const T *xt = r.x + t * E, *dtt = r.dt + t * E, *Bt = r.B + t * N, *Ct = r.C + t * N;
      const T *go = gout + t * E, *zt = r.z != nullptr ? r.z + t * E : nullptr;
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) {
        u[e] = dtt[e] * xt[e];
        dy[e] = zt != nullptr ? go[e] * zt[e] * sigmoid_of(zt[e]) : go[e];  // through the gate
        through_b[e] = 0;  // Σ_n dh[n][e] B[n]
        through_a[e] = 0;  // Σ_n dh[n][e] h_{t−1}[n][e] decay[n][e] A[n][e]
        y[e] = r.D[e] * xt[e];
      }
      for (int64_t n = 0; n < N; ++n) {
        const T bn = Bt[n], cn = Ct[n];
        const T* An = r.At + n * E;
        const T* prev = states + (t - t0) * NE + n * E;
        const T* cur = states + (t - t0 + 1) * NE + n * E;
        const T* decay = decays + (t - t0) * NE + n * E;
        T* carry_n = carry + n * E;
        T* dAn = g.dAt + n * E;
        T sum_b = 0, sum_c = 0;
#pragma omp simd reduction(+ : sum_b, sum_c)
        for (int64_t e = 0; e < E; ++e) {
          const T dh = dy[e] * cn + carry_n[e];
          const T dh_decay = dh * prev[e] * decay[e];  // ∂/∂(Δ A) through the decay
          sum_c += dy[e] * cur[e];
          sum_b += dh * u[e];
          y[e] += cur[e] * cn;
          through_b[e] += dh * bn;
          through_a[e] += dh_decay * An[e];
          dAn[e] += dh_decay * dtt[e];
          carry_n[e] = decay[e] * dh;
        }
        g.dB[t * N + n] = sum_b;
        g.dC[t * N + n] = sum_c;
      }
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) {
        g.dx[t * E + e] = dtt[e] * through_b[e] + dy[e] * r.D[e];
        g.ddt[t * E + e] = xt[e] * through_b[e] + through_a[e];
        g.dD[e] += dy[e] * xt[e];
      }
      if (zt != nullptr) {
#pragma omp simd
        for (int64_t e = 0; e < E; ++e) {
          const T sig = sigmoid_of(zt[e]);
          g.dz[t * E + e] = go[e] * y[e] * sig * (T(1) + zt[e] * (T(1) - sig));
        }
      }
    }
  }
}

#define SEQBENCH_SELECTIVE_KERNELS(T, suffix)                                                                \
  SEQBENCH_KERNEL void selective_forward_##suffix(const SelectiveRow<T>& r, T* out, T* bounds, T* h,           \
                                                  T* scratch) {                                                \
    selective_forward_one(r, out, bounds, h, scratch);                                                         \
  }                                                                                                            \
  SEQBENCH_KERNEL void selective_backward_##suffix(const SelectiveRow<T>& r, const T* bounds, const T* gout,   \
                                                   const SelectiveGrads<T>& g, T* states, T* decays, T* carry, \
                                                   T* scratch) {                                               \
    selective_backward_one(r, bounds, gout, g, states, decays, carry, scratch);                                \
  }
SEQBENCH_SELECTIVE_KERNELS(float, f32)
SEQBENCH_SELECTIVE_KERNELS(double, f64)

template <typename T>
struct SelectiveKernels;
SEQBENCH_KERNEL_TABLE(SelectiveKernels, float, selective_forward_f32, selective_backward_f32)
SEQBENCH_KERNEL_TABLE(SelectiveKernels, double, selective_forward_f64, selective_backward_f64)

// x, Δ (batch, L, E); A (E, N); B, C (batch, L, N); D (E); z (batch, L, E) or undefined.
struct SelectiveInputs {
  Tensor x, dt, A, B, C, D, z;
  int64_t batch() const { return x.size(0); }
  int64_t len() const { return x.size(1); }
  int64_t E() const { return x.size(2); }
  int64_t N() const { return A.size(1); }

  // Batch element i's pointers, with A transposed to (N, E) in `At`.
  template <typename T>
  SelectiveRow<T> row(int64_t i, const Tensor& At, int64_t chunk) const {
    const int64_t L = len(), e = E(), n = N();
    return {x.const_data_ptr<T>() + i * L * e,
            dt.const_data_ptr<T>() + i * L * e,
            At.const_data_ptr<T>(),
            B.const_data_ptr<T>() + i * L * n,
            C.const_data_ptr<T>() + i * L * n,
            D.const_data_ptr<T>(),
            z.defined() ? z.const_data_ptr<T>() + i * L * e : nullptr,
            L,
            e,
            n,
            chunk};
  }
};

// The output and the boundary states, (batch, K, N, E) here (the ATen form keeps its own layout).
std::pair<Tensor, Tensor> cpu_selective_scan(const SelectiveInputs& in, int64_t chunk) {
  const int64_t batch = in.batch(), len = in.len(), E = in.E(), N = in.N();
  const int64_t chunks = (len + chunk - 1) / chunk;
  Tensor out = at::empty_like(in.x);
  Tensor bounds = at::empty({batch, chunks, N, E}, in.x.options());
  Tensor At = in.A.t().contiguous();
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "seqbench_selective_scan", [&] {
    at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> state(N * E), scratch(E);
      for (int64_t i = begin; i < end; ++i) {
        SelectiveKernels<scalar_t>::forward(in.row<scalar_t>(i, At, chunk),
                                            out.mutable_data_ptr<scalar_t>() + i * len * E,
                                            bounds.mutable_data_ptr<scalar_t>() + i * chunks * N * E, state.data(),
                                            scratch.data());
      }
    });
  });
  return {out, bounds};
}

// Gradients of x, Δ, A, B, C, D, z (undefined without z).
tensor_list cpu_selective_scan_backward(const SelectiveInputs& in, const Tensor& bounds, const Tensor& gout,
                                        int64_t chunk) {
  const int64_t batch = in.batch(), len = in.len(), E = in.E(), N = in.N();
  const int64_t chunks = bounds.size(1);
  Tensor dx = at::empty_like(in.x), ddt = at::empty_like(in.dt), dB = at::empty_like(in.B),
         dC = at::empty_like(in.C), dz = in.z.defined() ? at::empty_like(in.z) : Tensor();
  Tensor At = in.A.t().contiguous();
  // One per batch element, summed after: no races between threads.
  Tensor dAt_parts = at::zeros({batch, N, E}, in.A.options()), dD_parts = at::zeros({batch, E}, in.D.options());
  AT_DISPATCH_FLOATING_TYPES(in.x.scalar_type(), "seqbench_selective_scan_backward", [&] {
    at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> states((chunk + 1) * N * E), decays(chunk * N * E), carry(N * E), scratch(5 * E);
      for (int64_t i = begin; i < end; ++i) {
        const int64_t le = i * len * E, ln = i * len * N;
        SelectiveGrads<scalar_t> g{dx.mutable_data_ptr<scalar_t>() + le,
                                   ddt.mutable_data_ptr<scalar_t>() + le,
                                   dz.defined() ? dz.mutable_data_ptr<scalar_t>() + le : nullptr,
                                   dB.mutable_data_ptr<scalar_t>() + ln,
                                   dC.mutable_data_ptr<scalar_t>() + ln,
                                   dAt_parts.mutable_data_ptr<scalar_t>() + i * N * E,
                                   dD_parts.mutable_data_ptr<scalar_t>() + i * E};
        SelectiveKernels<scalar_t>::backward(in.row<scalar_t>(i, At, chunk),
                                             bounds.const_data_ptr<scalar_t>() + i * chunks * N * E,
                                             gout.const_data_ptr<scalar_t>() + le, g, states.data(), decays.data(),
                                             carry.data(), scratch.data());
      }
    });
  });
  return {dx, ddt, dAt_parts.sum(0).t().contiguous(), dB, dC, dD_parts.sum(0), dz};
}

// ---------------------------------------------------------------------------------------------
// Selective scan as ATen ops, chunk by chunk: (batch, c, E, N) tensors exist for one chunk at a
// time, in the forward and again (recomputed from the boundary) in the backward.

struct ChunkTerms {
  Tensor decay, input;  // exp(Δ A) and Δ B x, each (batch, c, E, N)
};

ChunkTerms chunk_terms(const SelectiveInputs& in, int64_t t0, int64_t n) {
  Tensor dt = in.dt.narrow(1, t0, n).unsqueeze(-1);
  Tensor x = in.x.narrow(1, t0, n).unsqueeze(-1);
  return {(dt * in.A).exp(), dt * x * in.B.narrow(1, t0, n).unsqueeze(2)};
}

// (Σ_n C h + D x, the output gated by silu(z) when there is a z).
std::pair<Tensor, Tensor> gated(const SelectiveInputs& in, const Tensor& readout) {
  Tensor y = readout + in.D * in.x;
  return {y, in.z.defined() ? y * at::silu(in.z) : y};
}

std::pair<Tensor, Tensor> generic_selective_scan(const SelectiveInputs& in, int64_t chunk) {
  const int64_t batch = in.batch(), len = in.len(), E = in.E(), N = in.N();
  const int64_t chunks = (len + chunk - 1) / chunk;
  Tensor bounds = at::zeros({batch, chunks, E, N}, in.x.options());
  std::vector<Tensor> readout;
  Tensor h;
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t t0 = k * chunk, n = std::min(chunk, len - t0);
    ChunkTerms terms = chunk_terms(in, t0, n);
    if (h.defined()) bounds.select(1, k).copy_(h);
    Tensor states = chunk_scan(terms.decay, terms.input, h.defined() ? &h : nullptr);
    readout.push_back((states * in.C.narrow(1, t0, n).unsqueeze(2)).sum(-1));
    h = states.select(1, n - 1);
  }
  return {gated(in, at::cat(readout, 1)).second, bounds};
}

tensor_list generic_selective_scan_backward(const SelectiveInputs& in, const Tensor& bounds, const Tensor& gout,
                                            int64_t chunk) {
  const int64_t len = in.len(), chunks = bounds.size(1);
  Tensor gy = in.z.defined() ? gout * at::silu(in.z) : gout;  // the gradient of Σ C h + D x
  std::vector<Tensor> dx(chunks), ddt(chunks), dB(chunks), dC(chunks), readout(chunks);
  Tensor dA = at::zeros_like(in.A);
  Tensor carry = at::zeros_like(bounds.select(1, 0));  // decay_{t1} ⊙ dh_{t1} from the next chunk
  for (int64_t k = chunks - 1; k >= 0; --k) {
    const int64_t t0 = k * chunk, n = std::min(chunk, len - t0);
    ChunkTerms terms = chunk_terms(in, t0, n);
    Tensor before = bounds.select(1, k);
    Tensor states = chunk_scan(terms.decay, terms.input, &before);
    Tensor prev = shift_later(states, before);
    Tensor C = in.C.narrow(1, t0, n).unsqueeze(2), B = in.B.narrow(1, t0, n).unsqueeze(2);
    Tensor g = gy.narrow(1, t0, n).unsqueeze(-1);
    Tensor direct = g * C;
    direct.select(1, n - 1).add_(carry);
    // dh_t = direct_t + decay_{t+1} dh_{t+1}: a forward scan in flipped time.
    Tensor coeff = shift_later(terms.decay.flip({1}), at::zeros_like(before));
    Tensor dh = generic_linear_scan(coeff, direct.flip({1}), n).flip({1});
    carry = terms.decay.select(1, 0) * dh.select(1, 0);
    Tensor dt = in.dt.narrow(1, t0, n), x = in.x.narrow(1, t0, n);
    Tensor dh_decay = dh * prev * terms.decay;
    readout[k] = (states * C).sum(-1);
    dC[k] = (g * states).sum(2);
    dB[k] = (dh * (dt * x).unsqueeze(-1)).sum(2);
    Tensor dh_b = (dh * B).sum(-1);
    dx[k] = dt * dh_b;
    ddt[k] = dh_b * x + (dh_decay * in.A).sum(-1);
    dA.add_((dh_decay * dt.unsqueeze(-1)).sum(at::IntArrayRef{0, 1}));
  }
  Tensor dz;
  if (in.z.defined()) {
    Tensor sig = at::sigmoid(in.z);
    dz = gout * gated(in, at::cat(readout, 1)).first * sig * (1 + in.z * (1 - sig));
  }
  Tensor dD = (gy * in.x).sum(at::IntArrayRef{0, 1});
  return {at::cat(dx, 1) + gy * in.D, at::cat(ddt, 1), dA, at::cat(dB, 1), at::cat(dC, 1), dD, dz};
}

struct SelectiveScan : public torch::autograd::Function<SelectiveScan> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& dt, const Tensor& A, const Tensor& B,
                        const Tensor& C, const Tensor& D, const Tensor& z, int64_t chunk, bool generic) {
    SelectiveInputs in{dense(x), dense(dt), dense(A), dense(B), dense(C), dense(D), z.defined() ? dense(z) : z};
    const bool cpu = !generic && x.device().is_cpu();
    auto [out, bounds] = cpu ? cpu_selective_scan(in, chunk) : generic_selective_scan(in, chunk);
    ctx->save_for_backward({in.x, in.dt, in.A, in.B, in.C, in.D, in.z});
    ctx->saved_data["bounds"] = bounds;  // not an input or output: kept as a plain value
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["cpu"] = cpu;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto s = ctx->get_saved_variables();
    SelectiveInputs in{s[0], s[1], s[2], s[3], s[4], s[5], s[6]};
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    Tensor bounds = ctx->saved_data["bounds"].toTensor();
    Tensor gout = dense(grads[0]);
    tensor_list out = ctx->saved_data["cpu"].toBool() ? cpu_selective_scan_backward(in, bounds, gout, chunk)
                                                      : generic_selective_scan_backward(in, bounds, gout, chunk);
    out.push_back(Tensor());
    out.push_back(Tensor());
    return out;
  }
};

}  // namespace

extern "C" {

// h_t = a_t ⊙ h_{t−1} + b_t along dim 1 (h_{−1} = 0) for b (batch, L, ...) and a of b's shape,
// or of b's shape without (batch, L) for one a at every step; one dtype (float or complex).
// generic: use the ATen-op form even on CPU (for tests).
int seqbench_linear_scan(const at::Tensor* a, const at::Tensor* b, int64_t chunk, int generic, at::Tensor** out) {
  return seqbench::guarded([&] {
    seqbench::check(a->sizes() == b->sizes() || (b->dim() >= 2 && a->sizes() == b->sizes().slice(2)),
                    "linear scan: a must have b's shape (batch, L, ...) or its trailing shape (...)");
    seqbench::check(a->scalar_type() == b->scalar_type(), "linear scan: a and b must have the same dtype");
    seqbench::check(b->dim() >= 2 && chunk >= 1, "linear scan: b must be (batch, L, ...), chunk ≥ 1");
    *out = new at::Tensor(LinearScan::apply(*a, *b, chunk, generic != 0));
  });
}

// (Σ_n C h + D x) ⊙ silu(z), (batch, L, E), from x, Δ (batch, L, E), A (E, N), B, C (batch, L, N),
// D (E) and z (batch, L, E) or null for no gate; all one float dtype.
int seqbench_selective_scan(const at::Tensor* x, const at::Tensor* dt, const at::Tensor* A, const at::Tensor* B,
                            const at::Tensor* C, const at::Tensor* D, const at::Tensor* z, int64_t chunk,
                            int generic, at::Tensor** out) {
  return seqbench::guarded([&] {
    seqbench::check(x->dim() == 3 && dt->sizes() == x->sizes(), "selective scan: x and Δ must both be (batch, L, E)");
    seqbench::check(A->dim() == 2 && A->size(0) == x->size(2), "selective scan: A must be (E, N)");
    const std::vector<int64_t> bc{x->size(0), x->size(1), A->size(1)};
    seqbench::check(B->sizes() == at::IntArrayRef(bc) && C->sizes() == at::IntArrayRef(bc),
          "selective scan: B and C must be (batch, L, N)");
    seqbench::check(D->dim() == 1 && D->size(0) == x->size(2), "selective scan: D must be (E)");
    seqbench::check(z == nullptr || z->sizes() == x->sizes(), "selective scan: z must be (batch, L, E) like x");
    for (const at::Tensor* t : {dt, A, B, C, D, z}) {
      seqbench::check(t == nullptr || t->scalar_type() == x->scalar_type(), "selective scan: every input must have x's dtype");
    }
    seqbench::check(chunk >= 1, "selective scan: chunk must be ≥ 1");
    *out = new at::Tensor(
        SelectiveScan::apply(*x, *dt, *A, *B, *C, *D, z != nullptr ? *z : at::Tensor(), chunk, generic != 0));
  });
}

const char* seqbench_scan_last_error() { return seqbench::last_error.c_str(); }
}
