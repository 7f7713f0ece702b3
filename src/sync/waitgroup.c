/*
 * weft_waitgroup. See include/weft/sync.h.
 *
 * The counter changes under the guard; a wait reads it without the guard
 * first (a count of zero needs no waiting), then again under the guard
 * before it queues, so a fall to zero either comes before that look or
 * finds the waiter queued.
 */
#include <errno.h>
#include <weft/sync.h>

#include "../hub/timer.h"
#include "sync-private.h"

int weft_waitgroup_add(weft_waitgroup *wg, int delta) {
  if (!wg)
    return -EINVAL;
  weft__guard_lock(&wg->guard_);
  int64_t count = wg->count_ + delta;
  if (count < 0) {
    weft__guard_unlock(&wg->guard_);
    return -EINVAL;
  }
  __atomic_store_n(&wg->count_, count, __ATOMIC_RELEASE);
  if (count == 0) {
    weft__waiter *w;
    while ((w = weft__waitq_pop(&wg->waiters_)) != NULL)
      weft__waiter_wake(w, 0);
  }
  weft__guard_unlock(&wg->guard_);
  return 0;
}

int weft_waitgroup_done(weft_waitgroup *wg) {
  return weft_waitgroup_add(wg, -1);
}

int weft_waitgroup_wait(weft_waitgroup *wg, int64_t timeout) {
  if (!wg || weft__timeout_bad(timeout))
    return -EINVAL;
  if (__atomic_load_n(&wg->count_, __ATOMIC_ACQUIRE) == 0) {
    weft__guard_pass(&wg->guard_); /* the last done may be leaving */
    return 0;
  }
  weft__guard_lock(&wg->guard_);
  weft_task *self = weft__task_running();
  int rc = wg->count_ == 0           ? 0
           : timeout == 0            ? -ETIMEDOUT
           : self && self->cancelled ? -ECANCELED
                                     : 1;
  if (rc != 1) {
    weft__guard_unlock(&wg->guard_);
    return rc;
  }
  weft__waiter w;
  weft__waiter_init(&w, "wait group", wg);
  rc = weft__sync_wait(&wg->guard_, &wg->waiters_, &w,
                       weft__deadline_after(timeout));
  return rc < 0 ? rc : 0;
}
