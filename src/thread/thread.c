/*
 * Threads. See include/weft/thread.h.
 *
 * A weft thread is a pthread running trampoline(), which runs the user's
 * function and then says it finished: under the handle's guard it sets
 * finished and wakes every joiner queued (tasks or threads, through the
 * waiter of the hub layer). The handle is shared by the thread and the
 * program (refs: 2, or 1 when nobody will join) and freed by whichever
 * lets go last: the thread when it ends, the program by
 * weft_thread_detach. A join holds a reference of its own while it runs,
 * so that a detach racing the end of a join frees nothing under it.
 *
 * Reaping: a thread with a handle is a joinable pthread, and one thread
 * (not task) joining it without a timeout at a time, the reaper, waits in
 * pthread_join rather than on a waiter: the kernel wakes it once the
 * thread has left, as pthread_join's caller is woken. (Not with a timeout:
 * pthread_clockjoin_np is glibc's alone, and ThreadSanitizer does not see
 * it, so that it takes a reaped thread's id, reused, for a second one.) A wake
 * from finish() instead comes while the thread still has its exit to run
 * (count-out, free, glibc's release of its stack), and on a busy machine
 * the joiner woken so preempts it: the thread then waits behind the
 * busy loops, often a whole tick, holding locks or its stack that the
 * joiner's next start wants (1.4x pthread_create+pthread_join per
 * start+join, busy, in medians of a driver's rounds; 0.95x so, though
 * BenchmarkThreadStartJoin/load=busy still varies: docs/sync.md). Other
 * joiners, and every task, wait on the
 * waiter as before; the handle's detach detaches the pthread unless it was
 * reaped.
 *
 * Daemons: every non-daemon thread is counted in live_nondaemon from its
 * start until its function has returned. An atexit handler, installed at
 * the first start, waits for the count to reach zero, so that a process
 * whose main thread returns or calls exit() waits for its non-daemon
 * threads first, then exits, taking the daemons with it (Python's
 * threading._shutdown). A non-daemon thread that calls exit() itself is
 * not waited for by its own exit.
 *
 * Lock order: a handle's guard, then live_lock; never the other way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <weft/thread.h>

#include "../core/guard.h"
#include "../core/sigmask.h"
#include "../hub/hub-private.h"
#include "../hub/thread-cancel.h"
#include "../hub/timer.h"
#include "../hub/waiter.h"
#include "../sync/watchdog.h"
#include "thread-private.h"

#define THREAD_MAGIC 0x74687264u /* "thrd" */
#define NAME_MAX_    32

struct weft_thread {
  uint32_t magic;
  uint32_t guard;  /* guards finished, result, joinable, joining, joiners */
  atomic_int refs; /* the thread's, the handle's if joinable, each join's */
  bool finished;   /* its function returned; read atomically outside */
  bool joinable;   /* a handle is out, not detached yet */
  bool daemon;
  bool foreign; /* not started by weft: the main thread, or another */
  weft_thread_fn fn;
  void *arg;
  void *result;
  uint64_t id;
  weft__waitq joiners;
  unsigned joining;      /* joins under way: a detach meanwhile is -EBUSY */
  sigset_t weft_blocked; /* the signals weft blocked in the creator, which
                            the thread inherits blocked (core/sigmask.h) */
  bool reaping;          /* a thread waits in pthread_join */
  bool reaped;           /* pthread joined: nothing left to detach */
  pthread_t pt;          /* joinable while joinable && !reaped */
  char name[NAME_MAX_];
};

static __thread weft_thread *self_handle;
static atomic_uint_fast64_t next_id = 1;

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv = PTHREAD_COND_INITIALIZER;
static int live_nondaemon;
static pthread_once_t shutdown_once = PTHREAD_ONCE_INIT;

static bool valid(const weft_thread *t) {
  return t && t->magic == THREAD_MAGIC;
}

static void put_ref(weft_thread *t) {
  if (atomic_fetch_sub(&t->refs, 1) == 1) {
    t->magic = 0;
    free(t);
  }
}

/* 1 when the calling thread is itself counted in live_nondaemon. */
static int counted_self(void) {
  weft_thread *me = self_handle;
  return me && !me->foreign && !me->daemon &&
         !__atomic_load_n(&me->finished, __ATOMIC_ACQUIRE);
}

void weft__thread_wait_non_daemons(void) {
  int mine = counted_self();
  pthread_mutex_lock(&live_lock);
  while (live_nondaemon > mine)
    pthread_cond_wait(&live_cv, &live_lock);
  pthread_mutex_unlock(&live_lock);
}

/* One fewer non-daemon thread; whoever waits at exit looks again (an
 * exit() from a non-daemon thread waits for the count to fall to 1, not 0,
 * so every change is broadcast). */
static void one_fewer_non_daemon(void) {
  pthread_mutex_lock(&live_lock);
  live_nondaemon--;
  pthread_cond_broadcast(&live_cv);
  pthread_mutex_unlock(&live_lock);
}

/* The thread's function has returned (or the thread leaves through
 * pthread_exit or a cancellation, which run this as a cleanup handler):
 * keep the result for the joiners, wake every one, and count the thread
 * out. */
static void finish(weft_thread *t, void *result) {
  weft__guard_lock(&t->guard);
  t->result = result;
  __atomic_store_n(&t->finished, true, __ATOMIC_RELEASE);
  weft__waiter *w;
  while ((w = weft__waitq_pop(&t->joiners)) != NULL)
    weft__waiter_wake(w, 0);
  weft__guard_unlock(&t->guard);
  if (!t->daemon)
    one_fewer_non_daemon();
  self_handle = NULL;
  put_ref(t);
}

static void finish_early(void *arg) { finish(arg, NULL); }

static void *trampoline(void *arg) {
  weft_thread *t = arg;
  self_handle = t;
  weft__thread_label = t->name; /* for the watchdog's reports */
  weft__sigmask_record_set(&t->weft_blocked);
  char os_name[16]; /* the kernel keeps 15 bytes */
  memcpy(os_name, t->name, sizeof os_name - 1);
  os_name[sizeof os_name - 1] = '\0';
  pthread_setname_np(pthread_self(), os_name);
  void *result;
  pthread_cleanup_push(finish_early, t);
  result = t->fn(t->arg);
  pthread_cleanup_pop(0);
  finish(t, result);
  return NULL;
}

/* In a child of fork(), only the forking thread exists: the count of the
 * parent's threads means nothing there. */
static void reset_in_child(void) {
  pthread_mutex_init(&live_lock, NULL);
  pthread_cond_init(&live_cv, NULL);
  live_nondaemon = counted_self();
}

static void install_shutdown(void) {
  atexit(weft__thread_wait_non_daemons);
  pthread_atfork(NULL, NULL, reset_in_child);
}

int weft_thread_start(weft_thread **out, weft_thread_fn fn, void *arg,
                      const weft_thread_opts *opts) {
  weft_thread_opts o = opts ? *opts : (weft_thread_opts){0};
  if (!fn || o.daemon < WEFT_THREAD_INHERIT ||
      o.daemon > WEFT_THREAD_NOT_DAEMON ||
      (o.stack_size && o.stack_size < (size_t)PTHREAD_STACK_MIN))
    return -EINVAL;
  weft_thread *t = calloc(1, sizeof *t);
  if (!t)
    return -ENOMEM;
  t->magic = THREAD_MAGIC;
  t->fn = fn;
  t->arg = arg;
  t->joinable = out != NULL;
  atomic_init(&t->refs, out ? 2 : 1);
  t->id = atomic_fetch_add(&next_id, 1);
  if (o.name)
    snprintf(t->name, sizeof t->name, "%s", o.name);
  else
    snprintf(t->name, sizeof t->name, "Thread-%llu", (unsigned long long)t->id);
  weft__sigmask_record_get(&t->weft_blocked);
  weft_thread *parent = self_handle;
  t->daemon = o.daemon == WEFT_THREAD_DAEMON ||
              (o.daemon == WEFT_THREAD_INHERIT && parent && parent->daemon);

  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  if (rc == 0)
    rc = pthread_attr_setdetachstate(&attr, out ? PTHREAD_CREATE_JOINABLE
                                                : PTHREAD_CREATE_DETACHED);
  if (rc == 0 && o.stack_size)
    rc = pthread_attr_setstacksize(&attr, o.stack_size);
  if (rc == 0) {
    pthread_once(&shutdown_once, install_shutdown);
    if (!t->daemon) {
      pthread_mutex_lock(&live_lock);
      live_nondaemon++;
      pthread_mutex_unlock(&live_lock);
    }
    rc = pthread_create(&t->pt, &attr, trampoline, t);
    if (rc != 0 && !t->daemon)
      one_fewer_non_daemon();
  }
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    t->magic = 0;
    free(t);
    return -rc;
  }
  if (out)
    *out = t;
  return 0;
}

static int join(weft_thread *t, int64_t timeout, void **result);

int weft_thread_join(weft_thread *t, int64_t timeout, void **result) {
  if (!valid(t) || t->foreign || weft__timeout_bad(timeout))
    return -EINVAL;
  if (t == self_handle)
    return -EDEADLK;
  /* A joiner holds a reference while it looks, so that a concurrent join
   * that succeeds cannot free the handle under it. */
  atomic_fetch_add(&t->refs, 1);
  int rc = join(t, timeout, result);
  put_ref(t);
  return rc;
}

/* The join proper, under t's guard (held again when it returns). */
static int join_locked(weft_thread *t, int64_t timeout) {
  weft_task *task = weft__task_running();
  if (!task && timeout == WEFT_FOREVER && !t->reaped && !t->reaping &&
      weft__deadline_after(WEFT_FOREVER) == INT64_MAX &&
      !weft__thread_cancellable()) {
    /* The reaper (above); t may have finished already, its pthread not
     * yet ended: waiting for that costs little, and leaves the next
     * thread started its stack. Not under a deadline, nor in a thread a
     * task group may cancel: pthread_join would heed neither. */
    t->reaping = true;
    weft__guard_unlock(&t->guard);
    int rc = pthread_join(t->pt, NULL);
    weft__guard_lock(&t->guard);
    t->reaping = false;
    t->reaped = rc == 0;
    if (rc == 0)
      return 0;
  }
  if (t->finished)
    return 0;
  if (timeout == 0)
    return -ETIMEDOUT;
  if (task && task->cancelled)
    return -ECANCELED;
  weft__waiter w;
  weft__waiter_init(&w, "thread join", t);
  weft__waitq_push_back(&t->joiners, &w);
  weft__guard_unlock(&t->guard);
  int rc = weft__waiter_wait(&w, weft__deadline_after(timeout));
  weft__guard_lock(&t->guard);
  bool woken = !w.queued;
  if (!woken) /* timed out or cancelled, and no wake came */
    weft__waitq_remove(&t->joiners, &w);
  /* As a task's join (hub/task.c): a cancellation wins over a finish that
   * woke the waiter meanwhile, a timeout does not. */
  return !woken || rc == -ECANCELED ? rc : 0;
}

static int join(weft_thread *t, int64_t timeout, void **result) {
  weft__guard_lock(&t->guard);
  if (!t->joinable) {
    weft__guard_unlock(&t->guard);
    return -EINVAL;
  }
  t->joining++;
  int rc = join_locked(t, timeout);
  if (rc == 0 && result) /* every joiner gets the result; the handle stays */
    *result = t->result;
  t->joining--;
  weft__guard_unlock(&t->guard);
  return rc;
}

int weft_thread_detach(weft_thread *t) {
  if (!valid(t) || t->foreign)
    return -EINVAL;
  weft__guard_lock(&t->guard);
  int rc = !t->joinable ? -EINVAL : t->joining > 0 ? -EBUSY : 0;
  if (rc == 0) {
    t->joinable = false;
    if (!t->reaped) /* no join can start now: joinable is false */
      pthread_detach(t->pt);
  }
  weft__guard_unlock(&t->guard);
  if (rc == 0)
    put_ref(t); /* the handle's reference */
  return rc;
}

bool weft_thread_alive(const weft_thread *t) {
  return valid(t) && !__atomic_load_n(&t->finished, __ATOMIC_ACQUIRE);
}

/* Frees a foreign thread's handle when the thread ends. */
static pthread_key_t foreign_key;
static pthread_once_t foreign_once = PTHREAD_ONCE_INIT;

static void forget_foreign(void *handle) {
  weft_thread *t = handle;
  self_handle = NULL;
  t->magic = 0;
  free(t);
}

static void make_foreign_key(void) {
  pthread_key_create(&foreign_key, forget_foreign);
}

weft_thread *weft_thread_current(void) {
  if (self_handle)
    return self_handle;
  static weft_thread main_handle;
  bool is_main = syscall(SYS_gettid) == getpid();
  weft_thread *t = is_main ? &main_handle : calloc(1, sizeof *t);
  if (!t)
    return NULL;
  if (is_main && t->magic == THREAD_MAGIC)
    return self_handle = t; /* made before, on this thread */
  t->magic = THREAD_MAGIC;
  t->foreign = true;
  atomic_init(&t->refs, 1);
  t->id = atomic_fetch_add(&next_id, 1);
  if (is_main) {
    snprintf(t->name, sizeof t->name, "MainThread");
  } else {
    snprintf(t->name, sizeof t->name, "Dummy-%llu", (unsigned long long)t->id);
    pthread_once(&foreign_once, make_foreign_key);
    pthread_setspecific(foreign_key, t);
  }
  return self_handle = t;
}

const char *weft_thread_name(const weft_thread *t) {
  return valid(t) ? t->name : NULL;
}

uint64_t weft_thread_id(const weft_thread *t) { return valid(t) ? t->id : 0; }

bool weft_thread_daemon(const weft_thread *t) { return valid(t) && t->daemon; }
