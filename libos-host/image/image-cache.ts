/**
 * On-disk cache of prepared images, keyed by content hash.
 *
 * Entry `<key>` is two files: `<key>.wasm` (the image) and `<key>.json` (its description,
 * written last, so it marks a complete entry). Both are written to a temporary name and renamed,
 * so readers never see half a file. An entry is trusted only when the JSON parses, names the same
 * key and versions, and the image's sha256 matches; anything else is a miss and gets rebuilt.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ExportedGlobal } from './image-section.js';
import type { ImageLayout } from './layout.js';
import type { PreparationStats } from './transform.js';

/** Environment variable that overrides the default cache directory. */
export const CACHE_DIR_ENV = 'WATERBEAR_CACHE_DIR';

/** The default cache directory: $WATERBEAR_CACHE_DIR, else ~/.cache/waterbear/images. */
export function defaultCacheDir(): string {
  const fromEnv = process.env[CACHE_DIR_ENV];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.cache', 'waterbear', 'images');
}

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
  let meta: CacheEntryMeta;
  let bytes: Uint8Array;
  try {
    meta = JSON.parse(await readFile(join(dir, `${key}.json`), 'utf8')) as CacheEntryMeta;
    bytes = new Uint8Array(await readFile(join(dir, `${key}.wasm`)));
  } catch {
    return null;
  }
  if (meta === null || typeof meta !== 'object' || meta.key !== key ||
      meta.preparationVersion !== expect.preparationVersion || meta.binaryenVersion !== expect.binaryenVersion ||
      meta.sourceSha256 !== expect.sourceSha256 || typeof meta.layout !== 'object' || !Array.isArray(meta.mutableGlobals) ||
      bytes.length !== meta.imageBytes || sha256Hex(bytes) !== meta.imageSha256) {
    return null;
  }
  return { bytes, meta };
}

async function writeAtomically(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Write a cache entry atomically: image first, then the JSON that makes it visible. */
export async function writeCacheEntry(dir: string, bytes: Uint8Array, meta: CacheEntryMeta): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeAtomically(join(dir, `${meta.key}.wasm`), bytes);
  await writeAtomically(join(dir, `${meta.key}.json`), JSON.stringify(meta, null, 1));
}
