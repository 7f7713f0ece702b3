/*
 * Tasks waiting on fds: the hub's side of cooperative I/O. See
 * hub-private.h.
 *
 * Each wait arms the fd in the poller (one-shot) for what its parked
 * waiters want, the new one included; the hub looks the waiters up by fd
 * when the poller reports it, and arms the fd again for those still
 * parked. So an fd is armed exactly while some task waits on it: a waiter
 * woken by the report finds the fd disarmed already, and one that leaves
 * without it (a timeout, a cancellation) arms the fd for those still
 * waiting, or disarms and forgets it. A waiter clears its slot when it
 * next runs; until then the slot still names it, so a slot counts as
 * taken only while its task is parked, and a close reaches a waiter that
 * was woken but has not run yet.
 *
 * Arming is free with epoll when the poller knows the fd is not ready (see
 * poller-epoll.c): the io calls tell it what their tries found
 * (weft__hub_fd_not_ready), and which fds are new (weft__hub_fd_opened).
 * Waits end only on the poller's reports, never on its hints, so a wait
 * returns what the kernel said was ready.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fdtable.h"
#include "hub-private.h"

static weft__fd_waiters *waiters_of(weft__hub *h, int fd, bool grow) {
  if (fd < h->fdw_cap)
    return &h->fdw[fd];
  void *w = h->fdw;
  if (!grow || !weft__fd_array_grow(&w, &h->fdw_cap, sizeof *h->fdw, fd))
    return NULL;
  h->fdw = w;
  return &h->fdw[fd];
}

static bool parked(const weft_task *t) {
  return t && t->state == WEFT__TASK_PARKED;
}

/* What the fd's parked waiters wait for. */
static unsigned parked_want(const weft__fd_waiters *w) {
  bool r = parked(w->reader);
  return (r ? WEFT__POLL_IN : 0) | (parked(w->writer) ? WEFT__POLL_OUT : 0) |
         (r && w->exclusive ? WEFT__POLL_EXCLUSIVE : 0);
}

int weft__hub_wait_fd(weft_task *t, int fd, unsigned events, int64_t deadline) {
  weft__hub *h = t->hub;
  bool read = events & WEFT__POLL_IN, write = events & WEFT__POLL_OUT;
  if (fd < 0 || (!read && !write) ||
      (events &
       ~(unsigned)(WEFT__POLL_IN | WEFT__POLL_OUT | WEFT__POLL_EXCLUSIVE)))
    return fd < 0 ? -EBADF : -EINVAL;
  int rc = weft__task_may_block(t);
  if (rc < 0)
    return rc;
  weft__fd_waiters *w = waiters_of(h, fd, true);
  if (!w)
    return fd > (1 << 29) ? -EBADF : -ENOMEM;
  /* A woken waiter that has not run yet still sits in its slot: it does not
   * count, and its cleanup will leave the slot to the new one. */
  if ((read && parked(w->reader)) || (write && parked(w->writer)))
    return -EBUSY;
  /* On failure the poller changed nothing: the others stay armed. */
  rc = weft__poller_set(h->poller, fd, parked_want(w) | events, NULL);
  if (rc < 0)
    return rc;
  if (read) {
    w->reader = t;
    w->exclusive = events & WEFT__POLL_EXCLUSIVE;
  }
  if (write)
    w->writer = t;
  h->fd_waiters++;
  h->daemon_fd_waiters += t->daemon;
  t->ready = 0;
  t->fd_parked = true;
  rc = weft__task_park(t, read ? "a read wait" : "a write wait", deadline);
  t->fd_parked = false;
  h->fd_waiters--;
  h->daemon_fd_waiters -= t->daemon;
  /* The waiter slots may already be cleared (a close); the table may have
   * moved while parked. */
  w = waiters_of(h, fd, false);
  if (w) {
    if (w->reader == t)
      w->reader = NULL;
    if (w->writer == t)
      w->writer = NULL;
    /* Left without its report (a timeout, a cancellation): the fd may still
     * be armed for it. So it is armed for those still waiting, or
     * forgotten: one system call, off the path where reports come. Kept
     * registered for nobody, the fd would go on being reported: for a new
     * file with the same number too, should this one be closed with
     * close(2) while a dup keeps it alive, as epoll keeps it then, and the
     * next wait on the number trust the registration (an fd that timed out
     * has had its hints cleared by the tries before). */
    if (rc < 0)
      weft__poller_set(h->poller, fd, parked_want(w), NULL);
  }
  return rc < 0 ? rc : (int)t->ready;
}

/* Called by the hub for each event the poller reports. */
void weft__hub_fd_prefetch(weft__hub *h, int fd) {
  if (fd >= 0 && fd < h->fdw_cap) {
    weft_task *r = h->fdw[fd].reader, *w = h->fdw[fd].writer;
    if (r)
      __builtin_prefetch(&r->ready, 1);
    if (w && w != r)
      __builtin_prefetch(&w->ready, 1);
  }
}

void weft__hub_fd_ready(weft__hub *h, int fd, unsigned got) {
  weft__fd_waiters *w = waiters_of(h, fd, false);
  if (!w)
    return;
  bool broken = got & (WEFT__POLL_ERR | WEFT__POLL_HUP);
  weft_task *r = w->reader, *wr = w->writer;
  if (r && (broken || (got & WEFT__POLL_IN))) {
    r->ready |= got;
    weft__task_wake(r, 0);
  }
  /* One task may be both reader and writer; waking is idempotent. */
  if (wr && (broken || (got & WEFT__POLL_OUT))) {
    wr->ready |= got;
    weft__task_wake(wr, 0);
  }
  /* The report disarmed the fd: arm it again for whoever still waits (a
   * writer when only reading became possible). Should that fail, they
   * must not wait for a report that cannot come. */
  unsigned want = parked_want(w);
  if (want) {
    int rc = weft__poller_set(h->poller, fd, want, NULL);
    if (rc < 0) {
      if (parked(w->reader))
        weft__task_wake(w->reader, rc);
      if (parked(w->writer))
        weft__task_wake(w->writer, rc);
    }
  }
}

enum { WAIT_FIRST_RUN = 7 };

bool weft__hub_fd_wait_first(weft__hub *h, int fd, unsigned dir,
                             unsigned kind) {
  weft__fd_waiters *w = fd >= 0 ? waiters_of(h, fd, false) : NULL;
  int d = dir == WEFT__POLL_OUT;
  uint8_t *g = w ? &w->wait_first[d] : NULL;
  if (!g || *g == 0 || w->wait_first_kind[d] != kind)
    return false;
  (*g)--;
  return true;
}

void weft__hub_fd_not_ready(weft__hub *h, int fd, unsigned dir,
                            bool short_read) {
  weft__poller_not_ready(h->poller, fd, dir, short_read);
}

bool weft__hub_fd_known_not_ready(weft__hub *h, int fd, unsigned dir) {
  return weft__poller_known_not_ready(h->poller, fd, dir);
}

void weft__hub_fd_maybe_ready(weft__hub *h, int fd, unsigned dir) {
  weft__poller_maybe_ready(h->poller, fd, dir);
}

void weft__hub_fd_opened(weft__hub *h, int fd) {
  weft__poller_doubt(h->poller, fd);
}

void weft__hub_fd_tried(weft__hub *h, int fd, unsigned dir, unsigned kind,
                        bool blocked) {
  weft__fd_waiters *w = waiters_of(h, fd, blocked);
  int d = dir == WEFT__POLL_OUT;
  if (w) {
    w->wait_first[d] = blocked ? WAIT_FIRST_RUN : 0;
    w->wait_first_kind[d] = blocked ? (uint8_t)kind : 0;
  }
}

/* Makes t's wait on a closed fd return -EBADF, whether t is still parked
 * or was woken (ready) and has not run yet: either way it must not go on
 * to use the fd number, which a new file may get at once. */
static void wake_closed(weft_task *t) {
  t->ready = 0;
  if (t->state == WEFT__TASK_PARKED)
    weft__task_wake(t, -EBADF);
  else
    t->wake_code = -EBADF;
}

void weft__hub_forget_fd(weft__hub *h, int fd) {
  weft__fd_waiters *w = waiters_of(h, fd, false);
  if (w) {
    weft_task *r = w->reader, *wr = w->writer;
    *w = (weft__fd_waiters){0};
    if (r)
      wake_closed(r);
    if (wr && wr != r)
      wake_closed(wr);
  }
  weft__poller_set(h->poller, fd, 0, NULL);
}
