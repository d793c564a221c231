// Quantization-aware training (fake quantization, Jacob et al. 2018). While fakeQuant() runs a
// forward pass, every convolution and linear layer computes with int8-rounded weights (symmetric,
// per output channel) on uint8-rounded inputs (affine, per tensor), and sigmoid gates give
// uint8-rounded outputs: the grids `convkit quantize` writes, so the weights learn to live on
// them. Rounding passes its gradient straight through inside the range (libtorch's
// fake_quantize ops). Per-channel symmetric rounding does not change when a channel is scaled,
// so the unfolded weights here round exactly as the BatchNorm-folded ones of the int8 file.
//
// The calls go through the addon as in a trace (trace.ts): the model's code runs unchanged.
// Input ranges are moving averages of each batch's min and max (PyTorch's
// MovingAverageMinMaxObserver), updated in training passes and fixed in eval passes.
import { native, type Handle, type Native } from './native.js';
import { isGradEnabled } from './autograd.js';
import { setFusedInference } from './fused.js';
import { uint8Params } from './quant_grid.js';

/** The running ranges of one model's quantized tensors, kept across passes. */
export class FakeQuantObservers {
  /** weight of the newest batch in the moving average (PyTorch's averaging_constant) */
  readonly momentum: number;
  readonly #ranges = new Map<string, { lo: number; hi: number }>();

  constructor(momentum = 0.01) {
    if (!(momentum > 0 && momentum <= 1)) throw new RangeError(`FakeQuantObservers: momentum must be in (0, 1], got ${momentum}`);
    this.momentum = momentum;
  }

  /** How many tensors have a range. */
  get size(): number {
    return this.#ranges.size;
  }

  /** The range of key after this batch's [lo, hi] (updated when update, else only set on first sight). */
  observe(key: string, lo: number, hi: number, update: boolean): { lo: number; hi: number } {
    const r = this.#ranges.get(key);
    if (!r) {
      const first = { lo, hi };
      this.#ranges.set(key, first);
      return first;
    }
    if (update) {
      r.lo += this.momentum * (lo - r.lo);
      r.hi += this.momentum * (hi - r.hi);
    }
    return r;
  }
}

let active = false;

/**
 * Runs the forward pass fn with fake-quantized convolutions, linear layers and sigmoids. Ranges
 * move when autograd records (a training pass) and stay put otherwise (evaluation). fn must be
 * synchronous; fused inference kernels, which would bypass the rounding, are off while it runs.
 */
export function fakeQuant<R>(observers: FakeQuantObservers, fn: () => R): R {
  if (active) return fn();
  const real = { conv2d: native.conv2d, linear: native.linear, sigmoid: native.sigmoid };
  const update = isGradEnabled();
  let sigmoids = 0;
  // intermediate handles are freed at once: the layer's result and autograd keep what they need
  const using = <T>(handles: Handle[], f: (...h: Handle[]) => T): T => {
    try {
      return f(...handles);
    } finally {
      for (const h of handles) native.dispose(h);
    }
  };
  const activation = (x: Handle, key: string): Handle => {
    const lo = using([native.amin(x, undefined, false)], (t) => native.item(t) as number);
    const hi = using([native.amax(x, undefined, false)], (t) => native.item(t) as number);
    const r = observers.observe(key, lo, hi, update);
    const q = uint8Params(r.lo, r.hi);
    return native.fakeQuantPerTensor(x, q.scale, q.zeroPoint, 0, 255);
  };
  // each step's input is freed once the next is made
  const chain = (h: Handle, ...steps: ((h: Handle) => Handle)[]): Handle => steps.reduce((prev, f) => using([prev], f), h);
  const weight = (w: Handle): Handle => {
    const dims = Array.from({ length: native.shape(w).length - 1 }, (_, i) => i + 1);
    // scale_c = max |w_c| / 127, computed without autograd
    return chain(native.detach(w), (d) => native.abs(d), (a) => native.amax(a, dims, false), (m) => native.clamp(m, 1e-12, undefined),
      (c) => native.divScalar(c, 127), (s) => native.fakeQuantPerChannel(w, s, 0, -127, 127));
  };
  // a layer's key is its weight (a parameter keeps its handle for the model's life)
  const patch: Partial<Native> = {
    conv2d: (x, w, ...rest) => using([activation(x, `in:${w}`), weight(w)], (xq, wq) => real.conv2d(xq, wq, ...rest)),
    linear: (x, w, b) => using([activation(x, `in:${w}`), weight(w)], (xq, wq) => real.linear(xq, wq, b)),
    sigmoid: (x) => using([real.sigmoid(x)], (g) => activation(g, `sigmoid:${sigmoids++}`)),
  };
  const fused = setFusedInference(false);
  active = true;
  Object.assign(native, patch);
  try {
    return fn();
  } finally {
    Object.assign(native, real);
    active = false;
    setFusedInference(fused);
  }
}
