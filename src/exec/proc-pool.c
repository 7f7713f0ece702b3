/*
 * weft_proc_pool. See include/weft/exec.h.
 *
 * The calls wait in the pool's queue (callq.h). Each worker is a pair: a
 * dispatcher, a weft thread of the pool's process that takes calls from
 * the queue, and the worker process it forked (weft_proc_start). Between
 * them, two shared-memory queues (weft/shm.h): requests (the function's
 * address, then the argument's bytes, copied at submit behind room for the
 * header) and replies (the error, then the result's bytes, which the
 * future keeps as its value). Neither side makes a system call for a
 * message while the other is awake: each spins a moment on its queue
 * before it sleeps. A message too long for a queue goes as a header there
 * that says so, and its bytes over the pair's message pipe (weft/ipc.h).
 *
 * A dispatcher takes the calls in shares (several when the queue is long)
 * and sends a share's requests at once, then takes their replies in
 * order: the worker runs one while the next waits in its queue. It never
 * waits for room to send while a reply is due (a request that does not fit
 * waits for the replies), and a request that goes over the pipe goes
 * alone, so neither side ever waits for the other to read while the other
 * waits for it to.
 *
 * A worker that dies is seen by its dispatcher: the pipe ends, or the
 * process is found gone at one of the dispatcher's looks while it waits
 * for a reply (every DEATH_LOOK). The worker takes a request, runs it and
 * replies before it takes the next, so of the requests without a reply,
 * those still in the request queue never started, and the one before
 * them, if any, is the call it was running: that call alone fails
 * (-EOWNERDEAD, with the exit code the join gives), and the others go to a
 * new process. A process that ran max_calls calls (it is sent no more) is
 * let go the way a shutdown lets them go: an empty request tells it to
 * exit, and the dispatcher joins it, so none is left a zombie.
 *
 * Fds: each worker process closes, first thing, the fds of the others'
 * pipes and queues that it inherited (the table `fds`), so that a worker's
 * end of its pipe is held by it alone and its death ends the pipe at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <weft/exec.h>
#include <weft/hub.h>
#include <weft/ipc.h>
#include <weft/proc.h>
#include <weft/thread.h>

#include "../hub/timer.h"
#include "callq.h"
#include "exec-private.h"

/* How often a dispatcher waiting for a reply looks whether its worker
 * still lives: the longest a worker's death goes unseen. */
#define DEATH_LOOK WEFT_MS(20)

/* The header of a message, 16 bytes, so that what follows is aligned as
 * malloc's memory is. A request: the function's address, and how its
 * argument comes; an empty request tells the worker to exit. A reply: the
 * call's error, and how its result comes. */
#define HEADER 16
enum { INLINE, PIPED };

struct request_header {
  uint64_t address;
  uint32_t how;
  uint32_t unused;
};

struct reply_header {
  int32_t error;
  uint32_t how;
  uint64_t unused;
};

/* Each slot's fds in the table `fds`: its pipe's two ends, its queues. */
enum { FDS_PER_SLOT = 4 };

struct slot {
  weft_proc_pool *pool;
  int index;
  weft_proc *proc;      /* the worker process, or NULL before one starts */
  weft_msgpipe *end;    /* the dispatcher's end of its pipe */
  weft_msgpipe *theirs; /* the worker's end, for the fork to take */
  weft_queue *requests, *replies;
  size_t inline_max; /* the longest argument or result the queues take */
  char *buffer;      /* a queue's longest message, for the dispatcher */
  int sent, replied; /* by the process, so far */
};

struct weft_proc_pool {
  weft__callq q;
  int max; /* q's most workers, and slots */
  struct slot *slots;
  /* The fds of each slot (-1: none), for the workers to close those of
   * the others. Written by the dispatchers under fds_lock, with the fds
   * they name made and closed under it too, and each fork made under it;
   * read by a worker in its copy made by the fork. */
  int *fds;
  pthread_mutex_t fds_lock;
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

static void set_fds(weft_proc_pool *p, int index, const int fds[]) {
  for (int i = 0; i < FDS_PER_SLOT; i++)
    __atomic_store_n(&p->fds[FDS_PER_SLOT * index + i], fds[i],
                     __ATOMIC_RELAXED);
}

static void clear_fds(weft_proc_pool *p, int index) {
  set_fds(p, index, (const int[FDS_PER_SLOT]){-1, -1, -1, -1});
}

/* ---- in the worker process ----------------------------------------------- */

/* Sends the reply to a call: error, or the result's len bytes, through
 * buffer (a queue's longest message). */
static int reply(struct slot *s, char *buffer, int error, const void *result,
                 size_t len) {
  struct reply_header h = {.error = error, .how = INLINE};
  if (error)
    len = 0;
  if (len > s->inline_max)
    h.how = PIPED;
  memcpy(buffer, &h, sizeof h);
  if (h.how == INLINE && len)
    memcpy(buffer + HEADER, result, len);
  int rc = weft_queue_put(s->replies, buffer,
                          HEADER + (h.how == INLINE ? len : 0), WEFT_FOREVER);
  if (rc == 0 && h.how == PIPED)
    rc = weft_msgpipe_send(s->theirs, result, len, WEFT_FOREVER);
  return rc;
}

static int worker_process(void *arg) {
  struct slot *s = arg;
  weft_proc_pool *p = s->pool;
  for (int i = 0; i < FDS_PER_SLOT * p->max; i++) {
    int fd = __atomic_load_n(&p->fds[i], __ATOMIC_RELAXED);
    if (fd >= 0 && i / FDS_PER_SLOT != s->index)
      close(fd);
  }
  /* Mapped, not malloc'd: an allocator whose lock another thread of the
   * pool's process held at the fork (AddressSanitizer's, which takes no
   * care of forks) would hang the worker here, before any call. */
  size_t max = weft_queue_max_message(s->requests);
  char *buffer = mmap(NULL, max, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED)
    return 1;
  if (p->o.initializer)
    p->o.initializer(p->o.initializer_arg);
  for (;;) {
    ssize_t n = weft_queue_get(s->requests, buffer, max, WEFT_FOREVER);
    if (n < HEADER)
      return n == 0 ? 0 : 1; /* told to exit, or a broken queue */
    struct request_header h;
    memcpy(&h, buffer, sizeof h);
    void *piped = NULL;
    const void *argument = buffer + HEADER;
    size_t len = (size_t)n - HEADER;
    if (h.how == PIPED) {
      if (weft_msgpipe_recv(s->theirs, &piped, &len, WEFT_FOREVER) < 0)
        return 1;
      argument = piped;
    }
    weft_proc_work_fn fn = (weft_proc_work_fn)(uintptr_t)h.address;
    void *result = NULL;
    size_t result_len = 0;
    int error = fn(argument, len, &result, &result_len);
    free(piped);
    if (error > 0)
      error = -EINVAL;
    if (!error && result_len && !result)
      error = -EINVAL; /* bytes promised, none given */
    if (!error && result_len > WEFT_MSGPIPE_MAX)
      error = -EMSGSIZE; /* no pipe takes it */
    int rc = reply(s, buffer, error, result, result_len);
    free(result);
    if (rc < 0)
      return 1;
  }
}

/* ---- in the pool's process ----------------------------------------------- */

/* Lets go of what start_process made for the slot's process. */
static void free_transport(struct slot *s) {
  pthread_mutex_lock(&s->pool->fds_lock);
  clear_fds(s->pool, s->index);
  weft_msgpipe_free(s->end);
  weft_msgpipe_free(s->theirs);
  weft_queue_free(s->requests);
  weft_queue_free(s->replies);
  free(s->buffer);
  s->end = s->theirs = NULL;
  s->requests = s->replies = NULL;
  s->buffer = NULL;
  pthread_mutex_unlock(&s->pool->fds_lock);
}

/* Makes the slot's pipe and queues and forks its worker, all under the
 * pool's fds_lock with the table `fds` kept true: a dispatcher that forks
 * meanwhile would give its worker fds that the table does not name, which
 * it would keep open (a pipe then never ends at its worker's death). */
static int start_process(struct slot *s) {
  weft_proc_pool *p = s->pool;
  pthread_mutex_lock(&p->fds_lock);
  int rc = weft_msgpipe_pair(&s->end, &s->theirs);
  if (rc == 0)
    rc = weft_queue_create(&s->requests, NULL);
  if (rc == 0)
    rc = weft_queue_create(&s->replies, NULL);
  if (rc == 0) {
    s->inline_max = weft_queue_max_message(s->requests) - HEADER;
    s->buffer = malloc(HEADER + s->inline_max);
    rc = s->buffer ? 0 : -ENOMEM;
  }
  if (rc == 0) {
    set_fds(p, s->index,
            (const int[FDS_PER_SLOT]){
                weft_msgpipe_fd(s->end), weft_msgpipe_fd(s->theirs),
                weft_queue_fd(s->requests), weft_queue_fd(s->replies)});
    char name[32];
    snprintf(name, sizeof name, "%s-%d", p->name, s->index);
    rc = weft_proc_start(&s->proc, worker_process, s,
                         &(weft_proc_opts){.name = name, .daemon = true});
  }
  if (rc == 0) {
    /* The worker's end of the pipe is the worker's now: out of the table
     * before it is closed, so that no fork closes a number reused. */
    set_fds(p, s->index,
            (const int[FDS_PER_SLOT]){weft_msgpipe_fd(s->end), -1,
                                      weft_queue_fd(s->requests),
                                      weft_queue_fd(s->replies)});
    weft_msgpipe_free(s->theirs);
    s->theirs = NULL;
    s->sent = s->replied = 0;
  }
  pthread_mutex_unlock(&p->fds_lock);
  if (rc < 0) {
    s->proc = NULL;
    free_transport(s);
  }
  return rc;
}

/* Lets the worker go: told to exit (or killed), and joined, so that it is
 * no zombie. Returns its exit code. */
static int stop_process(struct slot *s, bool kill_it) {
  if (!s->proc)
    return 0;
  if (kill_it || weft_queue_put(s->requests, "", 0, 0) < 0)
    weft_proc_kill(s->proc);
  int code = 0;
  weft_proc_join(s->proc, WEFT_FOREVER, &code);
  weft_proc_free(s->proc);
  s->proc = NULL;
  free_transport(s);
  return code;
}

/* What became of a request. */
enum sent { SENT, NO_ROOM, NOT_SENT_DEAD, SENT_THEN_DEAD };

/* Puts a request in the queue, waiting for room only with nothing in
 * flight (then only a dead worker keeps it full). */
static enum sent put_request(struct slot *s, const void *msg, size_t len,
                             bool in_flight) {
  for (;;) {
    int rc = weft_queue_put(s->requests, msg, len, in_flight ? 0 : DEATH_LOOK);
    if (rc == 0)
      return SENT;
    if (rc != -ETIMEDOUT)
      return NOT_SENT_DEAD; /* a broken queue: as good as dead */
    if (in_flight)
      return NO_ROOM; /* take replies first */
    if (!weft_proc_alive(s->proc))
      return NOT_SENT_DEAD;
  }
}

/* Sends c's request: into the queue, or its header there and its bytes
 * over the pipe. */
static enum sent send_request(struct slot *s, weft__call *c, bool in_flight) {
  bool piped = c->len - HEADER > s->inline_max;
  struct request_header h = {.address = (uint64_t)(uintptr_t)c->fn,
                             .how = piped ? PIPED : INLINE};
  memcpy(c->arg, &h, sizeof h);
  enum sent sent = put_request(s, c->arg, piped ? HEADER : c->len, in_flight);
  if (sent == SENT && piped &&
      weft_msgpipe_send(s->end, (char *)c->arg + HEADER, c->len - HEADER,
                        WEFT_FOREVER) < 0)
    return SENT_THEN_DEAD;
  return sent;
}

/* Takes the next reply into s->buffer: its length, or -EPIPE once the
 * worker is gone and no reply is left. */
static ssize_t get_reply(struct slot *s) {
  size_t size = HEADER + s->inline_max;
  for (;;) {
    ssize_t n = weft_queue_get(s->replies, s->buffer, size, DEATH_LOOK);
    if (n != -ETIMEDOUT)
      return n >= HEADER ? n : -EPIPE;
    if (!weft_proc_alive(s->proc)) {
      /* It may have replied, then died, after the get gave up. */
      n = weft_queue_get(s->replies, s->buffer, size, 0);
      return n >= HEADER ? n : -EPIPE;
    }
  }
}

/* Completes c with the reply to it. If it is the last call the
 * dispatcher has, tells the queue (as `me`) that it comes back, once the
 * reply is whole, and that it does not after all if callbacks run.
 * Returns 0, or -EPIPE (the worker died first: c is not completed). */
static int take_reply(struct slot *s, weft__idler *me, weft__call *c,
                      bool last) {
  ssize_t n = get_reply(s);
  if (n < 0)
    return -EPIPE;
  struct reply_header h;
  memcpy(&h, s->buffer, sizeof h);
  void *msg = NULL;
  size_t len = 0;
  int error = h.error;
  if (!error && h.how == PIPED) {
    /* A wait cut short keeps what came: the next goes on from there. */
    int rc;
    while ((rc = weft_msgpipe_recv(s->end, &msg, &len, DEATH_LOOK)) ==
               -ETIMEDOUT &&
           weft_proc_alive(s->proc)) {
    }
    if (rc == -ENOMEM) {
      /* The result stays in the pipe, which the worker's next would
       * follow: the call fails, and the worker goes as if dead (its
       * death does nothing more to a future done). */
      weft__future_finish(c->future, NULL, 0, NULL, -ENOMEM);
      return -EPIPE;
    }
    if (rc < 0)
      return -EPIPE;
  } else if (!error) {
    len = (size_t)n - HEADER;
    msg = malloc(len ? len : 1);
    if (msg)
      memcpy(msg, s->buffer + HEADER, len);
    else
      error = -ENOMEM;
  }
  if (last)
    weft__callq_coming_back(&s->pool->q, me);
  weft__future_finish_then(
      c->future, msg, len, msg, error,
      &(weft__before_callbacks){weft__callq_not_coming_back_fn, &s->pool->q,
                                me});
  return 0;
}

/* Lets go of c's request and of the pool's hold on its future, which c
 * lives in. */
static void free_call(weft__call *c) {
  free(c->arg);
  weft_future_free(c->future);
}

/* After the worker died with `flight` calls sent and not replied to (a
 * list): fails the one it was running, and gives back, in order, those it
 * never took (still in its request queue). A worker that died before it
 * replied to anything fails the first of them instead, as it would every
 * new one (a crashing initializer, say). */
static weft__call *after_death(struct slot *s, weft__call *flight) {
  int untaken = 0;
  while (weft_queue_get(s->requests, s->buffer, HEADER + s->inline_max, 0) >= 0)
    untaken++;
  int in_flight = 0;
  for (weft__call *c = flight; c; c = c->next)
    in_flight++;
  bool replied = s->replied > 0;
  int code = stop_process(s, true);
  if (flight && (in_flight > untaken || !replied)) {
    weft__call *running = flight;
    flight = flight->next;
    weft__future_died(running->future, code);
    free_call(running);
  }
  return flight;
}

/* Runs a share of calls (a list) on the slot's process, a new one if it
 * has none, and lets go of each. */
static void run_share(struct slot *s, weft__idler *me, weft__call *share) {
  weft_proc_pool *p = s->pool;
  weft__call *todo = share;
  weft__call *flight = NULL, **flight_tail = &flight;
  while (todo || flight) {
    if (!s->proc) {
      int rc = start_process(s);
      for (weft__call *c; rc < 0 && (c = todo) != NULL;) {
        todo = c->next;
        weft__future_finish(c->future, NULL, 0, NULL, rc);
        free_call(c);
      }
      if (rc < 0)
        return; /* nothing was in flight: no process */
    }
    /* Send what may go now: a request over the pipe goes alone. A call
     * starts as it is sent (or sent again, after a death): until then it
     * may be cancelled, and is dropped here. */
    bool dead = false;
    while (todo && !dead && (!p->o.max_calls || s->sent < p->o.max_calls)) {
      weft__call *c = todo;
      if (flight && c->len - HEADER > s->inline_max)
        break;
      if (weft_future_set_running(c->future) == -ECANCELED) {
        todo = c->next;
        free_call(c);
        continue;
      }
      enum sent sent = send_request(s, c, flight != NULL);
      if (sent == NO_ROOM)
        break;
      dead = sent != SENT;
      if (sent == NOT_SENT_DEAD)
        break;
      todo = c->next;
      c->next = NULL;
      *flight_tail = c;
      flight_tail = &c->next;
      s->sent++;
    }
    /* Then take the oldest reply. */
    if (!dead && flight) {
      /* The last call before the process is let go is not: the join
       * comes first. */
      bool last = !flight->next && !todo &&
                  !(p->o.max_calls && s->sent >= p->o.max_calls);
      dead = take_reply(s, me, flight, last) < 0;
      if (!dead) {
        weft__call *c = flight;
        flight = c->next;
        if (!flight)
          flight_tail = &flight;
        free_call(c);
        s->replied++;
      }
    }
    if (dead) {
      /* What the worker never took goes first, to a new one. */
      flight = after_death(s, flight);
      if (flight) {
        *flight_tail = todo;
        todo = flight;
      }
      flight = NULL;
      flight_tail = &flight;
    } else if (!flight && p->o.max_calls && s->sent >= p->o.max_calls) {
      stop_process(s, false);
    }
  }
}

static void *dispatcher_main(void *arg) {
  struct slot *s = arg;
  weft_proc_pool *p = s->pool;
  dispatcher_of = p;
  weft__call *c;
  weft__idler me = {0};
  while ((c = weft__callq_take(&p->q, &me)) != NULL)
    run_share(s, &me, c);
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
  p->fds = malloc(FDS_PER_SLOT * (size_t)p->max * sizeof *p->fds);
  if (!p->slots || !p->fds ||
      weft__callq_init(&p->q, o.queue_max, o.full_fails, p->max, add_dispatcher,
                       p) < 0) {
    free(p->slots);
    free(p->fds);
    free(p);
    return -ENOMEM;
  }
  for (int i = 0; i < FDS_PER_SLOT * p->max; i++)
    p->fds[i] = -1;
  pthread_mutex_init(&p->fds_lock, NULL);
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
  if (len > WEFT_MSGPIPE_MAX)
    return -EMSGSIZE;
  weft__call *c;
  char *request = malloc(HEADER + len);
  weft_future *f = NULL;
  if (!request || weft__future_new_with(&f, sizeof *c, (void **)&c) < 0) {
    free(request);
    return -ENOMEM;
  }
  if (len) /* behind room for the header, which the dispatcher writes */
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
  pthread_mutex_destroy(&p->fds_lock);
  free(p->fds);
  free(p);
}
