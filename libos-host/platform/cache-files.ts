/**
 * The file operations of the prepared-image cache (libos-host/image/image-cache.ts keeps the
 * entry format and its checks): platform is the only part of libos-host that touches the OS.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Environment variable that overrides the default cache directory. */
export const CACHE_DIR_ENV = 'WATERBEAR_CACHE_DIR';

/** The default cache directory: $WATERBEAR_CACHE_DIR, else ~/.cache/waterbear/images. */
export function defaultCacheDir(): string {
  const fromEnv = process.env[CACHE_DIR_ENV];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.cache', 'waterbear', 'images');
}

/** The two files of cache entry `key` in `dir`; null when either cannot be read. */
export async function readCacheFiles(dir: string, key: string): Promise<{ json: string; wasm: Uint8Array } | null> {
  try {
    const json = await readFile(join(dir, `${key}.json`), 'utf8');
    const wasm = new Uint8Array(await readFile(join(dir, `${key}.wasm`)));
    return { json, wasm };
  } catch {
    return null;
  }
}

/** Write `name` in `dir` (created if missing) under a temporary name, then rename it into place. */
export async function writeCacheFile(dir: string, name: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
