import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { browserTest, browserTestSerial, openPage, startDashboardProcess, type DashboardProcess } from '../helpers/browser.js';

// A real browser on a `waterbear dashboard` process serving a real local cluster (shared by the
// tests of this file, which run one after another):
// - a wrong admin token: the page asks the server as soon as it has a token (or after an action's
//   401), says the token was refused and keeps the actions disabled until another token is given
//   (#token=… in the URL, or typed in);
// - while an action is in flight every action button is disabled (no double submit), and the
//   result reads as text, not JSON;
// - the dashboard process frozen with SIGSTOP: the page stops claiming PROTECTED and says NO DATA
//   (with what it last saw), disables the actions, and is live again after SIGCONT.

const TOKEN = 'stale-test-token';
/** The page's bound (STALE_AFTER_MS in dashboard/ui/app.ts) … */
const STALE_AFTER_MS = 2000;
/** … and the slack a busy 2-core machine gets on top of it. */
const SLACK_MS = 4000;
/** The page is live again after SIGCONT within this long (the frozen stream resumes, or the page reconnects: at most 10 s apart). */
const RECOVERED_WITHIN_MS = 25_000;

let cluster: TestCluster | null = null;
let dashboard: DashboardProcess | null = null;
if (browserTest === test) {
  test.before(async () => {
    cluster = await startTestCluster({ dashboards: true, env: { WATERBEAR_ADMIN_TOKEN: TOKEN } });
    await cluster.protectedPrimary();
    dashboard = await startDashboardProcess(join(cluster.dir, 'waterbear.yaml'), { WATERBEAR_ADMIN_TOKEN: TOKEN });
  });
  test.after.always(async () => { await dashboard?.stop(); await cluster?.stop(); });
}

const attr = (page: Page, sel: string, name: string): Promise<string | null> => page.getAttribute(sel, name);
/** Every action button of the page (the checkpoint button and the members' buttons) with whether it is disabled and why. */
const buttons = (page: Page): Promise<Array<{ id: string; disabled: boolean; title: string }>> => page.$$eval('button[data-testid^=action-]',
  (bs) => bs.map((b) => ({ id: (b as HTMLElement).dataset.testid!, disabled: (b as HTMLButtonElement).disabled, title: (b as HTMLElement).title })));
const waitState = (page: Page, want: string, timeout: number): Promise<unknown> =>
  page.waitForFunction((w) => document.querySelector('[data-testid=protection]')?.getAttribute('data-state') === w, want, { timeout });

/** A page on the shared dashboard with `token` in its URL, once it shows PROTECTED and its checkpoint button is enabled. */
async function protectedPage(t: ExecutionContext, token: string): Promise<{ page: Page; pageErrors: string[] }> {
  const { browser, page, pageErrors } = await openPage(t);
  t.teardown(() => browser.close());
  await page.goto(`${dashboard!.url}#token=${token}`);
  await waitState(page, 'PROTECTED', 20_000);
  await page.waitForSelector('[data-testid=action-checkpoint]:not([disabled])', { timeout: 10_000 });
  return { page, pageErrors };
}

const waitRefused = (page: Page): Promise<unknown> =>
  page.waitForFunction(() => document.querySelector('[data-testid=admin-state]')?.getAttribute('data-refused') === 'true', null, { timeout: 10_000 });

browserTestSerial('a wrong admin token is said as soon as the page has it, before any action is tried, and keeps the actions disabled until another token is given', async (t) => {
  const { browser, page, pageErrors } = await openPage(t);
  t.teardown(() => browser.close());
  const actionsSent: string[] = [];
  page.on('request', (r) => { if (r.url().includes('/api/actions/')) actionsSent.push(r.url()); });
  await page.goto(`${dashboard!.url}#token=wrong-token`);
  await waitState(page, 'PROTECTED', 20_000);
  await waitRefused(page);
  t.deepEqual(actionsSent, [], 'no action was needed to find out');
  t.regex(await page.locator('[data-testid=admin-state]').innerText(), /admin token was refused.*401 WB_UNAUTHORIZED: wrong admin token/);
  for (const b of await buttons(page)) {
    t.true(b.disabled, `${b.id} is disabled after the 401`);
    t.regex(b.title, /token was refused/);
  }
  // Still so once the toast is gone (it shows for 6 s).
  await page.waitForFunction(() => !document.querySelector('[data-testid=toast]')!.classList.contains('show'), null, { timeout: 10_000 });
  t.is(await attr(page, '[data-testid=admin-state]', 'data-refused'), 'true');
  t.true((await buttons(page)).every((b) => b.disabled));
  // A new token in the URL of the open page enables the actions again, and leaves the address bar.
  await page.evaluate((tok) => { location.hash = `token=${tok}`; }, TOKEN);
  await page.waitForFunction(() => document.querySelector('[data-testid=admin-state]')?.textContent === 'actions enabled', null, { timeout: 5000 });
  t.is(new URL(page.url()).hash, '');
  t.true((await buttons(page)).some((b) => !b.disabled));
  // Typed in: checked once typing pauses.
  await page.fill('[data-testid=token]', 'typed-wrong');
  await waitRefused(page);
  t.regex(await page.locator('[data-testid=admin-state]').innerText(), /admin token was refused.*wrong admin token/);
  t.deepEqual(actionsSent, []);
  t.deepEqual(pageErrors, []);
});

browserTestSerial('an action answered 401 (the servers\' token changed after the page checked its own) marks the token refused too', async (t) => {
  const { browser, page, pageErrors } = await openPage(t);
  t.teardown(() => browser.close());
  // The check passes as it did before the change; the action meets the server's real answer.
  await page.route('**/api/admin/check', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: '{"ok":true}' }));
  await page.goto(`${dashboard!.url}#token=changed-token`);
  await waitState(page, 'PROTECTED', 20_000);
  await page.waitForSelector('[data-testid=action-checkpoint]:not([disabled])', { timeout: 10_000 });
  await page.click('[data-testid=action-checkpoint]');
  await page.click('[data-testid=confirm-ok]');
  await waitRefused(page);
  t.regex(await page.locator('[data-testid=admin-state]').innerText(), /admin token was refused.*401 WB_UNAUTHORIZED: wrong admin token/);
  t.true((await buttons(page)).every((b) => b.disabled));
  t.deepEqual(pageErrors, []);
});

browserTestSerial('while an action is in flight every action button is disabled, and its result reads as text', async (t) => {
  const { page, pageErrors } = await protectedPage(t, TOKEN);
  // The request is held back 1.5 s by the test, so that it is in flight long enough to look.
  await page.route('**/api/actions/**', async (route) => { await new Promise((r) => setTimeout(r, 1500)); await route.continue(); });
  const before = await buttons(page);
  t.true(before.some((b) => b.id.startsWith('action-switchover-') && !b.disabled), JSON.stringify(before));
  await page.click('[data-testid=action-checkpoint]');
  await page.click('[data-testid=confirm-ok]');
  // The dialog's close event comes a task later; the request is held back longer than this wait.
  await page.waitForFunction(() => (document.querySelector('[data-testid=action-checkpoint]') as HTMLButtonElement).disabled, null, { timeout: 1000 });
  const during = await buttons(page);
  t.true(during.every((b) => b.disabled && /checkpoint running/.test(b.title)), JSON.stringify(during));
  await page.waitForFunction(() => /checkpoint taken: epoch \d+/.test(document.querySelector('[data-testid=toast]')?.textContent ?? ''), null, { timeout: 15_000 });
  t.notRegex(await page.locator('[data-testid=toast]').innerText(), /[{}"]/, 'the result reads as text, not JSON');
  await page.waitForSelector('[data-testid=action-checkpoint]:not([disabled])', { timeout: 5000 });
  t.deepEqual(pageErrors, []);
});

browserTestSerial('a frozen dashboard server (SIGSTOP): the page says NO DATA within the bound, disables the actions, and is live again after SIGCONT', async (t) => {
  const { page, pageErrors } = await protectedPage(t, TOKEN);
  const pid = dashboard!.pid; // a process this test file started
  process.kill(pid, 'SIGSTOP');
  const stoppedAt = Date.now();
  try {
    await waitState(page, 'NO-DATA', STALE_AFTER_MS + SLACK_MS);
    t.log(`NO DATA shown ${Date.now() - stoppedAt} ms after SIGSTOP`);
    t.is(await attr(page, '[data-testid=protection]', 'data-last-state'), 'PROTECTED');
    t.notRegex(await attr(page, '[data-testid=protection]', 'class') ?? '', /\bprotected\b/, 'not green');
    t.regex(await page.locator('[data-testid=protection]').innerText(), /NO DATA — last seen PROTECTED \d+ s ago[\s\S]*since \d\d:\d\d:\d\d/);
    t.regex(await page.locator('[data-testid=live]').innerText(), /STALE: no update for \d+ s/);
    t.regex(await page.title(), /^NO DATA/);
    for (const b of await buttons(page)) {
      t.true(b.disabled, `${b.id} is disabled while there is no data`);
      t.regex(b.title, /no live data/);
    }
    t.is(await page.$eval('main', (m) => getComputedStyle(m).opacity), '0.5', 'the old data is dimmed');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await waitState(page, 'PROTECTED', RECOVERED_WITHIN_MS);
  t.is(await attr(page, '[data-testid=live]', 'data-link'), 'live');
  await page.waitForSelector('[data-testid=action-checkpoint]:not([disabled])', { timeout: 5000 });
  t.regex(await page.title(), /^PROTECTED · test · waterbear$/);
  t.deepEqual(pageErrors, []);
});
