/*
 * Machine contexts switched by the C library's ucontext functions: the
 * portable fallback for architectures without a switch-<arch>.S. It is slow
 * (glibc's swapcontext makes a sigprocmask system call every time) but
 * correct wherever makecontext/swapcontext exist.
 */
#ifndef WEFT_CORE_ARCH_CTX_UCONTEXT_H
#define WEFT_CORE_ARCH_CTX_UCONTEXT_H

#include <stddef.h>
#include <ucontext.h>

typedef struct weft__machine_ctx {
  ucontext_t uc;
  void *value;                        /* handed over by the switch into it */
  void (*fn)(void *arg, void *value); /* for a fresh context only */
  void *arg;
} weft__machine_ctx;

void *weft__machine_switch(weft__machine_ctx *from, weft__machine_ctx *to,
                           void *value);
void weft__machine_make(weft__machine_ctx *ctx, void *stack_lo,
                        size_t stack_size, void (*fn)(void *arg, void *value),
                        void *arg);

#endif
