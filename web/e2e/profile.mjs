// Where a page's main thread spends its time, in the Debian chromium driven by
// playwright-core: a tool for people, not a test. It opens URL, lets it settle for SETTLE
// seconds, profiles the page's JavaScript for SECONDS seconds (CDP Profiler) and prints the
// functions with the most self time, then the preview's last playback events when the page
// is a preview page.
//
//   node web/e2e/profile.mjs URL [SECONDS=8] [SETTLE=6]
//
// e.g. against `rawflow demo`:
//   node web/e2e/profile.mjs 'http://127.0.0.1:8080/preview/demo?src=http%3A%2F%2F127.0.0.1%3A8081%2Flive%2Fdemo%2Findex.m3u8'
// (2026-12-07: before the gateway's discontinuity sequence was made small, hls.js's
// onLevelLoaded took 6.5 s of 8; after, 3 ms.)
import { chromium } from 'playwright-core';

const [url, seconds = '8', settle = '6'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node web/e2e/profile.mjs URL [SECONDS] [SETTLE]');
  process.exit(2);
}
const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  await page.goto(url, { waitUntil: 'load', timeout: 10000 });
  await sleep(+settle);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.start');
  await sleep(+seconds);
  const { profile } = await cdp.send('Profiler.stop');
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  profile.samples.forEach((id, i) => {
    const f = nodes.get(id).callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
    self.set(name, (self.get(name) || 0) + (profile.timeDeltas[i] || 0));
  });
  console.log(`self time over ${seconds} s:`);
  for (const [name, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`);
  }
  const trace = await page.evaluate(() => (window.__preview ? window.__preview.trace.slice(-8) : []));
  if (trace.length) console.log(`last playback events:\n  ${trace.join('\n  ')}`);
} finally {
  await browser.close();
}
