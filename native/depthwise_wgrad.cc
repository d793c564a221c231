// The weight gradient of a depthwise convolution (groups = channels, one filter per channel) on a
// channels-last input, as a direct loop.
//
// libtorch 1.13's oneDNN takes 8-10 ms (float32) and 36-40 ms (bf16) for the 5x5 depthwise
// weight gradients of EfficientNet-B0 at 64 px, batch 128, where the forward pass takes 1-2 ms:
// half of a bf16 training step went there. Per channel c and tap (kh, kw) the gradient is
//   dW[c, kh, kw] = sum over (n, oh, ow) of g[n, oh, ow, c] * x[n, oh*s + kh*d - p, ow*s + kw*d - p, c],
// and channels-last puts c innermost in both, so the loop over c is a contiguous multiply-add
// that the compiler vectorises (one clone per instruction set, picked at load time). Each
// thread sums its share of the batch in float32; the shares are added at the end.
//
// Only on x86-64, where it was measured: elsewhere DepthwiseWeightGradSupports says no and
// conv2d keeps libtorch's own weight gradient.
#include <ATen/Parallel.h>

#include <vector>

#include <ATen/record_function.h>

#include "vec.h"

namespace convkit {
namespace {

struct Shape {
  int64_t channels, height, width, outHeight, outWidth, kernelH, kernelW;
  int64_t strideH, strideW, padH, padW, dilationH, dilationW;
};

// Adds the gradient of images [begin, end) into acc[(kh * kernelW + kw) * channels + c].
template <typename T>
inline __attribute__((always_inline)) void Accumulate(const T* x, const T* g, float* acc, float* grow, const Shape& s,
                                                      int64_t begin, int64_t end) {
  const int64_t c = s.channels;
  for (int64_t n = begin; n < end; n++) {
    for (int64_t oh = 0; oh < s.outHeight; oh++) {
      for (int64_t ow = 0; ow < s.outWidth; ow++) {
        const T* gp = g + ((n * s.outHeight + oh) * s.outWidth + ow) * c;
        for (int64_t i = 0; i < c; i++) grow[i] = Load(gp[i]);
        for (int64_t kh = 0; kh < s.kernelH; kh++) {
          int64_t ih = oh * s.strideH - s.padH + kh * s.dilationH;
          if (ih < 0 || ih >= s.height) continue;
          for (int64_t kw = 0; kw < s.kernelW; kw++) {
            int64_t iw = ow * s.strideW - s.padW + kw * s.dilationW;
            if (iw < 0 || iw >= s.width) continue;
            const T* xp = x + ((n * s.height + ih) * s.width + iw) * c;
            float* a = acc + (kh * s.kernelW + kw) * c;
            for (int64_t i = 0; i < c; i++) a[i] += grow[i] * Load(xp[i]);
          }
        }
      }
    }
  }
}

CONVKIT_CLONES void AccumulateF32(const float* x, const float* g, float* acc, float* grow, const Shape& s, int64_t begin,
                                  int64_t end) {
  Accumulate(x, g, acc, grow, s, begin, end);
}

CONVKIT_CLONES void AccumulateBf16(const c10::BFloat16* x, const c10::BFloat16* g, float* acc, float* grow, const Shape& s,
                                   int64_t begin, int64_t end) {
  Accumulate(x, g, acc, grow, s, begin, end);
}

}  // namespace

bool DepthwiseWeightGradSupports(const at::Tensor& x) {
  return CONVKIT_X86_64 && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16);
}

at::Tensor DepthwiseWeightGrad(const at::Tensor& gradOut, const at::Tensor& input, at::IntArrayRef wsize,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  RECORD_FUNCTION("convkit::depthwise_weight_grad", std::vector<c10::IValue>());
  at::Tensor x = input.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor g = gradOut.to(x.scalar_type()).contiguous(at::MemoryFormat::ChannelsLast);
  Shape s{x.size(1), x.size(2), x.size(3), g.size(2), g.size(3), wsize[2], wsize[3],
          stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]};
  const int64_t taps = s.kernelH * s.kernelW * s.channels;
  const int threads = at::get_num_threads();
  std::vector<float> acc(static_cast<size_t>(threads) * taps, 0.f);
  std::vector<float> rows(static_cast<size_t>(threads) * s.channels);
  at::parallel_for(0, x.size(0), 1, [&](int64_t begin, int64_t end) {
    int t = at::get_thread_num();
    float* a = acc.data() + t * taps;
    float* grow = rows.data() + t * s.channels;
    if (x.scalar_type() == at::kFloat) {
      AccumulateF32(x.data_ptr<float>(), g.data_ptr<float>(), a, grow, s, begin, end);
    } else {
      AccumulateBf16(x.data_ptr<c10::BFloat16>(), g.data_ptr<c10::BFloat16>(), a, grow, s, begin, end);
    }
  });
  for (int t = 1; t < threads; t++) {
    for (int64_t i = 0; i < taps; i++) acc[i] += acc[t * taps + i];
  }
  // acc is laid out [kh, kw, c]; the weight is [c, 1, kh, kw]
  at::Tensor sum = at::from_blob(acc.data(), {s.kernelH, s.kernelW, s.channels}, at::kFloat);
  return sum.permute({2, 0, 1}).unsqueeze(1).to(x.scalar_type()).clone(at::MemoryFormat::ChannelsLast);
}

}  // namespace convkit
