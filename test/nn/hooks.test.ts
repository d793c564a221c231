// Forward hooks: a plain hook sees the output and cannot change it, whatever it returns; a
// replace hook's result becomes the module's output for the rest of the pass (PyTorch's
// returning forward hooks), and removing a hook restores the plain forward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/engine/index.js';
import { Module, Sequential } from '../../src/nn/index.js';

class AddOne extends Module {
  forward(x: Tensor): Tensor { return x.add(1); }
}

test('plain hooks observe, replace hooks substitute the output, removers undo', () => {
  const a = new AddOne();
  const net = new Sequential(a, new AddOne());
  const x = tensor([1, 2], { dtype: 'float32' });
  const seen: number[][] = [];
  // a stray return value of a plain hook is ignored
  const plain = a.registerForwardHook((_m, _i, out) => seen.push((out as Tensor).toArray() as number[]));
  assert.deepEqual(net.call(x).toArray(), [3, 4]);
  assert.deepEqual(seen, [[2, 3]]);
  const replace = a.registerForwardReplaceHook((_m, _i, out) => (out as Tensor).mul(10));
  assert.deepEqual(net.call(x).toArray(), [21, 31]);
  // undefined keeps the output
  const keep = a.registerForwardReplaceHook(() => undefined);
  assert.deepEqual(net.call(x).toArray(), [21, 31]);
  replace();
  keep();
  plain();
  assert.deepEqual(net.call(x).toArray(), [3, 4]);
  assert.equal(seen.length, 3, 'the removed plain hook saw nothing more');
});
