/*
 * Catching stack overflow: a SIGSEGV/SIGBUS handler that recognizes a fault
 * in the guard below the running coroutine's stack and names the coroutine
 * before the process dies, and the per-thread alternate signal stack the
 * handler needs (an overflowing stack has no room left to run it).
 *
 * The handler is installed once, when the first thread prepares to run
 * coroutines. Faults that are not a coroutine's overflow go to whatever
 * handler was installed before weft's, or to the default action.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coro.h"
#include "sigpipe.h"

WEFT__TLS bool weft__thread_ready;

static struct sigaction old_segv, old_bus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static pthread_key_t altstack_key;

int weft__write_all(int fd, const void *buf, size_t n) {
  const char *s = buf;
  int rc = 0;
  int saved = errno; /* a fault handler's caller must not see it move */
  weft__sigpipe_guard g;
  weft__sigpipe_block(&g);
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      rc = -errno;
      break;
    }
    if (w == 0) {
      rc = -EIO;
      break;
    }
    s += w;
    n -= (size_t)w;
  }
  weft__sigpipe_unblock(&g, rc == -EPIPE);
  errno = saved;
  return rc;
}

void weft__say(const char *s, size_t n) {
  weft__write_all(STDERR_FILENO, s, n);
}

static void report(const weft__coro *co, const char *how) {
  char msg[256];
  size_t at = 0;
  const char *head = "weft: stack overflow in ";
  memcpy(msg, head, strlen(head));
  at = strlen(head);
  at += weft__coro_describe(co, msg + at, sizeof msg - at);
  size_t n = strlen(how);
  if (at + n < sizeof msg) {
    memcpy(msg + at, how, n);
    at += n;
  }
  weft__say(msg, at);
}

static const struct sigaction *previous(int sig) {
  return sig == SIGSEGV ? &old_segv : &old_bus;
}

static bool is_default(const struct sigaction *sa) {
  return !(sa->sa_flags & SA_SIGINFO) &&
         (sa->sa_handler == SIG_DFL || sa->sa_handler == SIG_IGN);
}

/* Whether a fault at addr is co's stack overflowing: in the guard below its
 * stack, or anywhere once its canary is broken (a canary-guarded stack has
 * no guard to fault in; an overflow runs on until it faults elsewhere). */
static bool overflow_of(const weft__coro *co, const void *addr) {
  return co && (weft__stack_overflowed_at(&co->stack, addr) ||
                !weft__stack_canary_ok(&co->stack));
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
  const struct sigaction *old = previous(sig);
  /* The running coroutine, or the one whose switch out was saving its
   * registers when the fault came. */
  const weft__coro *co = weft__coro_running;
  if (!overflow_of(co, si->si_addr))
    co = weft__coro_leaving;
  if (overflow_of(co, si->si_addr)) {
    report(co, " (its stack is too small: give it a larger stack_size)\n");
    /* Our message is out; the fault now takes its usual course: returning
     * re-runs the faulting instruction under the previous handler (a
     * sanitizer's report) or the default action (death, a core dump). */
    if (is_default(old))
      signal(sig, SIG_DFL);
    else
      sigaction(sig, old, NULL);
    return;
  }
  /* Not ours: pass it on as if weft's handler were not there. */
  if (old->sa_flags & SA_SIGINFO)
    old->sa_sigaction(sig, si, uc);
  else if (!is_default(old))
    old->sa_handler(sig);
  else
    signal(sig, SIG_DFL);
}

_Noreturn void weft__coro_overflow_late(const weft__coro *co) {
  report(co, " (found when it switched out: its canary was overwritten; "
             "give it a larger stack_size)\n");
  abort();
}

static size_t altstack_size(void) {
  size_t want = (size_t)SIGSTKSZ * 4;
  return want > 65536 ? want : 65536;
}

static void free_altstack(void *mem) {
  stack_t ss = {.ss_flags = SS_DISABLE};
  sigaltstack(&ss, NULL);
  munmap(mem, altstack_size());
}

static void install(void) {
  pthread_key_create(&altstack_key, free_altstack);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
}

void weft__thread_prepare_slow(void) {
  pthread_once(&install_once, install);
  stack_t cur;
  if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) {
    weft__thread_ready = true; /* the thread already has one: use it */
    return;
  }
  size_t size = altstack_size();
  void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED)
    return; /* try again at the next enter; overflow is still fatal */
  stack_t ss = {.ss_sp = mem, .ss_size = size};
  if (sigaltstack(&ss, NULL) != 0) {
    munmap(mem, size);
    return;
  }
  pthread_setspecific(altstack_key, mem);
  weft__thread_ready = true;
}
