/*
 * The exec layer's insides: the future, which the pools complete, and what
 * they need of it beyond the public API. See include/weft/exec.h.
 *
 * A future is guarded by its guard (src/core/guard.h): its state, outcome,
 * waiters, callbacks and watchers change under it. Its state is also read
 * without it (atomically, acquire), and once done nothing else changes, so
 * a reader that sees it done reads the outcome freely after passing the
 * guard (the completer may still be leaving it).
 *
 * Lock order: a future's guard, then whatever its watchers take (an
 * iteration's guard, a weft_event's). A pool's lock is never taken under
 * a future's guard, and a future's callbacks run under no lock of weft's.
 */
#ifndef WEFT_EXEC_PRIVATE_H
#define WEFT_EXEC_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <weft/exec.h>

/* Something told, under the future's guard, when the future is done: the
 * waits on many futures (weft_future_wait_any, the iteration). `fn` must
 * be quick and take no lock but leaf ones. Linked while `linked`. */
typedef struct weft__future_watcher {
  struct weft__future_watcher *prev, *next;
  void (*fn)(struct weft__future_watcher *w);
  void *ctx;
  size_t index; /* the watcher's own use */
  bool linked;
} weft__future_watcher;

/* Links w to f, unless f is done: returns false then (w not linked). */
bool weft__future_watch(weft_future *f, weft__future_watcher *w);

/* Unlinks w from f if it is linked. After this returns, w->fn is not
 * running and will not run for f. */
void weft__future_unwatch(weft_future *f, weft__future_watcher *w);

/* weft_future_new with `extra` bytes of the caller's behind the future,
 * in *area (aligned as malloc's, zeroed), which live and go with it: a
 * pool's record of the call, one allocation for both. */
int weft__future_new_with(weft_future **out, size_t extra, void **area);

/* Takes one more hold on f (a pool's, while the call is queued or
 * running); weft_future_free lets each go. */
void weft__future_hold(weft_future *f);

/* The future whose call the running thread or task is running (a pool
 * sets it around the call), so that a wait on it from inside its own call
 * fails with -EDEADLK rather than waiting forever. */
void weft__future_running_set(const weft_future *f);

/* Completes f with the outcome of a pool's call: a value of size bytes
 * (0 for a pointer of a thread pool's), with `owned` the buffer f frees
 * when it goes (or NULL); or an error, and then owned is freed at once.
 * As weft_future_set_result and _set_error (-EALREADY: done already, and
 * owned freed). */
int weft__future_finish(weft_future *f, void *value, size_t size, void *owned,
                        int error);

/* What a completion does, if the future has done callbacks, after it
 * woke the waiters and before it runs the callbacks: fn(a, b), under no
 * lock of weft's. A pool's worker stops counting itself a spinner there
 * (callq.h). */
typedef struct weft__before_callbacks {
  void (*fn)(void *a, void *b);
  void *a, *b;
} weft__before_callbacks;

/* weft__future_finish, with `before` (NULL: none). */
int weft__future_finish_then(weft_future *f, void *value, size_t size,
                             void *owned, int error,
                             const weft__before_callbacks *before);

/* Completes f with -EOWNERDEAD: the process pool's worker that ran its
 * call died, with exit_code as weft_proc_join gives it (weft_future_
 * worker_exit). */
int weft__future_died(weft_future *f, int exit_code);

#endif
