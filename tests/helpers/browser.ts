import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startWaterbear } from './cli.js';
import { until } from './cluster.js';
import { REPO } from './lvm.js';
import { toolAvailable } from './tools.js';

/** Debian's chromium (installed by .ci/run); a browser is never downloaded. */
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** `test`, or `test.skip` with a message where chromium is missing (CI then fails: see openPage). */
export const browserTest = toolAvailable('chromium', 'the dashboard browser tests drive it with playwright-core') ? test : test.skip;
/** browserTest, one test after another (tests that share a cluster, a server or a browser). */
export const browserTestSerial = browserTest === test ? test.serial : test.skip;

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

/** A `waterbear dashboard` in its own process (a test can SIGSTOP it): its URL, its PID, and stop (SIGKILL, after SIGCONT). */
export interface DashboardProcess { url: string; pid: number; stop(): Promise<void> }

/** Start `waterbear dashboard --config FILE` on a free loopback port, with `env` added (e.g. WATERBEAR_ADMIN_TOKEN). */
export async function startDashboardProcess(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<DashboardProcess> {
  const d = startWaterbear(['dashboard', '--config', configFile, '--listen', '127.0.0.1:0'], env);
  const { child } = d;
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGCONT'); // a stopped process keeps a pending SIGKILL until continued
    child.kill('SIGKILL');
    await d.exited;
  };
  try {
    const url = await until('the dashboard URL', () => (child.exitCode !== null ? Promise.reject(new Error(`waterbear dashboard exited: ${d.out()}${d.err()}`)) : /on (http:\/\/\S+\/)/.exec(d.out())?.[1] ?? null), 30_000);
    return { url, pid: child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
