/*
 * weft_proc: child processes. See include/weft/proc.h, and
 * proc-private.h for the lifetime of a handle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft/io.h>

#include "../hub/hub-private.h"
#include "../hub/timer.h"
#include "../sync/guard.h"
#include "../thread/thread-private.h"
#include "proc-private.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* How long a daemon child has between SIGTERM and SIGKILL at exit. */
#define DAEMON_GRACE WEFT_MS(500)

/* The registry: every child not yet reaped, for the daemons to terminate
 * at exit and for a subreaper to tell its own children from strangers. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static weft_proc *registry;
static atomic_uint next_number;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static bool valid(const weft_proc *p) { return p && p->magic == PROC_MAGIC; }

static void end_daemons_at_exit(void);

static void child_after_fork(void) { weft__proc_reset_in_child(); }

static void install(void) {
  atexit(end_daemons_at_exit);
  pthread_atfork(NULL, NULL, child_after_fork);
}

static int exitcode_of(const siginfo_t *si) {
  return si->si_code == CLD_EXITED ? si->si_status : -si->si_status;
}

static void unregister(weft_proc *p) {
  pthread_mutex_lock(&registry_mu);
  if (p->prev)
    p->prev->next = p->next;
  else if (registry == p)
    registry = p->next;
  if (p->next)
    p->next->prev = p->prev;
  p->next = p->prev = NULL;
  pthread_mutex_unlock(&registry_mu);
}

bool weft__proc_try_reap(weft_proc *p) {
  weft__guard_lock(&p->guard);
  if (!p->reaped) {
    siginfo_t si = {0};
    /* Only p's pid: never another child's status. */
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG) == 0 &&
        si.si_pid == p->pid) {
      p->exitcode = exitcode_of(&si);
      p->reaped = true;
    } else if (errno == ECHILD) {
      /* Reaped by someone else (a SIGCHLD handler of the program's, or
       * SIGCHLD ignored): the code is lost. */
      p->exitcode = -SIGKILL;
      p->reaped = true;
    }
  }
  bool reaped = p->reaped;
  weft__guard_unlock(&p->guard);
  if (reaped) {
    weft_event_set(&p->done);
    unregister(p);
  }
  return reaped;
}

void weft__proc_unref(weft_proc *p) {
  if (atomic_fetch_sub(&p->refs, 1) != 1)
    return;
  p->magic = 0;
  close(p->pidfd);
  free(p);
}

bool weft__proc_known(pid_t pid) {
  pthread_mutex_lock(&registry_mu);
  bool known = false;
  for (weft_proc *p = registry; p && !known; p = p->next)
    known = p->pid == pid;
  pthread_mutex_unlock(&registry_mu);
  return known;
}

/* Kills and reaps pid, a child that cannot be handed to anyone. */
static void abandon(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

int weft__proc_adopt(weft_proc **out, pid_t pid, const weft_proc_opts *opts) {
  pthread_once(&once, install);
  weft_proc *p = calloc(1, sizeof *p);
  int pidfd = p ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
  int err = !p ? ENOMEM : pidfd < 0 ? errno : 0;
  if (err) {
    free(p);
    abandon(pid);
    return -err;
  }
  p->magic = PROC_MAGIC;
  atomic_init(&p->refs, 1);
  p->pid = pid;
  p->pidfd = pidfd;
  p->daemon = opts && opts->daemon;
  weft_event_init(&p->done);
  if (opts && opts->name)
    snprintf(p->name, sizeof p->name, "%s", opts->name);
  else
    snprintf(p->name, sizeof p->name, "Process-%u",
             atomic_fetch_add(&next_number, 1) + 1);
  pthread_mutex_lock(&registry_mu);
  p->next = registry;
  if (registry)
    registry->prev = p;
  registry = p;
  pthread_mutex_unlock(&registry_mu);
  int rc = weft__reaper_watch(p);
  if (rc < 0) {
    unregister(p);
    abandon(pid);
    p->magic = 0;
    close(pidfd);
    free(p);
    return rc;
  }
  *out = p;
  return 0;
}

/* In the child of weft_proc_start: dies with a daemon's parent, runs fn,
 * and ends as Python's multiprocessing child does: what it buffered is
 * flushed, its non-daemon threads are waited for and its daemon children
 * ended, and it leaves by _exit, so that the atexit handlers it inherited
 * from the parent do not run a second time. */
static _Noreturn void run_child(weft_proc_fn fn, void *arg, bool daemon,
                                pid_t parent) {
  weft__hub_forget_in_child(); /* forked in a task: fn runs outside it */
  if (daemon) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before the prctl */
      _exit(128 + SIGKILL);
  }
  int code = fn(arg) & 0xff;
  fflush(NULL);
  weft__thread_wait_non_daemons();
  end_daemons_at_exit();
  _exit(code);
}

int weft_proc_start(weft_proc **out, weft_proc_fn fn, void *arg,
                    const weft_proc_opts *opts) {
  if (!out || !fn)
    return -EINVAL;
  pthread_once(&once, install);
  /* What stdio holds is the parent's to write: flushed now, it cannot be
   * written a second time by the child's own flush at its end. */
  fflush(NULL);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    return -errno;
  if (pid == 0)
    run_child(fn, arg, opts && opts->daemon, parent);
  return weft__proc_adopt(out, pid, opts);
}

/* Waits until p is reaped, or the deadline; 0 or the wait's error. */
static int wait_reaped(weft_proc *p, int64_t deadline) {
  while (!weft__proc_try_reap(p)) {
    int64_t left = WEFT_FOREVER;
    if (deadline != INT64_MAX) {
      left = deadline - weft__now();
      if (left <= 0)
        return -ETIMEDOUT;
    }
    /* Wait on the pidfd itself, which the kernel makes readable when the
     * child exits: no hop through the reaper. A second task of one hub
     * joining the same child waits for the reap instead. */
    int rc = weft_io_wait(p->pidfd, POLLIN, left);
    if (rc == -EBUSY)
      rc = weft_event_wait(&p->done, left);
    if (rc < 0 && rc != -ETIMEDOUT && rc != -EINTR)
      return rc; /* -ECANCELED, or the poller's trouble */
  }
  return 0;
}

int weft_proc_join(weft_proc *p, int64_t timeout, int *exitcode) {
  if (!valid(p))
    return -EINVAL;
  int rc = 0;
  if (!weft__proc_try_reap(p)) {
    int64_t deadline = weft__deadline_after(timeout);
    weft__reaper_join_begins(p);
    rc = wait_reaped(p, deadline);
    weft__reaper_join_ends(p);
  }
  if (rc == 0 && exitcode)
    *exitcode = p->exitcode;
  return rc;
}

int weft_proc_exitcode(weft_proc *p, int *code) {
  if (!valid(p))
    return -EINVAL;
  if (!weft__proc_try_reap(p))
    return -EBUSY;
  if (code)
    *code = p->exitcode;
  return 0;
}

bool weft_proc_alive(weft_proc *p) {
  return valid(p) && !weft__proc_try_reap(p);
}

pid_t weft_proc_pid(const weft_proc *p) { return valid(p) ? p->pid : -1; }

const char *weft_proc_name(const weft_proc *p) {
  return valid(p) ? p->name : NULL;
}

int weft_proc_signal(weft_proc *p, int signo) {
  if (!valid(p) || signo <= 0 || signo >= NSIG)
    return -EINVAL;
  /* Through the pidfd: once the child is reaped its pid may be another
   * process's, but the pidfd still names the dead child (-ESRCH). */
  if (syscall(SYS_pidfd_send_signal, p->pidfd, signo, NULL, 0) < 0 &&
      errno != ESRCH)
    return -errno;
  return 0;
}

int weft_proc_terminate(weft_proc *p) { return weft_proc_signal(p, SIGTERM); }

int weft_proc_kill(weft_proc *p) { return weft_proc_signal(p, SIGKILL); }

void weft_proc_free(weft_proc *p) {
  if (!valid(p))
    return;
  weft__proc_unref(p);
}

int weft_proc_subreaper(void) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
    return -errno;
  weft__reaper_sweep_strangers();
  return 0;
}

/* At exit, as Python's multiprocessing: terminate the daemon children,
 * give them a grace period, then kill what is left. Each is reaped. */
static void end_daemons_at_exit(void) {
  pthread_mutex_lock(&registry_mu);
  int n = 0;
  for (weft_proc *p = registry; p; p = p->next)
    if (p->daemon) {
      syscall(SYS_pidfd_send_signal, p->pidfd, SIGTERM, NULL, 0);
      n++;
    }
  pthread_mutex_unlock(&registry_mu);
  if (n == 0)
    return;
  int64_t deadline = weft__now() + DAEMON_GRACE;
  for (;;) {
    pthread_mutex_lock(&registry_mu);
    int left = 0;
    for (weft_proc *p = registry; p; p = p->next) {
      if (!p->daemon)
        continue;
      siginfo_t si = {0};
      if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          si.si_pid == p->pid)
        continue; /* exited: the reaper, or the kernel at our exit, reaps */
      left++;
      if (weft__now() >= deadline)
        syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
    }
    pthread_mutex_unlock(&registry_mu);
    if (left == 0 || weft__now() >= deadline)
      return;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
}

void weft__proc_reset_in_child(void) {
  pthread_mutex_init(&registry_mu, NULL);
  weft__reaper_reset_in_child();
  /* The parent's children are not ours: their handles go dead here, and
   * their pidfds are closed (the memory stays, for stray pointers). */
  for (weft_proc *p = registry; p; p = p->next) {
    p->magic = 0;
    close(p->pidfd);
  }
  registry = NULL;
}
