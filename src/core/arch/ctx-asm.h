/*
 * Machine contexts switched by hand-written assembly
 * (switch-<arch>.S beside this file). A suspended context is nothing but its
 * stack pointer: the registers it must keep are saved on its own stack.
 */
#ifndef WEFT_CORE_ARCH_CTX_ASM_H
#define WEFT_CORE_ARCH_CTX_ASM_H

#include <stddef.h>

typedef struct weft__machine_ctx {
  void *sp;
} weft__machine_ctx;

/* Saves the running context in *from, resumes *to, and returns the value
 * passed by whoever switches back to *from. */
void *weft__machine_switch(weft__machine_ctx *from, weft__machine_ctx *to,
                           void *value);

/* Prepares *ctx to start fn(arg, value) on the stack [stack_lo,
 * stack_lo + stack_size), where value is the one passed by the first switch
 * into it. fn must never return. */
void weft__machine_make(weft__machine_ctx *ctx, void *stack_lo,
                        size_t stack_size, void (*fn)(void *arg, void *value),
                        void *arg);

#endif
