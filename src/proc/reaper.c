/*
 * The reaper: one thread, started with the first child, that watches every
 * child's pidfd in an epoll set and reaps each child the moment it exits
 * (weft__proc_try_reap: a joiner may have reaped it first), so that no
 * child stays a zombie, joined or not, its handle freed or not. Then it
 * lets go of the child (the epoll entry, its reference).
 *
 * A subreaper (weft_proc_subreaper) also inherits orphans weft never
 * started; they have no pidfd here, so the reaper looks for them every
 * STRANGER_SWEEP and reaps those that exited, leaving weft's own children
 * to their handles.
 *
 * It is a plain pthread, not a weft thread: nobody joins it, it ends with
 * the process, and it blocks every signal, which stay the program's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc-private.h"

enum { STRANGER_SWEEP_MS = 100, EVENTS = 64 };

static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;
static int epfd = -1;
/* The children the reaper holds, also known to the kernel's epoll set only
 * by pointer: listed here too, so that they stay reachable (for leak
 * checkers) and can be forgotten in a child of fork. Under start_mu. */
static weft_proc *watched;
static atomic_bool sweeping;

/* Reaps the exited children weft did not start. */
static void sweep(void) {
  for (;;) {
    siginfo_t si = {0};
    /* Look without reaping: the child may be weft's own. */
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
        si.si_pid == 0)
      return;
    if (weft__proc_known(si.si_pid))
      return; /* its handle's; the pidfd path reaps it */
    waitpid(si.si_pid, NULL, WNOHANG);
  }
}

static void *reap(void *arg) {
  int fd = (int)(intptr_t)arg;
  struct epoll_event ev[EVENTS];
  for (;;) {
    int timeout = atomic_load(&sweeping) ? STRANGER_SWEEP_MS : -1;
    int n = epoll_wait(fd, ev, EVENTS, timeout);
    if (n < 0 && errno != EINTR)
      return NULL; /* the set is gone (a child of fork closed it) */
    for (int i = 0; i < n; i++) {
      weft_proc *p = ev[i].data.ptr;
      if (!weft__proc_try_reap(p))
        continue;
      epoll_ctl(fd, EPOLL_CTL_DEL, p->pidfd, NULL);
      pthread_mutex_lock(&start_mu);
      if (p->watch_prev)
        p->watch_prev->watch_next = p->watch_next;
      else
        watched = p->watch_next;
      if (p->watch_next)
        p->watch_next->watch_prev = p->watch_prev;
      pthread_mutex_unlock(&start_mu);
      weft__proc_unref(p);
    }
    if (atomic_load(&sweeping))
      sweep();
  }
}

/* Starts the reaper if it is not running. Called with start_mu held. */
static int start(void) {
  if (epfd >= 0)
    return 0;
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0)
    return -errno;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t th;
  int err = pthread_create(&th, &attr, reap, (void *)(intptr_t)fd);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err) {
    close(fd);
    return -err;
  }
  epfd = fd;
  return 0;
}

int weft__reaper_watch(weft_proc *p) {
  pthread_mutex_lock(&start_mu);
  int rc = start();
  if (rc == 0) {
    atomic_fetch_add(&p->refs, 1);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, p->pidfd, &ev) < 0) {
      rc = -errno;
      atomic_fetch_sub(&p->refs, 1);
    } else {
      p->watch_prev = NULL;
      p->watch_next = watched;
      if (watched)
        watched->watch_prev = p;
      watched = p;
    }
  }
  pthread_mutex_unlock(&start_mu);
  return rc;
}

void weft__reaper_sweep_strangers(void) {
  pthread_mutex_lock(&start_mu);
  atomic_store(&sweeping, true);
  start(); /* without a reaper, the next child starts it */
  pthread_mutex_unlock(&start_mu);
}

void weft__reaper_reset_in_child(void) {
  pthread_mutex_init(&start_mu, NULL);
  if (epfd >= 0)
    close(epfd); /* the parent's reaper watches the parent's children */
  epfd = -1;
  watched = NULL;
  atomic_store(&sweeping, false);
}
