// libtorch's warnings and log messages, kept off the user's terminal.
//
// libtorch warns through c10 (TORCH_WARN: "The .grad attribute of a Tensor that is not a leaf
// Tensor is being accessed", "Using padding='same' with even kernel lengths ..."), and c10's
// default handler logs them: through glog in Debian's build, whose first message also prints
// "WARNING: Logging before InitGoogleLogging() is written to STDERR", or to stderr in builds
// without glog. A library must not write to its user's terminal, so the warnings are collected
// here instead, each distinct message once: torchWarnings() reads them, and
// CONVKIT_TORCH_WARNINGS=1 prints them as they come. Log messages below ERROR are silenced too
// (a thread other than the main one still warns through the default handler in libtorch 2.x,
// where the handler is per thread). Errors are not hidden: libtorch reports them as exceptions,
// which every op turns into a JS Error, and its log messages of severity ERROR still print.
#include <c10/util/Exception.h>
#include <c10/util/Logging.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"

// glog's threshold (0 INFO, 1 WARNING, 2 ERROR), a weak reference: null in libtorch builds
// without glog. The variable's symbol is the same with and without gflags.
namespace fLI {
extern int32_t FLAGS_minloglevel __attribute__((weak));
}

namespace convkit {
namespace {

constexpr int kError = 2;
constexpr size_t kMaxWarnings = 64;
constexpr size_t kMaxLength = 1000;

class Collector final : public c10::WarningHandler {
 public:
#if CONVKIT_TORCH_AT_LEAST(2, 0)
  void process(const c10::Warning& warning) override { Add(warning.msg()); }
#else
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override { Add(msg); }
#endif

  std::vector<std::string> Warnings() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

  bool print = false;

 private:
  // Kernels may warn from intra-op threads: hence the lock.
  void Add(const std::string& msg) {
    std::string text = msg.size() > kMaxLength ? msg.substr(0, kMaxLength) + " ..." : msg;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : seen_) {
      if (s == text) return;
    }
    if (seen_.size() < kMaxWarnings) seen_.push_back(text);
    if (print) std::fprintf(stderr, "convkit: libtorch warning: %s\n", text.c_str());
  }

  std::mutex mu_;
  std::vector<std::string> seen_;
};

Collector& TheCollector() {
  static Collector* collector = new Collector();  // never destroyed: libtorch may warn at exit
  return *collector;
}

// Log messages below ERROR off, unless the user chose a level (GLOG_minloglevel) or asked for
// libtorch's warnings.
void QuietLogs(bool verbose) {
  if (verbose) return;
  const char* chosen = std::getenv("GLOG_minloglevel");
  bool userChose = chosen != nullptr && *chosen != '\0';
  if (&fLI::FLAGS_minloglevel != nullptr && !userChose && fLI::FLAGS_minloglevel < kError) {
    fLI::FLAGS_minloglevel = kError;
  }
  if (FLAGS_caffe2_log_level < kError) FLAGS_caffe2_log_level = kError;  // c10's own logger, without glog
}

}  // namespace

void InitLogging(Napi::Env env, Napi::Object exports) {
  const char* flag = std::getenv("CONVKIT_TORCH_WARNINGS");
  bool verbose = flag != nullptr && std::string(flag) == "1";
  Collector& collector = TheCollector();
  collector.print = verbose;
#if CONVKIT_TORCH_AT_LEAST(2, 0)
  c10::WarningUtils::set_warning_handler(&collector);
#else
  c10::Warning::set_warning_handler(&collector);
#endif
  QuietLogs(verbose);
  Def(env, exports, "torchWarnings", [](Args& a) -> Napi::Value {
    std::vector<std::string> warnings = TheCollector().Warnings();
    Napi::Array out = Napi::Array::New(a.env(), warnings.size());
    for (uint32_t i = 0; i < warnings.size(); ++i) out[i] = Napi::String::New(a.env(), warnings[i]);
    return out;
  });
}

}  // namespace convkit
