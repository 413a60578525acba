import type { Browser } from 'playwright-core';
import { startClusterDashboard, type RunningDashboard } from '../../dashboard/start-dashboard.js';
import type { DashboardState } from '../../dashboard/model.js';
import { startTestCluster, until, type TestCluster } from '../helpers/cluster.js';
import { browserTest, openPage, screenshot } from '../helpers/browser.js';

// A primary cut off from the coordinator (the backup and the witness stopped with SIGSTOP) parks
// the service address. It still answers the dashboard, and the operator must see that clients
// cannot reach it although the view says it is protected: the real browser shows it in the
// banner, the primary's row and the numbers, and the timeline records the park. After SIGCONT the
// cluster serves again (the same primary listening again, or a takeover), and the page says so.


browserTest('a primary that lost its lease and freed the service address is shown as parked, and as serving again afterwards', async (t) => {
  let c: TestCluster | null = null;
  let d: RunningDashboard | null = null;
  let browser: Browser | null = null;
  const stopped: number[] = [];
  t.teardown(async () => {
    for (const pid of stopped) { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } }
    await browser?.close(); await d?.stop(); await c?.stop();
  });

  c = await startTestCluster();
  const first = await c.protectedPrimary();
  const a = first.replicaId;
  const b = a === 'a' ? 'b' : 'a';
  d = await startClusterDashboard(c.config, { listen: '127.0.0.1:0', adminToken: null });
  const opened = await openPage(t);
  browser = opened.browser;
  const { page, pageErrors } = opened;
  await page.goto(d.url);
  await page.waitForFunction((id) => document.querySelector('[data-testid=primary-id]')?.getAttribute('data-primary') === id, a, { timeout: 15_000 });
  t.is(await page.getAttribute('[data-testid=protection]', 'data-parked'), 'false');

  // Cut the primary off from the coordinator's quorum: the other two voters stop (processes this test started, by PID).
  for (const id of [b, 'w']) {
    const pid = c.cluster.pid(id);
    t.truthy(pid, `${id} has a pid`);
    process.kill(pid!, 'SIGSTOP');
    stopped.push(pid!);
  }
  await page.waitForFunction((id) => document.querySelector(`[data-testid="member-${id}"] [data-testid=role]`)?.getAttribute('data-parked') === 'true', a, { timeout: 15_000 });
  t.is(await page.getAttribute('[data-testid=protection]', 'data-parked'), 'true');
  t.regex(await page.locator('[data-testid=protection] small.parked').innerText(), new RegExp(`SERVICE ADDRESS FREED: ${a} lost its coordinator lease`));
  t.regex(await page.locator(`[data-testid="member-${a}"] [data-testid=role]`).innerText(), /primary · parked/);
  t.regex(await page.locator('#numbers').innerText(), /freed \(lease lost\)/i);
  await page.waitForSelector('[data-testid=timeline] li[data-kind=service-parked]', { timeout: 5000 });
  t.regex(await page.locator('[data-testid=timeline] li[data-kind=service-parked]').first().innerText(), new RegExp(`${a} lost its coordinator lease \\d+ ms ago and freed the service address`));
  // The API says the same as the page.
  const api = await (await fetch(`${d.url}api/state`)).json() as DashboardState;
  t.true(api.cluster.primaryNumbers?.serviceParked === true);
  t.true(api.cluster.members.find((m) => m.id === a)?.serviceParked === true);
  await screenshot(page, 'parked');

  for (const pid of stopped.splice(0)) process.kill(pid, 'SIGCONT');
  // Serving again: whoever is primary now listens, a client is served, and the page no longer says parked.
  const client = await c.client();
  t.is(await client.call('SET', 'after-park', '1'), 'OK');
  client.close();
  const now = await until('a primary that is not parked', async () => {
    const s = await c!.cluster.primary();
    return s !== null && !(JSON.parse(s.statusJson) as { stats: { serviceParked: boolean } }).stats.serviceParked ? s : null;
  }, 30_000);
  await page.waitForFunction((id) => document.querySelector('[data-testid=primary-id]')?.getAttribute('data-primary') === id
    && document.querySelector('[data-testid=protection]')?.getAttribute('data-parked') === 'false'
    && document.querySelector(`[data-testid="member-${id}"] [data-testid=role]`)?.getAttribute('data-parked') === 'false', now.replicaId, { timeout: 10_000 });
  if (now.replicaId === a) {
    // Still primary (of the same view, or of one it proposed without the stopped backup): it bound the address again when its lease returned.
    await page.waitForSelector('[data-testid=timeline] li[data-kind=service-unparked]', { timeout: 5000 });
  }
  t.log(`after SIGCONT: ${now.replicaId} is primary of view ${now.view} (was ${a} of view ${first.view})`);
  t.deepEqual(pageErrors, []);
});
