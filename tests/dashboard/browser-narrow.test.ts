import type { Browser } from 'playwright-core';
import { startClusterDashboard, type RunningDashboard } from '../../dashboard/start-dashboard.js';
import { browserTest, openPage } from '../helpers/browser.js';
import { clusterFileNotRunning } from '../helpers/cluster.js';

// The page on a phone-width screen (400 px): nothing sticks out of the page sideways (the replicas'
// table scrolls inside its own box), the charts fit, and the header scrolls away.

const PHONE = { width: 400, height: 800 };

browserTest('at 400 px wide the page fits the screen: the table scrolls in its box, the charts fit, the header is not sticky', async (t) => {
  const { config } = await clusterFileNotRunning('narrow');
  let d: RunningDashboard | null = null;
  let browser: Browser | null = null;
  t.teardown(async () => { await browser?.close(); await d?.stop(); });
  d = await startClusterDashboard(config, { listen: '127.0.0.1:0', adminToken: 'narrow-token' });
  const opened = await openPage(t);
  browser = opened.browser;
  const { page, pageErrors } = opened;
  await page.setViewportSize(PHONE);
  await page.goto(`${d.url}#token=narrow-token`);
  await page.waitForFunction(() => document.querySelector('[data-testid=protection]')?.getAttribute('data-state') === 'NO PRIMARY'
    && document.querySelectorAll('[data-testid=members] tbody tr').length === 3, null, { timeout: 15_000 });
  const m = await page.evaluate(() => ({
    docWidth: document.documentElement.scrollWidth,
    header: getComputedStyle(document.querySelector('header')!).position,
    headerHeight: document.querySelector('header')!.getBoundingClientRect().height,
    charts: Array.from(document.querySelectorAll('[data-testid=chart]')).map((c) => c.getBoundingClientRect().right),
    tableBox: document.querySelector('.table-scroll')!.getBoundingClientRect().right,
  }));
  t.log(JSON.stringify(m));
  t.true(m.docWidth <= PHONE.width, `the document is ${m.docWidth} px wide`);
  t.is(m.header, 'static');
  t.true(m.charts.length === 6 && m.charts.every((r) => r <= PHONE.width), `chart right edges ${m.charts.join(', ')}`);
  t.true(m.tableBox <= PHONE.width);
  t.true(m.headerHeight < PHONE.height / 4, `header ${m.headerHeight} px`);
  t.deepEqual(pageErrors, []);
});
