/*
 * Whether spinning can pay. See cpu.h.
 */
#define _GNU_SOURCE
#include "cpu.h"

#include <sched.h>

/* 0: not asked yet; 1: one CPU; 2: more. */
static int cpus_seen;

bool weft__cpu_spinning_pays(void) {
  int seen = __atomic_load_n(&cpus_seen, __ATOMIC_RELAXED);
  if (__builtin_expect(seen == 0, 0)) {
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 2;
    seen = n > 1 ? 2 : 1;
    __atomic_store_n(&cpus_seen, seen, __ATOMIC_RELAXED);
  }
  return seen == 2;
}
