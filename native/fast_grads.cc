// Autograd functions for ops whose libtorch 1.13 kernels are slow in some dtype, composed of
// vectorised kernels instead. They agree with libtorch within that dtype's rounding.
#include <torch/autograd.h>

#include "common.h"

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
}

}  // namespace convkit
