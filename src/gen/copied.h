/*
 * Copied-stack generators (weft_gen_opts.copied): generators that run on a
 * stack they share with others and keep, while another runs there, only
 * their live frames, copied out — greenlet's and libaco's way, for programs
 * that hold millions of generators.
 *
 * A share is such a stack. Each thread has its shares (usually one); a
 * generator is bound, at its first run, to a share of the thread that runs
 * it first, and from then on always runs on it, on whatever thread resumes
 * it: its frames hold pointers into themselves, so they go back to the
 * address they were copied from.
 *
 * Who may use a share. A chain is what runs on one thread's behalf: a
 * thread's own stack or a task, and the generators it resumed, each resumed
 * by the one before (weft_gen.outer links them back). A chain holds a share
 * while any of its members is on it (running, or suspended in a resume of
 * another generator); other chains' generators bound to it cannot run then,
 * and their resume gets -EBUSY. The share is let go by the resumer, after
 * its resume's switch has come back: the generator that left is saved by
 * then, so the next holder may copy its frames off.
 *
 * Who is on a share. Its occupant is the generator whose frames it holds:
 * the one running there, or the last one that did (frames are copied off
 * lazily, when another needs the share). Entering a generator puts it on
 * its share: the occupant's frames are copied off, its own copied back (or
 * its first context made). Within one chain, a member suspended on a share
 * may be evicted to run another generator bound to the same share:
 *  - from a context that is itself on that share (one generator resumes
 *    another of the same share), the copying cannot run on the share: a
 *    small per-thread coroutine, the swapper, does it between the two, both
 *    ways;
 *  - from elsewhere (through a generator with a stack of its own), the
 *    resume puts the evicted member back as soon as the generator it
 *    entered has left, before the chain can go back to that member.
 * So whenever a chain switches to one of its members, that member's frames
 * are in place.
 *
 * Memory: a suspended generator's frames are kept in a buffer of their
 * size, made when they are first copied off and kept for the next time;
 * a save that must not fail (by the swapper, or on the way back from an
 * eviction) uses a buffer reserved before the switch, or the yield that
 * would need it returns -ENOMEM.
 *
 * Thread safety: a share's holder is an atomic, taken by compare-and-swap;
 * its depth and occupant are the holder's to read and write. Its reference
 * count (its thread while that lives, each generator bound to it, and the
 * chain holding it) is atomic; the last reference frees it.
 */
#ifndef WEFT_GEN_COPIED_H
#define WEFT_GEN_COPIED_H

#include <stddef.h>
#include <stdint.h>

#include "gen-private.h"

typedef struct weft__share weft__share;

typedef struct weft__gen_copied {
  weft_gen g;          /* first: a weft_gen * is a weft__gen_copied * */
  weft__share *share;  /* bound at its first run; NULL before */
  char *frames;        /* its frames while they are off its share */
  uint32_t frames_len; /* their bytes, from its stack pointer to the top */
  uint32_t frames_cap;
  uint32_t stack_size; /* the stack it asked for, in KiB; 0: the default */
  void *outgoing;      /* what it hands its resumer as it leaves */
  bool started;        /* its first context was made */
  /* The member of its resumer's chain that its entry copied off its
   * share: put back as it leaves. */
  struct weft__gen_copied *evicted;
} weft__gen_copied;

/* A zeroed copied generator that asks for stack_size bytes (0: the
 * default), or NULL without memory. gen.c fills the weft_gen. */
weft_gen *weft__copied_alloc(size_t stack_size);

/* Lets the claimed generator g run for the calling chain: binds it to a
 * share at its first run, and holds its share. Returns 0, -EBUSY (another
 * chain holds its share) or -ENOMEM; on error nothing changed but the
 * claim, which the caller gives back. */
int weft__copied_hold(weft_gen *g);

/* Readies g, held, to be entered: puts it on its share and delivers `in`
 * to its pending yield if `send` (a resume); or has the swapper do both
 * when the resumer runs on that share. Returns the context to switch to
 * from g->caller (g's, or the swapper's), or NULL for -ENOMEM (the
 * generator on the share had frames and no memory to keep them; the
 * swapper could not be made): nothing changed but the hold, which is let
 * go, and the caller gives the claim back. The share is let go as g
 * leaves (weft__copied_leaving). The sent value is delivered, and the
 * yielded one handed to out, only once the frames they go to are in
 * place. No code runs after the switch, which is then a tail call. */
weft__ctx *weft__copied_enter(weft_gen *g, void **out, bool send, void *in);

/* Where g, leaving with `state`, switches to: g->caller, having let its
 * share go (the next holder waits until g's switch has saved it); or the
 * swapper's context, when the swapper must first put a generator back on
 * the share (its resumer, or one it evicted), or g is done with the share
 * for good (it returned) and the share may be let go only once g is off
 * it.
 * NULL when g cannot leave (no room for its frames; -ENOMEM): nothing
 * changed. (A pointer, not an out parameter: a local whose address is
 * taken would keep leave()'s switch from being a tail call.) */
weft__ctx *weft__copied_leaving(weft_gen *g, int state);

/* Releases what g holds beyond its object, and its object. */
void weft__copied_free(weft_gen *g);

#endif
