/*
 * weft__ctx — a place execution can be suspended and resumed: a coroutine,
 * or whatever context resumed one (a thread's own stack, another
 * coroutine). It joins the machine context of the build's backend
 * (arch/ctx-asm.h or arch/ctx-ucontext.h) with the state the build's tools
 * need (tools/none.h, asan.h or tsan.h), chosen by CMake through
 * WEFT_MACHINE_CTX_H and WEFT_TOOLS_H.
 *
 * The tool hooks keep these promises:
 *  - weft__tools_coro_init/_fini bracket the life of a coroutine's context,
 *    with the bounds of its stack;
 *  - weft__tools_before_switch runs on the leaving side right before the
 *    machine switch, with from_ends true when `from` will never run again;
 *  - weft__tools_after_switch runs on the arriving side right after it (and
 *    first thing in a fresh coroutine, with no local), with the local state
 *    the same function's before_switch saved in its own frame — never with
 *    the contexts, which another thread may own by then;
 *  - weft__tools_saved_seen runs when a thread has seen a context saved and
 *    is about to resume it.
 * A context that is not a coroutine's starts zeroed.
 *
 * Tail calls: with no tools, nothing follows the machine switch in
 * weft__ctx_switch, so a caller that ends in `return weft__ctx_switch(…)`
 * compiles to a jump, and no return instruction runs between two switches
 * (see switch-x86_64.S for why that matters). Callers keep that shape on
 * their hot paths: the work that would follow a switch is done by the other
 * side, before it switches back.
 */
#ifndef WEFT_CORE_CTX_H
#define WEFT_CORE_CTX_H

#include <stdbool.h>

#include WEFT_MACHINE_CTX_H
#include WEFT_TOOLS_H

typedef struct weft__ctx {
  weft__machine_ctx machine;
  weft__tools_ctx tools;
} weft__ctx;

/* Suspends the running context into *from and resumes *to, handing it
 * code; returns the code handed by whoever resumes *from later. */
static inline int weft__ctx_switch(weft__ctx *from, weft__ctx *to, int code) {
  weft__tools_local local;
  weft__tools_before_switch(&local, &from->tools, &to->tools, false);
  int got = weft__machine_switch(&from->machine, &to->machine, code);
  weft__tools_after_switch(&local);
  return got;
}

/* A hint that *ctx will be resumed soon (see weft__machine_prefetch). */
static inline void weft__ctx_prefetch(const weft__ctx *ctx) {
  weft__machine_prefetch(&ctx->machine);
}

/* Waits until *ctx, left by a switch on some thread, is saved and may be
 * resumed. The wait is the few instructions between a claim of the context
 * and the switch's publication of it, and is almost never taken; should the
 * leaving thread be preempted inside that window, the waiter gives up its
 * CPU rather than spin against it. */
static inline void weft__ctx_wait_saved(weft__ctx *ctx) {
  extern void weft__ctx_wait_saved_slow(weft__ctx * ctx);
  if (__builtin_expect(!weft__machine_saved(&ctx->machine), 0))
    weft__ctx_wait_saved_slow(ctx);
  weft__tools_saved_seen(&ctx->tools);
}

/* Leaves *from for good and resumes *to. */
static inline _Noreturn void weft__ctx_exit(weft__ctx *from, weft__ctx *to,
                                            int code) {
  weft__tools_before_switch(NULL, &from->tools, &to->tools, true);
  weft__machine_switch(&from->machine, &to->machine, code);
  __builtin_unreachable();
}

#endif
