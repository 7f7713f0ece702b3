/*
 * weft/exec.h — futures, and the pools that complete them: Python's
 * concurrent.futures for C, for plain threads and tasks alike (a task that
 * waits on a future parks only itself).
 *
 *     Python (concurrent.futures)        weft
 *     f = Future()                       weft_future_new(&f)
 *     f.set_result(v)                    weft_future_set_result(f, v)
 *     f.set_exception(e)                 weft_future_set_error(f, -EIO)
 *     f.result(timeout)                  weft_future_result(f, t, &v, &err)
 *     f.cancel()                         weft_future_cancel(f)
 *     f.add_done_callback(cb)            weft_future_add_done_callback(f, cb,
 * a) wait(fs, timeout, FIRST_COMPLETED) weft_future_wait_any(fs, n, mode, t)
 *     as_completed(fs, timeout)          weft_future_iter_new / _next
 *     ThreadPoolExecutor(n)              weft_thread_pool_new(&p, &opts)
 *     pool.submit(fn, arg)               weft_thread_pool_submit(p, fn, a, t,
 * &f) pool.map(fn, args)                 weft_thread_pool_map(p, fn, as, n, t,
 * fs) pool.shutdown(wait, cancel_futures) weft_thread_pool_shutdown(p, flags)
 *
 * A future's outcome. A future is pending, then running (a pool took its
 * call), then done: finished with a value (a pointer, and a size for the
 * bytes of a process pool) or with an error (a negative errno the work
 * returned), or cancelled before it ran. A done future never changes again.
 * Reading an outcome and waiting for one are separate: weft_future_result
 * returns whether the wait ended with the future done, and the outcome in
 * its out parameters, so that a work's own -ETIMEDOUT is never taken for
 * the wait's.
 *
 * Done callbacks run exactly once each, as Python's: by whoever completes
 * the future (the pool's worker, or the caller of _set_result, _set_error
 * or _cancel), after the future is done and outside its lock, in the
 * order they were added; or at once, by the caller of
 * weft_future_add_done_callback, when the future is done already. A
 * callback may read its future's outcome (weft_future_result returns at
 * once) and add callbacks; it must not free the future. A pool's worker
 * runs the callbacks before it takes its next call, so they should be
 * short: one that blocks holds a worker up meanwhile.
 *
 * Handles (docs/README.md, "Handles"): weft_future_new and the pools'
 * submit give the caller a future it lets go with weft_future_free; the
 * pool keeps its own hold while the call is queued or running, so a
 * future freed before it is done still runs its call and its callbacks.
 * A future let go must not be used again.
 *
 * Threads: every function may be called from any task or thread, at once
 * with the others on the same future. Waits park a task (cancellable:
 * -ECANCELED) and put a thread to sleep. From a signal handler: none.
 * After fork: futures and pools are the parent's; a child must not use
 * them.
 */
#ifndef WEFT_EXEC_H
#define WEFT_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_future weft_future;

/* A future's states (weft_future_state). */
#define WEFT_FUTURE_PENDING   0
#define WEFT_FUTURE_RUNNING   1
#define WEFT_FUTURE_FINISHED  2 /* with a value or an error */
#define WEFT_FUTURE_CANCELLED 3

/* A done callback: f is done when it runs. */
typedef void (*weft_future_cb)(weft_future *f, void *arg);

/*
 * weft_future_new — a pending future, for a caller that completes it
 * itself (the promise side: weft_future_set_running, _set_result,
 * _set_error). Returns 0, -EINVAL (out NULL), -ENOMEM.
 */
WEFT_API int weft_future_new(weft_future **out);

/*
 * weft_future_set_running — mark a pending future running, as a pool
 * does when it takes the call, after which it cannot be cancelled.
 * Returns 0; -ECANCELED (it was cancelled: do not run the call; Python's
 * set_running_or_notify_cancel returning False); -EALREADY (running or
 * done already); -EINVAL (f NULL). Never blocks.
 */
WEFT_API int weft_future_set_running(weft_future *f);

/*
 * weft_future_set_result, weft_future_set_error — complete f with a value,
 * or with an error (a negative errno other than 0), from pending or
 * running, and run its done callbacks (on the caller's stack: see above),
 * waking every waiter. Returns 0; -EALREADY (f is done already: nothing
 * changed); -EINVAL (f NULL, error not negative). Blocks only for what the
 * callbacks do.
 */
WEFT_API int weft_future_set_result(weft_future *f, void *value);
WEFT_API int weft_future_set_error(weft_future *f, int error);

/*
 * weft_future_cancel — cancel f if it has not started: it is done,
 * cancelled, its callbacks run and its waiters wake; a pool drops the
 * call. Returns 0 (cancelled now, or before); -EBUSY (running: it will
 * finish); -EALREADY (finished: nothing changed); -EINVAL (f NULL).
 */
WEFT_API int weft_future_cancel(weft_future *f);

/*
 * weft_future_result — wait up to timeout ns for f to be done, and give
 * its outcome. Returns 0 once f is done, with *value its value (NULL
 * unless it finished with one) and *error 0 (a value), the work's error,
 * or -ECANCELED (f was cancelled); either pointer may be NULL. Errors of
 * the wait: -ETIMEDOUT (not done yet; 0 polls), -ECANCELED (the waiting
 * task was cancelled), -EDEADLK (the caller is running f's own call in a
 * pool, which could never finish), -EINVAL (f NULL, a bad timeout).
 */
WEFT_API int weft_future_result(weft_future *f, int64_t timeout, void **value,
                                int *error);

/* The bytes of f's value when a process pool completed it (its size), else
 * 0. */
WEFT_API size_t weft_future_size(const weft_future *f);

/* f's state (WEFT_FUTURE_*), or -EINVAL for NULL. Never blocks. */
WEFT_API int weft_future_state(const weft_future *f);

/* Whether f is done (finished or cancelled); false for NULL. */
WEFT_API bool weft_future_done(const weft_future *f);

/*
 * weft_future_add_done_callback — run cb(f, arg) once f is done: at once
 * on the caller's stack if it is, else by whoever completes it (see
 * above). Returns 0; -EINVAL (f or cb NULL); -ENOMEM (nothing added).
 */
WEFT_API int weft_future_add_done_callback(weft_future *f, weft_future_cb cb,
                                           void *arg);

/* weft_future_free — let go of the caller's hold on f. A pending or
 * running future goes on (its pool holds it) and is freed once done and
 * let go by all. NULL is ignored. */
WEFT_API void weft_future_free(weft_future *f);

/* What weft_future_wait_any waits for. */
#define WEFT_FIRST_COMPLETED 1 /* any future done */
#define WEFT_FIRST_ERROR     2 /* any finished with an error, or all done */
#define WEFT_ALL_COMPLETED   3 /* every future done */

/*
 * weft_future_wait_any — wait up to timeout ns until the futures fs[0..n)
 * meet `mode`, as Python's concurrent.futures.wait. Returns how many of
 * them are done (then the caller looks at each with weft_future_done), or
 * -ETIMEDOUT (the mode was not met in time; 0 polls), -ECANCELED (the
 * waiting task was cancelled), -EINVAL (fs NULL with n > 0, a NULL
 * future, a bad mode or timeout), -ENOMEM. A future may appear twice. n of
 * 0 returns 0 at once.
 */
WEFT_API int weft_future_wait_any(weft_future *const *fs, size_t n, int mode,
                                  int64_t timeout);

/* An iteration over futures as they complete (as_completed). */
typedef struct weft_future_iter weft_future_iter;

/* weft_future_iter_new — watch fs[0..n) (the caller keeps its holds on
 * them while the iteration lasts). Returns 0, -EINVAL, -ENOMEM. */
WEFT_API int weft_future_iter_new(weft_future_iter **out,
                                  weft_future *const *fs, size_t n);

/*
 * weft_future_iter_next — the next future to be done, in the order they
 * completed (those done already first, in fs's order), waiting up to
 * timeout ns. Returns 0 with *f; -ENOENT (every future was given);
 * -ETIMEDOUT; -ECANCELED (a cancelled task); -EINVAL. One caller at a time.
 */
WEFT_API int weft_future_iter_next(weft_future_iter *it, int64_t timeout,
                                   weft_future **f);

/* weft_future_iter_free — end the iteration (NULL is ignored). */
WEFT_API void weft_future_iter_free(weft_future_iter *it);

/* ---- thread pools -------------------------------------------------------- */

/*
 * A call for a pool: returns 0 with its value in *value (NULL if left
 * alone), or a negative errno, the future's error (a positive return is
 * taken as -EINVAL).
 */
typedef int (*weft_work_fn)(void *arg, void **value);

typedef struct weft_thread_pool weft_thread_pool;

typedef struct weft_thread_pool_opts {
  /* Most worker threads, started as calls come (none before the first);
   * 0: the CPUs plus 4, at most 32, as Python's. At most 4096. */
  int workers;
  /* Calls that may wait for a worker; 0: no bound. A submit to a full
   * queue waits for room up to its timeout, or fails at once with -EAGAIN
   * when full_fails is set. */
  size_t queue_max;
  bool full_fails;
  /* Run first in each worker thread (may be NULL). */
  void (*initializer)(void *arg);
  void *initializer_arg;
  /* The workers' names start with it (NULL: "pool"). Copied. */
  const char *name;
} weft_thread_pool_opts;

/* weft_thread_pool_new — a pool; opts may be NULL. Returns 0; -EINVAL (out
 * NULL, workers negative or over 4096); -ENOMEM. Starts no thread. */
WEFT_API int weft_thread_pool_new(weft_thread_pool **out,
                                  const weft_thread_pool_opts *opts);

/*
 * weft_thread_pool_submit — queue fn(arg) and give its future in *out
 * (the caller's to free). Returns 0; -EAGAIN (the queue is full and
 * full_fails is set, or timeout 0); -ETIMEDOUT (no room came in time);
 * -ECANCELED (a cancelled task waiting for room); -ESHUTDOWN (the pool is
 * shut down); -EAGAIN or -ENOMEM (no worker could be started and none
 * runs); -EINVAL (p, fn or out NULL, a bad timeout). Nothing is queued on
 * error. Blocks only while the queue is full.
 */
WEFT_API int weft_thread_pool_submit(weft_thread_pool *p, weft_work_fn fn,
                                     void *arg, int64_t timeout,
                                     weft_future **out);

/*
 * weft_thread_pool_map — submit fn(args[i]) for each i in [0, n), in
 * order, each future in outs[i] (the caller's to free). Returns 0 when all
 * were submitted, else the first failed submit's error: the futures before
 * it were submitted and stay in outs, and outs[i] is NULL from it on.
 */
WEFT_API int weft_thread_pool_map(weft_thread_pool *p, weft_work_fn fn,
                                  void *const *args, size_t n, int64_t timeout,
                                  weft_future **outs);

/* Flags of weft_thread_pool_shutdown. */
#define WEFT_POOL_WAIT   1 /* wait for the queued and running calls */
#define WEFT_POOL_CANCEL 2 /* cancel the queued calls first */

/*
 * weft_thread_pool_shutdown — take no more calls (submit: -ESHUTDOWN);
 * with WEFT_POOL_CANCEL cancel those still queued; with WEFT_POOL_WAIT
 * wait until every call left is done and the workers have ended. May be
 * called again (to wait, say). Returns 0; -EINVAL (p NULL, unknown flags);
 * -EDEADLK (WEFT_POOL_WAIT from one of the pool's own workers);
 * -ECANCELED (a cancelled task waiting: the pool stays shut down).
 */
WEFT_API int weft_thread_pool_shutdown(weft_thread_pool *p, int flags);

/* weft_thread_pool_free — shut down with WEFT_POOL_WAIT (the queued calls
 * run), then free the pool. Not from one of its own workers. NULL is
 * ignored. */
WEFT_API void weft_thread_pool_free(weft_thread_pool *p);

/* ---- process pools ------------------------------------------------------ */

/*
 * A call for a process pool, run in a worker process: a fork of the pool's
 * process, so fn and whatever it reaches are valid there as they were at
 * the worker's start (nothing the parent changes later reaches it). It
 * takes arg's len bytes (a copy, aligned to 8), and gives its result's
 * bytes in *result (memory of malloc's, which the pool frees; NULL for
 * none) and *result_len. Returns 0, or a negative errno: the future's
 * error (a positive return is taken as -EINVAL, as is a result_len with no
 * result; a result over 1 GiB fails with -EMSGSIZE).
 */
typedef int (*weft_proc_work_fn)(const void *arg, size_t len, void **result,
                                 size_t *result_len);

typedef struct weft_proc_pool weft_proc_pool;

typedef struct weft_proc_pool_opts {
  /* Most worker processes, started as calls come; 0: one per CPU. At most
   * 1024. */
  int workers;
  /* Calls a worker runs before it is replaced by a new one; 0: no end. */
  int max_calls;
  /* As weft_thread_pool_opts's. */
  size_t queue_max;
  bool full_fails;
  /* Run first in each worker process (may be NULL). */
  void (*initializer)(void *arg);
  void *initializer_arg;
  /* The workers' names start with it (NULL: "procpool"). Copied. */
  const char *name;
} weft_proc_pool_opts;

/* weft_proc_pool_new — a pool of worker processes; opts may be NULL.
 * Returns 0; -EINVAL (out NULL, workers negative or over 1024, max_calls
 * negative); -ENOMEM. Starts no process. */
WEFT_API int weft_proc_pool_new(weft_proc_pool **out,
                                const weft_proc_pool_opts *opts);

/*
 * weft_proc_pool_submit — queue fn(arg's len bytes, copied now) for a
 * worker process, its future in *out (the caller's to free). A finished
 * future's value is the result's bytes, weft_future_size of them, kept
 * with the future. A worker that dies while it runs the call (a signal,
 * exit, abort) fails that call alone with -EOWNERDEAD
 * (weft_future_worker_exit says how it died) and is replaced; the pool
 * goes on. Errors as weft_thread_pool_submit's, and -EMSGSIZE (len over 1
 * GiB), -EPERM (called in another process than the pool's). Blocks only
 * while the queue is full.
 */
WEFT_API int weft_proc_pool_submit(weft_proc_pool *p, weft_proc_work_fn fn,
                                   const void *arg, size_t len, int64_t timeout,
                                   weft_future **out);

/*
 * weft_future_worker_exit — how the worker process that ran f's call died,
 * when f failed with -EOWNERDEAD: *code as weft_proc_join gives it (the
 * exit status, or the negated signal). Returns 0; -ENOENT (f did not fail
 * that way, or is not done); -EINVAL (f NULL).
 */
WEFT_API int weft_future_worker_exit(const weft_future *f, int *code);

/*
 * weft_proc_pool_shutdown — as weft_thread_pool_shutdown; with
 * WEFT_POOL_WAIT the worker processes have also exited and been reaped
 * (none is left a zombie). -EDEADLK: WEFT_POOL_WAIT from a future's done
 * callback that the pool runs. -EPERM (as from submit): called in another
 * process than the pool's, such as a worker.
 */
WEFT_API int weft_proc_pool_shutdown(weft_proc_pool *p, int flags);

/* weft_proc_pool_free — shut down with WEFT_POOL_WAIT, then free the pool.
 * NULL, a call from another process or from a callback the pool runs are
 * ignored. */
WEFT_API void weft_proc_pool_free(weft_proc_pool *p);

/*
 * Task groups — structured concurrency: Python 3.11's asyncio.TaskGroup,
 * trio's nursery, Go's errgroup with its context. Members are spawned into
 * a group; its wait returns once all of them have finished, or, as soon as
 * one fails, cancels the others, waits for them to clean up, and returns
 * that first failure's error. The errors of the others that failed on
 * their own are kept, in order (Python's ExceptionGroup).
 *
 *     weft_group *g;
 *     weft_group_new(&g);
 *     for (size_t i = 0; i < n; i++)
 *       weft_group_spawn(g, fetch, &jobs[i]);
 *     int rc = weft_group_wait(g);        // 0, or the first error
 *     weft_group_free(g);
 *
 * A member runs fn(arg), which returns 0 when it succeeded and a negative
 * errno when it failed. It is a task of the group's hub (weft_group_spawn:
 * the hub of the task that made the group), or a plain OS thread of its
 * own (weft_group_spawn_thread), in any mix. A member the group cancels
 * sees -ECANCELED from the blocking call of weft it is in and from every
 * later one, and should clean up and return; the -ECANCELED it then
 * returns is not a failure of its own. A task member is cancelled as by
 * weft_task_cancel, and may clean up with waits under weft_task_shield. A
 * thread member is cancelled in the same way: its waits on weft's
 * primitives, joins, futures and fds (weft_io_*) end with -ECANCELED, at
 * once if it is blocked in one; a wait on memory shared between processes
 * (weft/shm.h) sees it within its re-look interval, and a call outside
 * weft (read(2) on a blocking fd, sleep(3)) not until it returns. When a
 * thread member fails first, the task members are cancelled from their
 * hub, by the group's waiter as soon as it waits (or by the next spawn).
 *
 * Deadlines: the members start under the deadline of the task or thread
 * that made the group (weft_deadline_set, weft_scope_enter: the scopes it
 * was in), or the group's own if earlier (weft_group_deadline). A wait it
 * ends in a member fails, as in any code under that deadline, with
 * -ETIMEDOUT (or -ECANCELED for a scope that cancels): a member that
 * returns it has failed, and the others are cancelled. The waiter's wait
 * ends at its own deadline, not at the group's.
 *
 * A group outlives none of its members: weft_group_wait is the way out,
 * and waits for every member whatever happens. When the waiting task is
 * cancelled, or its deadline passes, the wait cancels the members, waits
 * for them, and then returns -ECANCELED or -ETIMEDOUT. Members may spawn
 * into their own group while it has not finished (the wait waits for
 * those too), and may make and wait on groups of their own, to any depth.
 *
 * Thread safety: a group made by a task belongs to that task's hub: its
 * tasks spawn task members into it and wait on it; its thread members,
 * and its tasks, may spawn thread members. A group made by a plain thread
 * has thread members only, and any task or thread may use it.
 * weft_group_errors and weft_group_free may be called from any task or
 * thread once the wait has returned, and from where the group may be
 * used at any time.
 */
typedef struct weft_group weft_group;

/* A member's work: 0 when it succeeded, a negative errno when it failed
 * (a positive value counts as 0). */
typedef int (*weft_group_fn)(void *arg);

/* weft_group_new — make an empty group: on the calling task's hub, or,
 * from a plain thread, a group for thread members. Its members will start
 * under the caller's deadline as it is now (see above). Returns 0,
 * -EINVAL (out NULL), -ENOMEM. Does not block. */
WEFT_API int weft_group_new(weft_group **out);

/*
 * weft_group_deadline — give g a deadline of its own, an absolute
 * weft_now() time, for its members: the earlier of it and
 * the one g was made under stands. how is WEFT_SCOPE_TIMEOUT or
 * WEFT_SCOPE_CANCEL, as for weft_scope_enter. Returns 0, or (nothing
 * changed) -EINVAL (g NULL, at negative other than WEFT_FOREVER, how
 * unknown), -EBUSY (a member was spawned already: set it first). Does not
 * block. From wherever g may be used.
 */
WEFT_API int weft_group_deadline(weft_group *g, int64_t at, int how);

/*
 * weft_group_spawn — start fn(arg) as a task member of g: a task of g's
 * hub, queued behind the runnable ones, as weft_task_spawn's. Into a group
 * one of whose members has failed, or whose waiter was cancelled, the
 * member starts cancelled. Returns 0, or (nothing changed) -EINVAL (g or
 * fn NULL), -EPERM (not from a task of g's hub; a group made by a plain
 * thread has no hub), -ESHUTDOWN (g's wait has returned: the group has
 * finished), -ENOMEM. Does not block.
 */
WEFT_API int weft_group_spawn(weft_group *g, weft_group_fn fn, void *arg);

/*
 * weft_group_spawn_thread — start fn(arg) as a thread member of g: a new
 * OS thread (weft_thread_start's, not a daemon unless its starter is one),
 * which the group lets go of when fn returns; it starts cancelled as
 * weft_group_spawn's. Returns 0, or (nothing changed) -EINVAL (g or fn
 * NULL), -EPERM (g was made by a task, has no thread member yet, and the
 * caller is not a task of its hub), -ESHUTDOWN (g has finished), -EAGAIN
 * (the system's thread limit), -ENOMEM. Does not block.
 */
WEFT_API int weft_group_spawn_thread(weft_group *g, weft_group_fn fn,
                                     void *arg);

/*
 * weft_group_wait — wait until every member of g has finished. Returns 0
 * when none failed; the first failure's error when one did (the others
 * were cancelled at that moment, and have finished); -ECANCELED or
 * -ETIMEDOUT when the caller was cancelled or a deadline passed while it
 * waited and no member had failed (the members were then cancelled, and
 * have finished). The group has then finished: later waits return the
 * same at once. Errors: -EINVAL (g NULL), -EPERM (g was made by a task,
 * and the caller is not a task of its hub), -EBUSY (another task or
 * thread waits on g now: nothing changed). Blocks the calling task (its
 * hub runs the others), or thread, for as long as the members run.
 */
WEFT_API int weft_group_wait(weft_group *g);

/*
 * weft_group_errors — how many members of g failed on their own (not
 * counting those the group cancelled, which return -ECANCELED), with the
 * first cap of their errors copied to errors in the order they failed
 * (nothing is copied when errors is NULL). 0 for g NULL. Does not block;
 * see above for from where.
 */
WEFT_API size_t weft_group_errors(const weft_group *g, int *errors, size_t cap);

/*
 * weft_group_free — release g. Returns 0, or -EINVAL (g NULL), -EBUSY (a
 * member still runs, or a task or thread waits on g: wait for them first;
 * nothing changed). The handle must not be used after 0. See above for
 * from where.
 */
WEFT_API int weft_group_free(weft_group *g);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_EXEC_H */
