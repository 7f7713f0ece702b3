/*
 * Idle stacks: a task parked past its hub's weft_hub_trim_after has the
 * pages of its stack below its stack pointer given back, and nothing it
 * still uses changes: its locals, a buffer another task reads through a
 * pointer while it is parked, its later deep calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

enum { DEEP = 64 << 10 };

/* Where deep() put its buffer (an address, never dereferenced), and the
 * page size. */
static uintptr_t deep_lo;
static size_t page;

/* Uses DEEP bytes of stack, every page of them written. */
__attribute__((noinline)) static int deep(int seed) {
  volatile char buf[DEEP];
  for (size_t i = 0; i < sizeof buf; i += 512)
    buf[i] = (char)(seed + (int)i);
  deep_lo = (uintptr_t)buf;
  int sum = 0;
  for (size_t i = 0; i < sizeof buf; i += 4096)
    sum += buf[i];
  return sum;
}

/* How many of the pages of the lower half of deep()'s buffer are
 * resident: well below anything a parked task's frames reach. */
static size_t deep_pages_resident(void) {
  uintptr_t lo = (deep_lo + page - 1) & ~(uintptr_t)(page - 1);
  size_t n = (DEEP / 2) / page;
  unsigned char vec[DEEP / 4096];
  CHECK_EQ(mincore((void *)lo, n * page, vec), 0);
  size_t resident = 0;
  for (size_t i = 0; i < n; i++)
    resident += vec[i] & 1;
  return resident;
}

/* Whether the build cannot trim (the ucontext fallback cannot tell a
 * suspended stack's pointer), or deep()'s buffer is not on the task's
 * stack at all (AddressSanitizer may keep frames on a fake stack of its
 * own): then the case is skipped. */
static void skip_if_untrimmable(const char *near) {
  if (strstr(WEFT_MACHINE_CTX_H, "ucontext"))
    harness_skip("the ucontext fallback does not trim");
  if (deep_lo > (uintptr_t)near || (uintptr_t)near - deep_lo > (1u << 20))
    harness_skip("frames on a fake stack (AddressSanitizer)");
}

struct parked {
  int64_t nap;  /* how long the sleeper parks */
  char *shared; /* a buffer in the sleeper's frame, for the reader */
  int after;    /* what the sleeper found after its nap */
};

static void *sleeper(void *arg) {
  struct parked *p = arg;
  char mine[512];
  for (size_t i = 0; i < sizeof mine; i++)
    mine[i] = (char)(i * 7);
  int keep = 4242;
  CHECK(deep(1) != -1);
  skip_if_untrimmable(mine);
  p->shared = mine;
  CHECK_EQ(weft_sleep(p->nap), 0);
  int same = keep == 4242;
  for (size_t i = 0; i < sizeof mine; i++)
    same = same && mine[i] == (char)(i * 7);
  p->after = same;
  return NULL;
}

static void *trimmed_main(void *arg) {
  (void)arg;
  page = (size_t)sysconf(_SC_PAGESIZE);
  CHECK_EQ(weft_hub_trim_after(WEFT_MS(20)), 0);
  struct parked p = {.nap = WEFT_MS(400)};
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, sleeper, &p, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(10)), 0);
  CHECK(p.shared != NULL);
  CHECK(deep_pages_resident() > 0); /* not yet: parked 10 ms */
  CHECK_EQ(weft_sleep(WEFT_MS(200)), 0);
  CHECK_EQ(deep_pages_resident(), 0);
  /* Its live frame is untouched, for itself and for others. */
  for (size_t i = 0; i < 512; i++)
    CHECK_EQ(p.shared[i], (char)(i * 7));
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(p.after, 1);
  return NULL;
}

TEST(a_task_parked_past_trim_after_has_its_dead_stack_pages_given_back) {
  CHECK_EQ(weft_run(trimmed_main, NULL, NULL), 0);
}

static void *kept_main(void *arg) {
  (void)arg;
  page = (size_t)sysconf(_SC_PAGESIZE);
  CHECK_EQ(weft_hub_trim_after(WEFT_FOREVER), 0);
  struct parked p = {.nap = WEFT_MS(150)};
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, sleeper, &p, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(100)), 0);
  CHECK_EQ(deep_pages_resident(), (DEEP / 2) / page);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(p.after, 1);
  return NULL;
}

TEST(with_trim_after_forever_a_parked_task_keeps_its_pages) {
  CHECK_EQ(weft_run(kept_main, NULL, NULL), 0);
}

/* Deep calls, a park trimmed at once, again and again: every round's
 * locals survive, and the deep call finds working (zeroed) pages. */
static void *cycler(void *arg) {
  int *rounds = arg;
  for (int i = 0; i < 30; i++) {
    int mark = 1000 + i;
    char note[64];
    memset(note, 'a' + i % 26, sizeof note);
    int sum = deep(i);
    CHECK_EQ(weft_sleep(WEFT_MS(3)), 0);
    CHECK_EQ(mark, 1000 + i);
    for (size_t j = 0; j < sizeof note; j++)
      CHECK_EQ(note[j], 'a' + i % 26);
    CHECK_EQ(deep(i), sum);
    ++*rounds;
  }
  return NULL;
}

static void *cycles_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_trim_after(0), 0);
  int rounds[4] = {0};
  weft_task *t[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_spawn(&t[i], cycler, &rounds[i], NULL), 0);
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
    CHECK_EQ(rounds[i], 30);
  }
  return NULL;
}

TEST(tasks_trimmed_at_every_park_keep_their_frames_and_grow_again) {
  CHECK_EQ(weft_run(cycles_main, NULL, NULL), 0);
}

/* A task trimmed while it waits in a generator it resumed: the generator's
 * stack is the one parked. */
static void *gen_body(void *arg) {
  int *out = arg;
  int sum = deep(3);
  CHECK_EQ(weft_sleep(WEFT_MS(60)), 0);
  *out = deep(3) == sum;
  return NULL;
}

static void *gen_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_trim_after(WEFT_MS(5)), 0);
  int ok = 0;
  weft_gen *g;
  CHECK_EQ(weft_gen_new(&g, gen_body, &ok, NULL), 0);
  void *v;
  CHECK_EQ(weft_gen_resume(g, NULL, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(ok, 1);
  CHECK_EQ(weft_gen_free(g), 0);
  return NULL;
}

TEST(a_task_parked_inside_a_generator_is_trimmed_and_resumes) {
  CHECK_EQ(weft_run(gen_main, NULL, NULL), 0);
}

static void *bad_input_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_trim_after(-2), -EINVAL);
  CHECK_EQ(weft_hub_trim_after(INT64_MIN), -EINVAL);
  CHECK_EQ(weft_hub_trim_after(WEFT_SEC(3)), 0);
  return NULL;
}

TEST(weft_hub_trim_after_bad_input) {
  CHECK_EQ(weft_hub_trim_after(WEFT_MS(1)), -EPERM); /* no hub here */
  CHECK_EQ(weft_run(bad_input_main, NULL, NULL), 0);
}
