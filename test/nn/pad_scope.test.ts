// ZeroPadChannels adds zero channels around its input's, by hand; withModulePaths names the
// innermost module whose forward runs and puts every forward back, also when one throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/engine/index.js';
import { Module, Sequential, ZeroPadChannels, withModulePaths } from '../../src/nn/index.js';

test('ZeroPadChannels: front and back zero channels, the input untouched between them', () => {
  const x = tensor([1, 2, 3, 4, 5, 6, 7, 8], { dtype: 'float32' }).reshape([2, 2, 2, 1]);
  const y = new ZeroPadChannels(1, 2).call(x);
  assert.deepEqual(y.shape, [2, 5, 2, 1]);
  assert.deepEqual(y.toArray(), [[[[0], [0]], [[1], [2]], [[3], [4]], [[0], [0]], [[0], [0]]], [[[0], [0]], [[5], [6]], [[7], [8]], [[0], [0]], [[0], [0]]]]);
  // [N, C] features, and no padding at all
  assert.deepEqual(new ZeroPadChannels(0, 1).call(tensor([[1, 2]], { dtype: 'float32' })).toArray(), [[1, 2, 0]]);
  assert.equal(new ZeroPadChannels(0, 0).call(x), x);
  assert.throws(() => new ZeroPadChannels(-1, 2), /front must be a whole number of channels >= 0, got -1/);
  assert.throws(() => new ZeroPadChannels(1, 0.5), /back must be .* got 0.5/);
  assert.throws(() => new ZeroPadChannels(1, 1).call(tensor([1, 2], { dtype: 'float32' })), /expected an \[N, C, \.\.\.\] tensor, got shape \[2\]/);
});

class Probe extends Module {
  constructor(readonly seen: string[], readonly where: () => string, readonly fail = false) {
    super();
  }
  forward(x: Tensor): Tensor {
    this.seen.push(this.where());
    if (this.fail) throw new Error('boom');
    return x;
  }
}

test('withModulePaths: the innermost running module, forwards restored afterwards', () => {
  const seen: string[] = [];
  let where = (): string => 'unset';
  const inner = new Probe(seen, () => where());
  const net = new Sequential(new Sequential(inner), new Probe(seen, () => where()));
  const x = tensor([1], { dtype: 'float32' });
  withModulePaths(net, (current) => {
    where = current;
    assert.equal(current(), '');
    net.call(x);
  });
  assert.deepEqual(seen, ['0.0', '1']);
  assert.ok(!Object.prototype.hasOwnProperty.call(inner, 'forward'), 'the wrapper is gone');
  const failing = new Probe(seen, () => where(), true);
  assert.throws(() => withModulePaths(failing, (current) => {
    where = current;
    failing.call(x);
  }), /boom/);
  assert.ok(!Object.prototype.hasOwnProperty.call(failing, 'forward'));
  assert.equal(seen[seen.length - 1], '');
});
