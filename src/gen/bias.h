/*
 * Biased ownership of a generator: the thread that resumed it last claims
 * it again without a locked instruction.
 *
 * A claim must fail with -EBUSY when another thread's claim races it, so
 * every claim used to be a compare-and-swap of the generator's state: a
 * locked instruction, some 5 ns of a 12 ns resume and yield. But a
 * generator is nearly always resumed by the thread that resumed it last.
 * So the generator is biased to that thread (`owner`), whose claim is a
 * plain store of the state, fenced against the others by an asymmetric
 * Dekker handshake:
 *
 *   owner (fast)                          any other thread (revoke)
 *   busy = epoch (not 0)                  owner = REVOKING tag (CAS)
 *   compiler fence                        membarrier(PRIVATE_EXPEDITED)
 *   if owner == me:                       wait while busy
 *     state = RUNNING, busy = 0           owner = NULL
 *   else busy = 0, go slow                claim by CAS of the state
 *
 * membarrier makes every running thread of the process execute a full
 * memory barrier between the revoker's two steps. So either the owner's
 * check came before that barrier, and its busy is seen by the revoker,
 * which waits the few instructions to its end, after which the owner's
 * RUNNING (if it claimed) is seen and the revoker's compare-and-swap fails
 * as the loser of a race does; or the check came after, and sees REVOKING,
 * and the owner takes the slow path without having touched the state. A
 * thread that finds REVOKING waits the few instructions and the system
 * call the revoker needs, so that two claims never both fail.
 *
 * After a claim by compare-and-swap of a generator already started, the
 * claimer takes the bias if nobody has it, unless the generator was
 * revoked REBIAS_MAX times already: one resumed by several threads in turn
 * stays unbiased, and pays the locked instruction rather than a membarrier
 * (some microseconds) a resume. The first claim does not bias: a generator
 * run once, to its end, would pay for a bias it never uses.
 *
 * Without membarrier's private expedited command (kernels before 4.14,
 * emulators, Valgrind), no generator is ever biased.
 */
#ifndef WEFT_GEN_BIAS_H
#define WEFT_GEN_BIAS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/coro.h"

typedef struct weft__bias {
  /* The thread biased to (its token, weft__bias_me), NULL, or while a
   * revoke is under way its tag (weft__bias_revoking). */
  _Atomic(const void *) owner;
  /* The owner is inside a fast claim: the process's fork epoch then, or 0. */
  _Atomic uint32_t busy;
  /* Revokes so far (at most REBIAS_MAX); changed while revoking. */
  _Atomic uint8_t revokes;
} weft__bias;

/* Fork: a child goes on with the forking thread alone, so a fast claim or
 * a revoke that another thread had under way stays so in the child for
 * good. Each marks itself with the process's epoch, which a fork child
 * bumps (bias.c): a mark of an older epoch is nobody's, and is ignored. */
extern _Atomic uint32_t weft__bias_epoch;

/* A revoke's tag in owner: odd, so never a token (those are aligned). */
static inline const void *weft__bias_revoking(uint32_t epoch) {
  return (const void *)(2 * (uintptr_t)epoch + 1);
}

extern WEFT__TLS _Alignas(8) char weft__bias_token;

/* The calling thread's token: an address no other live thread has. */
static inline const void *weft__bias_me(void) { return &weft__bias_token; }

/* The thread b is biased to, at a first look (weft__bias_enter decides
 * for the owner; weft__bias_revoke looks again for the others). */
static inline const void *weft__bias_owner(const weft__bias *b) {
  return atomic_load_explicit(&((weft__bias *)b)->owner, memory_order_relaxed);
}

/* The owner's fast claim: true if b is still biased to me, and then the
 * caller stores its claim and calls weft__bias_entered; false if a revoke
 * came (take the slow path). */
static inline bool weft__bias_enter(weft__bias *b, const void *me) {
  atomic_store_explicit(
      &b->busy, atomic_load_explicit(&weft__bias_epoch, memory_order_relaxed),
      memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
  if (__builtin_expect(
          atomic_load_explicit(&b->owner, memory_order_relaxed) == me, 1))
    return true;
  atomic_store_explicit(&b->busy, 0, memory_order_relaxed);
  return false;
}

/* Ends a fast claim, once the claim (the state RUNNING) is stored: the
 * release orders that store before, for a revoker that sees busy clear. */
static inline void weft__bias_entered(weft__bias *b) {
  atomic_store_explicit(&b->busy, 0, memory_order_release);
}

void weft__bias_revoke_slow(weft__bias *b, const void *me);

/* Before a claim by compare-and-swap: ends another thread's bias on b, if
 * one has it, once its owner is out of any fast claim (whose store of the
 * claim the compare-and-swap then sees). */
static inline void weft__bias_revoke(weft__bias *b, const void *me) {
  const void *o = atomic_load_explicit(&b->owner, memory_order_acquire);
  if (__builtin_expect(o != NULL && o != me, 0))
    weft__bias_revoke_slow(b, me);
}

/* After a claim by compare-and-swap: biases b to me, if nobody has it and
 * the generator may still be biased; returns whether it did (the caller
 * then marks its claim biased). */
bool weft__bias_take(weft__bias *b, const void *me);

#endif
