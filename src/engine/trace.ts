// Recording the ops of one forward pass, for export. While traceOps runs, every call into the
// addon goes through a recorder: an op whose tensor arguments all come from constants (the
// model's parameters and buffers, tensors made inside the pass without the input) is folded on
// the spot into a constant (its real result, copied), and an op that reads the traced inputs is
// recorded with its inputs, outputs and attributes, under the module path the caller reports.
// So the exported graph is the very code that trains, run once in eval mode, and nothing else.
//
// The recorder knows an op's arguments by its signature (which positions hold tensors, the
// names of the others); an addon function with no signature that touches a traced value stops
// the trace with an error naming the op and the module, rather than guessing.
import { native, type Handle } from './native.js';
import { Tensor } from './tensor.js';
import { dtypeFromCode, type DType } from './dtype.js';

/** A non-tensor argument of a recorded op, as the addon received it. */
export type TraceAttr = number | boolean | string | number[] | null;

export interface TraceValue {
  id: number;
  shape: number[];
  dtype: DType;
  kind: 'input' | 'constant' | 'op';
  /** constants: the module path of a parameter or buffer ('layer1.0.conv1.weight'), else '' */
  name: string;
  /** constants: the value (a parameter itself, or a copy made when it was folded) */
  tensor: Tensor | null;
}

export interface TracedOp {
  /** the engine op, as the addon names it: 'conv2d', 'addScalar', 'add_', 'view', 'lstm' ... */
  op: string;
  /** the value ids of the tensor arguments in signature order; null for an absent optional tensor; lists for tensor lists */
  inputs: (number | null | number[])[];
  attrs: Record<string, TraceAttr>;
  outputs: number[];
  /** the module path whose forward made the call ('' for the top) */
  scope: string;
}

export interface Trace {
  values: TraceValue[];
  ops: TracedOp[];
  inputs: number[];
  outputs: number[];
}

/** An op that cannot be traced: names the op and where in the model it ran. */
export class TraceError extends Error {
  constructor(readonly op: string, readonly scope: string, message: string) {
    super(`${message} (engine op '${op}' in module '${scope || '<top>'}')`);
    this.name = 'TraceError';
  }
}

// Tensor positions are 'T' (a tensor), 'T?' (optional), 'T[]' (a list); the rest are attributes by name.
type Arg = 'T' | 'T?' | 'T[]' | string;
const unary = ['T'];
const SIG: Record<string, Arg[]> = {
  // elementwise
  add: ['T', 'T', 'alpha'], sub: ['T', 'T', 'alpha'], mul: ['T', 'T'], div: ['T', 'T'], pow: ['T', 'T'],
  maximum: ['T', 'T'], minimum: ['T', 'T'],
  addScalar: ['T', 'scalar'], subScalar: ['T', 'scalar'], rsubScalar: ['T', 'scalar'], mulScalar: ['T', 'scalar'], divScalar: ['T', 'scalar'], powScalar: ['T', 'scalar'],
  add_: ['T', 'T', 'alpha'], sub_: ['T', 'T', 'alpha'], mul_: ['T', 'T'], div_: ['T', 'T'],
  addScalar_: ['T', 'scalar'], mulScalar_: ['T', 'scalar'], divScalar_: ['T', 'scalar'], relu_: unary,
  neg: unary, abs: unary, exp: unary, log: unary, sqrt: unary, rsqrt: unary, reciprocal: unary, floor: unary, ceil: unary, sign: unary,
  sin: unary, cos: unary, erf: unary,
  relu: unary, relu6: unary, sigmoid: unary, tanh: unary, silu: unary, hardswish: unary, hardsigmoid: unary, mish: unary,
  hardtanh: ['T', 'min', 'max'], leakyRelu: ['T', 'negativeSlope'], elu: ['T', 'alpha'], gelu: ['T', 'approximate'],
  softplus: ['T', 'beta', 'threshold'], clamp: ['T', 'min', 'max'],
  softmax: ['T', 'dim', 'dtype'], logSoftmax: ['T', 'dim', 'dtype'],
  eq: ['T', 'T'], ne: ['T', 'T'], lt: ['T', 'T'], le: ['T', 'T'], gt: ['T', 'T'], ge: ['T', 'T'],
  eqScalar: ['T', 'scalar'], neScalar: ['T', 'scalar'], ltScalar: ['T', 'scalar'], leScalar: ['T', 'scalar'], gtScalar: ['T', 'scalar'], geScalar: ['T', 'scalar'],
  where: ['T', 'T', 'T'], maskedFill: ['T', 'T', 'value'], logicalNot: unary,
  // conversion and shape
  to: ['T', 'device', 'dtype'], contiguous: ['T', 'channelsLast'], clone: unary, detach: unary,
  reshape: ['T', 'shape'], view: ['T', 'shape'], permute: ['T', 'order'], transpose: ['T', 'dim0', 'dim1'],
  squeeze: ['T', 'dim'], unsqueeze: ['T', 'dim'], expand: ['T', 'shape'], flatten: ['T', 'startDim', 'endDim'], unflatten: ['T', 'dim', 'sizes'],
  narrow: ['T', 'dim', 'start', 'length'], slice: ['T', 'dim', 'start', 'end', 'step'], select: ['T', 'dim', 'index'],
  chunk: ['T', 'chunks', 'dim'], split: ['T', 'splitSize', 'dim'], splitWithSizes: ['T', 'sizes', 'dim'],
  cat: ['T[]', 'dim'], stack: ['T[]', 'dim'], repeat: ['T', 'times'], flip: ['T', 'dims'],
  gather: ['T', 'dim', 'T'], indexSelect: ['T', 'dim', 'T'],
  // reductions
  sum: ['T', 'dims', 'keepdim', 'dtype'], mean: ['T', 'dims', 'keepdim'], amax: ['T', 'dims', 'keepdim'], amin: ['T', 'dims', 'keepdim'],
  argmax: ['T', 'dim', 'keepdim'],
  // layers
  matmul: ['T', 'T'], mm: ['T', 'T'], bmm: ['T', 'T'], linear: ['T', 'T', 'T?'],
  conv2d: ['T', 'T', 'T?', 'stride', 'padding', 'dilation', 'groups'], conv1d: ['T', 'T', 'T?', 'stride', 'padding', 'dilation', 'groups'],
  batchNorm: ['T', 'T?', 'T?', 'T?', 'T?', 'training', 'momentum', 'eps', 'relu', 'T?'], layerNorm: ['T', 'normalizedShape', 'T?', 'T?', 'eps'],
  groupNorm: ['T', 'numGroups', 'T?', 'T?', 'eps'],
  maxPool2d: ['T', 'kernel', 'stride', 'padding', 'dilation', 'ceilMode'], avgPool2d: ['T', 'kernel', 'stride', 'padding', 'ceilMode', 'countIncludePad'],
  adaptiveAvgPool2d: ['T', 'outputSize'], adaptiveMaxPool2d: ['T', 'outputSize'],
  pad: ['T', 'padding', 'mode', 'value'], interpolate: ['T', 'size', 'mode', 'alignCorners', 'antialias'],
  dropout: ['T', 'p', 'training'], featureDropout: ['T', 'p', 'training'], embedding: ['T', 'T', 'paddingIdx'],
  lstm: ['T', 'T[]', 'T[]', 'hasBiases', 'numLayers', 'dropout', 'training', 'bidirectional', 'batchFirst'],
  gru: ['T', 'T', 'T[]', 'hasBiases', 'numLayers', 'dropout', 'training', 'bidirectional', 'batchFirst'],
  rnnTanh: ['T', 'T', 'T[]', 'hasBiases', 'numLayers', 'dropout', 'training', 'bidirectional', 'batchFirst'],
  rnnRelu: ['T', 'T', 'T[]', 'hasBiases', 'numLayers', 'dropout', 'training', 'bidirectional', 'batchFirst'],
  // creation: no tensor arguments, always folded
  zeros: ['shape', 'dtype', 'device'], ones: ['shape', 'dtype', 'device'], full: ['shape', 'value', 'dtype', 'device'],
  empty: ['shape', 'dtype', 'device'], arange: ['start', 'end', 'step', 'dtype', 'device'], eye: ['n', 'dtype', 'device'],
  fromBuffer: ['data', 'shape', 'dtype'],
};

/** Addon functions that make no tensor: passed through. */
const PASS = new Set([
  'dispose', 'collect', 'isDisposed', 'handleCounts', 'shape', 'strides', 'dtype', 'device', 'numel', 'isContiguous', 'isChannelsLast',
  'sharesStorage', 'requiresGrad', 'setRequiresGrad', 'isLeaf', 'gradFn', 'isGradEnabled', 'setGradEnabled', 'setAutocast',
  'torchWarnings', 'getNumThreads', 'setNumThreads',
]);
/** Addon functions that read a tensor's values back into JS: fine on constants, data-dependent control flow on traced values. */
const READS = new Set(['item', 'toBuffer', 'alias', 'allclose', 'equal']);
/** Random draws: a traced forward must not depend on them (eval mode has none). */
const RANDOM = new Set(['rand', 'randn', 'randint', 'randperm', 'bernoulli', 'multinomial', 'normal_', 'uniform_']);

let active = false;

export interface TraceOptions {
  /** the traced inputs, in order */
  inputs: Tensor[];
  /** named constants: parameters and buffers by module path */
  constants: [string, Tensor][];
  /** the module path now running (the caller keeps it while fn runs) */
  scope: () => string;
}

/**
 * Runs fn once and records the ops that read opts.inputs. fn must be synchronous and must not
 * dispose the constants; the result's tensors are the trace's outputs. Constants folded during
 * the pass are copies: dispose them with disposeTrace when done.
 */
export function traceOps<R>(fn: () => R, opts: TraceOptions): { result: R; trace: Trace } {
  if (active) throw new Error('traceOps: a trace is already running');
  const values: TraceValue[] = [];
  const ops: TracedOp[] = [];
  const byHandle = new Map<number, number>();
  const folded: Tensor[] = [];
  const newValue = (h: Handle, kind: TraceValue['kind'], name = '', tensor: Tensor | null = null): number => {
    const id = values.length;
    values.push({ id, shape: real.shape(h), dtype: dtypeFromCode(real.dtype(h)), kind, name, tensor });
    byHandle.set(h, id);
    return id;
  };
  const isTraced = (h: unknown): boolean => typeof h === 'number' && byHandle.has(h) && values[byHandle.get(h)!].kind !== 'constant';
  const touchesTraced = (args: unknown[]): boolean => args.some((a) => isTraced(a) || (Array.isArray(a) && a.some(isTraced)));
  const constantOf = (h: Handle): number => {
    const id = byHandle.get(h);
    if (id !== undefined) return id;
    // made before the trace and not a registered parameter or buffer: kept as an unnamed constant
    const copy = new Tensor(real.clone(h)).keep();
    folded.push(copy);
    return newValue(h, 'constant', '', copy);
  };
  const fold = (h: Handle): number => {
    const copy = new Tensor(real.clone(h)).keep();
    folded.push(copy);
    const id = values.length;
    values.push({ id, shape: copy.shape, dtype: copy.dtype, kind: 'constant', name: '', tensor: copy });
    byHandle.set(h, id);
    return id;
  };

  const real = { ...native };
  const wrapped: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(native) as [string, unknown][]) {
    if (typeof f !== 'function' || PASS.has(name)) continue;
    const orig = f as (...a: unknown[]) => unknown;
    wrapped[name] = (...args: unknown[]): unknown => {
      if (READS.has(name) && touchesTraced(args)) {
        throw new TraceError(name, opts.scope(), 'the forward pass reads the values of a tensor computed from the input (data-dependent control flow), which a static graph cannot express');
      }
      if (RANDOM.has(name)) throw new TraceError(name, opts.scope(), 'the forward pass draws random numbers (is the model in eval mode?)');
      const sig = SIG[name];
      const result = orig(...args);
      if (READS.has(name)) return result;
      if (!sig) {
        if (touchesTraced(args)) throw new TraceError(name, opts.scope(), 'no export mapping for this op');
        return result;
      }
      record(name, sig, args, result);
      return result;
    };
  }

  function record(name: string, sig: Arg[], args: unknown[], result: unknown): void {
    const outHandles: Handle[] = result === undefined ? [args[0] as Handle] : Array.isArray(result) ? (result as Handle[]) : [result as Handle];
    if (!touchesTraced(args)) {
      for (const h of outHandles) fold(h);
      return;
    }
    const inputs: TracedOp['inputs'] = [];
    const attrs: Record<string, TraceAttr> = {};
    sig.forEach((kind, i) => {
      const a = args[i];
      if (kind === 'T') inputs.push(constantOrTraced(a as Handle));
      else if (kind === 'T?') inputs.push(a === undefined || a === null ? null : constantOrTraced(a as Handle));
      else if (kind === 'T[]') inputs.push((a as Handle[]).map(constantOrTraced));
      else attrs[kind] = a === undefined ? null : (a as TraceAttr);
    });
    const outputs = outHandles.map((h) => newValue(h, 'op'));
    ops.push({ op: name, inputs, attrs, outputs, scope: opts.scope() });
  }
  const constantOrTraced = (h: Handle): number => (isTraced(h) ? byHandle.get(h)! : constantOf(h));

  const inputs = opts.inputs.map((t) => newValue(t.handle, 'input'));
  for (const [name, t] of opts.constants) if (!byHandle.has(t.handle)) newValue(t.handle, 'constant', name, t);

  active = true;
  Object.assign(native, wrapped);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    for (const t of folded) t.dispose();
    throw e;
  } finally {
    Object.assign(native, real);
    active = false;
  }
  const outputs: number[] = [];
  const collectOut = (v: unknown): void => {
    if (v instanceof Tensor) {
      const id = byHandle.get(v.handle);
      if (id === undefined) throw new Error('traceOps: the forward pass returned a tensor the trace did not see made');
      outputs.push(id);
    } else if (Array.isArray(v)) v.forEach(collectOut);
  };
  collectOut(result);
  return { result, trace: { values, ops, inputs, outputs } };
}

/** Frees the constants a trace copied (named parameters and buffers are the model's and stay). */
export function disposeTrace(trace: Trace): void {
  for (const v of trace.values) if (v.kind === 'constant' && v.name === '' && v.tensor) v.tensor.dispose();
}
