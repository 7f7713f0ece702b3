/*
 * The tour, futures and pools: a callback chained on a future (a download
 * then a checksum, as a crawler would), and the notes' question "threads
 * or processes?" answered small: a CPU-bound and an I/O-bound job run on a
 * thread pool, a process pool and tasks of one hub.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <weft.h>

#include "tour.h"

/* --- a callback chained on a future -------------------------------------- */

static int fetch(void *arg, void **value) {
  /* Stands for a download: a page of text. */
  static char page[64];
  snprintf(page, sizeof page, "<html>page %ld</html>", (long)(intptr_t)arg);
  *value = page;
  return 0;
}

static weft_thread_pool *chain_pool;

static int checksum(void *arg, void **value) {
  uint32_t sum = 0;
  for (const char *p = arg; *p; p++)
    sum = sum * 31 + (unsigned char)*p;
  *value = (void *)(uintptr_t)sum;
  return 0;
}

/* What the callback hands on: the checksum's future, once submitted. */
struct chain {
  weft_future *sum;
  weft_event submitted;
};

/* Runs when the fetch is done (on the pool's worker that completed it):
 * submits the checksum of what it fetched. */
static void then_checksum(weft_future *f, void *arg) {
  struct chain *c = arg;
  void *page;
  int err;
  weft_future_result(f, 0, &page, &err); /* done: at once */
  if (err == 0)
    weft_thread_pool_submit(chain_pool, checksum, page, WEFT_FOREVER, &c->sum);
  weft_event_set(&c->submitted);
}

static void tour_chain(void) {
  tour_section("futures: a checksum chained on a download by a callback");
  weft_thread_pool_new(&chain_pool, &(weft_thread_pool_opts){.workers = 2});
  struct chain c = {.sum = NULL, .submitted = WEFT_EVENT_INIT};
  weft_future *page;
  weft_thread_pool_submit(chain_pool, fetch, (void *)7, WEFT_FOREVER, &page);
  weft_future_add_done_callback(page, then_checksum, &c);
  weft_event_wait(&c.submitted, WEFT_SEC(5));
  void *v;
  if (c.sum && weft_future_result(c.sum, WEFT_SEC(5), &v, NULL) == 0)
    printf("  fetched, then summed by a callback: %08x\n",
           (unsigned)(uintptr_t)v);
  weft_future_free(page);
  weft_future_free(c.sum);
  weft_thread_pool_free(chain_pool);
}

/* --- threads or processes? ------------------------------------------------ */

enum { JOBS = 16, MIB = 1 << 20 };
static unsigned char *data;

static uint64_t hash_mib(void) {
  uint64_t h = 1469598103934665603u;
  for (int round = 0; round < 4; round++)
    for (size_t i = 0; i < MIB; i++)
      h = (h ^ data[i]) * 1099511628211u;
  return h;
}

static int wait_1ms(void) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct itimerspec its = {.it_value = {0, 1000000}};
  timerfd_settime(fd, 0, &its, NULL);
  uint64_t n;
  int rc = weft_io_read(fd, &n, sizeof n, WEFT_SEC(1)) == sizeof n ? 0 : -EIO;
  close(fd);
  return rc;
}

static int cpu_job(void *arg, void **value) {
  (void)arg;
  *value = (void *)(uintptr_t)hash_mib();
  return 0;
}

static int io_job(void *arg, void **value) {
  (void)arg, (void)value;
  return wait_1ms();
}

static int cpu_job_bytes(const void *arg, size_t len, void **result,
                         size_t *result_len) {
  (void)arg, (void)len;
  uint64_t *h = malloc(sizeof *h);
  if (!h)
    return -ENOMEM;
  *h = hash_mib();
  *result = h;
  *result_len = sizeof *h;
  return 0;
}

static int io_job_bytes(const void *arg, size_t len, void **result,
                        size_t *result_len) {
  (void)arg, (void)len, (void)result, (void)result_len;
  return wait_1ms();
}

static void *io_task(void *arg) {
  (void)arg;
  wait_1ms();
  return NULL;
}

static void *cpu_task(void *arg) {
  (void)arg;
  volatile uint64_t h = hash_mib();
  (void)h;
  return NULL;
}

static void *run_tasks(void *arg) {
  weft_task_fn fn = (weft_task_fn)arg;
  weft_task *t[JOBS];
  for (int i = 0; i < JOBS; i++)
    weft_task_spawn(&t[i], fn, NULL, NULL);
  for (int i = 0; i < JOBS; i++) {
    weft_task_join(t[i], WEFT_FOREVER, NULL);
    weft_task_detach(t[i]);
  }
  return NULL;
}

static weft_thread_pool *threads;
static weft_proc_pool *procs;

/* Starts the pools' JOBS workers each, so that what is timed is running
 * jobs, not starting workers. */
static void warm_up(void) {
  weft_future *fs[2 * JOBS];
  for (int i = 0; i < JOBS; i++) {
    weft_thread_pool_submit(threads, io_job, NULL, WEFT_FOREVER, &fs[i]);
    weft_proc_pool_submit(procs, io_job_bytes, NULL, 0, WEFT_FOREVER,
                          &fs[JOBS + i]);
  }
  weft_future_wait_any(fs, 2 * JOBS, WEFT_ALL_COMPLETED, WEFT_FOREVER);
  for (int i = 0; i < 2 * JOBS; i++)
    weft_future_free(fs[i]);
}

/* Runs JOBS jobs of a kind on a runner; prints ms per job and the CPUs it
 * kept busy (the workers' included: the process pool's are reaped only
 * when it ends, so their CPU time is read from their counts instead). */
static void measure(const char *kind, const char *runner, int which, bool cpu) {
  int64_t t0 = weft_now();
  weft_future *fs[JOBS];
  if (which == 0) {
    for (int i = 0; i < JOBS; i++)
      weft_thread_pool_submit(threads, cpu ? cpu_job : io_job, NULL,
                              WEFT_FOREVER, &fs[i]);
  } else if (which == 1) {
    for (int i = 0; i < JOBS; i++)
      weft_proc_pool_submit(procs, cpu ? cpu_job_bytes : io_job_bytes, NULL, 0,
                            WEFT_FOREVER, &fs[i]);
  } else {
    weft_run(run_tasks, (void *)(cpu ? cpu_task : io_task), NULL);
  }
  if (which < 2) {
    weft_future_wait_any(fs, JOBS, WEFT_ALL_COMPLETED, WEFT_FOREVER);
    for (int i = 0; i < JOBS; i++)
      weft_future_free(fs[i]);
  }
  double ms = (double)(weft_now() - t0) / 1e6 / JOBS;
  printf("  %-4s %-13s %7.2f ms/job\n", kind, runner, ms);
}

void tour_exec(void) {
  tour_chain();
  tour_section("threads or processes? 16 jobs each way (docs/notes.md)");
  data = malloc(MIB);
  if (!data)
    return;
  for (size_t i = 0; i < MIB; i++)
    data[i] = (unsigned char)(i * 2654435761u >> 24);
  weft_thread_pool_new(&threads, &(weft_thread_pool_opts){.workers = JOBS});
  weft_proc_pool_new(&procs, &(weft_proc_pool_opts){.workers = JOBS});
  warm_up();
  const char *runners[] = {"thread pool", "process pool", "tasks"};
  for (int kind = 0; kind < 2; kind++)
    for (int r = 0; r < 3; r++)
      measure(kind == 0 ? "cpu" : "io", runners[r], r, kind == 0);
  printf("  (no GIL here: for CPU work threads use every CPU, as processes\n"
         "   do, without copying; tasks take turns on one. For waits, tasks\n"
         "   cost least.)\n");
  weft_thread_pool_free(threads);
  weft_proc_pool_free(procs);
  free(data);
}
