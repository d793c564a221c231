// Fuzz tests of every reader of outside files: seeded mutations and truncations of a valid file,
// special files (a directory, /dev/zero, /dev/urandom, a FIFO), and decompression bombs. Each
// reader runs in a child process (driver.ts) on a batch of inputs, so a crash or a hang fails the
// test naming the input instead of killing the runner. Every input must either read or fail with
// an Error that names the file, in bounded length, without a JavaScript internal error; the
// child's peak memory must stay bounded whatever the inputs declare.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { encodeIdx } from '../../src/io/idx.js';
import { ZipReader } from '../../src/io/zip.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { validTrainState } from '../helpers/train_state.js';
import { tensor } from '../../src/engine/index.js';
import type { Outcome, ReaderName } from './driver.js';
import { mutants, type Mutant } from './mutate.js';

const DRIVER = fileURLToPath(new URL('./driver.js', import.meta.url));
const PYTHON = '/usr/bin/python3';
// Mutants of each kind per seed file; the seed number makes every run the same inputs.
const PER_KIND = 16;
const SEED = 12;
const CHILD_TIMEOUT_MS = 60_000;
const MAX_MESSAGE = 2000;
// Inputs are small; a bomb that inflated would take hundreds of MB.
const MAX_RSS_MB = 700;
// Messages of a JavaScript error nobody meant to throw.
const INTERNAL = /Cannot read propert|is not a function|is not iterable|Maximum call stack|Invalid array length|Cannot convert|undefined is not/;

const dir = mkdtempSync(join(tmpdir(), 'convkit-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Input {
  label: string;
  path: string;
}

interface Failure {
  label: string;
  problem: string;
}

function writeInputs(name: string, ms: readonly Mutant[]): Input[] {
  const sub = join(dir, name);
  mkdirSync(sub, { recursive: true });
  return ms.map((m, i) => {
    const path = join(sub, `${i}.bin`);
    writeFileSync(path, m.bytes);
    return { label: m.label, path };
  });
}

let specialInputs: Input[] = [];

function makeSpecialFiles(): Input[] {
  const sub = join(dir, 'special');
  mkdirSync(sub);
  const fifo = join(sub, 'fifo');
  execFileSync('mkfifo', [fifo]);
  writeFileSync(join(sub, 'empty'), '');
  const out: Input[] = [
    { label: 'a directory', path: join(sub) },
    { label: 'a FIFO with no writer', path: fifo },
    { label: 'an empty file', path: join(sub, 'empty') },
    { label: 'a missing file', path: join(sub, 'missing') },
  ];
  for (const dev of ['/dev/zero', '/dev/urandom']) if (existsSync(dev)) out.push({ label: dev, path: dev });
  return out;
}

/** Runs the reader on inputs in child processes; a crash or hang is recorded and the rest go on. */
async function runReader(reader: ReaderName, inputs: readonly Input[]): Promise<{ failures: Failure[]; maxRssMB: number }> {
  const failures: Failure[] = [];
  let maxRssMB = 0;
  for (let start = 0; start < inputs.length; ) {
    const batch = inputs.slice(start);
    const manifest = join(dir, `${reader}-${start}.json`);
    writeFileSync(manifest, JSON.stringify(batch.map((x) => x.path)));
    const { outcomes, rssKB, exit } = await runChild(reader, manifest);
    for (const o of outcomes) {
      const problem = judge(reader, batch[o.i]!.path, o);
      if (problem) failures.push({ label: batch[o.i]!.label, problem });
    }
    if (rssKB !== undefined) maxRssMB = Math.max(maxRssMB, rssKB / 1024);
    if (outcomes.length === batch.length) break;
    // the first input without an outcome crashed or hung the child: note it, go on after it
    failures.push({ label: batch[outcomes.length]!.label, problem: `the child process ${exit} on it` });
    start += outcomes.length + 1;
  }
  return { failures, maxRssMB };
}

function runChild(reader: ReaderName, manifest: string): Promise<{ outcomes: Outcome[]; rssKB?: number; exit: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [DRIVER, reader, manifest], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines = out.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Outcome & { maxRssKB?: number });
      const outcomes = lines.filter((l) => l.maxRssKB === undefined);
      const rssKB = lines.find((l) => l.maxRssKB !== undefined)?.maxRssKB;
      const exit = signal === 'SIGKILL' ? `hung (killed after ${CHILD_TIMEOUT_MS} ms)` : signal ? `died of ${signal}` : `exited with code ${code} (${err.trim().slice(-300)})`;
      resolve({ outcomes, rssKB, exit });
    });
  });
}

/** What is wrong with an outcome, or null. */
function judge(reader: ReaderName, path: string, o: Outcome): string | null {
  if (o.ok) return null;
  const m = o.message ?? '';
  // the CIFAR reader sees each input linked as test_batch.bin in a folder of its own
  const named = reader === 'cifar' ? 'test_batch.bin' : path;
  if (o.name !== undefined && !['Error', 'DatasetFileError', 'SafetensorsError', 'UnpicklingError', 'CheckpointError'].includes(o.name)) {
    return `threw a ${o.name}: ${m.slice(0, 300)}`;
  }
  if (INTERNAL.test(m)) return `an internal error: ${m.slice(0, 300)}`;
  if (!m.includes(named)) return `the message does not name the file: ${m.slice(0, 300)}`;
  if (m.length > MAX_MESSAGE) return `a message of ${m.length} characters: ${m.slice(0, 200)}...`;
  return null;
}

async function check(reader: ReaderName, seeds: Record<string, Uint8Array>, extra: Input[] = []): Promise<void> {
  let inputs: Input[] = [...specialInputs, ...extra];
  Object.entries(seeds).forEach(([name, bytes], k) => {
    inputs = inputs.concat(writeInputs(`${reader}-${name}`, mutants(bytes, SEED + k, PER_KIND)).map((x) => ({ ...x, label: `${name}: ${x.label}` })));
  });
  const { failures, maxRssMB } = await runReader(reader, inputs);
  const shown = failures.slice(0, 10).map((f) => `  ${f.label}: ${f.problem}`).join('\n');
  assert.equal(failures.length, 0, `${failures.length} of ${inputs.length} inputs to ${reader} failed (seed ${SEED}):\n${shown}`);
  assert.ok(maxRssMB < MAX_RSS_MB, `${reader}: the child's peak memory was ${maxRssMB.toFixed(0)} MB`);
}

// ---- seed files ---------------------------------------------------------------------------------

function idxSeed(): Uint8Array {
  return encodeIdx({ dtype: 'uint8', shape: [3, 4, 4], data: Uint8Array.from({ length: 48 }, (_, i) => i) });
}

function cifarSeed(): Uint8Array {
  const rec = 1 + 3 * 32 * 32;
  const b = new Uint8Array(3 * rec);
  for (let r = 0; r < 3; r++) {
    b[r * rec] = r;
    for (let i = 1; i < rec; i++) b[r * rec + i] = (i * 7 + r) & 0xff;
  }
  return b;
}

async function imageSeeds(): Promise<Record<string, Uint8Array>> {
  const raw = Buffer.from(Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37) & 0xff));
  const img = () => sharp(raw, { raw: { width: 8, height: 8, channels: 3 } });
  return { png: await img().png().toBuffer(), jpeg: await img().jpeg().toBuffer() };
}

// torch.save of a small state dict, stored (as torch writes it) and deflated (re-zipped), plus
// two bombs: a deflated storage and a deflated data.pkl inflating to 64 and 80 MB.
const PTH_SCRIPT = String.raw`
import sys, zipfile, collections, warnings
warnings.filterwarnings('ignore')
import torch
out = sys.argv[1]
sd = collections.OrderedDict()
sd['w'] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
sd['b'] = torch.tensor([1, -2], dtype=torch.int64)
sd['v'] = torch.arange(12, dtype=torch.float32).reshape(3, 4)[:, 1:3]
torch.save(sd, f'{out}/seed.pt')
def rewrite(dst, change):
    zin = zipfile.ZipFile(f'{out}/seed.pt')
    with zipfile.ZipFile(dst, 'w', zipfile.ZIP_DEFLATED) as zout:
        for i in zin.infolist():
            zout.writestr(i.filename, change(i.filename, zin.read(i.filename)))
rewrite(f'{out}/deflated.pt', lambda n, d: d)
rewrite(f'{out}/bomb_storage.pt', lambda n, d: bytes(64 << 20) if n.endswith('data/0') else d)
rewrite(f'{out}/bomb_pickle.pt', lambda n, d: d + bytes(80 << 20) if n.endswith('data.pkl') else d)
`;

function pthFiles(): string {
  const sub = join(dir, 'pth-seeds');
  mkdirSync(sub);
  execFileSync(PYTHON, ['-c', PTH_SCRIPT, sub], { stdio: ['ignore', 'ignore', 'inherit'] });
  return sub;
}

function safetensorsSeed(): Uint8Array {
  const path = join(dir, 'seed.safetensors');
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  const b = tensor([1.5, -2.5]);
  writeSafetensors(path, new Map([['a', a], ['b', b]]), { note: 'seed' });
  a.dispose();
  b.dispose();
  return readFileSync(path);
}

function checkpointSeed(): Uint8Array {
  const path = join(dir, 'seed-ckpt.safetensors');
  const w = tensor([[0.5, -0.5]]);
  saveCheckpoint(path, { model: new Map([['fc.weight', w]]), meta: validTrainState() });
  w.dispose();
  return readFileSync(path);
}

// ---- the tests ------------------------------------------------------------------------------------

describe('fuzz: every reader survives hostile input (each input in a child process)', () => {
  let pth = '';
  before(() => {
    specialInputs = makeSpecialFiles();
    pth = pthFiles();
  });

  test('idx, plain and gzipped, and gzip bombs', async () => {
    const seed = idxSeed();
    // a header declaring 1 byte, followed by 50 MB of zeros; and one declaring 100 GB
    const small = encodeIdx({ dtype: 'uint8', shape: [1], data: Uint8Array.of(7) });
    const bomb = new Uint8Array(small.length + (50 << 20));
    bomb.set(small);
    const huge = Uint8Array.from([0, 0, 8, 3, 0, 1, 0x86, 0xa0, 0, 0, 0x03, 0xe8, 0, 0, 0x03, 0xe8]);
    const bombs = writeInputs('idx-bombs', [
      { label: 'gzip bomb: 1 byte declared, 50 MB inflated', bytes: gzipSync(bomb) },
      { label: 'gzip: 100 GB declared', bytes: gzipSync(huge) },
    ]);
    await check('idx', { plain: seed, gzip: gzipSync(seed) }, bombs);
  });

  test('CIFAR batches', async () => {
    await check('cifar', { cifar10: cifarSeed() });
  });

  test('images (PNG, JPEG)', async () => {
    await check('image', await imageSeeds());
  });

  test('zip archives (stored and deflated) and zip bombs', async () => {
    const bombs = ['bomb_storage.pt', 'bomb_pickle.pt'].map((f) => ({ label: f, path: join(pth, f) }));
    await check('zip', { stored: readFileSync(join(pth, 'seed.pt')), deflated: readFileSync(join(pth, 'deflated.pt')) }, bombs);
  });

  test('pickles (data.pkl of a state dict)', async () => {
    const z = ZipReader.open(join(pth, 'seed.pt'));
    const pkl = z.read(z.entries.find((e) => e.name.endsWith('data.pkl'))!.name);
    z.close();
    await check('pickle', { pkl });
  });

  test('PyTorch .pth files and their bombs', async () => {
    const bombs = ['bomb_storage.pt', 'bomb_pickle.pt'].map((f) => ({ label: f, path: join(pth, f) }));
    await check('pth', { stored: readFileSync(join(pth, 'seed.pt')), deflated: readFileSync(join(pth, 'deflated.pt')) }, bombs);
  });

  test('safetensors, and a header nested 100,000 deep', async () => {
    const deep = Buffer.from(`{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    const file = Buffer.alloc(8 + deep.length);
    file.writeBigUInt64LE(BigInt(deep.length));
    deep.copy(file, 8);
    await check('safetensors', { seed: safetensorsSeed() }, writeInputs('st-deep', [{ label: 'header nested 100,000 deep', bytes: file }]));
  });

  test('training checkpoints (tensors and training state)', async () => {
    await check('checkpoint', { seed: checkpointSeed() });
  });
});
