/*
 * A connection, as serve.c and respond.c share it. The connection itself
 * (struct httpd_conn) lives on its task's stack; its buffers
 * (struct httpd_buf) are taken when a request begins to arrive and given
 * back when the connection goes idle, so that an idle connection holds
 * none.
 */
#ifndef HTTPD_CONN_H
#define HTTPD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "request.h"

#define HTTPD_IN_BYTES  4096 /* one read; the parser consumes it all */
#define HTTPD_OUT_BYTES 4096 /* responses gathered before a write */
/* The longest response head (with the short bodies of /hello and of the
 * errors) httpd writes: a response starts only with this much room. */
#define HTTPD_RESPONSE_MAX 512

struct httpd_buf {
  struct httpd_buf *next; /* in the thread's cache of free buffers */
  size_t size;            /* bytes allocated, this header included */
  struct httpd_request req;
  size_t in_pos, in_len; /* in[in_pos, in_len) is not parsed yet */
  size_t out_len;        /* out[0, out_len) is not sent yet */
  char in[HTTPD_IN_BYTES];
  char out[HTTPD_OUT_BYTES];
  char url[]; /* cfg->max_request_line + 1 */
};

struct httpd_conn {
  int fd;
  const struct httpd_config *cfg;
  const struct httpd_hooks *hooks;
  struct httpd_buf *b; /* NULL while idle */
  bool close;          /* close after the current response */
};

/* Sends what out holds, with weft_io_send's extra flags (MSG_MORE before
 * a file). Returns 0, or a negative errno: the connection must end. */
int httpd_conn_flush(struct httpd_conn *c, int flags);

/* Answers c->b->req: a response into out (sent later, with the responses
 * to the requests pipelined behind it), or a head and a file sent at once.
 * Sets c->close when the connection must end after it. Returns 0, or a
 * negative errno when it must end now (a write failed). */
int httpd_respond(struct httpd_conn *c);

#endif
