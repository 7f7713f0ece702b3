/*
 * The hub: weft_run and the scheduler loop, parking and waking, and the
 * deadlock report. See hub-private.h for the structures.
 *
 * Fairness: each turn of the loop runs the tasks that were runnable when
 * the turn began, once each, in the order they became runnable; tasks made
 * runnable meanwhile (spawned, woken, yielding) wait for the next turn.
 * A task that leaves switches straight to the next task of the turn, and
 * back to the scheduler only when the turn is over; and when the
 * scheduler would have nothing to do between turns (no timer armed, no fd
 * waited on) it starts the next turn itself. The order is the same either
 * way; only two switches through the scheduler are saved.
 * Between turns the hub fires due timers and, when tasks wait on fds, polls
 * them without waiting, so no stream of wake-ups can starve timers or I/O;
 * it waits in the poller only when nothing is runnable. A task waiting on
 * an fd can still be woken, so it rules out a deadlock as an armed timer
 * does, unless it is a daemon: daemons watch (a signal, to dump the hub)
 * rather than serve the others. A task parked on a waiter (a lock, say)
 * may be woken by another thread or hub, so it rules out a deadlock too.
 * Tasks that other threads wake come through the remote queue, drained
 * between turns and whenever the poller returns (waiter.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub-private.h"
#include "report.h"
#include "waiter.h"

WEFT__TLS weft__hub *weft__hub_current;

void weft__runq_push(weft__hub *h, weft_task *t) {
  t->state = WEFT__TASK_RUNNABLE;
  t->next = NULL;
  if (h->runq_tail)
    h->runq_tail->next = t;
  else
    h->runq_head = t;
  h->runq_tail = t;
  h->runq_len++;
}

/* A pop warms the cache for the tasks after the one it hands out: the
 * stack of the next one, resumed once this one has run for a while, and
 * the context (the coroutine it is suspended in) of the one after, so that
 * the next pop finds its stack pointer at hand. With many tasks parked
 * long (a server's idle connections, a thousand clients), their stacks are
 * cold, and a switch into one would otherwise wait for memory twice. A
 * short queue's few tasks stay warm, and their pops skip it. */
enum { PREFETCH_MIN_QUEUE = 8 };
static weft_task *runq_pop(weft__hub *h) {
  weft_task *t = h->runq_head;
  if (t) {
    weft_task *next = t->next;
    if (next && h->runq_len > PREFETCH_MIN_QUEUE) {
      weft__ctx_prefetch(&next->active->ctx);
      if (next->next)
        __builtin_prefetch(&next->next->active->ctx);
    }
    h->runq_head = t->next;
    if (!h->runq_head)
      h->runq_tail = NULL;
    h->runq_len--;
  }
  return t;
}

/* Makes t the running task of h. */
static inline void enter(weft__hub *h, weft_task *t) {
  if (__builtin_expect(t->before_run, 0))
    weft__task_before_run(t);
  h->current = t;
  t->state = WEFT__TASK_RUNNING;
  weft__coro_running = t->active;
}

/* Whether the fds that only daemons wait on are due a look between busy
 * turns: one turn in DAEMON_POLL_TURNS, so that a daemon watching for a
 * signal (to dump the hub) neither slows every turn down with a system
 * call nor misses its signal while the hub stays busy. */
enum { DAEMON_POLL_TURNS = 64 };
static inline bool daemon_poll_due(const weft__hub *h) {
  return h->turns % DAEMON_POLL_TURNS == 0;
}

/* Whether the scheduler has nothing to do between two turns: no timer to
 * fire, no fd to poll, no task woken by another thread to queue, no
 * daemons to cancel. Then the next turn may start without it. */
static inline bool idle_between_turns(const weft__hub *h) {
  return h->timers.len == 0 && h->fd_waiters == h->daemon_fd_waiters &&
         !atomic_load_explicit(&((weft__hub *)h)->remote,
                               memory_order_relaxed) &&
         (h->daemon_fd_waiters == 0 || !daemon_poll_due(h)) &&
         (h->unfinished != h->daemons || h->daemons_cancelled);
}

void weft__hub_stamp_parked(weft__hub *h) {
  if (!h->unstamped)
    return;
  int64_t now = weft__now_coarse();
  for (weft_task *t = h->unstamped; t; t = t->unstamped_next) {
    t->parked_at = now;
    t->unstamped = false;
    if (!t->idle_queued || t->idle_next) /* not the tail already */
      weft__hub_idle_stamped(h, t);
  }
  h->unstamped = NULL;
  if (weft__hub_idle_due(h) <= now)
    weft__hub_idle_sweep(h, now);
}

/* How many turns begun without the scheduler between two stamps. */
enum { STAMP_TURNS = 16 };

weft_task *weft__task_next_direct(weft__hub *h) {
  if (!h->runq_head)
    return NULL;
  if (h->turn_left == 0) {
    if (!idle_between_turns(h))
      return NULL;
    if (++h->turns % STAMP_TURNS == 0)
      weft__hub_stamp_parked(h);
    h->turn_left = h->runq_len;
  }
  h->turn_left--;
  weft_task *next = runq_pop(h);
  enter(h, next);
  return next;
}

int weft__task_switch_out(weft_task *t) {
  /* The task itself, or a generator it resumed that blocks in its place. */
  weft__coro *self = weft__coro_running;
  t->active = self;
  weft__coro_check_stack(self);
  weft__coro_leaving = self;
  weft_task *next = weft__task_next_direct(t->hub);
  if (next == t)
    return 0; /* it yielded, and its turn came at once */
  return weft__ctx_switch(&self->ctx, next ? &next->active->ctx : &t->hub->ctx,
                          0);
}

/* Timers are kept lazily, as Go keeps its own: a wait that ends before its
 * deadline leaves its task's timer armed, and the task's next wait with a
 * deadline no earlier reuses it as it is; a timer that fires for a task no
 * longer parked is dropped, and one that fires for a task parked with a
 * later deadline moves to that deadline (fire_timers). So a connection
 * that waits with the same long timeout before each request touches the
 * heap about once per timeout, not twice per request. A wait without a
 * deadline disarms the task's timer: a hub whose tasks all wait without
 * one has no timer armed, which its deadlock check relies on. */
static int arm_for(weft__hub *h, weft_task *t, int64_t deadline) {
  if (deadline == INT64_MAX) {
    weft__timer_disarm(&h->timers, &t->timer);
    return 0;
  }
  if (!weft__timer_armed(&t->timer))
    return weft__timer_arm(&h->timers, &t->timer, deadline);
  if (t->timer.deadline > deadline) {
    /* Cannot fail: the disarm leaves room in the heap. */
    weft__timer_disarm(&h->timers, &t->timer);
    return weft__timer_arm(&h->timers, &t->timer, deadline);
  }
  return 0; /* armed earlier: fire_timers moves it on */
}

int weft__task_park(weft_task *t, const char *what, int64_t deadline) {
  int rc = weft__task_may_block(t);
  weft__hub *h = t->hub;
  if (rc == 0)
    rc = arm_for(h, t, deadline);
  if (rc < 0) {
    t->waits_for = NULL;
    return rc;
  }
  t->wait_until = deadline;
  t->state = WEFT__TASK_PARKED;
  t->waits_on = what;
  if (!t->unstamped) { /* stamped later (weft__hub_stamp_parked) */
    t->unstamped = true;
    t->unstamped_next = h->unstamped;
    h->unstamped = t;
  }
  t->wake_code = 0;
  weft__task_switch_out(t);
  t->waits_on = NULL;
  t->waits_for = NULL;
  return t->wake_code;
}

void weft__task_wake(weft_task *t, int code) {
  if (t->state != WEFT__TASK_PARKED)
    return;
  /* Its timer stays armed, lazily: see arm_for. */
  t->wake_code = code;
  weft__runq_push(t->hub, t);
}

/* Runs t until it, or a task it switched to directly, blocks, yields or
 * finishes and hands back to the scheduler. */
static void run_task(weft__hub *h, weft_task *t) {
  enter(h, t);
  weft__ctx_switch(&h->ctx, &t->active->ctx, 0);
  weft_task *last = h->current; /* the task that handed back */
  weft__coro_running = NULL;
  h->current = NULL;
  if (last->state == WEFT__TASK_FINISHED && last->detached)
    weft__task_release(last);
}

/* Fires the due timers: each wakes its task with -ETIMEDOUT (or
 * -ECANCELED: weft__timed_out) if the task is parked in a wait whose
 * deadline has come; a task parked with a later
 * deadline has its timer moved there, and the timer of a task no longer
 * parked is dropped (see arm_for). */
static void fire_timers(weft__hub *h) {
  if (!weft__timer_first(&h->timers))
    return; /* no clock read when nothing is armed */
  int64_t now = weft__now();
  weft__timer *tm;
  while ((tm = weft__timer_pop_due(&h->timers, now)) != NULL) {
    weft_task *t = (weft_task *)((char *)tm - offsetof(weft_task, timer));
    if (t->state != WEFT__TASK_PARKED || t->wait_until == INT64_MAX)
      continue;
    if (t->wait_until <= now)
      weft__task_wake(t, weft__deadline_code(&t->deadline, t->wait_until));
    else /* cannot fail: the pop left room in the heap */
      weft__timer_arm(&h->timers, tm, t->wait_until);
  }
}

static const char *state_name(const weft_task *t) {
  switch (t->state) {
  case WEFT__TASK_RUNNABLE:
    return "runnable";
  case WEFT__TASK_RUNNING:
    return "running";
  case WEFT__TASK_PARKED:
    return "blocked";
  default:
    return "finished";
  }
}

/* One line about t: "task 'name' #id: blocked in join of task 'x' #n,
 * for 1.250 s". */
/* "task 'name' #id", or "task #id" for a task without a name. */
static void label(const weft_task *t, char *buf, size_t cap) {
  size_t n = weft__coro_describe(&t->coro, buf, cap);
  if (t->coro.name[0])
    snprintf(buf + n, cap - n, " #%llu", (unsigned long long)t->coro.id);
}

static void describe_task(const weft_task *t, int64_t now, char *line,
                          size_t cap) {
  char who[64], whom[72] = "";
  label(t, who, sizeof who);
  if (t->state != WEFT__TASK_PARKED) {
    snprintf(line, cap, "  %s: %s\n", who, state_name(t));
    return;
  }
  if (t->waits_for) {
    char name[64];
    label(t->waits_for, name, sizeof name);
    snprintf(whom, sizeof whom, " of %s", name);
  } else if (t->waiter && t->waiter->name) {
    snprintf(whom, sizeof whom, " '%.40s'", t->waiter->name);
  }
  const weft_task *owner =
      t->waiter && t->waiter->holder
          ? (const weft_task *)t->waiter->holder(t->waiter->object)
          : NULL;
  char held[80] = "";
  if (owner == t->waits_for) /* a join: named already */
    owner = NULL;
  for (const weft_task *o = t->hub->all; o && owner; o = o->all_next)
    if (o == owner) { /* a task of this hub: name it */
      char name[64];
      label(o, name, sizeof name);
      snprintf(held, sizeof held, " held by %s", name);
      break;
    }
  snprintf(line, cap, "  %s: blocked in %s%s%s, for %.3f s\n", who,
           t->waits_on ? t->waits_on : "?", whom, held,
           (double)(now - t->parked_at) / 1e9);
}

/* Whether every task parked on a waiter waits for one that only a task of
 * this hub can end (an RLock that task owns, a task it joins), and no such
 * owner waits on an fd. With nothing runnable, no timer and no fd to wake
 * anyone, those owners are parked too (on a waiter, or in a join of a task
 * of this hub), and none of them can run: a deadlock, though no thread or
 * other hub is involved. An owner parked on an fd (a daemon watching one,
 * which alone does not rule out a report) may yet be woken by it. */
static bool waits_only_on_own_tasks(const weft__hub *h) {
  for (const weft_task *t = h->all; t; t = t->all_next) {
    if (t->state != WEFT__TASK_PARKED || !t->waiter)
      continue;
    const weft__waiter *w = t->waiter;
    const weft_task *owner =
        w->holder ? (const weft_task *)w->holder(w->object) : NULL;
    bool own = false;
    for (const weft_task *o = h->all; o && owner && !own; o = o->all_next)
      own = o == owner && !(o->state == WEFT__TASK_PARKED && o->fd_parked);
    if (!own)
      return false;
  }
  return true;
}

/* Names every parked task and what it waits on. */
static void report_deadlock(weft__hub *h) {
  weft__hub_stamp_parked(h);
  char line[256];
  struct weft__report_text text = {0};
  weft__report_add(
      &text,
      "weft: deadlock: every task is blocked and nothing can wake one\n");
  int64_t now = weft__now_coarse();
  for (weft_task *t = h->all; t; t = t->all_next) {
    if (t->state != WEFT__TASK_PARKED)
      continue;
    describe_task(t, now, line, sizeof line);
    weft__report_add(&text, line);
  }
  weft__report_send(&text);
}

static int write_whole(int fd, const char *s) {
  return weft__write_all(fd, s, strlen(s));
}

int weft_hub_dump(int fd) {
  weft__hub *h = weft__hub_current;
  if (!h)
    return -EPERM;
  size_t tasks = 0, parked = 0;
  for (weft_task *t = h->all; t; t = t->all_next) {
    tasks++;
    parked += t->state == WEFT__TASK_PARKED;
  }
  char line[256];
  snprintf(line, sizeof line,
           "weft: hub: %zu tasks, %zu runnable, %zu blocked, %zu timers "
           "armed\n",
           tasks, h->runq_len, parked, h->timers.len);
  int rc = write_whole(fd, line);
  weft__hub_stamp_parked(h);
  int64_t now = weft__now_coarse();
  for (weft_task *t = h->all; t && rc == 0; t = t->all_next) {
    describe_task(t, now, line, sizeof line);
    rc = write_whole(fd, line);
  }
  return rc;
}

/* Waits in the poller until the deadline at most, and wakes the tasks whose
 * fds are ready. */
static int poll_fds(weft__hub *h, int64_t deadline) {
  weft__poll_event ev[64];
  int n = weft__poller_wait(h->poller, ev, 64, deadline);
  /* The waiters of all the reports are fetched from memory at once, not
   * one miss after another. */
  for (int i = 0; i < n; i++)
    weft__hub_fd_prefetch(h, ev[i].fd);
  for (int i = 0; i < n; i++)
    weft__hub_fd_ready(h, ev[i].fd, ev[i].events);
  return n < 0 ? n : 0;
}

/* Every task but the daemons has finished, or the run gives up: cancel
 * the daemons, so that they clean up and finish too. */
static void cancel_daemons(weft__hub *h) {
  h->daemons_cancelled = true;
  for (weft_task *t = h->all; t; t = t->all_next)
    if (t->daemon && t->state != WEFT__TASK_FINISHED)
      weft__task_cancel_wake(t);
}

/* The run gives up (a deadlock, a failed poller). Tasks parked on a
 * waiter must not be released as they are: their waiter sits in a
 * primitive's queue that outlives the run, where a thread would wake it
 * later; nor may tasks parked in a join of a task of this hub, whose node
 * sits in that task's list of joiners. So from now on no wait on a waiter
 * may begin, shielded or not, and the tasks parked on one or in a join are
 * cancelled and run until none is left (a cancelled task's waits fail at
 * once, so this ends), with the daemons, which hold resources of weft's
 * own (the dump's signalfd), and any task they wake. The other blocked
 * tasks are released as they are. */
static void give_up(weft__hub *h) {
  h->giving_up = true;
  if (!h->daemons_cancelled)
    cancel_daemons(h);
  for (;;) {
    weft__hub_drain_remote(h);
    for (weft_task *t = h->all; t; t = t->all_next)
      if (t->state == WEFT__TASK_PARKED && (t->waiter || t->waits_for))
        weft__task_cancel_wake(t);
    if (!h->runq_len)
      break;
    for (h->turn_left = h->runq_len; h->turn_left > 0;) {
      h->turn_left--;
      run_task(h, runq_pop(h));
    }
  }
}

static int loop(weft__hub *h) {
  while (h->unfinished > 0) {
    h->turns++;
    for (h->turn_left = h->runq_len; h->turn_left > 0;) {
      h->turn_left--;
      run_task(h, runq_pop(h));
    }
    /* After the turn, before the poller may wait: a task that parked in
     * it is stamped with a time before the wait, not after (stamped at the
     * next turn's start, a task parked for the whole wait read "0 s"). */
    weft__hub_stamp_parked(h);
    fire_timers(h);
    if (atomic_load_explicit(&h->remote, memory_order_relaxed))
      weft__hub_drain_remote(h);
    if (h->unfinished == 0)
      break;
    if (h->unfinished == h->daemons && !h->daemons_cancelled)
      cancel_daemons(h);
    if (h->runq_len) {
      /* Busy: still look at the fds between turns, without waiting, so
       * that a stream of runnable tasks cannot starve I/O. */
      if (h->fd_waiters > h->daemon_fd_waiters ||
          (h->daemon_fd_waiters && daemon_poll_due(h))) {
        int rc = poll_fds(h, 0);
        if (rc < 0)
          return rc;
      }
      continue;
    }
    weft__timer *first = weft__timer_first(&h->timers);
    if (!first && h->fd_waiters == h->daemon_fd_waiters &&
        (h->waiter_waits == 0 || waits_only_on_own_tasks(h))) {
      report_deadlock(h);
      return -EDEADLK;
    }
    /* Idle stacks to trim: now, or when the first is due. */
    int64_t idle_due = weft__hub_idle_due(h);
    if (idle_due != INT64_MAX) {
      int64_t now = weft__now_coarse();
      if (idle_due <= now) {
        weft__hub_idle_sweep(h, now);
        idle_due = weft__hub_idle_due(h);
      }
    }
    /* About to block: a thread that wakes a task now must kick the poller
     * (see waiter.c); what came before the flag is drained first. */
    /* An exchange, not a store: the pattern is Dekker's, and a
     * sequentially consistent store then load, compiled to a release store
     * and an acquire load, is what qemu-user on x86 let pass each other (a
     * task woken by a thread, its hub asleep, never kicked); a
     * read-modify-write orders them everywhere. */
    atomic_exchange(&h->polling, true);
    int64_t deadline = first ? first->deadline : INT64_MAX;
    if (idle_due < deadline) /* wake to trim idle stacks then */
      deadline = idle_due;
    if (atomic_load(&h->remote))
      deadline = 0;
    int rc = poll_fds(h, deadline);
    atomic_store(&h->polling, false);
    weft__hub_drain_remote(h);
    if (rc < 0)
      return rc;
  }
  return 0;
}

void weft__hub_forget_in_child(void) {
  /* Forgotten first: closing the poller's fds must not reach back into the
   * hub (a close through weft's hooks forgets the fd in the current hub).
   * The fds would otherwise stay open in the child for its whole life (a
   * cluster's workers are such children). The hubs of the parent's other
   * threads are out of reach here. */
  weft__hub *h = weft__hub_current;
  weft__hub_current = NULL;
  weft__coro_running = NULL;
  if (h)
    weft__poller_close_in_child(h->poller);
}

/* Every child of fork() forgets its thread's hub at once, before any other
 * handler of weft's or the program's runs: the hub's epoll instance is
 * shared with the parent, so a change made to it in the child (an fd
 * forgotten by a close, a wait armed) would change the parent's. Registered
 * when the library loads, so that this handler is the first of weft's. */
__attribute__((constructor)) static void forget_hubs_in_children(void) {
  pthread_atfork(NULL, NULL, weft__hub_forget_in_child);
}

int weft_run(weft_task_fn fn, void *arg, void **result) {
  if (!fn)
    return -EINVAL;
  if (weft__hub_current || weft__coro_running)
    return -EBUSY;
  weft__hub h;
  memset(&h, 0, sizeof h);
  h.idle[0].after = WEFT__IDLE_AFTER;
  h.idle_queues = 1;
  weft__timer_heap_init(&h.timers);
  int rc = weft__poller_new(&h.poller);
  if (rc < 0)
    return rc;
  weft__thread_prepare();
  weft__hub_current = &h;
  weft_task *main_task;
  rc = weft__task_spawn_on(&h, &main_task, fn, arg,
                           &(weft_task_opts){.name = "main"});
  if (rc == 0) {
    h.main = main_task;
    rc = loop(&h);
    if (rc == 0 && result)
      *result = h.main_result;
    if (rc < 0)
      give_up(&h);
  }
  /* Release whatever is left: the finished main task, and on a deadlock
   * the blocked tasks. */
  while (h.all)
    weft__task_release(h.all);
  weft__hub_free_tasks(&h);
  weft__hub_current = NULL;
  weft__timer_heap_fini(&h.timers);
  weft__poller_free(h.poller);
  free(h.fdw);
  return rc;
}
