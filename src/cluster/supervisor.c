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
#define DRAIN_GRACE    WEFT_SEC(5)

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
      return NULL; /* the worker is gone, or the slot cancelled us */
    c->o.on_message(c, s->index, msg, len, c->o.message_arg);
    free(msg);
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
  if (c->o.on_message && weft_task_spawn(&s->reader, read_messages, s,
                                         &(weft_task_opts){
                                             .name = "cluster-messages",
                                         }) < 0) {
    s->reader = NULL;
    weft__cluster_log(c, "worker %d: no task to read its messages", s->index);
  }
  weft__cluster_log(c, "worker %d (pid %d, generation %u) started", s->index,
                    (int)weft_proc_pid(s->proc), s->generation);
  return 0;
}

/* After the worker's exit: its reader ends, its pipe and handle go. */
static void end_worker(struct slot *s) {
  if (s->reader) {
    weft_task_cancel(s->reader);
    weft_task_join(s->reader, WEFT_FOREVER, NULL);
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

static void *slot_main(void *arg) {
  struct slot *s = arg;
  weft_cluster *c = s->cluster;
  /* Detached: the handle is kept only while this task runs, for
   * stop_slot's cancel, and dropped with the slot below. */
  s->task = weft_task_current();
  int64_t backoff = 0;
  for (;;) {
    if (!s->proc) {
      /* A stop or a reload cancels this sleep (only a slot without a
       * worker is ever cancelled), which ends the slot below. */
      if (backoff > 0 && weft_sleep(backoff) != 0)
        break;
      if (c->stopping || s->retired)
        break;
      int rc = start_worker(s);
      if (rc < 0) {
        backoff = next_backoff(backoff);
        weft__cluster_log(c,
                          "worker %d could not be started (%s): next try "
                          "in %.1f s",
                          s->index, weft_strerror(rc), (double)backoff / 1e9);
        continue;
      }
    }
    int code = 0;
    pid_t pid = weft_proc_pid(s->proc);
    weft_proc_join(s->proc, WEFT_FOREVER, &code); /* never cancelled */
    int64_t lived = weft_now() - s->started_at;
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
  unlink_slot(c, s);
  free(s);
  c->live_slots--;
  weft_event_set(&c->changed);
  return NULL;
}

static struct slot *new_slot(weft_cluster *c, int index) {
  struct slot *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->cluster = c;
  s->index = index;
  s->generation = c->generation;
  s->kill_at = INT64_MAX;
  s->next = c->slots;
  c->slots = s;
  return s;
}

/* Gives s its task. On failure the slot is dropped, and its worker (if it
 * was started) stopped. */
static int run_slot(weft_cluster *c, struct slot *s) {
  int rc = weft_task_spawn(NULL, slot_main, s,
                           &(weft_task_opts){.name = "cluster-slot"});
  if (rc == 0) {
    c->live_slots++;
    return 0;
  }
  if (s->proc) {
    weft_proc_kill(s->proc);
    weft_proc_join(s->proc, WEFT_FOREVER, NULL);
    end_worker(s);
  }
  unlink_slot(c, s);
  free(s);
  return rc;
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
  struct slot *old = c->slots;
  c->generation++;
  weft__cluster_log(c, "reloading: starting generation %u", c->generation);
  /* The new generation first, so that someone accepts while the old one
   * drains; what comes between waits in the listeners' queues, which the
   * supervisor keeps open. */
  for (int i = 0; i < c->o.workers; i++) {
    struct slot *s = new_slot(c, i);
    if (!s) {
      weft__cluster_log(c, "reload: out of memory for worker %d", i);
      continue;
    }
    s->generation = c->generation;
    int rc = start_worker(s);
    if (rc < 0)
      weft__cluster_log(c,
                        "worker %d could not be started (%s): the slot "
                        "tries again",
                        i, weft_strerror(rc));
    rc = run_slot(c, s);
    if (rc < 0)
      weft__cluster_log(c, "reload: no task for worker %d (%s)", i,
                        weft_strerror(rc));
  }
  for (struct slot *s = old; s; s = s->next) {
    if (s->retired)
      continue;
    s->retired = true;
    stop_slot(c, s, false);
  }
  weft_event_set(&c->killer_wake);
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
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGQUIT);
  sigaddset(&set, SIGHUP);
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

/* Stops and reaps the workers started so far, for a first start that
 * failed. */
static void undo_start(weft_cluster *c) {
  while (c->slots) {
    struct slot *s = c->slots;
    c->slots = s->next;
    if (s->proc) {
      weft_proc_kill(s->proc);
      weft_proc_join(s->proc, WEFT_FOREVER, NULL);
      end_worker(s);
    }
    free(s);
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

static int supervise(weft_cluster *c) {
  c->thread = pthread_self();
  c->supervising = true;
  if (atomic_load(&c->requests) & (REQUEST_STOP | REQUEST_STOP_NOW))
    return 0; /* stopped before it ran */
  int rc = 0;
  for (int i = 0; i < c->o.workers && rc == 0; i++) {
    struct slot *s = new_slot(c, i);
    rc = s ? start_worker(s) : -ENOMEM;
  }
  weft_task *helpers[3];
  if (rc == 0)
    rc = start_helpers(c, helpers);
  if (rc < 0) {
    weft__cluster_log(c, "could not start the workers: %s", weft_strerror(rc));
    undo_start(c);
    c->supervising = false;
    return rc;
  }
  for (struct slot *s = c->slots, *next; s; s = next) {
    next = s->next;
    if (run_slot(c, s) < 0)
      weft__cluster_log(c, "no task to supervise worker %d", s->index);
  }
  while (c->live_slots > 0) {
    weft_event_clear(&c->changed);
    if (c->live_slots == 0)
      break;
    weft_event_wait(&c->changed, WEFT_FOREVER);
  }
  for (int i = 0; i < 3; i++) {
    weft_task_cancel(helpers[i]);
    weft_task_join(helpers[i], WEFT_FOREVER, NULL);
    weft_task_detach(helpers[i]);
  }
  c->killer = NULL;
  c->supervising = false;
  weft__cluster_log(c, "stopped");
  return 0;
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
  if (!c->supervising || !pthread_equal(c->thread, pthread_self()) ||
      !weft_task_current())
    return -EPERM;
  int reached = 0;
  for (struct slot *s = c->slots; s; s = s->next)
    if (s->pipe &&
        weft_msgpipe_send(s->pipe, msg ? msg : "", len, WEFT_SEC(1)) == 0)
      reached++;
  return reached;
}
