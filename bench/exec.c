/*
 * Futures and the pools that complete them (weft/exec.h), beside Python's
 * concurrent.futures (peers/python_exec.py) and a Go worker pool
 * (peers/go/exec.go):
 *
 *   BenchmarkThreadPoolRoundTrip/weft: ns per call of a no-op submitted to
 *   a weft_thread_pool with default options (CPUs + 4 workers at most) and
 *   waited for with weft_future_result before the next is submitted: a
 *   future made, the call queued, an idle worker woken, the future
 *   completed and the caller woken, the future freed.
 *
 *   BenchmarkThreadPoolThroughput/weft: ns per call when 1,000,000 no-op
 *   calls are submitted to the same pool, then each awaited in the order
 *   submitted and freed. A round is always the million calls (a first
 *   round that starts the workers, then the median of 3, which keeps the
 *   row within a few seconds): the queue holds them all at once, as a
 *   program's queue holds a batch it submits.
 *
 *   BenchmarkProcessPoolRoundTrip/weft, BenchmarkProcessPoolThroughput/weft:
 *   the same on a weft_proc_pool with default options (a worker process
 *   per CPU), each call taking a 64-byte argument and returning its 64
 *   bytes, which come back in the future (the throughput rows' rounds are
 *   100,000 calls).
 *
 *   BenchmarkWorkload/kind=<cpu|io>/<runner>: ns per job, 1,000 jobs a
 *   round, all submitted (or spawned) and then awaited; each row also
 *   prints the CPUs it kept busy. The cpu job hashes a 1 MiB buffer, filled
 *   once before any worker starts (FNV-1a over its 64-bit words: one long
 *   chain of multiplies, some 0.2 ms); the io job opens a timerfd, arms it
 *   to expire 1 ms later, reads it and closes it (a disk or a peer whose
 *   reply takes 1 ms, and no CPU meanwhile). Runners:
 *     weft-thread-pool  a weft_thread_pool: as many workers as CPUs for
 *                       cpu, 100 for io
 *     weft-proc-pool    a weft_proc_pool, as many worker processes
 *     weft-tasks        1,000 tasks on one hub, one a job: for io each
 *                       parks in weft_io_read on its timerfd, so that the
 *                       1,000 waits overlap; for cpu the jobs run one
 *                       after the other on the hub's one thread
 *
 * The CPUs of a workload row are the CPU time used during its rounds over
 * their wall time: this process's (all its threads: CLOCK_PROCESS_CPUTIME_ID)
 * and its live children's (the pool's worker processes: the run time in
 * /proc/<pid>/task/<tid>/schedstat), read before and after each round. The
 * pools' workers live on from round to round, so bench/notes.c's way (each
 * worker reports its own CPU time when it ends) does not fit here. 2.00 on
 * a 2-CPU machine is both CPUs at work all along.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <sys/timerfd.h>
#include <weft.h>
#include <weft/exec.h>

#include "bench.h"

/* --- the jobs ------------------------------------------------------------- */

enum { BUF_WORDS = (1 << 20) / 8, JOBS = 1000, IO_WORKERS = 100 };

static uint64_t *buf; /* 1 MiB, filled once in main */

/* FNV-1a over the buffer's 64-bit words, from a seed of the job's. */
static uint64_t cpu_job(uint64_t seed) {
  uint64_t h = 14695981039346656037ull ^ seed;
  for (size_t i = 0; i < BUF_WORDS; i++)
    h = (h ^ buf[i]) * 1099511628211ull;
  return h;
}

static uint64_t expected[JOBS]; /* cpu_job(i) */

/* The io job on a thread: a plain read(2) on a blocking timerfd. */
static bool io_job(void) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  if (fd < 0)
    return false;
  struct itimerspec its = {.it_value = {0, 1000000}};
  uint64_t expirations;
  bool ok = timerfd_settime(fd, 0, &its, NULL) == 0 &&
            read(fd, &expirations, sizeof expirations) == sizeof expirations;
  close(fd);
  return ok;
}

/* The io job in a task: the task parks until the fd is readable. */
static bool io_job_task(void) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  if (fd < 0)
    return false;
  struct itimerspec its = {.it_value = {0, 1000000}};
  uint64_t expirations;
  bool ok = timerfd_settime(fd, 0, &its, NULL) == 0 &&
            weft_io_read(fd, &expirations, sizeof expirations, WEFT_FOREVER) ==
                sizeof expirations;
  weft_io_close(fd);
  return ok;
}

/* --- the calls, for each pool --------------------------------------------- */

static int noop(void *arg, void **value) {
  (void)arg;
  (void)value;
  return 0;
}

/* A process pool's call: its 64 bytes back. */
static int echo64(const void *arg, size_t len, void **result,
                  size_t *result_len) {
  if (len != 64)
    return -EINVAL;
  if (!(*result = malloc(64)))
    return -ENOMEM;
  memcpy(*result, arg, 64);
  *result_len = 64;
  return 0;
}

static int cpu_call(void *arg, void **value) {
  *value = (void *)(uintptr_t)cpu_job((uint64_t)(uintptr_t)arg);
  return 0;
}

static int io_call(void *arg, void **value) {
  (void)arg;
  (void)value;
  return io_job() ? 0 : -EIO;
}

/* The cpu job in a worker process: an 8-byte seed in, the hash out. */
static int cpu_proc_call(const void *arg, size_t len, void **result,
                         size_t *result_len) {
  uint64_t seed;
  if (len != sizeof seed)
    return -EINVAL;
  memcpy(&seed, arg, sizeof seed);
  uint64_t *h = malloc(sizeof *h);
  if (!h)
    return -ENOMEM;
  *h = cpu_job(seed);
  *result = h;
  *result_len = sizeof *h;
  return 0;
}

static int io_proc_call(const void *arg, size_t len, void **result,
                        size_t *result_len) {
  (void)arg;
  (void)len;
  (void)result;
  (void)result_len;
  return io_job() ? 0 : -EIO;
}

/* --- round trips and throughput ------------------------------------------- */

static weft_thread_pool *tpool; /* default options */
static weft_proc_pool *ppool;   /* default options */
static weft_future **futures;   /* room for the throughput rows' calls */

/* Whether f finished with no error, and, with size not 0, size bytes. */
static bool finished(weft_future *f, size_t size) {
  int error = -1;
  bool ok = weft_future_result(f, WEFT_FOREVER, NULL, &error) == 0 &&
            error == 0 && (!size || weft_future_size(f) == size);
  weft_future_free(f);
  return ok;
}

static bool thread_round_trip(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    weft_future *f;
    if (weft_thread_pool_submit(tpool, noop, NULL, WEFT_FOREVER, &f) != 0 ||
        !finished(f, 0))
      return false;
  }
  return true;
}

static bool thread_throughput(uint64_t n) {
  uint64_t submitted = 0;
  while (submitted < n &&
         weft_thread_pool_submit(tpool, noop, NULL, WEFT_FOREVER,
                                 &futures[submitted]) == 0)
    submitted++;
  bool ok = submitted == n;
  for (uint64_t i = 0; i < submitted; i++)
    ok = finished(futures[i], 0) && ok;
  return ok;
}

static const char arg64[64] = "sixty-four bytes of argument, sixty-four bytes";

static bool proc_round_trip(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    weft_future *f;
    if (weft_proc_pool_submit(ppool, echo64, arg64, sizeof arg64, WEFT_FOREVER,
                              &f) != 0 ||
        !finished(f, 64))
      return false;
  }
  return true;
}

static bool proc_throughput(uint64_t n) {
  uint64_t submitted = 0;
  while (submitted < n &&
         weft_proc_pool_submit(ppool, echo64, arg64, sizeof arg64, WEFT_FOREVER,
                               &futures[submitted]) == 0)
    submitted++;
  bool ok = submitted == n;
  for (uint64_t i = 0; i < submitted; i++)
    ok = finished(futures[i], 64) && ok;
  return ok;
}

/* --- workloads ------------------------------------------------------------ */

static weft_thread_pool *wtpool; /* the workload's, sized for its kind */
static weft_proc_pool *wppool;

static bool tpool_cpu(uint64_t n) {
  uint64_t submitted = 0;
  while (submitted < n &&
         weft_thread_pool_submit(wtpool, cpu_call,
                                 (void *)(uintptr_t)(submitted % JOBS),
                                 WEFT_FOREVER, &futures[submitted]) == 0)
    submitted++;
  bool ok = submitted == n;
  for (uint64_t i = 0; i < submitted; i++) {
    void *h = NULL;
    int error = -1;
    ok = weft_future_result(futures[i], WEFT_FOREVER, &h, &error) == 0 &&
         error == 0 && (uint64_t)(uintptr_t)h == expected[i % JOBS] && ok;
    weft_future_free(futures[i]);
  }
  return ok;
}

static bool tpool_io(uint64_t n) {
  uint64_t submitted = 0;
  while (submitted < n &&
         weft_thread_pool_submit(wtpool, io_call, NULL, WEFT_FOREVER,
                                 &futures[submitted]) == 0)
    submitted++;
  bool ok = submitted == n;
  for (uint64_t i = 0; i < submitted; i++)
    ok = finished(futures[i], 0) && ok;
  return ok;
}

static bool ppool_cpu(uint64_t n) {
  uint64_t submitted = 0;
  for (; submitted < n; submitted++) {
    uint64_t seed = submitted % JOBS;
    if (weft_proc_pool_submit(wppool, cpu_proc_call, &seed, sizeof seed,
                              WEFT_FOREVER, &futures[submitted]) != 0)
      break;
  }
  bool ok = submitted == n;
  for (uint64_t i = 0; i < submitted; i++) {
    void *h = NULL;
    int error = -1;
    ok = weft_future_result(futures[i], WEFT_FOREVER, &h, &error) == 0 &&
         error == 0 && weft_future_size(futures[i]) == sizeof(uint64_t) &&
         memcmp(h, &expected[i % JOBS], sizeof(uint64_t)) == 0 && ok;
    weft_future_free(futures[i]);
  }
  return ok;
}

static bool ppool_io(uint64_t n) {
  uint64_t submitted = 0;
  while (submitted < n &&
         weft_proc_pool_submit(wppool, io_proc_call, NULL, 0, WEFT_FOREVER,
                               &futures[submitted]) == 0)
    submitted++;
  bool ok = submitted == n;
  for (uint64_t i = 0; i < submitted; i++)
    ok = finished(futures[i], 0) && ok;
  return ok;
}

/* Tasks: one a job, spawned without a handle by a main task that returns
 * at once; weft_run returns when every task has finished. A task reports
 * a failed job by clearing tasks_ok (one hub: no race). */
static uint64_t task_jobs;
static bool tasks_ok;

static void *cpu_task(void *arg) {
  uint64_t i = (uint64_t)(uintptr_t)arg;
  if (cpu_job(i % JOBS) != expected[i % JOBS])
    tasks_ok = false;
  return NULL;
}

static void *io_task(void *arg) {
  (void)arg;
  if (!io_job_task())
    tasks_ok = false;
  return NULL;
}

static weft_task_fn task_fn;

static void *spawn_all(void *arg) {
  (void)arg;
  for (uint64_t i = 0; i < task_jobs; i++)
    if (weft_task_spawn(NULL, task_fn, (void *)(uintptr_t)i, NULL) != 0)
      tasks_ok = false;
  return NULL;
}

static bool on_tasks(uint64_t n, weft_task_fn fn) {
  task_jobs = n;
  task_fn = fn;
  tasks_ok = true;
  return weft_run(spawn_all, NULL, NULL) == 0 && tasks_ok;
}

static bool tasks_cpu(uint64_t n) { return on_tasks(n, cpu_task); }
static bool tasks_io(uint64_t n) { return on_tasks(n, io_task); }

/* --- measuring rows of a fixed size --------------------------------------- */

static int64_t clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The CPU time, in ns, of this process's live children: the run time of
 * each of their threads (the first field of /proc/<pid>/task/<tid>/
 * schedstat), the children found by the parent pid in /proc/<pid>/stat. */
static int64_t children_cpu_ns(void) {
  int64_t sum = 0;
  pid_t me = getpid();
  DIR *proc = opendir("/proc");
  if (!proc)
    return 0;
  struct dirent *e;
  char path[600];
  while ((e = readdir(proc)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    char line[512];
    bool child = false;
    if (fgets(line, sizeof line, f)) {
      /* pid (comm) state ppid: comm may hold spaces and parentheses. */
      char *close_paren = strrchr(line, ')');
      int ppid;
      child = close_paren && sscanf(close_paren + 1, " %*c %d", &ppid) == 1 &&
              ppid == me;
    }
    fclose(f);
    if (!child)
      continue;
    snprintf(path, sizeof path, "/proc/%s/task", e->d_name);
    DIR *tasks = opendir(path);
    if (!tasks)
      continue;
    struct dirent *t;
    while ((t = readdir(tasks)) != NULL) {
      if (t->d_name[0] == '.')
        continue;
      snprintf(path, sizeof path, "/proc/%s/task/%s/schedstat", e->d_name,
               t->d_name);
      FILE *s = fopen(path, "r");
      long long run_ns;
      if (s && fscanf(s, "%lld", &run_ns) == 1)
        sum += run_ns;
      if (s)
        fclose(s);
    }
    closedir(tasks);
  }
  closedir(proc);
  return sum;
}

/* bench_group for rows whose rounds are all of n operations: a first
 * round (which starts the pools' workers), then `rounds` rounds (at most
 * 5) of every row in turn, each row's median printed; with cpus, also the
 * CPUs each row kept busy during those rounds. */
static void group_fixed(struct bench_impl *impls, int count, uint64_t n,
                        int rounds, bool cpus) {
  enum { ROUNDS = 5 };
  double t[16][ROUNDS], wall[16], cpu[16];
  if (rounds > ROUNDS)
    rounds = ROUNDS;
  bool live[16];
  for (int i = 0; i < count; i++) {
    live[i] = false;
    wall[i] = cpu[i] = 0;
    if (!bench_selected(impls[i].name))
      continue;
    if (impls[i].skip) {
      printf("# skip %s: %s\n", impls[i].name, impls[i].skip);
      continue;
    }
    live[i] = impls[i].fn(n);
    if (!live[i])
      printf("# %s failed\n", impls[i].name);
  }
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < count; i++) {
      if (!live[i])
        continue;
      int64_t kids0 = cpus ? children_cpu_ns() : 0;
      int64_t self0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
      double t0 = bench_now();
      bool ok = impls[i].fn(n);
      double dt = bench_now() - t0;
      int64_t self1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
      int64_t kids1 = cpus ? children_cpu_ns() : 0;
      if (!ok) {
        printf("# %s failed\n", impls[i].name);
        live[i] = false;
        continue;
      }
      t[i][r] = dt * 1e9 / (double)n;
      wall[i] += dt;
      cpu[i] += (double)(self1 - self0 + kids1 - kids0) / 1e9;
    }
  for (int i = 0; i < count; i++) {
    if (!live[i])
      continue;
    qsort(t[i], (size_t)rounds, sizeof(double), bench_cmp);
    printf("%-40s %12llu %10.1f ns/op", impls[i].name, (unsigned long long)n,
           t[i][rounds / 2]);
    if (cpus)
      printf(" %6.2f CPUs", cpu[i] / wall[i]);
    putchar('\n');
  }
  fflush(stdout);
}

/* Whether any of the rows is selected by BENCH_FILTER. */
static bool any_selected(const struct bench_impl *impls, int count) {
  for (int i = 0; i < count; i++)
    if (bench_selected(impls[i].name))
      return true;
  return false;
}

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

enum { THREAD_CALLS = 1000000, PROC_CALLS = 100000 };

int main(void) {
  int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1)
    cpus = 1;
  futures = malloc(THREAD_CALLS * sizeof *futures);
  buf = malloc(BUF_WORDS * sizeof *buf);
  if (!futures || !buf) {
    perror("bench-exec: malloc");
    return 1;
  }
  uint64_t x = 1;
  for (size_t i = 0; i < BUF_WORDS; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    buf[i] = x ^ (x >> 29);
  }

  struct bench_impl round_trip[] = {
      {"BenchmarkThreadPoolRoundTrip/weft", thread_round_trip, NULL},
  };
  struct bench_impl throughput[] = {
      {"BenchmarkThreadPoolThroughput/weft", thread_throughput, NULL},
  };
  if (any_selected(round_trip, 1) || any_selected(throughput, 1)) {
    if (weft_thread_pool_new(&tpool, NULL) != 0) {
      fprintf(stderr, "bench-exec: weft_thread_pool_new failed\n");
      return 1;
    }
    bench_group(round_trip, 1);
    group_fixed(throughput, 1, THREAD_CALLS, 3, false);
    weft_thread_pool_free(tpool);
  }

  struct bench_impl proc_round_trip_row[] = {
      {"BenchmarkProcessPoolRoundTrip/weft", proc_round_trip, NULL},
  };
  struct bench_impl proc_throughput_row[] = {
      {"BenchmarkProcessPoolThroughput/weft", proc_throughput, NULL},
  };
  if (any_selected(proc_round_trip_row, 1) ||
      any_selected(proc_throughput_row, 1)) {
    if (weft_proc_pool_new(&ppool, NULL) != 0) {
      fprintf(stderr, "bench-exec: weft_proc_pool_new failed\n");
      return 1;
    }
    bench_group(proc_round_trip_row, 1);
    group_fixed(proc_throughput_row, 1, PROC_CALLS, 3, false);
    weft_proc_pool_free(ppool);
  }

  /* The pools of each kind are made before its rows and freed after, the
   * buffer filled before any worker process is forked. */
  const char *no_fds = bench_fds(JOBS) ? NULL : "fewer than 1,064 fds";
  struct {
    const char *kind;
    int workers;
    struct bench_impl rows[3];
  } kinds[] = {
      {"cpu",
       cpus,
       {{"BenchmarkWorkload/kind=cpu/weft-thread-pool", tpool_cpu, NULL},
        {"BenchmarkWorkload/kind=cpu/weft-proc-pool", ppool_cpu, NULL},
        {"BenchmarkWorkload/kind=cpu/weft-tasks", tasks_cpu, NULL}}},
      {"io",
       IO_WORKERS,
       {{"BenchmarkWorkload/kind=io/weft-thread-pool", tpool_io, NULL},
        {"BenchmarkWorkload/kind=io/weft-proc-pool", ppool_io, NULL},
        {"BenchmarkWorkload/kind=io/weft-tasks", tasks_io, no_fds}}},
  };
  for (int k = 0; k < COUNT(kinds); k++) {
    if (!any_selected(kinds[k].rows, COUNT(kinds[k].rows)))
      continue;
    if (k == 0)
      for (uint64_t i = 0; i < JOBS; i++)
        expected[i] = cpu_job(i);
    if (weft_thread_pool_new(
            &wtpool, &(weft_thread_pool_opts){.workers = kinds[k].workers}) !=
            0 ||
        weft_proc_pool_new(&wppool, &(weft_proc_pool_opts){
                                        .workers = kinds[k].workers}) != 0) {
      fprintf(stderr, "bench-exec: a workload's pool could not be made\n");
      return 1;
    }
    group_fixed(kinds[k].rows, COUNT(kinds[k].rows), JOBS, 5, true);
    weft_thread_pool_free(wtpool);
    weft_proc_pool_free(wppool);
  }
  free(buf);
  free(futures);
  return 0;
}
