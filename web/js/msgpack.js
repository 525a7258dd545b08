// A small MessagePack encoder and decoder: the subset the EdgeSeek protocol
// uses (nil, booleans, integers, float32/64, strings, binary, arrays, maps).
// Extension types are refused. Integers beyond 2^53 decode as Numbers with
// lost precision; the protocol's ids and positions stay far below that.

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

/** Raw wraps already encoded msgpack bytes to be inserted verbatim. */
export class Raw {
  /** @param {Uint8Array} bytes */
  constructor(bytes) { this.bytes = bytes; }
}

/** F64 forces a number to be encoded as float64 even when it is integral. */
export class F64 {
  /** @param {number} v */
  constructor(v) { this.v = v; }
}

/** F32 forces a number to be encoded as float32. */
export class F32 {
  /** @param {number} v */
  constructor(v) { this.v = v; }
}

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.n = 0;
  }
  ensure(k) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const nb = new Uint8Array(size);
    nb.set(this.buf.subarray(0, this.n));
    this.buf = nb;
    this.view = new DataView(nb.buffer);
  }
  u8(b) { this.ensure(1); this.buf[this.n++] = b; }
  u16(v) { this.ensure(2); this.view.setUint16(this.n, v); this.n += 2; }
  u32(v) { this.ensure(4); this.view.setUint32(this.n, v); this.n += 4; }
  bytes(b) { this.ensure(b.length); this.buf.set(b, this.n); this.n += b.length; }
}

function writeInt(w, v) {
  if (v >= 0) {
    if (v < 0x80) w.u8(v);
    else if (v < 0x100) { w.u8(0xcc); w.u8(v); }
    else if (v < 0x10000) { w.u8(0xcd); w.u16(v); }
    else if (v < 0x100000000) { w.u8(0xce); w.u32(v); }
    else { w.u8(0xcf); w.ensure(8); w.view.setBigUint64(w.n, BigInt(v)); w.n += 8; }
  } else {
    if (v >= -32) w.u8(v & 0xff);
    else if (v >= -128) { w.u8(0xd0); w.u8(v & 0xff); }
    else if (v >= -32768) { w.u8(0xd1); w.ensure(2); w.view.setInt16(w.n, v); w.n += 2; }
    else if (v >= -2147483648) { w.u8(0xd2); w.ensure(4); w.view.setInt32(w.n, v); w.n += 4; }
    else { w.u8(0xd3); w.ensure(8); w.view.setBigInt64(w.n, BigInt(v)); w.n += 8; }
  }
}

function writeF64(w, v) { w.u8(0xcb); w.ensure(8); w.view.setFloat64(w.n, v); w.n += 8; }

function writeLen(w, n, fix, fixMax, c8, c16, c32) {
  if (n <= fixMax && fix !== null) w.u8(fix | n);
  else if (n < 0x100 && c8 !== null) { w.u8(c8); w.u8(n); }
  else if (n < 0x10000) { w.u8(c16); w.u16(n); }
  else { w.u8(c32); w.u32(n); }
}

function write(w, v, depth) {
  if (depth > 32) throw new Error('msgpack: nesting too deep');
  if (v === null || v === undefined) { w.u8(0xc0); return; }
  switch (typeof v) {
    case 'boolean': w.u8(v ? 0xc3 : 0xc2); return;
    case 'number':
      if (Number.isSafeInteger(v)) writeInt(w, v);
      else writeF64(w, v);
      return;
    case 'bigint':
      if (v >= 0n) { w.u8(0xcf); w.ensure(8); w.view.setBigUint64(w.n, v); w.n += 8; }
      else { w.u8(0xd3); w.ensure(8); w.view.setBigInt64(w.n, v); w.n += 8; }
      return;
    case 'string': {
      const b = te.encode(v);
      writeLen(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      w.bytes(b);
      return;
    }
  }
  if (v instanceof Raw) { w.bytes(v.bytes); return; }
  if (v instanceof F64) { writeF64(w, v.v); return; }
  if (v instanceof F32) { w.u8(0xca); w.ensure(4); w.view.setFloat32(w.n, v.v); w.n += 4; return; }
  if (v instanceof Uint8Array) {
    writeLen(w, v.length, null, -1, 0xc4, 0xc5, 0xc6);
    w.bytes(v);
    return;
  }
  if (Array.isArray(v) || ArrayBuffer.isView(v)) {
    writeLen(w, v.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const x of v) write(w, x, depth + 1);
    return;
  }
  if (v instanceof Map) {
    writeLen(w, v.size, 0x80, 15, null, 0xde, 0xdf);
    for (const [k, x] of v) { write(w, k, depth + 1); write(w, x, depth + 1); }
    return;
  }
  if (typeof v === 'object') {
    // Fields whose value is undefined are left out (omitempty).
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    writeLen(w, keys.length, 0x80, 15, null, 0xde, 0xdf);
    for (const k of keys) { write(w, k, depth + 1); write(w, v[k], depth + 1); }
    return;
  }
  throw new Error(`msgpack: cannot encode ${typeof v}`);
}

/**
 * encode returns the msgpack bytes of v. Plain objects become maps (keys in
 * insertion order, undefined values skipped), arrays and typed arrays other
 * than Uint8Array become arrays, Uint8Array becomes binary.
 * @param {any} v
 * @returns {Uint8Array}
 */
export function encode(v) {
  const w = new Writer();
  write(w, v, 0);
  return w.buf.slice(0, w.n);
}

class Reader {
  constructor(b) {
    this.b = b;
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.p = 0;
  }
  need(k) { if (this.p + k > this.b.length) throw new Error('msgpack: truncated input'); }
  u8() { this.need(1); return this.b[this.p++]; }
  u16() { this.need(2); const v = this.view.getUint16(this.p); this.p += 2; return v; }
  u32() { this.need(4); const v = this.view.getUint32(this.p); this.p += 4; return v; }
  take(n) { this.need(n); const s = this.b.subarray(this.p, this.p + n); this.p += n; return s; }
}

function read(r, depth) {
  if (depth > 32) throw new Error('msgpack: nesting too deep');
  const c = r.u8();
  if (c < 0x80) return c;
  if (c >= 0xe0) return c - 0x100;
  if ((c & 0xf0) === 0x80) return readMap(r, c & 0x0f, depth);
  if ((c & 0xf0) === 0x90) return readArray(r, c & 0x0f, depth);
  if ((c & 0xe0) === 0xa0) return td.decode(r.take(c & 0x1f));
  switch (c) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return r.take(r.u8()).slice();
    case 0xc5: return r.take(r.u16()).slice();
    case 0xc6: return r.take(r.u32()).slice();
    case 0xca: { r.need(4); const v = r.view.getFloat32(r.p); r.p += 4; return v; }
    case 0xcb: { r.need(8); const v = r.view.getFloat64(r.p); r.p += 8; return v; }
    case 0xcc: return r.u8();
    case 0xcd: return r.u16();
    case 0xce: return r.u32();
    case 0xcf: { r.need(8); const v = r.view.getBigUint64(r.p); r.p += 8; return Number(v); }
    case 0xd0: { r.need(1); const v = r.view.getInt8(r.p); r.p += 1; return v; }
    case 0xd1: { r.need(2); const v = r.view.getInt16(r.p); r.p += 2; return v; }
    case 0xd2: { r.need(4); const v = r.view.getInt32(r.p); r.p += 4; return v; }
    case 0xd3: { r.need(8); const v = r.view.getBigInt64(r.p); r.p += 8; return Number(v); }
    case 0xd9: return td.decode(r.take(r.u8()));
    case 0xda: return td.decode(r.take(r.u16()));
    case 0xdb: return td.decode(r.take(r.u32()));
    case 0xdc: return readArray(r, r.u16(), depth);
    case 0xdd: return readArray(r, r.u32(), depth);
    case 0xde: return readMap(r, r.u16(), depth);
    case 0xdf: return readMap(r, r.u32(), depth);
  }
  throw new Error(`msgpack: unsupported type byte 0x${c.toString(16)}`);
}

function readArray(r, n, depth) {
  if (n > r.b.length - r.p) throw new Error('msgpack: array longer than its input');
  const a = new Array(n);
  for (let i = 0; i < n; i++) a[i] = read(r, depth + 1);
  return a;
}

function readMap(r, n, depth) {
  if (2 * n > r.b.length - r.p) throw new Error('msgpack: map longer than its input');
  const o = {};
  for (let i = 0; i < n; i++) {
    const k = read(r, depth + 1);
    o[String(k)] = read(r, depth + 1);
  }
  return o;
}

/**
 * decode parses exactly one msgpack value from b; maps become plain objects
 * (keys as strings), binary becomes a Uint8Array copy.
 * @param {Uint8Array} b
 */
export function decode(b) {
  const r = new Reader(b);
  const v = read(r, 0);
  if (r.p !== b.length) throw new Error(`msgpack: ${b.length - r.p} trailing bytes`);
  return v;
}
