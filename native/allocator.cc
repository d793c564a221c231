// A caching CPU allocator for libtorch. A training step frees and re-allocates the same
// activation sizes every iteration; served by glibc from fresh pages, each MB costs ~250 page
// faults here (a 4 MB tensor ~15 ms, 100x the op on it). Freed blocks of 64 KB and more are kept
// in a size-ordered pool and handed out again for requests that fit tightly, up to a cap; small
// blocks go straight to malloc, which recycles them well. CONVKIT_CACHING_ALLOCATOR=0 turns it off.
#include <c10/core/CPUAllocator.h>
#include <c10/core/Allocator.h>
#include <torch/version.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common.h"

namespace convkit {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMinCached = 64 << 10;
constexpr size_t kRound = 4096;

class CachingCPUAllocator final : public at::Allocator {
 public:
#if TORCH_VERSION_MAJOR >= 2 && TORCH_VERSION_MINOR >= 3
  at::DataPtr allocate(size_t n) override { return Allocate(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  at::DataPtr allocate(size_t n) const override { return Allocate(n); }
#endif
  at::DeleterFnPtr raw_deleter() const override { return &Free; }

  static CachingCPUAllocator& Get() {
    static CachingCPUAllocator instance;
    return instance;
  }

  void SetLimit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = bytes;
    Trim(limit_);
  }

  void EmptyCache() {
    std::lock_guard<std::mutex> lock(mu_);
    Trim(0);
  }

  size_t CachedBytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

 private:
  at::DataPtr Allocate(size_t n) const { return const_cast<CachingCPUAllocator*>(this)->Take(n); }

  at::DataPtr Take(size_t n) {
    if (n == 0) return {nullptr, nullptr, &Free, at::Device(at::kCPU)};
    size_t size = n < kMinCached ? n : (n + kRound - 1) / kRound * kRound;
    void* p = nullptr;
    if (size >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      // the smallest cached block that fits, if it wastes at most a quarter of itself
      auto it = pool_.lower_bound(size);
      if (it != pool_.end() && it->first <= size + size / 4) {
        p = it->second;
        size = it->first;
        cached_ -= size;
        pool_.erase(it);
      }
    }
    if (!p && posix_memalign(&p, kAlignment, size) != 0) {
      throw std::runtime_error("out of memory allocating " + std::to_string(n) + " bytes for a tensor");
    }
    if (size >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      sizes_[p] = size;
    }
    return {p, p, &Free, at::Device(at::kCPU)};
  }

  static void Free(void* p) {
    if (!p) return;
    Get().Release(p);
  }

  void Release(void* p) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = sizes_.find(p);
      if (it != sizes_.end()) {
        size_t size = it->second;
        sizes_.erase(it);
        if (cached_ + size <= limit_) {
          pool_.emplace(size, p);
          cached_ += size;
          return;
        }
      }
    }
    std::free(p);
  }

  // Frees cached blocks, largest first, until at most `keep` bytes stay cached. Holds mu_.
  void Trim(size_t keep) {
    while (cached_ > keep && !pool_.empty()) {
      auto it = std::prev(pool_.end());
      cached_ -= it->first;
      std::free(it->second);
      pool_.erase(it);
    }
  }

  std::mutex mu_;
  std::multimap<size_t, void*> pool_;
  std::unordered_map<void*, size_t> sizes_;
  size_t cached_ = 0;
  size_t limit_ = size_t(2) << 30;
};

}  // namespace

void InitAllocator(Napi::Env env, Napi::Object exports) {
  const char* flag = std::getenv("CONVKIT_CACHING_ALLOCATOR");
  bool enabled = !(flag && std::string(flag) == "0");
  if (enabled) c10::SetCPUAllocator(&CachingCPUAllocator::Get(), /*priority=*/10);
  Def(env, exports, "allocatorEnabled", [enabled](Args& a) { return enabled; });
  Def(env, exports, "emptyCache", [](Args& a) { CachingCPUAllocator::Get().EmptyCache(); });
  Def(env, exports, "cachedBytes", [](Args& a) { return static_cast<int64_t>(CachingCPUAllocator::Get().CachedBytes()); });
  Def(env, exports, "setCacheLimit", [](Args& a) { CachingCPUAllocator::Get().SetLimit(static_cast<size_t>(a.i64(0))); });
}

}  // namespace convkit
