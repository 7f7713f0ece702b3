/*
 * weft_lock. See include/weft/sync.h.
 *
 * state_ holds two bits: LOCKED, and WAITERS, which is set exactly while
 * the waiter queue is not empty. Both change only by atomic operations;
 * WAITERS, and the queue, only under the guard (guard_, see guard.h).
 * Taking a free lock is one compare-and-swap from 0 to LOCKED, releasing
 * one that nobody waits for one from LOCKED to 0: with WAITERS set both
 * fail and take the slow paths, which take the guard.
 *
 * Mostly no hand-off: a release frees the lock and wakes the first waiter,
 * which then tries again, as pthread_mutex does; a newcomer may take the
 * lock first (handing off would make every release wait for a wake-up, a
 * convoy under contention), and the waiter that lost goes back to the
 * front of the queue. Two cases hand the lock over instead, still held,
 * so that the waiter cannot lose it: a task of the releaser's own hub
 * (it runs at the hub's next turn, no system call away; and a task that
 * releases and takes the lock again without blocking would otherwise win
 * every time), and a waiter that lost a race for the lock HANDOFF_AFTER
 * ago or more (Go's starvation mode, counted from the first loss, so that
 * no clock is read unless a waiter has lost). A waiter whose wait failed
 * (timeout, cancellation) just as a release woke it keeps a lock handed over,
 * and else passes the wake on to the next waiter or takes the lock: a wake is
 * never lost (waiter.h).
 */
#include <errno.h>
#include <stddef.h>
#include <weft/sync.h>

#include "../core/cpu.h"
#include "../core/guard.h"
#include "../hub/hub-private.h"
#include "../hub/timer.h"
#include "../hub/waiter.h"
#include "debug.h"
#include "lockcheck.h"
#include "sync-private.h"
#include "watchdog.h"

enum { LOCKED = 1u, WAITERS = 2u };

/* A thread that finds the lock held tries again SPIN_ROUNDS times before
 * it queues, pausing twice as long after each miss, up to 2^SPIN_CAP
 * pauses: about 500 pauses in all, 13 us where a pause is 25 ns (AMD
 * EPYC), less where it is shorter; a futex sleep and wake cost more. The
 * growing pause matters more than the count: a spinner that looks at the
 * lock every few cycles drags its line away from the holder at every look,
 * and two threads taking turns at a contended lock move it between CPUs
 * at every turn (2.5x slower than pthread_mutex here, where backing off
 * makes it 2x faster). */
enum { SPIN_ROUNDS = 12, SPIN_CAP = 6 };

/* The wake code that says: the lock is yours, still held. */
enum { HANDED_OVER = 1 };

#define HANDOFF_AFTER WEFT_MS(1)

/* Takes l if it is free, whatever WAITERS says. */
static bool take_free(weft_lock *l) {
  uint32_t s = __atomic_load_n(&l->state_, __ATOMIC_RELAXED);
  while (!(s & LOCKED))
    if (__atomic_compare_exchange_n(&l->state_, &s, s | LOCKED, true,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
      weft__guard_pass(&l->guard_); /* a releaser may be leaving */
      return true;
    }
  return false;
}

/* Frees l, held, and wakes the first waiter: to try again, or with the
 * lock handed over (see above). Called with the guard held. */
static void release_to_first(weft_lock *l) {
  weft__waiter *w = weft__waitq_pop(&l->waiters_);
  uint32_t keep = LOCKED | (weft__waitq_empty(&l->waiters_) ? 0 : WAITERS);
  /* A waiter's clock starts only once it has lost a race for the lock
   * (since != 0): the common release reads no clock. */
  bool hand_over = w && ((w->task && w->task->hub == weft__hub_current) ||
                         (w->since && weft__now() - w->since >= HANDOFF_AFTER));
  /* Leaves LOCKED as it is when handing over, else clears it; keeps
   * WAITERS true to the queue. */
  __atomic_and_fetch(&l->state_, hand_over ? keep : keep & ~LOCKED,
                     __ATOMIC_RELEASE);
  if (w)
    weft__waiter_wake(w, hand_over ? HANDED_OVER : 0);
}

/* Wakes the first waiter, if any, to try again: a wake passed on. Called
 * with the guard held. */
static void wake_first(weft_lock *l) {
  weft__waiter *w = weft__waitq_pop(&l->waiters_);
  if (weft__waitq_empty(&l->waiters_))
    __atomic_and_fetch(&l->state_, ~WAITERS, __ATOMIC_RELAXED);
  if (w)
    weft__waiter_wake(w, 0);
}

int weft_lock_init(weft_lock *l, const char *name) {
  if (!l)
    return -EINVAL;
  *l = (weft_lock){.name = name};
  return 0;
}

/* Waits in l's queue until l is taken (0), or the wait fails. */
static int acquire_wait(weft_lock *l, int64_t deadline, bool cancellable,
                        const weft_rlock *as) {
  weft_task *self = weft__task_running();
  weft__waiter w;
  weft__waiter_init(&w, as ? "rlock" : "lock", as ? (const void *)as : l);
  w.name = l->name;
  w.holder = as ? weft__rlock_owner : NULL;
  w.shielded = !cancellable;
  bool front = false;
  for (;;) {
    weft__guard_lock(&l->guard_);
    /* Take it if free; else say that someone waits, so that a release
     * comes to the queue. */
    uint32_t s = __atomic_load_n(&l->state_, __ATOMIC_RELAXED);
    for (;;) {
      if (!(s & LOCKED)) {
        if (__atomic_compare_exchange_n(&l->state_, &s, s | LOCKED, true,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
          weft__guard_unlock(&l->guard_);
          return 0;
        }
      } else if ((s & WAITERS) || __atomic_compare_exchange_n(
                                      &l->state_, &s, s | WAITERS, true,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        break;
      }
    }
    if (cancellable && self && self->cancelled) { /* it would wait */
      if (weft__waitq_empty(&l->waiters_))
        __atomic_and_fetch(&l->state_, ~WAITERS, __ATOMIC_RELAXED);
      weft__guard_unlock(&l->guard_);
      return -ECANCELED;
    }
    atomic_store_explicit(&w.woken, WAITER_WAITING, memory_order_relaxed);
    if (front)
      weft__waitq_push_front(&l->waiters_, &w);
    else
      weft__waitq_push_back(&l->waiters_, &w);
    weft__guard_unlock(&l->guard_);

    int rc = weft__waiter_wait(&w, deadline);
    if (rc >= 0) {
      /* The releaser may still be inside the guard, and the lock may be
       * freed as soon as this returns (by this caller, say, right after
       * its own release): wait for the releaser to leave. */
      weft__guard_pass(&l->guard_);
    }
    if (rc == HANDED_OVER)
      return 0;
    if (rc >= 0) {
      front = true; /* woken to try again; if it loses, it is next */
      if (take_free(l))
        return 0;
      if (!w.since)
        w.since = weft__now(); /* lost once: starvation may begin */
      continue;
    }
    /* Timed out or cancelled: leave the queue, unless a release took this
     * waiter out meanwhile, whose wake must then not be lost. */
    weft__guard_lock(&l->guard_);
    if (w.queued) {
      weft__waitq_remove(&l->waiters_, &w);
      if (weft__waitq_empty(&l->waiters_))
        __atomic_and_fetch(&l->state_, ~WAITERS, __ATOMIC_RELAXED);
      weft__guard_unlock(&l->guard_);
      return rc;
    }
    weft__guard_unlock(&l->guard_);
    if (w.code == HANDED_OVER)
      return 0;
    if (take_free(l))
      return 0;
    weft__guard_lock(&l->guard_);
    wake_first(l);
    weft__guard_unlock(&l->guard_);
    return rc;
  }
}

/* Out of line, so that the fast paths save no registers. */
__attribute__((noinline)) static int
acquire_slow(weft_lock *l, int64_t deadline, bool cancellable,
             const weft_rlock *as, const void *site) {
  if (deadline == 0)
    return take_free(l) ? 0 : -ETIMEDOUT;
  /* A thread spins a moment, backing off (above): the holder, on another
   * CPU, is likely a few instructions from its release. A task does not:
   * the holder may be a task of its own hub, which cannot run while it
   * spins. */
  for (int i = 0;
       !weft__task_running() && weft__cpu_spinning_pays() && i < SPIN_ROUNDS;
       i++) {
    if (take_free(l))
      return 0;
    for (int j = 0; j < 1 << (i < SPIN_CAP ? i : SPIN_CAP); j++)
      weft__cpu_relax();
  }
  if (!(weft__sync_debug_modes() & WEFT__DEBUG_HOLDERS))
    return acquire_wait(l, deadline, cancellable, as);
  struct weft__watch e; /* the watchdog sees this wait */
  weft__watchdog_enter(&e, l, as ? "rlock" : "lock", site);
  int rc = acquire_wait(l, deadline, cancellable, as);
  weft__watchdog_leave(&e);
  return rc;
}

/* The debugging modes on (debug.h) note that the caller took l at site. */
__attribute__((noinline)) static void
noted_acquire(weft_lock *l, int modes, const void *site, bool could_wait) {
  if (modes & WEFT__DEBUG_HOLDERS)
    __atomic_store_n(&l->holder_, weft__sync_self(), __ATOMIC_RELAXED);
  if (modes & WEFT__DEBUG_LOCKCHECK)
    weft__lockcheck_acquired(l, l->name, site, could_wait);
}

/* ... and that l, held, is being released. */
__attribute__((noinline)) static void noted_release(weft_lock *l, int modes) {
  if (modes & WEFT__DEBUG_HOLDERS)
    __atomic_store_n(&l->holder_, NULL, __ATOMIC_RELAXED);
  if (modes & WEFT__DEBUG_LOCKCHECK)
    weft__lockcheck_released(l);
}

/* Takes l if nobody holds it or waits for it: one compare-and-swap. */
static inline bool take_uncontended(weft_lock *l) {
  uint32_t free = 0;
  if (!__builtin_expect(__atomic_compare_exchange_n(&l->state_, &free, LOCKED,
                                                    false, __ATOMIC_ACQUIRE,
                                                    __ATOMIC_RELAXED),
                        1))
    return false;
  weft__guard_pass(&l->guard_); /* a releaser may be leaving */
  return true;
}

int weft__lock_acquire_at(weft_lock *l, int64_t timeout, bool cancellable,
                          const weft_rlock *as, const void *site) {
  int rc = take_uncontended(l)
               ? 0
               : acquire_slow(l,
                              timeout == 0 ? 0
                              : cancellable
                                  ? weft__deadline_after(timeout)
                                  : weft__deadline_after_unclamped(timeout),
                              cancellable, as, site);
  int modes = weft__sync_debug_modes();
  if (__builtin_expect(modes != 0, 0) && rc == 0)
    noted_acquire(l, modes, site, timeout != 0);
  return rc;
}

int weft_lock_acquire(weft_lock *l, int64_t timeout) {
  if (!l || weft__timeout_bad(timeout))
    return -EINVAL;
  return weft__lock_acquire_at(l, timeout, true, NULL,
                               __builtin_return_address(0));
}

/* The release when someone waits, or of a free lock (s: the state seen). */
__attribute__((noinline)) static int release_slow(weft_lock *l, uint32_t s) {
  if (!(s & LOCKED))
    return -EPERM;
  /* Free the lock and wake the first waiter, under the guard, which keeps
   * WAITERS true to the queue. */
  weft__guard_lock(&l->guard_);
  if (!(__atomic_load_n(&l->state_, __ATOMIC_RELAXED) & LOCKED)) {
    weft__guard_unlock(&l->guard_); /* another release came first */
    return -EPERM;
  }
  release_to_first(l);
  weft__guard_unlock(&l->guard_);
  return 0;
}

int weft_lock_release(weft_lock *l) {
  if (!l)
    return -EINVAL;
  /* Noted first: once free, the lock may be taken, and noted, by another. A
   * release that fails (-EPERM) changed nothing, and notes nothing. */
  int modes = weft__sync_debug_modes();
  if (__builtin_expect(modes != 0, 0) && weft_lock_locked(l))
    noted_release(l, modes);
  uint32_t s = LOCKED;
  if (__builtin_expect(__atomic_compare_exchange_n(&l->state_, &s, 0, false,
                                                   __ATOMIC_RELEASE,
                                                   __ATOMIC_RELAXED),
                       1))
    return 0;
  return release_slow(l, s);
}

bool weft_lock_locked(const weft_lock *l) {
  return l && (__atomic_load_n(&l->state_, __ATOMIC_RELAXED) & LOCKED);
}

int weft_lock_destroy(weft_lock *l) {
  if (!l)
    return -EINVAL;
  return __atomic_load_n(&l->state_, __ATOMIC_ACQUIRE) ? -EBUSY : 0;
}
