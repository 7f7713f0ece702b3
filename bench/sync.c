/*
 * The sync layer beside pthreads (Go and Python are in peers/):
 *
 *   BenchmarkLockUncontended/<impl>            acquire + release, one thread
 *   BenchmarkLockContended/threads=<n>/<impl>  n threads adding to a counter
 *                                              under the lock; ns per add
 *   BenchmarkLockTasks/weft                    two tasks of one hub handing
 *                                              the lock back and forth; ns
 *                                              per acquire + release
 *   BenchmarkChanPingPong/weft-tasks           a value over an unbuffered
 *   BenchmarkChanPingPong/weft-threads         channel and back, between two
 *                                              tasks of one hub, or two
 *                                              threads; ns per round trip
 *   BenchmarkChanPingPong/pthread-cond         the same hand-over between
 *                                              two threads with a mutex and
 *                                              a condition variable each way
 *   BenchmarkChanPingPong/load=busy/<impl>     weft-threads and pthread-cond
 *                                              with a spinning process per
 *                                              CPU beside them (bench.h)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <weft.h>

#include "bench.h"

static weft_lock wl = WEFT_LOCK_INIT;
static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;

static bool weft_uncontended(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    weft_lock_acquire(&wl, WEFT_FOREVER);
    weft_lock_release(&wl);
  }
  return true;
}

static bool pthread_uncontended(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    pthread_mutex_lock(&pm);
    pthread_mutex_unlock(&pm);
  }
  return true;
}

/* --- contended: n threads, one counter ----------------------------------- */

static volatile uint64_t counter;

struct share {
  uint64_t adds;
  bool use_weft;
};

static void *adder(void *arg) {
  struct share *s = arg;
  for (uint64_t i = 0; i < s->adds; i++) {
    if (s->use_weft) {
      weft_lock_acquire(&wl, WEFT_FOREVER);
      counter++;
      weft_lock_release(&wl);
    } else {
      pthread_mutex_lock(&pm);
      counter++;
      pthread_mutex_unlock(&pm);
    }
  }
  return NULL;
}

static bool contended(uint64_t n, int threads, bool use_weft) {
  pthread_t t[8];
  struct share s = {n / (uint64_t)threads ? n / (uint64_t)threads : 1,
                    use_weft};
  counter = 0;
  for (int i = 0; i < threads; i++)
    if (pthread_create(&t[i], NULL, adder, &s) != 0)
      return false;
  for (int i = 0; i < threads; i++)
    pthread_join(t[i], NULL);
  return counter == s.adds * (uint64_t)threads;
}

static bool weft_2(uint64_t n) { return contended(n, 2, true); }
static bool pthread_2(uint64_t n) { return contended(n, 2, false); }
static bool weft_4(uint64_t n) { return contended(n, 4, true); }
static bool pthread_4(uint64_t n) { return contended(n, 4, false); }

/* --- two tasks handing the lock back and forth --------------------------- */

static void *hand_back_and_forth(void *arg) {
  uint64_t n = *(uint64_t *)arg;
  for (uint64_t i = 0; i < n; i++) {
    weft_lock_acquire(&wl, WEFT_FOREVER);
    weft_yield(); /* the other task comes to wait for it */
    weft_lock_release(&wl);
  }
  return NULL;
}

static void *two_tasks(void *arg) {
  weft_task *a, *b;
  weft_task_spawn(&a, hand_back_and_forth, arg, NULL);
  weft_task_spawn(&b, hand_back_and_forth, arg, NULL);
  weft_task_join(a, WEFT_FOREVER, NULL);
  weft_task_join(b, WEFT_FOREVER, NULL);
  return NULL;
}

/* n hand-overs: each task takes the lock n/2 times. */
static bool lock_tasks(uint64_t n) {
  uint64_t half = n / 2 ? n / 2 : 1;
  return weft_run(two_tasks, &half, NULL) == 0;
}

/* --- channel ping-pong ---------------------------------------------------- */

static weft_chan ping = WEFT_CHAN_INIT(NULL, 0), pong = WEFT_CHAN_INIT(NULL, 0);

static void *pong_side(void *arg) {
  uint64_t n = *(uint64_t *)arg;
  void *v;
  for (uint64_t i = 0; i < n; i++) {
    weft_chan_recv(&ping, &v, WEFT_FOREVER);
    weft_chan_send(&pong, v, WEFT_FOREVER);
  }
  return NULL;
}

static void ping_side(uint64_t n) {
  void *v;
  for (uint64_t i = 0; i < n; i++) {
    weft_chan_send(&ping, &v, WEFT_FOREVER);
    weft_chan_recv(&pong, &v, WEFT_FOREVER);
  }
}

static void *ping_tasks(void *arg) {
  weft_task *t;
  weft_task_spawn(&t, pong_side, arg, NULL);
  ping_side(*(uint64_t *)arg);
  weft_task_join(t, WEFT_FOREVER, NULL);
  return NULL;
}

static bool chan_tasks(uint64_t n) {
  return weft_run(ping_tasks, &n, NULL) == 0;
}

static bool chan_threads(uint64_t n) {
  pthread_t t;
  if (pthread_create(&t, NULL, pong_side, &n) != 0)
    return false;
  ping_side(n);
  pthread_join(t, NULL);
  return true;
}

/* --- the same with a mutex and condition variables ------------------------ */

/* One slot each way: a value and whether it is full. */
struct slot {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  void *value;
  bool full;
};

static struct slot to_pong = {.mu = PTHREAD_MUTEX_INITIALIZER,
                              .cv = PTHREAD_COND_INITIALIZER},
                   to_ping = {.mu = PTHREAD_MUTEX_INITIALIZER,
                              .cv = PTHREAD_COND_INITIALIZER};

static void slot_put(struct slot *s, void *v) {
  pthread_mutex_lock(&s->mu);
  while (s->full)
    pthread_cond_wait(&s->cv, &s->mu);
  s->value = v;
  s->full = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void *slot_take(struct slot *s) {
  pthread_mutex_lock(&s->mu);
  while (!s->full)
    pthread_cond_wait(&s->cv, &s->mu);
  void *v = s->value;
  s->full = false;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return v;
}

static void *cond_pong_side(void *arg) {
  uint64_t n = *(uint64_t *)arg;
  for (uint64_t i = 0; i < n; i++)
    slot_put(&to_ping, slot_take(&to_pong));
  return NULL;
}

static bool cond_threads(uint64_t n) {
  pthread_t t;
  if (pthread_create(&t, NULL, cond_pong_side, &n) != 0)
    return false;
  void *v = &n;
  for (uint64_t i = 0; i < n; i++) {
    slot_put(&to_pong, v);
    v = slot_take(&to_ping);
  }
  pthread_join(t, NULL);
  return v == &n;
}

int main(void) {
  struct bench_impl uncontended[] = {
      {"BenchmarkLockUncontended/weft", weft_uncontended, NULL},
      {"BenchmarkLockUncontended/pthread", pthread_uncontended, NULL},
  };
  bench_group(uncontended, 2);
  struct bench_impl two[] = {
      {"BenchmarkLockContended/threads=2/weft", weft_2, NULL},
      {"BenchmarkLockContended/threads=2/pthread", pthread_2, NULL},
  };
  bench_group(two, 2);
  struct bench_impl four[] = {
      {"BenchmarkLockContended/threads=4/weft", weft_4, NULL},
      {"BenchmarkLockContended/threads=4/pthread", pthread_4, NULL},
  };
  bench_group(four, 2);
  struct bench_impl tasks[] = {
      {"BenchmarkLockTasks/weft", lock_tasks, NULL},
  };
  bench_group(tasks, 1);
  struct bench_impl chans[] = {
      {"BenchmarkChanPingPong/weft-tasks", chan_tasks, NULL},
      {"BenchmarkChanPingPong/weft-threads", chan_threads, NULL},
      {"BenchmarkChanPingPong/pthread-cond", cond_threads, NULL},
  };
  bench_group(chans, 3);
  struct bench_impl busy[] = {
      {"BenchmarkChanPingPong/load=busy/weft-threads", chan_threads, NULL},
      {"BenchmarkChanPingPong/load=busy/pthread-cond", cond_threads, NULL},
  };
  bench_group_busy(busy, 2);
  return 0;
}
