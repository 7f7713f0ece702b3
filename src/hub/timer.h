/*
 * Timers of one hub: a 4-ary min-heap of deadlines, indexed in place so that
 * any timer can be removed in O(log n) (a timeout that did not fire, a
 * cancelled sleep). The hub sleeps until the earliest deadline and fires
 * what is due.
 *
 * Why a heap and not a wheel: deadlines are absolute monotonic nanoseconds
 * with no fixed resolution, the common operations (arm a timeout, cancel it
 * before it fires) are O(log n) with small constants — a 4-ary heap is
 * shallow (10 levels for a million timers) and its children share a cache
 * line — and the earliest deadline is always at hand for the poller's
 * timeout. BenchmarkTimers measures it with a million armed.
 *
 * Not thread-safe: a heap belongs to one hub, touched only by its thread.
 */
#ifndef WEFT_HUB_TIMER_H
#define WEFT_HUB_TIMER_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <weft/core.h>

/* Embedded in whatever waits (a task, a timeout); the heap holds pointers. */
typedef struct weft__timer {
  int64_t deadline; /* absolute, CLOCK_MONOTONIC nanoseconds */
  size_t slot;      /* index in the heap, or WEFT__TIMER_IDLE */
} weft__timer;

#define WEFT__TIMER_IDLE ((size_t)-1)

typedef struct weft__timer_heap {
  weft__timer **items;
  size_t len, cap;
} weft__timer_heap;

static inline void weft__timer_init(weft__timer *t) {
  t->deadline = 0;
  t->slot = WEFT__TIMER_IDLE;
}

static inline bool weft__timer_armed(const weft__timer *t) {
  return t->slot != WEFT__TIMER_IDLE;
}

void weft__timer_heap_init(weft__timer_heap *h);
void weft__timer_heap_fini(weft__timer_heap *h);

/* Arms t at `deadline`; t must not be armed. Returns 0 or -ENOMEM (the
 * heap could not grow; nothing changed). */
int weft__timer_arm(weft__timer_heap *h, weft__timer *t, int64_t deadline);

/* Disarms t if it is armed. */
void weft__timer_disarm(weft__timer_heap *h, weft__timer *t);

/* The timer with the earliest deadline, or NULL when none is armed. */
static inline weft__timer *weft__timer_first(const weft__timer_heap *h) {
  return h->len ? h->items[0] : NULL;
}

/* Disarms and returns the earliest timer if its deadline is <= now, else
 * NULL. Ties fire in no particular order. */
weft__timer *weft__timer_pop_due(weft__timer_heap *h, int64_t now);

/* The current CLOCK_MONOTONIC time in nanoseconds. */
int64_t weft__now(void);

/* CLOCK_MONOTONIC_COARSE in nanoseconds: a few ns instead of tens where
 * reading the hardware clock is slow (a virtual machine's), accurate to a
 * scheduler tick. For what reports show, such as how long a task has been
 * blocked; never mixed with weft__now. */
int64_t weft__now_coarse(void);

/* Whether a timeout a caller passed is bad input: a negative other than
 * WEFT_FOREVER (-1). Every public call that takes a timeout asks this
 * first, before it takes a lock, queues, reads, writes or changes any
 * state, and returns -EINVAL when it is true. One compare and a branch
 * predicted not taken, so that it costs the fast paths nothing they can
 * measure. */
static inline bool weft__timeout_bad(int64_t timeout) {
  return __builtin_expect(timeout < WEFT_FOREVER, 0);
}

int64_t weft__deadline_after_slow(int64_t timeout); /* reads the clock */

/* now + timeout, saturating, WEFT_FOREVER giving INT64_MAX: the end of a
 * wait weft must finish whatever the caller's deadline (a condition taking
 * its lock back). Every other wait uses weft__deadline_after. */
static inline int64_t weft__deadline_after_unclamped(int64_t timeout) {
  return timeout < 0 ? INT64_MAX : weft__deadline_after_slow(timeout);
}

/* Whether any task or thread ever set a deadline (weft_deadline_set):
 * until one does, no wait looks for one (deadline.c). */
extern atomic_bool weft__deadlines_used;

/* deadline, or the calling task's (thread's) deadline if that is earlier. */
int64_t weft__deadline_clamp(int64_t deadline);

/* now + timeout, saturating, and no later than the caller's deadline
 * (weft_deadline_set): every wait of weft computes its end here, which is
 * what makes a deadline span every call. WEFT_FOREVER gives INT64_MAX,
 * inline and without a look at the clock, as most waits have no end. Any
 * negative gives INT64_MAX too, but the public calls have rejected the
 * others (weft__timeout_bad) before they come here. */
static inline int64_t weft__deadline_after(int64_t timeout) {
  int64_t d = weft__deadline_after_unclamped(timeout);
  if (__builtin_expect(
          atomic_load_explicit(&weft__deadlines_used, memory_order_relaxed), 0))
    d = weft__deadline_clamp(d);
  return d;
}

int weft__timed_out_slow(int64_t end);

/* What a wait whose time ran out at `end`, an end weft__deadline_after
 * gave, returns: -ECANCELED when that end is the caller's deadline and a
 * scope that cancels set it (WEFT_SCOPE_CANCEL), else -ETIMEDOUT. */
static inline int weft__timed_out(int64_t end) {
  if (__builtin_expect(
          atomic_load_explicit(&weft__deadlines_used, memory_order_relaxed), 0))
    return weft__timed_out_slow(end);
  return -ETIMEDOUT;
}

/* The timeout for a millisecond wait (poll, epoll_wait) that must not end
 * before deadline: -1 for INT64_MAX (no deadline), 0 when it has passed,
 * else the milliseconds left rounded up, at most INT32_MAX. */
int weft__ms_until(int64_t deadline);

#endif
