/*
 * The wrappers behind fault.h. Each __wrap_x counts its calls while its
 * kind is armed and fails the one the test chose; otherwise it calls
 * __real_x, the call the library would have made.
 */
#define _GNU_SOURCE
#include "fault.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/types.h>

static const char *const names[FAULT_KINDS] = {
    "malloc",        "mmap",    "madvise",  "mprotect", "epoll_ctl",
    "epoll_create1", "eventfd", "signalfd", "pipe"};

/* Which kind is armed (-1: none), how many calls may still succeed, and
 * whether the failure came. Atomic: helper threads call malloc too. */
static _Atomic int armed = -1;
static atomic_int left;
static atomic_bool fired;

const char *fault_name(enum fault_call c) { return names[c]; }

void fault_arm(enum fault_call c, int after) {
  atomic_store(&armed, -1);
  atomic_store(&fired, false);
  atomic_store(&left, after);
  atomic_store(&armed, (int)c);
}

bool fault_disarm(void) {
  atomic_store(&armed, -1);
  return atomic_load(&fired);
}

/* Whether this call of kind c is the one to fail. */
static bool fails(enum fault_call c, int err) {
  if (atomic_load(&armed) != (int)c)
    return false;
  if (atomic_fetch_sub(&left, 1) > 0)
    return false;
  atomic_store(&armed, -1);
  atomic_store(&fired, true);
  errno = err;
  return true;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off);
int __real_madvise(void *addr, size_t len, int advice);
int __real_mprotect(void *addr, size_t len, int prot);
int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __real_epoll_create1(int flags);
int __real_eventfd(unsigned initval, int flags);
int __real_signalfd(int fd, const sigset_t *mask, int flags);
int __real_pipe(int fds[2]);
int __real_pipe2(int fds[2], int flags);

void *__wrap_malloc(size_t n) {
  return fails(FAULT_MALLOC, ENOMEM) ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size) {
  return fails(FAULT_MALLOC, ENOMEM) ? NULL : __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) {
  return fails(FAULT_MALLOC, ENOMEM) ? NULL : __real_realloc(p, n);
}
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off) {
  return fails(FAULT_MMAP, ENOMEM)
             ? MAP_FAILED
             : __real_mmap(addr, len, prot, flags, fd, off);
}
int __wrap_madvise(void *addr, size_t len, int advice) {
  return fails(FAULT_MADVISE, EINVAL) ? -1 : __real_madvise(addr, len, advice);
}
int __wrap_mprotect(void *addr, size_t len, int prot) {
  return fails(FAULT_MPROTECT, ENOMEM) ? -1 : __real_mprotect(addr, len, prot);
}
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
  return fails(FAULT_EPOLL_CTL, ENOMEM) ? -1
                                        : __real_epoll_ctl(epfd, op, fd, ev);
}
int __wrap_epoll_create1(int flags) {
  return fails(FAULT_EPOLL_CREATE1, EMFILE) ? -1 : __real_epoll_create1(flags);
}
int __wrap_eventfd(unsigned initval, int flags) {
  return fails(FAULT_EVENTFD, EMFILE) ? -1 : __real_eventfd(initval, flags);
}
int __wrap_signalfd(int fd, const sigset_t *mask, int flags) {
  return fails(FAULT_SIGNALFD, EMFILE) ? -1 : __real_signalfd(fd, mask, flags);
}
int __wrap_pipe(int fds[2]) {
  return fails(FAULT_PIPE, EMFILE) ? -1 : __real_pipe(fds);
}
int __wrap_pipe2(int fds[2], int flags) {
  return fails(FAULT_PIPE, EMFILE) ? -1 : __real_pipe2(fds, flags);
}
