/*
 * Stress: futures and a thread pool, raced from every side, for
 * WEFT_STRESS_SECONDS (default 1).
 *
 * Submitters — two plain threads, and tasks on two hubs — loop over
 * rounds. A round submits a call to a shared thread pool (4 workers, a
 * queue of 16 that pushes back, submits with random timeouts), or makes a
 * promise that a completer thread or the submitter itself completes,
 * while the submitter, at random: cancels it at once, adds one
 * to three callbacks before or after completion, waits for it with a poll,
 * microseconds, milliseconds or no timeout, waits on it beside the
 * previous round's future (weft_future_wait_any), or iterates over it. A
 * chaos task on each hub cancels submitter tasks in the middle of their
 * waits; a cancelled task leaves and a fresh one takes its place.
 *
 * Checks:
 *  - every callback runs exactly once (counted per call, and in total);
 *  - a finished call's value is exactly what the call computed, or its
 *    error what it returned (odd arguments fail with -EIO);
 *  - a cancel that returned 0 means the call never ran; -EBUSY means it
 *    did, or will; -EALREADY that the future was done;
 *  - of a promise's set_result and a racing cancel exactly one wins;
 *  - a wait that timed out waited its timeout (no tolerance), and one
 *    that returned 0 found the future done;
 *  - -ECANCELED reaches only tasks the chaos cancelled;
 *  - a full queue's submit with a timeout fails only with -ETIMEDOUT or
 *    -EAGAIN (a poll), never loses the call it refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <weft.h>

#include "../../src/exec/exec-private.h" /* weft__future_hold */
#include "stress.h"

static int64_t run_until;
static weft_thread_pool *pool;
static atomic_long rounds, callbacks_expected, callbacks_run, cancels_won,
    busy_cancels, timeouts, task_cancels, promise_races;
static atomic_int failed;

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "stress-exec: " __VA_ARGS__);                              \
    fputc('\n', stderr);                                                       \
    atomic_store(&failed, 1);                                                  \
  } while (0)

/* One round's call, shared by the call, its callbacks and the submitter;
 * freed by the last of them. */
struct call {
  atomic_int holds;
  atomic_int ran;       /* the call started */
  atomic_int callbacks; /* run so far */
  int arg;
};

static void let_go(struct call *c) {
  if (atomic_fetch_sub(&c->holds, 1) == 1)
    free(c);
}

static int compute(void *arg, void **value) {
  struct call *c = arg;
  atomic_store(&c->ran, 1);
  if (c->arg % 3 == 0)
    sched_yield();
  if (c->arg % 2)
    return -EIO;
  *value = (void *)(intptr_t)(c->arg * 2);
  return 0;
}

static void release_call(weft_future *f, void *arg) {
  (void)f;
  let_go(arg);
}

/* A callback added to a done future: it must have run when the add
 * returns. */
static void mark(weft_future *f, void *arg) {
  (void)f;
  atomic_store((atomic_int *)arg, 1);
}

static void on_done(weft_future *f, void *arg) {
  struct call *c = arg;
  if (!weft_future_done(f))
    FAIL("a callback ran before its future was done");
  atomic_fetch_add(&c->callbacks, 1);
  atomic_fetch_add(&callbacks_run, 1);
  let_go(c);
}

/* Checks a done future's outcome against its call. */
static void check_outcome(weft_future *f, struct call *c, bool promise) {
  void *v = NULL;
  int err = 0;
  if (weft_future_result(f, 0, &v, &err) != 0)
    FAIL("a done future's result did not come at once");
  if (weft_future_state(f) == WEFT_FUTURE_CANCELLED) {
    if (err != -ECANCELED)
      FAIL("a cancelled future's error is %d", err);
    return;
  }
  if (promise) {
    if (err != 0 || (intptr_t)v != c->arg)
      FAIL("a promise gave %p, error %d, for %d", v, err, c->arg);
    return;
  }
  if (!atomic_load(&c->ran))
    FAIL("a call finished without running");
  if (c->arg % 2 ? err != -EIO : (err != 0 || (intptr_t)v != c->arg * 2))
    FAIL("call %d gave %p, error %d", c->arg, v, err);
}

/* A random timeout: a poll, microseconds, milliseconds, or none. */
static int64_t random_timeout(unsigned *seed) {
  switch (stress_next(seed) % 4) {
  case 0:
    return 0;
  case 1:
    return WEFT_US(1 + stress_next(seed) % 200);
  case 2:
    return WEFT_MS(1 + stress_next(seed) % 3);
  default:
    return WEFT_FOREVER;
  }
}

/* Waits for f by one of the ways, until done or the task is cancelled.
 * Returns false when cancelled. */
static bool wait_done(weft_future *f, weft_future *other, unsigned *seed,
                      bool cancellable) {
  while (!weft_future_done(f)) {
    int64_t t = random_timeout(seed);
    int64_t t0 = weft_now();
    int rc;
    unsigned how = stress_next(seed) % 3;
    if (how == 0 || !other) {
      rc = weft_future_result(f, t, NULL, NULL);
    } else if (how == 1) {
      weft_future *fs[] = {other, f};
      rc = weft_future_wait_any(fs, 2, WEFT_ALL_COMPLETED, t);
      rc = rc >= 0 ? 0 : rc;
    } else {
      weft_future_iter *it;
      rc = weft_future_iter_new(&it, &f, 1);
      if (rc == 0) {
        weft_future *got;
        rc = weft_future_iter_next(it, t, &got);
        if (rc == 0 && got != f)
          FAIL("the iteration gave another future");
        weft_future_iter_free(it);
      }
    }
    if (rc == -ETIMEDOUT) {
      atomic_fetch_add(&timeouts, 1);
      if (t != 0 && weft_now() - t0 < t)
        FAIL("a wait of %lld ns timed out after %lld", (long long)t,
             (long long)(weft_now() - t0));
      if (t == WEFT_FOREVER)
        FAIL("a wait without a timeout timed out");
      continue;
    }
    if (rc == -ECANCELED) {
      if (!cancellable)
        FAIL("-ECANCELED for a caller nobody cancels");
      return false;
    }
    if (rc < 0)
      FAIL("a wait failed with %d", rc);
    else if (!weft_future_done(f))
      FAIL("a wait returned 0 with its future not done");
  }
  return true;
}

struct completer_job {
  weft_future *f;
  int value;
  int delay_us;
};

/* Completes a promise after a while, racing a cancel. */
static void *complete_promise(void *arg) {
  struct completer_job *j = arg;
  if (j->delay_us)
    usleep((useconds_t)j->delay_us);
  int rc = weft_future_set_result(j->f, (void *)(intptr_t)j->value);
  if (rc != 0 && rc != -EALREADY)
    FAIL("set_result: %d", rc);
  weft_future_free(j->f);
  free(j);
  return NULL;
}

/* The promises for the completer thread, which takes them until the
 * channel is closed, once every submitter is done. */
static void *job_slots[1024];
static weft_chan jobs = WEFT_CHAN_INIT(job_slots, 1024);

static void *completer_thread(void *arg) {
  (void)arg;
  void *j;
  while (weft_chan_recv(&jobs, &j, WEFT_FOREVER) == 0)
    complete_promise(j);
  return NULL;
}

static struct hub { pthread_t thread; } hubs[2];

/* One round. Returns false when the calling task was cancelled. */
static bool round_of(unsigned *seed, weft_future **prev, bool cancellable) {
  struct call *c = calloc(1, sizeof *c);
  if (!c)
    return true;
  c->arg = (int)(stress_next(seed) % 1000);
  atomic_init(&c->holds, 1);
  bool promise = stress_next(seed) % 4 == 0;
  weft_future *f;
  if (promise) {
    if (weft_future_new(&f) != 0) {
      free(c);
      return true;
    }
  } else {
    int64_t t = random_timeout(seed);
    int rc = weft_thread_pool_submit(pool, compute, c, t, &f);
    if (rc == -ETIMEDOUT || rc == -EAGAIN) {
      if (rc == -EAGAIN && t != 0)
        FAIL("a submit with a timeout failed with -EAGAIN");
      free(c);
      return true;
    }
    if (rc == -ECANCELED) {
      free(c);
      return false;
    }
    if (rc != 0) {
      FAIL("submit: %d", rc);
      free(c);
      return true;
    }
  }
  atomic_fetch_add(&rounds, 1);
  /* The call's own hold on c (the pool's call reads it), let go once the
   * future is done, whichever way. */
  atomic_fetch_add(&c->holds, 1);
  weft_future_add_done_callback(f, release_call, c);
  int before = (int)(stress_next(seed) % 3);
  for (int i = 0; i < before; i++) {
    atomic_fetch_add(&c->holds, 1);
    atomic_fetch_add(&callbacks_expected, 1);
    weft_future_add_done_callback(f, on_done, c);
  }
  if (promise) {
    struct completer_job *j = malloc(sizeof *j);
    *j = (struct completer_job){f, c->arg, (int)(stress_next(seed) % 50)};
    /* The completer holds f through a hold of its own, which it lets go
     * once it has completed it. */
    weft__future_hold(f);
    if (stress_next(seed) % 2 == 0 ||
        weft_chan_send(&jobs, j, WEFT_MS(10)) != 0)
      complete_promise(j); /* here, at once */
  }
  if (stress_next(seed) % 4 == 0) {
    int rc = weft_future_cancel(f);
    if (rc == 0) {
      atomic_fetch_add(&cancels_won, 1);
      if (promise)
        atomic_fetch_add(&promise_races, 1);
    } else if (rc == -EBUSY) {
      atomic_fetch_add(&busy_cancels, 1);
      if (promise)
        FAIL("a promise nobody set running was busy");
    } else if (rc != -EALREADY) {
      FAIL("cancel: %d", rc);
    }
  }
  bool alive = wait_done(f, *prev, seed, cancellable);
  if (!alive) {
    /* The future goes on without us; its callbacks still run once. */
    int after = (int)(stress_next(seed) % 2);
    for (int i = 0; i < after; i++) {
      atomic_fetch_add(&c->holds, 1);
      atomic_fetch_add(&callbacks_expected, 1);
      weft_future_add_done_callback(f, on_done, c);
    }
    weft_future_free(*prev);
    *prev = f;
    let_go(c);
    return false;
  }
  if (weft_future_state(f) == WEFT_FUTURE_CANCELLED && !promise &&
      atomic_load(&c->ran))
    FAIL("a call ran though its cancel won");
  check_outcome(f, c, promise);
  if (stress_next(seed) % 2) {
    atomic_int ran = 0;
    weft_future_add_done_callback(f, mark, &ran);
    if (!atomic_load(&ran))
      FAIL("a callback added to a done future did not run at once");
  }
  weft_future_free(*prev);
  *prev = f;
  let_go(c);
  return true;
}

static void *submitter_task(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  weft_future *prev = NULL;
  while (weft_now() < run_until && !atomic_load(&failed))
    if (!round_of(&seed, &prev, true))
      break;
  weft_future_free(prev);
  return NULL;
}

static void *submitter_thread(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  weft_future *prev = NULL;
  while (weft_now() < run_until && !atomic_load(&failed))
    round_of(&seed, &prev, false);
  weft_future_free(prev);
  return NULL;
}

enum { TASKS = 12 };

/* A hub's submitters, kept at TASKS: a cancelled one is replaced. */
static void *hub_main(void *arg) {
  struct hub *h = arg;
  unsigned seed = (unsigned)(uintptr_t)h * 2654435761u;
  weft_task *t[TASKS];
  for (int i = 0; i < TASKS; i++)
    weft_task_spawn(&t[i], submitter_task,
                    (void *)(uintptr_t)stress_next(&seed), NULL);
  while (weft_now() < run_until && !atomic_load(&failed)) {
    weft_sleep(WEFT_US(200 + stress_next(&seed) % 800));
    int k = (int)(stress_next(&seed) % TASKS);
    if (stress_next(&seed) % 3 == 0 && weft_task_cancel(t[k]) == 0) {
      atomic_fetch_add(&task_cancels, 1);
      weft_task_join(t[k], WEFT_FOREVER, NULL);
      weft_task_detach(t[k]);
      weft_task_spawn(&t[k], submitter_task,
                      (void *)(uintptr_t)stress_next(&seed), NULL);
    }
  }
  for (int i = 0; i < TASKS; i++) {
    weft_task_join(t[i], WEFT_FOREVER, NULL);
    weft_task_detach(t[i]);
  }
  return NULL;
}

static void *hub_thread(void *arg) {
  weft_run(hub_main, arg, NULL);
  return NULL;
}

int main(void) {
  const char *s = getenv("WEFT_STRESS_SECONDS");
  double secs = s ? atof(s) : 1.0;
  run_until = weft_now() + (int64_t)(secs * 1e9);
  if (weft_thread_pool_new(
          &pool, &(weft_thread_pool_opts){.workers = 4, .queue_max = 16}) != 0)
    return 1;
  pthread_t completer;
  pthread_create(&completer, NULL, completer_thread, NULL);
  for (int i = 0; i < 2; i++)
    pthread_create(&hubs[i].thread, NULL, hub_thread, &hubs[i]);
  pthread_t threads[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&threads[i], NULL, submitter_thread,
                   (void *)(uintptr_t)(7919u * (unsigned)(i + 1)));
  for (int i = 0; i < 2; i++)
    pthread_join(threads[i], NULL);
  for (int i = 0; i < 2; i++)
    pthread_join(hubs[i].thread, NULL);
  weft_thread_pool_free(pool);
  weft_chan_close(&jobs);
  pthread_join(completer, NULL);
  if (atomic_load(&callbacks_run) != atomic_load(&callbacks_expected))
    FAIL("%ld callbacks ran of %ld added", atomic_load(&callbacks_run),
         atomic_load(&callbacks_expected));
  printf("stress-exec: %.1f s: %ld rounds, %ld callbacks, %ld cancels won "
         "(%ld of promises), %ld busy, %ld wait timeouts, %ld tasks "
         "cancelled: %s\n",
         secs, atomic_load(&rounds), atomic_load(&callbacks_run),
         atomic_load(&cancels_won), atomic_load(&promise_races),
         atomic_load(&busy_cancels), atomic_load(&timeouts),
         atomic_load(&task_cancels), atomic_load(&failed) ? "FAILED" : "ok");
  return atomic_load(&failed) ? 1 : 0;
}
