/*
 * The hook layer's shared parts: the real functions the hooks stand in
 * front of, the test of whether a call is made where it may park, and the
 * waits. See include/weft/hook.h and docs/hooks.md.
 *
 * Every hook has the same shape. Outside a hooked task (a plain thread, a
 * hub's own code, a signal handler, a process on its way out, a hub that
 * turned its hooks off) it is the real function, with at most a few loads
 * before the call. Inside one, it first makes the call in a form that
 * cannot block (MSG_DONTWAIT, RWF_NOWAIT, a poll of 0), which is the whole
 * call when the fd is ready; only when that would block does it look at
 * what the program asked for (the fd's O_NONBLOCK, SO_RCVTIMEO, the kind of
 * file) and park the task until the fd is ready, the timeout passes, or
 * the task is cancelled.
 *
 * errno: a hook leaves errno as the real function would, whatever system
 * calls it made on the way (a failed probe, a wait): every path that
 * returns -1 sets errno last.
 */
#ifndef WEFT_HOOK_PRIVATE_H
#define WEFT_HOOK_PRIVATE_H

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <weft/hook.h>

#define WEFT__HOOK_API __attribute__((visibility("default")))

/* The functions behind the hooks: the next definition after this library
 * in the dynamic linker's search order, libc's (or a sanitizer's
 * interceptor in front of libc's, which passes the call on to us: ASan and
 * TSan come first). Resolved once, before main or at the first hooked call,
 * whichever is first. */
struct weft__real {
  ssize_t (*read)(int, void *, size_t);
  ssize_t (*write)(int, const void *, size_t);
  ssize_t (*readv)(int, const struct iovec *, int);
  ssize_t (*writev)(int, const struct iovec *, int);
  ssize_t (*recv)(int, void *, size_t, int);
  ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
  ssize_t (*recvmsg)(int, struct msghdr *, int);
  ssize_t (*send)(int, const void *, size_t, int);
  ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *,
                    socklen_t);
  ssize_t (*sendmsg)(int, const struct msghdr *, int);
  int (*accept)(int, struct sockaddr *, socklen_t *);
  int (*accept4)(int, struct sockaddr *, socklen_t *, int);
  int (*connect)(int, const struct sockaddr *, socklen_t);
  int (*poll)(struct pollfd *, nfds_t, int);
  int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *,
               const sigset_t *);
  int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
  int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
                 const sigset_t *);
  int (*epoll_wait)(int, struct epoll_event *, int, int);
  int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
  int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *,
                      const sigset_t *); /* NULL before glibc 2.35 */
  unsigned (*sleep)(unsigned);
  int (*usleep)(useconds_t);
  int (*nanosleep)(const struct timespec *, struct timespec *);
  int (*clock_nanosleep)(clockid_t, int, const struct timespec *,
                         struct timespec *);
  int (*close)(int);
  int (*dup)(int);
  int (*dup2)(int, int);
  int (*dup3)(int, int, int);
  int (*fcntl)(int, int, ...);
  int (*fcntl64)(int, int, ...);
  int (*ioctl)(int, unsigned long, ...);
  int (*fclose)(FILE *);
  int (*close_range)(unsigned, unsigned, int); /* NULL before glibc 2.34 */
  void (*closefrom)(int);                      /* NULL before glibc 2.34 */
  int (*setsockopt)(int, int, int, const void *, socklen_t);
  int (*sigaction)(int, const struct sigaction *, struct sigaction *);
  void (*exit)(int);
  int (*getaddrinfo)(const char *, const char *, const struct addrinfo *,
                     struct addrinfo **);
  int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t,
                     char *, socklen_t, int);
  int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t,
                         struct hostent **, int *);
};

extern struct weft__real weft__real;

/* Fills weft__real; safe to call again, from any thread. */
void weft__hook_resolve(void);

/* The real function name, resolved first if this is the first call.
 * Every hook calls its real function through this. */
#define REAL(name)                                                             \
  (__builtin_expect(                                                           \
       __atomic_load_n(&weft__real.name, __ATOMIC_RELAXED) != NULL, 1)         \
       ? __atomic_load_n(&weft__real.name, __ATOMIC_RELAXED)                   \
       : (weft__hook_resolve(), weft__real.name))

/* Whether a call made here may park: in a task of a hub whose hooks are
 * on, not in a signal handler, not while the process exits. */
bool weft__hook_here(void);

/* A signal handler that runs through the hooks' trampoline counts itself
 * here (signal.c), so that its calls are never parked. */
extern __thread int weft__hook_handler_depth
    __attribute__((tls_model("initial-exec")));

/* What a hooked call waits up to, as weft's timeouts: ns, or WEFT_FOREVER. */
typedef int64_t weft__hook_timeout;

/*
 * Waits, in the running task, until fd is ready for events (WEFT_IO_READ
 * and/or WEFT_IO_WRITE), or until timeout ns passed. Returns 0 when ready,
 * -ETIMEDOUT, -ECANCELED, -EBADF (closed meanwhile), or another negative
 * errno of poll(2). When another task of the hub already waits on fd the
 * same way, it waits through an epoll fd of its own instead; when the hub
 * cannot watch fd at all, the thread blocks in poll(2), as in libc.
 */
int weft__hook_wait_fd(int fd, unsigned events, weft__hook_timeout timeout);

/* Wakes, with EBADF, the calling thread's tasks that wait on fd through
 * an epoll fd of their own (wait.c): fd is being closed or replaced. */
void weft__hook_forget_waits(int fd);

/* The fd's status flags (F_GETFL) as the program sees them, its own
 * O_NONBLOCK included (status.c), or -1 when fd is no open fd. */
int weft__hook_user_flags(int fd);

/* The receive or send timeout of a socket (SO_RCVTIMEO or SO_SNDTIMEO,
 * as `optname` says), as a weft timeout: WEFT_FOREVER when none or not a
 * socket. */
weft__hook_timeout weft__hook_sock_timeout(int fd, int optname);

/* The same, in *t, and whether fd is a socket at all: one system call
 * answers both (a socket is no disk file, so no fstat is needed). */
bool weft__hook_socket_timeout(int fd, int optname, weft__hook_timeout *t);

/* Whether fd is a regular file or a block device, whose reads and writes
 * never wait for a peer: those the hooks leave as plain calls. */
bool weft__hook_is_disk(int fd);

/* Sets errno to e (a positive errno) and returns -1: the end of every
 * failing path. */
static inline int weft__hook_fail(int e) {
  extern int *__errno_location(void);
  *__errno_location() = e;
  return -1;
}

/* The error a failed wait leaves a hooked call with: a timeout of the
 * socket's own (SO_RCVTIMEO/SO_SNDTIMEO) is EAGAIN as in libc; a deadline
 * of weft's (weft_deadline_set) is ETIMEDOUT; cancellation ECANCELED. */
int weft__hook_wait_errno(int rc, weft__hook_timeout timeout, int64_t started);

#endif
