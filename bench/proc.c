/*
 * The process layer beside the raw system calls (Python's multiprocessing
 * is in peers/python_proc.py):
 *
 *   BenchmarkProcessStartJoin/weft          weft_proc_start of a child whose
 *                                           function returns 0 at once, then
 *                                           weft_proc_join + weft_proc_free
 *   BenchmarkProcessStartJoin/fork-waitpid  fork(), the child _exit(0)s, the
 *                                           parent waitpid()s
 *   BenchmarkProcessExec/weft               weft_proc_exec of /bin/true, then
 *                                           weft_proc_join + weft_proc_free
 *   BenchmarkProcessExec/posix-spawn        posix_spawn of /bin/true, then
 *                                           waitpid
 *
 * ns per start + join (the child's exit code is checked to be 0).
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <sys/wait.h>
#include <weft.h>

#include "bench.h"

extern char **environ;

static char *true_argv[] = {"/bin/true", NULL};

static int returns_at_once(void *arg) {
  (void)arg;
  return 0;
}

/* Waits for pid; true when it exited with 0. */
static bool exited_zero(pid_t pid) {
  int status;
  if (waitpid(pid, &status, 0) != pid)
    return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Joins p, frees it, and says whether it exited 0. */
static bool joined_zero(weft_proc *p) {
  int code = -1;
  int rc = weft_proc_join(p, WEFT_FOREVER, &code);
  weft_proc_free(p);
  return rc == 0 && code == 0;
}

static bool weft_start_join(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    weft_proc *p;
    if (weft_proc_start(&p, returns_at_once, NULL, NULL) != 0 ||
        !joined_zero(p))
      return false;
  }
  return true;
}

static bool fork_waitpid(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0)
      _exit(0);
    if (pid < 0 || !exited_zero(pid))
      return false;
  }
  return true;
}

static bool weft_exec(uint64_t n) {
  weft_proc_cmd cmd = {.argv = true_argv};
  for (uint64_t i = 0; i < n; i++) {
    weft_proc *p;
    if (weft_proc_exec(&p, &cmd, NULL) != 0 || !joined_zero(p))
      return false;
  }
  return true;
}

static bool posix_spawn_waitpid(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    pid_t pid;
    if (posix_spawn(&pid, true_argv[0], NULL, NULL, true_argv, environ) != 0 ||
        !exited_zero(pid))
      return false;
  }
  return true;
}

int main(void) {
  struct bench_impl start_join[] = {
      {"BenchmarkProcessStartJoin/weft", weft_start_join, NULL},
      {"BenchmarkProcessStartJoin/fork-waitpid", fork_waitpid, NULL},
  };
  bench_group(start_join, 2);
  struct bench_impl exec[] = {
      {"BenchmarkProcessExec/weft", weft_exec, NULL},
      {"BenchmarkProcessExec/posix-spawn", posix_spawn_waitpid, NULL},
  };
  bench_group(exec, 2);
  return 0;
}
