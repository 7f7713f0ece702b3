/*
 * weft_event. See include/weft/sync.h.
 *
 * set_ changes by atomic stores: set under the guard (which then wakes
 * every waiter), cleared without it. A waiter looks at set_ under the
 * guard before it queues, so a set either comes before that look (no
 * wait) or finds it queued.
 */
#include <errno.h>
#include <weft/sync.h>

#include "../hub/timer.h"
#include "sync-private.h"

int weft_event_init(weft_event *e) {
  if (!e)
    return -EINVAL;
  *e = (weft_event)WEFT_EVENT_INIT;
  return 0;
}

bool weft_event_is_set(const weft_event *e) {
  if (!e || !__atomic_load_n(&e->set_, __ATOMIC_ACQUIRE))
    return false;
  weft__guard_pass((uint32_t *)&e->guard_); /* the setter may be leaving */
  return true;
}

int weft_event_set(weft_event *e) {
  if (!e)
    return -EINVAL;
  if (__atomic_load_n(&e->set_, __ATOMIC_ACQUIRE))
    return 0;
  weft__guard_lock(&e->guard_);
  __atomic_store_n(&e->set_, 1, __ATOMIC_RELEASE);
  weft__waiter *w;
  while ((w = weft__waitq_pop(&e->waiters_)) != NULL)
    weft__waiter_wake(w, 0);
  weft__guard_unlock(&e->guard_);
  return 0;
}

int weft_event_clear(weft_event *e) {
  if (!e)
    return -EINVAL;
  __atomic_store_n(&e->set_, 0, __ATOMIC_RELEASE);
  return 0;
}

int weft_event_wait(weft_event *e, int64_t timeout) {
  if (!e || weft__timeout_bad(timeout))
    return -EINVAL;
  if (__atomic_load_n(&e->set_, __ATOMIC_ACQUIRE)) {
    weft__guard_pass(&e->guard_); /* the setter may be leaving */
    return 0;
  }
  if (timeout == 0)
    return -ETIMEDOUT;
  weft__guard_lock(&e->guard_);
  if (__atomic_load_n(&e->set_, __ATOMIC_ACQUIRE)) {
    weft__guard_unlock(&e->guard_);
    return 0;
  }
  weft_task *self = weft__task_running();
  if (self && self->cancelled) {
    weft__guard_unlock(&e->guard_);
    return -ECANCELED;
  }
  weft__waiter w;
  weft__waiter_init(&w, "event", e);
  int rc = weft__sync_wait(&e->guard_, &e->waiters_, &w,
                           weft__deadline_after(timeout));
  return rc < 0 ? rc : 0;
}

int weft_event_destroy(weft_event *e) {
  if (!e)
    return -EINVAL;
  weft__guard_lock(&e->guard_);
  bool waited = !weft__waitq_empty(&e->waiters_);
  weft__guard_unlock(&e->guard_);
  return waited ? -EBUSY : 0;
}
