/*
 * weft_io_connect: a connect that a timeout bounds and a cancellation ends.
 * See include/weft/io.h.
 *
 * The socket is non-blocking for the call (in a task it stays so, as for
 * every weft call; in a thread its flags are put back), so connect(2)
 * starts the connection and says EINPROGRESS; the socket turns writable
 * when the attempt ends, and SO_ERROR tells how.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <weft/io.h>

#include "../hub/hub-private.h"
#include "io-private.h"

/* The outcome of a connection attempt that made fd writable: 0, an
 * error, or 1 when it is still under way (the wake was spurious: SO_ERROR
 * is 0 but the socket has no peer yet; Go checks the same way). */
static int connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return -errno;
  if (err)
    return -err;
  struct sockaddr_storage peer;
  len = sizeof peer;
  if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0)
    return 0;
  return errno == ENOTCONN ? 1 : -errno;
}

static int connect_nonblocking(weft_task *self, int fd,
                               const struct sockaddr *addr, socklen_t addrlen,
                               int64_t timeout) {
  /* A socket being connected is, as a rule, new: its number may have been
   * closed behind weft's back (close(2)) and reused. */
  if (self)
    weft__hub_fd_opened(self->hub, fd);
  if (connect(fd, addr, addrlen) == 0)
    return 0;
  /* EINTR: the attempt goes on in the background, as EINPROGRESS. */
  if (errno != EINPROGRESS && errno != EINTR)
    return -errno;
  if (timeout == 0)
    return -ETIMEDOUT;
  int64_t deadline = weft__deadline_after(timeout);
  for (;;) {
    int rc = weft__io_wait_until(self, fd, WEFT_IO_WRITE, deadline);
    if (rc < 0)
      return rc;
    rc = connect_result(fd);
    if (rc <= 0)
      return rc;
  }
}

int weft_io_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
                    int64_t timeout) {
  if (weft__timeout_bad(timeout))
    return -EINVAL;
  if (fd < 0)
    return -EBADF;
  weft_task *self = weft__task_running();
  if (self) {
    int rc = weft__io_make_nonblocking(fd);
    return rc < 0 ? rc : connect_nonblocking(self, fd, addr, addrlen, timeout);
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0)
    return -errno;
  bool blocking = !(fl & O_NONBLOCK);
  if (blocking && weft__deadline_after(timeout) == INT64_MAX) {
    /* No timeout, no deadline: the ordinary blocking call. */
    if (connect(fd, addr, addrlen) == 0)
      return 0;
    if (errno != EINTR)
      return -errno;
    /* Interrupted by a signal: the attempt goes on; wait for its end. */
    for (;;) {
      int rc = weft__io_wait_thread(fd, WEFT_IO_WRITE, INT64_MAX);
      if (rc < 0)
        return rc;
      rc = connect_result(fd);
      if (rc <= 0)
        return rc;
    }
  }
  if (blocking && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -errno;
  int rc = connect_nonblocking(NULL, fd, addr, addrlen, timeout);
  if (blocking)
    fcntl(fd, F_SETFL, fl);
  return rc;
}
