/*
 * The hub and its tasks, shared by the files of the hub layer.
 *
 * One hub per thread that calls weft_run. Its scheduler runs on the
 * thread's own stack (hub->ctx); each task runs on its own, and switches
 * back to the scheduler whenever it blocks, yields or finishes. Everything
 * here is touched only by the hub's thread, but for the remote queue (and
 * the flags that go with it), which other threads push woken tasks onto:
 * no locks.
 *
 * Task states:
 *   RUNNABLE  in the run queue
 *   RUNNING   the one running now (h->current)
 *   PARKED    blocked: in a sleep, a join; woken by weft__task_wake
 *   FINISHED  returned; kept for its joiners until detached, or released
 *             at once if detached already
 *
 * Joins are the exception to "only the hub's thread": any task of any hub,
 * and any plain thread, may join a task. Joins from the task's own hub
 * (local) take no lock: their joiners park in local_joiners, and the task
 * wakes them as it finishes, all on the hub's thread. A join from another
 * thread (remote) first counts itself in `remote`, then reads `done`; the
 * finishing task first sets `done`, then reads `remote`, and only when a
 * remote join is under way takes join_guard to wake the remote_joiners
 * (Dekker's pattern, sequentially consistent on both sides: either the
 * join sees done, or the finish sees the join). So a task that only its
 * own hub joins pays one atomic exchange for its joins. The handle is
 * released only on the hub's thread (detach, the scheduler, the end of
 * weft_run), never while a join is under way (local_joining and remote
 * count them).
 */
#ifndef WEFT_HUB_PRIVATE_H
#define WEFT_HUB_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <weft/hub.h>

#include "../core/coro.h"
#include "poller.h"
#include "timer.h"

enum weft__task_state {
  WEFT__TASK_RUNNABLE,
  WEFT__TASK_RUNNING,
  WEFT__TASK_PARKED,
  WEFT__TASK_FINISHED,
};

typedef struct weft__hub weft__hub;

/* An idle queue (idle.c): tasks parked and stamped, in the order of their
 * parked_at, to be hibernated or trimmed `after` ns after it. Queue 0 is
 * the hub's (weft_hub_idle_after); each other one serves the tasks of one
 * weft_task_opts.idle_after while any lives (`tasks`; 0: free). */
#define WEFT__IDLE_QUEUES 8
#define WEFT__IDLE_NEVER  0xff
typedef struct weft__idle_queue {
  weft_task *head, *tail;
  int64_t after;
  unsigned tasks;
} weft__idle_queue;

/* The deadline a task or thread waits under (deadline.c): weft_deadline_set
 * sets `at`, a scope (weft_scope_enter) brings it forward for a while and
 * says what a wait it ends returns; `scope` is the innermost scope open,
 * which alone may be exited. */
typedef struct weft__deadline {
  int64_t at;   /* absolute; INT64_MAX: none */
  bool cancels; /* a wait that `at` ends returns -ECANCELED, not -ETIMEDOUT */
  weft_scope *scope;
} weft__deadline;

/* What a wait whose time ran out at `end` returns under deadline d:
 * -ECANCELED when end is d's and d cancels (a WEFT_SCOPE_CANCEL scope's),
 * else -ETIMEDOUT. */
static inline int weft__deadline_code(const weft__deadline *d, int64_t end) {
  return d->cancels && end >= d->at ? -ECANCELED : -ETIMEDOUT;
}

/* The caller's deadline, and what a wait it ends returns, copied out, or
 * copied in (its scopes stay its own): how a task group hands its
 * maker's deadline to its members (deadline.c). */
void weft__deadline_get(weft__deadline *out);
void weft__deadline_inherit(const weft__deadline *from);

struct weft_task {
  weft__coro coro; /* first: the task lives at the top of its stack */
  uint32_t magic;  /* TASK_MAGIC while the handle is valid */
  weft__hub *hub;
  weft__coro *active; /* what runs on the task's behalf: the task itself, or
                         a generator it resumed, which blocked in a call of
                         the hub; resumed where that coroutine left off */
  weft_task_fn fn;
  void *arg;
  void *result;
  int state;
  int wake_code; /* what the parked call returns when woken */
  bool detached;
  bool cancelled; /* waits fail with -ECANCELED (unless shielded) */
  bool daemon;    /* does not keep weft_run going; cancelled at the end */
  bool shielded;  /* parked in a wait a cancellation must not end (a
                     condition taking its lock back) */
  /* weft_task_shield's scopes: while shield_depth > 0 a cancellation is
   * held back in cancel_held (cancelled stays false), and it takes effect
   * when the outermost shield ends. */
  unsigned shield_depth;
  bool cancel_held;
  /* Joins (see above). result and abandoned are written before done. */
  _Atomic bool done;      /* finished, or abandoned */
  bool abandoned;         /* released unfinished by a hub that gave up */
  unsigned local_joining; /* joins from its hub under way */
  struct weft__waitq local_joiners;  /* parked in them; the hub's thread */
  _Atomic unsigned remote;           /* joins from elsewhere under way */
  uint32_t join_guard;               /* guards remote_joiners */
  struct weft__waitq remote_joiners; /* waiting in them */
  const char *waits_on;       /* what a parked task waits in, for reports */
  const weft_task *waits_for; /* the task it joins, for reports */
  int64_t parked_at;          /* about when it parked (see stamp) */
  bool unstamped;             /* parked, not yet stamped: in the */
  /* In the hub's idle queue (idle.c) from its stamp until a sweep looks
   * at it: the tasks there are in the order of their parked_at. */
  bool idle_queued;
  /* Which of the hub's idle queues it goes to (weft_task_opts.idle_after),
   * or WEFT__IDLE_NEVER. */
  uint8_t idle_queue;
  bool hibernate; /* may be hibernated (weft_task_opts) */
  /* Started late (weft__task_spawn_late): its object apart, its stack
   * reserved at the spawn and its context made when it first runs
   * (unstarted until then), on the hub's spare stack if there is one. */
  bool late;
  bool unstarted;
  /* Something is to be done before it next runs: its frames thawed
   * (hibernated) or its first context made (unstarted). One flag, so
   * that a switch looks once (hub.c, enter). */
  bool before_run;
  /* Hibernated (idle.c): the live frames of its stack, copied here while
   * the stack's pages are given back; copied back when it next runs. */
  void *frames;
  size_t frames_len;
  weft_task *unstamped_next; /* hub's list of such tasks (see unstamped) */
  weft_task *idle_prev, *idle_next; /* the idle queue (see idle_queued) */
  /* Its timer, armed lazily (weft__task_park): while it is parked with a
   * deadline, armed at that deadline or before it; otherwise it may still
   * be armed, from an earlier wait, and is dropped when it fires. */
  weft__timer timer;
  int64_t wait_until;      /* the deadline of the wait it is parked in, or
                              INT64_MAX */
  weft__deadline deadline; /* weft_deadline_set's and its scopes' */
  /* Task-local values (task.c): up to two kept inline, each beside its
   * key's index + 1 (0: a free slot), or every key's in locals_all once a
   * third was set: most tasks hold none or one (the cluster's), and an
   * idle connection's object should be small. */
  void *local_value[2];
  void **locals_all; /* WEFT_TASK_KEYS_MAX values, or NULL */
  /* The small fields together, so that the object has no holes (an idle
   * connection's object is most of what it costs). */
  uint8_t local_key[2];
  bool fd_parked;             /* parked in a wait on an fd, which the
                                 poller may end */
  atomic_bool remote_pending; /* in its hub's remote queue now */
  unsigned ready; /* what the poller reported while it waited on an fd */
  struct weft__waiter *waiter;    /* the waiter it is parked on, if any */
  weft_task *remote_next;         /* in its hub's remote queue */
  weft_task *next;                /* in the run queue */
  weft_task *all_prev, *all_next; /* in the hub's list of live tasks */
};

/* Who waits on one fd: one reader and one writer at most (a second of
 * either kind gets -EBUSY, as gevent refuses two greenlets on one
 * socket). */
typedef struct weft__fd_waiters {
  weft_task *reader, *writer;
  /* A guess, per direction (0 read, 1 write), that the next call would
   * block: how many more calls should wait before they try. See
   * weft__hub_fd_wait_first. */
  uint8_t wait_first[2];
  /* The kind of call whose try blocked (the caller's number, never 0): a
   * guess holds only for calls of that kind. */
  uint8_t wait_first_kind[2];
  bool exclusive; /* the reader asked for WEFT__POLL_EXCLUSIVE */
} weft__fd_waiters;

struct weft__hub {
  weft__ctx ctx; /* the scheduler, on the thread's stack */
  weft_task *runq_head, *runq_tail;
  size_t runq_len;
  size_t turn_left; /* tasks of this turn not yet run: the first turn_left
                       of the run queue */
  unsigned turns;   /* turns begun, counting on (wraps) */
  weft__timer_heap timers;
  weft__poller *poller;
  weft_task *all;         /* every task not yet released */
  size_t unfinished;      /* tasks not finished, daemons included */
  size_t daemons;         /* daemon tasks not finished */
  bool daemons_cancelled; /* the others all finished: daemons were told */
  bool giving_up;         /* the run gives up: no wait on a waiter may begin */
  weft_task *current;
  weft__fd_waiters *fdw; /* by fd, grown on demand */
  int fdw_cap;
  size_t fd_waiters; /* tasks parked on an fd: they can still be woken, so
                        no deadlock while any exist */
  size_t daemon_fd_waiters; /* those of them that are daemons: watchers (a
                               signal, a dump) that do not count against a
                               deadlock of the others */
  size_t waiter_waits;      /* tasks parked on a waiter: a thread or another
                               hub may wake them, so no deadlock while any
                               exist */
  weft_task *unstamped;     /* tasks parked since the last stamp */
  weft__idle_queue idle[WEFT__IDLE_QUEUES]; /* idle.c */
  unsigned idle_queues;        /* idle[idle_queues..] have never been used */
  _Atomic(weft_task *) remote; /* tasks other threads woke, newest first */
  atomic_bool polling;   /* the hub may be blocked in its poller: kick it */
  weft_task *free_tasks; /* task objects for reuse (task.c), by next */
  unsigned free_tasks_n;
  /* The stack of the last late task released, warm, for the next late
   * task to start on (task.c); lo NULL when none. */
  weft__stack spare_stack;
  weft_task *main;   /* weft_run's task; its result is kept here, */
  void *main_result; /* as another task may join and release it */
};

#define TASK_MAGIC 0x7461736bu /* "task" */

/* Frees the task objects the hub kept for reuse (at the end of its run). */
void weft__hub_free_tasks(weft__hub *h);

/* weft_task_spawn for one of many tasks made at once that each run
 * briefly (a task group's members): the same contract, but the task's
 * stack is reserved and left untouched, and it starts on the stack of
 * such a task that ended before it, warm, when there is one. Ten thousand
 * of them then touch one stack, not ten thousand. Default stack size. */
int weft__task_spawn_late(weft_task **out, weft_task_fn fn, void *arg);

/* What t needs before it runs, t->before_run being set: its frames
 * thawed, or its first context made (hub.c, enter). */
void weft__task_before_run(weft_task *t);

/* weft_task_shield and weft_task_unshield for the calling task or
 * thread, inside a generator too: for weft's own cleanup waits, which
 * end before the caller goes on, so that no shield outlives a turn. */
int weft__shield(void);
int weft__unshield(void);

/* Gives the hub's spare stack back to the cache. */
void weft__hub_put_spare_stack(weft__hub *h);

extern WEFT__TLS weft__hub *weft__hub_current;

/* The running task of this thread's hub, or NULL. */
static inline weft_task *weft__task_running(void) {
  weft__hub *h = weft__hub_current;
  return h ? h->current : NULL;
}

/* Idle stacks (idle.c). A task parked for idle_after or longer is
 * hibernated (its frames copied out, its whole stack given back to the
 * kernel) if nothing else may use its stack while it waits, or else
 * trimmed (the pages below its stack pointer given back): a sweep, when the hub
 * stamps parked tasks or is about to wait in its poller, takes the tasks due
 * from the head of the idle queue, where the stamp put them in the order they
 * parked. A task that ran meanwhile just leaves the queue: its next stamp puts
 * it back at the tail. So a park costs nothing more, and a sweep only the tasks
 * it looks at. */
#define WEFT__IDLE_AFTER WEFT_SEC(1) /* a hub's idle_after, at first */
void weft__hub_idle_stamped(weft__hub *h, weft_task *t);
/* The queue for tasks spawned with weft_task_opts.idle_after `after`
 * (0: the hub's; WEFT_FOREVER: WEFT__IDLE_NEVER), counting the task in.
 * -ENOSPC when WEFT__IDLE_QUEUES - 1 other thresholds are in use. */
static inline int weft__hub_idle_queue_take(weft__hub *h, int64_t after) {
  extern int weft__hub_idle_queue_take_own(weft__hub * h, int64_t after);
  return after == 0 ? 0 : weft__hub_idle_queue_take_own(h, after);
}
/* Counts a task of queue q out, as it is freed. */
static inline void weft__hub_idle_queue_drop(weft__hub *h, unsigned q) {
  if (q != 0 && q != WEFT__IDLE_NEVER)
    h->idle[q].tasks--;
}
void weft__hub_idle_forget(weft__hub *h, weft_task *t); /* if idle_queued */
/* Copies a hibernated task's frames back into its stack (before it runs). */
void weft__task_thaw(weft_task *t);

/* When the next sweep is due (INT64_MAX: none is). */
static inline int64_t weft__idle_queue_due(const weft__idle_queue *q) {
  const weft_task *t = q->head;
  if (!t || t->parked_at > INT64_MAX - q->after)
    return INT64_MAX;
  return t->parked_at + q->after;
}
static inline int64_t weft__hub_idle_due(const weft__hub *h) {
  int64_t due = INT64_MAX;
  for (unsigned i = 0; i < h->idle_queues; i++) {
    int64_t d = weft__idle_queue_due(&h->idle[i]);
    due = d < due ? d : due;
  }
  return due;
}
/* Hibernates or trims the tasks parked since now - idle_after or before. */
void weft__hub_idle_sweep(weft__hub *h, int64_t now);

/* Stamps the tasks that parked since the last stamp with the time now, as
 * their parked_at. A park does not read the clock (about a tenth of what
 * two tasks handing a value back and forth cost): the hub stamps every
 * STAMP_TURNS turns, at every pass of its scheduler (after the turn,
 * before the poller may wait), and before it reports. So a blocked task's
 * time in reports may fall short of the truth by at most STAMP_TURNS
 * turns (plus the coarse clock's tick, a few ms), never exceed it. */
void weft__hub_stamp_parked(weft__hub *h);

/* In a child of fork() (every child: hub.c runs it as a fork handler):
 * the thread runs outside any hub and coroutine from here on, and may start
 * a hub of its own; a child forked in a task that goes on in the task's
 * code runs it as plain thread code. What the old hub held stays
 * unreachable in the child's copy of memory; its poller's fds are closed. */
void weft__hub_forget_in_child(void);

/* Marks t cancelled and wakes it with -ECANCELED if it is parked, unless
 * its wait is shielded (it then sees the cancellation at its next wait). */
void weft__task_cancel_wake(weft_task *t);

/* Ends the wait t is parked in with code (negative), as a cancellation
 * would end it, but without cancelling t: its next waits wait as before.
 * Not a wait a shield protects, nor one already ended by a wake that t
 * has not yet seen. Returns whether it ended one. For weft's own layers,
 * on t's hub's thread (the cluster ends its idle connections' waits so).
 */
bool weft__task_interrupt(weft_task *t, int code);

/* Whether the running task t may block now: 0, or -ECANCELED once it is
 * cancelled (unless shielded). (It may block from inside a generator it
 * resumed: the hub then suspends and resumes the generator's context,
 * t->active.) */
static inline int weft__task_may_block(const weft_task *t) {
  return t->cancelled && (!t->shielded || t->hub->giving_up) ? -ECANCELED : 0;
}

/* Blocks the running task t until weft__task_wake, or until the deadline
 * (absolute ns; INT64_MAX: none), when it returns -ETIMEDOUT. `what` says
 * what it waits in, for deadlock reports and dumps. Returns -ECANCELED at
 * once if t is cancelled. */
int weft__task_park(weft_task *t, const char *what, int64_t deadline);

/* Makes a parked task runnable; its park returns code. No effect on a task
 * that is not parked. */
void weft__task_wake(weft_task *t, int code);

/* The task a leaving task switches to directly, made the running one, or
 * NULL when the scheduler must run first (the turn is over and there is
 * work between turns, or nothing is runnable). */
weft_task *weft__task_next_direct(weft__hub *h);

/* Queues t behind every runnable task. */
void weft__runq_push(weft__hub *h, weft_task *t);

/* Switches from the running task t to the next task of the turn, or to
 * the scheduler, which will not queue it again: the caller put it wherever
 * it belongs (the run queue, a wait list) before. Returns the code it is
 * resumed with. */
int weft__task_switch_out(weft_task *t);

/* Parks the running task t until fd has one of events (WEFT__POLL_IN,
 * WEFT__POLL_OUT), the deadline passes (-ETIMEDOUT), t is cancelled
 * (-ECANCELED) or the fd is closed through weft__hub_close_fd (-EBADF).
 * Returns the events that were ready (errors and hang-ups count as both),
 * or a negative errno; -EBUSY when another task waits on fd the same way,
 * -EBADF when fd cannot be watched. */
int weft__hub_wait_fd(weft_task *t, int fd, unsigned events, int64_t deadline);

/* Whether a call of kind (the caller's number for a kind of call: read,
 * accept, ...; never 0) on fd in direction dir (WEFT__POLL_IN or _OUT)
 * should wait for readiness before it tries the system call, because the
 * calls of that kind before it would have blocked: in a ping-pong the read
 * after a write nearly always does, and waiting first saves a system call
 * that would only say EAGAIN. Only a guess: a wrong one costs a wait that
 * returns at once, or a try that blocks, never a lost wake-up. It must
 * never turn an error the call would report at once into a wait, so it
 * holds only for the kind of call that blocked (a read that blocked says
 * nothing of an accept on the same fd, which may fail at once), and the
 * caller drops it for a file weft has not used in a task before
 * (weft__hub_fd_tried with blocked false). After a try that would have
 * blocked, the next 7 calls wait first, then one tries again. */
bool weft__hub_fd_wait_first(weft__hub *h, int fd, unsigned dir, unsigned kind);

/* Tells the guess how the first try of a call of kind on fd went. */
void weft__hub_fd_tried(weft__hub *h, int fd, unsigned dir, unsigned kind,
                        bool blocked);

/* Tells the poller what a system call that a task of h just tried on fd
 * found: the fd is not ready in direction dir (WEFT__POLL_IN or _OUT), as
 * EAGAIN says, or as a read shorter than asked says of a stream
 * (short_read). Called in the same run of the task as the system call,
 * with no wait between the two; it lets the next wait on fd arm it without
 * a system call (see poller-epoll.c). */
void weft__hub_fd_not_ready(weft__hub *h, int fd, unsigned dir,
                            bool short_read);

/* Whether a wait on fd for dir would cost no system call and wait for
 * readiness still to come (see weft__poller_known_not_ready). */
bool weft__hub_fd_known_not_ready(weft__hub *h, int fd, unsigned dir);

/* A caller saw fd ready in direction dir (see weft__poller_maybe_ready). */
void weft__hub_fd_maybe_ready(weft__hub *h, int fd, unsigned dir);

/* fd names a file just made (accept(2)'s, a socket about to connect): the
 * number may have been closed behind weft's back (close(2)) and reused,
 * so the next wait on it makes sure the poller watches the new file. */
void weft__hub_fd_opened(weft__hub *h, int fd);

/* Asks the cache for what weft__hub_fd_ready(h, fd, …) will touch: the
 * waiters of fd, whose structs a long wait let go cold. A hint. */
void weft__hub_fd_prefetch(weft__hub *h, int fd);

/* Wakes the tasks waiting on fd for what got (WEFT__POLL_*) reports. */
void weft__hub_fd_ready(weft__hub *h, int fd, unsigned got);

/* Wakes every task of h waiting on fd with -EBADF and stops watching it. */
void weft__hub_forget_fd(weft__hub *h, int fd);

/* Queues t, which a waker on another thread woke (its waiter says so),
 * for its hub to make runnable, and kicks the hub if it may be blocked in
 * its poller. Any thread; the caller holds the lock of the primitive t
 * waits in, which keeps t and its hub alive. */
void weft__hub_remote_wake(weft__hub *h, weft_task *t);

/* Makes runnable the tasks other threads woke since the last call. */
void weft__hub_drain_remote(weft__hub *h);

/* Spawns a task on h (weft_task_spawn does it on the caller's hub). */
int weft__task_spawn_on(weft__hub *h, weft_task **out, weft_task_fn fn,
                        void *arg, const weft_task_opts *opts);

/* Releases a task that will never run again: finished, or abandoned by a
 * deadlocked hub. */
void weft__task_release(weft_task *t);

#endif
