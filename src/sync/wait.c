/*
 * The wait every primitive of the sync layer makes. See sync-private.h.
 */
#include <errno.h>

#include "sync-private.h"

__thread char weft__thread_token;

int weft__sync_wait(uint32_t *g, struct weft__waitq *q, weft__waiter *w,
                    int64_t deadline) {
  weft__waitq_push_back(q, w);
  weft__guard_unlock(g);
  int rc = weft__waiter_wait(w, deadline);
  if (rc >= 0) {
    /* A wake (codes are never negative). The waker may still be inside
     * the guard, touching the primitive, which the caller may free as soon
     * as this returns: wait for it to leave. */
    weft__guard_pass(g);
    return rc;
  }
  /* The wait failed: leave the queue, unless a waker took w out meanwhile,
   * whose wake then stands. The guard orders this after the waker. */
  weft__guard_lock(g);
  if (w->queued) {
    weft__waitq_remove(q, w);
    weft__guard_unlock(g);
    return rc;
  }
  weft__guard_unlock(g);
  return w->code;
}
