/*
 * A table from fd to what a poller backend records about it: the events of
 * interest and the caller's tag. Indexed by fd (fds are small and dense),
 * grown on demand. Shared by the poller backends, which each keep one.
 * Not thread-safe: one per poller.
 */
#ifndef WEFT_HUB_FDTABLE_H
#define WEFT_HUB_FDTABLE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct weft__fd_entry {
  unsigned events; /* armed for: 0 when not */
  void *data;
  int slot; /* backend's use (poll: index in its pollfd array; epoll: how
               the kernel has the fd registered) */
  /* The epoll backend's alone (see poller-epoll.c). */
  uint32_t gen;  /* the registration's generation, in its reports */
  uint32_t seq;  /* armings on trust, to match their rechecks */
  uint8_t hint;  /* WEFT__POLL_IN, _OUT: reported, maybe not used up */
  uint8_t flags; /* what the backend learnt of the file */
} weft__fd_entry;

typedef struct weft__fdtable {
  weft__fd_entry *e;
  int cap;
} weft__fdtable;

/* Grows *arr, an array of *cap entries of elem bytes indexed by fd, so that
 * it holds index fd; new entries are zeroed. Returns false when out of
 * memory or when fd is beyond any RLIMIT_NOFILE Linux allows (2^29). Shared
 * by the fd tables of the pollers and the hub. */
static inline bool weft__fd_array_grow(void **arr, int *cap, size_t elem,
                                       int fd) {
  if (fd < *cap)
    return true;
  if (fd > (1 << 29))
    return false;
  int grown = *cap ? *cap : 64;
  while (grown <= fd)
    grown *= 2;
  char *a = realloc(*arr, (size_t)grown * elem);
  if (!a)
    return false;
  memset(a + (size_t)*cap * elem, 0, (size_t)(grown - *cap) * elem);
  *arr = a;
  *cap = grown;
  return true;
}

/* The entry for fd, or NULL when the table never grew that far. */
static inline weft__fd_entry *weft__fdtable_get(weft__fdtable *t, int fd) {
  return fd < t->cap ? &t->e[fd] : NULL;
}

/* The entry for fd, growing the table to hold it: NULL when out of
 * memory. */
static inline weft__fd_entry *weft__fdtable_reserve(weft__fdtable *t, int fd) {
  void *e = t->e;
  if (!weft__fd_array_grow(&e, &t->cap, sizeof *t->e, fd))
    return NULL;
  t->e = e;
  return &t->e[fd];
}

static inline void weft__fdtable_fini(weft__fdtable *t) {
  free(t->e);
  t->e = NULL;
  t->cap = 0;
}

#endif
