/*
 * The guard: the small lock inside every primitive of the sync layer that
 * guards its waiter queue (never the user's critical section). A futex
 * mutex of three states (Drepper, "Futexes are tricky"): 0 free, 1 held,
 * 2 held with sleepers. Held for a few dozen instructions, and at most one
 * system call (a wake) inside; a task that finds it held blocks its thread
 * for that long, as Go's runtime locks do.
 */
#ifndef WEFT_SYNC_GUARD_H
#define WEFT_SYNC_GUARD_H

#include <stdbool.h>
#include <stdint.h>

void weft__guard_lock_slow(uint32_t *g);
void weft__guard_unlock_slow(uint32_t *g);

static inline void weft__guard_lock(uint32_t *g) {
  uint32_t free = 0;
  if (__builtin_expect(!__atomic_compare_exchange_n(g, &free, 1, false,
                                                    __ATOMIC_ACQUIRE,
                                                    __ATOMIC_RELAXED),
                       0))
    weft__guard_lock_slow(g);
}

static inline void weft__guard_unlock(uint32_t *g) {
  if (__builtin_expect(__atomic_exchange_n(g, 0, __ATOMIC_RELEASE) == 2, 0))
    weft__guard_unlock_slow(g);
}

#endif
