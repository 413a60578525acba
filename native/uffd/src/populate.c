/*
 * waterbear_populate: fault in a large, freshly grown linear memory on several threads before a
 * restore writes it.
 *
 * A restore writes every page of a fresh WebAssembly memory once; on Linux each first write of a
 * 4 KiB page is a page fault (allocate, zero, map), and for 1 GiB those faults cost several
 * times the copy itself. Faults on different pages of one process run in parallel, so splitting
 * the range over the cores roughly divides that cost (measured: 1 GiB, 2 cores, ~640 -> ~330 ms).
 *
 * JS API: populate(bytes: Uint8Array, threads: number, touchOnly?: boolean) -> string, the method:
 *   "madvise"  MADV_POPULATE_WRITE (Linux >= 5.14): the kernel faults the pages in, writable;
 *   "touch"    older kernels: each thread reads and writes back one byte per page.
 * Both leave the contents unchanged. The call returns when every page is in; the caller's
 * thread does one share itself. It must not run while anything else writes the memory (the
 * "touch" method writes back what it read).
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fork-join.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define MAX_THREADS FORK_JOIN_MAX_THREADS

typedef struct {
  uint8_t *from;
  size_t length;
  int use_madvise;
  int failed;
} share_t;

static void touch(uint8_t *from, size_t length, size_t page) {
  for (size_t off = 0; off < length; off += page) {
    volatile uint8_t *p = from + off;
    *p = *p;
  }
}

static void *populate_share(void *arg) {
  share_t *s = (share_t *)arg;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (s->use_madvise) {
    if (madvise(s->from, s->length, MADV_POPULATE_WRITE) == 0) return NULL;
    s->failed = errno;
  }
  touch(s->from, s->length, page);
  return NULL;
}

/* The arguments both entry points take: (bytes: Uint8Array, threads: number, …). Sets the
 * page-aligned range inside `bytes` (madvise needs an aligned start: an unaligned head or tail
 * is left to the copy that follows) and the thread count; 0 after throwing a TypeError. */
static int range_args(napi_env env, size_t argc, napi_value *argv, const char *fn, uintptr_t *start, uintptr_t *end, uint32_t *threads) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, fn);
    return 0;
  }
  *threads = 1;
  if (argc >= 2) napi_get_value_uint32(env, argv[1], threads);
  if (*threads < 1) *threads = 1;
  if (*threads > MAX_THREADS) *threads = MAX_THREADS;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  *start = ((uintptr_t)data + page - 1) & ~(uintptr_t)(page - 1);
  *end = ((uintptr_t)data + length) & ~(uintptr_t)(page - 1);
  return 1;
}

static napi_value populate(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  uintptr_t start, end;
  uint32_t threads;
  if (!range_args(env, argc, argv, "populate: expected a Uint8Array", &start, &end, &threads)) return NULL;
  bool touch_only = false;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &touch_only);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const char *method = "madvise";
  if (end > start) {
    size_t pages = (end - start) / page;
    if (pages < threads) threads = (uint32_t)pages;
    share_t shares[MAX_THREADS];
    size_t per = pages / threads;
    for (uint32_t i = 0; i < threads; i++) {
      size_t first = per * i;
      size_t count = i + 1 == threads ? pages - first : per;
      shares[i] = (share_t){ .from = (uint8_t *)start + first * page, .length = count * page, .use_madvise = !touch_only, .failed = 0 };
    }
    fork_join(populate_share, shares, sizeof shares[0], threads);
    if (touch_only) method = "touch";
    for (uint32_t i = 0; i < threads; i++) if (shares[i].failed != 0) method = "touch";
  }
  napi_value out;
  napi_create_string_utf8(env, method, NAPI_AUTO_LENGTH, &out);
  return out;
}

/*
 * Background population, while the caller writes the memory from its start: helper threads
 * fault chunks in from the top down (MADV_POPULATE_WRITE only: it never changes a byte, so it is
 * safe next to the caller's writes; "touch" would not be), and meet the caller somewhere in the
 * middle. Chunks the caller already wrote cost the helpers almost nothing.
 */
#define CHUNK_BYTES (4u << 20)
#define MAX_JOBS 4

typedef struct job job_t;
typedef struct { job_t *job; uint32_t first; } worker_t;

struct job {
  int used;
  uint8_t *base;
  size_t chunks;
  size_t last_bytes;
  uint32_t threads;
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS];
  worker_t workers[MAX_THREADS];
};

static job_t jobs[MAX_JOBS];
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;

static void *populate_chunks(void *arg) {
  worker_t *w = (worker_t *)arg;
  job_t *job = w->job;
  for (size_t k = w->first; k < job->chunks; k += job->threads) {
    size_t c = job->chunks - 1 - k;
    size_t length = c + 1 == job->chunks ? job->last_bytes : CHUNK_BYTES;
    if (madvise(job->base + c * CHUNK_BYTES, length, MADV_POPULATE_WRITE) != 0) break;
  }
  return NULL;
}

static int madvise_supported(void) {
  static int known = -1;
  if (known < 0) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    known = p != MAP_FAILED && madvise(p, page, MADV_POPULATE_WRITE) == 0;
    if (p != MAP_FAILED) munmap(p, page);
  }
  return known;
}

/* populateStart(bytes: Uint8Array, threads: number) -> job id, or -1 where the kernel has no
 * MADV_POPULATE_WRITE (or for a memory under one page). The caller must keep `bytes` alive and
 * call populateWait(id) before it lets go of it, also when it fails. */
static napi_value populate_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  uintptr_t start, end;
  uint32_t threads;
  if (!range_args(env, argc, argv, "populateStart: expected a Uint8Array", &start, &end, &threads)) return NULL;
  napi_value out;
  int id = -1;
  if (end > start && madvise_supported()) {
    pthread_mutex_lock(&jobs_lock);
    for (int i = 0; i < MAX_JOBS; i++) if (!jobs[i].used) { id = i; jobs[i].used = 1; break; }
    pthread_mutex_unlock(&jobs_lock);
  }
  if (id >= 0) {
    job_t *job = &jobs[id];
    size_t bytes = end - start;
    job->base = (uint8_t *)start;
    job->chunks = (bytes + CHUNK_BYTES - 1) / CHUNK_BYTES;
    job->last_bytes = bytes - (job->chunks - 1) * (size_t)CHUNK_BYTES;
    job->threads = threads;
    for (uint32_t i = 0; i < threads; i++) {
      job->workers[i] = (worker_t){ .job = job, .first = i };
      job->started[i] = pthread_create(&job->ids[i], NULL, populate_chunks, &job->workers[i]) == 0;
    }
  }
  napi_create_int32(env, id, &out);
  return out;
}

/* populateWait(id): returns once the job's threads are done. */
static napi_value populate_wait(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t id = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc >= 1) napi_get_value_int32(env, argv[0], &id);
  if (id >= 0 && id < MAX_JOBS && jobs[id].used) {
    job_t *job = &jobs[id];
    for (uint32_t i = 0; i < job->threads; i++) if (job->started[i]) pthread_join(job->ids[i], NULL);
    pthread_mutex_lock(&jobs_lock);
    job->used = 0;
    pthread_mutex_unlock(&jobs_lock);
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "populate", NAPI_AUTO_LENGTH, populate, NULL, &fn);
  napi_set_named_property(env, exports, "populate", fn);
  napi_create_function(env, "populateStart", NAPI_AUTO_LENGTH, populate_start, NULL, &fn);
  napi_set_named_property(env, exports, "populateStart", fn);
  napi_create_function(env, "populateWait", NAPI_AUTO_LENGTH, populate_wait, NULL, &fn);
  napi_set_named_property(env, exports, "populateWait", fn);
  return exports;
}
