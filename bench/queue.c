/*
 * Messages from process to process (Python's multiprocessing.Queue is in
 * peers/python_queue.py):
 *
 *   BenchmarkQueue/producers=<n>/weft  a weft_queue (weft/shm.h) of the
 *                                      default capacity, 64 KiB; children
 *                                      made by weft_proc_start use the
 *                                      parent's handle
 *   BenchmarkQueue/producers=<n>/pipe  one plain pipe(2) of the default
 *                                      size (64 KiB on Linux); children
 *                                      made by fork()
 *
 * 64-byte messages, n producer processes to n consumer processes (n = 1,
 * 4), every put and get a blocking one (WEFT_FOREVER; a blocking fd). All
 * the processes are started and waiting at a gate before the clock starts
 * (their start is not timed); it stops when the consumers have received the
 * last message (the latest CLOCK_MONOTONIC any consumer read after a message,
 * the same clock in every process). ns/op is that time over the messages, then
 * the same as msg/s. Rounds are sized and alternated as bench.h does.
 *
 * Every message is checked: it names its producer and its sequence number,
 * at its head and (inverted) at its tail, so a torn or shifted one shows;
 * each consumer sees each producer's numbers rise; and the consumers'
 * counts and sums of the numbers, per producer, must add up to what was
 * sent. A round that loses, duplicates or tears a message prints a FAIL
 * line and the program exits 1: no figure is printed for it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <weft.h>
#include <weft/shm.h>

#include "bench.h"

enum { MSG = 64, MAX_PRODUCERS = 4, ROUNDS = 5 };

struct msg {
  uint32_t producer; /* STOP in the consumers' stop messages */
  uint32_t pad;
  uint64_t seq;
  unsigned char fill[40];
  uint64_t tail; /* ~seq */
};
_Static_assert(sizeof(struct msg) == MSG, "a message is 64 bytes");
_Static_assert(MSG <= PIPE_BUF, "a message is written to a pipe in one go");

#define STOP UINT32_MAX

/* What a consumer tells the parent at its end, in one write to the report
 * pipe: at most PIPE_BUF bytes, so the consumers' reports never mix. */
struct report {
  uint64_t got[MAX_PRODUCERS]; /* messages from each producer */
  uint64_t sum[MAX_PRODUCERS]; /* the sum of their sequence numbers */
  double last;                 /* when the last message came, 0 if none */
  uint64_t bad;                /* messages that failed a check */
  char why[128];               /* what the first of them had wrong */
};
_Static_assert(sizeof(struct report) <= PIPE_BUF, "a report is atomic");

enum impl { WEFT, PIPE };

/* One round: its transport, the processes' plumbing and each producer's
 * share of the messages. */
struct round {
  enum impl impl;
  int n; /* producers, and as many consumers */
  uint64_t share[MAX_PRODUCERS];
  weft_queue *q; /* WEFT */
  int data[2];   /* PIPE: the messages' pipe */
  int gate[2];   /* closed by everyone to start the round */
  /* Children to the parent: a byte from each when it is at the gate, then
   * each consumer's report. */
  int report[2];
};

struct child {
  struct round *r;
  bool producer;
  int id;
};

/* --- the children --------------------------------------------------------- */

/* Tells the parent that this child is at the gate, then blocks until
 * every process of the round has closed its end of the gate: then all of
 * them run, and the parent's clock has started. */
static bool pass_gate(struct round *r) {
  char c = 'r';
  close(r->gate[1]);
  if (write(r->report[1], &c, 1) != 1)
    return false;
  ssize_t got;
  while ((got = read(r->gate[0], &c, 1)) < 0 && errno == EINTR)
    ;
  close(r->gate[0]);
  return got == 0;
}

static int produce(struct round *r, int id) {
  struct msg m;
  memset(&m, 0xa5, sizeof m);
  m.producer = (uint32_t)id;
  if (r->impl == PIPE)
    close(r->data[0]);
  if (!pass_gate(r))
    return 1;
  for (uint64_t seq = 0; seq < r->share[id]; seq++) {
    m.seq = seq;
    m.tail = ~seq;
    if (r->impl == WEFT) {
      if (weft_queue_put(r->q, &m, MSG, WEFT_FOREVER) != 0)
        return 1;
    } else if (write(r->data[1], &m, MSG) != MSG) {
      /* A write of at most PIPE_BUF bytes to a blocking pipe is whole or
       * fails; it is not cut short. */
      return 1;
    }
  }
  return 0;
}

static void note_bad(struct report *rep, const char *fmt, ...) {
  if (rep->bad++ == 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->why, sizeof rep->why, fmt, ap);
    va_end(ap);
  }
}

/*
 * Gets messages until a STOP message. A bad message is counted and the
 * consumer goes on, so that it still takes its STOP and the round ends.
 *
 * The pipe with several consumers: each reads exactly 64 bytes at a time,
 * and each read returns one whole message. POSIX does not promise that;
 * Linux does it, for these reasons (fs/pipe.c). Every write is 64 bytes,
 * at most PIPE_BUF, so it goes in whole under the pipe's mutex, into one
 * pipe buffer (merged into the last one only if it fits there whole). A
 * read holds the same mutex while it copies, and lets it go to sleep only
 * before it has copied anything. So whenever the mutex is free, the pipe
 * holds whole messages, and a 64-byte read copies exactly the next one.
 * The checks below would catch it if that ever stopped being true: a short
 * read, or a torn or shifted message (head and tail disagree), fails the
 * round.
 */
static int consume(struct round *r) {
  struct report rep = {0};
  uint64_t next[MAX_PRODUCERS] = {0};
  struct msg m;
  uint64_t received = 0;
  if (r->impl == PIPE)
    close(r->data[1]);
  if (!pass_gate(r))
    return 1;
  for (;;) {
    ssize_t got;
    if (r->impl == WEFT) {
      got = weft_queue_get(r->q, &m, sizeof m, WEFT_FOREVER);
    } else {
      while ((got = read(r->data[0], &m, sizeof m)) < 0 && errno == EINTR)
        ;
    }
    if (got != MSG) {
      note_bad(&rep, "a get returned %zd, not %d", got, MSG);
      if (got <= 0)
        break; /* an error or the end of the pipe: nothing more will come */
      continue;
    }
    if (m.producer == STOP)
      break;
    /* The clock is read at every 64th message only: a read costs tens of
     * ns in a virtual machine, as much as a message. The last message's
     * time is then short by at most 63 messages' worth, some
     * microseconds in a round of a tenth of a second or more. */
    if (++received % 64 == 1)
      rep.last = bench_now();
    uint32_t p = m.producer;
    if (p >= (uint32_t)r->n || m.tail != ~m.seq) {
      note_bad(&rep, "a torn message: producer %u, seq %llu, tail %llx", p,
               (unsigned long long)m.seq, (unsigned long long)m.tail);
      continue;
    }
    if (m.seq < next[p] || m.seq >= r->share[p]) {
      note_bad(&rep, "producer %u's message %llu after %llu (of %llu)", p,
               (unsigned long long)m.seq, (unsigned long long)next[p],
               (unsigned long long)r->share[p]);
      continue;
    }
    next[p] = m.seq + 1;
    rep.got[p]++;
    rep.sum[p] += m.seq;
  }
  return write(r->report[1], &rep, sizeof rep) == (ssize_t)sizeof rep ? 0 : 1;
}

static int child_main(void *arg) {
  struct child *c = arg;
  close(c->r->report[0]);
  return c->producer ? produce(c->r, c->id) : consume(c->r);
}

/* --- the parent ----------------------------------------------------------- */

struct kid {
  weft_proc *p; /* WEFT */
  pid_t pid;    /* PIPE */
};

static bool start_kid(struct round *r, struct kid *k, bool producer, int id) {
  struct child c = {r, producer, id};
  if (r->impl == WEFT)
    return weft_proc_start(&k->p, child_main, &c, NULL) == 0;
  fflush(stdout);
  k->pid = fork();
  if (k->pid == 0)
    _exit(child_main(&c));
  return k->pid > 0;
}

/* Waits for the kid; true when it exited with 0. */
static bool join_kid(struct round *r, struct kid *k) {
  if (r->impl == WEFT) {
    int code = -1;
    int rc = weft_proc_join(k->p, WEFT_FOREVER, &code);
    weft_proc_free(k->p);
    return rc == 0 && code == 0;
  }
  int status;
  if (waitpid(k->pid, &status, 0) != k->pid)
    return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void fail(const char *name, const char *fmt, ...) {
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  printf("--- FAIL: %s: %s\n", name, why);
  fflush(stdout);
  fprintf(stderr, "bench-queue: FAIL %s: %s\n", name, why);
  exit(1);
}

/* Sends n messages through impl from n producers to n consumers; returns
 * the seconds from the gate's opening to the last message's arrival, or -1
 * (with *skip set) when the transport cannot be made here. Fails the
 * program on a lost, doubled or torn message, or a child that failed. */
static double one_round(const char *name, enum impl impl, int n,
                        uint64_t messages, const char **skip) {
  struct round r = {.impl = impl, .n = n};
  for (int i = 0; i < n; i++)
    r.share[i] =
        messages / (uint64_t)n + ((uint64_t)i < messages % (uint64_t)n);
  if (impl == WEFT) {
    int rc = weft_queue_create(&r.q, NULL);
    if (rc != 0) {
      *skip = weft_strerror(rc);
      return -1;
    }
  } else if (pipe(r.data) != 0) {
    *skip = strerror(errno);
    return -1;
  }
  if (pipe(r.gate) != 0 || pipe(r.report) != 0)
    fail(name, "pipe: %s", strerror(errno));

  /* Consumers first, so that the producers find them there. */
  struct kid consumers[MAX_PRODUCERS], producers[MAX_PRODUCERS];
  for (int i = 0; i < n; i++)
    if (!start_kid(&r, &consumers[i], false, i))
      fail(name, "cannot start consumer %d", i);
  for (int i = 0; i < n; i++)
    if (!start_kid(&r, &producers[i], true, i))
      fail(name, "cannot start producer %d", i);
  if (impl == PIPE)
    close(r.data[0]);
  close(r.report[1]);
  close(r.gate[0]);
  for (int i = 0; i < 2 * n; i++) {
    char c;
    ssize_t len;
    while ((len = read(r.report[0], &c, 1)) < 0 && errno == EINTR)
      ;
    if (len != 1)
      fail(name, "a child did not come to the gate");
  }
  double t0 = bench_now();
  close(r.gate[1]);

  for (int i = 0; i < n; i++)
    if (!join_kid(&r, &producers[i]))
      fail(name, "producer %d failed", i);
  /* Every message is in the queue now, so these come after all of them:
   * each consumer takes one and stops. */
  struct msg stop = {.producer = STOP};
  for (int i = 0; i < n; i++) {
    bool sent = impl == WEFT
                    ? weft_queue_put(r.q, &stop, MSG, WEFT_FOREVER) == 0
                    : write(r.data[1], &stop, MSG) == MSG;
    if (!sent)
      fail(name, "cannot send the consumers' stop");
  }

  uint64_t got[MAX_PRODUCERS] = {0}, sum[MAX_PRODUCERS] = {0};
  double t1 = t0;
  for (int i = 0; i < n; i++) {
    struct report rep;
    ssize_t len;
    while ((len = read(r.report[0], &rep, sizeof rep)) < 0 && errno == EINTR)
      ;
    if (len != (ssize_t)sizeof rep)
      fail(name, "a consumer did not report");
    if (rep.bad)
      fail(name, "%llu bad messages; the first: %s",
           (unsigned long long)rep.bad, rep.why);
    for (int p = 0; p < n; p++) {
      got[p] += rep.got[p];
      sum[p] += rep.sum[p];
    }
    if (rep.last > t1)
      t1 = rep.last;
  }
  for (int i = 0; i < n; i++)
    if (!join_kid(&r, &consumers[i]))
      fail(name, "consumer %d failed", i);
  for (int p = 0; p < n; p++) {
    uint64_t s = r.share[p];
    if (got[p] != s || sum[p] != (s ? s * (s - 1) / 2 : 0))
      fail(name, "producer %d sent %llu messages, %llu arrived (sum %llu)", p,
           (unsigned long long)s, (unsigned long long)got[p],
           (unsigned long long)sum[p]);
  }

  close(r.report[0]);
  if (impl == WEFT)
    weft_queue_free(r.q);
  else
    close(r.data[1]);
  return t1 - t0;
}

/* --- the rows ------------------------------------------------------------- */

struct row {
  char name[64];
  enum impl impl;
  uint64_t n;
  bool live;
  double ns[ROUNDS];
};

/* Measures each row as bench_group does (a round sized to about 0.2 s,
 * then the median of 5 rounds taken in turns) and prints it with its
 * msg/s. */
static void queue_group(int producers) {
  static const char *impl_name[] = {[WEFT] = "weft", [PIPE] = "pipe"};
  struct row rows[2];
  for (int i = 0; i < 2; i++) {
    struct row *w = &rows[i];
    w->impl = (enum impl)i;
    w->live = false;
    snprintf(w->name, sizeof w->name, "BenchmarkQueue/producers=%d/%s",
             producers, impl_name[i]);
    if (!bench_selected(w->name))
      continue;
    w->n = 1000;
    for (;;) {
      const char *skip = NULL;
      double dt = one_round(w->name, w->impl, producers, w->n, &skip);
      if (skip) {
        printf("# skip %s: %s\n", w->name, skip);
        break;
      }
      if (dt > 0.2 || w->n > (1ull << 40)) {
        w->live = true;
        break;
      }
      uint64_t next =
          dt > 0.001 ? (uint64_t)((double)w->n * 0.25 / dt) : w->n * 100;
      w->n = next > w->n ? next : w->n * 2;
    }
  }
  for (int k = 0; k < ROUNDS; k++)
    for (int i = 0; i < 2; i++) {
      struct row *w = &rows[i];
      if (!w->live)
        continue;
      const char *skip = NULL;
      double dt = one_round(w->name, w->impl, producers, w->n, &skip);
      if (skip)
        fail(w->name, "the transport could not be made again: %s", skip);
      w->ns[k] = dt * 1e9 / (double)w->n;
    }
  for (int i = 0; i < 2; i++) {
    struct row *w = &rows[i];
    if (!w->live)
      continue;
    qsort(w->ns, ROUNDS, sizeof(double), bench_cmp);
    double ns = w->ns[ROUNDS / 2];
    printf("%-40s %12llu %10.1f ns/op %12.0f msg/s\n", w->name,
           (unsigned long long)w->n, ns, 1e9 / ns);
  }
  fflush(stdout);
}

int main(void) {
  queue_group(1);
  queue_group(4);
  return 0;
}
