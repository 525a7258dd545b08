// The EdgeSeek playground page. In split mode the edge module runs here:
// it tokenizes, encodes chats and samples, and the host only returns the
// logits of each step. In hosted mode the host samples and streams tokens.

import { EdgeModule, fetchWithProgress } from './edge.js';
import { HostConnection } from './host.js';
import { drawCSA, drawMHC, drawEmpty, renderModel } from './views.js';

const $ = (id) => document.getElementById(id);

const PREFILL_CHUNK = 64;
const KEEP_EXTRAS = 1024; // tokens whose pictures are kept for hovering
const TOP_ALTS = 5;

const state = {
  config: { ws_path: '/ws', model: '' },
  info: null, // ModelInfo from /api/model
  edge: null, // EdgeModule
  session: 0,
  moduleError: null,
  moduleDone: null, // promise
  conn: null,
  welcome: null,
  where: null, // 'split' | 'hosted' once connected
  wantWhere: 'split',
  reconnectTimer: 0,
  reconnectDelay: 1000,
  busy: false,
  stop: false,
  run: null,
  canContinue: false,
  // The split-mode sequence: ids fed (or to feed) to the host, how many
  // the host holds, and the logits after the last fed one.
  seq: { ids: [], fed: 0, lastLogits: null, sampler: 0, stream: 0, engram: 0 },
  messages: [], // chat history
  records: [], // per generated token: {id, text, logprob, top, pos, csa, mhc, hosted}
  altText: new Map(),
  hover: -1,
  drawPending: false,
  reqCounter: 0,
};
globalThis.edgeseekPlayground = state; // for the browser tests and the curious

// ---- status and banners -------------------------------------------------

function setStatus(kind, text) {
  const s = $('status');
  s.dataset.state = kind;
  $('status-text').textContent = text;
}

function banner(text, kind = 'warn', action = null) {
  const b = $('banner');
  if (!text) { b.hidden = true; return; }
  b.hidden = false;
  b.dataset.kind = kind;
  $('banner-text').textContent = text;
  const btn = $('banner-action');
  if (action) {
    btn.hidden = false;
    btn.textContent = action.label;
    btn.onclick = action.run;
  } else {
    btn.hidden = true;
    btn.onclick = null;
  }
}

function readyText() {
  const w = state.welcome;
  const where = state.where === 'split' ? 'sampling in the browser' : 'sampling on the host';
  return `Ready — ${w?.model || 'model'} · ${where}`;
}

function updateButtons() {
  const connected = !!state.conn && !!state.welcome;
  $('btn-generate').disabled = state.busy || !connected;
  $('btn-stop').disabled = !state.busy;
  const hostedChat = state.where === 'hosted' && state.run?.mode === 'chat';
  $('btn-continue').disabled = state.busy || !connected || !state.canContinue || hostedChat;
  document.body.dataset.run = state.busy ? 'running' : 'idle';
  const chat = mode() === 'chat';
  $('thinking-wrap').hidden = !chat;
  $('effort-wrap').hidden = !chat || !$('thinking').checked;
  $('transport-mode').textContent = state.where ? `${state.where} mode` : '';
}

// ---- settings ------------------------------------------------------------

const SLIDERS = ['temperature', 'top_k', 'top_p', 'min_p', 'repetition_penalty', 'presence_penalty', 'frequency_penalty'];
const SAVED = [...SLIDERS, 'seed', 'max_tokens', 'transport', 'top_n', 'where'];

function mode() { return $('mode-chat').checked ? 'chat' : 'completion'; }

function settings() {
  const num = (id) => Number($(`s-${id}`).value);
  const seedText = $('s-seed').value.trim();
  return {
    temperature: num('temperature'), top_k: num('top_k'), top_p: num('top_p'), min_p: num('min_p'),
    repetition_penalty: num('repetition_penalty'), presence_penalty: num('presence_penalty'),
    frequency_penalty: num('frequency_penalty'),
    seed: seedText === '' ? Math.floor(Math.random() * 2 ** 31) + 1 : Math.max(0, Math.floor(Number(seedText))),
    max_tokens: Math.max(1, Math.floor(num('max_tokens')) || 128),
    transport: $('s-transport').value, top_n: Math.min(1024, Math.max(1, Math.floor(num('top_n')) || 64)),
    inspect: $('inspect').checked,
  };
}

function loadSettings() {
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem('edgeseek.settings') || '{}'); } catch { saved = {}; }
  for (const k of SAVED) if (k in saved && $(`s-${k}`)) $(`s-${k}`).value = saved[k];
  if (saved.mode === 'completion') $('mode-completion').checked = true;
  if (typeof saved.thinking === 'boolean') $('thinking').checked = saved.thinking;
  state.wantWhere = $('s-where').value;
  for (const k of SLIDERS) $(`o-${k}`).value = $(`s-${k}`).value;
  $('s-top_n').disabled = $('s-transport').value !== 'top';
}

function saveSettings() {
  const o = { mode: mode(), thinking: $('thinking').checked };
  for (const k of SAVED) o[k] = $(`s-${k}`).value;
  try { localStorage.setItem('edgeseek.settings', JSON.stringify(o)); } catch { /* private mode */ }
}

// ---- loading -------------------------------------------------------------

function progress(which, got, total, text) {
  const p = $(`load-${which}`);
  if (total > 0) { p.max = total; p.value = Math.min(got, total); } else { p.removeAttribute('value'); }
  $(`load-${which}-text`).textContent = text;
}

async function loadModelInfo() {
  progress('model', 0, 0, 'loading…');
  try {
    const resp = await fetch('/api/model', { cache: 'no-cache' });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    state.info = await resp.json();
    progress('model', 1, 1, 'loaded');
    renderModel($('model-info'), state.info);
    $('model-name').textContent = `${state.info.name || state.info.architecture} · ${state.info.layers} layers · vocab ${state.info.vocab}`;
  } catch (e) {
    progress('model', 1, 1, 'unavailable');
    $('model-info').textContent = `The host did not describe its model (${e.message}).`;
  }
}

async function loadModule() {
  const mb = (n) => (n / 1048576).toFixed(1);
  try {
    const edge = await EdgeModule.load((phase, got, total) => {
      if (phase === 'download') progress('module', got, total, total ? `${mb(got)} / ${mb(total)} MiB` : `${mb(got)} MiB`);
      else progress('module', 0, 0, 'starting…');
    });
    progress('module', 0, 0, 'tokenizer…');
    const tok = await fetchWithProgress('/api/tokenizer.json', (g, t) => progress('module', g, t, `tokenizer ${mb(g)} MiB`));
    await state.infoLoaded;
    const e = state.info?.engram;
    const engram = e ? { layer_ids: e.layer_ids, max_ngram: e.max_ngram, heads: e.heads, vocab_size: e.vocab_size, compressed_vocab: e.compressed_vocab, pad_id: e.pad_id } : null;
    const info = edge.sessionNew(tok, engram);
    state.edge = edge;
    state.session = info.handle;
    const c = edge.plugins.length ? `, C ${edge.plugins.join(' + ')}` : '';
    progress('module', 1, 1, `ready (vocab ${info.vocab}${c})`);
  } catch (e) {
    state.moduleError = e;
    progress('module', 1, 1, 'failed');
  }
}

// ---- connection ----------------------------------------------------------

function wsURL() {
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  return scheme + location.host + (state.config.ws_path || '/ws');
}

function offerHosted() {
  const why = state.moduleError ? state.moduleError.message : 'unknown error';
  banner(`The edge module could not be loaded (${why}), so the browser cannot sample. The host can run the whole generation instead.`, 'warn',
    { label: 'Use hosted mode', run: () => { $('s-where').value = 'hosted'; state.wantWhere = 'hosted'; saveSettings(); banner(null); reconnect(0); } });
  setStatus('error', 'Edge module unavailable');
}

async function connect() {
  clearTimeout(state.reconnectTimer);
  let where = state.wantWhere;
  if (where === 'split' && !state.edge) {
    offerHosted();
    updateButtons();
    return;
  }
  const conn = new HostConnection(wsURL(), where, state.config.model || '');
  state.conn = conn;
  state.welcome = null;
  setStatus('connecting', 'Connecting to the host…');
  updateButtons();
  conn.addEventListener('close', (ev) => onClosed(conn, ev.detail));
  try {
    const w = await conn.connect();
    if (conn !== state.conn) { conn.close(); return; }
    state.welcome = w;
    state.where = where;
    state.reconnectDelay = 1000;
    // A new connection holds a new, empty sequence on the host.
    state.seq.fed = 0;
    state.seq.lastLogits = null;
    if (!state.busy) setStatus('ready', readyText());
    banner(null);
    updateContext();
  } catch (e) {
    onClosed(conn, { reason: e.message, code: e.code });
  }
  updateButtons();
}

function onClosed(conn, detail) {
  if (conn !== state.conn) return;
  state.conn = null;
  state.welcome = null;
  if (detail.code === 'closed') return;
  if (detail.code === 'version' || detail.code === 'invalid') {
    setStatus('error', `Refused by the host: ${detail.reason}`);
    banner(`The host refused this page: ${detail.reason}`, 'bad');
    updateButtons();
    return;
  }
  reconnect(state.reconnectDelay);
  state.reconnectDelay = Math.min(state.reconnectDelay * 2, 10000);
}

function reconnect(delay) {
  clearTimeout(state.reconnectTimer);
  state.conn?.close();
  state.conn = null;
  state.welcome = null;
  updateButtons();
  if (delay <= 0) { connect(); return; }
  const until = Date.now() + delay;
  const tick = () => {
    if (state.conn) return;
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    setStatus('unavailable', `Host unavailable — retrying in ${left} s`);
    if (Date.now() >= until) { connect(); return; }
    state.reconnectTimer = setTimeout(tick, 250);
  };
  tick();
}

// ---- output rendering ------------------------------------------------------

function visible(s) {
  return s.replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\t/g, '⇥') || '∅';
}

function scrollOutput() {
  const o = $('output');
  if (o.scrollHeight - o.scrollTop - o.clientHeight < 120) o.scrollTop = o.scrollHeight;
}

/** newTurn adds a block to the output and returns where tokens go. */
function newTurn(kind, promptText) {
  $('placeholder')?.remove();
  const out = $('output');
  if (kind === 'completion') {
    // A completion replaces the page, the chat shown on it included.
    out.replaceChildren();
    state.messages = [];
    const turn = document.createElement('div');
    turn.className = 'turn completion';
    const echo = document.createElement('span');
    echo.className = 'prompt-echo';
    echo.textContent = promptText;
    const body = document.createElement('span');
    body.className = 'body';
    turn.append(echo, body);
    out.append(turn);
    return { turn, body, reasoning: null, inReasoning: false, text: '', reasoningText: '' };
  }
  out.querySelectorAll('.turn.completion').forEach((e) => e.remove());
  const user = document.createElement('div');
  user.className = 'turn user';
  user.innerHTML = '<span class="who">you</span>';
  const ub = document.createElement('span');
  ub.className = 'body';
  ub.textContent = promptText;
  user.append(ub);
  const turn = document.createElement('div');
  turn.className = 'turn assistant';
  turn.innerHTML = '<span class="who">model</span>';
  const reasoning = document.createElement('span');
  reasoning.className = 'reasoning';
  reasoning.hidden = true;
  const body = document.createElement('span');
  body.className = 'body';
  turn.append(reasoning, body);
  out.append(user, turn);
  scrollOutput();
  return { turn, body, reasoning, inReasoning: false, text: '', reasoningText: '' };
}

function setCursor(target) {
  document.querySelectorAll('#output .cursor').forEach((c) => c.remove());
  if (!target) return;
  const c = document.createElement('span');
  c.className = 'cursor';
  c.setAttribute('aria-hidden', 'true');
  target.append(c);
}

/** appendToken shows a token's text in the current turn, splitting reasoning from the answer. */
function appendToken(view, rec, text, reasoningFlag) {
  const idx = state.records.length;
  state.records.push(rec);
  if (state.records.length > KEEP_EXTRAS) {
    const old = state.records[state.records.length - KEEP_EXTRAS - 1];
    if (old) { old.csa = null; old.mhc = null; }
  }
  const pieces = [];
  if (reasoningFlag !== undefined) {
    pieces.push([text, reasoningFlag]);
  } else {
    // Split mode: <think> … </think> markers in the text itself.
    let t = text;
    if (view.reasoning && !view.inReasoning && view.text === '' && view.reasoningText === '' && t.startsWith('<think>')) {
      view.inReasoning = true;
      t = t.slice('<think>'.length);
    }
    const end = view.inReasoning ? t.indexOf('</think>') : -1;
    if (end >= 0) {
      pieces.push([t.slice(0, end), true]);
      view.inReasoning = false;
      pieces.push([t.slice(end + '</think>'.length), false]);
    } else {
      pieces.push([t, view.inReasoning]);
    }
  }
  for (const [t, r] of pieces) {
    // Bytes of a character split across tokens arrive with the token that
    // completes it: a token with no text of its own gets no span.
    if (t === '') continue;
    const span = document.createElement('span');
    span.className = 'tok';
    if (rec.logprob !== undefined && Math.exp(rec.logprob) < 0.1) span.classList.add('p-low');
    span.dataset.i = String(idx);
    span.textContent = t;
    const target = r && view.reasoning ? view.reasoning : view.body;
    if (r && view.reasoning) { view.reasoning.hidden = false; view.reasoningText += t; } else view.text += t;
    target.append(span);
    setCursor(target);
  }
  scrollOutput();
  if (state.hover < 0) scheduleDraw();
}

// ---- pictures ------------------------------------------------------------

function scheduleDraw() {
  if (state.drawPending) return;
  state.drawPending = true;
  requestAnimationFrame(() => { state.drawPending = false; drawInside(); });
}

function csaRows() {
  const info = state.info;
  if (!info) return [];
  const ratio = new Map(info.schedule.map((l) => [l.layer, l.ratio]));
  return info.csa_layers.map((l) => ({ layer: l, ratio: ratio.get(l) || 4 }));
}

function drawInside() {
  const idx = state.hover >= 0 ? state.hover : state.records.length - 1;
  const rec = state.records[idx];
  const csaC = $('csa-canvas'), mhcC = $('mhc-canvas');
  if (!rec) {
    drawEmpty(csaC, 'Generate to see which compressed positions each CSA layer attends to.');
    drawEmpty(mhcC, 'Generate to see each layer\'s mHC mixing matrix.');
    csaC.dataset.state = mhcC.dataset.state = 'empty';
    $('inside-token').textContent = '';
    return;
  }
  $('inside-token').textContent = `token ${idx + 1} “${visible(rec.text).slice(0, 16)}” @${rec.pos}`;
  if (rec.hosted) {
    drawEmpty(csaC, 'Hosted mode streams tokens only; use split mode to see the indexer.');
    drawEmpty(mhcC, 'Hosted mode streams tokens only.');
    csaC.dataset.state = mhcC.dataset.state = 'no-data';
    return;
  }
  if (rec.csa && rec.csa.length) {
    drawCSA(csaC, rec.csa, csaRows(), rec.pos);
    csaC.dataset.state = 'data';
  } else {
    const why = !$('inspect').checked ? 'Turn on "Ask the host for these pictures".' :
      (csaRows().length === 0 ? 'This model has no CSA layers.' : 'The host sent no indexer selections for this token.');
    drawEmpty(csaC, why);
    csaC.dataset.state = 'no-data';
  }
  if (rec.mhc && rec.mhc.length) {
    drawMHC(mhcC, rec.mhc);
    let hi = 0;
    for (const m of rec.mhc) for (const v of m.m || []) hi = Math.max(hi, Math.abs(v));
    $('mhc-max').textContent = hi.toFixed(2);
    mhcC.dataset.state = 'data';
  } else {
    drawEmpty(mhcC, $('inspect').checked ? 'The host sent no mHC matrices for this token.' : 'Turn on "Ask the host for these pictures".');
    mhcC.dataset.state = 'no-data';
  }
}

// ---- tooltip -------------------------------------------------------------

function altText(rec, a) {
  if (a.text instanceof Uint8Array) return new TextDecoder('utf-8').decode(a.text);
  if (typeof a.text === 'string') return a.text;
  if (!state.edge) return `#${a.id}`;
  let t = state.altText.get(a.id);
  if (t === undefined) {
    try { t = state.edge.detokenize(state.session, [a.id]); } catch { t = `#${a.id}`; }
    state.altText.set(a.id, t);
  }
  return t;
}

function showTooltip(span) {
  const idx = Number(span.dataset.i);
  const rec = state.records[idx];
  if (!rec) return;
  const tt = $('tooltip');
  tt.replaceChildren();
  const head = document.createElement('div');
  head.className = 'tt-head';
  const tok = document.createElement('span');
  tok.className = 'tt-tok';
  tok.textContent = visible(rec.text);
  const p = document.createElement('span');
  p.textContent = rec.logprob !== undefined ? `p = ${(100 * Math.exp(rec.logprob)).toFixed(1)}%` : 'p = ?';
  head.append(tok, p);
  tt.append(head);
  const meta = document.createElement('div');
  meta.className = 'muted';
  meta.textContent = `id ${rec.id} · position ${rec.pos + 1}`;
  tt.append(meta);
  if (rec.top && rec.top.length) {
    const table = document.createElement('table');
    for (const a of rec.top) {
      const tr = document.createElement('tr');
      if (a.id === rec.id) tr.className = 'chosen';
      const prob = Math.exp(a.logprob);
      const t = document.createElement('td'); t.className = 't'; t.textContent = visible(altText(rec, a));
      const bar = document.createElement('td'); bar.className = 'bar';
      const fill = document.createElement('div'); fill.className = 'barfill'; fill.style.width = `${Math.max(2, prob * 100)}%`;
      bar.append(fill);
      const pc = document.createElement('td'); pc.className = 'p'; pc.textContent = `${(prob * 100).toFixed(1)}%`;
      tr.append(t, bar, pc);
      table.append(tr);
    }
    tt.append(table);
  }
  tt.hidden = false;
  const r = span.getBoundingClientRect();
  const w = tt.offsetWidth, h = tt.offsetHeight;
  let x = Math.min(window.innerWidth - w - 8, Math.max(8, r.left));
  let y = r.bottom + 6;
  if (y + h > window.innerHeight - 8) y = r.top - h - 6;
  tt.style.left = `${x}px`;
  tt.style.top = `${y}px`;
  state.hover = idx;
  drawInside();
}

function hideTooltip() {
  $('tooltip').hidden = true;
  if (state.hover >= 0) { state.hover = -1; drawInside(); }
}

// ---- statistics ----------------------------------------------------------

function fmtRate(n, ms) { return ms > 0 && n > 0 ? (n / (ms / 1000)).toFixed(1) : '–'; }

function updateStats() {
  const r = state.run;
  if (!r) return;
  const now = performance.now();
  if (r.prefillTokens) $('stat-prefill').textContent = fmtRate(r.prefillTokens, (r.prefillEnd || now) - r.prefillStart);
  if (r.decoded) $('stat-decode').textContent = fmtRate(r.decoded, now - r.decodeStart);
  if (r.stepMs !== undefined) $('stat-step').textContent = r.stepMs.toFixed(1);
  updateContext();
}

function updateContext() {
  const max = state.welcome?.max_context || state.info?.context_limit || 0;
  let used = state.where === 'hosted' ? (state.run?.hostedUsed || 0) : state.seq.ids.length;
  $('stat-ctx').textContent = `${used.toLocaleString('en')} / ${max ? max.toLocaleString('en') : '–'}`;
  const bar = $('ctx-bar');
  bar.max = Math.max(1, max);
  bar.value = Math.min(used, bar.max);
}

// ---- generation ----------------------------------------------------------

function refuse(text) {
  setStatus('refused', text);
  banner(text, 'bad');
}

function samplingParams(s) {
  return {
    temperature: s.temperature, top_k: s.top_k, top_p: s.top_p, min_p: s.min_p,
    repetition_penalty: s.repetition_penalty === 1 ? 0 : s.repetition_penalty,
    presence_penalty: s.presence_penalty, frequency_penalty: s.frequency_penalty,
    penalty_last_n: 64, seed: s.seed, logprobs: true, top_logprobs: TOP_ALTS,
  };
}

function sameStart(a, b, n) {
  if (a.length < n || b.length < n) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function generate(cont) {
  if (state.busy || !state.welcome) return;
  const text = $('prompt').value;
  if (!cont && text.trim() === '' && mode() === 'chat') { $('prompt').focus(); return; }
  banner(null);
  state.busy = true;
  state.stop = false;
  state.canContinue = false;
  const s = settings();
  state.run = { mode: mode(), settings: s, prefillTokens: 0, prefillStart: 0, prefillEnd: 0, decoded: 0, decodeStart: 0, produced: 0, finish: null };
  $('stat-prefill').textContent = $('stat-decode').textContent = $('stat-step').textContent = '–';
  $('stat-finish').textContent = '…';
  setStatus('generating', cont ? 'Continuing…' : 'Reading the prompt…');
  updateButtons();
  let finish = 'error';
  try {
    finish = state.where === 'split' ? await runSplit(cont, text, s) : await runHosted(cont, text, s);
  } catch (e) {
    finish = 'error';
    if (e.code === 'too_long') refuse(`Refused: too long — ${e.message}`);
    else if (e.code === 'unavailable' || e.code === 'closed') banner(`The host went away during generation: ${e.message}`, 'bad');
    else if (e.code === 'unsupported') banner(`The edge module cannot do this (${e.message}); try completion mode or hosted mode.`, 'bad');
    else banner(`Generation failed: ${e.message}`, 'bad');
  }
  state.run.finish = finish;
  state.busy = false;
  state.canContinue = finish === 'length' || finish === 'cancel';
  setCursor(null);
  $('stat-finish').textContent = finish;
  document.body.dataset.finish = finish;
  updateStats();
  if (state.welcome && $('status').dataset.state !== 'refused') setStatus('ready', readyText());
  updateButtons();
  scheduleDraw();
}

/** history returns the chat so far plus the new user message. */
function chatMessages(text) {
  return [...state.messages, { role: 'user', content: text }];
}

async function runSplit(cont, text, s) {
  const edge = state.edge, sq = state.seq, w = state.welcome;
  const max = w.max_context || Infinity;
  const eos = state.info?.eos;
  let view = state.view;
  if (!cont) {
    let ids;
    if (state.run.mode === 'chat') {
      const rep = edge.chatEncode(state.session, chatMessages(text), { thinking: $('thinking').checked || undefined, effort: ($('thinking').checked && $('effort').value) || undefined });
      ids = rep.ids || [];
    } else {
      ids = edge.tokenize(state.session, text);
      if (state.info && state.info.bos >= 0) ids = [state.info.bos, ...ids];
    }
    if (ids.length === 0) throw Object.assign(new Error('the prompt encodes to no tokens'), { code: 'invalid' });
    if (ids.length >= max) {
      throw Object.assign(new Error(`the prompt is ${ids.length} tokens and the context limit is ${max}`), { code: 'too_long' });
    }
    // Reuse what the host already holds when the new sequence extends it.
    if (!(sq.fed > 0 && sq.fed <= ids.length && sameStart(sq.ids, ids, sq.fed))) { sq.fed = 0; sq.lastLogits = null; }
    if (sq.fed === ids.length) sq.fed = 0; // need fresh logits for the last prompt token
    sq.ids = ids.slice();
    if (sq.sampler) edge.releaseSampler(sq.sampler);
    if (sq.stream) edge.release(sq.stream);
    sq.sampler = edge.samplerNew({ ...samplingParams(s), stop_tokens: eos !== undefined ? [eos] : undefined });
    sq.stream = edge.streamNew(state.session);
    if (state.run.mode === 'chat') {
      state.messages.push({ role: 'user', content: text });
      state.messages.push({ role: 'assistant', content: '' });
      view = newTurn('chat', text);
      if ($('thinking').checked) view.inReasoning = true;
    } else {
      const echoIds = state.info && ids[0] === state.info.bos ? ids.slice(1) : ids;
      view = newTurn('completion', edge.detokenize(state.session, echoIds));
    }
    view.promptLen = ids.length;
    state.view = view;
    state.records = [];
    $('prompt').value = state.run.mode === 'chat' ? '' : text;
  }
  if (!view) throw new Error('nothing to continue');
  if (w.engram_per_token && (sq.fed === 0 || !sq.engram)) {
    if (sq.engram) edge.release(sq.engram);
    sq.engram = edge.engramNew(state.session);
  }
  setCursor(view.reasoning && view.inReasoning ? view.reasoning : view.body);
  const run = state.run;
  const conn = state.conn;
  for (;;) {
    let logits = null;
    if (sq.ids.length > sq.fed) {
      const pending = sq.ids.slice(sq.fed);
      const prefill = pending.length > 1;
      if (prefill) { run.prefillStart = performance.now(); run.prefillTokens = 0; }
      for (let off = 0; off < pending.length; off += PREFILL_CHUNK) {
        const chunk = pending.slice(off, off + PREFILL_CHUNK);
        const last = off + PREFILL_CHUNK >= pending.length;
        const step = { pos: sq.fed, tokens: chunk, want_csa: last && s.inspect, want_mhc: last && s.inspect };
        if (s.transport === 'top') step.top_n = s.top_n;
        if (w.engram_per_token) step.engram = edge.engram(sq.engram, chunk).rows;
        const msg = await conn.step(step);
        sq.fed += chunk.length;
        run.stepMs = (msg.timing?.compute_us || 0) / 1000;
        if (prefill) {
          run.prefillTokens += chunk.length;
          run.prefillEnd = performance.now();
          setStatus('generating', `Reading the prompt… ${sq.fed} / ${sq.ids.length}`);
        }
        updateStats();
        if (last) logits = msg;
        if (state.stop) break;
      }
      if (logits) sq.lastLogits = logits;
      if (prefill && !run.decodeStart) setStatus('generating', 'Generating…');
    } else {
      logits = sq.lastLogits;
    }
    if (state.stop || !logits) return 'cancel';
    if (!run.decodeStart) { run.decodeStart = performance.now(); setStatus('generating', 'Generating…'); }
    const choice = edge.sample(sq.sampler, logitsFor(logits), sq.ids);
    if (choice.finish === 'stop' || choice.id === eos) {
      const tail = edge.streamFlush(sq.stream);
      if (tail) appendToken(view, { id: -1, text: tail, pos: logits.pos }, tail);
      finishChat(view);
      return 'stop';
    }
    sq.ids.push(choice.id);
    const piece = edge.streamPush(sq.stream, [choice.id]);
    const rec = { id: choice.id, text: piece, logprob: choice.logprob ?? undefined, top: choice.top || [], pos: logits.pos, csa: logits.csa || null, mhc: logits.mhc || null };
    if (rec.top.length && !rec.top.some((a) => a.id === rec.id) && rec.logprob !== undefined) rec.top.push({ id: rec.id, logprob: rec.logprob });
    appendToken(view, rec, piece);
    run.produced++;
    run.decoded++;
    updateStats();
    finishChat(view);
    if (choice.finish === 'length' || run.produced >= s.max_tokens) return 'length';
    if (sq.ids.length >= max) { banner('The context is full: start a new generation or clear.', 'warn'); return 'length'; }
    // Let the page paint between tokens.
    await new Promise((r) => setTimeout(r, 0));
  }
}

/** logitsFor turns a logits message into the sampler's input. */
function logitsFor(msg) {
  if (msg.f16) return { f16: msg.f16 };
  const vocab = state.welcome.vocab;
  const f = new Float32Array(vocab).fill(-1e30);
  for (const t of msg.top || []) if (t.id < vocab) f[t.id] = t.logit;
  return { f32: new Uint8Array(f.buffer) };
}

/** finishChat keeps the chat history's assistant message in step with the output. */
function finishChat(view) {
  if (state.run?.mode !== 'chat' || !view) return;
  const last = state.messages[state.messages.length - 1];
  if (last && last.role === 'assistant') {
    last.content = view.text;
    if (view.reasoningText) last.reasoning = view.reasoningText;
  }
}

function runHosted(cont, text, s) {
  const conn = state.conn;
  const run = state.run;
  let view = state.view;
  const id = `r${++state.reqCounter}`;
  const sampling = { ...samplingParams(s), max_tokens: s.max_tokens };
  for (const k of Object.keys(sampling)) if (!sampling[k]) delete sampling[k];
  const req = { id, sampling };
  if (!cont) {
    if (run.mode === 'chat') {
      state.messages.push({ role: 'user', content: text });
      req.messages = state.messages.map((m) => ({ role: m.role, content: m.content }));
      state.messages.push({ role: 'assistant', content: '' });
      req.chat = { thinking: $('thinking').checked || undefined, effort: ($('thinking').checked && $('effort').value) || undefined };
      view = newTurn('chat', text);
      $('prompt').value = '';
    } else {
      req.prompt = text;
      view = newTurn('completion', text);
    }
    view.prompt = text;
    state.view = view;
    state.records = [];
  } else {
    if (!view) throw new Error('nothing to continue');
    if (run.mode === 'chat') throw Object.assign(new Error('Continue in chat needs split mode'), { code: 'invalid' });
    req.prompt = view.prompt + view.text;
  }
  setCursor(view.body);
  run.prefillStart = performance.now();
  return new Promise((resolve, reject) => {
    let stopSent = false;
    const poll = setInterval(() => {
      if (state.stop && !stopSent) { stopSent = true; conn.cancel(id); }
    }, 50);
    const end = (f) => { clearInterval(poll); resolve(f); };
    conn.generate(req, {
      progress: (p) => {
        run.prefillTokens = p.done;
        run.prefillEnd = performance.now();
        run.hostedUsed = p.done;
        setStatus('generating', `Reading the prompt… ${p.done} / ${p.total}`);
        updateStats();
      },
      token: (t) => {
        if (!run.decodeStart) { run.decodeStart = performance.now(); setStatus('generating', 'Generating…'); }
        const rec = { id: t.token, text: t.text, logprob: t.logprob ?? undefined, top: t.top || [], pos: t.index, hosted: true };
        appendToken(view, rec, t.text, run.mode === 'chat' ? !!t.reasoning : false);
        run.decoded++;
        run.produced++;
        run.hostedUsed = (run.promptTokens || run.prefillTokens) + run.produced;
        updateStats();
        finishChat(view);
      },
      done: (d) => {
        if (d.text) appendToken(view, { id: -1, text: d.text, pos: -1, hosted: true }, d.text, run.mode === 'chat' ? view.inReasoning : false);
        const u = d.usage || {}, tm = d.timing || {};
        run.hostedUsed = (u.prompt_tokens || 0) + (u.completion_tokens || 0);
        if (tm.prefill_us && u.prompt_tokens) $('stat-prefill').textContent = fmtRate(u.prompt_tokens - (u.cached_tokens || 0), tm.prefill_us / 1000);
        finishChat(view);
        updateContext();
        end(d.finish);
      },
      error: (e) => { clearInterval(poll); reject(e); },
    });
  });
}

function stop() {
  if (state.busy) state.stop = true;
}

function clearAll() {
  if (state.busy) return;
  state.messages = [];
  state.records = [];
  state.view = null;
  state.canContinue = false;
  state.seq.ids = [];
  $('output').innerHTML = '<p class="placeholder" id="placeholder">Cleared. Type a prompt below and press Generate.</p>';
  $('stat-finish').textContent = '–';
  updateContext();
  updateButtons();
  scheduleDraw();
}

// ---- wiring --------------------------------------------------------------

function bind() {
  $('prompt-form').addEventListener('submit', (e) => { e.preventDefault(); generate(false); });
  $('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); generate(false); }
  });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') stop(); });
  $('btn-stop').addEventListener('click', stop);
  $('btn-continue').addEventListener('click', () => generate(true));
  $('btn-clear').addEventListener('click', clearAll);
  for (const k of SLIDERS) {
    $(`s-${k}`).addEventListener('input', () => { $(`o-${k}`).value = $(`s-${k}`).value; saveSettings(); });
  }
  for (const k of ['seed', 'max_tokens', 'top_n']) $(`s-${k}`).addEventListener('change', saveSettings);
  $('s-transport').addEventListener('change', () => { $('s-top_n').disabled = $('s-transport').value !== 'top'; saveSettings(); });
  $('s-where').addEventListener('change', () => {
    state.wantWhere = $('s-where').value;
    saveSettings();
    if (!state.busy) { banner(null); reconnect(0); }
  });
  for (const id of ['mode-chat', 'mode-completion', 'thinking']) {
    $(id).addEventListener('change', () => { state.canContinue = false; saveSettings(); updateButtons(); });
  }
  $('inspect').addEventListener('change', scheduleDraw);
  const out = $('output');
  out.addEventListener('mouseover', (e) => {
    const t = e.target.closest?.('.tok');
    if (t) showTooltip(t);
  });
  out.addEventListener('mouseout', (e) => {
    const t = e.target.closest?.('.tok');
    if (t && !t.contains(e.relatedTarget)) hideTooltip();
  });
  window.addEventListener('resize', scheduleDraw);
}

async function main() {
  loadSettings();
  bind();
  updateButtons();
  scheduleDraw();
  setStatus('loading', 'Loading…');
  try {
    const r = await fetch('/api/config.json', { cache: 'no-cache' });
    if (r.ok) state.config = { ...state.config, ...(await r.json()) };
  } catch { /* defaults */ }
  state.infoLoaded = loadModelInfo();
  if (state.wantWhere === 'split') await loadModule();
  else loadModule();
  await state.infoLoaded;
  $('loading').hidden = true;
  await connect();
}

main();
