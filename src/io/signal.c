/*
 * Signals as events: weft_signal_wait and weft_hub_dump_on_signal. See
 * include/weft/io.h.
 *
 * A wait reads a signalfd of its own, made for the call, through the same
 * loop as every fd operation (so it parks a task, polls in a thread, and
 * honours timeouts, cancellation and weft_io_close alike). Several waiters
 * for one signal each see it readable; the first read takes it, and the
 * others find their signalfd empty and wait on: each signal wakes one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <weft/hub.h>
#include <weft/io.h>

#include "../core/sigmask.h"
#include "../hub/timer.h"

/* The signalfds of the waits under way in this process, so that a child
 * made by fork closes its copies (they belong to the parent's waits, which
 * the child does not have, and would stay open for the child's life: a
 * cluster's workers are forks of a supervisor that waits for signals).
 * Each node is allocated by its wait, not kept in its frame: a task
 * hibernated while it waits (weft_task_opts.hibernate) has no frame that
 * others may read or write. */
struct live_fd {
  int fd;
  struct live_fd *prev, *next;
};
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct live_fd *live;
static pthread_once_t live_once = PTHREAD_ONCE_INIT;

static void close_live_in_child(void) {
  for (struct live_fd *l = live; l; l = l->next)
    close(l->fd);
  live = NULL;
  /* Another thread of the parent may have held it at the fork. */
  pthread_mutex_init(&live_mu, NULL);
}

static void install_close_in_child(void) {
  pthread_atfork(NULL, NULL, close_live_in_child);
}

static void live_add(struct live_fd *l) {
  pthread_once(&live_once, install_close_in_child);
  pthread_mutex_lock(&live_mu);
  l->prev = NULL;
  l->next = live;
  if (live)
    live->prev = l;
  live = l;
  pthread_mutex_unlock(&live_mu);
}

static void live_remove(struct live_fd *l) {
  pthread_mutex_lock(&live_mu);
  if (l->prev)
    l->prev->next = l->next;
  else
    live = l->next;
  if (l->next)
    l->next->prev = l->prev;
  pthread_mutex_unlock(&live_mu);
}

int weft_signal_wait(const sigset_t *set, int64_t timeout) {
  /* Both before the signals are blocked: a bad call changes nothing. */
  if (!set || weft__timeout_bad(timeout))
    return -EINVAL;
  struct live_fd *node = malloc(sizeof *node);
  if (!node)
    return -ENOMEM;
  /* Blocked first, so that the default action (often: end the process)
   * cannot take a signal that arrives before the read. Recorded as
   * weft's, so that a child process starts without them blocked. */
  int rc = weft__sigmask_block(set, NULL);
  if (rc < 0) {
    free(node);
    return rc;
  }
  int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    rc = -errno;
    free(node);
    return rc;
  }
  node->fd = fd;
  live_add(node);
  struct signalfd_siginfo info;
  ssize_t n = weft_io_read(fd, &info, sizeof info, timeout);
  live_remove(node);
  free(node);
  weft_io_close(fd);
  if (n < 0)
    return (int)n;
  return n == (ssize_t)sizeof info ? (int)info.ssi_signo : -EIO;
}

struct dumper {
  int signo, fd;
};

static void *dump_on_signal(void *arg) {
  struct dumper d = *(struct dumper *)arg;
  free(arg);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, d.signo);
  while (weft_signal_wait(&set, WEFT_FOREVER) == d.signo)
    weft_hub_dump(d.fd);
  return NULL;
}

int weft_hub_dump_on_signal(int signo, int fd) {
  sigset_t probe;
  sigemptyset(&probe);
  if (fd < 0 || signo == SIGKILL || signo == SIGSTOP ||
      sigaddset(&probe, signo) != 0)
    return fd < 0 ? -EBADF : -EINVAL;
  if (!weft_task_current())
    return -EPERM;
  /* Blocked now, not when the daemon first runs: a signal that comes
   * before then must wait for it, not end the process. */
  int rc = weft__sigmask_block(&probe, NULL);
  if (rc < 0)
    return rc;
  struct dumper *d = malloc(sizeof *d);
  if (!d)
    return -ENOMEM;
  *d = (struct dumper){signo, fd};
  rc = weft_task_spawn(NULL, dump_on_signal, d,
                       &(weft_task_opts){.name = "weft-dump-on-signal",
                                         .stack_size = 64 << 10,
                                         .daemon = true});
  if (rc < 0)
    free(d);
  return rc;
}
