/*
 * Switch hooks for ThreadSanitizer: each coroutine is a TSan fiber, and
 * every switch is announced with __tsan_switch_to_fiber right before it
 * happens, so TSan keeps one shadow call stack and vector clock per
 * coroutine. A switch synchronizes the two contexts (flag 0), as it does for
 * real: the resumed side sees everything the switching side did.
 *
 * The assembly's store that publishes a context as saved is invisible to
 * TSan, so the switch releases the context's address just before it, and
 * whoever sees the context saved acquires that address.
 * See ../ctx.h for what each hook promises.
 */
#ifndef WEFT_CORE_TOOLS_TSAN_H
#define WEFT_CORE_TOOLS_TSAN_H

#include <sanitizer/tsan_interface.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct weft__tools_ctx {
  void *fiber; /* a coroutine's own fiber; for another context, the
                  fiber that was running when it last switched away */
  bool owns_fiber;
} weft__tools_ctx;

typedef struct weft__tools_local {
} weft__tools_local;

enum { WEFT__TOOLS_STACK_SCALE = 2 };

static inline void weft__tools_coro_init(weft__tools_ctx *t, void *lo,
                                         size_t size) {
  (void)lo, (void)size;
  t->fiber = __tsan_create_fiber(0);
  t->owns_fiber = true;
}
static inline void weft__tools_coro_fini(weft__tools_ctx *t) {
  if (t->owns_fiber)
    __tsan_destroy_fiber(t->fiber);
  t->fiber = NULL;
}
static inline void weft__tools_coro_fini_shared(weft__tools_ctx *t) {
  weft__tools_coro_fini(t);
}
static inline void weft__tools_before_switch(weft__tools_local *local,
                                             weft__tools_ctx *from,
                                             weft__tools_ctx *to,
                                             bool from_ends) {
  (void)local, (void)from_ends;
  void *to_fiber = to->fiber;
  if (!from->owns_fiber)
    from->fiber = __tsan_get_current_fiber();
  __tsan_release(from);
  __tsan_switch_to_fiber(to_fiber, 0);
}
static inline void weft__tools_after_switch(weft__tools_local *local) {
  (void)local;
}
static inline void weft__tools_saved_seen(weft__tools_ctx *t) {
  __tsan_acquire(t);
}

/* See none.h: only AddressSanitizer poisons. */
enum { WEFT__TOOLS_QUARANTINE = 0 };
static inline void weft__tools_object_made(void *obj, size_t size) {
  (void)obj, (void)size;
}
static inline void weft__tools_object_gone(void *obj, size_t size) {
  (void)obj, (void)size;
}

/* See none.h. */
static inline void weft__tools_stack_reused(void *lo, size_t size) {
  (void)lo, (void)size;
}

/* See none.h. The hub's thread copies its own tasks' stacks: no race. */
static inline void weft__tools_copy_stack(void *to, const void *from,
                                          size_t n) {
  memcpy(to, from, n);
}

#endif
