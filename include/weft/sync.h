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
 * end, 0 only tries; any other negative, "a bad timeout" below, is -EINVAL
 * and changes nothing) and, in a task, are cancellable: a cancelled task gets
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
  const void *holder_;         /* private: for the watchdog */
} weft_lock;

#define WEFT_LOCK_INIT                                                         \
  { 0 }

/* weft_lock_init — make *l a free lock named name (may be NULL; kept by
 * pointer, not copied). Returns 0, or -EINVAL (l NULL). */
WEFT_API int weft_lock_init(weft_lock *l, const char *name);

/*
 * weft_lock_acquire — take l, waiting up to timeout ns for it.
 * Returns 0, or -ETIMEDOUT (0 tries once), -ECANCELED (a cancelled task
 * that would have to wait), -EINVAL (l NULL, or a negative timeout other
 * than WEFT_FOREVER: l was not taken). Blocks the calling task, or outside
 * a task the thread.
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
 * cleanup; this is the check for the code that frees its memory. Like every
 * _destroy here it is a snapshot: it cannot see a call about to start, nor
 * a waiter already woken and on its way out (which, though, never touches
 * the primitive after its own call returns). Free a primitive only when the
 * program knows no call on it can come.
 */
WEFT_API int weft_lock_destroy(weft_lock *l);

/*
 * weft_rlock — a re-entrant lock, Python's threading.RLock: its owner (a
 * task, or a thread outside any task) may take it again, and must release
 * it as many times; only the owner may release it.
 */
typedef struct weft_rlock {
  weft_lock lock_;    /* private */
  const void *owner_; /* private */
  uint32_t count_;    /* private */
} weft_rlock;

#define WEFT_RLOCK_INIT                                                        \
  { WEFT_LOCK_INIT, NULL, 0 }

/* weft_rlock_init — make *r a free re-entrant lock named name (may be
 * NULL). Returns 0 or -EINVAL. */
WEFT_API int weft_rlock_init(weft_rlock *r, const char *name);

/* weft_rlock_acquire — take r, or take it once more if the caller owns it.
 * Returns 0, or -ETIMEDOUT, -ECANCELED, -EOVERFLOW (owned 2^32-1 times
 * already), -EINVAL (r NULL, a bad timeout: not even an owner's count goes
 * up). Blocks like weft_lock_acquire. */
WEFT_API int weft_rlock_acquire(weft_rlock *r, int64_t timeout);

/* weft_rlock_release — undo one acquire; the last frees r and wakes a
 * waiter. Returns 0, or -EPERM (the caller does not own r), -EINVAL. */
WEFT_API int weft_rlock_release(weft_rlock *r);

/* weft_rlock_owned — whether the caller owns r. */
WEFT_API bool weft_rlock_owned(const weft_rlock *r);

/* weft_rlock_destroy — 0 if r may be freed, else -EBUSY (owned or waited
 * on); -EINVAL. Changes nothing. */
WEFT_API int weft_rlock_destroy(weft_rlock *r);

/*
 * weft_cond — a condition variable with its lock, Python's
 * threading.Condition: the lock is a re-entrant one of its own, or one
 * shared with other conditions (weft_cond_init).
 *
 *     with cv:                      weft_cond_acquire(&cv, WEFT_FOREVER);
 *         while not ready:          while (!ready)
 *             cv.wait()               weft_cond_wait(&cv, WEFT_FOREVER);
 *                                   weft_cond_release(&cv);
 *     cv.wait_for(pred, t)          weft_cond_wait_for(&cv, pred, arg, t)
 *     cv.notify(n), notify_all()    weft_cond_notify(&cv, n), _notify_all
 */
typedef struct weft_cond {
  weft_rlock own_;             /* private: the lock, unless shared */
  weft_rlock *lock_;           /* private: the shared lock, or NULL */
  uint32_t guard_;             /* private */
  struct weft__waitq waiters_; /* private */
} weft_cond;

#define WEFT_COND_INIT                                                         \
  {                                                                            \
    WEFT_RLOCK_INIT, NULL, 0, { NULL, NULL }                                   \
  }

/* weft_cond_init — make *c a condition on lock (a re-entrant lock that
 * other conditions may share), or on a lock of its own when lock is NULL.
 * Returns 0 or -EINVAL. */
WEFT_API int weft_cond_init(weft_cond *c, weft_rlock *lock);

/* weft_cond_acquire, weft_cond_release — take and free c's lock, as
 * weft_rlock_acquire and weft_rlock_release do (-EINVAL for c NULL or a
 * bad timeout). */
WEFT_API int weft_cond_acquire(weft_cond *c, int64_t timeout);
WEFT_API int weft_cond_release(weft_cond *c);

/*
 * weft_cond_wait — release c's lock (all the caller's acquires of it),
 * wait up to timeout ns for a notify, then take the lock back as it was
 * (whatever happened, even a cancellation: the caller always holds the lock
 * again when this returns). Returns 0 (notified), -ETIMEDOUT, -ECANCELED,
 * -EPERM (the caller does not hold c's lock), -EINVAL (c NULL, or a bad
 * timeout: the lock is not released). Wake-ups may be
 * spurious in effect (another waiter may take what was notified first):
 * wait in a loop over the condition, or use weft_cond_wait_for.
 */
WEFT_API int weft_cond_wait(weft_cond *c, int64_t timeout);

/*
 * weft_cond_wait_for — wait until pred(arg) is true, or the timeout passes
 * (measured once, over all the waits). Returns 0 when pred is true,
 * -ETIMEDOUT with pred still false, or the errors of weft_cond_wait
 * (-EINVAL also for pred NULL; for a bad timeout pred is not called).
 * Called and returns with c's lock held; pred runs with it held.
 */
WEFT_API int weft_cond_wait_for(weft_cond *c, bool (*pred)(void *arg),
                                void *arg, int64_t timeout);

/* weft_cond_notify — wake up to n waiters of c (n >= 0); weft_cond_notify_all
 * — wake all. Return the number woken, or -EPERM (the caller does not hold
 * c's lock, as Python requires), -EINVAL. Never block. */
WEFT_API int weft_cond_notify(weft_cond *c, int n);
WEFT_API int weft_cond_notify_all(weft_cond *c);

/*
 * weft_sem — a counting semaphore, Python's threading.Semaphore, or with a
 * bound its BoundedSemaphore: a release past the bound is an error.
 */
typedef struct weft_sem {
  uint32_t state_;             /* private: the count, and a waiters bit */
  uint32_t guard_;             /* private */
  uint32_t bound_;             /* private: 0 when unbounded */
  struct weft__waitq waiters_; /* private */
} weft_sem;

#define WEFT_SEM_INIT(value)                                                   \
  {                                                                            \
    (uint32_t)(value) << 1, 0, 0, { NULL, NULL }                               \
  }
#define WEFT_SEM_MAX 0x7fffffff

/* weft_sem_init — a semaphore counting value (0 .. WEFT_SEM_MAX); bounded
 * makes value its bound too (BoundedSemaphore). Returns 0 or -EINVAL. */
WEFT_API int weft_sem_init(weft_sem *s, unsigned value, bool bounded);

/* weft_sem_acquire — take one unit, waiting up to timeout ns for one.
 * Returns 0, -ETIMEDOUT, -ECANCELED, -EINVAL (s NULL, or a bad timeout: no
 * unit taken). A free unit is one atomic operation. */
WEFT_API int weft_sem_acquire(weft_sem *s, int64_t timeout);

/* weft_sem_release — give n units back (n >= 1), waking waiters. Returns 0,
 * or -EOVERFLOW (past the bound, or past WEFT_SEM_MAX: nothing released),
 * -EINVAL. Never blocks. */
WEFT_API int weft_sem_release(weft_sem *s, unsigned n);

/* weft_sem_value — the units free now (a snapshot). */
WEFT_API unsigned weft_sem_value(const weft_sem *s);

/* weft_sem_destroy — 0 if s may be freed, -EBUSY if waited on, -EINVAL. */
WEFT_API int weft_sem_destroy(weft_sem *s);

/*
 * weft_event — Python's threading.Event: a flag that tasks and threads
 * wait on until some task or thread sets it.
 */
typedef struct weft_event {
  uint32_t set_;               /* private */
  uint32_t guard_;             /* private */
  struct weft__waitq waiters_; /* private */
} weft_event;

#define WEFT_EVENT_INIT                                                        \
  {                                                                            \
    0, 0, { NULL, NULL }                                                       \
  }

WEFT_API int weft_event_init(weft_event *e); /* cleared; 0 or -EINVAL */

/* weft_event_set — set the flag and wake every waiter. 0 or -EINVAL. */
WEFT_API int weft_event_set(weft_event *e);

/* weft_event_clear — clear the flag. 0 or -EINVAL. */
WEFT_API int weft_event_clear(weft_event *e);

/* weft_event_is_set — the flag now (one atomic load). */
WEFT_API bool weft_event_is_set(const weft_event *e);

/* weft_event_wait — wait up to timeout ns until the flag is set. Returns 0
 * (set, at once if it was), -ETIMEDOUT, -ECANCELED, -EINVAL (e NULL, a bad
 * timeout). */
WEFT_API int weft_event_wait(weft_event *e, int64_t timeout);

/* weft_event_destroy — 0 if e may be freed, -EBUSY if waited on. */
WEFT_API int weft_event_destroy(weft_event *e);

/*
 * weft_barrier — Python's threading.Barrier: parties tasks or threads wait
 * until all of them have arrived, then all go on. A wait that times out or
 * is cancelled breaks the barrier, as an exception does in Python: every
 * waiter, and every later wait until a reset, gets -EPIPE (Python's
 * BrokenBarrierError).
 */
typedef struct weft_barrier {
  uint32_t guard_;             /* private */
  uint32_t parties_;           /* private */
  uint32_t count_;             /* private: arrived in this round */
  uint32_t broken_;            /* private */
  void (*action_)(void *arg);  /* private */
  void *arg_;                  /* private */
  struct weft__waitq waiters_; /* private */
} weft_barrier;

/*
 * weft_barrier_init — a barrier for parties (1 .. 2^31-1); action (may be
 * NULL) runs once per round, by the last to arrive, before the others are
 * released, with the barrier's guard held: it must not call the barrier's
 * functions. Returns 0 or -EINVAL.
 */
WEFT_API int weft_barrier_init(weft_barrier *b, unsigned parties,
                               void (*action)(void *arg), void *arg);

/*
 * weft_barrier_wait — arrive, and wait up to timeout ns for the others.
 * Returns the arrival index, 0 .. parties-1 (different for each party of a
 * round: Python's return value), or -EPIPE (the barrier is or became
 * broken), -ETIMEDOUT and -ECANCELED (this wait ended early, and broke the
 * barrier), -EINVAL (b NULL or not initialized, or a bad timeout: the call
 * does not arrive, so it neither completes a round nor breaks one).
 */
WEFT_API int weft_barrier_wait(weft_barrier *b, int64_t timeout);

/* weft_barrier_reset — back to the start, unbroken; waiters of the round
 * under way get -EPIPE. 0 or -EINVAL. */
WEFT_API int weft_barrier_reset(weft_barrier *b);

/* weft_barrier_abort — break the barrier: every waiter, and every wait
 * until a reset, gets -EPIPE. 0 or -EINVAL. */
WEFT_API int weft_barrier_abort(weft_barrier *b);

/* weft_barrier_waiting — how many wait now; weft_barrier_broken — whether
 * it is broken. */
WEFT_API int weft_barrier_waiting(weft_barrier *b);
WEFT_API bool weft_barrier_broken(weft_barrier *b);

/*
 * weft_waitgroup — Go's sync.WaitGroup: a counter that tasks and threads
 * add to as work starts and take from as it ends, and a wait for it to
 * reach zero.
 */
typedef struct weft_waitgroup {
  int64_t count_;              /* private */
  uint32_t guard_;             /* private */
  struct weft__waitq waiters_; /* private */
} weft_waitgroup;

#define WEFT_WAITGROUP_INIT                                                    \
  {                                                                            \
    0, 0, { NULL, NULL }                                                       \
  }

/* weft_waitgroup_add — add delta (may be negative) to the counter; at zero
 * every waiter is woken. Returns 0, or -EINVAL (the counter would go
 * below zero: nothing changed; wg NULL). weft_waitgroup_done is add(-1). */
WEFT_API int weft_waitgroup_add(weft_waitgroup *wg, int delta);
WEFT_API int weft_waitgroup_done(weft_waitgroup *wg);

/* weft_waitgroup_wait — wait up to timeout ns for the counter to be zero.
 * Returns 0 (at once if it is), -ETIMEDOUT, -ECANCELED, -EINVAL (wg NULL, a
 * bad timeout). */
WEFT_API int weft_waitgroup_wait(weft_waitgroup *wg, int64_t timeout);

/*
 * weft_chan — Go's channel, of pointers: buffered (a ring of capacity
 * slots the program provides) or unbuffered (a send waits for a receiver).
 * Close, and a select over several sends and receives with a timeout.
 *
 *     ch := make(chan T, 8)          void *slots[8];
 *                                    weft_chan ch = WEFT_CHAN_INIT(slots, 8);
 *     ch <- v                        weft_chan_send(&ch, v, WEFT_FOREVER)
 *     v, ok := <-ch                  weft_chan_recv(&ch, &v, WEFT_FOREVER)
 *     close(ch)                      weft_chan_close(&ch)
 *     select { ... }                 weft_select(ops, n, timeout)
 *
 * Values are void pointers (send a pointer to anything larger); nothing is
 * copied or freed by the channel.
 */
typedef struct weft_chan {
  uint32_t guard_;               /* private */
  uint32_t closed_;              /* private */
  uint32_t cap_, len_, head_;    /* private */
  void **slots_;                 /* private: the program's ring of cap_ */
  struct weft__waitq senders_;   /* private */
  struct weft__waitq receivers_; /* private */
} weft_chan;

/* A channel with capacity slots in storage (an array of void *, which must
 * outlive it); WEFT_CHAN_INIT(NULL, 0) is unbuffered. */
#define WEFT_CHAN_INIT(storage, capacity)                                      \
  {                                                                            \
    0, 0, (uint32_t)(capacity), 0, 0, (storage), {NULL, NULL}, { NULL, NULL }  \
  }

/* weft_chan_init — as WEFT_CHAN_INIT. Returns 0, or -EINVAL (c NULL,
 * storage NULL with a capacity, a capacity over 2^31-1). */
WEFT_API int weft_chan_init(weft_chan *c, void **storage, unsigned capacity);

/* weft_chan_send — send value, waiting up to timeout ns for a receiver or
 * a free slot. Returns 0, or -EPIPE (the channel is or became closed: Go
 * panics; nothing was sent), -ETIMEDOUT, -ECANCELED, -EINVAL (c NULL, or a
 * bad timeout: nothing sent). */
WEFT_API int weft_chan_send(weft_chan *c, void *value, int64_t timeout);

/* weft_chan_recv — receive a value into *value (may be NULL), waiting up to
 * timeout ns. Returns 0, or -EPIPE (closed, and nothing left in it: Go's
 * ok == false), -ETIMEDOUT, -ECANCELED, -EINVAL (c NULL, or a bad timeout:
 * nothing received). */
WEFT_API int weft_chan_recv(weft_chan *c, void **value, int64_t timeout);

/* weft_chan_close — close c: waiting receivers and senders get -EPIPE,
 * values in the buffer can still be received. Returns 0, or -EPIPE
 * (closed already), -EINVAL. Never blocks. */
WEFT_API int weft_chan_close(weft_chan *c);

/* weft_chan_len — values buffered now (a snapshot). */
WEFT_API unsigned weft_chan_len(weft_chan *c);

/* One case of a select. */
typedef struct weft_chan_op {
  weft_chan *chan;
  int dir;     /* WEFT_CHAN_SEND or WEFT_CHAN_RECV */
  void *value; /* SEND: what to send; RECV: what was received */
  int rc;      /* out: 0, or -EPIPE (closed) for the case that ran */
} weft_chan_op;

#define WEFT_CHAN_SEND 1
#define WEFT_CHAN_RECV 2

/*
 * weft_select — Go's select: wait up to timeout ns (0: Go's default case)
 * until one of the n cases (1 .. 64) can run, run it, and return its index;
 * its rc says 0, or -EPIPE for a send on, or a receive from, a closed
 * channel (which can always run). When several can run, one is picked at
 * random. Returns -ETIMEDOUT, -ECANCELED, or -EINVAL (n out of range, a
 * NULL channel, an unknown dir, a negative timeout other than WEFT_FOREVER:
 * no case runs) instead of an index.
 */
WEFT_API int weft_select(weft_chan_op *ops, int n, int64_t timeout);

/*
 * The deadlock watchdog. Tasks and threads that wait for each other in a
 * cycle on weft Locks and RLocks (A holds x and waits for y, B holds y and
 * waits for x) wait for ever, and neither pthreads nor Python say so. Once
 * started, a watchdog thread looks every interval for such cycles, across
 * every thread, hub and task of the process, and writes each cycle, once,
 * as lines that name each waiter, the lock it waits for, the call site of
 * its acquire, and the holder:
 *
 *   weft: deadlock (watchdog): 2 tasks or threads wait for each other in a
 *   cycle; none of them can go on
 *     thread 'a' waits for lock 'y' (at take_both+0x3c), held by thread 'b'
 *     thread 'b' waits for lock 'x' (at take_both+0x3c), held by thread 'a'
 *
 * (a call site reads "function+0x3c" where the dynamic symbols name it,
 * else "file+0x1234 (function+0x3c)", the name from the file's symbol
 * table, static functions included, when the file is not stripped).
 * A watchdog started by WEFT_WATCHDOG writes where weft_hub_report_to or
 * weft_hub_on_report (weft/hub.h) say, stderr by default.
 *
 * A cycle is reported once two scans in a row have seen it. The report is
 * all the watchdog does: the waits go on (a Lock, which anyone may
 * release, can still be freed by a task or thread outside the cycle; a
 * wait with a timeout still ends). Waits on other primitives (a condition,
 * a semaphore, a channel, a join) have no holder, and are not in the
 * graph; the hub's own report covers tasks of one hub that all block
 * (weft/hub.h).
 *
 * The environment starts it too: WEFT_WATCHDOG=1 scans every second and
 * writes to stderr; WEFT_WATCHDOG=<ms> (above 1) scans every <ms>
 * milliseconds. From the first start on, every acquire and release of a
 * lock also records its holder (a store; a wait registers itself under a
 * mutex), for the rest of the process, so that a watchdog started again
 * never reads a stale holder. In a child of fork() no watchdog runs until
 * one is started there.
 *
 * Safe from any thread or task; not from a signal handler.
 */

/* weft_watchdog_start — start the watchdog, scanning every interval ns and
 * writing reports to fd (which must stay open while it runs; a write that
 * fails is dropped, and never raises SIGPIPE). Does not
 * block. Returns 0; -EINVAL (interval <= 0, fd < 0); -EALREADY (one runs:
 * nothing changed); -EAGAIN (no thread could be made). */
WEFT_API int weft_watchdog_start(int64_t interval, int fd);

/* weft_watchdog_stop — stop the watchdog, waiting for its thread to end
 * (at most one scan). Returns 0, or -ESRCH when none runs. */
WEFT_API int weft_watchdog_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_H */
