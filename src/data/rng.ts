// Seeded randomness for the data layer.
//
// Two sources, each with a state that can be saved and restored:
// - `Rng`, a small JS generator (xoshiro128**) for decisions made in JS: the loader's shuffles
//   and validation splits. Seeded from a list of integers (seed, epoch, ...), so the shuffle of
//   epoch e is a pure function of (seed, e).
// - libtorch's CPU generator for decisions made per sample inside transforms. The loader runs
//   each batch's transform under `withCpuSeed(batchSeed(seed, epoch, batch))`, so augmentation
//   is a pure function of (seed, epoch, batch) and leaves the trainer's generator untouched.

import { getRngState, manualSeedCpu, rand, randn, setRngState } from '../engine/index.js';

const GOLDEN = 0x9e3779b9;

// murmur3's finaliser: a bijection on 32-bit words with full avalanche.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function checkKey(key: number, what: string): void {
  if (!Number.isSafeInteger(key) || key < 0) {
    throw new RangeError(`${what}: seeds and keys must be non-negative safe integers, got ${key}`);
  }
}

// Hashes (lane, keys...) to one 32-bit word; every key contributes its low and high 32 bits.
function hashKeys(keys: readonly number[], lane: number, what: string): number {
  let h = fmix32((lane + 1) * GOLDEN);
  for (const key of keys) {
    checkKey(key, what);
    const lo = key >>> 0;
    const hi = Math.floor(key / 0x100000000) >>> 0;
    h = fmix32((h ^ lo) + GOLDEN);
    h = fmix32((h ^ hi) + GOLDEN);
  }
  return fmix32(h ^ keys.length);
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

export type RngState = [number, number, number, number];

/** xoshiro128** (Blackman & Vigna): fast, 128-bit state, good enough for shuffles and splits. */
export class Rng {
  #s: Uint32Array;

  private constructor(state: readonly number[]) {
    this.#s = Uint32Array.from(state);
    if (this.#s.every((w) => w === 0)) this.#s[0] = GOLDEN; // the all-zero state is a fixed point
  }

  /** A generator whose stream is a pure function of the keys, e.g. Rng.fromKeys(seed, epoch). */
  static fromKeys(...keys: number[]): Rng {
    return new Rng([0, 1, 2, 3].map((lane) => hashKeys(keys, lane, 'Rng.fromKeys')));
  }

  static fromState(state: RngState): Rng {
    if (!Array.isArray(state) || state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)) {
      throw new TypeError(`Rng.fromState: expected four 32-bit unsigned integers, got ${JSON.stringify(state)}`);
    }
    return new Rng(state);
  }

  /** The state, to save (JSON-friendly) and restore with `Rng.fromState`. */
  getState(): RngState {
    return [this.#s[0], this.#s[1], this.#s[2], this.#s[3]];
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n); // reject the tail that would favour small values
    for (;;) {
      const r = this.nextUint32();
      if (r < limit) return r % n;
    }
  }

  /** Shuffles in place (Fisher-Yates) and returns the array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }

  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out);
  }
}

/** A seed in [0, 2^52) derived from keys: e.g. the augmentation seed of (seed, epoch, batch). */
export function deriveSeed(...keys: number[]): number {
  const hi = hashKeys(keys, 4, 'deriveSeed') & 0xfffff;
  const lo = hashKeys(keys, 5, 'deriveSeed');
  return hi * 0x100000000 + lo;
}

/**
 * Runs fn with libtorch's CPU generator seeded to `seed`, then restores the generator's state,
 * so what fn draws is a pure function of the seed and nothing outside fn sees a difference.
 */
export function withCpuSeed<T>(seed: number, fn: () => T): T {
  const saved = getRngState();
  try {
    manualSeedCpu(seed);
    return fn();
  } finally {
    setRngState(saved);
    saved.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Drawing from libtorch's generator into JS numbers (per-sample parameters of transforms)

/** n uniform floats in [0, 1) from libtorch's CPU generator (float64, as torch.rand(n, dtype=float64)). */
export function torchUniform(n: number): Float64Array {
  if (n === 0) return new Float64Array(0);
  const t = rand([n], { dtype: 'float64' });
  const out = t.toTypedArray() as Float64Array;
  t.dispose();
  return out;
}

/** n standard normal floats from libtorch's CPU generator. */
export function torchNormal(n: number): Float64Array {
  if (n === 0) return new Float64Array(0);
  const t = randn([n], { dtype: 'float64' });
  const out = t.toTypedArray() as Float64Array;
  t.dispose();
  return out;
}

/**
 * Uniforms and normals drawn from libtorch's generator in blocks, for samplers that need an
 * unknown number of draws (rejection sampling). Deterministic for a given generator state.
 */
export class TorchDraws {
  #u: Float64Array = new Float64Array(0);
  #n: Float64Array = new Float64Array(0);
  #ui = 0;
  #ni = 0;
  constructor(private readonly block = 32) {}

  uniform(): number {
    if (this.#ui >= this.#u.length) {
      this.#u = torchUniform(this.block);
      this.#ui = 0;
    }
    return this.#u[this.#ui++]!;
  }

  normal(): number {
    if (this.#ni >= this.#n.length) {
      this.#n = torchNormal(this.block);
      this.#ni = 0;
    }
    return this.#n[this.#ni++]!;
  }
}

// Marsaglia & Tsang (2000); shape < 1 boosted by u^(1/shape).
function sampleGamma(shape: number, draws: TorchDraws): number {
  if (shape < 1) return sampleGamma(shape + 1, draws) * Math.pow(draws.uniform(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = draws.normal();
    const v0 = 1 + c * x;
    if (v0 <= 0) continue;
    const v = v0 * v0 * v0;
    const u = draws.uniform();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** A Beta(a, b) sample from libtorch's generator (mixup's and cutmix's lambda). */
export function sampleBeta(a: number, b: number, draws = new TorchDraws()): number {
  if (!(a > 0) || !(b > 0)) throw new RangeError(`sampleBeta: both parameters must be positive, got ${a}, ${b}`);
  const x = sampleGamma(a, draws);
  const y = sampleGamma(b, draws);
  return x + y === 0 ? 0.5 : x / (x + y);
}
