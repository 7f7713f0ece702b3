/*
 * A pool's queue of calls. See callq.h.
 */
#define _GNU_SOURCE
#include "callq.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <weft/hub.h>

#include "../core/cpu.h"
#include "../core/guard.h"
#include "../hub/timer.h"
#include "../hub/waiter.h"
#include "exec-private.h"

/* The intake of a queue shut down: no call is pushed any more. */
#define INTAKE_SHUT ((uintptr_t)1)

/* The most calls a worker takes at once. */
enum { TAKE_MAX = 16 };

/* How long an idle worker spins before it sleeps: longer than a futex
 * sleep and wake cost on a virtual machine (50 to 70 us, waiter.c), so
 * that calls that come closer together than that find it awake. */
#define SPIN_FOR WEFT_US(100)
/* The most pauses between two looks of a spinner at the intake. */
enum { LOOK_GAP_MAX = 16 };

/* How many idle workers may spin at once: one fewer than the CPUs the
 * process may use, at least one (none when spinning does not pay). */
static int spinners(void) {
  static int n = -1;
  int v = __atomic_load_n(&n, __ATOMIC_RELAXED);
  if (v < 0) {
    cpu_set_t set;
    v = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) - 1 : 1;
    v = v < 1 ? 1 : v;
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

bool weft__callq_wants_worker(const weft__callq *q) {
  weft__callq *m = (weft__callq *)q;
  return atomic_load(&m->spinning) + atomic_load(&m->sleeping) == 0 &&
         atomic_load_explicit(&m->started, memory_order_relaxed) < q->most;
}

int weft__callq_add_worker(weft__callq *q, weft_thread_fn fn, void *arg,
                           const char *name) {
  if (!weft__callq_wants_worker(q))
    return 0;
  weft_thread *t;
  int rc = weft_thread_start(
      &t, fn, arg,
      &(weft_thread_opts){.name = name, .daemon = WEFT_THREAD_DAEMON});
  if (rc < 0)
    return q->alive > 0 ? 0 : rc;
  int i = atomic_load_explicit(&q->started, memory_order_relaxed);
  q->threads[i] = t;
  atomic_store_explicit(&q->started, i + 1, memory_order_relaxed);
  q->alive++;
  return 0;
}

void weft__callq_destroy(weft__callq *q) {
  int started = atomic_load_explicit(&q->started, memory_order_relaxed);
  for (int i = 0; i < started; i++)
    weft_thread_detach(q->threads[i]);
  free(q->threads);
  q->threads = NULL;
}

/* --- sleepers ------------------------------------------------------------ */

/* Wakes the worker that slept last, if one sleeps, and counts it a
 * spinner (as_spinner) or tells it the queue shuts down. Under the
 * sleepers' guard. */
static void wake_sleeper_guarded(weft__callq *q, bool as_spinner) {
  weft__idler *w = q->sleepers;
  if (!w)
    return;
  q->sleepers = w->next;
  atomic_fetch_sub(&q->sleeping, 1);
  if (as_spinner)
    atomic_fetch_add(&q->spinning, 1);
  w->counted = as_spinner;
  weft__waiter_wake(w->waiter, 0);
}

/* Wakes a sleeper to come for the calls, unless a spinner will. */
static void wake_sleeper(weft__callq *q) {
  weft__guard_lock(&q->sleepers_guard);
  if (atomic_load(&q->spinning) == 0)
    wake_sleeper_guarded(q, true);
  weft__guard_unlock(&q->sleepers_guard);
}

/* --- submitting ---------------------------------------------------------- */

/* Takes a place in a bounded queue, if one is free. */
static bool try_reserve(weft__callq *q) {
  size_t n = atomic_load_explicit(&q->queued, memory_order_relaxed);
  while (n < q->max)
    if (atomic_compare_exchange_weak_explicit(
            &q->queued, &n, n + 1, memory_order_relaxed, memory_order_relaxed))
      return true;
  return false;
}

static void unreserve(weft__callq *q) {
  if (q->max)
    atomic_fetch_sub_explicit(&q->queued, 1, memory_order_relaxed);
}

/* Takes a place for a call as the submit's timeout says. Returns 0 or the
 * submit's error. */
static int reserve(weft__callq *q, int64_t timeout) {
  if (!q->max || try_reserve(q))
    return 0;
  if (q->full_fails || timeout == 0)
    return -EAGAIN;
  int rc = weft_rlock_acquire(&q->lock, WEFT_FOREVER);
  if (rc < 0)
    return rc; /* a cancelled task */
  int64_t deadline = timeout > 0 ? weft__deadline_after(timeout) : 0;
  /* Places are given back under the lock (take_share), which notifies. */
  while (!q->shut && !try_reserve(q)) {
    int64_t left = timeout < 0 ? WEFT_FOREVER : deadline - weft_now();
    rc = left == WEFT_FOREVER || left > 0 ? weft_cond_wait(&q->room, left)
         : timeout == 0                   ? -ETIMEDOUT
                                          : weft__timed_out(deadline);
    if (rc < 0)
      break; /* the lock is held again, whatever ended the wait */
  }
  if (rc == 0 && q->shut)
    rc = -ESHUTDOWN; /* no place taken: the loop ended on shut */
  weft_rlock_release(&q->lock);
  return rc;
}

/* Starts a worker for the call coming, if the pool wants one. Returns 0 or
 * the error that refuses the call. */
static int grow(weft__callq *q) {
  int rc = weft_rlock_acquire(&q->lock, WEFT_FOREVER);
  if (rc < 0)
    return rc; /* a cancelled task */
  rc = q->shut ? -ESHUTDOWN : q->grow ? q->grow(q->ctx) : 0;
  weft_rlock_release(&q->lock);
  return rc;
}

int weft__callq_push(weft__callq *q, weft__call *c, int64_t timeout) {
  /* A worker is started before a place is taken: a place given back
   * would have to be told to the submitters waiting for one, under the
   * lock, which a cancelled task may not get. */
  int rc = weft__callq_wants_worker(q) ? grow(q) : 0;
  if (rc == 0)
    rc = reserve(q, timeout);
  if (rc < 0)
    return rc;
  weft__future_hold(c->future); /* the pool's, until the call is done */
  /* Guessed empty, which a spinner keeps it: one exclusive fetch of the
   * line, where a load first would fetch it twice. */
  uintptr_t prev = 0;
  do {
    if (prev == INTAKE_SHUT) {
      /* The place goes back untold: the shutdown woke every submitter
       * waiting for one, to be refused. */
      weft_future_free(c->future); /* the hold just taken */
      unreserve(q);
      return -ESHUTDOWN;
    }
    c->next = (weft__call *)prev;
  } while (!atomic_compare_exchange_weak_explicit(
      &q->intake, &prev, (uintptr_t)c, memory_order_seq_cst,
      memory_order_relaxed));
  /* A call found in the intake has someone coming for it, who takes this
   * one too. */
  if (prev == 0 && atomic_load(&q->spinning) == 0 &&
      atomic_load(&q->sleeping) > 0)
    wake_sleeper(q);
  return 0;
}

/* --- taking -------------------------------------------------------------- */

/* Moves what the intake holds (the newest first) to the ready list's end,
 * in submission order. Under the lock. */
static void move_intake(weft__callq *q, uintptr_t in) {
  if (in == 0 || in == INTAKE_SHUT)
    return;
  weft__call *oldest = NULL;
  size_t n = 0;
  for (weft__call *c = (weft__call *)in, *next; c; c = next, n++) {
    next = c->next;
    c->next = oldest;
    oldest = c;
  }
  *q->tail = oldest;
  while (*q->tail)
    q->tail = &(*q->tail)->next;
  atomic_store(&q->ready,
               atomic_load_explicit(&q->ready, memory_order_relaxed) + n);
}

/* Whether calls wait: in the ready list, or in the intake. */
static bool calls_wait(weft__callq *q) {
  return atomic_load(&q->ready) != 0 || atomic_load(&q->intake) > INTAKE_SHUT;
}

/* Under the lock, from a worker that has just stopped counting itself a
 * spinner (a sequentially consistent read-modify-write): if calls wait
 * and nobody spins, wakes a sleeper to come for them, or starts a worker
 * (if none starts, those alive come when done). A submitter that saw the
 * worker counted, and so woke nobody, pushed before it looked; the worker
 * stopped counting before it looks here: one of the two sees the other. */
static void call_for_help(weft__callq *q) {
  if (!calls_wait(q) || atomic_load(&q->spinning) != 0)
    return;
  if (atomic_load(&q->sleeping) > 0)
    wake_sleeper(q);
  else if (q->grow && !q->shut)
    q->grow(q->ctx);
}

/* What take_share found. */
enum { NOTHING, TAKEN, ENDED };

/* Takes the worker's share of the ready list into *out, the intake moved
 * into it first if it is empty; stops counting the worker a spinner when
 * it takes some; and wakes another (or starts one) for the calls it leaves
 * behind, if nobody spins. ENDED: the queue is shut down and empty. */
static int take_share(weft__callq *q, bool *spinner, weft__call **out) {
  if (atomic_load_explicit(&q->ready, memory_order_relaxed) == 0 &&
      atomic_load_explicit(&q->intake, memory_order_relaxed) == 0)
    return NOTHING; /* at a glance, without the lock */
  weft_rlock_acquire(&q->lock, WEFT_FOREVER); /* workers are threads */
  if (!q->head) {
    uintptr_t in = atomic_load_explicit(&q->intake, memory_order_relaxed);
    while (in != 0 && in != INTAKE_SHUT &&
           !atomic_compare_exchange_weak_explicit(&q->intake, &in, 0,
                                                  memory_order_acquire,
                                                  memory_order_relaxed)) {
    }
    move_intake(q, in);
  }
  weft__call *c = q->head;
  if (!c) {
    bool ended = q->shut;
    weft_rlock_release(&q->lock);
    return ended ? ENDED : NOTHING;
  }
  /* A long queue is taken in shares, several calls at a time: each turn
   * at the lock is one the other workers want. A share leaves as much for
   * each worker the pool may have, so that calls that block run side by
   * side, as they would one a turn. */
  size_t ready = atomic_load_explicit(&q->ready, memory_order_relaxed);
  size_t n = ready / (size_t)q->most;
  n = n < 1 ? 1 : n > TAKE_MAX ? TAKE_MAX : n;
  weft__call *last = c;
  for (size_t i = 1; i < n; i++)
    last = last->next;
  q->head = last->next;
  last->next = NULL;
  if (!q->head)
    q->tail = &q->head;
  atomic_store(&q->ready, ready - n);
  if (q->max) {
    atomic_fetch_sub_explicit(&q->queued, n, memory_order_relaxed);
    weft_cond_notify(&q->room, (int)n);
  }
  if (*spinner) {
    atomic_fetch_sub(&q->spinning, 1);
    *spinner = false;
  }
  call_for_help(q);
  weft_rlock_release(&q->lock);
  *out = c;
  return TAKEN;
}

/* Spins while nothing is there to take, as a counted spinner, for a while:
 * true if something came (the worker stays counted), false if it did not,
 * if the worker may not spin, or if enough newer spinners pushed it out
 * (and it is not counted). The spinners are the most recent idlers: a
 * worker just done is the likeliest to be on a CPU with its caches warm
 * (and for a process pool, with its process awake), so it takes the place
 * of the one idle longest, which sleeps. */
static bool spin(weft__callq *q, bool *spinner) {
  if (!weft__cpu_spinning_pays()) {
    if (*spinner)
      atomic_fetch_sub(&q->spinning, 1);
    *spinner = false;
    return false;
  }
  if (!*spinner) {
    atomic_fetch_add(&q->spinning, 1);
    *spinner = true;
  }
  unsigned ticket = atomic_fetch_add(&q->spin_tickets, 1);
  /* Each look at the intake takes its cache line from the submitter, who
   * must fetch it back for its next call: the looks are spaced out, more
   * as the spin goes on, so that calls that come fast gather between two. */
  int64_t end = weft__now() + SPIN_FOR;
  for (int gap = 1;; gap = gap < LOOK_GAP_MAX ? 2 * gap : gap) {
    if (atomic_load_explicit(&q->ready, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&q->intake, memory_order_relaxed) != 0)
      return true;
    for (int i = 0; i < gap; i++)
      weft__cpu_relax();
    unsigned newer =
        atomic_load_explicit(&q->spin_tickets, memory_order_relaxed) - ticket -
        1;
    if (newer >= (unsigned)spinners() || weft__now() >= end)
      break;
  }
  atomic_fetch_sub(&q->spinning, 1);
  *spinner = false;
  return false;
}

/* Sleeps until a call or the shutdown wakes the worker, unless something
 * is there to take after it counted itself a sleeper. */
static void sleep_until_woken(weft__callq *q, weft__idler *me) {
  weft__waiter w;
  weft__waiter_init(&w, "pool", q);
  w.no_spin = true; /* it spun already */
  weft__guard_lock(&q->sleepers_guard);
  me->waiter = &w;
  me->next = q->sleepers;
  q->sleepers = me;
  atomic_fetch_add(&q->sleeping, 1);
  if (atomic_load(&q->intake) != 0 || atomic_load(&q->ready) != 0) {
    q->sleepers = me->next; /* nobody woke it: it is still on top */
    atomic_fetch_sub(&q->sleeping, 1);
    weft__guard_unlock(&q->sleepers_guard);
    return;
  }
  weft__guard_unlock(&q->sleepers_guard);
  weft__waiter_await(&w); /* workers are threads: nothing cancels them */
  /* The waker wrote `counted` before the wake, which orders it; and it
   * touches nothing of w after (waiter.h's protocol), but for the futex
   * wake, which touches no memory. */
}

weft__call *weft__callq_take(weft__callq *q, weft__idler *me) {
  for (;;) {
    weft__call *c;
    switch (take_share(q, &me->counted, &c)) {
    case TAKEN:
      return c;
    case ENDED:
      if (me->counted)
        atomic_fetch_sub(&q->spinning, 1);
      me->counted = false;
      return NULL;
    }
    if (!spin(q, &me->counted))
      sleep_until_woken(q, me);
  }
}

void weft__callq_coming_back(weft__callq *q, weft__idler *me) {
  if (!me->counted && weft__cpu_spinning_pays()) {
    atomic_fetch_add(&q->spinning, 1);
    me->counted = true;
  }
}

void weft__callq_not_coming_back(weft__callq *q, weft__idler *me) {
  if (!me->counted)
    return;
  atomic_fetch_sub(&q->spinning, 1);
  me->counted = false;
  if (!calls_wait(q))
    return;
  weft_rlock_acquire(&q->lock, WEFT_FOREVER); /* workers are threads */
  call_for_help(q);
  weft_rlock_release(&q->lock);
}

void weft__callq_not_coming_back_fn(void *q, void *me) {
  weft__callq_not_coming_back(q, me);
}

void weft__callq_worker_ended(weft__callq *q) {
  weft_rlock_acquire(&q->lock, WEFT_FOREVER);
  q->alive--;
  weft_cond_notify_all(&q->ended);
  weft_rlock_release(&q->lock);
}

/* --- shutting down ------------------------------------------------------- */

int weft__callq_shutdown(weft__callq *q, int flags,
                         void (*free_call)(weft__call *c)) {
  int rc = weft_rlock_acquire(&q->lock, WEFT_FOREVER);
  if (rc < 0)
    return rc; /* a cancelled task: nothing changed */
  q->shut = true;
  move_intake(q, atomic_exchange(&q->intake, INTAKE_SHUT));
  weft__call *cancelled = NULL;
  if (flags & WEFT_POOL_CANCEL) {
    cancelled = q->head;
    q->head = NULL;
    q->tail = &q->head;
    size_t n = atomic_exchange(&q->ready, 0);
    if (q->max)
      atomic_fetch_sub_explicit(&q->queued, n, memory_order_relaxed);
  }
  /* The sleepers wake to the shutdown: each takes what is left, or ends.
   * The spinners see the intake shut. */
  weft__guard_lock(&q->sleepers_guard);
  while (q->sleepers)
    wake_sleeper_guarded(q, false);
  weft__guard_unlock(&q->sleepers_guard);
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
  int started = atomic_load_explicit(&q->started, memory_order_relaxed);
  weft_rlock_release(&q->lock);
  if (rc < 0)
    return rc;
  /* Every worker has left its loop: joining each takes no time. */
  for (int i = 0; i < started; i++)
    weft_thread_join(q->threads[i], WEFT_FOREVER, NULL);
  return 0;
}
