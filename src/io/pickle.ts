// A restricted unpickler: reads the binary pickle opcodes (protocols 2-5) that torch.save emits for
// state dicts and checkpoints, and nothing that could run code. Python's unpickler calls whatever
// global a pickle names; this one calls only what the caller's findGlobal hands back (none by
// default), and it never recurses, so deep nesting, cycles, huge lengths and truncation all end in
// an UnpicklingError rather than a crash, a hang or an unbounded allocation.

/** A pickled value. Python ints become numbers when they fit in 53 bits, bigints otherwise. */
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PyObject;

/** The hashable values we accept as dict keys. */
export type PyKey = null | boolean | number | bigint | string;

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

/** A dict (or OrderedDict). BUILD state (torch's `_metadata` on state dicts) lands in attrs. */
export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  readonly attrs = new Map<string, PyValue>();

  get(key: PyKey): PyValue | undefined {
    return this.map.get(key);
  }
}

/** Base of the objects a caller's globals create; BUILD calls setState. */
export abstract class PyObject {
  setState(_state: PyValue): void {
    throw new Error(`${this.describe()} does not accept BUILD state`);
  }
  abstract describe(): string;
}

/** An allowed global that REDUCE (or NEWOBJ) may call. */
export class PyCallable extends PyObject {
  constructor(
    readonly qualname: string,
    readonly fn: (args: readonly PyValue[]) => PyValue,
  ) {
    super();
  }
  describe(): string {
    return this.qualname;
  }
}

export class UnpicklingError extends Error {
  override name = 'UnpicklingError';
}

export interface UnpickleLimits {
  /** Values on the stack at once. */
  maxStack: number;
  /** Open MARKs at once: the nesting depth of tuples/lists/dicts being built. */
  maxMarks: number;
  /** Entries in the memo. */
  maxMemo: number;
  /** Bytes in one string or bytes object. */
  maxStringBytes: number;
  /** Bytes in one LONG1/LONG4 integer. */
  maxLongBytes: number;
}

export const DEFAULT_LIMITS: UnpickleLimits = {
  maxStack: 1 << 20,
  maxMarks: 1 << 12,
  maxMemo: 1 << 22,
  maxStringBytes: 1 << 28,
  maxLongBytes: 1 << 10,
};

export interface UnpickleOptions {
  /** Named first in every error: usually the file (and entry) the pickle came from. */
  source?: string;
  /** The value a GLOBAL/STACK_GLOBAL stands for, or undefined to refuse it. Refuses everything by default. */
  findGlobal?: (module: string, name: string) => PyValue | undefined;
  /** Why refused globals are refused, appended to the error. */
  refusalReason?: string;
  /** Resolves BINPERSID ids (torch: storages). Refused when absent. */
  persistentLoad?: (pid: PyValue) => PyValue;
  limits?: Partial<UnpickleLimits>;
}

/** Unpickles one value. Throws UnpicklingError (naming opts.source) on anything unexpected. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): PyValue {
  return new Unpickler(data, opts).load();
}

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');
const MAX_GLOBAL_LINE = 512;

type Handler = (u: Unpickler) => void;

class Unpickler {
  private pos = 0;
  private stack: PyValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly dv: DataView;
  private readonly limits: UnpickleLimits;
  private readonly source: string;
  private opStart = 0;
  result: PyValue | undefined = undefined;
  done = false;

  constructor(
    private readonly data: Uint8Array,
    readonly opts: UnpickleOptions,
  ) {
    this.dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.source = opts.source ?? '<pickle>';
  }

  load(): PyValue {
    try {
      while (!this.done) this.step();
    } catch (e) {
      if (e instanceof UnpicklingError) throw e;
      // Errors from the caller's globals (e.g. a bad tensor) get the position too.
      throw this.error((e as Error).message);
    }
    return this.result as PyValue;
  }

  private step(): void {
    this.opStart = this.pos;
    if (this.pos >= this.data.length) throw this.error('pickle data ends without a STOP opcode (truncated?)');
    const op = this.data[this.pos++];
    const handler = OPS[op];
    if (!handler) throw this.error(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} ('${String.fromCharCode(op)}')`);
    handler(this);
  }

  error(msg: string): UnpicklingError {
    return new UnpicklingError(`${this.source}: ${msg} (pickle byte ${this.opStart})`);
  }

  // ---- reading the byte stream; each read checks it stays inside the data

  take(n: number): Uint8Array {
    if (n > this.data.length - this.pos) throw this.error(`pickle data truncated: wanted ${n} bytes, ${this.data.length - this.pos} left`);
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private at(n: number): number {
    const p = this.pos;
    this.take(n);
    return p;
  }

  u8(): number {
    return this.dv.getUint8(this.at(1));
  }
  u16(): number {
    return this.dv.getUint16(this.at(2), true);
  }
  u32(): number {
    return this.dv.getUint32(this.at(4), true);
  }
  i32(): number {
    return this.dv.getInt32(this.at(4), true);
  }
  u64(): number {
    const v = this.dv.getBigUint64(this.at(8), true);
    // Anything past 2^53 is past the end of any buffer we could hold.
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }
  f64(): number {
    return this.dv.getFloat64(this.at(8), false); // BINFLOAT is big-endian
  }

  line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > MAX_GLOBAL_LINE) throw this.error('malformed GLOBAL: no newline-terminated name');
    const s = latin1.decode(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  sized(n: number): Uint8Array {
    if (n > this.limits.maxStringBytes) throw this.error(`string of ${n} bytes exceeds the limit of ${this.limits.maxStringBytes}`);
    return this.take(n);
  }

  text(n: number): string {
    return utf8.decode(this.sized(n));
  }

  bytes(n: number): Uint8Array {
    return this.sized(n).slice(); // detach from the pickle buffer
  }

  long(n: number): number | bigint {
    if (n > this.limits.maxLongBytes) throw this.error(`integer of ${n} bytes exceeds the limit of ${this.limits.maxLongBytes}`);
    return decodeLong(this.take(n));
  }

  // ---- the stack, marks and memo

  push(v: PyValue): void {
    if (this.stack.length >= this.limits.maxStack) throw this.error(`stack exceeds ${this.limits.maxStack} values`);
    this.stack.push(v);
  }

  pop(): PyValue {
    const floor = this.marks.length ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length <= floor) throw this.error('stack underflow');
    return this.stack.pop() as PyValue;
  }

  top(): PyValue {
    const floor = this.marks.length ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length <= floor) throw this.error('stack underflow');
    return this.stack[this.stack.length - 1];
  }

  mark(): void {
    if (this.marks.length >= this.limits.maxMarks) throw this.error(`nesting exceeds ${this.limits.maxMarks} levels`);
    this.marks.push(this.stack.length);
  }

  popMark(): PyValue[] {
    const m = this.marks.pop();
    if (m === undefined) throw this.error('no MARK on the stack');
    return this.stack.splice(m);
  }

  put(i: number): void {
    if (!this.memo.has(i) && this.memo.size >= this.limits.maxMemo) throw this.error(`memo exceeds ${this.limits.maxMemo} entries`);
    this.memo.set(i, this.top());
  }

  get(i: number): void {
    const v = this.memo.get(i);
    if (v === undefined) throw this.error(`memo key ${i} is not defined`);
    this.push(v);
  }

  memoize(): void {
    this.put(this.memo.size);
  }

  // ---- objects

  global(module: string, name: string): void {
    const v = this.opts.findGlobal?.(module, name);
    if (v === undefined) {
      const why = this.opts.refusalReason ?? 'it is not on the allow-list';
      throw this.error(`refusing to load global ${module}.${name}: ${why}`);
    }
    this.push(v);
  }

  call(fn: PyValue, args: PyValue): PyValue {
    if (!(fn instanceof PyCallable)) throw this.error(`cannot call ${describe(fn)}`);
    if (!(args instanceof PyTuple)) throw this.error(`arguments to ${fn.qualname} must be a tuple, got ${describe(args)}`);
    return fn.fn(args.items);
  }

  build(obj: PyValue, state: PyValue): void {
    if (obj instanceof PyDict) return setDictState(this, obj, state);
    if (obj instanceof PyObject) return obj.setState(state);
    throw this.error(`cannot BUILD ${describe(obj)}`);
  }

  persistent(pid: PyValue): PyValue {
    if (!this.opts.persistentLoad) throw this.error('persistent ids are not supported here');
    return this.opts.persistentLoad(pid);
  }
}

function setDictState(u: Unpickler, d: PyDict, state: PyValue): void {
  // Python's BUILD accepts a dict, or a (dict, slots-dict) pair.
  const parts = state instanceof PyTuple && state.items.length === 2 ? state.items : [state];
  for (const part of parts) {
    if (part === null) continue;
    if (!(part instanceof PyDict)) throw u.error(`BUILD state for a dict must be a dict, got ${describe(part)}`);
    for (const [k, v] of part.map) {
      if (typeof k !== 'string') throw u.error('BUILD state keys must be strings');
      d.attrs.set(k, v);
    }
  }
}

function setItem(u: Unpickler, d: PyValue, k: PyValue, v: PyValue): void {
  if (!(d instanceof PyDict)) throw u.error(`cannot set an item on ${describe(d)}`);
  d.map.set(asKey(u, k), v);
}

function asKey(u: Unpickler, k: PyValue): PyKey {
  if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return k;
  throw u.error(`unsupported dict key ${describe(k)}`);
}

function appendTo(u: Unpickler, list: PyValue, items: PyValue[]): void {
  if (!Array.isArray(list)) throw u.error(`cannot append to ${describe(list)}`);
  for (const it of items) list.push(it);
}

function dictFrom(u: Unpickler, items: PyValue[]): PyDict {
  if (items.length % 2) throw u.error('odd number of items for a dict');
  const d = new PyDict();
  for (let i = 0; i < items.length; i += 2) setItem(u, d, items[i], items[i + 1]);
  return d;
}

/** Little-endian two's complement, as LONG1/LONG4 store it. */
export function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  const safe = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
  return safe ? Number(v) : v;
}

/** A short description of a value for error messages. */
export function describe(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (typeof v === 'string') return `str '${v.length > 40 ? v.slice(0, 40) + '...' : v}'`;
  if (typeof v === 'number' || typeof v === 'bigint') return `number ${v}`;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (Array.isArray(v)) return `list(${v.length})`;
  if (v instanceof PyTuple) return `tuple(${v.items.length})`;
  if (v instanceof PyDict) return `dict(${v.map.size})`;
  return v.describe();
}

const OPS: Record<number, Handler> = {};
const op = (c: string | number, h: Handler): void => {
  OPS[typeof c === 'string' ? c.charCodeAt(0) : c] = h;
};

// framing and control
op(0x80, (u) => {
  const p = u.u8();
  if (p < 2 || p > 5) throw u.error(`unsupported pickle protocol ${p}`);
});
op(0x95, (u) => void u.u64()); // FRAME: a length hint only
op('.', (u) => {
  u.result = u.pop();
  u.done = true;
});
op('(', (u) => u.mark());
op('0', (u) => void u.pop());
op('1', (u) => void u.popMark());
op('2', (u) => u.push(u.top()));

// scalars
op('N', (u) => u.push(null));
op(0x88, (u) => u.push(true));
op(0x89, (u) => u.push(false));
op('J', (u) => u.push(u.i32()));
op('K', (u) => u.push(u.u8()));
op('M', (u) => u.push(u.u16()));
op(0x8a, (u) => u.push(u.long(u.u8())));
op(0x8b, (u) => u.push(u.long(u.u32())));
op('G', (u) => u.push(u.f64()));

// strings and bytes
op('X', (u) => u.push(u.text(u.u32())));
op(0x8c, (u) => u.push(u.text(u.u8())));
op(0x8d, (u) => u.push(u.text(u.u64())));
op('U', (u) => u.push(latin1.decode(u.sized(u.u8()))));
op('T', (u) => u.push(latin1.decode(u.sized(u.u32()))));
op('C', (u) => u.push(u.bytes(u.u8())));
op('B', (u) => u.push(u.bytes(u.u32())));
op(0x8e, (u) => u.push(u.bytes(u.u64())));
op(0x96, (u) => u.push(u.bytes(u.u64()))); // BYTEARRAY8

// containers
op('}', (u) => u.push(new PyDict()));
op(']', (u) => u.push([]));
op(')', (u) => u.push(new PyTuple([])));
op('t', (u) => u.push(new PyTuple(u.popMark())));
op(0x85, (u) => u.push(new PyTuple([u.pop()])));
op(0x86, (u) => {
  const b = u.pop();
  u.push(new PyTuple([u.pop(), b]));
});
op(0x87, (u) => {
  const c = u.pop();
  const b = u.pop();
  u.push(new PyTuple([u.pop(), b, c]));
});
op('l', (u) => u.push(u.popMark()));
op('a', (u) => {
  const v = u.pop();
  appendTo(u, u.top(), [v]);
});
op('e', (u) => {
  const items = u.popMark();
  appendTo(u, u.top(), items);
});
op('d', (u) => u.push(dictFrom(u, u.popMark())));
op('s', (u) => {
  const v = u.pop();
  const k = u.pop();
  setItem(u, u.top(), k, v);
});
op('u', (u) => {
  const items = u.popMark();
  const d = u.top();
  if (items.length % 2) throw u.error('odd number of items for SETITEMS');
  for (let i = 0; i < items.length; i += 2) setItem(u, d, items[i], items[i + 1]);
});

// memo
op('q', (u) => u.put(u.u8()));
op('r', (u) => u.put(u.u32()));
op('h', (u) => u.get(u.u8()));
op('j', (u) => u.get(u.u32()));
op(0x94, (u) => u.memoize());

// objects: only through the caller's allow-list
op('c', (u) => {
  const module = u.line();
  u.global(module, u.line());
});
op(0x93, (u) => {
  const name = u.pop();
  const module = u.pop();
  if (typeof module !== 'string' || typeof name !== 'string') throw u.error('STACK_GLOBAL needs two strings');
  u.global(module, name);
});
op('R', (u) => {
  const args = u.pop();
  const fn = u.pop();
  u.push(u.call(fn, args));
});
op(0x81, (u) => {
  const args = u.pop();
  const cls = u.pop();
  u.push(u.call(cls, args));
});
op('b', (u) => {
  const state = u.pop();
  u.build(u.top(), state);
});
op('Q', (u) => u.push(u.persistent(u.pop())));
