// watchsim timeline page: draws the run in #timeline-data (one row per step, one column per
// lane), keeps a current step (the cursor) with its details and each lane's state, and offers
// zoom and step-by-step navigation. No network: everything is in this file. Only the rows in
// view are drawn, so twenty thousand steps scroll as smoothly as twenty.
'use strict';
(() => {
  const D = JSON.parse(document.getElementById('timeline-data').textContent);
  const N = D.steps.length;
  const BASE_ROW = 22;
  const GUTTER = 136;
  const LABEL_ROOM = 520;
  const LABEL_MIN = 300;
  const LABEL_CHARS = 76;
  const MIN_ROW = 0.02;
  const MAX_ROW = 88;
  const $ = (id) => document.getElementById(id);
  const view = { cursor: 1, rowH: BASE_ROW, laneW: 160, queued: false };
  const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));
  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);

  // Violations by step; the earliest one is the page's violation.
  const violationsAt = new Map();
  for (const v of D.violations) {
    if (!violationsAt.has(v.step)) violationsAt.set(v.step, []);
    violationsAt.get(v.step).push(v);
  }
  const firstViolation = D.violations.reduce((a, v) => (a && a.step <= v.step ? a : v), null);
  const faults = D.steps.filter((s) => s.kind === 'fault').map((s) => s.n);

  // Each lane's state changes, so the state at any step is a binary search away.
  const initial = D.lanes.map(() => '');
  const changes = D.lanes.map(() => []);
  for (const [lane, text] of D.initial) initial[lane] = text;
  for (const s of D.steps) for (const [lane, text] of s.state || []) changes[lane].push([s.n, text]);

  function stateAt(lane, n) {
    const c = changes[lane];
    let lo = 0;
    let hi = c.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (c[mid][0] <= n) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 ? c[lo - 1][1] : initial[lane];
  }

  const changedAt = (lane, n) => (D.steps[n - 1]?.state || []).some(([l]) => l === lane);
  const laneX = (i) => GUTTER + view.laneW * i + view.laneW / 2;
  const kindOf = (i) => (i === undefined ? 'faults' : D.lanes[i].kind);
  const chartWidth = () => GUTTER + view.laneW * D.lanes.length + LABEL_ROOM;

  function headCell(cls, text) {
    const el = document.createElement('div');
    el.className = cls;
    el.textContent = text;
    return el;
  }

  // The lane heads: the actor, a client's instance name, and the lane's state at the cursor.
  function buildHeads() {
    const heads = $('lane-heads');
    heads.appendChild(headCell('gutter-head', 'step · time (s)'));
    for (const l of D.lanes) {
      const el = document.createElement('div');
      el.className = 'lane';
      el.dataset.lane = l.name;
      el.dataset.kind = l.kind;
      el.title = l.title;
      el.append(headCell('lane-name', l.name), headCell('lane-sub', l.instance || ' '), headCell('lane-state', ''));
      heads.appendChild(el);
    }
    heads.appendChild(headCell('label-head', 'event: what it carried → result'));
    heads.appendChild(headCell('label-spacer', ''));
  }

  function layout() {
    const sc = $('scroller');
    const room = sc.clientWidth - GUTTER - LABEL_MIN;
    view.laneW = clamp(Math.floor(room / Math.max(1, D.lanes.length)), 84, 240);
    const heads = $('lane-heads');
    heads.style.marginRight = sc.offsetWidth - sc.clientWidth + 'px';
    heads.querySelector('.gutter-head').style.width = GUTTER + 'px';
    for (const el of heads.querySelectorAll('.lane')) el.style.width = view.laneW + 'px';
    heads.querySelector('.label-head').style.width = LABEL_MIN + 'px';
    heads.querySelector('.label-spacer').style.width = LABEL_ROOM - LABEL_MIN + 'px';
    $('rows').style.height = Math.ceil(N * view.rowH) + 'px';
    $('rows').style.width = chartWidth() + 'px';
    const pct = (view.rowH / BASE_ROW) * 100;
    $('zoom-level').textContent = (pct >= 10 ? Math.round(pct) : pct >= 1 ? pct.toFixed(1) : pct.toPrecision(2)) + '%';
  }

  function arrow(x1, x2, y, s, from) {
    const dir = x2 > x1 ? 1 : -1;
    const hs = clamp(view.rowH / 3, 2, 6);
    const tip = x2 - dir * 3;
    const cls = 'arrow k-' + s.kind + ' from-' + kindOf(from);
    let end = '<polygon points="' + tip + ',' + y + ' ' + (tip - dir * hs * 1.6) + ',' + (y - hs) +
      ' ' + (tip - dir * hs * 1.6) + ',' + (y + hs) + '"/>';
    if (s.kind === 'dropped') {
      end = '<path d="M' + (tip - hs) + ',' + (y - hs) + 'L' + (tip + hs) + ',' + (y + hs) + 'M' +
        (tip - hs) + ',' + (y + hs) + 'L' + (tip + hs) + ',' + (y - hs) + '"/>';
    }
    return '<g class="' + cls + '"><line x1="' + x1 + '" y1="' + y + '" x2="' + (tip - dir * hs) +
      '" y2="' + y + '"/>' + end + '</g>';
  }

  function mark(x, y, s) {
    const r = clamp(view.rowH / 3, 1.5, 5);
    if (s.kind === 'fault') {
      const d = r * 1.6;
      return '<polygon class="fault-mark" points="' + x + ',' + (y - d) + ' ' + (x + d) + ',' + y + ' ' +
        x + ',' + (y + d) + ' ' + (x - d) + ',' + y + '"/>';
    }
    return '<circle class="dot from-' + kindOf(s.lane) + '" cx="' + x + '" cy="' + y + '" r="' + r + '"/>';
  }

  function labelOf(s) {
    let text = s.what + (s.detail ? ': ' + s.detail : '');
    if (s.result !== 'ok') text += ' → ' + s.result;
    const v = violationsAt.get(s.n);
    if (v) text = '‼ ' + v.map((x) => x.name).join(', ') + ' · ' + text;
    return text.length > LABEL_CHARS ? text.slice(0, LABEL_CHARS - 1) + '…' : text;
  }

  // Row n's shapes, its highlight band (fault, violation, cursor; drawn translucent over the
  // frozen columns) and its step, time and label (at `left`, the frozen gutter, and `labelX`,
  // the frozen label column), into `out`.
  function row(n, w, out, left, labelX) {
    const s = D.steps[n - 1];
    const h = view.rowH;
    const y = (n - 1) * h;
    const mid = y + h / 2;
    const cls = ['row'];
    if (s.kind === 'fault') cls.push('fault');
    if (violationsAt.has(n)) cls.push('violation');
    if (n === view.cursor) cls.push('cursor');
    if (cls.length > 1) out.bands.push('<rect class="' + cls.join(' ') + '" x="0" y="' + y + '" width="' + w + '" height="' + Math.max(h, 1) + '"/>');
    const shapes = out.shapes;
    let arrows = 0;
    if (s.from !== undefined) {
      for (const t of s.to || []) {
        if (t === s.from) continue;
        shapes.push(arrow(laneX(s.from), laneX(t), mid, s, s.from));
        arrows++;
      }
    }
    if (!arrows || s.kind === 'fault') {
      shapes.push(mark(laneX(s.kind === 'fault' && s.from !== undefined ? s.from : s.lane), mid, s));
    }
    if (h < 11) return;
    const bad = violationsAt.has(n) ? ' bad' : '';
    const texts = out.texts;
    texts.push('<text class="gutter" x="' + (left + 6) + '" y="' + (mid + 4) + '">' + n + '</text>');
    texts.push('<text class="gutter" x="' + (left + GUTTER - 12) + '" y="' + (mid + 4) + '" text-anchor="end">' + s.t + '</text>');
    texts.push('<text class="label' + bad + '" x="' + labelX + '" y="' + (mid + 4) + '">' + esc(labelOf(s)) + '</text>');
  }

  // The rows drawn: every row in view; below half a pixel a row, every k-th one plus the
  // faults, violations and the cursor (the rest would share the same pixels).
  function drawn(first, last) {
    const every = view.rowH < 0.5 ? Math.ceil(0.5 / view.rowH) : 1;
    const rows = [];
    for (let n = first; n <= last; n++) {
      const s = D.steps[n - 1];
      if (every === 1 || n % every === 0 || s.kind === 'fault' || violationsAt.has(n) || n === view.cursor) rows.push(n);
    }
    return rows;
  }

  function render() {
    view.queued = false;
    const box = $('rows');
    if (!N) {
      box.innerHTML = '<p class="empty">No steps to draw.</p>';
      return;
    }
    const sc = $('scroller');
    const h = view.rowH;
    const first = clamp(Math.floor(sc.scrollTop / h) + 1 - 4, 1, N);
    const last = clamp(Math.ceil((sc.scrollTop + sc.clientHeight) / h) + 4, first, N);
    const w = chartWidth();
    const y0 = (first - 1) * h;
    const height = Math.max(1, (last - first + 1) * h);
    // The gutter and the label column stay in view when the lanes scroll sideways.
    const left = sc.scrollLeft;
    const lanesEnd = GUTTER + view.laneW * D.lanes.length;
    const labelX = Math.max(left + GUTTER, Math.min(lanesEnd, left + sc.clientWidth - LABEL_MIN)) + 10;
    const out = { shapes: [], bands: [], texts: [] };
    for (let i = 0; i < D.lanes.length; i++) {
      out.shapes.push('<line class="lane-line" x1="' + laneX(i) + '" x2="' + laneX(i) + '" y1="' + y0 + '" y2="' + (y0 + height) + '"/>');
    }
    for (const n of drawn(first, last)) row(n, w, out, left, labelX);
    const frozen = '<rect class="frozen" x="' + left + '" y="' + y0 + '" width="' + (GUTTER - 4) + '" height="' + height + '"/>' +
      (labelX - 10 < lanesEnd ? '<rect class="frozen" x="' + (labelX - 8) + '" y="' + y0 + '" width="' + (w - labelX + 8) + '" height="' + height + '"/>' : '');
    box.innerHTML = '<svg width="' + w + '" height="' + height + '" viewBox="0 ' + y0 + ' ' + w + ' ' + height +
      '" style="top:' + y0 + 'px" role="img" aria-label="steps ' + first + ' to ' + last + '">' +
      out.shapes.join('') + (out.texts.length ? frozen : '') + out.bands.join('') + out.texts.join('') + '</svg>';
    placeViewport();
  }

  function schedule() {
    if (view.queued) return;
    view.queued = true;
    requestAnimationFrame(render);
  }

  // The overview strip: the whole run, with fault ticks, the violation marker, the part in
  // view and the cursor.
  const fraction = (n) => (N ? ((n - 1) / N) * 100 : 0).toFixed(4) + '%';

  function tick(cls, n, title) {
    const el = document.createElement('div');
    el.className = cls;
    el.style.top = fraction(n);
    el.title = title;
    $('overview').appendChild(el);
    return el;
  }

  function buildOverview() {
    for (const n of faults) tick('fault-tick', n, 'fault at step ' + n + ': ' + labelOf(D.steps[n - 1]));
    for (const v of D.violations) {
      if (v === firstViolation) continue;
      tick('violation-tick', v.step, v.name + ' at step ' + v.step);
    }
    if (firstViolation) {
      const m = tick('violation-marker', firstViolation.step,
        firstViolation.name + ' at step ' + firstViolation.step + ': ' + firstViolation.message);
      m.id = 'violation';
    }
    tick('', 1, 'the rows in view').id = 'viewport-box';
    tick('', 1, 'the current step').id = 'cursor-tick';
  }

  function placeViewport() {
    const sc = $('scroller');
    const total = Math.max(1, N * view.rowH);
    const box = $('viewport-box');
    box.style.top = (sc.scrollTop / total) * 100 + '%';
    box.style.height = Math.min(100, (sc.clientHeight / total) * 100) + '%';
    $('cursor-tick').style.top = fraction(view.cursor);
  }

  function showHeads() {
    const n = view.cursor;
    const acting = D.steps[n - 1]?.lane;
    document.querySelectorAll('#lane-heads .lane').forEach((el, i) => {
      const state = el.querySelector('.lane-state');
      state.textContent = stateAt(i, n);
      state.classList.toggle('changed', changedAt(i, n));
      el.classList.toggle('acting', i === acting);
    });
  }

  function stepFacts(s) {
    const lane = (i) => (i === undefined ? '?' : esc(D.lanes[i].title));
    const facts = [
      ['time', s.t + ' s'],
      ['actor', lane(s.lane)],
      ['action', esc(s.action + ' ' + s.what)],
      ['result', esc(s.result)],
    ];
    if (s.from !== undefined) facts.push(['from → to', lane(s.from) + ' → ' + (s.to || []).map(lane).join(', ')]);
    if (s.detail) facts.push(['carries', esc(s.detail)]);
    facts.push(['etcd', 'rev ' + s.rev + ', compact rev ' + s.crev]);
    return '<dl>' + facts.map(([k, v]) => '<dt>' + k + '</dt><dd>' + v + '</dd>').join('') + '</dl>';
  }

  function showDetails() {
    const d = $('details');
    const n = view.cursor;
    d.dataset.cursor = n;
    if (!N) {
      d.innerHTML = '<h2>No steps</h2>';
      return;
    }
    const s = D.steps[n - 1];
    const parts = ['<h2>Step ' + n + ' of ' + N + ' <small>(' + esc(s.kind) + ')</small></h2>', stepFacts(s)];
    if (s.kind === 'fault') parts.push('<div class="fault-box">fault injected: ' + esc(s.detail || s.what) + '</div>');
    for (const v of violationsAt.get(n) || []) {
      parts.push('<div class="violation-box"><b>violated: ' + esc(v.name) + '</b><br>' + esc(v.message) + '</div>');
    }
    parts.push('<h3>State after this step</h3><table>');
    D.lanes.forEach((l, i) => {
      parts.push('<tr class="' + (changedAt(i, n) ? 'changed' : '') + '"><th>' + esc(l.title) + '</th><td>' +
        esc(stateAt(i, n) || '–') + '</td></tr>');
    });
    parts.push('</table>');
    d.innerHTML = parts.join('');
  }

  function ensureVisible(n) {
    const sc = $('scroller');
    const y = (n - 1) * view.rowH;
    if (y < sc.scrollTop || y + view.rowH > sc.scrollTop + sc.clientHeight) {
      sc.scrollTop = Math.max(0, y - sc.clientHeight / 2 + view.rowH / 2);
    }
  }

  function go(n) {
    if (!N) return;
    view.cursor = clamp(Math.round(n) || 1, 1, N);
    $('step-input').value = view.cursor;
    ensureVisible(view.cursor);
    showHeads();
    showDetails();
    render();
    try {
      history.replaceState(null, '', '#step=' + view.cursor);
    } catch (e) {
      // Some browsers refuse history changes on file: pages; the page works without them.
    }
  }

  function zoomTo(rowH, anchor) {
    const sc = $('scroller');
    const at = anchor || view.cursor;
    const offset = (at - 1) * view.rowH - sc.scrollTop;
    view.rowH = clamp(rowH, MIN_ROW, MAX_ROW);
    layout();
    sc.scrollTop = Math.max(0, (at - 1) * view.rowH - offset);
    render();
  }

  const zoom = (factor, anchor) => zoomTo(view.rowH * factor, anchor);
  const fit = () => zoomTo(Math.min(BASE_ROW, $('scroller').clientHeight / Math.max(1, N)), 1);
  const pageRows = () => Math.max(1, Math.floor($('scroller').clientHeight / view.rowH) - 1);

  function nextFault(dir) {
    const c = view.cursor;
    const n = dir > 0 ? faults.find((f) => f > c) : [...faults].reverse().find((f) => f < c);
    if (n !== undefined) go(n);
  }

  const gotoViolation = () => firstViolation && go(firstViolation.step);

  const KEYS = {
    ArrowRight: () => go(view.cursor + 1),
    ArrowDown: () => go(view.cursor + 1),
    j: () => go(view.cursor + 1),
    ArrowLeft: () => go(view.cursor - 1),
    ArrowUp: () => go(view.cursor - 1),
    k: () => go(view.cursor - 1),
    PageDown: () => go(view.cursor + pageRows()),
    PageUp: () => go(view.cursor - pageRows()),
    Home: () => go(1),
    End: () => go(N),
    v: gotoViolation,
    f: () => nextFault(1),
    F: () => nextFault(-1),
    '+': () => zoom(1.25),
    '=': () => zoom(1.25),
    '-': () => zoom(0.8),
    0: () => zoomTo(BASE_ROW),
  };

  function onKey(e) {
    if (e.target && e.target.tagName === 'INPUT') return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const act = KEYS[e.key];
    if (!act) return;
    e.preventDefault();
    act();
  }

  const rowAt = (clientY) => Math.floor((clientY - $('rows').getBoundingClientRect().top) / view.rowH) + 1;

  function wire() {
    const click = (id, f) => $(id).addEventListener('click', f);
    click('first', () => go(1));
    click('prev', () => go(view.cursor - 1));
    click('next', () => go(view.cursor + 1));
    click('last', () => go(N));
    click('goto-violation', gotoViolation);
    click('prev-fault', () => nextFault(-1));
    click('next-fault', () => nextFault(1));
    click('zoom-in', () => zoom(1.25));
    click('zoom-out', () => zoom(0.8));
    click('zoom-fit', fit);
    click('zoom-reset', () => zoomTo(BASE_ROW));
    click('rows', (e) => go(rowAt(e.clientY)));
    click('overview', (e) => {
      const r = $('overview').getBoundingClientRect();
      go(Math.floor(((e.clientY - r.top) / Math.max(1, r.height)) * N) + 1);
    });
    $('step-input').addEventListener('change', (e) => go(Number(e.target.value)));
    $('goto-violation').disabled = !firstViolation;
    $('prev-fault').disabled = $('next-fault').disabled = !faults.length;
    document.addEventListener('keydown', onKey);
    const sc = $('scroller');
    sc.addEventListener('scroll', () => {
      $('lane-heads').scrollLeft = sc.scrollLeft;
      schedule();
    });
    sc.addEventListener('wheel', (e) => {
      if (!e.ctrlKey) return;
      e.preventDefault();
      zoom(e.deltaY < 0 ? 1.25 : 0.8, clamp(rowAt(e.clientY), 1, Math.max(1, N)));
    }, { passive: false });
    window.addEventListener('resize', () => {
      layout();
      render();
    });
  }

  // `#selftest` in the address: press the keys and buttons a reader would, and leave what
  // happened in #selftest-result (read by the headless-browser test).
  function selfTest() {
    const key = (k) => document.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true }));
    const out = { steps: N, lanes: document.querySelectorAll('#lane-heads .lane').length };
    out.start = view.cursor;
    key('Home');
    out.home = view.cursor;
    key('ArrowRight');
    out.next = view.cursor;
    key('ArrowLeft');
    out.prev = view.cursor;
    $('next').click();
    $('next').click();
    out.nextButton = view.cursor;
    key('End');
    out.end = view.cursor;
    key('v');
    out.violation = view.cursor;
    const h = view.rowH;
    key('+');
    out.zoomedIn = view.rowH > h;
    key('0');
    key('-');
    out.zoomedOut = view.rowH < h;
    key('0');
    out.arrows = document.querySelectorAll('#rows .arrow').length;
    out.cursorRows = document.querySelectorAll('#rows rect.cursor').length;
    out.details = $('details').dataset.cursor;
    const pre = document.createElement('pre');
    pre.id = 'selftest-result';
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }

  function init() {
    document.body.dataset.steps = N;
    $('step-count').textContent = 'of ' + N;
    $('step-input').max = Math.max(1, N);
    buildHeads();
    buildOverview();
    layout();
    wire();
    // The address may name a step and a zoom: `#step=40&zoom=fit` (or `zoom=50` percent).
    const hash = location.hash;
    const asked = /step=(\d+)/.exec(hash);
    const zoomAsked = /zoom=(fit|\d+)/.exec(hash);
    if (zoomAsked) {
      const fitRow = Math.min(BASE_ROW, $('scroller').clientHeight / Math.max(1, N));
      view.rowH = clamp(zoomAsked[1] === 'fit' ? fitRow : (BASE_ROW * Number(zoomAsked[1])) / 100, MIN_ROW, MAX_ROW);
      layout();
    }
    go(asked ? Number(asked[1]) : firstViolation ? firstViolation.step : 1);
    if (!N) render();
    if (hash.includes('selftest')) selfTest();
  }

  init();
})();
