/*
 * The tests' server: httpd_serve behind a plain accept loop (no cluster),
 * in a child process of the test, on a loopback port of the kernel's
 * choosing.
 */
#ifndef HTTPD_TEST_SERVER_H
#define HTTPD_TEST_SERVER_H

#include <stddef.h>
#include <sys/types.h>

#include "http.h"

struct test_server {
  pid_t pid;
  int port;
};

/* Starts a server with cfg. It dies with the test (PR_SET_PDEATHSIG).
 * SIGUSR1 makes it drain: hooks->draining says true from then on. */
void server_start(struct test_server *s, const struct httpd_config *cfg);

/* Kills the server and reaps it. */
void server_stop(struct test_server *s);

/* The server's resident memory (VmRSS), in bytes. */
size_t server_rss(const struct test_server *s);

#endif
