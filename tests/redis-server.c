/*
 * See redis-server.h.
 */
#define _GNU_SOURCE
#include "redis-server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* A port the kernel says is free now (another process may take it before
 * redis binds it; then the start fails and is tried again). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int rc = 0;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0)
    rc = -errno;
  close(fd);
  return rc < 0 ? rc : ntohs(a.sin_port);
}

static int answers(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
           write(fd, "PING\r\n", 6) == 6;
  char buf[16] = {0};
  ok = ok && read(fd, buf, sizeof buf - 1) > 0 && strncmp(buf, "+PONG", 5) == 0;
  close(fd);
  return ok;
}

static int start_once(struct redis_server *s) {
  int port = free_port();
  if (port < 0)
    return port;
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  char *argv[] = {
      "redis-server", "--port",     portstr,        "--bind", "127.0.0.1",
      "--save",       "",           "--appendonly", "no",     "--maxclients",
      "10000",        "--loglevel", "warning",      NULL};
  /* Its start-up banner and warnings go nowhere; a failure to start shows
   * as the test's own error. */
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, "redis-server", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return -rc;
  for (int i = 0; i < 1000; i++) {
    if (answers(port)) {
      s->pid = pid;
      s->port = port;
      return 0;
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid)
      return -EADDRINUSE; /* it ended: most likely the port was taken */
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -ETIMEDOUT;
}

int redis_server_start(struct redis_server *s) {
  if (system("command -v redis-server >/dev/null 2>&1") != 0)
    return -ENOENT;
  int rc = -EADDRINUSE;
  for (int i = 0; i < 5 && rc == -EADDRINUSE; i++)
    rc = start_once(s);
  return rc;
}

void redis_server_stop(struct redis_server *s) {
  if (s->pid <= 0)
    return;
  kill(s->pid, SIGTERM);
  for (int i = 0; i < 500; i++) {
    if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
      s->pid = 0;
      return;
    }
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, NULL, 0);
  s->pid = 0;
}
