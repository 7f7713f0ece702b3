/*
 * state-threads' side of the many-tasks benchmark, in Go's benchmark
 * format:
 *
 *   BenchmarkManyTasks/st  1,000,000 threads alive at once, on 16 KiB
 *                          stacks: each waits on a condition variable
 *                          until all are created, sleeps 1 ms and returns;
 *                          main joins them all
 *
 * ns/op is the wall time of the whole (creating the first to joining the
 * last) divided by N; B/task is the peak resident memory (VmHWM) less the
 * resident memory before the first thread (VmRSS), divided by N. The peak
 * is the process's, so each round runs in a child process of its own,
 * forked before state-threads starts; the medians of 3 rounds are printed.
 *
 * A thread's stack holds its few frames (the start function, the wait,
 * the sleep) and, at its top, state-threads' own thread record; 16 KiB is
 * plenty for that.
 *
 * Usage: bench-st-many [regex]  (else $BENCH_FILTER)
 */
#include <errno.h>
#include <unistd.h>

#include "common.h"

#include "../../bench.h"

enum { TASKS = 1000000, STACK = 16 << 10, ROUNDS = 3 };

static const char *name = "BenchmarkManyTasks/st";

static st_cond_t gate;
static bool gate_open;

static void *task(void *arg) {
  /* The threads first run once main has created all of them and sleeps
   * (below), so they find the gate shut; the flag is there all the same. */
  while (!gate_open)
    st_cond_wait(gate);
  st_usleep(1000);
  return arg;
}

/* A "VmRSS:"-style field of /proc/self/status, in kB, or -1. */

struct result {
  double ns, bytes; /* per task */
  int made, err;    /* threads created, and errno if not all */
};

/* One round, in a fresh child process. */
static void one_round(void *out) {
  struct result res = {0};
  if (!st_peer_init() || !(gate = st_cond_new())) {
    res.err = errno;
    *(struct result *)out = res;
    return;
  }
  long before = bench_status_kb("VmRSS");
  double t0 = bench_now();
  st_thread_t *threads = malloc(TASKS * sizeof *threads);
  while (res.made < TASKS &&
         (threads[res.made] = st_thread_create(task, NULL, 1, STACK)))
    res.made++;
  res.err = errno;
  st_usleep(0); /* they all start and block at the gate */
  gate_open = true;
  st_cond_broadcast(gate);
  for (int i = 0; i < res.made; i++)
    st_thread_join(threads[i], NULL);
  double dt = bench_now() - t0;
  long peak = bench_status_kb("VmHWM");
  res.ns = dt * 1e9 / TASKS;
  res.bytes = (double)(peak - before) * 1024 / TASKS;
  *(struct result *)out = res;
}

int main(int argc, char **argv) {
  if (argc > 1)
    setenv("BENCH_FILTER", argv[1], 1);
  if (!bench_selected(name))
    return 0;
  if (bench_status_kb("VmHWM") < 0) {
    printf("# skip %s: no VmHWM in /proc/self/status\n", name);
    return 0;
  }
  double ns[ROUNDS], bytes[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    struct result res = {0};
    if (!bench_in_child(one_round, &res, sizeof res)) {
      printf("# skip %s: the round failed\n", name);
      return 0;
    }
    if (res.made < TASKS) {
      printf("# skip %s: only %d threads started: %s\n", name, res.made,
             strerror(res.err));
      return 0;
    }
    ns[r] = res.ns;
    bytes[r] = res.bytes;
  }
  qsort(ns, ROUNDS, sizeof *ns, bench_cmp);
  qsort(bytes, ROUNDS, sizeof *bytes, bench_cmp);
  printf("%-40s %12d %10.1f ns/op %10.0f B/task\n", name, TASKS, ns[ROUNDS / 2],
         bytes[ROUNDS / 2]);
  return 0;
}
