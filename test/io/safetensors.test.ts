import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fromBytes } from '../../src/engine/index.js';
import type { DType, StateDict, Tensor } from '../../src/engine/index.js';
import {
  SafetensorsError,
  decodeSafetensorsHeader,
  encodeSafetensorsHeader,
  parseSafetensorsHeader,
  readSafetensors,
  writeSafetensors,
} from '../../src/io/safetensors.js';
import { prng } from '../helpers/prng.js';

let dir = '';
let counter = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convkit-safetensors-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const fresh = (ext = '.safetensors'): string => path.join(dir, `f${counter++}${ext}`);

// ---- helpers --------------------------------------------------------------------------------

const ALL_DTYPES: DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];
const SIZE: Record<DType, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

function randomBytes(n: number, rand: () => number, dtype?: DType): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = dtype === 'bool' ? (rand() < 0.5 ? 0 : 1) : Math.floor(rand() * 256);
  return b;
}

function randomTensor(shape: number[], dtype: DType, rand: () => number): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  return fromBytes(randomBytes(n * SIZE[dtype], rand, dtype), shape, dtype);
}

/** The elements of a tensor as numbers (float16/bfloat16 via float32; the host is little-endian). */
function values(t: Tensor): number[] {
  const f = t.dtype === 'float16' || t.dtype === 'bfloat16' ? t.to('float32') : t;
  const bytes = f.toBytes();
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const arrays: Record<DType, () => ArrayLike<number | bigint>> = {
    float32: () => new Float32Array(buf),
    float64: () => new Float64Array(buf),
    float16: () => new Float32Array(buf),
    bfloat16: () => new Float32Array(buf),
    int64: () => new BigInt64Array(buf),
    int32: () => new Int32Array(buf),
    int16: () => new Int16Array(buf),
    int8: () => new Int8Array(buf),
    uint8: () => new Uint8Array(buf),
    bool: () => new Uint8Array(buf),
  };
  const out = Array.from(arrays[f.dtype](), Number);
  if (f !== t) f.dispose();
  return out;
}

/** A state dict from an object literal: { a, b } names the tensors 'a' and 'b'. */
const named = (o: Record<string, Tensor>): StateDict => new Map(Object.entries(o));

function disposeAll(ts: Record<string, Tensor>): void {
  for (const t of Object.values(ts)) t.dispose();
}

/** Writes a file byte by byte: header (object, text or bytes), optional length override, buffer. */
function rawFile(header: unknown, buffer: Uint8Array = new Uint8Array(0), length?: bigint): string {
  const h =
    header instanceof Uint8Array ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(length ?? BigInt(h.length));
  const file = fresh();
  fs.writeFileSync(file, Buffer.concat([prefix, h, buffer]));
  return file;
}

function assertSafetensorsError(e: unknown, file: string, parts: (string | RegExp)[]): true {
  assert.ok(e instanceof SafetensorsError, `expected a SafetensorsError, got ${String(e)}`);
  assert.ok(e.message.includes(file), `message does not name the file: ${e.message}`);
  for (const p of parts) {
    if (typeof p === 'string') assert.ok(e.message.includes(p), `message lacks ${JSON.stringify(p)}: ${e.message}`);
    else assert.match(e.message, p);
  }
  return true;
}

/** Both the header parser and the reader must refuse the file with a message naming it. */
function refused(file: string, ...parts: (string | RegExp)[]): void {
  assert.throws(() => parseSafetensorsHeader(file), (e) => assertSafetensorsError(e, file, parts));
  assert.throws(() => readSafetensors(file), (e) => assertSafetensorsError(e, file, parts));
}

function refusedOnRead(file: string, ...parts: (string | RegExp)[]): void {
  assert.throws(() => readSafetensors(file), (e) => assertSafetensorsError(e, file, parts));
}

const f32 = (shape: number[], begin: number): { dtype: string; shape: number[]; data_offsets: number[] } => ({
  dtype: 'F32',
  shape,
  data_offsets: [begin, begin + 4 * shape.reduce((p, d) => p * d, 1)],
});

function tmpLeftovers(file: string): string[] {
  const base = path.basename(file);
  return fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith(`${base}.tmp-`));
}

// ---- round trips ----------------------------------------------------------------------------

test('every dtype, a 0-element tensor and a scalar round-trip byte for byte', () => {
  const rand = prng(1);
  const tensors: Record<string, Tensor> = {};
  for (const d of ALL_DTYPES) tensors[`t.${d}`] = randomTensor([2, 3], d, rand);
  tensors['empty'] = randomTensor([0, 3], 'float32', rand);
  tensors['scalar'] = randomTensor([], 'int64', rand);
  // a name that plain assignment would turn into a prototype change
  Object.defineProperty(tensors, '__proto__', { value: randomTensor([1], 'uint8', rand), enumerable: true });
  const file = fresh();
  writeSafetensors(file, named(tensors));
  const back = Object.fromEntries(readSafetensors(file));
  assert.deepEqual(Object.keys(back).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const b = back[name]!;
    assert.equal(b.dtype, t.dtype, name);
    assert.deepEqual(b.shape, t.shape, name);
    assert.deepEqual(b.toBytes(), t.toBytes(), name);
  }
  assert.ok(Object.prototype.hasOwnProperty.call(back, '__proto__'));
  disposeAll(back);
  disposeAll(tensors);
});

test('the writer sorts by name, packs contiguously and pads the header to 8 bytes', () => {
  const rand = prng(2);
  const tensors = { z: randomTensor([3], 'float16', rand), a: randomTensor([1], 'int8', rand), m: randomTensor([2, 2], 'float64', rand) };
  const file = fresh();
  writeSafetensors(file, named(tensors));
  const h = parseSafetensorsHeader(file);
  assert.equal(h.dataStart % 8, 0);
  assert.equal(h.dataStart, 8 + h.headerLength);
  assert.deepEqual(h.tensors.map((t) => t.name), ['a', 'm', 'z']);
  assert.deepEqual(h.tensors.map((t) => t.dataOffsets), [[0, 1], [1, 33], [33, 39]]);
  assert.deepEqual(h.tensors.map((t) => t.dtype), ['I8', 'F64', 'F16']);
  assert.equal(h.bufferLength, 39);
  assert.equal(fs.statSync(file).size, h.dataStart + 39);
  const raw = fs.readFileSync(file);
  assert.equal(raw.subarray(8, h.dataStart).toString('utf8').trimEnd().endsWith('}'), true);
  assert.equal(h.metadata, undefined);
  disposeAll(tensors);
});

test('metadata round-trips, and an empty file of tensors is valid', () => {
  const file = fresh();
  const metadata = { format: 'pt', 'ünïcode ✓': 'välue "quoted"\n', empty: '' };
  writeSafetensors(file, named({}), metadata);
  const h = parseSafetensorsHeader(file);
  assert.deepEqual(h.metadata, metadata);
  assert.deepEqual(h.tensors, []);
  assert.equal(h.bufferLength, 0);
  assert.equal(readSafetensors(file).size, 0);
});

test('an existing file is replaced atomically and no temp file is left', () => {
  const file = fresh();
  fs.writeFileSync(file, 'old');
  const t = fromBytes(new Uint8Array([1, 2, 3, 4]), [4], 'uint8');
  writeSafetensors(file, named({ t }));
  const back = Object.fromEntries(readSafetensors(file));
  assert.deepEqual(values(back.t!), [1, 2, 3, 4]);
  assert.deepEqual(tmpLeftovers(file), []);
  disposeAll(back);
  t.dispose();
});

test('floating tensors convert to the asked dtype; other dtypes keep theirs', () => {
  const file = fresh();
  const h = fromBytes(new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555]).buffer), [3], 'float16'); // 1, -2, 0.333
  const bf = fromBytes(new Uint8Array(new Uint16Array([0x3f80, 0x4049]).buffer), [2], 'bfloat16'); // 1, 3.140625
  const d = fromBytes(new Uint8Array(new Float64Array([0.1, 1e300]).buffer), [2], 'float64');
  const i = fromBytes(new Uint8Array(new Int32Array([-5, 7]).buffer), [2], 'int32');
  writeSafetensors(file, named({ h, bf, d, i }));
  const back = Object.fromEntries(readSafetensors(file, { dtype: 'float32' }));
  assert.equal(back.h!.dtype, 'float32');
  assert.equal(back.bf!.dtype, 'float32');
  assert.equal(back.d!.dtype, 'float32');
  assert.equal(back.i!.dtype, 'int32');
  assert.deepEqual(values(back.h!), [1, -2, 0.333251953125]);
  assert.deepEqual(values(back.bf!), [1, 3.140625]);
  assert.deepEqual(values(back.d!), [Math.fround(0.1), Infinity]);
  assert.deepEqual(values(back.i!), [-5, 7]);
  disposeAll(back);
  const kept = Object.fromEntries(readSafetensors(file));
  assert.equal(kept.h!.dtype, 'float16');
  assert.equal(kept.bf!.dtype, 'bfloat16');
  assert.equal(kept.d!.dtype, 'float64');
  disposeAll(kept);
  for (const t of [h, bf, d, i]) t.dispose();
});

test('U16 and U32 widen losslessly; U64 loads when it fits int64 and is refused when not', () => {
  const u16 = Buffer.from(new Uint16Array([0, 1, 40000, 65535]).buffer);
  const u32 = Buffer.from(new Uint32Array([0, 4294967295, 123456789]).buffer);
  const u64 = Buffer.from(new BigUint64Array([0n, 2n ** 63n - 1n]).buffer);
  const file = rawFile(
    {
      a: { dtype: 'U16', shape: [4], data_offsets: [0, 8] },
      b: { dtype: 'U32', shape: [3], data_offsets: [8, 20] },
      c: { dtype: 'U64', shape: [2], data_offsets: [20, 36] },
    },
    Buffer.concat([u16, u32, u64]),
  );
  const back = Object.fromEntries(readSafetensors(file));
  assert.equal(back.a!.dtype, 'int32');
  assert.deepEqual(values(back.a!), [0, 1, 40000, 65535]);
  assert.equal(back.b!.dtype, 'int64');
  assert.deepEqual(values(back.b!), [0, 4294967295, 123456789]);
  assert.equal(back.c!.dtype, 'int64');
  const c = back.c!.toBytes();
  assert.deepEqual(Array.from(new BigInt64Array(c.buffer, c.byteOffset, 2)), [0n, 2n ** 63n - 1n]);
  disposeAll(back);

  const big = rawFile({ big: { dtype: 'U64', shape: [2], data_offsets: [0, 16] } }, Buffer.from(new BigUint64Array([1n, 2n ** 64n - 1n]).buffer));
  refusedOnRead(big, '"big"', '18446744073709551615', 'int64', 'element 1');
});

// ---- interoperability with PyTorch ----------------------------------------------------------

// A spec-following writer and reader built only from json, struct and torch: the format as the
// Python side writes it (sorted names, space-padded header), and an independent check of ours.
const PYTHON = String.raw`
import json, struct, sys, torch
DT = {torch.float32: 'F32', torch.float64: 'F64', torch.float16: 'F16', torch.bfloat16: 'BF16',
      torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8',
      torch.uint8: 'U8', torch.bool: 'BOOL'}
BY_NAME = {v: k for k, v in DT.items()}
def vals(t):
    return t.double().reshape(-1).tolist() if t.is_floating_point() else t.reshape(-1).long().tolist()
torch.manual_seed(0)
ts = {'conv1.weight': torch.randn(4, 3, 3, 3), 'bn1.running_var': torch.rand(4, dtype=torch.float64),
      'half': torch.randn(5).half(), 'bf': torch.randn(6).bfloat16(),
      'idx': torch.tensor([-3, 0, 2 ** 40], dtype=torch.int64), 'i32': torch.tensor([-7, 8], dtype=torch.int32),
      'i16': torch.tensor([-300, 300], dtype=torch.int16), 'i8': torch.tensor([-128, 127], dtype=torch.int8),
      'u8': torch.tensor([0, 255], dtype=torch.uint8), 'mask': torch.tensor([True, False, True]),
      'bn1.num_batches_tracked': torch.tensor(7), 'empty': torch.zeros(0, 2)}
header, blobs, off = {'__metadata__': {'format': 'pt'}}, [], 0
for name in sorted(ts):
    t = ts[name].contiguous()
    b = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
    header[name] = {'dtype': DT[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b' ' * ((8 - (8 + len(h)) % 8) % 8)
with open(sys.argv[1], 'wb') as f:
    f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
data = open(sys.argv[2], 'rb').read()
n = struct.unpack('<Q', data[:8])[0]
theirs = json.loads(data[8:8 + n])
buf = data[8 + n:]
read = {'__metadata__': theirs.pop('__metadata__', None), '__aligned__': (8 + n) % 8 == 0}
for k, v in theirs.items():
    b, e = v['data_offsets']
    t = torch.frombuffer(bytearray(buf[b:e]), dtype=BY_NAME[v['dtype']]) if e > b else torch.empty(0, dtype=BY_NAME[v['dtype']])
    read[k] = {'shape': v['shape'], 'values': vals(t.reshape(v['shape']))}
print(json.dumps({'written': {k: {'shape': list(t.shape), 'values': vals(t)} for k, t in ts.items()}, 'read': read}))
`;

interface PyTensor { shape: number[]; values: number[] }

test('files written by PyTorch-side tooling load with the same values, and PyTorch reads ours', () => {
  const rand = prng(3);
  const ours: Record<string, Tensor> = {};
  for (const d of ALL_DTYPES) {
    if (d === 'int64') {
      ours[d] = fromBytes(new Uint8Array(new BigInt64Array([-(2n ** 40n), 0n, 1n, 2n, 3n, 2n ** 52n]).buffer), [2, 3], d);
    } else if (d.startsWith('float') || d === 'bfloat16') {
      const f = fromBytes(new Uint8Array(new Float32Array(Array.from({ length: 6 }, () => rand() * 10 - 5)).buffer), [2, 3], 'float32');
      ours[d] = f.to(d);
      if (ours[d] !== f) f.dispose();
    } else {
      ours[d] = randomTensor([2, 3], d, rand);
    }
  }
  ours['scalar'] = fromBytes(new Uint8Array(new Float64Array([2.5]).buffer), [], 'float64');
  const oursFile = fresh();
  writeSafetensors(oursFile, named(ours), { source: 'convkit' });
  const pyFile = fresh();
  const out = execFileSync('/usr/bin/python3', ['-c', PYTHON, pyFile, oursFile], { encoding: 'utf8' });
  const py = JSON.parse(out) as { written: Record<string, PyTensor>; read: Record<string, unknown> };

  const h = parseSafetensorsHeader(pyFile);
  assert.deepEqual(h.metadata, { format: 'pt' });
  const loaded = Object.fromEntries(readSafetensors(pyFile));
  assert.deepEqual(Object.keys(loaded).sort(), Object.keys(py.written).sort());
  for (const [name, ref] of Object.entries(py.written)) {
    assert.deepEqual(loaded[name]!.shape, ref.shape, name);
    assert.deepEqual(values(loaded[name]!), ref.values, name);
  }
  assert.equal(loaded['half']!.dtype, 'float16');
  assert.equal(loaded['bf']!.dtype, 'bfloat16');
  assert.equal(loaded['mask']!.dtype, 'bool');
  assert.equal(loaded['bn1.num_batches_tracked']!.dtype, 'int64');
  disposeAll(loaded);

  assert.equal(py.read['__aligned__'], true);
  assert.deepEqual(py.read['__metadata__'], { source: 'convkit' });
  for (const [name, t] of Object.entries(ours)) {
    const ref = py.read[name] as PyTensor;
    assert.deepEqual(ref.shape, t.shape, name);
    assert.deepEqual(ref.values, values(t), name);
  }
  disposeAll(ours);
});

// ---- hostile and corrupt files --------------------------------------------------------------

test('files too short for the length prefix', () => {
  for (const n of [0, 1, 7]) {
    const file = fresh();
    fs.writeFileSync(file, Buffer.alloc(n));
    refused(file, `${n} bytes`, '8-byte');
  }
  refused(path.join(dir, 'missing.safetensors'), 'no such file');
});

test('header lengths of 0, beyond the file, beyond 100 MB and 2^63', () => {
  refused(rawFile('', new Uint8Array(0), 0n), 'header length is 0');
  refused(rawFile('{}', new Uint8Array(0), 3n), 'header length is 3', 'only 2 bytes');
  refused(rawFile('{}', new Uint8Array(0), 100_000_001n), '100000001', 'limit of 100000000');
  refused(rawFile('{}', new Uint8Array(0), 2n ** 63n), '9223372036854775808', 'limit');
  refused(rawFile('{}', new Uint8Array(0), 2n ** 64n - 1n), '18446744073709551615');
});

test('headers that are not UTF-8 JSON objects', () => {
  refused(rawFile(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 'not valid UTF-8');
  refused(rawFile('{"a": '), 'not valid JSON');
  refused(rawFile('   '), 'not valid JSON');
  for (const h of ['[]', 'null', '42', '"str"', 'true']) refused(rawFile(h), 'must be a JSON object');
  // trailing space padding is fine; other trailing bytes are not
  assert.deepEqual(parseSafetensorsHeader(rawFile('{}      ')).tensors, []);
  refused(rawFile('{}\0\0'), 'not valid JSON');
});

test('entries that are not objects, or carry bad dtypes', () => {
  refused(rawFile({ w: 5 }), '"w"', 'must be an object', 'number 5');
  refused(rawFile({ w: [1, 2] }), '"w"', 'must be an object');
  refused(rawFile({ w: null }), '"w"', 'found null');
  refused(rawFile({ w: { dtype: 'F128', shape: [], data_offsets: [0, 16] } }, new Uint8Array(16)), '"w"', '"dtype"', 'F128', 'F32');
  refused(rawFile({ w: { shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), '"w"', '"dtype"', 'undefined');
  refused(rawFile({ w: { dtype: 'f32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), '"w"', '"f32"');
});

test('shapes that are not arrays of non-negative safe integers', () => {
  const bad: unknown[] = [3, '3', null, { 0: 1 }, [-1], [1.5], [1e300], [2 ** 53], ['2'], [null], [[2]], [true]];
  for (const shape of bad) {
    const file = rawFile({ w: { dtype: 'F32', shape, data_offsets: [0, 4] } }, new Uint8Array(4));
    refused(file, '"w"', '"shape"');
  }
  // JSON numbers beyond double range become Infinity; beyond 2^53 they lose precision
  refused(rawFile('{"w": {"dtype": "F32", "shape": [1e999], "data_offsets": [0, 4]}}', new Uint8Array(4)), '"w"', 'Infinity');
  refused(rawFile('{"w": {"dtype": "F32", "shape": [18446744073709551617], "data_offsets": [0, 4]}}', new Uint8Array(4)), '"w"', '"shape"[0]');
  // a product that overflows 2^53 must not round to a matching byte count
  refused(rawFile({ w: { dtype: 'U8', shape: [2 ** 26, 2 ** 26, 2 ** 26], data_offsets: [0, 0] } }), '"w"', '302231454903657293676544 bytes');
});

test('data_offsets that are malformed or out of range', () => {
  const bad: unknown[] = [undefined, null, 4, [0], [0, 4, 8], [-1, 3], [0.5, 4.5], ['0', '4'], [0, 2 ** 53], [null, 4]];
  for (const offs of bad) {
    refused(rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: offs } }, new Uint8Array(4)), '"w"', '"data_offsets"');
  }
  refused(rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)), '"w"', 'begin <= end');
  refused(rawFile({ w: f32([2], 0) }, new Uint8Array(4)), '"w"', 'beyond', 'holds 4 bytes');
  refused(rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [2 ** 40, 2 ** 40 + 4] } }, new Uint8Array(4)), '"w"', 'beyond');
});

test('byte sizes that disagree with shape and dtype', () => {
  refused(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)), '"w"', 'needs 8 bytes', 'span 4');
  refused(rawFile({ w: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), '"w"', 'needs 6 bytes', 'span 8');
  refused(rawFile({ w: { dtype: 'F32', shape: [], data_offsets: [0, 0] } }), '"w"', 'needs 4 bytes', 'span 0');
});

test('overlapping tensors, gaps and uncovered bytes', () => {
  refused(rawFile({ a: f32([2], 0), b: f32([2], 4) }, new Uint8Array(12)), '"b"', 'overlaps tensor "a"');
  refused(rawFile({ a: f32([2], 0), b: f32([2], 0) }, new Uint8Array(8)), 'overlaps');
  refused(rawFile({ a: f32([1], 0), b: f32([1], 8) }, new Uint8Array(12)), '"b"', 'gap', 'bytes 4..8');
  refused(rawFile({ a: f32([1], 4) }, new Uint8Array(8)), '"a"', 'gap', 'bytes 0..4');
  refused(rawFile({ a: f32([1], 0) }, new Uint8Array(8)), '4 trailing bytes');
  refused(rawFile({}, new Uint8Array(3)), '3 trailing bytes');
  // zero-sized tensors may share an offset with the next tensor's start
  const ok = rawFile({ e: { dtype: 'F32', shape: [0], data_offsets: [0, 0] }, a: f32([1], 0) }, new Uint8Array(4));
  assert.deepEqual(parseSafetensorsHeader(ok).tensors.map((t) => t.name), ['e', 'a']);
  // ...but not sit inside another tensor
  refused(rawFile({ a: f32([2], 0), e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] } }, new Uint8Array(8)), '"e"', 'overlaps');
});

test('__metadata__ that is not an object of strings', () => {
  refused(rawFile({ __metadata__: 'x' }), '"__metadata__"', 'object of strings');
  refused(rawFile({ __metadata__: [] }), '"__metadata__"');
  refused(rawFile({ __metadata__: { a: 'ok', n: 3 } }), '"__metadata__"', '"n"', 'number 3');
  refused(rawFile({ __metadata__: { a: { b: 'c' } } }), '"__metadata__"', '"a"', 'an object');
  // null is the reference reader's "no metadata"
  assert.equal(parseSafetensorsHeader(rawFile({ __metadata__: null })).metadata, undefined);
});

test('dtypes libtorch cannot hold and bytes a dtype cannot hold are refused on load', () => {
  const f8 = rawFile({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] }, q: { dtype: 'F8_E4M3', shape: [2], data_offsets: [1, 3] } }, new Uint8Array(3));
  assert.deepEqual(parseSafetensorsHeader(f8).tensors.map((t) => t.dtype), ['U8', 'F8_E4M3']);
  refusedOnRead(f8, '"q"', 'F8_E4M3', 'not supported');
  const bool = rawFile({ m: { dtype: 'BOOL', shape: [3], data_offsets: [0, 3] } }, new Uint8Array([1, 0, 2]));
  refusedOnRead(bool, '"m"', 'element 2', 'byte 2', '0 or 1');
  assert.throws(
    () => readSafetensors(bool, { dtype: 'int8' as 'float32' }),
    (e) => assertSafetensorsError(e, bool, ['option dtype', 'int8']),
  );
});

test('a valid file truncated at any point is refused', () => {
  const rand = prng(4);
  const tensors = { a: randomTensor([3, 5], 'float32', rand), b: randomTensor([7], 'int16', rand) };
  const full = fresh();
  writeSafetensors(full, named(tensors));
  disposeAll(tensors);
  const bytes = fs.readFileSync(full);
  const { dataStart } = parseSafetensorsHeader(full);
  const cuts = [0, 1, 7, 8, 9, dataStart - 1, dataStart, dataStart + 1, dataStart + 60, bytes.length - 1];
  for (const cut of cuts) {
    const file = fresh();
    fs.writeFileSync(file, bytes.subarray(0, cut));
    refused(file);
  }
  // and an appended byte is uncovered data
  const longer = fresh();
  fs.writeFileSync(longer, Buffer.concat([bytes, Buffer.from([0])]));
  refused(longer, '1 trailing bytes');
});

test('random garbage and mutated headers never crash and never load silently', () => {
  const rand = prng(5);
  for (let i = 0; i < 150; i++) {
    const file = fresh('.bin');
    fs.writeFileSync(file, randomBytes(Math.floor(rand() * 200), rand));
    refused(file);
    fs.rmSync(file);
  }
  for (let i = 0; i < 50; i++) {
    const body = randomBytes(Math.floor(rand() * 100) + 1, rand);
    const file = rawFile(body, randomBytes(Math.floor(rand() * 16), rand));
    refused(file);
    fs.rmSync(file);
  }
  // single-byte mutations of a valid header: each either loads or throws a SafetensorsError
  const src = fresh();
  const tensors = { 'layer.0.weight': randomTensor([2, 2], 'float32', rand), 'layer.0.bias': randomTensor([2], 'bfloat16', rand) };
  writeSafetensors(src, named(tensors), { k: 'v' });
  disposeAll(tensors);
  const bytes = fs.readFileSync(src);
  const { dataStart } = parseSafetensorsHeader(src);
  for (let i = 0; i < 200; i++) {
    const copy = Buffer.from(bytes);
    copy[Math.floor(rand() * dataStart)] = Math.floor(rand() * 256);
    const file = fresh();
    fs.writeFileSync(file, copy);
    try {
      disposeAll(Object.fromEntries(readSafetensors(file)));
    } catch (e) {
      assertSafetensorsError(e, file, []);
    }
    fs.rmSync(file);
  }
});

test('decodeSafetensorsHeader and encodeSafetensorsHeader agree', () => {
  const { prefix, entries } = encodeSafetensorsHeader(
    [{ name: 'x', dtype: 'BF16', shape: [3] }, { name: 'y', dtype: 'U64', shape: [] }],
    { m: '1' },
  );
  assert.equal(prefix.length % 8, 0);
  const n = Number(Buffer.from(prefix).readBigUInt64LE(0));
  assert.equal(n, prefix.length - 8);
  const h = decodeSafetensorsHeader('mem', prefix.subarray(8), 14);
  assert.deepEqual(h.tensors, entries);
  assert.deepEqual(h.metadata, { m: '1' });
  assert.throws(() => decodeSafetensorsHeader('mem', prefix.subarray(8), 15), /safetensors mem: .*1 trailing bytes/);
});

// ---- writer failures ------------------------------------------------------------------------

test('a write that fails mid-way leaves the destination unchanged and no temp file', () => {
  const file = fresh();
  fs.writeFileSync(file, 'previous contents');
  const good = fromBytes(new Uint8Array(400), [100], 'float32');
  const failing = {
    shape: [2],
    dtype: 'float32',
    toBytes(): Uint8Array {
      throw new Error('device lost');
    },
    dispose(): void {},
  } as unknown as Tensor;
  assert.throws(
    () => writeSafetensors(file, named({ a: good, b: failing })),
    (e) => assertSafetensorsError(e, file, ['"b"', 'device lost']),
  );
  assert.equal(fs.readFileSync(file, 'utf8'), 'previous contents');
  assert.deepEqual(tmpLeftovers(file), []);

  const disposed = fromBytes(new Uint8Array(8), [2], 'float32');
  disposed.dispose();
  assert.throws(() => writeSafetensors(file, named({ a: good, z: disposed })), (e) => assertSafetensorsError(e, file, ['"z"']));
  assert.equal(fs.readFileSync(file, 'utf8'), 'previous contents');
  assert.deepEqual(tmpLeftovers(file), []);

  const wrongSize = { shape: [2], dtype: 'float32', toBytes: () => new Uint8Array(4), dispose(): void {} } as unknown as Tensor;
  assert.throws(() => writeSafetensors(file, named({ w: wrongSize })), (e) => assertSafetensorsError(e, file, ['"w"', '4 bytes', 'expected 8']));
  assert.equal(fs.readFileSync(file, 'utf8'), 'previous contents');
  assert.deepEqual(tmpLeftovers(file), []);
  good.dispose();
});

test('the writer refuses bad names, metadata and destinations', () => {
  const t = fromBytes(new Uint8Array(4), [4], 'uint8');
  const file = fresh();
  assert.throws(() => writeSafetensors(file, named({ __metadata__: t })), (e) => assertSafetensorsError(e, file, ['reserved']));
  assert.throws(
    () => writeSafetensors(file, named({ t }), { n: 1 } as unknown as Record<string, string>),
    (e) => assertSafetensorsError(e, file, ['"n"', 'must be a string']),
  );
  assert.equal(fs.existsSync(file), false);
  const nowhere = path.join(dir, 'no-such-dir', 'x.safetensors');
  assert.throws(() => writeSafetensors(nowhere, named({ t })), (e) => assertSafetensorsError(e, nowhere, ['write failed']));
  t.dispose();
});
