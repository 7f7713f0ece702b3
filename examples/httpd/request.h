/*
 * One request, read through http_parser with httpd's limits: the parser
 * checks the syntax (and refuses the ambiguous framings that smuggling
 * relies on: Content-Length beside Transfer-Encoding, a Transfer-Encoding
 * that does not end in chunked); this file counts what the limits count
 * and keeps the little httpd needs: the method, the version, the target,
 * keep-alive, Expect and Host.
 */
#ifndef HTTPD_REQUEST_H
#define HTTPD_REQUEST_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct httpd_request {
  http_parser parser;
  const struct httpd_config *cfg;
  /* What the request says, once head_done. */
  unsigned method; /* enum http_method */
  unsigned short major, minor;
  bool keep_alive;      /* the client keeps the connection (its version, its
                         * Connection header; false after an Upgrade) */
  bool expect_continue; /* "Expect: 100-continue" with a body to come */
  /* Where the reading is. */
  bool started;   /* the first byte of the request line was seen */
  bool head_done; /* the head is complete */
  bool done;      /* the whole message is (the parser is paused after it) */
  int status;     /* an error to answer with, then close; 0 while none */
  /* Counts against the limits. */
  unsigned headers;
  size_t header_bytes;
  uint64_t body_bytes;
  uint64_t wire_bytes; /* all the request's bytes, framing included */
  /* The header being read: its name (for the few that matter) and value. */
  unsigned char last;  /* the previous callback: 0 none, 1 name, 2 value */
  unsigned char which; /* a header of interest, or 0 */
  unsigned char name_len, value_len;
  unsigned hosts;
  char name[8];
  char value[16];
  /* The request target, NUL-terminated: cfg->max_request_line + 1 bytes
   * the caller gives. */
  char *url;
  size_t url_len;
};

/* Makes r ready to read a request, with url as the target's storage. */
void httpd_request_start(struct httpd_request *r,
                         const struct httpd_config *cfg, char *url);

/* Feeds len (> 0) bytes of the connection to r. Returns how many it took:
 * all of them unless the message is done (the rest belongs to the next
 * request) or r->status was set. */
size_t httpd_request_feed(struct httpd_request *r, const char *data,
                          size_t len);

#endif
