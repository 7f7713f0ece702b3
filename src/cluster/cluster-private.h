/*
 * The cluster's records, shared by the supervisor (supervisor.c) and the
 * worker processes (worker.c). See weft/cluster.h for what they do.
 *
 * A cluster is used by one thread, the one that runs it: the supervisor's
 * tasks all run on that thread's hub, so its records need no lock. The two
 * exceptions are the requests of weft_cluster_stop and weft_cluster_reload,
 * which may come from any thread or a signal handler: they set bits of
 * `requests` and write a byte to `ctl`, whose reader task applies them.
 *
 * A worker process starts as a fork of the supervisor's task that started
 * it, with a copy of these records: it closes what belongs to the
 * supervisor or to other workers, and then lives in struct weft_worker.
 */
#ifndef WEFT_CLUSTER_PRIVATE_H
#define WEFT_CLUSTER_PRIVATE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <weft/cluster.h>
#include <weft/hub.h>
#include <weft/proc.h>
#include <weft/sync.h>

/* Bits of weft_cluster.requests. */
enum {
  REQUEST_STOP = 1,     /* graceful */
  REQUEST_STOP_NOW = 2, /* at once */
  REQUEST_RELOAD = 4,
};

/* How far a stop has gone (weft_cluster.stopping). */
enum { RUNNING = 0, STOPPING = 1, STOPPING_NOW = 2 };

struct listener {
  /* WEFT_ACCEPT_SHARED, and Unix paths: fds[0]. WEFT_ACCEPT_REUSEPORT:
   * one per worker slot, all bound to one port. */
  int *fds;
  int nfds;
  char *unix_path; /* to unlink at the end, or NULL */
};

/* One worker process of one generation, in the supervisor. The slot's
 * task starts it, joins it and starts it again while the slot lives. */
struct slot {
  weft_cluster *cluster;
  int index;
  unsigned generation;
  bool retired;          /* replaced by a reload: no more restarts */
  weft_proc *proc;       /* the running worker, or NULL */
  weft_msgpipe *pipe;    /* the supervisor's end, while proc runs */
  weft_msgpipe *far_end; /* the worker's end, until the fork is made */
  weft_task *task;       /* the slot's task */
  weft_task *reader;     /* reads the worker's messages, while it runs */
  int64_t started_at;    /* when proc was started */
  int64_t kill_at;       /* when the killer SIGKILLs proc (INT64_MAX: never) */
  bool first_reported;   /* its first start told weft_cluster_run */
  /* Broadcasts under way on pipe: the slot's task lets go of the pipe (and
   * of the slot) only once there are none (sends_done is set then). */
  int sends;
  weft_event sends_done;
  struct slot *next; /* in weft_cluster.slots */
};

struct weft_cluster {
  weft_cluster_opts o;
  struct listener listeners[WEFT_CLUSTER_MAX_LISTENERS];
  int nlisteners;
  bool ran;
  /* Requests from any thread or signal handler, and the pipe that wakes
   * the supervisor for them (ctl[0] is read by its control task). */
  atomic_int requests;
  int ctl[2];
  /* The supervisor's, on its hub's thread. */
  pthread_t thread;
  /* The supervisor's pid (0 before the run): read by stop and reload,
   * from any thread. */
  _Atomic pid_t pid;
  bool supervising;
  /* The first start of the workers, which weft_cluster_run reports:
   * starting while it goes on, how many slots told how it went, and the
   * first error. */
  bool starting;
  int first_starts;
  int start_error;
  int stopping;        /* RUNNING, STOPPING, STOPPING_NOW */
  unsigned generation; /* the newest */
  struct slot *slots;  /* every slot whose task has not ended */
  int live_slots;      /* tasks of slots not yet ended */
  weft_event changed;  /* set when stopping begins, or a slot ends */
  /* What each slot's accepting worker holds (balance.c), shared with the
   * workers; NULL unless they share one socket. */
  _Atomic uint64_t *loads;
  weft_task *killer;      /* kills what a stop's grace left running */
  weft_event killer_wake; /* set when a kill_at was set */
};

/* A worker process's own record (worker.c). */
struct weft_worker {
  weft_cluster *cluster;
  int index;
  unsigned generation;
  weft_msgpipe *pipe; /* to and from the supervisor */
  pid_t pid;          /* this worker's */
  bool draining;
  bool stop_now;
  weft_event drain; /* set when draining begins */
  weft_event wake;  /* set when draining begins, or main returns */
  bool main_done;
  size_t conns; /* connections whose task has not ended */
  struct conn *conn_list;
  weft_event conns_gone; /* set when conns drops to 0 */
  weft_event room;       /* set when a connection ends (max_conns) */
  weft_task *main_task;  /* the user's main, while it runs */
  bool failed;           /* an acceptor lost its listener: exit 1 */
  weft_task *acceptors[WEFT_CLUSTER_MAX_LISTENERS];
  int nacceptors;
};

/* The signals a supervisor and its workers take (SIGTERM, SIGINT, SIGQUIT,
 * SIGHUP) in *set; blocked in the calling thread at once (as weft's, so
 * that children start without them blocked), before anything is started:
 * one that comes before its task waits for it is held, not fatal. Returns
 * 0 or a negative errno; the mask before goes to *old (may be NULL), for
 * weft__sigmask_restore. */
int weft__cluster_block_signals(sigset_t *set, sigset_t *old);

/* Balance of a shared socket (balance.c). create makes the shared table
 * (before any fork; nothing for REUSEPORT or one worker), free unmaps it.
 * publish stores the calling worker's count of connections (not while it
 * drains), leave clears slot index's entry if pid still owns it, ahead
 * tells whether the calling worker holds clearly more connections than the
 * least loaded other one. */
int weft__balance_create(weft_cluster *c);
void weft__balance_free(weft_cluster *c);
void weft__balance_publish(const weft_worker *w);
void weft__balance_leave(const weft_cluster *c, int index, pid_t pid);
bool weft__balance_ahead(const weft_worker *w);

/* Runs a worker: the function weft_proc_start runs in the child. */
int weft__cluster_worker_main(void *slot);

/* One line on the cluster's log fd (opts.log_fd), printf-style. Never
 * fails (a line that cannot be written is dropped); async-signal-unsafe. */
void weft__cluster_log(const weft_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
