// convkit inspect <file.safetensors|.pth>: tensor names, dtypes, shapes and the metadata.
import * as fs from 'node:fs';
import { flag, parse, str, UsageError } from './args.js';

export const HELP = `usage: convkit inspect <file.safetensors|file.pth> [options]

Lists the tensors of a checkpoint (name, dtype, shape, elements) and its metadata.
A convkit training checkpoint's training state (epoch, step, recipe, ...) is summarised.

options:
  --json            print everything as JSON
  --filter <text>   only tensors whose name contains text
  --full-meta       print the metadata values in full
  -h, --help        this help`;

interface Entry { name: string; dtype: string; shape: number[]; numel: number }

async function read(file: string): Promise<{ format: string; tensors: Entry[]; metadata: Record<string, string> }> {
  // io loads libtorch: only once there is a file to read
  const { parseSafetensorsHeader } = await import('../io/index.js');
  const { readPthRaw } = await import('../io/pth.js');
  const { isZipFile } = await import('../io/zip.js');
  if (isZipFile(file)) {
    const raw = readPthRaw(file);
    const tensors = [...raw].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, numel: t.shape.reduce((a, b) => a * b, 1) }));
    return { format: 'pytorch (.pth zip)', tensors, metadata: {} };
  }
  const h = parseSafetensorsHeader(file);
  const tensors = h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, numel: t.shape.reduce((a, b) => a * b, 1) }));
  tensors.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { format: 'safetensors', tensors, metadata: h.metadata ?? {} };
}

// A training checkpoint's JSON state is long (recipe, history): show the headline numbers.
function summariseTrainingState(json: string): string {
  try {
    const m = JSON.parse(json) as Record<string, unknown>;
    const recipe = (m.recipe ?? {}) as Record<string, unknown>;
    const parts = [
      `epoch ${String(m.epoch)}${m.batch ? ` (+${String(m.batch)} batches)` : ''}`, `step ${String(m.step)}`,
      `model ${String(recipe.model)}`, `dataset ${String(recipe.dataset)}`,
      typeof m.bestAcc === 'number' ? `best acc ${(100 * m.bestAcc).toFixed(2)}%` : '',
      m.finished ? 'finished' : 'unfinished',
    ];
    return parts.filter(Boolean).join(', ');
  } catch {
    return json.length > 200 ? `${json.slice(0, 200)}...` : json;
  }
}

export async function run(args: string[]): Promise<number> {
  const p = parse('inspect', args, { json: { type: 'boolean' }, filter: { type: 'string' }, 'full-meta': { type: 'boolean' } }, { minPositionals: 1, maxPositionals: 1 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const file = p.positionals[0];
  if (!fs.existsSync(file)) throw new UsageError(`no such file: ${file}`, 'inspect');
  const info = await read(file);
  const { formatTable } = await import('../train/metrics.js');
  const filter = str(p, 'filter');
  const tensors = filter ? info.tensors.filter((t) => t.name.includes(filter)) : info.tensors;
  const total = tensors.reduce((a, t) => a + t.numel, 0);
  if (flag(p, 'json')) {
    console.log(JSON.stringify({ file, format: info.format, bytes: fs.statSync(file).size, metadata: info.metadata, numTensors: tensors.length, numElements: total, tensors }, null, 2));
    return 0;
  }
  console.log(`${file}: ${info.format}, ${(fs.statSync(file).size / 1e6).toFixed(2)} MB, ${tensors.length} tensors, ${total.toLocaleString('en-US')} elements`);
  const meta = Object.entries(info.metadata);
  if (meta.length) {
    console.log('metadata:');
    for (const [k, v] of meta) {
      const shown = flag(p, 'full-meta') ? v : k === 'convkit' ? summariseTrainingState(v) : v.length > 120 ? `${v.slice(0, 120)}...` : v;
      console.log(`  ${k}: ${shown}`);
    }
  }
  console.log(formatTable(['name', 'dtype', 'shape', 'elements'], tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, t.numel.toLocaleString('en-US')])));
  return 0;
}
