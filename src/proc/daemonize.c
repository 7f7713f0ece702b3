/*
 * weft_proc_daemonize: the double fork. See include/weft/proc.h.
 *
 * The original process waits for a word from the daemon (an errno, or 0
 * once all went well) before it exits, so that a failure is returned to
 * the caller there, with nothing changed, instead of happening unseen in
 * a process nobody watches.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <weft/proc.h>

#include "../core/coro.h"

/* Closes every fd above 2 but keep. */
static void close_above_2(int keep) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) { /* no /proc: the slow way */
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 ? max : 1024); fd++)
      if (fd != keep)
        close(fd);
    return;
  }
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (fd > 2 && fd != self && fd != keep)
      close(fd);
  }
  closedir(d);
}

static void tell(int fd, int err) {
  weft__write_all(fd, &err, sizeof err);
  close(fd);
}

int weft_proc_daemonize(int flags) {
  if (flags & ~(WEFT_DAEMON_KEEP_CWD | WEFT_DAEMON_KEEP_FDS))
    return -EINVAL; /* before anything is done */
  int word[2];
  if (pipe2(word, O_CLOEXEC) < 0)
    return -errno;
  fflush(NULL);
  pid_t first = fork();
  if (first < 0) {
    int err = errno;
    close(word[0]);
    close(word[1]);
    return -err;
  }
  if (first > 0) { /* the original: wait for the word, then go */
    close(word[1]);
    int err = EIO;
    ssize_t n;
    while ((n = read(word[0], &err, sizeof err)) < 0 && errno == EINTR) {
    }
    close(word[0]);
    while (waitpid(first, NULL, 0) < 0 && errno == EINTR) {
    }
    if (n == (ssize_t)sizeof err && err == 0)
      _exit(0);
    return -(n == (ssize_t)sizeof err ? err : EIO);
  }
  close(word[0]);
  if (setsid() < 0) {
    tell(word[1], errno);
    _exit(1);
  }
  pid_t second = fork();
  if (second < 0) {
    tell(word[1], errno);
    _exit(1);
  }
  if (second > 0)
    _exit(0); /* the session leader goes: no terminal can come back */
  if (!(flags & WEFT_DAEMON_KEEP_CWD) && chdir("/") < 0) {
    /* "/" is always there; nothing to do if it is not */
  }
  umask(027);
  if (!(flags & WEFT_DAEMON_KEEP_FDS))
    close_above_2(word[1]);
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    for (int fd = 0; fd < 3; fd++)
      if (null != fd)
        dup2(null, fd);
    if (null > 2)
      close(null);
  }
  tell(word[1], 0);
  return 0;
}
