/*
 * The hooks (weft/hook.h): libc's blocking calls, made in a task, park the
 * task and let the hub run the others; made outside a task, they are
 * libc's. Each case checks both what the call returns (errno included) and
 * that other tasks ran while it waited.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft/hook.h>
#include <weft/hub.h>
#include <weft/io.h>

#include "harness.h"

/* fcntl(F_GETFL) past the hooks: the flags the kernel has. */
static int kernel_flags(int fd) { return (int)syscall(SYS_fcntl, fd, F_GETFL); }

/* A task that counts while others wait: proof that the hub ran. */
struct ticker {
  volatile int ticks;
  volatile bool stop;
};

static void *tick(void *arg) {
  struct ticker *t = arg;
  while (!t->stop) {
    t->ticks++;
    usleep(2000); /* hooked: parks */
  }
  return NULL;
}

static weft_task *start_ticker(struct ticker *t) {
  weft_task *task;
  CHECK_EQ(weft_task_spawn(&task, tick, t, NULL), 0);
  return task;
}

static void stop_ticker(struct ticker *t, weft_task *task) {
  t->stop = true;
  CHECK_EQ(weft_task_join(task, WEFT_FOREVER, NULL), 0);
  weft_task_detach(task);
}

/* Writes one byte to fd after ms milliseconds, from a task. */
struct later {
  int fd;
  int ms;
};

static void *write_later(void *arg) {
  struct later *l = arg;
  usleep((useconds_t)l->ms * 1000);
  CHECK_EQ(write(l->fd, "x", 1), 1);
  return NULL;
}

static weft_task *spawn(weft_task_fn fn, void *arg) {
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, fn, arg, NULL), 0);
  return t;
}

static void join(weft_task *t) {
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  weft_task_detach(t);
}

TEST(installed_and_enabled_only_in_tasks) {
  CHECK(weft_hook_installed());
  CHECK(!weft_hook_enabled()); /* not in a task */
}

static void *enabled_in_task(void *arg) {
  (void)arg;
  CHECK(weft_hook_enabled());
  CHECK(weft_hook_enable(false));
  CHECK(!weft_hook_enabled());
  CHECK(!weft_hook_enable(true));
  CHECK(weft_hook_enabled());
  return NULL;
}

TEST(a_task_can_turn_them_off_and_on) {
  CHECK_EQ(weft_run(enabled_in_task, NULL, NULL), 0);
}

/* A read of an empty blocking pipe parks its task: the ticker runs, and
 * the pipe is still blocking for everyone. */
static void *read_parks(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  struct ticker tk = {0};
  weft_task *ticker = start_ticker(&tk);
  struct later l = {p[1], 50};
  weft_task *writer = spawn(write_later, &l);
  char c;
  CHECK_EQ(read(p[0], &c, 1), 1);
  CHECK_EQ(c, 'x');
  CHECK(tk.ticks >= 3);
  CHECK_EQ(kernel_flags(p[0]) & O_NONBLOCK, 0);
  CHECK_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
  join(writer);
  stop_ticker(&tk, ticker);
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(a_blocking_read_parks_only_its_task) {
  CHECK_EQ(weft_run(read_parks, NULL, NULL), 0);
}

static void *thread_writes_later(void *arg) {
  struct timespec ts = {0, 50 * 1000000};
  nanosleep(&ts, NULL);
  CHECK_EQ(write(*(int *)arg, "y", 1), 1);
  return NULL;
}

TEST(outside_a_task_the_calls_are_libcs) {
  int p[2];
  CHECK_EQ(pipe(p), 0);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, thread_writes_later, &p[1]), 0);
  char c;
  CHECK_EQ(read(p[0], &c, 1), 1); /* blocks the thread, as libc */
  CHECK_EQ(c, 'y');
  pthread_join(th, NULL);
  errno = 0;
  CHECK_EQ(read(-1, &c, 1), -1);
  CHECK_EQ(errno, EBADF);
  close(p[0]);
  close(p[1]);
}

static void *errors_as_libc(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  char c = 0;
  errno = 0;
  CHECK_EQ(read(-1, &c, 1), -1);
  CHECK_EQ(errno, EBADF);
  errno = 0;
  CHECK_EQ(read(p[1], &c, 1), -1); /* the write end */
  CHECK_EQ(errno, EBADF);
  errno = 0;
  CHECK_EQ(recv(p[0], &c, 1, 0), -1);
  CHECK_EQ(errno, ENOTSOCK);
  errno = 0;
  CHECK_EQ(write(p[0], &c, 1), -1);
  CHECK_EQ(errno, EBADF);
  /* A non-blocking fd answers EAGAIN, as without the hooks. */
  CHECK_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  errno = 0;
  CHECK_EQ(read(p[0], &c, 1), -1);
  CHECK_EQ(errno, EAGAIN);
  int s[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  errno = 0;
  CHECK_EQ(recv(s[0], &c, 1, MSG_DONTWAIT), -1);
  CHECK_EQ(errno, EAGAIN);
  close(s[0]);
  close(s[1]);
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(errors_are_libcs_in_a_task) {
  CHECK_EQ(weft_run(errors_as_libc, NULL, NULL), 0);
}

/* A blocking write of more than the socket holds writes all of it, in
 * pieces, while a reader task drains the other end. */
#define BIG (4 << 20)

static void *drain(void *arg) {
  int fd = *(int *)arg;
  char *buf = malloc(65536);
  size_t got = 0;
  unsigned sum = 0;
  while (got < BIG) {
    ssize_t n = read(fd, buf, 65536);
    CHECK(n > 0);
    for (ssize_t i = 0; i < n; i++)
      sum += (unsigned char)buf[i];
    got += (size_t)n;
  }
  free(buf);
  return (void *)(uintptr_t)sum;
}

static void *write_all(void *arg) {
  (void)arg;
  int s[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  char *buf = malloc(BIG);
  unsigned sum = 0;
  for (int i = 0; i < BIG; i++) {
    buf[i] = (char)(i * 7);
    sum += (unsigned char)buf[i];
  }
  weft_task *reader = spawn(drain, &s[1]);
  CHECK_EQ(write(s[0], buf, BIG), BIG);
  void *got;
  CHECK_EQ(weft_task_join(reader, WEFT_FOREVER, &got), 0);
  weft_task_detach(reader);
  CHECK_EQ((uintptr_t)got, sum);
  /* writev and sendmsg too. */
  reader = spawn(drain, &s[1]);
  struct iovec v[3] = {
      {buf, 1000}, {buf + 1000, BIG / 2 - 1000}, {buf + BIG / 2, BIG / 2}};
  CHECK_EQ(writev(s[0], v, 3), BIG);
  CHECK_EQ(weft_task_join(reader, WEFT_FOREVER, &got), 0);
  weft_task_detach(reader);
  CHECK_EQ((uintptr_t)got, sum);
  reader = spawn(drain, &s[1]);
  struct msghdr m = {.msg_iov = v, .msg_iovlen = 3};
  CHECK_EQ(sendmsg(s[0], &m, 0), BIG);
  CHECK_EQ(weft_task_join(reader, WEFT_FOREVER, &got), 0);
  weft_task_detach(reader);
  CHECK_EQ((uintptr_t)got, sum);
  free(buf);
  close(s[0]);
  close(s[1]);
  return NULL;
}

TEST(a_blocking_write_writes_everything) {
  CHECK_EQ(weft_run(write_all, NULL, NULL), 0);
}

/* What a recv in this task does on an empty socket: EAGAIN at once (the
 * program's non-blocking view, or a short SO_RCVTIMEO), or ETIMEDOUT when
 * it waited for the task's deadline, as a blocking socket's does. */
static int empty_recv_says(int fd) {
  char c;
  CHECK_EQ(weft_deadline_set(weft_now() + WEFT_MS(50), NULL), 0);
  errno = 0;
  CHECK_EQ(recv(fd, &c, 1, 0), -1);
  int e = errno;
  CHECK_EQ(weft_deadline_set(WEFT_FOREVER, NULL), 0);
  return e;
}

static void set_nonblocking(int fd, bool on) {
  int fl = fcntl(fd, F_GETFL);
  CHECK(fl >= 0);
  CHECK_EQ(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK), 0);
}

/* A socketpair whose first end takes the number `want` (the lowest free
 * one), non-blocking or not; the other end goes to *peer. */
static void socketpair_at(int want, bool nonblocking, int *peer) {
  int s[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0),
                      0, s),
           0);
  CHECK_EQ(s[0], want);
  *peer = s[1];
}

/* The hooks keep what they learn of a socket (its O_NONBLOCK, its
 * timeouts) for its next waits: every change the program makes through
 * libc, and every new file under the number, is seen. */
static void *view_follows(void *arg) {
  (void)arg;
  int s[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  int n = s[0], peer = s[1];
  CHECK_EQ(empty_recv_says(n), ETIMEDOUT); /* learnt: blocking */
  set_nonblocking(n, true);
  CHECK_EQ(empty_recv_says(n), EAGAIN);
  set_nonblocking(n, false);
  CHECK_EQ(empty_recv_says(n), ETIMEDOUT);
  int on = 1;
  CHECK_EQ(ioctl(n, FIONBIO, &on), 0);
  CHECK_EQ(empty_recv_says(n), EAGAIN);
  on = 0;
  CHECK_EQ(ioctl(n, FIONBIO, &on), 0);
  CHECK_EQ(empty_recv_says(n), ETIMEDOUT);
  struct timeval tv = {0, 10000};
  CHECK_EQ(setsockopt(n, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  CHECK_EQ(empty_recv_says(n), EAGAIN); /* after 10 ms */
  tv.tv_usec = 0;
  CHECK_EQ(setsockopt(n, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  CHECK_EQ(empty_recv_says(n), ETIMEDOUT);
  /* New files under the number: after close, dup2, fclose, close_range. */
  close(n);
  close(peer);
  socketpair_at(n, true, &peer);
  CHECK_EQ(empty_recv_says(n), EAGAIN);
  int t[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, t), 0);
  CHECK_EQ(dup2(t[0], n), n);
  CHECK_EQ(empty_recv_says(n), ETIMEDOUT);
  close(t[0]);
  close(t[1]);
  FILE *f = fdopen(n, "r+");
  CHECK(f != NULL);
  CHECK_EQ(fclose(f), 0);
  close(peer);
  socketpair_at(n, true, &peer);
  CHECK_EQ(empty_recv_says(n), EAGAIN);
  CHECK_EQ(close_range((unsigned)n, (unsigned)n, 0), 0);
  close(peer);
  socketpair_at(n, false, &peer);
  CHECK_EQ(empty_recv_says(n), ETIMEDOUT);
  close(peer);
  closefrom(n); /* n is the highest fd */
  socketpair_at(n, true, &peer);
  CHECK_EQ(empty_recv_says(n), EAGAIN);
  /* A socket the program made with its own timeout, learnt at once. */
  close(n);
  close(peer);
  socketpair_at(n, false, &peer);
  tv.tv_usec = 10000;
  CHECK_EQ(setsockopt(n, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  CHECK_EQ(empty_recv_says(n), EAGAIN);
  close(n);
  close(peer);
  return NULL;
}

TEST(what_the_hooks_keep_of_a_socket_follows_the_program) {
  CHECK_EQ(weft_run(view_follows, NULL, NULL), 0);
}

/* SO_RCVTIMEO ends a hooked recv with EAGAIN, as in libc. */
static void *rcvtimeo(void *arg) {
  (void)arg;
  int s[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  struct timeval tv = {0, 100000};
  CHECK_EQ(setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  struct ticker tk = {0};
  weft_task *ticker = start_ticker(&tk);
  int64_t t0 = weft_now();
  char c;
  errno = 0;
  CHECK_EQ(recv(s[0], &c, 1, 0), -1);
  CHECK_EQ(errno, EAGAIN);
  CHECK(weft_now() - t0 >= WEFT_MS(100));
  CHECK(tk.ticks >= 3);
  /* A weft deadline: ETIMEDOUT. */
  CHECK_EQ(weft_deadline_set(weft_now() + WEFT_MS(30), NULL), 0);
  errno = 0;
  CHECK_EQ(read(s[0], &c, 1), -1);
  CHECK_EQ(errno, ETIMEDOUT);
  CHECK_EQ(weft_deadline_set(WEFT_FOREVER, NULL), 0);
  stop_ticker(&tk, ticker);
  close(s[0]);
  close(s[1]);
  return NULL;
}

TEST(socket_timeouts_are_eagain_and_deadlines_etimedout) {
  CHECK_EQ(weft_run(rcvtimeo, NULL, NULL), 0);
}

static void *read_forever(void *arg) {
  int fd = *(int *)arg;
  char c;
  errno = 0;
  ssize_t n = read(fd, &c, 1);
  return (void *)(intptr_t)(n < 0 ? -errno : n);
}

static void *cancel_and_close(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  weft_task *r = spawn(read_forever, &p[0]);
  usleep(20000);
  CHECK_EQ(weft_task_cancel(r), 0);
  void *got;
  CHECK_EQ(weft_task_join(r, WEFT_FOREVER, &got), 0);
  weft_task_detach(r);
  CHECK_EQ(VI(got), -ECANCELED);
  /* close wakes a reader with EBADF (as weft_io_close). */
  r = spawn(read_forever, &p[0]);
  usleep(20000);
  CHECK_EQ(close(p[0]), 0);
  CHECK_EQ(weft_task_join(r, WEFT_FOREVER, &got), 0);
  weft_task_detach(r);
  CHECK_EQ(VI(got), -EBADF);
  close(p[1]);
  /* So do close_range and closefrom, which close the fds it lists. */
  CHECK_EQ(pipe(p), 0);
  r = spawn(read_forever, &p[0]);
  usleep(20000);
  CHECK_EQ(close_range((unsigned)p[0], (unsigned)p[0], 0), 0);
  CHECK_EQ(weft_task_join(r, WEFT_FOREVER, &got), 0);
  weft_task_detach(r);
  CHECK_EQ(VI(got), -EBADF);
  close(p[1]);
  CHECK_EQ(pipe(p), 0);
  int top = p[0] > p[1] ? p[0] : p[1];
  r = spawn(read_forever, &p[0]);
  usleep(20000);
  closefrom(p[0] < p[1] ? p[0] : p[1]); /* the pipe's are the highest fds */
  CHECK_EQ(weft_task_join(r, WEFT_FOREVER, &got), 0);
  weft_task_detach(r);
  CHECK_EQ(VI(got), -EBADF);
  errno = 0;
  CHECK_EQ(fcntl(top, F_GETFD), -1);
  CHECK_EQ(errno, EBADF);
  return NULL;
}

TEST(cancel_and_close_end_a_hooked_read) {
  CHECK_EQ(weft_run(cancel_and_close, NULL, NULL), 0);
}

/* accept and connect on blocking sockets, both in tasks; the listener
 * stays blocking to the program's eyes. */
struct server {
  int lfd;
  int port;
};

static void *serve_one(void *arg) {
  struct server *s = arg;
  int c = accept(s->lfd, NULL, NULL);
  CHECK(c >= 0);
  char buf[5];
  CHECK_EQ(recv(c, buf, 5, MSG_WAITALL), 5);
  CHECK_EQ(memcmp(buf, "hello", 5), 0);
  CHECK_EQ(send(c, "world", 5, 0), 5);
  close(c);
  return NULL;
}

static void *accept_connect(void *arg) {
  (void)arg;
  struct server s;
  s.lfd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(s.lfd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(bind(s.lfd, (struct sockaddr *)&a, sizeof a), 0);
  CHECK_EQ(listen(s.lfd, 16), 0);
  socklen_t len = sizeof a;
  CHECK_EQ(getsockname(s.lfd, (struct sockaddr *)&a, &len), 0);
  struct ticker tk = {0};
  weft_task *ticker = start_ticker(&tk);
  weft_task *server = spawn(serve_one, &s);
  usleep(20000); /* the server parks in accept */
  CHECK(tk.ticks >= 2);
  CHECK(kernel_flags(s.lfd) & O_NONBLOCK);         /* flipped for accept */
  CHECK_EQ(fcntl(s.lfd, F_GETFL) & O_NONBLOCK, 0); /* not to the program */
  int c = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(connect(c, (struct sockaddr *)&a, sizeof a), 0);
  CHECK_EQ(kernel_flags(c) & O_NONBLOCK, 0);
  CHECK_EQ(send(c, "hel", 3, 0), 3);
  usleep(5000);
  CHECK_EQ(send(c, "lo", 2, 0), 2);
  char buf[5];
  CHECK_EQ(recv(c, buf, 5, MSG_WAITALL), 5);
  CHECK_EQ(memcmp(buf, "world", 5), 0);
  join(server);
  /* The program's own setting goes through. */
  CHECK_EQ(fcntl(s.lfd, F_SETFL, O_NONBLOCK), 0);
  CHECK(fcntl(s.lfd, F_GETFL) & O_NONBLOCK);
  errno = 0;
  CHECK_EQ(accept(s.lfd, NULL, NULL), -1);
  CHECK_EQ(errno, EAGAIN);
  CHECK_EQ(fcntl(s.lfd, F_SETFL, 0), 0);
  CHECK_EQ(fcntl(s.lfd, F_GETFL) & O_NONBLOCK, 0);
  /* A refused connect: the errno of libc. */
  close(s.lfd);
  int d = socket(AF_INET, SOCK_STREAM, 0);
  errno = 0;
  CHECK_EQ(connect(d, (struct sockaddr *)&a, sizeof a), -1);
  CHECK_EQ(errno, ECONNREFUSED);
  close(d);
  close(c);
  stop_ticker(&tk, ticker);
  return NULL;
}

TEST(accept_and_connect_park_and_keep_the_programs_view) {
  CHECK_EQ(weft_run(accept_connect, NULL, NULL), 0);
}

/* poll, select and epoll_wait on the program's own fds. */
static void *polls(void *arg) {
  (void)arg;
  int p[2], q[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(pipe(q), 0);
  struct ticker tk = {0};
  weft_task *ticker = start_ticker(&tk);

  struct later l = {q[1], 30};
  weft_task *w = spawn(write_later, &l);
  struct pollfd fds[2] = {{.fd = p[0], .events = POLLIN},
                          {.fd = q[0], .events = POLLIN}};
  CHECK_EQ(poll(fds, 2, -1), 1);
  CHECK_EQ(fds[0].revents, 0);
  CHECK_EQ(fds[1].revents, POLLIN);
  join(w);
  char c;
  CHECK_EQ(read(q[0], &c, 1), 1);
  /* A timeout: 0 ready, no error. */
  int before = tk.ticks;
  CHECK_EQ(poll(fds, 2, 30), 0);
  CHECK(tk.ticks > before);
  /* One fd. */
  w = spawn(write_later, &l);
  CHECK_EQ(poll(&fds[1], 1, 5000), 1);
  join(w);
  CHECK_EQ(read(q[0], &c, 1), 1);

  w = spawn(write_later, &l);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(p[0], &r);
  FD_SET(q[0], &r);
  int nfds = (p[0] > q[0] ? p[0] : q[0]) + 1;
  CHECK_EQ(select(nfds, &r, NULL, NULL, NULL), 1);
  CHECK(!FD_ISSET(p[0], &r));
  CHECK(FD_ISSET(q[0], &r));
  join(w);
  CHECK_EQ(read(q[0], &c, 1), 1);
  struct timeval tv = {0, 30000};
  FD_SET(p[0], &r);
  before = tk.ticks;
  CHECK_EQ(select(nfds, &r, NULL, NULL, &tv), 0);
  CHECK(tk.ticks > before);
  CHECK(!FD_ISSET(p[0], &r));

  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = q[0]};
  CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev), 0);
  w = spawn(write_later, &l);
  struct epoll_event got[4];
  CHECK_EQ(epoll_wait(ep, got, 4, -1), 1);
  CHECK_EQ(got[0].data.fd, q[0]);
  join(w);
  CHECK_EQ(read(q[0], &c, 1), 1);
  CHECK_EQ(epoll_wait(ep, got, 4, 20), 0);
  close(ep);

  stop_ticker(&tk, ticker);
  close(p[0]);
  close(p[1]);
  close(q[0]);
  close(q[1]);
  return NULL;
}

TEST(poll_select_and_epoll_wait_park) {
  CHECK_EQ(weft_run(polls, NULL, NULL), 0);
}

static void *sleep_200ms(void *arg) {
  int how = VI(arg);
  struct timespec ts = {0, 200 * 1000000};
  switch (how) {
  case 0:
    CHECK_EQ(nanosleep(&ts, NULL), 0);
    break;
  case 1:
    CHECK_EQ(usleep(200000), 0);
    break;
  case 2:
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), 0);
    break;
  case 3: {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    now.tv_nsec += 200 * 1000000;
    if (now.tv_nsec >= 1000000000) {
      now.tv_sec++;
      now.tv_nsec -= 1000000000;
    }
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &now, NULL), 0);
    break;
  }
  }
  return NULL;
}

static void *sleeps(void *arg) {
  (void)arg;
  int64_t t0 = weft_now();
  weft_task *t[4];
  for (int i = 0; i < 4; i++)
    t[i] = spawn(sleep_200ms, IV(i));
  for (int i = 0; i < 4; i++)
    join(t[i]);
  int64_t took = weft_now() - t0;
  CHECK(took >= WEFT_MS(200));
  CHECK(took < WEFT_MS(700)); /* together, not one after the other (800) */
  /* A bad request is libc's error. */
  struct timespec bad = {0, 2000000000};
  errno = 0;
  CHECK_EQ(nanosleep(&bad, NULL), -1);
  CHECK_EQ(errno, EINVAL);
  return NULL;
}

TEST(sleeps_overlap) { CHECK_EQ(weft_run(sleeps, NULL, NULL), 0); }

static void *cancelled_sleep(void *arg) {
  (void)arg;
  struct timespec ts = {10, 0}, rem = {0, 0};
  errno = 0;
  int r = nanosleep(&ts, &rem);
  return (void *)(intptr_t)(r == -1 && errno == ECANCELED && rem.tv_sec >= 9);
}

static void *cancel_sleep(void *arg) {
  (void)arg;
  weft_task *t = spawn(cancelled_sleep, NULL);
  usleep(10000);
  CHECK_EQ(weft_task_cancel(t), 0);
  void *ok;
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &ok), 0);
  weft_task_detach(t);
  CHECK(ok);
  return NULL;
}

TEST(a_cancelled_sleep_fails_with_ecanceled) {
  CHECK_EQ(weft_run(cancel_sleep, NULL, NULL), 0);
}

/* A handler's calls are libc's, and sigaction shows the program's own
 * handler. */
static volatile bool handler_saw_hooks = true;
static int handler_fd = -1;

static void on_usr1(int sig) {
  (void)sig;
  handler_saw_hooks = weft_hook_enabled();
  (void)!write(handler_fd, "s", 1);
}

static void *signal_in_task(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  handler_fd = p[1];
  struct sigaction sa = {0}, old;
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
  CHECK_EQ(sigaction(SIGUSR1, NULL, &old), 0);
  CHECK(old.sa_handler == on_usr1);
  CHECK_EQ(old.sa_flags & SA_SIGINFO, 0);
  CHECK(weft_hook_enabled());
  CHECK_EQ(raise(SIGUSR1), 0);
  CHECK(!handler_saw_hooks);
  char c;
  CHECK_EQ(read(p[0], &c, 1), 1);
  CHECK(signal(SIGUSR1, SIG_DFL) == on_usr1);
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(signal_handlers_run_unhooked) {
  CHECK_EQ(weft_run(signal_in_task, NULL, NULL), 0);
}

/* A child forked in a task blocks as plain C does: it has no hub. */
static void *fork_in_task(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    if (weft_hook_enabled() || read(p[0], &c, 1) != 1 || c != 'f')
      _exit(1);
    _exit(0);
  }
  CHECK(pid > 0);
  usleep(20000);
  CHECK_EQ(write(p[1], "f", 1), 1);
  int st;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(a_child_forked_in_a_task_is_plain_c) {
  CHECK_EQ(weft_run(fork_in_task, NULL, NULL), 0);
}

/* A regular file is read with the plain call. */
static void *file_read(void *arg) {
  (void)arg;
  char path[] = "/tmp/weft-hook-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  unlink(path);
  CHECK_EQ(write(fd, "data", 4), 4);
  CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
  char buf[8];
  CHECK_EQ(read(fd, buf, sizeof buf), 4);
  CHECK_EQ(memcmp(buf, "data", 4), 0);
  CHECK_EQ(read(fd, buf, sizeof buf), 0);
  close(fd);
  return NULL;
}

TEST(regular_files_are_plain_reads) {
  CHECK_EQ(weft_run(file_read, NULL, NULL), 0);
}

/* Name resolution in tasks runs on the resolver threads. */
static int threads_now(void) {
  int n = 0;
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "Threads: %d", &n) == 1)
      break;
  if (f)
    fclose(f);
  return n;
}

static void *lookup(void *arg) {
  (void)arg;
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo("localhost", "80", &hints, &res);
  if (rc != 0)
    return IV(rc);
  const struct sockaddr_in *a = (const struct sockaddr_in *)res->ai_addr;
  bool ok = res->ai_family == AF_INET &&
            a->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
            a->sin_port == htons(80);
  freeaddrinfo(res);
  /* And back: the name of 127.0.0.1, and gethostbyname_r. */
  char host[256], serv[32];
  struct sockaddr_in lo = {.sin_family = AF_INET,
                           .sin_port = htons(80),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (getnameinfo((struct sockaddr *)&lo, sizeof lo, host, sizeof host, serv,
                  sizeof serv, NI_NUMERICSERV) != 0 ||
      strcmp(serv, "80") != 0)
    ok = false;
  struct hostent he, *got = NULL;
  char buf[1024];
  int herr = 0;
  if (gethostbyname_r("localhost", &he, buf, sizeof buf, &got, &herr) != 0 ||
      got != &he || he.h_addrtype != AF_INET ||
      memcmp(he.h_addr_list[0], &lo.sin_addr, 4) != 0)
    ok = false;
  return IV(ok ? 0 : -1);
}

static void *lookups(void *arg) {
  (void)arg;
  int before = threads_now();
  struct ticker tk = {0};
  weft_task *ticker = start_ticker(&tk);
  enum { N = 100 };
  weft_task *t[N];
  for (int i = 0; i < N; i++)
    t[i] = spawn(lookup, NULL);
  for (int i = 0; i < N; i++) {
    void *rc;
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, &rc), 0);
    weft_task_detach(t[i]);
    CHECK_EQ(VI(rc), 0);
  }
  CHECK(threads_now() > before); /* the resolver pool */
  stop_ticker(&tk, ticker);
  return NULL;
}

TEST(lookups_run_on_the_resolver_threads) {
  CHECK_EQ(weft_run(lookups, NULL, NULL), 0);
  CHECK_EQ(VI(lookup(NULL)), 0); /* on a plain thread: libc's */
}

/* A lookup in a task cancelled before it ran: EAI_SYSTEM with ECANCELED,
 * unless the resolver answered before the task's wait began (a call that
 * need not wait completes, as every weft call of a cancelled task does;
 * "localhost" is quick to answer). Either way the answer is whole. */
static void *cancelled_lookup(void *arg) {
  (void)arg;
  struct addrinfo *res = NULL;
  errno = 0;
  int rc = getaddrinfo("localhost", "80", NULL, &res);
  if (rc == 0) {
    bool whole = res != NULL;
    freeaddrinfo(res);
    return IV(whole ? 2 : 0);
  }
  return IV(rc == EAI_SYSTEM && errno == ECANCELED ? 1 : 0);
}

static void *cancel_lookup(void *arg) {
  (void)arg;
  int cancelled = 0;
  /* At least 20, and until one was cancelled in its wait: a slow run
   * (ThreadSanitizer) lets the resolver answer first now and then. */
  for (int i = 0; i < 20 || (cancelled == 0 && i < 1000); i++) {
    weft_task *t = spawn(cancelled_lookup, NULL);
    CHECK_EQ(weft_task_cancel(t), 0); /* before it ran */
    void *how;
    CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &how), 0);
    weft_task_detach(t);
    CHECK(VI(how) != 0);
    cancelled += VI(how) == 1;
  }
  CHECK(cancelled > 0);
  usleep(50000); /* the pool finishes and frees the lookups (ASan: no leak) */
  return NULL;
}

TEST(a_cancelled_lookup_leaves_at_once) {
  CHECK_EQ(weft_run(cancel_lookup, NULL, NULL), 0);
}

/* A plain thread's accept on a listener the hooks made non-blocking for a
 * task still blocks until a connection comes, as the program expects. */
static int flipped_lfd = -1;

static void *accept_once_in_task(void *arg) {
  (void)arg;
  /* Nothing to accept: a 10 ms receive timeout ends the wait, after the
   * listener was flipped. */
  struct timeval tv = {0, 10000};
  CHECK_EQ(setsockopt(flipped_lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  errno = 0;
  CHECK_EQ(accept(flipped_lfd, NULL, NULL), -1);
  CHECK_EQ(errno, EAGAIN);
  tv.tv_usec = 0;
  CHECK_EQ(setsockopt(flipped_lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  return NULL;
}

static void *connect_later(void *arg) {
  struct timespec ts = {0, 30 * 1000000};
  nanosleep(&ts, NULL);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(connect(c, arg, sizeof(struct sockaddr_in)), 0);
  return (void *)(intptr_t)c;
}

TEST(a_threads_accept_on_a_flipped_listener_blocks) {
  flipped_lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(bind(flipped_lfd, (struct sockaddr *)&a, sizeof a), 0);
  CHECK_EQ(listen(flipped_lfd, 4), 0);
  socklen_t len = sizeof a;
  CHECK_EQ(getsockname(flipped_lfd, (struct sockaddr *)&a, &len), 0);
  CHECK_EQ(weft_run(accept_once_in_task, NULL, NULL), 0);
  CHECK(kernel_flags(flipped_lfd) & O_NONBLOCK);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, connect_later, &a), 0);
  int s = accept(flipped_lfd, NULL, NULL); /* blocks, 30 ms */
  CHECK(s >= 0);
  void *c;
  pthread_join(th, &c);
  /* dup and F_DUPFD carry the program's view. */
  int d = dup(flipped_lfd);
  CHECK_EQ(fcntl(d, F_GETFL) & O_NONBLOCK, 0);
  int e = fcntl(flipped_lfd, F_DUPFD_CLOEXEC, 100);
  CHECK(e >= 100);
  CHECK_EQ(fcntl(e, F_GETFL) & O_NONBLOCK, 0);
  int on = 1;
  CHECK_EQ(ioctl(e, FIONBIO, &on), 0);
  CHECK(fcntl(e, F_GETFL) & O_NONBLOCK);
  close(d);
  close(e);
  close(s);
  close(VI(c));
  close(flipped_lfd);
}

/* Two tasks blocked reading one socket (libc allows it; the second waits
 * through an epoll fd of its own), and a dup2 over an fd a task waits on
 * wakes it with EBADF. */
static void *read_one(void *arg) {
  char c;
  ssize_t n = read(*(int *)arg, &c, 1);
  return (void *)(intptr_t)(n == 1 ? c : -errno);
}

static void *two_readers_and_dup2(void *arg) {
  (void)arg;
  int s[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  weft_task *a = spawn(read_one, &s[0]);
  weft_task *b = spawn(read_one, &s[0]);
  usleep(10000);
  CHECK_EQ(write(s[1], "ab", 2), 2);
  void *ra, *rb;
  CHECK_EQ(weft_task_join(a, WEFT_FOREVER, &ra), 0);
  CHECK_EQ(weft_task_join(b, WEFT_FOREVER, &rb), 0);
  weft_task_detach(a);
  weft_task_detach(b);
  CHECK((VI(ra) == 'a' && VI(rb) == 'b') || (VI(ra) == 'b' && VI(rb) == 'a'));

  int p[2];
  CHECK_EQ(pipe(p), 0);
  weft_task *r = spawn(read_one, &p[0]);
  usleep(10000);
  CHECK_EQ(dup2(s[1], p[0]), p[0]);
  void *rr;
  CHECK_EQ(weft_task_join(r, WEFT_FOREVER, &rr), 0);
  weft_task_detach(r);
  CHECK_EQ(VI(rr), -EBADF);
  close(p[0]);
  close(p[1]);
  close(s[0]);
  close(s[1]);
  return NULL;
}

TEST(two_readers_of_one_socket_and_dup2_over_a_waited_fd) {
  CHECK_EQ(weft_run(two_readers_and_dup2, NULL, NULL), 0);
}

/* ppoll and pselect, with their timeouts. */
static void *ppoll_pselect(void *arg) {
  (void)arg;
  int q[2];
  CHECK_EQ(pipe(q), 0);
  struct later l = {q[1], 20};
  weft_task *w = spawn(write_later, &l);
  struct pollfd fd = {.fd = q[0], .events = POLLIN};
  struct timespec ts = {5, 0};
  sigset_t none;
  sigemptyset(&none);
  CHECK_EQ(ppoll(&fd, 1, &ts, &none), 1);
  CHECK(fd.revents & POLLIN);
  join(w);
  char c;
  CHECK_EQ(read(q[0], &c, 1), 1);
  ts.tv_sec = 0;
  ts.tv_nsec = 20 * 1000000;
  CHECK_EQ(ppoll(&fd, 1, &ts, NULL), 0);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(q[0], &r);
  CHECK_EQ(pselect(q[0] + 1, &r, NULL, NULL, &ts, &none), 0);
  w = spawn(write_later, &l);
  FD_SET(q[0], &r);
  ts.tv_sec = 5;
  CHECK_EQ(pselect(q[0] + 1, &r, NULL, NULL, &ts, NULL), 1);
  CHECK(FD_ISSET(q[0], &r));
  join(w);
  close(q[0]);
  close(q[1]);
  return NULL;
}

TEST(ppoll_and_pselect_park) {
  CHECK_EQ(weft_run(ppoll_pselect, NULL, NULL), 0);
}

/* A child forked by a task closes an fd its parent's hub waits on: the
 * parent's wait must not notice (the epoll instance is shared across the
 * fork; a child that touched it would take the parent's registration). */
static void *fork_and_close(void *arg) {
  int fd = *(int *)arg;
  pid_t pid = fork();
  if (pid == 0) {
    close(fd);
    _exit(weft_task_current() == NULL ? 0 : 1);
  }
  int st;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  return NULL;
}

static void *wait_across_a_fork(void *arg) {
  (void)arg;
  int p[2];
  CHECK_EQ(pipe(p), 0);
  weft_task *r = spawn(read_one, &p[0]);
  usleep(10000); /* the reader waits, registered in the hub's epoll */
  weft_task *f = spawn(fork_and_close, &p[0]);
  join(f);
  CHECK_EQ(write(p[1], "k", 1), 1);
  void *got;
  CHECK_EQ(weft_task_join(r, WEFT_SEC(5), &got), 0);
  weft_task_detach(r);
  CHECK_EQ(VI(got), 'k');
  close(p[0]);
  close(p[1]);
  return NULL;
}

TEST(a_close_in_a_forked_child_leaves_the_parents_waits_alone) {
  CHECK_EQ(weft_run(wait_across_a_fork, NULL, NULL), 0);
}

static void *pwait2(void *arg) {
  (void)arg;
  int q[2];
  CHECK_EQ(pipe(q), 0);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = q[0]};
  CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev), 0);
  struct epoll_event got[2];
  struct timespec ts = {0, 20 * 1000000};
  int64_t t0 = weft_now();
  CHECK_EQ(epoll_pwait2(ep, got, 2, &ts, NULL), 0);
  CHECK(weft_now() - t0 >= WEFT_MS(20));
  struct later l = {q[1], 10};
  weft_task *w = spawn(write_later, &l);
  CHECK_EQ(epoll_pwait2(ep, got, 2, NULL, NULL), 1);
  join(w);
  close(ep);
  close(q[0]);
  close(q[1]);
  return NULL;
}

TEST(epoll_pwait2_parks) { CHECK_EQ(weft_run(pwait2, NULL, NULL), 0); }

/* SO_SNDTIMEO: a blocking send into a full socket ends with EAGAIN after
 * the timeout (nothing sent), or with the count sent so far. */
static void *sndtimeo(void *arg) {
  (void)arg;
  int s[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  struct timeval tv = {0, 50000};
  CHECK_EQ(setsockopt(s[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  static char chunk[65536];
  /* Fill it without blocking. */
  while (send(s[0], chunk, sizeof chunk, MSG_DONTWAIT) > 0)
    ;
  int64_t t0 = weft_now();
  errno = 0;
  CHECK_EQ(send(s[0], chunk, sizeof chunk, 0), -1);
  CHECK_EQ(errno, EAGAIN);
  CHECK(weft_now() - t0 >= WEFT_MS(50));
  close(s[0]);
  close(s[1]);
  return NULL;
}

TEST(a_send_timeout_is_eagain) { CHECK_EQ(weft_run(sndtimeo, NULL, NULL), 0); }

/* posix_spawn and vfork from a task work as in plain C. */
static void *spawns(void *arg) {
  (void)arg;
  extern char **environ;
  pid_t pid;
  char *argv[] = {"true", NULL};
  CHECK_EQ(posix_spawnp(&pid, "true", NULL, NULL, argv, environ), 0);
  int st;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  pid = vfork();
  if (pid == 0)
    _exit(7);
  CHECK(pid > 0);
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
  return NULL;
}

TEST(posix_spawn_and_vfork_in_a_task) {
  CHECK_EQ(weft_run(spawns, NULL, NULL), 0);
}

/* Bodies of the cases above, run on a plain thread: libc's behaviour. */
TEST(the_same_bodies_on_a_thread_are_libcs) {
  CHECK(errors_as_libc(NULL) == NULL);
  CHECK(file_read(NULL) == NULL);
}

/* A poll whose fd another task closes ends as libc's poll does on a
 * closed fd: the fd reported POLLNVAL, not an error of poll's own. */
static void *poll_one(void *arg) {
  struct pollfd p = {.fd = *(int *)arg, .events = POLLIN};
  int n = poll(&p, 1, 5000);
  return IV(n == 1 && (p.revents & POLLNVAL) ? 0 : -1);
}

static void *poll_then_close(void *arg) {
  (void)arg;
  int q[2];
  CHECK_EQ(pipe(q), 0);
  weft_task *t = spawn(poll_one, &q[0]);
  usleep(10000);
  CHECK_EQ(close(q[0]), 0);
  void *rc;
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &rc), 0);
  weft_task_detach(t);
  CHECK_EQ(VI(rc), 0);
  close(q[1]);
  return NULL;
}

TEST(a_poll_on_an_fd_closed_meanwhile_reports_pollnval) {
  CHECK_EQ(weft_run(poll_then_close, NULL, NULL), 0);
}

/* An error of the call's own comes at once, as libc's: a timerfd read into
 * a buffer smaller than its 8 bytes is EINVAL before the timer fires. */
static void *timerfd_einval(void *arg) {
  (void)arg;
  int fd = timerfd_create(CLOCK_MONOTONIC, 0);
  CHECK(fd >= 0);
  struct itimerspec it = {.it_value = {100, 0}};
  CHECK_EQ(timerfd_settime(fd, 0, &it, NULL), 0);
  char small[4];
  int64_t t0 = weft_now();
  errno = 0;
  CHECK_EQ(read(fd, small, sizeof small), -1);
  CHECK_EQ(errno, EINVAL);
  CHECK(weft_now() - t0 < WEFT_SEC(5));
  close(fd);
  return NULL;
}

TEST(an_error_of_the_calls_own_comes_at_once) {
  if (harness_emulated())
    harness_skip("qemu-user has no preadv2: without RWF_NOWAIT the hooks "
                 "wait for readiness before the plain call (docs/hooks.md)");
  CHECK_EQ(weft_run(timerfd_einval, NULL, NULL), 0);
}
