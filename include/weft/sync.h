/*
 * weft/sync.h — primitives that work alike between tasks, threads, and the
 * two: a task that blocks in one parks only itself (its hub runs the other
 * tasks), a plain thread sleeps in the kernel, and either may wake the
 * other, on any hub.
 *
 *     Python (threading)              weft
 *     lock = Lock()                   weft_lock l = WEFT_LOCK_INIT;
 *     lock.acquire(timeout=t)         weft_lock_acquire(&l, t)
 *     lock.acquire(blocking=False)    weft_lock_acquire(&l, 0)
 *     lock.release()                  weft_lock_release(&l)
 *     lock.locked()                   weft_lock_locked(&l)
 *
 * Every primitive is a plain struct the program embeds where it likes, with
 * a static initializer (all zeros) and an _init function; its fields are
 * private. Nothing allocates, and taking a free lock or releasing one that
 * nobody waits for is one atomic operation, no system call.
 *
 * Blocking calls take a timeout in nanoseconds (WEFT_FOREVER waits without
 * end, 0 only tries) and, in a task, are cancellable: a cancelled task gets
 * -ECANCELED where it would have to wait, but still takes a free lock, so
 * that its cleanup can.
 *
 * Calls are safe from any thread and any task, not from signal handlers.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stdbool.h>
#include <stdint.h>
#include <weft/core.h>
#include <weft/hub.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * weft_lock — a mutual-exclusion lock, Python's threading.Lock: not
 * re-entrant (a holder that acquires again waits for itself), and any task
 * or thread may release it, not only the one that took it. No fairness is
 * promised: a releaser wakes the longest waiter, but a newcomer may take
 * the lock first, as with pthread_mutex (a woken waiter that loses goes
 * back to the front of the queue).
 */
typedef struct weft_lock {
  uint32_t state_;             /* private */
  uint32_t guard_;             /* private */
  struct weft__waitq waiters_; /* private */
  const char *name;            /* for reports; NULL: unnamed */
} weft_lock;

#define WEFT_LOCK_INIT                                                         \
  { 0 }

/* weft_lock_init — make *l a free lock named name (may be NULL; kept by
 * pointer, not copied). Returns 0, or -EINVAL (l NULL). */
WEFT_API int weft_lock_init(weft_lock *l, const char *name);

/*
 * weft_lock_acquire — take l, waiting up to timeout ns for it.
 * Returns 0, or -ETIMEDOUT (0 tries once), -ECANCELED (a cancelled task
 * that would have to wait), -EINVAL (l NULL). Blocks the calling task, or
 * outside a task the thread.
 */
WEFT_API int weft_lock_acquire(weft_lock *l, int64_t timeout);

/*
 * weft_lock_release — free l, and wake one waiter. Returns 0, or -EPERM (l
 * is not locked: Python's "release unlocked lock"), -EINVAL (l NULL).
 * Never blocks.
 */
WEFT_API int weft_lock_release(weft_lock *l);

/* weft_lock_locked — whether l is held right now (a snapshot). */
WEFT_API bool weft_lock_locked(const weft_lock *l);

/*
 * weft_lock_destroy — check that l may be freed: returns 0, or -EBUSY (l is
 * held, or waited on), -EINVAL (l NULL). It changes nothing: a lock needs no
 * cleanup; this is the check for the code that frees its memory.
 */
WEFT_API int weft_lock_destroy(weft_lock *l);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_H */
