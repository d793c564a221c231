// Clean-ups on the graph IR, each a function from a graph to a graph (in place): BatchNorm folded
// into the convolution before it, Identity nodes bypassed, dead nodes and unused initializers
// dropped, equal constants shared. Folding is done in float64 and stored in float32, as
// torch.onnx's constant folding does.
import { numel, producers, useCounts, type Graph, type Initializer, type Node } from './graph.js';

/** Conv -> BatchNormalization (the conv's output read by the BN alone) becomes one Conv. */
export function foldBatchNorm(g: Graph): Graph {
  const uses = useCounts(g);
  const made = producers(g);
  const drop = new Set<Node>();
  const f32 = (name: string): Float32Array | null => {
    const init = g.initializers.get(name);
    return init && init.dtype === 'float32' ? (init.data as Float32Array) : null;
  };
  for (const bn of g.nodes) {
    if (bn.op !== 'BatchNormalization') continue;
    const conv = made.get(bn.inputs[0]);
    if (!conv || conv.op !== 'Conv' || uses.get(bn.inputs[0]) !== 1 || g.outputs.some((o) => o.name === bn.inputs[0])) continue;
    const w = g.initializers.get(conv.inputs[1]);
    const [gamma, beta, mean, variance] = bn.inputs.slice(1).map(f32);
    const bias = conv.inputs[2] ? f32(conv.inputs[2]) : null;
    if (!w || w.dtype !== 'float32' || !gamma || !beta || !mean || !variance || (conv.inputs[2] && !bias)) continue;
    const eps = (bn.attrs.epsilon as { float: number }).float;
    const C = w.dims[0];
    const per = numel(w.dims) / C;
    const src = w.data as Float32Array;
    const wOut = new Float32Array(src.length);
    const bOut = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      const s = gamma[c] / Math.sqrt(variance[c] + eps);
      for (let i = 0; i < per; i++) wOut[c * per + i] = src[c * per + i] * s;
      bOut[c] = ((bias ? bias[c] : 0) - mean[c]) * s + beta[c];
    }
    // the folded weight keeps the conv's own name when nothing else reads it (as torch.onnx names it)
    const wName = uses.get(conv.inputs[1]) === 1 ? conv.inputs[1] : `${conv.inputs[1]}.bn_folded`;
    const plainBias = `${conv.inputs[1].replace(/weight$/, '')}bias`;
    const ownBias = conv.inputs[2] && uses.get(conv.inputs[2]) === 1 ? conv.inputs[2] : null;
    const bName = ownBias ?? (!g.initializers.has(plainBias) ? plainBias : `${plainBias}.bn_folded`);
    g.initializers.set(wName, { dtype: 'float32', dims: w.dims, data: wOut });
    g.initializers.set(bName, { dtype: 'float32', dims: [C], data: bOut });
    conv.inputs = [conv.inputs[0], wName, bName];
    conv.outputs = [bn.outputs[0]];
    drop.add(bn);
  }
  g.nodes = g.nodes.filter((n) => !drop.has(n));
  return g;
}

/** Identity nodes whose output is not a graph output: readers take the input instead. */
export function removeIdentities(g: Graph): Graph {
  const outputs = new Set(g.outputs.map((o) => o.name));
  const replace = new Map<string, string>();
  const resolve = (n: string): string => {
    let cur = n;
    while (replace.has(cur)) cur = replace.get(cur)!;
    return cur;
  };
  g.nodes = g.nodes.filter((n) => {
    if (n.op !== 'Identity' || outputs.has(n.outputs[0])) return true;
    replace.set(n.outputs[0], n.inputs[0]);
    return false;
  });
  for (const n of g.nodes) n.inputs = n.inputs.map(resolve);
  return g;
}

/** Nodes no graph output depends on, and initializers nothing reads. */
export function removeDead(g: Graph): Graph {
  const needed = new Set(g.outputs.map((o) => o.name));
  const keep: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    keep.push(n);
    for (const x of n.inputs) if (x) needed.add(x);
  }
  g.nodes = keep.reverse();
  for (const n of g.nodes) {
    // trailing optional outputs nobody reads (an LSTM's Y_h, Y_c) are left unnamed
    while (n.outputs.length > 1 && !needed.has(n.outputs[n.outputs.length - 1])) n.outputs.pop();
    n.outputs = n.outputs.map((o, k) => (k > 0 && !needed.has(o) ? '' : o));
  }
  for (const name of [...g.initializers.keys()]) if (!needed.has(name)) g.initializers.delete(name);
  const written = new Set(g.nodes.flatMap((n) => n.outputs));
  for (const name of [...g.valueInfo.keys()]) if (!written.has(name)) g.valueInfo.delete(name);
  return g;
}

/** Initializers with the same type, shape and bytes become one (the first name is kept). */
export function dedupeConstants(g: Graph): Graph {
  // grouped by type and shape first; bytes are compared only within a group, and two different
  // weight tensors differ in their first bytes, so this costs little even on large models
  const groups = new Map<string, string[]>();
  const replace = new Map<string, string>();
  for (const [name, init] of g.initializers) {
    const key = `${init.dtype}|${init.dims.join(',')}`;
    const reps = groups.get(key);
    if (!reps) { groups.set(key, [name]); continue; }
    const same = reps.find((r) => sameBytes(g.initializers.get(r)!, init));
    if (same === undefined) reps.push(name);
    else replace.set(name, same);
  }
  if (replace.size === 0) return g;
  for (const n of g.nodes) n.inputs = n.inputs.map((x) => replace.get(x) ?? x);
  for (const name of replace.keys()) g.initializers.delete(name);
  return g;
}

function sameBytes(a: Initializer, b: Initializer): boolean {
  const bytes = (i: Initializer): Buffer => Buffer.from(i.data.buffer, i.data.byteOffset, i.data.byteLength);
  return bytes(a).equals(bytes(b));
}

/** A Concat read only by another Concat on the same axis is spliced into it (Inception's nested joins): one copy instead of two. */
export function flattenConcats(g: Graph): Graph {
  const uses = useCounts(g);
  const made = producers(g);
  const drop = new Set<Node>();
  for (const n of g.nodes) {
    if (n.op !== 'Concat') continue;
    n.inputs = n.inputs.flatMap((x) => {
      const inner = made.get(x);
      if (!inner || inner.op !== 'Concat' || inner.attrs.axis !== n.attrs.axis || uses.get(x) !== 1 || drop.has(inner)) return [x];
      drop.add(inner);
      return inner.inputs;
    });
  }
  g.nodes = g.nodes.filter((n) => !drop.has(n));
  return g;
}

/** Transpose of a Transpose (read by nothing else) becomes one Transpose, or none when the two cancel. */
export function composeTransposes(g: Graph): Graph {
  const uses = useCounts(g);
  const made = producers(g);
  const outputs = new Set(g.outputs.map((o) => o.name));
  const drop = new Set<Node>();
  const replace = new Map<string, string>();
  for (const n of g.nodes) {
    if (n.op !== 'Transpose') continue;
    const inner = made.get(n.inputs[0]);
    if (!inner || inner.op !== 'Transpose' || uses.get(n.inputs[0]) !== 1 || outputs.has(n.inputs[0])) continue;
    const p1 = inner.attrs.perm as number[];
    const p2 = n.attrs.perm as number[];
    const perm = p2.map((i) => p1[i]);
    drop.add(inner);
    n.inputs = [inner.inputs[0]];
    if (perm.every((p, i) => p === i) && !outputs.has(n.outputs[0])) {
      drop.add(n);
      replace.set(n.outputs[0], n.inputs[0]);
    } else n.attrs = { ...n.attrs, perm };
  }
  g.nodes = g.nodes.filter((n) => !drop.has(n));
  for (const n of g.nodes) n.inputs = n.inputs.map((x) => replace.get(x) ?? x);
  return g;
}

/** Every clean-up, in an order where each sees the previous one's result. */
export function optimize(g: Graph): Graph {
  removeIdentities(g);
  foldBatchNorm(g);
  flattenConcats(g);
  composeTransposes(g);
  removeDead(g);
  dedupeConstants(g);
  return g;
}
