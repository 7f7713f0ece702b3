/*
 * The hub's poller (internal), against whichever backend the build chose
 * (make test runs epoll, make test-poll the poll fallback): readiness,
 * one-shot arming, interest changes, fds closed and reused, hang-ups,
 * deadlines, wakes from other threads and signal handlers, many fds, and bad
 * input; and epoll's persistent registration: reports for nobody kept as
 * hints, armings on trust and their recheck, generations, and what
 * evidence clears a hint.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static bool epoll(void) { return strcmp(weft__poller_backend(), "epoll") == 0; }

/* A readiness that came while the fd was armed for nobody is not lost:
 * arming it again reports it (epoll: the report was kept as a hint, and
 * the arming asks the kernel again). */
TEST(a_report_for_nobody_is_made_again_when_armed) {
  weft__poller *p = make();
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  weft__poll_event ev[4];
  CHECK_EQ(weft__poller_set(p, sv[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(write(sv[1], "a", 1), 1);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  char c;
  CHECK_EQ(read(sv[0], &c, 1), 1);
  /* Disarmed by the report; the next byte comes for nobody. */
  CHECK_EQ(write(sv[1], "b", 1), 1);
  CHECK_EQ(poll_now(p, ev, 4), 0);
  CHECK_EQ(weft__poller_set(p, sv[0], WEFT__POLL_IN, &c), 0);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  CHECK(ev[0].events & WEFT__POLL_IN);
  CHECK_PTR_EQ(ev[0].data, &c);
  close(sv[0]);
  close(sv[1]);
  weft__poller_free(p);
}

/* After a caller's evidence that the fd is not ready, an arming trusts
 * the registration and asks the kernel nothing: an edge that comes then is
 * reported. Evidence that lies (the fd is ready, its edge reported to
 * nobody) is caught by the recheck, after WEFT__POLL_RECHECK, not never. */
TEST(an_arming_after_evidence_trusts_and_is_rechecked) {
  weft__poller *p = make();
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  weft__poll_event ev[4];
  char c;
  CHECK_EQ(weft__poller_set(p, fds[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(write(fds[1], "a", 1), 1);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  CHECK_EQ(read(fds[0], &c, 1), 1);
  weft__poller_not_ready(p, fds[0], WEFT__POLL_IN, false);
  CHECK_EQ(weft__poller_set(p, fds[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(poll_now(p, ev, 4), 0);
  CHECK_EQ(write(fds[1], "b", 1), 1);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  /* The lie: the hint that report set is cleared though "b" waits. */
  weft__poller_not_ready(p, fds[0], WEFT__POLL_IN, false);
  CHECK_EQ(weft__poller_set(p, fds[0], WEFT__POLL_IN, NULL), 0);
  int64_t t0 = weft__now();
  if (epoll()) /* trusted: the kernel was not asked to look */
    CHECK_EQ(poll_now(p, ev, 4), 0);
  CHECK_EQ(weft__poller_wait(p, ev, 4, t0 + WEFT_SEC(5)), 1);
  CHECK(ev[0].events & WEFT__POLL_IN);
  if (epoll())
    CHECK(weft__now() - t0 >= WEFT__POLL_RECHECK);
  close(fds[0]);
  close(fds[1]);
  weft__poller_free(p);
}

/* A number closed with close(2) and reused for a new file: an arming that
 * trusts the old registration finds the new file within the recheck; one
 * after weft__poller_doubt asks the kernel at once. */
TEST(a_reused_number_is_found_by_the_recheck_or_at_once_when_doubted) {
  weft__poller *p = make();
  weft__poll_event ev[4];
  for (int doubt = 0; doubt < 2; doubt++) {
    int a[2], b[2];
    CHECK_EQ(pipe(a), 0);
    CHECK_EQ(weft__poller_set(p, a[0], WEFT__POLL_IN, NULL), 0);
    CHECK_EQ(write(a[1], "a", 1), 1);
    CHECK_EQ(poll_now(p, ev, 4), 1);
    weft__poller_not_ready(p, a[0], WEFT__POLL_IN, false); /* a lie */
    int old = a[0];
    close(a[0]);
    CHECK_EQ(pipe(b), 0);
    CHECK_EQ(b[0], old);
    if (doubt)
      weft__poller_doubt(p, b[0]);
    CHECK_EQ(weft__poller_set(p, b[0], WEFT__POLL_IN, NULL), 0);
    CHECK_EQ(write(b[1], "b", 1), 1);
    int64_t t0 = weft__now();
    if (doubt) {
      CHECK_EQ(poll_now(p, ev, 4), 1);
    } else {
      CHECK_EQ(weft__poller_wait(p, ev, 4, t0 + WEFT_SEC(5)), 1);
      CHECK(weft__now() - t0 < WEFT_SEC(4));
    }
    CHECK_EQ(ev[0].fd, b[0]);
    CHECK(ev[0].events & WEFT__POLL_IN);
    CHECK_EQ(weft__poller_set(p, b[0], 0, NULL), 0);
    close(a[1]);
    close(b[0]);
    close(b[1]);
  }
  weft__poller_free(p);
}

/* The old file of a reused number, kept open by a dup, stays registered
 * in the kernel under that number; its edges must not wake the new file's
 * waiters (the generation in each report tells them apart). */
TEST(an_old_file_kept_open_by_a_dup_wakes_nobody) {
  weft__poller *p = make();
  weft__poll_event ev[4];
  int a[2], b[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
  CHECK_EQ(weft__poller_set(p, a[0], WEFT__POLL_IN, NULL), 0);
  int keep = dup(a[0]), n = a[0];
  close(a[0]);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
  CHECK(b[0] == n);
  weft__poller_doubt(p, n);
  CHECK_EQ(weft__poller_set(p, n, WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(write(a[1], "old", 3), 3); /* the old file turns readable */
  CHECK_EQ(poll_now(p, ev, 4), 0);
  CHECK_EQ(write(b[1], "new", 3), 3);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  CHECK_EQ(ev[0].fd, n);
  close(keep);
  close(a[1]);
  close(b[0]);
  close(b[1]);
  weft__poller_free(p);
}

/* A read shorter than asked says a stream is drained, unless its end of
 * file was reported (the end is still to be read); it says nothing of a
 * datagram socket, where one read takes one message of several. */
TEST(a_short_read_clears_a_hint_only_where_it_drains) {
  weft__poller *p = make();
  weft__poll_event ev[4];
  char buf[64];
  /* A stream, drained. */
  int s[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s), 0);
  CHECK_EQ(weft__poller_set(p, s[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(write(s[1], "ab", 2), 2);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  CHECK_EQ(read(s[0], buf, sizeof buf), 2);
  weft__poller_not_ready(p, s[0], WEFT__POLL_IN, true);
  CHECK_EQ(weft__poller_set(p, s[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(poll_now(p, ev, 4), 0); /* trusted, and rightly */
  /* The same stream with its end to read. */
  CHECK_EQ(write(s[1], "cd", 2), 2);
  close(s[1]);
  CHECK_EQ(weft__poller_wait(p, ev, 4, weft__now() + WEFT_SEC(5)), 1);
  CHECK_EQ(read(s[0], buf, sizeof buf), 2);
  weft__poller_not_ready(p, s[0], WEFT__POLL_IN, true);
  CHECK_EQ(weft__poller_set(p, s[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(poll_now(p, ev, 4), 1); /* the end of file, at once */
  CHECK_EQ(read(s[0], buf, sizeof buf), 0);
  close(s[0]);
  /* Datagrams: two came, one was read. */
  int d[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, d), 0);
  CHECK_EQ(weft__poller_set(p, d[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(write(d[1], "1", 1), 1);
  CHECK_EQ(write(d[1], "2", 1), 1);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  CHECK_EQ(read(d[0], buf, sizeof buf), 1);
  weft__poller_not_ready(p, d[0], WEFT__POLL_IN, true);
  CHECK_EQ(weft__poller_set(p, d[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(poll_now(p, ev, 4), 1); /* the second, at once */
  close(d[0]);
  close(d[1]);
  weft__poller_free(p);
}

/* An arming on trust of a number closed behind the poller's back ends
 * with an error report at the recheck (poll: refused at once), not in a
 * wait without end. */
TEST(a_trusted_arming_of_a_closed_number_is_reported_broken) {
  weft__poller *p = make();
  weft__poll_event ev[4];
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  CHECK_EQ(weft__poller_set(p, fds[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(write(fds[1], "a", 1), 1);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  weft__poller_not_ready(p, fds[0], WEFT__POLL_IN, false);
  close(fds[0]);
  int rc = weft__poller_set(p, fds[0], WEFT__POLL_IN, &fds);
  if (!epoll()) {
    CHECK_EQ(rc, -EBADF);
  } else {
    CHECK_EQ(rc, 0);
    CHECK_EQ(weft__poller_wait(p, ev, 4, weft__now() + WEFT_SEC(5)), 1);
    CHECK_EQ(ev[0].fd, fds[0]);
    CHECK(ev[0].events & WEFT__POLL_ERR);
    CHECK_PTR_EQ(ev[0].data, &fds);
  }
  close(fds[1]);
  weft__poller_free(p);
}

/* epoll registers an fd for writing only from its first arming for
 * writing on: that arming reports a writable fd at once all the same, and
 * later ones, after a try that said EAGAIN, the room that comes. */
TEST(writing_is_watched_from_its_first_arming) {
  weft__poller *p = make();
  weft__poll_event ev[4];
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  CHECK_EQ(weft__poller_set(p, sv[0], WEFT__POLL_IN, NULL), 0);
  CHECK_EQ(poll_now(p, ev, 4), 0); /* writable, but nobody asked */
  CHECK_EQ(weft__poller_set(p, sv[0], WEFT__POLL_IN | WEFT__POLL_OUT, NULL), 0);
  CHECK_EQ(poll_now(p, ev, 4), 1);
  CHECK_EQ(ev[0].events & (WEFT__POLL_IN | WEFT__POLL_OUT), WEFT__POLL_OUT);
  char buf[4096] = {0};
  while (write(sv[0], buf, sizeof buf) > 0)
    ;
  CHECK_EQ(errno, EAGAIN);
  weft__poller_not_ready(p, sv[0], WEFT__POLL_OUT, false);
  CHECK_EQ(weft__poller_set(p, sv[0], WEFT__POLL_OUT, NULL), 0);
  CHECK_EQ(poll_now(p, ev, 4), 0);
  while (read(sv[1], buf, sizeof buf) > 0)
    ;
  CHECK_EQ(weft__poller_wait(p, ev, 4, weft__now() + WEFT_SEC(5)), 1);
  CHECK(ev[0].events & WEFT__POLL_OUT);
  close(sv[0]);
  close(sv[1]);
  weft__poller_free(p);
}
