/*
 * The tests' server. Its hooks are what a cluster's worker gives, made of
 * plain weft calls: idle is a wait for readability (a drain does not wake
 * it: the tests that drain make a request), draining a flag that SIGUSR1
 * raises.
 */
#define _GNU_SOURCE
#include "server.h"

#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

static struct httpd_config config;
static bool draining;

static int idle(void *ctx, int fd, int64_t timeout) {
  (void)ctx;
  if (draining)
    return -ESHUTDOWN;
  int rc = weft_io_wait(fd, WEFT_IO_READ, timeout);
  return rc > 0 ? 0 : rc;
}

static bool is_draining(void *ctx) {
  (void)ctx;
  return draining;
}

static const struct httpd_hooks hooks = {idle, is_draining, NULL};

static void *conn_task(void *arg) {
  int fd = (int)VI(arg);
  httpd_serve(fd, &config, &hooks);
  close(fd);
  return NULL;
}

static void *drain_task(void *arg) {
  (void)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  if (weft_signal_wait(&set, WEFT_FOREVER) == SIGUSR1)
    draining = true;
  return NULL;
}

static void *server_main(void *arg) {
  int lfd = (int)VI(arg);
  weft_task_spawn(NULL, drain_task, NULL, &(weft_task_opts){.daemon = true});
  for (;;) {
    int fd = weft_io_accept(lfd, NULL, NULL, WEFT_FOREVER);
    if (fd < 0) {
      if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) {
        weft_sleep(WEFT_MS(10));
        continue;
      }
      fprintf(stderr, "server: accept: %s\n", weft_strerror(fd));
      exit(3);
    }
    weft_task_opts opts = {.name = "conn", .stack_size = HTTPD_STACK_BYTES};
    if (weft_task_spawn(NULL, conn_task, IV(fd), &opts) != 0)
      close(fd);
  }
  return NULL;
}

void server_start(struct test_server *s, const struct httpd_config *cfg) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(lfd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
  CHECK_EQ(listen(lfd, 4096), 0);
  socklen_t len = sizeof sa;
  CHECK_EQ(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
  s->port = ntohs(sa.sin_port);
  fflush(NULL);
  pid_t parent = getpid();
  s->pid = fork();
  CHECK(s->pid >= 0);
  if (s->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(0);
    signal(SIGPIPE, SIG_IGN);
    config = *cfg;
    httpd_thread_init();
    int rc = weft_run(server_main, IV(lfd), NULL);
    fprintf(stderr, "server: weft_run: %s\n", weft_strerror(rc));
    _exit(2);
  }
  close(lfd);
}

void server_stop(struct test_server *s) {
  if (s->pid <= 0)
    return;
  kill(s->pid, SIGKILL);
  int status;
  while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
    ;
  s->pid = 0;
}

size_t server_rss(const struct test_server *s) { return client_rss_of(s->pid); }
