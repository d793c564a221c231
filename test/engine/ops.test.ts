// Every op of the engine against PyTorch on the same inputs: forward values, dtypes and shapes,
// and gradients (sum(op(x) * g) backward with PyTorch's random g). One Python run for the file.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  F, Tensor, arange, autocast, bernoulli, cat, empty, eye, fromBytes, full, getRngState, linspace, manualSeed, manualSeedCpu,
  multinomial, oneHot, ones, rand, randint, randn, randperm, setRngState, stack, tensor, tidy, where, zeros,
  type DType,
} from '../../src/engine/index.js';
import { native } from '../../src/engine/native.js';
import { OpSuite, assertEqualTensor, type OpCase } from '../helpers/oracle.js';

manualSeed(0);
const suite = new OpSuite();
const groups = new Map<string, string[]>();
let group = 'misc';
function section(name: string): void { group = name; groups.set(name, []); }
type Js = OpCase['js'];
function add(name: string, inputs: Record<string, Tensor>, py: string, js: Js, o: Partial<OpCase> = {}): void {
  suite.add({ name, inputs, py, js, ...o });
  groups.get(group)!.push(name);
}
const rn = (...shape: number[]): Tensor => randn(shape);
const pos = (...shape: number[]): Tensor => rand(shape).add(0.5);
const strides = (t: Tensor): Tensor => tensor(t.strides);
const PY_STRIDES = (y: string): string => `torch.tensor(${y}.stride())`;

// ---- creation and conversion --------------------------------------------------------------------
section('creation');
add('tensor float nested', {}, 'torch.tensor([[1.5, 2.0], [3.0, -4.25]])', () => tensor([[1.5, 2], [3, -4.25]]));
add('tensor int nested -> int64', {}, 'torch.tensor([[1, 2, 3], [4, 5, -6]])', () => tensor([[1, 2, 3], [4, 5, -6]]));
add('tensor bool', {}, 'torch.tensor([True, False, True])', () => tensor([true, false, true]));
add('tensor scalar', {}, 'torch.tensor(3.5)', () => tensor(3.5));
add('tensor empty', {}, 'torch.tensor([])', () => tensor([]));
add('tensor dtype float64', {}, 'torch.tensor([1, 2.5], dtype=torch.float64)', () => tensor([1, 2.5], { dtype: 'float64' }));
add('tensor dtype bfloat16', {}, 'torch.tensor([1.5, -2.0, 3.140625], dtype=torch.bfloat16)', () => tensor([1.5, -2, 3.140625], { dtype: 'bfloat16' }));
add('tensor dtype float16', {}, 'torch.tensor([1.5, -2.0, 0.1], dtype=torch.float16)', () => tensor([1.5, -2, 0.1], { dtype: 'float16' }));
add('tensor Int32Array with shape', {}, 'torch.arange(6, dtype=torch.int32).reshape(2, 3)', () => tensor(Int32Array.from([0, 1, 2, 3, 4, 5]), { shape: [2, 3] }));
add('tensor Float64Array', {}, 'torch.tensor([0.1, 0.2], dtype=torch.float64)', () => tensor(Float64Array.from([0.1, 0.2])));
add('fromBytes uint8', {}, 'torch.tensor([[1, 2], [3, 255]], dtype=torch.uint8)', () => fromBytes(Uint8Array.from([1, 2, 3, 255]), [2, 2], 'uint8'));
add('zeros ones', {}, 'out = (torch.zeros(2, 3), torch.ones(4, dtype=torch.int64))', () => [zeros([2, 3]), ones([4], { dtype: 'int64' })]);
// JS cannot tell 7 from 7.0: full() defaults to float32 where torch.full((2, 2), 7) infers int64.
add('full', {}, 'out = (torch.full((2, 2), 7.0), torch.full((3,), True), torch.full((2,), 3, dtype=torch.int32))',
  () => [full([2, 2], 7), full([3], true), full([2], 3, { dtype: 'int32' })]);
add('eye', {}, 'torch.eye(3)', () => eye(3));
add('arange', {}, 'out = (torch.arange(5), torch.arange(1, 10, 3), torch.arange(0, 1, 0.25), torch.arange(0, 5, dtype=torch.float64))',
  () => [arange(5), arange(1, 10, 3), arange(0, 1, 0.25), arange(0, 5, 1, { dtype: 'float64' })]);
add('linspace', {}, 'out = (torch.linspace(0, 1, 5), torch.linspace(-3, 7, 11, dtype=torch.float64))',
  () => [linspace(0, 1, 5), linspace(-3, 7, 11, { dtype: 'float64' })]);
add('empty shape', {}, 'torch.tensor(torch.empty(2, 0, 3).shape)', () => tensor(empty([2, 0, 3]).shape));
{
  const x = rn(3, 4).mul(3);
  add('to float64', { x }, 'x.double()', ({ x }) => x.double());
  add('to float16', { x }, 'x.half()', ({ x }) => x.half(), { rtol: 0, atol: 0 });
  add('to bfloat16', { x }, 'x.bfloat16()', ({ x }) => x.bfloat16(), { rtol: 0, atol: 0 });
  add('to int64 (truncates)', { x }, 'x.long()', ({ x }) => x.long());
  add('to int32', { x }, 'x.int()', ({ x }) => x.int());
  add('to bool', { x }, 'x.bool()', ({ x }) => x.bool());
  add('to {dtype} float64 from bf16', { x }, 'x.bfloat16().to(torch.float64)', ({ x }) => x.bfloat16().to({ dtype: 'float64' }));
  add('clone', { x }, 'x.clone()', ({ x }) => x.clone());
}

// ---- views and indexing -------------------------------------------------------------------------
section('views');
{
  const x = rn(2, 3, 4);
  const x4 = rn(2, 3, 4, 5);
  add('reshape', { x }, 'y = x.reshape(6, 4)\nout = (y, torch.tensor(y.stride()))', ({ x }) => { const y = x.reshape([6, 4]); return [y, strides(y)]; });
  add('reshape -1', { x }, 'x.reshape(-1, 2)', ({ x }) => x.reshape([-1, 2]));
  add('view', { x }, 'y = x.view(2, 12)\nout = (y, torch.tensor(y.stride()))', ({ x }) => { const y = x.view([2, 12]); return [y, strides(y)]; });
  add('permute', { x }, `y = x.permute(2, 0, 1)\nout = (y, ${PY_STRIDES('y')})`, ({ x }) => { const y = x.permute([2, 0, 1]); return [y, strides(y)]; });
  add('permute negative', { x }, 'x.permute(-1, -3, -2)', ({ x }) => x.permute([-1, -3, -2]));
  add('transpose', { x }, `y = x.transpose(0, 2)\nout = (y, ${PY_STRIDES('y')})`, ({ x }) => { const y = x.transpose(0, 2); return [y, strides(y)]; });
  add('T of 2-d', { m: rn(3, 5) }, 'm.T', ({ m }) => m.T);
  add('squeeze all', { s: rn(1, 3, 1, 2) }, 's.squeeze()', ({ s }) => s.squeeze());
  add('squeeze dim', { s: rn(1, 3, 1, 2) }, 'out = (s.squeeze(2), s.squeeze(1))', ({ s }) => [s.squeeze(2), s.squeeze(1)]);
  add('unsqueeze', { x }, 'out = (x.unsqueeze(1), x.unsqueeze(-1))', ({ x }) => [x.unsqueeze(1), x.unsqueeze(-1)]);
  add('expand', { e: rn(3, 1) }, `y = e.expand(2, 3, 4)\nout = (y, ${PY_STRIDES('y')})`, ({ e }) => { const y = e.expand([2, 3, 4]); return [y, strides(y)]; });
  add('expand -1', { e: rn(3, 1) }, 'e.expand(-1, 5)', ({ e }) => e.expand([-1, 5]));
  add('expandAs', { e: rn(3, 1), x }, 'e.expand_as(x)', ({ e, x }) => e.expandAs(x), { grad: ['e'] });
  add('narrow', { x }, `y = x.narrow(2, 1, 2)\nout = (y, ${PY_STRIDES('y')})`, ({ x }) => { const y = x.narrow(2, 1, 2); return [y, strides(y)]; });
  add('slice step 2', { x }, `y = x[:, :, 1::2]\nout = (y, ${PY_STRIDES('y')})`, ({ x }) => { const y = x.slice(2, 1, undefined, 2); return [y, strides(y)]; });
  add('slice start end step 3', { v: rn(10) }, 'v[1:9:3]', ({ v }) => v.slice(0, 1, 9, 3));
  add('slice negative', { x }, 'x[:, -2:]', ({ x }) => x.slice(1, -2));
  add('select', { x }, 'out = (x.select(1, 2), x.select(-1, -1))', ({ x }) => [x.select(1, 2), x.select(-1, -1)]);
  const idx = tensor([2, 0, 2]);
  add('indexSelect', { x, idx }, 'x.index_select(1, idx)', ({ x, idx }) => x.indexSelect(1, idx));
  const gi = randint(0, 4, [2, 3, 5]);
  add('gather', { x, gi }, 'x.gather(2, gi)', ({ x, gi }) => x.gather(2, gi));
  add('flatten', { x4 }, 'out = (x4.flatten(), x4.flatten(1), x4.flatten(1, 2))', ({ x4 }) => [x4.flatten(), x4.flatten(1), x4.flatten(1, 2)]);
  add('unflatten', { x }, 'x.unflatten(2, (2, 2))', ({ x }) => x.unflatten(2, [2, 2]));
  add('flip', { x }, 'x.flip([0, 2])', ({ x }) => x.flip([0, 2]));
  add('roll', { x }, 'out = (x.roll(1, 2), x.roll((1, -1), (0, 1)))', ({ x }) => [x.roll(1, 2), x.roll([1, -1], [0, 1])]);
  add('repeat', { e: rn(2, 3) }, 'e.repeat(2, 1, 3)', ({ e }) => e.repeat([2, 1, 3]));
  add('tril triu', { m: rn(4, 5) }, 'out = (m.tril(), m.tril(-1), m.triu(1))', ({ m }) => [m.tril(), m.tril(-1), m.triu(1)]);
  add('asStrided', { v: rn(12) }, 'v.as_strided((3, 3), (3, 1), 1)', ({ v }) => v.asStrided([3, 3], [3, 1], 1));
  add('contiguous after permute', { x }, `y = x.permute(1, 2, 0).contiguous()\nout = (y, ${PY_STRIDES('y')})`,
    ({ x }) => { const y = x.permute([1, 2, 0]).contiguous(); return [y, strides(y)]; });
  add('channels-last layout', { x4 },
    `y = x4.contiguous(memory_format=torch.channels_last)\nout = (y, ${PY_STRIDES('y')}, torch.tensor(y.is_contiguous(memory_format=torch.channels_last)), torch.tensor(x4.is_contiguous(memory_format=torch.channels_last)), torch.tensor(y.is_contiguous()))`,
    ({ x4 }) => { const y = x4.contiguous('channelsLast'); return [y, strides(y), tensor(y.isChannelsLast()), tensor(x4.isChannelsLast()), tensor(y.isContiguous())]; });
  add('scatter', { z: zeros([3, 5]), si: tensor([[0, 1, 2, 0, 1], [2, 0, 1, 1, 0]]), src: rn(2, 5) },
    'z.scatter(0, si, src)', ({ z, si, src }) => z.scatter(0, si, src), { grad: ['src'] });
  add('scatterAdd', { z: rn(3, 5), si: tensor([[0, 1, 2, 0, 1], [0, 1, 1, 1, 0]]), src: rn(2, 5) },
    'z.scatter_add(0, si, src)', ({ z, si, src }) => z.scatterAdd(0, si, src));
  const mask = rand([3, 4]).gt(0.5);
  add('maskedSelect', { m: rn(3, 4), mask }, 'm.masked_select(mask)', ({ m, mask }) => m.maskedSelect(mask));
  add('maskedFill', { m: rn(3, 4), mask }, 'm.masked_fill(mask, -2.5)', ({ m, mask }) => m.maskedFill(mask, -2.5));
  add('nonzero', { mask }, 'mask.nonzero()', ({ mask }) => mask.nonzero());
  add('view shares storage', { x }, 'out = (torch.tensor(True), torch.tensor(False))',
    ({ x }) => [tensor(x.view([24]).sharesStorageWith(x)), tensor(x.clone().sharesStorageWith(x))], { grad: [] });
}

// ---- arithmetic, promotion, comparisons -------------------------------------------------------------
section('arithmetic');
{
  const a = rn(2, 3, 1);
  const b = rn(4);
  const p = pos(2, 3, 4);
  add('add broadcast', { a, b }, 'a + b', ({ a, b }) => a.add(b));
  add('add alpha', { a, b }, 'torch.add(a, b, alpha=2.5)', ({ a, b }) => a.add(b, 2.5));
  add('sub broadcast alpha', { a, b }, 'torch.sub(a, b, alpha=0.5)', ({ a, b }) => a.sub(b, 0.5));
  add('mul broadcast', { a, b }, 'a * b', ({ a, b }) => a.mul(b));
  add('div broadcast', { a, p }, 'a / p', ({ a, p }) => a.div(p));
  add('pow tensor', { p, b }, 'p ** b', ({ p, b }) => p.pow(b));
  add('scalar ops', { a }, 'out = (a + 2, a - 1.5, a * 3, a / 4, 2 - a, a ** 2, a.abs() ** 0.5, torch.add(a, 2, alpha=3))',
    ({ a }) => [a.add(2), a.sub(1.5), a.mul(3), a.div(4), a.rsub(2), a.pow(2), a.abs().pow(0.5), a.add(2, 3)]);
  add('maximum minimum', { a, b }, 'out = (torch.maximum(a, b), torch.minimum(a, b))', ({ a, b }) => [a.maximum(b), a.minimum(b)]);
  const u = rn(3, 4);
  add('unary', { u, p },
    'out = (-u, u.abs(), u.exp(), p.log(), p.sqrt(), p.rsqrt(), u.sign(), u.floor(), u.ceil(), (u * 3).round(), u.sin(), u.cos(), p.reciprocal())',
    ({ u, p }) => [u.neg(), u.abs(), u.exp(), p.log(), p.sqrt(), p.rsqrt(), u.sign(), u.floor(), u.ceil(), u.mul(3).round(), u.sin(), u.cos(), p.reciprocal()]);
  add('round half to even', {}, 'torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5]).round()', () => tensor([0.5, 1.5, 2.5, -0.5, -1.5]).round());
  add('lerp', { u, v: rn(3, 4) }, 'torch.lerp(u, v, 0.3)', ({ u, v }) => u.lerp(v, 0.3));
  add('clamp both', { u }, 'u.clamp(-0.5, 0.7)', ({ u }) => u.clamp(-0.5, 0.7));
  add('clamp min only', { u }, 'u.clamp(min=0.1)', ({ u }) => u.clamp(0.1));
  add('clamp max only', { u }, 'u.clamp(max=0.2)', ({ u }) => u.clamp(undefined, 0.2));
  const cond = rand([3, 4]).gt(0.4);
  add('where', { cond, u, v: rn(4) }, 'torch.where(cond, u, v)', ({ cond, u, v }) => where(cond, u, v));
  add('logical', { c1: rand([5]).gt(0.5), c2: rand([5]).gt(0.5) },
    'out = (c1.logical_not(), c1.logical_and(c2), c1.logical_or(c2))', ({ c1, c2 }) => [c1.logicalNot(), c1.logicalAnd(c2), c1.logicalOr(c2)]);
  add('isnan isfinite', {}, 't = torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), 0.0])\nout = (t.isnan(), t.isfinite())',
    () => { const t = tensor([1, NaN, Infinity, -Infinity, 0]); return [t.isnan(), t.isfinite()]; });
}
section('promotion');
{
  const i = randint(-5, 5, [2, 3]);
  const f = rn(2, 3);
  add('int64 + float32 -> float32', { i, f }, 'i + f', ({ i, f }) => i.add(f));
  add('float32 * int64 -> float32', { i, f }, 'f * i', ({ i, f }) => f.mul(i));
  add('int64 * 2.5 -> float32', { i }, 'i * 2.5', ({ i }) => i.mul(2.5));
  add('int64 + 3 -> int64', { i }, 'i + 3', ({ i }) => i.add(3));
  add('int64 / int64 -> float32 (true division)', { i, j: randint(1, 4, [3]) }, 'i / j', ({ i, j }) => i.div(j));
  add('int32 + int64 -> int64', { i32: randint(0, 9, [3], { dtype: 'int32' }), i }, 'i32 + i', ({ i32, i }) => i32.add(i));
  add('uint8 + int8 -> int16', { u8: randint(0, 200, [4], { dtype: 'uint8' }), i8: randint(-100, 100, [4], { dtype: 'int8' }) }, 'u8 + i8', ({ u8, i8 }) => u8.add(i8));
  add('bool + int64 -> int64', { bo: rand([2, 3]).gt(0.5), i }, 'bo + i', ({ bo, i }) => bo.add(i));
  add('float16 + float32 -> float32', { h: rn(4).half(), f4: rn(4) }, 'h + f4', ({ h, f4 }) => h.add(f4), { grad: [] });
  add('float64 + float32 -> float64', { d: rn(4).double(), f4: rn(4) }, 'd + f4', ({ d, f4 }) => d.add(f4));
  add('float32 + 0-d float64 -> float32', { f, s: tensor(2.5, { dtype: 'float64' }) }, 'f + s', ({ f, s }) => f.add(s));
  add('bfloat16 * 2 -> bfloat16', { bf: rn(5).bfloat16() }, 'bf * 2', ({ bf }) => bf.mul(2), { grad: [] });
  add('int64 compare float', { i, f }, 'i < f', ({ i, f }) => i.lt(f));
}
section('comparisons');
{
  const a = randint(0, 3, [3, 4]).float();
  const b = randint(0, 3, [4]).float();
  add('compare tensors', { a, b }, 'out = (a == b, a != b, a < b, a <= b, a > b, a >= b)', ({ a, b }) => [a.eq(b), a.ne(b), a.lt(b), a.le(b), a.gt(b), a.ge(b)]);
  add('compare scalars', { a }, 'out = (a == 1, a != 1, a < 1, a <= 1, a > 1, a >= 1.5)', ({ a }) => [a.eq(1), a.ne(1), a.lt(1), a.le(1), a.gt(1), a.ge(1.5)]);
  add('equal allclose', { a },
    'out = (torch.tensor(torch.equal(a, a.clone())), torch.tensor(torch.equal(a, a + 1e-3)), torch.tensor(torch.allclose(a, a + 1e-6)), torch.tensor(torch.allclose(a, a + 1e-2)), torch.tensor(torch.allclose(a, a + 1e-2, rtol=0, atol=0.1)))',
    ({ a }) => [tensor(a.equal(a.clone())), tensor(a.equal(a.add(1e-3))), tensor(a.allclose(a.add(1e-6))), tensor(a.allclose(a.add(1e-2))), tensor(a.allclose(a.add(1e-2), 0, 0.1))], { grad: [] });
}

// ---- reductions ---------------------------------------------------------------------------------
section('reductions');
{
  const x = rn(3, 4, 5);
  add('sum all', { x }, 'x.sum()', ({ x }) => x.sum());
  add('sum dims keepdim', { x }, 'out = (x.sum(1), x.sum((0, 2), keepdim=True), x.sum(-1, keepdim=True))', ({ x }) => [x.sum(1), x.sum([0, 2], true), x.sum(-1, true)]);
  add('sum dtype float64', { x }, 'x.sum(0, dtype=torch.float64)', ({ x }) => x.sum(0, false, 'float64'));
  add('sum int64', { i: randint(0, 9, [3, 4]) }, 'out = (i.sum(), i.sum(1))', ({ i }) => [i.sum(), i.sum(1)]);
  add('mean', { x }, 'out = (x.mean(), x.mean(1), x.mean((0, 2), keepdim=True))', ({ x }) => [x.mean(), x.mean(1), x.mean([0, 2], true)]);
  add('max all', { x }, 'x.max()', ({ x }) => x.max());
  add('max dim', { x }, 'out = (x.max(1), x.max(2, keepdim=True))', ({ x }) => [...x.max(1), ...x.max(2, true)]);
  add('min all', { x }, 'x.min()', ({ x }) => x.min());
  add('min dim', { x }, 'out = (x.min(0), x.min(-1, keepdim=True))', ({ x }) => [...x.min(0), ...x.min(-1, true)]);
  add('amax amin', { x }, 'out = (x.amax(1), x.amax((0, 2), keepdim=True), x.amin(2), x.amin((0, 1)))', ({ x }) => [x.amax(1), x.amax([0, 2], true), x.amin(2), x.amin([0, 1])]);
  add('argmax argmin', { x }, 'out = (x.argmax(), x.argmax(1), x.argmax(2, keepdim=True), x.argmin(), x.argmin(0))',
    ({ x }) => [x.argmax(), x.argmax(1), x.argmax(2, true), x.argmin(), x.argmin(0)]);
  add('var', { x }, 'out = (x.var(), x.var(1), x.var((0, 2), keepdim=True, correction=0), x.var(2, correction=2))',
    ({ x }) => [x.var(), x.var(1), x.var([0, 2], true, 0), x.var(2, false, 2)]);
  add('std', { x }, 'out = (x.std(), x.std(1, keepdim=True), x.std((1, 2), correction=0), x.std(2, correction=3))', ({ x }) => [x.std(), x.std(1, true), x.std([1, 2], false, 0), x.std(2, false, 3)]);
  const p = pos(3, 4);
  add('prod', { p }, 'out = (p.prod(), p.prod(1), p.prod(0, keepdim=True))', ({ p }) => [p.prod(), p.prod(1), p.prod(0, true)]);
  add('norm', { x }, 'out = (x.norm(), x.norm(1), x.norm(2, dim=1), x.norm(1, dim=(0, 2), keepdim=True), x.norm(3, dim=2))',
    ({ x }) => [x.norm(), x.norm(1), x.norm(2, 1), x.norm(1, [0, 2], true), x.norm(3, 2)]);
  add('logsumexp', { x }, 'out = (x.logsumexp(1), x.logsumexp((0, 2), keepdim=True))', ({ x }) => [x.logsumexp(1), x.logsumexp([0, 2], true)]);
  add('cumsum', { x }, 'out = (x.cumsum(1), x.cumsum(-1))', ({ x }) => [x.cumsum(1), x.cumsum(-1)]);
  add('all any', { c: rand([3, 4]).gt(0.2) }, 'out = (c.all(), c.any(), torch.zeros(3).bool().any(), torch.ones(3).bool().all())',
    ({ c }) => [c.all(), c.any(), zeros([3]).bool().any(), ones([3]).bool().all()]);
  const s = rn(4, 6);
  add('topk', { s }, 'out = (s.topk(3), s.topk(2, dim=0, largest=False))', ({ s }) => [...s.topk(3), ...s.topk(2, 0, false)]);
  add('sort', { s }, 'out = (s.sort(), s.sort(0, descending=True))', ({ s }) => [...s.sort(), ...s.sort(0, true)]);
  add('argsort', { s }, 'out = (s.argsort(), s.argsort(0, descending=True))', ({ s }) => [s.argsort(), s.argsort(0, true)]);
}
section('linalg');
{
  add('matmul 2d', { a: rn(3, 4), b: rn(4, 5) }, 'a @ b', ({ a, b }) => a.matmul(b));
  add('matmul batched broadcast', { a: rn(2, 3, 4), b: rn(4, 5) }, 'a @ b', ({ a, b }) => a.matmul(b));
  add('matmul batch x batch broadcast', { a: rn(2, 1, 3, 4), b: rn(3, 4, 2) }, 'a @ b', ({ a, b }) => a.matmul(b));
  add('matmul vector', { a: rn(3, 4), v: rn(4) }, 'out = (a @ v, v @ a.T, v @ v)', ({ a, v }) => [a.matmul(v), v.matmul(a.T), v.matmul(v)]);
  add('mm', { a: rn(3, 4), b: rn(4, 5) }, 'a.mm(b)', ({ a, b }) => a.mm(b));
  add('bmm', { a: rn(2, 3, 4), b: rn(2, 4, 5) }, 'a.bmm(b)', ({ a, b }) => a.bmm(b));
  add('linear', { x: rn(2, 3, 4), w: rn(5, 4), b: rn(5) }, 'out = (F.linear(x, w, b), F.linear(x, w))', ({ x, w, b }) => [F.linear(x, w, b), F.linear(x, w)]);
}

// ---- convolution, normalisation, pooling ----------------------------------------------------------
section('conv');
{
  const x = rn(2, 4, 9, 8);
  add('conv2d stride 2 padding 1', { x, w: rn(6, 4, 3, 3), b: rn(6) }, 'F.conv2d(x, w, b, stride=2, padding=1)', ({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 1 }));
  add('conv2d padding pair, stride pair, no bias', { x, w: rn(5, 4, 3, 2) }, 'F.conv2d(x, w, None, stride=(1, 2), padding=(2, 1))', ({ x, w }) => F.conv2d(x, w, null, { stride: [1, 2], padding: [2, 1] }));
  add("conv2d padding 'same' dilation 2", { x, w: rn(3, 4, 3, 3), b: rn(3) }, "F.conv2d(x, w, b, padding='same', dilation=2)", ({ x, w, b }) => F.conv2d(x, w, b, { padding: 'same', dilation: 2 }));
  add("conv2d padding 'same' even kernel", { x, w: rn(3, 4, 4, 2) }, "F.conv2d(x, w, padding='same')", ({ x, w }) => F.conv2d(x, w, null, { padding: 'same' }));
  add("conv2d padding 'valid'", { x, w: rn(3, 4, 3, 3) }, "F.conv2d(x, w, padding='valid')", ({ x, w }) => F.conv2d(x, w, null, { padding: 'valid' }));
  add('conv2d groups 2 stride 2', { x, w: rn(6, 2, 3, 3), b: rn(6) }, 'F.conv2d(x, w, b, stride=2, padding=1, groups=2)', ({ x, w, b }) => F.conv2d(x, w, b, { stride: 2, padding: 1, groups: 2 }));
  add('conv2d depthwise', { x, w: rn(8, 1, 3, 3), b: rn(8) }, 'F.conv2d(x, w, b, padding=1, groups=4)', ({ x, w, b }) => F.conv2d(x, w, b, { padding: 1, groups: 4 }));
  add('conv2d 1x1', { x, w: rn(7, 4, 1, 1) }, 'F.conv2d(x, w)', ({ x, w }) => F.conv2d(x, w));
  add('conv2d channels-last input', { x, w: rn(6, 4, 3, 3), b: rn(6) },
    'y = F.conv2d(x.contiguous(memory_format=torch.channels_last), w, b, padding=1)\nout = (y, torch.tensor(y.is_contiguous(memory_format=torch.channels_last)))',
    ({ x, w, b }) => { const y = F.conv2d(x.contiguous('channelsLast'), w, b, { padding: 1 }); return [y, tensor(y.isChannelsLast())]; });
  add('conv1d', { x1: rn(2, 3, 10), w: rn(4, 3, 3), b: rn(4) }, 'out = (F.conv1d(x1, w, b, stride=2, padding=1), F.conv1d(x1, w, None, padding="same", dilation=2))',
    ({ x1, w, b }) => [F.conv1d(x1, w, b, { stride: 2, padding: 1 }), F.conv1d(x1, w, null, { padding: 'same', dilation: 2 })]);
  add('convTranspose2d', { x, w: rn(4, 3, 3, 3), b: rn(3) }, 'F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)',
    ({ x, w, b }) => F.convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }));
  add('convTranspose2d groups dilation', { x, w: rn(4, 2, 2, 3) }, 'F.conv_transpose2d(x, w, None, stride=(2, 1), groups=2, dilation=2)',
    ({ x, w }) => F.convTranspose2d(x, w, null, { stride: [2, 1], groups: 2, dilation: 2 }));
}
section('norm');
{
  const x = rn(4, 3, 5, 5).mul(2).add(1);
  const rm = rn(3).mul(0.1);
  const rv = rand([3]).add(0.5);
  add('batchNorm training updates running stats', { x, rm, rv, w: rn(3), b: rn(3) },
    'out = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3, eps=1e-3)\nX = {"rm": rm, "rv": rv}',
    ({ x, rm, rv, w, b }) => ({ out: F.batchNorm(x, rm, rv, { weight: w, bias: b, training: true, momentum: 0.3, eps: 1e-3 }), extra: { rm, rv } }),
    { grad: ['x', 'w', 'b'] });
  add('batchNorm training default momentum', { x, rm, rv },
    'out = F.batch_norm(x, rm, rv, training=True)\nX = {"rm": rm, "rv": rv}',
    ({ x, rm, rv }) => ({ out: F.batchNorm(x, rm, rv, { training: true }), extra: { rm, rv } }), { grad: ['x'] });
  add('batchNorm training without running stats', { x, w: rn(3) }, 'F.batch_norm(x, None, None, w, training=True)',
    ({ x, w }) => F.batchNorm(x, null, null, { weight: w, training: true }));
  add('batchNorm eval', { x, rm, rv, w: rn(3), b: rn(3) },
    'out = F.batch_norm(x, rm, rv, w, b, training=False)\nX = {"rm": rm, "rv": rv}',
    ({ x, rm, rv, w, b }) => ({ out: F.batchNorm(x, rm, rv, { weight: w, bias: b }), extra: { rm, rv } }), { grad: ['x', 'w', 'b'] });
  add('batchNorm 2d input (BatchNorm1d)', { x2: rn(8, 3), rm, rv }, 'out = F.batch_norm(x2, rm, rv, training=True)\nX = {"rm": rm, "rv": rv}',
    ({ x2, rm, rv }) => ({ out: F.batchNorm(x2, rm, rv, { training: true }), extra: { rm, rv } }), { grad: ['x2'] });
  add('layerNorm', { x, w: rn(5, 5), b: rn(5, 5) }, 'out = (F.layer_norm(x, (5, 5), w, b), F.layer_norm(x, (5,), eps=1e-2))',
    ({ x, w, b }) => [F.layerNorm(x, [5, 5], w, b), F.layerNorm(x, [5], null, null, 1e-2)]);
  const xg = rn(2, 6, 3, 4);
  add('groupNorm', { xg, w: rn(6), b: rn(6) }, 'out = (F.group_norm(xg, 3, w, b), F.group_norm(xg, 2, eps=1e-3))',
    ({ xg, w, b }) => [F.groupNorm(xg, 3, w, b), F.groupNorm(xg, 2, null, null, 1e-3)]);
}
section('pool');
{
  const x = rn(2, 3, 9, 10);
  add('maxPool2d', { x }, 'F.max_pool2d(x, 2)', ({ x }) => F.maxPool2d(x, { kernelSize: 2 }));
  add('maxPool2d 3/2/1', { x }, 'F.max_pool2d(x, 3, 2, 1)', ({ x }) => F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }));
  add('maxPool2d ceilMode', { x }, 'F.max_pool2d(x, 3, 2, ceil_mode=True)', ({ x }) => F.maxPool2d(x, { kernelSize: 3, stride: 2, ceilMode: true }));
  add('maxPool2d dilation rect', { x }, 'F.max_pool2d(x, (2, 3), (1, 2), (1, 1), dilation=2)', ({ x }) => F.maxPool2d(x, { kernelSize: [2, 3], stride: [1, 2], padding: [1, 1], dilation: 2 }));
  add('avgPool2d', { x }, 'F.avg_pool2d(x, 2)', ({ x }) => F.avgPool2d(x, { kernelSize: 2 }));
  add('avgPool2d padding ceilMode', { x }, 'F.avg_pool2d(x, 3, 2, 1, ceil_mode=True)', ({ x }) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }));
  add('avgPool2d countIncludePad false', { x }, 'F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)',
    ({ x }) => F.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false }));
  add('adaptiveAvgPool2d', { x }, 'out = (F.adaptive_avg_pool2d(x, 1), F.adaptive_avg_pool2d(x, (4, 3)), F.adaptive_avg_pool2d(x, 7))',
    ({ x }) => [F.adaptiveAvgPool2d(x, 1), F.adaptiveAvgPool2d(x, [4, 3]), F.adaptiveAvgPool2d(x, 7)]);
  add('adaptiveMaxPool2d', { x }, 'out = (F.adaptive_max_pool2d(x, 1), F.adaptive_max_pool2d(x, (4, 3)))',
    ({ x }) => [F.adaptiveMaxPool2d(x, 1), F.adaptiveMaxPool2d(x, [4, 3])]);
}

// ---- activations, softmax, dropout -----------------------------------------------------------------
section('activations');
{
  const x = rn(3, 17).mul(3);
  const acts: [string, string, (x: Tensor) => Tensor][] = [
    ['relu', 'F.relu(x)', (x) => F.relu(x)],
    ['relu6', 'F.relu6(x)', (x) => F.relu6(x)],
    ['hardtanh', 'F.hardtanh(x)', (x) => F.hardtanh(x)],
    ['hardtanh range', 'F.hardtanh(x, -2.0, 0.5)', (x) => F.hardtanh(x, -2, 0.5)],
    ['leakyRelu', 'F.leaky_relu(x)', (x) => F.leakyRelu(x)],
    ['leakyRelu 0.2', 'F.leaky_relu(x, 0.2)', (x) => F.leakyRelu(x, 0.2)],
    ['elu', 'F.elu(x)', (x) => F.elu(x)],
    ['elu alpha', 'F.elu(x, 0.5)', (x) => F.elu(x, 0.5)],
    ['silu', 'F.silu(x)', (x) => F.silu(x)],
    ['gelu', 'F.gelu(x)', (x) => F.gelu(x)],
    ['gelu tanh', 'F.gelu(x, approximate="tanh")', (x) => F.gelu(x, 'tanh')],
    ['sigmoid', 'torch.sigmoid(x)', (x) => F.sigmoid(x)],
    ['tanh', 'torch.tanh(x)', (x) => F.tanh(x)],
    ['hardswish', 'F.hardswish(x)', (x) => F.hardswish(x)],
    ['hardsigmoid', 'F.hardsigmoid(x)', (x) => F.hardsigmoid(x)],
    ['softplus', 'F.softplus(x)', (x) => F.softplus(x)],
    ['softplus beta threshold', 'F.softplus(x, 2.0, 3.0)', (x) => F.softplus(x, 2, 3)],
    ['mish', 'F.mish(x)', (x) => F.mish(x)],
    ['Tensor.relu', 'x.relu()', (x) => x.relu()],
    ['Tensor.sigmoid', 'x.sigmoid()', (x) => x.sigmoid()],
    ['Tensor.tanh', 'x.tanh()', (x) => x.tanh()],
    ['relu_ on a non-leaf', 'y = x * 1\ny.relu_()\nout = y', (x) => x.mul(1).relu_()],
  ];
  for (const [name, py, fn] of acts) add(`activation ${name}`, { x }, py, ({ x }) => fn(x));
  const s = rn(2, 3, 4).mul(2);
  add('softmax', { s }, 'out = (F.softmax(s, 1), F.softmax(s, -1), s.softmax(0))', ({ s }) => [F.softmax(s, 1), F.softmax(s, -1), s.softmax(0)]);
  add('logSoftmax', { s }, 'out = (F.log_softmax(s, 1), F.log_softmax(s, -1), s.log_softmax(0))', ({ s }) => [F.logSoftmax(s, 1), F.logSoftmax(s, -1), s.logSoftmax(0)]);
}
section('dropout');
{
  const x = rn(4, 50);
  add('dropout p=0 training is identity', { x }, 'F.dropout(x, 0.0, True)', ({ x }) => F.dropout(x, 0, true));
  add('dropout p=1 gives zeros', { x }, 'F.dropout(x, 1.0, True)', ({ x }) => F.dropout(x, 1, true));
  add('dropout training=false is identity', { x }, 'F.dropout(x, 0.5, False)', ({ x }) => F.dropout(x, 0.5, false));
  add('dropout seeded mask matches torch.manual_seed', { x }, 'torch.manual_seed(5)\nout = F.dropout(x, 0.3, True)', ({ x }) => { manualSeed(5); return F.dropout(x, 0.3, true); });
  add('dropout seeded p=0.5 twice', { x }, 'torch.manual_seed(11)\nout = (F.dropout(x, 0.5), F.dropout(x, 0.5))', ({ x }) => { manualSeed(11); return [F.dropout(x, 0.5), F.dropout(x, 0.5)]; });
  add('dropout2d seeded', { x4: rn(4, 6, 3, 3) }, 'torch.manual_seed(3)\nout = F.dropout2d(x4, 0.4, True)', ({ x4 }) => { manualSeed(3); return F.dropout2d(x4, 0.4, true); });
}

// ---- joining, lookup -----------------------------------------------------------------------------
section('join');
{
  const a = rn(2, 3);
  const b = rn(4, 3);
  const c = rn(2, 3);
  add('cat', { a, b }, 'out = (torch.cat([a, b]), torch.cat([a, b], 0))', ({ a, b }) => [cat([a, b]), cat([a, b], 0)]);
  add('cat dim 1 negative', { a, c }, 'torch.cat([a, c, a], -1)', ({ a, c }) => cat([a, c, a], -1));
  add('stack', { a, c }, 'out = (torch.stack([a, c]), torch.stack([a, c], 2))', ({ a, c }) => [stack([a, c]), stack([a, c], 2)]);
  add('split int', { b }, 'b.split(3)', ({ b }) => b.split(3));
  add('split sizes dim 1', { b }, 'b.split([1, 2], 1)', ({ b }) => b.split([1, 2], 1));
  add('chunk', { b }, 'out = (b.chunk(3), b.chunk(2, 1))', ({ b }) => [...b.chunk(3), ...b.chunk(2, 1)]);
  add('oneHot', { i: tensor([0, 2, 1, 4]) }, 'out = (F.one_hot(i), F.one_hot(i, 6))', ({ i }) => [oneHot(i), oneHot(i, 6)]);
  const w = rn(6, 4);
  const idx = tensor([[0, 2, 5], [2, 0, 0]]);
  add('embedding', { idx, w }, 'F.embedding(idx, w)', ({ idx, w }) => F.embedding(idx, w));
  add('embedding paddingIdx gradient is zero', { idx, w }, 'F.embedding(idx, w, padding_idx=0)', ({ idx, w }) => F.embedding(idx, w, 0));
  add('embedding int32 indices', { i32: tensor([1, 3], { dtype: 'int32' }), w }, 'F.embedding(i32, w)', ({ i32, w }) => F.embedding(i32, w));
}

// ---- losses --------------------------------------------------------------------------------------
section('losses');
{
  const logits = rn(6, 5).mul(2);
  const target = tensor([0, 4, 2, 2, 1, 3]);
  const targetIgn = tensor([0, -100, 2, 7, 1, 7]);
  const cw = rand([5]).add(0.2);
  const ce = (name: string, py: string, js: (l: Tensor, t: Tensor, w: Tensor) => Tensor, t = target): void =>
    add(`crossEntropy ${name}`, { l: logits, t, w: cw }, py, ({ l, t, w }) => js(l, t, w), { grad: ['l'] });
  ce('mean', 'F.cross_entropy(l, t)', (l, t) => F.crossEntropy(l, t));
  ce('sum', 'F.cross_entropy(l, t, reduction="sum")', (l, t) => F.crossEntropy(l, t, { reduction: 'sum' }));
  ce('none', 'F.cross_entropy(l, t, reduction="none")', (l, t) => F.crossEntropy(l, t, { reduction: 'none' }));
  ce('labelSmoothing', 'F.cross_entropy(l, t, label_smoothing=0.1)', (l, t) => F.crossEntropy(l, t, { labelSmoothing: 0.1 }));
  ce('labelSmoothing none', 'F.cross_entropy(l, t, label_smoothing=0.2, reduction="none")', (l, t) => F.crossEntropy(l, t, { labelSmoothing: 0.2, reduction: 'none' }));
  ce('weight', 'F.cross_entropy(l, t, weight=w)', (l, t, w) => F.crossEntropy(l, t, { weight: w }));
  ce('weight sum', 'F.cross_entropy(l, t, weight=w, reduction="sum")', (l, t, w) => F.crossEntropy(l, t, { weight: w, reduction: 'sum' }));
  ce('weight labelSmoothing', 'F.cross_entropy(l, t, weight=w, label_smoothing=0.15)', (l, t, w) => F.crossEntropy(l, t, { weight: w, labelSmoothing: 0.15 }));
  ce('ignoreIndex default -100', 'F.cross_entropy(l, t)', (l, t) => F.crossEntropy(l, t), tensor([0, -100, 2, 2, -100, 3]));
  ce('ignoreIndex 7', 'F.cross_entropy(l, t, ignore_index=7)', (l, t) => F.crossEntropy(l, t, { ignoreIndex: 7 }), targetIgn.clamp(0));
  ce('ignoreIndex weight labelSmoothing none', 'F.cross_entropy(l, t, weight=w, ignore_index=7, label_smoothing=0.1, reduction="none")',
    (l, t, w) => F.crossEntropy(l, t, { weight: w, ignoreIndex: 7, labelSmoothing: 0.1, reduction: 'none' }), targetIgn.clamp(0));
  ce('ignoreIndex weight labelSmoothing mean', 'F.cross_entropy(l, t, weight=w, ignore_index=7, label_smoothing=0.1)',
    (l, t, w) => F.crossEntropy(l, t, { weight: w, ignoreIndex: 7, labelSmoothing: 0.1 }), targetIgn.clamp(0));
  const soft = rand([6, 5]).softmax(1);
  add('crossEntropy soft targets', { l: logits, p: soft }, 'out = (F.cross_entropy(l, p), F.cross_entropy(l, p, reduction="none"), F.cross_entropy(l, p, reduction="sum"))',
    ({ l, p }) => [F.crossEntropy(l, p), F.crossEntropy(l, p, { reduction: 'none' }), F.crossEntropy(l, p, { reduction: 'sum' })]);
  add('crossEntropy soft targets labelSmoothing weight', { l: logits, p: soft, w: cw }, 'F.cross_entropy(l, p, weight=w, label_smoothing=0.1)',
    ({ l, p, w }) => F.crossEntropy(l, p, { weight: w, labelSmoothing: 0.1 }), { grad: ['l', 'p'] });
  add('crossEntropy spatial [N,C,H,W]', { l4: rn(2, 4, 3, 3), t4: randint(0, 4, [2, 3, 3]) }, 'F.cross_entropy(l4, t4, label_smoothing=0.05)',
    ({ l4, t4 }) => F.crossEntropy(l4, t4, { labelSmoothing: 0.05 }));
  const lp = logits.logSoftmax(1);
  add('nllLoss', { lp, t: target, w: cw }, 'out = (F.nll_loss(lp, t), F.nll_loss(lp, t, weight=w, reduction="sum"), F.nll_loss(lp, t, reduction="none"))',
    ({ lp, t, w }) => [F.nllLoss(lp, t), F.nllLoss(lp, t, { weight: w, reduction: 'sum' }), F.nllLoss(lp, t, { reduction: 'none' })], { grad: ['lp'] });
  add('nllLoss ignoreIndex', { lp, t: tensor([0, 3, 3, 2, 1, 0]) }, 'F.nll_loss(lp, t, ignore_index=3)', ({ lp, t }) => F.nllLoss(lp, t, { ignoreIndex: 3 }));
  const p = rn(4, 3);
  const q = rn(4, 3);
  add('mseLoss', { p, q }, 'out = (F.mse_loss(p, q), F.mse_loss(p, q, reduction="sum"), F.mse_loss(p, q, reduction="none"))',
    ({ p, q }) => [F.mseLoss(p, q), F.mseLoss(p, q, 'sum'), F.mseLoss(p, q, 'none')]);
  add('l1Loss', { p, q }, 'out = (F.l1_loss(p, q), F.l1_loss(p, q, reduction="sum"), F.l1_loss(p, q, reduction="none"))',
    ({ p, q }) => [F.l1Loss(p, q), F.l1Loss(p, q, 'sum'), F.l1Loss(p, q, 'none')]);
  add('smoothL1Loss', { p, q }, 'out = (F.smooth_l1_loss(p, q), F.smooth_l1_loss(p, q, reduction="sum", beta=0.5))',
    ({ p, q }) => [F.smoothL1Loss(p, q), F.smoothL1Loss(p, q, 'sum', 0.5)]);
  const y = rand([4, 3]).gt(0.5).float();
  const pw = rand([3]).mul(3);
  const bw = rand([4, 3]);
  add('bceWithLogits', { p, y }, 'out = (F.binary_cross_entropy_with_logits(p, y), F.binary_cross_entropy_with_logits(p, y, reduction="none"))',
    ({ p, y }) => [F.binaryCrossEntropyWithLogits(p, y), F.binaryCrossEntropyWithLogits(p, y, { reduction: 'none' })], { grad: ['p'] });
  add('bceWithLogits posWeight', { p, y, pw }, 'F.binary_cross_entropy_with_logits(p, y, pos_weight=pw)',
    ({ p, y, pw }) => F.binaryCrossEntropyWithLogits(p, y, { posWeight: pw }), { grad: ['p'] });
  add('bceWithLogits weight posWeight sum', { p, y, pw, bw }, 'F.binary_cross_entropy_with_logits(p, y, weight=bw, pos_weight=pw, reduction="sum")',
    ({ p, y, pw, bw }) => F.binaryCrossEntropyWithLogits(p, y, { weight: bw, posWeight: pw, reduction: 'sum' }), { grad: ['p'] });
  add('bceWithLogits soft targets', { p, ys: rand([4, 3]) }, 'F.binary_cross_entropy_with_logits(p, ys)',
    ({ p, ys }) => F.binaryCrossEntropyWithLogits(p, ys));
  const tgt = rand([4, 3]).softmax(1);
  add('klDiv', { lp2: p.logSoftmax(1), tgt }, 'out = (F.kl_div(lp2, tgt, reduction="batchmean"), F.kl_div(lp2, tgt, reduction="sum"), F.kl_div(lp2, tgt.log(), reduction="mean", log_target=True))',
    ({ lp2, tgt }) => [F.klDiv(lp2, tgt, 'batchmean'), F.klDiv(lp2, tgt, 'sum'), F.klDiv(lp2, tgt.log(), 'mean', true)], { grad: ['lp2'] });
}

// ---- resizing and padding ------------------------------------------------------------------------
section('resize');
{
  const x = rn(2, 3, 6, 7);
  add('interpolate nearest up', { x }, 'F.interpolate(x, size=(12, 10), mode="nearest")', ({ x }) => F.interpolate(x, [12, 10]));
  add('interpolate nearest down', { x }, 'F.interpolate(x, size=(4, 3), mode="nearest")', ({ x }) => F.interpolate(x, [4, 3], { mode: 'nearest' }));
  add('interpolate bilinear', { x }, 'F.interpolate(x, size=(9, 11), mode="bilinear", align_corners=False)', ({ x }) => F.interpolate(x, [9, 11], { mode: 'bilinear' }));
  add('interpolate bilinear alignCorners', { x }, 'F.interpolate(x, size=(9, 11), mode="bilinear", align_corners=True)', ({ x }) => F.interpolate(x, [9, 11], { mode: 'bilinear', alignCorners: true }));
  add('interpolate bicubic', { x }, 'F.interpolate(x, size=(10, 5), mode="bicubic", align_corners=False)', ({ x }) => F.interpolate(x, [10, 5], { mode: 'bicubic' }));
  add('interpolate bicubic alignCorners', { x }, 'F.interpolate(x, size=(10, 5), mode="bicubic", align_corners=True)', ({ x }) => F.interpolate(x, [10, 5], { mode: 'bicubic', alignCorners: true }));
  add('interpolate bilinear antialias down', { x }, 'F.interpolate(x, size=(3, 4), mode="bilinear", antialias=True)', ({ x }) => F.interpolate(x, [3, 4], { mode: 'bilinear', antialias: true }));
  add('interpolate bicubic antialias down', { x }, 'F.interpolate(x, size=(4, 3), mode="bicubic", antialias=True)', ({ x }) => F.interpolate(x, [4, 3], { mode: 'bicubic', antialias: true }));
  add('interpolate square size number', { x }, 'F.interpolate(x, size=5, mode="bilinear")', ({ x }) => F.interpolate(x, 5, { mode: 'bilinear' }));
  add('pad constant', { x }, 'out = (F.pad(x, (1, 2)), F.pad(x, (1, 2, 3, 0), value=-1.5))', ({ x }) => [F.pad(x, [1, 2]), F.pad(x, [1, 2, 3, 0], 'constant', -1.5)]);
  add('pad constant negative crops', { x }, 'F.pad(x, (-1, 2, 0, -2))', ({ x }) => F.pad(x, [-1, 2, 0, -2]));
  add('pad reflect', { x }, 'F.pad(x, (2, 1, 3, 2), mode="reflect")', ({ x }) => F.pad(x, [2, 1, 3, 2], 'reflect'));
  add('pad replicate', { x }, 'F.pad(x, (2, 1, 3, 2), mode="replicate")', ({ x }) => F.pad(x, [2, 1, 3, 2], 'replicate'));
  add('pad reflect 3-d input (1-d padding)', { x3: rn(2, 3, 6) }, 'F.pad(x3, (2, 3), mode="reflect")', ({ x3 }) => F.pad(x3, [2, 3], 'reflect'));
  add('pad reflect 5-d input (3-d padding)', { x5: rn(1, 2, 4, 5, 6) }, 'F.pad(x5, (1, 2, 2, 1, 3, 0), mode="reflect")', ({ x5 }) => F.pad(x5, [1, 2, 2, 1, 3, 0], 'reflect'));
  add('pad replicate 5-d input (3-d padding)', { x5: rn(1, 2, 4, 5, 6) }, 'F.pad(x5, (1, 2, 2, 1, 3, 0), mode="replicate")', ({ x5 }) => F.pad(x5, [1, 2, 2, 1, 3, 0], 'replicate'));
  add('pad replicate 3-d input (1-d padding)', { x3: rn(2, 3, 6) }, 'F.pad(x3, (2, 3), mode="replicate")', ({ x3 }) => F.pad(x3, [2, 3], 'replicate'));
}

section('sampling');
{
  const x = rn(2, 3, 5, 6);
  const grid = rand([2, 4, 7, 2]).mul(2.4).sub(1.2); // some points outside [-1, 1]
  for (const mode of ['bilinear', 'nearest', 'bicubic'] as const) {
    for (const paddingMode of ['zeros', 'border', 'reflection'] as const) {
      for (const alignCorners of [false, true]) {
        add(`gridSample ${mode} ${paddingMode}${alignCorners ? ' alignCorners' : ''}`, { x, grid },
          `F.grid_sample(x, grid, mode="${mode}", padding_mode="${paddingMode}", align_corners=${alignCorners ? 'True' : 'False'})`,
          ({ x, grid }) => F.gridSample(x, grid, { mode, paddingMode, alignCorners }),
          // nearest has no gradient for the grid in PyTorch either; keep the grid's grad for the rest
          { grad: mode === 'nearest' ? ['x'] : ['x', 'grid'], gradAtol: 1e-4 });
      }
    }
  }
  const theta = rn(2, 2, 3).mul(0.5);
  add('affineGrid', { theta }, 'out = (F.affine_grid(theta, (2, 3, 4, 5), align_corners=False), F.affine_grid(theta, (2, 1, 3, 3), align_corners=True))',
    ({ theta }) => [F.affineGrid(theta, [2, 3, 4, 5]), F.affineGrid(theta, [2, 1, 3, 3], true)]);
  add('affineGrid then gridSample', { x, theta }, 'F.grid_sample(x, F.affine_grid(theta, (2, 3, 4, 4), align_corners=False), align_corners=False)',
    ({ x, theta }) => F.gridSample(x, F.affineGrid(theta, [2, 3, 4, 4])));
}

// ---- recurrent kernels ----------------------------------------------------------------------------
section('recurrent');
{
  const H = 4;
  const IN = 3;
  // PyTorch's flat weight order: w_ih, w_hh, b_ih, b_hh per layer and direction (forward, reverse).
  const flatWeights = (gates: number, layers: number, dirs: number): Tensor[] => {
    const ws: Tensor[] = [];
    for (let l = 0; l < layers; l++) {
      for (let d = 0; d < dirs; d++) {
        const inSize = l === 0 ? IN : H * dirs;
        ws.push(rn(gates * H, inSize).mul(0.4), rn(gates * H, H).mul(0.4), rn(gates * H).mul(0.4), rn(gates * H).mul(0.4));
      }
    }
    return ws;
  };
  const named = (ws: Tensor[]): Record<string, Tensor> => Object.fromEntries(ws.map((w, i) => [`w${i}`, w]));
  const pyModule = (ctor: string, n: number, call: string): string =>
    `m = ${ctor}\nwith torch.no_grad():\n    for _p, _w in zip(m._flat_weights, [I['w%d' % _i] for _i in range(${n})]): _p.copy_(_w)\n` +
    `out = ${call}\nG = {k: globals()[k] for k in I if not k.startswith('w')}\nG.update({'w%d' % _i: _p for _i, _p in enumerate(m._flat_weights)})`;
  const opts = (o: Partial<F.RecurrentOptions>): F.RecurrentOptions => ({ hasBiases: true, numLayers: 1, dropout: 0, training: false, bidirectional: false, batchFirst: false, ...o });

  {
    const ws = flatWeights(4, 2, 2);
    const x = rn(2, 5, IN);
    const h0 = rn(4, 2, H);
    const c0 = rn(4, 2, H);
    add('lstm 2 layers bidirectional batchFirst', { x, h0, c0, ...named(ws) },
      pyModule(`nn.LSTM(${IN}, ${H}, num_layers=2, bidirectional=True, batch_first=True)`, ws.length, 'm(x, (h0, c0))'),
      (I) => F.lstm(I.x, [I.h0, I.c0], ws.map((_, i) => I[`w${i}`]), opts({ numLayers: 2, bidirectional: true, batchFirst: true })),
      { atol: 1e-5, rtol: 1e-4 });
  }
  {
    const ws = flatWeights(4, 1, 1);
    const x = rn(6, 2, IN);
    add('lstm 1 layer', { x, h0: rn(1, 2, H), c0: rn(1, 2, H), ...named(ws) },
      pyModule(`nn.LSTM(${IN}, ${H})`, ws.length, 'm(x, (h0, c0))'),
      (I) => F.lstm(I.x, [I.h0, I.c0], ws.map((_, i) => I[`w${i}`]), opts({})));
  }
  {
    const ws = flatWeights(3, 2, 1);
    const x = rn(5, 2, IN);
    add('gru 2 layers', { x, h0: rn(2, 2, H), ...named(ws) },
      pyModule(`nn.GRU(${IN}, ${H}, num_layers=2)`, ws.length, 'm(x, h0)'),
      (I) => F.recurrent('gru', I.x, I.h0, ws.map((_, i) => I[`w${i}`]), opts({ numLayers: 2 })));
  }
  {
    const ws = flatWeights(1, 1, 2);
    const x = rn(2, 5, IN);
    add('rnn tanh bidirectional batchFirst', { x, h0: rn(2, 2, H), ...named(ws) },
      pyModule(`nn.RNN(${IN}, ${H}, bidirectional=True, batch_first=True)`, ws.length, 'm(x, h0)'),
      (I) => F.recurrent('rnn_tanh', I.x, I.h0, ws.map((_, i) => I[`w${i}`]), opts({ bidirectional: true, batchFirst: true })));
    add('rnn relu', { x, h0: rn(2, 2, H), ...named(ws) },
      pyModule(`nn.RNN(${IN}, ${H}, nonlinearity='relu', bidirectional=True, batch_first=True)`, ws.length, 'm(x, h0)'),
      (I) => F.recurrent('rnn_relu', I.x, I.h0, ws.map((_, i) => I[`w${i}`]), opts({ bidirectional: true, batchFirst: true })));
  }
}

// ---- random numbers: exactly PyTorch's after the same seed --------------------------------------------
section('random');
{
  add('manualSeed then rand randn randint randperm', {},
    'torch.manual_seed(42)\nout = (torch.rand(3, 4), torch.randn(5, 7), torch.randn(3), torch.randn(2, dtype=torch.float64), torch.randint(0, 10, (3, 4)), torch.randperm(10), torch.randperm(300), torch.rand(20, dtype=torch.float64), torch.randint(-3, 3, (5,), dtype=torch.int32))',
    () => {
      manualSeed(42);
      return [rand([3, 4]), randn([5, 7]), randn([3]), randn([2], { dtype: 'float64' }), randint(0, 10, [3, 4]), randperm(10), randperm(300), rand([20], { dtype: 'float64' }), randint(-3, 3, [5], { dtype: 'int32' })];
    }, { rtol: 0, atol: 0 });
  add('manualSeed big seed', {}, 'torch.manual_seed(2**40 + 7)\nout = torch.randn(17)', () => { manualSeed(2 ** 40 + 7); return randn([17]); }, { rtol: 0, atol: 0 });
  const probs = rand([4, 6]);
  add('bernoulli', { probs }, 'torch.manual_seed(7)\nout = (torch.bernoulli(probs), torch.bernoulli(probs, 0.3))',
    ({ probs }) => { manualSeed(7); return [bernoulli(probs), bernoulli(probs, 0.3)]; }, { rtol: 0, atol: 0, grad: [] });
  add('normal_ uniform_', {}, 'torch.manual_seed(8)\nout = (torch.empty(20).normal_(2, 3), torch.empty(3, 5).uniform_(-1, 1), torch.empty(7).normal_(), torch.empty(4).uniform_())',
    () => { manualSeed(8); return [empty([20]).normal_(2, 3), empty([3, 5]).uniform_(-1, 1), empty([7]).normal_(), empty([4]).uniform_()]; }, { rtol: 0, atol: 0 });
  add('multinomial', { probs }, 'torch.manual_seed(9)\nout = (torch.multinomial(probs, 3), torch.multinomial(probs, 8, True))',
    ({ probs }) => { manualSeed(9); return [multinomial(probs, 3), multinomial(probs, 8, true)]; }, { rtol: 0, atol: 0, grad: [] });
  add('manualSeedCpu is torch.default_generator.manual_seed', {}, 'torch.default_generator.manual_seed(99)\nout = (torch.randn(20), torch.rand(3))',
    () => { manualSeedCpu(99); return [randn([20]), rand([3])]; }, { rtol: 0, atol: 0 });
  add('getRngState equals torch.get_rng_state', {}, 'torch.manual_seed(123)\ntorch.randn(10)\nout = torch.get_rng_state()',
    () => { manualSeed(123); randn([10]); return getRngState(); }, { rtol: 0, atol: 0 });
}

// ---- in-place and multi-tensor updates -----------------------------------------------------------
section('inplace');
{
  const x = rn(3, 4);
  const y = rn(3, 4);
  const z = pos(3, 4);
  const r = rn(4);
  const ip = (name: string, inputs: Record<string, Tensor>, py: string, js: Js): void => add(`in-place ${name}`, inputs, py, js, { grad: [] });
  ip('add_ tensor alpha', { x, y }, 'x.add_(y, alpha=0.5)\nout = x', ({ x, y }) => x.add_(y, 0.5));
  ip('add_ broadcast', { x, r }, 'x.add_(r)\nout = x', ({ x, r }) => x.add_(r));
  ip('add_ scalar', { x }, 'x.add_(1.5)\nout = x', ({ x }) => x.add_(1.5));
  ip('add_ scalar alpha', { x }, 'x.add_(2, alpha=-0.25)\nout = x', ({ x }) => x.add_(2, -0.25));
  ip('sub_', { x, y }, 'x.sub_(y, alpha=2)\nout = x', ({ x, y }) => x.sub_(y, 2));
  ip('mul_ tensor', { x, y }, 'x.mul_(y)\nout = x', ({ x, y }) => x.mul_(y));
  ip('mul_ scalar', { x }, 'x.mul_(0.9)\nout = x', ({ x }) => x.mul_(0.9));
  ip('div_', { x, z }, 'x.div_(z)\nx.div_(4)\nout = x', ({ x, z }) => x.div_(z).div_(4));
  ip('addcmul_', { x, y, z }, 'x.addcmul_(y, z, value=0.3)\nout = x', ({ x, y, z }) => x.addcmul_(y, z, 0.3));
  ip('addcdiv_', { x, y, z }, 'x.addcdiv_(y, z, value=-0.7)\nout = x', ({ x, y, z }) => x.addcdiv_(y, z, -0.7));
  ip('copy_', { x, y }, 'x.copy_(y)\nout = x', ({ x, y }) => x.copy_(y));
  ip('copy_ broadcast and cast', { x, i: tensor([1, 2, 3, 4]) }, 'x.copy_(i)\nout = x', ({ x, i }) => x.copy_(i));
  ip('copy_ into a view', { x, r }, 'x[1].copy_(r)\nout = x', ({ x, r }) => { x.select(0, 1).copy_(r); return x; });
  ip('zero_', { x }, 'x.zero_()\nout = x', ({ x }) => x.zero_());
  ip('fill_', { x }, 'x.fill_(-3.25)\nout = x', ({ x }) => x.fill_(-3.25));
  ip('lerp_', { x, y }, 'x.lerp_(y, 0.1)\nout = x', ({ x, y }) => x.lerp_(y, 0.1));
  ip('clamp_', { x }, 'x.clamp_(-0.3, 0.4)\nout = x', ({ x }) => x.clamp_(-0.3, 0.4));
  ip('sqrt_', { z }, 'z.sqrt_()\nout = z', ({ z }) => z.sqrt_());
  ip('maskedFill_', { x, m: rand([3, 4]).gt(0.5) }, 'x.masked_fill_(m, 9.0)\nout = x', ({ x, m }) => x.maskedFill_(m, 9));
  ip('relu_', { x }, 'x.relu_()\nout = x', ({ x }) => x.relu_());
  ip('in-place ops return this', { x }, 'out = torch.tensor(True)', ({ x }) => tensor(x.add_(1) === x && x.mul_(2) === x && x.zero_() === x));
  const a = [rn(3), rn(2, 2)];
  const b = [rn(3), rn(2, 2)];
  const c = [pos(3), pos(2, 2)];
  const inputs = { a0: a[0], a1: a[1], b0: b[0], b1: b[1], c0: c[0], c1: c[1] };
  type R = Record<string, Tensor>;
  const A = (I: R): Tensor[] => [I.a0, I.a1];
  const B = (I: R): Tensor[] => [I.b0, I.b1];
  const C = (I: R): Tensor[] => [I.c0, I.c1];
  ip('foreach add_', inputs, 'torch._foreach_add_([a0, a1], [b0, b1], alpha=0.5)\nout = (a0, a1)', (I) => { F.foreach.add_(A(I), B(I), 0.5); return A(I); });
  ip('foreach addScalar_', inputs, 'torch._foreach_add_([a0, a1], 1.25)\nout = (a0, a1)', (I) => { F.foreach.addScalar_(A(I), 1.25); return A(I); });
  ip('foreach mulScalar_', inputs, 'torch._foreach_mul_([a0, a1], 0.9)\nout = (a0, a1)', (I) => { F.foreach.mulScalar_(A(I), 0.9); return A(I); });
  ip('foreach addcmul_', inputs, 'torch._foreach_addcmul_([a0, a1], [b0, b1], [c0, c1], 0.3)\nout = (a0, a1)', (I) => { F.foreach.addcmul_(A(I), B(I), C(I), 0.3); return A(I); });
  ip('foreach addcdiv_', inputs, 'torch._foreach_addcdiv_([a0, a1], [b0, b1], [c0, c1], -0.2)\nout = (a0, a1)', (I) => { F.foreach.addcdiv_(A(I), B(I), C(I), -0.2); return A(I); });
  ip('foreach zero_', inputs, 'torch._foreach_zero_([a0, a1])\nout = (a0, a1)', (I) => { F.foreach.zero_(A(I)); return A(I); });
  ip('foreach sqrt', inputs, 'torch._foreach_sqrt([c0, c1])', (I) => F.foreach.sqrt(C(I)));
  ip('foreach add sub (out of place)', inputs, 'out = (torch._foreach_add([a0, a1], [b0, b1], alpha=2), torch._foreach_add([a0, a1], 0.5), torch._foreach_sub([a0, a1], [b0, b1], alpha=0.25), (a0, a1))',
    (I) => [...F.foreach.add(A(I), B(I), 2), ...F.foreach.addScalar(A(I), 0.5), ...F.foreach.sub(A(I), B(I), 0.25), ...A(I)]);
  ip('foreach sub_', inputs, 'torch._foreach_sub_([a0, a1], [b0, b1], alpha=3)\nout = (a0, a1)', (I) => { F.foreach.sub_(A(I), B(I), 3); return A(I); });
  ip('foreach mul, neg, addcmul (out of place)', inputs, 'out = (torch._foreach_mul([a0, a1], [b0, b1]), torch._foreach_neg([a0, a1]), torch._foreach_addcmul([a0, a1], [b0, b1], [c0, c1], 0.7))',
    (I) => [...F.foreach.mul(A(I), B(I)), ...F.foreach.neg(A(I)), ...F.foreach.addcmul(A(I), B(I), C(I), 0.7)]);
  ip('foreach mulTensor_', { ...inputs, s: tensor(1.75) }, 'for t in (a0, a1): t.mul_(s)\nout = (a0, a1)', (I) => { F.foreach.mulTensor_(A(I), I.s); return A(I); });
  ip('foreach divScalarList_', inputs, 'torch._foreach_div_([a0, a1], [2.0, -0.5])\nout = (a0, a1)', (I) => { F.foreach.divScalarList_(A(I), [2, -0.5]); return A(I); });
  ip('foreach addcdivScalarList_', inputs, 'torch._foreach_addcdiv_([a0, a1], [b0, b1], [c0, c1], [0.3, -1.5])\nout = (a0, a1)',
    (I) => { F.foreach.addcdivScalarList_(A(I), B(I), C(I), [0.3, -1.5]); return A(I); });
  ip('foreach maximum_ sqrt_ copy_ clamp_', inputs,
    'torch._foreach_maximum_([a0, a1], [b0, b1])\ntorch._foreach_sqrt_([c0, c1])\nfor d, s in ((b0, c0), (b1, c1)): d.copy_(s)\nfor t in (a0, a1): t.clamp_(-0.2, 0.6)\nout = (a0, a1, b0, b1, c0, c1)',
    (I) => { F.foreach.maximum_(A(I), B(I)); F.foreach.sqrt_(C(I)); F.foreach.copy_(B(I), C(I)); F.foreach.clamp_(A(I), -0.2, 0.6); return [...A(I), ...B(I), ...C(I)]; });
  ip('foreach norm', inputs, 'out = (torch._foreach_norm([a0, a1]), torch._foreach_norm([a0, a1], 1))', (I) => [...F.foreach.norm(A(I)), ...F.foreach.norm(A(I), 1)]);
}

// GELU (erf) in float32 and bfloat16 and SiLU in bfloat16 run on native/fast_grads.cc's own
// kernels: values and gradients must agree with PyTorch's within each dtype's rounding, in both
// layouts, on a map large enough to be split between threads and into bf16 chunks, and at the
// far tails (float32 SiLU, on libtorch, is checked alike).
section('own gelu and silu');
{
  const big = rn(2, 24, 30, 31).mul(4);
  const tails = tensor([-1e30, -100, -88, -86, -13.2, -13.1, -6, -1e-6, 0, 1e-6, 6, 13.1, 13.2, 86, 88, 100, 1e30]);
  const xb = rn(2, 24, 30, 31).mul(4).bfloat16();
  for (const [name, fn] of [['gelu', F.gelu], ['silu', F.silu]] as const) {
    add(`${name} float32 channels-last`, { big }, `F.${name}(big.contiguous(memory_format=torch.channels_last))`,
      ({ big }) => fn(big.contiguous('channelsLast')), { rtol: 1e-5, atol: 1e-6 });
    add(`${name} float32 tails`, { tails }, `F.${name}(tails)`, ({ tails }) => fn(tails), { rtol: 1e-6, atol: 1e-6 });
    add(`${name} bfloat16`, { xb }, `F.${name}(xb)`, ({ xb }) => fn(xb), { rtol: 2e-2, atol: 2e-2 });
    add(`${name} bfloat16 channels-last`, { xb }, `F.${name}(xb.contiguous(memory_format=torch.channels_last))`,
      ({ xb }) => fn(xb.contiguous('channelsLast')), { rtol: 2e-2, atol: 2e-2 });
    add(`${name} bfloat16 channels-last under global pooling`, { xb }, `F.adaptive_avg_pool2d(F.${name}(xb.contiguous(memory_format=torch.channels_last)), 1)`,
      ({ xb }) => F.adaptiveAvgPool2d(fn(xb.contiguous('channelsLast')), [1, 1]), { rtol: 2e-2, atol: 2e-2 });
    add(`${name} non-contiguous view`, { big }, `F.${name}(big[:, ::2])`, ({ big }) => fn(big.slice(1, 0, undefined, 2)), { rtol: 1e-5, atol: 1e-6 });
  }
}

// Training-mode batch norm on channels-last maps and [N, C] batches runs on native/batch_norm.cc's
// own kernels, with the ReLU after it optionally in the same passes: values, running statistics
// and gradients must agree with PyTorch's, on a map split between threads and into partial tiles
// (24 channels: tiles of 21 rows), on an input far from zero (the variance must not cancel), and
// in bfloat16 within its rounding.
section('own batch norm');
{
  const x = rn(6, 24, 13, 11).mul(3).add(2);
  const far = rn(6, 24, 13, 11).add(300);
  const rm = rn(24).mul(0.1);
  const rv = rand([24]).add(0.5);
  const cl = (t: string): string => `${t}.contiguous(memory_format=torch.channels_last)`;
  const py = (t: string, relu: string): string => `out = ${relu}(F.batch_norm(${cl(t)}, rm, rv, w, b, training=True, momentum=0.3, eps=1e-3))\nX = {"rm": rm, "rv": rv}`;
  const js = (relu: boolean) => ({ x, rm, rv, w, b }: Record<string, Tensor>) =>
    ({ out: F.batchNorm(x.contiguous('channelsLast'), rm, rv, { weight: w, bias: b, training: true, momentum: 0.3, eps: 1e-3, relu }), extra: { rm, rv } });
  const grad = { grad: ['x', 'w', 'b'], rtol: 1e-4, atol: 1e-4 };
  add('float32 channels-last', { x, rm, rv, w: rn(24), b: rn(24) }, py('x', ''), js(false), grad);
  add('float32 channels-last with ReLU', { x, rm, rv, w: rn(24), b: rn(24) }, py('x', 'F.relu'), js(true), grad);
  // PyTorch's float32 kernel loses digits there itself: the reference is its float64 result
  add('float32 channels-last far from zero', { far, w: rn(24), b: rn(24) },
    `F.batch_norm(${cl('far.double()')}, None, None, w.double(), b.double(), training=True).float()`,
    ({ far, w, b }) => F.batchNorm(far.contiguous('channelsLast'), null, null, { weight: w, bias: b, training: true }), { grad: ['far', 'w', 'b'], rtol: 1e-4, atol: 1e-4 });
  const bf = { grad: ['x', 'w', 'b'], rtol: 2e-2, atol: 2e-2, gradRtol: 2e-2, gradAtol: 5e-2 };
  add('bfloat16 channels-last with ReLU', { x: x.bfloat16(), rm, rv, w: rn(24), b: rn(24) }, py('x', 'F.relu'), js(true), bf);
  add('bfloat16 channels-last', { x: x.bfloat16(), rm, rv, w: rn(24), b: rn(24) }, py('x', ''), js(false), bf);
  add('[N, C] batch with ReLU, no affine, no running stats', { x2: rn(300, 5).add(1) }, 'F.relu(F.batch_norm(x2, None, None, training=True))',
    ({ x2 }) => F.batchNorm(x2, null, null, { training: true, relu: true }));
  add('contiguous map with ReLU (libtorch, then a ReLU)', { x, w: rn(24) }, 'F.relu(F.batch_norm(x, None, None, w, training=True))',
    ({ x, w }) => F.batchNorm(x, null, null, { weight: w, training: true, relu: true }), { rtol: 1e-4, atol: 1e-4 });
  // a residual added before the ReLU: its gradient is the one past the ReLU; of another layout
  // or dtype it is brought to x's first
  const res = (relu: string, r: string): string => `out = ${relu}(F.batch_norm(${cl('x')}, rm, rv, w, b, training=True, momentum=0.3, eps=1e-3) + ${r})\nX = {"rm": rm, "rv": rv}`;
  const jsRes = (relu: boolean, layout: 'channelsLast' | 'contiguous') => ({ x, r, rm, rv, w, b }: Record<string, Tensor>) => ({
    out: F.batchNorm(x.contiguous('channelsLast'), rm, rv, { weight: w, bias: b, training: true, momentum: 0.3, eps: 1e-3, relu, residual: r.contiguous(layout) }),
    extra: { rm, rv },
  });
  const resGrad = { grad: ['x', 'r', 'w', 'b'], rtol: 1e-4, atol: 1e-4 };
  add('float32 channels-last + residual, ReLU', { x, r: rn(6, 24, 13, 11), rm, rv, w: rn(24), b: rn(24) }, res('F.relu', cl('r')), jsRes(true, 'channelsLast'), resGrad);
  add('float32 channels-last + residual', { x, r: rn(6, 24, 13, 11), rm, rv, w: rn(24), b: rn(24) }, res('', cl('r')), jsRes(false, 'channelsLast'), resGrad);
  add('float32 channels-last + contiguous residual, ReLU', { x, r: rn(6, 24, 13, 11), rm, rv, w: rn(24), b: rn(24) }, res('F.relu', 'r'), jsRes(true, 'contiguous'), resGrad);
  // bf16: the sum is rounded once (PyTorch rounds the norm's output, then the sum), so where it is
  // within a rounding of 0 the ReLU's mask may differ from PyTorch's bf16 one; the reference is
  // PyTorch in float32 on the same bf16 values, rounded at the end
  add('bfloat16 channels-last + residual, ReLU', { xb: x.bfloat16(), r: rn(6, 24, 13, 11).bfloat16(), w: rn(24), b: rn(24) },
    `F.relu(F.batch_norm(${cl('xb.float()')}, None, None, w, b, training=True) + r.float()).bfloat16()`,
    ({ xb, r, w, b }) => F.batchNorm(xb.contiguous('channelsLast'), null, null, { weight: w, bias: b, training: true, relu: true, residual: r.contiguous('channelsLast') }),
    { ...bf, grad: ['xb', 'r', 'w', 'b'] });
  add('contiguous map + residual, ReLU (libtorch, then an add and a ReLU)', { x, r: rn(6, 24, 13, 11) }, 'F.relu(F.batch_norm(x, None, None, training=True) + r)',
    ({ x, r }) => F.batchNorm(x, null, null, { training: true, relu: true, residual: r }), { rtol: 1e-4, atol: 1e-4 });
  add('eval with ReLU', { x, rm, rv }, 'F.relu(F.batch_norm(x, rm, rv, training=False))',
    ({ x, rm, rv }) => F.batchNorm(x.contiguous('channelsLast'), rm, rv, { relu: true }), { rtol: 1e-4, atol: 1e-4, grad: ['x'] });
}

// native/conv2d.cc computes two kinds of weight gradient itself: bf16 convolutions with small
// outputs as a GEMM, depthwise convolutions (float32 and bf16) with a direct loop. Forced here for
// every shape, they must agree with PyTorch (oneDNN's kernels): values, and the float32 gradients
// of input, weight and bias, within float32 or bfloat16 rounding.
section('conv2d weight gradients');
{
  const ownConv = (bf16: boolean) => (x: Tensor, w: Tensor, b: Tensor | null, o: F.ConvOptions): Tensor => {
    native.setConvWgrad('gemm');
    try {
      const run = (): Tensor => F.conv2d(x.contiguous('channelsLast'), w.contiguous('channelsLast'), b, o);
      return bf16 ? autocast(run) : run();
    } finally {
      native.setConvWgrad('auto');
    }
  };
  const [bfConv, fConv] = [ownConv(true), ownConv(false)];
  const conv = 'F.conv2d(x.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last), ';
  const bfPy = (args: string): string => `with torch.autocast("cpu", dtype=torch.bfloat16):\n    out = ${conv}${args})`;
  const fPy = (args: string): string => `${conv}${args})`;
  const bfTol = { rtol: 2e-2, atol: 2e-2, gradRtol: 2e-2, gradAtol: 0.1 };
  add('bf16 conv2d 3x3 on a 3x3 map, bias', { x: rn(6, 8, 3, 3), w: rn(12, 8, 3, 3), b: rn(12) }, bfPy('b, padding=1'),
    ({ x, w, b }) => bfConv(x, w, b, { padding: 1 }), bfTol);
  add('bf16 conv2d 3x3 stride 2', { x: rn(4, 5, 7, 7), w: rn(6, 5, 3, 3) }, bfPy('None, stride=2, padding=1'),
    ({ x, w }) => bfConv(x, w, null, { stride: 2, padding: 1 }), bfTol);
  add('bf16 conv2d 1x1', { x: rn(4, 16, 4, 4), w: rn(8, 16, 1, 1), b: rn(8) }, bfPy('b'), ({ x, w, b }) => bfConv(x, w, b, {}), bfTol);
  add('bf16 conv2d dilation 2', { x: rn(3, 4, 5, 5), w: rn(4, 4, 3, 3) }, bfPy('None, padding=2, dilation=2'),
    ({ x, w }) => bfConv(x, w, null, { padding: 2, dilation: 2 }), bfTol);
  add('bf16 conv2d 2x3 kernel, stride (1, 2)', { x: rn(3, 4, 5, 6), w: rn(5, 4, 2, 3), b: rn(5) }, bfPy('b, stride=(1, 2), padding=(1, 0)'),
    ({ x, w, b }) => bfConv(x, w, b, { stride: [1, 2], padding: [1, 0] }), bfTol);
  add('bf16 conv2d 7x7 stride 2 on 1 channel', { x: rn(2, 1, 12, 12), w: rn(4, 1, 7, 7) }, bfPy('None, stride=2, padding=3'),
    ({ x, w }) => bfConv(x, w, null, { stride: 2, padding: 3 }), bfTol);
  add('depthwise 3x3, bias', { x: rn(3, 8, 9, 9), w: rn(8, 1, 3, 3), b: rn(8) }, fPy('b, padding=1, groups=8'),
    ({ x, w, b }) => fConv(x, w, b, { padding: 1, groups: 8 }), { rtol: 1e-4, atol: 1e-4 });
  add('depthwise 5x5 stride 2', { x: rn(3, 6, 11, 11), w: rn(6, 1, 5, 5) }, fPy('None, stride=2, padding=2, groups=6'),
    ({ x, w }) => fConv(x, w, null, { stride: 2, padding: 2, groups: 6 }), { rtol: 1e-4, atol: 1e-4 });
  add('depthwise 3x5 kernel, dilation 2, stride (2, 1)', { x: rn(2, 5, 9, 8), w: rn(5, 1, 3, 5) }, fPy('None, stride=(2, 1), padding=(2, 1), dilation=2, groups=5'),
    ({ x, w }) => fConv(x, w, null, { stride: [2, 1], padding: [2, 1], dilation: 2, groups: 5 }), { rtol: 1e-4, atol: 1e-4 });
  // the slice and adaptive pooling of a channels-last tensor hand the gradient back channels-last
  // (native/fast_grads.cc's KeepGradLayout), with the same values
  const cl = 'x.contiguous(memory_format=torch.channels_last)';
  add('strided slice of a channels-last tensor', { x: rn(2, 6, 5, 5) }, `${cl}[:, :, ::2, 1::2]`,
    ({ x }) => x.contiguous('channelsLast').slice(2, 0, undefined, 2).slice(3, 1, undefined, 2));
  add('adaptive average pooling of a channels-last tensor', { x: rn(2, 6, 5, 5) }, `F.adaptive_avg_pool2d(${cl}, 1)`,
    ({ x }) => F.adaptiveAvgPool2d(x.contiguous('channelsLast'), [1, 1]));
  // pooling to 1x1 hands back an expanded view (no map written), which autograd adds into the
  // gradient of the scale's other operand
  add('squeeze-excitation scale of a channels-last tensor', { x: rn(2, 6, 5, 5) },
    `(lambda y: y * torch.sigmoid(F.adaptive_avg_pool2d(y, 1)))(${cl})`,
    ({ x }) => { const y = x.contiguous('channelsLast'); return y.mul(F.adaptiveAvgPool2d(y, [1, 1]).sigmoid()); });
  add('global average pooling into an elementwise op', { x: rn(2, 6, 5, 5) }, `torch.tanh(F.adaptive_avg_pool2d(torch.sigmoid(${cl}), 1))`,
    ({ x }) => F.adaptiveAvgPool2d(x.contiguous('channelsLast').sigmoid(), [1, 1]).tanh());
  add('bf16 depthwise 5x5', { x: rn(4, 16, 8, 8), w: rn(16, 1, 5, 5), b: rn(16) }, bfPy('b, padding=2, groups=16'),
    ({ x, w, b }) => bfConv(x, w, b, { padding: 2, groups: 16 }), bfTol);
}

// ---- autocast ---------------------------------------------------------------------------------------
section('autocast');
{
  const x = rn(2, 3, 8, 8);
  add('autocast bfloat16 conv2d and linear', { x, w: rn(4, 3, 3, 3), lw: rn(5, 4) },
    'with torch.autocast("cpu", dtype=torch.bfloat16):\n    y = F.conv2d(x, w, padding=1)\n    z = F.linear(y.mean((2, 3)), lw)\nout = (y, z)',
    ({ x, w, lw }) => autocast(() => { const y = F.conv2d(x, w, null, { padding: 1 }); return [y, F.linear(y.mean([2, 3]), lw)]; }),
    { rtol: 1e-2, atol: 1e-2, grad: [] });
}

// The harness itself must fail on a wrong value and on a wrong gradient.
{
  const x = rn(3, 4);
  suite.add({ name: 'self-check: wrong forward', inputs: { x }, py: 'F.gelu(x)', js: ({ x }) => F.relu(x) });
  suite.add({ name: 'self-check: wrong gradient', inputs: { x }, py: 'x.exp()', js: ({ x }) => x.exp().detach().add(x.mul(0)) });
  suite.add({ name: 'self-check: wrong dtype', inputs: { x }, py: 'x.double()', js: ({ x }) => x.clone(), grad: [] });
}

// PyTorch's generator state, handed back to JS (the 'random state' tests below).
const rngKey = suite.batch.add('torch.manual_seed(31)\ntorch.randn(100)\nO["state"] = torch.get_rng_state()\nO["next"] = torch.randn(6)\nO["after"] = torch.rand(3)');

// ---- the runs --------------------------------------------------------------------------------------
before(async () => { await suite.run(); });

for (const [name, cases] of groups) {
  describe(name, () => {
    for (const c of cases) test(c, () => suite.check(c));
  });
}

// ---- checks that need PyTorch state handed back, or no PyTorch at all ---------------------------------
describe('oracle self-checks', () => {
  test('a wrong forward value fails', () => assert.throws(() => suite.check('self-check: wrong forward'), /output 0: .* differ from PyTorch/));
  test('a wrong gradient fails', () => assert.throws(() => suite.check('self-check: wrong gradient'), /d\/dx: .* differ from PyTorch/));
  test('a wrong dtype fails', () => assert.throws(() => suite.check('self-check: wrong dtype'), /dtype float32 != PyTorch's float64/));
});

describe('random state', () => {
  const batch = suite.batch;
  const k = rngKey;

  test('setRngState with PyTorch state continues PyTorch stream', () => tidy(() => {
    const r = batch.get(k);
    setRngState(r.state);
    assertEqualTensor(randn([6]), r.next, 'randn after setRngState');
    assertEqualTensor(rand([3]), r.after, 'rand after that');
  }));

  test('getRngState/setRngState replay', () => tidy(() => {
    manualSeed(77);
    randn([5]);
    const s = getRngState();
    const a = randn([40]);
    const b = rand([3, 3]);
    const d = F.dropout(ones([64]), 0.5);
    setRngState(s);
    assertEqualTensor(randn([40]), a, 'replayed randn');
    assertEqualTensor(rand([3, 3]), b, 'replayed rand');
    assertEqualTensor(F.dropout(ones([64]), 0.5), d, 'replayed dropout mask');
    assert.equal(s.dtype, 'uint8');
  }));
});

describe('read-back', () => {
  test('toArray / item / toTypedArray', () => tidy(() => {
    assert.deepEqual(tensor([[1, 2], [3, 4]]).toArray(), [[1, 2], [3, 4]]);
    assert.deepEqual(tensor([true, false]).toArray(), [true, false]);
    assert.deepEqual(tensor([1.5, -2], { dtype: 'float16' }).toArray(), [1.5, -2]);
    assert.deepEqual(tensor([1.5, -2], { dtype: 'bfloat16' }).toArray(), [1.5, -2]);
    assert.equal(tensor([[2.5]]).item(), 2.5);
    assert.equal(tensor(7).item(), 7);
    assert.ok(tensor([1, 2]).toTypedArray() instanceof BigInt64Array);
    const x = randn([2, 3]);
    assert.deepEqual(Array.from(x.T.contiguous().toTypedArray() as Float32Array), (x.T.toArray() as number[][]).flat());
    assert.deepEqual(x.shape, [2, 3]);
    assert.equal(x.ndim, 2);
    assert.equal(x.size(-1), 3);
    assert.equal(x.numel(), 6);
    assert.equal(x.device, 'cpu');
    const dtypes: DType[] = ['float32', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool', 'float16', 'bfloat16'];
    for (const d of dtypes) assert.equal(zeros([2], { dtype: d }).dtype, d);
  }));

  test('to() and contiguous() return self when nothing changes', () => tidy(() => {
    const x = randn([2, 3]);
    assert.equal(x.to('float32'), x);
    assert.equal(x.contiguous(), x);
    assert.equal(x.to('cpu'), x);
    assert.notEqual(x.to('float64'), x);
    assert.notEqual(x.T.contiguous(), x);
    const cl = randn([1, 3, 4, 4]).contiguous('channelsLast');
    assert.equal(cl.contiguous('channelsLast'), cl);
    assert.ok(cl.isChannelsLast());
    assert.ok(!cl.isContiguous());
  }));

  test('bytesView aliases tensor memory', () => tidy(() => {
    const x = zeros([4]);
    new Float32Array(x.bytesView().buffer, x.bytesView().byteOffset, 4).set([1, 2, 3, 4]);
    assert.deepEqual(x.toArray(), [1, 2, 3, 4]);
  }));

  test('autocast restores float32 afterwards', () => tidy(() => {
    const x = randn([1, 2, 5, 5]);
    const w = randn([3, 2, 3, 3]);
    assert.equal(autocast(() => F.conv2d(x, w)).dtype, 'bfloat16');
    assert.equal(F.conv2d(x, w).dtype, 'float32');
    assert.equal(autocast(() => autocast(() => F.conv2d(x, w)).dtype), 'bfloat16');
    assert.equal(F.conv2d(x, w).dtype, 'float32');
  }));
});

