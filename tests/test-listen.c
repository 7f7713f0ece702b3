/*
 * weft_io_listen and weft_io_sendall: every address form, every malformed
 * one refused with nothing opened, busy ports and SO_REUSEPORT, Unix paths
 * (a stale socket file replaced, a live one or a plain file kept), the
 * fd's flags, from a task and from a plain thread; sendall moving 8 MiB to
 * a slow reader in order, its timeout bounding the whole call, its bad
 * input refused before the fd is touched, and a closed peer.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <weft.h>

#include "../src/io/listen.h"
#include "harness.h"

/* The lowest fd number free: a call that leaves an fd open on failure
 * moves it. */
static int lowest_free_fd(void) {
  int fd = dup(0);
  CHECK(fd >= 0);
  close(fd);
  return fd;
}

static void check_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  CHECK(fl >= 0);
  CHECK(fl & O_NONBLOCK);
  int fdfl = fcntl(fd, F_GETFD);
  CHECK(fdfl >= 0);
  CHECK(fdfl & FD_CLOEXEC);
  int on = 0;
  socklen_t len = sizeof on;
  CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len), 0);
  CHECK(on);
}

static int sockopt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  CHECK_EQ(getsockopt(fd, level, name, &v, &len), 0);
  return v;
}

/* Connects to 127.0.0.1:port, and accepts that connection on lfd. */
static void connect_v4_and_accept(int lfd, int port) {
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(c >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(weft_io_connect(c, (struct sockaddr *)&sa, sizeof sa, WEFT_SEC(10)),
           0);
  int a = weft_io_accept(lfd, NULL, NULL, WEFT_SEC(10));
  CHECK(a >= 0);
  CHECK_EQ(write(c, "hi", 2), 2);
  char buf[2];
  CHECK_EQ(weft_io_read(a, buf, 2, WEFT_SEC(10)), 2);
  CHECK(!memcmp(buf, "hi", 2));
  close(a);
  close(c);
}

TEST(an_ipv4_literal_with_port_zero) {
  int fd = weft_io_listen("127.0.0.1:0", 0, 0);
  CHECK(fd >= 0);
  check_flags(fd);
  CHECK_EQ(sockopt(fd, SOL_SOCKET, SO_REUSEADDR), 1);
  CHECK_EQ(sockopt(fd, SOL_SOCKET, SO_REUSEPORT), 0);
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  CHECK_EQ(sa.sin_family, AF_INET);
  CHECK_EQ(ntohl(sa.sin_addr.s_addr), INADDR_LOOPBACK);
  int port = ntohs(sa.sin_port);
  CHECK(port > 0);
  CHECK_EQ(weft__listen_port(fd), port);
  connect_v4_and_accept(fd, port);
  CHECK_EQ(close(fd), 0);
}

TEST(an_ipv6_literal_in_brackets) {
  int fd = weft_io_listen("[::1]:0", 16, 0);
  if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)
    harness_skip("no IPv6 loopback on this host");
  CHECK(fd >= 0);
  check_flags(fd);
  struct sockaddr_in6 sa;
  socklen_t len = sizeof sa;
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  CHECK_EQ(sa.sin6_family, AF_INET6);
  CHECK(IN6_IS_ADDR_LOOPBACK(&sa.sin6_addr));
  CHECK(ntohs(sa.sin6_port) > 0);
  CHECK_EQ(weft__listen_port(fd), ntohs(sa.sin6_port));
  CHECK_EQ(sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
  /* A connection to it works. */
  int c = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(c >= 0);
  CHECK_EQ(weft_io_connect(c, (struct sockaddr *)&sa, len, WEFT_SEC(10)), 0);
  int a = weft_io_accept(fd, NULL, NULL, WEFT_SEC(10));
  CHECK(a >= 0);
  close(a);
  close(c);
  close(fd);
}

TEST(every_address_takes_ipv4_too) {
  int fd = weft_io_listen(":0", 0, 0);
  CHECK(fd >= 0);
  check_flags(fd);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    CHECK(IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr));
    CHECK_EQ(sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
  } else {
    CHECK_EQ(ss.ss_family, AF_INET); /* a host without IPv6 */
    CHECK_EQ(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_ANY));
  }
  int port = weft__listen_port(fd);
  CHECK(port > 0);
  connect_v4_and_accept(fd, port);
  close(fd);
}

TEST(a_name_is_resolved) {
  int fd = weft_io_listen("localhost:0", 0, 0);
  CHECK(fd >= 0);
  check_flags(fd);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
  CHECK(weft__listen_port(fd) > 0);
  close(fd);
}

TEST_TIMEOUT(a_name_that_does_not_resolve, 60) {
  int low = lowest_free_fd();
  CHECK_EQ(weft_io_listen("no-such-host.invalid:80", 0, 0), -EADDRNOTAVAIL);
  CHECK_EQ(lowest_free_fd(), low);
}

TEST(malformed_addresses_open_nothing) {
  static const char *const bad[] = {
      "",
      "127.0.0.1",
      "localhost",
      "1.2.3.4:",
      ":",
      ":65536",
      ":99999999999999999999",
      ":-1",
      ":+1",
      ":80x",
      ": 80",
      ":0x50",
      "[::1",
      "[::1]",
      "[::1]80",
      "[]:80",
      "[::1]:",
      "[::1]:8o",
      "::1:80",
      "a[b:80",
      "[1.2.3.4]:80",
      "[localhost]:80",
      "[::1]x:80",
      "unix:",
      "unix:@",
  };
  int low = lowest_free_fd();
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = weft_io_listen(bad[i], 0, 0);
    if (rc != -EINVAL)
      harness_fail(__FILE__, __LINE__, "\"%s\": %d, not -EINVAL", bad[i], rc);
  }
  CHECK_EQ(weft_io_listen(NULL, 0, 0), -EINVAL);
  /* A host longer than any name: no such name; in brackets, no literal. */
  static char longer[2100];
  memset(longer, 'h', 2000);
  strcpy(longer + 2000, ":80");
  CHECK_EQ(weft_io_listen(longer, 0, 0), -EADDRNOTAVAIL);
  longer[0] = '[';
  strcpy(longer + 1999, "]:80");
  CHECK_EQ(weft_io_listen(longer, 0, 0), -EINVAL);
  CHECK_EQ(lowest_free_fd(), low);
}

TEST(a_unix_path_too_long) {
  struct sockaddr_un un;
  char addr[sizeof un.sun_path + 16];
  /* The path and its NUL must fit: sizeof sun_path - 1 bytes do not. */
  memcpy(addr, "unix:", 5);
  memset(addr + 5, 'a', sizeof un.sun_path);
  addr[5 + sizeof un.sun_path] = '\0';
  CHECK_EQ(weft_io_listen(addr, 0, 0), -ENAMETOOLONG);
  /* An abstract name of sun_path's size less the leading NUL fits; one
   * byte more does not. */
  memcpy(addr, "unix:@", 6);
  memset(addr + 6, 'b', sizeof un.sun_path);
  addr[6 + sizeof un.sun_path] = '\0';
  CHECK_EQ(weft_io_listen(addr, 0, 0), -ENAMETOOLONG);
}

TEST(flags_and_backlog_are_checked_first) {
  int low = lowest_free_fd();
  CHECK_EQ(weft_io_listen("127.0.0.1:0", 0, 2), -EINVAL);
  CHECK_EQ(weft_io_listen("127.0.0.1:0", 0, ~0u), -EINVAL);
  CHECK_EQ(weft_io_listen("127.0.0.1:0", -1, 0), -EINVAL);
  CHECK_EQ(weft_io_listen("127.0.0.1:0", INT_MIN, 0), -EINVAL);
  CHECK_EQ(lowest_free_fd(), low);
  /* A backlog above the kernel's cap is the cap, no error. */
  int fd = weft_io_listen("127.0.0.1:0", INT_MAX, 0);
  CHECK(fd >= 0);
  close(fd);
}

static char busy[32];

static int listen_busy_port(unsigned flags) {
  int fd = weft_io_listen("127.0.0.1:0", 0, flags);
  CHECK(fd >= 0);
  int port = weft__listen_port(fd);
  CHECK(port > 0);
  snprintf(busy, sizeof busy, "127.0.0.1:%d", port);
  return fd;
}

TEST(a_busy_port) {
  int low = lowest_free_fd();
  int fd = listen_busy_port(0);
  CHECK_EQ(weft_io_listen(busy, 0, 0), -EADDRINUSE);
  /* SO_REUSEPORT on the newcomer only does not share the port. */
  CHECK_EQ(weft_io_listen(busy, 0, WEFT_LISTEN_REUSEPORT), -EADDRINUSE);
  close(fd);
  CHECK_EQ(lowest_free_fd(), low);
}

TEST(a_port_shared_with_reuseport) {
  int a = listen_busy_port(WEFT_LISTEN_REUSEPORT);
  CHECK_EQ(sockopt(a, SOL_SOCKET, SO_REUSEPORT), 1);
  int b = weft_io_listen(busy, 0, WEFT_LISTEN_REUSEPORT);
  CHECK(b >= 0);
  CHECK_EQ(weft__listen_port(b), weft__listen_port(a));
  check_flags(b);
  close(b);
  close(a);
}

/* A fresh directory for Unix socket files, removed by cleanup_dir. */
static char dir[64];

static void make_dir(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/weft-listen-XXXXXX",
           tmp && strlen(tmp) < 32 ? tmp : "/tmp");
  CHECK(mkdtemp(dir) != NULL);
}

static void path_in_dir(char *out, size_t cap, const char *name) {
  CHECK((size_t)snprintf(out, cap, "%s/%s", dir, name) < cap);
}

static bool is_socket_file(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int unix_connect(const char *path) {
  int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(c >= 0);
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  CHECK(strlen(path) < sizeof un.sun_path);
  memcpy(un.sun_path, path, strlen(path) + 1);
  int rc = weft_io_connect(c, (struct sockaddr *)&un, sizeof un, WEFT_SEC(10));
  close(c);
  return rc;
}

TEST(a_unix_path) {
  make_dir();
  char path[128], addr[160];
  path_in_dir(path, sizeof path, "sock");
  snprintf(addr, sizeof addr, "unix:%s", path);
  int fd = weft_io_listen(addr, 0, 0);
  CHECK(fd >= 0);
  check_flags(fd);
  CHECK(is_socket_file(path));
  CHECK_EQ(weft__listen_port(fd), -EINVAL);
  CHECK_EQ(unix_connect(path), 0);
  int a = weft_io_accept(fd, NULL, NULL, WEFT_SEC(10));
  CHECK(a >= 0);
  close(a);
  /* Someone listens there: it is not taken over. */
  int low = lowest_free_fd();
  CHECK_EQ(weft_io_listen(addr, 0, 0), -EADDRINUSE);
  CHECK_EQ(lowest_free_fd(), low);
  CHECK_EQ(unix_connect(path), 0); /* the first still has it */
  /* Closed without an unlink: the file is left, stale, and replaced. */
  close(fd);
  CHECK(is_socket_file(path));
  CHECK_EQ(unix_connect(path), -ECONNREFUSED);
  fd = weft_io_listen(addr, 0, 0);
  CHECK(fd >= 0);
  CHECK_EQ(unix_connect(path), 0);
  close(fd);
  CHECK_EQ(unlink(path), 0);
  CHECK_EQ(rmdir(dir), 0);
}

TEST(a_socket_file_bound_but_never_listening_is_stale) {
  make_dir();
  char path[128], addr[160];
  path_in_dir(path, sizeof path, "sock");
  snprintf(addr, sizeof addr, "unix:%s", path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(s >= 0);
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  CHECK(strlen(path) < sizeof un.sun_path);
  memcpy(un.sun_path, path, strlen(path) + 1);
  CHECK_EQ(bind(s, (struct sockaddr *)&un, sizeof un), 0);
  close(s);
  int fd = weft_io_listen(addr, 0, 0);
  CHECK(fd >= 0);
  CHECK_EQ(unix_connect(path), 0);
  close(fd);
  CHECK_EQ(unlink(path), 0);
  CHECK_EQ(rmdir(dir), 0);
}

TEST(a_unix_path_held_by_another_file) {
  make_dir();
  char path[128], addr[160];
  path_in_dir(path, sizeof path, "file");
  snprintf(addr, sizeof addr, "unix:%s", path);
  int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  CHECK(f >= 0);
  CHECK_EQ(write(f, "keep", 4), 4);
  close(f);
  int low = lowest_free_fd();
  CHECK_EQ(weft_io_listen(addr, 0, 0), -EADDRINUSE);
  CHECK_EQ(lowest_free_fd(), low);
  struct stat st;
  CHECK_EQ(stat(path, &st), 0); /* left as it was */
  CHECK(S_ISREG(st.st_mode));
  CHECK_EQ(st.st_size, 4);
  CHECK_EQ(unlink(path), 0);
  /* A directory is no socket either. */
  CHECK_EQ(mkdir(path, 0700), 0);
  CHECK_EQ(weft_io_listen(addr, 0, 0), -EADDRINUSE);
  CHECK_EQ(rmdir(path), 0);
  CHECK_EQ(rmdir(dir), 0);
}

TEST(a_unix_path_in_a_missing_directory) {
  make_dir();
  char addr[160];
  snprintf(addr, sizeof addr, "unix:%s/no-such-dir/sock", dir);
  int low = lowest_free_fd();
  CHECK_EQ(weft_io_listen(addr, 0, 0), -ENOENT);
  CHECK_EQ(lowest_free_fd(), low);
  CHECK_EQ(rmdir(dir), 0);
}

TEST(an_abstract_unix_name) {
  char addr[80], name[64];
  snprintf(name, sizeof name, "weft-test-listen-%ld", (long)getpid());
  snprintf(addr, sizeof addr, "unix:@%s", name);
  int fd = weft_io_listen(addr, 0, 0);
  CHECK(fd >= 0);
  check_flags(fd);
  struct sockaddr_un un;
  socklen_t len = sizeof un;
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&un, &len), 0);
  CHECK_EQ(un.sun_family, AF_UNIX);
  CHECK_EQ(un.sun_path[0], '\0');
  size_t n = strlen(name);
  CHECK_EQ(len, offsetof(struct sockaddr_un, sun_path) + 1 + n);
  CHECK(!memcmp(un.sun_path + 1, name, n));
  CHECK_EQ(weft_io_listen(addr, 0, 0), -EADDRINUSE);
  /* A connection to the name, as long as the address says. */
  int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(c >= 0);
  CHECK_EQ(weft_io_connect(c, (struct sockaddr *)&un, len, WEFT_SEC(10)), 0);
  close(c);
  close(fd);
}

TEST(listen_port_of_what_is_not_tcp) {
  CHECK_EQ(weft__listen_port(-1), -EBADF);
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  CHECK(u >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(bind(u, (struct sockaddr *)&sa, sizeof sa), 0);
  CHECK_EQ(weft__listen_port(u), -EINVAL);
  close(u);
  int p[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(weft__listen_port(p[0]), -ENOTSOCK);
  close(p[0]);
  close(p[1]);
}

/* ---- listen, accept and sendall in a task, and in a plain thread ---- */

static void *echo_once(void *arg) {
  int lfd = (int)VI(arg);
  int a = weft_io_accept(lfd, NULL, NULL, WEFT_SEC(10));
  CHECK(a >= 0);
  char buf[5];
  CHECK_EQ(weft_io_recv(a, buf, 5, MSG_WAITALL, WEFT_SEC(10)), 5);
  CHECK_EQ(weft_io_sendall(a, buf, 5, 0, WEFT_SEC(10)), 5);
  close(a);
  return NULL;
}

/* Listens, and talks to itself through the listener: one task accepts,
 * the caller connects. */
static void *listen_and_talk(void *arg) {
  (void)arg;
  int lfd = weft_io_listen("127.0.0.1:0", 0, 0);
  CHECK(lfd >= 0);
  check_flags(lfd);
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, echo_once, IV(lfd), NULL), 0);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(c >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)weft__listen_port(lfd)),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(weft_io_connect(c, (struct sockaddr *)&sa, sizeof sa, WEFT_SEC(10)),
           0);
  CHECK_EQ(weft_io_sendall(c, "hello", 5, 0, WEFT_SEC(10)), 5);
  char buf[5];
  CHECK_EQ(weft_io_recv(c, buf, 5, MSG_WAITALL, WEFT_SEC(10)), 5);
  CHECK(!memcmp(buf, "hello", 5));
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  close(c);
  close(lfd);
  return NULL;
}

TEST(listen_and_sendall_in_a_task) {
  CHECK_EQ(weft_run(listen_and_talk, NULL, NULL), 0);
}

static void *echo_thread(void *arg) { return echo_once(arg); }

static void *listen_in_a_thread(void *arg) {
  (void)arg;
  int lfd = weft_io_listen(":0", 0, 0);
  CHECK(lfd >= 0);
  check_flags(lfd);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, echo_thread, IV(lfd)), 0);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(c >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)weft__listen_port(lfd)),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(weft_io_connect(c, (struct sockaddr *)&sa, sizeof sa, WEFT_SEC(10)),
           0);
  CHECK_EQ(weft_io_sendall(c, "hello", 5, 0, WEFT_SEC(10)), 5);
  char buf[5];
  CHECK_EQ(weft_io_recv(c, buf, 5, MSG_WAITALL, WEFT_SEC(10)), 5);
  CHECK(!memcmp(buf, "hello", 5));
  CHECK_EQ(pthread_join(th, NULL), 0);
  close(c);
  close(lfd);
  return NULL;
}

TEST(listen_and_sendall_in_plain_threads) {
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, listen_in_a_thread, NULL), 0);
  CHECK_EQ(pthread_join(th, NULL), 0);
}

/* ---- sendall ---- */

#define BIG (8u << 20)

static unsigned char pattern(size_t i) {
  return (unsigned char)(i * 7 + (i >> 13));
}

static unsigned char *big_buffer(void) {
  unsigned char *b = malloc(BIG);
  CHECK(b != NULL);
  for (size_t i = 0; i < BIG; i++)
    b[i] = pattern(i);
  return b;
}

static int sp[2];

/* Reads everything, a small piece at a time with a pause now and then,
 * checking each byte's place. Returns the count read. */
static void *slow_reader(void *arg) {
  (void)arg;
  unsigned char buf[16384];
  size_t got = 0;
  for (unsigned round = 0; got < BIG; round++) {
    if (round % 16 == 0)
      CHECK_EQ(weft_sleep(WEFT_MS(1)), 0);
    ssize_t n = weft_io_recv(sp[1], buf, sizeof buf, 0, WEFT_SEC(30));
    CHECK(n > 0);
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] != pattern(got + (size_t)i))
        harness_fail(__FILE__, __LINE__, "byte %zu out of place",
                     got + (size_t)i);
    got += (size_t)n;
  }
  return IV(got);
}

static void *send_big(void *arg) {
  (void)arg;
  unsigned char *b = big_buffer();
  weft_task *r;
  CHECK_EQ(weft_task_spawn(&r, slow_reader, NULL, NULL), 0);
  CHECK_EQ(weft_io_sendall(sp[0], b, BIG, 0, WEFT_SEC(60)), BIG);
  void *got;
  CHECK_EQ(weft_task_join(r, WEFT_FOREVER, &got), 0);
  CHECK_EQ(VI(got), BIG);
  free(b);
  return NULL;
}

TEST_TIMEOUT(sendall_moves_8_mib_to_a_slow_reader_in_order, 120) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  CHECK_EQ(weft_run(send_big, NULL, NULL), 0);
  close(sp[0]);
  close(sp[1]);
}

static void *thread_reader(void *arg) {
  (void)arg;
  unsigned char *buf = malloc(BIG);
  CHECK(buf != NULL);
  size_t got = 0;
  while (got < BIG) {
    ssize_t n = weft_io_read(sp[1], buf + got, BIG - got, WEFT_SEC(30));
    CHECK(n > 0);
    got += (size_t)n;
  }
  for (size_t i = 0; i < BIG; i++)
    if (buf[i] != pattern(i))
      harness_fail(__FILE__, __LINE__, "byte %zu out of place", i);
  free(buf);
  return NULL;
}

TEST_TIMEOUT(sendall_outside_a_task_on_a_blocking_socket, 120) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  unsigned char *b = big_buffer();
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, thread_reader, NULL), 0);
  CHECK_EQ(weft_io_sendall(sp[0], b, BIG, 0, WEFT_SEC(60)), BIG);
  CHECK_EQ(pthread_join(th, NULL), 0);
  /* Left blocking, as weft leaves a thread's fd. */
  CHECK(!(fcntl(sp[0], F_GETFL) & O_NONBLOCK));
  free(b);
  close(sp[0]);
  close(sp[1]);
}

/* A reader that takes 64 KiB every 20 ms: each send makes progress well
 * within a timeout of its own, so a timeout per send would let the sendall
 * run until the reader has it all (seconds), while one of the whole call
 * ends it at the deadline. */
static volatile int stop_trickle;

static void *trickle_reader(void *arg) {
  (void)arg;
  static char buf[65536];
  while (!stop_trickle) {
    CHECK_EQ(weft_sleep(WEFT_MS(20)), 0);
    ssize_t n = weft_io_recv(sp[1], buf, sizeof buf, 0, 0);
    CHECK(n > 0 || n == -ETIMEDOUT);
  }
  return NULL;
}

static void *send_against_trickle(void *arg) {
  (void)arg;
  unsigned char *b = big_buffer();
  weft_task *r;
  CHECK_EQ(weft_task_spawn(&r, trickle_reader, NULL, NULL), 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_io_sendall(sp[0], b, BIG, 0, WEFT_MS(300)), -ETIMEDOUT);
  int64_t took = harness_now_ns() - t0;
  CHECK(took >= WEFT_MS(250));
  CHECK(took < (int64_t)(WEFT_SEC(10) * harness_timeout_multiplier()));
  stop_trickle = 1;
  CHECK_EQ(weft_task_join(r, WEFT_FOREVER, NULL), 0);
  free(b);
  return NULL;
}

TEST_TIMEOUT(sendall_timeout_bounds_the_whole_call, 60) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  CHECK_EQ(weft_run(send_against_trickle, NULL, NULL), 0);
  close(sp[0]);
  close(sp[1]);
}

TEST(sendall_to_a_reader_that_never_reads_times_out) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  unsigned char *b = big_buffer();
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_io_sendall(sp[0], b, BIG, 0, WEFT_MS(200)), -ETIMEDOUT);
  int64_t took = harness_now_ns() - t0;
  CHECK(took >= WEFT_MS(150));
  CHECK(took < (int64_t)(WEFT_SEC(10) * harness_timeout_multiplier()));
  /* A timeout of 0 tries once: no room, so at once. */
  CHECK_EQ(weft_io_sendall(sp[0], b, BIG, 0, 0), -ETIMEDOUT);
  free(b);
  close(sp[0]);
  close(sp[1]);
}

TEST(sendall_refuses_bad_input_before_touching_the_fd) {
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  CHECK_EQ(weft_io_sendall(sp[0], "abc", 3, 0, -2), -EINVAL);
  CHECK_EQ(weft_io_sendall(sp[0], "abc", 3, 0, INT64_MIN), -EINVAL);
  CHECK_EQ(weft_io_sendall(sp[0], "abc", 3, MSG_PEEK, WEFT_SEC(1)), -EINVAL);
  CHECK_EQ(weft_io_sendall(sp[0], "abc", 0, MSG_PEEK, WEFT_SEC(1)), -EINVAL);
  CHECK_EQ(weft_io_sendall(sp[0], "abc", (size_t)SSIZE_MAX + 1, 0, 0), -EINVAL);
  char c;
  CHECK_EQ(recv(sp[1], &c, 1, MSG_DONTWAIT), -1); /* nothing was sent */
  CHECK_EQ(errno, EAGAIN);
  /* len 0 sends nothing, and asks nothing of the fd. */
  CHECK_EQ(weft_io_sendall(sp[0], NULL, 0, 0, WEFT_SEC(1)), 0);
  CHECK_EQ(weft_io_sendall(-1, NULL, 0, 0, WEFT_FOREVER), 0);
  /* Small sends that fit at once, with every kind of timeout. */
  CHECK_EQ(weft_io_sendall(sp[0], "abc", 3, 0, 0), 3);
  CHECK_EQ(weft_io_sendall(sp[0], "def", 3, MSG_NOSIGNAL, WEFT_FOREVER), 3);
  CHECK_EQ(weft_io_sendall(sp[0], "ghi", 3, 0, WEFT_SEC(1)), 3);
  char buf[9];
  CHECK_EQ(recv(sp[1], buf, 9, MSG_WAITALL), 9);
  CHECK(!memcmp(buf, "abcdefghi", 9));
  CHECK_EQ(weft_io_sendall(-1, "abc", 3, 0, WEFT_SEC(1)), -EBADF);
  close(sp[0]);
  close(sp[1]);
}

static void *send_to_closed(void *arg) {
  (void)arg;
  return IV(weft_io_sendall(sp[0], "abc", 3, 0, WEFT_SEC(10)));
}

TEST(sendall_to_a_closed_peer_is_epipe) {
  /* SIGPIPE keeps its default action: a raised one would end the case. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  close(sp[1]);
  CHECK_EQ(weft_io_sendall(sp[0], "abc", 3, 0, WEFT_SEC(10)), -EPIPE);
  void *r;
  CHECK_EQ(weft_run(send_to_closed, NULL, &r), 0);
  CHECK_EQ(VI(r), -EPIPE);
  close(sp[0]);
}

TEST(sendall_stops_at_the_callers_deadline) {
  /* weft_deadline_set bounds a sendall without a timeout of its own. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  unsigned char *b = big_buffer();
  int64_t old;
  CHECK_EQ(weft_deadline_set(weft_now() + WEFT_MS(200), &old), 0);
  CHECK_EQ(weft_io_sendall(sp[0], b, BIG, 0, WEFT_FOREVER), -ETIMEDOUT);
  CHECK_EQ(weft_io_sendall(sp[0], b, BIG, 0, WEFT_SEC(60)), -ETIMEDOUT);
  CHECK_EQ(weft_deadline_set(old, NULL), 0);
  free(b);
  close(sp[0]);
  close(sp[1]);
}
