// Layer parity against torch.nn: each case builds the same layer in PyTorch (test/helpers/ref_seq.py,
// layer_case) and in convkit, loads PyTorch's (randomised) weights by name, runs the same inputs,
// backpropagates sum(out_i * g_i) on both sides and compares outputs, input and weight gradients.
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { manualSeed, noGrad, randn, tidy, type Tensor } from '../../src/engine/index.js';
import type { Module } from '../../src/nn/index.js';
import { OracleBatch, assertClose, type OracleResult } from './oracle.js';

// dist-dev/test/helpers -> the source folder test/helpers, where ref_seq.py lives
const HELPERS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/helpers');

export interface LayerSpec {
  kind: 'LSTM' | 'GRU' | 'RNN' | 'MultiheadAttention' | 'TransformerEncoder';
  kwargs: Record<string, unknown>;
  seed?: number;
  train?: boolean;
  /** TransformerEncoder */
  num_layers?: number;
  final_norm?: boolean;
  /** MultiheadAttention: self-attention (default) or cross-attention on I.kv */
  self?: boolean;
  need_weights?: boolean;
  average?: boolean;
}

export interface LayerCase<M extends Module<never[], unknown>> {
  name: string;
  spec: LayerSpec;
  build: () => M;
  /** tensors sent to PyTorch under these names: x (the differentiated input), h0, c0, kv, kpm, mask, attn_mask */
  inputs: Record<string, Tensor>;
  /** the convkit forward on the same inputs (x requires grad), outputs in PyTorch's flattened order */
  run: (m: M, inputs: Record<string, Tensor>) => Tensor[];
  rtol?: number;
  atol?: number;
}

export interface ParityReport {
  /** largest |convkit - PyTorch| over the outputs, and over the gradients */
  maxOutErr: number;
  maxGradErr: number;
}

const maxErr = (a: Tensor, b: Tensor): number => tidy(() => a.double().sub(b.double()).abs().max().item());

/** Holds the cases, runs PyTorch once for all of them, then checks each. */
export class LayerParity {
  #batch = new OracleBatch();
  #keys = new Map<string, { c: LayerCase<Module<never[], unknown>>; key: number; grads: Tensor[] }>();

  add<M extends Module<never[], unknown>>(c: LayerCase<M>): void {
    // output shapes come from a convkit forward with its own init; the g_i are random weights on them
    const grads = tidy(() => {
      const m = c.build();
      m.train(c.spec.train ?? false);
      const outs = noGrad(() => c.run(m, c.inputs));
      const g = outs.map((o) => randn(o.shape).keep());
      m.dispose();
      return g;
    });
    const inputs: Record<string, Tensor> = { ...c.inputs };
    grads.forEach((g, i) => { inputs[`g${i}`] = g; });
    const code = `import json, sys\nsys.path.insert(0, ${JSON.stringify(HELPERS)})\nimport ref_seq\n` +
      `ref_seq.layer_case(I, O, json.loads(${JSON.stringify(JSON.stringify(c.spec))}))`;
    const key = this.#batch.add(code, inputs, c.name);
    for (const t of Object.values(c.inputs)) t.keep();
    this.#keys.set(c.name, { c: c as unknown as LayerCase<Module<never[], unknown>>, key, grads });
  }

  run(): Promise<void> {
    return this.#batch.run();
  }

  check(name: string): ParityReport {
    const entry = this.#keys.get(name);
    assert.ok(entry, `no layer case '${name}'`);
    const { c, key, grads } = entry;
    const ref: OracleResult = this.#batch.get(key);
    const rtol = c.rtol ?? 1e-4;
    const atol = c.atol ?? 1e-5;
    return tidy(() => {
      const m = c.build();
      try {
        const refKeys = Object.keys(ref).filter((k) => k.startsWith('p.')).map((k) => k.slice(2));
        assert.deepEqual([...m.stateDict().keys()], refKeys, `${name}: state-dict keys and order`);
        const refCount = refKeys.reduce((s, k) => s + ref[`p.${k}`].numel(), 0);
        assert.equal(m.numParameters(), refCount, `${name}: parameter count`);
        m.loadStateDict(new Map(refKeys.map((k) => [k, ref[`p.${k}`]])));
        m.train(c.spec.train ?? false);
        const leaves: Record<string, Tensor> = {};
        for (const [k, t] of Object.entries(c.inputs)) leaves[k] = noGrad(() => t.detach().clone());
        if (leaves.x.dtype.startsWith('float')) leaves.x.requiresGrad = true;
        manualSeed((c.spec.seed ?? 0) + 1);
        const outs = c.run(m, leaves);
        const nRef = Object.keys(ref).filter((k) => k.startsWith('out.')).length;
        assert.equal(outs.length, nRef, `${name}: number of outputs`);
        let maxOutErr = 0;
        outs.forEach((o, i) => {
          assertClose(o, ref[`out.${i}`], { rtol, atol }, `${name}: output ${i}`);
          maxOutErr = Math.max(maxOutErr, maxErr(o, ref[`out.${i}`]));
        });
        let loss = outs[0].mul(grads[0]).sum();
        for (let i = 1; i < outs.length; i++) loss = loss.add(outs[i].mul(grads[i]).sum());
        loss.backward();
        let maxGradErr = 0;
        const gradTol = { rtol, atol: atol * 10 };
        const compare = (actual: Tensor | null, what: string, refKey: string): void => {
          const expected = ref[refKey];
          if (!expected) return;
          assert.ok(actual, `${name}: no gradient for ${what}`);
          assertClose(actual, expected, gradTol, `${name}: d/d${what}`);
          maxGradErr = Math.max(maxGradErr, maxErr(actual, expected));
        };
        if (leaves.x.requiresGrad) compare(leaves.x.grad, 'x', 'grad.x');
        for (const [k, p] of m.namedParameters()) compare(p.grad, k, `grad.p.${k}`);
        return { maxOutErr, maxGradErr };
      } finally {
        m.dispose();
      }
    });
  }

  dispose(): void {
    for (const { c, grads } of this.#keys.values()) {
      for (const t of [...Object.values(c.inputs), ...grads]) t.dispose();
    }
  }
}
