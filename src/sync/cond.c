/*
 * weft_cond. See include/weft/sync.h.
 *
 * A waiter queues itself while it holds the lock, then frees the lock and
 * waits: notify requires the lock, so no notify can fall between the two.
 * The waiter takes the lock back whatever ended its wait, shielded from
 * cancellation (the caller must hold the lock when wait returns, as in
 * Python).
 */
#include <errno.h>
#include <weft/sync.h>

#include "../hub/timer.h"
#include "sync-private.h"

static weft_rlock *lock_of(weft_cond *c) {
  return c->lock_ ? c->lock_ : &c->own_;
}

int weft_cond_init(weft_cond *c, weft_rlock *lock) {
  if (!c)
    return -EINVAL;
  *c = (weft_cond)WEFT_COND_INIT;
  c->lock_ = lock;
  return 0;
}

int weft_cond_acquire(weft_cond *c, int64_t timeout) {
  return c ? weft_rlock_acquire(lock_of(c), timeout) : -EINVAL;
}

int weft_cond_release(weft_cond *c) {
  return c ? weft_rlock_release(lock_of(c)) : -EINVAL;
}

/* Waits until the deadline (absolute). */
static int wait_until(weft_cond *c, int64_t deadline) {
  weft_rlock *r = lock_of(c);
  if (!weft_rlock_owned(r))
    return -EPERM;
  weft_task *self = weft__task_running();
  if (self && self->cancelled)
    return -ECANCELED; /* it would have to wait */
  weft__waiter w;
  weft__waiter_init(&w, "condition", c);
  weft__guard_lock(&c->guard_);
  /* Free the lock while queued: every acquire of the caller's at once. */
  uint32_t saved = r->count_;
  const void *me = weft__sync_self();
  r->count_ = 0;
  __atomic_store_n(&r->owner_, NULL, __ATOMIC_RELAXED);
  weft_lock_release(&r->lock_);
  int rc = weft__sync_wait(&c->guard_, &c->waiters_, &w, deadline);
  /* Shielded: only a hub that gives up its run can make this fail, and
   * then the task is being torn down without the lock. */
  int got = weft__lock_acquire_at(&r->lock_, WEFT_FOREVER, false, r,
                                  __builtin_return_address(0));
  if (got < 0)
    return got;
  __atomic_store_n(&r->owner_, me, __ATOMIC_RELAXED);
  r->count_ = saved;
  return rc < 0 ? rc : 0;
}

int weft_cond_wait(weft_cond *c, int64_t timeout) {
  if (!c || weft__timeout_bad(timeout))
    return -EINVAL;
  return wait_until(c, timeout == 0 ? 0 : weft__deadline_after(timeout));
}

int weft_cond_wait_for(weft_cond *c, bool (*pred)(void *arg), void *arg,
                       int64_t timeout) {
  /* Before pred is called: a bad call runs none of the caller's code. */
  if (!c || !pred || weft__timeout_bad(timeout))
    return -EINVAL;
  if (!weft_rlock_owned(lock_of(c)))
    return -EPERM;
  int64_t deadline = weft__deadline_after(timeout);
  while (!pred(arg)) {
    if (timeout == 0)
      return -ETIMEDOUT;
    if (deadline != INT64_MAX && weft__now() >= deadline)
      return weft__timed_out(deadline);
    int rc = wait_until(c, deadline);
    if (rc == -ETIMEDOUT)
      return pred(arg) ? 0 : -ETIMEDOUT;
    if (rc < 0)
      return rc;
  }
  return 0;
}

int weft_cond_notify(weft_cond *c, int n) {
  if (!c || n < 0)
    return -EINVAL;
  if (!weft_rlock_owned(lock_of(c)))
    return -EPERM;
  int woken = 0;
  weft__guard_lock(&c->guard_);
  weft__waiter *w;
  while (woken < n && (w = weft__waitq_pop(&c->waiters_)) != NULL) {
    weft__waiter_wake(w, 0);
    woken++;
  }
  weft__guard_unlock(&c->guard_);
  return woken;
}

int weft_cond_notify_all(weft_cond *c) {
  return weft_cond_notify(c, INT32_MAX);
}
