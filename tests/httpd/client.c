#define _GNU_SOURCE
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

struct client *client_open(int port) {
  return client_open_rcvbuf(port, 0);
}

struct client *client_open_rcvbuf(int port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  if (rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return NULL;
  }
  double secs = 10 * harness_timeout_multiplier();
  struct timeval tv = {(time_t)secs, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct client *c = malloc(sizeof *c);
  CHECK(c != NULL);
  c->fd = fd;
  c->len = 0;
  return c;
}

void client_close(struct client *c) {
  if (!c)
    return;
  close(c->fd);
  free(c);
}

void client_send(struct client *c, const char *s, size_t len) {
  if (len == 0)
    len = strlen(s);
  while (len > 0) {
    ssize_t n = send(c->fd, s, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      harness_fail(__FILE__, __LINE__, "send: %s", strerror(errno));
    s += n;
    len -= (size_t)n;
  }
}

/* Reads more into buf; returns the count, 0 at EOF, -1 on error. */
static ssize_t fill(struct client *c) {
  if (c->len == sizeof c->buf)
    return -1;
  ssize_t n;
  do
    n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
  while (n < 0 && errno == EINTR);
  if (n > 0)
    c->len += (size_t)n;
  return n;
}

static void take(struct client *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

int client_response(struct client *c, struct response *r, bool head_only) {
  memset(r, 0, sizeof *r);
  r->content_length = -1;
  char *end;
  while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
    if (fill(c) <= 0)
      return -1;
  size_t head = (size_t)(end - c->buf);
  CHECK(head < sizeof r->head);
  memcpy(r->head, c->buf, head);
  r->head[head] = '\0';
  take(c, head + 4);
  CHECK(sscanf(r->head, "HTTP/1.1 %d ", &r->status) == 1);
  const char *cl = response_header(r, "Content-Length");
  if (cl)
    r->content_length = strtol(cl, NULL, 10);
  if (head_only || r->content_length <= 0)
    return 0;
  size_t want = (size_t)r->content_length;
  r->body = malloc(want + 1);
  CHECK(r->body != NULL);
  while (r->body_len < want) {
    if (c->len == 0 && fill(c) <= 0)
      return -1;
    size_t n = c->len < want - r->body_len ? c->len : want - r->body_len;
    memcpy(r->body + r->body_len, c->buf, n);
    r->body_len += n;
    take(c, n);
  }
  r->body[want] = '\0';
  return 0;
}

void response_free(struct response *r) {
  free(r->body);
  r->body = NULL;
}

const char *response_header(const struct response *r, const char *name) {
  static __thread char value[1024]; /* the load threads call it at once */
  size_t nlen = strlen(name);
  const char *line = strstr(r->head, "\r\n");
  while (line) {
    line += 2;
    if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
      const char *v = line + nlen + 1;
      while (*v == ' ')
        v++;
      const char *e = strstr(v, "\r\n");
      size_t n = e ? (size_t)(e - v) : strlen(v);
      if (n >= sizeof value)
        n = sizeof value - 1;
      memcpy(value, v, n);
      value[n] = '\0';
      return value;
    }
    line = strstr(line, "\r\n");
  }
  return NULL;
}

bool client_closed(struct client *c, int ms) {
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  int64_t deadline = harness_now_ns() + (int64_t)ms * 1000000;
  for (;;) {
    int64_t left = (deadline - harness_now_ns()) / 1000000;
    if (left < 0)
      return false;
    int rc = poll(&p, 1, (int)left);
    if (rc == 0)
      return false;
    if (rc < 0 && errno == EINTR)
      continue;
    char tmp[4096];
    ssize_t n = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
      return true;
    if (n > 0)
      harness_fail(__FILE__, __LINE__, "%zd unexpected bytes: %.*s", n, (int)n,
                   tmp);
  }
}

int client_get(struct client *c, const char *path, struct response *r) {
  char req[1024];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
  client_send(c, req, 0);
  return client_response(c, r, false);
}

size_t client_rss_of(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  size_t kib = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %zu kB", &kib) == 1)
      break;
  fclose(f);
  return kib << 10;
}
