/*
 * weft_io_sendall: weft_io_send until every byte is gone. See
 * include/weft/io.h.
 *
 * The timeout bounds the whole call: it becomes one absolute deadline
 * after a first try that does not wait (which is all most calls need),
 * and each send gets only the time left, so that a peer that
 * reads a byte now and then cannot stretch the call past it. Once the
 * deadline has passed, a send still tries once without waiting (time left
 * 0), so that bytes the socket can take at once still go: the deadline
 * bounds waiting, not work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <weft/io.h>

#include "../hub/timer.h"
#include "io-private.h"

ssize_t weft_io_sendall(int fd, const void *buf, size_t len, int flags,
                        int64_t timeout) {
  /* Bad input is refused before the fd is touched, as weft_io_send does;
   * a count above SSIZE_MAX could not be returned. */
  if (weft__timeout_bad(timeout) || (flags & ~WEFT__IO_SEND_FLAGS) ||
      len > SSIZE_MAX)
    return -EINVAL;
  const char *p = buf;
  size_t sent = 0;
  /* First a try that does not wait: most sends go out whole at once, and
   * then the clock need not be read at all. */
  if (timeout != 0 && len > 0) {
    ssize_t n = weft_io_send(fd, p, len, flags, 0);
    if (n < 0 && n != -ETIMEDOUT)
      return n;
    sent = n > 0 ? (size_t)n : 0;
  }
  /* 0 (try without waiting) and WEFT_FOREVER pass to each send as they
   * are; any other timeout is counted down from one deadline. */
  bool counted = timeout > 0 && sent < len;
  int64_t deadline = counted ? weft__deadline_after(timeout) : 0;
  while (sent < len) {
    int64_t left = timeout;
    if (counted) {
      left = deadline - weft__now();
      if (left < 0)
        left = 0;
    }
    ssize_t n = weft_io_send(fd, p + sent, len - sent, flags, left);
    if (n < 0)
      return n;
    sent += (size_t)n;
  }
  return (ssize_t)len;
}
