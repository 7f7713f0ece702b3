/*
 * The waiter: whoever is blocked in a primitive of weft — a task on some
 * hub, or a plain thread — in one shape, so that every primitive keeps one
 * queue of waiters and works alike between tasks, threads, and the two
 * (DESIGN.md, "one waiter for tasks and threads").
 *
 * A waiter lives in the frame of the blocking call. The protocol, for a
 * primitive P guarded by its own lock L:
 *  - the blocking side, holding L, puts its waiter in P's queue, releases
 *    L, and calls weft__waiter_wait;
 *  - a waker, holding L, takes a waiter out of the queue and calls
 *    weft__waiter_wake on it, still holding L;
 *  - weft__waiter_wait returns the waker's code (>= 0): the blocking side
 *    then takes L once, and lets go, before it returns, since the waker may
 *    still be inside L and the program may free P as soon as the blocking
 *    call returns;
 *  - or it returns -ETIMEDOUT or -ECANCELED: the blocking side takes L again
 * and looks whether its waiter is still queued: if so it removes it and the
 *    wait failed; if not, a waker took it meanwhile and its wake stands
 *    (weft__waiter_woken tells): the primitive must honour it, or pass it
 *    on to the next waiter, so that no wake-up is lost.
 * Since every wake happens under L, and a waiter whose wait failed takes L
 * before it looks, a wake is delivered once or passed on, never lost.
 * One variation: a primitive may wake a *thread* after letting go of L
 * (channels do, so that the woken thread need not look at L at all),
 * provided that a failed wait that finds its waiter taken waits for the
 * wake to come (weft__waiter_await) before it returns.
 *
 * Wake codes are never negative, so that the sign tells a wake from a
 * failed wait. A hub that gives up its run lets no wait on a waiter begin
 * and cancels the tasks parked on one, so that no task is released with
 * its waiter still queued (hub.c).
 *
 * Waking a task of another hub goes through that hub's remote queue and, if
 * the hub sleeps in its poller, a kick of the poller; the waker does both
 * under L, so the task (which takes L before it leaves its wait) and its
 * hub outlive them. A plain thread sleeps on the waiter's futex word.
 */
#ifndef WEFT_HUB_WAITER_H
#define WEFT_HUB_WAITER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <weft/hub.h>

#include "hub-private.h"

typedef struct weft__waiter weft__waiter;

struct weft__waiter {
  weft__waiter *next, *prev; /* in a primitive's queue */
  weft_task *task;           /* the blocked task, or NULL: a thread */
  _Atomic uint32_t woken;    /* WAITER_*: the futex word */
  int code;                  /* what the wake says; written before woken */
  int waker_cpu;      /* where a sleeping thread's waker ran (-1: not known);
                         written before woken */
  bool queued;        /* in a queue; guarded by the primitive */
  int64_t since;      /* a time the primitive may keep (0: none) */
  bool shielded;      /* a cancellation does not end the wait */
  bool no_spin;       /* a thread sleeps without spinning (atomic: may be set
                         while it spins, which stops it) */
  const char *what;   /* "lock", "condition", ...: for reports */
  const void *object; /* the primitive, for reports */
  const char *name;   /* the primitive's name, or NULL */
  /* Set when only one owner can end this wait (an RLock's owner, by its
   * release): returns that owner (a weft_task, or a thread's token), so
   * that a hub can tell a cycle of such waits among its tasks for the
   * deadlock it is. NULL when anyone may wake the waiter. */
  const void *(*holder)(const void *object);
};

/* A queue of waiters, first in first out, guarded by its primitive
 * (declared in weft/hub.h, for primitives to embed). */
typedef struct weft__waitq weft__waitq;

/* Blocks until w is woken (returns its code, >= 0), the deadline passes
 * (-ETIMEDOUT; absolute ns, INT64_MAX: none), the waiting task is
 * cancelled (-ECANCELED), or its timer cannot be armed (-ENOMEM). Call without
 * the primitive's lock, after queueing w. See the protocol above for what to do
 * after an error. */
int weft__waiter_wait(weft__waiter *w, int64_t deadline);

/* Blocks until w, a thread's waiter, is woken, whatever its deadline: for
 * a primitive that wakes threads after leaving its guard (chan.c), when a
 * wait that failed finds that a waker took it meanwhile. */
void weft__waiter_await(weft__waiter *w);

/* Wakes w, which the caller took out of its queue, holding the
 * primitive's lock: its wait returns code, which must not be negative, so
 * that a wake can be told from a failed wait by its sign. */
void weft__waiter_wake(weft__waiter *w, int code);

/* The states of a waiter's woken word: a thread that stops spinning and
 * sleeps on it says so, so that its waker makes the system call only
 * then. */
enum { WAITER_WAITING = 0, WAITER_WOKEN = 1, WAITER_SLEEPING = 2 };

/* Makes w the calling task's or thread's waiter for what/object. */
static inline void weft__waiter_init(weft__waiter *w, const char *what,
                                     const void *object) {
  /* Field by field: a compound literal compiles to a string store
   * (rep stos), whose start-up cost shows in every wait. */
  w->next = w->prev = NULL;
  w->task = weft__task_running();
  atomic_init(&w->woken, WAITER_WAITING);
  w->code = 0;
  w->waker_cpu = -1;
  w->queued = false;
  w->since = 0;
  w->shielded = false;
  w->no_spin = false;
  w->what = what;
  w->object = object;
  w->name = NULL;
  w->holder = NULL;
}

static inline bool weft__waiter_woken(const weft__waiter *w) {
  return atomic_load_explicit(&((weft__waiter *)w)->woken,
                              memory_order_acquire) == WAITER_WOKEN;
}

/* Queue operations: inline, as every wait and wake makes one or two. */
static inline void weft__waitq_push_back(weft__waitq *q, weft__waiter *w) {
  w->next = NULL;
  w->prev = q->tail;
  if (q->tail)
    q->tail->next = w;
  else
    q->head = w;
  q->tail = w;
  w->queued = true;
}

static inline void weft__waitq_push_front(weft__waitq *q, weft__waiter *w) {
  w->prev = NULL;
  w->next = q->head;
  if (q->head)
    q->head->prev = w;
  else
    q->tail = w;
  q->head = w;
  w->queued = true;
}

static inline void weft__waitq_remove(weft__waitq *q, weft__waiter *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    q->head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->tail = w->prev;
  w->next = w->prev = NULL;
  w->queued = false;
}

/* NULL when empty. */
static inline weft__waiter *weft__waitq_pop(weft__waitq *q) {
  weft__waiter *w = q->head;
  if (w)
    weft__waitq_remove(q, w);
  return w;
}

static inline bool weft__waitq_empty(const weft__waitq *q) {
  return q->head == NULL;
}

#endif
