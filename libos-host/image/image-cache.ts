/**
 * On-disk cache of prepared images, keyed by content hash.
 *
 * Entry `<key>` is two files: `<key>.wasm` (the image) and `<key>.json` (its description,
 * written last, so it marks a complete entry). Both are written to a temporary name and renamed,
 * so readers never see half a file. An entry is trusted only when the JSON parses, names the same
 * key and versions, and the image's sha256 matches; anything else is a miss and gets rebuilt.
 */
import { createHash } from 'node:crypto';
import { readCacheFiles, writeCacheFile } from '../platform/cache-files.js';
import type { ExportedGlobal } from './image-section.js';
import type { ImageLayout } from './layout.js';
import type { PreparationStats } from './transform.js';

export { CACHE_DIR_ENV, defaultCacheDir } from '../platform/cache-files.js';

/** Hex sha256 of some bytes. */
export function sha256Hex(...parts: (Uint8Array | string)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** What the `<key>.json` file holds. */
export interface CacheEntryMeta {
  key: string;
  preparationVersion: number;
  binaryenVersion: string;
  sourceSha256: string;
  imageSha256: string;
  imageBytes: number;
  layout: ImageLayout;
  mutableGlobals: ExportedGlobal[];
  stats: PreparationStats;
  createdAt: string;
}

/** Read a cache entry; null when absent or not trustworthy (never throws for a bad entry). */
export async function readCacheEntry(
  dir: string, key: string, expect: { preparationVersion: number; binaryenVersion: string; sourceSha256: string },
): Promise<{ bytes: Uint8Array; meta: CacheEntryMeta } | null> {
  const files = await readCacheFiles(dir, key);
  if (files === null) return null;
  let meta: CacheEntryMeta;
  try {
    meta = JSON.parse(files.json) as CacheEntryMeta;
  } catch {
    return null;
  }
  const bytes = files.wasm;
  if (meta === null || typeof meta !== 'object' || meta.key !== key ||
      meta.preparationVersion !== expect.preparationVersion || meta.binaryenVersion !== expect.binaryenVersion ||
      meta.sourceSha256 !== expect.sourceSha256 || typeof meta.layout !== 'object' || !Array.isArray(meta.mutableGlobals) ||
      bytes.length !== meta.imageBytes || sha256Hex(bytes) !== meta.imageSha256) {
    return null;
  }
  return { bytes, meta };
}

/** Write a cache entry atomically: image first, then the JSON that makes it visible. */
export async function writeCacheEntry(dir: string, bytes: Uint8Array, meta: CacheEntryMeta): Promise<void> {
  await writeCacheFile(dir, `${meta.key}.wasm`, bytes);
  await writeCacheFile(dir, `${meta.key}.json`, JSON.stringify(meta, null, 1));
}
