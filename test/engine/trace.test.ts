// The op recorder export is built on: it records ops that read the traced inputs with their
// attributes and module scope, folds ops on constants into constants (their real values), names
// parameters, refuses data-dependent reads and unknown ops on traced values, and always puts
// the addon back (after an error too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { F, ones, randn, tensor, tidy } from '../../src/engine/index.js';
import { native } from '../../src/engine/native.js';
import { disposeTrace, traceOps, TraceError } from '../../src/engine/trace.js';

test('records traced ops, folds constant ones, names parameters, keeps the scope', () => {
  const x = randn([2, 3]);
  const w = randn([4, 3]);
  let scope = '';
  const { result, trace } = tidy(() => traceOps(() => {
    scope = 'fc';
    const bias = ones([4]).mul(0.5); // constant: folded
    const y = F.linear(x, w, bias);
    scope = 'act';
    return y.relu().view([8]);
  }, { inputs: [x], constants: [['fc.weight', w]], scope: () => scope }));
  assert.deepEqual(trace.ops.map((o) => [o.op, o.scope]), [['linear', 'fc'], ['relu', 'act'], ['view', 'act']]);
  const lin = trace.ops[0];
  assert.equal(trace.values[lin.inputs[0] as number].kind, 'input');
  assert.equal(trace.values[lin.inputs[1] as number].name, 'fc.weight');
  const bias = trace.values[lin.inputs[2] as number];
  assert.equal(bias.kind, 'constant');
  assert.deepEqual(bias.tensor!.toArray(), [0.5, 0.5, 0.5, 0.5]);
  assert.deepEqual(trace.ops[2].attrs, { shape: [8] });
  assert.deepEqual(trace.values[trace.outputs[0]].shape, [8]);
  assert.deepEqual(result.shape, [8]);
  disposeTrace(trace);
  assert.equal(bias.tensor!.isDisposed, true);
  assert.equal(w.isDisposed, false, 'named constants are the caller\'s');
});

test('in-place ops make a new value for the same tensor', () => {
  const x = randn([3]);
  const { trace } = traceOps(() => { const y = x.mul(2); y.add_(x); return y; }, { inputs: [x], constants: [], scope: () => '' });
  assert.deepEqual(trace.ops.map((o) => o.op), ['mulScalar', 'add_']);
  assert.equal(trace.outputs[0], trace.ops[1].outputs[0]);
  assert.equal(trace.ops[1].inputs[0], trace.ops[0].outputs[0]);
});

test('data-dependent reads and unknown ops on traced values fail naming op and scope; the addon is restored', () => {
  const addonAdd = native.add;
  const x = randn([3]);
  assert.throws(() => traceOps(() => x.sum().item(), { inputs: [x], constants: [], scope: () => 'head' }),
    (e: Error) => e instanceof TraceError && /'item' in module 'head'/.test(e.message));
  assert.equal(native.add, addonAdd);
  assert.throws(() => traceOps(() => x.cumsum(0), { inputs: [x], constants: [], scope: () => 'a.b' }),
    (e: Error) => e instanceof TraceError && /no export mapping.*'cumsum' in module 'a\.b'/.test(e.message));
  // reading a constant is fine: it is not the input's
  const c = tensor([1, 2]);
  const { trace } = traceOps(() => x.mul(c.sum().item()), { inputs: [x], constants: [], scope: () => '' });
  assert.deepEqual(trace.ops.map((o) => o.op), ['mulScalar']);
  assert.equal(trace.ops[0].attrs.scalar, 3);
  assert.equal(native.add, addonAdd);
});
