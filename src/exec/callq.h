/*
 * The queue of calls a pool's workers take from, the same for the thread
 * pool and the process pool: back-pressure for submitters, idle workers
 * woken as calls come, and a shutdown that cancels what waits and waits
 * for the workers to end.
 *
 * A submitter takes no lock: it pushes its call onto the intake, a stack
 * it swings with a compare-and-swap. Workers take the intake whole, put it
 * back in submission order on the ready list (under the lock), and each
 * takes a share of it, several calls a turn when many wait, so that a
 * long queue costs a turn at the lock per share and not per call.
 *
 * Idle workers first spin, watching the intake, then sleep. Only a few
 * spin at once (one fewer than the CPUs, at least one), the most recent
 * idlers: more would spin on the CPUs that the submitters and the busy
 * workers need. A sleeper costs
 * a futex wake, tens of microseconds on a virtual machine, so a call wakes
 * one only when nobody would otherwise come for it: it found the intake
 * empty (a call already there has someone coming, and they take the
 * whole intake), nobody spins, and someone sleeps. The sleeper woken is
 * the one that slept last, and it is counted a spinner from its waker's
 * wake on, so that the next calls do not wake more. A worker that takes a
 * share and leaves calls behind wakes another in the same way.
 *
 * Lost wake-ups: a worker about to sleep counts itself a sleeper, then
 * looks at the intake once more; a submitter pushes, then reads the
 * counts. Each side's first step is a read-modify-write and the load
 * after it is sequentially consistent, so one of the two sees the other.
 * A spinner stops counting itself before that last look, so a submitter
 * that saw it spin is seen in turn.
 *
 * Lock order: the queue's lock, then the sleepers' guard, then a worker's
 * waiter (its wake). The pool's `grow` runs under the lock.
 */
#ifndef WEFT_EXEC_CALLQ_H
#define WEFT_EXEC_CALLQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <weft/exec.h>
#include <weft/sync.h>
#include <weft/thread.h>

typedef struct weft__call {
  struct weft__call *next;
  void *fn;   /* the pool's kind of function */
  void *arg;  /* its argument (the process pool: the bytes, owned) */
  size_t len; /* the bytes of arg (the process pool) */
  weft_future *future;
} weft__call;

/* A worker's record, which lives as long as the worker: whether it is
 * counted a spinner (written by the worker, and by its waker while it
 * sleeps: false then tells it the queue shuts down), and while it sleeps,
 * its waiter (src/hub/waiter.h). */
typedef struct weft__idler {
  struct weft__idler *next;
  struct weft__waiter *waiter;
  bool counted;
} weft__idler;

/* A cache line, to keep apart what different threads write. */
#define WEFT__CALLQ_LINE 64

typedef struct weft__callq {
  /* The calls pushed and not yet taken by a worker, the newest first; or
   * INTAKE_SHUT once the queue is shut down. Written with compare-and-
   * swap and exchange, by every submit: alone on its line. */
  _Alignas(WEFT__CALLQ_LINE) _Atomic(uintptr_t) intake;
  /* Workers spinning (or woken to, and not yet at the intake), and asleep
   * on `sleepers`: changed by read-modify-writes as workers come and go,
   * read by every submit. */
  _Alignas(WEFT__CALLQ_LINE) _Atomic int spinning, sleeping;
  /* Taken by each worker as it starts to spin: a spinner that sees as
   * many newer ones as may spin stops. */
  _Atomic unsigned spin_tickets;
  /* Workers started (written under the lock; read without it to see that
   * the pool has all it may have). */
  _Atomic int started;
  /* Calls submitted and not yet taken to run: the bound's count. */
  _Alignas(WEFT__CALLQ_LINE) _Atomic size_t queued;

  /* The sleepers, the most recent first, under their guard (a small
   * lock that never fails, which a submitter may need from a cancelled
   * task). */
  uint32_t sleepers_guard;
  weft__idler *sleepers;

  weft_rlock lock;
  weft_cond room, ended;
  weft__call *head, **tail; /* the ready list, in submission order */
  _Atomic size_t ready;     /* its length (written under the lock) */
  size_t max;               /* 0: no bound */
  bool full_fails, shut;
  /* The workers: threads started as calls come, at most `most`; `alive`
   * of them. Under the lock. */
  int most, alive;
  weft_thread **threads; /* the started ones, `most` of them */
  /* Called under the lock before a call is taken in, while fewer than
   * `most` workers run, to start a worker with weft__callq_add_worker when
   * the pool wants one (its workers differ: threads that run calls,
   * threads that send them to processes). Returns 0, or the error that
   * refuses the call (no worker runs, and none could start). */
  int (*grow)(void *ctx);
  void *ctx;
} weft__callq;

/* Makes q empty, with room for max calls (0: no bound) and up to `most`
 * workers. Returns 0 or -ENOMEM. */
int weft__callq_init(weft__callq *q, size_t max, bool full_fails, int most,
                     int (*grow)(void *ctx), void *ctx);

/* For grow, under the lock: whether the pool should start a worker for
 * the call coming (none is idle, and fewer than the most run). */
bool weft__callq_wants_worker(const weft__callq *q);

/* For grow, under the lock: starts a worker thread named `name` running
 * fn(arg), if weft__callq_wants_worker. Returns 0, or the start's error
 * when no worker runs (then nobody would take the call). */
int weft__callq_add_worker(weft__callq *q, weft_thread_fn fn, void *arg,
                           const char *name);

/* Lets the workers' threads go (after a shutdown that waited) and frees
 * what q holds. */
void weft__callq_destroy(weft__callq *q);

/* Queues c (its future made, not yet held by the pool), waiting up to
 * timeout for room as weft_thread_pool_submit says; takes the pool's hold
 * on the future when it queues. Returns 0 or the submit's error (nothing
 * queued). */
int weft__callq_push(weft__callq *q, weft__call *c, int64_t timeout);

/* For a worker: the next calls, a list linked by `next` (one, or a share
 * of a long queue), waiting while there is none, asleep as `me` (the
 * worker's own record, which lives as long as the worker); NULL once the
 * queue is shut down and empty. */
weft__call *weft__callq_take(weft__callq *q, weft__idler *me);

/* For a worker about to complete the last call of its share, after the
 * call ran: counts it a spinner from now on, so that the call its
 * completion lets a submitter make next (a round trip) wakes no sleeper:
 * the worker comes back for it. If the completion has callbacks to run,
 * it calls weft__callq_not_coming_back first (weft__future_finish_then). */
void weft__callq_coming_back(weft__callq *q, weft__idler *me);

/* Undoes weft__callq_coming_back, before the worker does something that
 * may take long (a future's callbacks): stops counting it a spinner, and
 * wakes another for the calls that came meanwhile, if nobody spins. */
void weft__callq_not_coming_back(weft__callq *q, weft__idler *me);

/* The same, as a completion's weft__before_callbacks fn: a is q, b me. */
void weft__callq_not_coming_back_fn(void *q, void *me);

/* For a worker that ends (after take gave NULL, or on its own): counts it
 * out and wakes a shutdown that waits. */
void weft__callq_worker_ended(weft__callq *q);

/* Shuts q down as weft_thread_pool_shutdown says, the queued calls'
 * futures cancelled with WEFT_POOL_CANCEL (and freed with free_call);
 * with WEFT_POOL_WAIT waits until no worker is alive, and joins their
 * threads. Returns 0 or -ECANCELED (a cancelled task: nothing changed
 * when it could not take the lock; shut down, not waited for, when it
 * waited). */
int weft__callq_shutdown(weft__callq *q, int flags,
                         void (*free_call)(weft__call *c));

#endif
