/*
 * state-threads' side of the echo benchmark, in Go's benchmark format:
 *
 *   BenchmarkEcho/conns=<n>/st  a TCP echo over 127.0.0.1: n connections,
 *                               each writing 64 bytes and reading them
 *                               back, over and over; ns per round trip
 *
 * The server (a thread per accepted connection, reading up to 64 bytes and
 * writing back what it read until EOF) is this program again, run with
 * --server in a second process, so that the server and the clients each
 * have one OS thread. It writes its port into a pipe, and dies with its
 * parent (PR_SET_PDEATHSIG).
 *
 * The connections are all made before the timing starts. A round is R
 * round trips, R/n on each connection; R is sized so that a round takes
 * about 0.2 s (at least 2 round trips on each connection), and the median
 * of 5 rounds is printed.
 *
 * state-threads runs on poll(2) here (see common.h): it has no epoll in
 * Debian's build, and its select(2) cannot hold 10,000 descriptors.
 *
 * Usage: bench-st-echo [regex]  (else $BENCH_FILTER)
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#include "../../bench.h"

enum { MSG = 64, BATCH = 500 };

static void nodelay(int fd) {
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

/* --- the server ------------------------------------------------------ */

static void *echo_conn(void *arg) {
  st_netfd_t c = arg;
  char buf[MSG];
  for (;;) {
    ssize_t m = st_read(c, buf, sizeof buf, ST_UTIME_NO_TIMEOUT);
    if (m <= 0 || st_write(c, buf, (size_t)m, ST_UTIME_NO_TIMEOUT) != m)
      break;
  }
  st_netfd_close(c);
  return NULL;
}

static int serve(int port_fd) {
  st_peer_init();
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int on = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &len) != 0)
    return 1;
  dprintf(port_fd, "%d\n", ntohs(sa.sin_port));
  close(port_fd);
  st_netfd_t l = st_netfd_open_socket(lfd);
  if (!l)
    return 1;
  for (;;) {
    st_netfd_t c = st_accept(l, NULL, NULL, ST_UTIME_NO_TIMEOUT);
    if (!c) {
      st_usleep(10000); /* EMFILE and the like: the client will notice */
      continue;
    }
    nodelay(st_netfd_fileno(c));
    if (!st_thread_create(echo_conn, c, 0, 0))
      st_netfd_close(c);
  }
}

/* Starts the server; returns its pid and its port in *port, or -1. */
static pid_t start_server(int *port) {
  int p[2];
  if (pipe(p) != 0)
    return -1;
  pid_t parent = getpid();
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    close(p[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(1);
    char fd[16];
    snprintf(fd, sizeof fd, "%d", p[1]);
    execl("/proc/self/exe", "bench-st-echo", "--server", fd, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  char buf[32] = {0};
  ssize_t got = 0, m;
  while (got < (ssize_t)sizeof buf - 1 &&
         (m = read(p[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0)
    got += m;
  close(p[0]);
  *port = atoi(buf);
  if (*port <= 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
  }
  return pid;
}

/* --- the clients ----------------------------------------------------- */

static bool round_trip(st_netfd_t c) {
  char out[MSG], in[MSG];
  memset(out, 'x', sizeof out);
  return st_write(c, out, sizeof out, ST_UTIME_NO_TIMEOUT) == MSG &&
         st_read_fully(c, in, sizeof in, ST_UTIME_NO_TIMEOUT) == MSG;
}

/* Closes with a reset, so that 10,000 connections leave no TIME_WAIT. */
static void close_all(st_netfd_t *conns, int n) {
  struct linger reset = {.l_onoff = 1, .l_linger = 0};
  for (int i = 0; i < n; i++) {
    setsockopt(st_netfd_fileno(conns[i]), SOL_SOCKET, SO_LINGER, &reset,
               sizeof reset);
    st_netfd_close(conns[i]);
  }
}

static void *first_trip(void *arg) { return round_trip(arg) ? arg : NULL; }

/*
 * Makes n connections, in batches of BATCH that each do one round trip on
 * every connection (a thread each) before the next batch, so the server
 * has accepted every connection of a batch before more arrive and the
 * listen backlog never overflows. *made is how many it opened.
 */
static bool dial(int port, st_netfd_t *conns, st_thread_t *threads, int n,
                 int *made) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  *made = 0;
  while (*made < n) {
    int first = *made;
    for (; *made < n && *made - first < BATCH; ++*made) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0)
        return false;
      nodelay(fd);
      st_netfd_t c = st_netfd_open_socket(fd);
      if (!c) {
        close(fd);
        return false;
      }
      conns[*made] = c;
      if (st_connect(c, (struct sockaddr *)&sa, sizeof sa,
                     ST_UTIME_NO_TIMEOUT) != 0) {
        ++*made;
        return false;
      }
    }
    bool ok = true;
    for (int i = first; i < *made; i++)
      threads[i] = st_thread_create(first_trip, conns[i], 1, 0);
    for (int i = first; i < *made; i++) {
      void *r = NULL;
      if (!threads[i] || st_thread_join(threads[i], &r) != 0 || !r)
        ok = false;
    }
    if (!ok)
      return false;
  }
  return true;
}

static st_cond_t gate;
static bool gate_open, failed;
static uint64_t per_conn;

static void *client(void *arg) {
  st_netfd_t c = arg;
  while (!gate_open)
    st_cond_wait(gate);
  for (uint64_t i = 0; i < per_conn; i++)
    if (!round_trip(c)) {
      failed = true;
      break;
    }
  return NULL;
}

/*
 * k round trips on every connection, a thread each; returns the seconds it
 * took, or a negative number. The threads wait at a gate, so that starting
 * them is not timed.
 */
static double one_round(st_netfd_t *conns, st_thread_t *threads, int n,
                        uint64_t k) {
  gate_open = false;
  per_conn = k;
  for (int i = 0; i < n; i++)
    if (!(threads[i] = st_thread_create(client, conns[i], 1, 0))) {
      fprintf(stderr, "bench-st-echo: st_thread_create: %s\n", strerror(errno));
      exit(1);
    }
  st_usleep(0); /* let them reach the gate */
  double t0 = bench_now();
  gate_open = true;
  st_cond_broadcast(gate);
  for (int i = 0; i < n; i++)
    st_thread_join(threads[i], NULL);
  double dt = bench_now() - t0;
  return failed ? -1 : dt;
}

static void bench_echo(const char *name, int port, int n) {
  rlim_t lim = st_peer_raise_fd_limit();
  if (lim < (rlim_t)n + 64) {
    printf("# skip %s: RLIMIT_NOFILE is %llu, %d connections need more\n", name,
           (unsigned long long)lim, n);
    return;
  }
  st_netfd_t *conns = calloc((size_t)n, sizeof *conns);
  st_thread_t *threads = calloc((size_t)n, sizeof *threads);
  int made;
  if (!dial(port, conns, threads, n, &made)) {
    printf("# skip %s: connecting: %s\n", name, strerror(errno));
    close_all(conns, made);
    free(conns);
    free(threads);
    return;
  }
  uint64_t k = 2;
  for (;;) {
    double dt = one_round(conns, threads, n, k);
    if (dt < 0)
      goto broken;
    if (dt > 0.2)
      break;
    uint64_t next = dt > 0.001 ? (uint64_t)((double)k * 0.25 / dt) : k * 100;
    k = next > k ? next : k * 2;
  }
  double t[5];
  for (int r = 0; r < 5; r++) {
    double dt = one_round(conns, threads, n, k);
    if (dt < 0)
      goto broken;
    t[r] = dt * 1e9 / (double)(k * (uint64_t)n);
  }
  qsort(t, 5, sizeof *t, bench_cmp);
  printf("%-40s %12llu %10.1f ns/op\n", name,
         (unsigned long long)(k * (uint64_t)n), t[2]);
  fflush(stdout);
  close_all(conns, n);
  free(conns);
  free(threads);
  return;
broken:
  fprintf(stderr, "bench-st-echo: a round trip failed\n");
  exit(1);
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "--server") == 0)
    return serve(atoi(argv[2]));
  if (argc > 1)
    setenv("BENCH_FILTER", argv[1], 1);

  static const int sizes[] = {1, 100, 10000};
  char names[3][64];
  bool any = false, selected[3];
  for (int i = 0; i < 3; i++) {
    snprintf(names[i], sizeof names[i], "BenchmarkEcho/conns=%d/st", sizes[i]);
    any |= selected[i] = bench_selected(names[i]);
  }
  if (!any)
    return 0;

  int port;
  pid_t server = start_server(&port);
  if (server < 0) {
    printf("# skip BenchmarkEcho/*/st: the echo server did not start\n");
    return 0;
  }
  alarm(600); /* everything is bounded: SIGALRM ends this process */
  if (!st_peer_init()) {
    printf("# skip BenchmarkEcho/*/st: st_init failed\n");
  } else {
    gate = st_cond_new();
    for (int i = 0; i < 3; i++)
      if (selected[i])
        bench_echo(names[i], port, sizes[i]);
  }
  kill(server, SIGKILL);
  waitpid(server, NULL, 0);
  return 0;
}
