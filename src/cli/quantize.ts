// convkit quantize <checkpoint | run folder | model.onnx> --calib <dataset> -o model.int8.onnx:
// post-training static int8 quantization to a QDQ ONNX file; --report shows a file's int8 layers.
import { flag, intOpt, numOpt, parse, str, UsageError } from './args.js';
import { IMPORT_HELP, importUserModules } from './common.js';

export const HELP = `usage: convkit quantize <checkpoint | run folder | model.onnx> --calib <dataset> -o <model.int8.onnx> [options]
       convkit quantize --report <model.int8.onnx>

Post-training static quantization to int8. The model (a training checkpoint, a run folder, a
model.safetensors, or a float ONNX file that convkit exported) is traced with BatchNorm folded,
calibrated on the dataset's training images (the evaluation preprocessing and the model's
normalisation), and written as a QDQ ONNX model: weights int8 symmetric per output channel,
activations uint8 per tensor, biases int32. ONNX Runtime fuses it into its integer kernels
(QLinearConv, QGemm, ...); convkit predict, convkit eval and convkit web run it as any .onnx.
The file keeps the model's metadata (classes, preprocessing) and lists its int8 layers.

options:
  -o, --output <file>     the ONNX file to write (required; written atomically, nothing on error)
  --calib <dataset>       calibration images: fashion-mnist, mnist, cifar10, cifar100, folder,
                          synthetic (the training split)
  --data-root <dir>       where the dataset's files are
  --calib-size <n>        calibration images (default 512)
  --method <m>            activation ranges: minmax (default), percentile (99.99 %),
                          mse (least quantization error), entropy (KL, TensorRT's method;
                          for ReLU networks, it clips GELU and SiLU activations too much)
  --percentile <p>        the percentile kept by --method percentile (default 99.99)
  --skip <list>           leave layers in float: rules first, last, depthwise, se, or layer
                          names (comma-separated)
  --sensitivity           quantize one layer at a time, print each layer's output error and
                          top-1 agreement on held-out training images, and keep the worst in float
                          until the int8 model agrees with float on --target-agreement
  --held <n>              held-out images of the scan (default 200)
  --target-agreement <a>  top-1 agreement with float the scan aims for (default 0.99)
  --max-float <n>         at most n layers kept in float by the scan (default 4)
  --model <name>          the registered model (weights files convkit did not write)
  --threads <n>           ONNX Runtime threads
  --report                show which layers of an ONNX file are int8 (as written, and the
                          kernels ONNX Runtime runs after fusing)
  --json                  print the result as JSON
${IMPORT_HELP}
  -h, --help              this help`;

const C = 'quantize';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, {
    output: { type: 'string', short: 'o' }, calib: { type: 'string' }, 'data-root': { type: 'string' }, 'calib-size': { type: 'string' },
    method: { type: 'string' }, percentile: { type: 'string' }, skip: { type: 'string' }, sensitivity: { type: 'boolean' },
    held: { type: 'string' }, 'target-agreement': { type: 'string' }, 'max-float': { type: 'string' }, model: { type: 'string' },
    threads: { type: 'string' }, report: { type: 'boolean' }, json: { type: 'boolean' }, import: { type: 'string', multiple: true },
  }, { minPositionals: 1, maxPositionals: 1 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const json = flag(p, 'json');
  const { CALIB_METHODS } = await import('../compress/quantize_calib.js');
  if (flag(p, 'report')) {
    const { quantizationReport } = await import('../compress/quantize.js');
    const r = await quantizationReport(p.positionals[0]);
    if (json) console.log(JSON.stringify(r));
    else console.log(formatReport(r));
    return 0;
  }
  const out = str(p, 'output');
  if (!out) throw new UsageError('give the file to write with -o <model.int8.onnx>', C);
  const calib = str(p, 'calib');
  if (!calib) throw new UsageError('give the calibration dataset with --calib <dataset> (e.g. fashion-mnist)', C);
  const method = str(p, 'method') ?? 'minmax';
  if (!(CALIB_METHODS as readonly string[]).includes(method)) throw new UsageError(`--method must be one of ${CALIB_METHODS.join(', ')}, got '${method.slice(0, 40)}'`, C);
  const calibSize = intOpt(p, 'calib-size', C, 1, 1_000_000) ?? 512;
  const percentile = numOpt(p, 'percentile', C, 50, 100);
  const skip = (str(p, 'skip') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const sensitivity = flag(p, 'sensitivity');
  const held = intOpt(p, 'held', C, 1, 100_000);
  const target = numOpt(p, 'target-agreement', C, 0, 1);
  const maxFloat = intOpt(p, 'max-float', C, 0, 10_000);
  if (!sensitivity && (held !== undefined || target !== undefined || maxFloat !== undefined)) throw new UsageError('--held, --target-agreement and --max-float go with --sensitivity', C);
  const threads = intOpt(p, 'threads', C, 1, 1024);
  await import('../models/index.js');
  await importUserModules(p, C);
  const { quantizeModel } = await import('../compress/quantize.js');
  const t0 = performance.now();
  let last = 0;
  const r = await quantizeModel(p.positionals[0], {
    calib, dataRoot: str(p, 'data-root'), calibSize, method: method as (typeof CALIB_METHODS)[number], calibOptions: { percentile }, skip,
    sensitivity: sensitivity ? { held, targetAgreement: target, maxFloat } : false, file: out, model: str(p, 'model'), threads,
    onProgress: json || !process.stderr.isTTY ? undefined : (m) => {
      const now = performance.now();
      if (now - last > 200) { process.stderr.write(`\r${m}\x1b[K`); last = now; }
    },
  });
  if (!json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  const seconds = (performance.now() - t0) / 1000;
  if (json) {
    console.log(JSON.stringify({
      file: out, method: r.method, calibImages: r.calibImages, bytes: r.bytes.byteLength, quantized: r.quantized.map((l) => l.name),
      float: r.float, sensitivity: r.sensitivity, heldAgreement: r.heldAgreement, ops: r.ops, seconds: Number(seconds.toFixed(2)),
    }));
    return 0;
  }
  if (r.sensitivity) {
    console.log('sensitivity (one layer int8 at a time, on held-out training images):');
    console.log(`  ${'layer'.padEnd(36)} ${'op'.padEnd(7)} ${'rel. error'.padStart(11)} ${'top-1 agree'.padStart(12)}`);
    for (const s of [...r.sensitivity].sort((a, b) => b.relError - a.relError)) {
      console.log(`  ${s.layer.slice(0, 36).padEnd(36)} ${s.op.padEnd(7)} ${s.relError.toExponential(2).padStart(11)} ${(100 * s.agreement).toFixed(1).padStart(11)}%${s.keptFloat ? '  kept float' : ''}`);
    }
    console.log(`int8 model vs float on the held images: ${(100 * (r.heldAgreement ?? 0)).toFixed(1)}% top-1 agreement`);
  }
  const fl = r.float.map((l) => `${l.name} (${l.reason})`).join(', ');
  console.log(`wrote ${out}: ${r.quantized.length} int8 layers${r.float.length ? `, ${r.float.length} float: ${fl}` : ''}; ` +
    `${r.method} on ${r.calibImages} ${calib} images, ${(r.bytes.byteLength / 1e6).toFixed(2)} MB in ${seconds.toFixed(1)} s`);
  return 0;
}

export function formatReport(r: Awaited<ReturnType<typeof import('../compress/quantize.js').quantizationReport>>): string {
  const lines: string[] = [];
  const fmt = (ops: Record<string, number>): string => Object.entries(ops).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  if (!r.record) lines.push(`${r.file}: not quantized by convkit (no convkit.quantized metadata)`);
  else {
    const c = r.record.calibration;
    lines.push(`${r.file}: int8 (${r.record.method ?? '?'}${c ? ` on ${c.images} ${c.dataset} images` : ''})`);
    for (const l of r.record.layers ?? []) lines.push(`  int8   ${l}`);
    for (const l of r.record.float ?? []) lines.push(`  float  ${l.layer} (${l.reason})`);
  }
  lines.push(`ops in the file: ${fmt(r.ops)}`);
  lines.push(`kernels ONNX Runtime runs: ${fmt(r.runtimeOps)}`);
  return lines.join('\n');
}
