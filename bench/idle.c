/*
 * Waking an idle task. A task waits for a byte over a socket pair and
 * sends it back; the hub hibernates it at every wait (weft_hub_idle_after
 * (0): its frames copied out, its 16 KiB stack given back), or never
 * (WEFT_FOREVER):
 *
 *   BenchmarkWakeHibernated/weft     the wake: ns from the byte's send to
 *                                    the hibernated task's read returning
 *                                    (the send, the poller's wake, the
 *                                    frames copied back and the page
 *                                    faults of the pages they fill, the
 *                                    read); the rest of the round trip,
 *                                    the hibernation among it, is paused
 *   BenchmarkWakeHibernated/awake    the same for a task never
 *                                    hibernated: the difference is what
 *                                    hibernation adds to a wake
 *   BenchmarkWakeHibernated/cycle/weft
 *   BenchmarkWakeHibernated/cycle/awake
 *                                    the whole round trip, unpaused: an
 *                                    idle connection's whole cycle, the
 *                                    hibernation included
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
  bool wake_only; /* time from the send to the read's return only */
};

/* The idle side: waits for a byte, sends it back, n times. */
static void *echo_one(void *arg) {
  struct pair *p = arg;
  for (uint64_t i = 0; i < p->n; i++) {
    char c;
    ssize_t got = weft_io_read(p->fds[1], &c, 1, WEFT_FOREVER);
    if (p->wake_only)
      bench_pause();
    if (got != 1 || weft_io_write(p->fds[1], &c, 1, WEFT_FOREVER) != 1)
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
    if (p->wake_only)
      bench_resume();
    if (weft_io_write(p->fds[0], &c, 1, WEFT_FOREVER) != 1 ||
        weft_io_read(p->fds[0], &back, 1, WEFT_FOREVER) != 1 || back != c)
      break;
  }
  weft_task_join(t, WEFT_FOREVER, NULL);
  return NULL;
}

static int64_t idle_after;

/* The sending side runs in a task of its own that is never trimmed: with
 * the hub's threshold at 0, the main task would be, at each of its waits,
 * inside the timed wake. The main task waits once, in the join. */
static void *main_task(void *arg) {
  if (weft_hub_idle_after(idle_after) != 0)
    return NULL;
  weft_task *sender;
  if (weft_task_spawn(&sender, round_trips, arg,
                      &(weft_task_opts){.idle_after = WEFT_FOREVER}) != 0)
    return NULL;
  weft_task_join(sender, WEFT_FOREVER, NULL);
  return NULL;
}

static bool run(uint64_t n, int64_t after, bool wake_only) {
  struct pair p = {.n = n, .wake_only = wake_only};
  if (wake_only)
    bench_pause(); /* until the first send */
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p.fds) != 0)
    return false;
  idle_after = after;
  bool ok = weft_run(main_task, &p, NULL) == 0 && p.ok;
  if (wake_only)
    bench_resume(); /* from the last read */
  close(p.fds[0]);
  close(p.fds[1]);
  return ok;
}

static bool hibernated(uint64_t n) { return run(n, 0, true); }
static bool awake(uint64_t n) { return run(n, WEFT_FOREVER, true); }
static bool cycle_hibernated(uint64_t n) { return run(n, 0, false); }
static bool cycle_awake(uint64_t n) { return run(n, WEFT_FOREVER, false); }

int main(void) {
  struct bench_impl impls[] = {
      {"BenchmarkWakeHibernated/weft", hibernated, NULL},
      {"BenchmarkWakeHibernated/awake", awake, NULL},
      {"BenchmarkWakeHibernated/cycle/weft", cycle_hibernated, NULL},
      {"BenchmarkWakeHibernated/cycle/awake", cycle_awake, NULL},
  };
  bench_group(impls, 4);
  return 0;
}
