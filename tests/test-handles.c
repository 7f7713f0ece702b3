/*
 * Handles let go: the rule of docs/README.md ("Handles") as promised. A
 * handle that was let go must not be used; AddressSanitizer builds report
 * the use. Each case lets a handle go, makes a new object of the same kind
 * (whose memory, without ASan, may be the very same), then uses the old
 * handle in a child process, which ASan must stop with its report. Without
 * ASan the use is the program's bug and nothing is promised: the cases are
 * skipped.
 *
 * What is promised in every build is checked too: joins let go of nothing,
 * so a second join of a task or a thread, and a join after weft_proc_join,
 * work on a live handle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

/* Runs use(arg) in a child and checks that ASan stopped it with a report
 * of `kind` ("use-after-poison", "heap-use-after-free") naming `call`. A
 * child that exits with REFUSED made its stale call while weft still held
 * the memory (a thread's or a child process's: see their headers), and
 * the call returned -EINVAL: allowed where may_refuse says so. */
enum { REFUSED = 99 };

static void expect_report_or(void (*use)(void *), const char *kind,
                             const char *call, bool may_refuse) {
  if (!ASAN)
    harness_skip("a handle used after it was let go is reported by "
                 "AddressSanitizer builds only (make test-asan)");
  static char out[65536];
  int status = harness_run_child(use, NULL, NULL, out, sizeof out);
  if (may_refuse && WIFEXITED(status) && WEXITSTATUS(status) == REFUSED)
    return;
  CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK_STR_HAS(out, "ERROR: AddressSanitizer: ");
  CHECK_STR_HAS(out, kind);
  CHECK_STR_HAS(out, call);
}

static void expect_report(void (*use)(void *), const char *kind,
                          const char *call) {
  expect_report_or(use, kind, call, false);
}

/* --- tasks ---------------------------------------------------------------- */

static void *answer(void *arg) { return IV(VI(arg) + 1); }

static void *stale_task(void *arg) {
  (void)arg;
  weft_task *old, *fresh;
  CHECK_EQ(weft_task_spawn(&old, answer, IV(1), NULL), 0);
  CHECK_EQ(weft_task_join(old, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_detach(old), 0);
  CHECK_EQ(weft_task_spawn(&fresh, answer, IV(2), NULL), 0);
  weft_task_join(old, WEFT_FOREVER, NULL); /* the bug: reported here */
  return NULL;
}

static void use_stale_task(void *arg) {
  (void)arg;
  weft_run(stale_task, NULL, NULL);
  exit(0);
}

TEST(a_detached_task_used_again_is_reported_by_asan) {
  expect_report(use_stale_task, "use-after-poison", "weft_task_join");
}

/* --- generators ----------------------------------------------------------- */

static void *counts(void *arg) {
  (void)arg;
  for (int i = 0;; i++)
    if (weft_gen_yield(IV(i), NULL) < 0)
      return NULL;
}

static void use_stale_gen(void *arg) {
  (void)arg;
  weft_gen *old, *fresh;
  CHECK_EQ(weft_gen_new(&old, counts, NULL, NULL), 0);
  CHECK_EQ(weft_gen_free(old), 0);
  CHECK_EQ(weft_gen_new(&fresh, counts, NULL, NULL), 0);
  weft_gen_next(old, NULL);
  exit(0);
}

TEST(a_freed_generator_used_again_is_reported_by_asan) {
  expect_report(use_stale_gen, "use-after-poison", "weft_gen_resume");
}

/* --- threads -------------------------------------------------------------- */

static void *thread_answer(void *arg) { return arg; }

static void use_stale_thread(void *arg) {
  (void)arg;
  weft_thread *old, *fresh;
  CHECK_EQ(weft_thread_start(&old, thread_answer, IV(1), NULL), 0);
  CHECK_EQ(weft_thread_join(old, WEFT_FOREVER, NULL), 0);
  usleep(50 * 1000); /* its thread lets go of its share as it leaves */
  CHECK_EQ(weft_thread_detach(old), 0); /* the last share: freed now */
  CHECK_EQ(weft_thread_start(&fresh, thread_answer, IV(2), NULL), 0);
  /* Refused (-EINVAL) if the thread had not let go of its share yet. */
  exit(weft_thread_join(old, WEFT_FOREVER, NULL) == -EINVAL ? REFUSED : 0);
}

TEST(a_detached_thread_used_again_is_reported_by_asan) {
  expect_report_or(use_stale_thread, "heap-use-after-free", "weft_thread_join",
                   true);
}

/* --- processes and message pipes ------------------------------------------ */

static int exit_with(void *arg) { return (int)VI(arg); }

static void use_stale_proc(void *arg) {
  (void)arg;
  weft_proc *old, *fresh;
  int code;
  CHECK_EQ(weft_proc_start(&old, exit_with, IV(3), NULL), 0);
  CHECK_EQ(weft_proc_join(old, WEFT_FOREVER, &code), 0);
  weft_proc_free(old); /* exited and joined: freed now */
  CHECK_EQ(weft_proc_start(&fresh, exit_with, IV(4), NULL), 0);
  /* While weft's reaper still holds the child's record, the memory lives
   * and the call says -EINVAL (weft/proc.h); once it let go, ASan stops
   * the call. */
  exit(weft_proc_join(old, WEFT_FOREVER, &code) == -EINVAL ? REFUSED : 0);
}

TEST(a_freed_process_used_again_is_reported_by_asan) {
  expect_report_or(use_stale_proc, "heap-use-after-free", "weft_proc_join",
                   true);
}

static void use_stale_msgpipe(void *arg) {
  (void)arg;
  weft_msgpipe *a, *b, *c, *d;
  CHECK_EQ(weft_msgpipe_pair(&a, &b), 0);
  weft_msgpipe_free(a);
  CHECK_EQ(weft_msgpipe_pair(&c, &d), 0);
  weft_msgpipe_send(a, "x", 1, 0);
  exit(0);
}

TEST(a_freed_message_pipe_used_again_is_reported_by_asan) {
  expect_report(use_stale_msgpipe, "heap-use-after-free", "weft_msgpipe_send");
}

/* --- regions and queues --------------------------------------------------- */

static void use_stale_queue(void *arg) {
  (void)arg;
  weft_queue *old, *fresh;
  CHECK_EQ(weft_queue_create(&old, NULL), 0);
  weft_queue_free(old);
  CHECK_EQ(weft_queue_create(&fresh, NULL), 0);
  weft_queue_put(old, "x", 1, 0); /* would land in fresh, without ASan */
  exit(0);
}

TEST(a_freed_queue_used_again_is_reported_by_asan) {
  expect_report(use_stale_queue, "heap-use-after-free", "weft_queue_put");
}

static void use_stale_region(void *arg) {
  (void)arg;
  weft_shm *old, *fresh;
  CHECK_EQ(weft_shm_create(&old, 4096, "old"), 0);
  weft_shm_free(old);
  CHECK_EQ(weft_shm_create(&fresh, 4096, "fresh"), 0);
  weft_shm_addr(old);
  exit(0);
}

TEST(a_freed_region_used_again_is_reported_by_asan) {
  expect_report(use_stale_region, "heap-use-after-free", "weft_shm_addr");
}

/* --- what every build promises ---------------------------------------------
 * Joins let go of nothing: a handle stays valid, and joins again, until it
 * is let go. */

static void *joins_twice(void *arg) {
  (void)arg;
  weft_task *t;
  void *r;
  CHECK_EQ(weft_task_spawn(&t, answer, IV(41), NULL), 0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 42);
  CHECK_EQ(weft_task_join(t, 0, &r), 0);
  CHECK_EQ(VI(r), 42);
  CHECK(!weft_task_alive(t));
  CHECK_STR_HAS(weft_task_name(t), "");
  CHECK_EQ(weft_task_detach(t), 0);
  return NULL;
}

TEST(joins_let_go_of_nothing) {
  /* The child process first: a fork after a thread ran is a report of
   * TSan's in the child (it sees the thread registry reset). */
  weft_proc *p;
  int code;
  CHECK_EQ(weft_proc_start(&p, exit_with, IV(6), NULL), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, 6);
  weft_proc_free(p);
  CHECK_EQ(weft_run(joins_twice, NULL, NULL), 0);
  weft_thread *t;
  void *r;
  CHECK_EQ(weft_thread_start(&t, thread_answer, IV(5), NULL), 0);
  CHECK_EQ(weft_thread_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(weft_thread_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 5);
  CHECK(weft_thread_name(t) != NULL);
  CHECK_EQ(weft_thread_detach(t), 0);
}
