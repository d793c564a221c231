// Checkpoints: the format (model./optim./ema./rng. tensors + JSON metadata), atomic writes
// (an injected failure and a SIGKILL mid-write both leave the previous file loadable),
// model.safetensors loaded by PyTorch, loading errors; and the small pieces the trainer and
// its report use: metrics, the progress bar, summary().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import fsDefault from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { full, getRngState, manualSeed, randn, tensor, tidy, noGrad, type StateDict, type Tensor } from '../../src/engine/index.js';
import { parseSafetensorsHeader, readSafetensors, writeSafetensors, removeStaleTempFiles, writeFileAtomic } from '../../src/io/index.js';
import {
  saveCheckpoint, loadCheckpoint, readCheckpointMeta, saveModelWeights, loadModelWeights,
  ConfusionMatrix, topkCorrect, ProgressBar, SGD,
} from '../../src/train/index.js';
import { summary } from '../../src/analyze/summary.js';
import { countMacs } from '../../src/analyze/macs.js';
import { TinyCnn } from './tiny_model.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-ckpt-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function trainedModel(): { model: TinyCnn; opt: SGD } {
  manualSeed(3);
  const model = new TinyCnn({ numClasses: 10, inChannels: 1 });
  const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  tidy(() => {
    const loss = model.call(randn([4, 1, 28, 28])).logSoftmax(1).mean().neg();
    loss.backward();
    opt.step();
  });
  return { model, opt };
}

test('a checkpoint holds model., optim., ema. and rng.torch tensors and JSON metadata', () => {
  const { model, opt } = trainedModel();
  const file = path.join(tmp, 'ck.safetensors');
  const rng = getRngState();
  const ema = new Map([...model.stateDict()].map(([k, t]) => [k, t.clone().keep()] as [string, Tensor]));
  saveCheckpoint(file, { model: model.stateDict(), optimizer: opt.stateDict().tensors, ema, rng, meta: { epoch: 3, step: 42, history: [{ a: 1 }] } });
  const names = [...readSafetensors(file).keys()];
  assert.ok(names.includes('model.conv1.weight') && names.includes('model.bn1.running_mean') && names.includes('ema.fc.bias'));
  assert.ok(names.includes('rng.torch') && names.some((n) => n.startsWith('optim.state.')));
  assert.deepEqual(readCheckpointMeta(file), { epoch: 3, step: 42, history: [{ a: 1 }] });
  assert.equal(parseSafetensorsHeader(file).metadata?.format_version, '1');
  const ck = loadCheckpoint<{ epoch: number }>(file);
  assert.equal(ck.meta.epoch, 3);
  assert.ok(ck.rng!.equal(rng));
  assert.ok(ck.model.get('conv1.weight')!.equal(model.conv1.weight));
  assert.deepEqual([...ck.optimizer.keys()].sort(), [...opt.stateDict().tensors.keys()].sort());
  ck.dispose();
  rng.dispose();
  for (const t of ema.values()) t.dispose();
  model.dispose();
  opt.dispose();
});

test('model.safetensors loads into PyTorch by name and gives the same outputs', () => {
  const { model } = trainedModel();
  const file = path.join(tmp, 'model.safetensors');
  saveModelWeights(file, model, { convkit_model: 'tiny_cnn' });
  model.eval();
  manualSeed(7);
  const x = randn([2, 1, 28, 28]);
  const out = noGrad(() => model.call(x));
  fs.writeFileSync(path.join(tmp, 'x.bin'), x.toBytes());
  // a reader written from the safetensors spec alone (Debian's torch has no safetensors package)
  const py = `
import json, struct, sys, torch, torch.nn as nn
torch.set_num_threads(1)
def load(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {})
    dt = {'F32': torch.float32, 'I64': torch.int64}
    out = {}
    for k, v in header.items():
        b, e = v['data_offsets']
        buf = bytearray(raw[8 + n + b:8 + n + e])
        out[k] = torch.frombuffer(buf, dtype=dt[v['dtype']]).reshape(v['shape']) if e > b else torch.zeros(v['shape'], dtype=dt[v['dtype']])
    return out, meta
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False); self.bn1 = nn.BatchNorm2d(16); self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2); self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False); self.bn2 = nn.BatchNorm2d(32)
        self.avgpool = nn.AdaptiveAvgPool2d(1); self.dropout = nn.Dropout(0.0); self.fc = nn.Linear(32, 10)
    def forward(self, x):
        y = self.pool(self.relu(self.bn1(self.conv1(x))))
        z = self.relu(self.bn2(self.conv2(y)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(z), 1)))
sd, meta = load(sys.argv[1])
m = Tiny().eval()
m.load_state_dict(sd, strict=True)
x = torch.frombuffer(bytearray(open(sys.argv[2], 'rb').read()), dtype=torch.float32).reshape(2, 1, 28, 28)
with torch.no_grad():
    print(json.dumps({'meta': meta, 'out': m(x).tolist()}))
`;
  const res = JSON.parse(execFileSync('/usr/bin/python3', ['-c', py, file, path.join(tmp, 'x.bin')], { encoding: 'utf8' })) as { meta: Record<string, string>; out: number[][] };
  assert.equal(res.meta.format, 'pt');
  assert.equal(res.meta.convkit_model, 'tiny_cnn');
  const ref = tensor(res.out);
  assert.ok(out.allclose(ref, 1e-4, 1e-5), `convkit ${out} vs torch ${ref}`);
  // and back into convkit
  const again = new TinyCnn({ numClasses: 10, inChannels: 1 });
  loadModelWeights(again, file);
  assert.ok(again.conv2.weight.equal(model.conv2.weight));
  for (const t of [x, out, ref]) t.dispose();
  model.dispose();
  again.dispose();
});

test('a failure in the middle of a write leaves the previous checkpoint intact', () => {
  const file = path.join(tmp, 'atomic.safetensors');
  const big = (v: number): StateDict => new Map([['a', full([256, 1024], v)], ['b', full([512, 1024], v)]]);
  const v1 = big(1);
  saveCheckpoint(file, { model: v1, meta: { epoch: 1 } });
  const original = fsDefault.writeSync;
  let written = 0;
  // fail once half of the ~3 MB have gone out
  fsDefault.writeSync = ((fd: number, buf: NodeJS.ArrayBufferView, ...rest: unknown[]) => {
    const n = (original as (...a: unknown[]) => number)(fd, buf, ...rest);
    written += n;
    if (written > 1.5e6) throw Object.assign(new Error('ENOSPC: no space left on device (injected)'), { code: 'ENOSPC' });
    return n;
  }) as typeof fsDefault.writeSync;
  syncBuiltinESMExports();
  const v2 = big(2);
  try {
    assert.throws(() => saveCheckpoint(file, { model: v2, meta: { epoch: 2 } }), /atomic\.safetensors.*write failed: ENOSPC/);
  } finally {
    fsDefault.writeSync = original;
    syncBuiltinESMExports();
  }
  assert.ok(written > 1.5e6);
  const ck = loadCheckpoint<{ epoch: number }>(file);
  assert.equal(ck.meta.epoch, 1);
  assert.equal(ck.model.get('b')!.sum().item(), 512 * 1024);
  ck.dispose();
  assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-')), [], 'no temp file is left behind');
  for (const t of [...v1.values(), ...v2.values()]) t.dispose();
});

test("the format's version cannot be shadowed by the state's keys; older files and newer versions", () => {
  const file = path.join(tmp, 'versions.safetensors');
  const w = full([2], 1);
  saveCheckpoint(file, { model: new Map([['w', w]]), meta: { version: 7, epoch: 1 } });
  assert.deepEqual(readCheckpointMeta(file), { version: 7, epoch: 1 });
  // a file written before format_version existed: the version inside the JSON
  writeSafetensors(file, new Map([['model.w', w]]), { format: 'convkit-checkpoint', convkit: JSON.stringify({ version: 1, epoch: 2 }) });
  assert.equal(readCheckpointMeta<{ epoch: number }>(file).epoch, 2);
  writeSafetensors(file, new Map([['model.w', w]]), { format: 'convkit-checkpoint', format_version: '2', convkit: '{"epoch": 2}' });
  assert.throws(() => readCheckpointMeta(file), /versions\.safetensors: unsupported checkpoint version "2"; this convkit reads version 1/);
  writeSafetensors(file, new Map([['model.w', w]]), { format: 'convkit-checkpoint', format_version: '1', convkit: '[1, 2]' });
  assert.throws(() => readCheckpointMeta(file), /must be a JSON object, got \[1,2\]/);
  w.dispose();
});

test('SIGKILL while a large checkpoint is being written leaves a loadable file', async () => {
  const dir = path.join(tmp, 'kill');
  fs.mkdirSync(dir);
  const file = path.join(dir, 'last.safetensors');
  const writer = path.join(tmp, 'writer.mjs');
  const mod = (p: string): string => JSON.stringify(new URL(`../../src/${p}`, import.meta.url).href);
  fs.writeFileSync(writer, `
import { full } from ${mod('engine/index.js')};
import { saveCheckpoint } from ${mod('train/checkpoint.js')};
const file = process.argv[2];
// 32 MB per version, each tensor filled with the version number
for (let v = 1; ; v++) {
  const t = new Map([['a', full([4, 1024, 1024], v)], ['b', full([4, 1024, 1024], v)]]);
  saveCheckpoint(file, { model: t, meta: { version: v } });
  for (const x of t.values()) x.dispose();
  process.stdout.write(v + '\\n');
}
`);
  let midWrite = 0;
  for (const delayMs of [15, 60, 150]) {
    const child = spawn(process.execPath, [writer, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    // wait until a first version is complete, then kill at some point of a later write
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    await new Promise((r) => setTimeout(r, delayMs));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const ck = loadCheckpoint<{ version: number }>(file);
    const v = ck.meta.version;
    assert.ok(v >= 1);
    assert.equal(ck.model.get('a')!.min().item(), v, 'tensor data and metadata are from the same, complete version');
    assert.equal(ck.model.get('b')!.max().item(), v);
    ck.dispose();
    if (removeStaleTempFiles(dir).length > 0) midWrite++;
    assert.deepEqual(fs.readdirSync(dir), ['last.safetensors']);
  }
  // the writer spends nearly all its time inside saveCheckpoint: some kill must have hit a write
  assert.ok(midWrite >= 1, 'no kill landed in the middle of a write');
});

test('loading weights of another architecture fails listing the keys, and changes nothing', () => {
  const a = new TinyCnn({ numClasses: 10, inChannels: 1 });
  const file = path.join(tmp, 'tiny10.safetensors');
  saveModelWeights(file, a);
  const b = new TinyCnn({ numClasses: 5, inChannels: 1 });
  const before = b.conv1.weight.clone();
  assert.throws(() => loadModelWeights(b, file), (e: Error) =>
    /tiny10\.safetensors: does not fit model TinyCnn: shape mismatches \(2\): fc\.weight \(expected \[5, 32\], found \[10, 32\]\)/.test(e.message) &&
    /ignoreMismatchedHead/.test(e.message) && /the file holds \d+ tensors: .*conv1\.weight/.test(e.message));
  assert.ok(b.conv1.weight.equal(before), 'a failed load copies nothing');
  const rep = loadModelWeights(b, file, { ignoreMismatchedHead: true });
  assert.deepEqual(rep.skippedHead, ['fc.weight', 'fc.bias']);
  assert.ok(b.conv1.weight.equal(a.conv1.weight));
  // a truncated file names itself and the problem
  const raw = fs.readFileSync(file);
  fs.writeFileSync(path.join(tmp, 'cut.safetensors'), raw.subarray(0, raw.length - 64));
  assert.throws(() => loadModelWeights(b, path.join(tmp, 'cut.safetensors')), /cut\.safetensors/);
  assert.throws(() => loadModelWeights(b, path.join(tmp, 'missing.safetensors')), /missing\.safetensors: no such file/);
  for (const t of [before]) t.dispose();
  a.dispose();
  b.dispose();
});

test('writeFileAtomic replaces whole files and stale temp files are cleaned up', () => {
  const f = path.join(tmp, 'log.jsonl');
  writeFileAtomic(f, 'one\n');
  writeFileAtomic(f, 'two\n');
  assert.equal(fs.readFileSync(f, 'utf8'), 'two\n');
  fs.writeFileSync(`${f}.tmp-123-0123456789ab`, 'half');
  assert.deepEqual(removeStaleTempFiles(tmp), ['log.jsonl.tmp-123-0123456789ab']);
});

test('confusion matrix, per-class report and top-k', () => {
  const cm = new ConfusionMatrix(3);
  cm.add([0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 2, 0, 2]);
  assert.deepEqual(cm.toJSON(), [[1, 1, 0], [0, 2, 0], [1, 0, 2]]);
  assert.equal(cm.accuracy, 5 / 7);
  const r = cm.report(['a', 'b', 'c']);
  assert.deepEqual(r.classes.map((c) => [c.name, c.precision, c.recall, c.support]), [['a', 0.5, 0.5, 2], ['b', 2 / 3, 1, 2], ['c', 1, 2 / 3, 3]]);
  assert.ok(Math.abs(r.classes[1].f1 - 0.8) < 1e-12);
  assert.throws(() => cm.add([3], [0]), /label 3 or prediction 0 outside \[0, 3\)/);
  const logits = tensor([[0.1, 0.5, 0.2, 0.9], [3, 2, 1, 0], [0, 1, 2, 3]]);
  const target = tensor([1, 3, 3]);
  assert.deepEqual(topkCorrect(logits, target, [1, 2, 5]), [1, 2, 3]);
  logits.dispose();
  target.dispose();
});

test('the progress bar prints about every 10% when not on a terminal', () => {
  const lines: string[] = [];
  const bar = new ProgressBar({ total: 200, label: 'epoch 1/3', stream: { write: (s) => { lines.push(s); return true; } }, tty: false });
  for (let i = 1; i <= 200; i++) bar.update(i, { loss: '0.5' });
  bar.finish('epoch 1: done');
  assert.equal(lines.length, 11);
  assert.match(lines[0], /^ 10% epoch 1\/3 20\/200 {2}loss 0\.5 {2}ETA/);
  const tty: string[] = [];
  const t = new ProgressBar({ total: 3, label: 'e', stream: { write: (s) => { tty.push(s); return true; }, columns: 80 }, tty: true });
  t.update(3, { acc: '90%' });
  assert.match(tty[0], /^\r\x1b\[2K\[=+\] 100% e 3\/3/);
});

test('summary(): per-layer shapes, parameters and multiply-adds with totals', () => {
  const m = new TinyCnn({ numClasses: 10, inChannels: 1 });
  const s = summary(m, [2, 1, 28, 28]);
  assert.equal(s.totalParams, m.numParameters());
  assert.equal(s.totalMacs, countMacs(m, [2, 1, 28, 28]).total);
  const conv1 = s.rows.find((r) => r.name === 'conv1')!;
  assert.deepEqual(conv1.outputShapes, [[2, 16, 28, 28]]);
  assert.equal(conv1.macs, 2 * 16 * 28 * 28 * 9);
  assert.equal(conv1.params, 16 * 9);
  assert.deepEqual(s.rows.find((r) => r.name === 'fc')!.outputShapes, [[2, 10]]);
  assert.equal(m.training, true, 'training mode restored');
  m.dispose();
});
