/*
 * Cancelling a plain thread. See thread-cancel.h.
 *
 * The wake of a thread that sleeps on a waiter: the canceller, under the
 * record's guard, finds the waiter published and turns its word from
 * SLEEPING back to WAITING, then wakes the futex. The thread's futex wait
 * (which waits while the word is SLEEPING) then returns, or does not
 * begin; its loop finds no wake and the cancellation, and its wait fails
 * with -ECANCELED, which the primitive handles as any failed wait
 * (waiter.h). A real wake that comes meanwhile sets WOKEN, which the
 * canceller's compare-and-swap leaves alone: the wake wins. The thread
 * takes the guard to take its waiter back, so the canceller never touches
 * a waiter whose wait has returned.
 */
#define _GNU_SOURCE
#include "thread-cancel.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/guard.h"
#include "timer.h"
#include "waiter.h"

WEFT__TLS weft__thread_cancel weft__thread_cancel_self = {.efd = -1};

int weft__thread_cancel_enable(void) {
  weft__thread_cancel *c = &weft__thread_cancel_self;
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0)
    return -errno;
  atomic_store(&c->cancelled, false);
  c->shield_depth = 0;
  c->waiter = NULL;
  c->efd = efd;
  c->enabled = true;
  return 0;
}

void weft__thread_cancel_disable(void) {
  weft__thread_cancel *c = &weft__thread_cancel_self;
  c->enabled = false;
  weft__guard_lock(&c->guard);
  int efd = c->efd;
  c->efd = -1;
  weft__guard_unlock(&c->guard);
  close(efd);
  atomic_store(&c->cancelled, false);
}

void weft__cancel_thread(weft__thread_cancel *c) {
  /* Its waits from now on see their deadline as passed (deadline.c). */
  atomic_store_explicit(&weft__deadlines_used, true, memory_order_relaxed);
  atomic_store(&c->cancelled, true);
  weft__guard_lock(&c->guard);
  weft__waiter *w = c->waiter;
  uint32_t sleeping = WAITER_SLEEPING;
  if (w && atomic_compare_exchange_strong(&w->woken, &sleeping, WAITER_WAITING))
    syscall(SYS_futex, &w->woken, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  if (c->efd >= 0) {
    uint64_t one = 1;
    (void)!write(c->efd, &one, sizeof one);
  }
  weft__guard_unlock(&c->guard);
}

void weft__thread_cancel_sleeping(weft__waiter *w) {
  weft__thread_cancel *c = &weft__thread_cancel_self;
  weft__guard_lock(&c->guard);
  c->waiter = w;
  weft__guard_unlock(&c->guard);
}
