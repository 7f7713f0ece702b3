/*
 * poll, ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2 and
 * the fortified
 * polls, in a task: asked once without waiting (the real call with a zero
 * timeout), and when nothing is ready, the task parks until something may
 * be, then asks again; the answer is always the real call's. Their own
 * timeouts end a wait with 0 ready, as in libc.
 *
 * One fd waits through the hub (weft_io_wait); several through an epoll fd
 * made for the call. The signal mask of ppoll, pselect and epoll_pwait is
 * applied to the tries, not to the park: a task's signals are the hub's
 * (weft_signal_wait), and a parked task is never interrupted by one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "hook-private.h"

/* The poll events that weft_io_wait can wait for. */
#define READ_EVENTS  (POLLIN | POLLRDNORM)
#define WRITE_EVENTS (POLLOUT | POLLWRNORM)

static unsigned to_weft(short events) {
  return ((events & READ_EVENTS) ? WEFT_IO_READ : 0) |
         ((events & WRITE_EVENTS) ? WEFT_IO_WRITE : 0);
}

static uint32_t to_epoll(short events) {
  uint32_t e = 0;
  if (events & (POLLIN | POLLRDNORM | POLLRDBAND))
    e |= EPOLLIN | EPOLLRDHUP;
  if (events & (POLLOUT | POLLWRNORM | POLLWRBAND))
    e |= EPOLLOUT;
  if (events & POLLPRI)
    e |= EPOLLPRI;
  return e;
}

/* An epoll fd watching what fds[0..n) ask for, or a negative errno. Fds
 * epoll refuses (a regular file: always ready, which the try has seen
 * already) are left out. */
static int epoll_for(const struct pollfd *fds, nfds_t n) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    return -errno;
  for (nfds_t i = 0; i < n; i++) {
    if (fds[i].fd < 0)
      continue;
    struct epoll_event ev = {.events = to_epoll(fds[i].events),
                             .data.fd = fds[i].fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i].fd, &ev) == 0)
      continue;
    if (errno == EEXIST) { /* the same fd twice: watch what both ask */
      for (nfds_t j = 0; j < i; j++)
        if (fds[j].fd == fds[i].fd)
          ev.events |= to_epoll(fds[j].events);
      if (epoll_ctl(ep, EPOLL_CTL_MOD, fds[i].fd, &ev) == 0)
        continue;
    }
    if (errno == EPERM)
      continue;
    int e = errno;
    close(ep);
    return -e;
  }
  return ep;
}

/* Waits in the task until fds[0..n) may be ready or `left` ns pass,
 * after a try that found none ready, with no wait since.
 * *ep is an epoll fd made on first need (-1 before), which the caller
 * closes. Returns 0 or a negative errno (-ETIMEDOUT). */
static int park_on(const struct pollfd *fds, nfds_t n, int *ep,
                   weft__hook_timeout left) {
  if (n == 0) { /* poll(NULL, 0, t): a sleep */
    int rc = weft_sleep(left < 0 ? INT64_MAX / 2 : left);
    return rc == 0 ? -ETIMEDOUT : rc;
  }
  if (n == 1 && fds[0].fd >= 0 &&
      !(fds[0].events & ~(READ_EVENTS | WRITE_EVENTS)) &&
      to_weft(fds[0].events)) {
    /* The try before found it not ready: the hub's wait is free. */
    weft_io_found(fds[0].fd, to_weft(fds[0].events), WEFT_IO_FOUND_NOT_READY);
    return weft__hook_wait_fd(fds[0].fd, to_weft(fds[0].events), left);
  }
  if (*ep < 0) {
    *ep = epoll_for(fds, n);
    if (*ep < 0)
      return *ep;
  }
  return weft__hook_wait_fd(*ep, WEFT_IO_READ, left);
}

/*
 * The loop behind poll and select in a task. `try` asks the real call
 * without waiting and returns its answer (>= 0) or -1 with errno; `fds`
 * are what a wait watches: poll's own array when `is_poll`, else a
 * translation. Returns what the call returns.
 *
 * The one fd waited on, closed by another task of the hub meanwhile, ends
 * the wait (-EBADF) with the answer libc gives for a closed fd, decided
 * here rather than by another try, which would look at whatever file the
 * number holds by then: poll reports POLLNVAL, select and epoll_wait fail
 * with EBADF.
 */
typedef int try_fn(void *ctx);

static int wait_loop(try_fn *try, void *ctx, struct pollfd *fds, nfds_t n,
                     bool is_poll, weft__hook_timeout timeout) {
  int r = try(ctx);
  if (r != 0 || timeout == 0)
    return r;
  int64_t started = weft_now();
  int ep = -1;
  for (;;) {
    weft__hook_timeout left = timeout;
    if (timeout >= 0 && (left = timeout - (weft_now() - started)) < 0)
      left = 0;
    int rc = park_on(fds, n, &ep, left);
    if (rc == -EBADF && is_poll && n == 1) {
      fds[0].revents = POLLNVAL;
      r = 1;
      break;
    }
    if (rc < 0 && rc != -ETIMEDOUT) {
      r = weft__hook_fail(-rc);
      break;
    }
    r = try(ctx);
    if (r != 0)
      break;
    if (rc == -ETIMEDOUT) {
      /* The call's own timeout: nothing ready. weft's deadline: an
       * error. */
      int e = weft__hook_wait_errno(rc, timeout, started);
      r = e == EAGAIN ? 0 : weft__hook_fail(e);
      break;
    }
  }
  if (ep >= 0) {
    int e = errno;
    close(ep);
    errno = e;
  }
  return r;
}

static weft__hook_timeout ms_timeout(int ms) {
  return ms < 0 ? WEFT_FOREVER : (int64_t)ms * 1000000;
}

static weft__hook_timeout ts_timeout(const struct timespec *ts) {
  if (!ts)
    return WEFT_FOREVER;
  if (ts->tv_sec >= INT64_MAX / 4000000000)
    return WEFT_FOREVER;
  return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

struct poll_ctx {
  struct pollfd *fds;
  nfds_t n;
  const sigset_t *mask;
};

/* The hub hears of what a try in a task found ready (weft_io_found), so
 * that a read that follows does not wait first on a guess. */
static void tell_hub_ready(int fd, bool readable, bool writable) {
  unsigned io = (readable ? WEFT_IO_READ : 0) | (writable ? WEFT_IO_WRITE : 0);
  if (io)
    weft_io_found(fd, io, WEFT_IO_FOUND_READY);
}

static int poll_try(void *c) {
  struct poll_ctx *p = c;
  int r;
  if (p->mask) {
    struct timespec zero = {0, 0};
    r = REAL(ppoll)(p->fds, p->n, &zero, p->mask);
  } else {
    r = REAL(poll)(p->fds, p->n, 0);
  }
  if (r > 0) {
    int e = errno;
    for (nfds_t i = 0; i < p->n; i++) {
      short got = p->fds[i].revents;
      if (p->fds[i].fd >= 0 && got && !(got & POLLNVAL))
        tell_hub_ready(p->fds[i].fd, got & (READ_EVENTS | POLLHUP | POLLERR),
                       got & (WRITE_EVENTS | POLLERR));
    }
    errno = e;
  }
  return r;
}

WEFT__HOOK_API int poll(struct pollfd *fds, nfds_t n, int timeout) {
  if (!weft__hook_here())
    return REAL(poll)(fds, n, timeout);
  struct poll_ctx c = {fds, n, NULL};
  return wait_loop(poll_try, &c, fds, n, true, ms_timeout(timeout));
}

WEFT__HOOK_API int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                              size_t fdslen) {
  extern void __chk_fail(void) __attribute__((noreturn));
  if (fdslen / sizeof *fds < n)
    __chk_fail();
  return poll(fds, n, timeout);
}

WEFT__HOOK_API int ppoll(struct pollfd *fds, nfds_t n,
                         const struct timespec *tmo, const sigset_t *mask) {
  if (!weft__hook_here() || (tmo && (tmo->tv_sec < 0 || tmo->tv_nsec < 0 ||
                                     tmo->tv_nsec >= 1000000000)))
    return REAL(ppoll)(fds, n, tmo, mask);
  struct poll_ctx c = {fds, n, mask};
  return wait_loop(poll_try, &c, fds, n, true, ts_timeout(tmo));
}

WEFT__HOOK_API int __ppoll_chk(struct pollfd *fds, nfds_t n,
                               const struct timespec *tmo, const sigset_t *mask,
                               size_t fdslen) {
  extern void __chk_fail(void) __attribute__((noreturn));
  if (fdslen / sizeof *fds < n)
    __chk_fail();
  return ppoll(fds, n, tmo, mask);
}

/* select and pselect: the sets as the program gave them, asked again on
 * every try; the fds to wait on, as pollfds. */
struct select_ctx {
  int nfds;
  fd_set *sets[3];
  fd_set given[3];
  const sigset_t *mask;
};

static int select_try(void *c) {
  struct select_ctx *s = c;
  for (int i = 0; i < 3; i++)
    if (s->sets[i])
      *s->sets[i] = s->given[i];
  struct timespec zero = {0, 0};
  int r = REAL(pselect)(s->nfds, s->sets[0], s->sets[1], s->sets[2], &zero,
                        s->mask);
  if (r > 0) {
    int e = errno;
    for (int fd = 0; fd < s->nfds; fd++)
      tell_hub_ready(fd, s->sets[0] && FD_ISSET(fd, s->sets[0]),
                     s->sets[1] && FD_ISSET(fd, s->sets[1]));
    errno = e;
  }
  return r;
}

static int select_in_task(int nfds, fd_set *r, fd_set *w, fd_set *x,
                          weft__hook_timeout timeout, const sigset_t *mask) {
  struct select_ctx s = {.nfds = nfds, .sets = {r, w, x}, .mask = mask};
  for (int i = 0; i < 3; i++)
    if (s.sets[i])
      s.given[i] = *s.sets[i];
  /* At most FD_SETSIZE fds: too many for a small task stack. */
  struct pollfd *fds = malloc((size_t)(nfds > 0 ? nfds : 1) * sizeof *fds);
  if (!fds)
    return weft__hook_fail(ENOMEM);
  nfds_t n = 0;
  for (int fd = 0; fd < nfds; fd++) {
    short ev = (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) |
                       (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
                       (x && FD_ISSET(fd, x) ? POLLPRI : 0));
    if (ev)
      fds[n++] = (struct pollfd){.fd = fd, .events = ev};
  }
  int ret = wait_loop(select_try, &s, fds, n, false, timeout);
  int e = errno;
  free(fds);
  errno = e;
  return ret;
}

WEFT__HOOK_API int select(int nfds, fd_set *r, fd_set *w, fd_set *x,
                          struct timeval *tv) {
  if (!weft__hook_here() || nfds < 0 || nfds > FD_SETSIZE ||
      (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)) ||
      (tv && tv->tv_sec == 0 && tv->tv_usec == 0))
    return REAL(select)(nfds, r, w, x, tv);
  weft__hook_timeout timeout =
      tv ? (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000
         : WEFT_FOREVER;
  int64_t started = weft_now();
  int ret = select_in_task(nfds, r, w, x, timeout, NULL);
  if (tv) { /* Linux leaves the time not slept in *tv */
    int64_t left = timeout - (weft_now() - started);
    if (left < 0)
      left = 0;
    tv->tv_sec = left / 1000000000;
    tv->tv_usec = (left % 1000000000) / 1000;
  }
  return ret;
}

WEFT__HOOK_API int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x,
                           const struct timespec *ts, const sigset_t *mask) {
  if (!weft__hook_here() || nfds < 0 || nfds > FD_SETSIZE ||
      (ts &&
       (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)) ||
      (ts && ts->tv_sec == 0 && ts->tv_nsec == 0))
    return REAL(pselect)(nfds, r, w, x, ts, mask);
  return select_in_task(nfds, r, w, x, ts_timeout(ts), mask);
}

/* epoll_wait on the program's own epoll fd: the epoll fd is itself
 * readable while it has events to report. */
struct epoll_ctx {
  int ep;
  struct epoll_event *events;
  int max;
  const sigset_t *mask;
};

static int epoll_try(void *c) {
  struct epoll_ctx *e = c;
  return REAL(epoll_pwait)(e->ep, e->events, e->max, 0, e->mask);
}

WEFT__HOOK_API int epoll_pwait(int ep, struct epoll_event *events, int max,
                               int timeout, const sigset_t *mask) {
  if (!weft__hook_here() || timeout == 0)
    return REAL(epoll_pwait)(ep, events, max, timeout, mask);
  struct epoll_ctx c = {ep, events, max, mask};
  struct pollfd p = {.fd = ep, .events = POLLIN};
  return wait_loop(epoll_try, &c, &p, 1, false, ms_timeout(timeout));
}

WEFT__HOOK_API int epoll_pwait2(int ep, struct epoll_event *events, int max,
                                const struct timespec *tmo,
                                const sigset_t *mask) {
  int (*real)(int, struct epoll_event *, int, const struct timespec *,
              const sigset_t *) = REAL(epoll_pwait2);
  if (!real) /* a libc without it: what the kernel call would say */
    return weft__hook_fail(ENOSYS);
  if (!weft__hook_here() || (tmo && tmo->tv_sec == 0 && tmo->tv_nsec == 0) ||
      (tmo &&
       (tmo->tv_sec < 0 || tmo->tv_nsec < 0 || tmo->tv_nsec >= 1000000000)))
    return real(ep, events, max, tmo, mask);
  struct epoll_ctx c = {ep, events, max, mask};
  struct pollfd p = {.fd = ep, .events = POLLIN};
  return wait_loop(epoll_try, &c, &p, 1, false, ts_timeout(tmo));
}

WEFT__HOOK_API int epoll_wait(int ep, struct epoll_event *events, int max,
                              int timeout) {
  if (!weft__hook_here() || timeout == 0)
    return REAL(epoll_wait)(ep, events, max, timeout);
  return epoll_pwait(ep, events, max, timeout, NULL);
}
