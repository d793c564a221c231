// Issues 13 and 14's inference goals: eval-mode forward throughput at batch 1 and 8, 224 px, of
// ResNet-50 and EfficientNet-B0, convkit on libtorch (with its fused inference convolutions)
// against PyTorch eager (Python, on glibc's malloc and on tcmalloc), each side in each mode: fp32,
// fp32 channels-last, bf16 autocast + channels-last (where the CPU has bf16); and ONNX Runtime
// (onnxruntime-node, same threads) on torch.onnx.export's file and on convkit's export of the same
// seeded model. The sides take turns round after round; the ratios are convkit's best libtorch
// mode against PyTorch's best mode and set-up, convkit's ONNX against torch's under ONNX Runtime,
// and convkit's best path (either engine: what the predictor's probe picks from) against the
// best peer path.
//   node dist-dev/bench/inference.js [--steps 10] [--rounds 1] [--threads 2] [--models resnet50,efficientnet_b0]
//     [--batches 1,8] [--size 224] [--modes fp32,fp32cl,bf16cl] [--onnx on|off] [--json out.json]
import './preload.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import { autocast, cpuHasBf16, manualSeed, noGrad, randn, setNumThreads, tidy } from '../src/engine/index.js';
import { createModel } from '../src/models/index.js';
import { exportOnnx, ortSessionOptions } from '../src/export/index.js';
import { arg, convkitSetup, emit, listArg, median, PY_ALLOCATORS, runPython, sideBySide } from './common.js';

type Mode = 'fp32' | 'fp32cl' | 'bf16cl';
const MODE_NAMES: Record<Mode, string> = { fp32: 'fp32', fp32cl: 'channels-last', bf16cl: 'bf16 + channels-last' };

function convkitLatencies(name: string, batches: number[], size: number, modes: Mode[], steps: number, warmup: number): Record<string, number[]> {
  manualSeed(0);
  const model = createModel(name);
  model.eval();
  const out: Record<string, number[]> = {};
  for (const batch of batches) {
    const x = randn([batch, 3, size, size]);
    for (const mode of modes) {
      const input = mode === 'fp32' ? x : x.contiguous('channelsLast');
      model.to({ memoryFormat: mode === 'fp32' ? 'contiguous' : 'channelsLast' });
      const forward = (): unknown => (mode === 'bf16cl' ? autocast(() => model.call(input)) : model.call(input));
      const times: number[] = [];
      noGrad(() => {
        for (let i = 0; i < warmup + steps; i++) {
          const t0 = performance.now();
          tidy(() => { forward(); });
          if (i >= warmup) times.push(performance.now() - t0);
        }
      });
      if (input !== x) input.dispose();
      out[`${name}:${batch}:${mode}`] = times;
    }
    x.dispose();
  }
  model.dispose();
  return out;
}

/**
 * ONNX Runtime's latencies of several files of one model at each batch size, keyed
 * `<name>:<batch>:<tag>`. The files take turns step by step, so that a slow spell of the machine
 * falls on all of them alike; no thread spins between runs (the predictor's setting), so one
 * session's idle threads do not take the cores from the next.
 */
async function ortLatencies(files: Record<string, Uint8Array>, name: string, batches: number[], size: number, steps: number, warmup: number, threads: number): Promise<Record<string, number[]>> {
  const opts = ortSessionOptions(threads);
  const sessions = await Promise.all(Object.entries(files).map(async ([tag, bytes]) => ({ tag, session: await ort.InferenceSession.create(bytes, opts) })));
  const out: Record<string, number[]> = {};
  try {
    for (const batch of batches) {
      const x = new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i)), [batch, 3, size, size]);
      for (let i = 0; i < warmup + steps; i++) {
        for (const { tag, session } of sessions) {
          const t0 = performance.now();
          await session.run({ [session.inputNames[0]]: x });
          if (i >= warmup) (out[`${name}:${batch}:${tag}`] ??= []).push(performance.now() - t0);
        }
      }
    }
  } finally {
    for (const { session } of sessions) await session.release();
  }
  return out;
}

/** convkit's export of the model convkitLatencies times (same seed), in memory. */
function convkitOnnx(name: string, size: number): Uint8Array {
  manualSeed(0);
  const model = createModel(name);
  const x = randn([1, 3, size, size]);
  try {
    return exportOnnx(model, x).bytes;
  } finally {
    x.dispose();
    model.dispose();
  }
}

const steps = arg('steps', 10), rounds = arg('rounds', 1), warmup = 3, threads = arg('threads', 2), size = arg('size', 224);
const names = listArg('models') ?? ['resnet50', 'efficientnet_b0'];
const batches = (listArg('batches') ?? ['1', '8']).map(Number);
const modes = ((listArg('modes') ?? ['fp32', 'fp32cl', 'bf16cl']) as Mode[]).filter((m) => m !== 'bf16cl' || cpuHasBf16());
const onnx = (listArg('onnx') ?? ['on'])[0] !== 'off';
setNumThreads(threads);
// the ONNX files are written once, before the timed rounds: torch's by Python, convkit's in memory
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-bench-onnx-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const onnxFiles: Record<string, { torch: Uint8Array; convkit: Uint8Array }> = {};
if (onnx) {
  const written = runPython<Record<string, string>>('onnx_export.py', [names.join(','), size, tmp, 17], threads);
  for (const n of names) onnxFiles[n] = { torch: new Uint8Array(fs.readFileSync(written[n])), convkit: convkitOnnx(n, size) };
}
const ORT = ['ort-torch', 'ort-convkit'] as const;
const sides = await sideBySide(rounds,
  async () => {
    const r: Record<string, number[]> = Object.assign({}, ...names.map((n) => convkitLatencies(n, batches, size, modes, steps, warmup)));
    for (const n of names.filter(() => onnx)) {
      Object.assign(r, await ortLatencies({ 'ort-torch': onnxFiles[n].torch, 'ort-convkit': onnxFiles[n].convkit }, n, batches, size, steps, warmup, threads));
    }
    return r;
  },
  (alloc) => runPython<Record<string, number[]>>('inference.py', [threads, steps, warmup, names.join(','), batches.join(','), size, modes.join(',')], threads, alloc));

// images per second from the median latency of all rounds
const rate = (runs: Record<string, number[]>[], key: string, batch: number): number => (1000 * batch) / median(runs.flatMap((r) => r[key]));
const rows: (string | number)[][] = [];
for (const n of names) {
  for (const b of batches) {
    const ck = modes.map((m) => rate(sides.convkit, `${n}:${b}:${m}`, b));
    const pt = PY_ALLOCATORS.flatMap((a) => modes.map((m) => rate(sides.pytorch[a], `${n}:${b}:${m}`, b)));
    const [ortTorch, ortConvkit] = onnx ? ORT.map((t) => rate(sides.convkit, `${n}:${b}:${t}`, b)) : [];
    rows.push([n, `${b}`, ...ck, ...pt, Math.max(...ck) / Math.max(...pt),
      ...(onnx ? [ortTorch, ortConvkit, ortConvkit / ortTorch, Math.max(...ck, ortConvkit) / Math.max(...pt, ortTorch)] : [])]);
  }
}
emit('inference', [{
  title: `eval forward throughput (images/s), ${size} px, ${threads} threads, median of ${steps} steps x ${rounds} rounds; ${convkitSetup()}; `
    + `modes: ${modes.map((m) => MODE_NAMES[m]).join(' / ')}`,
  headers: ['model', 'batch', ...modes.map((m) => `convkit ${MODE_NAMES[m]}`),
    ...PY_ALLOCATORS.flatMap((a) => modes.map((m) => `PyTorch 1.13${a === 'glibc' ? ', glibc' : ' + tcmalloc'} ${MODE_NAMES[m]}`)),
    'convkit best / PyTorch best',
    ...(onnx ? ['ONNX Runtime, torch.onnx.export', 'ONNX Runtime, convkit ONNX', 'convkit ONNX / torch ONNX', 'convkit best path / best peer path'] : [])],
  rows,
}]);
