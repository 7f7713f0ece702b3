/*
 * weft_thread_pool. See include/weft/exec.h.
 *
 * The calls wait in the pool's queue (callq.h). Workers are weft threads,
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
#include "callq.h"
#include "exec-private.h"

struct weft_thread_pool {
  weft__callq q;
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

static int add_worker(void *pool);

int weft_thread_pool_new(weft_thread_pool **out,
                         const weft_thread_pool_opts *opts) {
  weft_thread_pool_opts o = opts ? *opts : (weft_thread_pool_opts){0};
  if (!out || o.workers < 0 || o.workers > 4096)
    return -EINVAL;
  /* Aligned as its queue's cache lines are. */
  weft_thread_pool *p = aligned_alloc(_Alignof(weft_thread_pool), sizeof *p);
  if (!p)
    return -ENOMEM;
  memset(p, 0, sizeof *p);
  if (weft__callq_init(&p->q, o.queue_max, o.full_fails,
                       o.workers ? o.workers : default_workers(), add_worker,
                       p) < 0) {
    free(p);
    return -ENOMEM;
  }
  snprintf(p->name, sizeof p->name, "%s", o.name ? o.name : "pool");
  o.name = p->name;
  p->o = o;
  *out = p;
  return 0;
}

/* Lets go of the pool's hold on c's future, which c lives in. */
static void free_call(weft__call *c) { weft_future_free(c->future); }

/* Runs c and lets go of it; the last of a share tells the queue the
 * worker comes back before it completes the future (and that it does
 * not, after all, if the future's callbacks run first). */
static void run_call(weft_thread_pool *p, weft__idler *me, weft__call *c) {
  if (weft_future_set_running(c->future) == 0) {
    void *value = NULL;
    weft_work_fn fn = (weft_work_fn)c->fn;
    weft__future_running_set(c->future);
    int rc = fn(c->arg, &value);
    weft__future_running_set(NULL);
    if (!c->next)
      weft__callq_coming_back(&p->q, me);
    weft__future_finish_then(
        c->future, value, 0, NULL, rc > 0 ? -EINVAL : rc,
        &(weft__before_callbacks){weft__callq_not_coming_back_fn, &p->q, me});
  }
  free_call(c);
}

static void *worker_main(void *arg) {
  weft_thread_pool *p = arg;
  worker_of = p;
  if (p->o.initializer)
    p->o.initializer(p->o.initializer_arg);
  weft__call *c;
  weft__idler me = {0};
  while ((c = weft__callq_take(&p->q, &me)) != NULL) {
    for (weft__call *next; c; c = next) {
      next = c->next;
      run_call(p, &me, c);
    }
  }
  weft__callq_worker_ended(&p->q);
  return NULL;
}

/* grow, under the queue's lock: a worker, if the pool wants one. */
static int add_worker(void *pool) {
  weft_thread_pool *p = pool;
  if (!weft__callq_wants_worker(&p->q))
    return 0;
  char name[32];
  snprintf(name, sizeof name, "%s-%d", p->name, atomic_load(&p->q.started));
  return weft__callq_add_worker(&p->q, worker_main, p, name);
}

int weft_thread_pool_submit(weft_thread_pool *p, weft_work_fn fn, void *arg,
                            int64_t timeout, weft_future **out) {
  if (!p || !fn || !out || weft__timeout_bad(timeout))
    return -EINVAL;
  weft_future *f;
  weft__call *c;
  if (weft__future_new_with(&f, sizeof *c, (void **)&c) < 0)
    return -ENOMEM;
  *c = (weft__call){.fn = (void *)fn, .arg = arg, .future = f};
  int rc = weft__callq_push(&p->q, c, timeout);
  if (rc < 0) {
    weft_future_free(f);
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
  return weft__callq_shutdown(&p->q, flags, free_call);
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
  weft__callq_destroy(&p->q);
  free(p);
}
