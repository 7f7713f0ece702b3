/*
 * weft_gen_yield_from: Python's `yield from`, built on the public generator
 * calls. It lives apart from gen.c so that those calls, which switch, are
 * never inlined into its loop: each must read its thread-locals afresh, as
 * the delegating generator may come back on another thread (see gen.c).
 */
#include <errno.h>
#include <weft/gen.h>

#include "gen-private.h"

int weft_gen_yield_from(weft_gen *sub, void **result) {
  weft_gen *self = weft_gen_current();
  if (!self)
    return -EPERM;
  if (!weft__gen_valid(sub) || sub == self)
    return -EINVAL;
  void *in = NULL, *v;
  int thrown = 0;
  for (;;) {
    int rc =
        thrown ? weft_gen_throw(sub, thrown, &v) : weft_gen_resume(sub, in, &v);
    if (rc == WEFT_GEN_RETURNED) {
      if (result)
        *result = v;
      return 0;
    }
    if (rc < 0)
      return rc;
    rc = weft_gen_yield(v, &in);
    if (rc == -ECANCELED && weft__gen_closing(self)) {
      weft_gen_close(sub);
      return -ECANCELED;
    }
    thrown = rc < 0 ? rc : 0;
  }
}
