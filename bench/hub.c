/*
 * BenchmarkSpawnJoin/weft: spawn a task that returns at once, join it, and
 * let its handle go (a join releases nothing).
 * BenchmarkYield/weft: two tasks alternating through the scheduler; ns per
 * switch from one task to the other.
 *
 * Go, gevent and state-threads are measured by the programs in peers/.
 */
#include <weft.h>

#include "bench.h"

static void *nothing(void *arg) { return arg; }

static void *spawn_join_loop(void *arg) {
  uint64_t n = *(uint64_t *)arg;
  for (uint64_t i = 0; i < n; i++) {
    weft_task *t;
    if (weft_task_spawn(&t, nothing, NULL, NULL) != 0 ||
        weft_task_join(t, WEFT_FOREVER, NULL) != 0 || weft_task_detach(t) != 0)
      return (void *)1;
  }
  return NULL;
}

static bool spawn_join(uint64_t n) {
  void *r;
  return weft_run(spawn_join_loop, &n, &r) == 0 && r == NULL;
}

static void *yielder(void *arg) {
  uint64_t n = *(uint64_t *)arg;
  for (uint64_t i = 0; i < n; i++)
    weft_yield();
  return NULL;
}

static void *two_yielders(void *arg) {
  weft_task *a, *b;
  weft_task_spawn(&a, yielder, arg, NULL);
  weft_task_spawn(&b, yielder, arg, NULL);
  weft_task_join(a, WEFT_FOREVER, NULL);
  weft_task_join(b, WEFT_FOREVER, NULL);
  return NULL;
}

/* n switches: each of the two tasks yields n/2 times. */
static bool yield_pingpong(uint64_t n) {
  uint64_t half = n / 2 ? n / 2 : 1;
  return weft_run(two_yielders, &half, NULL) == 0;
}

int main(void) {
  struct bench_impl impls[] = {
      {"BenchmarkSpawnJoin/weft", spawn_join, NULL},
      {"BenchmarkYield/weft", yield_pingpong, NULL},
  };
  bench_group(impls, sizeof impls / sizeof *impls);
  return 0;
}
