/*
 * Shared memory between processes: regions inherited and passed by fd;
 * the shared Lock (exclusion across processes, tasks and threads, a holder
 * killed by SIGKILL recovered from, timeouts and cancellation); the shared
 * Semaphore and Event; the Queue (order and whole messages, many producers
 * and consumers each message once, bounds, a holder killed mid-put, tasks
 * parking only themselves); bad input and corrupted memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>
#include <weft/shm.h>

#include "harness.h"

/* ThreadSanitizer cannot start a thread in the child of a threaded
 * process, and a task waiting on shared memory needs the watcher thread:
 * the tasks of these cases run in the parent. */

/* A check inside a child: says what failed, and fails the child. */
#define CHILD_CHECK(cond)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "child %d: %s:%d: CHECK(%s) failed\n", (int)getpid(),    \
              __FILE__, __LINE__, #cond);                                      \
      return 1;                                                                \
    }                                                                          \
  } while (0)

static weft_proc *start(weft_proc_fn fn, void *arg) {
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, fn, arg, NULL), 0);
  return p;
}

static void join_ok(weft_proc *p) {
  int code = -1;
  CHECK_EQ(weft_proc_join(p, WEFT_SEC(60), &code), 0);
  CHECK_EQ(code, 0);
  weft_proc_free(p);
}

static void nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* What the cases below keep in one region. */
struct board {
  weft_shared_lock lock;
  weft_shared_sem sem;
  weft_shared_event ready, go;
  long counter;
  atomic_long ticks;
  /* A consumer's: the number of the last message it got, and whether it
   * got any. */
  atomic_uint got_last;
  atomic_int got_any;
};

static weft_shm *region;
static struct board *board;

/* A shared lock, and so a queue, is -ENOTSUP where glibc cannot make a
 * robust process-shared mutex: the cases that need one say so and skip. */
static void need_robust(int rc) {
  if (rc == -ENOTSUP)
    harness_skip("no robust process-shared mutex here: shared locks and "
                 "queues are -ENOTSUP");
  CHECK_EQ(rc, 0);
}

static void make_board(void) {
  CHECK_EQ(weft_shm_create(&region, sizeof(struct board), "test-board"), 0);
  board = weft_shm_addr(region);
  CHECK(board != NULL);
  need_robust(weft_shared_lock_init(&board->lock));
  CHECK_EQ(weft_shared_sem_init(&board->sem, 0), 0);
  CHECK_EQ(weft_shared_event_init(&board->ready), 0);
  CHECK_EQ(weft_shared_event_init(&board->go), 0);
}

/* ------------------------------------------------------------- regions */

static int write_in_region(void *arg) {
  (void)arg;
  CHILD_CHECK(strcmp((char *)weft_shm_addr(region), "from the parent") == 0);
  strcpy((char *)weft_shm_addr(region) + 100, "from the child");
  return 0;
}

/* Receives one fd over a unix socket. */
static int recv_fd(int sock) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr m = {.msg_iov = &iov,
                     .msg_iovlen = 1,
                     .msg_control = u.buf,
                     .msg_controllen = sizeof u.buf};
  if (recvmsg(sock, &m, 0) != 1)
    return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
  return fd;
}

static void send_fd(int sock, int fd) {
  char byte = 'f';
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr m = {.msg_iov = &iov,
                     .msg_iovlen = 1,
                     .msg_control = u.buf,
                     .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  CHECK_EQ(sendmsg(sock, &m, 0), 1);
}

static int socks[2];

/* A child that forgets the inherited mapping and maps the region anew
 * from an fd passed over a socket, as an unrelated process would. */
static int open_passed_region(void *arg) {
  (void)arg;
  weft_shm_free(region);
  close(socks[0]);
  int fd = recv_fd(socks[1]);
  CHILD_CHECK(fd >= 0);
  weft_shm *s;
  CHILD_CHECK(weft_shm_open(&s, fd) == 0);
  CHILD_CHECK(weft_shm_size(s) >= 4096);
  char *mem = weft_shm_addr(s);
  CHILD_CHECK(strcmp(mem + 100, "from the child") == 0);
  strcpy(mem + 200, "by fd");
  weft_shm_free(s);
  return 0;
}

TEST(a_region_is_shared_with_children_and_passed_by_fd) {
  CHECK_EQ(weft_shm_create(&region, 3000, "test-region"), 0);
  CHECK_EQ(weft_shm_size(region), 4096); /* whole pages */
  char *mem = weft_shm_addr(region);
  CHECK_EQ(mem[0] + mem[4095], 0); /* zero-filled */
  strcpy(mem, "from the parent");
  join_ok(start(write_in_region, NULL));
  CHECK(strcmp(mem + 100, "from the child") == 0);

  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, socks), 0);
  weft_proc *p = start(open_passed_region, NULL);
  send_fd(socks[0], weft_shm_fd(region));
  join_ok(p);
  CHECK(strcmp(mem + 200, "by fd") == 0);
  close(socks[0]);
  close(socks[1]);
  weft_shm_free(region);
}

TEST(regions_refuse_bad_input) {
  weft_shm *s = NULL;
  CHECK_EQ(weft_shm_create(NULL, 10, NULL), -EINVAL);
  CHECK_EQ(weft_shm_create(&s, 0, NULL), -EINVAL);
  CHECK_EQ(weft_shm_create(&s, SIZE_MAX, NULL), -EINVAL);
  CHECK(s == NULL);
  CHECK_EQ(weft_shm_open(&s, -1), -EBADF);
  CHECK_EQ(weft_shm_open(&s, 12345), -EBADF);
  CHECK_EQ(weft_shm_open(NULL, 0), -EINVAL);
  /* Not a region: a pipe, and a memfd whose size is not sealed (it could
   * shrink under the mapping). Each fd stays open, the caller's. */
  int p[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(weft_shm_open(&s, p[0]), -EINVAL);
  CHECK(fcntl(p[0], F_GETFD) >= 0);
  int fd = memfd_create("unsealed", MFD_ALLOW_SEALING);
  CHECK(fd >= 0);
  CHECK_EQ(ftruncate(fd, 4096), 0);
  CHECK_EQ(weft_shm_open(&s, fd), -EINVAL);
  CHECK(fcntl(fd, F_GETFD) >= 0);
  CHECK(s == NULL);
  /* A region's size cannot change. */
  CHECK_EQ(weft_shm_create(&s, 4096, NULL), 0);
  CHECK(ftruncate(weft_shm_fd(s), 0) < 0);
  CHECK(ftruncate(weft_shm_fd(s), 8192) < 0);
  weft_shm_free(s);
  weft_shm_free(NULL);
  CHECK(weft_shm_addr(NULL) == NULL);
  CHECK_EQ(weft_shm_size(NULL), 0);
  CHECK_EQ(weft_shm_fd(NULL), -1);
  close(p[0]);
  close(p[1]);
  close(fd);
}

/* A region's name is only for /proc's maps: a long one is cut, as weft's
 * other names are, never a reason to refuse the region (memfd_create
 * takes 249 bytes at most). */
TEST(a_region_with_a_long_name_is_made_and_its_name_cut) {
  char name[301];
  memset(name, 'n', 300);
  name[300] = 0;
  weft_shm *s = NULL;
  CHECK_EQ(weft_shm_create(&s, 4096, name), 0);
  char link[64], target[256];
  snprintf(link, sizeof link, "/proc/self/fd/%d", weft_shm_fd(s));
  ssize_t n = readlink(link, target, sizeof target - 1);
  CHECK(n > 0);
  target[n] = 0;
  /* "/memfd:" then the name cut to 31 bytes, then " (deleted)". */
  char want[64];
  snprintf(want, sizeof want, "/memfd:%.31s (deleted)", name);
  CHECK(strcmp(target, want) == 0);
  weft_shm_free(s);
  /* Exactly 31 bytes: kept whole; an empty name is a name too. */
  name[31] = 0;
  CHECK_EQ(weft_shm_create(&s, 4096, name), 0);
  weft_shm_free(s);
  CHECK_EQ(weft_shm_create(&s, 4096, ""), 0);
  weft_shm_free(s);
}

/* ---------------------------------------------------------------- lock */

enum { ROUNDS = 5000 };

/* Increments the counter in two steps, with a pause between, under the
 * lock: without exclusion increments would be lost. */
static int count_under_lock(void *arg) {
  (void)arg;
  for (int i = 0; i < ROUNDS; i++) {
    CHILD_CHECK(weft_shared_lock_acquire(&board->lock, WEFT_FOREVER) == 0);
    long v = board->counter;
    if (i % 64 == 0)
      sched_yield();
    board->counter = v + 1;
    CHILD_CHECK(weft_shared_lock_release(&board->lock) == 0);
  }
  return 0;
}

static void *count_in_task(void *arg) {
  (void)arg;
  CHECK_EQ(count_under_lock(NULL), 0);
  return NULL;
}

/* Two tasks of one hub: they count under the lock too, parking (not
 * blocking the thread) while a process or the other task holds it. */
static void *count_in_task_pair(void *arg) {
  (void)arg;
  weft_task *a, *b;
  CHECK_EQ(weft_task_spawn(&a, count_in_task, NULL, NULL), 0);
  CHECK_EQ(weft_task_spawn(&b, count_in_task, NULL, NULL), 0);
  CHECK_EQ(weft_task_join(a, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(b, WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void *run_count_in_tasks(void *arg) {
  CHECK_EQ(weft_run(count_in_task_pair, arg, NULL), 0);
  return NULL;
}

/* Three processes: two that count on their main thread, and this one, on
 * its main thread and in two tasks of a hub on another thread. */
TEST(a_shared_lock_excludes_across_processes_threads_and_tasks) {
  make_board();
  weft_proc *p[2] = {start(count_under_lock, NULL),
                     start(count_under_lock, NULL)};
  weft_thread *hub;
  CHECK_EQ(weft_thread_start(&hub, run_count_in_tasks, NULL, NULL), 0);
  CHECK_EQ(count_under_lock(NULL), 0);
  CHECK_EQ(weft_thread_join(hub, WEFT_SEC(60), NULL), 0);
  CHECK_EQ(weft_thread_detach(hub), 0);
  for (int i = 0; i < 2; i++)
    join_ok(p[i]);
  CHECK_EQ(board->counter, ROUNDS * (2 + 1 + 2));
  CHECK(!weft_shared_lock_locked(&board->lock));
  weft_shm_free(region);
}

/* Takes the lock, says so, and waits to be killed. */
static int hold_and_wait(void *arg) {
  (void)arg;
  CHILD_CHECK(weft_shared_lock_acquire(&board->lock, WEFT_FOREVER) == 0);
  board->counter = -1; /* half-changed */
  weft_shared_event_set(&board->ready);
  pause();
  return 0;
}

/* Gets the lock from its dead holder, puts right what it left, and lets
 * go. */
static void *acquire_from_dead_holder(void *arg) {
  (void)arg;
  CHECK_EQ(weft_shared_lock_acquire(&board->lock, WEFT_SEC(30)), -EOWNERDEAD);
  CHECK_EQ(board->counter, -1); /* what the dead holder left */
  board->counter = 0;
  CHECK_EQ(weft_shared_lock_release(&board->lock), 0);
  return NULL;
}

/* A holder killed by SIGKILL: a waiter (a thread, then a task) gets the
 * lock with -EOWNERDEAD, and the lock is sound again after. */
TEST(a_lock_holder_killed_by_sigkill_does_not_wedge_the_others) {
  if (harness_emulated())
    harness_skip("qemu-user has no robust futex list: the kernel cannot "
                 "mark a dead holder's locks");
  make_board();
  for (int round = 0; round < 2; round++) {
    weft_shared_event_clear(&board->ready);
    weft_proc *p = start(hold_and_wait, NULL);
    CHECK_EQ(weft_shared_event_wait(&board->ready, WEFT_SEC(30)), 0);
    CHECK_EQ(weft_shared_lock_acquire(&board->lock, 0), -ETIMEDOUT);
    CHECK(weft_shared_lock_locked(&board->lock));
    /* The waiter is asleep when the holder dies. */
    weft_thread *t = NULL;
    if (round == 0)
      CHECK_EQ(weft_thread_start(&t, acquire_from_dead_holder, NULL, NULL), 0);
    nap_ms(50);
    CHECK_EQ(weft_proc_kill(p), 0);
    int code;
    CHECK_EQ(weft_proc_join(p, WEFT_SEC(30), &code), 0);
    CHECK_EQ(code, -SIGKILL);
    weft_proc_free(p);
    if (round == 0) {
      CHECK_EQ(weft_thread_join(t, WEFT_SEC(30), NULL), 0);
      CHECK_EQ(weft_thread_detach(t), 0);
    } else
      CHECK_EQ(weft_run(acquire_from_dead_holder, NULL, NULL), 0);
    CHECK_EQ(board->counter, 0);
    CHECK_EQ(weft_shared_lock_acquire(&board->lock, 0), 0);
    CHECK_EQ(weft_shared_lock_release(&board->lock), 0);
  }
  weft_shm_free(region);
}

static void *tick(void *arg) {
  (void)arg;
  for (;;) {
    atomic_fetch_add(&board->ticks, 1);
    if (weft_sleep(WEFT_MS(1)) < 0)
      return NULL;
  }
}

static void *wait_in_task(void *arg) {
  weft_task *ticker;
  CHECK_EQ(weft_task_spawn(&ticker, tick, NULL, NULL), 0);
  /* A timeout, while a process holds the lock: the ticker runs on. */
  long before = atomic_load(&board->ticks);
  CHECK_EQ(weft_shared_lock_acquire(&board->lock, WEFT_MS(100)), -ETIMEDOUT);
  CHECK(atomic_load(&board->ticks) - before >= 10);
  CHECK_EQ(weft_shared_sem_acquire(&board->sem, WEFT_MS(20)), -ETIMEDOUT);
  CHECK_EQ(weft_shared_event_wait(&board->go, WEFT_MS(20)), -ETIMEDOUT);
  /* Then until the holder lets go (it is told to by the semaphore). */
  CHECK_EQ(weft_shared_sem_release(&board->sem), 0);
  CHECK_EQ(weft_shared_lock_acquire(&board->lock, WEFT_SEC(30)), 0);
  CHECK_EQ(weft_shared_lock_release(&board->lock), 0);
  weft_task_cancel(ticker);
  CHECK_EQ(weft_task_join(ticker, WEFT_FOREVER, NULL), 0);
  (void)arg;
  return NULL;
}

static int hold_until_told(void *arg) {
  (void)arg;
  CHILD_CHECK(weft_shared_lock_acquire(&board->lock, WEFT_FOREVER) == 0);
  weft_shared_event_set(&board->ready);
  CHILD_CHECK(weft_shared_sem_acquire(&board->sem, WEFT_SEC(30)) == 0);
  nap_ms(20);
  CHILD_CHECK(weft_shared_lock_release(&board->lock) == 0);
  return 0;
}

static void *wait_forever(void *arg) {
  int which = (int)VI(arg);
  int rc = which == 0   ? weft_shared_lock_acquire(&board->lock, WEFT_FOREVER)
           : which == 1 ? weft_shared_sem_acquire(&board->sem, WEFT_FOREVER)
                        : weft_shared_event_wait(&board->go, WEFT_FOREVER);
  return IV(rc);
}

/* Cancelling tasks waiting on each kind of primitive, while a process
 * holds the lock. */
static void *cancel_waiters(void *arg) {
  (void)arg;
  weft_task *t[3];
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_task_spawn(&t[i], wait_forever, IV(i), NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(20)), 0);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(weft_task_cancel(t[i]), 0);
    void *rc;
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, &rc), 0);
    CHECK_EQ(VI(rc), -ECANCELED);
  }
  return NULL;
}

TEST(a_task_waiting_on_shared_primitives_parks_only_itself) {
  make_board();
  weft_proc *p = start(hold_until_told, NULL);
  CHECK_EQ(weft_shared_event_wait(&board->ready, WEFT_SEC(30)), 0);
  CHECK_EQ(weft_run(cancel_waiters, NULL, NULL), 0);
  CHECK_EQ(weft_run(wait_in_task, NULL, NULL), 0);
  join_ok(p);
  weft_shm_free(region);
}

TEST(shared_lock_errors) {
  make_board();
  weft_shared_lock *l = &board->lock;
  CHECK_EQ(weft_shared_lock_release(l), -EPERM);
  CHECK_EQ(weft_shared_lock_acquire(l, -2), -EINVAL);
  CHECK_EQ(weft_shared_lock_acquire(l, INT64_MIN), -EINVAL);
  CHECK(!weft_shared_lock_locked(l));
  CHECK_EQ(weft_shared_lock_acquire(l, WEFT_FOREVER), 0);
  CHECK_EQ(weft_shared_lock_acquire(l, WEFT_FOREVER), -EDEADLK);
  CHECK_EQ(weft_shared_lock_acquire(l, 0), -EDEADLK);
  CHECK(weft_shared_lock_locked(l));
  CHECK_EQ(weft_shared_lock_release(l), 0);
  CHECK_EQ(weft_shared_lock_release(l), -EPERM);
  /* Memory that was never a lock, or was overwritten. */
  weft_shared_lock junk;
  memset(&junk, 0xa5, sizeof junk);
  CHECK_EQ(weft_shared_lock_acquire(&junk, 0), -EINVAL);
  CHECK_EQ(weft_shared_lock_release(&junk), -EINVAL);
  CHECK(!weft_shared_lock_locked(&junk));
  CHECK_EQ(weft_shared_lock_init(NULL), -EINVAL);
  CHECK_EQ(weft_shared_lock_init((weft_shared_lock *)((char *)l + 4)), -EINVAL);
  CHECK_EQ(weft_shared_lock_acquire(NULL, 0), -EINVAL);
  weft_shm_free(region);
}

/* ------------------------------------------------- semaphore and event */

enum { UNITS = 20000 };

static int give_units(void *arg) {
  (void)arg;
  for (int i = 0; i < UNITS; i++)
    CHILD_CHECK(weft_shared_sem_release(&board->sem) == 0);
  return 0;
}

static int take_units(void *arg) {
  (void)arg;
  for (int i = 0; i < UNITS; i++)
    CHILD_CHECK(weft_shared_sem_acquire(&board->sem, WEFT_SEC(30)) == 0);
  return 0;
}

static void *take_units_in_task(void *arg) {
  CHECK_EQ(take_units(arg), 0);
  return NULL;
}

/* Two processes give, one takes on its thread, and this one in a task. */
TEST(a_shared_semaphore_counts_across_processes) {
  make_board();
  weft_proc *p[3] = {start(give_units, NULL), start(give_units, NULL),
                     start(take_units, NULL)};
  CHECK_EQ(weft_run(take_units_in_task, NULL, NULL), 0);
  for (int i = 0; i < 3; i++)
    join_ok(p[i]);
  CHECK_EQ(weft_shared_sem_value(&board->sem), 0);
  CHECK_EQ(weft_shared_sem_acquire(&board->sem, 0), -ETIMEDOUT);
  CHECK_EQ(weft_shared_sem_acquire(&board->sem, WEFT_MS(10)), -ETIMEDOUT);
  CHECK_EQ(weft_shared_sem_acquire(&board->sem, -5), -EINVAL);
  CHECK_EQ(weft_shared_sem_init(&board->sem, WEFT_SHARED_SEM_MAX), 0);
  CHECK_EQ(weft_shared_sem_release(&board->sem), -EOVERFLOW);
  CHECK_EQ(weft_shared_sem_value(&board->sem), WEFT_SHARED_SEM_MAX);
  CHECK_EQ(weft_shared_sem_init(&board->sem, WEFT_SHARED_SEM_MAX + 1u),
           -EINVAL);
  weft_shared_sem junk;
  memset(&junk, 0, sizeof junk);
  CHECK_EQ(weft_shared_sem_acquire(&junk, 0), -EINVAL);
  CHECK_EQ(weft_shared_sem_release(&junk), -EINVAL);
  CHECK_EQ(weft_shared_sem_value(&junk), -EINVAL);
  weft_shm_free(region);
}

static int wait_for_go(void *arg) {
  (void)arg;
  weft_shared_sem_release(&board->sem); /* here, about to wait */
  CHILD_CHECK(weft_shared_event_wait(&board->go, WEFT_SEC(30)) == 0);
  return 0;
}

static void *wait_for_go_in_task(void *arg) {
  CHECK_EQ(wait_for_go(arg), 0);
  return NULL;
}

static void *wait_for_go_in_tasks(void *arg) {
  weft_task *t[2];
  for (int i = 0; i < 2; i++)
    CHECK_EQ(weft_task_spawn(&t[i], wait_for_go_in_task, arg, NULL), 0);
  for (int i = 0; i < 2; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void *run_wait_for_go_in_tasks(void *arg) {
  CHECK_EQ(weft_run(wait_for_go_in_tasks, arg, NULL), 0);
  return NULL;
}

/* Waiters in other processes, and two tasks of a hub here, all return
 * when the event is set, even if it is cleared again before they look. */
TEST(a_shared_event_wakes_every_waiter_of_every_process) {
  make_board();
  weft_proc *p[2] = {start(wait_for_go, NULL), start(wait_for_go, NULL)};
  weft_thread *hub;
  CHECK_EQ(weft_thread_start(&hub, run_wait_for_go_in_tasks, NULL, NULL), 0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_shared_sem_acquire(&board->sem, WEFT_SEC(30)), 0);
  nap_ms(30);
  CHECK(!weft_shared_event_is_set(&board->go));
  CHECK_EQ(weft_shared_event_set(&board->go), 0);
  CHECK_EQ(weft_shared_event_clear(&board->go), 0);
  CHECK_EQ(weft_thread_join(hub, WEFT_SEC(30), NULL), 0);
  CHECK_EQ(weft_thread_detach(hub), 0);
  for (int i = 0; i < 2; i++)
    join_ok(p[i]);
  CHECK(!weft_shared_event_is_set(&board->go));
  CHECK_EQ(weft_shared_event_wait(&board->go, 0), -ETIMEDOUT);
  CHECK_EQ(weft_shared_event_set(&board->go), 0);
  CHECK(weft_shared_event_is_set(&board->go));
  CHECK_EQ(weft_shared_event_wait(&board->go, 0), 0);
  CHECK_EQ(weft_shared_event_wait(&board->go, -3), -EINVAL);
  weft_shared_event junk;
  memset(&junk, 0x11, sizeof junk);
  CHECK_EQ(weft_shared_event_set(&junk), -EINVAL);
  CHECK_EQ(weft_shared_event_clear(&junk), -EINVAL);
  CHECK(!weft_shared_event_is_set(&junk));
  CHECK_EQ(weft_shared_event_wait(&junk, 0), -EINVAL);
  weft_shm_free(region);
}

/* --------------------------------------------------------------- queue */

static weft_queue *queue;

/* A message that says who sent it and which it is, and checks itself:
 * its length varies with its number, and its bytes follow from both. */
static size_t make_message(unsigned char *buf, int from, int n, size_t max) {
  size_t len = 16 + (size_t)((n * 7919) % 300);
  if (len > max)
    len = max;
  memcpy(buf, &from, sizeof from);
  memcpy(buf + 4, &n, sizeof n);
  for (size_t i = 8; i < len; i++)
    buf[i] = (unsigned char)(from * 31 + n + i);
  return len;
}

/* Whether buf (len bytes) is a whole message; its sender and number. */
static bool whole_message(const unsigned char *buf, size_t len, int *from,
                          int *n) {
  if (len < 8)
    return false;
  memcpy(from, buf, sizeof *from);
  memcpy(n, buf + 4, sizeof *n);
  unsigned char expect[512];
  return make_message(expect, *from, *n, sizeof expect) == len &&
         memcmp(expect, buf, len) == 0;
}

enum { PER_PRODUCER = 20000 };

static int produce(void *arg) {
  int from = (int)VI(arg);
  unsigned char buf[512];
  for (int n = 0; n < PER_PRODUCER; n++) {
    size_t len = make_message(buf, from, n, sizeof buf);
    CHILD_CHECK(weft_queue_put(queue, buf, len, WEFT_SEC(60)) == 0);
  }
  return 0;
}

/* Gets messages until it has `count` (arg), checking each is whole and
 * that each producer's come in order; adds them to the board's counter. */
static int consume(void *arg) {
  long count = VI(arg);
  int last[8];
  for (int i = 0; i < 8; i++)
    last[i] = -1;
  unsigned char buf[512];
  for (long i = 0; i < count; i++) {
    ssize_t len = weft_queue_get(queue, buf, sizeof buf, WEFT_SEC(60));
    int from, n;
    CHILD_CHECK(len > 0 && whole_message(buf, (size_t)len, &from, &n));
    CHILD_CHECK(from >= 0 && from < 8 && n > last[from]);
    last[from] = n;
  }
  atomic_fetch_add(&board->ticks, count);
  return 0;
}

static void *consume_in_task(void *arg) {
  CHECK_EQ(consume(arg), 0);
  return NULL;
}

static void *consume_in_tasks(void *arg) {
  long count = VI(arg);
  weft_task *a, *b;
  CHECK_EQ(weft_task_spawn(&a, consume_in_task, IV(count / 2), NULL), 0);
  CHECK_EQ(weft_task_spawn(&b, consume_in_task, IV(count - count / 2), NULL),
           0);
  CHECK_EQ(weft_task_join(a, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(b, WEFT_FOREVER, NULL), 0);
  return NULL;
}

/* One producer, one consumer, through a small queue (it fills up, so both
 * wait in turn): every message arrives whole, in order. */
TEST(a_queue_carries_whole_messages_in_order_between_processes) {
  make_board();
  need_robust(weft_queue_create(&queue, &(weft_queue_opts){.capacity = 4096}));
  weft_proc *c = start(consume, IV(PER_PRODUCER));
  weft_proc *p = start(produce, IV(0));
  join_ok(p);
  join_ok(c);
  CHECK_EQ(atomic_load(&board->ticks), PER_PRODUCER);
  CHECK_EQ(weft_queue_qsize(queue), 0);
  weft_queue_free(queue);
  weft_shm_free(region);
}

/* Four producer processes; two consumer processes, and this one's two
 * tasks: each message is received once. */
TEST(many_producers_and_consumers_each_message_once) {
  make_board();
  need_robust(weft_queue_create(&queue, &(weft_queue_opts){.capacity = 8192}));
  weft_proc *p[6];
  long share = PER_PRODUCER;
  for (int i = 0; i < 4; i++)
    p[i] = start(produce, IV(i));
  p[4] = start(consume, IV(share));
  p[5] = start(consume, IV(share));
  CHECK_EQ(weft_run(consume_in_tasks, IV(2 * share), NULL), 0);
  for (int i = 0; i < 6; i++)
    join_ok(p[i]);
  CHECK_EQ(atomic_load(&board->ticks), 4L * PER_PRODUCER);
  CHECK_EQ(weft_queue_qsize(queue), 0);
  weft_queue_free(queue);
  weft_shm_free(region);
}

static void *fill_and_wait(void *arg) {
  (void)arg;
  /* Full by maxsize: a put waits, and times out. */
  CHECK_EQ(weft_queue_put(queue, "a", 1, 0), 0);
  CHECK_EQ(weft_queue_put(queue, "bb", 2, 0), 0);
  CHECK_EQ(weft_queue_put(queue, "c", 1, 0), -ETIMEDOUT);
  CHECK_EQ(weft_queue_put(queue, "c", 1, WEFT_MS(20)), -ETIMEDOUT);
  CHECK_EQ(weft_queue_qsize(queue), 2);
  return NULL;
}

TEST(a_queue_is_bounded_and_refuses_bad_input) {
  need_robust(weft_queue_create(
      &queue, &(weft_queue_opts){.capacity = 64, .maxsize = 2}));
  CHECK_EQ(weft_queue_max_message(queue), 48);
  CHECK_EQ(weft_run(fill_and_wait, NULL, NULL), 0); /* in a task */
  /* A buffer too small: the message stays first. */
  char buf[100];
  CHECK_EQ(weft_queue_get(queue, buf, 0, 0), -EMSGSIZE);
  CHECK_EQ(weft_queue_get(queue, buf, 1, 0), 1);
  CHECK_EQ(buf[0], 'a');
  CHECK_EQ(weft_queue_get(queue, buf, 1, 0), -EMSGSIZE);
  CHECK_EQ(weft_queue_get(queue, buf, 2, 0), 2);
  CHECK(memcmp(buf, "bb", 2) == 0);
  CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, 0), -ETIMEDOUT);
  CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, WEFT_MS(10)), -ETIMEDOUT);
  /* Empty messages are messages. */
  CHECK_EQ(weft_queue_put(queue, NULL, 0, 0), 0);
  CHECK_EQ(weft_queue_get(queue, NULL, 0, 0), 0);
  /* Larger than the capacity: it could never fit. */
  char big[49] = {0};
  CHECK_EQ(weft_queue_put(queue, big, 48, 0), 0);
  CHECK_EQ(weft_queue_put(queue, big, 49, WEFT_FOREVER), -EMSGSIZE);
  CHECK_EQ(weft_queue_get(queue, big, sizeof big, 0), 48);
  CHECK_EQ(weft_queue_put(queue, NULL, 1, 0), -EINVAL);
  CHECK_EQ(weft_queue_put(queue, "x", 1, -2), -EINVAL);
  CHECK_EQ(weft_queue_get(queue, NULL, 1, 0), -EINVAL);
  CHECK_EQ(weft_queue_get(queue, buf, 1, INT64_MIN), -EINVAL);
  CHECK_EQ(weft_queue_qsize(queue), 0);
  CHECK_EQ(weft_queue_put(NULL, "x", 1, 0), -EINVAL);
  CHECK_EQ(weft_queue_get(NULL, buf, 1, 0), -EINVAL);
  CHECK_EQ(weft_queue_qsize(NULL), -EINVAL);
  CHECK_EQ(weft_queue_fd(NULL), -1);
  CHECK_EQ(weft_queue_max_message(NULL), 0);
  weft_queue_free(NULL);
  weft_queue *q = NULL;
  CHECK_EQ(weft_queue_create(NULL, NULL), -EINVAL);
  CHECK_EQ(weft_queue_create(&q, &(weft_queue_opts){.capacity = 63}), -EINVAL);
  CHECK_EQ(weft_queue_create(&q, &(weft_queue_opts){.capacity = SIZE_MAX}),
           -EINVAL);
  CHECK(q == NULL);
  weft_queue_free(queue);
}

/* A cancelled task: its calls that need not wait go through, the others
 * are -ECANCELED (weft_task_cancel's rule), on each shared primitive. */
static void *cancelled_self(void *arg) {
  (void)arg;
  CHECK_EQ(weft_task_cancel(weft_task_current()), 0);
  char buf[8];
  CHECK_EQ(weft_queue_put(queue, "x", 1, WEFT_FOREVER), 0);
  CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, WEFT_FOREVER), 1);
  CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, WEFT_FOREVER), -ECANCELED);
  CHECK_EQ(weft_shared_sem_release(&board->sem), 0);
  CHECK_EQ(weft_shared_sem_acquire(&board->sem, WEFT_FOREVER), 0);
  CHECK_EQ(weft_shared_sem_acquire(&board->sem, WEFT_FOREVER), -ECANCELED);
  CHECK_EQ(weft_shared_event_wait(&board->go, WEFT_FOREVER), -ECANCELED);
  CHECK_EQ(weft_shared_lock_acquire(&board->lock, WEFT_FOREVER), 0);
  CHECK_EQ(weft_shared_lock_release(&board->lock), 0);
  return NULL;
}

TEST(a_cancelled_task_fails_only_the_calls_that_would_wait) {
  make_board();
  need_robust(weft_queue_create(&queue, NULL));
  CHECK_EQ(weft_run(cancelled_self, NULL, NULL), 0);
  CHECK_EQ(weft_queue_qsize(queue), 0);
  CHECK_EQ(weft_shared_sem_value(&board->sem), 0);
  weft_queue_free(queue);
  weft_shm_free(region);
}

static int open_passed_queue(void *arg) {
  (void)arg;
  close(socks[0]);
  int fd = recv_fd(socks[1]);
  weft_queue *q;
  CHILD_CHECK(weft_queue_open(&q, fd) == 0);
  char buf[32];
  CHILD_CHECK(weft_queue_get(q, buf, sizeof buf, WEFT_SEC(30)) == 5);
  CHILD_CHECK(memcmp(buf, "hello", 5) == 0);
  CHILD_CHECK(weft_queue_put(q, "world", 5, WEFT_SEC(30)) == 0);
  weft_queue_free(q);
  return 0;
}

/* The queue's fd, passed to a process that maps it anew; and a region
 * that is not a queue, or a queue whose memory was overwritten. */
TEST(a_queue_is_opened_by_fd_and_a_corrupted_one_is_refused) {
  need_robust(weft_queue_create(&queue, NULL));
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, socks), 0);
  weft_proc *p = start(open_passed_queue, NULL);
  send_fd(socks[0], weft_queue_fd(queue));
  CHECK_EQ(weft_queue_put(queue, "hello", 5, 0), 0);
  join_ok(p);
  char buf[32];
  CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, 0), 5);
  CHECK(memcmp(buf, "world", 5) == 0);

  weft_queue *q = NULL;
  CHECK_EQ(weft_queue_open(&q, -1), -EBADF);
  CHECK_EQ(weft_queue_open(NULL, 0), -EINVAL);
  weft_shm *s;
  CHECK_EQ(weft_shm_create(&s, 65536, NULL), 0);
  CHECK_EQ(weft_queue_open(&q, weft_shm_fd(s)), -EINVAL); /* zeros */
  CHECK(fcntl(weft_shm_fd(s), F_GETFD) >= 0);
  weft_shm_free(s);

  /* Overwrite the queue's positions through a mapping of its own: every
   * call says so, and nothing changes. */
  CHECK_EQ(weft_queue_put(queue, "kept", 4, 0), 0);
  int fd = weft_queue_fd(queue);
  uint64_t *words = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(words != MAP_FAILED);
  uint64_t saved[64];
  memcpy(saved, words, sizeof saved);
  /* The tail and the head, at 128 and 320 in struct qshared (queue.c). */
  words[16] = 0x7777777777777770u;
  words[40] = 0x7777777777777777u;
  CHECK_EQ(weft_queue_put(queue, "x", 1, 0), -EUCLEAN);
  CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, 0), -EUCLEAN);
  int dup_fd = dup(fd);
  CHECK_EQ(weft_queue_open(&q, dup_fd), -EUCLEAN);
  close(dup_fd);
  memcpy(words, saved, sizeof saved);
  /* A capacity overwritten (larger than the region): refused, never
   * trusted for a bound. */
  words[1] = (uint64_t)1 << 30;
  CHECK_EQ(weft_queue_put(queue, "x", 1, 0), -EUCLEAN);
  CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, 0), -EUCLEAN);
  dup_fd = dup(fd);
  CHECK_EQ(weft_queue_open(&q, dup_fd), -EUCLEAN);
  close(dup_fd);
  memcpy(words, saved, sizeof saved);
  CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, 0), 4);
  CHECK(memcmp(buf, "kept", 4) == 0);
  munmap(words, 4096);
  close(socks[0]);
  close(socks[1]);
  weft_queue_free(queue);
}

enum { BIG = 256 * 1024 };

/* Puts big messages for ever, numbered from 0. */
static int put_big_forever(void *arg) {
  (void)arg;
  unsigned char *buf = malloc(BIG);
  CHILD_CHECK(buf != NULL);
  for (uint32_t n = 0;; n++) {
    memset(buf, (int)(n & 0xff), BIG);
    memcpy(buf, &n, sizeof n);
    CHILD_CHECK(weft_queue_put(queue, buf, BIG, WEFT_SEC(60)) == 0);
  }
}

/* The number a big message carries, and whether the message is whole. */
static bool big_whole(const unsigned char *buf, ssize_t len, uint32_t *n) {
  if (len != BIG)
    return false;
  memcpy(n, buf, sizeof *n);
  bool whole = buf[BIG - 1] == (*n & 0xff);
  for (size_t i = sizeof *n; whole && i < BIG; i += 997)
    whole = buf[i] == (*n & 0xff);
  return whole;
}

/* A child that dies with this process, should a check end it early. */
static weft_proc *start_daemon(weft_proc_fn fn) {
  weft_proc *p;
  CHECK_EQ(weft_proc_start(&p, fn, NULL, &(weft_proc_opts){.daemon = true}), 0);
  return p;
}

static void kill_and_join(weft_proc *p) {
  CHECK_EQ(weft_proc_kill(p), 0);
  int code;
  CHECK_EQ(weft_proc_join(p, WEFT_SEC(30), &code), 0);
  CHECK_EQ(code, -SIGKILL);
  weft_proc_free(p);
}

/* White-box (queue.c, shm-private.h, shared-sem.c, on every architecture
 * weft builds for): in struct qshared, the producers' lock at 64, the
 * consumers' at 256, the tail at 128 (word 16), the ring at 512 (word
 * 64); in a lock, its word at 16; in a semaphore, its count at 8 and its
 * sleepers at 12. And the queue's region mapped to read them. */
enum {
  PUT_LOCK = 64,
  GET_LOCK = 256,
  TAIL_WORD = 16,
  RING_WORD = 64,
  LOCK_WORD = 16,
  SEM_COUNT = 8,
  SEM_SLEEPERS = 12,
};

static void *map_queue(void) {
  void *words = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
                     weft_queue_fd(queue), 0);
  CHECK(words != MAP_FAILED);
  return words;
}

static uint32_t lock_word(void *words, size_t word) {
  return atomic_load((_Atomic uint32_t *)((char *)words + word));
}

/* Whether p (its first thread, whose id is its pid) holds the lock. */
static bool holds(weft_proc *p, void *words, size_t word) {
  return (pid_t)(lock_word(words, word) & FUTEX_TID_MASK) == weft_proc_pid(p);
}

/* Whether the kernel marked a lock's word: its holder died holding it. */
static bool died_holding(void *words, size_t word) {
  return lock_word(words, word) & FUTEX_OWNER_DIED;
}

/* Waits (generously) until p holds the lock, looking again after each
 * call of `meanwhile` (or at once, if NULL). */
static void wait_until_holding(weft_proc *p, void *words, size_t word,
                               void (*meanwhile)(void)) {
  int64_t give_up =
      harness_now_ns() + (int64_t)(WEFT_SEC(30) * harness_timeout_multiplier());
  while (!holds(p, words, word)) {
    CHECK(harness_now_ns() < give_up);
    if (meanwhile)
      meanwhile();
  }
}

static unsigned char *big_buf;
static int received;

/* Takes a big message if there is one, and checks it; whether there was
 * one. */
static bool take_one(void) {
  ssize_t len = weft_queue_get(queue, big_buf, BIG, 0);
  uint32_t n;
  if (len == -ETIMEDOUT)
    return false;
  CHECK(big_whole(big_buf, len, &n));
  received++;
  return true;
}

static void take_one_if_any(void) { take_one(); }

/* Producers killed by SIGKILL while a consumer takes what they put, each
 * after a random while and the moment it is seen holding the producers'
 * lock, so most in the middle of copying a message in (the lock's word
 * says which died holding it): the queue goes on working, and every
 * message received is whole. */
TEST_TIMEOUT(a_queue_holder_killed_mid_put_leaves_no_half_message, 120) {
  if (harness_emulated())
    harness_skip("qemu-user has no robust futex list: the kernel cannot "
                 "mark a dead holder's locks");
  make_board();
  CHECK_EQ(
      weft_queue_create(&queue, &(weft_queue_opts){.capacity = 4 * BIG + 64}),
      0);
  void *words = map_queue();
  big_buf = malloc(BIG);
  CHECK(big_buf != NULL);
  received = 0;
  /* At least 40 rounds, and on until 20 producers died holding the lock
   * (a kill lands a moment after the look: on a loaded machine, or under
   * a sanitizer, the producer has let go more often by then). */
  int died_in_put = 0, rounds = 0;
  srand(42);
  for (; rounds < 40 || (died_in_put < 20 && rounds < 400); rounds++) {
    weft_proc *p = start_daemon(put_big_forever);
    /* Take what it puts for a while, so that it keeps copying. */
    int64_t until = harness_now_ns() + WEFT_MS(1 + rand() % 5);
    while (harness_now_ns() < until)
      take_one();
    wait_until_holding(p, words, PUT_LOCK + LOCK_WORD, take_one_if_any);
    kill_and_join(p);
    died_in_put += died_holding(words, PUT_LOCK + LOCK_WORD);
    /* Drained by getting, not by qsize: a message whose producer died
     * after storing it is there to get but not counted (weft/shm.h). */
    while (take_one()) {
    }
  }
  CHECK(received > 0);
  if (died_in_put < 20)
    harness_fail(__FILE__, __LINE__, "%d of %d died holding the lock",
                 died_in_put, rounds);
  CHECK_EQ(weft_queue_put(queue, "after", 5, 0), 0);
  CHECK_EQ(weft_queue_get(queue, big_buf, BIG, 0), 5);
  munmap(words, 4096);
  free(big_buf);
  weft_queue_free(queue);
  weft_shm_free(region);
}

/* Gets big messages for ever, noting the number of each one got; each
 * must follow the last one noted, by this process or the one before. */
static int get_big_forever(void *arg) {
  (void)arg;
  unsigned char *buf = malloc(BIG);
  CHILD_CHECK(buf != NULL);
  for (;;) {
    ssize_t len = weft_queue_get(queue, buf, BIG, WEFT_SEC(60));
    uint32_t n;
    CHILD_CHECK(big_whole(buf, len, &n));
    CHILD_CHECK(n == atomic_load(&board->got_last) + 1);
    atomic_store(&board->got_last, n);
    atomic_store(&board->got_any, 1);
  }
}

/* Consumers killed by SIGKILL while a producer goes on, each after a
 * random while and the moment it is seen holding the consumers' lock, so
 * most in the middle of copying a message out (the lock's word says which
 * died holding it; the queue is kept well filled): the next getter finds
 * the queue working, and its first message is the one after the last the
 * dead consumer noted, or the one after that (got by the dead consumer
 * just before it could note it): none lost, none twice. (All in
 * processes: TSan sees no synchronization made in another process, so a
 * producer thread here would look to it like a race.) */
TEST_TIMEOUT(a_consumer_killed_mid_get_loses_no_message, 120) {
  if (harness_emulated())
    harness_skip("qemu-user has no robust futex list: the kernel cannot "
                 "mark a dead holder's locks");
  make_board();
  CHECK_EQ(
      weft_queue_create(&queue, &(weft_queue_opts){.capacity = 32 * BIG + 64}),
      0);
  void *words = map_queue();
  weft_proc *producer = start_daemon(put_big_forever);
  for (int looks = 0; weft_queue_qsize(queue) < 16; looks++) {
    CHECK(looks < 30000 * harness_timeout_multiplier());
    nap_ms(1);
  }
  unsigned char *buf = malloc(BIG);
  CHECK(buf != NULL);
  atomic_store(&board->got_last, UINT32_MAX); /* none yet: 0 comes next */
  int died_in_get = 0, round = 0; /* as above: on until 15 died holding */
  srand(7);
  for (; round < 30 || (died_in_get < 15 && round < 300); round++) {
    atomic_store(&board->got_any, 0);
    weft_proc *p = start_daemon(get_big_forever);
    for (int looks = 0; !atomic_load(&board->got_any); looks++) {
      CHECK(looks < 30000 * harness_timeout_multiplier());
      nap_ms(1);
    }
    nap_ms(rand() % 3);
    wait_until_holding(p, words, GET_LOCK + LOCK_WORD, NULL);
    kill_and_join(p);
    died_in_get += died_holding(words, GET_LOCK + LOCK_WORD);
    uint32_t next = atomic_load(&board->got_last) + 1;
    ssize_t len = weft_queue_get(queue, buf, BIG, WEFT_SEC(30));
    uint32_t n;
    CHECK(big_whole(buf, len, &n));
    if (n != next && n != next + 1)
      harness_fail(__FILE__, __LINE__, "round %d: got %u after %u", round, n,
                   next);
    atomic_store(&board->got_last, n);
  }
  if (died_in_get < 15)
    harness_fail(__FILE__, __LINE__, "%d of %d died holding the lock",
                 died_in_get, round);
  kill_and_join(producer);
  munmap(words, 4096);
  free(buf);
  weft_queue_free(queue);
  weft_shm_free(region);
}

/* arg: the queue's region, mapped. */
static int take_put_lock_and_die(void *arg) {
  weft_shared_lock *put_lock = (weft_shared_lock *)((char *)arg + PUT_LOCK);
  CHILD_CHECK(weft_shared_lock_acquire(put_lock, WEFT_SEC(30)) == 0);
  return 0; /* holding it */
}

/* A producer that died after it stored its message's header, before it
 * moved the tail (made here by moving the tail back, then a process that
 * dies holding the producers' lock): the message is got once, and the
 * next put goes after it, whether or not it was got first. qsize counts
 * it from that put on (weft/shm.h). */
TEST(a_producer_dead_between_its_header_and_its_tail_is_moved_on) {
  if (harness_emulated())
    harness_skip("qemu-user has no robust futex list: the kernel cannot "
                 "mark a dead holder's locks");
  make_board();
  need_robust(weft_queue_create(&queue, &(weft_queue_opts){.capacity = 256}));
  uint64_t *words = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
                         weft_queue_fd(queue), 0);
  CHECK(words != MAP_FAILED);
  char buf[64];
  for (int round = 0; round < 2; round++) {
    CHECK_EQ(weft_queue_put(queue, "one", 3, 0), 0);
    uint64_t before = words[TAIL_WORD];
    CHECK_EQ(weft_queue_put(queue, "two", 3, 0), 0);
    words[TAIL_WORD] = before;
    join_ok(start(take_put_lock_and_die, words));
    CHECK_EQ(weft_queue_qsize(queue), 1);
    if (round == 0) { /* put first: it goes after "two" */
      CHECK_EQ(weft_queue_put(queue, "three", 5, 0), 0);
      CHECK_EQ(weft_queue_qsize(queue), 3);
    }
    CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, 0), 3);
    CHECK(memcmp(buf, "one", 3) == 0);
    CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, 0), 3);
    CHECK(memcmp(buf, "two", 3) == 0);
    if (round == 1) { /* got first: empty, not corrupted, then a put */
      /* Nobody but a producer under its lock reads the ring at a tail
       * behind the head, where (in a queue in use) puts may be copying
       * another lap's bytes: these, say. */
      uint64_t *at_tail = &words[RING_WORD + (uint32_t)before % 256 / 8];
      uint64_t header = *at_tail;
      *at_tail = 0x5555555555555555u;
      CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, 0), -ETIMEDOUT);
      CHECK_EQ(weft_queue_qsize(queue), 0);
      weft_queue *opened = NULL;
      CHECK_EQ(weft_queue_open(&opened, dup(weft_queue_fd(queue))), 0);
      weft_queue_free(opened);
      *at_tail = header;
      CHECK_EQ(weft_queue_put(queue, "three", 5, 0), 0);
    }
    CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, 0), 5);
    CHECK(memcmp(buf, "three", 5) == 0);
    CHECK_EQ(weft_queue_get(queue, buf, sizeof buf, 0), -ETIMEDOUT);
    CHECK_EQ(weft_queue_qsize(queue), 0);
  }
  munmap(words, 4096);
  weft_queue_free(queue);
  weft_shm_free(region);
}

/* -------------------------------------- a waiter killed as it is woken */

/* What a waiter does just before it would act on a wake, and then dies
 * there: sleeps on a word of the primitive's insides (white-box, see
 * above), and exits when woken. */
static int sleep_then_die(void *arg) {
  _Atomic uint32_t *word = arg;
  uint32_t v = atomic_load(word);
  if (arg == (char *)&board->lock + LOCK_WORD) {
    v |= 0x80000000u; /* FUTEX_WAITERS, as a waiter sets it */
    atomic_fetch_or(word, 0x80000000u);
  } else {
    atomic_fetch_add((_Atomic uint32_t *)((char *)&board->sem + SEM_SLEEPERS),
                     1);
  }
  weft_shared_event_set(&board->ready);
  syscall(SYS_futex, word, FUTEX_WAIT, v, NULL, NULL, 0);
  _exit(0); /* woken: dies without taking the lock or the unit */
}

static void *take_lock_then_unit(void *arg) {
  (void)arg;
  CHECK_EQ(weft_shared_lock_acquire(&board->lock, WEFT_SEC(10)), 0);
  CHECK_EQ(weft_shared_lock_release(&board->lock), 0);
  return NULL;
}

static void *take_unit(void *arg) {
  (void)arg;
  CHECK_EQ(weft_shared_sem_acquire(&board->sem, WEFT_SEC(10)), 0);
  return NULL;
}

/* The holder's release wakes the first sleeper, which dies without acting
 * on it: the other waiter (a thread here) still gets the lock, or the
 * unit, within moments (it looks again by itself), not never. */
TEST(a_waiter_killed_as_it_is_woken_strands_no_other) {
  make_board();
  for (int kind = 0; kind < 2; kind++) {
    weft_shared_event_clear(&board->ready);
    if (kind == 0)
      CHECK_EQ(weft_shared_lock_acquire(&board->lock, 0), 0);
    void *word = kind == 0 ? (char *)&board->lock + LOCK_WORD
                           : (char *)&board->sem + SEM_COUNT;
    weft_proc *dying = start(sleep_then_die, word);
    CHECK_EQ(weft_shared_event_wait(&board->ready, WEFT_SEC(10)), 0);
    nap_ms(20); /* asleep, first in the futex's queue */
    weft_thread *t;
    CHECK_EQ(weft_thread_start(&t, kind == 0 ? take_lock_then_unit : take_unit,
                               NULL, NULL),
             0);
    nap_ms(20);
    int64_t start_ns = harness_now_ns();
    if (kind == 0)
      CHECK_EQ(weft_shared_lock_release(&board->lock), 0);
    else
      CHECK_EQ(weft_shared_sem_release(&board->sem), 0);
    CHECK_EQ(weft_thread_join(t, WEFT_SEC(10), NULL), 0);
    CHECK_EQ(weft_thread_detach(t), 0);
    CHECK(harness_now_ns() - start_ns < WEFT_SEC(5));
    join_ok(dying);
  }
  weft_shm_free(region);
}
