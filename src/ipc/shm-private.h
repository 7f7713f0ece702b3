/*
 * What the shared primitives and the queue share: the lock's insides
 * (the queue embeds one), the magic numbers that tell an initialized
 * primitive from stray memory, and the caller's thread id.
 */
#ifndef WEFT_PROC_SHM_PRIVATE_H
#define WEFT_PROC_SHM_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <weft/shm.h>

#include "shared-wait.h"

/* A region: its mapping in this process. */
struct weft_shm {
  uint32_t magic;
  int fd;
  void *addr;
  size_t size;
};

enum {
  SHARED_LOCK_MAGIC = 0x4c6b6677,  /* "wfkL" */
  SHARED_SEM_MAGIC = 0x536b6677,   /* "wfkS" */
  SHARED_EVENT_MAGIC = 0x456b6677, /* "wfkE" */
};

/* Each primitive starts with its magic word, stored last by its init
 * (release) and looked at first by every call (acquire), so that a call
 * sees an initialized primitive whole, or none. */
static inline void weft__shared_mark(void *p, uint32_t magic) {
  atomic_store_explicit((_Atomic uint32_t *)p, magic, memory_order_release);
}

/* p, if it starts with magic; else NULL (NULL, never initialized, or
 * overwritten). */
static inline void *weft__shared_checked(const void *p, uint32_t magic) {
  return p && atomic_load_explicit((_Atomic uint32_t *)p,
                                   memory_order_acquire) == magic
             ? (void *)p
             : NULL;
}

/*
 * A shared lock: a process-shared robust pthread mutex, which gives the
 * kernel's guarantee (a holder's death marks the mutex abandoned and wakes
 * a waiter), and the task that holds it, which only the holder's process
 * can read meaningfully. Threads wait in the mutex itself; a task sets
 * the mutex word's waiters bit and parks, through shared-wait.h, on the
 * word (the kernel's robust futex layout: the holder's thread id, a
 * waiters bit, an owner-died bit; linux/futex.h).
 */
struct weft__plock {
  uint32_t magic;
  uint32_t reserved;
  _Atomic uintptr_t owner_task; /* the holding task, 0 for a thread */
  pthread_mutex_t mutex;
};

/* weft_shared_lock_init, for the queue's locks: 0, or -ENOTSUP where
 * glibc cannot make a robust process-shared mutex. */
int weft__plock_init(struct weft__plock *l);

/* Whether l looks like a lock weft__plock_init made: its magic, and a
 * robust process-shared mutex (a corrupted kind would make glibc treat it
 * as another kind of mutex). */
bool weft__plock_sound(const struct weft__plock *l);

/* Acquires l until the absolute deadline: 0, -EOWNERDEAD (acquired from a
 * dead holder), -ETIMEDOUT, -ECANCELED, -EDEADLK. l is valid. */
int weft__plock_acquire(struct weft__plock *l, int64_t deadline);

/* Releases l, held by the caller (checked: -EPERM). */
int weft__plock_release(struct weft__plock *l);

/* The calling thread's id, cached. */
pid_t weft__tid(void);

#endif
