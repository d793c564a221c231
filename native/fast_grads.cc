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

}  // namespace

void InitFastGrads(Napi::Env env, Napi::Object e) {
  Def(env, e, "silu", [](Args& a) { return Silu(a.t(0)); });
}

}  // namespace convkit
