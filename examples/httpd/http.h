/*
 * The HTTP/1.1 side of httpd: one call serves one connection until it ends.
 * It knows nothing of the cluster: the caller gives it two hooks, one that
 * waits for an idle connection to become readable and one that says
 * whether the server is draining, so that the protocol runs (and is
 * tested, and fuzzed) in any weft task over any stream socket.
 *
 * What a connection does (serve.c):
 *  - It waits for its first request, and between requests, through
 *    hooks->idle, holding no buffer: an idle connection costs its task's
 *    stack and nothing else. The first request must start within
 *    header_timeout of the accept; a later one within idle_timeout of the
 *    previous response; otherwise the connection is closed without a word.
 *  - Once bytes arrive, it takes a buffer and reads one request: its head
 *    must be complete within header_timeout of its start (a client that
 *    trickles a byte now and then is cut off with 408), and its body, if
 *    any, within header_timeout more. Bodies (Content-Length or chunked)
 *    up to max_body are read and thrown away; above, 413 and close. A
 *    request's bytes on the wire are bounded too (its limits, twice
 *    max_body for a chunked body's framing, and 64 KiB), so that what no
 *    limit counts (chunk extensions, say) cannot run on: 413 or 431.
 *  - Pipelined requests are answered in order, their responses gathered
 *    into one write while the next request is already in the buffer.
 *  - It closes after a response when the client asked for it
 *    ("Connection: close", or HTTP/1.0 without keep-alive), after an error
 *    that leaves the stream in doubt (400, 408, 413, 414, 431, 505), and
 *    after a response written while hooks->draining said so (which then
 *    says "Connection: close"). A drain that begins after a response was
 *    written does not close the connection at once, which would drop a
 *    request the client sent meanwhile: the next hooks->idle ends it
 *    (weft_worker_idle gives such a request a last moment to arrive, and
 *    it is answered with "Connection: close").
 *    Before closing after a response it shuts its side down and reads what
 *    the client still sends for a moment (a "lingering close"), so that
 *    the kernel does not answer unread bytes with a reset that would
 *    destroy the response in flight.
 *
 * Routes: GET and HEAD of /hello (the 12 bytes "Hello, world", text/plain),
 * and of the files under the root (respond.c, files.c); other methods get
 * 405 with "Allow: GET, HEAD".
 *
 * The caller must ignore SIGPIPE: files are sent with sendfile(2), which
 * raises it when the peer has gone.
 */
#ifndef HTTPD_HTTP_H
#define HTTPD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct httpd_config {
  /* The directory files are served from, opened with httpd_root_open;
   * -1 serves no files (every path but /hello is 404). */
  int root_fd;
  int64_t header_timeout;  /* ns: a request's head, then its body */
  int64_t idle_timeout;    /* ns: between requests on a keep-alive conn */
  int64_t send_timeout;    /* ns: without progress in writing a response */
  int64_t linger_timeout;  /* ns: reading what comes after a final response */
  size_t max_request_line; /* bytes of the request target: above, 414 */
  size_t max_header_bytes; /* bytes of the header fields: above, 431 */
  unsigned max_headers;    /* header fields: above, 431 */
  uint64_t max_body;       /* bytes of a request body: above, 413 */
  /* Resolve paths one component at a time with O_NOFOLLOW even where
   * openat2(2) exists (tests run both ways; see files.c). */
  bool no_openat2;
};

/* Fills cfg with the defaults: no root, header_timeout 10 s, idle_timeout
 * 60 s, send_timeout 60 s, linger_timeout 2 s, request line 8 KiB, header
 * fields 16 KiB, 100 headers, bodies 1 MiB. */
void httpd_config_init(struct httpd_config *cfg);

/* Opens dir as a root for httpd_config.root_fd. Returns the fd, or a
 * negative errno (-ENOTDIR, -ENOENT, ...). */
int httpd_root_open(const char *dir);

struct httpd_hooks {
  /* Waits up to timeout ns for fd to become readable. Returns 0 when it
   * is (or the peer closed), -ESHUTDOWN when the server drains, or another
   * negative errno (-ETIMEDOUT, -ECANCELED, ...): the connection is then
   * closed. weft_worker_idle in a cluster. */
  int (*idle)(void *ctx, int fd, int64_t timeout);
  /* Whether the server drains: a response written while it does says
   * "Connection: close", and the connection ends after it.
   * weft_worker_draining in a cluster. */
  bool (*draining)(void *ctx);
  void *ctx;
};

/* Prepares the calling thread to serve (the time zone, the cached date),
 * so that no connection's small stack pays for the first call. Call once
 * per thread before httpd_serve. */
void httpd_thread_init(void);

/*
 * httpd_serve — serve the connected stream socket fd until the connection
 * ends. From a weft task (each wait blocks only the task). Never closes fd
 * (the caller does, as weft's cluster does after its handler), but may
 * shut down its writing side. Returns nothing: a connection's end is not
 * the caller's business.
 *
 * Stack: httpd_serve keeps its buffers on the heap, and only while a
 * request is being read or answered; what it uses of the task's stack
 * fits within HTTPD_STACK_BYTES.
 */
void httpd_serve(int fd, const struct httpd_config *cfg,
                 const struct httpd_hooks *hooks);

/* The stack a connection's task should be given (weft's smallest, 16 KiB;
 * more under AddressSanitizer, whose frames are larger). */
#if defined(__SANITIZE_ADDRESS__)
#define HTTPD_STACK_BYTES ((size_t)128 << 10)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HTTPD_STACK_BYTES ((size_t)128 << 10)
#endif
#endif
#ifndef HTTPD_STACK_BYTES
#define HTTPD_STACK_BYTES ((size_t)16 << 10)
#endif

#endif
