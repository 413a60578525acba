/*
 * waterbear_uffd: kernel write-protect dirty-page tracking for a WebAssembly memory.
 *
 * The wasm memory's ArrayBuffer range is registered with userfaultfd in write-protect mode with
 * UFFD_FEATURE_WP_ASYNC (Linux >= 6.7): the kernel resolves write faults on protected pages by
 * itself (no fault thread), and PAGEMAP_SCAN on /proc/self/pagemap then lists the pages written
 * since they were protected (category PAGE_IS_WRITTEN) and protects them again in the same ioctl
 * (PM_SCAN_WP_MATCHING). UFFD_FEATURE_WP_UNPOPULATED makes never-touched pages protected too
 * (the kernel installs markers), so the first write to a fresh page is seen.
 *
 * JS API (see checkpoint/trackers/uffd-tracker.ts, which is the only user):
 *   probe() -> { ok, reason?, pageBytes, features }       can this process use it at all?
 *   new Tracker()                                         opens the userfaultfd and pagemap
 *   tracker.address(buffer) -> number                     the buffer's data address
 *   tracker.protect(buffer, fromByte, toByte)             register + write-protect that range
 *   tracker.collect(buffer, fromByte, toByte, out, at)    written pages -> out[at..], returns count
 *   tracker.forget()                                      unregister every range protected so far
 *   tracker.close()                                       release both descriptors
 * Page indices are relative to the buffer's start, in 4 KiB pages. Errors throw with errno text.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Newer than some installed kernel headers: define what we use. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

#ifndef PAGEMAP_SCAN
struct page_region {
  uint64_t start;
  uint64_t end;
  uint64_t categories;
};
struct pm_scan_arg {
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end;
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#endif

#define TRACK_PAGE_BYTES 4096u
/* Regions returned per PAGEMAP_SCAN call (a region is a run of consecutive written pages). */
#define SCAN_VEC_LEN 4096

static const uint64_t REQUIRED_FEATURES = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;

typedef struct {
  int uffd;
  int pagemap;
  struct page_region *vec;
  /* Smallest range covering every range registered so far (for forget()); empty when start == end. */
  uint64_t reg_start, reg_end;
} tracker_t;

/* ------------------------------------------------------------------ helpers */

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s (errno %d)", what, strerror(err), err);
  napi_throw_error(env, "WB_UFFD", msg);
  return NULL;
}

static napi_value throw_msg(napi_env env, const char *msg) {
  napi_throw_error(env, "WB_UFFD", msg);
  return NULL;
}

static int open_uffd(uint64_t *features_out) {
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return -1;
  struct uffdio_api api = {.api = UFFD_API, .features = REQUIRED_FEATURES};
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if ((api.features & REQUIRED_FEATURES) != REQUIRED_FEATURES) {
    close(fd);
    errno = ENOTSUP;
    return -1;
  }
  if (features_out) *features_out = api.features;
  return fd;
}

static int register_wp(int uffd, uint64_t start, uint64_t len) {
  struct uffdio_register reg = {.range = {.start = start, .len = len}, .mode = UFFDIO_REGISTER_MODE_WP};
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) return -1;
  struct uffdio_writeprotect wp = {.range = {.start = start, .len = len}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
  if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0) return -1;
  return 0;
}

/* Scan [start, end) for written pages, re-protecting them. Calls emit(page_addr) per page. */
typedef int (*emit_fn)(void *ctx, uint64_t page_addr);

static long scan_written(int pagemap, struct page_region *vec, uint64_t start, uint64_t end, emit_fn emit, void *ctx) {
  long total = 0;
  while (start < end) {
    struct pm_scan_arg arg;
    memset(&arg, 0, sizeof arg);
    arg.size = sizeof arg;
    arg.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
    arg.start = start;
    arg.end = end;
    arg.vec = (uint64_t)(uintptr_t)vec;
    arg.vec_len = SCAN_VEC_LEN;
    arg.category_mask = PAGE_IS_WRITTEN;
    arg.return_mask = PAGE_IS_WRITTEN;
    long n = ioctl(pagemap, PAGEMAP_SCAN, &arg);
    if (n < 0) return -1;
    for (long i = 0; i < n; i++) {
      for (uint64_t a = vec[i].start; a < vec[i].end; a += TRACK_PAGE_BYTES) {
        if (emit(ctx, a) != 0) {
          errno = EOVERFLOW;
          return -1;
        }
        total++;
      }
    }
    if (arg.walk_end <= start) break; /* no progress: should not happen */
    start = arg.walk_end;
  }
  return total;
}

/* ------------------------------------------------------------------ probe */

typedef struct { long count; } count_ctx;
static int count_emit(void *ctx, uint64_t a) {
  (void)a;
  ((count_ctx *)ctx)->count++;
  return 0;
}

static napi_value make_probe_result(napi_env env, int ok, const char *reason, uint64_t features) {
  napi_value result, v;
  napi_create_object(env, &result);
  napi_get_boolean(env, ok, &v);
  napi_set_named_property(env, result, "ok", v);
  if (reason) {
    napi_create_string_utf8(env, reason, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, result, "reason", v);
  }
  napi_create_int64(env, sysconf(_SC_PAGESIZE), &v);
  napi_set_named_property(env, result, "pageBytes", v);
  napi_create_double(env, (double)features, &v);
  napi_set_named_property(env, result, "features", v);
  return result;
}

/*
 * End-to-end check on a scratch mapping: register, protect, write two of eight pages (one of
 * them never touched before), scan: exactly those two must come back, and a second scan none.
 */
static napi_value probe(napi_env env, napi_callback_info info) {
  (void)info;
  char reason[256];
  if (sysconf(_SC_PAGESIZE) != TRACK_PAGE_BYTES) return make_probe_result(env, 0, "the kernel page size is not 4 KiB", 0);
  uint64_t features = 0;
  int uffd = open_uffd(&features);
  if (uffd < 0) {
    snprintf(reason, sizeof reason, "userfaultfd with WP_ASYNC|WP_UNPOPULATED unavailable: %s (needs Linux >= 6.7, and root or vm.unprivileged_userfaultfd=1)", strerror(errno));
    return make_probe_result(env, 0, reason, 0);
  }
  int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) {
    snprintf(reason, sizeof reason, "cannot open /proc/self/pagemap: %s", strerror(errno));
    close(uffd);
    return make_probe_result(env, 0, reason, features);
  }
  const size_t len = 8 * TRACK_PAGE_BYTES;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct page_region *vec = calloc(SCAN_VEC_LEN, sizeof *vec);
  const char *fail = NULL;
  int err = 0;
  if (p == MAP_FAILED || vec == NULL) {
    fail = "cannot allocate a scratch mapping";
    err = errno;
  } else {
    p[0] = 1; /* page 0 populated before protection, page 5 never touched */
    if (register_wp(uffd, (uint64_t)(uintptr_t)p, len) != 0) {
      fail = "UFFDIO_REGISTER/UFFDIO_WRITEPROTECT failed";
      err = errno;
    } else {
      p[0] = 2;
      p[5 * TRACK_PAGE_BYTES] = 3;
      count_ctx c1 = {0}, c2 = {0};
      long n1 = scan_written(pagemap, vec, (uint64_t)(uintptr_t)p, (uint64_t)(uintptr_t)p + len, count_emit, &c1);
      long n2 = n1 < 0 ? -1 : scan_written(pagemap, vec, (uint64_t)(uintptr_t)p, (uint64_t)(uintptr_t)p + len, count_emit, &c2);
      if (n1 < 0 || n2 < 0) {
        fail = "PAGEMAP_SCAN failed (needs Linux >= 6.7)";
        err = errno;
      } else if (n1 != 2 || n2 != 0) {
        snprintf(reason, sizeof reason, "PAGEMAP_SCAN self-test reported %ld then %ld written pages: expected 2 then 0", n1, n2);
        fail = reason;
      }
    }
  }
  if (p != MAP_FAILED) munmap(p, len);
  free(vec);
  close(pagemap);
  close(uffd);
  if (fail != NULL) {
    if (err != 0 && fail != reason) {
      char buf[256];
      snprintf(buf, sizeof buf, "%s: %s", fail, strerror(err));
      return make_probe_result(env, 0, buf, features);
    }
    return make_probe_result(env, 0, fail, features);
  }
  return make_probe_result(env, 1, NULL, features);
}

/* ------------------------------------------------------------------ Tracker */

static void tracker_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tracker_t *t = data;
  if (t->uffd >= 0) close(t->uffd);
  if (t->pagemap >= 0) close(t->pagemap);
  free(t->vec);
  free(t);
}

static tracker_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok) {
    throw_msg(env, "not a Tracker");
    return NULL;
  }
  tracker_t *t = data;
  if (t->uffd < 0) {
    throw_msg(env, "Tracker is closed");
    return NULL;
  }
  return t;
}

static napi_value tracker_new(napi_env env, napi_callback_info info) {
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  tracker_t *t = calloc(1, sizeof *t);
  if (!t) return throw_msg(env, "out of memory");
  t->uffd = -1;
  t->pagemap = -1;
  t->vec = calloc(SCAN_VEC_LEN, sizeof *t->vec);
  if (!t->vec) {
    free(t);
    return throw_msg(env, "out of memory");
  }
  t->uffd = open_uffd(NULL);
  if (t->uffd < 0) {
    int e = errno;
    tracker_finalize(env, t, NULL);
    return throw_errno(env, "userfaultfd (WP_ASYNC|WP_UNPOPULATED)", e);
  }
  t->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (t->pagemap < 0) {
    int e = errno;
    tracker_finalize(env, t, NULL);
    return throw_errno(env, "open /proc/self/pagemap", e);
  }
  if (napi_wrap(env, self, t, tracker_finalize, NULL, NULL) != napi_ok) {
    tracker_finalize(env, t, NULL);
    return throw_msg(env, "napi_wrap failed");
  }
  return self;
}

/* Read (buffer, fromByte, toByte): the range as absolute addresses, checked and page aligned. */
static int get_range(napi_env env, napi_value *argv, uint64_t *data_out, uint64_t *start, uint64_t *end) {
  void *data;
  size_t len;
  bool is_ab = false;
  napi_is_arraybuffer(env, argv[0], &is_ab);
  if (!is_ab || napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) {
    throw_msg(env, "expected an ArrayBuffer");
    return -1;
  }
  double from, to;
  if (napi_get_value_double(env, argv[1], &from) != napi_ok || napi_get_value_double(env, argv[2], &to) != napi_ok) {
    throw_msg(env, "expected byte offsets");
    return -1;
  }
  uintptr_t base = (uintptr_t)data;
  if (base % TRACK_PAGE_BYTES != 0) {
    throw_msg(env, "the buffer is not page aligned");
    return -1;
  }
  if (!(from >= 0 && to >= from && to <= (double)len) || (uint64_t)from % TRACK_PAGE_BYTES || (uint64_t)to % TRACK_PAGE_BYTES) {
    throw_msg(env, "byte range out of the buffer or not 4 KiB aligned");
    return -1;
  }
  *data_out = base;
  *start = base + (uint64_t)from;
  *end = base + (uint64_t)to;
  return 0;
}

static napi_value tracker_address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (!unwrap(env, info, &argc, argv)) return NULL;
  void *data;
  size_t len;
  bool is_ab = false;
  napi_is_arraybuffer(env, argv[0], &is_ab);
  if (argc < 1 || !is_ab || napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) return throw_msg(env, "expected an ArrayBuffer");
  napi_value v;
  napi_create_double(env, (double)(uintptr_t)data, &v);
  return v;
}

static napi_value tracker_protect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  tracker_t *t = unwrap(env, info, &argc, argv);
  if (!t) return NULL;
  if (argc < 3) return throw_msg(env, "protect(buffer, fromByte, toByte)");
  uint64_t base, start, end;
  if (get_range(env, argv, &base, &start, &end) != 0) return NULL;
  if (end == start) return NULL;
  if (register_wp(t->uffd, start, end - start) != 0) return throw_errno(env, "UFFDIO_REGISTER/UFFDIO_WRITEPROTECT", errno);
  if (t->reg_start == t->reg_end) {
    t->reg_start = start;
    t->reg_end = end;
  } else {
    if (start < t->reg_start) t->reg_start = start;
    if (end > t->reg_end) t->reg_end = end;
  }
  return NULL;
}

typedef struct {
  uint32_t *out;
  size_t cap;
  size_t n;
  uint64_t base;
} out_ctx;

static int out_emit(void *ctx, uint64_t a) {
  out_ctx *o = ctx;
  if (o->n >= o->cap) return -1;
  o->out[o->n++] = (uint32_t)((a - o->base) / TRACK_PAGE_BYTES);
  return 0;
}

static napi_value tracker_collect(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  tracker_t *t = unwrap(env, info, &argc, argv);
  if (!t) return NULL;
  if (argc < 5) return throw_msg(env, "collect(buffer, fromByte, toByte, out, at)");
  uint64_t base, start, end;
  if (get_range(env, argv, &base, &start, &end) != 0) return NULL;
  bool is_ta = false;
  napi_is_typedarray(env, argv[3], &is_ta);
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (!is_ta || napi_get_typedarray_info(env, argv[3], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint32_array) {
    return throw_msg(env, "out must be a Uint32Array");
  }
  uint32_t at;
  if (napi_get_value_uint32(env, argv[4], &at) != napi_ok || at > length) return throw_msg(env, "bad output index");
  out_ctx o = {.out = (uint32_t *)data + at, .cap = length - at, .n = 0, .base = base};
  long n = scan_written(t->pagemap, t->vec, start, end, out_emit, &o);
  if (n < 0) return throw_errno(env, "PAGEMAP_SCAN", errno);
  napi_value v;
  napi_create_uint32(env, (uint32_t)o.n, &v);
  return v;
}

static napi_value tracker_forget(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tracker_t *t = unwrap(env, info, &argc, NULL);
  if (!t) return NULL;
  if (t->reg_end > t->reg_start) {
    /* The range may be gone already (the memory moved and V8 unmapped it): ignore errors. */
    struct uffdio_range r = {.start = t->reg_start, .len = t->reg_end - t->reg_start};
    (void)ioctl(t->uffd, UFFDIO_UNREGISTER, &r);
  }
  t->reg_start = t->reg_end = 0;
  return NULL;
}

static napi_value tracker_close(napi_env env, napi_callback_info info) {
  napi_value self;
  void *data;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  if (napi_unwrap(env, self, &data) != napi_ok) return throw_msg(env, "not a Tracker");
  tracker_t *t = data;
  /* Closing the userfaultfd unregisters every range and drops the protection. */
  if (t->uffd >= 0) close(t->uffd);
  if (t->pagemap >= 0) close(t->pagemap);
  t->uffd = -1;
  t->pagemap = -1;
  t->reg_start = t->reg_end = 0;
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
    {"address", NULL, tracker_address, NULL, NULL, NULL, napi_default, NULL},
    {"protect", NULL, tracker_protect, NULL, NULL, NULL, napi_default, NULL},
    {"collect", NULL, tracker_collect, NULL, NULL, NULL, napi_default, NULL},
    {"forget", NULL, tracker_forget, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, tracker_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, fn;
  napi_define_class(env, "Tracker", NAPI_AUTO_LENGTH, tracker_new, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "Tracker", cls);
  napi_create_function(env, "probe", NAPI_AUTO_LENGTH, probe, NULL, &fn);
  napi_set_named_property(env, exports, "probe", fn);
  return exports;
}
