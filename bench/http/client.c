/*
 * bench-http-client: the HTTP benchmarks' own helper (bench/http/http.sh
 * runs it; wrk does the load). Plain C and epoll, no weft: it measures
 * servers, weft's among them, and must treat them all alike.
 *
 *   bench-http-client port
 *       Prints a free TCP port on 127.0.0.1 (bound to port 0, then closed).
 *   bench-http-client children PID
 *       Prints the ids of PID's child processes (a server's workers), one a
 *       line.
 *   bench-http-client check PORT PATH FILE LABEL
 *       GETs PATH twice on one keep-alive connection and checks that both
 *       answers are 200 with FILE's bytes as their body; prints one comment
 *       line with the headers' names and the response's size, so that
 *       servers can be compared by what they send. Exit status 1 if not.
 *   bench-http-client idle PORT CONNS PID NAME [SETTLE-MS]
 *       BenchmarkHTTPIdle: the resident memory an idle keep-alive
 *       connection costs the server whose supervisor (or nginx master) is
 *       PID (or PID itself, if it has no children, as Go's server). The
 *       connections come from 127.0.0.2, 127.0.0.3, ..., 20,000 from
 *       each. Warms the workers up (256 connections with one GET each,
 *       closed), sums the VmRSS of PID's children (the workers) once it
 *       holds still, opens CONNS connections that each send one GET /hello
 *       and read the whole answer, waits SETTLE-MS (default 2000) with all
 *       of them idle, sums again and prints NAME's row: (after - before) /
 *       CONNS as B/conn.
 *       The row is printed only if every connection got its answer and is
 *       still open, unread and quiet when the memory is read.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Connections being opened or waiting for their answer at once: few enough
 * that a listen backlog of 511 (nginx's default) never overflows, so that
 * no SYN is dropped and retried a second later. */
enum { IN_FLIGHT = 256 };

#ifndef IP_BIND_ADDRESS_NO_PORT /* Linux 4.2's; not in every libc's headers */
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Connections from one source address (start_one). */
enum { PER_SOURCE = 20000 };

/* Connections of the warm-up before the first reading of memory. */
enum { WARM_UP = 256 };

/* Room for a whole answer to GET /hello; a bigger one is an error. */
enum { ANSWER_MAX = 1024 };

static const char hello_request[] =
    "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char hello_body[] = "Hello, world";

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_port(const char *s) {
  char *end;
  long p = strtol(s, &end, 10);
  return *s && !*end && p > 0 && p < 65536 ? (int)p : -1;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  return sa;
}

/* Raises the soft limit on open files to the hard one; returns it. */
static rlim_t raise_fd_limit(rlim_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_max < want) { /* root may raise the hard limit too */
    struct rlimit more = {want, want};
    if (setrlimit(RLIMIT_NOFILE, &more) == 0)
      return want;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || getrlimit(RLIMIT_NOFILE, &rl))
      return 0;
  }
  return rl.rlim_cur;
}

/* ---- answers ------------------------------------------------------------ */

struct answer {
  int status;
  size_t head_len; /* through the blank line */
  size_t body_len; /* Content-Length */
};

/* Finds a header's value in head (which ends with the blank line); NULL if
 * absent. The name is matched without regard to case. */
static const char *header_value(const char *head, size_t len, const char *name,
                                size_t *value_len) {
  size_t name_len = strlen(name);
  const char *p = memchr(head, '\n', len), *end = head + len;
  while (p && ++p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol)
      break;
    if ((size_t)(eol - p) > name_len && p[name_len] == ':' &&
        strncasecmp(p, name, name_len) == 0) {
      const char *v = p + name_len + 1;
      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      const char *ve = eol;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
        ve--;
      *value_len = (size_t)(ve - v);
      return v;
    }
    p = eol;
  }
  return NULL;
}

/* Parses the head of an answer in buf[0..len): 1 with *a filled when the
 * head is complete, 0 when more bytes are needed, -1 when it is not an
 * HTTP/1.1 answer with a Content-Length (both servers send one for what the
 * benchmarks ask). */
static int parse_answer(const char *buf, size_t len, struct answer *a) {
  const char *blank = memmem(buf, len, "\r\n\r\n", 4);
  if (!blank)
    return len > 64 * 1024 ? -1 : 0;
  a->head_len = (size_t)(blank - buf) + 4;
  if (a->head_len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 ||
      !isdigit((unsigned char)buf[9]))
    return -1;
  a->status = atoi(buf + 9);
  size_t vlen;
  const char *v = header_value(buf, a->head_len, "Content-Length", &vlen);
  if (!v || vlen == 0 || vlen > 18)
    return -1;
  a->body_len = 0;
  for (size_t i = 0; i < vlen; i++) {
    if (!isdigit((unsigned char)v[i]))
      return -1;
    a->body_len = a->body_len * 10 + (size_t)(v[i] - '0');
  }
  return 1;
}

/* ---- processes ---------------------------------------------------------- */

/* The parent of process pid, from /proc/pid/stat, or -1. */
static long parent_of(long pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  /* The command name is in parentheses and may hold anything: the fields
   * after it start after the last ')'. */
  char *p = strrchr(buf, ')');
  long ppid;
  char state;
  if (!p || sscanf(p + 1, " %c %ld", &state, &ppid) != 2)
    return -1;
  return ppid;
}

/* Stores up to max children of pid in kids; returns how many there are.
 * Scans /proc, as /proc/pid/task/tid/children needs a kernel option. */
static int children_of(long pid, long *kids, int max) {
  DIR *d = opendir("/proc");
  if (!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    char *end;
    long p = strtol(e->d_name, &end, 10);
    if (*end || p <= 0 || parent_of(p) != pid)
      continue;
    if (n < max)
      kids[n] = p;
    n++;
  }
  closedir(d);
  return n;
}

/* VmRSS of process pid in KiB, or -1. */
static long rss_kib(long pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kib = strtol(line + 6, NULL, 10);
      break;
    }
  fclose(f);
  return kib;
}

enum { MAX_WORKERS = 64 };

struct workers {
  int count;
  long pid[MAX_WORKERS];
  long rss_kib; /* their sum */
};

/* Reads the server's workers and their memory; false if any is unreadable
 * (one ended between the scan and the read). */
static bool read_workers(long server, struct workers *w) {
  w->count = children_of(server, w->pid, MAX_WORKERS);
  if (w->count == 0) { /* a server of one process (Go's): itself */
    w->pid[0] = server;
    w->count = 1;
  }
  if (w->count < 0 || w->count > MAX_WORKERS)
    return false;
  w->rss_kib = 0;
  for (int i = 0; i < w->count; i++) {
    long kib = rss_kib(w->pid[i]);
    if (kib < 0)
      return false;
    w->rss_kib += kib;
  }
  return true;
}

static bool same_workers(const struct workers *a, const struct workers *b) {
  if (a->count != b->count)
    return false;
  for (int i = 0; i < a->count; i++) {
    bool found = false;
    for (int j = 0; j < b->count && !found; j++)
      found = a->pid[i] == b->pid[j];
    if (!found)
      return false;
  }
  return true;
}

/* ---- port, children ----------------------------------------------------- */

static int cmd_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = loopback(0);
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    perror("bench-http-client port");
    return 1;
  }
  close(fd);
  printf("%d\n", ntohs(sa.sin_port));
  return 0;
}

static int cmd_children(const char *pid_arg) {
  long pid = strtol(pid_arg, NULL, 10), kids[1024];
  int n = children_of(pid, kids, 1024);
  for (int i = 0; i < n && i < 1024; i++)
    printf("%ld\n", kids[i]);
  return n < 0;
}

/* ---- check -------------------------------------------------------------- */

static bool recv_all(int fd, char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = recv(fd, buf, len, 0);
    if (n <= 0)
      return false;
    buf += n;
    len -= (size_t)n;
  }
  return true;
}

/* Reads one answer into *head (malloc'd, the head only) and *body. */
static bool read_answer(int fd, struct answer *a, char **head, char **body) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  int r = 0;
  while (buf && (r = parse_answer(buf, len, a)) == 0) {
    if (len == cap) {
      char *more = realloc(buf, cap * 2);
      if (!more)
        break;
      buf = more;
      cap *= 2;
    }
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  if (r != 1) {
    free(buf);
    return false;
  }
  *body = malloc(a->body_len + 1);
  if (!*body) {
    free(buf);
    return false;
  }
  /* What came after the head is the start of the body; a server must not
   * send more than the body before the second request. */
  size_t early = len - a->head_len;
  if (early > a->body_len) {
    free(buf);
    free(*body);
    return false;
  }
  memcpy(*body, buf + a->head_len, early);
  if (!recv_all(fd, *body + early, a->body_len - early)) {
    free(buf);
    free(*body);
    return false;
  }
  *head = buf;
  return true;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st) != 0) {
    if (f)
      fclose(f);
    return NULL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  *len = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
  fclose(f);
  if (buf && *len != (size_t)st.st_size) {
    free(buf);
    return NULL;
  }
  return buf;
}

static int cmd_check(const char *port_arg, const char *path, const char *file,
                     const char *label) {
  int port = parse_port(port_arg);
  size_t want_len;
  char *want = read_file(file, &want_len);
  if (port < 0 || !want) {
    fprintf(stderr, "bench-http-client check: bad port or file %s\n", file);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = loopback(port);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    printf("# %s: cannot connect to port %d: %s\n", label, port,
           strerror(errno));
    return 1;
  }
  char req[1024];
  int req_len = snprintf(req, sizeof req,
                         "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  /* Twice on the same connection: the second answer shows that the first
   * left it open and usable, as wrk's keep-alive load needs. */
  for (int round = 0; round < 2; round++) {
    struct answer a;
    char *head, *body;
    if (send(fd, req, (size_t)req_len, MSG_NOSIGNAL) != req_len ||
        !read_answer(fd, &a, &head, &body)) {
      printf("# %s: GET %s: no complete answer%s\n", label, path,
             round ? " on the kept-alive connection" : "");
      return 1;
    }
    bool ok = a.status == 200 && a.body_len == want_len &&
              memcmp(body, want, want_len) == 0;
    if (!ok) {
      printf("# %s: GET %s: status %d, %zu-byte body, not the %zu bytes of "
             "%s\n",
             label, path, a.status, a.body_len, want_len, file);
      return 1;
    }
    if (round == 0) {
      printf("# %s: GET %s: 200, %zu-byte head + %zu-byte body; headers:",
             label, path, a.head_len, a.body_len);
      const char *p = memchr(head, '\n', a.head_len);
      while (p && (size_t)(++p - head) < a.head_len - 2) {
        const char *colon = memchr(p, ':', a.head_len - (size_t)(p - head));
        if (!colon)
          break;
        printf(" %.*s", (int)(colon - p), p);
        p = memchr(p, '\n', a.head_len - (size_t)(p - head));
      }
      putchar('\n');
    }
    free(head);
    free(body);
  }
  close(fd);
  free(want);
  return 0;
}

/* ---- idle --------------------------------------------------------------- */

enum conn_state { CONNECTING, ANSWERING, IDLE, FAILED };

struct conn {
  int fd;
  enum conn_state state;
  uint16_t got;
  char buf[ANSWER_MAX];
};

struct idle {
  int ep;
  struct conn *conns;
  int count, started, in_flight, answered;
  int closed;      /* idle connections the server closed, or that got data */
  const char *why; /* the first failure */
  int why_errno;
};

static void fail(struct idle *s, struct conn *c, const char *why, int err) {
  if (!s->why) {
    s->why = why;
    s->why_errno = err;
  }
  if (c->state == CONNECTING || c->state == ANSWERING)
    s->in_flight--;
  c->state = FAILED;
}

static bool start_one(struct idle *s, int port) {
  struct conn *c = &s->conns[s->started];
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    c->state = FAILED;
    s->why = "socket";
    s->why_errno = errno;
    return false;
  }
  s->started++;
  s->in_flight++;
  c->state = CONNECTING;
  /* From 127.0.0.2, 127.0.0.3, ... in turn, PER_SOURCE connections each:
   * one source address reaches one server port from some 28,000 local
   * ports only (ip_local_port_range). The port is chosen at connect
   * (IP_BIND_ADDRESS_NO_PORT), by the whole four-tuple. */
  struct sockaddr_in from = loopback(0);
  from.sin_addr.s_addr =
      htonl(INADDR_LOOPBACK + 1 + (uint32_t)(s->started - 1) / PER_SOURCE);
  int one = 1;
  if (setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                 sizeof one) != 0 ||
      bind(c->fd, (struct sockaddr *)&from, sizeof from) != 0) {
    fail(s, c, "bind to a source address", errno);
    return false;
  }
  struct sockaddr_in sa = loopback(port);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
      errno != EINPROGRESS) {
    fail(s, c, "connect", errno);
    return false;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(s->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    fail(s, c, "epoll_ctl", errno);
    return false;
  }
  return true;
}

static void on_event(struct idle *s, struct conn *c, uint32_t events) {
  switch (c->state) {
  case CONNECTING: {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err || (events & (EPOLLERR | EPOLLHUP))) {
      fail(s, c, "connect", err);
      return;
    }
    /* The request is far smaller than an empty socket's buffer. */
    if (send(c->fd, hello_request, sizeof hello_request - 1, MSG_NOSIGNAL) !=
        (ssize_t)(sizeof hello_request - 1)) {
      fail(s, c, "send", errno);
      return;
    }
    c->state = ANSWERING;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
    return;
  }
  case ANSWERING: {
    ssize_t n = recv(c->fd, c->buf + c->got, sizeof c->buf - c->got, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n <= 0) {
      fail(s, c, n == 0 ? "the server closed before answering" : "recv",
           n == 0 ? 0 : errno);
      return;
    }
    c->got += (uint16_t)n;
    struct answer a;
    int r = parse_answer(c->buf, c->got, &a);
    if (r == 0 && c->got < sizeof c->buf)
      return;
    if (r != 1 || a.status != 200 || a.body_len != sizeof hello_body - 1 ||
        a.head_len + a.body_len > sizeof c->buf) {
      fail(s, c, "not a 200 with \"Hello, world\"", 0);
      return;
    }
    if (c->got < a.head_len + a.body_len)
      return;
    if (c->got > a.head_len + a.body_len ||
        memcmp(c->buf + a.head_len, hello_body, a.body_len) != 0) {
      fail(s, c, "not a 200 with \"Hello, world\"", 0);
      return;
    }
    /* From here on any event means the server closed the connection or
     * sent what nobody asked for. */
    c->state = IDLE;
    s->in_flight--;
    s->answered++;
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
    return;
  }
  case IDLE:
    s->closed++;
    c->state = FAILED;
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    return;
  case FAILED:
    return;
  }
}

/* Waits up to ms for events and handles them; false on an epoll error. */
static bool poll_once(struct idle *s, int ms) {
  struct epoll_event evs[256];
  int n = epoll_wait(s->ep, evs, 256, ms);
  if (n < 0)
    return errno == EINTR;
  for (int i = 0; i < n; i++)
    on_event(s, evs[i].data.ptr, evs[i].events);
  return true;
}

/* Counts the connections that are open with nothing to read: a peek on an
 * idle, open socket finds no data and no end of file. */
static int count_open(struct idle *s) {
  int open = 0;
  for (int i = 0; i < s->started; i++) {
    char b;
    if (s->conns[i].state == IDLE &&
        recv(s->conns[i].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
        (errno == EAGAIN || errno == EWOULDBLOCK))
      open++;
  }
  return open;
}

/* Opens s->count connections, each with one GET /hello answered; returns
 * the seconds it took. s->why says what failed, if anything did. */
static double open_all(struct idle *s, int port) {
  double t0 = now_s(), deadline = t0 + 60;
  while (s->answered < s->count && !s->why && now_s() < deadline) {
    while (s->started < s->count && s->in_flight < IN_FLIGHT && !s->why)
      start_one(s, port);
    if (!poll_once(s, 100))
      s->why = "epoll_wait";
  }
  if (!s->why && s->answered < s->count)
    s->why = "60 s went by";
  return now_s() - t0;
}

static bool idle_init(struct idle *s, int count) {
  *s = (struct idle){.ep = epoll_create1(EPOLL_CLOEXEC), .count = count};
  s->conns = calloc((size_t)count, sizeof *s->conns);
  return s->ep >= 0 && s->conns;
}

static void idle_close(struct idle *s) {
  for (int i = 0; i < s->started; i++)
    close(s->conns[i].fd);
  close(s->ep);
  free(s->conns);
}

/* Reads the workers' memory once it holds still: two reads 200 ms apart
 * that agree, within 5 s. A worker just forked has little resident until
 * it touches the pages it shares with its parent, and would make the
 * connections look dearer than they are. */
static bool read_workers_settled(long server, struct workers *w) {
  struct workers prev;
  if (!read_workers(server, &prev))
    return false;
  for (int i = 0; i < 25; i++) {
    usleep(200 * 1000);
    if (!read_workers(server, w))
      return false;
    if (same_workers(&prev, w) && prev.rss_kib == w->rss_kib)
      return true;
    prev = *w;
  }
  return true;
}

static int cmd_idle(const char *port_arg, const char *conns_arg,
                    const char *pid_arg, const char *name,
                    const char *settle_arg) {
  int port = parse_port(port_arg);
  int count = atoi(conns_arg);
  long server = strtol(pid_arg, NULL, 10);
  int settle_ms = settle_arg ? atoi(settle_arg) : 2000;
  if (port < 0 || count <= 0 || server <= 0 || settle_ms < 0) {
    fprintf(stderr, "bench-http-client idle: bad arguments\n");
    return 2;
  }
  rlim_t limit = raise_fd_limit((rlim_t)count + 64);
  if (limit < (rlim_t)count + 16) {
    printf("# skip %s: RLIMIT_NOFILE is %llu, too low for %d connections\n",
           name, (unsigned long long)limit, count);
    return 1;
  }
  /* A warm-up: a few hundred connections answered and closed, so that
   * every worker has served requests (its code and first pools resident)
   * before the first reading. */
  struct idle warm;
  if (!idle_init(&warm, count < WARM_UP ? count : WARM_UP)) {
    printf("# %s failed: out of memory or epoll\n", name);
    return 1;
  }
  open_all(&warm, port);
  if (warm.why) {
    printf("# %s failed: the warm-up: %d of %d connections answered; %s%s%s\n",
           name, warm.answered, warm.count, warm.why,
           warm.why_errno ? ": " : "",
           warm.why_errno ? strerror(warm.why_errno) : "");
    return 1;
  }
  idle_close(&warm);
  struct workers before, after;
  if (!read_workers_settled(server, &before)) {
    printf("# %s failed: no workers of process %ld found\n", name, server);
    return 1;
  }
  struct idle s;
  if (!idle_init(&s, count)) {
    printf("# %s failed: out of memory or epoll\n", name);
    return 1;
  }
  double opened_s = open_all(&s, port);
  /* The connections now idle; the server has had its chance to settle
   * (free per-request buffers, shrink pools). Any event on one of them is a
   * close and is counted. */
  double settle_end = now_s() + settle_ms / 1e3;
  while (!s.why && now_s() < settle_end)
    if (!poll_once(&s, (int)((settle_end - now_s()) * 1e3) + 1))
      s.why = "epoll_wait";
  bool measured = read_workers(server, &after);
  poll_once(&s, 0);
  int open = count_open(&s);
  if (s.why || s.closed || open != count || !measured ||
      !same_workers(&before, &after)) {
    printf("# %s failed: %d of %d connections answered, %d still open, %d "
           "closed by the server%s%s%s%s%s\n",
           name, s.answered, count, open, s.closed, s.why ? "; " : "",
           s.why ? s.why : "", s.why_errno ? ": " : "",
           s.why_errno ? strerror(s.why_errno) : "",
           measured && !same_workers(&before, &after) ? "; the workers changed"
                                                      : "");
    return 1;
  }
  double per_conn =
      (double)(after.rss_kib - before.rss_kib) * 1024.0 / (double)count;
  printf("# %s: %d worker%s, RSS %.1f MiB before, %.1f MiB after; %d of %d "
         "connections answered in %.2f s and open %.1f s later\n",
         name, after.count, after.count == 1 ? "" : "s",
         before.rss_kib / 1024.0, after.rss_kib / 1024.0, s.answered, count,
         opened_s, settle_ms / 1e3);
  printf("%-48s %12d %10.0f B/conn\n", name, count, per_conn);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "port") == 0)
    return cmd_port();
  if (argc == 3 && strcmp(argv[1], "children") == 0)
    return cmd_children(argv[2]);
  if (argc == 6 && strcmp(argv[1], "check") == 0)
    return cmd_check(argv[2], argv[3], argv[4], argv[5]);
  if ((argc == 6 || argc == 7) && strcmp(argv[1], "idle") == 0)
    return cmd_idle(argv[2], argv[3], argv[4], argv[5],
                    argc == 7 ? argv[6] : NULL);
  fprintf(stderr, "usage: bench-http-client port | children PID | check PORT "
                  "PATH FILE LABEL | idle PORT CONNS PID NAME [SETTLE-MS]\n");
  return 2;
}
