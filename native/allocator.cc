// A caching CPU allocator for libtorch. A training step frees and re-allocates the same
// activation sizes every iteration; served by glibc from fresh pages, each MB costs ~250 page
// faults here (a 4 MB tensor ~15 ms, 100x the op on it). Freed blocks of 64 KB and more are kept
// in a size-ordered pool and handed out again for requests that fit tightly, up to a cap (beyond
// it the least recently freed blocks go back to the system); small blocks go straight to malloc, which recycles them well. CONVKIT_CACHING_ALLOCATOR=0 turns it off.
#include <c10/core/CPUAllocator.h>
#include <c10/core/Allocator.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

namespace convkit {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMinCached = 64 << 10;
constexpr size_t kRound = 4096;
constexpr size_t kHugePage = size_t(2) << 20;

class CachingCPUAllocator final : public at::Allocator {
 public:
#if CONVKIT_TORCH_AT_LEAST(2, 3)
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

  // blocks served from the cache and from the system since the start
  std::pair<uint64_t, uint64_t> Counts() {
    std::lock_guard<std::mutex> lock(mu_);
    return {hits_, misses_};
  }

  size_t Limit() {
    std::lock_guard<std::mutex> lock(mu_);
    return limit_;
  }

  size_t CachedBytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

 private:
  at::DataPtr Allocate(size_t n) const { return const_cast<CachingCPUAllocator*>(this)->Take(n); }

  // Small blocks carry free() as their deleter: freeing one (every op on a small tensor) takes
  // no lock and no lookup.
  at::DataPtr Take(size_t n) {
    if (n == 0) return {nullptr, nullptr, &Free, at::Device(at::kCPU)};
    if (n < kMinCached) {
      void* p = Fresh(n, n);
      return {p, p, &std::free, at::Device(at::kCPU)};
    }
    void* p = TakeCached(n);
    return {p, p, &Free, at::Device(at::kCPU)};
  }

  // A block of n >= kMinCached bytes: the smallest cached block that fits, if it wastes at most
  // a quarter of itself, else a new one.
  void* TakeCached(size_t n) {
    size_t size = (n + kRound - 1) / kRound * kRound;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pool_.lower_bound(size);
      if (it != pool_.end() && it->first <= size + size / 4) {
        ++hits_;
        size_t got = it->first;
        void* p = Drop(it, /*release=*/false);
        sizes_[p] = got;
        return p;
      }
    }
    void* p = Fresh(n, size);
    std::lock_guard<std::mutex> lock(mu_);
    ++misses_;
    sizes_[p] = size;
    return p;
  }

  // New memory from the system. Blocks of 2 MB and more are 2 MB-aligned and asked to be backed
  // by transparent huge pages: a first touch then faults once per 2 MB instead of once per 4 KB,
  // which on this VM makes fresh memory ~40x cheaper (0.35 instead of 14 ms per 4 MB).
  static void* Fresh(size_t n, size_t size) {
    bool huge = size >= kHugePage;
    void* p = nullptr;
    if (posix_memalign(&p, huge ? kHugePage : kAlignment, size) != 0) {
      throw std::runtime_error("out of memory allocating " + std::to_string(n) + " bytes for a tensor");
    }
#ifdef MADV_HUGEPAGE
    if (huge) madvise(p, size, MADV_HUGEPAGE);  // advice only: without THP it is a no-op
#endif
    return p;
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
        if (size <= limit_) {
          // a full cache makes room by dropping its least recently freed blocks: a run whose
          // shapes change (fp32 then bf16, train then eval) must not be left with a cache of
          // sizes nobody asks for while every new block page-faults
          Trim(limit_ - size);
          auto at = pool_.emplace(size, Cached{p, ++clock_});
          lru_.emplace(clock_, at);
          cached_ += size;
          return;
        }
      }
    }
    std::free(p);
  }

  // Frees cached blocks, least recently freed first, until at most `keep` bytes stay cached.
  // Holds mu_.
  void Trim(size_t keep) {
    while (cached_ > keep && !lru_.empty()) Drop(lru_.begin()->second, /*release=*/true);
  }

  struct Cached {
    void* p;
    uint64_t stamp;
  };
  using Pool = std::multimap<size_t, Cached>;

  // Takes a block out of the pool, freeing its memory or not. Holds mu_.
  void* Drop(Pool::iterator it, bool release) {
    void* p = it->second.p;
    cached_ -= it->first;
    lru_.erase(it->second.stamp);
    pool_.erase(it);
    if (release) std::free(p);
    return p;
  }

  // A quarter of physical memory: enough for a training step's whole working set (EfficientNet-B0
  // at batch 128 reuses ~2.5 GB a step; a smaller cap thrashes and page-faults again), and only
  // ever held by blocks the run really used.
  static size_t DefaultLimit() {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) / 4 : size_t(2) << 30;
  }

  std::mutex mu_;
  Pool pool_;
  std::map<uint64_t, Pool::iterator> lru_;
  std::unordered_map<void*, size_t> sizes_;
  size_t cached_ = 0;
  size_t limit_ = DefaultLimit();
  uint64_t clock_ = 0;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace

void InitAllocator(Napi::Env env, Napi::Object exports) {
  const char* flag = std::getenv("CONVKIT_CACHING_ALLOCATOR");
  bool enabled = !(flag && std::string(flag) == "0");
  if (enabled) c10::SetCPUAllocator(&CachingCPUAllocator::Get(), /*priority=*/10);
  Def(env, exports, "allocatorEnabled", [enabled](Args& a) { return enabled; });
  Def(env, exports, "emptyCache", [](Args& a) { CachingCPUAllocator::Get().EmptyCache(); });
  Def(env, exports, "cachedBytes", [](Args& a) { return static_cast<int64_t>(CachingCPUAllocator::Get().CachedBytes()); });
  Def(env, exports, "setCacheLimit", [](Args& a) {
    int64_t bytes = a.i64(0);
    if (bytes < 0) throw std::runtime_error("setCacheLimit: expected a byte count >= 0, got " + std::to_string(bytes));
    CachingCPUAllocator::Get().SetLimit(static_cast<size_t>(bytes));
  });
  Def(env, exports, "cacheCounts", [](Args& a) -> Napi::Value {
    auto [hits, misses] = CachingCPUAllocator::Get().Counts();
    Napi::Array out = Napi::Array::New(a.env(), 2);
    out[0u] = Napi::Number::New(a.env(), static_cast<double>(hits));
    out[1u] = Napi::Number::New(a.env(), static_cast<double>(misses));
    return out;
  });
  Def(env, exports, "cacheLimit", [](Args& a) { return static_cast<int64_t>(CachingCPUAllocator::Get().Limit()); });
}

}  // namespace convkit
