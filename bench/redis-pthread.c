/*
 * BenchmarkRedisGet/clients=<n>/pthread: the client of redis.c, hiredis's
 * synchronous API, on a thread each (default attributes, as a program
 * would start them), in a program not linked with libweft-hook: hiredis's
 * read and write block their thread in the kernel. redis-client.h says
 * what a row measures.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis-client.h"

/* The clients of the row under way. `round` counts the rounds started
 * (each client runs one whenever it sees it change) and `busy` the clients
 * not yet done with the current one (or with connecting), both under mu. */
static struct {
  int n, port;
  struct redis_client *clients;
  pthread_t *threads;
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  uint64_t round, per;
  int busy;
  bool stopping;
} p = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .go = PTHREAD_COND_INITIALIZER,
       .done = PTHREAD_COND_INITIALIZER};

static void finished(void) {
  pthread_mutex_lock(&p.mu);
  if (--p.busy == 0)
    pthread_cond_signal(&p.done);
  pthread_mutex_unlock(&p.mu);
}

static void *client(void *arg) {
  struct redis_client *c = arg;
  redis_client_start(c, p.port);
  pthread_mutex_lock(&p.mu);
  uint64_t seen = p.round;
  pthread_mutex_unlock(&p.mu);
  finished();
  for (;;) {
    pthread_mutex_lock(&p.mu);
    while (p.round == seen && !p.stopping)
      pthread_cond_wait(&p.go, &p.mu);
    bool stopping = p.stopping;
    uint64_t per = p.per;
    seen = p.round;
    pthread_mutex_unlock(&p.mu);
    if (stopping)
      break;
    redis_client_gets(c, per);
    finished();
  }
  redis_client_stop(c);
  return NULL;
}

static bool all_ok(char *why, size_t len) {
  for (int i = 0; i < p.n; i++)
    if (p.clients[i].failed) {
      snprintf(why, len, "client %d: %s", i, p.clients[i].why);
      return false;
    }
  return true;
}

/* Waits until no client is busy. */
static void wait_done(void) {
  pthread_mutex_lock(&p.mu);
  while (p.busy > 0)
    pthread_cond_wait(&p.done, &p.mu);
  pthread_mutex_unlock(&p.mu);
}

static bool start(int n, int port, char *why, size_t len) {
  p.n = 0;
  p.port = port;
  p.stopping = false;
  p.clients = calloc((size_t)n, sizeof *p.clients);
  p.threads = calloc((size_t)n, sizeof *p.threads);
  if (!p.clients || !p.threads) {
    snprintf(why, len, "no memory");
    return false;
  }
  p.busy = n;
  for (; p.n < n; p.n++) {
    int rc = pthread_create(&p.threads[p.n], NULL, client, &p.clients[p.n]);
    if (rc != 0) {
      pthread_mutex_lock(&p.mu);
      p.busy -= n - p.n;
      pthread_mutex_unlock(&p.mu);
      wait_done();
      snprintf(why, len, "pthread_create: %s", strerror(rc));
      return false;
    }
  }
  wait_done();
  return all_ok(why, len);
}

static bool round_of(uint64_t per, char *why, size_t len) {
  pthread_mutex_lock(&p.mu);
  p.per = per;
  p.busy = p.n;
  p.round++;
  pthread_cond_broadcast(&p.go);
  pthread_mutex_unlock(&p.mu);
  wait_done();
  return all_ok(why, len);
}

static void stop(void) {
  pthread_mutex_lock(&p.mu);
  p.stopping = true;
  pthread_cond_broadcast(&p.go);
  pthread_mutex_unlock(&p.mu);
  for (int i = 0; i < p.n; i++)
    pthread_join(p.threads[i], NULL);
  free(p.clients);
  free(p.threads);
  p.n = 0;
}

static void run_row(int port, int n) {
  static const struct redis_impl impl = {
      .name = "pthread", .start = start, .round = round_of, .stop = stop};
  redis_bench_row(&impl, port, n);
}

int main(void) {
  int port = redis_bench_port("pthread");
  if (port != 0)
    redis_bench_rows("pthread", port, run_row);
  return 0;
}
