/*
 * The tour, the cluster: "multiple processes plus coroutines". A
 * supervisor starts two worker processes, each a hub that runs a task per
 * connection; a burst of requests goes to them over loopback, one worker is
 * SIGKILLed in the middle of it, the supervisor replaces it, and every
 * request is answered.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>

#include "tour.h"

/* Each connection: one line in, "<worker> <pid>" out. */
static void answer(weft_worker *w, int fd, void *arg) {
  (void)arg;
  char buf[64];
  if (weft_worker_idle(w, fd, WEFT_SEC(5)) < 0 ||
      weft_io_recv(fd, buf, sizeof buf, 0, WEFT_SEC(5)) <= 0)
    return;
  int n =
      snprintf(buf, sizeof buf, "%d %d\n", weft_worker_index(w), (int)getpid());
  weft_io_sendall(fd, buf, (size_t)n, 0, WEFT_SEC(5));
}

/* The supervisor runs in a process of its own, so that the tour goes on
 * as its client. */
static int supervise(void *arg) {
  weft_cluster *c = arg;
  int rc = weft_cluster_run(c);
  weft_cluster_free(c);
  return rc == 0 ? 0 : 1;
}

/* One request on a new connection: the answering worker's pid, or 0 if the
 * connection ended without an answer (its worker died meanwhile). */
static int ask(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int pid = 0, index;
  char buf[64];
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      send(fd, "hi\n", 3, MSG_NOSIGNAL) == 3) {
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_WAITALL);
    if (n > 0) {
      buf[n] = 0;
      if (sscanf(buf, "%d %d", &index, &pid) != 2)
        pid = 0;
    }
  }
  if (fd >= 0)
    close(fd);
  return pid;
}

void tour_cluster(void) {
  tour_section("the cluster: two worker processes, one killed mid-burst");
  weft_cluster_opts o;
  weft_cluster_opts_init(&o);
  printf("  this machine may use %d CPUs (affinity and cgroup quota)\n",
         weft_cpu_count());
  o.workers = 2;
  o.handler = answer;
  o.log_fd = 1; /* the supervisor's lines, among the tour's */
  weft_cluster *c;
  if (weft_cluster_create(&c, &o) < 0 ||
      weft_cluster_listen(c, "127.0.0.1:0") < 0) {
    printf("  could not make the cluster\n");
    return;
  }
  int port = weft_cluster_listener_port(c, 0);
  weft_proc *sup;
  if (weft_proc_start(&sup, supervise, c, NULL) < 0) {
    printf("  could not start the supervisor\n");
    weft_cluster_free(c);
    return;
  }
  weft_cluster_free(c); /* the supervisor has its own copy */
  enum { BURST = 400, KILL_AT = 150 };
  int pids[4] = {0}, counts[4] = {0}, retried = 0, victim = 0;
  for (int i = 0; i < BURST; i++) {
    int pid;
    /* A request whose worker died before it answered is sent again, as an
     * HTTP client retries an idempotent request on a reset connection. */
    while ((pid = ask(port)) == 0)
      retried++;
    int k = 0;
    while (k < 3 && pids[k] && pids[k] != pid)
      k++;
    pids[k] = pid;
    counts[k]++;
    usleep(1000); /* a burst of 0.4 s: the replacement serves its end */
    if (i == KILL_AT) {
      victim = pid;
      fflush(stdout);
      kill(victim, SIGKILL);
      printf("  request %d: SIGKILL to worker pid %d\n", i, victim);
      fflush(stdout);
    }
  }
  printf("  %d requests answered (%d sent again after the kill) by:\n", BURST,
         retried);
  for (int k = 0; k < 4 && pids[k]; k++)
    printf("    pid %d: %d%s\n", pids[k], counts[k],
           pids[k] == victim ? " (killed)" : "");
  fflush(stdout);
  weft_proc_terminate(sup);
  int code = -1;
  weft_proc_join(sup, WEFT_FOREVER, &code);
  weft_proc_free(sup);
  printf("  supervisor exited with %d after SIGTERM: no worker left behind\n",
         code);
}
