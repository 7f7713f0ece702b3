/*
 * Task groups. See include/weft/exec.h for the contract.
 *
 * A group and its members live on one hub, whose tasks alone touch the
 * group's state: everything here runs on that hub's thread, one task at a
 * time, so no lock guards it. (weft_group_errors and weft_group_free may
 * be called from elsewhere only once the wait has returned, when nothing
 * changes any more.)
 *
 * Each member is a task running member_main, listed in the group from its
 * spawn until it is about to finish: the group cancels the tasks in that
 * list, which are all alive. `running` counts them; the last to finish
 * while a task waits sets `none_running`, a weft_event the waiter parks on
 * as on any primitive, cancellable there and bounded by its deadline.
 * (A weft_waitgroup would count with atomics and a lock that one hub does
 * not need: it took a third of BenchmarkGroup's time.)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <weft/exec.h>
#include <weft/hub.h>
#include <weft/sync.h>

#include "../hub/hub-private.h"

#define GROUP_MAGIC 0x67727021u /* "grp!" */

struct member {
  weft_group *group;
  weft_group_fn fn;
  void *arg;
  weft_task *task;
  bool cancelled; /* by the group: its -ECANCELED is no failure */
  struct member *prev, *next;
};

struct weft_group {
  uint32_t magic;
  weft__hub *hub;
  size_t running;          /* members not finished */
  weft_event none_running; /* set when running drops to 0 during a wait */
  struct member *members;  /* the running ones */
  bool cancelling;         /* a member failed, or the waiter was stopped */
  bool waiting;            /* a task is in weft_group_wait */
  bool finished;           /* the wait returned: result is final */
  int result;
  int *errors; /* the failures, in order; n_errors counted, kept_errors
                  kept (fewer only when memory ran out) */
  size_t n_errors, kept_errors, cap_errors;
};

static bool valid(const weft_group *g) { return g && g->magic == GROUP_MAGIC; }

/* Whether the caller is a task of g's hub. */
static bool on_hub(const weft_group *g) {
  return weft__task_running() && weft__hub_current == g->hub;
}

int weft_group_new(weft_group **out) {
  if (!out)
    return -EINVAL;
  if (!weft__task_running())
    return -EPERM;
  weft_group *g = calloc(1, sizeof *g);
  if (!g)
    return -ENOMEM;
  weft_event_init(&g->none_running);
  g->hub = weft__hub_current;
  g->magic = GROUP_MAGIC;
  *out = g;
  return 0;
}

/* Cancels every running member of g but `except`. */
static void cancel_members(weft_group *g, const struct member *except) {
  g->cancelling = true;
  for (struct member *m = g->members; m; m = m->next)
    if (m != except && !m->cancelled) {
      m->cancelled = true;
      weft_task_cancel(m->task);
    }
}

static void record_failure(weft_group *g, int error) {
  if (g->kept_errors == g->cap_errors) {
    size_t cap = g->cap_errors ? 2 * g->cap_errors : 4;
    int *more = realloc(g->errors, cap * sizeof *more);
    if (more) {
      g->errors = more;
      g->cap_errors = cap;
    }
  }
  if (g->kept_errors < g->cap_errors)
    g->errors[g->kept_errors++] = error;
  if (g->n_errors++ == 0)
    g->result = error;
}

static void *member_main(void *arg) {
  struct member *m = arg;
  weft_group *g = m->group;
  int rc = m->fn(m->arg);
  if (rc < 0 && !(rc == -ECANCELED && m->cancelled)) {
    bool first = g->n_errors == 0;
    record_failure(g, rc);
    if (first)
      cancel_members(g, m);
  }
  if (m->prev)
    m->prev->next = m->next;
  else
    g->members = m->next;
  if (m->next)
    m->next->prev = m->prev;
  /* Released as it finishes: nobody joins a member. */
  weft_task_detach(m->task);
  free(m);
  /* Last: the waiter may free g once it sees the count at zero, which it
   * can only after this task has finished (one hub, one task at a time). */
  if (--g->running == 0 && g->waiting)
    weft_event_set(&g->none_running);
  return NULL;
}

int weft_group_spawn(weft_group *g, weft_group_fn fn, void *arg) {
  if (!valid(g) || !fn)
    return -EINVAL;
  if (!on_hub(g))
    return -EPERM;
  if (g->finished)
    return -ESHUTDOWN;
  struct member *m = calloc(1, sizeof *m);
  if (!m)
    return -ENOMEM;
  m->group = g;
  m->fn = fn;
  m->arg = arg;
  int rc = weft_task_spawn(&m->task, member_main, m, NULL);
  if (rc < 0) {
    free(m);
    return rc;
  }
  g->running++;
  m->next = g->members;
  if (g->members)
    g->members->prev = m;
  g->members = m;
  if (g->cancelling) { /* it starts cancelled, as the others were */
    m->cancelled = true;
    weft_task_cancel(m->task);
  }
  return 0;
}

/* Parks until the last running member finishes. The event is cleared
 * first: a task of the hub may have spawned into the group after the
 * count had dropped to zero and set it, and a set event would not park. */
static int wait_for_none(weft_group *g) {
  weft_event_clear(&g->none_running);
  return weft_event_wait(&g->none_running, WEFT_FOREVER);
}

int weft_group_wait(weft_group *g) {
  if (!valid(g))
    return -EINVAL;
  if (!on_hub(g))
    return -EPERM;
  if (g->finished)
    return g->result;
  if (g->waiting)
    return -EBUSY;
  g->waiting = true;
  int rc = 0;
  while (g->running > 0 && rc == 0)
    rc = wait_for_none(g);
  if (rc < 0) {
    /* The waiter was cancelled, or its deadline passed: the members are
     * cancelled, and waited for all the same, neither cancellation nor
     * deadline cutting that wait short. */
    cancel_members(g, NULL);
    int64_t deadline;
    weft_deadline_set(WEFT_FOREVER, &deadline);
    weft_task_shield();
    while (g->running > 0)
      wait_for_none(g);
    weft_task_unshield(); /* the cancellation stays in force */
    weft_deadline_set(deadline, NULL);
    g->result = rc;
  }
  g->waiting = false;
  g->finished = true;
  return g->result;
}

size_t weft_group_errors(const weft_group *g, int *errors, size_t cap) {
  if (!valid(g))
    return 0;
  for (size_t i = 0; errors && i < cap && i < g->kept_errors; i++)
    errors[i] = g->errors[i];
  return g->n_errors;
}

int weft_group_free(weft_group *g) {
  if (!valid(g))
    return -EINVAL;
  if (g->running || g->waiting)
    return -EBUSY;
  g->magic = 0;
  free(g->errors);
  free(g);
  return 0;
}
