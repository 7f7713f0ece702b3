/*
 * Machine contexts switched by hand-written assembly
 * (switch-<arch>.S beside this file). A suspended context is nothing but its
 * stack pointer: the registers it must keep are saved on its own stack.
 */
#ifndef WEFT_CORE_ARCH_CTX_ASM_H
#define WEFT_CORE_ARCH_CTX_ASM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct weft__machine_ctx {
  void *sp; /* NULL while the context runs */
} weft__machine_ctx;

/*
 * Saves the running context in *from and resumes *to, whose own switch
 * returns `code`; returns the code passed by whoever resumes *from later.
 * Values larger than a code travel through memory the two sides share.
 *
 * The promise that lets another thread resume *from: the switch reads all
 * it needs of *to first, then publishes *from as saved (with release order)
 * as its last touch of *from's memory. weft__machine_saved(from) turns true
 * at that moment, and whoever sees it true (acquire) may resume *from, and
 * reuse *to, at once.
 */
int weft__machine_switch(weft__machine_ctx *from, weft__machine_ctx *to,
                         int code);

/* Prepares *ctx to start fn(arg, code) on the stack [stack_lo,
 * stack_lo + stack_size), where code is the one passed by the first switch
 * into it. fn must never return. The context counts as saved. */
void weft__machine_make(weft__machine_ctx *ctx, void *stack_lo,
                        size_t stack_size, void (*fn)(void *arg, int code),
                        void *arg);

/* Asks the cache for what resuming *ctx reads first: the registers saved
 * at its stack pointer and the frames just above, which a context parked
 * for long has let go cold. A hint: no fault, no ordering. */
static inline void weft__machine_prefetch(const weft__machine_ctx *ctx) {
  const char *sp = __atomic_load_n(&ctx->sp, __ATOMIC_RELAXED);
  if (sp)
    for (int line = 0; line < 4; line++)
      __builtin_prefetch(sp + 64 * line);
}

/* Whether weft__machine_sp tells a saved context's stack pointer: a saved
 * context is its stack pointer. */
#define WEFT__MACHINE_SP_KNOWN 1

/* The stack pointer of a saved context: below it, its stack holds
 * nothing live (stack.h's trim). */
static inline void *weft__machine_sp(const weft__machine_ctx *ctx) {
  return __atomic_load_n(&ctx->sp, __ATOMIC_RELAXED);
}

/* Whether *ctx is saved and may be resumed (acquire). */
static inline bool weft__machine_saved(weft__machine_ctx *ctx) {
  return __atomic_load_n(&ctx->sp, __ATOMIC_ACQUIRE) != NULL;
}

#endif
