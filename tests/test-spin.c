/*
 * The spin policy of a thread's wait (src/hub/spin.h): what each way a
 * wait can end teaches the next wait of the same thread. Each case runs in
 * a thread of its own, so that it starts from a thread's first wait.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <weft.h>

#include "../src/hub/spin.h"
#include "harness.h"

#define US(n) ((int64_t)(n)*1000)

/* Runs body in a new thread (fresh per-thread state); skips the case on a
 * process that may run on one CPU only, where a wait never spins. */
static void in_new_thread(void *(*body)(void *)) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < 2)
    harness_skip("one CPU: a wait never spins");
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, body, NULL), 0);
  void *failed;
  CHECK_EQ(pthread_join(t, &failed), 0);
  if (failed)
    harness_fail(__FILE__, __LINE__, "%s", (const char *)failed);
}

/* CHECK for the case's own thread: fails the case when its thread ends. */
#define LINE_(n) #n
#define LINE(n)  LINE_(n)
#define THREAD_CHECK(cond)                                                     \
  do {                                                                         \
    if (!(cond))                                                               \
      return (void *)("line " LINE(__LINE__) ": CHECK(" #cond ") failed");     \
  } while (0)

/* Three spins that ran out, each followed by a wake from the CPU it spun
 * on: the caller must see the thread sleep at once from then on. */
static const char *spin_in_the_way_three_times(void) {
  for (int i = 0; i < 3; i++) {
    int64_t budget = weft__spin_budget();
    if (budget <= 0)
      return "a spin of the first waits";
    weft__spin_slept(budget + US(2), true, true);
  }
  return NULL;
}

/* How many waits in a row sleep at once before one spins (at most max). */
static int waits_before_a_spin(int max) {
  for (int i = 0; i < max; i++)
    if (weft__spin_budget() > 0)
      return i;
  return max;
}

static void *first_wait_spins_body(void *arg) {
  (void)arg;
  THREAD_CHECK(weft__spin_budget() > 0);
  return NULL;
}

TEST(a_thread_s_first_wait_spins) { in_new_thread(first_wait_spins_body); }

static void *in_the_way_body(void *arg) {
  (void)arg;
  /* Two in a row are not enough. */
  for (int i = 0; i < 2; i++)
    weft__spin_slept(weft__spin_budget() + US(2), true, true);
  THREAD_CHECK(weft__spin_budget() > 0);
  /* Paid meanwhile: the row starts again. */
  weft__spin_paid(US(10));
  for (int i = 0; i < 2; i++)
    weft__spin_slept(weft__spin_budget() + US(2), true, true);
  THREAD_CHECK(weft__spin_budget() > 0);
  weft__spin_slept(US(12), true, true); /* the third in a row */
  /* 15 waits sleep at once, the 16th looks again. */
  THREAD_CHECK(waits_before_a_spin(100) == 15);
  return NULL;
}

TEST(
    spins_in_the_waker_s_way_three_times_in_a_row_make_a_thread_sleep_at_once) {
  in_new_thread(in_the_way_body);
}

static void *probe_gap_body(void *arg) {
  (void)arg;
  THREAD_CHECK(spin_in_the_way_three_times() == NULL);
  int gap = 16;
  for (int round = 0; round < 8; round++) {
    THREAD_CHECK(waits_before_a_spin(5000) == gap - 1);
    /* The look again found the spin in the way still. */
    weft__spin_slept(US(12), true, true);
    gap = gap < 1024 ? gap * 2 : 1024;
  }
  THREAD_CHECK(waits_before_a_spin(5000) == 1023);
  return NULL;
}

TEST(a_thread_that_stays_in_the_way_looks_again_at_doubling_gaps_up_to_1024) {
  in_new_thread(probe_gap_body);
}

static void *paid_probe_body(void *arg) {
  (void)arg;
  THREAD_CHECK(spin_in_the_way_three_times() == NULL);
  THREAD_CHECK(waits_before_a_spin(100) == 15);
  weft__spin_paid(US(10)); /* the look again paid */
  for (int i = 0; i < 20; i++)
    THREAD_CHECK(weft__spin_budget() > 0);
  return NULL;
}

TEST(a_look_again_that_pays_makes_the_thread_spin_again) {
  in_new_thread(paid_probe_body);
}

static void *elsewhere_body(void *arg) {
  (void)arg;
  THREAD_CHECK(spin_in_the_way_three_times() == NULL);
  THREAD_CHECK(weft__spin_budget() == 0);
  /* Slept at once; the waker ran where it slept: nothing learned. */
  weft__spin_slept(US(5), false, true);
  THREAD_CHECK(weft__spin_budget() == 0);
  /* Slept at once; woken from another CPU 40 us later: a spin of 50 us
   * would have paid. */
  weft__spin_slept(US(40), false, false);
  THREAD_CHECK(weft__spin_budget() == US(50));
  return NULL;
}

TEST(a_wake_soon_from_another_cpu_makes_a_thread_spin_that_long_and_more) {
  in_new_thread(elsewhere_body);
}

static void *bounds_body(void *arg) {
  (void)arg;
  int64_t least = weft__spin_budget();
  weft__spin_slept(US(150), true, false);
  THREAD_CHECK(weft__spin_budget() == US(187) + 500);
  weft__spin_slept(US(190), true, false); /* 237.5 us: at most 200 */
  THREAD_CHECK(weft__spin_budget() == US(200));
  weft__spin_paid(US(200)); /* paid: drifts back by an eighth */
  THREAD_CHECK(weft__spin_budget() == US(175));
  weft__spin_slept(US(5000), true, false); /* long: back to the least */
  THREAD_CHECK(weft__spin_budget() == least);
  weft__spin_paid(least);
  THREAD_CHECK(weft__spin_budget() == least);
  return NULL;
}

TEST(a_spin_lasts_from_10_to_200_us_as_the_waits_say) {
  in_new_thread(bounds_body);
}
