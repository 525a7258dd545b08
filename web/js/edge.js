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

/** EdgeModule is a running instance of the browser edge module. */
export class EdgeModule {
  constructor(api) {
    this.api = api;
    this.functions = new Set(api.functions || []);
  }

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
    return new EdgeModule(api);
  }

  /** call invokes one ABI function with a request object and returns its reply. */
  call(name, req) {
    const resp = this.api.call(name, encode(req));
    if (!(resp instanceof Uint8Array) || resp.length === 0) throw new EdgeError('internal', `${name}: empty reply`);
    const body = decode(resp.subarray(1));
    if (resp[0] !== 0) throw new EdgeError(body?.code || 'internal', body?.message || `${name} failed`);
    return body;
  }

  /** sessionNew loads a tokenizer.json; engram is the V4.1 Engram config or null. */
  sessionNew(tokenizerJSON, engram) {
    const req = { tokenizer: tokenizerJSON };
    if (engram) req.engram = engram;
    return this.call('edge_session_new', req);
  }

  tokenize(session, text) { return this.call('edge_tokenize', { handle: session, text }).ids || []; }

  detokenize(session, ids, skipSpecial = false) {
    return this.call('edge_detokenize', { handle: session, ids, skip_special: skipSpecial || undefined }).text;
  }

  streamNew(session) { return this.call('edge_stream_new', { handle: session }).handle; }

  streamPush(stream, ids) { return this.call('edge_stream_push', { handle: stream, ids }).text; }

  streamFlush(stream) { return this.call('edge_stream_flush', { handle: stream }).text; }

  chatEncode(session, messages, options) {
    return this.call('edge_chat_encode', { handle: session, messages, options, tokenize: true });
  }

  /** samplerNew creates a sampler; p holds protocol.SamplingParams fields. */
  samplerNew(p) {
    const params = {};
    for (const [k, v] of Object.entries(p)) {
      if (v === undefined || v === 0 || v === false || (Array.isArray(v) && v.length === 0)) continue;
      params[k] = ['temperature', 'top_p', 'min_p', 'repetition_penalty', 'presence_penalty', 'frequency_penalty'].includes(k) ? new F64(v) : v;
    }
    return this.call('edge_sampler_new', { params }).handle;
  }

  /** sample draws a token from float16 (f16) or float32 (f32) little-endian logits. */
  sample(sampler, logits, history) {
    return this.call('edge_sample', { handle: sampler, ...logits, history });
  }

  engramNew(session) { return this.call('edge_engram_new', { handle: session }).handle; }

  engram(seq, ids) { return this.call('edge_engram', { handle: seq, ids }); }

  release(handle) {
    try { this.call('edge_release', { handle }); } catch { /* already gone */ }
  }
}
