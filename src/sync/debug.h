/*
 * The sync layer's debugging modes, and the one word that says which are
 * on, so that the lock's fast paths pay one load and a branch for all of
 * them together while they are off:
 *  - lock-order checking (lockcheck.h), on when the environment says
 *    WEFT_LOCKCHECK=1;
 *  - the deadlock watchdog (watchdog.h), on from the first
 *    weft_watchdog_start, or when the environment says WEFT_WATCHDOG.
 * The environment is read once, by the first lock operation that looks.
 * A mode, once on, stays on: locks that stopped recording their holders
 * would leave stale ones behind for a watchdog started again.
 */
#ifndef WEFT_SYNC_DEBUG_H
#define WEFT_SYNC_DEBUG_H

#include <stddef.h>
#include <stdint.h>

enum {
  WEFT__DEBUG_LOCKCHECK = 1, /* record lock orders (lockcheck.h) */
  WEFT__DEBUG_HOLDERS = 2,   /* locks record their holders (watchdog.h) */
};

extern int weft__sync_debug; /* -1: the environment not read yet */

/* Reads the environment (once; starting the watchdog if it asks), and
 * returns the modes on. */
int weft__sync_debug_read_env(void);

/* Turns the modes in bits on, for good. */
void weft__sync_debug_enable(int bits);

/* Writes call site (a return address) into buf as "function+0x12" where
 * the dynamic symbols name it, else "file+0x1234" (for addr2line -e file)
 * followed by " (function+0x12)" when the file's symbol table names it (a
 * static function; any function of a program not linked with -rdynamic),
 * else the bare address. Reads the file (open, mmap): not from a signal
 * handler, but no malloc. */
void weft__site_name(const void *site, char *buf, size_t cap);

/* A slot for the pointer p in an open-addressing table of cap slots (a
 * power of two): the debugging modes' tables of locks, owners and waits. */
static inline size_t weft__hash_ptr(const void *p, size_t cap) {
  uintptr_t x = (uintptr_t)p;
  x ^= x >> 17;
  x *= 0xed5ad4bbu;
  x ^= x >> 11;
  return (size_t)x & (cap - 1);
}

/* The modes on (WEFT__DEBUG_*), 0 when none is: the common case. */
static inline int weft__sync_debug_modes(void) {
  int s = __atomic_load_n(&weft__sync_debug, __ATOMIC_RELAXED);
  if (__builtin_expect(s == 0, 1))
    return 0;
  return s > 0 ? s : weft__sync_debug_read_env();
}

#endif
