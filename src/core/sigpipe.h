/*
 * Writes that never raise SIGPIPE, for fds weft writes to on its own
 * (dumps, reports, a message pipe's pipe): a reader gone must be -EPIPE,
 * never a dead host. Sockets need none of this (send(MSG_NOSIGNAL)); for a
 * pipe, the classic way: SIGPIPE is blocked in the calling thread around
 * the write, and a SIGPIPE the write raised is taken back with
 * sigtimedwait, but only when none was pending before, so that a SIGPIPE
 * that was already there (the kernel keeps one, merged) is not swallowed.
 * Async-signal-safe: every call is a plain system call.
 */
#ifndef WEFT_CORE_SIGPIPE_H
#define WEFT_CORE_SIGPIPE_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>

#include "sigmask.h"

typedef struct weft__sigpipe_guard {
  sigset_t old; /* the thread's mask before */
  bool was_pending;
} weft__sigpipe_guard;

static inline void weft__sigpipe_block(weft__sigpipe_guard *g) {
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  weft__sigmask_block(&set, &g->old); /* recorded: a child must not keep it */
  /* A SIGPIPE can only have been pending before if it was blocked before
   * (else it was delivered): only then is sigpending worth its call. */
  g->was_pending = sigismember(&g->old, SIGPIPE) == 1 &&
                   sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

/* Restores the mask; epipe: a write under the guard failed with EPIPE, so
 * it raised a SIGPIPE (unless SIGPIPE is ignored), which is taken back. */
static inline void weft__sigpipe_unblock(weft__sigpipe_guard *g, bool epipe) {
  if (epipe && !g->was_pending) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
      ;
  }
  weft__sigmask_restore(&g->old);
}

#endif
