/*
 * app.js — the page's logic.  It only calls this server's API:
 *   GET /api/0/services                                  the service list
 *   GET /api/0/profiles?service&type&labels&from&to      profiles over time
 *   GET /api/0/profiles/merge?...&format=folded|top      flame graph, top
 *   GET /api/0/profiles/diff?...&base_from&base_to&...   the same, diffed
 * The state is the URL query, named as the API names it (service, type,
 * labels, from, to, base_from, base_to, sample), so a link is shareable.
 * The flame graph is drawn here from the folded stacks (one div per frame
 * at least a pixel wide), so zoom and search need no round trip.
 * window.profefsTimes records when the parts showed (ms since navigation
 * start), for tests/integration/web_page.sh and scripts/bench.
 */
'use strict';

const $ = (id) => document.getElementById(id);
const PARAMS = ['service', 'type', 'sample', 'labels', 'from', 'to', 'base_from', 'base_to'];
const PRESETS = [['15m', 900], ['1h', 3600], ['6h', 21600], ['24h', 86400], ['7d', 604800], ['30d', 2592000]];
const SAMPLES = {
  cpu: ['cpu', 'samples'],
  heap: ['inuse_space', 'inuse_objects', 'alloc_space', 'alloc_objects'],
  block: ['delay', 'contentions'],
  mutex: ['delay', 'contentions'],
  goroutine: ['goroutine'],
  threadcreate: ['threadcreate'],
  other: [],
};
const ROW = 18;                 /* px per flame graph row */
const times = (window.profefsTimes = {});
let loadSeq = 0;                /* the latest load; older answers are dropped */
let flame = null;               /* the drawn flame graph's state */
let topUnit = null;             /* the unit the top table gave, when it came first */

/* ---- times ------------------------------------------------------------- */

const UNITS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/* Seconds of a duration like "1h30m", or NaN. */
function parseDur(s) {
  let total = 0, m;
  const re = /(\d+)([smhdw])/y;
  if (s === '') return NaN;
  while (re.lastIndex < s.length) {
    if (!(m = re.exec(s))) return NaN;
    total += Number(m[1]) * UNITS[m[2]];
  }
  return total;
}

function fmtDur(sec) {
  let out = '';
  for (const [u, n] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
    if (sec >= n) { out += Math.floor(sec / n) + u; sec %= n; }
  }
  return out || '0s';
}

/* Unix seconds of a time as the API takes it (meta_time_parse), or NaN. */
function parseTime(s, now) {
  s = (s || '').trim();
  let m;
  if ((m = /^now(?:([+-])(\w+))?$/.exec(s))) {
    if (!m[1]) return now;
    const d = parseDur(m[2]);
    return m[1] === '-' ? now - d : now + d;
  }
  if (/^\d+$/.test(s)) return Number(s);
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$/.test(s)) s += 'Z';
  const t = Date.parse(s);
  return isNaN(t) ? NaN : Math.floor(t / 1000);
}

/* A time shifted by sec seconds, kept relative to now when it was. */
function shiftTime(s, sec, now) {
  const m = /^now(?:([+-])(\w+))?$/.exec(s.trim());
  if (m) {
    const off = (m[1] ? (m[1] === '-' ? -1 : 1) * parseDur(m[2]) : 0) + sec;
    return off === 0 ? 'now' : 'now' + (off < 0 ? '-' : '+') + fmtDur(Math.abs(off));
  }
  return utc(parseTime(s, now) + sec);
}

function utc(t) { return new Date(t * 1000).toISOString().slice(0, 19); }
function nowSec() { return Math.floor(Date.now() / 1000); }

/* ---- numbers ----------------------------------------------------------- */

/* The unit of the values of a type's sample (the folded stacks carry none):
 * pprof's defaults are cpu: cpu (ns), heap: inuse_space, block/mutex: delay. */
function unitOf(type, sample) {
  const s = sample || (SAMPLES[type] || [])[0] || '';
  if (/space|bytes/.test(s)) return 'bytes';
  if (s === 'cpu' || s === 'delay' || /nanos/.test(s)) return 'ns';
  return '';
}

function fmtVal(v, unit) {
  const a = Math.abs(v);
  const pick = (steps) => {
    for (const [n, u] of steps) if (a >= n) return +(v / n).toPrecision(3) + u;
    return String(v);
  };
  if (unit === 'ns') return pick([[3600e9, 'h'], [60e9, 'min'], [1e9, 's'], [1e6, 'ms'], [1e3, 'us'], [1, 'ns']]);
  if (unit === 'bytes') return pick([[2 ** 40, 'TB'], [2 ** 30, 'GB'], [2 ** 20, 'MB'], [2 ** 10, 'kB'], [1, 'B']]);
  return pick([[1e9, 'G'], [1e6, 'M'], [1e3, 'k'], [1, '']]);
}

function pct(a, b) { return b ? (100 * a / b).toFixed(2) + '%' : '-'; }

function esc(s) {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
}

/* ---- state <-> URL and form --------------------------------------------- */

function readURL() {
  const q = new URLSearchParams(location.search), st = {};
  for (const k of PARAMS) st[k] = q.get(k) || '';
  if (!st.type) st.type = 'cpu';
  if (!st.from) st.from = 'now-1h';
  if (!st.to) st.to = 'now';
  return st;
}

/* A query string; ':', ',', '/' and '=' stay as they are (the server
 * takes them so), which keeps links and command lines readable. */
function toQuery(st, keys) {
  const enc = (v) => encodeURIComponent(v).replace(/%3A/gi, ':').replace(/%2C/gi, ',')
    .replace(/%2F/gi, '/').replace(/%3D/gi, '=');
  return keys.filter((k) => st[k]).map((k) => k + '=' + enc(st[k])).join('&');
}

function readForm() {
  const st = {};
  for (const k of PARAMS) st[k] = $(k).value.trim();
  if (!$('diff').checked) st.base_from = st.base_to = '';
  return st;
}

function fillForm(st) {
  const svc = $('service');
  if (st.service && ![...svc.options].some((o) => o.value === st.service))
    svc.add(new Option(st.service, st.service));
  for (const k of PARAMS) if (k !== 'sample') $(k).value = st[k];
  fillSamples(st.type, st.sample);
  $('diff').checked = !!(st.base_from || st.base_to);
  if ($('diff').checked) $('baserow').hidden = false;
  else $('baserow').hidden = true;
  markPresets();
}

function fillSamples(type, want) {
  const sel = $('sample');
  sel.length = 1;
  for (const s of SAMPLES[type] || []) sel.add(new Option(s, s));
  if (want && ![...sel.options].some((o) => o.value === want)) sel.add(new Option(want, want));
  sel.value = want || '';
}

function markPresets() {
  const from = $('from').value.trim(), to = $('to').value.trim();
  for (const b of $('presets').children)
    b.classList.toggle('on', to === 'now' && from === 'now-' + b.textContent);
}

/* ---- fetching ------------------------------------------------------------ */

/* The text of a GET, or throws an Error carrying the server's reason. */
async function getText(url) {
  const r = await fetch(url);
  const body = await r.text();
  if (!r.ok) {
    let why = body;
    try { why = JSON.parse(body).error || body; } catch (e) { /* not JSON */ }
    const err = new Error(why.trim() || r.statusText);
    err.status = r.status;
    throw err;
  }
  /* a server older than the views answers every format with the pprof */
  if ((r.headers.get('Content-Type') || '').startsWith('application/octet-stream'))
    throw new Error('this server answers no format=' + new URL(url, location.href).searchParams.get('format') +
      ' (it predates the views)');
  return body;
}

function viewURL(st, format) {
  const diff = !!st.base_from;
  const keys = ['service', 'type', 'labels', 'from', 'to', 'sample'];
  if (diff) keys.push('base_from', 'base_to');
  return '/api/0/profiles/' + (diff ? 'diff' : 'merge') + '?' + toQuery(st, keys) +
    '&format=' + format;
}

function mergeURL(st, from, to) {
  return '/api/0/profiles/merge?' +
    toQuery({ ...st, from, to }, ['service', 'type', 'labels', 'from', 'to']);
}

function showMsg(text, note) {
  const m = $('msg');
  m.hidden = !text;
  m.textContent = text || '';
  m.classList.toggle('note', !!note);
}

/* ---- the histogram of profiles over time -------------------------------- */

const NBINS = 80;

async function loadHistogram(st, seq, now) {
  const ranges = [['target', st.from, st.to]];
  if (st.base_from) ranges.push(['base', st.base_from, st.base_to]);
  const lists = await Promise.all(ranges.map(async ([kind, from, to]) => {
    const url = '/api/0/profiles?' + toQuery({ ...st, from, to }, ['service', 'type', 'labels', 'from', 'to']);
    try {
      return { kind, from, to, items: JSON.parse(await getText(url)).body || [] };
    } catch (e) {
      if (e.status === 404) return { kind, from, to, items: [] };
      throw e;
    }
  }));
  if (seq !== loadSeq) return;
  let lo = Infinity, hi = -Infinity;
  for (const l of lists) {
    l.t0 = parseTime(l.from, now); l.t1 = parseTime(l.to, now);
    lo = Math.min(lo, l.t0); hi = Math.max(hi, l.t1);
  }
  drawHistogram(lists, lo, hi);
  times.histogram = performance.now();
}

function drawHistogram(lists, lo, hi) {
  const W = 1000, H = 110, B = 18, span = Math.max(1, hi - lo);
  const bins = lists.map(() => new Array(NBINS).fill(0));
  let max = 0, total = [];
  lists.forEach((l, k) => {
    for (const p of l.items) {
      const t = Date.parse(p.created_at) / 1000;
      const i = Math.min(NBINS - 1, Math.max(0, Math.floor((t - lo) / span * NBINS)));
      max = Math.max(max, ++bins[k][i]);
    }
    total.push(l.items.length);
  });
  const bw = W / NBINS;
  let svg = `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" id="histsvg">`;
  lists.forEach((l, k) => {
    bins[k].forEach((n, i) => {
      if (!n) return;
      const h = (H - B - 4) * n / max, w = lists.length > 1 ? bw / 2 : bw;
      const x = i * bw + (k ? w : 0);
      const a = utc(lo + span * i / NBINS), b = utc(lo + span * (i + 1) / NBINS);
      svg += `<rect class="bar ${l.kind}" x="${x + 0.5}" y="${H - B - h}" width="${Math.max(1, w - 1)}" height="${h}">` +
        `<title>${n} ${l.kind === 'base' ? 'base ' : ''}profile${n > 1 ? 's' : ''}, ${a}Z .. ${b}Z</title></rect>`;
    });
  });
  svg += `<line x1="0" x2="${W}" y1="${H - B}" y2="${H - B}" stroke="#c4c9d2" />`;
  svg += `</svg>`;
  const axis = `<div class="axisrow"><span>${utc(lo)}Z</span><span>${utc(lo + span / 2)}Z</span><span>${utc(hi)}Z</span></div>`;
  $('hist').innerHTML = svg + axis;
  $('hist').dataset.lo = lo; $('hist').dataset.hi = hi;
  const parts = lists.map((l, k) => lists.length > 1
    ? `${total[k]} in the ${l.kind === 'base' ? 'base (violet)' : 'target (blue)'} range`
    : `${total[k]} in the range`);
  $('count').textContent = '— ' + parts.join(', ') + (lists.some((l) => l.items.length) ? ' (drag to pick a range)' : '');
  if (!lists.some((l) => l.items.length))
    $('hist').innerHTML = '<div class="dim">no profiles in this range</div>';
  if ($('histsvg')) brush($('histsvg'), lo, span, W);
}

/* Dragging across the histogram picks a new range (absolute times). */
function brush(svg, lo, span, W) {
  let x0 = null, rect = null;
  const at = (e) => {
    const r = svg.getBoundingClientRect();
    return Math.min(W, Math.max(0, (e.clientX - r.left) / r.width * W));
  };
  svg.addEventListener('pointerdown', (e) => {
    x0 = at(e);
    svg.setPointerCapture(e.pointerId);
    rect = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
    rect.setAttribute('class', 'brush');
    rect.setAttribute('y', 0); rect.setAttribute('height', 92);
    svg.appendChild(rect);
    e.preventDefault();
  });
  svg.addEventListener('pointermove', (e) => {
    if (x0 === null) return;
    const x = at(e);
    rect.setAttribute('x', Math.min(x, x0)); rect.setAttribute('width', Math.abs(x - x0));
  });
  svg.addEventListener('pointerup', (e) => {
    if (x0 === null) return;
    const x = at(e), a = Math.min(x, x0), b = Math.max(x, x0);
    x0 = null;
    rect.remove();
    if (b - a < 3) return;
    $('from').value = utc(Math.floor(lo + span * a / W));
    $('to').value = utc(Math.ceil(lo + span * b / W));
    submit();
  });
}

/* ---- the flame graph ------------------------------------------------------ */

/* The tree of folded stacks: "a;b;c V" (merge) or "a;b;c BASE TARGET"
 * (diff).  Node: {n name, v value, b base value, c children, p parent}. */
function parseFolded(text, diff) {
  const root = { n: 'all', v: 0, b: 0, c: new Map(), p: null };
  let start = 0;
  const len = text.length;
  while (start < len) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = len;
    const line = text.slice(start, end);
    start = end + 1;
    let sp = line.lastIndexOf(' ');
    if (sp < 0) continue;
    const v = Number(line.slice(sp + 1));
    let b = 0, stack;
    if (diff) {
      const sp2 = line.lastIndexOf(' ', sp - 1);
      if (sp2 < 0) continue;
      b = Number(line.slice(sp2 + 1, sp));
      stack = line.slice(0, sp2);
    } else {
      stack = line.slice(0, sp);
    }
    if (!(v >= 0) || !(b >= 0) || (v === 0 && b === 0)) continue;
    let node = root;
    node.v += v; node.b += b;
    for (const name of stack.split(';')) {
      let ch = node.c.get(name);
      if (!ch) { ch = { n: name, v: 0, b: 0, c: new Map(), p: node }; node.c.set(name, ch); }
      ch.v += v; ch.b += b;
      node = ch;
    }
  }
  /* children as arrays, the biggest first (the hottest path on the left) */
  const stackFix = [root];
  while (stackFix.length) {            /* iterative: stacks may be deep */
    const n = stackFix.pop();
    n.c = [...n.c.values()].sort((x, y) => y.v - x.v || y.b - x.b);
    for (const ch of n.c) stackFix.push(ch);
  }
  return root;
}

/* A stable colour per package (hue) and function (lightness). */
function hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

function pkgOf(name) {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  return dot > 0 ? name.slice(0, dot) : name;
}

function colour(node, f) {
  if (f.diff) {
    /* shares of each side's total: a longer base range is not "all blue" */
    const d = node.v / (f.root.v || 1) - node.b / (f.root.b || 1);
    const k = Math.min(1, Math.abs(d) / (f.maxDelta || 1));
    const l = 96 - 36 * k;
    return d >= 0 ? `hsl(0,85%,${l}%)` : `hsl(220,85%,${l}%)`;
  }
  const hp = hash(pkgOf(node.n)), hf = hash(node.n);
  return `hsl(${8 + hp % 42},${70 + hp % 20}%,${60 + hf % 16}%)`;
}

function maxDelta(root) {
  let m = 0;
  const st = [root];
  while (st.length) {
    const n = st.pop();
    const d = Math.abs(n.v / (root.v || 1) - n.b / (root.b || 1));
    if (d > m) m = d;
    for (const ch of n.c) st.push(ch);
  }
  return m;
}

function showFlame(text, st) {
  const diff = !!st.base_from;
  const root = parseFolded(text, diff);
  flame = { root, zoom: root, diff, unit: topUnit !== null ? topUnit : unitOf(st.type, st.sample), nodes: [], re: null };
  if (diff) flame.maxDelta = maxDelta(root);
  $('legend').textContent = diff
    ? 'width: the target range; red grew, blue shrank (as shares of each range\'s total)'
    : 'width: share of the total; colour: package';
  $('info').textContent = 'hover a frame for its value; click to zoom on it';
  drawFlame();
  times.flame = performance.now();
}

/* Draws the frames under flame.zoom at least a pixel wide; the zoomed
 * frame's ancestors span the whole width above it. */
function drawFlame() {
  const f = flame, el = $('flame');
  if (!f) return;
  if (f.root.v === 0) {
    el.innerHTML = '<div class="none">no samples with a value in this range' +
      (f.diff ? ' (the target range is empty; the base holds ' + fmtVal(f.root.b, f.unit) + ')' : '') + '</div>';
    el.style.height = '';
    return;
  }
  const W = el.clientWidth || 1000, total = f.zoom.v, min = total / W, text = 24 * min;
  const html = [];
  f.nodes = [];
  const anc = [];
  for (let n = f.zoom.p; n; n = n.p) anc.unshift(n);
  /* frames too narrow for a few letters carry no text: laying out
   * thousands of clipped labels is what costs most */
  const put = (n, depth, x, w, cls) => {
    const i = f.nodes.push(n) - 1;
    const m = f.re && f.re.test(n.n) ? ' m' : '';
    html.push(`<div class="f${cls}${m}" data-i="${i}" style="left:${(100 * x / total).toFixed(4)}%;` +
      `width:${(100 * w / total).toFixed(4)}%;top:${depth * ROW}px;background:${colour(n, f)}">` +
      `${w >= text ? esc(n.n) : ''}</div>`);
  };
  anc.forEach((n, d) => put(n, d, 0, total, ' anc'));
  let maxDepth = anc.length;
  const work = [[f.zoom, anc.length, 0]];
  while (work.length) {
    const [n, depth, x] = work.pop();
    put(n, depth, x, n.v, '');
    if (depth > maxDepth) maxDepth = depth;
    let cx = x;
    for (const ch of n.c) {
      if (ch.v < min) break;             /* sorted: the rest are narrower */
      work.push([ch, depth + 1, cx]);
      cx += ch.v;
    }
  }
  el.innerHTML = html.join('');
  el.style.height = (maxDepth + 1) * ROW + 'px';
  el.classList.toggle('searching', !!f.re);
  $('flamewhat').textContent = f.zoom === f.root ? '' : '— zoomed on ' + f.zoom.n;
  matched();
}

/* The share of the samples under frames the search matches (a match under
 * a match is counted once). */
function matched() {
  const f = flame;
  if (!f || !f.re) { $('matched').textContent = ''; return; }
  let sum = 0;
  const st = [f.zoom];
  while (st.length) {
    const n = st.pop();
    if (f.re.test(n.n)) { sum += n.v; continue; }
    for (const ch of n.c) st.push(ch);
  }
  $('matched').textContent = `matched: ${pct(sum, f.zoom.v)} (${fmtVal(sum, f.unit)})`;
}

function setSearch(text) {
  $('search').value = text;
  if (!flame) return;
  if (!text) flame.re = null;
  else {
    try { flame.re = new RegExp(text, 'i'); }
    catch (e) { flame.re = new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i'); }
  }
  /* marks the drawn frames in place: no new layout */
  const el = $('flame');
  if (el.children.length !== flame.nodes.length) { drawFlame(); return; }
  flame.nodes.forEach((n, i) => el.children[i].classList.toggle('m', !!flame.re && flame.re.test(n.n)));
  el.classList.toggle('searching', !!flame.re);
  matched();
}

function frameInfo(n) {
  const f = flame;
  if (f.diff) {
    const bs = n.b / (f.root.b || 1), ts = n.v / (f.root.v || 1);
    const d = ts - bs;
    return `${n.n} — target ${fmtVal(n.v, f.unit)} (${pct(n.v, f.root.v)}), base ${fmtVal(n.b, f.unit)} (${pct(n.b, f.root.b)}), share ${d >= 0 ? '+' : ''}${(100 * d).toFixed(2)} points`;
  }
  return `${n.n} — ${fmtVal(n.v, f.unit)}, ${pct(n.v, f.root.v)} of all` +
    (f.zoom !== f.root ? `, ${pct(n.v, f.zoom.v)} of the zoomed frame` : '');
}

function flameEvents() {
  const el = $('flame');
  el.addEventListener('mouseover', (e) => {
    const i = e.target.dataset && e.target.dataset.i;
    if (i !== undefined && flame) $('info').textContent = frameInfo(flame.nodes[i]);
  });
  el.addEventListener('click', (e) => {
    const i = e.target.dataset && e.target.dataset.i;
    if (i === undefined || !flame) return;
    flame.zoom = flame.nodes[i];
    drawFlame();
  });
  const reset = () => { if (flame) { flame.zoom = flame.root; drawFlame(); } };
  $('reset').addEventListener('click', reset);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && e.target === document.body) reset();
  });
  let timer = null;
  $('search').addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => setSearch($('search').value), 150);
  });
  let rz = null;
  window.addEventListener('resize', () => { clearTimeout(rz); rz = setTimeout(drawFlame, 150); });
}

/* ---- the top table --------------------------------------------------------- */

/* The unit names of pprof as fmtVal knows them. */
function unitName(u) { return u === 'nanoseconds' ? 'ns' : u === 'bytes' ? 'bytes' : ''; }

/* format=json: {"sample_type", "unit", "total", "rows": [{name, flat, cum}]},
 * the rows sorted by flat as `go tool pprof -top` sorts them. */
function showTop(text, st) {
  const t = JSON.parse(text), rows = t.rows || [];
  const unit = unitName(t.unit);
  if (flame) flame.unit = unit;
  topUnit = unit;
  const diff = !!st.base_from;
  /* a diff's percentages are of the base's total, as pprof's -diff_base */
  $('topwhat').textContent = `— ${t.sample_type} (${t.unit}), ${diff ? 'target minus base; % of the base\'s total' : 'total'} ` +
    `${fmtVal(t.total, unit)}, ${rows.length} functions; click one to find it in the flame graph`;
  const cls = (v) => (diff && v ? (v < 0 ? ' neg' : ' pos') : '');
  let sum = 0;
  const h = ['<thead><tr><th>flat</th><th>flat%</th><th>sum%</th><th>cum</th><th>cum%</th>' +
    '<th class="name">name</th></tr></thead><tbody>'];
  for (const r of rows) {
    sum += r.flat;
    h.push(`<tr data-flat="${r.flat}" data-cum="${r.cum}"><td class="${cls(r.flat)}">${fmtVal(r.flat, unit)}</td>` +
      `<td>${pct(r.flat, t.total)}</td><td>${pct(sum, t.total)}</td>` +
      `<td class="${cls(r.cum)}">${fmtVal(r.cum, unit)}</td><td>${pct(r.cum, t.total)}</td>` +
      `<td class="name">${esc(r.name)}</td></tr>`);
  }
  h.push('</tbody>');
  $('top').innerHTML = rows.length ? h.join('') : '<tr><td class="name dim">no rows</td></tr>';
  times.top = performance.now();
}

/* ---- links and command line --------------------------------------------------- */

function showLinks(st) {
  const origin = location.origin, q = (s) => "'" + s.replace(/'/g, "'\\''") + "'";
  $('dl_pprof').href = viewURL(st, 'pprof');
  $('dl_pprof').download = `${st.service}-${st.type}${st.base_from ? '-diff' : ''}.pb.gz`;
  $('dl_folded').href = viewURL(st, 'folded');
  $('dl_folded').download = `${st.service}-${st.type}${st.base_from ? '-diff' : ''}.folded`;
  $('dl_svg').href = viewURL(st, 'svg');
  $('dl_top').href = viewURL(st, 'top');
  const sample = st.sample ? ` -sample_index=${st.sample}` : '';
  let cmd;
  if (st.base_from)
    cmd = `go tool pprof${sample} -diff_base ${q(origin + mergeURL(st, st.base_from, st.base_to))} ${q(origin + mergeURL(st, st.from, st.to))}`;
  else
    cmd = `go tool pprof${sample} ${q(origin + mergeURL(st, st.from, st.to))}`;
  $('cmd').textContent = cmd + `\n# or in a browser, with Go's own UI:\ngo tool pprof -http=: ${q(origin + viewURL(st, 'pprof'))}`;
}

/* ---- loading --------------------------------------------------------------- */

async function loadServices(st) {
  try {
    const names = JSON.parse(await getText('/api/0/services')).body || [];
    const svc = $('service'), keep = svc.value;
    svc.length = 0;
    for (const n of names) svc.add(new Option(n, n));
    if (keep && !names.includes(keep)) svc.add(new Option(keep, keep));
    if (keep) svc.value = keep;
    if (!st.service && names.length) st.service = names[0];
    return names.length;
  } catch (e) {
    if (e.status !== 404) throw e;
    return 0;
  }
}

async function load(st) {
  const seq = ++loadSeq, now = nowSec();
  fillForm(st);
  document.title = st.service ? `${st.service} ${st.type}${st.base_from ? ' diff' : ''} — profefs` : 'profefs';
  showMsg('');
  times.start = performance.now();
  if (!st.service) {
    showMsg('No profiles are stored yet: send some with POST /api/0/profiles (see the README), then reload.', true);
    return;
  }
  for (const k of ['from', 'to', 'base_from', 'base_to']) {
    if (st[k] && isNaN(parseTime(st[k], now))) {
      showMsg(`"${st[k]}" is not a time (${k}): use now, now-1h, 2026-01-02T15:04:05 or unix seconds.`);
      return;
    }
  }
  if (!!st.base_from !== !!st.base_to) {
    showMsg('A diff needs both base_from and base_to.');
    return;
  }
  showLinks(st);
  $('flame').innerHTML = '<div class="none">loading…</div>';
  $('top').innerHTML = '';
  flame = null;
  topUnit = null;
  const errors = [];
  const part = (name, p) => p.catch((e) => {
    if (seq === loadSeq) errors.push({ part: name, why: `${e.message}${e.status ? ` (HTTP ${e.status})` : ''}` });
    return null;
  });
  const hist = part('profiles over time', loadHistogram(st, seq, now));
  const fl = part('flame graph', getText(viewURL(st, 'folded')).then((t) => {
    if (seq === loadSeq) showFlame(t, st);
  }));
  const tp = part('top', getText(viewURL(st, 'json')).then((t) => {
    if (seq === loadSeq) showTop(t, st);
  }));
  await Promise.all([hist, fl, tp]);
  if (seq !== loadSeq) return;
  if (errors.length) {
    const what = `${st.service} / ${st.type}${st.labels ? ' / ' + st.labels : ''}, ${st.from} .. ${st.to}` +
      (st.base_from ? ` against ${st.base_from} .. ${st.base_to}` : '');
    /* the flame graph and the top table usually fail for the same reason */
    const why = errors.map((e) => e.why);
    const text = why.every((w) => w === why[0]) ? why[0] : errors.map((e) => `${e.part}: ${e.why}`).join('\n');
    const hint = errors.every((e) => /^nothing found/.test(e.why))
      ? '\nNo profile matches: try a wider range, another type or fewer labels.' : '';
    showMsg(`Nothing to show for ${what}. The server said: ${text}${hint}`);
    if (!flame) $('flame').innerHTML = '<div class="none">no flame graph for this range</div>';
  }
  times.done = performance.now();
}

function submit() {
  const st = readForm();
  const url = '?' + toQuery(st, PARAMS);
  if (url !== location.search) history.pushState(null, '', url);
  load(st);
}

function presets() {
  for (const [name, sec] of PRESETS) {
    const b = document.createElement('button');
    b.type = 'button'; b.textContent = name; b.title = `the last ${name}`;
    b.addEventListener('click', () => { $('from').value = 'now-' + fmtDur(sec); $('to').value = 'now'; submit(); });
    $('presets').appendChild(b);
  }
  for (const [name, f] of [
    ['previous period', (a, b, now) => parseTime(a, now) - parseTime(b, now)],
    ['a day before', () => -86400],
    ['a week before', () => -604800],
  ]) {
    const b = document.createElement('button');
    b.type = 'button'; b.textContent = name;
    b.addEventListener('click', () => {
      const now = nowSec(), from = $('from').value.trim(), to = $('to').value.trim();
      const d = f(from, to, now);
      if (isNaN(d)) return;
      $('base_from').value = shiftTime(from, d, now);
      $('base_to').value = shiftTime(to, d, now);
      submit();
    });
    $('basepresets').appendChild(b);
  }
}

async function main() {
  presets();
  flameEvents();
  $('query').addEventListener('submit', (e) => { e.preventDefault(); submit(); });
  $('type').addEventListener('change', () => fillSamples($('type').value, ''));
  $('diff').addEventListener('change', () => {
    $('baserow').hidden = !$('diff').checked;
    if ($('diff').checked && !$('base_from').value) $('basepresets').firstChild.click();
    else if (!$('diff').checked) submit();
  });
  $('top').addEventListener('click', (e) => {
    const tr = e.target.closest('tbody tr');
    if (tr && tr.lastChild) setSearch('^' + tr.lastChild.textContent.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$');
  });
  $('cmd').addEventListener('click', () => getSelection().selectAllChildren($('cmd')));
  window.addEventListener('popstate', () => load(readURL()));
  const st = readURL();
  const services = loadServices(st).catch((e) => showMsg('Cannot list the services: ' + e.message));
  if (st.service) {       /* a link names it: no need to wait for the list */
    load(st);
    return;
  }
  await services;
  if (st.service)
    history.replaceState(null, '', '?' + toQuery(st, PARAMS));
  load(st);
}

/* for tests and the console: draw folded stacks given as text */
window.profefs = { showFlame, setSearch, parseFolded };

main();
