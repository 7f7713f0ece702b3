/*
 * The socket calls: recv, recvfrom, recvmsg, send, sendto, sendmsg and
 * their fortified forms, tried with MSG_DONTWAIT (transfer.c); accept and
 * accept4, which have no such flag and flip a blocking listening socket to
 * non-blocking (status.c); connect, which sets O_NONBLOCK for its one call
 * and puts the program's flags back before it waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "hook-private.h"
#include "status.h"
#include "transfer.h"
#include "view.h"

extern void __chk_fail(void) __attribute__((noreturn));

static int call_flags(const struct weft__hook_op *op, bool nowait) {
  return nowait ? op->flags | MSG_DONTWAIT : op->flags;
}

static ssize_t recvfrom_try(struct weft__hook_op *op, size_t done,
                            bool nowait) {
  /* The sender's address is the first piece's (a stream has one). */
  return REAL(recvfrom)(op->fd, (char *)op->buf + done, op->total - done,
                        call_flags(op, nowait), done ? NULL : op->addr,
                        done ? NULL : op->addrlen);
}
static ssize_t recvfrom_nowait(struct weft__hook_op *op, size_t done) {
  return recvfrom_try(op, done, true);
}
static ssize_t recvfrom_plain(struct weft__hook_op *op, size_t done) {
  return recvfrom_try(op, done, false);
}

static ssize_t sendto_try(struct weft__hook_op *op, size_t done, bool nowait) {
  return REAL(sendto)(op->fd, (const char *)op->cbuf + done, op->total - done,
                      call_flags(op, nowait), op->caddr, op->caddrlen);
}
static ssize_t sendto_nowait(struct weft__hook_op *op, size_t done) {
  return sendto_try(op, done, true);
}
static ssize_t sendto_plain(struct weft__hook_op *op, size_t done) {
  return sendto_try(op, done, false);
}

/* recvmsg and sendmsg from byte `done` on: the iovecs advanced, the
 * control data with the first piece only. */
static ssize_t msg_try(struct weft__hook_op *op, size_t done, bool nowait) {
  const struct msghdr *m = op->dir == WEFT_IO_READ ? op->msg : op->cmsg;
  if (done == 0)
    return op->dir == WEFT_IO_READ
               ? REAL(recvmsg)(op->fd, op->msg, call_flags(op, nowait))
               : REAL(sendmsg)(op->fd, op->cmsg, call_flags(op, nowait));
  struct weft__hook_iovs rest_iov;
  if (!weft__hook_iovs_from(&rest_iov, m->msg_iov, (int)m->msg_iovlen, done))
    return -1;
  struct msghdr rest = {.msg_iov = (struct iovec *)rest_iov.v,
                        .msg_iovlen = (size_t)rest_iov.n};
  ssize_t r = op->dir == WEFT_IO_READ
                  ? REAL(recvmsg)(op->fd, &rest, call_flags(op, nowait))
                  : REAL(sendmsg)(op->fd, &rest, call_flags(op, nowait));
  weft__hook_iovs_free(&rest_iov);
  /* What the rest's call learnt of the message (a truncation, say). */
  if (r >= 0 && op->dir == WEFT_IO_READ)
    op->msg->msg_flags |= rest.msg_flags;
  return r;
}
ssize_t weft__hook_msg_nowait(struct weft__hook_op *op, size_t done) {
  return msg_try(op, done, true);
}
static ssize_t msg_plain(struct weft__hook_op *op, size_t done) {
  return msg_try(op, done, false);
}

WEFT__HOOK_API ssize_t recvfrom(int fd, void *buf, size_t len, int flags,
                                struct sockaddr *addr, socklen_t *addrlen) {
  if (!weft__hook_here())
    return REAL(recvfrom)(fd, buf, len, flags, addr, addrlen);
  struct weft__hook_op op = {.fd = fd,
                             .dir = WEFT_IO_READ,
                             .socket = true,
                             .all = flags & MSG_WAITALL,
                             .total = len,
                             .nowait = recvfrom_nowait,
                             .plain = recvfrom_plain,
                             .buf = buf,
                             .flags = flags,
                             .addr = addr,
                             .addrlen = addrlen};
  return weft__hook_transfer(&op);
}

WEFT__HOOK_API ssize_t recv(int fd, void *buf, size_t len, int flags) {
  if (!weft__hook_here())
    return REAL(recv)(fd, buf, len, flags);
  return recvfrom(fd, buf, len, flags, NULL, NULL);
}

WEFT__HOOK_API ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen,
                                  int flags) {
  if (len > buflen)
    __chk_fail();
  return recv(fd, buf, len, flags);
}

WEFT__HOOK_API ssize_t __recvfrom_chk(int fd, void *buf, size_t len,
                                      size_t buflen, int flags,
                                      struct sockaddr *addr,
                                      socklen_t *addrlen) {
  if (len > buflen)
    __chk_fail();
  return recvfrom(fd, buf, len, flags, addr, addrlen);
}

WEFT__HOOK_API ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  if (!weft__hook_here() || !msg || (int)msg->msg_iovlen < 0)
    return REAL(recvmsg)(fd, msg, flags);
  struct weft__hook_op op = {
      .fd = fd,
      .dir = WEFT_IO_READ,
      .socket = true,
      .all = flags & MSG_WAITALL,
      .total = weft__hook_iov_total(msg->msg_iov, (int)msg->msg_iovlen),
      .nowait = weft__hook_msg_nowait,
      .plain = msg_plain,
      .flags = flags,
      .msg = msg};
  return weft__hook_transfer(&op);
}

WEFT__HOOK_API ssize_t sendto(int fd, const void *buf, size_t len, int flags,
                              const struct sockaddr *addr, socklen_t addrlen) {
  if (!weft__hook_here())
    return REAL(sendto)(fd, buf, len, flags, addr, addrlen);
  struct weft__hook_op op = {.fd = fd,
                             .dir = WEFT_IO_WRITE,
                             .socket = true,
                             .all = true,
                             .total = len,
                             .nowait = sendto_nowait,
                             .plain = sendto_plain,
                             .cbuf = buf,
                             .flags = flags,
                             .caddr = addr,
                             .caddrlen = addrlen};
  return weft__hook_transfer(&op);
}

WEFT__HOOK_API ssize_t send(int fd, const void *buf, size_t len, int flags) {
  if (!weft__hook_here())
    return REAL(send)(fd, buf, len, flags);
  return sendto(fd, buf, len, flags, NULL, 0);
}

WEFT__HOOK_API ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  if (!weft__hook_here() || !msg || (int)msg->msg_iovlen < 0)
    return REAL(sendmsg)(fd, msg, flags);
  struct weft__hook_op op = {
      .fd = fd,
      .dir = WEFT_IO_WRITE,
      .socket = true,
      .all = true,
      .total = weft__hook_iov_total(msg->msg_iov, (int)msg->msg_iovlen),
      .nowait = weft__hook_msg_nowait,
      .plain = msg_plain,
      .flags = flags,
      .cmsg = msg};
  return weft__hook_transfer(&op);
}

/* accept4 in a task: a listening socket the program made blocking is
 * flipped to non-blocking (once), then each accept that finds no
 * connection parks until one comes (SO_RCVTIMEO bounds it, as in libc). */
static int accept_in_task(int fd, struct sockaddr *addr, socklen_t *addrlen,
                          int flags) {
  int saved = errno;
  bool view;
  bool user_nonblocking;
  if (weft__hook_flipped_view(fd, &view)) {
    user_nonblocking = view;
  } else {
    int fl = REAL(fcntl)(fd, F_GETFL);
    if (fl < 0)
      return REAL(accept4)(fd, addr, addrlen, flags); /* its own errno */
    user_nonblocking = fl & O_NONBLOCK;
    if (!user_nonblocking && weft__hook_flip(fd) < 0) {
      errno = saved;
      return REAL(accept4)(fd, addr, addrlen, flags); /* blocks, as libc */
    }
  }
  errno = saved;
  weft__hook_timeout timeout = WEFT_FOREVER;
  int64_t started = 0;
  bool timed = false;
  for (;;) {
    int c = REAL(accept4)(fd, addr, addrlen, flags);
    if (c >= 0) {
      /* A new file: whatever the hub knew of its number is of an old one,
       * closed behind its back. */
      int e = errno;
      weft_io_forget(c);
      errno = e;
      return c;
    }
    if ((errno != EAGAIN && errno != EWOULDBLOCK) || user_nonblocking)
      return -1;
    weft_io_found(fd, WEFT_IO_READ, WEFT_IO_FOUND_NOT_READY);
    errno = EAGAIN;
    if (!timed) {
      timeout = weft__hook_sock_timeout(fd, SO_RCVTIMEO);
      started = timeout >= 0 ? weft_now() : 0;
      timed = true;
    }
    weft__hook_timeout left = timeout;
    if (timeout >= 0 && (left = timeout - (weft_now() - started)) < 0)
      left = 0;
    int rc = weft__hook_wait_fd(fd, WEFT_IO_READ, left);
    if (rc < 0)
      return weft__hook_fail(weft__hook_wait_errno(rc, timeout, started));
  }
}

/* accept4 outside a task on a socket the hooks flipped: blocking, as the
 * program expects it to be. */
static int accept_blocking(int fd, struct sockaddr *addr, socklen_t *addrlen,
                           int flags) {
  weft__hook_timeout timeout = weft__hook_sock_timeout(fd, SO_RCVTIMEO);
  int64_t started = timeout >= 0 ? weft_now() : 0;
  for (;;) {
    int c = REAL(accept4)(fd, addr, addrlen, flags);
    if (c >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
      return c;
    weft__hook_timeout left = timeout;
    if (timeout >= 0 && (left = timeout - (weft_now() - started)) < 0)
      left = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int ms = left < 0 ? -1 : (int)((left + 999999) / 1000000);
    int n = REAL(poll)(&p, 1, ms);
    if (n == 0)
      return weft__hook_fail(EAGAIN);
    if (n < 0 && errno == EINTR)
      return -1; /* a blocking accept is interrupted too */
  }
}

WEFT__HOOK_API int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen,
                           int flags) {
  bool view;
  int c;
  if (weft__hook_here())
    c = accept_in_task(fd, addr, addrlen, flags);
  else if (weft__hook_flipped_view(fd, &view) && !view)
    c = accept_blocking(fd, addr, addrlen, flags);
  else
    c = REAL(accept4)(fd, addr, addrlen, flags);
  /* A new socket: what view.c kept of its number was of an old one. */
  if (c >= 0)
    weft__hook_view_drop(c);
  return c;
}

WEFT__HOOK_API int accept(int fd, struct sockaddr *addr, socklen_t *addrlen) {
  return accept4(fd, addr, addrlen, 0);
}

/* setsockopt: a socket's timeouts, which the hooks keep (view.c), change
 * with it; every option at SOL_SOCKET drops what is kept. */
WEFT__HOOK_API int setsockopt(int fd, int level, int name, const void *value,
                              socklen_t len) {
  if (level != SOL_SOCKET)
    return REAL(setsockopt)(fd, level, name, value, len);
  weft__hook_view_hold(fd);
  int r = REAL(setsockopt)(fd, level, name, value, len);
  weft__hook_view_release(fd);
  return r;
}

/* connect on a blocking socket in a task: started non-blocking, the
 * program's flags put back, then the task parks until the connection is
 * made or refused (SO_SNDTIMEO bounds it, with EINPROGRESS, as in libc). */
/* The socket is non-blocking for the connect's own sake while held, and
 * what a hooked call on another thread learns of it meanwhile is not kept
 * (view.c). Keeps errno. */
static int set_flags_held(int fd, int fl) {
  int e = errno;
  weft__hook_view_hold(fd);
  int r = REAL(fcntl)(fd, F_SETFL, fl);
  if (r != 0)
    weft__hook_view_release(fd);
  errno = e;
  return r;
}

static void restore_flags(int fd, int fl) {
  int e = errno;
  REAL(fcntl)(fd, F_SETFL, fl);
  weft__hook_view_release(fd);
  errno = e;
}

static int connect_in_task(int fd, const struct sockaddr *addr, socklen_t len) {
  int saved = errno;
  int fl = REAL(fcntl)(fd, F_GETFL);
  if (fl < 0 || (fl & O_NONBLOCK)) {
    errno = saved;
    return REAL(connect)(fd, addr, len);
  }
  if (set_flags_held(fd, fl | O_NONBLOCK) != 0) {
    errno = saved;
    return REAL(connect)(fd, addr, len);
  }
  int rc = REAL(connect)(fd, addr, len);
  int e = errno;
  restore_flags(fd, fl);
  if (rc == 0)
    return 0;
  weft__hook_timeout timeout = weft__hook_sock_timeout(fd, SO_SNDTIMEO);
  int64_t started = timeout >= 0 ? weft_now() : 0;
  if (e == EAGAIN) {
    /* A Unix socket whose listener's queue is full: try again as the
     * queue drains, as a blocking connect waits. */
    for (int64_t pause = WEFT_MS(1);;
         pause = pause < WEFT_MS(50) ? pause * 2 : pause) {
      if (timeout >= 0 && weft_now() - started >= timeout)
        return weft__hook_fail(EAGAIN);
      int w = weft_sleep(pause);
      if (w < 0)
        return weft__hook_fail(-w);
      if (set_flags_held(fd, fl | O_NONBLOCK) != 0)
        return -1;
      rc = REAL(connect)(fd, addr, len);
      e = errno;
      restore_flags(fd, fl);
      if (rc == 0)
        return 0;
      if (e != EAGAIN)
        break;
    }
  }
  if (e != EINPROGRESS)
    return weft__hook_fail(e);
  int w = weft__hook_wait_fd(fd, WEFT_IO_WRITE, timeout);
  if (w < 0) {
    int we = weft__hook_wait_errno(w, timeout, started);
    return weft__hook_fail(we == EAGAIN ? EINPROGRESS : we);
  }
  int err = 0;
  socklen_t elen = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
    return -1;
  if (err)
    return weft__hook_fail(err);
  errno = saved;
  return 0;
}

WEFT__HOOK_API int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  if (!weft__hook_here())
    return REAL(connect)(fd, addr, len);
  return connect_in_task(fd, addr, len);
}
