// Debian's libtorch-dev ships c10d's reducer.hpp but not the distributed-autograd header it
// includes. The Reducer only holds a pointer to this context (for RPC, which convkit does not
// use), so the declarations it names are enough; a full libtorch (LIBTORCH=) has the real header
// and never reads this one (binding.gyp adds this folder for Debian's build only).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
