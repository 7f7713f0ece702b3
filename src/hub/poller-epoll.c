/*
 * The epoll poller, Linux's. See poller.h.
 *
 * epoll carries the fd; the caller's tag lives in an fd table. Arming uses
 * EPOLLONESHOT: a report disables the fd in the kernel but leaves it
 * registered, so the next arming is one EPOLL_CTL_MOD. The table's slot
 * field says whether the fd is registered (1) or not (0); when the kernel
 * dropped it meanwhile (the fd was closed and its number reused), MOD fails
 * with ENOENT and the fd is added afresh. A wake is an
 * eventfd, drained when it fires and never reported. The deadline is passed
 * with nanosecond precision through epoll_pwait2 (Linux 5.11) where the kernel
 * has it, else rounded up to whole milliseconds for epoll_wait, so that a
 * wait never returns before its deadline for want of resolution.
 *
 * Exclusive arming (WEFT__POLL_EXCLUSIVE) cannot be one-shot: the kernel
 * takes EPOLLEXCLUSIVE only with EPOLL_CTL_ADD and refuses it with
 * EPOLLONESHOT and with MOD. So such an fd is added (slot EXCLUSIVE_SLOT)
 * and deleted when it is reported or armed otherwise: two
 * system calls per wait instead of one, for the fds that ask (listening
 * sockets, whose waits are few next to their accepts). The delete is also
 * what sends this poller to the back of the socket's queue of waiters,
 * which spreads connections over the idle ones.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fdtable.h"
#include "poller.h"
#include "timer.h"

enum { BATCH = 256 };

struct weft__poller {
  int epfd;
  int wake_fd;
  bool no_pwait2;    /* the kernel said ENOSYS once */
  bool no_exclusive; /* the kernel refused EPOLLEXCLUSIVE once */
  weft__fdtable fds;
  struct epoll_event got[BATCH];
};

const char *weft__poller_backend(void) { return "epoll"; }

int weft__poller_new(weft__poller **out) {
  weft__poller *p = malloc(sizeof *p);
  if (!p)
    return -ENOMEM;
  p->no_pwait2 = false;
  p->no_exclusive = false;
  p->fds = (weft__fdtable){0};
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (p->epfd < 0) {
    int err = -errno;
    free(p);
    return err;
  }
  p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = p->wake_fd};
  if (p->wake_fd < 0 ||
      epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wake_fd, &ev) != 0) {
    int err = -errno;
    if (p->wake_fd >= 0)
      close(p->wake_fd);
    close(p->epfd);
    free(p);
    return err;
  }
  *out = p;
  return 0;
}

void weft__poller_close_in_child(weft__poller *p) {
  close(p->wake_fd);
  close(p->epfd);
}

void weft__poller_free(weft__poller *p) {
  weft__fdtable_fini(&p->fds);
  close(p->wake_fd);
  close(p->epfd);
  free(p);
}

enum { EXCLUSIVE_SLOT = 2 };

/* Adds fd with EPOLLEXCLUSIVE, edge-triggered: an fd that is ready when
 * added is reported once all the same, and an entry that outlives its
 * delete (an fd closed with close(2) while armed, whose file other
 * processes keep open) is reported once per new readiness, not at every
 * wait. Returns 0, a negative errno, or 1 when it must be armed as an
 * ordinary fd: a kernel before 4.5, which refuses the flag (EINVAL,
 * remembered). */
static int arm_exclusive(weft__poller *p, weft__fd_entry *e, int fd,
                         unsigned events, void *data) {
  struct epoll_event ev = {.events = EPOLLEXCLUSIVE | EPOLLET, .data.fd = fd};
  if (events & WEFT__POLL_IN)
    ev.events |= EPOLLIN;
  if (events & WEFT__POLL_OUT)
    ev.events |= EPOLLOUT;
  if (e->slot && epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) != 0 &&
      errno != ENOENT)
    return -errno;
  e->slot = 0;
  int rc = epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
  if (rc != 0 && errno == EEXIST) {
    /* Registered, and the table did not know (a close and a reuse of the
     * number): neither MOD nor ADD reaches it, a delete does. */
    if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) != 0)
      return -errno;
    rc = epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
  }
  if (rc != 0) {
    if (errno != EINVAL)
      return -errno;
    p->no_exclusive = true;
    return 1;
  }
  e->slot = EXCLUSIVE_SLOT;
  e->events = events;
  e->data = data;
  return 0;
}

int weft__poller_set(weft__poller *p, int fd, unsigned events, void *data) {
  int rc = weft__poller_check(fd, events);
  if (rc < 0)
    return rc;
  if (fd == p->wake_fd || fd == p->epfd)
    return -EBADF;
  weft__fd_entry *e = weft__fdtable_get(&p->fds, fd);
  if (events == 0) {
    if (!e || !e->slot)
      return 0;
    if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) != 0 && errno != ENOENT &&
        errno != EBADF)
      return -errno;
    *e = (weft__fd_entry){0};
    return 0;
  }
  e = weft__fdtable_reserve(&p->fds, fd);
  if (!e)
    return -ENOMEM;
  if (e->slot == EXCLUSIVE_SLOT) {
    /* Neither MOD nor a second ADD reaches an exclusive registration. */
    if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) != 0 && errno != ENOENT)
      return -errno;
    e->slot = 0;
  }
  if ((events & WEFT__POLL_EXCLUSIVE) && !p->no_exclusive) {
    rc = arm_exclusive(p, e, fd, events, data);
    if (rc <= 0)
      return rc;
    /* 1: refused; armed one-shot below, as an ordinary fd. */
  }
  struct epoll_event ev = {.events = EPOLLONESHOT, .data.fd = fd};
  if (events & WEFT__POLL_IN)
    ev.events |= EPOLLIN | EPOLLRDHUP;
  if (events & WEFT__POLL_OUT)
    ev.events |= EPOLLOUT;
  int op = e->slot ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(p->epfd, op, fd, &ev) != 0) {
    /* MOD: a registered fd closed and its number reused is unknown to
     * epoll. ADD: an fd registered through another number (dup) is not
     * this one; still, EEXIST means the pair is there. */
    if (op == EPOLL_CTL_MOD && errno == ENOENT)
      op = EPOLL_CTL_ADD;
    else if (op == EPOLL_CTL_ADD && errno == EEXIST)
      op = EPOLL_CTL_MOD;
    else
      return -errno;
    if (epoll_ctl(p->epfd, op, fd, &ev) != 0)
      return -errno;
  }
  e->slot = 1;
  e->events = events;
  e->data = data;
  return 0;
}

int weft__poller_wait(weft__poller *p, weft__poll_event *evs, int max,
                      int64_t deadline) {
  if (max <= 0)
    return -EINVAL;
  if (max > BATCH)
    max = BATCH;
  int64_t now = weft__now();
  int64_t left = deadline == INT64_MAX ? -1
                 : deadline <= now     ? 0
                                       : deadline - now;
  int n = -1;
  if (!p->no_pwait2) {
    struct timespec ts = {left / 1000000000, left % 1000000000};
    n = epoll_pwait2(p->epfd, p->got, max, left < 0 ? NULL : &ts, NULL);
    /* ENOSYS: an older kernel; EPERM: a seccomp filter that does not know
     * the call. Either way, epoll_wait does the same job. */
    if (n < 0 && (errno == ENOSYS || errno == EPERM))
      p->no_pwait2 = true;
  }
  if (p->no_pwait2)
    n = epoll_wait(p->epfd, p->got, max, weft__ms_until(deadline));
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  int out = 0;
  for (int i = 0; i < n; i++) {
    int fd = p->got[i].data.fd;
    if (fd == p->wake_fd) {
      uint64_t drained;
      ssize_t r = read(p->wake_fd, &drained, sizeof drained);
      (void)r; /* EAGAIN: another wait drained it; nothing to do */
      continue;
    }
    weft__fd_entry *e = weft__fdtable_get(&p->fds, fd);
    if (!e || !e->events)
      continue;    /* disarmed since the kernel queued the event */
    e->events = 0; /* one-shot: the kernel disabled it too */
    if (e->slot == EXCLUSIVE_SLOT) {
      /* Made one-shot here. Should the delete fail, the next arming
       * deletes it again. */
      if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) == 0 || errno == ENOENT)
        e->slot = 0;
    }
    unsigned got = 0, g = p->got[i].events;
    if (g & (EPOLLIN | EPOLLRDHUP))
      got |= WEFT__POLL_IN;
    if (g & EPOLLOUT)
      got |= WEFT__POLL_OUT;
    if (g & EPOLLERR)
      got |= WEFT__POLL_ERR;
    if (g & EPOLLHUP)
      got |= WEFT__POLL_HUP;
    evs[out++] = (weft__poll_event){.fd = fd, .events = got, .data = e->data};
  }
  return out;
}

void weft__poller_wake(weft__poller *p) {
  uint64_t one = 1;
  ssize_t r = write(p->wake_fd, &one, sizeof one);
  (void)r; /* EAGAIN: the counter is saturated, a wake is pending anyway */
}
