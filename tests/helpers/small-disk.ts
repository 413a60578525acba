import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

/**
 * A fresh tmpfs of `size` (e.g. "1m") for real full-disk tests, unmounted at teardown; null when
 * this machine cannot mount one (not root): the caller then skips with the printed reason. In CI
 * (WB_REQUIRE_TOOLS=1, run as root) a failed mount fails the test, so nothing is skipped silently.
 */
export function smallTmpfs(t: ExecutionContext, size: string): string | null {
  const mnt = mkdtempSync(join(tmpdir(), 'wb-small-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt], { stdio: 'ignore' });
  } catch (err) {
    rmSync(mnt, { recursive: true, force: true });
    if (process.env.WB_REQUIRE_TOOLS === '1') throw new Error(`cannot mount a ${size} tmpfs (needs root; .ci/run runs as root): ${(err as Error).message}`);
    t.log(`skipping: cannot mount a small tmpfs here (needs root); .ci/run runs as root`);
    return null;
  }
  t.teardown(() => {
    try { execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }); } catch { /* already gone */ }
    rmSync(mnt, { recursive: true, force: true });
  });
  return mnt;
}

/** Fill the file system at `dir` with one file until it refuses more; returns the file to delete. */
export function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  const chunk = Buffer.alloc(64 * 1024);
  const fd = openSync(filler, 'w');
  try {
    for (let i = 0; i < 100_000; i++) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return filler;
}
