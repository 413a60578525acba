/*
 * Split work over threads and wait for all of it: used by waterbear_populate (faulting memory in)
 * and waterbear_crc32c (checking a restored memory's pages). Header-only: each addon is its own
 * shared object.
 */
#ifndef WATERBEAR_FORK_JOIN_H
#define WATERBEAR_FORK_JOIN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define FORK_JOIN_MAX_THREADS 16

/*
 * Run work(&shares[i]) for every i < n (n <= FORK_JOIN_MAX_THREADS; `shares` is an array of
 * `share_bytes`-sized elements): shares 1..n-1 each on a thread of its own, share 0 on the
 * calling thread, and any share whose thread could not start on the caller too. Returns once
 * every share is done.
 */
static inline void fork_join(void *(*work)(void *), void *shares, size_t share_bytes, uint32_t n) {
  pthread_t ids[FORK_JOIN_MAX_THREADS];
  int started[FORK_JOIN_MAX_THREADS] = {0};
  char *base = (char *)shares;
  for (uint32_t i = 1; i < n; i++) started[i] = pthread_create(&ids[i], NULL, work, base + i * share_bytes) == 0;
  if (n > 0) work(base);
  for (uint32_t i = 1; i < n; i++) {
    if (started[i]) pthread_join(ids[i], NULL);
    else work(base + i * share_bytes);
  }
}

#endif
