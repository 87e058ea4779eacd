// Mamba's and Hawk's causal depthwise convolution, optionally followed by SiLU, on (batch, L, E)
// activations as they come: the CPU counterpart of causal_conv1d_fn, which the official Mamba
// uses when installed. libtorch's conv1d wants (batch, E, L), so the same layer there costs a
// transposed copy in, im2col, and a copy back out, each way.
//   y_t[e] = act(bias[e] + Σ_j w[e, j] x_{t−K+1+j}[e]), x_s = 0 for s < 0,
// which is conv1d(x, w, bias, padding=K−1, groups=E) cut to the first L outputs. The backward
// recomputes the pre-activation rather than storing it. CPU only: other devices keep conv1d.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <vector>

#include "kernel_util.h"

namespace {

using at::Tensor;
using seqbench::dense;
using seqbench::sigmoid_of;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// The pre-activation of step t for channels [0, E): wt is the weight transposed, (K, E).
template <typename T>
SEQBENCH_INLINE void pre_activation(const T* x, const T* wt, const T* bias, T* acc, int64_t t, int64_t E,
                                    int64_t K) {
#pragma omp simd
  for (int64_t e = 0; e < E; ++e) acc[e] = bias[e];
  for (int64_t j = std::max<int64_t>(0, K - 1 - t); j < K; ++j) {
    const T* xs = x + (t - K + 1 + j) * E;
    const T* wj = wt + j * E;
#pragma omp simd
    for (int64_t e = 0; e < E; ++e) acc[e] += wj[e] * xs[e];
  }
}

template <typename T>
SEQBENCH_INLINE void conv_forward_row(const T* x, const T* wt, const T* bias, T* y, T* acc, int64_t len, int64_t E,
                                      int64_t K, bool silu) {
  for (int64_t t = 0; t < len; ++t) {
    pre_activation(x, wt, bias, acc, t, E, K);
    T* yt = y + t * E;
    if (silu) {
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) yt[e] = acc[e] * sigmoid_of(acc[e]);
    } else {
      std::copy(acc, acc + E, yt);
    }
  }
}

// dx (L, E) written; dwt (K, E) and dbias (E) added into. `gpre` (L, E) and `acc` (E) scratch.
template <typename T>
SEQBENCH_INLINE void conv_backward_row(const T* x, const T* wt, const T* bias, const T* gy, T* dx, T* dwt,
                                       T* dbias, T* gpre, T* acc, int64_t len, int64_t E, int64_t K, bool silu) {
  for (int64_t t = 0; t < len; ++t) {  // the gradient at the pre-activation
    const T* g = gy + t * E;
    T* gp = gpre + t * E;
    if (silu) {
      pre_activation(x, wt, bias, acc, t, E, K);
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) {
        const T sig = sigmoid_of(acc[e]);
        gp[e] = g[e] * sig * (T(1) + acc[e] * (T(1) - sig));
      }
    } else {
      std::copy(g, g + E, gp);
    }
#pragma omp simd
    for (int64_t e = 0; e < E; ++e) dbias[e] += gp[e];
  }
  for (int64_t s = 0; s < len; ++s) {  // x_s feeds steps s … s + K − 1 through w[K−1] … w[0]
    T* d = dx + s * E;
    std::fill(d, d + E, T(0));
    for (int64_t j = 0; j < K; ++j) {
      const int64_t t = s + K - 1 - j;
      if (t >= len) continue;
      const T* gp = gpre + t * E;
      const T *wj = wt + j * E, *xs = x + s * E;
      T* dwj = dwt + j * E;
#pragma omp simd
      for (int64_t e = 0; e < E; ++e) {
        d[e] += wj[e] * gp[e];
        dwj[e] += xs[e] * gp[e];
      }
    }
  }
}

#define SEQBENCH_CONV_KERNELS(T, suffix)                                                                        \
  SEQBENCH_KERNEL void conv_forward_##suffix(const T* x, const T* wt, const T* bias, T* y, T* acc, int64_t len,   \
                                             int64_t E, int64_t K, bool silu) {                                   \
    conv_forward_row(x, wt, bias, y, acc, len, E, K, silu);                                                       \
  }                                                                                                               \
  SEQBENCH_KERNEL void conv_backward_##suffix(const T* x, const T* wt, const T* bias, const T* gy, T* dx, T* dwt, \
                                              T* dbias, T* gpre, T* acc, int64_t len, int64_t E, int64_t K,       \
                                              bool silu) {                                                        \
    conv_backward_row(x, wt, bias, gy, dx, dwt, dbias, gpre, acc, len, E, K, silu);                               \
  }
SEQBENCH_CONV_KERNELS(float, f32)
SEQBENCH_CONV_KERNELS(double, f64)

template <typename T>
struct ConvKernels;
SEQBENCH_KERNEL_TABLE(ConvKernels, float, conv_forward_f32, conv_backward_f32)
SEQBENCH_KERNEL_TABLE(ConvKernels, double, conv_forward_f64, conv_backward_f64)

struct CausalConv : public torch::autograd::Function<CausalConv> {
  // x (batch, L, E), w (E, K), bias (E).
  static Tensor forward(AutogradContext* ctx, const Tensor& x_in, const Tensor& w, const Tensor& bias_in, bool silu) {
    Tensor x = dense(x_in), wt = w.t().contiguous(), bias = dense(bias_in);
    const int64_t batch = x.size(0), len = x.size(1), E = x.size(2), K = wt.size(0);
    Tensor y = at::empty_like(x);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "seqbench_causal_conv", [&] {
      at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> acc(E);
        for (int64_t i = begin; i < end; ++i) {
          ConvKernels<scalar_t>::forward(x.const_data_ptr<scalar_t>() + i * len * E, wt.const_data_ptr<scalar_t>(),
                                         bias.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>() + i * len * E,
                                         acc.data(), len, E, K, silu);
        }
      });
    });
    ctx->save_for_backward({x, wt, bias});
    ctx->saved_data["silu"] = silu;
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto s = ctx->get_saved_variables();
    const Tensor &x = s[0], &wt = s[1], &bias = s[2];
    const bool silu = ctx->saved_data["silu"].toBool();
    Tensor gy = dense(grads[0]);
    const int64_t batch = x.size(0), len = x.size(1), E = x.size(2), K = wt.size(0);
    Tensor dx = at::empty_like(x);
    // One per batch element, summed after: no races between threads.
    Tensor dwt_parts = at::zeros({batch, K, E}, x.options()), dbias_parts = at::zeros({batch, E}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "seqbench_causal_conv_backward", [&] {
      at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> gpre(len * E), acc(E);
        for (int64_t i = begin; i < end; ++i) {
          const int64_t off = i * len * E;
          ConvKernels<scalar_t>::backward(
              x.const_data_ptr<scalar_t>() + off, wt.const_data_ptr<scalar_t>(), bias.const_data_ptr<scalar_t>(),
              gy.const_data_ptr<scalar_t>() + off, dx.mutable_data_ptr<scalar_t>() + off,
              dwt_parts.mutable_data_ptr<scalar_t>() + i * K * E, dbias_parts.mutable_data_ptr<scalar_t>() + i * E,
              gpre.data(), acc.data(), len, E, K, silu);
        }
      });
    });
    return {dx, dwt_parts.sum(0).t().contiguous(), dbias_parts.sum(0), Tensor()};
  }
};

}  // namespace

extern "C" {

// act(causal depthwise conv(x)) for x (batch, L, E) on CPU, w (E, K), bias (E); silu: 1 for
// SiLU, 0 for none.
int seqbench_causal_conv(const at::Tensor* x, const at::Tensor* w, const at::Tensor* bias, int silu,
                         at::Tensor** out) {
  return seqbench::guarded([&] {
    seqbench::check(x->dim() == 3 && x->device().is_cpu(), "causal conv: x must be (batch, L, E) on the CPU");
    seqbench::check(w->dim() == 2 && w->size(0) == x->size(2), "causal conv: w must be (E, K)");
    seqbench::check(bias->dim() == 1 && bias->size(0) == x->size(2), "causal conv: bias must be (E)");
    for (const at::Tensor* t : {w, bias}) {
      seqbench::check(t->scalar_type() == x->scalar_type(), "causal conv: w and bias must have x's dtype");
    }
    *out = new at::Tensor(CausalConv::apply(*x, *w, *bias, silu != 0));
  });
}
}
