/*
 * weft/hub.h — tasks: green threads that switch when they would block.
 *
 * A hub is a scheduler that runs on one OS thread: weft_run turns the
 * calling thread into a hub and runs a main task, and every task it spawns,
 * until all have finished. A task runs until it blocks — sleeps, joins,
 * yields — and the hub switches to another task instead of blocking the
 * thread. Tasks never move between hubs; any thread may run a hub of its
 * own.
 *
 *     Python (gevent)                 weft
 *     gevent.spawn(f, arg)            weft_task_spawn(&t, f, arg, NULL)
 *     t.join(timeout)                 weft_task_join(t, timeout, &result)
 *     t.dead (not)                    weft_task_alive(t)
 *     t.kill()                        weft_task_cancel(t)
 *     (garbage collection)            weft_task_detach(t)
 *     gevent.sleep(s)                 weft_sleep(WEFT_SEC(s))
 *     gevent.sleep(0)                 weft_yield()
 *     gevent.getcurrent()             weft_task_current()
 *     hub.join() / gevent.wait()      weft_run(main, arg, &result)
 *
 * Blocking calls take a relative timeout in nanoseconds (WEFT_FOREVER waits
 * without end) and are cancellable: once a task is cancelled, the call it
 * blocks in, and every later call that would have to wait, returns
 * -ECANCELED at once. A call that need not wait still completes (a join of
 * a finished task, a read of data already there, a free lock), so that the
 * task can clean up; so does a call whose wait had already completed when
 * the cancellation came (a sleep whose time was up). Cleanup that must
 * wait (give a child 5 s to exit, flush a buffer to a peer) goes inside
 * weft_task_shield and weft_task_unshield: between them a cancellation is
 * held back, every wait runs to its own timeout, and the cancellation takes
 * effect when the shield ends (asyncio's cleanup after CancelledError,
 * trio's shielded cancel scope).
 *
 * Deadlock: when no task can run, no timer is armed and nothing else can
 * wake a task, yet tasks are blocked, the hub prints every blocked task and
 * what it waits on to stderr (or where weft_hub_report_to says), and
 * weft_run returns -EDEADLK (Go: "all goroutines are asleep").
 *
 * Generators inside tasks: a generator that a task resumes may make every
 * blocking call of weft (sleep, join, the fd calls of weft/io.h): the hub
 * suspends the generator in the task's place and resumes it where it
 * blocked, and a cancellation of the task reaches it there. Meanwhile the
 * generator counts as running: another resume gets -EBUSY.
 *
 * Threads: the calls here act on the calling thread's hub. Any task of any
 * hub, and any plain thread, may join a task, see whether it is alive and
 * read its name and id; detaching and cancelling it are for the tasks of
 * the hub that spawned it (from elsewhere: -EPERM).
 *
 * Handles, as every handle of weft (docs/README.md, "Handles"): a task's
 * handle is valid from weft_task_spawn until it is let go — by
 * weft_task_detach, or for a handle nobody detached, by weft_run as it
 * returns. Joining lets go of nothing: any number of tasks and threads may
 * join one task, as in Python. A handle let go must not be used again:
 * weft cannot tell (its memory may already hold a new task, and the call
 * would act on that one), and AddressSanitizer builds report it. The handle
 * weft_task_current() gives a detached task is the task's own, valid for
 * as long as it runs: cancelling it through that handle is allowed.
 */
#ifndef WEFT_HUB_H
#define WEFT_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_task weft_task;

/* Private: the queue of blocked tasks and threads that the primitives of
 * weft/sync.h embed (DESIGN.md: the waiter). Never touch it. */
struct weft__waiter;
struct weft__waitq {
  struct weft__waiter *head, *tail;
};

/* A task's body; what it returns is the result its joiner gets. */
typedef void *(*weft_task_fn)(void *arg);

typedef struct weft_task_opts {
  /* For dumps and deadlock reports; copied, cut to 31 bytes. NULL gives
   * "task #<id>". */
  const char *name;
  /* Usable stack bytes; 0 means the default (128 KiB). As generators':
   * reserved, committed only as touched, guarded against overflow. */
  size_t stack_size;
  /* A daemon task does not keep weft_run going (Python's daemon threads,
   * for tasks): once every other task has finished, each daemon task is
   * cancelled, so that the blocking call it is in and every later one
   * returns -ECANCELED, and weft_run returns when the daemons have
   * finished too. A daemon must therefore finish once cancelled. A daemon
   * that waits on an fd does not keep the hub from reporting a deadlock of
   * the other tasks: daemons watch (for a signal, say), they do not serve.
   * (A daemon that sleeps or runs does: it might wake the others.) When
   * weft_run gives up (a deadlock, a failed poller), the daemons are
   * cancelled and run to their end, so that they release what they hold. */
  bool daemon;
  /* Let the hub hibernate this task when it waits long on an fd or
   * sleeps (weft_hub_idle_after): its frames are copied out and its whole
   * stack given back, so that an idle connection costs a few hundred bytes
   * instead of a page or more. The task promises that nothing else uses
   * memory in its frames while it waits so: no other task or thread reads
   * or writes a local of its, through a pointer it handed out, until it
   * runs again. (A task that spawns a worker with a pointer to a struct in
   * its frame and then sleeps breaks that promise; one that joins the
   * worker does not, since a join never hibernates.) Without it the task
   * is only trimmed, which is always safe. */
  bool hibernate;
  /* How long this task waits before its stack is trimmed or hibernated:
   * 0 for its hub's weft_hub_idle_after (the default), WEFT_FOREVER for
   * never, or its own time in ns. A hub serves tasks of at most 7 such
   * times of their own at once (a server's connections, say, and its
   * background tasks); a spawn asking for an eighth gets -ENOSPC. */
  int64_t idle_after;
} weft_task_opts;

/*
 * weft_run — make the calling thread a hub and run fn(arg) as its main task,
 * and every task spawned on it, until all have finished (daemon tasks: see
 * weft_task_opts).
 *
 * Returns 0 with the main task's result in *result (may be NULL), or:
 * -EDEADLK when every remaining task is blocked for good (they are reported
 * on stderr and released without running further: what they hold is lost,
 * a generator one of them blocked in included, which stays running for
 * good: freeing it then says -EBUSY; daemon tasks are first cancelled and
 * run to their end),
 * -EBUSY when the thread already runs a hub, -EINVAL (fn NULL), -ENOMEM,
 * -EMFILE or -ENFILE (no fd for the poller), or the errno of a poller that
 * failed while waiting (the tasks left are then released as on -EDEADLK).
 * Blocks the thread until then. Call from a plain thread, not from a task or
 * a generator (-EBUSY).
 */
WEFT_API int weft_run(weft_task_fn fn, void *arg, void **result);

/*
 * weft_task_spawn — start a task on the calling task's hub. It is queued
 * behind the tasks already runnable and first runs when the caller blocks
 * or yields.
 *
 * *out receives the handle, valid until weft_task_detach lets it go (or
 * weft_run returns); out may be NULL to start the task detached. A handle
 * that is joined but never detached keeps the task's stack until weft_run
 * returns: a program that spawns many tasks detaches each one it has
 * joined. Errors: -EPERM (not called from a task), -EINVAL (fn NULL,
 * stack_size too large, idle_after negative and not WEFT_FOREVER),
 * -ENOSPC (idle_after: see weft_task_opts), -ENOMEM. Does not block.
 */
WEFT_API int weft_task_spawn(weft_task **out, weft_task_fn fn, void *arg,
                             const weft_task_opts *opts);

/*
 * weft_task_join — wait up to timeout ns for t to finish, and give its
 * result. Lets go of nothing: t may be joined again, by any number of
 * tasks and threads at once, each with its own timeout; each gets the
 * result. Joining a finished task returns at once, even when the caller
 * is cancelled.
 *
 * Returns 0 with the result in *result (may be NULL). Errors: -ETIMEDOUT
 * (t still runs; join again later), -ECANCELED (the calling task was
 * cancelled), -ENOMEM (no memory to arm the timeout), -EDEADLK (t is the
 * caller; or t's hub gave up its run — its poller failed — and released t
 * unfinished: t will never finish. On a deadlock the hub cancels the tasks
 * blocked on a primitive or a join first, so those finish and their joins
 * succeed), -EINVAL (t NULL, detached as far as the caller's hub can tell,
 * or a negative timeout other than WEFT_FOREVER). Blocks the calling task
 * (its hub runs the others), or a plain thread. Any task of any hub, any
 * thread.
 */
WEFT_API int weft_task_join(weft_task *t, int64_t timeout, void **result);

/*
 * weft_task_alive — whether t has not finished yet (Python's is_alive());
 * false for NULL. Never blocks; any task or thread.
 */
WEFT_API bool weft_task_alive(const weft_task *t);

/*
 * weft_task_detach — let go of t's handle: a finished t is released now,
 * a running one releases itself when it finishes. The handle must not be
 * used after this call (nor its name: weft_task_name's string goes with
 * it). Errors: -EINVAL (t NULL, or detached already as far as can be
 * told), -EBUSY (a join of t is under way: nothing changes), -EPERM (not
 * from a task of t's hub). Does not block.
 */
WEFT_API int weft_task_detach(weft_task *t);

/*
 * weft_task_cancel — make the blocking call t is in, and every later call
 * of t that would have to wait, return -ECANCELED, so that it cleans up and
 * finishes (see above). Cancelling a task that is blocked wakes it at once;
 * cancelling oneself takes effect at the next wait; cancelling twice is
 * harmless; a cancellation of a shielded task waits for the shield to end.
 * Returns 0, or -ESRCH (t has finished), -EINVAL (t NULL), -EPERM (not
 * from a task of t's hub). Does not block.
 */
WEFT_API int weft_task_cancel(weft_task *t);

/*
 * weft_task_shield, weft_task_unshield — hold back cancellations of the
 * calling task between the two calls, so that it can make bounded cleanup
 * waits after it was cancelled:
 *
 *     weft_task_shield();                   // cancelled or not
 *     int rc = weft_proc_join(child, WEFT_SEC(5), &code);   // waits 5 s
 *     weft_proc_kill(child);
 *     if (weft_task_unshield() == -ECANCELED)
 *       return NULL;                        // the cancellation goes on
 *
 * Inside a shield, waits end only by their own means (a wake, a timeout):
 * a cancellation that came before the shield, or comes during it, is held
 * back, and takes effect when the outermost shield ends (shields nest).
 * Give every wait in a shield a timeout: a shielded task that waits
 * forever cannot be cancelled. A hub that gives up its run on a deadlock
 * cancels its tasks through their shields.
 *
 * weft_task_shield returns 0 (-EOVERFLOW past UINT_MAX levels).
 * weft_task_unshield returns -ECANCELED when the task is cancelled (before
 * or during the shield: its cancellation is in force again once the
 * outermost shield ends), 0 when it is not, -EINVAL with no shield up.
 * Both return -EPERM inside a generator (a shield there could outlive the
 * generator's turn): shield in the task's or thread's own function. From
 * a plain thread they work alike, for the one cancellation a thread can
 * receive, a task group's of its thread members (weft/exec.h); a thread
 * that is no member is never cancelled, and its unshield returns 0 (or,
 * as a task's, -EINVAL with no shield up).
 * Neither blocks.
 */
WEFT_API int weft_task_shield(void);
WEFT_API int weft_task_unshield(void);

/*
 * weft_yield — let every other runnable task run once, then go on: the
 * caller is queued behind all tasks runnable now. Returns 0, -ECANCELED, or
 * -EPERM outside a task.
 */
WEFT_API int weft_yield(void);

/*
 * weft_sleep — block the calling task for ns nanoseconds (at least; 0 is
 * weft_yield). Returns 0, -ETIMEDOUT (the task's deadline came first:
 * weft_deadline_set), -ECANCELED, -EINVAL (ns negative: a duration,
 * not a timeout, so WEFT_FOREVER too), -ENOMEM (no memory to arm the
 * timer), or -EPERM outside a task.
 */
WEFT_API int weft_sleep(int64_t ns);

/*
 * weft_now — the time on weft's clock, CLOCK_MONOTONIC, in nanoseconds:
 * the clock of deadlines. Never fails, never blocks; callable from any
 * thread, task, signal handler, and after fork.
 */
WEFT_API int64_t weft_now(void);

/*
 * weft_deadline_set — give the calling task (outside a task: the calling
 * thread) a deadline, an absolute time on weft_now's clock, that spans
 * every call it makes from now on (Go's SetDeadline, gevent's Timeout):
 * a blocking weft call that would wait past it — an fd read or write, an
 * accept, a lock, a join, a sleep, any timeout-taking call of weft — waits
 * only until it, then returns -ETIMEDOUT (weft_sleep too), whatever
 * timeout it was given. A call that need not wait (data ready, a free
 * lock) still completes after the deadline: it bounds waiting, not work.
 * at is a weft_now() time, or WEFT_FOREVER for none; the deadline it
 * replaces goes to *previous (WEFT_FOREVER for none; previous may be
 * NULL), so that a piece of code can set one and put the old one back:
 *
 *     int64_t old;
 *     weft_deadline_set(weft_now() + WEFT_SEC(30), &old);
 *     ... read a whole request, however many calls it takes ...
 *     weft_deadline_set(old, NULL);
 *
 * Each task has its own, none when it starts (a spawned task does not
 * inherit its spawner's), as each thread has; a generator's calls wait
 * under the deadline of the task or thread that resumed it. weft's own
 * waits that must finish are not cut short: a condition's wait takes its
 * lock back, and weft_cluster_run waits for its workers, whatever the
 * deadline. Returns 0, or -EINVAL (at
 * negative other than WEFT_FOREVER; nothing changed). Does not block.
 * From a task or a thread; not from a signal handler.
 */
WEFT_API int weft_deadline_set(int64_t at, int64_t *previous);

/* weft_deadline — the calling task's (thread's) deadline, or WEFT_FOREVER
 * when it has none. Does not block; from a task or a thread. */
WEFT_API int64_t weft_deadline(void);

/*
 * Scopes — a deadline around a piece of code (trio's move_on_at and
 * fail_at, Go's context.WithDeadline, asyncio.timeout_at), made of the
 * deadline above: weft_scope_enter brings the caller's deadline forward to
 * `at` (never back: nested scopes take the earliest), and weft_scope_exit
 * puts the one it found back. Every blocking call of weft inside waits at
 * most until then, as under weft_deadline_set.
 *
 *     weft_scope s;                                 // move_on_after(2 s)
 *     weft_scope_enter(&s, weft_now() + WEFT_SEC(2), WEFT_SCOPE_TIMEOUT);
 *     ssize_t n = weft_io_read(fd, buf, sizeof buf, WEFT_FOREVER);
 *     ... every wait here ends by then, with -ETIMEDOUT ...
 *     if (weft_scope_exit(&s) == -ETIMEDOUT)        // fail_after: return it
 *       log("gave up after 2 s");
 *
 * how says what a wait that the scope's deadline ends returns:
 * WEFT_SCOPE_TIMEOUT, -ETIMEDOUT, as a deadline's; WEFT_SCOPE_CANCEL,
 * -ECANCELED, as though the caller had been cancelled for the rest of the
 * scope (trio's cancel scope): code written to clean up after a
 * cancellation needs no second path for a timeout. A wait that ends at its
 * own, earlier timeout still returns -ETIMEDOUT, and a wait that an outer
 * scope's earlier deadline ends returns what that scope says. Calls that
 * need not wait still complete past the deadline: it bounds waiting, not
 * work. A task's members of a task group start inside the scopes of the
 * task that made the group (weft_group_new).
 *
 * Scopes nest, and are exited innermost first, by the task or thread that
 * entered them: the weft_scope lives until then (on the caller's stack,
 * as a rule). A weft_deadline_set inside a scope lasts until the scope
 * exits, which puts back the deadline it found; it sets the deadline,
 * later than the scope's if it says so, where a scope only brings it
 * forward.
 *
 * weft_scope_enter returns 0, or -EINVAL (s NULL, s entered already and
 * not exited, at negative other than WEFT_FOREVER, which enters a scope
 * that changes nothing, or how unknown), -EPERM (inside a generator: the
 * scope could outlive its turn); nothing changes on error.
 * weft_scope_exit returns 0 when the scope's deadline has not passed, its
 * error (-ETIMEDOUT or -ECANCELED, by how) when it has, whether or not a
 * wait saw it; or -EINVAL (s NULL, not entered, exited already, or not the
 * caller's innermost scope), -EPERM (inside a generator); nothing changes
 * on those errors. Neither blocks. From a task or a thread, not from a
 * signal handler.
 */
#define WEFT_SCOPE_TIMEOUT 0 /* waits the scope ends return -ETIMEDOUT */
#define WEFT_SCOPE_CANCEL  1 /* waits the scope ends return -ECANCELED */

typedef struct weft_scope {
  int64_t at_;               /* private */
  int64_t outer_at_;         /* private */
  struct weft_scope *outer_; /* private */
  const void *owner_;        /* private */
  uint32_t magic_;           /* private */
  bool cancels_;             /* private */
  bool outer_cancels_;       /* private */
} weft_scope;

WEFT_API int weft_scope_enter(weft_scope *s, int64_t at, int how);
WEFT_API int weft_scope_exit(weft_scope *s);

/*
 * weft_hub_dump — write every task of the calling thread's hub to fd, one
 * line each: name, id, state, what a blocked task waits on and for how
 * long, e.g.
 *     task 'worker' #4: blocked in join of task 'fetch' #7, for 1.250 s
 * The time never exceeds the truth, and falls short of it by at most the
 * coarse clock's tick (a few ms) plus 16 turns of the hub's run queue
 * (parking does not read the clock; the hub stamps parked tasks).
 * Returns 0, -EPERM (the thread runs no hub), or the errno of a failed
 * write (-EBADF, -EPIPE, …; the dump may then be partial). It never raises
 * SIGPIPE: a pipe whose reader is gone is -EPIPE (SIGPIPE is blocked in
 * the thread for the write, and a SIGPIPE the write raised is taken back;
 * one pending before is left as it was). Blocks the
 * thread, not only the task, for as long as the writes take: meant for
 * diagnostics. Call from a task.
 */
WEFT_API int weft_hub_dump(int fd);

/*
 * weft_hub_idle_after — how long a task of the calling thread's hub may
 * stay parked before the hub gives the memory of its stack back to the
 * kernel. Either way nothing is done on the way into or out of a short
 * wait: the hub looks when it is about to wait for fds or timers, and
 * every 16 turns of its run queue, at the tasks whose time has come.
 *
 *  - Hibernation, for a task spawned with weft_task_opts.hibernate that
 *    waits on an fd or sleeps (an idle connection, say), on its own stack:
 *    the live part of its stack (its frames, a few hundred bytes to a few
 *    KiB) is copied into a buffer of their size, and every page of the
 *    stack given back; when the task is next run, for whatever reason
 *    (the fd, its timeout, a cancellation), its frames are copied back in
 *    place first, so that every pointer into its stack is good again.
 *    Nothing else may use its stack meanwhile: that is the task's promise
 *    (weft_task_opts.hibernate). Waits on weft's locks, conditions,
 *    semaphores, events, barriers, channels and joins never hibernate
 *    (their queues hold nodes in the waiter's frame).
 *  - Trim, for every other task: the pages of its stack below its stack
 *    pointer, less a red zone, hold nothing live and are given back;
 *    nothing is copied, and its frames stay in place.
 *
 * A task that later needs those pages gets fresh zeroed ones, a page fault
 * each. Neither is done on the ucontext fallback (WEFT_CONTEXT=ucontext
 * builds), which cannot tell where a suspended stack ends.
 *
 * after: nanoseconds (0: at the first look after a task parks), or
 * WEFT_FOREVER: never. The default is 1 s. It applies at the next look to
 * every task parked, whenever it parked. Returns 0, -EINVAL (after
 * negative and not WEFT_FOREVER), or -EPERM (the thread runs no hub).
 * Does not block; call from a task.
 */
WEFT_API int weft_hub_idle_after(int64_t after);

/*
 * Where weft's reports go. By default weft writes its diagnostic reports
 * to stderr (fd 2); a program that owns its stderr (a daemon, a TUI, a
 * program with its own log) sends them elsewhere, process-wide:
 *   - the hub's deadlock report (weft_run returning -EDEADLK, above);
 *   - the lock-order report of WEFT_LOCKCHECK (weft/sync.h);
 *   - the reports of the watchdog that WEFT_WATCHDOG starts (weft/sync.h;
 *     a watchdog started by weft_watchdog_start writes to the fd given
 *     there, which is already the program's choice).
 * A stack overflow's message is not among them: it comes from a signal
 * handler, just before the process ends, and always goes to stderr.
 *
 * A report is delivered whole, once, by one write sequence to the fd or
 * one call of the function: a multi-line text ending in a newline.
 * Writes that fail (a closed pipe: -EPIPE, not SIGPIPE, as weft's writes
 * raise none; a full disk) lose the report and change nothing else.
 * Reports may come from any thread: from a hub's thread as weft_run gives
 * up, from a thread taking a lock (lockcheck), from the watchdog's thread.
 */

/* A report's receiver: report is the whole text, NUL-terminated, valid
 * during the call only; arg is what weft_hub_on_report was given. It runs
 * on the thread that reports, with no lock of weft's held, and may call
 * weft (a deadlocked hub's tasks are still blocked while it runs; it must
 * not block for long). Calls from several threads may overlap. */
typedef void (*weft_report_fn)(const char *report, void *arg);

/*
 * weft_hub_report_to — send every report to fd from now on (2 restores the
 * default). The fd must stay open while it is chosen; weft neither closes
 * nor dups it. Returns 0, or -EBADF (fd negative: nothing changed). Does
 * not block. From any thread or task, at any time (not from a signal
 * handler): a report already under way may still go where it was going.
 */
WEFT_API int weft_hub_report_to(int fd);

/*
 * weft_hub_on_report — give every report to fn(report, arg) from now on,
 * instead of writing it to an fd (weft_hub_report_to goes back to an fd).
 * Returns 0, or -EINVAL (fn NULL: nothing changed). Does not block. From
 * any thread or task, at any time (not from a signal handler): a report
 * already under way may still go to the previous receiver.
 */
WEFT_API int weft_hub_on_report(weft_report_fn fn, void *arg);

/*
 * Task-local storage, as pthread keys are for threads (Python: a
 * contextvars.ContextVar per task). A key names one slot in every task;
 * each task sees its own value, NULL until it sets one.
 */
typedef struct weft_task_key {
  unsigned index; /* filled by weft_task_key_create */
} weft_task_key;

/* The number of keys a process may create. */
#define WEFT_TASK_KEYS_MAX 16

/*
 * weft_task_key_create — make a key. When a task's function returns, each
 * non-NULL value it holds is set to NULL and passed to the key's
 * destructor (if not NULL), for up to 4 rounds while destructors set
 * values again. Tasks released by a deadlock do not run destructors.
 * Returns 0, -EINVAL (key NULL), or -EAGAIN (all WEFT_TASK_KEYS_MAX keys
 * exist; keys are never deleted). Any thread, any time.
 */
WEFT_API int weft_task_key_create(weft_task_key *key,
                                  void (*destructor)(void *value));

/* weft_task_local_get — the running task's value for key; NULL when unset,
 * when key was never created, or outside a task. */
WEFT_API void *weft_task_local_get(weft_task_key key);

/* weft_task_local_set — set the running task's value for key. Returns 0,
 * -EINVAL (key never created), -EPERM (outside a task), or -ENOMEM (the
 * task holds values for two other keys, and there was no memory for the
 * table of all its values; the value is not set). */
WEFT_API int weft_task_local_set(weft_task_key key, void *value);

/* weft_task_current — the running task, or NULL outside any task. */
WEFT_API weft_task *weft_task_current(void);

/* weft_task_name — t's name ("" when it has none), or NULL for NULL.
 * Lives as long as t's handle. Any task or thread. */
WEFT_API const char *weft_task_name(const weft_task *t);

/* weft_task_id — t's id, unique in the process and never 0; 0 for NULL.
 * Any task or thread. */
WEFT_API uint64_t weft_task_id(const weft_task *t);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_HUB_H */
