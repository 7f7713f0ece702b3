/*
 * Telling Valgrind about coroutine stacks, so that it does not take a
 * switch for a wild stack-pointer jump. Built from valgrind.c where
 * Valgrind's header is installed, from valgrind-none.c otherwise.
 */
#ifndef WEFT_CORE_VALGRIND_H
#define WEFT_CORE_VALGRIND_H

#include <stddef.h>

/* Registers [lo, hi) as a stack. Stacks are never unmapped, so they are
 * never deregistered. Costs a few instructions when not under Valgrind. */
void weft__valgrind_stack_register(void *lo, void *hi);

/* Tells Valgrind that [lo, hi), a stack handed to a new coroutine, holds
 * nothing of the coroutine that last ran on it: whatever Valgrind had
 * marked there (the frames below that one's stack pointer, which it takes
 * for inaccessible) is writable, undefined memory again. */
void weft__valgrind_stack_fresh(void *lo, void *hi);

/* Tells Valgrind that [lo, lo + n) may be read as defined: for frames
 * weft packs by their values (a hibernated task's: hub/idle.c), where
 * padding and unset locals would otherwise make every test of a word a
 * use of an undefined value. */
void weft__valgrind_make_defined(const void *lo, size_t n);

#endif
