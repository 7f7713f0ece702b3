/*
 * The hub: weft_run, spawn and join, timeouts, yield order, sleeping in
 * timer order, cancellation, detached tasks, the deadlock report, one hub
 * per thread, and bad use.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

/* Runs fn as the main task and checks weft_run's result. */
static void *run_main(weft_task_fn fn, void *arg) {
  void *result = IV(-12345);
  CHECK_EQ(weft_run(fn, arg, &result), 0);
  return result;
}

/* --- run, spawn, join ------------------------------------------------------
 */

static void *answer(void *arg) { return IV(VI(arg) + 1); }

TEST(run_gives_the_main_result) {
  CHECK_EQ(VI(run_main(answer, IV(41))), 42);
  CHECK(weft_task_current() == NULL);
}

static void *square(void *arg) {
  weft_yield();
  return IV(VI(arg) * VI(arg));
}

static void *spawn_ten(void *arg) {
  (void)arg;
  weft_task *t[10];
  for (int i = 0; i < 10; i++)
    CHECK_EQ(weft_task_spawn(&t[i], square, IV(i), NULL), 0);
  intptr_t sum = 0;
  for (int i = 9; i >= 0; i--) {
    void *r;
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, &r), 0);
    CHECK_EQ(VI(r), i * i);
    sum += VI(r);
  }
  return IV(sum);
}

TEST(spawn_and_join) { CHECK_EQ(VI(run_main(spawn_ten, NULL)), 285); }

static void *sleep_then(void *arg) {
  CHECK_EQ(weft_sleep(WEFT_MS(VI(arg))), 0);
  return IV(7);
}

static void *join_with_timeout(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, sleep_then, IV(200), NULL), 0);
  int64_t t0 = harness_now_ns();
  void *r = IV(0);
  CHECK_EQ(weft_task_join(t, WEFT_MS(20), &r), -ETIMEDOUT);
  int64_t waited = harness_now_ns() - t0;
  CHECK(waited >= WEFT_MS(20));
  CHECK(waited < WEFT_SEC(5));
  CHECK_EQ(VI(r), 0);
  CHECK_EQ(weft_task_join(t, 0, &r), -ETIMEDOUT); /* polls */
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 7);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(200));
  return NULL;
}

TEST(join_times_out_and_leaves_the_task_running) {
  run_main(join_with_timeout, NULL);
}

/* --- scheduling order ------------------------------------------------------
 */

static int order[64], norder;

static void *log_and_yield(void *arg) {
  for (int round = 0; round < 3; round++) {
    order[norder++] = (int)VI(arg);
    CHECK_EQ(weft_yield(), 0);
  }
  return NULL;
}

static void *three_yielders(void *arg) {
  (void)arg;
  weft_task *t[3];
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_task_spawn(&t[i], log_and_yield, IV(i), NULL), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(yield_goes_behind_every_runnable_task) {
  norder = 0;
  run_main(three_yielders, NULL);
  CHECK_EQ(norder, 9);
  for (int i = 0; i < 9; i++)
    CHECK_EQ(order[i], i % 3);
}

/* Sanitizer builds run fewer: TSan has 8,128 fibers at most, and under ASan
 * one scheduler turn of 100,000 tasks takes longer than the tolerance. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SLEEPERS 5000
#define TOGETHER 5000
#else
#define SLEEPERS 100000
#define TOGETHER 10000
#endif

struct sleeper {
  int64_t ns;       /* how long it sleeps */
  int64_t earliest; /* now + ns, read just before weft_sleep */
  int64_t woke;
};
static struct sleeper *all_sleepers;
static int wake_order[SLEEPERS];
static int nwoke;

static void *sleep_a_while(void *arg) {
  struct sleeper *s = arg;
  s->earliest = harness_now_ns() + s->ns;
  CHECK_EQ(weft_sleep(s->ns), 0);
  s->woke = harness_now_ns();
  wake_order[nwoke++] = (int)(s - all_sleepers);
  return NULL;
}

/* How many sleep: under an emulator, as few as under sanitizers. */
static int sleepers;

static void *many_sleepers(void *arg) {
  (void)arg;
  uint64_t seed = 1;
  for (int i = 0; i < sleepers; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    /* 1 to 300 ms: a sleep of 0 is a yield, which no timer orders. */
    all_sleepers[i].ns = (int64_t)((seed >> 33) % 300 + 1) * 1000000;
    CHECK_EQ(weft_task_spawn(NULL, sleep_a_while, &all_sleepers[i], NULL), 0);
  }
  return NULL;
}

/* The deadline D a sleep takes lies between `earliest` (read just before
 * the call) and `woke` (a task wakes only once its deadline passed). Timers
 * fire in deadline order, so for two consecutive wakes a then b,
 * D(a) <= D(b), hence earliest(a) <= woke(b): no tolerance is needed, and a
 * heap that fired out of order would fail it. */
TEST_TIMEOUT(sleepers_wake_in_timer_order, 120) {
  sleepers = harness_emulated() ? 5000 : SLEEPERS;
  all_sleepers = calloc((size_t)sleepers, sizeof *all_sleepers);
  nwoke = 0;
  run_main(many_sleepers, NULL);
  CHECK_EQ(nwoke, sleepers);
  int64_t late = 0;
  for (int k = 0; k < sleepers; k++) {
    const struct sleeper *b = &all_sleepers[wake_order[k]];
    CHECK(b->woke >= b->earliest);
    if (k > 0)
      CHECK(all_sleepers[wake_order[k - 1]].earliest <= b->woke);
    if (b->woke - b->earliest > late)
      late = b->woke - b->earliest;
  }
  CHECK(late < WEFT_SEC(10)); /* generous: a loaded 2-core machine */
  free(all_sleepers);
}

static void *ten_thousand(void *arg) {
  (void)arg;
  for (int i = 0; i < TOGETHER; i++)
    CHECK_EQ(weft_task_spawn(NULL, sleep_then, IV(100), NULL), 0);
  return NULL;
}

TEST(ten_thousand_tasks_sleep_together) {
  int64_t t0 = harness_now_ns();
  run_main(ten_thousand, NULL);
  int64_t took = harness_now_ns() - t0;
  CHECK(took >= WEFT_MS(100));
  CHECK(took < WEFT_SEC(10)); /* about 100 ms; generous for CI */
}

/* --- cancellation -----------------------------------------------------------
 */

static void *sleep_forever(void *arg) {
  (void)arg;
  int rc = weft_sleep(INT64_MAX);
  CHECK_EQ(weft_yield(), -ECANCELED); /* every later call too */
  CHECK_EQ(weft_sleep(1), -ECANCELED);
  return IV(rc);
}

static void *joins_forever(void *arg) {
  return IV(weft_task_join(arg, WEFT_FOREVER, NULL));
}

static void *cancels(void *arg) {
  (void)arg;
  weft_task *sleeper, *joiner;
  CHECK_EQ(weft_task_spawn(&sleeper, sleep_forever, NULL, NULL), 0);
  CHECK_EQ(weft_task_spawn(&joiner, joins_forever, sleeper, NULL), 0);
  CHECK_EQ(weft_yield(), 0); /* both are parked now */
  void *r;
  CHECK_EQ(weft_task_cancel(joiner), 0);
  CHECK_EQ(weft_task_cancel(joiner), 0); /* harmless twice */
  CHECK_EQ(weft_task_join(joiner, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  CHECK_EQ(weft_task_cancel(sleeper), 0);
  CHECK_EQ(weft_task_join(sleeper, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  /* Cancelling oneself takes effect at the next blocking call. */
  CHECK_EQ(weft_task_cancel(weft_task_current()), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(1)), -ECANCELED);
  return NULL;
}

TEST(cancel_wakes_a_blocked_task_with_ecanceled) { run_main(cancels, NULL); }

static void *cancel_finished(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, answer, IV(1), NULL), 0);
  CHECK_EQ(weft_yield(), 0);
  CHECK_EQ(weft_task_cancel(t), -ESRCH);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(cancelling_a_finished_task_is_esrch) { run_main(cancel_finished, NULL); }

/* --- shields: bounded cleanup after a cancellation ---------------------------
 * Inside weft_task_shield, a cancelled task's waits run to their own end;
 * a cancellation that comes during the shield takes effect when it ends. */

static void *cleans_up_after_cancel(void *arg) {
  (void)arg;
  int rc = weft_sleep(INT64_MAX); /* until cancelled */
  CHECK_EQ(rc, -ECANCELED);
  CHECK_EQ(weft_sleep(WEFT_MS(1)), -ECANCELED); /* unshielded: at once */
  CHECK_EQ(weft_task_shield(), 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_sleep(WEFT_MS(30)), 0); /* the cleanup's own wait */
  CHECK(harness_now_ns() - t0 >= WEFT_MS(30));
  CHECK_EQ(weft_yield(), 0);
  CHECK_EQ(weft_task_shield(), 0);            /* nested */
  CHECK_EQ(weft_task_unshield(), -ECANCELED); /* cancelled, though held */
  CHECK_EQ(weft_sleep(WEFT_MS(1)), 0); /* still shielded by the outer one */
  CHECK_EQ(weft_task_unshield(), -ECANCELED);
  CHECK_EQ(weft_sleep(WEFT_MS(1)), -ECANCELED); /* in force again */
  return IV(1);
}

static void *cancelled_during_a_shield(void *arg) {
  (void)arg;
  CHECK_EQ(weft_task_shield(), 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_sleep(WEFT_MS(60)), 0); /* cancelled meanwhile: held back */
  CHECK(harness_now_ns() - t0 >= WEFT_MS(60));
  CHECK_EQ(weft_task_unshield(), -ECANCELED);
  CHECK_EQ(weft_yield(), -ECANCELED);
  return IV(2);
}

static void *shields(void *arg) {
  (void)arg;
  weft_task *a, *b;
  CHECK_EQ(weft_task_spawn(&a, cleans_up_after_cancel, NULL, NULL), 0);
  CHECK_EQ(weft_task_spawn(&b, cancelled_during_a_shield, NULL, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(10)), 0); /* both parked */
  CHECK_EQ(weft_task_cancel(a), 0);
  CHECK_EQ(weft_task_cancel(b), 0);
  void *r;
  CHECK_EQ(weft_task_join(b, WEFT_SEC(5), &r), 0);
  CHECK_EQ(VI(r), 2);
  CHECK_EQ(weft_task_join(a, WEFT_SEC(5), &r), 0);
  CHECK_EQ(VI(r), 1);
  return NULL;
}

TEST(a_shield_lets_a_cancelled_task_wait_to_clean_up) {
  run_main(shields, NULL);
}

/* A joiner in a shield waits its own timeout, not -ECANCELED. */
static void *shielded_join(void *arg) {
  weft_task *t = arg;
  CHECK_EQ(weft_sleep(INT64_MAX), -ECANCELED);
  CHECK_EQ(weft_task_shield(), 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_task_join(t, WEFT_MS(20), NULL), -ETIMEDOUT);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(20));
  void *r;
  CHECK_EQ(weft_task_join(t, WEFT_SEC(5), &r), 0);
  CHECK_EQ(VI(r), 7);
  return IV(weft_task_unshield());
}

static void *shielded_joins(void *arg) {
  (void)arg;
  weft_task *slow, *j;
  CHECK_EQ(weft_task_spawn(&slow, sleep_then, IV(80), NULL), 0);
  CHECK_EQ(weft_task_spawn(&j, shielded_join, slow, NULL), 0);
  CHECK_EQ(weft_yield(), 0);
  CHECK_EQ(weft_task_cancel(j), 0);
  void *r;
  CHECK_EQ(weft_task_join(j, WEFT_SEC(5), &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  return NULL;
}

TEST(a_shielded_join_ends_by_its_own_timeout_or_the_finish) {
  run_main(shielded_joins, NULL);
}

/* A detached task may cancel itself through weft_task_current(), and
 * another task of its hub may cancel it through the handle it got from
 * the task itself, for as long as it runs. */
static weft_task *detached_self;

static void *detached_sleeper(void *arg) {
  (void)arg;
  detached_self = weft_task_current();
  return IV(weft_sleep(INT64_MAX));
}

static void *cancels_a_detached_task(void *arg) {
  (void)arg;
  CHECK_EQ(weft_task_spawn(NULL, detached_sleeper, NULL, NULL), 0);
  CHECK_EQ(weft_yield(), 0);
  CHECK(detached_self != NULL);
  CHECK(weft_task_alive(detached_self));
  CHECK_EQ(weft_task_cancel(detached_self), 0);
  return NULL; /* weft_run returns once it has finished and gone */
}

TEST(a_running_detached_task_may_be_cancelled_through_its_own_handle) {
  run_main(cancels_a_detached_task, NULL);
}

/* --- joins from anywhere -----------------------------------------------------
 * Tasks of the task's own hub, tasks of another hub and plain threads join
 * one task at once; every one gets the result. */

static atomic_int joined_ok;
static _Atomic(weft_task *) shared_target;

static void *joins_shared_target(void *arg) {
  (void)arg;
  weft_task *t;
  while ((t = atomic_load(&shared_target)) == NULL)
    weft_sleep(WEFT_MS(1));
  void *r;
  int rc = weft_task_join(t, WEFT_SEC(10), &r);
  if (rc == 0 && VI(r) == 7)
    atomic_fetch_add(&joined_ok, 1);
  return NULL;
}

static void *other_hub(void *arg) {
  (void)arg;
  for (int i = 0; i < 5; i++)
    CHECK_EQ(weft_task_spawn(NULL, joins_shared_target, NULL, NULL), 0);
  return NULL;
}

static void *other_hub_thread(void *arg) {
  CHECK_EQ(weft_run(other_hub, arg, NULL), 0);
  return NULL;
}

static void *plain_joiner(void *arg) {
  (void)arg;
  weft_task *t;
  while ((t = atomic_load(&shared_target)) == NULL)
    usleep(1000);
  void *r;
  if (weft_task_join(t, WEFT_SEC(10), &r) == 0 && VI(r) == 7)
    atomic_fetch_add(&joined_ok, 1);
  CHECK(!weft_task_alive(t));
  return NULL;
}

static void *joined_from_everywhere(void *arg) {
  (void)arg;
  pthread_t hub, plain[3];
  CHECK_EQ(pthread_create(&hub, NULL, other_hub_thread, NULL), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(pthread_create(&plain[i], NULL, plain_joiner, NULL), 0);
  weft_task *target, *own[4];
  CHECK_EQ(weft_task_spawn(&target, sleep_then, IV(100), NULL), 0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_spawn(&own[i], joins_shared_target, NULL, NULL), 0);
  atomic_store(&shared_target, target);
  CHECK(weft_task_alive(target));
  void *r;
  CHECK_EQ(weft_task_join(target, WEFT_SEC(10), &r), 0);
  CHECK_EQ(VI(r), 7);
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(weft_task_join(own[i], WEFT_SEC(10), NULL), 0);
    CHECK_EQ(weft_task_detach(own[i]), 0);
  }
  /* The other hub's tasks and the threads: every join has returned once
   * their threads are joined; only then may the handle go. */
  for (int i = 0; i < 3; i++)
    pthread_join(plain[i], NULL);
  pthread_join(hub, NULL);
  CHECK_EQ(atomic_load(&joined_ok), 4 + 5 + 3);
  CHECK_EQ(weft_task_detach(target), 0);
  return NULL;
}

TEST(tasks_of_two_hubs_and_threads_join_one_task) {
  run_main(joined_from_everywhere, NULL);
}

/* A plain thread joining a task whose hub gives up on a deadlock is not
 * left waiting: the hub cancels the tasks parked in joins, which finish
 * (whichever is cancelled first sees -ECANCELED, the other that finish),
 * and the thread's join of one succeeds. */
static _Atomic(weft_task *) doomed;
static atomic_int doomed_rc = 1;
static atomic_bool about_to_join;

static void *joins_doomed(void *arg) {
  (void)arg;
  weft_task *t;
  while ((t = atomic_load(&doomed)) == NULL)
    usleep(1000);
  atomic_store(&about_to_join, true);
  atomic_store(&doomed_rc, weft_task_join(t, WEFT_SEC(20), NULL));
  return NULL;
}

static void *joins_arg(void *arg) {
  return IV(weft_task_join(*(weft_task **)arg, WEFT_FOREVER, NULL));
}

static void *deadlocks_with_a_remote_joiner(void *arg) {
  (void)arg;
  static weft_task *a, *b;
  CHECK_EQ(weft_task_spawn(&a, joins_arg, &b, NULL), 0);
  CHECK_EQ(weft_task_spawn(&b, joins_arg, &a, NULL), 0);
  atomic_store(&doomed, a);
  while (!atomic_load(&about_to_join))
    weft_sleep(WEFT_MS(1));
  /* Let the thread get into its join (a join begun after weft_run has
   * returned would use a handle that is gone). */
  weft_sleep(WEFT_MS(100) * (int64_t)harness_timeout_multiplier());
  return NULL; /* a and b join each other for ever */
}

static void remote_joiner_child(void *arg) {
  (void)arg;
  pthread_t pt;
  if (pthread_create(&pt, NULL, joins_doomed, NULL) != 0)
    exit(3);
  int rc = weft_run(deadlocks_with_a_remote_joiner, NULL, NULL);
  pthread_join(pt, NULL);
  fprintf(stderr, "run %d, join %d\n", rc, atomic_load(&doomed_rc));
  exit(rc == -EDEADLK && atomic_load(&doomed_rc) == 0 ? 0 : 1);
}

TEST(a_thread_joining_a_task_its_hub_gives_up_on_is_not_left_waiting) {
  char out[4096];
  int status =
      harness_run_child(remote_joiner_child, NULL, NULL, out, sizeof out);
  CHECK_STR_HAS(out, "weft: deadlock");
  CHECK_STR_HAS(out, "run -35, join 0\n");
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
}

static void *yield_once(void *arg) {
  (void)arg;
  return IV(weft_yield());
}

static void *cancel_while_queued(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, yield_once, NULL, NULL), 0);
  CHECK_EQ(weft_yield(), 0); /* t runs and yields: queued behind us */
  CHECK_EQ(weft_task_cancel(t), 0);
  void *r;
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  return NULL;
}

TEST(a_yield_cancelled_while_queued_returns_ecanceled) {
  run_main(cancel_while_queued, NULL);
}

static void *join_racing_the_timer(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, answer, IV(6), NULL), 0);
  /* 0 polls: t has not run yet. */
  CHECK_EQ(weft_task_join(t, 0, NULL), -ETIMEDOUT);
  CHECK_EQ(weft_task_cancel(t), 0); /* still there, not finished */
  /* A 1 ns timeout fires at the end of this turn; t runs first in the next
   * one and finishes before the joiner is back: the join has its result. */
  weft_task *u;
  CHECK_EQ(weft_task_spawn(&u, answer, IV(8), NULL), 0);
  void *r;
  CHECK_EQ(weft_task_join(u, 1, &r), 0);
  CHECK_EQ(VI(r), 9);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 7);
  return NULL;
}

TEST(a_join_whose_timer_fires_as_the_task_finishes_succeeds) {
  run_main(join_racing_the_timer, NULL);
}

/* --- detached tasks and the main task ---------------------------------------
 */

static int detached_ran;

static void *count_and_sleep(void *arg) {
  (void)arg;
  weft_sleep(WEFT_MS(5));
  detached_ran++;
  return NULL;
}

static void *spawn_detached(void *arg) {
  (void)arg;
  for (int i = 0; i < 50; i++)
    CHECK_EQ(weft_task_spawn(NULL, count_and_sleep, NULL, NULL), 0);
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, count_and_sleep, NULL, NULL), 0);
  CHECK_EQ(weft_task_detach(t), 0);
  CHECK_EQ(weft_task_detach(t), -EINVAL); /* the handle is gone */
  return IV(5);
}

TEST(weft_run_waits_for_detached_tasks) {
  detached_ran = 0;
  CHECK_EQ(VI(run_main(spawn_detached, NULL)), 5);
  CHECK_EQ(detached_ran, 51);
}

static void *joins_main(void *arg) {
  void *r;
  CHECK_EQ(weft_task_join(arg, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 99);
  /* The main task's stack goes back to the cache and comes out again for
   * the next task: it must not pass for the main task. */
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, answer, IV(665), NULL), 0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 666);
  return NULL;
}

static void *main_joined_by_another(void *arg) {
  (void)arg;
  CHECK_EQ(weft_task_spawn(NULL, joins_main, weft_task_current(), NULL), 0);
  return IV(99);
}

TEST(the_main_result_survives_a_join_of_main) {
  CHECK_EQ(VI(run_main(main_joined_by_another, NULL)), 99);
}

/* --- deadlock ------------------------------------------------------------- */

static weft_task *pair[2];

static void *join_partner(void *arg) {
  intptr_t me = VI(arg);
  weft_yield(); /* let both handles be known */
  return IV(weft_task_join(pair[1 - me], WEFT_FOREVER, NULL));
}

/* main starts the pair and returns; weft_run then waits for them, and
 * they wait for each other. */
static void *make_a_cycle(void *arg) {
  (void)arg;
  CHECK_EQ(weft_task_spawn(&pair[0], join_partner, IV(0),
                           &(weft_task_opts){.name = "alice"}),
           0);
  CHECK_EQ(weft_task_spawn(&pair[1], join_partner, IV(1),
                           &(weft_task_opts){.name = "bob"}),
           0);
  return NULL;
}

/* Runs the main task arg (a weft_task_fn) in a child, which says what
 * weft_run returned and exits 0 for -EDEADLK. */
static void deadlock_child(void *arg) {
  weft_task_fn main_task;
  memcpy(&main_task, &arg, sizeof main_task);
  int rc = weft_run(main_task, NULL, NULL);
  fprintf(stderr, "weft_run returned %d\n", rc);
  _exit(rc == -EDEADLK ? 0 : 1);
}

static void *fn_arg(weft_task_fn fn) {
  void *arg;
  memcpy(&arg, &fn, sizeof arg);
  return arg;
}

TEST(a_join_cycle_is_reported_as_a_deadlock) {
  char out[4096];
  int status = harness_run_child(deadlock_child, fn_arg(make_a_cycle), NULL,
                                 out, sizeof out);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  CHECK_STR_HAS(out, "weft: deadlock: every task is blocked");
  CHECK_STR_HAS(out, "task 'alice' #");
  CHECK_STR_HAS(out, ": blocked in join of task 'bob' #");
  CHECK_STR_HAS(out, "task 'bob' #");
  CHECK_STR_HAS(out, ": blocked in join of task 'alice' #");
  CHECK_STR_HAS(out, "weft_run returned -35"); /* -EDEADLK */
}

/* A join and an RLock wait crossed: main holds the RLock and joins its
 * child, which waits for the RLock. The RLock's owner is parked in a join
 * (no waiter of its own): still a deadlock of this hub's tasks. */
static weft_rlock crossed = WEFT_RLOCK_INIT;

static void *wants_the_rlock(void *arg) {
  (void)arg;
  return IV(weft_rlock_acquire(&crossed, WEFT_FOREVER));
}

static void *holds_and_joins(void *arg) {
  (void)arg;
  CHECK_EQ(weft_rlock_acquire(&crossed, WEFT_FOREVER), 0);
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, wants_the_rlock, NULL,
                           &(weft_task_opts){.name = "wants"}),
           0);
  weft_task_join(t, WEFT_FOREVER, NULL);
  return NULL;
}

TEST(a_join_crossed_with_an_rlock_wait_is_reported_as_a_deadlock) {
  char out[4096];
  int status = harness_run_child(deadlock_child, fn_arg(holds_and_joins), NULL,
                                 out, sizeof out);
  CHECK_STR_HAS(out, "weft: deadlock: every task is blocked");
  CHECK_STR_HAS(out, ": blocked in join of task 'wants' #");
  CHECK_STR_HAS(out, "weft_run returned -35"); /* -EDEADLK */
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
}

/* The report goes where the program says: a pipe, or a function given
 * its text; stderr stays quiet. A closed pipe raises no SIGPIPE. */
static char got_report[4096];
static int reports_got;

static void keep_report(const char *report, void *arg) {
  CHECK_EQ(VI(arg), 42);
  snprintf(got_report, sizeof got_report, "%s", report);
  reports_got++;
}

static void report_elsewhere_child(void *arg) {
  int *fds = arg;
  CHECK_EQ(weft_hub_report_to(-2), -EBADF);
  CHECK_EQ(weft_hub_report_to(fds[1]), 0);
  CHECK_EQ(weft_run(make_a_cycle, NULL, NULL), -EDEADLK);
  CHECK_EQ(weft_hub_on_report(keep_report, IV(42)), 0);
  CHECK_EQ(weft_run(make_a_cycle, NULL, NULL), -EDEADLK);
  CHECK_EQ(reports_got, 1);
  CHECK_STR_HAS(got_report, "weft: deadlock: every task is blocked");
  CHECK_STR_HAS(got_report, ": blocked in join of task 'bob' #");
  CHECK_STR_HAS(got_report, ": blocked in join of task 'alice' #");
  /* A pipe nobody reads: the report is lost, the program lives on. */
  int dead[2];
  CHECK_EQ(pipe(dead), 0);
  close(dead[0]);
  CHECK_EQ(weft_hub_report_to(dead[1]), 0);
  CHECK_EQ(weft_run(make_a_cycle, NULL, NULL), -EDEADLK);
  CHECK_EQ(weft_hub_report_to(2), 0);
  fprintf(stderr, "child done\n");
  _exit(0);
}

TEST(a_deadlock_report_goes_to_the_fd_or_function_chosen) {
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  char err[4096];
  int status =
      harness_run_child(report_elsewhere_child, fds, NULL, err, sizeof err);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    harness_fail(__FILE__, __LINE__, "status %d:\n%s", status, err);
  CHECK_STR_HAS(err, "child done");
  CHECK(strstr(err, "weft: deadlock") == NULL); /* stderr was left alone */
  close(fds[1]);
  char out[4096];
  ssize_t n = read(fds[0], out, sizeof out - 1);
  CHECK(n > 0);
  out[n] = '\0';
  close(fds[0]);
  CHECK_STR_HAS(out, "weft: deadlock: every task is blocked");
  CHECK_STR_HAS(out, ": blocked in join of task 'bob' #");
  CHECK_STR_HAS(out, ": blocked in join of task 'alice' #");
}

/* --- a task's stack overflow --------------------------------------------- */

static intptr_t __attribute__((noinline)) deep(intptr_t n) {
  volatile char pad[512];
  memset((char *)pad, 0x5a, sizeof pad);
  return n == 0 ? pad[1] : deep(n - 1) + pad[n % 512];
}

static void *overflow_a_little(void *arg) {
  (void)arg;
  /* 16 KiB of stack, about 20 KiB of frames, then a yield. */
  weft_yield();
  return IV(deep(40));
}

static void *spawn_overflow(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(
      weft_task_spawn(&t, overflow_a_little, NULL,
                      &(weft_task_opts){.name = "hog", .stack_size = 16 << 10}),
      0);
  weft_task_join(t, WEFT_FOREVER, NULL);
  return NULL;
}

static void overflow_child(void *arg) {
  (void)arg;
  weft_run(spawn_overflow, NULL, NULL);
  _exit(4);
}

TEST(a_task_overflowing_a_canary_stack_is_named) {
  static const char *const env[] = {"WEFT_STACK_GUARD=page",
                                    "WEFT_STACK_GUARD_BUDGET=0", NULL};
  char out[4096];
  int status = harness_run_child(overflow_child, NULL, env, out, sizeof out);
  CHECK(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
                                WEXITSTATUS(status) != 4));
  CHECK_STR_HAS(out, "weft: stack overflow in task 'hog'");
}

/* --- task-local storage --------------------------------------------------- */

static weft_task_key key_a, key_b;
static int destroyed_sum, reset_rounds;

static void destroy_a(void *v) { destroyed_sum += (int)VI(v); }

/* Sets its value again once: a second round must run. */
static void destroy_b(void *v) {
  (void)v;
  if (reset_rounds++ == 0)
    weft_task_local_set(key_b, IV(2));
}

static void *use_locals(void *arg) {
  CHECK(weft_task_local_get(key_a) == NULL);
  CHECK_EQ(weft_task_local_set(key_a, arg), 0);
  CHECK_EQ(weft_yield(), 0); /* the others set theirs meanwhile */
  CHECK_PTR_EQ(weft_task_local_get(key_a), arg);
  return NULL;
}

static void *locals_main(void *arg) {
  (void)arg;
  weft_task *t[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_spawn(&t[i], use_locals, IV(i + 1), NULL), 0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_local_set(key_b, IV(1)), 0);
  return NULL;
}

TEST(task_locals_are_per_task_and_destroyed_at_the_end) {
  CHECK_EQ(weft_task_key_create(&key_a, destroy_a), 0);
  CHECK_EQ(weft_task_key_create(&key_b, destroy_b), 0);
  CHECK(key_a.index != key_b.index);
  destroyed_sum = reset_rounds = 0;
  run_main(locals_main, NULL);
  CHECK_EQ(destroyed_sum, 1 + 2 + 3 + 4);
  CHECK_EQ(reset_rounds, 2); /* the value set by the destructor was too */
  /* Outside a task. */
  CHECK(weft_task_local_get(key_a) == NULL);
  CHECK_EQ(weft_task_local_set(key_a, IV(1)), -EPERM);
}

/* More keys than a task keeps inline (two): values set, overwritten,
 * cleared and set again across them, each destroyed once at the end. */
enum { MANY_KEYS = 6 };
static weft_task_key many_key[MANY_KEYS];
static int many_destroyed[MANY_KEYS];

static void destroy_many(void *v) { many_destroyed[VI(v) % MANY_KEYS]++; }

static void *many_locals(void *arg) {
  (void)arg;
  /* Two inline, one cleared (its slot free again), then more than two. */
  CHECK_EQ(weft_task_local_set(many_key[0], IV(0)), 0); /* NULL: unset */
  CHECK_EQ(weft_task_local_set(many_key[1], IV(MANY_KEYS + 1)), 0);
  CHECK_EQ(weft_task_local_set(many_key[2], IV(2)), 0);
  CHECK_EQ(weft_task_local_set(many_key[1], NULL), 0);
  CHECK_EQ(weft_task_local_set(many_key[3], IV(3)), 0);
  CHECK(weft_task_local_get(many_key[1]) == NULL);
  CHECK_EQ(weft_task_local_set(many_key[1], IV(MANY_KEYS + 1)), 0);
  for (int i = 4; i < MANY_KEYS; i++)
    CHECK_EQ(weft_task_local_set(many_key[i], IV(i)), 0);
  CHECK_EQ(weft_yield(), 0);
  CHECK(weft_task_local_get(many_key[0]) == NULL);
  for (int i = 1; i < MANY_KEYS; i++)
    CHECK_EQ(VI(weft_task_local_get(many_key[i])) % MANY_KEYS, i);
  CHECK_EQ(weft_task_local_set(many_key[5], IV(MANY_KEYS + 5)), 0);
  CHECK_EQ(VI(weft_task_local_get(many_key[5])), MANY_KEYS + 5);
  return NULL;
}

static void *many_locals_main(void *arg) {
  (void)arg;
  weft_task *t[3];
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_task_spawn(&t[i], many_locals, NULL, NULL), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(task_locals_beyond_the_two_kept_inline) {
  for (int i = 0; i < MANY_KEYS; i++)
    CHECK_EQ(weft_task_key_create(&many_key[i], destroy_many), 0);
  run_main(many_locals_main, NULL);
  CHECK_EQ(many_destroyed[0], 0);
  for (int i = 1; i < MANY_KEYS; i++)
    CHECK_EQ(many_destroyed[i], 3);
}

TEST(task_keys_run_out_cleanly) {
  weft_task_key k;
  CHECK_EQ(weft_task_key_create(NULL, NULL), -EINVAL);
  int made = 0;
  while (weft_task_key_create(&k, NULL) == 0)
    made++;
  CHECK_EQ(made, WEFT_TASK_KEYS_MAX); /* each case runs in a fresh process */
  CHECK_EQ(weft_task_key_create(&k, NULL), -EAGAIN);
  weft_task_key never = {.index = WEFT_TASK_KEYS_MAX + 3};
  CHECK(weft_task_local_get(never) == NULL);
  CHECK_EQ(weft_task_local_set(never, IV(1)), -EINVAL);
}

/* --- the dump ---------------------------------------------------------------
 */

static void *dumps(void *arg) {
  int *fds = arg;
  weft_task *sleeper, *joiner, *queued, *done;
  CHECK_EQ(weft_task_spawn(&sleeper, sleep_forever, NULL,
                           &(weft_task_opts){.name = "napper"}),
           0);
  CHECK_EQ(weft_task_spawn(&joiner, joins_forever, sleeper,
                           &(weft_task_opts){.name = "waiter"}),
           0);
  CHECK_EQ(
      weft_task_spawn(&done, answer, NULL, &(weft_task_opts){.name = "quick"}),
      0);
  CHECK_EQ(weft_yield(), 0); /* napper and waiter block, quick finishes */
  CHECK_EQ(weft_task_spawn(&queued, answer, NULL,
                           &(weft_task_opts){.name = "later"}),
           0);
  CHECK_EQ(weft_hub_dump(fds[1]), 0);
  CHECK_EQ(weft_hub_dump(-1), -EBADF);
  CHECK_EQ(weft_task_cancel(sleeper), 0);
  CHECK_EQ(weft_task_join(joiner, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(done, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(queued, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(the_dump_names_every_task_and_what_it_waits_on) {
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  CHECK_EQ(weft_hub_dump(fds[1]), -EPERM); /* no hub on this thread */
  run_main(dumps, fds);
  close(fds[1]);
  char out[4096];
  ssize_t n = read(fds[0], out, sizeof out - 1);
  CHECK(n > 0);
  out[n] = '\0';
  close(fds[0]);
  CHECK_STR_HAS(out, "weft: hub: 5 tasks, 1 runnable, 2 blocked, 0 timers");
  CHECK_STR_HAS(out, "task 'main' #");
  CHECK_STR_HAS(out, ": running");
  CHECK_STR_HAS(out, ": blocked in sleep, for ");
  CHECK_STR_HAS(out, "task 'waiter' #");
  CHECK_STR_HAS(out, ": blocked in join of task 'napper' #");
  CHECK_STR_HAS(out, "task 'quick' #");
  CHECK_STR_HAS(out, ": finished\n");
  CHECK_STR_HAS(out, "task 'later' #");
  CHECK_STR_HAS(out, ": runnable");
}

/* How long a dump says the task named name has been blocked; -1 when it
 * is not there as blocked. */
static double blocked_for(const char *dump, const char *name) {
  char key[64];
  snprintf(key, sizeof key, "task '%s' #", name);
  const char *line = strstr(dump, key);
  if (!line)
    return -1;
  const char *end = strchr(line, '\n');
  const char *f = strstr(line, ", for ");
  double s;
  if (!f || (end && f > end) || sscanf(f, ", for %lf s", &s) != 1)
    return -1;
  return s;
}

static weft_lock held_lock = WEFT_LOCK_INIT;

static void *sleep_10s(void *arg) {
  (void)arg;
  weft_sleep(WEFT_SEC(10)); /* cancelled */
  return NULL;
}

static void *wait_for_lock(void *arg) {
  (void)arg;
  CHECK_EQ(weft_lock_acquire(&held_lock, WEFT_FOREVER), -ECANCELED);
  return NULL;
}

static void *join_arg(void *arg) {
  CHECK_EQ(weft_task_join(arg, WEFT_FOREVER, NULL), -ECANCELED);
  return NULL;
}

static void *read_nothing(void *arg) {
  char c;
  CHECK_EQ(weft_io_read((int)VI(arg), &c, 1, WEFT_FOREVER), -ECANCELED);
  return NULL;
}

static void *dumps_after_a_wait(void *arg) {
  (void)arg;
  for (int round = 0; round < 3; round++) {
    int quiet[2], out[2];
    CHECK_EQ(pipe(quiet), 0);
    CHECK_EQ(pipe(out), 0);
    CHECK_EQ(weft_lock_acquire(&held_lock, 0), 0);
    weft_task *t[4];
    CHECK_EQ(weft_task_spawn(&t[0], sleep_10s, NULL,
                             &(weft_task_opts){.name = "sleeper"}),
             0);
    CHECK_EQ(weft_task_spawn(&t[1], wait_for_lock, NULL,
                             &(weft_task_opts){.name = "locker"}),
             0);
    CHECK_EQ(weft_task_spawn(&t[2], join_arg, t[0],
                             &(weft_task_opts){.name = "joiner"}),
             0);
    CHECK_EQ(weft_task_spawn(&t[3], read_nothing, IV(quiet[0]),
                             &(weft_task_opts){.name = "reader"}),
             0);
    CHECK_EQ(weft_yield(), 0); /* all four park */
    /* Round 1 waits in the poller; rounds 2 and 3 on a busy hub too. */
    if (round == 0) {
      CHECK_EQ(weft_sleep(WEFT_MS(300)), 0);
    } else {
      int64_t until = harness_now_ns() + WEFT_MS(300);
      while (harness_now_ns() < until)
        CHECK_EQ(round == 1 ? weft_yield() : weft_sleep(WEFT_MS(1)), 0);
    }
    CHECK_EQ(weft_hub_dump(out[1]), 0);
    char dump[4096];
    ssize_t n = read(out[0], dump, sizeof dump - 1);
    CHECK(n > 0);
    dump[n] = '\0';
    static const char *const names[] = {"sleeper", "locker", "joiner",
                                        "reader"};
    for (int i = 0; i < 4; i++)
      if (blocked_for(dump, names[i]) < 0.25)
        harness_fail(__FILE__, __LINE__, "round %d: %s blocked < 0.25 s:\n%s",
                     round, names[i], dump);
    CHECK_EQ(weft_task_cancel(t[2]), 0);
    CHECK_EQ(weft_task_join(t[2], WEFT_FOREVER, NULL), 0);
    for (int i = 0; i < 4; i++)
      if (i != 2) {
        CHECK_EQ(weft_task_cancel(t[i]), 0);
        CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
      }
    weft_lock_release(&held_lock);
    close(quiet[0]);
    close(quiet[1]);
    close(out[0]);
    close(out[1]);
  }
  return NULL;
}

TEST(a_dump_counts_the_whole_time_a_task_has_been_blocked) {
  run_main(dumps_after_a_wait, NULL);
}

/* --- one hub per thread -----------------------------------------------------
 */

static void *hub_thread(void *arg) {
  void *r;
  int rc = weft_run(spawn_ten, arg, &r);
  return IV(rc == 0 ? VI(r) : rc);
}

TEST(each_thread_runs_its_own_hub) {
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, hub_thread, NULL), 0);
  for (int i = 0; i < 2; i++) {
    void *r;
    CHECK_EQ(pthread_join(t[i], &r), 0);
    CHECK_EQ(VI(r), 285);
  }
}

/* --- timeouts on a loaded machine -------------------------------------------
 * Every kind of timeout fires no earlier than asked, and not much later,
 * while busy tasks keep the hub's run queue full and threads burn every
 * CPU. The upper bound is generous (shared, noisy machines; sanitizers and
 * emulators scale it): what it catches is a timer starved by the busy
 * tasks, or one that waits for an unrelated event. */

static atomic_bool load_stop;

static void *burn(void *arg) {
  (void)arg;
  volatile unsigned long x = 0;
  while (!atomic_load(&load_stop))
    x++;
  return NULL;
}

static void *busy(void *arg) {
  (void)arg;
  while (weft_yield() == 0)
    for (volatile int i = 0; i < 2000; i++)
      ;
  return NULL;
}

struct timed {
  int kind; /* 0 sleep, 1 join, 2 fd wait, 3 recv */
  int64_t timeout, took;
  int rc;
};

static void *time_one(void *arg) {
  struct timed *t = arg;
  weft_task *never = NULL;
  if (t->kind == 1)
    CHECK_EQ(weft_task_spawn(&never, busy, NULL, NULL), 0);
  int idle[2]; /* nothing is ever written: one per task, one reader each */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, idle), 0);
  char c;
  int64_t t0 = harness_now_ns();
  switch (t->kind) {
  case 0:
    t->rc = weft_sleep(t->timeout) == 0 ? -ETIMEDOUT : -1;
    break;
  case 1:
    t->rc = weft_task_join(never, t->timeout, NULL);
    break;
  case 2:
    t->rc = weft_io_wait(idle[0], WEFT_IO_READ, t->timeout);
    break;
  default:
    t->rc = (int)weft_io_recv(idle[0], &c, 1, 0, t->timeout);
  }
  t->took = harness_now_ns() - t0;
  weft_io_close(idle[0]);
  weft_io_close(idle[1]);
  if (never) {
    CHECK_EQ(weft_task_cancel(never), 0);
    CHECK_EQ(weft_task_join(never, WEFT_FOREVER, NULL), 0);
  }
  return NULL;
}

static void *timeouts_under_load(void *arg) {
  (void)arg;
  enum { N = 40, BUSY = 50 };
  weft_task *busy_tasks[BUSY], *timed_tasks[N];
  for (int i = 0; i < BUSY; i++)
    CHECK_EQ(weft_task_spawn(&busy_tasks[i], busy, NULL, NULL), 0);
  static struct timed t[N];
  for (int i = 0; i < N; i++) {
    t[i] = (struct timed){.kind = i % 4, .timeout = WEFT_MS(5 + 3 * (i % 10))};
    CHECK_EQ(weft_task_spawn(&timed_tasks[i], time_one, &t[i], NULL), 0);
  }
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_task_join(timed_tasks[i], WEFT_FOREVER, NULL), 0);
  for (int i = 0; i < BUSY; i++) {
    CHECK_EQ(weft_task_cancel(busy_tasks[i]), 0);
    CHECK_EQ(weft_task_join(busy_tasks[i], WEFT_FOREVER, NULL), 0);
  }
  int64_t slack = (int64_t)(WEFT_MS(500) * harness_timeout_multiplier());
  for (int i = 0; i < N; i++) {
    CHECK_EQ(t[i].rc, -ETIMEDOUT);
    CHECK(t[i].took >= t[i].timeout);
    if (t[i].took > t[i].timeout + slack)
      harness_fail(__FILE__, __LINE__, "a %d ms timeout of kind %d took %d ms",
                   (int)(t[i].timeout / 1000000), t[i].kind,
                   (int)(t[i].took / 1000000));
  }
  return NULL;
}

TEST(timeouts_fire_within_tolerance_on_a_loaded_machine) {
  pthread_t burners[2];
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_create(&burners[i], NULL, burn, NULL), 0);
  run_main(timeouts_under_load, NULL);
  atomic_store(&load_stop, true);
  for (int i = 0; i < 2; i++)
    pthread_join(burners[i], NULL);
}

/* --- generators inside tasks may block ------------------------------------
 * A generator that a task resumes may sleep, join, or wait on an fd: the
 * hub suspends the generator's context in the task's place, runs the
 * others, and resumes the generator where it blocked (gevent lets any
 * greenlet code block the same way). */

static int ticks;

static void *ticker(void *arg) {
  (void)arg;
  for (int i = 0; i < 5; i++) {
    ticks++;
    CHECK_EQ(weft_sleep(WEFT_MS(1)), 0);
  }
  return NULL;
}

/* Yields n, n+1, ... sleeping before each; a nested generator does the
 * sleeping when arg says so. */
static void *slow_counter(void *arg) {
  intptr_t depth = VI(arg);
  if (depth > 0) {
    weft_gen *inner;
    CHECK_EQ(weft_gen_new(&inner, slow_counter, IV(depth - 1), NULL), 0);
    void *r = NULL;
    int rc = weft_gen_yield_from(inner, &r);
    weft_gen_free(inner);
    return rc == 0 ? r : NULL;
  }
  for (intptr_t i = 0;; i++) {
    int rc = weft_sleep(WEFT_MS(2));
    if (rc < 0)
      return IV(rc); /* cancelled while blocked in the generator */
    if (weft_gen_yield(IV(i), NULL) != 0)
      return NULL;
  }
}

static weft_gen *shared_gen;

static void *resume_shared(void *arg) {
  (void)arg;
  return IV(weft_gen_next(shared_gen, NULL));
}

static void *generator_blocks(void *arg) {
  intptr_t depth = VI(arg);
  weft_task *tick;
  ticks = 0;
  CHECK_EQ(weft_task_spawn(&tick, ticker, NULL, NULL), 0);
  CHECK_EQ(weft_gen_new(&shared_gen, slow_counter, IV(depth), NULL), 0);
  /* Another task that tries to resume it while it blocks is refused. */
  weft_task *intruder;
  CHECK_EQ(weft_task_spawn(&intruder, resume_shared, NULL, NULL), 0);
  for (intptr_t i = 0; i < 3; i++) {
    void *v;
    CHECK_EQ(weft_gen_next(shared_gen, &v), WEFT_GEN_YIELDED);
    CHECK_EQ(VI(v), i);
  }
  void *r;
  CHECK_EQ(weft_task_join(intruder, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -EBUSY);
  CHECK(ticks > 1); /* the ticker ran while the generator slept */
  CHECK_EQ(weft_gen_free(shared_gen), 0);
  CHECK_EQ(weft_task_join(tick, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_generator_in_a_task_may_block) {
  run_main(generator_blocks, IV(0));
  run_main(generator_blocks, IV(3)); /* blocking three generators deep */
}

static void *drive_forever(void *arg) {
  (void)arg;
  weft_gen *g;
  CHECK_EQ(weft_gen_new(&g, slow_counter, IV(1), NULL), 0);
  void *v = NULL;
  int rc;
  while ((rc = weft_gen_next(g, &v)) == WEFT_GEN_YIELDED)
    ;
  CHECK_EQ(rc, WEFT_GEN_RETURNED);
  weft_gen_free(g);
  return v; /* what the generator returned */
}

static void *cancel_driver(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, drive_forever, NULL, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(7)), 0);
  CHECK_EQ(weft_task_cancel(t), 0);
  void *r;
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  return NULL;
}

TEST(cancelling_a_task_reaches_the_generator_it_blocks_in) {
  run_main(cancel_driver, NULL);
}

/* --- bad use ----------------------------------------------------------------
 */

static void *tries_to_shield(void *arg) {
  (void)arg;
  int a = weft_task_shield(), b = weft_task_unshield();
  return IV(a == b ? a : 1000);
}

static void *misuse(void *arg) {
  (void)arg;
  weft_task *self = weft_task_current();
  CHECK(self != NULL);
  CHECK(strcmp(weft_task_name(self), "main") == 0);
  CHECK(weft_task_id(self) != 0);
  CHECK_EQ(weft_task_join(self, WEFT_FOREVER, NULL), -EDEADLK);
  CHECK_EQ(weft_task_join(NULL, WEFT_FOREVER, NULL), -EINVAL);
  CHECK_EQ(weft_task_spawn(NULL, NULL, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_sleep(-1), -EINVAL);
  CHECK_EQ(weft_run(answer, NULL, NULL), -EBUSY);
  CHECK_EQ(weft_task_cancel(NULL), -EINVAL);
  CHECK_EQ(weft_task_detach(NULL), -EINVAL);

  /* Two joiners at once are allowed; a detach while they wait is not. */
  weft_task *t, *j1, *j2;
  CHECK_EQ(weft_task_spawn(&t, sleep_then, IV(50), NULL), 0);
  CHECK_EQ(weft_task_spawn(&j1, joins_forever, t, NULL), 0);
  CHECK_EQ(weft_task_spawn(&j2, joins_forever, t, NULL), 0);
  CHECK_EQ(weft_yield(), 0); /* both are joining t now */
  CHECK_EQ(weft_task_detach(t), -EBUSY);
  CHECK(weft_task_alive(t));
  void *r;
  CHECK_EQ(weft_task_join(j2, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 0);
  CHECK_EQ(weft_task_join(j1, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 0);
  CHECK(!weft_task_alive(t));
  CHECK(weft_task_name(t) != NULL); /* joins let go of nothing */
  CHECK_EQ(weft_task_join(t, 0, &r), 0);
  CHECK_EQ(VI(r), 7);
  CHECK_EQ(weft_task_detach(t), 0);
  CHECK_EQ(weft_task_detach(j1), 0);
  CHECK_EQ(weft_task_detach(j2), 0);
  CHECK(!weft_task_alive(NULL));
  CHECK_EQ(weft_task_shield(), 0);
  CHECK_EQ(weft_task_unshield(), 0);
  CHECK_EQ(weft_task_unshield(), -EINVAL); /* no shield up */
  /* Not from a generator the task resumes: it could yield inside. */
  weft_gen *g;
  CHECK_EQ(weft_gen_new(&g, tries_to_shield, NULL, NULL), 0);
  void *r2;
  CHECK_EQ(weft_gen_next(g, &r2), WEFT_GEN_RETURNED);
  CHECK_EQ(VI(r2), -EPERM);
  CHECK_EQ(weft_gen_free(g), 0);
  return NULL;
}

TEST(bad_use_is_an_error_code) {
  CHECK_EQ(weft_task_spawn(NULL, answer, NULL, NULL), -EPERM);
  CHECK_EQ(weft_yield(), -EPERM);
  CHECK_EQ(weft_sleep(1), -EPERM);
  CHECK_EQ(weft_run(NULL, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_task_shield(), 0); /* a plain thread: nothing to hold */
  CHECK_EQ(weft_task_unshield(), 0);
  run_main(misuse, NULL);
}

/* --- bad timeouts -----------------------------------------------------------
 * A negative timeout other than WEFT_FOREVER is -EINVAL, and the join does
 * nothing: the task is neither waited for nor released, running or
 * finished; WEFT_FOREVER then joins it. A sleep takes a duration, not a
 * timeout: every negative, WEFT_FOREVER too, is -EINVAL. */

static void *bad_timeouts(void *arg) {
  (void)arg;
  static const int64_t bad[] = {-2, -3, WEFT_MS(-1), INT64_MIN + 1, INT64_MIN};
  weft_task *running, *finished;
  CHECK_EQ(weft_task_spawn(&running, sleep_then, IV(20), NULL), 0);
  CHECK_EQ(weft_task_spawn(&finished, answer, IV(41), NULL), 0);
  CHECK_EQ(weft_yield(), 0); /* finished finishes, running sleeps */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *r = IV(-1);
    CHECK_EQ(weft_task_join(running, bad[i], &r), -EINVAL);
    CHECK_EQ(weft_task_join(finished, bad[i], &r), -EINVAL);
    CHECK_EQ(VI(r), -1);
    CHECK(weft_task_name(finished) != NULL); /* not released */
    CHECK_EQ(weft_task_join(NULL, bad[i], NULL), -EINVAL);
    CHECK_EQ(weft_sleep(bad[i]), -EINVAL);
  }
  CHECK_EQ(weft_sleep(WEFT_FOREVER), -EINVAL);
  void *r;
  CHECK_EQ(weft_task_join(finished, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 42);
  CHECK_EQ(weft_task_join(running, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 7);
  return NULL;
}

TEST(a_bad_timeout_is_einval_and_changes_nothing) {
  run_main(bad_timeouts, NULL);
}

/* --- a dump to a reader gone --------------------------------------------
 * weft_hub_dump to a pipe whose read end is closed: -EPIPE, and the
 * process lives (no SIGPIPE). A SIGPIPE that was pending before the dump
 * stays pending; one the dump caused does not. */

static void *dump_to_a_closed_pipe(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  close(p[0]);
  CHECK_EQ(weft_hub_dump(p[1]), -EPIPE);
  CHECK_EQ(weft_hub_dump(p[1]), -EPIPE); /* and again: still alive */
  /* With SIGPIPE blocked by the caller: what the dump caused is taken
   * back, what was pending before is left. */
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  CHECK_EQ(pthread_sigmask(SIG_BLOCK, &pipe_set, &old), 0);
  CHECK_EQ(weft_hub_dump(p[1]), -EPIPE);
  CHECK_EQ(sigpending(&pending), 0);
  CHECK(!sigismember(&pending, SIGPIPE));
  CHECK_EQ(pthread_kill(pthread_self(), SIGPIPE), 0);
  CHECK_EQ(weft_hub_dump(p[1]), -EPIPE);
  CHECK_EQ(sigpending(&pending), 0);
  CHECK(sigismember(&pending, SIGPIPE)); /* the caller's, still there */
  struct timespec zero = {0, 0};
  CHECK_EQ(sigtimedwait(&pipe_set, NULL, &zero), SIGPIPE);
  CHECK_EQ(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
  close(p[1]);
  return NULL;
}

TEST(a_dump_to_a_pipe_without_reader_is_epipe_not_a_signal) {
  signal(SIGPIPE, SIG_DFL);
  run_main(dump_to_a_closed_pipe, NULL);
}

/* Timers are kept lazily (hub.c, arm_for): a wait woken early leaves its
 * timer armed for the next one. Whatever is left armed, each wait ends at
 * its own deadline: not at an earlier one left behind, not at a later one
 * when its own is shorter. */
static void *poke(void *arg) {
  weft_event *e = arg;
  for (int i = 0; i < 5; i++) {
    weft_sleep(WEFT_MS(2));
    weft_event_set(e);
  }
  return NULL;
}

static void *waits_of_changing_length(void *arg) {
  (void)arg;
  weft_event e;
  weft_event_init(&e);
  weft_task *poker;
  CHECK_EQ(weft_task_spawn(&poker, poke, &e, NULL), 0);
  /* Five waits with a short deadline, each woken early: their timers are
   * left armed at about +50 ms. */
  for (int i = 0; i < 5; i++) {
    CHECK_EQ(weft_event_wait(&e, WEFT_MS(50)), 0);
    weft_event_clear(&e);
  }
  CHECK_EQ(weft_task_join(poker, WEFT_FOREVER, NULL), 0);
  /* A longer wait is not ended by the timer left at +50 ms. */
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_event_wait(&e, WEFT_MS(300)), -ETIMEDOUT);
  int64_t took = harness_now_ns() - t0;
  CHECK(took >= WEFT_MS(300));
  /* A long wait woken early, then a short one: the short one ends at its
   * own deadline, not at the long one's. */
  CHECK_EQ(weft_task_spawn(&poker, poke, &e, NULL), 0);
  CHECK_EQ(weft_event_wait(&e, WEFT_SEC(100)), 0);
  weft_task_cancel(poker);
  CHECK_EQ(weft_task_join(poker, WEFT_FOREVER, NULL), 0);
  weft_event_clear(&e);
  t0 = harness_now_ns();
  CHECK_EQ(weft_event_wait(&e, WEFT_MS(20)), -ETIMEDOUT);
  took = harness_now_ns() - t0;
  CHECK(took >= WEFT_MS(20));
  CHECK(took < WEFT_SEC(10));
  weft_event_destroy(&e);
  return NULL;
}

TEST(each_wait_ends_at_its_own_deadline_whatever_timer_is_left) {
  CHECK_EQ(weft_run(waits_of_changing_length, NULL, NULL), 0);
}

/* A task whose timed wait ended early, then blocked for ever, leaves no
 * timer that would put off the deadlock report until it fires. */
static void *timed_then_cycle(void *arg) {
  (void)arg;
  static weft_event e; /* the poker outlives this task */
  weft_event_init(&e);
  weft_event_set(&e);
  CHECK_EQ(weft_event_wait(&e, WEFT_SEC(100)), 0); /* at once, no park */
  weft_event_clear(&e);
  weft_task *poker;
  CHECK_EQ(weft_task_spawn(&poker, poke, &e, NULL), 0);
  CHECK_EQ(weft_event_wait(&e, WEFT_SEC(100)), 0); /* parked, woken early */
  weft_task_detach(poker);                         /* it ends by itself */
  return make_a_cycle(NULL); /* and this task ends, its timer still set */
}

TEST(a_timer_left_armed_does_not_delay_a_deadlock_report) {
  char out[4096];
  int64_t t0 = harness_now_ns();
  int status = harness_run_child(deadlock_child, fn_arg(timed_then_cycle), NULL,
                                 out, sizeof out);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  CHECK_STR_HAS(out, "weft: deadlock: every task is blocked");
  CHECK(harness_now_ns() - t0 < WEFT_SEC(20)); /* not the 100 s timer's */
}
