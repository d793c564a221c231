// The options the ONNX Runtime sessions that run convkit's models are created with (predict,
// serve's workers, quantize's calibration, the benches that time ORT beside libtorch).
import type { InferenceSession } from 'onnxruntime-node';

/**
 * `threads` intra-op threads (ORT's default: one per core), and no spinning between runs: ORT's
 * idle threads otherwise keep the cores busy after a run, taking them from whatever runs next
 * (image decoding, other workers, libtorch, another session); libtorch's next forwards ran 2-3x
 * slower when the two took turns in one process.
 */
export function ortSessionOptions(threads?: number): InferenceSession.SessionOptions {
  return { ...(threads ? { intraOpNumThreads: threads } : {}), interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } };
}
