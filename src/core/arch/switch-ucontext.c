/*
 * The portable machine context: makecontext/swapcontext. See ctx-ucontext.h.
 *
 * makecontext passes only int arguments, so the context's address is split
 * into two 32-bit halves for the boot function.
 *
 * swapcontext gives each context a signal mask of its own; the assembly
 * switches leave the thread's mask alone, and weft promises that (a task
 * that blocks a signal blocks it for its thread). So each switch first
 * copies the thread's mask into the arriving context: one more system
 * call on a path that makes one already.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include "ctx-ucontext.h"

/* The context this thread is switching away from; the arriving context
 * publishes it as saved. A switch never changes threads, but a context may
 * come back on another thread than it left from, and a compiler may keep a
 * thread-local's address across the swapcontext call: so the slot is found
 * afresh, by a function the optimizer may not see through, after it. */
static __thread weft__machine_ctx *leaving;

__attribute__((noipa)) static weft__machine_ctx **leaving_slot(void) {
  return &leaving;
}

static void publish_leaving(void) {
  __atomic_store_n(&(*leaving_slot())->saved, true, __ATOMIC_RELEASE);
}

int weft__machine_switch(weft__machine_ctx *from, weft__machine_ctx *to,
                         int code) {
  to->code = code;
  to->saved = false;
  *leaving_slot() = from;
  if (sigprocmask(SIG_BLOCK, NULL, &to->uc.uc_sigmask) != 0)
    abort(); /* cannot happen: no set to change */
  if (swapcontext(&from->uc, &to->uc) != 0)
    abort(); /* cannot happen: both contexts are valid */
  /* Read before publishing: once the context that switched here is
   * published, another thread may resume it, and it may overwrite *from
   * when *from is shared (a generator's caller context is every
   * resumer's). */
  int got = from->code;
  publish_leaving();
  return got;
}

static void boot(unsigned int hi, unsigned int lo) {
  weft__machine_ctx *ctx =
      (weft__machine_ctx *)(uintptr_t)(((uint64_t)hi << 32) | lo);
  publish_leaving();
  ctx->fn(ctx->arg, ctx->code);
  abort(); /* fn must never return */
}

void weft__machine_make(weft__machine_ctx *ctx, void *stack_lo,
                        size_t stack_size, void (*fn)(void *arg, int code),
                        void *arg) {
  getcontext(&ctx->uc);
  ctx->uc.uc_link = NULL;
  ctx->uc.uc_stack.ss_sp = stack_lo;
  ctx->uc.uc_stack.ss_size = stack_size;
  ctx->fn = fn;
  ctx->arg = arg;
  ctx->saved = true;
  uint64_t p = (uint64_t)(uintptr_t)ctx;
  makecontext(&ctx->uc, (void (*)(void))boot, 2, (unsigned int)(p >> 32),
              (unsigned int)p);
}
