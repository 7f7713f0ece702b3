/*
 * BenchmarkEcho/conns=<n>/weft: TCP echo over loopback, 64-byte messages,
 * ping-pong on n connections. The server is a hub in a child process (a
 * task per connection: recv, send back, until EOF), the clients a hub in
 * this one (a task per connection: send 64 bytes, receive them back,
 * again), each on one thread, as Go, gevent and state-threads do in
 * peers/. All connections are made before the clock starts; ns/op is the
 * time per round trip, over all connections together. run.sh pins every
 * implementation's two processes to one CPU: see there why.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft.h>

#include "bench.h"

enum { MSG = 64 };

struct server {
  int lfd, conns;
};

static void *serve_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[MSG];
  ssize_t n;
  while ((n = weft_io_recv(fd, buf, sizeof buf, 0, WEFT_FOREVER)) > 0)
    if (weft_io_send(fd, buf, (size_t)n, 0, WEFT_FOREVER) != n)
      break;
  weft_io_close(fd);
  return NULL;
}

static void *server_main(void *arg) {
  struct server *s = arg;
  for (int i = 0; i < s->conns; i++) {
    int fd = weft_io_accept(s->lfd, NULL, NULL, WEFT_FOREVER);
    if (fd < 0)
      return (void *)1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if (weft_task_spawn(NULL, serve_conn, (void *)(intptr_t)fd,
                        &(weft_task_opts){.stack_size = 16384}) != 0)
      return (void *)1;
  }
  return NULL;
}

struct client {
  uint16_t port;
  int conns;
  int *fds;
  weft_task **tasks;
  uint64_t per_conn; /* round trips each connection makes in a round */
  bool failed;
  double ns_per_op;
  double done; /* when the last task of a round finished */
};

static struct client *cl;

static void *ping(void *arg) {
  int fd = (int)(intptr_t)arg;
  char out[MSG] = {0}, in[MSG];
  for (uint64_t i = 0; i < cl->per_conn; i++) {
    if (weft_io_send(fd, out, MSG, 0, WEFT_FOREVER) != MSG) {
      cl->failed = true;
      return NULL;
    }
    size_t got = 0;
    while (got < MSG) {
      ssize_t n = weft_io_recv(fd, in + got, MSG - got, 0, WEFT_FOREVER);
      if (n <= 0) {
        cl->failed = true;
        return NULL;
      }
      got += (size_t)n;
    }
  }
  cl->done = bench_now();
  return NULL;
}

/* One round: every connection makes per_conn round trips, each from a task
 * of its own. Returns the seconds from the first round trip to the end of
 * the last: the tasks are spawned before the clock starts and released
 * after it stops, as the peers' wait at a gate first. */
static double one_round(uint64_t per_conn) {
  cl->per_conn = per_conn;
  for (int i = 0; i < cl->conns; i++)
    if (weft_task_spawn(&cl->tasks[i], ping, (void *)(intptr_t)cl->fds[i],
                        &(weft_task_opts){.stack_size = 16384}) != 0)
      cl->failed = true;
  /* The tasks first run when this one blocks, in its first join. */
  double t0 = bench_now();
  for (int i = 0; i < cl->conns; i++)
    weft_task_join(cl->tasks[i], WEFT_FOREVER, NULL);
  return cl->done - t0;
}

static void *client_main(void *arg) {
  (void)arg;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons(cl->port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int made = 0;
  for (; made < cl->conns; made++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      break;
    cl->fds[made] = fd;
    if (weft_io_connect(fd, (struct sockaddr *)&sa, sizeof sa, WEFT_SEC(30)) !=
        0)
      break;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
  }
  if (made == cl->conns) {
    /* Size a round to about 0.2 s, then take the median of 5. */
    uint64_t per = 1;
    for (;;) {
      double dt = one_round(per);
      if (cl->failed || dt > 0.2)
        break;
      uint64_t next =
          dt > 0.001 ? (uint64_t)((double)per * 0.25 / dt) : per * 10;
      per = next > per ? next : per * 2;
    }
    double t[5];
    for (int r = 0; r < 5 && !cl->failed; r++)
      t[r] = one_round(per) * 1e9 / (double)(per * (uint64_t)cl->conns);
    qsort(t, 5, sizeof *t, bench_cmp);
    cl->ns_per_op = t[2];
    cl->per_conn = per;
  } else {
    cl->failed = true;
  }
  /* Closed with a reset (linger 0), so that no TIME_WAIT is left to hold
   * ephemeral ports from the next runs. */
  for (int i = 0; i <= made && i < cl->conns; i++) {
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    setsockopt(cl->fds[i], SOL_SOCKET, SO_LINGER, &now, sizeof now);
    weft_io_close(cl->fds[i]);
  }
  return NULL;
}

static void echo(int conns) {
  char name[64];
  snprintf(name, sizeof name, "BenchmarkEcho/conns=%d/weft", conns);
  if (!bench_selected(name))
    return;
  if (!bench_fds(conns)) {
    printf("# skip %s: RLIMIT_NOFILE too low for %d connections\n", name,
           conns);
    return;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
    printf("# skip %s: no loopback listener\n", name);
    return;
  }
  fflush(stdout);
  pid_t server = fork();
  if (server == 0) {
    struct server srv = {.lfd = lfd, .conns = conns};
    void *failed = (void *)1;
    int rc = weft_run(server_main, &srv, &failed);
    _exit(rc == 0 && !failed ? 0 : 1);
  }
  close(lfd);
  if (server < 0) {
    printf("# skip %s: no server process\n", name);
    return;
  }
  struct client c = {.port = ntohs(sa.sin_port),
                     .conns = conns,
                     .fds = calloc((size_t)conns, sizeof(int)),
                     .tasks = calloc((size_t)conns, sizeof(weft_task *))};
  cl = &c;
  weft_run(client_main, NULL, NULL);
  int status = 0;
  waitpid(server, &status, 0);
  if (c.failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    printf("# skip %s: the exchange failed\n", name);
  else
    printf("%-40s %12llu %10.1f ns/op\n", name,
           (unsigned long long)(c.per_conn * (uint64_t)conns), c.ns_per_op);
  fflush(stdout);
  free(c.fds);
  free(c.tasks);
}

int main(void) {
  echo(1);
  echo(100);
  echo(10000);
  return 0;
}
