/*
 * The hub's poller (internal), against whichever backend the build chose
 * (make test runs epoll, make test-poll the poll fallback): readiness,
 * one-shot arming, interest changes, fds closed and reused, hang-ups,
 * deadlines, wakes from other threads and signal handlers, many fds, and bad
 * input.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>

#include "../src/hub/poller.h"
#include "../src/hub/timer.h"
#include "harness.h"

static weft__poller *make(void) {
  weft__poller *p;
  CHECK_EQ(weft__poller_new(&p), 0);
  return p;
}

static int poll_now(weft__poller *p, weft__poll_event *ev, int max) {
  return weft__poller_wait(p, ev, max, 0);
}

TEST(a_pipe_is_readable_once_written) {
  weft__poller *p = make();
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  int tag;
  CHECK_EQ(weft__poller_set(p, fds[0], WEFT__POLL_IN, &tag), 0);
  weft__poll_event ev[4];
  CHECK_EQ(poll_now(p, ev, 4), 0);
  CHECK_EQ(write(fds[1], "x", 1), 1);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  CHECK_EQ(ev[0].fd, fds[0]);
  CHECK(ev[0].events & WEFT__POLL_IN);
  CHECK_PTR_EQ(ev[0].data, &tag);
  /* One-shot: disarmed by the report, though still readable. */
  CHECK_EQ(poll_now(p, ev, 4), 0);
  CHECK_EQ(weft__poller_set(p, fds[0], WEFT__POLL_IN, &tag), 0);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  char c;
  CHECK_EQ(read(fds[0], &c, 1), 1);
  CHECK_EQ(weft__poller_set(p, fds[0], WEFT__POLL_IN, &tag), 0);
  CHECK_EQ(poll_now(p, ev, 4), 0);
  close(fds[0]);
  close(fds[1]);
  weft__poller_free(p);
}

TEST(interest_changes_and_is_forgotten) {
  weft__poller *p = make();
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  int a, b;
  weft__poll_event ev[4];
  CHECK_EQ(weft__poller_set(p, sv[0], WEFT__POLL_OUT, &a), 0);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  CHECK(ev[0].events & WEFT__POLL_OUT);
  CHECK_PTR_EQ(ev[0].data, &a);
  /* Replaced: now only readability, with another tag. */
  CHECK_EQ(weft__poller_set(p, sv[0], WEFT__POLL_IN, &b), 0);
  CHECK_EQ(poll_now(p, ev, 4), 0);
  CHECK_EQ(write(sv[1], "y", 1), 1);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  CHECK_PTR_EQ(ev[0].data, &b);
  /* Armed again, then forgotten: nothing reported, and forgetting twice is
   * fine. */
  CHECK_EQ(weft__poller_set(p, sv[0], WEFT__POLL_IN, &b), 0);
  CHECK_EQ(weft__poller_set(p, sv[0], 0, NULL), 0);
  CHECK_EQ(weft__poller_set(p, sv[0], 0, NULL), 0);
  CHECK_EQ(poll_now(p, ev, 4), 0);
  close(sv[0]);
  close(sv[1]);
  weft__poller_free(p);
}

TEST(an_fd_closed_and_reused_is_armed_afresh) {
  weft__poller *p = make();
  int a[2], b[2];
  CHECK_EQ(pipe(a), 0);
  CHECK_EQ(weft__poller_set(p, a[0], WEFT__POLL_IN, NULL), 0);
  int old = a[0];
  close(a[0]); /* plain close: the kernel forgets it, the poller cannot know */
  CHECK_EQ(pipe(b), 0);
  CHECK_EQ(b[0], old); /* the lowest free number comes back */
  CHECK_EQ(weft__poller_set(p, b[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(write(b[1], "x", 1), 1);
  weft__poll_event ev[4];
  CHECK_EQ(weft__poller_wait(p, ev, 4, weft__now() + WEFT_SEC(5)), 1);
  CHECK_EQ(ev[0].fd, b[0]);
  close(a[1]);
  close(b[0]);
  close(b[1]);
  weft__poller_free(p);
}

TEST(a_closed_peer_is_reported) {
  weft__poller *p = make();
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ(weft__poller_set(p, sv[0], WEFT__POLL_IN, NULL), 0);
  close(sv[1]);
  weft__poll_event ev[4];
  CHECK_EQ(poll_now(p, ev, 4), 1);
  CHECK(ev[0].events & WEFT__POLL_IN); /* a read will see EOF */
  close(sv[0]);
  weft__poller_free(p);
}

TEST(a_wait_ends_at_its_deadline) {
  weft__poller *p = make();
  weft__poll_event ev[4];
  int64_t t0 = weft__now();
  CHECK_EQ(weft__poller_wait(p, ev, 4, t0 + WEFT_MS(30)), 0);
  int64_t took = weft__now() - t0;
  CHECK(took >= WEFT_MS(30));
  CHECK(took < WEFT_SEC(5)); /* generous: a loaded machine */
  /* A deadline in the past polls. */
  t0 = weft__now();
  CHECK_EQ(weft__poller_wait(p, ev, 4, t0 - WEFT_SEC(1)), 0);
  CHECK(weft__now() - t0 < WEFT_SEC(1));
  weft__poller_free(p);
}

static void *wake_later(void *arg) {
  usleep(30000);
  weft__poller_wake(arg);
  return NULL;
}

TEST(a_wake_from_another_thread_ends_a_wait) {
  weft__poller *p = make();
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, wake_later, p), 0);
  weft__poll_event ev[4];
  int64_t t0 = weft__now();
  CHECK_EQ(weft__poller_wait(p, ev, 4, INT64_MAX), 0);
  CHECK(weft__now() - t0 < WEFT_SEC(10));
  pthread_join(t, NULL);
  /* Wakes before a wait are kept, and coalesce into one. */
  weft__poller_wake(p);
  weft__poller_wake(p);
  weft__poller_wake(p);
  CHECK_EQ(weft__poller_wait(p, ev, 4, INT64_MAX), 0);
  t0 = weft__now();
  CHECK_EQ(weft__poller_wait(p, ev, 4, t0 + WEFT_MS(20)), 0);
  CHECK(weft__now() - t0 >= WEFT_MS(20)); /* the wakes were all drained */
  weft__poller_free(p);
}

static weft__poller *signalled;
static void on_alarm(int sig) {
  (void)sig;
  weft__poller_wake(signalled);
}

TEST(a_signal_handler_can_wake) {
  signalled = make();
  struct sigaction sa = {.sa_handler = on_alarm};
  sigemptyset(&sa.sa_mask);
  CHECK_EQ(sigaction(SIGALRM, &sa, NULL), 0);
  ualarm(30000, 0);
  weft__poll_event ev[4];
  int64_t t0 = weft__now();
  int n;
  while ((n = weft__poller_wait(signalled, ev, 4, t0 + WEFT_SEC(10))) == 0 &&
         weft__now() - t0 < WEFT_MS(25))
    ; /* an EINTR return comes back as 0: wait again */
  CHECK_EQ(n, 0);
  CHECK(weft__now() - t0 < WEFT_SEC(10));
  weft__poller_free(signalled);
}

TEST(many_fds_and_a_fair_share) {
  enum { N = 1000 };
  weft__poller *p = make();
  int rd[N], wr[N];
  for (int i = 0; i < N; i++) {
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    rd[i] = fds[0];
    wr[i] = fds[1];
    CHECK_EQ(weft__poller_set(p, rd[i], WEFT__POLL_IN, (void *)(intptr_t)i), 0);
  }
  /* Every tenth pipe has data. */
  for (int i = 0; i < N; i += 10)
    CHECK_EQ(write(wr[i], "z", 1), 1);
  weft__poll_event ev[256];
  int n = weft__poller_wait(p, ev, 256, INT64_MAX);
  CHECK_EQ(n, N / 10);
  for (int k = 0; k < n; k++) {
    intptr_t i = (intptr_t)ev[k].data;
    CHECK_EQ(i % 10, 0);
    CHECK_EQ(ev[k].fd, rd[i]);
  }
  /* Armed again and reported a few at a time, every ready fd comes up
   * once within a round. */
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft__poller_set(p, rd[i], WEFT__POLL_IN, (void *)(intptr_t)i), 0);
  char seen[N] = {0};
  int distinct = 0;
  for (int round = 0; round < N / 10 / 7 + 1; round++) {
    n = weft__poller_wait(p, ev, 7, INT64_MAX);
    CHECK(n > 0 && n <= 7);
    for (int k = 0; k < n; k++) {
      intptr_t i = (intptr_t)ev[k].data;
      distinct += !seen[i];
      seen[i] = 1;
    }
  }
  CHECK_EQ(distinct, N / 10);
  /* Forget half, including from the middle of the set. */
  for (int i = 0; i < N; i++)
    CHECK_EQ(weft__poller_set(p, rd[i], WEFT__POLL_IN, (void *)(intptr_t)i), 0);
  for (int i = 0; i < N; i += 2)
    CHECK_EQ(weft__poller_set(p, rd[i], 0, NULL), 0);
  n = weft__poller_wait(p, ev, 256, 0);
  CHECK_EQ(n, 0); /* the ready ones were all even */
  for (int i = 1; i < N; i += 10)
    CHECK_EQ(write(wr[i], "z", 1), 1);
  n = weft__poller_wait(p, ev, 256, 0);
  CHECK_EQ(n, N / 10);
  for (int i = 0; i < N; i++) {
    close(rd[i]);
    close(wr[i]);
  }
  weft__poller_free(p);
}

TEST(bad_input_changes_nothing) {
  weft__poller *p = make();
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  CHECK_EQ(weft__poller_set(p, -1, WEFT__POLL_IN, NULL), -EBADF);
  CHECK_EQ(weft__poller_set(p, 100000, WEFT__POLL_IN, NULL), -EBADF);
  CHECK_EQ(weft__poller_set(p, fds[0], 0x40, NULL), -EINVAL);
  weft__poll_event ev[1];
  CHECK_EQ(weft__poller_wait(p, ev, 0, 0), -EINVAL);
  /* Still works. */
  CHECK_EQ(weft__poller_set(p, fds[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(write(fds[1], "x", 1), 1);
  CHECK_EQ(weft__poller_wait(p, ev, 1, 0), 1);
  close(fds[0]);
  close(fds[1]);
  weft__poller_free(p);
}

TEST(the_backend_has_a_name) {
  const char *name = weft__poller_backend();
  CHECK(strcmp(name, "epoll") == 0 || strcmp(name, "poll") == 0);
  printf("  backend: %s\n", name);
}
