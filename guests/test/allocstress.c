/*
 * allocstress: 20,000 random malloc/realloc/free operations on blocks of up to
 * 6 MiB, each block filled with a pattern unique to it and checked before it
 * is resized or freed. Prints "ok <checksum>" and exits 0, or prints
 * "CORRUPT ..." and exits 1 as soon as a block does not hold its pattern
 * (say, because the host's own data and the guest heap overlap).
 *
 * The operations come from a PRNG seeded by env SEED (default 1); the
 * checksum covers the sequence of operations and sizes, so it is the same on
 * every correct host and independent of where blocks land.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPERATIONS 20000
#define SLOTS 64
#define MAX_BLOCK_BYTES (6 * 1024 * 1024)
/* Block sizes are log-uniform: 1 + rand % 2^k for k up to this. */
#define MAX_SIZE_LOG2 23

typedef struct {
    unsigned char *p;
    size_t size;
    uint64_t id;
} block;

static uint64_t rng_state;

/* splitmix64: tiny, good enough, identical everywhere. */
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t random_size(void) {
    uint64_t span = 1ULL << (rng() % (MAX_SIZE_LOG2 + 1));
    if (span > MAX_BLOCK_BYTES) span = MAX_BLOCK_BYTES;
    return (size_t)(1 + rng() % span);
}

/* The pattern of block `id`: its 8-byte word w holds pattern_word(id, w). */
static uint64_t pattern_word(uint64_t id, size_t w) {
    return (id * 0xD6E8FEB86659FD93ULL) ^ ((uint64_t)w * 0x9E3779B97F4A7C15ULL);
}

static unsigned char pattern_byte(uint64_t id, size_t i) {
    uint64_t v = pattern_word(id, i / 8);
    unsigned char bytes[8];
    memcpy(bytes, &v, sizeof v);
    return bytes[i % 8];
}

/* Write the pattern into bytes [from, to) of b: single bytes up to a word
 * boundary, then whole words (malloc's alignment makes them aligned). */
static void fill(const block *b, size_t from, size_t to) {
    size_t i = from;
    for (; i < to && i % 8 != 0; i++) b->p[i] = pattern_byte(b->id, i);
    for (; i + 8 <= to; i += 8) {
        uint64_t v = pattern_word(b->id, i / 8);
        memcpy(b->p + i, &v, sizeof v);
    }
    for (; i < to; i++) b->p[i] = pattern_byte(b->id, i);
}

static void corrupt(const block *b, size_t offset, const char *when) {
    printf("CORRUPT block %llu (%zu bytes) at offset %zu, %s\n", (unsigned long long)b->id, b->size,
           offset, when);
    exit(1);
}

/* Check bytes [0, n) of b hold the pattern; on failure report and exit. */
static void verify(const block *b, size_t n, const char *when) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b->p + i, sizeof v);
        if (v != pattern_word(b->id, i / 8)) corrupt(b, i, when);
    }
    for (; i < n; i++)
        if (b->p[i] != pattern_byte(b->id, i)) corrupt(b, i, when);
}

static uint64_t checksum = 14695981039346656037ULL;

static void note(uint64_t op, uint64_t value) {
    checksum = (checksum ^ op) * 1099511628211ULL;
    checksum = (checksum ^ value) * 1099511628211ULL;
}

int main(void) {
    const char *seed = getenv("SEED");
    rng_state = seed ? strtoull(seed, NULL, 10) : 1;
    block slots[SLOTS] = {0};
    uint64_t next_id = 1;

    for (int op = 0; op < OPERATIONS; op++) {
        block *b = &slots[rng() % SLOTS];
        uint64_t kind = b->p ? rng() % 2 : 2; /* 0 realloc, 1 free, 2 malloc */
        if (kind == 2) {
            size_t size = random_size();
            b->p = malloc(size);
            if (!b->p) {
                printf("CORRUPT malloc(%zu) failed\n", size);
                return 1;
            }
            b->size = size;
            b->id = next_id++;
            fill(b, 0, size);
            note(kind, size);
        } else if (kind == 0) {
            size_t size = random_size();
            verify(b, b->size, "before realloc");
            unsigned char *p = realloc(b->p, size);
            if (!p) {
                printf("CORRUPT realloc(%zu) failed\n", size);
                return 1;
            }
            b->p = p;
            size_t kept = size < b->size ? size : b->size;
            verify(b, kept, "after realloc");
            size_t old = b->size;
            b->size = size;
            if (size > old) fill(b, old, size);
            note(kind, size);
        } else {
            verify(b, b->size, "before free");
            free(b->p);
            b->p = NULL;
            note(kind, b->size);
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        if (!slots[i].p) continue;
        verify(&slots[i], slots[i].size, "at the end");
        free(slots[i].p);
    }
    printf("ok %llu\n", (unsigned long long)checksum);
    return 0;
}
