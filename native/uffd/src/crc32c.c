/*
 * waterbear_crc32c: CRC-32C (Castagnoli) of a Uint8Array, for checkpoint page and body checksums.
 *
 * The same function as checkpoint/format/crc32c.ts (which falls back to it when this addon is not
 * built): crc32c(bytes, previous) continues from `previous` (0 to start) and returns an unsigned
 * 32-bit value. On x86-64 with SSE4.2 and on AArch64 with the CRC extension it uses the CPU's
 * CRC-32C instruction (about 8 bytes per 3 cycles); elsewhere slicing-by-8 in C. The JS version
 * runs ~1 GB/s, and every dirty page is checksummed once on the primary and once on each backup.
 *
 * JS API: crc32c(bytes: Uint8Array, previous: number) -> number; hardware() -> boolean;
 * software(bytes, previous) -> number: the C table version even where the CPU has an instruction
 * (so tests check it on every machine); verifyPages(memory, indices, expected, count, pageBytes,
 * threads) -> number: checks many pages of a restored memory at once, split over threads.
 * changedRuns(base, next, out, mergeGap, maxBytes) -> number: the byte runs where two pages
 * differ, for sub-page deltas (checkpoint/format/page-delta.ts, which has the same algorithm in
 * TypeScript): here because it is the other per-page pass over checkpoint bytes, ~5x faster in C.
 */
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fork-join.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static int use_hardware = 0;

static void init_tables(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
    table[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = table[0][n];
    for (int k = 1; k < 8; k++) {
      c = table[0][c & 0xff] ^ (c >> 8);
      table[k][n] = c;
    }
  }
}

/* Slicing-by-8 on the inverted register (the caller inverts before and after). */
static uint32_t crc_software(uint32_t crc, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint32_t a, b;
    memcpy(&a, p, 4);
    memcpy(&b, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    a = __builtin_bswap32(a);
    b = __builtin_bswap32(b);
#endif
    a ^= crc;
    crc = table[7][a & 0xff] ^ table[6][(a >> 8) & 0xff] ^ table[5][(a >> 16) & 0xff] ^ table[4][a >> 24] ^
          table[3][b & 0xff] ^ table[2][(b >> 8) & 0xff] ^ table[1][(b >> 16) & 0xff] ^ table[0][b >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

/* The CPU's CRC-32C instruction, 8 bytes at a time: the same loop on both architectures. */
#if defined(__x86_64__)
#define HW_TARGET __attribute__((target("sse4.2")))
/* The instruction's own register width: narrowing it every step costs ~25% (measured). */
typedef uint64_t crc_acc_t;
#define CRC_U64(crc, v) _mm_crc32_u64((crc), (v))
#define CRC_U8(crc, b) _mm_crc32_u8((crc), (b))
static int detect_hardware(void) {
  unsigned int a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2) != 0;
}
#elif defined(__aarch64__) && defined(__linux__)
#define HW_TARGET __attribute__((target("+crc")))
typedef uint32_t crc_acc_t;
#define CRC_U64(crc, v) __crc32cd((crc), (v))
#define CRC_U8(crc, b) __crc32cb((crc), (b))
static int detect_hardware(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#endif

#ifdef HW_TARGET
HW_TARGET static uint32_t crc_hardware(uint32_t crc, const uint8_t *p, size_t n) {
  crc_acc_t c = crc;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = CRC_U64(c, v);
    p += 8;
    n -= 8;
  }
  crc = (uint32_t)c;
  while (n--) crc = CRC_U8(crc, *p++);
  return crc;
}
#else
static uint32_t crc_hardware(uint32_t crc, const uint8_t *p, size_t n) { return crc_software(crc, p, n); }
static int detect_hardware(void) { return 0; }
#endif

static napi_value checksum(napi_env env, napi_callback_info info, int hardware_allowed) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  bool is_typed = false;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(env, NULL, "crc32c: expected a Uint8Array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "crc32c: expected a Uint8Array");
    return NULL;
  }
  uint32_t previous = 0;
  if (argc >= 2) {
    napi_valuetype t;
    if (napi_typeof(env, argv[1], &t) == napi_ok && t == napi_number) napi_get_value_uint32(env, argv[1], &previous);
  }
  uint32_t crc = ~previous;
  crc = use_hardware && hardware_allowed ? crc_hardware(crc, (const uint8_t *)data, length) : crc_software(crc, (const uint8_t *)data, length);
  napi_value out;
  napi_create_uint32(env, ~crc, &out);
  return out;
}

static napi_value crc32c(napi_env env, napi_callback_info info) { return checksum(env, info, 1); }
static napi_value software(napi_env env, napi_callback_info info) { return checksum(env, info, 0); }

static napi_value hardware(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_get_boolean(env, use_hardware != 0, &out);
  return out;
}

/*
 * verifyPages(memory: Uint8Array, indices: Uint32Array, expected: Uint32Array, count: number,
 * pageBytes: number, threads: number) -> number: the first position i < count whose page
 * memory[indices[i] * pageBytes, + pageBytes) has another CRC-32C than expected[i] (or lies
 * outside memory), else -1. A restore copies pages first and checks them here: one call instead
 * of one per page, and every core (the copy left them idle).
 */
#define MAX_VERIFY_THREADS FORK_JOIN_MAX_THREADS

typedef struct {
  const uint8_t *memory;
  size_t memory_bytes;
  const uint32_t *indices;
  const uint32_t *expected;
  size_t from, to, page_bytes;
  int64_t first_bad;
} verify_share_t;

static void *verify_share(void *arg) {
  verify_share_t *v = (verify_share_t *)arg;
  v->first_bad = -1;
  for (size_t i = v->from; i < v->to; i++) {
    size_t at = (size_t)v->indices[i] * v->page_bytes;
    if (at + v->page_bytes > v->memory_bytes) { v->first_bad = (int64_t)i; break; }
    const uint8_t *p = v->memory + at;
    uint32_t crc = use_hardware ? crc_hardware(~0u, p, v->page_bytes) : crc_software(~0u, p, v->page_bytes);
    if (~crc != v->expected[i]) { v->first_bad = (int64_t)i; break; }
  }
  return NULL;
}

static int typed_arg(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  return napi_is_typedarray(env, v, &is_typed) == napi_ok && is_typed &&
         napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) == napi_ok && type == want;
}

static napi_value verify_pages(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  void *memory, *indices, *expected;
  size_t memory_bytes, n_indices, n_expected;
  uint32_t count = 0, page_bytes = 0, threads = 1;
  if (argc < 6 || !typed_arg(env, argv[0], napi_uint8_array, &memory, &memory_bytes) ||
      !typed_arg(env, argv[1], napi_uint32_array, &indices, &n_indices) ||
      !typed_arg(env, argv[2], napi_uint32_array, &expected, &n_expected) ||
      napi_get_value_uint32(env, argv[3], &count) != napi_ok || napi_get_value_uint32(env, argv[4], &page_bytes) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &threads) != napi_ok || count > n_indices || count > n_expected || page_bytes == 0) {
    napi_throw_type_error(env, NULL, "verifyPages: expected (Uint8Array, Uint32Array, Uint32Array, count, pageBytes, threads)");
    return NULL;
  }
  if (threads < 1) threads = 1;
  if (threads > MAX_VERIFY_THREADS) threads = MAX_VERIFY_THREADS;
  if (count < threads * 64u) threads = 1;
  verify_share_t shares[MAX_VERIFY_THREADS];
  size_t per = count / threads;
  for (uint32_t i = 0; i < threads; i++) {
    shares[i] = (verify_share_t){ .memory = memory, .memory_bytes = memory_bytes, .indices = indices, .expected = expected,
      .from = per * i, .to = i + 1 == threads ? count : per * (i + 1), .page_bytes = page_bytes, .first_bad = -1 };
  }
  fork_join(verify_share, shares, sizeof shares[0], threads);
  int64_t first_bad = -1;
  for (uint32_t i = 0; i < threads && first_bad < 0; i++) first_bad = shares[i].first_bad;
  napi_value out;
  napi_create_int64(env, first_bad, &out);
  return out;
}

/* Appends run [start, end) to `out`; -1 when the delta would exceed `max_bytes` or `out` is full. */
static int emit_run(uint16_t *out, size_t out_len, int64_t *runs, int64_t *size, int64_t start, int64_t end, uint32_t max_bytes) {
  *size += 4 + end - start;
  if (*size > (int64_t)max_bytes || (size_t)(2 * *runs + 2) > out_len) return -1;
  out[2 * *runs] = (uint16_t)start;
  out[2 * *runs + 1] = (uint16_t)end;
  (*runs)++;
  return 0;
}

/*
 * Runs [start, end) where `next` differs from `base` (same length, a multiple of 64), found by
 * 4-byte words after a memcmp per 64 bytes; runs closer than `merge_gap` bytes are merged. Writes
 * start/end pairs to `out`; returns the number of runs, or -1 once the delta (4 header bytes per
 * run plus its bytes) would exceed `max_bytes`.
 */
static int64_t changed_runs_c(const uint8_t *a, const uint8_t *b, size_t n, uint16_t *out, size_t out_len, uint32_t merge_gap, uint32_t max_bytes) {
  int64_t runs = 0;
  int64_t size = 0;
  int64_t run_start = 0, run_end = -1;
  for (size_t block = 0; block < n; block += 64) {
    if (memcmp(a + block, b + block, 64) == 0) continue;
    for (size_t at = block; at < block + 64; at += 4) {
      uint32_t x, y;
      memcpy(&x, a + at, 4);
      memcpy(&y, b + at, 4);
      if (x == y) continue;
      if (run_end >= 0 && (int64_t)at - run_end < (int64_t)merge_gap) { run_end = (int64_t)at + 4; continue; }
      if (run_end >= 0 && emit_run(out, out_len, &runs, &size, run_start, run_end, max_bytes) < 0) return -1;
      run_start = (int64_t)at;
      run_end = (int64_t)at + 4;
    }
  }
  if (run_end >= 0 && emit_run(out, out_len, &runs, &size, run_start, run_end, max_bytes) < 0) return -1;
  return runs;
}

static napi_value changed_runs(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  void *base, *next, *out;
  size_t base_len, next_len, out_len;
  uint32_t merge_gap = 0, max_bytes = 0;
  if (argc < 5 || !typed_arg(env, argv[0], napi_uint8_array, &base, &base_len) || !typed_arg(env, argv[1], napi_uint8_array, &next, &next_len) ||
      !typed_arg(env, argv[2], napi_uint16_array, &out, &out_len) || napi_get_value_uint32(env, argv[3], &merge_gap) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &max_bytes) != napi_ok || base_len != next_len || base_len % 64 != 0 || base_len > 65536) {
    napi_throw_type_error(env, NULL, "changedRuns: expected (Uint8Array, Uint8Array of the same length, a multiple of 64, Uint16Array, mergeGap, maxBytes)");
    return NULL;
  }
  napi_value result;
  napi_create_int64(env, changed_runs_c(base, next, base_len, out, out_len, merge_gap, max_bytes), &result);
  return result;
}

NAPI_MODULE_INIT() {
  init_tables();
  use_hardware = detect_hardware();
  napi_value fn;
  napi_create_function(env, "crc32c", NAPI_AUTO_LENGTH, crc32c, NULL, &fn);
  napi_set_named_property(env, exports, "crc32c", fn);
  napi_create_function(env, "hardware", NAPI_AUTO_LENGTH, hardware, NULL, &fn);
  napi_set_named_property(env, exports, "hardware", fn);
  napi_create_function(env, "software", NAPI_AUTO_LENGTH, software, NULL, &fn);
  napi_set_named_property(env, exports, "software", fn);
  napi_create_function(env, "verifyPages", NAPI_AUTO_LENGTH, verify_pages, NULL, &fn);
  napi_set_named_property(env, exports, "verifyPages", fn);
  napi_create_function(env, "changedRuns", NAPI_AUTO_LENGTH, changed_runs, NULL, &fn);
  napi_set_named_property(env, exports, "changedRuns", fn);
  return exports;
}
