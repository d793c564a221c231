// Autograd functions for ops whose libtorch 1.13 kernels are slow in some dtype, on kernels of
// our own. They agree with libtorch within that dtype's rounding.
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

// GELU (exact, with erf) in float32 and bfloat16, SiLU in bfloat16. libtorch 1.13 as Debian
// builds it dispatches elementwise kernels at AVX2 at most, and there its erf-GELU and gradient
// take 11 and 13 ms (float32; 15 and 22 in bf16) on a 3.2M-element map that ReLU passes in 0.7,
// a third of an airbench_m training step; its bf16 SiLU and gradient are scalar loops. These are
// plain loops the compiler vectorises (one clone per instruction set), with erf by Abramowitz
// and Stegun 7.1.26 (absolute error below 1.5e-7, the formula ATen's vectorised erf uses) and an
// exp of our own, so that no library call stops the vectoriser. bf16 goes through float chunks.

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

// e^(-z) for z >= 0, exactly 0 from z = cap on (cap <= 87), so that an infinite input meets a 0
// and gives libtorch's NaN.
inline float ExpNegCapped(float z, float cap) {
  uint32_t inside;
  float zc = CapNonNegative(z, cap, inside);
  return Mask(ExpNonPositive(-zc), inside);
}

struct GeluOp {
  // Phi(x) = (1 + erf(x / sqrt 2)) / 2 and e^(-x^2/2). From |x| / sqrt 2 = 9.3 on, erf is 1 and
  // the Gaussian 0 in float.
  static inline void Cdf(float x, float& cdf, float& gauss) {
    float z = std::fabs(x) * 0.70710678f;
    uint32_t inside;
    float zc = CapNonNegative(z, 9.3f, inside);
    gauss = Mask(ExpNonPositive(-zc * zc), inside);
    float t = 1.f / (1.f + 0.3275911f * zc);
    float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    cdf = 0.5f + 0.5f * std::copysign(1.f - poly * gauss, x);
  }
  static inline float Forward(float x) {
    float cdf, gauss;
    Cdf(x, cdf, gauss);
    return x * cdf;
  }
  static inline float Derivative(float x) {
    float cdf, gauss;
    Cdf(x, cdf, gauss);
    return cdf + x * gauss * 0.39894228f;  // 1 / sqrt(2 pi)
  }
};

struct SiluOp {
  // sigmoid(x) = 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below: one e^-|x| for both.
  static inline float Sigmoid(float x) {
    float e = ExpNegCapped(std::fabs(x), 87.f);
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    uint32_t negative = 0u - (bits >> 31);
    return (Mask(e, negative) + Mask(1.f, ~negative)) / (1.f + e);
  }
  static inline float Forward(float x) { return x * Sigmoid(x); }
  static inline float Derivative(float x) {
    float s = Sigmoid(x);
    return s * (1.f + x * (1.f - s));
  }
};

// In float32, on arrays: the loops stay all-float so that the vectoriser picks the widest vectors
// (given a bf16 load in the same loop it settles for half width).
template <typename Op>
inline __attribute__((always_inline)) void ForwardLoop(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = Op::Forward(x[i]);
}

template <typename Op>
inline __attribute__((always_inline)) void BackwardLoop(const float* g, const float* x, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = g[i] * Op::Derivative(x[i]);
}

constexpr int64_t kChunk = 512;

inline __attribute__((always_inline)) void Widen(const c10::BFloat16* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = Load(src[i]);
}

inline __attribute__((always_inline)) void Narrow(const float* src, c10::BFloat16* dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) Store(dst + i, src[i]);
}

template <typename Op>
inline __attribute__((always_inline)) void ForwardBf16Loop(const c10::BFloat16* x, c10::BFloat16* y, int64_t n) {
  float a[kChunk], b[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    int64_t m = std::min(kChunk, n - i);
    Widen(x + i, a, m);
    ForwardLoop<Op>(a, b, m);
    Narrow(b, y + i, m);
  }
}

template <typename Op>
inline __attribute__((always_inline)) void BackwardBf16Loop(const c10::BFloat16* g, const c10::BFloat16* x, c10::BFloat16* dx, int64_t n) {
  float a[kChunk], b[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    int64_t m = std::min(kChunk, n - i);
    Widen(g + i, a, m);
    Widen(x + i, b, m);
    BackwardLoop<Op>(a, b, a, m);
    Narrow(a, dx + i, m);
  }
}

// The four kernels of an op, each a plain function cloned per instruction set, as in
// depthwise_wgrad.cc. SiLU's float32 pair is built but unused (float32 SiLU stays on libtorch).
struct Kernels {
  void (*forwardF32)(const float*, float*, int64_t);
  void (*forwardBf16)(const c10::BFloat16*, c10::BFloat16*, int64_t);
  void (*backwardF32)(const float*, const float*, float*, int64_t);
  void (*backwardBf16)(const c10::BFloat16*, const c10::BFloat16*, c10::BFloat16*, int64_t);
};

#define CONVKIT_ELEMENTWISE(Op)                                                                                                   \
  CONVKIT_CLONES void Op##ForwardF32(const float* x, float* y, int64_t n) { ForwardLoop<Op>(x, y, n); }                         \
  CONVKIT_CLONES void Op##ForwardBf16(const c10::BFloat16* x, c10::BFloat16* y, int64_t n) { ForwardBf16Loop<Op>(x, y, n); }    \
  CONVKIT_CLONES void Op##BackwardF32(const float* g, const float* x, float* dx, int64_t n) { BackwardLoop<Op>(g, x, dx, n); }  \
  CONVKIT_CLONES void Op##BackwardBf16(const c10::BFloat16* g, const c10::BFloat16* x, c10::BFloat16* dx, int64_t n) {         \
    BackwardBf16Loop<Op>(g, x, dx, n);                                                                                            \
  }                                                                                                                               \
  const Kernels k##Op{Op##ForwardF32, Op##ForwardBf16, Op##BackwardF32, Op##BackwardBf16};

CONVKIT_ELEMENTWISE(GeluOp)
CONVKIT_ELEMENTWISE(SiluOp)

constexpr int64_t kGrain = 1 << 15;

// Runs on the tensor's storage as one flat array: x is dense (any layout) and out is made like it.
at::Tensor ForwardOn(const Kernels& k, const at::Tensor& x) {
  at::Tensor y = at::empty_like(x);
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    if (x.scalar_type() == at::kFloat) k.forwardF32(x.data_ptr<float>() + b, y.data_ptr<float>() + b, e - b);
    else k.forwardBf16(x.data_ptr<c10::BFloat16>() + b, y.data_ptr<c10::BFloat16>() + b, e - b);
  });
  return y;
}

// grad * f'(x), or null where grad cannot be brought to x's strides.
at::Tensor BackwardOn(const Kernels& k, const at::Tensor& grad, const at::Tensor& x) {
  at::Tensor g = grad.to(x.scalar_type()).contiguous(x.suggest_memory_format());
  if (g.strides() != x.strides()) return at::Tensor();
  at::Tensor dx = at::empty_like(x);
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
    if (x.scalar_type() == at::kFloat) {
      k.backwardF32(g.data_ptr<float>() + b, x.data_ptr<float>() + b, dx.data_ptr<float>() + b, e - b);
    } else {
      k.backwardBf16(g.data_ptr<c10::BFloat16>() + b, x.data_ptr<c10::BFloat16>() + b, dx.data_ptr<c10::BFloat16>() + b, e - b);
    }
  });
  return dx;
}

// An op on own kernels: its names in a profile, and libtorch's gradient for a grad whose layout
// cannot be matched to x's.
struct OwnOp {
  const char* name;
  const char* backwardName;
  Kernels kernels;
  at::Tensor (*libtorchBackward)(const at::Tensor& grad, const at::Tensor& x);
};

const OwnOp kOps[] = {
    {"convkit::gelu", "convkit::gelu_backward", kGeluOp, [](const at::Tensor& g, const at::Tensor& x) { return at::gelu_backward(g, x); }},
    {"convkit::silu", "convkit::silu_backward", kSiluOp, [](const at::Tensor& g, const at::Tensor& x) { return at::silu_backward(g, x); }},
};
enum OpIndex : int64_t { kGelu, kSilu };

at::Tensor OwnForward(OpIndex op, const at::Tensor& x) {
  RECORD_FUNCTION(kOps[op].name, std::vector<c10::IValue>());
  return ForwardOn(kOps[op].kernels, x);
}

struct OwnFn : public torch::autograd::Function<OwnFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t op) {
    ctx->save_for_backward({x});
    ctx->saved_data["op"] = op;
    return OwnForward(static_cast<OpIndex>(op), x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const OwnOp& op = kOps[ctx->saved_data["op"].toInt()];
    RECORD_FUNCTION(op.backwardName, std::vector<c10::IValue>());
    at::Tensor x = ctx->get_saved_variables()[0];
    at::Tensor dx = BackwardOn(op.kernels, grads[0], x);
    return {dx.defined() ? dx : op.libtorchBackward(grads[0], x), at::Tensor()};
  }
};

// Own kernels for a dense float32 or bf16 CPU tensor whose storage is exactly its elements.
bool OwnElementwise(const at::Tensor& x) {
  return CONVKIT_X86_64 && x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) &&
         x.is_non_overlapping_and_dense() && x.numel() > 0;
}

at::Tensor RunOwn(OpIndex op, const at::Tensor& x) {
  return x.requires_grad() && at::GradMode::is_enabled() ? OwnFn::apply(x, static_cast<int64_t>(op)) : OwnForward(op, x);
}

at::Tensor Gelu(const at::Tensor& x, const std::string& approximate) {
  return approximate == "none" && OwnElementwise(x) ? RunOwn(kGelu, x) : at::gelu(x, approximate);
}

// float32 SiLU stays on libtorch: its AVX2 kernels measured no slower than ours.
at::Tensor Silu(const at::Tensor& x) { return OwnElementwise(x) && x.scalar_type() == at::kBFloat16 ? RunOwn(kSilu, x) : at::silu(x); }

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

// Global average pooling (adaptive pooling to 1x1: SE blocks, classifier heads). libtorch computes
// it as a mean, whose backward writes grad / (H*W) out as a whole NCHW map, then KeepGradLayout
// copies that to channels-last: 17 + 10 ms of a 297 ms EfficientNet-B0 bf16 step. The same
// gradient as a view expanded over H and W costs nothing: autograd adds it into the gradient of
// x's other use in place (the SE scale's), and a kernel that needs it dense reads it at stride 0.
struct GlobalAvgPool : public torch::autograd::Function<GlobalAvgPool> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    ctx->saved_data["sizes"] = x.sizes();
    return at::adaptive_avg_pool2d(x, {1, 1});
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    return {grads[0].div(static_cast<double>(sizes[2] * sizes[3])).expand(sizes)};
  }
};

}  // namespace

at::Tensor KeepGradLayout(const at::Tensor& x) {
  bool channelsLast = x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous();
  return channelsLast && x.requires_grad() && at::GradMode::is_enabled() ? KeepGradLayout::apply(x) : x;
}

at::Tensor AdaptiveAvgPool2d(const at::Tensor& x, at::IntArrayRef size) {
  bool global = x.dim() == 4 && size.size() == 2 && size[0] == 1 && size[1] == 1 && x.size(2) * x.size(3) > 1;
  if (global && x.requires_grad() && at::GradMode::is_enabled()) return GlobalAvgPool::apply(x);
  return at::adaptive_avg_pool2d(convkit::KeepGradLayout(x), size);
}

void InitFastGrads(Napi::Env env, Napi::Object e) {
  Def(env, e, "silu", [](Args& a) { return Silu(a.t(0)); });
  Def(env, e, "gelu", [](Args& a) { return Gelu(a.t(0), a.missing(1) ? "none" : a.str(1)); });
}

}  // namespace convkit
