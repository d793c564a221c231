// convkit models: the registry with parameters and multiply-adds at each model's own input.
// Counting builds each model on the meta device (shapes, no storage) and runs one shape-only
// pass: about 25 ms a model. The numbers are also cached per convkit version, as an optimisation.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { exampleInput, type ModelEntry } from '../models/registry.js';
import { flag, parse, str } from './args.js';
import { IMPORT_HELP, importUserModules, packageVersion } from './common.js';

export const HELP = `usage: convkit models [options]

Lists the registered models: name, family, parameters, multiply-adds (MACs) of one example at
the model's input size, and the input size. Counting builds each model without allocating its
weights; the numbers are cached in $CONVKIT_CACHE_DIR (default ~/.cache/convkit).

options:
  --family <name>   only this family (resnet, efficientnet, mobilenet, ...)
  --filter <text>   only models whose name contains text
  --no-count        skip parameters and MACs (instant)
  --refresh         recount, ignoring the cache
  --json            print as JSON
${IMPORT_HELP}
  -h, --help        this help`;

export interface ModelInfo {
  name: string;
  family: string;
  inputSize: [number, number, number];
  params: number | null;
  macs: number | null;
}

function cacheFile(): string {
  const dir = process.env.CONVKIT_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'convkit');
  return path.join(dir, `models-${packageVersion()}.json`);
}

type Cache = Record<string, { params: number; macs: number; inputSize: number[] }>;

function readCache(file: string): Cache {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Cache;
  } catch {
    return {};
  }
}

/**
 * Parameters and MACs of one model at its own example input. The model is built and run on the
 * meta device: shapes only, so counting allocates no weights and does no arithmetic.
 */
export async function countModel(e: ModelEntry): Promise<{ params: number; macs: number }> {
  const { createModel } = await import('../models/index.js');
  const { countMacs } = await import('../analyze/macs.js');
  const { withDevice } = await import('../engine/index.js');
  const input = exampleInput(e);
  return withDevice('meta', () => {
    const model = createModel(e.name, input.options);
    return { params: model.numParameters(), macs: countMacs(model, input.shape, { dtype: input.dtype }).total };
  });
}

export async function modelTable(entries: ModelEntry[], o: { count: boolean; refresh?: boolean; onCount?: (name: string, i: number, n: number) => void }): Promise<ModelInfo[]> {
  const file = cacheFile();
  const cache = o.refresh ? {} : readCache(file);
  let dirty = false;
  const out: ModelInfo[] = [];
  for (const [i, e] of entries.entries()) {
    const key = `${e.name}@${exampleInput(e).shape.join('x')}`;
    let hit = cache[key];
    if (o.count && !hit) {
      o.onCount?.(e.name, i, entries.length);
      hit = cache[key] = { ...(await countModel(e)), inputSize: e.config.inputSize };
      dirty = true;
    }
    out.push({ name: e.name, family: e.config.family, inputSize: e.config.inputSize, params: o.count ? hit!.params : null, macs: o.count ? hit!.macs : null });
  }
  if (dirty) {
    const { writeFileAtomic } = await import('../io/atomic.js');
    try {
      writeFileAtomic(file, JSON.stringify({ ...readCache(file), ...cache }, null, 1));
    } catch {
      // a read-only home is not an error: the numbers are just not cached
    }
  }
  return out;
}

export async function run(args: string[]): Promise<number> {
  const p = parse('models', args, {
    family: { type: 'string' }, filter: { type: 'string' }, 'no-count': { type: 'boolean' }, refresh: { type: 'boolean' }, json: { type: 'boolean' },
    import: { type: 'string', multiple: true },
  }, { maxPositionals: 0 });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  const { listModels } = await import('../models/index.js');
  const { humanCount } = await import('../analyze/summary.js');
  const { formatTable } = await import('../train/metrics.js');
  await importUserModules(p, 'models');
  const filter = str(p, 'filter');
  const entries = listModels(str(p, 'family')).filter((e) => !filter || e.name.includes(filter)).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const count = !flag(p, 'no-count');
  const tty = Boolean(process.stderr.isTTY);
  const rows = await modelTable(entries, {
    count, refresh: flag(p, 'refresh'),
    onCount: (name, i, n) => { if (tty) process.stderr.write(`\r\x1b[2Kcounting ${name} (${i + 1}/${n})...`); },
  });
  if (tty && count) process.stderr.write('\r\x1b[2K');
  if (flag(p, 'json')) {
    console.log(JSON.stringify(rows, null, 2));
    return 0;
  }
  const cells = rows.map((r) => [r.name, r.family, r.params === null ? '-' : humanCount(r.params), r.macs === null ? '-' : humanCount(r.macs), r.inputSize.join('x')]);
  console.log(formatTable(['model', 'family', 'params', 'MACs', 'input'], cells));
  console.log(`${rows.length} model${rows.length === 1 ? '' : 's'}`);
  return 0;
}
