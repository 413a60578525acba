/**
 * Image preparation: turn a guest module into an image waterbear can run, checkpoint and resume.
 * See docs/image.md for the pipeline, the reserved region's layout and the exported names.
 *
 * Observability: events are published on the `waterbear:image` diagnostics channel
 * (`{ event: 'prepared' | 'cache-hit' | 'cache-write-failed', ... }`); they cost nothing unsubscribed.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { WaterbearError } from '../errors.js';
import { codeFolderDigest } from '../platform/cache-files.js';
import { binaryenVersion, loadBinaryen } from './binaryen-loader.js';
import { defaultCacheDir, readCacheEntry, sha256Hex, writeCacheEntry, type CacheEntryMeta } from './image-cache.js';
import { PREPARATION_VERSION, type ExportedGlobal } from './image-section.js';
import { assertRunnable, readValidStructure, reportFromStructure } from './inspect.js';
import type { ImageLayout } from './layout.js';
import { transformGuest, type PreparationStats } from './transform.js';
import { checkMemoryLimit, DEFAULT_MEMORY_LIMIT_BYTES } from './memory-limit.js';
import { asBufferSource, WASM_PAGE_BYTES } from './wasm-binary.js';

export { PREPARATION_VERSION } from './image-section.js';
export type { ExportedGlobal, ImageMetadata } from './image-section.js';
export { readImageMetadata } from './image-section.js';
export type { ImageLayout } from './layout.js';
export { ASYNCIFY_STACK_BYTES, CANARY_BYTES, DIRTY_PAGE_BYTES, assertCanariesIntact, findDamagedCanary, writeCanaries, reservedEndByte } from './layout.js';
export type { PreparationStats } from './transform.js';

export { DEFAULT_MEMORY_LIMIT_BYTES, MAX_MEMORY_LIMIT_BYTES, MIN_MEMORY_LIMIT_BYTES } from './memory-limit.js';

export interface PrepareOptions {
  /**
   * Cap of the guest's own memory in bytes, not counting the reserved region; rounded down to
   * 64 KiB pages. `memory.grow` beyond it returns -1 to the guest (malloc fails cleanly).
   * Default 256 MiB. Must be between 64 KiB and 4 GiB.
   */
  memoryLimitBytes?: number;
  /** Cache directory. Default: $WATERBEAR_CACHE_DIR, else ~/.cache/waterbear/images. null: no cache. */
  cacheDir?: string | null;
  /**
   * TEST ONLY. Skip the memory.size/memory.grow rewrite, so that an allocator that takes the
   * heap end from memory.size (old wasi-libc) swallows the reserved region. Exists to prove the
   * rewrite is needed; never use it to run a guest.
   */
  unsafeSkipMemorySizeRewrite?: boolean;
  /**
   * Dirty-page tracking compiled into the image. 'instrument': every store also marks the dirty
   * map (libos-host/image/dirty-instrument.ts), as the instrument tracker needs. 'none' (default):
   * stores are left alone, which is all the uffd and shadow trackers need. Choose the tracker
   * first (checkpoint/trackers/select-tracker.ts), then prepare the image for it.
   */
  dirtyTracking?: 'instrument' | 'none';
  /**
   * Add yield points on loop back-edges (libos-host/image/yield-points.ts), so that a guest
   * computing without system calls can still be suspended for a checkpoint. Default false.
   */
  yieldPoints?: boolean;
}

export interface PreparedImage {
  /** The prepared module's bytes (with a `waterbear.image` section describing the layout). */
  bytes: Uint8Array;
  /** The compiled image, ready to instantiate any number of times. */
  module: WebAssembly.Module;
  layout: ImageLayout;
  /** Hex sha256 of the guest module given to prepareImage. */
  sourceSha256: string;
  /** Hex sha256 of `bytes`. */
  imageSha256: string;
  /** Every mutable global, exported for capture/restore, in global index order. */
  mutableGlobals: ExportedGlobal[];
  /** True when the image came from the on-disk cache. */
  fromCache: boolean;
  /** What building the image cost and did (recorded when it was built; kept in the cache). */
  stats: PreparationStats;
  /** Wall time of this prepareImage call, in milliseconds. */
  elapsedMs: number;
}

const channel = diagnosticsChannel.channel('waterbear:image');

function publish(message: Record<string, unknown>): void {
  if (channel.hasSubscribers) channel.publish(message);
}

interface ResolvedOptions {
  memoryLimitPages: number; cacheDir: string | null; rewriteMemorySize: boolean;
  dirtyTracking: 'instrument' | 'none'; yieldPoints: boolean;
}

function resolveOptions(options: PrepareOptions | undefined): ResolvedOptions {
  const o = options ?? {};
  const limit = checkMemoryLimit(o.memoryLimitBytes ?? DEFAULT_MEMORY_LIMIT_BYTES, 'memoryLimitBytes');
  if (o.cacheDir !== undefined && o.cacheDir !== null && (typeof o.cacheDir !== 'string' || o.cacheDir === '')) {
    throw new WaterbearError('WB_CONFIG_INVALID', `cacheDir must be a directory path or null: got ${JSON.stringify(o.cacheDir)}`);
  }
  const dirtyTracking = o.dirtyTracking ?? 'none';
  if (dirtyTracking !== 'instrument' && dirtyTracking !== 'none') {
    throw new WaterbearError('WB_CONFIG_INVALID', `dirtyTracking must be 'instrument' or 'none': got ${JSON.stringify(o.dirtyTracking)}`);
  }
  if (o.yieldPoints !== undefined && typeof o.yieldPoints !== 'boolean') {
    throw new WaterbearError('WB_CONFIG_INVALID', `yieldPoints must be true or false: got ${JSON.stringify(o.yieldPoints)}`);
  }
  return {
    memoryLimitPages: Math.floor(limit / WASM_PAGE_BYTES),
    cacheDir: o.cacheDir === undefined ? defaultCacheDir() : o.cacheDir,
    rewriteMemorySize: o.unsafeSkipMemorySizeRewrite !== true,
    dirtyTracking,
    yieldPoints: o.yieldPoints === true,
  };
}

/** The digest of this folder's code (the passes), computed once per process. */
let passCode: string | null = null;

/**
 * The cache key of a preparation: sha256 over the guest bytes, the options that change the
 * output, the preparation version, the binaryen version and the text of the preparation code
 * itself, so that a changed pass never serves an image the old pass made (PREPARATION_VERSION
 * says which images a build can run; it is bumped by hand and was once forgotten).
 */
export function imageCacheKey(guestBytes: Uint8Array, options?: PrepareOptions): string {
  const o = resolveOptions({ ...options, cacheDir: null });
  return cacheKey(guestBytes, o);
}

function cacheKey(guestBytes: Uint8Array, o: ResolvedOptions): string {
  const affecting = JSON.stringify({
    memoryLimitPages: o.memoryLimitPages, rewriteMemorySize: o.rewriteMemorySize,
    dirtyTracking: o.dirtyTracking, yieldPoints: o.yieldPoints,
  });
  passCode ??= codeFolderDigest(import.meta.url);
  return sha256Hex(guestBytes, '\0', affecting, '\0', `preparation-${PREPARATION_VERSION}`, '\0', `binaryen-${binaryenVersion()}`, '\0', passCode);
}

/**
 * Prepare a guest module for waterbear (see docs/image.md), or load the prepared image from the
 * cache. Errors (WaterbearError):
 * - WB_INVALID_MODULE: not WebAssembly, invalid, or not runnable (no _start, no memory, shared or 64-bit memory…);
 * - WB_UNSUPPORTED_IMPORT: imports something waterbear does not provide (all listed in `details.imports`);
 * - WB_GUEST_MEMORY_LIMIT: the guest's initial memory exceeds `memoryLimitBytes`;
 * - WB_CONFIG_INVALID: bad options;
 * - WB_IMAGE_PREPARATION: a binaryen step failed.
 * A cache that cannot be read or written is ignored (the image is rebuilt, a diagnostics event is published).
 */
export async function prepareImage(guestBytes: Uint8Array, options?: PrepareOptions): Promise<PreparedImage> {
  const started = performance.now();
  const o = resolveOptions(options);
  const structure = readValidStructure(guestBytes);
  assertRunnable(reportFromStructure(structure));
  const initialPages = structure.memories[0]?.initialPages ?? 0;
  if (initialPages > o.memoryLimitPages) {
    throw new WaterbearError('WB_GUEST_MEMORY_LIMIT',
      `guest needs ${initialPages} pages (${initialPages * 64} KiB) of memory at start, more than the memory limit of ` +
      `${o.memoryLimitPages} pages (${o.memoryLimitPages * 64} KiB): raise the memory limit`,
      { details: { initialPages, limitPages: o.memoryLimitPages } });
  }

  const sourceSha256 = sha256Hex(guestBytes);
  const key = cacheKey(guestBytes, o);
  const version = binaryenVersion();

  if (o.cacheDir !== null) {
    const entry = await readCacheEntry(o.cacheDir, key, { preparationVersion: PREPARATION_VERSION, binaryenVersion: version, sourceSha256 });
    if (entry !== null) {
      try {
        const module = await WebAssembly.compile(asBufferSource(entry.bytes));
        const elapsedMs = performance.now() - started;
        publish({ event: 'cache-hit', key, elapsedMs });
        return {
          bytes: entry.bytes, module, layout: entry.meta.layout, sourceSha256, imageSha256: entry.meta.imageSha256,
          mutableGlobals: entry.meta.mutableGlobals, fromCache: true, stats: entry.meta.stats, elapsedMs,
        };
      } catch {
        // A cached image that does not compile is not trusted: rebuild below.
      }
    }
  }

  const binaryen = await loadBinaryen();
  const result = transformGuest(binaryen, guestBytes, structure, {
    memoryLimitPages: o.memoryLimitPages,
    rewriteMemorySize: o.rewriteMemorySize,
    dirtyTracking: o.dirtyTracking,
    yieldPoints: o.yieldPoints,
    sourceSha256,
    binaryenVersion: version,
  });
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(asBufferSource(result.bytes));
  } catch (err) {
    throw new WaterbearError('WB_IMAGE_PREPARATION',
      `the prepared image does not compile (${err instanceof Error ? err.message : String(err)}): please report this with the guest module`, { cause: err });
  }
  const imageSha256 = sha256Hex(result.bytes);

  if (o.cacheDir !== null) {
    const meta: CacheEntryMeta = {
      key, preparationVersion: PREPARATION_VERSION, binaryenVersion: version, sourceSha256, imageSha256,
      imageBytes: result.bytes.length, layout: result.layout, mutableGlobals: result.mutableGlobals, stats: result.stats,
      createdAt: new Date().toISOString(),
    };
    try {
      await writeCacheEntry(o.cacheDir, result.bytes, meta);
    } catch (err) {
      publish({ event: 'cache-write-failed', key, cacheDir: o.cacheDir, error: err instanceof Error ? err.message : String(err) });
    }
  }
  const elapsedMs = performance.now() - started;
  publish({ event: 'prepared', key, elapsedMs, stats: result.stats });
  return {
    bytes: result.bytes, module, layout: result.layout, sourceSha256, imageSha256,
    mutableGlobals: result.mutableGlobals, fromCache: false, stats: result.stats, elapsedMs,
  };
}
