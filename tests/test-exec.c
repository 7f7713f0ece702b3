/*
 * Futures and thread pools (weft/exec.h): outcomes, cancellation,
 * callbacks run exactly once, waits on many futures, the pool's
 * back-pressure and shutdown, waits from tasks of hubs and from threads,
 * and bad input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

/* --- futures -------------------------------------------------------------- */

TEST(a_future_is_completed_once) {
  weft_future *f;
  CHECK_EQ(weft_future_new(&f), 0);
  CHECK_EQ(weft_future_state(f), WEFT_FUTURE_PENDING);
  CHECK(!weft_future_done(f));
  void *v = IV(7);
  int err = 7;
  CHECK_EQ(weft_future_result(f, 0, &v, &err), -ETIMEDOUT);
  CHECK_EQ(weft_future_result(f, WEFT_MS(5), &v, &err), -ETIMEDOUT);
  CHECK_EQ(VI(v), 7); /* untouched */
  CHECK_EQ(weft_future_set_result(f, IV(42)), 0);
  CHECK(weft_future_done(f));
  CHECK_EQ(weft_future_state(f), WEFT_FUTURE_FINISHED);
  CHECK_EQ(weft_future_result(f, WEFT_FOREVER, &v, &err), 0);
  CHECK_EQ(VI(v), 42);
  CHECK_EQ(err, 0);
  CHECK_EQ(weft_future_result(f, 0, NULL, NULL), 0);
  /* Done: nothing changes it again. */
  CHECK_EQ(weft_future_set_result(f, IV(1)), -EALREADY);
  CHECK_EQ(weft_future_set_error(f, -EIO), -EALREADY);
  CHECK_EQ(weft_future_cancel(f), -EALREADY);
  CHECK_EQ(weft_future_set_running(f), -EALREADY);
  CHECK_EQ(weft_future_result(f, 0, &v, &err), 0);
  CHECK_EQ(VI(v), 42);
  CHECK_EQ(weft_future_size(f), 0);
  weft_future_free(f);
}

TEST(errors_and_cancellation_are_outcomes) {
  weft_future *f;
  CHECK_EQ(weft_future_new(&f), 0);
  CHECK_EQ(weft_future_set_running(f), 0);
  CHECK_EQ(weft_future_set_running(f), -EALREADY);
  CHECK_EQ(weft_future_cancel(f), -EBUSY); /* running: it will finish */
  CHECK_EQ(weft_future_set_error(f, 0), -EINVAL);
  CHECK_EQ(weft_future_set_error(f, EIO), -EINVAL);
  CHECK_EQ(weft_future_state(f), WEFT_FUTURE_RUNNING);
  /* A work's own -ETIMEDOUT is its outcome, not the wait's. */
  CHECK_EQ(weft_future_set_error(f, -ETIMEDOUT), 0);
  void *v = IV(1);
  int err = 0;
  CHECK_EQ(weft_future_result(f, WEFT_FOREVER, &v, &err), 0);
  CHECK_EQ(err, -ETIMEDOUT);
  CHECK(v == NULL);
  weft_future_free(f);

  CHECK_EQ(weft_future_new(&f), 0);
  CHECK_EQ(weft_future_cancel(f), 0);
  CHECK_EQ(weft_future_cancel(f), 0); /* again: still cancelled */
  CHECK_EQ(weft_future_state(f), WEFT_FUTURE_CANCELLED);
  CHECK_EQ(weft_future_set_running(f), -ECANCELED);
  CHECK_EQ(weft_future_set_result(f, IV(1)), -EALREADY);
  CHECK_EQ(weft_future_result(f, 0, &v, &err), 0);
  CHECK_EQ(err, -ECANCELED);
  weft_future_free(f);
}

TEST(bad_input_is_einval_and_changes_nothing) {
  weft_future *f;
  CHECK_EQ(weft_future_new(NULL), -EINVAL);
  CHECK_EQ(weft_future_set_running(NULL), -EINVAL);
  CHECK_EQ(weft_future_set_result(NULL, NULL), -EINVAL);
  CHECK_EQ(weft_future_set_error(NULL, -EIO), -EINVAL);
  CHECK_EQ(weft_future_cancel(NULL), -EINVAL);
  CHECK_EQ(weft_future_result(NULL, 0, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_future_state(NULL), -EINVAL);
  CHECK(!weft_future_done(NULL));
  CHECK_EQ(weft_future_size(NULL), 0);
  weft_future_free(NULL);
  CHECK_EQ(weft_future_new(&f), 0);
  CHECK_EQ(weft_future_result(f, -2, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_future_add_done_callback(f, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_future_add_done_callback(NULL, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_future_state(f), WEFT_FUTURE_PENDING);
  weft_future *fs[] = {f, NULL};
  CHECK_EQ(weft_future_wait_any(fs, 2, WEFT_FIRST_COMPLETED, 0), -EINVAL);
  CHECK_EQ(weft_future_wait_any(fs, 1, 0, 0), -EINVAL);
  CHECK_EQ(weft_future_wait_any(fs, 1, 4, 0), -EINVAL);
  CHECK_EQ(weft_future_wait_any(fs, 1, WEFT_ALL_COMPLETED, -5), -EINVAL);
  CHECK_EQ(weft_future_wait_any(NULL, 1, WEFT_ALL_COMPLETED, 0), -EINVAL);
  CHECK_EQ(weft_future_wait_any(NULL, 0, WEFT_ALL_COMPLETED, 0), 0);
  weft_future_iter *it;
  CHECK_EQ(weft_future_iter_new(&it, fs, 2), -EINVAL);
  CHECK_EQ(weft_future_iter_new(NULL, fs, 1), -EINVAL);
  CHECK_EQ(weft_future_iter_next(NULL, 0, &f), -EINVAL);
  weft_future_iter_free(NULL);
  CHECK_EQ(weft_future_state(f), WEFT_FUTURE_PENDING);
  weft_future_free(f);
}

/* --- callbacks ------------------------------------------------------------ */

struct calls {
  atomic_int n;
  atomic_int order[8];
  pthread_t by[8];
};

static void count_call(weft_future *f, void *arg) {
  struct calls *c = arg;
  int i = atomic_fetch_add(&c->n, 1);
  if (i < 8)
    c->by[i] = pthread_self();
  /* The future is done, and its outcome at hand. */
  int err = 1;
  CHECK(weft_future_done(f));
  CHECK_EQ(weft_future_result(f, 0, NULL, &err), 0);
}

struct ordered {
  struct calls *c;
  int tag;
};

static void ordered_call(weft_future *f, void *arg) {
  struct ordered *o = arg;
  int i = atomic_fetch_add(&o->c->n, 1);
  atomic_store(&o->c->order[i], o->tag);
  (void)f;
}

static void *complete_later(void *arg) {
  usleep(20000);
  CHECK_EQ(weft_future_set_result(arg, IV(5)), 0);
  return NULL;
}

TEST(callbacks_run_exactly_once_by_the_completer_or_at_once) {
  weft_future *f;
  CHECK_EQ(weft_future_new(&f), 0);
  struct calls before = {0}, after = {0};
  CHECK_EQ(weft_future_add_done_callback(f, count_call, &before), 0);
  CHECK_EQ(atomic_load(&before.n), 0);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, complete_later, f), 0);
  CHECK_EQ(weft_future_result(f, WEFT_SEC(10), NULL, NULL), 0);
  CHECK_EQ(pthread_join(t, NULL), 0);
  CHECK_EQ(atomic_load(&before.n), 1);
  CHECK(pthread_equal(before.by[0], t)); /* by the completer */
  CHECK_EQ(weft_future_add_done_callback(f, count_call, &after), 0);
  CHECK_EQ(atomic_load(&after.n), 1); /* at once, by the adder */
  CHECK(pthread_equal(after.by[0], pthread_self()));
  CHECK_EQ(atomic_load(&before.n), 1);
  weft_future_free(f);

  /* In the order they were added. */
  struct calls c = {0};
  struct ordered o[3] = {{&c, 1}, {&c, 2}, {&c, 3}};
  CHECK_EQ(weft_future_new(&f), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_future_add_done_callback(f, ordered_call, &o[i]), 0);
  CHECK_EQ(weft_future_cancel(f), 0);
  CHECK_EQ(atomic_load(&c.n), 3);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(atomic_load(&c.order[i]), i + 1);
  weft_future_free(f);

  /* A future let go before it is done by its only holder: its callbacks
   * never run, and nothing leaks (ASan). */
  struct calls never = {0};
  CHECK_EQ(weft_future_new(&f), 0);
  CHECK_EQ(weft_future_add_done_callback(f, count_call, &never), 0);
  weft_future_free(f);
  CHECK_EQ(atomic_load(&never.n), 0);
}

/* Threads add callbacks while another completes: each runs once. */
struct race {
  weft_future *f;
  atomic_int calls;
  atomic_int go;
};

static void race_call(weft_future *f, void *arg) {
  (void)f;
  atomic_fetch_add(&((struct race *)arg)->calls, 1);
}

static void *add_many(void *arg) {
  struct race *r = arg;
  while (!atomic_load(&r->go))
    ;
  for (int i = 0; i < 1000; i++)
    CHECK_EQ(weft_future_add_done_callback(r->f, race_call, r), 0);
  return NULL;
}

TEST(callbacks_racing_the_completion_run_once_each) {
  for (int round = 0; round < 20; round++) {
    struct race r = {0};
    CHECK_EQ(weft_future_new(&r.f), 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
      CHECK_EQ(pthread_create(&t[i], NULL, add_many, &r), 0);
    atomic_store(&r.go, 1);
    usleep(round * 20);
    CHECK_EQ(weft_future_set_result(r.f, NULL), 0);
    for (int i = 0; i < 3; i++)
      CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(atomic_load(&r.calls), 3000);
    weft_future_free(r.f);
  }
}

/* --- waiters of every kind ------------------------------------------------ */

struct waiting {
  weft_future *f;
  atomic_int woke;
  struct ticker {
    atomic_int ticks;
    atomic_int stop;
  } tick;
};

static void *wait_in_task(void *arg) {
  struct waiting *w = arg;
  void *v;
  int err;
  CHECK_EQ(weft_future_result(w->f, WEFT_MS(1), &v, &err), -ETIMEDOUT);
  CHECK_EQ(weft_future_result(w->f, WEFT_SEC(10), &v, &err), 0);
  CHECK_EQ(VI(v), 5);
  atomic_fetch_add(&w->woke, 1);
  return NULL;
}

static void *ticker(void *arg) {
  struct ticker *t = arg;
  while (!atomic_load(&t->stop)) {
    atomic_fetch_add(&t->ticks, 1);
    weft_sleep(WEFT_MS(1));
  }
  return NULL;
}

/* A hub: two tasks wait on the future while a third ticks. */
static void *hub_main(void *arg) {
  struct waiting *w = arg;
  weft_task *a, *b, *t;
  CHECK_EQ(weft_task_spawn(&a, wait_in_task, w, NULL), 0);
  CHECK_EQ(weft_task_spawn(&b, wait_in_task, w, NULL), 0);
  CHECK_EQ(weft_task_spawn(&t, ticker, &w->tick, NULL), 0);
  CHECK_EQ(weft_task_join(a, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(b, WEFT_FOREVER, NULL), 0);
  atomic_store(&w->tick.stop, 1);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  weft_task_detach(a);
  weft_task_detach(b);
  weft_task_detach(t);
  return NULL;
}

static void *hub_thread(void *arg) {
  CHECK_EQ(weft_run(hub_main, arg, NULL), 0);
  return NULL;
}

TEST(tasks_of_two_hubs_and_a_thread_wait_on_one_future) {
  struct waiting w = {0};
  CHECK_EQ(weft_future_new(&w.f), 0);
  pthread_t hubs[2];
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_create(&hubs[i], NULL, hub_thread, &w), 0);
  usleep(50000);
  CHECK(atomic_load(&w.tick.ticks) > 5); /* the hubs ran on meanwhile */
  CHECK_EQ(atomic_load(&w.woke), 0);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, complete_later, w.f), 0);
  void *v;
  CHECK_EQ(weft_future_result(w.f, WEFT_SEC(10), &v, NULL), 0);
  CHECK_EQ(VI(v), 5);
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_join(hubs[i], NULL), 0);
  CHECK_EQ(pthread_join(t, NULL), 0);
  CHECK_EQ(atomic_load(&w.woke), 4);
  weft_future_free(w.f);
}

static void *cancelled_waiter(void *arg) {
  return IV(weft_future_result(arg, WEFT_FOREVER, NULL, NULL));
}

static void *cancel_a_waiter(void *arg) {
  weft_future *f = arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, cancelled_waiter, f, NULL), 0);
  weft_sleep(WEFT_MS(5));
  CHECK_EQ(weft_task_cancel(t), 0);
  void *got;
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &got), 0);
  weft_task_detach(t);
  CHECK_EQ(VI(got), -ECANCELED);
  CHECK_EQ(weft_future_state(f), WEFT_FUTURE_PENDING); /* untouched */
  return NULL;
}

TEST(a_cancelled_waiter_leaves_the_future_alone) {
  weft_future *f;
  CHECK_EQ(weft_future_new(&f), 0);
  CHECK_EQ(weft_run(cancel_a_waiter, f, NULL), 0);
  CHECK_EQ(weft_future_set_result(f, NULL), 0);
  weft_future_free(f);
}

/* --- waits on many -------------------------------------------------------- */

/* A completer that waits for its go, then completes its future. */
struct later {
  weft_future *f;
  int error;
  weft_event go;
};

static void *finish_later(void *arg) {
  struct later *l = arg;
  CHECK_EQ(weft_event_wait(&l->go, WEFT_SEC(30)), 0);
  if (l->error)
    CHECK_EQ(weft_future_set_error(l->f, l->error), 0);
  else
    CHECK_EQ(weft_future_set_result(l->f, NULL), 0);
  return NULL;
}

/* Lets l's completer go, and waits until it has completed its future. */
static void complete_now(struct later *l) {
  CHECK_EQ(weft_event_set(&l->go), 0);
  CHECK_EQ(weft_future_result(l->f, WEFT_SEC(30), NULL, NULL), 0);
}

TEST(wait_any_in_each_mode) {
  weft_future *fs[3];
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_future_new(&fs[i]), 0);
  CHECK_EQ(weft_future_wait_any(fs, 3, WEFT_FIRST_COMPLETED, 0), -ETIMEDOUT);
  CHECK_EQ(weft_future_wait_any(fs, 3, WEFT_FIRST_COMPLETED, WEFT_MS(5)),
           -ETIMEDOUT);
  struct later l[3] = {{fs[0], 0, WEFT_EVENT_INIT},
                       {fs[1], -EIO, WEFT_EVENT_INIT},
                       {fs[2], 0, WEFT_EVENT_INIT}};
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, finish_later, &l[i]), 0);
  /* A waiter that is woken by the completion, not one that finds it. */
  CHECK_EQ(weft_event_set(&l[0].go), 0);
  CHECK_EQ(weft_future_wait_any(fs, 3, WEFT_FIRST_COMPLETED, WEFT_SEC(10)), 1);
  CHECK(weft_future_done(fs[0]));
  CHECK_EQ(weft_future_wait_any(fs, 3, WEFT_FIRST_ERROR, WEFT_MS(10)),
           -ETIMEDOUT);
  CHECK_EQ(weft_event_set(&l[1].go), 0);
  CHECK_EQ(weft_future_wait_any(fs, 3, WEFT_FIRST_ERROR, WEFT_SEC(10)), 2);
  CHECK(weft_future_done(fs[1]));
  CHECK(!weft_future_done(fs[2]));
  CHECK_EQ(weft_future_wait_any(fs, 3, WEFT_ALL_COMPLETED, WEFT_MS(10)),
           -ETIMEDOUT);
  CHECK_EQ(weft_event_set(&l[2].go), 0);
  CHECK_EQ(weft_future_wait_any(fs, 3, WEFT_ALL_COMPLETED, WEFT_SEC(10)), 3);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(pthread_join(t[i], NULL), 0);
  /* FIRST_ERROR with none failing waits for all; a future twice. */
  weft_future *twice[] = {fs[0], fs[0], fs[2]};
  CHECK_EQ(weft_future_wait_any(twice, 3, WEFT_FIRST_ERROR, 0), 3);
  for (int i = 0; i < 3; i++)
    weft_future_free(fs[i]);
}

TEST(futures_come_as_they_complete) {
  weft_future *fs[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_future_new(&fs[i]), 0);
  CHECK_EQ(weft_future_set_result(fs[3], NULL), 0); /* done first */
  weft_future_iter *it;
  CHECK_EQ(weft_future_iter_new(&it, fs, 4), 0);
  struct later l[3] = {{fs[2], 0, WEFT_EVENT_INIT},
                       {fs[0], 0, WEFT_EVENT_INIT},
                       {fs[1], -EIO, WEFT_EVENT_INIT}};
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, finish_later, &l[i]), 0);
  weft_future *got;
  CHECK_EQ(weft_future_iter_next(it, 0, &got), 0);
  CHECK(got == fs[3]);
  CHECK_EQ(weft_future_iter_next(it, 0, &got), -ETIMEDOUT);
  CHECK_EQ(weft_future_iter_next(it, WEFT_MS(5), &got), -ETIMEDOUT);
  /* Completed in this order, given in this order. */
  for (int i = 0; i < 3; i++)
    complete_now(&l[i]);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(weft_future_iter_next(it, WEFT_SEC(10), &got), 0);
    CHECK(got == l[i].f);
  }
  CHECK_EQ(weft_future_iter_next(it, WEFT_SEC(10), &got), -ENOENT);
  weft_future_iter_free(it);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(pthread_join(t[i], NULL), 0);
  /* A wait that is woken by a completion. */
  weft_future *f;
  CHECK_EQ(weft_future_new(&f), 0);
  CHECK_EQ(weft_future_iter_new(&it, &f, 1), 0);
  pthread_t late;
  CHECK_EQ(pthread_create(&late, NULL, complete_later, f), 0);
  CHECK_EQ(weft_future_iter_next(it, WEFT_SEC(10), &got), 0);
  CHECK(got == f);
  CHECK_EQ(pthread_join(late, NULL), 0);
  weft_future_iter_free(it);
  weft_future_free(f);
  /* An iteration let go before its futures are done. */
  CHECK_EQ(weft_future_new(&f), 0);
  CHECK_EQ(weft_future_iter_new(&it, &f, 1), 0);
  weft_future_iter_free(it);
  CHECK_EQ(weft_future_set_result(f, NULL), 0);
  weft_future_free(f);
  for (int i = 0; i < 4; i++)
    weft_future_free(fs[i]);
}

/* --- thread pools --------------------------------------------------------- */

static int add_one(void *arg, void **value) {
  *value = IV(VI(arg) + 1);
  return 0;
}

static int fail_with(void *arg, void **value) {
  (void)value;
  return (int)VI(arg);
}

static int wait_for_event(void *arg, void **value) {
  (void)value;
  return weft_event_wait(arg, WEFT_SEC(30));
}

static atomic_int inits;
static void count_init(void *arg) {
  (void)arg;
  atomic_fetch_add(&inits, 1);
}

TEST(a_thread_pool_runs_calls_and_propagates_errors) {
  weft_thread_pool *p;
  atomic_store(&inits, 0);
  CHECK_EQ(weft_thread_pool_new(
               &p, &(weft_thread_pool_opts){.workers = 3,
                                            .initializer = count_init}),
           0);
  enum { N = 200 };
  weft_future *fs[N];
  void *args[N];
  for (int i = 0; i < N; i++)
    args[i] = IV(i);
  CHECK_EQ(weft_thread_pool_map(p, add_one, args, N, WEFT_FOREVER, fs), 0);
  for (int i = 0; i < N; i++) {
    void *v;
    int err;
    CHECK_EQ(weft_future_result(fs[i], WEFT_SEC(10), &v, &err), 0);
    CHECK_EQ(err, 0);
    CHECK_EQ(VI(v), i + 1);
    weft_future_free(fs[i]);
  }
  weft_future *f;
  CHECK_EQ(weft_thread_pool_submit(p, fail_with, IV(-EIO), WEFT_FOREVER, &f),
           0);
  int err;
  CHECK_EQ(weft_future_result(f, WEFT_SEC(10), NULL, &err), 0);
  CHECK_EQ(err, -EIO);
  weft_future_free(f);
  CHECK_EQ(weft_thread_pool_submit(p, fail_with, IV(3), WEFT_FOREVER, &f), 0);
  CHECK_EQ(weft_future_result(f, WEFT_SEC(10), NULL, &err), 0);
  CHECK_EQ(err, -EINVAL); /* a positive return */
  weft_future_free(f);
  CHECK_EQ(weft_thread_pool_shutdown(p, WEFT_POOL_WAIT), 0);
  CHECK(atomic_load(&inits) >= 1 && atomic_load(&inits) <= 3);
  CHECK_EQ(weft_thread_pool_submit(p, add_one, NULL, 0, &f), -ESHUTDOWN);
  weft_thread_pool_free(p);
}

TEST(a_call_is_cancelled_before_it_starts_not_after) {
  weft_thread_pool *p;
  CHECK_EQ(weft_thread_pool_new(&p, &(weft_thread_pool_opts){.workers = 1}), 0);
  weft_event go = WEFT_EVENT_INIT;
  weft_future *busy, *queued;
  CHECK_EQ(weft_thread_pool_submit(p, wait_for_event, &go, WEFT_FOREVER, &busy),
           0);
  CHECK_EQ(weft_thread_pool_submit(p, add_one, IV(1), WEFT_FOREVER, &queued),
           0);
  while (weft_future_state(busy) != WEFT_FUTURE_RUNNING)
    usleep(100);
  CHECK_EQ(weft_future_cancel(busy), -EBUSY);
  CHECK_EQ(weft_future_cancel(queued), 0);
  CHECK_EQ(weft_event_set(&go), 0);
  int err;
  CHECK_EQ(weft_future_result(busy, WEFT_SEC(10), NULL, &err), 0);
  CHECK_EQ(err, 0);
  CHECK_EQ(weft_future_result(queued, 0, NULL, &err), 0);
  CHECK_EQ(err, -ECANCELED);
  weft_future_free(busy);
  weft_future_free(queued);
  weft_thread_pool_free(p);
}

static void *set_later(void *arg) {
  usleep(10000);
  CHECK_EQ(weft_event_set(arg), 0);
  return NULL;
}

/* Waits up to 2 s for the flag in arg, which another call sets. */
static int wait_for_flag(void *arg, void **value) {
  (void)value;
  int64_t until = weft_now() + WEFT_SEC(2);
  while (!atomic_load((atomic_int *)arg))
    if (weft_now() > until)
      return -ETIMEDOUT;
  return 0;
}

static int set_flag(void *arg, void **value) {
  (void)value;
  atomic_store((atomic_int *)arg, 1);
  return 0;
}

TEST(a_call_submitted_while_a_worker_takes_one_is_not_left_waiting) {
  /* A call that came while the only spinner was taking calls from the
   * queue's intake once stayed there, nobody woken, until that worker was
   * done: here, never, as its call waits for the other. */
  weft_thread_pool *p;
  CHECK_EQ(weft_thread_pool_new(&p, &(weft_thread_pool_opts){.workers = 2}), 0);
  for (int round = 0; round < 2000; round++) {
    atomic_int flag = 0;
    weft_future *a, *x;
    CHECK_EQ(weft_thread_pool_submit(p, wait_for_flag, &flag, WEFT_FOREVER, &a),
             0);
    CHECK_EQ(weft_thread_pool_submit(p, set_flag, &flag, WEFT_FOREVER, &x), 0);
    int err;
    CHECK_EQ(weft_future_result(a, WEFT_SEC(10), NULL, &err), 0);
    CHECK_EQ(err, 0);
    CHECK_EQ(weft_future_result(x, WEFT_SEC(10), NULL, NULL), 0);
    weft_future_free(a);
    weft_future_free(x);
  }
  weft_thread_pool_free(p);
}

struct submits_and_waits {
  weft_thread_pool *pool;
  atomic_int done; /* the callback's wait ended: 1 well, -1 not */
};

static void callback_submits_and_waits(weft_future *f, void *arg) {
  (void)f;
  struct submits_and_waits *s = arg;
  atomic_int flag = 1;
  weft_future *g;
  int rc =
      weft_thread_pool_submit(s->pool, wait_for_flag, &flag, WEFT_FOREVER, &g);
  if (rc == 0) {
    rc = weft_future_result(g, WEFT_SEC(5), NULL, NULL);
    weft_future_free(g);
  }
  atomic_store(&s->done, rc == 0 ? 1 : -1);
}

TEST(a_callback_run_by_a_worker_may_wait_for_a_call_of_its_pool) {
  /* The worker that runs the callback once counted as coming back to the
   * queue, and so nobody was woken for the callback's own call. */
  weft_thread_pool *p;
  CHECK_EQ(weft_thread_pool_new(&p, &(weft_thread_pool_opts){.workers = 2}), 0);
  for (int round = 0; round < 20; round++) {
    /* Both workers asleep: nobody spins to find the callback's call. */
    usleep(2000);
    atomic_int flag = 1;
    struct submits_and_waits s = {.pool = p};
    weft_future *f;
    CHECK_EQ(weft_thread_pool_submit(p, wait_for_flag, &flag, WEFT_FOREVER, &f),
             0);
    CHECK_EQ(weft_future_add_done_callback(f, callback_submits_and_waits, &s),
             0);
    CHECK_EQ(weft_future_result(f, WEFT_SEC(10), NULL, NULL), 0);
    while (atomic_load(&s.done) == 0)
      usleep(100);
    CHECK_EQ(atomic_load(&s.done), 1);
    weft_future_free(f);
  }
  weft_thread_pool_free(p);
}

TEST(a_full_queue_pushes_back) {
  weft_thread_pool *p;
  CHECK_EQ(weft_thread_pool_new(
               &p, &(weft_thread_pool_opts){.workers = 1, .queue_max = 1}),
           0);
  weft_event go = WEFT_EVENT_INIT;
  weft_future *busy, *queued, *f;
  CHECK_EQ(weft_thread_pool_submit(p, wait_for_event, &go, WEFT_FOREVER, &busy),
           0);
  while (weft_future_state(busy) != WEFT_FUTURE_RUNNING)
    usleep(100);
  CHECK_EQ(weft_thread_pool_submit(p, add_one, IV(1), WEFT_FOREVER, &queued),
           0);
  /* Full: no room within the timeout, or at once. */
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_thread_pool_submit(p, add_one, IV(2), WEFT_MS(30), &f),
           -ETIMEDOUT);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(25));
  CHECK_EQ(weft_thread_pool_submit(p, add_one, IV(2), 0, &f), -EAGAIN);
  /* Room comes once the worker takes the queued call. */
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, set_later, &go), 0);
  CHECK_EQ(weft_thread_pool_submit(p, add_one, IV(2), WEFT_SEC(10), &f), 0);
  CHECK_EQ(pthread_join(t, NULL), 0);
  void *v;
  CHECK_EQ(weft_future_result(f, WEFT_SEC(10), &v, NULL), 0);
  CHECK_EQ(VI(v), 3);
  weft_future_free(busy);
  weft_future_free(queued);
  weft_future_free(f);
  weft_thread_pool_free(p);

  /* full_fails: -EAGAIN at once. */
  CHECK_EQ(
      weft_thread_pool_new(&p, &(weft_thread_pool_opts){.workers = 1,
                                                        .queue_max = 1,
                                                        .full_fails = true}),
      0);
  weft_event_clear(&go);
  CHECK_EQ(weft_thread_pool_submit(p, wait_for_event, &go, WEFT_FOREVER, &busy),
           0);
  while (weft_future_state(busy) != WEFT_FUTURE_RUNNING)
    usleep(100);
  CHECK_EQ(weft_thread_pool_submit(p, add_one, IV(1), WEFT_FOREVER, &queued),
           0);
  CHECK_EQ(weft_thread_pool_submit(p, add_one, IV(1), WEFT_FOREVER, &f),
           -EAGAIN);
  /* A shutdown that cancels what waits, then waits for what runs. */
  weft_event_set(&go);
  CHECK_EQ(weft_thread_pool_shutdown(p, WEFT_POOL_CANCEL | WEFT_POOL_WAIT), 0);
  CHECK(weft_future_done(busy));
  CHECK(weft_future_done(queued)); /* cancelled, or run first */
  weft_future_free(busy);
  weft_future_free(queued);
  weft_thread_pool_free(p);
}

static int wait_on_self(void *arg, void **value) {
  _Atomic(weft_future *) *self = arg;
  (void)value;
  weft_future *f;
  while (!(f = atomic_load(self)))
    usleep(100);
  return weft_future_result(f, WEFT_SEC(10), NULL, NULL);
}

static weft_thread_pool *deadlock_pool;
static int shut_own_pool(void *arg, void **value) {
  (void)arg;
  (void)value;
  return weft_thread_pool_shutdown(deadlock_pool, WEFT_POOL_WAIT);
}

TEST(waits_that_could_never_end_are_edeadlk) {
  weft_thread_pool *p;
  CHECK_EQ(weft_thread_pool_new(&p, NULL), 0);
  _Atomic(weft_future *) self = NULL;
  weft_future *f;
  CHECK_EQ(
      weft_thread_pool_submit(p, wait_on_self, (void *)&self, WEFT_FOREVER, &f),
      0);
  atomic_store(&self, f);
  int err;
  CHECK_EQ(weft_future_result(f, WEFT_SEC(10), NULL, &err), 0);
  CHECK_EQ(err, -EDEADLK);
  weft_future_free(f);
  deadlock_pool = p;
  CHECK_EQ(weft_thread_pool_submit(p, shut_own_pool, NULL, WEFT_FOREVER, &f),
           0);
  CHECK_EQ(weft_future_result(f, WEFT_SEC(10), NULL, &err), 0);
  CHECK_EQ(err, -EDEADLK);
  weft_future_free(f);
  weft_thread_pool_free(p);
}

TEST(thread_pool_bad_input) {
  weft_thread_pool *p;
  weft_future *f;
  CHECK_EQ(weft_thread_pool_new(NULL, NULL), -EINVAL);
  CHECK_EQ(weft_thread_pool_new(&p, &(weft_thread_pool_opts){.workers = -1}),
           -EINVAL);
  CHECK_EQ(weft_thread_pool_new(&p, &(weft_thread_pool_opts){.workers = 5000}),
           -EINVAL);
  CHECK_EQ(weft_thread_pool_new(&p, NULL), 0);
  CHECK_EQ(weft_thread_pool_submit(p, NULL, NULL, 0, &f), -EINVAL);
  CHECK_EQ(weft_thread_pool_submit(p, add_one, NULL, 0, NULL), -EINVAL);
  CHECK_EQ(weft_thread_pool_submit(p, add_one, NULL, -3, &f), -EINVAL);
  CHECK_EQ(weft_thread_pool_submit(NULL, add_one, NULL, 0, &f), -EINVAL);
  CHECK_EQ(weft_thread_pool_map(p, add_one, NULL, 1, 0, &f), -EINVAL);
  CHECK_EQ(weft_thread_pool_shutdown(NULL, 0), -EINVAL);
  CHECK_EQ(weft_thread_pool_shutdown(p, 4), -EINVAL);
  CHECK_EQ(weft_thread_pool_submit(p, add_one, IV(1), 0, &f), 0); /* works */
  CHECK_EQ(weft_future_result(f, WEFT_SEC(10), NULL, NULL), 0);
  weft_future_free(f);
  weft_thread_pool_free(p);
  weft_thread_pool_free(NULL);
}

/* Tasks of a hub wait on pool futures while another task keeps running. */
struct pool_tasks {
  weft_thread_pool *p;
  struct ticker tick;
};

static int sleep_then(void *arg, void **value) {
  usleep(20000);
  *value = arg;
  return 0;
}

static void *submit_and_wait(void *arg) {
  struct pool_tasks *pt = arg;
  weft_future *f;
  CHECK_EQ(weft_thread_pool_submit(pt->p, sleep_then, IV(9), WEFT_FOREVER, &f),
           0);
  void *v;
  CHECK_EQ(weft_future_result(f, WEFT_SEC(10), &v, NULL), 0);
  CHECK_EQ(VI(v), 9);
  weft_future_free(f);
  return NULL;
}

static void *pool_hub_main(void *arg) {
  struct pool_tasks *pt = arg;
  weft_task *t[8], *tk;
  CHECK_EQ(weft_task_spawn(&tk, ticker, &pt->tick, NULL), 0);
  for (int i = 0; i < 8; i++)
    CHECK_EQ(weft_task_spawn(&t[i], submit_and_wait, pt, NULL), 0);
  for (int i = 0; i < 8; i++) {
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
    weft_task_detach(t[i]);
  }
  CHECK(atomic_load(&pt->tick.ticks) >= 5);
  atomic_store(&pt->tick.stop, 1);
  CHECK_EQ(weft_task_join(tk, WEFT_FOREVER, NULL), 0);
  weft_task_detach(tk);
  return NULL;
}

TEST(tasks_wait_on_pool_futures_while_others_run) {
  struct pool_tasks pt = {0};
  CHECK_EQ(weft_thread_pool_new(&pt.p, &(weft_thread_pool_opts){.workers = 8}),
           0);
  CHECK_EQ(weft_run(pool_hub_main, &pt, NULL), 0);
  weft_thread_pool_free(pt.p);
}

/* --- process pools -------------------------------------------------------- */

/* The argument's bytes, each plus one. */
static int bytes_plus_one(const void *arg, size_t len, void **result,
                          size_t *result_len) {
  unsigned char *out = malloc(len ? len : 1);
  if (!out)
    return -ENOMEM;
  for (size_t i = 0; i < len; i++)
    out[i] = (unsigned char)(((const unsigned char *)arg)[i] + 1);
  *result = out;
  *result_len = len;
  return 0;
}

static int proc_fail(const void *arg, size_t len, void **result,
                     size_t *result_len) {
  (void)len, (void)result, (void)result_len;
  int e;
  memcpy(&e, arg, sizeof e);
  return e;
}

/* How the call ends its worker: 0 kill itself, 1 _exit(3), 2 abort.
 * (_exit rather than exit: under ASan, exit would run LeakSanitizer in the
 * worker, which cannot see the memory the pool's other threads reach, and
 * change the exit code.) */
static int proc_die(const void *arg, size_t len, void **result,
                    size_t *result_len) {
  (void)len, (void)result, (void)result_len;
  int how;
  memcpy(&how, arg, sizeof how);
  if (how == 0)
    kill(getpid(), SIGKILL);
  if (how == 1)
    _exit(3);
  abort();
}

static int initialized_in_worker;
static void init_worker(void *arg) { initialized_in_worker = (int)VI(arg); }

/* The worker's pid and what its initializer left. */
static int proc_whoami(const void *arg, size_t len, void **result,
                       size_t *result_len) {
  (void)arg, (void)len;
  int *out = malloc(2 * sizeof *out);
  if (!out)
    return -ENOMEM;
  out[0] = getpid();
  out[1] = initialized_in_worker;
  *result = out;
  *result_len = 2 * sizeof *out;
  return 0;
}

/* Writes its pid to the fd in arg, then sleeps until killed. */
static int proc_report_and_sleep(const void *arg, size_t len, void **result,
                                 size_t *result_len) {
  (void)len, (void)result, (void)result_len;
  int fd;
  memcpy(&fd, arg, sizeof fd);
  pid_t me = getpid();
  CHECK_EQ(write(fd, &me, sizeof me), (ssize_t)sizeof me);
  for (;;)
    pause();
}

static weft_future *proc_submit(weft_proc_pool *p, weft_proc_work_fn fn,
                                const void *arg, size_t len) {
  weft_future *f;
  CHECK_EQ(weft_proc_pool_submit(p, fn, arg, len, WEFT_FOREVER, &f), 0);
  return f;
}

/* Naps 50 ms. */
static int proc_nap(const void *arg, size_t len, void **result,
                    size_t *result_len) {
  (void)arg, (void)len, (void)result, (void)result_len;
  usleep(50000);
  return 0;
}

/* Starts all n of the pool's workers, with n calls that overlap, and
 * waits for them. The tests that submit many calls at once start the
 * workers first: a fork while this thread allocates can leave the child
 * an allocator lock held for good under AddressSanitizer (GCC 12's, whose
 * allocator takes no care of forks; glibc's does). */
static void start_workers(weft_proc_pool *p, int n) {
  weft_future *fs[8];
  for (int i = 0; i < n; i++)
    fs[i] = proc_submit(p, proc_nap, NULL, 0);
  for (int i = 0; i < n; i++) {
    CHECK_EQ(weft_future_result(fs[i], WEFT_SEC(30), NULL, NULL), 0);
    weft_future_free(fs[i]);
  }
}

/* Reads a byte from the fd in arg: a call that holds its worker until the
 * test has submitted what it wants sent together. */
static int proc_gate(const void *arg, size_t len, void **result,
                     size_t *result_len) {
  (void)len, (void)result, (void)result_len;
  int fd;
  memcpy(&fd, arg, sizeof fd);
  char b;
  return read(fd, &b, 1) == 1 ? 0 : -EIO;
}

static void check_plus_one(weft_future *f, const unsigned char *in, size_t n) {
  void *v;
  int err;
  CHECK_EQ(weft_future_result(f, WEFT_SEC(30), &v, &err), 0);
  CHECK_EQ(err, 0);
  CHECK_EQ(weft_future_size(f), n);
  for (size_t i = 0; i < n; i++)
    if (((unsigned char *)v)[i] != (unsigned char)(in[i] + 1))
      CHECK_EQ(((unsigned char *)v)[i], (unsigned char)(in[i] + 1));
}

TEST(a_process_pool_carries_bytes_and_errors) {
  weft_proc_pool *p;
  CHECK_EQ(
      weft_proc_pool_new(&p, &(weft_proc_pool_opts){.workers = 2,
                                                    .initializer = init_worker,
                                                    .initializer_arg = IV(77)}),
      0);
  start_workers(p, 2);
  unsigned char small[64];
  for (int i = 0; i < 64; i++)
    small[i] = (unsigned char)(i * 3);
  weft_future *fs[20];
  for (int i = 0; i < 20; i++)
    fs[i] = proc_submit(p, bytes_plus_one, small, sizeof small);
  for (int i = 0; i < 20; i++) {
    check_plus_one(fs[i], small, sizeof small);
    weft_future_free(fs[i]);
  }
  int e = -EIO;
  weft_future *f = proc_submit(p, proc_fail, &e, sizeof e);
  int err;
  CHECK_EQ(weft_future_result(f, WEFT_SEC(30), NULL, &err), 0);
  CHECK_EQ(err, -EIO);
  CHECK_EQ(weft_future_worker_exit(f, NULL), -ENOENT);
  weft_future_free(f);
  f = proc_submit(p, proc_whoami, NULL, 0);
  void *v;
  CHECK_EQ(weft_future_result(f, WEFT_SEC(30), &v, &err), 0);
  CHECK_EQ(((int *)v)[1], 77); /* the initializer ran in the worker */
  CHECK(((int *)v)[0] != getpid());
  weft_future_free(f);
  /* 64 MiB each way. */
  size_t big = (size_t)64 << 20;
  unsigned char *in = malloc(big);
  CHECK(in != NULL);
  for (size_t i = 0; i < big; i++)
    in[i] = (unsigned char)(i * 7 + (i >> 13));
  f = proc_submit(p, bytes_plus_one, in, big);
  check_plus_one(f, in, big);
  weft_future_free(f);
  free(in);
  CHECK_EQ(weft_proc_pool_shutdown(p, WEFT_POOL_WAIT), 0);
  CHECK_EQ(weft_proc_pool_submit(p, proc_whoami, NULL, 0, 0, &f), -ESHUTDOWN);
  weft_proc_pool_free(p);
  /* No worker is left, zombie or not. */
  errno = 0;
  CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
  CHECK_EQ(errno, ECHILD);
}

TEST(a_dying_worker_fails_only_its_call) {
  /* Made before any worker, which inherits it as a fork. */
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  weft_proc_pool *p;
  CHECK_EQ(weft_proc_pool_new(&p, &(weft_proc_pool_opts){.workers = 2}), 0);
  int codes[] = {-SIGKILL, 3, -SIGABRT};
  for (int how = 0; how < 3; how++) {
    weft_future *dies = proc_submit(p, proc_die, &how, sizeof how);
    int err, code;
    CHECK_EQ(weft_future_result(dies, WEFT_SEC(30), NULL, &err), 0);
    CHECK_EQ(err, -EOWNERDEAD);
    CHECK_EQ(weft_future_worker_exit(dies, &code), 0);
    CHECK_EQ(code, codes[how]);
    weft_future_free(dies);
    /* The pool goes on. */
    unsigned char b[64] = {1, 2, 3};
    weft_future *next = proc_submit(p, bytes_plus_one, b, sizeof b);
    check_plus_one(next, b, sizeof b);
    weft_future_free(next);
  }
  /* SIGKILLed from outside while it runs. */
  weft_future *f =
      proc_submit(p, proc_report_and_sleep, &fds[1], sizeof fds[1]);
  pid_t victim;
  CHECK_EQ(read(fds[0], &victim, sizeof victim), (ssize_t)sizeof victim);
  CHECK_EQ(kill(victim, SIGKILL), 0);
  int err, code;
  CHECK_EQ(weft_future_result(f, WEFT_SEC(30), NULL, &err), 0);
  CHECK_EQ(err, -EOWNERDEAD);
  CHECK_EQ(weft_future_worker_exit(f, &code), 0);
  CHECK_EQ(code, -SIGKILL);
  weft_future_free(f);
  close(fds[0]);
  close(fds[1]);
  unsigned char b[64] = {9};
  f = proc_submit(p, bytes_plus_one, b, sizeof b);
  check_plus_one(f, b, sizeof b);
  weft_future_free(f);
  weft_proc_pool_free(p);
  errno = 0;
  CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
  CHECK_EQ(errno, ECHILD);
}

TEST(a_worker_is_replaced_after_max_calls) {
  weft_proc_pool *p;
  CHECK_EQ(weft_proc_pool_new(
               &p, &(weft_proc_pool_opts){.workers = 1, .max_calls = 2}),
           0);
  int pids[6];
  for (int i = 0; i < 6; i++) {
    weft_future *f = proc_submit(p, proc_whoami, NULL, 0);
    void *v;
    CHECK_EQ(weft_future_result(f, WEFT_SEC(30), &v, NULL), 0);
    pids[i] = ((int *)v)[0];
    weft_future_free(f);
  }
  for (int i = 0; i < 6; i += 2) {
    CHECK_EQ(pids[i], pids[i + 1]);
    if (i > 0)
      CHECK(pids[i] != pids[i - 1]);
  }
  weft_proc_pool_free(p);
}

/* Calls that count their runs in memory shared with the test (mapped
 * before the pool forks its workers), each by its index; some die. */
static _Atomic int *runs;

struct counted {
  int index;
  int die; /* 0: no; 1: SIGKILL; 2: exit(4); 3: abort */
};

static int proc_counted(const void *arg, size_t len, void **result,
                        size_t *result_len) {
  (void)len;
  struct counted c;
  memcpy(&c, arg, sizeof c);
  atomic_fetch_add(&runs[c.index], 1);
  if (c.die == 1)
    kill(getpid(), SIGKILL);
  if (c.die == 2)
    _exit(4);
  if (c.die == 3)
    abort();
  int *out = malloc(sizeof *out);
  if (!out)
    return -ENOMEM;
  *out = c.index * 10;
  *result = out;
  *result_len = sizeof *out;
  return 0;
}

TEST(a_death_among_calls_sent_together_fails_only_the_running_one) {
  enum { N = 60 };
  runs = mmap(NULL, N * sizeof *runs, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(runs != MAP_FAILED);
  /* One worker: the calls go to it in shares of several at once, held
   * back by a gate until all are submitted (the workers that replace the
   * dead are forked while this thread allocates nothing: start_workers). */
  int gate[2];
  CHECK_EQ(pipe(gate), 0);
  weft_proc_pool *p;
  CHECK_EQ(weft_proc_pool_new(&p, &(weft_proc_pool_opts){.workers = 1}), 0);
  start_workers(p, 1);
  weft_future *held = proc_submit(p, proc_gate, &gate[0], sizeof gate[0]);
  weft_future *fs[N];
  for (int i = 0; i < N; i++) {
    struct counted c = {i, i == 10 ? 1 : i == 25 ? 2 : i == 40 ? 3 : 0};
    fs[i] = proc_submit(p, proc_counted, &c, sizeof c);
  }
  CHECK_EQ(write(gate[1], "", 1), 1);
  CHECK_EQ(weft_future_result(held, WEFT_SEC(30), NULL, NULL), 0);
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_future_result(fs[i], WEFT_SEC(30), NULL, NULL), 0);
  int codes[] = {0, -SIGKILL, 4, -SIGABRT};
  for (int i = 0; i < N; i++) {
    void *v;
    int err, code;
    CHECK_EQ(weft_future_result(fs[i], WEFT_SEC(30), &v, &err), 0);
    int die = i == 10 ? 1 : i == 25 ? 2 : i == 40 ? 3 : 0;
    if (die) {
      CHECK_EQ(err, -EOWNERDEAD);
      CHECK_EQ(weft_future_worker_exit(fs[i], &code), 0);
      CHECK_EQ(code, codes[die]);
    } else {
      CHECK_EQ(err, 0);
      CHECK_EQ(*(int *)v, i * 10);
    }
    /* Every call ran once: none twice, none lost with a dead worker. */
    CHECK_EQ(atomic_load(&runs[i]), 1);
  }
  for (int i = 0; i < N; i++)
    weft_future_free(fs[i]);
  weft_future_free(held);
  weft_proc_pool_free(p);
  munmap(runs, N * sizeof *runs);
  close(gate[0]);
  close(gate[1]);
}

TEST(long_and_short_messages_sent_together_keep_their_order) {
  weft_proc_pool *p;
  CHECK_EQ(weft_proc_pool_new(&p, &(weft_proc_pool_opts){.workers = 1}), 0);
  start_workers(p, 1);
  /* Over and under what a worker's queues take in one message (64 KiB). */
  size_t sizes[] = {64, 200 << 10, 0, 1 << 20, 64, 64, 100 << 10, 65520, 8};
  enum { K = sizeof sizes / sizeof *sizes };
  unsigned char *in[K];
  weft_future *fs[K];
  for (int i = 0; i < K; i++) {
    in[i] = malloc(sizes[i] ? sizes[i] : 1);
    CHECK(in[i] != NULL);
    for (size_t j = 0; j < sizes[i]; j++)
      in[i][j] = (unsigned char)(i * 31 + j * 7 + (j >> 9));
    fs[i] = proc_submit(p, bytes_plus_one, in[i], sizes[i]);
  }
  for (int i = 0; i < K; i++) {
    check_plus_one(fs[i], in[i], sizes[i]);
    weft_future_free(fs[i]);
    free(in[i]);
  }
  weft_proc_pool_free(p);
}

static void die_at_start(void *arg) { _exit((int)VI(arg)); }

TEST(a_worker_that_dies_as_it_starts_fails_calls_and_does_not_hang) {
  weft_proc_pool *p;
  CHECK_EQ(
      weft_proc_pool_new(&p, &(weft_proc_pool_opts){.workers = 1,
                                                    .initializer = die_at_start,
                                                    .initializer_arg = IV(5)}),
      0);
  weft_future *fs[3];
  for (int i = 0; i < 3; i++)
    fs[i] = proc_submit(p, proc_whoami, NULL, 0);
  for (int i = 0; i < 3; i++) {
    int err, code;
    CHECK_EQ(weft_future_result(fs[i], WEFT_SEC(30), NULL, &err), 0);
    CHECK_EQ(err, -EOWNERDEAD);
    CHECK_EQ(weft_future_worker_exit(fs[i], &code), 0);
    CHECK_EQ(code, 5);
    weft_future_free(fs[i]);
  }
  weft_proc_pool_free(p);
  errno = 0;
  CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
  CHECK_EQ(errno, ECHILD);
}

TEST(max_calls_holds_for_calls_sent_together) {
  weft_proc_pool *p;
  CHECK_EQ(weft_proc_pool_new(
               &p, &(weft_proc_pool_opts){.workers = 1, .max_calls = 3}),
           0);
  /* Held back by a gate until all are submitted (start_workers). */
  int gate[2];
  CHECK_EQ(pipe(gate), 0);
  start_workers(p, 1);
  weft_future *held = proc_submit(p, proc_gate, &gate[0], sizeof gate[0]);
  enum { N = 20 };
  weft_future *fs[N];
  for (int i = 0; i < N; i++)
    fs[i] = proc_submit(p, proc_whoami, NULL, 0);
  CHECK_EQ(write(gate[1], "", 1), 1);
  int pids[N];
  for (int i = 0; i < N; i++) {
    void *v;
    CHECK_EQ(weft_future_result(fs[i], WEFT_SEC(30), &v, NULL), 0);
    pids[i] = ((int *)v)[0];
  }
  for (int i = 0; i < N; i++)
    weft_future_free(fs[i]);
  weft_future_free(held);
  close(gate[0]);
  close(gate[1]);
  /* One worker at a time, in order: runs of at most 3 calls a pid, and
   * a pid's calls together. */
  bool in_runs = true;
  for (int i = 0, run = 1; i < N; i++, run++) {
    if (i > 0 && pids[i] != pids[i - 1])
      run = 1;
    in_runs = in_runs && run <= 3;
    for (int j = 0; j < i; j++)
      in_runs = in_runs && (pids[j] != pids[i] || j >= i - 2);
  }
  if (!in_runs) /* the order, for the report (seen once under qemu) */
    for (int i = 0; i < N; i++)
      fprintf(stderr, "%d%c", pids[i], i + 1 < N ? ' ' : '\n');
  CHECK(in_runs);
  weft_proc_pool_free(p);
}

TEST(process_pool_bad_input) {
  weft_proc_pool *p;
  weft_future *f;
  CHECK_EQ(weft_proc_pool_new(NULL, NULL), -EINVAL);
  CHECK_EQ(weft_proc_pool_new(&p, &(weft_proc_pool_opts){.workers = 1025}),
           -EINVAL);
  CHECK_EQ(weft_proc_pool_new(&p, &(weft_proc_pool_opts){.max_calls = -1}),
           -EINVAL);
  CHECK_EQ(weft_proc_pool_new(&p, &(weft_proc_pool_opts){.workers = 1}), 0);
  CHECK_EQ(weft_proc_pool_submit(p, NULL, NULL, 0, 0, &f), -EINVAL);
  CHECK_EQ(weft_proc_pool_submit(p, proc_whoami, NULL, 4, 0, &f), -EINVAL);
  CHECK_EQ(weft_proc_pool_submit(p, proc_whoami, NULL, 0, 0, NULL), -EINVAL);
  CHECK_EQ(weft_proc_pool_submit(p, proc_whoami, NULL, 0, -2, &f), -EINVAL);
  CHECK_EQ(weft_proc_pool_shutdown(p, 8), -EINVAL);
  CHECK_EQ(weft_future_worker_exit(NULL, NULL), -EINVAL);
  weft_proc_pool_free(p);
  weft_proc_pool_free(NULL);
}
