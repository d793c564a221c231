// Data-parallel training over libtorch's c10d: the TCPStore rendezvous, the Gloo process group,
// collectives with work handles, PyTorch's own DDP Reducer (gradient buckets all-reduced from
// autograd hooks while the backward pass runs) and a differentiable all-reduce for SyncBatchNorm.
// Everything here is c10d's; this file only holds the objects and hands their errors to JS.
// The policy (environment variables, messages that name ranks, samplers, the training loop) lives
// in src/distributed.
//
// Blocking calls: rendezvous and waits on work handles run on libuv's thread pool and resolve a
// Promise, so Node's event loop keeps turning; the gradient reduction runs inside backward() (the
// Reducer waits for its buckets at the end of the backward pass), as in PyTorch.
#include <torch/version.h>

// libtorch 2.x split c10d's process groups into backends (ProcessGroupGloo became a Backend
// wrapped by a ProcessGroup) and changed the Reducer's signature between minor versions; this
// file is written against 1.13's API, which Debian ships and the tests run on. Built against 2.x,
// the same functions exist and say so when called.
#if TORCH_VERSION_MAJOR < 2
#define CONVKIT_C10D 1
#else
#define CONVKIT_C10D 0
#endif

#if CONVKIT_C10D
// ProcessGroupGloo.hpp declares its class only under this define (libtorch builds with Gloo set it)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/default_comm_hooks.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#endif

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common.h"

namespace convkit {

#if CONVKIT_C10D
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kHeartbeat{400};
const char* const kHeartbeatKey = "convkit/heartbeat/";

// One process group: its store, Gloo's group, and a thread that bumps this rank's heartbeat
// counter in the store, so that when a collective fails the survivors can tell which rank died.
struct Group {
  int rank = 0, size = 1;
  std::string addr;
  // keys of this job in the store: under torchrun, its agent hosts the store and each restart
  // of the workers uses a fresh prefix
  std::string prefix;
  uint16_t port = 0;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::thread heartbeat;
  std::atomic<bool> stop{false};
  std::atomic<bool> beating{false};

  void StartHeartbeat() {
    beating = true;
    heartbeat = std::thread([this] {
      try {
        // its own connection: a TCPStore client is not shared between threads
        c10d::TCPStoreOptions o;
        o.port = port;
        o.isServer = false;
        o.waitWorkers = false;
        o.timeout = milliseconds(5000);
        c10d::TCPStore s(addr, o);
        std::string key = prefix + kHeartbeatKey + std::to_string(rank);
        while (!stop) {
          s.add(key, 1);
          for (int i = 0; i < 4 && !stop; ++i) std::this_thread::sleep_for(kHeartbeat / 4);
        }
      } catch (...) {
        // the store's host (rank 0) is gone: nothing left to report to
      }
      beating = false;
    });
  }
  ~Group() {
    stop = true;
    if (heartbeat.joinable()) heartbeat.join();
  }
};

// Objects JS refers to by number. A failed group is never destroyed (its threads may be stuck in
// a dead peer's socket): the process is about to exit anyway.
std::mutex tablesMu;
std::unordered_map<int64_t, std::shared_ptr<Group>> groups;
std::unordered_map<int64_t, c10::intrusive_ptr<c10d::Work>> works;
std::unordered_map<int64_t, std::shared_ptr<c10d::Reducer>> reducers;
int64_t nextId = 1;

template <typename T>
int64_t Put(std::unordered_map<int64_t, T>& table, T v) {
  std::lock_guard<std::mutex> lock(tablesMu);
  int64_t id = nextId++;
  table.emplace(id, std::move(v));
  return id;
}

template <typename T>
T Get(std::unordered_map<int64_t, T>& table, int64_t id, const char* what) {
  std::lock_guard<std::mutex> lock(tablesMu);
  auto it = table.find(id);
  if (it == table.end()) throw std::runtime_error(std::string("no live ") + what + " with id " + std::to_string(id));
  return it->second;
}

template <typename T>
T Take(std::unordered_map<int64_t, T>& table, int64_t id, const char* what) {
  std::lock_guard<std::mutex> lock(tablesMu);
  auto it = table.find(id);
  if (it == table.end()) throw std::runtime_error(std::string("no live ") + what + " with id " + std::to_string(id));
  T v = std::move(it->second);
  table.erase(it);
  return v;
}

bool IsLoopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// Rendezvous and Gloo's full-mesh connection, off the JS thread.
class InitWorker : public Napi::AsyncWorker {
 public:
  InitWorker(Napi::Env env, int rank, int size, std::string addr, uint16_t port, milliseconds rdzvTimeout, milliseconds timeout,
             std::string iface, std::string prefix, bool agentStore)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), rank_(rank), size_(size), addr_(std::move(addr)),
        port_(port), rdzvTimeout_(rdzvTimeout), timeout_(timeout), iface_(std::move(iface)), prefix_(std::move(prefix)),
        agentStore_(agentStore) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      auto g = std::make_shared<Group>();
      g->rank = rank_;
      g->size = size_;
      g->addr = addr_;
      g->port = port_;
      g->prefix = prefix_;
      c10d::TCPStoreOptions o;
      o.port = port_;
      o.isServer = rank_ == 0 && !agentStore_;
      o.numWorkers = static_cast<size_t>(size_);
      o.waitWorkers = false;  // the count below says how many joined
      o.timeout = rdzvTimeout_;
      stage_ = "the rendezvous store";
      g->store = c10::make_intrusive<c10d::TCPStore>(addr_, o);
      // Every rank counts itself in and waits for the others, so that Gloo's connections (under
      // the collective timeout) start only once all are there, and a missing process is reported
      // with the count that did join.
      stage_ = "the rendezvous";
      const std::string joinedKey = prefix_ + "convkit/joined";
      g->store->add(joinedKey, 1);
      auto deadline = std::chrono::steady_clock::now() + rdzvTimeout_;
      for (;;) {
        int64_t joined = g->store->add(joinedKey, 0);
        if (joined >= size_) break;
        if (std::chrono::steady_clock::now() > deadline) {
          throw std::runtime_error("Timed out after " + std::to_string(rdzvTimeout_.count()) + " ms waiting for clients. " +
                                   std::to_string(joined) + "/" + std::to_string(size_) + " clients joined.");
        }
        std::this_thread::sleep_for(milliseconds(20));
      }
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout_);
      if (!iface_.empty()) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface_));
      } else if (IsLoopback(addr_)) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      stage_ = "Gloo's connections between the processes";
      g->store->setTimeout(rdzvTimeout_);
      auto prefixed = c10::make_intrusive<c10d::PrefixStore>(prefix_ + "convkit/gloo", g->store);
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank_, size_, opts);
      g->store->setTimeout(timeout_);
      g->StartHeartbeat();
      id_ = Put(groups, g);
    } catch (const c10::Error& e) {
      SetError(std::string(stage_) + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(std::string(stage_) + ": " + e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(id_))); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int rank_, size_;
  std::string addr_;
  uint16_t port_;
  milliseconds rdzvTimeout_, timeout_;
  std::string iface_;
  std::string prefix_;
  bool agentStore_;
  const char* stage_ = "";
  int64_t id_ = 0;
};

// Waits for a collective on the thread pool; the Promise settles with its outcome.
class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, c10::intrusive_ptr<c10d::Work> work)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      work_->wait();
    } catch (const c10::Error& e) {
      SetError(e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  c10::intrusive_ptr<c10d::Work> work_;
};

c10d::ReduceOp ParseOp(Args& a, size_t i) {
  std::string op = a.missing(i) ? "sum" : a.str(i);
  if (op == "sum") return c10d::ReduceOp::SUM;
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  a.fail(i, "a reduce op: 'sum', 'max', 'min' or 'product' (got '" + op + "')");
}

std::vector<at::Tensor> DenseContiguous(Args& a, size_t i) {
  std::vector<at::Tensor> ts = a.tensors(i);
  for (size_t k = 0; k < ts.size(); ++k) {
    if (!ts[k].is_contiguous()) {
      throw std::runtime_error("tensor " + std::to_string(k) + " (" + Describe(ts[k]) +
                               ") is not contiguous: collectives write in place, make it contiguous first");
    }
  }
  return ts;
}

// The sum over ranks, differentiable: the gradient of a sum every rank sees is the sum of every
// rank's gradient (torch.distributed.nn.all_reduce). SyncBatchNorm's statistics go through it.
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t gid) {
    ctx->saved_data["gid"] = gid;
    std::vector<at::Tensor> v{x.contiguous().clone()};
    Get(groups, gid, "process group")->pg->allreduce(v)->wait();
    return v[0];
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    int64_t gid = ctx->saved_data["gid"].toInt();
    std::vector<at::Tensor> v{grads[0].contiguous().clone()};
    Get(groups, gid, "process group")->pg->allreduce(v)->wait();
    return {v[0], at::Tensor()};
  }
};

}  // namespace

void InitDistributed(Napi::Env env, Napi::Object exports) {
  Def(env, exports, "distInit", [](Args& a) -> Napi::Value {
    int64_t rank = a.i64(0), size = a.i64(1), port = a.i64(3), rdzv = a.i64(4), timeout = a.i64(5);
    if (size < 1 || rank < 0 || rank >= size) throw std::runtime_error("rank must be in [0, worldSize)");
    if (port < 1 || port > 65535) a.fail(3, "a port in 1..65535");
    if (rdzv < 1 || timeout < 1) throw std::runtime_error("timeouts must be positive");
    std::string iface = a.missing(6) ? "" : a.str(6);
    std::string prefix = a.missing(7) ? "" : a.str(7);
    bool agentStore = !a.missing(8) && a.b(8);
    auto* w = new InitWorker(a.env(), static_cast<int>(rank), static_cast<int>(size), a.str(2), static_cast<uint16_t>(port),
                             milliseconds(rdzv), milliseconds(timeout), iface, prefix, agentStore);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  });
  // Ends the group: stops the heartbeat and frees Gloo's connections.
  Def(env, exports, "distDestroy", [](Args& a) { Take(groups, a.i64(0), "process group"); });
  // Ranks whose heartbeat stopped within waitMs; [-1] when the store (on rank 0) is unreachable.
  Def(env, exports, "distDeadRanks", [](Args& a) -> Napi::Value {
    auto g = Get(groups, a.i64(0), "process group");
    milliseconds wait(a.i64(1));
    std::vector<int64_t> dead;
    try {
      c10d::TCPStoreOptions o;
      o.port = g->port;
      o.isServer = false;
      o.waitWorkers = false;
      o.timeout = milliseconds(3000);
      c10d::TCPStore s(g->addr, o);
      std::vector<int64_t> before(g->size), after(g->size);
      for (int r = 0; r < g->size; ++r) before[r] = s.add(g->prefix + kHeartbeatKey + std::to_string(r), 0);
      std::this_thread::sleep_for(wait);
      for (int r = 0; r < g->size; ++r) after[r] = s.add(g->prefix + kHeartbeatKey + std::to_string(r), 0);
      for (int r = 0; r < g->size; ++r) {
        if (r != g->rank && after[r] == before[r]) dead.push_back(r);
      }
    } catch (...) {
      dead = {-1};
    }
    Napi::Array out = Napi::Array::New(a.env(), dead.size());
    for (uint32_t i = 0; i < dead.size(); ++i) out[i] = Napi::Number::New(a.env(), static_cast<double>(dead[i]));
    return out;
  });
  // A key of the rendezvous store, set / read (small messages between ranks: a worker's error).
  Def(env, exports, "distStoreSet", [](Args& a) {
    auto g = Get(groups, a.i64(0), "process group");
    std::string v = a.str(2);
    g->store->set(g->prefix + a.str(1), std::vector<uint8_t>(v.begin(), v.end()));
  });
  Def(env, exports, "distStoreGet", [](Args& a) -> Napi::Value {
    auto g = Get(groups, a.i64(0), "process group");
    std::string key = g->prefix + a.str(1);
    if (!g->store->check({key})) return a.env().Null();
    std::vector<uint8_t> v = g->store->get(key);
    return Napi::String::New(a.env(), std::string(v.begin(), v.end()));
  });

  // ---- collectives: each returns a work id, waited with distWait (a Promise) or distWaitSync ----
  Def(env, exports, "distAllReduce", [](Args& a) {
    auto g = Get(groups, a.i64(0), "process group");
    std::vector<at::Tensor> ts = DenseContiguous(a, 1);
    c10d::AllreduceOptions o;
    o.reduceOp = ParseOp(a, 2);
    return Put(works, g->pg->allreduce(ts, o));
  });
  Def(env, exports, "distBroadcast", [](Args& a) {
    auto g = Get(groups, a.i64(0), "process group");
    std::vector<at::Tensor> ts = DenseContiguous(a, 1);
    c10d::BroadcastOptions o;
    o.rootRank = a.i64(2);
    return Put(works, g->pg->broadcast(ts, o));
  });
  Def(env, exports, "distBarrier", [](Args& a) { return Put(works, Get(groups, a.i64(0), "process group")->pg->barrier()); });
  Def(env, exports, "distWait", [](Args& a) -> Napi::Value {
    auto* w = new WaitWorker(a.env(), Take(works, a.i64(0), "work"));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  });
  Def(env, exports, "distWaitSync", [](Args& a) { Take(works, a.i64(0), "work")->wait(); });
  Def(env, exports, "distIsCompleted", [](Args& a) { return Get(works, a.i64(0), "work")->isCompleted(); });
  // Copies rank root's tensors (any layout) into every rank's, in 250 MB buckets as DDP does.
  Def(env, exports, "distBroadcastCoalesced", [](Args& a) {
    auto g = Get(groups, a.i64(0), "process group");
    std::vector<at::Tensor> ts = a.tensors(1);
    at::NoGradGuard noGrad;  // parameters are leaves that require grad
    c10d::broadcast_coalesced(g->pg, ts, 250 * 1024 * 1024, static_cast<int>(a.i64(2)));
  });
  Def(env, exports, "distAllReduceDiff", [](Args& a) { return AllReduceSum::apply(a.t(1), a.i64(0)); });

  // ---- DDP's Reducer ----
  // distReducer(group, params, bucketBytes, firstBucketBytes, gradientAsBucketView, commHook):
  // buckets assigned by size in reverse parameter order (the order backward produces gradients),
  // the order DDP's buckets take once c10d rebuilds them from the first iteration's ready order.
  Def(env, exports, "distReducer", [](Args& a) {
    auto g = Get(groups, a.i64(0), "process group");
    std::vector<at::Tensor> params = a.tensors(1);
    int64_t cap = a.i64(2), first = a.i64(3);
    bool asView = !a.missing(4) && a.b(4);
    std::string hook = a.missing(5) ? "allreduce" : a.str(5);
    if (hook != "allreduce" && hook != "fp16") a.fail(5, "a comm hook: 'allreduce' or 'fp16' (got '" + hook + "')");
    if (params.empty()) throw std::runtime_error("no parameters that require grad");
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].requires_grad() || !params[i].is_leaf()) {
        throw std::runtime_error("parameter " + std::to_string(i) + " (" + Describe(params[i]) + ") is not a leaf that requires grad");
      }
    }
    std::vector<bool> sparse(params.size(), false);
    // Buckets filled from the last parameter back (backward produces their gradients first), the
    // first one small: its all-reduce starts early in the backward pass. With explicit indices
    // c10d keeps this order instead of sorting buckets by their first parameter.
    std::vector<at::Tensor> reversed(params.rbegin(), params.rend());
    std::vector<int64_t> indices(params.size());
    for (size_t i = 0; i < params.size(); ++i) indices[i] = static_cast<int64_t>(params.size() - 1 - i);
    auto assigned = c10d::compute_bucket_assignment_by_size(reversed, {static_cast<size_t>(first), static_cast<size_t>(cap)}, sparse, indices);
    auto buckets = std::get<0>(assigned);
    auto limits = std::get<1>(assigned);
    auto r = std::make_shared<c10d::Reducer>(params, buckets, limits, g->pg, sparse, cap, /*find_unused_parameters=*/false, asView,
                                             std::unordered_map<size_t, std::string>(), first);
    // 'allreduce' registers no hook: without one, c10d divides by the world size while copying a
    // gradient into its bucket, which its ALLREDUCE hook would do in a second pass
    if (hook == "fp16") r->register_builtin_comm_hook(c10d::BuiltinCommHookType::FP16_COMPRESS);
    return Put(reducers, r);
  });
  Def(env, exports, "distReducerBuckets", [](Args& a) -> Napi::Value {
    auto r = Get(reducers, a.i64(0), "reducer");
    std::vector<c10d::GradBucket> bs = r->get_grad_buckets(/*return_zero_tensors=*/true);
    Napi::Array out = Napi::Array::New(a.env(), bs.size());
    for (uint32_t i = 0; i < bs.size(); ++i) out[i] = Napi::Number::New(a.env(), static_cast<double>(bs[i].getBuffer().numel()));
    return out;
  });
  // The next backward pass all-reduces the gradients (without this call, as under no_sync, the
  // hooks do nothing and gradients accumulate locally).
  Def(env, exports, "distReducerPrepare", [](Args& a) {
    auto r = Get(reducers, a.i64(0), "reducer");
    r->prepare_for_forward();
    r->prepare_for_backward({});
  });
  // When each parameter's gradient was ready in the last backward pass, in ms after
  // distReducerPrepare (c10d's own record; buckets are launched as their last one is ready).
  Def(env, exports, "distReducerReadyTimes", [](Args& a) -> Napi::Value {
    std::vector<int64_t> ns = Get(reducers, a.i64(0), "reducer")->get_backward_stats();
    Napi::Array out = Napi::Array::New(a.env(), ns.size());
    for (uint32_t i = 0; i < ns.size(); ++i) out[i] = Napi::Number::New(a.env(), static_cast<double>(ns[i]) / 1e6);
    return out;
  });
  Def(env, exports, "distReducerDestroy", [](Args& a) { Take(reducers, a.i64(0), "reducer"); });
}

#else  // libtorch 2.x: the functions exist (the typed interface holds) and refuse

void InitDistributed(Napi::Env env, Napi::Object exports) {
  for (const char* name : {"distInit", "distDestroy", "distDeadRanks", "distStoreSet", "distStoreGet", "distAllReduce", "distBroadcast",
                           "distBarrier", "distWait", "distWaitSync", "distIsCompleted", "distBroadcastCoalesced", "distAllReduceDiff",
                           "distReducer", "distReducerBuckets", "distReducerPrepare", "distReducerReadyTimes", "distReducerDestroy"}) {
    Def(env, exports, name, [](Args& a) -> Napi::Value {
      throw std::runtime_error(std::string("distributed training is built only against libtorch 1.x's c10d in this version of convkit; this addon uses libtorch ") +
                               TORCH_VERSION);
    });
  }
}

#endif  // CONVKIT_C10D

}  // namespace convkit
