/*
 * BenchmarkManyTasks/weft: one million tasks on one hub, all alive at once,
 * each sleeping a millisecond and finishing. ns/op is the wall time of the
 * whole (spawning, sleeping, finishing) per task; B/task is the peak
 * resident memory it added (VmHWM after, less VmRSS before) per task. Each
 * round runs in a fresh child process, so that the peak is this round's.
 *
 * The tasks first run when the main task, having spawned them all, returns:
 * so all are alive at once, as the peers' (peers/) wait on a gate for the
 * last to be spawned.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <weft.h>

#include "bench.h"

enum { TASKS = 1000000, ROUNDS = 3 };

static void *nap(void *arg) {
  (void)arg;
  weft_sleep(WEFT_MS(1));
  return NULL;
}

static void *spawn_all(void *arg) {
  (void)arg;
  for (int i = 0; i < TASKS; i++)
    if (weft_task_spawn(NULL, nap, NULL, NULL) != 0)
      return (void *)1;
  return NULL;
}

struct result {
  double ns_per_task;
  double bytes_per_task;
  int ok;
};

/* One round, in the calling (fresh) process. */
static void one_round(void *out) {
  long before = bench_status_kb("VmRSS") * 1024;
  double t0 = bench_now();
  void *failed = (void *)1;
  int rc = weft_run(spawn_all, NULL, &failed);
  double dt = bench_now() - t0;
  long peak = bench_status_kb("VmHWM") * 1024;
  *(struct result *)out =
      (struct result){dt * 1e9 / TASKS, (double)(peak - before) / TASKS,
                      rc == 0 && !failed && before > 0 && peak > 0};
}

int main(void) {
  const char *name = "BenchmarkManyTasks/weft";
  if (!bench_selected(name))
    return 0;
  double ns[ROUNDS], bytes[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    struct result res = {0};
    if (!bench_in_child(one_round, &res, sizeof res) || !res.ok) {
      printf("# skip %s: the round failed\n", name);
      return 0;
    }
    ns[r] = res.ns_per_task;
    bytes[r] = res.bytes_per_task;
  }
  qsort(ns, ROUNDS, sizeof *ns, bench_cmp);
  qsort(bytes, ROUNDS, sizeof *bytes, bench_cmp);
  printf("%-40s %12d %10.1f ns/op %10.0f B/task\n", name, TASKS, ns[ROUNDS / 2],
         bytes[ROUNDS / 2]);
  return 0;
}
