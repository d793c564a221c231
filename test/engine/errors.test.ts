// Bad input gives a JS Error that says what was wrong, never a crash: shape and dtype mismatches
// (with the op's name, the input shapes and libtorch's own message, checked against the message
// PyTorch prints for the same call), indices out of range, bad arguments from JS, and devices
// this libtorch does not have. Everything runs in this process, which must survive it all.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  F, Tensor, cat, cudaAvailable, dispose, fromBytes, manualSeed, ones, randn, setNumThreads, stack, tensor, tidy, zeros,
} from '../../src/engine/index.js';
import { OracleBatch, decodeString } from '../helpers/oracle.js';

manualSeed(4);

/** Runs fn, expects a JS Error (of `type` when given), and returns it. */
function thrown(fn: () => unknown, type: new (...a: never[]) => Error = Error): Error {
  let err: unknown;
  try {
    tidy(() => { fn(); });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof type, `expected a ${type.name}, got ${err === undefined ? 'no error' : String(err)}`);
  return err as Error;
}

// PyTorch's message for the same mistake: the engine must pass libtorch's own words through.
const batch = new OracleBatch();
const pyMessage: Record<string, number> = {};
function pyError(name: string, code: string): void {
  pyMessage[name] = batch.add(`try:\n    ${code}\n    O['msg'] = S('NO ERROR')\nexcept Exception as e:\n    O['msg'] = S(str(e).split('\\n')[0])`);
}
const torchMessage = (name: string): string => decodeString(batch.get(pyMessage[name]).msg);

pyError('matmul', 'torch.randn(2, 3) @ torch.randn(4, 5)');
pyError('conv2d', 'F.conv2d(torch.randn(1, 3, 8, 8), torch.randn(4, 2, 3, 3))');
pyError('add', 'torch.randn(2, 3) + torch.randn(4)');
pyError('bmm', 'torch.bmm(torch.randn(2, 3, 4), torch.randn(3, 4, 5))');
pyError('cat', 'torch.cat([torch.randn(2, 3), torch.randn(2, 4)])');
pyError('select', 'torch.randn(3, 4).select(0, 5)');
pyError('gather', 'torch.randn(3, 4).gather(1, torch.tensor([[7]]))');
pyError('indexSelect', 'torch.randn(3, 4).index_select(0, torch.tensor([10]))');
pyError('embedding', 'F.embedding(torch.tensor([1.0, 2.0]), torch.randn(5, 2))');
pyError('crossEntropy', 'F.cross_entropy(torch.randn(4, 3), torch.randn(4))');
pyError('crossEntropy class', 'F.cross_entropy(torch.randn(4, 3), torch.tensor([0, 1, 5, 2]))');
pyError('view', 'torch.randn(3, 4).view(5, 2)');
pyError('reshape', 'torch.randn(3, 4).reshape(5, 3)');

before(async () => { await batch.run(); });

/** The engine's message names the op, every input shape, and carries PyTorch's wording. */
function assertDescribes(err: Error, op: string, shapes: string[], torchName: string): void {
  assert.ok(err.message.startsWith(`${op}(`), `message should start with the op name '${op}(': ${err.message}`);
  for (const s of shapes) assert.ok(err.message.includes(s), `message should mention ${s}: ${err.message}`);
  // Python's binding renames C++ type names (CPUFloatType -> torch.FloatTensor); compare the rest.
  const theirs = torchMessage(torchName).replace(/torch\.(\w+)Tensor/g, 'CPU$1Type');
  assert.notEqual(theirs, 'NO ERROR', `PyTorch accepted the '${torchName}' call`);
  assert.ok(err.message.includes(theirs), `message should carry libtorch's own words\n  ours:    ${err.message}\n  PyTorch: ${theirs}`);
}

describe('shape mismatches name the op, the shapes and libtorch\'s message', () => {
  test('matmul', () => {
    const e = thrown(() => randn([2, 3]).matmul(randn([4, 5])));
    assertDescribes(e, 'matmul', ['[2, 3] float32', '[4, 5] float32'], 'matmul');
  });
  test('conv2d', () => {
    const e = thrown(() => F.conv2d(randn([1, 3, 8, 8]), randn([4, 2, 3, 3])));
    assertDescribes(e, 'conv2d', ['[1, 3, 8, 8]', '[4, 2, 3, 3]'], 'conv2d');
  });
  test('add (broadcasting)', () => {
    const e = thrown(() => randn([2, 3]).add(randn([4])));
    assertDescribes(e, 'add', ['[2, 3]', '[4]'], 'add');
  });
  test('bmm', () => {
    const e = thrown(() => randn([2, 3, 4]).bmm(randn([3, 4, 5])));
    assertDescribes(e, 'bmm', ['[2, 3, 4]', '[3, 4, 5]'], 'bmm');
  });
  test('cat lists every tensor', () => {
    const e = thrown(() => cat([randn([2, 3]), randn([2, 4])]));
    assertDescribes(e, 'cat', ['[2, 3] float32, [2, 4] float32'], 'cat');
  });
  test('view and reshape', () => {
    assertDescribes(thrown(() => randn([3, 4]).view([5, 2])), 'view', ['[3, 4]'], 'view');
    assertDescribes(thrown(() => randn([3, 4]).reshape([5, 3])), 'reshape', ['[3, 4]'], 'reshape');
  });
  test('stack of different shapes', () => {
    const e = thrown(() => stack([randn([2]), randn([3])]));
    assert.match(e.message, /^stack\(\[\[2\] float32, \[3\] float32\]\): stack expects each tensor to be equal size/);
  });
});

describe('wrong dtypes', () => {
  test('crossEntropy with float targets of the wrong shape', () => {
    assertDescribes(thrown(() => F.crossEntropy(randn([4, 3]), randn([4]))), 'crossEntropy', ['[4, 3] float32', '[4] float32'], 'crossEntropy');
  });
  test('embedding with float indices', () => {
    assertDescribes(thrown(() => F.embedding(tensor([1.0, 2.5]), randn([5, 2]))), 'embedding', ['[2] float32'], 'embedding');
  });
  test('int32 class targets, int64 in a float matmul', () => {
    assert.match(thrown(() => F.crossEntropy(randn([2, 3]), tensor([0, 1], { dtype: 'int32' }))).message, /crossEntropy/);
    assert.match(thrown(() => randn([2, 2]).matmul(tensor([[1, 2], [3, 4]]))).message, /^matmul\(.*int64.*\): /);
  });
  test('class index out of range in crossEntropy', () => {
    const e = thrown(() => F.crossEntropy(randn([4, 3]), tensor([0, 1, 5, 2])));
    assertDescribes(e, 'crossEntropy', ['[4, 3]', '[4] int64'], 'crossEntropy class');
  });
});

describe('indices out of range', () => {
  test('select', () => assertDescribes(thrown(() => randn([3, 4]).select(0, 5)), 'select', ['[3, 4]'], 'select'));
  test('gather', () => assertDescribes(thrown(() => randn([3, 4]).gather(1, tensor([[7]]))), 'gather', ['[3, 4]', '[1, 1] int64'], 'gather'));
  test('indexSelect', () => assertDescribes(thrown(() => randn([3, 4]).indexSelect(0, tensor([10]))), 'indexSelect', ['[3, 4]', '[1] int64'], 'indexSelect'));
  test('negative index beyond the size, narrow past the end, dim out of range', () => {
    assert.match(thrown(() => randn([3]).select(0, -4)).message, /^select\(/);
    assert.match(thrown(() => randn([3, 4]).narrow(1, 2, 5)).message, /^narrow\(/);
    assert.match(thrown(() => randn([3, 4]).sum(2)).message, /Dimension out of range/);
    assert.throws(() => randn([3, 4]).size(5), RangeError);
  });
});

describe('bad arguments from JS', () => {
  test('a number where a tensor goes', () => {
    thrown(() => F.conv2d(randn([1, 1, 3, 3]), 3 as unknown as Tensor), TypeError);
    thrown(() => randn([2]).matmul(3 as unknown as Tensor), TypeError);
    thrown(() => cat([randn([2]), 3 as unknown as Tensor]), TypeError);
    thrown(() => F.relu(undefined as unknown as Tensor), TypeError);
    thrown(() => randn([2]).add('1' as unknown as number), TypeError);
    thrown(() => randn([2]).add(undefined as unknown as number), TypeError);
    thrown(() => randn([2]).add(null as unknown as number), TypeError);
  });
  test('a dtype that does not exist', () => {
    assert.match(thrown(() => zeros([2], { dtype: 'float128' as never }), TypeError).message, /unknown dtype 'float128'/);
    assert.match(thrown(() => tensor([1, 2], { dtype: 'complex64' as never }), TypeError).message, /unknown dtype/);
    thrown(() => randn([2]).to('float128'));
  });
  test('non-integer, negative, NaN, infinite and undefined shapes and sizes', () => {
    thrown(() => zeros([2, 2.5]), TypeError);
    thrown(() => zeros([-1]), TypeError);
    thrown(() => randn([NaN]), TypeError);
    thrown(() => ones([Infinity]), TypeError);
    thrown(() => zeros(undefined as unknown as number[]), TypeError);
    thrown(() => zeros([2, undefined as unknown as number]), TypeError);
    thrown(() => randn([4]).reshape([2.5, 2]), TypeError);
    thrown(() => randn([4]).view([-2, -2]));
    thrown(() => randn([4]).select(0, NaN), TypeError);
    thrown(() => randn([4]).select(0, Infinity), TypeError);
    thrown(() => randn([4]).narrow(0, 1e300, 1), TypeError);
    thrown(() => randn([4]).reshape([2 ** 63]), TypeError);
    thrown(() => randn([4]).transpose(0, 0.5), TypeError);
  });
  test('shapes too large to allocate', () => {
    assert.match(thrown(() => zeros([2 ** 40, 2 ** 40])).message, /^zeros\(/);
  });
  test('malformed data', () => {
    thrown(() => tensor([[1, 2], [3]]), TypeError);
    thrown(() => tensor(undefined as never), TypeError);
    thrown(() => fromBytes(new Uint8Array(7), [2], 'float32'), RangeError);
    thrown(() => tensor(new Uint16Array(2) as never), TypeError);
  });
  test('bad options', () => {
    thrown(() => F.crossEntropy(randn([2, 3]), tensor([0, 1]), { labelSmoothing: 2 }), RangeError);
    thrown(() => F.crossEntropy(randn([2, 3]), tensor([0, 1]), { reduction: 'avg' as never }), TypeError);
    thrown(() => F.dropout(randn([2]), 1.5), RangeError);
    thrown(() => F.pad(randn([1, 1, 4, 4]), [1, 1, 1], 'reflect'), TypeError);
    thrown(() => F.interpolate(randn([1, 1, 4, 4]), 8, { mode: 'trilinear' as never }), TypeError);
    thrown(() => F.conv2d(randn([1, 1, 4, 4]), randn([1, 1, 3, 3]), null, { padding: 'full' as never }), TypeError);
    thrown(() => randn([2]).clamp(), TypeError);
    thrown(() => manualSeed(-1), RangeError);
    thrown(() => setNumThreads(0), RangeError);
  });
  test('a disposed tensor in an array passed to cat', () => {
    const a = randn([2]);
    const b = randn([2]);
    b.dispose();
    const e = thrown(() => cat([a, b]));
    assert.match(e.message, /disposed/);
    assert.match(e.message, /element 1/);
    thrown(() => F.foreach.add_([a], [b]));
    a.dispose();
  });
  test('autograd misuse', () => {
    thrown(() => randn([2], { requiresGrad: true }).add_(1));
    thrown(() => randn([2]).sum().backward());
    thrown(() => { tensor([1, 2]).requiresGrad = true; });
    thrown(() => { randn([2], { requiresGrad: true }).grad = randn([3]); });
  });
});

describe('devices', () => {
  test("asking for 'cuda' on a CPU-only libtorch throws a clear error", { skip: cudaAvailable() ? 'this libtorch has CUDA' : false }, () => {
    for (const fn of [() => zeros([2], { device: 'cuda' }), () => randn([2], { device: 'cuda:1' }), () => randn([2]).to('cuda'), () => tensor([1, 2], { device: 'cuda' })]) {
      const e = thrown(fn);
      assert.match(e.message, /device 'cuda(:1)?' was asked for, but this libtorch has no CUDA device/);
    }
  });
  test('a malformed device string', () => {
    assert.match(thrown(() => zeros([2], { device: 'gpu0' })).message, /device/i);
  });
});

after(() => {
  // the process survived all of the above and still computes
  const r = tidy(() => randn([3, 4]).matmul(ones([4, 2])).add(1).sum().item());
  assert.ok(Number.isFinite(r));
  dispose([]);
});

test('the process is still healthy after all the errors', () => tidy(() => {
  const x = tensor([[1, 2], [3, 4]], { dtype: 'float32' });
  assert.deepEqual(x.matmul(x).toArray(), [[7, 10], [15, 22]]);
  const y = F.conv2d(ones([1, 1, 3, 3]), ones([1, 1, 3, 3]));
  assert.equal(y.item(), 9);
}));
