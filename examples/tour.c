/*
 * The tour of weft: what each layer does, shown with real output.
 * Run it with `make demo`.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "tour.h"

#define IV(x) ((void *)(intptr_t)(x))
#define VI(p) ((intptr_t)(p))

void tour_section(const char *title) { printf("\n== %s\n", title); }

int tour_listen_loopback(struct sockaddr_in *addr) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  *addr = (struct sockaddr_in){.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof *addr;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)addr, sizeof *addr) != 0 ||
      listen(lfd, 16) != 0 ||
      getsockname(lfd, (struct sockaddr *)addr, &len) != 0) {
    if (lfd >= 0)
      close(lfd);
    return -1;
  }
  return lfd;
}

/* --- 1. a generator you send values into ---------------------------------
 * Python:
 *     def averager():
 *         total, n, avg = 0, 0, None
 *         while True:
 *             x = yield avg
 *             total += x; n += 1; avg = total / n
 */
static void *averager(void *arg) {
  (void)arg;
  double total = 0, avg = 0;
  long n = 0;
  void *in;
  while (weft_gen_yield(&avg, &in) == 0) {
    total += *(double *)in;
    avg = total / (double)++n;
  }
  return NULL; /* closed: -ECANCELED came back from the yield */
}

static void tour_send(void) {
  tour_section("generators: a running average, fed by send()");
  weft_gen *avg;
  weft_gen_new(&avg, averager, NULL, NULL);
  weft_gen_next(avg, NULL); /* prime it: run to the first yield */
  double samples[] = {10, 30, 5, 75, 20};
  for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
    void *out;
    weft_gen_resume(avg, &samples[i], &out);
    printf("  send(%4.0f) -> average %6.2f\n", samples[i], *(double *)out);
  }
  weft_gen_close(avg);
  weft_gen_free(avg);
}

/* --- 2. a pipeline: numbers | primes | squares, with yield from ---------- */
static void *numbers(void *arg) {
  for (intptr_t i = 2;; i++)
    if (weft_gen_yield(IV(i), NULL) != 0)
      return NULL;
  (void)arg;
}

static void *primes(void *arg) {
  weft_gen *src = arg;
  void *v;
  while (weft_gen_next(src, &v) == WEFT_GEN_YIELDED) {
    intptr_t n = VI(v), d = 2;
    while (d * d <= n && n % d)
      d++;
    if (d * d > n && weft_gen_yield(v, NULL) != 0)
      return NULL;
  }
  return NULL;
}

static void *squares(void *arg) {
  weft_gen *src = arg;
  void *v;
  while (weft_gen_next(src, &v) == WEFT_GEN_YIELDED)
    if (weft_gen_yield(IV(VI(v) * VI(v)), NULL) != 0)
      return NULL;
  return NULL;
}

/* Python: def first(n, src): yield from islice(src, n); return "done" */
struct take {
  weft_gen *src;
  int n;
};
static void *take_n(void *arg) {
  struct take *t = arg;
  void *v;
  for (int i = 0; i < t->n && weft_gen_next(t->src, &v) == WEFT_GEN_YIELDED;
       i++)
    weft_gen_yield(v, NULL);
  return "done";
}

static void *pipeline(void *arg) {
  void *result;
  weft_gen_yield_from(arg, &result); /* delegate everything to the taker */
  return result;
}

static void tour_pipeline(void) {
  tour_section("generators: a pipeline, numbers | primes | squares | first 8");
  weft_gen *num, *pri, *sq, *take, *pipe;
  weft_gen_new(&num, numbers, NULL, &(weft_gen_opts){.name = "numbers"});
  weft_gen_new(&pri, primes, num, &(weft_gen_opts){.name = "primes"});
  weft_gen_new(&sq, squares, pri, &(weft_gen_opts){.name = "squares"});
  struct take t = {sq, 8};
  weft_gen_new(&take, take_n, &t, NULL);
  weft_gen_new(&pipe, pipeline, take, NULL);
  void *v;
  printf("  ");
  int rc;
  while ((rc = weft_gen_next(pipe, &v)) == WEFT_GEN_YIELDED)
    printf("%ld ", (long)VI(v));
  printf("\n  the pipeline returned \"%s\"\n", (char *)v);
  weft_gen *all[] = {pipe, take, sq, pri, num};
  for (int i = 0; i < 5; i++)
    weft_gen_free(all[i]); /* closes the suspended ones: they clean up */
}

/* --- 3. what a generator costs ------------------------------------------ */
static long resident_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *tick(void *arg) {
  weft_gen_yield(arg, NULL);
  return NULL;
}

/* Makes and starts n generators (copied-stack ones if copied), and tells
 * what they took. */
static void many(int n, bool copied) {
  weft_gen **g = malloc((size_t)n * sizeof *g);
  if (!g)
    return;
  const weft_gen_opts o = {.copied = copied};
  long rss0 = resident_bytes();
  double t0 = now();
  int made = 0;
  while (made < n && weft_gen_new(&g[made], tick, IV(made), &o) == 0) {
    weft_gen_next(g[made], NULL);
    made++;
  }
  double t1 = now();
  long rss1 = resident_bytes();
  printf("  made and started %d %sgenerators in %.0f ms, %ld bytes each\n",
         made, copied ? "copied-stack " : "", (t1 - t0) * 1e3,
         made ? (rss1 - rss0 - (long)((size_t)made * sizeof *g)) / made : 0);
  for (int i = 0; i < made; i++)
    weft_gen_free(g[i]);
  free(g);
}

static void tour_cost(void) {
  tour_section("generators are cheap: 100,000 alive at once");
  many(100000, false);
  printf("  each has a %zu KiB stack of its own, committed only as used;\n"
         "  copied-stack ones share one, keeping their frames aside:\n",
         weft_gen_default_stack_size() >> 10);
  many(1000000, true);

  weft_gen *one;
  weft_gen_new(&one, numbers, NULL, NULL);
  enum { ROUNDS = 10000000 };
  double t0 = now();
  for (int i = 0; i < ROUNDS; i++)
    weft_gen_next(one, NULL);
  double t1 = now();
  printf("  one resume + yield round trip: %.1f ns\n",
         (t1 - t0) * 1e9 / ROUNDS);
  weft_gen_free(one);
}

/* --- 4. tasks: ten thousand coroutines on one CPU ------------------------
 * The notes weft grew from: "one CPU supports tens of thousands of
 * coroutines without trouble". Ten thousand tasks each sleep 100 ms; the
 * hub switches between them whenever one would block, so the whole takes
 * about 100 ms on one thread. */
static void *nap(void *arg) {
  weft_sleep(WEFT_MS(100));
  return arg;
}

static void *ten_thousand_naps(void *arg) {
  long *rss = arg;
  for (int i = 0; i < 10000; i++)
    weft_task_spawn(NULL, nap, NULL, NULL); /* detached */
  weft_yield();                             /* let them all start sleeping */
  *rss = resident_bytes();
  return NULL;
}

static void tour_tasks(void) {
  tour_section("tasks: ten thousand of them sleep 100 ms each, on one thread");
  long rss0 = resident_bytes(), rss1 = 0;
  double t0 = now();
  int rc = weft_run(ten_thousand_naps, &rss1, NULL);
  double t1 = now();
  printf("  weft_run returned %d after %.0f ms; while they slept they took "
         "%ld bytes each\n",
         rc, (t1 - t0) * 1e3, (rss1 - rss0) / 10000);
}

/* --- 5. an echo exchange between tasks over a socket ---------------------
 * Python (gevent):
 *     server = StreamServer(("127.0.0.1", 0), echo); server.start()
 *     for word in words: sock.sendall(word); print(sock.recv(64))
 * A listener task accepts and spawns a task per connection; three client
 * tasks talk to it at the same time; the server stops when SIGTERM comes,
 * as a real one would: one task waits for the signal and cancels the
 * acceptor, whose accept returns -ECANCELED. */
static void *echo_conn(void *arg) {
  int fd = (int)VI(arg);
  char buf[64];
  ssize_t n;
  while ((n = weft_io_recv(fd, buf, sizeof buf, 0, WEFT_SEC(5))) > 0)
    weft_io_send(fd, buf, (size_t)n, 0, WEFT_SEC(5));
  weft_io_close(fd);
  return NULL;
}

/* Whether an accept error is a passing shortage (fds, memory) or a
 * connection lost while queued: the server backs off and goes on, rather
 * than stop serving at the first burst of clients that uses up its fds. */
static bool accept_goes_on(int err) {
  return err == -EMFILE || err == -ENFILE || err == -ENOBUFS ||
         err == -ENOMEM || err == -ECONNABORTED;
}

static void *acceptor(void *arg) {
  int lfd = (int)VI(arg), fd, served = 0;
  for (;;) {
    fd = weft_io_accept(lfd, NULL, NULL, WEFT_FOREVER);
    if (fd >= 0) {
      if (weft_task_spawn(NULL, echo_conn, IV(fd), NULL) < 0)
        weft_io_close(fd); /* no memory for a task: drop this one */
      else
        served++;
    } else if (!accept_goes_on(fd)) {
      break; /* -ECANCELED: told to stop */
    } else if (fd != -ECONNABORTED && weft_sleep(WEFT_MS(100)) < 0) {
      fd = -ECANCELED; /* told to stop while backing off */
      break;
    }
  }
  printf("  acceptor: accept said \"%s\" after %d connections; closing\n",
         weft_strerror(fd), served);
  weft_io_close(lfd);
  return NULL;
}

static void *stop_on_sigterm(void *arg) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  int sig = weft_signal_wait(&set, WEFT_FOREVER);
  printf("  signal %d (SIGTERM) arrived: cancelling the acceptor\n", sig);
  weft_task_cancel(arg);
  return NULL;
}

static struct sockaddr_in echo_addr;

static void *echo_client(void *arg) {
  const char *word = arg;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  weft_io_connect(fd, (struct sockaddr *)&echo_addr, sizeof echo_addr,
                  WEFT_SEC(5));
  char buf[64];
  weft_io_send(fd, word, strlen(word), 0, WEFT_SEC(5));
  ssize_t n = weft_io_recv(fd, buf, sizeof buf - 1, 0, WEFT_SEC(5));
  buf[n > 0 ? n : 0] = 0;
  printf("  client %-7s sent \"%s\", got back \"%s\"\n", word, word, buf);
  weft_io_close(fd);
  return NULL;
}

static void *echo_demo(void *arg) {
  (void)arg;
  int lfd = tour_listen_loopback(&echo_addr);
  if (lfd < 0)
    return NULL;
  weft_task *server, *watcher, *clients[3];
  weft_task_spawn(&server, acceptor, IV(lfd),
                  &(weft_task_opts){.name = "acceptor"});
  weft_task_spawn(&watcher, stop_on_sigterm, server, NULL);
  const char *words[] = {"alpha", "bravo", "charlie"};
  for (int i = 0; i < 3; i++)
    weft_task_spawn(&clients[i], echo_client, (void *)words[i], NULL);
  for (int i = 0; i < 3; i++)
    weft_task_join(clients[i], WEFT_FOREVER, NULL);
  kill(getpid(), SIGTERM); /* as `kill <pid>` from a shell would */
  weft_task_join(watcher, WEFT_FOREVER, NULL);
  weft_task_join(server, WEFT_FOREVER, NULL);
  return NULL;
}

static void tour_echo(void) {
  tour_section(
      "tasks: an echo server and three clients on one thread, over TCP");
  int rc = weft_run(echo_demo, NULL, NULL);
  printf("  weft_run returned %d\n", rc);
}

int main(void) {
  printf("weft %s — Python's concurrency toolbox, in C\n", weft_version());
  tour_send();
  tour_pipeline();
  tour_cost();
  tour_tasks();
  tour_echo();
  tour_threads();
  tour_locks();
  tour_processes();
  tour_shared_memory();
  tour_exec();
  tour_group();
  tour_cluster();
  tour_hooks();
  printf("\n(next: futures and pools)\n");
  return 0;
}
