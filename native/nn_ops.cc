// The functional core of neural networks: convolution, normalisation, pooling, resizing,
// activations, dropout, embedding, recurrent cells and losses.
#include "common.h"

namespace convkit {

// padding is either a list of integers or the strings 'same' / 'valid', as in torch.nn.functional.
template <typename Fn>
static at::Tensor ConvPadded(Args& a, size_t padArg, Fn conv) {
  if (!a.missing(padArg) && a.raw(padArg).IsString()) {
    std::string p = a.str(padArg);
    if (p != "same" && p != "valid") a.fail(padArg, "'same', 'valid' or a list of integers");
    return conv(c10::string_view(p));
  }
  return conv(a.ints(padArg));
}

static void InitConvNormPool(Napi::Env env, Napi::Object e) {
  // conv2d(x, w, b?, stride, padding, dilation, groups); same argument order for conv1d
  Def(env, e, "conv2d", [](Args& a) {
    return ConvPadded(a, 4, [&](auto pad) {
      return Conv2d(a.t(0), a.t(1), a.optT(2), a.ints(3), pad, a.ints(5), a.i64(6));
    });
  });
  Def(env, e, "conv1d", [](Args& a) {
    return ConvPadded(a, 4, [&](auto pad) {
      return at::conv1d(a.t(0), a.t(1), a.optT(2), a.ints(3), pad, a.ints(5), a.i64(6));
    });
  });
  // convTranspose2d(x, w, b?, stride, padding, outputPadding, groups, dilation)
  Def(env, e, "convTranspose2d", [](Args& a) {
    return at::conv_transpose2d(a.t(0), a.t(1), a.optT(2), a.ints(3), a.ints(4), a.ints(5), a.i64(6), a.ints(7));
  });
  // batchNorm(x, runningMean?, runningVar?, weight?, bias?, training, momentum, eps, relu?, residual?)
  Def(env, e, "batchNorm", [](Args& a) {
    return BatchNorm(a.t(0), a.optT(1), a.optT(2), a.optT(3), a.optT(4), a.b(5), a.f64(6), a.f64(7), !a.missing(8) && a.b(8), a.optT(9));
  });
  Def(env, e, "layerNorm", [](Args& a) { return at::layer_norm(a.t(0), a.ints(1), a.optT(2), a.optT(3), a.f64(4)); });
  Def(env, e, "groupNorm", [](Args& a) { return at::group_norm(a.t(0), a.i64(1), a.optT(2), a.optT(3), a.f64(4)); });
  // maxPool2d(x, kernel, stride, padding, dilation, ceilMode)
  Def(env, e, "maxPool2d", [](Args& a) {
    return at::max_pool2d(a.t(0), a.ints(1), a.ints(2), a.ints(3), a.ints(4), a.b(5));
  });
  // avgPool2d(x, kernel, stride, padding, ceilMode, countIncludePad)
  Def(env, e, "avgPool2d", [](Args& a) {
    return at::avg_pool2d(a.t(0), a.ints(1), a.ints(2), a.ints(3), a.b(4), a.b(5));
  });
  Def(env, e, "adaptiveAvgPool2d", [](Args& a) { return AdaptiveAvgPool2d(a.t(0), a.ints(1)); });
  Def(env, e, "adaptiveMaxPool2d", [](Args& a) { return std::get<0>(at::adaptive_max_pool2d(a.t(0), a.ints(1))); });
  Def(env, e, "pad", [](Args& a) {
    std::string mode = a.missing(2) ? "constant" : a.str(2);
    if (mode == "constant") return at::constant_pad_nd(a.t(0), a.ints(1), a.missing(3) ? 0 : a.scalar(3));
    // reflect/replicate pad the last 1, 2 or 3 dims, chosen by the padding's length as in F.pad
    // (the 2-d kernel given 2 numbers would read past them).
    if (mode == "reflect" || mode == "replicate") {
      auto p = a.ints(1);
      bool refl = mode == "reflect";
      if (p.size() == 2) return refl ? at::reflection_pad1d(a.t(0), p) : at::replication_pad1d(a.t(0), p);
      if (p.size() == 4) return refl ? at::reflection_pad2d(a.t(0), p) : at::replication_pad2d(a.t(0), p);
      if (p.size() == 6) return refl ? at::reflection_pad3d(a.t(0), p) : at::replication_pad3d(a.t(0), p);
      a.fail(1, "2, 4 or 6 padding sizes for mode '" + mode + "'");
    }
    a.fail(2, "'constant', 'reflect' or 'replicate'");
  });
  // interpolate(x, size, mode, alignCorners, antialias)
  Def(env, e, "interpolate", [](Args& a) {
    std::string mode = a.str(2);
    auto size = a.ints(1);
    bool ac = a.b(3), aa = a.b(4);
    if (mode == "nearest") return at::upsample_nearest2d(a.t(0), size, c10::nullopt, c10::nullopt);
    if (mode == "bilinear") {
      return aa ? at::_upsample_bilinear2d_aa(a.t(0), size, ac, c10::nullopt, c10::nullopt)
                : at::upsample_bilinear2d(a.t(0), size, ac, c10::nullopt, c10::nullopt);
    }
    if (mode == "bicubic") {
      return aa ? at::_upsample_bicubic2d_aa(a.t(0), size, ac, c10::nullopt, c10::nullopt)
                : at::upsample_bicubic2d(a.t(0), size, ac, c10::nullopt, c10::nullopt);
    }
    a.fail(2, "'nearest', 'bilinear' or 'bicubic'");
  });
  // gridSample(x, grid, mode 0 bilinear | 1 nearest | 2 bicubic, padding 0 zeros | 1 border | 2 reflection, alignCorners)
  Def(env, e, "gridSample", [](Args& a) { return at::grid_sampler(a.t(0), a.t(1), a.i64(2), a.i64(3), a.b(4)); });
  // affineGrid(theta [N, 2, 3], size [N, C, H, W], alignCorners)
  Def(env, e, "affineGrid", [](Args& a) { return at::affine_grid_generator(a.t(0), a.ints(1), a.b(2)); });
}

static void InitActivations(Napi::Env env, Napi::Object e) {
  Def(env, e, "relu", [](Args& a) { return at::relu(a.t(0)); });
  Def(env, e, "relu6", [](Args& a) { return at::hardtanh(a.t(0), 0, 6); });
  Def(env, e, "hardtanh", [](Args& a) { return at::hardtanh(a.t(0), a.scalar(1), a.scalar(2)); });
  Def(env, e, "leakyRelu", [](Args& a) { return at::leaky_relu(a.t(0), a.scalar(1)); });
  Def(env, e, "elu", [](Args& a) { return at::elu(a.t(0), a.scalar(1)); });
  Def(env, e, "sigmoid", [](Args& a) { return at::sigmoid(a.t(0)); });
  Def(env, e, "tanh", [](Args& a) { return at::tanh(a.t(0)); });
  Def(env, e, "hardswish", [](Args& a) { return at::hardswish(a.t(0)); });
  Def(env, e, "hardsigmoid", [](Args& a) { return at::hardsigmoid(a.t(0)); });
  Def(env, e, "softplus", [](Args& a) { return at::softplus(a.t(0), a.scalar(1), a.scalar(2)); });
  Def(env, e, "mish", [](Args& a) { return at::mish(a.t(0)); });
  Def(env, e, "softmax", [](Args& a) { return at::softmax(a.t(0), a.i64(1), a.optDtype(2)); });
  Def(env, e, "logSoftmax", [](Args& a) { return at::log_softmax(a.t(0), a.i64(1), a.optDtype(2)); });
  Def(env, e, "relu_", [](Args& a) { at::Tensor t = a.t(0); return at::relu_(t); });
  Def(env, e, "silu_", [](Args& a) { at::Tensor t = a.t(0); return at::silu_(t); });
}

static void InitRegularisers(Napi::Env env, Napi::Object e) {
  Def(env, e, "dropout", [](Args& a) { return at::dropout(a.t(0), a.f64(1), a.b(2)); });
  Def(env, e, "featureDropout", [](Args& a) { return at::feature_dropout(a.t(0), a.f64(1), a.b(2)); });
  // embedding(weight, indices, paddingIdx)
  Def(env, e, "embedding", [](Args& a) { return at::embedding(a.t(0), a.t(1), a.missing(2) ? -1 : a.i64(2)); });
  // Quantization-aware training: values rounded onto the integer grid and back, with libtorch's
  // straight-through gradient (1 inside [qmin, qmax], 0 where clamped).
  // fakeQuantPerTensor(x, scale, zeroPoint, qmin, qmax)
  Def(env, e, "fakeQuantPerTensor", [](Args& a) {
    return at::fake_quantize_per_tensor_affine(a.t(0), a.f64(1), a.i64(2), a.i64(3), a.i64(4));
  });
  // fakeQuantPerChannel(w, scale[C], axis, qmin, qmax): symmetric (zero point 0) per channel
  Def(env, e, "fakeQuantPerChannel", [](Args& a) {
    at::Tensor scale = a.t(1).to(at::kFloat).contiguous();
    at::Tensor zeroPoint = at::zeros({scale.numel()}, scale.options().dtype(at::kInt));
    return at::fake_quantize_per_channel_affine(a.t(0), scale, zeroPoint, a.i64(2), a.i64(3), a.i64(4));
  });
}

// Recurrent layers over PyTorch's flat weight list (w_ih, w_hh, b_ih, b_hh per layer and
// direction, in that order), so names and gate order are PyTorch's.
// lstm(x, [h0, c0], weights, hasBiases, numLayers, dropout, train, bidirectional, batchFirst)
static void InitRecurrent(Napi::Env env, Napi::Object e) {
  Def(env, e, "lstm", [](Args& a) {
    return at::lstm(a.t(0), a.tensors(1), a.tensors(2), a.b(3), a.i64(4), a.f64(5), a.b(6), a.b(7), a.b(8));
  });
  Def(env, e, "gru", [](Args& a) {
    return at::gru(a.t(0), a.t(1), a.tensors(2), a.b(3), a.i64(4), a.f64(5), a.b(6), a.b(7), a.b(8));
  });
  Def(env, e, "rnnTanh", [](Args& a) {
    return at::rnn_tanh(a.t(0), a.t(1), a.tensors(2), a.b(3), a.i64(4), a.f64(5), a.b(6), a.b(7), a.b(8));
  });
  Def(env, e, "rnnRelu", [](Args& a) {
    return at::rnn_relu(a.t(0), a.t(1), a.tensors(2), a.b(3), a.i64(4), a.f64(5), a.b(6), a.b(7), a.b(8));
  });
}

// Losses take a reduction code: 0 none, 1 mean, 2 sum (at::Reduction).
static void InitLosses(Napi::Env env, Napi::Object e) {
  // crossEntropy(logits, target, weight?, reduction, ignoreIndex, labelSmoothing)
  Def(env, e, "crossEntropy", [](Args& a) {
    return at::cross_entropy_loss(a.t(0), a.t(1), a.optT(2), a.i64(3), a.i64(4), a.f64(5));
  });
  Def(env, e, "nllLoss", [](Args& a) { return at::nll_loss_nd(a.t(0), a.t(1), a.optT(2), a.i64(3), a.i64(4)); });
  Def(env, e, "mseLoss", [](Args& a) { return at::mse_loss(a.t(0), a.t(1), a.i64(2)); });
  Def(env, e, "l1Loss", [](Args& a) { return at::l1_loss(a.t(0), a.t(1), a.i64(2)); });
  Def(env, e, "smoothL1Loss", [](Args& a) { return at::smooth_l1_loss(a.t(0), a.t(1), a.i64(2), a.f64(3)); });
  // bceWithLogits(logits, target, weight?, posWeight?, reduction)
  Def(env, e, "bceWithLogits", [](Args& a) {
    return at::binary_cross_entropy_with_logits(a.t(0), a.t(1), a.optT(2), a.optT(3), a.i64(4));
  });
  Def(env, e, "klDiv", [](Args& a) { return at::kl_div(a.t(0), a.t(1), a.i64(2), a.b(3)); });
}

void InitNNOps(Napi::Env env, Napi::Object exports) {
  InitConvNormPool(env, exports);
  InitActivations(env, exports);
  InitRegularisers(env, exports);
  InitRecurrent(env, exports);
  InitLosses(env, exports);
}

}  // namespace convkit
