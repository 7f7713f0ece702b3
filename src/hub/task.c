/*
 * Tasks: spawn, join, detach, cancel, yield, sleep. See include/weft/hub.h
 * and hub-private.h.
 *
 * Lifetime: a task lives at the top of its own stack, from spawn until it is
 * released: by weft_task_detach once it finished, by the scheduler once it
 * finished if it was detached before, or by weft_run as it returns (the
 * finished tasks nobody detached, and those it gave up on a deadlock).
 * Joining releases nothing: any number of tasks and threads may join.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../core/guard.h"
#include "hub-private.h"
#include "thread-cancel.h"
#include "waiter.h"

static const char TASK_KIND[] = "task";

static bool valid(const weft_task *t) { return t && t->magic == TASK_MAGIC; }

/* The check join, detach and cancel start with: 0 with the running task in
 * *self, -EINVAL for a handle that is not a live task, -EPERM when the
 * caller is not a task of t's hub. */
static int check_handle(const weft_task *t, weft_task **self) {
  if (!valid(t))
    return -EINVAL;
  *self = weft__task_running();
  return *self && t->hub == (*self)->hub ? 0 : -EPERM;
}

/* Keys: index i is in use once key_count > i. Each key's destructor is
 * written before the count is published, so a reader that sees the count
 * sees the destructor. */
static _Atomic unsigned key_count;
static void (*_Atomic key_destructor[WEFT_TASK_KEYS_MAX])(void *);

int weft_task_key_create(weft_task_key *key, void (*destructor)(void *)) {
  if (!key)
    return -EINVAL;
  unsigned i = atomic_load(&key_count);
  do {
    if (i >= WEFT_TASK_KEYS_MAX)
      return -EAGAIN;
  } while (!atomic_compare_exchange_weak(&key_count, &i, i + 1));
  /* Slot i is ours; a task cannot hold a value for it before the caller
   * has the key, which it gets only now. */
  atomic_store(&key_destructor[i], destructor);
  key->index = i;
  return 0;
}

static bool key_valid(weft_task_key key) {
  return key.index < atomic_load_explicit(&key_count, memory_order_acquire);
}

static void *local_get(const weft_task *t, unsigned i) {
  if (t->locals_all)
    return t->locals_all[i];
  for (int j = 0; j < 2; j++)
    if (t->local_key[j] == i + 1)
      return t->local_value[j];
  return NULL;
}

/* Sets t's value for key index i: in its slot, or a free one (a slot
 * whose value is NULL is free), or, when both hold other keys' values,
 * in locals_all, made then. */
static int local_set(weft_task *t, unsigned i, void *value) {
  if (t->locals_all) {
    t->locals_all[i] = value;
    return 0;
  }
  int free_slot = -1;
  for (int j = 0; j < 2; j++) {
    if (t->local_key[j] == i + 1) {
      t->local_value[j] = value;
      return 0;
    }
    if (free_slot < 0 && !t->local_value[j])
      free_slot = j;
  }
  if (!value)
    return 0;
  if (free_slot >= 0) {
    t->local_key[free_slot] = (uint8_t)(i + 1);
    t->local_value[free_slot] = value;
    return 0;
  }
  void **all = calloc(WEFT_TASK_KEYS_MAX, sizeof *all);
  if (!all)
    return -ENOMEM;
  for (int j = 0; j < 2; j++)
    all[t->local_key[j] - 1] = t->local_value[j];
  all[i] = value;
  t->locals_all = all;
  return 0;
}

void *weft_task_local_get(weft_task_key key) {
  weft_task *self = weft__task_running();
  return self && key_valid(key) ? local_get(self, key.index) : NULL;
}

int weft_task_local_set(weft_task_key key, void *value) {
  if (!key_valid(key))
    return -EINVAL;
  weft_task *self = weft__task_running();
  if (!self)
    return -EPERM;
  return local_set(self, key.index, value);
}

/* Runs the destructors of t's task-local values, as pthread does. */
static void destroy_locals(weft_task *t) {
  unsigned n = atomic_load(&key_count);
  for (int round = 0; round < 4; round++) {
    bool any = false;
    for (unsigned i = 0; i < n; i++) {
      void *v = local_get(t, i);
      void (*dtor)(void *) = atomic_load(&key_destructor[i]);
      if (!v)
        continue;
      local_set(t, i, NULL); /* a value already held: cannot fail */
      if (dtor) {
        dtor(v);
        any = true;
      }
    }
    if (!any)
      break;
  }
}

/* Marks t done — finished, or abandoned by a hub that gave up on it —
 * and wakes every joiner. On t's hub's thread. */
static void wake_joiners(weft_task *t, bool abandoned) {
  t->abandoned = abandoned;
  /* An exchange, not a store, then the load of remote: Dekker's pattern,
   * which a read-modify-write keeps in order on every machine and
   * emulator (see waiter.c). */
  atomic_exchange(&t->done, true);
  weft__waiter *w;
  while ((w = weft__waitq_pop(&t->local_joiners)) != NULL)
    weft__task_wake(w->task, 0);
  if (atomic_load(&t->remote) == 0)
    return;
  weft__guard_lock(&t->join_guard);
  while ((w = weft__waitq_pop(&t->remote_joiners)) != NULL)
    weft__waiter_wake(w, 0);
  weft__guard_unlock(&t->join_guard);
}

static void task_main(weft__coro *co, int code) {
  weft_task *t = (weft_task *)co;
  (void)code;
  t->result = t->fn(t->arg);
  destroy_locals(t);
  if (t == t->hub->main)
    t->hub->main_result = t->result;
  t->state = WEFT__TASK_FINISHED;
  /* A timer left armed by its last wait (hub.c, arm_for) would keep the
   * hub from seeing that nothing can wake its tasks any more. */
  weft__timer_disarm(&t->hub->timers, &t->timer);
  t->hub->unfinished--;
  t->hub->daemons -= t->daemon;
  wake_joiners(t, false);
  weft__coro_check_stack(&t->coro);
  weft__coro_leaving = &t->coro;
  /* A detached task goes back to the scheduler, which releases it; a
   * joinable one stays for its joiners and may hand on directly. */
  weft_task *next = t->detached ? NULL : weft__task_next_direct(t->hub);
  weft__ctx_exit(&t->coro.ctx, next ? &next->active->ctx : &t->hub->ctx, 0);
}

/* A task that may hibernate has its object apart from its stack, so that
 * its whole stack can be given back while it waits, and so has one started
 * late, whose stack is chosen when it first runs; any other keeps its
 * object at the top of its stack, where its first frames are too (no
 * allocation, and one page touched). The hub keeps up to FREE_TASKS_MAX
 * objects for reuse (6 MiB at most, freed when weft_run returns), since
 * a spawn and a release on the hub's thread are common and malloc's own
 * caches did not catch them (BenchmarkSpawnJoin with every task's object
 * apart: 78 ns with this list, 110 with malloc and free), and a task
 * group's ten thousand members come and go at once (BenchmarkGroup's
 * 10,000 row: 2.5 ms a round with 64 kept, 0.9 ms with all of them).
 * Under AddressSanitizer every object goes back to free, so that a handle
 * used after its task was let go is reported. */
enum { FREE_TASKS_MAX = WEFT__TOOLS_QUARANTINE ? 0 : 16384 };

static weft_task *task_alloc(weft__hub *h) {
  weft_task *t = h->free_tasks;
  if (t) {
    h->free_tasks = t->next;
    h->free_tasks_n--;
  } else {
    t = malloc(sizeof *t);
    if (!t)
      return NULL;
  }
  /* Through a pointer: GCC would inline a memset of this size as a
   * string store (rep stos), whose start-up cost showed in every spawn
   * (BenchmarkSpawnJoin: 8 ns of 86); libc's memset has none. */
  static void *(*volatile const clear)(void *, int, size_t) = memset;
  clear(t, 0, sizeof *t);
  return t;
}

static void task_free(weft__hub *h, weft_task *t) {
  if (h->free_tasks_n + 1 > FREE_TASKS_MAX) { /* (FREE_TASKS_MAX may be 0) */
    free(t);
    return;
  }
  t->next = h->free_tasks;
  h->free_tasks = t;
  h->free_tasks_n++;
}

void weft__hub_free_tasks(weft__hub *h) {
  weft__hub_put_spare_stack(h);
  weft_task *t;
  while ((t = h->free_tasks) != NULL) {
    h->free_tasks = t->next;
    free(t);
  }
  h->free_tasks_n = 0;
}

static int spawn(weft__hub *h, weft_task **out, weft_task_fn fn, void *arg,
                 const weft_task_opts *opts, bool late) {
  if (!fn)
    return -EINVAL;
  weft_task_opts o = opts ? *opts : (weft_task_opts){0};
  if (o.idle_after < 0 && o.idle_after != WEFT_FOREVER)
    return -EINVAL;
  int queue = weft__hub_idle_queue_take(h, o.idle_after);
  if (queue < 0)
    return queue;
  weft_task *t;
  int rc;
  /* Where the machine cannot tell a saved stack pointer (ucontext), no
   * task hibernates, and none keeps its object apart for nothing. */
  o.hibernate = o.hibernate && WEFT__MACHINE_SP_KNOWN;
  if (late) {
    t = task_alloc(h);
    if (!t) {
      weft__hub_idle_queue_drop(h, (unsigned)queue);
      return -ENOMEM;
    }
    rc = weft__coro_reserve_apart(&t->coro, 0, TASK_KIND, NULL, task_main);
    if (rc < 0)
      task_free(h, t);
    else
      t->late = t->unstarted = t->before_run = true;
  } else if (o.hibernate) {
    /* Its object apart, so that its whole stack can go. */
    t = task_alloc(h);
    if (!t) {
      weft__hub_idle_queue_drop(h, (unsigned)queue);
      return -ENOMEM;
    }
    rc = weft__coro_init_apart(&t->coro, o.stack_size, TASK_KIND, o.name,
                               task_main);
    if (rc < 0)
      task_free(h, t);
  } else { /* its object at the top of its stack: no allocation */
    weft__coro *co;
    rc = weft__coro_create(&co, sizeof(weft_task), o.stack_size, TASK_KIND,
                           o.name, task_main);
    t = (weft_task *)co;
  }
  if (rc < 0) {
    weft__hub_idle_queue_drop(h, (unsigned)queue);
    return rc;
  }
  t->idle_queue = (uint8_t)queue;
  t->magic = TASK_MAGIC;
  t->hub = h;
  t->active = &t->coro;
  t->fn = fn;
  t->arg = arg;
  t->detached = out == NULL;
  t->daemon = o.daemon;
  t->hibernate = o.hibernate;
  /* A daemon spawned after the others finished is told at once. */
  t->cancelled = o.daemon && h->daemons_cancelled;
  h->daemons += o.daemon;
  weft__timer_init(&t->timer);
  t->wait_until = INT64_MAX;
  t->deadline = (weft__deadline){INT64_MAX, false, NULL};
  t->all_next = h->all;
  if (h->all)
    h->all->all_prev = t;
  h->all = t;
  h->unfinished++;
  weft__runq_push(h, t);
  if (out)
    *out = t;
  return 0;
}

int weft__task_spawn_on(weft__hub *h, weft_task **out, weft_task_fn fn,
                        void *arg, const weft_task_opts *opts) {
  return spawn(h, out, fn, arg, opts, false);
}

int weft__task_spawn_late(weft_task **out, weft_task_fn fn, void *arg) {
  weft_task *self = weft__task_running();
  if (!self)
    return -EPERM;
  return spawn(self->hub, out, fn, arg, NULL, true);
}

static void start_late(weft_task *t) {
  weft__hub *h = t->hub;
  t->unstarted = false;
  if (h->spare_stack.lo && h->spare_stack.cls == t->coro.stack.cls) {
    weft__stack spare = h->spare_stack;
    h->spare_stack.lo = NULL;
    weft__coro_start_reserved(&t->coro, &spare);
  } else {
    weft__coro_start_reserved(&t->coro, NULL);
  }
}

void weft__task_before_run(weft_task *t) {
  t->before_run = false;
  if (t->frames)
    weft__task_thaw(t);
  else
    start_late(t);
}

/* Gives back the stack of t, being released: a late task's becomes the
 * hub's spare when it has none, warm for the next late task to start on.
 * (Not under AddressSanitizer, whose quarantine of stacks would lose its
 * point.) */
static void give_back_stack(weft__hub *h, weft_task *t) {
  if (t->unstarted) { /* never ran: nothing but its stack to give back */
    weft__stack_put_unused(&t->coro.stack);
    return;
  }
  if (t->late && !h->spare_stack.lo && !WEFT__TOOLS_QUARANTINE) {
    weft__coro_destroy_keeping_stack(&t->coro);
    h->spare_stack = t->coro.stack;
    return;
  }
  weft__coro_destroy(&t->coro);
}

void weft__hub_put_spare_stack(weft__hub *h) {
  if (h->spare_stack.lo)
    weft__stack_put(&h->spare_stack);
  h->spare_stack.lo = NULL;
}

/* Waits until no remote join of t is under way: at the end of weft_run, a
 * thread or another hub may still be in one (woken, or joining a task
 * that had finished). They leave without waiting for anything of this
 * hub. (Local joins cannot be: this is the hub's thread, and none of its
 * tasks is left in one when a task is released.) */
static void await_remote_joins_left(weft_task *t) {
  while (atomic_load(&t->remote) > 0)
    sched_yield();
}

void weft__task_release(weft_task *t) {
  weft__hub *h = t->hub;
  if (!t->detached && t->state != WEFT__TASK_FINISHED)
    wake_joiners(t, true); /* abandoned (a deadlock): joiners are told */
  /* Detached or not: a join that raced the detach (the program's mistake)
   * must still not find the memory gone. One load, nearly always. */
  await_remote_joins_left(t);
  /* A thread woke it and queued it for the hub (its wait ended another
   * way meanwhile): the entry must go before the task does. */
  if (atomic_load(&t->remote_pending))
    weft__hub_drain_remote(h);
  if (t->unstamped) /* the list must not keep it */
    weft__hub_stamp_parked(h);
  if (t->idle_queued)
    weft__hub_idle_forget(h, t);
  weft__hub_idle_queue_drop(h, t->idle_queue);
  weft__timer_disarm(&h->timers, &t->timer);
  if (t->all_prev)
    t->all_prev->all_next = t->all_next;
  else
    h->all = t->all_next;
  if (t->all_next)
    t->all_next->all_prev = t->all_prev;
  if (t->state != WEFT__TASK_FINISHED) {
    h->unfinished--;
    h->daemons -= t->daemon;
  }
  if (h->main == t)
    h->main = NULL; /* its stack may come back as another task's */
  t->magic = 0;
  free(t->frames); /* released hibernated (a run that gave up) */
  free(t->locals_all);
  bool apart = t->hibernate || t->late;
  give_back_stack(h, t);
  if (apart)
    task_free(h, t);
}

int weft_task_spawn(weft_task **out, weft_task_fn fn, void *arg,
                    const weft_task_opts *opts) {
  weft_task *self = weft__task_running();
  if (!self)
    return -EPERM;
  return weft__task_spawn_on(self->hub, out, fn, arg, opts);
}

/* Who alone can end a remote join's wait: the joined task, by finishing
 * (not of the joiner's hub: the deadlock check looks no further). */
static const void *join_holder(const void *task) { return task; }

/* A join from a task of t's own hub: all on the hub's thread, no lock. */
static int join_local(weft_task *t, weft_task *self, int64_t timeout) {
  if (atomic_load_explicit(&t->done, memory_order_relaxed))
    return t->abandoned ? -EDEADLK : 0;
  if (timeout == 0)
    return -ETIMEDOUT; /* 0 polls */
  weft__waiter w;      /* only a node of local_joiners: parked directly */
  w.task = self;
  weft__waitq_push_back(&t->local_joiners, &w);
  t->local_joining++;
  self->waits_for = t;
  int rc = weft__task_park(self, "join", weft__deadline_after(timeout));
  t->local_joining--;
  bool woken = !w.queued;
  if (!woken) /* timed out or cancelled, and no wake came */
    weft__waitq_remove(&t->local_joiners, &w);
  /* A cancellation wins even over a finish that woke the joiner before it
   * ran again: the finish wakes every joiner, so nothing is to be passed
   * on, and the caller asked to stop. A timeout loses to a finish:
   * finished is finished. */
  if (!woken || rc == -ECANCELED)
    return rc;
  return t->abandoned ? -EDEADLK : 0;
}

/* A join from a plain thread or a task of another hub; the caller counted
 * itself in t->remote before. */
static int join_remote(weft_task *t, int64_t timeout) {
  if (atomic_load(&t->done)) /* after the count: see hub-private.h */
    return t->abandoned ? -EDEADLK : 0;
  if (timeout == 0)
    return -ETIMEDOUT;
  weft__guard_lock(&t->join_guard);
  /* Acquire: the finish may have set done without the guard (it takes
   * the guard only after, to wake), so the guard alone orders nothing. */
  if (atomic_load_explicit(&t->done, memory_order_acquire)) {
    weft__guard_unlock(&t->join_guard);
    return t->abandoned ? -EDEADLK : 0;
  }
  weft__waiter w;
  weft__waiter_init(&w, "join", t);
  w.holder = join_holder;
  weft__waitq_push_back(&t->remote_joiners, &w);
  weft__guard_unlock(&t->join_guard);
  int rc = weft__waiter_wait(&w, weft__deadline_after(timeout));
  weft__guard_lock(&t->join_guard);
  bool woken = !w.queued;
  if (!woken)
    weft__waitq_remove(&t->remote_joiners, &w);
  weft__guard_unlock(&t->join_guard);
  /* As a local join: a cancellation wins, a timeout does not. */
  if (!woken || rc == -ECANCELED)
    return rc;
  return t->abandoned ? -EDEADLK : 0;
}

int weft_task_join(weft_task *t, int64_t timeout, void **result) {
  if (weft__timeout_bad(timeout) || !valid(t))
    return -EINVAL;
  weft_task *self = weft__task_running();
  if (t == self)
    return -EDEADLK;
  int rc;
  if (self && self->hub == t->hub) {
    if (t->detached)
      return -EINVAL; /* best effort: a detached handle is gone */
    rc = join_local(t, self, timeout);
    if (rc == 0 && result)
      *result = t->result;
    return rc;
  }
  atomic_fetch_add(&t->remote, 1);
  rc = join_remote(t, timeout);
  if (rc == 0 && result)
    *result = t->result;
  atomic_fetch_sub(&t->remote, 1); /* the last touch of t */
  return rc;
}

bool weft_task_alive(const weft_task *t) {
  return valid(t) &&
         !atomic_load_explicit(&((weft_task *)t)->done, memory_order_acquire);
}

int weft_task_detach(weft_task *t) {
  weft_task *self;
  int rc = check_handle(t, &self);
  if (rc < 0)
    return rc;
  if (t->detached)
    return -EINVAL;
  if (t->local_joining > 0 || atomic_load(&t->remote) > 0)
    return -EBUSY;
  t->detached = true;
  if (t->state == WEFT__TASK_FINISHED)
    weft__task_release(t);
  return 0;
}

int weft_task_cancel(weft_task *t) {
  weft_task *self;
  int rc = check_handle(t, &self);
  if (rc < 0)
    return rc;
  if (t->state == WEFT__TASK_FINISHED)
    return -ESRCH;
  weft__task_cancel_wake(t);
  return 0;
}

void weft__task_cancel_wake(weft_task *t) {
  /* A shield holds a cancellation back, but for a hub that gives up: its
   * tasks must leave every wait now. */
  if (t->shield_depth > 0 && !t->hub->giving_up) {
    t->cancel_held = true;
    return;
  }
  t->cancelled = true;
  /* A wait that a thread or another hub already ended (its waiter woken,
   * the task not yet queued by the hub's look at its remote queue) has
   * completed: the wake stands, as it would had the hub looked first. */
  if (t->state == WEFT__TASK_PARKED && t->waiter &&
      weft__waiter_woken(t->waiter) && !t->hub->giving_up)
    return;
  if (!t->shielded || t->hub->giving_up)
    weft__task_wake(t, -ECANCELED);
}

bool weft__task_interrupt(weft_task *t, int code) {
  if (t->state != WEFT__TASK_PARKED || t->shielded || t->shield_depth > 0 ||
      (t->waiter && weft__waiter_woken(t->waiter)))
    return false;
  weft__task_wake(t, code);
  return true;
}

/* A shield belongs to the task's own function: one raised in a generator
 * the task resumed would outlive the generator's turn (it may yield inside
 * it, or be resumed by another task or thread). */
static int shield_caller(weft_task **self) {
  *self = weft__task_running();
  if (!*self) /* a plain thread: a task group may cancel it */
    return weft__coro_running ? -EPERM : 1;
  return weft__coro_running == &(*self)->coro ? 0 : -EPERM;
}

/* A plain thread's shields (thread-cancel.h): the same rules. */
static int shield_thread(void) {
  weft__thread_cancel *c = &weft__thread_cancel_self;
  if (c->shield_depth == UINT_MAX)
    return -EOVERFLOW;
  c->shield_depth++;
  return 0;
}

static int unshield_thread(void) {
  weft__thread_cancel *c = &weft__thread_cancel_self;
  if (c->shield_depth == 0)
    return -EINVAL;
  c->shield_depth--;
  return weft__thread_was_cancelled() ? -ECANCELED : 0;
}

static int shield_task(weft_task *self) {
  if (self->shield_depth == UINT_MAX)
    return -EOVERFLOW;
  if (self->shield_depth++ == 0 && !self->hub->giving_up) {
    self->cancel_held = self->cancelled;
    self->cancelled = false;
  }
  return 0;
}

static int unshield_task(weft_task *self) {
  if (self->shield_depth == 0)
    return -EINVAL;
  if (--self->shield_depth == 0 && self->cancel_held) {
    self->cancel_held = false;
    self->cancelled = true;
  }
  return self->cancelled || self->cancel_held ? -ECANCELED : 0;
}

int weft_task_shield(void) {
  weft_task *self;
  int rc = shield_caller(&self);
  if (rc != 0)
    return rc < 0 ? rc : shield_thread();
  return shield_task(self);
}

int weft_task_unshield(void) {
  weft_task *self;
  int rc = shield_caller(&self);
  if (rc != 0)
    return rc < 0 ? rc : unshield_thread();
  return unshield_task(self);
}

int weft__shield(void) {
  weft_task *self = weft__task_running();
  return self ? shield_task(self) : shield_thread();
}

int weft__unshield(void) {
  weft_task *self = weft__task_running();
  return self ? unshield_task(self) : unshield_thread();
}

int weft_yield(void) {
  weft_task *self = weft__task_running();
  if (!self)
    return -EPERM;
  int rc = weft__task_may_block(self);
  if (rc < 0)
    return rc;
  weft__runq_push(self->hub, self);
  weft__task_switch_out(self);
  /* Cancelled while it waited its turn: a yield completes nothing, so the
   * cancellation wins. */
  return self->cancelled ? -ECANCELED : 0;
}

int weft_sleep(int64_t ns) {
  weft_task *self = weft__task_running();
  if (!self)
    return -EPERM;
  if (ns < 0)
    return -EINVAL;
  if (ns == 0)
    return weft_yield();
  int64_t until = weft__deadline_after_slow(ns);
  int64_t cut = weft__deadline_clamp(until);
  int rc = weft__task_park(self, "sleep", cut);
  /* A sleep that ran its full length succeeded; one that the task's
   * deadline cut short failed (weft_deadline_set). */
  return rc == -ETIMEDOUT && cut == until ? 0 : rc;
}

weft_task *weft_task_current(void) { return weft__task_running(); }

const char *weft_task_name(const weft_task *t) {
  return valid(t) ? t->coro.name : NULL;
}

uint64_t weft_task_id(const weft_task *t) { return valid(t) ? t->coro.id : 0; }
