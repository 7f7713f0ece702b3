/*
 * close, dup, dup2, dup3, fcntl and ioctl(FIONBIO): closing or replacing
 * an fd wakes the tasks of the thread's hub that wait on it (as
 * weft_io_close), and the program's view of O_NONBLOCK on a flipped
 * listening socket (status.c) is kept through fcntl, ioctl and dups.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hook-private.h"
#include "status.h"

/* Wakes the waiters on fd and forgets what the hooks know of it, keeping
 * errno: just before fd is closed or replaced. */
static void forget(int fd) {
  int saved = errno;
  weft_io_forget(fd);
  weft__hook_forget_waits(fd);
  weft__hook_flipped_drop(fd);
  errno = saved;
}

WEFT__HOOK_API int close(int fd) {
  if (fd >= 0)
    forget(fd);
  return REAL(close)(fd);
}

WEFT__HOOK_API int dup(int fd) {
  int r = REAL(dup)(fd);
  if (r >= 0)
    weft__hook_flipped_copy(fd, r);
  return r;
}

WEFT__HOOK_API int dup2(int from, int to) {
  if (from == to || to < 0)
    return REAL(dup2)(from, to);
  int saved = errno;
  /* A bad `from` changes nothing, so it must wake nothing either. */
  if (REAL(fcntl)(from, F_GETFD) < 0)
    return REAL(dup2)(from, to);
  errno = saved;
  forget(to);
  int r = REAL(dup2)(from, to);
  if (r >= 0)
    weft__hook_flipped_copy(from, to);
  return r;
}

WEFT__HOOK_API int dup3(int from, int to, int flags) {
  if (from == to || to < 0)
    return REAL(dup3)(from, to, flags);
  int saved = errno;
  if (REAL(fcntl)(from, F_GETFD) < 0 || (flags & ~O_CLOEXEC))
    return REAL(dup3)(from, to, flags);
  errno = saved;
  forget(to);
  int r = REAL(dup3)(from, to, flags);
  if (r >= 0)
    weft__hook_flipped_copy(from, to);
  return r;
}

/* fcntl's commands, with the program's view of O_NONBLOCK on a flipped
 * fd. `real` is fcntl or fcntl64, as the program called. */
static int fcntl_with(int (*real)(int, int, ...), int fd, int cmd, void *arg) {
  switch (cmd) {
  case F_GETFL: {
    int r = real(fd, cmd);
    bool view;
    if (r >= 0 && weft__hook_flipped_view(fd, &view))
      r = view ? r | O_NONBLOCK : r & ~O_NONBLOCK;
    return r;
  }
  case F_SETFL: {
    int fl = (int)(long)arg;
    bool view;
    if (weft__hook_flipped_view(fd, &view)) {
      int r = real(fd, cmd, fl | O_NONBLOCK);
      if (r == 0)
        weft__hook_flipped_set_view(fd, fl & O_NONBLOCK);
      return r;
    }
    return real(fd, cmd, fl);
  }
  case F_DUPFD:
  case F_DUPFD_CLOEXEC: {
    int r = real(fd, cmd, (int)(long)arg);
    if (r >= 0)
      weft__hook_flipped_copy(fd, r);
    return r;
  }
  default:
    return real(fd, cmd, arg);
  }
}

/* The argument after cmd, whatever its type: fcntl's third argument is an
 * int, a pointer or nothing, and reading it as a pointer-sized word is
 * what glibc's own fcntl does. */
#define THIRD_ARG(last, out)                                                   \
  do {                                                                         \
    va_list ap;                                                                \
    va_start(ap, last);                                                        \
    out = va_arg(ap, void *);                                                  \
    va_end(ap);                                                                \
  } while (0)

WEFT__HOOK_API int fcntl(int fd, int cmd, ...) {
  void *arg;
  THIRD_ARG(cmd, arg);
  return fcntl_with(REAL(fcntl), fd, cmd, arg);
}

WEFT__HOOK_API int fcntl64(int fd, int cmd, ...) {
  void *arg;
  THIRD_ARG(cmd, arg);
  return fcntl_with(REAL(fcntl64), fd, cmd, arg);
}

WEFT__HOOK_API int ioctl(int fd, unsigned long request, ...) {
  void *arg;
  THIRD_ARG(request, arg);
  bool view;
  if (request == FIONBIO && arg && weft__hook_flipped_view(fd, &view)) {
    /* The fd stays non-blocking; the program's wish is kept. */
    int on = *(const int *)arg;
    weft__hook_flipped_set_view(fd, on != 0);
    return 0;
  }
  return REAL(ioctl)(fd, request, arg);
}
