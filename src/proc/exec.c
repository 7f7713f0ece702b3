/*
 * weft_proc_exec: a program in a child. See include/weft/proc.h.
 *
 * A child that is not a daemon is made by posix_spawn (a vfork
 * underneath in glibc: no copy of the parent's memory map), which reports
 * a failed exec by its errno and reaps the failed child itself. A daemon
 * needs PR_SET_PDEATHSIG set between fork and exec, which posix_spawn
 * cannot do: weft does what posix_spawn does itself (vfork_exec).
 *
 * Either way the program runs with the signal mask the program had, not
 * weft's (see ../core/sigmask.h): the signals weft blocked for its own
 * waits are unblocked in the child. Handlers are reset by exec itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/sigmask.h"
#include "proc-private.h"

extern char **environ;

/* The fd of the parent a child's stdio fd comes from (or
 * WEFT_PROC_DEVNULL), or -1 to inherit it. */
static int source_of(int fd) {
  return fd == WEFT_PROC_INHERIT || fd == 0 ? -1 : fd;
}

static bool fd_ok(int fd) {
  int src = source_of(fd);
  return src == -1 || src == WEFT_PROC_DEVNULL ||
         (src >= 0 && fcntl(src, F_GETFD) >= 0);
}

static int spawn(pid_t *pid, const weft_proc_cmd *cmd) {
  posix_spawnattr_t attr;
  int err = posix_spawnattr_init(&attr);
  if (err)
    return -err;
  sigset_t mask;
  weft__sigmask_for_child(NULL, &mask);
  err = posix_spawnattr_setsigmask(&attr, &mask);
  if (!err)
    err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  posix_spawn_file_actions_t fa;
  if (!err)
    err = posix_spawn_file_actions_init(&fa);
  if (err) {
    posix_spawnattr_destroy(&attr);
    return -err;
  }
  int fds[3] = {cmd->stdin_fd, cmd->stdout_fd, cmd->stderr_fd};
  for (int i = 0; i < 3 && !err; i++) {
    int src = source_of(fds[i]);
    if (src == WEFT_PROC_DEVNULL)
      err = posix_spawn_file_actions_addopen(&fa, i, "/dev/null",
                                             i == 0 ? O_RDONLY : O_WRONLY, 0);
    else if (src >= 0)
      err = posix_spawn_file_actions_adddup2(&fa, src, i);
  }
  if (!err && cmd->cwd)
    err = posix_spawn_file_actions_addchdir_np(&fa, cmd->cwd);
  if (!err)
    err = posix_spawnp(pid, cmd->argv[0], &fa, &attr, cmd->argv,
                       cmd->envp ? cmd->envp : environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return -err;
}

/* In a daemon's child, which shares the parent's memory until it execs or
 * exits (vfork): set up, exec, and on failure leave errno in *err. Only
 * async-signal-safe calls; the parent's signal handlers are reset first,
 * since one running here would run on the parent's memory. */
static _Noreturn void exec_in_child(const weft_proc_cmd *cmd, volatile int *err,
                                    pid_t parent, const sigset_t *mask) {
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_IGN &&
        sa.sa_handler != SIG_DFL) {
      sa.sa_handler = SIG_DFL;
      sa.sa_flags = 0;
      sigaction(sig, &sa, NULL);
    }
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
    *err = ESRCH; /* the parent is gone already */
    _exit(127);
  }
  int fds[3] = {cmd->stdin_fd, cmd->stdout_fd, cmd->stderr_fd};
  int e = 0;
  for (int i = 0; i < 3 && !e; i++) {
    int src = source_of(fds[i]);
    if (src == WEFT_PROC_DEVNULL) {
      int null = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
      if (null < 0 || (null != i && dup2(null, i) < 0))
        e = errno;
      if (null >= 0 && null != i)
        close(null);
    } else if (src >= 0 && dup2(src, i) < 0) {
      e = errno;
    }
  }
  if (!e && cmd->cwd && chdir(cmd->cwd) < 0)
    e = errno;
  if (!e) {
    pthread_sigmask(SIG_SETMASK, mask, NULL);
    execvpe(cmd->argv[0], cmd->argv, cmd->envp ? cmd->envp : environ);
    e = errno;
  }
  *err = e ? e : ECHILD;
  _exit(127);
}

/* A daemon's child: vfork, so that the exec's errno comes back through
 * memory the two share until the exec (a pipe would do it too, but any
 * other thread's fork meanwhile inherits its write end and holds back the
 * end of file that says "the exec worked"). Signals are blocked across the
 * vfork, as posix_spawn does. */
static int vfork_exec(pid_t *out, const weft_proc_cmd *cmd) {
  volatile int err = 0;
  sigset_t all, old, child_mask;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  weft__sigmask_for_child(&old, &child_mask); /* the program's mask */
  pid_t parent = getpid();
  pid_t pid = vfork();
  if (pid == 0)
    exec_in_child(cmd, &err, parent, &child_mask);
  int fork_err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0)
    return -fork_err;
  if (err) { /* the exec failed: the child has exited; reap it */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    return -err;
  }
  *out = pid;
  return 0;
}

int weft_proc_exec(weft_proc **out, const weft_proc_cmd *cmd,
                   const weft_proc_opts *opts) {
  if (!out || !cmd || !cmd->argv || !cmd->argv[0])
    return -EINVAL;
  if (!fd_ok(cmd->stdin_fd) || !fd_ok(cmd->stdout_fd) || !fd_ok(cmd->stderr_fd))
    return -EBADF;
  pid_t pid;
  weft__proc_start_begins();
  int rc = opts && opts->daemon ? vfork_exec(&pid, cmd) : spawn(&pid, cmd);
  if (rc < 0) {
    weft__proc_start_failed();
    return rc;
  }
  return weft__proc_adopt(out, pid, opts);
}
