/*
 * Switch hooks for AddressSanitizer: its fiber API
 * (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber) tells it
 * which stack is live, so it neither reports false stack-buffer errors nor
 * loses track of fake stacks. See ../ctx.h for what each hook promises.
 */
#ifndef WEFT_CORE_TOOLS_ASAN_H
#define WEFT_CORE_TOOLS_ASAN_H

#include <sanitizer/common_interface_defs.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct weft__tools_ctx {
  const void *stack_lo; /* for a coroutine, set at init; for any other
                           context, learnt each time it switches away */
  size_t stack_size;
  void *fake_stack; /* ASan's saved fake stack while suspended */
  bool is_coro;     /* bounds fixed: never rewritten, as another thread may
                       be reading them once the context is published */
} weft__tools_ctx;

/* ASan's redzones make frames two to three times larger. */
enum { WEFT__TOOLS_STACK_SCALE = 4 };

/* The context a switch on this thread is leaving; read on arrival. A
 * switch never changes threads, so a thread-local is exact — but the context
 * that arrives may have left on another thread, so the slot is found afresh
 * (see switch-ucontext.c). */
weft__tools_ctx **weft__asan_switch_from(void);

static inline void weft__tools_coro_init(weft__tools_ctx *t, void *lo,
                                         size_t size) {
  t->stack_lo = lo;
  t->stack_size = size;
  t->fake_stack = NULL;
  t->is_coro = true;
}
static inline void weft__tools_coro_fini(weft__tools_ctx *t) { (void)t; }
static inline void weft__tools_before_switch(weft__tools_ctx *from,
                                             weft__tools_ctx *to,
                                             bool from_ends) {
  *weft__asan_switch_from() = from;
  __sanitizer_start_switch_fiber(from_ends ? NULL : &from->fake_stack,
                                 to->stack_lo, to->stack_size);
}
static inline void weft__tools_after_switch(weft__tools_ctx *self) {
  weft__tools_ctx *from = *weft__asan_switch_from();
  const void *lo;
  size_t size;
  __sanitizer_finish_switch_fiber(self->fake_stack, &lo, &size);
  if (!from->is_coro) {
    from->stack_lo = lo;
    from->stack_size = size;
  }
}
static inline void weft__tools_saved_seen(weft__tools_ctx *t) { (void)t; }

#endif
