import * as http from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { MAX_STREAM_CLIENTS } from '../../dashboard/dashboard-server.js';
import { startClusterDashboard, type RunningDashboard } from '../../dashboard/start-dashboard.js';
import { browserTest, openPage } from '../helpers/browser.js';
import { clusterFileNotRunning } from '../helpers/cluster.js';

// A browser's EventSource gives up for good when /api/stream answers an HTTP error. The page must
// reconnect by itself and say what the server answered: the dashboard's own 503 when its live
// streams are all taken, and a proxy's 502 while the dashboard restarts behind it. No cluster
// runs: the dashboard reports NO PRIMARY four times a second, which is live data all the same.

/** The page retries after 1, 2, 4, 8, then every 10 s: it is live again within this long of the stream answering. */
const RECOVERED_WITHIN_MS = 25_000;

/** Hold `n` live streams of the dashboard at `url` open (answered 200); release them with the function returned. */
async function holdStreams(url: string, n: number): Promise<() => void> {
  const reqs: http.ClientRequest[] = [];
  await Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve, reject) => {
    const req = http.get(`${url}api/stream`, (res) => {
      res.resume();
      if (res.statusCode === 200) resolve(); else reject(new Error(`stream answered ${res.statusCode}`));
    });
    req.on('error', () => { /* destroyed on release */ });
    reqs.push(req);
  })));
  return () => { for (const r of reqs) r.destroy(); };
}

function closeServer(s: http.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => s.close(() => resolve()));
  s.closeAllConnections();
  return closed;
}

const live = (page: Page, timeout: number): Promise<unknown> =>
  page.waitForFunction(() => document.querySelector('[data-testid=live]')?.getAttribute('data-link') === 'live'
    && document.querySelector('[data-testid=protection]')?.getAttribute('data-state') === 'NO PRIMARY', null, { timeout });
const liveText = (page: Page, re: RegExp, timeout: number): Promise<unknown> =>
  page.waitForFunction((src) => new RegExp(src).test(document.querySelector('[data-testid=live]')?.textContent ?? ''), re.source, { timeout });

browserTest('the page reconnects after the stream answers 503 (too many live streams) and 502 (a proxy while the dashboard restarts), and says why it waits', async (t) => {
  const { config } = await clusterFileNotRunning('reconnect');
  let d: RunningDashboard | null = null;
  let proxy: http.Server | null = null;
  let release: (() => void) | null = null;
  let browser: Browser | null = null;
  t.teardown(async () => {
    release?.();
    await browser?.close();
    await d?.stop();
    if (proxy !== null) await closeServer(proxy);
  });

  d = await startClusterDashboard(config, { listen: '127.0.0.1:0', adminToken: null });
  const { port } = new URL(d.url);
  const opened = await openPage(t);
  browser = opened.browser;
  const { page, pageErrors } = opened;

  // 503: every live stream taken before the page opens. What the page said on the way is recorded,
  // so that the test asserts first that it recovers (the old page never did), then what it said.
  release = await holdStreams(d.url, MAX_STREAM_CLIENTS);
  await page.goto(d.url);
  await page.evaluate(() => {
    const w = window as unknown as { said: string[] };
    w.said = [];
    const el = document.querySelector('[data-testid=live]')!;
    new MutationObserver(() => { w.said.push(`${document.querySelector('[data-testid=protection]')?.getAttribute('data-state')}: ${el.textContent}`); })
      .observe(el, { childList: true, characterData: true, subtree: true });
  });
  await page.waitForSelector('[data-testid=live].off', { timeout: 15_000 });
  await liveText(page, /503/, 10_000).catch(() => null);
  release();
  release = null;
  await live(page, RECOVERED_WITHIN_MS);
  const said = await page.evaluate(() => (window as unknown as { said: string[] }).said);
  t.true(said.some((s) => /^NO-DATA: .*the server answered 503 WB_BAD_REQUEST: too many live streams/.test(s)), said.join('\n'));
  t.regex(await page.title(), /^NO PRIMARY · reconnect · waterbear$/);

  // 502: the dashboard stops and a proxy answers for it until it is back on the same port.
  await d.stop();
  d = null;
  const p = http.createServer((_req, res) => { res.writeHead(502, { 'content-type': 'text/html' }); res.end('<html><body>502 Bad Gateway</body></html>'); });
  proxy = p;
  await new Promise<void>((resolve) => p.listen(Number(port), '127.0.0.1', resolve));
  await liveText(page, /HTTP 502 Bad Gateway/, 15_000);
  t.is(await page.getAttribute('[data-testid=protection]', 'data-state'), 'NO-DATA');
  t.regex(await page.locator('[data-testid=protection]').innerText(), /not connected to the dashboard server since \d\d:\d\d:\d\d/);
  await closeServer(p);
  proxy = null;
  d = await startClusterDashboard(config, { listen: `127.0.0.1:${port}`, adminToken: null });
  await live(page, RECOVERED_WITHIN_MS);
  t.deepEqual(pageErrors, []);
});
