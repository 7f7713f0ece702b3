/*
 * The guard's slow paths. See guard.h.
 */
#define _GNU_SOURCE
#include "guard.h"

#include "cpu.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

void weft__guard_lock_slow(uint32_t *g) {
  /* A short spin first: the holder is usually a few instructions from the
   * end. */
  for (int spin = 0; spin < 100; spin++) {
    uint32_t free = 0;
    if (__atomic_load_n(g, __ATOMIC_RELAXED) == 0 &&
        __atomic_compare_exchange_n(g, &free, 1, false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
      return;
    weft__cpu_relax();
  }
  /* Mark it contended, and sleep until it is free. */
  while (__atomic_exchange_n(g, 2, __ATOMIC_ACQUIRE) != 0)
    syscall(SYS_futex, g, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void weft__guard_unlock_slow(uint32_t *g) {
  syscall(SYS_futex, g, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
