// The thin native layer: a handle around at::Tensor, argument decoding, and translation of
// every libtorch error into a JavaScript exception. All logic lives in TypeScript.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace convkit {

// A JS object that owns one reference to an at::Tensor. dispose() drops the reference early;
// the finalizer drops it when V8 collects the object. External memory is reported to V8 so
// the collector feels native allocations as pressure (the backstop, not the mechanism).
class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::FunctionReference* constructor;
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object Wrap(Napi::Env env, at::Tensor t);
  static bool Is(Napi::Env env, const Napi::Value& v);

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  at::Tensor tensor;
  int64_t reported = 0;

  void Release(Napi::Env env);
};

// Positional arguments of an op, decoded with the argument's position in every error.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}
  Napi::Env env() const { return info_.Env(); }
  size_t size() const { return info_.Length(); }
  bool missing(size_t i) const { return i >= info_.Length() || info_[i].IsUndefined() || info_[i].IsNull(); }

  const at::Tensor& t(size_t i) const;
  c10::optional<at::Tensor> optT(size_t i) const;
  std::vector<at::Tensor> tensors(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  c10::optional<std::vector<int64_t>> optInts(size_t i) const;
  int64_t i64(size_t i) const;
  c10::optional<int64_t> optI64(size_t i) const;
  double f64(size_t i) const;
  c10::optional<double> optF64(size_t i) const;
  bool b(size_t i) const;
  at::Scalar scalar(size_t i) const;
  at::ScalarType dtype(size_t i) const;
  c10::optional<at::ScalarType> optDtype(size_t i) const;
  std::string str(size_t i) const;
  Napi::Value raw(size_t i) const { return info_[i]; }

  [[noreturn]] void fail(size_t i, const std::string& expected) const;

 private:
  const Napi::CallbackInfo& info_;
  const char* op_;
};

// Conversion of op results to JS values.
Napi::Value ToJS(Napi::Env env, const at::Tensor& t);
Napi::Value ToJS(Napi::Env env, const std::vector<at::Tensor>& ts);
template <typename... T>
Napi::Value ToJS(Napi::Env env, const std::tuple<T...>& tup) {
  Napi::Array arr = Napi::Array::New(env, sizeof...(T));
  uint32_t i = 0;
  std::apply([&](const auto&... x) { ((arr[i++] = ToJS(env, x)), ...); }, tup);
  return arr;
}
inline Napi::Value ToJS(Napi::Env, Napi::Value v) { return v; }
inline Napi::Value ToJS(Napi::Env env, double v) { return Napi::Number::New(env, v); }
inline Napi::Value ToJS(Napi::Env env, int64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }
inline Napi::Value ToJS(Napi::Env env, bool v) { return Napi::Boolean::New(env, v); }

// Describes the tensor arguments of a call ("[2, 3] float32, [4] int64") for error messages.
std::string DescribeArgs(const Napi::CallbackInfo& info);
const char* DtypeName(at::ScalarType t);

// Runs one op and turns any C++ exception into a JS Error that names the op, the input
// shapes and libtorch's own message. Nothing thrown by libtorch can abort the process.
template <typename F>
Napi::Value Guarded(const Napi::CallbackInfo& info, const char* op, F&& body) {
  Napi::Env env = info.Env();
  try {
    Args args(info, op);
    if constexpr (std::is_void_v<decltype(body(args))>) {
      body(args);
      return env.Undefined();
    } else {
      return ToJS(env, body(args));
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, std::string(op) + "(" + DescribeArgs(info) + "): " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string(op) + "(" + DescribeArgs(info) + "): " + e.what());
  }
}

// Registers `name` on exports as a guarded op.
template <typename F>
void Def(Napi::Env env, Napi::Object exports, const char* name, F body) {
  auto* fn = new F(std::move(body));  // lives as long as the addon
  exports.Set(name, Napi::Function::New(
                        env,
                        [name, fn](const Napi::CallbackInfo& info) -> Napi::Value { return Guarded(info, name, *fn); },
                        name));
}

void InitOps(Napi::Env env, Napi::Object exports);
void InitNNOps(Napi::Env env, Napi::Object exports);
void InitAllocator(Napi::Env env, Napi::Object exports);
void InitFastGrads(Napi::Env env, Napi::Object exports);
// x, whose gradient is handed back channels-last when x is channels-last (fast_grads.cc)
at::Tensor KeepGradLayout(const at::Tensor& x);

// at::conv2d, with faster weight gradients where libtorch's are slow (conv2d.cc)
void InitConv2d(Napi::Env env, Napi::Object exports);
// depthwise_wgrad.cc
bool DepthwiseWeightGradSupports(const at::Tensor& x);
at::Tensor DepthwiseWeightGrad(const at::Tensor& gradOut, const at::Tensor& input, at::IntArrayRef wsize,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation);
at::Tensor Conv2d(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride,
                  at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);
at::Tensor Conv2d(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride,
                  c10::string_view padding, at::IntArrayRef dilation, int64_t groups);

}  // namespace convkit
