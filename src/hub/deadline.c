/*
 * Deadlines that span calls (weft_deadline_set) and the public clock.
 *
 * A deadline is kept by whoever blocks: a task in its record, a thread
 * outside any task in a thread-local. It is read where every wait of weft
 * turns its timeout into an absolute end (weft__deadline_after), so that
 * each blocking call ends at the earlier of the two without knowing about
 * deadlines. Until a program sets its first deadline, weft__deadlines_used
 * stays false and waits do not look (one relaxed load, predicted).
 */
#include <weft/hub.h>

#include "hub-private.h"
#include "timer.h"

atomic_bool weft__deadlines_used;

static WEFT__TLS int64_t thread_deadline = INT64_MAX;

/* Where the caller's deadline is kept. */
static int64_t *deadline_slot(void) {
  weft_task *t = weft__task_running();
  return t ? &t->deadline : &thread_deadline;
}

int64_t weft__deadline_clamp(int64_t deadline) {
  int64_t mine = *deadline_slot();
  return mine < deadline ? mine : deadline;
}

int weft_deadline_set(int64_t at, int64_t *previous) {
  if (at < WEFT_FOREVER)
    return -EINVAL;
  int64_t *slot = deadline_slot();
  if (previous)
    *previous = *slot == INT64_MAX ? WEFT_FOREVER : *slot;
  *slot = at == WEFT_FOREVER ? INT64_MAX : at;
  if (at != WEFT_FOREVER)
    atomic_store_explicit(&weft__deadlines_used, true, memory_order_relaxed);
  return 0;
}

int64_t weft_deadline(void) {
  int64_t mine = *deadline_slot();
  return mine == INT64_MAX ? WEFT_FOREVER : mine;
}

int64_t weft_now(void) { return weft__now(); }
