/*
 * Tasks waiting on fds: the hub's side of cooperative I/O. See
 * hub-private.h.
 *
 * The poller watches an fd exactly while a task waits on it, for the union
 * of what its reader and writer wait for; the hub looks the waiters up by
 * fd when the poller reports it. A waiter that leaves for any reason
 * (ready, timeout, cancellation, close) takes its interest with it, when it
 * next runs: until then its slot still names it, so a slot counts as taken
 * only while its task is parked, and a close reaches a waiter that was
 * woken but has not run yet.
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

/* Tells the poller what the fd's waiters want now. */
static int update_interest(weft__hub *h, int fd, const weft__fd_waiters *w) {
  unsigned want =
      (w->reader ? WEFT__POLL_IN : 0) | (w->writer ? WEFT__POLL_OUT : 0);
  return weft__poller_set(h->poller, fd, want, NULL);
}

int weft__hub_wait_fd(weft_task *t, int fd, unsigned events, int64_t deadline) {
  weft__hub *h = t->hub;
  bool read = events & WEFT__POLL_IN, write = events & WEFT__POLL_OUT;
  if (fd < 0 || (!read && !write) ||
      (events & ~(unsigned)(WEFT__POLL_IN | WEFT__POLL_OUT)))
    return fd < 0 ? -EBADF : -EINVAL;
  int rc = weft__task_may_block(t);
  if (rc < 0)
    return rc;
  weft__fd_waiters *w = waiters_of(h, fd, true);
  if (!w)
    return fd > (1 << 29) ? -EBADF : -ENOMEM;
  /* A woken waiter that has not run yet still sits in its slot: it does not
   * count, and its cleanup will leave the slot to the new one. */
  if ((read && w->reader && w->reader->state == WEFT__TASK_PARKED) ||
      (write && w->writer && w->writer->state == WEFT__TASK_PARKED))
    return -EBUSY;
  if (read)
    w->reader = t;
  if (write)
    w->writer = t;
  rc = update_interest(h, fd, w);
  if (rc < 0) {
    if (read)
      w->reader = NULL;
    if (write)
      w->writer = NULL;
    update_interest(h, fd, w);
    return rc;
  }
  h->fd_waiters++;
  t->ready = 0;
  rc = weft__task_park(t, read ? "a read wait" : "a write wait", deadline);
  h->fd_waiters--;
  /* The waiter slots may already be cleared (a close); the table may have
   * moved while parked. */
  w = waiters_of(h, fd, false);
  if (w) {
    if (w->reader == t)
      w->reader = NULL;
    if (w->writer == t)
      w->writer = NULL;
    update_interest(h, fd, w);
  }
  return rc < 0 ? rc : (int)t->ready;
}

/* Called by the hub for each event the poller reports. */
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
    w->reader = w->writer = NULL;
    if (r)
      wake_closed(r);
    if (wr && wr != r)
      wake_closed(wr);
  }
  weft__poller_set(h->poller, fd, 0, NULL);
}
