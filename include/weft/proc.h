/*
 * weft/proc.h — child processes with Python's multiprocessing semantics,
 * and without its zombies.
 *
 *     Python (multiprocessing)            weft
 *     p = Process(target=f, args=(a,))    weft_proc_start(&p, f, a, NULL)
 *       name="w", daemon=True             &(weft_proc_opts){.name = "w",
 *                                             .daemon = true}
 *     subprocess.Popen(argv, cwd=...)     weft_proc_exec(&p, &(weft_proc_cmd)
 *                                             {.argv = argv, .cwd = ...},
 *                                             NULL)
 *     p.join(timeout)                     weft_proc_join(p, timeout, &code)
 *     p.exitcode                          weft_proc_exitcode(p, &code)
 *     p.is_alive(), p.pid, p.name         weft_proc_alive(p), weft_proc_pid(p),
 *                                         weft_proc_name(p)
 *     p.terminate(), p.kill()             weft_proc_terminate(p),
 *                                         weft_proc_kill(p)
 *     p.close()                           weft_proc_free(p)
 *
 * Exit codes are Python's: the status a child exited with (0 .. 255), or
 * minus the number of the signal that killed it (-9 for SIGKILL).
 *
 * No zombies: weft watches every child it starts through a pidfd, and a
 * reaper thread (started with the first child) collects each one as it
 * exits (within about 10 ms), keeping its exit code for a join to come. A child
 * whose handle was freed without a join is collected all the same. A join waits
 * on the pidfd itself: a task that joins parks only itself (its hub polls the
 * pidfd as any fd), a thread sleeps in poll(). weft reaps its own children
 * only, each by its pid: the program's own (system(), popen(), a fork of
 * its own) keep their statuses for the program's waitpid.
 *
 * Without pidfds (Linux before 5.3, or a sandbox that refuses pidfd_open;
 * weft looks once per process, at its first child or weft_proc_subreaper),
 * weft watches its children through SIGCHLD instead, and every call here
 * behaves the same. It then installs a SIGCHLD handler, at that first
 * call and only in that case, in front of the disposition the program had (a
 * handler of the program's, SIG_DFL or SIG_IGN), which it passes every signal
 * on to; the handler only wakes the reaper, which reaps weft's children by pid.
 * A program that sets SIGCHLD's disposition later replaces weft's handler:
 * weft's children are then still reaped, by a look every 100 ms. As with
 * any SIGCHLD handler, a call that SA_RESTART does not restart (poll,
 * epoll_wait, nanosleep, ...) may fail with EINTR in the program's threads
 * when a child exits. Setting WEFT_PROC_NO_PIDFD=1 in the environment
 * (before weft starts its first child) makes weft work this way on any
 * kernel: for tests, and for debugging.
 *
 * SIGCHLD ignored (SIG_IGN, or SA_NOCLDWAIT) tells the kernel to reap every
 * child itself; a program whose SIGCHLD handler reaps every child
 * (waitpid(-1)) does the same. weft's children are then still never
 * zombies, and their joins return, but their exit codes are lost: they
 * read as -SIGKILL.
 *
 * No unwanted orphans: a daemon child (opts.daemon) is terminated when the
 * process that started it exits normally (SIGTERM, then SIGKILL after a
 * grace period), as Python's are, and it also gets PR_SET_PDEATHSIG
 * (SIGKILL), so that it dies even when its parent is killed outright. The
 * kernel sends that signal when the *thread* that started the child ends:
 * start daemons from a thread that lives as long as they should (the main
 * thread, a hub's thread), not from a short-lived worker.
 * weft_proc_subreaper makes a supervisor the reaper of its orphaned
 * grandchildren.
 *
 * A child started by weft_proc_start runs fn in a copy of the parent made
 * by fork(): only the forking thread exists there, so weft resets its own
 * state (hubs, the thread registry, the reaper) in the child, which may use
 * all of weft anew. A child started inside a task leaves that task's hub
 * behind: fn runs on the plain thread, outside any hub.
 *
 * What a child inherits (weft_proc_start and weft_proc_exec alike):
 *   - the signal mask of the thread that starts it, as the program set it:
 *     the signals weft blocked in that thread for itself (weft_signal_wait,
 *     weft_hub_dump_on_signal, a message pipe's write) are unblocked in the
 *     child, unless the thread had blocked them before weft did; a signal
 *     the program blocked stays blocked. (weft keeps that record per
 *     thread, and a thread started by weft_thread_start inherits its
 *     creator's with its mask; a thread the program creates with
 *     pthread_create after weft blocked a signal in its creator inherits
 *     the signal blocked as if the program had blocked it.)
 *   - signal dispositions: a child of weft_proc_start has the parent's, with
 *     weft's handlers in front of the program's as in the parent (SIGCHLD
 *     without pidfds, SIGSEGV and SIGBUS for stack overflows: each passes
 *     the signal on to what the program had); exec resets every handler to
 *     SIG_DFL and keeps SIG_IGN, as execve does (so a program that ignored
 *     SIGCHLD while weft watched without pidfds gives its exec'd child
 *     SIG_DFL, the default, which also ignores it);
 *   - fds: every fd not marked close-on-exec (the fds weft opens for itself are
 *     close-on-exec), a child of weft_proc_start all of them; stdin, stdout and
 *     stderr as cmd redirects them;
 *   - the environment (cmd.envp replaces it), the working directory
 *     (cmd.cwd changes it), the umask, rlimits, credentials.
 *
 * Calls are safe from any thread and any task, not from signal handlers;
 * none of them is safe in a child between fork() and exec() (use the fork
 * weft_proc_start makes).
 *
 * Handles, as every handle of weft (docs/README.md, "Handles"): a child's
 * handle, and a message pipe's end, is valid until weft_proc_free
 * (weft_msgpipe_free) lets it go, and must not be used after: weft cannot
 * always tell (the memory may already hold a new handle, and the call would
 * act on that one), and AddressSanitizer builds report it once the memory
 * is gone. (weft keeps a child's record while the child runs, and until
 * its reaper has let go of it after the exit: meanwhile calls through a
 * freed handle return -EINVAL, false or -1.)
 */
#ifndef WEFT_PROC_H
#define WEFT_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <weft/core.h>
/* The message pipes, declared here until the IPC layer had headers of its
 * own, still come with this one. */
#include <weft/ipc.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_proc weft_proc;

/* What a child started by weft_proc_start runs: its return value is the
 * child's exit status (0 .. 255). */
typedef int (*weft_proc_fn)(void *arg);

typedef struct weft_proc_opts {
  /* For reports; copied, cut to 31 bytes. NULL gives "Process-<n>". */
  const char *name;
  /* Terminated when this process exits normally; with weft_proc_start,
   * also killed by the kernel if this process dies (PR_SET_PDEATHSIG). */
  bool daemon;
} weft_proc_opts;

/* Values for weft_proc_cmd's stdin_fd, stdout_fd and stderr_fd (any other
 * value is an open fd of the parent to give the child). */
#define WEFT_PROC_INHERIT (-1) /* the parent's own (the default: 0) */
#define WEFT_PROC_DEVNULL (-2) /* /dev/null */

/* A program to run. Zero-initialised fields mean: inherit. */
typedef struct weft_proc_cmd {
  /* argv[0] is the program: searched in PATH when it has no '/'. The array
   * ends with NULL; at least argv[0] must be there. */
  char *const *argv;
  char *const *envp; /* the environment; NULL: the parent's */
  const char *cwd;   /* the working directory; NULL: the parent's */
  /* Where the child's 0, 1 and 2 come from: WEFT_PROC_INHERIT (or 0, the
   * default, for stdin; 0 as stdout_fd or stderr_fd also means inherit),
   * WEFT_PROC_DEVNULL, or an fd of the parent (a file, a pipe's end). */
  int stdin_fd, stdout_fd, stderr_fd;
} weft_proc_cmd;

/*
 * weft_proc_start — fork a child that runs fn(arg) and exits with its
 * return value (an exit() or a signal in fn end it the same way). stdio's
 * buffers are flushed first, so that the child, which flushes its own at
 * its end, does not write the parent's output a second time.
 *
 * Returns 0 with the handle in *out; -EINVAL (out or fn NULL); -EAGAIN
 * (fork refused: too many processes, or no thread for the reaper);
 * -ENOMEM; -EMFILE or -ENFILE (no fd for the pidfd, or, without pidfds,
 * for the reaper's eventfd); -ENOSPC (the epoll watch limit). Blocks only
 * for the flush and the fork. Call from a task
 * or a thread; what other threads are doing at the fork is their
 * business, as with any fork (the child must not rely on locks they
 * held; weft's own are reset).
 */
WEFT_API int weft_proc_start(weft_proc **out, weft_proc_fn fn, void *arg,
                             const weft_proc_opts *opts);

/*
 * weft_proc_exec — start cmd in a child (posix_spawn, or fork and exec for
 * a daemon, which then also gets PR_SET_PDEATHSIG).
 *
 * Returns 0 with the handle in *out, or the reason the program could not
 * be started, as the exec reported it: -ENOENT (no such program), -EACCES
 * (not executable), -ENOEXEC, -ENOTDIR; -EBADF (a bad stdio fd, before any
 * child is made); -EINVAL (out, cmd or argv[0] NULL); -EAGAIN; -ENOMEM. No
 * child is left behind when it fails. (Under qemu-user, whose vfork is a
 * fork, glibc cannot see a non-daemon's exec fail: it starts, and exits
 * with 127.)
 */
WEFT_API int weft_proc_exec(weft_proc **out, const weft_proc_cmd *cmd,
                            const weft_proc_opts *opts);

/*
 * weft_proc_join — wait up to timeout ns for p to exit; its exit code in
 * *exitcode (may be NULL). Joining a child that has exited returns at once;
 * a child may be joined many times, and by many joiners at once.
 *
 * Returns 0; -ETIMEDOUT (still running); -ECANCELED (a cancelled task);
 * -EINVAL (p NULL, a negative timeout other than WEFT_FOREVER).
 * Blocks: a task parks only itself.
 */
WEFT_API int weft_proc_join(weft_proc *p, int64_t timeout, int *exitcode);

/* weft_proc_exitcode — p's exit code in *code if it has exited: returns
 * 0; -EBUSY while it runs (Python's None); -EINVAL. Does not block. */
WEFT_API int weft_proc_exitcode(weft_proc *p, int *code);

/* weft_proc_alive — whether p has not exited yet (false for NULL). */
WEFT_API bool weft_proc_alive(weft_proc *p);

/* weft_proc_pid — p's process id, or -1 for NULL. */
WEFT_API pid_t weft_proc_pid(const weft_proc *p);

/* weft_proc_name — p's name, or NULL for NULL. Lives as long as p. */
WEFT_API const char *weft_proc_name(const weft_proc *p);

/*
 * weft_proc_signal — send signo to p. weft_proc_terminate sends SIGTERM,
 * weft_proc_kill SIGKILL. Returns 0 (also when p has exited already: there
 * is nothing left to signal, as Python's terminate() does nothing then);
 * -EINVAL (p NULL, a bad signo); -EPERM. Never signals a process that
 * merely reuses p's pid: the signal goes through p's pidfd, or, without
 * pidfds, is sent by pid only while weft holds p unreaped (and so its pid
 * is nobody else's). A program that reaps weft's children itself (see
 * above) lets their pids go early: without pidfds weft then checks that p
 * is still its child first, which rules out any other process but one
 * more child of the program that got the very same pid in the meantime.
 */
WEFT_API int weft_proc_signal(weft_proc *p, int signo);
WEFT_API int weft_proc_terminate(weft_proc *p);
WEFT_API int weft_proc_kill(weft_proc *p);

/*
 * weft_proc_free — let go of p. A child still running goes on (a daemon
 * is still terminated at exit) and is reaped when it exits (within about
 * 10 ms). Not while
 * another task or thread joins p. NULL is ignored.
 */
WEFT_API void weft_proc_free(weft_proc *p);

/*
 * weft_proc_subreaper — make this process the reaper of the orphans among
 * its descendants (PR_SET_CHILD_SUBREAPER), as a supervisor wants: a
 * grandchild whose parent dies becomes its child, and weft's reaper
 * collects it when it exits (at once, then every 100 ms). From then on the
 * reaper collects *every* exited child weft did not start: a program that
 * also waits for children of its own (system(), popen(), its own fork and
 * waitpid) must not make itself a subreaper this way. Returns 0, or
 * -EINVAL where the kernel lacks it.
 */
WEFT_API int weft_proc_subreaper(void);

/* Flags of weft_proc_daemonize. */
#define WEFT_DAEMON_KEEP_CWD 1 /* do not chdir("/") */
#define WEFT_DAEMON_KEEP_FDS 2 /* close nothing above 2 */

/*
 * weft_proc_daemonize — turn the calling process into a daemon, the
 * classic way: fork (the original process exits at once with status 0,
 * its shell gets its prompt back), setsid (a new session, no controlling
 * terminal), fork again (the session leader exits, so the daemon can never
 * reacquire a terminal), chdir("/") and umask(027), every fd above 2
 * closed, and 0, 1, 2 on /dev/null. Call it before any thread is started
 * (only the calling thread goes on in the daemon) and before any child
 * (the daemon is no longer their parent).
 *
 * Returns 0 in the daemon; never returns in the original process. Returns
 * -EINVAL (a flag bit other than WEFT_DAEMON_KEEP_CWD and
 * WEFT_DAEMON_KEEP_FDS: nothing is done), -EAGAIN, -ENOMEM (a fork refused)
 * or -EPERM (setsid refused) in the original process, which is then
 * unchanged. Blocks until the daemon has started. Call it from the main
 * thread, outside any task.
 */
WEFT_API int weft_proc_daemonize(int flags);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_PROC_H */
