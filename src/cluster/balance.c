/*
 * Spreading connections over the workers of a shared socket.
 *
 * EPOLLEXCLUSIVE wakes one idle worker per connection, but a worker that
 * is awake takes every connection queued while it runs: at the start of a
 * load of keep-alive connections (wrk opens 100 at once), one worker took
 * 95 and the other 5 in two runs of three, and kept that share of the work
 * for the connections' whole life. So each worker publishes how many
 * connections it holds, in a table shared by the supervisor and all its
 * workers (a MAP_SHARED mapping made before any fork), and an acceptor
 * whose worker holds clearly more than the least loaded worker defers to
 * the others for a moment before it accepts.
 *
 * An entry is the owner's pid and its count in one 64-bit word, so that a
 * worker replaced in its slot (a restart, a reload) never overwrites its
 * successor's entry: it clears only an entry that is still its own. An
 * entry of LOAD_ABSENT (no worker accepting in that slot) is ignored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cluster-private.h"

#define LOAD_ABSENT 0

static uint64_t entry(pid_t pid, size_t conns) {
  return (uint64_t)(uint32_t)pid << 32 | (uint32_t)conns;
}

int weft__balance_create(weft_cluster *c) {
  if (c->o.accept_mode != WEFT_ACCEPT_SHARED || c->o.workers < 2)
    return 0;
  void *m = mmap(NULL, sizeof(_Atomic uint64_t) * (size_t)c->o.workers,
                 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return -errno;
  c->loads = m; /* zero-filled: every entry LOAD_ABSENT */
  return 0;
}

void weft__balance_free(weft_cluster *c) {
  if (c->loads)
    munmap((void *)c->loads, sizeof(_Atomic uint64_t) * (size_t)c->o.workers);
  c->loads = NULL;
}

void weft__balance_publish(const weft_worker *w) {
  _Atomic uint64_t *loads = w->cluster->loads;
  if (loads && !w->draining)
    atomic_store_explicit(&loads[w->index], entry(w->pid, w->conns),
                          memory_order_relaxed);
}

void weft__balance_leave(const weft_cluster *c, int index, pid_t pid) {
  if (!c->loads)
    return;
  _Atomic uint64_t *e = &c->loads[index];
  uint64_t v = atomic_load_explicit(e, memory_order_relaxed);
  while ((pid_t)(v >> 32) == pid &&
         !atomic_compare_exchange_weak(e, &v, LOAD_ABSENT)) {
  }
}

bool weft__balance_ahead(const weft_worker *w) {
  _Atomic uint64_t *loads = w->cluster->loads;
  if (!loads)
    return false;
  size_t least = SIZE_MAX;
  for (int i = 0; i < w->cluster->o.workers; i++) {
    uint64_t v = atomic_load_explicit(&loads[i], memory_order_relaxed);
    if (i == w->index || v == LOAD_ABSENT)
      continue;
    size_t n = (uint32_t)v;
    least = n < least ? n : least;
  }
  /* A little ahead is no reason to wait: one more than the least, or a
   * sixteenth more under heavy load. */
  return least != SIZE_MAX && w->conns > least + 1 + least / 16;
}
