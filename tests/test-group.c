/*
 * Task groups (weft_group_*): all succeed; one fails first and the rest
 * are cancelled and cleaned up; two fail at once; a member slow in its
 * cleanup; members spawning into their own group; nesting three deep; the
 * waiter cancelled from outside, and its deadline passing; bad input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

static void run_main(weft_task_fn fn, void *arg) {
  void *r = IV(-1);
  CHECK_EQ(weft_run(fn, arg, &r), 0);
  CHECK_EQ(VI(r), 0);
}

/* --- all succeed ------------------------------------------------------- */

static int finished;

static int naps_then_counts(void *arg) {
  if (weft_sleep(WEFT_MS(VI(arg) % 7)) != 0)
    return -EPROTO;
  finished++;
  return 0;
}

static void *all_succeed(void *arg) {
  (void)arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  for (int i = 0; i < 100; i++)
    CHECK_EQ(weft_group_spawn(g, naps_then_counts, IV(i)), 0);
  CHECK_EQ(weft_group_wait(g), 0);
  CHECK_EQ(finished, 100);
  CHECK_EQ(weft_group_errors(g, NULL, 0), 0);
  CHECK_EQ(weft_group_wait(g), 0); /* finished: the same, at once */
  CHECK_EQ(weft_group_spawn(g, naps_then_counts, IV(0)), -ESHUTDOWN);
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(all_members_succeed) {
  finished = 0;
  run_main(all_succeed, NULL);
}

/* --- one fails, the others are cancelled --------------------------------- */

static int cleaned_up, saw_cancel;

/* Waits long, unless cancelled: then cleans up and returns -ECANCELED. */
static int long_worker(void *arg) {
  (void)arg;
  int rc = weft_sleep(WEFT_SEC(30));
  if (rc == -ECANCELED) {
    saw_cancel++;
    cleaned_up++;
  }
  return rc;
}

static int fails_soon(void *arg) {
  weft_sleep(WEFT_MS(10));
  return (int)VI(arg);
}

static void *one_fails(void *arg) {
  (void)arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  for (int i = 0; i < 10; i++)
    CHECK_EQ(weft_group_spawn(g, long_worker, NULL), 0);
  CHECK_EQ(weft_group_spawn(g, fails_soon, IV(-EIO)), 0);
  int64_t t0 = weft_now();
  CHECK_EQ(weft_group_wait(g), -EIO);
  CHECK(weft_now() - t0 < WEFT_SEC(10)); /* not the workers' 30 s */
  CHECK_EQ(saw_cancel, 10);
  CHECK_EQ(cleaned_up, 10);
  int errs[4] = {0};
  CHECK_EQ(weft_group_errors(g, errs, 4), 1); /* cancelled ones are not */
  CHECK_EQ(errs[0], -EIO);
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(one_fails_and_the_rest_are_cancelled_and_clean_up) {
  saw_cancel = cleaned_up = 0;
  run_main(one_fails, NULL);
}

/* --- two fail at once ---------------------------------------------------- */

static int fails_now(void *arg) { return (int)VI(arg); }

static void *two_fail(void *arg) {
  (void)arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  CHECK_EQ(weft_group_spawn(g, long_worker, NULL), 0);
  CHECK_EQ(weft_group_spawn(g, fails_now, IV(-EIO)), 0);
  CHECK_EQ(weft_group_spawn(g, fails_now, IV(-EPIPE)), 0);
  CHECK_EQ(weft_group_wait(g), -EIO); /* the first to fail */
  int errs[2];
  CHECK_EQ(weft_group_errors(g, errs, 2), 2);
  CHECK_EQ(errs[0], -EIO);
  CHECK_EQ(errs[1], -EPIPE); /* it failed on its own, not cancelled */
  CHECK_EQ(weft_group_errors(g, errs, 1), 2);
  CHECK_EQ(weft_group_errors(g, NULL, 5), 2); /* counts, copies nothing */
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(two_fail_at_once_and_both_errors_are_kept) { run_main(two_fail, NULL); }

/* --- a member slow to clean up ---------------------------------------------
 */

static int slow_cleanup_done;

static int slow_to_clean_up(void *arg) {
  (void)arg;
  int rc = weft_sleep(WEFT_SEC(30));
  if (rc != -ECANCELED)
    return -EPROTO;
  /* A cleanup that waits: shielded, bounded. */
  weft_task_shield();
  weft_sleep(WEFT_MS(100));
  slow_cleanup_done = 1;
  weft_task_unshield();
  return -ECANCELED;
}

static void *slow_cleanup(void *arg) {
  (void)arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  CHECK_EQ(weft_group_spawn(g, slow_to_clean_up, NULL), 0);
  CHECK_EQ(weft_group_spawn(g, fails_soon, IV(-ENOENT)), 0);
  CHECK_EQ(weft_group_wait(g), -ENOENT);
  CHECK_EQ(slow_cleanup_done, 1); /* the wait waited for it */
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(the_wait_waits_for_a_member_slow_to_clean_up) {
  slow_cleanup_done = 0;
  run_main(slow_cleanup, NULL);
}

/* --- members spawn into their own group ------------------------------------
 */

static weft_group *shared_group;
static int spawned_later;

static int leaf(void *arg) {
  (void)arg;
  weft_sleep(WEFT_MS(5));
  spawned_later++;
  return 0;
}

static int spawns_two(void *arg) {
  (void)arg;
  CHECK_EQ(weft_group_spawn(shared_group, leaf, NULL), 0);
  CHECK_EQ(weft_group_spawn(shared_group, leaf, NULL), 0);
  return 0;
}

static void *self_spawning(void *arg) {
  (void)arg;
  CHECK_EQ(weft_group_new(&shared_group), 0);
  for (int i = 0; i < 5; i++)
    CHECK_EQ(weft_group_spawn(shared_group, spawns_two, NULL), 0);
  CHECK_EQ(weft_group_wait(shared_group), 0);
  CHECK_EQ(spawned_later, 10);
  CHECK_EQ(weft_group_free(shared_group), 0);
  return NULL;
}

TEST(members_spawn_into_their_own_group) {
  spawned_later = 0;
  run_main(self_spawning, NULL);
}

/* A task that is not a member spawns into the group while its waiter was
 * woken by the count's drop to zero but has not run yet. */
static int outsiders_member(void *arg) {
  (void)arg;
  weft_sleep(WEFT_MS(20));
  spawned_later++;
  return 0;
}

static int quick(void *arg) {
  (void)arg;
  return 0;
}

/* Runs after quick() has finished and woken the waiter, before the
 * waiter runs (the run queue's order). */
static void *spawns_from_outside(void *arg) {
  CHECK_EQ(weft_group_spawn(arg, outsiders_member, NULL), 0);
  return NULL;
}

static void *outsider(void *arg) {
  (void)arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  CHECK_EQ(weft_group_spawn(g, quick, NULL), 0);
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, spawns_from_outside, g, NULL), 0);
  CHECK_EQ(weft_group_wait(g), 0);
  CHECK_EQ(spawned_later, 1); /* it waited for the late member too */
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(a_member_spawned_as_the_count_drops_to_zero_is_waited_for) {
  spawned_later = 0;
  run_main(outsider, NULL);
}

/* --- nesting ---------------------------------------------------------------
 */

static int nested_cancelled;

/* Level n > 0 makes a group of two members of level n - 1 and a long
 * worker, and returns its group's result; level 0 fails (once) or waits. */
static int level(void *arg) {
  intptr_t n = VI(arg);
  if (n == 0)
    return fails_soon(IV(-EXDEV));
  weft_group *g;
  if (weft_group_new(&g) != 0)
    return -ENOMEM;
  weft_group_spawn(g, level, IV(n - 1));
  weft_group_spawn(g, long_worker, NULL);
  int rc = weft_group_wait(g);
  if (rc == -ECANCELED)
    nested_cancelled++;
  weft_group_free(g);
  return rc;
}

static void *nested(void *arg) {
  (void)arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  CHECK_EQ(weft_group_spawn(g, level, IV(3)), 0);
  CHECK_EQ(weft_group_spawn(g, long_worker, NULL), 0);
  CHECK_EQ(weft_group_wait(g), -EXDEV); /* up from three levels down */
  CHECK_EQ(saw_cancel, 4);              /* each level's long worker */
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(nested_three_deep_the_innermost_failure_comes_up) {
  saw_cancel = cleaned_up = nested_cancelled = 0;
  run_main(nested, NULL);
}

/* --- the waiter stopped ----------------------------------------------------
 */

static weft_task *waiter_task;

static void *waits_on_a_group(void *arg) {
  int *rc = arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_group_spawn(g, long_worker, NULL), 0);
  *rc = weft_group_wait(g);
  CHECK_EQ(saw_cancel, 3); /* its members finished first */
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

static void *cancel_the_waiter(void *arg) {
  (void)arg;
  int rc = 0;
  CHECK_EQ(weft_task_spawn(&waiter_task, waits_on_a_group, &rc, NULL), 0);
  weft_sleep(WEFT_MS(20));
  CHECK_EQ(weft_task_cancel(waiter_task), 0);
  CHECK_EQ(weft_task_join(waiter_task, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(rc, -ECANCELED);
  return NULL;
}

TEST(the_waiter_cancelled_cancels_the_members_and_waits_for_them) {
  saw_cancel = 0;
  run_main(cancel_the_waiter, NULL);
}

static void *deadline_waiter(void *arg) {
  (void)arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_group_spawn(g, long_worker, NULL), 0);
  CHECK_EQ(weft_deadline_set(weft_now() + WEFT_MS(30), NULL), 0);
  CHECK_EQ(weft_group_wait(g), -ETIMEDOUT);
  CHECK_EQ(saw_cancel, 3);
  CHECK(weft_deadline() != WEFT_FOREVER); /* its deadline is back */
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(the_waiters_deadline_passing_cancels_the_members) {
  saw_cancel = 0;
  run_main(deadline_waiter, NULL);
}

/* --- ten thousand members, one stack ------------------------------------ */

enum { MANY = 10000 };
static uintptr_t frame_of[MANY];

static int notes_its_frame(void *arg) {
  volatile char here = 0;
  frame_of[VI(arg)] = (uintptr_t)&here;
  return here;
}

static int by_value(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return (x > y) - (x < y);
}

/* Members made at once that each run briefly start one after another on
 * the stack the last one left, warm: ten thousand of them touch a few
 * stacks, not ten thousand (AddressSanitizer builds excepted, which keep
 * every stack in quarantine a while). */
static void *many_members(void *arg) {
  (void)arg;
  for (int round = 0; round < 2; round++) {
    weft_group *g;
    CHECK_EQ(weft_group_new(&g), 0);
    for (int i = 0; i < MANY; i++)
      CHECK_EQ(weft_group_spawn(g, notes_its_frame, IV(i)), 0);
    CHECK_EQ(weft_group_wait(g), 0);
    CHECK_EQ(weft_group_free(g), 0);
  }
  qsort(frame_of, MANY, sizeof *frame_of, by_value);
  size_t stacks = 0;
  for (int i = 0; i < MANY; i++) /* frames a stack's length apart or more */
    stacks += i == 0 || frame_of[i] - frame_of[i - 1] >= 16384;
  if (!ASAN)
    CHECK(stacks <= 16);
  CHECK(stacks >= 1);
  return NULL;
}

TEST(ten_thousand_members_run_on_a_few_stacks) { run_main(many_members, NULL); }

/* --- thread members ------------------------------------------------------ */

static atomic_int thread_done, thread_cancelled;

static int thread_counts(void *arg) {
  (void)arg;
  weft_event e = WEFT_EVENT_INIT;
  if (weft_event_wait(&e, WEFT_MS(2)) != -ETIMEDOUT)
    return -EPROTO;
  atomic_fetch_add(&thread_done, 1);
  return 0;
}

TEST(a_group_of_threads_made_by_a_thread) {
  atomic_store(&thread_done, 0);
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  for (int i = 0; i < 8; i++)
    CHECK_EQ(weft_group_spawn_thread(g, thread_counts, NULL), 0);
  CHECK_EQ(weft_group_wait(g), 0);
  CHECK_EQ(atomic_load(&thread_done), 8);
  CHECK_EQ(weft_group_errors(g, NULL, 0), 0);
  CHECK_EQ(weft_group_free(g), 0);
}

/* The ways a thread member may be blocked when the group cancels it. */
static weft_lock taken = WEFT_LOCK_INIT;
static int pipe_fds[2];

static int thread_blocks(void *arg) {
  int rc;
  switch (VI(arg)) {
  case 0: {
    weft_event e = WEFT_EVENT_INIT;
    rc = weft_event_wait(&e, WEFT_FOREVER);
    break;
  }
  case 1:
    rc = weft_lock_acquire(&taken, WEFT_FOREVER);
    break;
  default: {
    char c;
    rc = (int)weft_io_read(pipe_fds[0], &c, 1, WEFT_FOREVER);
    break;
  }
  }
  if (rc == -ECANCELED) {
    atomic_fetch_add(&thread_cancelled, 1);
    /* Every later wait fails too, at once. */
    weft_event e = WEFT_EVENT_INIT;
    if (weft_event_wait(&e, WEFT_SEC(30)) != -ECANCELED)
      return -EPROTO;
  }
  return rc;
}

static int thread_fails(void *arg) {
  weft_event e = WEFT_EVENT_INIT;
  weft_event_wait(&e, WEFT_MS(20));
  return (int)VI(arg);
}

static int task_fails(void *arg) {
  weft_sleep(WEFT_MS(20));
  return (int)VI(arg);
}

/* Tasks and threads in one group; the first failure is a thread's (mode
 * 0) or a task's (mode 1): every other member is cancelled wherever it
 * blocks. */
static void *mixed(void *arg) {
  int mode = (int)VI(arg);
  CHECK_EQ(pipe(pipe_fds), 0);
  CHECK_EQ(weft_lock_acquire(&taken, WEFT_FOREVER), 0);
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_group_spawn(g, long_worker, NULL), 0);
  for (int i = 0; i < 6; i++)
    CHECK_EQ(weft_group_spawn_thread(g, thread_blocks, IV(i % 3)), 0);
  if (mode == 0)
    CHECK_EQ(weft_group_spawn_thread(g, thread_fails, IV(-EIO)), 0);
  else
    CHECK_EQ(weft_group_spawn(g, task_fails, IV(-EIO)), 0);
  int64_t t0 = weft_now();
  CHECK_EQ(weft_group_wait(g), -EIO);
  CHECK(weft_now() - t0 < WEFT_SEC(20));
  CHECK_EQ(saw_cancel, 3);
  CHECK_EQ(atomic_load(&thread_cancelled), 6);
  int errors[4];
  CHECK_EQ(weft_group_errors(g, errors, 4), 1);
  CHECK_EQ(errors[0], -EIO);
  CHECK_EQ(weft_group_free(g), 0);
  CHECK_EQ(weft_lock_release(&taken), 0);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  return NULL;
}

TEST(a_thread_member_fails_and_tasks_and_threads_are_cancelled) {
  saw_cancel = 0;
  atomic_store(&thread_cancelled, 0);
  run_main(mixed, IV(0));
}

TEST(a_task_member_fails_and_threads_blocked_anywhere_are_cancelled) {
  saw_cancel = 0;
  atomic_store(&thread_cancelled, 0);
  run_main(mixed, IV(1));
}

/* A thread member that waits on a group of threads of its own: the outer
 * group's cancellation passes down to the inner members. */
static int nests_threads(void *arg) {
  (void)arg;
  weft_group *inner;
  if (weft_group_new(&inner) != 0)
    return -EPROTO;
  for (int i = 0; i < 3; i++)
    weft_group_spawn_thread(inner, thread_blocks, IV(i));
  int rc = weft_group_wait(inner);
  weft_group_free(inner);
  return rc;
}

static void *nested_threads(void *arg) {
  (void)arg;
  CHECK_EQ(pipe(pipe_fds), 0);
  CHECK_EQ(weft_lock_acquire(&taken, WEFT_FOREVER), 0);
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  CHECK_EQ(weft_group_spawn_thread(g, nests_threads, NULL), 0);
  CHECK_EQ(weft_group_spawn(g, task_fails, IV(-EPIPE)), 0);
  CHECK_EQ(weft_group_wait(g), -EPIPE);
  CHECK_EQ(atomic_load(&thread_cancelled), 3);
  CHECK_EQ(weft_group_errors(g, NULL, 0), 1); /* the inner -ECANCELED: no */
  CHECK_EQ(weft_group_free(g), 0);
  CHECK_EQ(weft_lock_release(&taken), 0);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  return NULL;
}

TEST(a_cancelled_thread_member_cancels_its_own_group_of_threads) {
  atomic_store(&thread_cancelled, 0);
  run_main(nested_threads, NULL);
}

/* A thread member cancelled while it takes a condition's lock back, which
 * another thread holds: the wait returns -ECANCELED with the lock held,
 * as a condition's wait always does. */
static weft_cond member_cv = WEFT_COND_INIT;
static weft_event lock_held = WEFT_EVENT_INIT,
                  member_has_lock = WEFT_EVENT_INIT;

static int waits_on_the_condition(void *arg) {
  (void)arg;
  if (weft_cond_acquire(&member_cv, WEFT_FOREVER) != 0)
    return -EPROTO;
  weft_event_set(&member_has_lock);
  int rc = weft_cond_wait(&member_cv, WEFT_FOREVER);
  if (weft_cond_release(&member_cv) != 0) /* -EPERM if not held */
    return -EPROTO;
  return rc;
}

static void *holds_the_conditions_lock(void *arg) {
  (void)arg;
  CHECK_EQ(weft_cond_acquire(&member_cv, WEFT_FOREVER), 0); /* it waits */
  CHECK_EQ(weft_event_set(&lock_held), 0);
  weft_event never = WEFT_EVENT_INIT;
  weft_event_wait(&never, WEFT_MS(100)); /* held across the cancellation */
  CHECK_EQ(weft_cond_release(&member_cv), 0);
  return NULL;
}

static int fails_once_the_lock_is_held(void *arg) {
  (void)arg;
  weft_event_wait(&lock_held, WEFT_SEC(10));
  return -EPIPE;
}

TEST(a_thread_member_cancelled_in_a_condition_wait_holds_its_lock_again) {
  weft_event_clear(&lock_held);
  weft_event_clear(&member_has_lock);
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  CHECK_EQ(weft_group_spawn_thread(g, waits_on_the_condition, NULL), 0);
  /* The holder takes the lock only once the member waits (and so let it
   * go); the failure comes once the holder has it. */
  CHECK_EQ(weft_event_wait(&member_has_lock, WEFT_SEC(10)), 0);
  weft_thread *h;
  CHECK_EQ(weft_thread_start(&h, holds_the_conditions_lock, NULL, NULL), 0);
  CHECK_EQ(weft_group_spawn_thread(g, fails_once_the_lock_is_held, NULL), 0);
  CHECK_EQ(weft_group_wait(g), -EPIPE);
  CHECK_EQ(weft_group_errors(g, NULL, 0), 1); /* no -EPROTO */
  CHECK_EQ(weft_group_free(g), 0);
  CHECK_EQ(weft_thread_join(h, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(h), 0);
}

/* Thread members blocked where weft has no fd or waiter to wake: a wait on
 * shared memory (seen at its re-look), and a join of another thread
 * (which a cancellable thread does not leave to pthread_join). */
static weft_shared_sem no_units;

static int takes_a_shared_unit(void *arg) {
  (void)arg;
  return weft_shared_sem_acquire(&no_units, WEFT_FOREVER);
}

static void *sleeps_a_second(void *arg) {
  (void)arg;
  weft_event never = WEFT_EVENT_INIT;
  weft_event_wait(&never, WEFT_SEC(1));
  return NULL;
}

static int joins_a_thread(void *arg) {
  weft_thread **t = arg;
  return weft_thread_join(*t, WEFT_FOREVER, NULL);
}

TEST(thread_members_in_shared_memory_waits_and_joins_are_cancelled) {
  CHECK_EQ(weft_shared_sem_init(&no_units, 0), 0);
  weft_thread *slow;
  CHECK_EQ(weft_thread_start(&slow, sleeps_a_second, NULL, NULL), 0);
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  CHECK_EQ(weft_group_spawn_thread(g, takes_a_shared_unit, NULL), 0);
  CHECK_EQ(weft_group_spawn_thread(g, joins_a_thread, &slow), 0);
  CHECK_EQ(weft_group_spawn_thread(g, thread_fails, IV(-EIO)), 0);
  int64_t t0 = weft_now();
  CHECK_EQ(weft_group_wait(g), -EIO);
  /* The shared wait's re-look is 100 ms; the thread sleeps a second. */
  CHECK(weft_now() - t0 < WEFT_MS(700) * (int64_t)harness_timeout_multiplier());
  CHECK_EQ(weft_group_errors(g, NULL, 0), 1);
  CHECK_EQ(weft_group_free(g), 0);
  CHECK_EQ(weft_thread_join(slow, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(slow), 0);
}

/* A thread member shields its cleanup as a task does. */
static int shields_its_cleanup(void *arg) {
  (void)arg;
  weft_event e = WEFT_EVENT_INIT;
  int rc = weft_event_wait(&e, WEFT_FOREVER);
  if (rc != -ECANCELED)
    return -EPROTO;
  if (weft_task_shield() != 0)
    return -EPROTO;
  /* A bounded cleanup wait runs to its timeout, cancelled or not. */
  int64_t t0 = weft_now();
  if (weft_event_wait(&e, WEFT_MS(30)) != -ETIMEDOUT ||
      weft_now() - t0 < WEFT_MS(30))
    return -EPROTO;
  if (weft_task_unshield() != -ECANCELED) /* in force again */
    return -EPROTO;
  atomic_fetch_add(&thread_cancelled, 1);
  return weft_event_wait(&e, WEFT_SEC(30)); /* at once */
}

TEST(a_thread_member_shields_its_cleanup) {
  atomic_store(&thread_cancelled, 0);
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  CHECK_EQ(weft_group_spawn_thread(g, shields_its_cleanup, NULL), 0);
  CHECK_EQ(weft_group_spawn_thread(g, thread_fails, IV(-EIO)), 0);
  CHECK_EQ(weft_group_wait(g), -EIO);
  CHECK_EQ(atomic_load(&thread_cancelled), 1);
  CHECK_EQ(weft_group_errors(g, NULL, 0), 1);
  CHECK_EQ(weft_group_free(g), 0);
  /* A thread that is no member: shields nest, and nothing is cancelled. */
  CHECK_EQ(weft_task_unshield(), -EINVAL);
  CHECK_EQ(weft_task_shield(), 0);
  CHECK_EQ(weft_task_shield(), 0);
  CHECK_EQ(weft_task_unshield(), 0);
  CHECK_EQ(weft_task_unshield(), 0);
}

/* The waiter inside a generator, cancelled: the members are waited for
 * all the same (the wait's shield holds there too). */
static weft_group *gen_group;

static void *waits_in_a_generator(void *arg) {
  int *rc = arg;
  *rc = weft_group_wait(gen_group);
  return NULL;
}

static void *resumes_the_generator(void *arg) {
  weft_gen *gen;
  CHECK_EQ(weft_gen_new(&gen, waits_in_a_generator, arg, NULL), 0);
  CHECK_EQ(weft_gen_resume(gen, NULL, NULL), WEFT_GEN_RETURNED);
  CHECK_EQ(weft_gen_free(gen), 0);
  return NULL;
}

static void *generator_waiter(void *arg) {
  (void)arg;
  slow_cleanup_done = 0;
  CHECK_EQ(weft_group_new(&gen_group), 0);
  CHECK_EQ(weft_group_spawn(gen_group, slow_to_clean_up, NULL), 0);
  int rc = 0;
  weft_task *w;
  CHECK_EQ(weft_task_spawn(&w, resumes_the_generator, &rc, NULL), 0);
  weft_sleep(WEFT_MS(20));
  CHECK_EQ(weft_task_cancel(w), 0);
  CHECK_EQ(weft_task_join(w, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_detach(w), 0);
  CHECK_EQ(rc, -ECANCELED);
  CHECK_EQ(slow_cleanup_done, 1); /* finished before the wait returned */
  CHECK_EQ(weft_group_free(gen_group), 0);
  return NULL;
}

TEST(a_waiter_in_a_generator_cancelled_waits_for_the_members) {
  run_main(generator_waiter, NULL);
}

/* --- deadlines ----------------------------------------------------------- */

static int reads_a_pipe(void *arg) {
  (void)arg;
  char c;
  return (int)weft_io_read(pipe_fds[0], &c, 1, WEFT_FOREVER);
}

static int takes_the_lock(void *arg) {
  (void)arg;
  int rc = weft_lock_acquire(&taken, WEFT_FOREVER);
  if (rc == 0)
    weft_lock_release(&taken);
  return rc;
}

static void *never_ends(void *arg) {
  (void)arg;
  weft_event e = WEFT_EVENT_INIT;
  weft_event_wait(&e, WEFT_FOREVER);
  return NULL;
}

static int joins_forever(void *arg) {
  (void)arg;
  weft_task *t;
  int rc = weft_task_spawn(&t, never_ends, NULL, NULL);
  if (rc < 0)
    return rc;
  rc = weft_task_join(t, WEFT_FOREVER, NULL);
  weft_task_cancel(t);
  weft_task_join(t, WEFT_FOREVER, NULL);
  weft_task_detach(t);
  return rc;
}

/* A group deadline fires in the middle of an fd read, a lock wait and a
 * join, in tasks and in threads: each member fails the deadline's way. */
static void *group_deadline(void *arg) {
  int how = (int)VI(arg);
  int expect = how == WEFT_SCOPE_CANCEL ? -ECANCELED : -ETIMEDOUT;
  CHECK_EQ(pipe(pipe_fds), 0);
  CHECK_EQ(weft_lock_acquire(&taken, WEFT_FOREVER), 0);
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  int64_t t0 = weft_now();
  CHECK_EQ(weft_group_deadline(g, t0 + WEFT_MS(40), how), 0);
  CHECK_EQ(weft_group_spawn(g, reads_a_pipe, NULL), 0);
  CHECK_EQ(weft_group_spawn(g, takes_the_lock, NULL), 0);
  CHECK_EQ(weft_group_spawn(g, joins_forever, NULL), 0);
  CHECK_EQ(weft_group_spawn_thread(g, reads_a_pipe, NULL), 0);
  CHECK_EQ(weft_group_spawn_thread(g, takes_the_lock, NULL), 0);
  CHECK_EQ(weft_group_wait(g), expect);
  CHECK(weft_now() - t0 >= WEFT_MS(40));
  int errors[5] = {0};
  /* Each member failed on its own, the deadline's way; those the group
   * cancelled after the first would have said -ECANCELED, not counted. */
  size_t n = weft_group_errors(g, errors, 5);
  CHECK(n >= 1 && n <= 5);
  for (size_t i = 0; i < n; i++)
    CHECK_EQ(errors[i], expect);
  CHECK_EQ(weft_deadline(), WEFT_FOREVER); /* the waiter's is its own */
  CHECK_EQ(weft_group_free(g), 0);
  CHECK_EQ(weft_lock_release(&taken), 0);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  return NULL;
}

TEST(a_group_deadline_ends_reads_lock_waits_and_joins_in_tasks_and_threads) {
  run_main(group_deadline, IV(WEFT_SCOPE_TIMEOUT));
  run_main(group_deadline, IV(WEFT_SCOPE_CANCEL));
}

/* Members start inside the scopes of the group's maker: nested scopes
 * take the earliest deadline across tasks. */
static int sleeps_inside(void *arg) {
  (void)arg;
  weft_scope s;
  if (weft_scope_enter(&s, weft_now() + WEFT_SEC(30), WEFT_SCOPE_TIMEOUT))
    return -EPROTO;
  int rc = weft_sleep(WEFT_SEC(30)); /* the maker's scope ends it */
  weft_scope_exit(&s);
  return rc;
}

static void *inherits_scope(void *arg) {
  (void)arg;
  weft_scope s;
  CHECK_EQ(weft_scope_enter(&s, weft_now() + WEFT_MS(30), WEFT_SCOPE_CANCEL),
           0);
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  CHECK_EQ(weft_group_spawn(g, sleeps_inside, NULL), 0);
  CHECK_EQ(weft_group_spawn_thread(g, thread_blocks, IV(0)), 0);
  CHECK_EQ(weft_group_wait(g), -ECANCELED);
  CHECK_EQ(weft_scope_exit(&s), -ECANCELED);
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(members_start_inside_the_makers_scopes) { run_main(inherits_scope, NULL); }

/* --- the notes' join example (docs/notes.md) --------------------------------
 */

static int notes_worker(void *arg) {
  int rc = weft_sleep(WEFT_MS(100 * VI(arg)));
  if (rc < 0)
    return rc;
  return VI(arg) == 3 ? -EIO : 0;
}

static void *notes_example(void *arg) {
  (void)arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  for (int i = 1; i <= 10; i++)
    CHECK_EQ(weft_group_spawn(g, notes_worker, IV(i)), 0);
  int64_t t0 = weft_now();
  CHECK_EQ(weft_deadline_set(t0 + WEFT_SEC(1), NULL), 0);
  CHECK_EQ(weft_group_wait(g), -EIO);
  /* About 0.3 s; under a second, whatever the machine's load. */
  CHECK(weft_now() - t0 < WEFT_MS(900) * (int64_t)harness_timeout_multiplier());
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(the_notes_join_example_as_a_group) { run_main(notes_example, NULL); }

/* The same with threads, and the deadline the group's own (notes.md). */
static int notes_thread_worker(void *arg) {
  weft_event e = WEFT_EVENT_INIT;
  int rc = weft_event_wait(&e, WEFT_MS(100 * VI(arg)));
  if (rc != -ETIMEDOUT)
    return rc; /* cancelled: clean up, return */
  return VI(arg) == 3 ? -EIO : 0;
}

static void *notes_threads_example(void *arg) {
  (void)arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  int64_t t0 = weft_now();
  CHECK_EQ(weft_group_deadline(g, t0 + WEFT_SEC(1), WEFT_SCOPE_TIMEOUT), 0);
  for (int i = 1; i <= 10; i++)
    CHECK_EQ(weft_group_spawn_thread(g, notes_thread_worker, IV(i)), 0);
  CHECK_EQ(weft_group_wait(g), -EIO);
  CHECK(weft_now() - t0 < WEFT_MS(900) * (int64_t)harness_timeout_multiplier());
  CHECK_EQ(weft_group_errors(g, NULL, 0), 1); /* the seven: cancelled */
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(the_notes_join_example_with_threads) {
  run_main(notes_threads_example, NULL);
}

/* --- bad input ---------------------------------------------------------------
 */

static weft_group *foreign;

static void *waits_twice(void *arg) {
  (void)arg;
  CHECK_EQ(weft_group_wait(foreign), -EBUSY);
  return NULL;
}

static void *other_hub(void *arg) {
  (void)arg;
  CHECK_EQ(weft_group_spawn(foreign, leaf, NULL), -EPERM);
  CHECK_EQ(weft_group_wait(foreign), -EPERM);
  return NULL;
}

static void *other_hub_thread(void *arg) {
  (void)arg;
  CHECK_EQ(weft_run(other_hub, NULL, NULL), 0);
  return NULL;
}

static void *bad_use(void *arg) {
  (void)arg;
  CHECK_EQ(weft_group_new(NULL), -EINVAL);
  CHECK_EQ(weft_group_spawn(NULL, leaf, NULL), -EINVAL);
  CHECK_EQ(weft_group_wait(NULL), -EINVAL);
  CHECK_EQ(weft_group_free(NULL), -EINVAL);
  CHECK_EQ(weft_group_errors(NULL, NULL, 0), 0);
  CHECK_EQ(weft_group_new(&foreign), 0);
  CHECK_EQ(weft_group_spawn(foreign, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_group_spawn(foreign, long_worker, NULL), 0);
  CHECK_EQ(weft_group_free(foreign), -EBUSY); /* a member runs */
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, other_hub_thread, NULL), 0);
  CHECK_EQ(pthread_join(th, NULL), 0);
  weft_task *second;
  CHECK_EQ(weft_task_spawn(&second, waits_twice, NULL, NULL), 0);
  /* This wait is the first; the second task's runs while it waits. */
  CHECK_EQ(weft_deadline_set(weft_now() + WEFT_MS(30), NULL), 0);
  CHECK_EQ(weft_group_wait(foreign), -ETIMEDOUT);
  CHECK_EQ(weft_task_join(second, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_group_free(foreign), 0);
  return NULL;
}

static void *bad_deadline(void *arg) {
  (void)arg;
  weft_group *g;
  CHECK_EQ(weft_group_new(&g), 0);
  CHECK_EQ(weft_group_deadline(NULL, WEFT_FOREVER, WEFT_SCOPE_TIMEOUT),
           -EINVAL);
  CHECK_EQ(weft_group_deadline(g, -2, WEFT_SCOPE_TIMEOUT), -EINVAL);
  CHECK_EQ(weft_group_deadline(g, WEFT_FOREVER, 9), -EINVAL);
  CHECK_EQ(
      weft_group_deadline(g, weft_now() + WEFT_SEC(60), WEFT_SCOPE_TIMEOUT), 0);
  CHECK_EQ(weft_group_spawn(g, leaf, NULL), 0);
  CHECK_EQ(weft_group_deadline(g, weft_now(), WEFT_SCOPE_TIMEOUT), -EBUSY);
  CHECK_EQ(weft_group_wait(g), 0); /* the 60 s did not change */
  CHECK_EQ(weft_group_free(g), 0);
  return NULL;
}

TEST(bad_input_is_an_error_code) {
  /* From a plain thread: a group for threads, which has no hub. */
  CHECK_EQ(weft_group_new(&foreign), 0);
  CHECK_EQ(weft_group_spawn(foreign, leaf, NULL), -EPERM);
  CHECK_EQ(weft_group_spawn_thread(foreign, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_group_spawn_thread(NULL, leaf, NULL), -EINVAL);
  CHECK_EQ(weft_group_wait(foreign), 0);
  CHECK_EQ(weft_group_spawn_thread(foreign, leaf, NULL), -ESHUTDOWN);
  CHECK_EQ(weft_group_free(foreign), 0);
  run_main(bad_use, NULL);
  run_main(bad_deadline, NULL);
}
