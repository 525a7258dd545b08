// The websocket connection to the host (protocol/README.md): every frame is
// a msgpack envelope {v, t, b}. Split mode sends step and receives logits;
// hosted mode sends generate/cancel and receives progress, token and done.

import { encode, decode, Raw } from './msgpack.js';

export const PROTOCOL_VERSION = 1;

/** HostError is an error frame (or a lost connection, code "unavailable"). */
export class HostError extends Error {
  constructor(code, message, fatal = false) {
    super(message);
    this.name = 'HostError';
    this.code = code;
    this.fatal = fatal;
  }
}

/**
 * HostConnection is one websocket session. Events (EventTarget):
 * "close" (detail: {reason}) when the connection ends.
 */
export class HostConnection extends EventTarget {
  /**
   * @param {string} url ws:// or wss:// URL of /ws
   * @param {'split'|'hosted'} mode
   * @param {string} model the expected model name, or ''
   */
  constructor(url, mode, model = '') {
    super();
    this.url = url;
    this.mode = mode;
    this.model = model;
    this.version = PROTOCOL_VERSION;
    this.welcome = null;
    this.ws = null;
    this.seq = 0;
    this.steps = new Map(); // seq → {resolve, reject}
    this.requests = new Map(); // id → handlers
    this.closed = false;
  }

  /** connect opens the socket and completes the handshake; resolves to the welcome. */
  connect(timeoutMs = 8000) {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err) => { if (!settled) { settled = true; reject(err); } };
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (e) {
        fail(new HostError('unavailable', String(e)));
        return;
      }
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      const timer = setTimeout(() => { fail(new HostError('unavailable', 'the host did not answer')); ws.close(); }, timeoutMs);
      ws.onopen = () => {
        const hello = { min_version: 1, max_version: PROTOCOL_VERSION, mode: this.mode, client: 'edgeseek-web/0.1' };
        if (this.model) hello.model = this.model;
        this.sendRaw('hello', hello, 1);
      };
      ws.onmessage = (ev) => {
        let env;
        try {
          env = decode(new Uint8Array(ev.data));
        } catch (e) {
          this.fail(new HostError('bad_frame', `undecodable frame from the host: ${e.message}`));
          return;
        }
        if (!this.welcome) {
          clearTimeout(timer);
          if (env.t === 'welcome') {
            this.welcome = env.b;
            this.version = env.b.version;
            settled = true;
            resolve(env.b);
          } else if (env.t === 'error') {
            fail(new HostError(env.b.code, env.b.message, true));
          } else {
            fail(new HostError('bad_frame', `expected welcome, got ${env.t}`));
          }
          return;
        }
        this.dispatch(env.t, env.b);
      };
      ws.onerror = () => { /* onclose follows and reports */ };
      ws.onclose = (ev) => {
        clearTimeout(timer);
        fail(new HostError('unavailable', `the host closed the connection${ev.reason ? `: ${ev.reason}` : ''}`));
        this.fail(new HostError('unavailable', 'the connection to the host was lost'));
      };
    });
  }

  sendRaw(type, body, v = this.version) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) throw new HostError('unavailable', 'not connected to the host');
    this.ws.send(encode({ v, t: type, b: new Raw(encode(body)) }));
  }

  dispatch(type, b) {
    switch (type) {
      case 'logits': {
        const p = this.steps.get(b.seq);
        if (p) { this.steps.delete(b.seq); p.resolve(b); }
        return;
      }
      case 'progress': case 'token': case 'done': {
        const h = this.requests.get(b.id);
        if (!h) return;
        if (type === 'done') this.requests.delete(b.id);
        h[type]?.(b);
        return;
      }
      case 'error': {
        const err = new HostError(b.code, b.message, !!b.fatal);
        if (b.seq && this.steps.has(b.seq)) {
          const p = this.steps.get(b.seq);
          this.steps.delete(b.seq);
          p.reject(err);
        } else if (b.id && this.requests.has(b.id)) {
          this.requests.get(b.id).error?.(err);
        } else if (!b.fatal) {
          // An error about nothing pending: fail every step in flight.
          for (const p of this.steps.values()) p.reject(err);
          this.steps.clear();
        }
        if (b.fatal) this.fail(err);
        return;
      }
    }
  }

  /** fail ends the connection and everything pending on it. */
  fail(err) {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.steps.values()) p.reject(err);
    this.steps.clear();
    for (const h of this.requests.values()) h.error?.(err);
    this.requests.clear();
    try { this.ws?.close(); } catch { /* ignore */ }
    this.dispatchEvent(new CustomEvent('close', { detail: { reason: err.message, code: err.code } }));
  }

  /** close ends the connection on purpose. */
  close() { this.fail(new HostError('closed', 'closed by the page')); }

  /**
   * step sends a split-mode step and resolves to its logits message.
   * @param {{pos:number, tokens:number[], engram?:number[], top_n?:number, want_csa?:boolean, want_mhc?:boolean}} s
   */
  step(s) {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.steps.set(seq, { resolve, reject });
      try {
        this.sendRaw('step', {
          seq, pos: s.pos, tokens: s.tokens,
          engram: s.engram && s.engram.length ? s.engram : undefined,
          top_n: s.top_n || undefined, want_csa: s.want_csa || undefined, want_mhc: s.want_mhc || undefined,
        });
      } catch (e) {
        this.steps.delete(seq);
        reject(e);
      }
    });
  }

  /**
   * generate starts a hosted-mode request; handlers get progress, token,
   * done and error messages.
   */
  generate(req, handlers) {
    this.requests.set(req.id, handlers);
    try {
      this.sendRaw('generate', req);
    } catch (e) {
      this.requests.delete(req.id);
      throw e;
    }
  }

  cancel(id) {
    try { this.sendRaw('cancel', { id }); } catch { /* the connection is gone: nothing runs */ }
  }
}
