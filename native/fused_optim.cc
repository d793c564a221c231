// The optimizers' whole update in one pass over each parameter, with no temporaries:
// torch.optim.SGD's (L2 decay, momentum with dampening, Nesterov, maximize), Adam / AdamW's
// (L2 or decoupled decay, AMSGrad, maximize) and RMSprop's (PyTorch's or TensorFlow's, centered,
// momentum).
//
// Done as separate libtorch ops (PyTorch's own single-tensor or foreach path), an SGD step reads
// and writes every parameter-sized tensor five times and allocates two more: on ResNet-18's 11 M
// parameters that took 22 ms of a 90 ms training step here, against under 2 ms for one pass that
// reads the parameter, its gradient and its state and writes the ones it changes. Adam's ops
// pass over the data about twelve times.
//
// The arithmetic is libtorch's, operation for operation: an fma where its vectorised add(alpha)
// fuses, a product rounded on its own where mul_ rounds it. So the bits are torch.optim's, and a
// run agrees with one that took the libtorch-ops path or ran in PyTorch. A dense float32
// parameter takes the loop, a gradient or state in another layout or dtype copied to the
// parameter's first; a parameter of another dtype takes the same arithmetic as libtorch ops.
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/variable.h>

#include <functional>
#include <vector>

#include "vec.h"

namespace convkit {
namespace {

using Tensors = std::vector<at::Tensor>;

// t itself where it is float32 and laid out as p, else a copy that is: the loop then does the
// same arithmetic whatever the layouts, so that a resumed run matches an uninterrupted one.
at::Tensor LikeParam(const at::Tensor& t, const at::Tensor& p) {
  if (t.scalar_type() == at::kFloat && t.strides() == p.strides()) return t;
  return at::empty_like(p).copy_(t);
}

// A slice of one parameter for the threads: chunks of whole tensors up to kChunk elements, so
// that the many small tensors (biases, norms) do not each pay a parallel region.
struct Piece {
  size_t tensor;
  int64_t begin, end;
};
constexpr int64_t kChunk = 1 << 15;

// Runs loop(t, begin, end) over the dense float32 parameters, in pieces on the threads, with
// grads[t] and every states[k][t] laid out as params[t] (state copies written back after);
// ops(t) updates the other parameters with libtorch ops.
void ForEachParam(const char* op, Tensors& params, Tensors& grads, const std::vector<Tensors*>& states,
                  const std::function<void(size_t, int64_t, int64_t)>& loop, const std::function<void(size_t)>& ops) {
  TORCH_CHECK(grads.size() == params.size(), op, ": ", params.size(), " parameters but ", grads.size(), " gradients");
  for (const Tensors* s : states) {
    TORCH_CHECK(s->size() == params.size(), op, ": ", params.size(), " parameters but ", s->size(), " state tensors");
  }
  at::NoGradGuard noGrad;
  std::vector<Piece> pieces;
  std::vector<std::pair<at::Tensor, at::Tensor>> copyBack;  // (a state tensor, its copy laid out as the parameter)
  // every check before any update: a refused call changes nothing
  for (size_t t = 0; t < params.size(); t++) {
    const at::Tensor& p = params[t];
    TORCH_CHECK(grads[t].sizes() == p.sizes(), op, ": parameter ", t, " has shape ", p.sizes(), " but its gradient ",
                grads[t].sizes());
    for (const Tensors* s : states) {
      TORCH_CHECK((*s)[t].sizes() == p.sizes(), op, ": parameter ", t, " has shape ", p.sizes(), " but its state ",
                  (*s)[t].sizes());
    }
  }
  for (size_t t = 0; t < params.size(); t++) {
    at::Tensor& p = params[t];
    if (p.scalar_type() != at::kFloat || !p.is_non_overlapping_and_dense()) {
      ops(t);
      continue;
    }
    grads[t] = LikeParam(grads[t], p);
    for (Tensors* s : states) {
      at::Tensor& state = (*s)[t];
      at::Tensor laidOut = LikeParam(state, p);
      if (!laidOut.is_same(state)) copyBack.emplace_back(state, laidOut);
      torch::autograd::impl::bump_version(state);
      state = laidOut;
    }
    torch::autograd::impl::bump_version(p);
    for (int64_t b = 0, n = p.numel(); b < n; b += kChunk) pieces.push_back({t, b, std::min(n, b + kChunk)});
  }
  at::parallel_for(0, static_cast<int64_t>(pieces.size()), 1, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; i++) loop(pieces[i].tensor, pieces[i].begin, pieces[i].end);
  });
  for (auto& [state, laidOut] : copyBack) state.copy_(laidOut);
}

// ---- SGD ----------------------------------------------------------------------------------------

struct SgdHyper {
  float lr, momentum, keep, weightDecay;  // keep: 1 - dampening, rounded once as libtorch's alpha is
  bool nesterov, maximize, init;  // init: the buffers are new and start at the decayed gradient
};

// Elements [begin, end) of one parameter; buf is null without momentum.
CONVKIT_FMA_CLONES void SgdF32(float* p, const float* g, float* buf, int64_t begin, int64_t end, SgdHyper h) {
  const float sign = h.maximize ? -1.f : 1.f;
  for (int64_t i = begin; i < end; i++) {
    float d = h.weightDecay != 0 ? __builtin_fmaf(h.weightDecay, p[i], sign * g[i]) : sign * g[i];
    if (buf) {
      float b = h.init ? d : __builtin_fmaf(h.keep, d, h.momentum * buf[i]);
      buf[i] = b;
      d = h.nesterov ? __builtin_fmaf(h.momentum, b, d) : b;
    }
    p[i] = __builtin_fmaf(-h.lr, d, p[i]);
  }
}

void SgdOps(at::Tensor& p, const at::Tensor& grad, at::Tensor* buf, const SgdHyper& h) {
  at::Tensor d = h.maximize ? grad.neg() : grad;
  if (h.weightDecay != 0) d = d.add(p, h.weightDecay);
  if (buf) {
    if (h.init) buf->copy_(d);
    else buf->mul_(h.momentum).add_(d, h.keep);
    d = h.nesterov ? d.add(*buf, h.momentum) : *buf;
  }
  p.add_(d, -h.lr);
}

void SgdStep(Tensors params, Tensors grads, Tensors bufs, const SgdHyper& h) {
  RECORD_FUNCTION("convkit::sgd_step_", std::vector<c10::IValue>());
  bool momentum = !bufs.empty();
  ForEachParam("sgdStep_", params, grads, momentum ? std::vector<Tensors*>{&bufs} : std::vector<Tensors*>{},
      [&](size_t t, int64_t b, int64_t e) {
        SgdF32(params[t].data_ptr<float>(), grads[t].data_ptr<float>(), momentum ? bufs[t].data_ptr<float>() : nullptr, b, e, h);
      },
      [&](size_t t) { SgdOps(params[t], grads[t], momentum ? &bufs[t] : nullptr, h); });
}

// ---- Adam, AdamW -------------------------------------------------------------------------------

// Where Adam's and RMSprop's element loops start: the gradient (negated to maximize, plus L2
// decay) and the weight (shrunk by decoupled decay; exact where there is none). Selects on
// uniform flags, which keep the loops vectorised.
struct Decayed {
  float sign, weightDecay, shrink;
  bool l2;
  Decayed(bool maximize, float wd, bool decoupled, float decay)
      : sign(maximize ? -1.f : 1.f), weightDecay(wd), shrink(wd != 0 && decoupled ? decay : 1.f), l2(wd != 0 && !decoupled) {}
  inline __attribute__((always_inline)) float Grad(float g, float w) const {
    return l2 ? __builtin_fmaf(weightDecay, w, sign * g) : sign * g;
  }
  inline __attribute__((always_inline)) float Weight(float w) const { return w * shrink; }
};


struct AdamHyper {
  float beta1, keep1, beta2, keep2, eps, weightDecay, decay;  // keep: 1 - beta; decay: AdamW's 1 - lr * wd
  bool decoupled, maximize;
};

// Per parameter: stepSize = -lr / (1 - beta1^step), bc2Sqrt = sqrt(1 - beta2^step); vmax with
// AMSGrad.
template <bool kAmsgrad>
inline __attribute__((always_inline)) void AdamLoop(float* p, const float* g, float* m, float* v, float* vmax, int64_t begin,
                                                    int64_t end, const AdamHyper& h, float stepSize, float bc2Sqrt) {
  const Decayed start(h.maximize, h.weightDecay, h.decoupled, h.decay);
  for (int64_t i = begin; i < end; i++) {
    float d = start.Grad(g[i], p[i]), w = start.Weight(p[i]);
    float mi = __builtin_fmaf(h.keep1, d, h.beta1 * m[i]);
    float vi = __builtin_fmaf(h.keep2 * d, d, h.beta2 * v[i]);
    m[i] = mi;
    v[i] = vi;
    float second = vi;
    if constexpr (kAmsgrad) {
      float old = vmax[i];
      second = (vi > old || vi != vi) ? vi : old;  // at::maximum: a NaN wins
      vmax[i] = second;
    }
    float denom = __builtin_sqrtf(second) / bc2Sqrt + h.eps;
    p[i] = w + stepSize * mi / denom;
  }
}

CONVKIT_FMA_CLONES void AdamF32(float* p, const float* g, float* m, float* v, float* vmax, int64_t begin, int64_t end,
                                AdamHyper h, float stepSize, float bc2Sqrt) {
  if (vmax) AdamLoop<true>(p, g, m, v, vmax, begin, end, h, stepSize, bc2Sqrt);
  else AdamLoop<false>(p, g, m, v, vmax, begin, end, h, stepSize, bc2Sqrt);
}

void AdamOps(at::Tensor& p, const at::Tensor& grad, at::Tensor& m, at::Tensor& v, at::Tensor* vmax, const AdamHyper& h,
             double stepSize, double bc2Sqrt) {
  at::Tensor d = h.maximize ? grad.neg() : grad;
  if (h.weightDecay != 0) {
    if (h.decoupled) p.mul_(h.decay);
    else d = d.add(p, h.weightDecay);
  }
  m.mul_(h.beta1).add_(d, h.keep1);
  v.mul_(h.beta2).addcmul_(d, d, h.keep2);
  at::Tensor second = v;
  if (vmax) second = at::maximum_out(*vmax, *vmax, v);
  p.addcdiv_(m, second.sqrt().div_(bc2Sqrt).add_(h.eps), stepSize);
}

void AdamStep(Tensors params, Tensors grads, Tensors m, Tensors v, Tensors vmax, const AdamHyper& h,
              const std::vector<double>& stepSizes, const std::vector<double>& bc2Sqrts) {
  RECORD_FUNCTION("convkit::adam_step_", std::vector<c10::IValue>());
  TORCH_CHECK(stepSizes.size() == params.size() && bc2Sqrts.size() == params.size(), "adamStep_: ", params.size(),
              " parameters but ", stepSizes.size(), " step sizes and ", bc2Sqrts.size(), " bias corrections");
  bool ams = !vmax.empty();
  std::vector<Tensors*> states{&m, &v};
  if (ams) states.push_back(&vmax);
  ForEachParam("adamStep_", params, grads, states,
      [&](size_t t, int64_t b, int64_t e) {
        AdamF32(params[t].data_ptr<float>(), grads[t].data_ptr<float>(), m[t].data_ptr<float>(), v[t].data_ptr<float>(),
                ams ? vmax[t].data_ptr<float>() : nullptr, b, e, h, static_cast<float>(stepSizes[t]),
                static_cast<float>(bc2Sqrts[t]));
      },
      [&](size_t t) { AdamOps(params[t], grads[t], m[t], v[t], ams ? &vmax[t] : nullptr, h, stepSizes[t], bc2Sqrts[t]); });
}

// ---- RMSprop ------------------------------------------------------------------------------------

struct RmsHyper {
  float alpha, keep, eps, weightDecay, decay, momentum;  // keep: 1 - alpha; decay: 1 - lr * wd (decoupled)
  float bufScale, paramScale, lrNeg;  // lr folded into the buffer (TF): lr and -1, else 1 and -lr
  bool decoupled, maximize, tf;
};

// avg = sqrt(s) + eps (PyTorch) or sqrt(s + eps) (TensorFlow, whose s += (1 - alpha) * (g^2 - s));
// centered takes mean(g)^2 from s first. ga and buf are null unless centered / with momentum.
template <bool kCentered, bool kMomentum>
inline __attribute__((always_inline)) void RmsLoop(float* p, const float* g, float* s, float* ga, float* buf, int64_t begin,
                                                   int64_t end, const RmsHyper& h) {
  const Decayed start(h.maximize, h.weightDecay, h.decoupled, h.decay);
  for (int64_t i = begin; i < end; i++) {
    float d = start.Grad(g[i], p[i]), w = start.Weight(p[i]);
    float si = h.tf ? __builtin_fmaf(d * d - s[i], h.keep, s[i]) : __builtin_fmaf(h.keep * d, d, h.alpha * s[i]);
    s[i] = si;
    float avg = si;
    if constexpr (kCentered) {
      float gi = h.tf ? __builtin_fmaf(d - ga[i], h.keep, ga[i]) : __builtin_fmaf(h.keep, d, h.alpha * ga[i]);
      ga[i] = gi;
      avg = __builtin_fmaf(-gi, gi, si);
    }
    avg = h.tf ? __builtin_sqrtf(avg + h.eps) : __builtin_sqrtf(avg) + h.eps;
    if constexpr (kMomentum) {
      float b = h.momentum * buf[i] + h.bufScale * d / avg;
      buf[i] = b;
      p[i] = __builtin_fmaf(h.paramScale, b, w);
    } else {
      p[i] = w + h.lrNeg * d / avg;
    }
  }
}

CONVKIT_FMA_CLONES void RmsF32(float* p, const float* g, float* s, float* ga, float* buf, int64_t begin, int64_t end,
                               RmsHyper h) {
  if (ga && buf) RmsLoop<true, true>(p, g, s, ga, buf, begin, end, h);
  else if (ga) RmsLoop<true, false>(p, g, s, ga, buf, begin, end, h);
  else if (buf) RmsLoop<false, true>(p, g, s, ga, buf, begin, end, h);
  else RmsLoop<false, false>(p, g, s, ga, buf, begin, end, h);
}

void RmsOps(at::Tensor& p, const at::Tensor& grad, at::Tensor& s, at::Tensor* ga, at::Tensor* buf, const RmsHyper& h) {
  at::Tensor d = h.maximize ? grad.neg() : grad;
  if (h.weightDecay != 0) {
    if (h.decoupled) p.mul_(h.decay);
    else d = d.add(p, h.weightDecay);
  }
  at::Tensor avg;
  if (h.tf) {
    s.add_(d.mul(d).sub_(s), h.keep);
    if (ga) ga->add_(d.sub(*ga), h.keep);
    avg = (ga ? s.addcmul(*ga, *ga, -1) : s).add(h.eps).sqrt_();
  } else {
    s.mul_(h.alpha).addcmul_(d, d, h.keep);
    if (ga) ga->mul_(h.alpha).add_(d, h.keep);
    avg = (ga ? s.addcmul(*ga, *ga, -1).sqrt_() : s.sqrt()).add_(h.eps);
  }
  if (buf) {
    buf->mul_(h.momentum).addcdiv_(d, avg, h.bufScale);
    p.add_(*buf, h.paramScale);
  } else {
    p.addcdiv_(d, avg, h.lrNeg);
  }
}

void RmsStep(Tensors params, Tensors grads, Tensors s, Tensors ga, Tensors bufs, const RmsHyper& h) {
  RECORD_FUNCTION("convkit::rmsprop_step_", std::vector<c10::IValue>());
  bool centered = !ga.empty(), momentum = !bufs.empty();
  std::vector<Tensors*> states{&s};
  if (centered) states.push_back(&ga);
  if (momentum) states.push_back(&bufs);
  ForEachParam("rmspropStep_", params, grads, states,
      [&](size_t t, int64_t b, int64_t e) {
        RmsF32(params[t].data_ptr<float>(), grads[t].data_ptr<float>(), s[t].data_ptr<float>(),
               centered ? ga[t].data_ptr<float>() : nullptr, momentum ? bufs[t].data_ptr<float>() : nullptr, b, e, h);
      },
      [&](size_t t) { RmsOps(params[t], grads[t], s[t], centered ? &ga[t] : nullptr, momentum ? &bufs[t] : nullptr, h); });
}

}  // namespace

void InitFusedOptim(Napi::Env env, Napi::Object e) {
  // sgdStep_(params, grads, bufs ([] without momentum), lr, momentum, dampening, weightDecay,
  //          nesterov, maximize, init)
  Def(env, e, "sgdStep_", [](Args& a) {
    SgdHyper h{static_cast<float>(a.f64(3)), static_cast<float>(a.f64(4)), static_cast<float>(1 - a.f64(5)),
               static_cast<float>(a.f64(6)), a.b(7), a.b(8), a.b(9)};
    SgdStep(a.tensors(0), a.tensors(1), a.tensors(2), h);
  });
  // adamStep_(params, grads, expAvgs, expAvgSqs, maxExpAvgSqs ([] without AMSGrad), stepSizes,
  //           bc2Sqrts, [lr, beta1, beta2, eps, weightDecay], decoupled, maximize)
  Def(env, e, "adamStep_", [](Args& a) {
    std::vector<double> x = a.f64s(7);
    if (x.size() != 5) a.fail(7, "[lr, beta1, beta2, eps, weightDecay]");
    double lr = x[0], beta1 = x[1], beta2 = x[2], eps = x[3], wd = x[4];
    AdamHyper h{static_cast<float>(beta1), static_cast<float>(1 - beta1), static_cast<float>(beta2),
                static_cast<float>(1 - beta2), static_cast<float>(eps), static_cast<float>(wd),
                static_cast<float>(1 - lr * wd), a.b(8), a.b(9)};
    AdamStep(a.tensors(0), a.tensors(1), a.tensors(2), a.tensors(3), a.tensors(4), h, a.f64s(5), a.f64s(6));
  });
  // rmspropStep_(params, grads, squareAvgs, gradAvgs ([] unless centered), bufs ([] without
  //              momentum), [lr, alpha, eps, weightDecay, momentum], decoupled, maximize, tfStyle, lrInMomentum)
  Def(env, e, "rmspropStep_", [](Args& a) {
    std::vector<double> x = a.f64s(5);
    if (x.size() != 5) a.fail(5, "[lr, alpha, eps, weightDecay, momentum]");
    double lr = x[0], alpha = x[1], eps = x[2], wd = x[3], momentum = x[4];
    bool lrInMomentum = a.b(9);
    RmsHyper h{static_cast<float>(alpha), static_cast<float>(1 - alpha), static_cast<float>(eps), static_cast<float>(wd),
               static_cast<float>(1 - lr * wd), static_cast<float>(momentum), static_cast<float>(lrInMomentum ? lr : 1),
               static_cast<float>(lrInMomentum ? -1 : -lr), static_cast<float>(-lr), a.b(6), a.b(7), a.b(8)};
    RmsStep(a.tensors(0), a.tensors(1), a.tensors(2), a.tensors(3), a.tensors(4), h);
  });
}

}  // namespace convkit
