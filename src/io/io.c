/*
 * Cooperative waits on fds, and a close that wakes the waiters. See
 * include/weft/io.h. Inside a task the hub parks the task
 * (src/hub/fdwait.c); outside, poll(2) blocks the thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <unistd.h>
#include <weft/io.h>

#include "../hub/hub-private.h"
#include "../hub/thread-cancel.h"
#include "io-private.h"

unsigned weft__io_poller_events(unsigned io) {
  return ((io & WEFT_IO_READ) ? WEFT__POLL_IN : 0) |
         ((io & WEFT_IO_WRITE) ? WEFT__POLL_OUT : 0) |
         ((io & WEFT__IO_EXCLUSIVE) ? WEFT__POLL_EXCLUSIVE : 0);
}

unsigned weft__io_events(unsigned asked, unsigned got) {
  if (got & (WEFT__POLL_ERR | WEFT__POLL_HUP))
    return asked;
  return asked & (((got & WEFT__POLL_IN) ? WEFT_IO_READ : 0) |
                  ((got & WEFT__POLL_OUT) ? WEFT_IO_WRITE : 0));
}

int weft__io_wait_thread(int fd, unsigned events, int64_t deadline) {
  /* A cancellable thread (thread-cancel.h) polls its eventfd beside the
   * fd: a cancellation makes it readable for good. */
  struct pollfd ps[2] = {
      {.fd = fd,
       .events = (short)(((events & WEFT_IO_READ) ? POLLIN : 0) |
                         ((events & WEFT_IO_WRITE) ? POLLOUT : 0))},
      {.fd = weft__thread_cancel_self.efd, .events = POLLIN}};
  struct pollfd *p = &ps[0];
  nfds_t n_fds = weft__thread_cancellable() ? 2 : 1;
  for (;;) {
    int n = poll(ps, n_fds, weft__ms_until(deadline));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      return deadline == 0 ? -ETIMEDOUT : weft__timed_out(deadline);
    if (p->revents & POLLNVAL)
      return -EBADF;
    unsigned got = ((p->revents & POLLIN) ? WEFT__POLL_IN : 0) |
                   ((p->revents & POLLOUT) ? WEFT__POLL_OUT : 0) |
                   ((p->revents & POLLERR) ? WEFT__POLL_ERR : 0) |
                   ((p->revents & POLLHUP) ? WEFT__POLL_HUP : 0);
    unsigned ready = weft__io_events(events, got);
    if (ready)
      return (int)ready;
    if (ps[1].revents) /* ready is still an answer; waiting is not */
      return -ECANCELED;
  }
}

int weft__io_make_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0)
    return -errno;
  if (fl & O_NONBLOCK)
    return 0;
  if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -errno;
  return 1;
}

int weft__io_wait_until(weft_task *self, int fd, unsigned events,
                        int64_t deadline) {
  unsigned asked = events & (WEFT_IO_READ | WEFT_IO_WRITE);
  if (!self)
    return weft__io_wait_thread(fd, asked, deadline);
  int rc =
      weft__hub_wait_fd(self, fd, weft__io_poller_events(events), deadline);
  return rc < 0 ? rc : (int)weft__io_events(asked, (unsigned)rc);
}

/* The guess kind of the data calls in direction io (WEFT_IO_READ or
 * WEFT_IO_WRITE): weft's own and a caller's (WEFT_IO_GUESS) alike. */
static unsigned data_kind(unsigned io) {
  return io == WEFT_IO_READ ? WEFT__IO_READS : WEFT__IO_WRITES;
}

int weft_io_wait(int fd, unsigned events, int64_t timeout) {
  bool guess = events & WEFT_IO_GUESS;
  events &= ~WEFT_IO_GUESS;
  if (events == 0 || (events & ~(WEFT_IO_READ | WEFT_IO_WRITE)) ||
      (guess && events == (WEFT_IO_READ | WEFT_IO_WRITE)) ||
      weft__timeout_bad(timeout))
    return -EINVAL;
  if (fd < 0)
    return -EBADF;
  weft_task *self = weft__task_running();
  if (guess) {
    /* The hub's guess, and no sign of readiness since the evidence that
     * fd was drained: then the wait is free, and the call it saves would
     * most likely have failed. */
    unsigned pdir = weft__io_poller_events(events);
    if (!self || timeout == 0 || self->cancelled ||
        !weft__hub_fd_known_not_ready(self->hub, fd, pdir) ||
        !weft__hub_fd_wait_first(self->hub, fd, pdir, data_kind(events)))
      return 0;
  }
  /* A poll (0) never blocks, in a task or not: poll(2) itself. */
  if (timeout == 0)
    return weft__io_wait_thread(fd, events, 0);
  if (self && self->cancelled) {
    /* Cancelled: ready is still an answer; waiting is not. */
    int rc = weft__io_wait_thread(fd, events, 0);
    return rc == -ETIMEDOUT ? -ECANCELED : rc;
  }
  int64_t deadline = weft__deadline_after(timeout);
  /* The caller's deadline has passed (weft_deadline_set): readiness is
   * still an answer, as for any call that need not wait. */
  if (atomic_load_explicit(&weft__deadlines_used, memory_order_relaxed) &&
      deadline <= weft__now()) {
    int rc = weft__io_wait_thread(fd, events, 0);
    return rc == -ETIMEDOUT ? weft__timed_out(deadline) : rc;
  }
  return weft__io_wait_until(self, fd, events, deadline);
}

int weft_io_found(int fd, unsigned events, int found) {
  if (events == 0 || (events & ~(WEFT_IO_READ | WEFT_IO_WRITE)) ||
      found < WEFT_IO_FOUND_NOT_READY || found > WEFT_IO_FOUND_READY ||
      (found == WEFT_IO_FOUND_SHORT_READ && events != WEFT_IO_READ))
    return -EINVAL;
  if (fd < 0)
    return -EBADF;
  weft_task *self = weft__task_running();
  if (!self)
    return 0;
  for (unsigned io = WEFT_IO_READ; io <= WEFT_IO_WRITE; io <<= 1) {
    if (!(events & io))
      continue;
    unsigned pdir = weft__io_poller_events(io);
    switch (found) {
    case WEFT_IO_FOUND_NOT_READY:
      weft__hub_fd_tried(self->hub, fd, pdir, data_kind(io), true);
      weft__hub_fd_not_ready(self->hub, fd, pdir, false);
      break;
    case WEFT_IO_FOUND_SHORT_READ:
      weft__hub_fd_not_ready(self->hub, fd, pdir, true);
      break;
    default:
      weft__hub_fd_maybe_ready(self->hub, fd, pdir);
    }
  }
  return 0;
}

int weft_io_forget(int fd) {
  if (fd < 0)
    return -EBADF;
  weft__hub *h = weft__hub_current;
  if (h)
    weft__hub_forget_fd(h, fd);
  return 0;
}

int weft_io_close(int fd) {
  weft_io_forget(fd);
  return close(fd) == 0 ? 0 : -errno;
}
