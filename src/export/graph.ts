// The graph IR that export produces and back ends consume (the ONNX writer today; a fused
// inference path and quantization later): nodes in topological order with ONNX op names and
// attributes, tensors by name, named initializers, and the shapes of the graph's inputs and
// outputs ('batch' or another string for a symbolic dimension). Plain data, no libtorch: a
// graph outlives the model it was traced from.

export type ElemType = 'float32' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';
export type Dim = number | string;

export type AttrValue = number | string | number[] | string[] | { float: number } | { floats: number[] } | Initializer;

export interface Node {
  /** ONNX operator type: 'Conv', 'Gemm', 'LSTM' ... (default domain) */
  op: string;
  name: string;
  /** tensor names; '' for an absent optional input */
  inputs: string[];
  outputs: string[];
  /** integers and integer lists as numbers; floats wrapped ({ float }) so a 1.0 stays a float */
  attrs: Record<string, AttrValue>;
  /** the module path whose forward made the op, for messages and for the node name */
  scope: string;
}

export interface Initializer {
  dtype: ElemType;
  dims: number[];
  /** elements, little-endian, in the dtype's layout */
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;
}

export interface ValueInfo {
  name: string;
  dtype: ElemType;
  shape: Dim[];
}

export interface Graph {
  name: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: Node[];
  initializers: Map<string, Initializer>;
  /** the type and shape of every tensor the trace saw ('batch' where the batch is), by name */
  valueInfo: Map<string, ValueInfo>;
}

export const floatAttr = (v: number): { float: number } => ({ float: v });

/** The names a node list reads, counted. */
export function useCounts(g: Graph): Map<string, number> {
  const uses = new Map<string, number>();
  const use = (n: string): void => { if (n) uses.set(n, (uses.get(n) ?? 0) + 1); };
  for (const node of g.nodes) node.inputs.forEach(use);
  for (const o of g.outputs) use(o.name);
  return uses;
}

/** The node that writes each tensor. */
export function producers(g: Graph): Map<string, Node> {
  const out = new Map<string, Node>();
  for (const node of g.nodes) for (const o of node.outputs) if (o) out.set(o, node);
  return out;
}

/** Op type -> node count, for reports and comparisons. */
export function opHistogram(g: Graph): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of g.nodes) h[n.op] = (h[n.op] ?? 0) + 1;
  return h;
}

export function numel(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
