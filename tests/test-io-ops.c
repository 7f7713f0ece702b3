/*
 * The cooperative fd operations of weft/io.h: a TCP echo server and many
 * clients in one hub, each operation's data path, timeouts, a cancellation
 * during every kind of blocking call, a close that wakes, the same calls
 * outside a task, and bad input; and what the epoll poller's persistent
 * registration must keep: no epoll_ctl per wait in an exchange, waits that
 * report what was not read, and numbers reused behind weft's back.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "../src/hub/poller.h"
#include "harness.h"

/* Every epoll_ctl weft makes in this program comes here, to be counted:
 * the program's own definition comes before libc's for the static library
 * linked into it (a sanitizer's interceptor, which this one hides, checks
 * nothing weft relies on). */
static atomic_long epoll_ctls;
int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
  atomic_fetch_add(&epoll_ctls, 1);
  return (int)syscall(SYS_epoll_ctl, epfd, op, fd, ev);
}

static void run(weft_task_fn fn, void *arg) {
  CHECK_EQ(weft_run(fn, arg, NULL), 0);
}

/* A TCP socket listening on 127.0.0.1 at a port the kernel chose; the port
 * goes to *port. */
static int listen_loopback(int backlog, uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  CHECK_EQ(listen(fd, backlog), 0);
  socklen_t len = sizeof sa;
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

static struct sockaddr_in loopback(uint16_t port) {
  return (struct sockaddr_in){.sin_family = AF_INET,
                              .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

/* Connects a new TCP socket to 127.0.0.1:port through weft. */
static int dial(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  struct sockaddr_in sa = loopback(port);
  CHECK_EQ(weft_io_connect(fd, (struct sockaddr *)&sa, sizeof sa, WEFT_SEC(10)),
           0);
  return fd;
}

/* --- echo: one server task per connection, clients as tasks, one hub --- */

enum { CLIENTS = 200, ROUNDS = 50, MSG = 64 };

static void *echo_conn(void *arg) {
  int fd = (int)VI(arg);
  char buf[MSG];
  ssize_t n;
  while ((n = weft_io_recv(fd, buf, sizeof buf, 0, WEFT_SEC(30))) > 0) {
    ssize_t off = 0;
    while (off < n) {
      ssize_t w =
          weft_io_send(fd, buf + off, (size_t)(n - off), 0, WEFT_SEC(30));
      CHECK(w > 0);
      off += w;
    }
  }
  CHECK_EQ(n, 0); /* the client's close */
  CHECK_EQ(weft_io_close(fd), 0);
  return NULL;
}

static void *echo_server(void *arg) {
  int lfd = (int)VI(arg);
  for (int i = 0; i < CLIENTS; i++) {
    int fd = weft_io_accept(lfd, NULL, NULL, WEFT_SEC(30));
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK_EQ(weft_task_spawn(NULL, echo_conn, IV(fd), NULL), 0);
  }
  return NULL;
}

static uint16_t echo_port;

/* Each client checks every byte that comes back; half use read and
 * write, half recv and send, and some split their messages in two. */
static void *echo_client(void *arg) {
  int id = (int)VI(arg);
  int fd = dial(echo_port);
  for (int r = 0; r < ROUNDS; r++) {
    char out[MSG], in[MSG];
    for (int k = 0; k < MSG; k++)
      out[k] = (char)(id * 31 + r * 7 + k);
    if (id % 3 == 0) {
      struct iovec iov[2] = {{out, 10}, {out + 10, MSG - 10}};
      CHECK_EQ(weft_io_writev(fd, iov, 2, WEFT_SEC(30)), MSG);
    } else if (id % 2) {
      CHECK_EQ(weft_io_write(fd, out, MSG, WEFT_SEC(30)), MSG);
    } else {
      CHECK_EQ(weft_io_send(fd, out, MSG, 0, WEFT_SEC(30)), MSG);
    }
    size_t got = 0;
    while (got < MSG) {
      ssize_t n = id % 2
                      ? weft_io_read(fd, in + got, MSG - got, WEFT_SEC(30))
                      : weft_io_recv(fd, in + got, MSG - got, 0, WEFT_SEC(30));
      CHECK(n > 0);
      got += (size_t)n;
    }
    CHECK(memcmp(in, out, MSG) == 0);
  }
  CHECK_EQ(weft_io_close(fd), 0);
  return NULL;
}

static void *echo_main(void *arg) {
  (void)arg;
  int lfd = listen_loopback(CLIENTS, &echo_port);
  weft_task *server, *clients[CLIENTS];
  CHECK_EQ(weft_task_spawn(&server, echo_server, IV(lfd), NULL), 0);
  for (int i = 0; i < CLIENTS; i++)
    CHECK_EQ(weft_task_spawn(&clients[i], echo_client, IV(i), NULL), 0);
  for (int i = 0; i < CLIENTS; i++)
    CHECK_EQ(weft_task_join(clients[i], WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(server, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_io_close(lfd), 0);
  return NULL;
}

TEST_TIMEOUT(an_echo_server_and_many_clients_in_one_hub, 60) {
  run(echo_main, NULL);
}

/* --- each operation's own path --- */

static void *pipe_reads(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0); /* blocking, as pipe(2) makes them */
  CHECK_EQ(weft_io_write(p[1], "hello", 5, WEFT_SEC(5)), 5);
  CHECK(fcntl(p[1], F_GETFL) & O_NONBLOCK); /* documented: set on use */
  char buf[16];
  CHECK_EQ(weft_io_read(p[0], buf, 3, WEFT_SEC(5)), 3);
  CHECK_EQ(weft_io_read(p[0], buf + 3, sizeof buf, WEFT_SEC(5)), 2);
  CHECK(memcmp(buf, "hello", 5) == 0);
  /* Nothing left: a poll says so at once, a timeout after its time. */
  CHECK_EQ(weft_io_read(p[0], buf, 1, 0), -ETIMEDOUT);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_io_read(p[0], buf, 1, WEFT_MS(20)), -ETIMEDOUT);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(20));
  /* readv across two buffers; the end of the file reads 0. */
  CHECK_EQ(weft_io_write(p[1], "abcdef", 6, WEFT_SEC(5)), 6);
  char x[2], y[8];
  struct iovec iov[2] = {{x, sizeof x}, {y, sizeof y}};
  CHECK_EQ(weft_io_readv(p[0], iov, 2, WEFT_SEC(5)), 6);
  CHECK(memcmp(x, "ab", 2) == 0 && memcmp(y, "cdef", 4) == 0);
  CHECK_EQ(weft_io_close(p[1]), 0);
  CHECK_EQ(weft_io_read(p[0], buf, 1, WEFT_SEC(5)), 0);
  CHECK_EQ(weft_io_close(p[0]), 0);
  return NULL;
}

TEST(reads_and_writes_on_a_pipe) { run(pipe_reads, NULL); }

static int sp[2];

static void *drain_slowly(void *arg) {
  size_t want = (size_t)VI(arg), got = 0;
  char buf[8192];
  CHECK_EQ(weft_sleep(WEFT_MS(10)), 0);
  while (got < want) {
    ssize_t n = weft_io_recv(sp[1], buf, sizeof buf, 0, WEFT_SEC(10));
    CHECK(n > 0);
    for (ssize_t k = 0; k < n; k++)
      CHECK_EQ((unsigned char)buf[k], (unsigned char)((got + (size_t)k) % 251));
    got += (size_t)n;
  }
  return NULL;
}

/* A writer that fills the socket waits for room, while another task
 * drains it; recv and send leave the fd's flags alone. */
static void *writes_wait_for_room(void *arg) {
  (void)arg;
  enum { TOTAL = 4 << 20 };
  char *data = malloc(TOTAL);
  CHECK(data);
  for (size_t k = 0; k < TOTAL; k++)
    data[k] = (char)(k % 251);
  weft_task *d;
  CHECK_EQ(weft_task_spawn(&d, drain_slowly, IV(TOTAL), NULL), 0);
  size_t off = 0;
  while (off < TOTAL) {
    ssize_t n = weft_io_send(sp[0], data + off, TOTAL - off, 0, WEFT_SEC(10));
    CHECK(n > 0);
    off += (size_t)n;
  }
  CHECK_EQ(weft_task_join(d, WEFT_FOREVER, NULL), 0);
  CHECK(!(fcntl(sp[0], F_GETFL) & O_NONBLOCK));
  CHECK(!(fcntl(sp[1], F_GETFL) & O_NONBLOCK));
  free(data);
  return NULL;
}

TEST(a_writer_waits_for_room_while_a_reader_drains) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  run(writes_wait_for_room, NULL);
  close(sp[0]);
  close(sp[1]);
}

static void *sendfile_task(void *arg) {
  (void)arg;
  char path[] = "/tmp/weft-sendfile-XXXXXX";
  int file = mkstemp(path);
  CHECK(file >= 0);
  unlink(path);
  enum { SIZE = 1 << 20 };
  char *data = malloc(SIZE);
  CHECK(data);
  for (size_t k = 0; k < SIZE; k++)
    data[k] = (char)(k % 251);
  CHECK_EQ(write(file, data, SIZE), SIZE);
  weft_task *d;
  CHECK_EQ(weft_task_spawn(&d, drain_slowly, IV(SIZE), NULL), 0);
  off_t at = 0;
  while (at < SIZE) {
    ssize_t n =
        weft_io_sendfile(sp[0], file, &at, SIZE - (size_t)at, WEFT_SEC(10));
    CHECK(n > 0);
  }
  CHECK_EQ(at, SIZE);
  CHECK_EQ(weft_task_join(d, WEFT_FOREVER, NULL), 0);
  close(file);
  free(data);
  return NULL;
}

TEST(sendfile_waits_for_room_too) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  run(sendfile_task, NULL);
  close(sp[0]);
  close(sp[1]);
}

static void *connects(void *arg) {
  (void)arg;
  /* Refused: a port nobody listens on any more. */
  uint16_t port;
  int l = listen_loopback(1, &port);
  close(l);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = loopback(port);
  CHECK_EQ(weft_io_connect(fd, (struct sockaddr *)&sa, sizeof sa, WEFT_SEC(5)),
           -ECONNREFUSED);
  close(fd);
  /* A peer that closed: -EPIPE, and no SIGPIPE kills the test. */
  l = listen_loopback(1, &port);
  fd = dial(port);
  int peer = weft_io_accept(l, NULL, NULL, WEFT_SEC(5));
  CHECK(peer >= 0);
  close(peer);
  ssize_t n = 0;
  for (int i = 0; i < 100 && n >= 0; i++) /* the first send may still go */
    n = weft_io_send(fd, "x", 1, 0, WEFT_SEC(5));
  CHECK(n == -EPIPE || n == -ECONNRESET);
  close(fd);
  close(l);
  return NULL;
}

TEST(refused_connections_and_closed_peers_are_error_codes) {
  run(connects, NULL);
}

/* --- a cancellation during every kind of blocking call --- */

enum blocking_op {
  OP_READ,
  OP_WRITE,
  OP_READV,
  OP_WRITEV,
  OP_RECV,
  OP_SEND,
  OP_ACCEPT,
  OP_CONNECT,
  OP_SENDFILE,
  OP_WAIT,
  OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "read", "write",  "readv",   "writev",   "recv",
    "send", "accept", "connect", "sendfile", "wait"};

struct blocker {
  enum blocking_op op;
  int fd, file;
  struct sockaddr_in to;
  int rc;
  bool started;
};

/* Fills a socket's send buffer until not even one byte more fits. */
static void fill(int fd) {
  static char junk[65536];
  for (size_t size = sizeof junk; size > 0; size /= 2)
    while (send(fd, junk, size, MSG_DONTWAIT) > 0)
      ;
}

static void *block_in(void *arg) {
  struct blocker *b = arg;
  char buf[64] = {0};
  struct iovec iov = {buf, sizeof buf};
  off_t at = 0;
  b->started = true;
  int64_t t = WEFT_SEC(30);
  switch (b->op) {
  case OP_READ:
    b->rc = (int)weft_io_read(b->fd, buf, sizeof buf, t);
    break;
  case OP_WRITE:
    b->rc = (int)weft_io_write(b->fd, buf, sizeof buf, t);
    break;
  case OP_READV:
    b->rc = (int)weft_io_readv(b->fd, &iov, 1, t);
    break;
  case OP_WRITEV:
    b->rc = (int)weft_io_writev(b->fd, &iov, 1, t);
    break;
  case OP_RECV:
    b->rc = (int)weft_io_recv(b->fd, buf, sizeof buf, 0, t);
    break;
  case OP_SEND:
    b->rc = (int)weft_io_send(b->fd, buf, sizeof buf, 0, t);
    break;
  case OP_ACCEPT:
    b->rc = weft_io_accept(b->fd, NULL, NULL, t);
    break;
  case OP_CONNECT:
    b->rc = weft_io_connect(b->fd, (struct sockaddr *)&b->to, sizeof b->to, t);
    break;
  case OP_SENDFILE:
    b->rc = (int)weft_io_sendfile(b->fd, b->file, &at, 64, t);
    break;
  default:
    b->rc = weft_io_wait(b->fd, WEFT_IO_READ, t);
  }
  return NULL;
}

/* Whether a connect to port from a fresh socket is still in progress:
 * the listener's queue is full, so the kernel drops the handshake. */
static bool connect_hangs(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in sa = loopback(port);
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  bool hangs = false;
  if (rc != 0 && errno == EINPROGRESS) {
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    hangs = weft_io_wait(fd, WEFT_IO_WRITE, 0) == -ETIMEDOUT;
  }
  close(fd);
  return hangs;
}

struct cancel_case {
  enum blocking_op op;
  bool by_close; /* end the call with weft_io_close instead */
};

static void *cancel_one(void *arg) {
  struct cancel_case *c = arg;
  struct blocker b = {.op = c->op, .fd = -1, .file = -1};
  int pair[2] = {-1, -1}, extra[8];
  int nextra = 0;
  uint16_t port;
  switch (c->op) {
  case OP_ACCEPT:
    b.fd = listen_loopback(4, &port);
    break;
  case OP_CONNECT: {
    /* A listener with a full queue: connects hang in SYN_SENT. */
    int l = listen_loopback(0, &port);
    extra[nextra++] = l;
    while (nextra < 8 && !connect_hangs(port)) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      struct sockaddr_in sa = loopback(port);
      connect(fd, (struct sockaddr *)&sa, sizeof sa);
      extra[nextra++] = fd;
    }
    if (nextra == 8)
      harness_skip("a connect to a full listener completed anyway");
    b.fd = socket(AF_INET, SOCK_STREAM, 0);
    b.to = loopback(port);
    break;
  }
  default:
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    b.fd = pair[0];
    if (c->op == OP_WRITE || c->op == OP_WRITEV || c->op == OP_SEND ||
        c->op == OP_SENDFILE) {
      fill(pair[0]);
    }
  }
  if (c->op == OP_SENDFILE) {
    char path[] = "/tmp/weft-cancel-XXXXXX";
    b.file = mkstemp(path);
    CHECK(b.file >= 0);
    unlink(path);
    CHECK_EQ(write(b.file, "0123456789", 10), 10);
  }
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, block_in, &b, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(5)), 0); /* let it block */
  CHECK(b.started);
  int64_t t0 = harness_now_ns();
  if (c->by_close)
    CHECK_EQ(weft_io_close(b.fd), 0);
  else
    CHECK_EQ(weft_task_cancel(t), 0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK(harness_now_ns() - t0 < WEFT_SEC(5));
  if (b.rc != (c->by_close ? -EBADF : -ECANCELED))
    harness_fail(__FILE__, __LINE__, "%s returned %d (%s)", op_names[c->op],
                 b.rc, weft_strerror(b.rc));
  if (!c->by_close)
    close(b.fd);
  if (pair[1] >= 0)
    close(pair[1]);
  if (b.file >= 0)
    close(b.file);
  while (nextra > 0)
    close(extra[--nextra]);
  return NULL;
}

static void cancel_case(enum blocking_op op, bool by_close) {
  run(cancel_one, &(struct cancel_case){op, by_close});
}

TEST(cancel_ends_a_read) { cancel_case(OP_READ, false); }
TEST(cancel_ends_a_write) { cancel_case(OP_WRITE, false); }
TEST(cancel_ends_a_readv) { cancel_case(OP_READV, false); }
TEST(cancel_ends_a_writev) { cancel_case(OP_WRITEV, false); }
TEST(cancel_ends_a_recv) { cancel_case(OP_RECV, false); }
TEST(cancel_ends_a_send) { cancel_case(OP_SEND, false); }
TEST(cancel_ends_an_accept) { cancel_case(OP_ACCEPT, false); }
TEST(cancel_ends_a_connect) { cancel_case(OP_CONNECT, false); }
TEST(cancel_ends_a_sendfile) { cancel_case(OP_SENDFILE, false); }
TEST(cancel_ends_a_wait) { cancel_case(OP_WAIT, false); }
TEST(close_ends_a_read) { cancel_case(OP_READ, true); }
TEST(close_ends_a_send) { cancel_case(OP_SEND, true); }
TEST(close_ends_an_accept) { cancel_case(OP_ACCEPT, true); }
TEST(close_ends_a_connect) { cancel_case(OP_CONNECT, true); }

/* A cancelled task's calls fail only where they would wait: what is ready
 * still completes, so that it can clean up. */
static void *cancelled_first(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(write(p[1], "x", 1), 1);
  CHECK_EQ(weft_task_cancel(weft_task_current()), 0);
  char c;
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_SEC(1)), 1); /* there: read */
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_SEC(1)), -ECANCELED);
  CHECK_EQ(weft_io_write(p[1], "y", 1, WEFT_SEC(1)), 1); /* room: written */
  CHECK_EQ(weft_io_wait(p[0], WEFT_IO_READ, WEFT_SEC(1)), WEFT_IO_READ);
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_SEC(1)), 1);
  CHECK_EQ(weft_io_wait(p[0], WEFT_IO_READ, WEFT_SEC(1)), -ECANCELED);
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(a_cancelled_task_completes_only_what_need_not_wait) {
  run(cancelled_first, NULL);
}

/* Two tasks reading one socket: the second is refused while the first
 * waits. */
static void *second_reader(void *arg) {
  char c;
  *(ssize_t *)arg = weft_io_recv(sp[0], &c, 1, 0, WEFT_SEC(5));
  return NULL;
}

static void *one_reader_at_a_time(void *arg) {
  (void)arg;
  ssize_t first = 0, second = 0;
  weft_task *a, *b;
  CHECK_EQ(weft_task_spawn(&a, second_reader, &first, NULL), 0);
  CHECK_EQ(weft_yield(), 0);
  CHECK_EQ(weft_task_spawn(&b, second_reader, &second, NULL), 0);
  CHECK_EQ(weft_task_join(b, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(second, -EBUSY);
  CHECK_EQ(send(sp[1], "z", 1, 0), 1);
  CHECK_EQ(weft_task_join(a, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(first, 1);
  return NULL;
}

TEST(one_task_at_a_time_reads_an_fd) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  run(one_reader_at_a_time, NULL);
  close(sp[0]);
  close(sp[1]);
}

/* --- outside a task: the plain blocking calls, with timeouts --- */

TEST(outside_a_task_the_calls_block_the_thread) {
  int p[2];
  CHECK_EQ(pipe(p), 0);
  char c;
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_MS(20)), -ETIMEDOUT);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(20));
  CHECK(!(fcntl(p[0], F_GETFL) & O_NONBLOCK)); /* left as it was */
  CHECK_EQ(weft_io_read(p[0], &c, 1, 0), -ETIMEDOUT);
  CHECK_EQ(weft_io_write(p[1], "q", 1, WEFT_FOREVER), 1);
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_FOREVER), 1);
  CHECK_EQ(c, 'q');
  /* A non-blocking fd (as a task leaves it) waits all the same. */
  CHECK_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_MS(10)), -ETIMEDOUT);
  close(p[0]);
  close(p[1]);
  /* accept and connect with timeouts, on a blocking listener. */
  uint16_t port;
  int l = listen_loopback(4, &port);
  CHECK_EQ(weft_io_accept(l, NULL, NULL, WEFT_MS(10)), -ETIMEDOUT);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = loopback(port);
  CHECK_EQ(weft_io_connect(fd, (struct sockaddr *)&sa, sizeof sa, WEFT_SEC(5)),
           0);
  CHECK(!(fcntl(fd, F_GETFL) & O_NONBLOCK)); /* put back */
  struct sockaddr_in from;
  socklen_t len = sizeof from;
  int peer = weft_io_accept(l, (struct sockaddr *)&from, &len, WEFT_SEC(5));
  CHECK(peer >= 0);
  CHECK_EQ(len, sizeof from);
  CHECK_EQ(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  CHECK(!(fcntl(peer, F_GETFL) & O_NONBLOCK));
  CHECK_EQ(weft_io_send(fd, "hi", 2, 0, WEFT_SEC(5)), 2);
  char buf[2];
  CHECK_EQ(weft_io_recv(peer, buf, 2, MSG_WAITALL, WEFT_SEC(5)), 2);
  CHECK_EQ(weft_io_recv(peer, buf, 2, 0, WEFT_MS(10)), -ETIMEDOUT);
  close(peer);
  close(fd);
  close(l);
}

/* --- bad input --- */

static void *bad_input(void *arg) {
  (void)arg;
  char c;
  struct iovec iov = {&c, 1};
  CHECK_EQ(weft_io_read(-1, &c, 1, 0), -EBADF);
  CHECK_EQ(weft_io_write(-1, &c, 1, 0), -EBADF);
  CHECK_EQ(weft_io_readv(-1, &iov, 1, 0), -EBADF);
  CHECK_EQ(weft_io_recv(-1, &c, 1, 0, 0), -EBADF);
  CHECK_EQ(weft_io_accept(-1, NULL, NULL, 0), -EBADF);
  CHECK_EQ(weft_io_connect(-1, NULL, 0, 0), -EBADF);
  CHECK_EQ(weft_io_sendfile(-1, 0, NULL, 1, 0), -EBADF);
  int p[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(weft_io_readv(p[0], &iov, -1, WEFT_SEC(1)), -EINVAL);
  CHECK_EQ(weft_io_writev(p[1], &iov, 100000, WEFT_SEC(1)), -EINVAL);
  CHECK_EQ(weft_io_recv(p[0], &c, 1, 0, WEFT_SEC(1)), -ENOTSOCK);
  /* In a task and outside (a_call_that_fails_at_once_... has more). */
  CHECK_EQ(weft_io_accept(p[0], NULL, NULL, WEFT_SEC(1)), -ENOTSOCK);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(weft_io_accept(s, NULL, NULL, WEFT_SEC(1)), -EINVAL);
  close(s);
  close(p[0]);
  close(p[1]);
  /* A closed fd. */
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_SEC(1)), -EBADF);
  CHECK_EQ(weft_io_recv(p[0], &c, 1, 0, WEFT_SEC(1)), -EBADF);
  return NULL;
}

/* An fd on which the call fails at once gives libc's errno at once, from a
 * plain thread (where a blocking fd is otherwise waited on before the
 * call) and from a task (where a guess that the fd blocks would otherwise
 * wait first), never after the timeout. */
#define AT_ONCE(call, want)                                                    \
  do {                                                                         \
    int64_t t0_ = harness_now_ns();                                            \
    CHECK_EQ((call), (want));                                                  \
    if (harness_now_ns() - t0_ > WEFT_MS(1000))                                \
      harness_fail(__FILE__, __LINE__, "%s took %.3f s", #call,                \
                   (double)(harness_now_ns() - t0_) / 1e9);                    \
  } while (0)

static void *immediate_errors(void *arg) {
  (void)arg;
  const int64_t t = WEFT_SEC(5);
  char c = 'x';
  struct iovec iov = {&c, 1};
  int p[2];
  CHECK_EQ(pipe(p), 0);
  /* accept on what does not listen. */
  int tcp = socket(AF_INET, SOCK_STREAM, 0);
  int udp = socket(AF_INET, SOCK_DGRAM, 0);
  AT_ONCE(weft_io_accept(tcp, NULL, NULL, t), -EINVAL);
  AT_ONCE(weft_io_accept(udp, NULL, NULL, t), -EOPNOTSUPP);
  AT_ONCE(weft_io_accept(p[0], NULL, NULL, t), -ENOTSOCK);
  /* The wrong end of a pipe. */
  AT_ONCE(weft_io_read(p[1], &c, 1, t), -EBADF);
  AT_ONCE(weft_io_readv(p[1], &iov, 1, t), -EBADF);
  AT_ONCE(weft_io_write(p[0], &c, 1, t), -EBADF);
  AT_ONCE(weft_io_writev(p[0], &iov, 1, t), -EBADF);
  AT_ONCE(weft_io_sendfile(p[0], p[0], NULL, 1, t), -EBADF);
  /* A listening socket is neither read nor written. */
  uint16_t port;
  int l = listen_loopback(4, &port);
  AT_ONCE(weft_io_read(l, &c, 1, t), -ENOTCONN);
  AT_ONCE(weft_io_readv(l, &iov, 1, t), -ENOTCONN);
  AT_ONCE(weft_io_recv(l, &c, 1, 0, t), -ENOTCONN);
  AT_ONCE(weft_io_write(l, &c, 1, t), -EPIPE);
  AT_ONCE(weft_io_send(l, &c, 1, 0, t), -EPIPE);
  /* A connected socket, then its peer gone. */
  int s[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  if (weft_task_current()) /* a read that blocks: the guess says wait */
    CHECK_EQ(weft_io_read(s[0], &c, 1, WEFT_MS(1)), -ETIMEDOUT);
  AT_ONCE(weft_io_accept(s[0], NULL, NULL, t), -EINVAL);
  AT_ONCE(weft_io_accept(s[0], NULL, NULL, t), -EINVAL);
  close(s[1]);
  AT_ONCE(weft_io_read(s[0], &c, 1, t), 0);
  AT_ONCE(weft_io_write(s[0], &c, 1, t), -EPIPE);
  AT_ONCE(weft_io_send(s[0], &c, 1, 0, t), -EPIPE);
  close(s[0]);
  /* sendfile from a bad fd to a full pipe: the in_fd is wrong at once. */
  CHECK_EQ(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
  char fill[4096] = {0};
  while (write(p[1], fill, sizeof fill) > 0)
    ;
  CHECK_EQ(fcntl(p[1], F_SETFL, 0), 0);
  if (weft_task_current()) /* a write that blocks: the guess says wait */
    CHECK_EQ(weft_io_write(p[1], &c, 1, WEFT_MS(1)), -ETIMEDOUT);
  AT_ONCE(weft_io_sendfile(p[1], -1, NULL, 1, t), -EBADF);
  AT_ONCE(weft_io_sendfile(p[1], p[1], NULL, 1, t), -EBADF);
  /* Bad fds: closed numbers. */
  int bad = dup(p[0]);
  close(bad);
  AT_ONCE(weft_io_read(bad, &c, 1, t), -EBADF);
  AT_ONCE(weft_io_write(bad, &c, 1, t), -EBADF);
  AT_ONCE(weft_io_accept(bad, NULL, NULL, t), -EBADF);
  AT_ONCE(weft_io_recv(bad, &c, 1, 0, t), -EBADF);
  AT_ONCE(weft_io_send(bad, &c, 1, 0, t), -EBADF);
  AT_ONCE(weft_io_sendfile(bad, p[0], NULL, 1, t), -EBADF);
  AT_ONCE(weft_io_wait(bad, WEFT_IO_READ, t), -EBADF);
  struct sockaddr_in sa = loopback(port);
  AT_ONCE(weft_io_connect(bad, (struct sockaddr *)&sa, sizeof sa, t), -EBADF);
  AT_ONCE(weft_io_connect(p[0], (struct sockaddr *)&sa, sizeof sa, t),
          -ENOTSOCK);
  close(l);
  close(tcp);
  close(udp);
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(a_call_that_fails_at_once_never_waits_for_its_timeout) {
  signal(SIGPIPE, SIG_IGN); /* weft_io_write raises it as write(2) does */
  immediate_errors(NULL);   /* a plain thread, blocking fds */
  run(immediate_errors, NULL);
}

/* recv and send take the MSG_* flags their man pages name; any other bit
 * (which the kernel would ignore) is -EINVAL, with nothing moved. */
static void *unknown_flags(void *arg) {
  (void)arg;
  int s[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  CHECK_EQ(send(s[1], "ab", 2, 0), 2);
  char c[2];
  int bad[] = {0x40000000, MSG_SYN, MSG_RST, MSG_FIN, -1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_EQ(weft_io_recv(s[0], c, 1, bad[i], WEFT_SEC(1)), -EINVAL);
    CHECK_EQ(weft_io_recv(s[0], c, 1, MSG_PEEK | bad[i], WEFT_SEC(1)), -EINVAL);
    CHECK_EQ(weft_io_send(s[0], "x", 1, bad[i], WEFT_SEC(1)), -EINVAL);
  }
  /* recv-only flags are not send's, nor the reverse. */
  CHECK_EQ(weft_io_send(s[0], "x", 1, MSG_PEEK, WEFT_SEC(1)), -EINVAL);
  CHECK_EQ(weft_io_send(s[0], "x", 1, MSG_WAITALL, WEFT_SEC(1)), -EINVAL);
  CHECK_EQ(weft_io_recv(s[0], c, 1, MSG_MORE, WEFT_SEC(1)), -EINVAL);
  CHECK_EQ(weft_io_recv(s[0], c, 1, MSG_NOSIGNAL, WEFT_SEC(1)), -EINVAL);
  /* Nothing moved: both bytes are still there, nothing went the other
   * way; known flags work. */
  CHECK_EQ(weft_io_recv(s[1], c, 1, 0, 0), -ETIMEDOUT);
  CHECK_EQ(weft_io_recv(s[0], c, 2, MSG_PEEK | MSG_WAITALL, WEFT_SEC(1)), 2);
  CHECK_EQ(weft_io_recv(s[0], c, 2, MSG_TRUNC | MSG_DONTWAIT, WEFT_SEC(1)), 2);
  CHECK_EQ(weft_io_send(s[0], "x", 1, MSG_NOSIGNAL | MSG_MORE | MSG_EOR,
                        WEFT_SEC(1)),
           1);
  CHECK_EQ(weft_io_recv(s[1], c, 1, 0, WEFT_SEC(1)), 1);
  /* weft_io_wait: only WEFT_IO_READ and WEFT_IO_WRITE, and WEFT_IO_GUESS
   * beside one of them. */
  CHECK_EQ(weft_io_wait(s[0], WEFT_IO_READ | 4, WEFT_SEC(1)), -EINVAL);
  CHECK_EQ(weft_io_wait(s[0], WEFT_IO_GUESS, WEFT_SEC(1)), -EINVAL);
  CHECK_EQ(weft_io_wait(s[0], WEFT_IO_READ | WEFT_IO_WRITE | WEFT_IO_GUESS,
                        WEFT_SEC(1)),
           -EINVAL);
  /* weft_io_found: a known finding, a direction, a short read's alone. */
  CHECK_EQ(weft_io_found(s[0], 0, WEFT_IO_FOUND_READY), -EINVAL);
  CHECK_EQ(weft_io_found(s[0], 4, WEFT_IO_FOUND_READY), -EINVAL);
  CHECK_EQ(weft_io_found(s[0], WEFT_IO_READ, 0), -EINVAL);
  CHECK_EQ(weft_io_found(s[0], WEFT_IO_READ, 4), -EINVAL);
  CHECK_EQ(weft_io_found(s[0], WEFT_IO_WRITE, WEFT_IO_FOUND_SHORT_READ),
           -EINVAL);
  CHECK_EQ(weft_io_found(-1, WEFT_IO_READ, WEFT_IO_FOUND_READY), -EBADF);
  CHECK_EQ(weft_io_wait(s[0], 0x80000000u, WEFT_SEC(1)), -EINVAL);
  close(s[0]);
  close(s[1]);
  return NULL;
}

TEST(unknown_flags_are_einval_and_move_nothing) {
  run(unknown_flags, NULL);
  unknown_flags(NULL); /* and outside a task */
}

TEST(bad_input_is_an_error_code) {
  run(bad_input, NULL);
  bad_input(NULL); /* and outside a task */
}

/* A generator that reads a socket and yields what came, driven by a task:
 * its recv parks the task through the generator (Python: a generator over
 * sock.recv inside a greenlet). */
static void *chunks(void *arg) {
  int fd = (int)VI(arg);
  char buf[16];
  ssize_t n;
  while ((n = weft_io_recv(fd, buf, sizeof buf, 0, WEFT_SEC(10))) > 0)
    if (weft_gen_yield(IV(n), NULL) != 0)
      return NULL;
  return IV(n);
}

static void *feed(void *arg) {
  (void)arg;
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(weft_sleep(WEFT_MS(2)), 0);
    CHECK_EQ(weft_io_send(sp[1], "abcde", 5, 0, WEFT_SEC(5)), 5);
  }
  CHECK_EQ(shutdown(sp[1], SHUT_WR), 0);
  return NULL;
}

static void *generator_reads(void *arg) {
  (void)arg;
  weft_task *f;
  CHECK_EQ(weft_task_spawn(&f, feed, NULL, NULL), 0);
  weft_gen *g;
  CHECK_EQ(weft_gen_new(&g, chunks, IV(sp[0]), NULL), 0);
  void *v;
  int got = 0, rc;
  while ((rc = weft_gen_next(g, &v)) == WEFT_GEN_YIELDED)
    got += (int)VI(v);
  CHECK_EQ(rc, WEFT_GEN_RETURNED);
  CHECK_EQ(VI(v), 0); /* the end of the stream */
  CHECK_EQ(got, 15);
  CHECK_EQ(weft_gen_free(g), 0);
  CHECK_EQ(weft_task_join(f, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_generator_in_a_task_reads_a_socket) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  run(generator_reads, NULL);
  close(sp[0]);
  close(sp[1]);
}

/* After reads that would have blocked, the next calls wait before they
 * try (a guess that saves a system call in a ping-pong). A wrong guess must
 * cost nothing but time: data already there is read at once, a timeout of
 * 0 still tries, and the guess left on a number closed with plain close(2)
 * and reused does not hold up the new fd. */
static void *wrong_guesses(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
  char c;
  for (int i = 0; i < 3; i++) /* teach it that reads block */
    CHECK_EQ(weft_io_recv(p[0], &c, 1, 0, WEFT_US(100)), -ETIMEDOUT);
  CHECK_EQ(send(p[1], "ab", 2, 0), 2);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_io_recv(p[0], &c, 1, 0, WEFT_SEC(10)), 1);
  CHECK_EQ(c, 'a');
  CHECK_EQ(weft_io_recv(p[0], &c, 1, 0, 0), 1); /* a poll still tries */
  CHECK_EQ(c, 'b');
  CHECK(harness_now_ns() - t0 < WEFT_SEC(5));
  CHECK_EQ(weft_io_recv(p[0], &c, 1, 0, WEFT_US(100)), -ETIMEDOUT);
  int old = p[0];
  close(p[0]); /* plain close: the guess stays with the number */
  close(p[1]);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
  CHECK(p[0] == old || p[1] == old);
  int reused = p[0] == old ? p[0] : p[1], other = p[0] == old ? p[1] : p[0];
  CHECK_EQ(send(other, "z", 1, 0), 1);
  CHECK_EQ(weft_io_recv(reused, &c, 1, 0, WEFT_SEC(10)), 1);
  CHECK_EQ(c, 'z');
  weft_io_close(p[0]);
  weft_io_close(p[1]);
  return NULL;
}

TEST(a_wrong_guess_that_a_read_blocks_costs_nothing) {
  run(wrong_guesses, NULL);
}

/* A wait that ends without its report (a timeout) disarms the fd. Else,
 * with the fd closed by plain close(2) while a dup keeps its file alive,
 * epoll would keep the old file armed under that number, and report it
 * for the next file to get the number: a wait on that one would see
 * readiness that is not there. */
static void *no_stale_reports(void *arg) {
  (void)arg;
  int a[2], b[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
  fill(a[0]);
  CHECK_EQ(weft_io_wait(a[0], WEFT_IO_WRITE, WEFT_MS(5)), -ETIMEDOUT);
  int keep = dup(a[0]); /* the file lives on */
  int n = a[0];
  close(a[0]);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
  CHECK(b[0] == n || b[1] == n);
  int reused = n, reused_peer = b[0] == n ? b[1] : b[0];
  fill(reused);
  /* The old file becomes writable; the new one is not. */
  char buf[65536];
  while (recv(a[1], buf, sizeof buf, MSG_DONTWAIT) > 0)
    ;
  CHECK_EQ(weft_io_wait(reused, WEFT_IO_WRITE, WEFT_MS(30)), -ETIMEDOUT);
  close(keep);
  close(a[1]);
  weft_io_close(reused);
  weft_io_close(reused_peer);
  return NULL;
}

TEST(a_closed_and_reused_fd_sees_no_report_of_the_old_file) {
  run(no_stale_reports, NULL);
}

/* The guess that reads block is kept by number; a regular file that gets
 * the number (epoll cannot watch it) is read all the same. */
static void *guess_then_file(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
  char c;
  CHECK_EQ(weft_io_recv(p[0], &c, 1, 0, WEFT_US(100)), -ETIMEDOUT);
  int n = p[0];
  close(p[0]);
  char path[] = "/tmp/weft-guess-XXXXXX";
  int f = mkstemp(path);
  CHECK_EQ(f, n);
  unlink(path);
  CHECK_EQ(write(f, "q", 1), 1);
  CHECK_EQ(lseek(f, 0, SEEK_SET), 0);
  CHECK_EQ(weft_io_read(f, &c, 1, WEFT_SEC(5)), 1);
  CHECK_EQ(c, 'q');
  close(f);
  close(p[1]);
  return NULL;
}

TEST(a_guess_left_on_a_number_does_not_refuse_a_file) {
  run(guess_then_file, NULL);
}

/* --- bad timeouts ------------------------------------------------------------
 * A negative timeout other than WEFT_FOREVER is -EINVAL before the fd is
 * touched: no byte read or written (each call could complete at once), no
 * connection accepted or made, no file offset moved, and, in a task, no
 * O_NONBLOCK set on the fd. WEFT_FOREVER then does each. In a task and
 * outside one. */

static bool nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  CHECK(fl >= 0);
  return fl & O_NONBLOCK;
}

static int readable_bytes(int fd) {
  int n = -1;
  CHECK_EQ(ioctl(fd, FIONREAD, &n), 0);
  return n;
}

static void *bad_timeouts(void *arg) {
  (void)arg;
  static const int64_t bad[] = {-2, -3, WEFT_MS(-1), INT64_MIN + 1, INT64_MIN};
  int p[2], sv[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ(write(p[1], "a", 1), 1);
  CHECK_EQ(write(sv[0], "b", 1), 1);
  char path[] = "/tmp/weft-bad-timeout-XXXXXX";
  int file = mkstemp(path);
  CHECK(file >= 0);
  unlink(path);
  CHECK_EQ(write(file, "c", 1), 1);
  uint16_t port;
  int l = listen_loopback(4, &port);
  struct sockaddr_in sa = loopback(port);
  int pending = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK_EQ(connect(pending, (struct sockaddr *)&sa, sizeof sa), 0);
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(s >= 0);
  char c = 0;
  struct iovec iov = {&c, 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t t = bad[i];
    CHECK_EQ(weft_io_read(p[0], &c, 1, t), -EINVAL);
    CHECK_EQ(weft_io_readv(p[0], &iov, 1, t), -EINVAL);
    CHECK_EQ(weft_io_write(p[1], "x", 1, t), -EINVAL);
    CHECK_EQ(weft_io_writev(p[1], &iov, 1, t), -EINVAL);
    off_t at = 0;
    CHECK_EQ(weft_io_sendfile(p[1], file, &at, 1, t), -EINVAL);
    CHECK_EQ(at, 0);
    CHECK_EQ(readable_bytes(p[0]), 1); /* "a", nothing taken or added */
    CHECK_EQ(weft_io_recv(sv[1], &c, 1, 0, t), -EINVAL);
    CHECK_EQ(weft_io_send(sv[1], "x", 1, 0, t), -EINVAL);
    CHECK_EQ(readable_bytes(sv[1]), 1);
    CHECK_EQ(readable_bytes(sv[0]), 0);
    CHECK_EQ(weft_io_accept(l, NULL, NULL, t), -EINVAL);
    CHECK_EQ(weft_io_connect(s, (struct sockaddr *)&sa, sizeof sa, t), -EINVAL);
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    CHECK_EQ(getpeername(s, (struct sockaddr *)&peer, &len), -1);
    CHECK_EQ(errno, ENOTCONN);
    CHECK_EQ(c, 0);
    int fds[] = {p[0], p[1], sv[1], l, s};
    for (size_t k = 0; k < sizeof fds / sizeof fds[0]; k++)
      CHECK(!nonblocking(fds[k]));
  }
  /* WEFT_FOREVER does what each would have done. */
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_FOREVER), 1);
  CHECK_EQ(c, 'a');
  CHECK_EQ(weft_io_recv(sv[1], &c, 1, 0, WEFT_FOREVER), 1);
  CHECK_EQ(c, 'b');
  int conn = weft_io_accept(l, NULL, NULL, WEFT_FOREVER);
  CHECK(conn >= 0);
  CHECK_EQ(weft_io_connect(s, (struct sockaddr *)&sa, sizeof sa, WEFT_FOREVER),
           0);
  off_t at = 0;
  CHECK_EQ(weft_io_sendfile(p[1], file, &at, 1, WEFT_FOREVER), 1);
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_FOREVER), 1);
  CHECK_EQ(c, 'c');
  int all[] = {p[0], p[1], sv[0], sv[1], file, l, pending, s, conn};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
    CHECK_EQ(weft_io_close(all[k]), 0);
  return NULL;
}

TEST(a_bad_timeout_is_einval_and_touches_no_fd) {
  run(bad_timeouts, NULL);
  bad_timeouts(NULL);
}

/* --- the epoll poller's persistent registration ------------------------------
 * Each fd is registered once; a wait whose fd an io call has just shown
 * not ready (EAGAIN, a short read) makes no epoll_ctl. What it must keep:
 * a wait reports what was not read (weft_io_wait twice, reads shorter than
 * what came), and a number closed with close(2) and reused is watched. */

enum { EXCHANGES = 1000 };

/* A keep-alive server's loop, as examples/httpd's: wait for the request,
 * read it, answer. */
static void *exchange_server(void *arg) {
  int fd = (int)VI(arg);
  char buf[256];
  for (int i = 0; i < 10 + EXCHANGES; i++) {
    CHECK_EQ(weft_io_wait(fd, WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
    CHECK_EQ(weft_io_recv(fd, buf, sizeof buf, 0, WEFT_SEC(10)), 8);
    CHECK_EQ(weft_io_send(fd, "response", 8, 0, WEFT_SEC(10)), 8);
  }
  return NULL;
}

static void *exchange_main(void *arg) {
  (void)arg;
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  weft_task *server;
  CHECK_EQ(weft_task_spawn(&server, exchange_server, IV(sv[1]), NULL), 0);
  long before = 0;
  for (int i = 0; i < 10 + EXCHANGES; i++) {
    if (i == 10) /* registered by now */
      before = atomic_load(&epoll_ctls);
    /* Room for more than the answer: a read that took all it asked for
     * would say nothing of what is left, and the next wait would ask the
     * kernel (one epoll_ctl, as every wait made before). */
    char buf[64];
    CHECK_EQ(weft_io_send(sv[0], "request!", 8, 0, WEFT_SEC(10)), 8);
    CHECK_EQ(weft_io_recv(sv[0], buf, sizeof buf, 0, WEFT_SEC(10)), 8);
  }
  long made = atomic_load(&epoll_ctls) - before;
  /* One wait a side per exchange, each an epoll_ctl with one-shot
   * arming (1999 in 1000 exchanges); none now but a recheck of a wait
   * longer than WEFT__POLL_RECHECK (a slow run under Valgrind). */
  printf("  %ld epoll_ctl in %d exchanges\n", made, EXCHANGES);
  CHECK(made < EXCHANGES / 10);
  CHECK_EQ(weft_task_join(server, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_io_close(sv[0]), 0);
  CHECK_EQ(weft_io_close(sv[1]), 0);
  return NULL;
}

TEST(an_exchange_waits_without_an_epoll_ctl_per_wait) {
  run(exchange_main, NULL);
}

static void *waits_again(void *arg) {
  (void)arg;
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ(write(sv[1], "ab", 2), 2);
  int64_t t0 = harness_now_ns();
  /* Nothing read: each wait says so again, at once. */
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
    CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_WRITE, WEFT_SEC(10)), WEFT_IO_WRITE);
  }
  char c, buf[16];
  /* A read of all it asked for may leave more. */
  CHECK_EQ(weft_io_recv(sv[0], &c, 1, 0, WEFT_SEC(10)), 1);
  CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
  CHECK(harness_now_ns() - t0 < WEFT_SEC(5));
  /* A shorter one drained it. */
  CHECK_EQ(weft_io_recv(sv[0], buf, sizeof buf, 0, WEFT_SEC(10)), 1);
  CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ, WEFT_MS(20)), -ETIMEDOUT);
  CHECK_EQ(write(sv[1], "c", 1), 1);
  CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
  /* The peer gone: the end of file is reported until it is read, and
   * after. */
  CHECK_EQ(weft_io_recv(sv[0], buf, sizeof buf, 0, WEFT_SEC(10)), 1);
  close(sv[1]);
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
    CHECK_EQ(weft_io_recv(sv[0], buf, sizeof buf, 0, WEFT_SEC(10)), 0);
  }
  CHECK_EQ(weft_io_close(sv[0]), 0);
  return NULL;
}

TEST(a_wait_reports_again_what_was_not_read) { run(waits_again, NULL); }

/* Reads taught to wait before they try (see weft__hub_fd_wait_first),
 * each taking less than what came: none waits for more to come. */
static void *short_reads(void *arg) {
  (void)arg;
  int sv[2], p[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ(pipe(p), 0);
  char c;
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(weft_io_recv(sv[0], &c, 1, 0, WEFT_US(100)), -ETIMEDOUT);
    CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_US(100)), -ETIMEDOUT);
  }
  CHECK_EQ(write(sv[1], "abcd", 4), 4);
  CHECK_EQ(write(p[1], "efgh", 4), 4);
  int64_t t0 = harness_now_ns();
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(weft_io_recv(sv[0], &c, 1, 0, WEFT_SEC(10)), 1);
    CHECK_EQ(c, "abcd"[i]);
    CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_SEC(10)), 1);
    CHECK_EQ(c, "efgh"[i]);
  }
  CHECK(harness_now_ns() - t0 < WEFT_SEC(5));
  CHECK_EQ(weft_io_recv(sv[0], &c, 1, 0, WEFT_MS(10)), -ETIMEDOUT);
  CHECK_EQ(weft_io_read(p[0], &c, 1, WEFT_MS(10)), -ETIMEDOUT);
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(weft_io_close(sv[i]), 0);
    CHECK_EQ(weft_io_close(p[i]), 0);
  }
  return NULL;
}

TEST(reads_shorter_than_what_came_never_wait_for_more) {
  run(short_reads, NULL);
}

/* A program that drives its fds itself (non-blocking recv and send, a
 * weft_io_wait when one fails), as the hooks do, and tells the hub what its
 * calls found (weft_io_found): its waits cost no epoll_ctl either, and with
 * WEFT_IO_GUESS its reads of replies mostly wait first instead of failing. */

/* One read of an 8-byte message as such a program makes it: returns the
 * recv calls that failed with EAGAIN on the way. */
static int raw_read(int fd, bool guess) {
  char buf[64];
  int eagains = 0;
  if (guess)
    CHECK(weft_io_wait(fd, WEFT_IO_READ | WEFT_IO_GUESS, WEFT_SEC(10)) >= 0);
  ssize_t r;
  while ((r = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) < 0) {
    CHECK_EQ(errno, EAGAIN);
    eagains++;
    CHECK_EQ(weft_io_found(fd, WEFT_IO_READ, WEFT_IO_FOUND_NOT_READY), 0);
    CHECK_EQ(weft_io_wait(fd, WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
  }
  CHECK_EQ(r, 8);
  CHECK_EQ(weft_io_found(fd, WEFT_IO_READ, WEFT_IO_FOUND_SHORT_READ), 0);
  return eagains;
}

static void *raw_server(void *arg) {
  int fd = (int)VI(arg);
  for (int i = 0; i < 10 + EXCHANGES; i++) {
    raw_read(fd, false);
    CHECK_EQ(send(fd, "response", 8, MSG_DONTWAIT), 8);
  }
  return NULL;
}

static void *raw_exchange_main(void *arg) {
  bool guess = arg != NULL;
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  weft_task *server;
  CHECK_EQ(weft_task_spawn(&server, raw_server, IV(sv[1]), NULL), 0);
  long before = 0, eagains = 0;
  for (int i = 0; i < 10 + EXCHANGES; i++) {
    if (i == 10)
      before = atomic_load(&epoll_ctls);
    CHECK_EQ(send(sv[0], "request!", 8, MSG_DONTWAIT), 8);
    int e = raw_read(sv[0], guess);
    if (i >= 10)
      eagains += e;
  }
  long made = atomic_load(&epoll_ctls) - before;
  printf("  %s: %ld epoll_ctl and %ld EAGAIN in %d exchanges\n",
         guess ? "guessing" : "trying first", made, eagains, EXCHANGES);
  CHECK(made < EXCHANGES / 10); /* as above: rechecks of slow waits only */
  /* With poll(2) the hub knows nothing of readiness, and never guesses. */
  if (guess && strcmp(weft__poller_backend(), "epoll") == 0)
    CHECK(eagains < EXCHANGES / 4); /* one in eight tries first */
  else if (!guess)
    CHECK(eagains >= EXCHANGES); /* each found nothing yet */
  CHECK_EQ(weft_task_join(server, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_io_close(sv[0]), 0);
  CHECK_EQ(weft_io_close(sv[1]), 0);
  return NULL;
}

TEST(a_program_that_tells_what_it_found_waits_for_free) {
  run(raw_exchange_main, NULL);
  run(raw_exchange_main, IV(1));
}

/* A guess never makes a task wait for what something said is there: a
 * report of the hub, or a poll of the program's own (FOUND_READY). */
static void *guess_respects_readiness(void *arg) {
  (void)arg;
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  /* Taught that reads block, and drained. */
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(write(sv[1], "12345678", 8), 8);
    CHECK_EQ(raw_read(sv[0], true), 0);
    char c;
    CHECK_EQ(recv(sv[0], &c, 1, MSG_DONTWAIT), -1);
    CHECK_EQ(weft_io_found(sv[0], WEFT_IO_READ, WEFT_IO_FOUND_NOT_READY), 0);
  }
  /* Bytes come, and the program's own poll sees them: no wait. */
  CHECK_EQ(write(sv[1], "12345678", 8), 8);
  struct pollfd p = {.fd = sv[0], .events = POLLIN};
  CHECK_EQ(poll(&p, 1, 0), 1);
  CHECK_EQ(weft_io_found(sv[0], WEFT_IO_READ, WEFT_IO_FOUND_READY), 0);
  CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ | WEFT_IO_GUESS, WEFT_SEC(10)), 0);
  CHECK_EQ(raw_read(sv[0], false), 0);
  /* Cancelled, or with a timeout of 0: no wait either. */
  CHECK_EQ(weft_io_found(sv[0], WEFT_IO_READ, WEFT_IO_FOUND_NOT_READY), 0);
  CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ | WEFT_IO_GUESS, 0), 0);
  CHECK_EQ(weft_io_close(sv[0]), 0);
  CHECK_EQ(weft_io_close(sv[1]), 0);
  return NULL;
}

TEST(a_guess_never_waits_for_what_was_seen_ready) {
  run(guess_respects_readiness, NULL);
  /* Outside a task, nothing is guessed nor learnt. */
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ(weft_io_found(sv[0], WEFT_IO_READ, WEFT_IO_FOUND_NOT_READY), 0);
  CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ | WEFT_IO_GUESS, WEFT_SEC(10)), 0);
  close(sv[0]);
  close(sv[1]);
}

/* NOT_READY claimed of an fd that is ready, its report used up by an
 * earlier wait: the wait still ends, once the hub rechecks the fd
 * (WEFT__POLL_RECHECK, 25 ms), and reports what is there. */
static void *wrong_claim(void *arg) {
  (void)arg;
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ(write(sv[1], "a", 1), 1);
  CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_io_found(sv[0], WEFT_IO_READ, WEFT_IO_FOUND_NOT_READY), 0);
  CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
  CHECK(harness_now_ns() - t0 < WEFT_SEC(5));
  CHECK_EQ(weft_io_close(sv[0]), 0);
  CHECK_EQ(weft_io_close(sv[1]), 0);
  return NULL;
}

TEST(a_wrong_not_ready_claim_costs_time_not_a_wake_up) {
  run(wrong_claim, NULL);
}

static void *send_later(void *arg) {
  int fd = (int)VI(arg);
  CHECK_EQ(weft_sleep(WEFT_MS(2)), 0);
  CHECK_EQ(weft_io_send(fd, "z", 1, 0, WEFT_SEC(10)), 1);
  return NULL;
}

/* An fd in steady use (its waits free), closed with plain close(2), and
 * its number taken by a new socket: the new one's data reaches a wait on
 * it, whether the socket was made by socketpair(2) (found by the poller's
 * recheck) or connected through weft (known new). */
static void *reuse_behind_weft(void *arg) {
  (void)arg;
  uint16_t port;
  int l = listen_loopback(4, &port);
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  char buf[16];
  for (int i = 0; i < 3; i++) {
    weft_task *t;
    CHECK_EQ(weft_task_spawn(&t, send_later, IV(sv[1]), NULL), 0);
    CHECK_EQ(weft_io_recv(sv[0], buf, sizeof buf, 0, WEFT_SEC(10)), 1);
    CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  }
  int n = sv[0];
  close(sv[0]);
  close(sv[1]);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ(sv[0], n);
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, send_later, IV(sv[1]), NULL), 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_io_recv(sv[0], buf, sizeof buf, 0, WEFT_SEC(10)), 1);
  CHECK(harness_now_ns() - t0 < WEFT_SEC(5));
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  /* The same number for a connected socket. */
  close(sv[0]);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK_EQ(c, n);
  struct sockaddr_in sa = loopback(port);
  CHECK_EQ(weft_io_connect(c, (struct sockaddr *)&sa, sizeof sa, WEFT_SEC(10)),
           0);
  int a = weft_io_accept(l, NULL, NULL, WEFT_SEC(10));
  CHECK(a >= 0);
  CHECK_EQ(weft_task_spawn(&t, send_later, IV(a), NULL), 0);
  CHECK_EQ(weft_io_recv(c, buf, sizeof buf, 0, WEFT_SEC(10)), 1);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  int all[] = {sv[1], l, c, a};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    CHECK_EQ(weft_io_close(all[i]), 0);
  return NULL;
}

TEST(a_number_reused_behind_weft_is_watched) { run(reuse_behind_weft, NULL); }
