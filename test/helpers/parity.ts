// Parity with the reference: build the same architecture in torchvision (or a reference module
// of ours) and in convkit, load the reference's random weights into convkit by name, and compare
// names, order, parameter counts and outputs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { manualSeed, noGrad, tidy, type Tensor } from '../../src/engine/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { Module } from '../../src/nn/index.js';

export const PYTHON = '/usr/bin/python3';
// dist-dev/test/helpers -> the source folder test/helpers, where the python files live
const HELPERS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/helpers');

export interface OracleCase {
  id: string;
  /** torchvision builder name, or with `builder` any python callable path */
  name: string;
  kwargs?: Record<string, unknown>;
  input: number[];
  train?: boolean;
  seed?: number;
  builder?: string;
  /** also backpropagate sum(o^2)/2 over the outputs and return the parameter gradients */
  backward?: boolean;
}

export interface OracleResult {
  state: Map<string, Tensor>;
  input: Tensor;
  outputs: Tensor[];
  /** parameter gradients by name, for cases run with backward */
  grads: Map<string, Tensor>;
  keys: string[];
  numParams: number;
}

/** Runs every case in one Python process and reads back what it wrote. */
export function runOracle(cases: OracleCase[]): Map<string, OracleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'convkit-oracle-'));
  try {
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(cases));
    execFileSync(PYTHON, [join(HELPERS, 'tv_oracle.py'), join(dir, 'spec.json'), dir], {
      env: { ...process.env, PYTHONPATH: HELPERS, OMP_NUM_THREADS: '2' },
      stdio: ['ignore', 'ignore', 'pipe'],
      maxBuffer: 64 << 20,
    });
    const out = new Map<string, OracleResult>();
    for (const c of cases) {
      const tensors = readSafetensors(join(dir, `${c.id}.safetensors`));
      const meta = JSON.parse(readFileSync(join(dir, `${c.id}.json`), 'utf8')) as { keys: string[]; num_params: number };
      const state = new Map<string, Tensor>();
      const outputs: Tensor[] = [];
      const grads = new Map<string, Tensor>();
      for (const [k, t] of tensors) {
        t.keep();
        if (k.startsWith('p.')) state.set(k.slice(2), t);
        else if (k.startsWith('output.')) outputs[Number(k.slice(7))] = t;
        else if (k.startsWith('grad.')) grads.set(k.slice(5), t);
      }
      out.set(c.id, { state, input: tensors.get('input')!, outputs, grads, keys: meta.keys, numParams: meta.num_params });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Asserts two tensors agree within rtol relative to the expected tensor's scale; returns the max
 * abs error over that scale, for reports.
 */
export function assertClose(actual: Tensor, expected: Tensor, what: string, rtol = 1e-4): number {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  return tidy(() => {
    const a = actual.double();
    const e = expected.double();
    const scale = Math.max(e.abs().max().item(), 1e-6);
    const err = a.sub(e).abs().max().item();
    assert.ok(err <= rtol * scale, `${what}: max abs error ${err.toExponential(3)} > ${rtol} x scale ${scale.toExponential(3)}`);
    return err / scale;
  });
}

/**
 * The whole parity check for one model: same state-dict keys in the same order, same parameter
 * count, strict load, and the same outputs (eval, or train with aux heads when the case says so).
 * Returns each output's max abs error relative to the reference's scale.
 */
export function checkParity(
  model: Module<[Tensor], Tensor | Tensor[]>, ref: OracleResult, id: string, rtol = 1e-4, c: { train?: boolean; seed?: number } = {},
): number[] {
  assert.deepEqual([...model.stateDict().keys()], ref.keys, `${id}: state-dict keys and order`);
  assert.equal(model.numParameters(), ref.numParams, `${id}: parameter count`);
  model.loadStateDict(ref.state);
  model.train(c.train ?? false);
  // the oracle reseeds with seed + 1 before its forward, so dropout masks agree
  manualSeed((c.seed ?? 0) + 1);
  const outs = tidy(() => noGrad(() => {
    const y = model.call(ref.input);
    return Array.isArray(y) ? y : [y];
  }));
  assert.equal(outs.length, ref.outputs.length, `${id}: number of outputs`);
  const errors = outs.map((o, i) => assertClose(o, ref.outputs[i], `${id} output ${i}`, rtol));
  for (const o of outs) o.dispose();
  return errors;
}

/**
 * For a case run with backward: runs the same forward in the case's mode (after checkParity has
 * loaded the reference's weights), backpropagates sum(o^2)/2, and compares every parameter's
 * gradient with PyTorch's. Returns the largest error relative to each gradient's scale.
 */
export function checkGradients(
  model: Module<[Tensor], Tensor | Tensor[]>, ref: OracleResult, id: string, rtol = 1e-3, c: { train?: boolean; seed?: number } = {},
): number {
  assert.ok(ref.grads.size > 0, `${id}: the oracle case was not run with backward`);
  model.loadStateDict(ref.state);
  model.zeroGrad();
  model.train(c.train ?? false);
  manualSeed((c.seed ?? 0) + 1);
  tidy(() => {
    const y = model.call(ref.input);
    const outs = Array.isArray(y) ? y : [y];
    outs.map((o) => o.mul(o).sum().div(2)).reduce((a, b) => a.add(b)).backward();
  });
  const named = new Map(model.namedParameters());
  const worst = tidy(() => {
    const ours = [...named].filter(([, p]) => p.grad !== null).map(([k]) => k);
    assert.deepEqual(ours.sort(), [...ref.grads.keys()].sort(), `${id}: parameters with gradients`);
    return Math.max(...[...ref.grads].map(([k, g]) => assertClose(named.get(k)!.grad!, g, `${id} grad ${k}`, rtol)));
  });
  model.zeroGrad();
  return worst;
}

export function disposeResult(r: OracleResult): void {
  for (const t of r.grads.values()) t.dispose();
  for (const t of r.state.values()) t.dispose();
  r.input.dispose();
  for (const o of r.outputs) o.dispose();
}
