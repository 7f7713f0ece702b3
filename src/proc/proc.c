/*
 * weft_proc: child processes. See include/weft/proc.h, and
 * proc-private.h for the lifetime of a handle and the watchers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/guard.h"
#include "../core/sigmask.h"
#include "../hub/hub-private.h"
#include "../hub/timer.h"
#include "../thread/thread-private.h"
#include "proc-private.h"

/* How long a daemon child has between SIGTERM and SIGKILL at exit. */
#define DAEMON_GRACE WEFT_MS(500)

/* The registry: every child not yet reaped, for the daemons to terminate
 * at exit and for a subreaper to tell its own children from strangers. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static weft_proc *registry;
static atomic_uint next_number;
static pthread_once_t once = PTHREAD_ONCE_INIT;
/* Chosen once, in install; a child of fork keeps its parent's choice (the
 * same kernel, the same environment as it was then). */
static const weft__proc_watcher *watcher;

static bool valid(const weft_proc *p) { return p && p->magic == PROC_MAGIC; }

static void end_daemons_at_exit(void);

/* Around a fork: the registry (and the reaper's table) must not be in the
 * middle of a change as the child's copy is taken. */
static void before_fork(void) {
  watcher->lock();
  pthread_mutex_lock(&registry_mu);
}

static void parent_after_fork(void) {
  pthread_mutex_unlock(&registry_mu);
  watcher->unlock();
}

static void child_after_fork(void) { weft__proc_reset_in_child(); }

/* WEFT_PROC_NO_PIDFD set (to anything but "" or "0") forces the SIGCHLD
 * watcher, for tests and for debugging on a kernel that has pidfds. */
static bool pidfds_refused(void) {
  const char *e = getenv("WEFT_PROC_NO_PIDFD");
  return e && *e && strcmp(e, "0") != 0;
}

static void install(void) {
  watcher = !pidfds_refused() && weft__proc_pidfd_usable()
                ? &weft__proc_pidfd_watcher
                : &weft__proc_sigchld_watcher;
  atexit(end_daemons_at_exit);
  pthread_atfork(before_fork, parent_after_fork, child_after_fork);
}

const weft__proc_watcher *weft__proc_watch(void) {
  pthread_once(&once, install);
  return watcher;
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
    int r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG);
    if (r == 0 && si.si_pid == p->pid) {
      p->exitcode = exitcode_of(&si);
      p->reaped = true;
    } else if (r < 0 && errno == ECHILD) {
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
  unregister(p); /* reaped, or given up on: not a registry entry freed */
  p->magic = 0;
  watcher->close(p);
  free(p);
}

/* Starts under way: forked, or about to be, and not registered yet. A
 * subreaper's sweep must not take such a child for a stranger. Under
 * registry_mu. */
static int starting;

void weft__proc_start_begins(void) {
  weft__proc_watch();
  pthread_mutex_lock(&registry_mu);
  starting++;
  pthread_mutex_unlock(&registry_mu);
}

void weft__proc_start_failed(void) {
  pthread_mutex_lock(&registry_mu);
  starting--;
  pthread_mutex_unlock(&registry_mu);
}

void weft__proc_reap_strangers(void) {
  pthread_mutex_lock(&registry_mu);
  while (starting == 0) {
    siginfo_t si = {0};
    /* Look without reaping: the child may be weft's own. */
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
        si.si_pid == 0)
      break;
    bool known = false;
    for (weft_proc *p = registry; p && !known; p = p->next)
      known = p->pid == si.si_pid;
    if (known)
      break; /* its handle's; the watcher reaps it */
    waitpid(si.si_pid, NULL, WNOHANG);
  }
  pthread_mutex_unlock(&registry_mu);
}

/* Kills and reaps pid, a child that cannot be handed to anyone. */
static void abandon(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

int weft__proc_adopt(weft_proc **out, pid_t pid, const weft_proc_opts *opts) {
  weft_proc *p = calloc(1, sizeof *p);
  int rc = -ENOMEM;
  if (p) {
    p->pid = pid;
    p->pidfd = -1;
    p->slot = -1;
    rc = watcher->open(p);
  }
  if (rc < 0) {
    free(p);
    abandon(pid); /* still ours: no sweep reaps a child being started */
    weft__proc_start_failed();
    return rc;
  }
  p->magic = PROC_MAGIC;
  atomic_init(&p->refs, 1);
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
  starting--;
  pthread_mutex_unlock(&registry_mu);
  rc = watcher->watch(p);
  if (rc < 0) { /* end it here, and leave nothing behind */
    weft_proc_kill(p);
    while (!weft__proc_try_reap(p))
      weft_event_wait(&p->done, WEFT_MS(1));
    weft__proc_unref(p);
    return rc;
  }
  *out = p;
  return 0;
}

/* In the child of weft_proc_start: starts with the signal mask the
 * program had (see sigmask.h), dies with a daemon's parent, runs fn,
 * and ends as Python's multiprocessing child does: what it buffered is
 * flushed, its non-daemon threads are waited for and its daemon children
 * ended, and it leaves by _exit, so that the atexit handlers it inherited
 * from the parent do not run a second time. */
static _Noreturn void run_child(weft_proc_fn fn, void *arg, bool daemon,
                                pid_t parent) {
  weft__sigmask_reset_in_child(); /* the program's mask, not weft's */
  weft__hub_forget_in_child();    /* forked in a task: fn runs outside it */
  if (daemon) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before the prctl */
      _exit(128 + SIGKILL);
  }
  int code = fn(arg) & 0xff;
  fflush(NULL);
  end_daemons_at_exit(); /* after its non-daemon threads */
  _exit(code);
}

int weft_proc_start(weft_proc **out, weft_proc_fn fn, void *arg,
                    const weft_proc_opts *opts) {
  if (!out || !fn)
    return -EINVAL;
  /* What stdio holds is the parent's to write: flushed now, it cannot be
   * written a second time by the child's own flush at its end. */
  fflush(NULL);
  pid_t parent = opts && opts->daemon ? getpid() : 0; /* for its check */
  weft__proc_start_begins();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    weft__proc_start_failed();
    return -err;
  }
  if (pid == 0)
    run_child(fn, arg, opts && opts->daemon, parent);
  return weft__proc_adopt(out, pid, opts);
}

int weft_proc_join(weft_proc *p, int64_t timeout, int *exitcode) {
  if (!valid(p) || weft__timeout_bad(timeout))
    return -EINVAL;
  int rc = 0;
  if (!weft__proc_try_reap(p)) {
    if (timeout == 0) /* a look only: the reaper keeps watching */
      return -ETIMEDOUT;
    rc = watcher->wait(p, weft__deadline_after(timeout));
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
  return watcher->signal(p, signo);
}

int weft_proc_terminate(weft_proc *p) { return weft_proc_signal(p, SIGTERM); }

int weft_proc_kill(weft_proc *p) { return weft_proc_signal(p, SIGKILL); }

void weft_proc_free(weft_proc *p) {
  if (!valid(p))
    return;
  /* The reaper may keep the memory until the child exits; the handle is
   * dead from now on all the same, and says so while the memory lasts. */
  p->magic = 0;
  weft__proc_unref(p);
}

int weft_proc_subreaper(void) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
    return -errno;
  weft__proc_watch()->sweep_strangers();
  return 0;
}

/* Takes a reference to p unless its last one is being dropped (then p is
 * about to leave the registry, and be freed). */
static bool try_ref(weft_proc *p) {
  int r = atomic_load(&p->refs);
  while (r > 0)
    if (atomic_compare_exchange_weak(&p->refs, &r, r + 1))
      return true;
  return false;
}

/* Sends signo to every daemon child still registered; returns how many.
 * A signal may take a handle's guard, which comes before the registry's
 * mutex: so each daemon is marked and held by a reference under the
 * mutex, and signalled after it. */
static int signal_daemons(int signo) {
  int n = 0;
  for (;;) {
    weft_proc *d = NULL;
    pthread_mutex_lock(&registry_mu);
    for (weft_proc *p = registry; p && !d; p = p->next)
      if (p->daemon && p->ended_by != signo) {
        p->ended_by = signo;
        if (try_ref(p))
          d = p;
      }
    pthread_mutex_unlock(&registry_mu);
    if (!d)
      return n;
    watcher->signal(d, signo);
    weft__proc_unref(d);
    n++;
  }
}

/* How many daemon children have not exited yet (reaped or not). */
static int daemons_left(void) {
  int left = 0;
  pthread_mutex_lock(&registry_mu);
  for (weft_proc *p = registry; p; p = p->next) {
    if (!p->daemon)
      continue;
    siginfo_t si = {0};
    int r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT);
    if ((r == 0 && si.si_pid == p->pid) || (r < 0 && errno == ECHILD))
      continue; /* exited (and maybe reaped already) */
    left++;
  }
  pthread_mutex_unlock(&registry_mu);
  return left;
}

/* At exit, as Python's multiprocessing: terminate the daemon children,
 * give them a grace period, then kill what is left (what is left unreaped
 * is the kernel's to clean up as this process ends). */
static void end_daemons_at_exit(void) {
  /* After the non-daemon threads, which may still use the daemons (they
   * are waited for first, whichever layer installed its handler first). */
  weft__thread_wait_non_daemons();
  if (signal_daemons(SIGTERM) == 0)
    return;
  int64_t deadline = weft__now() + DAEMON_GRACE;
  while (daemons_left() > 0) {
    if (weft__now() >= deadline) {
      signal_daemons(SIGKILL);
      return;
    }
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
}

void weft__proc_reset_in_child(void) {
  pthread_mutex_init(&registry_mu, NULL);
  watcher->reset_in_child();
  /* The parent's children are not ours: their handles go dead here, and
   * what the watcher holds of them (pidfds) is let go (the memory stays,
   * for stray pointers). */
  for (weft_proc *p = registry; p; p = p->next) {
    p->magic = 0;
    watcher->close(p);
  }
  registry = NULL;
  starting = 0; /* a start in another thread is not this process's */
}
