/*
 * BenchmarkSwitch/<impl>: one resume + yield round trip.
 *
 *   weft            weft_gen_resume + weft_gen_yield (the public API)
 *   ucontext        glibc swapcontext, twice
 *   boost-fcontext  Boost.Context's jump_fcontext, twice (when installed)
 *   boost-fcontext-fn
 *                   the same jumps inside a pair of resume/yield functions,
 *                   the shape any generator API built on fcontext has (see
 *                   docs/switch.md for why the shape costs)
 *
 * Python's generator send() is measured by peers/python_generator.py.
 *
 * BenchmarkSwitch/mode=<mode>/weft: the same round trip with copied-stack
 * generators (weft_gen_opts.copied):
 *   mode=copied        one generator, whose frames stay on the shared stack
 *   mode=copied-turns  two generators of one shared stack resumed in
 *                      turn: each resume copies the other's frames off and
 *                      its own back
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <ucontext.h>
#include <weft.h>

#include "bench.h"
#include "peers/fcontext.h"

/* --- weft ---------------------------------------------------------------- */
static void *counter(void *arg) {
  (void)arg;
  for (intptr_t i = 0;; i++)
    if (weft_gen_yield((void *)i, NULL) != 0)
      return NULL;
}

static weft_gen *gen;

static bool bench_weft(uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    weft_gen_next(gen, NULL);
  return true;
}

static weft_gen *copied[2];

static bool bench_copied(uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    weft_gen_next(copied[0], NULL);
  return true;
}

static bool bench_copied_turns(uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    weft_gen_next(copied[i & 1], NULL);
  return true;
}

/* --- ucontext ------------------------------------------------------------ */
static ucontext_t uc_main, uc_side;

static void uc_body(void) {
  for (;;)
    swapcontext(&uc_side, &uc_main);
}

static bool bench_ucontext(uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    swapcontext(&uc_main, &uc_side);
  return true;
}

/* --- Boost.Context fcontext --------------------------------------------- */
static struct fcontext_api fc;
static fcontext_t fc_side;

static void fc_body(transfer_t t) {
  for (;;)
    t = fc.jump(t.fctx, t.data);
}

static bool bench_fcontext(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    transfer_t t = fc.jump(fc_side, NULL);
    fc_side = t.fctx;
  }
  return true;
}

/* fcontext shaped as a generator API: the jumps inside functions that
 * return to their callers. */
static fcontext_t fn_side, fn_caller;

__attribute__((noinline)) static void *fn_yield(void *v) {
  transfer_t t = fc.jump(fn_caller, v);
  fn_caller = t.fctx;
  return t.data;
}

__attribute__((noinline)) static void *fn_resume(void *v) {
  transfer_t t = fc.jump(fn_side, v);
  fn_side = t.fctx;
  return t.data;
}

static void fn_body(transfer_t t) {
  fn_caller = t.fctx;
  for (intptr_t i = 0;; i++)
    fn_yield((void *)i);
}

static bool bench_fcontext_fn(uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    fn_resume(NULL);
  return true;
}

int main(void) {
  enum { STACK = 256 << 10 };
  weft_gen_new(&gen, counter, NULL, NULL);
  const weft_gen_opts copy = {.copied = true};
  weft_gen_new(&copied[0], counter, NULL, &copy);
  weft_gen_new(&copied[1], counter, NULL, &copy);

  char *uc_stack = malloc(STACK);
  getcontext(&uc_side);
  uc_side.uc_stack.ss_sp = uc_stack;
  uc_side.uc_stack.ss_size = STACK;
  makecontext(&uc_side, uc_body, 0);

  const char *fc_skip = fcontext_load(&fc);
  char *fc_stack = malloc(STACK);
  char *fn_stack = malloc(STACK);
  if (!fc_skip) {
    fc_side = fc.make(fc_stack + STACK, STACK, fc_body);
    fn_side = fc.make(fn_stack + STACK, STACK, fn_body);
  }

  struct bench_impl impls[] = {
      {"BenchmarkSwitch/weft", bench_weft, NULL},
      {"BenchmarkSwitch/ucontext", bench_ucontext, NULL},
      {"BenchmarkSwitch/boost-fcontext", bench_fcontext, fc_skip},
      {"BenchmarkSwitch/boost-fcontext-fn", bench_fcontext_fn, fc_skip},
      {"BenchmarkSwitch/mode=copied/weft", bench_copied, NULL},
      {"BenchmarkSwitch/mode=copied-turns/weft", bench_copied_turns, NULL},
  };
  bench_group(impls, sizeof impls / sizeof *impls);
  weft_gen_free(gen);
  weft_gen_free(copied[0]);
  weft_gen_free(copied[1]);
  return 0;
}
