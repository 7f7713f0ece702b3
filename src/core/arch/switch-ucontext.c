/*
 * The portable machine context: makecontext/swapcontext. See ctx-ucontext.h.
 *
 * makecontext passes only int arguments, so the context's address is split
 * into two 32-bit halves for the boot function.
 */
#include <stdint.h>
#include <stdlib.h>

#include "ctx-ucontext.h"

void *weft__machine_switch(weft__machine_ctx *from, weft__machine_ctx *to,
                           void *value) {
  to->value = value;
  if (swapcontext(&from->uc, &to->uc) != 0)
    abort(); /* cannot happen: both contexts are valid */
  return from->value;
}

static void boot(unsigned int hi, unsigned int lo) {
  weft__machine_ctx *ctx =
      (weft__machine_ctx *)(uintptr_t)(((uint64_t)hi << 32) | lo);
  ctx->fn(ctx->arg, ctx->value);
  abort(); /* fn must never return */
}

void weft__machine_make(weft__machine_ctx *ctx, void *stack_lo,
                        size_t stack_size, void (*fn)(void *arg, void *value),
                        void *arg) {
  getcontext(&ctx->uc);
  ctx->uc.uc_link = NULL;
  ctx->uc.uc_stack.ss_sp = stack_lo;
  ctx->uc.uc_stack.ss_size = stack_size;
  ctx->fn = fn;
  ctx->arg = arg;
  uint64_t p = (uint64_t)(uintptr_t)ctx;
  makecontext(&ctx->uc, (void (*)(void))boot, 2, (unsigned int)(p >> 32),
              (unsigned int)p);
}
