// The restricted unpickler: values pickled by CPython (protocols 2-5) come back exactly; globals
// outside the allow-list, unsupported opcodes, truncation, hostile lengths and nesting all end in an
// UnpicklingError that names the source, and random bytes never crash or hang it.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  PyCallable,
  PyDict,
  PyTuple,
  UnpicklingError,
  decodeLong,
  unpickle,
  type PyKey,
  type PyValue,
  type UnpickleOptions,
} from '../../src/io/pickle.js';

const PYTHON = '/usr/bin/python3';

const CASES = String.raw`
import pickle, json, collections
shared = [1, 2]
cases = {
    'none': None, 'true': True, 'false': False,
    'ints': [0, 1, 255, 256, 65535, 65536, -1, -129, 2**31 - 1, -2**31, 2**31, 2**53 - 1, 2**53, -2**53 - 1, 2**100, -2**70],
    'floats': [1.5, -0.0, float('inf'), -1e300],
    'strs': ['', 'abc', 'h\u00e9llo \u20ac', 'x' * 300],
    'tuples': [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
    'dict': {'a': 1, 2: 'b', None: [], False: 0.5},
    'nested': {'l': [[1, [2, [3]]]], 't': ((1,),)},
    'shared': [shared, shared],
    'bigdict': {f'k{i}': i for i in range(2500)},
    'biglist': list(range(2500)),
    'odict': collections.OrderedDict([('z', 1), ('a', 2)]),
    'bytes': b'\x00\x01\xff',
    'bigbytes': b'y' * 300,
}
out = {}
for proto in (2, 3, 4, 5):
    for name, v in cases.items():
        if proto == 2 and 'bytes' in name: continue
        out[f'{name}/{proto}'] = pickle.dumps(v, protocol=proto).hex()
out['bytearray/5'] = pickle.dumps(bytearray(b'ab'), protocol=5).hex()
out['bytes2/2'] = pickle.dumps(b'\x00\xff', protocol=2).hex()
cycle = []
cycle.append(cycle)
out['cycle/2'] = pickle.dumps(cycle, protocol=2).hex()
print(json.dumps(out))
`;

let pickles = new Map<string, Uint8Array>();
before(() => {
  const json = JSON.parse(execFileSync(PYTHON, ['-c', CASES], { encoding: 'utf8' })) as Record<string, string>;
  pickles = new Map(Object.entries(json).map(([k, hex]) => [k, Uint8Array.from(Buffer.from(hex, 'hex'))]));
});

const tup = (...items: PyValue[]): PyTuple => new PyTuple(items);
function dict(entries: [PyKey, PyValue][]): PyDict {
  const d = new PyDict();
  for (const [k, v] of entries) d.map.set(k, v);
  return d;
}

const ORDERED_DICT = new PyCallable('collections.OrderedDict', () => new PyDict());
const CODECS_ENCODE = new PyCallable('_codecs.encode', (args) => Uint8Array.from(String(args[0]), (c) => c.charCodeAt(0)));
const allowOrderedDict: UnpickleOptions = {
  findGlobal: (m, n) => (m === 'collections' && n === 'OrderedDict' ? ORDERED_DICT : m === '_codecs' && n === 'encode' ? CODECS_ENCODE : undefined),
};

const EXPECTED: Record<string, PyValue> = {
  none: null,
  true: true,
  false: false,
  ints: [0, 1, 255, 256, 65535, 65536, -1, -129, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53 - 1, 2n ** 53n, -(2n ** 53n) - 1n, 2n ** 100n, -(2n ** 70n)],
  floats: [1.5, -0, Infinity, -1e300],
  strs: ['', 'abc', 'héllo €', 'x'.repeat(300)],
  tuples: [tup(), tup(1), tup(1, 2), tup(1, 2, 3), tup(1, 2, 3, 4)],
  dict: dict([['a', 1], [2, 'b'], [null, []], [false, 0.5]]),
  nested: dict([['l', [[1, [2, [3]]]]], ['t', tup(tup(1))]]),
  shared: [[1, 2], [1, 2]],
  bigdict: dict(Array.from({ length: 2500 }, (_, i): [PyKey, PyValue] => [`k${i}`, i])),
  biglist: Array.from({ length: 2500 }, (_, i) => i),
  odict: dict([['z', 1], ['a', 2]]),
  bytes: Uint8Array.from([0, 1, 255]),
  bigbytes: new Uint8Array(300).fill(0x79),
  bytearray: Uint8Array.from([0x61, 0x62]),
  bytes2: Uint8Array.from([0, 255]),
};

/** Bytes from latin1 strings and byte arrays. */
function b(...parts: (string | number[])[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)));
}

function assertFails(data: Uint8Array, pattern: RegExp, opts: UnpickleOptions = {}): void {
  assert.throws(
    () => unpickle(data, { source: 'test.pkl', ...opts }),
    (e: unknown) => {
      assert.ok(e instanceof UnpicklingError, `expected an UnpicklingError, got ${String(e)}`);
      assert.ok(e.message.startsWith('test.pkl: '), e.message);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('unpickle: CPython pickles, protocols 2-5', () => {
  test('every value comes back exactly', () => {
    let checked = 0;
    for (const [key, data] of pickles) {
      const name = key.split('/')[0];
      if (!(name in EXPECTED)) continue;
      assert.deepStrictEqual(unpickle(data, allowOrderedDict), EXPECTED[name], key);
      checked++;
    }
    assert.ok(checked >= 50, `only ${checked} cases ran`);
  });

  test('shared references stay shared and cycles terminate', () => {
    const shared = unpickle(pickles.get('shared/2')!) as PyValue[];
    assert.equal(shared[0], shared[1]);
    const cycle = unpickle(pickles.get('cycle/2')!) as PyValue[];
    assert.equal(cycle[0], cycle);
  });

  test('LONG1 decoding', () => {
    assert.equal(decodeLong(new Uint8Array(0)), 0);
    assert.equal(decodeLong(Uint8Array.from([0xff])), -1);
    assert.equal(decodeLong(Uint8Array.from([0x00, 0x80])), -32768);
    assert.equal(decodeLong(Uint8Array.from([0xff, 0x00])), 255);
    assert.equal(decodeLong(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 1])), 2n ** 64n);
  });
});

describe('unpickle: refusing globals', () => {
  const osSystem = b('\x80\x02cos\nsystem\nX', [10, 0, 0, 0], 'echo pwned\x85R.');
  const builtinsEval = b('\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.');
  const builtinEval = b('\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R.');

  test('by default every global is refused, with the reason', () => {
    assertFails(osSystem, /refusing to load global os\.system: it is not on the allow-list/);
    assertFails(builtinsEval, /refusing to load global builtins\.eval/);
    assertFails(builtinEval, /refusing to load global __builtin__\.eval/);
    assertFails(pickles.get('odict/2')!, /refusing to load global collections\.OrderedDict/);
    assertFails(osSystem, /os\.system: only state dicts can be read/, { refusalReason: 'only state dicts can be read' });
  });

  test('an allow-list lets its globals through and nothing else', () => {
    assertFails(osSystem, /refusing to load global os\.system/, allowOrderedDict);
    assertFails(builtinsEval, /refusing to load global builtins\.eval/, allowOrderedDict);
  });

  test('object-building opcodes that bypass the allow-list are not implemented', () => {
    assertFails(b('(ios\nsystem\nX\x01\x00\x00\x001.'), /unsupported pickle opcode 0x69 \('i'\)/);
    assertFails(b('(N)o.'), /unsupported pickle opcode 0x6f/);
    assertFails(b('I1\n.'), /unsupported pickle opcode 0x49/);
    assertFails(b('Nq\x00p0\n.'), /unsupported pickle opcode 0x70/);
    assertFails(b('Pabc\n.'), /unsupported pickle opcode 0x50/);
  });

  test('only allowed callables can be called, with tuple arguments', () => {
    assertFails(b('X\x01\x00\x00\x00a)R.'), /cannot call str 'a'/);
    assertFails(b('ccollections\nOrderedDict\nNR.'), /arguments to collections\.OrderedDict must be a tuple, got None/, allowOrderedDict);
    assertFails(b('ccollections\nOrderedDict\n)\x81.'), /./, { findGlobal: () => 'not callable' });
    assertFails(b(']}b.'), /cannot BUILD list\(0\)/);
    assertFails(b('N)Q.'), /persistent ids are not supported/);
  });

  test('errors thrown by allowed callables get the source and position', () => {
    const boom = new PyCallable('x.boom', () => {
      throw new Error('bad tensor');
    });
    assertFails(b('cx\nboom\n)R.'), /^test\.pkl: bad tensor \(pickle byte 9\)$/, { findGlobal: () => boom });
  });
});

describe('unpickle: malformed and hostile input', () => {
  test('stack, mark and memo misuse', () => {
    assertFails(b('a.'), /stack underflow/);
    assertFails(b('.'), /stack underflow/);
    assertFails(b('t.'), /no MARK/);
    assertFails(b('(.'), /stack underflow/);
    assertFails(b('h\x05.'), /memo key 5 is not defined/);
    assertFails(b('}(Nu.'), /odd number of items/);
    assertFails(b('}]Ns.'), /unsupported dict key list\(0\)/);
    assertFails(b(')Na.'), /cannot append to tuple\(0\)/);
    assertFails(b(']NNs.'), /cannot set an item on list\(0\)/);
    assertFails(b('\x80\x09N.'), /unsupported pickle protocol 9/);
    assertFails(b('N'), /ends without a STOP/);
    assertFails(b('cos'), /malformed GLOBAL/);
  });

  test('declared lengths past the data fail fast', () => {
    assertFails(b('X\xff\xff\xff\xff'), /string of 4294967295 bytes exceeds the limit/);
    assertFails(b('\x8d', [255, 255, 255, 255, 255, 255, 255, 127]), /exceeds the limit/);
    assertFails(b('X\x10\x00\x00\x00abc'), /truncated: wanted 16 bytes, 3 left/);
    assertFails(b('\x8e', [255, 255, 255, 255, 255, 255, 255, 255]), /exceeds the limit/);
    assertFails(b('\x8b\xff\xff\xff\x7f'), /integer of 2147483647 bytes exceeds the limit/);
    assertFails(b('X\x05\x00\x00\x00hello.'), /string of 5 bytes exceeds the limit of 4/, { limits: { maxStringBytes: 4 } });
  });

  test('nesting, stack and memo limits', () => {
    assertFails(new Uint8Array(100_000).fill(0x28), /nesting exceeds 4096 levels/);
    assertFails(new Uint8Array(200).fill(0x4e), /stack exceeds 100 values/, { limits: { maxStack: 100 } });
    assertFails(b('N', new Array<number>(20).fill(0x94), '.'), /memo exceeds 10 entries/, { limits: { maxMemo: 10 } });
  });

  test('exponential sharing through the memo stays cheap', () => {
    // Each level is a tuple holding the previous level twice: 2^200 paths, 200 objects.
    const level = b('h\x00h\x00\x86q\x00');
    const parts = [b(']q\x00')];
    for (let i = 0; i < 200; i++) parts.push(level);
    parts.push(b('.'));
    const data = Uint8Array.from(parts.flatMap((p) => [...p]));
    const v = unpickle(data) as PyTuple;
    assert.ok(v instanceof PyTuple && v.items[0] === v.items[1]);
  });

  test('every truncation of a valid pickle fails cleanly', () => {
    for (const key of ['nested/2', 'dict/4', 'ints/5', 'odict/2']) {
      const data = pickles.get(key)!;
      for (let n = 0; n < data.length; n++) assertFails(data.subarray(0, n), /./, allowOrderedDict);
    }
  });

  test('random and mutated bytes never crash or hang', () => {
    const rand = prng(1);
    const seeds = [...pickles.values()];
    for (let i = 0; i < 6000; i++) {
      let data: Uint8Array;
      if (i % 2) {
        data = Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
      } else {
        data = Uint8Array.from(seeds[i % seeds.length]);
        for (let j = 0; j < 3; j++) data[Math.floor(rand() * data.length)] = Math.floor(rand() * 256);
      }
      try {
        unpickle(data, { source: 'test.pkl', ...allowOrderedDict });
      } catch (e) {
        assert.ok(e instanceof UnpicklingError && e.message.startsWith('test.pkl: '), `case ${i}: ${String(e)}`);
      }
    }
  });
});

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
