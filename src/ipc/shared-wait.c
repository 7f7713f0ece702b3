/*
 * Waiting on shared words (shared-wait.h): threads sleep on the futex;
 * tasks go through the watcher.
 *
 * The watcher is one plain thread per process, started by the first task
 * that waits, which sleeps in futex_waitv on every (word, value) a task
 * waits for, plus a private word of its own (`changed`) that a task bumps
 * when it adds to the set, so that the watcher sleeps again on the new
 * set. When futex_waitv returns, the watcher wakes the tasks of each word
 * that was woken or no longer holds its value, and drops that entry.
 *
 * The table of entries and each entry's queue of waiters are guarded by
 * `mu`, which is the lock L of the waiter protocol (waiter.h): a task
 * queues itself under mu, the watcher wakes it under mu, and a task whose
 * wait failed looks under mu whether it was woken meanwhile.
 *
 * A wake meant for a sleeper in another process may reach the watcher on
 * behalf of tasks that have left meanwhile (their wait timed out): a
 * futex wake of one sleeper (a lock's release, a semaphore's) would then
 * be lost to the process that needed it. So a watcher woken on a word
 * whose tasks have all gone passes the wake on to the word's next sleeper.
 *
 * Lock order: mu is taken alone; wakes under it take hub and waiter
 * internals only.
 */
#define _GNU_SOURCE
#include "shared-wait.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/cpu.h"
#include "../core/service-thread.h"
#include "../hub/hub-private.h"
#include "../hub/thread-cancel.h"
#include "../hub/timer.h"
#include "../hub/waiter.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

/* No sleep on a shared word lasts longer than RELOOK: the waiter then
 * looks again by itself. A wake goes to one sleeper, which may be killed
 * before it acts on it (takes the lock it was woken for, passes the wake
 * on); the others would then sleep for good, with the lock free. So a
 * sleeper's death delays the others by RELOOK at most. */
#define RELOOK WEFT_MS(100)

/* futex_waitv takes at most 128 words; one is the watcher's own. */
enum { WATCH_MAX = 127 };

/* A task looking at a word, where the watcher cannot serve, looks again
 * after POLL_FIRST, and doubles the interval up to POLL_MAX. */
#define POLL_FIRST WEFT_US(20)
#define POLL_MAX   WEFT_MS(1)

struct entry {
  _Atomic uint32_t *word;
  uint32_t value; /* what the tasks saw: they wait while the word holds it */
  weft__waitq waiters;
};

enum watcher_state { NOT_STARTED, RUNNING, UNAVAILABLE };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static enum watcher_state state = NOT_STARTED; /* under mu */
static struct entry table[WATCH_MAX];          /* under mu */
static int entries;                            /* under mu */
static _Atomic uint32_t changed;               /* bumped when the set grows */

static long futex_waitv(struct futex_waitv *v, unsigned n) {
  return syscall(SYS_futex_waitv, v, n, 0, NULL, CLOCK_MONOTONIC);
}

static void timespec_of(int64_t deadline, struct timespec *ts) {
  ts->tv_sec = (time_t)(deadline / 1000000000);
  ts->tv_nsec = (long)(deadline % 1000000000);
}

int weft__shared_futex_wake(_Atomic uint32_t *word, int n) {
  long woken = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
  return woken > 0 ? (int)woken : 0;
}

/* Wakes every task of table[i] and drops the entry (the last one moves
 * into its place). Called with mu held. */
static void release_entry(int i) {
  weft__waiter *w;
  while ((w = weft__waitq_pop(&table[i].waiters)) != NULL)
    weft__waiter_wake(w, 0);
  table[i] = table[--entries];
}

static int find_entry(_Atomic uint32_t *word, uint32_t value) {
  for (int i = 0; i < entries; i++)
    if (table[i].word == word && table[i].value == value)
      return i;
  return -1;
}

static void *watch(void *arg) {
  (void)arg;
  struct futex_waitv v[WATCH_MAX + 1] = {0};
  for (;;) {
    pthread_mutex_lock(&mu);
    v[0].uaddr = (uintptr_t)&changed;
    v[0].val = atomic_load(&changed);
    v[0].flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
    int n = entries;
    for (int i = 0; i < n; i++) {
      v[i + 1].uaddr = (uintptr_t)table[i].word;
      v[i + 1].val = table[i].value;
      v[i + 1].flags = FUTEX_32;
    }
    pthread_mutex_unlock(&mu);

    long woken = futex_waitv(v, (unsigned)n + 1);

    pthread_mutex_lock(&mu);
    /* futex_waitv names one word woken, but a wake on another word of the
     * set may have reached it too (it is dequeued from all of them only
     * after). A word whose tasks have all left meanwhile may so have
     * taken a wake meant for another process's sleeper: pass one on, for
     * each such word, whether it says so or not (a sleeper survives a
     * spurious wake; a lost one would sleep for good). */
    for (int k = 1; k <= n; k++) {
      _Atomic uint32_t *word = (_Atomic uint32_t *)(uintptr_t)v[k].uaddr;
      int i = find_entry(word, (uint32_t)v[k].val);
      if (i < 0)
        weft__shared_futex_wake(word, 1);
      else if (k == woken)
        release_entry(i);
    }
    for (int i = 0; i < entries;) {
      if (atomic_load(table[i].word) != table[i].value)
        release_entry(i); /* moves another entry to i */
      else
        i++;
    }
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

/* In the child of a fork, the watcher's thread is not there, nor are the
 * tasks it watched for: start afresh. */
static void reset_in_child(void) {
  pthread_mutex_init(&mu, NULL);
  state = NOT_STARTED;
  entries = 0;
}

static void install_reset(void) { pthread_atfork(NULL, NULL, reset_in_child); }

/* Starts the watcher if it is not running and can be. Called with mu
 * held; returns whether it runs. */
static bool watcher_runs(void) {
  if (state == NOT_STARTED) {
    state = UNAVAILABLE;
    /* An empty set is -EINVAL where the call exists. */
    if (futex_waitv(NULL, 0) < 0 && errno == EINVAL &&
        weft__service_thread_start(watch, NULL) == 0) {
      state = RUNNING;
      static pthread_once_t once = PTHREAD_ONCE_INIT;
      pthread_once(&once, install_reset);
    }
  }
  return state == RUNNING;
}

/* A task's wait where the watcher cannot serve: looks again at growing
 * intervals. */
static int task_poll(weft_task *self, _Atomic uint32_t *word, uint32_t expected,
                     int64_t deadline) {
  for (int64_t step = POLL_FIRST;;
       step = step * 2 < POLL_MAX ? step * 2 : POLL_MAX) {
    if (atomic_load(word) != expected)
      return 0;
    int64_t now = weft__now();
    if (now >= deadline)
      return weft__timed_out(deadline);
    int64_t until = deadline - now > step ? now + step : deadline;
    int rc = weft__task_park(self, "shared memory", until);
    if (rc == -ECANCELED)
      return rc;
  }
}

static int task_wait(weft_task *self, _Atomic uint32_t *word, uint32_t expected,
                     int64_t deadline) {
  if (self->cancelled)
    return -ECANCELED;
  pthread_mutex_lock(&mu);
  int i = -1;
  if (watcher_runs()) {
    i = find_entry(word, expected);
    if (i < 0 && entries < WATCH_MAX) {
      i = entries++;
      table[i].word = word;
      table[i].value = expected;
      table[i].waiters = (weft__waitq){0};
      atomic_fetch_add(&changed, 1);
      /* Private, as the watcher waits on it. */
      syscall(SYS_futex, &changed, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
  }
  if (i < 0) {
    pthread_mutex_unlock(&mu);
    return task_poll(self, word, expected, deadline);
  }
  weft__waiter w;
  weft__waiter_init(&w, "shared memory", word);
  weft__waitq_push_back(&table[i].waiters, &w);
  pthread_mutex_unlock(&mu);

  int rc = weft__waiter_wait(&w, deadline);

  /* Taken even after a wake: the watcher may still be inside mu. */
  pthread_mutex_lock(&mu);
  if (rc < 0 && w.queued) {
    /* The entry has not moved while w was in it: find it by its word. */
    int at = find_entry(word, expected);
    weft__waitq_remove(&table[at].waiters, &w);
    if (weft__waitq_empty(&table[at].waiters))
      table[at] = table[--entries];
  } else {
    rc = 0; /* woken, maybe as the wait failed: look again */
  }
  pthread_mutex_unlock(&mu);
  return rc;
}

static int thread_wait(_Atomic uint32_t *word, uint32_t expected,
                       int64_t deadline) {
  struct timespec ts, *tp = NULL;
  if (deadline != INT64_MAX) {
    timespec_of(deadline, &ts);
    tp = &ts;
  }
  /* BITSET takes an absolute CLOCK_MONOTONIC deadline. Not private: the
   * word is shared with other processes. */
  if (syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, tp, NULL,
              FUTEX_BITSET_MATCH_ANY) < 0 &&
      errno == ETIMEDOUT)
    return -ETIMEDOUT;
  return 0;
}

int weft__shared_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                            int64_t deadline) {
  if (atomic_load(word) != expected)
    return 0;
  int64_t relook = weft__now() + RELOOK;
  bool capped = relook < deadline;
  weft_task *self = weft__task_running();
  int rc = self ? task_wait(self, word, expected, capped ? relook : deadline)
                : thread_wait(word, expected, capped ? relook : deadline);
  if (!self && weft__thread_cancelled())
    return -ECANCELED; /* a task group's thread member: seen at a re-look */
  if (rc == -ETIMEDOUT)
    return capped ? 0 : weft__timed_out(deadline);
  return rc;
}

/* A thread spins on a shared word before it sleeps, for a time that
 * adapts to how its spins fare, between SPIN_MIN and SPIN_MAX: doubled
 * when the word changed within it, halved when it did not. Where a
 * process waits for another running on another CPU (a queue's producer
 * and consumer, two CPUs), the spin catches the change and no side makes
 * a system call; where the processes outnumber the CPUs, the one it waits
 * for is seldom running meanwhile, and the spin shrinks to a few hundred
 * nanoseconds (a fixed 5 us spin made a queue of 4 producers and 4
 * consumers on 2 CPUs 1.5 to 2 times slower; no spin made one producer and
 * one consumer 2 to 4 times slower). */
#define SPIN_MIN   WEFT_NS(250)
#define SPIN_START WEFT_US(2)
#define SPIN_MAX   WEFT_US(20)

static __thread int64_t spin_for = SPIN_START;

/* Spins while same(word, seen), for the thread's spin time; returns
 * whether it stopped being the same, and adapts the spin time to it. */
static bool spin_while(bool (*same)(const void *, uint64_t), const void *word,
                       uint64_t seen) {
  int64_t end = weft__now() + spin_for;
  for (int i = 1;; i++) {
    if (!same(word, seen)) {
      spin_for = spin_for * 2 < SPIN_MAX ? spin_for * 2 : SPIN_MAX;
      return true;
    }
    weft__cpu_relax();
    if (i % 16 == 0 && weft__now() >= end) {
      spin_for = spin_for / 2 > SPIN_MIN ? spin_for / 2 : SPIN_MIN;
      return false;
    }
  }
}

static bool same32(const void *word, uint64_t seen) {
  return atomic_load_explicit((_Atomic uint32_t *)word, memory_order_acquire) ==
         (uint32_t)seen;
}

static bool same64(const void *word, uint64_t seen) {
  return atomic_load_explicit((_Atomic uint64_t *)word, memory_order_acquire) ==
         seen;
}

bool weft__shared_may_spin(void) {
  return !weft__task_running() && weft__cpu_spinning_pays();
}

bool weft__shared_spin_while(_Atomic uint64_t *word, uint64_t seen) {
  return weft__shared_may_spin() && spin_while(same64, word, seen);
}

int weft__shared_word_wait(weft__shared_word *w, uint32_t expected,
                           int64_t deadline) {
  if (weft__shared_may_spin() && spin_while(same32, &w->value, expected))
    return 0;
  return weft__shared_word_sleep(w, expected, deadline);
}

int weft__shared_word_sleep(weft__shared_word *w, uint32_t expected,
                            int64_t deadline) {
  /* Sequentially consistent, against the waker's change then load of
   * sleepers (Dekker's pattern): either it sees this sleeper, or the
   * futex sees its change. */
  atomic_fetch_add(&w->sleepers, 1);
  int rc = weft__shared_futex_wait(&w->value, expected, deadline);
  atomic_fetch_sub(&w->sleepers, 1);
  return rc;
}

int weft__shared_word_wake(weft__shared_word *w, int n) {
  return atomic_load(&w->sleepers) ? weft__shared_futex_wake(&w->value, n) : 0;
}
