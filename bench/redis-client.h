/*
 * What the C programs of BenchmarkRedisGet share (redis.c: weft's tasks
 * through the hooks; redis-pthread.c: a thread per client): the key and
 * its value, one client's checked GETs, and the measuring of a row.
 *
 * A row, BenchmarkRedisGet/clients=<n>/<impl>: n clients, each with its own
 * connection to one redis-server, each making GETs of one 64-byte value,
 * one at a time (no pipelining), every reply checked. The server is
 * bench-redis-server's (redis-serve.c), on the port in $REDIS_PORT; each
 * program SETs the value once before its rows. ns/op is the wall time of a
 * round over the GETs all clients made in it (1/throughput); B/client is the
 * resident memory the n clients added (VmRSS once each client has connected and
 * made one GET, less VmRSS before the first one started), over n;
 * kstack-B/client is the kernel stacks they added, which VmRSS leaves out
 * (/proc/meminfo's KernelStack, the machine's, over the same span, over n):
 * 16 KiB a thread on x86_64, and nothing for a task or a goroutine.
 */
#ifndef WEFT_BENCH_REDIS_CLIENT_H
#define WEFT_BENCH_REDIS_CLIENT_H

#include <hiredis.h>
#include <stdbool.h>
#include <stdint.h>

/* The key every row GETs, and its value: 64 bytes. The Go and gevent peers
 * (peers/go/redis.go, peers/gevent_redis.py) and run.sh's redis-benchmark
 * row use the same. */
#define REDIS_BENCH_KEY "weft:bench:get"
#define REDIS_BENCH_VALUE                                                      \
  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* One client: a connection, and the first failure it met. */
struct redis_client {
  redisContext *ctx;
  bool failed;
  char why[160];
};

/* Connects c to the server on 127.0.0.1:port and makes one checked GET,
 * with hiredis's synchronous API as any program would. A failure is left
 * in c (failed, why); c->ctx is then NULL or a context to free. */
void redis_client_start(struct redis_client *c, int port);

/* Makes count checked GETs, stopping at the first failure (c->failed).
 * Once failed, makes none. */
void redis_client_gets(struct redis_client *c, uint64_t count);

/* Closes c's connection. */
void redis_client_stop(struct redis_client *c);

/* How a program runs its n clients. The calls come from one thread (for
 * weft: from the main task of its hub), one row at a time: start, rounds,
 * stop. */
struct redis_impl {
  const char *name; /* the row's last part: "weft", "pthread" */
  /* Starts n clients (redis_client_start each) and returns once all have
   * connected and made their first GET, the clients waiting for rounds.
   * Returns false, the first failure in why, when any failed; stop is
   * called either way. */
  bool (*start)(int n, int port, char *why, size_t len);
  /* Each client makes per GETs (redis_client_gets), all at once; returns
   * when all are done: false, the first failure in why, when any failed. */
  bool (*round)(uint64_t per, char *why, size_t len);
  /* Ends every client started (redis_client_stop) and waits for them. */
  void (*stop)(void);
};

/* The port of $REDIS_PORT, or 0 (with a skip line for impl's rows) when it
 * is not set. */
int redis_bench_port(const char *impl);

/* SETs the value, then runs run_row(port, n) for n = 1, 100 and 1,000, as
 * BENCH_FILTER selects the rows of impl, each in a child process of its own
 * (bench_in_child): a row's memory figure then counts its own clients only, not
 * lowered by memory that an earlier row freed and the process kept. */
void redis_bench_rows(const char *impl, int port,
                      void (*run_row)(int port, int n));

/* Measures impl with n clients and prints the row's line: the round's GETs
 * per client sized so that a round takes about 0.2 s, then the median of 5
 * rounds, as bench.h does. A failure prints "# <name> failed: <why>"
 * instead. */
void redis_bench_row(const struct redis_impl *impl, int port, int n);

#endif
