/*
 * The hooked data calls' loop. See transfer.h.
 *
 * The first try is the whole call when the fd is ready, so the common case
 * costs what libc's call costs. Only when it would block does the loop
 * learn what the program asked for (view.c: a system call each the first
 * time, none for a socket after that): the fd's O_NONBLOCK (then EAGAIN is
 * the answer), its SO_RCVTIMEO or SO_SNDTIMEO (the wait's bound; a socket's
 * answer also says it is no disk file), and for an fd that is no socket
 * whether it is a regular file (then the plain call, as the kernel has no
 * readiness for disks).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "hook-private.h"
#include "transfer.h"
#include "view.h"

size_t weft__hook_iov_total(const struct iovec *iov, int iovcnt) {
  size_t t = 0;
  for (int i = 0; i < iovcnt; i++) {
    if (iov[i].iov_len > SSIZE_MAX - t)
      return SSIZE_MAX;
    t += iov[i].iov_len;
  }
  return t;
}

bool weft__hook_iovs_from(struct weft__hook_iovs *r, const struct iovec *iov,
                          int iovcnt, size_t done) {
  r->heap = NULL;
  if (done == 0) {
    r->v = iov;
    r->n = iovcnt;
    return true;
  }
  int i = 0;
  while (i < iovcnt && done >= iov[i].iov_len)
    done -= iov[i++].iov_len;
  int left = iovcnt - i;
  struct iovec *a = r->local;
  if (left > WEFT__HOOK_IOV_ON_STACK) {
    a = malloc((size_t)left * sizeof *a);
    if (!a) {
      errno = ENOMEM;
      return false;
    }
    r->heap = a;
  }
  for (int k = 0; k < left; k++)
    a[k] = iov[i + k];
  if (left > 0) {
    a[0].iov_base = (char *)a[0].iov_base + done;
    a[0].iov_len -= done;
  }
  r->v = a;
  r->n = left;
  return true;
}

void weft__hook_iovs_free(struct weft__hook_iovs *r) {
  if (r->heap) {
    int e = errno;
    free(r->heap);
    r->heap = NULL;
    errno = e;
  }
}

/* What the call returns once it stops after moving `done` bytes with its
 * last try failing with errno e: the bytes count, as in libc, when some
 * moved. */
static ssize_t stop(size_t done, int e) {
  if (done > 0)
    return (ssize_t)done;
  return weft__hook_fail(e);
}

/* Whether an error of the try means "this fd knows no RWF_NOWAIT"
 * (EOPNOTSUPP, as the kernel says for a file without it and, before 4.14,
 * for the flag itself; ENOSYS before 4.6): the call then waits for
 * readiness first and makes the plain call. Any other error, EINVAL
 * included (a timerfd read into too small a buffer, say), is the call's
 * own, and returned at once as libc's. */
static bool nowait_unsupported(const struct weft__hook_op *op, int e) {
  return !op->socket && (e == EOPNOTSUPP || e == ENOSYS);
}

/* Whether an fd open with status flags fl may move bytes in dir. */
static bool access_allows(int fl, unsigned dir) {
  int mode = fl & O_ACCMODE;
  return mode == O_RDWR ||
         (dir == WEFT_IO_READ ? mode == O_RDONLY : mode == O_WRONLY);
}

/* Whether fd is ready for dir now (or has an error or hang-up to report),
 * by poll(2) with no wait. */
static bool ready_now(int fd, unsigned dir) {
  struct pollfd p = {.fd = fd,
                     .events = dir == WEFT_IO_READ ? POLLIN : POLLOUT};
  int saved = errno;
  bool ready = REAL(poll)(&p, 1, 0) > 0;
  errno = saved;
  return ready;
}

/* Whether the try's result completes the call. */
static bool complete(const struct weft__hook_op *op, size_t done) {
  return !op->all || done >= op->total;
}

/* The plain call from `done` on, after the hooks gave up waiting in the
 * task: the thread blocks as in libc. */
static ssize_t plain_rest(struct weft__hook_op *op, size_t done) {
  ssize_t r;
  do {
    r = op->plain(op, done);
    if (r > 0)
      done += (size_t)r;
  } while (r > 0 && !complete(op, done));
  return r < 0 ? stop(done, errno) : (ssize_t)done;
}

/* Tells the hub what a try that returned r, from byte `done` on, found
 * (weft_io_found): EAGAIN, or a read that says the fd is drained (fewer
 * bytes than asked, and no peek or other read that leaves bytes behind).
 * Made right after the try, before anything lets the hub run. */
static void tell_hub(const struct weft__hook_op *op, ssize_t r, size_t done) {
  int e = errno;
  if (r < 0 && (e == EAGAIN || e == EWOULDBLOCK))
    weft_io_found(op->fd, op->dir, WEFT_IO_FOUND_NOT_READY);
  else if (r > 0 && op->dir == WEFT_IO_READ && (size_t)r < op->total - done &&
           !(op->flags & (MSG_PEEK | MSG_OOB | MSG_ERRQUEUE | MSG_TRUNC)))
    weft_io_found(op->fd, WEFT_IO_READ, WEFT_IO_FOUND_SHORT_READ);
  errno = e;
}

/* Waits before the first try when the hub guesses that it would fail
 * (WEFT_IO_GUESS: a reply read after its request was written): only for
 * a blocking socket whose view is kept, so that nothing else must be
 * learnt first. Returns whether the call must fail with EBADF instead (the
 * fd was closed while the task waited); any other end of the wait leaves
 * the try to decide, as it would have without the guess. */
static bool guess_says_closed(const struct weft__hook_op *op) {
  if ((op->socket && (op->flags & MSG_DONTWAIT)) ||
      !weft__hook_view_kept_blocking(op->fd, op->dir))
    return false;
  return weft_io_wait(op->fd, op->dir | WEFT_IO_GUESS, WEFT_FOREVER) == -EBADF;
}

ssize_t weft__hook_transfer(struct weft__hook_op *op) {
  size_t done = 0;
  if (guess_says_closed(op))
    return weft__hook_fail(EBADF);
  ssize_t r = op->nowait(op, 0);
  tell_hub(op, r, 0);
  if (r >= 0) {
    done = (size_t)r;
    if (r == 0 || complete(op, done))
      return r;
  } else if (errno != EAGAIN && errno != EWOULDBLOCK &&
             !nowait_unsupported(op, errno)) {
    return -1;
  }
  int first_error = r < 0 ? errno : EAGAIN;
  bool use_plain = nowait_unsupported(op, first_error);
  /* It would block (or moved only part of what it must). */
  struct weft__hook_view view = {.flags = O_RDWR | O_NONBLOCK};
  if (!(op->socket && (op->flags & MSG_DONTWAIT)))
    weft__hook_view_of(op->fd, op->dir, &view);
  if (view.flags < 0 || !access_allows(view.flags, op->dir))
    /* A bad fd or its wrong end, found only now when the try could not
     * tell (RWF_NOWAIT refused): the plain call fails at once. */
    return done > 0 ? (ssize_t)done : op->plain(op, 0);
  if (view.flags & O_NONBLOCK) {
    if (done > 0)
      return (ssize_t)done;
    if (use_plain)
      return op->plain(op, 0); /* non-blocking anyway */
    return weft__hook_fail(first_error);
  }
  weft__hook_timeout timeout = view.timeout;
  bool socket = view.socket;
  if (!socket && weft__hook_is_disk(op->fd))
    return plain_rest(op, done);
  /* Whether the next try comes before any wait: the first, when it could
   * not be made as intended. */
  bool try_now = false;
  if (use_plain && socket && op->socket_nowait) {
    /* No RWF_NOWAIT here, but a socket takes MSG_DONTWAIT: tried at once,
     * as what is there must not wait (nor fail for a cancellation). */
    op->nowait = op->socket_nowait;
    use_plain = false;
    try_now = true;
  }
  /* A plain write made once the fd is writable blocks no longer than the
   * kernel takes to move PIPE_BUF bytes: poll reports a pipe writable with
   * that much room. */
  if (use_plain && op->dir == WEFT_IO_WRITE)
    op->plain_max = PIPE_BUF;
  int64_t started = timeout >= 0 ? weft_now() : 0;
  for (;;) {
    /* A plain call is made only once the fd is ready, lest it block. */
    if (try_now) {
      try_now = false;
    } else if (!use_plain || !ready_now(op->fd, op->dir)) {
      weft__hook_timeout left = timeout;
      if (timeout >= 0) {
        left = timeout - (weft_now() - started);
        if (left < 0)
          left = 0;
      }
      int rc = weft__hook_wait_fd(op->fd, op->dir, left);
      if (rc < 0)
        return stop(done, weft__hook_wait_errno(rc, timeout, started));
    }
    r = use_plain ? op->plain(op, done) : op->nowait(op, done);
    tell_hub(op, r, done);
    if (r > 0) {
      done += (size_t)r;
      if (complete(op, done))
        return (ssize_t)done;
    } else if (r == 0) {
      return (ssize_t)done; /* the end of the stream */
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return stop(done, errno);
    }
  }
}
