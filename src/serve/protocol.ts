// The Open Inference Protocol (KServe v2) over HTTP/JSON: the shapes of its metadata and infer
// messages, and the checks that turn a request body into one float32 batch. Everything here is
// pure (no I/O), so each refusal is tested on its own; a refusal is a ProtocolError whose message
// goes back to the client as {"error": ...} with a 4xx status.
import type { JsonValue } from '../io/json.js';

/** A request the server refuses: `status` (4xx), and a message for the client. */
export class ProtocolError extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** KServe's tensor metadata: -1 marks the batch dimension. */
export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

/** What the protocol needs to know of a served model. */
export interface ModelSignature {
  name: string;
  inputName: string;
  outputName: string;
  /** one sample's shape, e.g. [3, 224, 224] */
  sampleShape: number[];
  /** outputs per sample (the classes) */
  classes: number;
  classNames: string[] | null;
  maxBatch: number;
}

export interface ParsedInfer {
  id: string | null;
  /** samples in the request */
  n: number;
  data: Float32Array;
  /** top-k per sample instead of the logits (Triton's classification extension), null: the logits */
  classification: number | null;
}

export function modelMetadata(m: ModelSignature, extra: Record<string, JsonValue>): Record<string, JsonValue> {
  return {
    name: m.name,
    versions: [],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: m.inputName, datatype: 'FP32', shape: [-1, ...m.sampleShape] }],
    outputs: [{ name: m.outputName, datatype: 'FP32', shape: [-1, m.classes] }],
    parameters: { max_batch_size: m.maxBatch, ...(m.classNames ? { class_names: m.classNames } : {}), ...extra },
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

/**
 * The values of `data` (flat, or nested as the shape) in row-major order into `out`; throws when
 * they are not all numbers or their count is not out.length. Iterative: nesting depth is bounded
 * by the JSON parser's limit, and a huge array stops at the first value too many.
 */
function flatten(data: unknown, out: Float32Array, tensor: string): void {
  let k = 0;
  const stack: { a: unknown[]; i: number }[] = [{ a: data as unknown[], i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.i >= top.a.length) {
      stack.pop();
      continue;
    }
    const v = top.a[top.i++];
    if (Array.isArray(v)) {
      stack.push({ a: v, i: 0 });
    } else if (typeof v === 'number') {
      if (k >= out.length) throw new ProtocolError(`input '${tensor}': data holds more values than its shape's ${out.length}`);
      out[k++] = v;
    } else {
      throw new ProtocolError(`input '${tensor}': data must hold numbers (datatype FP32), found ${describe(v)} at value ${k}`);
    }
  }
  if (k !== out.length) throw new ProtocolError(`input '${tensor}': its shape needs ${out.length} values, data holds ${k}`);
}

/** An infer request's body (parsed JSON) as one batch for `m`, or a ProtocolError saying what is wrong. */
export function parseInferRequest(body: unknown, m: ModelSignature): ParsedInfer {
  if (!isObject(body)) throw new ProtocolError(`an infer request is a JSON object, got ${describe(body)}`);
  const id = body.id;
  if (id !== undefined && typeof id !== 'string') throw new ProtocolError(`'id' must be a string, got ${describe(id)}`);
  const inputs = body.inputs;
  if (!Array.isArray(inputs)) throw new ProtocolError(`'inputs' must be an array of tensors, got ${inputs === undefined ? 'none' : describe(inputs)}`);
  if (inputs.length !== 1) throw new ProtocolError(`model ${m.name} takes one input '${m.inputName}', got ${inputs.length}`);
  const t = inputs[0];
  if (!isObject(t)) throw new ProtocolError(`inputs[0] must be an object with name, shape, datatype and data, got ${describe(t)}`);
  if (t.name !== m.inputName) throw new ProtocolError(`model ${m.name} takes the input '${m.inputName}', got ${typeof t.name === 'string' ? `'${t.name.slice(0, 64)}'` : describe(t.name)}`);
  if (t.datatype !== 'FP32') throw new ProtocolError(`input '${m.inputName}': datatype must be FP32, got ${typeof t.datatype === 'string' ? t.datatype.slice(0, 32) : describe(t.datatype)}`);
  if (isObject(t.parameters) && t.parameters.binary_data_size !== undefined) {
    throw new ProtocolError(`input '${m.inputName}': binary tensor data is not supported: send the values as JSON in 'data'`);
  }
  const shape = t.shape;
  const want = `[N, ${m.sampleShape.join(', ')}] with N from 1 to ${m.maxBatch}`;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new ProtocolError(`input '${m.inputName}': shape must be a list of non-negative integers, ${want}`);
  }
  const dims = shape as number[];
  if (dims.length !== m.sampleShape.length + 1 || m.sampleShape.some((d, i) => dims[i + 1] !== d) || dims[0] < 1 || dims[0] > m.maxBatch) {
    throw new ProtocolError(`input '${m.inputName}': shape must be ${want}, got [${dims.slice(0, 8).join(', ')}${dims.length > 8 ? ', ...' : ''}]`);
  }
  if (!Array.isArray(t.data)) throw new ProtocolError(`input '${m.inputName}': data must be an array of numbers (flat or nested), got ${t.data === undefined ? 'none' : describe(t.data)}`);
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  flatten(t.data, data, m.inputName);
  return { id: id ?? null, n: dims[0], data, classification: parseOutputs(body.outputs, m) };
}

function parseOutputs(outputs: unknown, m: ModelSignature): number | null {
  if (outputs === undefined) return null;
  if (!Array.isArray(outputs) || outputs.length > 1) throw new ProtocolError(`'outputs' must list at most the one output '${m.outputName}'`);
  if (outputs.length === 0) return null;
  const o = outputs[0];
  if (!isObject(o) || o.name !== m.outputName) throw new ProtocolError(`model ${m.name} has the one output '${m.outputName}'`);
  if (o.parameters === undefined) return null;
  if (!isObject(o.parameters)) throw new ProtocolError(`outputs[0].parameters must be an object`);
  if (o.parameters.binary_data === true) throw new ProtocolError('binary output data is not supported: the outputs come back as JSON');
  const k = o.parameters.classification;
  if (k === undefined) return null;
  if (!(Number.isInteger(k) && (k as number) >= 1 && (k as number) <= m.classes)) {
    throw new ProtocolError(`outputs[0].parameters.classification must be an integer from 1 to ${m.classes}, got ${JSON.stringify(k)?.slice(0, 32)}`);
  }
  return k as number;
}

/** The infer response: the logits [n, classes], or with classification k the k best as "value:index:label" strings (Triton's format). */
export function inferResponse(m: ModelSignature, req: ParsedInfer, logits: Float32Array): Record<string, JsonValue> {
  const n = req.n;
  const c = logits.length / n;
  let output: Record<string, JsonValue>;
  if (req.classification === null) {
    output = { name: m.outputName, datatype: 'FP32', shape: [n, c], data: Array.from(logits) };
  } else {
    const k = req.classification;
    const data: string[] = [];
    for (let i = 0; i < n; i++) {
      const row = logits.subarray(i * c, (i + 1) * c);
      const order = Array.from({ length: c }, (_, j) => j).sort((a, b) => row[b] - row[a]).slice(0, k);
      for (const j of order) data.push(`${row[j]}:${j}${m.classNames?.[j] !== undefined ? `:${m.classNames[j]}` : ''}`);
    }
    output = { name: m.outputName, datatype: 'BYTES', shape: [n, k], data };
  }
  return { model_name: m.name, ...(req.id !== null ? { id: req.id } : {}), outputs: [output] };
}
