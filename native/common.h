// The thin native layer: a table of tensors that JS refers to by integer ids, argument
// decoding, and translation of every libtorch error into a JavaScript exception. All logic
// lives in TypeScript.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>
#include <torch/version.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

// True when the libtorch being built against is at least major.minor (2.4 < 2.10 < 3.0).
#define CONVKIT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// Kernels written for x86-64 instruction sets (target_clones, __builtin_cpu_supports) exist
// only there; elsewhere the ops fall back to libtorch's own paths.
#if defined(__x86_64__) || defined(_M_X64)
#define CONVKIT_X86_64 1
#else
#define CONVKIT_X86_64 0
#endif

namespace convkit {

// Every tensor JS can see lives in a slot of this table, one table per Node environment. JS
// holds an id, a plain number: the slot's index in the low 24 bits and the slot's generation
// above them. Disposing frees the tensor at once and bumps the generation, so a stale id (a
// disposed tensor) never matches the slot's next tenant; a slot whose generation runs out is
// retired rather than reused. A JS FinalizationRegistry frees the slots of tensors that are
// never disposed (src/engine/lifetime.ts).
class HandleTable {
 public:
  static constexpr int kIndexBits = 24;
  static constexpr uint32_t kMaxIndex = (1u << kIndexBits) - 1;
  static constexpr uint32_t kMaxGeneration = (1u << 29) - 1;  // ids stay below 2^53
  static constexpr double kDisposed = -1;  // what a JS Tensor holds after dispose()

  explicit HandleTable(napi_env env) : env_(env) {}
  ~HandleTable();
  static HandleTable& Of(napi_env env);

  // The id of a new slot holding t.
  double Add(at::Tensor t);
  // The tensor with this id, or nullptr when the id is not live (disposed, or not an id).
  const at::Tensor* Find(double id) const {
    uint32_t index, gen;
    if (!Decode(id, index, gen) || index >= slots_.size()) return nullptr;
    const Slot& s = slots_[index];
    return s.gen == gen && s.tensor.defined() ? &s.tensor : nullptr;
  }
  // Frees the slot; false when the id was not live. `collected`: freed by the JS backstop.
  bool Release(double id, bool collected);
  // Whether id has the form of an id (live or stale), for error messages.
  static bool IsId(double id) {
    uint32_t index, gen;
    return id == kDisposed || Decode(id, index, gen);
  }

  struct Counts {
    uint64_t live, created, disposed, collected;
  };
  Counts counts() const { return {live_, created_, disposed_, collected_}; }

 private:
  struct Slot {
    at::Tensor tensor;
    uint32_t gen = 0;
    int64_t bytes = 0;
  };
  static bool Decode(double id, uint32_t& index, uint32_t& gen) {
    if (!(id >= 0 && id < 9007199254740992.0)) return false;
    uint64_t u = static_cast<uint64_t>(id);
    if (static_cast<double>(u) != id) return false;
    index = static_cast<uint32_t>(u & kMaxIndex);
    gen = static_cast<uint32_t>(u >> kIndexBits);
    return true;
  }
  void Report(int64_t delta);

  napi_env env_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  int64_t liveBytes_ = 0, reportedBytes_ = 0;
  uint64_t live_ = 0, created_ = 0, disposed_ = 0, collected_ = 0;
};

// Positional arguments of an op, decoded with the argument's position in every error. Records
// which arguments were tensors, so an error can describe them without guessing.
class Args {
 public:
  static constexpr size_t kMaxArgs = 12;
  Args(napi_env env, const napi_value* argv, size_t argc, const char* op, HandleTable& table)
      : env_(env), argv_(argv), argc_(argc), op_(op), table_(table) {}
  Napi::Env env() const { return Napi::Env(env_); }
  HandleTable& table() const { return table_; }
  const char* op() const { return op_; }
  size_t size() const { return argc_; }
  bool missing(size_t i) const;

  const at::Tensor& t(size_t i) {
    double id;
    if (i >= argc_ || napi_get_value_double(env_, argv_[i], &id) != napi_ok) fail(i, "a tensor");
    tensorArgs_ |= 1u << i;
    const at::Tensor* found = table_.Find(id);
    return found ? *found : lookup(id, i, nullptr);
  }
  c10::optional<at::Tensor> optT(size_t i);
  std::vector<at::Tensor> tensors(size_t i);
  std::vector<int64_t> ints(size_t i) const;
  std::vector<double> f64s(size_t i) const;
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
  Napi::Value raw(size_t i) const { return i < argc_ ? Napi::Value(env_, argv_[i]) : env().Undefined(); }

  [[noreturn]] void fail(size_t i, const std::string& expected) const;
  // The tensor arguments read so far ("[2, 3] float32, [4] int64"), for error messages.
  std::string describe() const;

 private:
  const at::Tensor& lookup(double id, size_t i, const char* element);

  napi_env env_;
  const napi_value* argv_;
  size_t argc_;
  const char* op_;
  HandleTable& table_;
  uint32_t tensorArgs_ = 0;  // bit i: argument i was read as a tensor or a list of them
};

// Conversion of op results to JS values: tensors become ids (undefined tensors null).
Napi::Value ToJS(Args& a, const at::Tensor& t);
Napi::Value ToJS(Args& a, const std::vector<at::Tensor>& ts);
template <typename... T>
Napi::Value ToJS(Args& a, const std::tuple<T...>& tup) {
  Napi::Array arr = Napi::Array::New(a.env(), sizeof...(T));
  uint32_t i = 0;
  std::apply([&](const auto&... x) { ((arr[i++] = ToJS(a, x)), ...); }, tup);
  return arr;
}
inline Napi::Value ToJS(Args&, Napi::Value v) { return v; }
// A number; integers that fit 32 bits take V8's cheaper small-integer path.
Napi::Value ToJS(Args& a, double v);
inline Napi::Value ToJS(Args& a, int64_t v) { return ToJS(a, static_cast<double>(v)); }
inline Napi::Value ToJS(Args& a, bool v) { return Napi::Boolean::New(a.env(), v); }

std::string Describe(const at::Tensor& t);
const char* DtypeName(at::ScalarType t);

// Throws err as a JS exception; `op(tensor args): what` names the op and its inputs.
void ThrowOpError(Args& a, const char* what);

// An op registered on the addon: its name, its environment's table and its body.
template <typename F>
struct Op {
  const char* name;
  HandleTable* table;
  F body;
};

// The N-API callback of every op: decodes the arguments straight from N-API (no per-call
// allocation) and turns any C++ exception into a JS Error that names the op, the input shapes
// and libtorch's own message. Nothing thrown by libtorch can abort the process.
template <typename F>
napi_value Call(napi_env env, napi_callback_info info) {
  napi_value argv[Args::kMaxArgs];
  size_t argc = Args::kMaxArgs;
  void* data = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  auto* op = static_cast<Op<F>*>(data);
  Args args(env, argv, argc < Args::kMaxArgs ? argc : Args::kMaxArgs, op->name, *op->table);
  try {
    if constexpr (std::is_void_v<decltype(op->body(args))>) {
      op->body(args);
      return nullptr;  // undefined
    } else {
      return ToJS(args, op->body(args));
    }
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  } catch (const c10::Error& e) {
    ThrowOpError(args, e.what_without_backtrace());
  } catch (const std::exception& e) {
    ThrowOpError(args, e.what());
  }
  return nullptr;
}

// Registers `name` on exports as an op.
template <typename F>
void Def(Napi::Env env, Napi::Object exports, const char* name, F body) {
  auto* op = new Op<F>{name, &HandleTable::Of(env), std::move(body)};  // lives as long as the addon
  napi_value fn;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, Call<F>, op, &fn));
  exports.Set(name, Napi::Value(env, fn));
}

void InitOps(Napi::Env env, Napi::Object exports);
void InitNNOps(Napi::Env env, Napi::Object exports);
void InitAllocator(Napi::Env env, Napi::Object exports);
// libtorch's warnings and log messages kept off the terminal (logging.cc)
void InitLogging(Napi::Env env, Napi::Object exports);
void InitFastGrads(Napi::Env env, Napi::Object exports);
void InitFusedOptim(Napi::Env env, Napi::Object exports);
// c10d: process groups, collectives, DDP's Reducer (distributed.cc)
void InitDistributed(Napi::Env env, Napi::Object exports);
// x, whose gradient is handed back channels-last when x is channels-last (fast_grads.cc)
at::Tensor KeepGradLayout(const at::Tensor& x);
// at::adaptive_avg_pool2d, with a gradient that keeps x's layout (to 1x1: an expanded view) (fast_grads.cc)
at::Tensor AdaptiveAvgPool2d(const at::Tensor& x, at::IntArrayRef size);

// at::batch_norm (+ residual, then max(y, 0) with relu), on own kernels that take the addition
// and the ReLU in their passes in training mode for channels-last maps (batch_norm.cc)
at::Tensor BatchNorm(const at::Tensor& x, const c10::optional<at::Tensor>& runningMean, const c10::optional<at::Tensor>& runningVar,
                     const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias, bool training, double momentum,
                     double eps, bool relu, const c10::optional<at::Tensor>& residual);
// at::conv2d, with faster weight gradients where libtorch's are slow (conv2d.cc)
void InitConv2d(Napi::Env env, Napi::Object exports);
// eval-mode convolution + norm + residual + activation as one oneDNN primitive (fused_conv.cc;
// real where oneDNN's headers are, CONVKIT_DNNL, and otherwise ops that say they are missing)
void InitFusedConv(Napi::Env env, Napi::Object exports);
// depthwise_wgrad.cc
bool DepthwiseWeightGradSupports(const at::Tensor& x);
at::Tensor DepthwiseWeightGrad(const at::Tensor& gradOut, const at::Tensor& input, at::IntArrayRef wsize,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation);
at::Tensor Conv2d(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride,
                  at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);
at::Tensor Conv2d(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b, at::IntArrayRef stride,
                  c10::string_view padding, at::IntArrayRef dilation, int64_t groups);

}  // namespace convkit
