// An exported model as the teacher of a distillation run: ONNX Runtime gives the logits, the
// file's metadata says what input it takes.
import { tensor, type Tensor } from '../engine/index.js';
import type { Teacher } from '../train/distill.js';
import { loadPredictor } from './load.js';

/** An .onnx file (convkit's export, or any image classifier with a [N, C, H, W] input) as a teacher. */
export async function onnxTeacher(file: string, o: { threads?: number } = {}): Promise<Teacher> {
  const p = await loadPredictor(file, { engine: 'onnxruntime', ...(o.threads ? { threads: o.threads } : {}) });
  const size = p.info.inputSize;
  if (!size || size.length !== 3) {
    await p.dispose();
    throw new Error(`teacher ${file}: its metadata names no [channels, height, width] input_size (export it with convkit export)`);
  }
  return {
    source: file,
    input: { channels: size[0], size: [size[1], size[2]], mean: p.info.mean, std: p.info.std },
    async logits(x: Tensor) {
      const out = await p.logits(x);
      return tensor(out.data, { shape: out.dims });
    },
    dispose: () => void p.dispose(),
  };
}
