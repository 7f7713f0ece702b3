/*
 * The cooperative fd operations: read, write, readv, writev, recv, send,
 * accept, sendfile (connect, which waits differently, is in connect.c).
 * See include/weft/io.h.
 *
 * Each is one loop: try the system call without blocking; on EAGAIN wait
 * for the fd (a task parks in its hub, a thread polls) and try again, until
 * it completes, fails, or the wait ends in a timeout, a cancellation or a
 * close. In a task the call must never block the thread, so recv and send
 * pass MSG_DONTWAIT and the others first make the fd non-blocking. Outside
 * a task the fd is left as it is: on a blocking fd the call blocks in the
 * kernel, after a wait for readiness when a timeout bounds it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <weft/io.h>

#include "../hub/hub-private.h"
#include "../hub/thread-cancel.h"
#include "io-private.h"

enum op_kind { READ, WRITE, READV, WRITEV, RECV, SEND, ACCEPT, SENDFILE };

/* One operation's arguments; which fields count depends on kind. */
struct op {
  enum op_kind kind;
  void *buf;
  const void *cbuf;
  size_t len;
  const struct iovec *iov;
  int iovcnt;
  int flags; /* recv, send: the caller's MSG_*; accept: SOCK_* for the new fd */
  struct sockaddr *addr;
  socklen_t *addrlen;
  int in_fd;
  off_t *offset;
};

/* Whether the operation is made non-blocking by its own flags rather than
 * by the fd's. */
static bool per_call_nonblocking(enum op_kind k) {
  return k == RECV || k == SEND;
}

/* The kind of call a guess that the fd blocks is kept for (see
 * io-private.h); sendfile takes no guess, as a wait on out_fd cannot see
 * that in_fd is wrong. */
static unsigned guess_kind(enum op_kind k) {
  switch (k) {
  case READ:
  case READV:
  case RECV:
    return WEFT__IO_READS;
  case WRITE:
  case WRITEV:
  case SEND:
    return WEFT__IO_WRITES;
  case ACCEPT:
    return WEFT__IO_ACCEPTS;
  case SENDFILE:
    return WEFT__IO_NO_GUESS;
  }
  return WEFT__IO_NO_GUESS;
}

static unsigned direction(enum op_kind k) {
  return k == READ || k == READV || k == RECV || k == ACCEPT ? WEFT_IO_READ
                                                             : WEFT_IO_WRITE;
}

/* One try of the system call. In a task it never blocks: the fd is
 * non-blocking, or the flags say MSG_DONTWAIT. */
static ssize_t attempt(int fd, const struct op *o) {
  switch (o->kind) {
  case READ:
    return read(fd, o->buf, o->len);
  case WRITE:
    return write(fd, o->cbuf, o->len);
  case READV:
    return readv(fd, o->iov, o->iovcnt);
  case WRITEV:
    return writev(fd, o->iov, o->iovcnt);
  case RECV:
    return recv(fd, o->buf, o->len, o->flags | MSG_DONTWAIT);
  case SEND:
    return send(fd, o->cbuf, o->len, o->flags | MSG_DONTWAIT | MSG_NOSIGNAL);
  case ACCEPT:
    return accept4(fd, o->addr, o->addrlen, o->flags);
  case SENDFILE:
    return sendfile(fd, o->in_fd, o->offset, o->len);
  }
  errno = EINVAL;
  return -1;
}

/* Whether an fd open with access mode acc (O_RDONLY, ...) can be read, or
 * written. */
static bool can_read(int acc) { return acc == O_RDONLY || acc == O_RDWR; }
static bool can_write(int acc) { return acc == O_WRONLY || acc == O_RDWR; }

/* Outside a task, on a blocking fd that a timeout bounds: the call cannot
 * simply be made first (it would block past the timeout), yet a wait for
 * readiness must not hide an error the call would report at once (poll
 * never reports a pipe's write end readable, nor a socket that does not
 * listen as having a connection). So the call is tried without blocking
 * where the kernel allows it per call (recvmsg/sendmsg with MSG_DONTWAIT
 * on a socket, preadv2/pwritev2 with RWF_NOWAIT on a pipe; an accept on a
 * socket that does not listen never blocks), and fails at
 * once on what the fd's flags already say (a wrong access mode).
 * fl: the fd's F_GETFL flags. Returns the call's result, or -EAGAIN: wait
 * for readiness, then make the plain call. */
static ssize_t try_blocking_fd(int fd, int fl, const struct op *o) {
  int acc = fl & O_ACCMODE;
  struct iovec one;
  const struct iovec *iov = o->iov;
  int iovcnt = o->iovcnt;
  switch (o->kind) {
  case READ:
  case WRITE:
    one = (struct iovec){o->kind == READ ? o->buf : (void *)o->cbuf, o->len};
    iov = &one;
    iovcnt = 1;
    break;
  case READV:
  case WRITEV:
    break;
  case ACCEPT: {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
      return errno == ENOPROTOOPT ? -EAGAIN : -errno; /* -ENOTSOCK, ... */
    if (listening)
      return -EAGAIN;
    ssize_t r; /* refused at once: -EINVAL, -EOPNOTSUPP */
    while ((r = attempt(fd, o)) < 0 && errno == EINTR)
      ;
    return r < 0 ? -errno : r;
  }
  case SENDFILE: {
    int in_fl = fcntl(o->in_fd, F_GETFL);
    if (!can_write(acc) || in_fl < 0 || !can_read(in_fl & O_ACCMODE))
      return -EBADF;
    return -EAGAIN;
  }
  default:
    return -EAGAIN;
  }
  bool rd = o->kind == READ || o->kind == READV;
  if (rd ? !can_read(acc) : !can_write(acc))
    return -EBADF; /* as read(2) or write(2) would say */
  /* A socket: recvmsg and sendmsg say "would block" per call on every
   * kernel (and under qemu-user, which knows no preadv2), with read's and
   * write's errors (and SIGPIPE, as write raises it). */
  struct msghdr mh = {.msg_iov = (struct iovec *)iov,
                      .msg_iovlen = (size_t)iovcnt};
  for (;;) {
    ssize_t r =
        rd ? recvmsg(fd, &mh, MSG_DONTWAIT) : sendmsg(fd, &mh, MSG_DONTWAIT);
    if (r >= 0)
      return r;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return -EAGAIN;
    if (errno != ENOTSOCK)
      return -errno;
    break; /* a pipe, a tty, a file: per-call flags of preadv2 */
  }
  for (;;) {
    ssize_t r = rd ? preadv2(fd, iov, iovcnt, -1, RWF_NOWAIT)
                   : pwritev2(fd, iov, iovcnt, -1, RWF_NOWAIT);
    if (r >= 0)
      return r;
    /* EOPNOTSUPP: the file cannot say "would block" per call (a tty);
     * ENOSYS: a kernel without preadv2; EINVAL: one without RWF_NOWAIT, or
     * an fd it refuses: the plain call after the wait will tell. */
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EOPNOTSUPP || errno == ENOSYS ||
        errno == EINVAL)
      return -EAGAIN;
    return -errno;
  }
}

/* Tells the hub of the task what a try on fd found (see
 * weft__hub_fd_not_ready): a try that would have blocked, or a read that
 * came back short (one that consumed what it read: not a peek, not urgent
 * or queued errors), says the fd is not ready, which lets the next wait
 * arm it without a system call; an accepted connection is a new file,
 * whatever the number named before. */
static void tell_hub(weft__hub *h, int fd, unsigned pdir, const struct op *o,
                     ssize_t r, bool blocked) {
  if (blocked) {
    weft__hub_fd_not_ready(h, fd, pdir, false);
  } else if (o->kind == ACCEPT) {
    if (r >= 0)
      weft__hub_fd_opened(h, (int)r);
  } else if ((o->kind == READ ||
              (o->kind == RECV && !(o->flags & (MSG_PEEK | MSG_OOB |
                                                MSG_ERRQUEUE | MSG_TRUNC)))) &&
             r > 0 && (size_t)r < o->len) {
    weft__hub_fd_not_ready(h, fd, pdir, true);
  }
}

static ssize_t run(int fd, int64_t timeout, struct op *o) {
  if (weft__timeout_bad(timeout))
    return -EINVAL; /* before the fd is made non-blocking */
  if (fd < 0)
    return -EBADF;
  weft_task *self = weft__task_running();
  int64_t deadline = timeout == 0 ? 0 : weft__deadline_after(timeout);
  unsigned dir = direction(o->kind);
  bool new_file = false; /* weft had not made it non-blocking */
  if (!per_call_nonblocking(o->kind)) {
    if (self) {
      int rc = weft__io_make_nonblocking(fd);
      if (rc < 0)
        return rc;
      new_file = rc == 1;
    } else if (deadline != INT64_MAX || weft__thread_cancellable()) {
      /* A timeout, a deadline, or a thread that may be cancelled. */
      int fl = fcntl(fd, F_GETFL);
      if (fl < 0)
        return -errno; /* -EBADF */
      if (!(fl & O_NONBLOCK)) {
        /* A blocking fd in a thread: a try that cannot block, then the
         * timeout bounds the wait for readiness; the call then blocks only
         * if another reader or writer took what was ready. */
        ssize_t r = try_blocking_fd(fd, fl, o);
        if (r != -EAGAIN)
          return r;
        int rc = weft__io_wait_thread(fd, dir, deadline);
        if (rc < 0)
          return rc;
      }
    }
  }
  /* In a task, whether to wait before the first try: see
   * weft__hub_fd_wait_first. A poll (0) always tries. */
  unsigned pdir = weft__io_poller_events(dir);
  unsigned kind = guess_kind(o->kind);
  if (self && new_file)
    weft__hub_fd_tried(self->hub, fd, pdir, kind, false);
  bool wait_first = self && timeout != 0 && !self->cancelled && kind &&
                    weft__hub_fd_wait_first(self->hub, fd, pdir, kind);
  bool first_try = !wait_first;
  for (;;) {
    if (!wait_first) {
      ssize_t r = attempt(fd, o);
      int err = r < 0 ? errno : 0;
      /* ECONNABORTED: a connection was reset while queued; Linux says to
       * retry accept, as for EINTR. */
      if (err == EINTR || (o->kind == ACCEPT && err == ECONNABORTED))
        continue;
      bool blocked = err == EAGAIN || err == EWOULDBLOCK;
      if (self) {
        if (first_try && kind)
          weft__hub_fd_tried(self->hub, fd, pdir, kind, blocked);
        tell_hub(self->hub, fd, pdir, o, r, blocked);
      }
      first_try = false;
      if (!blocked)
        return r >= 0 ? r : -err;
      if (timeout == 0) /* a poll, or a deadline passed (below) */
        return deadline == 0 ? -ETIMEDOUT : weft__timed_out(deadline);
    }
    /* Many hubs may accept from one socket (the cluster's workers): one
     * connection wakes one of them. */
    int rc = weft__io_wait_until(
        self, fd, o->kind == ACCEPT ? dir | WEFT__IO_EXCLUSIVE : dir, deadline);
    if (wait_first && (rc == -ETIMEDOUT || rc == weft__timed_out(deadline))) {
      /* The time was up before the first try (a deadline that had passed,
       * weft_deadline_set, or a scope's, which may say -ECANCELED): what
       * is there may still be taken, once. */
      wait_first = false;
      timeout = 0;
      continue;
    }
    if (rc == -EPERM && wait_first) {
      /* A guess left on a number now held by a file epoll cannot watch (a
       * regular file, after a plain close and reuse): such a file never
       * blocks, so try it. */
      weft__hub_fd_tried(self->hub, fd, pdir, kind, false);
      wait_first = false;
      continue;
    }
    wait_first = false;
    if (rc < 0)
      return rc;
  }
}

ssize_t weft_io_read(int fd, void *buf, size_t len, int64_t timeout) {
  return run(fd, timeout, &(struct op){.kind = READ, .buf = buf, .len = len});
}

ssize_t weft_io_write(int fd, const void *buf, size_t len, int64_t timeout) {
  return run(fd, timeout, &(struct op){.kind = WRITE, .cbuf = buf, .len = len});
}

ssize_t weft_io_readv(int fd, const struct iovec *iov, int iovcnt,
                      int64_t timeout) {
  if (iovcnt < 0 || iovcnt > IOV_MAX)
    return -EINVAL;
  return run(fd, timeout,
             &(struct op){.kind = READV, .iov = iov, .iovcnt = iovcnt});
}

ssize_t weft_io_writev(int fd, const struct iovec *iov, int iovcnt,
                       int64_t timeout) {
  if (iovcnt < 0 || iovcnt > IOV_MAX)
    return -EINVAL;
  return run(fd, timeout,
             &(struct op){.kind = WRITEV, .iov = iov, .iovcnt = iovcnt});
}

ssize_t weft_io_recv(int fd, void *buf, size_t len, int flags,
                     int64_t timeout) {
  if (flags & ~WEFT__IO_RECV_FLAGS)
    return -EINVAL;
  return run(
      fd, timeout,
      &(struct op){.kind = RECV, .buf = buf, .len = len, .flags = flags});
}

ssize_t weft_io_send(int fd, const void *buf, size_t len, int flags,
                     int64_t timeout) {
  if (flags & ~WEFT__IO_SEND_FLAGS)
    return -EINVAL;
  return run(
      fd, timeout,
      &(struct op){.kind = SEND, .cbuf = buf, .len = len, .flags = flags});
}

int weft_io_accept(int fd, struct sockaddr *addr, socklen_t *addrlen,
                   int64_t timeout) {
  int flags = SOCK_CLOEXEC | (weft__task_running() ? SOCK_NONBLOCK : 0);
  return (int)run(
      fd, timeout,
      &(struct op){
          .kind = ACCEPT, .addr = addr, .addrlen = addrlen, .flags = flags});
}

ssize_t weft_io_sendfile(int out_fd, int in_fd, off_t *offset, size_t count,
                         int64_t timeout) {
  return run(
      out_fd, timeout,
      &(struct op){
          .kind = SENDFILE, .in_fd = in_fd, .offset = offset, .len = count});
}
