/*
 * Cancelling a plain thread (not a task): what a task group does to its
 * thread members. A thread makes itself cancellable (weft__thread_cancel_
 * enable); from then on any thread may cancel it (weft__cancel_thread),
 * and every wait of weft that thread makes fails with -ECANCELED, as a
 * cancelled task's do: the wait it sleeps in now (a waiter's futex, a
 * poll on an fd) is woken, and later waits end at once, through its
 * deadline (deadline.c), which a cancelled thread's is "already passed".
 * Waits on memory shared between processes (weft/shm.h) are not woken:
 * they see the cancellation when they next look, at their re-look
 * interval.
 *
 * Lock order: a record's guard is taken last, after any primitive's.
 */
#ifndef WEFT_HUB_THREAD_CANCEL_H
#define WEFT_HUB_THREAD_CANCEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/coro.h"

struct weft__waiter;

typedef struct weft__thread_cancel {
  atomic_bool cancelled;
  bool enabled; /* the thread is cancellable; its own to read and set */
  /* Shields up (weft_task_shield, from a plain thread): while any is, its
   * waits are not cancelled. Its own to read and set. */
  unsigned shield_depth;
  uint32_t guard; /* guards waiter, and efd against its close */
  /* The waiter the thread sleeps on now, or NULL. */
  struct weft__waiter *waiter;
  int efd; /* an eventfd its fd waits poll beside the fd, or -1 */
} weft__thread_cancel;

extern WEFT__TLS weft__thread_cancel weft__thread_cancel_self;

/* Makes the calling thread cancellable: 0, or -errno (no eventfd).
 * weft__thread_cancel_disable undoes it, before the thread is done with
 * it; nobody may cancel it after that (the caller's ordering). */
int weft__thread_cancel_enable(void);
void weft__thread_cancel_disable(void);

/* Cancels the thread whose record c is; from any thread, while c's thread
 * is cancellable. */
void weft__cancel_thread(weft__thread_cancel *c);

/* Whether the calling plain thread's waits may be cancelled now: it is
 * cancellable, and no shield is up. */
static inline bool weft__thread_cancellable(void) {
  return weft__thread_cancel_self.enabled &&
         weft__thread_cancel_self.shield_depth == 0;
}

/* Whether the calling plain thread's waits are to fail with -ECANCELED:
 * it was cancelled, and no shield is up. */
static inline bool weft__thread_cancelled(void) {
  return weft__thread_cancellable() &&
         atomic_load(&weft__thread_cancel_self.cancelled);
}

/* Whether the calling plain thread was cancelled, shield or not. */
static inline bool weft__thread_was_cancelled(void) {
  return weft__thread_cancel_self.enabled &&
         atomic_load(&weft__thread_cancel_self.cancelled);
}

/* For a thread's wait on w: published while it sleeps, so that a
 * cancellation can wake it (waiter.c). */
void weft__thread_cancel_sleeping(struct weft__waiter *w);

#endif
