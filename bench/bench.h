/*
 * A small benchmark harness. Each benchmark is a set of implementations of
 * one operation; the harness sizes an iteration count for each, then runs
 * them in alternating rounds (so that a noisy moment hurts all of them
 * alike) and prints the median of the rounds in Go's benchmark format:
 *
 *     BenchmarkSwitch/weft    20000000    22.6 ns/op
 *
 * Extra figures (B/gen, …) go after the ns/op as value-unit pairs.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Runs the operation n times; returns false when it cannot run here. */
typedef bool (*bench_fn)(uint64_t n);

struct bench_impl {
  const char *name; /* full name, "BenchmarkSwitch/weft" */
  bench_fn fn;
  const char *skip; /* non-NULL: why this peer is skipped */
};

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Time an operation leaves out of its figure (Go's b.StopTimer and
 * b.StartTimer): between bench_pause() and bench_resume() the clock of
 * the round stops. Rounds still last 0.2 s of the wall clock; ns/op is
 * the time not paused, per operation. */
static double bench_paused, bench_paused_at;
static inline void bench_pause(void) { bench_paused_at = bench_now(); }
static inline void bench_resume(void) {
  bench_paused += bench_now() - bench_paused_at;
}

static inline bool bench_selected(const char *name) {
  const char *f = getenv("BENCH_FILTER");
  if (!f || !*f)
    return true;
  regex_t re;
  if (regcomp(&re, f, REG_EXTENDED | REG_NOSUB) != 0)
    return true;
  bool ok = regexec(&re, name, 0, NULL, 0) == 0;
  regfree(&re);
  return ok;
}

static int bench_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* A "Name:  <n> kB" field of a /proc file in KiB, or -1. */
static inline long bench_proc_kb(const char *path, const char *field) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char line[256];
  long kb = -1;
  size_t len = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, len) == 0 && line[len] == ':') {
      kb = strtol(line + len + 1, NULL, 10);
      break;
    }
  fclose(f);
  return kb;
}

/* A field of /proc/self/status ("VmRSS", "VmHWM") in KiB, or -1. */
static inline long bench_status_kb(const char *field) {
  return bench_proc_kb("/proc/self/status", field);
}

/* A field of /proc/meminfo ("KernelStack") in KiB, or -1: the whole
 * machine's, so other processes starting or ending threads meanwhile show
 * in it. */
static inline long bench_meminfo_kb(const char *field) {
  return bench_proc_kb("/proc/meminfo", field);
}

/* Lets this process, and the children it forks, hold n fds (sockets, say)
 * and 64 more of its own: raises the soft RLIMIT_NOFILE to the hard limit
 * when it is lower than that. Returns whether n + 64 fit. */
static inline bool bench_fds(int n) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return false;
  rlim_t want = (rlim_t)n + 64;
  if (rl.rlim_cur >= want)
    return true;
  if (rl.rlim_max < want)
    return false;
  rl.rlim_cur = rl.rlim_max;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

/* Runs round(result) in a fresh child process and copies its result (size
 * bytes) back over a pipe, so that the round's peak memory (VmHWM) is its
 * own. Returns false when the child failed. */
static inline bool bench_in_child(void (*round)(void *result), void *result,
                                  size_t size) {
  int p[2];
  if (pipe(p) != 0)
    return false;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    round(result);
    _exit(write(p[1], result, size) == (ssize_t)size ? 0 : 1);
  }
  close(p[1]);
  ssize_t got = pid > 0 ? read(p[0], result, size) : -1;
  close(p[0]);
  if (pid > 0)
    waitpid(pid, NULL, 0);
  return got == (ssize_t)size;
}

/* Measures every implementation and prints one line each. With cpu_ns
 * not NULL, each run of a row stores there the CPU time it used (a row's
 * own measure: its threads', its children's), and the line ends with the
 * CPUs the row kept busy: on a shared machine a parallel row is parallel
 * only when the other CPUs were free. */
static inline void bench_group_cpus(struct bench_impl *impls, int count,
                                    const int64_t *cpu_ns) {
  enum { ROUNDS = 5 };
  uint64_t n[16];
  double t[16][ROUNDS], wall[16], cpu[16];
  bool live[16];
  for (int i = 0; i < count; i++) {
    live[i] = false;
    wall[i] = cpu[i] = 0;
    n[i] = 1; /* for every row: GCC cannot tell that only live ones are read */
    if (!bench_selected(impls[i].name))
      continue;
    if (impls[i].skip) {
      printf("# skip %s: %s\n", impls[i].name, impls[i].skip);
      continue;
    }
    /* Size n so that one round takes about 0.2 s. */
    for (;;) {
      double t0 = bench_now();
      if (!impls[i].fn(n[i])) {
        printf("# %s failed\n", impls[i].name);
        break;
      }
      double dt = bench_now() - t0;
      if (dt > 0.2 || n[i] > (1ull << 40)) {
        live[i] = true;
        break;
      }
      uint64_t next =
          dt > 0.001 ? (uint64_t)((double)n[i] * 0.25 / dt) : n[i] * 100;
      n[i] = next > n[i] ? next : n[i] * 2;
    }
  }
  for (int r = 0; r < ROUNDS; r++)
    for (int i = 0; i < count; i++) {
      if (!live[i])
        continue;
      /* A round runs n at a time until 0.2 s have passed: sized on a
       * slow moment of a busy machine, n alone could take a millisecond,
       * and a median of such rounds would be noise. */
      double t0 = bench_now(), dt = 0;
      uint64_t done = 0;
      bool ok = true;
      bench_paused = 0;
      while (ok && (done == 0 || dt < 0.2)) {
        ok = impls[i].fn(n[i]);
        done += n[i];
        dt = bench_now() - t0;
        cpu[i] += ok && cpu_ns ? (double)*cpu_ns / 1e9 : 0;
      }
      dt -= bench_paused;
      if (!ok) {
        printf("# %s failed\n", impls[i].name);
        live[i] = false;
        continue;
      }
      t[i][r] = dt * 1e9 / (double)done;
      wall[i] += dt;
    }
  for (int i = 0; i < count; i++) {
    if (!live[i])
      continue;
    qsort(t[i], ROUNDS, sizeof(double), bench_cmp);
    printf("%-40s %12llu %10.1f ns/op", impls[i].name, (unsigned long long)n[i],
           t[i][ROUNDS / 2]);
    if (cpu_ns)
      printf(" %6.2f CPUs", cpu[i] / wall[i]);
    putchar('\n');
  }
  fflush(stdout);
}

static inline void bench_group(struct bench_impl *impls, int count) {
  bench_group_cpus(impls, count, NULL);
}

/* A busy machine: one child process per CPU, each spinning, started by
 * bench_busy_start and killed by bench_busy_stop (the load=busy rows). */
enum { BENCH_BUSY_MAX = 64 };
static pid_t bench_busy_pids[BENCH_BUSY_MAX];
static int bench_busy_n;

static inline void bench_busy_start(void) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int n = cpus < 1 ? 1 : cpus > BENCH_BUSY_MAX ? BENCH_BUSY_MAX : (int)cpus;
  fflush(stdout);
  for (bench_busy_n = 0; bench_busy_n < n; bench_busy_n++) {
    pid_t pid = fork();
    if (pid == 0)
      for (volatile uint64_t spin = 0;; spin++)
        ;
    if (pid < 0)
      break;
    bench_busy_pids[bench_busy_n] = pid;
  }
}

static inline void bench_busy_stop(void) {
  for (int i = 0; i < bench_busy_n; i++)
    kill(bench_busy_pids[i], SIGKILL);
  for (int i = 0; i < bench_busy_n; i++)
    waitpid(bench_busy_pids[i], NULL, 0);
  bench_busy_n = 0;
}

/* bench_group with the machine kept busy meanwhile, if any row of it is
 * selected (the loops are started only then). */
static inline void bench_group_busy(struct bench_impl *impls, int count) {
  bool any = false;
  for (int i = 0; i < count; i++)
    any = any || bench_selected(impls[i].name);
  if (!any)
    return;
  bench_busy_start();
  bench_group(impls, count);
  bench_busy_stop();
}

#endif
