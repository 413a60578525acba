/**
 * Test helpers for the dirty-page trackers: launch a bundled guest with the image prepared for a
 * tracker (dirtyTracking, yieldPoints), a seeded PRNG, and the superset check.
 */
import { PassThrough } from 'node:stream';
import { prepareImage, type PreparedImage } from '../../../libos-host/image/prepare.js';
import { NodePlatform } from '../../../libos-host/platform/node-platform.js';
import { Lvm, type LvmExit, type LvmHooks } from '../../../libos-host/runtime/lvm.js';
import { LibOs, type DirSpec } from '../../../libos-host/wasi/lib-os.js';
import { guestBytes, TEST_CACHE_DIR } from '../../helpers/lvm.js';

export interface TrackedGuestOptions {
  dirtyTracking?: 'instrument' | 'none';
  yieldPoints?: boolean;
  args?: string[];
  env?: string[];
  /** Listeners on 127.0.0.1:0. */
  listen?: number;
  memoryLimitBytes?: number;
  hooks?: LvmHooks;
  dirs?: DirSpec[];
}

export interface TrackedGuest {
  lvm: Lvm;
  os: LibOs;
  image: PreparedImage;
  stdout(): string;
  stderr(): string;
  port(i?: number): number;
  run(): Promise<LvmExit>;
}

/** Prepare `guests/<name>.wasm` with the given options and instantiate it in-process. */
export async function startTrackedGuest(name: string, o: TrackedGuestOptions = {}): Promise<TrackedGuest> {
  const image = await prepareImage(guestBytes(name), {
    memoryLimitBytes: o.memoryLimitBytes ?? 256 * 1024 * 1024, cacheDir: TEST_CACHE_DIR,
    dirtyTracking: o.dirtyTracking ?? 'none', yieldPoints: o.yieldPoints ?? false,
  });
  const out: Buffer[] = [];
  const stdout = new PassThrough();
  stdout.on('data', (d: Buffer) => out.push(d));
  const errs: Buffer[] = [];
  const stderr = new PassThrough();
  stderr.on('data', (d: Buffer) => errs.push(d));
  const platform = new NodePlatform({ stdout, stderr, stdin: null });
  const os = await LibOs.create(platform, {
    args: [`${name}.wasm`, ...(o.args ?? [])], env: o.env ?? [], dirs: o.dirs ?? [],
    listeners: Array.from({ length: o.listen ?? 0 }, () => ({ uri: 'tcp.srv:127.0.0.1:0' as const, name: null })),
  });
  const lvm = Lvm.create(image, os, platform, o.hooks ?? {});
  let running: Promise<LvmExit> | null = null;
  return {
    lvm, os, image,
    stdout: () => Buffer.concat(out).toString(),
    stderr: () => Buffer.concat(errs).toString(),
    port: (i = 0) => Number((os.listeners()[i].address ?? '').split(':').pop()),
    run: () => {
      running ??= lvm.run().finally(() => { os.closeAll(); platform.closeAll(); });
      return running;
    },
  };
}

/** mulberry32: small, seedable, identical everywhere. */
export { mulberry32 as prng } from '../../../libos-host/extensions/prng.js';

/** The seed of a test run: $WATERBEAR_SEED or a fresh one. */
export function testSeed(): number {
  const env = process.env.WATERBEAR_SEED;
  return env !== undefined && env !== '' ? Number(env) >>> 0 : Math.floor(Math.random() * 2 ** 32);
}

/** Pages in `reference` missing from `candidate` (both ascending). */
export function missingPages(candidate: Uint32Array, reference: Uint32Array): number[] {
  const have = new Set(candidate);
  return [...reference].filter((p) => !have.has(p));
}

/** True when `pages` is strictly ascending (sorted, no duplicates). */
export function strictlyAscending(pages: Uint32Array): boolean {
  for (let i = 1; i < pages.length; i++) if (pages[i] <= pages[i - 1]) return false;
  return true;
}

/** A line-protocol client for memstress (the benchmarks' own): send a line, read one reply line. */
export { LineClient } from '../../../bench/lib/line-client.js';
