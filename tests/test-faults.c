/*
 * Error paths under injected failures (fault.h): for each kind of call
 * that can run short — memory, mappings, epoll, eventfd, signalfd, pipes —
 * a scenario that uses the hub, timers, tasks, fd waits, fd operations and
 * signals runs again and again, the k-th call of that kind failing in the
 * k-th run, until a run makes no more such calls. Whatever fails, every
 * call returns 0 or a shortage code (-ENOMEM, -EMFILE), nothing crashes,
 * no fd is left open, and (under ASan) no memory leaks; a clean run
 * afterwards succeeds.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>

#include "fault.h"
#include "harness.h"

/* An error a shortage may cause, or success. */
#define CHECK_OK_OR_SHORT(rc)                                                  \
  do {                                                                         \
    long long r_ = (long long)(rc);                                            \
    if (r_ < 0 && r_ != -ENOMEM && r_ != -EMFILE)                              \
      harness_fail(__FILE__, __LINE__, "%s = %lld (%s)", #rc, r_,              \
                   weft_strerror((int)r_));                                    \
  } while (0)

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  CHECK(d);
  int n = 0;
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

static void *write_soon(void *arg) {
  int fd = (int)VI(arg);
  int rc = weft_sleep(WEFT_MS(1));
  CHECK_OK_OR_SHORT(rc);
  CHECK_EQ(write(fd, "x", 1), 1);
  return NULL;
}

static void *nap(void *arg) {
  (void)arg;
  CHECK_OK_OR_SHORT(weft_sleep(WEFT_US(100)));
  return IV(5);
}

static void *scenario(void *arg) {
  (void)arg;
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  weft_task *t[3];
  int n = 0;
  for (int i = 0; i < 3; i++) {
    int rc = weft_task_spawn(&t[n], nap, NULL, NULL);
    CHECK_OK_OR_SHORT(rc);
    n += rc == 0;
  }
  /* A writer task, or, should it not start, a write from here. */
  weft_task *w;
  int rc = weft_task_spawn(&w, write_soon, IV(sv[1]), NULL);
  CHECK_OK_OR_SHORT(rc);
  if (rc < 0)
    CHECK_EQ(write(sv[1], "x", 1), 1);
  char c;
  ssize_t got = weft_io_recv(sv[0], &c, 1, 0, WEFT_SEC(10));
  CHECK_OK_OR_SHORT(got);
  got = weft_io_read(sv[0], &c, 1, 0); /* nothing more: would block */
  CHECK(got == -ETIMEDOUT || got == -ENOMEM || got == -EMFILE);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  int sig = weft_signal_wait(&set, WEFT_US(200));
  CHECK(sig == -ETIMEDOUT || sig == -ENOMEM || sig == -EMFILE);
  if (rc == 0)
    CHECK_EQ(weft_task_join(w, WEFT_FOREVER, NULL), 0);
  for (int i = 0; i < n; i++) {
    void *r;
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, &r), 0);
    CHECK_EQ(VI(r), 5);
  }
  CHECK_EQ(weft_io_close(sv[0]), 0);
  CHECK_EQ(weft_io_close(sv[1]), 0);
  return IV(42);
}

/* Runs the scenario with the k-th call of kind c failing, for k = 0, 1,
 * ... until a run completes without reaching a k-th call. */
static void sweep(enum fault_call c) {
  int fds = open_fds();
  int k;
  for (k = 0; k < 500; k++) {
    void *r = NULL;
    fault_arm(c, k);
    int rc = weft_run(scenario, NULL, &r);
    bool hit = fault_disarm();
    CHECK_OK_OR_SHORT(rc);
    if (rc == 0)
      CHECK_EQ(VI(r), 42);
    if (open_fds() != fds)
      harness_fail(__FILE__, __LINE__, "%s failing at call %d left %d fds open",
                   fault_name(c), k, open_fds() - fds);
    if (!hit)
      break;
  }
  CHECK(k < 500);
  printf("  %s: %d calls failed one by one\n", fault_name(c), k);
  void *r = NULL;
  CHECK_EQ(weft_run(scenario, NULL, &r), 0);
  CHECK_EQ(VI(r), 42);
}

TEST(malloc_failures) { sweep(FAULT_MALLOC); }
TEST(mmap_failures) { sweep(FAULT_MMAP); }
TEST(madvise_failures) { sweep(FAULT_MADVISE); }
TEST(mprotect_failures) { sweep(FAULT_MPROTECT); }
TEST(epoll_ctl_failures) { sweep(FAULT_EPOLL_CTL); }
TEST(epoll_create1_failures) { sweep(FAULT_EPOLL_CREATE1); }
TEST(eventfd_failures) { sweep(FAULT_EVENTFD); }
TEST(signalfd_failures) { sweep(FAULT_SIGNALFD); }
TEST(pipe_failures) { sweep(FAULT_PIPE); }

/* The failed call changed nothing: the same call then succeeds. */
static void *fail_then_succeed(void *arg) {
  (void)arg;
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  fault_arm(FAULT_EPOLL_CTL, 0);
  int rc = weft_io_wait(sv[0], WEFT_IO_READ, WEFT_MS(50));
  /* The poll(2) backend makes no epoll_ctl: its wait times out. */
  CHECK_EQ(rc, fault_disarm() ? -ENOMEM : -ETIMEDOUT);
  CHECK_EQ(write(sv[1], "y", 1), 1);
  CHECK_EQ(weft_io_wait(sv[0], WEFT_IO_READ, WEFT_SEC(10)), WEFT_IO_READ);
  weft_task *t;
  fault_arm(FAULT_MALLOC, 0);
  rc = weft_task_spawn(&t, nap, NULL, NULL);
  bool hit = fault_disarm();
  /* A warm stack needs no allocation at all: then the spawn succeeds. */
  if (hit)
    CHECK_EQ(rc, -ENOMEM);
  else
    CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_spawn(&t, nap, NULL, NULL), 0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  close(sv[0]);
  close(sv[1]);
  return NULL;
}

TEST(a_failed_call_changes_nothing) {
  CHECK_EQ(weft_run(fail_then_succeed, NULL, NULL), 0);
}

/* Stacks come from slabs mapped once and then cached, so the sweeps reach
 * a slab's mapping only in their first run: here each size is used for the
 * first time in the process, so its first stack needs a new slab. */
static void *fresh_stacks(void *arg) {
  (void)arg;
  weft_task *t;
  fault_arm(FAULT_MMAP, 0);
  CHECK_EQ(weft_task_spawn(&t, nap, NULL,
                           &(weft_task_opts){.stack_size = (size_t)512 << 20}),
           -ENOMEM);
  CHECK(fault_disarm());
  CHECK_EQ(weft_task_spawn(&t, nap, NULL,
                           &(weft_task_opts){.stack_size = (size_t)512 << 20}),
           0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  /* A guard that cannot be installed falls back to the next kind (an
   * mprotect page, else a canary); the task runs all the same. */
  fault_arm(FAULT_MADVISE, 0);
  CHECK_EQ(weft_task_spawn(&t, nap, NULL,
                           &(weft_task_opts){.stack_size = (size_t)256 << 20}),
           0);
  fault_disarm();
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_stack_that_cannot_be_mapped_is_enomem) {
  CHECK_EQ(weft_run(fresh_stacks, NULL, NULL), 0);
}
