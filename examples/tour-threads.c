/*
 * The tour, threads and locks: join(timeout) and daemon threads as the
 * notes describe them, Lock against RLock, deadlocks caught (by the hub,
 * between tasks, and by the watchdog, between threads), and a visited
 * set shared by threads and tasks.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "tour.h"

static void nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* --- join(timeout) and daemon threads -------------------------------------
 * The notes:
 *     t1 = threading.Thread(target=thread)   # sleeps 2 s, then prints
 *     t1.setDaemon(True); t1.start(); t1.join(timeout=1)
 * join(timeout) returns after the timeout with the thread still running;
 * at exit, the process waits for non-daemon threads and not for daemons. */
static void *slow_worker(void *arg) {
  nap_ms((int)(intptr_t)arg);
  printf("    %s: done\n", weft_thread_name(weft_thread_current()));
  fflush(stdout);
  return NULL;
}

static void exit_demo(int daemon) {
  fflush(stdout);
  if (fork() == 0) {
    weft_thread_start(NULL, slow_worker, (void *)(intptr_t)150,
                      &(weft_thread_opts){.name = daemon == WEFT_THREAD_DAEMON
                                                      ? "daemon"
                                                      : "non-daemon",
                                          .daemon = daemon});
    printf("    main: returning now\n");
    fflush(stdout);
    exit(0); /* as returning from main does */
  }
  wait(NULL);
}

/* Python lets any number of threads join one thread; so does weft, and
 * tasks of any hub too. */
static weft_thread *joined;

static void *answer_later(void *arg) {
  nap_ms(100);
  return arg;
}

static void *join_and_say(void *arg) {
  void *r = NULL;
  int rc = weft_thread_join(joined, WEFT_SEC(5), &r);
  printf("    %s joined: %s, result %d\n", (const char *)arg, weft_strerror(rc),
         (int)(intptr_t)r);
  fflush(stdout);
  return NULL;
}

static void *hub_main(void *arg) {
  (void)arg;
  weft_task *t[2];
  weft_task_spawn(&t[0], join_and_say, "task 1 of a hub", NULL);
  weft_task_spawn(&t[1], join_and_say, "task 2 of a hub", NULL);
  for (int i = 0; i < 2; i++)
    weft_task_join(t[i], WEFT_FOREVER, NULL);
  return NULL;
}

static void *run_hub(void *arg) {
  return (void *)(intptr_t)weft_run(hub_main, arg, NULL);
}

static void many_joiners(void) {
  printf("  four joiners of one thread at once, two of them tasks:\n");
  weft_thread_start(&joined, answer_later, (void *)(intptr_t)42, NULL);
  weft_thread *j[3];
  weft_thread_start(&j[0], join_and_say, "thread A", NULL);
  weft_thread_start(&j[1], join_and_say, "thread B", NULL);
  weft_thread_start(&j[2], run_hub, NULL, NULL);
  for (int i = 0; i < 3; i++) {
    weft_thread_join(j[i], WEFT_FOREVER, NULL);
    weft_thread_detach(j[i]);
  }
  weft_thread_detach(joined); /* joins let go of nothing: this does */
}

void tour_threads(void) {
  tour_section("threads: join(timeout), and daemon threads at exit");
  weft_thread *t;
  weft_thread_start(&t, slow_worker, (void *)(intptr_t)200,
                    &(weft_thread_opts){.name = "worker"});
  int rc = weft_thread_join(t, WEFT_MS(100), NULL);
  printf("  join(timeout=100 ms) returned %s; the worker is alive: %s\n",
         rc == -ETIMEDOUT ? "-ETIMEDOUT" : weft_strerror(rc),
         weft_thread_alive(t) ? "yes" : "no");
  fflush(stdout);
  rc = weft_thread_join(t, WEFT_FOREVER, NULL);
  printf("  join(): %d\n", rc);
  weft_thread_detach(t);
  many_joiners();
  printf("  a process whose main returns while a non-daemon thread runs:\n");
  exit_demo(WEFT_THREAD_NOT_DAEMON);
  printf("  the same with a daemon thread (it never says done):\n");
  exit_demo(WEFT_THREAD_DAEMON);
}

/* --- Lock and RLock, a deadlock caught, a visited set ----------------------
 */

static weft_rlock tree_lock = WEFT_RLOCK_INIT;

/* Walks a tree of depth n, taking the lock at every level. */
static int walk(int n) {
  weft_rlock_acquire(&tree_lock, WEFT_FOREVER);
  int sum = n == 0 ? 1 : 1 + walk(n - 1);
  weft_rlock_release(&tree_lock);
  return sum;
}

static weft_task *alice, *bob;

static void *join_other(void *arg) {
  weft_task_join(*(weft_task **)arg, WEFT_FOREVER, NULL);
  return NULL;
}

static void *two_friends(void *arg) {
  (void)arg;
  weft_task_spawn(&alice, join_other, &bob, &(weft_task_opts){.name = "alice"});
  weft_task_spawn(&bob, join_other, &alice, &(weft_task_opts){.name = "bob"});
  return NULL;
}

/* Two threads each take one lock and then wait for the other's: the
 * classic deadlock, which the watchdog reports. A Lock may be freed by any
 * thread, so the tour ends it by freeing one from outside. */
static weft_lock forks[2];
static int holding;

static void *philosopher(void *arg) {
  int left = (int)(intptr_t)arg;
  weft_lock_acquire(&forks[left], WEFT_FOREVER);
  __atomic_fetch_add(&holding, 1, __ATOMIC_RELAXED);
  while (__atomic_load_n(&holding, __ATOMIC_RELAXED) < 2)
    nap_ms(1);
  weft_lock_acquire(&forks[1 - left], WEFT_FOREVER);
  weft_lock_release(&forks[1 - left]);
  weft_lock_release(&forks[left]); /* -EPERM if freed from outside */
  return NULL;
}

static void watchdog_demo(void) {
  tour_section("a deadlock between threads, reported by the watchdog");
  fflush(stdout);
  weft_lock_init(&forks[0], "left fork");
  weft_lock_init(&forks[1], "right fork");
  weft_watchdog_start(WEFT_MS(20), 1); /* scan every 20 ms, to stdout */
  weft_thread *t[2];
  weft_thread_start(&t[0], philosopher, (void *)0,
                    &(weft_thread_opts){.name = "plato"});
  weft_thread_start(&t[1], philosopher, (void *)1,
                    &(weft_thread_opts){.name = "kant"});
  nap_ms(200);
  weft_lock_release(&forks[0]);
  for (int i = 0; i < 2; i++) {
    weft_thread_join(t[i], WEFT_FOREVER, NULL);
    weft_thread_detach(t[i]);
  }
  weft_watchdog_stop();
  printf("  the tour freed the left fork from outside, and both finished\n");
}

/* The notes: "threads visit shared data; how not to visit an item twice?
 * keep a set of visited items under a lock". Four threads and a hub's
 * tasks offer the same 10,000 items; each is processed once. */
enum { ITEMS = 10000 };
static weft_lock visited_lock = WEFT_LOCK_INIT;
static unsigned char visited[ITEMS];
static int processed[ITEMS];

static bool first_visit(int item) {
  weft_lock_acquire(&visited_lock, WEFT_FOREVER);
  bool first = !visited[item];
  visited[item] = 1;
  weft_lock_release(&visited_lock);
  return first;
}

static void offer_all(int start) {
  for (int i = 0; i < ITEMS; i++) {
    int item = (start + i * 7) % ITEMS;
    if (first_visit(item))
      __atomic_fetch_add(&processed[item], 1, __ATOMIC_RELAXED);
  }
}

static void *offering_thread(void *arg) {
  offer_all((int)(intptr_t)arg);
  return NULL;
}

static void *offering_task(void *arg) {
  offer_all((int)(intptr_t)arg);
  return NULL;
}

static void *hub_of_offerers(void *arg) {
  (void)arg;
  for (int i = 0; i < 4; i++)
    weft_task_spawn(NULL, offering_task, (void *)(intptr_t)(i * 1000), NULL);
  return NULL;
}

static void *hub_thread(void *arg) {
  weft_run(hub_of_offerers, arg, NULL);
  return NULL;
}

void tour_locks(void) {
  tour_section("locks: Lock against RLock");
  weft_lock plain = WEFT_LOCK_INIT;
  weft_lock_acquire(&plain, WEFT_FOREVER);
  int rc = weft_lock_acquire(&plain, WEFT_MS(50));
  printf("  a Lock taken again by its holder: %s after 50 ms (it would wait "
         "for itself)\n",
         rc == -ETIMEDOUT ? "-ETIMEDOUT" : weft_strerror(rc));
  weft_lock_release(&plain);
  printf("  an RLock taken at each of 5 levels of a recursive walk: visited "
         "%d nodes\n",
         walk(4));

  tour_section("a deadlock caught: two tasks join each other");
  fflush(stdout);
  rc = weft_run(two_friends, NULL, NULL);
  printf("  weft_run returned %d (%s) instead of hanging\n", rc,
         weft_strerror(rc));
  watchdog_demo();

  tour_section("a visited set shared by 4 threads and 4 tasks");
  weft_thread *t[5];
  for (int i = 0; i < 4; i++)
    weft_thread_start(&t[i], offering_thread, (void *)(intptr_t)(i * 2500),
                      NULL);
  weft_thread_start(&t[4], hub_thread, NULL, NULL);
  for (int i = 0; i < 5; i++) {
    weft_thread_join(t[i], WEFT_FOREVER, NULL);
    weft_thread_detach(t[i]);
  }
  int once = 0;
  for (int i = 0; i < ITEMS; i++)
    once += processed[i] == 1;
  printf("  %d items offered 8 times each; processed exactly once: %d\n", ITEMS,
         once);
}
