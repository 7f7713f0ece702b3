/*
 * The cluster: a supervisor and its worker processes (weft/cluster.h).
 *
 * Each case that runs a cluster runs its supervisor in a child process
 * (fork) and talks to it as a client would, over loopback, and with
 * signals.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

static double mult(void) { return harness_timeout_multiplier(); }

/* ---- The workers' side ---- */

/* Answers each line with "<index> <generation> <pid>\n", keeping the
 * connection open between lines (as keep-alive HTTP does), and closes it
 * when the worker drains. A line "sleep" first sleeps 300 ms. */
static void answer(weft_worker *w, int fd, void *arg) {
  (void)arg;
  char buf[256];
  for (;;) {
    int rc = weft_worker_idle(w, fd, WEFT_SEC(30));
    if (rc < 0)
      return;
    ssize_t n = weft_io_recv(fd, buf, sizeof buf - 1, 0, WEFT_SEC(5));
    if (n <= 0)
      return;
    buf[n] = 0;
    if (strstr(buf, "sleep"))
      weft_sleep(WEFT_MS(300));
    char out[64];
    int len = snprintf(out, sizeof out, "%d %u %d\n", weft_worker_index(w),
                       weft_worker_generation(w), (int)getpid());
    if (weft_io_sendall(fd, out, (size_t)len, 0, WEFT_SEC(5)) < 0)
      return;
    if (weft_worker_draining(w))
      return;
  }
}

/* ---- The client's side ---- */

/* What the running case's supervisor has logged so far. */
static char log_text[1 << 16];
static size_t log_len;

struct sup {
  pid_t pid;
  int port;
  int log_rd; /* the supervisor's log lines */
};

static struct sup start(weft_cluster_opts *o, const char *address) {
  int logp[2];
  CHECK_EQ(pipe(logp), 0);
  o->log_fd = logp[1];
  log_len = 0; /* a new supervisor's log */
  weft_cluster *c;
  CHECK_EQ(weft_cluster_create(&c, o), 0);
  int i = weft_cluster_listen(c, address);
  CHECK_EQ(i, 0);
  struct sup s = {.port = weft_cluster_listener_port(c, 0), .log_rd = logp[0]};
  CHECK(s.port > 0);
  /* A plain fork, made while this case's process has one thread (weft has
   * started none here yet): the child may use all of weft, and start
   * threads, which ThreadSanitizer and qemu-user cannot do in the child of
   * a fork made with other threads running (weft_proc_start's, here,
   * since weft's reaper thread runs once a child was started). */
  fflush(NULL);
  s.pid = fork();
  CHECK(s.pid >= 0);
  if (s.pid == 0) {
    /* It dies with the case (a case that fails or times out leaves no
     * supervisor behind, and its workers die with it). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(logp[0]);
    int rc = weft_cluster_run(c);
    weft_cluster_free(c);
    _exit(rc == 0 ? 0 : 100 - rc);
  }
  close(logp[1]);
  weft_cluster_free(c); /* the client's copy of the listener */
  return s;
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  struct timeval tv = {.tv_sec = (time_t)(10 * mult())};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

struct reply {
  int index;
  unsigned generation;
  int pid;
};

/* Sends line on fd and reads the answer; false if the connection ended. */
static bool ask(int fd, const char *line, struct reply *r) {
  if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line))
    return false;
  char buf[128];
  size_t got = 0;
  while (got < sizeof buf - 1 && (got == 0 || buf[got - 1] != '\n')) {
    ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
    if (n <= 0)
      return false;
    got += (size_t)n;
  }
  buf[got] = 0;
  return sscanf(buf, "%d %u %d", &r->index, &r->generation, &r->pid) == 3;
}

/* One question on a new connection. */
static struct reply ask_once(int port) {
  int fd = dial(port);
  struct reply r;
  CHECK(ask(fd, "hi\n", &r));
  close(fd);
  return r;
}

/* Waits for the supervisor to exit; returns its exit code, or minus the
 * signal that killed it. */
static int wait_exit(struct sup *s, double seconds) {
  int64_t end = harness_now_ns() + (int64_t)(seconds * mult() * 1e9);
  int status;
  for (;;) {
    pid_t p = waitpid(s->pid, &status, WNOHANG);
    CHECK(p >= 0);
    if (p == s->pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    CHECK(harness_now_ns() < end);
    usleep(10 * 1000);
  }
}

/* SIGTERM, and the supervisor exits 0 in time. */
static void stop_gracefully(struct sup *s) {
  CHECK_EQ(kill(s->pid, SIGTERM), 0);
  CHECK_EQ(wait_exit(s, 15), 0);
  close(s->log_rd);
}

/* Reads the supervisor's log until it holds what, or the time is up. */

static bool log_has(struct sup *s, const char *what, double seconds) {
  int64_t end = harness_now_ns() + (int64_t)(seconds * mult() * 1e9);
  for (;;) {
    log_text[log_len] = 0;
    if (strstr(log_text, what))
      return true;
    int64_t left = (end - harness_now_ns()) / 1000000;
    if (left <= 0)
      return false;
    struct pollfd p = {.fd = s->log_rd, .events = POLLIN};
    if (poll(&p, 1, (int)left) <= 0)
      continue;
    ssize_t n =
        read(s->log_rd, log_text + log_len, sizeof log_text - 1 - log_len);
    if (n <= 0)
      return strstr(log_text, what) != NULL;
    log_len += (size_t)n;
  }
}

static int count(const char *text, const char *what) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, what)); p++)
    n++;
  return n;
}

/* Whether pid runs: a zombie (a grandchild orphaned by its supervisor's
 * death waits for init to reap it) is dead. */
static bool alive(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *paren = strrchr(buf, ')');
  return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static weft_cluster_opts server_opts(int workers) {
  weft_cluster_opts o;
  weft_cluster_opts_init(&o);
  o.workers = workers;
  o.handler = answer;
  return o;
}

/* ---- Cases ---- */

static void nothing(weft_worker *w, void *arg) {
  (void)w;
  (void)arg;
}

TEST(bad_input_starts_nothing) {
  weft_cluster_opts o;
  weft_cluster_opts_init(&o);
  CHECK(o.workers >= 1);
  CHECK(o.workers <= weft_cpu_count());
  weft_cluster *c = NULL;
  CHECK_EQ(weft_cluster_create(&c, &o), -EINVAL); /* no handler, no main */
  CHECK_EQ(weft_cluster_create(NULL, &o), -EINVAL);
  CHECK_EQ(weft_cluster_create(&c, NULL), -EINVAL);
  o.handler = answer;
  o.workers = 0;
  CHECK_EQ(weft_cluster_create(&c, &o), -EINVAL);
  o.workers = WEFT_CLUSTER_MAX_WORKERS + 1;
  CHECK_EQ(weft_cluster_create(&c, &o), -EINVAL);
  o.workers = 2;
  o.accept_mode = 7;
  CHECK_EQ(weft_cluster_create(&c, &o), -EINVAL);
  o.accept_mode = WEFT_ACCEPT_SHARED;
  o.drain_timeout = -1;
  CHECK_EQ(weft_cluster_create(&c, &o), -EINVAL);
  o.drain_timeout = 0;
  CHECK(c == NULL);
  CHECK_EQ(weft_cluster_create(&c, &o), 0);
  CHECK_EQ(weft_cluster_listen(c, NULL), -EINVAL);
  CHECK_EQ(weft_cluster_listen(c, "no-port"), -EINVAL);
  CHECK_EQ(weft_cluster_listen(c, "127.0.0.1:99999"), -EINVAL);
  CHECK_EQ(weft_cluster_run(c), -EINVAL); /* a handler, no listener */
  int busy = weft_io_listen("127.0.0.1:0", 0, 0);
  CHECK(busy >= 0);
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  CHECK_EQ(getsockname(busy, (struct sockaddr *)&sa, &len), 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
  CHECK_EQ(weft_cluster_listen(c, addr), -EADDRINUSE);
  CHECK_EQ(weft_cluster_listener_port(c, 0), -EINVAL);
  weft_cluster_free(c);
  close(busy);
  /* A listener without a handler. */
  o.handler = NULL;
  o.main = nothing;
  CHECK_EQ(weft_cluster_create(&c, &o), 0);
  CHECK_EQ(weft_cluster_listen(c, "127.0.0.1:0"), 0);
  CHECK_EQ(weft_cluster_run(c), -EINVAL);
  weft_cluster_free(c);
  CHECK_EQ(weft_cluster_stop(NULL, true), -EINVAL);
  CHECK_EQ(weft_cluster_reload(NULL), -EINVAL);
  weft_cluster_free(NULL);
}

/* Batch work: each worker's main says hello, the supervisor answers all
 * of them at once, each main takes the answer and returns; the cluster
 * ends when all have. */
static int hellos[8];

static void say_hello(weft_worker *w, void *arg) {
  (void)arg;
  char msg[32];
  int len = snprintf(msg, sizeof msg, "hello %d", weft_worker_index(w));
  CHECK_EQ(weft_worker_send(w, msg, (size_t)len, WEFT_SEC(5)), 0);
  void *back;
  size_t n;
  CHECK_EQ(weft_worker_recv(w, &back, &n, WEFT_SEC(20)), 0);
  CHECK_EQ(n, 3);
  CHECK(memcmp(back, "bye", 3) == 0);
  free(back);
}

static void count_hellos(weft_cluster *c, int worker, const void *msg,
                         size_t len, void *arg) {
  (void)arg;
  char want[32];
  int n = snprintf(want, sizeof want, "hello %d", worker);
  CHECK_EQ(len, (size_t)n);
  CHECK(memcmp(msg, want, len) == 0);
  hellos[worker]++;
  int total = 0;
  for (int i = 0; i < 3; i++)
    total += hellos[i] > 0;
  if (total == 3)
    CHECK_EQ(weft_cluster_broadcast(c, "bye", 3), 3);
}

TEST(batch_workers_message_the_supervisor_and_end) {
  weft_cluster_opts o;
  weft_cluster_opts_init(&o);
  o.workers = 3;
  o.main = say_hello;
  o.on_message = count_hellos;
  o.log_fd = -1;
  weft_cluster *c;
  CHECK_EQ(weft_cluster_create(&c, &o), 0);
  CHECK_EQ(weft_cluster_broadcast(c, "x", 1), -EPERM); /* not running */
  CHECK_EQ(weft_cluster_run(c), 0);
  CHECK_EQ(weft_cluster_run(c), -EALREADY);
  CHECK_EQ(weft_cluster_listen(c, "127.0.0.1:0"), -EINVAL);
  weft_cluster_free(c);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(hellos[i], 1);
}

TEST(a_stop_before_run_returns_at_once) {
  weft_cluster_opts o = server_opts(2);
  o.log_fd = -1;
  weft_cluster *c;
  CHECK_EQ(weft_cluster_create(&c, &o), 0);
  CHECK_EQ(weft_cluster_listen(c, "127.0.0.1:0"), 0);
  CHECK_EQ(weft_cluster_stop(c, true), 0);
  CHECK_EQ(weft_cluster_run(c), 0);
  weft_cluster_free(c);
}

static void serve_and_stop(int mode, const char *address) {
  weft_cluster_opts o = server_opts(2);
  o.accept_mode = mode;
  struct sup s = start(&o, address);
  CHECK(log_has(&s, "worker 1 (pid", 10));
  bool seen[2] = {false, false};
  for (int i = 0; i < 200 && !(seen[0] && seen[1]); i++) {
    struct reply r = ask_once(s.port);
    CHECK(r.index == 0 || r.index == 1);
    CHECK_EQ(r.generation, 0);
    seen[r.index] = true;
  }
  CHECK(seen[0] && seen[1]); /* both workers accept */
  CHECK_EQ(kill(s.pid, SIGTERM), 0);
  CHECK_EQ(wait_exit(&s, 15), 0);
  CHECK(log_has(&s, "stopped", 1));
  close(s.log_rd);
}

TEST(both_workers_serve_a_shared_socket) {
  serve_and_stop(WEFT_ACCEPT_SHARED, "127.0.0.1:0");
}

TEST(both_workers_serve_reuseport_sockets) {
  serve_and_stop(WEFT_ACCEPT_REUSEPORT, "127.0.0.1:0");
}

TEST(a_graceful_stop_finishes_what_is_in_flight) {
  weft_cluster_opts o = server_opts(2);
  struct sup s = start(&o, "127.0.0.1:0");
  CHECK(log_has(&s, "worker 1 (pid", 10));
  /* One request in flight, one idle keep-alive connection. */
  int busy = dial(s.port), idle = dial(s.port);
  struct reply r;
  CHECK(ask(idle, "hi\n", &r));
  CHECK(send(busy, "sleep\n", 6, 0) == 6);
  usleep(50 * 1000);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(kill(s.pid, SIGTERM), 0);
  char buf[128];
  ssize_t n = recv(busy, buf, sizeof buf, 0);
  CHECK(n > 0 && buf[n - 1] == '\n');          /* the whole answer */
  CHECK_EQ(recv(busy, buf, sizeof buf, 0), 0); /* then closed */
  /* The idle one is closed at once, not after the drain timeout. */
  CHECK_EQ(recv(idle, buf, sizeof buf, 0), 0);
  CHECK(harness_now_ns() - t0 < (int64_t)(5e9 * mult()));
  CHECK_EQ(wait_exit(&s, 15), 0);
  close(busy);
  close(idle);
  close(s.log_rd);
}

static void hang(weft_worker *w, int fd, void *arg) {
  (void)w;
  (void)fd;
  (void)arg;
  weft_sleep(WEFT_SEC(1000));
}

TEST(a_drain_cancels_what_outlasts_it_and_sigquit_stops_at_once) {
  for (int quit = 0; quit < 2; quit++) {
    weft_cluster_opts o = server_opts(1);
    o.handler = hang;
    o.drain_timeout = WEFT_MS(300);
    struct sup s = start(&o, "127.0.0.1:0");
    CHECK(log_has(&s, "worker 0 (pid", 10));
    int fd = dial(s.port);
    usleep(50 * 1000);
    int64_t t0 = harness_now_ns();
    CHECK_EQ(kill(s.pid, quit ? SIGQUIT : SIGTERM), 0);
    char buf[8];
    CHECK_EQ(recv(fd, buf, sizeof buf, 0), 0); /* cancelled, closed */
    CHECK_EQ(wait_exit(&s, 10), 0);
    int64_t took = harness_now_ns() - t0;
    CHECK(took < (int64_t)(3e9 * mult()));
    if (!quit)
      CHECK(took >= WEFT_MS(300)); /* the drain's time was given */
    CHECK(log_has(&s, "stopped", 5));
    CHECK(!strstr(log_text, "killing it")); /* it stopped of itself */
    close(fd);
    close(s.log_rd);
  }
}

TEST(a_killed_worker_is_reported_and_replaced) {
  weft_cluster_opts o = server_opts(1);
  struct sup s = start(&o, "127.0.0.1:0");
  CHECK(log_has(&s, "worker 0 (pid", 10));
  struct reply before = ask_once(s.port);
  CHECK_EQ(kill(before.pid, SIGKILL), 0);
  CHECK(log_has(&s, "killed by signal 9", 10));
  struct reply after = ask_once(s.port); /* waits in the queue meanwhile */
  CHECK(after.pid != before.pid);
  CHECK_EQ(after.index, 0);
  CHECK(!alive(before.pid));
  CHECK_EQ(kill(s.pid, SIGTERM), 0);
  wait_exit(&s, 15);
  close(s.log_rd);
}

static void crash(weft_worker *w, void *arg) {
  (void)w;
  (void)arg;
  _exit(3);
}

TEST(a_worker_that_keeps_dying_is_backed_off) {
  weft_cluster_opts o = server_opts(1);
  o.main = crash;
  struct sup s = start(&o, "127.0.0.1:0");
  usleep((useconds_t)(2500 * 1000));
  CHECK(log_has(&s, "exited with code 3", 1));
  log_has(&s, "no such line", 0.2); /* read what there is */
  int starts = count(log_text, "started");
  printf("  %d starts in 2.5 s\n", starts);
  /* Back-off from 100 ms, doubling: starts at 0, 0.1, 0.3, 0.7, 1.5 s. */
  CHECK(starts >= 3);
  CHECK(starts <= 7);
  stop_gracefully(&s);
}

TEST(workers_die_with_a_killed_supervisor) {
  weft_cluster_opts o = server_opts(2);
  struct sup s = start(&o, "127.0.0.1:0");
  CHECK(log_has(&s, "worker 1 (pid", 10));
  int pids[2] = {0, 0};
  for (int i = 0; i < 200 && !(pids[0] && pids[1]); i++) {
    struct reply r = ask_once(s.port);
    pids[r.index] = r.pid;
  }
  CHECK(pids[0] && pids[1]);
  CHECK_EQ(kill(s.pid, SIGKILL), 0);
  CHECK_EQ(wait_exit(&s, 5), -SIGKILL);
  int64_t end = harness_now_ns() + (int64_t)(1e9 * mult());
  while ((alive(pids[0]) || alive(pids[1])) && harness_now_ns() < end)
    usleep(10 * 1000);
  CHECK(!alive(pids[0]));
  CHECK(!alive(pids[1]));
  close(s.log_rd);
}

TEST(a_reload_starts_a_new_generation_and_drains_the_old) {
  weft_cluster_opts o = server_opts(2);
  struct sup s = start(&o, "127.0.0.1:0");
  CHECK(log_has(&s, "worker 1 (pid", 10));
  int keep = dial(s.port); /* an old worker's connection, in use */
  struct reply old;
  CHECK(ask(keep, "hi\n", &old));
  CHECK_EQ(old.generation, 0);
  CHECK_EQ(kill(s.pid, SIGHUP), 0);
  /* Every request meanwhile is answered, by one generation or the other,
   * until the new one answers. */
  bool renewed = false;
  for (int i = 0; i < 2000 && !renewed; i++) {
    struct reply r = ask_once(s.port);
    renewed = r.generation == 1;
  }
  CHECK(renewed);
  /* The old worker closed the kept connection once idle. */
  char buf[8];
  CHECK_EQ(recv(keep, buf, sizeof buf, 0), 0);
  close(keep);
  int64_t end = harness_now_ns() + (int64_t)(5e9 * mult());
  while (alive(old.pid) && harness_now_ns() < end)
    usleep(10 * 1000);
  CHECK(!alive(old.pid));
  stop_gracefully(&s);
}

/* A call to stop from a thread of the supervisor's process. */
static weft_cluster *running;

static void *stop_soon(void *arg) {
  (void)arg;
  usleep(200 * 1000);
  weft_cluster_stop(running, true);
  return NULL;
}

static void idle_main(weft_worker *w, void *arg) {
  (void)arg;
  CHECK_EQ(weft_worker_wait_drain(w, WEFT_FOREVER), 0);
  CHECK(weft_worker_draining(w));
}

TEST(a_stop_by_call_from_another_thread) {
  weft_cluster_opts o;
  weft_cluster_opts_init(&o);
  o.workers = 2;
  o.main = idle_main;
  o.log_fd = -1;
  CHECK_EQ(weft_cluster_create(&running, &o), 0);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, stop_soon, NULL), 0);
  CHECK_EQ(weft_cluster_run(running), 0);
  CHECK_EQ(pthread_join(t, NULL), 0);
  CHECK_EQ(weft_cluster_reload(running), -ESHUTDOWN);
  weft_cluster_free(running);
}

/* Holds each connection 200 ms before it answers. */
static void slow_answer(weft_worker *w, int fd, void *arg) {
  weft_sleep(WEFT_MS(200));
  answer(w, fd, arg);
}

/* Connections wait in the accept queue (each worker holds one at a time),
 * one worker is SIGKILLed: only what it had accepted is lost; what waited
 * in the queue is answered, by the other worker (a shared socket) or by
 * the killed one's replacement (its REUSEPORT socket, which the supervisor
 * keeps open). */
static void kill_with_a_queue(int mode) {
  enum { CONNS = 24 };
  weft_cluster_opts o = server_opts(2);
  o.handler = slow_answer;
  o.max_conns = 1;
  o.accept_mode = mode;
  struct sup s = start(&o, "127.0.0.1:0");
  CHECK(log_has(&s, "worker 1 (pid", 10));
  struct reply r = ask_once(s.port); /* learn a worker's pid */
  int fds[CONNS];
  for (int i = 0; i < CONNS; i++) {
    fds[i] = dial(s.port);
    CHECK(send(fds[i], "hi\n", 3, 0) == 3);
  }
  usleep(50 * 1000); /* each worker has accepted one; the rest wait */
  int64_t t0 = harness_now_ns();
  CHECK_EQ(kill(r.pid, SIGKILL), 0);
  int answered = 0, lost = 0;
  int64_t slowest = 0;
  for (int i = 0; i < CONNS; i++) {
    char buf[128];
    size_t got = 0;
    ssize_t n;
    while ((got == 0 || buf[got - 1] != '\n') &&
           (n = recv(fds[i], buf + got, sizeof buf - 1 - got, 0)) > 0)
      got += (size_t)n;
    if (got > 0 && buf[got - 1] == '\n') {
      answered++;
      int64_t took = harness_now_ns() - t0;
      slowest = took > slowest ? took : slowest;
    } else {
      lost++;
    }
    close(fds[i]);
  }
  printf("  %s: %d answered, %d lost (accepted by the killed worker), the "
         "last after %.0f ms\n",
         mode == WEFT_ACCEPT_SHARED ? "shared" : "reuseport", answered, lost,
         (double)slowest / 1e6);
  CHECK(lost <= 1); /* the one the killed worker held */
  CHECK_EQ(answered + lost, CONNS);
  stop_gracefully(&s);
}

TEST(a_killed_workers_queue_is_not_lost_with_a_shared_socket) {
  kill_with_a_queue(WEFT_ACCEPT_SHARED);
}

TEST(a_killed_workers_queue_waits_for_its_replacement_with_reuseport) {
  kill_with_a_queue(WEFT_ACCEPT_REUSEPORT);
}

/* The worker may hold few fds: its acceptor runs out (EMFILE), rests, and
 * takes the waiting connections once fds are free again. */
static void few_fds(weft_worker *w, void *arg) {
  (void)w;
  (void)arg;
  int lowest_free = dup(0);
  close(lowest_free);
  struct rlimit r;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &r), 0);
  r.rlim_cur = (rlim_t)lowest_free + 3; /* room for three connections */
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &r), 0);
}

/* Answers, then holds the connection until the client closes it. */
static void answer_and_hold(weft_worker *w, int fd, void *arg) {
  (void)arg;
  char buf[64];
  if (weft_io_recv(fd, buf, sizeof buf, 0, WEFT_SEC(10)) <= 0)
    return;
  int n = snprintf(buf, sizeof buf, "%d %u %d\n", weft_worker_index(w),
                   weft_worker_generation(w), (int)getpid());
  weft_io_sendall(fd, buf, (size_t)n, 0, WEFT_SEC(5));
  weft_io_recv(fd, buf, sizeof buf, 0, WEFT_SEC(30)); /* until closed */
}

TEST(an_acceptor_out_of_fds_rests_and_goes_on) {
  enum { CONNS = 8 };
  weft_cluster_opts o = server_opts(1);
  o.main = few_fds;
  o.handler = answer_and_hold;
  struct sup s = start(&o, "127.0.0.1:0");
  CHECK(log_has(&s, "worker 0 (pid", 10));
  usleep(100 * 1000); /* the limit is set */
  int fds[CONNS];
  for (int i = 0; i < CONNS; i++) {
    fds[i] = dial(s.port);
    CHECK(send(fds[i], "hi\n", 3, 0) == 3);
  }
  CHECK(log_has(&s, "Too many open files", 10));
  /* Closing the answered ones frees fds for the others, which were left
   * waiting in the queue, not dropped. */
  int answered = 0;
  for (int i = 0; i < CONNS; i++) {
    struct reply r;
    char buf[128];
    ssize_t n = recv(fds[i], buf, sizeof buf - 1, 0);
    if (n > 0) {
      buf[n] = 0;
      answered += sscanf(buf, "%d %u %d", &r.index, &r.generation, &r.pid) == 3;
    }
    close(fds[i]);
  }
  CHECK_EQ(answered, CONNS);
  stop_gracefully(&s);
}

/* The task that runs a cluster is cancelled: the workers are stopped now,
 * the run waits for them and returns -ECANCELED; the caller's deadline
 * does not cut the run short; the signal mask comes back as it was. */
static weft_cluster *in_task;

static void *run_in_task(void *arg) {
  (void)arg;
  int64_t at = weft_now() + WEFT_MS(50);
  CHECK_EQ(weft_deadline_set(at, NULL), 0);
  int rc = weft_cluster_run(in_task);
  CHECK_EQ(weft_deadline(), at); /* the caller's again */
  return (void *)(intptr_t)rc;
}

static void *cancel_the_runner(void *arg) {
  (void)arg;
  weft_task *runner;
  CHECK_EQ(weft_task_spawn(&runner, run_in_task, NULL, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(300)), 0); /* past the runner's deadline */
  CHECK(weft_task_alive(runner));
  CHECK_EQ(weft_task_cancel(runner), 0);
  void *rc;
  CHECK_EQ(weft_task_join(runner, WEFT_SEC(10), &rc), 0);
  CHECK_EQ((intptr_t)rc, -ECANCELED);
  return NULL;
}

TEST(a_cancelled_runner_stops_the_workers_and_restores_the_mask) {
  weft_cluster_opts o;
  weft_cluster_opts_init(&o);
  o.workers = 2;
  o.main = idle_main;
  o.log_fd = -1;
  CHECK_EQ(weft_cluster_create(&in_task, &o), 0);
  sigset_t before, after;
  CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);
  CHECK(!sigismember(&before, SIGTERM));
  CHECK_EQ(weft_run(cancel_the_runner, NULL, NULL), 0);
  CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
  CHECK(!sigismember(&after, SIGTERM));
  CHECK(!sigismember(&after, SIGHUP));
  weft_cluster_free(in_task);
}

TEST(sigquit_during_a_drain_cancels_at_once) {
  weft_cluster_opts o = server_opts(1);
  o.handler = hang;
  o.drain_timeout = WEFT_SEC(30);
  struct sup s = start(&o, "127.0.0.1:0");
  CHECK(log_has(&s, "worker 0 (pid", 10));
  int fd = dial(s.port);
  usleep(50 * 1000);
  CHECK_EQ(kill(s.pid, SIGTERM), 0);
  CHECK(log_has(&s, "stopping gracefully", 10));
  int64_t t0 = harness_now_ns();
  CHECK_EQ(kill(s.pid, SIGQUIT), 0);
  char buf[8];
  CHECK_EQ(recv(fd, buf, sizeof buf, 0), 0); /* cancelled, closed */
  CHECK_EQ(wait_exit(&s, 10), 0);
  CHECK(harness_now_ns() - t0 < (int64_t)(1.5e9 * mult())); /* no SIGKILL */
  CHECK(!strstr(log_text, "killing it"));
  close(fd);
  close(s.log_rd);
}

/* In a worker, its copy of the supervisor's cluster refuses. */
static weft_cluster *refusing;

static void refuse_in_worker(weft_worker *w, void *arg) {
  (void)arg;
  char verdict[64];
  int n = snprintf(
      verdict, sizeof verdict, "%d %d %d", weft_cluster_stop(refusing, true),
      weft_cluster_reload(refusing), weft_cluster_broadcast(refusing, "x", 1));
  CHECK_EQ(weft_worker_send(w, verdict, (size_t)n, WEFT_SEC(5)), 0);
}

static char verdict_seen[64];

static void keep_verdict(weft_cluster *c, int worker, const void *msg,
                         size_t len, void *arg) {
  (void)c;
  (void)worker;
  (void)arg;
  memcpy(verdict_seen, msg, len < 63 ? len : 63);
}

TEST(a_workers_copy_of_the_cluster_refuses_stop_reload_broadcast) {
  weft_cluster_opts o;
  weft_cluster_opts_init(&o);
  o.workers = 1;
  o.main = refuse_in_worker;
  o.on_message = keep_verdict;
  o.log_fd = -1;
  CHECK_EQ(weft_cluster_create(&refusing, &o), 0);
  CHECK_EQ(weft_cluster_run(refusing), 0);
  weft_cluster_free(refusing);
  char want[64];
  snprintf(want, sizeof want, "%d %d %d", -EPERM, -EPERM, -EPERM);
  CHECK(strcmp(verdict_seen, want) == 0);
}

/* Without on_message, what workers send is read and dropped: a sender
 * never blocks on it. */
static void chatter(weft_worker *w, void *arg) {
  (void)arg;
  static char big[64 * 1024];
  for (int i = 0; i < 64; i++)
    CHECK_EQ(weft_worker_send(w, big, sizeof big, WEFT_SEC(10)), 0);
}

TEST(messages_nobody_takes_are_dropped_not_blocking) {
  weft_cluster_opts o;
  weft_cluster_opts_init(&o);
  o.workers = 2;
  o.main = chatter;
  o.log_fd = -1;
  weft_cluster *c;
  CHECK_EQ(weft_cluster_create(&c, &o), 0);
  CHECK_EQ(weft_cluster_run(c), 0);
  weft_cluster_free(c);
}

TEST(a_connection_stack_too_large_is_refused) {
  weft_cluster_opts o = server_opts(1);
  o.conn_stack_size = (size_t)1 << 40;
  weft_cluster *c = NULL;
  CHECK_EQ(weft_cluster_create(&c, &o), -EINVAL);
  CHECK(c == NULL);
}

/* A burst of keep-alive connections spreads over the workers of a shared
 * socket: one must not take them all while the other idles. */
TEST(a_burst_of_connections_spreads_over_the_workers) {
  enum { CONNS = 100 };
  weft_cluster_opts o = server_opts(2);
  struct sup s = start(&o, "127.0.0.1:0");
  CHECK(log_has(&s, "worker 1 (pid", 10));
  usleep(100 * 1000); /* both wait in their accept */
  int fds[CONNS], per[2] = {0, 0};
  for (int i = 0; i < CONNS; i++)
    fds[i] = dial(s.port);
  for (int i = 0; i < CONNS; i++) {
    struct reply r;
    CHECK(ask(fds[i], "hi\n", &r));
    per[r.index]++;
  }
  printf("  %d and %d of %d connections\n", per[0], per[1], CONNS);
  CHECK(per[0] >= CONNS / 4);
  CHECK(per[1] >= CONNS / 4);
  for (int i = 0; i < CONNS; i++)
    close(fds[i]);
  stop_gracefully(&s);
}

/* opts.pin_cpus: worker i runs on the i-th CPU the process may use. */
static int pinned_cpu[2] = {-2, -2};

static void report_cpu(weft_worker *w, void *arg) {
  (void)arg;
  cpu_set_t set;
  CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  int cpu = CPU_COUNT(&set) == 1 ? -1 : -3; /* -3: not pinned */
  for (int i = 0; i < CPU_SETSIZE && cpu == -1; i++)
    if (CPU_ISSET(i, &set))
      cpu = i;
  CHECK_EQ(weft_worker_send(w, &cpu, sizeof cpu, WEFT_SEC(5)), 0);
}

static void keep_cpu(weft_cluster *c, int worker, const void *msg, size_t len,
                     void *arg) {
  (void)c;
  (void)arg;
  CHECK_EQ(len, sizeof(int));
  memcpy(&pinned_cpu[worker], msg, sizeof(int));
}

TEST(pinned_workers_run_on_one_cpu_each) {
  cpu_set_t mine;
  CHECK_EQ(sched_getaffinity(0, sizeof mine, &mine), 0);
  if (CPU_COUNT(&mine) < 2)
    harness_skip("one CPU: nothing to pin apart");
  int first = -1, second = -1;
  for (int i = 0; i < CPU_SETSIZE && second < 0; i++)
    if (CPU_ISSET(i, &mine))
      *(first < 0 ? &first : &second) = i;
  weft_cluster_opts o;
  weft_cluster_opts_init(&o);
  o.workers = 2;
  o.main = report_cpu;
  o.on_message = keep_cpu;
  o.pin_cpus = true;
  o.log_fd = -1;
  weft_cluster *c;
  CHECK_EQ(weft_cluster_create(&c, &o), 0);
  CHECK_EQ(weft_cluster_run(c), 0);
  weft_cluster_free(c);
  CHECK_EQ(pinned_cpu[0], first);
  CHECK_EQ(pinned_cpu[1], second);
}
