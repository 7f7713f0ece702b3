/*
 * Processes: start and join with Python's exit codes (a status, or minus
 * the killing signal); join's timeout; terminate and kill; exec with
 * arguments, environment, working directory and redirections, and its
 * failures reported by errno; a task joining a child parks only itself;
 * no zombie is left, joined or not, freed or not (a storm of children with
 * random exits and crashes); daemon children die with their parent, even
 * one killed by SIGKILL; fork from a threaded program and from a task
 * leaves a working child; the program's own children keep their statuses
 * for it, and its SIGCHLD handler, or SIG_IGN, stays in force; bad input.
 *
 * The cases that matter run a second time without pidfds (the SIGCHLD
 * watcher, forced by WEFT_PROC_NO_PIDFD=1): see the end of this file.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

#ifdef __SANITIZE_THREAD__
static const bool tsan = true;
#else
static const bool tsan = false;
#endif
#ifdef __SANITIZE_ADDRESS__
static const bool asan = true;
#else
static const bool asan = false;
#endif

static int exit_with(void *arg) { return (int)VI(arg); }

static int die_by(void *arg) {
  raise((int)VI(arg));
  return 0;
}

static int sleep_long(void *arg) {
  (void)arg;
  pause();
  return 0;
}

/* The state (R, S, Z, ...) and parent of process pid (a number, as /proc
 * names it), by /proc; false when it is gone. */
static bool stat_of(const char *pid, char *state, int *ppid) {
  char path[300], buf[512];
  snprintf(path, sizeof path, "/proc/%s/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[len] = '\0';
  char *close_paren = strrchr(buf, ')'); /* the name may hold anything */
  return close_paren && sscanf(close_paren + 2, "%c %d", state, ppid) == 2;
}

/* The zombies among this process's children, by /proc. */
static int zombies(void) {
  DIR *d = opendir("/proc");
  CHECK(d != NULL);
  int n = 0;
  pid_t me = getpid();
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char state;
    int ppid;
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9' &&
        stat_of(e->d_name, &state, &ppid) && ppid == me && state == 'Z')
      n++;
  }
  closedir(d);
  return n;
}

/* Whether this run forces the SIGCHLD watcher (see the end of the file). */
static bool without_pidfds_forced(void) {
  const char *e = getenv("WEFT_PROC_NO_PIDFD");
  return e && *e && strcmp(e, "0") != 0;
}

/* Whether SIGCHLD has a handler that takes siginfo: weft's, when it
 * watches without pidfds (or the program's, in the cases that install
 * one). */
static bool sigchld_has_siginfo_handler(void) {
  struct sigaction sa;
  return sigaction(SIGCHLD, NULL, &sa) == 0 && (sa.sa_flags & SA_SIGINFO);
}

/* Waits (generously) until no child of this process is a zombie. */
static int zombies_after_a_while(void) {
  int n = zombies();
  for (int i = 0; i < 200 && n > 0; i++) {
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
    n = zombies();
  }
  return n;
}

TEST(exit_codes_are_pythons) {
  weft_proc *p;
  int code = 99;
  CHECK_EQ(weft_proc_start(&p, exit_with, IV(7), NULL), 0);
  CHECK(weft_proc_pid(p) > 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, 7);
  CHECK(!weft_proc_alive(p));
  CHECK_EQ(weft_proc_exitcode(p, &code), 0);
  CHECK_EQ(code, 7);
  CHECK_EQ(weft_proc_join(p, 0, &code), 0); /* joined again: at once */
  weft_proc_free(p);

  /* SIGUSR1, not SIGSEGV, which the sanitizers catch. */
  CHECK_EQ(weft_proc_start(&p, die_by, IV(SIGUSR1), NULL), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, -SIGUSR1);
  weft_proc_free(p);
}

TEST(join_times_out_then_terminate_and_kill_end_it) {
  weft_proc *p;
  int code;
  CHECK_EQ(weft_proc_start(&p, sleep_long, NULL,
                           &(weft_proc_opts){.name = "sleeper"}),
           0);
  CHECK_STR_HAS(weft_proc_name(p), "sleeper");
  CHECK_EQ(weft_proc_join(p, WEFT_MS(20), &code), -ETIMEDOUT);
  CHECK_EQ(weft_proc_exitcode(p, &code), -EBUSY);
  CHECK(weft_proc_alive(p));
  CHECK_EQ(weft_proc_terminate(p), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, -SIGTERM);
  CHECK_EQ(weft_proc_kill(p), 0); /* exited already: nothing to do */
  weft_proc_free(p);

  CHECK_EQ(weft_proc_start(&p, sleep_long, NULL, NULL), 0);
  CHECK_STR_HAS(weft_proc_name(p), "Process-");
  CHECK_EQ(weft_proc_kill(p), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, -SIGKILL);
  weft_proc_free(p);
}

/* Signals weft blocked stay weft's: a child starts with the mask the
 * program had. */

/* Whether signo is blocked in process pid, by its /proc status (SigBlk). */
static bool blocked_in(pid_t pid, int signo) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  unsigned long long mask = 0;
  bool found = false;
  while (!found && fgets(line, sizeof line, f))
    found = sscanf(line, "SigBlk: %llx", &mask) == 1;
  fclose(f);
  CHECK(found);
  return mask & (1ULL << (signo - 1));
}

/* Waits until pid has exec'd (its /proc comm is no longer ours), so that its
 * mask is the one it runs with; or, for a fork, a moment for it to start. */
static void settle(pid_t pid, const char *comm) {
  char path[64], buf[64] = "";
  snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
  for (int i = 0; i < 500; i++) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!comm || strncmp(buf, comm, strlen(comm)) == 0)
      return;
    struct timespec ts = {0, 2 * 1000000};
    nanosleep(&ts, NULL);
  }
  CHECK(!"the child never exec'd");
}

static void *wait_for_term(void *arg) {
  (void)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);
  weft_signal_wait(&set, WEFT_FOREVER); /* cancelled at the end */
  return NULL;
}

/* From a task: starts a child — kind 0 runs sleep_long in a fork, kind 1
 * execs `sleep 10` — and returns it once it runs its code with the mask
 * it will keep (a fork sets its mask as fn starts: a moment for that). */
static weft_proc *start_settled(int kind, const weft_proc_opts *opts) {
  weft_proc *p;
  char *argv[] = {"sleep", "10", NULL};
  if (kind == 0)
    CHECK_EQ(weft_proc_start(&p, sleep_long, NULL, opts), 0);
  else
    CHECK_EQ(weft_proc_exec(&p, &(weft_proc_cmd){.argv = argv}, opts), 0);
  settle(weft_proc_pid(p), kind == 0 ? NULL : "sleep");
  for (int i = 0; i < 200 && blocked_in(weft_proc_pid(p), SIGTERM); i++)
    weft_sleep(WEFT_MS(10));
  return p;
}

/* Ends p with weft_proc_terminate, which must work (SIGTERM not blocked in
 * it), and lets it go. */
static void terminate_and_free(weft_proc *p) {
  CHECK_EQ(weft_proc_terminate(p), 0);
  int code = 0;
  CHECK_EQ(weft_proc_join(p, WEFT_SEC(5), &code), 0);
  CHECK_EQ(code, -SIGTERM);
  weft_proc_free(p);
}

/* Starts a child (fn, or `sleep 10` with the opts) while a task waits for
 * SIGTERM, checks its mask, and ends it with weft_proc_terminate. */
static void *terminate_while_waiting(void *arg) {
  weft_proc_opts *opts = arg;
  weft_task *waiter;
  CHECK_EQ(weft_task_spawn(&waiter, wait_for_term, NULL, NULL), 0);
  weft_yield(); /* it blocks SIGTERM and SIGUSR2, and waits */
  for (int kind = 0; kind < 2; kind++) {
    weft_proc *p = start_settled(kind, opts);
    CHECK(!blocked_in(weft_proc_pid(p), SIGTERM));
    CHECK(!blocked_in(weft_proc_pid(p), SIGUSR2));
    CHECK(blocked_in(weft_proc_pid(p), SIGUSR1)); /* the program's own */
    terminate_and_free(p);
  }
  /* Still blocked here: weft's wait goes on. */
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  CHECK(sigismember(&now, SIGTERM));
  CHECK(sigismember(&now, SIGUSR1));
  weft_task_cancel(waiter);
  CHECK_EQ(weft_task_join(waiter, WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void terminate_children_started_during_a_signal_wait(bool daemon) {
  /* The program blocks SIGUSR1 itself; weft blocks SIGTERM and SIGUSR2
   * for its wait: the child gets the first blocked, not the others. */
  sigset_t mine;
  sigemptyset(&mine);
  sigaddset(&mine, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &mine, NULL);
  weft_proc_opts opts = {.daemon = daemon};
  CHECK_EQ(weft_run(terminate_while_waiting, &opts, NULL), 0);
}

TEST(terminate_ends_a_child_started_during_a_signal_wait) {
  terminate_children_started_during_a_signal_wait(false);
}

TEST(terminate_ends_a_daemon_child_started_during_a_signal_wait) {
  terminate_children_started_during_a_signal_wait(true);
}

/* A thread that a hub's thread starts during the wait inherits SIGTERM
 * blocked, and weft's record of it: its children start without it. */
static void *start_and_terminate(void *arg) {
  (void)arg;
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, sleep_long, NULL, NULL), 0);
  settle(weft_proc_pid(p), NULL);
  for (int i = 0; i < 200 && blocked_in(weft_proc_pid(p), SIGTERM); i++)
    usleep(10 * 1000);
  CHECK(!blocked_in(weft_proc_pid(p), SIGTERM));
  terminate_and_free(p);
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  return IV(sigismember(&now, SIGTERM)); /* inherited: still blocked */
}

static void *thread_during_a_wait(void *arg) {
  (void)arg;
  weft_task *waiter;
  CHECK_EQ(weft_task_spawn(&waiter, wait_for_term, NULL, NULL), 0);
  weft_yield(); /* it blocks SIGTERM and SIGUSR2, and waits */
  weft_thread *t;
  CHECK_EQ(weft_thread_start(&t, start_and_terminate, NULL, NULL), 0);
  void *r;
  CHECK_EQ(weft_thread_join(t, WEFT_SEC(30), &r), 0);
  CHECK_EQ(VI(r), 1);
  CHECK_EQ(weft_thread_detach(t), 0);
  weft_task_cancel(waiter);
  CHECK_EQ(weft_task_join(waiter, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_thread_started_during_a_signal_wait_starts_children_without_it) {
  CHECK_EQ(weft_run(thread_during_a_wait, NULL, NULL), 0);
}

/* A signal the program blocked itself before weft blocked it too stays
 * blocked in the child. */
static void *wait_for_usr1_briefly(void *arg) {
  (void)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  CHECK_EQ(weft_signal_wait(&set, 0), -ETIMEDOUT);
  for (int kind = 0; kind < 2; kind++) {
    weft_proc *p = start_settled(kind, NULL);
    CHECK(blocked_in(weft_proc_pid(p), SIGUSR1));
    CHECK(!blocked_in(weft_proc_pid(p), SIGTERM));
    CHECK_EQ(weft_proc_kill(p), 0);
    CHECK_EQ(weft_proc_join(p, WEFT_SEC(5), NULL), 0);
    weft_proc_free(p);
  }
  return NULL;
}

TEST(a_signal_the_program_blocked_stays_blocked_in_the_child) {
  sigset_t mine;
  sigemptyset(&mine);
  sigaddset(&mine, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &mine, NULL);
  CHECK_EQ(weft_run(wait_for_usr1_briefly, NULL, NULL), 0);
}

TEST(exec_runs_a_program_with_its_arguments_environment_and_stdio) {
  char dir[] = "/tmp/weft-proc-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char out_path[128];
  snprintf(out_path, sizeof out_path, "%s/out", dir);
  int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(out >= 0);
  char *argv[] = {"sh", "-c",    "echo \"$1 $GREETING $(pwd)\"; exit 3",
                  "sh", "hello", NULL};
  char *envp[] = {"GREETING=world", "PATH=/usr/bin:/bin", NULL};
  weft_proc *p;
  CHECK_EQ(weft_proc_exec(&p,
                          &(weft_proc_cmd){.argv = argv,
                                           .envp = envp,
                                           .cwd = dir,
                                           .stdin_fd = WEFT_PROC_DEVNULL,
                                           .stdout_fd = out},
                          NULL),
           0);
  close(out);
  int code;
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, 3);
  weft_proc_free(p);
  char buf[256] = "";
  FILE *f = fopen(out_path, "r");
  CHECK(f != NULL);
  CHECK(fgets(buf, sizeof buf, f) != NULL);
  fclose(f);
  char want[256];
  snprintf(want, sizeof want, "hello world %s\n", dir);
  CHECK_STR_HAS(buf, want);
  unlink(out_path);
  rmdir(dir);
}

TEST(exec_failures_are_reported_by_errno) {
  weft_proc *p = NULL;
  char plain_file[] = "/tmp/weft-not-exec-XXXXXX"; /* no x bit, even for root */
  int fd = mkstemp(plain_file);
  CHECK(fd >= 0);
  CHECK_EQ(fchmod(fd, 0644), 0);
  close(fd);
  char *missing[] = {"/nonexistent/program", NULL};
  char *not_exec[] = {plain_file, NULL};
  char *unknown[] = {"weft-no-such-program-anywhere", NULL};
  /* qemu-user makes vfork a fork, so that neither glibc's posix_spawn
   * nor weft's daemon path can see the exec fail: checked on real machines
   * only; and ThreadSanitizer does the same to weft's vfork. */
  for (int daemon = 0; daemon < 2 - tsan && !harness_emulated(); daemon++) {
    weft_proc_opts o = {.daemon = daemon};
    CHECK_EQ(weft_proc_exec(&p, &(weft_proc_cmd){.argv = missing}, &o),
             -ENOENT);
    CHECK_EQ(weft_proc_exec(&p, &(weft_proc_cmd){.argv = not_exec}, &o),
             -EACCES);
    CHECK_EQ(weft_proc_exec(&p, &(weft_proc_cmd){.argv = unknown}, &o),
             -ENOENT);
  }
  unlink(plain_file);
  CHECK(p == NULL);
  CHECK_EQ(zombies_after_a_while(), 0);
}

TEST(a_daemon_program_runs_and_is_joined) {
  char *argv[] = {"sh", "-c", "exit 6", NULL};
  weft_proc *p;
  int code;
  CHECK_EQ(weft_proc_exec(&p, &(weft_proc_cmd){.argv = argv},
                          &(weft_proc_opts){.daemon = true}),
           0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, 6);
  weft_proc_free(p);
}

TEST(a_stale_errno_does_not_make_a_live_child_dead) {
  weft_proc *p;
  int code;
  CHECK_EQ(weft_proc_start(&p, sleep_long, NULL, NULL), 0);
  errno = ECHILD;
  CHECK(weft_proc_alive(p));
  CHECK_EQ(weft_proc_exitcode(p, &code), -EBUSY);
  CHECK_EQ(weft_proc_kill(p), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, -SIGKILL);
  weft_proc_free(p);
}

/* --- tasks ----------------------------------------------------------------
 * A task joining a child parks only itself: another task of its hub keeps
 * ticking meanwhile. */

static atomic_int ticks;

static void *ticker(void *arg) {
  (void)arg;
  while (weft_sleep(WEFT_MS(1)) == 0)
    atomic_fetch_add(&ticks, 1);
  return NULL;
}

static int sleep_100ms(void *arg) {
  (void)arg;
  struct timespec ts = {0, 100 * 1000000};
  nanosleep(&ts, NULL);
  return 5;
}

static void *join_in_a_task(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, ticker, NULL, NULL), 0);
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, sleep_100ms, NULL, NULL), 0);
  int code;
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, 5);
  weft_proc_free(p);
  CHECK(atomic_load(&ticks) >= 10); /* the hub ran on meanwhile */
  CHECK_EQ(weft_task_cancel(t), 0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(a_task_joining_a_child_parks_only_itself) {
  CHECK_EQ(weft_run(join_in_a_task, NULL, NULL), 0);
}

/* Two tasks of one hub join one child: one gives up early, the other must
 * still see the exit (it waited on the reap, not on the pidfd, which the
 * first held). */
static weft_proc *shared_child;

static void *join_briefly(void *arg) {
  (void)arg;
  CHECK_EQ(weft_proc_join(shared_child, WEFT_MS(20), NULL), -ETIMEDOUT);
  return NULL;
}

static void *join_for_good(void *arg) {
  (void)arg;
  int code;
  CHECK_EQ(weft_proc_join(shared_child, WEFT_SEC(20), &code), 0);
  CHECK_EQ(code, 5);
  return NULL;
}

static void *two_joiners(void *arg) {
  (void)arg;
  CHECK_EQ(weft_proc_start(&shared_child, sleep_100ms, NULL, NULL), 0);
  weft_task *a, *b;
  CHECK_EQ(weft_task_spawn(&a, join_briefly, NULL, NULL), 0);
  CHECK_EQ(weft_task_spawn(&b, join_for_good, NULL, NULL), 0);
  int64_t start = harness_now_ns();
  CHECK_EQ(weft_task_join(a, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(b, WEFT_FOREVER, NULL), 0);
  CHECK(harness_now_ns() - start < WEFT_SEC(10)); /* not the 20 s */
  weft_proc_free(shared_child);
  return NULL;
}

TEST(a_joiner_that_gives_up_does_not_strand_another) {
  CHECK_EQ(weft_run(two_joiners, NULL, NULL), 0);
}

/* A task joining a child is cancellable; the child is still reaped after,
 * by a thread's join. */
static void *join_until_cancelled(void *arg) {
  return IV(weft_proc_join(arg, WEFT_FOREVER, NULL));
}

static void *cancel_a_join(void *arg) {
  weft_proc *p = arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, join_until_cancelled, p, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(20)), 0);
  CHECK_EQ(weft_task_cancel(t), 0);
  void *r = NULL;
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  return NULL;
}

TEST(a_join_in_a_task_is_cancellable) {
  weft_proc *p;
  int code;
  CHECK_EQ(weft_proc_start(&p, sleep_long, NULL, NULL), 0);
  CHECK_EQ(weft_run(cancel_a_join, p, NULL), 0);
  CHECK(weft_proc_alive(p));
  CHECK_EQ(weft_proc_kill(p), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_SEC(10), &code), 0);
  CHECK_EQ(code, -SIGKILL);
  weft_proc_free(p);
}

/* A supervisor task cancelled at shutdown still gives its child time to
 * exit: inside a shield its join waits (up to its own timeout) and reports
 * the child's true exit code; unshielded, the join would fail at once. */
static int exit_5_after_150ms(void *arg) {
  (void)arg;
  struct timespec ts = {0, 150 * 1000 * 1000};
  nanosleep(&ts, NULL);
  return 5;
}

static void *supervise(void *arg) {
  weft_proc *p = arg;
  CHECK_EQ(weft_sleep(INT64_MAX), -ECANCELED); /* shutdown */
  int code = -1;
  CHECK_EQ(weft_proc_join(p, WEFT_SEC(5), &code), -ECANCELED); /* at once */
  CHECK(weft_proc_alive(p));
  CHECK_EQ(weft_task_shield(), 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_proc_join(p, WEFT_MS(10), &code), -ETIMEDOUT); /* its own */
  CHECK(harness_now_ns() - t0 >= WEFT_MS(10));
  CHECK_EQ(weft_proc_join(p, WEFT_SEC(5), &code), 0);
  CHECK_EQ(code, 5);
  CHECK_EQ(weft_task_unshield(), -ECANCELED);
  return IV(code);
}

static void *shut_down_a_supervisor(void *arg) {
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, supervise, arg, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(20)), 0);
  CHECK_EQ(weft_task_cancel(t), 0);
  void *r = NULL;
  CHECK_EQ(weft_task_join(t, WEFT_SEC(10), &r), 0);
  CHECK_EQ(VI(r), 5);
  return NULL;
}

TEST(a_cancelled_supervisor_waits_for_its_child_in_a_shield) {
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, exit_5_after_150ms, NULL, NULL), 0);
  CHECK_EQ(weft_run(shut_down_a_supervisor, p, NULL), 0);
  weft_proc_free(p);
}

/* A child forked from inside a task runs outside any hub, and may start a
 * hub of its own. */
static void *child_task(void *arg) {
  (void)arg;
  return IV(11);
}

static int run_a_hub(void *arg) {
  (void)arg;
  void *r = NULL;
  if (weft_run(child_task, NULL, &r) != 0)
    return 1;
  return (int)VI(r);
}

static void *fork_in_a_task(void *arg) {
  (void)arg;
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, run_a_hub, NULL, NULL), 0);
  int code;
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, 11);
  weft_proc_free(p);
  return NULL;
}

TEST(a_child_forked_in_a_task_runs_a_hub_of_its_own) {
  CHECK_EQ(weft_run(fork_in_a_task, NULL, NULL), 0);
}

/* A child forked while other threads run (and hold weft's locks now and
 * then) starts clean: it can start threads and children of its own. */
static atomic_int stop_spinning;

static void *spin_locks(void *arg) {
  static weft_lock l = WEFT_LOCK_INIT;
  (void)arg;
  while (!atomic_load(&stop_spinning)) {
    weft_lock_acquire(&l, WEFT_FOREVER);
    weft_lock_release(&l);
  }
  return NULL;
}

static void *return_3(void *arg) {
  (void)arg;
  return IV(3);
}

/* Neither TSan nor qemu-user can start a thread in a child of a
 * multi-threaded fork, nor can gcc 12's ASan: its allocator's locks are
 * not taken around fork, so one held by another thread at the fork stays
 * held in the child, and the new thread's start (which allocates) waits
 * for it for good (seen under load, one run in several). Under them the
 * child starts only processes. */
static int use_weft_in_child(void *arg) {
  (void)arg;
  static weft_lock mine = WEFT_LOCK_INIT;
  if (weft_lock_acquire(&mine, 0) != 0 || weft_lock_release(&mine) != 0)
    return 4;
  if (tsan || asan || harness_emulated())
    return 0; /* no threads here: weft's reaper is one too */
  weft_thread *t;
  void *r = NULL;
  if (weft_thread_start(&t, return_3, NULL, NULL) != 0 ||
      weft_thread_join(t, WEFT_FOREVER, &r) != 0 || VI(r) != 3 ||
      weft_thread_detach(t) != 0)
    return 1;
  weft_proc *p;
  int code = -1;
  if (weft_proc_start(&p, exit_with, IV(4), NULL) != 0 ||
      weft_proc_join(p, WEFT_FOREVER, &code) != 0)
    return 2;
  weft_proc_free(p);
  return code == 4 ? 0 : 3;
}

TEST(fork_from_a_threaded_program_leaves_a_working_child) {
  weft_thread *t[2];
  for (int i = 0; i < 2; i++)
    CHECK_EQ(weft_thread_start(&t[i], spin_locks, NULL, NULL), 0);
  for (int i = 0; i < 20; i++) {
    weft_proc *p;
    int code = -1;
    CHECK_EQ(weft_proc_start(&p, use_weft_in_child, NULL, NULL), 0);
    CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
    CHECK_EQ(code, 0);
    weft_proc_free(p);
  }
  atomic_store(&stop_spinning, 1);
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(weft_thread_join(t[i], WEFT_FOREVER, NULL), 0);
    CHECK_EQ(weft_thread_detach(t[i]), 0);
  }
}

/* --- no zombies -------------------------------------------------------- */

static int random_end(void *arg) {
  unsigned r = (unsigned)VI(arg);
  switch (r % 4) {
  case 0:
    raise(SIGKILL);
    return 0;
  case 1:
    abort();
  default:
    return (int)(r % 200);
  }
}

static void storm(int n) {
  unsigned seed = 12345;
  int joined = 0;
  for (int i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    unsigned r = seed >> 8;
    weft_proc *p;
    CHECK_EQ(weft_proc_start(&p, random_end, IV(r), NULL), 0);
    if (r % 3 == 0) { /* dropped without a join */
      weft_proc_free(p);
      continue;
    }
    int code;
    CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
    int want = r % 4 == 0 ? -SIGKILL : r % 4 == 1 ? -SIGABRT : (int)(r % 200);
    if (code != want)
      harness_fail(__FILE__, __LINE__, "child %d: exit code %d, not %d", i,
                   code, want);
    weft_proc_free(p);
    joined++;
  }
  CHECK(joined > n / 2);
  CHECK_EQ(zombies_after_a_while(), 0);
}

/* Waits (generously) until pid, a child handed to the reaper, is gone:
 * exited, and reaped (a zombie still takes signal 0). */
static void reaped_after_a_while(pid_t pid) {
  int max_looks = (int)(500 * harness_timeout_multiplier()), looks = 0;
  while (kill(pid, 0) == 0 && ++looks < max_looks) {
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  CHECK_EQ(errno, ESRCH);
  CHECK(looks < max_looks);
}

/* The reaper looks at new children every 10 ms while children are being
 * started, then sleeps after at most a fifth of a second without a start
 * (LINGER_TICKS, reaper.c), and the next start wakes it: a child dropped
 * then is reaped all the same. Round 0 starts the reaper (this test runs
 * in a process of its own); round 1, after the quiet spell, wakes it. */
TEST(a_child_dropped_after_a_quiet_spell_is_reaped) {
  for (int round = 0; round < 2; round++) {
    struct timespec quiet = {1, 300 * 1000000};
    nanosleep(&quiet, NULL);
    weft_proc *p;
    CHECK_EQ(weft_proc_start(&p, exit_with, IV(3), NULL), 0);
    pid_t pid = weft_proc_pid(p);
    weft_proc_free(p);
    reaped_after_a_while(pid);
  }
}

static int nap_then_exit(void *arg) {
  struct timespec ts = {0, VI(arg) * 1000000L};
  nanosleep(&ts, NULL);
  return 0;
}

/* A join that times out hands its child back to the reaper, which reaps
 * it when it exits though nobody joins it again. */
TEST(a_child_left_by_a_timed_out_join_is_reaped) {
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, nap_then_exit, IV(100), NULL), 0);
  pid_t pid = weft_proc_pid(p);
  CHECK_EQ(weft_proc_join(p, WEFT_MS(1), NULL), -ETIMEDOUT);
  weft_proc_free(p);
  reaped_after_a_while(pid);
}

TEST_TIMEOUT(a_storm_of_children_leaves_no_zombie, 300) {
  /* Under an emulator or sanitizers each fork is slow: fewer children. */
  storm(harness_timeout_multiplier() > 1 ? 1000 : 10000);
}

/* A thread that takes the signals the others block, sleeping in a call
 * that ThreadSanitizer intercepts. */
static void *take_signals(void *arg) {
  (void)arg;
  for (;;) {
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

/* The storm without pidfds (see the end of the file). ThreadSanitizer
 * holds a signal that comes during a raw futex wait (a thread's join)
 * until the wait ends, so that weft's reaper would hear of each exit at
 * its one-second backstop only: under it, SIGCHLD goes to a thread of its
 * own, as in a program that handles signals on one thread. */
static void test_a_storm_of_a_thousand_children_leaves_no_zombie(void) {
  if (tsan) {
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, take_signals, NULL), 0);
    pthread_detach(th);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &chld, NULL), 0);
  }
  storm(1000);
}

/* Waits until pid has exited: a zombie, or gone (reaped). */
static void wait_exited(pid_t pid) {
  char name[16], state;
  int ppid;
  snprintf(name, sizeof name, "%d", (int)pid);
  int64_t give_up =
      harness_now_ns() + (int64_t)(WEFT_SEC(10) * harness_timeout_multiplier());
  while (stat_of(name, &state, &ppid) && state != 'Z') {
    CHECK(harness_now_ns() < give_up);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
}

TEST(a_child_that_nobody_joins_is_reaped_when_it_exits) {
  weft_proc *kept, *dropped;
  CHECK_EQ(weft_proc_start(&kept, exit_with, IV(9), NULL), 0);
  CHECK_EQ(weft_proc_start(&dropped, exit_with, IV(8), NULL), 0);
  pid_t kept_pid = weft_proc_pid(kept), dropped_pid = weft_proc_pid(dropped);
  weft_proc_free(dropped);
  /* Both exit first (on a loaded machine a fork takes its time): no
   * zombie before that proves nothing. */
  wait_exited(kept_pid);
  wait_exited(dropped_pid);
  CHECK_EQ(zombies_after_a_while(), 0); /* kept is reaped too */
  int code;
  CHECK_EQ(weft_proc_exitcode(kept, &code), 0); /* and its code kept */
  CHECK_EQ(code, 9);
  weft_proc_free(kept);
}

/* --- a subreaper ---------------------------------------------------------
 * Orphaned grandchildren become this process's children and are reaped;
 * weft's own children, started meanwhile from several threads, keep their
 * exit codes (a sweep never takes a child being started for a stranger). */

static int orphan_a_grandchild(void *arg) {
  (void)arg;
  pid_t g = fork();
  if (g == 0) {
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
    _exit(0);
  }
  return 0; /* the grandchild is orphaned, to the subreaper */
}

static void *start_many(void *arg) {
  (void)arg;
  for (int i = 0; i < 200; i++) {
    weft_proc *p;
    int code = -1;
    CHECK_EQ(weft_proc_start(&p, exit_with, IV(i % 100), NULL), 0);
    CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
    CHECK_EQ(code, i % 100);
    weft_proc_free(p);
  }
  return NULL;
}

TEST_TIMEOUT(a_subreaper_reaps_orphans_and_keeps_its_own_exit_codes, 120) {
  int rc = weft_proc_subreaper();
  if (rc == -EINVAL && harness_emulated())
    harness_skip("qemu-user has no PR_SET_CHILD_SUBREAPER");
  CHECK_EQ(rc, 0);
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, orphan_a_grandchild, NULL, NULL), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, NULL), 0);
  weft_proc_free(p);
  weft_thread *t[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_thread_start(&t[i], start_many, NULL, NULL), 0);
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(weft_thread_join(t[i], WEFT_FOREVER, NULL), 0);
    CHECK_EQ(weft_thread_detach(t[i]), 0);
  }
  CHECK_EQ(zombies_after_a_while(), 0); /* the grandchild too */
}

/* --- daemons ----------------------------------------------------------- */

static int report_pid_then_sleep(void *arg) {
  int fd = (int)VI(arg);
  pid_t me = getpid();
  if (write(fd, &me, sizeof me) != sizeof me)
    return 1;
  pause();
  return 0;
}

/* A parent with a daemon child and a plain one; it tells their pids
 * through fd, then ends as `how` says. */
static void parent_of_two(int fd, int how) {
  weft_proc *d, *plain;
  bool forced = without_pidfds_forced();
  CHECK_EQ(weft_proc_start(&d, report_pid_then_sleep, IV(fd),
                           &(weft_proc_opts){.daemon = true}),
           0);
  CHECK_EQ(weft_proc_start(&plain, report_pid_then_sleep, IV(fd), NULL), 0);
  struct timespec ts = {0, 50 * 1000000};
  nanosleep(&ts, NULL);
  if (forced && !sigchld_has_siginfo_handler())
    abort(); /* the SIGCHLD watcher was not the one used */
  if (how == SIGKILL)
    raise(SIGKILL);
  exit(0);
}

static bool alive(pid_t pid) {
  /* A zombie is not alive: it is gone once its new parent reaps it. */
  char name[16], state;
  int ppid;
  snprintf(name, sizeof name, "%d", (int)pid);
  return stat_of(name, &state, &ppid) && state != 'Z' && state != 'X';
}

static void daemons_end_with(int how) {
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  pid_t parent = fork();
  CHECK(parent >= 0);
  if (parent == 0) {
    close(fds[0]);
    parent_of_two(fds[1], how);
  }
  close(fds[1]);
  pid_t kids[2];
  CHECK_EQ(read(fds[0], &kids[0], sizeof kids[0]), (ssize_t)sizeof kids[0]);
  CHECK_EQ(read(fds[0], &kids[1], sizeof kids[1]), (ssize_t)sizeof kids[1]);
  close(fds[0]);
  int status;
  CHECK_EQ(waitpid(parent, &status, 0), parent);
  if (how == SIGKILL)
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  else
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* Which is the daemon: the one that dies. The other lives on. */
  int live = 0;
  for (int i = 0; i < 200; i++) {
    live = alive(kids[0]) + alive(kids[1]);
    if (live == 1)
      break;
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  CHECK_EQ(live, 1);
  kill(kids[0], SIGKILL); /* the plain one, orphaned: ours to end */
  kill(kids[1], SIGKILL);
}

TEST(a_daemon_child_ends_with_its_parent_and_a_plain_one_does_not) {
  daemons_end_with(0);
}

TEST(a_daemon_child_dies_even_when_its_parent_is_killed) {
  daemons_end_with(SIGKILL);
}

/* --- the program's own children, and its SIGCHLD -------------------------
 * weft reaps only its own children: a child the program forked itself
 * keeps its status for the program's waitpid, and system() gets its
 * child's. The program's SIGCHLD handler still runs, and a program that
 * ignores SIGCHLD still has its children reaped by the kernel. */

/* Waits until pid, a child, has exited (and is a zombie, not reaped). */
static void wait_until_zombie(pid_t pid) {
  char name[16], state = '?';
  int ppid;
  snprintf(name, sizeof name, "%d", (int)pid);
  for (int i = 0; i < 500 && state != 'Z'; i++) {
    CHECK(stat_of(name, &state, &ppid));
    struct timespec ts = {0, 2 * 1000000};
    nanosleep(&ts, NULL);
  }
  CHECK_EQ(state, 'Z');
}

static atomic_int stop_churning;

/* weft's children come and go meanwhile, joined and dropped, so that its
 * reaper has every reason to look. */
static void *churn(void *arg) {
  (void)arg;
  for (int i = 0; !atomic_load(&stop_churning); i++) {
    weft_proc *p;
    int code = -1;
    CHECK_EQ(weft_proc_start(&p, exit_with, IV(i % 50), NULL), 0);
    if (i % 2 == 0) {
      CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
      CHECK_EQ(code, i % 50);
    }
    weft_proc_free(p);
  }
  return NULL;
}

TEST(the_programs_own_children_keep_their_statuses) {
  pid_t own = fork();
  CHECK(own >= 0);
  if (own == 0)
    _exit(42);
  wait_until_zombie(own);
  weft_thread *t;
  CHECK_EQ(weft_thread_start(&t, churn, NULL, NULL), 0);
  for (int i = 0; i < 5; i++) /* the program's own, while weft's come */
    CHECK_EQ(system("exit 3"), 3 << 8);
  struct timespec ts = {0, 50 * 1000000};
  nanosleep(&ts, NULL);
  atomic_store(&stop_churning, 1);
  CHECK_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(t), 0);
  int status = 0;
  CHECK_EQ(waitpid(own, &status, WNOHANG), own); /* still there: ours */
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 42);
  CHECK_EQ(zombies_after_a_while(), 0);
}

static atomic_int program_handler_runs;

static void programs_handler(int sig) {
  (void)sig;
  atomic_fetch_add(&program_handler_runs, 1);
}

TEST(the_programs_sigchld_handler_still_runs) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = programs_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  CHECK_EQ(sigaction(SIGCHLD, &sa, NULL), 0);
  for (int i = 0; i < 4; i++) {
    weft_proc *p;
    int code;
    CHECK_EQ(weft_proc_start(&p, exit_with, IV(i), NULL), 0);
    CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
    CHECK_EQ(code, i);
    weft_proc_free(p);
    /* Counted from the second child on: weft's handler, if it has one, is
     * installed by then, and the signals go through it. */
    if (i == 0)
      atomic_store(&program_handler_runs, 0);
  }
  for (int i = 0; i < 500 && atomic_load(&program_handler_runs) == 0; i++) {
    struct timespec ts = {0, 2 * 1000000};
    nanosleep(&ts, NULL);
  }
  CHECK(atomic_load(&program_handler_runs) > 0);
  struct sigaction now;
  CHECK_EQ(sigaction(SIGCHLD, NULL, &now), 0);
  if (without_pidfds_forced()) /* weft's, in front of the program's */
    CHECK((now.sa_flags & SA_SIGINFO) && (now.sa_flags & SA_RESTART));
  else /* the program's, untouched */
    CHECK(!(now.sa_flags & SA_SIGINFO) && now.sa_handler == programs_handler);
}

/* A program whose handler reaps every child itself takes weft's exit
 * codes too, but no join hangs, and no signal goes astray. */
static void reap_everything(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

TEST(a_program_that_reaps_every_child_hangs_no_join) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = reap_everything;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  CHECK_EQ(sigaction(SIGCHLD, &sa, NULL), 0);
  for (int i = 0; i < 20; i++) {
    weft_proc *p;
    CHECK_EQ(weft_proc_start(&p, exit_with, IV(1), NULL), 0);
    CHECK_EQ(weft_proc_join(p, WEFT_SEC(10), NULL), 0);
    CHECK(!weft_proc_alive(p));
    CHECK_EQ(weft_proc_kill(p), 0); /* gone: nothing is signalled */
    weft_proc_free(p);
  }
  CHECK_EQ(zombies_after_a_while(), 0);
}

/* SIGCHLD ignored: the kernel reaps every child as it exits, the
 * program's and weft's; weft's lose their exit codes, but joins, kills
 * and the zombie count hold. */
TEST(with_sigchld_ignored_no_child_is_a_zombie) {
  if (harness_emulated())
    harness_skip("qemu-user keeps SIGCHLD's disposition to itself: the "
                 "kernel does not reap for an ignored SIGCHLD there");
  CHECK(signal(SIGCHLD, SIG_IGN) != SIG_ERR);
  weft_proc *p;
  int code = 0;
  CHECK_EQ(weft_proc_start(&p, exit_with, IV(5), NULL), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_SEC(10), &code), 0);
  CHECK_EQ(code, -SIGKILL); /* the kernel kept no status: lost, as said */
  weft_proc_free(p);
  CHECK_EQ(weft_proc_start(&p, sleep_long, NULL, NULL), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_MS(20), NULL), -ETIMEDOUT);
  CHECK_EQ(weft_proc_kill(p), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_SEC(10), NULL), 0);
  CHECK(!weft_proc_alive(p));
  weft_proc_free(p);
  pid_t own = fork();
  CHECK(own >= 0);
  if (own == 0)
    _exit(0);
  CHECK_EQ(zombies_after_a_while(), 0); /* the program's too */
  struct sigaction now;
  CHECK_EQ(sigaction(SIGCHLD, NULL, &now), 0);
  if (without_pidfds_forced()) /* weft's, which keeps the kernel reaping */
    CHECK((now.sa_flags & SA_SIGINFO) && (now.sa_flags & SA_NOCLDWAIT));
  else
    CHECK(now.sa_handler == SIG_IGN);
}

/* Forks a child of the program's own (it waits for a signal) at pid
 * `want`, through ns_last_pid: returns its pid, or -1 where the next pid
 * cannot be chosen (no CAP_SYS_ADMIN) or others keep taking it. */
static pid_t fork_at(pid_t want) {
  for (int tries = 0; tries < 20; tries++) {
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
    if (fd < 0)
      return -1;
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%d", (int)want - 1);
    bool set = write(fd, buf, (size_t)n) == n;
    close(fd);
    if (!set)
      return -1;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      pause();
      _exit(0);
    }
    if (pid == want)
      return pid;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  return -1;
}

/* Once weft reaped a child, its pid may be another process's: a signal
 * to the handle must not reach that one. */
TEST(a_pid_reused_after_the_reap_is_never_signalled) {
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, exit_with, IV(0), NULL), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, NULL), 0);
  pid_t other = fork_at(weft_proc_pid(p));
  if (other < 0) {
    weft_proc_free(p);
    harness_skip("the next pid cannot be chosen here (ns_last_pid)");
  }
  CHECK_EQ(weft_proc_kill(p), 0);
  CHECK_EQ(weft_proc_terminate(p), 0);
  struct timespec ts = {0, 20 * 1000000};
  nanosleep(&ts, NULL);
  int status = 0;
  CHECK_EQ(waitpid(other, &status, WNOHANG), 0); /* alive */
  kill(other, SIGKILL);
  CHECK_EQ(waitpid(other, &status, 0), other);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  weft_proc_free(p);
}

TEST(with_pidfds_sigchld_is_left_alone) {
  int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
  if (fd < 0 || without_pidfds_forced())
    harness_skip("no pidfds here: weft watches through SIGCHLD");
  close(fd);
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, exit_with, IV(0), NULL), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, NULL), 0);
  weft_proc_free(p);
  struct sigaction now;
  CHECK_EQ(sigaction(SIGCHLD, NULL, &now), 0);
  CHECK(!(now.sa_flags & SA_SIGINFO) && now.sa_handler == SIG_DFL);
}

/* --- bad input --------------------------------------------------------- */

TEST(bad_input_changes_nothing) {
  weft_proc *p = NULL;
  int code;
  CHECK_EQ(weft_proc_start(NULL, exit_with, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_proc_start(&p, NULL, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_proc_exec(&p, NULL, NULL), -EINVAL);
  CHECK_EQ(weft_proc_exec(&p, &(weft_proc_cmd){0}, NULL), -EINVAL);
  char *argv[] = {"/bin/true", NULL};
  CHECK_EQ(weft_proc_exec(&p, &(weft_proc_cmd){.argv = argv, .stdout_fd = 999},
                          NULL),
           -EBADF);
  CHECK(p == NULL);
  CHECK_EQ(weft_proc_join(NULL, 0, &code), -EINVAL);
  CHECK_EQ(weft_proc_exitcode(NULL, &code), -EINVAL);
  CHECK(!weft_proc_alive(NULL));
  CHECK_EQ(weft_proc_pid(NULL), -1);
  CHECK(weft_proc_name(NULL) == NULL);
  CHECK_EQ(weft_proc_signal(NULL, SIGTERM), -EINVAL);
  weft_proc_free(NULL);
  CHECK_EQ(weft_proc_start(&p, exit_with, IV(0), NULL), 0);
  CHECK_EQ(weft_proc_signal(p, 0), -EINVAL);
  CHECK_EQ(weft_proc_signal(p, 4096), -EINVAL);
  code = 77;
  CHECK_EQ(weft_proc_join(p, -2, &code), -EINVAL); /* a bad timeout */
  CHECK_EQ(weft_proc_join(p, INT64_MIN, &code), -EINVAL);
  CHECK_EQ(code, 77);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, 0);
  weft_proc_free(p);
}

/* --- message pipes --------------------------------------------------------
 * Messages of any length cross a socketpair and a pipe whole and in order,
 * between processes and between tasks; a receive that times out halfway
 * goes on where it stopped; a closed or dead peer is -EPIPE or -EPROTO,
 * never a hang or a SIGPIPE. */

static void fill(unsigned char *buf, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++)
    buf[i] = (unsigned char)(seed * 31 + i * 7);
}

static bool filled(const unsigned char *buf, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++)
    if (buf[i] != (unsigned char)(seed * 31 + i * 7))
      return false;
  return true;
}

static const size_t sizes[] = {0, 1, 7, 8, 4096, 65537, 1 << 20, 3};

/* The two ends of a pair, for a child: it keeps `theirs`. */
static weft_msgpipe *ends[2];

/* The child echoes every message back, then ends at -EPIPE. It closes its
 * copy of the parent's end first, as with any pipe: else the parent's
 * close would not end anything. */
static int echo_child(void *arg) {
  (void)arg;
  weft_msgpipe_free(ends[0]);
  weft_msgpipe *m = ends[1];
  for (;;) {
    void *msg;
    size_t len;
    int rc = weft_msgpipe_recv(m, &msg, &len, WEFT_FOREVER);
    if (rc == -EPIPE)
      return 0;
    if (rc < 0)
      return 1;
    rc = weft_msgpipe_send(m, msg, len, WEFT_FOREVER);
    free(msg);
    if (rc < 0)
      return 2;
  }
}

/* Two tasks of one hub send on pipes that are full: one finishes, then the
 * other's reader goes. The other gets -EPIPE and the process lives (weft
 * must not leave SIGPIPE blocked, or unblock it, across a task's wait:
 * the mask is the thread's, shared by the hub's tasks), and the thread's
 * mask ends as it began. */
enum { PIPE_MSG = 1 << 20 };
static int pipe_a[2], pipe_b[2];

static void *send_big(void *arg) {
  weft_msgpipe *m = arg;
  char *msg = calloc(1, PIPE_MSG);
  CHECK(msg != NULL);
  int rc = weft_msgpipe_send(m, msg, PIPE_MSG, WEFT_SEC(10));
  free(msg);
  return IV(rc);
}

static void *two_senders(void *arg) {
  (void)arg;
  weft_msgpipe *ma, *mb;
  CHECK_EQ(weft_msgpipe_open(&ma, pipe_a[1]), 0);
  CHECK_EQ(weft_msgpipe_open(&mb, pipe_b[1]), 0);
  weft_task *a, *b;
  CHECK_EQ(weft_task_spawn(&a, send_big, ma, NULL), 0);
  CHECK_EQ(weft_task_spawn(&b, send_big, mb, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(20)), 0); /* both wait for room */
  char *buf = malloc(PIPE_MSG + 8);
  CHECK(buf != NULL);
  size_t got = 0;
  while (got < PIPE_MSG + 8) {
    ssize_t n = weft_io_read(pipe_a[0], buf, PIPE_MSG + 8 - got, WEFT_SEC(10));
    CHECK(n > 0);
    got += (size_t)n;
  }
  free(buf);
  void *r;
  CHECK_EQ(weft_task_join(a, WEFT_SEC(10), &r), 0);
  CHECK_EQ(VI(r), 0);
  close(pipe_b[0]); /* b's reader goes while b waits */
  CHECK_EQ(weft_task_join(b, WEFT_SEC(10), &r), 0);
  CHECK_EQ(VI(r), -EPIPE);
  weft_msgpipe_free(ma);
  weft_msgpipe_free(mb);
  return NULL;
}

TEST(a_reader_gone_while_two_tasks_send_on_pipes_raises_no_sigpipe) {
  sigset_t before, after;
  pthread_sigmask(SIG_BLOCK, NULL, &before);
  CHECK_EQ(pipe(pipe_a), 0);
  CHECK_EQ(pipe(pipe_b), 0);
  CHECK_EQ(weft_run(two_senders, NULL, NULL), 0);
  pthread_sigmask(SIG_BLOCK, NULL, &after);
  for (int sig = 1; sig < NSIG; sig++)
    CHECK_EQ(sigismember(&after, sig), sigismember(&before, sig));
  close(pipe_a[0]);
}

TEST(messages_of_any_length_cross_to_a_child_and_back) {
  CHECK_EQ(weft_msgpipe_pair(&ends[0], &ends[1]), 0);
  weft_msgpipe *mine = ends[0];
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, echo_child, NULL, NULL), 0);
  weft_msgpipe_free(ends[1]); /* the child has its own copy */
  unsigned char *buf = malloc(1 << 20);
  CHECK(buf != NULL);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    fill(buf, sizes[i], (unsigned)i);
    CHECK_EQ(weft_msgpipe_send(mine, buf, sizes[i], WEFT_SEC(10)), 0);
    void *back;
    size_t len;
    CHECK_EQ(weft_msgpipe_recv(mine, &back, &len, WEFT_SEC(10)), 0);
    CHECK_EQ(len, sizes[i]);
    CHECK(back != NULL && filled(back, len, (unsigned)i));
    free(back);
  }
  free(buf);
  weft_msgpipe_free(mine); /* the child sees -EPIPE and ends */
  int code;
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, &code), 0);
  CHECK_EQ(code, 0);
  weft_proc_free(p);
}

static int die_at_once(void *arg) {
  (void)arg;
  raise(SIGKILL);
  return 0;
}

TEST(a_dead_peer_is_an_error_not_a_hang_nor_a_sigpipe) {
  weft_msgpipe *mine, *theirs;
  CHECK_EQ(weft_msgpipe_pair(&mine, &theirs), 0);
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, die_at_once, NULL, NULL), 0);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, NULL), 0);
  weft_proc_free(p);
  weft_msgpipe_free(theirs);
  void *msg;
  size_t len;
  CHECK_EQ(weft_msgpipe_recv(mine, &msg, &len, WEFT_SEC(5)), -EPIPE);
  char big[100000] = {0};
  CHECK_EQ(weft_msgpipe_send(mine, big, sizeof big, WEFT_SEC(5)), -EPIPE);
  weft_msgpipe_free(mine);

  /* A plain pipe whose reader is gone: -EPIPE, and the process lives. */
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  weft_msgpipe *w;
  CHECK_EQ(weft_msgpipe_open(&w, fds[1]), 0);
  close(fds[0]);
  CHECK_EQ(weft_msgpipe_send(w, "x", 1, WEFT_SEC(5)), -EPIPE);
  weft_msgpipe_free(w);
}

/* A sender killed in the middle of a message while its socket still held
 * data it had not read: the kernel reports the death to the receiver as a
 * reset (ECONNRESET) once the bytes that came are read. After part of a
 * message that is -EPROTO, as an end there is; between messages, -EPIPE. */
static weft_msgpipe *killed_end;

#define CHILD_CHECK(cond)                                                      \
  do {                                                                         \
    if (!(cond))                                                               \
      _exit(3);                                                                \
  } while (0)

static int send_part_then_die(void *arg) {
  int fd = weft_msgpipe_fd(killed_end);
  if ((intptr_t)arg) {
    CHILD_CHECK(weft_msgpipe_send(killed_end, "whole", 5, WEFT_SEC(5)) == 0);
    uint64_t head = 100;
    CHILD_CHECK(write(fd, &head, sizeof head) == sizeof head);
    CHILD_CHECK(write(fd, "part", 4) == 4);
  }
  raise(SIGKILL);
  return 0;
}

static void killed_mid_message(bool part) {
  weft_msgpipe *mine;
  CHECK_EQ(weft_msgpipe_pair(&mine, &killed_end), 0);
  /* Data the child will never read, left in its socket. */
  CHECK_EQ(weft_msgpipe_send(mine, "unread", 6, WEFT_SEC(5)), 0);
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, send_part_then_die, IV(part), NULL), 0);
  weft_msgpipe_free(killed_end);
  CHECK_EQ(weft_proc_join(p, WEFT_FOREVER, NULL), 0);
  weft_proc_free(p);
  void *msg;
  size_t len;
  if (part) {
    CHECK_EQ(weft_msgpipe_recv(mine, &msg, &len, WEFT_SEC(5)), 0);
    CHECK_EQ(len, 5u);
    free(msg);
    CHECK_EQ(weft_msgpipe_recv(mine, &msg, &len, WEFT_SEC(5)), -EPROTO);
  } else {
    CHECK_EQ(weft_msgpipe_recv(mine, &msg, &len, WEFT_SEC(5)), -EPIPE);
  }
  weft_msgpipe_free(mine);
}

TEST(a_sender_killed_mid_message_with_unread_data_is_eproto) {
  killed_mid_message(true);
}

TEST(a_sender_killed_between_messages_with_unread_data_is_epipe) {
  killed_mid_message(false);
}

TEST(a_message_cut_short_is_eproto_and_a_slow_one_is_waited_for) {
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  weft_msgpipe *r;
  CHECK_EQ(weft_msgpipe_open(&r, fds[0]), 0);
  uint64_t head = 10;
  CHECK_EQ(write(fds[1], &head, 5), 5); /* half a header */
  void *msg;
  size_t len;
  CHECK_EQ(weft_msgpipe_recv(r, &msg, &len, WEFT_MS(20)), -ETIMEDOUT);
  CHECK_EQ(write(fds[1], (char *)&head + 5, 3), 3);
  CHECK_EQ(write(fds[1], "hello", 5), 5); /* half the body */
  CHECK_EQ(weft_msgpipe_recv(r, &msg, &len, WEFT_MS(20)), -ETIMEDOUT);
  CHECK_EQ(write(fds[1], "world", 5), 5);
  CHECK_EQ(weft_msgpipe_recv(r, &msg, &len, WEFT_SEC(5)), 0);
  CHECK_EQ(len, 10u);
  CHECK(memcmp(msg, "helloworld", 10) == 0);
  free(msg);
  CHECK_EQ(write(fds[1], &head, 8), 8);
  CHECK_EQ(write(fds[1], "cut", 3), 3);
  close(fds[1]); /* the writer dies halfway through */
  CHECK_EQ(weft_msgpipe_recv(r, &msg, &len, WEFT_SEC(5)), -EPROTO);
  weft_msgpipe_free(r);
}

/* Tasks of one hub: a sender and a receiver on the two ends, 1,000
 * messages in order. */
static weft_msgpipe *task_a, *task_b;

static void *task_sender(void *arg) {
  (void)arg;
  for (unsigned i = 0; i < 1000; i++)
    CHECK_EQ(weft_msgpipe_send(task_a, &i, sizeof i, WEFT_SEC(10)), 0);
  return NULL;
}

static void *task_receiver(void *arg) {
  (void)arg;
  for (unsigned i = 0; i < 1000; i++) {
    void *msg;
    size_t len;
    CHECK_EQ(weft_msgpipe_recv(task_b, &msg, &len, WEFT_SEC(10)), 0);
    CHECK_EQ(len, sizeof i);
    CHECK_EQ(*(unsigned *)msg, i);
    free(msg);
  }
  return NULL;
}

static void *pipe_tasks(void *arg) {
  (void)arg;
  weft_task *s, *r;
  CHECK_EQ(weft_task_spawn(&r, task_receiver, NULL, NULL), 0);
  CHECK_EQ(weft_task_spawn(&s, task_sender, NULL, NULL), 0);
  CHECK_EQ(weft_task_join(s, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(r, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(tasks_of_one_hub_talk_through_a_message_pipe) {
  CHECK_EQ(weft_msgpipe_pair(&task_a, &task_b), 0);
  CHECK_EQ(weft_run(pipe_tasks, NULL, NULL), 0);
  weft_msgpipe_free(task_a);
  weft_msgpipe_free(task_b);
}

TEST(message_pipes_refuse_bad_input) {
  weft_msgpipe *m = NULL;
  void *msg;
  size_t len;
  CHECK_EQ(weft_msgpipe_open(NULL, 0), -EINVAL);
  CHECK_EQ(weft_msgpipe_open(&m, -1), -EINVAL);
  CHECK_EQ(weft_msgpipe_open(&m, 999), -EBADF);
  CHECK(m == NULL);
  CHECK_EQ(weft_msgpipe_pair(NULL, &m), -EINVAL);
  CHECK_EQ(weft_msgpipe_send(NULL, "x", 1, 0), -EINVAL);
  CHECK_EQ(weft_msgpipe_recv(NULL, &msg, &len, 0), -EINVAL);
  CHECK_EQ(weft_msgpipe_fd(NULL), -1);
  weft_msgpipe *a, *b;
  CHECK_EQ(weft_msgpipe_pair(&a, &b), 0);
  CHECK_EQ(weft_msgpipe_send(a, NULL, 1, 0), -EINVAL);
  CHECK_EQ(weft_msgpipe_send(a, "x", WEFT_MSGPIPE_MAX + 1, 0), -EMSGSIZE);
  CHECK_EQ(weft_msgpipe_recv(b, NULL, &len, 0), -EINVAL);
  CHECK_EQ(weft_msgpipe_send(a, "x", 1, -2), -EINVAL); /* bad timeouts */
  CHECK_EQ(weft_msgpipe_recv(b, &msg, &len, INT64_MIN), -EINVAL);
  CHECK_EQ(weft_msgpipe_recv(b, &msg, &len, 0), -ETIMEDOUT); /* nothing */
  weft_msgpipe_free(a);
  weft_msgpipe_free(b);
  weft_msgpipe_free(NULL);
}

/* --- daemonize ------------------------------------------------------------
 * A process turned daemon: its original exits 0, it runs in a new session
 * it does not lead, in "/", with 0, 1, 2 on /dev/null and the fds above
 * closed. It reports through a file, having no other way out. */

static void daemon_reports(const char *path, int extra_fd) {
  char cwd[64] = "", in[64] = "";
  if (!getcwd(cwd, sizeof cwd))
    cwd[0] = '?';
  ssize_t n = readlink("/proc/self/fd/0", in, sizeof in - 1);
  in[n > 0 ? n : 0] = '\0';
  int open_extra = fcntl(extra_fd, F_GETFD) >= 0; /* before fopen reuses it */
  FILE *f = fopen(path, "w");
  if (!f)
    _exit(1);
  fprintf(f, "%d %d %d %s %s %d\n", (int)getpid(), (int)getsid(0),
          (int)getppid(), cwd, in, open_extra);
  fclose(f);
  _exit(0);
}

TEST(daemonize_detaches_for_good) {
  char path[] = "/tmp/weft-daemon-XXXXXX";
  int tmp = mkstemp(path);
  CHECK(tmp >= 0);
  close(tmp);
  unlink(path);
  int extra = open("/dev/zero", O_RDONLY); /* must be closed in the daemon */
  CHECK(extra >= 0);
  pid_t original = fork();
  CHECK(original >= 0);
  if (original == 0) {
    if (weft_proc_daemonize(0) != 0)
      _exit(2);
    daemon_reports(path, extra);
  }
  int status;
  CHECK_EQ(waitpid(original, &status, 0), original);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char line[256] = "";
  for (int i = 0; i < 500 && !line[0]; i++) {
    FILE *f = fopen(path, "r");
    if (f) {
      if (!fgets(line, sizeof line, f) || !strchr(line, '\n'))
        line[0] = '\0'; /* not whole yet */
      fclose(f);
    }
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  unlink(path);
  close(extra);
  int pid, sid, ppid, open_extra;
  char cwd[64], in[64];
  CHECK_EQ(sscanf(line, "%d %d %d %63s %63s %d", &pid, &sid, &ppid, cwd, in,
                  &open_extra),
           6);
  CHECK(sid != getsid(0)); /* a session of its own */
  CHECK(sid != pid);       /* which it does not lead */
  CHECK(ppid != original);
  CHECK_STR_HAS(cwd, "/");
  CHECK_EQ(strlen(cwd), 1u);
  CHECK_STR_HAS(in, "/dev/null");
  CHECK_EQ(open_extra, 0);
}

/* Unknown flag bits are refused before anything is done: the process
 * stays itself (same pid, parent, session, directory). */
TEST(daemonize_refuses_unknown_flags_and_does_nothing) {
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    pid_t pid = getpid(), ppid = getppid(), sid = getsid(0);
    char before[256], after[256];
    if (!getcwd(before, sizeof before))
      _exit(3);
    int bad[] = {4, 8, 1 << 30, -1, WEFT_DAEMON_KEEP_CWD | 16, INT_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
      if (weft_proc_daemonize(bad[i]) != -EINVAL)
        _exit(2);
    if (!getcwd(after, sizeof after) || strcmp(before, after) != 0 ||
        getpid() != pid || getppid() != ppid || getsid(0) != sid ||
        fcntl(STDERR_FILENO, F_GETFD) < 0)
      _exit(4);
    _exit(42);
  }
  int status;
  CHECK_EQ(waitpid(child, &status, 0), child);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 42);
}

/* --- without pidfds -------------------------------------------------------
 * The cases that matter once more, with the SIGCHLD watcher that kernels
 * without pidfds get: each runs in a child process of its own, where weft
 * has not yet chosen how to watch children, with WEFT_PROC_NO_PIDFD=1
 * (even under WEFT_TEST_NOFORK). Where the case starts children itself,
 * it must leave weft's SIGCHLD handler installed: the proof that the
 * fallback, not the pidfds, was used. */

struct forced_case {
  void (*fn)(void);
  bool in_process; /* weft starts children in this process */
};

static void run_forced(void *arg) {
  const struct forced_case *c = arg;
  c->fn();
  if (c->in_process)
    CHECK(sigchld_has_siginfo_handler());
}

static void without_pidfds(void (*fn)(void), bool in_process) {
  static const char *const env[] = {"WEFT_PROC_NO_PIDFD=1", NULL};
  struct forced_case c = {fn, in_process};
  static char out[16384];
  int status = harness_run_child(run_forced, &c, env, out, sizeof out);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
    harness_skip("without pidfds: as said above");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    harness_fail(__FILE__, __LINE__, "without pidfds: %s %d:\n%s",
                 WIFEXITED(status) ? "exit status" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                 out);
}

#define WITHOUT_PIDFDS(name, seconds, in_process)                              \
  TEST_TIMEOUT(name##_without_pidfds, seconds) {                               \
    without_pidfds(test_##name, in_process);                                   \
  }

WITHOUT_PIDFDS(exit_codes_are_pythons, 30, true)
WITHOUT_PIDFDS(join_times_out_then_terminate_and_kill_end_it, 30, true)
WITHOUT_PIDFDS(exec_runs_a_program_with_its_arguments_environment_and_stdio, 30,
               true)
WITHOUT_PIDFDS(terminate_ends_a_child_started_during_a_signal_wait, 30, true)
WITHOUT_PIDFDS(terminate_ends_a_daemon_child_started_during_a_signal_wait, 30,
               true)
WITHOUT_PIDFDS(a_signal_the_program_blocked_stays_blocked_in_the_child, 30,
               true)
WITHOUT_PIDFDS(a_daemon_program_runs_and_is_joined, 30, true)
WITHOUT_PIDFDS(a_stale_errno_does_not_make_a_live_child_dead, 30, true)
WITHOUT_PIDFDS(a_task_joining_a_child_parks_only_itself, 30, true)
WITHOUT_PIDFDS(a_joiner_that_gives_up_does_not_strand_another, 30, true)
WITHOUT_PIDFDS(a_join_in_a_task_is_cancellable, 30, true)
WITHOUT_PIDFDS(a_cancelled_supervisor_waits_for_its_child_in_a_shield, 30, true)
WITHOUT_PIDFDS(a_child_forked_in_a_task_runs_a_hub_of_its_own, 30, true)
WITHOUT_PIDFDS(fork_from_a_threaded_program_leaves_a_working_child, 60, true)
WITHOUT_PIDFDS(a_storm_of_a_thousand_children_leaves_no_zombie, 300, true)
WITHOUT_PIDFDS(a_child_that_nobody_joins_is_reaped_when_it_exits, 30, true)
WITHOUT_PIDFDS(a_subreaper_reaps_orphans_and_keeps_its_own_exit_codes, 120,
               true)
WITHOUT_PIDFDS(a_daemon_child_ends_with_its_parent_and_a_plain_one_does_not, 30,
               false)
WITHOUT_PIDFDS(a_daemon_child_dies_even_when_its_parent_is_killed, 30, false)
WITHOUT_PIDFDS(the_programs_own_children_keep_their_statuses, 60, true)
WITHOUT_PIDFDS(the_programs_sigchld_handler_still_runs, 30, true)
WITHOUT_PIDFDS(a_program_that_reaps_every_child_hangs_no_join, 30, true)
WITHOUT_PIDFDS(with_sigchld_ignored_no_child_is_a_zombie, 30, true)
WITHOUT_PIDFDS(a_pid_reused_after_the_reap_is_never_signalled, 30, true)
WITHOUT_PIDFDS(bad_input_changes_nothing, 30, true)
WITHOUT_PIDFDS(messages_of_any_length_cross_to_a_child_and_back, 30, true)
