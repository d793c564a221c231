// Autograd functions for ops whose libtorch 1.13 kernels are slow in some dtype, composed of
// vectorised kernels instead. They agree with libtorch within that dtype's rounding.
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "vec.h"

namespace convkit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// SiLU in bfloat16 (EfficientNet under autocast): libtorch's silu and silu_backward are scalar
// loops there, ~3x and ~5x slower than in float32, while sigmoid, mul and addcmul are
// vectorised. With s = sigmoid(x) and y = x * s, d/dx silu = s + y * (1 - s). Saving y (which
// the next layer keeps anyway) and s costs the memory of saving x.
struct SiluBf16 : public torch::autograd::Function<SiluBf16> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    at::Tensor s = at::sigmoid(x);
    at::Tensor y = x * s;
    ctx->save_for_backward({y, s});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    const at::Tensor& y = saved[0];
    const at::Tensor& s = saved[1];
    at::Tensor d = at::addcmul(y, y, s, -1);  // y * (1 - s)
    d.add_(s).mul_(grads[0]);
    return {d};
  }
};

at::Tensor Silu(const at::Tensor& x) {
  bool bf16Training = x.scalar_type() == at::kBFloat16 && x.device().is_cpu() && x.requires_grad() && at::GradMode::is_enabled();
  return bf16Training ? SiluBf16::apply(x) : at::silu(x);
}

// GELU (exact, with erf) in float32 and bfloat16: libtorch 1.13 as Debian builds it dispatches
// elementwise kernels at AVX2 at most, and its erf-GELU and gradient there take 11 and 13 ms (float32,
// 15 and 22 in bf16) on a 3.2M-element map that ReLU passes in 0.7: a third of an airbench_m
// training step. These are plain loops the compiler vectorises (one clone per instruction set),
// with erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7, the same formula as
// ATen's vectorised erf) and an exp of our own, so that no library call stops the vectoriser.

// exp(x) for -87 <= x <= 0: 2^n * e^r with |r| <= ln2 / 2, a degree-6 polynomial (Cephes' expf).
inline float ExpNonPositive(float x) {
  const float magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  float n = (x * 1.44269504f + magic) - magic;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  int32_t e = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, sizeof scale);
  return p * scale;
}

// Phi(x) = (1 + erf(x / sqrt 2)) / 2 and e^(-x^2/2), which both passes need. From |x| / sqrt 2
// = 9.3 on, erf is 1 and the Gaussian 0 in float (exactly 0 here, so that an infinite x gives
// a NaN gradient as in PyTorch); below it, e^(-z^2) is within ExpNonPositive's range.
inline void Cdf(float x, float& cdf, float& gauss) {
  uint32_t inside;
  float z = CapNonNegative(std::fabs(x) * 0.70710678f, 9.3f, inside);
  gauss = Mask(ExpNonPositive(-z * z), inside);
  float t = 1.f / (1.f + 0.3275911f * z);
  float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  float erfAbs = 1.f - poly * gauss;
  cdf = 0.5f + 0.5f * std::copysign(erfAbs, x);
}

// In float32, on arrays: the loops stay all-float so that the vectoriser picks the widest vectors
// (given a bf16 load in the same loop it settles for half width).
inline __attribute__((always_inline)) void GeluLoop(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float cdf, gauss;
    Cdf(x[i], cdf, gauss);
    y[i] = x[i] * cdf;
  }
}

inline __attribute__((always_inline)) void GeluGradLoop(const float* g, const float* x, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float cdf, gauss;
    Cdf(x[i], cdf, gauss);
    dx[i] = g[i] * (cdf + x[i] * gauss * 0.39894228f);  // 1 / sqrt(2 pi)
  }
}

constexpr int64_t kChunk = 512;

inline __attribute__((always_inline)) void Widen(const c10::BFloat16* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = Load(src[i]);
}

inline __attribute__((always_inline)) void Narrow(const float* src, c10::BFloat16* dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) Store(dst + i, src[i]);
}

CONVKIT_CLONES void GeluF32(const float* x, float* y, int64_t n) { GeluLoop(x, y, n); }

CONVKIT_CLONES void GeluBf16(const c10::BFloat16* x, c10::BFloat16* y, int64_t n) {
  float a[kChunk], b[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    int64_t m = std::min(kChunk, n - i);
    Widen(x + i, a, m);
    GeluLoop(a, b, m);
    Narrow(b, y + i, m);
  }
}

CONVKIT_CLONES void GeluGradF32(const float* g, const float* x, float* dx, int64_t n) { GeluGradLoop(g, x, dx, n); }

CONVKIT_CLONES void GeluGradBf16(const c10::BFloat16* g, const c10::BFloat16* x, c10::BFloat16* dx, int64_t n) {
  float a[kChunk], b[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    int64_t m = std::min(kChunk, n - i);
    Widen(g + i, a, m);
    Widen(x + i, b, m);
    GeluGradLoop(a, b, a, m);
    Narrow(a, dx + i, m);
  }
}

constexpr int64_t kGrain = 1 << 15;

// Runs on the tensor's storage as one flat array: x is dense (any layout) and out is made like it.
at::Tensor GeluForward(const at::Tensor& x) {
  RECORD_FUNCTION("convkit::gelu", std::vector<c10::IValue>());
  at::Tensor y = at::empty_like(x);
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    if (x.scalar_type() == at::kFloat) GeluF32(x.data_ptr<float>() + b, y.data_ptr<float>() + b, e - b);
    else GeluBf16(x.data_ptr<c10::BFloat16>() + b, y.data_ptr<c10::BFloat16>() + b, e - b);
  });
  return y;
}

at::Tensor GeluBackward(const at::Tensor& grad, const at::Tensor& x) {
  RECORD_FUNCTION("convkit::gelu_backward", std::vector<c10::IValue>());
  at::Tensor g = grad.to(x.scalar_type()).contiguous(x.suggest_memory_format());
  if (g.strides() != x.strides()) return at::gelu_backward(grad, x);
  at::Tensor dx = at::empty_like(x);
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    if (x.scalar_type() == at::kFloat) {
      GeluGradF32(g.data_ptr<float>() + b, x.data_ptr<float>() + b, dx.data_ptr<float>() + b, e - b);
    } else {
      GeluGradBf16(g.data_ptr<c10::BFloat16>() + b, x.data_ptr<c10::BFloat16>() + b, dx.data_ptr<c10::BFloat16>() + b, e - b);
    }
  });
  return dx;
}

struct GeluFn : public torch::autograd::Function<GeluFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    ctx->save_for_backward({x});
    return GeluForward(x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {GeluBackward(grads[0], ctx->get_saved_variables()[0])};
  }
};

// Own kernels for a dense float32 or bf16 CPU tensor whose storage is exactly its elements.
bool OwnGelu(const at::Tensor& x) {
  return CONVKIT_X86_64 && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) &&
         x.is_non_overlapping_and_dense() && x.numel() > 0;
}

at::Tensor Gelu(const at::Tensor& x, const std::string& approximate) {
  if (approximate != "none" || !OwnGelu(x)) return at::gelu(x, approximate);
  return x.requires_grad() && at::GradMode::is_enabled() ? GeluFn::apply(x) : GeluForward(x);
}

// The gradients that libtorch's slice_backward and adaptive_avg_pool2d_backward hand back are
// contiguous (NCHW) even for a channels-last input. Met in the backward pass by a channels-last
// gradient (the other branch of a residual block, the layer before), they make elementwise
// kernels run strided: ReLU's backward on a 128x16x28x28 bf16 map takes 6.6 ms with one operand
// of each layout against 0.13 ms with both channels-last, ~14 ms of a ResNet-20 step. This
// identity hands the gradient back in its input's layout (one copy, where it differs).
struct KeepGradLayout : public torch::autograd::Function<KeepGradLayout> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) { return x.alias(); }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {grads[0].contiguous(at::MemoryFormat::ChannelsLast)};
  }
};

}  // namespace

at::Tensor KeepGradLayout(const at::Tensor& x) {
  bool channelsLast = x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous();
  return channelsLast && x.requires_grad() && at::GradMode::is_enabled() ? KeepGradLayout::apply(x) : x;
}

void InitFastGrads(Napi::Env env, Napi::Object e) {
  Def(env, e, "silu", [](Args& a) { return Silu(a.t(0)); });
  Def(env, e, "gelu", [](Args& a) { return Gelu(a.t(0), a.missing(1) ? "none" : a.str(1)); });
}

}  // namespace convkit
