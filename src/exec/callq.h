/*
 * The queue of calls a pool's workers take from, the same for the thread
 * pool and the process pool: back-pressure for submitters, idle workers
 * woken as calls come, and a shutdown that cancels what waits and waits
 * for the workers to end.
 *
 * One re-entrant lock, two conditions — room (a call left a full queue:
 * submitters wait on it) and ended (a worker ended: a shutdown that waits
 * waits on it) — and a stack of idle workers. A call that comes while a
 * worker is idle is handed to the one idle most recently, as Go's
 * scheduler does: it is the likeliest to be still spinning on a CPU, where
 * the one idle longest sleeps and costs a wake-up across CPUs. Only when
 * none is idle does a call wait in the queue, which busy workers take from
 * as they finish. Only the first idle workers spin while they wait, one
 * fewer than the CPUs: more would spin on the CPUs the submitters and the
 * busy workers need, for calls that come to one of them at a time. Workers
 * are counted by the pool (alive, idle), under the lock; the pool starts them
 * from `grow`, which the queue calls under the lock for each call it takes in.
 */
#ifndef WEFT_EXEC_CALLQ_H
#define WEFT_EXEC_CALLQ_H

#include <stdbool.h>
#include <stddef.h>
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

/* A worker's record while it is idle: its waiter (src/hub/waiter.h), and
 * the call handed to it (NULL: the queue shuts down). */
typedef struct weft__idler {
  struct weft__idler *next;
  struct weft__waiter *waiter;
  weft__call *handed;
} weft__idler;

typedef struct weft__callq {
  weft_rlock lock;
  weft_cond room, ended;
  weft__idler *idlers; /* the idle workers, the most recent first */
  weft__call *head, **tail;
  size_t queued, max; /* max 0: no bound */
  bool full_fails, shut;
  /* The workers: threads started as calls come, at most `most`; `idle`
   * and `alive` of them. Under the lock. */
  int most, started, idle, alive;
  weft_thread **threads; /* the started ones, `most` of them */
  /* Called under the lock as a call is taken in, to start a worker with
   * weft__callq_add_worker when the pool wants one (its workers differ:
   * threads that run calls, threads that send them to processes). Returns
   * 0, or the error that refuses the call (no worker runs, and none could
   * start). */
  int (*grow)(void *ctx);
  void *ctx;
} weft__callq;

/* Makes q empty, with room for max calls (0: no bound) and up to `most`
 * workers. Returns 0 or -ENOMEM. */
int weft__callq_init(weft__callq *q, size_t max, bool full_fails, int most,
                     int (*grow)(void *ctx), void *ctx);

/* For grow, under the lock: starts a worker thread named `name` running
 * fn(arg), if none is idle and fewer than the most run. Returns 0, or the
 * start's error when no worker runs (then nobody would take the call). */
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
 * of a long queue), waiting while there is none, idle as `me` (the
 * worker's own record, which lives as long as the worker); NULL once the
 * queue is shut down and empty. */
weft__call *weft__callq_take(weft__callq *q, weft__idler *me);

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
