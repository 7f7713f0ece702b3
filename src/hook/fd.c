/*
 * close, dup, dup2, dup3, fcntl and ioctl(FIONBIO), and the other calls
 * that close fds (fclose, close_range, closefrom): closing or replacing an
 * fd wakes the tasks of the thread's hub that wait on it (as
 * weft_io_close), the program's view of O_NONBLOCK on a flipped listening
 * socket (status.c) is kept through fcntl, ioctl and dups, and what the
 * hooks keep of a socket (view.c) is dropped once the call took effect.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hook-private.h"
#include "status.h"
#include "view.h"

/* Wakes the waiters on fd and forgets what the hooks know of it, keeping
 * errno: just before fd is closed or replaced. */
static void forget(int fd) {
  int saved = errno;
  weft_io_forget(fd);
  weft__hook_forget_waits(fd);
  weft__hook_flipped_drop(fd);
  errno = saved;
}

/* What forget leaves for after the call: fd's view, which a call still
 * under way on another thread may learn anew until fd is closed. Keeps
 * errno. */
static void forget_view(int fd) { weft__hook_view_drop(fd); }

WEFT__HOOK_API int close(int fd) {
  if (fd < 0)
    return REAL(close)(fd);
  forget(fd);
  int r = REAL(close)(fd);
  forget_view(fd);
  return r;
}

WEFT__HOOK_API int dup(int fd) {
  int r = REAL(dup)(fd);
  if (r >= 0) {
    weft__hook_flipped_copy(fd, r);
    forget_view(r);
  }
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
  forget_view(to);
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
  forget_view(to);
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
    int r;
    if (weft__hook_flipped_view(fd, &view)) {
      r = real(fd, cmd, fl | O_NONBLOCK);
      if (r == 0)
        weft__hook_flipped_set_view(fd, fl & O_NONBLOCK);
    } else {
      r = real(fd, cmd, fl);
    }
    forget_view(fd);
    return r;
  }
  case F_DUPFD:
  case F_DUPFD_CLOEXEC: {
    int r = real(fd, cmd, (int)(long)arg);
    if (r >= 0) {
      weft__hook_flipped_copy(fd, r);
      forget_view(r);
    }
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
    forget_view(fd);
    return 0;
  }
  int r = REAL(ioctl)(fd, request, arg);
  if (request == FIONBIO)
    forget_view(fd);
  return r;
}

WEFT__HOOK_API int fclose(FILE *f) {
  int saved = errno;
  int fd = f ? fileno(f) : -1;
  errno = saved;
  if (fd >= 0)
    forget(fd);
  int r = REAL(fclose)(f);
  if (fd >= 0)
    forget_view(fd);
  return r;
}

WEFT__HOOK_API int close_range(unsigned first, unsigned last, int flags) {
  int (*real)(unsigned, unsigned, int) = REAL(close_range);
  int r = real ? real(first, last, flags)
               : (int)syscall(SYS_close_range, first, last, flags);
  /* With CLOSE_RANGE_CLOEXEC nothing is closed yet; dropping the views
   * anyway costs a system call or two at the next waits. */
  if (r == 0)
    weft__hook_view_drop_range(first, last);
  return r;
}

WEFT__HOOK_API void closefrom(int first) {
  void (*real)(int) = REAL(closefrom);
  if (real)
    real(first);
  else
    syscall(SYS_close_range, (unsigned)first, ~0u, 0);
  if (first >= 0)
    weft__hook_view_drop_range((unsigned)first, ~0u);
}
