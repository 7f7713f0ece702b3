/*
 * bench-redis-server: the one redis-server that every BenchmarkRedisGet
 * row of a run uses. It starts redis-server on a free loopback port with
 * nothing saved to disk (tests/redis-server.c, the tests' own helper, built
 * in here by path), prints the port on a line of its own, and stops the
 * server when its stdin reaches its end: bench/run.sh runs it as a
 * coprocess and closes the pipe once the rows are done, or by exiting,
 * whichever comes first. Each program of the rows SETs the value it GETs.
 *
 * It prints nothing but the port; on failure it exits with status 2 when
 * redis-server is not installed, 1 otherwise, its reason on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "redis-server.h"

int main(void) {
  struct redis_server s = {0};
  int rc = redis_server_start(&s);
  if (rc != 0) {
    fprintf(stderr, "bench-redis-server: redis-server: %s\n", strerror(-rc));
    return rc == -ENOENT ? 2 : 1;
  }
  printf("%d\n", s.port);
  fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof buf) > 0)
    ;
  redis_server_stop(&s);
  return 0;
}
