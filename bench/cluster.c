/*
 * The notes' "coroutines cannot use multiple cores … combine processes
 * with coroutines" (docs/notes.md), measured: a server whose every request
 * is CPU-bound, as weft's cluster with 1 and 2 worker processes, and as one
 * hub in one process.
 *
 *   BenchmarkClusterCPU/<server>/weft: ns per request (wall time), a
 *   request being 8 bytes (a seed) sent on a keep-alive connection, 16
 *   chained runs of 1,000 dependent LCG steps on it in the server (about
 *   27 us here), and the 8-byte result sent back:
 *     workers=1  weft's cluster (weft/cluster.h), 1 worker: a supervisor
 *                and one worker process, a task per connection
 *     workers=2  the same with 2 workers, which share one listener
 *     one-hub    no cluster: one process, one hub (weft_run), an accept
 *                loop spawning a task per connection
 *
 * The client is one hub in this process: 16 tasks, each with a keep-alive
 * connection of its own made before the first round, send requests back
 * to back until the round's n are done, and check every answer. Each line
 * ends with the CPUs the server kept busy (the CPU time of its supervisor
 * and workers, or of the one-hub process, read from /proc before and after
 * each round, over the wall time): a hub is one thread, so one hub keeps
 * one CPU busy however many tasks it runs; a worker per CPU is how a
 * cluster uses the others. Two comment lines follow: the CPUs the client
 * used (it shares the machine's CPUs with the server, which wants all of
 * them with 2 workers), and the ratio of the workers=2 row's requests per
 * second to the workers=1 row's.
 *
 * Every server is forked before this process starts any thread of weft's,
 * so that the child may use all of weft; each is stopped with SIGTERM (a
 * supervisor's graceful stop) and reaped at the end, and gets SIGTERM
 * from the kernel should this process die first.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <weft.h>

#include "bench.h"

enum {
  CONNS = 16,  /* client connections (tasks) per row */
  CHAINS = 16, /* runs of the 1,000-step job per request */
  SEEDS = 64,  /* requests cycle through this many seeds */
  ROUNDS = 5,  /* bench_group_cpus's rounds: the last calls of a row */
  MAX_WORKERS = 2,
};

#define IO_TIMEOUT WEFT_SEC(10) /* a stuck server fails a row, not a run */

/* --- the work ------------------------------------------------------------- */

/* 1,000 dependent steps of a 64-bit LCG with an xorshift: about 1.7 us. */
static uint64_t cpu_job(uint64_t x) {
  for (int i = 0; i < 1000; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    x ^= x >> 29;
  }
  return x;
}

/* A request's work: CHAINS jobs, each on the last one's result. */
static uint64_t request_work(uint64_t seed) {
  for (int i = 0; i < CHAINS; i++)
    seed = cpu_job(seed);
  return seed;
}

/* --- the servers ---------------------------------------------------------- */

/* Reads exactly len bytes; false at an end of file or an error. */
static bool recv_all(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = weft_io_recv(fd, (char *)buf + got, len - got, 0, IO_TIMEOUT);
    if (n <= 0)
      return false;
    got += (size_t)n;
  }
  return true;
}

static void no_delay(int fd) {
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
}

/* One request on fd: false when the client has closed, or on an error. */
static bool answer(int fd) {
  uint64_t x;
  if (!recv_all(fd, &x, sizeof x))
    return false;
  x = request_work(x);
  return weft_io_sendall(fd, &x, sizeof x, 0, IO_TIMEOUT) == sizeof x;
}

/* The cluster's handler: requests until the client closes or the worker
 * drains (weft closes fd). */
static void cluster_conn(weft_worker *w, int fd, void *arg) {
  (void)arg;
  no_delay(fd);
  while (weft_worker_idle(w, fd, WEFT_FOREVER) == 0)
    if (!answer(fd) || weft_worker_draining(w))
      return;
}

/* Each worker's main task: publishes the worker's pid in the row's slot of
 * a shared mapping, so that the client can read its CPU time. */
static void cluster_main(weft_worker *w, void *arg) {
  pid_t *pids = arg;
  __atomic_store_n(&pids[weft_worker_index(w)], getpid(), __ATOMIC_RELEASE);
}

static int cluster_server(void *arg) {
  weft_cluster *c = arg;
  int rc = weft_cluster_run(c);
  weft_cluster_free(c);
  return rc == 0 ? 0 : 1;
}

static void *one_hub_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  no_delay(fd);
  while (answer(fd)) {
  }
  weft_io_close(fd);
  return NULL;
}

static void *one_hub_accept(void *arg) {
  int lfd = *(int *)arg;
  for (;;) {
    int fd = weft_io_accept(lfd, NULL, NULL, WEFT_FOREVER);
    if (fd < 0)
      return (void *)1;
    if (weft_task_spawn(NULL, one_hub_conn, (void *)(intptr_t)fd, NULL) != 0)
      weft_io_close(fd);
  }
}

/* Runs until SIGTERM, whose default action ends it. */
static int one_hub_server(void *arg) {
  return weft_run(one_hub_accept, arg, NULL) == 0 ? 0 : 1;
}

/* Forks a child that runs fn(arg) and exits with what it returns. */
static pid_t fork_server(int (*fn)(void *), void *arg) {
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    /* Should this process die first, the server gets SIGTERM: a
     * supervisor's graceful stop, and its workers die with it. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
      _exit(1);
    _exit(fn(arg));
  }
  return pid;
}

/* Stops a server with SIGTERM and reaps it (SIGKILL after 5 s); true if
 * it ended as asked: a supervisor exits 0, the one-hub server by the
 * signal. */
static bool stop_server(pid_t pid) {
  kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 500; i++) {
    pid_t p = waitpid(pid, &status, WNOHANG);
    if (p == pid)
      return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
             (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    if (p < 0)
      return false;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return false;
}

/* --- CPU time from /proc -------------------------------------------------- */

/* The CPU time pid has used so far, in ns: the first field of each of its
 * threads' schedstat (time on a CPU, to the ns, where stat's utime and
 * stime count 10 ms ticks). -1 when pid is gone. */
static int64_t proc_cpu_ns(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (!d)
    return -1;
  int64_t sum = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    long tid = strtol(e->d_name, NULL, 10);
    if (tid <= 0)
      continue; /* . and .. */
    char file[96];
    snprintf(file, sizeof file, "/proc/%d/task/%ld/schedstat", (int)pid, tid);
    FILE *f = fopen(file, "r");
    if (!f)
      continue; /* a thread that has just ended */
    long long ns;
    if (fscanf(f, "%lld", &ns) == 1)
      sum += ns;
    fclose(f);
  }
  closedir(d);
  return sum;
}

static int64_t process_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- the rows ------------------------------------------------------------- */

struct row {
  const char *name;
  const char *label; /* for the comment lines */
  int workers;       /* 0: the one-hub server */
  pid_t server;      /* the supervisor, or the one-hub process; 0: none */
  int port;
  pid_t *pids; /* the workers' pids, in memory shared with them */
  int fds[CONNS];
  bool connected, failed;
  /* The last ROUNDS calls: ns per request, wall and client CPU time. */
  uint64_t calls;
  double ns[ROUNDS], wall[ROUNDS], client_cpu[ROUNDS];
};

static struct row rows[] = {
    {.name = "BenchmarkClusterCPU/workers=1/weft",
     .label = "workers=1",
     .workers = 1},
    {.name = "BenchmarkClusterCPU/workers=2/weft",
     .label = "workers=2",
     .workers = 2},
    {.name = "BenchmarkClusterCPU/one-hub/weft", .label = "one-hub"},
};
enum { NROWS = sizeof rows / sizeof rows[0] };

static uint64_t seeds[SEEDS], results[SEEDS];
static int64_t row_cpu_ns; /* the server's CPU time in the last call */

/* The server's CPU time so far, or -1 when a process of it is gone. */
static int64_t server_cpu_ns(const struct row *r) {
  int64_t sum = proc_cpu_ns(r->server);
  for (int i = 0; i < r->workers && sum >= 0; i++) {
    int64_t w = proc_cpu_ns(__atomic_load_n(&r->pids[i], __ATOMIC_ACQUIRE));
    sum = w < 0 ? -1 : sum + w;
  }
  return sum;
}

/* Starts r's server: listens on 127.0.0.1:0 here, then forks. */
static bool start_server(struct row *r) {
  if (r->workers == 0) {
    int lfd = weft_io_listen("127.0.0.1:0", 0, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (lfd < 0)
      return false;
    if (getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
      close(lfd);
      return false;
    }
    r->port = ntohs(sa.sin_port);
    r->server = fork_server(one_hub_server, &lfd);
    close(lfd);
    return r->server > 0;
  }
  weft_cluster_opts o;
  weft_cluster_opts_init(&o);
  o.workers = r->workers;
  o.main = cluster_main;
  o.handler = cluster_conn;
  o.arg = r->pids;
  o.drain_timeout = WEFT_SEC(1);
  o.log_fd = -1;
  weft_cluster *c;
  if (weft_cluster_create(&c, &o) != 0)
    return false;
  if (weft_cluster_listen(c, "127.0.0.1:0") < 0) {
    weft_cluster_free(c);
    return false;
  }
  r->port = weft_cluster_listener_port(c, 0);
  r->server = fork_server(cluster_server, c);
  weft_cluster_free(c); /* this process's copy of the listener */
  return r->server > 0 && r->port > 0;
}

/* Waits for every worker of r to publish its pid, then makes the client's
 * connections: each worker is then there to take its share of them. */
static bool connect_row(struct row *r) {
  for (int i = 0; i < r->workers; i++)
    for (int ms = 0; !__atomic_load_n(&r->pids[i], __ATOMIC_ACQUIRE); ms++)
      if (ms == 10000 || weft_sleep(WEFT_MS(1)) != 0)
        return false;
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)r->port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = 0; i < CONNS; i++) {
    r->fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->fds[i] < 0 || weft_io_connect(r->fds[i], (struct sockaddr *)&sa,
                                         sizeof sa, IO_TIMEOUT) != 0)
      return false;
    no_delay(r->fds[i]);
  }
  r->connected = true;
  return true;
}

/* The round under way: requests are numbered from 0 to n - 1 and taken in
 * turn by the client tasks, which share this hub's thread. */
static uint64_t round_next, round_n;
static bool round_failed;

static void *client(void *arg) {
  int fd = *(int *)arg;
  while (!round_failed && round_next < round_n) {
    uint64_t k = round_next++ % SEEDS, got;
    if (weft_io_sendall(fd, &seeds[k], sizeof seeds[k], 0, IO_TIMEOUT) !=
            sizeof seeds[k] ||
        !recv_all(fd, &got, sizeof got) || got != results[k])
      round_failed = true;
  }
  return NULL;
}

/* One call of a row: n requests over its connections. */
static bool run_row(struct row *r, uint64_t n) {
  if (r->failed || (!r->connected && !connect_row(r))) {
    r->failed = true;
    return false;
  }
  double t0 = bench_now();
  int64_t server0 = server_cpu_ns(r), client0 = process_cpu_ns();
  round_next = 0;
  round_n = n;
  round_failed = false;
  weft_task *t[CONNS];
  int spawned = 0;
  for (; spawned < CONNS; spawned++)
    if (weft_task_spawn(&t[spawned], client, &r->fds[spawned], NULL) != 0) {
      round_failed = true;
      break;
    }
  for (int i = 0; i < spawned; i++) {
    weft_task_join(t[i], WEFT_FOREVER, NULL);
    weft_task_detach(t[i]);
  }
  int64_t server1 = server_cpu_ns(r), client1 = process_cpu_ns();
  double dt = bench_now() - t0;
  if (round_failed || server0 < 0 || server1 < 0) {
    r->failed = true;
    return false;
  }
  row_cpu_ns = server1 - server0;
  int slot = (int)(r->calls++ % ROUNDS);
  r->ns[slot] = dt * 1e9 / (double)n;
  r->wall[slot] = dt;
  r->client_cpu[slot] = (double)(client1 - client0) / 1e9;
  return true;
}

static bool row_workers_1(uint64_t n) { return run_row(&rows[0], n); }
static bool row_workers_2(uint64_t n) { return run_row(&rows[1], n); }
static bool row_one_hub(uint64_t n) { return run_row(&rows[2], n); }

/* Whether r's last ROUNDS calls were bench_group_cpus's rounds. */
static bool measured(const struct row *r) {
  return r->server > 0 && !r->failed && r->calls > ROUNDS;
}

static double median_ns(const struct row *r) {
  double t[ROUNDS];
  memcpy(t, r->ns, sizeof t);
  qsort(t, ROUNDS, sizeof *t, bench_cmp);
  return t[ROUNDS / 2];
}

static void *client_main(void *arg) {
  struct bench_impl *impls = arg;
  bench_group_cpus(impls, NROWS, &row_cpu_ns);
  char line[256];
  int len = snprintf(line, sizeof line, "# client CPUs (this process):");
  bool any = false;
  for (int i = 0; i < NROWS; i++) {
    const struct row *r = &rows[i];
    if (!measured(r))
      continue;
    double cpu = 0, wall = 0;
    for (int j = 0; j < ROUNDS; j++) {
      cpu += r->client_cpu[j];
      wall += r->wall[j];
    }
    len += snprintf(line + len, sizeof line - (size_t)len, "%s %s %.2f",
                    any ? "," : "", r->label, cpu / wall);
    any = true;
  }
  if (any)
    printf("%s\n", line);
  if (measured(&rows[0]) && measured(&rows[1]))
    printf("# scaling: workers=2 / workers=1 = %.2f\u00d7\n",
           median_ns(&rows[0]) / median_ns(&rows[1]));
  fflush(stdout);
  /* Closed with a reset (linger 0), so that no TIME_WAIT is left. */
  for (int i = 0; i < NROWS; i++)
    for (int j = 0; j < CONNS && rows[i].fds[j] >= 0; j++) {
      struct linger now = {.l_onoff = 1, .l_linger = 0};
      setsockopt(rows[i].fds[j], SOL_SOCKET, SO_LINGER, &now, sizeof now);
      weft_io_close(rows[i].fds[j]);
    }
  return NULL;
}

int main(void) {
  struct bench_impl impls[NROWS] = {
      {rows[0].name, row_workers_1, NULL},
      {rows[1].name, row_workers_2, NULL},
      {rows[2].name, row_one_hub, NULL},
  };
  pid_t *pids = mmap(NULL, sizeof(pid_t) * NROWS * MAX_WORKERS,
                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (pids == MAP_FAILED) {
    perror("bench-cluster: mmap");
    return 1;
  }
  /* The servers first, while this process has no thread but its own. */
  for (int i = 0; i < NROWS; i++) {
    rows[i].pids = pids + i * MAX_WORKERS;
    for (int j = 0; j < CONNS; j++)
      rows[i].fds[j] = -1;
    if (bench_selected(rows[i].name) && !start_server(&rows[i]))
      impls[i].skip = "its server could not be started";
  }
  for (int k = 0; k < SEEDS; k++) {
    seeds[k] = (uint64_t)k * 0x9e3779b97f4a7c15ull + 1;
    results[k] = request_work(seeds[k]);
  }
  int rc = weft_run(client_main, impls, NULL);
  for (int i = 0; i < NROWS; i++)
    if (rows[i].server > 0 && !stop_server(rows[i].server))
      printf("# note: the server of %s did not stop cleanly\n", rows[i].name);
  if (rc != 0)
    printf("# bench-cluster: weft_run: %s\n", weft_strerror(rc));
  return rc == 0 ? 0 : 1;
}
