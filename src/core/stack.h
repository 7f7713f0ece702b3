/*
 * Coroutine stacks: carved from large slabs, lazily committed, cached for
 * reuse, trimmed back to the kernel, and guarded against overflow within
 * Linux's memory-map budget. docs/stacks.md explains the choices and the
 * measurements behind them.
 *
 * Each stack has a guard below its lowest usable byte, of one of three kinds:
 *  - a guard region (MADV_GUARD_INSTALL, Linux 6.13+): page-table markers
 *    that fault on access and split no memory mapping, so a million guarded
 *    stacks cost a few hundred map entries;
 *  - an mprotect'ed guard page, where guard regions are missing: it splits
 *    the slab's mapping (two more map entries), so only a budget of stacks
 *    (a quarter of vm.max_map_count) get one;
 *  - a canary word at the lowest usable address for the stacks beyond that
 *    budget, checked each time the coroutine switches out: an overflow is
 *    then caught after the fact, at its next switch.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef WEFT_CORE_STACK_H
#define WEFT_CORE_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum weft__guard_kind {
  WEFT__GUARD_REGION = 1,
  WEFT__GUARD_PAGE = 2,
  WEFT__GUARD_CANARY = 3,
};

#define WEFT__STACK_MIN ((size_t)16 << 10)
#define WEFT__STACK_MAX ((size_t)1 << 30)

typedef struct weft__stack {
  char *lo;     /* lowest usable byte; the guard lies right below */
  size_t size;  /* usable bytes: the stack is [lo, lo + size) */
  uint8_t cls;  /* size class: size == 1 << cls */
  uint8_t kind; /* enum weft__guard_kind */
  /* Its pages had been given back, or never touched, when it was handed
   * out (see weft__stack_put_unused). */
  bool cold;
} weft__stack;

/* Hands out a stack of at least `size` usable bytes (0: the default).
 * Returns 0, -EINVAL (size over WEFT__STACK_MAX) or -ENOMEM. The stack's
 * contents are unspecified. */
int weft__stack_get(weft__stack *st, size_t size);

/* Gives a stack back to the cache. It must not be in use. The cache may
 * write the top WEFT__STACK_NODE_BYTES of it. */
void weft__stack_put(const weft__stack *st);

/* weft__stack_put for a stack nothing wrote to since weft__stack_get
 * handed it out (a reservation that went unused): one handed out cold
 * goes back to the cold list as it is, with no trim and no node written
 * into it. */
void weft__stack_put_unused(const weft__stack *st);
#define WEFT__STACK_NODE_BYTES 16

/* Gives back to the kernel the whole pages of st below sp, the stack
 * pointer of the suspended coroutine that runs on it, less a red zone of
 * WEFT__STACK_RED_ZONE bytes: they hold nothing live, and read as zeros
 * when next touched. Returns the bytes given back (0: none, or sp is not
 * within st). Call only while nothing runs on st. */
size_t weft__stack_trim_below(const weft__stack *st, const void *sp);
#define WEFT__STACK_RED_ZONE 128

/* Gives every page of st back to the kernel (but a canary-guarded
 * stack's lowest, which holds the canary): they read as zeros when next
 * touched. For a stack whose live frames were copied elsewhere. */
void weft__stack_give_back(const weft__stack *st);

/* Commits the pages of st from the one holding `from` to the top, as a
 * write would, ahead of a copy into them: one system call, where the
 * copy would take a page fault per page (which costs more, in a virtual
 * machine above all). Best effort: a kernel without MADV_POPULATE_WRITE
 * (before 5.14) leaves the faults to the copy. */
void weft__stack_commit_from(const weft__stack *st, const void *from);

/* The usable size weft__stack_get(…, 0) gives. */
size_t weft__stack_default_size(void);

/* Whether addr lies in the guard below st, or within the lowest page of a
 * canary-guarded stack (which an overflow tramples first). Async-signal-
 * safe. */
bool weft__stack_overflowed_at(const weft__stack *st, const void *addr);

/* Whether a canary-guarded stack's canary is intact (always true for the
 * other kinds). Cheap: called on every switch out of a coroutine. */
static inline bool weft__stack_canary_ok(const weft__stack *st) {
  extern const uint64_t weft__stack_canary;
  return st->kind != WEFT__GUARD_CANARY ||
         *(const uint64_t *)(const void *)st->lo == weft__stack_canary;
}

/* The guard kind new stacks get first in this process (for tests and
 * docs): WEFT__GUARD_REGION or WEFT__GUARD_PAGE. */
int weft__stack_guard_mode(void);

#endif
