/*
 * Signals as events (weft_signal_wait), the dump on a signal, and daemon
 * tasks, which the dump rides on: a task waits for a signal while others
 * run, timeouts and cancellation, one waiter per signal, outside a task, a
 * dump that a signal triggers, daemons cancelled when the rest finish, and
 * a deadlock still reported while a daemon waits.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

static sigset_t just(int signo) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  return set;
}

static void *raise_later(void *arg) {
  CHECK_EQ(weft_sleep(WEFT_MS(10)), 0);
  CHECK_EQ(kill(getpid(), (int)VI(arg)), 0);
  return NULL;
}

static void *wait_usr1(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, raise_later, IV(SIGUSR1), NULL), 0);
  sigset_t set = just(SIGUSR1);
  sigaddset(&set, SIGUSR2);
  CHECK_EQ(weft_signal_wait(&set, WEFT_SEC(10)), SIGUSR1);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  /* Nothing pending any more: a poll times out. */
  CHECK_EQ(weft_signal_wait(&set, 0), -ETIMEDOUT);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_signal_wait(&set, WEFT_MS(20)), -ETIMEDOUT);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(20));
  /* A signal that came while nobody waited is taken by the next wait. */
  CHECK_EQ(kill(getpid(), SIGUSR2), 0);
  CHECK_EQ(weft_signal_wait(&set, WEFT_SEC(10)), SIGUSR2);
  return NULL;
}

TEST(a_task_waits_for_a_signal_while_others_run) {
  CHECK_EQ(weft_run(wait_usr1, NULL, NULL), 0);
}

static void *wait_and_record(void *arg) {
  sigset_t set = just(SIGUSR1);
  *(int *)arg = weft_signal_wait(&set, WEFT_SEC(10));
  return NULL;
}

/* Two waiters for one signal: each signal wakes one of them. */
static void *two_waiters(void *arg) {
  (void)arg;
  int a = 0, b = 0;
  weft_task *ta, *tb;
  CHECK_EQ(weft_task_spawn(&ta, wait_and_record, &a, NULL), 0);
  CHECK_EQ(weft_task_spawn(&tb, wait_and_record, &b, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(5)), 0);
  CHECK_EQ(kill(getpid(), SIGUSR1), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(20)), 0);
  CHECK((a == SIGUSR1) + (b == SIGUSR1) == 1);
  CHECK_EQ(kill(getpid(), SIGUSR1), 0);
  CHECK_EQ(weft_task_join(ta, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(tb, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(a, SIGUSR1);
  CHECK_EQ(b, SIGUSR1);
  return NULL;
}

TEST(each_signal_wakes_one_waiter) {
  CHECK_EQ(weft_run(two_waiters, NULL, NULL), 0);
}

static void *cancel_a_signal_wait(void *arg) {
  (void)arg;
  int got = 0;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, wait_and_record, &got, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(5)), 0);
  CHECK_EQ(weft_task_cancel(t), 0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(got, -ECANCELED);
  return NULL;
}

TEST(a_signal_wait_is_cancellable) {
  CHECK_EQ(weft_run(cancel_a_signal_wait, NULL, NULL), 0);
}

static void *signal_thread(void *arg) {
  (void)arg;
  usleep(10000);
  kill(getpid(), SIGUSR2);
  return NULL;
}

TEST(outside_a_task_the_thread_waits) {
  sigset_t set = just(SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* before the thread exists */
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, signal_thread, NULL), 0);
  CHECK_EQ(weft_signal_wait(&set, WEFT_SEC(10)), SIGUSR2);
  pthread_join(th, NULL);
  CHECK_EQ(weft_signal_wait(&set, WEFT_MS(5)), -ETIMEDOUT);
}

static int dump_pipe[2];

static void *sleeper(void *arg) {
  (void)arg;
  weft_sleep(WEFT_SEC(3600));
  return NULL;
}

static void *dump_when_signalled(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_dump_on_signal(SIGUSR1, dump_pipe[1]), 0);
  weft_task *s;
  CHECK_EQ(
      weft_task_spawn(&s, sleeper, NULL, &(weft_task_opts){.name = "long-nap"}),
      0);
  CHECK_EQ(weft_yield(), 0);
  CHECK_EQ(kill(getpid(), SIGUSR1), 0);
  char buf[4096];
  ssize_t n = weft_io_read(dump_pipe[0], buf, sizeof buf - 1, WEFT_SEC(10));
  CHECK(n > 0);
  buf[n] = 0;
  CHECK_STR_HAS(buf, "weft: hub: ");
  CHECK_STR_HAS(buf, "task 'long-nap'");
  CHECK_STR_HAS(buf, "blocked in sleep");
  CHECK_STR_HAS(buf, "task 'weft-dump-on-signal'");
  CHECK_EQ(weft_task_cancel(s), 0);
  CHECK_EQ(weft_task_join(s, WEFT_FOREVER, NULL), 0);
  return IV(7); /* the daemon is left: weft_run must still return */
}

TEST(a_signal_dumps_the_hub_and_the_dumper_ends_with_it) {
  CHECK_EQ(pipe(dump_pipe), 0);
  void *r;
  CHECK_EQ(weft_run(dump_when_signalled, NULL, &r), 0);
  CHECK_EQ(VI(r), 7);
  close(dump_pipe[0]);
  close(dump_pipe[1]);
}

/* The dump's fd is a pipe whose reader is gone when the signal comes: the
 * process lives (no SIGPIPE), and the dumper goes on: once the fd number
 * holds a pipe with a reader, the next signal's dump arrives. */
static void *dump_to_a_reader_gone(void *arg) {
  (void)arg;
  int gone[2], good[2];
  CHECK_EQ(pipe(gone), 0);
  CHECK_EQ(pipe(good), 0);
  close(gone[0]);
  int fd = gone[1];
  CHECK_EQ(weft_hub_dump_on_signal(SIGUSR1, fd), 0);
  CHECK_EQ(weft_yield(), 0);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(weft_sleep(WEFT_MS(50)), 0); /* the dumper writes, and fails */
  }
  CHECK_EQ(dup2(good[1], fd), fd);
  CHECK_EQ(kill(getpid(), SIGUSR1), 0);
  char buf[4096];
  ssize_t n = weft_io_read(good[0], buf, sizeof buf - 1, WEFT_SEC(10));
  CHECK(n > 0);
  buf[n] = 0;
  CHECK_STR_HAS(buf, "weft: hub: ");
  CHECK_STR_HAS(buf, "task 'weft-dump-on-signal'");
  close(good[0]);
  close(good[1]);
  return NULL;
}

TEST(a_signal_dump_to_a_reader_gone_neither_kills_nor_stops_the_dumper) {
  signal(SIGPIPE, SIG_DFL);
  CHECK_EQ(weft_run(dump_to_a_reader_gone, NULL, NULL), 0);
}

static void *joins(void *arg) {
  weft_task_join(*(weft_task **)arg, WEFT_FOREVER, NULL);
  return NULL;
}

static void *deadlock_with_a_watcher(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_dump_on_signal(SIGUSR1, 2), 0);
  static weft_task *a, *b;
  CHECK_EQ(weft_task_spawn(&a, joins, &b, &(weft_task_opts){.name = "alice"}),
           0);
  CHECK_EQ(weft_task_spawn(&b, joins, &a, &(weft_task_opts){.name = "bob"}), 0);
  return NULL; /* alice and bob join each other for ever */
}

static void deadlock_child(void *arg) {
  (void)arg;
  int rc = weft_run(deadlock_with_a_watcher, NULL, NULL);
  exit(rc == -EDEADLK ? 0 : 1);
}

TEST(a_daemon_waiting_for_a_signal_does_not_hide_a_deadlock) {
  char out[4096];
  int status = harness_run_child(deadlock_child, NULL, NULL, out, sizeof out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    harness_fail(__FILE__, __LINE__, "status %d:\n%s", status, out);
  CHECK_STR_HAS(out, "weft: deadlock");
  CHECK_STR_HAS(out, "task 'alice'");
}

static int daemon_saw;

static void *daemon_loop(void *arg) {
  (void)arg;
  int rc;
  while ((rc = weft_sleep(WEFT_MS(1))) == 0)
    ;
  daemon_saw = rc;
  /* Cancelled: it may still clean up, and spawn no new daemon that would
   * hold the hub (a new one is cancelled at once). */
  weft_task *late;
  CHECK_EQ(
      weft_task_spawn(&late, sleeper, NULL, &(weft_task_opts){.daemon = true}),
      0);
  CHECK_EQ(weft_task_join(late, WEFT_FOREVER, NULL), -ECANCELED);
  return NULL;
}

static void *main_with_daemon(void *arg) {
  (void)arg;
  CHECK_EQ(weft_task_spawn(NULL, daemon_loop, NULL,
                           &(weft_task_opts){.daemon = true}),
           0);
  CHECK_EQ(weft_sleep(WEFT_MS(10)), 0);
  CHECK_EQ(daemon_saw, 0);
  return NULL;
}

TEST(daemon_tasks_are_cancelled_when_the_others_finish) {
  CHECK_EQ(weft_run(main_with_daemon, NULL, NULL), 0);
  CHECK_EQ(daemon_saw, -ECANCELED);
}

static void *bad_input(void *arg) {
  (void)arg;
  CHECK_EQ(weft_signal_wait(NULL, 0), -EINVAL);
  CHECK_EQ(weft_hub_dump_on_signal(SIGKILL, 2), -EINVAL);
  CHECK_EQ(weft_hub_dump_on_signal(0, 2), -EINVAL);
  CHECK_EQ(weft_hub_dump_on_signal(1000, 2), -EINVAL);
  CHECK_EQ(weft_hub_dump_on_signal(SIGUSR1, -1), -EBADF);
  return NULL;
}

TEST(bad_input_is_an_error_code) {
  CHECK_EQ(weft_run(bad_input, NULL, NULL), 0);
  CHECK_EQ(weft_signal_wait(NULL, 0), -EINVAL);
  CHECK_EQ(weft_hub_dump_on_signal(SIGUSR1, 2), -EPERM);
}

/* The signal is blocked when weft_hub_dump_on_signal returns, not when
 * its daemon first runs: one raised at once waits for the daemon. And the
 * daemon sees it while other tasks keep the hub busy (it looks at its fd
 * every few dozen turns rather than every turn). */
static void *spin(void *arg) {
  (void)arg;
  while (weft_yield() == 0)
    ;
  return NULL;
}

static void *dump_at_once_while_busy(void *arg) {
  (void)arg;
  weft_task *spinners[3];
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_task_spawn(&spinners[i], spin, NULL, NULL), 0);
  CHECK_EQ(weft_hub_dump_on_signal(SIGUSR2, dump_pipe[1]), 0);
  CHECK_EQ(raise(SIGUSR2), 0); /* before the daemon ever ran */
  char buf[4096];
  ssize_t n;
  while ((n = read(dump_pipe[0], buf, sizeof buf - 1)) < 0)
    CHECK_EQ(weft_yield(), 0); /* busy, as the spinners are */
  buf[n] = 0;
  CHECK_STR_HAS(buf, "weft: hub: ");
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(weft_task_cancel(spinners[i]), 0);
    CHECK_EQ(weft_task_join(spinners[i], WEFT_FOREVER, NULL), 0);
  }
  return NULL;
}

TEST(a_dump_signal_raised_at_once_waits_for_the_busy_hub) {
  CHECK_EQ(pipe2(dump_pipe, O_NONBLOCK), 0);
  CHECK_EQ(weft_run(dump_at_once_while_busy, NULL, NULL), 0);
  close(dump_pipe[0]);
  close(dump_pipe[1]);
}

/* When the run gives up on a deadlock, the daemons are cancelled and run
 * to their end, so that what they hold (the dump's signalfd) is released. */
static int daemon_cleaned_up;

static void *watcher(void *arg) {
  (void)arg;
  sigset_t set = just(SIGUSR1);
  int rc = weft_signal_wait(&set, WEFT_FOREVER);
  daemon_cleaned_up = rc == -ECANCELED;
  return NULL;
}

static void *deadlock_and_daemon(void *arg) {
  (void)arg;
  CHECK_EQ(
      weft_task_spawn(NULL, watcher, NULL, &(weft_task_opts){.daemon = true}),
      0);
  static weft_task *a, *b;
  CHECK_EQ(weft_task_spawn(&a, joins, &b, NULL), 0);
  CHECK_EQ(weft_task_spawn(&b, joins, &a, NULL), 0);
  return NULL;
}

static void deadlock_daemon_child(void *arg) {
  (void)arg;
  int rc = weft_run(deadlock_and_daemon, NULL, NULL);
  exit(rc == -EDEADLK && daemon_cleaned_up ? 0 : 1);
}

TEST(a_deadlocked_run_lets_its_daemons_finish) {
  char out[4096];
  int status =
      harness_run_child(deadlock_daemon_child, NULL, NULL, out, sizeof out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    harness_fail(__FILE__, __LINE__, "status %d:\n%s", status, out);
  CHECK_STR_HAS(out, "task #");
}

/* --- bad timeouts -----------------------------------------------------------
 * A negative timeout other than WEFT_FOREVER is -EINVAL before anything is
 * done: the signals of the set are not blocked, and one pending is not
 * taken; WEFT_FOREVER then takes it. In a task and outside one. */

static bool blocked(int signo) {
  sigset_t now;
  CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
  return sigismember(&now, signo);
}

static void *bad_timeouts(void *arg) {
  (void)arg;
  static const int64_t bad[] = {-2, -3, WEFT_MS(-1), INT64_MIN + 1, INT64_MIN};
  sigset_t usr1 = just(SIGUSR1), usr2 = just(SIGUSR2);
  CHECK(!blocked(SIGUSR1));
  CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr2, NULL), 0);
  CHECK_EQ(raise(SIGUSR2), 0); /* pending, as it is blocked */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_EQ(weft_signal_wait(&usr1, bad[i]), -EINVAL);
    CHECK(!blocked(SIGUSR1));
    CHECK_EQ(weft_signal_wait(&usr2, bad[i]), -EINVAL);
    sigset_t pending;
    CHECK_EQ(sigpending(&pending), 0);
    CHECK(sigismember(&pending, SIGUSR2));
    CHECK_EQ(weft_signal_wait(NULL, bad[i]), -EINVAL);
  }
  CHECK_EQ(weft_signal_wait(&usr2, WEFT_FOREVER), SIGUSR2);
  return NULL;
}

TEST(a_bad_timeout_is_einval_and_blocks_no_signal) {
  bad_timeouts(NULL);
  CHECK_EQ(weft_run(bad_timeouts, NULL, NULL), 0);
}
