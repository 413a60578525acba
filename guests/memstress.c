/*
 * memstress: a server for benchmarking dirty-page tracking, on the listening
 * socket the host pre-opens as fd 3. It owns one large heap buffer
 * (MEMSTRESS_MB MiB, default 64) and speaks a line protocol ("\n" or "\r\n"):
 *
 *   TOUCH <n>  writes one byte in each of n distinct 4 KiB pages of the buffer
 *              (n is capped at the number of pages) and replies
 *              "OK <checksum>\n". Pages are visited round-robin across
 *              requests, so successive requests dirty different pages.
 *   SIZE       replies "OK <buffer size in bytes>\n".
 *
 * The byte written to a page depends on how many times the page has been
 * visited, so every visit after the first also checks the value the previous
 * visit left there. A page that lost its content (say, a checkpoint that
 * missed a dirty page) makes TOUCH reply
 * "ERR corrupt page <p>: expected <e>, found <f>\n". The checksum covers every
 * byte written since start-up, so two replicas that served the same requests
 * reply the same checksum.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netloop.h"

#define PAGE_BYTES 4096
#define DEFAULT_BUFFER_MIB 64
#define MIB_BYTES (1024 * 1024)
/* Longest accepted request line; a longer one is an error and closes the client. */
#define MAX_LINE_BYTES 1024

static unsigned char *buffer;
static size_t buffer_bytes;
static size_t npages;
static uint64_t visits;   /* page visits since start-up */
static uint64_t checksum; /* FNV-1a over every (page, byte written) */

/* Never 0, so a touched page is never a zero page (pre-copy skips those), and differs from
 * round to round (131 is not a multiple of 255). */
static unsigned char visit_value(uint64_t round, size_t page) {
    return (unsigned char)((round * 131 + page * 7) % 255 + 1);
}

/* Where in its page a page's byte lives: spread over cache lines. */
static size_t visit_offset(size_t page) { return (page % (PAGE_BYTES / 64)) * 64; }

static void touch(nl_conn *c, uint64_t n) {
    if (n > npages) n = npages;
    for (uint64_t k = 0; k < n; k++) {
        size_t page = (size_t)(visits % npages);
        uint64_t round = visits / npages;
        unsigned char *b = buffer + page * PAGE_BYTES + visit_offset(page);
        if (round > 0 && *b != visit_value(round - 1, page)) {
            char reply[96];
            snprintf(reply, sizeof reply, "ERR corrupt page %zu: expected %u, found %u\n", page,
                     (unsigned)visit_value(round - 1, page), (unsigned)*b);
            nl_write_str(c, reply);
            return;
        }
        *b = visit_value(round, page);
        checksum = (checksum ^ ((uint64_t)page << 8 | *b)) * 1099511628211ULL;
        visits++;
    }
    char reply[32];
    snprintf(reply, sizeof reply, "OK %llu\n", (unsigned long long)checksum);
    nl_write_str(c, reply);
}

/* Decimal digits only, no overflow. */
static int parse_u64(const char *p, size_t n, uint64_t *out) {
    if (n == 0) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static size_t on_request(nl_conn *c, const char *data, size_t len) {
    const char *nl = memchr(data, '\n', len);
    if (!nl) {
        if (len > MAX_LINE_BYTES) {
            nl_write_str(c, "ERR line too long\n");
            nl_close_after_reply(c);
            return len;
        }
        return 0;
    }
    size_t n = (size_t)(nl - data);
    if (n > 0 && data[n - 1] == '\r') n--;
    uint64_t count;
    if (n > 6 && memcmp(data, "TOUCH ", 6) == 0) {
        if (parse_u64(data + 6, n - 6, &count)) touch(c, count);
        else nl_write_str(c, "ERR invalid count\n");
    } else if (n == 4 && memcmp(data, "SIZE", 4) == 0) {
        char reply[32];
        snprintf(reply, sizeof reply, "OK %zu\n", buffer_bytes);
        nl_write_str(c, reply);
    } else {
        nl_write_str(c, "ERR unknown command\n");
    }
    return (size_t)(nl - data) + 1;
}

int main(void) {
    uint64_t mib = DEFAULT_BUFFER_MIB;
    const char *env = getenv("MEMSTRESS_MB");
    if (env && (!parse_u64(env, strlen(env), &mib) || mib == 0 || mib > SIZE_MAX / MIB_BYTES)) {
        fprintf(stderr, "memstress: MEMSTRESS_MB must be a positive number of MiB: got '%s'\n", env);
        return 2;
    }
    buffer_bytes = (size_t)mib * MIB_BYTES;
    npages = buffer_bytes / PAGE_BYTES;
    /* Page-aligned, so buffer page p is exactly one 4 KiB page of memory.
     * Its initial content is never read: the first visit only writes. */
    void *p = NULL;
    int err = posix_memalign(&p, PAGE_BYTES, buffer_bytes);
    if (err != 0) {
        fprintf(stderr, "memstress: cannot allocate %llu MiB: %s\n", (unsigned long long)mib,
                strerror(err));
        return 1;
    }
    buffer = p;
    static const nl_protocol protocol = {.on_request = on_request, .on_close = NULL};
    return nl_serve(NETLOOP_LISTEN_FD, &protocol);
}
