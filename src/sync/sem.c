/*
 * weft_sem. See include/weft/sync.h.
 *
 * state_ is the count of free units shifted left by one, and a WAITERS bit
 * that is set exactly while the queue is not empty (changed only under the
 * guard). With WAITERS clear, taking a unit and giving units back are each
 * one compare-and-swap; with it set, both take the guard: a release hands
 * its units to the waiters first, in order, waking each with its unit
 * (no newcomer can take it first), and counts only what is left.
 */
#include <errno.h>
#include <weft/sync.h>

#include "../hub/timer.h"
#include "sync-private.h"

enum { WAITERS = 1u, UNIT = 2u };

int weft_sem_init(weft_sem *s, unsigned value, bool bounded) {
  if (!s || value > WEFT_SEM_MAX)
    return -EINVAL;
  *s = (weft_sem)WEFT_SEM_INIT(value);
  s->bound_ = bounded ? value : 0;
  return 0;
}

/* The units value + n would make, or -1 when that passes the bound. */
static long long grown(const weft_sem *s, uint32_t state, unsigned n) {
  unsigned long long v = (state >> 1) + (unsigned long long)n;
  unsigned long long cap = s->bound_ ? s->bound_ : WEFT_SEM_MAX;
  return v > cap ? -1 : (long long)v;
}

int weft_sem_acquire(weft_sem *s, int64_t timeout) {
  if (!s)
    return -EINVAL;
  uint32_t st = __atomic_load_n(&s->state_, __ATOMIC_RELAXED);
  while (st >= UNIT && !(st & WAITERS))
    if (__atomic_compare_exchange_n(&s->state_, &st, st - UNIT, true,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
      weft__guard_pass(&s->guard_); /* a releaser may be leaving */
      return 0;
    }
  weft__guard_lock(&s->guard_);
  st = __atomic_load_n(&s->state_, __ATOMIC_RELAXED);
  if (st >= UNIT) { /* units left over, with or without waiters */
    __atomic_sub_fetch(&s->state_, UNIT, __ATOMIC_ACQUIRE);
    weft__guard_unlock(&s->guard_);
    return 0;
  }
  weft_task *self = weft__task_running();
  int busy = timeout == 0              ? -ETIMEDOUT
             : self && self->cancelled ? -ECANCELED
                                       : 0;
  if (busy) {
    weft__guard_unlock(&s->guard_);
    return busy;
  }
  __atomic_or_fetch(&s->state_, WAITERS, __ATOMIC_RELAXED);
  weft__waiter w;
  weft__waiter_init(&w, "semaphore", s);
  int rc = weft__sync_wait(&s->guard_, &s->waiters_, &w,
                           weft__deadline_after(timeout));
  if (rc < 0) {
    /* It left the queue: WAITERS must stay true to the queue. */
    weft__guard_lock(&s->guard_);
    if (weft__waitq_empty(&s->waiters_))
      __atomic_and_fetch(&s->state_, ~WAITERS, __ATOMIC_RELAXED);
    weft__guard_unlock(&s->guard_);
    return rc;
  }
  return 0; /* woken with a unit of its own */
}

int weft_sem_release(weft_sem *s, unsigned n) {
  if (!s || n == 0)
    return -EINVAL;
  uint32_t st = __atomic_load_n(&s->state_, __ATOMIC_RELAXED);
  while (!(st & WAITERS)) {
    long long v = grown(s, st, n);
    if (v < 0)
      return -EOVERFLOW;
    if (__atomic_compare_exchange_n(&s->state_, &st, (uint32_t)v << 1, true,
                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
      return 0;
  }
  weft__guard_lock(&s->guard_);
  st = __atomic_load_n(&s->state_, __ATOMIC_RELAXED);
  if (grown(s, st, n) < 0) {
    weft__guard_unlock(&s->guard_);
    return -EOVERFLOW;
  }
  weft__waiter *w;
  while (n > 0 && (w = weft__waitq_pop(&s->waiters_)) != NULL) {
    weft__waiter_wake(w, 0);
    n--;
  }
  uint32_t waiters = weft__waitq_empty(&s->waiters_) ? 0 : WAITERS;
  __atomic_store_n(&s->state_, (((st >> 1) + n) << 1) | waiters,
                   __ATOMIC_RELEASE);
  weft__guard_unlock(&s->guard_);
  return 0;
}

unsigned weft_sem_value(const weft_sem *s) {
  return s ? __atomic_load_n(&s->state_, __ATOMIC_RELAXED) >> 1 : 0;
}

int weft_sem_destroy(weft_sem *s) {
  if (!s)
    return -EINVAL;
  return __atomic_load_n(&s->state_, __ATOMIC_ACQUIRE) & WAITERS ? -EBUSY : 0;
}
