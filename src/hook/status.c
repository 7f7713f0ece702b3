/*
 * The program's view of an fd's O_NONBLOCK, and the one case where the
 * hooks change the real flag: a blocking listening socket accepted on in a
 * task (accept has no per-call "don't wait" flag). Such an fd is
 * "flipped": O_NONBLOCK is set, the program's own setting is kept here,
 * and fcntl and ioctl through the hooks show and change that setting.
 *
 * The record is keyed by fd number and names the file (device and inode),
 * so that a number closed behind the hooks' back (fclose, a raw syscall)
 * and reused for another file is not taken for the flipped one. close,
 * dup2 and dup3 through the hooks drop it; dup and F_DUPFD copy it.
 *
 * Thread safety: the records are guarded by `mu`; `any` lets the common
 * case (no fd ever flipped) skip the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "hook-private.h"
#include "status.h"

struct flipped {
  bool flipped;
  bool user_nonblocking; /* what the program set */
  dev_t dev;
  ino_t ino;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct flipped *recs;
static int cap;
static atomic_bool any;

static bool same_file(int fd, const struct flipped *r) {
  struct stat st;
  return fstat(fd, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino;
}

/* The record of fd if it names the file open under fd now; under mu. */
static struct flipped *find(int fd) {
  if (fd < 0 || fd >= cap || !recs[fd].flipped)
    return NULL;
  if (!same_file(fd, &recs[fd])) {
    recs[fd].flipped = false;
    return NULL;
  }
  return &recs[fd];
}

/* A child of fork has one thread, and the mutex may have been held by
 * another of the parent's at the fork: the child's close must not wait
 * for it. The records are the child's too (it shares the files). */
static void child_after_fork(void) { pthread_mutex_init(&mu, NULL); }

__attribute__((constructor)) static void watch_forks(void) {
  pthread_atfork(NULL, NULL, child_after_fork);
}

int weft__hook_flipped_view(int fd, bool *user_nonblocking) {
  if (!atomic_load_explicit(&any, memory_order_acquire))
    return 0;
  int saved = errno;
  pthread_mutex_lock(&mu);
  struct flipped *r = find(fd);
  if (r)
    *user_nonblocking = r->user_nonblocking;
  pthread_mutex_unlock(&mu);
  errno = saved;
  return r != NULL;
}

int weft__hook_flipped_set_view(int fd, bool user_nonblocking) {
  if (!atomic_load_explicit(&any, memory_order_acquire))
    return 0;
  int saved = errno;
  pthread_mutex_lock(&mu);
  struct flipped *r = find(fd);
  if (r)
    r->user_nonblocking = user_nonblocking;
  pthread_mutex_unlock(&mu);
  errno = saved;
  return r != NULL;
}

int weft__hook_flip(int fd) {
  int saved = errno, rc = 0;
  struct stat st;
  pthread_mutex_lock(&mu);
  if (fstat(fd, &st) != 0) {
    rc = -errno;
  } else if (fd >= cap) {
    int n = cap ? cap : 64;
    while (n <= fd)
      n *= 2;
    struct flipped *g = realloc(recs, (size_t)n * sizeof *g);
    if (!g) {
      rc = -ENOMEM;
    } else {
      for (int i = cap; i < n; i++)
        g[i] = (struct flipped){0};
      recs = g;
      cap = n;
    }
  }
  if (rc == 0) {
    int fl = REAL(fcntl)(fd, F_GETFL);
    if (fl < 0 || REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
      rc = -errno;
    } else {
      recs[fd] = (struct flipped){.flipped = true,
                                  .user_nonblocking = false,
                                  .dev = st.st_dev,
                                  .ino = st.st_ino};
      atomic_store_explicit(&any, true, memory_order_release);
    }
  }
  pthread_mutex_unlock(&mu);
  errno = saved;
  return rc;
}

void weft__hook_flipped_drop(int fd) {
  if (!atomic_load_explicit(&any, memory_order_acquire) || fd < 0)
    return;
  pthread_mutex_lock(&mu);
  if (fd < cap)
    recs[fd].flipped = false;
  pthread_mutex_unlock(&mu);
}

void weft__hook_flipped_copy(int from, int to) {
  if (!atomic_load_explicit(&any, memory_order_acquire) || to < 0)
    return;
  int saved = errno;
  pthread_mutex_lock(&mu);
  struct flipped *r = find(from);
  if (to < cap)
    recs[to].flipped = false;
  if (r) {
    struct flipped copy = *r;
    pthread_mutex_unlock(&mu);
    /* Growing the table is weft__hook_flip's job; a dup is rare enough to
     * take the slow way: record the copy as a fresh flip of the same
     * (already non-blocking) file, then restore the program's view. */
    if (weft__hook_flip(to) == 0)
      weft__hook_flipped_set_view(to, copy.user_nonblocking);
    errno = saved;
    return;
  }
  pthread_mutex_unlock(&mu);
  errno = saved;
}

int weft__hook_user_flags(int fd) {
  int saved = errno;
  int fl = REAL(fcntl)(fd, F_GETFL);
  bool view;
  if (fl >= 0 && weft__hook_flipped_view(fd, &view))
    fl = view ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
  errno = saved;
  return fl;
}
