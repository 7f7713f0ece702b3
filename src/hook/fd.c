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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hook-private.h"
#include "status.h"
#include "view.h"

/* Wakes the waiters on fd and forgets what the hooks know of it, keeping
 * errno: just before fd is closed or replaced. Not in a signal handler,
 * which may have interrupted the hub or the hooks in the middle of the
 * same records: there the hub notices the close by itself, at its next
 * look at the number (the poller's recheck). */
static void forget(int fd) {
  if (weft__hook_handler_depth > 0)
    return;
  int saved = errno;
  weft_io_forget(fd);
  weft__hook_forget_waits(fd);
  weft__hook_flipped_drop(fd);
  errno = saved;
}

WEFT__HOOK_API int close(int fd) {
  if (fd < 0)
    return REAL(close)(fd);
  forget(fd);
  weft__hook_view_hold(fd);
  int r = REAL(close)(fd);
  weft__hook_view_release(fd);
  return r;
}

WEFT__HOOK_API int dup(int fd) {
  int r = REAL(dup)(fd);
  if (r >= 0) {
    weft__hook_flipped_copy(fd, r);
    weft__hook_view_drop(r);
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
  weft__hook_view_hold(to);
  int r = REAL(dup2)(from, to);
  if (r >= 0)
    weft__hook_flipped_copy(from, to);
  weft__hook_view_release(to);
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
  weft__hook_view_hold(to);
  int r = REAL(dup3)(from, to, flags);
  if (r >= 0)
    weft__hook_flipped_copy(from, to);
  weft__hook_view_release(to);
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
    weft__hook_view_hold(fd);
    if (weft__hook_flipped_view(fd, &view)) {
      r = real(fd, cmd, fl | O_NONBLOCK);
      if (r == 0)
        weft__hook_flipped_set_view(fd, fl & O_NONBLOCK);
    } else {
      r = real(fd, cmd, fl);
    }
    weft__hook_view_release(fd);
    return r;
  }
  case F_DUPFD:
  case F_DUPFD_CLOEXEC: {
    int r = real(fd, cmd, (int)(long)arg);
    if (r >= 0) {
      weft__hook_flipped_copy(fd, r);
      weft__hook_view_drop(r);
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
  if (request != FIONBIO)
    return REAL(ioctl)(fd, request, arg);
  bool view;
  int r = 0;
  weft__hook_view_hold(fd);
  if (arg && weft__hook_flipped_view(fd, &view)) {
    /* The fd stays non-blocking; the program's wish is kept. */
    int on = *(const int *)arg;
    weft__hook_flipped_set_view(fd, on != 0);
  } else {
    r = REAL(ioctl)(fd, request, arg);
  }
  weft__hook_view_release(fd);
  return r;
}

WEFT__HOOK_API int fclose(FILE *f) {
  int saved = errno;
  int fd = f ? fileno(f) : -1;
  errno = saved;
  if (fd < 0)
    return REAL(fclose)(f);
  forget(fd);
  weft__hook_view_hold(fd);
  int r = REAL(fclose)(f);
  weft__hook_view_release(fd);
  return r;
}

/* Calls fn(fd) for each open fd from first to last, as /proc/self/fd
 * lists them, read with no allocation: close_range and closefrom are
 * called in children between fork and exec. Keeps errno. Returns false
 * when /proc cannot be read. */
static bool each_open_fd(unsigned first, unsigned last, void (*fn)(int)) {
  int saved = errno;
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    errno = saved;
    return false;
  }
  char buf[4096] __attribute__((aligned(8)));
  long n;
  while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
    for (long at = 0; at < n;) {
      struct linux_dirent64 {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      } *d = (void *)(buf + at);
      at += d->reclen;
      char *end;
      unsigned long fd = strtoul(d->name, &end, 10);
      if (d->name[0] >= '0' && d->name[0] <= '9' && *end == '\0' &&
          fd >= first && fd <= last && (int)fd != dir)
        fn((int)fd);
    }
  }
  REAL(close)(dir);
  errno = saved;
  return true;
}

/* close_range(2) itself: libc's, or the system call for a libc without
 * it. */
static int close_range_real(unsigned first, unsigned last, int flags) {
  int (*real)(unsigned, unsigned, int) = REAL(close_range);
  if (real)
    return real(first, last, flags);
#ifdef SYS_close_range
  return (int)syscall(SYS_close_range, first, last, flags);
#else
  return weft__hook_fail(ENOSYS);
#endif
}

WEFT__HOOK_API int close_range(unsigned first, unsigned last, int flags) {
  /* The fds about to close wake their waiters, as close's do; without
   * /proc the hub notices the closes by itself, at its next look at each
   * number (the poller's recheck). CLOSE_RANGE_CLOEXEC closes nothing yet;
   * the views are forgotten all the same, which costs a system call or two
   * at the next waits. */
  if (first <= last && !(flags & CLOSE_RANGE_CLOEXEC) &&
      weft__hook_handler_depth == 0)
    each_open_fd(first, last, forget);
  weft__hook_view_hold_range(first, last);
  int r = close_range_real(first, last, flags);
  weft__hook_view_release_range(first, last);
  return r;
}

/* closefrom's fallback on a kernel without close_range (before 5.9). */
static void close_fd(int fd) { close(fd); }

WEFT__HOOK_API void closefrom(int first) {
  unsigned from = first < 0 ? 0 : (unsigned)first; /* as glibc does */
  int saved = errno;
  if (close_range(from, ~0u, 0) != 0)
    each_open_fd(from, ~0u, close_fd); /* one close per open fd, as glibc */
  errno = saved;
}
