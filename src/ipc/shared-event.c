/*
 * weft_shared_event: an event between processes. See include/weft/shm.h.
 *
 * The shared word holds the flag in its low bit and, above it, a count of
 * the times it was set: a waiter waits while the word is what it saw
 * unset, and returns when the flag is set or the count moved (a set that
 * came and was cleared again while it waited still counts, as in Python).
 * Every change is one atomic operation.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>

#include "../hub/hub-private.h"
#include "../hub/timer.h"
#include "shm-private.h"

struct shared_event {
  uint32_t magic;
  uint32_t reserved;
  weft__shared_word state; /* sets << 1 | flag */
};

_Static_assert(sizeof(struct shared_event) <= sizeof(weft_shared_event),
               "weft_shared_event is too small for its insides");

static struct shared_event *valid(const weft_shared_event *p) {
  return weft__shared_checked(p, SHARED_EVENT_MAGIC);
}

int weft_shared_event_init(weft_shared_event *se) {
  if (!se || (uintptr_t)se % 8)
    return -EINVAL;
  struct shared_event *e = (struct shared_event *)se;
  atomic_init(&e->state.value, 0);
  atomic_init(&e->state.sleepers, 0);
  e->reserved = 0;
  weft__shared_mark(e, SHARED_EVENT_MAGIC);
  return 0;
}

int weft_shared_event_set(weft_shared_event *se) {
  struct shared_event *e = valid(se);
  if (!e)
    return -EINVAL;
  uint32_t v = atomic_load(&e->state.value);
  do
    if (v & 1)
      return 0;
  while (!atomic_compare_exchange_weak(&e->state.value, &v, (v + 2) | 1));
  weft__shared_word_wake(&e->state, INT_MAX);
  return 0;
}

int weft_shared_event_clear(weft_shared_event *se) {
  struct shared_event *e = valid(se);
  if (!e)
    return -EINVAL;
  atomic_fetch_and(&e->state.value, ~1u);
  return 0;
}

bool weft_shared_event_is_set(const weft_shared_event *se) {
  struct shared_event *e = valid(se);
  return e && (atomic_load_explicit(&e->state.value, memory_order_acquire) & 1);
}

int weft_shared_event_wait(weft_shared_event *se, int64_t timeout) {
  struct shared_event *e = valid(se);
  if (!e || weft__timeout_bad(timeout))
    return -EINVAL;
  uint32_t seen = atomic_load_explicit(&e->state.value, memory_order_acquire);
  if (seen & 1)
    return 0;
  if (timeout == 0)
    return -ETIMEDOUT;
  int64_t deadline = weft__deadline_after(timeout);
  for (;;) {
    int rc = weft__shared_word_wait(&e->state, seen, deadline);
    uint32_t now = atomic_load_explicit(&e->state.value, memory_order_acquire);
    if ((now & 1) || now >> 1 != seen >> 1)
      return 0;
    if (rc < 0)
      return rc;
    seen = now;
  }
}
