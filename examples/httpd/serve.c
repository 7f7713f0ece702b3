/*
 * A connection's life: wait idle without a buffer, read a request within
 * its deadline, answer it, and again, until the client, an error, a
 * timeout or a drain ends it. http.h states the rules; this file keeps
 * them.
 *
 * Invariant: c->b is NULL exactly while the connection waits idle, and
 * out is empty whenever the task waits to read (a client that waits for a
 * response is never made to wait for its own next request).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "conn.h"
#include "date.h"

void httpd_config_init(struct httpd_config *cfg) {
  *cfg = (struct httpd_config){
      .root_fd = -1,
      .header_timeout = WEFT_SEC(10),
      .idle_timeout = WEFT_SEC(60),
      .send_timeout = WEFT_SEC(60),
      .linger_timeout = WEFT_SEC(2),
      .max_request_line = 8 << 10,
      .max_header_bytes = 16 << 10,
      .max_headers = 100,
      .max_body = 1 << 20,
  };
}

int httpd_root_open(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

void httpd_thread_init(void) {
  tzset();
  httpd_date_now();
}

/* What is left until deadline, as a timeout (0 once it has passed: a
 * wait then only looks). */
static int64_t until(int64_t deadline) {
  int64_t left = deadline - weft_now();
  return left > 0 ? left : 0;
}

/* Sets at as the calling task's deadline, or keeps the one it has when that
 * comes first (a caller may bound a whole connection); returns the one it
 * had, to put back. */
static int64_t deadline_within(int64_t at) {
  int64_t outer = weft_deadline();
  if (outer == WEFT_FOREVER || at < outer)
    weft_deadline_set(at, NULL);
  return outer;
}

/* --- buffers: a few free ones kept per thread -------------------------- */

#define CACHE_MAX 32

static __thread struct {
  struct httpd_buf *head;
  unsigned n;
} cache;

static struct httpd_buf *buf_get(const struct httpd_config *cfg) {
  size_t size = sizeof(struct httpd_buf) + cfg->max_request_line + 1;
  struct httpd_buf *b = cache.head;
  if (b && b->size == size) {
    cache.head = b->next;
    cache.n--;
  } else {
    b = malloc(size);
    if (!b)
      return NULL;
    b->size = size;
  }
  b->in_pos = b->in_len = b->out_len = 0;
  return b;
}

static void buf_put(struct httpd_buf *b) {
  if (!b)
    return;
  if (cache.n == CACHE_MAX) {
    free(b);
    return;
  }
  b->next = cache.head;
  cache.head = b;
  cache.n++;
}

/* --- writing ------------------------------------------------------------ */

int httpd_conn_flush(struct httpd_conn *c, int flags) {
  struct httpd_buf *b = c->b;
  if (b->out_len == 0)
    return 0;
  ssize_t n =
      weft_io_sendall(c->fd, b->out, b->out_len, flags, c->cfg->send_timeout);
  if (n < 0)
    return (int)n;
  b->out_len = 0;
  return 0;
}

/* Flushes under the deadline the caller had before a request's, so that
 * sending the answers to earlier requests is not counted against the time
 * of the one being read. */
static int flush_outside(struct httpd_conn *c, int64_t outer) {
  if (c->b->out_len == 0)
    return 0;
  int64_t inner;
  weft_deadline_set(outer, &inner);
  int rc = httpd_conn_flush(c, 0);
  weft_deadline_set(inner, NULL);
  return rc;
}

/* --- reading one request ------------------------------------------------- */

/* Reads the request that starts at c->b->in[in_pos] (more of it from the
 * socket as needed) until it is complete or has failed with a status to
 * answer, under the task's deadline, which read_request sets. outer is
 * the deadline to restore. Returns 0 (answer it), or -1 when the
 * connection is to end without a word: the client closed, or sent nothing
 * before the deadline, or a read failed. */
static int read_within(struct httpd_conn *c, int64_t outer) {
  struct httpd_buf *b = c->b;
  struct httpd_request *r = &b->req;
  const struct httpd_config *cfg = c->cfg;
  bool body = false, continued = false;
  httpd_request_start(r, cfg, b->url);
  for (;;) {
    if (b->in_pos < b->in_len) {
      b->in_pos +=
          httpd_request_feed(r, b->in + b->in_pos, b->in_len - b->in_pos);
      if (r->done || r->status)
        return 0;
      if (r->head_done && !body) {
        /* The body gets a deadline of its own. */
        body = true;
        weft_deadline_set(outer, NULL);
        deadline_within(weft_now() + cfg->header_timeout);
      }
      if (r->expect_continue && !continued) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        continued = true;
        if (b->out_len + sizeof cont - 1 > sizeof b->out &&
            flush_outside(c, outer) < 0)
          return -1;
        memcpy(b->out + b->out_len, cont, sizeof cont - 1);
        b->out_len += sizeof cont - 1;
      }
    }
    b->in_pos = b->in_len = 0;
    if (flush_outside(c, outer) < 0)
      return -1;
    /* A read whose deadline has passed still takes what is there: a
     * client that keeps sending is stopped here, not by the read. */
    ssize_t n = weft_now() < weft_deadline()
                    ? weft_io_recv(c->fd, b->in, sizeof b->in, 0, WEFT_FOREVER)
                    : -ETIMEDOUT;
    if (n > 0) {
      b->in_len = (size_t)n;
      continue;
    }
    if (n == -ETIMEDOUT && r->started) {
      r->status = 408;
      return 0;
    }
    return -1;
  }
}

/* A request's head must arrive within header_timeout of start, however
 * many reads it takes: one deadline spans them all. */
static int read_request(struct httpd_conn *c, int64_t start) {
  int64_t outer = deadline_within(start + c->cfg->header_timeout);
  int rc = read_within(c, outer);
  weft_deadline_set(outer, NULL);
  return rc;
}

/* Drops the empty lines a client may send between requests (RFC 9112
 * 2.2), and the LF the parser leaves unread after a message without a
 * body. Returns whether a request's bytes remain. */
static bool more_buffered(struct httpd_buf *b) {
  while (b->in_pos < b->in_len &&
         (b->in[b->in_pos] == '\r' || b->in[b->in_pos] == '\n'))
    b->in_pos++;
  return b->in_pos < b->in_len;
}

/* The end of a connection after a final response. Closing a socket that
 * has unread bytes makes the kernel send a reset, which may reach the
 * client before it has read the response and destroy it there; so when
 * bytes may still come (an error cut the request short, pipelined
 * requests follow, some are pending), the writing side is shut and what
 * comes is read and dropped, until the client closes or for
 * linger_timeout at most. */
static void finish(struct httpd_conn *c, bool error) {
  struct httpd_buf *b = c->b;
  if (httpd_conn_flush(c, 0) < 0)
    return;
  if (!error && !more_buffered(b) &&
      weft_io_recv(c->fd, b->in, 1, MSG_PEEK, 0) == -ETIMEDOUT) {
    shutdown(c->fd, SHUT_WR);
    return;
  }
  shutdown(c->fd, SHUT_WR);
  int64_t outer = deadline_within(weft_now() + c->cfg->linger_timeout);
  for (size_t total = 0; total < ((size_t)16 << 20);) {
    ssize_t n = weft_io_recv(c->fd, b->in, sizeof b->in, 0, WEFT_FOREVER);
    if (n <= 0)
      break;
    total += (size_t)n;
  }
  weft_deadline_set(outer, NULL);
}

void httpd_serve(int fd, const struct httpd_config *cfg,
                 const struct httpd_hooks *hooks) {
  struct httpd_conn c = {.fd = fd, .cfg = cfg, .hooks = hooks};
  /* The first request is due within header_timeout of the accept; each
   * later one starts when its first bytes arrive. */
  int64_t start = weft_now();
  for (bool first = true;; first = false) {
    if (!c.b || !more_buffered(c.b)) {
      if (c.b && httpd_conn_flush(&c, 0) < 0)
        break;
      buf_put(c.b);
      c.b = NULL;
      int64_t wait =
          first ? until(start + cfg->header_timeout) : cfg->idle_timeout;
      if (hooks->idle(hooks->ctx, fd, wait) != 0)
        break;
      c.b = buf_get(cfg);
      if (!c.b)
        break;
      if (!first)
        start = weft_now();
    } else {
      start = weft_now();
    }
    if (read_request(&c, start) < 0)
      break;
    bool error = c.b->req.status != 0;
    if (httpd_respond(&c) < 0)
      break;
    /* A drain that began after the response was written (it did not say
     * "Connection: close") is left to the idle hook, which gives the
     * client's next request, perhaps on its way, a moment to come: to
     * close now would drop it unanswered. */
    if (c.close) {
      finish(&c, error);
      break;
    }
  }
  buf_put(c.b);
}
