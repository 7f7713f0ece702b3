/*
 * Cooperative waits on fds: readiness in a task while others run, writes
 * that wait for room, timeouts, cancellation, a close that wakes, hang-ups,
 * one waiter per direction, I/O not starved by busy tasks, no false
 * deadlock while a task waits on an fd, and the same calls outside a task.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

static void run(weft_task_fn fn, void *arg) {
  CHECK_EQ(weft_run(fn, arg, NULL), 0);
}

static int fds[2];

static void *write_later(void *arg) {
  CHECK_EQ(weft_sleep(WEFT_MS(VI(arg))), 0);
  CHECK_EQ(write(fds[1], "x", 1), 1);
  return NULL;
}

static void *read_wait(void *arg) {
  (void)arg;
  weft_task *w;
  CHECK_EQ(weft_task_spawn(&w, write_later, IV(20), NULL), 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(20));
  char c;
  CHECK_EQ(read(fds[0], &c, 1), 1);
  /* Nothing more to read: a poll times out at once. */
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_READ, 0), -ETIMEDOUT);
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_READ, WEFT_MS(10)), -ETIMEDOUT);
  CHECK_EQ(weft_task_join(w, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_task_waits_for_a_read_while_others_run) {
  CHECK_EQ(pipe(fds), 0);
  run(read_wait, NULL);
  close(fds[0]);
  close(fds[1]);
}

static void *drain_later(void *arg) {
  (void)arg;
  CHECK_EQ(weft_sleep(WEFT_MS(20)), 0);
  char buf[4096];
  while (read(fds[1], buf, sizeof buf) > 0)
    ;
  return NULL;
}

static void *write_wait(void *arg) {
  (void)arg;
  /* Fill the socket until it would block. */
  char buf[4096] = {0};
  while (write(fds[0], buf, sizeof buf) > 0)
    ;
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_WRITE, 0), -ETIMEDOUT);
  weft_task *d;
  CHECK_EQ(weft_task_spawn(&d, drain_later, NULL, NULL), 0);
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_READ | WEFT_IO_WRITE, WEFT_SEC(10)),
           WEFT_IO_WRITE);
  CHECK_EQ(weft_task_join(d, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_task_waits_for_room_to_write) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  run(write_wait, NULL);
  close(fds[0]);
  close(fds[1]);
}

static void *wait_forever(void *arg) {
  return IV(weft_io_wait(VI(arg), WEFT_IO_READ, WEFT_FOREVER));
}

static void *cancel_and_close(void *arg) {
  (void)arg;
  weft_task *a, *b, *c;
  CHECK_EQ(weft_task_spawn(&a, wait_forever, IV(fds[0]), NULL), 0);
  CHECK_EQ(weft_yield(), 0);
  /* A second reader of the same fd is refused. */
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_READ, WEFT_MS(10)), -EBUSY);
  CHECK_EQ(weft_task_cancel(a), 0);
  void *r;
  CHECK_EQ(weft_task_join(a, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  /* A cancelled waiter gave the fd back: another may wait on it. */
  CHECK_EQ(weft_task_spawn(&b, wait_forever, IV(fds[0]), NULL), 0);
  CHECK_EQ(weft_task_spawn(&c, wait_forever, IV(fds[1]), NULL), 0);
  CHECK_EQ(weft_yield(), 0);
  CHECK_EQ(weft_io_close(fds[0]), 0);
  CHECK_EQ(weft_task_join(b, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -EBADF);
  CHECK(fcntl(fds[0], F_GETFD) < 0); /* really closed */
  /* The peer's end sees the hang-up: readable (a read gives EOF). */
  CHECK_EQ(weft_task_join(c, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), WEFT_IO_READ);
  CHECK_EQ(weft_io_close(fds[1]), 0);
  CHECK_EQ(weft_io_close(fds[1]), -EBADF);
  return NULL;
}

static void *take_over(void *arg) {
  (void)arg;
  weft_task *a;
  CHECK_EQ(weft_task_spawn(&a, wait_forever, IV(fds[0]), NULL), 0);
  CHECK_EQ(weft_yield(), 0);
  /* Cancelled but not yet run again: its slot is free to take. */
  CHECK_EQ(weft_task_cancel(a), 0);
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_READ, WEFT_MS(10)), -ETIMEDOUT);
  void *r;
  CHECK_EQ(weft_task_join(a, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  return NULL;
}

TEST(a_cancelled_waiters_fd_can_be_taken_over_at_once) {
  CHECK_EQ(pipe(fds), 0);
  run(take_over, NULL);
  close(fds[0]);
  close(fds[1]);
}

static void *close_after_ready(void *arg) {
  (void)arg;
  weft_task *a;
  CHECK_EQ(weft_task_spawn(&a, wait_forever, IV(fds[0]), NULL), 0);
  CHECK_EQ(weft_yield(), 0); /* a waits */
  CHECK_EQ(write(fds[1], "x", 1), 1);
  /* This yield ends the turn with this task queued: the hub polls, finds
   * the fd ready and queues a behind it, so this task runs first and
   * closes while a is woken but has not run. */
  CHECK_EQ(weft_yield(), 0);
  CHECK_EQ(weft_io_close(fds[0]), 0);
  /* The fd number comes back for a new pipe at once. */
  int again[2];
  CHECK_EQ(pipe(again), 0);
  void *r;
  CHECK_EQ(weft_task_join(a, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -EBADF); /* not the readiness it was woken with */
  close(again[0]);
  close(again[1]);
  return NULL;
}

TEST(a_close_reaches_a_waiter_woken_but_not_yet_run) {
  CHECK_EQ(pipe(fds), 0);
  run(close_after_ready, NULL);
  close(fds[1]);
}

TEST(cancel_and_close_wake_a_waiter) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  run(cancel_and_close, NULL);
}

static void *write_from_thread(void *arg) {
  usleep((useconds_t)VI(arg));
  CHECK_EQ(write(fds[1], "t", 1), 1);
  return NULL;
}

static void *wait_alone(void *arg) {
  (void)arg;
  /* The only task, waiting on an fd with no timeout: not a deadlock. */
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_READ, WEFT_FOREVER), WEFT_IO_READ);
  return NULL;
}

TEST(a_task_waiting_on_an_fd_is_no_deadlock) {
  CHECK_EQ(pipe(fds), 0);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, write_from_thread, IV(50000)), 0);
  run(wait_alone, NULL);
  pthread_join(t, NULL);
  close(fds[0]);
  close(fds[1]);
}

static int got_io;

static void *busy_yielder(void *arg) {
  (void)arg;
  int64_t t0 = harness_now_ns();
  while (!got_io && harness_now_ns() - t0 < WEFT_SEC(10))
    CHECK_EQ(weft_yield(), 0);
  return NULL;
}

static void *io_while_busy(void *arg) {
  (void)arg;
  weft_task *b;
  got_io = 0;
  CHECK_EQ(weft_task_spawn(&b, busy_yielder, NULL, NULL), 0);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, write_from_thread, IV(20000)), 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
  got_io = 1;
  CHECK(harness_now_ns() - t0 < WEFT_SEC(5)); /* not starved by the yielder */
  pthread_join(t, NULL);
  CHECK_EQ(weft_task_join(b, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(busy_tasks_do_not_starve_io) {
  CHECK_EQ(pipe(fds), 0);
  run(io_while_busy, NULL);
  close(fds[0]);
  close(fds[1]);
}

TEST(outside_a_task_the_thread_waits) {
  CHECK_EQ(pipe(fds), 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_READ, WEFT_MS(20)), -ETIMEDOUT);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(20));
  CHECK_EQ(weft_io_wait(fds[1], WEFT_IO_WRITE, 0), WEFT_IO_WRITE);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, write_from_thread, IV(20000)), 0);
  CHECK_EQ(weft_io_wait(fds[0], WEFT_IO_READ, WEFT_FOREVER), WEFT_IO_READ);
  pthread_join(t, NULL);
  close(fds[1]);
  CHECK_EQ(weft_io_close(fds[0]), 0);
}

static void *bad_input(void *arg) {
  (void)arg;
  CHECK_EQ(weft_io_wait(-1, WEFT_IO_READ, 0), -EBADF);
  CHECK_EQ(weft_io_wait(0, 0, 0), -EINVAL);
  CHECK_EQ(weft_io_wait(0, 8, 0), -EINVAL);
  int f = open("/dev/null", O_RDONLY);
  CHECK(f >= 0);
  int rc = weft_io_wait(f, WEFT_IO_READ, WEFT_MS(10));
  /* epoll refuses regular files and /dev/null alike (-EPERM); poll(2)
   * reports them always ready. */
  CHECK(rc == -EPERM || rc == WEFT_IO_READ);
  close(f);
  CHECK_EQ(weft_io_wait(f, WEFT_IO_READ, WEFT_MS(10)), -EBADF);
  return NULL;
}

TEST(bad_input_is_an_error_code) {
  CHECK_EQ(weft_io_wait(-1, WEFT_IO_READ, 0), -EBADF);
  CHECK_EQ(weft_io_close(-1), -EBADF);
  run(bad_input, NULL);
}

/* --- bad timeouts -----------------------------------------------------------
 * A negative timeout other than WEFT_FOREVER is -EINVAL, even on an fd that
 * is ready (the wait would return at once), and sets no O_NONBLOCK;
 * WEFT_FOREVER then reports it ready. In a task and outside one. */

static void *bad_timeouts(void *arg) {
  (void)arg;
  static const int64_t bad[] = {-2, -3, WEFT_MS(-1), INT64_MIN + 1, INT64_MIN};
  int p[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(write(p[1], "x", 1), 1);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_EQ(weft_io_wait(p[0], WEFT_IO_READ, bad[i]), -EINVAL);
    CHECK_EQ(weft_io_wait(p[1], WEFT_IO_WRITE, bad[i]), -EINVAL);
    CHECK_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
  }
  CHECK_EQ(weft_io_wait(p[0], WEFT_IO_READ, WEFT_FOREVER), WEFT_IO_READ);
  CHECK_EQ(weft_io_wait(p[1], WEFT_IO_WRITE, WEFT_FOREVER), WEFT_IO_WRITE);
  CHECK_EQ(weft_io_close(p[0]), 0);
  CHECK_EQ(weft_io_close(p[1]), 0);
  return NULL;
}

TEST(a_bad_timeout_is_einval) {
  run(bad_timeouts, NULL);
  bad_timeouts(NULL);
}
