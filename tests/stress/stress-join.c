/*
 * Stress: many joiners of one task or thread, racing its finish, its
 * detach, their own timeouts and cancellations (issue 12, point 2), for
 * WEFT_STRESS_SECONDS (default 1).
 *
 * Each round has one target, a task of hub A and a weft thread in turn,
 * that runs a random short time (often none, so that its finish races the
 * joins' start) and returns a pointer that belongs to the round. 100
 * joiners join it at once: tasks of hub A (the target task's own hub),
 * tasks of hub B (another thread's weft_run), and plain threads, in a
 * random mix. Pools of them live across rounds and are handed work through
 * weft semaphores. Each join takes a random timeout (a poll, microseconds,
 * milliseconds, or none) and is made again on -ETIMEDOUT until it gives
 * 0. A chaos task on each hub cancels a few joiner tasks in their join; a
 * cancelled task leaves its pool and a fresh one takes its place. A racer
 * task of hub A tries to detach the target while a join of hub A is under
 * way (for a thread target, only while the thread is held back from
 * finishing, since a finished thread's detach need not wait for a joiner
 * that was woken and has still to leave). The last joiner (or the racer)
 * to return detaches the target at once, when it may (a task's detach is
 * for hub A's tasks: else the round's coordinator does it), so that the
 * free races the last joins leaving and the thread's own end.
 *
 * Checks:
 *  - every join that returns 0 gives the round's exact result, and the
 *    target is no longer alive after it;
 *  - a join of a target that was already not alive returns 0, at once,
 *    cancelled caller or not;
 *  - a join that timed out took at least its timeout (no tolerance), and
 *    not absurdly more (LATE_MAX), and never had WEFT_FOREVER;
 *  - -ECANCELED comes only to a task the chaos cancelled, and a join that
 *    started after the cancellation does not time out (but for a poll);
 *    a join of hub A without a timeout, cancelled while its target could
 *    not have finished (hub A's own task not done, a thread held at its
 *    gate), must return -ECANCELED even when the target then finishes
 *    before the task runs again (hub.h: the cancellation wins);
 *  - the target is alive until it was let finish;
 *  - a detach while a join of hub A is under way returns -EBUSY (then the
 *    handle must still serve the later joins and the final detach), and
 *    exactly one detach per round returns 0;
 *  - no hang: a round must end within ROUND_LIMIT (a lost wake-up), and a
 *    watchdog thread stops the program when no round ends for longer.
 * Under AddressSanitizer, a detach that freed too early, or a join that
 * touched a freed handle, is reported as the use after free it is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

enum {
  JOINERS = 100,
  MIN_A = 20, /* joiner tasks of hub A in a round: MIN_A .. POOL_A */
  POOL_A = 50,
  MIN_T = 4, /* joiner threads: MIN_T .. POOL_T (at least one joiner that
              * no chaos cancels, so that some join sees the finish) */
  POOL_T = 16,
  POOL_B = JOINERS - MIN_A - MIN_T, /* hub B: the rest */
  ROUND_LIMIT = 10,                 /* s */
  WATCHDOG_LIMIT = 20,              /* s without a round ending */
  MAX_REPORTS = 20,
};

/* How late a timed-out join may return before it counts as a failure:
 * generous, for two shared cores under sanitizers. */
#define LATE_MAX WEFT_SEC(5)

enum kind { ON_A, ON_B, PLAIN };
static const char *const kind_name[] = {"task of hub A", "task of hub B",
                                        "thread"};

struct round {
  uint64_t n;
  bool is_thread;
  weft_task *task;
  weft_thread *thread;
  void *expect;
  int64_t run_ns; /* how long the target runs */
  bool spin;      /* spinning (a task: keeping hub A busy) or sleeping */
  bool gated;     /* a thread target waits for `gate` before it returns */
  weft_event go;  /* a thread target starts once this is set */
  weft_event gate;
  atomic_int remaining;      /* joiners and the racer still to return */
  atomic_int detaches;       /* detaches of the target that returned 0 */
  atomic_bool coord_detach;  /* the last one could not: the coordinator */
  atomic_bool let_go;        /* the target may have finished */
  atomic_int in_join[3];     /* joiners in a join now, by kind */
  atomic_int cancels_sent;   /* this round */
  atomic_int joins_returned; /* this round */
};

static struct round R = {.go = WEFT_EVENT_INIT, .gate = WEFT_EVENT_INIT};
static weft_waitgroup wg = WEFT_WAITGROUP_INIT;

/* Hub A's own: read and written by its tasks only. */
static int a_in_join;      /* tasks of hub A inside a join of the target */
static long n_must_cancel; /* cancels of a join nothing else could end */
static long n_cancel_lost; /* of those, joins that gave 0: a failure */
/* Steps of hub A, to tell in which order things happened on it: the
 * target task's finish, the gate's opening, a cancel, a join's return. */
static long a_step, finish_step, gate_step;
static bool gate_open; /* the racer opened the gate of this round */

struct pool;
struct slot {
  struct pool *pool;
  weft_task *self;
  bool joining;   /* in a join of the target now */
  bool cancelled; /* by the chaos, since it joined */
  /* Cancelled in a join that nothing else could end by then: a join
   * without a timeout, of a target that could not have finished (hub A
   * knows this of its own task, and of a thread held at the gate). */
  bool must_cancel;
  long cancel_step; /* a_step at the cancel */
  int64_t timeout;  /* of the join under way */
  uint64_t seed;
};

/* Joiner tasks of one hub, and its chaos task's seed. Touched by that
 * hub's tasks only, but for sem and chaos (weft's own, for any thread). */
struct pool {
  enum kind kind;
  int n;
  weft_sem sem;   /* a unit per joiner job */
  weft_sem chaos; /* a unit per round (hub B's chaos task) */
  uint64_t seed;
  struct slot slots[POOL_B];
};

static struct pool pool_a = {.kind = ON_A, .n = POOL_A};
static struct pool pool_b = {.kind = ON_B, .n = POOL_B};
static weft_sem sem_t = WEFT_SEM_INIT(0);

static double seconds = 1.0;
static uint64_t base_seed;
static atomic_bool stop;
static atomic_bool done;
static atomic_int failures;
static atomic_uint_fast64_t progress; /* rounds ended, for the watchdog */

static atomic_long n_rounds[2], n_joins, n_found_done, n_timeouts,
    n_timeouts_kind[3], n_joins_kind[3], n_cancels, n_cancels_sent, n_busy,
    n_busy_skipped, n_last_detach, n_coord_detach, max_late;

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void report(const char *fmt, ...) {
  int k = atomic_fetch_add(&failures, 1);
  if (k >= MAX_REPORTS)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "stress-join: round %llu (%s target): %s\n",
          (unsigned long long)R.n, R.is_thread ? "thread" : "task", buf);
}

#define FAIL(...) report(__VA_ARGS__)

/* A failure after which going on would only use a freed handle. */
#define FATAL(...)                                                             \
  do {                                                                         \
    report(__VA_ARGS__);                                                       \
    fprintf(stderr, "stress-join: FAILED (seed %llu)\n",                       \
            (unsigned long long)base_seed);                                    \
    fflush(stderr);                                                            \
    _exit(1);                                                                  \
  } while (0)

static uint32_t rnd(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(*s >> 33);
}

/* A join's timeout: a poll, a few us, a few ms, or none. */
static int64_t pick_timeout(uint64_t *seed) {
  unsigned r = rnd(seed) % 20;
  if (r < 4)
    return 0;
  if (r < 10)
    return WEFT_US(1 + rnd(seed) % 20);
  if (r < 15)
    return WEFT_US(50 + rnd(seed) % 3000);
  return WEFT_FOREVER;
}

static void spin_for(int64_t ns) {
  int64_t end = weft_now() + ns;
  while (weft_now() < end)
    ;
}

static void atomic_max(atomic_long *m, long v) {
  long cur = atomic_load(m);
  while (v > cur && !atomic_compare_exchange_weak(m, &cur, v))
    ;
}

static void *target_task(void *arg) {
  struct round *r = arg;
  if (weft_task_join(weft_task_current(), 0, NULL) != -EDEADLK)
    FAIL("a task's join of itself did not say -EDEADLK");
  if (r->run_ns) {
    if (r->spin)
      spin_for(r->run_ns);
    else if (weft_sleep(r->run_ns) != 0)
      FAIL("the target task's sleep failed");
  }
  finish_step = ++a_step;
  return r->expect;
}

static void *target_thread(void *arg) {
  struct round *r = arg;
  if (weft_event_wait(&r->go, WEFT_FOREVER) != 0)
    FAIL("the target thread's wait to start failed");
  if (weft_thread_join(weft_thread_current(), 0, NULL) != -EDEADLK)
    FAIL("a thread's join of itself did not say -EDEADLK");
  if (r->run_ns) {
    if (r->spin)
      spin_for(r->run_ns);
    else
      nanosleep(&(struct timespec){0, (long)r->run_ns}, NULL);
  }
  if (r->gated && weft_event_wait(&r->gate, WEFT_FOREVER) != 0)
    FAIL("the target thread's wait at the gate failed");
  return r->expect;
}

static int join_target(struct round *r, int64_t timeout, void **result) {
  return r->is_thread ? weft_thread_join(r->thread, timeout, result)
                      : weft_task_join(r->task, timeout, result);
}

static bool target_alive(struct round *r) {
  return r->is_thread ? weft_thread_alive(r->thread) : weft_task_alive(r->task);
}

static int detach_target(struct round *r) {
  return r->is_thread ? weft_thread_detach(r->thread)
                      : weft_task_detach(r->task);
}

/* The detach once every joiner has returned: it must succeed. */
static void final_detach(struct round *r) {
  int rc = detach_target(r);
  if (rc != 0)
    FATAL("the detach after the last join returned %d (%s)", rc,
          weft_strerror(rc));
  if (atomic_fetch_add(&r->detaches, 1) != 0)
    FATAL("a second detach of the target returned 0");
}

/* A joiner or the racer is through with the target. The last one detaches
 * it, if its kind may: anyone a thread, a task of hub A a task. */
static void participant_done(struct round *r, enum kind k) {
  if (atomic_fetch_sub(&r->remaining, 1) != 1)
    return;
  if (k == ON_A || r->is_thread) {
    final_detach(r);
    atomic_fetch_add(&n_last_detach, 1);
  } else {
    atomic_store(&r->coord_detach, true);
  }
}

/* One joiner's job: join until a join gives 0 or -ECANCELED. s is the
 * joiner's slot when it is a task (it may be cancelled), else NULL. */
static void join_job(struct round *r, enum kind k, struct slot *s,
                     uint64_t *seed) {
  for (;;) {
    int64_t timeout = pick_timeout(seed);
    bool was_cancelled = s && s->cancelled;
    bool was_alive = target_alive(r);
    if (!was_alive && !atomic_load(&r->let_go))
      FAIL("the target was not alive before it was let finish");
    void *result = &result; /* no round's result */
    if (k == ON_A)
      a_in_join++;
    if (s) {
      s->joining = true;
      s->timeout = timeout;
    }
    atomic_fetch_add(&r->in_join[k], 1);
    int64_t t0 = weft_now();
    int rc = join_target(r, timeout, &result);
    int64_t took = weft_now() - t0;
    atomic_fetch_sub(&r->in_join[k], 1);
    if (s)
      s->joining = false;
    if (k == ON_A)
      a_in_join--;
    if (rc == 0) {
      atomic_fetch_add(&n_joins, 1);
      atomic_fetch_add(&n_joins_kind[k], 1);
      atomic_fetch_add(&r->joins_returned, 1);
      if (!was_alive)
        atomic_fetch_add(&n_found_done, 1);
      if (s && s->must_cancel) {
        /* Cancelled while parked, then the target finished before the
         * task ran again: hub.h says the join returns -ECANCELED all the
         * same. */
        n_cancel_lost++;
        FAIL("a %s's join without a timeout, cancelled while its target "
             "could not have finished (hub A's step %ld), returned 0, not "
             "-ECANCELED; the target %s at step %ld, the join returned at "
             "step %ld",
             kind_name[k], s->cancel_step,
             r->is_thread ? "was let through its gate" : "finished",
             r->is_thread ? gate_step : finish_step, ++a_step);
      }
      if (result != r->expect)
        FAIL("a %s's join gave %p, not the round's %p", kind_name[k], result,
             r->expect);
      if (target_alive(r))
        FAIL("the target is alive after a %s's join returned 0", kind_name[k]);
      return;
    }
    if (!was_alive) {
      FAIL("a %s's join (timeout %lld ns%s) of a target that had finished "
           "returned %d (%s), not 0",
           kind_name[k], (long long)timeout, was_cancelled ? ", cancelled" : "",
           rc, weft_strerror(rc));
      return;
    }
    if (rc == -ETIMEDOUT) {
      atomic_fetch_add(&n_timeouts, 1);
      atomic_fetch_add(&n_timeouts_kind[k], 1);
      if (timeout == WEFT_FOREVER)
        FAIL("a %s's join without a timeout timed out", kind_name[k]);
      else if (took < timeout)
        FAIL("a %s's join timed out after %lld ns, before its %lld ns",
             kind_name[k], (long long)took, (long long)timeout);
      else if (took - timeout > LATE_MAX)
        FAIL("a %s's join of timeout %lld ns returned %lld ns late",
             kind_name[k], (long long)timeout, (long long)(took - timeout));
      atomic_max(&max_late, (long)(took - timeout));
      if (was_cancelled && timeout != 0)
        FAIL("a %s's join started after its cancellation timed out",
             kind_name[k]);
      if (timeout == 0) { /* a poll: let the others run */
        if (k == PLAIN)
          sched_yield();
        else
          weft_yield(); /* -ECANCELED once cancelled: nothing to do */
      }
      continue;
    }
    if (rc == -ECANCELED) {
      atomic_fetch_add(&n_cancels, 1);
      if (!s || !s->cancelled)
        FAIL("a %s's join returned -ECANCELED, yet nobody cancelled it",
             kind_name[k]);
      return;
    }
    FAIL("a %s's join returned %d (%s)", kind_name[k], rc, weft_strerror(rc));
    return;
  }
}

static void *worker(void *arg) {
  struct slot *s = arg;
  struct pool *p = s->pool;
  s->self = weft_task_current();
  s->joining = false;
  s->cancelled = false;
  s->must_cancel = false;
  for (;;) {
    int rc = weft_sem_acquire(&p->sem, WEFT_FOREVER);
    if (rc != 0) {
      FAIL("a joiner task's wait for work returned %d", rc);
      return NULL;
    }
    if (atomic_load(&stop))
      return NULL;
    join_job(&R, p->kind, s, &s->seed);
    participant_done(&R, p->kind);
    bool cancelled = s->cancelled;
    /* A cancelled task can wait for nothing more: a fresh one serves in
     * its place (spawned before the round can end). */
    if (cancelled &&
        weft_task_spawn(NULL, worker, s, &(weft_task_opts){.name = "joiner"}))
      FATAL("a fresh joiner task could not be spawned");
    weft_waitgroup_done(&wg);
    if (cancelled)
      return NULL;
  }
}

static void *plain_worker(void *arg) {
  uint64_t seed = base_seed ^ (uintptr_t)arg * 0x9e3779b97f4a7c15ull;
  for (;;) {
    int rc = weft_sem_acquire(&sem_t, WEFT_FOREVER);
    if (rc != 0) {
      FAIL("a joiner thread's wait for work returned %d", rc);
      return NULL;
    }
    if (atomic_load(&stop))
      return NULL;
    join_job(&R, PLAIN, NULL, &seed);
    participant_done(&R, PLAIN);
    weft_waitgroup_done(&wg);
  }
}

/* Cancels a few joiner tasks of p's hub while they join. */
static void chaos_round(struct pool *p) {
  int k = (int)(rnd(&p->seed) % 4);
  for (int i = 0; i < k; i++) {
    unsigned us = rnd(&p->seed) % 300;
    if (us < 30)
      weft_yield();
    else
      weft_sleep(WEFT_US(us));
    int start = (int)(rnd(&p->seed) % (unsigned)p->n);
    for (int j = 0; j < p->n; j++) {
      struct slot *s = &p->slots[(start + j) % p->n];
      if (!s->joining || s->cancelled)
        continue;
      s->cancelled = true;
      /* On hub A, nothing runs between this look and the cancel. */
      s->must_cancel =
          p == &pool_a && s->timeout == WEFT_FOREVER &&
          (R.is_thread ? R.gated && !gate_open : weft_task_alive(R.task));
      if (s->must_cancel) /* hub A only: its own counter */
        n_must_cancel++;
      s->cancel_step = p == &pool_a ? ++a_step : 0;
      int rc = weft_task_cancel(s->self);
      if (rc != 0)
        FAIL("the cancel of a joiner task in its join returned %d (%s)", rc,
             weft_strerror(rc));
      atomic_fetch_add(&n_cancels_sent, 1);
      atomic_fetch_add(&R.cancels_sent, 1);
      break;
    }
  }
}

static void *chaos_a(void *arg) {
  (void)arg;
  chaos_round(&pool_a);
  weft_waitgroup_done(&wg);
  return NULL;
}

static void *chaos_b(void *arg) {
  (void)arg;
  for (;;) {
    if (weft_sem_acquire(&pool_b.chaos, WEFT_FOREVER) != 0) {
      FAIL("hub B's chaos task's wait for work failed");
      return NULL;
    }
    if (atomic_load(&stop))
      return NULL;
    chaos_round(&pool_b);
    weft_waitgroup_done(&wg);
  }
}

/* Tries to detach the target while a join of hub A is surely under way:
 * each must return -EBUSY and change nothing. */
static void *racer(void *arg) {
  struct round *r = arg;
  int attempts = 1 + (int)(rnd(&pool_a.seed) % 4);
  for (int i = 0; i < attempts; i++) {
    unsigned us = rnd(&pool_a.seed) % 200;
    if (us < 40)
      weft_yield();
    else
      weft_sleep(WEFT_US(us));
    /* On this hub, a task counted in a_in_join is inside weft_*_join: it
     * did not return, as nothing ran on the hub since it last did. For a
     * thread, that join waits in the queue only while the thread cannot
     * finish: the gate is shut. */
    if (a_in_join == 0 || (r->is_thread && (!r->gated || gate_open))) {
      atomic_fetch_add(&n_busy_skipped, 1);
      continue;
    }
    bool alive = target_alive(r);
    int rc = detach_target(r);
    if (rc != -EBUSY)
      FATAL("a detach while %d tasks of hub A were in a join returned %d "
            "(%s), not -EBUSY",
            a_in_join, rc, weft_strerror(rc));
    atomic_fetch_add(&n_busy, 1);
    /* Nothing changed: the target cannot have finished meanwhile (it is
     * hub A's task, or held at the gate), and it stays joinable (the
     * joins still under way, the final detach). */
    if (target_alive(r) != alive)
      FAIL("a refused detach changed whether the target is alive");
  }
  if (r->is_thread && r->gated) {
    gate_open = true;
    gate_step = ++a_step;
    atomic_store(&r->let_go, true);
    weft_event_set(&r->gate);
  }
  participant_done(r, ON_A);
  weft_waitgroup_done(&wg);
  return NULL;
}

static void create_target(struct round *r) {
  int rc;
  if (r->is_thread) {
    rc = weft_thread_start(&r->thread, target_thread, r,
                           &(weft_thread_opts){.name = "target"});
    if (rc != 0)
      FATAL("weft_thread_start: %s", weft_strerror(rc));
    if (!weft_thread_alive(r->thread))
      FAIL("a thread held at its start is not alive");
  } else {
    rc = weft_task_spawn(&r->task, target_task, r,
                         &(weft_task_opts){.name = "target"});
    if (rc != 0)
      FATAL("weft_task_spawn: %s", weft_strerror(rc));
    if (!weft_task_alive(r->task))
      FAIL("a task not run yet is not alive");
  }
}

static void one_round(uint64_t n, uint64_t *seed) {
  struct round *r = &R;
  r->n = n;
  r->is_thread = n % 2;
  r->task = NULL;
  r->thread = NULL;
  r->expect = (void *)(uintptr_t)((n << 8) | 0x5a);
  unsigned run = rnd(seed) % 4;
  r->run_ns = run == 0 ? 0 : WEFT_US(rnd(seed) % 300);
  r->spin = rnd(seed) % 3 == 0;
  r->gated = r->is_thread && rnd(seed) % 2;
  gate_open = false;
  weft_event_clear(&r->go);
  weft_event_clear(&r->gate);
  atomic_store(&r->remaining, JOINERS + 1);
  atomic_store(&r->detaches, 0);
  atomic_store(&r->coord_detach, false);
  atomic_store(&r->let_go, false);
  atomic_store(&r->cancels_sent, 0);
  atomic_store(&r->joins_returned, 0);
  int n_a = MIN_A + (int)(rnd(seed) % (POOL_A - MIN_A + 1));
  int n_t = MIN_T + (int)(rnd(seed) % (POOL_T - MIN_T + 1));
  int n_b = JOINERS - n_a - n_t;
  /* Joiners, the racer, and the chaos of each hub. */
  weft_waitgroup_add(&wg, JOINERS + 3);

  /* Hub A's joiners first, or the target first: they run in that order
   * once this task waits. The other joiners may run at once, so they are
   * let go after the target exists. */
  bool a_first = rnd(seed) % 2;
  if (a_first)
    weft_sem_release(&pool_a.sem, (unsigned)n_a);
  create_target(r);
  if (!a_first)
    weft_sem_release(&pool_a.sem, (unsigned)n_a);
  bool go_first = rnd(seed) % 2;
  if (r->is_thread && go_first) {
    atomic_store(&r->let_go, !r->gated);
    weft_event_set(&r->go);
  }
  weft_sem_release(&pool_b.sem, (unsigned)n_b);
  weft_sem_release(&sem_t, (unsigned)n_t);
  weft_sem_release(&pool_b.chaos, 1);
  if (weft_task_spawn(NULL, racer, r, &(weft_task_opts){.name = "racer"}) ||
      weft_task_spawn(NULL, chaos_a, NULL, &(weft_task_opts){.name = "chaos"}))
    FATAL("the racer or the chaos task could not be spawned");
  if (r->is_thread && !go_first) {
    atomic_store(&r->let_go, !r->gated);
    weft_event_set(&r->go);
  }
  if (!r->is_thread)
    atomic_store(&r->let_go, true); /* it runs once this task waits */

  int rc = weft_waitgroup_wait(&wg, WEFT_SEC(ROUND_LIMIT));
  if (rc != 0) {
    fprintf(stderr,
            "stress-join: round %llu (%s target): not over after %d s (%s): "
            "%d joiners and racer to return; in a join: %d of hub A, %d of "
            "hub B, %d threads; target alive %d; hub A:\n",
            (unsigned long long)n, r->is_thread ? "thread" : "task",
            ROUND_LIMIT, weft_strerror(rc), atomic_load(&r->remaining),
            atomic_load(&r->in_join[ON_A]), atomic_load(&r->in_join[ON_B]),
            atomic_load(&r->in_join[PLAIN]), (int)target_alive(r));
    weft_hub_dump(2);
    FATAL("a lost wake-up, or a hang");
  }
  if (atomic_load(&r->coord_detach)) {
    final_detach(r);
    atomic_fetch_add(&n_coord_detach, 1);
  }
  if (atomic_load(&r->detaches) != 1)
    FAIL("%d detaches returned 0, not 1", atomic_load(&r->detaches));
  if (a_in_join != 0)
    FAIL("%d tasks of hub A still counted in a join", a_in_join);
  if (atomic_load(&r->joins_returned) == 0)
    FAIL("no join returned 0");
  atomic_fetch_add(&n_rounds[r->is_thread], 1);
  atomic_fetch_add(&progress, 1);
}

static void *hub_b_main(void *arg) {
  (void)arg;
  for (int i = 0; i < POOL_B; i++)
    if (weft_task_spawn(NULL, worker, &pool_b.slots[i],
                        &(weft_task_opts){.name = "joiner"}))
      FATAL("hub B could not spawn its joiners");
  if (weft_task_spawn(NULL, chaos_b, NULL, &(weft_task_opts){.name = "chaos"}))
    FATAL("hub B could not spawn its chaos task");
  return NULL;
}

static void *hub_b_thread(void *arg) {
  (void)arg;
  int rc = weft_run(hub_b_main, NULL, NULL);
  if (rc != 0)
    FAIL("hub B's weft_run returned %d (%s)", rc, weft_strerror(rc));
  return NULL;
}

static void init_pool(struct pool *p, uint64_t salt) {
  weft_sem_init(&p->sem, 0, false);
  weft_sem_init(&p->chaos, 0, false);
  p->seed = base_seed ^ salt;
  for (int i = 0; i < p->n; i++)
    p->slots[i] = (struct slot){
        .pool = p, .seed = base_seed ^ salt ^ ((uint64_t)(i + 1) << 20)};
}

static void *coordinator(void *arg) {
  (void)arg;
  uint64_t seed = base_seed;
  for (int i = 0; i < POOL_A; i++)
    if (weft_task_spawn(NULL, worker, &pool_a.slots[i],
                        &(weft_task_opts){.name = "joiner"}))
      FATAL("hub A could not spawn its joiners");
  weft_thread *plain[POOL_T], *hub_b;
  for (int i = 0; i < POOL_T; i++)
    if (weft_thread_start(&plain[i], plain_worker, (void *)(uintptr_t)(i + 1),
                          &(weft_thread_opts){.name = "joiner"}))
      FATAL("the joiner threads could not start");
  if (weft_thread_start(&hub_b, hub_b_thread, NULL,
                        &(weft_thread_opts){.name = "hub B"}))
    FATAL("hub B's thread could not start");

  int64_t end = weft_now() + (int64_t)(seconds * 1e9);
  for (uint64_t n = 0; weft_now() < end && !atomic_load(&failures); n++)
    one_round(n, &seed);

  atomic_store(&stop, true);
  weft_sem_release(&pool_a.sem, POOL_A);
  weft_sem_release(&pool_b.sem, POOL_B);
  weft_sem_release(&pool_b.chaos, 1);
  weft_sem_release(&sem_t, POOL_T);
  for (int i = 0; i < POOL_T; i++)
    if (weft_thread_join(plain[i], WEFT_SEC(ROUND_LIMIT), NULL) != 0 ||
        weft_thread_detach(plain[i]) != 0)
      FAIL("a joiner thread did not stop");
  if (weft_thread_join(hub_b, WEFT_SEC(ROUND_LIMIT), NULL) != 0 ||
      weft_thread_detach(hub_b) != 0)
    FAIL("hub B did not stop");
  return NULL;
}

/* Stops the program when no round has ended for WATCHDOG_LIMIT s: a hang
 * that keeps even the coordinator's own timeout from firing (hub A stuck). */
static void *watchdog(void *arg) {
  (void)arg;
  uint64_t seen = atomic_load(&progress);
  int still = 0;
  while (!atomic_load(&done)) {
    nanosleep(&(struct timespec){0, 100000000}, NULL);
    uint64_t now = atomic_load(&progress);
    if (now != seen) {
      seen = now;
      still = 0;
    } else if (++still >= WATCHDOG_LIMIT * 10) {
      fprintf(stderr,
              "stress-join: watchdog: no round ended for %d s (round %llu, "
              "%d to return; in a join: %d of hub A, %d of hub B, %d "
              "threads); seed %llu\n",
              WATCHDOG_LIMIT, (unsigned long long)seen,
              atomic_load(&R.remaining), atomic_load(&R.in_join[ON_A]),
              atomic_load(&R.in_join[ON_B]), atomic_load(&R.in_join[PLAIN]),
              (unsigned long long)base_seed);
      fflush(stderr);
      _exit(2);
    }
  }
  return NULL;
}

int main(void) {
  const char *env = getenv("WEFT_STRESS_SECONDS");
  if (env && *env)
    seconds = strtod(env, NULL);
  env = getenv("WEFT_STRESS_SEED");
  base_seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)weft_now();
  init_pool(&pool_a, 0xa);
  init_pool(&pool_b, 0xb);
  pthread_t dog;
  if (pthread_create(&dog, NULL, watchdog, NULL) != 0) {
    fprintf(stderr, "stress-join: pthread_create failed\n");
    return 1;
  }
  int rc = weft_run(coordinator, NULL, NULL);
  if (rc != 0)
    FAIL("hub A's weft_run returned %d (%s)", rc, weft_strerror(rc));
  atomic_store(&done, true);
  pthread_join(dog, NULL);

  int failed = atomic_load(&failures);
  long rounds = atomic_load(&n_rounds[0]) + atomic_load(&n_rounds[1]);
  printf("stress-join: %.1f s: %ld rounds (%ld tasks, %ld threads), %ld "
         "joins (%ld hub A, %ld hub B, %ld threads; %ld found it finished), "
         "%ld timeouts (latest %.3f ms late), %ld cancels (%ld sent; %ld "
         "certain, of which %ld lost to a later finish), %ld "
         "busy detaches (%ld skipped), final detach by the last %ld / by the "
         "owner %ld: %s\n",
         seconds, rounds, atomic_load(&n_rounds[0]), atomic_load(&n_rounds[1]),
         atomic_load(&n_joins), atomic_load(&n_joins_kind[ON_A]),
         atomic_load(&n_joins_kind[ON_B]), atomic_load(&n_joins_kind[PLAIN]),
         atomic_load(&n_found_done), atomic_load(&n_timeouts),
         (double)atomic_load(&max_late) / 1e6, atomic_load(&n_cancels),
         atomic_load(&n_cancels_sent), n_must_cancel, n_cancel_lost,
         atomic_load(&n_busy), atomic_load(&n_busy_skipped),
         atomic_load(&n_last_detach), atomic_load(&n_coord_detach),
         failed ? "FAILED" : "ok");
  if (failed)
    printf("stress-join: %d failures (seed %llu)\n", failed,
           (unsigned long long)base_seed);
  return failed ? 1 : 0;
}
