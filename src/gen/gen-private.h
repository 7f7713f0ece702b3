/*
 * The generator object, shared by the files of the gen layer.
 */
#ifndef WEFT_GEN_PRIVATE_H
#define WEFT_GEN_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <weft/gen.h>

#include "../core/coro.h"
#include "bias.h"

#define GEN_MAGIC 0x67656e21u /* "gen!" */

struct weft_gen {
  weft__coro coro; /* first: the object sits at the top of the stack */
  /* GEN_MAGIC while the handle is valid. Atomic (relaxed) because a call on
   * a handle another thread is freeing reads it to report -EINVAL. */
  _Atomic uint32_t magic;
  _Atomic int state;
  weft__bias bias;   /* who may claim it without a locked instruction */
  bool closing;      /* weft_gen_close is running it; cleared in leave() */
  bool freeing;      /* weft_gen_free is closing it: keep it claimed */
  bool copied;       /* its stack is shared: a weft__gen_copied (copied.h) */
  weft__ctx caller;  /* the resumer's context while the generator runs */
  weft__coro *outer; /* the resumer's running coroutine, given back */
  void **out;        /* where the resumer wants the yielded value */
  void **in;         /* where the pending yield wants the sent value */
  weft_gen_fn fn;
  void *arg;
};

/* What weft__coro.kind says of a generator. */
extern const char weft__gen_kind[];

/* Whether g is a live generator handle. */
bool weft__gen_valid(const weft_gen *g);

/* Whether g, the running generator, is being closed (its pending yield got
 * -ECANCELED from weft_gen_close, not from a throw). */
bool weft__gen_closing(const weft_gen *g);

#endif
