/*
 * BenchmarkTimers/armed=1000000/<op>/weft: the hub's timer heap with a
 * million timers armed: arm one and disarm it again (a timeout that did not
 * fire, the common case), and arm one and pop the earliest (a timer firing).
 * ns per operation pair.
 */
#include <stdlib.h>
#include <weft.h>

#include "../src/hub/timer.h"
#include "bench.h"

enum { ARMED = 1000000 };

static weft__timer_heap heap;
static weft__timer *background, extra;
static uint64_t seed = 12345;

static int64_t random_deadline(void) {
  seed ^= seed << 13;
  seed ^= seed >> 7;
  seed ^= seed << 17;
  return (int64_t)(seed >> 24);
}

static bool arm_disarm(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    if (weft__timer_arm(&heap, &extra, random_deadline()) != 0)
      return false;
    weft__timer_disarm(&heap, &extra);
  }
  return true;
}

static bool arm_pop(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    weft__timer *t = weft__timer_pop_due(&heap, INT64_MAX);
    if (weft__timer_arm(&heap, t, random_deadline()) != 0)
      return false;
  }
  return true;
}

int main(void) {
  weft__timer_heap_init(&heap);
  background = calloc(ARMED, sizeof *background);
  weft__timer_init(&extra);
  for (int i = 0; i < ARMED; i++) {
    weft__timer_init(&background[i]);
    weft__timer_arm(&heap, &background[i], random_deadline());
  }
  struct bench_impl impls[] = {
      {"BenchmarkTimers/armed=1000000/arm-disarm/weft", arm_disarm, NULL},
      {"BenchmarkTimers/armed=1000000/arm-fire/weft", arm_pop, NULL},
  };
  bench_group(impls, sizeof impls / sizeof *impls);
  weft__timer_heap_fini(&heap);
  free(background);
  return 0;
}
