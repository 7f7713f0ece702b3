/*
 * Copied-stack generators (weft_gen_opts.copied), beyond test-gen's cases,
 * which ctest also runs with copied generators (gen-copied): many of them
 * taking turns on one stack with pointers into their own frames; one
 * evicted by another of its stack that a generator of its own resumed;
 * a stack in use by another thread's chain, or by a task waiting inside
 * one, refusing its other generators with -EBUSY and nothing changed;
 * and what a hundred thousand of them cost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <weft.h>

#include WEFT_MACHINE_CTX_H /* WEFT__MACHINE_SP_KNOWN */

#include "harness.h"

static const weft_gen_opts copied = {.copied = true};

/* For the cases that tell a copied generator from one with its own stack. */
static void need_shared_stacks(void) {
  if (!WEFT__MACHINE_SP_KNOWN)
    harness_skip("this build (ucontext) cannot copy frames: copied "
                 "generators get stacks of their own");
}

/* --- many on one stack ---------------------------------------------------
 */

/* Keeps a buffer and a pointer to it in its frame, checks both at every
 * resume, and yields its running count (negative: what it found wrong). */
static void *keeper(void *arg) {
  intptr_t id = VI(arg);
  char buf[200];
  memset(buf, (int)(id & 0x7f), sizeof buf);
  char *volatile p = buf;
  intptr_t count = 0;
  for (;;) {
    void *in;
    if (weft_gen_yield(IV(count), &in) != 0)
      return IV(count);
    for (size_t i = 0; i < sizeof buf; i++)
      if (p[i] != (char)(id & 0x7f))
        return IV(-1 - (intptr_t)i);
    if (VI(in) != id)
      return IV(-1000);
    count++;
    p[count % sizeof buf] = (char)(id & 0x7f); /* a write through it */
  }
}

TEST(frames_and_pointers_into_them_survive_many_turns) {
  enum { N = 64, ROUNDS = 300 };
  weft_gen *g[N];
  void *v;
  for (int i = 0; i < N; i++) {
    CHECK_EQ(weft_gen_new(&g[i], keeper, IV(i), &copied), 0);
    CHECK_EQ(weft_gen_next(g[i], &v), WEFT_GEN_YIELDED);
  }
  for (int r = 1; r <= ROUNDS; r++)
    for (int i = 0; i < N; i++) {
      /* Each turn copies the last one's frames off and these back. */
      CHECK_EQ(weft_gen_resume(g[i], IV(i), &v), WEFT_GEN_YIELDED);
      CHECK_EQ(VI(v), r);
    }
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_gen_free(g[i]), 0);
}

/* --- evicted through a generator of its own -----------------------------
 */

static weft_gen *inner_copied;

/* A generator with a stack of its own: resumes inner_copied once. */
static void *go_between(void *arg) {
  (void)arg;
  void *v = NULL;
  int rc = weft_gen_next(inner_copied, &v);
  return rc == WEFT_GEN_YIELDED ? v : IV(-1);
}

/* A copied generator that resumes go_between with its locals in use. */
static void *outer_copied(void *arg) {
  (void)arg;
  char mark[64];
  memset(mark, 'A', sizeof mark);
  weft_gen *between;
  if (weft_gen_new(&between, go_between, NULL, NULL) != 0)
    return IV(-1);
  void *v = IV(0); /* its address is the out of go_between's resume */
  int rc = weft_gen_next(between, &v);
  weft_gen_free(between);
  for (size_t i = 0; i < sizeof mark; i++)
    if (mark[i] != 'A')
      return IV(-2);
  return rc == WEFT_GEN_RETURNED ? v : IV(-3);
}

/* Bound to the same stack as outer_copied (the same thread ran both first):
 * running it copies outer_copied's frames off while outer_copied waits in
 * a resume further up the chain. */
static void *yields_its_mark(void *arg) {
  char mark[64];
  memset(mark, 'B', sizeof mark);
  weft_gen_yield(IV(VI(arg) + (mark[5] == 'B')), NULL);
  weft_gen_yield(IV(VI(arg) + (mark[9] == 'B')), NULL);
  return NULL;
}

TEST(a_member_of_the_chain_evicted_from_its_stack_comes_back) {
  CHECK_EQ(weft_gen_new(&inner_copied, yields_its_mark, IV(41), &copied), 0);
  void *v;
  CHECK_EQ(weft_gen_next(inner_copied, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 42);
  weft_gen *outer;
  CHECK_EQ(weft_gen_new(&outer, outer_copied, NULL, &copied), 0);
  CHECK_EQ(weft_gen_next(outer, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(VI(v), 42);
  CHECK_EQ(weft_gen_next(inner_copied, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(weft_gen_free(outer), 0);
  CHECK_EQ(weft_gen_free(inner_copied), 0);
}

/* --- one resuming another of its stack ------------------------------------
 */

/* Yields the sum of what it is sent so far, through a local of its own. */
static void *summer(void *arg) {
  intptr_t sum = VI(arg);
  for (;;) {
    void *in;
    if (weft_gen_yield(IV(sum), &in) != 0)
      return IV(sum);
    sum += VI(in);
  }
}

/* Resumes *arg, a generator of its own shared stack, sending values and
 * taking the answers into its locals, and by yield-from at the end. */
static void *driver(void *arg) {
  weft_gen *sub = arg;
  char mark[96];
  memset(mark, 'D', sizeof mark);
  intptr_t total = 0;
  for (intptr_t i = 1; i <= 50; i++) {
    void *v = NULL;
    if (weft_gen_resume(sub, IV(i), &v) != WEFT_GEN_YIELDED)
      return IV(-1);
    total = VI(v);
    if (weft_gen_yield(IV(total), NULL) != 0)
      return IV(-2);
  }
  for (size_t i = 0; i < sizeof mark; i++)
    if (mark[i] != 'D')
      return IV(-3);
  void *r = NULL;
  int rc = weft_gen_yield_from(sub, &r); /* until it is closed: -ECANCELED */
  return rc == -ECANCELED ? IV(total) : IV(-4);
}

TEST(a_generator_resumes_another_of_its_own_stack) {
  weft_gen *sub, *drv;
  void *v;
  /* Both first resumed from here, one after the other: one stack. */
  CHECK_EQ(weft_gen_new(&sub, summer, IV(1000), &copied), 0);
  CHECK_EQ(weft_gen_next(sub, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_new(&drv, driver, sub, &copied), 0);
  intptr_t expect = 1000;
  for (intptr_t i = 1; i <= 50; i++) {
    /* Each turn the swapper copies one off and the other on, both ways. */
    CHECK_EQ(weft_gen_next(drv, &v), WEFT_GEN_YIELDED);
    expect += i;
    CHECK_EQ(VI(v), expect);
  }
  CHECK_EQ(weft_gen_next(drv, &v), WEFT_GEN_YIELDED); /* sub's, through */
  CHECK_EQ(VI(v), expect);
  CHECK_EQ(weft_gen_close(drv), 0); /* closes sub first */
  CHECK_EQ(weft_gen_state(sub), WEFT_GEN_FINISHED);
  CHECK_EQ(weft_gen_free(drv), 0);
  CHECK_EQ(weft_gen_free(sub), 0);
}

/* A parent hands the child it makes a pointer into its own frame, the
 * way C code does: the child, first resumed by the parent, runs on
 * another stack than the parent's. */
static void *child_writes(void *arg) {
  *(int *)arg = 42;
  weft_gen_yield(NULL, NULL);
  *(int *)arg += 1;
  return NULL;
}

static void *parent_lends(void *arg) {
  (void)arg;
  int result = 0;
  weft_gen *child;
  if (weft_gen_new(&child, child_writes, &result, &copied) != 0)
    return IV(-1);
  weft_gen_next(child, NULL);
  int first = result;
  weft_gen_yield(NULL, NULL);
  weft_gen_next(child, NULL);
  weft_gen_free(child);
  return IV(first * 100 + result);
}

TEST(a_child_first_resumed_by_its_parent_can_use_the_parents_locals) {
  weft_gen *p;
  void *v;
  CHECK_EQ(weft_gen_new(&p, parent_lends, NULL, &copied), 0);
  CHECK_EQ(weft_gen_next(p, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_next(p, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(VI(v), 42 * 100 + 43);
  CHECK_EQ(weft_gen_free(p), 0);
}

/* --- a stack another chain uses ------------------------------------------
 */

struct blocker {
  int fds[2]; /* the generator reads a byte from fds[0] before it yields */
  weft_gen *g;
  int rc;
  atomic_int runs; /* times the generator began to wait for a byte */
};

static void *waits_for_a_byte(void *arg) {
  struct blocker *b = arg;
  for (;;) {
    atomic_fetch_add(&b->runs, 1);
    char c;
    if (read(b->fds[0], &c, 1) != 1)
      return IV(-1);
    if (weft_gen_yield(IV(c), NULL) != 0)
      return NULL;
  }
}

static void *resume_blocker(void *arg) {
  struct blocker *b = arg;
  b->rc = weft_gen_next(b->g, NULL);
  return NULL;
}

static void *yield_forever(void *arg) {
  while (weft_gen_yield(arg, NULL) == 0)
    ;
  return NULL;
}

TEST(a_stack_another_thread_runs_on_refuses_its_other_generators) {
  need_shared_stacks();
  struct blocker b = {.runs = 0};
  CHECK_EQ(pipe(b.fds), 0);
  weft_gen *other;
  CHECK_EQ(weft_gen_new(&b.g, waits_for_a_byte, &b, &copied), 0);
  CHECK_EQ(weft_gen_new(&other, yield_forever, IV(7), &copied), 0);
  /* Both bound to this thread's stack. */
  CHECK_EQ(write(b.fds[1], "x", 1), 1);
  CHECK_EQ(weft_gen_next(b.g, NULL), WEFT_GEN_YIELDED);
  void *v;
  CHECK_EQ(weft_gen_next(other, &v), WEFT_GEN_YIELDED);
  /* Another thread runs b.g, which waits for a byte on that stack. */
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, resume_blocker, &b), 0);
  /* Inside the generator, on the shared stack: its state says RUNNING
   * already when the other thread has only claimed it. */
  while (atomic_load(&b.runs) < 2)
    usleep(1000);
  CHECK_EQ(weft_gen_next(other, &v), -EBUSY);
  CHECK_EQ(weft_gen_close(other), -EBUSY);
  CHECK_EQ(weft_gen_free(other), -EBUSY);
  CHECK_EQ(weft_gen_state(other), WEFT_GEN_SUSPENDED);
  /* A new one is bound to another stack of this thread's, and runs. */
  weft_gen *fresh;
  CHECK_EQ(weft_gen_new(&fresh, yield_forever, IV(8), &copied), 0);
  CHECK_EQ(weft_gen_next(fresh, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 8);
  /* Once b.g yields on the other thread, its stack is free again. */
  CHECK_EQ(write(b.fds[1], "y", 1), 1);
  CHECK_EQ(pthread_join(th, NULL), 0);
  CHECK_EQ(b.rc, WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_next(other, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 7);
  /* And b.g, which last ran on the other thread, runs here. */
  CHECK_EQ(write(b.fds[1], "z", 1), 1);
  CHECK_EQ(weft_gen_next(b.g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 'z');
  CHECK_EQ(weft_gen_free(b.g), 0);
  CHECK_EQ(weft_gen_free(other), 0);
  CHECK_EQ(weft_gen_free(fresh), 0);
  close(b.fds[0]);
  close(b.fds[1]);
}

/* --- a task waiting inside one -------------------------------------------
 */

static weft_gen *sleeper_gen, *bystander_gen;

static void *sleeps_inside(void *arg) {
  (void)arg;
  weft_sleep(WEFT_MS(100));
  weft_gen_yield(IV(1), NULL);
  return NULL;
}

static void *sleeper_task(void *arg) {
  (void)arg;
  return IV(weft_gen_next(sleeper_gen, NULL));
}

static void *tasks(void *arg) {
  (void)arg;
  void *v;
  if (weft_gen_new(&sleeper_gen, sleeps_inside, NULL, &copied) != 0 ||
      weft_gen_new(&bystander_gen, yield_forever, IV(3), &copied) != 0 ||
      weft_gen_next(bystander_gen, &v) != WEFT_GEN_YIELDED)
    return IV(-1);
  weft_task *t;
  if (weft_task_spawn(&t, sleeper_task, NULL, NULL) != 0)
    return IV(-2);
  weft_sleep(WEFT_MS(20)); /* the sleeper waits inside its generator */
  /* Both were bound to this thread's one stack: the sleeper's task holds
   * it, so the bystander cannot run; the hub, and this task, go on. */
  if (weft_gen_next(bystander_gen, &v) != -EBUSY)
    return IV(-3);
  void *r;
  if (weft_task_join(t, WEFT_FOREVER, &r) != 0 || VI(r) != WEFT_GEN_YIELDED)
    return IV(-4);
  if (weft_gen_next(bystander_gen, &v) != WEFT_GEN_YIELDED || VI(v) != 3)
    return IV(-5);
  if (weft_gen_free(sleeper_gen) != 0 || weft_gen_free(bystander_gen) != 0)
    return IV(-6);
  return IV(0);
}

TEST(a_task_waiting_inside_one_holds_its_stack) {
  need_shared_stacks();
  void *r;
  CHECK_EQ(weft_run(tasks, NULL, &r), 0);
  CHECK_EQ(VI(r), 0);
}

/* --- what they cost ---------------------------------------------------------
 */

static long resident_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f)
    return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
    resident = -1;
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

TEST(a_hundred_thousand_cost_little) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  harness_skip("sanitizers keep freed memory and shadow it");
#endif
  need_shared_stacks();
  enum { N = 100000 };
  static weft_gen *g[N];
  long before = resident_bytes();
  for (int i = 0; i < N; i++) {
    CHECK_EQ(weft_gen_new(&g[i], yield_forever, IV(i), &copied), 0);
    CHECK_EQ(weft_gen_next(g[i], NULL), WEFT_GEN_YIELDED);
  }
  long per = (resident_bytes() - before) / N;
  /* A generator's object and its frames off the stack: a few hundred
   * bytes (bench/gen.c measures it); an own stack's page would be 4 KiB. */
  if (per > 1024)
    harness_fail(__FILE__, __LINE__, "%ld bytes per generator", per);
  for (int i = 0; i < N; i++) {
    void *v;
    CHECK_EQ(weft_gen_next(g[i], &v), WEFT_GEN_YIELDED);
    CHECK_EQ(VI(v), i);
    CHECK_EQ(weft_gen_free(g[i]), 0);
  }
}
