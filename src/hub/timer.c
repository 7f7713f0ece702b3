/*
 * The timer heap. See timer.h.
 *
 * Invariant: for every index i > 0, items[(i - 1) / 4]->deadline <=
 * items[i]->deadline, and items[i]->slot == i.
 */
#include "timer.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define ARITY 4

void weft__timer_heap_init(weft__timer_heap *h) {
  h->items = NULL;
  h->len = h->cap = 0;
}

void weft__timer_heap_fini(weft__timer_heap *h) {
  for (size_t i = 0; i < h->len; i++)
    h->items[i]->slot = WEFT__TIMER_IDLE;
  free(h->items);
  weft__timer_heap_init(h);
}

static void place(weft__timer_heap *h, size_t i, weft__timer *t) {
  h->items[i] = t;
  t->slot = i;
}

static void sift_up(weft__timer_heap *h, size_t i) {
  weft__timer *t = h->items[i];
  while (i > 0) {
    size_t parent = (i - 1) / ARITY;
    if (h->items[parent]->deadline <= t->deadline)
      break;
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, t);
}

static void sift_down(weft__timer_heap *h, size_t i) {
  weft__timer *t = h->items[i];
  for (;;) {
    size_t first = i * ARITY + 1;
    if (first >= h->len)
      break;
    size_t last = first + ARITY < h->len ? first + ARITY : h->len;
    size_t min = first;
    for (size_t c = first + 1; c < last; c++)
      if (h->items[c]->deadline < h->items[min]->deadline)
        min = c;
    if (t->deadline <= h->items[min]->deadline)
      break;
    place(h, i, h->items[min]);
    i = min;
  }
  place(h, i, t);
}

int weft__timer_arm(weft__timer_heap *h, weft__timer *t, int64_t deadline) {
  if (h->len == h->cap) {
    size_t cap = h->cap ? 2 * h->cap : 64;
    weft__timer **items = realloc(h->items, cap * sizeof *items);
    if (!items)
      return -ENOMEM;
    h->items = items;
    h->cap = cap;
  }
  t->deadline = deadline;
  place(h, h->len++, t);
  sift_up(h, t->slot);
  return 0;
}

void weft__timer_disarm(weft__timer_heap *h, weft__timer *t) {
  size_t i = t->slot;
  if (i == WEFT__TIMER_IDLE)
    return;
  t->slot = WEFT__TIMER_IDLE;
  weft__timer *last = h->items[--h->len];
  if (i == h->len)
    return;
  /* The last timer fills the hole and moves whichever way it must. */
  place(h, i, last);
  if (i > 0 && h->items[(i - 1) / ARITY]->deadline > last->deadline)
    sift_up(h, i);
  else
    sift_down(h, i);
}

weft__timer *weft__timer_pop_due(weft__timer_heap *h, int64_t now) {
  weft__timer *t = weft__timer_first(h);
  if (!t || t->deadline > now)
    return NULL;
  weft__timer_disarm(h, t);
  return t;
}

int64_t weft__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t weft__now_coarse(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int weft__ms_until(int64_t deadline) {
  if (deadline == INT64_MAX)
    return -1;
  int64_t left = deadline - weft__now();
  if (left <= 0)
    return 0;
  if (left > (int64_t)INT32_MAX * 1000000)
    return INT32_MAX;
  return (int)((left + 999999) / 1000000);
}

int64_t weft__deadline_after_slow(int64_t timeout) {
  int64_t now = weft__now();
  return timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
}
