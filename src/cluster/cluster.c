/*
 * A cluster's making, listeners, requests and end. See weft/cluster.h;
 * the supervisor is supervisor.c, a worker process worker.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <weft/io.h>

#include "../core/sigmask.h"
#include "../core/stack.h"
#include "../io/listen.h"
#include "cluster-private.h"

void weft_cluster_opts_init(weft_cluster_opts *o) {
  if (!o)
    return;
  *o = (weft_cluster_opts){
      .workers = weft_cpu_count(),
      .accept_mode = WEFT_ACCEPT_SHARED,
      .drain_timeout = WEFT_SEC(10),
      .log_fd = 2,
  };
}

int weft_cluster_create(weft_cluster **out, const weft_cluster_opts *o) {
  if (!out || !o || (!o->main && !o->handler) || o->workers < 1 ||
      o->workers > WEFT_CLUSTER_MAX_WORKERS ||
      (o->accept_mode != WEFT_ACCEPT_SHARED &&
       o->accept_mode != WEFT_ACCEPT_REUSEPORT) ||
      o->drain_timeout < 0 || o->conn_stack_size > WEFT__STACK_MAX)
    return -EINVAL;
  weft_cluster *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->o = *o;
  if (pipe2(c->ctl, O_NONBLOCK | O_CLOEXEC) != 0) {
    int err = -errno;
    free(c);
    return err;
  }
  int rc = weft__balance_create(c);
  if (rc < 0) {
    close(c->ctl[0]);
    close(c->ctl[1]);
    free(c);
    return rc;
  }
  atomic_init(&c->requests, 0);
  weft_event_init(&c->changed);
  weft_event_init(&c->killer_wake);
  *out = c;
  return 0;
}

/* The address with its port replaced by port ("h:0" -> "h:4711"), for the
 * sockets of a REUSEPORT listener after the first chose its port. */
static char *with_port(const char *address, int port) {
  const char *colon = strrchr(address, ':');
  size_t keep = colon ? (size_t)(colon - address) : strlen(address);
  char *s = malloc(keep + 8);
  if (s)
    snprintf(s, keep + 8, "%.*s:%d", (int)keep, address, port);
  return s;
}

static void close_listener(struct listener *l) {
  for (int i = 0; i < l->nfds; i++)
    if (l->fds[i] >= 0)
      close(l->fds[i]);
  free(l->fds);
  if (l->unix_path) {
    unlink(l->unix_path);
    free(l->unix_path);
  }
  *l = (struct listener){0};
}

static bool is_unix(const char *address) {
  return strncmp(address, "unix:", 5) == 0;
}

int weft_cluster_listen(weft_cluster *c, const char *address) {
  if (!c || !address || c->ran)
    return -EINVAL;
  if (c->nlisteners == WEFT_CLUSTER_MAX_LISTENERS)
    return -ENOSPC;
  bool unix_path = is_unix(address);
  bool per_worker = c->o.accept_mode == WEFT_ACCEPT_REUSEPORT && !unix_path;
  struct listener l = {.nfds = per_worker ? c->o.workers : 1};
  l.fds = malloc(sizeof *l.fds * (size_t)l.nfds);
  if (!l.fds)
    return -ENOMEM;
  for (int i = 0; i < l.nfds; i++)
    l.fds[i] = -1;
  int rc = 0;
  char *rest = NULL; /* the address of the sockets after the first */
  for (int i = 0; i < l.nfds && rc >= 0; i++) {
    rc = weft_io_listen(i ? rest : address, 0,
                        per_worker ? WEFT_LISTEN_REUSEPORT : 0);
    if (rc < 0)
      break;
    l.fds[i] = rc;
    if (i == 0 && per_worker) {
      int port = weft__listen_port(rc);
      rest = port < 0 ? NULL : with_port(address, port);
      if (!rest)
        rc = port < 0 ? port : -ENOMEM;
    }
  }
  free(rest);
  if (rc >= 0 && unix_path && address[5] != '@') {
    l.unix_path = strdup(address + 5);
    if (!l.unix_path)
      rc = -ENOMEM;
  }
  if (rc < 0) {
    close_listener(&l);
    return rc;
  }
  c->listeners[c->nlisteners] = l;
  return c->nlisteners++;
}

int weft_cluster_listener_port(const weft_cluster *c, int i) {
  if (!c || i < 0 || i >= c->nlisteners || c->listeners[i].fds[0] < 0)
    return -EINVAL;
  return weft__listen_port(c->listeners[i].fds[0]);
}

/* Async-signal-safe: an atomic or, a getpid(2) and a write(2). */
static int request(weft_cluster *c, int what) {
  if (!c)
    return -EINVAL;
  pid_t pid = atomic_load_explicit(&c->pid, memory_order_relaxed);
  if (pid && pid != getpid())
    return -EPERM; /* a worker's copy of its supervisor's cluster */
  atomic_fetch_or(&c->requests, what);
  int saved = errno;
  ssize_t r = write(c->ctl[1], "", 1);
  (void)r; /* EAGAIN: the pipe is full, a wake is pending anyway */
  errno = saved;
  return 0;
}

int weft_cluster_stop(weft_cluster *c, bool graceful) {
  return request(c, graceful ? REQUEST_STOP : REQUEST_STOP_NOW);
}

int weft_cluster_reload(weft_cluster *c) {
  if (c && (atomic_load(&c->requests) & (REQUEST_STOP | REQUEST_STOP_NOW)))
    return -ESHUTDOWN;
  return request(c, REQUEST_RELOAD);
}

void weft_cluster_free(weft_cluster *c) {
  if (!c)
    return;
  for (int i = 0; i < c->nlisteners; i++)
    close_listener(&c->listeners[i]);
  close(c->ctl[0]);
  close(c->ctl[1]);
  weft__balance_free(c);
  weft_event_destroy(&c->changed);
  weft_event_destroy(&c->killer_wake);
  free(c);
}

void weft__cluster_log(const weft_cluster *c, const char *fmt, ...) {
  if (c->o.log_fd < 0)
    return;
  char line[512];
  int n = snprintf(line, sizeof line, "weft-cluster[%d]: ", (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    return;
  n += m < (int)(sizeof line - (size_t)n - 1) ? m : (int)(sizeof line - n - 2);
  line[n++] = '\n';
  /* One write: lines of several processes do not interleave. */
  ssize_t r = write(c->o.log_fd, line, (size_t)n);
  (void)r;
}

int weft__cluster_block_signals(sigset_t *set, sigset_t *old) {
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGQUIT);
  sigaddset(set, SIGHUP);
  return weft__sigmask_block(set, old);
}
