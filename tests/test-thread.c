/*
 * Threads: start and join with a result, timeouts, names, ids, the current
 * thread (weft's, the main one, a foreign one), joins from tasks (which park
 * only themselves) and their cancellation, one joiner at a time, daemon and
 * non-daemon threads at exit (in child processes), thread-local storage,
 * bad use, and joins racing the end of the thread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

static void nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

static void *add_one(void *arg) { return IV(VI(arg) + 1); }

static void *sleep_then_return(void *arg) {
  nap_ms((int)VI(arg));
  return IV(7);
}

TEST(start_and_join_give_the_result) {
  weft_thread *t;
  CHECK_EQ(weft_thread_start(&t, add_one, IV(41), NULL), 0);
  void *r = NULL;
  CHECK_EQ(weft_thread_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(weft_thread_detach(t), 0);
  CHECK_EQ(VI(r), 42);
}

/* A number field of /proc/self/status ("VmSize:", in KiB). */
static long status_field(const char *field) {
  long n = -1;
  size_t len = strlen(field);
  FILE *f = fopen("/proc/self/status", "r");
  char line[128];
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, len) == 0)
      n = atol(line + len);
  if (f)
    fclose(f);
  return n;
}

/* A thread that joins without a timeout reaps the pthread (it returns
 * once the OS thread has ended, as pthread_join's caller does); a handle
 * so joined can be joined again and detached; one joined with a timeout
 * is let go by its detach; and no stack is left behind, over many
 * rounds. */
TEST(a_thread_joining_without_a_timeout_reaps_and_leaves_no_thread) {
  long vm_before = status_field("VmSize:");
  for (int i = 0; i < 200; i++) {
    weft_thread *t;
    CHECK_EQ(weft_thread_start(&t, add_one, IV(i), NULL), 0);
    void *r = NULL;
    CHECK_EQ(weft_thread_join(t, WEFT_FOREVER, &r), 0);
    CHECK_EQ(VI(r), i + 1);
    /* Joined again (reaped already), with and without a timeout. */
    CHECK_EQ(weft_thread_join(t, 0, &r), 0);
    CHECK_EQ(weft_thread_join(t, WEFT_FOREVER, &r), 0);
    CHECK_EQ(VI(r), i + 1);
    CHECK_EQ(weft_thread_detach(t), 0);
  }
  /* Joined with a timeout (not reaped), then detached: the detach lets
   * the pthread go. */
  for (int i = 0; i < 200; i++) {
    weft_thread *t;
    CHECK_EQ(weft_thread_start(&t, add_one, IV(i), NULL), 0);
    void *r = NULL;
    CHECK_EQ(weft_thread_join(t, WEFT_SEC(10), &r), 0);
    CHECK_EQ(VI(r), i + 1);
    CHECK_EQ(weft_thread_detach(t), 0);
  }
  /* No stack kept: 400 of them would be 3.2 GiB of address space (glibc's
   * cache of stacks, and those of threads still ending, take some). */
  CHECK(status_field("VmSize:") - vm_before < 1 << 20);
}

TEST(join_times_out_and_can_be_tried_again) {
  weft_thread *t;
  CHECK_EQ(weft_thread_start(&t, sleep_then_return, IV(100), NULL), 0);
  CHECK(weft_thread_alive(t));
  CHECK_EQ(weft_thread_join(t, 0, NULL), -ETIMEDOUT);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_thread_join(t, WEFT_MS(20), NULL), -ETIMEDOUT);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(20));
  void *r;
  CHECK_EQ(weft_thread_join(t, WEFT_SEC(10), &r), 0);
  CHECK_EQ(weft_thread_detach(t), 0);
  CHECK_EQ(VI(r), 7);
}

static void *report_self(void *arg) {
  weft_thread **seen = arg;
  *seen = weft_thread_current();
  return NULL;
}

static void *foreign(void *arg) {
  weft_thread *me = weft_thread_current();
  CHECK(me != NULL);
  CHECK(strncmp(weft_thread_name(me), "Dummy-", 6) == 0);
  CHECK_EQ(weft_thread_join(me, 0, NULL), -EINVAL); /* not weft's to join */
  *(uint64_t *)arg = weft_thread_id(me);
  return NULL;
}

TEST(names_ids_and_the_current_thread) {
  weft_thread *t, *u, *seen = NULL;
  CHECK_EQ(weft_thread_start(&t, report_self, &seen,
                             &(weft_thread_opts){.name = "worker"}),
           0);
  CHECK_STR_HAS(weft_thread_name(t), "worker");
  CHECK_EQ(weft_thread_start(&u, add_one, NULL, NULL), 0);
  CHECK(strncmp(weft_thread_name(u), "Thread-", 7) == 0);
  CHECK(weft_thread_id(t) != weft_thread_id(u));
  CHECK(weft_thread_id(t) != 0);
  CHECK_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(t), 0);
  CHECK_PTR_EQ(seen, t); /* its own handle, seen from inside */
  CHECK_EQ(weft_thread_join(u, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(u), 0);
  weft_thread *main_thread = weft_thread_current();
  CHECK(main_thread != NULL);
  CHECK_PTR_EQ(weft_thread_current(), main_thread);
  CHECK(!weft_thread_daemon(main_thread));
  CHECK(weft_thread_alive(main_thread));
  CHECK_EQ(weft_thread_join(main_thread, 0, NULL), -EINVAL);
  pthread_t pt;
  uint64_t foreign_id = 0;
  CHECK_EQ(pthread_create(&pt, NULL, foreign, &foreign_id), 0);
  pthread_join(pt, NULL);
  CHECK(foreign_id != 0 && foreign_id != weft_thread_id(main_thread));
}

static weft_thread *slow;

static void *joiner(void *arg) {
  (void)arg;
  void *r = NULL;
  int rc = weft_thread_join(slow, WEFT_SEC(10), &r);
  return IV(rc == 0 && VI(r) == 7 ? 0 : -1);
}

static void *join_self(void *arg) {
  (void)arg;
  return IV(weft_thread_join(weft_thread_current(), 0, NULL));
}

TEST(bad_use_is_an_error_code) {
  weft_thread *t;
  CHECK_EQ(weft_thread_start(&t, NULL, NULL, NULL), -EINVAL);
  CHECK_EQ(
      weft_thread_start(&t, add_one, NULL, &(weft_thread_opts){.daemon = 7}),
      -EINVAL);
  CHECK_EQ(weft_thread_start(&t, add_one, NULL,
                             &(weft_thread_opts){.stack_size = 1}),
           -EINVAL);
  CHECK_EQ(weft_thread_join(NULL, 0, NULL), -EINVAL);
  CHECK(!weft_thread_alive(NULL));
  CHECK(weft_thread_name(NULL) == NULL);
  CHECK_EQ(weft_thread_id(NULL), 0);
  void *r;
  CHECK_EQ(weft_thread_start(&t, join_self, NULL, NULL), 0);
  CHECK_EQ(weft_thread_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -EDEADLK);
  CHECK_EQ(weft_thread_detach(t), 0);
  CHECK_EQ(weft_thread_detach(NULL), -EINVAL);
  CHECK_EQ(weft_thread_detach(weft_thread_current()), -EINVAL); /* foreign */
  /* Two joiners at once both get the result; a detach while one waits is
   * refused, and one after the joins lets the handle go. */
  CHECK_EQ(weft_thread_start(&slow, sleep_then_return, IV(100), NULL), 0);
  pthread_t pt;
  CHECK_EQ(pthread_create(&pt, NULL, joiner, NULL), 0);
  nap_ms(20);
  CHECK_EQ(weft_thread_detach(slow), -EBUSY);
  CHECK_EQ(weft_thread_join(slow, WEFT_SEC(10), &r), 0);
  CHECK_EQ(VI(r), 7);
  pthread_join(pt, &r);
  CHECK_EQ(VI(r), 0);
  CHECK_EQ(weft_thread_join(slow, 0, &r), 0); /* and again */
  CHECK_EQ(VI(r), 7);
  CHECK_EQ(weft_thread_detach(slow), 0);
}

/* --- joins from tasks ------------------------------------------------------
 * A task that joins a thread parks only itself: the hub's other tasks run
 * meanwhile, and the thread's end wakes the task through the hub's remote
 * queue. A cancelled joiner gets -ECANCELED, and the thread can still be
 * joined after. */

static atomic_int ticks;

static void *ticker(void *arg) {
  (void)arg;
  for (int i = 0; i < 10; i++) {
    atomic_fetch_add(&ticks, 1);
    weft_sleep(WEFT_MS(2));
  }
  return NULL;
}

static void *join_from_a_task(void *arg) {
  (void)arg;
  weft_task *tick;
  CHECK_EQ(weft_task_spawn(&tick, ticker, NULL, NULL), 0);
  weft_thread *t;
  CHECK_EQ(weft_thread_start(&t, sleep_then_return, IV(50), NULL), 0);
  void *r;
  CHECK_EQ(weft_thread_join(t, WEFT_SEC(10), &r), 0);
  CHECK_EQ(weft_thread_detach(t), 0);
  CHECK_EQ(VI(r), 7);
  CHECK(atomic_load(&ticks) >= 5); /* the ticker ran while this waited */
  CHECK_EQ(weft_task_join(tick, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_task_joining_a_thread_parks_only_itself) {
  CHECK_EQ(weft_run(join_from_a_task, NULL, NULL), 0);
}

static weft_thread *joined_by_task;

static void *task_joins(void *arg) {
  (void)arg;
  return IV(weft_thread_join(joined_by_task, WEFT_FOREVER, NULL));
}

static void *cancel_a_joining_task(void *arg) {
  (void)arg;
  CHECK_EQ(weft_thread_start(&joined_by_task, sleep_then_return, IV(50), NULL),
           0);
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, task_joins, NULL, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(5)), 0);
  CHECK_EQ(weft_task_cancel(t), 0);
  void *r;
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  CHECK_EQ(weft_thread_join(joined_by_task, WEFT_SEC(10), &r), 0);
  CHECK_EQ(weft_thread_detach(joined_by_task), 0);
  CHECK_EQ(VI(r), 7);
  return NULL;
}

TEST(a_joining_task_can_be_cancelled) {
  CHECK_EQ(weft_run(cancel_a_joining_task, NULL, NULL), 0);
}

/* --- daemon threads at exit, as Python's ----------------------------------
 * Each case runs in a child process whose "main" starts a thread that
 * writes to a pipe after a while, then returns from main (exit). A
 * non-daemon thread is waited for: its write arrives. A daemon thread ends
 * with the process: it does not. */

static int exit_pipe[2];

static void *late_writer(void *arg) {
  nap_ms((int)VI(arg));
  ssize_t w = write(exit_pipe[1], "x", 1);
  (void)w;
  return NULL;
}

struct exit_case {
  int daemon;     /* for the thread main starts */
  bool nested;    /* main starts a daemon, which starts the writer */
  bool call_exit; /* exit(0) rather than returning */
};

static void *start_writer(void *arg) {
  const struct exit_case *c = arg;
  CHECK_EQ(weft_thread_start(NULL, late_writer, IV(300),
                             &(weft_thread_opts){.daemon = c->daemon}),
           0);
  nap_ms(1000); /* outlive main's return by far, as a daemon */
  return NULL;
}

static void exit_child(void *arg) {
  const struct exit_case *c = arg;
  close(exit_pipe[0]);
  if (c->nested)
    CHECK_EQ(
        weft_thread_start(NULL, start_writer, (void *)c,
                          &(weft_thread_opts){.daemon = WEFT_THREAD_DAEMON}),
        0);
  else
    CHECK_EQ(weft_thread_start(NULL, late_writer, IV(300),
                               &(weft_thread_opts){.daemon = c->daemon}),
             0);
  nap_ms(20);
  exit(0); /* main's return, or its exit(): atexit runs either way */
}

/* Runs the case; returns whether the thread's write arrived. */
static bool thread_outlived_main(struct exit_case c) {
  CHECK_EQ(pipe(exit_pipe), 0);
  char out[256];
  int64_t t0 = harness_now_ns();
  int status = harness_run_child(exit_child, &c, NULL, out, sizeof out);
  int64_t took = harness_now_ns() - t0;
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(exit_pipe[1]);
  char buf[4];
  ssize_t n = read(exit_pipe[0], buf, sizeof buf);
  close(exit_pipe[0]);
  if (n == 1)
    CHECK(took >= WEFT_MS(300)); /* the process waited for it */
  return n == 1;
}

TEST(the_process_waits_for_non_daemon_threads) {
  CHECK(
      thread_outlived_main((struct exit_case){.daemon = WEFT_THREAD_INHERIT}));
  CHECK(thread_outlived_main(
      (struct exit_case){.daemon = WEFT_THREAD_NOT_DAEMON}));
}

TEST(daemon_threads_end_with_the_process) {
  CHECK(
      !thread_outlived_main((struct exit_case){.daemon = WEFT_THREAD_DAEMON}));
}

TEST(a_daemon_threads_children_are_daemons_unless_told) {
  CHECK(!thread_outlived_main(
      (struct exit_case){.daemon = WEFT_THREAD_INHERIT, .nested = true}));
  CHECK(thread_outlived_main(
      (struct exit_case){.daemon = WEFT_THREAD_NOT_DAEMON, .nested = true}));
}

/* --- thread-local storage ---------------------------------------------------
 */

static _Thread_local int mine;
static pthread_key_t key;
static atomic_int destroyed;

static void count_destroyed(void *v) {
  (void)v;
  atomic_fetch_add(&destroyed, 1);
}

static void *use_locals(void *arg) {
  mine = (int)VI(arg);
  pthread_setspecific(key, arg);
  nap_ms(5);
  return IV(mine == (int)VI(arg) && pthread_getspecific(key) == arg);
}

TEST(each_thread_has_its_own_locals) {
  CHECK_EQ(pthread_key_create(&key, count_destroyed), 0);
  weft_thread *t[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_thread_start(&t[i], use_locals, IV(i + 1), NULL), 0);
  for (int i = 0; i < 4; i++) {
    void *r;
    CHECK_EQ(weft_thread_join(t[i], WEFT_FOREVER, &r), 0);
    CHECK_EQ(weft_thread_detach(t[i]), 0);
    CHECK_EQ(VI(r), 1);
  }
  /* Destructors run as each pthread ends, which may be just after its
   * join returns. */
  for (int i = 0; i < 1000 && atomic_load(&destroyed) < 4; i++)
    nap_ms(1);
  CHECK_EQ(atomic_load(&destroyed), 4);
}

static void *hub_thread_main(void *arg);

/* --- joins racing the end of the thread ------------------------------------
 * Short timeouts, tried again and again, from tasks and from threads,
 * while the threads end: every thread is joined, and no join waits for a
 * wake-up that was lost. */

static void *brief(void *arg) {
  for (volatile int i = 0; i < (int)VI(arg) * 100; i++)
    ;
  return arg;
}

static void join_patiently(weft_thread *t, intptr_t want) {
  void *r;
  int rc;
  while ((rc = weft_thread_join(t, WEFT_US(5), &r)) == -ETIMEDOUT)
    ;
  CHECK_EQ(rc, 0);
  CHECK_EQ(VI(r), want);
  CHECK_EQ(weft_thread_detach(t), 0);
}

static void *task_racer(void *arg) {
  for (int i = 0; i < 200; i++) {
    weft_thread *t;
    CHECK_EQ(weft_thread_start(&t, brief, IV(i % 50), NULL), 0);
    join_patiently(t, i % 50);
  }
  (void)arg;
  return NULL;
}

static void *hub_of_racers(void *arg) {
  (void)arg;
  weft_task *t[3];
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_task_spawn(&t[i], task_racer, NULL, NULL), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST_TIMEOUT(joins_race_the_end_of_the_thread, 120) {
  pthread_t pt;
  CHECK_EQ(pthread_create(&pt, NULL, hub_thread_main, NULL), 0);
  task_racer(NULL); /* from a plain thread at the same time */
  pthread_join(pt, NULL);
}

static void *hub_thread_main(void *arg) {
  CHECK_EQ(weft_run(hub_of_racers, arg, NULL), 0);
  return NULL;
}

/* --- many joiners -----------------------------------------------------------
 * Tasks of two hubs and plain threads join one thread at once, each with
 * its own timeout; every one gets the result, and the handle stays until
 * it is detached. */

static weft_thread *many_target;
static atomic_int many_ok, many_timeouts;
static weft_event many_go = WEFT_EVENT_INIT;

/* Returns 7 once the test lets it: every joiner has timed out once by
 * then, however slowly its thread or hub started (Valgrind). */
static void *wait_for_go(void *arg) {
  (void)arg;
  CHECK_EQ(weft_event_wait(&many_go, WEFT_FOREVER), 0);
  return IV(7);
}

static void join_many_target(void) {
  void *r;
  if (weft_thread_join(many_target, WEFT_MS(5), &r) == -ETIMEDOUT)
    atomic_fetch_add(&many_timeouts, 1);
  if (weft_thread_join(many_target, WEFT_SEC(10), &r) == 0 && VI(r) == 7)
    atomic_fetch_add(&many_ok, 1);
}

static void *joining_task(void *arg) {
  (void)arg;
  join_many_target();
  return NULL;
}

static void *hub_of_joiners(void *arg) {
  (void)arg;
  for (int i = 0; i < 10; i++)
    CHECK_EQ(weft_task_spawn(NULL, joining_task, NULL, NULL), 0);
  return NULL;
}

static void *run_hub_of_joiners(void *arg) {
  CHECK_EQ(weft_run(hub_of_joiners, arg, NULL), 0);
  return NULL;
}

static void *joining_thread(void *arg) {
  (void)arg;
  join_many_target();
  return NULL;
}

TEST(tasks_of_two_hubs_and_threads_join_one_thread) {
  CHECK_EQ(weft_thread_start(&many_target, wait_for_go, NULL, NULL), 0);
  pthread_t pt[6];
  for (int i = 0; i < 6; i++)
    CHECK_EQ(pthread_create(&pt[i], NULL,
                            i < 2 ? run_hub_of_joiners : joining_thread, NULL),
             0);
  for (int looks = 0; atomic_load(&many_timeouts) < 2 * 10 + 4; looks++) {
    CHECK(looks < 10000 * harness_timeout_multiplier());
    nap_ms(1);
  }
  nap_ms(20); /* most are in their second join now: woken by the end */
  CHECK_EQ(weft_event_set(&many_go), 0);
  for (int i = 0; i < 6; i++)
    pthread_join(pt[i], NULL);
  CHECK_EQ(atomic_load(&many_ok), 2 * 10 + 4);
  CHECK_EQ(atomic_load(&many_timeouts), 2 * 10 + 4);
  CHECK(!weft_thread_alive(many_target));
  void *r;
  CHECK_EQ(weft_thread_join(many_target, 0, &r), 0); /* still there */
  CHECK_EQ(VI(r), 7);
  CHECK_EQ(weft_thread_detach(many_target), 0);
}

/* --- exits from elsewhere ---------------------------------------------------
 * A non-daemon thread that calls exit() waits for the other non-daemon
 * threads, not for itself; a child of fork() does not wait for its
 * parent's threads; a weft thread that leaves through pthread_exit is
 * joined as if it had returned. */

static void *exit_from_thread(void *arg) {
  (void)arg;
  exit(0);
}

static void exit_from_a_thread_child(void *arg) {
  (void)arg;
  close(exit_pipe[0]);
  CHECK_EQ(weft_thread_start(NULL, late_writer, IV(100), NULL), 0);
  CHECK_EQ(weft_thread_start(NULL, exit_from_thread, NULL, NULL), 0);
  nap_ms(5000); /* the exit ends this long before */
  exit(3);
}

TEST(exit_from_a_non_daemon_thread_waits_for_the_others) {
  CHECK_EQ(pipe(exit_pipe), 0);
  char out[256];
  int status =
      harness_run_child(exit_from_a_thread_child, NULL, NULL, out, sizeof out);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(exit_pipe[1]);
  char buf[2];
  CHECK_EQ(read(exit_pipe[0], buf, 2), 1); /* the other one finished */
  close(exit_pipe[0]);
}

static void fork_child_exits(void *arg) {
  (void)arg;
  CHECK_EQ(weft_thread_start(NULL, sleep_then_return, IV(3000), NULL), 0);
  pid_t pid = fork();
  if (pid == 0)
    exit(0); /* must not wait for a thread that exists only in the parent */
  int status;
  int64_t t0 = harness_now_ns();
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(harness_now_ns() - t0 < WEFT_SEC(2));
  _exit(0); /* this child itself need not wait 3 s */
}

TEST(a_forked_child_does_not_wait_for_its_parents_threads) {
  char out[256];
  int status = harness_run_child(fork_child_exits, NULL, NULL, out, sizeof out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    harness_fail(__FILE__, __LINE__, "status %d:\n%s", status, out);
}

static void *leave_early(void *arg) {
  (void)arg;
  pthread_exit(IV(5));
}

TEST(a_thread_that_calls_pthread_exit_is_joined) {
  weft_thread *t;
  CHECK_EQ(weft_thread_start(&t, leave_early, NULL, NULL), 0);
  void *r = IV(1);
  CHECK_EQ(weft_thread_join(t, WEFT_SEC(10), &r), 0);
  CHECK_EQ(weft_thread_detach(t), 0);
  CHECK_PTR_EQ(r, NULL); /* pthread_exit's value is not the function's */
}

/* --- bad timeouts -----------------------------------------------------------
 * A negative timeout other than WEFT_FOREVER is -EINVAL, and the join does
 * nothing: the thread, running or finished, is neither waited for nor
 * released, and WEFT_FOREVER joins it after. From a thread and a task. */

static void *bad_timeouts(void *arg) {
  (void)arg;
  static const int64_t bad[] = {-2, -3, WEFT_MS(-1), INT64_MIN + 1, INT64_MIN};
  weft_thread *running, *finished;
  CHECK_EQ(weft_thread_start(&running, sleep_then_return, IV(30), NULL), 0);
  CHECK_EQ(weft_thread_start(&finished, add_one, IV(41), NULL), 0);
  while (weft_thread_alive(finished))
    nap_ms(1);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *r = IV(-1);
    CHECK_EQ(weft_thread_join(running, bad[i], &r), -EINVAL);
    CHECK_EQ(weft_thread_join(finished, bad[i], &r), -EINVAL);
    CHECK_EQ(VI(r), -1);
    CHECK(weft_thread_name(finished) != NULL); /* not released */
    CHECK_EQ(weft_thread_join(NULL, bad[i], NULL), -EINVAL);
  }
  void *r;
  CHECK_EQ(weft_thread_join(finished, WEFT_FOREVER, &r), 0);
  CHECK_EQ(weft_thread_detach(finished), 0);
  CHECK_EQ(VI(r), 42);
  CHECK_EQ(weft_thread_join(running, WEFT_FOREVER, &r), 0);
  CHECK_EQ(weft_thread_detach(running), 0);
  CHECK_EQ(VI(r), 7);
  return NULL;
}

TEST(a_bad_timeout_is_einval_and_changes_nothing) {
  bad_timeouts(NULL);
  CHECK_EQ(weft_run(bad_timeouts, NULL, NULL), 0);
}
