/*
 * The sync layer: each primitive between tasks of one hub, tasks of two
 * hubs, plain threads, and all of them at once; timeouts and cancellation
 * racing wake-ups; a lock released by another task or thread than took it;
 * channels and select; the visited-set pattern; freeing a primitive as soon
 * as a wait returns; lock-order checking and the hub's deadlock report by
 * their text; bad use.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "harness.h"

static void run(weft_task_fn fn, void *arg) {
  CHECK_EQ(weft_run(fn, arg, NULL), 0);
}

/* --- basics ---------------------------------------------------------------
 */

TEST(a_lock_is_taken_and_freed) {
  weft_lock l = WEFT_LOCK_INIT;
  CHECK(!weft_lock_locked(&l));
  CHECK_EQ(weft_lock_destroy(&l), 0);
  CHECK_EQ(weft_lock_acquire(&l, WEFT_FOREVER), 0);
  CHECK(weft_lock_locked(&l));
  CHECK_EQ(weft_lock_acquire(&l, 0), -ETIMEDOUT); /* not re-entrant */
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_lock_acquire(&l, WEFT_MS(20)), -ETIMEDOUT);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(20));
  CHECK_EQ(weft_lock_destroy(&l), -EBUSY);
  CHECK_EQ(weft_lock_release(&l), 0);
  CHECK_EQ(weft_lock_release(&l), -EPERM); /* release unlocked lock */
  CHECK(!weft_lock_locked(&l));
  CHECK_EQ(weft_lock_init(&l, "named"), 0);
  CHECK(l.name != NULL);
  CHECK_EQ(weft_lock_init(NULL, NULL), -EINVAL);
  CHECK_EQ(weft_lock_acquire(NULL, 0), -EINVAL);
  CHECK_EQ(weft_lock_release(NULL), -EINVAL);
  CHECK_EQ(weft_lock_destroy(NULL), -EINVAL);
  CHECK(!weft_lock_locked(NULL));
}

/* --- many contenders: tasks, hubs, threads ---------------------------------
 * Every contender adds to a counter under the lock, now and then blocking
 * inside (a yield, a sleep) so that others must wait; the lock must let
 * exactly one in at a time, and every increment must count. */

static weft_lock shared = WEFT_LOCK_INIT;
static long counter;
static atomic_int inside, overlaps;

enum { ROUNDS = 2000 };

static void critical(unsigned *seed, bool in_task) {
  if (atomic_fetch_add(&inside, 1) != 0)
    atomic_fetch_add(&overlaps, 1);
  long c = counter;
  *seed = *seed * 1103515245u + 12345u;
  if (in_task && (*seed >> 16) % 8 == 0)
    weft_yield();
  else if (!in_task && (*seed >> 16) % 64 == 0)
    sched_yield();
  counter = c + 1;
  atomic_fetch_sub(&inside, 1);
}

static void *task_contender(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (int i = 0; i < ROUNDS; i++) {
    CHECK_EQ(weft_lock_acquire(&shared, WEFT_FOREVER), 0);
    critical(&seed, true);
    CHECK_EQ(weft_lock_release(&shared), 0);
  }
  return NULL;
}

static void *tasks_on_a_hub(void *arg) {
  int n = (int)VI(arg);
  weft_task *t[16];
  for (int i = 0; i < n; i++)
    CHECK_EQ(weft_task_spawn(&t[i], task_contender, IV(i + 1), NULL), 0);
  for (int i = 0; i < n; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void *hub_thread(void *arg) {
  CHECK_EQ(weft_run(tasks_on_a_hub, arg, NULL), 0);
  return NULL;
}

static void *plain_thread(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (int i = 0; i < ROUNDS; i++) {
    CHECK_EQ(weft_lock_acquire(&shared, WEFT_FOREVER), 0);
    critical(&seed, false);
    CHECK_EQ(weft_lock_release(&shared), 0);
  }
  return NULL;
}

static void contend(int hubs, int tasks_per_hub, int threads) {
  counter = 0;
  pthread_t th[8];
  int n = 0;
  for (int i = 0; i < hubs; i++)
    CHECK_EQ(pthread_create(&th[n++], NULL, hub_thread, IV(tasks_per_hub)), 0);
  for (int i = 0; i < threads; i++)
    CHECK_EQ(pthread_create(&th[n++], NULL, plain_thread, IV(100 + i)), 0);
  for (int i = 0; i < n; i++)
    pthread_join(th[i], NULL);
  CHECK_EQ(atomic_load(&overlaps), 0);
  CHECK_EQ(counter, (long)ROUNDS * (hubs * tasks_per_hub + threads));
  CHECK(!weft_lock_locked(&shared));
  CHECK_EQ(weft_lock_destroy(&shared), 0);
}

TEST(tasks_of_one_hub_take_turns) { contend(1, 8, 0); }
TEST(tasks_of_two_hubs_take_turns) { contend(2, 4, 0); }
TEST(plain_threads_take_turns) { contend(0, 0, 4); }
TEST(tasks_and_threads_take_turns) { contend(2, 4, 2); }

/* --- timeouts, cancellation, and who releases ------------------------------
 */

static weft_lock held = WEFT_LOCK_INIT;

static void *wait_for_held(void *arg) {
  return IV(weft_lock_acquire(&held, (int64_t)VI(arg)));
}

static void *waits_end(void *arg) {
  (void)arg;
  CHECK_EQ(weft_lock_acquire(&held, 0), 0);
  weft_task *timed, *cancelled, *patient;
  CHECK_EQ(weft_task_spawn(&timed, wait_for_held, IV(WEFT_MS(10)), NULL), 0);
  CHECK_EQ(weft_task_spawn(&cancelled, wait_for_held, IV(WEFT_FOREVER), NULL),
           0);
  CHECK_EQ(weft_task_spawn(&patient, wait_for_held, IV(WEFT_FOREVER), NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(1)), 0);
  CHECK_EQ(weft_task_cancel(cancelled), 0);
  void *r;
  CHECK_EQ(weft_task_join(cancelled, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  CHECK_EQ(weft_task_join(timed, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ETIMEDOUT);
  /* The one left gets the lock once it is released, here by its waiter's
   * sibling rather than by its taker: any task may release a Lock. */
  CHECK_EQ(weft_lock_release(&held), 0);
  CHECK_EQ(weft_task_join(patient, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 0);
  CHECK(weft_lock_locked(&held));
  CHECK_EQ(weft_lock_release(&held), 0);
  /* A cancelled task still takes a free lock (its cleanup may need it),
   * and gets -ECANCELED where it would wait. */
  CHECK_EQ(weft_task_cancel(weft_task_current()), 0);
  CHECK_EQ(weft_lock_acquire(&held, WEFT_FOREVER), 0);
  CHECK_EQ(weft_lock_acquire(&held, WEFT_FOREVER), -ECANCELED);
  CHECK_EQ(weft_lock_release(&held), 0);
  return NULL;
}

TEST(waits_end_by_timeout_cancellation_or_release) { run(waits_end, NULL); }

/* A task of a hub blocked in its poller is woken by a plain thread's
 * release: the remote queue and the poller's kick. */
static void *release_later(void *arg) {
  (void)arg;
  usleep(20000);
  CHECK_EQ(weft_lock_release(&held), 0);
  return NULL;
}

static void *woken_by_a_thread(void *arg) {
  (void)arg;
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, release_later, NULL), 0);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_lock_acquire(&held, WEFT_SEC(10)), 0);
  CHECK(harness_now_ns() - t0 < WEFT_SEC(5));
  CHECK_EQ(weft_lock_release(&held), 0);
  pthread_join(th, NULL);
  return NULL;
}

TEST(a_thread_wakes_a_task_of_a_sleeping_hub) {
  CHECK_EQ(weft_lock_acquire(&held, 0), 0); /* taken by this thread */
  run(woken_by_a_thread, NULL);
}

/* Timeouts racing releases, among tasks of two hubs and threads: random
 * short timeouts, so that many waits end just as a release wakes them. A
 * lost wake-up shows as a contender that never gets the lock (the case
 * times out); a doubled one as two inside at once. */
static atomic_long acquired;

static void try_hard(unsigned seed, bool in_task) {
  for (int i = 0; i < ROUNDS; i++) {
    seed = seed * 1103515245u + 12345u;
    int64_t timeout = (seed >> 16) % 4 == 0 ? 0 : WEFT_US((seed >> 16) % 200);
    int rc = weft_lock_acquire(&shared, timeout);
    if (rc == -ETIMEDOUT)
      continue;
    CHECK_EQ(rc, 0);
    critical(&seed, in_task);
    for (volatile int k = 0; k < 3000; k++)
      ; /* hold it a while: waits pile up and time out */
    atomic_fetch_add(&acquired, 1);
    CHECK_EQ(weft_lock_release(&shared), 0);
  }
}

static void *racing_task(void *arg) {
  try_hard((unsigned)VI(arg), true);
  return NULL;
}

static void *racing_hub(void *arg) {
  weft_task *t[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_spawn(&t[i], racing_task, IV(VI(arg) * 10 + i), NULL),
             0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void *racing_hub_thread(void *arg) {
  CHECK_EQ(weft_run(racing_hub, arg, NULL), 0);
  return NULL;
}

static void *racing_thread(void *arg) {
  try_hard((unsigned)VI(arg), false);
  return NULL;
}

TEST_TIMEOUT(timeouts_race_releases, 60) {
  counter = 0;
  pthread_t th[4];
  CHECK_EQ(pthread_create(&th[0], NULL, racing_hub_thread, IV(1)), 0);
  CHECK_EQ(pthread_create(&th[1], NULL, racing_hub_thread, IV(2)), 0);
  CHECK_EQ(pthread_create(&th[2], NULL, racing_thread, IV(3)), 0);
  CHECK_EQ(pthread_create(&th[3], NULL, racing_thread, IV(4)), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  CHECK_EQ(atomic_load(&overlaps), 0);
  CHECK_EQ(counter, atomic_load(&acquired));
  CHECK(!weft_lock_locked(&shared));
  CHECK_EQ(weft_lock_destroy(&shared), 0); /* no waiter left behind */
  printf("  %ld of %d acquisitions got the lock\n", atomic_load(&acquired),
         10 * ROUNDS);
}

/* Two tasks that each release the lock and take it again without blocking
 * in between: with no hand-off the releaser would win every time, since
 * the waiter it wakes runs only at the next turn. The lock goes to the
 * waiter instead, so they alternate. */
static int turns_of[2];

static void *alternate(void *arg) {
  int me = (int)VI(arg);
  for (int i = 0; i < 1000; i++) {
    CHECK_EQ(weft_lock_acquire(&held, WEFT_FOREVER), 0);
    turns_of[me]++;
    CHECK_EQ(weft_yield(), 0); /* the other task comes to wait */
    CHECK_EQ(weft_lock_release(&held), 0);
  }
  return NULL;
}

static void *two_alternating(void *arg) {
  (void)arg;
  weft_task *a, *b;
  CHECK_EQ(weft_task_spawn(&a, alternate, IV(0), NULL), 0);
  CHECK_EQ(weft_task_spawn(&b, alternate, IV(1), NULL), 0);
  /* Halfway through, each must have had about half of the turns. */
  while (turns_of[0] + turns_of[1] < 1000)
    CHECK_EQ(weft_yield(), 0);
  CHECK(turns_of[0] >= 400 && turns_of[1] >= 400);
  CHECK_EQ(weft_task_join(a, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(b, WEFT_FOREVER, NULL), 0);
  return NULL;
}

TEST(tasks_of_one_hub_get_the_lock_in_turn) { run(two_alternating, NULL); }

/* --- RLock ------------------------------------------------------------------
 */

static weft_rlock rl = WEFT_RLOCK_INIT;

static void *rlock_from_elsewhere(void *arg) {
  (void)arg;
  int rc = weft_rlock_release(&rl); /* not the owner */
  if (rc != -EPERM)
    return IV(rc);
  return IV(weft_rlock_acquire(&rl, WEFT_MS(10))); /* held by another */
}

static void *rlock_in_tasks(void *arg) {
  (void)arg;
  CHECK_EQ(weft_rlock_acquire(&rl, WEFT_FOREVER), 0);
  CHECK_EQ(weft_rlock_acquire(&rl, 0), 0); /* again: the owner */
  CHECK(weft_rlock_owned(&rl));
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, rlock_from_elsewhere, NULL, NULL), 0);
  void *r;
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ETIMEDOUT); /* another task is another owner */
  CHECK_EQ(weft_rlock_release(&rl), 0);
  CHECK_EQ(weft_rlock_destroy(&rl), -EBUSY); /* still held once */
  CHECK_EQ(weft_rlock_release(&rl), 0);
  CHECK(!weft_rlock_owned(&rl));
  CHECK_EQ(weft_rlock_release(&rl), -EPERM);
  CHECK_EQ(weft_rlock_destroy(&rl), 0);
  return NULL;
}

TEST(an_rlock_is_reentrant_for_its_owner_only) {
  run(rlock_in_tasks, NULL);
  /* The same between threads. */
  CHECK_EQ(weft_rlock_acquire(&rl, 0), 0);
  CHECK_EQ(weft_rlock_acquire(&rl, 0), 0);
  pthread_t th;
  void *r;
  CHECK_EQ(pthread_create(&th, NULL, rlock_from_elsewhere, NULL), 0);
  pthread_join(th, &r);
  CHECK_EQ(VI(r), -ETIMEDOUT);
  CHECK_EQ(weft_rlock_release(&rl), 0);
  CHECK_EQ(weft_rlock_release(&rl), 0);
  CHECK_EQ(weft_rlock_init(&rl, "r"), 0);
  CHECK_EQ(weft_rlock_acquire(NULL, 0), -EINVAL);
  CHECK_EQ(weft_rlock_release(NULL), -EINVAL);
}

/* --- Condition: a bounded queue, producers and consumers ------------------
 * Tasks of two hubs and plain threads produce and consume through a queue
 * guarded by one condition; every item is consumed exactly once. */

enum { SLOTS = 4, ITEMS = 3000, PRODUCERS = 3, CONSUMERS = 3 };

static weft_cond cv = WEFT_COND_INIT;
static int queue[SLOTS], q_len, q_head;
static atomic_long consumed_sum;
static atomic_int consumed;

static bool not_full(void *arg) {
  (void)arg;
  return q_len < SLOTS;
}

static bool not_empty_or_done(void *arg) {
  (void)arg;
  return q_len > 0 || atomic_load(&consumed) >= PRODUCERS * ITEMS;
}

static void produce(int base) {
  for (int i = 0; i < ITEMS; i++) {
    CHECK_EQ(weft_cond_acquire(&cv, WEFT_FOREVER), 0);
    CHECK_EQ(weft_cond_wait_for(&cv, not_full, NULL, WEFT_FOREVER), 0);
    queue[(q_head + q_len++) % SLOTS] = base + i;
    CHECK(weft_cond_notify_all(&cv) >= 0);
    CHECK_EQ(weft_cond_release(&cv), 0);
  }
}

static void consume(void) {
  for (;;) {
    CHECK_EQ(weft_cond_acquire(&cv, WEFT_FOREVER), 0);
    CHECK_EQ(weft_cond_wait_for(&cv, not_empty_or_done, NULL, WEFT_FOREVER), 0);
    if (q_len == 0) { /* all consumed */
      weft_cond_notify_all(&cv);
      CHECK_EQ(weft_cond_release(&cv), 0);
      return;
    }
    int v = queue[q_head];
    q_head = (q_head + 1) % SLOTS;
    q_len--;
    atomic_fetch_add(&consumed_sum, v);
    atomic_fetch_add(&consumed, 1);
    weft_cond_notify_all(&cv);
    CHECK_EQ(weft_cond_release(&cv), 0);
  }
}

static void *producer_task(void *arg) {
  produce((int)VI(arg));
  return NULL;
}

static void *consumer_task(void *arg) {
  (void)arg;
  consume();
  return NULL;
}

static void *cond_hub(void *arg) {
  weft_task *p, *c;
  CHECK_EQ(weft_task_spawn(&p, producer_task, arg, NULL), 0);
  CHECK_EQ(weft_task_spawn(&c, consumer_task, NULL, NULL), 0);
  CHECK_EQ(weft_task_join(p, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(c, WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void *cond_hub_thread(void *arg) {
  CHECK_EQ(weft_run(cond_hub, arg, NULL), 0);
  return NULL;
}

static void *cond_plain_thread(void *arg) {
  produce((int)VI(arg));
  consume();
  return NULL;
}

TEST_TIMEOUT(a_condition_carries_a_queue_between_tasks_and_threads, 60) {
  pthread_t th[3];
  CHECK_EQ(pthread_create(&th[0], NULL, cond_hub_thread, IV(0)), 0);
  CHECK_EQ(pthread_create(&th[1], NULL, cond_hub_thread, IV(ITEMS)), 0);
  CHECK_EQ(pthread_create(&th[2], NULL, cond_plain_thread, IV(2 * ITEMS)), 0);
  for (int i = 0; i < 3; i++)
    pthread_join(th[i], NULL);
  long n = (long)PRODUCERS * ITEMS;
  CHECK_EQ(atomic_load(&consumed), n);
  CHECK_EQ(atomic_load(&consumed_sum), n * (n - 1) / 2);
}

static weft_cond lonely = WEFT_COND_INIT;

static void *cond_waits(void *arg) {
  int64_t timeout = (int64_t)VI(arg);
  CHECK_EQ(weft_cond_acquire(&lonely, WEFT_FOREVER), 0);
  CHECK_EQ(weft_cond_acquire(&lonely, WEFT_FOREVER), 0); /* twice */
  int rc = weft_cond_wait(&lonely, timeout);
  /* Whatever ended the wait, the lock is held again, twice. */
  CHECK(weft_rlock_owned(&lonely.own_));
  CHECK_EQ(weft_cond_release(&lonely), 0);
  CHECK_EQ(weft_cond_release(&lonely), 0);
  CHECK_EQ(weft_cond_release(&lonely), -EPERM);
  return IV(rc);
}

static void *cond_edges(void *arg) {
  (void)arg;
  CHECK_EQ(weft_cond_wait(&lonely, 0), -EPERM); /* lock not held */
  CHECK_EQ(weft_cond_notify(&lonely, 1), -EPERM);
  weft_task *timed, *cancelled, *notified;
  CHECK_EQ(weft_task_spawn(&timed, cond_waits, IV(WEFT_MS(10)), NULL), 0);
  CHECK_EQ(weft_task_spawn(&cancelled, cond_waits, IV(WEFT_FOREVER), NULL), 0);
  CHECK_EQ(weft_task_spawn(&notified, cond_waits, IV(WEFT_FOREVER), NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(2)), 0);
  /* Cancelled while another task holds the lock: it must wait for the lock
   * all the same before it returns. */
  CHECK_EQ(weft_cond_acquire(&lonely, WEFT_FOREVER), 0);
  CHECK_EQ(weft_task_cancel(cancelled), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(2)), 0);
  CHECK_EQ(weft_cond_release(&lonely), 0);
  void *r;
  CHECK_EQ(weft_task_join(cancelled, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ECANCELED);
  CHECK_EQ(weft_task_join(timed, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), -ETIMEDOUT);
  CHECK_EQ(weft_cond_acquire(&lonely, WEFT_FOREVER), 0);
  CHECK_EQ(weft_cond_notify(&lonely, 5), 1); /* one waiter left */
  CHECK_EQ(weft_cond_release(&lonely), 0);
  CHECK_EQ(weft_task_join(notified, WEFT_FOREVER, &r), 0);
  CHECK_EQ(VI(r), 0);
  return NULL;
}

TEST(a_condition_wait_ends_holding_the_lock_whatever_ends_it) {
  run(cond_edges, NULL);
}

/* --- Semaphore ------------------------------------------------------------ */

static weft_sem sem;
static atomic_int in_sem, most_in_sem;

static void *sem_user(void *arg) {
  (void)arg;
  for (int i = 0; i < 500; i++) {
    CHECK_EQ(weft_sem_acquire(&sem, WEFT_FOREVER), 0);
    int now = atomic_fetch_add(&in_sem, 1) + 1;
    int most = atomic_load(&most_in_sem);
    while (now > most &&
           !atomic_compare_exchange_weak(&most_in_sem, &most, now))
      ;
    weft_yield();
    atomic_fetch_sub(&in_sem, 1);
    CHECK_EQ(weft_sem_release(&sem, 1), 0);
  }
  return NULL;
}

static void *sem_hub(void *arg) {
  (void)arg;
  weft_task *t[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_spawn(&t[i], sem_user, NULL, NULL), 0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void *sem_hub_thread(void *arg) {
  CHECK_EQ(weft_run(sem_hub, arg, NULL), 0);
  return NULL;
}

TEST(a_semaphore_lets_in_at_most_its_count) {
  CHECK_EQ(weft_sem_init(&sem, 3, true), 0);
  pthread_t th[3];
  CHECK_EQ(pthread_create(&th[0], NULL, sem_hub_thread, NULL), 0);
  CHECK_EQ(pthread_create(&th[1], NULL, sem_hub_thread, NULL), 0);
  CHECK_EQ(pthread_create(&th[2], NULL, sem_user, NULL), 0);
  for (int i = 0; i < 3; i++)
    pthread_join(th[i], NULL);
  CHECK(atomic_load(&most_in_sem) <= 3);
  CHECK_EQ(weft_sem_value(&sem), 3);
  CHECK_EQ(weft_sem_release(&sem, 1), -EOVERFLOW); /* bounded at 3 */
  CHECK_EQ(weft_sem_value(&sem), 3);
  CHECK_EQ(weft_sem_destroy(&sem), 0);
  weft_sem open = WEFT_SEM_INIT(0);
  CHECK_EQ(weft_sem_acquire(&open, 0), -ETIMEDOUT);
  int64_t t0 = harness_now_ns();
  CHECK_EQ(weft_sem_acquire(&open, WEFT_MS(10)), -ETIMEDOUT);
  CHECK(harness_now_ns() - t0 >= WEFT_MS(10));
  CHECK_EQ(weft_sem_release(&open, 5), 0); /* unbounded */
  CHECK_EQ(weft_sem_value(&open), 5);
  CHECK_EQ(weft_sem_release(&open, 0), -EINVAL);
  CHECK_EQ(weft_sem_release(&open, WEFT_SEM_MAX), -EOVERFLOW);
  CHECK_EQ(weft_sem_init(&open, WEFT_SEM_MAX + 1u, false), -EINVAL);
}

/* --- Event ---------------------------------------------------------------- */

static weft_event ev = WEFT_EVENT_INIT;

static void *event_waiter(void *arg) {
  return IV(weft_event_wait(&ev, (int64_t)VI(arg)));
}

static void *event_hub(void *arg) {
  (void)arg;
  weft_task *t[5];
  for (int i = 0; i < 5; i++)
    CHECK_EQ(weft_task_spawn(&t[i], event_waiter, IV(WEFT_SEC(10)), NULL), 0);
  for (int i = 0; i < 5; i++) {
    void *r;
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, &r), 0);
    CHECK_EQ(VI(r), 0);
  }
  return NULL;
}

static void *event_hub_thread(void *arg) {
  CHECK_EQ(weft_run(event_hub, arg, NULL), 0);
  return NULL;
}

TEST(an_event_wakes_every_waiter_of_every_kind) {
  CHECK(!weft_event_is_set(&ev));
  CHECK_EQ(weft_event_wait(&ev, 0), -ETIMEDOUT);
  pthread_t th[3];
  CHECK_EQ(pthread_create(&th[0], NULL, event_hub_thread, NULL), 0);
  CHECK_EQ(pthread_create(&th[1], NULL, event_hub_thread, NULL), 0);
  CHECK_EQ(pthread_create(&th[2], NULL, event_waiter, IV(WEFT_SEC(10))), 0);
  usleep(20000);
  CHECK_EQ(weft_event_set(&ev), 0);
  for (int i = 0; i < 3; i++) {
    void *r = NULL;
    pthread_join(th[i], &r);
    if (i == 2)
      CHECK_EQ(VI(r), 0);
  }
  CHECK(weft_event_is_set(&ev));
  CHECK_EQ(weft_event_wait(&ev, 0), 0);
  CHECK_EQ(weft_event_clear(&ev), 0);
  CHECK_EQ(weft_event_wait(&ev, WEFT_MS(5)), -ETIMEDOUT);
  CHECK_EQ(weft_event_destroy(&ev), 0);
  CHECK_EQ(weft_event_set(NULL), -EINVAL);
}

/* --- Barrier ---------------------------------------------------------------
 * Rounds of a barrier of 6: two hubs of two tasks and two threads. Each
 * round every party gets a different index and the action runs once; then
 * one party times out and breaks it for all, and a reset makes it whole. */

enum { PARTIES = 6, BARRIER_ROUNDS = 50 };

static weft_barrier bar;
static atomic_int actions, index_seen[BARRIER_ROUNDS][PARTIES];

static void count_action(void *arg) {
  (void)arg;
  atomic_fetch_add(&actions, 1);
}

static void rounds(void) {
  for (int r = 0; r < BARRIER_ROUNDS; r++) {
    int i = weft_barrier_wait(&bar, WEFT_SEC(30));
    CHECK(i >= 0 && i < PARTIES);
    atomic_fetch_add(&index_seen[r][i], 1);
  }
}

static void *barrier_task(void *arg) {
  (void)arg;
  rounds();
  return NULL;
}

static void *barrier_hub(void *arg) {
  (void)arg;
  weft_task *t[2];
  for (int i = 0; i < 2; i++)
    CHECK_EQ(weft_task_spawn(&t[i], barrier_task, NULL, NULL), 0);
  for (int i = 0; i < 2; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void *barrier_hub_thread(void *arg) {
  CHECK_EQ(weft_run(barrier_hub, arg, NULL), 0);
  return NULL;
}

static void *barrier_thread(void *arg) {
  (void)arg;
  rounds();
  return NULL;
}

static void *wait_broken(void *arg) {
  (void)arg;
  return IV(weft_barrier_wait(&bar, WEFT_SEC(30)));
}

TEST_TIMEOUT(a_barrier_releases_its_parties_round_by_round, 60) {
  CHECK_EQ(weft_barrier_init(&bar, PARTIES, count_action, NULL), 0);
  pthread_t th[4];
  CHECK_EQ(pthread_create(&th[0], NULL, barrier_hub_thread, NULL), 0);
  CHECK_EQ(pthread_create(&th[1], NULL, barrier_hub_thread, NULL), 0);
  CHECK_EQ(pthread_create(&th[2], NULL, barrier_thread, NULL), 0);
  CHECK_EQ(pthread_create(&th[3], NULL, barrier_thread, NULL), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  CHECK_EQ(atomic_load(&actions), BARRIER_ROUNDS);
  for (int r = 0; r < BARRIER_ROUNDS; r++)
    for (int i = 0; i < PARTIES; i++)
      CHECK_EQ(atomic_load(&index_seen[r][i]), 1);
  /* A timeout breaks it for the other waiter, and for later waits. */
  pthread_t other;
  CHECK_EQ(pthread_create(&other, NULL, wait_broken, NULL), 0);
  while (weft_barrier_waiting(&bar) < 1)
    usleep(1000);
  CHECK_EQ(weft_barrier_wait(&bar, WEFT_MS(10)), -ETIMEDOUT);
  void *r;
  pthread_join(other, &r);
  CHECK_EQ(VI(r), -EPIPE);
  CHECK(weft_barrier_broken(&bar));
  CHECK_EQ(weft_barrier_wait(&bar, 0), -EPIPE);
  CHECK_EQ(weft_barrier_reset(&bar), 0);
  CHECK(!weft_barrier_broken(&bar));
  CHECK_EQ(weft_barrier_abort(&bar), 0);
  CHECK_EQ(weft_barrier_wait(&bar, WEFT_SEC(1)), -EPIPE);
  CHECK_EQ(weft_barrier_init(&bar, 0, NULL, NULL), -EINVAL);
  weft_barrier one;
  CHECK_EQ(weft_barrier_init(&one, 1, NULL, NULL), 0);
  CHECK_EQ(weft_barrier_wait(&one, 0), 0); /* a party of one never waits */
}

/* --- WaitGroup ------------------------------------------------------------ */

static weft_waitgroup wg = WEFT_WAITGROUP_INIT;
static atomic_int finished_work;

static void *work(void *arg) {
  weft_sleep(WEFT_MS(VI(arg)));
  atomic_fetch_add(&finished_work, 1);
  CHECK_EQ(weft_waitgroup_done(&wg), 0);
  return NULL;
}

static void *thread_work(void *arg) {
  usleep((useconds_t)VI(arg) * 1000);
  atomic_fetch_add(&finished_work, 1);
  CHECK_EQ(weft_waitgroup_done(&wg), 0);
  return NULL;
}

static void *waitgroup_main(void *arg) {
  (void)arg;
  CHECK_EQ(weft_waitgroup_wait(&wg, 0), 0); /* zero: no wait */
  CHECK_EQ(weft_waitgroup_add(&wg, 12), 0);
  for (int i = 0; i < 10; i++)
    CHECK_EQ(weft_task_spawn(NULL, work, IV(1 + i % 5), NULL), 0);
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_create(&th[i], NULL, thread_work, IV(5 + i)), 0);
  CHECK_EQ(weft_waitgroup_wait(&wg, 0), -ETIMEDOUT);
  CHECK_EQ(weft_waitgroup_wait(&wg, WEFT_SEC(10)), 0);
  CHECK_EQ(atomic_load(&finished_work), 12);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  CHECK_EQ(weft_waitgroup_done(&wg), -EINVAL); /* below zero */
  CHECK_EQ(weft_waitgroup_add(&wg, 1), 0);
  CHECK_EQ(weft_task_cancel(weft_task_current()), 0);
  CHECK_EQ(weft_waitgroup_wait(&wg, WEFT_SEC(1)), -ECANCELED);
  CHECK_EQ(weft_waitgroup_done(&wg), 0);
  CHECK_EQ(weft_waitgroup_wait(&wg, WEFT_SEC(1)), 0);
  return NULL;
}

TEST(a_waitgroup_waits_for_tasks_and_threads) { run(waitgroup_main, NULL); }

/* --- Channels and select -------------------------------------------------- */

static weft_chan ping_ch = WEFT_CHAN_INIT(NULL, 0),
                 pong_ch = WEFT_CHAN_INIT(NULL, 0);

static void *ponger(void *arg) {
  int n = (int)VI(arg);
  for (int i = 0; i < n; i++) {
    void *v;
    CHECK_EQ(weft_chan_recv(&ping_ch, &v, WEFT_SEC(10)), 0);
    CHECK_EQ(weft_chan_send(&pong_ch, IV(VI(v) + 1), WEFT_SEC(10)), 0);
  }
  return NULL;
}

static void pinger(int n) {
  for (int i = 0; i < n; i++) {
    void *v;
    CHECK_EQ(weft_chan_send(&ping_ch, IV(i), WEFT_SEC(10)), 0);
    CHECK_EQ(weft_chan_recv(&pong_ch, &v, WEFT_SEC(10)), 0);
    CHECK_EQ(VI(v), i + 1);
  }
}

static void *ping_tasks(void *arg) {
  (void)arg;
  weft_task *t;
  CHECK_EQ(weft_task_spawn(&t, ponger, IV(1000), NULL), 0);
  pinger(1000);
  CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void *ping_hub_thread(void *arg) {
  (void)arg;
  CHECK_EQ(weft_run(ping_tasks, NULL, NULL), 0);
  return NULL;
}

static void *ponger_hub(void *arg) {
  CHECK_EQ(weft_run(ponger, arg, NULL), 0);
  return NULL;
}

TEST(an_unbuffered_channel_pairs_sends_and_receives_of_every_kind) {
  run(ping_tasks, NULL); /* two tasks of one hub */
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, ponger, IV(1000)), 0);
  pinger(1000); /* two threads */
  pthread_join(th, NULL);
  CHECK_EQ(pthread_create(&th, NULL, ponger_hub, IV(1000)), 0);
  pinger(1000); /* a thread and a task of a hub */
  pthread_join(th, NULL);
  CHECK_EQ(pthread_create(&th, NULL, ping_hub_thread, NULL), 0);
  pthread_join(th, NULL);
}

TEST(a_buffered_channel_is_fifo_and_close_drains_it) {
  void *slots[3];
  weft_chan c;
  CHECK_EQ(weft_chan_init(&c, slots, 3), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ(weft_chan_send(&c, IV(i), 0), 0);
  CHECK_EQ(weft_chan_send(&c, IV(9), 0), -ETIMEDOUT); /* full */
  CHECK_EQ(weft_chan_send(&c, IV(9), WEFT_MS(5)), -ETIMEDOUT);
  CHECK_EQ(weft_chan_len(&c), 3);
  void *v;
  CHECK_EQ(weft_chan_recv(&c, &v, 0), 0);
  CHECK_EQ(VI(v), 0);
  CHECK_EQ(weft_chan_send(&c, IV(3), 0), 0);
  CHECK_EQ(weft_chan_close(&c), 0);
  CHECK_EQ(weft_chan_close(&c), -EPIPE);
  CHECK_EQ(weft_chan_send(&c, IV(4), WEFT_FOREVER), -EPIPE);
  for (int i = 1; i <= 3; i++) {
    CHECK_EQ(weft_chan_recv(&c, &v, WEFT_FOREVER), 0); /* still there */
    CHECK_EQ(VI(v), i);
  }
  CHECK_EQ(weft_chan_recv(&c, &v, WEFT_FOREVER), -EPIPE); /* drained */
  CHECK_EQ(weft_chan_init(&c, NULL, 2), -EINVAL);
  CHECK_EQ(weft_chan_send(NULL, NULL, 0), -EINVAL);
}

static weft_chan closing = WEFT_CHAN_INIT(NULL, 0);

static void *recv_until_closed(void *arg) {
  (void)arg;
  void *v;
  return IV(weft_chan_recv(&closing, &v, WEFT_SEC(10)));
}

static void *send_until_closed(void *arg) {
  (void)arg;
  return IV(weft_chan_send(&closing, NULL, WEFT_SEC(10)));
}

static void *close_wakes(void *arg) {
  (void)arg;
  weft_task *r, *s, *c;
  CHECK_EQ(weft_task_spawn(&r, recv_until_closed, NULL, NULL), 0);
  CHECK_EQ(weft_task_spawn(&c, recv_until_closed, NULL, NULL), 0);
  CHECK_EQ(weft_sleep(WEFT_MS(2)), 0);
  CHECK_EQ(weft_task_cancel(c), 0);
  void *res;
  CHECK_EQ(weft_task_join(c, WEFT_FOREVER, &res), 0);
  CHECK_EQ(VI(res), -ECANCELED);
  CHECK_EQ(weft_chan_close(&closing), 0);
  CHECK_EQ(weft_task_join(r, WEFT_FOREVER, &res), 0);
  CHECK_EQ(VI(res), -EPIPE);
  CHECK_EQ(weft_task_spawn(&s, send_until_closed, NULL, NULL), 0);
  CHECK_EQ(weft_task_join(s, WEFT_FOREVER, &res), 0);
  CHECK_EQ(VI(res), -EPIPE);
  return NULL;
}

TEST(close_and_cancellation_end_waits_on_a_channel) { run(close_wakes, NULL); }

/* Select: a task takes from two channels fed by a thread and a task, and
 * sends on a third when its receiver is there; a select with nothing ready
 * times out, or with timeout 0 is Go's default case. */
static void *slots_a[4], *slots_b[4];
static weft_chan ch_a = WEFT_CHAN_INIT(slots_a, 4),
                 ch_b = WEFT_CHAN_INIT(slots_b, 4),
                 ch_out = WEFT_CHAN_INIT(NULL, 0);

enum { FEED = 500 };

static void *feed_a(void *arg) {
  (void)arg;
  for (int i = 1; i <= FEED; i++)
    CHECK_EQ(weft_chan_send(&ch_a, IV(i), WEFT_SEC(10)), 0);
  CHECK_EQ(weft_chan_close(&ch_a), 0);
  return NULL;
}

static void *feed_b(void *arg) {
  (void)arg;
  for (int i = 1; i <= FEED; i++)
    CHECK_EQ(weft_chan_send(&ch_b, IV(-i), WEFT_SEC(10)), 0);
  CHECK_EQ(weft_chan_close(&ch_b), 0);
  return NULL;
}

static void *drain_out(void *arg) {
  long *sum = arg;
  void *v;
  while (weft_chan_recv(&ch_out, &v, WEFT_SEC(10)) == 0)
    *sum += VI(v);
  return NULL;
}

static void *selector(void *arg) {
  (void)arg;
  weft_chan_op nothing[1] = {{&ch_out, WEFT_CHAN_SEND, IV(1), 0}};
  CHECK_EQ(weft_select(nothing, 1, 0), -ETIMEDOUT); /* no receiver yet */
  CHECK_EQ(weft_select(nothing, 1, WEFT_MS(3)), -ETIMEDOUT);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, feed_a, NULL), 0);
  weft_task *fb, *dr;
  long out_sum = 0;
  CHECK_EQ(weft_task_spawn(&fb, feed_b, NULL, NULL), 0);
  CHECK_EQ(weft_task_spawn(&dr, drain_out, &out_sum, NULL), 0);
  long sum_a = 0, sum_b = 0;
  int seen_a = 0, seen_b = 0, open_a = 1, open_b = 1;
  while (open_a || open_b) {
    weft_chan_op ops[2];
    int n = 0;
    if (open_a)
      ops[n++] = (weft_chan_op){&ch_a, WEFT_CHAN_RECV, NULL, 0};
    if (open_b)
      ops[n++] = (weft_chan_op){&ch_b, WEFT_CHAN_RECV, NULL, 0};
    int i = weft_select(ops, n, WEFT_SEC(10));
    CHECK(i >= 0 && i < n);
    weft_chan_op *op = &ops[i];
    if (op->rc == -EPIPE) {
      if (op->chan == &ch_a)
        open_a = 0;
      else
        open_b = 0;
      continue;
    }
    CHECK_EQ(op->rc, 0);
    if (op->chan == &ch_a) {
      sum_a += VI(op->value);
      seen_a++;
    } else {
      sum_b += VI(op->value);
      seen_b++;
    }
    /* Pass it on through the unbuffered channel, or give up after 10 ms. */
    weft_chan_op out[1] = {{&ch_out, WEFT_CHAN_SEND, op->value, 0}};
    CHECK_EQ(weft_select(out, 1, WEFT_SEC(10)), 0);
  }
  CHECK_EQ(weft_chan_close(&ch_out), 0);
  CHECK_EQ(weft_task_join(fb, WEFT_FOREVER, NULL), 0);
  CHECK_EQ(weft_task_join(dr, WEFT_FOREVER, NULL), 0);
  pthread_join(th, NULL);
  CHECK_EQ(seen_a, FEED);
  CHECK_EQ(seen_b, FEED);
  CHECK_EQ(sum_a, (long)FEED * (FEED + 1) / 2);
  CHECK_EQ(sum_b, -(long)FEED * (FEED + 1) / 2);
  CHECK_EQ(out_sum, 0);
  weft_chan_op bad[1] = {{NULL, WEFT_CHAN_RECV, NULL, 0}};
  CHECK_EQ(weft_select(bad, 1, 0), -EINVAL);
  CHECK_EQ(weft_select(bad, 0, 0), -EINVAL);
  return NULL;
}

TEST(select_takes_whichever_case_can_run) { run(selector, NULL); }

/* Many producers and consumers on one small channel, tasks of two hubs and
 * threads, with short random timeouts: every value sent is received once. */
static void *mpmc_slots[2];
static weft_chan mpmc = WEFT_CHAN_INIT(mpmc_slots, 2);
static atomic_long sent_sum, recv_sum, sent_n, recv_n;
static atomic_int producers_left;

static void mpmc_produce(unsigned seed) {
  for (int i = 1; i <= 2000; i++) {
    seed = seed * 1103515245u + 12345u;
    int64_t timeout = (seed >> 16) % 3 == 0 ? WEFT_US(50) : WEFT_FOREVER;
    int rc;
    while ((rc = weft_chan_send(&mpmc, IV(i), timeout)) == -ETIMEDOUT)
      ;
    CHECK_EQ(rc, 0);
    atomic_fetch_add(&sent_sum, i);
    atomic_fetch_add(&sent_n, 1);
  }
  if (atomic_fetch_sub(&producers_left, 1) == 1)
    CHECK_EQ(weft_chan_close(&mpmc), 0);
}

static void mpmc_consume(unsigned seed) {
  for (;;) {
    seed = seed * 1103515245u + 12345u;
    int64_t timeout = (seed >> 16) % 3 == 0 ? WEFT_US(50) : WEFT_FOREVER;
    void *v;
    int rc = weft_chan_recv(&mpmc, &v, timeout);
    if (rc == -ETIMEDOUT)
      continue;
    if (rc == -EPIPE)
      return;
    CHECK_EQ(rc, 0);
    atomic_fetch_add(&recv_sum, VI(v));
    atomic_fetch_add(&recv_n, 1);
  }
}

static void *mpmc_task(void *arg) {
  if (VI(arg) % 2)
    mpmc_produce((unsigned)VI(arg));
  else
    mpmc_consume((unsigned)VI(arg));
  return NULL;
}

static void *mpmc_hub(void *arg) {
  weft_task *t[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_spawn(&t[i], mpmc_task, IV(VI(arg) * 10 + i), NULL), 0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void *mpmc_hub_thread(void *arg) {
  CHECK_EQ(weft_run(mpmc_hub, arg, NULL), 0);
  return NULL;
}

static void *mpmc_thread(void *arg) { return mpmc_task(arg); }

TEST_TIMEOUT(many_producers_and_consumers_lose_nothing, 60) {
  atomic_store(&producers_left, 2 * 2 + 1); /* odd tasks, and one thread */
  pthread_t th[4];
  CHECK_EQ(pthread_create(&th[0], NULL, mpmc_hub_thread, IV(1)), 0);
  CHECK_EQ(pthread_create(&th[1], NULL, mpmc_hub_thread, IV(2)), 0);
  CHECK_EQ(pthread_create(&th[2], NULL, mpmc_thread, IV(101)), 0);
  CHECK_EQ(pthread_create(&th[3], NULL, mpmc_thread, IV(100)), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  CHECK_EQ(atomic_load(&sent_n), 5 * 2000);
  CHECK_EQ(atomic_load(&recv_n), atomic_load(&sent_n));
  CHECK_EQ(atomic_load(&recv_sum), atomic_load(&sent_sum));
}

/* Plain threads on an unbuffered channel, sends and receives racing
 * timeouts of a few microseconds (shorter than a thread's spin, longer
 * than a hand-over): a peer often fires a wait just as it times out, and
 * then wakes the thread after leaving the channel's guard, which the
 * thread must wait for. Every value arrives once. */
static weft_chan racy = WEFT_CHAN_INIT(NULL, 0);
static atomic_long racy_sent, racy_recv, racy_recv_n;
static atomic_int racy_senders;

static int64_t racy_timeout(unsigned *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return WEFT_US(1 + (*seed >> 16) % 20);
}

static void *racy_sender(void *arg) {
  unsigned seed = (unsigned)VI(arg);
  for (int i = 1; i <= 30000; i++) {
    int rc;
    while ((rc = weft_chan_send(&racy, IV(i), racy_timeout(&seed))) ==
           -ETIMEDOUT)
      ;
    CHECK_EQ(rc, 0);
    atomic_fetch_add(&racy_sent, i);
  }
  if (atomic_fetch_sub(&racy_senders, 1) == 1)
    CHECK_EQ(weft_chan_close(&racy), 0);
  return NULL;
}

static void *racy_receiver(void *arg) {
  unsigned seed = (unsigned)VI(arg);
  for (;;) {
    void *v;
    int rc = weft_chan_recv(&racy, &v, racy_timeout(&seed));
    if (rc == -ETIMEDOUT)
      continue;
    if (rc == -EPIPE)
      return NULL;
    CHECK_EQ(rc, 0);
    atomic_fetch_add(&racy_recv, VI(v));
    atomic_fetch_add(&racy_recv_n, 1);
  }
}

TEST_TIMEOUT(threads_racing_timeouts_on_a_channel_lose_nothing, 60) {
  atomic_store(&racy_senders, 3);
  pthread_t th[6];
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(pthread_create(&th[i], NULL, racy_sender, IV(i + 1)), 0);
    CHECK_EQ(pthread_create(&th[3 + i], NULL, racy_receiver, IV(i + 7)), 0);
  }
  for (int i = 0; i < 6; i++)
    pthread_join(th[i], NULL);
  CHECK_EQ(atomic_load(&racy_recv_n), 3 * 30000);
  CHECK_EQ(atomic_load(&racy_recv), atomic_load(&racy_sent));
}

/* --- a visited set shared by threads and tasks ----------------------------
 * The notes' pattern: workers visit overlapping items, and a set of the
 * items seen, under a lock, makes sure each is processed once. Four plain
 * threads and two hubs of four tasks each offer all 5,000 items, each in
 * its own order, yielding now and then so that the tasks interleave. */
enum { VISIT_ITEMS = 5000 };
static weft_lock visited_lock = WEFT_LOCK_INIT;
static unsigned char visited[VISIT_ITEMS];
static atomic_int processed[VISIT_ITEMS];

static void offer_all(int worker) {
  for (int i = 0; i < VISIT_ITEMS; i++) {
    int item = (worker * 997 + i * 7) % VISIT_ITEMS; /* 7 is coprime */
    CHECK_EQ(weft_lock_acquire(&visited_lock, WEFT_FOREVER), 0);
    bool first = !visited[item];
    visited[item] = 1;
    CHECK_EQ(weft_lock_release(&visited_lock), 0);
    if (first)
      atomic_fetch_add(&processed[item], 1);
    if (i % 64 == 0 && weft_task_current())
      weft_yield();
  }
}

static void *offering(void *arg) {
  offer_all((int)VI(arg));
  return NULL;
}

static void *offering_hub(void *arg) {
  weft_task *t[4];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_spawn(&t[i], offering, IV(VI(arg) + i), NULL), 0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
  return NULL;
}

static void *offering_hub_thread(void *arg) {
  CHECK_EQ(weft_run(offering_hub, arg, NULL), 0);
  return NULL;
}

TEST(a_visited_set_processes_each_item_once) {
  pthread_t th[6];
  for (int i = 0; i < 4; i++)
    CHECK_EQ(pthread_create(&th[i], NULL, offering, IV(i)), 0);
  CHECK_EQ(pthread_create(&th[4], NULL, offering_hub_thread, IV(10)), 0);
  CHECK_EQ(pthread_create(&th[5], NULL, offering_hub_thread, IV(20)), 0);
  for (int i = 0; i < 6; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < VISIT_ITEMS; i++)
    if (atomic_load(&processed[i]) != 1)
      harness_fail(__FILE__, __LINE__, "item %d processed %d times", i,
                   atomic_load(&processed[i]));
}

/* --- freeing a primitive as soon as a wait on it returns ------------------
 * A common pattern: a waiter owns the primitive (on its stack, or as here
 * on the heap) and frees it the moment its wait returns. The waker may
 * still be inside the primitive's guard then; the waiter must wait for it
 * to leave. Under ASan a waker that touched freed memory fails the case. */

struct handoff {
  weft_event done;
  weft_lock lock;
  weft_chan chan;
};

static void *set_and_release(void *arg) {
  struct handoff *h = arg;
  weft_chan_send(&h->chan, IV(1), WEFT_FOREVER);
  weft_lock_release(&h->lock);
  weft_event_set(&h->done);
  return NULL;
}

TEST(a_primitive_may_be_freed_as_soon_as_a_wait_on_it_returns) {
  for (int i = 0; i < 300; i++) {
    struct handoff *h = calloc(1, sizeof *h);
    CHECK(h);
    CHECK_EQ(weft_lock_acquire(&h->lock, 0), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, set_and_release, h), 0);
    void *v;
    CHECK_EQ(weft_chan_recv(&h->chan, &v, WEFT_SEC(10)), 0);
    CHECK_EQ(weft_lock_acquire(&h->lock, WEFT_SEC(10)), 0);
    CHECK_EQ(weft_event_wait(&h->done, WEFT_SEC(10)), 0);
    free(h); /* while set_and_release may still be leaving weft_event_set */
    pthread_detach(th);
  }
  usleep(10000);
}

/* Two threads bounce a unit over two semaphores that start at 0: the
 * guarded slow paths race the lock-free fast paths on every round. A lost
 * wake-up shows as an acquire that times out with a unit free; a unit
 * counted twice as a value above 1. */
static weft_sem sem_a = WEFT_SEM_INIT(0), sem_b = WEFT_SEM_INIT(0);

static void *sem_pong(void *arg) {
  for (int i = 0; i < (int)VI(arg); i++) {
    CHECK_EQ(weft_sem_acquire(&sem_a, WEFT_SEC(10)), 0);
    CHECK_EQ(weft_sem_release(&sem_b, 1), 0);
  }
  return NULL;
}

TEST_TIMEOUT(a_semaphore_bounced_between_threads_loses_no_unit, 120) {
  enum { BOUNCES = 20000 };
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, sem_pong, IV(BOUNCES)), 0);
  for (int i = 0; i < BOUNCES; i++) {
    CHECK_EQ(weft_sem_release(&sem_a, 1), 0);
    CHECK_EQ(weft_sem_acquire(&sem_b, WEFT_SEC(10)), 0);
    CHECK(weft_sem_value(&sem_a) <= 1 && weft_sem_value(&sem_b) == 0);
  }
  pthread_join(th, NULL);
  CHECK_EQ(weft_sem_value(&sem_a), 0);
}

/* A run that gives up (here a deadlock: main and a daemon join each other)
 * must not release a task whose waiter is still queued in a primitive: the
 * daemon's cancellation wakes main, which then waits for a lock a plain
 * thread holds. The run cancels it rather than release it, and the
 * thread's later release finds no dead waiter (ASan would see one). */
static weft_lock given_up = WEFT_LOCK_INIT;
static weft_task *main_of_given_up;
static int late_acquire = 1;

static void *join_main_back(void *arg) {
  (void)arg;
  weft_task_join(main_of_given_up, WEFT_FOREVER, NULL);
  return NULL;
}

static void *main_joins_daemon(void *arg) {
  (void)arg;
  main_of_given_up = weft_task_current();
  weft_task *d;
  CHECK_EQ(weft_task_spawn(&d, join_main_back, NULL,
                           &(weft_task_opts){.daemon = true}),
           0);
  weft_task_join(d, WEFT_FOREVER, NULL); /* ends when the run gives up */
  late_acquire = weft_lock_acquire(&given_up, WEFT_FOREVER);
  return NULL;
}

static void give_up_child(void *arg) {
  (void)arg;
  CHECK_EQ(weft_lock_acquire(&given_up, 0), 0); /* this thread holds it */
  int rc = weft_run(main_joins_daemon, NULL, NULL);
  CHECK_EQ(weft_lock_release(&given_up), 0); /* no dead waiter to wake */
  CHECK_EQ(weft_lock_destroy(&given_up), 0);
  exit(rc == -EDEADLK && late_acquire == -ECANCELED ? 0 : 1);
}

TEST(a_run_that_gives_up_leaves_no_waiter_behind) {
  char out[4096];
  int status = harness_run_child(give_up_child, NULL, NULL, out, sizeof out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    harness_fail(__FILE__, __LINE__, "status %d:\n%s", status, out);
}

/* --- lock-order checking (WEFT_LOCKCHECK=1) --------------------------------
 * Locks taken in opposite orders by two threads, or round a cycle of three
 * by three tasks, are reported the first time the cycle closes, with the
 * names and call sites of both orders, before any deadlock happens. A
 * consistent order, an RLock taken again by its owner, and a condition's
 * wait report nothing; nor does anything with the check off. */

static weft_lock la, lb, lc;

/* Not inlined: the reports name it (a static function, from the symbol
 * table). */
__attribute__((noinline)) static void take_two(weft_lock *first,
                                               weft_lock *second) {
  CHECK_EQ(weft_lock_acquire(first, WEFT_FOREVER), 0);
  CHECK_EQ(weft_lock_acquire(second, WEFT_FOREVER), 0);
  CHECK_EQ(weft_lock_release(second), 0);
  CHECK_EQ(weft_lock_release(first), 0);
}

static void *a_then_b(void *arg) {
  (void)arg;
  take_two(&la, &lb);
  return NULL;
}

static void inversion_child(void *arg) {
  (void)arg;
  weft_lock_init(&la, "alpha");
  weft_lock_init(&lb, "beta");
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, a_then_b, NULL), 0);
  pthread_join(th, NULL);
  take_two(&lb, &la); /* the other order, on another thread, later */
  exit(0);
}

TEST(a_lock_order_inversion_is_reported_before_it_deadlocks) {
  char out[4096];
  const char *on[] = {"WEFT_LOCKCHECK=1", NULL};
  int status = harness_run_child(inversion_child, NULL, on, out, sizeof out);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_STR_HAS(out, "lock-order inversion");
  CHECK_STR_HAS(out, "'beta'");
  CHECK_STR_HAS(out, "'alpha'");
  CHECK_STR_HAS(out, "test-sync+0x");  /* call sites, for addr2line */
  CHECK_STR_HAS(out, " (take_two+0x"); /* and the function's name */
  /* Off by default: the same program says nothing. */
  status = harness_run_child(inversion_child, NULL, NULL, out, sizeof out);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(strstr(out, "inversion") == NULL);
}

/* The report goes to the program's function instead, whole, once. */
static char collected[4096];
static int collected_n;

static void collect(const char *report, void *arg) {
  (void)arg;
  snprintf(collected, sizeof collected, "%s", report);
  collected_n++;
}

static void inversion_to_a_function_child(void *arg) {
  CHECK_EQ(weft_hub_on_report(NULL, NULL), -EINVAL);
  CHECK_EQ(weft_hub_on_report(collect, NULL), 0);
  weft_lock_init(&la, "alpha");
  weft_lock_init(&lb, "beta");
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, a_then_b, NULL), 0);
  pthread_join(th, NULL);
  take_two(&lb, &la);
  (void)arg;
  fprintf(stderr, "%d collected:\n%s", collected_n, collected);
  exit(0);
}

TEST(a_lock_order_report_goes_to_the_function_chosen) {
  char out[4096];
  const char *on[] = {"WEFT_LOCKCHECK=1", NULL};
  int status = harness_run_child(inversion_to_a_function_child, NULL, on, out,
                                 sizeof out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    harness_fail(__FILE__, __LINE__, "status %d:\n%s", status, out);
  static const char want[] = "1 collected:\nweft: lock-order inversion";
  if (strncmp(out, want, sizeof want - 1) != 0)
    harness_fail(__FILE__, __LINE__, "not only the report, once:\n%s", out);
  CHECK_STR_HAS(out, "'beta'");
  CHECK_STR_HAS(out, "'alpha'");
}

static void *cycle_step(void *arg) {
  weft_lock **pair = arg;
  take_two(pair[0], pair[1]);
  return NULL;
}

static void *three_tasks(void *arg) {
  (void)arg;
  static weft_lock *ab[2] = {&la, &lb}, *bc[2] = {&lb, &lc},
                   *ca[2] = {&lc, &la};
  weft_lock **steps[3] = {ab, bc, ca};
  for (int i = 0; i < 3; i++) {
    weft_task *t;
    CHECK_EQ(weft_task_spawn(&t, cycle_step, steps[i], NULL), 0);
    CHECK_EQ(weft_task_join(t, WEFT_FOREVER, NULL), 0);
  }
  return NULL;
}

static void cycle_child(void *arg) {
  (void)arg;
  weft_lock_init(&la, "alpha");
  weft_lock_init(&lb, "beta");
  weft_lock_init(&lc, "gamma");
  CHECK_EQ(weft_run(three_tasks, NULL, NULL), 0);
  exit(0);
}

TEST(a_cycle_of_three_locks_is_reported) {
  char out[4096];
  const char *on[] = {"WEFT_LOCKCHECK=1", NULL};
  int status = harness_run_child(cycle_child, NULL, on, out, sizeof out);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_STR_HAS(out, "lock-order inversion");
  CHECK_STR_HAS(out, "'gamma'");
  CHECK_STR_HAS(out, "'alpha'");
  CHECK_STR_HAS(out, "'beta'");
}

static weft_cond checked_cond;
static weft_rlock checked_rlock;

static void clean_child(void *arg) {
  (void)arg;
  weft_lock_init(&la, "alpha");
  weft_lock_init(&lb, "beta");
  weft_rlock_init(&checked_rlock, "again");
  weft_cond_init(&checked_cond, NULL);
  for (int i = 0; i < 3; i++) {
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, a_then_b, NULL), 0);
    pthread_join(th, NULL);
    take_two(&la, &lb);
  }
  CHECK_EQ(weft_rlock_acquire(&checked_rlock, 0), 0);
  CHECK_EQ(weft_lock_acquire(&la, 0), 0);
  CHECK_EQ(weft_rlock_acquire(&checked_rlock, 0), 0); /* re-entry */
  CHECK_EQ(weft_rlock_release(&checked_rlock), 0);
  CHECK_EQ(weft_lock_release(&la), 0);
  CHECK_EQ(weft_rlock_release(&checked_rlock), 0);
  CHECK_EQ(weft_cond_acquire(&checked_cond, 0), 0);
  CHECK_EQ(weft_cond_wait(&checked_cond, WEFT_MS(1)), -ETIMEDOUT);
  CHECK_EQ(weft_cond_release(&checked_cond), 0);
  /* beta then a try of alpha, against alpha then beta above: a try never
   * waits, so it cannot deadlock. */
  CHECK_EQ(weft_lock_acquire(&lb, 0), 0);
  CHECK_EQ(weft_lock_acquire(&la, 0), 0);
  CHECK_EQ(weft_lock_release(&la), 0);
  CHECK_EQ(weft_lock_release(&lb), 0);
  exit(0);
}

TEST(a_consistent_order_reports_nothing) {
  char out[4096];
  const char *on[] = {"WEFT_LOCKCHECK=1", NULL};
  int status = harness_run_child(clean_child, NULL, on, out, sizeof out);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(strstr(out, "inversion") == NULL);
}

/* --- a deadlock of tasks on RLocks, reported by the hub --------------------
 * Two tasks each hold one RLock and wait for the other's: only the owner of
 * an RLock can release it, so nothing can wake either. The hub says so,
 * naming the locks and their owners, and weft_run returns -EDEADLK. A task
 * waiting for an RLock a plain thread owns is no deadlock: it waits. */

static weft_rlock left, right;

static void *take_then(void *arg) {
  weft_rlock **pair = arg;
  CHECK_EQ(weft_rlock_acquire(pair[0], WEFT_FOREVER), 0);
  weft_yield(); /* the other takes its first */
  weft_rlock_acquire(pair[1], WEFT_FOREVER);
  return NULL;
}

static void *crossed(void *arg) {
  (void)arg;
  static weft_rlock *lr[2] = {&left, &right}, *rl[2] = {&right, &left};
  CHECK_EQ(
      weft_task_spawn(NULL, take_then, lr, &(weft_task_opts){.name = "alice"}),
      0);
  CHECK_EQ(
      weft_task_spawn(NULL, take_then, rl, &(weft_task_opts){.name = "bob"}),
      0);
  return NULL;
}

static void crossed_child(void *arg) {
  (void)arg;
  weft_rlock_init(&left, "left");
  weft_rlock_init(&right, "right");
  exit(weft_run(crossed, NULL, NULL) == -EDEADLK ? 0 : 1);
}

static atomic_int right_held;

static void *hold_right_a_while(void *arg) {
  (void)arg;
  CHECK_EQ(weft_rlock_acquire(&right, 0), 0);
  atomic_store(&right_held, 1);
  usleep(20000);
  CHECK_EQ(weft_rlock_release(&right), 0);
  return NULL;
}

static void *wait_for_threads_rlock(void *arg) {
  (void)arg;
  CHECK_EQ(weft_rlock_acquire(&right, WEFT_SEC(10)), 0);
  CHECK_EQ(weft_rlock_release(&right), 0);
  return NULL;
}

TEST(tasks_crossing_rlocks_are_reported_as_a_deadlock) {
  char out[4096];
  int status = harness_run_child(crossed_child, NULL, NULL, out, sizeof out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    harness_fail(__FILE__, __LINE__, "status %d:\n%s", status, out);
  CHECK_STR_HAS(out, "weft: deadlock");
  CHECK_STR_HAS(out, "blocked in rlock 'right' held by task 'bob'");
  CHECK_STR_HAS(out, "blocked in rlock 'left' held by task 'alice'");
  /* Owned by a thread instead: the task just waits. */
  weft_rlock_init(&right, "right");
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, hold_right_a_while, NULL), 0);
  while (!atomic_load(&right_held))
    usleep(1000);
  run(wait_for_threads_rlock, NULL);
  pthread_join(th, NULL);
}

/* --- bad timeouts -----------------------------------------------------------
 * A negative timeout other than WEFT_FOREVER is -EINVAL, and the call does
 * nothing: each primitive is set up in a state where any other outcome
 * would show (a free lock that would be taken, a unit or a value that would
 * be taken, a barrier of one party that would complete its round), and
 * looked at again after the call. WEFT_FOREVER still waits (or here, where
 * nothing has to wait, succeeds at once). From a task and from a thread. */

static const int64_t bad_timeout[] = {-2, -3, WEFT_MS(-1), INT64_MIN + 1,
                                      INT64_MIN};
enum { BAD_TIMEOUTS = sizeof bad_timeout / sizeof bad_timeout[0] };

static int pred_calls, action_runs;

static bool counted_true(void *arg) {
  (void)arg;
  pred_calls++;
  return true;
}

static void count_round(void *arg) {
  (void)arg;
  action_runs++;
}

static void *bad_timeouts(void *arg) {
  (void)arg;
  for (int i = 0; i < BAD_TIMEOUTS; i++) {
    int64_t t = bad_timeout[i];
    /* A free lock stays free; a held one stays held, once. */
    weft_lock l = WEFT_LOCK_INIT;
    CHECK_EQ(weft_lock_acquire(&l, t), -EINVAL);
    CHECK(!weft_lock_locked(&l));
    CHECK_EQ(weft_lock_destroy(&l), 0);
    CHECK_EQ(weft_lock_acquire(NULL, t), -EINVAL);
    CHECK_EQ(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    CHECK_EQ(weft_lock_acquire(&l, t), -EINVAL);
    CHECK(weft_lock_locked(&l));
    CHECK_EQ(weft_lock_release(&l), 0);
    CHECK_EQ(weft_lock_release(&l), -EPERM);

    /* An RLock: not taken when free, not counted again when owned. */
    weft_rlock r = WEFT_RLOCK_INIT;
    CHECK_EQ(weft_rlock_acquire(&r, t), -EINVAL);
    CHECK(!weft_rlock_owned(&r));
    CHECK_EQ(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    CHECK_EQ(weft_rlock_acquire(&r, t), -EINVAL);
    CHECK_EQ(weft_rlock_release(&r), 0);
    CHECK(!weft_rlock_owned(&r)); /* it was owned once, not twice */
    CHECK_EQ(weft_rlock_destroy(&r), 0);

    /* A condition: its lock is not taken, nor released by a wait; the
     * predicate is not called. */
    weft_cond c = WEFT_COND_INIT;
    CHECK_EQ(weft_cond_acquire(&c, t), -EINVAL);
    CHECK_EQ(weft_cond_release(&c), -EPERM);
    CHECK_EQ(weft_cond_acquire(&c, WEFT_FOREVER), 0);
    CHECK_EQ(weft_cond_wait(&c, t), -EINVAL);
    pred_calls = 0;
    CHECK_EQ(weft_cond_wait_for(&c, counted_true, NULL, t), -EINVAL);
    CHECK_EQ(pred_calls, 0);
    CHECK_EQ(weft_cond_wait_for(&c, counted_true, NULL, WEFT_FOREVER), 0);
    CHECK_EQ(pred_calls, 1);
    CHECK_EQ(weft_cond_release(&c), 0); /* held still, once */
    CHECK_EQ(weft_cond_release(&c), -EPERM);

    /* A semaphore keeps its units, free or none. */
    weft_sem s = WEFT_SEM_INIT(2), empty = WEFT_SEM_INIT(0);
    CHECK_EQ(weft_sem_acquire(&s, t), -EINVAL);
    CHECK_EQ(weft_sem_value(&s), 2);
    CHECK_EQ(weft_sem_acquire(&empty, t), -EINVAL);
    CHECK_EQ(weft_sem_value(&empty), 0);
    CHECK_EQ(weft_sem_destroy(&empty), 0); /* nobody queued */
    CHECK_EQ(weft_sem_acquire(&s, WEFT_FOREVER), 0);
    CHECK_EQ(weft_sem_value(&s), 1);

    /* An event, set or not. */
    weft_event e = WEFT_EVENT_INIT;
    CHECK_EQ(weft_event_wait(&e, t), -EINVAL);
    CHECK_EQ(weft_event_destroy(&e), 0);
    CHECK_EQ(weft_event_set(&e), 0);
    CHECK_EQ(weft_event_wait(&e, t), -EINVAL);
    CHECK(weft_event_is_set(&e));
    CHECK_EQ(weft_event_wait(&e, WEFT_FOREVER), 0);

    /* A barrier of one party would release its round, and one of two
     * would count an arrival: neither happens. */
    weft_barrier b1, b2;
    action_runs = 0;
    CHECK_EQ(weft_barrier_init(&b1, 1, count_round, NULL), 0);
    CHECK_EQ(weft_barrier_init(&b2, 2, NULL, NULL), 0);
    CHECK_EQ(weft_barrier_wait(&b1, t), -EINVAL);
    CHECK_EQ(action_runs, 0);
    CHECK_EQ(weft_barrier_wait(&b2, t), -EINVAL);
    CHECK_EQ(weft_barrier_waiting(&b2), 0);
    CHECK(!weft_barrier_broken(&b2));
    CHECK_EQ(weft_barrier_wait(&b1, WEFT_FOREVER), 0);
    CHECK_EQ(action_runs, 1);

    /* A wait group, at zero or not. */
    weft_waitgroup wg = WEFT_WAITGROUP_INIT;
    CHECK_EQ(weft_waitgroup_wait(&wg, t), -EINVAL);
    CHECK_EQ(weft_waitgroup_add(&wg, 1), 0);
    CHECK_EQ(weft_waitgroup_wait(&wg, t), -EINVAL);
    CHECK_EQ(weft_waitgroup_done(&wg), 0);
    CHECK_EQ(weft_waitgroup_wait(&wg, WEFT_FOREVER), 0);

    /* A channel keeps its value: a receive does not take it, a send into
     * the room left does not add one, a select runs no case. */
    void *slots[2];
    weft_chan ch = WEFT_CHAN_INIT(slots, 2);
    CHECK_EQ(weft_chan_send(&ch, IV(7), WEFT_FOREVER), 0);
    void *v = IV(-1);
    CHECK_EQ(weft_chan_recv(&ch, &v, t), -EINVAL);
    CHECK_EQ(VI(v), -1);
    CHECK_EQ(weft_chan_send(&ch, IV(8), t), -EINVAL);
    CHECK_EQ(weft_chan_len(&ch), 1);
    weft_chan_op ops[2] = {
        {.chan = &ch, .dir = WEFT_CHAN_RECV, .rc = 12345},
        {.chan = &ch, .dir = WEFT_CHAN_SEND, .value = IV(9), .rc = 12345}};
    CHECK_EQ(weft_select(ops, 2, t), -EINVAL);
    CHECK_EQ(ops[0].rc, 12345);
    CHECK_EQ(ops[1].rc, 12345);
    CHECK_EQ(weft_chan_len(&ch), 1);
    CHECK_EQ(weft_chan_recv(&ch, &v, WEFT_FOREVER), 0);
    CHECK_EQ(VI(v), 7);
    CHECK_EQ(weft_chan_len(&ch), 0);
    CHECK_EQ(weft_chan_recv(NULL, &v, t), -EINVAL);
  }
  return NULL;
}

TEST(a_bad_timeout_is_einval_and_changes_nothing) {
  run(bad_timeouts, NULL);
  bad_timeouts(NULL);
}
