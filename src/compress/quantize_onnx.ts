// An ONNX file read back into export's graph IR, so that `convkit quantize model.onnx` rewrites
// the same Graph a checkpoint's trace gives; and the calibration model: the float graph with every
// activation to observe made a graph output, for ONNX Runtime to hand back.
import { createRequire } from 'node:module';
import type * as OnnxProto from 'onnx-proto';
import type { AttrValue, ElemType, Graph, Initializer, Node, ValueInfo } from '../export/graph.js';
import { encodeModel } from '../export/onnx.js';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto') as typeof OnnxProto;

type Long = { toNumber(): number };
const num = (v: number | Long | null | undefined): number => (v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());

const ELEM: Record<number, ElemType | undefined> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };
const dec = new TextDecoder();

export interface OnnxModel {
  graph: Graph;
  opset: number;
  metadata: [string, string][];
}

function elemType(file: string, t: number | null | undefined, what: string): ElemType {
  const e = ELEM[t ?? 0];
  if (!e) throw new Error(`${file}: ${what} has ONNX element type ${String(t)}, which convkit's quantizer does not read`);
  return e;
}

function initializer(file: string, t: OnnxProto.onnx.ITensorProto): Initializer {
  const dtype = elemType(file, t.dataType, `tensor '${t.name ?? ''}'`);
  const dims = (t.dims ?? []).map(num);
  const n = dims.reduce((a, b) => a * b, 1);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) throw new Error(`${file}: tensor '${t.name ?? ''}' is stored in an external file, which convkit's quantizer does not read`);
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const copy = (bytesPer: number): ArrayBuffer => {
    if (raw!.length !== n * bytesPer) throw new Error(`${file}: tensor '${t.name ?? ''}' holds ${raw!.length} bytes for dims [${dims.join(', ')}] of ${dtype}`);
    // a copy: protobufjs hands out views into the file (a Buffer, whose slice() is a view too)
    return new Uint8Array(raw!).buffer;
  };
  switch (dtype) {
    case 'float32': return { dtype, dims, data: raw ? new Float32Array(copy(4)) : Float32Array.from(t.floatData ?? []) };
    case 'float64': return { dtype, dims, data: raw ? new Float64Array(copy(8)) : Float64Array.from(t.doubleData ?? []) };
    case 'int64': return { dtype, dims, data: raw ? new BigInt64Array(copy(8)) : BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(num(v)))) };
    case 'int32': return { dtype, dims, data: raw ? new Int32Array(copy(4)) : Int32Array.from(t.int32Data ?? []) };
    case 'int8': return { dtype, dims, data: raw ? new Int8Array(copy(1)) : Int8Array.from(t.int32Data ?? []) };
    case 'uint8': case 'bool': return { dtype, dims, data: raw ? new Uint8Array(copy(1)) : Uint8Array.from(t.int32Data ?? []) };
  }
}

function attribute(file: string, a: OnnxProto.onnx.IAttributeProto): AttrValue {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case T.INT: return num(a.i);
    case T.FLOAT: return { float: a.f ?? 0 };
    case T.STRING: return dec.decode(a.s ?? new Uint8Array());
    case T.INTS: return (a.ints ?? []).map(num);
    case T.FLOATS: return { floats: [...(a.floats ?? [])] };
    case T.STRINGS: return (a.strings ?? []).map((s) => dec.decode(s));
    case T.TENSOR: return initializer(file, a.t ?? {});
    default: throw new Error(`${file}: attribute '${a.name ?? ''}' has a type (${String(a.type)}) convkit's quantizer does not read`);
  }
}

function valueInfo(file: string, v: OnnxProto.onnx.IValueInfoProto): ValueInfo {
  const tt = v.type?.tensorType;
  if (!tt) throw new Error(`${file}: graph input/output '${v.name ?? ''}' is not a tensor`);
  return {
    name: v.name ?? '', dtype: elemType(file, tt.elemType, `'${v.name ?? ''}'`),
    shape: (tt.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== null && d.dimValue !== undefined ? num(d.dimValue) : '?')),
  };
}

/** An ONNX file's graph as convkit's IR (default domain only), its opset and metadata_props. */
export function readOnnxGraph(file: string, bytes: Uint8Array): OnnxModel {
  let m: OnnxProto.onnx.ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${file} is not an ONNX model (${(e as Error).message})`, { cause: e });
  }
  const g = m.graph;
  if (!g) throw new Error(`${file} is not an ONNX model (no graph in it)`);
  const opset = num(m.opsetImport.find((o) => !o.domain)?.version);
  if (!opset) throw new Error(`${file} is not an ONNX model (no opset_import in it)`);
  if (opset < 13) throw new Error(`${file}: opset ${opset}; per-channel QuantizeLinear/DequantizeLinear need opset 13 or later (export with convkit export, opset 17)`);
  const initializers = new Map<string, Initializer>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', initializer(file, t));
  const nodes: Node[] = (g.node ?? []).map((n, i) => {
    if (n.domain && n.domain !== 'ai.onnx') throw new Error(`${file}: node '${n.name ?? i}' is in domain '${n.domain}'; convkit quantizes default-domain graphs only`);
    const attrs: Record<string, AttrValue> = {};
    for (const a of n.attribute ?? []) attrs[a.name ?? ''] = attribute(file, a);
    const name = n.name || `${n.opType ?? 'node'}_${i}`;
    // convkit's exporter names a node /module/path/Op_k: the module path comes back as its scope
    const scope = /^\/(.+)\/[A-Za-z]+_\d+$/.exec(name)?.[1].replace(/\//g, '.') ?? '';
    return { op: n.opType ?? '', name, inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs, scope };
  });
  const inputs = (g.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map((v) => valueInfo(file, v));
  const outputs = (g.output ?? []).map((v) => valueInfo(file, v));
  const vi = new Map<string, ValueInfo>();
  for (const v of [...(g.valueInfo ?? []), ...(g.input ?? []), ...(g.output ?? [])]) {
    try {
      const info = valueInfo(file, v);
      vi.set(info.name, info);
    } catch {
      // a non-tensor value info says nothing the quantizer needs
    }
  }
  return {
    graph: { name: g.name ?? 'graph', inputs, outputs, nodes, initializers, valueInfo: vi },
    opset,
    metadata: m.metadataProps.map((p) => [p.key ?? '', p.value ?? ''] as [string, string]),
  };
}

/**
 * The float graph with `observe` added as outputs (float32, shape left to the runtime): what ONNX
 * Runtime runs to hand back every activation the quantizer calibrates.
 */
export function calibrationModel(g: Graph, opset: number, observe: string[]): Uint8Array {
  const m = onnx.ModelProto.decode(encodeModel(g, { opset, producerVersion: 'calibration', metadata: [] }));
  const graph = m.graph!;
  graph.output ??= [];
  const have = new Set(g.outputs.map((o) => o.name));
  for (const name of observe) {
    if (!have.has(name)) graph.output.push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1 } } }));
  }
  return onnx.ModelProto.encode(m).finish();
}
