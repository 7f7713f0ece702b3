/*
 * Biased ownership of a generator. See bias.h.
 */
#define _GNU_SOURCE
#include "bias.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/cpu.h"

/* After this many revokes a generator stays unbiased. */
enum { REBIAS_MAX = 4 };

WEFT__TLS _Alignas(8) char weft__bias_token;

_Atomic uint32_t weft__bias_epoch = 1;

static void child_after_fork(void) {
  /* Never 0, which busy uses for none. */
  if (atomic_fetch_add_explicit(&weft__bias_epoch, 1, memory_order_relaxed) ==
      UINT32_MAX)
    atomic_store_explicit(&weft__bias_epoch, 1, memory_order_relaxed);
}

static long membarrier(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }

/* 1: the process is registered for the private expedited membarrier; -1:
 * it cannot be (no bias then); 0: not asked yet. A child of fork shares
 * its parent's registration (the kernel copies it with the memory). */
static _Atomic int registered;

static bool can_bias(void) {
  int r = atomic_load_explicit(&registered, memory_order_relaxed);
  if (__builtin_expect(r == 0, 0)) {
    static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&once);
    r = atomic_load_explicit(&registered, memory_order_relaxed);
    if (r == 0) {
      r = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
                  pthread_atfork(NULL, NULL, child_after_fork) == 0
              ? 1
              : -1;
      atomic_store_explicit(&registered, r, memory_order_relaxed);
    }
    pthread_mutex_unlock(&once);
  }
  return r > 0;
}

/* Every running thread of the process executes a full memory barrier
 * before this returns. Only called once a generator was biased, so after
 * a registration that succeeded, when the command cannot fail; should it
 * fail all the same, the fast claims it guards could race, and a wrong
 * -EBUSY or a generator run twice is worse than stopping. */
static void barrier_everywhere(void) {
  if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
    return;
  if (errno == EPERM &&
      membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
      membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
    return;
  fprintf(stderr, "weft: membarrier failed after it was registered (%d)\n",
          errno);
  abort();
}

void weft__bias_revoke_slow(weft__bias *b, const void *me) {
  for (int spins = 0;; spins++) {
    const void *o = atomic_load_explicit(&b->owner, memory_order_acquire);
    if (o == NULL || o == me)
      return;
    uint32_t epoch =
        atomic_load_explicit(&weft__bias_epoch, memory_order_relaxed);
    if (o == weft__bias_revoking(epoch)) {
      /* Another thread revokes: a system call and a few stores. (A tag of
       * an older epoch is a revoke a fork cut: this one takes it over.) */
      if (spins < 100)
        weft__cpu_relax();
      else
        sched_yield();
      continue;
    }
    if (!atomic_compare_exchange_weak_explicit(
            &b->owner, &o, weft__bias_revoking(epoch), memory_order_acq_rel,
            memory_order_relaxed))
      continue;
    barrier_everywhere();
    /* An owner inside a fast claim is a few instructions from its end:
     * its claim stored, or given up. Until then a claim by compare-and-swap
     * could still be overwritten by its store. (A busy of an older epoch
     * is a fast claim a fork cut, whose thread is not in this process.) */
    for (int waits = 0;
         atomic_load_explicit(&b->busy, memory_order_acquire) == epoch;
         waits++) {
      if (waits < 100)
        weft__cpu_relax();
      else
        sched_yield(); /* it was preempted there */
    }
    uint8_t revokes = atomic_load_explicit(&b->revokes, memory_order_relaxed);
    if (revokes < REBIAS_MAX)
      atomic_store_explicit(&b->revokes, revokes + 1, memory_order_relaxed);
    atomic_store_explicit(&b->owner, NULL, memory_order_release);
    return;
  }
}

bool weft__bias_take(weft__bias *b, const void *me) {
  /* The claim is unbiased, so owner is NULL (a revoke left it so) and only
   * the claimer writes it now. */
  if (atomic_load_explicit(&b->revokes, memory_order_relaxed) >= REBIAS_MAX ||
      !can_bias())
    return false;
  atomic_store_explicit(&b->owner, me, memory_order_relaxed);
  return true;
}
