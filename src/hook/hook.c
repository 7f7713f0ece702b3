/*
 * The hook layer's core: finding libc's functions behind the hooks, and
 * deciding whether a call may park. See hook-private.h.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook-private.h"

struct weft__real weft__real;

/* Initial-exec: read in signal handlers, where a lazily allocated TLS
 * block (the general dynamic model's __tls_get_addr) is not safe. The
 * library is loaded at start (linked or preloaded), so its TLS is static. */
__thread int weft__hook_handler_depth
    __attribute__((tls_model("initial-exec")));

/* Set by exit() (exit.c) and by WEFT_HOOK=0: from then on every hook is
 * libc's function. */
static atomic_bool passing_all;

/* This thread's choice (weft_hook_enable): a thread-local that is false
 * while the hooks are on, so that its zero start means "on". */
static __thread bool turned_off __attribute__((tls_model("initial-exec")));

void weft__hook_pass_all(void) {
  atomic_store_explicit(&passing_all, true, memory_order_relaxed);
}

/* The next definition of name after this library's: libc's. */
static void *next(const char *name) { return dlsym(RTLD_NEXT, name); }

/* Each pointer is stored once per resolution, with the value every thread
 * would find, so resolutions that race store the same values; the stores
 * and the loads in REAL are atomic (relaxed: nothing else is published by
 * them). No pthread_once: a sanitizer's runtime calls the hooks (its
 * sigaction) before it can take a call to its own pthread_once. */
void weft__hook_resolve(void) {
#define GET(n)                                                                 \
  __atomic_store_n(&weft__real.n, (__typeof__(weft__real.n))next(#n),          \
                   __ATOMIC_RELAXED)
  GET(read);
  GET(write);
  GET(readv);
  GET(writev);
  GET(recv);
  GET(recvfrom);
  GET(recvmsg);
  GET(send);
  GET(sendto);
  GET(sendmsg);
  GET(accept);
  GET(accept4);
  GET(connect);
  GET(poll);
  GET(ppoll);
  GET(select);
  GET(pselect);
  GET(epoll_wait);
  GET(epoll_pwait);
  GET(epoll_pwait2);
  GET(sleep);
  GET(usleep);
  GET(nanosleep);
  GET(clock_nanosleep);
  GET(close);
  GET(dup);
  GET(dup2);
  GET(dup3);
  GET(fcntl);
  GET(fcntl64);
  GET(ioctl);
  GET(fclose);
  GET(close_range);
  GET(closefrom);
  GET(setsockopt);
  GET(sigaction);
  GET(exit);
  GET(getaddrinfo);
  GET(getnameinfo);
  GET(gethostbyname_r);
#undef GET
  /* glibc before 2.28 has no fcntl64; its fcntl is the one. */
  if (!weft__real.fcntl64)
    __atomic_store_n(&weft__real.fcntl64, weft__real.fcntl, __ATOMIC_RELAXED);
}

/* Whether the program's own calls reach the hooks: set before main. */
static bool in_front;

__attribute__((constructor)) static void hook_start(void) {
  weft__hook_resolve();
  const char *env = getenv("WEFT_HOOK");
  if (env && strcmp(env, "0") == 0)
    weft__hook_pass_all();
  /* What a call to read from the program reaches first: the hook, or a
   * sanitizer's interceptor that passes it on to the hook, unless it is
   * libc's own read, the one after this library. */
  void *first = dlsym(RTLD_DEFAULT, "read");
  in_front = weft__real.read && first && first != (void *)weft__real.read;
}

bool weft__hook_here(void) {
  return !turned_off && weft__hook_handler_depth == 0 &&
         !atomic_load_explicit(&passing_all, memory_order_relaxed) &&
         weft_task_current() != NULL;
}

WEFT__HOOK_API bool weft_hook_installed(void) {
  return in_front && !atomic_load_explicit(&passing_all, memory_order_relaxed);
}

WEFT__HOOK_API bool weft_hook_enable(bool on) {
  bool was = !turned_off;
  turned_off = !on;
  return was;
}

WEFT__HOOK_API bool weft_hook_enabled(void) {
  return weft_hook_installed() && weft__hook_here();
}
