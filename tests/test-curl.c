/*
 * libcurl's easy API, unmodified, from 200 tasks at once on one hub: each
 * curl_easy_perform parks its task where libcurl polls or reads, so the
 * transfers overlap. The server is the test's own, on another thread: a
 * hub whose tasks answer "GET /<n>" with a body that depends on n, after a
 * pause, so that a client that blocked its thread would make the run take
 * 200 pauses instead of about one.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft/hook.h>
#include <weft/hub.h>
#include <weft/io.h>

#include "harness.h"

enum { CLIENTS = 200, PAUSE_MS = 100 };

/* The body for path n: n's digits repeated, 1,000 + 37 n bytes. */
static size_t body_of(int n, char *out, size_t cap) {
  char digits[16];
  int d = snprintf(digits, sizeof digits, "%d.", n);
  size_t len = 1000 + 37 * (size_t)n;
  if (len > cap)
    len = cap;
  for (size_t i = 0; i < len; i++)
    out[i] = digits[i % (size_t)d];
  return len;
}

/* --- the server: a hub on its own thread ------------------------------ */

struct server {
  int lfd;
  int port;
  pthread_t thread;
};

static void *answer(void *arg) {
  int fd = (int)(intptr_t)arg;
  char req[2048];
  size_t got = 0;
  /* Read up to the end of the request's head. */
  while (got < sizeof req - 1) {
    ssize_t n = weft_io_read(fd, req + got, sizeof req - 1 - got, WEFT_SEC(10));
    if (n <= 0)
      break;
    got += (size_t)n;
    req[got] = 0;
    if (strstr(req, "\r\n\r\n"))
      break;
  }
  int n = -1;
  if (sscanf(req, "GET /%d ", &n) == 1 && n >= 0) {
    weft_sleep(WEFT_MS(PAUSE_MS));
    static __thread char body[1000 + 37 * CLIENTS];
    size_t len = body_of(n, body, sizeof body);
    char head[128];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     len);
    weft_io_sendall(fd, head, (size_t)h, 0, WEFT_SEC(10));
    weft_io_sendall(fd, body, len, 0, WEFT_SEC(10));
  }
  weft_io_close(fd);
  return NULL;
}

static void *accept_loop(void *arg) {
  struct server *s = arg;
  for (;;) {
    int c = weft_io_accept(s->lfd, NULL, NULL, WEFT_FOREVER);
    if (c < 0)
      return NULL; /* closed: the test is over */
    weft_task *t;
    if (weft_task_spawn(&t, answer, (void *)(intptr_t)c, NULL) == 0)
      weft_task_detach(t);
    else
      close(c);
  }
}

static void *server_thread(void *arg) {
  weft_run(accept_loop, arg, NULL);
  return NULL;
}

static void start_server(struct server *s) {
  s->lfd = weft_io_listen("127.0.0.1:0", 512, 0);
  CHECK(s->lfd >= 0);
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  CHECK_EQ(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
  s->port = ntohs(a.sin_port);
  CHECK_EQ(pthread_create(&s->thread, NULL, server_thread, s), 0);
}

static void stop_server(struct server *s) {
  /* A shutdown wakes the accept with an error. */
  shutdown(s->lfd, SHUT_RDWR);
  pthread_join(s->thread, NULL);
  close(s->lfd);
}

/* --- the clients -------------------------------------------------------- */

struct fetch {
  int n;
  int port;
  char *got;
  size_t len, cap;
  CURLcode rc;
  long status;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *arg) {
  struct fetch *f = arg;
  size_t n = size * nmemb;
  if (f->len + n > f->cap) {
    size_t cap = (f->len + n) * 2;
    char *g = realloc(f->got, cap);
    if (!g)
      return 0;
    f->got = g;
    f->cap = cap;
  }
  memcpy(f->got + f->len, data, n);
  f->len += n;
  return n;
}

static void *fetch(void *arg) {
  struct fetch *f = arg;
  CURL *c = curl_easy_init();
  if (!c) {
    f->rc = CURLE_OUT_OF_MEMORY;
    return NULL;
  }
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/%d", f->port, f->n);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  f->rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
  curl_easy_cleanup(c);
  return NULL;
}

struct run {
  int port;
  int64_t took;
  int bad;
};

static void check_body(const struct fetch *f, int *bad) {
  static char want[1000 + 37 * CLIENTS];
  size_t len = body_of(f->n, want, sizeof want);
  if (f->rc != CURLE_OK || f->status != 200 || f->len != len ||
      memcmp(f->got, want, len) != 0) {
    if (!*bad)
      fprintf(stderr, "fetch %d: %s, status %ld, %zu bytes (want %zu)\n", f->n,
              curl_easy_strerror(f->rc), f->status, f->len, len);
    (*bad)++;
  }
}

static void *many_fetches(void *arg) {
  struct run *r = arg;
  struct fetch *f = calloc(CLIENTS, sizeof *f);
  weft_task **t = calloc(CLIENTS, sizeof *t);
  int64_t t0 = weft_now();
  for (int i = 0; i < CLIENTS; i++) {
    f[i].n = i;
    f[i].port = r->port;
    CHECK_EQ(weft_task_spawn(&t[i], fetch, &f[i], NULL), 0);
  }
  for (int i = 0; i < CLIENTS; i++) {
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
    weft_task_detach(t[i]);
  }
  r->took = weft_now() - t0;
  for (int i = 0; i < CLIENTS; i++) {
    check_body(&f[i], &r->bad);
    free(f[i].got);
  }
  free(f);
  free(t);
  return NULL;
}

TEST_TIMEOUT(two_hundred_curl_transfers_on_one_hub, 120) {
  CHECK(weft_hook_installed());
  CHECK_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
  struct server s;
  start_server(&s);
  struct run r = {.port = s.port};
  CHECK_EQ(weft_run(many_fetches, &r, NULL), 0);
  stop_server(&s);
  curl_global_cleanup();
  CHECK_EQ(r.bad, 0);
  /* 200 pauses of 100 ms one after another would be 20 s; overlapped,
   * about one pause. Generous for slow builds. */
  CHECK(r.took < WEFT_SEC(10));
}

TEST(the_same_fetch_on_a_thread) {
  CHECK_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
  struct server s;
  start_server(&s);
  struct fetch f = {.n = 3, .port = s.port};
  fetch(&f);
  stop_server(&s);
  curl_global_cleanup();
  int bad = 0;
  check_body(&f, &bad);
  free(f.got);
  CHECK_EQ(bad, 0);
}
