/*
 * weft_proc_exec: a program in a child. See include/weft/proc.h.
 *
 * A child that is not a daemon is made by posix_spawn (a vfork
 * underneath in glibc: no copy of the parent's memory map), which reports
 * a failed exec by its errno and reaps the failed child itself. A daemon
 * needs PR_SET_PDEATHSIG set between fork and exec, which posix_spawn
 * cannot do: it is forked, and a close-on-exec pipe carries the exec's
 * errno back (end of file: the exec succeeded).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

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
  posix_spawn_file_actions_t fa;
  int err = posix_spawn_file_actions_init(&fa);
  if (err)
    return -err;
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
    err = posix_spawnp(pid, cmd->argv[0], &fa, NULL, cmd->argv,
                       cmd->envp ? cmd->envp : environ);
  posix_spawn_file_actions_destroy(&fa);
  return -err;
}

/* In a forked daemon child: set up, exec, and on failure write errno to
 * report and exit. Only async-signal-safe calls. */
static _Noreturn void exec_in_child(const weft_proc_cmd *cmd, int report,
                                    pid_t parent) {
  int err = 0;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
    _exit(128 + SIGKILL); /* the parent is gone already */
  int fds[3] = {cmd->stdin_fd, cmd->stdout_fd, cmd->stderr_fd};
  for (int i = 0; i < 3 && !err; i++) {
    int src = source_of(fds[i]);
    if (src == WEFT_PROC_DEVNULL) {
      int null = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
      if (null < 0 || (null != i && dup2(null, i) < 0))
        err = errno;
      if (null >= 0 && null != i)
        close(null);
    } else if (src >= 0 && dup2(src, i) < 0) {
      err = errno;
    }
  }
  if (!err && cmd->cwd && chdir(cmd->cwd) < 0)
    err = errno;
  if (!err) {
    execvpe(cmd->argv[0], cmd->argv, cmd->envp ? cmd->envp : environ);
    err = errno;
  }
  while (write(report, &err, sizeof err) < 0 && errno == EINTR) {
  }
  _exit(127);
}

static int fork_exec(pid_t *out, const weft_proc_cmd *cmd) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) < 0)
    return -errno;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(report[0]);
    close(report[1]);
    return -err;
  }
  if (pid == 0)
    exec_in_child(cmd, report[1], parent);
  close(report[1]);
  int err = 0;
  ssize_t n;
  while ((n = read(report[0], &err, sizeof err)) < 0 && errno == EINTR) {
  }
  close(report[0]);
  if (n > 0) { /* the exec failed: reap the child, report why */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    return -(err ? err : ECHILD);
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
  int rc = opts && opts->daemon ? fork_exec(&pid, cmd) : spawn(&pid, cmd);
  if (rc < 0)
    return rc;
  return weft__proc_adopt(out, pid, opts);
}
