/*
 * Switch hooks for AddressSanitizer: its fiber API
 * (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber) tells it
 * which stack is live, so it neither reports false stack-buffer errors nor
 * loses track of fake stacks. See ../ctx.h for what each hook promises.
 *
 * Ownership: once a switch has published the context it leaves, another
 * thread may own that context (a generator's g->caller, say). So what the
 * arriving side needs is never read from the contexts: the fake-stack slot
 * lives in the switching function's own frame (weft__tools_local), and what
 * the arriving side must know of the context it came from is copied to a
 * thread-local before the switch.
 */
#ifndef WEFT_CORE_TOOLS_ASAN_H
#define WEFT_CORE_TOOLS_ASAN_H

#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct weft__tools_ctx {
  const void *stack_lo; /* for a coroutine, set at init; for any other
                           context, learnt each time it switches away */
  size_t stack_size;
  bool is_coro; /* bounds fixed at init */
} weft__tools_ctx;

/* In the frame of the function that switches, on its own stack. */
typedef struct weft__tools_local {
  void *fake_stack; /* ASan's saved fake stack while suspended */
} weft__tools_local;

/* ASan's redzones make frames two to three times larger. */
enum { WEFT__TOOLS_STACK_SCALE = 4 };

/* What an arriving context learns of the one that switched to it. A switch
 * never changes threads, so a thread-local is exact; the slot is found
 * afresh after the switch (see switch-ucontext.c for why). */
struct weft__asan_leaving {
  weft__tools_ctx *ctx; /* written on arrival only when not a coroutine's */
  bool is_coro;
};
struct weft__asan_leaving *weft__asan_leaving(void);

static inline void weft__tools_coro_init(weft__tools_ctx *t, void *lo,
                                         size_t size) {
  t->stack_lo = lo;
  t->stack_size = size;
  t->is_coro = true;
}
/* A coroutine freed while suspended leaves its frames' redzones poisoned;
 * the next coroutine on that stack must not inherit them. */
static inline void weft__tools_coro_fini(weft__tools_ctx *t) {
  __asan_unpoison_memory_region(t->stack_lo, t->stack_size);
}
/* A shared stack's shadow belongs to whoever runs on it. */
static inline void weft__tools_coro_fini_shared(weft__tools_ctx *t) { (void)t; }
static inline void weft__tools_before_switch(weft__tools_local *local,
                                             weft__tools_ctx *from,
                                             weft__tools_ctx *to,
                                             bool from_ends) {
  struct weft__asan_leaving *l = weft__asan_leaving();
  l->ctx = from;
  l->is_coro = from->is_coro;
  __sanitizer_start_switch_fiber(from_ends ? NULL : &local->fake_stack,
                                 to->stack_lo, to->stack_size);
}
/* local is NULL on a coroutine's first entry: it has no fake stack yet. */
static inline void weft__tools_after_switch(weft__tools_local *local) {
  struct weft__asan_leaving *l = weft__asan_leaving();
  const void *lo;
  size_t size;
  __sanitizer_finish_switch_fiber(local ? local->fake_stack : NULL, &lo, &size);
  if (!l->is_coro) {
    /* A context that is not a coroutine's is owned by the coroutine now
     * running (it is that coroutine's resumer), so writing it is safe. */
    l->ctx->stack_lo = lo;
    l->ctx->stack_size = size;
  }
}
static inline void weft__tools_saved_seen(weft__tools_ctx *t) { (void)t; }

/* See none.h. 256 stacks: a use after a few hundred more coroutines were
 * made and let go still finds its object poisoned. */
enum { WEFT__TOOLS_QUARANTINE = 256 };
static inline void weft__tools_object_made(void *obj, size_t size) {
  __asan_unpoison_memory_region(obj, size);
}
static inline void weft__tools_object_gone(void *obj, size_t size) {
  __asan_poison_memory_region(obj, size);
}

/* See none.h. The restored frames lose their redzones' poison: a copied
 * frame is checked no more, a new one is as before. */
static inline void weft__tools_stack_reused(void *lo, size_t size) {
  __asan_unpoison_memory_region(lo, size);
}

/* See none.h. A suspended stack holds its frames' redzones, poisoned, and
 * must be copied whole: word by word, unchecked, through volatile so that
 * the compiler does not make it a (checked) memcpy. */
__attribute__((no_sanitize_address)) static inline void
weft__tools_copy_stack(void *to, const void *from, size_t n) {
  volatile unsigned char *t = to;
  const volatile unsigned char *f = from;
  for (size_t i = 0; i < n; i++)
    t[i] = f[i];
}

#endif
