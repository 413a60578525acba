/**
 * The reserved region must never be touched by the guest: proven with a heavy allocator run
 * (current wasi-libc) and with a simulated old allocator that takes the heap end from memory.size.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { findDamagedCanary, reservedEndByte, type ImageLayout } from '../../../libos-host/image/layout.js';
import { prepareImage, type PreparedImage } from '../../../libos-host/image/prepare.js';
import { compileC, runGuest } from './helpers.js';

const REPO = new URL('../../../', import.meta.url).pathname;

/** Seed for the allocation sequence and the region pattern; override with WB_TEST_SEED. */
const SEED = Number(process.env.WB_TEST_SEED ?? 1);

/** Fill the region with a seeded pattern; returns a copy to compare against. */
function fillRegion(memory: WebAssembly.Memory, layout: ImageLayout, seed: number): Uint8Array {
  const region = new Uint8Array(memory.buffer, layout.reservedStartByte, reservedEndByte(layout) - layout.reservedStartByte);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < region.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    region[i] = x & 0xff;
  }
  return Uint8Array.from(region);
}

/** Offsets (from the region start) where the region differs from `expected`. */
function changedBytes(memory: WebAssembly.Memory, layout: ImageLayout, expected: Uint8Array): { count: number; first: number } {
  const region = new Uint8Array(memory.buffer, layout.reservedStartByte, expected.length);
  let count = 0;
  let first = -1;
  for (let i = 0; i < expected.length; i++) {
    if (region[i] !== expected[i]) {
      count++;
      if (first < 0) first = i;
    }
  }
  return { count, first };
}

/** Run a prepared guest with the region pre-filled; report how much of the region changed. */
function runWithPattern(image: PreparedImage, env: string[] = []): { code: number; stdout: string; changed: { count: number; first: number }; memoryBytes: number } {
  let pattern: Uint8Array = new Uint8Array(0);
  let memory!: WebAssembly.Memory;
  const result = runGuest(image.module, (instance) => {
    memory = instance.exports.memory as WebAssembly.Memory;
    pattern = fillRegion(memory, image.layout, SEED);
  }, env);
  return { code: result.code, stdout: result.stdout, changed: changedBytes(memory, image.layout, pattern), memoryBytes: memory.buffer.byteLength };
}

/** Fallback when guests/test/allocstress.wasm is not built: the same kind of workload. */
const ALLOCSTRESS_FALLBACK_C = String.raw`
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define OPERATIONS 20000
#define SLOTS 64
#define MAX_BLOCK_BYTES (6 * 1024 * 1024)
static uint64_t s;
static uint64_t rng(void) { uint64_t z = (s += 0x9E3779B97F4A7C15ULL); z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL; z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL; return z ^ (z >> 31); }
static size_t random_size(void) { uint64_t span = 1ULL << (rng() % 24); if (span > MAX_BLOCK_BYTES) span = MAX_BLOCK_BYTES; return (size_t)(1 + rng() % span); }
static unsigned char *p[SLOTS]; static size_t n[SLOTS]; static unsigned char tag[SLOTS];
static int intact(int i, size_t len) { for (size_t k = 0; k < len; k++) if (p[i][k] != tag[i]) return 0; return 1; }
int main(void) {
  const char *seed = getenv("SEED"); s = seed ? strtoull(seed, NULL, 10) : 1;
  uint64_t sum = 0;
  for (int op = 0; op < OPERATIONS; op++) {
    int i = (int)(rng() % SLOTS);
    int kind = p[i] ? (int)(rng() % 2) : 2;
    size_t size = kind == 1 ? 0 : random_size();
    if (p[i] && !intact(i, n[i])) { printf("CORRUPT block in slot %d\n", i); return 1; }
    if (kind == 2) { p[i] = malloc(size); if (!p[i]) { printf("CORRUPT malloc failed\n"); return 1; } tag[i] = (unsigned char)(rng() | 1); n[i] = size; memset(p[i], tag[i], size); }
    else if (kind == 0) { unsigned char *q = realloc(p[i], size); if (!q) { printf("CORRUPT realloc failed\n"); return 1; } p[i] = q; if (!intact(i, size < n[i] ? size : n[i])) { printf("CORRUPT after realloc\n"); return 1; } n[i] = size; memset(p[i], tag[i], size); }
    else { free(p[i]); p[i] = NULL; }
    sum = sum * 31 + size + (uint64_t)kind;
  }
  printf("ok %llu\n", (unsigned long long)sum);
  return 0;
}
`;

async function allocStressGuest(): Promise<{ bytes: Uint8Array; from: string }> {
  const built = `${REPO}guests/test/allocstress.wasm`;
  if (existsSync(built)) return { bytes: new Uint8Array(readFileSync(built)), from: 'guests/test/allocstress.wasm' };
  return { bytes: await compileC(ALLOCSTRESS_FALLBACK_C), from: 'the fallback source in this test' };
}

test('20,000 random malloc/realloc/free of up to 6 MiB never touch the reserved region', async (t) => {
  t.timeout(180_000);
  const guest = await allocStressGuest();
  const image = await prepareImage(guest.bytes, { cacheDir: null });
  const env = [`SEED=${SEED}`];
  const run = runWithPattern(image, env);
  t.log(`guest from ${guest.from}, seed ${SEED}: ${run.stdout.trim()}; memory grew to ${(run.memoryBytes / 2 ** 20).toFixed(1)} MiB`);
  t.is(run.code, 0, `seed ${SEED}: ${run.stdout}`);
  t.regex(run.stdout, /^ok \d+\n$/, `seed ${SEED}`);
  t.true(run.memoryBytes > reservedEndByte(image.layout), 'the heap grew above the region');
  t.is(run.changed.count, 0, `seed ${SEED}: ${run.changed.count} region bytes changed, first at region offset ${run.changed.first}`);

  // Same behaviour as the original module: the checksum covers every operation and size.
  const original = runGuest(new WebAssembly.Module(guest.bytes as Uint8Array<ArrayBuffer>), undefined, env);
  t.is(original.stdout, run.stdout, `seed ${SEED}`);
});

/**
 * An allocator like dlmalloc in old wasi-libc (wasi-sdk 12–18): at the first allocation it takes
 * everything from __heap_base to the end of memory *as memory.size reports it*, and asks
 * memory.grow for more. It writes every byte it hands out.
 */
const OLD_ALLOCATOR_C = String.raw`
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#define PAGE 65536
extern unsigned char __heap_base;
static uintptr_t heap_cur, heap_end;
static void *old_malloc(size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (heap_end == 0) {
    heap_cur = (uintptr_t)&__heap_base;
    heap_end = (uintptr_t)__builtin_wasm_memory_size(0) * PAGE;
  }
  if (heap_cur + n > heap_end) {
    size_t pages = (n + PAGE - 1) / PAGE;
    size_t old = __builtin_wasm_memory_grow(0, pages);
    if (old == (size_t)-1) return NULL;
    if (old * PAGE != heap_end) heap_cur = old * PAGE; /* not contiguous: new segment */
    heap_end = (old + pages) * PAGE;
  }
  void *p = (void *)heap_cur;
  heap_cur += n;
  return p;
}
int main(void) {
  enum { CHUNK = 4096, COUNT = 256 }; /* 1 MiB: more than the region */
  static unsigned char *blocks[COUNT];
  for (int i = 0; i < COUNT; i++) {
    blocks[i] = old_malloc(CHUNK);
    if (!blocks[i]) { printf("out of memory\n"); return 2; }
    memset(blocks[i], (unsigned char)(i * 7 + 1), CHUNK);
  }
  for (int i = 0; i < COUNT; i++)
    for (int k = 0; k < CHUNK; k++)
      if (blocks[i][k] != (unsigned char)(i * 7 + 1)) { printf("corrupt block %d\n", i); return 1; }
  printf("ok %lu..%lu\n", (unsigned long)(uintptr_t)blocks[0], (unsigned long)(uintptr_t)blocks[COUNT - 1]);
  return 0;
}
`;

test('an old-style allocator (heap end from memory.size) overwrites the region without the memory.size rewrite', async (t) => {
  const guest = await compileC(OLD_ALLOCATOR_C);
  const unsafe = await prepareImage(guest, { cacheDir: null, unsafeSkipMemorySizeRewrite: true });
  const run = runWithPattern(unsafe);
  t.is(run.code, 0, run.stdout);
  t.true(run.changed.count > 0, 'the allocator handed out region memory');
  t.log(`without the rewrite: ${run.changed.count} of ${reservedEndByte(unsafe.layout) - unsafe.layout.reservedStartByte} region bytes overwritten`);
  const fresh = runGuest(unsafe.module);
  t.not(findDamagedCanary(new Uint8Array((fresh.instance.exports.memory as WebAssembly.Memory).buffer), unsafe.layout), null,
    'the canary catches it');
});

test('the same old-style allocator leaves the region untouched with the memory.size rewrite', async (t) => {
  const guest = await compileC(OLD_ALLOCATOR_C);
  const image = await prepareImage(guest, { cacheDir: null });
  t.true(image.stats.memorySizeRewritten >= 1);
  const run = runWithPattern(image);
  t.is(run.code, 0, run.stdout);
  t.is(run.changed.count, 0, `${run.changed.count} region bytes changed, first at region offset ${run.changed.first}`);
  const [low, high] = /ok (\d+)\.\.(\d+)/.exec(run.stdout)!.slice(1).map(Number);
  t.true(low < image.layout.reservedStartByte, 'the first blocks fill the guest\'s own last page');
  t.true(high >= reservedEndByte(image.layout), 'later blocks come from memory.grow, above the region');
  const fresh = runGuest(image.module);
  t.is(findDamagedCanary(new Uint8Array((fresh.instance.exports.memory as WebAssembly.Memory).buffer), image.layout), null);
});
