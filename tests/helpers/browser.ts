import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO } from './lvm.js';
import { toolAvailable } from './tools.js';

/** Debian's chromium (installed by .ci/run); a browser is never downloaded. */
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** `test`, or `test.skip` with a message where chromium is missing (CI then fails: see openPage). */
export const browserTest = toolAvailable('chromium', 'the dashboard browser tests drive it with playwright-core') ? test : test.skip;

/**
 * Launch chromium and open a page, collecting the page's uncaught errors (a test ends by checking
 * there were none). Under WB_REQUIRE_TOOLS=1 (CI) a missing chromium fails the test.
 */
export async function openPage(t: ExecutionContext): Promise<{ browser: Browser; page: Page; pageErrors: string[] }> {
  if (process.env.WB_REQUIRE_TOOLS === '1') t.true(existsSync(CHROMIUM), `${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return { browser, page, pageErrors };
}

/** WB_DASHBOARD_SCREENSHOTS=1 saves the screenshots linked from the docs as docs/dashboard-<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.WB_DASHBOARD_SCREENSHOTS !== '1') return;
  mkdirSync(join(REPO, 'docs'), { recursive: true });
  await page.screenshot({ path: join(REPO, 'docs', `dashboard-${name}.png`), fullPage: true });
}
