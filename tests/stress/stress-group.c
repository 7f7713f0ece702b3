/*
 * Stress: task groups whose members, tasks and threads mixed, finish,
 * fail, nest, run inside scopes, wait on sleeps, locks, conditions and
 * fds, and get cancelled at random moments,
 * while their group's deadline or their waiter's passes or another task
 * cancels the waiter, for WEFT_STRESS_SECONDS (default 1). Checks after each
 * wait that no member of the group still runs, that the wait's result agrees
 * with what happened (0 only when nothing failed and the waiter was not
 * stopped; else the waiter's -ECANCELED or -ETIMEDOUT, or the first
 * failure, which weft_group_errors lists first), and that the group frees.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <weft.h>

#define IV(x) ((void *)(intptr_t)(x))
#define VI(p) ((intptr_t)(p))

static _Thread_local unsigned seed = 1;
static atomic_uint seeds = 1;
static atomic_long live; /* members running now, at every depth */
static long failures;    /* rounds that saw a member fail */
static long stopped;     /* rounds whose waiter was cancelled or timed out */
static atomic_int bad;   /* an invariant broke: the exit status */

static unsigned rnd(unsigned n) { return (unsigned)rand_r(&seed) % n; }

static int member(void *arg);

/* A group of 1 to 8 members at the given depth, some of them threads
 * (all of them when a thread makes it); returns its wait. */
static int run_group(int depth) {
  weft_group *g;
  if (weft_group_new(&g) != 0)
    return -ENOMEM;
  if (rnd(4) == 0)
    weft_group_deadline(g, weft_now() + WEFT_US(rnd(3000)),
                        rnd(2) ? WEFT_SCOPE_CANCEL : WEFT_SCOPE_TIMEOUT);
  bool task = weft_task_current() != NULL;
  unsigned n = 1 + rnd(8);
  for (unsigned i = 0; i < n; i++) {
    atomic_fetch_add(&live, 1);
    int rc = task && rnd(4) != 0
                 ? weft_group_spawn(g, member, IV(depth))
                 : weft_group_spawn_thread(g, member, IV(depth));
    if (rc != 0)
      atomic_fetch_sub(&live, 1);
  }
  int rc = weft_group_wait(g);
  int first = 0;
  size_t errs = weft_group_errors(g, &first, 1);
  if (rc > 0 || (rc == 0 && errs != 0) ||
      (rc < 0 && rc != -ECANCELED && rc != -ETIMEDOUT && rc != first)) {
    fprintf(stderr, "group wait %d with %zu errors, first %d\n", rc, errs,
            first);
    bad = 1;
  }
  if (weft_group_free(g) != 0) {
    fprintf(stderr, "a waited group does not free\n");
    bad = 1;
  }
  return rc;
}

/* A sleep a task or a thread can take: 0 when it ran its length. */
static int nap(int64_t ns) {
  if (weft_task_current())
    return weft_sleep(ns);
  weft_event e = WEFT_EVENT_INIT;
  int rc = weft_event_wait(&e, ns);
  return rc == -ETIMEDOUT && weft_deadline() == WEFT_FOREVER ? 0 : rc;
}

static weft_lock shared_lock = WEFT_LOCK_INIT;
static weft_cond shared_cv = WEFT_COND_INIT;
static int never_written[2]; /* a pipe nobody writes to */

/* Waits of the other kinds a member may be cancelled in: a lock, a
 * condition (whose lock must be held again after, whatever happened),
 * an fd. */
static int other_wait(void) {
  int rc;
  switch (rnd(3)) {
  case 0:
    rc = weft_lock_acquire(&shared_lock, WEFT_US(rnd(2000)));
    if (rc == 0)
      weft_lock_release(&shared_lock);
    return rc == -ETIMEDOUT ? 0 : rc;
  case 1:
    rc = weft_cond_acquire(&shared_cv, WEFT_FOREVER);
    if (rc != 0)
      return rc;
    rc = weft_cond_wait(&shared_cv, WEFT_US(rnd(2000)));
    if (weft_cond_release(&shared_cv) != 0) {
      fprintf(stderr, "a condition's wait returned %d without its lock\n", rc);
      bad = 1;
    }
    return rc == -ETIMEDOUT ? 0 : rc;
  default: {
    char c;
    rc = (int)weft_io_read(never_written[0], &c, 1, WEFT_US(rnd(2000)));
    return rc == -ETIMEDOUT ? 0 : rc;
  }
  }
}

static int member_body(int depth) {
  int rc = 0;
  switch (rnd(7)) {
  case 6:
    rc = other_wait();
    break;
  case 0:
    rc = -EIO; /* fails at once */
    break;
  case 1:
    rc = nap(WEFT_US(rnd(2000)));
    if (rc == 0 && rnd(3) == 0)
      rc = -EPIPE; /* fails later */
    break;
  case 2:
    rc = depth < 3 ? run_group(depth + 1) : 0;
    break;
  case 3:
    rc = weft_task_current() ? weft_yield() : 0;
    break;
  default:
    rc = nap(WEFT_MS(50)); /* long: usually cancelled */
    break;
  }
  return rc;
}

static int member(void *arg) {
  if (seed == 1)
    seed = atomic_fetch_add(&seeds, 1) * 2654435761u;
  int depth = (int)VI(arg);
  int rc;
  if (rnd(4) == 0) { /* inside a scope of its own */
    weft_scope s;
    weft_scope_enter(&s, weft_now() + WEFT_US(rnd(3000)),
                     rnd(2) ? WEFT_SCOPE_CANCEL : WEFT_SCOPE_TIMEOUT);
    rc = member_body(depth);
    if (weft_scope_exit(&s) == -EINVAL) {
      fprintf(stderr, "a member's scope does not exit\n");
      bad = 1;
    }
  } else {
    rc = member_body(depth);
  }
  atomic_fetch_sub(&live, 1);
  return rc;
}

static void *waiter(void *arg) {
  int *result = arg;
  if (rnd(3) == 0)
    weft_deadline_set(weft_now() + WEFT_US(rnd(3000)), NULL);
  *result = run_group(0);
  return NULL;
}

static void *rounds(void *arg) {
  double secs = *(double *)arg;
  int64_t end = weft_now() + (int64_t)(secs * 1e9);
  long n = 0;
  while (weft_now() < end && !bad) {
    int result = 0;
    weft_task *w;
    if (weft_task_spawn(&w, waiter, &result, NULL) != 0)
      return IV(1);
    if (rnd(3) == 0) {
      weft_sleep(WEFT_US(rnd(2000)));
      weft_task_cancel(w);
    }
    weft_task_join(w, WEFT_FOREVER, NULL);
    weft_task_detach(w);
    if (atomic_load(&live) != 0) {
      fprintf(stderr, "%ld members still run after their wait\n",
              atomic_load(&live));
      bad = 1;
    }
    failures += result < 0 && result != -ECANCELED && result != -ETIMEDOUT;
    stopped += result == -ECANCELED || result == -ETIMEDOUT;
    n++;
  }
  printf("stress-group: %ld rounds, %ld failed, %ld waiters stopped, %.1f s: "
         "%s\n",
         n, failures, stopped, secs, bad ? "FAILED" : "ok");
  return NULL;
}

int main(void) {
  if (pipe(never_written) != 0)
    return 1;
  const char *env = getenv("WEFT_STRESS_SECONDS");
  double secs = env ? atof(env) : 1.0;
  if (weft_run(rounds, &secs, NULL) != 0)
    return 1;
  return bad;
}
