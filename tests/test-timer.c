/*
 * The hub's timer heap (internal): order, removal from anywhere, a million
 * armed, and deadline arithmetic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <weft.h>

#include "../src/hub/timer.h"
#include "harness.h"

/* The heap property and slot indices, checked over the whole heap. */
static void check_heap(const weft__timer_heap *h) {
  for (size_t i = 0; i < h->len; i++) {
    CHECK_EQ(h->items[i]->slot, i);
    if (i > 0)
      CHECK(h->items[(i - 1) / 4]->deadline <= h->items[i]->deadline);
  }
}

static uint64_t rng(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

TEST(timers_fire_in_deadline_order) {
  enum { N = 100000 };
  weft__timer *t = calloc(N, sizeof *t);
  CHECK(t != NULL);
  weft__timer_heap h;
  weft__timer_heap_init(&h);
  uint64_t seed = 42;
  for (int i = 0; i < N; i++) {
    weft__timer_init(&t[i]);
    CHECK_EQ(weft__timer_arm(&h, &t[i], (int64_t)(rng(&seed) % 1000000)), 0);
  }
  check_heap(&h);
  int64_t last = -1;
  int popped = 0;
  /* Pop in steps of "now", as a hub does. */
  for (int64_t now = 0; now <= 1000000; now += 997) {
    weft__timer *d;
    while ((d = weft__timer_pop_due(&h, now)) != NULL) {
      CHECK(d->deadline <= now);
      CHECK(d->deadline >= last);
      CHECK(!weft__timer_armed(d));
      last = d->deadline;
      popped++;
    }
    if (weft__timer_first(&h))
      CHECK(weft__timer_first(&h)->deadline > now);
  }
  while (weft__timer_pop_due(&h, INT64_MAX))
    popped++;
  CHECK_EQ(popped, N);
  CHECK(weft__timer_first(&h) == NULL);
  weft__timer_heap_fini(&h);
  free(t);
}

TEST(timers_are_removed_from_anywhere) {
  enum { N = 20000 };
  weft__timer *t = calloc(N, sizeof *t);
  weft__timer_heap h;
  weft__timer_heap_init(&h);
  uint64_t seed = 7;
  for (int i = 0; i < N; i++) {
    weft__timer_init(&t[i]);
    CHECK_EQ(weft__timer_arm(&h, &t[i], (int64_t)(rng(&seed) % 5000)), 0);
  }
  /* Disarm every third, in a scattered order; disarming twice is
   * harmless. */
  int removed = 0;
  for (int i = 0; i < N; i += 3) {
    int j = (int)((size_t)i * 7919 % N);
    if (weft__timer_armed(&t[j])) {
      weft__timer_disarm(&h, &t[j]);
      removed++;
    }
    weft__timer_disarm(&h, &t[j]);
    CHECK(!weft__timer_armed(&t[j]));
    if (i % 999 == 0)
      check_heap(&h);
  }
  check_heap(&h);
  CHECK_EQ(h.len, (size_t)(N - removed));
  int64_t last = -1;
  weft__timer *d;
  while ((d = weft__timer_pop_due(&h, INT64_MAX)) != NULL) {
    CHECK(d->deadline >= last);
    last = d->deadline;
  }
  /* A popped timer can be armed again. */
  CHECK_EQ(weft__timer_arm(&h, &t[0], 5), 0);
  CHECK(weft__timer_armed(&t[0]));
  CHECK(weft__timer_pop_due(&h, 4) == NULL);
  CHECK_PTR_EQ(weft__timer_pop_due(&h, 5), &t[0]);
  weft__timer_heap_fini(&h);
  free(t);
}

TEST_TIMEOUT(a_million_timers, 120) {
  enum { N = 1000000 };
  weft__timer *t = calloc(N, sizeof *t);
  weft__timer_heap h;
  weft__timer_heap_init(&h);
  uint64_t seed = 99;
  for (int i = 0; i < N; i++) {
    weft__timer_init(&t[i]);
    CHECK_EQ(weft__timer_arm(&h, &t[i], (int64_t)(rng(&seed) >> 20)), 0);
  }
  check_heap(&h);
  for (int i = 0; i < N; i += 2)
    weft__timer_disarm(&h, &t[i]);
  check_heap(&h);
  int64_t last = -1;
  size_t n = 0;
  weft__timer *d;
  while ((d = weft__timer_pop_due(&h, INT64_MAX)) != NULL) {
    CHECK(d->deadline >= last);
    last = d->deadline;
    n++;
  }
  CHECK_EQ(n, N / 2);
  weft__timer_heap_fini(&h);
  free(t);
}

TEST(fini_leaves_timers_idle) {
  weft__timer a, b;
  weft__timer_init(&a);
  weft__timer_init(&b);
  weft__timer_heap h;
  weft__timer_heap_init(&h);
  CHECK_EQ(weft__timer_arm(&h, &a, 10), 0);
  CHECK_EQ(weft__timer_arm(&h, &b, 5), 0);
  CHECK_PTR_EQ(weft__timer_first(&h), &b);
  weft__timer_heap_fini(&h);
  CHECK(!weft__timer_armed(&a));
  CHECK(!weft__timer_armed(&b));
}

TEST(deadlines_saturate) {
  int64_t now = weft__now();
  CHECK(now > 0);
  CHECK_EQ(weft__deadline_after(WEFT_FOREVER), INT64_MAX);
  CHECK_EQ(weft__deadline_after(-5), INT64_MAX);
  CHECK_EQ(weft__deadline_after(INT64_MAX), INT64_MAX);
  int64_t d = weft__deadline_after(WEFT_MS(10));
  CHECK(d >= now + WEFT_MS(10));
  CHECK(d < now + WEFT_SEC(10)); /* generous: a loaded machine */
  CHECK(weft__deadline_after(0) >= now);
}
