import type { Browser, Page } from 'playwright-core';
import { startClusterDashboard, type RunningDashboard } from '../../dashboard/start-dashboard.js';
import { startTestCluster, until, type TestCluster } from '../helpers/cluster.js';
import { browserTest, openPage, screenshot } from '../helpers/browser.js';

// A real browser (Debian's chromium, never a downloaded one) on a real local cluster: the page
// shows the roles, a kill -9 of the primary shows as a failover with the new primary within 2 s
// of the view change, and a planned switchover clicked in the UI completes.
// WB_DASHBOARD_SCREENSHOTS=1 saves the screenshots linked from the README under docs/.

/** The bound: the page shows the new primary within this long after the view change. */
const SHOWN_AFTER_VIEW_CHANGE_MS = 2000;
const TOKEN = 'browser-test-token';

/** data-role of member `id`'s role cell. */
function roleOf(page: Page, id: string): Promise<string | null> {
  return page.locator(`[data-testid="member-${id}"] [data-testid="role"]`).getAttribute('data-role', { timeout: 1000 }).catch(() => null);
}

browserTest('the page shows the roles, a failover after kill -9 within 2 s of the view change, and a switchover clicked in the UI', async (t) => {
  let c: TestCluster | null = null;
  let d: RunningDashboard | null = null;
  let browser: Browser | null = null;
  t.teardown(async () => { await browser?.close(); await d?.stop(); await c?.stop(); });

  // No automatic restart: the killed primary is started again by the test once the page has shown
  // the failover. Restarted by the supervisor (500 ms after the kill), it sometimes rejoined before
  // the dashboard's next poll, so the dashboard first saw the new primary in the join's view (3)
  // rather than the takeover's (2) that this test reads from the cluster (2 runs in 19).
  c = await startTestCluster({ dashboards: true, restart: false, env: { WATERBEAR_ADMIN_TOKEN: TOKEN } });
  await c.protectedPrimary();
  d = await startClusterDashboard(c.config, { listen: '127.0.0.1:0', adminToken: TOKEN });
  const opened = await openPage(t);
  browser = opened.browser;
  const { page, pageErrors } = opened;
  await page.goto(`${d.url}#token=${TOKEN}`);

  // The roles and the loudest state.
  await page.waitForFunction(() => document.querySelector('[data-testid=protection]')?.getAttribute('data-state') === 'PROTECTED', null, { timeout: 15_000 });
  // A cluster this young may still move its primary (a slow start on a busy 2-core machine let a
  // backup take over once): go on with the primary that the cluster and the page agree on.
  const first = await until('the page showing the protected primary', async () => {
    const p = await c!.protectedPrimary();
    return await page.getAttribute('[data-testid=primary-id]', 'data-primary') === p.replicaId ? p : null;
  }, 30_000);
  const other = first.replicaId === 'a' ? 'b' : 'a';
  t.is(await roleOf(page, first.replicaId), 'primary');
  t.is(await roleOf(page, other), 'backup');
  t.is(await roleOf(page, 'w'), 'witness');
  t.is(await page.getAttribute('[data-testid=primary-id]', 'data-primary'), first.replicaId);
  // Some traffic, so the charts have something to draw.
  const client = await c.client();
  for (let i = 0; i < 50; i++) await client.call('SET', `key${i}`, 'x'.repeat(100 + i));
  client.close();
  await until('a chart point with checkpoints', async () => (await d!.monitor.series()).some((p) => (p.checkpointsPerSecond ?? 0) > 0) || null, 10_000);
  await page.waitForTimeout(1200);
  await screenshot(page, 'protected');

  // kill -9 the primary (a process this test started, by its PID).
  const pid = c.cluster.pid(first.replicaId);
  t.truthy(pid);
  // The page records when it first shows the new primary (the page's clock is this machine's).
  await page.evaluate((want) => {
    const el = document.querySelector('[data-testid=primary-id]')!;
    new MutationObserver(() => { if (el.getAttribute('data-primary') === want && (window as unknown as { shownAt?: number }).shownAt === undefined) (window as unknown as { shownAt?: number }).shownAt = Date.now(); })
      .observe(el, { attributes: true, attributeFilter: ['data-primary'] });
  }, other);
  process.kill(pid!, 'SIGKILL');
  // The view change: the backup answers as primary of a newer view.
  const promoted = await until('the backup promoted', async () => { const s = await c!.cluster.status(other); return s !== null && s.role === 'primary' && s.view > first.view ? s : null; }, 30_000);
  const viewChangedAt = Date.now();
  const shown = await page.waitForFunction(() => (window as unknown as { shownAt?: number }).shownAt ?? null, null, { timeout: SHOWN_AFTER_VIEW_CHANGE_MS + 1000 }).then((h) => h.jsonValue() as Promise<number>);
  t.true(shown - viewChangedAt <= SHOWN_AFTER_VIEW_CHANGE_MS, `the page showed the new primary ${shown - viewChangedAt} ms after the view change`);
  await page.waitForSelector(`[data-testid=timeline] li[data-kind=failover]`, { timeout: SHOWN_AFTER_VIEW_CHANGE_MS });
  t.regex(await page.locator('[data-testid=timeline] li[data-kind=failover]').first().innerText(), new RegExp(`failover: ${other} is primary of view ${promoted.view}`));
  t.is(await roleOf(page, other), 'primary');
  await screenshot(page, 'failover');

  // The killed replica is started again and rejoins; then a planned switchover back to it, from the UI.
  c.cluster.startMember(first.replicaId);
  await page.waitForFunction((id) => {
    const b = document.querySelector(`[data-testid=action-switchover-${id}]`) as HTMLButtonElement | null;
    return b !== null && !b.disabled && document.querySelector('[data-testid=protection]')?.getAttribute('data-state') === 'PROTECTED';
  }, first.replicaId, { timeout: 40_000 });
  await page.click(`[data-testid=action-switchover-${first.replicaId}]`);
  await page.waitForSelector('[data-testid=confirm-dialog][open]');
  await screenshot(page, 'confirm');
  await page.click('[data-testid=confirm-ok]');
  await page.waitForFunction((id) => document.querySelector('[data-testid=primary-id]')?.getAttribute('data-primary') === id, first.replicaId, { timeout: 30_000 });
  await page.waitForSelector('[data-testid=timeline] li[data-kind=switchover]', { timeout: 5000 });
  const toast = await page.locator('[data-testid=toast]').innerText();
  t.regex(toast, /^switchover done: view \d+ \(run on \w+\)$/, 'the result reads as text');
  t.is((await c.primary()).replicaId, first.replicaId);
  await page.waitForFunction(() => document.querySelector('[data-testid=protection]')?.getAttribute('data-state') === 'PROTECTED', null, { timeout: 20_000 });
  await screenshot(page, 'switchover');
  t.deepEqual(pageErrors, []);
});
