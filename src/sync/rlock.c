/*
 * weft_rlock: a weft_lock with an owner and a count. See
 * include/weft/sync.h.
 *
 * owner_ is written only by the owner (when it takes and frees the lock)
 * and compared by anyone with itself: a caller that is not the owner can
 * never read its own token there, stale or not, so relaxed accesses do.
 * count_ is the owner's alone.
 */
#include <errno.h>
#include <weft/sync.h>

#include "sync-private.h"

static const void *owner(const weft_rlock *r) {
  return __atomic_load_n(&r->owner_, __ATOMIC_RELAXED);
}

const void *weft__rlock_owner(const void *rlock) { return owner(rlock); }

int weft_rlock_init(weft_rlock *r, const char *name) {
  if (!r)
    return -EINVAL;
  *r = (weft_rlock)WEFT_RLOCK_INIT;
  r->lock_.name = name;
  return 0;
}

int weft_rlock_acquire(weft_rlock *r, int64_t timeout) {
  /* Before the owner's count goes up, too. */
  if (!r || weft__timeout_bad(timeout))
    return -EINVAL;
  const void *me = weft__sync_self();
  if (owner(r) == me) {
    if (r->count_ == UINT32_MAX)
      return -EOVERFLOW;
    r->count_++;
    return 0;
  }
  int rc = weft__lock_acquire_at(&r->lock_, timeout, true, r,
                                 __builtin_return_address(0));
  if (rc < 0)
    return rc;
  __atomic_store_n(&r->owner_, me, __ATOMIC_RELAXED);
  r->count_ = 1;
  return 0;
}

int weft_rlock_release(weft_rlock *r) {
  if (!r)
    return -EINVAL;
  if (owner(r) != weft__sync_self())
    return -EPERM;
  if (--r->count_ == 0) {
    __atomic_store_n(&r->owner_, NULL, __ATOMIC_RELAXED);
    weft_lock_release(&r->lock_);
  }
  return 0;
}

bool weft_rlock_owned(const weft_rlock *r) {
  return r && owner(r) == weft__sync_self();
}

int weft_rlock_destroy(weft_rlock *r) {
  return r ? weft_lock_destroy(&r->lock_) : -EINVAL;
}
