/*
 * Generators: values both ways, return, throw, close, nesting, yield from,
 * deep recursion, many alive, cross-thread resume, overflow, bad use.
 */
#define _GNU_SOURCE
#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <weft.h>

#include "../src/gen/gen-private.h" /* the bias, to mark it */

#include "harness.h"

/* Each case runs twice: as test-gen, with generators of their own stacks,
 * and as ctest's gen-copied (WEFT_TEST_GEN_COPIED=1), with copied ones
 * (weft_gen_opts.copied). */
static bool copied_mode(void) {
  const char *e = getenv("WEFT_TEST_GEN_COPIED");
  return e && *e == '1';
}

static int gen_new(weft_gen **g, weft_gen_fn fn, void *arg,
                   const weft_gen_opts *o) {
  weft_gen_opts c = o ? *o : (weft_gen_opts){0};
  c.copied = copied_mode();
  return weft_gen_new(g, fn, arg, &c);
}

/* --- values both ways --------------------------------------------------- */

/* Yields its running total; adds what it is sent; returns the count. */
static void *adder(void *arg) {
  intptr_t total = VI(arg), n = 0;
  void *in;
  while (weft_gen_yield(IV(total), &in) == 0) {
    if (VI(in) < 0)
      break;
    total += VI(in);
    n++;
  }
  return IV(1000000 + n);
}

TEST(values_both_ways) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, adder, IV(5), NULL), 0);
  CHECK_EQ(weft_gen_state(g), WEFT_GEN_CREATED);
  void *v;
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 5);
  intptr_t expect = 5;
  for (int i = 1; i <= 20000; i++) {
    CHECK_EQ(weft_gen_state(g), WEFT_GEN_SUSPENDED);
    CHECK_EQ(weft_gen_resume(g, IV(i), &v), WEFT_GEN_YIELDED);
    expect += i;
    CHECK_EQ(VI(v), expect);
  }
  CHECK_EQ(weft_gen_resume(g, IV(-1), &v), WEFT_GEN_RETURNED);
  CHECK_EQ(VI(v), 1000000 + 20000);
  CHECK_EQ(weft_gen_state(g), WEFT_GEN_FINISHED);
  CHECK_EQ(weft_gen_free(g), 0);
}

static void *count_to(void *arg) {
  for (intptr_t i = 0; i < VI(arg); i++)
    weft_gen_yield(IV(i), NULL);
  return IV(-7);
}

TEST(return_value_and_finished) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, count_to, IV(3), NULL), 0);
  void *v;
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
    CHECK_EQ(VI(v), i);
  }
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(VI(v), -7);
  v = IV(99);
  CHECK_EQ(weft_gen_next(g, &v), -ENODATA);
  CHECK_EQ(VI(v), 99); /* untouched on error */
  CHECK_EQ(weft_gen_throw(g, -EIO, &v), -ENODATA);
  CHECK_EQ(weft_gen_close(g), 0);
  CHECK_EQ(weft_gen_state(g), WEFT_GEN_FINISHED);
  CHECK_EQ(weft_gen_next(g, NULL), -ENODATA);
  CHECK_EQ(weft_gen_free(g), 0);
}

TEST(first_send_must_be_null) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, adder, IV(0), NULL), 0);
  CHECK_EQ(weft_gen_resume(g, IV(3), NULL), -EINVAL);
  CHECK_EQ(weft_gen_state(g), WEFT_GEN_CREATED);
  void *v;
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 0);
  CHECK_EQ(weft_gen_free(g), 0);
}

/* --- throw ---------------------------------------------------------------- */

/* Yields each error thrown into it, as a positive number; returns when it is
 * thrown -EPIPE or closed. */
static void *catcher(void *arg) {
  (void)arg;
  void *out = IV(0);
  for (;;) {
    int rc = weft_gen_yield(out, NULL);
    if (rc == -EPIPE)
      return IV(4242);
    if (rc == -ECANCELED)
      return NULL;
    out = IV(-rc);
  }
}

TEST(throw_caught_and_propagated) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, catcher, NULL, NULL), 0);
  void *v;
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_throw(g, -EIO, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), EIO);
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 0); /* a plain resume delivers no error */
  CHECK_EQ(weft_gen_throw(g, -ETIMEDOUT, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), ETIMEDOUT);
  CHECK_EQ(weft_gen_throw(g, 0, &v), -EINVAL);
  CHECK_EQ(weft_gen_throw(g, 5, &v), -EINVAL);
  CHECK_EQ(weft_gen_state(g), WEFT_GEN_SUSPENDED);
  CHECK_EQ(weft_gen_throw(g, -EPIPE, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(VI(v), 4242);
  CHECK_EQ(weft_gen_free(g), 0);
}

TEST(throw_into_unstarted_generator) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, catcher, NULL, NULL), 0);
  CHECK_EQ(weft_gen_throw(g, -EIO, NULL), -EIO);
  CHECK_EQ(weft_gen_state(g), WEFT_GEN_FINISHED);
  CHECK_EQ(weft_gen_next(g, NULL), -ENODATA);
  CHECK_EQ(weft_gen_free(g), 0);
}

/* --- close ---------------------------------------------------------------- */

static int cleaned_up;

static void *with_cleanup(void *arg) {
  (void)arg;
  void *buf = malloc(64);
  int rc;
  intptr_t i = 0;
  while ((rc = weft_gen_yield(IV(i++), NULL)) == 0)
    ;
  free(buf);
  cleaned_up = rc;
  return IV(77);
}

TEST(close_runs_cleanup) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, with_cleanup, NULL, NULL), 0);
  CHECK_EQ(weft_gen_next(g, NULL), WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_next(g, NULL), WEFT_GEN_YIELDED);
  cleaned_up = 0;
  CHECK_EQ(weft_gen_close(g), 0);
  CHECK_EQ(cleaned_up, -ECANCELED);
  CHECK_EQ(weft_gen_state(g), WEFT_GEN_FINISHED);
  CHECK_EQ(weft_gen_close(g), 0); /* closing again is harmless */
  CHECK_EQ(weft_gen_free(g), 0);
}

TEST(close_and_free_unstarted) {
  weft_gen *g;
  cleaned_up = 0;
  CHECK_EQ(gen_new(&g, with_cleanup, NULL, NULL), 0);
  CHECK_EQ(weft_gen_close(g), 0);
  CHECK_EQ(cleaned_up, 0); /* never ran */
  CHECK_EQ(weft_gen_state(g), WEFT_GEN_FINISHED);
  CHECK_EQ(weft_gen_free(g), 0);
  CHECK_EQ(gen_new(&g, with_cleanup, NULL, NULL), 0);
  CHECK_EQ(weft_gen_free(g), 0);
  CHECK_EQ(cleaned_up, 0);
}

TEST(free_closes_a_suspended_generator) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, with_cleanup, NULL, NULL), 0);
  CHECK_EQ(weft_gen_next(g, NULL), WEFT_GEN_YIELDED);
  cleaned_up = 0;
  CHECK_EQ(weft_gen_free(g), 0);
  CHECK_EQ(cleaned_up, -ECANCELED);
}

static void *stubborn(void *arg) {
  (void)arg;
  for (int i = 0;; i++)
    weft_gen_yield(IV(i), NULL); /* ignores -ECANCELED */
  return NULL;
}

TEST(close_ignored_is_reported) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, stubborn, NULL, NULL), 0);
  CHECK_EQ(weft_gen_next(g, NULL), WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_close(g), -EPROTO);
  CHECK_EQ(weft_gen_state(g), WEFT_GEN_SUSPENDED);
  void *v;
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 2);
  CHECK_EQ(weft_gen_free(g), -EPROTO); /* reported, and freed all the same */
}

/* --- nesting and yield from ---------------------------------------------- */

/* A chain: each level resumes the next and yields what it gets, plus one. */
static void *level(void *arg) {
  intptr_t depth = VI(arg);
  if (depth == 0) {
    for (intptr_t i = 0; i < 100; i++)
      weft_gen_yield(IV(i), NULL);
    return IV(0);
  }
  weft_gen *inner;
  if (gen_new(&inner, level, IV(depth - 1), NULL) != 0)
    return IV(-1);
  void *v;
  while (weft_gen_next(inner, &v) == WEFT_GEN_YIELDED) {
    if (weft_gen_current() == NULL)
      return IV(-2);
    weft_gen_yield(IV(VI(v) + 1), NULL);
  }
  weft_gen_free(inner);
  return IV(depth);
}

TEST(nested_generators) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, level, IV(12), NULL), 0);
  void *v;
  for (intptr_t i = 0; i < 100; i++) {
    CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
    CHECK_EQ(VI(v), i + 12);
  }
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(VI(v), 12);
  CHECK_EQ(weft_gen_free(g), 0);
  CHECK(weft_gen_current() == NULL);
}

static void *delegator(void *arg) {
  weft_gen *sub = arg;
  weft_gen_yield(IV(-100), NULL);
  void *r = NULL;
  int rc = weft_gen_yield_from(sub, &r);
  if (rc == -ECANCELED) {
    cleaned_up = 1;
    return NULL;
  }
  weft_gen_yield(IV(rc == 0 ? VI(r) : rc), NULL);
  return IV(-200);
}

TEST(yield_from_delegates_send_throw_and_return) {
  weft_gen *sub, *g;
  CHECK_EQ(gen_new(&sub, adder, IV(10), NULL), 0);
  CHECK_EQ(gen_new(&g, delegator, sub, NULL), 0);
  void *v;
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), -100);
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED); /* sub's first yield */
  CHECK_EQ(VI(v), 10);
  CHECK_EQ(weft_gen_resume(g, IV(5), &v), WEFT_GEN_YIELDED); /* to sub */
  CHECK_EQ(VI(v), 15);
  CHECK_EQ(weft_gen_resume(g, IV(-1), &v), WEFT_GEN_YIELDED); /* sub ends */
  CHECK_EQ(VI(v), 1000001); /* sub's result, yielded by the delegator */
  CHECK_EQ(weft_gen_state(sub), WEFT_GEN_FINISHED);
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(VI(v), -200);
  CHECK_EQ(weft_gen_free(g), 0);
  CHECK_EQ(weft_gen_free(sub), 0);

  /* A throw goes to the subgenerator, which catches it. */
  CHECK_EQ(gen_new(&sub, catcher, NULL, NULL), 0);
  CHECK_EQ(gen_new(&g, delegator, sub, NULL), 0);
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_throw(g, -EIO, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), EIO);
  CHECK_EQ(weft_gen_throw(g, -EPIPE, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 4242); /* sub returned 4242 on -EPIPE */

  /* A close closes the subgenerator first. */
  weft_gen *sub2, *g2;
  CHECK_EQ(gen_new(&sub2, with_cleanup, NULL, NULL), 0);
  CHECK_EQ(gen_new(&g2, delegator, sub2, NULL), 0);
  CHECK_EQ(weft_gen_next(g2, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_next(g2, &v), WEFT_GEN_YIELDED);
  cleaned_up = 0;
  CHECK_EQ(weft_gen_close(g2), 0);
  CHECK_EQ(weft_gen_state(sub2), WEFT_GEN_FINISHED);
  CHECK_EQ(cleaned_up, 1);
  CHECK_EQ(weft_gen_free(g2), 0);
  CHECK_EQ(weft_gen_free(sub2), 0);
  CHECK_EQ(weft_gen_free(g), 0);
  CHECK_EQ(weft_gen_free(sub), 0);
}

/* --- stacks -----------------------------------------------------------------
 */

static intptr_t __attribute__((noinline)) recurse(intptr_t n) {
  volatile char pad[96];
  pad[0] = (char)n;
  if (n == 0)
    return pad[0];
  return recurse(n - 1) + 1 + pad[0] * 0;
}

static void *deep(void *arg) {
  intptr_t r = recurse(VI(arg));
  weft_gen_yield(IV(r), NULL);
  return IV(recurse(VI(arg) / 2));
}

TEST(deep_recursion_inside_a_generator) {
  weft_gen *g;
  /* About 150 bytes a frame (more under sanitizers): 20,000 frames. */
  weft_gen_opts o = {.stack_size = 32 << 20, .name = "deep"};
  CHECK_EQ(gen_new(&g, deep, IV(20000), &o), 0);
  void *v;
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 20000);
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(VI(v), 10000);
  CHECK_EQ(weft_gen_free(g), 0);
}

static void *yield_arg_twice(void *arg) {
  weft_gen_yield(arg, NULL);
  weft_gen_yield(IV(VI(arg) * 2), NULL);
  return NULL;
}

/* ThreadSanitizer gives every fiber a thread slot and has 8,128 of them. */
#ifdef __SANITIZE_THREAD__
#define MANY_ALIVE 5000
#else
#define MANY_ALIVE 100000
#endif

TEST_TIMEOUT(hundred_thousand_alive, 120) {
  enum { N = MANY_ALIVE };
  weft_gen **g = calloc(N, sizeof *g);
  CHECK(g != NULL);
  for (int i = 0; i < N; i++)
    CHECK_EQ(gen_new(&g[i], yield_arg_twice, IV(i), NULL), 0);
  void *v;
  for (int i = 0; i < N; i++) {
    CHECK_EQ(weft_gen_next(g[i], &v), WEFT_GEN_YIELDED);
    CHECK_EQ(VI(v), i);
  }
  for (int i = N - 1; i >= 0; i--) {
    CHECK_EQ(weft_gen_next(g[i], &v), WEFT_GEN_YIELDED);
    CHECK_EQ(VI(v), 2 * i);
  }
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft_gen_free(g[i]), 0);
  free(g);
}

TEST(stack_sizes_and_names) {
  weft_gen *g;
  CHECK(weft_gen_default_stack_size() >= 64 * 1024);
  weft_gen_opts big = {.stack_size = ((size_t)1 << 30) + 1};
  CHECK_EQ(gen_new(&g, count_to, IV(1), &big), -EINVAL);
  weft_gen_opts tiny = {.stack_size = 1, .name = "tiny"};
  CHECK_EQ(gen_new(&g, count_to, IV(1), &tiny), 0);
  CHECK(strcmp(weft_gen_name(g), "tiny") == 0);
  CHECK_EQ(weft_gen_next(g, NULL), WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_free(g), 0);
  weft_gen_opts longname = {
      .name = "a-name-much-longer-than-thirty-one-bytes-is-cut"};
  CHECK_EQ(gen_new(&g, count_to, IV(1), &longname), 0);
  CHECK_EQ(strlen(weft_gen_name(g)), 31);
  CHECK_EQ(weft_gen_free(g), 0);
  CHECK_EQ(gen_new(&g, count_to, IV(1), NULL), 0);
  CHECK(strcmp(weft_gen_name(g), "") == 0);
  CHECK_EQ(weft_gen_free(g), 0);
}

/* --- what a switch must preserve ------------------------------------------ */

/* 1/d as the floating-point unit rounds it now: the SSE unit on x86-64,
 * whose mode MXCSR holds (glibc's fegetround reads the x87 unit's). */
static double one_over(double d) {
  volatile double one = 1.0, divisor = d;
  return one / divisor;
}

/* The rounding mode the arithmetic follows, of FE_UPWARD, FE_TOWARDZERO
 * and FE_TONEAREST: 1/3 rounded to nearest goes down, 1/5 goes up. -1
 * where the arithmetic ignores the mode (Valgrind rounds SSE to nearest
 * whatever MXCSR says). */
static int rounding_seen(void) {
  static double third_up, fifth_up;
  static bool ignored;
  if (third_up == 0) {
    int mode = fegetround();
    fesetround(FE_TONEAREST);
    double third_near = one_over(3);
    fesetround(FE_UPWARD);
    third_up = one_over(3);
    fifth_up = one_over(5);
    fesetround(mode);
    ignored = third_up == third_near;
  }
  if (ignored)
    return -1;
  bool third = one_over(3) == third_up, fifth = one_over(5) == fifth_up;
  return third && fifth ? FE_UPWARD : fifth ? FE_TONEAREST : FE_TOWARDZERO;
}

/* Whether the arithmetic rounds as `mode` says, where it can be told. */
static bool rounds(int mode) {
  int seen = rounding_seen();
  return seen == -1 || seen == mode;
}

/* Whether the rounding is upward, as fegetround says (bit 0) and as the
 * arithmetic does (bit 1). */
static intptr_t rounding_up_seen(void) {
  return (fegetround() == FE_UPWARD) | rounds(FE_UPWARD) << 1;
}

static void *rounding_up(void *arg) {
  (void)arg;
  fesetround(FE_UPWARD);
  weft_gen_yield(IV(rounding_up_seen()), NULL);
  weft_gen_yield(IV(rounding_up_seen()), NULL);
  return NULL;
}

/* --- a fork child and the claims other threads had under way ----------- */

static void *counts_up(void *arg) {
  (void)arg;
  for (intptr_t i = 0;; i++)
    if (weft_gen_yield(IV(i), NULL) != 0)
      return NULL; /* closed */
}

static void *resume_twice(void *arg) {
  /* The second resume biases the generator to this thread. */
  weft_gen_next(arg, NULL);
  weft_gen_next(arg, NULL);
  return NULL;
}

/* In a child: resumes g once, within 5 s (an alarm ends the child). */
static int child_resumes(weft_gen *g) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(5);
    _exit(weft_gen_next(g, NULL) == WEFT_GEN_YIELDED ? 0 : 1);
  }
  int status;
  if (pid < 0 || waitpid(pid, &status, 0) != pid)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(a_fork_child_resumes_a_generator_whose_claim_another_thread_had_begun) {
  /* A fork child goes on with the forking thread alone. A fast claim or a
   * revoke that another thread had begun stays so in the child: the marks
   * of the parent's epoch must not hold the child's claims up for good. */
  weft_gen *g;
  CHECK_EQ(gen_new(&g, counts_up, NULL, NULL), 0);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, resume_twice, g), 0);
  CHECK_EQ(pthread_join(t, NULL), 0);
  bool biased = weft__bias_owner(&g->bias) != NULL;
  uint32_t epoch = atomic_load(&weft__bias_epoch);
  /* As if the other thread were inside a fast claim, not yet stored. */
  atomic_store(&g->bias.busy, epoch);
  CHECK_EQ(child_resumes(g), 0);
  atomic_store(&g->bias.busy, 0);
  /* As if a third thread were revoking the bias. */
  const void *owner = weft__bias_owner(&g->bias);
  if (biased)
    atomic_store(&g->bias.owner, weft__bias_revoking(epoch));
  CHECK_EQ(child_resumes(g), 0);
  atomic_store(&g->bias.owner, owner);
  /* And the parent, whose marks those would be, goes on unharmed. */
  CHECK_EQ(weft_gen_next(g, NULL), WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_free(g), 0);
}

TEST(floating_point_control_is_per_generator) {
  fesetround(FE_TONEAREST);
  CHECK(rounds(FE_TONEAREST));
  weft_gen *g;
  CHECK_EQ(gen_new(&g, rounding_up, NULL, NULL), 0);
  void *v;
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 3);
  CHECK_EQ(fegetround(), FE_TONEAREST);
  CHECK(rounds(FE_TONEAREST));
  fesetround(FE_TOWARDZERO);
  /* With exception flags raised here too: the switch compares the control
   * bits alone, and must still swap the rounding modes. */
  feraiseexcept(FE_INEXACT);
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), 3);
  CHECK_EQ(fegetround(), FE_TOWARDZERO);
  CHECK(rounds(FE_TOWARDZERO));
  fesetround(FE_TONEAREST);
  CHECK_EQ(weft_gen_free(g), 0);
}

/* Many values live across yields: they must survive in callee-saved
 * registers or on the stack. */
static void *pressure(void *arg) {
  volatile intptr_t seed = VI(arg);
  intptr_t a = seed + 1, b = seed * 3, c = seed ^ 0x55, d = seed - 9,
           e = seed * seed, f = ~seed, h = seed * 8, k = seed + 77;
  double x = (double)seed * 0.5, y = (double)seed + 0.25;
  for (int i = 0; i < 50; i++) {
    weft_gen_yield(IV(a + b + c + d + e + f + h + k + (intptr_t)(x + y)), NULL);
    a++, b++, c++, d++, e++, f++, h++, k++, x += 1.0, y += 1.0;
  }
  return NULL;
}

TEST(values_survive_switches) {
  weft_gen *g1, *g2;
  CHECK_EQ(gen_new(&g1, pressure, IV(11), NULL), 0);
  CHECK_EQ(gen_new(&g2, pressure, IV(-5), NULL), 0);
  for (intptr_t i = 0; i < 50; i++) {
    void *v1, *v2;
    CHECK_EQ(weft_gen_next(g1, &v1), WEFT_GEN_YIELDED);
    CHECK_EQ(weft_gen_next(g2, &v2), WEFT_GEN_YIELDED);
    for (int which = 0; which < 2; which++) {
      intptr_t s = which ? -5 : 11;
      intptr_t want = (s + 1) + (s * 3) + (s ^ 0x55) + (s - 9) + s * s + ~s +
                      (s * 8) + (s + 77) + 8 * i +
                      (intptr_t)((double)s * 0.5 + (double)s + 0.25 + 2 * i);
      CHECK_EQ(VI(which ? v2 : v1), want);
    }
  }
  CHECK_EQ(weft_gen_free(g1), 0);
  CHECK_EQ(weft_gen_free(g2), 0);
}

/* Address space runs out: creation fails cleanly with -ENOMEM, every
 * generator made before still works, and freeing them makes room again. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* Yields its argument until it is closed. */
static void *yield_arg_until_closed(void *arg) {
  while (weft_gen_yield(arg, NULL) == 0)
    ;
  return NULL;
}

static void out_of_address_space(void *arg) {
  (void)arg;
  enum { MAX = 1 << 16 };
  static weft_gen *g[MAX];
  /* Big stacks, so that the limit is reached after a few slabs. */
  weft_gen_opts o = {.stack_size = 8 << 20};
  struct rlimit rl = {.rlim_cur = (rlim_t)4 << 30, .rlim_max = RLIM_INFINITY};
  if (setrlimit(RLIMIT_AS, &rl) != 0)
    _exit(10);
  int n = 0, rc = 0;
  while (n < MAX &&
         (rc = gen_new(&g[n], yield_arg_until_closed, IV(n), &o)) == 0)
    n++;
  if (rc != -ENOMEM || n == 0)
    _exit(11);
  for (int i = 0; i < n; i++) {
    void *v;
    if (weft_gen_next(g[i], &v) != WEFT_GEN_YIELDED || VI(v) != i)
      _exit(12);
  }
  for (int i = 0; i < n; i++)
    if (weft_gen_free(g[i]) != 0)
      _exit(13);
  if (gen_new(&g[0], yield_arg_until_closed, NULL, &o) != 0)
    _exit(14);
  weft_gen_free(g[0]);
  fprintf(stderr, "made %d before -ENOMEM", n);
  _exit(0);
}

TEST(out_of_address_space_is_enomem) {
  if (SANITIZED)
    harness_skip("sanitizers reserve terabytes of shadow memory: no "
                 "address-space limit can leave them room");
  if (harness_emulated())
    harness_skip("under qemu-user the limit binds the emulator itself");
  if (copied_mode())
    harness_skip("copied generators have no stacks of their own to run "
                 "out of address space with");
  char out[256];
  int status =
      harness_run_child(out_of_address_space, NULL, NULL, out, sizeof out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    harness_fail(__FILE__, __LINE__, "child status %d: %s", status, out);
  CHECK_STR_HAS(out, "before -ENOMEM");
}

/* --- threads ----------------------------------------------------------------
 */

/* Yields the id of the thread it runs on. gettid, not pthread_self: glibc
 * declares pthread_self const, so a compiler may keep its value across the
 * yield although the generator comes back on another thread. */
static void *report_thread(void *arg) {
  (void)arg;
  for (;;)
    if (weft_gen_yield(IV(gettid()), NULL) != 0)
      return NULL;
}

struct resume_job {
  weft_gen *g;
  int rc;
  void *v;
  pid_t tid;
};

static void *resume_on_thread(void *arg) {
  struct resume_job *j = arg;
  j->tid = gettid();
  j->rc = weft_gen_next(j->g, &j->v);
  return NULL;
}

TEST(resumed_from_another_thread) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, report_thread, NULL, NULL), 0);
  void *v;
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
  CHECK_EQ(VI(v), gettid());
  for (int round = 0; round < 20; round++) {
    struct resume_job j = {.g = g};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, resume_on_thread, &j), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(j.rc, WEFT_GEN_YIELDED);
    CHECK_EQ(VI(j.v), j.tid); /* it ran on that thread */
    CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_YIELDED);
    CHECK_EQ(VI(v), gettid());
  }
  CHECK_EQ(weft_gen_free(g), 0);
}

static atomic_int spin_state;

static void *spinner(void *arg) {
  (void)arg;
  atomic_store(&spin_state, 1);
  while (atomic_load(&spin_state) != 2)
    ;
  weft_gen_yield(IV(1), NULL);
  return NULL;
}

static void *resume_spinner(void *arg) {
  struct resume_job *j = arg;
  j->rc = weft_gen_next(j->g, &j->v);
  return NULL;
}

TEST(concurrent_resume_is_ebusy) {
  weft_gen *g;
  CHECK_EQ(gen_new(&g, spinner, NULL, NULL), 0);
  atomic_store(&spin_state, 0);
  struct resume_job j = {.g = g};
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, resume_spinner, &j), 0);
  while (atomic_load(&spin_state) != 1)
    ;
  CHECK_EQ(weft_gen_state(g), WEFT_GEN_RUNNING);
  CHECK_EQ(weft_gen_next(g, NULL), -EBUSY);
  CHECK_EQ(weft_gen_throw(g, -EIO, NULL), -EBUSY);
  CHECK_EQ(weft_gen_close(g), -EBUSY);
  CHECK_EQ(weft_gen_free(g), -EBUSY);
  atomic_store(&spin_state, 2);
  CHECK_EQ(pthread_join(t, NULL), 0);
  CHECK_EQ(j.rc, WEFT_GEN_YIELDED);
  CHECK_EQ(weft_gen_free(g), 0);
}

/* --- bad use ----------------------------------------------------------------
 */

static void *misuse_inside(void *arg) {
  weft_gen *outer = arg;
  weft_gen *self = weft_gen_current();
  intptr_t bad = 0;
  bad |= (weft_gen_next(self, NULL) != -EBUSY) << 0;
  bad |= (weft_gen_next(outer, NULL) != -EBUSY) << 1;
  bad |= (weft_gen_free(self) != -EBUSY) << 2;
  bad |= (weft_gen_close(self) != -EBUSY) << 3;
  bad |= (weft_gen_state(self) != WEFT_GEN_RUNNING) << 4;
  bad |= (weft_gen_yield_from(self, NULL) != -EINVAL) << 5;
  bad |= (weft_gen_yield_from(NULL, NULL) != -EINVAL) << 6;
  weft_gen_yield(IV(bad), NULL);
  return NULL;
}

static void *outer_of_misuse(void *arg) {
  (void)arg;
  weft_gen *inner;
  if (gen_new(&inner, misuse_inside, weft_gen_current(), NULL) != 0)
    return IV(-1);
  void *v;
  weft_gen_next(inner, &v);
  weft_gen_free(inner);
  return v;
}

TEST(bad_use_is_an_error_code) {
  void *v = IV(5);
  CHECK_EQ(gen_new(NULL, count_to, NULL, NULL), -EINVAL);
  weft_gen *g = (weft_gen *)IV(1);
  CHECK_EQ(gen_new(&g, NULL, NULL, NULL), -EINVAL);
  CHECK_PTR_EQ(g, IV(1)); /* untouched */
  CHECK_EQ(weft_gen_resume(NULL, NULL, &v), -EINVAL);
  CHECK_EQ(weft_gen_throw(NULL, -EIO, &v), -EINVAL);
  CHECK_EQ(weft_gen_close(NULL), -EINVAL);
  CHECK_EQ(weft_gen_free(NULL), -EINVAL);
  CHECK_EQ(weft_gen_state(NULL), -EINVAL);
  CHECK(weft_gen_name(NULL) == NULL);
  CHECK_EQ(VI(v), 5);
  CHECK_EQ(weft_gen_yield(IV(1), &v), -EPERM);
  CHECK_EQ(weft_gen_yield_from(NULL, &v), -EPERM);
  CHECK(weft_gen_current() == NULL);

  /* Resuming oneself or an outer generator, freeing oneself. */
  CHECK_EQ(gen_new(&g, outer_of_misuse, NULL, NULL), 0);
  CHECK_EQ(weft_gen_next(g, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(VI(v), 0);
  CHECK_EQ(weft_gen_free(g), 0);
}

/* --- overflow ------------------------------------------------------------- */

/* Recurses until the stack runs out; the volatile bound hides that from
 * the compiler's infinite-recursion warning. */
static volatile intptr_t runaway_limit = INTPTR_MAX;

static intptr_t __attribute__((noinline)) runaway(intptr_t n) {
  volatile char pad[256];
  memset((char *)pad, (int)n, sizeof pad);
  if (n == runaway_limit)
    return 0;
  return runaway(n + 1) + pad[n % 256];
}

static void *overflower(void *arg) {
  (void)arg;
  return IV(runaway(0));
}

static void overflow_child(void *arg) {
  weft_gen *g;
  weft_gen_opts o = {.stack_size = 16 << 10, .name = arg};
  if (gen_new(&g, overflower, NULL, &o) != 0)
    _exit(3);
  weft_gen_next(g, NULL);
  _exit(4); /* unreachable when the overflow is caught */
}

static void check_overflow_reported(const char *const *env) {
  char out[4096];
  int status =
      harness_run_child(overflow_child, "deep-dive", env, out, sizeof out);
  /* Death by SIGSEGV, or a sanitizer's non-zero exit after its report. */
  CHECK(WIFSIGNALED(status) ||
        (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
         WEXITSTATUS(status) != 3 && WEXITSTATUS(status) != 4));
  CHECK_STR_HAS(out, "weft: stack overflow in generator 'deep-dive'");
}

TEST(overflow_is_caught_and_named) { check_overflow_reported(NULL); }

TEST(overflow_is_caught_with_mprotect_guards) {
  static const char *const env[] = {"WEFT_STACK_GUARD=page", NULL};
  check_overflow_reported(env);
}

static intptr_t __attribute__((noinline)) spill(size_t n) {
  volatile char pad[n];
  /* Byte by byte through the volatile: a memset of it, which only one
   * byte is read back from, clang may shorten to that byte. */
  for (size_t i = 0; i < n; i++)
    pad[i] = 0x5a;
  return pad[n / 2];
}

static void *slight_overflow(void *arg) {
  (void)arg;
  /* 16 KiB of stack, one frame of 20 KiB written whole: it runs past the
   * end into the unprotected guard, over the canary (which a chain of
   * smaller frames might miss, the canary falling in one of the redzones
   * AddressSanitizer leaves unwritten between locals), returns, and
   * yields. */
  weft_gen_yield(IV(spill(20 << 10)), NULL);
  return NULL;
}

static void canary_child(void *arg) {
  (void)arg;
  weft_gen *g;
  weft_gen_opts o = {.stack_size = 16 << 10, .name = "no-guard"};
  if (gen_new(&g, slight_overflow, NULL, &o) != 0)
    _exit(3);
  weft_gen_next(g, NULL);
  _exit(4);
}

TEST(overflow_beyond_the_map_budget_is_caught_by_the_canary) {
  static const char *const env[] = {"WEFT_STACK_GUARD=page",
                                    "WEFT_STACK_GUARD_BUDGET=0", NULL};
  char out[4096];
  int status = harness_run_child(canary_child, NULL, env, out, sizeof out);
  CHECK(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
                                WEXITSTATUS(status) != 4));
  CHECK_STR_HAS(out, "weft: stack overflow in generator 'no-guard'");
  CHECK_STR_HAS(out, "canary");
}
