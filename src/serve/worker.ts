// One inference worker thread: an ONNX Runtime session on the model's bytes. onnxruntime-node's
// `run` computes synchronously on the thread that calls it (its promise only defers the call), so
// the server runs batches here, where they cannot stall the event loop that answers HTTP.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { ortSessionOptions } from '../export/session_options.js';

export interface WorkerInit {
  bytes: Uint8Array;
  /** ONNX Runtime's intra-op threads */
  threads: number;
}

export interface WorkerReady {
  kind: 'ready';
  inputName: string;
  outputName: string;
  /** the declared dimensions; strings are symbolic (the batch of a dynamic export) */
  inputShape: (number | string)[];
  outputShape: (number | string)[];
}

export interface WorkerJob {
  id: number;
  data: Float32Array;
  dims: number[];
}

export type WorkerReply =
  | WorkerReady
  | { kind: 'failed'; message: string }
  | { kind: 'result'; id: number; data: Float32Array; dims: number[] }
  | { kind: 'error'; id: number; message: string };

function shapeOf(m: ort.InferenceSession.ValueMetadata | undefined): (number | string)[] {
  return m && m.isTensor ? [...m.shape] : [];
}

async function main(): Promise<void> {
  const port = parentPort!;
  const init = workerData as WorkerInit;
  let session: ort.InferenceSession;
  try {
    // no spinning (ortSessionOptions): JSON parsing, image decoding and the other workers need the cores
    session = await ort.InferenceSession.create(init.bytes, ortSessionOptions(init.threads));
  } catch (e) {
    port.postMessage({ kind: 'failed', message: (e as Error).message } satisfies WorkerReply);
    return;
  }
  const [inputName] = session.inputNames;
  const [outputName] = session.outputNames;
  port.postMessage({
    kind: 'ready', inputName, outputName, inputShape: shapeOf(session.inputMetadata[0]), outputShape: shapeOf(session.outputMetadata[0]),
  } satisfies WorkerReply);
  port.on('message', (job: WorkerJob) => {
    void (async () => {
      try {
        const out = (await session.run({ [inputName]: new ort.Tensor('float32', job.data, job.dims) }))[outputName];
        // a copy of our own to transfer: the output's buffer may belong to ONNX Runtime
        const data = Float32Array.from(out.data as Float32Array);
        port.postMessage({ kind: 'result', id: job.id, data, dims: [...out.dims] } satisfies WorkerReply, [data.buffer as ArrayBuffer]);
      } catch (e) {
        port.postMessage({ kind: 'error', id: job.id, message: (e as Error).message } satisfies WorkerReply);
      }
    })();
  });
}

void main();
