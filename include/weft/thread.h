/*
 * weft/thread.h — OS threads with Python's semantics: join with a timeout,
 * daemon threads, names.
 *
 *     Python (threading)                weft
 *     t = Thread(target=f, args=(a,))   weft_thread_start(&t, f, a, NULL)
 *       name="w", daemon=True           &(weft_thread_opts){.name = "w",
 *                                           .daemon = WEFT_THREAD_DAEMON}
 *     t.join(timeout)                   weft_thread_join(t, timeout, &result)
 *     t.is_alive()                      weft_thread_alive(t)
 *     (garbage collection)              weft_thread_detach(t)
 *     threading.current_thread()        weft_thread_current()
 *     t.name, t.ident                   weft_thread_name(t), weft_thread_id(t)
 *
 * weft threads run in parallel (there is no GIL in C); each may run a hub
 * of its own (weft_run), and the primitives of weft/sync.h work between
 * them and any task. A weft thread is a pthread: C's _Thread_local and
 * pthread keys are its thread-local storage, as Python's threading.local
 * is a thread's.
 *
 * Daemon threads, exactly as Python's: when the main thread finishes
 * (returns from main, or calls exit), the process first waits for every
 * non-daemon thread weft started, then exits, and daemon threads end with
 * it, wherever they are. A thread is a daemon if its options say so, else
 * if the thread that started it is one (the main thread is not): a program
 * that never mentions daemons waits for all its threads, as Python's does.
 *
 * Nothing cancels a thread from outside, as in Python, with one
 * exception: a task group cancels its thread members
 * (weft_group_spawn_thread in weft/exec.h), whose waits on weft's
 * primitives, joins, futures and fds then return -ECANCELED.
 *
 * Handles, as every handle of weft (docs/README.md, "Handles"): a thread's
 * handle is valid from weft_thread_start until weft_thread_detach lets it
 * go. Joining lets go of nothing: any number of tasks and threads may join
 * one thread, at once or one after another, as in Python. A handle let go
 * must not be used again: weft cannot tell (its memory may already hold a
 * new thread's handle, and the call would act on that one), and
 * AddressSanitizer builds report it once the memory is gone. (weft keeps a
 * thread's memory until the thread has ended: meanwhile a join through a
 * detached handle returns -EINVAL.)
 */
#ifndef WEFT_THREAD_H
#define WEFT_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_thread weft_thread;

typedef void *(*weft_thread_fn)(void *arg);

/* Values of weft_thread_opts.daemon. */
#define WEFT_THREAD_INHERIT    0 /* as the starting thread (the default) */
#define WEFT_THREAD_DAEMON     1
#define WEFT_THREAD_NOT_DAEMON 2

typedef struct weft_thread_opts {
  /* For dumps and debuggers (the first 15 bytes become the OS thread's
   * name); copied, cut to 31 bytes. NULL gives "Thread-<id>". */
  const char *name;
  int daemon; /* WEFT_THREAD_INHERIT, _DAEMON or _NOT_DAEMON */
  /* The thread's stack; 0: the system's default. At least
   * PTHREAD_STACK_MIN. */
  size_t stack_size;
} weft_thread_opts;

/*
 * weft_thread_start — start fn(arg) on a new OS thread.
 *
 * *out receives the handle, valid until weft_thread_detach; out may be
 * NULL for a thread nobody will join. Errors: -EINVAL (fn NULL, a
 * stack_size too small, an unknown daemon value), -EAGAIN (the system's
 * thread limit), -ENOMEM. Does not block. Any thread or task.
 */
WEFT_API int weft_thread_start(weft_thread **out, weft_thread_fn fn, void *arg,
                               const weft_thread_opts *opts);

/*
 * weft_thread_join — wait up to timeout ns for t to finish, and give its
 * result. Lets go of nothing: t may be joined again, by any number of
 * tasks and threads at once, each with its own timeout; each gets the
 * result. A thread (not a task) that joins without a timeout returns once
 * the OS thread has ended, as pthread_join's caller does, a moment after
 * t's function returned; the others, once the function has returned.
 *
 * Returns 0 with the result in *result (may be NULL). Errors: -ETIMEDOUT
 * (t still runs; join again later), -EDEADLK (t is the caller), -ECANCELED
 * (a cancelled task that would have to wait), -EINVAL (t NULL, detached as
 * far as can be told, or a thread weft did not start, such as the main
 * thread; or a negative timeout other than WEFT_FOREVER). Blocks the
 * calling task (its hub runs the others), or outside a task the thread.
 * Any task or thread.
 */
WEFT_API int weft_thread_join(weft_thread *t, int64_t timeout, void **result);

/*
 * weft_thread_detach — let go of t's handle (pthread_detach): the thread
 * goes on, and what weft keeps of it is freed when it ends (at once if it
 * has). The handle must not be used after this call. Until then an ended
 * thread that no thread joined without a timeout keeps its stack, as an
 * unjoined pthread does: detach every handle. Errors: -EINVAL (t
 * NULL, a thread weft did not start, or detached already as far as can be
 * told), -EBUSY (a task or thread waits in a join of t: nothing changes).
 * Does not block. Any task or thread.
 */
WEFT_API int weft_thread_detach(weft_thread *t);

/* weft_thread_alive — whether t runs still (false once its function has
 * returned, or for NULL). */
WEFT_API bool weft_thread_alive(const weft_thread *t);

/* weft_thread_current — the calling thread's handle: the one
 * weft_thread_start gave, or for a thread weft did not start (the main
 * thread, one of pthread_create's) one made on first use, named
 * "MainThread" or "Dummy-<id>", that cannot be joined and lives as long as
 * the thread. NULL only when out of memory. */
WEFT_API weft_thread *weft_thread_current(void);

/* weft_thread_name — t's name, or NULL for NULL. Lives as long as t's
 * handle. */
WEFT_API const char *weft_thread_name(const weft_thread *t);

/* weft_thread_id — t's id, unique in the process and never 0; 0 for
 * NULL. */
WEFT_API uint64_t weft_thread_id(const weft_thread *t);

/* weft_thread_daemon — whether t is a daemon thread. */
WEFT_API bool weft_thread_daemon(const weft_thread *t);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_THREAD_H */
