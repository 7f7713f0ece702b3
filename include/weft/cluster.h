/*
 * weft/cluster.h — a supervisor and worker processes, each a hub full of
 * tasks: "multiple processes plus coroutines", supervised as nginx's master
 * supervises its workers.
 *
 *     nginx, gunicorn+gevent, Go      weft
 *     worker_processes auto;          opts.workers = weft_cpu_count()
 *     listen 127.0.0.1:8080;          weft_cluster_listen(c, "127.0.0.1:8080")
 *     a handler per connection        opts.handler(w, fd, arg), a task each
 *     the master process              weft_cluster_run(c)
 *     kill -TERM / -QUIT / -HUP       graceful stop / stop now / reload
 *     worker_cpu_affinity auto;       opts.pin_cpus = true
 *
 * The model (docs/cluster.md): the process that calls weft_cluster_run is
 * the supervisor. It opens and binds every listener itself, before any
 * worker exists, so that a bad or busy address is an error with nothing
 * started; then it forks opts.workers workers. Each worker is a process
 * with one hub: it runs opts.main (if given) as a task, and for each
 * listener an acceptor that runs opts.handler in a new task for every
 * connection it accepts. The supervisor replaces a worker that dies, backs
 * off one that keeps dying at start, turns signals into stops and reloads,
 * and carries messages between itself and the workers.
 *
 * Signals, to the supervisor (the same by call, for programs that embed a
 * cluster; a worker that gets one of them directly, as a terminal's Ctrl-C
 * sends SIGINT to the whole process group, acts on it as a worker):
 *   SIGTERM, SIGINT  graceful stop: workers stop accepting, let the
 *                    connections in flight finish within opts.drain_timeout,
 *                    then cancel what is left; weft_cluster_run returns 0.
 *   SIGQUIT          stop now: workers cancel everything at once.
 *   SIGHUP           graceful reload: a new generation of workers starts,
 *                    then the old one drains as in a graceful stop.
 * (nginx gives SIGQUIT and SIGTERM the opposite meanings; weft follows the
 * meanings most process managers assume: SIGTERM asks for a clean end.)
 *
 * No orphans, no zombies: workers get PR_SET_PDEATHSIG(SIGKILL), so they
 * die with the supervisor even when it is SIGKILLed, and the supervisor
 * reaps every worker it started (weft/proc.h).
 *
 * Thread safety: a cluster belongs to the thread that runs it;
 * weft_cluster_stop and weft_cluster_reload may be called from any thread,
 * task, or signal handler of the supervisor process. The worker calls
 * (weft_worker_*) are for the tasks of that worker's hub.
 */
#ifndef WEFT_CLUSTER_H
#define WEFT_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <weft/core.h>
#include <weft/proc.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_cluster weft_cluster;
typedef struct weft_worker weft_worker;

/* The most workers a cluster runs, and the most listeners it opens. */
#define WEFT_CLUSTER_MAX_WORKERS   1024
#define WEFT_CLUSTER_MAX_LISTENERS 16

/* How the workers share a listener (weft_cluster_opts.accept_mode). */
enum {
  /* One socket, which every worker accepts from. Only one worker is woken
   * per connection (no thundering herd), and a worker that just accepted
   * waits behind the others, so that connections spread over the workers
   * that are idle. A dead worker's queue is the shared one: nothing waiting
   * in it is lost. */
  WEFT_ACCEPT_SHARED = 0,
  /* One SO_REUSEPORT socket per worker slot, opened by the supervisor
   * before any fork, so the kernel spreads connections by a hash of their
   * addresses. The supervisor keeps each slot's socket open while the
   * slot's worker is replaced: what waits in a dead worker's queue is
   * accepted by its replacement, late (after the restart back-off), not
   * reset. */
  WEFT_ACCEPT_REUSEPORT = 1,
};

/* A worker's main task: runs once per worker process, in a task of the
 * worker's hub. The worker ends when main has returned, its connections
 * have finished and, for a server, it has been told to stop. */
typedef void (*weft_worker_fn)(weft_worker *w, void *arg);

/* A connection's task: fd is the accepted socket (non-blocking,
 * close-on-exec), which weft closes when the handler returns: the handler
 * must not close it. The handler is cancelled (-ECANCELED from its calls)
 * when a drain outlasts opts.drain_timeout, or at a stop now. */
typedef void (*weft_conn_fn)(weft_worker *w, int fd, void *arg);

/* Runs in a task of the supervisor for each message a worker sends
 * (weft_worker_send); msg lives until it returns. */
typedef void (*weft_message_fn)(weft_cluster *c, int worker, const void *msg,
                                size_t len, void *arg);

typedef struct weft_cluster_opts {
  /* Worker processes: 1 .. WEFT_CLUSTER_MAX_WORKERS. weft_cluster_opts_init
   * sets weft_cpu_count(). */
  int workers;
  weft_worker_fn main;  /* each worker's main task, or NULL */
  weft_conn_fn handler; /* for each accepted connection, or NULL */
  void *arg;            /* passed to main and handler */
  int accept_mode;      /* WEFT_ACCEPT_SHARED or WEFT_ACCEPT_REUSEPORT */
  /* How long a graceful stop or reload lets connections finish before
   * they are cancelled: >= 0; default 10 s. */
  int64_t drain_timeout;
  /* Each worker's open connections at most (0: no limit): above it, its
   * acceptors wait for a connection to end. */
  size_t max_conns;
  /* Stack size of connection tasks (0: weft's default). */
  size_t conn_stack_size;
  /* Pin worker i to the i-th CPU this process may use (mod their count). */
  bool pin_cpus;
  /* Connection tasks may be hibernated while they wait long for their
   * next request (weft_task_opts.hibernate, weft_hub_idle_after): an idle
   * connection then costs its task's object and its frames, some hundreds
   * of bytes, instead of a page or more of stack. The handler promises
   * that no other task or thread uses memory in its frames while it waits
   * on an fd or sleeps. Default false. */
  bool conn_hibernate;
  weft_message_fn on_message; /* messages from workers, or NULL */
  void *message_arg;
  /* Where the supervisor writes one line per worker event (started,
   * exited with its code or signal, backed off): an fd, default 2
   * (stderr); -1 for none. The supervisor's tasks wait while a write
   * blocks: give a file, a terminal, or a pipe that is read. */
  int log_fd;
} weft_cluster_opts;

/* weft_cluster_opts_init — fill o with the defaults above. Never fails. */
WEFT_API void weft_cluster_opts_init(weft_cluster_opts *o);

/*
 * weft_cpu_count — the number of CPUs this process may use: those of its
 * affinity mask (sched_getaffinity), fewer if its cgroup's CPU quota
 * allows fewer (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us over
 * cpu.cfs_period_us, rounded up): 2 in a container with 2 CPUs of quota on
 * a 64-core host. At least 1. Never blocks for long (reads a few files
 * under /proc and /sys); any thread or task.
 */
WEFT_API int weft_cpu_count(void);

/*
 * weft_cluster_create — a cluster with the options o (copied). Nothing is
 * started until weft_cluster_run.
 * Returns 0 with the cluster in *out; -EINVAL (out or o NULL; neither main
 * nor handler; workers outside 1 .. WEFT_CLUSTER_MAX_WORKERS; an unknown
 * accept_mode; a negative drain_timeout; a conn_stack_size over 1 GiB),
 * -ENOMEM, -EMFILE or -ENFILE (no pipe for stop and reload requests).
 */
WEFT_API int weft_cluster_create(weft_cluster **out,
                                 const weft_cluster_opts *o);

/*
 * weft_cluster_listen — open a listener on address (as weft_io_listen
 * reads it: "host:port", "[v6]:port", ":port", "unix:/path"), bound now:
 * one socket for WEFT_ACCEPT_SHARED, one per worker for
 * WEFT_ACCEPT_REUSEPORT (Unix paths are always shared). Call before
 * weft_cluster_run.
 * Returns the listener's index (0, 1, ...), or -EINVAL (c or address NULL,
 * a bad address, a cluster that runs or has run), -ENOSPC (more than
 * WEFT_CLUSTER_MAX_LISTENERS), or what weft_io_listen reports
 * (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL, ...), with nothing left open.
 */
WEFT_API int weft_cluster_listen(weft_cluster *c, const char *address);

/*
 * weft_cluster_listener_port — the port listener i is bound to (useful
 * after listening on port 0), or -EINVAL (no such listener, or a Unix
 * path).
 */
WEFT_API int weft_cluster_listener_port(const weft_cluster *c, int i);

/*
 * weft_cluster_run — start the workers and supervise them until the
 * cluster is stopped (by a signal above or weft_cluster_stop), or, with no
 * listener, until every worker's main has returned. Handles SIGTERM,
 * SIGINT, SIGQUIT and SIGHUP meanwhile (they are blocked in the calling
 * thread and taken by weft_signal_wait; their dispositions are left as
 * they were).
 * Returns 0 after a stop (every worker has exited and been reaped), or
 * -EINVAL (c NULL; a handler but no listener; a listener but no handler),
 * -EALREADY (run before), -EAGAIN, -ENOMEM, -EMFILE, -ENFILE or -ENOSPC
 * (the first workers could not be started: those that were are stopped
 * at once, and none is left running), -ECANCELED (run from a task that
 * was cancelled: the workers were stopped at once, and are all gone).
 * When it returns, the calling thread's signal mask is as it was before
 * (instances of the four signals that came during the stop are dropped).
 * The caller's deadline (weft_deadline_set) does not end the run, and
 * comes back when it returns. A reload asked for before the run is
 * dropped; a stop makes the run return 0 at once. Blocks: call from a
 * plain thread (it runs the supervisor on a hub of its own) or from a task
 * (it runs in it, its hub's other tasks going on).
 */
WEFT_API int weft_cluster_run(weft_cluster *c);

/*
 * weft_cluster_stop — stop the cluster: gracefully (graceful true, as
 * SIGTERM) or now (as SIGQUIT). Returns at once: weft_cluster_run returns
 * when the workers are gone. Returns 0, -EINVAL (c NULL). A stop before
 * run makes run return at once. -EPERM in a worker (its copy of the
 * supervisor's cluster). Async-signal-safe; any thread or task.
 */
WEFT_API int weft_cluster_stop(weft_cluster *c, bool graceful);

/*
 * weft_cluster_reload — a graceful reload, as SIGHUP: start a new
 * generation of workers; each old worker drains once the new one of its
 * index runs (so that new workers that cannot start leave the old ones
 * serving). Returns 0, -EINVAL (c NULL), -ESHUTDOWN (stopping), -EPERM (in
 * a worker). Async-signal-safe; any thread or task.
 */
WEFT_API int weft_cluster_reload(weft_cluster *c);

/*
 * weft_cluster_broadcast — send msg (len bytes, up to WEFT_MSGPIPE_MAX) to
 * every running worker, where weft_worker_recv takes it. From a task of the
 * supervisor (opts.on_message, or a task of the hub that runs the
 * cluster). Returns how many workers it reached, or -EINVAL (c NULL, msg
 * NULL with len > 0), -EMSGSIZE (over WEFT_MSGPIPE_MAX), -EPERM (not from
 * a task of the supervisor's hub while it runs).
 * Blocks while a worker's pipe is full, up to 1 s per worker: a worker
 * that takes nothing for that long misses the message, and if part of it
 * had gone out, its pipe is broken (weft_msgpipe_send) and it gets no more.
 */
WEFT_API int weft_cluster_broadcast(weft_cluster *c, const void *msg,
                                    size_t len);

/*
 * weft_cluster_free — let go of c after weft_cluster_run has returned (or
 * before it ran): closes its listeners, unlinks its Unix socket paths.
 * NULL is ignored.
 */
WEFT_API void weft_cluster_free(weft_cluster *c);

/* ---- In a worker ---- */

/* weft_worker_index — this worker's slot, 0 .. workers - 1 (a replacement
 * takes the slot of the worker it replaces). */
WEFT_API int weft_worker_index(const weft_worker *w);

/* weft_worker_generation — 0 for the first workers, one more for each
 * reload. */
WEFT_API unsigned weft_worker_generation(const weft_worker *w);

/* weft_worker_draining — whether the worker has been told to stop: a
 * handler of keep-alive connections closes them after the current
 * response. */
WEFT_API bool weft_worker_draining(const weft_worker *w);

/*
 * weft_worker_wait_drain — wait up to timeout ns until the worker is told
 * to stop. Returns 0, -ETIMEDOUT, -ECANCELED, -EINVAL (w NULL, a bad
 * timeout). Blocks the calling task.
 */
WEFT_API int weft_worker_wait_drain(weft_worker *w, int64_t timeout);

/*
 * weft_worker_idle — for a connection's handler, before each request: wait
 * up to timeout ns for fd to be readable. Returns 0 (readable, or the peer
 * closed: read to know), -ESHUTDOWN (the worker drains: close the
 * connection), -ETIMEDOUT, -ECANCELED, -EINVAL (w NULL, a bad timeout), or
 * weft_io_wait's errors. Blocks the calling task.
 * Between requests the connection is idle, and a drain ends its wait: it
 * then waits up to 500 ms more for a request the client may have sent as
 * the drain began (a busy keep-alive client sends its next one the moment
 * it has a response), so that such a request is answered, not cut off, and
 * returns -ESHUTDOWN if none comes (as it does when called while the
 * worker drains, after the same look). The first call on a
 * connection is not idle: its client connected to make a request, which a
 * drain lets it make (until the drain timeout). An idle connection waits
 * without a buffer, so that it costs its task's stack and little else.
 */
WEFT_API int weft_worker_idle(weft_worker *w, int fd, int64_t timeout);

/*
 * weft_worker_send — send the supervisor msg (len bytes, up to
 * WEFT_MSGPIPE_MAX),
 * where opts.on_message gets it. weft_worker_recv — take the next message
 * weft_cluster_broadcast sent, waiting up to timeout ns: *msg is malloc'd,
 * free it. One task at a time may recv (another gets -EBUSY). Without
 * opts.on_message, what workers send is read and dropped.
 * Return 0, or weft_msgpipe_send's and weft_msgpipe_recv's errors:
 * -EINVAL, -ETIMEDOUT, -ECANCELED, -EPIPE (the supervisor is gone),
 * -EMSGSIZE, -ENOMEM. Block the calling task.
 */
WEFT_API int weft_worker_send(weft_worker *w, const void *msg, size_t len,
                              int64_t timeout);
WEFT_API int weft_worker_recv(weft_worker *w, void **msg, size_t *len,
                              int64_t timeout);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_CLUSTER_H */
