/*
 * weft_proc_pool. See include/weft/exec.h.
 *
 * The calls wait in the pool's queue (callq.h). Each worker is a pair: a
 * dispatcher, a weft thread of the pool's process that takes calls from
 * the queue, and the worker process it forked (weft_proc_start), with a
 * message pipe between them (weft/ipc.h). A call goes over as one message
 * (the function's address, then the argument's bytes, copied at submit
 * behind room for the address) and comes back as one (the error, then the
 * result's bytes), which the future keeps as its value.
 *
 * A worker that dies is seen by its dispatcher: the pipe ends (the
 * process's end closed with it), or, should another process hold a copy of
 * that end, the process is found gone at one of the dispatcher's looks
 * while it waits (every DEATH_LOOK). Only the call it was running fails
 * (-EOWNERDEAD, with the exit code the join gives), and the next call
 * starts a new process. A process that ran max_calls calls is let go the
 * same way a shutdown lets them go: its pipe is closed, and it exits on
 * the end of its input; the dispatcher joins it, so none is left a zombie.
 *
 * Fds: each worker process closes, first thing, the pipe ends of the
 * others that it inherited (the table `fds`), so that a worker's end of
 * its pipe is held by it alone and its death ends the pipe at once, and a
 * pipe its dispatcher closes ends for its worker.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <weft/exec.h>
#include <weft/hub.h>
#include <weft/ipc.h>
#include <weft/proc.h>
#include <weft/thread.h>

#include "../hub/timer.h"
#include "callq.h"
#include "exec-private.h"

/* How often a dispatcher waiting for a result looks whether its worker
 * still lives. */
#define DEATH_LOOK WEFT_MS(250)

/* The headers of the messages: a request is the function's address then
 * the argument; a reply the error then the result. 8 bytes each, so that
 * what follows is aligned to 8. */
#define HEADER 8

struct slot {
  weft_proc_pool *pool;
  int index;
  weft_proc *proc;      /* the worker process, or NULL before one starts */
  weft_msgpipe *end;    /* the dispatcher's end of its pipe */
  weft_msgpipe *theirs; /* the worker's end, for the fork to take */
  int calls;            /* the calls the process ran */
};

struct weft_proc_pool {
  weft__callq q;
  int max; /* q's most workers, and slots */
  struct slot *slots;
  /* The pipe fds of each slot, both ends (-1: none), for the workers to
   * close those of the others. Written by the dispatchers (atomically), read
   * by a worker in its copy made by the fork. */
  int *fds;
  pid_t owner; /* the pool's process */
  weft_proc_pool_opts o;
  char name[24];
};

/* The pool whose dispatcher the running thread is: a future's callbacks
 * run there, and a shutdown that waits from one would wait for itself. */
static __thread const weft_proc_pool *dispatcher_of;

static int default_workers(void) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return cpus > 0 ? (int)(cpus < 1024 ? cpus : 1024) : 1;
}

static void set_fds(weft_proc_pool *p, int index, int mine, int theirs) {
  __atomic_store_n(&p->fds[2 * index], mine, __ATOMIC_RELAXED);
  __atomic_store_n(&p->fds[2 * index + 1], theirs, __ATOMIC_RELAXED);
}

/* ---- in the worker process ----------------------------------------------- */

/* Replies with an error alone. */
static int reply_error(weft_msgpipe *m, int error) {
  char header[HEADER] = {0};
  int32_t e = error;
  memcpy(header, &e, sizeof e);
  return weft_msgpipe_send(m, header, sizeof header, WEFT_FOREVER);
}

static int worker_process(void *arg) {
  struct slot *s = arg;
  weft_proc_pool *p = s->pool;
  weft_msgpipe *m = s->theirs;
  for (int i = 0; i < 2 * p->max; i++) {
    int fd = __atomic_load_n(&p->fds[i], __ATOMIC_RELAXED);
    if (fd >= 0 && fd != weft_msgpipe_fd(m))
      close(fd);
  }
  if (p->o.initializer)
    p->o.initializer(p->o.initializer_arg);
  for (;;) {
    void *msg;
    size_t len;
    if (weft_msgpipe_recv(m, &msg, &len, WEFT_FOREVER) < 0)
      return 0; /* the dispatcher closed its end: the pool lets it go */
    if (len < HEADER) {
      free(msg);
      return 1;
    }
    uint64_t address;
    memcpy(&address, msg, sizeof address);
    weft_proc_work_fn fn = (weft_proc_work_fn)(uintptr_t)address;
    void *result = NULL;
    size_t result_len = 0;
    int error = fn((char *)msg + HEADER, len - HEADER, &result, &result_len);
    free(msg);
    if (error > 0)
      error = -EINVAL;
    char *reply = error ? NULL : malloc(HEADER + result_len);
    int rc;
    if (!reply) {
      rc = reply_error(m, error ? error : -ENOMEM);
    } else {
      memset(reply, 0, HEADER);
      if (result_len)
        memcpy(reply + HEADER, result, result_len);
      rc = weft_msgpipe_send(m, reply, HEADER + result_len, WEFT_FOREVER);
      free(reply);
    }
    free(result);
    if (rc < 0)
      return 0;
  }
}

/* ---- in the pool's process ----------------------------------------------- */

static int start_process(struct slot *s) {
  weft_proc_pool *p = s->pool;
  weft_msgpipe *mine, *theirs;
  int rc = weft_msgpipe_pair(&mine, &theirs);
  if (rc < 0)
    return rc;
  set_fds(p, s->index, weft_msgpipe_fd(mine), weft_msgpipe_fd(theirs));
  s->theirs = theirs;
  char name[32];
  snprintf(name, sizeof name, "%s-%d", p->name, s->index);
  rc = weft_proc_start(&s->proc, worker_process, s,
                       &(weft_proc_opts){.name = name, .daemon = true});
  weft_msgpipe_free(theirs); /* the worker's now, or nobody's */
  s->theirs = NULL;
  set_fds(p, s->index, rc == 0 ? weft_msgpipe_fd(mine) : -1, -1);
  if (rc < 0) {
    weft_msgpipe_free(mine);
    s->proc = NULL;
    return rc;
  }
  s->end = mine;
  s->calls = 0;
  return 0;
}

/* Lets the worker go: its pipe closed, it exits; joined, so that it is no
 * zombie. Returns its exit code. */
static int stop_process(struct slot *s, bool kill_it) {
  if (!s->proc)
    return 0;
  set_fds(s->pool, s->index, -1, -1);
  weft_msgpipe_free(s->end);
  s->end = NULL;
  if (kill_it)
    weft_proc_kill(s->proc);
  int code = 0;
  weft_proc_join(s->proc, WEFT_FOREVER, &code);
  weft_proc_free(s->proc);
  s->proc = NULL;
  return code;
}

/* The reply to the call just sent: 0 with the message, or a negative
 * errno once the pipe failed or the worker is gone. */
static int await_reply(struct slot *s, void **msg, size_t *len) {
  for (;;) {
    int rc = weft_msgpipe_recv(s->end, msg, len, DEATH_LOOK);
    if (rc != -ETIMEDOUT)
      return rc;
    if (!weft_proc_alive(s->proc))
      return weft_msgpipe_recv(s->end, msg, len, 0) == 0 ? 0 : -EPIPE;
  }
}

static void run_remote(struct slot *s, weft__call *c) {
  weft_proc_pool *p = s->pool;
  if (weft_future_set_running(c->future) != 0)
    return; /* cancelled */
  if (!s->proc) {
    int rc = start_process(s);
    if (rc < 0) {
      weft__future_finish(c->future, NULL, 0, NULL, rc);
      return;
    }
  }
  void *msg;
  size_t len;
  int rc = weft_msgpipe_send(s->end, c->arg, c->len, WEFT_FOREVER);
  if (rc == 0)
    rc = await_reply(s, &msg, &len);
  if (rc < 0 || len < HEADER) {
    if (rc == 0)
      free(msg); /* not a reply of a worker's */
    /* The worker died (or broke its pipe): that call alone fails. */
    weft__future_died(c->future, stop_process(s, true));
    return;
  }
  int32_t error;
  memcpy(&error, msg, sizeof error);
  if (error)
    weft__future_finish(c->future, NULL, 0, msg, error);
  else
    weft__future_finish(c->future, (char *)msg + HEADER, len - HEADER, msg, 0);
  if (p->o.max_calls && ++s->calls >= p->o.max_calls)
    stop_process(s, false);
}

/* Lets go of c's request and of the pool's hold on its future, which c
 * lives in. */
static void free_call(weft__call *c) {
  free(c->arg);
  weft_future_free(c->future);
}

static void *dispatcher_main(void *arg) {
  struct slot *s = arg;
  weft_proc_pool *p = s->pool;
  dispatcher_of = p;
  weft__call *c;
  weft__idler me = {0};
  while ((c = weft__callq_take(&p->q, &me)) != NULL) {
    for (weft__call *next; c; c = next) {
      next = c->next;
      run_remote(s, c);
      free_call(c);
    }
  }
  stop_process(s, false);
  weft__callq_worker_ended(&p->q);
  return NULL;
}

/* grow, under the queue's lock: a dispatcher, if the pool wants one. */
static int add_dispatcher(void *pool) {
  weft_proc_pool *p = pool;
  if (!weft__callq_wants_worker(&p->q))
    return 0;
  int i = atomic_load(&p->q.started);
  struct slot *s = &p->slots[i];
  *s = (struct slot){.pool = p, .index = i};
  char name[32];
  snprintf(name, sizeof name, "%s-d%d", p->name, i);
  return weft__callq_add_worker(&p->q, dispatcher_main, s, name);
}

int weft_proc_pool_new(weft_proc_pool **out, const weft_proc_pool_opts *opts) {
  weft_proc_pool_opts o = opts ? *opts : (weft_proc_pool_opts){0};
  if (!out || o.workers < 0 || o.workers > 1024 || o.max_calls < 0)
    return -EINVAL;
  /* Aligned as its queue's cache lines are. */
  weft_proc_pool *p = aligned_alloc(_Alignof(weft_proc_pool), sizeof *p);
  if (!p)
    return -ENOMEM;
  memset(p, 0, sizeof *p);
  p->max = o.workers ? o.workers : default_workers();
  p->slots = calloc((size_t)p->max, sizeof *p->slots);
  p->fds = malloc(2 * (size_t)p->max * sizeof *p->fds);
  if (!p->slots || !p->fds ||
      weft__callq_init(&p->q, o.queue_max, o.full_fails, p->max, add_dispatcher,
                       p) < 0) {
    free(p->slots);
    free(p->fds);
    free(p);
    return -ENOMEM;
  }
  for (int i = 0; i < 2 * p->max; i++)
    p->fds[i] = -1;
  p->owner = getpid();
  snprintf(p->name, sizeof p->name, "%s", o.name ? o.name : "procpool");
  o.name = p->name;
  p->o = o;
  *out = p;
  return 0;
}

int weft_proc_pool_submit(weft_proc_pool *p, weft_proc_work_fn fn,
                          const void *arg, size_t len, int64_t timeout,
                          weft_future **out) {
  if (!p || !fn || !out || (len > 0 && !arg) || weft__timeout_bad(timeout))
    return -EINVAL;
  if (getpid() != p->owner)
    return -EPERM;
  if (len > WEFT_MSGPIPE_MAX - HEADER)
    return -EMSGSIZE;
  weft__call *c;
  char *request = malloc(HEADER + len);
  weft_future *f = NULL;
  if (!request || weft__future_new_with(&f, sizeof *c, (void **)&c) < 0) {
    free(request);
    return -ENOMEM;
  }
  uint64_t address = (uint64_t)(uintptr_t)fn;
  memcpy(request, &address, sizeof address);
  if (len)
    memcpy(request + HEADER, arg, len);
  *c = (weft__call){
      .fn = (void *)fn, .arg = request, .len = HEADER + len, .future = f};
  int rc = weft__callq_push(&p->q, c, timeout);
  if (rc < 0) {
    free(request);
    weft_future_free(f);
    return rc;
  }
  *out = f;
  return 0;
}

int weft_proc_pool_shutdown(weft_proc_pool *p, int flags) {
  if (!p || (flags & ~(WEFT_POOL_WAIT | WEFT_POOL_CANCEL)))
    return -EINVAL;
  if (getpid() != p->owner)
    return -EPERM;
  if ((flags & WEFT_POOL_WAIT) && dispatcher_of == p)
    return -EDEADLK;
  return weft__callq_shutdown(&p->q, flags, free_call);
}

void weft_proc_pool_free(weft_proc_pool *p) {
  if (!p || getpid() != p->owner || dispatcher_of == p)
    return;
  bool shielded = weft_task_shield() == 0;
  int rc = weft_proc_pool_shutdown(p, WEFT_POOL_WAIT);
  if (shielded)
    weft_task_unshield();
  if (rc < 0)
    return; /* cancelled inside a generator, which cannot shield: kept */
  weft__callq_destroy(&p->q);
  free(p->slots);
  free(p->fds);
  free(p);
}
