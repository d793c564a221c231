// Fused inference convolutions on oneDNN, the library libtorch's own convolutions run on.
//
// In eval mode a convolution followed by BatchNorm, a residual addition and an activation is one
// oneDNN primitive: the norm folded into the weights and bias, the addition and the activation
// applied as post-ops while the output tile is still in cache, the weights reordered once into
// the layout the kernel wants instead of on every call (libtorch 1.13 reorders them each time),
// and activations kept channels-last. That is what torch.jit.freeze and IPEX do for PyTorch.
//
// A FusedConv belongs to one Conv2d module. It keeps no reference to the module's tensors: each
// call passes them, and the fold is redone when any of them changed (another tensor, or the same
// tensor written in place: an optimizer step, a loaded state dict), detected by data pointer and
// version counter.
//
// Built only where oneDNN's headers are (CONVKIT_DNNL, binding.gyp); elsewhere
// fusedConvAvailable() is false and the model runs libtorch's own operators.
#include "common.h"

#ifdef CONVKIT_DNNL
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <dnnl.hpp>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace convkit {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& Stream() {
  static dnnl::stream stream(Engine());
  return stream;
}

memory::data_type DnnlType(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return memory::data_type::f32;
    case at::kBFloat16: return memory::data_type::bf16;
    default: throw std::invalid_argument(std::string("fused convolution: expected float32 or bfloat16, got ") + DtypeName(t));
  }
}

struct Activation {
  dnnl::algorithm algorithm;
  float alpha = 0.f, beta = 0.f;
};

Activation ParseActivation(const std::string& name) {
  if (name == "relu") return {dnnl::algorithm::eltwise_relu};
  if (name == "relu6") return {dnnl::algorithm::eltwise_clip, 0.f, 6.f};
  if (name == "silu") return {dnnl::algorithm::eltwise_swish, 1.f};
  if (name == "sigmoid") return {dnnl::algorithm::eltwise_logistic};
  if (name == "hardswish") return {dnnl::algorithm::eltwise_hardswish};
  if (name == "tanh") return {dnnl::algorithm::eltwise_tanh};
  if (name == "gelu") return {dnnl::algorithm::eltwise_gelu_erf};
  if (name == "gelu_tanh") return {dnnl::algorithm::eltwise_gelu_tanh};
  throw std::invalid_argument("fused convolution: unknown activation '" + name + "'");
}

// The tensors a convolution is folded from: its weight and bias and the norm's affine
// parameters and running statistics (undefined where the model has none).
struct Sources {
  at::Tensor weight, bias, normWeight, normBias, mean, var;
  double eps = 1e-5;
  std::vector<const at::Tensor*> all() const { return {&weight, &bias, &normWeight, &normBias, &mean, &var}; }
};

struct Stamp {
  const void* data;
  uint32_t version;
  bool operator==(const Stamp& o) const { return data == o.data && version == o.version; }
};

// One compiled primitive, for one input shape and dtype.
struct Plan {
  std::vector<int64_t> key;
  dnnl::convolution_forward primitive;
  memory::desc src, dst, addend;
  memory weights;
};

class FusedConv {
 public:
  FusedConv(std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups,
            c10::optional<Activation> activation, bool residual)
      : stride_(std::move(stride)), padding_(std::move(padding)), dilation_(std::move(dilation)), groups_(groups),
        activation_(activation), residual_(residual) {}

  at::Tensor Run(const at::Tensor& input, const Sources& s, const c10::optional<at::Tensor>& addend) {
    // shows in profile()'s trace beside libtorch's own ops
    RECORD_FUNCTION("convkit::fused_conv", std::vector<c10::IValue>());
    Refold(s);
    at::ScalarType dtype = AutocastBf16() && input.scalar_type() == at::kFloat ? at::kBFloat16 : input.scalar_type();
    at::Tensor x = input.to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
    const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
    const int64_t oc = weight_.size(0), kh = weight_.size(2), kw = weight_.size(3);
    const int64_t oh = OutSize(h, kh, 0), ow = OutSize(w, kw, 1);
    if (x.size(1) != weight_.size(1) * groups_) {
      throw std::invalid_argument("fused convolution: expected input with " + std::to_string(weight_.size(1) * groups_) +
                                  " channels, got " + Describe(input));
    }
    if (oh <= 0 || ow <= 0) throw std::invalid_argument("fused convolution: input " + Describe(input) + " is smaller than the kernel");
    at::Tensor out = at::empty({n, oc, oh, ow}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
    at::Tensor add;
    if (residual_) {
      if (!addend || addend->sizes() != out.sizes()) {
        throw std::invalid_argument("fused convolution: the residual must have the output's shape [" +
                                    std::to_string(n) + ", " + std::to_string(oc) + ", " + std::to_string(oh) + ", " +
                                    std::to_string(ow) + "], got " + (addend ? Describe(*addend) : "none"));
      }
      add = addend->contiguous(at::MemoryFormat::ChannelsLast);
      if (add.scalar_type() != at::kFloat && add.scalar_type() != dtype) add = add.to(dtype);
    }
    const Plan& plan = PlanFor(x, add);
    memory src(plan.src, Engine(), x.data_ptr()), dst(plan.dst, Engine(), out.data_ptr());
    memory bias({{oc}, memory::data_type::f32, tag::x}, Engine(), bias_.data_ptr());
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, plan.weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}};
    if (residual_) args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, memory(plan.addend, Engine(), add.data_ptr()));
    plan.primitive.execute(Stream(), args);
    Stream().wait();
    return out;
  }

 private:
  static bool AutocastBf16() {
#if CONVKIT_TORCH_AT_LEAST(2, 4)
    return at::autocast::is_autocast_enabled(at::kCPU) && at::autocast::get_autocast_dtype(at::kCPU) == at::kBFloat16;
#else
    return at::autocast::is_cpu_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
#endif
  }

  int64_t OutSize(int64_t in, int64_t k, int i) const {
    return (in + padding_[i] + padding_[i + 2] - dilation_[i] * (k - 1) - 1) / stride_[i] + 1;
  }

  // Folds the norm into the weight and bias (in float32) when any source changed.
  void Refold(const Sources& s) {
    std::vector<Stamp> stamp;
    for (const at::Tensor* t : s.all()) stamp.push_back(t->defined() ? Stamp{t->data_ptr(), t->_version()} : Stamp{nullptr, 0});
    if (stamp == stamp_ && s.eps == eps_) return;
    at::NoGradGuard noGrad;
    at::Tensor w = s.weight.to(at::kFloat);
    at::Tensor b = s.bias.defined() ? s.bias.to(at::kFloat) : at::zeros({w.size(0)}, w.options());
    if (s.mean.defined()) {
      at::Tensor scale = (s.var.to(at::kFloat) + s.eps).rsqrt();
      if (s.normWeight.defined()) scale = scale * s.normWeight.to(at::kFloat);
      w = w * scale.reshape({-1, 1, 1, 1});
      b = (b - s.mean.to(at::kFloat)) * scale;
      if (s.normBias.defined()) b = b + s.normBias.to(at::kFloat);
    }
    weight_ = w.contiguous();
    bias_ = b.contiguous();
    stamp_ = std::move(stamp);
    eps_ = s.eps;
    plans_.clear();
  }

  const Plan& PlanFor(const at::Tensor& x, const at::Tensor& add) {
    std::vector<int64_t> key{x.size(0), x.size(2), x.size(3), static_cast<int64_t>(x.scalar_type()),
                             add.defined() ? static_cast<int64_t>(add.scalar_type()) : -1};
    for (const Plan& p : plans_) {
      if (p.key == key) return p;
    }
    if (plans_.size() >= kMaxPlans) plans_.erase(plans_.begin());
    plans_.push_back(Compile(x, add, std::move(key)));
    return plans_.back();
  }

  Plan Compile(const at::Tensor& x, const at::Tensor& add, std::vector<int64_t> key) {
    const memory::data_type dt = DnnlType(x.scalar_type());
    const int64_t oc = weight_.size(0), kh = weight_.size(2), kw = weight_.size(3);
    const memory::dims outDims{x.size(0), oc, OutSize(x.size(2), kh, 0), OutSize(x.size(3), kw, 1)};
    const bool grouped = groups_ > 1;
    const memory::dims wDims = grouped ? memory::dims{groups_, oc / groups_, weight_.size(1), kh, kw}
                                       : memory::dims{oc, weight_.size(1), kh, kw};
    memory::desc src({x.size(0), x.size(1), x.size(2), x.size(3)}, dt, tag::nhwc);
    memory::desc dst(outDims, dt, tag::nhwc);
    memory::desc wAny(wDims, dt, tag::any);
    memory::desc bias({oc}, memory::data_type::f32, tag::x);
    dnnl::post_ops ops;
    memory::desc addend;
    if (add.defined()) {
      addend = memory::desc(outDims, DnnlType(add.scalar_type()), tag::nhwc);
      ops.append_binary(dnnl::algorithm::binary_add, addend);
    }
    if (activation_) ops.append_eltwise(1.f, activation_->algorithm, activation_->alpha, activation_->beta);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, wAny,
                                         bias, dst, {stride_[0], stride_[1]}, {dilation_[0] - 1, dilation_[1] - 1},
                                         {padding_[0], padding_[1]}, {padding_[2], padding_[3]});
    dnnl::convolution_forward::primitive_desc pd(desc, attr, Engine());
    memory plain({wDims, memory::data_type::f32, grouped ? tag::goihw : tag::oihw}, Engine(), weight_.data_ptr());
    memory packed(pd.weights_desc(), Engine());
    dnnl::reorder(plain, packed).execute(Stream(), plain, packed);
    Stream().wait();
    return Plan{std::move(key), dnnl::convolution_forward(pd), src, dst, addend, packed};
  }

  static constexpr size_t kMaxPlans = 4;
  std::vector<int64_t> stride_, padding_, dilation_;
  int64_t groups_;
  c10::optional<Activation> activation_;
  bool residual_;
  at::Tensor weight_, bias_;
  std::vector<Stamp> stamp_;
  double eps_ = 0;
  std::vector<Plan> plans_;
};

// Marks the externals this file hands out, so that no other value passes for one.
constexpr napi_type_tag kStateTag = {0x6b76636f6e76666eULL, 0x7573656463766f31ULL};

FusedConv* StateArg(Args& a, size_t i) {
  Napi::Value raw = a.raw(i);
  bool tagged = false;
  if (raw.IsExternal()) napi_check_object_type_tag(a.env(), raw, &kStateTag, &tagged);
  if (!tagged) a.fail(i, "a fused convolution state (fusedConvCreate)");
  return raw.As<Napi::External<FusedConv>>().Data();
}

at::Tensor OptTensor(Args& a, size_t i) {
  c10::optional<at::Tensor> t = a.optT(i);
  return t ? *t : at::Tensor();
}

}  // namespace

void InitFusedConv(Napi::Env env, Napi::Object e) {
  // fusedConvCreate(stride [2], padding [top, left, bottom, right], dilation [2], groups,
  //                 activation name | '', residual): the state of one fused convolution
  Def(env, e, "fusedConvCreate", [](Args& a) -> Napi::Value {
    std::vector<int64_t> stride = a.ints(0), padding = a.ints(1), dilation = a.ints(2);
    if (stride.size() != 2) a.fail(0, "2 strides");
    if (padding.size() != 4) a.fail(1, "4 paddings (top, left, bottom, right)");
    if (dilation.size() != 2) a.fail(2, "2 dilations");
    std::string act = a.str(4);
    c10::optional<Activation> activation;
    if (!act.empty()) {
      try {
        activation = ParseActivation(act);
      } catch (const std::invalid_argument&) {
        a.fail(4, "relu, relu6, silu, sigmoid, hardswish, tanh, gelu, gelu_tanh or ''");
      }
    }
    auto* state = new FusedConv(stride, padding, dilation, a.i64(3), activation, a.b(5));
    auto external = Napi::External<FusedConv>::New(a.env(), state, [](Napi::Env, FusedConv* p) { delete p; });
    napi_type_tag_object(a.env(), external, &kStateTag);
    return external;
  });
  // fusedConv(state, x, weight, bias?, normWeight?, normBias?, runningMean?, runningVar?, eps, addend?)
  Def(env, e, "fusedConv", [](Args& a) {
    FusedConv* state = StateArg(a, 0);
    const at::Tensor& x = a.t(1);
    Sources s{a.t(2), OptTensor(a, 3), OptTensor(a, 4), OptTensor(a, 5), OptTensor(a, 6), OptTensor(a, 7), a.f64(8)};
    return state->Run(x, s, a.optT(9));
  });
  Def(env, e, "fusedConvAvailable", [](Args&) { return true; });
}

}  // namespace convkit

#else  // no oneDNN headers: the ops exist, and say so when called

#include <stdexcept>

namespace convkit {

void InitFusedConv(Napi::Env env, Napi::Object e) {
  auto unavailable = [](Args&) -> Napi::Value {
    throw std::runtime_error("this build of convkit has no fused convolutions (built without oneDNN's headers)");
  };
  Def(env, e, "fusedConvCreate", unavailable);
  Def(env, e, "fusedConv", unavailable);
  Def(env, e, "fusedConvAvailable", [](Args&) { return false; });
}

}  // namespace convkit

#endif
