/*
 * The pidfd watcher (proc-private.h), the default: each child gets a
 * pidfd, which the kernel makes readable when the child exits. A join
 * waits on the pidfd itself: in a task, its hub polls it as any fd and
 * only that task waits; a thread sleeps in poll(). A signal goes through
 * the pidfd, which names the child even once its pid is another's.
 *
 * The reaper: one thread, started with the first child, that watches the
 * pidfds of the children nobody is joining, in an epoll set, and reaps each
 * child as it exits (weft__proc_try_reap), so that no child stays a
 * zombie, joined or not, its handle freed or not. Then it lets go of the
 * child (the epoll entry, its reference).
 *
 * A child being joined is not watched: its joiner, woken by the same exit,
 * reaps it, and a reaper woken as well would only compete with it for the
 * CPU (a start and join took 1.2 times a fork and waitpid with the reaper
 * watching every child, about 1.0 without). The first joiner takes the
 * child out of the set; the last, leaving without reaping it (a timeout, a
 * cancellation), puts it back. And a child that exits before its parent
 * turns to join it (a short job) is given a millisecond's grace before the
 * reaper looks, by which time the joiner has usually taken it.
 *
 * Nor does a new child go into the set at once: it waits in the list
 * `unseen` for the reaper's next look, at most TICK_MS away, so that a
 * child joined soon after its start (most are) costs no epoll_ctl in and
 * out (about 2% of a fork and waitpid, measured). For that the reaper looks
 * every TICK_MS while children are started, and for LINGER_TICKS looks
 * after the last start (up to a fifth of a second); then it sleeps until
 * an event or a sweep's timeout, and the next start wakes it (`asleep`,
 * the eventfd). A child that the last joiner leaves unreaped goes back the
 * same way. So a child dropped unjoined is reaped within TICK_MS and the
 * grace of its exit.
 *
 * The set knows a child by its pidfd's number, and the table `by_fd` maps
 * the number to the handle, under `mu`: an event that comes after the
 * child left the set finds no handle (or a newer child's, which a look
 * that reaps nothing does not harm), never a freed one.
 *
 * A subreaper (weft_proc_subreaper) also inherits orphans weft never
 * started; they have no pidfd here, so the reaper looks for them at once
 * and then every STRANGER_SWEEP_MS, and reaps those that exited, leaving
 * weft's own (weft__proc_reap_strangers).
 *
 * It is a plain pthread, not a weft thread: nobody joins it, it ends with
 * the process, and it blocks every signal, which stay the program's.
 *
 * Lock order: mu, then a handle's guard, then the registry's mutex.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft/io.h>

#include "../core/service-thread.h"
#include "../hub/timer.h"
#include "proc-private.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

enum {
  STRANGER_SWEEP_MS = 100,
  EVENTS = 64,
  GRACE_NS = 1000000,
  TICK_MS = 10,
  LINGER_TICKS = 20,
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int epfd = -1;
static int wake_fd = -1;  /* an eventfd in the set: a look to take now */
static weft_proc **by_fd; /* the watched handles, by pidfd; under mu */
static int by_fd_cap;
static atomic_bool sweeping;
/* Under mu: the children not looked at yet (see above), with the
 * reaper's reference; how many were ever put there; whether the reaper
 * sleeps with no deadline, to be woken by the next. */
static weft_proc *unseen;
static unsigned long unseen_count;
static bool asleep;

/* Takes p, which is there, out of `unseen`. Called with mu held. */
static void leave_unseen(weft_proc *p) {
  if (p->unseen_prev)
    p->unseen_prev->unseen_next = p->unseen_next;
  else
    unseen = p->unseen_next;
  if (p->unseen_next)
    p->unseen_next->unseen_prev = p->unseen_prev;
  p->unseen = false;
}

/* Takes p out of the set and the table, or out of `unseen`; returns
 * whether it was in either (the reaper's reference is then the caller's to
 * drop). Called with mu held. */
static bool take_out(weft_proc *p) {
  if (p->unseen) {
    leave_unseen(p);
    return true;
  }
  if (p->pidfd >= by_fd_cap || by_fd[p->pidfd] != p)
    return false;
  epoll_ctl(epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
  by_fd[p->pidfd] = NULL;
  return true;
}

/* Puts p in the set and the table; the caller gives it the reaper's
 * reference. Called with mu held, the reaper started. */
static int enter_set(weft_proc *p) {
  if (p->pidfd >= by_fd_cap) {
    int cap = by_fd_cap ? by_fd_cap : 64;
    while (cap <= p->pidfd)
      cap *= 2;
    weft_proc **grown = realloc(by_fd, (size_t)cap * sizeof *grown);
    if (!grown)
      return -ENOMEM;
    for (int i = by_fd_cap; i < cap; i++)
      grown[i] = NULL;
    by_fd = grown;
    by_fd_cap = cap;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = p->pidfd};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, p->pidfd, &ev) < 0)
    return -errno;
  by_fd[p->pidfd] = p;
  return 0;
}

static void wake_reaper(void) {
  uint64_t one = 1;
  if (write(wake_fd, &one, sizeof one) < 0) {
    /* the counter is full: the reaper is due to wake anyway */
  }
}

/* Puts p in `unseen`, with the reaper's reference, for its next look,
 * and wakes it if it would not look soon. Called with mu held, the reaper
 * started. */
static void add_unseen(weft_proc *p) {
  atomic_fetch_add(&p->refs, 1);
  p->unseen = true;
  p->unseen_prev = NULL;
  p->unseen_next = unseen;
  if (unseen)
    unseen->unseen_prev = p;
  unseen = p;
  unseen_count++;
  if (asleep) {
    asleep = false;
    wake_reaper();
  }
}

/* The reaper's look at the children put in `unseen` since its last: one
 * reaped already (joined after it exited, say) leaves, its reference let
 * go; the others go into the set (an exited one is then ready at once),
 * their references with them, or, if that fails (no memory), wait for the
 * next look, which reaps them if they exited. Then the timeout of the
 * reaper's next wait. Takes mu. */
static int look_at_unseen(unsigned long *seen_count, int *idle_ticks) {
  weft_proc *reaped = NULL; /* chained by unseen_next, to unref unlocked */
  pthread_mutex_lock(&mu);
  for (weft_proc *p = unseen, *next; p; p = next) {
    next = p->unseen_next;
    if (weft__proc_try_reap(p)) {
      leave_unseen(p);
      p->unseen_next = reaped;
      reaped = p;
    } else if (enter_set(p) == 0) {
      leave_unseen(p);
    }
  }
  if (unseen_count != *seen_count) {
    *seen_count = unseen_count;
    *idle_ticks = 0;
  } else if (*idle_ticks < LINGER_TICKS) {
    ++*idle_ticks;
  }
  int timeout = -1;
  if (unseen || *idle_ticks < LINGER_TICKS)
    timeout = TICK_MS;
  else if (atomic_load(&sweeping))
    timeout = STRANGER_SWEEP_MS;
  asleep = timeout < 0 || timeout > TICK_MS; /* the next start wakes it */
  pthread_mutex_unlock(&mu);
  while (reaped) {
    weft_proc *p = reaped;
    reaped = p->unseen_next;
    weft__proc_unref(p);
  }
  return timeout;
}

static void *reap(void *arg) {
  int fd = (int)(intptr_t)arg;
  struct epoll_event ev[EVENTS];
  unsigned long seen_count = 0;
  int idle_ticks = 0;
  for (;;) {
    int timeout = look_at_unseen(&seen_count, &idle_ticks);
    int n = epoll_wait(fd, ev, EVENTS, timeout);
    if (n < 0 && errno != EINTR)
      return NULL; /* cannot happen with a valid set and buffer */
    if (n > 0) {
      /* A child that exits just as its parent turns to join it (a short
       * job) is best left to the joiner, which is about to take it out of
       * the set: a moment's grace keeps the reaper off the CPU then. */
      struct timespec grace = {0, GRACE_NS};
      nanosleep(&grace, NULL);
    }
    for (int i = 0; i < n; i++) {
      int pidfd = ev[i].data.fd;
      if (pidfd == wake_fd) {
        uint64_t count;
        if (read(wake_fd, &count, sizeof count) < 0) {
          /* nothing to take: another read took it */
        }
        continue;
      }
      pthread_mutex_lock(&mu);
      weft_proc *p = pidfd < by_fd_cap ? by_fd[pidfd] : NULL;
      bool done = p && weft__proc_try_reap(p) && take_out(p);
      pthread_mutex_unlock(&mu);
      if (done)
        weft__proc_unref(p);
    }
    if (atomic_load(&sweeping))
      weft__proc_reap_strangers();
  }
}

/* Starts the reaper if it is not running. Called with mu held. */
static int start(void) {
  if (epfd >= 0)
    return 0;
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0)
    return -errno;
  int wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event wev = {.events = EPOLLIN, .data.fd = wfd};
  if (wfd < 0 || epoll_ctl(fd, EPOLL_CTL_ADD, wfd, &wev) < 0) {
    int err = errno;
    if (wfd >= 0)
      close(wfd);
    close(fd);
    return -err;
  }
  epfd = fd; /* before the thread, which reads them */
  wake_fd = wfd;
  int rc = weft__service_thread_start(reap, (void *)(intptr_t)fd);
  if (rc < 0) {
    close(wfd);
    close(fd);
    epfd = wake_fd = -1;
    return rc;
  }
  return 0;
}

/* A new child: into `unseen`, with the reaper's reference, for its next
 * look (see above). */
static int watch(weft_proc *p) {
  if (p->pidfd < 0) { /* reaped before it had a pidfd (open_pidfd) */
    weft__proc_try_reap(p);
    return 0;
  }
  pthread_mutex_lock(&mu);
  int rc = start();
  if (rc == 0)
    add_unseen(p);
  pthread_mutex_unlock(&mu);
  return rc;
}

static void join_begins(weft_proc *p) {
  pthread_mutex_lock(&mu);
  bool had = p->joiners++ == 0 && take_out(p);
  pthread_mutex_unlock(&mu);
  if (had)
    weft__proc_unref(p); /* the joiner's caller holds the user's */
}

static void join_ends(weft_proc *p) {
  pthread_mutex_lock(&mu);
  /* The last joiner leaving a child it did not reap: the reaper watches
   * it again, from its next look. */
  if (--p->joiners == 0 && !weft__proc_try_reap(p))
    add_unseen(p);
  pthread_mutex_unlock(&mu);
}

/* Waits until p, not reaped when looked at last, is reaped, or the
 * deadline; 0 or the wait's error. */
static int wait_reaped(weft_proc *p, int64_t deadline) {
  do {
    int64_t left = WEFT_FOREVER;
    if (deadline != INT64_MAX) {
      left = deadline - weft__now();
      if (left <= 0)
        return weft__timed_out(deadline);
    }
    /* Wait on the pidfd itself, which the kernel makes readable when the
     * child exits: no hop through the reaper. A second task of one hub
     * joining the same child waits for the reap instead. */
    int rc = weft_io_wait(p->pidfd, POLLIN, left);
    if (rc == -EBUSY) /* in slices: the other may leave before the exit */
      rc = weft_event_wait(
          &p->done, left >= 0 && left < WEFT_MS(10) ? left : WEFT_MS(10));
    if (rc < 0 && rc != -ETIMEDOUT && rc != -EINTR)
      return rc; /* -ECANCELED, or the poller's trouble */
  } while (!weft__proc_try_reap(p));
  return 0;
}

/* A join: the reaper lets go of p while it waits (its joiner reaps it). */
static int join_wait(weft_proc *p, int64_t deadline) {
  join_begins(p);
  int rc = wait_reaped(p, deadline);
  join_ends(p);
  return rc;
}

bool weft__proc_pidfd_usable(void) {
  /* On this process itself, which always exists: a failure says what
   * the kernel (or a sandbox's seccomp filter) thinks of the call. Any
   * other errno (EMFILE, say) means that the call is there. */
  int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
  if (fd < 0)
    return errno != ENOSYS && errno != EPERM && errno != EACCES;
  /* Signal 0 checks the sending without sending anything. */
  bool ok = syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) == 0 ||
            (errno != ENOSYS && errno != EPERM && errno != EACCES);
  close(fd);
  return ok;
}

static int open_pidfd(weft_proc *p) {
  p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
  if (p->pidfd < 0 && errno == ESRCH) {
    /* Exited and reaped already, by a SIGCHLD handler of the program's
     * (or SIGCHLD ignored): a child all the same, whose code is lost. */
    p->exitcode = -SIGKILL;
    p->reaped = true;
    return 0;
  }
  return p->pidfd < 0 ? -errno : 0;
}

static void close_pidfd(weft_proc *p) {
  if (p->pidfd >= 0)
    close(p->pidfd);
  p->pidfd = -1;
}

/* Through the pidfd: once the child is reaped its pid may be another
 * process's, but the pidfd still names the dead child (-ESRCH). */
static int send_signal(weft_proc *p, int signo) {
  if (p->pidfd < 0) /* reaped before it had a pidfd: gone */
    return 0;
  if (syscall(SYS_pidfd_send_signal, p->pidfd, signo, NULL, 0) < 0 &&
      errno != ESRCH)
    return -errno;
  return 0;
}

static void sweep_strangers(void) {
  pthread_mutex_lock(&mu);
  atomic_store(&sweeping, true);
  if (start() == 0) /* else the next child starts it */
    wake_reaper();
  pthread_mutex_unlock(&mu);
}

static void lock(void) { pthread_mutex_lock(&mu); }

static void unlock(void) { pthread_mutex_unlock(&mu); }

static void reset_in_child(void) {
  pthread_mutex_init(&mu, NULL);
  if (epfd >= 0) { /* the parent's reaper watches the parent's children */
    close(epfd);
    close(wake_fd);
  }
  epfd = wake_fd = -1;
  free(by_fd);
  by_fd = NULL;
  by_fd_cap = 0;
  unseen = NULL; /* the parent's children */
  unseen_count = 0;
  asleep = false;
  atomic_store(&sweeping, false);
}

const weft__proc_watcher weft__proc_pidfd_watcher = {
    .name = "pidfd",
    .open = open_pidfd,
    .close = close_pidfd,
    .watch = watch,
    .wait = join_wait,
    .signal = send_signal,
    .sweep_strangers = sweep_strangers,
    .lock = lock,
    .unlock = unlock,
    .reset_in_child = reset_in_child,
};
