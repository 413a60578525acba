/**
 * The file operations of the prepared-image cache (libos-host/image/image-cache.ts keeps the
 * entry format and its checks): platform is the only part of libos-host that touches the OS.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** Module files whose text a code digest covers (compiled output or TypeScript sources, not maps or declarations). */
const CODE_FILE = /^(?!.*\.d\.ts$).*\.(js|ts|mjs)$/;

/**
 * sha256 over the names and text of the code files in the folder of module `moduleUrl`, in name
 * order: a cache keyed by it misses when that code changes, even without a version bump. A
 * folder that cannot be read digests as 'unreadable' (the cache then relies on its versions).
 */
export function codeFolderDigest(moduleUrl: string): string {
  const h = createHash('sha256');
  try {
    const dir = dirname(fileURLToPath(moduleUrl));
    for (const name of readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && CODE_FILE.test(e.name)).map((e) => e.name).sort()) {
      h.update(name).update('\0').update(readFileSync(join(dir, name))).update('\0');
    }
  } catch {
    return 'unreadable';
  }
  return h.digest('hex');
}
