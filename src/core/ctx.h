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
 *    first thing in a fresh coroutine), naming the arriving context.
 * A context that is not a coroutine's starts zeroed.
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
 * value; returns the value handed by whoever resumes *from later. */
static inline void *weft__ctx_switch(weft__ctx *from, weft__ctx *to,
                                     void *value) {
  weft__tools_before_switch(&from->tools, &to->tools, false);
  void *got = weft__machine_switch(&from->machine, &to->machine, value);
  weft__tools_after_switch(&from->tools);
  return got;
}

/* Leaves *from for good and resumes *to. */
static inline _Noreturn void weft__ctx_exit(weft__ctx *from, weft__ctx *to,
                                            void *value) {
  weft__tools_before_switch(&from->tools, &to->tools, true);
  weft__machine_switch(&from->machine, &to->machine, value);
  __builtin_unreachable();
}

#endif
