/*
 * BenchmarkRedisGet/clients=<n>/weft: n tasks on one hub, one thread, each
 * a client of its own with hiredis's synchronous API, unmodified
 * (redisConnect, redisCommand(c, "GET %s", key)). The program is linked
 * with libweft-hook, so hiredis's connect, read and write park the task
 * that makes them and the hub runs the others meanwhile: n requests are in
 * flight at once on one thread. redis-pthread.c is the same client on a
 * thread each, without the hooks; redis-client.h says what a row measures.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <weft.h>
#include <weft/hook.h>

#include "redis-client.h"

/* The clients of the row under way, and what they wait on between rounds:
 * `go` gives each client one unit per round (a client never takes two, as
 * it counts itself done before waiting again and the next round starts
 * only once all are done), and `done` counts the clients still busy. */
static struct {
  int n, port;
  struct redis_client *clients;
  weft_task **tasks;
  weft_sem go;
  weft_waitgroup done;
  uint64_t per;
  bool stopping;
} w;

static void *client(void *arg) {
  struct redis_client *c = arg;
  redis_client_start(c, w.port);
  weft_waitgroup_done(&w.done);
  for (;;) {
    weft_sem_acquire(&w.go, WEFT_FOREVER);
    if (w.stopping)
      break;
    redis_client_gets(c, w.per);
    weft_waitgroup_done(&w.done);
  }
  redis_client_stop(c);
  return NULL;
}

/* The first failure among the clients, into why. */
static bool all_ok(char *why, size_t len) {
  for (int i = 0; i < w.n; i++)
    if (w.clients[i].failed) {
      snprintf(why, len, "client %d: %s", i, w.clients[i].why);
      return false;
    }
  return true;
}

static bool start(int n, int port, char *why, size_t len) {
  w.n = 0;
  w.port = port;
  w.stopping = false;
  w.clients = calloc((size_t)n, sizeof *w.clients);
  w.tasks = calloc((size_t)n, sizeof *w.tasks);
  if (!w.clients || !w.tasks) {
    snprintf(why, len, "no memory");
    return false;
  }
  weft_sem_init(&w.go, 0, false);
  weft_waitgroup_add(&w.done, n);
  for (; w.n < n; w.n++) {
    int rc = weft_task_spawn(&w.tasks[w.n], client, &w.clients[w.n], NULL);
    if (rc != 0) {
      weft_waitgroup_add(&w.done, w.n - n);
      weft_waitgroup_wait(&w.done, WEFT_FOREVER);
      snprintf(why, len, "weft_task_spawn: %s", weft_strerror(rc));
      return false;
    }
  }
  weft_waitgroup_wait(&w.done, WEFT_FOREVER);
  return all_ok(why, len);
}

static bool round_of(uint64_t per, char *why, size_t len) {
  w.per = per;
  weft_waitgroup_add(&w.done, w.n);
  weft_sem_release(&w.go, (unsigned)w.n);
  weft_waitgroup_wait(&w.done, WEFT_FOREVER);
  return all_ok(why, len);
}

static void stop(void) {
  w.stopping = true;
  if (w.n > 0)
    weft_sem_release(&w.go, (unsigned)w.n);
  for (int i = 0; i < w.n; i++) {
    weft_task_join(w.tasks[i], WEFT_FOREVER, NULL);
    weft_task_detach(w.tasks[i]);
  }
  free(w.clients);
  free(w.tasks);
  w.n = 0;
}

/* A row's process: the row runs in the main task of a hub. */
static struct { int port, n; } row;

static void *row_main(void *arg) {
  (void)arg;
  static const struct redis_impl impl = {
      .name = "weft", .start = start, .round = round_of, .stop = stop};
  redis_bench_row(&impl, row.port, row.n);
  return NULL;
}

static void run_row(int port, int n) {
  row.port = port;
  row.n = n;
  int rc = weft_run(row_main, NULL, NULL);
  if (rc != 0)
    printf("# BenchmarkRedisGet/clients=%d/weft failed: weft_run: %s\n", n,
           weft_strerror(rc));
  fflush(stdout);
}

int main(void) {
  int port = redis_bench_port("weft");
  if (port == 0)
    return 0;
  if (!weft_hook_installed()) {
    printf("# skip BenchmarkRedisGet/*/weft: the hooks are not in front of "
           "libc's calls\n");
    return 0;
  }
  redis_bench_rows("weft", port, run_row);
  return 0;
}
