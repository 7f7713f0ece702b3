/*
 * The process layer's insides, shared by its files: the handle, the
 * registry of children not yet reaped, and the reaper. See
 * include/weft/proc.h for what they do.
 *
 * A child's lifetime: made (fork or spawn) with a pidfd; registered (the
 * registry, for daemons at exit, and the reaper's epoll); reaped once, by
 * whoever gets its guard first after it exits (a joiner that polled its
 * pidfd, or the reaper), which records the exit code and sets `done`;
 * unregistered by the reaper; freed when neither the user nor the reaper
 * holds it any more.
 *
 * Lock order: the reaper's mutex (reaper.c), then a handle's guard, then
 * the registry's mutex.
 */
#ifndef WEFT_PROC_PRIVATE_H
#define WEFT_PROC_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include <weft/proc.h>
#include <weft/sync.h>

#define PROC_MAGIC 0x70726f63u /* "proc" */

struct weft_proc {
  uint32_t magic;  /* PROC_MAGIC while the handle is valid */
  atomic_int refs; /* the user's, and the reaper's while registered */
  pid_t pid;
  int pidfd;
  bool daemon;
  uint32_t guard;  /* guards reaped and exitcode (sync/guard.h) */
  bool reaped;     /* the kernel's record is gone; exitcode is final */
  int exitcode;    /* Python's: the status, or -signal */
  weft_event done; /* set once reaped */
  struct weft_proc *next, *prev; /* in the registry while not reaped */
  int joiners; /* joins under way; under the reaper's mutex (reaper.c) */
  char name[32];
};

/* Makes a handle for the child pid (its pidfd open), registers it with
 * the registry and the reaper, and returns it in *out with the user's
 * reference. On failure the child is killed and reaped, and nothing is
 * left behind. */
int weft__proc_adopt(weft_proc **out, pid_t pid, const weft_proc_opts *opts);

/* Reaps p if it has exited: records its exit code and sets done. Returns
 * whether p is reaped (now or before). Does not block. */
bool weft__proc_try_reap(weft_proc *p);

/* Drops a reference; the last one frees p. */
void weft__proc_unref(weft_proc *p);

/* The reaper: starts it if needed, and has it watch p's pidfd (taking the
 * reaper's reference). Returns 0 or a negative errno. */
int weft__reaper_watch(weft_proc *p);

/* A join of p begins: the reaper stops watching p (its joiner reaps it).
 * And ends: the last joiner to leave an unreaped child gives it back to
 * the reaper. The caller holds a reference to p. */
void weft__reaper_join_begins(weft_proc *p);
void weft__reaper_join_ends(weft_proc *p);

/* The subreaper's sweep: the reaper also collects, every so often and at
 * once now, children weft did not start (orphaned grandchildren). */
void weft__reaper_sweep_strangers(void);

/* The reaper's part of weft__proc_reset_in_child; and its mutex, held
 * around a fork. */
void weft__reaper_reset_in_child(void);
void weft__reaper_lock(void);
void weft__reaper_unlock(void);

/* A start is under way (weft_proc_start, weft_proc_exec): from before the
 * fork until weft__proc_adopt registers the child, or the start fails
 * (weft__proc_start_failed), a subreaper's sweep reaps no stranger, since
 * the new child would look like one. */
void weft__proc_start_begins(void);
void weft__proc_start_failed(void);

/* Reaps the exited children that are not weft's (a subreaper's orphans, or
 * the program's own), unless a start is under way. */
void weft__proc_reap_strangers(void);

/* Resets the layer in a child of fork(): the parent's children are not
 * this process's, and no reaper runs here. */
void weft__proc_reset_in_child(void);

#endif
