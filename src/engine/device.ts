// The default device of tensor creation, and shape-only execution on the 'meta' device.
//
// withDevice('meta', () => resnet50()) builds a model whose parameters have shapes and dtypes but
// no storage (PyTorch's `with torch.device('meta'):`), and a forward pass inside the same scope
// computes only output shapes: counting a model's parameters and multiply-adds then costs neither
// memory nor arithmetic. libtorch 1.13 has Meta kernels for most ops but not for convolution, the
// normalisations, the relu-family clamps or embedding lookup; for those the engine supplies the
// output shape itself (functional.ts asks `shapeOnly(x)` before calling the kernel).
import { native } from './native.js';
import { Tensor } from './tensor.js';

let current: string | undefined;

/**
 * Runs fn with every creation function that is not given a device creating on `device`.
 * fn must be synchronous: the scope ends when it returns.
 */
export function withDevice<T>(device: string, fn: () => T): T {
  const previous = current;
  current = device;
  try {
    return fn();
  } finally {
    current = previous;
  }
}

/** The device creation functions use when none is given: withDevice's, else the CPU. */
export const defaultDevice = (): string | undefined => current;

/** True when x has no storage and the caller should compute its result's shape, not its values. */
export const shapeOnly = (x: Tensor): boolean => current === 'meta' && x.device === 'meta';

/** A storage-free tensor of x's dtype: the result of an op that only needs a shape. */
export function metaLike(x: Tensor, shape: number[] = x.shape): Tensor {
  return new Tensor(native.empty(shape, native.dtype(x.handle), 'meta'));
}

/** The output of a convolution of x [N, C, *spatial] by weight [O, C / groups, *kernel], shape only. */
export function metaConv(op: string, x: Tensor, weight: Tensor, stride: number[], padding: number[] | 'same' | 'valid', dilation: number[], groups: number): Tensor {
  const [n, c, ...spatial] = x.shape;
  const [o, cPerGroup, ...kernel] = weight.shape;
  if (spatial.length !== kernel.length || c !== cPerGroup * groups) {
    throw new Error(`${op}: input [${x.shape.join(', ')}] does not fit weight [${weight.shape.join(', ')}] with groups=${groups}`);
  }
  const out = spatial.map((size, i) => {
    const reach = dilation[i] * (kernel[i] - 1) + 1;
    if (padding === 'same') return size;
    const pad = padding === 'valid' ? 0 : padding[i];
    const len = Math.floor((size + 2 * pad - reach) / stride[i]) + 1;
    if (len < 1) throw new Error(`${op}: input [${x.shape.join(', ')}] is smaller than the kernel [${kernel.join(', ')}] (dilation ${dilation[i]}, padding ${pad})`);
    return len;
  });
  return metaLike(x, [n, o, ...out]);
}

/** Embedding lookup of ids [*] in weight [V, D], shape only: [*, D]. */
export const metaEmbedding = (ids: Tensor, weight: Tensor): Tensor => metaLike(weight, [...ids.shape, weight.size(1)]);
