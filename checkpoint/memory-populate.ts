/**
 * Fault in a large fresh memory on every core before a restore writes it. On Linux, the first
 * write of each 4 KiB page is a page fault, and for a 1 GiB image those faults cost more than
 * the copy; faults on different pages run in parallel, so the optional native addon
 * (native/uffd, waterbear_populate) spreads them over threads. Without the addon, or below
 * `POPULATE_MIN_BYTES`, nothing happens here and the copy takes the faults on one thread.
 *
 * `populateWhile` overlaps the two: helper threads fault the memory in from its top while the
 * caller writes it from its start (measured on 2 cores, 1 GiB: see docs/checkpoint.md).
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { findNativeAddon } from './native-addon.js';

/** File name of the built addon under native/uffd/build/Release. */
export const POPULATE_ADDON_FILE = 'waterbear_populate.node';
/** Smaller memories are not worth starting threads for (their faults take a few ms). */
export const POPULATE_MIN_BYTES = 32 * 1024 * 1024;
/** At most this many threads fault pages in (the kernel's page allocator stops scaling). */
const POPULATE_MAX_THREADS = 8;

interface PopulateAddon {
  populate(bytes: Uint8Array, threads: number, touchOnly?: boolean): 'madvise' | 'touch';
  populateStart(bytes: Uint8Array, threads: number): number;
  populateWait(job: number): void;
}

/**
 * How population works here, for logs, benchmarks and tests: `threads` fault memory in at once
 * (`populateMemory`, the caller being one of them); `populateWhile` starts `helpers` beside the
 * thread that writes the memory meanwhile.
 */
export interface PopulateImplementation { native: boolean; threads: number; helpers: number; addonPath: string | null; reason: string }

function load(): { addon: PopulateAddon | null; impl: PopulateImplementation } {
  const threads = Math.max(1, Math.min(POPULATE_MAX_THREADS, availableParallelism()));
  const helpers = Math.max(1, threads - 1);
  const none = (reason: string, addonPath: string | null = null): { addon: null; impl: PopulateImplementation } => ({ addon: null, impl: { native: false, threads: 1, helpers: 0, addonPath, reason } });
  if (process.env.WATERBEAR_POPULATE === 'off') return none('WATERBEAR_POPULATE=off');
  const path = findNativeAddon(POPULATE_ADDON_FILE, 'WATERBEAR_POPULATE_ADDON');
  if (path === undefined) return none('the native addon is not built (npm run build:native; needs node-gyp and a C compiler)');
  try {
    const addon = createRequire(import.meta.url)(path) as PopulateAddon;
    return { addon, impl: { native: true, threads, helpers, addonPath: path, reason: `native addon ${path}, ${helpers} helper thread(s) beside a restore's copy` } };
  } catch (err) {
    return none(`the native addon does not load: ${err instanceof Error ? err.message : String(err)}`, path);
  }
}

const loaded = load();

/** Decided once, when this module loads. */
export const populateImplementation: PopulateImplementation = loaded.impl;

/**
 * Fault in every page of `memory` (contents unchanged) when it is large and the addon is built.
 * Returns the method used, or null when it did nothing. Nothing else may write `memory`
 * meanwhile. `touchOnly` uses the older kernels' method (for tests). Never throws for lack of the addon: the copy that follows faults the pages anyway.
 */
export function populateMemory(memory: Uint8Array, o: { touchOnly?: boolean } = {}): 'madvise' | 'touch' | null {
  if (loaded.addon === null || memory.byteLength < POPULATE_MIN_BYTES) return null;
  return loaded.addon.populate(memory, loaded.impl.threads, o.touchOnly === true);
}

/**
 * Run `write` (which fills `memory`, in ascending order for the overlap to pay) while helper
 * threads fault `memory` in from its top (MADV_POPULATE_WRITE, which never changes a byte, so it
 * is safe next to `write`). Where the kernel lacks it, faults everything in first instead (the
 * older method rewrites bytes and must not overlap). Returns how it populated, or null when it
 * did not. The helpers are always joined before this returns or throws: `memory` stays in use
 * by them until then.
 */
export function populateWhile<T>(memory: Uint8Array, write: () => T): { result: T; method: 'background' | 'madvise' | 'touch' | null } {
  if (loaded.addon === null || memory.byteLength < POPULATE_MIN_BYTES) return { result: write(), method: null };
  const job = loaded.addon.populateStart(memory, loaded.impl.helpers);
  if (job < 0) {
    const method = populateMemory(memory);
    return { result: write(), method };
  }
  try {
    return { result: write(), method: 'background' };
  } finally {
    loaded.addon.populateWait(job);
  }
}
