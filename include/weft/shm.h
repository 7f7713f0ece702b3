/*
 * weft/shm.h — memory shared between processes, the process-shared Lock,
 * Semaphore and Event that live in it, and a process-safe Queue.
 *
 *     Python (multiprocessing)            weft
 *     shared_memory.SharedMemory(size=n)  weft_shm_create(&s, n, "name")
 *     Lock(), Semaphore(n), Event()       weft_shared_lock_init(l),
 *                                         weft_shared_sem_init(s, n),
 *                                         weft_shared_event_init(e)
 *                                         (in a region: l = weft_shm_addr(s))
 *     q = Queue(maxsize)                  weft_queue_create(&q,
 * &(weft_queue_opts)
 *                                             {.maxsize = n})
 *     q.put(m, timeout=t)                 weft_queue_put(q, m, len, t)
 *     m = q.get(timeout=t)                n = weft_queue_get(q, buf, size, t)
 *
 * Handles, as every handle of weft (docs/README.md, "Handles"): a region's
 * or a queue's handle is valid until weft_shm_free (weft_queue_free) lets
 * it go, and must not be used after: weft cannot tell (the memory may
 * already hold a new handle, and the call would act on that one), and
 * AddressSanitizer builds report it.
 *
 * A region is a memfd mapped shared: a child made by weft_proc_start (or
 * fork) inherits the mapping at the same address, and another process can
 * map it from its fd (passed over a unix socket, or left open across an
 * exec). Its size is sealed, so that no process can shrink it under the
 * others.
 *
 * The shared primitives are robust: a process (or thread) that dies while
 * it holds a shared Lock, even by SIGKILL, does not wedge the others. The
 * kernel marks the lock as abandoned at the holder's death (Linux's robust
 * futexes, as process-shared robust pthread mutexes use), and the next
 * acquire gets the lock with -EOWNERDEAD, which says that what the lock
 * guards may be half-changed. The Queue uses that to stay consistent: a
 * message becomes visible in one store, after it is whole, so a producer
 * killed in the middle of a put leaves nothing behind, and the next holder
 * checks the queue before it goes on. A Semaphore's or an Event's every
 * change is one atomic operation: a process dying cannot leave them
 * half-changed (units a dead process had taken from a Semaphore are not
 * given back, as with POSIX semaphores).
 *
 * Waiting: a plain thread sleeps on the shared word (a futex); a task parks
 * only itself: one watcher thread per process sleeps on the words tasks
 * wait for (futex_waitv, Linux >= 5.16) and wakes them. Where futex_waitv is
 * missing, or more than 127 different words are waited on at once, a task
 * looks again at growing intervals of up to a millisecond instead.
 *
 * Every wait takes a timeout (WEFT_FOREVER, 0: only look, or nanoseconds;
 * another negative value is -EINVAL) and is cancellable in a task. Calls are
 * safe from any thread and task of any process that maps the memory, not
 * from signal handlers. A shared Lock belongs to the task, or else the
 * thread, that took it; only it releases it.
 *
 * Memory that is corrupted (a primitive never initialized, or overwritten)
 * is reported as -EINVAL or -EUCLEAN where weft can tell, and left as it
 * is; weft cannot tell every scribble.
 */
#ifndef WEFT_SHM_H
#define WEFT_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/* -------------------------------------------------------------- regions */

typedef struct weft_shm weft_shm;

/* The bytes of a region's name that are kept; a longer one is cut. */
#define WEFT_SHM_NAME_MAX 31

/*
 * weft_shm_create — a new region of size bytes (rounded up to whole
 * pages), zero-filled, mapped shared; its fd is closed on exec (dup it
 * without FD_CLOEXEC to hand it to a program). name is for /proc's maps
 * and fd links ("/memfd:<name>"), copied and cut to WEFT_SHM_NAME_MAX (31)
 * bytes as weft's other names are; NULL gives "weft-shm". Returns 0;
 * -EINVAL (out NULL, size 0 or over PTRDIFF_MAX); -ENOMEM; -EMFILE,
 * -ENFILE. Does not block; callable from any thread or task.
 */
WEFT_API int weft_shm_create(weft_shm **out, size_t size, const char *name);

/*
 * weft_shm_open — map the region whose fd another process handed over;
 * the handle then owns fd (weft_shm_free closes it). Returns 0; -EBADF;
 * -EINVAL (out NULL; fd is not a region of weft_shm_create: not a memfd, or
 * its size not sealed); -ENOMEM. On an error fd stays the caller's.
 */
WEFT_API int weft_shm_open(weft_shm **out, int fd);

/* The region's first byte (page-aligned), its size, its fd; NULL, 0, -1
 * for NULL. */
WEFT_API void *weft_shm_addr(const weft_shm *s);
WEFT_API size_t weft_shm_size(const weft_shm *s);
WEFT_API int weft_shm_fd(const weft_shm *s);

/*
 * weft_shm_free — unmap the region in this process and close its fd. The
 * memory lives on while another process maps it. Nothing in it may be in
 * use by this process any more. NULL is ignored.
 */
WEFT_API void weft_shm_free(weft_shm *s);

/* ------------------------------------------------ process-shared primitives
 *
 * Each is placed by the program in shared memory (a region, or any
 * MAP_SHARED memory), initialized once by one process, before the others
 * use it, and never moved. Their insides are private; their size is part
 * of the ABI. None allocates, so none needs destroying.
 */

typedef struct weft_shared_lock {
  _Alignas(8) unsigned char opaque_[64];
} weft_shared_lock;

typedef struct weft_shared_sem {
  _Alignas(8) unsigned char opaque_[16];
} weft_shared_sem;

typedef struct weft_shared_event {
  _Alignas(8) unsigned char opaque_[16];
} weft_shared_event;

/* weft_shared_lock_init — an unlocked lock. Returns 0; -EINVAL (NULL, not
 * 8-byte aligned); -ENOTSUP (the C library cannot make a robust
 * process-shared mutex here). Not while any process uses it. On an error
 * *l is unchanged. Under qemu-user, which does not emulate the kernel's
 * robust list, the lock works but is not robust. */
WEFT_API int weft_shared_lock_init(weft_shared_lock *l);

/*
 * weft_shared_lock_acquire — take the lock, waiting up to timeout. Returns
 * 0; -EOWNERDEAD: taken, but its last holder died holding it, so what it
 * guards may be half-changed (put it right, then release as usual; the
 * lock itself is sound again); -ETIMEDOUT; -ECANCELED (a task, or a task
 * group's thread member); -EDEADLK (the caller holds it already); -EINVAL
 * (NULL, not a lock, a bad timeout); -EUCLEAN (its memory was overwritten: no
 * holder, yet held). Blocks; a waiter whose holder died, or whose waker died
 * before it acted, goes on within 100 ms. A task must release what it holds
 * before it ends.
 */
WEFT_API int weft_shared_lock_acquire(weft_shared_lock *l, int64_t timeout);

/* weft_shared_lock_release — Returns 0; -EPERM (the caller does not hold
 * it); -EINVAL. Never blocks. */
WEFT_API int weft_shared_lock_release(weft_shared_lock *l);

/* weft_shared_lock_locked — whether some task or thread holds it now. */
WEFT_API bool weft_shared_lock_locked(const weft_shared_lock *l);

/* weft_shared_sem_init — a semaphore holding value units (at most
 * WEFT_SHARED_SEM_MAX). Returns 0; -EINVAL. Not while any process uses
 * it. */
#define WEFT_SHARED_SEM_MAX 0x7fffffffu
WEFT_API int weft_shared_sem_init(weft_shared_sem *s, unsigned value);

/* weft_shared_sem_acquire — take a unit, waiting up to timeout. Returns 0;
 * -ETIMEDOUT; -ECANCELED (a task, or a task group's thread member); -EINVAL. */
WEFT_API int weft_shared_sem_acquire(weft_shared_sem *s, int64_t timeout);

/* weft_shared_sem_release — give a unit back, waking one waiter. Returns 0;
 * -EOVERFLOW (already WEFT_SHARED_SEM_MAX units: nothing changed);
 * -EINVAL. Never blocks. */
WEFT_API int weft_shared_sem_release(weft_shared_sem *s);

/* weft_shared_sem_value — the units now, or -EINVAL. */
WEFT_API int weft_shared_sem_value(const weft_shared_sem *s);

/* weft_shared_event_init — an event, not set. Returns 0; -EINVAL. */
WEFT_API int weft_shared_event_init(weft_shared_event *e);

/* weft_shared_event_set — set it, waking every waiter of every process.
 * weft_shared_event_clear — unset it. Both return 0 or -EINVAL; neither
 * blocks. */
WEFT_API int weft_shared_event_set(weft_shared_event *e);
WEFT_API int weft_shared_event_clear(weft_shared_event *e);

/* weft_shared_event_is_set — whether it is set now (false for NULL). */
WEFT_API bool weft_shared_event_is_set(const weft_shared_event *e);

/*
 * weft_shared_event_wait — wait until the event is set. As Python's
 * Event.wait, a set that came while the caller waited counts even if the
 * event was cleared again before it looked. Returns 0; -ETIMEDOUT;
 * -ECANCELED (a task, or a task group's thread member); -EINVAL.
 */
WEFT_API int weft_shared_event_wait(weft_shared_event *e, int64_t timeout);

/* ---------------------------------------------------------------- queue
 *
 * A bounded queue of messages (byte strings) in a region of its own:
 * any number of processes put and get, each message reaches one getter,
 * whole, in the order of the puts. A child made by weft_proc_start uses
 * the parent's handle as it is; another process opens the queue's fd.
 */

typedef struct weft_queue weft_queue;

typedef struct weft_queue_opts {
  /* Bytes for messages in the queue (each takes its length rounded up to
   * 8, plus 8, and 8 bytes always stay free): default 64 KiB, at least
   * 64, at most 1 GiB. */
  size_t capacity;
  /* Messages at most in the queue, 0: as many as fit (the default). */
  size_t maxsize;
} weft_queue_opts;

/* weft_queue_create — an empty queue; opts NULL gives the defaults. Its
 * region is named "weft-queue" in /proc (a queue takes no name). Returns 0;
 * -EINVAL (out NULL, a capacity out of range); -ENOTSUP (as
 * weft_shared_lock_init); -ENOMEM; -EMFILE, -ENFILE. */
WEFT_API int weft_queue_create(weft_queue **out, const weft_queue_opts *opts);

/* weft_queue_open — the queue whose fd (weft_queue_fd) another process
 * handed over; the handle then owns fd. Returns 0; -EBADF; -EINVAL (not a
 * queue's region); -EUCLEAN (a queue, corrupted); -ENOMEM. On an error fd
 * stays the caller's. */
WEFT_API int weft_queue_open(weft_queue **out, int fd);

/* weft_queue_fd — the queue's region's fd (closed on exec), or -1. */
WEFT_API int weft_queue_fd(const weft_queue *q);

/* weft_queue_max_message — the longest message the queue can take: its
 * capacity less 16 bytes; 0 for NULL. */
WEFT_API size_t weft_queue_max_message(const weft_queue *q);

/*
 * weft_queue_put — append a copy of msg's len bytes, waiting up to timeout
 * for room (and for the producers' lock, which another put holds only for
 * a copy: a put of timeout 0 waits up to a millisecond for it). Returns 0;
 * -ETIMEDOUT; -ECANCELED (a task, or a task group's thread member); -EMSGSIZE
 * (over weft_queue_max_message: it could never fit); -EINVAL (NULL q, msg NULL
 * with len > 0, a bad timeout); -EUCLEAN (the queue's memory is corrupted).
 * Nothing is put on an error.
 */
WEFT_API int weft_queue_put(weft_queue *q, const void *msg, size_t len,
                            int64_t timeout);

/*
 * weft_queue_get — take the oldest message, copying it into buf (size
 * bytes), waiting up to timeout for one (and for the consumers' lock, as
 * weft_queue_put for the producers'). Returns its length; -EMSGSIZE
 * (it is longer than size: it stays first in the queue, and
 * weft_queue_max_message bounds every message); -ETIMEDOUT; -ECANCELED (a
 * task); -EINVAL (NULL q, buf NULL with size > 0, a bad timeout); -EUCLEAN.
 */
WEFT_API ssize_t weft_queue_get(weft_queue *q, void *buf, size_t size,
                                int64_t timeout);

/* weft_queue_qsize — messages in the queue now: a snapshot, which puts and
 * gets may change at once (as Python's). A message whose producer was
 * killed in the middle of its put, after the message was stored, can be
 * got at once but is counted only from the next put on. Never waits for a
 * put; waits for the consumers' lock only if gets never pause. Returns the
 * count; -EINVAL; -EUCLEAN. */
WEFT_API ssize_t weft_queue_qsize(weft_queue *q);

/* weft_queue_free — let go of the queue in this process (unmap, close).
 * Not while a put or get of this process is under way on it. NULL is
 * ignored. */
WEFT_API void weft_queue_free(weft_queue *q);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SHM_H */
