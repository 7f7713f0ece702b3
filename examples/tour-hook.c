/*
 * The tour, the hooks: blocking code that knows nothing of weft, run in
 * many tasks on one thread. `fetch` below is written as any blocking C
 * client library is (socket, connect, write, read, close); the tour links
 * libweft-hook, so in a task those calls park the task instead of the
 * thread. The server, on a thread of its own, pauses 50 ms before each
 * answer: 100 fetches in tasks take about one pause, where the same fetches
 * with the hooks turned off take one pause each. Then the same with a real
 * library, hiredis, when it and a redis-server are installed
 * (tour-hook-redis.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>
#include <weft/hook.h>

#include "tour-hook.h"
#include "tour.h"

#define PAUSE WEFT_MS(50)

/* --- a blocking client, as a library would have it ---------------------- */

/* Sends "<n>\n" to the server on port and reads its answer, n squared.
 * Returns the answer, or -1. */
static long fetch(int port, long n) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  char buf[32];
  long answer = -1;
  int len = snprintf(buf, sizeof buf, "%ld\n", n);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      write(fd, buf, (size_t)len) == len) {
    ssize_t got = read(fd, buf, sizeof buf - 1);
    if (got > 0) {
      buf[got] = 0;
      sscanf(buf, "%ld", &answer);
    }
  }
  if (fd >= 0)
    close(fd);
  return answer;
}

/* --- the server: a hub on another thread -------------------------------- */

static void *answer(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[32];
  ssize_t n = weft_io_read(fd, buf, sizeof buf - 1, WEFT_SEC(5));
  long v;
  if (n > 0) {
    buf[n] = 0;
    if (sscanf(buf, "%ld", &v) == 1 && weft_sleep(PAUSE) == 0) {
      int len = snprintf(buf, sizeof buf, "%ld\n", v * v);
      weft_io_sendall(fd, buf, (size_t)len, 0, WEFT_SEC(5));
    }
  }
  weft_io_close(fd);
  return NULL;
}

static void *serve(void *arg) {
  int lfd = (int)(intptr_t)arg;
  for (;;) {
    int fd = weft_io_accept(lfd, NULL, NULL, WEFT_FOREVER);
    if (fd < 0)
      return NULL; /* shut down: the tour is over */
    weft_task *t;
    if (weft_task_spawn(&t, answer, (void *)(intptr_t)fd, NULL) == 0)
      weft_task_detach(t);
    else
      weft_io_close(fd);
  }
}

static void *server_thread(void *arg) {
  weft_run(serve, arg, NULL);
  return NULL;
}

/* --- the clients: tasks on the tour's thread ---------------------------- */

enum { TASKS = 100, UNHOOKED = 10 };

struct job {
  int port;
  long n, got;
};

static void *fetch_task(void *arg) {
  struct job *j = arg;
  j->got = fetch(j->port, j->n);
  return NULL;
}

struct run {
  int port;
  int tasks;
  bool hooks;
  int right;
  int64_t took;
};

static void *run_fetches(void *arg) {
  struct run *r = arg;
  weft_hook_enable(r->hooks);
  struct job jobs[TASKS];
  weft_task *t[TASKS];
  int64_t t0 = weft_now();
  for (int i = 0; i < r->tasks; i++) {
    jobs[i] = (struct job){.port = r->port, .n = i};
    weft_task_spawn(&t[i], fetch_task, &jobs[i], NULL);
  }
  for (int i = 0; i < r->tasks; i++) {
    weft_task_join(t[i], WEFT_FOREVER, NULL);
    weft_task_detach(t[i]);
    r->right += jobs[i].got == jobs[i].n * jobs[i].n;
  }
  r->took = weft_now() - t0;
  weft_hook_enable(true);
  return NULL;
}

void tour_hooks(void) {
  tour_section("hooks: an unmodified blocking client in 100 tasks, one thread");
  int lfd = weft_io_listen("127.0.0.1:0", 128, 0);
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  pthread_t server;
  if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&sa, &len) != 0 ||
      pthread_create(&server, NULL, server_thread, (void *)(intptr_t)lfd)) {
    printf("  no server: %s\n", weft_strerror(lfd < 0 ? lfd : -1));
    return;
  }
  printf("  the hooks are %s\n",
         weft_hook_installed() ? "in front of libc" : "NOT installed");
  struct run on = {.port = ntohs(sa.sin_port), .tasks = TASKS, .hooks = true};
  weft_run(run_fetches, &on, NULL);
  printf("  %d fetches, hooks on:  %d right answers in %.2f s (the server "
         "pauses %.2f s per answer)\n",
         on.tasks, on.right, on.took / 1e9, PAUSE / 1e9);
  struct run off = {.port = on.port, .tasks = UNHOOKED, .hooks = false};
  weft_run(run_fetches, &off, NULL);
  printf("  %d fetches, hooks off: %d right answers in %.2f s (each read "
         "blocks the thread)\n",
         off.tasks, off.right, off.took / 1e9);
  shutdown(lfd, SHUT_RDWR);
  pthread_join(server, NULL);
  close(lfd);
  tour_hooks_redis();
}
