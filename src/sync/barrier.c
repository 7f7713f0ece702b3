/*
 * weft_barrier. See include/weft/sync.h.
 *
 * Everything is under the guard: the count of arrivals in the round, the
 * broken flag, and the queue. The last arrival runs the action and wakes
 * every waiter with RELEASED; a break (a timeout, a cancellation, an
 * abort, a reset) wakes them with BROKEN. Each waiter knows its own
 * arrival index.
 */
#include <errno.h>
#include <weft/sync.h>

#include "../hub/timer.h"
#include "sync-private.h"

enum { RELEASED = 0, BROKEN = 1 };

int weft_barrier_init(weft_barrier *b, unsigned parties,
                      void (*action)(void *arg), void *arg) {
  if (!b || parties == 0 || parties > INT32_MAX)
    return -EINVAL;
  *b = (weft_barrier){.parties_ = parties, .action_ = action, .arg_ = arg};
  return 0;
}

/* Wakes every waiter with code. Called with the guard held. */
static void wake_all(weft_barrier *b, int code) {
  weft__waiter *w;
  while ((w = weft__waitq_pop(&b->waiters_)) != NULL)
    weft__waiter_wake(w, code);
}

int weft_barrier_wait(weft_barrier *b, int64_t timeout) {
  /* Before the arrival counts: a bad call neither completes a round nor
   * breaks one. */
  if (!b || b->parties_ == 0 || weft__timeout_bad(timeout))
    return -EINVAL;
  weft__guard_lock(&b->guard_);
  if (b->broken_) {
    weft__guard_unlock(&b->guard_);
    return -EPIPE;
  }
  int index = (int)b->count_++;
  if (b->count_ == b->parties_) { /* the last: release the round */
    if (b->action_)
      b->action_(b->arg_);
    b->count_ = 0;
    wake_all(b, RELEASED);
    weft__guard_unlock(&b->guard_);
    return index;
  }
  weft_task *self = weft__task_running();
  int rc = timeout == 0 ? -ETIMEDOUT : self && self->cancelled ? -ECANCELED : 0;
  if (rc == 0) {
    weft__waiter w;
    weft__waiter_init(&w, "barrier", b);
    rc = weft__sync_wait(&b->guard_, &b->waiters_, &w,
                         weft__deadline_after(timeout));
    if (rc >= 0)
      return rc == RELEASED ? index : -EPIPE;
    weft__guard_lock(&b->guard_);
  }
  /* This wait ended early: the round cannot complete; break it. */
  b->broken_ = 1;
  b->count_ = 0;
  wake_all(b, BROKEN);
  weft__guard_unlock(&b->guard_);
  return rc;
}

int weft_barrier_reset(weft_barrier *b) {
  if (!b)
    return -EINVAL;
  weft__guard_lock(&b->guard_);
  wake_all(b, BROKEN);
  b->count_ = 0;
  b->broken_ = 0;
  weft__guard_unlock(&b->guard_);
  return 0;
}

int weft_barrier_abort(weft_barrier *b) {
  if (!b)
    return -EINVAL;
  weft__guard_lock(&b->guard_);
  b->broken_ = 1;
  b->count_ = 0;
  wake_all(b, BROKEN);
  weft__guard_unlock(&b->guard_);
  return 0;
}

int weft_barrier_waiting(weft_barrier *b) {
  if (!b)
    return -EINVAL;
  weft__guard_lock(&b->guard_);
  int n = (int)b->count_;
  weft__guard_unlock(&b->guard_);
  return n;
}

bool weft_barrier_broken(weft_barrier *b) {
  if (!b)
    return false;
  weft__guard_lock(&b->guard_);
  bool broken = b->broken_;
  weft__guard_unlock(&b->guard_);
  return broken;
}
