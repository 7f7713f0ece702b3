/*
 * The questions of the Python notes that a measurement answers (see
 * docs/notes.md): CPU-bound and I/O-bound work spread over tasks, threads
 * and processes; concurrency against parallelism; a blocking read in a
 * task against weft's cooperative one. Python's side is in
 * peers/python_notes.py, with the same jobs.
 *
 *   BenchmarkCPUBound/workers=<w>/<impl>: ns per job of pure computation
 *   (1,000 steps of a 64-bit LCG with an xorshift, one long dependency
 *   chain, nothing shared), n jobs split evenly among w workers, timed from
 *   the first start to the last finish:
 *     serial        the calling thread does every job
 *     weft-tasks    w tasks on one hub (one thread), each yielding after
 *                   every job: concurrent, interleaved, not parallel
 *     weft-threads  w weft threads
 *     weft-procs    w children of weft_proc_start, joined
 *
 *   BenchmarkIOBound/waiters=<w>/<impl>: ns per job that waits for I/O: arm
 *   a timerfd to expire 1 ms later, then read it (a disk or a peer whose
 *   reply takes 1 ms, and no CPU meanwhile). n jobs split among w waiters,
 *   each with a timerfd of its own:
 *     serial                    the calling thread, a plain read(2)
 *     weft-procs                w children, each a plain read(2)
 *     weft-threads              w weft threads, each a plain read(2)
 *     weft-tasks                w tasks on one hub, weft_io_read: the task
 *                               parks, the hub runs the others
 *     weft-tasks-blocking-read  w tasks on one hub, each a plain read(2)
 *                               on a blocking fd: the thread, and with it
 *                               every task of the hub, waits in the kernel
 *
 * Nothing here joins a thread or a task: threads and tasks are started
 * without a handle and report their end through a waitgroup (threads) or
 * the end of weft_run (tasks). Children are joined and freed.
 */
#define _GNU_SOURCE
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <weft.h>

#include "bench.h"

enum { MAX_WORKERS = 1000 };

/* --- the jobs ------------------------------------------------------------- */

/* One CPU-bound job: about 6,000 cycles of dependent arithmetic. */
static uint64_t cpu_job(uint64_t x) {
  for (int i = 0; i < 1000; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    x ^= x >> 29;
  }
  return x;
}

static volatile uint64_t sink; /* keeps the jobs' results alive */

/* A timerfd of the calling worker's own; blocking, close-on-exec. */
static int timer_open(void) {
  return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
}

/* Arms fd to expire in 1 ms. */
static bool timer_arm(int fd) {
  struct itimerspec its = {.it_value = {0, 1000000}};
  return timerfd_settime(fd, 0, &its, NULL) == 0;
}

/* One I/O-bound job on the blocking timerfd fd: arm, then a plain read. */
static bool io_job_blocking(int fd) {
  uint64_t expirations;
  return timer_arm(fd) &&
         read(fd, &expirations, sizeof expirations) == sizeof expirations;
}

/* The same job in a task, through weft: the task parks until the fd is
 * readable (weft_io_read makes the fd non-blocking). */
static bool io_job_weft(int fd) {
  uint64_t expirations;
  return timer_arm(fd) && weft_io_read(fd, &expirations, sizeof expirations,
                                       WEFT_FOREVER) == sizeof expirations;
}

/* --- workers -------------------------------------------------------------- */

struct part {
  uint64_t jobs;
  uint64_t seed;
  bool ok;
};

static struct part parts[MAX_WORKERS];
static weft_waitgroup done = WEFT_WAITGROUP_INIT;
static int workers; /* w of the row being measured (set by ROW) */

/* Splits n jobs among w workers: parts[0 .. w-1]. */
static void split(uint64_t n, int w) {
  for (int i = 0; i < w; i++) {
    parts[i].jobs = n / (uint64_t)w + ((uint64_t)i < n % (uint64_t)w);
    parts[i].seed = (uint64_t)i + 1;
    parts[i].ok = false;
  }
}

static bool all_ok(int w) {
  for (int i = 0; i < w; i++)
    if (!parts[i].ok)
      return false;
  return true;
}

static void cpu_part(struct part *p) {
  uint64_t x = p->seed;
  for (uint64_t j = 0; j < p->jobs; j++)
    x = cpu_job(x);
  sink = x;
  p->ok = true;
}

static void io_part_blocking(struct part *p) {
  int fd = timer_open();
  bool ok = fd >= 0;
  for (uint64_t j = 0; ok && j < p->jobs; j++)
    ok = io_job_blocking(fd);
  if (fd >= 0)
    close(fd);
  p->ok = ok;
}

/* Threads: started without a handle; each says it is done through the
 * waitgroup, and touches nothing shared after that. */
static void *cpu_thread(void *arg) {
  cpu_part(arg);
  weft_waitgroup_done(&done);
  return NULL;
}

static void *io_thread(void *arg) {
  io_part_blocking(arg);
  weft_waitgroup_done(&done);
  return NULL;
}

static bool on_threads(uint64_t n, weft_thread_fn fn) {
  split(n, workers);
  weft_waitgroup_add(&done, workers);
  int started = 0;
  for (int i = 0; i < workers; i++) {
    if (weft_thread_start(NULL, fn, &parts[i], NULL) != 0)
      break;
    started++;
  }
  weft_waitgroup_add(&done, started - workers);
  weft_waitgroup_wait(&done, WEFT_FOREVER);
  return started == workers && all_ok(workers);
}

/* Processes: each child does its part and exits 0 if it went well. */
static int cpu_child(void *arg) {
  cpu_part(arg);
  return 0;
}

static int io_child(void *arg) {
  struct part *p = arg;
  io_part_blocking(p);
  return p->ok ? 0 : 1;
}

static bool on_procs(uint64_t n, weft_proc_fn fn) {
  split(n, workers);
  weft_proc *p[MAX_WORKERS];
  int started = 0;
  for (int i = 0; i < workers; i++) {
    if (weft_proc_start(&p[i], fn, &parts[i], NULL) != 0)
      break;
    started++;
  }
  bool ok = started == workers;
  for (int i = 0; i < started; i++) {
    int code = -1;
    if (weft_proc_join(p[i], WEFT_FOREVER, &code) != 0 || code != 0)
      ok = false;
    weft_proc_free(p[i]);
  }
  return ok;
}

/* Tasks: spawned without a handle by a main task that returns at once;
 * weft_run returns when every task has finished. */
static void *cpu_task(void *arg) {
  struct part *p = arg;
  uint64_t x = p->seed;
  for (uint64_t j = 0; j < p->jobs; j++) {
    x = cpu_job(x);
    weft_yield(); /* let the others run: interleaved, as threads would be */
  }
  sink = x;
  p->ok = true;
  return NULL;
}

static void *io_task(void *arg) {
  struct part *p = arg;
  int fd = timer_open();
  bool ok = fd >= 0;
  for (uint64_t j = 0; ok && j < p->jobs; j++)
    ok = io_job_weft(fd);
  if (fd >= 0)
    weft_io_close(fd);
  p->ok = ok;
  return NULL;
}

static void *io_task_blocking(void *arg) {
  io_part_blocking(arg);
  return NULL;
}

static weft_task_fn task_fn;

static void *spawn_all(void *arg) {
  (void)arg;
  for (int i = 0; i < workers; i++)
    if (weft_task_spawn(NULL, task_fn, &parts[i], NULL) != 0)
      return (void *)1;
  return NULL;
}

static bool on_tasks(uint64_t n, weft_task_fn fn) {
  split(n, workers);
  task_fn = fn;
  void *failed = (void *)1;
  return weft_run(spawn_all, NULL, &failed) == 0 && !failed &&
         all_ok(workers);
}

/* --- the rows ------------------------------------------------------------- */

/* ROW(name, w, on, fn): a bench_fn that runs n jobs on w workers, with
 * on (serial, on_tasks, on_threads, on_procs) running fn in each. */
#define ROW(name, w, on, fn)                                                   \
  static bool name(uint64_t n) {                                               \
    workers = (w);                                                             \
    return on(n, fn);                                                          \
  }

static bool serial(uint64_t n, void (*part)(struct part *)) {
  split(n, 1);
  part(&parts[0]);
  return parts[0].ok;
}

ROW(cpu_serial, 1, serial, cpu_part)
ROW(cpu_tasks_2, 2, on_tasks, cpu_task)
ROW(cpu_threads_2, 2, on_threads, cpu_thread)
ROW(cpu_procs_2, 2, on_procs, cpu_child)
ROW(cpu_threads_4, 4, on_threads, cpu_thread)
ROW(io_serial, 1, serial, io_part_blocking)
ROW(io_procs_2, 2, on_procs, io_child)
ROW(io_procs_100, 100, on_procs, io_child)
ROW(io_threads_100, 100, on_threads, io_thread)
ROW(io_tasks_100, 100, on_tasks, io_task)
ROW(io_tasks_blocking_100, 100, on_tasks, io_task_blocking)
ROW(io_threads_1000, 1000, on_threads, io_thread)
ROW(io_tasks_1000, 1000, on_tasks, io_task)

/* NULL when the process may open an fd for each of 1,000 waiters (raising
 * its soft limit to the hard one if need be), else why not. */
static const char *fds_for_1000(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return "getrlimit failed";
  if (rl.rlim_cur < 1100 && rl.rlim_max >= 1100) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur >= 1100 ? NULL : "fewer than 1,100 fds (ulimit -n)";
}

int main(void) {
  const char *no_fds = fds_for_1000();
  struct bench_impl cpu[] = {
      {"BenchmarkCPUBound/workers=1/serial", cpu_serial, NULL},
      {"BenchmarkCPUBound/workers=2/weft-tasks", cpu_tasks_2, NULL},
      {"BenchmarkCPUBound/workers=2/weft-threads", cpu_threads_2, NULL},
      {"BenchmarkCPUBound/workers=2/weft-procs", cpu_procs_2, NULL},
      {"BenchmarkCPUBound/workers=4/weft-threads", cpu_threads_4, NULL},
  };
  bench_group(cpu, (int)(sizeof cpu / sizeof cpu[0]));
  struct bench_impl io[] = {
      {"BenchmarkIOBound/waiters=1/serial", io_serial, NULL},
      {"BenchmarkIOBound/waiters=2/weft-procs", io_procs_2, NULL},
      {"BenchmarkIOBound/waiters=100/weft-procs", io_procs_100, NULL},
      {"BenchmarkIOBound/waiters=100/weft-threads", io_threads_100, NULL},
      {"BenchmarkIOBound/waiters=100/weft-tasks", io_tasks_100, NULL},
      {"BenchmarkIOBound/waiters=100/weft-tasks-blocking-read",
       io_tasks_blocking_100, NULL},
      {"BenchmarkIOBound/waiters=1000/weft-threads", io_threads_1000, no_fds},
      {"BenchmarkIOBound/waiters=1000/weft-tasks", io_tasks_1000, no_fds},
  };
  bench_group(io, (int)(sizeof io / sizeof io[0]));
  return 0;
}
