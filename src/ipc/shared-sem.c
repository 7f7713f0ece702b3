/*
 * weft_shared_sem: a counting semaphore between processes. See
 * include/weft/shm.h.
 *
 * The count is the shared word itself: a taker waits while it is 0, a
 * giver adds one and wakes one sleeper. Both change it in one atomic
 * operation, so no death can leave it half-changed.
 */
#include <errno.h>
#include <stdatomic.h>

#include "../hub/hub-private.h"
#include "../hub/timer.h"
#include "shm-private.h"

struct shared_sem {
  uint32_t magic;
  uint32_t reserved;
  weft__shared_word count;
};

_Static_assert(sizeof(struct shared_sem) <= sizeof(weft_shared_sem),
               "weft_shared_sem is too small for its insides");

static struct shared_sem *valid(const weft_shared_sem *p) {
  return weft__shared_checked(p, SHARED_SEM_MAGIC);
}

int weft_shared_sem_init(weft_shared_sem *ss, unsigned value) {
  if (!ss || (uintptr_t)ss % 8 || value > WEFT_SHARED_SEM_MAX)
    return -EINVAL;
  struct shared_sem *s = (struct shared_sem *)ss;
  atomic_init(&s->count.value, value);
  atomic_init(&s->count.sleepers, 0);
  s->reserved = 0;
  weft__shared_mark(s, SHARED_SEM_MAGIC);
  return 0;
}

static bool try_take(struct shared_sem *s) {
  uint32_t v = atomic_load_explicit(&s->count.value, memory_order_relaxed);
  while (v > 0)
    if (atomic_compare_exchange_weak_explicit(&s->count.value, &v, v - 1,
                                              memory_order_acquire,
                                              memory_order_relaxed))
      return true;
  return false;
}

int weft_shared_sem_acquire(weft_shared_sem *ss, int64_t timeout) {
  struct shared_sem *s = valid(ss);
  if (!s || weft__timeout_bad(timeout))
    return -EINVAL;
  if (try_take(s))
    return 0;
  if (timeout == 0)
    return -ETIMEDOUT;
  int64_t deadline = weft__deadline_after(timeout);
  for (;;) {
    int rc = weft__shared_word_wait(&s->count, 0, deadline);
    if (try_take(s))
      return 0; /* a unit came with the failure: it wins */
    if (rc < 0)
      return rc;
  }
}

int weft_shared_sem_release(weft_shared_sem *ss) {
  struct shared_sem *s = valid(ss);
  if (!s)
    return -EINVAL;
  uint32_t v = atomic_load_explicit(&s->count.value, memory_order_relaxed);
  do
    if (v >= WEFT_SHARED_SEM_MAX)
      return -EOVERFLOW;
  while (!atomic_compare_exchange_weak(&s->count.value, &v, v + 1));
  weft__shared_word_wake(&s->count, 1);
  return 0;
}

int weft_shared_sem_value(const weft_shared_sem *ss) {
  struct shared_sem *s = valid(ss);
  return s ? (int)atomic_load(&s->count.value) : -EINVAL;
}
