/*
 * The poll(2) poller: the portable fallback (-DWEFT_POLLER=poll). See
 * poller.h.
 *
 * The watched fds are a dense pollfd array, slot 0 being the read end of a
 * self-pipe that wakes; the fd table maps each fd to its slot, so setting
 * and disarming are O(1) (disarming moves the last slot into the hole). An
 * fd is in the array exactly while it is armed: a wait that reports it
 * takes it out. A wait costs O(armed fds), which is why epoll is the
 * default.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "fdtable.h"
#include "poller.h"
#include "timer.h"

struct weft__poller {
  int wake_rd, wake_wr;
  struct pollfd *pfd; /* pfd[0] is wake_rd */
  int n, cap;
  int next; /* where the next scan of ready fds starts: fairness when more
               are ready than a wait may report */
  weft__fdtable fds;
};

const char *weft__poller_backend(void) { return "poll"; }

static int nonblocking_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return -errno;
  return 0;
}

int weft__poller_new(weft__poller **out) {
  weft__poller *p = calloc(1, sizeof *p);
  if (!p)
    return -ENOMEM;
  int fds[2];
  if (pipe(fds) != 0) {
    int err = -errno;
    free(p);
    return err;
  }
  int rc = nonblocking_cloexec(fds[0]);
  if (rc == 0)
    rc = nonblocking_cloexec(fds[1]);
  p->cap = 64;
  p->pfd = rc == 0 ? malloc((size_t)p->cap * sizeof *p->pfd) : NULL;
  if (!p->pfd) {
    close(fds[0]);
    close(fds[1]);
    free(p);
    return rc < 0 ? rc : -ENOMEM;
  }
  p->wake_rd = fds[0];
  p->wake_wr = fds[1];
  p->pfd[0] = (struct pollfd){.fd = p->wake_rd, .events = POLLIN};
  p->n = 1;
  *out = p;
  return 0;
}

void weft__poller_close_in_child(weft__poller *p) {
  close(p->wake_rd);
  close(p->wake_wr);
}

void weft__poller_free(weft__poller *p) {
  close(p->wake_rd);
  close(p->wake_wr);
  free(p->pfd);
  weft__fdtable_fini(&p->fds);
  free(p);
}

static short poll_events(unsigned events) {
  return (short)(((events & WEFT__POLL_IN) ? POLLIN : 0) |
                 ((events & WEFT__POLL_OUT) ? POLLOUT : 0));
}

/* Takes an armed fd out of the array; the last slot fills the hole. */
static void disarm(weft__poller *p, weft__fd_entry *e) {
  int hole = e->slot, last = p->n - 1;
  if (hole != last) {
    p->pfd[hole] = p->pfd[last];
    weft__fdtable_get(&p->fds, p->pfd[hole].fd)->slot = hole;
  }
  p->n--;
  e->events = 0;
  e->data = NULL;
}

int weft__poller_set(weft__poller *p, int fd, unsigned events, void *data) {
  int rc = weft__poller_check(fd, events);
  if (rc < 0)
    return rc;
  if (fd == p->wake_rd || fd == p->wake_wr)
    return -EBADF;
  weft__fd_entry *e = weft__fdtable_get(&p->fds, fd);
  if (events == 0) {
    if (e && e->events)
      disarm(p, e);
    return 0;
  }
  if (fcntl(fd, F_GETFD) < 0)
    return -EBADF;
  e = weft__fdtable_reserve(&p->fds, fd);
  if (!e)
    return -ENOMEM;
  if (!e->events) {
    if (p->n == p->cap) {
      struct pollfd *grown =
          realloc(p->pfd, (size_t)p->cap * 2 * sizeof *grown);
      if (!grown)
        return -ENOMEM;
      p->pfd = grown;
      p->cap *= 2;
    }
    e->slot = p->n++;
    p->pfd[e->slot] = (struct pollfd){.fd = fd};
  }
  p->pfd[e->slot].events = poll_events(events);
  e->events = events;
  e->data = data;
  return 0;
}

/* poll(2) looks at every armed fd afresh at each wait: arming costs no
 * system call, so there is nothing to learn or doubt. */
void weft__poller_not_ready(weft__poller *p, int fd, unsigned events,
                            bool short_read) {
  (void)p;
  (void)fd;
  (void)events;
  (void)short_read;
}

bool weft__poller_known_not_ready(weft__poller *p, int fd, unsigned events) {
  (void)p;
  (void)fd;
  (void)events;
  return false;
}

void weft__poller_maybe_ready(weft__poller *p, int fd, unsigned events) {
  (void)p;
  (void)fd;
  (void)events;
}

void weft__poller_doubt(weft__poller *p, int fd) {
  (void)p;
  (void)fd;
}

int weft__poller_wait(weft__poller *p, weft__poll_event *evs, int max,
                      int64_t deadline) {
  if (max <= 0)
    return -EINVAL;
  int n = poll(p->pfd, (nfds_t)p->n, weft__ms_until(deadline));
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  int out = 0;
  if (p->pfd[0].revents) {
    char drain[64];
    while (read(p->wake_rd, drain, sizeof drain) > 0)
      ;
  }
  int watched = p->n - 1, scanned = 0;
  for (; scanned < watched && out < max; scanned++) {
    int i = 1 + (p->next + scanned) % watched;
    short r = p->pfd[i].revents;
    if (!r)
      continue;
    weft__fd_entry *e = weft__fdtable_get(&p->fds, p->pfd[i].fd);
    unsigned got = 0;
    if (r & POLLIN)
      got |= WEFT__POLL_IN;
    if (r & POLLOUT)
      got |= WEFT__POLL_OUT;
    if (r & POLLERR)
      got |= WEFT__POLL_ERR;
    if (r & POLLHUP)
      got |= WEFT__POLL_HUP | ((e->events & WEFT__POLL_IN) ? WEFT__POLL_IN : 0);
    if (r & POLLNVAL)
      got |= WEFT__POLL_ERR;
    evs[out++] =
        (weft__poll_event){.fd = p->pfd[i].fd, .events = got, .data = e->data};
  }
  if (watched)
    p->next = (p->next + scanned) % watched;
  /* One-shot: what was reported is disarmed, after the scan, which the
   * moves of disarm would disturb. */
  for (int k = 0; k < out; k++)
    disarm(p, weft__fdtable_get(&p->fds, evs[k].fd));
  return out;
}

void weft__poller_wake(weft__poller *p) {
  char one = 1;
  ssize_t r = write(p->wake_wr, &one, 1);
  (void)r; /* EAGAIN: the pipe is full, a wake is pending anyway */
}
