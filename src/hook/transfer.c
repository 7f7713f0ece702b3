/*
 * The hooked data calls' loop. See transfer.h.
 *
 * The first try is the whole call when the fd is ready, so the common case
 * costs what libc's call costs. Only when it would block does the loop
 * learn what the program asked for, a system call each, cheap next to a
 * park: the fd's O_NONBLOCK (then EAGAIN is the answer), whether it is a
 * regular file (then the plain call, as the kernel has no readiness for
 * disks), and its SO_RCVTIMEO or SO_SNDTIMEO (the wait's bound).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hook-private.h"
#include "transfer.h"

size_t weft__hook_iov_total(const struct iovec *iov, int iovcnt) {
  size_t t = 0;
  for (int i = 0; i < iovcnt; i++) {
    if (iov[i].iov_len > SSIZE_MAX - t)
      return SSIZE_MAX;
    t += iov[i].iov_len;
  }
  return t;
}

const struct iovec *weft__hook_iov_from(const struct iovec *iov, int iovcnt,
                                        size_t done, struct iovec *out,
                                        int room, int *n, struct iovec **heap) {
  *heap = NULL;
  if (done == 0) {
    *n = iovcnt;
    return iov;
  }
  int i = 0;
  while (i < iovcnt && done >= iov[i].iov_len)
    done -= iov[i++].iov_len;
  int left = iovcnt - i;
  struct iovec *a = out;
  if (left > room) {
    a = malloc((size_t)left * sizeof *a);
    if (!a) {
      errno = ENOMEM;
      return NULL;
    }
    *heap = a;
  }
  for (int k = 0; k < left; k++)
    a[k] = iov[i + k];
  if (left > 0) {
    a[0].iov_base = (char *)a[0].iov_base + done;
    a[0].iov_len -= done;
  }
  *n = left;
  return a;
}

/* What the call returns once it stops after moving `done` bytes with its
 * last try failing with errno e: the bytes count, as in libc, when some
 * moved. */
static ssize_t stop(size_t done, int e) {
  if (done > 0)
    return (ssize_t)done;
  return weft__hook_fail(e);
}

/* Whether an error of the try means "this fd knows no RWF_NOWAIT": the
 * call then waits for readiness first and makes the plain call. */
static bool nowait_unsupported(const struct weft__hook_op *op, int e) {
  return !op->socket && (e == EOPNOTSUPP || e == EINVAL || e == ENOSYS);
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

ssize_t weft__hook_transfer(struct weft__hook_op *op) {
  size_t done = 0;
  ssize_t r = op->nowait(op, 0);
  if (r >= 0) {
    done = (size_t)r;
    if (r == 0 || complete(op, done))
      return r;
  } else if (errno != EAGAIN && errno != EWOULDBLOCK &&
             !nowait_unsupported(op, errno)) {
    return -1;
  }
  int first_error = r < 0 ? errno : EAGAIN;
  /* It would block (or moved only part of what it must). */
  if ((op->socket && (op->flags & MSG_DONTWAIT)) ||
      weft__hook_user_nonblocking(op->fd)) {
    if (done > 0)
      return (ssize_t)done;
    if (nowait_unsupported(op, first_error))
      return op->plain(op, 0); /* non-blocking anyway */
    return weft__hook_fail(first_error);
  }
  if (!op->socket && weft__hook_is_disk(op->fd))
    return plain_rest(op, done);
  weft__hook_timeout timeout = weft__hook_sock_timeout(
      op->fd, op->dir == WEFT_IO_READ ? SO_RCVTIMEO : SO_SNDTIMEO);
  int64_t started = timeout >= 0 ? weft_now() : 0;
  bool use_plain = nowait_unsupported(op, first_error);
  for (;;) {
    weft__hook_timeout left = timeout;
    if (timeout >= 0) {
      left = timeout - (weft_now() - started);
      if (left < 0)
        left = 0;
    }
    int rc = weft__hook_wait_fd(op->fd, op->dir, left);
    if (rc < 0)
      return stop(done, weft__hook_wait_errno(rc, timeout, started));
    r = use_plain ? op->plain(op, done) : op->nowait(op, done);
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
