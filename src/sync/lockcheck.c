/*
 * Lock-order checking. See lockcheck.h.
 *
 * A graph of locks: an edge A -> B says B was taken while A was held, with
 * both call sites. Each task or thread (an owner, as weft__sync_self says)
 * has a list of the locks it took; an entry counts only while the lock's
 * node still names that owner as its holder (a Lock may be released by
 * someone else, so lists are pruned lazily). Taking B while holding A adds
 * A -> B; if B already reaches A, the new edge closes a cycle, which is
 * reported with the path. Everything is under one mutex: this is a
 * debugging mode.
 */
#include "lockcheck.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../hub/report.h"
#include "debug.h"
#include "sync-private.h"

enum { HELD_MAX = 32 };

struct node;

struct edge {
  struct node *to;
  const void *site_from, *site_to; /* where each lock was taken */
};

struct node {
  const void *lock;
  const char *name;
  const void *holder;    /* its owner now, or NULL */
  const void *held_site; /* where the holder took it */
  struct edge *edges;
  int nedges, cap;
  unsigned mark;    /* the search that last visited it */
  struct node *via; /* the node it was reached from, in that search */
  struct edge *via_edge;
};

struct owner {
  const void *who;
  struct node *held[HELD_MAX];
  int n;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Open-addressing tables keyed by pointer. */
struct table {
  void **slot;
  size_t cap, len;
};

static struct table nodes, owners;
static unsigned search;

/* The entry of table t whose key (its first field) is key, made by make()
 * if missing; NULL when out of memory. */
static void *find(struct table *t, const void *key,
                  void *(*make)(const void *)) {
  if (t->len * 2 >= t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 256;
    void **slot = calloc(cap, sizeof *slot);
    if (!slot)
      return NULL;
    for (size_t i = 0; i < t->cap; i++) {
      if (!t->slot[i])
        continue;
      size_t j = weft__hash_ptr(*(const void **)t->slot[i], cap);
      while (slot[j])
        j = (j + 1) & (cap - 1);
      slot[j] = t->slot[i];
    }
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
  }
  size_t i = weft__hash_ptr(key, t->cap);
  for (; t->slot[i]; i = (i + 1) & (t->cap - 1))
    if (*(const void **)t->slot[i] == key)
      return t->slot[i];
  if (!make)
    return NULL;
  void *e = make(key);
  if (e) {
    t->slot[i] = e;
    t->len++;
  }
  return e;
}

static void *make_node(const void *lock) {
  struct node *n = calloc(1, sizeof *n);
  if (n)
    n->lock = lock;
  return n;
}

static void *make_owner(const void *who) {
  struct owner *o = calloc(1, sizeof *o);
  if (o)
    o->who = who;
  return o;
}

static struct edge *edge_to(struct node *from, struct node *to) {
  for (int i = 0; i < from->nedges; i++)
    if (from->edges[i].to == to)
      return &from->edges[i];
  return NULL;
}

/* Whether from reaches target, leaving the path in the via fields. The
 * search's stack grows as it must (each node is pushed once); should
 * memory run out, the search says no. */
static bool reaches(struct node *from, struct node *target) {
  static struct node **stack;
  static size_t cap;
  unsigned mark = ++search;
  size_t top = 0;
  from->mark = mark;
  from->via = NULL;
  if (!stack) {
    stack = malloc(256 * sizeof *stack);
    if (!stack)
      return false;
    cap = 256;
  }
  stack[top++] = from;
  while (top > 0) {
    struct node *n = stack[--top];
    if (n == target)
      return true;
    for (int i = 0; i < n->nedges; i++) {
      struct node *m = n->edges[i].to;
      if (m->mark == mark)
        continue;
      if (top == cap) {
        struct node **grown = realloc(stack, cap * 2 * sizeof *stack);
        if (!grown)
          return false;
        stack = grown;
        cap *= 2;
      }
      m->mark = mark;
      m->via = n;
      m->via_edge = &n->edges[i];
      stack[top++] = m;
    }
  }
  return false;
}

static void lock_name(const struct node *n, char *buf, size_t cap) {
  if (n->name)
    snprintf(buf, cap, "'%s'", n->name);
  else
    snprintf(buf, cap, "lock %p", n->lock);
}

static void say_edge(struct weft__report_text *text, const char *lead,
                     const struct node *a, const struct node *b,
                     const void *site_a, const void *site_b) {
  char na[64], nb[64], sa[128], sb[128], line[512];
  lock_name(a, na, sizeof na);
  lock_name(b, nb, sizeof nb);
  weft__site_name(site_a, sa, sizeof sa);
  weft__site_name(site_b, sb, sizeof sb);
  snprintf(line, sizeof line, "  %s %s (taken at %s), then %s at %s\n", lead,
           na, sa, nb, sb);
  weft__report_add(text, line);
}

/* Taking n while holding h closes a cycle n -> ... -> h -> n. Built under
 * mu, delivered after it (the program's receiver may take locks). */
static void report(struct weft__report_text *text, struct node *h,
                   struct node *n, const void *site) {
  static const char head[] =
      "weft: lock-order inversion (WEFT_LOCKCHECK): these locks are taken in "
      "opposite orders, so tasks or threads that do both can deadlock\n";
  weft__report_add(text, head);
  say_edge(text, "here: holding", h, n, h->held_site, site);
  /* The path from n to h, walked back from h. */
  for (struct node *m = h; m->via; m = m->via)
    say_edge(text, "before: holding", m->via, m, m->via_edge->site_from,
             m->via_edge->site_to);
}

void weft__lockcheck_acquired(const void *lock, const char *name,
                              const void *site, bool could_wait) {
  const void *me = weft__sync_self();
  struct weft__report_text text = {0};
  pthread_mutex_lock(&mu);
  struct node *n = find(&nodes, lock, make_node);
  struct owner *o = find(&owners, me, make_owner);
  if (!n || !o) {
    pthread_mutex_unlock(&mu);
    return; /* out of memory: this acquire goes unchecked */
  }
  if (name)
    n->name = name;
  /* Drop entries for locks this owner no longer holds. */
  int kept = 0;
  for (int i = 0; i < o->n; i++)
    if (o->held[i]->holder == me && o->held[i] != n)
      o->held[kept++] = o->held[i];
  o->n = kept;
  for (int i = 0; could_wait && i < o->n; i++) {
    struct node *h = o->held[i];
    if (edge_to(h, n))
      continue;
    if (reaches(n, h))
      report(&text, h, n, site);
    if (h->nedges == h->cap) {
      int cap = h->cap ? h->cap * 2 : 4;
      struct edge *e = realloc(h->edges, (size_t)cap * sizeof *e);
      if (!e)
        continue;
      h->edges = e;
      h->cap = cap;
    }
    h->edges[h->nedges++] = (struct edge){n, h->held_site, site};
  }
  n->holder = me;
  n->held_site = site;
  if (o->n < HELD_MAX) {
    o->held[o->n++] = n;
  } else {
    static bool warned;
    static const char full[] =
        "weft: WEFT_LOCKCHECK: a task or thread holds more than 32 locks; "
        "what it takes under the others goes unchecked\n";
    if (!warned)
      weft__report_add(&text, full);
    warned = true;
  }
  pthread_mutex_unlock(&mu);
  weft__report_send(&text);
}

void weft__lockcheck_released(const void *lock) {
  pthread_mutex_lock(&mu);
  struct node *n = find(&nodes, lock, NULL);
  if (n)
    n->holder = NULL;
  pthread_mutex_unlock(&mu);
}
