/*
 * A worker process: its hub, its acceptors, its connections, and how it
 * drains. See weft/cluster.h and cluster-private.h.
 *
 * The worker's main task (worker_main) starts the signal task, one
 * acceptor per listener and the user's main, then waits until it is told
 * to stop (or, without listeners, until the user's main returns). A drain
 * then stops the acceptors, closes this worker's copies of the listeners,
 * ends the idle connections (weft_worker_idle), and waits for the others
 * until the drain timeout, after which it cancels what is left; a stop
 * now does the same with no time given.
 *
 * Connections: each runs in a detached task of its own, whose record
 * (struct conn, allocated by the task) sits in the worker's list from the
 * task's first run to its end. Everything here runs on the one
 * thread of the worker's hub, so the list needs no lock; a task in the
 * list has not finished, which is what makes its handle safe to cancel
 * although it was detached.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft/io.h>

#include "../hub/hub-private.h"
#include "cluster-private.h"

struct conn {
  weft_task *task;
  int fd;
  bool idle;   /* parked in weft_worker_idle between requests */
  bool served; /* weft_worker_idle was called before: a request was read */
  struct conn *prev, *next;
};

/* The worker of this process (a process is at most one worker). */
static weft_worker *self_worker;
static weft_task_key conn_key;

/* After the fork: close what is the supervisor's, or other workers'. */
static void close_inherited(weft_cluster *c, struct slot *mine) {
  for (struct slot *s = c->slots; s; s = s->next)
    if (s->pipe)
      close(weft_msgpipe_fd(s->pipe));
  for (int i = 0; i < c->nlisteners; i++) {
    struct listener *l = &c->listeners[i];
    if (l->nfds > 1)
      for (int j = 0; j < l->nfds; j++)
        if (j != mine->index && l->fds[j] >= 0)
          close(l->fds[j]);
  }
  close(c->ctl[0]);
  close(c->ctl[1]);
  /* What is left of the supervisor's records must not look usable here:
   * stop, reload and broadcast refuse in a worker (-EPERM). */
  c->ctl[0] = c->ctl[1] = -1;
  c->supervising = false;
  c->slots = NULL;
}

static int listener_fd(const weft_cluster *c, int i, int index) {
  const struct listener *l = &c->listeners[i];
  return l->nfds > 1 ? l->fds[index] : l->fds[0];
}

static void pin(const weft_worker *w) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    return;
  int n = CPU_COUNT(&set), want = w->index % n;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &set) || want-- > 0)
      continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0)
      weft__cluster_log(w->cluster, "worker %d: could not pin to CPU %d: %s",
                        w->index, cpu, strerror(errno));
    return;
  }
}

static void wake_conns(weft_worker *w, bool only_idle);

static void begin_drain(weft_worker *w, bool now) {
  if (now)
    w->stop_now = true;
  if (w->draining)
    return;
  weft__balance_leave(w->cluster, w->index, w->pid);
  w->draining = true;
  weft_event_set(&w->drain);
  weft_event_set(&w->wake);
}

static void *signals_main(void *arg) {
  weft_worker *w = arg;
  sigset_t set; /* SIGHUP is the supervisor's business: taken, ignored */
  weft__cluster_block_signals(&set, NULL); /* blocked already */
  for (;;) {
    int sig = weft_signal_wait(&set, WEFT_FOREVER);
    if (sig < 0)
      return NULL;
    if (sig == SIGQUIT && w->draining && !w->stop_now) {
      /* A stop now during a graceful drain: what the drain waits for is
       * cancelled now, not at its timeout. */
      w->stop_now = true;
      wake_conns(w, false);
      if (w->main_task && !w->main_done)
        weft_task_cancel(w->main_task);
    } else if (sig == SIGQUIT) {
      begin_drain(w, true);
    } else if (sig != SIGHUP) {
      begin_drain(w, false);
    }
  }
}

static void *conn_main(void *arg) {
  weft_worker *w = self_worker;
  int fd = (int)(intptr_t)arg;
  /* Not in this task's frame: the list links the records of every
   * connection, and a hibernated task's frame must not be written by its
   * neighbours (weft_cluster_opts.conn_hibernate). */
  struct conn in_frame = {0}, *me = calloc(1, sizeof *me);
  if (!me) { /* no memory: in the frame, and the task never hibernates */
    me = &in_frame;
    weft__task_running()->hibernate = false;
  }
  me->task = weft_task_current();
  me->fd = fd;
  me->next = w->conn_list;
  if (me->next)
    me->next->prev = me;
  w->conn_list = me;
  weft_task_local_set(conn_key, me);
  if (!w->stop_now)
    w->cluster->o.handler(w, fd, w->cluster->o.arg);
  if (me->prev)
    me->prev->next = me->next;
  else
    w->conn_list = me->next;
  if (me->next)
    me->next->prev = me->prev;
  weft_task_local_set(conn_key, NULL);
  if (me != &in_frame)
    free(me);
  weft_io_close(fd);
  if (--w->conns == 0)
    weft_event_set(&w->conns_gone);
  weft__balance_publish(w);
  weft_event_set(&w->room);
  return NULL;
}

/* How long an acceptor rests after running out of fds or memory: doubling
 * from ACCEPT_REST_FIRST to ACCEPT_REST_MAX while it lasts (the
 * connections wait in the queue meanwhile), rather than spin on an accept
 * that keeps failing. */
#define ACCEPT_REST_FIRST WEFT_MS(5)

/* How an acceptor ahead of the others defers (balance.c): BALANCE_DEFERS
 * naps of BALANCE_DEFER at most before each accept. */
#define BALANCE_DEFER   WEFT_US(500)
#define BALANCE_DEFERS  20
#define ACCEPT_REST_MAX WEFT_SEC(1)

/* Errors of accept that last a while, for which the acceptor rests. */
static bool accept_error_lasts(int rc) {
  return rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM;
}

static void *acceptor_main(void *arg) {
  weft_worker *w = self_worker;
  int lfd = (int)(intptr_t)arg;
  weft_cluster *c = w->cluster;
  weft_task_opts opts = {.stack_size = c->o.conn_stack_size,
                         .hibernate = c->o.conn_hibernate};
  int64_t rest = 0, last_log = 0;
  for (;;) {
    if (c->o.max_conns && w->conns >= c->o.max_conns) {
      weft_event_clear(&w->room);
      if (weft_event_wait(&w->room, WEFT_FOREVER) == -ECANCELED)
        return NULL;
      continue;
    }
    /* Ahead of the least loaded worker: let the others take what comes
     * for a moment (not for ever: they may be too busy to). */
    for (int i = 0; i < BALANCE_DEFERS && weft__balance_ahead(w); i++)
      if (weft_sleep(BALANCE_DEFER) == -ECANCELED)
        return NULL;
    int fd = weft_io_accept(lfd, NULL, NULL, WEFT_FOREVER);
    int rc = fd;
    const char *what = "accept";
    if (fd >= 0) {
      w->conns++;
      weft__balance_publish(w);
      weft_event_clear(&w->conns_gone);
      rc = weft_task_spawn(NULL, conn_main, (void *)(intptr_t)fd, &opts);
      if (rc == 0) {
        rest = 0;
        continue;
      }
      w->conns--;
      weft__balance_publish(w);
      weft_io_close(fd);
      what = "no task for a connection";
    } else if (fd == -ECANCELED && w->draining) {
      return NULL;
    } else if (!accept_error_lasts(fd) && fd != -EBADF && fd != -EINVAL &&
               fd != -ENOTSOCK && fd != -ECANCELED) {
      /* It concerns one connection (a reset before it was taken, a
       * firewall's -EPERM, a protocol error): go on. */
      continue;
    } else if (!accept_error_lasts(fd)) {
      /* The listener is gone, or the task cancelled by someone else: this
       * worker cannot serve; it drains and exits 1, to be replaced. */
      weft__cluster_log(c, "worker %d: accept: %s; the worker stops", w->index,
                        weft_strerror(fd));
      w->failed = true;
      begin_drain(w, false);
      return NULL;
    }
    /* Out of fds, of memory, or of tasks: rest a while (the connections
     * wait in the queue meanwhile), logging once a second. */
    int64_t now = weft_now();
    if (now - last_log >= WEFT_SEC(1)) {
      weft__cluster_log(c, "worker %d: %s: %s; resting", w->index, what,
                        weft_strerror(rc));
      last_log = now;
    }
    rest = rest ? rest * 2 : ACCEPT_REST_FIRST;
    if (rest > ACCEPT_REST_MAX)
      rest = ACCEPT_REST_MAX;
    if (weft_sleep(rest) == -ECANCELED)
      return NULL;
  }
}

static void *user_main(void *arg) {
  weft_worker *w = arg;
  w->cluster->o.main(w, w->cluster->o.arg);
  w->main_done = true;
  weft_event_set(&w->wake);
  return NULL;
}

/* Ends the waits of the idle connections (weft_worker_idle then lingers
 * for a request already on its way), or cancels every connection. */
static void wake_conns(weft_worker *w, bool only_idle) {
  for (struct conn *k = w->conn_list; k; k = k->next) {
    if (!only_idle)
      weft_task_cancel(k->task);
    else if (k->idle)
      weft__task_interrupt(k->task, -EINTR);
  }
}

/* Waits up to the deadline (INT64_MAX: none) for every connection to end. */
static bool conns_end_by(weft_worker *w, int64_t deadline) {
  while (w->conns > 0) {
    int64_t left = WEFT_FOREVER;
    if (deadline != INT64_MAX) {
      left = deadline - weft_now();
      left = left > 0 ? left : 0;
    }
    if (weft_event_wait(&w->conns_gone, left) == -ETIMEDOUT && w->conns > 0)
      return false;
  }
  return true;
}

static void drain(weft_worker *w, weft_task *main_task) {
  weft_cluster *c = w->cluster;
  int64_t deadline = w->stop_now ? weft_now() : weft_now() + c->o.drain_timeout;
  for (int i = 0; i < w->nacceptors; i++) {
    weft_task_cancel(w->acceptors[i]);
    weft_task_join(w->acceptors[i], WEFT_FOREVER, NULL);
    weft_task_detach(w->acceptors[i]);
  }
  w->nacceptors = 0;
  for (int i = 0; i < c->nlisteners; i++)
    weft_io_close(listener_fd(c, i, w->index));
  wake_conns(w, true);
  if (!conns_end_by(w, deadline)) {
    wake_conns(w, false);
    conns_end_by(w, INT64_MAX); /* cancelled: they end with their cleanup */
    deadline = INT64_MAX;
  }
  if (main_task && !w->main_done) {
    int64_t left =
        deadline == INT64_MAX || w->stop_now ? 0 : deadline - weft_now();
    if (weft_task_join(main_task, left > 0 ? left : 0, NULL) == -ETIMEDOUT)
      weft_task_cancel(main_task);
  }
}

static void *worker_main(void *arg) {
  weft_worker *w = arg;
  weft_cluster *c = w->cluster;
  weft_task *signals = NULL, *main_task = NULL;
  if (weft_task_spawn(
          &signals, signals_main, w,
          &(weft_task_opts){.name = "worker-signals", .daemon = true}) < 0)
    return (void *)(intptr_t)70;
  for (int i = 0; i < c->nlisteners; i++) {
    if (weft_task_spawn(&w->acceptors[w->nacceptors], acceptor_main,
                        (void *)(intptr_t)listener_fd(c, i, w->index),
                        &(weft_task_opts){.name = "worker-acceptor"}) < 0) {
      begin_drain(w, true);
      break;
    }
    w->nacceptors++;
  }
  if (c->o.main && !w->draining &&
      weft_task_spawn(&main_task, user_main, w,
                      &(weft_task_opts){.name = "worker-main"}) < 0)
    begin_drain(w, true);
  w->main_task = main_task;
  while (!w->draining && !(c->nlisteners == 0 && w->main_done)) {
    weft_event_clear(&w->wake);
    if (w->draining || (c->nlisteners == 0 && w->main_done))
      break;
    weft_event_wait(&w->wake, WEFT_FOREVER);
  }
  drain(w, main_task);
  if (main_task) {
    weft_task_join(main_task, WEFT_FOREVER, NULL);
    w->main_task = NULL;
    weft_task_detach(main_task);
  }
  weft_task_detach(signals); /* a daemon: cancelled as weft_run ends */
  return (void *)(intptr_t)(w->failed ? 1 : 0);
}

int weft__cluster_worker_main(void *arg) {
  struct slot *s = arg;
  weft_cluster *c = s->cluster;
  close_inherited(c, s);
  sigset_t set;
  weft__cluster_block_signals(&set, NULL);
  weft_worker w = {
      .cluster = c,
      .index = s->index,
      .generation = s->generation,
      .pipe = s->far_end,
      .pid = getpid(),
  };
  s->far_end = NULL; /* the supervisor's copy of it is closed there */
  char name[16];
  snprintf(name, sizeof name, "weft-worker-%d", w.index);
  prctl(PR_SET_NAME, name);
  if (c->o.pin_cpus)
    pin(&w);
  weft_event_init(&w.drain);
  weft_event_init(&w.wake);
  weft_event_init(&w.conns_gone);
  weft_event_init(&w.room);
  weft_event_set(&w.conns_gone);
  self_worker = &w;
  weft__balance_publish(&w); /* here, accepting, with none */
  if (weft_task_key_create(&conn_key, NULL) < 0)
    return 71;
  void *result = NULL;
  int rc = weft_run(worker_main, &w, &result);
  weft_msgpipe_free(w.pipe);
  if (rc < 0)
    return 70;
  return (int)(intptr_t)result;
}

/* ---- The calls of a worker's tasks ---- */

int weft_worker_index(const weft_worker *w) { return w ? w->index : -EINVAL; }

unsigned weft_worker_generation(const weft_worker *w) {
  return w ? w->generation : 0;
}

bool weft_worker_draining(const weft_worker *w) { return w && w->draining; }

int weft_worker_wait_drain(weft_worker *w, int64_t timeout) {
  if (!w || timeout < WEFT_FOREVER)
    return -EINVAL;
  return weft_event_wait(&w->drain, timeout);
}

/* How long an idle connection waits for one more request once its worker
 * drains: a client may have sent it as the drain began (a busy keep-alive
 * client sends its next request the moment it has a response), and that
 * request is answered (the handler then closes) rather than cut off. */
#define DRAIN_LINGER WEFT_MS(500)

int weft_worker_idle(weft_worker *w, int fd, int64_t timeout) {
  if (!w || timeout < WEFT_FOREVER)
    return -EINVAL;
  struct conn *me = weft_task_local_get(conn_key);
  /* The first wait of a connection is for the request its client
   * connected to make: not idle, and a drain lets it come. */
  bool first = me && !me->served;
  if (me)
    me->served = true;
  int rc;
  if (first || !w->draining) {
    if (me)
      me->idle = !first;
    rc = weft_io_wait(fd, WEFT_IO_READ, timeout);
    if (me)
      me->idle = false;
    if (rc != -EINTR || !w->draining)
      return rc < 0 ? rc : 0;
  }
  /* Draining: a last look for a request on its way. */
  rc = weft_io_wait(fd, WEFT_IO_READ,
                    timeout == WEFT_FOREVER || timeout > DRAIN_LINGER
                        ? DRAIN_LINGER
                        : timeout);
  if (rc == -ETIMEDOUT || rc == -EINTR)
    return -ESHUTDOWN;
  return rc < 0 ? rc : 0;
}

int weft_worker_send(weft_worker *w, const void *msg, size_t len,
                     int64_t timeout) {
  if (!w || (!msg && len > 0))
    return -EINVAL;
  return weft_msgpipe_send(w->pipe, msg ? msg : "", len, timeout);
}

int weft_worker_recv(weft_worker *w, void **msg, size_t *len, int64_t timeout) {
  if (!w || !msg || !len)
    return -EINVAL;
  return weft_msgpipe_recv(w->pipe, msg, len, timeout);
}
