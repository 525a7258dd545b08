// The browser edge module: wasm/cmd/edge-js built for GOOS=js, run with Go's
// wasm_exec.js. It installs globalThis.edgeseek.call(name, Uint8Array),
// whose requests and replies are the msgpack messages of wasm/ABI.md
// (replies carry a status byte first). EdgeModule wraps it with typed calls.

import { encode, decode, F64 } from './msgpack.js';

/** An error answered by the module (code as in protocol: invalid, unsupported, …). */
export class EdgeError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'EdgeError';
    this.code = code;
  }
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    if (globalThis.Go) { resolve(); return; }
    const s = document.createElement('script');
    s.src = src;
    s.onload = () => resolve();
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  });
}

/**
 * fetchWithProgress downloads url, reporting (received, total) as bytes
 * arrive; total is 0 when unknown.
 */
export async function fetchWithProgress(url, onProgress) {
  const resp = await fetch(url, { cache: 'no-cache' });
  if (!resp.ok) {
    const why = (await resp.text()).trim().slice(0, 300);
    throw new Error(`${url}: HTTP ${resp.status}${why ? ` — ${why}` : ''}`);
  }
  const total = Number(resp.headers.get('X-Uncompressed-Length') || resp.headers.get('Content-Length') || 0);
  if (!resp.body || !resp.body.getReader) {
    const b = new Uint8Array(await resp.arrayBuffer());
    onProgress?.(b.length, b.length);
    return b;
  }
  const reader = resp.body.getReader();
  const parts = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
    onProgress?.(got, total);
  }
  const out = new Uint8Array(got);
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  onProgress?.(got, got);
  return out;
}

/**
 * Plugin is an instance of one of EdgeSeek's C modules (wasm/plugins:
 * the tokenizer's encoder and the sampler), the same files the host runs.
 * They import nothing; a call copies the request into the module's memory
 * and the reply out, as wasm/ABI.md describes.
 */
export class Plugin {
  constructor(name, exports) {
    this.name = name;
    this.x = exports;
  }

  static async load(url) {
    const bytes = await fetchWithProgress(url);
    const { instance } = await WebAssembly.instantiate(bytes, {});
    const x = instance.exports;
    for (const f of ['memory', 'edge_abi_version', 'edge_alloc', 'edge_free']) {
      if (!x[f]) throw new Error(`${url}: no ${f} export`);
    }
    if (x.edge_abi_version() !== 1) throw new Error(`${url}: ABI version ${x.edge_abi_version()}`);
    return new Plugin(url, x);
  }

  has(fn) { return typeof this.x[fn] === 'function'; }

  /** call runs fn on msgpack request bytes and returns the reply bytes (status byte first). */
  call(fn, req) {
    const x = this.x;
    const p = x.edge_alloc(req.length) >>> 0;
    if (p === 0) throw new EdgeError('internal', `${this.name}: out of memory`);
    new Uint8Array(x.memory.buffer, p, req.length).set(req);
    const r = BigInt.asUintN(64, x[fn](p, req.length));
    x.edge_free(p);
    const rp = Number(r >> 32n), rn = Number(r & 0xffffffffn);
    if (rp === 0) throw new EdgeError('internal', `${this.name}: ${fn} gave no reply`);
    // memory.buffer is read again: the call may have grown the memory.
    const out = new Uint8Array(x.memory.buffer, rp, rn).slice();
    x.edge_free(rp);
    return out;
  }
}

/** EdgeModule is a running instance of the browser edge module. */
export class EdgeModule {
  constructor(api, plugins = {}) {
    this.api = api;
    this.functions = new Set(api.functions || []);
    // The C tokenizer (encodes prompts) and C sampler, as the host uses them:
    // same ids and tokens as the Go edge, several times faster. Either may be
    // missing (then the Go edge does that part).
    this.tokenizer = plugins.tokenizer || null;
    this.sampler = plugins.sampler || null;
    this.attached = new Set(); // sessions the tokenizer plugin holds
  }

  /** plugins names the C modules in use, for display and tests. */
  get plugins() { return [this.tokenizer && 'tokenizer', this.sampler && 'sampler'].filter(Boolean); }

  /**
   * load fetches wasm_exec.js and edge.wasm and starts the module.
   * @param {(phase: string, got: number, total: number) => void} onProgress
   */
  static async load(onProgress, base = '/assets/') {
    if (typeof WebAssembly !== 'object') throw new Error('this browser has no WebAssembly');
    await loadScript(base + 'wasm_exec.js');
    if (!globalThis.Go) throw new Error('wasm_exec.js did not define Go');
    const bytes = await fetchWithProgress(base + 'edge.wasm', (g, t) => onProgress?.('download', g, t));
    onProgress?.('compile', 0, 0);
    const go = new globalThis.Go();
    const { instance } = await WebAssembly.instantiate(bytes, go.importObject);
    const ready = new Promise((resolve, reject) => {
      globalThis.edgeseekReady = resolve;
      setTimeout(() => reject(new Error('the edge module did not start within 20 s')), 20000);
    });
    const exited = go.run(instance).then(() => { throw new Error('the edge module exited'); });
    await Promise.race([ready, exited]);
    delete globalThis.edgeseekReady;
    const api = globalThis.edgeseek;
    if (!api || typeof api.call !== 'function') throw new Error('the edge module did not install edgeseek.call');
    // The C plugins are optional: a failure leaves that part to the Go edge.
    const plugins = {};
    for (const [key, file, fns] of [['tokenizer', 'tokenizer.wasm', ['edge_tokenizer_attach', 'edge_tokenize']],
      ['sampler', 'sampler.wasm', ['edge_sampler_new', 'edge_sample']]]) {
      try {
        const p = await Plugin.load(base + file);
        if (fns.every((f) => p.has(f))) plugins[key] = p;
      } catch (e) {
        console.warn(`C ${key} unavailable, the Go edge does it: ${e.message}`);
      }
    }
    return new EdgeModule(api, plugins);
  }

  /** call invokes one ABI function with a request object and returns its reply. */
  call(name, req, plugin = null) {
    const bytes = encode(req);
    const resp = plugin ? plugin.call(name, bytes) : this.api.call(name, bytes);
    if (!(resp instanceof Uint8Array) || resp.length === 0) throw new EdgeError('internal', `${name}: empty reply`);
    const body = decode(resp.subarray(1));
    if (resp[0] !== 0) throw new EdgeError(body?.code || 'internal', body?.message || `${name} failed`);
    return body;
  }

  /**
   * sessionNew loads a tokenizer.json; engram is the V4.1 Engram config or
   * null. With the C tokenizer, the session's tables are handed to it.
   */
  sessionNew(tokenizerJSON, engram) {
    const req = { tokenizer: tokenizerJSON };
    if (engram) req.engram = engram;
    const info = this.call('edge_session_new', req);
    if (this.tokenizer && this.functions.has('edge_tokenizer_image')) {
      try {
        const { image } = this.call('edge_tokenizer_image', { handle: info.handle });
        this.call('edge_tokenizer_attach', { handle: info.handle, image }, this.tokenizer);
        this.attached.add(info.handle);
      } catch (e) {
        console.warn(`the C tokenizer refused the session, the Go edge tokenizes: ${e.message}`);
      }
    }
    return info;
  }

  tokenize(session, text) {
    const plugin = this.attached.has(session) ? this.tokenizer : null;
    return this.call('edge_tokenize', { handle: session, text }, plugin).ids || [];
  }

  detokenize(session, ids, skipSpecial = false) {
    return this.call('edge_detokenize', { handle: session, ids, skip_special: skipSpecial || undefined }).text;
  }

  streamNew(session) { return this.call('edge_stream_new', { handle: session }).handle; }

  streamPush(stream, ids) { return this.call('edge_stream_push', { handle: stream, ids }).text; }

  streamFlush(stream) { return this.call('edge_stream_flush', { handle: stream }).text; }

  chatEncode(session, messages, options) {
    if (!this.attached.has(session)) return this.call('edge_chat_encode', { handle: session, messages, options, tokenize: true });
    // The Go edge renders, the C tokenizer encodes the text (what the Go
    // edge's tokenize would do).
    const rep = this.call('edge_chat_encode', { handle: session, messages, options });
    return { ...rep, ids: this.tokenize(session, rep.text) };
  }

  /** samplerNew creates a sampler; p holds protocol.SamplingParams fields. */
  samplerNew(p) {
    const params = {};
    for (const [k, v] of Object.entries(p)) {
      if (v === undefined || v === 0 || v === false || (Array.isArray(v) && v.length === 0)) continue;
      params[k] = ['temperature', 'top_p', 'min_p', 'repetition_penalty', 'presence_penalty', 'frequency_penalty'].includes(k) ? new F64(v) : v;
    }
    return this.call('edge_sampler_new', { params }, this.sampler).handle;
  }

  /** sample draws a token from float16 (f16) or float32 (f32) little-endian logits. */
  sample(sampler, logits, history) {
    return this.call('edge_sample', { handle: sampler, ...logits, history }, this.sampler);
  }

  /** releaseSampler frees a sampler from samplerNew (in the module that made it). */
  releaseSampler(handle) {
    try { this.call('edge_release', { handle }, this.sampler); } catch { /* already gone */ }
  }

  engramNew(session) { return this.call('edge_engram_new', { handle: session }).handle; }

  engram(seq, ids) { return this.call('edge_engram', { handle: seq, ids }); }

  /** release frees a stream or Engram sequence (samplers: releaseSampler). */
  release(handle) {
    try { this.call('edge_release', { handle }); } catch { /* already gone */ }
  }
}
