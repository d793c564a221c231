// Engine-wide settings: threads, seeds and random state, devices.
import { native, type HandleCounts } from './native.js';
import { MAX_THREADS } from './limits.js';
import { Tensor } from './tensor.js';

export { MAX_THREADS };

/** Intra-op threads, 1..MAX_THREADS (default: the machine's cores, or CONVKIT_NUM_THREADS). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) throw new RangeError(`setNumThreads: expected an integer in 1..${MAX_THREADS}, got ${n}`);
  native.setNumThreads(n);
}
export const getNumThreads = (): number => native.getNumThreads();

/** Seeds libtorch's default generator, as torch.manual_seed. */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`manualSeed: expected a non-negative integer, got ${seed}`);
  native.manualSeed(seed);
}
/**
 * Seeds only the default CPU generator (torch.default_generator.manual_seed(s)); unlike
 * manualSeed it leaves CUDA generators alone. The data layer seeds each batch's augmentation
 * with it on CPU-drawn parameters, so GPU dropout streams are untouched.
 */
export function manualSeedCpu(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`manualSeedCpu: expected a non-negative integer, got ${seed}`);
  native.manualSeedCpu(seed);
}
/** The default generator's state as a uint8 tensor, as torch.get_rng_state. */
export const getRngState = (): Tensor => new Tensor(native.getRngState());
export const setRngState = (state: Tensor): void => native.setRngState(state.handle);

export const cudaAvailable = (): boolean => native.cudaAvailable();
export const cudaDeviceCount = (): number => native.cudaDeviceCount();
export const libtorchVersion = (): string => native.libtorchVersion();

/**
 * The CPU memory cache (native/allocator.cc): freed blocks of 64 KB and more are kept for reuse,
 * which spares a training step the page faults of fresh memory. The cache holds at most
 * `limit` bytes (default a quarter of physical memory; the least recently freed blocks go first).
 */
export interface CacheInfo {
  /** false when CONVKIT_CACHING_ALLOCATOR=0 turned the cache off */
  enabled: boolean;
  cachedBytes: number;
  limit: number;
  /** blocks of 64 KB and more served from the cache since the start */
  hits: number;
  /** blocks of 64 KB and more that had to come from the system (each first touch page-faults) */
  misses: number;
}
export function cacheInfo(): CacheInfo {
  const [hits, misses] = native.cacheCounts() as [number, number];
  return { enabled: native.allocatorEnabled(), cachedBytes: native.cachedBytes(), limit: native.cacheLimit(), hits, misses };
}
/** Returns every cached block to the system, as torch.cuda.empty_cache does for the GPU. */
export const emptyCache = (): void => native.emptyCache();
export function setCacheLimit(bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`setCacheLimit: expected a byte count >= 0, got ${bytes}`);
  native.setCacheLimit(bytes);
}

/**
 * The addon's tensor table: tensors alive now, made, freed by dispose() (tidy() included), and
 * freed by the backstop after their Tensor object was garbage-collected without a dispose().
 */
export const tensorCounts = (): HandleCounts => native.handleCounts();

/**
 * libtorch's warnings so far, each distinct message once (at most 64). They are kept off the
 * terminal; CONVKIT_TORCH_WARNINGS=1 prints them as they come.
 */
export const torchWarnings = (): string[] => native.torchWarnings();
