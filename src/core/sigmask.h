/*
 * The signals weft blocks in a thread for its own use (weft_signal_wait's
 * and the dump's signalfds, a message pipe's write), recorded so that a
 * child process starts with the mask the program had: a child of fork or
 * exec inherits the calling thread's mask, and a signal that weft left
 * blocked there would stay blocked in a program that knows nothing of it
 * (a SIGTERM that no longer terminates).
 *
 * The mask is per thread, so the record is too (thread-local): the signals
 * weft blocked in this thread that the thread did not block already. A
 * signal the program blocked itself first is never in it. Calling
 * pthread_sigmask directly on a signal weft blocked is the program's
 * business: weft cannot tell that block from its own, and keeps it in the
 * record.
 *
 * Dispositions need no record: weft changes SIGCHLD's only (the SIGCHLD
 * watcher's handler, which passes every signal on to the disposition the
 * program had, in a child of fork too) and SIGSEGV's and SIGBUS's (the
 * overflow handler, which does the same); exec resets handlers to SIG_DFL.
 */
#ifndef WEFT_CORE_SIGMASK_H
#define WEFT_CORE_SIGMASK_H

#include <signal.h>

/* Blocks set in the calling thread and records the signals that were not
 * blocked before; *old (may be NULL) receives the mask before. Returns 0 or
 * a negative errno (pthread_sigmask's). Async-signal-safe. */
int weft__sigmask_block(const sigset_t *set, sigset_t *old);

/* Sets the calling thread's mask to *mask (one weft__sigmask_block gave),
 * and forgets the recorded signals that it unblocks. */
void weft__sigmask_restore(const sigset_t *mask);

/* Stores in *out the mask a child of the calling thread starts with: the
 * mask *from (the thread's, when from is NULL) without the signals weft
 * blocked in this thread. Async-signal-safe. */
void weft__sigmask_for_child(const sigset_t *from, sigset_t *out);

/* The calling thread's record, and a new thread's: a thread inherits its
 * creator's mask, so weft_thread_start hands it the creator's record too
 * (a thread the program creates itself starts with an empty one). */
void weft__sigmask_record_get(sigset_t *out);
void weft__sigmask_record_set(const sigset_t *rec);

/* In a child of fork, before the program's code runs: unblocks the signals
 * weft had blocked in the forking thread, and forgets them (the child's
 * weft blocks them anew if it waits for them). Async-signal-safe. */
void weft__sigmask_reset_in_child(void);

#endif
