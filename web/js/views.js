// Pictures of what the model did for one token: the compressed positions the
// lightning indexer selected in each CSA layer (one strip per layer over the
// context) and each layer's 4×4 mHC mixing matrix (a small heatmap). Also
// the model panel (architecture, parameters, layer schedule, cache cost).

const DPR = () => Math.max(1, Math.min(3, globalThis.devicePixelRatio || 1));

function css(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/** fitCanvas sizes a canvas's backing store to its CSS box times the device pixel ratio. */
function fitCanvas(canvas, cssW, cssH) {
  const r = DPR();
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  canvas.width = Math.round(cssW * r);
  canvas.height = Math.round(cssH * r);
  const g = canvas.getContext('2d');
  g.setTransform(r, 0, 0, r, 0, 0);
  return g;
}

// A perceptually ordered ramp (dark blue → teal → yellow), stops in sRGB.
const RAMP = [[31, 26, 74], [38, 83, 140], [31, 140, 141], [80, 190, 110], [250, 222, 70]];

/** rampColor maps t in [0, 1] onto RAMP. */
export function rampColor(t) {
  if (!Number.isFinite(t)) t = 0;
  t = Math.max(0, Math.min(1, t));
  const x = t * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const a = RAMP[i], b = RAMP[i + 1];
  return `rgb(${Math.round(a[0] + (b[0] - a[0]) * f)},${Math.round(a[1] + (b[1] - a[1]) * f)},${Math.round(a[2] + (b[2] - a[2]) * f)})`;
}

/**
 * drawCSA draws one strip per CSA layer: cells are the compressed entries
 * of the context so far (position pos, ratio m: floor((pos+1)/m) entries),
 * filled where the indexer selected them.
 * @param {HTMLCanvasElement} canvas
 * @param {{layer:number, positions:number[]}[]} csa
 * @param {{layer:number, ratio:number}[]} layers the CSA layers of the model
 * @param {number} pos the token's position
 */
export function drawCSA(canvas, csa, layers, pos) {
  const byLayer = new Map((csa || []).map((c) => [c.layer, c.positions || []]));
  let rows = layers.length ? layers : [...byLayer.keys()].sort((a, b) => a - b).map((l) => ({ layer: l, ratio: 4 }));
  const width = Math.max(200, canvas.parentElement?.clientWidth || 320);
  const rowH = 18, gap = 6, labelW = 44, top = 4;
  const g = fitCanvas(canvas, width, Math.max(1, rows.length) * (rowH + gap) + top + 14);
  const fg = css('--fg', '#e8e6f0'), muted = css('--muted', '#8a87a0'), empty = css('--cell', '#2a2838');
  const accent = css('--accent', '#7cc4ff');
  g.clearRect(0, 0, width, canvas.height);
  g.font = '11px system-ui, sans-serif';
  g.textBaseline = 'middle';
  let selectedTotal = 0;
  const stripW = width - labelW - 6;
  rows.forEach((row, i) => {
    const y = top + i * (rowH + gap);
    const sel = byLayer.get(row.layer) || [];
    const n = Math.max(Math.floor((pos + 1) / Math.max(1, row.ratio)), sel.length ? Math.max(...sel) + 1 : 0);
    g.fillStyle = fg;
    g.fillText(`L${row.layer}`, 2, y + rowH / 2);
    g.fillStyle = empty;
    g.fillRect(labelW, y, stripW, rowH);
    if (n === 0) {
      g.fillStyle = muted;
      g.fillText('no compressed entries yet', labelW + 6, y + rowH / 2);
      return;
    }
    const cw = stripW / n;
    // Entry boundaries when they are wide enough to see.
    if (cw >= 4) {
      g.fillStyle = css('--bg', '#15141c');
      for (let k = 1; k < n; k++) g.fillRect(labelW + k * cw - 0.5, y, 1, rowH);
    }
    g.fillStyle = accent;
    for (const p of sel) {
      if (p < 0 || p >= n) continue;
      g.fillRect(labelW + p * cw, y + 1, Math.max(cw - (cw >= 4 ? 1 : 0), 1.5), rowH - 2);
      selectedTotal++;
    }
  });
  const ly = top + rows.length * (rowH + gap) + 5;
  g.fillStyle = accent;
  g.fillRect(labelW, ly - 4, 8, 8);
  g.fillStyle = muted;
  g.fillText('selected', labelW + 12, ly);
  g.fillStyle = empty;
  g.fillRect(labelW + 66, ly - 4, 8, 8);
  g.fillStyle = muted;
  g.fillText(`not selected · context → position ${pos}`, labelW + 78, ly);
  canvas.dataset.selected = String(selectedTotal);
  canvas.dataset.rows = String(rows.length);
  canvas.setAttribute('aria-label', `Indexer selections at position ${pos}: ${rows.map((r) => `layer ${r.layer} ${(byLayer.get(r.layer) || []).length} selected`).join(', ')}`);
}

/**
 * drawMHC draws each layer's 4×4 mixing matrix as a heatmap, in a grid.
 * @param {HTMLCanvasElement} canvas
 * @param {{layer:number, m:number[]}[]} mhc
 */
export function drawMHC(canvas, mhc) {
  const mats = (mhc || []).slice().sort((a, b) => a.layer - b.layer);
  const width = Math.max(200, canvas.parentElement?.clientWidth || 320);
  const pad = 10, labelH = 14;
  // As large as fits, eight matrices to a row at most.
  const fit = Math.floor(((width + pad) / Math.max(1, Math.min(mats.length, 8)) - pad) / 4);
  const cell = Math.max(8, Math.min(18, fit)), size = cell * 4;
  const perRow = Math.max(1, Math.floor((width + pad) / (size + pad)));
  const rows = Math.max(1, Math.ceil(mats.length / perRow));
  const g = fitCanvas(canvas, width, rows * (size + labelH + pad));
  g.clearRect(0, 0, width, canvas.height);
  g.font = '10px system-ui, sans-serif';
  g.textBaseline = 'top';
  let hi = 0;
  for (const mt of mats) for (const v of mt.m || []) if (Number.isFinite(v)) hi = Math.max(hi, Math.abs(v));
  hi = hi || 1;
  mats.forEach((mt, i) => {
    const x = (i % perRow) * (size + pad), y = Math.floor(i / perRow) * (size + labelH + pad);
    g.fillStyle = css('--fg', '#e8e6f0');
    g.fillText(`L${mt.layer}`, x, y);
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 4; c++) {
        g.fillStyle = rampColor(Math.abs(mt.m?.[r * 4 + c] ?? 0) / hi);
        g.fillRect(x + c * cell, y + labelH + r * cell, cell - 1, cell - 1);
      }
    }
  });
  canvas.dataset.layers = String(mats.length);
  canvas.setAttribute('aria-label', `mHC mixing matrices of ${mats.length} layers, colour scale 0 to ${hi.toFixed(2)}`);
}

/** drawEmpty draws a placeholder message on a canvas. */
export function drawEmpty(canvas, text) {
  const width = Math.max(200, canvas.parentElement?.clientWidth || 320);
  const g = fitCanvas(canvas, width, 40);
  g.clearRect(0, 0, width, 40);
  g.fillStyle = css('--muted', '#8a87a0');
  g.font = '12px system-ui, sans-serif';
  g.textBaseline = 'middle';
  g.fillText(text, 4, 20);
  canvas.dataset.selected = '0';
  canvas.dataset.layers = '0';
  canvas.setAttribute('aria-label', text);
}

/** human formats a byte count. */
export function human(b) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return `${i === 0 ? b : b.toFixed(b >= 100 ? 0 : b >= 10 ? 1 : 2)} ${u[i]}`;
}

/** count formats a parameter count (1.2B, 340M, 12.3K). */
export function count(n) {
  if (n >= 1e12) return `${(n / 1e12).toFixed(2)}T`;
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

/** kindClass maps a layer kind onto a CSS class. */
function kindClass(kind) {
  if (kind === 'window') return 'k-window';
  if (kind === 'CSA' || kind.startsWith('CSA2')) return 'k-csa';
  if (kind === 'HCA') return 'k-hca';
  return 'k-other';
}

/**
 * renderModel fills the model panel from /api/model.
 * @param {HTMLElement} root
 * @param {any} mi ModelInfo
 */
export function renderModel(root, mi) {
  root.replaceChildren();
  const facts = el('dl', { class: 'facts' });
  const add = (k, v) => facts.append(el('dt', { text: k }), el('dd', { text: v }));
  add('architecture', mi.architecture + (mi.name ? ` · ${mi.name}` : ''));
  add('hidden / layers / heads', `${mi.dim} / ${mi.layers} / ${mi.heads} (head ${mi.head_dim}, rope ${mi.rope_dim})`);
  add('experts', `${mi.experts} routed, top ${mi.experts_top_k}, ${mi.shared_experts} shared`);
  add('vocabulary', mi.vocab.toLocaleString('en'));
  add('window / indexer top-k', `${mi.window} / ${mi.index_top_k}`);
  add('mHC streams', String(mi.hc_mult));
  add('context limit', `${mi.context_limit.toLocaleString('en')} tokens`);
  root.append(el('h3', { text: 'Architecture' }), facts);

  if (mi.params && mi.params.length) {
    const t = el('table', { class: 'params' });
    t.append(el('caption', { text: `Parameters: ${count(mi.total_params)} in ${human(mi.total_bytes)}` }));
    const head = el('tr');
    for (const h of ['dtype', 'tensors', 'parameters', 'bytes']) head.append(el('th', { scope: 'col', text: h }));
    t.append(el('thead', {}, head));
    const body = el('tbody');
    for (const p of mi.params) {
      body.append(el('tr', {}, el('th', { scope: 'row', text: p.label }), el('td', { text: String(p.tensors) }),
        el('td', { text: p.scale ? '—' : count(p.params) }), el('td', { text: human(p.bytes) })));
    }
    t.append(body);
    root.append(el('h3', { text: 'Parameters by dtype' }), t);
  }

  const sched = el('ol', { class: 'schedule', 'aria-label': 'layer schedule' });
  for (const l of mi.schedule) {
    const label = l.ratio ? `${l.kind} ×${l.ratio}` : l.kind;
    const li = el('li', { class: `layer ${kindClass(l.kind)}`, title: `layer ${l.layer}: ${label}${l.hash ? ', hash-routed' : ''}${l.engram ? ', Engram' : ''}` },
      el('span', { class: 'ln', text: String(l.layer) }), el('span', { class: 'lk', text: l.kind }),
      el('span', { class: 'lr', text: l.ratio ? `×${l.ratio}` : '' }));
    sched.append(li);
  }
  const legend = el('p', { class: 'legend' },
    el('span', { class: 'chip k-window', text: 'window' }), ' sliding window only  ',
    el('span', { class: 'chip k-csa', text: 'CSA' }), ' compressed + sparse (indexer)  ',
    el('span', { class: 'chip k-hca', text: 'HCA' }), ' heavily compressed');
  root.append(el('h3', { text: 'Layer schedule' }), sched, legend);

  const c = mi.cache;
  const cache = el('dl', { class: 'facts' });
  cache.append(el('dt', { text: 'per token' }), el('dd', { text: `${c.per_token_bytes.toFixed(1)} B` }));
  for (const [k, v] of Object.entries(c.per_kind || {}).sort()) {
    cache.append(el('dt', { text: `  ${k}` }), el('dd', { text: `${v.toFixed(1)} B/token` }));
  }
  cache.append(el('dt', { text: 'fixed per sequence' }), el('dd', { text: human(c.fixed_bytes) }));
  cache.append(el('dt', { text: `at ${mi.context_limit.toLocaleString('en')} tokens` }),
    el('dd', { text: human(c.fixed_bytes + c.per_token_bytes * mi.context_limit) }));
  root.append(el('h3', { text: 'Cache' }), cache);
}
