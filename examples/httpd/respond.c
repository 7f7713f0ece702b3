/*
 * The routes and the responses: /hello, the files under the root, and the
 * errors. A response head is written by hand into the connection's out
 * buffer (no printf: its frames would cost every connection's stack a
 * page), and sent with the responses pipelined after it, or at once when a
 * file follows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <weft.h>

#include "conn.h"
#include "date.h"
#include "files.h"

static const char hello_body[] = "Hello, world";

/* A response head being written; starts with HTTPD_RESPONSE_MAX of room. */
struct head {
  char *p;
  char *end;
};

static void put(struct head *h, const char *s, size_t n) {
  /* Every response fits in HTTPD_RESPONSE_MAX by construction; a head
   * that would not is cut short rather than overrun the buffer. */
  if (n > (size_t)(h->end - h->p))
    n = (size_t)(h->end - h->p);
  memcpy(h->p, s, n);
  h->p += n;
}

static void puts_(struct head *h, const char *s) { put(h, s, strlen(s)); }

static void put_u64(struct head *h, uint64_t v) {
  char digits[20];
  size_t n = 0;
  do
    digits[sizeof digits - ++n] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  put(h, digits + sizeof digits - n, n);
}

static const char *reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 431:
    return "Request Header Fields Too Large";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Internal Server Error";
  }
}

/* Starts a response with room for its head, after flushing what out holds
 * if that room is missing. */
static int head_begin(struct httpd_conn *c, struct head *h, int status) {
  struct httpd_buf *b = c->b;
  if (sizeof b->out - b->out_len < HTTPD_RESPONSE_MAX) {
    int rc = httpd_conn_flush(c, 0);
    if (rc < 0)
      return rc;
  }
  h->p = b->out + b->out_len;
  h->end = h->p + HTTPD_RESPONSE_MAX;
  puts_(h, "HTTP/1.1 ");
  put_u64(h, (uint64_t)status);
  put(h, " ", 1);
  puts_(h, reason(status));
  puts_(h, "\r\nServer: weft-httpd\r\nDate: ");
  put(h, httpd_date_now(), HTTPD_DATE_LEN);
  puts_(h, "\r\n");
  return 0;
}

/* Ends the head: the connection's fate, the blank line, and, unless
 * omitted (HEAD), a short body. */
static void head_end(struct httpd_conn *c, struct head *h, const char *body,
                     size_t len) {
  const struct httpd_request *r = &c->b->req;
  if (c->close)
    puts_(h, "Connection: close\r\n");
  else if (r->minor == 0)
    puts_(h, "Connection: keep-alive\r\n");
  puts_(h, "\r\n");
  if (body && !(r->head_done && r->method == HTTP_HEAD))
    put(h, body, len);
  c->b->out_len = (size_t)(h->p - c->b->out);
}

static int answer(struct httpd_conn *c, int status, const char *type,
                  const char *body, size_t len, const char *extra) {
  struct head h;
  int rc = head_begin(c, &h, status);
  if (rc < 0)
    return rc;
  if (extra)
    puts_(&h, extra);
  puts_(&h, "Content-Type: ");
  puts_(&h, type);
  puts_(&h, "\r\nContent-Length: ");
  put_u64(&h, len);
  puts_(&h, "\r\n");
  head_end(c, &h, body, len);
  return 0;
}

/* An error's short text body: "404 Not Found\n". */
static int error(struct httpd_conn *c, int status) {
  char body[64];
  struct head t = {body, body + sizeof body - 1};
  put_u64(&t, (uint64_t)status);
  put(&t, " ", 1);
  puts_(&t, reason(status));
  put(&t, "\n", 1);
  const char *extra = status == 405 ? "Allow: GET, HEAD\r\n" : NULL;
  return answer(c, status, "text/plain; charset=utf-8", body,
                (size_t)(t.p - body), extra);
}

/* The status for a file that cannot be opened. */
static int open_status(int err) {
  switch (err) {
  case -ENOENT:
  case -ENOTDIR:
  case -ENAMETOOLONG:
    return 404;
  case -EACCES:
  case -EPERM:
  case -ELOOP: /* a symbolic link the fallback refuses */
  case -EXDEV: /* a path that leads out of the root */
    return 403;
  default:
    return 500;
  }
}

/* Sends the regular file fd (st): the head now, then the bytes with
 * sendfile(2), which copies them from the page cache to the socket
 * without passing through this process. */
static int send_file(struct httpd_conn *c, int fd, const struct stat *st,
                     const char *name, size_t name_len) {
  struct head h;
  int rc = head_begin(c, &h, 200);
  if (rc < 0)
    return rc;
  puts_(&h, "Content-Type: ");
  puts_(&h, httpd_content_type(name, name_len));
  puts_(&h, "\r\nContent-Length: ");
  put_u64(&h, (uint64_t)st->st_size);
  puts_(&h, "\r\nLast-Modified: ");
  char date[HTTPD_DATE_LEN];
  httpd_date_format(date, st->st_mtim.tv_sec);
  put(&h, date, sizeof date);
  puts_(&h, "\r\n");
  head_end(c, &h, NULL, 0);
  if (c->b->req.method == HTTP_HEAD || st->st_size == 0)
    return 0;
  rc = httpd_conn_flush(c, MSG_MORE);
  if (rc < 0)
    return rc;
  off_t off = 0;
  while (off < st->st_size) {
    ssize_t n = weft_io_sendfile(c->fd, fd, &off, (size_t)(st->st_size - off),
                                 c->cfg->send_timeout);
    if (n < 0)
      return (int)n;
    if (n == 0)
      return -EIO; /* the file shrank: the promised length cannot be met */
  }
  return 0;
}

static int serve_file(struct httpd_conn *c, const char *rel, size_t len) {
  const struct httpd_config *cfg = c->cfg;
  if (cfg->root_fd < 0)
    return error(c, 404);
  int fd = httpd_open_beneath(cfg->root_fd, rel, cfg->no_openat2);
  if (fd < 0)
    return error(c, open_status(fd));
  struct stat st;
  const char *name = rel;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    int dir = fd;
    fd = httpd_open_beneath(dir, "index.html", cfg->no_openat2);
    close(dir);
    if (fd < 0)
      return error(c, open_status(fd));
    name = "index.html";
    len = strlen(name);
    if (fstat(fd, &st) != 0)
      st.st_mode = 0;
  }
  int rc;
  if (!S_ISREG(st.st_mode))
    rc = error(c, 404); /* a device, a FIFO, a socket: not for the web */
  else
    rc = send_file(c, fd, &st, name, len);
  close(fd);
  return rc;
}

int httpd_respond(struct httpd_conn *c) {
  struct httpd_request *r = &c->b->req;
  c->close =
      !r->keep_alive || r->status != 0 || c->hooks->draining(c->hooks->ctx);
  if (r->status)
    return error(c, r->status);
  if (r->method != HTTP_GET && r->method != HTTP_HEAD)
    return error(c, 405);
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(r->url, r->url_len, 0, &u) != 0) {
    c->close = true;
    return error(c, 400);
  }
  char slash[2] = "/"; /* an absolute target without a path */
  char *path = slash;
  size_t len = 1;
  if (u.field_set & (1u << UF_PATH)) {
    path = r->url + u.field_data[UF_PATH].off;
    len = u.field_data[UF_PATH].len;
  }
  if (len == 6 && memcmp(path, "/hello", 6) == 0)
    return answer(c, 200, "text/plain", hello_body, sizeof hello_body - 1,
                  NULL);
  long rel = httpd_path_decode(path, len);
  if (rel < 0) {
    c->close = true;
    return error(c, 400);
  }
  return serve_file(c, path, (size_t)rel);
}
