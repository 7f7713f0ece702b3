/*
 * What the primitives of the sync layer share: who the caller is, the
 * lock's internal acquire, and the wait on a queue that every primitive
 * makes the same way (the protocol of src/hub/waiter.h).
 */
#ifndef WEFT_SYNC_PRIVATE_H
#define WEFT_SYNC_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <weft/sync.h>

#include "../core/guard.h"
#include "../hub/hub-private.h"
#include "../hub/waiter.h"

extern __thread char weft__thread_token;

/* The caller, as an owner of a re-entrant lock: the running task, or
 * outside any task the thread (the address of a thread-local, unique among
 * live threads). */
static inline const void *weft__sync_self(void) {
  weft_task *t = weft__task_running();
  return t ? (const void *)t : (const void *)&weft__thread_token;
}

/* weft_lock_acquire for the other primitives: with cancellation ignored
 * when cancellable is false (a condition takes its lock back that way,
 * whatever happened to its waiter; nor does the caller's deadline,
 * weft_deadline_set, end such a wait), and the call site to report (the
 * caller of the public function) for lock-order checking. With as not
 * NULL, l is the lock inside that RLock: its waiters then name the RLock's
 * owner, so that a hub can report a cycle of them as a deadlock. */
int weft__lock_acquire_at(weft_lock *l, int64_t timeout, bool cancellable,
                          const weft_rlock *as, const void *site);

/* The owner of an RLock (a weft_task, or a thread's token), or NULL: the
 * holder a waiter for it names (waiter.h). */
const void *weft__rlock_owner(const void *rlock);

/*
 * Queues w (made by weft__waiter_init) at the back of q, releases the
 * guard g (which the caller holds), and waits until the deadline. Returns
 * the waker's code (never negative), or the wait's error (-ETIMEDOUT,
 * -ECANCELED, -ENOMEM) once w is out of the queue again; a wake that came
 * as the wait failed stands (its code is returned). Returns with g
 * released.
 */
int weft__sync_wait(uint32_t *g, struct weft__waitq *q, weft__waiter *w,
                    int64_t deadline);

#endif
