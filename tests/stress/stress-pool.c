/*
 * Stress: thread pools made, fed, shut down and freed, over and over, for
 * WEFT_STRESS_SECONDS (default 1): what the pool's queue (src/exec/
 * callq.c) does without a lock — submitters pushing while workers take,
 * spin, fall asleep and are woken, and a shutdown that comes at any
 * moment.
 *
 * A life: a pool of 1 to 4 workers, its queue unbounded or of 1 to 8
 * calls (a full one waits, with or without a timeout, or fails at once);
 * three submitter threads each submit bursts of 1 to 40 calls, with gaps
 * between bursts of nothing, a few microseconds (the workers spin) or up
 * to two milliseconds (they sleep); a shutter thread shuts the pool down
 * after 0 to 4 ms, waiting or not, cancelling the queue or not. A
 * submitter goes on until its submit says -ESHUTDOWN; each waits for its
 * burst's futures before the next burst, with a wait of 10 s that a lost
 * wake-up would exhaust. Then the pool is freed.
 *
 * Checks:
 *  - every call submitted is done once the pool is freed: run exactly
 *    once and finished, or cancelled without running — and cancelled
 *    only when the shutdown said WEFT_POOL_CANCEL;
 *  - no wait on a burst runs out: each call is taken by a worker, woken
 *    if it slept;
 *  - a full queue's submit fails only with -EAGAIN or -ETIMEDOUT, a shut
 *    one's only with -ESHUTDOWN.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <weft.h>

#include "stress.h"

enum { SUBMITTERS = 3, BURST_MAX = 40 };

static atomic_int failed;
static atomic_long lives, calls_run, calls_cancelled, full_refusals;

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "stress-pool: " __VA_ARGS__);                              \
    fputc('\n', stderr);                                                       \
    atomic_store(&failed, 1);                                                  \
  } while (0)

struct call {
  atomic_int ran;
};

static int run(void *arg, void **value) {
  struct call *c = arg;
  if (atomic_fetch_add(&c->ran, 1) != 0)
    FAIL("a call ran twice");
  *value = c;
  return 0;
}

/* One life's shared state, written before its threads start. */
struct life {
  weft_thread_pool *pool;
  int cancel_flag; /* the shutdown's WEFT_POOL_CANCEL, or 0 */
  int shut_flags;  /* the shutdown's */
  int64_t shut_after;
  unsigned seeds[SUBMITTERS];
};

/* A submitter's: its life, and which it is. */
struct submitter {
  struct life *life;
  int index;
};

/* Checks a done future against its call; frees both. */
static void settle(const struct life *l, weft_future *f, struct call *c) {
  void *v = NULL;
  int err = 0;
  if (weft_future_result(f, WEFT_SEC(10), &v, &err) != 0) {
    FAIL("a call was not done after 10 s: lost in the queue");
    return; /* leaked: the future may still be completed */
  }
  if (weft_future_state(f) == WEFT_FUTURE_CANCELLED) {
    if (!l->cancel_flag)
      FAIL("a call was cancelled by a shutdown that did not cancel");
    if (atomic_load(&c->ran))
      FAIL("a cancelled call ran");
    atomic_fetch_add(&calls_cancelled, 1);
  } else {
    if (err != 0 || v != c || atomic_load(&c->ran) != 1)
      FAIL("a finished call gave %p, error %d, ran %d", v, err,
           atomic_load(&c->ran));
    atomic_fetch_add(&calls_run, 1);
  }
  weft_future_free(f);
  free(c);
}

static void *submitter(void *arg) {
  const struct submitter *me = arg;
  const struct life *l = me->life;
  unsigned seed = l->seeds[me->index];
  weft_future *burst[BURST_MAX];
  struct call *calls[BURST_MAX];
  for (bool shut = false; !shut && !atomic_load(&failed);) {
    int n = 1 + (int)(stress_next(&seed) % BURST_MAX), k = 0;
    while (k < n) {
      struct call *c = calloc(1, sizeof *c);
      int64_t timeout = stress_next(&seed) % 2 ? WEFT_FOREVER : WEFT_US(50);
      int rc = weft_thread_pool_submit(l->pool, run, c, timeout, &burst[k]);
      if (rc == 0) {
        calls[k++] = c;
        continue;
      }
      free(c);
      if (rc == -ESHUTDOWN) {
        shut = true;
        break;
      }
      if (rc != -EAGAIN && rc != -ETIMEDOUT) {
        FAIL("a submit failed with %d", rc);
        shut = true;
        break;
      }
      atomic_fetch_add(&full_refusals, 1);
      sched_yield(); /* the workers make room */
    }
    for (int i = 0; i < k; i++)
      settle(l, burst[i], calls[i]);
    switch (stress_next(&seed) % 3) {
    case 0:
      break;
    case 1:
      weft_sleep(WEFT_US(1 + stress_next(&seed) % 20));
      break;
    default:
      weft_sleep(WEFT_US(200 + stress_next(&seed) % 1800));
    }
  }
  return NULL;
}

static void *shutter(void *arg) {
  const struct life *l = arg;
  weft_sleep(l->shut_after);
  int rc = weft_thread_pool_shutdown(l->pool, l->shut_flags);
  if (rc != 0)
    FAIL("shutdown(%d) failed with %d", l->shut_flags, rc);
  return NULL;
}

int main(void) {
  const char *s = getenv("WEFT_STRESS_SECONDS");
  double secs = s ? atof(s) : 1.0;
  int64_t until = weft_now() + (int64_t)(secs * 1e9);
  unsigned seed = 20261207u;
  while (weft_now() < until && !atomic_load(&failed)) {
    struct life l = {.shut_after = WEFT_US(stress_next(&seed) % 4000)};
    for (int i = 0; i < SUBMITTERS; i++)
      l.seeds[i] = stress_next(&seed);
    unsigned r = stress_next(&seed);
    weft_thread_pool_opts o = {
        .workers = 1 + (int)(r % 4),
        .queue_max = (r >> 2) % 2 ? 0 : 1 + (r >> 3) % 8,
        .full_fails = (r >> 6) % 4 == 0,
    };
    l.cancel_flag = (r >> 8) % 2 ? WEFT_POOL_CANCEL : 0;
    l.shut_flags = l.cancel_flag | ((r >> 9) % 2 ? WEFT_POOL_WAIT : 0);
    if (weft_thread_pool_new(&l.pool, &o) != 0) {
      FAIL("weft_thread_pool_new failed");
      break;
    }
    pthread_t subs[SUBMITTERS], shut;
    struct submitter who[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++) {
      who[i] = (struct submitter){&l, i};
      pthread_create(&subs[i], NULL, submitter, &who[i]);
    }
    pthread_create(&shut, NULL, shutter, &l);
    for (int i = 0; i < SUBMITTERS; i++)
      pthread_join(subs[i], NULL);
    pthread_join(shut, NULL);
    weft_thread_pool_free(l.pool);
    atomic_fetch_add(&lives, 1);
  }
  printf("stress-pool: %.1f s: %ld pools, %ld calls run, %ld cancelled, %ld "
         "refused while full: %s\n",
         secs, atomic_load(&lives), atomic_load(&calls_run),
         atomic_load(&calls_cancelled), atomic_load(&full_refusals),
         atomic_load(&failed) ? "FAILED" : "ok");
  return atomic_load(&failed) ? 1 : 0;
}
