// The PyTorch oracle: runs Python snippets under Debian's torch (/usr/bin/python3) on the same
// tensors the test made in JS, and brings PyTorch's tensors back for comparison.
//
// Exchange format (one temp dir per Python call):
//   in.json   {cases: [{code, inputs: {name: {dtype, shape, file}}}]}
//   tNNN.bin  raw little-endian, C-contiguous elements (bfloat16/float16 as raw 16-bit words)
//   out.json  {results: [{ok, error?, outputs: {name: {dtype, shape, file}}}]}
// Python sees a dict `I` of torch tensors and fills a dict `O` with tensors (or numbers, bools,
// lists of numbers, which become tensors; lists/tuples of tensors become `name.0`, `name.1`, ...).
// Snippets also see torch, F (torch.nn.functional), nn, math, np, and S(str), which sends a string
// back as a uint8 tensor (read it with decodeString).
//
// torch's import costs 1-2 s, so a test file should batch its cases into one Python run with
// OracleBatch (or OpSuite, which also does forward and backward comparisons of ops).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

import { Tensor, fromBytes, isFloating, noGrad, tidy, type DType } from '../../src/engine/index.js';

export const PYTHON = process.env.CONVKIT_TEST_PYTHON ?? '/usr/bin/python3';

interface TensorMeta { dtype: DType; shape: number[]; file: string }

const RUNNER = String.raw`
import json, math, os, sys, traceback
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

D = sys.argv[1]
DT = {'float32': torch.float32, 'float64': torch.float64, 'float16': torch.float16, 'bfloat16': torch.bfloat16,
      'int64': torch.int64, 'int32': torch.int32, 'int16': torch.int16, 'int8': torch.int8, 'uint8': torch.uint8,
      'bool': torch.bool}
NAMES = {v: k for k, v in DT.items()}

def load(meta):
    dt = DT[meta['dtype']]
    data = open(os.path.join(D, meta['file']), 'rb').read()
    if len(data) == 0:
        return torch.empty(meta['shape'], dtype=dt)
    return torch.frombuffer(bytearray(data), dtype=dt).reshape(meta['shape']).clone()

counter = [0]
def save(t):
    t = t.detach().cpu().contiguous()
    if t.dtype not in NAMES:
        raise TypeError('oracle: cannot send a tensor of dtype %s back' % t.dtype)
    arr = t.view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.numpy()
    name = 'o%d.bin' % counter[0]
    counter[0] += 1
    with open(os.path.join(D, name), 'wb') as f:
        f.write(arr.tobytes())
    return {'dtype': NAMES[t.dtype], 'shape': list(t.shape), 'file': name}

def export(name, v, out):
    if isinstance(v, torch.Tensor):
        out[name] = save(v)
    elif isinstance(v, (list, tuple)) and any(isinstance(e, (torch.Tensor, list, tuple)) for e in v):
        for i, e in enumerate(v):
            export('%s.%d' % (name, i), e, out)
    elif isinstance(v, float):
        out[name] = save(torch.tensor(v, dtype=torch.float64))
    elif v is None:
        pass
    else:
        out[name] = save(torch.tensor(v))

def S(s):
    return torch.tensor(list(str(s).encode('utf-8')), dtype=torch.uint8)

spec = json.load(open(os.path.join(D, 'in.json')))
results = []
for case in spec['cases']:
    I = {k: load(m) for k, m in case['inputs'].items()}
    O = {}
    env = {'torch': torch, 'F': F, 'nn': nn, 'math': math, 'np': np, 'I': I, 'O': O, 'S': S}
    try:
        exec(compile(case['code'], case.get('name', '<case>'), 'exec'), env)
        outs = {}
        for k, v in O.items():
            export(k, v, outs)
        results.append({'ok': True, 'outputs': outs})
    except Exception:
        results.append({'ok': False, 'error': traceback.format_exc(limit=4)})
json.dump({'results': results}, open(os.path.join(D, 'out.json'), 'w'))
`;

interface CaseSpec { name: string; code: string; inputs: Record<string, Tensor> }
export type OracleResult = Record<string, Tensor>;

function writeTensor(dir: string, file: string, t: Tensor): TensorMeta {
  writeFileSync(join(dir, file), t.toBytes());
  return { dtype: t.dtype, shape: t.shape, file };
}

function readTensor(dir: string, m: TensorMeta): Tensor {
  const buf = readFileSync(join(dir, m.file));
  return fromBytes(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), m.shape, m.dtype);
}

/** Runs many snippets in one Python process; each result is the snippet's O, or its Python error. */
export function runOracle(cases: CaseSpec[]): (OracleResult | Error)[] {
  const dir = mkdtempSync(join(tmpdir(), 'convkit-oracle-'));
  try {
    let n = 0;
    const spec = {
      cases: cases.map((c) => ({
        name: c.name,
        code: c.code,
        inputs: Object.fromEntries(Object.entries(c.inputs).map(([k, t]) => [k, writeTensor(dir, `t${n++}.bin`, t)])),
      })),
    };
    writeFileSync(join(dir, 'in.json'), JSON.stringify(spec));
    writeFileSync(join(dir, 'runner.py'), RUNNER);
    try {
      execFileSync(PYTHON, [join(dir, 'runner.py'), dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 64 << 20,
        env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`oracle: ${PYTHON} failed: ${err.stderr?.toString() || err.message}`);
    }
    const out = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as {
      results: { ok: boolean; error?: string; outputs?: Record<string, TensorMeta> }[];
    };
    return out.results.map((r, i) => {
      if (!r.ok) return new Error(`oracle case '${cases[i].name}' failed in Python:\n${r.error}`);
      return Object.fromEntries(Object.entries(r.outputs ?? {}).map(([k, m]) => [k, readTensor(dir, m)]));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs one snippet: Python sees `I` (torch tensors) and fills `O`. */
export async function oracle(code: string, inputs: Record<string, Tensor> = {}): Promise<OracleResult> {
  const [r] = runOracle([{ name: 'oracle', code, inputs }]);
  if (r instanceof Error) throw r;
  return r;
}

/**
 * Collects snippets, runs them all in one Python process, and hands out each one's result.
 *   const batch = new OracleBatch();
 *   const k = batch.add('O["y"] = I["x"].exp()', { x });
 *   await batch.run();
 *   batch.get(k).y
 * Register every snippet before declaring the before() hook that runs the batch: in Node 20 a
 * top-level before() starts as soon as it is declared.
 */
export class OracleBatch {
  #cases: CaseSpec[] = [];
  #results: (OracleResult | Error)[] | undefined;

  /** Registers a snippet; its inputs are serialised now (later mutation does not matter). */
  add(code: string, inputs: Record<string, Tensor> = {}, name = `case${this.#cases.length}`): number {
    if (this.#results) throw new Error('OracleBatch: add() after run()');
    // Copy the inputs now, so the JS side may mutate its tensors before run().
    const copies = noGrad(() => Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.detach().clone().keep()])));
    this.#cases.push({ name, code, inputs: copies });
    return this.#cases.length - 1;
  }

  async run(): Promise<void> {
    if (this.#results) return;
    this.#results = runOracle(this.#cases);
    for (const c of this.#cases) for (const t of Object.values(c.inputs)) t.dispose();
    for (const r of this.#results) if (!(r instanceof Error)) for (const t of Object.values(r)) t.keep();
  }

  get(key: number): OracleResult {
    if (!this.#results) throw new Error('OracleBatch: get() before run()');
    const r = this.#results[key];
    if (r instanceof Error) throw r;
    return r;
  }
}

/** A string that a snippet sent back with S(...). */
export function decodeString(t: Tensor): string {
  return Buffer.from(t.toBytes()).toString('utf8');
}

// ---- comparison ------------------------------------------------------------------------------

export interface Tolerance { rtol?: number; atol?: number }

function toF64(t: Tensor): Float64Array {
  return tidy(() => {
    const d = noGrad(() => t.detach().to('float64').contiguous());
    return Float64Array.from(d.toTypedArray() as Float64Array);
  });
}

const fmtShape = (s: number[]): string => `[${s.join(', ')}]`;

/**
 * Asserts same shape, same dtype, and |a - e| <= atol + rtol * |e| everywhere (NaN matches NaN,
 * infinities must match exactly). On failure the message names `what`, the worst element and
 * the max abs/rel error.
 */
export function assertClose(actual: Tensor, expected: Tensor, tol: Tolerance, what: string): void {
  const rtol = tol.rtol ?? 1e-4;
  const atol = tol.atol ?? 1e-5;
  assert.ok(actual instanceof Tensor, `${what}: actual is not a Tensor (${String(actual)})`);
  assert.ok(expected instanceof Tensor, `${what}: expected is not a Tensor (${String(expected)})`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape ${fmtShape(actual.shape)} != PyTorch's ${fmtShape(expected.shape)}`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype ${actual.dtype} != PyTorch's ${expected.dtype}`);
  const a = toF64(actual);
  const e = toF64(expected);
  let maxAbs = 0;
  let maxRel = 0;
  let bad = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = e[i];
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      bad++;
      if (worstExcess < Infinity) { worst = i; worstExcess = Infinity; }
      continue;
    }
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      if (x === y) continue;
      bad++;
      if (worstExcess < Infinity) { worst = i; worstExcess = Infinity; }
      continue;
    }
    const abs = Math.abs(x - y);
    const rel = abs / Math.max(Math.abs(y), Number.MIN_VALUE);
    if (abs > maxAbs) maxAbs = abs;
    if (abs > 0 && rel > maxRel) maxRel = rel;
    const excess = abs - (atol + rtol * Math.abs(y));
    if (excess > 0) {
      bad++;
      if (excess > worstExcess) { worst = i; worstExcess = excess; }
    }
  }
  if (bad > 0) {
    assert.fail(
      `${what}: ${bad} of ${a.length} elements differ from PyTorch beyond rtol=${rtol}, atol=${atol}; ` +
        `max abs err ${maxAbs.toExponential(3)}, max rel err ${maxRel.toExponential(3)}; ` +
        `worst at flat index ${worst}: got ${a[worst]}, PyTorch ${e[worst]} (shape ${fmtShape(actual.shape)}, ${actual.dtype})`,
    );
  }
}

/** Exact equality of shape, dtype and every element. */
export function assertEqualTensor(actual: Tensor, expected: Tensor, what: string): void {
  assertClose(actual, expected, { rtol: 0, atol: 0 }, what);
}

// ---- op suites: forward values and gradients against PyTorch ----------------------------------

export interface OpCase {
  name: string;
  /** The JS inputs; the same values go to Python under the same names. */
  inputs: Record<string, Tensor>;
  /**
   * Names of inputs to differentiate (they become leaves with requiresGrad on both sides);
   * default: every floating-point input. [] for in-place ops and non-differentiable ones.
   */
  grad?: string[];
  /**
   * Python: a single expression of the inputs, or statements that set `out` (a tensor or a
   * tuple/list of them) and optionally `G` (name -> tensor whose .grad is reported for that
   * name, e.g. module parameters) and `X` (extra tensors to compare, e.g. running stats).
   */
  py: string;
  /** JS: returns the output tensor(s) in the same order as Python's `out` (flattened). */
  js: (inputs: Record<string, Tensor>) => Tensor | Tensor[] | { out: Tensor | Tensor[]; extra?: Record<string, Tensor> };
  rtol?: number;
  atol?: number;
  /** Tolerances for the gradients (default: the forward ones, atol x 10). */
  gradRtol?: number;
  gradAtol?: number;
}

const PY_OPCASE = String.raw`
_grads = __GRADS__
_env = {'torch': torch, 'F': F, 'nn': nn, 'math': math, 'np': np, 'I': I}
for _k, _v in I.items():
    _env[_k] = _v.clone().requires_grad_(True) if _k in _grads else _v.clone()
_code = __CODE__
try:
    _expr = compile(_code, '<op>', 'eval')
except SyntaxError:
    _expr = None
if _expr is not None:
    _out = eval(_expr, _env)
else:
    exec(compile(_code, '<op>', 'exec'), _env)
    _out = _env['out']
def _flat(v, acc):
    if isinstance(v, (list, tuple)):
        for e in v: _flat(e, acc)
    else:
        acc.append(v)
    return acc
_outs = _flat(_out, [])
for _i, _o in enumerate(_outs):
    O['out%d' % _i] = _o
for _k, _v in _env.get('X', {}).items():
    O['x.' + _k] = _v
if _grads:
    _gen = torch.Generator().manual_seed(1234)
    _loss = None
    for _i, _o in enumerate(_outs):
        if isinstance(_o, torch.Tensor) and _o.requires_grad and _o.is_floating_point():
            _g = torch.randn(_o.shape, generator=_gen, dtype=torch.float64).to(_o.dtype)
            O['g%d' % _i] = _g
            _t = (_o * _g).sum()
            _loss = _t if _loss is None else _loss + _t
    if _loss is not None:
        _loss.backward()
        _G = _env.get('G') or {_n: _env[_n] for _n in _grads}
        for _n in _grads:
            if _G[_n].grad is not None:
                O['grad.' + _n] = _G[_n].grad
`;

/**
 * A table of op cases checked against PyTorch in one Python run: forward outputs, then
 * sum(out_i * g_i) backward with PyTorch's random g_i, and the gradients of the `grad` inputs.
 */
export class OpSuite {
  #batch: OracleBatch;
  #cases = new Map<string, { c: OpCase; key: number }>();

  /** Pass a batch to share one Python run with other snippets of the test file. */
  constructor(batch = new OracleBatch()) { this.#batch = batch; }
  get batch(): OracleBatch { return this.#batch; }

  add(c: OpCase): void {
    if (this.#cases.has(c.name)) throw new Error(`OpSuite: duplicate case '${c.name}'`);
    c.grad ??= Object.entries(c.inputs).filter(([, t]) => isFloating(t.dtype)).map(([k]) => k);
    const code = PY_OPCASE.replace('__GRADS__', JSON.stringify(c.grad)).replace('__CODE__', JSON.stringify(c.py));
    const key = this.#batch.add(code, c.inputs, c.name);
    // keep the JS inputs alive across tidy scopes until the case runs
    for (const t of Object.values(c.inputs)) t.keep();
    this.#cases.set(c.name, { c, key });
  }

  get names(): string[] { return [...this.#cases.keys()]; }

  run(): Promise<void> { return this.#batch.run(); }

  /** Runs the JS side of one case and compares it with PyTorch's results. */
  check(name: string): void {
    const entry = this.#cases.get(name);
    if (!entry) throw new Error(`OpSuite: no case '${name}'`);
    const { c, key } = entry;
    const ref = this.#batch.get(key);
    const rtol = c.rtol ?? 1e-4;
    const atol = c.atol ?? 1e-5;
    const grads = c.grad ?? [];
    tidy(() => {
      const leaves: Record<string, Tensor> = {};
      for (const [k, t] of Object.entries(c.inputs)) {
        const copy = noGrad(() => t.detach().clone());
        if (grads.includes(k)) copy.requiresGrad = true;
        leaves[k] = copy;
      }
      const r = c.js(leaves);
      const { out, extra } = r instanceof Tensor || Array.isArray(r) ? { out: r, extra: undefined } : r;
      const outs = Array.isArray(out) ? out : [out];
      const nRef = Object.keys(ref).filter((k) => /^out\d+$/.test(k)).length;
      assert.equal(outs.length, nRef, `${name}: ${outs.length} outputs in JS, ${nRef} in PyTorch`);
      outs.forEach((o, i) => assertClose(o, ref[`out${i}`], { rtol, atol }, `${name}: output ${i}`));
      for (const [k, t] of Object.entries(extra ?? {})) {
        assert.ok(ref[`x.${k}`], `${name}: PyTorch gave no extra '${k}'`);
        assertClose(t, ref[`x.${k}`], { rtol, atol }, `${name}: ${k}`);
      }
      if (grads.length === 0) return;
      let loss: Tensor | undefined;
      outs.forEach((o, i) => {
        const g = ref[`g${i}`];
        if (!g) {
          assert.ok(!(o.requiresGrad && isFloating(o.dtype)), `${name}: output ${i} requires grad in JS but not in PyTorch`);
          return;
        }
        assert.ok(o.requiresGrad, `${name}: output ${i} requires grad in PyTorch but not in JS`);
        const term = o.mul(g).sum();
        loss = loss ? loss.add(term) : term;
      });
      if (!loss) {
        for (const n of grads) assert.ok(!ref[`grad.${n}`], `${name}: PyTorch has a gradient for ${n}, JS has no differentiable output`);
        return;
      }
      loss.backward();
      const gr = c.gradRtol ?? rtol;
      const ga = c.gradAtol ?? atol * 10;
      for (const n of grads) {
        const expected = ref[`grad.${n}`];
        const actual = leaves[n].grad;
        if (!expected) {
          assert.ok(actual === null || actual.abs().max().item() === 0, `${name}: PyTorch has no gradient for ${n}, JS has a non-zero one`);
          continue;
        }
        assert.ok(actual, `${name}: no gradient for ${n} in JS`);
        assertClose(actual, expected, { rtol: gr, atol: ga }, `${name}: d/d${n}`);
      }
    });
  }
}
