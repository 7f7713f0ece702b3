/*
 * The deadlock watchdog. See watchdog.h, and weft_watchdog_start in
 * weft/sync.h.
 *
 * One mutex (mu) guards the registry, the scan, and the state of the
 * thread (running, stopping); start and stop are serialized by another
 * (ctl), taken first. The thread sleeps on a condition variable of the
 * monotonic clock, so that a stop is prompt.
 */
#define _GNU_SOURCE
#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/coro.h"
#include "../hub/report.h"
#include "../hub/timer.h"
#include "debug.h"
#include "sync-private.h"

__thread const char *weft__thread_label;

static pthread_mutex_t ctl = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static struct weft__watch *registry; /* newest first */
static size_t registered;
static bool running, stopping;
static pthread_t thread;
static int64_t every;
static int out_fd;

/* In a child of fork() only the forking thread exists: no watchdog runs,
 * and the waits of the parent's other threads are not waits here. The
 * forking thread waits for no lock as it forks, but the tasks of its hub
 * may: their entries leave the registry too, and their leave finds them
 * out of it. */
static void prepare(void) { pthread_mutex_lock(&mu); }
static void parent(void) { pthread_mutex_unlock(&mu); }
static void child(void) {
  pthread_mutex_init(&mu, NULL);
  pthread_mutex_init(&ctl, NULL);
  for (struct weft__watch *e = registry; e; e = e->next)
    e->linked = false;
  registry = NULL;
  registered = 0;
  running = stopping = false;
}

static void init(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&cv, &a);
  pthread_condattr_destroy(&a);
  pthread_atfork(prepare, parent, child);
}

static void label_self(char *buf, size_t cap) {
  weft_task *t = weft__task_running();
  if (t) {
    const char *name = weft_task_name(t);
    if (name && *name)
      snprintf(buf, cap, "task '%.40s'", name);
    else
      snprintf(buf, cap, "task #%llu", (unsigned long long)weft_task_id(t));
  } else if (weft__thread_label) {
    snprintf(buf, cap, "thread '%.40s'", weft__thread_label);
  } else if (gettid() == getpid()) {
    snprintf(buf, cap, "thread 'MainThread'");
  } else {
    snprintf(buf, cap, "thread %d", (int)gettid());
  }
}

void weft__watchdog_enter(struct weft__watch *e, const weft_lock *l,
                          const char *what, const void *site) {
  pthread_once(&once, init);
  *e = (struct weft__watch){
      .lock = l, .what = what, .site = site, .owner = weft__sync_self()};
  label_self(e->label, sizeof e->label);
  pthread_mutex_lock(&mu);
  e->next = registry;
  if (registry)
    registry->prev = e;
  registry = e;
  registered++;
  e->linked = true;
  pthread_mutex_unlock(&mu);
}

void weft__watchdog_leave(struct weft__watch *e) {
  pthread_mutex_lock(&mu);
  if (e->linked) {
    if (e->prev)
      e->prev->next = e->next;
    else
      registry = e->next;
    if (e->next)
      e->next->prev = e->prev;
    registered--;
    e->linked = false;
  }
  pthread_mutex_unlock(&mu);
}

/* A growing text, for a report made under mu and written after. */
struct text {
  char *s;
  size_t len, cap;
};

static void append(struct text *t, const char *line) {
  size_t n = strlen(line);
  if (t->len + n + 1 > t->cap) {
    size_t cap = (t->len + n + 1) * 2;
    char *s = realloc(t->s, cap);
    if (!s)
      return; /* out of memory: the report loses this line */
    t->s = s;
    t->cap = cap;
  }
  memcpy(t->s + t->len, line, n + 1);
  t->len += n;
}

static void describe_lock(const struct weft__watch *e, char *buf, size_t cap) {
  if (e->lock->name)
    snprintf(buf, cap, "%s '%.40s'", e->what, e->lock->name);
  else
    snprintf(buf, cap, "%s %p", e->what, (const void *)e->lock);
}

/* Reports the cycle through entry first, of n entries, following next. */
static void report(struct weft__watch **entries, const int *next, int first,
                   int n, struct text *t) {
  char line[384], lock[64], site[128];
  snprintf(line, sizeof line,
           "weft: deadlock (watchdog): %d tasks or threads wait for each "
           "other in a cycle; none of them can go on\n",
           n);
  append(t, line);
  int i = first;
  do {
    const struct weft__watch *e = entries[i];
    describe_lock(e, lock, sizeof lock);
    weft__site_name(e->site, site, sizeof site);
    snprintf(line, sizeof line, "  %s waits for %s (at %s), held by %s\n",
             e->label, lock, site, entries[next[i]]->label);
    append(t, line);
    i = next[i];
  } while (i != first);
}

/* One scan, under mu: finds the cycles of the wait-for graph, counts the
 * scans that found each entry in one, and reports each cycle seen twice
 * in a row and not reported yet. */
static void scan(struct text *t) {
  int n = (int)registered;
  if (n < 2)
    return;
  size_t cap = 1;
  while (cap < (size_t)n * 2)
    cap <<= 1;
  struct weft__watch **entries = malloc((size_t)n * sizeof *entries);
  int *next = malloc((size_t)n * sizeof *next);
  unsigned char *state = calloc((size_t)n, 1);
  int *table = calloc(cap, sizeof *table); /* entry index + 1; 0: empty */
  if (!entries || !next || !state || !table)
    goto out; /* out of memory: no scan this time */
  int i = 0;
  for (struct weft__watch *e = registry; e; e = e->next, i++) {
    entries[i] = e;
    size_t s = weft__hash_ptr(e->owner, cap);
    while (table[s])
      s = (s + 1) & (cap - 1);
    table[s] = i + 1;
  }
  /* W -> the waiter that holds what W waits for, if it waits too. */
  for (i = 0; i < n; i++) {
    const void *holder =
        __atomic_load_n(&entries[i]->lock->holder_, __ATOMIC_RELAXED);
    next[i] = -1;
    for (size_t s = weft__hash_ptr(holder, cap); holder && table[s];
         s = (s + 1) & (cap - 1))
      if (entries[table[s] - 1]->owner == holder) {
        next[i] = table[s] - 1;
        break;
      }
  }
  /* Each walk follows next until an end, a node of an earlier walk
   * (state 2), or one of this walk (state 1): a new cycle. */
  enum { NEW, ON_WALK, DONE, IN_CYCLE };
  for (i = 0; i < n; i++) {
    int j = i;
    while (j >= 0 && state[j] == NEW) {
      state[j] = ON_WALK;
      j = next[j];
    }
    if (j >= 0 && state[j] == ON_WALK) {
      int k = j;
      do {
        state[k] = IN_CYCLE;
        k = next[k];
      } while (k != j);
    }
    for (int k = i; k >= 0 && state[k] == ON_WALK; k = next[k])
      state[k] = DONE;
  }
  for (i = 0; i < n; i++)
    entries[i]->hits = state[i] == IN_CYCLE ? entries[i]->hits + 1 : 0;
  for (i = 0; i < n; i++) {
    if (state[i] != IN_CYCLE)
      continue;
    /* Each cycle once: from its first member in the registry's order. */
    int len = 0;
    bool seen_twice = true, reported = true, first = true;
    int k = i;
    do {
      len++;
      seen_twice = seen_twice && entries[k]->hits >= 2;
      reported = reported && entries[k]->reported;
      first = first && k >= i;
      k = next[k];
    } while (k != i);
    if (!first || !seen_twice || reported)
      continue;
    report(entries, next, i, len, t);
    k = i;
    do {
      entries[k]->reported = true;
      k = next[k];
    } while (k != i);
  }
out:
  free(entries);
  free(next);
  free(state);
  free(table);
}

static void *watch(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  while (!stopping) {
    int64_t due = weft__now() + every;
    struct timespec ts = {.tv_sec = (time_t)(due / 1000000000),
                          .tv_nsec = (long)(due % 1000000000)};
    while (!stopping && pthread_cond_timedwait(&cv, &mu, &ts) != ETIMEDOUT) {
    }
    if (stopping)
      break;
    struct text t = {0};
    scan(&t);
    int fd = out_fd;
    pthread_mutex_unlock(&mu);
    if (t.len && fd == WEFT__WATCHDOG_REPORT)
      weft__report(t.s, t.len); /* NUL-terminated by its appends */
    else if (t.len)
      weft__write_all(fd, t.s, t.len);
    free(t.s);
    pthread_mutex_lock(&mu);
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

int weft__watchdog_start(int64_t interval, int fd) {
  if (interval <= 0 || (fd < 0 && fd != WEFT__WATCHDOG_REPORT))
    return -EINVAL;
  pthread_once(&once, init);
  pthread_mutex_lock(&ctl);
  int rc = running ? -EALREADY : 0;
  if (!running) {
    pthread_mutex_lock(&mu);
    every = interval;
    out_fd = fd;
    stopping = false;
    pthread_mutex_unlock(&mu);
    /* A thread of its own, not a weft thread: it is nobody's to join, and
     * it ends with the process. Signals are left to the program's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&thread, NULL, watch, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
      rc = -err;
    else
      running = true;
  }
  pthread_mutex_unlock(&ctl);
  return rc;
}

int weft_watchdog_start(int64_t interval, int fd) {
  if (interval <= 0 || fd < 0)
    return -EINVAL;
  weft__sync_debug_enable(WEFT__DEBUG_HOLDERS);
  return weft__watchdog_start(interval, fd);
}

int weft_watchdog_stop(void) {
  pthread_mutex_lock(&ctl);
  if (!running) {
    pthread_mutex_unlock(&ctl);
    return -ESRCH;
  }
  pthread_mutex_lock(&mu);
  stopping = true;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
  pthread_join(thread, NULL);
  running = false;
  pthread_mutex_unlock(&ctl);
  return 0;
}
