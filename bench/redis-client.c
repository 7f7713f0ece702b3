/*
 * See redis-client.h.
 */
#define _GNU_SOURCE
#include "redis-client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* One GET, its reply checked against the value. */
static bool get_checked(struct redis_client *c) {
  redisReply *rep = redisCommand(c->ctx, "GET %s", REDIS_BENCH_KEY);
  if (!rep) {
    snprintf(c->why, sizeof c->why, "GET: %s", c->ctx->errstr);
    return false;
  }
  bool ok = rep->type == REDIS_REPLY_STRING &&
            rep->len == sizeof REDIS_BENCH_VALUE - 1 &&
            memcmp(rep->str, REDIS_BENCH_VALUE, rep->len) == 0;
  if (!ok)
    snprintf(c->why, sizeof c->why, "GET: reply of type %d, \"%.64s\"",
             rep->type, rep->type == REDIS_REPLY_STRING ? rep->str : "");
  freeReplyObject(rep);
  return ok;
}

void redis_client_start(struct redis_client *c, int port) {
  c->failed = false;
  c->ctx = redisConnect("127.0.0.1", port);
  if (!c->ctx || c->ctx->err) {
    snprintf(c->why, sizeof c->why, "connect: %s",
             c->ctx ? c->ctx->errstr : "no memory");
    c->failed = true;
    return;
  }
  c->failed = !get_checked(c);
}

void redis_client_gets(struct redis_client *c, uint64_t count) {
  for (uint64_t i = 0; i < count && !c->failed; i++)
    c->failed = !get_checked(c);
}

void redis_client_stop(struct redis_client *c) {
  if (c->ctx)
    redisFree(c->ctx);
  c->ctx = NULL;
}

int redis_bench_port(const char *impl) {
  const char *p = getenv("REDIS_PORT");
  int port = p ? atoi(p) : 0;
  if (port <= 0 || port > 65535) {
    char name[64];
    snprintf(name, sizeof name, "BenchmarkRedisGet/*/%s", impl);
    printf("# skip %s: no server (REDIS_PORT; bench/run.sh starts one with "
           "bench-redis-server)\n",
           name);
    return 0;
  }
  return port;
}

static void row_name(char *name, size_t len, int n, const char *impl) {
  snprintf(name, len, "BenchmarkRedisGet/clients=%d/%s", n, impl);
}

void redis_bench_row(const struct redis_impl *impl, int port, int n) {
  char name[64], why[256] = "";
  row_name(name, sizeof name, n, impl->name);
  if (!bench_fds(n)) {
    printf("# skip %s: RLIMIT_NOFILE too low for %d connections\n", name, n);
    return;
  }
  long before = bench_status_kb("VmRSS");
  long kstack_before = bench_meminfo_kb("KernelStack");
  bool ok = impl->start(n, port, why, sizeof why);
  long after = bench_status_kb("VmRSS");
  long kstack_after = bench_meminfo_kb("KernelStack");
  /* Size a round to about 0.2 s, then take the median of 5. */
  uint64_t per = 1;
  double t[5];
  while (ok) {
    double t0 = bench_now();
    ok = impl->round(per, why, sizeof why);
    double dt = bench_now() - t0;
    if (dt > 0.2)
      break;
    uint64_t next = dt > 0.001 ? (uint64_t)((double)per * 0.25 / dt) : per * 10;
    per = next > per ? next : per * 2;
  }
  for (int r = 0; r < 5 && ok; r++) {
    double t0 = bench_now();
    ok = impl->round(per, why, sizeof why);
    t[r] = (bench_now() - t0) * 1e9 / (double)(per * (uint64_t)n);
  }
  impl->stop();
  if (!ok) {
    printf("# %s failed: %s\n", name, why);
  } else {
    qsort(t, 5, sizeof *t, bench_cmp);
    printf("%-40s %12llu %10.1f ns/op %10.0f B/client %8.0f "
           "kstack-B/client\n",
           name, (unsigned long long)(per * (uint64_t)n), t[2],
           (double)(after - before) * 1024 / n,
           (double)(kstack_after - kstack_before) * 1024 / n);
  }
  fflush(stdout);
}

/* A row for bench_in_child: what the child runs, and whether it did. */
struct row_job {
  void (*run_row)(int port, int n);
  int port, n;
  bool ran;
};

static void run_job(void *arg) {
  struct row_job *job = arg;
  job->run_row(job->port, job->n);
  job->ran = true;
}

/* SETs the key to the value, from the calling thread (no task: with the
 * hooks linked in, the calls are libc's). */
static bool set_value(int port, char *why, size_t len) {
  redisContext *c = redisConnect("127.0.0.1", port);
  if (!c || c->err) {
    snprintf(why, len, "connect: %s", c ? c->errstr : "no memory");
    if (c)
      redisFree(c);
    return false;
  }
  redisReply *rep =
      redisCommand(c, "SET %s %s", REDIS_BENCH_KEY, REDIS_BENCH_VALUE);
  bool ok =
      rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0;
  if (!ok)
    snprintf(why, len, "SET: %s", rep ? "unexpected reply" : c->errstr);
  if (rep)
    freeReplyObject(rep);
  redisFree(c);
  return ok;
}

void redis_bench_rows(const char *impl, int port,
                      void (*run_row)(int port, int n)) {
  static const int clients[] = {1, 100, 1000};
  char why[200];
  if (!set_value(port, why, sizeof why)) {
    printf("# BenchmarkRedisGet/*/%s failed: %s\n", impl, why);
    return;
  }
  for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++) {
    char name[64];
    row_name(name, sizeof name, clients[i], impl);
    if (!bench_selected(name))
      continue;
    struct row_job job = {.run_row = run_row, .port = port, .n = clients[i]};
    if (!bench_in_child(run_job, &job, sizeof job) || !job.ran)
      printf("# %s failed: its process ended before the row did\n", name);
    fflush(stdout);
  }
}
