/*
 * BenchmarkGroup/members=<n>/weft: make a task group, spawn n members that
 * return 0 at once, wait for the group, free it; ns per group. Beside
 * Python's asyncio.TaskGroup (peers/python_group.py) and Go's errgroup
 * (peers/go/group.go, GOMAXPROCS=1: one thread, as one hub).
 */
#include <weft.h>

#include "bench.h"

static int nothing(void *arg) {
  (void)arg;
  return 0;
}

struct job {
  uint64_t groups;
  int members;
  bool ok;
};

static void *groups(void *arg) {
  struct job *j = arg;
  for (uint64_t i = 0; i < j->groups; i++) {
    weft_group *g;
    if (weft_group_new(&g) != 0)
      return NULL;
    for (int m = 0; m < j->members; m++)
      if (weft_group_spawn(g, nothing, NULL) != 0)
        return NULL;
    if (weft_group_wait(g) != 0 || weft_group_free(g) != 0)
      return NULL;
  }
  j->ok = true;
  return NULL;
}

static bool run(uint64_t n, int members) {
  struct job j = {.groups = n, .members = members};
  return weft_run(groups, &j, NULL) == 0 && j.ok;
}

static bool members_1(uint64_t n) { return run(n, 1); }
static bool members_100(uint64_t n) { return run(n, 100); }
static bool members_10000(uint64_t n) { return run(n, 10000); }

int main(void) {
  struct bench_impl impls[] = {
      {"BenchmarkGroup/members=1/weft", members_1, NULL},
      {"BenchmarkGroup/members=100/weft", members_100, NULL},
      {"BenchmarkGroup/members=10000/weft", members_10000, NULL},
  };
  bench_group(impls, sizeof impls / sizeof *impls);
  return 0;
}
