// readPth against checkpoints written by the real torch.save (Debian's torch 1.13 + torchvision 0.14),
// each compared byte for byte with what Python says the tensors hold; and hostile/corrupt files,
// each of which must fail with an Error naming the file, without running anything.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPth, readPthRaw, type RawTensor } from '../../src/io/pth.js';
import type { StateDict } from '../../src/engine/index.js';

const PYTHON = '/usr/bin/python3';

// One Python run writes every fixture; `oracle(name, sd)` stores each tensor's contiguous bytes
// (bool as uint8) in <name>.bin with an index in <name>.json.
const FIXTURES = String.raw`
import sys, os, json, collections, zipfile, warnings
warnings.filterwarnings('ignore')
import torch, torchvision
out = sys.argv[1]
torch.manual_seed(0)

def raw(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bool: t = t.to(torch.uint8)
    return t.reshape(-1).view(torch.uint8).numpy().tobytes()

def oracle(name, sd):
    index, blob = {}, bytearray()
    for k, t in sd.items():
        b = raw(t)
        index[k] = {'dtype': str(t.dtype).split('.')[1], 'shape': list(t.shape), 'offset': len(blob), 'nbytes': len(b)}
        blob += b
    json.dump(index, open(f'{out}/{name}.json', 'w'))
    open(f'{out}/{name}.bin', 'wb').write(blob)

class Reduce:
    def __init__(self, fn, args): self.fn, self.args = fn, args
    def __reduce__(self): return (self.fn, self.args)

def rewrite(src, dst, change, method=zipfile.ZIP_STORED):
    zin = zipfile.ZipFile(src)
    with zipfile.ZipFile(dst, 'w', method) as zout:
        for i in zin.infolist():
            data = change(i.filename, zin.read(i.filename))
            if data is not None: zout.writestr(i.filename, data)

base = torch.arange(10, dtype=torch.float32)
sd = collections.OrderedDict()
sd['f32'] = torch.randn(2, 3)
sd['f64'] = torch.randn(4, dtype=torch.float64)
sd['f16'] = torch.randn(5).half()
sd['bf16'] = torch.randn(2, 2).bfloat16()
sd['i64'] = torch.tensor([-(2**40), 0, 7, 2**62])
sd['i32'] = torch.tensor([-5, 6], dtype=torch.int32)
sd['i16'] = torch.tensor([-300, 300], dtype=torch.int16)
sd['i8'] = torch.tensor([-100, 100], dtype=torch.int8)
sd['u8'] = torch.tensor([0, 255, 17], dtype=torch.uint8)
sd['bool'] = torch.tensor([True, False, True])
sd['scalar'] = torch.tensor(3.5)
sd['empty'] = torch.zeros(0, 3)
sd['transposed'] = torch.randn(3, 4).t()
sd['strided'] = torch.randn(4, 6)[:, ::2]
sd['permuted'] = torch.randn(2, 3, 4).permute(2, 0, 1)
sd['expanded'] = torch.randn(3, 1).expand(3, 4)
sd['shared_a'] = base[2:5]
sd['shared_b'] = base[5:9].view(2, 2)
sd['param'] = torch.nn.Parameter(torch.randn(3))
sd['param_frozen'] = torch.nn.Parameter(torch.randn(2), requires_grad=False)
sd['__proto__'] = torch.ones(1)
sd['shared_c'] = base[0:2]
torch.save(sd, f'{out}/dtypes.pt')
oracle('dtypes', sd)

r = torchvision.models.resnet18(num_classes=10)
with torch.no_grad():
    for b in r.buffers():
        if b.dtype.is_floating_point: b.uniform_(0.5, 1.5)
rsd = r.state_dict()
torch.save(rsd, f'{out}/resnet18.pt')
oracle('resnet18', rsd)

small = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
opt = torch.optim.SGD(small.parameters(), lr=0.1, momentum=0.9)
small(torch.randn(2, 1, 5, 5)).sum().backward()
opt.step()
ssd = small.state_dict()
oracle('small', ssd)
extras = {'dtype': torch.float16, 'device': torch.device('cuda', 0), 'size': torch.Size([1, 2]), 'blob': b'\x00\xff'}
torch.save({'model': ssd, 'epoch': 3, 'optimizer': opt.state_dict(), 'best': 0.75, 'tags': ['a', None, True], **extras}, f'{out}/ckpt_model.pt')
torch.save({'c': torch.zeros(2, dtype=torch.complex64)}, f'{out}/complex.pt')
torch.save({'state_dict': ssd, 'epoch': 3}, f'{out}/ckpt_state_dict.pt')
torch.save({'ema': ssd, 'student': ssd, 'epoch': 3}, f'{out}/ckpt_other.pt')
torch.save([ssd], f'{out}/not_dict.pt')
torch.save(ssd, f'{out}/legacy.pt', _use_new_zipfile_serialization=False)
torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), f'{out}/torchscript.pt')

marker = f'{out}/PWNED'
torch.save({'x': Reduce(os.system, (f'touch {marker}',))}, f'{out}/evil_system.pt')
torch.save({'x': Reduce(eval, (f'open({marker!r}, "w")',))}, f'{out}/evil_eval.pt')
st = torch.zeros(4).storage()
hooks = collections.OrderedDict()
torch.save({'w': Reduce(torch._utils._rebuild_tensor_v2, (st, 0, (2, 3), (3, 1), False, hooks))}, f'{out}/bad_stride.pt')
torch.save({'w': Reduce(torch._utils._rebuild_tensor_v2, (st, 3, (2,), (1,), False, hooks))}, f'{out}/bad_offset.pt')
rewrite(f'{out}/dtypes.pt', f'{out}/short_storage.pt', lambda n, d: d[:10] if n == 'dtypes/data/0' else d)
rewrite(f'{out}/dtypes.pt', f'{out}/missing_storage.pt', lambda n, d: None if n == 'dtypes/data/0' else d)
rewrite(f'{out}/dtypes.pt', f'{out}/big_endian.pt', lambda n, d: d)
with zipfile.ZipFile(f'{out}/big_endian.pt', 'a') as z: z.writestr('dtypes/byteorder', 'big')
rewrite(f'{out}/dtypes.pt', f'{out}/deflated.pt', lambda n, d: d, zipfile.ZIP_DEFLATED)
rewrite(f'{out}/dtypes.pt', f'{out}/no_pkl.pt', lambda n, d: None if n.endswith('data.pkl') else d)
rewrite(f'{out}/dtypes.pt', f'{out}/deep.pt', lambda n, d: b'\x80\x02' + b'(' * 100000 if n.endswith('data.pkl') else d)
rewrite(f'{out}/dtypes.pt', f'{out}/huge_string.pt', lambda n, d: b'\x80\x02X\xff\xff\xff\x0f' if n.endswith('data.pkl') else d)
`;

let dir = '';
const fx = (name: string): string => join(dir, name);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'convkit-pth-'));
  execFileSync(PYTHON, ['-c', FIXTURES, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface OracleEntry {
  dtype: string;
  shape: number[];
  offset: number;
  nbytes: number;
}

function oracle(name: string): Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }> {
  const index = JSON.parse(readFileSync(fx(`${name}.json`), 'utf8')) as Record<string, OracleEntry>;
  const blob = new Uint8Array(readFileSync(fx(`${name}.bin`)));
  return new Map(Object.entries(index).map(([k, e]) => [k, { dtype: e.dtype, shape: e.shape, bytes: blob.subarray(e.offset, e.offset + e.nbytes) }]));
}

/** Every tensor has the oracle's name, dtype, shape and bytes, in the oracle's order. */
function assertMatches(got: StateDict, name: string): void {
  const want = oracle(name);
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [k, w] of want) {
    const t = got.get(k)!;
    assert.equal(t.dtype, w.dtype, k);
    assert.deepEqual(t.shape, w.shape, k);
    assert.deepEqual(t.toBytes(), w.bytes, `${k}: values differ`);
  }
}

function disposeAll(sd: StateDict): void {
  for (const t of sd.values()) t.dispose();
}

function assertRawMatches(got: Map<string, RawTensor>, name: string): void {
  const want = oracle(name);
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [k, w] of want) {
    assert.equal(got.get(k)!.dtype, w.dtype, k);
    assert.deepEqual(got.get(k)!.shape, w.shape, k);
    assert.deepEqual(got.get(k)!.data, w.bytes, k);
  }
}

/** The load fails with an Error that names the file (and matches `pattern` when given). */
function assertRefused(path: string, pattern?: RegExp, opts = {}): void {
  assert.throws(
    () => readPth(path, opts),
    (e: unknown) => {
      assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`);
      assert.ok(e.message.includes(path), `message should name ${path}: ${e.message}`);
      if (pattern) assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('readPth: real torch.save checkpoints', () => {
  test('every dtype, 0-d, empty, non-contiguous, expanded, shared storage and parameters', () => {
    const sd = readPth(fx('dtypes.pt'));
    assertMatches(sd, 'dtypes');
    for (const t of sd.values()) assert.ok(t.isContiguous(), 'results are contiguous');
    disposeAll(sd);
  });

  test('torchvision resnet18(num_classes=10): all 122 tensors exact', () => {
    const sd = readPth(fx('resnet18.pt'));
    assert.equal(sd.size, 122);
    assert.deepEqual(sd.get('fc.weight')!.shape, [10, 512]);
    assert.equal(sd.get('bn1.num_batches_tracked')!.dtype, 'int64');
    assertMatches(sd, 'resnet18');
    disposeAll(sd);
  });

  test('readPthRaw gives the same bytes without the engine', () => {
    assertRawMatches(readPthRaw(fx('dtypes.pt')), 'dtypes');
    assertRawMatches(readPthRaw(fx('resnet18.pt'), { verifyCrc: false }), 'resnet18');
  });

  test('deflate-compressed archives (re-zipped by other tools) load the same', () => {
    assertRawMatches(readPthRaw(fx('deflated.pt')), 'dtypes');
  });

  test("training checkpoints: the state dict under 'model' or 'state_dict' is found", () => {
    for (const f of ['ckpt_model.pt', 'ckpt_state_dict.pt']) {
      const sd = readPth(fx(f));
      assertMatches(sd, 'small');
      disposeAll(sd);
    }
  });

  test('opts.key picks a state dict; without it an ambiguous checkpoint lists its keys', () => {
    assertRawMatches(readPthRaw(fx('ckpt_other.pt'), { key: 'ema' }), 'small');
    assertRefused(fx('ckpt_other.pt'), /top-level keys are \[ema, student, epoch\]/);
    assertRefused(fx('ckpt_other.pt'), /'epoch' holds a number 3/, { key: 'epoch' });
    assertRefused(fx('ckpt_other.pt'), /no top-level key 'nope'/, { key: 'nope' });
    assertRefused(fx('ckpt_model.pt'), /'optimizer' is not a dict of tensors/, { key: 'optimizer' });
  });

  test("keys keep the state dict's order, and a key named __proto__ stays a plain key", () => {
    const sd = readPthRaw(fx('dtypes.pt'));
    assert.deepEqual([...sd.keys()].slice(-2), ['__proto__', 'shared_c']);
    assert.deepEqual(sd.get('__proto__')!.shape, [1]);
  });

  test('a checkpoint that is not a dict is refused', () => {
    assertRefused(fx('not_dict.pt'), /holds a list\(1\), not a dict of tensors/);
  });
});

describe('readPth: refusing what it must not load', () => {
  test('os.system and eval are refused, and nothing runs', () => {
    assertRefused(fx('evil_system.pt'), /refusing to load global posix\.system: only state dicts can be read/);
    assertRefused(fx('evil_eval.pt'), /refusing to load global __builtin__\.eval: only state dicts can be read/);
    assert.equal(existsSync(fx('PWNED')), false);
  });

  test('legacy (torch < 1.6) files get a clear message', () => {
    assertRefused(fx('legacy.pt'), /legacy \.pth format \(torch < 1\.6\) is not supported; re-save with torch\.save\(\.\.\., _use_new_zipfile_serialization=True\)/);
  });

  test('TorchScript archives, archives without data.pkl and big-endian files are refused', () => {
    assertRefused(fx('torchscript.pt'), /TorchScript archive/);
    assertRefused(fx('no_pkl.pt'), /no <archive>\/data\.pkl record/);
    assertRefused(fx('big_endian.pt'), /big-endian/);
  });

  test('tensor types convkit cannot hold are named', () => {
    assertRefused(fx('complex.pt'), /unsupported tensor storage torch\.ComplexFloatStorage/);
  });

  test('views that would read past their storage are refused', () => {
    assertRefused(fx('bad_stride.pt'), /reads element 5, past the end of storage '0' \(4 x float32\)/);
    assertRefused(fx('bad_offset.pt'), /reads element 4, past the end/);
  });

  test('a storage entry shorter than its numel, or missing, is refused', () => {
    assertRefused(fx('short_storage.pt'), /tensor 'f32': storage dtypes\/data\/0 holds 10 bytes but .* needs 24/);
    assertRefused(fx('missing_storage.pt'), /needs storage dtypes\/data\/0, which the archive lacks/);
  });

  test('deeply nested and oversized pickles are refused', () => {
    assertRefused(fx('deep.pt'), /\(dtypes\/data\.pkl\): nesting exceeds 4096 levels/);
    assertRefused(fx('huge_string.pt'), /pickle data truncated: wanted 268435455 bytes/);
  });

  test('a size limit stops views that would blow up memory', () => {
    assertRefused(fx('dtypes.pt'), /more than the limit of 16 bytes/, { maxBytes: 16 });
  });

  test('missing files, empty files and garbage are refused', () => {
    assertRefused(fx('does-not-exist.pt'), /ENOENT/);
    assertRefused(dir, /expected a regular file \(PyTorch checkpoint\), found a directory/);
    const cases: [string, Uint8Array][] = [
      ['empty.pt', new Uint8Array(0)],
      ['zeros.pt', new Uint8Array(4096)],
      ['garbage.pt', pseudoRandomBytes(10_000, 7)],
      ['pk.pt', Uint8Array.from([0x50, 0x4b, 0x05, 0x06, ...new Uint8Array(18)])],
    ];
    for (const [name, bytes] of cases) {
      writeFileSync(fx(name), bytes);
      assertRefused(fx(name));
    }
  });

  test('a checkpoint cut short at any point is refused', () => {
    const bytes = readFileSync(fx('dtypes.pt'));
    const path = fx('cut.pt');
    for (let n = 0; n < bytes.length; n += n < bytes.length - 200 ? 13 : 1) {
      writeFileSync(path, bytes.subarray(0, n));
      assertRefused(path);
    }
  });

  test('corrupted bytes anywhere give a clean result or an Error naming the file', () => {
    const bytes = readFileSync(fx('dtypes.pt'));
    const path = fx('fuzz.pt');
    const rand = prng(42);
    for (let i = 0; i < 400; i++) {
      const copy = Uint8Array.from(bytes);
      const flips = 1 + Math.floor(rand() * 4);
      for (let j = 0; j < flips; j++) copy[Math.floor(rand() * copy.length)] = Math.floor(rand() * 256);
      writeFileSync(path, copy);
      // Without the CRC check the corruption reaches the unpickler and the view checks.
      for (const verifyCrc of [true, false]) {
        try {
          disposeAll(readPth(path, { verifyCrc }));
        } catch (e) {
          assert.ok(e instanceof Error && e.message.includes(path), `iteration ${i}: ${String(e)}`);
        }
      }
    }
  });
});

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const rand = prng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}
