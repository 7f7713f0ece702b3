/*
 * The tests' client: plain blocking sockets with a receive timeout, no
 * weft, so that what the server does is seen from outside it.
 */
#ifndef HTTPD_TEST_CLIENT_H
#define HTTPD_TEST_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct client {
  int fd;
  size_t len; /* bytes in buf not yet taken */
  char buf[1 << 17];
};

struct response {
  int status;
  char head[16384];    /* NUL-terminated, the blank line excluded */
  long content_length; /* -1 without the header */
  char *body;          /* malloc'd, NUL-terminated; NULL without a body */
  size_t body_len;
};

/* Connects to 127.0.0.1:port; NULL when the connection fails. Reads wait
 * 10 s at most (scaled by the harness's multiplier). */
struct client *client_open(int port);

/* The same, with the receive buffer set to rcvbuf bytes before the
 * connection is made (a small one keeps a large response in flight at the
 * server); 0 leaves the kernel's. */
struct client *client_open_rcvbuf(int port, int rcvbuf);
void client_close(struct client *c);

/* Sends all of s (len bytes, or strlen when len is 0). */
void client_send(struct client *c, const char *s, size_t len);

/* Reads one response: its head, then Content-Length bytes of body (none
 * when head_only, for HEAD). Returns 0, or -1 when the connection ended
 * before a whole response (EOF, reset, timeout). */
int client_response(struct client *c, struct response *r, bool head_only);
void response_free(struct response *r);

/* The value of the header name in r (a NUL-terminated copy in a buffer of
 * the calling thread, valid until its next call), or NULL. */
const char *response_header(const struct response *r, const char *name);

/* Whether the server closed the connection (EOF or reset) within ms,
 * every byte it sent before having been taken by client_response. */
bool client_closed(struct client *c, int ms);

/* Sends "GET path HTTP/1.1" with a Host header and reads the response. */
int client_get(struct client *c, const char *path, struct response *r);

/* The resident memory (VmRSS) of the server process pid, in bytes. */
size_t client_rss_of(pid_t pid);

/* Whether the tests run under ASan or TSan, whose shadow memory and larger
 * frames make a measure of memory theirs. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#endif
