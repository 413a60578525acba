/** Helpers for checkpoint tests: launch a bundled guest with a tracker, seeded randomness. */
import { PassThrough } from 'node:stream';
import { NodePlatform } from '../../../libos-host/platform/node-platform.js';
import { launchLvm, type ImageChoices, type LaunchedLvm } from '../../../libos-host/runtime/launch.js';
import type { LvmHooks } from '../../../libos-host/runtime/lvm.js';
import { selectTracker } from '../../../checkpoint/trackers/select-tracker.js';
import type { DirtyTracker, TrackerKind } from '../../../checkpoint/trackers/dirty-tracker.js';
import { guestBytes, TEST_CACHE_DIR } from '../../helpers/lvm.js';

export const MEMORY_LIMIT_BYTES = 256 * 1024 * 1024;

/** mulberry32: a small seeded PRNG for test choices. */
export { mulberry32 as seededRandom } from '../../../libos-host/extensions/prng.js';

/** A seed from WB_SEED or the clock, printed so a failure can be replayed. */
export function testSeed(label: string): number {
  const seed = process.env.WB_SEED !== undefined ? Number(process.env.WB_SEED) : Date.now() % 1_000_000;
  console.log(`${label}: seed ${seed} (replay with WB_SEED=${seed})`);
  return seed;
}

export interface TrackedGuest extends LaunchedLvm {
  platform: NodePlatform;
  tracker: DirtyTracker;
  imageChoices: ImageChoices;
  stdout: () => string;
  address: (i?: number) => string;
}

/** Launch guests/<name>.wasm prepared for `tracker`, console captured. */
export async function launchTracked(name: string, o: {
  tracker: TrackerKind; env?: string[]; args?: string[]; listen?: number; hooks?: LvmHooks; yieldPoints?: boolean;
}): Promise<TrackedGuest> {
  const out: Buffer[] = [];
  const stdout = new PassThrough();
  stdout.on('data', (d: Buffer) => out.push(d));
  const platform = new NodePlatform({ stdout, stderr: new PassThrough(), stdin: null });
  const selection = selectTracker(o.tracker);
  const imageChoices: ImageChoices = { dirtyTracking: selection.dirtyTracking, yieldPoints: o.yieldPoints ?? false };
  const launched = await launchLvm({
    guest: guestBytes(name), programName: `${name}.wasm`, args: o.args ?? [], env: o.env ?? [],
    listeners: Array.from({ length: o.listen ?? 0 }, () => ({ uri: 'tcp.srv:127.0.0.1:0' as const, name: null })),
    dirs: [], memoryLimitBytes: MEMORY_LIMIT_BYTES, abi: platform, cacheDir: TEST_CACHE_DIR, imageChoices,
    ...(o.hooks !== undefined ? { hooks: o.hooks } : {}),
  });
  return {
    ...launched, platform, tracker: selection.create(launched.image), imageChoices,
    stdout: () => Buffer.concat(out).toString(),
    address: (i = 0) => launched.os.listeners()[i].address ?? '',
  };
}

/**
 * The first byte where `a` and `b` differ outside `skip` ranges ([start, end)), or -1.
 */
export function firstDifference(a: Uint8Array, b: Uint8Array, skip: ReadonlyArray<readonly [number, number]> = []): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const inSkip = (i: number): number => {
    for (const [s, e] of skip) if (i >= s && i < e) return e;
    return -1;
  };
  const ba = Buffer.from(a.buffer, a.byteOffset, a.length);
  const bb = Buffer.from(b.buffer, b.byteOffset, b.length);
  const CHUNK = 65536;
  for (let at = 0; at < a.length; at += CHUNK) {
    const end = Math.min(at + CHUNK, a.length);
    if (ba.compare(bb, at, end, at, end) === 0) continue;
    for (let i = at; i < end; i++) {
      if (a[i] === b[i]) continue;
      const jump = inSkip(i);
      if (jump >= 0) { i = jump - 1; continue; }
      return i;
    }
  }
  return -1;
}
