import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { REPO } from './lvm.js';

/** Debian's chromium (installed by .ci/run); a browser is never downloaded. */
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** WB_DASHBOARD_SCREENSHOTS=1 saves the screenshots linked from the docs as docs/dashboard-<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.WB_DASHBOARD_SCREENSHOTS !== '1') return;
  mkdirSync(join(REPO, 'docs'), { recursive: true });
  await page.screenshot({ path: join(REPO, 'docs', `dashboard-${name}.png`), fullPage: true });
}
