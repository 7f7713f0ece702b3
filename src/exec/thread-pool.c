/*
 * weft_thread_pool. See include/weft/exec.h.
 *
 * A queue of calls under one re-entrant lock with three conditions: work
 * (a call is queued, or the pool shuts down: the workers wait on it), room
 * (a call left a full queue: submitters wait on it) and ended (a worker
 * ended: a shutdown that waits waits on it). Workers are weft threads,
 * started as calls come while none is idle and fewer than the most run, as
 * Python's ThreadPoolExecutor does; they end once the pool is shut down
 * and the queue empty.
 *
 * A worker takes a call out of the queue under the lock and runs it
 * outside: it marks the future running (a cancelled one is dropped),
 * calls the function, and completes the future with what it returned,
 * which runs the future's callbacks on the worker's stack. The pool's hold
 * on the future is let go after that.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <weft/exec.h>
#include <weft/hub.h>
#include <weft/sync.h>
#include <weft/thread.h>

#include "../hub/timer.h"
#include "exec-private.h"

struct call {
  struct call *next;
  weft_work_fn fn;
  void *arg;
  weft_future *future;
};

struct weft_thread_pool {
  weft_rlock lock;
  weft_cond work, room, ended;
  struct call *head, **tail; /* the queue */
  size_t queued;
  int max, started, idle, alive;
  bool shut;
  weft_thread **threads; /* the started ones, max of them */
  weft_thread_pool_opts o;
  char name[24];
};

/* The pool whose worker the running thread is (for -EDEADLK). */
static __thread const weft_thread_pool *worker_of;

static int default_workers(void) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int n = (cpus > 0 ? (int)cpus : 1) + 4;
  return n < 32 ? n : 32;
}

int weft_thread_pool_new(weft_thread_pool **out,
                         const weft_thread_pool_opts *opts) {
  weft_thread_pool_opts o = opts ? *opts : (weft_thread_pool_opts){0};
  if (!out || o.workers < 0 || o.workers > 4096)
    return -EINVAL;
  weft_thread_pool *p = calloc(1, sizeof *p);
  if (!p)
    return -ENOMEM;
  p->max = o.workers ? o.workers : default_workers();
  p->threads = calloc((size_t)p->max, sizeof *p->threads);
  if (!p->threads) {
    free(p);
    return -ENOMEM;
  }
  snprintf(p->name, sizeof p->name, "%s", o.name ? o.name : "pool");
  o.name = p->name;
  p->o = o;
  weft_rlock_init(&p->lock, "thread pool");
  weft_cond_init(&p->work, &p->lock);
  weft_cond_init(&p->room, &p->lock);
  weft_cond_init(&p->ended, &p->lock);
  p->tail = &p->head;
  *out = p;
  return 0;
}

/* Runs c and lets go of it. */
static void run_call(struct call *c) {
  if (weft_future_set_running(c->future) == 0) {
    void *value = NULL;
    weft__future_running_set(c->future);
    int rc = c->fn(c->arg, &value);
    weft__future_running_set(NULL);
    weft__future_finish(c->future, value, 0, false, rc > 0 ? -EINVAL : rc);
  }
  weft_future_free(c->future);
  free(c);
}

static void *worker_main(void *arg) {
  weft_thread_pool *p = arg;
  worker_of = p;
  if (p->o.initializer)
    p->o.initializer(p->o.initializer_arg);
  weft_rlock_acquire(&p->lock, WEFT_FOREVER);
  for (;;) {
    while (!p->head && !p->shut) {
      p->idle++;
      weft_cond_wait(&p->work, WEFT_FOREVER);
      p->idle--;
    }
    struct call *c = p->head;
    if (!c)
      break; /* shut down, and nothing left */
    p->head = c->next;
    if (!p->head)
      p->tail = &p->head;
    p->queued--;
    if (p->o.queue_max)
      weft_cond_notify(&p->room, 1);
    weft_rlock_release(&p->lock);
    run_call(c);
    weft_rlock_acquire(&p->lock, WEFT_FOREVER);
  }
  p->alive--;
  weft_cond_notify_all(&p->ended);
  weft_rlock_release(&p->lock);
  return NULL;
}

/* Under the lock: a worker for the call just queued, if none is idle and
 * fewer than the most run. Returns 0, or the error of a start that failed
 * while no worker runs (then nobody would take the call). */
static int add_worker(weft_thread_pool *p) {
  if (p->idle > 0 || p->started == p->max)
    return 0;
  char name[32];
  snprintf(name, sizeof name, "%s-%d", p->name, p->started);
  weft_thread *t;
  int rc = weft_thread_start(
      &t, worker_main, p,
      &(weft_thread_opts){.name = name, .daemon = WEFT_THREAD_DAEMON});
  if (rc < 0)
    return p->alive > 0 ? 0 : rc;
  p->threads[p->started++] = t;
  p->alive++;
  return 0;
}

int weft_thread_pool_submit(weft_thread_pool *p, weft_work_fn fn, void *arg,
                            int64_t timeout, weft_future **out) {
  if (!p || !fn || !out || weft__timeout_bad(timeout))
    return -EINVAL;
  struct call *c = malloc(sizeof *c);
  weft_future *f = NULL;
  if (!c || weft_future_new(&f) < 0) {
    free(c);
    return -ENOMEM;
  }
  *c = (struct call){.fn = fn, .arg = arg, .future = f};
  int rc = weft_rlock_acquire(&p->lock, WEFT_FOREVER);
  int64_t deadline = timeout > 0 ? weft__deadline_after(timeout) : 0;
  while (rc == 0 && !p->shut && p->o.queue_max && p->queued >= p->o.queue_max) {
    if (p->o.full_fails || timeout == 0) {
      rc = -EAGAIN;
      break;
    }
    int64_t left = timeout < 0 ? WEFT_FOREVER : deadline - weft_now();
    rc = left == WEFT_FOREVER || left > 0 ? weft_cond_wait(&p->room, left)
                                          : -ETIMEDOUT;
  }
  if (rc == 0 && p->shut)
    rc = -ESHUTDOWN;
  if (rc == 0)
    rc = add_worker(p);
  if (rc == 0) {
    weft__future_hold(f); /* the pool's, until the call is done */
    *p->tail = c;
    p->tail = &c->next;
    p->queued++;
    weft_cond_notify(&p->work, 1);
  }
  if (rc != -ECANCELED || weft_rlock_owned(&p->lock))
    weft_rlock_release(&p->lock);
  if (rc < 0) {
    weft_future_free(f);
    free(c);
    return rc;
  }
  *out = f;
  return 0;
}

int weft_thread_pool_map(weft_thread_pool *p, weft_work_fn fn,
                         void *const *args, size_t n, int64_t timeout,
                         weft_future **outs) {
  if (!p || !fn || (n > 0 && (!args || !outs)) || weft__timeout_bad(timeout))
    return -EINVAL;
  for (size_t i = 0; i < n; i++)
    outs[i] = NULL;
  for (size_t i = 0; i < n; i++) {
    int rc = weft_thread_pool_submit(p, fn, args[i], timeout, &outs[i]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

int weft_thread_pool_shutdown(weft_thread_pool *p, int flags) {
  if (!p || (flags & ~(WEFT_POOL_WAIT | WEFT_POOL_CANCEL)))
    return -EINVAL;
  if ((flags & WEFT_POOL_WAIT) && worker_of == p)
    return -EDEADLK;
  int rc = weft_rlock_acquire(&p->lock, WEFT_FOREVER);
  if (rc < 0)
    return rc; /* a cancelled task: nothing changed */
  p->shut = true;
  struct call *cancelled = NULL;
  if (flags & WEFT_POOL_CANCEL) {
    cancelled = p->head;
    p->head = NULL;
    p->tail = &p->head;
    p->queued = 0;
  }
  weft_cond_notify_all(&p->work);
  weft_cond_notify_all(&p->room);
  weft_rlock_release(&p->lock);
  /* Their callbacks run here, under no lock of the pool's. */
  for (struct call *c = cancelled, *next; c; c = next) {
    next = c->next;
    weft_future_cancel(c->future);
    weft_future_free(c->future);
    free(c);
  }
  if (!(flags & WEFT_POOL_WAIT))
    return 0;
  rc = weft_rlock_acquire(&p->lock, WEFT_FOREVER);
  while (rc == 0 && p->alive > 0) {
    rc = weft_cond_wait(&p->ended, WEFT_FOREVER);
    if (rc == -ECANCELED)
      break;
  }
  int started = p->started;
  weft_rlock_release(&p->lock);
  if (rc < 0)
    return rc;
  /* Every worker has left its loop: joining each takes no time. */
  for (int i = 0; i < started; i++)
    weft_thread_join(p->threads[i], WEFT_FOREVER, NULL);
  return 0;
}

void weft_thread_pool_free(weft_thread_pool *p) {
  if (!p || worker_of == p)
    return;
  /* A cancelled task frees the pool too: the workers must end before the
   * memory goes, so its cancellation waits for the end of this. */
  bool shielded = weft_task_shield() == 0;
  int rc = weft_thread_pool_shutdown(p, WEFT_POOL_WAIT);
  if (shielded)
    weft_task_unshield();
  if (rc < 0)
    return; /* cancelled inside a generator, which cannot shield: kept */
  for (int i = 0; i < p->started; i++)
    weft_thread_detach(p->threads[i]);
  free(p->threads);
  free(p);
}
