/*
 * Switch hooks for a build without sanitizers: nothing to tell anyone.
 * See ../ctx.h for what each hook promises.
 */
#ifndef WEFT_CORE_TOOLS_NONE_H
#define WEFT_CORE_TOOLS_NONE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct weft__tools_ctx {
} weft__tools_ctx;

typedef struct weft__tools_local {
} weft__tools_local;

enum { WEFT__TOOLS_STACK_SCALE = 1 };

static inline void weft__tools_coro_init(weft__tools_ctx *t, void *lo,
                                         size_t size) {
  (void)t, (void)lo, (void)size;
}
static inline void weft__tools_coro_fini(weft__tools_ctx *t) { (void)t; }
/* As weft__tools_coro_fini, for a coroutine whose stack others share and
 * may be running on: what the tools know of the stack stays. */
static inline void weft__tools_coro_fini_shared(weft__tools_ctx *t) { (void)t; }
static inline void weft__tools_before_switch(weft__tools_local *local,
                                             weft__tools_ctx *from,
                                             weft__tools_ctx *to,
                                             bool from_ends) {
  (void)local, (void)from, (void)to, (void)from_ends;
}
static inline void weft__tools_after_switch(weft__tools_local *local) {
  (void)local;
}
static inline void weft__tools_saved_seen(weft__tools_ctx *t) { (void)t; }

/* A coroutine's object (a task, a generator: the handle) at the top of its
 * stack is made, or let go. Under AddressSanitizer a let-go object is
 * poisoned, and its stack kept from reuse for a while (QUARANTINE stacks),
 * so that a handle used after it was let go is reported rather than acting
 * on a new object at the same address. */
enum { WEFT__TOOLS_QUARANTINE = 0 };
static inline void weft__tools_object_made(void *obj, size_t size) {
  (void)obj, (void)size;
}
static inline void weft__tools_object_gone(void *obj, size_t size) {
  (void)obj, (void)size;
}

/* [lo, lo + size), a stack shared by several coroutines in turn, is about
 * to receive another one's frames: under AddressSanitizer, the poison the
 * last one's frames left is cleared. */
static inline void weft__tools_stack_reused(void *lo, size_t size) {
  (void)lo, (void)size;
}

/* Copies n bytes of a suspended stack (to or from it): a plain memcpy. */
static inline void weft__tools_copy_stack(void *to, const void *from,
                                          size_t n) {
  memcpy(to, from, n);
}

#endif
