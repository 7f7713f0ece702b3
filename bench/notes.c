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
 *   BenchmarkHandOff/<impl>: ns per round trip of a token between two
 *   workers that wait for each other in turn (two switches):
 *     weft-tasks         two tasks on one hub, unbuffered weft_chan: each
 *                        switch is made in user space
 *     pipe-threads-1cpu  two weft threads pinned to one CPU, a pipe each
 *                        way: each hand-over is a write, a read, and a
 *                        switch between threads made by the kernel
 *
 * Each row also prints the CPUs it kept busy: the CPU time its workers
 * used (the threads', the children's, or the calling thread's for serial
 * rows and tasks) over the wall time, summed over the 5 rounds. 2.00 on
 * a 2-CPU machine is both CPUs at work all along; a row that should
 * reach it and does not was sharing the machine with other work.
 *
 * Nothing here joins a thread or a task: threads and tasks are started
 * without a handle and report their end through a waitgroup (threads) or
 * the end of weft_run (tasks). Children are joined and freed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
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
  int64_t cpu_ns; /* CPU time the worker used (a child's: all of it) */
  bool ok;
};

/* Shared with the children of the weft-procs rows (mapped in main). */
static struct part *parts;

static int64_t cpu_clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The CPU time of the last run of a row, for its CPUs figure. */
static int64_t row_cpu_ns;
static weft_waitgroup done = WEFT_WAITGROUP_INIT;
static int workers; /* w of the row being measured (set by ROW) */

/* Splits n jobs among w workers: parts[0 .. w-1]. */
static void split(uint64_t n, int w) {
  for (int i = 0; i < w; i++) {
    parts[i].jobs = n / (uint64_t)w + ((uint64_t)i < n % (uint64_t)w);
    parts[i].seed = (uint64_t)i + 1;
    parts[i].cpu_ns = 0;
    parts[i].ok = false;
  }
}

/* Whether every worker's part went well; sums their CPU time. */
static bool all_ok(int w) {
  bool ok = true;
  row_cpu_ns = 0;
  for (int i = 0; i < w; i++) {
    ok = ok && parts[i].ok;
    row_cpu_ns += parts[i].cpu_ns;
  }
  return ok;
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
  struct part *p = arg;
  cpu_part(p);
  p->cpu_ns = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
  weft_waitgroup_done(&done);
  return NULL;
}

static void *io_thread(void *arg) {
  struct part *p = arg;
  io_part_blocking(p);
  p->cpu_ns = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
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
  struct part *p = arg;
  cpu_part(p);
  p->cpu_ns = cpu_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  return 0;
}

static int io_child(void *arg) {
  struct part *p = arg;
  io_part_blocking(p);
  p->cpu_ns = cpu_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
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
  return all_ok(workers) && ok;
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
  int64_t cpu0 = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
  bool ok =
      weft_run(spawn_all, NULL, &failed) == 0 && !failed && all_ok(workers);
  row_cpu_ns = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  return ok;
}

/* --- hand-offs ------------------------------------------------------------
 * BenchmarkHandOff/<impl>: ns per round trip of a token between two
 * workers, each waiting for the other in turn: what a switch from one to
 * the other costs, twice.
 *   weft-tasks          two tasks on one hub, an unbuffered weft_chan: a
 *                       switch in user space each way
 *   pipe-threads-1cpu   two threads pinned to one CPU, a pipe each way:
 *                       every hand-over is a write, a read, and a switch
 *                       between threads by the kernel
 */

static weft_chan ping = WEFT_CHAN_INIT(NULL, 0), pong = WEFT_CHAN_INIT(NULL, 0);
static uint64_t trips;

static void *ping_task(void *arg) {
  (void)arg;
  for (uint64_t i = 0; i < trips; i++)
    if (weft_chan_send(&ping, NULL, WEFT_FOREVER) != 0 ||
        weft_chan_recv(&pong, NULL, WEFT_FOREVER) != 0)
      return (void *)1;
  return NULL;
}

static void *pong_task(void *arg) {
  (void)arg;
  for (uint64_t i = 0; i < trips; i++)
    if (weft_chan_recv(&ping, NULL, WEFT_FOREVER) != 0 ||
        weft_chan_send(&pong, NULL, WEFT_FOREVER) != 0)
      return (void *)1;
  return NULL;
}

static void *two_tasks(void *arg) {
  (void)arg;
  if (weft_task_spawn(NULL, pong_task, NULL, NULL) != 0)
    return (void *)1;
  return ping_task(NULL);
}

static bool handoff_tasks(uint64_t n) {
  trips = n;
  void *failed = (void *)1;
  int64_t cpu0 = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
  bool ok = weft_run(two_tasks, NULL, &failed) == 0 && !failed;
  row_cpu_ns = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  return ok;
}

/* pipes[0] carries the token to side 0, pipes[1] to side 1. */
static int pipes[2][2];
static bool pipe_ok[2];
static int64_t pipe_cpu_ns[2];

static bool pin_to_last_cpu(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET((size_t)sysconf(_SC_NPROCESSORS_ONLN) - 1, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

static void *pipe_side(void *arg) {
  int side = (int)(intptr_t)arg; /* 0 pings, 1 pongs */
  int in = pipes[side][0], out = pipes[1 - side][1];
  char c = 0;
  bool ok = pin_to_last_cpu();
  for (uint64_t i = 0; ok && i < trips; i++) {
    if (side == 0)
      ok = write(out, &c, 1) == 1 && read(in, &c, 1) == 1;
    else
      ok = read(in, &c, 1) == 1 && write(out, &c, 1) == 1;
  }
  pipe_ok[side] = ok;
  pipe_cpu_ns[side] = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
  weft_waitgroup_done(&done);
  return NULL;
}

static bool handoff_pipe_threads(uint64_t n) {
  trips = n;
  if (pipe2(pipes[0], O_CLOEXEC) != 0)
    return false;
  if (pipe2(pipes[1], O_CLOEXEC) != 0) {
    close(pipes[0][0]);
    close(pipes[0][1]);
    return false;
  }
  pipe_ok[0] = pipe_ok[1] = false;
  pipe_cpu_ns[0] = pipe_cpu_ns[1] = 0;
  weft_waitgroup_add(&done, 2);
  int started = 0;
  for (int side = 0; side < 2; side++)
    if (weft_thread_start(NULL, pipe_side, (void *)(intptr_t)side, NULL) == 0)
      started++;
  weft_waitgroup_add(&done, started - 2);
  if (started < 2) { /* the side that started reads an end of file */
    close(pipes[0][1]);
    close(pipes[1][1]);
    pipes[0][1] = pipes[1][1] = -1;
  }
  weft_waitgroup_wait(&done, WEFT_FOREVER);
  for (int i = 0; i < 2; i++) {
    close(pipes[i][0]);
    if (pipes[i][1] >= 0)
      close(pipes[i][1]);
  }
  row_cpu_ns = pipe_cpu_ns[0] + pipe_cpu_ns[1];
  return started == 2 && pipe_ok[0] && pipe_ok[1];
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
  int64_t cpu0 = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
  part(&parts[0]);
  row_cpu_ns = cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
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
  parts = mmap(NULL, MAX_WORKERS * sizeof *parts, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (parts == MAP_FAILED) {
    perror("bench-notes: mmap");
    return 1;
  }
  const char *no_fds = fds_for_1000();
  struct bench_impl cpu[] = {
      {"BenchmarkCPUBound/workers=1/serial", cpu_serial, NULL},
      {"BenchmarkCPUBound/workers=2/weft-tasks", cpu_tasks_2, NULL},
      {"BenchmarkCPUBound/workers=2/weft-threads", cpu_threads_2, NULL},
      {"BenchmarkCPUBound/workers=2/weft-procs", cpu_procs_2, NULL},
      {"BenchmarkCPUBound/workers=4/weft-threads", cpu_threads_4, NULL},
  };
  bench_group_cpus(cpu, (int)(sizeof cpu / sizeof cpu[0]), &row_cpu_ns);
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
  bench_group_cpus(io, (int)(sizeof io / sizeof io[0]), &row_cpu_ns);
  struct bench_impl handoff[] = {
      {"BenchmarkHandOff/weft-tasks", handoff_tasks, NULL},
      {"BenchmarkHandOff/pipe-threads-1cpu", handoff_pipe_threads, NULL},
  };
  bench_group_cpus(handoff, (int)(sizeof handoff / sizeof handoff[0]),
                   &row_cpu_ns);
  return 0;
}
