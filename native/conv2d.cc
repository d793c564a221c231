// convkit's conv2d: at::conv2d, except where libtorch 1.13's weight gradient is far slower than
// its forward pass. There the forward and the input gradient stay with oneDNN and the weight
// gradient is computed here, in one of two ways:
//
// - Small outputs in bf16: oneDNN's bf16 backward-weights kernel for a channels-last
//   convolution runs at a fraction of its forward speed when the output has few positions
//   against a large weight: on ResNet-18 at 32x32 px (layer3 and layer4 see 2x2 and 1x1 maps) a
//   step spent 119 ms in weight gradients against 32 ms in the whole forward pass. The gradient
//   is one matrix product over the batch,
//     dW[co, (kh, kw, ci)] = sum over (n, oh, ow) of g[(n, oh, ow), co] * cols[(n, oh, ow), (kh, kw, ci)],
//   which oneDNN's bf16 GEMM runs 1.5-3x faster there (im2col included). On larger maps
//   oneDNN's own kernel is faster, so the product is used up to kMaxPositions output positions
//   (the crossover measured on every convolution of ResNet-18/20, airbench_m and EfficientNet-B0).
// - Depthwise convolutions (float32 and bf16, channels-last): a direct loop,
//   depthwise_wgrad.cc.
//
// CONVKIT_CONV_WGRAD=onednn (or setConvWgrad) turns both off, =gemm takes the product for every
// bf16 convolution (tests and benchmarks).
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include <cstdint>
#include <cstdlib>
#include <atomic>
#include <stdexcept>
#include <string>

#include "common.h"

namespace convkit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kMaxPositions = 16;

// kAuto takes the product for small outputs on CPUs whose bf16 GEMMs libtorch sends to oneDNN
// (AVX-512 core; elsewhere its bf16 GEMM is a scalar loop), and the depthwise loop.
enum class WgradMode { kAuto, kGemm, kOnednn };

WgradMode ParseMode(const std::string& s) {
  if (s == "auto") return WgradMode::kAuto;
  if (s == "gemm") return WgradMode::kGemm;
  if (s == "onednn") return WgradMode::kOnednn;
  throw std::invalid_argument("convolution weight gradient: expected 'auto', 'gemm' or 'onednn', got '" + s + "'");
}

std::atomic<WgradMode> gMode{[] {
  const char* flag = std::getenv("CONVKIT_CONV_WGRAD");
  try {
    return flag == nullptr ? WgradMode::kAuto : ParseMode(flag);
  } catch (const std::invalid_argument&) {
    return WgradMode::kAuto;
  }
}()};

// Whether libtorch sends bf16 GEMMs to oneDNN here: x86-64 with AVX-512 core.
bool OneDnnBf16Gemm() {
#if CONVKIT_X86_64
  return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

bool UseProduct(int64_t positions) {
  static const bool oneDnnGemm = OneDnnBf16Gemm();
  switch (gMode.load()) {
    case WgradMode::kGemm: return true;
    case WgradMode::kOnednn: return false;
    default: return oneDnnGemm && positions <= kMaxPositions;
  }
}

struct Geometry {
  std::vector<int64_t> stride, padding, dilation;
};

// The im2col rows of x (channels-last, [n, c, h, w]) for output positions (n, oh, ow), each row
// laid out (kh, kw, ci) like a channels-last weight.
at::Tensor Im2Col(const at::Tensor& x, at::IntArrayRef kernel, at::IntArrayRef out, const Geometry& g) {
  int64_t n = x.size(0), c = x.size(1), kh = kernel[0], kw = kernel[1];
  bool pointwise = kh == 1 && kw == 1 && g.stride[0] == 1 && g.stride[1] == 1 && g.padding[0] == 0 && g.padding[1] == 0;
  if (pointwise) return x.permute({0, 2, 3, 1}).reshape({-1, c});
  at::Tensor xp = at::constant_pad_nd(x, {g.padding[1], g.padding[1], g.padding[0], g.padding[0]})
                      .contiguous(at::MemoryFormat::ChannelsLast);
  at::IntArrayRef s = xp.strides();  // n, c, h, w
  return xp.as_strided({n, out[0], out[1], kh, kw, c},
                       {s[0], s[2] * g.stride[0], s[3] * g.stride[1], s[2] * g.dilation[0], s[3] * g.dilation[1], s[1]})
      .reshape({n * out[0] * out[1], kh * kw * c});
}

// dW for grad_out g and input x, both channels-last bf16; returned channels-last.
at::Tensor WeightGrad(const at::Tensor& g, const at::Tensor& x, at::IntArrayRef wsize, const Geometry& geo) {
  RECORD_FUNCTION("convkit::conv_weight_grad_gemm", std::vector<c10::IValue>());
  int64_t co = wsize[0], kernel[2] = {wsize[2], wsize[3]}, out[2] = {g.size(2), g.size(3)};
  at::Tensor cols = Im2Col(x, kernel, out, geo);
  at::Tensor g2 = g.permute({0, 2, 3, 1}).reshape({-1, co});
  return at::mm(g2.t(), cols).view({co, wsize[2], wsize[3], wsize[1]}).permute({0, 3, 1, 2});
}

// How the weight gradient is computed
enum class Wgrad { kProduct, kDepthwise };

struct ConvOwnWgrad : public torch::autograd::Function<ConvOwnWgrad> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b,
                            at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, Wgrad how) {
    int64_t groups = how == Wgrad::kDepthwise ? x.size(1) : 1;
    ctx->save_for_backward({x, w});
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["stride"] = stride.vec();
    ctx->saved_data["padding"] = padding.vec();
    ctx->saved_data["dilation"] = dilation.vec();
    ctx->saved_data["bias"] = b.has_value() && b->defined();
    return at::convolution(x, w, b, stride, padding, dilation, false, {0, 0}, groups);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w = saved[1];
    Geometry geo{ctx->saved_data["stride"].toIntVector(), ctx->saved_data["padding"].toIntVector(),
                 ctx->saved_data["dilation"].toIntVector()};
    at::Tensor g = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    bool hasBias = ctx->saved_data["bias"].toBool();
    int64_t groups = ctx->saved_data["groups"].toInt();
    bool needX = ctx->needs_input_grad(0), needB = hasBias && ctx->needs_input_grad(2);
    at::Tensor gx, gb;
    if (needX || needB) {
      std::vector<int64_t> biasSize{w.size(0)};
      auto r = at::convolution_backward(g, x, w, hasBias ? c10::make_optional(at::IntArrayRef(biasSize)) : c10::nullopt,
                                        geo.stride, geo.padding, geo.dilation, false, {0, 0}, groups, {needX, false, needB});
      gx = std::get<0>(r);
      gb = std::get<2>(r);
    }
    at::Tensor gw;
    if (ctx->needs_input_grad(1)) {
      gw = groups == 1 ? WeightGrad(g, x, w.sizes(), geo)
                       : DepthwiseWeightGrad(g, x, w.sizes(), geo.stride, geo.padding, geo.dilation);
    }
    return {gx, gw, gb, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

bool AutocastToBf16() {
#if CONVKIT_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(at::kCPU) && at::autocast::get_autocast_dtype(at::kCPU) == at::kBFloat16;
#else
  return at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
#endif
}

// oh * ow of the convolution's output; invalid shapes count as large, for at::conv2d to report
int64_t OutputPositions(const at::Tensor& x, const at::Tensor& w, at::IntArrayRef stride, at::IntArrayRef padding,
                        at::IntArrayRef dilation) {
  int64_t positions = 1;
  for (int d = 0; d < 2; d++) {
    int64_t span = x.size(d + 2) + 2 * padding[d] - dilation[d] * (w.size(d + 2) - 1) - 1;
    if (span < 0 || stride[d] < 1) return INT64_MAX;
    positions *= span / stride[d] + 1;
  }
  return positions;
}

}  // namespace

at::Tensor Conv2d(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                  at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  bool cast = AutocastToBf16() && input.is_floating_point() && input.device().is_cpu();
  at::Tensor x = cast ? at::autocast::cached_cast(at::kBFloat16, input, at::kCPU) : input;
  at::Tensor w = cast ? at::autocast::cached_cast(at::kBFloat16, weight, at::kCPU) : weight;
  c10::optional<at::Tensor> b = cast && bias.has_value() ? c10::make_optional(at::autocast::cached_cast(at::kBFloat16, *bias, at::kCPU)) : bias;
  bool ownWgrad = gMode.load() != WgradMode::kOnednn && x.dim() == 4 && w.dim() == 4 && x.device().is_cpu() &&
                  at::GradMode::is_enabled() && w.requires_grad() && x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
                  x.scalar_type() == w.scalar_type() && stride.size() == 2 && padding.size() == 2 && dilation.size() == 2;
  if (ownWgrad && groups == 1 && x.scalar_type() == at::kBFloat16 && UseProduct(OutputPositions(x, w, stride, padding, dilation))) {
    return ConvOwnWgrad::apply(x, w, b, stride, padding, dilation, Wgrad::kProduct);
  }
  bool depthwise = groups > 1 && groups == x.size(1) && w.size(0) == groups && w.size(1) == 1;
  if (ownWgrad && depthwise && DepthwiseWeightGradSupports(x) && OutputPositions(x, w, stride, padding, dilation) != INT64_MAX) {
    return ConvOwnWgrad::apply(x, w, b, stride, padding, dilation, Wgrad::kDepthwise);
  }
  return at::conv2d(x, w, b, stride, padding, dilation, groups);
}

at::Tensor Conv2d(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride,
                  c10::string_view padding, at::IntArrayRef dilation, int64_t groups) {
  return at::conv2d(x, w, b, stride, padding, dilation, groups);
}

void InitConv2d(Napi::Env env, Napi::Object e) {
  // setConvWgrad('auto' | 'gemm' | 'onednn'): for tests and benchmarks
  Def(env, e, "setConvWgrad", [](Args& a) {
    try {
      gMode = ParseMode(a.str(0));
    } catch (const std::invalid_argument&) {
      a.fail(0, "'auto', 'gemm' or 'onednn'");
    }
  });
}

}  // namespace convkit
