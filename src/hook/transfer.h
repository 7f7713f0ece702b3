/*
 * The one loop behind every hooked data call (read, write, readv, writev,
 * recv, recvfrom, recvmsg, send, sendto, sendmsg): try without blocking,
 * and when that would block on an fd the program made blocking, park the
 * task until the fd is ready and try again. See transfer.c.
 */
#ifndef WEFT_HOOK_TRANSFER_H
#define WEFT_HOOK_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct weft__hook_op;

/* One attempt at moving the bytes from offset `done` of the call's buffer
 * on. Returns a count, or -1 with errno set. */
typedef ssize_t weft__hook_try(struct weft__hook_op *op, size_t done);

struct weft__hook_op {
  int fd;
  unsigned dir;           /* WEFT_IO_READ or WEFT_IO_WRITE */
  bool socket;            /* recv/send family: errors from the socket layer are
                             final, and the caller's MSG_DONTWAIT is in `flags` */
  bool all;               /* a blocking call moves all `total` bytes (a write; a
                             recv with MSG_WAITALL), not the first few */
  size_t total;           /* bytes asked for */
  weft__hook_try *nowait; /* never blocks */
  weft__hook_try *plain;  /* the real call, as the program made it */
  /* read, write, readv, writev: the try as a socket call (MSG_DONTWAIT),
   * for a socket when the kernel refuses RWF_NOWAIT. */
  weft__hook_try *socket_nowait;
  /* Set by the loop for a plain write made after a wait: at most this many
   * bytes per call (0: all), so that it cannot block (see transfer.c). */
  size_t plain_max;
  /* The call's arguments, as its try functions need them. */
  void *buf;
  const void *cbuf;
  const struct iovec *iov;
  int iovcnt;
  int flags;
  struct sockaddr *addr;
  socklen_t *addrlen;
  const struct sockaddr *caddr;
  socklen_t caddrlen;
  struct msghdr *msg;
  const struct msghdr *cmsg;
};

/* Runs op in the calling task (weft__hook_here() was true): returns what
 * the real call would, errno included. */
ssize_t weft__hook_transfer(struct weft__hook_op *op);

/* The iovecs of a call from byte `done` on: on the stack when they fit,
 * else in memory of their own. */
enum { WEFT__HOOK_IOV_ON_STACK = 8 };
struct weft__hook_iovs {
  const struct iovec *v; /* the iovecs from `done` on */
  int n;                 /* how many */
  struct iovec local[WEFT__HOOK_IOV_ON_STACK];
  struct iovec *heap;
};

/* Fills r with iov[0..iovcnt) from byte `done` on (iov itself when done is
 * 0). Returns false, errno ENOMEM, when the copy finds no memory. */
bool weft__hook_iovs_from(struct weft__hook_iovs *r, const struct iovec *iov,
                          int iovcnt, size_t done);

/* Frees what weft__hook_iovs_from took, keeping errno. */
void weft__hook_iovs_free(struct weft__hook_iovs *r);

/* recvmsg or sendmsg (as op->dir says) of op->msg or op->cmsg from byte
 * `done` on, with MSG_DONTWAIT: the try of recvmsg and sendmsg, and of
 * readv and writev on a socket that cannot take RWF_NOWAIT (sock.c). */
ssize_t weft__hook_msg_nowait(struct weft__hook_op *op, size_t done);

/* The bytes iov[0..iovcnt) holds (SSIZE_MAX when more). */
size_t weft__hook_iov_total(const struct iovec *iov, int iovcnt);

#endif
