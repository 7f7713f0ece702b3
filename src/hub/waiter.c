/*
 * The waiter, and the remote queue through which a thread wakes a task of
 * another hub. See waiter.h for the protocol.
 *
 * Remote queue: a stack of tasks (newest first) that any thread pushes
 * onto with a compare-and-swap and the hub takes whole with an exchange. A
 * task is in it at most once (remote_pending); the hub, when it takes a
 * task off, looks at the task's waiter as it is then, and makes the task
 * runnable only if it is still parked on a waiter that was woken. So an
 * entry that comes late (the task's wait had already ended by a timeout,
 * and the task moved on) wakes nothing; and a wake that finds the task
 * already queued needs no entry of its own, since the hub's look comes
 * after it. The ordering that makes this hold: the waker stores woken,
 * then tests-and-sets remote_pending; the hub clears remote_pending, then
 * loads woken; all sequentially consistent, so one of the two sees the
 * other.
 *
 * Kick: a hub about to block in its poller sets polling, then looks at the
 * queue once more; a waker pushes, then reads polling and kicks the poller
 * if set. Again sequentially consistent: either the hub sees the entry, or
 * the waker sees the flag. Each side's first step is a read-modify-write
 * (the push's compare-and-swap, the flag's exchange; the other handshake's
 * exchanges of remote_pending), which keeps the load after it in order on
 * every machine and emulator, where a plain store would not always.
 */
#define _GNU_SOURCE
#include "waiter.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/coro.h"
#include "../core/cpu.h"
#include "hub-private.h"
#include "spin.h"
#include "thread-cancel.h"

enum { PAUSES_PER_CLOCK = 16 };

/* Sleeps while *word is `expect`, until a wake or the absolute monotonic
 * deadline (INT64_MAX: none). Spurious returns are the caller's to loop on. */
static void futex_wait_until(_Atomic uint32_t *word, uint32_t expect,
                             int64_t deadline) {
  struct timespec ts, *tp = NULL;
  if (deadline != INT64_MAX) {
    ts.tv_sec = (time_t)(deadline / 1000000000);
    ts.tv_nsec = (long)(deadline % 1000000000);
    tp = &ts;
  }
  /* BITSET takes an absolute CLOCK_MONOTONIC deadline. */
  syscall(SYS_futex, word, FUTEX_WAIT_BITSET_PRIVATE, expect, tp, NULL,
          FUTEX_BITSET_MATCH_ANY);
}

/* Wakes one thread sleeping on word. The word may belong to a waiter whose
 * wait has already returned: a futex wake touches no memory, and every
 * futex sleeper must survive a spurious wake. */
static void futex_wake_one(_Atomic uint32_t *word) {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* A thread's wait: spins a moment first (a wake that comes within it costs
 * no system call on either side; spin.h says how long), unless the waiter
 * says not to (which another thread may say while it spins: it then
 * stops), then sleeps on the futex word. */
static int thread_wait(weft__waiter *w, int64_t deadline) {
  int64_t start = weft__now();
  bool teach = !__atomic_load_n(&w->no_spin, __ATOMIC_RELAXED);
  int64_t budget = teach ? weft__spin_budget() : 0;
  int64_t spin_end = start + budget < deadline ? start + budget : deadline;
  bool spun = false;
  for (int i = 1; budget > 0 && !spun; i++) {
    if (weft__waiter_woken(w)) {
      weft__spin_paid(budget);
      return w->code;
    }
    if (__atomic_load_n(&w->no_spin, __ATOMIC_RELAXED))
      break;
    weft__cpu_relax();
    if (i % PAUSES_PER_CLOCK == 0 && weft__now() >= spin_end)
      spun = true;
  }
  int cpu = -1;
  /* A cancellable thread (thread-cancel.h) says where it sleeps, then
   * looks for its cancellation at each turn of the loop, and once more
   * after it said it sleeps: a canceller that came between the two found
   * the word not yet SLEEPING, and could not wake it. A wait that must
   * finish (a condition taking its lock back) is not cancelled. */
  bool cancellable = weft__thread_cancellable() && !w->shielded;
  if (cancellable)
    weft__thread_cancel_sleeping(w);
  int rc;
  for (;;) {
    uint32_t s = atomic_load_explicit(&w->woken, memory_order_acquire);
    if (s == WAITER_WOKEN) {
      if (teach)
        weft__spin_slept(weft__now() - start, spun,
                         cpu >= 0 && w->waker_cpu == cpu);
      rc = w->code;
      break;
    }
    if (cancellable && weft__thread_cancelled()) {
      rc = -ECANCELED;
      break;
    }
    if (deadline != INT64_MAX && weft__now() >= deadline) {
      rc = weft__timed_out(deadline);
      break;
    }
    /* Say that it sleeps, so that the waker knows to wake the futex. */
    if (s == WAITER_WAITING &&
        !atomic_compare_exchange_strong(&w->woken, &s, WAITER_SLEEPING))
      continue; /* woken meanwhile */
    if (cancellable && weft__thread_cancelled())
      continue; /* the loop's look sees it */
    cpu = sched_getcpu();
    futex_wait_until(&w->woken, WAITER_SLEEPING, deadline);
  }
  if (cancellable)
    weft__thread_cancel_sleeping(NULL);
  return rc;
}

int weft__waiter_wait(weft__waiter *w, int64_t deadline) {
  weft_task *t = w->task;
  if (t) {
    weft__hub *h = t->hub;
    t->waiter = w;
    t->shielded = w->shielded;
    h->waiter_waits++;
    int rc = weft__task_park(t, w->what, deadline);
    h->waiter_waits--;
    t->shielded = false;
    t->waiter = NULL;
    return rc;
  }
  return thread_wait(w, deadline);
}

void weft__waiter_await(weft__waiter *w) {
  while (weft__waiter_wait(w, INT64_MAX) < 0) {
  }
}

void weft__waiter_wake(weft__waiter *w, int code) {
  w->code = code;
  weft_task *t = w->task;
  if (!t) {
    /* A thread that sleeps learns where its waker ran (spin.h). Its
     * waiter outlives this store as it does the code's: the wait returns
     * only once woken, and a failed one is done with the waiter only
     * after this wake (the protocol in waiter.h). A thread that starts to
     * sleep just after this look learns nothing from this wake. */
    if (atomic_load_explicit(&w->woken, memory_order_relaxed) ==
        WAITER_SLEEPING)
      w->waker_cpu = sched_getcpu();
    /* A thread still spinning needs no system call. */
    if (atomic_exchange_explicit(&w->woken, WAITER_WOKEN,
                                 memory_order_release) == WAITER_SLEEPING)
      futex_wake_one(&w->woken);
  } else if (t->hub == weft__hub_current) {
    /* Parked (it queued w, then parked at once), on this very thread,
     * which alone reads woken: no ordering with another thread to keep. */
    atomic_store_explicit(&w->woken, WAITER_WOKEN, memory_order_relaxed);
    weft__task_wake(t, code);
  } else {
    /* Sequentially consistent: the remote queue's handshake (above). */
    atomic_store(&w->woken, WAITER_WOKEN);
    weft__hub_remote_wake(t->hub, t);
  }
}

void weft__hub_remote_wake(weft__hub *h, weft_task *t) {
  if (atomic_exchange(&t->remote_pending, true))
    return; /* queued already; the hub's look will see this wake too */
  weft_task *head = atomic_load(&h->remote);
  do
    t->remote_next = head;
  while (!atomic_compare_exchange_weak(&h->remote, &head, t));
  if (atomic_load(&h->polling))
    weft__poller_wake(h->poller);
}

void weft__hub_drain_remote(weft__hub *h) {
  weft_task *t = atomic_exchange(&h->remote, NULL);
  /* Reversed, so that tasks are woken in the order they were. */
  weft_task *fifo = NULL;
  while (t) {
    weft_task *next = t->remote_next;
    t->remote_next = fifo;
    fifo = t;
    t = next;
  }
  while (fifo) {
    t = fifo;
    fifo = t->remote_next; /* read first: once cleared, t may be pushed */
    /* An exchange and a sequentially consistent load, not a store and an
     * acquire load: the waker's side is a store of woken then an exchange
     * of remote_pending, and one of the two must see the other. */
    atomic_exchange(&t->remote_pending, false);
    if (t->state == WEFT__TASK_PARKED && t->waiter &&
        atomic_load(&t->waiter->woken) == WAITER_WOKEN)
      weft__task_wake(t, t->waiter->code);
  }
}
