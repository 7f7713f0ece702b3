/*
 * Lock-order checking, on when the environment says WEFT_LOCKCHECK=1:
 * weft records, across all threads and tasks, which locks were taken while
 * which others were held, and the first time an acquire closes a cycle
 * (A taken before B somewhere, B before A here: two tasks or threads doing
 * both can deadlock) it prints both orders with the locks' names and the
 * call sites, before any deadlock happens. Off, it costs the lock's fast
 * paths one load and a branch (debug.h).
 *
 * The record outlives the locks, and the tasks: a lock freed and another
 * made at the same address inherit its history, and a task that ends
 * holding a lock that another releases later leaves it on its held list,
 * which a new task at the same address inherits until then (a debugging
 * aid, as lockdep's is).
 */
#ifndef WEFT_SYNC_LOCKCHECK_H
#define WEFT_SYNC_LOCKCHECK_H

#include <stdbool.h>

/* The caller (a task, or a thread) took lock, named name (may be NULL),
 * at site (a return address). An acquire that would not have waited (a
 * try, timeout 0) adds no edge into lock, as it cannot deadlock: lock only
 * joins the caller's held list. */
void weft__lockcheck_acquired(const void *lock, const char *name,
                              const void *site, bool could_wait);

/* lock was released, by anyone (a Lock may be released by another). */
void weft__lockcheck_released(const void *lock);

#endif
