/*
 * Deadlines that span calls (weft_deadline_set), the scopes made of them
 * (weft_scope_enter), and the public clock.
 *
 * A deadline is kept by whoever blocks: a task in its record, a thread
 * outside any task in a thread-local. It is read where every wait of weft
 * turns its timeout into an absolute end (weft__deadline_after), so that
 * each blocking call ends at the earlier of the two without knowing about
 * deadlines; and where a wait whose time ran out says so
 * (weft__timed_out), so that a scope that cancels turns that -ETIMEDOUT
 * into -ECANCELED. Until a program sets its first deadline,
 * weft__deadlines_used stays false and waits do not look (one relaxed
 * load, predicted).
 *
 * A scope is nothing but a saved deadline: entering one keeps the
 * caller's deadline in it and brings the deadline forward; exiting puts
 * the saved one back. So one model serves weft_deadline_set, scopes and
 * the deadlines task groups hand to their members.
 */
#include <weft/hub.h>

#include "hub-private.h"
#include "thread-cancel.h"
#include "timer.h"

#define SCOPE_MAGIC 0x73636f70u /* "scop" */

atomic_bool weft__deadlines_used;

static WEFT__TLS weft__deadline thread_deadline = {INT64_MAX, false, NULL};

/* Where the caller's deadline is kept. */
static weft__deadline *deadline_slot(void) {
  weft_task *t = weft__task_running();
  return t ? &t->deadline : &thread_deadline;
}

/* A cancelled plain thread (thread-cancel.h) waits as though under a
 * deadline that has passed and cancels: every wait ends at once with
 * -ECANCELED. (Its end is 1, not 0, which some waits take for a poll.) */
static bool thread_cancelled(void) {
  return !weft__task_running() && weft__thread_cancelled();
}

int64_t weft__deadline_clamp(int64_t deadline) {
  if (thread_cancelled())
    return 1;
  int64_t mine = deadline_slot()->at;
  return mine < deadline ? mine : deadline;
}

int weft__timed_out_slow(int64_t end) {
  if (thread_cancelled())
    return -ECANCELED;
  return weft__deadline_code(deadline_slot(), end);
}

static void note_used(int64_t at) {
  if (at != INT64_MAX)
    atomic_store_explicit(&weft__deadlines_used, true, memory_order_relaxed);
}

int weft_deadline_set(int64_t at, int64_t *previous) {
  if (at < WEFT_FOREVER)
    return -EINVAL;
  weft__deadline *d = deadline_slot();
  if (previous)
    *previous = d->at == INT64_MAX ? WEFT_FOREVER : d->at;
  d->at = at == WEFT_FOREVER ? INT64_MAX : at;
  d->cancels = false;
  note_used(d->at);
  return 0;
}

int64_t weft_deadline(void) {
  int64_t mine = deadline_slot()->at;
  return mine == INT64_MAX ? WEFT_FOREVER : mine;
}

void weft__deadline_inherit(const weft__deadline *from) {
  weft__deadline *d = deadline_slot();
  d->at = from->at;
  d->cancels = from->cancels;
  note_used(d->at);
}

void weft__deadline_get(weft__deadline *out) { *out = *deadline_slot(); }

/* The caller's deadline, or NULL inside a generator, where a scope could
 * outlive the generator's turn (as a shield could: task.c). */
static weft__deadline *scope_slot(const void **owner) {
  weft_task *t = weft__task_running();
  if (t) {
    *owner = t;
    return weft__coro_running == &t->coro ? &t->deadline : NULL;
  }
  *owner = &thread_deadline;
  return weft__coro_running ? NULL : &thread_deadline;
}

int weft_scope_enter(weft_scope *s, int64_t at, int how) {
  if (!s || at < WEFT_FOREVER ||
      (how != WEFT_SCOPE_TIMEOUT && how != WEFT_SCOPE_CANCEL))
    return -EINVAL;
  const void *owner;
  weft__deadline *d = scope_slot(&owner);
  if (!d)
    return -EPERM;
  for (const weft_scope *open = d->scope; open; open = open->outer_)
    if (open == s)
      return -EINVAL; /* entered already, and not exited */
  s->at_ = at == WEFT_FOREVER ? INT64_MAX : at;
  s->outer_at_ = d->at;
  s->outer_cancels_ = d->cancels;
  s->cancels_ = how == WEFT_SCOPE_CANCEL;
  s->outer_ = d->scope;
  s->owner_ = owner;
  s->magic_ = SCOPE_MAGIC;
  if (s->at_ < d->at) { /* else the outer deadline comes first, as it is */
    d->at = s->at_;
    d->cancels = s->cancels_;
    note_used(d->at);
  }
  d->scope = s;
  return 0;
}

int weft_scope_exit(weft_scope *s) {
  if (!s || s->magic_ != SCOPE_MAGIC)
    return -EINVAL;
  const void *owner;
  weft__deadline *d = scope_slot(&owner);
  if (!d)
    return -EPERM;
  if (s->owner_ != owner || d->scope != s)
    return -EINVAL;
  d->at = s->outer_at_;
  d->cancels = s->outer_cancels_;
  d->scope = s->outer_;
  s->magic_ = 0;
  if (s->at_ != INT64_MAX && weft__now() >= s->at_)
    return s->cancels_ ? -ECANCELED : -ETIMEDOUT;
  return 0;
}

int64_t weft_now(void) { return weft__now(); }
