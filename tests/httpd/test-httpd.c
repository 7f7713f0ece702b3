/*
 * httpd's protocol over real loopback sockets: a server (httpd_serve
 * behind a plain accept loop, tests/httpd/server.c) in a child process,
 * and a blocking client here. Every status httpd answers, every limit, the
 * root that cannot be escaped, pipelining, keep-alive and its end, the
 * header timeout against a trickling client, and idle connections that
 * cost little and delay nobody.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "client.h"
#include "harness.h"
#include "root.h"
#include "server.h"

/* --- a root to serve ------------------------------------------------------ */

static unsigned char big[64 << 10]; /* the contents of big.bin */

/* The tests' root (root.h), with big.bin: 64 KiB of noise. */
static const char *make_root(void) {
  const char *root = root_make();
  srand(7);
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (unsigned char)rand();
  root_file("big.bin", big, sizeof big);
  return root;
}

static struct test_server server;

static void stop_server_at_exit(void) { server_stop(&server); }

/* A server with the defaults, tightened by the test where it matters. */
static void start(struct httpd_config *cfg) {
  struct httpd_config def;
  if (!cfg) {
    httpd_config_init(&def);
    cfg = &def;
  }
  if (cfg->root_fd < 0) {
    cfg->root_fd = httpd_root_open(make_root());
    CHECK(cfg->root_fd >= 0);
  }
  server_start(&server, cfg);
  atexit(stop_server_at_exit);
}

static struct client *connect_(void) {
  struct client *c = client_open(server.port);
  CHECK(c != NULL);
  return c;
}

/* One request on a new connection; returns its status. */
static int status_of(const char *request) {
  struct client *c = connect_();
  client_send(c, request, 0);
  struct response r;
  CHECK_EQ(client_response(c, &r, false), 0);
  response_free(&r);
  client_close(c);
  return r.status;
}

static bool valid_date(const char *d) {
  struct tm tm;
  const char *end = d ? strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm) : NULL;
  return end && *end == '\0' && strlen(d) == 29;
}

/* --- /hello ----------------------------------------------------------------
 */

TEST(hello_get_and_head) {
  start(NULL);
  struct client *c = connect_();
  struct response r;
  CHECK_EQ(client_get(c, "/hello", &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.content_length, 12);
  CHECK_EQ(r.body_len, 12);
  CHECK(memcmp(r.body, "Hello, world", 12) == 0);
  CHECK(strcmp(response_header(&r, "Content-Type"), "text/plain") == 0);
  CHECK(valid_date(response_header(&r, "Date")));
  CHECK(response_header(&r, "Connection") == NULL);
  response_free(&r);
  /* HEAD: the same head, no body; the next response follows at once. */
  client_send(c, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n", 0);
  CHECK_EQ(client_response(c, &r, true), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.content_length, 12);
  CHECK_EQ(client_get(c, "/hello", &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK(memcmp(r.body, "Hello, world", 12) == 0);
  response_free(&r);
  client_close(c);
}

TEST(pipelined_requests_are_answered_in_order) {
  start(NULL);
  struct client *c = connect_();
  client_send(c,
              "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
              "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
              "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n"
              "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
              0);
  struct response r;
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 200);
  CHECK(strcmp(r.body, "Hello, world") == 0);
  response_free(&r);
  CHECK_EQ(client_response(c, &r, true), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.content_length, 11);
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 404);
  response_free(&r);
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 200);
  CHECK(strcmp(r.body, "hello file\n") == 0);
  response_free(&r);
  /* Nothing more came, and the connection is still open. */
  CHECK(!client_closed(c, 100));
  client_close(c);
}

TEST(pipelined_burst_spans_many_reads) {
  /* 300 requests in one write: more than one read's worth (4 KiB) and
   * more responses than one write holds; all answered, in order. */
  start(NULL);
  struct client *c = connect_();
  static char burst[300 * 64];
  size_t len = 0;
  for (int i = 0; i < 300; i++)
    len += (size_t)sprintf(burst + len, "GET /%s HTTP/1.1\r\nHost: t\r\n\r\n",
                           i % 2 ? "hello" : "missing");
  client_send(c, burst, len);
  for (int i = 0; i < 300; i++) {
    struct response r;
    CHECK_EQ(client_response(c, &r, false), 0);
    CHECK_EQ(r.status, i % 2 ? 200 : 404);
    response_free(&r);
  }
  client_close(c);
}

TEST(keep_alive_over_many_requests) {
  start(NULL);
  struct client *c = connect_();
  for (int i = 0; i < 2000; i++) {
    struct response r;
    CHECK_EQ(client_get(c, "/hello", &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, 12);
    response_free(&r);
  }
  client_close(c);
}

TEST(http10_and_connection_close_end_the_connection) {
  start(NULL);
  struct response r;
  /* HTTP/1.0 without keep-alive: answered, then closed. */
  struct client *c = connect_();
  client_send(c, "GET /hello HTTP/1.0\r\n\r\n", 0);
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 200);
  CHECK(strcmp(r.body, "Hello, world") == 0);
  CHECK(strcmp(response_header(&r, "Connection"), "close") == 0);
  response_free(&r);
  CHECK(client_closed(c, 5000));
  client_close(c);
  /* HTTP/1.0 with keep-alive: stays open, and says so. */
  c = connect_();
  for (int i = 0; i < 3; i++) {
    client_send(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0);
    CHECK_EQ(client_response(c, &r, false), 0);
    CHECK_EQ(r.status, 200);
    CHECK(strcmp(response_header(&r, "Connection"), "keep-alive") == 0);
    response_free(&r);
  }
  CHECK(!client_closed(c, 100));
  client_close(c);
  /* HTTP/1.1 with "Connection: close". */
  c = connect_();
  client_send(c, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
              0);
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 200);
  CHECK(strcmp(response_header(&r, "Connection"), "close") == 0);
  response_free(&r);
  CHECK(client_closed(c, 5000));
  client_close(c);
}

/* --- errors ----------------------------------------------------------------
 */

TEST(malformed_requests_get_400) {
  start(NULL);
  CHECK_EQ(status_of("garbage\r\n\r\n"), 400);
  CHECK_EQ(status_of("GET /hello HTTP/1.1 extra\r\nHost: t\r\n\r\n"), 400);
  CHECK_EQ(status_of("GET /hello XTTP/1.1\r\nHost: t\r\n\r\n"), 400);
  CHECK_EQ(status_of("GET /hello HTTP/1.1\r\nBad Header\r\n\r\n"), 400);
  /* HTTP/1.1 needs exactly one Host. */
  CHECK_EQ(status_of("GET /hello HTTP/1.1\r\n\r\n"), 400);
  CHECK_EQ(status_of("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  /* Ambiguous framing, the stuff of request smuggling. */
  CHECK_EQ(status_of("POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
           400);
  CHECK_EQ(status_of("POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                     "Content-Length: 4\r\n\r\nabcd"),
           400);
  /* A 400 ends the connection. */
  struct client *c = connect_();
  client_send(c, "garbage\r\n\r\n", 0);
  struct response r;
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 400);
  CHECK(strcmp(response_header(&r, "Connection"), "close") == 0);
  response_free(&r);
  CHECK(client_closed(c, 5000));
  client_close(c);
}

TEST(empty_header_values_end_their_header) {
  /* Each header is told apart from the next even when its value is empty
   * (its name must not run into the next one's: "X-EmptyHost"). */
  start(NULL);
  CHECK_EQ(status_of("GET /hello HTTP/1.1\r\nX-Empty:\r\nHost: t\r\n\r\n"),
           200);
  CHECK_EQ(status_of("GET /hello HTTP/1.1\r\nX-E:  \r\nHost: t\r\n\r\n"), 200);
  CHECK_EQ(status_of("GET /hello HTTP/1.1\r\nHost:\r\n\r\n"), 200);
  CHECK_EQ(status_of("GET /hello HTTP/1.1\r\nHost:\r\nHost:\r\n\r\n"), 400);
}

TEST(unknown_versions_get_505) {
  start(NULL);
  CHECK_EQ(status_of("GET /hello HTTP/2.0\r\nHost: t\r\n\r\n"), 505);
  CHECK_EQ(status_of("GET /hello HTTP/0.9\r\nHost: t\r\n\r\n"), 505);
  CHECK_EQ(status_of("GET /hello HTTP/3.0\r\nHost: t\r\n\r\n"), 505);
}

TEST(missing_files_get_404) {
  start(NULL);
  CHECK_EQ(status_of("GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n"), 404);
  CHECK_EQ(status_of("GET /empty/ HTTP/1.1\r\nHost: t\r\n\r\n"), 404);
  CHECK_EQ(status_of("GET /hello.txt/x HTTP/1.1\r\nHost: t\r\n\r\n"), 404);
  CHECK_EQ(status_of("GET /fifo HTTP/1.1\r\nHost: t\r\n\r\n"), 404);
  /* A 404 keeps the connection. */
  struct client *c = connect_();
  struct response r;
  CHECK_EQ(client_get(c, "/nothing", &r), 0);
  CHECK_EQ(r.status, 404);
  response_free(&r);
  CHECK_EQ(client_get(c, "/hello", &r), 0);
  CHECK_EQ(r.status, 200);
  response_free(&r);
  client_close(c);
}

TEST(other_methods_get_405_with_allow) {
  start(NULL);
  struct client *c = connect_();
  const char *reqs[] = {
      "POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
      "PUT /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
      "DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n",
      ("POST /hello HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5\r\nhello\r\n0\r\n\r\n"),
  };
  for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
    client_send(c, reqs[i], 0);
    struct response r;
    CHECK_EQ(client_response(c, &r, false), 0);
    CHECK_EQ(r.status, 405);
    CHECK(strcmp(response_header(&r, "Allow"), "GET, HEAD") == 0);
    response_free(&r);
  }
  /* The bodies were read and dropped: the connection goes on. */
  struct response r;
  CHECK_EQ(client_get(c, "/hello", &r), 0);
  CHECK_EQ(r.status, 200);
  response_free(&r);
  client_close(c);
}

TEST(bodies_above_the_limit_get_413) {
  struct httpd_config cfg;
  httpd_config_init(&cfg);
  cfg.max_body = 1000;
  start(&cfg);
  CHECK_EQ(status_of("POST /hello HTTP/1.1\r\nHost: t\r\n"
                     "Content-Length: 1001\r\n\r\n"),
           413);
  /* A chunked body is counted as it comes. */
  static char chunked[4096];
  size_t len = (size_t)sprintf(chunked, "POST /hello HTTP/1.1\r\nHost: t\r\n"
                                        "Transfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; i < 3; i++) {
    len += (size_t)sprintf(chunked + len, "190\r\n");
    memset(chunked + len, 'x', 400);
    len += 400;
    len += (size_t)sprintf(chunked + len, "\r\n");
  }
  len += (size_t)sprintf(chunked + len, "0\r\n\r\n");
  struct client *c = connect_();
  client_send(c, chunked, len);
  struct response r;
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 413);
  response_free(&r);
  CHECK(client_closed(c, 5000));
  client_close(c);
  /* Chunk extensions count toward no limit, but the request's bytes do. */
  c = connect_();
  client_send(c,
              "POST /hello HTTP/1.1\r\nHost: t\r\n"
              "Transfer-Encoding: chunked\r\n\r\n1;",
              0);
  /* Chunks of one byte behind 60 KiB of extension each: below the
   * parser's own cap on a chunk's header, above the request's bound. */
  static char ext[60 << 10];
  memset(ext, 'e', sizeof ext);
  for (int i = 0; i < 2; i++) {
    client_send(c, ext, sizeof ext);
    client_send(c, "\r\nx\r\n1;", 0);
  }
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 413);
  response_free(&r);
  client_close(c);
  /* At the limit: read, dropped, answered, kept. */
  c = connect_();
  static char body[1000];
  memset(body, 'y', sizeof body);
  client_send(
      c, "GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", 0);
  client_send(c, body, sizeof body);
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 200);
  response_free(&r);
  CHECK_EQ(client_get(c, "/hello", &r), 0);
  CHECK_EQ(r.status, 200);
  response_free(&r);
  client_close(c);
}

TEST(expect_100_continue) {
  start(NULL);
  struct client *c = connect_();
  client_send(c,
              "POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
              "Expect: 100-continue\r\n\r\n",
              0);
  struct response r;
  CHECK_EQ(client_response(c, &r, true), 0);
  CHECK_EQ(r.status, 100);
  client_send(c, "body", 4);
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 405);
  response_free(&r);
  client_close(c);
}

TEST(too_many_or_too_large_headers_get_431) {
  start(NULL);
  /* 101 headers: one above the default limit; 100 pass. */
  static char req[64 << 10];
  for (int n = 100; n <= 101; n++) {
    size_t len = (size_t)sprintf(req, "GET /hello HTTP/1.1\r\nHost: t\r\n");
    for (int i = 1; i < n; i++)
      len += (size_t)sprintf(req + len, "X-H%d: v\r\n", i);
    sprintf(req + len, "\r\n");
    CHECK_EQ(status_of(req), n == 100 ? 200 : 431);
  }
  /* 17 KiB in one header, and in many small ones. */
  size_t len =
      (size_t)sprintf(req, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ");
  memset(req + len, 'a', 17 << 10);
  len += 17 << 10;
  sprintf(req + len, "\r\n\r\n");
  CHECK_EQ(status_of(req), 431);
  len = (size_t)sprintf(req, "GET /hello HTTP/1.1\r\nHost: t\r\n");
  for (int i = 0; i < 80; i++) {
    len += (size_t)sprintf(req + len, "X-%d: ", i);
    memset(req + len, 'b', 220);
    len += 220;
    len += (size_t)sprintf(req + len, "\r\n");
  }
  sprintf(req + len, "\r\n");
  CHECK_EQ(status_of(req), 431);
  /* A 9 KiB target: 414. */
  len = (size_t)sprintf(req, "GET /");
  memset(req + len, 'c', 9 << 10);
  len += 9 << 10;
  sprintf(req + len, " HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK_EQ(status_of(req), 414);
}

/* --- timeouts ---------------------------------------------------------------
 */

TEST(a_trickling_client_is_cut_off_by_the_header_timeout) {
  struct httpd_config cfg;
  httpd_config_init(&cfg);
  cfg.header_timeout = WEFT_SEC(1);
  start(&cfg);
  struct client *c = connect_();
  const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: ";
  client_send(c, req, 0);
  /* One byte every 0.4 s: each read makes progress, the whole does not.
   * The server's answer (a 408, or a reset) makes the socket readable. */
  int64_t t0 = harness_now_ns();
  bool cut = false;
  for (int i = 0; i < 25 && !cut; i++) {
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    cut = poll(&p, 1, 400) == 1 || send(c->fd, "a", 1, MSG_NOSIGNAL) != 1;
  }
  CHECK(cut);
  double secs = (double)(harness_now_ns() - t0) / 1e9;
  printf("  cut off after %.1f s\n", secs);
  CHECK(secs < 5 * harness_timeout_multiplier());
  /* A 408 if it came before the reset. */
  struct response r;
  if (client_response(c, &r, false) == 0) {
    CHECK_EQ(r.status, 408);
    response_free(&r);
  }
  client_close(c);
}

TEST(an_idle_connection_is_closed_by_the_idle_timeout) {
  struct httpd_config cfg;
  httpd_config_init(&cfg);
  cfg.idle_timeout = WEFT_MS(300);
  cfg.header_timeout = WEFT_MS(600);
  start(&cfg);
  /* After a response: the idle timeout. */
  struct client *c = connect_();
  struct response r;
  CHECK_EQ(client_get(c, "/hello", &r), 0);
  response_free(&r);
  int64_t t0 = harness_now_ns();
  CHECK(client_closed(c, 5000));
  int64_t took = harness_now_ns() - t0;
  CHECK(took >= WEFT_MS(250));
  client_close(c);
  /* Before the first request: the header timeout, and no word. */
  c = connect_();
  t0 = harness_now_ns();
  CHECK(client_closed(c, 5000));
  took = harness_now_ns() - t0;
  CHECK(took >= WEFT_MS(500));
  client_close(c);
}

/* --- files ------------------------------------------------------------------
 */

TEST(a_static_file_arrives_whole) {
  start(NULL);
  struct client *c = connect_();
  struct response r;
  CHECK_EQ(client_get(c, "/big.bin", &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK_EQ(r.content_length, (long)sizeof big);
  CHECK(memcmp(r.body, big, sizeof big) == 0);
  CHECK(strcmp(response_header(&r, "Content-Type"),
               "application/octet-stream") == 0);
  CHECK(valid_date(response_header(&r, "Last-Modified")));
  response_free(&r);
  CHECK_EQ(client_get(c, "/page.html?query=1#frag", &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK(strcmp(r.body, "<p>page</p>\n") == 0);
  CHECK(strcmp(response_header(&r, "Content-Type"),
               "text/html; charset=utf-8") == 0);
  response_free(&r);
  CHECK_EQ(client_get(c, "/hello.txt", &r), 0);
  CHECK(strcmp(response_header(&r, "Content-Type"),
               "text/plain; charset=utf-8") == 0);
  response_free(&r);
  /* Percent-encoded names, and directories: their index.html. */
  CHECK_EQ(client_get(c, "/%68ello%2Etxt", &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK(strcmp(r.body, "hello file\n") == 0);
  response_free(&r);
  const char *dirs[] = {"/sub/", "/sub", "//sub//", "/%73ub/"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    CHECK_EQ(client_get(c, dirs[i], &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK(strcmp(r.body, "<p>sub</p>\n") == 0);
    CHECK(strcmp(response_header(&r, "Content-Type"),
                 "text/html; charset=utf-8") == 0);
    response_free(&r);
  }
  /* HEAD of the big file: its length, no body, and the connection goes
   * on in step. */
  client_send(c, "HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n", 0);
  CHECK_EQ(client_response(c, &r, true), 0);
  CHECK_EQ(r.content_length, (long)sizeof big);
  CHECK_EQ(client_get(c, "/hello", &r), 0);
  CHECK(strcmp(r.body, "Hello, world") == 0);
  response_free(&r);
  client_close(c);
}

/* Every way out of the root, by both resolvers: never a file from
 * outside, only 400, 403 or 404. */
static void no_escape(bool no_openat2) {
  struct httpd_config cfg;
  httpd_config_init(&cfg);
  cfg.no_openat2 = no_openat2;
  start(&cfg);
  const char *attacks[] = {
      "/../etc/passwd",
      "/..",
      "/%2e%2e/",
      "/%2e%2e/etc/passwd",
      "/%2E%2E/%2e%2e/etc/passwd",
      "/a/%2E%2E/%2e%2e/",
      "/a/%2E%2E/%2e%2e/etc/passwd",
      "/sub/../../etc/passwd",
      "/sub/%2e%2e%2f%2e%2e%2fetc/passwd",
      "/.%2e/.%2e/etc/passwd",
      "/%2e/hello.txt",
      "/./hello.txt",
      "/hello.txt%00.html",
      "/hello.txt%00",
      "/%00",
      "/etc/passwd",
      "/etc/",
      "/passwd",
      "/sub/up/sub/up/../etc/passwd",
      "/%",
      "/%2",
      "/%zz",
      "/%c0%ae%c0%ae/etc/passwd",
      "http://evil/../etc/passwd",
  };
  struct client *c = NULL;
  for (size_t i = 0; i < sizeof attacks / sizeof *attacks; i++) {
    if (!c)
      c = connect_();
    struct response r;
    CHECK_EQ(client_get(c, attacks[i], &r), 0);
    if (r.status != 400 && r.status != 403 && r.status != 404)
      harness_fail(__FILE__, __LINE__, "%s: %d", attacks[i], r.status);
    if (r.body && strstr(r.body, "root:"))
      harness_fail(__FILE__, __LINE__, "%s: /etc/passwd served", attacks[i]);
    bool closes = r.status == 400;
    response_free(&r);
    if (closes) {
      client_close(c);
      c = NULL;
    }
  }
  client_close(c);
  /* The raw NUL too, which the parser refuses. */
  static const char nul[] = "GET /hello.txt\0.html HTTP/1.1\r\nHost: t\r\n\r\n";
  c = connect_();
  client_send(c, nul, sizeof nul - 1);
  struct response r;
  CHECK_EQ(client_response(c, &r, false), 0);
  CHECK_EQ(r.status, 400);
  response_free(&r);
  client_close(c);
}

TEST(the_root_cannot_be_escaped) { no_escape(false); }

TEST(the_root_cannot_be_escaped_without_openat2) { no_escape(true); }

TEST(links_that_stay_inside_are_followed_by_openat2_only) {
  start(NULL);
  CHECK_EQ(status_of("GET /inside HTTP/1.1\r\nHost: t\r\n\r\n"), 200);
  CHECK_EQ(status_of("GET /sub/up/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"), 200);
  server_stop(&server);
  struct httpd_config cfg;
  httpd_config_init(&cfg);
  cfg.no_openat2 = true;
  cfg.root_fd = httpd_root_open(root_make());
  server_start(&server, &cfg);
  /* Refused: ELOOP (403) for a link as the last component, ENOTDIR
   * (404) for one a directory was expected at. */
  CHECK_EQ(status_of("GET /inside HTTP/1.1\r\nHost: t\r\n\r\n"), 403);
  CHECK_EQ(status_of("GET /sub/up/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"), 404);
  CHECK_EQ(status_of("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"), 200);
}

/* --- draining
 * ----------------------------------------------------------------- */

TEST(a_draining_server_closes_after_the_response) {
  start(NULL);
  struct client *c = connect_();
  struct response r;
  CHECK_EQ(client_get(c, "/hello", &r), 0);
  CHECK(response_header(&r, "Connection") == NULL);
  response_free(&r);
  kill(server.pid, SIGUSR1);
  struct timespec ts = {0, 100 * 1000 * 1000};
  nanosleep(&ts, NULL);
  CHECK_EQ(client_get(c, "/hello", &r), 0);
  CHECK_EQ(r.status, 200);
  CHECK(strcmp(response_header(&r, "Connection"), "close") == 0);
  response_free(&r);
  CHECK(client_closed(c, 5000));
  client_close(c);
}

/* --- many connections -------------------------------------------------------
 */

static void raise_fd_limit(size_t need) {
  struct rlimit rl;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < need) {
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    setrlimit(RLIMIT_NOFILE, &rl);
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  if (rl.rlim_cur < need)
    harness_skip("too few fds allowed");
}

/* Opens n connections that each take the deepest paths of a request (a
 * directory's index, a missing file, a file sent, /hello) and then stay
 * idle: the stack those paths touched stays resident. */
static void open_idle(struct client **cs, int n) {
  for (int i = 0; i < n; i++) {
    cs[i] = connect_();
    const char *paths[] = {"/sub/", "/nothing", "/hello.txt", "/hello"};
    const int statuses[] = {200, 404, 200, 200};
    for (int j = 0; j < 4; j++) {
      struct response r;
      CHECK_EQ(client_get(cs[i], paths[j], &r), 0);
      CHECK_EQ(r.status, statuses[j]);
      response_free(&r);
    }
  }
}

/* A request on a new connection, answered within a second. */
static void prompt_request(void) {
  int64_t t0 = harness_now_ns();
  struct client *c = connect_();
  struct response r;
  CHECK_EQ(client_get(c, "/hello", &r), 0);
  CHECK_EQ(r.status, 200);
  response_free(&r);
  client_close(c);
  CHECK(harness_now_ns() - t0 < WEFT_SEC(1) * harness_timeout_multiplier());
}

static void idle_connections(bool no_openat2) {
  enum { BASE = 200, MORE = 1000 };
  raise_fd_limit(BASE + MORE + 64);
  struct httpd_config cfg;
  httpd_config_init(&cfg);
  cfg.no_openat2 = no_openat2;
  start(&cfg);
  static struct client *cs[BASE + MORE];
  open_idle(cs, BASE);
  size_t rss0 = server_rss(&server);
  open_idle(cs + BASE, MORE);
  size_t rss1 = server_rss(&server);
  double per = (double)(rss1 - rss0) / MORE;
  printf("  %d idle connections: %.0f bytes resident each\n", MORE, per);
  /* A task whose stack stays within one page, and no buffer; the
   * sanitizers' shadow memory and larger frames make the figure theirs. */
  if (!harness_emulated() && !SANITIZED)
    CHECK(per <= 5 << 10);
  prompt_request();
  /* Every idle connection still works. */
  for (int i = 0; i < BASE + MORE; i += 97) {
    struct response r;
    CHECK_EQ(client_get(cs[i], "/hello", &r), 0);
    CHECK_EQ(r.status, 200);
    response_free(&r);
  }
  for (int i = 0; i < BASE + MORE; i++)
    client_close(cs[i]);
}

TEST_TIMEOUT(idle_connections_cost_little_and_delay_nobody, 60) {
  idle_connections(false);
}

TEST_TIMEOUT(idle_connections_cost_little_without_openat2, 60) {
  idle_connections(true);
}

TEST(slowloris_does_not_delay_a_normal_client) {
  enum { SLOW = 300 };
  raise_fd_limit(SLOW + 64);
  start(NULL);
  static struct client *cs[SLOW];
  for (int i = 0; i < SLOW; i++) {
    cs[i] = connect_();
    client_send(cs[i], "GET /hello HTTP/1.1\r\nHost: t\r\n", 0);
  }
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < SLOW; i++)
      client_send(cs[i], "X-a: b\r\n", 0);
    prompt_request();
  }
  for (int i = 0; i < SLOW; i++)
    client_close(cs[i]);
}
