/*
 * Idle stacks: a task parked past its hub's weft_hub_idle_after is
 * hibernated, if it was spawned to be (its frames copied out, its whole
 * stack given back, its frames copied back before it runs again), or
 * else trimmed (the pages below its stack pointer given back). Nothing it
 * still uses changes: its locals, pointers into its own stack, a buffer
 * another task reads while it waits (trimmed only), its later deep calls;
 * and it can be cancelled, joined and dumped while hibernated, and woken
 * by another thread as it hibernates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

enum { DEEP = 64 << 10 };

/* Tasks that promise that nothing else uses their stacks while they wait
 * on an fd or sleep (the structs they write to are in their spawner's
 * frame, and the spawner is not hibernated). */
static const weft_task_opts hib = {.hibernate = true};

/* Where deep() put its buffer (an address, never dereferenced), and the
 * page size. */
static uintptr_t deep_lo;
static size_t page;

/* Uses DEEP bytes of stack, every page of them written. */
__attribute__((noinline)) static int deep(int seed) {
  volatile char buf[DEEP];
  for (size_t i = 0; i < sizeof buf; i += 512)
    buf[i] = (char)(seed + (int)i);
  deep_lo = (uintptr_t)buf;
  int sum = 0;
  for (size_t i = 0; i < sizeof buf; i += 4096)
    sum += buf[i];
  return sum;
}

/* How many of the pages of the lower half of deep()'s buffer are
 * resident: well below anything a parked task's frames reach. */
static size_t deep_pages_resident(void) {
  uintptr_t lo = (deep_lo + page - 1) & ~(uintptr_t)(page - 1);
  size_t n = (DEEP / 2) / page;
  unsigned char vec[DEEP / 4096];
  CHECK_EQ(mincore((void *)lo, n * page, vec), 0);
  size_t resident = 0;
  for (size_t i = 0; i < n; i++)
    resident += vec[i] & 1;
  return resident;
}

/* Whether the build cannot trim (the ucontext fallback cannot tell a
 * suspended stack's pointer), or deep()'s buffer is not on the task's
 * stack at all (AddressSanitizer may keep frames on a fake stack of its
 * own): then the case is skipped. */
static void skip_if_untrimmable(const char *near) {
  if (strstr(WEFT_MACHINE_CTX_H, "ucontext"))
    harness_skip("the ucontext fallback does not trim");
  if (deep_lo > (uintptr_t)near || (uintptr_t)near - deep_lo > (1u << 20))
    harness_skip("frames on a fake stack (AddressSanitizer)");
}

struct parked {
  int64_t nap;  /* how long the sleeper parks */
  char *shared; /* a buffer in the sleeper's frame, for the reader */
  int after;    /* what the sleeper found after its nap */
};

static void *sleeper(void *arg) {
  struct parked *p = arg;
  char mine[512];
  for (size_t i = 0; i < sizeof mine; i++)
    mine[i] = (char)(i * 7);
  int keep = 4242;
  CHECK(deep(1) != -1);
  skip_if_untrimmable(mine);
  p->shared = mine;
  CHECK_EQ(weft_sleep(p->nap), 0);
  int same = keep == 4242;
  for (size_t i = 0; i < sizeof mine; i++)
    same = same && mine[i] == (char)(i * 7);
  p->after = same;
  return NULL;
}

static void *trimmed_main(void *arg) {
  (void)arg;
  page = (size_t)sysconf(_SC_PAGESIZE);
  CHECK_EQ(weft_hub_idle_after(WEFT_MS(20)), 0);
  struct parked p = {.nap = WEFT_MS(400)};
  weft_task *t;
  /* It lends a buffer in its frame: not to be hibernated, only trimmed. */
  CHECK_EQ(weft_task_spawn(&t, sleeper, &p, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(10)), 0);
  CHECK(p.shared != NULL);
  CHECK(deep_pages_resident() > 0); /* not yet: parked 10 ms */
  CHECK_EQ(weft_sleep(WEFT_MS(200)), 0);
  CHECK_EQ(deep_pages_resident(), 0);
  /* Its live frame is untouched, for itself and for others. */
  for (size_t i = 0; i < 512; i++)
    CHECK_EQ(p.shared[i], (char)(i * 7));
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(p.after, 1);
  return NULL;
}

TEST(a_task_not_hibernated_is_trimmed_and_its_frame_stays_readable) {
  CHECK_EQ(weft_run(trimmed_main, NULL, NULL), 0);
}

static void *kept_main(void *arg) {
  (void)arg;
  page = (size_t)sysconf(_SC_PAGESIZE);
  CHECK_EQ(weft_hub_idle_after(WEFT_FOREVER), 0);
  struct parked p = {.nap = WEFT_MS(150)};
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, sleeper, &p, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(100)), 0);
  CHECK_EQ(deep_pages_resident(), (DEEP / 2) / page);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(p.after, 1);
  return NULL;
}

TEST(with_idle_after_forever_a_parked_task_keeps_its_pages) {
  CHECK_EQ(weft_run(kept_main, NULL, NULL), 0);
}

/* Frames down to near the bottom of a small stack, hibernated there: the
 * packed frames (zero words left out) go back whole, also near a
 * canary-guarded stack's lowest page, which hibernation does not give
 * back (the guard-fallback runs of this test). Each level keeps a word
 * that is zero and one that is not, and checks both after the wake. */
static int __attribute__((noinline)) down(int level, int *woken) {
  volatile uint64_t zero = 0, mine = 0x5eed0000u + (unsigned)level;
  volatile char pad[200];
  for (size_t i = 0; i < sizeof pad; i++)
    pad[i] = (char)(i % 3 == 0 ? 0 : level);
  int r = level == 0 ? weft_sleep(WEFT_MS(5)) : down(level - 1, woken);
  *woken += zero == 0 && mine == 0x5eed0000u + (unsigned)level;
  for (size_t i = 0; i < sizeof pad; i++)
    *woken -= pad[i] != (char)(i % 3 == 0 ? 0 : level);
  return r;
}

static void *bottom_dweller(void *arg) {
  int *woken = arg;
  /* About 280 bytes a level: 44 levels and the sleep's own reach into the
   * lowest page of 16 KiB. */
  CHECK_EQ(down(44, woken), 0);
  return NULL;
}

static void *deep_park_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_idle_after(0), 0);
  int woken = 0;
  weft_task *t;
  weft_task_opts o = hib;
  o.stack_size = 16 << 10;
  CHECK_EQ(weft_task_spawn(&t, bottom_dweller, &woken, &o), 0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(woken, 45);
  return NULL;
}

TEST(a_task_hibernated_near_the_bottom_of_its_stack_wakes_whole) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  harness_skip("sanitizers' frames would not fit 16 KiB");
#endif
  CHECK_EQ(weft_run(deep_park_main, NULL, NULL), 0);
}

/* A task's own threshold (weft_task_opts.idle_after) against its hub's:
 * `own` for the sleeper, `hub` for the hub; whether its deep pages are
 * given back is `trimmed`. */
struct own_case {
  int64_t own, hub;
  bool trimmed;
};

static void *own_main(void *arg) {
  const struct own_case *c = arg;
  page = (size_t)sysconf(_SC_PAGESIZE);
  CHECK_EQ(weft_hub_idle_after(c->hub), 0);
  struct parked p = {.nap = WEFT_MS(400)};
  weft_task *t;
  CHECK_EQ(
      weft_task_spawn(&t, sleeper, &p, &(weft_task_opts){.idle_after = c->own}),
      0);
  CHECK_EQ(weft_sleep(WEFT_MS(250)), 0);
  CHECK_EQ(deep_pages_resident(), c->trimmed ? 0 : (DEEP / 2) / page);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(p.after, 1);
  return NULL;
}

TEST(a_task_of_its_own_threshold_is_trimmed_on_its_own_time) {
  struct own_case soon = {WEFT_MS(20), WEFT_FOREVER, true};
  CHECK_EQ(weft_run(own_main, &soon, NULL), 0);
  struct own_case never = {WEFT_FOREVER, WEFT_MS(20), false};
  CHECK_EQ(weft_run(own_main, &never, NULL), 0);
  struct own_case hubs = {0, WEFT_MS(20), true};
  CHECK_EQ(weft_run(own_main, &hubs, NULL), 0);
}

static void *naps(void *arg) { return IV(weft_sleep(VI(arg))); }

static void *thresholds_main(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(
      weft_task_spawn(&t, naps, IV(0), &(weft_task_opts){.idle_after = -5}),
      -EINVAL);
  /* Seven thresholds of tasks' own at once; an eighth is refused, one in
   * use is not. */
  weft_task *seven[7];
  for (int i = 0; i < 7; i++)
    CHECK_EQ(weft_task_spawn(&seven[i], naps, IV(WEFT_MS(50)),
                             &(weft_task_opts){.idle_after = WEFT_SEC(i + 1)}),
             0);
  CHECK_EQ(weft_task_spawn(&t, naps, IV(0),
                           &(weft_task_opts){.idle_after = WEFT_SEC(8)}),
           -ENOSPC);
  weft_task *same, *never;
  CHECK_EQ(weft_task_spawn(&same, naps, IV(0),
                           &(weft_task_opts){.idle_after = WEFT_SEC(3)}),
           0);
  CHECK_EQ(weft_task_spawn(&never, naps, IV(0),
                           &(weft_task_opts){.idle_after = WEFT_FOREVER}),
           0);
  for (int i = 0; i < 7; i++) {
    CHECK_EQ(weft_task_join(seven[i], WEFT_FOREVER, NULL), 0);
    CHECK_EQ(weft_task_detach(seven[i]), 0);
  }
  CHECK_EQ(weft_task_join(same, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_detach(same), 0);
  CHECK_EQ(weft_task_join(never, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_detach(never), 0);
  /* Their tasks gone, the thresholds' queues are free again. */
  CHECK_EQ(weft_task_spawn(&t, naps, IV(0),
                           &(weft_task_opts){.idle_after = WEFT_SEC(8)}),
           0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(task_thresholds_bad_input_and_how_many_at_once) {
  CHECK_EQ(weft_run(thresholds_main, NULL, NULL), 0);
}

/* Deep calls, a park hibernated at once, again and again: every round's
 * locals, and a pointer to one of them, survive, and the deep call finds
 * working (zeroed) pages. */
static void *cycler(void *arg) {
  int *rounds = arg;
  for (int i = 0; i < 30; i++) {
    int mark = 1000 + i;
    volatile int *to_mark = &mark;
    char note[64];
    memset(note, 'a' + i % 26, sizeof note);
    int sum = deep(i);
    CHECK_EQ(weft_sleep(WEFT_MS(3)), 0);
    CHECK_EQ(mark, 1000 + i);
    CHECK_EQ(*to_mark, 1000 + i);
    for (size_t j = 0; j < sizeof note; j++)
      CHECK_EQ(note[j], 'a' + i % 26);
    CHECK_EQ(deep(i), sum);
    ++*rounds;
  }
  return NULL;
}

static void *cycles_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_idle_after(0), 0);
  int rounds[4] = {0};
  weft_task *t[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_spawn(&t[i], cycler, &rounds[i], &hib), 0);
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
    CHECK_EQ(rounds[i], 30);
  }
  return NULL;
}

TEST(tasks_hibernated_at_every_park_keep_their_frames_and_grow_again) {
  CHECK_EQ(weft_run(cycles_main, NULL, NULL), 0);
}

/* A task trimmed while it waits in a generator it resumed: the generator's
 * stack is the one parked. */
static void *gen_body(void *arg) {
  int *out = arg;
  int sum = deep(3);
  CHECK_EQ(weft_sleep(WEFT_MS(60)), 0);
  *out = deep(3) == sum;
  return NULL;
}

static void *gen_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_idle_after(WEFT_MS(5)), 0);
  int ok = 0;
  weft_gen *g;
  CHECK_EQ(weft_gen_new(&g, gen_body, &ok, NULL), 0);
  void *v;
  CHECK_EQ(weft_gen_resume(g, NULL, &v), WEFT_GEN_RETURNED);
  CHECK_EQ(ok, 1);
  CHECK_EQ(weft_gen_free(g), 0);
  return NULL;
}

TEST(a_task_parked_inside_a_generator_is_trimmed_and_resumes) {
  CHECK_EQ(weft_run(gen_main, NULL, NULL), 0);
}

static void *bad_input_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_idle_after(-2), -EINVAL);
  CHECK_EQ(weft_hub_idle_after(INT64_MIN), -EINVAL);
  CHECK_EQ(weft_hub_idle_after(WEFT_SEC(3)), 0);
  return NULL;
}

TEST(weft_hub_idle_after_bad_input) {
  CHECK_EQ(weft_hub_idle_after(WEFT_MS(1)), -EPERM); /* no hub here */
  CHECK_EQ(weft_run(bad_input_main, NULL, NULL), 0);
}
/* --- hibernation ---------------------------------------------------------
 */

/* The page of a task's outermost frame, and whether it is resident. */
static uintptr_t top_frame;

static bool resident(uintptr_t addr) {
  unsigned char v = 0;
  uintptr_t p = addr & ~(uintptr_t)(page - 1);
  CHECK_EQ(mincore((void *)p, page, &v), 0);
  return v & 1;
}

struct nap {
  int64_t nap;
  int rc;   /* what its sleep returned */
  int same; /* its frames as they were */
};

static void *napper(void *arg) {
  struct nap *n = arg;
  char mark[128];
  for (size_t i = 0; i < sizeof mark; i++)
    mark[i] = (char)(i ^ 0x5a);
  char *self = mark; /* a pointer into its own stack, kept in its stack */
  top_frame = (uintptr_t)mark;
  n->rc = weft_sleep(n->nap);
  int same = self == mark;
  for (size_t i = 0; i < sizeof mark; i++)
    same = same && self[i] == (char)(i ^ 0x5a);
  n->same = same;
  return NULL;
}

static void *hibernated_main(void *arg) {
  (void)arg;
  page = (size_t)sysconf(_SC_PAGESIZE);
  CHECK_EQ(weft_hub_idle_after(WEFT_MS(10)), 0);
  struct nap n = {.nap = WEFT_MS(300)};
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, napper, &n, &hib), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(5)), 0);
  if (strstr(WEFT_MACHINE_CTX_H, "ucontext"))
    harness_skip("the ucontext fallback does not hibernate");
  CHECK(resident(top_frame));
  CHECK_EQ(weft_sleep(WEFT_MS(150)), 0);
  /* Its whole stack is given back, the top page with it. */
  CHECK(!resident(top_frame));
  CHECK_EQ(weft_hub_dump(open("/dev/null", O_WRONLY | O_CLOEXEC)), 0);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(n.rc, 0);
  CHECK_EQ(n.same, 1);
  return NULL;
}

TEST(a_sleeping_task_is_hibernated_whole_and_wakes_with_its_frames) {
  CHECK_EQ(weft_run(hibernated_main, NULL, NULL), 0);
}

static void *cancelled_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_idle_after(0), 0);
  struct nap n = {.nap = WEFT_SEC(30)};
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, napper, &n, &hib), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(50)), 0); /* hibernated by now */
  CHECK_EQ(weft_task_cancel(t), 0);
  CHECK_EQ(weft_task_join(t, WEFT_SEC(5), NULL), 0);
  CHECK_EQ(n.rc, -ECANCELED);
  CHECK_EQ(n.same, 1);
  return NULL;
}

TEST(a_hibernated_task_is_cancelled_and_joined) {
  CHECK_EQ(weft_run(cancelled_main, NULL, NULL), 0);
}

/* A task parked on a waiter (an event) lends nothing, yet its frame holds
 * the waiter a thread will write: it must not be hibernated. */
static weft_event ev = WEFT_EVENT_INIT;

static void *event_waiter(void *arg) {
  int *rc = arg;
  char mark[64];
  memset(mark, 7, sizeof mark);
  *rc = weft_event_wait(&ev, WEFT_SEC(10));
  for (size_t i = 0; i < sizeof mark; i++)
    if (mark[i] != 7)
      *rc = -1000;
  return NULL;
}

static void *setter(void *arg) {
  (void)arg;
  usleep(100 * 1000);
  weft_event_set(&ev);
  return NULL;
}

static void *event_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_idle_after(0), 0);
  int rc = -1;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, event_waiter, &rc, &hib), 0);
  weft_thread *th;
  CHECK_EQ(weft_thread_start(&th, setter, NULL, NULL), 0);
  CHECK_EQ(weft_task_join(t, WEFT_SEC(5), NULL), 0);
  CHECK_EQ(rc, 0);
  CHECK_EQ(weft_thread_join(th, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_thread_detach(th), 0);
  return NULL;
}

TEST(a_task_waiting_on_an_event_a_thread_sets_is_not_hibernated) {
  CHECK_EQ(weft_run(event_main, NULL, NULL), 0);
}

/* Wakes racing hibernation: a thread writes to a pipe at moments around
 * the hub's sweeps, while a task reads it with idle_after 0, so that
 * some wakes come as the task is hibernated and some as it thaws. */
static int race_fds[2];
enum { RACE_ROUNDS = 300 };

static void *writer(void *arg) {
  (void)arg;
  for (int i = 0; i < RACE_ROUNDS; i++) {
    usleep((useconds_t)(i % 7) * 150);
    char c = (char)i;
    if (write(race_fds[1], &c, 1) != 1)
      return IV(-1);
  }
  return NULL;
}

static void *reader(void *arg) {
  int *got = arg;
  char seen[16];
  memset(seen, 0x33, sizeof seen);
  for (int i = 0; i < RACE_ROUNDS; i++) {
    char c;
    ssize_t n = weft_io_read(race_fds[0], &c, 1, WEFT_SEC(10));
    if (n != 1 || c != (char)i)
      return IV(-1);
    for (size_t j = 0; j < sizeof seen; j++)
      if (seen[j] != 0x33)
        return IV(-2);
    ++*got;
  }
  return NULL;
}

static void *race_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_idle_after(0), 0);
  CHECK_EQ(pipe2(race_fds, O_CLOEXEC), 0);
  int got = 0;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, reader, &got, &hib), 0);
  weft_thread *th;
  CHECK_EQ(weft_thread_start(&th, writer, NULL, NULL), 0);
  void *r;
  CHECK_EQ(weft_task_join(t, WEFT_SEC(20), &r), 0);
  CHECK(r == NULL);
  CHECK_EQ(got, RACE_ROUNDS);
  CHECK_EQ(weft_thread_join(th, WEFT_FOREVER, &r), 0);
  CHECK(r == NULL);
  CHECK_EQ(weft_thread_detach(th), 0);
  close(race_fds[0]);
  close(race_fds[1]);
  return NULL;
}

TEST(wakes_from_another_thread_race_hibernation_and_lose_nothing) {
  CHECK_EQ(weft_run(race_main, NULL, NULL), 0);
}

/* weft_signal_wait links a node into the process's list of live signalfds
 * (src/io/signal.c), which a fork's child walks: a task hibernated in one
 * must not have kept it in its frame, where the child would read zeros
 * (and close fd 0, leaving the signalfd open). */
static void *sig_waiter(void *arg) {
  (void)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  return IV(weft_signal_wait(&set, WEFT_SEC(10)));
}

static void *sigfork_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_idle_after(0), 0);
  if (fcntl(0, F_GETFD) < 0) /* give fd 0 something to lose */
    CHECK_EQ(open("/dev/null", O_RDONLY), 0);
  int next_fd = dup(0); /* the number the waiter's signalfd will get */
  CHECK(next_fd > 0);
  close(next_fd);
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, sig_waiter, NULL, &hib), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(50)), 0); /* hibernated by now */
  CHECK(fcntl(next_fd, F_GETFD) >= 0);  /* the signalfd */
  pid_t pid = fork();
  if (pid == 0)
    _exit((fcntl(0, F_GETFD) < 0 ? 1 : 0) |
          (fcntl(next_fd, F_GETFD) >= 0 ? 2 : 0));
  CHECK(pid > 0);
  int st = 0;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  kill(getpid(), SIGUSR1);
  void *r;
  CHECK_EQ(weft_task_join(t, WEFT_SEC(5), &r), 0);
  CHECK_EQ(VI(r), SIGUSR1);
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 0); /* 1: fd 0 closed, 2: the signalfd open */
  return NULL;
}

TEST(a_fork_child_does_not_read_a_hibernated_signal_waits_node) {
  CHECK_EQ(weft_run(sigfork_main, NULL, NULL), 0);
}

/* A hub whose tasks all wait past idle_after sleeps in its poller: the
 * sweep leaves nothing due that it cannot act on (on the ucontext
 * fallback, which can neither trim nor hibernate, a task that stayed at
 * the head of the idle queue made every poll return at once). */
static void *long_sleeper(void *arg) {
  (void)arg;
  CHECK_EQ(weft_sleep(WEFT_MS(400)), 0);
  return NULL;
}

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *quiet_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_hub_idle_after(WEFT_MS(10)), 0);
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, long_sleeper, NULL, &hib), 0);
  double cpu0 = cpu_seconds();
  CHECK_EQ(weft_sleep(WEFT_MS(300)), 0);
  double used = cpu_seconds() - cpu0;
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  CHECK(used < 0.15 * harness_timeout_multiplier()); /* of 0.3 s asleep */
  return NULL;
}

TEST(a_hub_whose_tasks_wait_past_idle_after_sleeps) {
  CHECK_EQ(weft_run(quiet_main, NULL, NULL), 0);
}
