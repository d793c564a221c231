// The options every ONNX Runtime session of convkit's is created with (predict, serve,
// quantize's calibration, the benches).
import type { InferenceSession } from 'onnxruntime-node';

/**
 * `threads` intra-op threads (ORT's default: one per core), and no spinning between runs: ORT's
 * idle threads otherwise keep the cores busy after a run, taking them from whatever runs next
 * (image decoding, other workers, libtorch, another session), which slowed libtorch's next
 * forward by up to 2x when the two took turns.
 */
export function ortSessionOptions(threads?: number): InferenceSession.SessionOptions {
  return { ...(threads ? { intraOpNumThreads: threads } : {}), interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } };
}
