/*
 * The core: error strings, the version, and the stack cache (internal).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft.h>

#include "../src/core/stack.h"
#include "harness.h"

TEST(strerror_names_every_code) {
  CHECK(strcmp(weft_strerror(0), "Success") == 0);
  CHECK(strcmp(weft_strerror(-ETIMEDOUT), "Connection timed out") == 0);
  CHECK(strcmp(weft_strerror(-ECANCELED), "Operation canceled") == 0);
  CHECK(strcmp(weft_strerror(-EDEADLK), "Resource deadlock avoided") == 0);
  CHECK(strcmp(weft_strerror(-EINVAL), weft_strerror(EINVAL)) == 0);
  CHECK(strcmp(weft_strerror(-ENODATA), "No data available") == 0);
  CHECK(strcmp(weft_strerror(-EPROTO), "Protocol error") == 0);
  CHECK(strcmp(weft_strerror(-100000), "Unknown error") == 0);
  CHECK(strcmp(weft_strerror(-2147483647), "Unknown error") == 0);
}

/* Every int has a text, the extremes too: INT_MIN has no positive
 * counterpart, so negating it would be undefined (UBSan reports it in
 * make test-asan). */
TEST(strerror_gives_a_text_for_every_int) {
  CHECK(strcmp(weft_strerror(INT_MIN), "Unknown error") == 0);
  CHECK(strcmp(weft_strerror(INT_MIN + 1), "Unknown error") == 0);
  CHECK(strcmp(weft_strerror(INT_MAX), "Unknown error") == 0);
  CHECK(strcmp(weft_strerror(0), "Success") == 0);
  CHECK(strcmp(weft_strerror(EPIPE), "Broken pipe") == 0);
  CHECK(strcmp(weft_strerror(-EPIPE), "Broken pipe") == 0);
  CHECK(strcmp(weft_strerror(1), weft_strerror(-1)) == 0);
  CHECK(strcmp(weft_strerror(4096), "Unknown error") == 0);
}

TEST(version_matches_the_header) {
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", WEFT_VERSION_MAJOR,
           WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
  CHECK(strcmp(weft_version(), want) == 0);
  CHECK_EQ(WEFT_MS(3), 3000000);
  CHECK_EQ(WEFT_SEC(2), 2000000000);
  CHECK(WEFT_FOREVER < 0);
}

TEST(stacks_come_in_power_of_two_classes) {
  weft__stack a, b;
  CHECK_EQ(weft__stack_get(&a, 0), 0);
  CHECK_EQ(a.size, weft__stack_default_size());
  CHECK_EQ(weft__stack_get(&b, 20000), 0);
  CHECK_EQ(b.size, 32768);
  CHECK_EQ((uintptr_t)b.lo % 4096, 0);
  memset(b.lo, 0xab, b.size); /* all of it is usable */
  weft__stack_put(&b);
  weft__stack_put(&a);
  CHECK_EQ(weft__stack_get(&a, ((size_t)1 << 30) + 1), -EINVAL);
  CHECK_EQ(weft__stack_get(&a, 1), 0);
  CHECK_EQ(a.size, 16384);
  weft__stack_put(&a);
}

TEST(a_returned_stack_is_reused_warm) {
  weft__stack a, b;
  CHECK_EQ(weft__stack_get(&a, 65536), 0);
  weft__stack_put(&a);
  CHECK_EQ(weft__stack_get(&b, 65536), 0);
  CHECK_PTR_EQ(a.lo, b.lo);
  CHECK_EQ(a.kind, b.kind);
  weft__stack_put(&b);
}

TEST(an_unused_cold_stack_goes_back_cold) {
  enum { MAX = 4096 };
  static weft__stack s[MAX];
  int n = 0; /* warm ones first: take them until a cold one comes */
  do
    CHECK_EQ(weft__stack_get(&s[n], 16384), 0);
  while (!s[n].cold && ++n < MAX);
  if (n == MAX) { /* all canary-guarded, none ever handed out cold */
    for (int i = 0; i < n; i++)
      weft__stack_put(&s[i]);
    return;
  }
  weft__stack cold = s[n];
  weft__stack_put_unused(&cold); /* nothing wrote to it */
  weft__stack again;
  CHECK_EQ(weft__stack_get(&again, 16384), 0);
  CHECK_PTR_EQ(again.lo, cold.lo); /* back on the cold list, as it was */
  CHECK(again.cold || again.kind == WEFT__GUARD_CANARY);
  CHECK_EQ(again.lo[again.size - 1], 0); /* no node written into it */
  weft__stack_put(&again);
  for (int i = 0; i < n; i++)
    weft__stack_put(&s[i]);
  /* A warm one given back "unused" is put back as any other. */
  CHECK_EQ(weft__stack_get(&again, 16384), 0);
  again.lo[again.size - 1] = 1;
  weft__stack_put_unused(&again);
}

TEST(many_returned_stacks_are_trimmed_and_reused) {
  enum { N = 3000 };
  static weft__stack s[N];
  for (int i = 0; i < N; i++) {
    CHECK_EQ(weft__stack_get(&s[i], 16384), 0);
    s[i].lo[s[i].size - 1] = 1; /* commit the top page */
  }
  for (int i = 0; i < N; i++)
    weft__stack_put(&s[i]);
  /* Getting N again reuses them all: the warm ones (1024 of this size),
   * those still waiting in a batch to be trimmed (fewer than 64), then the
   * trimmed (cold) ones, which read as zeros again. */
  int zeros = 0;
  for (int i = 0; i < N; i++) {
    CHECK_EQ(weft__stack_get(&s[i], 16384), 0);
    zeros += s[i].lo[s[i].size - 1] == 0;
  }
  CHECK(zeros >= N - 1024 - 64);
  CHECK(zeros < N);
  for (int i = 0; i < N; i++)
    weft__stack_put(&s[i]);
}

/* A thread takes and returns stacks of the default size (its own cache
 * keeps them) and exits: they go back to the shared cache, where another
 * thread finds them. */
enum { HANDED = 8 };
static char *handed[HANDED];

static void *take_and_return(void *arg) {
  (void)arg;
  weft__stack s[HANDED];
  for (int i = 0; i < HANDED; i++) {
    if (weft__stack_get(&s[i], 0) != 0)
      return (void *)1;
    handed[i] = s[i].lo;
  }
  for (int i = 0; i < HANDED; i++)
    weft__stack_put(&s[i]);
  return NULL;
}

TEST(a_threads_cached_stacks_come_back_when_it_exits) {
  pthread_t t;
  void *r;
  CHECK_EQ(pthread_create(&t, NULL, take_and_return, NULL), 0);
  CHECK_EQ(pthread_join(t, &r), 0);
  CHECK(r == NULL);
  weft__stack s[HANDED];
  int found = 0;
  for (int i = 0; i < HANDED; i++) {
    CHECK_EQ(weft__stack_get(&s[i], 0), 0);
    for (int j = 0; j < HANDED; j++)
      found += s[i].lo == handed[j];
  }
  CHECK_EQ(found, HANDED);
  for (int i = 0; i < HANDED; i++)
    weft__stack_put(&s[i]);
}

static void write_below(void *arg) {
  weft__stack st;
  if (weft__stack_get(&st, 16384) != 0)
    _exit(3);
  if (st.kind == WEFT__GUARD_CANARY)
    _exit(5);
  (void)arg;
  ((volatile char *)st.lo)[-1] = 1; /* into the guard */
  _exit(4);
}

/* Died of the fault: by SIGSEGV, or by a sanitizer's report of it. */
static bool died_of_fault(int status, const char *out) {
  if (WIFSIGNALED(status))
    return WTERMSIG(status) == SIGSEGV;
  return WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
         strstr(out, "SEGV") != NULL;
}

/* The children pin both variables, so that these cases test what they say
 * whatever the environment the suite runs in (make test-guard-fallback). */
static const char *const default_guards[] = {
    "WEFT_STACK_GUARD=", "WEFT_STACK_GUARD_BUDGET=", NULL};
static const char *const page_guards[] = {"WEFT_STACK_GUARD=page",
                                          "WEFT_STACK_GUARD_BUDGET=", NULL};

TEST(the_guard_faults) {
  char out[4096];
  int status =
      harness_run_child(write_below, NULL, default_guards, out, sizeof out);
  CHECK(died_of_fault(status, out));
  status = harness_run_child(write_below, NULL, page_guards, out, sizeof out);
  CHECK(died_of_fault(status, out));
}

static void guard_mode_child(void *arg) {
  const char *want = arg;
  int mode = weft__stack_guard_mode();
  weft__stack st;
  if (weft__stack_get(&st, 16384) != 0)
    _exit(3);
  fprintf(stderr, "mode=%d kind=%d", mode, st.kind);
  (void)want;
  _exit(0);
}

TEST(guard_kinds_follow_the_budget) {
  char out[256];
  harness_run_child(guard_mode_child, NULL, page_guards, out, sizeof out);
  CHECK_STR_HAS(out, "mode=2 kind=2");
  static const char *const none[] = {"WEFT_STACK_GUARD=page",
                                     "WEFT_STACK_GUARD_BUDGET=0", NULL};
  harness_run_child(guard_mode_child, NULL, none, out, sizeof out);
  CHECK_STR_HAS(out, "mode=2 kind=3");
}
