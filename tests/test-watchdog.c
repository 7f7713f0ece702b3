/*
 * The deadlock watchdog: two threads crossing Locks, a task and a thread
 * crossing an RLock and a Lock, and three threads round a cycle are each
 * reported once, by their text, naming every waiter, lock and holder;
 * busy locks taken in one order, and a holder that is just slow, report
 * nothing; WEFT_WATCHDOG starts it from the environment; a child of fork
 * has none running; bad input changes nothing.
 *
 * Each deadlock is made on Locks that anyone may release, so that the test
 * can end it by releasing one from outside, once the report is read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
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

#define SCAN WEFT_MS(10)

static int report_pipe[2];

/* Starts the watchdog writing into a pipe the test reads. */
static void start_watchdog(void) {
  CHECK_EQ(pipe(report_pipe), 0);
  CHECK_EQ(weft_watchdog_start(SCAN, report_pipe[1]), 0);
}

static void stop_watchdog(void) {
  CHECK_EQ(weft_watchdog_stop(), 0);
  CHECK_EQ(weft_watchdog_stop(), -ESRCH);
  close(report_pipe[0]);
  close(report_pipe[1]);
}

/* Reads what the watchdog writes for up to ms milliseconds, or until what
 * it has read holds `until` (NULL: the whole time), into buf. */
static void read_reports(char *buf, size_t cap, int ms, const char *until) {
  size_t len = strlen(buf);
  int64_t end = harness_now_ns() + (int64_t)ms * 1000000;
  while (len + 1 < cap && !(until && strstr(buf, until))) {
    int64_t left = (end - harness_now_ns()) / 1000000;
    if (left <= 0)
      break;
    struct pollfd p = {.fd = report_pipe[0], .events = POLLIN};
    if (poll(&p, 1, (int)left) <= 0)
      continue;
    ssize_t n = read(report_pipe[0], buf + len, cap - 1 - len);
    CHECK(n > 0);
    len += (size_t)n;
    buf[len] = '\0';
  }
}

static void nap(int64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

static int wait_ms(int ms) { return (int)(ms * harness_timeout_multiplier()); }

static size_t count(const char *s, const char *what) {
  size_t n = 0;
  for (; (s = strstr(s, what)) != NULL; s++)
    n++;
  return n;
}

/* --- two threads crossing two Locks ------------------------------------- */

static weft_lock x, y, z;
static atomic_int holding;

struct cross {
  weft_lock *first, *second;
  int parties; /* take the second once this many hold their first */
};

/* Takes first, waits until every party holds its own, then takes second
 * (the deadlock), and frees both; returns the second release's result
 * (another may have freed first meanwhile: a Lock is anyone's to free). */
static void *cross(void *arg) {
  struct cross *c = arg;
  CHECK_EQ(weft_lock_acquire(c->first, WEFT_FOREVER), 0);
  atomic_fetch_add(&holding, 1);
  while (atomic_load(&holding) < c->parties)
    nap(WEFT_MS(1));
  CHECK_EQ(weft_lock_acquire(c->second, WEFT_FOREVER), 0);
  CHECK_EQ(weft_lock_release(c->second), 0);
  return IV(weft_lock_release(c->first));
}

TEST(two_threads_crossing_locks_are_reported_once) {
  weft_lock_init(&x, "x");
  weft_lock_init(&y, "y");
  atomic_store(&holding, 0);
  start_watchdog();
  struct cross ab = {&x, &y, 2}, ba = {&y, &x, 2};
  weft_thread *a, *b;
  CHECK_EQ(weft_thread_start(&a, cross, &ab, &(weft_thread_opts){.name = "a"}),
           0);
  CHECK_EQ(weft_thread_start(&b, cross, &ba, &(weft_thread_opts){.name = "b"}),
           0);
  char out[4096] = "";
  read_reports(out, sizeof out, wait_ms(10000), "held by thread 'a'\n");
  CHECK_STR_HAS(out, "weft: deadlock (watchdog): 2 tasks or threads wait");
  CHECK_STR_HAS(out, "thread 'a' waits for lock 'y' (at test-watchdog+0x");
  CHECK_STR_HAS(out, " (cross+0x"); /* a static function, by name */
  CHECK_STR_HAS(out, "), held by thread 'b'\n");
  CHECK_STR_HAS(out, "thread 'b' waits for lock 'x' (at test-watchdog+0x");
  CHECK_STR_HAS(out, "), held by thread 'a'\n");
  /* Once: more scans see the same cycle and say nothing more. */
  read_reports(out, sizeof out, 10 * (int)(SCAN / 1000000), NULL);
  CHECK_EQ(count(out, "weft: deadlock"), 1);
  /* Freeing x from outside ends it: b goes first, then a (whose release
   * of x finds it free: -EPERM). */
  CHECK_EQ(weft_lock_release(&x), 0);
  void *ra, *rb;
  CHECK_EQ(weft_thread_join(a, WEFT_FOREVER, &ra), 0);
  CHECK_EQ(weft_thread_detach(a), 0);
  CHECK_EQ(weft_thread_join(b, WEFT_FOREVER, &rb), 0);
  CHECK_EQ(weft_thread_detach(b), 0);
  CHECK_EQ(VI(rb), 0);
  CHECK_EQ(VI(ra), -EPERM);
  stop_watchdog();
}

/* --- a task and a thread crossing an RLock and a Lock ------------------- */

static weft_rlock r;
static atomic_int task_holds_r;

/* In a task: takes r, then x (held by the thread). */
static void *task_r_then_x(void *arg) {
  (void)arg;
  CHECK_EQ(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
  atomic_store(&task_holds_r, 1);
  CHECK_EQ(weft_lock_acquire(&x, WEFT_FOREVER), 0);
  CHECK_EQ(weft_lock_release(&x), 0);
  CHECK_EQ(weft_rlock_release(&r), 0);
  return NULL;
}

static void *hub_thread(void *arg) {
  (void)arg;
  CHECK_EQ(weft_run(task_r_then_x, NULL, NULL), 0); /* its task: 'main' */
  return NULL;
}

static char reader_saw[4096];

static void *read_then_free_x(void *arg) {
  (void)arg;
  read_reports(reader_saw, sizeof reader_saw, wait_ms(10000), "weft: deadlock");
  CHECK_EQ(weft_lock_release(&x), 0);
  return NULL;
}

TEST(a_task_and_a_thread_crossing_an_rlock_and_a_lock_are_reported) {
  weft_lock_init(&x, "x");
  weft_rlock_init(&r, "r");
  start_watchdog();
  CHECK_EQ(weft_lock_acquire(&x, 0), 0); /* the main thread holds x */
  weft_thread *hub;
  CHECK_EQ(weft_thread_start(&hub, hub_thread, NULL,
                             &(weft_thread_opts){.name = "hub"}),
           0);
  while (!atomic_load(&task_holds_r))
    nap(WEFT_MS(1));
  /* The main thread now waits for r, held by the task, which waits for x;
   * a helper reads the report and frees x, which ends it. */
  pthread_t reader;
  CHECK_EQ(pthread_create(&reader, NULL, read_then_free_x, NULL), 0);
  CHECK_EQ(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
  CHECK_EQ(weft_rlock_release(&r), 0);
  pthread_join(reader, NULL);
  CHECK_STR_HAS(reader_saw, "thread 'MainThread' waits for rlock 'r' (at ");
  CHECK_STR_HAS(reader_saw, "), held by task 'main'\n");
  CHECK_STR_HAS(reader_saw, "task 'main' waits for lock 'x' (at ");
  CHECK_STR_HAS(reader_saw, "), held by thread 'MainThread'\n");
  CHECK_EQ(weft_thread_join(hub, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(hub), 0);
  stop_watchdog();
}

/* --- three threads round a cycle ---------------------------------------- */

TEST(three_threads_round_a_cycle_are_reported) {
  weft_lock_init(&x, "x");
  weft_lock_init(&y, "y");
  weft_lock_init(&z, "z");
  atomic_store(&holding, 0);
  start_watchdog();
  struct cross steps[3] = {{&x, &y, 3}, {&y, &z, 3}, {&z, &x, 3}};
  weft_thread *t[3];
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_thread_start(&t[i], cross, &steps[i], NULL), 0);
  char out[4096] = "";
  read_reports(out, sizeof out, wait_ms(10000), "weft: deadlock");
  read_reports(out, sizeof out, 5 * (int)(SCAN / 1000000), NULL);
  CHECK_STR_HAS(out, "weft: deadlock (watchdog): 3 tasks or threads");
  CHECK_STR_HAS(out, "waits for lock 'x'");
  CHECK_STR_HAS(out, "waits for lock 'y'");
  CHECK_STR_HAS(out, "waits for lock 'z'");
  CHECK_EQ(count(out, "held by thread 'Thread-"), 3);
  CHECK_EQ(weft_lock_release(&x), 0); /* ends it */
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(weft_thread_join(t[i], WEFT_FOREVER, NULL), 0);
    CHECK_EQ(weft_thread_detach(t[i]), 0);
  }
  stop_watchdog();
}

/* --- what is not a deadlock --------------------------------------------- */

static atomic_int stop_busy;

static void *busy_in_order(void *arg) {
  (void)arg;
  while (!atomic_load(&stop_busy)) {
    CHECK_EQ(weft_lock_acquire(&x, WEFT_FOREVER), 0);
    CHECK_EQ(weft_lock_acquire(&y, WEFT_FOREVER), 0);
    CHECK_EQ(weft_lock_release(&y), 0);
    CHECK_EQ(weft_lock_release(&x), 0);
  }
  return NULL;
}

static void *slow_holder(void *arg) {
  (void)arg;
  CHECK_EQ(weft_lock_acquire(&z, WEFT_FOREVER), 0);
  nap(20 * SCAN);
  CHECK_EQ(weft_lock_release(&z), 0);
  return NULL;
}

static void *waits_for_z(void *arg) {
  (void)arg;
  CHECK_EQ(weft_lock_acquire(&z, WEFT_FOREVER), 0);
  CHECK_EQ(weft_lock_release(&z), 0);
  return NULL;
}

TEST(contention_and_a_slow_holder_are_not_reported) {
  weft_lock_init(&x, "x");
  weft_lock_init(&y, "y");
  weft_lock_init(&z, "z");
  start_watchdog();
  weft_thread *busy[4], *slow, *waiter;
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_thread_start(&busy[i], busy_in_order, NULL, NULL), 0);
  CHECK_EQ(weft_thread_start(&slow, slow_holder, NULL, NULL), 0);
  CHECK_EQ(weft_thread_start(&waiter, waits_for_z, NULL, NULL), 0);
  CHECK_EQ(weft_thread_join(slow, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(slow), 0);
  CHECK_EQ(weft_thread_join(waiter, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(waiter), 0);
  atomic_store(&stop_busy, 1);
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(weft_thread_join(busy[i], WEFT_FOREVER, NULL), 0);
    CHECK_EQ(weft_thread_detach(busy[i]), 0);
  }
  char out[4096] = "";
  read_reports(out, sizeof out, 3 * (int)(SCAN / 1000000), NULL);
  CHECK_EQ(strlen(out), 0u);
  stop_watchdog();
}

/* --- the environment, fork, and bad input ------------------------------- */

static void env_child(void *arg) {
  (void)arg;
  weft_lock_init(&x, "x");
  weft_lock_init(&y, "y");
  static struct cross ab = {&x, &y, 2}, ba = {&y, &x, 2};
  pthread_t a, b; /* plain threads: exit() does not wait for them */
  CHECK_EQ(pthread_create(&a, NULL, cross, &ab), 0);
  CHECK_EQ(pthread_create(&b, NULL, cross, &ba), 0);
  /* WEFT_WATCHDOG=10 scans every 10 ms, writing to stderr. */
  nap(WEFT_MS(wait_ms(300)));
  CHECK_EQ(weft_watchdog_start(SCAN, 2), -EALREADY);
  exit(0);
}

TEST(weft_watchdog_in_the_environment_starts_it) {
  char out[4096];
  const char *on[] = {"WEFT_WATCHDOG=10", NULL};
  int status = harness_run_child(env_child, NULL, on, out, sizeof out);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_STR_HAS(out, "weft: deadlock (watchdog): 2 tasks or threads");
  CHECK_EQ(count(out, "weft: deadlock"), 1);
  CHECK_STR_HAS(out, "waits for lock 'x'");
  CHECK_STR_HAS(out, "waits for lock 'y'");
}

/* Neither TSan nor qemu-user can start threads in a child of a
 * multi-threaded fork (qemu asserts in its vCPU set-up). */
#ifdef __SANITIZE_THREAD__
static const bool tsan = true;
#else
static const bool tsan = false;
#endif

TEST(a_child_of_fork_has_no_watchdog_until_it_starts_one) {
  start_watchdog();
  pid_t pid = fork();
  if (pid == 0) {
    bool threads_after_fork = !tsan && !harness_emulated();
    int ok = weft_watchdog_stop() == -ESRCH &&
             (!threads_after_fork ||
              (weft_watchdog_start(SCAN, report_pipe[1]) == 0 &&
               weft_watchdog_stop() == 0));
    _exit(ok ? 0 : 1);
  }
  int status;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  stop_watchdog();
}

TEST(bad_input_changes_nothing) {
  CHECK_EQ(weft_watchdog_stop(), -ESRCH);
  CHECK_EQ(weft_watchdog_start(0, 2), -EINVAL);
  CHECK_EQ(weft_watchdog_start(-1, 2), -EINVAL);
  CHECK_EQ(weft_watchdog_start(SCAN, -1), -EINVAL);
  CHECK_EQ(weft_watchdog_stop(), -ESRCH);
  start_watchdog();
  CHECK_EQ(weft_watchdog_start(SCAN, 2), -EALREADY);
  stop_watchdog(); /* still writing to the pipe: nothing to read */
}
