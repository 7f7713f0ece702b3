/*
 * The parser's callbacks. http_parser hands over the target and each
 * header's name and value in as many pieces as the reads cut them into,
 * so everything here accumulates, and a callback that finds a limit
 * passed sets the status and returns nonzero, which stops the parser.
 */
#define _GNU_SOURCE
#include "request.h"

#include <string.h>
#include <strings.h>

enum { LAST_NONE, LAST_NAME, LAST_VALUE };
enum { H_OTHER, H_HOST, H_EXPECT };

/* What on_headers_complete returns to stop the parser: 1 and 2 mean "no
 * body" and "upgrade" there, any other nonzero value is an error. */
enum { STOP_HEAD = 3 };

static struct httpd_request *req(http_parser *p) { return p->data; }

static int fail(struct httpd_request *r, int status) {
  r->status = status;
  return 1;
}

static int on_message_begin(http_parser *p) {
  req(p)->started = true;
  return 0;
}

/* http_parser_parse_url keeps offsets in 16 bits. */
#define URL_MAX 65535

static int on_url(http_parser *p, const char *at, size_t len) {
  struct httpd_request *r = req(p);
  size_t max = r->cfg->max_request_line;
  if (max > URL_MAX)
    max = URL_MAX;
  if (len > max - r->url_len)
    return fail(r, 414);
  memcpy(r->url + r->url_len, at, len);
  r->url_len += len;
  r->url[r->url_len] = '\0';
  return 0;
}

/* The header that just ended: what it said, if it is one of interest. */
static int end_header(struct httpd_request *r) {
  if (r->which == H_HOST && ++r->hosts > 1)
    return fail(r, 400);
  if (r->which == H_EXPECT) {
    size_t n = r->value_len;
    while (n > 0 && (r->value[n - 1] == ' ' || r->value[n - 1] == '\t'))
      n--;
    if (n == 12 && strncasecmp(r->value, "100-continue", 12) == 0)
      r->expect_continue = true;
  }
  return 0;
}

static int count(struct httpd_request *r, size_t len) {
  if (len > r->cfg->max_header_bytes - r->header_bytes)
    return fail(r, 431);
  r->header_bytes += len;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  struct httpd_request *r = req(p);
  if (r->last != LAST_NAME) {
    if (r->last == LAST_VALUE && end_header(r))
      return 1;
    if (++r->headers > r->cfg->max_headers)
      return fail(r, 431);
    r->name_len = 0;
    r->value_len = 0;
    r->last = LAST_NAME;
    /* The ": " and CRLF around each field count too. */
    if (count(r, 4))
      return 1;
  }
  if (count(r, len))
    return 1;
  /* A name longer than the buffer is none of interest: name_len then
   * stays above its size. */
  if (r->name_len > sizeof r->name || len > sizeof r->name - r->name_len)
    r->name_len = sizeof r->name + 1;
  else {
    memcpy(r->name + r->name_len, at, len);
    r->name_len += (unsigned char)len;
  }
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  struct httpd_request *r = req(p);
  if (r->last != LAST_VALUE) {
    r->last = LAST_VALUE;
    r->which = H_OTHER;
    if (r->name_len == 4 && strncasecmp(r->name, "host", 4) == 0)
      r->which = H_HOST;
    else if (r->name_len == 6 && strncasecmp(r->name, "expect", 6) == 0)
      r->which = H_EXPECT;
  }
  if (count(r, len))
    return 1;
  if (len > sizeof r->value - r->value_len)
    r->value_len = sizeof r->value; /* too long to be 100-continue */
  else {
    memcpy(r->value + r->value_len, at, len);
    r->value_len += (unsigned char)len;
  }
  return 0;
}

static int on_headers_complete(http_parser *p) {
  struct httpd_request *r = req(p);
  if (r->last == LAST_VALUE && end_header(r))
    return STOP_HEAD;
  r->last = LAST_NONE;
  r->head_done = true;
  r->method = p->method;
  r->major = p->http_major;
  r->minor = p->http_minor;
  r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
  if (r->major != 1) {
    fail(r, 505);
    return STOP_HEAD;
  }
  if (r->minor >= 1 && r->hosts == 0) {
    fail(r, 400); /* RFC 9112 3.2: a 1.1 request without Host */
    return STOP_HEAD;
  }
  bool chunked = p->flags & F_CHUNKED;
  bool has_length = p->flags & F_CONTENTLENGTH;
  if (has_length && p->content_length > r->cfg->max_body) {
    fail(r, 413);
    return STOP_HEAD;
  }
  r->expect_continue =
      r->expect_continue && (chunked || (has_length && p->content_length));
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  struct httpd_request *r = req(p);
  (void)at;
  if (len > r->cfg->max_body - r->body_bytes)
    return fail(r, 413);
  r->body_bytes += len;
  return 0;
}

static int on_message_complete(http_parser *p) {
  struct httpd_request *r = req(p);
  if (r->last == LAST_VALUE && end_header(r)) /* a trailer's */
    return 1;
  if (p->upgrade)
    r->keep_alive = false;
  r->done = true;
  /* Stop here: what follows is the next request, read after this one is
   * answered. */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void httpd_request_start(struct httpd_request *r,
                         const struct httpd_config *cfg, char *url) {
  memset(r, 0, sizeof *r);
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = r;
  r->cfg = cfg;
  r->url = url;
  url[0] = '\0';
}

/* The bytes a request may take on the wire: its limits, and room for the
 * framing that no limit counts (a chunked body's chunk sizes and
 * extensions, which the parser lets run on, optional whitespace). A
 * request past it is refused as too large, whatever it was doing. */
static uint64_t wire_max(const struct httpd_config *cfg) {
  return (uint64_t)cfg->max_request_line + cfg->max_header_bytes +
         2 * cfg->max_body + (64 << 10);
}

size_t httpd_request_feed(struct httpd_request *r, const char *data,
                          size_t len) {
  size_t n = http_parser_execute(&r->parser, &settings, data, len);
  r->wire_bytes += n;
  if (r->done || r->status)
    return n;
  if (r->wire_bytes > wire_max(r->cfg)) {
    r->status = r->head_done ? 413 : 431;
    return n;
  }
  enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
  if (e == HPE_HEADER_OVERFLOW) /* its own cap, on chunk headers too */
    r->status = r->head_done ? 413 : 431;
  else if (e != HPE_OK)
    r->status = 400;
  else if (n < len)
    r->status = 400; /* stopped without saying why: cannot go on */
  return n;
}
