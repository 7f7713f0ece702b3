/*
 * state-threads' side of the hub benchmarks, measured like weft's in
 * bench/hub.c (bench.h: a median of 5 rounds of about 0.2 s):
 *
 *   BenchmarkSpawnJoin/st  create a joinable thread (the default stack)
 *                          that returns at once, and st_thread_join it
 *   BenchmarkYield/st      two threads alternating; ns per switch from one
 *                          to the other
 *
 * state-threads 1.9 has no st_thread_yield, so the threads yield with
 * st_usleep(0): each goes on the sleep queue with a timeout that is due at
 * once, and when both are asleep the scheduler's idle thread polls (with a
 * zero timeout) and moves both back to the run queue. So a pair of
 * switches here also costs one poll(2) and a reading of the clock: the
 * cost of yielding in state-threads. (Should a later version have
 * st_thread_yield, ST_HAVE_THREAD_YIELD selects it.)
 *
 * Usage: bench-st-hub [regex]  (else $BENCH_FILTER)
 */
#include "common.h"

#include "../../bench.h"

static void *nothing(void *arg) { return arg; }

static bool spawn_join(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    st_thread_t t = st_thread_create(nothing, NULL, 1, 0);
    if (!t || st_thread_join(t, NULL) != 0)
      return false;
  }
  return true;
}

static void *yielder(void *arg) {
  uint64_t n = *(uint64_t *)arg;
  for (uint64_t i = 0; i < n; i++) {
#ifdef ST_HAVE_THREAD_YIELD
    st_thread_yield();
#else
    st_usleep(0);
#endif
  }
  return NULL;
}

/* n switches: each of the two threads yields n/2 times. */
static bool yield_pingpong(uint64_t n) {
  uint64_t half = n / 2 ? n / 2 : 1;
  st_thread_t a = st_thread_create(yielder, &half, 1, 0);
  st_thread_t b = st_thread_create(yielder, &half, 1, 0);
  if (!a || !b)
    return false;
  st_thread_join(a, NULL);
  st_thread_join(b, NULL);
  return true;
}

int main(int argc, char **argv) {
  if (argc > 1)
    setenv("BENCH_FILTER", argv[1], 1);
  const char *skip = st_peer_init() ? NULL : "st_init failed";
  struct bench_impl impls[] = {
      {"BenchmarkSpawnJoin/st", spawn_join, skip},
      {"BenchmarkYield/st", yield_pingpong, skip},
  };
  bench_group(impls, sizeof impls / sizeof *impls);
  return 0;
}
