/*
 * The supervisor: starts the workers, replaces those that die (backing off
 * those that die young), turns signals and requests into stops and
 * reloads, and kills what a stop's grace left running. See weft/cluster.h
 * and cluster-private.h.
 *
 * Its tasks, all on the hub of the thread that runs the cluster:
 *  - one per slot (a worker index of one generation): starts the worker,
 *    joins it, and starts it again unless the cluster stops or a reload
 *    retired the slot; it frees its slot when it ends;
 *  - one per running worker that reads its messages (opts.on_message);
 *  - control: applies the requests of weft_cluster_stop and _reload;
 *  - signals: turns SIGTERM, SIGINT, SIGQUIT and SIGHUP into requests;
 *  - killer: SIGKILLs a worker still running at its kill_at.
 * supervise() ends when no slot is left, and ends the last three with it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <weft/io.h>

#include "../core/sigmask.h"
#include "cluster-private.h"

/* A worker that ran this long had a good start: if it dies, it is
 * restarted at once. One that dies younger is restarted after a back-off
 * that doubles, from BACKOFF_FIRST up to BACKOFF_MAX. */
#define HEALTHY_AFTER WEFT_SEC(1)
#define BACKOFF_FIRST WEFT_MS(100)
#define BACKOFF_MAX   WEFT_SEC(5)

/* How long a worker told to stop at once (SIGQUIT) has before SIGKILL; a
 * draining one has opts.drain_timeout plus DRAIN_GRACE. */
#define STOP_NOW_GRACE WEFT_SEC(2)

/* How long the messages of a worker that exited may take to be read. */
#define READER_GRACE WEFT_SEC(1)
#define DRAIN_GRACE  WEFT_SEC(5)

static void describe_exit(char *buf, size_t cap, int code) {
  if (code >= 0)
    snprintf(buf, cap, "exited with code %d", code);
  else
    snprintf(buf, cap, "was killed by signal %d (%s)", -code, strsignal(-code));
}

static void *read_messages(void *arg) {
  struct slot *s = arg;
  weft_cluster *c = s->cluster;
  for (;;) {
    void *msg;
    size_t len;
    int rc = weft_msgpipe_recv(s->pipe, &msg, &len, WEFT_FOREVER);
    if (rc == -ENOMEM && weft_sleep(WEFT_MS(10)) == 0)
      continue;
    if (rc < 0)
      return NULL;       /* the worker is gone, or the slot cancelled us */
    if (c->o.on_message) /* else read and dropped: a sender never blocks */
      c->o.on_message(c, s->index, msg, len, c->o.message_arg);
    free(msg);
  }
}

/* Tells s's worker to stop, or ends s's wait for its next start. */
static void stop_slot(weft_cluster *c, struct slot *s, bool now) {
  if (s->proc) {
    weft_proc_signal(s->proc, now ? SIGQUIT : SIGTERM);
    int64_t at =
        weft_now() + (now ? STOP_NOW_GRACE : c->o.drain_timeout + DRAIN_GRACE);
    if (at < s->kill_at)
      s->kill_at = at;
  } else {
    weft_task_cancel(s->task);
  }
}

/* A reload's slot that has its worker running retires the slots of the
 * same index of older generations: only now, so that a reload whose new
 * workers cannot start (no memory, a process limit sized for one
 * generation) leaves the old ones serving. */
static void retire_older(weft_cluster *c, const struct slot *s) {
  for (struct slot *o = c->slots; o; o = o->next)
    if (o->index == s->index && o->generation < s->generation && !o->retired) {
      o->retired = true;
      stop_slot(c, o, false);
      weft_event_set(&c->killer_wake);
    }
}

static int start_worker(struct slot *s) {
  weft_cluster *c = s->cluster;
  int rc = weft_msgpipe_pair(&s->pipe, &s->far_end);
  if (rc < 0)
    return rc;
  char name[32];
  snprintf(name, sizeof name, "worker-%d", s->index);
  rc = weft_proc_start(&s->proc, weft__cluster_worker_main, s,
                       &(weft_proc_opts){.name = name, .daemon = true});
  weft_msgpipe_free(s->far_end);
  s->far_end = NULL;
  if (rc < 0) {
    weft_msgpipe_free(s->pipe);
    s->pipe = NULL;
    s->proc = NULL;
    return rc;
  }
  s->started_at = weft_now();
  s->kill_at = INT64_MAX;
  if (weft_task_spawn(&s->reader, read_messages, s,
                      &(weft_task_opts){.name = "cluster-messages"}) < 0) {
    s->reader = NULL;
    weft__cluster_log(c, "worker %d: no task to read its messages", s->index);
  }
  weft__cluster_log(c, "worker %d (pid %d, generation %u) started", s->index,
                    (int)weft_proc_pid(s->proc), s->generation);
  retire_older(c, s);
  return 0;
}

/* After the worker's exit: its reader ends, the broadcasts sending on its
 * pipe end, its pipe and handle go. */
static void end_worker(struct slot *s) {
  while (s->sends > 0) {
    weft_event_clear(&s->sends_done);
    if (s->sends > 0)
      weft_event_wait(&s->sends_done, WEFT_FOREVER); /* never cancelled */
  }
  if (s->reader) {
    /* What the worker sent before it exited is still to be read: the
     * reader ends at the pipe's end, unless a process the worker left
     * behind holds the pipe open. */
    if (weft_task_join(s->reader, READER_GRACE, NULL) == -ETIMEDOUT) {
      weft_task_cancel(s->reader);
      weft_task_join(s->reader, WEFT_FOREVER, NULL);
    }
    weft_task_detach(s->reader);
    s->reader = NULL;
  }
  weft_msgpipe_free(s->pipe);
  s->pipe = NULL;
  weft_proc_free(s->proc);
  s->proc = NULL;
}

static int64_t next_backoff(int64_t b) {
  b = b ? b * 2 : BACKOFF_FIRST;
  return b < BACKOFF_MAX ? b : BACKOFF_MAX;
}

static void unlink_slot(weft_cluster *c, struct slot *s) {
  for (struct slot **p = &c->slots; *p; p = &(*p)->next)
    if (*p == s) {
      *p = s->next;
      break;
    }
}

/* Tells weft_cluster_run how the first start of s's worker went. */
static void report_first_start(weft_cluster *c, struct slot *s, int rc) {
  if (s->first_reported || !c->starting)
    return;
  s->first_reported = true;
  c->first_starts++;
  if (rc < 0 && c->start_error == 0)
    c->start_error = rc;
  weft_event_set(&c->changed);
}

static void *slot_main(void *arg) {
  struct slot *s = arg;
  weft_cluster *c = s->cluster;
  /* Detached: the handle is kept only while this task runs, for
   * stop_slot's cancel, and dropped with the slot below. */
  s->task = weft_task_current();
  int64_t backoff = 0;
  for (;;) {
    /* A stop or a reload cancels this sleep (only a slot without a
     * worker is ever cancelled), which ends the slot below. */
    if (backoff > 0 && weft_sleep(backoff) != 0)
      break;
    if (c->stopping || s->retired)
      break;
    int rc = start_worker(s);
    report_first_start(c, s, rc);
    if (rc < 0) {
      if (c->starting)
        break; /* weft_cluster_run fails, and stops the others */
      backoff = next_backoff(backoff);
      weft__cluster_log(c,
                        "worker %d could not be started (%s): next try "
                        "in %.1f s",
                        s->index, weft_strerror(rc), (double)backoff / 1e9);
      continue;
    }
    int code = 0;
    pid_t pid = weft_proc_pid(s->proc);
    weft_proc_join(s->proc, WEFT_FOREVER, &code); /* never cancelled */
    int64_t lived = weft_now() - s->started_at;
    weft__balance_leave(c, s->index, pid);
    end_worker(s);
    char how[96];
    describe_exit(how, sizeof how, code);
    bool asked = c->stopping || s->retired;
    bool finished = code == 0 && c->nlisteners == 0;
    if (asked || finished) {
      weft__cluster_log(c, "worker %d (pid %d) %s", s->index, (int)pid, how);
      break;
    }
    backoff = lived >= HEALTHY_AFTER ? 0 : next_backoff(backoff);
    weft__cluster_log(c, "worker %d (pid %d) %s: restarting it in %.1f s",
                      s->index, (int)pid, how, (double)backoff / 1e9);
  }
  report_first_start(c, s, 0);
  unlink_slot(c, s);
  weft_event_destroy(&s->sends_done);
  free(s);
  c->live_slots--;
  weft_event_set(&c->changed);
  return NULL;
}

/* A slot for worker index of the newest generation, with its task, which
 * starts the worker. Returns 0, or the spawn's error (nothing is left). */
static int add_slot(weft_cluster *c, int index) {
  struct slot *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->cluster = c;
  s->index = index;
  s->generation = c->generation;
  s->kill_at = INT64_MAX;
  weft_event_init(&s->sends_done);
  int rc = weft_task_spawn(NULL, slot_main, s,
                           &(weft_task_opts){.name = "cluster-slot"});
  if (rc < 0) {
    weft_event_destroy(&s->sends_done);
    free(s);
    return rc;
  }
  s->next = c->slots;
  c->slots = s;
  c->live_slots++;
  return 0;
}

static void close_listeners(weft_cluster *c) {
  for (int i = 0; i < c->nlisteners; i++)
    for (int j = 0; j < c->listeners[i].nfds; j++)
      if (c->listeners[i].fds[j] >= 0) {
        close(c->listeners[i].fds[j]);
        c->listeners[i].fds[j] = -1;
      }
}

static void begin_stop(weft_cluster *c, bool now) {
  int level = now ? STOPPING_NOW : STOPPING;
  if (c->stopping >= level)
    return;
  c->stopping = level;
  weft__cluster_log(c,
                    now ? "stopping now"
                        : "stopping gracefully: draining for up to %.1f s",
                    (double)c->o.drain_timeout / 1e9);
  /* The workers keep their copies of the listeners while they drain; once
   * they close them too, new connections are refused, not left queued. */
  close_listeners(c);
  for (struct slot *s = c->slots; s; s = s->next)
    stop_slot(c, s, now);
  weft_event_set(&c->killer_wake);
}

static void reload(weft_cluster *c) {
  if (c->stopping)
    return;
  c->generation++;
  weft__cluster_log(c, "reloading: starting generation %u", c->generation);
  /* Each new worker, once it runs, retires the old one of its index
   * (retire_older): someone accepts all along, and what comes between
   * waits in the listeners' queues, which the supervisor keeps open. */
  for (int i = 0; i < c->o.workers; i++) {
    int rc = add_slot(c, i);
    if (rc < 0)
      weft__cluster_log(c,
                        "reload: no task for worker %d (%s): the old one "
                        "stays",
                        i, weft_strerror(rc));
  }
}

static void apply_requests(weft_cluster *c) {
  /* Stops stay set (a reload after one is refused); a reload is taken. */
  int r = atomic_fetch_and(&c->requests, ~REQUEST_RELOAD);
  if (r & REQUEST_STOP_NOW)
    begin_stop(c, true);
  else if (r & REQUEST_STOP)
    begin_stop(c, false);
  if (r & REQUEST_RELOAD)
    reload(c);
}

static void *control_main(void *arg) {
  weft_cluster *c = arg;
  char buf[64];
  while (weft_io_read(c->ctl[0], buf, sizeof buf, WEFT_FOREVER) > 0)
    apply_requests(c);
  return NULL; /* cancelled at the end */
}

static void *signals_main(void *arg) {
  weft_cluster *c = arg;
  sigset_t set;
  weft__cluster_block_signals(&set, NULL); /* blocked already */
  for (;;) {
    int sig = weft_signal_wait(&set, WEFT_FOREVER);
    if (sig < 0)
      return NULL; /* cancelled at the end */
    weft__cluster_log(c, "got signal %d (%s)", sig, strsignal(sig));
    int what = sig == SIGQUIT  ? REQUEST_STOP_NOW
               : sig == SIGHUP ? REQUEST_RELOAD
                               : REQUEST_STOP;
    atomic_fetch_or(&c->requests, what);
    apply_requests(c);
  }
}

static void *killer_main(void *arg) {
  weft_cluster *c = arg;
  for (;;) {
    int64_t now = weft_now(), next = INT64_MAX;
    for (struct slot *s = c->slots; s; s = s->next) {
      if (!s->proc || s->kill_at == INT64_MAX)
        continue;
      if (s->kill_at <= now) {
        weft__cluster_log(c,
                          "worker %d (pid %d) did not stop in time: "
                          "killing it",
                          s->index, (int)weft_proc_pid(s->proc));
        weft_proc_kill(s->proc);
        s->kill_at = INT64_MAX;
      } else if (s->kill_at < next) {
        next = s->kill_at;
      }
    }
    weft_event_clear(&c->killer_wake);
    int rc = weft_event_wait(&c->killer_wake,
                             next == INT64_MAX ? WEFT_FOREVER : next - now);
    if (rc == -ECANCELED)
      return NULL;
  }
}

static int start_helpers(weft_cluster *c, weft_task **t) {
  weft_task_fn fns[3] = {control_main, signals_main, killer_main};
  const char *names[3] = {"cluster-control", "cluster-signals",
                          "cluster-killer"};
  for (int i = 0; i < 3; i++) {
    int rc =
        weft_task_spawn(&t[i], fns[i], c, &(weft_task_opts){.name = names[i]});
    if (rc < 0) {
      while (i-- > 0) {
        weft_task_cancel(t[i]);
        weft_task_join(t[i], WEFT_FOREVER, NULL);
        weft_task_detach(t[i]);
      }
      return rc;
    }
  }
  c->killer = t[2];
  return 0;
}

/* The four signals' instances that came after the stop began are taken, so
 * that the mask the caller had can come back without them. */
static void drop_pending(const sigset_t *set) {
  struct timespec zero = {0, 0};
  while (sigtimedwait(set, NULL, &zero) > 0) {
  }
}

static int supervise(weft_cluster *c) {
  c->thread = pthread_self();
  atomic_store_explicit(&c->pid, getpid(), memory_order_relaxed);
  /* A reload before the run has nothing to reload. */
  int r = atomic_fetch_and(&c->requests, ~REQUEST_RELOAD);
  if (r & (REQUEST_STOP | REQUEST_STOP_NOW))
    return 0; /* stopped before it ran */
  /* The run waits for its workers whatever the caller's deadline; a
   * cancellation stops them now, and the run still waits for them. */
  int64_t deadline;
  weft_deadline_set(WEFT_FOREVER, &deadline);
  sigset_t set, mask;
  int rc = weft__cluster_block_signals(&set, &mask);
  if (rc < 0) {
    weft_deadline_set(deadline, NULL);
    return rc;
  }
  weft_task *helpers[3];
  rc = start_helpers(c, helpers);
  if (rc < 0) {
    weft__sigmask_restore(&mask);
    weft_deadline_set(deadline, NULL);
    return rc;
  }
  c->supervising = true;
  c->starting = true;
  for (int i = 0; i < c->o.workers && rc == 0; i++)
    rc = add_slot(c, i);
  if (rc < 0 && c->start_error == 0)
    c->start_error = rc;
  bool cancelled = false;
  while (c->live_slots > 0) {
    if (c->starting && (c->first_starts == c->live_slots || c->start_error)) {
      c->starting = false;
      if (c->start_error) {
        weft__cluster_log(c, "could not start the workers: %s",
                          weft_strerror(c->start_error));
        begin_stop(c, true);
      }
    }
    weft_event_clear(&c->changed);
    if (c->live_slots == 0)
      break;
    if (weft_event_wait(&c->changed, WEFT_FOREVER) == -ECANCELED &&
        !cancelled) {
      cancelled = true;
      weft_task_shield(); /* the waits below must wait */
      weft__cluster_log(c, "the task that runs the cluster was cancelled");
      begin_stop(c, true);
    }
  }
  if (!cancelled)
    weft_task_shield(); /* the helpers are cancelled and joined in full */
  for (int i = 0; i < 3; i++) {
    weft_task_cancel(helpers[i]);
    weft_task_join(helpers[i], WEFT_FOREVER, NULL);
    weft_task_detach(helpers[i]);
  }
  weft_task_unshield();
  c->killer = NULL;
  c->supervising = false;
  c->starting = false;
  drop_pending(&set);
  weft__sigmask_restore(&mask);
  weft_deadline_set(deadline, NULL);
  weft__cluster_log(c, "stopped");
  if (c->start_error)
    return c->start_error;
  return cancelled ? -ECANCELED : 0;
}

static void *supervise_task(void *arg) {
  return (void *)(intptr_t)supervise(arg);
}

int weft_cluster_run(weft_cluster *c) {
  if (!c || (c->o.handler && c->nlisteners == 0) ||
      (!c->o.handler && c->nlisteners > 0))
    return -EINVAL;
  if (c->ran)
    return -EALREADY;
  c->ran = true;
  if (weft_task_current())
    return supervise(c);
  void *result;
  int rc = weft_run(supervise_task, c, &result);
  return rc < 0 ? rc : (int)(intptr_t)result;
}

int weft_cluster_broadcast(weft_cluster *c, const void *msg, size_t len) {
  if (!c || (!msg && len > 0))
    return -EINVAL;
  if (len > WEFT_MSGPIPE_MAX)
    return -EMSGSIZE;
  if (!c->supervising || atomic_load(&c->pid) != getpid() ||
      !pthread_equal(c->thread, pthread_self()) || !weft_task_current())
    return -EPERM;
  int reached = 0;
  /* A slot is neither freed nor unlinked while a send on its pipe is
   * under way (end_worker waits for sends to end), so s->next is read
   * from a slot still in the list. */
  for (struct slot *s = c->slots; s; s = s->next) {
    if (!s->pipe)
      continue;
    s->sends++;
    int rc = weft_msgpipe_send(s->pipe, msg ? msg : "", len, WEFT_SEC(1));
    if (--s->sends == 0)
      weft_event_set(&s->sends_done);
    reached += rc == 0;
  }
  return reached;
}
