/*
 * Scopes (weft_scope_enter, weft_scope_exit): a deadline that fires in
 * the middle of an fd read, a lock wait, a join and a condition wait;
 * -ECANCELED by choice, and nothing cancelled after the scope; nested
 * scopes take the earliest deadline; a wait's own shorter timeout; scopes
 * in a plain thread (its waiter's wait and its poll); bad input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

static void run_main(weft_task_fn fn, void *arg) {
  void *r = IV(-1);
  CHECK_EQ(weft_run(fn, arg, &r), 0);
  CHECK_EQ(VI(r), 0);
}

static int64_t soon(int64_t ms) { return weft_now() + WEFT_MS(ms); }

/* --- where the deadline fires ------------------------------------------ */

static void *ends_a_read(void *arg) {
  int how = (int)VI(arg);
  int expect = how == WEFT_SCOPE_CANCEL ? -ECANCELED : -ETIMEDOUT;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  weft_scope s;
  int64_t t0 = weft_now();
  CHECK_EQ(weft_scope_enter(&s, t0 + WEFT_MS(40), how), 0);
  char c;
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_FOREVER), expect);
  CHECK(weft_now() - t0 >= WEFT_MS(40));
  /* Every later wait inside ends at once, the same way. */
  CHECK_EQ(weft_sleep(WEFT_SEC(5)), expect);
  CHECK(weft_now() - t0 < WEFT_SEC(5));
  /* Data ready is still an answer: the deadline bounds waiting. */
  CHECK_EQ(write(p[1], "x", 1), 1);
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_FOREVER), 1);
  CHECK_EQ(weft_scope_exit(&s), expect);
  /* Out of the scope: no deadline, and nothing cancelled. */
  CHECK_EQ(weft_deadline(), WEFT_FOREVER);
  CHECK_EQ(weft_sleep(WEFT_MS(1)), 0);
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(a_scope_ends_an_fd_read_with_etimedout) {
  run_main(ends_a_read, IV(WEFT_SCOPE_TIMEOUT));
}

TEST(a_cancel_scope_ends_an_fd_read_with_ecanceled_and_only_inside) {
  run_main(ends_a_read, IV(WEFT_SCOPE_CANCEL));
}

static weft_lock held = WEFT_LOCK_INIT;

static void *holds_the_lock(void *arg) {
  (void)arg;
  CHECK_EQ(weft_lock_acquire(&held, WEFT_FOREVER), 0);
  weft_sleep(WEFT_MS(300));
  CHECK_EQ(weft_lock_release(&held), 0);
  return NULL;
}

static void *ends_a_lock_wait(void *arg) {
  int how = (int)VI(arg);
  weft_task *holder;
  CHECK_EQ(weft_task_spawn(&holder, holds_the_lock, NULL, NULL), 0);
  CHECK_EQ(weft_yield(), 0); /* it takes the lock */
  weft_scope s;
  CHECK_EQ(weft_scope_enter(&s, soon(30), how), 0);
  int rc = weft_lock_acquire(&held, WEFT_FOREVER);
  CHECK_EQ(rc, how == WEFT_SCOPE_CANCEL ? -ECANCELED : -ETIMEDOUT);
  CHECK_EQ(weft_scope_exit(&s), rc);
  /* The lock's queue holds nothing of ours: it is taken once freed. */
  CHECK_EQ(weft_lock_acquire(&held, WEFT_FOREVER), 0);
  CHECK_EQ(weft_lock_release(&held), 0);
  CHECK_EQ(weft_task_join(holder, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_detach(holder), 0);
  return NULL;
}

TEST(a_scope_ends_a_lock_wait) {
  run_main(ends_a_lock_wait, IV(WEFT_SCOPE_TIMEOUT));
  run_main(ends_a_lock_wait, IV(WEFT_SCOPE_CANCEL));
}

static void *sleeps_long(void *arg) {
  (void)arg;
  weft_sleep(WEFT_MS(200));
  return IV(7);
}

static void *ends_a_join(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, sleeps_long, NULL, NULL), 0);
  weft_scope s;
  CHECK_EQ(weft_scope_enter(&s, soon(20), WEFT_SCOPE_TIMEOUT), 0);
  void *r = NULL;
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), -ETIMEDOUT);
  CHECK_EQ(weft_scope_exit(&s), -ETIMEDOUT);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), 0); /* joined later */
  CHECK_EQ(VI(r), 7);
  CHECK_EQ(weft_task_detach(t), 0);
  return NULL;
}

TEST(a_scope_ends_a_join) { run_main(ends_a_join, NULL); }

static void *ends_a_condition_wait(void *arg) {
  (void)arg;
  weft_cond cv = WEFT_COND_INIT;
  CHECK_EQ(weft_cond_acquire(&cv, WEFT_FOREVER), 0);
  weft_scope s;
  CHECK_EQ(weft_scope_enter(&s, soon(20), WEFT_SCOPE_CANCEL), 0);
  CHECK_EQ(weft_cond_wait(&cv, WEFT_FOREVER), -ECANCELED);
  CHECK_EQ(weft_scope_exit(&s), -ECANCELED);
  CHECK_EQ(weft_cond_release(&cv), 0); /* held again, as promised */
  return NULL;
}

TEST(a_cancel_scope_ends_a_condition_wait_with_its_lock_held) {
  run_main(ends_a_condition_wait, NULL);
}

/* --- nesting ------------------------------------------------------------ */

static void *nested(void *arg) {
  (void)arg;
  /* The outer deadline is the earlier: the inner scope changes nothing,
   * and the wait ends the outer's way. */
  weft_scope outer, inner;
  int64_t t0 = weft_now();
  CHECK_EQ(weft_scope_enter(&outer, t0 + WEFT_MS(30), WEFT_SCOPE_CANCEL), 0);
  CHECK_EQ(weft_scope_enter(&inner, t0 + WEFT_SEC(10), WEFT_SCOPE_TIMEOUT), 0);
  CHECK_EQ(weft_deadline(), t0 + WEFT_MS(30));
  CHECK_EQ(weft_sleep(WEFT_SEC(10)), -ECANCELED);
  CHECK(weft_now() - t0 < WEFT_SEC(5));
  CHECK_EQ(weft_scope_exit(&inner), 0); /* its own deadline did not pass */
  CHECK_EQ(weft_deadline(), t0 + WEFT_MS(30));
  CHECK_EQ(weft_scope_exit(&outer), -ECANCELED);
  CHECK_EQ(weft_deadline(), WEFT_FOREVER);

  /* The inner is the earlier: it ends the wait its way, and once it has
   * exited the outer's later deadline is back. */
  t0 = weft_now();
  CHECK_EQ(weft_scope_enter(&outer, t0 + WEFT_SEC(10), WEFT_SCOPE_CANCEL), 0);
  CHECK_EQ(weft_scope_enter(&inner, t0 + WEFT_MS(20), WEFT_SCOPE_TIMEOUT), 0);
  CHECK_EQ(weft_sleep(WEFT_SEC(10)), -ETIMEDOUT);
  CHECK_EQ(weft_scope_exit(&inner), -ETIMEDOUT);
  CHECK_EQ(weft_deadline(), t0 + WEFT_SEC(10));
  CHECK_EQ(weft_sleep(WEFT_MS(1)), 0);
  CHECK_EQ(weft_scope_exit(&outer), 0);

  /* Three deep, the middle earliest. */
  weft_scope a, b, c;
  t0 = weft_now();
  CHECK_EQ(weft_scope_enter(&a, t0 + WEFT_SEC(9), WEFT_SCOPE_TIMEOUT), 0);
  CHECK_EQ(weft_scope_enter(&b, t0 + WEFT_MS(20), WEFT_SCOPE_CANCEL), 0);
  CHECK_EQ(weft_scope_enter(&c, t0 + WEFT_SEC(8), WEFT_SCOPE_TIMEOUT), 0);
  CHECK_EQ(weft_deadline(), t0 + WEFT_MS(20));
  CHECK_EQ(weft_yield(), 0);
  CHECK_EQ(weft_sleep(WEFT_SEC(8)), -ECANCELED);
  CHECK_EQ(weft_scope_exit(&c), 0);
  CHECK_EQ(weft_scope_exit(&b), -ECANCELED);
  CHECK_EQ(weft_deadline(), t0 + WEFT_SEC(9));
  CHECK_EQ(weft_scope_exit(&a), 0);
  return NULL;
}

TEST(nested_scopes_take_the_earliest_deadline) { run_main(nested, NULL); }

static void *own_timeout(void *arg) {
  (void)arg;
  weft_scope s;
  CHECK_EQ(weft_scope_enter(&s, soon(10000), WEFT_SCOPE_CANCEL), 0);
  weft_event e = WEFT_EVENT_INIT;
  /* The wait's own timeout comes first: a timeout, not a cancellation. */
  CHECK_EQ(weft_event_wait(&e, WEFT_MS(10)), -ETIMEDOUT);
  CHECK_EQ(weft_scope_exit(&s), 0);
  return NULL;
}

TEST(a_waits_own_earlier_timeout_stays_etimedout_in_a_cancel_scope) {
  run_main(own_timeout, NULL);
}

static void *set_inside(void *arg) {
  (void)arg;
  int64_t mine = weft_now() + WEFT_SEC(100);
  CHECK_EQ(weft_deadline_set(mine, NULL), 0);
  weft_scope s;
  CHECK_EQ(weft_scope_enter(&s, WEFT_FOREVER, WEFT_SCOPE_CANCEL), 0);
  CHECK_EQ(weft_deadline(), mine); /* a later scope changes nothing */
  CHECK_EQ(weft_deadline_set(weft_now() + WEFT_MS(5), NULL), 0);
  /* weft_deadline_set's deadline times out, whatever the scope says. */
  CHECK_EQ(weft_sleep(WEFT_SEC(1)), -ETIMEDOUT);
  CHECK_EQ(weft_scope_exit(&s), 0);
  CHECK_EQ(weft_deadline(), mine); /* put back */
  CHECK_EQ(weft_deadline_set(WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_deadline_set_inside_a_scope_lasts_until_it_exits) {
  run_main(set_inside, NULL);
}

/* --- in a plain thread -------------------------------------------------- */

static void *sleeps_a_while(void *arg) {
  (void)arg;
  weft_event never = WEFT_EVENT_INIT;
  weft_event_wait(&never, WEFT_MS(300));
  return NULL;
}

static void *thread_scopes(void *arg) {
  (void)arg;
  weft_event e = WEFT_EVENT_INIT;
  weft_scope s;
  CHECK_EQ(weft_scope_enter(&s, soon(20), WEFT_SCOPE_CANCEL), 0);
  CHECK_EQ(weft_event_wait(&e, WEFT_FOREVER), -ECANCELED); /* its waiter */
  int p[2];
  CHECK_EQ(pipe(p), 0);
  char c;
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_FOREVER), -ECANCELED); /* poll */
  CHECK_EQ(weft_scope_exit(&s), -ECANCELED);
  CHECK_EQ(weft_scope_enter(&s, soon(20), WEFT_SCOPE_TIMEOUT), 0);
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_FOREVER), -ETIMEDOUT);
  CHECK_EQ(weft_scope_exit(&s), -ETIMEDOUT);
  CHECK_EQ(weft_deadline(), WEFT_FOREVER);
  CHECK_EQ(weft_event_wait(&e, WEFT_MS(1)), -ETIMEDOUT);
  /* A join of a thread, which outside a scope may be pthread_join's. */
  weft_thread *slow;
  CHECK_EQ(weft_thread_start(&slow, sleeps_a_while, NULL, NULL), 0);
  CHECK_EQ(weft_scope_enter(&s, soon(20), WEFT_SCOPE_TIMEOUT), 0);
  CHECK_EQ(weft_thread_join(slow, WEFT_FOREVER, NULL), -ETIMEDOUT);
  CHECK_EQ(weft_scope_exit(&s), -ETIMEDOUT);
  CHECK_EQ(weft_thread_join(slow, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(slow), 0);
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(scopes_in_a_plain_thread) {
  weft_thread *t;
  CHECK_EQ(weft_thread_start(&t, thread_scopes, NULL, NULL), 0);
  CHECK_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(t), 0);
}

/* --- bad input ---------------------------------------------------------- */

static weft_scope *outer_of_other;

static void *exits_anothers_scope(void *arg) {
  (void)arg;
  CHECK_EQ(weft_scope_exit(outer_of_other), -EINVAL);
  return NULL;
}

static void *in_a_generator(void *arg) {
  (void)arg;
  weft_scope s;
  CHECK_EQ(weft_scope_enter(&s, soon(10), WEFT_SCOPE_TIMEOUT), -EPERM);
  return NULL;
}

static void *bad_input(void *arg) {
  (void)arg;
  weft_scope s, inner;
  CHECK_EQ(weft_scope_enter(NULL, soon(10), WEFT_SCOPE_TIMEOUT), -EINVAL);
  CHECK_EQ(weft_scope_enter(&s, -2, WEFT_SCOPE_TIMEOUT), -EINVAL);
  CHECK_EQ(weft_scope_enter(&s, soon(10), 7), -EINVAL);
  CHECK_EQ(weft_deadline(), WEFT_FOREVER); /* nothing changed */
  CHECK_EQ(weft_scope_exit(NULL), -EINVAL);

  int64_t at = soon(10000);
  CHECK_EQ(weft_scope_enter(&s, at, WEFT_SCOPE_TIMEOUT), 0);
  CHECK_EQ(weft_scope_enter(&inner, soon(20000), WEFT_SCOPE_TIMEOUT), 0);
  CHECK_EQ(weft_scope_exit(&s), -EINVAL); /* not the innermost */
  CHECK_EQ(weft_scope_enter(&s, soon(5), WEFT_SCOPE_CANCEL), -EINVAL);
  CHECK_EQ(weft_scope_enter(&inner, soon(5), WEFT_SCOPE_CANCEL), -EINVAL);
  CHECK_EQ(weft_deadline(), at);
  outer_of_other = &inner;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, exits_anothers_scope, NULL, NULL), 0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_detach(t), 0);
  CHECK_EQ(weft_scope_exit(&inner), 0);
  CHECK_EQ(weft_scope_exit(&inner), -EINVAL); /* exited already */
  CHECK_EQ(weft_scope_exit(&s), 0);
  CHECK_EQ(weft_deadline(), WEFT_FOREVER);

  weft_gen *g;
  CHECK_EQ(weft_gen_new(&g, in_a_generator, NULL, NULL), 0);
  void *v;
  CHECK_EQ(weft_gen_resume(g, NULL, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(weft_gen_free(g), 0);
  return NULL;
}

TEST(bad_input_is_an_error_code_and_changes_nothing) {
  run_main(bad_input, NULL);
}
