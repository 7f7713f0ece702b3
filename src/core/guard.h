/*
 * The guard: the small lock inside every primitive of the sync layer, and
 * inside each task and thread handle for its joins, that guards a waiter
 * queue (never the user's critical section). A futex
 * mutex of three states (Drepper, "Futexes are tricky"): 0 free, 1 held,
 * 2 held with sleepers. Held for a few dozen instructions, and at most one
 * system call (a wake) inside; a task that finds it held blocks its thread
 * for that long, as Go's runtime locks do.
 *
 * Freeing: a program may free a primitive as soon as its own calls on it
 * have returned, even while another thread's call that woke it (a
 * release, a set) is still leaving. So every call that returns because of
 * what another wrote under the guard first waits for the guard to be free
 * (weft__guard_pass, or a lock and unlock after a wait): the writer's
 * unlock is then its last touch of the primitive.
 */
#ifndef WEFT_CORE_GUARD_H
#define WEFT_CORE_GUARD_H

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

/* Waits until whoever holds g has let go; the caller holds nothing. A fast
 * path that reads a state written inside the guard calls it before it
 * returns, so that the writer is out of the primitive before the program
 * may free it (one load when nobody holds the guard). */
static inline void weft__guard_pass(uint32_t *g) {
  if (__builtin_expect(__atomic_load_n(g, __ATOMIC_ACQUIRE) != 0, 0)) {
    weft__guard_lock(g);
    weft__guard_unlock(g);
  }
}

#endif
