import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../../bench/support/servers.js';
import { loadClusterConfig, type ClusterConfig } from '../../replica/config/cluster-config.js';
import { WATERBEAR } from './cli.js';
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
  const child = spawn(process.execPath, [WATERBEAR, 'dashboard', '--config', configFile, '--listen', '127.0.0.1:0'], {
    env: { ...process.env, WATERBEAR_CACHE_DIR: join(REPO, '.cache/test-images'), WATERBEAR_LOG_LEVEL: 'error', ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGCONT'); // a stopped process keeps a pending SIGKILL until continued
    child.kill('SIGKILL');
    await exited;
  };
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  try {
    const url = await until('the dashboard URL', () => (child.exitCode !== null ? Promise.reject(new Error(`waterbear dashboard exited: ${out}`)) : /on (http:\/\/\S+\/)/.exec(out)?.[1] ?? null), 30_000);
    return { url, pid: child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The cluster file of a cluster that is not running (a, b and witness w on free loopback ports):
 * a dashboard on it reports NO PRIMARY, with every member down, four times a second.
 */
export async function clusterNotRunning(name: string): Promise<ClusterConfig> {
  const dir = mkdtempSync(join(tmpdir(), `wb-dash-${name}-`));
  const [svc, a, b, w] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const file = join(dir, 'waterbear.yaml');
  const member = (id: string, port: number): Record<string, string> => ({ id, address: `127.0.0.1:${port}`, dataDir: join(dir, id) });
  // A cluster file is YAML, and JSON is YAML.
  writeFileSync(file, JSON.stringify({
    cluster: name, guest: { module: join(REPO, 'guests/kv.wasm') }, listen: [`127.0.0.1:${svc}`],
    replicas: [member('a', a), member('b', b)], witnesses: [member('w', w)],
  }));
  return loadClusterConfig(file);
}
