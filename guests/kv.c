/*
 * kv: an in-memory key-value server speaking a subset of the Redis protocol
 * (RESP2), served on the listening socket the host pre-opens as fd 3.
 *
 * Requests are multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what redis-cli and
 * client libraries send) or inline (`GET k\r\n`, what a person types into nc).
 * Keys and values are binary-safe. Replies and error texts follow Redis 7 so
 * that existing clients, redis-cli and redis-benchmark work unchanged.
 *
 * Commands: PING ECHO SET GET DEL EXISTS INCR DECR INCRBY DECRBY APPEND STRLEN
 * MGET MSET KEYS DBSIZE FLUSHALL FLUSHDB SELECT COMMAND CONFIG QUIT.
 * There is no key expiry, so SET's EX/PX/EXAT/PXAT options are refused.
 *
 * The request parser is stateless: netloop calls it with every unconsumed byte
 * of a client, and it either executes one complete request or reports that it
 * needs more bytes. Requests may therefore be split across reads at any byte,
 * and many may arrive in one read (pipelining).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netloop.h"

/* Longest inline request, or multibulk/bulk header line (Redis: 64 KiB). */
#define PROTO_INLINE_MAX_BYTES (64 * 1024)
/* Largest bulk string accepted (Redis proto-max-bulk-len: 512 MiB). */
#define PROTO_MAX_BULK_BYTES (512LL * 1024 * 1024)
/* Largest argument count accepted in one multibulk request (Redis: INT_MAX). */
#define PROTO_MAX_MULTIBULK_ARGS INT_MAX
/* Initial number of hash buckets; the table doubles when keys exceed buckets. */
#define INITIAL_BUCKETS 16
/* Longest decimal int64 text, sign included. */
#define INT64_TEXT_MAX_BYTES 20

/* ------------------------------------------------------------------ store */

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    char *val;
    size_t vlen;
    size_t vcap;
    size_t klen;
    char key[]; /* klen bytes, not NUL-terminated */
} entry;

static entry **buckets;
static size_t nbuckets;
static size_t nkeys;

/* FNV-1a: simple and deterministic (no random seed, so replicas that replay
 * the same requests build identical tables). */
static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static bool store_init(void) {
    buckets = calloc(INITIAL_BUCKETS, sizeof *buckets);
    if (!buckets) return false;
    nbuckets = INITIAL_BUCKETS;
    nkeys = 0;
    return true;
}

/* Double the bucket array. On allocation failure the table just stays
 * smaller (longer chains), which is slower but still correct. */
static void store_grow(void) {
    if (nbuckets > SIZE_MAX / 2 / sizeof *buckets) return;
    size_t n = nbuckets * 2;
    entry **fresh = calloc(n, sizeof *fresh);
    if (!fresh) return;
    for (size_t i = 0; i < nbuckets; i++) {
        entry *e = buckets[i];
        while (e) {
            entry *next = e->next;
            size_t b = e->hash & (n - 1);
            e->next = fresh[b];
            fresh[b] = e;
            e = next;
        }
    }
    free(buckets);
    buckets = fresh;
    nbuckets = n;
}

/* The link that points at `key`'s entry, or at the NULL ending its chain. */
static entry **store_link(const char *key, size_t klen, uint64_t h) {
    entry **link = &buckets[h & (nbuckets - 1)];
    while (*link) {
        entry *e = *link;
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) break;
        link = &e->next;
    }
    return link;
}

static entry *store_get(const char *key, size_t klen) {
    return *store_link(key, klen, hash_bytes(key, klen));
}

/* Find or create the entry for `key` (a new one has an empty value).
 * Returns NULL if out of memory. */
static entry *store_upsert(const char *key, size_t klen) {
    uint64_t h = hash_bytes(key, klen);
    entry **link = store_link(key, klen, h);
    if (*link) return *link;
    entry *e = malloc(sizeof *e + klen);
    if (!e) return NULL;
    *e = (entry){.next = NULL, .hash = h, .val = NULL, .vlen = 0, .vcap = 0, .klen = klen};
    memcpy(e->key, key, klen);
    *link = e;
    if (++nkeys > nbuckets) store_grow();
    return e;
}

static bool store_del(const char *key, size_t klen) {
    entry **link = store_link(key, klen, hash_bytes(key, klen));
    entry *e = *link;
    if (!e) return false;
    *link = e->next;
    free(e->val);
    free(e);
    nkeys--;
    return true;
}

static void store_flush(void) {
    for (size_t i = 0; i < nbuckets; i++) {
        entry *e = buckets[i];
        while (e) {
            entry *next = e->next;
            free(e->val);
            free(e);
            e = next;
        }
    }
    free(buckets);
    if (!store_init()) {
        fprintf(stderr, "kv: out of memory\n");
        exit(1);
    }
}

/* Replace e's value. Returns false (value unchanged) if out of memory. */
static bool entry_set(entry *e, const char *val, size_t vlen) {
    char *v = malloc(vlen ? vlen : 1);
    if (!v) return false;
    memcpy(v, val, vlen);
    free(e->val);
    e->val = v;
    e->vlen = e->vcap = vlen;
    return true;
}

/* Append to e's value, growing geometrically so repeated APPENDs are linear. */
static bool entry_append(entry *e, const char *val, size_t vlen) {
    if (vlen > SIZE_MAX - e->vlen) return false;
    size_t need = e->vlen + vlen;
    if (need > e->vcap) {
        size_t cap = e->vcap < 16 ? 16 : e->vcap;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *v = realloc(e->val, cap);
        if (!v) return false;
        e->val = v;
        e->vcap = cap;
    }
    memcpy(e->val + e->vlen, val, vlen);
    e->vlen = need;
    return true;
}

/* ------------------------------------------------------------------ replies */

static void reply_raw(nl_conn *c, const char *s) { nl_write_str(c, s); }

/* `prefix`, the decimal digits of `n` (with `negative`, a minus sign), CRLF.
 * Every reply that carries a number goes through here: like Redis's
 * ll2string, it avoids snprintf, whose format parsing costs more than the
 * rest of a GET. */
static void reply_number(nl_conn *c, char prefix, bool negative, unsigned long long n) {
    char buf[INT64_TEXT_MAX_BYTES + 4];
    char *end = buf + sizeof buf;
    char *p = end;
    *--p = '\n';
    *--p = '\r';
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    if (negative) *--p = '-';
    *--p = prefix;
    nl_write(c, p, (size_t)(end - p));
}

static void reply_int(nl_conn *c, long long n) {
    /* -(n + 1) + 1 keeps LLONG_MIN's magnitude in range. */
    unsigned long long mag = n < 0 ? (unsigned long long)(-(n + 1)) + 1 : (unsigned long long)n;
    reply_number(c, ':', n < 0, mag);
}

static void reply_len(nl_conn *c, char prefix, size_t n) { reply_number(c, prefix, false, n); }

static void reply_bulk(nl_conn *c, const char *p, size_t n) {
    reply_len(c, '$', n);
    nl_write(c, p, n);
    nl_write(c, "\r\n", 2);
}

static void reply_null(nl_conn *c) { reply_raw(c, "$-1\r\n"); }

/* An error reply. `fmt` carries the "ERR "/"OOM " code; CR and LF from
 * user-supplied text become spaces so the reply stays one line. */
static void reply_error(nl_conn *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    char *msg = malloc((size_t)n + 4);
    if (!msg) {
        reply_raw(c, "-OOM out of memory\r\n");
        return;
    }
    msg[0] = '-';
    va_start(ap, fmt);
    vsnprintf(msg + 1, (size_t)n + 1, fmt, ap);
    va_end(ap);
    for (int i = 1; i <= n; i++)
        if (msg[i] == '\r' || msg[i] == '\n') msg[i] = ' ';
    memcpy(msg + 1 + n, "\r\n", 3);
    nl_write(c, msg, (size_t)n + 3);
    free(msg);
}

static void reply_oom(nl_conn *c) { reply_raw(c, "-OOM out of memory\r\n"); }

static void reply_not_integer(nl_conn *c) {
    reply_raw(c, "-ERR value is not an integer or out of range\r\n");
}

/* ------------------------------------------------------------------ numbers */

/* Redis's string2ll: an optional '-', then digits without leading zeros, and
 * nothing else ("0" is valid, "-0", "+1", "01" and " 1" are not). */
static bool parse_ll(const char *p, size_t n, long long *out) {
    if (n == 0 || n > INT64_TEXT_MAX_BYTES) return false;
    if (n == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    size_t i = 0;
    bool negative = false;
    if (p[0] == '-') {
        negative = true;
        if (++i == n) return false;
    }
    if (p[i] < '1' || p[i] > '9') return false;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (ULLONG_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (negative) {
        if (v > (unsigned long long)LLONG_MAX + 1) return false;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return false;
        *out = (long long)v;
    }
    return true;
}

/* ------------------------------------------------------------------ glob */

/* Match one pattern token other than '*' at p[0..plen) against `ch`.
 * Returns the token's length and sets *ok. Same rules as Redis's
 * stringmatchlen: '?', '\x', and '[...]' with '^' negation, 'a-z' ranges
 * (either order) and '\' escapes; an unterminated '[' runs to the end. */
static size_t glob_token(const char *p, size_t plen, unsigned char ch, bool *ok) {
    if (p[0] == '?') {
        *ok = true;
        return 1;
    }
    if (p[0] == '\\' && plen >= 2) {
        *ok = (unsigned char)p[1] == ch;
        return 2;
    }
    if (p[0] != '[') {
        *ok = (unsigned char)p[0] == ch;
        return 1;
    }
    size_t i = 1;
    bool negate = i < plen && p[i] == '^';
    if (negate) i++;
    bool match = false;
    while (i < plen) {
        if (p[i] == '\\' && i + 1 < plen) {
            if ((unsigned char)p[i + 1] == ch) match = true;
            i += 2;
        } else if (p[i] == ']') {
            i++;
            break;
        } else if (i + 2 < plen && p[i + 1] == '-') {
            unsigned char lo = (unsigned char)p[i], hi = (unsigned char)p[i + 2];
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            if (ch >= lo && ch <= hi) match = true;
            i += 3;
        } else {
            if ((unsigned char)p[i] == ch) match = true;
            i++;
        }
    }
    *ok = negate ? !match : match;
    return i;
}

/* Glob match without recursion: on a mismatch, retry from the last '*'
 * consuming one more byte, which is O(len(p) * len(s)) in the worst case. */
static bool glob_match(const char *p, size_t plen, const char *s, size_t slen) {
    size_t pi = 0, si = 0;
    size_t star_p = SIZE_MAX, star_s = 0;
    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            while (pi < plen && p[pi] == '*') pi++;
            star_p = pi;
            star_s = si;
            continue;
        }
        if (pi < plen) {
            bool ok;
            size_t n = glob_token(p + pi, plen - pi, (unsigned char)s[si], &ok);
            if (ok) {
                pi += n;
                si++;
                continue;
            }
        }
        if (star_p == SIZE_MAX) return false;
        pi = star_p;
        si = ++star_s;
    }
    while (pi < plen && p[pi] == '*') pi++;
    return pi == plen;
}

/* ------------------------------------------------------------------ commands */

/* The current request's arguments (point into the client's input buffer or
 * into `inline_args`); valid only while the request executes. */
static const char **argv_p;
static size_t *argv_n;
static size_t argc;
static size_t argv_cap;

static bool argv_reserve(size_t n) {
    if (n <= argv_cap) return true;
    size_t cap = argv_cap ? argv_cap : 16;
    while (cap < n) cap *= 2;
    const char **p = realloc(argv_p, cap * sizeof *p);
    if (!p) return false;
    argv_p = p;
    size_t *l = realloc(argv_n, cap * sizeof *l);
    if (!l) return false;
    argv_n = l;
    argv_cap = cap;
    return true;
}

static bool arg_is(size_t i, const char *word) {
    size_t n = strlen(word);
    if (argv_n[i] != n) return false;
    for (size_t k = 0; k < n; k++) {
        char a = argv_p[i][k], b = word[k];
        if (a >= 'a' && a <= 'z') a = (char)(a - 'a' + 'A');
        if (a != b) return false;
    }
    return true;
}

static void cmd_ping(nl_conn *c) {
    if (argc > 2) reply_raw(c, "-ERR wrong number of arguments for 'ping' command\r\n");
    else if (argc == 1) reply_raw(c, "+PONG\r\n");
    else reply_bulk(c, argv_p[1], argv_n[1]);
}

static void cmd_echo(nl_conn *c) { reply_bulk(c, argv_p[1], argv_n[1]); }

static void cmd_set(nl_conn *c) {
    bool nx = false, xx = false, get = false;
    for (size_t i = 3; i < argc; i++) {
        if (arg_is(i, "NX") && !xx) nx = true;
        else if (arg_is(i, "XX") && !nx) xx = true;
        else if (arg_is(i, "GET")) get = true;
        else if (arg_is(i, "KEEPTTL")) continue; /* no key has a TTL */
        else if (arg_is(i, "EX") || arg_is(i, "PX") || arg_is(i, "EXAT") || arg_is(i, "PXAT")) {
            reply_raw(c, "-ERR key expiry (EX/PX/EXAT/PXAT) is not supported by this server\r\n");
            return;
        } else {
            reply_raw(c, "-ERR syntax error\r\n");
            return;
        }
    }
    entry *e = store_get(argv_p[1], argv_n[1]);
    if (get) { /* reply with the old value, whether or not the SET happens */
        if (e) reply_bulk(c, e->val, e->vlen);
        else reply_null(c);
    }
    if ((nx && e) || (xx && !e)) {
        if (!get) reply_null(c);
        return;
    }
    bool created = !e;
    if (!e) e = store_upsert(argv_p[1], argv_n[1]);
    if (!e || !entry_set(e, argv_p[2], argv_n[2])) {
        if (created && e) store_del(argv_p[1], argv_n[1]);
        if (!get) reply_oom(c);
        return;
    }
    if (!get) reply_raw(c, "+OK\r\n");
}

static void cmd_get(nl_conn *c) {
    entry *e = store_get(argv_p[1], argv_n[1]);
    if (e) reply_bulk(c, e->val, e->vlen);
    else reply_null(c);
}

static void cmd_del(nl_conn *c) {
    long long n = 0;
    for (size_t i = 1; i < argc; i++) n += store_del(argv_p[i], argv_n[i]);
    reply_int(c, n);
}

static void cmd_exists(nl_conn *c) {
    long long n = 0;
    for (size_t i = 1; i < argc; i++) n += store_get(argv_p[i], argv_n[i]) != NULL;
    reply_int(c, n);
}

static void incr_by(nl_conn *c, long long by) {
    entry *e = store_get(argv_p[1], argv_n[1]);
    long long old = 0;
    if (e && !parse_ll(e->val, e->vlen, &old)) {
        reply_not_integer(c);
        return;
    }
    if ((by < 0 && old < 0 && by < LLONG_MIN - old) || (by > 0 && old > 0 && by > LLONG_MAX - old)) {
        reply_raw(c, "-ERR increment or decrement would overflow\r\n");
        return;
    }
    long long now = old + by;
    char text[32];
    int n = snprintf(text, sizeof text, "%lld", now);
    bool created = !e;
    if (!e) e = store_upsert(argv_p[1], argv_n[1]);
    if (!e || !entry_set(e, text, (size_t)n)) {
        if (created && e) store_del(argv_p[1], argv_n[1]);
        reply_oom(c);
        return;
    }
    reply_int(c, now);
}

static void cmd_incr(nl_conn *c) { incr_by(c, 1); }

static void cmd_decr(nl_conn *c) { incr_by(c, -1); }

static void cmd_incrby(nl_conn *c) {
    long long by;
    if (!parse_ll(argv_p[2], argv_n[2], &by)) reply_not_integer(c);
    else incr_by(c, by);
}

static void cmd_decrby(nl_conn *c) {
    long long by;
    if (!parse_ll(argv_p[2], argv_n[2], &by)) reply_not_integer(c);
    else if (by == LLONG_MIN) reply_raw(c, "-ERR decrement would overflow\r\n");
    else incr_by(c, -by);
}

static void cmd_append(nl_conn *c) {
    bool created = !store_get(argv_p[1], argv_n[1]);
    entry *e = store_upsert(argv_p[1], argv_n[1]);
    if (!e || !entry_append(e, argv_p[2], argv_n[2])) {
        if (created && e) store_del(argv_p[1], argv_n[1]);
        reply_oom(c);
        return;
    }
    reply_int(c, (long long)e->vlen);
}

static void cmd_strlen(nl_conn *c) {
    entry *e = store_get(argv_p[1], argv_n[1]);
    reply_int(c, e ? (long long)e->vlen : 0);
}

static void cmd_mget(nl_conn *c) {
    reply_len(c, '*', argc - 1);
    for (size_t i = 1; i < argc; i++) {
        entry *e = store_get(argv_p[i], argv_n[i]);
        if (e) reply_bulk(c, e->val, e->vlen);
        else reply_null(c);
    }
}

static void cmd_mset(nl_conn *c) {
    if (argc % 2 == 0) {
        reply_raw(c, "-ERR wrong number of arguments for 'mset' command\r\n");
        return;
    }
    for (size_t i = 1; i < argc; i += 2) {
        entry *e = store_upsert(argv_p[i], argv_n[i]);
        if (!e || !entry_set(e, argv_p[i + 1], argv_n[i + 1])) {
            reply_oom(c);
            return;
        }
    }
    reply_raw(c, "+OK\r\n");
}

static void cmd_keys(nl_conn *c) {
    entry **found = NULL;
    size_t nfound = 0, cap = 0;
    for (size_t b = 0; b < nbuckets; b++) {
        for (entry *e = buckets[b]; e; e = e->next) {
            if (!glob_match(argv_p[1], argv_n[1], e->key, e->klen)) continue;
            if (nfound == cap) {
                cap = cap ? cap * 2 : 64;
                entry **f = realloc(found, cap * sizeof *f);
                if (!f) {
                    free(found);
                    reply_oom(c);
                    return;
                }
                found = f;
            }
            found[nfound++] = e;
        }
    }
    reply_len(c, '*', nfound);
    for (size_t i = 0; i < nfound; i++) reply_bulk(c, found[i]->key, found[i]->klen);
    free(found);
}

static void cmd_dbsize(nl_conn *c) { reply_int(c, (long long)nkeys); }

static void cmd_flushall(nl_conn *c) {
    if (argc > 2 || (argc == 2 && !arg_is(1, "ASYNC") && !arg_is(1, "SYNC"))) {
        reply_raw(c, "-ERR syntax error\r\n");
        return;
    }
    store_flush();
    reply_raw(c, "+OK\r\n");
}

static void cmd_select(nl_conn *c) {
    long long db;
    if (!parse_ll(argv_p[1], argv_n[1], &db)) reply_not_integer(c);
    else if (db != 0) reply_raw(c, "-ERR DB index is out of range\r\n");
    else reply_raw(c, "+OK\r\n");
}

/* Clients probe COMMAND (DOCS, COUNT, ...) at start-up; an empty answer makes
 * them fall back to plain behaviour. */
static void cmd_command(nl_conn *c) { reply_raw(c, "*0\r\n"); }

/* redis-benchmark asks CONFIG GET save/appendonly; there is no configuration. */
static void cmd_config(nl_conn *c) {
    if (arg_is(1, "GET")) {
        if (argc < 3) reply_raw(c, "-ERR wrong number of arguments for 'config|get' command\r\n");
        else reply_raw(c, "*0\r\n");
        return;
    }
    size_t n = strnlen(argv_p[1], argv_n[1] < 128 ? argv_n[1] : 128);
    reply_error(c, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.", (int)n, argv_p[1]);
}

static void cmd_quit(nl_conn *c) {
    reply_raw(c, "+OK\r\n");
    nl_close_after_reply(c);
}

typedef struct {
    const char *name; /* upper case; the arity error uses it in lower case */
    int arity;        /* like Redis: n means exactly n arguments, -n at least n */
    void (*run)(nl_conn *c);
} command;

static const command commands[] = {
    {"GET", 2, cmd_get},          {"SET", -3, cmd_set},         {"INCR", 2, cmd_incr},
    {"PING", -1, cmd_ping},       {"ECHO", 2, cmd_echo},        {"DEL", -2, cmd_del},
    {"EXISTS", -2, cmd_exists},   {"DECR", 2, cmd_decr},        {"INCRBY", 3, cmd_incrby},
    {"DECRBY", 3, cmd_decrby},    {"APPEND", 3, cmd_append},    {"STRLEN", 2, cmd_strlen},
    {"MGET", -2, cmd_mget},       {"MSET", -3, cmd_mset},       {"KEYS", 2, cmd_keys},
    {"DBSIZE", 1, cmd_dbsize},    {"FLUSHALL", -1, cmd_flushall},
    {"FLUSHDB", -1, cmd_flushall}, {"SELECT", 2, cmd_select},   {"COMMAND", -1, cmd_command},
    {"CONFIG", -2, cmd_config},   {"QUIT", -1, cmd_quit},
};

static void reply_unknown_command(nl_conn *c) {
    /* Redis 7: "unknown command '<name>', with args beginning with: 'a' 'b' ",
     * each text cut at a NUL byte, the argument list at about 128 bytes. */
    char args[160];
    size_t used = 0;
    args[0] = '\0';
    for (size_t i = 1; i < argc && used < 128; i++) {
        size_t room = 128 - used;
        size_t n = strnlen(argv_p[i], argv_n[i] < room ? argv_n[i] : room);
        used += (size_t)snprintf(args + used, sizeof args - used, "'%.*s' ", (int)n, argv_p[i]);
    }
    size_t n = strnlen(argv_p[0], argv_n[0] < 128 ? argv_n[0] : 128);
    reply_error(c, "ERR unknown command '%.*s', with args beginning with: %s", (int)n, argv_p[0],
                args);
}

static void execute(nl_conn *c) {
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const command *cmd = &commands[i];
        if (!arg_is(0, cmd->name)) continue;
        if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
            (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
            char lower[16];
            size_t k = 0;
            for (; cmd->name[k] && k + 1 < sizeof lower; k++) lower[k] = (char)(cmd->name[k] | 0x20);
            lower[k] = '\0';
            reply_error(c, "ERR wrong number of arguments for '%s' command", lower);
            return;
        }
        cmd->run(c);
        return;
    }
    reply_unknown_command(c);
}

/* ------------------------------------------------------------------ parser */

static void protocol_error(nl_conn *c, const char *what) {
    reply_error(c, "ERR Protocol error: %s", what);
    nl_close_after_reply(c);
}

/* The end of the header line starting at data[pos]: the index of its '\r',
 * which must be followed by one more byte. Returns SIZE_MAX if the line is
 * incomplete, or sets *too_long if no line end can be in range. */
static size_t header_end(const char *data, size_t len, size_t pos, bool *too_long) {
    size_t avail = len - pos;
    size_t scan = avail < PROTO_INLINE_MAX_BYTES ? avail : PROTO_INLINE_MAX_BYTES;
    const char *cr = memchr(data + pos, '\r', scan);
    if (!cr) {
        *too_long = avail > PROTO_INLINE_MAX_BYTES;
        return SIZE_MAX;
    }
    size_t end = (size_t)(cr - data);
    if (end + 2 > len) return SIZE_MAX; /* the '\n' has not arrived */
    return end;
}

/* `*<argc>\r\n` then argc times `$<len>\r\n<len bytes>\r\n`. Like Redis, the
 * two bytes after each line and bulk are skipped, not checked. */
static size_t parse_multibulk(nl_conn *c, const char *data, size_t len) {
    bool too_long = false;
    size_t end = header_end(data, len, 0, &too_long);
    if (end == SIZE_MAX) {
        if (too_long) {
            protocol_error(c, "too big mbulk count string");
            return len;
        }
        return 0;
    }
    long long count;
    if (!parse_ll(data + 1, end - 1, &count) || count > PROTO_MAX_MULTIBULK_ARGS) {
        protocol_error(c, "invalid multibulk length");
        return len;
    }
    size_t pos = end + 2;
    if (count <= 0) return pos; /* empty request: nothing to execute */
    for (long long i = 0; i < count; i++) {
        if (pos >= len) return 0;
        end = header_end(data, len, pos, &too_long);
        if (end == SIZE_MAX) {
            if (too_long) {
                protocol_error(c, "too big bulk count string");
                return len;
            }
            return 0;
        }
        if (data[pos] != '$') {
            char what[32];
            snprintf(what, sizeof what, "expected '$', got '%c'", data[pos]);
            protocol_error(c, what);
            return len;
        }
        long long n;
        if (!parse_ll(data + pos + 1, end - pos - 1, &n) || n < 0 || n > PROTO_MAX_BULK_BYTES) {
            protocol_error(c, "invalid bulk length");
            return len;
        }
        pos = end + 2;
        if (len - pos < (size_t)n + 2) return 0;
        /* Grown per argument actually received, not from the announced count. */
        if (!argv_reserve((size_t)i + 1)) {
            reply_oom(c);
            nl_close_after_reply(c);
            return len;
        }
        argv_p[i] = data + pos;
        argv_n[i] = (size_t)n;
        pos += (size_t)n + 2;
    }
    argc = (size_t)count;
    execute(c);
    return pos;
}

/* Bytes of the current inline request's arguments after unquoting. */
static char *inline_args;
static size_t inline_cap;

static bool inline_put(size_t *used, char ch) {
    if (*used == inline_cap) {
        size_t cap = inline_cap ? inline_cap * 2 : 256;
        char *p = realloc(inline_args, cap);
        if (!p) return false;
        inline_args = p;
        inline_cap = cap;
    }
    inline_args[(*used)++] = ch;
    return true;
}

static bool is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static int hex_value(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

typedef enum { SPLIT_OK, SPLIT_UNBALANCED, SPLIT_OOM } split_result;

/* Split an inline line into arguments like Redis's sdssplitargs: blanks
 * separate, "double quotes" understand \n \r \t \b \a \xHH and \<char>,
 * 'single quotes' understand \'. A closing quote must end the argument.
 * The unquoted arguments are stored back to back in `inline_args`. */
static split_result split_inline(const char *line, size_t n) {
    size_t used = 0, i = 0;
    argc = 0;
    for (;;) {
        while (i < n && is_space(line[i])) i++;
        if (i == n) break;
        /* Until `inline_args` stops moving, argv_n[k] holds where argument k
         * starts; arguments are contiguous, so lengths follow at the end. */
        if (!argv_reserve(argc + 1)) return SPLIT_OOM;
        argv_n[argc++] = used;
        bool dq = false, sq = false, done = false;
        while (!done) {
            bool at_end = i >= n;
            char ch = at_end ? '\0' : line[i];
            bool ok = true;
            if (dq) {
                if (ch == '\\' && i + 3 < n && line[i + 1] == 'x' && hex_value(line[i + 2]) >= 0 &&
                    hex_value(line[i + 3]) >= 0) {
                    ok = inline_put(&used, (char)(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3])));
                    i += 3;
                } else if (ch == '\\' && i + 1 < n) {
                    char e = line[++i];
                    ok = inline_put(&used, e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t'
                                           : e == 'b' ? '\b' : e == 'a' ? '\a' : e);
                } else if (ch == '"') {
                    if (i + 1 < n && !is_space(line[i + 1])) return SPLIT_UNBALANCED;
                    done = true;
                } else if (at_end) {
                    return SPLIT_UNBALANCED;
                } else {
                    ok = inline_put(&used, ch);
                }
            } else if (sq) {
                if (ch == '\\' && i + 1 < n && line[i + 1] == '\'') {
                    i++;
                    ok = inline_put(&used, '\'');
                } else if (ch == '\'') {
                    if (i + 1 < n && !is_space(line[i + 1])) return SPLIT_UNBALANCED;
                    done = true;
                } else if (at_end) {
                    return SPLIT_UNBALANCED;
                } else {
                    ok = inline_put(&used, ch);
                }
            } else if (at_end || is_space(ch)) {
                done = true;
            } else if (ch == '"') {
                dq = true;
            } else if (ch == '\'') {
                sq = true;
            } else {
                ok = inline_put(&used, ch);
            }
            if (!ok) return SPLIT_OOM;
            if (!at_end) i++;
        }
    }
    for (size_t k = 0; k < argc; k++) {
        size_t start = argv_n[k];
        size_t stop = k + 1 < argc ? argv_n[k + 1] : used;
        argv_p[k] = inline_args + start;
        argv_n[k] = stop - start;
    }
    return SPLIT_OK;
}

/* One line ending in "\n" or "\r\n". Like Redis, the text after a NUL byte
 * is ignored. */
static size_t parse_inline(nl_conn *c, const char *data, size_t len) {
    size_t scan = len < PROTO_INLINE_MAX_BYTES ? len : PROTO_INLINE_MAX_BYTES;
    const char *nl = memchr(data, '\n', scan);
    if (!nl) {
        if (len > PROTO_INLINE_MAX_BYTES) {
            protocol_error(c, "too big inline request");
            return len;
        }
        return 0;
    }
    size_t consumed = (size_t)(nl - data) + 1;
    size_t n = (size_t)(nl - data);
    if (n > 0 && data[n - 1] == '\r') n--;
    const char *nul = memchr(data, '\0', n);
    if (nul) n = (size_t)(nul - data);
    switch (split_inline(data, n)) {
    case SPLIT_UNBALANCED:
        protocol_error(c, "unbalanced quotes in request");
        return len;
    case SPLIT_OOM:
        reply_oom(c);
        nl_close_after_reply(c);
        return len;
    case SPLIT_OK:
        break;
    }
    if (argc > 0) execute(c);
    return consumed;
}

static size_t on_request(nl_conn *c, const char *data, size_t len) {
    return data[0] == '*' ? parse_multibulk(c, data, len) : parse_inline(c, data, len);
}

int main(void) {
    if (!store_init() || !argv_reserve(16)) {
        fprintf(stderr, "kv: out of memory\n");
        return 1;
    }
    static const nl_protocol protocol = {.on_request = on_request, .on_close = NULL};
    return nl_serve(NETLOOP_LISTEN_FD, &protocol);
}
