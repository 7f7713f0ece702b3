/*
 * Stress: for WEFT_STRESS_SECONDS (default 1), two child processes and
 * this one (two threads, and a hub of tasks that a canceller task cancels
 * at random) race on a small shared queue, a shared lock and a shared
 * semaphore, every call with a random timeout (0, a few microseconds, a
 * few milliseconds, or none).
 *
 * Checks that no call that failed (timed out, cancelled) did anything and
 * that none that succeeded was lost or done twice: every message put is
 * got once (counts and sums of sequence numbers, per run), and is whole;
 * the count kept under the lock equals the acquires that succeeded; the
 * semaphore holds its start plus the units given minus those taken.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <weft.h>

/* ThreadSanitizer sees no synchronization made by another process: a
 * consumer's read in this process, then a consumer's move of the head in a
 * child, then a producer's write here over the same bytes looks to it like
 * a race. Under it, every participant is in this process, where it sees
 * all. */
#ifdef __SANITIZE_THREAD__
enum { PROCS = 0 };
#else
enum { PROCS = 2 };
#endif
enum {
  THREADS = 2,
  TASKS = 6,
  SEM_START = 4,
  MAXLEN = 200,
  QUEUE_CAPACITY = 2048
};
enum { SLOTS = PROCS + THREADS + 1 }; /* the hub's tasks share a slot */

/* What one participant did, in shared memory; each writes its own. */
struct tally {
  long sent, sent_sum, got, got_sum, locked, given, taken;
  long timeouts, cancels, bad;
};

struct board {
  weft_shared_lock lock;
  weft_shared_sem sem;
  long counter; /* under lock */
  struct tally t[SLOTS];
};

static struct board *board;
static weft_queue *queue;
static double seconds;
static int64_t stop_at;

static int64_t random_timeout(unsigned *seed) {
  switch (rand_r(seed) % 5) {
  case 0:
    return 0;
  case 1:
    return WEFT_US(1 + rand_r(seed) % 20);
  case 2:
    return WEFT_US(20 + rand_r(seed) % 500);
  case 3:
    return WEFT_MS(1 + rand_r(seed) % 5);
  default:
    return WEFT_MS(50); /* long enough to be a wait that ends by a wake */
  }
}

static void count_error(struct tally *t, int rc) {
  if (rc == -ETIMEDOUT)
    t->timeouts++;
  else if (rc == -ECANCELED)
    t->cancels++;
  else
    t->bad++;
}

/* One random operation. Returns -ECANCELED when the caller (a task) was
 * cancelled, so that it ends. */
static int one_op(struct tally *t, unsigned *seed, long *seq) {
  unsigned char buf[MAXLEN];
  int64_t timeout = random_timeout(seed);
  int rc = 0;
  switch (rand_r(seed) % 4) {
  case 0: { /* put: the sequence number, then bytes that follow from it */
    long n = ++*seq;
    size_t len = sizeof n + (size_t)(rand_r(seed) % (MAXLEN - sizeof n));
    memcpy(buf, &n, sizeof n);
    for (size_t i = sizeof n; i < len; i++)
      buf[i] = (unsigned char)(n + (long)i);
    rc = weft_queue_put(queue, buf, len, timeout);
    if (rc == 0) {
      t->sent++;
      t->sent_sum += n;
    }
    break;
  }
  case 1: {
    /* A count taken while others put and get is a snapshot, never an
     * error (white-box: a tail behind the head is a put under way). */
    ssize_t n = weft_queue_qsize(queue);
    if (n < 0 || n > QUEUE_CAPACITY / 8)
      t->bad++;
    ssize_t len = weft_queue_get(queue, buf, sizeof buf, timeout);
    rc = len < 0 ? (int)len : 0;
    if (len >= (ssize_t)sizeof(long)) {
      long n;
      memcpy(&n, buf, sizeof n);
      for (ssize_t i = sizeof n; i < len; i++)
        if (buf[i] != (unsigned char)(n + (long)i))
          t->bad++;
      t->got++;
      t->got_sum += n;
    } else if (len >= 0) {
      t->bad++;
    }
    break;
  }
  case 2:
    rc = weft_shared_lock_acquire(&board->lock, timeout);
    if (rc == 0) {
      long c = board->counter;
      board->counter = c + 1;
      t->locked++;
      weft_shared_lock_release(&board->lock);
    }
    break;
  default:
    if (rand_r(seed) % 2) {
      rc = weft_shared_sem_acquire(&board->sem, timeout);
      if (rc == 0)
        t->taken++;
    } else if (weft_shared_sem_release(&board->sem) == 0) {
      t->given++;
    }
  }
  if (rc < 0)
    count_error(t, rc);
  return rc == -ECANCELED ? rc : 0;
}

/* Sequence numbers are unique per participant and run: a participant's
 * start, times a large number. */
static long first_seq(int who, int run) {
  return ((long)who * 1000 + run) * 100000000L;
}

static void loop(int who) {
  unsigned seed = 977u * (unsigned)(who + 1);
  long seq = first_seq(who, 0);
  while (weft_now() < stop_at)
    one_op(&board->t[who], &seed, &seq);
}

static int child(void *arg) {
  loop((int)(intptr_t)arg);
  return 0;
}

static void *thread_main(void *arg) {
  loop((int)(intptr_t)arg);
  return NULL;
}

/* The hub's tasks: each works until cancelled; the canceller cancels one
 * at random now and then and starts another in its place. */
static int task_runs;

static void *worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  long seq = first_seq(PROCS + THREADS, (int)(uintptr_t)arg);
  while (one_op(&board->t[PROCS + THREADS], &seed, &seq) == 0 &&
         weft_now() < stop_at) {
  }
  return NULL;
}

static void *canceller(void *arg) {
  (void)arg;
  weft_task *w[TASKS];
  for (int i = 0; i < TASKS; i++)
    weft_task_spawn(&w[i], worker, (void *)(uintptr_t)++task_runs, NULL);
  unsigned seed = 31;
  while (weft_now() < stop_at) {
    weft_sleep(WEFT_US(50 + rand_r(&seed) % 500));
    int i = rand_r(&seed) % TASKS;
    weft_task_cancel(w[i]);
    weft_task_join(w[i], WEFT_FOREVER, NULL);
    weft_task_spawn(&w[i], worker, (void *)(uintptr_t)++task_runs, NULL);
  }
  for (int i = 0; i < TASKS; i++)
    weft_task_join(w[i], WEFT_FOREVER, NULL);
  return NULL;
}

static void *hub_main(void *arg) {
  (void)arg;
  weft_run(canceller, NULL, NULL);
  return NULL;
}

int main(void) {
  const char *env = getenv("WEFT_STRESS_SECONDS");
  seconds = env && *env ? strtod(env, NULL) : 1.0;
  weft_shm *region;
  if (weft_shm_create(&region, sizeof *board, "stress-shm") < 0 ||
      weft_queue_create(&queue,
                        &(weft_queue_opts){.capacity = QUEUE_CAPACITY}) < 0)
    return 2;
  board = weft_shm_addr(region);
  weft_shared_lock_init(&board->lock);
  weft_shared_sem_init(&board->sem, SEM_START);
  stop_at = weft_now() + (int64_t)(seconds * 1e9);

  weft_proc *p[PROCS + 1]; /* + 1: never of size 0 */
  for (int i = 0; i < PROCS; i++)
    if (weft_proc_start(&p[i], child, (void *)(intptr_t)i, NULL) < 0)
      return 2;
  pthread_t t[THREADS + 1];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, thread_main, (void *)(intptr_t)(PROCS + i));
  pthread_create(&t[THREADS], NULL, hub_main, NULL);
  for (int i = 0; i <= THREADS; i++)
    pthread_join(t[i], NULL);
  int failed = 0;
  for (int i = 0; i < PROCS; i++) {
    int code = -1;
    if (weft_proc_join(p[i], WEFT_SEC(60), &code) < 0 || code != 0)
      failed = 1;
    weft_proc_free(p[i]);
  }

  /* What is left in the queue counts as got. */
  struct tally rest = {0};
  unsigned char buf[MAXLEN];
  ssize_t len;
  while ((len = weft_queue_get(queue, buf, sizeof buf, 0)) >= 0) {
    long n;
    memcpy(&n, buf, sizeof n);
    rest.got++;
    rest.got_sum += n;
  }
  if (len != -ETIMEDOUT)
    failed = 1;

  struct tally sum = rest;
  for (int i = 0; i < SLOTS; i++) {
    struct tally *t = &board->t[i];
    sum.sent += t->sent, sum.sent_sum += t->sent_sum;
    sum.got += t->got, sum.got_sum += t->got_sum;
    sum.locked += t->locked, sum.given += t->given, sum.taken += t->taken;
    sum.timeouts += t->timeouts, sum.cancels += t->cancels;
    sum.bad += t->bad;
  }
  if (sum.sent != sum.got || sum.sent_sum != sum.got_sum) {
    fprintf(stderr, "stress-shm: %ld messages put, %ld got (sums %ld, %ld)\n",
            sum.sent, sum.got, sum.sent_sum, sum.got_sum);
    failed = 1;
  }
  if (board->counter != sum.locked) {
    fprintf(stderr,
            "stress-shm: the count under the lock is %ld, after %ld "
            "acquires\n",
            board->counter, sum.locked);
    failed = 1;
  }
  if (weft_shared_sem_value(&board->sem) != SEM_START + sum.given - sum.taken) {
    fprintf(stderr, "stress-shm: the semaphore holds %d, not %ld\n",
            weft_shared_sem_value(&board->sem),
            SEM_START + sum.given - sum.taken);
    failed = 1;
  }
  if (sum.bad) {
    fprintf(stderr,
            "stress-shm: %ld calls failed oddly or got a bad "
            "message\n",
            sum.bad);
    failed = 1;
  }
  printf("stress-shm: %.1f s, %d processes, %d threads, %d task runs: %ld "
         "messages, %ld acquires, %ld timeouts, %ld cancellations: %s\n",
         seconds, PROCS + 1, THREADS + 1, task_runs, sum.sent, sum.locked,
         sum.timeouts, sum.cancels, failed ? "FAILED" : "ok");
  weft_queue_free(queue);
  weft_shm_free(region);
  return failed;
}
