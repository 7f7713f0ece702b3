/*
 * The program's view of an fd, as a hooked call that would block needs it:
 * its O_NONBLOCK (then EAGAIN is the answer), its access mode, whether it
 * is a socket, and the socket's SO_RCVTIMEO or SO_SNDTIMEO. Learnt with
 * system calls (fcntl, getsockopt) and, for a socket, kept by fd number
 * until a hooked call closes the number, puts another file under it or
 * changes what is kept, so that a socket's later waits cost none. See
 * view.c for the invariant, and docs/hooks.md for what the hooks cannot
 * see.
 */
#ifndef WEFT_HOOK_VIEW_H
#define WEFT_HOOK_VIEW_H

#include <stdbool.h>
#include <weft/io.h>

#include "hook-private.h"

struct weft__hook_view {
  int flags;   /* the access mode and O_NONBLOCK of F_GETFL as the program
                  sees it (status.c); no other status flag */
  bool socket; /* a socket (then no disk file) */
  weft__hook_timeout timeout; /* the socket's for the direction asked */
};

/* Fills *v for a call on fd in direction dir (WEFT_IO_READ or
 * WEFT_IO_WRITE); v->flags is -1 when fd is no open fd. Keeps errno. */
void weft__hook_view_of(int fd, unsigned dir, struct weft__hook_view *v);

/* Whether fd's view is kept (no system call) and is that of a blocking
 * socket open for dir, with no timeout in that direction: such a call may
 * wait before it tries (WEFT_IO_GUESS). */
bool weft__hook_view_kept_blocking(int fd, unsigned dir);

/* Forgets what is kept of fd: a new fd (accept's, dup's), whose number
 * may have named another file. Lock-free; safe in a signal handler and
 * after fork. */
void weft__hook_view_drop(int fd);

/* Brackets a hooked call that may change fd (close it, put another file
 * under its number, change its O_NONBLOCK or timeouts): hold before the
 * call, release after. Each forgets what is kept, and between the two
 * nothing is kept nor used. Lock-free; safe in a signal handler and after
 * fork. */
void weft__hook_view_hold(int fd);
void weft__hook_view_release(int fd);

/* The same for the fds from first to last, both included (close_range,
 * closefrom). */
void weft__hook_view_hold_range(unsigned first, unsigned last);
void weft__hook_view_release_range(unsigned first, unsigned last);

#endif
