/*
 * weft__coro — a function running on a stack of its own: the object every
 * layer above builds on (generators now, tasks later).
 *
 * A coroutine and the object that owns it live together at the top of its
 * stack: weft__coro_create places an object of obj_size bytes there whose
 * first member is the weft__coro, so creating one is one stack from the
 * cache and no malloc, and a coroutine that has run once has touched only
 * that top page.
 *
 * The running coroutine of each thread is weft__coro_running: layers set it
 * around weft__coro_enter, and the overflow handler uses it to name the
 * coroutine whose stack overflowed.
 */
#ifndef WEFT_CORE_CORO_H
#define WEFT_CORE_CORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "stack.h"

#define WEFT__NAME_MAX 32

typedef struct weft__coro weft__coro;

/* Runs on the coroutine's stack when it is first entered; gets the value of
 * that first switch. Must never return: it ends with weft__coro_exit. */
typedef void (*weft__coro_entry)(weft__coro *self, void *value);

struct weft__coro {
  weft__ctx ctx; /* where the coroutine is suspended */
  weft__stack stack;
  weft__coro_entry entry;
  uint64_t id;      /* unique in the process, from 1 */
  const char *kind; /* "generator", "task": for messages */
  char name[WEFT__NAME_MAX];
};

#define WEFT__TLS __thread __attribute__((tls_model("initial-exec")))

extern WEFT__TLS weft__coro *weft__coro_running;
extern WEFT__TLS bool weft__thread_ready;

/* Creates a coroutine that will call entry when first entered, inside an
 * object of obj_size bytes (weft__coro first) at the top of a stack with at
 * least stack_size usable bytes (0: the default). name may be NULL.
 * Returns 0, -EINVAL (stack_size too large) or -ENOMEM. */
int weft__coro_create(weft__coro **out, size_t obj_size, size_t stack_size,
                      const char *kind, const char *name,
                      weft__coro_entry entry);

/* Releases a coroutine that is not running: it has exited, was never
 * entered, or is suspended and will never be entered again. */
void weft__coro_destroy(weft__coro *co);

/* Gets the calling thread ready to run coroutines: an alternate signal stack
 * so that an overflow can be reported. Idempotent. */
void weft__thread_prepare(void);

/* Reports an overflow found by a broken canary and aborts. */
_Noreturn void weft__coro_overflow_late(const weft__coro *co);

/* Enters co, saving the running context in *from, and returns the value co
 * hands back when it leaves to *from. Sets weft__coro_running to co while it
 * runs and restores it after. */
static inline void *weft__coro_enter(weft__coro *co, weft__ctx *from,
                                     void *value) {
  if (__builtin_expect(!weft__thread_ready, 0))
    weft__thread_prepare();
  weft__coro *outer = weft__coro_running;
  weft__coro_running = co;
  void *got = weft__ctx_switch(from, &co->ctx, value);
  weft__coro_running = outer;
  return got;
}

/* Called by co itself: suspends co and resumes *to, returning the value of
 * the next enter. */
static inline void *weft__coro_leave(weft__coro *co, weft__ctx *to,
                                     void *value) {
  if (__builtin_expect(!weft__stack_canary_ok(&co->stack), 0))
    weft__coro_overflow_late(co);
  return weft__ctx_switch(&co->ctx, to, value);
}

/* Called by co itself: leaves for good; co may then be destroyed. */
static inline _Noreturn void weft__coro_exit(weft__coro *co, weft__ctx *to,
                                             void *value) {
  if (__builtin_expect(!weft__stack_canary_ok(&co->stack), 0))
    weft__coro_overflow_late(co);
  weft__ctx_exit(&co->ctx, to, value);
}

/* Writes "<kind> '<name>'" or "<kind> #<id>" into buf, async-signal-safely.
 * Returns the length. */
size_t weft__coro_describe(const weft__coro *co, char *buf, size_t cap);

#endif
