/*
 * Machine contexts switched by the C library's ucontext functions: the
 * portable fallback for architectures without a switch-<arch>.S. It is slow
 * (glibc's swapcontext makes a sigprocmask system call every time) but
 * correct wherever makecontext/swapcontext exist.
 */
#ifndef WEFT_CORE_ARCH_CTX_UCONTEXT_H
#define WEFT_CORE_ARCH_CTX_UCONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <ucontext.h>

typedef struct weft__machine_ctx {
  ucontext_t uc;
  int code;                        /* handed over by the switch into it */
  bool saved;                      /* see weft__machine_saved */
  void (*fn)(void *arg, int code); /* for a fresh context only */
  void *arg;
} weft__machine_ctx;

/* As in ctx-asm.h. swapcontext cannot publish *from after saving it and
 * before jumping, so the context that arrives does it on the switcher's
 * behalf, first thing. */
int weft__machine_switch(weft__machine_ctx *from, weft__machine_ctx *to,
                         int code);
void weft__machine_make(weft__machine_ctx *ctx, void *stack_lo,
                        size_t stack_size, void (*fn)(void *arg, int code),
                        void *arg);

static inline void weft__machine_prefetch(const weft__machine_ctx *ctx) {
  __builtin_prefetch(&ctx->uc);
}

/* Whether weft__machine_sp tells a saved context's stack pointer: not known
 * (weft__machine_sp). */
#define WEFT__MACHINE_SP_KNOWN 0

/* As in ctx-asm.h; not known here (where ucontext_t keeps it varies with
 * the machine): NULL, and nothing is trimmed. */
static inline void *weft__machine_sp(const weft__machine_ctx *ctx) {
  (void)ctx;
  return NULL;
}

static inline bool weft__machine_saved(weft__machine_ctx *ctx) {
  return __atomic_load_n(&ctx->saved, __ATOMIC_ACQUIRE);
}

#endif
