// convkit weights [name ...] [--fetch]: torchvision's published ImageNet weights for the zoo,
// where each one is cached, and downloading them ahead of time (or learning where to put a file
// fetched by hand on a machine with no network).
import * as fs from 'node:fs';
import { flag, parse, UsageError } from './args.js';
import { IMPORT_HELP, importUserModules } from './common.js';

export const HELP = `usage: convkit weights [model ...] [options]

Lists the pretrained weights convkit knows (torchvision's weights='DEFAULT' for each torchvision
model in the zoo): the model, torchvision's weights name, ImageNet top-1, whether the file is in
the cache, and the file's URL and cache path. createModel(name, { pretrained: true }),
convkit train --pretrained and convkit explain --pretrained download a file once into
$CONVKIT_CACHE_DIR/weights (default ~/.cache/convkit/weights), verified by its SHA-256.
$CONVKIT_WEIGHTS_URL replaces download.pytorch.org/models by a mirror (same file names).
With no network, download the URL elsewhere and put the file at the path shown.

options:
  --fetch               download the named models' weights (all with --all) now
  --all                 with --fetch: every model's
  --json                print as JSON
${IMPORT_HELP}
  -h, --help            this help`;

const C = 'weights';

export async function run(args: string[]): Promise<number> {
  const p = parse(C, args, {
    fetch: { type: 'boolean' }, all: { type: 'boolean' }, json: { type: 'boolean' }, import: { type: 'string', multiple: true },
  });
  if (flag(p, 'help')) { console.log(HELP); return 0; }
  if (flag(p, 'all') && !flag(p, 'fetch')) throw new UsageError('--all goes with --fetch', C);
  if (flag(p, 'fetch') && !flag(p, 'all') && p.positionals.length === 0) throw new UsageError('--fetch needs model names (or --all)', C);
  const { listPretrained, pretrainedEntry, pretrainedPath, pretrainedUrl, fetchPretrained } = await import('../models/index.js');
  await importUserModules(p, C);
  let entries;
  try {
    entries = p.positionals.length ? p.positionals.map((n) => pretrainedEntry(n)) : listPretrained();
  } catch (e) {
    throw new UsageError((e as Error).message, C);
  }
  if (flag(p, 'fetch')) {
    for (const e of entries) await fetchPretrained(e.name);
  }
  const rows = entries.map((e) => ({
    model: e.name, weights: e.weights, acc1: e.acc1, acc5: e.acc5, cached: fs.existsSync(pretrainedPath(e)),
    url: pretrainedUrl(e), file: pretrainedPath(e), sha256Prefix: e.sha256Prefix,
  }));
  if (flag(p, 'json')) {
    console.log(JSON.stringify(rows, null, 2));
    return 0;
  }
  const w = Math.max(...rows.map((r) => r.model.length), 5);
  const ww = Math.max(...rows.map((r) => r.weights.length), 7);
  console.log(`${'model'.padEnd(w)}  ${'weights'.padEnd(ww)}  top-1   cached  url -> file`);
  for (const r of rows) {
    console.log(`${r.model.padEnd(w)}  ${r.weights.padEnd(ww)}  ${r.acc1.toFixed(2).padStart(5)}%  ${(r.cached ? 'yes' : 'no').padEnd(6)}  ${r.url} -> ${r.file}`);
  }
  return 0;
}
