// The graph IR as an ONNX ModelProto, encoded by onnx-proto (protobufjs code generated from the
// official onnx.proto). Tensors are stored as raw little-endian bytes.
import { createRequire } from 'node:module';
import type * as OnnxProto from 'onnx-proto';
import { onnxDtype } from './lower.js';
import type { AttrValue, Dim, Graph, Initializer, ValueInfo } from './graph.js';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto') as typeof OnnxProto;
/** The part of protobufjs's Reader the metadata scan uses. */
interface ProtoReader { pos: number; len: number; uint32(): number; skip(n: number): ProtoReader; skipType(wireType: number): ProtoReader }
const { Reader } = require('protobufjs/minimal') as { Reader: { create(bytes: Uint8Array): ProtoReader } };

/** IR version 8 is the one ONNX 1.10-1.12 write for opsets up to 17; 9 from ONNX 1.13 (opset 18+). */
const irVersionFor = (opset: number): number => (opset >= 18 ? 9 : 8);

export interface ModelInfo {
  opset: number;
  producerVersion: string;
  /** metadata_props, written in this order */
  metadata: [string, string][];
  docString?: string;
}

const enc = new TextEncoder();

function attribute(name: string, v: AttrValue): OnnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: enc.encode(v) };
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) return { name, type: T.STRINGS, strings: (v as string[]).map((s) => enc.encode(s)) };
    return { name, type: T.INTS, ints: v as number[] };
  }
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.TENSOR, t: tensorProto('', v) };
}

function tensorProto(name: string, init: Initializer): OnnxProto.onnx.ITensorProto {
  const d = init.data;
  return { name, dims: init.dims, dataType: onnxDtype(init.dtype), rawData: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
}

function valueInfo(v: ValueInfo): OnnxProto.onnx.IValueInfoProto {
  const dim = v.shape.map((d: Dim) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name: v.name, type: { tensorType: { elemType: onnxDtype(v.dtype), shape: { dim } } } };
}

/** The ONNX bytes of a graph. */
export function encodeModel(g: Graph, info: ModelInfo): Uint8Array {
  const graph: OnnxProto.onnx.IGraphProto = {
    name: g.name,
    input: g.inputs.map(valueInfo),
    output: g.outputs.map(valueInfo),
    initializer: [...g.initializers].map(([name, init]) => tensorProto(name, init)),
    node: g.nodes.map((n) => ({
      name: n.name, opType: n.op, input: n.inputs, output: n.outputs,
      attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
    })),
  };
  const model: OnnxProto.onnx.IModelProto = {
    irVersion: irVersionFor(info.opset),
    opsetImport: [{ domain: '', version: info.opset }],
    producerName: 'convkit',
    producerVersion: info.producerVersion,
    docString: info.docString ?? '',
    graph,
    metadataProps: info.metadata.map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(model).finish();
}

/** The metadata_props and basic facts of an ONNX file (for tools and tests; no tensor data kept). */
export function readModelInfo(bytes: Uint8Array): { opset: number; metadata: Record<string, string>; nodes: number; ops: Record<string, number> } {
  const m = onnx.ModelProto.decode(bytes);
  const metadata: Record<string, string> = {};
  for (const p of m.metadataProps) metadata[p.key ?? ''] = p.value ?? '';
  const ops: Record<string, number> = {};
  const nodes = m.graph?.node ?? [];
  for (const n of nodes) ops[n.opType ?? ''] = (ops[n.opType ?? ''] ?? 0) + 1;
  const opset = Number(m.opsetImport.find((o) => !o.domain)?.version ?? 0);
  return { opset, metadata, nodes: nodes.length, ops };
}

// ModelProto's field numbers (onnx.proto): opset_import 8, metadata_props 14
const OPSET_IMPORT = 8;
const METADATA_PROPS = 14;

/**
 * The metadata_props and default-domain opset of an ONNX file, read without decoding its graph:
 * the top-level fields are scanned and the graph (all the weights) skipped.
 */
export function readOnnxMetadata(bytes: Uint8Array): { opset: number; metadata: Record<string, string> } {
  const r = Reader.create(bytes);
  const metadata: Record<string, string> = {};
  let opset = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if ((field === METADATA_PROPS || field === OPSET_IMPORT) && (tag & 7) === 2) {
      const len = r.uint32();
      const sub = bytes.subarray(r.pos, r.pos + len);
      r.skip(len);
      if (field === METADATA_PROPS) {
        const e = onnx.StringStringEntryProto.decode(sub);
        metadata[e.key] = e.value;
      } else {
        const o = onnx.OperatorSetIdProto.decode(sub);
        if (!o.domain) opset = Number(o.version);
      }
    } else r.skipType(tag & 7);
  }
  return { opset, metadata };
}
