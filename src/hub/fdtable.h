/*
 * A table from fd to what a poller backend records about it: the events of
 * interest and the caller's tag. Indexed by fd (fds are small and dense),
 * grown on demand. Shared by the poller backends, which each keep one.
 * Not thread-safe: one per poller.
 */
#ifndef WEFT_HUB_FDTABLE_H
#define WEFT_HUB_FDTABLE_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct weft__fd_entry {
  unsigned events; /* 0: not watched */
  void *data;
  int slot; /* backend's use (poll: index in its pollfd array) */
} weft__fd_entry;

typedef struct weft__fdtable {
  weft__fd_entry *e;
  int cap;
} weft__fdtable;

/* The entry for fd, or NULL when the table never grew that far. */
static inline weft__fd_entry *weft__fdtable_get(weft__fdtable *t, int fd) {
  return fd < t->cap ? &t->e[fd] : NULL;
}

/* The entry for fd, growing the table to hold it: NULL when out of
 * memory. */
static inline weft__fd_entry *weft__fdtable_reserve(weft__fdtable *t, int fd) {
  if (fd >= t->cap) {
    if (fd > (1 << 29))
      return NULL; /* beyond any RLIMIT_NOFILE Linux allows */
    int cap = t->cap ? t->cap : 64;
    while (cap <= fd)
      cap *= 2;
    weft__fd_entry *e = realloc(t->e, (size_t)cap * sizeof *e);
    if (!e)
      return NULL;
    memset(e + t->cap, 0, (size_t)(cap - t->cap) * sizeof *e);
    t->e = e;
    t->cap = cap;
  }
  return &t->e[fd];
}

static inline void weft__fdtable_fini(weft__fdtable *t) {
  free(t->e);
  t->e = NULL;
  t->cap = 0;
}

#endif
