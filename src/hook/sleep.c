/*
 * sleep, usleep, nanosleep and clock_nanosleep: in a task, weft_sleep.
 * An absolute clock_nanosleep sleeps until the clock's time as read at the
 * call (a later change of CLOCK_REALTIME does not move it).
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "hook-private.h"

/* About 292 years less a margin: longer sleeps are this one. */
#define LONGEST ((int64_t)INT64_MAX / 2)

static int64_t to_ns(const struct timespec *ts) {
  if (ts->tv_sec >= LONGEST / 1000000000)
    return LONGEST;
  return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void from_ns(int64_t ns, struct timespec *ts) {
  if (ns < 0)
    ns = 0;
  ts->tv_sec = ns / 1000000000;
  ts->tv_nsec = ns % 1000000000;
}

/* Sleeps ns in the task. Returns 0, or a positive errno (ECANCELED,
 * ETIMEDOUT for weft's deadline) with the time left in *left. */
static int sleep_in_task(int64_t ns, int64_t *left) {
  int64_t started = weft_now();
  int rc = weft_sleep(ns);
  if (rc == 0)
    return 0;
  *left = ns - (weft_now() - started);
  if (*left < 0)
    *left = 0;
  return -rc;
}

WEFT__HOOK_API int nanosleep(const struct timespec *req, struct timespec *rem) {
  if (!weft__hook_here() || !req || req->tv_nsec < 0 ||
      req->tv_nsec >= 1000000000 || req->tv_sec < 0)
    return REAL(nanosleep)(req, rem); /* and its EFAULT or EINVAL */
  int64_t left;
  int e = sleep_in_task(to_ns(req), &left);
  if (e == 0)
    return 0;
  if (rem)
    from_ns(left, rem);
  return weft__hook_fail(e);
}

WEFT__HOOK_API int clock_nanosleep(clockid_t clock, int flags,
                                   const struct timespec *req,
                                   struct timespec *rem) {
  struct timespec now;
  if (!weft__hook_here() || !req || req->tv_nsec < 0 ||
      req->tv_nsec >= 1000000000 || req->tv_sec < 0 ||
      (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC &&
       clock != CLOCK_BOOTTIME && clock != CLOCK_TAI) ||
      clock_gettime(clock, &now) != 0)
    return REAL(clock_nanosleep)(clock, flags, req, rem);
  int64_t ns = to_ns(req);
  if (flags & TIMER_ABSTIME) {
    ns -= to_ns(&now);
    if (ns <= 0)
      return 0;
  }
  int64_t left;
  int e = sleep_in_task(ns, &left);
  /* An absolute sleep leaves rem alone, as the kernel does. */
  if (e != 0 && rem && !(flags & TIMER_ABSTIME))
    from_ns(left, rem);
  return e; /* clock_nanosleep returns its error, errno untouched */
}

WEFT__HOOK_API int usleep(useconds_t us) {
  if (!weft__hook_here())
    return REAL(usleep)(us);
  int64_t left;
  int e = sleep_in_task((int64_t)us * 1000, &left);
  return e ? weft__hook_fail(e) : 0;
}

WEFT__HOOK_API unsigned sleep(unsigned seconds) {
  if (!weft__hook_here())
    return REAL(sleep)(seconds);
  int64_t left;
  int e = sleep_in_task((int64_t)seconds * 1000000000, &left);
  if (e == 0)
    return 0;
  /* sleep returns the seconds left, rounded up, and sets no errno in libc
   * except through the signal; here errno says why it ended early. */
  errno = e;
  return (unsigned)((left + 999999999) / 1000000000);
}
