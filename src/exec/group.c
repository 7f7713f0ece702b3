/*
 * Task groups. See include/weft/exec.h for the contract.
 *
 * Members are tasks of the group's hub, or plain threads, each running
 * member's fn, listed in the group from its spawn until it is about to
 * finish: the group cancels the members in that list, which are all
 * alive. `running` counts them; the last to finish while a task or thread
 * waits sets `wake`, a weft_event the waiter parks on as on any primitive,
 * cancellable there and bounded by its deadline.
 *
 * Locking: a group made by a task, before its first thread member, is
 * touched by the tasks of its hub alone, one at a time, and needs no lock
 * (a weft_waitgroup's atomics and lock took a third of BenchmarkGroup's
 * time). Once threads may touch it (`shared`: a thread member was
 * spawned, or a plain thread made the group) every access takes `guard`,
 * which is never held across a wait. `shared` turns true only on the
 * hub's thread before the first thread member starts, which the thread's
 * start orders before anything that thread does. Lock order: the group's
 * guard, then a primitive's (the event's) or a thread's cancellation
 * record's.
 *
 * Tasks are cancelled only from their hub: a thread member that fails
 * first leaves `cancel_tasks` for the hub's side, which the waiter (woken
 * by `wake`) or the next spawn carries out.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <weft/exec.h>
#include <weft/hub.h>
#include <weft/sync.h>
#include <weft/thread.h>

#include "../core/guard.h"
#include "../hub/hub-private.h"
#include "../hub/thread-cancel.h"

#define GROUP_MAGIC 0x67727021u /* "grp!" */

struct member {
  weft_group *group;
  weft_group_fn fn;
  void *arg;
  weft_task *task;             /* a task member's, or NULL: a thread */
  weft__thread_cancel *thread; /* a thread member's, once it runs */
  bool cancelled;              /* by the group: its -ECANCELED is no failure */
  struct member *prev, *next;
};

struct weft_group {
  uint32_t magic;
  weft__hub *hub; /* the maker's, or NULL: made by a plain thread */
  bool shared;    /* threads touch it: take guard */
  uint32_t guard;
  size_t running;          /* members not finished */
  weft_event wake;         /* none running, or tasks to cancel, during a wait */
  struct member *members;  /* the running ones */
  bool cancelling;         /* a member failed, or the waiter was stopped */
  bool cancel_tasks;       /* a thread asked for the tasks to be cancelled */
  bool waiting;            /* a task or thread is in weft_group_wait */
  bool finished;           /* the wait returned: result is final */
  bool spawned;            /* a member was ever spawned */
  weft__deadline deadline; /* the members start under it */
  int result;
  int *errors; /* the failures, in order; n_errors counted, kept_errors
                  kept (fewer only when memory ran out) */
  size_t n_errors, kept_errors, cap_errors;
};

static bool valid(const weft_group *g) { return g && g->magic == GROUP_MAGIC; }

static void lock(weft_group *g) {
  if (g->shared)
    weft__guard_lock(&g->guard);
}

static void unlock(weft_group *g) {
  if (g->shared)
    weft__guard_unlock(&g->guard);
}

/* Whether the caller is a task of g's hub. */
static bool on_hub(const weft_group *g) {
  return g->hub && weft__task_running() && weft__hub_current == g->hub;
}

int weft_group_new(weft_group **out) {
  if (!out)
    return -EINVAL;
  weft_group *g = calloc(1, sizeof *g);
  if (!g)
    return -ENOMEM;
  weft_event_init(&g->wake);
  if (weft__task_running())
    g->hub = weft__hub_current;
  else
    g->shared = true;
  weft__deadline_get(&g->deadline);
  g->deadline.scope = NULL;
  g->magic = GROUP_MAGIC;
  *out = g;
  return 0;
}

int weft_group_deadline(weft_group *g, int64_t at, int how) {
  if (!valid(g) || at < WEFT_FOREVER ||
      (how != WEFT_SCOPE_TIMEOUT && how != WEFT_SCOPE_CANCEL))
    return -EINVAL;
  lock(g);
  int rc = 0;
  if (g->spawned || g->finished) {
    rc = -EBUSY;
  } else if (at != WEFT_FOREVER && at < g->deadline.at) {
    g->deadline.at = at;
    g->deadline.cancels = how == WEFT_SCOPE_CANCEL;
  }
  unlock(g);
  return rc;
}

/* Cancels the task members; on g's hub. */
static void cancel_tasks(weft_group *g) {
  g->cancel_tasks = false;
  for (struct member *m = g->members; m; m = m->next)
    if (m->task && !m->cancelled) {
      m->cancelled = true;
      weft_task_cancel(m->task);
    }
}

/* Cancels every running member of g but `except`; g locked. Tasks only
 * from their hub: from elsewhere, the hub's side is asked to. */
static void cancel_members(weft_group *g, const struct member *except) {
  g->cancelling = true;
  bool here = on_hub(g);
  for (struct member *m = g->members; m; m = m->next) {
    if (m == except || m->cancelled || (m->task && !here))
      continue;
    m->cancelled = true;
    if (m->task)
      weft_task_cancel(m->task);
    else if (m->thread) /* else it starts cancelled (thread_member) */
      weft__cancel_thread(m->thread);
  }
  if (!here && g->hub) {
    g->cancel_tasks = true;
    if (g->waiting)
      weft_event_set(&g->wake);
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

/* Each thread that runs a hub keeps up to SPARE_MAX member records for
 * reuse: a group's members come and go by the thousand, and malloc took a
 * tenth of BenchmarkGroup's time with them. The thread's key frees them
 * when it exits. Thread members' records are freed: their threads end.
 * (Not under AddressSanitizer, which should see each record freed.) */
enum { SPARE_MAX = WEFT__TOOLS_QUARANTINE ? 0 : 256 };
static WEFT__TLS struct member *spare_members;
static WEFT__TLS unsigned spare_count;
static WEFT__TLS bool spare_registered; /* spare_key set for this thread */
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static pthread_key_t spare_key;
static bool spare_key_made;

static void free_spares(void *unused) {
  (void)unused;
  while (spare_members) {
    struct member *m = spare_members;
    spare_members = m->next;
    free(m);
  }
  spare_count = 0;
  spare_registered = false;
}

static void make_spare_key(void) {
  spare_key_made = pthread_key_create(&spare_key, free_spares) == 0;
}

static struct member *new_member(weft_group *g, weft_group_fn fn, void *arg) {
  struct member *m = spare_members;
  if (m) {
    spare_members = m->next;
    spare_count--;
  } else if (!(m = malloc(sizeof *m))) {
    return NULL;
  }
  *m = (struct member){.group = g, .fn = fn, .arg = arg};
  return m;
}

static void free_member(struct member *m) {
  if (!m->task || spare_count + 1 > SPARE_MAX) { /* (SPARE_MAX may be 0) */
    free(m);
    return;
  }
  if (!spare_registered) { /* the key's destructor must run at exit */
    pthread_once(&spare_once, make_spare_key);
    if (!spare_key_made || pthread_setspecific(spare_key, &spare_key) != 0) {
      free(m);
      return;
    }
    spare_registered = true;
  }
  m->next = spare_members;
  spare_members = m;
  spare_count++;
}

/* A member's end: its failure counted, itself unlisted and freed. */
static void finish(struct member *m, int rc) {
  weft_group *g = m->group;
  lock(g);
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
  if (m->task) /* released as it finishes: nobody joins a member */
    weft_task_detach(m->task);
  free_member(m);
  /* Last, under the lock: the waiter may free g once it sees the count at
   * zero, which it looks at under the lock (or, unshared, only after this
   * task has finished: one hub, one task at a time). */
  if (--g->running == 0 && g->waiting)
    weft_event_set(&g->wake);
  unlock(g);
}

static void *task_member(void *arg) {
  struct member *m = arg;
  if (m->group->deadline.at != INT64_MAX)
    weft__deadline_inherit(&m->group->deadline);
  finish(m, m->fn(m->arg));
  return NULL;
}

static void *thread_member(void *arg) {
  struct member *m = arg;
  weft_group *g = m->group;
  int rc = weft__thread_cancel_enable();
  if (rc == 0) {
    weft__deadline_inherit(&g->deadline);
    lock(g);
    m->thread = &weft__thread_cancel_self;
    if (m->cancelled) /* cancelled before it ran */
      weft__cancel_thread(m->thread);
    unlock(g);
    rc = m->fn(m->arg);
  }
  finish(m, rc); /* nobody cancels it from here on */
  weft__thread_cancel_disable();
  return NULL;
}

/* Lists a new member, counted; g locked. It starts cancelled when the
 * others were. */
static void list_member(weft_group *g, struct member *m) {
  g->running++;
  g->spawned = true;
  m->next = g->members;
  if (g->members)
    g->members->prev = m;
  g->members = m;
  m->cancelled = g->cancelling;
}

int weft_group_spawn(weft_group *g, weft_group_fn fn, void *arg) {
  if (!valid(g) || !fn)
    return -EINVAL;
  if (!on_hub(g))
    return -EPERM;
  struct member *m = new_member(g, fn, arg);
  if (!m)
    return -ENOMEM;
  lock(g);
  int rc = g->finished ? -ESHUTDOWN
                       : weft__task_spawn_late(&m->task, task_member, m);
  if (rc == 0) {
    list_member(g, m);
    if (g->cancel_tasks)
      cancel_tasks(g);
    if (m->cancelled)
      weft_task_cancel(m->task);
  }
  unlock(g);
  if (rc < 0)
    free_member(m);
  return rc;
}

int weft_group_spawn_thread(weft_group *g, weft_group_fn fn, void *arg) {
  if (!valid(g) || !fn)
    return -EINVAL;
  if (!g->shared && !on_hub(g))
    return -EPERM;
  struct member *m = new_member(g, fn, arg);
  if (!m)
    return -ENOMEM;
  if (!g->shared)
    g->shared = true; /* on the hub, before any thread member: see above */
  lock(g);
  int rc = g->finished ? -ESHUTDOWN : 0;
  if (rc == 0) {
    /* Listed first: the thread may finish before the start returns. */
    list_member(g, m);
    rc = weft_thread_start(NULL, thread_member, m, NULL);
    if (rc < 0) {
      g->members = m->next;
      if (m->next)
        m->next->prev = NULL;
      g->running--;
    }
  }
  unlock(g);
  if (rc < 0)
    free_member(m);
  return rc;
}

/* Parks until the last running member finishes, carrying out on the way
 * any cancellation of the tasks a thread asked for; g locked, and locked
 * again on return. The event is cleared under the lock: a member may have
 * set it before this wait began (a spawn after the count had dropped to
 * zero), and a set event would not park. */
static int wait_for_none(weft_group *g) {
  int rc = 0;
  while (g->running > 0 && rc == 0) {
    if (g->cancel_tasks)
      cancel_tasks(g);
    weft_event_clear(&g->wake);
    unlock(g);
    rc = weft_event_wait(&g->wake, WEFT_FOREVER);
    lock(g);
  }
  return rc;
}

static bool may_wait(const weft_group *g) { return g->hub ? on_hub(g) : true; }

int weft_group_wait(weft_group *g) {
  if (!valid(g))
    return -EINVAL;
  if (!may_wait(g))
    return -EPERM;
  lock(g);
  if (g->finished) {
    unlock(g);
    return g->result;
  }
  if (g->waiting) {
    unlock(g);
    return -EBUSY;
  }
  g->waiting = true;
  /* The group's deadline is its members': the first whose wait it ends
   * fails, which cancels the others. The wait ends at its caller's own
   * deadline, not at the group's, so that which member failed, and how,
   * does not turn on which timer fires first. */
  int rc = wait_for_none(g);
  if (rc < 0) {
    /* The waiter was cancelled, or a deadline passed: the members are
     * cancelled, and waited for all the same, neither cancellation nor
     * deadline cutting that wait short. */
    cancel_members(g, NULL);
    if (g->cancel_tasks)
      cancel_tasks(g);
    weft__deadline saved;
    weft__deadline_get(&saved);
    weft__deadline_inherit(&(weft__deadline){INT64_MAX, false, NULL});
    weft__shield(); /* inside a generator too: it ends in this call */
    while (g->running > 0)
      if (wait_for_none(g) < 0)
        break;        /* through the shield: its hub gave up its run (a
                         deadlock), and releases every task */
    weft__unshield(); /* the cancellation stays in force */
    weft__deadline_inherit(&saved);
    if (g->n_errors == 0) /* a member's own failure comes first */
      g->result = rc;
  }
  g->waiting = false;
  g->finished = true;
  rc = g->result;
  unlock(g);
  return rc;
}

size_t weft_group_errors(const weft_group *g, int *errors, size_t cap) {
  if (!valid(g))
    return 0;
  weft_group *mg = (weft_group *)g; /* the lock, not the group, changes */
  lock(mg);
  for (size_t i = 0; errors && i < cap && i < g->kept_errors; i++)
    errors[i] = g->errors[i];
  size_t n = g->n_errors;
  unlock(mg);
  return n;
}

int weft_group_free(weft_group *g) {
  if (!valid(g))
    return -EINVAL;
  lock(g);
  bool busy = g->running || g->waiting;
  unlock(g);
  if (busy)
    return -EBUSY;
  g->magic = 0;
  free(g->errors);
  free(g);
  return 0;
}
