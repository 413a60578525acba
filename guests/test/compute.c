/*
 * compute: a deterministic CPU-bound guest. Mixes an 8 MiB buffer with a
 * hash for ROUNDS rounds (env, default 200) without a single system call
 * inside a round; every 10 rounds prints "round <r> sum <s>", and at the end
 * "done <sum>". The output is the same on every correct host, so it checks
 * that interrupting and resuming a guest (checkpoint, restore, migration)
 * does not change what it computes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUFFER_BYTES (8 * 1024 * 1024)
#define DEFAULT_ROUNDS 200
#define REPORT_EVERY_ROUNDS 10

/* splitmix64's finaliser: a cheap, well-mixing 64-bit hash. */
static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int main(void) {
    long rounds = DEFAULT_ROUNDS;
    const char *env = getenv("ROUNDS");
    if (env) {
        char *end;
        rounds = strtol(env, &end, 10);
        if (*env == '\0' || *end != '\0' || rounds < 0) {
            fprintf(stderr, "compute: ROUNDS must be a non-negative integer: got '%s'\n", env);
            return 2;
        }
    }
    size_t words = BUFFER_BYTES / sizeof(uint64_t);
    uint64_t *buf = malloc(BUFFER_BYTES);
    if (!buf) {
        fprintf(stderr, "compute: cannot allocate %d bytes\n", BUFFER_BYTES);
        return 1;
    }
    for (size_t i = 0; i < words; i++) buf[i] = mix(i + 1);

    uint64_t sum = 0;
    for (long r = 1; r <= rounds; r++) {
        /* Each word depends on the previous one and on a word far away, so
         * the round cannot be vectorised away or cut short. */
        uint64_t acc = (uint64_t)r;
        for (size_t i = 0; i < words; i++) {
            acc = mix(acc ^ buf[i] ^ buf[(i + words / 2) % words]);
            buf[i] = acc;
        }
        sum ^= acc;
        if (r % REPORT_EVERY_ROUNDS == 0) {
            printf("round %ld sum %llu\n", r, (unsigned long long)sum);
            fflush(stdout);
        }
    }
    printf("done %llu\n", (unsigned long long)sum);
    free(buf);
    return 0;
}
