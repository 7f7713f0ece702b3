/*
 * weft_future. See include/weft/exec.h and exec-private.h.
 *
 * Completing a future, under its guard: the outcome is written, the state
 * stored (release) as the last of it, every waiter woken and every watcher
 * told; then, with the guard let go, the done callbacks run in the order
 * they were added. A callback added after the state was stored sees it
 * done (under the guard) and runs at once on its adder's stack, so each
 * runs exactly once. A waiter looks at the state under the guard before it
 * queues, so a completion either comes before that look (no wait) or
 * finds it queued.
 *
 * Holds: the caller of weft_future_new or a pool's submit has one, a pool
 * another while the call is queued or running; the last let go frees the
 * future, its value if it owns it, and its callbacks (which never ran if
 * it was never done).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <weft/exec.h>

#include "../core/guard.h"
#include "../hub/timer.h"
#include "../hub/waiter.h"
#include "../sync/sync-private.h"
#include "exec-private.h"

struct callback {
  struct callback *next;
  weft_future_cb fn;
  void *arg;
};

struct weft_future {
  uint32_t guard;
  _Atomic int state;
  _Atomic int holds;
  int error;
  void *value;
  size_t size;
  void *owned; /* what to free with the future: value's buffer, or NULL */
  bool died;   /* a process pool's worker died running the call */
  int exit_code;
  struct weft__waitq waiters;
  struct callback *callbacks, **callbacks_tail;
  weft__future_watcher *watchers;
};

static __thread const weft_future *running_here;

void weft__future_running_set(const weft_future *f) { running_here = f; }

static bool is_done(int state) {
  return state == WEFT_FUTURE_FINISHED || state == WEFT_FUTURE_CANCELLED;
}

static int state_of(const weft_future *f) {
  return atomic_load_explicit(&((weft_future *)f)->state, memory_order_acquire);
}

/* A future's size, rounded up so that what a pool keeps behind it is
 * aligned as malloc's memory is. */
#define FUTURE_SIZE                                                            \
  ((sizeof(struct weft_future) + _Alignof(max_align_t) - 1) /                  \
   _Alignof(max_align_t) * _Alignof(max_align_t))

int weft__future_new_with(weft_future **out, size_t extra, void **area) {
  weft_future *f = calloc(1, FUTURE_SIZE + extra);
  if (!f)
    return -ENOMEM;
  atomic_init(&f->state, WEFT_FUTURE_PENDING);
  atomic_init(&f->holds, 1);
  f->callbacks_tail = &f->callbacks;
  if (area)
    *area = (char *)f + FUTURE_SIZE;
  *out = f;
  return 0;
}

int weft_future_new(weft_future **out) {
  if (!out)
    return -EINVAL;
  return weft__future_new_with(out, 0, NULL);
}

void weft__future_hold(weft_future *f) {
  atomic_fetch_add_explicit(&f->holds, 1, memory_order_relaxed);
}

void weft_future_free(weft_future *f) {
  if (!f || atomic_fetch_sub_explicit(&f->holds, 1, memory_order_acq_rel) != 1)
    return;
  /* The last hold: nobody completes, waits on or watches f any more. */
  for (struct callback *c = f->callbacks, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(f->owned);
  free(f);
}

int weft_future_set_running(weft_future *f) {
  if (!f)
    return -EINVAL;
  weft__guard_lock(&f->guard);
  int s = atomic_load_explicit(&f->state, memory_order_relaxed);
  if (s == WEFT_FUTURE_PENDING)
    atomic_store_explicit(&f->state, WEFT_FUTURE_RUNNING, memory_order_release);
  weft__guard_unlock(&f->guard);
  if (s == WEFT_FUTURE_CANCELLED)
    return -ECANCELED;
  return s == WEFT_FUTURE_PENDING ? 0 : -EALREADY;
}

/* Makes f done with `state` and the outcome, if it is not done yet (for a
 * cancellation: if it is pending), and runs its callbacks. Returns 0, or
 * the state that stopped it (-1 when f was running and state is a
 * cancellation). */
static int complete(weft_future *f, int state, void *value, size_t size,
                    void *owned, int error, bool died, int exit_code,
                    const weft__before_callbacks *before) {
  weft__guard_lock(&f->guard);
  int s = atomic_load_explicit(&f->state, memory_order_relaxed);
  if (is_done(s) ||
      (state == WEFT_FUTURE_CANCELLED && s == WEFT_FUTURE_RUNNING)) {
    weft__guard_unlock(&f->guard);
    return s == WEFT_FUTURE_RUNNING ? -1 : s;
  }
  f->value = value;
  f->size = size;
  f->owned = owned;
  f->died = died;
  f->exit_code = exit_code;
  f->error = state == WEFT_FUTURE_CANCELLED ? -ECANCELED : error;
  atomic_store_explicit(&f->state, state, memory_order_release);
  weft__waiter *w;
  while ((w = weft__waitq_pop(&f->waiters)) != NULL)
    weft__waiter_wake(w, 0);
  for (weft__future_watcher *wt = f->watchers; wt; wt = wt->next) {
    wt->linked = false;
    wt->fn(wt);
  }
  f->watchers = NULL;
  struct callback *cbs = f->callbacks;
  f->callbacks = NULL;
  f->callbacks_tail = &f->callbacks;
  weft__guard_unlock(&f->guard);
  if (cbs && before)
    before->fn(before->a, before->b);
  for (struct callback *c = cbs, *next; c; c = next) {
    next = c->next;
    c->fn(f, c->arg);
    free(c);
  }
  return 0;
}

int weft__future_finish_then(weft_future *f, void *value, size_t size,
                             void *owned, int error,
                             const weft__before_callbacks *before) {
  if (error) {
    free(owned);
    value = owned = NULL;
    size = 0;
  }
  int rc = complete(f, WEFT_FUTURE_FINISHED, value, size, owned, error, false,
                    0, before);
  if (rc != 0)
    free(owned); /* done already: the value has nowhere to go */
  return rc == 0 ? 0 : -EALREADY;
}

int weft__future_finish(weft_future *f, void *value, size_t size, void *owned,
                        int error) {
  return weft__future_finish_then(f, value, size, owned, error, NULL);
}

int weft__future_died(weft_future *f, int exit_code) {
  int rc = complete(f, WEFT_FUTURE_FINISHED, NULL, 0, NULL, -EOWNERDEAD, true,
                    exit_code, NULL);
  return rc == 0 ? 0 : -EALREADY;
}

int weft_future_worker_exit(const weft_future *f, int *code) {
  if (!f)
    return -EINVAL;
  if (!is_done(state_of(f)) || !f->died)
    return -ENOENT;
  if (code)
    *code = f->exit_code;
  return 0;
}

int weft_future_set_result(weft_future *f, void *value) {
  if (!f)
    return -EINVAL;
  return weft__future_finish(f, value, 0, NULL, 0);
}

int weft_future_set_error(weft_future *f, int error) {
  if (!f || error >= 0)
    return -EINVAL;
  return weft__future_finish(f, NULL, 0, NULL, error);
}

int weft_future_cancel(weft_future *f) {
  if (!f)
    return -EINVAL;
  int rc = complete(f, WEFT_FUTURE_CANCELLED, NULL, 0, NULL, 0, false, 0, NULL);
  if (rc == 0 || rc == WEFT_FUTURE_CANCELLED)
    return 0;
  return rc == -1 ? -EBUSY : -EALREADY;
}

/* The outcome of a done future into the caller's pointers. */
static int outcome(const weft_future *f, void **value, int *error) {
  if (value)
    *value = f->value;
  if (error)
    *error = f->error;
  return 0;
}

int weft_future_result(weft_future *f, int64_t timeout, void **value,
                       int *error) {
  if (!f || weft__timeout_bad(timeout))
    return -EINVAL;
  if (is_done(state_of(f))) {
    weft__guard_pass(&f->guard); /* the completer may be leaving */
    return outcome(f, value, error);
  }
  if (running_here == f)
    return -EDEADLK;
  if (timeout == 0)
    return -ETIMEDOUT;
  weft__guard_lock(&f->guard);
  if (is_done(atomic_load_explicit(&f->state, memory_order_relaxed))) {
    weft__guard_unlock(&f->guard);
    return outcome(f, value, error);
  }
  weft_task *self = weft__task_running();
  if (self && self->cancelled) {
    weft__guard_unlock(&f->guard);
    return -ECANCELED;
  }
  weft__waiter w;
  weft__waiter_init(&w, "future", f);
  int rc = weft__sync_wait(&f->guard, &f->waiters, &w,
                           weft__deadline_after(timeout));
  return rc < 0 ? rc : outcome(f, value, error);
}

size_t weft_future_size(const weft_future *f) {
  if (!f || !is_done(state_of(f)))
    return 0;
  return f->size;
}

int weft_future_state(const weft_future *f) {
  return f ? state_of(f) : -EINVAL;
}

bool weft_future_done(const weft_future *f) {
  return f && is_done(state_of(f));
}

int weft_future_add_done_callback(weft_future *f, weft_future_cb cb,
                                  void *arg) {
  if (!f || !cb)
    return -EINVAL;
  if (!is_done(state_of(f))) {
    struct callback *c = malloc(sizeof *c);
    if (!c)
      return -ENOMEM;
    *c = (struct callback){.fn = cb, .arg = arg};
    weft__guard_lock(&f->guard);
    if (!is_done(atomic_load_explicit(&f->state, memory_order_relaxed))) {
      *f->callbacks_tail = c;
      f->callbacks_tail = &c->next;
      weft__guard_unlock(&f->guard);
      return 0;
    }
    weft__guard_unlock(&f->guard);
    free(c);
  } else {
    weft__guard_pass(&f->guard);
  }
  cb(f, arg); /* done already: at once, here */
  return 0;
}

bool weft__future_watch(weft_future *f, weft__future_watcher *w) {
  weft__guard_lock(&f->guard);
  bool pending =
      !is_done(atomic_load_explicit(&f->state, memory_order_relaxed));
  if (pending) {
    w->prev = NULL;
    w->next = f->watchers;
    if (w->next)
      w->next->prev = w;
    f->watchers = w;
    w->linked = true;
  }
  weft__guard_unlock(&f->guard);
  return pending;
}

void weft__future_unwatch(weft_future *f, weft__future_watcher *w) {
  weft__guard_lock(&f->guard);
  if (w->linked) {
    if (w->prev)
      w->prev->next = w->next;
    else
      f->watchers = w->next;
    if (w->next)
      w->next->prev = w->prev;
    w->linked = false;
  }
  weft__guard_unlock(&f->guard);
}
