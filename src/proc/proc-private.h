/*
 * The process layer's insides, shared by its files: the handle, the
 * registry of children not yet reaped, and the watcher (the reaper, and
 * how joins and signals reach a child). See include/weft/proc.h for what
 * they do.
 *
 * A child's lifetime: made (fork or spawn); opened by the watcher (its
 * pidfd, if the watcher uses one); registered (the registry, for daemons
 * at exit and for a subreaper to tell its own children from strangers;
 * and the watcher's reaper); reaped once, by whoever gets its guard first
 * after it exits (a joiner, the reaper, a look such as weft_proc_alive),
 * which records the exit code and sets `done`; unregistered; freed when
 * neither the user nor the reaper holds it any more.
 *
 * Two watchers, one file each, behind weft__proc_watcher below: pidfds
 * (reaper.c), and SIGCHLD with waitid where the kernel has no pidfds
 * (reaper-sigchld.c). Which one is chosen once per process
 * (weft__proc_watch), and no other file asks which it is.
 *
 * Lock order: the watcher's mutex, then a handle's guard, then the
 * registry's mutex. Nothing is signalled or reaped under the registry's
 * mutex alone.
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
  int pidfd; /* the pidfd watcher's; -1 with the SIGCHLD watcher */
  bool daemon;
  /* Guards reaped and exitcode (core/guard.h). A reap happens under it,
   * so that while it is held and reaped is false, p's pid is still this
   * process's child's (a zombie at worst), free for no other process. */
  uint32_t guard;
  bool reaped;     /* the kernel's record is gone; exitcode is final */
  int exitcode;    /* Python's: the status, or -signal */
  weft_event done; /* set once reaped */
  struct weft_proc *next, *prev; /* in the registry while not reaped */
  int ended_by; /* the signal end_daemons_at_exit sent last; registry's */
  int joiners;  /* joins under way; under the pidfd reaper's mutex */
  /* In the pidfd reaper's list of children it has not looked at yet;
   * under its mutex. */
  bool unseen;
  struct weft_proc *unseen_next, *unseen_prev;
  int slot; /* in the SIGCHLD reaper's table, or -1; under its mutex */
  char name[32];
};

/* Makes a handle for the child pid (opened by the watcher), registers it
 * with the registry and the reaper, and returns it in *out with the
 * user's reference. On failure the child is killed and reaped, and
 * nothing is left behind. */
int weft__proc_adopt(weft_proc **out, pid_t pid, const weft_proc_opts *opts);

/* Reaps p if it has exited: records its exit code and sets done. Returns
 * whether p is reaped (now or before). Does not block. */
bool weft__proc_try_reap(weft_proc *p);

/* Drops a reference; the last one frees p. */
void weft__proc_unref(weft_proc *p);

/*
 * A watcher: how children are watched, joined and signalled. Each is one
 * file with a reaper thread of its own, started with the first child.
 */
typedef struct weft__proc_watcher {
  const char *name; /* "pidfd", "sigchld": for reports */
  /* Readies a new handle (p->pid set, nothing else can see it yet): opens
   * its pidfd, say. 0 or a negative errno. And lets go of what that took,
   * as the handle is freed or dropped in a child of fork. */
  int (*open)(weft_proc *p);
  void (*close)(weft_proc *p);
  /* The reaper watches p until it reaps it, taking its reference. 0 or a
   * negative errno. */
  int (*watch)(weft_proc *p);
  /* A join's wait: until p is reaped (0), or the absolute deadline
   * (INT64_MAX: none) passes (-ETIMEDOUT), or the waiting task is
   * cancelled (-ECANCELED). A task parks only itself; a thread sleeps.
   * The caller holds a reference to p. */
  int (*wait)(weft_proc *p, int64_t deadline);
  /* Sends signo (valid) to p unless p is reaped, and never to a process
   * that merely reuses p's pid. 0, also when p is gone; or a negative
   * errno (-EPERM). */
  int (*signal)(weft_proc *p, int signo);
  /* The subreaper's sweep: the reaper also collects, every so often and
   * at once now, children weft did not start (orphaned grandchildren). */
  void (*sweep_strangers)(void);
  /* The watcher's mutex, held around a fork (lock order: first); and its
   * part of weft__proc_reset_in_child. */
  void (*lock)(void);
  void (*unlock)(void);
  void (*reset_in_child)(void);
} weft__proc_watcher;

extern const weft__proc_watcher weft__proc_pidfd_watcher;   /* reaper.c */
extern const weft__proc_watcher weft__proc_sigchld_watcher; /* ...-sigchld.c */

/* Whether pidfd_open and pidfd_send_signal work here (reaper.c). */
bool weft__proc_pidfd_usable(void);

/* The watcher of this process: chosen at the first call (thread-safe),
 * which also readies the layer (the at-exit and at-fork handlers). */
const weft__proc_watcher *weft__proc_watch(void);

/* A start is under way (weft_proc_start, weft_proc_exec): from before the
 * fork until weft__proc_adopt registers the child, or the start fails
 * (weft__proc_start_failed), a subreaper's sweep reaps no stranger, since
 * the new child would look like one. */
void weft__proc_start_begins(void);
void weft__proc_start_failed(void);

/* Reaps the exited children that are not weft's (a subreaper's orphans, or
 * the program's own), unless a start is under way. For the reapers' sweeps;
 * call without the registry's mutex. */
void weft__proc_reap_strangers(void);

/* Resets the layer in a child of fork(): the parent's children are not
 * this process's, and no reaper runs here. */
void weft__proc_reset_in_child(void);

#endif
