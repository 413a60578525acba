/**
 * Restore of a large guest the way an operator does it: `waterbear run memstress.wasm
 * --checkpoint-dir DIR`, every page of its buffer written (TOUCH), kill -9 once the store holds
 * them, then `waterbear restore DIR --no-checkpoint` in fresh processes. The time is what the
 * CLI reports (store read, page checksums, image preparation from the cache, library OS with
 * its listener, the memory written), and each restore is checked by a TOUCH of every page,
 * which verifies that every page holds what the guest last wrote there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDirStore } from '../../checkpoint/checkpoint-dir.js';
import { LineClient } from './line-client.js';

const STEP_TIMEOUT_MS = 180_000;
const PAGE_BYTES = 4096;
const MIB = 1024 * 1024;

/** A CLI process with its stderr collected, and a wait for a line matching a pattern. */
class CliProcess {
  private err = '';
  private readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.err += d; });
    child.stdout!.resume();
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  async waitFor(pattern: RegExp, what: string): Promise<RegExpMatchArray> {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    for (;;) {
      const m = this.err.match(pattern);
      if (m !== null) return m;
      if (this.child.exitCode !== null || Date.now() > deadline) throw new Error(`${what}: not seen (exit ${this.child.exitCode}); stderr:\n${this.err.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async kill9(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

function waterbear(root: string, args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  return new CliProcess(spawn(process.execPath, [join(root, 'cli', 'waterbear.js'), ...args], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WATERBEAR_LOG_LEVEL: 'warn', ...env },
  }));
}

export interface CliRestoreRun { restoreMs: number; processMs: number; verified: string }
export interface CliRestoreResult { memoryBytes: number; pages: number; storeBytes: number; setupMs: number; byMode: Map<string, CliRestoreRun[]> }

/**
 * Set up a store of a memstress guest whose buffer is `bufferMib` MiB, every page written, then
 * restore it `reps` times per mode (env overrides for the restoring process, e.g. the native
 * population switched off), modes interleaved.
 */
export async function measureCliRestore(root: string, bufferMib: number, reps: number, modes: ReadonlyArray<[string, NodeJS.ProcessEnv]>): Promise<CliRestoreResult> {
  const dir = join(mkdtempSync(join(tmpdir(), 'wb-bench-restore-')), 'cp');
  const pagesInBuffer = bufferMib * MIB / PAGE_BYTES;
  const t0 = performance.now();
  try {
    const run = waterbear(root, ['run', 'guests/memstress.wasm', '--listen', '127.0.0.1:0', '--env', `MEMSTRESS_MB=${bufferMib}`,
      '--memory-limit', `${bufferMib + 64}MiB`, '--checkpoint-dir', dir, '--checkpoint-interval', '100ms', '--no-cache']);
    let stats;
    try {
      const port = Number((await run.waitFor(/listening on 127\.0\.0\.1:(\d+)/, 'waterbear run listening'))[1]);
      const client = await LineClient.connect(port);
      const touched = await client.request(`TOUCH ${pagesInBuffer}`);
      if (!touched.startsWith('OK')) throw new Error(`TOUCH: ${touched}`);
      // Every page is written once; wait until the store's latest epoch holds them all.
      const deadline = Date.now() + STEP_TIMEOUT_MS;
      for (;;) {
        const store = openDirStore(dir, { readOnly: true });
        stats = store.stats();
        store.close();
        if (stats.pages >= pagesInBuffer) break;
        if (Date.now() > deadline) throw new Error(`the store holds ${stats.pages} of ${pagesInBuffer} pages after ${STEP_TIMEOUT_MS} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
      client.close();
    } finally {
      await run.kill9();
    }
    const setupMs = performance.now() - t0;

    const byMode = new Map<string, CliRestoreRun[]>(modes.map(([name]) => [name, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (const [name, env] of modes) {
        const spawned = performance.now();
        const p = waterbear(root, ['restore', dir, '--no-checkpoint'], env);
        try {
          const ms = Number((await p.waitFor(/restored epoch \d+ from .* in ([\d.]+) ms/, 'waterbear restore'))[1]);
          const port = Number((await p.waitFor(/listening on 127\.0\.0\.1:(\d+)/, 'restored listener'))[1]);
          const processMs = performance.now() - spawned;
          const client = await LineClient.connect(port);
          const verified = await client.request(`TOUCH ${pagesInBuffer}`);
          client.close();
          if (!verified.startsWith('OK')) throw new Error(`the restored guest found a damaged page: ${verified}`);
          byMode.get(name)!.push({ restoreMs: ms, processMs, verified });
        } finally {
          await p.kill9();
        }
      }
    }
    return { memoryBytes: stats.memoryBytes, pages: stats.pages, storeBytes: stats.bytes, setupMs, byMode };
  } finally {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
}
