/*
 * read, write, readv, writev and glibc's fortified read (__read_chk): in a
 * task, tried with preadv2/pwritev2 and RWF_NOWAIT at the current file
 * position (offset -1), which neither blocks nor touches O_NONBLOCK; see
 * transfer.c for the rest.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hook-private.h"
#include "transfer.h"

/* glibc's report of a fortified call's overflow: aborts. */
extern void __chk_fail(void) __attribute__((noreturn));

/* Set once preadv2 or pwritev2 said ENOSYS (a kernel before 4.6, or an
 * emulator such as qemu-user that lacks them): tries then go straight to
 * the wait for readiness and the plain call (transfer.c). */
static atomic_bool no_rwf_nowait;

/* One preadv2 or pwritev2 (as `call` is) with RWF_NOWAIT at the current
 * position. */
static ssize_t nowait_call(ssize_t (*call)(int, const struct iovec *, int,
                                           off_t, int),
                           int fd, const struct iovec *v, int n) {
  if (atomic_load_explicit(&no_rwf_nowait, memory_order_relaxed)) {
    errno = ENOSYS;
    return -1;
  }
  ssize_t r = call(fd, v, n, -1, RWF_NOWAIT);
  if (r < 0 && errno == ENOSYS)
    atomic_store_explicit(&no_rwf_nowait, true, memory_order_relaxed);
  return r;
}

static ssize_t read_nowait(struct weft__hook_op *op, size_t done) {
  struct iovec v = {(char *)op->buf + done, op->total - done};
  return nowait_call(preadv2, op->fd, &v, 1);
}

static ssize_t read_plain(struct weft__hook_op *op, size_t done) {
  return REAL(read)(op->fd, (char *)op->buf + done, op->total - done);
}

static ssize_t write_nowait(struct weft__hook_op *op, size_t done) {
  struct iovec v = {(char *)op->cbuf + done, op->total - done};
  return nowait_call(pwritev2, op->fd, &v, 1);
}

static ssize_t write_plain(struct weft__hook_op *op, size_t done) {
  size_t n = op->total - done;
  if (op->plain_max && n > op->plain_max)
    n = op->plain_max;
  return REAL(write)(op->fd, (const char *)op->cbuf + done, n);
}

static ssize_t read_socket(struct weft__hook_op *op, size_t done) {
  return REAL(recv)(op->fd, (char *)op->buf + done, op->total - done,
                    MSG_DONTWAIT);
}

static ssize_t write_socket(struct weft__hook_op *op, size_t done) {
  return REAL(send)(op->fd, (const char *)op->cbuf + done, op->total - done,
                    MSG_DONTWAIT);
}

/* readv and writev: the iovecs from `done` on, through the right call. */
static ssize_t iov_call(struct weft__hook_op *op, size_t done, bool nowait) {
  struct weft__hook_iovs rest;
  if (!weft__hook_iovs_from(&rest, op->iov, op->iovcnt, done))
    return -1;
  ssize_t r;
  if (op->dir == WEFT_IO_READ)
    r = nowait ? nowait_call(preadv2, op->fd, rest.v, rest.n)
               : REAL(readv)(op->fd, rest.v, rest.n);
  else
    r = nowait ? nowait_call(pwritev2, op->fd, rest.v, rest.n)
               : REAL(writev)(op->fd, rest.v, rest.n);
  weft__hook_iovs_free(&rest);
  return r;
}

static ssize_t iov_nowait(struct weft__hook_op *op, size_t done) {
  return iov_call(op, done, true);
}

static ssize_t iov_plain(struct weft__hook_op *op, size_t done) {
  return iov_call(op, done, false);
}

WEFT__HOOK_API ssize_t read(int fd, void *buf, size_t len) {
  if (!weft__hook_here())
    return REAL(read)(fd, buf, len);
  struct weft__hook_op op = {.fd = fd,
                             .dir = WEFT_IO_READ,
                             .total = len,
                             .nowait = read_nowait,
                             .plain = read_plain,
                             .socket_nowait = read_socket,
                             .buf = buf};
  return weft__hook_transfer(&op);
}

WEFT__HOOK_API ssize_t __read_chk(int fd, void *buf, size_t len,
                                  size_t buflen) {
  if (len > buflen)
    __chk_fail(); /* as glibc's: the program overflows its buffer */
  return read(fd, buf, len);
}

WEFT__HOOK_API ssize_t write(int fd, const void *buf, size_t len) {
  if (!weft__hook_here())
    return REAL(write)(fd, buf, len);
  struct weft__hook_op op = {.fd = fd,
                             .dir = WEFT_IO_WRITE,
                             .all = true,
                             .total = len,
                             .nowait = write_nowait,
                             .plain = write_plain,
                             .socket_nowait = write_socket,
                             .cbuf = buf};
  return weft__hook_transfer(&op);
}

static ssize_t vector(int fd, const struct iovec *iov, int iovcnt,
                      unsigned dir) {
  /* On a socket without RWF_NOWAIT: recvmsg or sendmsg of the same. */
  struct msghdr m = {.msg_iov = (struct iovec *)iov,
                     .msg_iovlen = (size_t)iovcnt};
  struct weft__hook_op op = {.fd = fd,
                             .msg = &m,
                             .cmsg = &m,
                             .dir = dir,
                             .all = dir == WEFT_IO_WRITE,
                             .total = weft__hook_iov_total(iov, iovcnt),
                             .nowait = iov_nowait,
                             .plain = iov_plain,
                             .socket_nowait = weft__hook_msg_nowait,
                             .iov = iov,
                             .iovcnt = iovcnt};
  return weft__hook_transfer(&op);
}

WEFT__HOOK_API ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
  if (!weft__hook_here() || iovcnt < 0)
    return REAL(readv)(fd, iov, iovcnt);
  return vector(fd, iov, iovcnt, WEFT_IO_READ);
}

WEFT__HOOK_API ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  if (!weft__hook_here() || iovcnt < 0)
    return REAL(writev)(fd, iov, iovcnt);
  return vector(fd, iov, iovcnt, WEFT_IO_WRITE);
}
