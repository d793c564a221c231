// Helpers for the loops that the compiler vectorises: one clone of a kernel per instruction set
// (picked at load time), and float32 <-> bfloat16 conversions written as plain bit arithmetic so
// that no branch or call stops the vectoriser.
#pragma once

#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common.h"

#if CONVKIT_X86_64
#define CONVKIT_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3", "no-trapping-math")))
// For loops that spell out every fma they want (__builtin_fmaf), and no other: the compiler
// contracts nothing itself. "avx2" does not bring FMA instructions, so its clone would call
// fmaf() per element; "fma" (AVX with FMA) does. Without FMA the call stays, exact but slow.
#define CONVKIT_FMA_CLONES \
  __attribute__((target_clones("avx512f", "fma", "default"), optimize("O3", "no-trapping-math", "fp-contract=off")))
#else
#define CONVKIT_FMA_CLONES
#define CONVKIT_CLONES
#endif

namespace convkit {

inline float Load(float v) { return v; }
inline float Load(c10::BFloat16 v) {
  uint32_t bits = static_cast<uint32_t>(v.x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline void Store(float* p, float v) { *p = v; }
// Round to nearest even, as c10::BFloat16 does; a NaN stays a quiet NaN. Comparisons are on the
// integer bits: GCC leaves a float comparison inside a loop as a branch, which stops the vectoriser.
inline void Store(c10::BFloat16* p, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  p->x = static_cast<uint16_t>((bits & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC0u : rounded);
}

// min(x, cap) for x, cap >= 0 (a NaN gives cap), through the bits: for non-negative floats the
// integer order is the float order. `below` is all ones where x < cap, else 0, for Mask.
inline float CapNonNegative(float x, float cap, uint32_t& below) {
  uint32_t xb, cb;
  std::memcpy(&xb, &x, sizeof xb);
  std::memcpy(&cb, &cap, sizeof cb);
  below = 0u - static_cast<uint32_t>(xb < cb);
  xb = std::min(xb, cb);
  std::memcpy(&x, &xb, sizeof x);
  return x;
}

// x where mask is all ones, +0 where it is 0.
inline float Mask(float x, uint32_t mask) {
  uint32_t xb;
  std::memcpy(&xb, &x, sizeof xb);
  xb &= mask;
  std::memcpy(&x, &xb, sizeof x);
  return x;
}

}  // namespace convkit
