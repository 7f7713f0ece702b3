/*
 * A redis-server of the tests' and benchmarks' own: started on a free
 * loopback port, with nothing saved to disk, and stopped at the end.
 */
#ifndef WEFT_TESTS_REDIS_SERVER_H
#define WEFT_TESTS_REDIS_SERVER_H

#include <sys/types.h>

struct redis_server {
  pid_t pid;
  int port;
};

/* Starts redis-server (found on PATH) and waits until it accepts
 * connections, up to 10 s. Returns 0, -ENOENT when redis-server is not
 * installed, or another negative errno (-ETIMEDOUT when it never answered;
 * its output is then on stderr). Call from a thread, outside any hub. */
int redis_server_start(struct redis_server *s);

/* Stops it (SIGTERM, then SIGKILL after 5 s) and reaps it. */
void redis_server_stop(struct redis_server *s);

#endif
