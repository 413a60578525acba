/*
 * memhog: allocates 1 MiB chunks and writes to every 4 KiB page of each until
 * malloc fails, then prints "allocated <n> MiB" and exits 0. Used to test that
 * a host enforces its memory limit as a failed allocation, not a crash.
 */
#include <stdio.h>
#include <stdlib.h>

#define CHUNK_BYTES (1024 * 1024)
#define PAGE_BYTES 4096

int main(void) {
    size_t chunks = 0;
    for (;;) {
        /* volatile: the stores must happen even though nothing reads them. */
        volatile unsigned char *p = malloc(CHUNK_BYTES);
        if (!p) break;
        for (size_t i = 0; i < CHUNK_BYTES; i += PAGE_BYTES) p[i] = (unsigned char)(chunks + 1);
        chunks++; /* never freed: the point is to hold memory */
    }
    printf("allocated %zu MiB\n", chunks);
    return 0;
}
