/*
 * Waking an idle task:
 *
 *   BenchmarkWakeHibernated/weft     a byte over a socket pair to a task
 *                                    that waits for it hibernated, and a
 *                                    byte back; ns per round trip. The
 *                                    hub hibernates the task at every wait
 *                                    (weft_hub_idle_after(0)), so each
 *                                    round trip pays a hibernation (its
 *                                    frames copied out, its 16 KiB stack
 *                                    given back) and a wake (copied back,
 *                                    the page faults of the pages they
 *                                    fill): an idle connection's whole
 *                                    cycle.
 *   BenchmarkWakeHibernated/awake    the same round trip, the task never
 *                                    hibernated (weft_hub_idle_after
 *                                    WEFT_FOREVER): the difference is what
 *                                    hibernation costs.
 *
 * BenchmarkChanPingPong/weft-tasks (bench/sync.c) is a round trip between
 * two tasks without the kernel.
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>

#include "bench.h"

struct pair {
  int fds[2];
  uint64_t n;
  bool ok;
};

/* The idle side: waits for a byte, sends it back, n times. */
static void *echo_one(void *arg) {
  struct pair *p = arg;
  for (uint64_t i = 0; i < p->n; i++) {
    char c;
    if (weft_io_read(p->fds[1], &c, 1, WEFT_FOREVER) != 1 ||
        weft_io_write(p->fds[1], &c, 1, WEFT_FOREVER) != 1)
      return NULL;
  }
  p->ok = true;
  return NULL;
}

static void *round_trips(void *arg) {
  struct pair *p = arg;
  weft_task *t;
  /* As the httpd's connections: 16 KiB stacks, hibernated when idle. */
  if (weft_task_spawn(
          &t, echo_one, p,
          &(weft_task_opts){.stack_size = 16 << 10, .hibernate = true}) != 0)
    return NULL;
  for (uint64_t i = 0; i < p->n; i++) {
    char c = (char)i, back;
    if (weft_io_write(p->fds[0], &c, 1, WEFT_FOREVER) != 1 ||
        weft_io_read(p->fds[0], &back, 1, WEFT_FOREVER) != 1 || back != c)
      break;
  }
  weft_task_join(t, WEFT_FOREVER, NULL);
  return NULL;
}

static int64_t idle_after;

static void *main_task(void *arg) {
  if (weft_hub_idle_after(idle_after) != 0)
    return NULL;
  return round_trips(arg);
}

static bool run(uint64_t n, int64_t after) {
  struct pair p = {.n = n};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p.fds) != 0)
    return false;
  idle_after = after;
  bool ok = weft_run(main_task, &p, NULL) == 0 && p.ok;
  close(p.fds[0]);
  close(p.fds[1]);
  return ok;
}

static bool hibernated(uint64_t n) { return run(n, 0); }
static bool awake(uint64_t n) { return run(n, WEFT_FOREVER); }

int main(void) {
  struct bench_impl impls[] = {
      {"BenchmarkWakeHibernated/weft", hibernated, NULL},
      {"BenchmarkWakeHibernated/awake", awake, NULL},
  };
  bench_group(impls, 2);
  return 0;
}
