/*
 * weft_chan and weft_select. See include/weft/sync.h.
 *
 * A channel's guard guards its ring, its closed flag, and its two queues:
 * senders and receivers that wait. A waiting send or receive is a select
 * of one case. A select that must wait puts a case node in the queue of
 * each of its channels, all pointing to one `chan_wait`, and parks on that
 * wait's waiter. A peer that finds a case node in a queue (holding that
 * channel's guard) claims the whole wait with a compare-and-swap of its
 * state from WAITING to FIRED, does the case's transfer, and wakes the
 * parker; a failed claim means the select fired elsewhere or gave up, and
 * the peer just drops the node. The select, once awake (or timed out), takes
 * every one of its channels' guards, in address order, and takes its
 * remaining nodes out; a timeout or cancellation that finds the state still
 * WAITING turns it to GONE, so that no peer fires it late. Holding every
 * guard orders this after any peer that fired it: a peer holds one guard,
 * and fires under it.
 *
 * A parker that is a plain thread is woken later than waiter.h's rule
 * says: after the peer has let go of the guard (wake_later), so that the
 * woken thread, which likely spins on another CPU, need not wait for the
 * guard, nor pull the channel's cache line over to look at it. In
 * exchange, a thread whose wait failed but was fired meanwhile waits for
 * that wake before it returns (weft__waiter_await), since the peer will
 * still write to its waiter. A task is woken under the guard, as waiter.h
 * says: its hub could otherwise free it between the two.
 *
 * Lock order: the guards of several channels, by address, whether one
 * select takes them or a peer (itself a select) does.
 */
#include <errno.h>
#include <stddef.h>
#include <weft/sync.h>

#include "../hub/timer.h"
#include "sync-private.h"

enum { WAITING, FIRED, GONE };
enum { MAX_CASES = 64 };

/* A wait of one case (a send or a receive) queues its parker itself; a
 * select of several queues a node per case (chan_case), all pointing to
 * the wait. Either way, all that a peer touches when it fires a wait of
 * one case (the header, and the parker's links, woken word and code) lies
 * in the first 64 bytes, one cache line: a parker that is a thread
 * spinning on another CPU gives it up once and reads it back once. */
struct chan_wait {
  int state;                   /* WAITING, FIRED, GONE (atomic, see claim) */
  int fired;                   /* the index of the case that ran */
  int rc;                      /* its result: 0, or -EPIPE */
  bool single;                 /* one case: one guard guards state */
  void *value;                 /* a receive's value, or a one-case send's */
  weft__waiter parker;         /* what the task or thread parks on */
  struct chan_wait *wake_next; /* in a peer's list of waits to wake */
} __attribute__((aligned(64)));

struct chan_case {
  weft__waiter node; /* in the channel's queue; never parked on */
  struct chan_wait *wait;
  weft_chan_op *op;
  void *value; /* a sending case's value, read by the peer */
  int index;
};

/* What a case node says it is, where a parker says "channel". */
static const char case_node[] = "channel case";

/* A wait that a peer found in a queue, and which of its cases runs. */
struct claimed {
  struct chan_wait *wait;
  int index;
  void *value; /* a sending case's value */
};

/* What the queued waiter n stands for: a case node, or the parker of a
 * wait of one case (index 0, whose value is in the wait). */
static struct claimed claimed_of(weft__waiter *n) {
  if (n->what == case_node) {
    struct chan_case *k =
        (struct chan_case *)((char *)n - offsetof(struct chan_case, node));
    return (struct claimed){k->wait, k->index, k->value};
  }
  struct chan_wait *w =
      (struct chan_wait *)((char *)n - offsetof(struct chan_wait, parker));
  return (struct claimed){w, 0, w->value};
}

int weft_chan_init(weft_chan *c, void **storage, unsigned capacity) {
  if (!c || (capacity && !storage) || capacity > INT32_MAX)
    return -EINVAL;
  *c = (weft_chan)WEFT_CHAN_INIT(storage, capacity);
  return 0;
}

/* Claims the wait w from WAITING, for FIRED or GONE. A select of several
 * cases races the peers of its channels, each under its own guard: a
 * compare-and-swap. A wait of one case changes state only under its one
 * channel's guard, which the caller holds: a load and a store. */
static bool claim_wait(struct chan_wait *w, int to) {
  if (w->single) {
    if (__atomic_load_n(&w->state, __ATOMIC_RELAXED) != WAITING)
      return false;
    __atomic_store_n(&w->state, to, __ATOMIC_RELAXED);
    return true;
  }
  int expect = WAITING;
  return __atomic_compare_exchange_n(&w->state, &expect, to, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Claims the first live waiter of q, taking dead nodes out on the way,
 * into *k. Returns false when none is left. Called with the channel's
 * guard held. */
static inline __attribute__((always_inline)) bool claim(weft__waitq *q,
                                                        struct claimed *k) {
  weft__waiter *n;
  while ((n = weft__waitq_pop(q)) != NULL) {
    *k = claimed_of(n);
    if (claim_wait(k->wait, FIRED))
      return true;
  }
  return false;
}

/* Ends a claimed wait: its case k ran with result rc. A task is woken
 * now; a thread's wait goes on the list *later, for wake_later once the
 * guard is free (above). */
static void fire(const struct claimed *k, int rc, struct chan_wait **later) {
  struct chan_wait *w = k->wait;
  w->fired = k->index;
  w->rc = rc;
  if (w->parker.task) {
    weft__waiter_wake(&w->parker, 0);
  } else {
    w->wake_next = *later;
    *later = w;
  }
}

/* Wakes the threads fire() put off, the caller holding no guard. */
static void wake_later(struct chan_wait *w) {
  while (w) {
    struct chan_wait *next = w->wake_next; /* read first: woken, w goes */
    weft__waiter_wake(&w->parker, 0);
    w = next;
  }
}

/* The case of ops that w's firing ran, its result and value set. */
static inline int fired(weft_chan_op *ops, const struct chan_wait *w) {
  weft_chan_op *op = &ops[w->fired];
  op->rc = w->rc;
  if (op->dir == WEFT_CHAN_RECV)
    op->value = w->value;
  return w->fired;
}

/* Runs op now if it can run without waiting. Called with the channel's
 * guard held; a thread it fired goes on *later. */
static bool try_now(weft_chan_op *op, struct chan_wait **later) {
  weft_chan *c = op->chan;
  if (op->dir == WEFT_CHAN_SEND) {
    if (c->closed_) {
      op->rc = -EPIPE;
      return true;
    }
    struct claimed r;
    if (claim(&c->receivers_, &r)) { /* a waiting receiver: none buffered */
      r.wait->value = op->value;
      fire(&r, 0, later);
      op->rc = 0;
      return true;
    }
    if (c->len_ < c->cap_) {
      c->slots_[(c->head_ + c->len_) % c->cap_] = op->value;
      __atomic_store_n(&c->len_, c->len_ + 1, __ATOMIC_RELAXED);
      op->rc = 0;
      return true;
    }
    return false;
  }
  if (c->len_ > 0) {
    op->value = c->slots_[c->head_];
    c->head_ = (c->head_ + 1) % c->cap_;
    __atomic_store_n(&c->len_, c->len_ - 1, __ATOMIC_RELAXED);
    /* A slot came free: a waiting sender's value fills it. */
    struct claimed s;
    if (claim(&c->senders_, &s)) {
      c->slots_[(c->head_ + c->len_) % c->cap_] = s.value;
      __atomic_store_n(&c->len_, c->len_ + 1, __ATOMIC_RELAXED);
      fire(&s, 0, later);
    }
    op->rc = 0;
    return true;
  }
  struct claimed s;
  if (claim(&c->senders_, &s)) { /* unbuffered: the sender's value */
    op->value = s.value;
    fire(&s, 0, later);
    op->rc = 0;
    return true;
  }
  if (c->closed_) {
    op->value = NULL;
    op->rc = -EPIPE;
    return true;
  }
  return false;
}

/* The queue where op waits: its channel's senders or receivers. */
static inline weft__waitq *queue_of(const weft_chan_op *op) {
  return op->dir == WEFT_CHAN_SEND ? &op->chan->senders_
                                   : &op->chan->receivers_;
}

/* The distinct channels of ops, sorted by address: the lock order. */
static inline int lock_order(weft_chan_op *ops, int n, weft_chan **order) {
  if (n == 1) {
    order[0] = ops[0].chan;
    return 1;
  }
  int m = 0;
  for (int i = 0; i < n; i++) {
    weft_chan *c = ops[i].chan;
    int j = m;
    while (j > 0 && order[j - 1] > c)
      j--;
    if (j > 0 && order[j - 1] == c)
      continue;
    for (int k = m; k > j; k--)
      order[k] = order[k - 1];
    order[j] = c;
    m++;
  }
  return m;
}

static void lock_all(weft_chan **order, int m) {
  for (int i = 0; i < m; i++)
    weft__guard_lock(&order[i]->guard_);
}

static void unlock_all(weft_chan **order, int m) {
  for (int i = m; i-- > 0;)
    weft__guard_unlock(&order[i]->guard_);
}

/* A cheap per-thread random number (xorshift). */
static unsigned next_random(void) {
  static __thread unsigned seed = 2463534242u;
  seed ^= seed << 13;
  seed ^= seed >> 17;
  seed ^= seed << 5;
  return seed;
}

/* A random order of 0 .. n-1 (Fisher-Yates), so that of the cases that can
 * run, each is as likely to be picked. */
static void shuffle(int *order, int n) {
  for (int i = 0; i < n; i++)
    order[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(next_random() % (unsigned)(i + 1));
    int tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
}

/* The arrays a select of n cases works in, n long each. */
struct select_space {
  weft_chan **order;       /* its distinct channels, in lock order */
  int *poll_order;         /* the order in which it tries its cases */
  struct chan_case *cases; /* its nodes, for the channels' queues (none
                              for one case: its parker waits itself) */
};

/* The select, of valid cases, in the caller's space. Inlined into each
 * caller, so that a send or receive (a select of one case, with arrays
 * of one) is compiled for n == 1: no loops, no arrays of variable length
 * (whose stack adjustments showed in every call). */
static inline __attribute__((always_inline)) int
select_valid(weft_chan_op *ops, int n, int64_t timeout,
             struct select_space space) {
  weft_chan **order = space.order;
  int m = lock_order(ops, n, order);
  lock_all(order, m);
  int *poll_order = space.poll_order;
  shuffle(poll_order, n);
  struct chan_wait *later = NULL;
  for (int k = 0; k < n; k++) {
    int i = poll_order[k];
    if (try_now(&ops[i], &later)) {
      unlock_all(order, m);
      wake_later(later);
      return i;
    }
  }
  weft_task *self = weft__task_running();
  int busy = timeout == 0              ? -ETIMEDOUT
             : self && self->cancelled ? -ECANCELED
                                       : 0;
  if (busy) {
    unlock_all(order, m);
    return busy;
  }
  struct chan_wait wait; /* fired and rc are set by whoever fires it */
  wait.state = WAITING;
  wait.single = n == 1;
  weft__waiter_init(&wait.parker, "channel", ops[0].chan);
  struct chan_case *cases = space.cases;
  if (n == 1) { /* the parker itself waits in the queue */
    wait.value = ops[0].value;
    weft__waitq_push_back(queue_of(&ops[0]), &wait.parker);
  }
  for (int i = 0; i < n && n > 1; i++) {
    /* The node is only ever linked (the queue sets its fields) and told
     * from a parker by its what. */
    cases[i].node.what = case_node;
    cases[i].wait = &wait;
    cases[i].op = &ops[i];
    cases[i].value = ops[i].value;
    cases[i].index = i;
    weft__waitq_push_back(queue_of(&ops[i]), &cases[i].node);
  }
  unlock_all(order, m);
  int rc = weft__waiter_wait(&wait.parker, weft__deadline_after(timeout));
  if (rc >= 0 && n == 1) {
    /* The peer that fired took the parker out. A task's peer may still
     * be inside the channel's guard, and the program may free the channel
     * as soon as this returns; a thread's has left it (above). */
    if (wait.parker.task)
      weft__guard_pass(&order[0]->guard_);
    return fired(ops, &wait);
  }
  /* Every guard is taken, to take the nodes left out of their queues, and
   * so that the peer that fired, if one did, has left. */
  lock_all(order, m);
  bool gave_up = rc < 0 && claim_wait(&wait, GONE);
  if (n == 1 && wait.parker.queued)
    weft__waitq_remove(queue_of(&ops[0]), &wait.parker);
  for (int i = 0; i < n && n > 1; i++)
    if (cases[i].node.queued)
      weft__waitq_remove(queue_of(&ops[i]), &cases[i].node);
  unlock_all(order, m);
  if (gave_up)
    return rc;
  if (rc < 0 && !wait.parker.task)
    weft__waiter_await(&wait.parker); /* fired, its wake still to come */
  return fired(ops, &wait);
}

int weft_select(weft_chan_op *ops, int n, int64_t timeout) {
  if (!ops || n < 1 || n > MAX_CASES || weft__timeout_bad(timeout))
    return -EINVAL;
  for (int i = 0; i < n; i++)
    if (!ops[i].chan ||
        (ops[i].dir != WEFT_CHAN_SEND && ops[i].dir != WEFT_CHAN_RECV))
      return -EINVAL;
  weft_chan *order[n];
  int poll_order[n];
  struct chan_case cases[n];
  return select_valid(ops, n, timeout,
                      (struct select_space){order, poll_order, cases});
}

/* A select of the one case op. */
static inline __attribute__((always_inline)) int one(weft_chan_op *op,
                                                     int64_t timeout) {
  weft_chan *order[1];
  int poll_order[1];
  return select_valid(op, 1, timeout,
                      (struct select_space){order, poll_order, NULL});
}

int weft_chan_send(weft_chan *c, void *value, int64_t timeout) {
  if (!c || weft__timeout_bad(timeout))
    return -EINVAL;
  weft_chan_op op = {.chan = c, .dir = WEFT_CHAN_SEND, .value = value};
  int rc = one(&op, timeout);
  return rc < 0 ? rc : op.rc;
}

int weft_chan_recv(weft_chan *c, void **value, int64_t timeout) {
  if (!c || weft__timeout_bad(timeout))
    return -EINVAL;
  weft_chan_op op = {.chan = c, .dir = WEFT_CHAN_RECV};
  int rc = one(&op, timeout);
  if (rc < 0)
    return rc;
  if (value && op.rc == 0)
    *value = op.value;
  return op.rc;
}

int weft_chan_close(weft_chan *c) {
  if (!c)
    return -EINVAL;
  weft__guard_lock(&c->guard_);
  if (c->closed_) {
    weft__guard_unlock(&c->guard_);
    return -EPIPE;
  }
  c->closed_ = 1;
  struct claimed k;
  struct chan_wait *later = NULL;
  while (claim(&c->receivers_, &k)) {
    k.wait->value = NULL;
    fire(&k, -EPIPE, &later);
  }
  while (claim(&c->senders_, &k))
    fire(&k, -EPIPE, &later);
  weft__guard_unlock(&c->guard_);
  wake_later(later);
  return 0;
}

unsigned weft_chan_len(weft_chan *c) {
  return c ? __atomic_load_n(&c->len_, __ATOMIC_RELAXED) : 0;
}
