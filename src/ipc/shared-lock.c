/*
 * weft_shared_lock: a lock between processes that survives its holder's
 * death. See include/weft/shm.h and struct weft__plock (shm-private.h).
 *
 * The mutex is glibc's robust process-shared mutex, whose word follows the
 * kernel's robust futex ABI (Documentation/locking/robust-futex-ABI.rst):
 * the holder's thread id, FUTEX_WAITERS when someone may sleep on it, and
 * FUTEX_OWNER_DIED once the kernel found its holder dead. Every holder is
 * on its thread's robust list, so the kernel marks the lock at the
 * holder's death however it dies, and wakes one sleeper.
 *
 weft only ever tries the mutex (pthread_mutex_trylock), and between tries
 * it sets FUTEX_WAITERS (so that the release makes the futex wake, as for
 * glibc's own sleepers) and waits on the word (shared-wait.h): a thread
 * sleeps on it, a task parks. So a thread's deadline is on the monotonic
 * clock, and a task never blocks its thread. A waiter that got the lock
 * sets FUTEX_WAITERS again, as glibc does for a thread that slept: others
 * may still sleep, whose bit the release that woke it cleared. A bit set
 * needlessly costs one futex wake at the next release, never a lost one.
 *
 * The lock belongs to a thread for the kernel and glibc, and to a task or
 * a thread for weft: owner_task tells a task of the holding thread from
 * another task of it (which must wait) and from the thread itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "../core/cpu.h"
#include "../hub/hub-private.h"
#include "../hub/timer.h"
#include "shm-private.h"

_Static_assert(sizeof(struct weft__plock) <= sizeof(weft_shared_lock),
               "weft_shared_lock is too small for its insides");
_Static_assert(_Alignof(struct weft__plock) <= 8,
               "weft_shared_lock is aligned to 8");

/* How many looks a thread takes at a held lock before it sleeps. */
enum { SPIN_LOOKS = 200, YIELDS = 4, CORRUPT_LOOKS = 1000000 };

static __thread pid_t cached_tid;

/* In the child of a fork, the forking thread has a new id. */
static void forget_tid(void) { cached_tid = 0; }

static void install_forget_tid(void) { pthread_atfork(NULL, NULL, forget_tid); }

pid_t weft__tid(void) {
  if (!cached_tid) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_forget_tid);
    cached_tid = gettid();
  }
  return cached_tid;
}

static _Atomic uint32_t *word_of(struct weft__plock *l) {
  return (_Atomic uint32_t *)&l->mutex.__data.__lock;
}

static uintptr_t self_task(void) { return (uintptr_t)weft__task_running(); }

static bool held_by_caller(struct weft__plock *l) {
  uint32_t v = atomic_load(word_of(l));
  return (pid_t)(v & FUTEX_TID_MASK) == weft__tid() &&
         atomic_load_explicit(&l->owner_task, memory_order_relaxed) ==
             self_task();
}

/* A robust process-shared mutex, made in m. */
static int make_mutex(pthread_mutex_t *m) {
  pthread_mutexattr_t a;
  int r = pthread_mutexattr_init(&a);
  if (r == 0)
    r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (r == 0)
    r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (r == 0)
    r = pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return -r;
}

/* The kind glibc gives such a mutex, for weft__plock_sound; -1 if none
 * can be made here. */
static int robust_kind = -1;

static void find_robust_kind(void) {
  pthread_mutex_t m;
  if (make_mutex(&m) == 0)
    robust_kind = m.__data.__kind;
}

int weft__plock_init(struct weft__plock *l) {
  /* Made aside and copied in, so that a failure leaves l as it was: a
   * process-shared mutex is plain memory, and none may use l meanwhile. */
  struct weft__plock made;
  memset(&made, 0, sizeof made);
  int rc = make_mutex(&made.mutex);
  if (rc < 0)
    return rc == -EINVAL ? -ENOTSUP : rc;
  memcpy(l, &made, sizeof made);
  weft__shared_mark(l, SHARED_LOCK_MAGIC);
  return 0;
}

bool weft__plock_sound(const struct weft__plock *l) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, find_robust_kind);
  return weft__shared_checked(l, SHARED_LOCK_MAGIC) &&
         l->mutex.__data.__kind == robust_kind;
}

/* The outcome of a pthread call that may have taken the lock. */
static int taken(struct weft__plock *l, int r) {
  if (r == 0) {
    atomic_store_explicit(&l->owner_task, self_task(), memory_order_relaxed);
    return 0;
  }
  if (r == EOWNERDEAD) {
    pthread_mutex_consistent(&l->mutex);
    atomic_store_explicit(&l->owner_task, self_task(), memory_order_relaxed);
    return -EOWNERDEAD;
  }
  return -r;
}

/* Waits for the lock, trying it between waits: sets FUTEX_WAITERS so that
 * the release wakes the word, as glibc's own waiters do, and sleeps on the
 * word (a thread) or parks on it (a task). */
static int wait_acquire(struct weft__plock *l, int64_t deadline) {
  _Atomic uint32_t *word = word_of(l);
  bool waited = false;
  for (int empty_looks = 0;;) {
    int r = pthread_mutex_trylock(&l->mutex);
    if (r != EBUSY) {
      if (waited && (r == 0 || r == EOWNERDEAD))
        atomic_fetch_or(word, FUTEX_WAITERS);
      return taken(l, r);
    }
    uint32_t v = atomic_load(word);
    if ((v & FUTEX_TID_MASK) == 0) {
      /* Released, or its holder found dead, since the try: try again.
       * A word that stays held by nobody, and that the try still finds
       * busy, is not a lock's (memory overwritten). */
      if (++empty_looks == CORRUPT_LOOKS)
        return -EUCLEAN;
      continue;
    }
    if (!(v & FUTEX_WAITERS) &&
        !atomic_compare_exchange_strong(word, &v, v | FUTEX_WAITERS))
      continue;
    waited = true;
    int rc = weft__shared_futex_wait(word, v | FUTEX_WAITERS, deadline);
    if (rc < 0)
      return rc;
  }
}

/* A thread's try before it waits: a few looks, then a few yields of its
 * CPU (processes sharing a lock often outnumber the CPUs, and the holder
 * may be waiting for this one). Returns pthread's answer, EBUSY if still
 * held. */
static int thread_try_awhile(struct weft__plock *l) {
  int r = EBUSY;
  for (int i = 0; i < SPIN_LOOKS + YIELDS && r == EBUSY; i++) {
    if (i < SPIN_LOOKS) {
      if (!weft__cpu_spinning_pays()) {
        i = SPIN_LOOKS - 1;
        continue;
      }
      weft__cpu_relax();
    } else {
      sched_yield();
    }
    if ((atomic_load_explicit(word_of(l), memory_order_relaxed) &
         FUTEX_TID_MASK) == 0)
      r = pthread_mutex_trylock(&l->mutex);
  }
  return r;
}

int weft__plock_acquire(struct weft__plock *l, int64_t deadline) {
  if (held_by_caller(l))
    return -EDEADLK;
  int r = pthread_mutex_trylock(&l->mutex);
  if (r == EBUSY && !weft__task_running())
    r = thread_try_awhile(l);
  return r != EBUSY ? taken(l, r) : wait_acquire(l, deadline);
}

int weft__plock_release(struct weft__plock *l) {
  if (!held_by_caller(l))
    return -EPERM;
  atomic_store_explicit(&l->owner_task, 0, memory_order_relaxed);
  return -pthread_mutex_unlock(&l->mutex);
}

static struct weft__plock *valid(const weft_shared_lock *p) {
  return weft__shared_checked(p, SHARED_LOCK_MAGIC);
}

int weft_shared_lock_init(weft_shared_lock *sl) {
  if (!sl || (uintptr_t)sl % 8)
    return -EINVAL;
  return weft__plock_init((struct weft__plock *)sl);
}

int weft_shared_lock_acquire(weft_shared_lock *sl, int64_t timeout) {
  struct weft__plock *l = valid(sl);
  if (!l || weft__timeout_bad(timeout))
    return -EINVAL;
  if (timeout == 0) {
    if (held_by_caller(l))
      return -EDEADLK;
    int r = pthread_mutex_trylock(&l->mutex);
    return r == EBUSY ? -ETIMEDOUT : taken(l, r);
  }
  return weft__plock_acquire(l, weft__deadline_after(timeout));
}

int weft_shared_lock_release(weft_shared_lock *sl) {
  struct weft__plock *l = valid(sl);
  return l ? weft__plock_release(l) : -EINVAL;
}

bool weft_shared_lock_locked(const weft_shared_lock *sl) {
  struct weft__plock *l = valid(sl);
  return l && (atomic_load(word_of(l)) & FUTEX_TID_MASK) != 0;
}
