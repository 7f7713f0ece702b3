/*
 * A pool's queue of calls. See callq.h.
 */
#define _GNU_SOURCE
#include "callq.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <weft/hub.h>

#include "../hub/timer.h"
#include "../hub/waiter.h"
#include "exec-private.h"

/* The most calls a worker takes from the queue at once. */
enum { TAKE_MAX = 16 };

/* How many idle workers may spin, the most recent ones: one fewer than
 * the CPUs the process may use (none on one CPU). */
static int spinners(void) {
  static int n = -1;
  int v = __atomic_load_n(&n, __ATOMIC_RELAXED);
  if (v < 0) {
    cpu_set_t set;
    v = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) - 1 : 1;
    __atomic_store_n(&n, v, __ATOMIC_RELAXED);
  }
  return v;
}

int weft__callq_init(weft__callq *q, size_t max, bool full_fails, int most,
                     int (*grow)(void *ctx), void *ctx) {
  *q = (weft__callq){.max = max,
                     .full_fails = full_fails,
                     .most = most,
                     .grow = grow,
                     .ctx = ctx};
  q->threads = calloc((size_t)most, sizeof *q->threads);
  if (!q->threads)
    return -ENOMEM;
  weft_rlock_init(&q->lock, "pool");
  weft_cond_init(&q->room, &q->lock);
  weft_cond_init(&q->ended, &q->lock);
  q->tail = &q->head;
  return 0;
}

int weft__callq_add_worker(weft__callq *q, weft_thread_fn fn, void *arg,
                           const char *name) {
  if (q->idle > 0 || q->started == q->most)
    return 0;
  weft_thread *t;
  int rc = weft_thread_start(
      &t, fn, arg,
      &(weft_thread_opts){.name = name, .daemon = WEFT_THREAD_DAEMON});
  if (rc < 0)
    return q->alive > 0 ? 0 : rc;
  q->threads[q->started++] = t;
  q->alive++;
  return 0;
}

void weft__callq_destroy(weft__callq *q) {
  for (int i = 0; i < q->started; i++)
    weft_thread_detach(q->threads[i]);
  free(q->threads);
  q->threads = NULL;
}

int weft__callq_push(weft__callq *q, weft__call *c, int64_t timeout) {
  int rc = weft_rlock_acquire(&q->lock, WEFT_FOREVER);
  if (rc < 0)
    return rc; /* a cancelled task */
  int64_t deadline = timeout > 0 ? weft__deadline_after(timeout) : 0;
  while (!q->shut && q->max && q->queued >= q->max) {
    if (q->full_fails || timeout == 0) {
      rc = -EAGAIN;
      break;
    }
    int64_t left = timeout < 0 ? WEFT_FOREVER : deadline - weft_now();
    rc = left == WEFT_FOREVER || left > 0 ? weft_cond_wait(&q->room, left)
                                          : -ETIMEDOUT;
    if (rc < 0)
      break; /* the lock is held again, whatever ended the wait */
  }
  if (rc == 0 && q->shut)
    rc = -ESHUTDOWN;
  if (rc == 0 && q->grow)
    rc = q->grow(q->ctx);
  if (rc == 0) {
    weft__future_hold(c->future); /* the pool's, until the call is done */
    c->next = NULL;               /* a worker is given a list: this one alone */
    weft__idler *w = q->idlers;
    if (w) {
      q->idlers = w->next;
      q->idle--;
      w->handed = c;
      weft__waiter_wake(w->waiter, 0);
    } else {
      *q->tail = c;
      q->tail = &c->next;
      q->queued++;
    }
  }
  weft_rlock_release(&q->lock);
  return rc;
}

weft__call *weft__callq_take(weft__callq *q, weft__idler *me) {
  weft_rlock_acquire(&q->lock, WEFT_FOREVER); /* workers are threads */
  weft__call *c = q->head;
  if (!c && !q->shut) {
    /* Idle: wait to be handed a call, or told of the shutdown. */
    weft__waiter w;
    weft__waiter_init(&w, "pool", q);
    w.no_spin = spinners() == 0;
    me->waiter = &w;
    me->handed = NULL;
    me->next = q->idlers;
    q->idlers = me;
    q->idle++;
    /* The idler pushed out of the spinning few stops spinning. */
    weft__idler *out = me;
    for (int i = 0; out && i < spinners(); i++)
      out = out->next;
    if (out)
      __atomic_store_n(&out->waiter->no_spin, true, __ATOMIC_RELAXED);
    weft_rlock_release(&q->lock);
    weft__waiter_await(&w); /* workers are threads: nothing cancels them */
    /* Whoever woke us took us off the stack, under the lock, and wrote
     * `handed` before the wake, which orders it. No pass through the lock
     * is needed before `w` goes (waiter.h's protocol): a thread's wake
     * touches nothing of the waiter after it publishes it, but for the
     * futex wake, which touches no memory. */
    return me->handed;
  }
  if (c) {
    /* A long queue is taken in shares, several calls at a time: every take
     * is a turn at the lock that the submitter and the other workers
     * want, and one call's turn cost more than the call. A share leaves as
     * much for each other worker. */
    size_t share = q->queued / (size_t)(q->alive > 0 ? q->alive : 1);
    size_t n = share < 1 ? 1 : share > TAKE_MAX ? TAKE_MAX : share;
    weft__call *last = c;
    for (size_t i = 1; i < n && last->next; i++)
      last = last->next;
    q->head = last->next;
    last->next = NULL;
    if (!q->head)
      q->tail = &q->head;
    for (weft__call *t = c; t; t = t->next)
      q->queued--;
    if (q->max)
      weft_cond_notify(&q->room, (int)n);
  }
  weft_rlock_release(&q->lock);
  return c;
}

void weft__callq_worker_ended(weft__callq *q) {
  weft_rlock_acquire(&q->lock, WEFT_FOREVER);
  q->alive--;
  weft_cond_notify_all(&q->ended);
  weft_rlock_release(&q->lock);
}

int weft__callq_shutdown(weft__callq *q, int flags,
                         void (*free_call)(weft__call *c)) {
  int rc = weft_rlock_acquire(&q->lock, WEFT_FOREVER);
  if (rc < 0)
    return rc; /* a cancelled task: nothing changed */
  q->shut = true;
  weft__call *cancelled = NULL;
  if (flags & WEFT_POOL_CANCEL) {
    cancelled = q->head;
    q->head = NULL;
    q->tail = &q->head;
    q->queued = 0;
  }
  /* The idle workers end: nothing will be handed to them. */
  for (weft__idler *w = q->idlers, *next; w; w = next) {
    next = w->next;
    q->idle--;
    w->handed = NULL;
    weft__waiter_wake(w->waiter, 0);
  }
  q->idlers = NULL;
  weft_cond_notify_all(&q->room);
  weft_rlock_release(&q->lock);
  /* Their callbacks run here, under no lock of the pool's. */
  for (weft__call *c = cancelled, *next; c; c = next) {
    next = c->next;
    weft_future_cancel(c->future);
    free_call(c);
  }
  if (!(flags & WEFT_POOL_WAIT))
    return 0;
  rc = weft_rlock_acquire(&q->lock, WEFT_FOREVER);
  if (rc < 0)
    return rc;
  while (rc == 0 && q->alive > 0)
    rc = weft_cond_wait(&q->ended, WEFT_FOREVER);
  int started = q->started;
  weft_rlock_release(&q->lock);
  if (rc < 0)
    return rc;
  /* Every worker has left its loop: joining each takes no time. */
  for (int i = 0; i < started; i++)
    weft_thread_join(q->threads[i], WEFT_FOREVER, NULL);
  return 0;
}
