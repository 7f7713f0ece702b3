/*
 * Switch hooks for a build without sanitizers: nothing to tell anyone.
 * See ../ctx.h for what each hook promises.
 */
#ifndef WEFT_CORE_TOOLS_NONE_H
#define WEFT_CORE_TOOLS_NONE_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
