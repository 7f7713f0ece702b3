/*
 * Waits on many futures: weft_future_wait_any (Python's wait) and the
 * iteration as they complete (as_completed). See include/weft/exec.h.
 *
 * Both watch each future with a watcher (exec-private.h), which the
 * completing side calls under the future's guard. wait_any's watchers set
 * one event that the waiter sleeps on and looks at the futures again;
 * the iteration's put the index of the future done in a ring under the
 * iteration's guard (taken under the future's: the lock order of
 * exec-private.h) and set its event. A watcher is unlinked under its
 * future's guard before the wait returns, so none is told after.
 */
#include <errno.h>
#include <stdlib.h>
#include <weft/exec.h>
#include <weft/sync.h>

#include "../core/guard.h"
#include "../hub/timer.h"
#include "exec-private.h"

/* ---- wait_any ------------------------------------------------------------ */

static void set_event(weft__future_watcher *w) { weft_event_set(w->ctx); }

/* Whether fs[0..n) meet mode; *done is how many are done. */
static bool met(weft_future *const *fs, size_t n, int mode, size_t *done) {
  size_t d = 0;
  bool error = false;
  for (size_t i = 0; i < n; i++) {
    if (!weft_future_done(fs[i]))
      continue;
    d++;
    int e = 0;
    weft_future_result(fs[i], 0, NULL, &e);
    error |= e != 0 && weft_future_state(fs[i]) == WEFT_FUTURE_FINISHED;
  }
  *done = d;
  switch (mode) {
  case WEFT_FIRST_COMPLETED:
    return d > 0;
  case WEFT_FIRST_ERROR:
    return error || d == n;
  default:
    return d == n;
  }
}

int weft_future_wait_any(weft_future *const *fs, size_t n, int mode,
                         int64_t timeout) {
  if ((n > 0 && !fs) || mode < WEFT_FIRST_COMPLETED ||
      mode > WEFT_ALL_COMPLETED || weft__timeout_bad(timeout))
    return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!fs[i])
      return -EINVAL;
  if (n > (size_t)INT32_MAX)
    return -EINVAL; /* the count could not be returned */
  size_t done;
  if (met(fs, n, mode, &done))
    return (int)done;
  if (timeout == 0)
    return -ETIMEDOUT;
  weft__future_watcher *ws = calloc(n, sizeof *ws);
  if (!ws)
    return -ENOMEM;
  weft_event changed = WEFT_EVENT_INIT;
  for (size_t i = 0; i < n; i++) {
    ws[i].fn = set_event;
    ws[i].ctx = &changed;
    if (!weft__future_watch(fs[i], &ws[i]))
      weft_event_set(&changed); /* done meanwhile */
  }
  int64_t deadline = weft__deadline_after(timeout);
  int rc;
  for (;;) {
    weft_event_clear(&changed);
    if (met(fs, n, mode, &done)) {
      rc = (int)done;
      break;
    }
    int64_t left = deadline == INT64_MAX ? WEFT_FOREVER : deadline - weft_now();
    if (left != WEFT_FOREVER && left <= 0) {
      rc = weft__timed_out(deadline);
      break;
    }
    rc = weft_event_wait(&changed, left);
    if (rc < 0 && rc != -ETIMEDOUT)
      break; /* -ECANCELED */
  }
  for (size_t i = 0; i < n; i++)
    weft__future_unwatch(fs[i], &ws[i]);
  free(ws);
  /* The last look, for a completion that came with the timeout. */
  if (rc == -ETIMEDOUT && met(fs, n, mode, &done))
    rc = (int)done;
  return rc;
}

/* ---- as_completed -------------------------------------------------------- */

struct weft_future_iter {
  uint32_t guard;
  size_t n, given;
  weft_future **fs;
  weft__future_watcher *ws;
  /* The indexes of the futures done and not given yet, in the order they
   * completed: a ring of n, from head, `ready` long. */
  size_t *ring, head, ready;
  weft_event more;
};

/* Under the guard. */
static void push_ready(weft_future_iter *it, size_t index) {
  it->ring[(it->head + it->ready) % it->n] = index;
  it->ready++;
}

static void completed(weft__future_watcher *w) {
  weft_future_iter *it = w->ctx;
  weft__guard_lock(&it->guard);
  push_ready(it, w->index);
  weft__guard_unlock(&it->guard);
  weft_event_set(&it->more);
}

int weft_future_iter_new(weft_future_iter **out, weft_future *const *fs,
                         size_t n) {
  if (!out || (n > 0 && !fs))
    return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!fs[i])
      return -EINVAL;
  weft_future_iter *it = calloc(1, sizeof *it);
  size_t slots = n ? n : 1;
  if (it) {
    it->fs = malloc(slots * sizeof *it->fs);
    it->ws = calloc(slots, sizeof *it->ws);
    it->ring = malloc(slots * sizeof *it->ring);
  }
  if (!it || !it->fs || !it->ws || !it->ring) {
    if (it) {
      free(it->fs);
      free(it->ws);
      free(it->ring);
    }
    free(it);
    return -ENOMEM;
  }
  it->n = n;
  weft_event_init(&it->more);
  for (size_t i = 0; i < n; i++) {
    it->fs[i] = fs[i];
    it->ws[i] = (weft__future_watcher){.fn = completed, .ctx = it, .index = i};
  }
  /* Those done already come first, in fs's order. */
  for (size_t i = 0; i < n; i++) {
    if (!weft__future_watch(fs[i], &it->ws[i])) {
      weft__guard_lock(&it->guard);
      push_ready(it, i);
      weft__guard_unlock(&it->guard);
    }
  }
  *out = it;
  return 0;
}

int weft_future_iter_next(weft_future_iter *it, int64_t timeout,
                          weft_future **f) {
  if (!it || !f || weft__timeout_bad(timeout))
    return -EINVAL;
  int64_t deadline = timeout == 0 ? 0 : weft__deadline_after(timeout);
  for (;;) {
    weft__guard_lock(&it->guard);
    if (it->ready > 0) {
      size_t i = it->ring[it->head];
      it->head = (it->head + 1) % it->n;
      it->ready--;
      it->given++;
      weft__guard_unlock(&it->guard);
      *f = it->fs[i];
      return 0;
    }
    bool all = it->given == it->n;
    weft_event_clear(&it->more);
    weft__guard_unlock(&it->guard);
    if (all)
      return -ENOENT;
    int64_t left = deadline == INT64_MAX ? WEFT_FOREVER : deadline - weft_now();
    if (left != WEFT_FOREVER && left <= 0)
      return weft__timed_out(deadline);
    int rc = weft_event_wait(&it->more, left);
    if (rc < 0 && rc != -ETIMEDOUT)
      return rc;
    if (rc == -ETIMEDOUT) {
      weft__guard_lock(&it->guard);
      bool any = it->ready > 0;
      weft__guard_unlock(&it->guard);
      if (!any)
        return -ETIMEDOUT;
    }
  }
}

void weft_future_iter_free(weft_future_iter *it) {
  if (!it)
    return;
  for (size_t i = 0; i < it->n; i++)
    weft__future_unwatch(it->fs[i], &it->ws[i]);
  free(it->fs);
  free(it->ws);
  free(it->ring);
  free(it);
}
