// Tensor ops: views, arithmetic, comparisons, reductions, linear algebra, joining and indexing,
// and the in-place and multi-tensor updates that optimizers need. One line per op.

#include "common.h"

namespace convkit {

// at::var/at::std take the correction as optional<int64_t> in libtorch 1.x and optional<Scalar>
// in 2.x. A bare integer would bind to the (bool unbiased) overload and turn correction 2 into 1.
#if CONVKIT_TORCH_AT_LEAST(2, 0)
using Correction = c10::optional<at::Scalar>;
#else
using Correction = c10::optional<int64_t>;
#endif

static at::OptionalIntArrayRef OptDims(const c10::optional<std::vector<int64_t>>& d) {
  if (!d) return c10::nullopt;
  return at::IntArrayRef(*d);
}

static void InitViews(Napi::Env env, Napi::Object e) {
  Def(env, e, "reshape", [](Args& a) { return a.t(0).reshape(a.ints(1)); });
  Def(env, e, "view", [](Args& a) { return a.t(0).view(a.ints(1)); });
  Def(env, e, "permute", [](Args& a) { return a.t(0).permute(a.ints(1)); });
  Def(env, e, "transpose", [](Args& a) { return a.t(0).transpose(a.i64(1), a.i64(2)); });
  Def(env, e, "squeeze", [](Args& a) { return a.missing(1) ? a.t(0).squeeze() : a.t(0).squeeze(a.i64(1)); });
  Def(env, e, "unsqueeze", [](Args& a) { return a.t(0).unsqueeze(a.i64(1)); });
  Def(env, e, "expand", [](Args& a) { return a.t(0).expand(a.ints(1)); });
  Def(env, e, "narrow", [](Args& a) { return a.t(0).narrow(a.i64(1), a.i64(2), a.i64(3)); });
  Def(env, e, "slice", [](Args& a) {
    return KeepGradLayout(a.t(0)).slice(a.i64(1), a.optI64(2), a.optI64(3), a.missing(4) ? 1 : a.i64(4));
  });
  Def(env, e, "select", [](Args& a) { return a.t(0).select(a.i64(1), a.i64(2)); });
  Def(env, e, "flatten", [](Args& a) { return a.t(0).flatten(a.i64(1), a.i64(2)); });
  Def(env, e, "unflatten", [](Args& a) { return a.t(0).unflatten(a.i64(1), a.ints(2)); });
  Def(env, e, "asStrided", [](Args& a) { return a.t(0).as_strided(a.ints(1), a.ints(2), a.i64(3)); });
  Def(env, e, "flip", [](Args& a) { return a.t(0).flip(a.ints(1)); });
  Def(env, e, "roll", [](Args& a) { return a.t(0).roll(a.ints(1), a.ints(2)); });
  Def(env, e, "repeat", [](Args& a) { return a.t(0).repeat(a.ints(1)); });
  Def(env, e, "tril", [](Args& a) { return a.t(0).tril(a.i64(1)); });
  Def(env, e, "triu", [](Args& a) { return a.t(0).triu(a.i64(1)); });
}

static void InitPointwise(Napi::Env env, Napi::Object e) {
  Def(env, e, "add", [](Args& a) { return at::add(a.t(0), a.t(1), a.missing(2) ? 1 : a.scalar(2)); });
  Def(env, e, "sub", [](Args& a) { return at::sub(a.t(0), a.t(1), a.missing(2) ? 1 : a.scalar(2)); });
  Def(env, e, "mul", [](Args& a) { return at::mul(a.t(0), a.t(1)); });
  Def(env, e, "div", [](Args& a) { return at::div(a.t(0), a.t(1)); });
  Def(env, e, "pow", [](Args& a) { return at::pow(a.t(0), a.t(1)); });
  Def(env, e, "maximum", [](Args& a) { return at::maximum(a.t(0), a.t(1)); });
  Def(env, e, "minimum", [](Args& a) { return at::minimum(a.t(0), a.t(1)); });
  Def(env, e, "addScalar", [](Args& a) { return at::add(a.t(0), a.scalar(1)); });
  Def(env, e, "subScalar", [](Args& a) { return at::sub(a.t(0), a.scalar(1)); });
  Def(env, e, "rsubScalar", [](Args& a) { return at::rsub(a.t(0), a.scalar(1)); });
  Def(env, e, "mulScalar", [](Args& a) { return at::mul(a.t(0), a.scalar(1)); });
  Def(env, e, "divScalar", [](Args& a) { return at::div(a.t(0), a.scalar(1)); });
  Def(env, e, "powScalar", [](Args& a) { return at::pow(a.t(0), a.scalar(1)); });
  Def(env, e, "neg", [](Args& a) { return at::neg(a.t(0)); });
  Def(env, e, "abs", [](Args& a) { return at::abs(a.t(0)); });
  Def(env, e, "exp", [](Args& a) { return at::exp(a.t(0)); });
  Def(env, e, "log", [](Args& a) { return at::log(a.t(0)); });
  Def(env, e, "sqrt", [](Args& a) { return at::sqrt(a.t(0)); });
  Def(env, e, "rsqrt", [](Args& a) { return at::rsqrt(a.t(0)); });
  Def(env, e, "sign", [](Args& a) { return at::sign(a.t(0)); });
  Def(env, e, "floor", [](Args& a) { return at::floor(a.t(0)); });
  Def(env, e, "ceil", [](Args& a) { return at::ceil(a.t(0)); });
  Def(env, e, "round", [](Args& a) { return at::round(a.t(0)); });
  Def(env, e, "sin", [](Args& a) { return at::sin(a.t(0)); });
  Def(env, e, "cos", [](Args& a) { return at::cos(a.t(0)); });
  Def(env, e, "reciprocal", [](Args& a) { return at::reciprocal(a.t(0)); });
  Def(env, e, "erfinv", [](Args& a) { return at::erfinv(a.t(0)); });
  Def(env, e, "clamp", [](Args& a) {
    c10::optional<at::Scalar> lo, hi;
    if (!a.missing(1)) lo = a.scalar(1);
    if (!a.missing(2)) hi = a.scalar(2);
    return at::clamp(a.t(0), lo, hi);
  });
  Def(env, e, "where", [](Args& a) { return at::where(a.t(0), a.t(1), a.t(2)); });
  Def(env, e, "lerp", [](Args& a) { return at::lerp(a.t(0), a.t(1), a.scalar(2)); });
  Def(env, e, "logicalNot", [](Args& a) { return at::logical_not(a.t(0)); });
  Def(env, e, "logicalAnd", [](Args& a) { return at::logical_and(a.t(0), a.t(1)); });
  Def(env, e, "logicalOr", [](Args& a) { return at::logical_or(a.t(0), a.t(1)); });
  Def(env, e, "isnan", [](Args& a) { return at::isnan(a.t(0)); });
  Def(env, e, "isfinite", [](Args& a) { return at::isfinite(a.t(0)); });
  Def(env, e, "maskedFill", [](Args& a) { return a.t(0).masked_fill(a.t(1), a.scalar(2)); });
}

static void InitCompare(Napi::Env env, Napi::Object e) {
  Def(env, e, "eq", [](Args& a) { return at::eq(a.t(0), a.t(1)); });
  Def(env, e, "ne", [](Args& a) { return at::ne(a.t(0), a.t(1)); });
  Def(env, e, "lt", [](Args& a) { return at::lt(a.t(0), a.t(1)); });
  Def(env, e, "le", [](Args& a) { return at::le(a.t(0), a.t(1)); });
  Def(env, e, "gt", [](Args& a) { return at::gt(a.t(0), a.t(1)); });
  Def(env, e, "ge", [](Args& a) { return at::ge(a.t(0), a.t(1)); });
  Def(env, e, "eqScalar", [](Args& a) { return at::eq(a.t(0), a.scalar(1)); });
  Def(env, e, "neScalar", [](Args& a) { return at::ne(a.t(0), a.scalar(1)); });
  Def(env, e, "ltScalar", [](Args& a) { return at::lt(a.t(0), a.scalar(1)); });
  Def(env, e, "leScalar", [](Args& a) { return at::le(a.t(0), a.scalar(1)); });
  Def(env, e, "gtScalar", [](Args& a) { return at::gt(a.t(0), a.scalar(1)); });
  Def(env, e, "geScalar", [](Args& a) { return at::ge(a.t(0), a.scalar(1)); });
  Def(env, e, "allclose", [](Args& a) { return at::allclose(a.t(0), a.t(1), a.f64(2), a.f64(3)); });
  Def(env, e, "equal", [](Args& a) { return at::equal(a.t(0), a.t(1)); });
}

// Reductions take (tensor, dims | undefined, keepdim).
static void InitReductions(Napi::Env env, Napi::Object e) {
  Def(env, e, "sum", [](Args& a) {
    auto d = a.optInts(1);
    return d ? at::sum(a.t(0), *d, a.b(2), a.optDtype(3)) : at::sum(a.t(0), a.optDtype(3));
  });
  Def(env, e, "mean", [](Args& a) {
    auto d = a.optInts(1);
    return d ? at::mean(a.t(0), *d, a.b(2)) : at::mean(a.t(0));
  });
  Def(env, e, "amax", [](Args& a) {
    auto d = a.optInts(1);
    return at::amax(a.t(0), d ? *d : std::vector<int64_t>{}, a.b(2));
  });
  Def(env, e, "amin", [](Args& a) {
    auto d = a.optInts(1);
    return at::amin(a.t(0), d ? *d : std::vector<int64_t>{}, a.b(2));
  });
  Def(env, e, "maxDim", [](Args& a) { return at::max(a.t(0), a.i64(1), a.b(2)); });
  Def(env, e, "minDim", [](Args& a) { return at::min(a.t(0), a.i64(1), a.b(2)); });
  Def(env, e, "argmax", [](Args& a) { return at::argmax(a.t(0), a.optI64(1), !a.missing(2) && a.b(2)); });
  Def(env, e, "argmin", [](Args& a) { return at::argmin(a.t(0), a.optI64(1), !a.missing(2) && a.b(2)); });
  Def(env, e, "var", [](Args& a) {
    auto d = a.optInts(1);
    return at::var(a.t(0), OptDims(d), Correction(a.i64(3)), a.b(2));
  });
  Def(env, e, "std", [](Args& a) {
    auto d = a.optInts(1);
    return at::std(a.t(0), OptDims(d), Correction(a.i64(3)), a.b(2));
  });
  Def(env, e, "prod", [](Args& a) { return a.missing(1) ? at::prod(a.t(0)) : at::prod(a.t(0), a.i64(1), a.b(2)); });
  Def(env, e, "norm", [](Args& a) {
    auto d = a.optInts(2);
    return d ? at::norm(a.t(0), a.scalar(1), *d, a.b(3)) : at::norm(a.t(0), a.scalar(1));
  });
  Def(env, e, "logsumexp", [](Args& a) { return at::logsumexp(a.t(0), a.ints(1), a.b(2)); });
  Def(env, e, "cumsum", [](Args& a) { return at::cumsum(a.t(0), a.i64(1)); });
  Def(env, e, "all", [](Args& a) { return at::all(a.t(0)); });
  Def(env, e, "any", [](Args& a) { return at::any(a.t(0)); });
  Def(env, e, "bincount", [](Args& a) {
    return at::bincount(a.t(0), a.optT(1), a.missing(2) ? 0 : a.i64(2));
  });
}

static void InitLinalgAndJoin(Napi::Env env, Napi::Object e) {
  Def(env, e, "matmul", [](Args& a) { return at::matmul(a.t(0), a.t(1)); });
  Def(env, e, "mm", [](Args& a) { return at::mm(a.t(0), a.t(1)); });
  Def(env, e, "bmm", [](Args& a) { return at::bmm(a.t(0), a.t(1)); });
  Def(env, e, "baddbmm", [](Args& a) { return at::baddbmm(a.t(0), a.t(1), a.t(2), a.scalar(3), a.scalar(4)); });
  Def(env, e, "linear", [](Args& a) { return at::linear(a.t(0), a.t(1), a.optT(2)); });
  Def(env, e, "cat", [](Args& a) { return at::cat(a.tensors(0), a.i64(1)); });
  Def(env, e, "stack", [](Args& a) { return at::stack(a.tensors(0), a.i64(1)); });
  Def(env, e, "split", [](Args& a) { return at::split(a.t(0), a.i64(1), a.i64(2)); });
  Def(env, e, "splitWithSizes", [](Args& a) { return at::split_with_sizes(a.t(0), a.ints(1), a.i64(2)); });
  Def(env, e, "chunk", [](Args& a) { return at::chunk(a.t(0), a.i64(1), a.i64(2)); });
  Def(env, e, "indexSelect", [](Args& a) { return at::index_select(a.t(0), a.i64(1), a.t(2)); });
  Def(env, e, "gather", [](Args& a) { return at::gather(a.t(0), a.i64(1), a.t(2)); });
  Def(env, e, "scatter", [](Args& a) { return at::scatter(a.t(0), a.i64(1), a.t(2), a.t(3)); });
  Def(env, e, "scatterAdd", [](Args& a) { return at::scatter_add(a.t(0), a.i64(1), a.t(2), a.t(3)); });
  Def(env, e, "maskedSelect", [](Args& a) { return at::masked_select(a.t(0), a.t(1)); });
  Def(env, e, "nonzero", [](Args& a) { return at::nonzero(a.t(0)); });
  Def(env, e, "topk", [](Args& a) { return at::topk(a.t(0), a.i64(1), a.i64(2), a.b(3), a.b(4)); });
  Def(env, e, "sort", [](Args& a) { return at::sort(a.t(0), a.i64(1), a.b(2)); });
  Def(env, e, "argsort", [](Args& a) { return at::argsort(a.t(0), a.i64(1), a.b(2)); });
  Def(env, e, "oneHot", [](Args& a) { return at::one_hot(a.t(0), a.i64(1)); });
}

// A JS array of numbers as libtorch scalars (one per tensor of a multi-tensor op).
static std::vector<at::Scalar> ScalarList(const Args& a, size_t i) {
  std::vector<double> d = a.f64s(i);
  return std::vector<at::Scalar>(d.begin(), d.end());
}

// In-place updates (optimizers, initialisers) and their multi-tensor forms, which do a whole
// parameter list in one call the way torch.optim's foreach path does.
static void InitInPlace(Napi::Env env, Napi::Object e) {
  Def(env, e, "add_", [](Args& a) { a.t(0).add_(a.t(1), a.missing(2) ? 1 : a.scalar(2)); });
  Def(env, e, "addScalar_", [](Args& a) { a.t(0).add_(a.scalar(1)); });
  Def(env, e, "sub_", [](Args& a) { a.t(0).sub_(a.t(1), a.missing(2) ? 1 : a.scalar(2)); });
  Def(env, e, "mul_", [](Args& a) { a.t(0).mul_(a.t(1)); });
  Def(env, e, "mulScalar_", [](Args& a) { a.t(0).mul_(a.scalar(1)); });
  Def(env, e, "div_", [](Args& a) { a.t(0).div_(a.t(1)); });
  Def(env, e, "divScalar_", [](Args& a) { a.t(0).div_(a.scalar(1)); });
  Def(env, e, "addcmul_", [](Args& a) { a.t(0).addcmul_(a.t(1), a.t(2), a.scalar(3)); });
  Def(env, e, "addcdiv_", [](Args& a) { a.t(0).addcdiv_(a.t(1), a.t(2), a.scalar(3)); });
  Def(env, e, "lerp_", [](Args& a) { a.t(0).lerp_(a.t(1), a.scalar(2)); });
  Def(env, e, "copy_", [](Args& a) { a.t(0).copy_(a.t(1)); });
  Def(env, e, "zero_", [](Args& a) { a.t(0).zero_(); });
  Def(env, e, "fill_", [](Args& a) { a.t(0).fill_(a.scalar(1)); });
  Def(env, e, "clamp_", [](Args& a) {
    c10::optional<at::Scalar> lo, hi;
    if (!a.missing(1)) lo = a.scalar(1);
    if (!a.missing(2)) hi = a.scalar(2);
    a.t(0).clamp_(lo, hi);
  });
  Def(env, e, "sqrt_", [](Args& a) { a.t(0).sqrt_(); });
  Def(env, e, "erfinv_", [](Args& a) { a.t(0).erfinv_(); });
  Def(env, e, "maskedFill_", [](Args& a) { a.t(0).masked_fill_(a.t(1), a.scalar(2)); });

  Def(env, e, "foreachAdd_", [](Args& a) { at::_foreach_add_(a.tensors(0), a.tensors(1), a.scalar(2)); });
  Def(env, e, "foreachAddScalar_", [](Args& a) { at::_foreach_add_(a.tensors(0), a.scalar(1)); });
  Def(env, e, "foreachMulScalar_", [](Args& a) { at::_foreach_mul_(a.tensors(0), a.scalar(1)); });
  Def(env, e, "foreachAddcmul_", [](Args& a) { at::_foreach_addcmul_(a.tensors(0), a.tensors(1), a.tensors(2), a.scalar(3)); });
  Def(env, e, "foreachAddcdiv_", [](Args& a) { at::_foreach_addcdiv_(a.tensors(0), a.tensors(1), a.tensors(2), a.scalar(3)); });
  Def(env, e, "foreachSqrt", [](Args& a) { return at::_foreach_sqrt(a.tensors(0)); });
  Def(env, e, "foreachZero_", [](Args& a) { at::_foreach_zero_(a.tensors(0)); });
  Def(env, e, "foreachNorm", [](Args& a) { return at::_foreach_norm(a.tensors(0), a.scalar(1)); });
  // for the optimizers in src/train/optim: out-of-place forms (the grads must not change),
  // per-tensor scalar lists (per-parameter bias corrections), and loops libtorch 1.13 lacks
  Def(env, e, "foreachAdd", [](Args& a) { return at::_foreach_add(a.tensors(0), a.tensors(1), a.scalar(2)); });
  Def(env, e, "foreachAddScalar", [](Args& a) { return at::_foreach_add(a.tensors(0), a.scalar(1)); });
  Def(env, e, "foreachSub_", [](Args& a) { at::_foreach_sub_(a.tensors(0), a.tensors(1), a.scalar(2)); });
  Def(env, e, "foreachSub", [](Args& a) { return at::_foreach_sub(a.tensors(0), a.tensors(1), a.scalar(2)); });
  Def(env, e, "foreachMul", [](Args& a) { return at::_foreach_mul(a.tensors(0), a.tensors(1)); });
  Def(env, e, "foreachMulTensor_", [](Args& a) {
    const at::Tensor& s = a.t(1);
    for (auto& t : a.tensors(0)) t.mul_(s.to(t.device()));
  });
  Def(env, e, "foreachDivScalarList_", [](Args& a) {
    auto s = ScalarList(a, 1);
    at::_foreach_div_(a.tensors(0), at::ArrayRef<at::Scalar>(s));
  });
  Def(env, e, "foreachAddcmul", [](Args& a) { return at::_foreach_addcmul(a.tensors(0), a.tensors(1), a.tensors(2), a.scalar(3)); });
  Def(env, e, "foreachAddcdivScalarList_", [](Args& a) {
    auto s = ScalarList(a, 3);
    at::_foreach_addcdiv_(a.tensors(0), a.tensors(1), a.tensors(2), at::ArrayRef<at::Scalar>(s));
  });
  Def(env, e, "foreachMaximum_", [](Args& a) { at::_foreach_maximum_(a.tensors(0), a.tensors(1)); });
  Def(env, e, "foreachNeg", [](Args& a) { return at::_foreach_neg(a.tensors(0)); });
  Def(env, e, "foreachSqrt_", [](Args& a) { at::_foreach_sqrt_(a.tensors(0)); });
  Def(env, e, "foreachCopy_", [](Args& a) {
    auto dst = a.tensors(0);
    auto src = a.tensors(1);
    if (dst.size() != src.size()) a.fail(1, "a list as long as the first (" + std::to_string(dst.size()) + ")");
    for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i]);
  });
  Def(env, e, "foreachClamp_", [](Args& a) {
    c10::optional<at::Scalar> lo, hi;
    if (!a.missing(1)) lo = a.scalar(1);
    if (!a.missing(2)) hi = a.scalar(2);
    for (auto& t : a.tensors(0)) t.clamp_(lo, hi);
  });
}

void InitOps(Napi::Env env, Napi::Object exports) {
  InitViews(env, exports);
  InitPointwise(env, exports);
  InitCompare(env, exports);
  InitReductions(env, exports);
  InitLinalgAndJoin(env, exports);
  InitInPlace(env, exports);
}

}  // namespace convkit
