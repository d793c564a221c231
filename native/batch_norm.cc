// Training-mode batch norm on channels-last maps (and [N, C] batches), float32 and bf16, on
// kernels of our own, optionally with the residual addition and the ReLU that follow it.
//
// libtorch 1.13's channels-last kernels take more passes over the map than they need: on a
// 128x16x32x32 bf16 map its training forward takes 0.71 ms where one elementwise pass (x * 2)
// takes 0.19, and the 19 norms of a ResNet-20 step spent 17 ms in batch norm against 58 in its
// convolutions. Here the forward is one pass for the statistics (sums of x - x[0], shifted so that
// the variance does not cancel) and one for the output; the backward one for the two sums and one
// for the gradient. Sums run in float over kFlush tiles, then in double. Values agree with
// libtorch's within the dtype's rounding (with float64's where libtorch's float32 loses digits).
//
// With `relu`, the output is max(y, 0) and the backward masks the gradient where that is 0, by
// recomputing y from x (reading the output would be one more stream): the ReLU costs no pass of
// its own (a 128x16x32x32 bf16 norm + ReLU, forward and backward: 1.65 ms, against 1.87 for the
// norm then libtorch's ReLU and 1.99 for PyTorch's own pair). With a residual added before the
// ReLU, the mask comes from the output, and the masked gradient, written by the sums pass, is
// also the residual's.
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "vec.h"

namespace convkit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kTile = 512;   // elements per kernel call: whole rows, at least one
constexpr int64_t kFlush = 16;   // tiles summed in float before they are added in double
constexpr int64_t kGrain = 256;  // rows per thread at least

// All ones where v > 0 (a NaN of either sign counts as its sign says), else 0: the ReLU's mask,
// on the bits (see vec.h's Store).
inline uint32_t PositiveMask(float v) {
  int32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return 0u - static_cast<uint32_t>(bits > 0);
}

// The kernels run on a tile of whole rows as one flat array of n elements, with the per-channel
// factors repeated row after row to the tile's length: a loop over a few channels alone (16 in
// ResNet-20's first stage) is too short for the vectoriser's widest vectors.
//
// Sums: s += x - shift and q += (x - shift)^2 per element, or with a gradient g: s += g' and
// q += g' * (x - shift), where g' is g masked by the ReLU (y = x * a + b > 0) when `Relu`.
template <typename T, bool Relu, bool Grad>
inline __attribute__((always_inline)) void Sums(const T* __restrict x, const T* __restrict g, int64_t n, const float* __restrict shift,
                                                const float* __restrict a, const float* __restrict b, float* __restrict s,
                                                float* __restrict q) {
  for (int64_t j = 0; j < n; j++) {
    float xv = Load(x[j]);
    float d = xv - shift[j];
    float v = d;
    if (Grad) {
      v = Load(g[j]);
      if (Relu) v = Mask(v, PositiveMask(xv * a[j] + b[j]));
    }
    s[j] += v;
    q[j] += v * d;
  }
}

// out = x * a + b (+ r with `Res`, then the ReLU), or with a gradient g: out = g' * a + x * b + d
// (g' as above, masked by the forward's y = x * ya + yb). g carries r in the forward.
template <typename T, bool Relu, bool Grad, bool Res = false>
inline __attribute__((always_inline)) void Affine(const T* __restrict x, const T* __restrict g, T* __restrict out, int64_t n,
                                                  const float* __restrict a, const float* __restrict b, const float* __restrict d,
                                                  const float* __restrict ya, const float* __restrict yb) {
  for (int64_t j = 0; j < n; j++) {
    float xv = Load(x[j]);
    float v;
    if (Grad) {
      float gv = Load(g[j]);
      if (Relu) gv = Mask(gv, PositiveMask(xv * ya[j] + yb[j]));
      v = gv * a[j] + xv * b[j] + d[j];
    } else {
      v = xv * a[j] + b[j];
      if (Res) v += Load(g[j]);
      if (Relu) v = Mask(v, PositiveMask(v));
    }
    Store(out + j, v);
  }
}

// After a residual addition and a ReLU, the mask comes from the output y (x alone does not give
// it): g' = g where y > 0, else 0, written out (it is the residual's gradient too), with the sums.
template <typename T>
inline __attribute__((always_inline)) void MaskedSums(const T* __restrict x, const T* __restrict g, const T* __restrict y,
                                                      T* __restrict gOut, int64_t n, const float* __restrict mean,
                                                      float* __restrict s, float* __restrict q) {
  for (int64_t j = 0; j < n; j++) {
    float v = Mask(Load(g[j]), PositiveMask(Load(y[j])));
    Store(gOut + j, v);
    s[j] += v;
    q[j] += v * (Load(x[j]) - mean[j]);
  }
}

// One clone per instruction set of each loop, for both dtypes, with and without the ReLU.
#define CONVKIT_BN_KERNELS(T, Name, Relu)                                                                                        \
  CONVKIT_CLONES void Name##Stats(const T* x, int64_t n, const float* shift, float* s, float* q) {                               \
    Sums<T, false, false>(x, x, n, shift, shift, shift, s, q);                                                                   \
  }                                                                                                                              \
  CONVKIT_CLONES void Name##GradSums(const T* x, const T* g, int64_t n, const float* mean, const float* ya, const float* yb,     \
                                     float* s, float* q) {                                                                       \
    Sums<T, Relu, true>(x, g, n, mean, ya, yb, s, q);                                                                            \
  }                                                                                                                              \
  CONVKIT_CLONES void Name##Forward(const T* x, T* y, int64_t n, const float* a, const float* b) {                               \
    Affine<T, Relu, false>(x, x, y, n, a, b, b, a, b);                                                                           \
  }                                                                                                                              \
  CONVKIT_CLONES void Name##Backward(const T* x, const T* g, T* dx, int64_t n, const float* a, const float* b, const float* d,   \
                                     const float* ya, const float* yb) {                                                         \
    Affine<T, Relu, true>(x, g, dx, n, a, b, d, ya, yb);                                                                         \
  }                                                                                                                              \
  CONVKIT_CLONES void Name##ForwardRes(const T* x, const T* r, T* y, int64_t n, const float* a, const float* b) {               \
    Affine<T, Relu, false, true>(x, r, y, n, a, b, b, a, b);                                                                     \
  }

// The residual ReLU's gradient pass, per dtype.
CONVKIT_CLONES void F32MaskedSums(const float* x, const float* g, const float* y, float* gOut, int64_t n, const float* mean, float* s,
                                  float* q) {
  MaskedSums(x, g, y, gOut, n, mean, s, q);
}
CONVKIT_CLONES void Bf16MaskedSums(const c10::BFloat16* x, const c10::BFloat16* g, const c10::BFloat16* y, c10::BFloat16* gOut, int64_t n,
                                   const float* mean, float* s, float* q) {
  MaskedSums(x, g, y, gOut, n, mean, s, q);
}

CONVKIT_BN_KERNELS(float, F32, false)
CONVKIT_BN_KERNELS(float, F32Relu, true)
CONVKIT_BN_KERNELS(c10::BFloat16, Bf16, false)
CONVKIT_BN_KERNELS(c10::BFloat16, Bf16Relu, true)

template <typename T>
struct Kernels {
  void (*stats)(const T*, int64_t, const float*, float*, float*);
  void (*gradSums)(const T*, const T*, int64_t, const float*, const float*, const float*, float*, float*);
  void (*forward)(const T*, T*, int64_t, const float*, const float*);
  void (*backward)(const T*, const T*, T*, int64_t, const float*, const float*, const float*, const float*, const float*);
  void (*forwardRes)(const T*, const T*, T*, int64_t, const float*, const float*);
  void (*maskedSums)(const T*, const T*, const T*, T*, int64_t, const float*, float*, float*);
};

template <typename T>
Kernels<T> KernelsFor(bool relu);
template <>
Kernels<float> KernelsFor(bool relu) {
  return relu ? Kernels<float>{F32ReluStats, F32ReluGradSums, F32ReluForward, F32ReluBackward, F32ReluForwardRes, F32MaskedSums}
              : Kernels<float>{F32Stats, F32GradSums, F32Forward, F32Backward, F32ForwardRes, F32MaskedSums};
}
template <>
Kernels<c10::BFloat16> KernelsFor(bool relu) {
  return relu ? Kernels<c10::BFloat16>{Bf16ReluStats, Bf16ReluGradSums, Bf16ReluForward, Bf16ReluBackward, Bf16ReluForwardRes,
                                       Bf16MaskedSums}
              : Kernels<c10::BFloat16>{Bf16Stats, Bf16GradSums, Bf16Forward, Bf16Backward, Bf16ForwardRes, Bf16MaskedSums};
}

// The map as [rows, C] and the tile of whole rows the kernels take.
struct Shape {
  int64_t rows, C, tileRows;
  int64_t tile() const { return tileRows * C; }
};
Shape ShapeOf(const at::Tensor& x) {
  int64_t C = x.size(1);
  return {x.numel() / C, C, std::max<int64_t>(1, kTile / C)};
}

// A per-channel factor repeated over a tile's rows.
std::vector<float> Tiled(const Shape& sh, const std::vector<float>& v) {
  std::vector<float> t(static_cast<size_t>(sh.tile()));
  for (int64_t j = 0; j < sh.tile(); j++) t[j] = v[j % sh.C];
  return t;
}

// Runs body(offset, n) on the tiles of all rows, split between threads.
template <typename F>
void ForTiles(const Shape& sh, F body) {
  at::parallel_for(0, sh.rows, kGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r += sh.tileRows) body(r * sh.C, std::min(sh.tileRows, r1 - r) * sh.C);
  });
}

// Per-channel sums over all rows: sums(offset, n, s, q) adds a tile into float sums per tile
// element; every kFlush tiles these go into the thread's double sums, which are added up per
// channel at the end.
template <typename F>
std::pair<std::vector<double>, std::vector<double>> ReduceRows(const Shape& sh, F sums) {
  int64_t threads = at::get_num_threads(), n = sh.tile();
  std::vector<double> partial(static_cast<size_t>(threads * 2 * n), 0.0);
  at::parallel_for(0, sh.rows, kGrain, [&](int64_t r0, int64_t r1) {
    std::vector<float> f(static_cast<size_t>(2 * n), 0.f);
    double* d = partial.data() + at::get_thread_num() * 2 * n;
    auto flush = [&] {
      for (int64_t j = 0; j < 2 * n; j++) d[j] += f[j];
      std::fill(f.begin(), f.end(), 0.f);
    };
    int64_t tiles = 0;
    for (int64_t r = r0; r < r1; r += sh.tileRows) {
      sums(r * sh.C, std::min(sh.tileRows, r1 - r) * sh.C, f.data(), f.data() + n);
      if (++tiles % kFlush == 0) flush();
    }
    flush();
  });
  std::vector<double> s(static_cast<size_t>(sh.C), 0.0), q(static_cast<size_t>(sh.C), 0.0);
  for (int64_t t = 0; t < threads; t++) {
    const double* d = partial.data() + t * 2 * n;
    for (int64_t j = 0; j < n; j++) {
      s[j % sh.C] += d[j];
      q[j % sh.C] += d[n + j];
    }
  }
  return {s, q};
}

// A float32 copy of an optional per-channel parameter, or `fill` where it is absent.
std::vector<float> PerChannel(const c10::optional<at::Tensor>& t, int64_t C, float fill) {
  if (!t.has_value() || !t->defined()) return std::vector<float>(static_cast<size_t>(C), fill);
  at::Tensor f = t->detach().to(at::kFloat).contiguous();
  return std::vector<float>(f.data_ptr<float>(), f.data_ptr<float>() + C);
}

at::Tensor FloatTensor(const std::vector<float>& v) {
  return at::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())}, at::kFloat).clone();
}

// y = x * a + b per channel, as the forward's output (before the ReLU) computes it.
void OutputAffine(const float* mean, const float* invstd, const std::vector<float>& w, const std::vector<float>& b, int64_t C,
                  std::vector<float>& a, std::vector<float>& shift) {
  a.resize(static_cast<size_t>(C));
  shift.resize(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; c++) {
    a[c] = w[c] * invstd[c];
    shift[c] = b[c] - mean[c] * a[c];
  }
}

// The output y = x * a + b (+ residual), the ReLU where asked, and the batch statistics.
template <typename T>
std::tuple<at::Tensor, at::Tensor, at::Tensor> ForwardT(const at::Tensor& x, const at::Tensor& residual, const std::vector<float>& w,
                                                        const std::vector<float>& b, double eps, bool relu, std::vector<float>& unbiasedVar) {
  Kernels<T> k = KernelsFor<T>(relu);
  Shape sh = ShapeOf(x);
  int64_t C = sh.C, rows = sh.rows;
  const T* xp = x.data_ptr<T>();
  std::vector<float> shift(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; c++) shift[c] = Load(xp[c]);
  std::vector<float> shiftT = Tiled(sh, shift);
  auto [s, q] = ReduceRows(sh, [&](int64_t at, int64_t n, float* fs, float* fq) { k.stats(xp + at, n, shiftT.data(), fs, fq); });
  std::vector<float> mean(static_cast<size_t>(C)), invstd(static_cast<size_t>(C));
  unbiasedVar.resize(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; c++) {
    double m = s[c] / rows;
    double var = std::max(q[c] / rows - m * m, 0.0);
    mean[c] = static_cast<float>(shift[c] + m);
    invstd[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
    unbiasedVar[c] = static_cast<float>(var * rows / (rows - 1));
  }
  std::vector<float> a, yb;
  OutputAffine(mean.data(), invstd.data(), w, b, C, a, yb);
  std::vector<float> aT = Tiled(sh, a), ybT = Tiled(sh, yb);
  at::Tensor y = at::empty_like(x);
  T* yp = y.data_ptr<T>();
  const T* rp = residual.defined() ? residual.data_ptr<T>() : nullptr;
  ForTiles(sh, [&](int64_t at, int64_t n) {
    if (rp) k.forwardRes(xp + at, rp + at, yp + at, n, aT.data(), ybT.data());
    else k.forward(xp + at, yp + at, n, aT.data(), ybT.data());
  });
  return {y, FloatTensor(mean), FloatTensor(invstd)};
}

struct Grads {
  at::Tensor dx, dw, db, dresidual;
};

// dx, dweight, dbias for batch statistics: with sg = sum g and sgx = sum g * (x - mean),
// dx = w * invstd * (g - sg / n - (x - mean) * invstd^2 * sgx / n). With a residual, y is the
// forward's output: the ReLU's mask, and g' (the gradient past the ReLU) is the residual's.
template <typename T>
Grads BackwardT(const at::Tensor& x, at::Tensor g, const at::Tensor& y, const at::Tensor& meanT, const at::Tensor& invstdT,
                const std::vector<float>& w, const std::vector<float>& b, bool relu) {
  bool residual = y.defined();
  Kernels<T> k = KernelsFor<T>(relu && !residual);
  Shape sh = ShapeOf(x);
  int64_t C = sh.C, rows = sh.rows;
  const T* xp = x.data_ptr<T>();
  const float* mean = meanT.data_ptr<float>();
  const float* invstd = invstdT.data_ptr<float>();
  std::vector<float> ya, yb;
  OutputAffine(mean, invstd, w, b, C, ya, yb);
  std::vector<float> meanT2 = Tiled(sh, std::vector<float>(mean, mean + C)), yaT = Tiled(sh, ya), ybT = Tiled(sh, yb);
  at::Tensor masked = residual && relu ? at::empty_like(x) : at::Tensor();
  const T* gp = g.data_ptr<T>();
  auto [sg, sgx] = ReduceRows(sh, [&](int64_t at, int64_t n, float* fs, float* fq) {
    if (masked.defined()) k.maskedSums(xp + at, gp + at, y.data_ptr<T>() + at, masked.data_ptr<T>() + at, n, meanT2.data(), fs, fq);
    else k.gradSums(xp + at, gp + at, n, meanT2.data(), yaT.data(), ybT.data(), fs, fq);
  });
  if (masked.defined()) {
    g = masked;
    gp = g.data_ptr<T>();
  }
  std::vector<float> a(static_cast<size_t>(C)), bx(static_cast<size_t>(C)), d(static_cast<size_t>(C));
  std::vector<float> dw(static_cast<size_t>(C)), db(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; c++) {
    double ac = static_cast<double>(w[c]) * invstd[c];
    double kc = ac * invstd[c] * invstd[c] * sgx[c] / rows;
    a[c] = static_cast<float>(ac);
    bx[c] = static_cast<float>(-kc);
    d[c] = static_cast<float>(mean[c] * kc - ac * sg[c] / rows);
    dw[c] = static_cast<float>(sgx[c] * invstd[c]);
    db[c] = static_cast<float>(sg[c]);
  }
  std::vector<float> aT = Tiled(sh, a), bxT = Tiled(sh, bx), dT = Tiled(sh, d);
  at::Tensor dx = at::empty_like(x);
  T* dxp = dx.data_ptr<T>();
  ForTiles(sh, [&](int64_t at, int64_t n) {
    k.backward(xp + at, gp + at, dxp + at, n, aT.data(), bxT.data(), dT.data(), yaT.data(), ybT.data());
  });
  return {dx, FloatTensor(dw), FloatTensor(db), residual ? g : at::Tensor()};
}

// [N, C, H, W] channels-last or [N, C] contiguous: the elements as rows of C channels.
bool ChannelRows(const at::Tensor& t) {
  return (t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast)) || (t.dim() == 2 && t.is_contiguous());
}

// t in x's dtype and row layout.
at::Tensor LikeRows(const at::Tensor& t, const at::Tensor& x) {
  at::Tensor out = t.to(x.scalar_type());
  return ChannelRows(out) ? out : out.contiguous(x.dim() == 4 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
}

bool IsFloat(const c10::optional<at::Tensor>& t) { return !t.has_value() || !t->defined() || t->scalar_type() == at::kFloat; }

// x is [N, C, H, W] channels-last or [N, C], float32 or bf16, with at least two values per
// channel; the parameters and running statistics (where given) are float32; a residual has x's
// shape.
bool Supports(const at::Tensor& x, const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias,
              const c10::optional<at::Tensor>& runningMean, const c10::optional<at::Tensor>& runningVar,
              const c10::optional<at::Tensor>& residual) {
  return CONVKIT_X86_64 && x.device().is_cpu() && ChannelRows(x) && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) &&
         x.numel() > x.size(1) && IsFloat(weight) && IsFloat(bias) && IsFloat(runningMean) && IsFloat(runningVar) &&
         (!residual.has_value() || (residual->device().is_cpu() && residual->sizes() == x.sizes()));
}

struct Forward {
  at::Tensor y, mean, invstd;
};

// The op's name in a profile: convkit::batch_norm, with _add and _relu as fused, then _backward.
const char* OpName(bool relu, bool residual, bool backward) {
  static const char* const names[2][2][2] = {
      {{"convkit::batch_norm", "convkit::batch_norm_backward"}, {"convkit::batch_norm_relu", "convkit::batch_norm_relu_backward"}},
      {{"convkit::batch_norm_add", "convkit::batch_norm_add_backward"},
       {"convkit::batch_norm_add_relu", "convkit::batch_norm_add_relu_backward"}}};
  return names[residual][relu][backward];
}

Forward RunForward(const at::Tensor& x, const at::Tensor& residual, const std::vector<float>& w, const std::vector<float>& b,
                   const c10::optional<at::Tensor>& runningMean, const c10::optional<at::Tensor>& runningVar, double momentum, double eps,
                   bool relu) {
  RECORD_FUNCTION(OpName(relu, residual.defined(), false), std::vector<c10::IValue>());
  std::vector<float> unbiasedVar;
  auto [y, mean, invstd] = x.scalar_type() == at::kFloat ? ForwardT<float>(x, residual, w, b, eps, relu, unbiasedVar)
                                                         : ForwardT<c10::BFloat16>(x, residual, w, b, eps, relu, unbiasedVar);
  at::NoGradGuard noGrad;
  if (runningMean.has_value()) runningMean->mul_(1 - momentum).add_(mean, momentum);
  if (runningVar.has_value()) runningVar->mul_(1 - momentum).add_(FloatTensor(unbiasedVar), momentum);
  return {y, mean, invstd};
}

struct BatchNormFn : public torch::autograd::Function<BatchNormFn> {
  // Absent tensors come as nullopt: custom functions in libtorch 1.13 take no undefined tensors.
  // The residual is in x's dtype and layout.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const c10::optional<at::Tensor>& weight,
                            const c10::optional<at::Tensor>& bias, const c10::optional<at::Tensor>& residual,
                            const c10::optional<at::Tensor>& runningMean, const c10::optional<at::Tensor>& runningVar, double momentum,
                            double eps, bool relu) {
    int64_t C = x.size(1);
    std::vector<float> w = PerChannel(weight, C, 1.f), b = PerChannel(bias, C, 0.f);
    Forward f = RunForward(x, residual.value_or(at::Tensor()), w, b, runningMean, runningVar, momentum, eps, relu);
    at::Tensor none;
    ctx->save_for_backward({x, weight.value_or(none), bias.value_or(none), f.mean, f.invstd, residual.has_value() ? f.y : none});
    ctx->saved_data["relu"] = relu;
    return f.y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    bool relu = ctx->saved_data["relu"].toBool();
    variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    bool residual = saved[5].defined();
    RECORD_FUNCTION(OpName(relu, residual, true), std::vector<c10::IValue>());
    int64_t C = x.size(1);
    std::vector<float> w = PerChannel(saved[1], C, 1.f), b = PerChannel(saved[2], C, 0.f);
    at::Tensor g = LikeRows(grads[0], x);
    Grads d = x.scalar_type() == at::kFloat ? BackwardT<float>(x, g, saved[5], saved[3], saved[4], w, b, relu)
                                            : BackwardT<c10::BFloat16>(x, g, saved[5], saved[3], saved[4], w, b, relu);
    at::Tensor none;
    return {d.dx, saved[1].defined() ? d.dw : none, saved[2].defined() ? d.db : none, d.dresidual, none, none, none, none, none};
  }
};

c10::optional<at::Tensor> Given(const c10::optional<at::Tensor>& t) { return t.has_value() && t->defined() ? t : c10::nullopt; }

}  // namespace

at::Tensor BatchNorm(const at::Tensor& x, const c10::optional<at::Tensor>& runningMean, const c10::optional<at::Tensor>& runningVar,
                     const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias, bool training, double momentum,
                     double eps, bool relu, const c10::optional<at::Tensor>& residualArg) {
  c10::optional<at::Tensor> residual = Given(residualArg);
  if (!training || !Supports(x, weight, bias, runningMean, runningVar, residual)) {
    at::Tensor y = at::batch_norm(x, weight, bias, runningMean, runningVar, training, momentum, eps, true);
    if (residual.has_value()) y = y + *residual;
    return relu ? at::relu(y) : y;
  }
  if (residual.has_value()) residual = LikeRows(*residual, x);
  auto needsGrad = [](const c10::optional<at::Tensor>& t) { return t.has_value() && t->requires_grad(); };
  if (at::GradMode::is_enabled() && (x.requires_grad() || needsGrad(weight) || needsGrad(bias) || needsGrad(residual))) {
    return BatchNormFn::apply(x, Given(weight), Given(bias), residual, Given(runningMean), Given(runningVar), momentum, eps, relu);
  }
  int64_t C = x.size(1);
  return RunForward(x, residual.value_or(at::Tensor()), PerChannel(weight, C, 1.f), PerChannel(bias, C, 0.f), Given(runningMean),
                    Given(runningVar), momentum, eps, relu)
      .y;
}

}  // namespace convkit
