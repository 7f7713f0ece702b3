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
 * weft__coro_running is the coroutine running on this thread, or NULL on a
 * thread's own stack. Whoever switches sets it to the coroutine about to
 * run, before the switch (there is no code after a switch on the hot paths:
 * see ctx.h); the overflow handler reads it to name the coroutine whose
 * stack overflowed.
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

/* Runs on the coroutine's stack when it is first entered; gets the code of
 * that first switch. Must never return: it ends by switching away for good
 * (weft__ctx_exit). */
typedef void (*weft__coro_entry)(weft__coro *self, int code);

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
/* The coroutine that last switched out on this thread: during its switch,
 * weft__coro_running already names the next one, and the overflow handler
 * checks both. */
extern WEFT__TLS weft__coro *weft__coro_leaving;
extern WEFT__TLS bool weft__thread_ready;

/* Creates a coroutine that will call entry when first entered, inside an
 * object of obj_size bytes (weft__coro first) at the top of a stack with at
 * least stack_size usable bytes (0: the default). name may be NULL.
 * Returns 0, -EINVAL (stack_size too large) or -ENOMEM. */
int weft__coro_create(weft__coro **out, size_t obj_size, size_t stack_size,
                      const char *kind, const char *name,
                      weft__coro_entry entry);

/* As weft__coro_create, for a coroutine whose object the caller keeps
 * apart from its stack: co, the first member of that object, zeroed, gets
 * a stack of its own, all of it usable. weft__coro_destroy gives the stack
 * back; the object stays the caller's. */
int weft__coro_init_apart(weft__coro *co, size_t stack_size, const char *kind,
                          const char *name, weft__coro_entry entry);

/* A coroutine started late, for many that are made at once and each run
 * briefly (a task group's members): weft__coro_reserve_apart names co,
 * zeroed, and gets it a stack, which it does not touch, so that making
 * ten thousand faults in no page; weft__coro_start_reserved makes its
 * first context, on that stack, or on `instead` (a stack of the same
 * class, warm from a coroutine that just ended), giving the reserved one
 * back untouched. Never fails: the stack was had when it was made. Until
 * then only weft__coro_destroy may be called on co. */
int weft__coro_reserve_apart(weft__coro *co, size_t stack_size,
                             const char *kind, const char *name,
                             weft__coro_entry entry);
void weft__coro_start_reserved(weft__coro *co, const weft__stack *instead);

/* weft__coro_destroy for a coroutine whose object is apart, but leaving
 * its stack (co->stack) to the caller, who gives it back later. */
void weft__coro_destroy_keeping_stack(weft__coro *co);

/* For a coroutine whose stack is shared (a copied generator's, see
 * src/gen/copied.h): weft__coro_name fills co, zeroed, with all but a
 * stack and a context; weft__coro_start_shared makes its first context at
 * the top of st, which nothing else may be using then, all of st usable;
 * weft__coro_destroy_shared releases what the tools keep of it (nothing
 * when it was never started), and leaves st alone. */
void weft__coro_name(weft__coro *co, const char *kind, const char *name,
                     weft__coro_entry entry);
void weft__coro_start_shared(weft__coro *co, const weft__stack *st);
void weft__coro_destroy_shared(weft__coro *co);

/* Releases a coroutine that is not running and is saved (see
 * weft__ctx_wait_saved): it has exited, was never entered, or is suspended
 * and will never be entered again. */
void weft__coro_destroy(weft__coro *co);

/* Gets the calling thread ready to run coroutines: an alternate signal stack
 * so that an overflow can be reported. Idempotent; cheap to call when
 * weft__thread_ready is already true. */
static inline void weft__thread_prepare(void) {
  extern void weft__thread_prepare_slow(void);
  if (__builtin_expect(!weft__thread_ready, 0))
    weft__thread_prepare_slow();
}

/* Checks, as co switches out, that its stack did not overflow a guard that
 * could not fault (a canary-guarded stack); reports and aborts if it did. */
static inline void weft__coro_check_stack(const weft__coro *co) {
  extern _Noreturn void weft__coro_overflow_late(const weft__coro *co);
  if (__builtin_expect(!weft__stack_canary_ok(&co->stack), 0))
    weft__coro_overflow_late(co);
}

/* Writes s to stderr whole (retrying short writes), async-signal-safely:
 * for reports made where stdio may not be used (a fault handler, a hub
 * that is giving up). */
void weft__say(const char *s, size_t n);

/* Writes n bytes of buf to fd whole, retrying short writes and EINTR,
 * async-signal-safely, never raising SIGPIPE (sigpipe.h): the helper for
 * every write weft makes on its own to an fd it does not own (dumps,
 * reports). Returns 0 or a negative errno (-EPIPE for a reader gone). */
int weft__write_all(int fd, const void *buf, size_t n);

/* Writes "<kind> '<name>'" or "<kind> #<id>" into buf, async-signal-safely.
 * Returns the length. */
size_t weft__coro_describe(const weft__coro *co, char *buf, size_t cap);

#endif
