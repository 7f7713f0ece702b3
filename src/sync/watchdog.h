/*
 * The deadlock watchdog (weft_watchdog_start in weft/sync.h): a thread
 * that looks, every interval, for tasks and threads that wait for each
 * other in a cycle on weft Locks and RLocks, and reports each cycle once.
 *
 * Every wait for a lock, while locks record their holders
 * (WEFT__DEBUG_HOLDERS, debug.h), is entered in a registry for the time
 * of the wait, with who waits (a task or a thread: weft__sync_self) and
 * for which lock; each lock says who took it last (weft_lock.holder_, set
 * by every acquire and cleared by every release). A waiter W for lock L
 * held by H waits for H; since a task or thread waits for one lock at a
 * time, these wait-for edges go out of each at most once, and a cycle is
 * one walk away. A Lock may be released by anyone, so a cycle through one
 * is only as certain as "nobody else will release it": the report says who
 * took it. A cycle is reported once it has been seen by two scans in a
 * row, so that a picture taken as locks changed hands is not reported.
 *
 * Lock order: the registry's mutex is taken inside a lock's slow path,
 * with no lock's guard held, and nothing is taken under it.
 */
#ifndef WEFT_SYNC_WATCHDOG_H
#define WEFT_SYNC_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>
#include <weft/sync.h>

/* One wait for a lock, in the frame of the waiting call. */
struct weft__watch {
  struct weft__watch *next, *prev; /* in the registry, under its mutex */
  const weft_lock *lock;           /* what the owner waits for */
  const char *what;                /* "lock" or "rlock" */
  const void *site;                /* where the owner called acquire */
  const void *owner;               /* who waits: weft__sync_self() */
  char label[64];                  /* who waits, for the report */
  unsigned hits;                   /* scans in a row that found a cycle */
  bool reported;                   /* its cycle has been reported */
  bool linked;                     /* in the registry */
};

/* The name of the calling thread for reports, set by the thread layer
 * for the threads it starts (NULL: the main thread, or a thread weft did
 * not start). */
extern __thread const char *weft__thread_label;

/* The caller is about to wait for l (an RLock's inner lock when what is
 * "rlock"), having called acquire at site: enters e in the registry. */
void weft__watchdog_enter(struct weft__watch *e, const weft_lock *l,
                          const char *what, const void *site);

/* The wait entered as e is over. */
void weft__watchdog_leave(struct weft__watch *e);

/* The fd of a watchdog whose reports go where weft_hub_report_to or
 * weft_hub_on_report say (the one WEFT_WATCHDOG starts). */
#define WEFT__WATCHDOG_REPORT (-1)

/* weft_watchdog_start, without turning on the holders' record (the
 * caller has); fd may be WEFT__WATCHDOG_REPORT. */
int weft__watchdog_start(int64_t interval, int fd);

#endif
