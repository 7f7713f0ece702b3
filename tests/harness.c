/*
 * The test runner. See harness.h.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CASES 256

static struct {
  const char *name;
  harness_fn fn;
  int timeout;
} cases[MAX_CASES];
static int ncases;

void harness_register(const char *name, harness_fn fn, int timeout_sec) {
  if (ncases == MAX_CASES) {
    fprintf(stderr, "harness: more than %d cases\n", MAX_CASES);
    exit(2);
  }
  cases[ncases++] = (typeof(cases[0])){name, fn, timeout_sec};
}

void harness_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  _exit(1);
}

/* The exit status of a skipped case, as automake's test drivers use it. */
#define SKIP_STATUS 77

void harness_skip(const char *why) {
  printf("  skip: %s\n", why);
  fflush(NULL);
  _exit(SKIP_STATUS);
}

bool harness_emulated(void) {
  const char *e = getenv("WEFT_TEST_EMULATED");
  return e && *e && strcmp(e, "0") != 0;
}

double harness_timeout_multiplier(void) {
  const char *m = getenv("WEFT_TEST_TIMEOUT_MULTIPLIER");
  double x = m ? strtod(m, NULL) : 1.0;
  return x > 0 ? x : 1.0;
}

int64_t harness_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for pid up to timeout seconds; kills it after. Returns the wait
 * status, or -1 when it timed out. */
static int wait_with_timeout(pid_t pid, double timeout) {
  double deadline = now_sec() + timeout;
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0 && errno != EINTR)
      return -2;
    if (now_sec() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    nanosleep(&(struct timespec){0, 2000000}, NULL);
  }
}

int harness_run_child(void (*fn)(void *), void *arg, const char *const *env,
                      char *buf, size_t cap) {
  int fds[2];
  if (pipe(fds) != 0)
    harness_fail(__FILE__, __LINE__, "pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    harness_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    for (; env && *env; env++)
      putenv((char *)*env);
    fn(arg);
    _exit(0);
  }
  close(fds[1]);
  size_t len = 0;
  for (;;) {
    char tmp[512];
    ssize_t n = read(fds[0], tmp, sizeof tmp);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    size_t take = (size_t)n;
    if (cap && len + take > cap - 1)
      take = cap - 1 - len;
    memcpy(buf + len, tmp, take);
    len += take;
  }
  close(fds[0]);
  if (cap)
    buf[len] = '\0';
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return status;
}

/* Arguments pick cases by substring of their names: "word" keeps the cases
 * whose names contain it (all when no such argument is given), "-word"
 * drops them. */
static bool selected(int argc, char **argv, const char *name) {
  bool any_pick = false, picked = false;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') {
      if (strstr(name, argv[i] + 1))
        return false;
    } else {
      any_pick = true;
      picked = picked || strstr(name, argv[i]) != NULL;
    }
  }
  return !any_pick || picked;
}

int main(int argc, char **argv) {
  bool nofork = getenv("WEFT_TEST_NOFORK") != NULL;
  double mult = harness_timeout_multiplier();
  int passed = 0, failed = 0, skipped = 0, n = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 0; i < ncases; i++) {
    if (!selected(argc, argv, cases[i].name))
      continue;
    n++;
    double t0 = now_sec();
    if (nofork) {
      cases[i].fn();
      printf("ok %d - %s\n", n, cases[i].name);
      passed++;
      continue;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 2;
    }
    if (pid == 0) {
      cases[i].fn();
      /* exit, not _exit: LeakSanitizer checks for leaks at exit. */
      exit(0);
    }
    int status = wait_with_timeout(pid, cases[i].timeout * mult);
    double ms = (now_sec() - t0) * 1e3;
    if (status >= 0 && WIFEXITED(status) &&
        WEXITSTATUS(status) == SKIP_STATUS) {
      printf("ok %d - %s # SKIP (reason above)\n", n, cases[i].name);
      skipped++;
    } else if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      printf("ok %d - %s (%.0f ms)\n", n, cases[i].name, ms);
      passed++;
    } else {
      failed++;
      if (status == -1)
        printf("not ok %d - %s: timed out after %.0f s\n", n, cases[i].name,
               cases[i].timeout * mult);
      else if (status >= 0 && WIFSIGNALED(status))
        printf("not ok %d - %s: killed by signal %d (%s)\n", n, cases[i].name,
               WTERMSIG(status), strsignal(WTERMSIG(status)));
      else
        printf("not ok %d - %s: exit status %d\n", n, cases[i].name,
               status >= 0 ? WEXITSTATUS(status) : status);
    }
  }
  if (n == 0) {
    fprintf(stderr, "no case matched\n");
    return 2;
  }
  printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed ? 1 : 0;
}
