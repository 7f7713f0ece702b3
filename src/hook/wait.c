/*
 * How a hooked call parks its task: on the fd through the hub (the usual
 * way), or through an epoll fd of its own when another task of the hub
 * already waits on the fd the same way (weft_io_wait allows one waiter per
 * direction; two tasks reading one socket is rare, but libc allows it).
 *
 * A close of the fd must wake such a waiter as it wakes the hub's own
 * (weft_io_forget): the epoll fd of its own would not hear of it, as epoll
 * drops a closed file from its set without a word. So each thread keeps
 * the list of its tasks that wait through an epoll fd of their own, each
 * entry on its task's stack; a close forgets those epoll fds too, which
 * wakes the tasks with EBADF. The list is the thread's alone: its tasks
 * run one at a time, and weft_io_forget reaches the calling thread's hub
 * only, as a close through weft always has.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hook-private.h"

struct own_epoll_wait {
  int fd; /* what the task waits on */
  int ep; /* the epoll fd it waits through */
  struct own_epoll_wait *prev, *next;
};

static __thread struct own_epoll_wait *own_epoll_waits
    __attribute__((tls_model("initial-exec")));

void weft__hook_forget_waits(int fd) {
  for (struct own_epoll_wait *w = own_epoll_waits; w; w = w->next)
    if (w->fd == fd)
      weft_io_forget(w->ep);
}

static int wait_through_own_epoll(int fd, unsigned events,
                                  weft__hook_timeout timeout) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    return -errno;
  struct epoll_event ev = {
      .events = ((events & WEFT_IO_READ) ? EPOLLIN | EPOLLRDHUP : 0) |
                ((events & WEFT_IO_WRITE) ? EPOLLOUT : 0),
      .data.fd = fd,
  };
  int rc = 0;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    rc = -errno;
  } else {
    struct own_epoll_wait w = {.fd = fd, .ep = ep, .next = own_epoll_waits};
    if (w.next)
      w.next->prev = &w;
    own_epoll_waits = &w;
    rc = weft_io_wait(ep, WEFT_IO_READ, timeout);
    if (w.prev)
      w.prev->next = w.next;
    else
      own_epoll_waits = w.next;
    if (w.next)
      w.next->prev = w.prev;
  }
  /* Through close itself, not libc's, so that a sanitizer that follows
   * fds (TSan) sees the number go. */
  close(ep);
  return rc < 0 ? rc : 0;
}

/* The thread blocks in poll(2), for an fd the hub cannot watch. */
static int wait_blocking(int fd, unsigned events, weft__hook_timeout timeout) {
  struct pollfd p = {
      .fd = fd,
      .events = (short)(((events & WEFT_IO_READ) ? POLLIN : 0) |
                        ((events & WEFT_IO_WRITE) ? POLLOUT : 0)),
  };
  int64_t until = timeout < 0 ? 0 : weft_now() + timeout;
  for (;;) {
    int ms = -1;
    if (timeout >= 0) {
      int64_t left = until - weft_now();
      ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
    }
    int n = REAL(poll)(&p, 1, ms);
    if (n > 0)
      return (p.revents & POLLNVAL) ? -EBADF : 0;
    if (n == 0)
      return -ETIMEDOUT;
    if (errno != EINTR)
      return -errno;
  }
}

int weft__hook_wait_fd(int fd, unsigned events, weft__hook_timeout timeout) {
  int rc = weft_io_wait(fd, events, timeout);
  if (rc == -EBUSY)
    rc = wait_through_own_epoll(fd, events, timeout);
  if (rc >= 0)
    return 0;
  switch (rc) {
  case -ETIMEDOUT:
  case -ECANCELED:
  case -EBADF:
    return rc;
  default:
    /* The hub cannot watch this fd (-EPERM: epoll refuses it) or has no
     * memory for it: the thread waits, as it would in libc. */
    return wait_blocking(fd, events, timeout);
  }
}

int weft__hook_wait_errno(int rc, weft__hook_timeout timeout, int64_t started) {
  if (rc != -ETIMEDOUT)
    return -rc;
  /* weft_io_wait ends at the earlier of the call's timeout and the task's
   * deadline: the call's own one ran out if its time has passed. */
  if (timeout >= 0 && weft_now() - started >= timeout)
    return EAGAIN;
  return ETIMEDOUT;
}

bool weft__hook_socket_timeout(int fd, int optname, weft__hook_timeout *t) {
  struct timeval tv;
  socklen_t len = sizeof tv;
  int saved = errno;
  bool socket = getsockopt(fd, SOL_SOCKET, optname, &tv, &len) == 0;
  *t = WEFT_FOREVER;
  if (socket && (tv.tv_sec > 0 || tv.tv_usec > 0))
    *t = (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
  errno = saved;
  return socket;
}

weft__hook_timeout weft__hook_sock_timeout(int fd, int optname) {
  weft__hook_timeout t;
  weft__hook_socket_timeout(fd, optname, &t);
  return t;
}

bool weft__hook_is_disk(int fd) {
  struct stat st;
  int saved = errno;
  bool disk =
      fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
  errno = saved;
  return disk;
}
