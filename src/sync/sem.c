/*
 * weft_sem. See include/weft/sync.h.
 *
 * state_ is the count of free units shifted left by one, and a WAITERS bit
 * that is set exactly while the queue is not empty. WAITERS, and the
 * queue, change only under the guard; the count changes by atomic
 * operations, under the guard or not: with WAITERS clear, taking a unit
 * and giving units back are each one compare-and-swap without the guard,
 * so the guarded paths too change the state only by compare-and-swap
 * loops on what they last read. A release with waiters hands its units to
 * them first, in order, waking each with its unit (no newcomer can take it
 * first), and counts only what is left.
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

static bool cas(weft_sem *s, uint32_t *seen, uint32_t want) {
  return __atomic_compare_exchange_n(&s->state_, seen, want, true,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* Whether value + n stays within the bound (or WEFT_SEM_MAX). */
static bool fits(const weft_sem *s, uint32_t state, unsigned n) {
  unsigned long long v = (state >> 1) + (unsigned long long)n;
  return v <= (s->bound_ ? s->bound_ : WEFT_SEM_MAX);
}

int weft_sem_acquire(weft_sem *s, int64_t timeout) {
  if (!s || weft__timeout_bad(timeout))
    return -EINVAL;
  uint32_t st = __atomic_load_n(&s->state_, __ATOMIC_RELAXED);
  while (st >= UNIT && !(st & WAITERS))
    if (cas(s, &st, st - UNIT)) {
      weft__guard_pass(&s->guard_); /* a releaser may be leaving */
      return 0;
    }
  weft__guard_lock(&s->guard_);
  /* Take a unit left over, or say that someone waits. */
  st = __atomic_load_n(&s->state_, __ATOMIC_RELAXED);
  for (;;) {
    if (st >= UNIT) {
      if (cas(s, &st, st - UNIT)) {
        weft__guard_unlock(&s->guard_);
        return 0;
      }
    } else if ((st & WAITERS) || cas(s, &st, st | WAITERS)) {
      break;
    }
  }
  weft_task *self = weft__task_running();
  int busy = timeout == 0              ? -ETIMEDOUT
             : self && self->cancelled ? -ECANCELED
                                       : 0;
  if (!busy) {
    weft__waiter w;
    weft__waiter_init(&w, "semaphore", s);
    int rc = weft__sync_wait(&s->guard_, &s->waiters_, &w,
                             weft__deadline_after(timeout));
    if (rc >= 0)
      return 0; /* woken with a unit of its own */
    busy = rc;
    weft__guard_lock(&s->guard_);
  }
  /* Not waiting (any more): WAITERS must stay true to the queue. */
  if (weft__waitq_empty(&s->waiters_))
    __atomic_and_fetch(&s->state_, ~WAITERS, __ATOMIC_RELAXED);
  weft__guard_unlock(&s->guard_);
  return busy;
}

int weft_sem_release(weft_sem *s, unsigned n) {
  if (!s || n == 0)
    return -EINVAL;
  uint32_t st = __atomic_load_n(&s->state_, __ATOMIC_RELAXED);
  while (!(st & WAITERS)) {
    if (!fits(s, st, n))
      return -EOVERFLOW;
    if (cas(s, &st, st + n * UNIT))
      return 0;
  }
  weft__guard_lock(&s->guard_);
  /* Units go to waiters first, in order; the rest are counted. The queue
   * cannot change under the guard, but the count can (acquirers and
   * releasers by CAS whenever WAITERS is clear), so the rest is added, and
   * checked against the bound, in a CAS loop, before anyone is woken:
   * an overflow changes nothing. */
  unsigned handed = 0;
  weft__waiter *w = s->waiters_.head;
  for (; w && handed < n; w = w->next)
    handed++;
  unsigned rest = n - handed;
  bool drained = handed > 0 && !w; /* every waiter gets a unit */
  st = __atomic_load_n(&s->state_, __ATOMIC_RELAXED);
  for (;;) {
    if (!fits(s, st, rest)) {
      weft__guard_unlock(&s->guard_);
      return -EOVERFLOW;
    }
    uint32_t want = st + rest * UNIT;
    if (drained)
      want &= ~WAITERS;
    if (cas(s, &st, want))
      break;
  }
  while (handed-- > 0)
    weft__waiter_wake(weft__waitq_pop(&s->waiters_), 0);
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
