// The float graph rewritten in QDQ form, the form ONNX Runtime's quantizer writes and its graph
// optimiser fuses into integer kernels (QLinearConv, QGemm, QLinearAdd, ...): every activation a
// quantized node reads or writes goes through QuantizeLinear -> DequantizeLinear (uint8, per
// tensor), weights are stored int8 per output channel behind a DequantizeLinear, biases int32 at
// input scale x weight scale. A ReLU (or a Clip from 0) right after a quantized node is dropped
// and its output's range used instead: uint8 with zero point 0 clamps at 0 by itself, which is
// what ONNX Runtime's quantizer does too. Ops that only move values (MaxPool, Flatten, Reshape,
// ...) take their input's parameters, so the runtime runs them on uint8 directly.
import { removeDead, type Graph, type Initializer, type Node } from '../export/index.js';
import { quantizeBias, quantizePerChannel, uint8Params, type QParams, type Range } from './quantize_calib.js';

/** Ops with weights: quantized when the weight is an initializer. */
export const WEIGHTED_OPS = ['Conv', 'Gemm', 'MatMul'] as const;
/** Ops on activations only, each with its own output range. */
const ACTIVATION_OPS = new Set(['Add', 'Mul', 'Concat', 'GlobalAveragePool', 'AveragePool', 'Sigmoid']);
/** Ops that move or select values: the output keeps the input's quantization. */
const PASSTHROUGH_OPS = new Set(['MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze']);

export const SKIP_RULES = ['first', 'last', 'depthwise', 'se'] as const;
export type SkipRule = (typeof SKIP_RULES)[number];

export interface QuantizedLayer {
  /** the module path (a traced graph), else the ONNX node name */
  name: string;
  op: string;
  node: string;
}

export interface FloatLayer extends QuantizedLayer {
  /** why it stays in float: a --skip rule, 'name', 'sensitivity', or 'weight not constant' */
  reason: string;
}

export interface QdqOptions {
  /** node names left in float, with the reason */
  skip?: Map<string, string>;
  /** when given, only these weighted nodes are quantized and no activation op (the sensitivity scan) */
  only?: Set<string>;
}

export interface QdqResult {
  graph: Graph;
  quantized: QuantizedLayer[];
  float: FloatLayer[];
}

export const layerName = (n: Node): string => n.scope || n.name;

function weightOf(g: Graph, n: Node): Initializer | null {
  const w = g.initializers.get(n.inputs[1] ?? '');
  if (!w || w.dtype !== 'float32') return null;
  if (n.op === 'MatMul' && w.dims.length !== 2) return null;
  return w;
}

/** The weighted nodes in graph order (the layers --skip, --sensitivity and the report speak of). */
export function weightedNodes(g: Graph): Node[] {
  return g.nodes.filter((n) => (WEIGHTED_OPS as readonly string[]).includes(n.op));
}

/** Tensors whose height and width are 1: a global pool's output and what 1x1 ops make of it (SE branches). */
function pointwiseTensors(g: Graph): Set<string> {
  const s = new Set<string>();
  for (const n of g.nodes) {
    const ins = n.inputs.filter((x) => x && !g.initializers.has(x));
    if (n.op === 'GlobalAveragePool' || (n.op === 'ReduceMean' && n.attrs.keepdims !== 0)) s.add(n.outputs[0]);
    else if (ins.length > 0 && ins.every((x) => s.has(x)) && !['Flatten', 'Reshape', 'Gemm', 'MatMul', 'Squeeze'].includes(n.op)) for (const o of n.outputs) s.add(o);
  }
  return s;
}

/** Node name -> the rule that leaves it in float. Names that are not rules match layer or node names. */
export function skipsFor(g: Graph, items: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const weighted = weightedNodes(g);
  for (const item of items) {
    switch (item) {
      case 'first': if (weighted.length) out.set(weighted[0].name, 'first'); break;
      case 'last': if (weighted.length) out.set(weighted[weighted.length - 1].name, 'last'); break;
      case 'depthwise':
        for (const n of weighted) {
          const w = g.initializers.get(n.inputs[1] ?? '');
          const group = typeof n.attrs.group === 'number' ? n.attrs.group : 1;
          if (n.op === 'Conv' && w && group > 1 && w.dims[1] === 1 && group === w.dims[0]) out.set(n.name, 'depthwise');
        }
        break;
      case 'se': {
        const pw = pointwiseTensors(g);
        for (const n of g.nodes) {
          const ins = n.inputs.filter((x) => x && !g.initializers.has(x));
          // the two 1x1 convolutions on the pooled vector, and the gate that scales the feature map
          if ((n.op === 'Conv' && pw.has(ins[0])) || (n.op === 'Mul' && ins.length === 2 && pw.has(ins[0]) !== pw.has(ins[1]))) out.set(n.name, 'se');
        }
        break;
      }
      default: {
        const hits = weighted.filter((n) => layerName(n) === item || n.name === item);
        if (hits.length === 0) {
          throw new Error(`--skip: '${item}' is neither a rule (${SKIP_RULES.join(', ')}) nor a layer of the model (layers: ${weighted.slice(0, 8).map(layerName).join(', ')}${weighted.length > 8 ? ', ...' : ''})`);
        }
        for (const n of hits) out.set(n.name, 'name');
      }
    }
  }
  return out;
}

const scalar = (dtype: 'float32' | 'uint8', v: number): Initializer =>
  ({ dtype, dims: [], data: dtype === 'float32' ? Float32Array.of(v) : Uint8Array.of(v) });

/**
 * The QDQ graph of a float graph (BatchNorm already folded) given the calibrated range of every
 * activation a quantized node touches. The input graph is not modified.
 */
export function toQdq(src: Graph, ranges: Map<string, Range>, o: QdqOptions = {}): QdqResult {
  const skip = o.skip ?? new Map<string, string>();
  const inits = new Map(src.initializers);
  const isInit = (t: string): boolean => inits.has(t);
  const floatAct = (t: string): boolean => !!t && !isInit(t);
  const quantized: QuantizedLayer[] = [];
  const float: FloatLayer[] = [];

  // which nodes compute in int8: the weighted layers not skipped, and an activation op when every
  // input already comes out of an integer kernel (a residual Add of two convolutions, SiLU's
  // Sigmoid and Mul), so that it extends an integer run instead of adding a Q/DQ pair around float
  // arithmetic (GELU's Mul beside its Erf) or quantizing the output of a layer left in float
  const qnodes = new Set<Node>();
  const integer = new Set<string>(src.inputs.map((v) => v.name));
  for (const n of src.nodes) {
    if ((WEIGHTED_OPS as readonly string[]).includes(n.op)) {
      const layer = { name: layerName(n), op: n.op, node: n.name };
      const reason = skip.get(n.name) ?? (o.only && !o.only.has(n.name) ? 'not scanned' : !weightOf(src, n) ? 'weight not constant' : null);
      if (reason) { if (reason !== 'not scanned') float.push({ ...layer, reason }); continue; }
      qnodes.add(n);
      quantized.push(layer);
      integer.add(n.outputs[0]);
    } else if (ACTIVATION_OPS.has(n.op) && !o.only && !skip.has(n.name)) {
      const acts = n.inputs.filter((x) => x);
      if (acts.length > 0 && acts.every((x) => floatAct(x) && integer.has(x)) && n.outputs.length === 1) {
        qnodes.add(n);
        integer.add(n.outputs[0]);
      }
    } else if ((PASSTHROUGH_OPS.has(n.op) || n.op === 'Relu') && integer.has(n.inputs[0])) for (const x of n.outputs) integer.add(x);
  }

  // a ReLU or Clip(0, ...) right after a quantized node folds into its output's quantization
  const uses = new Map<string, number>();
  for (const n of src.nodes) for (const x of n.inputs) if (x) uses.set(x, (uses.get(x) ?? 0) + 1);
  const graphOutputs = new Set(src.outputs.map((v) => v.name));
  const producer = new Map<string, Node>();
  for (const n of src.nodes) for (const x of n.outputs) producer.set(x, n);
  const rename = new Map<string, string>();
  const dropped = new Set<Node>();
  for (const n of src.nodes) {
    const clipFromZero = n.op === 'Clip' && (() => {
      const lo = inits.get(n.inputs[1] ?? '');
      return !!lo && lo.data.length === 1 && Number(lo.data[0]) === 0;
    })();
    if (n.op !== 'Relu' && !clipFromZero) continue;
    const p = producer.get(n.inputs[0]);
    const r = ranges.get(n.outputs[0]);
    // (a model output stays float, so a ReLU writing one must stay too)
    if (!p || !qnodes.has(p) || uses.get(n.inputs[0]) !== 1 || graphOutputs.has(n.inputs[0]) || graphOutputs.has(n.outputs[0]) || !r || r.lo !== 0) continue;
    rename.set(n.inputs[0], n.outputs[0]);
    dropped.add(n);
  }
  const nodes = src.nodes.filter((n) => !dropped.has(n)).map((n) => ({ ...n, inputs: [...n.inputs], outputs: n.outputs.map((x) => rename.get(x) ?? x) }));
  const qset = new Set<string>([...qnodes].map((n) => n.name));

  // the activations that are quantized, and their parameters
  const params = new Map<string, QParams>();
  const need = (t: string): void => {
    if (params.has(t)) return;
    const r = ranges.get(t);
    if (!r) throw new Error(`quantize: no calibrated range for tensor '${t}'`);
    params.set(t, uint8Params(r));
  };
  for (const n of nodes) {
    if (!qset.has(n.name)) continue;
    const acts = (WEIGHTED_OPS as readonly string[]).includes(n.op) ? [n.inputs[0]] : n.inputs.filter(floatAct);
    for (const x of acts) need(x);
    // the model's outputs stay float: the runtime's integer kernels write float there (QGemm,
    // QLinearConv with a float output), and logits are the one tensor where clipping the tail (any
    // method but minmax) changes the answer
    if (!graphOutputs.has(n.outputs[0])) need(n.outputs[0]);
  }
  for (const n of nodes) {
    if (PASSTHROUGH_OPS.has(n.op) && params.has(n.inputs[0]) && n.outputs.length === 1) {
      params.set(n.outputs[0], params.get(n.inputs[0])!);
      qset.add(n.name);
    }
  }

  // emit: Q/DQ after each quantized tensor's producer, consumers read the dequantized copy
  const out: Node[] = [];
  const dqName = new Map<string, string>();
  const outputRename = new Map<string, string>();
  const qdq = (t: string, scope: string): void => {
    const q = params.get(t)!;
    const scale = `${t}_scale`, zp = `${t}_zero_point`;
    inits.set(scale, scalar('float32', q.scale));
    inits.set(zp, scalar('uint8', q.zeroPoint));
    // a graph output keeps its name: the producer writes a float copy that is quantized into it
    const from = graphOutputs.has(t) ? outputRename.get(t)! : t;
    const to = graphOutputs.has(t) ? t : `${t}_dequantized`;
    out.push({ op: 'QuantizeLinear', name: `${t}_QuantizeLinear`, inputs: [from, scale, zp], outputs: [`${t}_quantized`], attrs: {}, scope });
    out.push({ op: 'DequantizeLinear', name: `${t}_DequantizeLinear`, inputs: [`${t}_quantized`, scale, zp], outputs: [to], attrs: {}, scope });
    dqName.set(t, to);
  };
  for (const v of src.inputs) if (params.has(v.name)) qdq(v.name, '');
  const wq = new Map<string, { scales: Float32Array; dq: string }>();
  for (const n of nodes) {
    const orig = n.inputs;
    n.inputs = n.inputs.map((x) => dqName.get(x) ?? x);
    if (qset.has(n.name) && (WEIGHTED_OPS as readonly string[]).includes(n.op)) {
      const wName = orig[1];
      const w = inits.get(wName)!;
      // the output-channel axis: Conv [O, I/g, kh, kw] and Gemm with transB [N, K] on axis 0; MatMul and Gemm without transB [K, N] on 1
      const axis = n.op === 'Conv' || (n.op === 'Gemm' && n.attrs.transB === 1) ? 0 : 1;
      let entry = wq.get(`${wName}:${axis}`);
      if (!entry) {
        const { q, scales } = quantizePerChannel(w.data as Float32Array, w.dims, axis);
        const base = `${wName}_${axis}`;
        inits.set(`${base}_quantized`, { dtype: 'int8', dims: w.dims, data: q });
        inits.set(`${base}_scale`, { dtype: 'float32', dims: [scales.length], data: scales });
        inits.set(`${base}_zero_point`, { dtype: 'int8', dims: [scales.length], data: new Int8Array(scales.length) });
        entry = { scales, dq: `${base}_dequantized` };
        out.push({ op: 'DequantizeLinear', name: `${base}_DequantizeLinear`, inputs: [`${base}_quantized`, `${base}_scale`, `${base}_zero_point`], outputs: [entry.dq], attrs: { axis }, scope: n.scope });
        wq.set(`${wName}:${axis}`, entry);
      }
      n.inputs[1] = entry.dq;
      const bName = n.inputs[2];
      const b = bName ? inits.get(bName) : undefined;
      if (b && b.dtype === 'float32' && b.dims.length === 1 && b.dims[0] === entry.scales.length) {
        const xq = params.get(orig[0])!;
        const { q, scales } = quantizeBias(b.data as Float32Array, xq.scale, entry.scales);
        const base = `${bName}_${n.name}`;
        inits.set(`${base}_quantized`, { dtype: 'int32', dims: b.dims, data: q });
        inits.set(`${base}_scale`, { dtype: 'float32', dims: b.dims, data: scales });
        inits.set(`${base}_zero_point`, { dtype: 'int32', dims: b.dims, data: new Int32Array(b.dims[0]) });
        out.push({ op: 'DequantizeLinear', name: `${base}_DequantizeLinear`, inputs: [`${base}_quantized`, `${base}_scale`, `${base}_zero_point`], outputs: [`${base}_dequantized`], attrs: { axis: 0 }, scope: n.scope });
        n.inputs[2] = `${base}_dequantized`;
      }
    }
    for (let k = 0; k < n.outputs.length; k++) {
      const t = n.outputs[k];
      if (!params.has(t) || !qset.has(n.name)) continue;
      if (graphOutputs.has(t)) { n.outputs[k] = `${t}_float`; outputRename.set(t, `${t}_float`); }
    }
    out.push(n);
    for (const t of n.outputs) {
      const orig = [...outputRename].find(([, v]) => v === t)?.[0] ?? t;
      if (params.has(orig) && !dqName.has(orig) && (qset.has(n.name) || !graphOutputs.has(orig))) qdq(orig, n.scope);
    }
  }
  const g: Graph = { name: src.name, inputs: src.inputs, outputs: src.outputs, nodes: out, initializers: inits, valueInfo: new Map(src.valueInfo) };
  return { graph: removeDead(g), quantized, float };
}
