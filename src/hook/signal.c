/*
 * What keeps the hooks out of places where a task must not park: signal
 * handlers, exit, and the child of a fork made in a task.
 *
 * Handlers: sigaction and signal install the program's handler behind a
 * trampoline that counts the handlers running on the thread
 * (weft__hook_handler_depth), so a write from a handler that interrupted a
 * task is libc's write. sigaction reports the program's own handler and
 * flags back, as if the trampoline were not there. A handler the hooks did
 * not install (before this library was loaded, or with a raw system call)
 * runs without the count.
 *
 * exit: the hooks pass every call to libc from the first exit() on, so
 * that atexit handlers and destructors, which may run on a task's stack,
 * never park it.
 *
 * fork needs nothing here: a child of fork has no hub (weft forgets it in
 * every child, src/hub/hub.c), so its calls are libc's until it starts a
 * hub of its own.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hook-private.h"

void weft__hook_pass_all(void);

struct handler {
  _Atomic(void *) fn; /* the program's handler, as it gave it */
  atomic_int flags;   /* the program's sa_flags */
};

static struct handler handlers[_NSIG];

static void trampoline(int sig, siginfo_t *info, void *uctx) {
  weft__hook_handler_depth++;
  void *fn = atomic_load_explicit(&handlers[sig].fn, memory_order_acquire);
  int flags = atomic_load_explicit(&handlers[sig].flags, memory_order_relaxed);
  if (flags & SA_SIGINFO)
    ((void (*)(int, siginfo_t *, void *))fn)(sig, info, uctx);
  else
    ((void (*)(int))fn)(sig);
  weft__hook_handler_depth--;
}

/* Whether the handler in act is a function of the program's (not SIG_DFL
 * or SIG_IGN). */
static bool is_function(const struct sigaction *act) {
  void *fn = (act->sa_flags & SA_SIGINFO) ? (void *)act->sa_sigaction
                                          : (void *)act->sa_handler;
  return fn != (void *)SIG_DFL && fn != (void *)SIG_IGN;
}

/* The kernel's record in *old, shown as the program installed it. */
static void show_as_program(int sig, struct sigaction *old) {
  if ((void *)old->sa_sigaction != (void *)trampoline)
    return;
  void *fn = atomic_load_explicit(&handlers[sig].fn, memory_order_acquire);
  int flags = atomic_load_explicit(&handlers[sig].flags, memory_order_relaxed);
  old->sa_flags = flags;
  if (flags & SA_SIGINFO)
    old->sa_sigaction = (void (*)(int, siginfo_t *, void *))fn;
  else
    old->sa_handler = (void (*)(int))fn;
}

WEFT__HOOK_API int sigaction(int sig, const struct sigaction *act,
                             struct sigaction *old) {
  if (sig <= 0 || sig >= _NSIG || !act || !is_function(act)) {
    int r = REAL(sigaction)(sig, act, old);
    if (r == 0 && old && sig > 0 && sig < _NSIG)
      show_as_program(sig, old);
    return r;
  }
  /* A handler of the program's: recorded first, so that a signal that
   * comes the moment the trampoline is in place finds it. The previous
   * record is put back if the kernel refuses (a bad signal number). */
  void *was_fn = atomic_load(&handlers[sig].fn);
  int was_flags = atomic_load(&handlers[sig].flags);
  void *fn = (act->sa_flags & SA_SIGINFO) ? (void *)act->sa_sigaction
                                          : (void *)act->sa_handler;
  atomic_store(&handlers[sig].flags, act->sa_flags);
  atomic_store(&handlers[sig].fn, fn);
  struct sigaction k = *act;
  k.sa_flags |= SA_SIGINFO;
  k.sa_sigaction = trampoline;
  struct sigaction prev;
  int r = REAL(sigaction)(sig, &k, &prev);
  if (r != 0) {
    atomic_store(&handlers[sig].fn, was_fn);
    atomic_store(&handlers[sig].flags, was_flags);
    return r;
  }
  if (old) {
    /* The previous handler as the program knew it. */
    if ((void *)prev.sa_sigaction == (void *)trampoline) {
      prev.sa_flags = was_flags;
      if (was_flags & SA_SIGINFO)
        prev.sa_sigaction = (void (*)(int, siginfo_t *, void *))was_fn;
      else
        prev.sa_handler = (void (*)(int))was_fn;
    }
    *old = prev;
  }
  return 0;
}

/* signal() as glibc's: BSD semantics (the handler stays installed, the
 * signal is blocked while it runs, interrupted calls restart). */
WEFT__HOOK_API sighandler_t signal(int sig, sighandler_t handler) {
  struct sigaction act, old;
  memset(&act, 0, sizeof act);
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  if (sig > 0 && sig < _NSIG)
    sigaddset(&act.sa_mask, sig);
  if (sigaction(sig, &act, &old) != 0)
    return SIG_ERR;
  return old.sa_handler;
}

WEFT__HOOK_API sighandler_t bsd_signal(int sig, sighandler_t handler) {
  return signal(sig, handler);
}

WEFT__HOOK_API void exit(int status) {
  weft__hook_pass_all();
  REAL(exit)(status);
  __builtin_unreachable();
}
