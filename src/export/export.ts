// exportOnnx: trace one eval-mode forward of a model, lower it to ONNX's operators, clean the
// graph, and write it with the metadata a predictor needs (classes, input size, normalisation).
import { enableGrad, tidy, type Tensor } from '../engine/index.js';
import { disposeTrace, traceOps, TraceError } from '../engine/trace.js';
import { writeFileAtomic } from '../io/index.js';
import { withModulePaths, type Module } from '../nn/index.js';
import { opHistogram, type Graph, type Initializer } from './graph.js';
import { ExportError, lower } from './lower.js';
import { optimize } from './passes.js';
import { encodeModel } from './onnx.js';
import { packageVersion } from '../io/version.js';

export { ExportError };
export const DEFAULT_OPSET = 17;
export const SUPPORTED_OPSETS = [17, 18] as const;

/** What the model expects and means, written to metadata_props so a predictor needs nothing else. */
export interface ExportMetadata {
  /** the registered model name (convkit_model) */
  modelName?: string;
  /** builder options, e.g. { numClasses: 10, inChannels: 1 } */
  modelOptions?: Record<string, unknown>;
  classNames?: string[];
  /** [channels, height, width] the model is fed */
  inputSize?: number[];
  mean?: number[];
  std?: number[];
  /** the shorter side images are resized to before the centre crop */
  resize?: number;
  /** [height, width] of the centre crop (the model's input) */
  crop?: [number, number];
  interpolation?: string;
  /** anything else, as strings */
  extra?: Record<string, string>;
}

export interface ExportOptions {
  /** ONNX opset: 17 (default) or 18 */
  opset?: number;
  /** 'dynamic' (default): any batch size; a number: that batch size, fixed */
  batch?: 'dynamic' | number;
  metadata?: ExportMetadata;
  inputName?: string;
  /** default 'logits' */
  outputName?: string;
  /** the clean-ups (BatchNorm folding, dead code, shared constants): default true */
  optimize?: boolean;
  /** dynamic batch: trace a second time at another batch size and fail if the graph differs (default true) */
  checkBatch?: boolean;
}

export interface ExportResult {
  bytes: Uint8Array;
  graph: Graph;
  /** op type -> nodes */
  ops: Record<string, number>;
}

type AnyModule = Module<never[], unknown>;

/**
 * The graph of model's eval-mode forward on exampleInput (a batch, e.g. [1, 3, 224, 224]; only
 * its shape and dtype matter). The model's training flags are restored afterwards.
 */
export function traceGraph(model: AnyModule, exampleInput: Tensor, o: ExportOptions = {}): Graph {
  const opset = o.opset ?? DEFAULT_OPSET;
  if (!(SUPPORTED_OPSETS as readonly number[]).includes(opset)) throw new RangeError(`opset must be one of ${SUPPORTED_OPSETS.join(', ')}, got ${opset}`);
  const batch = o.batch ?? 'dynamic';
  if (batch !== 'dynamic' && !(Number.isInteger(batch) && batch >= 1)) throw new RangeError(`batch must be 'dynamic' or a positive integer, got ${String(batch)}`);
  if (exampleInput.ndim < 1 || exampleInput.size(0) < 1) throw new Error(`exampleInput must be a batch with at least one sample, got shape [${exampleInput.shape.join(', ')}]`);
  const modes = model.modules().map((m) => [m, m.training] as const);
  model.eval();
  try {
    return withModulePaths(model, (scope) => {
      const constants: [string, Tensor][] = [
        ...model.namedParameters().map(([k, p]) => [k, p] as [string, Tensor]),
        ...model.namedBuffers(),
      ];
      // with autograd on: an inference-only fast path taken without autograd (fused kernels that
      // stand for several layers) must not replace the layers the trace is to record
      const once = (n: number, dynamic: boolean): Graph => enableGrad(() => tidy(() => {
        const first = exampleInput.narrow(0, 0, 1);
        const x = exampleInput.size(0) === n ? exampleInput : first.expand([n, ...exampleInput.shape.slice(1)]).contiguous();
        const { trace } = traceOps(() => (model as unknown as Module<[Tensor], unknown>).call(x), {
          inputs: [x], constants, scope,
        });
        try {
          if (trace.outputs.length === 0) throw new Error('exportOnnx: the forward pass returned no tensor');
          const outName = o.outputName ?? 'logits';
          return lower(trace, {
            opset, dynamicBatch: dynamic ? n : null, inputNames: [o.inputName ?? 'input'],
            outputNames: trace.outputs.map((_, i) => (i === 0 ? outName : `${outName}_${i}`)),
          });
        } finally {
          disposeTrace(trace);
        }
      }));
      let g: Graph;
      if (batch === 'dynamic') {
        // a batch of 2 at least, so that the batch can be told from the other dimensions of size 1
        const n = Math.max(2, exampleInput.size(0));
        g = once(n, true);
        // a forward that turns the batch size into a number (x.size(0) in a shape, a tensor made
        // per sample) gives a graph that only works at that size: a second trace at another size
        // shows it, and the export fails rather than write such a file
        if (o.checkBatch ?? true) sameGraph(g, once(n + 1, true));
      } else g = once(batch, false);
      return (o.optimize ?? true) ? optimize(g) : g;
    });
  } catch (e) {
    if (e instanceof TraceError) throw new ExportError(e.op, e.scope, e.message.replace(/ \(engine op .*\)$/, ''));
    throw e;
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
}

/** Throws when two traces of one model at different batch sizes lowered to different graphs. */
function sameGraph(a: Graph, b: Graph): void {
  const small = (i: Initializer): string => (i.data.byteLength <= 4096 ? Buffer.from(i.data.buffer, i.data.byteOffset, i.data.byteLength).toString('hex') : '');
  for (let k = 0; k < Math.max(a.nodes.length, b.nodes.length); k++) {
    const x = a.nodes[k];
    const y = b.nodes[k];
    const same = x && y && x.op === y.op && x.name === y.name && JSON.stringify(x.attrs) === JSON.stringify(y.attrs) &&
      x.inputs.length === y.inputs.length && x.inputs.every((name, i) => {
        const ia = a.initializers.get(name);
        const ib = b.initializers.get(y.inputs[i]);
        if (!ia || !ib) return name === y.inputs[i] && !ia && !ib;
        return ia.dtype === ib.dtype && ia.dims.join() === ib.dims.join() && small(ia) === small(ib);
      });
    if (!same) {
      const at = x ?? y;
      throw new ExportError(at.op, at.scope, 'the traced graph changes with the batch size (the forward uses the batch size as a number, e.g. x.size(0) in a shape or a tensor made per sample): export with a fixed batch size', 'ONNX node');
    }
  }
}

/** The metadata_props entries, JSON-encoded where not a plain string. */
export function metadataEntries(m: ExportMetadata = {}, inputShape?: number[]): [string, string][] {
  const out: [string, string][] = [['convkit_version', packageVersion()]];
  const put = (k: string, v: unknown): void => {
    if (v !== undefined && v !== null) out.push([k, typeof v === 'string' ? v : JSON.stringify(v)]);
  };
  put('convkit_model', m.modelName);
  put('convkit_model_options', m.modelOptions);
  put('class_names', m.classNames);
  put('input_size', m.inputSize ?? inputShape);
  put('mean', m.mean);
  put('std', m.std);
  put('resize', m.resize);
  put('crop', m.crop);
  put('interpolation', m.interpolation);
  for (const [k, v] of Object.entries(m.extra ?? {})) put(k, v);
  return out;
}

/**
 * Exports model as ONNX: the bytes, the graph and its op counts; with `file`, also writes them
 * there atomically (a failed export leaves no file and an existing one untouched).
 */
export function exportOnnx(model: AnyModule, exampleInput: Tensor, o: ExportOptions & { file?: string } = {}): ExportResult {
  const graph = traceGraph(model, exampleInput, o);
  const bytes = encodeModel(graph, {
    opset: o.opset ?? DEFAULT_OPSET, producerVersion: packageVersion(),
    metadata: metadataEntries(o.metadata, exampleInput.shape.slice(1)),
  });
  if (o.file) writeFileAtomic(o.file, bytes);
  return { bytes, graph, ops: opHistogram(graph) };
}
