/*
 * Deadlines that span calls (weft_deadline_set) and the public clock
 * (weft_now): every wait of a task, or of a thread, ends at its deadline.
 */
#include <pthread.h>
#include <unistd.h>
#include <weft/hub.h>
#include <weft/io.h>
#include <weft/sync.h>

#include "harness.h"

/* Generous: a deadline must end a wait that would otherwise last for ever,
 * and not end it much too early; how late is a matter of load. */
#define SHORT WEFT_MS(100)

static int64_t since(int64_t t0) { return weft_now() - t0; }

TEST(the_clock_moves_forward) {
  int64_t a = weft_now();
  int64_t b = weft_now();
  CHECK(a > 0);
  CHECK(b >= a);
  CHECK(a - harness_now_ns() < WEFT_SEC(1)); /* the same clock */
}

static void *set_and_read(void *arg) {
  (void)arg;
  CHECK_EQ(weft_deadline(), WEFT_FOREVER);
  int64_t prev = 7;
  CHECK_EQ(weft_deadline_set(-2, &prev), -EINVAL);
  CHECK_EQ(prev, 7); /* bad input changes nothing */
  CHECK_EQ(weft_deadline(), WEFT_FOREVER);
  int64_t at = weft_now() + WEFT_SEC(100);
  CHECK_EQ(weft_deadline_set(at, &prev), 0);
  CHECK_EQ(prev, WEFT_FOREVER);
  CHECK_EQ(weft_deadline(), at);
  CHECK_EQ(weft_deadline_set(WEFT_FOREVER, &prev), 0);
  CHECK_EQ(prev, at);
  CHECK_EQ(weft_deadline(), WEFT_FOREVER);
  CHECK_EQ(weft_deadline_set(at, NULL), 0);
  return NULL;
}

TEST(set_returns_the_previous_and_rejects_bad_times) {
  CHECK_EQ(weft_run(set_and_read, NULL, NULL), 0);
  set_and_read(NULL); /* a thread has one too */
}

/* A reader that gets a byte now and then, each well within any per-call
 * timeout, is still cut off by a deadline over the whole exchange. */
static void *trickle(void *arg) {
  int fd = *(int *)arg;
  for (int i = 0; i < 100; i++) {
    if (weft_sleep(WEFT_MS(20)) != 0 || write(fd, "x", 1) != 1)
      break;
  }
  return NULL;
}

static void *read_under_deadline(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  weft_task *writer;
  CHECK_EQ(weft_task_spawn(&writer, trickle, &p[1], NULL), 0);
  int64_t t0 = weft_now();
  CHECK_EQ(weft_deadline_set(t0 + SHORT * 2, NULL), 0);
  int got = 0;
  ssize_t n;
  char c;
  while ((n = weft_io_read(p[0], &c, 1, WEFT_SEC(10))) == 1)
    got++;
  CHECK_EQ(n, -ETIMEDOUT);
  CHECK(got >= 1); /* several calls ran under the one deadline */
  CHECK(since(t0) >= SHORT * 2);
  CHECK(since(t0) < WEFT_SEC(5));
  weft_task_cancel(writer);
  CHECK_EQ(weft_task_join(writer, WEFT_FOREVER, NULL), 0);
  while (weft_io_read(p[0], &c, 1, 0) == 1)
    ;
  /* Data that is there is still read after the deadline. */
  CHECK_EQ(write(p[1], "y", 1), 1);
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_FOREVER), 1);
  CHECK_EQ(c, 'y');
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_FOREVER), -ETIMEDOUT);
  /* Cleared, a wait waits again for its own timeout. */
  CHECK_EQ(weft_deadline_set(WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_MS(1)), -ETIMEDOUT);
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(a_deadline_spans_several_reads) {
  CHECK_EQ(weft_run(read_under_deadline, NULL, NULL), 0);
}

static void *sleep_under_deadline(void *arg) {
  (void)arg;
  CHECK_EQ(weft_deadline_set(weft_now() + WEFT_SEC(100), NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(1)), 0); /* ends before the deadline */
  int64_t t0 = weft_now();
  CHECK_EQ(weft_deadline_set(t0 + SHORT, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_SEC(100)), -ETIMEDOUT);
  CHECK(since(t0) >= SHORT);
  CHECK_EQ(weft_sleep(WEFT_MS(1)), -ETIMEDOUT); /* passed: at once */
  return NULL;
}

TEST(a_deadline_cuts_a_sleep_short) {
  CHECK_EQ(weft_run(sleep_under_deadline, NULL, NULL), 0);
}

static void *hold(void *arg) {
  weft_lock *l = arg;
  CHECK_EQ(weft_lock_acquire(l, WEFT_FOREVER), 0);
  weft_sleep(SHORT * 4);
  weft_lock_release(l);
  return NULL;
}

static void *block_for_ever(void *arg) {
  (void)arg;
  weft_sleep(WEFT_SEC(1000));
  return NULL;
}

static void *lock_and_join_under_deadline(void *arg) {
  (void)arg;
  weft_lock lock, *l = &lock;
  CHECK_EQ(weft_lock_init(l, "l"), 0);
  weft_task *holder, *sleeper;
  CHECK_EQ(weft_task_spawn(&holder, hold, l, NULL), 0);
  CHECK_EQ(weft_task_spawn(&sleeper, block_for_ever, NULL, NULL), 0);
  weft_yield();
  CHECK_EQ(weft_deadline_set(weft_now() + SHORT, NULL), 0);
  CHECK_EQ(weft_lock_acquire(l, WEFT_FOREVER), -ETIMEDOUT);
  CHECK_EQ(weft_deadline_set(weft_now() + SHORT, NULL), 0);
  CHECK_EQ(weft_task_join(sleeper, WEFT_FOREVER, NULL), -ETIMEDOUT);
  CHECK_EQ(weft_deadline_set(WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_cancel(sleeper), 0);
  CHECK_EQ(weft_task_join(sleeper, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(holder, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_deadline_ends_lock_and_join_waits) {
  CHECK_EQ(weft_run(lock_and_join_under_deadline, NULL, NULL), 0);
}

/* Each task has its own: a deadline set by one does not touch another, nor
 * a task it spawns. */
static void *child_has_none(void *arg) {
  (void)arg;
  CHECK_EQ(weft_deadline(), WEFT_FOREVER);
  CHECK_EQ(weft_sleep(SHORT * 2), 0);
  return NULL;
}

static void *tasks_have_their_own(void *arg) {
  (void)arg;
  CHECK_EQ(weft_deadline_set(weft_now() + SHORT, NULL), 0);
  weft_task *child;
  CHECK_EQ(weft_task_spawn(&child, child_has_none, NULL, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_SEC(100)), -ETIMEDOUT);
  CHECK_EQ(weft_deadline_set(WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(child, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(each_task_has_its_own_deadline) {
  CHECK_EQ(weft_run(tasks_have_their_own, NULL, NULL), 0);
}

static void *thread_reads(void *arg) {
  int fd = *(int *)arg;
  int64_t t0 = weft_now();
  CHECK_EQ(weft_deadline_set(t0 + SHORT, NULL), 0);
  char c;
  CHECK_EQ(weft_io_read(fd, &c, 1, WEFT_FOREVER), -ETIMEDOUT);
  CHECK(since(t0) >= SHORT);
  CHECK_EQ(weft_deadline_set(WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_thread_outside_a_task_has_a_deadline_too) {
  int p[2];
  CHECK_EQ(pipe(p), 0);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, thread_reads, &p[0]), 0);
  CHECK_EQ(pthread_join(t, NULL), 0);
  /* Another thread's deadline is not this thread's. */
  CHECK_EQ(weft_deadline(), WEFT_FOREVER);
  close(p[0]);
  close(p[1]);
}

/* A condition's wait ends at the deadline, and still returns with its lock
 * held, however long another task keeps the lock. */
static weft_rlock cond_lock = WEFT_RLOCK_INIT;
static weft_cond cond;

static void *hold_past_the_deadline(void *arg) {
  (void)arg;
  CHECK_EQ(weft_rlock_acquire(&cond_lock, WEFT_FOREVER), 0);
  weft_sleep(SHORT * 3); /* the waiter's deadline passes meanwhile */
  CHECK_EQ(weft_rlock_release(&cond_lock), 0);
  return NULL;
}

static void *cond_under_deadline(void *arg) {
  (void)arg;
  CHECK_EQ(weft_cond_init(&cond, &cond_lock), 0);
  CHECK_EQ(weft_rlock_acquire(&cond_lock, WEFT_FOREVER), 0);
  weft_task *holder;
  CHECK_EQ(weft_task_spawn(&holder, hold_past_the_deadline, NULL, NULL), 0);
  CHECK_EQ(weft_deadline_set(weft_now() + SHORT, NULL), 0);
  /* The holder takes the lock while this task waits, and keeps it past
   * the deadline: the wait ends, and takes the lock back all the same. */
  CHECK_EQ(weft_cond_wait(&cond, WEFT_FOREVER), -ETIMEDOUT);
  CHECK_EQ(weft_rlock_release(&cond_lock), 0); /* held: no -EPERM */
  CHECK_EQ(weft_deadline_set(WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(holder, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_condition_wait_past_the_deadline_returns_with_its_lock) {
  CHECK_EQ(weft_run(cond_under_deadline, NULL, NULL), 0);
}

/* After the deadline, a wait for an fd that is ready answers. */
static void *wait_after_deadline(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(write(p[1], "x", 1), 1);
  CHECK_EQ(weft_deadline_set(weft_now() - 1, NULL), 0);
  CHECK_EQ(weft_io_wait(p[0], WEFT_IO_READ, WEFT_FOREVER), WEFT_IO_READ);
  char c;
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_FOREVER), 1);
  CHECK_EQ(weft_io_wait(p[0], WEFT_IO_READ, WEFT_FOREVER), -ETIMEDOUT);
  CHECK_EQ(weft_deadline_set(WEFT_FOREVER, NULL), 0);
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(a_wait_for_a_ready_fd_answers_after_the_deadline) {
  CHECK_EQ(weft_run(wait_after_deadline, NULL, NULL), 0);
}
