/*
 * Waiting on a word of shared memory, for the process-shared primitives
 * (weft/shm.h): a plain thread sleeps on it (a futex, not private, so that
 * any process mapping the word wakes it); a task parks only itself, and the
 * process's watcher thread sleeps on the word for it (futex_waitv) and
 * wakes it. Where the watcher cannot serve (no futex_waitv, or its set is
 * full) a task looks at the word at growing intervals instead.
 *
 * The waiter model of src/hub/waiter.h cannot reach across processes: a
 * waker in another process knows nothing of this one's waiters. So here a
 * waker changes the word, then wakes the futex; every wait returns when
 * the word differs from what the waiter saw, or on any wake, and the
 * caller looks again. Spurious returns are the callers' to loop on.
 */
#ifndef WEFT_PROC_SHARED_WAIT_H
#define WEFT_PROC_SHARED_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Waits while *word is `expected`, until a futex wake on word, the
 * absolute CLOCK_MONOTONIC deadline (INT64_MAX: none), or, in a task, its
 * cancellation; and 100 ms at most, after which it returns to look again
 * (the sleeper a wake went to may have been killed before it acted on it).
 * Returns 0 (look again), -ETIMEDOUT or -ECANCELED.
 */
int weft__shared_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                            int64_t deadline);

/* Wakes up to n sleepers on word, in any process; returns how many it
 * woke (0 on an error). */
int weft__shared_futex_wake(_Atomic uint32_t *word, int n);

/*
 * A word with a count of those asleep on it, so that a waker makes the
 * wake's system call only when someone sleeps. The two lie side by side
 * in shared memory. A process killed while asleep leaves the count one too
 * high for good: its only cost is a needless system call per wake.
 */
typedef struct weft__shared_word {
  _Atomic uint32_t value;
  _Atomic uint32_t sleepers;
} weft__shared_word;

/* A thread spins a moment (how long adapts to how its spins fare; see
 * shared-wait.c), then sleeps while w->value is `expected`, counted among
 * the sleepers, as weft__shared_futex_wait. */
int weft__shared_word_wait(weft__shared_word *w, uint32_t expected,
                           int64_t deadline);

/* weft__shared_word_wait without the spin, for a caller that spun
 * already (on what the word stands for). */
int weft__shared_word_sleep(weft__shared_word *w, uint32_t expected,
                            int64_t deadline);

/* A thread (not a task), where spinning pays: spins while *word is seen,
 * for the thread's spin time (adapted as weft__shared_word_wait's).
 * Returns whether it changed; false at once in a task. */
bool weft__shared_spin_while(_Atomic uint64_t *word, uint64_t seen);

/* Whether the caller would spin at all: a thread (a task never spins), on
 * a process that may run on more than one CPU. */
bool weft__shared_may_spin(void);

/* Call after changing w->value (sequentially consistent): wakes up to n
 * sleepers, if any sleep. Returns how many it woke. */
int weft__shared_word_wake(weft__shared_word *w, int n);

#endif
