// SGD's whole update in one pass over each parameter: torch.optim.SGD's arithmetic (L2 decay,
// momentum with dampening, Nesterov, maximize) with no temporaries.
//
// Done as separate libtorch ops (PyTorch's own single-tensor or foreach path), a step reads and
// writes every parameter-sized tensor five times and allocates two more: on ResNet-18's 11 M
// parameters that took 20 ms of a 90 ms training step here, against about 3 ms for one pass that
// reads the parameter, its gradient and its momentum buffer and writes the two it changes.
// A dense float32 parameter takes that pass, with a gradient or buffer in another layout or dtype
// copied to the parameter's first; a parameter of another dtype takes the same arithmetic as
// libtorch ops.
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/variable.h>

#include <vector>

#include "vec.h"

namespace convkit {
namespace {

struct Hyper {
  float lr, momentum, keep, weightDecay;  // keep: 1 - dampening, rounded once as libtorch's alpha is
  bool nesterov, maximize, init;  // init: the buffers are new and start at the decayed gradient
};

// Elements [begin, end) of one parameter. buf is null without momentum. The fmas are where
// libtorch's vectorised add(alpha) and add_(alpha) fuse; the momentum's product is rounded on
// its own, as mul_ rounds it: the same bits as torch.optim.SGD, so that runs agree with runs that
// took the libtorch-ops path (another dtype) or PyTorch itself.
CONVKIT_FMA_CLONES void UpdateF32(float* p, const float* g, float* buf, int64_t begin, int64_t end, Hyper h) {
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

// The same update as libtorch ops, for parameters that are not dense float32.
void UpdateOps(at::Tensor& p, const at::Tensor& grad, at::Tensor* buf, const Hyper& h) {
  at::Tensor d = h.maximize ? grad.neg() : grad;
  if (h.weightDecay != 0) d = d.add(p, h.weightDecay);
  if (buf) {
    if (h.init) buf->copy_(d);
    else buf->mul_(h.momentum).add_(d, h.keep);
    d = h.nesterov ? d.add(*buf, h.momentum) : *buf;
  }
  p.add_(d, -h.lr);
}

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

void SgdStep(std::vector<at::Tensor> params, std::vector<at::Tensor> grads, std::vector<at::Tensor> bufs,
             const Hyper& h) {
  RECORD_FUNCTION("convkit::sgd_step_", std::vector<c10::IValue>());
  TORCH_CHECK(grads.size() == params.size(), "sgdStep_: ", params.size(), " parameters but ", grads.size(), " gradients");
  TORCH_CHECK(bufs.empty() || bufs.size() == params.size(), "sgdStep_: ", params.size(), " parameters but ",
              bufs.size(), " momentum buffers");
  at::NoGradGuard noGrad;
  std::vector<Piece> pieces;
  std::vector<std::pair<at::Tensor, at::Tensor>> copyBack;  // (a buffer, its copy laid out as the parameter)
  for (size_t t = 0; t < params.size(); t++) {
    at::Tensor& p = params[t];
    at::Tensor* buf = bufs.empty() ? nullptr : &bufs[t];
    TORCH_CHECK(grads[t].sizes() == p.sizes(), "sgdStep_: parameter ", t, " has shape ", p.sizes(), " but its gradient ",
                grads[t].sizes());
    TORCH_CHECK(!buf || buf->sizes() == p.sizes(), "sgdStep_: parameter ", t, " has shape ", p.sizes(),
                " but its momentum buffer ", buf->sizes());
    if (p.scalar_type() != at::kFloat || !p.is_non_overlapping_and_dense()) {
      UpdateOps(p, grads[t], buf, h);
      continue;
    }
    grads[t] = LikeParam(grads[t], p);
    if (buf) {
      at::Tensor laidOut = LikeParam(*buf, p);
      if (!laidOut.is_same(*buf)) copyBack.emplace_back(*buf, laidOut);
      torch::autograd::impl::bump_version(*buf);
      *buf = laidOut;
    }
    torch::autograd::impl::bump_version(p);
    for (int64_t b = 0, n = p.numel(); b < n; b += kChunk) pieces.push_back({t, b, std::min(n, b + kChunk)});
  }
  at::parallel_for(0, static_cast<int64_t>(pieces.size()), 1, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; i++) {
      const Piece& s = pieces[i];
      float* buf = bufs.empty() ? nullptr : bufs[s.tensor].data_ptr<float>();
      UpdateF32(params[s.tensor].data_ptr<float>(), grads[s.tensor].data_ptr<float>(), buf, s.begin, s.end, h);
    }
  });
  for (auto& [buf, laidOut] : copyBack) buf.copy_(laidOut);
}

}  // namespace

void InitFusedSgd(Napi::Env env, Napi::Object e) {
  // sgdStep_(params, grads, bufs ([] without momentum), lr, momentum, dampening, weightDecay,
  //          nesterov, maximize, init)
  Def(env, e, "sgdStep_", [](Args& a) {
    Hyper h{static_cast<float>(a.f64(3)), static_cast<float>(a.f64(4)), static_cast<float>(1 - a.f64(5)),
            static_cast<float>(a.f64(6)), a.b(7), a.b(8), a.b(9)};
    SgdStep(a.tensors(0), a.tensors(1), a.tensors(2), h);
  });
}

}  // namespace convkit
