/*
 * The SIGCHLD watcher (proc-private.h), for kernels without pidfds (before
 * Linux 5.3; some seccomp sandboxes and emulators refuse pidfd_open too),
 * or when WEFT_PROC_NO_PIDFD asks for it: weft learns that a child exited
 * from SIGCHLD, and reaps its own children by their pids, one by one.
 *
 * The handler. SIGCHLD belongs to the program: weft installs a handler
 * only when this watcher is chosen, as it starts its reaper (with the
 * first child, or weft_proc_subreaper; once per process), in front of the
 * disposition the program has then, unless that is weft's handler already
 * (inherited through a fork, with what it was in front of). It writes to an
 * eventfd that the reaper polls, then does what that disposition said: it calls
 * the program's handler (with SA_SIGINFO's arguments if that handler takes
 * them; once only, if it asked for SA_RESETHAND), or nothing (SIGCHLD's default
 * is to be ignored). It takes the previous handler's mask and flags, so that
 * the program's handler runs as it did before. A program that ignored SIGCHLD
 * (SIG_IGN) asked the kernel to reap its children for it: the handler keeps
 * that with SA_NOCLDWAIT (Linux still sends SIGCHLD then), so that the
 * program's own children are still never zombies, and weft's children lose
 * their exit codes, as they do with pidfds. The handler makes one write(2), and
 * keeps errno.
 *
 * The reaper: one thread, started with the first child, that sleeps in
 * poll(2) on the eventfd and, woken, looks at each child in its table with
 * weft__proc_try_reap, a waitid(P_PID, pid, WEXITED | WNOHANG) that reaps
 * the child if it has exited. Never waitpid(-1): the children the program
 * started itself (system, popen, a fork of its own) keep their statuses
 * for it. Signals merge (a SIGCHLD sent while one is pending is lost), so
 * a wake looks at every child in the table, not at the one the signal
 * names: a wake costs one waitid per child weft watches.
 *
 * A child may exit before it is in the table, even before the handler is
 * installed. So watch() installs the handler first, then looks at the
 * child once and puts it in the table, both under mu: an exit before that
 * look is seen by the look, and an exit after it sends a signal whose
 * wake leads to a look at the whole table, which takes mu, and so finds
 * the child there.
 *
 * Backstops: while it has children, the reaper also looks every second (a
 * program that blocks SIGCHLD in every thread, to read it from a signalfd,
 * say, never runs the handler), and every 100 ms once the handler is no
 * longer installed (the program replaced it).
 *
 * Joins: a joiner waits on its handle's `done` event, which whoever reaps
 * the child sets (the reaper, woken by the signal): a task parks only
 * itself, a thread sleeps on a futex. The reaper keeps watching a child
 * being joined, since its joiner cannot learn of the exit by itself.
 *
 * Signals: kill(2) by pid, holding the handle's guard. weft reaps only
 * under that guard, so while it is held and the handle is not reaped, the
 * pid is still this process's child's, a zombie at worst, and no other
 * process can have it, as long as weft alone reaps its children. A
 * program that reaps them behind weft's back (its own waitpid(-1), or
 * SIGCHLD ignored) breaks that: a waitid(WNOWAIT) first tells such a
 * child gone (ECHILD), and it is not signalled. Only if its pid went to
 * another child of this process before that look (the whole pid space
 * must wrap around meanwhile) could a signal go astray: pidfds alone rule
 * that out.
 *
 * It is a plain pthread, as the pidfd reaper is, and it blocks every
 * signal: SIGCHLD is handled on the program's threads.
 *
 * Lock order: mu, then a handle's guard, then the registry's mutex, as in
 * reaper.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/guard.h"
#include "../core/service-thread.h"
#include "../hub/timer.h"
#include "proc-private.h"

enum { BACKSTOP_MS = 1000, LOST_HANDLER_MS = 100, STRANGER_SWEEP_MS = 100 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static weft_proc **table; /* the watched handles; p->slot is p's index */
static int count, cap;    /* under mu */
static bool running;      /* the reaper thread is started; under mu */
static atomic_bool sweeping;

/* The eventfd that the handler writes to and the reaper polls; -1 while
 * no reaper runs in this process (the handler then only passes the signal
 * on). Read by the handler, so an atomic that is always lock-free. */
static atomic_int wake_fd = -1;

/* The disposition the program had before weft's handler. Written under
 * mu, while the handler is not installed (and so cannot start to run),
 * then installed; read only by the handler after. A child of fork
 * inherits the handler together with this memory. */
static struct sigaction previous;
static atomic_bool previous_spent; /* an SA_RESETHAND handler that ran */

static bool is_handler(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) ||
         (sa->sa_handler != SIG_DFL && sa->sa_handler != SIG_IGN);
}

/* Async-signal-safe: one write, and the program's handler. */
static void on_sigchld(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  int fd = atomic_load_explicit(&wake_fd, memory_order_relaxed);
  if (fd >= 0) {
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) < 0) {
      /* the counter is full: the reaper is due to wake anyway */
    }
  }
  if (is_handler(&previous) && (!(previous.sa_flags & SA_RESETHAND) ||
                                !atomic_exchange(&previous_spent, true))) {
    if (previous.sa_flags & SA_SIGINFO)
      previous.sa_sigaction(sig, si, uc);
    else
      previous.sa_handler(sig);
  }
  errno = saved;
}

static bool handler_in_place(void) {
  struct sigaction cur;
  return sigaction(SIGCHLD, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
         cur.sa_sigaction == on_sigchld;
}

/* Puts weft's handler in front of the program's disposition, unless it is
 * there already: never in front of itself, which would call itself. Called
 * with mu held, as the reaper starts. A program that changes SIGCHLD's
 * disposition at this very moment on another thread races with weft, as it
 * would with any other code that installs a handler. */
static void install_handler(void) {
  if (handler_in_place())
    return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigaction(SIGCHLD, NULL, &previous);
  atomic_store(&previous_spent, false);
  sa.sa_sigaction = on_sigchld;
  if (is_handler(&previous)) {
    /* The program's handler runs within weft's: with its own mask and
     * the flags that change how the signal comes. */
    sa.sa_mask = previous.sa_mask;
    sa.sa_flags =
        SA_SIGINFO |
        (previous.sa_flags &
         (SA_RESTART | SA_NOCLDSTOP | SA_NOCLDWAIT | SA_NODEFER | SA_ONSTACK));
  } else {
    /* Nothing ran before: no call may now fail with EINTR that SA_RESTART
     * restarts, and a stopped child is no news. */
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP |
                  (previous.sa_flags & SA_NOCLDWAIT);
    if (previous.sa_handler == SIG_IGN)
      sa.sa_flags |= SA_NOCLDWAIT; /* the kernel goes on reaping */
  }
  sigaction(SIGCHLD, &sa, NULL);
}

static void wake(void) {
  int fd = atomic_load(&wake_fd);
  uint64_t one = 1;
  if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
    /* the counter is full: the reaper is due to wake anyway */
  }
}

/* Takes p out of the table (the reaper's reference is then the caller's
 * to drop). Called with mu held. */
static void take_out(weft_proc *p) {
  int i = p->slot;
  weft_proc *last = table[--count];
  table[i] = last;
  last->slot = i;
  p->slot = -1;
}

/* Reaps every child in the table that has exited, and lets go of it.
 * Returns how many are left. */
static int look_at_all(void) {
  pthread_mutex_lock(&mu);
  for (int i = 0; i < count;) {
    weft_proc *p = table[i];
    if (!weft__proc_try_reap(p)) {
      i++;
      continue;
    }
    take_out(p); /* table[i] is another child now: looked at next */
    weft__proc_unref(p);
  }
  int left = count;
  pthread_mutex_unlock(&mu);
  return left;
}

static void *reap(void *arg) {
  int fd = (int)(intptr_t)arg;
  int left = 0;
  for (;;) {
    int timeout = -1;
    if (atomic_load(&sweeping))
      timeout = STRANGER_SWEEP_MS;
    else if (left > 0)
      timeout = handler_in_place() ? BACKSTOP_MS : LOST_HANDLER_MS;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, timeout) > 0) {
      uint64_t n;
      if (read(fd, &n, sizeof n) < 0) {
        /* nothing to take: the wake was taken with an earlier read */
      }
    }
    left = look_at_all();
    if (atomic_load(&sweeping))
      weft__proc_reap_strangers();
  }
  return NULL;
}

/* Starts the reaper, and installs the handler, if not yet done. Called
 * with mu held. */
static int start(void) {
  if (running)
    return 0;
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0)
    return -errno;
  int rc = weft__service_thread_start(reap, (void *)(intptr_t)fd);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  atomic_store(&wake_fd, fd); /* before the handler, which reads it */
  running = true;
  install_handler();
  return 0;
}

static int watch(weft_proc *p) {
  pthread_mutex_lock(&mu);
  int rc = start();
  if (rc == 0 && count == cap) {
    int grown_cap = cap ? cap * 2 : 64;
    weft_proc **grown = realloc(table, (size_t)grown_cap * sizeof *grown);
    if (grown) {
      table = grown;
      cap = grown_cap;
    } else {
      rc = -ENOMEM;
    }
  }
  /* Looked at once here, with the handler installed and under mu: an
   * exit that came before (its signal maybe before the handler, or its
   * wake taken by a look before the table held p) is seen now; one that
   * comes after wakes the reaper, whose look finds p in the table. */
  bool first = false;
  if (rc == 0 && !weft__proc_try_reap(p)) {
    p->slot = count;
    table[count++] = p;
    atomic_fetch_add(&p->refs, 1);
    first = count == 1;
  }
  pthread_mutex_unlock(&mu);
  /* A reaper with no child sleeps without a backstop: it must look once,
   * to sleep with one from now on. */
  if (first)
    wake();
  return rc;
}

/* A join: the reaper reaps, and sets p's done event, which the joiner
 * waits on. */
static int join_wait(weft_proc *p, int64_t deadline) {
  do {
    int64_t left = WEFT_FOREVER;
    if (deadline != INT64_MAX) {
      left = deadline - weft__now();
      if (left <= 0)
        return weft__timed_out(deadline);
    }
    int rc = weft_event_wait(&p->done, left);
    if (rc < 0 && rc != -ETIMEDOUT)
      return rc; /* -ECANCELED */
  } while (!weft__proc_try_reap(p));
  return 0;
}

static int open_nothing(weft_proc *p) {
  p->pidfd = -1;
  return 0;
}

static void close_nothing(weft_proc *p) { (void)p; }

static int send_signal(weft_proc *p, int signo) {
  int rc = 0;
  weft__guard_lock(&p->guard);
  if (!p->reaped) {
    /* Still this process's child, and still running (a zombie needs no
     * signal): then, under the guard, its pid is nobody else's. */
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == 0 && kill(p->pid, signo) < 0 && errno != ESRCH)
      rc = -errno;
  }
  weft__guard_unlock(&p->guard);
  return rc;
}

static void sweep_strangers(void) {
  pthread_mutex_lock(&mu);
  atomic_store(&sweeping, true);
  if (start() == 0) /* else the next child starts it */
    wake();
  pthread_mutex_unlock(&mu);
}

static void lock(void) { pthread_mutex_lock(&mu); }

static void unlock(void) { pthread_mutex_unlock(&mu); }

static void reset_in_child(void) {
  pthread_mutex_init(&mu, NULL);
  /* The parent's reaper and eventfd are the parent's. The handler stays
   * installed (the child inherits it), and finds no eventfd until this
   * process starts a reaper of its own; if the program replaced it
   * meanwhile, that start installs it again, in front. */
  int fd = atomic_exchange(&wake_fd, -1);
  if (fd >= 0)
    close(fd);
  free(table);
  table = NULL;
  count = cap = 0;
  running = false;
  atomic_store(&sweeping, false);
}

const weft__proc_watcher weft__proc_sigchld_watcher = {
    .name = "sigchld",
    .open = open_nothing,
    .close = close_nothing,
    .watch = watch,
    .wait = join_wait,
    .signal = send_signal,
    .sweep_strangers = sweep_strangers,
    .lock = lock,
    .unlock = unlock,
    .reset_in_child = reset_in_child,
};
