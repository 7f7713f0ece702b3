/*
 * The httpd binary in cluster mode, as an operator sees it: a graceful
 * stop with 200 connections in flight (every response whole), a reload
 * under load (no request fails, the old workers exit), a worker killed
 * under load (the service answers on, the worker is replaced), the
 * supervisor killed (its workers follow within a second), and what an idle
 * keep-alive connection costs its worker (5 KiB at most).
 *
 * The binary runs with its stderr in a log file, which the tests read for
 * the port and the workers' pids; the load comes from threads of plain
 * blocking clients.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "root.h"

#define BIG_BYTES (1 << 20)

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static int scaled_ms(int ms) {
  return (int)(ms * harness_timeout_multiplier());
}

/* --- the binary ------------------------------------------------------------
 */

struct httpd {
  pid_t pid;
  int port;
  char log[64];
};

static struct httpd server;

static void kill_at_exit(void) {
  if (server.pid > 0)
    kill(server.pid, SIGKILL);
  if (server.log[0])
    unlink(server.log);
}

/* The log so far, NUL-terminated (static: valid until the next call). */
static const char *log_text(void) {
  static char text[1 << 16];
  int fd = open(server.log, O_RDONLY | O_CLOEXEC);
  CHECK(fd >= 0);
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  text[n > 0 ? n : 0] = '\0';
  return text;
}

static int log_count(const char *what) {
  int n = 0;
  for (const char *p = log_text(); (p = strstr(p, what)); p++)
    n++;
  return n;
}

/* Waits up to ms for the log to hold what count times at least. */
static bool log_wait(const char *what, int count, int ms) {
  int64_t deadline = harness_now_ns() + (int64_t)scaled_ms(ms) * 1000000;
  while (log_count(what) < count) {
    if (harness_now_ns() > deadline)
      return false;
    sleep_ms(10);
  }
  return true;
}

/* The pid the log gives the worker of slot index, generation gen. */
static pid_t worker_pid(int index, unsigned gen) {
  const char *p = log_text();
  pid_t pid = 0;
  while ((p = strstr(p, "worker "))) {
    int i, n;
    unsigned g;
    if (sscanf(p, "worker %d (pid %d, generation %u) started", &i, &n, &g) ==
            3 &&
        i == index && g == gen)
      pid = n;
    p++;
  }
  return pid;
}

/* Starts httpd with that many workers on a port of the kernel's choosing,
 * with the tests' root and the extra arguments, and waits for them. */
static void start_workers(int workers, const char *const *extra) {
  const char *root = root_make();
  static char big[BIG_BYTES];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)('a' + i % 26);
  root_file("big.bin", big, sizeof big);
  strcpy(server.log, "/tmp/httpd-log-XXXXXX");
  int logfd = mkstemp(server.log);
  CHECK(logfd >= 0);
  atexit(kill_at_exit);
  char nworkers[16];
  snprintf(nworkers, sizeof nworkers, "%d", workers);
  const char *argv[32] = {HTTPD_BIN, "--listen",  "127.0.0.1:0", "--root",
                          root,      "--workers", nworkers};
  int argc = 7;
  for (; extra && *extra; extra++)
    argv[argc++] = *extra;
  argv[argc] = NULL;
  fflush(NULL);
  pid_t parent = getpid();
  server.pid = fork();
  CHECK(server.pid >= 0);
  if (server.pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(0);
    dup2(logfd, 2);
    execv(HTTPD_BIN, (char **)argv);
    _exit(127);
  }
  close(logfd);
  CHECK(log_wait("(port ", 1, 5000));
  const char *port = strstr(log_text(), "(port ");
  CHECK(port && sscanf(port, "(port %d)", &server.port) == 1);
  CHECK(log_wait(") serving", workers, 5000));
}

static void start(const char *const *extra) { start_workers(2, extra); }

/* Waits up to ms for the supervisor to exit; returns its wait status, or
 * -1 when it did not. */
static int wait_exit(int ms) {
  int64_t deadline = harness_now_ns() + (int64_t)scaled_ms(ms) * 1000000;
  for (;;) {
    int status;
    pid_t r = waitpid(server.pid, &status, WNOHANG);
    if (r == server.pid) {
      server.pid = 0;
      return status;
    }
    if (harness_now_ns() > deadline)
      return -1;
    sleep_ms(5);
  }
}

/* --- load: threads of keep-alive clients ---------------------------------- */

#define LOADERS 4

static atomic_bool load_stop;
static atomic_long load_ok, load_failed, load_refused;
static char load_error[256];

static bool send_all(int fd, const char *s, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    s += n;
    len -= (size_t)n;
  }
  return true;
}

static void *loader(void *arg) {
  (void)arg;
  static const char req[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
  struct client *c = NULL;
  int uses = 0;
  while (!atomic_load(&load_stop)) {
    if (!c)
      uses = 0;
    if (!c && !(c = client_open(server.port))) {
      atomic_fetch_add(&load_refused, 1);
      sleep_ms(1);
      continue;
    }
    struct response r;
    errno = 0;
    bool ok = send_all(c->fd, req, sizeof req - 1) &&
              client_response(c, &r, false) == 0 && r.status == 200 &&
              r.body_len == 12 && memcmp(r.body, "Hello, world", 12) == 0;
    uses++;
    if (!ok) {
      if (atomic_fetch_add(&load_failed, 1) == 0)
        snprintf(load_error, sizeof load_error,
                 "request %d on its connection: %s, %zu bytes of answer", uses,
                 errno ? strerror(errno) : "closed", c->len);
      client_close(c);
      c = NULL;
      continue;
    }
    atomic_fetch_add(&load_ok, 1);
    const char *conn = response_header(&r, "Connection");
    response_free(&r);
    if (conn && strcmp(conn, "close") == 0) {
      client_close(c);
      c = NULL;
    }
  }
  client_close(c);
  return NULL;
}

static pthread_t loaders[LOADERS];

static void load_start(void) {
  atomic_store(&load_stop, false);
  for (int i = 0; i < LOADERS; i++)
    CHECK_EQ(pthread_create(&loaders[i], NULL, loader, NULL), 0);
}

static void load_end(void) {
  atomic_store(&load_stop, true);
  for (int i = 0; i < LOADERS; i++)
    pthread_join(loaders[i], NULL);
  printf("  load: %ld ok, %ld failed, %ld refused connects\n",
         atomic_load(&load_ok), atomic_load(&load_failed),
         atomic_load(&load_refused));
}

/* Waits until the load has made n more requests, for ms at most. */
static bool load_progress(long n, int ms) {
  long target = atomic_load(&load_ok) + n;
  int64_t deadline = harness_now_ns() + (int64_t)scaled_ms(ms) * 1000000;
  while (atomic_load(&load_ok) < target) {
    if (harness_now_ns() > deadline)
      return false;
    sleep_ms(5);
  }
  return true;
}

/* Whether the server refuses connections within ms milliseconds: once
 * every worker drains, none holds the listener any more. A connection
 * accepted meanwhile is closed at once. */
static bool all_workers_draining(int ms) {
  for (int waited = 0; waited < ms; waited += 10) {
    struct client *c = client_open(server.port);
    if (!c)
      return true;
    client_close(c);
    sleep_ms(10);
  }
  return false;
}

/* --- the cases ------------------------------------------------------------ */

TEST_TIMEOUT(graceful_stop_finishes_200_connections_in_flight, 60) {
  enum { HALF = 100 };
  struct rlimit rl = {4096, 4096};
  setrlimit(RLIMIT_NOFILE, &rl);
  start(NULL);
  static struct client *big[HALF], *part[HALF];
  /* Half fetch 1 MiB through a small window: their responses are being
   * sent when the stop comes. */
  static const char get_big[] = "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n";
  for (int i = 0; i < HALF; i++) {
    big[i] = client_open_rcvbuf(server.port, 16 << 10);
    CHECK(big[i] != NULL);
    client_send(big[i], get_big, 0);
  }
  /* Half have had a response and sent part of their next request. */
  for (int i = 0; i < HALF; i++) {
    part[i] = client_open(server.port);
    CHECK(part[i] != NULL);
    struct response r;
    CHECK_EQ(client_get(part[i], "/hello", &r), 0);
    CHECK_EQ(r.status, 200);
    response_free(&r);
    client_send(part[i], "GET /hello HTTP/1.1\r\nHo", 0);
  }
  /* Every big response has begun to arrive. */
  for (int i = 0; i < HALF; i++) {
    while (big[i]->len < 16) {
      ssize_t n = recv(big[i]->fd, big[i]->buf + big[i]->len,
                       sizeof big[i]->buf - big[i]->len, 0);
      CHECK(n > 0);
      big[i]->len += (size_t)n;
    }
  }
  sleep_ms(100); /* the partial heads are read */
  CHECK_EQ(kill(server.pid, SIGTERM), 0);
  CHECK(log_wait("stopping gracefully", 1, 5000));
  /* The supervisor logs the stop before its workers hear of it; each
   * closes its copy of the listener once it drains, and not before, so a
   * refused connection says that all of them drain. A request completed
   * earlier would be answered as any other, kept alive. */
  CHECK(all_workers_draining(5000));
  for (int i = 0; i < HALF; i++)
    client_send(part[i], "st: t\r\n\r\n", 0);
  for (int i = 0; i < HALF; i++) {
    struct response r;
    CHECK_EQ(client_response(big[i], &r, false), 0);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, BIG_BYTES);
    for (size_t j = 0; j < r.body_len; j += 4099)
      CHECK_EQ(r.body[j], 'a' + j % 26);
    response_free(&r);
    CHECK_EQ(client_response(part[i], &r, false), 0);
    CHECK_EQ(r.status, 200);
    CHECK(strcmp(r.body, "Hello, world") == 0);
    const char *connection = response_header(&r, "Connection");
    CHECK(connection != NULL && strcmp(connection, "close") == 0);
    response_free(&r);
  }
  /* Every connection ends, and the cluster with them. */
  for (int i = 0; i < HALF; i++) {
    CHECK(client_closed(big[i], 5000));
    CHECK(client_closed(part[i], 5000));
    client_close(big[i]);
    client_close(part[i]);
  }
  int status = wait_exit(10000);
  CHECK(status != -1);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_EQ(log_count("exited with code 0"), 2);
}

TEST_TIMEOUT(reloads_under_load_fail_no_request, 60) {
  start(NULL);
  load_start();
  CHECK(load_progress(2000, 10000));
  /* Three reloads, each under load: the new generation serves, the old
   * one drains and exits. */
  for (unsigned gen = 1; gen <= 3; gen++) {
    pid_t old[2] = {worker_pid(0, gen - 1), worker_pid(1, gen - 1)};
    CHECK(old[0] > 0 && old[1] > 0);
    CHECK_EQ(kill(server.pid, SIGHUP), 0);
    char line[64];
    snprintf(line, sizeof line, "generation %u) serving", gen);
    CHECK(log_wait(line, 2, 10000));
    for (int i = 0; i < 2; i++) {
      snprintf(line, sizeof line, "(pid %d) exited with code 0", old[i]);
      CHECK(log_wait(line, 1, 15000));
    }
    CHECK(load_progress(2000, 10000));
  }
  load_end();
  if (atomic_load(&load_failed) != 0)
    harness_fail(__FILE__, __LINE__, "%ld requests failed (first: %s)",
                 atomic_load(&load_failed), load_error);
  CHECK_EQ(atomic_load(&load_refused), 0);
  CHECK_EQ(kill(server.pid, SIGTERM), 0);
  CHECK(wait_exit(15000) != -1);
}

TEST_TIMEOUT(a_worker_killed_under_load_is_replaced, 60) {
  start(NULL);
  pid_t victim = worker_pid(0, 0);
  CHECK(victim > 0);
  load_start();
  CHECK(load_progress(2000, 10000));
  CHECK_EQ(kill(victim, SIGKILL), 0);
  /* The other worker answers meanwhile; the slot gets a new worker. */
  CHECK(load_progress(2000, 10000));
  CHECK(log_wait("restarting it", 1, 10000));
  CHECK(log_wait("generation 0) serving", 3, 10000));
  pid_t replacement = worker_pid(0, 0);
  CHECK(replacement > 0 && replacement != victim);
  CHECK(load_progress(2000, 10000));
  load_end();
  /* Only requests in flight on the killed worker's connections fail. */
  CHECK(atomic_load(&load_failed) <= LOADERS);
  CHECK_EQ(atomic_load(&load_refused), 0);
  /* The replacement serves: new connections land on both workers. */
  for (int i = 0; i < 20; i++) {
    struct client *c = client_open(server.port);
    CHECK(c != NULL);
    struct response r;
    CHECK_EQ(client_get(c, "/hello", &r), 0);
    CHECK_EQ(r.status, 200);
    response_free(&r);
    client_close(c);
  }
  CHECK_EQ(kill(server.pid, SIGTERM), 0);
  CHECK(wait_exit(15000) != -1);
}

TEST(workers_die_with_a_killed_supervisor) {
  /* The orphaned workers come to this process, which reaps them. */
  CHECK_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  start(NULL);
  pid_t workers[2] = {worker_pid(0, 0), worker_pid(1, 0)};
  CHECK(workers[0] > 0 && workers[1] > 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(kill(server.pid, SIGKILL), 0);
  CHECK(wait_exit(5000) != -1);
  for (int i = 0; i < 2; i++) {
    int status = 0;
    pid_t r;
    while ((r = waitpid(workers[i], &status, WNOHANG)) == 0 &&
           harness_now_ns() - t0 <
               (int64_t)2000000000 * (int64_t)harness_timeout_multiplier())
      sleep_ms(5);
    CHECK_EQ(r, workers[i]);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  }
  double secs = (double)(harness_now_ns() - t0) / 1e9;
  printf("  workers gone %.3f s after the supervisor\n", secs);
  CHECK(secs < 1.0 * harness_timeout_multiplier());
}

/* Opens n connections that each take the deepest paths (an index, a 404,
 * a file, /hello) and then stay idle. */
static void open_idle(struct client **cs, int n) {
  const char *paths[] = {"/sub/", "/nothing", "/hello.txt", "/hello"};
  const int statuses[] = {200, 404, 200, 200};
  for (int i = 0; i < n; i++) {
    cs[i] = client_open(server.port);
    CHECK(cs[i] != NULL);
    for (int j = 0; j < 4; j++) {
      struct response r;
      CHECK_EQ(client_get(cs[i], paths[j], &r), 0);
      CHECK_EQ(r.status, statuses[j]);
      response_free(&r);
    }
  }
}

/* One worker, and room for a few thousand connections to it. */
static pid_t one_worker_for_many(void) {
  struct rlimit rl = {4096, 4096};
  setrlimit(RLIMIT_NOFILE, &rl);
  start_workers(1, NULL);
  pid_t worker = worker_pid(0, 0);
  CHECK(worker > 0);
  return worker;
}

TEST_TIMEOUT(an_idle_connection_costs_its_worker_under_5_kib, 60) {
  enum { BASE = 200, MORE = 1000 };
  pid_t worker = one_worker_for_many();
  static struct client *cs[BASE + MORE];
  open_idle(cs, BASE);
  size_t rss0 = client_rss_of(worker);
  open_idle(cs + BASE, MORE);
  size_t rss1 = client_rss_of(worker);
  double per = (double)(rss1 - rss0) / MORE;
  printf("  %d idle connections: %.0f bytes resident each in the worker\n",
         MORE, per);
  if (!harness_emulated() && !SANITIZED)
    CHECK(per <= 5 << 10);
  for (int i = 0; i < BASE + MORE; i++)
    client_close(cs[i]);
}

/* A connection from 127.0.0.x, x = 2 + i / 20,000: one source address
 * runs out of ports near 28,000. The descriptor, or -1. */
static int connect_from(int i, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, &one,
             sizeof one);
  struct sockaddr_in from = {.sin_family = AF_INET,
                             .sin_addr.s_addr =
                                 htonl(INADDR_LOOPBACK + 1 + i / 20000)};
  struct sockaddr_in to = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  double secs = 10 * harness_timeout_multiplier();
  struct timeval tv = {(time_t)secs, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (bind(fd, (struct sockaddr *)&from, sizeof from) != 0 ||
      connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* GET /hello on fd, and its whole answer read: whether it was a 200 with
 * the body "Hello, world". */
static bool get_hello(int fd) {
  static const char req[] = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
  if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)sizeof req - 1)
    return false;
  char buf[1024];
  size_t len = 0;
  for (;;) {
    ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (n <= 0)
      return false;
    len += (size_t)n;
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (end && strlen(end + 4) >= 12)
      return strncmp(buf, "HTTP/1.1 200", 12) == 0 &&
             strcmp(end + 4, "Hello, world") == 0;
    if (len == sizeof buf - 1)
      return false;
  }
}

/* Issue 17's scale: as many idle keep-alive connections as the descriptor
 * limits allow, up to 100,000 (this project's machines allow 20,000 a
 * process, and no more: the test then holds some 19,000), each having
 * made a request, all hibernated; a new connection is answered promptly,
 * and so are the idle ones. The httpd's keep-alive timeout is an hour, so
 * that none of them is closed while the others are opened. The portable
 * poll() poller looks at every descriptor at each wait: with it the test
 * holds 2,000 (19,000 take it two minutes). */
TEST_TIMEOUT(a_hundred_thousand_idle_connections_and_a_new_one_answered, 300) {
  if (SANITIZED || harness_emulated())
    harness_skip("tens of thousands of connections: too slow here");
  struct rlimit rl;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = rl.rlim_max; /* the httpd inherits it */
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  long n = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 100000 + 1024
               ? 100000
               : (long)rl.rlim_max - 1024;
  if (n < 2000)
    harness_skip("the descriptor limit is too low");
  if (strcmp(WEFT_POLLER_NAME, "poll") == 0)
    n = 2000;
  static const char *const hour[] = {"--idle-timeout", "3600", NULL};
  start_workers(1, hour);
  int *fds = malloc((size_t)n * sizeof *fds);
  CHECK(fds != NULL);
  for (long i = 0; i < n; i++) {
    fds[i] = connect_from((int)i, server.port);
    CHECK(fds[i] >= 0);
    CHECK(get_hello(fds[i]));
  }
  usleep(2500 * 1000); /* past weft_hub_idle_after's second, and a sweep */
  size_t rss = client_rss_of(worker_pid(0, 0));
  int64_t t0 = harness_now_ns();
  int fresh = connect_from(0, server.port);
  CHECK(fresh >= 0);
  CHECK(get_hello(fresh));
  double ms = (double)(harness_now_ns() - t0) / 1e6;
  printf("  %ld idle connections (%zu bytes resident in the worker): a new "
         "one answered in %.2f ms\n",
         n, rss, ms);
  CHECK(ms < 1000 * harness_timeout_multiplier()); /* generous: promptly */
  close(fresh);
  for (long i = 0; i < n; i += 97)
    CHECK(get_hello(fds[i]));
  for (long i = 0; i < n; i++)
    close(fds[i]);
  free(fds);
}

/* Connections idle past a second are hibernated (the httpd sets
 * conn_hibernate): they cost far less than a page, and each answers its
 * next request as before, as does a new connection. */
TEST_TIMEOUT(idle_connections_are_hibernated_and_answer_again, 60) {
  enum { BASE = 100, MORE = 600 };
  pid_t worker = one_worker_for_many();
  static struct client *cs[BASE + MORE];
  open_idle(cs, BASE);
  usleep(2500 * 1000); /* past weft_hub_idle_after's second, and a sweep */
  size_t rss0 = client_rss_of(worker);
  open_idle(cs + BASE, MORE);
  usleep(2500 * 1000);
  size_t rss1 = client_rss_of(worker);
  double per = (double)(rss1 - rss0) / MORE;
  printf("  %d hibernated connections: %.0f bytes resident each in the "
         "worker\n",
         MORE, per);
  /* The ucontext fallback does not hibernate. */
  if (!harness_emulated() && !SANITIZED &&
      strcmp(WEFT_CONTEXT_NAME, "ucontext") != 0)
    CHECK(per <= 2 << 10);
  for (int i = 0; i < BASE + MORE; i++) {
    struct response r;
    CHECK_EQ(client_get(cs[i], i % 2 ? "/hello" : "/hello.txt", &r), 0);
    CHECK_EQ(r.status, 200);
    response_free(&r);
  }
  struct client *fresh = client_open(server.port);
  CHECK(fresh != NULL);
  struct response r;
  CHECK_EQ(client_get(fresh, "/sub/", &r), 0);
  CHECK_EQ(r.status, 200);
  response_free(&r);
  client_close(fresh);
  for (int i = 0; i < BASE + MORE; i++)
    client_close(cs[i]);
}
