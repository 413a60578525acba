import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultCacheDir } from '../../../libos-host/image/image-cache.js';
import { imageCacheKey, prepareImage } from '../../../libos-host/image/prepare.js';
import { wat } from './helpers.js';

const GUEST = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $counter (mut i32) (i32.const 0))
  (data (i32.const 1024) "cached guest")
  (func (export "_start")
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))))`;

function tempCache(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-image-cache-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a cache hit returns identical bytes with fromCache=true', async (t) => {
  const cacheDir = tempCache(t);
  const guest = await wat(GUEST);
  const first = await prepareImage(guest, { cacheDir });
  t.false(first.fromCache);
  const key = imageCacheKey(guest);
  t.deepEqual(readdirSync(cacheDir).sort(), [`${key}.json`, `${key}.wasm`]);
  const second = await prepareImage(guest, { cacheDir });
  t.true(second.fromCache);
  t.deepEqual(second.bytes, first.bytes);
  t.is(second.imageSha256, first.imageSha256);
  t.is(second.sourceSha256, first.sourceSha256);
  t.deepEqual(second.layout, first.layout);
  t.deepEqual(second.mutableGlobals, first.mutableGlobals);
  t.deepEqual(second.stats, first.stats);
  t.true(second.module instanceof WebAssembly.Module);
});

test('a corrupted cached image is rebuilt, never trusted', async (t) => {
  const cacheDir = tempCache(t);
  const guest = await wat(GUEST);
  const first = await prepareImage(guest, { cacheDir });
  const wasmPath = join(cacheDir, `${imageCacheKey(guest)}.wasm`);
  const corrupted = Uint8Array.from(readFileSync(wasmPath));
  corrupted[corrupted.length - 10] ^= 0xff; // still the same length, still maybe valid wasm
  writeFileSync(wasmPath, corrupted);
  const rebuilt = await prepareImage(guest, { cacheDir });
  t.false(rebuilt.fromCache);
  t.deepEqual(rebuilt.bytes, first.bytes);
  t.deepEqual(new Uint8Array(readFileSync(wasmPath)), first.bytes, 'the entry was rewritten');
  t.true((await prepareImage(guest, { cacheDir })).fromCache);
});

test('a truncated image, an unreadable description or a missing file is rebuilt', async (t) => {
  const cacheDir = tempCache(t);
  const guest = await wat(GUEST);
  const first = await prepareImage(guest, { cacheDir });
  const key = imageCacheKey(guest);
  const wasmPath = join(cacheDir, `${key}.wasm`);
  const jsonPath = join(cacheDir, `${key}.json`);

  writeFileSync(wasmPath, first.bytes.subarray(0, 100));
  t.false((await prepareImage(guest, { cacheDir })).fromCache);

  writeFileSync(jsonPath, '{"key": "not json');
  t.false((await prepareImage(guest, { cacheDir })).fromCache);

  const meta = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(jsonPath, JSON.stringify({ ...meta, preparationVersion: 0 }));
  t.false((await prepareImage(guest, { cacheDir })).fromCache, 'an entry from another preparation version');

  rmSync(wasmPath);
  const again = await prepareImage(guest, { cacheDir });
  t.false(again.fromCache);
  t.deepEqual(again.bytes, first.bytes);
  t.true((await prepareImage(guest, { cacheDir })).fromCache);
});

test('options that change the output change the cache key; cacheDir does not', async (t) => {
  const guest = await wat(GUEST);
  const base = imageCacheKey(guest);
  t.is(imageCacheKey(guest, { cacheDir: '/elsewhere' }), base);
  t.is(imageCacheKey(guest, { memoryLimitBytes: 256 * 1024 * 1024 }), base, 'the default limit');
  t.is(imageCacheKey(guest, { memoryLimitBytes: 256 * 1024 * 1024 + 100 }), base, 'limits are rounded down to pages');
  t.not(imageCacheKey(guest, { memoryLimitBytes: 64 * 1024 * 1024 }), base);
  t.not(imageCacheKey(guest, { unsafeSkipMemorySizeRewrite: true }), base);
  const other = Uint8Array.from(guest);
  other[other.length - 1] ^= 1;
  t.not(imageCacheKey(other), base);

  const cacheDir = tempCache(t);
  const small = await prepareImage(guest, { cacheDir, memoryLimitBytes: 64 * 1024 * 1024 });
  const large = await prepareImage(guest, { cacheDir });
  t.false(large.fromCache);
  t.not(small.layout.guestMaxPages, large.layout.guestMaxPages);
});

test('cacheDir null writes nothing; an unwritable cache directory does not fail preparation', async (t) => {
  const cacheDir = tempCache(t);
  const guest = await wat(GUEST);
  const image = await prepareImage(guest, { cacheDir: null });
  t.false(image.fromCache);
  t.deepEqual(readdirSync(cacheDir), []);
  const notADir = join(cacheDir, 'file');
  writeFileSync(notADir, 'x');
  const unwritable = await prepareImage(guest, { cacheDir: join(notADir, 'cache') });
  t.false(unwritable.fromCache);
  t.deepEqual(unwritable.bytes, image.bytes);
});

test('the default cache directory is $WATERBEAR_CACHE_DIR, else ~/.cache/waterbear/images', (t) => {
  const saved = process.env.WATERBEAR_CACHE_DIR;
  try {
    process.env.WATERBEAR_CACHE_DIR = '/tmp/wb-cache-from-env';
    t.is(defaultCacheDir(), '/tmp/wb-cache-from-env');
    delete process.env.WATERBEAR_CACHE_DIR;
    t.regex(defaultCacheDir(), /\.cache\/waterbear\/images$/);
  } finally {
    if (saved === undefined) delete process.env.WATERBEAR_CACHE_DIR;
    else process.env.WATERBEAR_CACHE_DIR = saved;
  }
});
