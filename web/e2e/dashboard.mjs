// Browser test of the dashboard and the preview page (package web), in the Debian chromium
// driven by playwright-core. Checks the DOM contract against the gateway's API:
//
//   DASHBOARD_URL    gateway base URL (required)
//   PREVIEW_URL      full URL of a preview page to play (optional: no preview check without it)
//   SCREENSHOT       path of a full-page PNG of the dashboard (optional)
//   PREVIEW_SCREENSHOT  path of a PNG of the preview page, once it plays (optional)
//   MIN_GENERATIONS  live overview events the page must receive (default 2)
//   CHANNEL          channel to select (default: the overview's first, if any)
//   CHROMIUM         the browser (default /usr/bin/chromium)
//   WANT_OFFLOAD, WANT_ASSISTED  first wait until the page shows (all channels) an offload above
//                    WANT_OFFLOAD (a share, 0-1) and at least WANT_ASSISTED assisted viewers, read
//                    from the tiles as rendered, within WANT_WITHIN_MS (default 30000) of the
//                    script's start; WANT_SCREENSHOT: a PNG of the page at that moment
//
// Prints one JSON line with what it found; exits 0 on success, 1 with {"ok":false,"error":…}.
import { chromium } from 'playwright-core';

const env = process.env;
const BASE = (env.DASHBOARD_URL || '').replace(/\/+$/, '');
const MIN_GENERATIONS = Number(env.MIN_GENERATIONS || 2);
const FIGURES = ['offload', 'gateway_mbps', 'peer_mbps', 'viewers_assisted', 'viewers_direct', 'stalls', 'startup_ms',
  'integrity_failures', 'peers_banned', 'tracker_refused', 'bytes_saved', 'money_saved'];
const CHARTS = ['offload', 'traffic', 'viewers', 'qoe'];
const CSV_HEADER = 'time,gateway_bytes,peer_bytes,uploaded_bytes,offload,viewers_assisted,viewers_direct,stalls,startups,startup_ms,integrity_failures,peers_banned,tracker_refused';
const started = Date.now();
const report = { ok: false };
let browser;

class Failure extends Error {} // a check that failed (until retries these)
class Broken extends Error {} // a contract broken outright (no retry)
const check = (cond, message) => { if (!cond) throw new Failure(message); };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// until polls fn (which returns a truthy value when done) every interval ms, for at most ms.
async function until(what, ms, fn, interval = 250) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (!(err instanceof Failure)) throw err;
      last = err.message;
    }
    if (Date.now() > deadline) throw new Failure(`${what}: not within ${ms / 1000} s${last ? ` (${last})` : ''}`);
    await sleep(interval);
  }
}

async function api(path) {
  const res = await fetch(BASE + path, { signal: AbortSignal.timeout(5000) });
  check(res.ok, `GET ${path}: ${res.status}`);
  return res.json();
}

const figuresOf = (ov, channel) => (channel ? ov.channels.find((c) => c.name === channel) : ov.total);

// compareFigures checks the tiles against the page's own overview (exactly, in one look at the
// page), and against the API for every figure that held still across two fetches 1 s apart.
async function compareFigures(page, channel) {
  const label = channel || 'total';
  return until(`figures of ${label} match the API`, 10000, async () => {
    const a = await api('/api/v1/overview');
    const seen = await page.evaluate(() => ({
      overview: window.__rawflow.overview,
      channel: document.querySelector('#channel').value,
      values: Object.fromEntries(Array.from(document.querySelectorAll('[data-metric]'),
        (el) => [el.dataset.metric, { value: el.getAttribute('data-value'), text: el.textContent }])),
    }));
    await sleep(1000);
    const b = await api('/api/v1/overview');
    check(seen.channel === (channel || ''), `select#channel is ${JSON.stringify(seen.channel)}`);
    const mine = figuresOf(seen.overview, channel);
    check(mine, `the page's overview has no channel ${label}`);
    for (const f of FIGURES) {
      const v = seen.values[f];
      if (!v) throw new Broken(`no [data-metric="${f}"] on the page`);
      if (v.value !== JSON.stringify(mine[f])) {
        throw new Broken(`[data-metric="${f}"] data-value=${v.value} but the page's overview says ${JSON.stringify(mine[f])}`);
      }
      if (!v.text || v.text === '–') throw new Broken(`[data-metric="${f}"] shows no text`);
    }
    const fa = figuresOf(a, channel), fb = figuresOf(b, channel);
    check(fa && fb, `the API's overview has no channel ${label}`);
    const stable = FIGURES.filter((f) => fa[f] === fb[f]);
    check(stable.length > 0, 'every figure moved between two API fetches 1 s apart');
    const wrong = stable.filter((f) => mine[f] !== fa[f]).map((f) => `${f}: page ${mine[f]}, API ${fa[f]}`);
    check(wrong.length === 0, wrong.join('; '));
    return { compared: stable.map((f) => `${label}.${f}`), shown: Object.fromEntries(FIGURES.map((f) => [f, seen.values[f].text])) };
  }, 500);
}

// checkTables compares the three breakdown tables with the API's breakdown over the page's range.
async function checkTables(page, channel) {
  return until(`tables of ${channel} match the breakdown API`, 10000, async () => {
    const seen = await page.evaluate(() => ({
      breakdown: window.__rawflow.breakdown,
      groups: Array.from(document.querySelectorAll('#groups tr[data-group]'), (tr) => tr.dataset.group),
      feeds: Array.from(document.querySelectorAll('#feeds tr[data-from]'), (tr) => `${tr.dataset.from}>${tr.dataset.to}`),
      paths: Array.from(document.querySelectorAll('#paths tr[data-path]'), (tr) => `${tr.dataset.group}:${tr.dataset.path}`),
      renditions: Array.from(document.querySelectorAll('#renditions tr[data-rendition]'), (tr) => tr.dataset.rendition),
    }));
    check(seen.breakdown && seen.breakdown.channel === channel, `the page's breakdown is not ${channel}'s yet`);
    const { from, to } = seen.breakdown;
    const want = await api(`/api/v1/channels/${encodeURIComponent(channel)}/breakdown?from=${from}&to=${to}`);
    const same = (name, got, exp) => {
      const g = [...got].sort(), e = [...exp].sort();
      check(JSON.stringify(g) === JSON.stringify(e), `table #${name}: rows ${JSON.stringify(g)}, API ${JSON.stringify(e)}`);
    };
    same('groups', seen.groups, want.groups.map((g) => g.name));
    same('feeds', seen.feeds, want.feeds.map((f) => `${f.from}>${f.to}`));
    same('paths', seen.paths, want.paths.map((x) => `${x.group}:${x.path}`));
    same('renditions', seen.renditions, want.renditions.map((r) => r.name));
    return { groups: seen.groups.length, feeds: seen.feeds.length, paths: seen.paths.length, renditions: seen.renditions.length };
  }, 500);
}

async function checkExport(page, channel) {
  const link = await page.evaluate(() => {
    const a = document.querySelector('a#export');
    return a && { href: a.href, hidden: a.hidden };
  });
  check(link && !link.hidden, `a#export is missing or hidden for channel ${channel}`);
  const res = await fetch(link.href, { signal: AbortSignal.timeout(5000) });
  check(res.status === 200, `GET ${link.href}: ${res.status}`);
  const body = await res.text();
  check(body.split(/\r?\n/)[0] === CSV_HEADER, `GET ${link.href}: header row ${JSON.stringify(body.split(/\r?\n/)[0])}`);
  return { status: res.status, content_type: res.headers.get('content-type'), rows: body.trim().split(/\r?\n/).length - 1 };
}

// wantFigures waits until the tiles show (as text, and as data-value) an offload above
// WANT_OFFLOAD and at least WANT_ASSISTED assisted viewers, for all channels.
async function wantFigures(page) {
  const minOffload = Number(env.WANT_OFFLOAD || 0), minAssisted = Number(env.WANT_ASSISTED || 0);
  const within = Number(env.WANT_WITHIN_MS || 30000) - (Date.now() - started);
  const number = (text) => Number.parseFloat(String(text).replace(/,/g, ''));
  const seen = await until(`the page shows offload > ${minOffload} and ≥ ${minAssisted} assisted viewers`, Math.max(within, 0), async () => {
    const s = await page.evaluate(() => ({
      channel: document.querySelector('#channel').value,
      offload: document.querySelector('[data-metric="offload"]').textContent,
      offloadValue: document.querySelector('[data-metric="offload"]').getAttribute('data-value'),
      assisted: document.querySelector('[data-metric="viewers_assisted"]').textContent,
      assistedValue: document.querySelector('[data-metric="viewers_assisted"]').getAttribute('data-value'),
    }));
    check(s.channel === '', `select#channel is ${JSON.stringify(s.channel)}, want all channels`);
    check(/^\d+(\.\d)? %$/.test(s.offload), `offload shows ${JSON.stringify(s.offload)}`);
    check(number(s.offload) / 100 > minOffload && Number(s.offloadValue) > minOffload, `offload shows ${s.offload} (${s.offloadValue})`);
    check(number(s.assisted) >= minAssisted && Number(s.assistedValue) >= minAssisted, `assisted viewers show ${s.assisted} (${s.assistedValue})`);
    return s;
  }, 500);
  if (env.WANT_SCREENSHOT) await page.screenshot({ path: env.WANT_SCREENSHOT, fullPage: true });
  return { offload: seen.offload, viewers_assisted: seen.assisted, after_ms: Date.now() - started };
}

async function dashboard(context) {
  const page = await context.newPage();
  const problems = report.console_errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console.error: ${msg.text()}`); });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  const bodies = new Map(); // URL path → bytes, for every finished response of the page load
  page.on('requestfinished', async (req) => {
    try {
      const res = await req.response();
      if (!res || (res.headers()['content-type'] || '').startsWith('text/event-stream')) return;
      const url = new URL(req.url());
      bodies.set(url.pathname + url.search, (await req.sizes()).responseBodySize);
    } catch (_) { /* the page went away */ }
  });

  const res = await page.goto(BASE + '/', { waitUntil: 'load', timeout: 10000 });
  check(res && res.ok(), `GET /: ${res && res.status()}`);
  const ov = await until('window.__rawflow.overview', 10000, () => page.evaluate(() => window.__rawflow && window.__rawflow.overview));
  if (env.WANT_OFFLOAD || env.WANT_ASSISTED) report.wanted = await wantFigures(page);
  const names = ov.channels.map((c) => c.name);
  const options = await page.$$eval('#channel option', (os) => os.map((o) => o.value));
  check(JSON.stringify(options) === JSON.stringify(['', ...names]), `select#channel options ${JSON.stringify(options)}, channels ${JSON.stringify(names)}`);
  check(await page.$eval('a#export', (a) => a.hidden), 'a#export is shown for all channels');
  const previews = await page.$$eval('a.preview', (as) => as.map((a) => a.getAttribute('href')));
  check(JSON.stringify(previews) === JSON.stringify(names.map((n) => `/preview/${encodeURIComponent(n)}`)), `a.preview links ${JSON.stringify(previews)}`);
  const pointsOf = () => page.$$eval('canvas[data-chart]', (cs) => Object.fromEntries(cs.map((c) => [c.dataset.chart, Number(c.dataset.points)])));
  if (names.length) {
    await until('every chart drawn with points (all channels)', 10000, async () => {
      const p = await pointsOf();
      return CHARTS.every((c) => p[c] > 0);
    });
  }
  report.figures = { total: await compareFigures(page, '') };
  report.page_weight_bytes = [...bodies.values()].reduce((a, b) => a + b, 0); // the load: until figures and charts are up
  report.page_requests = Object.fromEntries(bodies);
  report.figures_compared = [...report.figures.total.compared];

  const channel = env.CHANNEL || names[0];
  report.channel = channel || null;
  if (channel) {
    check(names.includes(channel), `channel ${channel} is not in the overview (${names.join(', ')})`);
    await page.selectOption('#channel', channel);
    report.figures[channel] = await compareFigures(page, channel);
    report.figures_compared.push(...report.figures[channel].compared);
    report.tables = await checkTables(page, channel);
    report.points = await until('every chart drawn with points', 10000, async () => {
      const [p, s] = await Promise.all([pointsOf(), page.evaluate(() => window.__rawflow.series)]);
      check(s && s.channel === channel, `the page's series is not ${channel}'s yet`);
      return CHARTS.every((c) => p[c] > 0 && p[c] === s.points.length) && p;
    });
    report.csv = await checkExport(page, channel);
  } else {
    report.points = await pointsOf();
  }

  report.generations = await until(`#updated data-generation ≥ ${MIN_GENERATIONS}`, 20000, async () => {
    const g = Number(await page.getAttribute('#updated', 'data-generation'));
    return g >= MIN_GENERATIONS && g;
  });
  const shown = await page.evaluate(() => ({
    at: Number(document.querySelector('#updated').dataset.generatedAt), overviewAt: window.__rawflow.overview.generated_at,
    text: document.querySelector('#updated').textContent,
  }));
  check(shown.at === shown.overviewAt && /updated \d\d:\d\d:\d\d/.test(shown.text), `#updated: ${JSON.stringify(shown)}`);

  if (env.SCREENSHOT) await page.screenshot({ path: env.SCREENSHOT, fullPage: true });

  if (channel) { // the range buttons: 1 h has 60 s steps
    await page.click('button[data-range="1h"]');
    report.range_1h_points = await until('range 1h drawn', 10000, async () => {
      const [pressed, s, p] = await Promise.all([
        page.$$eval('button[data-range]', (bs) => bs.filter((b) => b.getAttribute('aria-pressed') === 'true').map((b) => b.dataset.range)),
        page.evaluate(() => window.__rawflow.series), pointsOf()]);
      check(JSON.stringify(pressed) === '["1h"]', `pressed range buttons: ${JSON.stringify(pressed)}`);
      return s && s.step_seconds === 60 && p.offload === s.points.length && p.offload;
    });
  }

  const errors = await page.evaluate(() => window.__rawflow.errors);
  const errorBox = await page.evaluate(() => ({ hidden: document.querySelector('#error').hidden, text: document.querySelector('#error').textContent }));
  check(errors.length === 0, `window.__rawflow.errors: ${JSON.stringify(errors)}`);
  check(errorBox.hidden, `#error is shown: ${errorBox.text}`);
  check(problems.length === 0, problems.join('; '));
  await page.close();
}

async function preview(context) {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  await page.goto(env.PREVIEW_URL, { waitUntil: 'load', timeout: 10000 });
  const deadline = Date.now() + 30000;
  const state = () => page.evaluate(() => {
    const v = document.querySelector('#video');
    return {
      ...window.__preview, state: document.querySelector('#status').dataset.state,
      text: document.querySelector('#status').textContent, currentTime: v.currentTime,
      paused: v.paused, readyState: v.readyState, buffered: Array.from({ length: v.buffered.length }, (_, i) => [v.buffered.start(i), v.buffered.end(i)]),
    };
  });
  // what the page showed last, for the message of a check that times out
  const describe = (s) => JSON.stringify({ state: s.state, text: s.text, engine: s.engine, currentTime: s.currentTime, paused: s.paused,
    readyState: s.readyState, buffered: s.buffered, fragments: s.fragments, nonFatal: s.nonFatal, lastNonFatal: s.lastNonFatal, playError: s.playError,
    trace: s.trace });
  const noFatal = (s) => check(s.fatalErrors.length === 0, `fatal playback errors: ${JSON.stringify(s.fatalErrors)}`);
  const first = await until('preview playing', deadline - Date.now(), async () => {
    const s = await state();
    noFatal(s);
    check(s.state !== 'unsupported', `preview: ${s.text}`);
    check(s.state === 'playing', describe(s));
    return s;
  });
  const last = await until('preview currentTime +2 s', Math.max(deadline - Date.now(), 1000), async () => {
    const s = await state();
    noFatal(s);
    check(s.currentTime >= first.currentTime + 2, describe(s));
    return s;
  });
  check(last.engine === 'hls.js', `preview engine ${last.engine}, want hls.js (${last.text})`);
  check(problems.length === 0, problems.join('; '));
  if (env.PREVIEW_SCREENSHOT) await page.screenshot({ path: env.PREVIEW_SCREENSHOT });
  report.preview = {
    engine: last.engine, state: last.state, start_time: first.currentTime, current_time: last.currentTime,
    advanced: +(last.currentTime - first.currentTime).toFixed(3), non_fatal: last.nonFatal, trace: last.trace,
  };
  await page.close();
}

async function main() {
  check(BASE, 'DASHBOARD_URL is not set');
  const timer = setTimeout(() => { throw new Failure('gave up after 58 s'); }, 58000);
  timer.unref();
  browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage',
      '--autoplay-policy=no-user-gesture-required'],
  });
  report.browser = browser.version();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await dashboard(context);
  if (env.PREVIEW_URL) await preview(context);
  report.ok = true;
}

const finish = async (code, err) => {
  if (err) report.error = err instanceof Failure || err instanceof Broken ? err.message : String((err && err.stack) || err);
  report.elapsed_ms = Date.now() - started;
  if (browser) await browser.close().catch(() => {});
  process.stdout.write(JSON.stringify(report) + '\n');
  if (err) process.stderr.write(`dashboard e2e failed: ${report.error}\n`);
  process.exit(code);
};
process.on('uncaughtException', (err) => finish(1, err));
process.on('unhandledRejection', (err) => finish(1, err));
main().then(() => finish(0), (err) => finish(1, err));
