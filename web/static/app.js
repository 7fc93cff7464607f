// RawFlow dashboard: headline figures from /api/v1/overview (live over /api/v1/events),
// charts from each channel's series, tables from its breakdown. No framework, no chart
// library; the DOM it renders is the contract the browser tests read (web/e2e).
'use strict';
(() => {
  const RANGES = { '15m': [900, 10, '15 min'], '1h': [3600, 60, '1 h'], '24h': [86400, 300, '24 h'], '7d': [604800, 3600, '7 days'] };
  const SUMMED = ['gateway_bytes', 'peer_bytes', 'uploaded_bytes', 'gateway_mbps', 'peer_mbps', 'viewers_assisted',
    'viewers_direct', 'stalls', 'startups', 'integrity_failures', 'peers_banned', 'tracker_refused'];
  const $ = (sel) => document.querySelector(sel);
  const $$ = (sel) => Array.from(document.querySelectorAll(sel));
  const enc = encodeURIComponent;

  const state = { channel: '', range: '15m', overview: null, generation: 0, seq: 0, failures: new Map() };
  const R = window.__rawflow = { overview: null, series: {}, breakdown: null, errors: [] };

  // ---- formatting -------------------------------------------------------------------
  const num = (v, digits) => v.toLocaleString('en-US', { maximumFractionDigits: digits });
  const fmt = {
    pct: (v) => (v * 100).toFixed(1) + ' %',
    mbps: (v) => v >= 1000 ? num(v / 1000, 2) + ' Gbit/s' : v >= 1 || v === 0 ? num(v, v >= 100 ? 0 : 2) + ' Mbit/s' : num(v * 1000, 0) + ' kbit/s',
    count: (v) => num(v, 1),
    ms: (v) => v >= 10000 ? num(v / 1000, 1) + ' s' : num(v, 0) + ' ms',
    bytes: (v) => {
      const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
      let i = 0;
      while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
      return (i ? v.toFixed(1) : String(v)) + ' ' + units[i];
    },
    money: (v) => {
      const currency = (state.overview && state.overview.currency) || 'USD';
      const digits = v !== 0 && Math.abs(v) < 1 ? 4 : 2;
      try {
        return v.toLocaleString('en-US', { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: digits });
      } catch (_) { return v.toFixed(digits) + ' ' + currency; }
    },
  };
  const FIGURES = {
    offload: fmt.pct, gateway_mbps: fmt.mbps, peer_mbps: fmt.mbps, viewers_assisted: fmt.count,
    viewers_direct: fmt.count, stalls: fmt.count, startup_ms: fmt.ms, integrity_failures: fmt.count,
    peers_banned: fmt.count, tracker_refused: fmt.count, bytes_saved: fmt.bytes, money_saved: fmt.money,
  };
  const ALERTS = ['integrity_failures', 'peers_banned', 'tracker_refused', 'stalls'];
  const hhmmss = (t) => new Date(t * 1000).toLocaleTimeString('en-GB', { hour12: false });

  // ---- errors: #error lists what is failing now; __rawflow.errors keeps them all ----------
  function fail(key, message) {
    state.failures.set(key, message);
    R.errors.push({ at: Date.now(), source: key, message });
    showErrors();
  }
  function ok(key) {
    if (state.failures.delete(key)) showErrors();
  }
  function showErrors() {
    const box = $('#error');
    box.textContent = Array.from(state.failures.values()).join('\n');
    box.hidden = state.failures.size === 0;
  }

  async function getJSON(url) {
    let res;
    try {
      res = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch (err) {
      throw new Error(`${url}: ${err.message}`);
    }
    if (!res.ok) {
      let detail = res.statusText;
      try { detail = (await res.json()).message || detail; } catch (_) { /* not JSON */ }
      throw new Error(`${url}: ${res.status} ${detail}`);
    }
    return res.json();
  }

  // ---- overview: figures, channel list, channels table --------------------------------
  function figuresOf(ov) {
    if (!state.channel) return ov.total;
    return ov.channels.find((c) => c.name === state.channel);
  }

  function renderOverview(ov) {
    if (state.overview && ov.generated_at < state.overview.generated_at) return; // a late fetch
    state.overview = R.overview = ov;
    syncChannelOptions(ov.channels.map((c) => c.name));
    renderFigures();
    renderChannels(ov);
    for (const el of $$('.window')) el.textContent = ov.window_seconds + ' s';
    $('#price').textContent = `the egress peers carried, at ${fmt.money(ov.price_per_gb)} per GB`;
    const up = $('#updated');
    up.lastChild.textContent = 'updated ' + hhmmss(ov.generated_at);
    up.setAttribute('data-generated-at', String(ov.generated_at));
  }

  function syncChannelOptions(names) {
    const select = $('#channel');
    const have = Array.from(select.options).slice(1).map((o) => o.value);
    if (have.join('\n') === names.join('\n')) return;
    select.length = 1;
    for (const name of names) select.add(new Option(name, name));
    if (state.channel && !names.includes(state.channel)) { // the channel went away
      selectChannel('');
      return;
    }
    select.value = state.channel;
  }

  function renderFigures() {
    const f = state.overview && figuresOf(state.overview);
    if (!f) return;
    for (const el of $$('[data-metric]')) {
      const key = el.dataset.metric;
      const v = f[key];
      if (typeof v !== 'number') {
        el.textContent = '–';
        el.removeAttribute('data-value');
        continue;
      }
      el.textContent = FIGURES[key](v);
      el.setAttribute('data-value', JSON.stringify(v));
      el.classList.toggle('alert', ALERTS.includes(key) && v > 0);
    }
    $('#offload-meter').style.width = Math.max(0, Math.min(1, f.offload || 0)) * 100 + '%';
  }

  function cell(text, cls) {
    const td = document.createElement('td');
    if (text instanceof Node) td.append(text); else td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  function bar(share, label) {
    const wrap = document.createElement('div');
    wrap.className = 'bar';
    const track = document.createElement('i');
    const fill = document.createElement('b');
    fill.style.width = Math.max(0, Math.min(1, share)) * 100 + '%';
    track.append(fill);
    const text = document.createElement('span');
    text.textContent = label;
    wrap.append(track, text);
    return wrap;
  }
  function named(name, fallback) {
    if (name !== '') return name;
    const span = document.createElement('span');
    span.className = 'unnamed';
    span.textContent = fallback;
    return span;
  }
  function fillTable(id, rows, columns, empty) {
    const body = $(`#${id} tbody`);
    body.replaceChildren();
    for (const row of rows) {
      const tr = document.createElement('tr');
      for (const [attr, value] of Object.entries(row.attrs)) tr.setAttribute(attr, value);
      tr.append(...row.cells);
      body.append(tr);
    }
    if (!rows.length) {
      const tr = document.createElement('tr');
      const td = cell(empty, 'empty');
      td.colSpan = columns;
      tr.append(td);
      body.append(tr);
    }
  }

  function renderChannels(ov) {
    fillTable('channels', ov.channels.map((c) => {
      const link = document.createElement('a');
      link.className = 'preview';
      link.href = '/preview/' + enc(c.name);
      link.textContent = 'Preview';
      return {
        attrs: { 'data-channel': c.name },
        cells: [cell(c.name), cell(fmt.pct(c.offload), 'num'), cell(fmt.mbps(c.gateway_mbps), 'num'),
          cell(fmt.mbps(c.peer_mbps), 'num'), cell(`${fmt.count(c.viewers_assisted)} + ${fmt.count(c.viewers_direct)}`, 'num'),
          cell(fmt.count(c.stalls), 'num'), cell(link, 'num')],
      };
    }), 7, 'No channels');
  }

  // ---- series and breakdown for the selected channel (or all, summed) -------------------
  function rangeParams() {
    const [span, step] = RANGES[state.range];
    const to = state.overview ? state.overview.generated_at : Math.floor(Date.now() / 1000);
    return { from: to - span, to, step };
  }

  function sumSeries(list, p) {
    const byTime = new Map();
    for (const s of list) {
      for (const pt of s.points) {
        let acc = byTime.get(pt.t);
        if (!acc) byTime.set(pt.t, acc = Object.fromEntries([['t', pt.t], ['startup_total', 0], ...SUMMED.map((k) => [k, 0])]));
        for (const k of SUMMED) acc[k] += pt[k] || 0;
        acc.startup_total += (pt.startup_ms || 0) * (pt.startups || 0);
      }
    }
    const points = Array.from(byTime.values()).sort((a, b) => a.t - b.t).map(({ startup_total: total, ...pt }) => {
      const bytes = pt.peer_bytes + pt.gateway_bytes;
      return { ...pt, offload: bytes ? pt.peer_bytes / bytes : 0, startup_ms: pt.startups ? total / pt.startups : 0 };
    });
    return { channel: '', from: p.from, to: p.to, step_seconds: p.step, points };
  }

  function addRow(map, key, row, fields) {
    const acc = map.get(key) || map.set(key, { ...row, ...Object.fromEntries(fields.map((f) => [f, 0])) }).get(key);
    for (const f of fields) acc[f] += row[f] || 0;
  }
  function mergeBreakdowns(list, p) {
    const groups = new Map(), feeds = new Map(), paths = new Map();
    for (const b of list) {
      for (const g of b.groups) addRow(groups, g.name, g, ['gateway_bytes', 'peer_bytes']);
      for (const f of b.feeds) addRow(feeds, f.from + '\n' + f.to, f, ['bytes']);
      for (const x of b.paths || []) addRow(paths, x.group + '\n' + x.path, x, ['bytes']);
    }
    const withOffload = (g) => ({ ...g, offload: g.peer_bytes + g.gateway_bytes ? g.peer_bytes / (g.peer_bytes + g.gateway_bytes) : 0 });
    return {
      channel: '', from: p.from, to: p.to,
      renditions: list.flatMap((b) => b.renditions.map((r) => ({ ...r, channel: b.channel }))),
      groups: Array.from(groups.values(), withOffload), feeds: Array.from(feeds.values()), paths: Array.from(paths.values()),
    };
  }

  async function refresh() {
    if (!state.overview) return;
    const seq = ++state.seq;
    const p = rangeParams();
    const names = state.channel ? [state.channel] : state.overview.channels.map((c) => c.name);
    const base = (n) => `/api/v1/channels/${enc(n)}/`;
    const series = Promise.all(names.map((n) => getJSON(`${base(n)}series?from=${p.from}&to=${p.to}&step=${p.step}`)));
    const breakdown = Promise.all(names.map((n) => getJSON(`${base(n)}breakdown?from=${p.from}&to=${p.to}`)));
    updateExport(p);
    try {
      const list = await series;
      if (seq !== state.seq) return;
      R.series = state.channel ? list[0] : sumSeries(list, p);
      ok('series');
    } catch (err) {
      if (seq === state.seq) fail('series', 'Series: ' + err.message);
    }
    drawCharts();
    try {
      const list = await breakdown;
      if (seq !== state.seq) return;
      R.breakdown = state.channel ? list[0] : mergeBreakdowns(list, p);
      renderBreakdown(R.breakdown);
      ok('breakdown');
    } catch (err) {
      if (seq === state.seq) fail('breakdown', 'Breakdown: ' + err.message);
    }
  }

  function updateExport(p) {
    const a = $('#export');
    a.hidden = !state.channel;
    a.setAttribute('aria-disabled', String(!state.channel));
    if (!state.channel) return;
    a.href = `/api/v1/channels/${enc(state.channel)}/export.csv?from=${p.from}&to=${p.to}&step=${p.step}`;
    a.download = `rawflow-${state.channel}-${state.range}.csv`;
  }

  // How a neighbour's bytes travelled (swarm.PeerPaths).
  const PATHS = { direct: 'TCP', host: 'WebRTC', srflx: 'WebRTC via NAT', prflx: 'WebRTC via NAT (peer)', relay: 'TURN relay' };

  function renderBreakdown(b) {
    const label = 'last ' + RANGES[state.range][2];
    for (const el of $$('.range-label')) el.textContent = label;
    const byBytes = (a, z) => (z.gateway_bytes + z.peer_bytes) - (a.gateway_bytes + a.peer_bytes);
    const split = (x) => [cell(fmt.bytes(x.gateway_bytes), 'num'), cell(fmt.bytes(x.peer_bytes), 'num'), cell(bar(x.offload, fmt.pct(x.offload)))];
    fillTable('groups', [...b.groups].sort(byBytes).map((g) => ({
      attrs: { 'data-group': g.name }, cells: [cell(named(g.name, 'ungrouped')), ...split(g)],
    })), 4, 'No peer traffic in this range');
    const fed = b.feeds.reduce((sum, f) => sum + f.bytes, 0);
    fillTable('feeds', [...b.feeds].sort((a, z) => z.bytes - a.bytes).map((f) => ({
      attrs: { 'data-from': f.from, 'data-to': f.to },
      cells: [cell(named(f.from, 'ungrouped')), cell(named(f.to, 'ungrouped')), cell(fmt.bytes(f.bytes), 'num'),
        cell(bar(fed ? f.bytes / fed : 0, fmt.pct(fed ? f.bytes / fed : 0)))],
    })), 4, 'No peer-to-peer transfers in this range');
    const viaTotal = (b.paths || []).reduce((sum, x) => sum + x.bytes, 0);
    fillTable('paths', [...(b.paths || [])].sort((a, z) => z.bytes - a.bytes).map((x) => ({
      attrs: { 'data-group': x.group, 'data-path': x.path },
      cells: [cell(named(x.group, 'ungrouped')), cell(PATHS[x.path] || x.path), cell(fmt.bytes(x.bytes), 'num'),
        cell(bar(viaTotal ? x.bytes / viaTotal : 0, fmt.pct(viaTotal ? x.bytes / viaTotal : 0)))],
    })), 4, 'No peer-to-peer transfers in this range');
    fillTable('renditions', b.renditions.map((r) => ({
      attrs: r.channel === undefined ? { 'data-rendition': r.name } : { 'data-rendition': r.name, 'data-channel': r.channel },
      cells: [cell(r.channel === undefined ? named(r.name, 'main') : `${r.channel} · ${r.name || 'main'}`), ...split(r)],
    })), 4, 'No renditions');
  }

  // ---- charts: a small canvas line chart -------------------------------------------
  const color = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const CHARTS = {
    offload: { max: 1, left: fmt.pct, lines: [{ key: 'offload', label: 'Offload', color: '--peer', fill: true }] },
    traffic: { left: fmt.mbps, lines: [{ key: 'gateway_mbps', label: 'Gateway', color: '--gateway' }, { key: 'peer_mbps', label: 'Peers', color: '--peer' }] },
    viewers: { left: fmt.count, lines: [{ key: 'viewers_assisted', label: 'Assisted', color: '--peer' }, { key: 'viewers_direct', label: 'Direct', color: '--gateway' }] },
    qoe: { left: fmt.count, right: fmt.ms, lines: [{ key: 'stalls', label: 'Stalls', color: '--bad', bars: true }, { key: 'startup_ms', label: 'Startup', color: '--accent', axis: 'right' }] },
  };
  const TICKS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];

  // niceMax rounds v up to 4 grid steps of 1, 2, 2.5 or 5 × 10^k (whole steps for counts).
  function niceMax(v, whole) {
    if (!(v > 0)) return whole ? 4 : 1;
    const step = Math.max(v, whole ? 4 : 1e-9) / 4;
    const e = 10 ** Math.floor(Math.log10(step));
    return 4 * [1, 2, 2.5, 5, 10].filter((m) => !whole || Number.isInteger(m * e)).find((m) => m * e >= step) * e;
  }

  function drawCharts() {
    for (const canvas of $$('canvas[data-chart]')) drawChart(canvas, R.series, CHARTS[canvas.dataset.chart]);
  }

  function drawChart(canvas, series, spec) {
    const pts = (series && series.points) || [];
    const w = canvas.clientWidth, h = canvas.clientHeight, dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const css = getComputedStyle(canvas);
    const box = { l: 64, r: w - (spec.right ? 64 : 14), t: 30, b: h - 24 };
    const axisMax = (axis) => spec.max || niceMax(Math.max(0, ...spec.lines.filter((l) => (l.axis || 'left') === axis)
      .flatMap((l) => pts.map((p) => p[l.key] || 0))), spec[axis] === fmt.count);
    const max = { left: axisMax('left'), right: axisMax('right') };
    g.font = '11px ' + css.fontFamily;
    g.textBaseline = 'middle';
    g.lineWidth = 1;

    for (let i = 0; i <= 4; i++) { // horizontal grid, y labels on both axes
      const y = Math.round(box.b - (box.b - box.t) * i / 4) + 0.5;
      g.strokeStyle = color('--grid');
      g.beginPath(); g.moveTo(box.l, y); g.lineTo(box.r, y); g.stroke();
      g.fillStyle = css.color;
      g.textAlign = 'right';
      g.fillText(spec.left(max.left * i / 4), box.l - 8, y);
      if (spec.right) { g.textAlign = 'left'; g.fillText(spec.right(max.right * i / 4), box.r + 8, y); }
    }

    const ranged = Boolean(series && series.points);
    const t0 = pts.length ? pts[0].t : ranged ? series.from : 0, t1 = ranged ? Math.max(series.to, t0 + 1) : 1;
    const x = (t) => box.l + (box.r - box.l) * (t - t0) / ((t1 - t0) || 1);
    const tick = TICKS.find((s) => (t1 - t0) / s <= (box.r - box.l) / 90) || TICKS[TICKS.length - 1];
    const zone = new Date(t0 * 1000).getTimezoneOffset() * 60; // label local midnights and hours
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (let t = Math.ceil((t0 - zone) / tick) * tick + zone; ranged && t <= t1; t += tick) {
      const d = new Date(t * 1000);
      const label = tick >= 86400 ? d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' })
        : d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', hour12: false });
      g.fillText(label, x(t), box.b + 6);
    }

    for (const line of spec.lines) {
      const top = max[line.axis || 'left'];
      const y = (v) => box.b - (box.b - box.t) * Math.min(v || 0, top) / top;
      g.strokeStyle = g.fillStyle = color(line.color);
      if (line.bars) { // counts per step, one bar each
        const bw = Math.max(1, (box.r - box.l) / Math.max(pts.length, 1) * 0.6);
        for (const p of pts) if (p[line.key]) g.fillRect(x(p.t) - bw / 2, y(p[line.key]), bw, box.b - y(p[line.key]));
        continue;
      }
      g.lineWidth = 1.75;
      g.lineJoin = 'round';
      g.beginPath();
      pts.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p[line.key])) : g.moveTo(x(p.t), y(p[line.key]))));
      g.stroke();
      if (line.fill && pts.length > 1) {
        g.lineTo(x(pts[pts.length - 1].t), box.b);
        g.lineTo(x(pts[0].t), box.b);
        g.globalAlpha = 0.12; g.fill(); g.globalAlpha = 1;
      }
      if (pts.length === 1) g.fillRect(x(pts[0].t) - 2, y(pts[0][line.key]) - 2, 4, 4);
    }

    let lx = box.l; // legend: a swatch, the label and the latest value of each line
    g.textAlign = 'left';
    g.textBaseline = 'middle';
    g.font = '12px ' + css.fontFamily;
    for (const line of spec.lines) {
      const last = pts.length ? pts[pts.length - 1][line.key] || 0 : null;
      const text = line.label + (last === null ? '' : ' ' + (line.axis === 'right' ? spec.right : spec.left)(last));
      g.fillStyle = color(line.color);
      g.fillRect(lx, 9, 10, 10);
      g.fillStyle = css.color;
      g.fillText(text, lx + 15, 14);
      lx += g.measureText(text).width + 34;
    }
    if (!pts.length) {
      g.textAlign = 'center';
      g.fillText(ranged ? 'No data in this range' : 'Waiting for data…', (box.l + box.r) / 2, (box.t + box.b) / 2);
    }
    canvas.setAttribute('data-points', String(pts.length));
  }

  // ---- controls, live updates ----------------------------------------------------------
  function selectChannel(name) {
    state.channel = name;
    $('#channel').value = name;
    renderFigures();
    refresh();
  }

  function selectRange(range) {
    state.range = range;
    for (const b of $$('button[data-range]')) b.setAttribute('aria-pressed', String(b.dataset.range === range));
    refresh();
  }

  function connect() {
    const es = new EventSource('/api/v1/events');
    const up = $('#updated');
    es.addEventListener('overview', (e) => {
      let ov;
      try { ov = JSON.parse(e.data); } catch (err) {
        fail('events', 'Live updates: bad overview event: ' + err.message);
        return;
      }
      state.generation++;
      up.setAttribute('data-generation', String(state.generation));
      const first = !state.overview;
      renderOverview(ov);
      ok('events');
      if (first) refresh();
    });
    es.onopen = () => { up.classList.add('live'); ok('events'); };
    es.onerror = () => {
      up.classList.remove('live');
      if (es.readyState !== EventSource.CLOSED) {
        fail('events', 'Live updates interrupted: reconnecting…');
        return;
      }
      fail('events', 'Live updates stopped: retrying in 5 s');
      setTimeout(connect, 5000);
    };
  }

  async function start() {
    $('#channel').addEventListener('change', (e) => selectChannel(e.target.value));
    for (const b of $$('button[data-range]')) b.addEventListener('click', () => selectRange(b.dataset.range));
    let resize;
    window.addEventListener('resize', () => { clearTimeout(resize); resize = setTimeout(drawCharts, 150); });
    drawCharts();
    connect();
    try {
      renderOverview(await getJSON('/api/v1/overview'));
      ok('overview');
    } catch (err) {
      fail('overview', 'Overview: ' + err.message);
    }
    if (!state.seq) refresh(); // else the first live event started it
    setInterval(refresh, 10000);
  }

  start();
})();
