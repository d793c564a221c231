// The graph clean-ups on hand-built graphs: Transposes composed or cancelled, nested Concats
// spliced, dead nodes and unused initializers dropped, equal constants shared, Identity bypassed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeTransposes, dedupeConstants, flattenConcats, removeDead, removeIdentities, type Graph, type Node } from '../../src/export/index.js';

const node = (op: string, inputs: string[], outputs: string[], attrs: Node['attrs'] = {}): Node => ({ op, name: outputs[0], inputs, outputs, attrs, scope: '' });
const graph = (nodes: Node[], outputs: string[], inits: [string, number[]][] = []): Graph => ({
  name: 't', inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 2, 3] }], outputs: outputs.map((name) => ({ name, dtype: 'float32', shape: [] })),
  nodes, initializers: new Map(inits.map(([k, v]) => [k, { dtype: 'float32', dims: [v.length], data: Float32Array.from(v) }])), valueInfo: new Map(),
});

test('a Transpose of a Transpose composes, and cancels when the perms undo each other', () => {
  const g = composeTransposes(graph([
    node('Transpose', ['x'], ['a'], { perm: [1, 0, 2] }), node('Transpose', ['a'], ['b'], { perm: [0, 2, 1] }),
    node('Transpose', ['b'], ['c'], { perm: [1, 0, 2] }), node('Transpose', ['c'], ['d'], { perm: [1, 0, 2] }), node('Relu', ['d'], ['y']),
  ], ['y']));
  assert.deepEqual(g.nodes.map((n) => [n.op, n.inputs, n.attrs.perm ?? null]), [['Transpose', ['x'], [1, 2, 0]], ['Relu', ['d'], null]]);
  const cancel = composeTransposes(graph([
    node('Transpose', ['x'], ['a'], { perm: [1, 0, 2] }), node('Transpose', ['a'], ['b'], { perm: [1, 0, 2] }), node('Relu', ['b'], ['y']),
  ], ['y']));
  assert.deepEqual(cancel.nodes.map((n) => [n.op, n.inputs]), [['Relu', ['x']]]);
});

test('a Concat read only by a Concat on the same axis is spliced in; other axes stay', () => {
  const g = flattenConcats(graph([
    node('Concat', ['x', 'x'], ['a'], { axis: 1 }), node('Concat', ['x', 'x'], ['b'], { axis: 2 }),
    node('Concat', ['x', 'a', 'b'], ['y'], { axis: 1 }),
  ], ['y']));
  assert.deepEqual(g.nodes.map((n) => n.inputs), [['x', 'x'], ['x', 'x', 'x', 'b']]);
});

test('dead nodes, unused initializers, Identity and repeated constants go', () => {
  const g = graph([
    node('Add', ['x', 'c1'], ['a']), node('Identity', ['a'], ['i']), node('Mul', ['i', 'c2'], ['y']), node('Exp', ['x'], ['dead']), node('Neg', ['dead'], ['dead2']),
  ], ['y'], [['c1', [1, 2]], ['c2', [1, 2]], ['unused', [3]]]);
  dedupeConstants(removeDead(removeIdentities(g)));
  assert.deepEqual(g.nodes.map((n) => [n.op, ...n.inputs]), [['Add', 'x', 'c1'], ['Mul', 'a', 'c1']]);
  assert.deepEqual([...g.initializers.keys()], ['c1']);
});
