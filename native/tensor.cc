// Tensor handles, argument decoding, creation and read-back, autograd, grad mode, random state,
// threads, devices and autocast.
#include <torch/torch.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common.h"

namespace convkit {

// ---------------------------------------------------------------------------------------------
// The handle table

// V8 learns of the native memory behind live tensors (so that it collects the JS objects of
// tensors nobody disposed, whose memory only the backstop frees), in steps of this size: one
// report per 1-element op would cost more than the op.
constexpr int64_t kReportStep = int64_t(1) << 20;

HandleTable& HandleTable::Of(napi_env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) == napi_ok && data) return *static_cast<HandleTable*>(data);
  auto* table = new HandleTable(env);
  auto free = [](napi_env, void* d, void*) { delete static_cast<HandleTable*>(d); };
  if (napi_set_instance_data(env, table, free, nullptr) != napi_ok) {
    delete table;
    throw Napi::Error::New(Napi::Env(env), "convkit: could not attach the tensor table to this Node environment");
  }
  return *table;
}

HandleTable::~HandleTable() = default;  // the environment is going away: no report to V8

double HandleTable::Add(at::Tensor t) {
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    if (slots_.size() > kMaxIndex) throw std::runtime_error("more than 16.7 million live tensors: dispose some (tidy, dispose)");
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[index];
  s.bytes = t.device().is_cpu() ? static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size()) : 0;
  s.tensor = std::move(t);
  ++live_;
  ++created_;
  Report(s.bytes);
  return static_cast<double>((static_cast<uint64_t>(s.gen) << kIndexBits) | index);
}

bool HandleTable::Release(double id, bool collected) {
  uint32_t index, gen;
  if (!Decode(id, index, gen) || index >= slots_.size()) return false;
  Slot& s = slots_[index];
  if (s.gen != gen || !s.tensor.defined()) return false;
  int64_t bytes = s.bytes;
  s.tensor = at::Tensor();  // frees the memory now, unless a view or autograd still holds it
  s.bytes = 0;
  --live_;
  ++(collected ? collected_ : disposed_);
  if (s.gen < kMaxGeneration) {
    ++s.gen;
    free_.push_back(index);
  }
  Report(-bytes);
  return true;
}

void HandleTable::Report(int64_t delta) {
  liveBytes_ += delta;
  int64_t pending = liveBytes_ - reportedBytes_;
  if (pending < kReportStep && pending > -kReportStep) return;
  int64_t ignored;
  napi_adjust_external_memory(env_, pending, &ignored);
  reportedBytes_ = liveBytes_;
}

const char* DtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

// "[2, 3] float32"; at most 16 dims are listed, so that a message stays short.
std::string Describe(const at::Tensor& t) {
  if (!t.defined()) return "<disposed>";
  constexpr int64_t kMaxDims = 16;
  std::ostringstream s;
  s << "[";
  for (int64_t d = 0; d < t.dim() && d < kMaxDims; ++d) s << (d ? ", " : "") << t.size(d);
  if (t.dim() > kMaxDims) s << ", ... (" << t.dim() << " dims)";
  s << "] " << DtypeName(t.scalar_type());
  if (!t.device().is_cpu()) s << " " << t.device();
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// Args

bool Args::missing(size_t i) const {
  if (i >= argc_) return true;
  napi_valuetype type;
  return napi_typeof(env_, argv_[i], &type) != napi_ok || type == napi_undefined || type == napi_null;
}

static std::string Kind(const Napi::Value& v) {
  return v.IsNull() ? "null" : v.IsArray() ? "an array" : v.IsNumber() ? "a number" : v.IsBoolean() ? "a boolean"
      : v.IsString() ? "a string" : v.IsObject() ? "an object" : "undefined";
}

void Args::fail(size_t i, const std::string& expected) const {
  std::string got = i < argc_ ? Kind(raw(i)) : "undefined";
  throw Napi::TypeError::New(env(), std::string(op_) + ": argument " + std::to_string(i) + " must be " + expected +
                                        ", got " + got);
}

std::string Args::describe() const {
  std::string out;
  for (size_t i = 0; i < argc_; ++i) {
    if (!(tensorArgs_ & (1u << i))) continue;
    auto one = [&](Napi::Value v) {
      const at::Tensor* t = v.IsNumber() ? table_.Find(v.As<Napi::Number>().DoubleValue()) : nullptr;
      return t ? Describe(*t) : std::string("<disposed>");
    };
    Napi::Value v = raw(i);
    std::string part;
    if (v.IsArray()) {
      Napi::Array a = v.As<Napi::Array>();
      part = "[";
      for (uint32_t k = 0; k < a.Length() && k < 8; ++k) part += (k ? ", " : "") + one(a[k]);
      part += a.Length() > 8 ? ", ...]" : "]";
    } else {
      part = one(v);
    }
    out += (out.empty() ? "" : ", ") + part;
  }
  return out;
}

void ThrowOpError(Args& a, const char* what) {
  std::string message = std::string(a.op()) + "(" + a.describe() + "): " + what;
  Napi::Error::New(a.env(), message).ThrowAsJavaScriptException();
}

// element: nullptr for argument i itself, else " element k of" wording
const at::Tensor& Args::lookup(double id, size_t i, const char* element) {
  const at::Tensor* t = table_.Find(id);
  if (t) return *t;
  std::string where = std::string(element ? element : "") + "argument " + std::to_string(i);
  if (!HandleTable::IsId(id)) fail(i, element ? "an array of tensors" : "a tensor");
  throw Napi::Error::New(env(), std::string(op_) + ": " + where + " is a disposed tensor");
}

c10::optional<at::Tensor> Args::optT(size_t i) {
  if (missing(i)) return c10::nullopt;
  return t(i);
}

std::vector<at::Tensor> Args::tensors(size_t i) {
  bool isArray = false;
  if (i < argc_) napi_is_array(env_, argv_[i], &isArray);
  if (!isArray) fail(i, "an array of tensors");
  tensorArgs_ |= 1u << i;
  Napi::Array a(env_, argv_[i]);
  uint32_t n = a.Length();
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (uint32_t k = 0; k < n; ++k) {
    Napi::Value v = a[k];
    double id;
    if (napi_get_value_double(env_, v, &id) != napi_ok) {
      fail(i, "an array of tensors (element " + std::to_string(k) + " is not)");
    }
    const at::Tensor* found = table_.Find(id);
    out.push_back(found ? *found : lookup(id, i, ("element " + std::to_string(k) + " of ").c_str()));
  }
  return out;
}

// Range-checked first: casting NaN, an infinity or a value beyond int64 to int64_t is undefined.
static bool IsInteger(double d) {
  return std::isfinite(d) && std::trunc(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0;
}

std::vector<double> Args::f64s(size_t i) const {
  if (!raw(i).IsArray()) fail(i, "an array of numbers");
  Napi::Array a = raw(i).As<Napi::Array>();
  std::vector<double> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a[k];
    if (!v.IsNumber()) fail(i, "an array of numbers (element " + std::to_string(k) + " is not)");
    out[k] = v.As<Napi::Number>().DoubleValue();
  }
  return out;
}

std::vector<int64_t> Args::ints(size_t i) const {
  if (raw(i).IsNumber()) return {i64(i)};
  if (!raw(i).IsArray()) fail(i, "an array of integers");
  Napi::Array a = raw(i).As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value v = a[k];
    if (!v.IsNumber() || !IsInteger(v.As<Napi::Number>().DoubleValue())) {
      std::ostringstream what;
      if (v.IsNumber()) what << v.As<Napi::Number>().DoubleValue(); else what << Kind(v);
      throw Napi::TypeError::New(env(), std::string(op_) + ": argument " + std::to_string(i) +
                                            " must be an array of integers, but element " + std::to_string(k) + " is " + what.str());
    }
    out[k] = v.As<Napi::Number>().Int64Value();
  }
  return out;
}

c10::optional<std::vector<int64_t>> Args::optInts(size_t i) const {
  if (missing(i)) return c10::nullopt;
  return ints(i);
}

int64_t Args::i64(size_t i) const {
  double d;
  if (i >= argc_ || napi_get_value_double(env_, argv_[i], &d) != napi_ok || !IsInteger(d)) fail(i, "an integer");
  return static_cast<int64_t>(d);
}

c10::optional<int64_t> Args::optI64(size_t i) const {
  if (missing(i)) return c10::nullopt;
  return i64(i);
}

double Args::f64(size_t i) const {
  double d;
  if (i >= argc_ || napi_get_value_double(env_, argv_[i], &d) != napi_ok) fail(i, "a number");
  return d;
}

c10::optional<double> Args::optF64(size_t i) const {
  if (missing(i)) return c10::nullopt;
  return f64(i);
}

bool Args::b(size_t i) const {
  bool v;
  if (i >= argc_ || napi_get_value_bool(env_, argv_[i], &v) != napi_ok) fail(i, "a boolean");
  return v;
}

at::Scalar Args::scalar(size_t i) const {
  bool flag;
  if (i < argc_ && napi_get_value_bool(env_, argv_[i], &flag) == napi_ok) return at::Scalar(flag);
  double d = f64(i);
  if (IsInteger(d) && std::abs(d) < 9007199254740992.0) return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}

// dtypes travel as c10::ScalarType codes, which are stable across libtorch versions.
at::ScalarType Args::dtype(size_t i) const {
  int64_t code = i64(i);
  switch (code) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 11: case 15:
      return static_cast<at::ScalarType>(code);
    default: fail(i, "a dtype code");
  }
}

c10::optional<at::ScalarType> Args::optDtype(size_t i) const {
  if (missing(i)) return c10::nullopt;
  return dtype(i);
}

std::string Args::str(size_t i) const {
  if (!raw(i).IsString()) fail(i, "a string");
  return raw(i).As<Napi::String>().Utf8Value();
}

Napi::Value ToJS(Args& a, double v) {
  napi_value out;
  bool small = v >= INT32_MIN && v <= INT32_MAX && static_cast<double>(static_cast<int32_t>(v)) == v && !std::signbit(v);
  napi_status status = small
                           ? napi_create_int32(a.env(), static_cast<int32_t>(v), &out)
                           : napi_create_double(a.env(), v, &out);
  NAPI_THROW_IF_FAILED(a.env(), status, Napi::Value());
  return Napi::Value(a.env(), out);
}

Napi::Value ToJS(Args& a, const at::Tensor& t) {
  if (!t.defined()) return a.env().Null();
  return ToJS(a, a.table().Add(t));
}

Napi::Value ToJS(Args& a, const std::vector<at::Tensor>& ts) {
  Napi::Array arr = Napi::Array::New(a.env(), ts.size());
  for (uint32_t i = 0; i < ts.size(); ++i) arr[i] = ToJS(a, ts[i]);
  return arr;
}

// ---------------------------------------------------------------------------------------------
// Devices, creation and read-back

static at::Device ParseDevice(const Args& a, size_t i) {
  if (a.missing(i)) return at::Device(at::kCPU);
  std::string s = a.str(i);
  at::Device d(s);  // throws c10::Error with libtorch's wording for malformed strings
  if (d.is_cuda() && !torch::cuda::is_available()) {
    throw std::runtime_error("device '" + s +
                             "' was asked for, but this libtorch has no CUDA device available (build convkit "
                             "against a CUDA libtorch with LIBTORCH=... on a machine with a GPU)");
  }
  return d;
}

static at::TensorOptions Opts(const Args& a, size_t dtypeArg, size_t deviceArg) {
  return at::TensorOptions().dtype(a.dtype(dtypeArg)).device(ParseDevice(a, deviceArg));
}

static Napi::Value Shape(const at::Tensor& t, Napi::Env env) {
  Napi::Array arr = Napi::Array::New(env, t.dim());
  for (int64_t d = 0; d < t.dim(); ++d) arr[static_cast<uint32_t>(d)] = Napi::Number::New(env, t.size(d));
  return arr;
}

// Copies bytes from a JS typed array into a new tensor of the given shape and dtype.
static at::Tensor FromBuffer(Args& a) {
  Napi::Value v = a.raw(0);
  if (!v.IsTypedArray()) a.fail(0, "a typed array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  auto shape = a.ints(1);
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(a.dtype(2)));
  size_t need = t.numel() * t.element_size();
  if (ta.ByteLength() != need) {
    throw std::runtime_error("the data holds " + std::to_string(ta.ByteLength()) + " bytes but shape and dtype need " +
                             std::to_string(need));
  }
  if (need) std::memcpy(t.data_ptr(), static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), need);
  return t;
}

static Napi::Value ToBuffer(Args& a) {
  at::Tensor t = a.t(0).detach().to(at::kCPU).contiguous();
  size_t n = t.numel() * t.element_size();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(a.env(), n);
  if (n) std::memcpy(buf.Data(), t.data_ptr(), n);
  return buf;
}

// An ArrayBuffer that aliases the memory of a contiguous CPU tensor, so file readers can fill
// tensors in place (one copy of a large checkpoint, not two). The buffer keeps the storage alive.
static Napi::Value Alias(Args& a) {
  const at::Tensor& t = a.t(0);
  if (!t.device().is_cpu() || !t.is_contiguous()) throw std::runtime_error("alias needs a contiguous CPU tensor");
  auto* keep = new at::Tensor(t);
  size_t n = t.numel() * t.element_size();
  if (n == 0) {
    delete keep;
    return Napi::ArrayBuffer::New(a.env(), 0);
  }
  return Napi::ArrayBuffer::New(a.env(), t.data_ptr(), n, [](Napi::Env, void*, at::Tensor* k) { delete k; }, keep);
}

static Napi::Value Item(Args& a) {
  const at::Tensor& t = a.t(0);
  if (t.numel() != 1) throw std::runtime_error("item needs a tensor with one element, got " + std::to_string(t.numel()));
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(a.env(), s.toBool());
  return Napi::Number::New(a.env(), s.isIntegral(false) ? static_cast<double>(s.toLong()) : s.toDouble());
}

static void ManualSeed(uint64_t seed) {
  at::manual_seed(seed);
}

static std::string Version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

// Any stride is valid for a dim of size 1, and at::contiguous keeps the one it finds: a batch of
// 1-channel images in NCHW already counts as channels-last, with NCHW strides, and a convolution
// reading it (its weight as ambiguous) writes NCHW, so the stem of a channels-last model runs
// NCHW and hands mixed layouts to the layers after it. Canonical strides make the layout explicit.
static at::Tensor ChannelsLast(const at::Tensor& t) {
  at::Tensor c = t.contiguous(at::MemoryFormat::ChannelsLast);
  if (c.dim() != 4) return c;
  int64_t channels = c.size(1), width = c.size(3);
  std::vector<int64_t> canonical{channels * c.size(2) * width, 1, width * channels, channels};
  return c.strides() == at::IntArrayRef(canonical) ? c : c.as_strided(c.sizes(), canonical, c.storage_offset());
}

static void SetAutocast(bool enabled, at::ScalarType dtype) {
#if CONVKIT_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(at::kCPU, enabled);
  at::autocast::set_autocast_dtype(at::kCPU, dtype);
#else
  at::autocast::set_cpu_enabled(enabled);
  at::autocast::set_autocast_cpu_dtype(dtype);
#endif
  if (!enabled) at::autocast::clear_cache();
}

// One profiling session at a time; destroying the recorder writes the Chrome trace.
struct Profile {
  std::ofstream file;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> recorder;
};
static std::unique_ptr<Profile> g_profile;

static void StartProfile(const std::string& path) {
  if (g_profile) throw std::runtime_error("profile: a profile is already being recorded");
  auto p = std::make_unique<Profile>();
  p->file.open(path);
  if (!p->file) throw std::runtime_error("profile: cannot write the trace file " + path);
  p->recorder = std::make_unique<torch::autograd::profiler::RecordProfile>(p->file);
  g_profile = std::move(p);
}

static void StopProfile() {
  if (!g_profile) throw std::runtime_error("profile: no profile is being recorded");
  g_profile->recorder.reset();
  g_profile.reset();
}

static void InitTensor(Napi::Env env, Napi::Object exports) {
  // lifetime: dispose(id) frees the tensor now; collect(id) is the JS backstop's release of a
  // tensor nobody disposed. Both ignore ids that are no longer live.
  Def(env, exports, "dispose", [](Args& a) { a.table().Release(a.f64(0), /*collected=*/false); });
  Def(env, exports, "collect", [](Args& a) { a.table().Release(a.f64(0), /*collected=*/true); });
  Def(env, exports, "isDisposed", [](Args& a) { return a.table().Find(a.f64(0)) == nullptr; });
  Def(env, exports, "handleCounts", [](Args& a) -> Napi::Value {
    HandleTable::Counts c = a.table().counts();
    Napi::Object o = Napi::Object::New(a.env());
    o.Set("live", static_cast<double>(c.live));
    o.Set("created", static_cast<double>(c.created));
    o.Set("disposed", static_cast<double>(c.disposed));
    o.Set("collected", static_cast<double>(c.collected));
    return o;
  });

  // metadata
  Def(env, exports, "shape", [](Args& a) -> Napi::Value { return Shape(a.t(0), a.env()); });
  Def(env, exports, "strides", [](Args& a) -> Napi::Value {
    const at::Tensor& t = a.t(0);
    Napi::Array arr = Napi::Array::New(a.env(), t.dim());
    for (int64_t d = 0; d < t.dim(); ++d) arr[static_cast<uint32_t>(d)] = Napi::Number::New(a.env(), t.stride(d));
    return arr;
  });
  Def(env, exports, "dtype", [](Args& a) { return static_cast<int64_t>(a.t(0).scalar_type()); });
  Def(env, exports, "device", [](Args& a) -> Napi::Value { return Napi::String::New(a.env(), a.t(0).device().str()); });
  Def(env, exports, "numel", [](Args& a) { return a.t(0).numel(); });
  Def(env, exports, "isContiguous", [](Args& a) { return a.t(0).is_contiguous(); });
  Def(env, exports, "isChannelsLast", [](Args& a) {
    return a.t(0).dim() == 4 && a.t(0).is_contiguous(at::MemoryFormat::ChannelsLast);
  });
  Def(env, exports, "sharesStorage", [](Args& a) { return a.t(0).is_alias_of(a.t(1)); });
  Def(env, exports, "item", [](Args& a) { return Item(a); });

  // creation
  Def(env, exports, "fromBuffer", [](Args& a) { return FromBuffer(a); });
  Def(env, exports, "toBuffer", [](Args& a) { return ToBuffer(a); });
  Def(env, exports, "alias", [](Args& a) { return Alias(a); });
  Def(env, exports, "empty", [](Args& a) { return at::empty(a.ints(0), Opts(a, 1, 2)); });
  Def(env, exports, "zeros", [](Args& a) { return at::zeros(a.ints(0), Opts(a, 1, 2)); });
  Def(env, exports, "ones", [](Args& a) { return at::ones(a.ints(0), Opts(a, 1, 2)); });
  Def(env, exports, "full", [](Args& a) { return at::full(a.ints(0), a.scalar(1), Opts(a, 2, 3)); });
  Def(env, exports, "arange", [](Args& a) { return at::arange(a.scalar(0), a.scalar(1), a.scalar(2), Opts(a, 3, 4)); });
  Def(env, exports, "linspace", [](Args& a) { return at::linspace(a.scalar(0), a.scalar(1), a.i64(2), Opts(a, 3, 4)); });
  Def(env, exports, "eye", [](Args& a) { return at::eye(a.i64(0), Opts(a, 1, 2)); });
  Def(env, exports, "rand", [](Args& a) { return at::rand(a.ints(0), Opts(a, 1, 2)); });
  Def(env, exports, "randn", [](Args& a) { return at::randn(a.ints(0), Opts(a, 1, 2)); });
  Def(env, exports, "randint", [](Args& a) { return at::randint(a.i64(0), a.i64(1), a.ints(2), Opts(a, 3, 4)); });
  Def(env, exports, "randperm", [](Args& a) { return at::randperm(a.i64(0), Opts(a, 1, 2)); });
  Def(env, exports, "bernoulli", [](Args& a) {
    return a.missing(1) ? at::bernoulli(a.t(0)) : at::bernoulli(a.t(0), a.f64(1));
  });
  Def(env, exports, "multinomial", [](Args& a) { return at::multinomial(a.t(0), a.i64(1), a.b(2)); });
  Def(env, exports, "normal_", [](Args& a) { a.t(0).normal_(a.f64(1), a.f64(2)); });
  Def(env, exports, "uniform_", [](Args& a) { a.t(0).uniform_(a.f64(1), a.f64(2)); });
  Def(env, exports, "manualSeed", [](Args& a) { ManualSeed(static_cast<uint64_t>(a.i64(0))); });
  // Seeds only the CPU generator (torch.default_generator.manual_seed), leaving CUDA generators alone.
  Def(env, exports, "manualSeedCpu", [](Args& a) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(static_cast<uint64_t>(a.i64(0)));
  });
  Def(env, exports, "getRngState", [](Args& a) { return at::detail::getDefaultCPUGenerator().get_state(); });
  Def(env, exports, "setRngState", [](Args& a) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(a.t(0));
  });

  // conversion
  Def(env, exports, "to", [](Args& a) {
    const at::Tensor& t = a.t(0);
    at::Device device = a.missing(1) ? t.device() : ParseDevice(a, 1);
    at::ScalarType dtype = a.missing(2) ? t.scalar_type() : a.dtype(2);
    return t.to(device, dtype, /*non_blocking=*/false, /*copy=*/false);
  });
  Def(env, exports, "clone", [](Args& a) { return a.t(0).clone(); });
  Def(env, exports, "contiguous", [](Args& a) {
    bool cl = !a.missing(1) && a.b(1);
    return cl ? ChannelsLast(a.t(0)) : a.t(0).contiguous();
  });

  // autograd
  Def(env, exports, "requiresGrad", [](Args& a) { return a.t(0).requires_grad(); });
  Def(env, exports, "setRequiresGrad", [](Args& a) { a.t(0).set_requires_grad(a.b(1)); });
  Def(env, exports, "isLeaf", [](Args& a) { return a.t(0).is_leaf(); });
  Def(env, exports, "grad", [](Args& a) { return a.t(0).grad(); });
  Def(env, exports, "setGrad", [](Args& a) {
    at::Tensor t = a.t(0);
    if (!a.missing(1)) {
      // the checks of PyTorch's `x.grad = g` setter; a wrong grad would break the next backward
      const at::Tensor& g = a.t(1);
      if (g.sizes() != t.sizes() || g.scalar_type() != t.scalar_type() || g.device() != t.device()) {
        throw std::runtime_error("assigned grad must match the tensor's shape, dtype and device: the tensor is " +
                                 Describe(t) + ", the grad " + Describe(g));
      }
    }
    t.mutable_grad() = a.missing(1) ? at::Tensor() : a.t(1);
  });
  Def(env, exports, "gradFn", [](Args& a) -> Napi::Value {
    const auto& fn = a.t(0).grad_fn();
    return fn ? Napi::String::New(a.env(), fn->name()) : a.env().Null();
  });
  Def(env, exports, "detach", [](Args& a) { return a.t(0).detach(); });
  Def(env, exports, "backward", [](Args& a) {
    c10::optional<at::Tensor> g = a.optT(1);
    bool retain = !a.missing(2) && a.b(2);
    a.t(0).backward(g.value_or(at::Tensor()), retain);
  });
  Def(env, exports, "setGradEnabled", [](Args& a) { c10::GradMode::set_enabled(a.b(0)); });
  Def(env, exports, "isGradEnabled", [](Args& a) { return c10::GradMode::is_enabled(); });

  // engine settings
  Def(env, exports, "setNumThreads", [](Args& a) {
    int64_t n = a.i64(0);
    if (n < 1) throw std::runtime_error("setNumThreads: need at least 1 thread, got " + std::to_string(n));
    at::set_num_threads(static_cast<int>(n));
  });
  Def(env, exports, "getNumThreads", [](Args& a) { return static_cast<int64_t>(at::get_num_threads()); });
  Def(env, exports, "cudaAvailable", [](Args& a) { return torch::cuda::is_available(); });
  Def(env, exports, "cudaDeviceCount", [](Args& a) { return static_cast<int64_t>(torch::cuda::device_count()); });
  Def(env, exports, "libtorchVersion", [](Args& a) -> Napi::Value { return Napi::String::New(a.env(), Version()); });
  Def(env, exports, "setAutocast", [](Args& a) { SetAutocast(a.b(0), a.dtype(1)); });
  Def(env, exports, "startProfile", [](Args& a) { StartProfile(a.str(0)); });
  Def(env, exports, "stopProfile", [](Args& a) { StopProfile(); });
}

}  // namespace convkit

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  convkit::InitLogging(env, exports);
  convkit::InitTensor(env, exports);
  convkit::InitOps(env, exports);
  convkit::InitNNOps(env, exports);
  convkit::InitAllocator(env, exports);
  convkit::InitFastGrads(env, exports);
  convkit::InitFusedOptim(env, exports);
  convkit::InitConv2d(env, exports);
  convkit::InitFusedConv(env, exports);
  convkit::InitDistributed(env, exports);
  return exports;
}

NODE_API_MODULE(convkit, InitAll)
