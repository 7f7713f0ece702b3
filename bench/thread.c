/*
 * BenchmarkThreadStartJoin/<impl>: start an OS thread that returns at once,
 * and join it: weft_thread_start + weft_thread_join beside pthread_create +
 * pthread_join (Python's threading.Thread is in peers/python_sync.py); and
 * BenchmarkThreadStartJoin/load=busy/<impl>, the same with a spinning
 * process per CPU beside them (bench.h).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <weft.h>

#include "bench.h"

static void *nothing(void *arg) { return arg; }

static bool weft_start_join(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    weft_thread *t;
    if (weft_thread_start(&t, nothing, NULL, NULL) != 0 ||
        weft_thread_join(t, WEFT_FOREVER, NULL) != 0 ||
        weft_thread_detach(t) != 0)
      return false;
  }
  return true;
}

static bool pthread_start_join(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0 ||
        pthread_join(t, NULL) != 0)
      return false;
  }
  return true;
}

int main(void) {
  struct bench_impl impls[] = {
      {"BenchmarkThreadStartJoin/weft", weft_start_join, NULL},
      {"BenchmarkThreadStartJoin/pthread", pthread_start_join, NULL},
  };
  bench_group(impls, 2);
  struct bench_impl busy[] = {
      {"BenchmarkThreadStartJoin/load=busy/weft", weft_start_join, NULL},
      {"BenchmarkThreadStartJoin/load=busy/pthread", pthread_start_join, NULL},
  };
  bench_group_busy(busy, 2);
  return 0;
}
